//! What can go wrong, and the exit code each kind of failure ends with.

use offers_shared::dynamo::{CallError, Fault};
use std::path::PathBuf;

/// Exit codes (docs/cli.md): 0 ok, 1 invalid input, 2 command-line usage
/// (clap's, and a table whose name is unknown), 3 AWS or service failure.
pub mod exit_code {
    pub const OK: u8 = 0;
    pub const INVALID_INPUT: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const SERVICE: u8 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Rows, catalog items or filters that cannot be accepted.
    #[error("{0}")]
    Invalid(String),
    /// The input file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A selection plan or its audience that cannot be used (exit code 2,
    /// as contract section 12 fixes it for `offers campaign plan`).
    #[error("{0}")]
    Plan(String),
    /// Something clap cannot check is missing from the command line (a table name).
    #[error("{0}")]
    Usage(String),
    /// DynamoDB refused or failed, or rows were left unwritten.
    #[error("{0}")]
    Service(String),
    /// The temporary file of the duplicate-key check (in TMPDIR) failed.
    #[error("the duplicate-key check's temporary file failed (TMPDIR): {0}")]
    Scratch(#[source] std::io::Error),
    /// Standard output was closed or could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Invalid(_)
            | CliError::Read { .. }
            | CliError::Scratch(_)
            | CliError::Output(_) => exit_code::INVALID_INPUT,
            CliError::Usage(_) | CliError::Plan(_) => exit_code::USAGE,
            CliError::Service(_) => exit_code::SERVICE,
        }
    }

    /// A reader of our output that went away (`offers ... | head`) is not worth a message.
    pub fn is_closed_output(&self) -> bool {
        matches!(self, CliError::Output(err) if err.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// A failed DynamoDB call, with what we were doing and what to check.
impl From<CallError> for CliError {
    fn from(err: CallError) -> Self {
        let detail = match err.fault {
            Fault::TableMissing => {
                "the table does not exist here (check the region, endpoint and table names)"
                    .to_owned()
            }
            Fault::Unreachable => format!(
                "cannot reach DynamoDB (is the endpoint right? with --local, is the local stack running?): {}",
                err.error.detail()
            ),
            Fault::Other => err.error.detail().to_owned(),
        };
        CliError::Service(format!("{}: {detail}", err.doing))
    }
}
