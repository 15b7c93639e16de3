//! `offers campaign evaluate` (see below).
use crate::cli::EvaluateArgs;
use crate::error::CliError;

pub fn run(_args: EvaluateArgs) -> Result<(), CliError> {
    Err(CliError::Usage("not yet".into()))
}
