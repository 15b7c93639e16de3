//! The audience of a plan: JSON Lines or CSV rows of `userId` and string
//! attributes, streamed (`input::open_rows`). Pass 1 checks every line and
//! finds users listed twice with bounded memory: only a 64-bit hash of each
//! user id is kept, in sorted runs that spill to a temporary file
//! (`duplicates::KeyHashes`, 8 bytes a user on disk, 1 MiB in memory);
//! the file is read again only when some hash occurs twice, to name the lines.

use crate::duplicates::{key_hash, DuplicateKeys, KeyHash, KeyHashes};
use crate::error::CliError;
use crate::input::{open_rows, read_error, ReadError, RowFormat};
use crate::progress::Progress;
use crate::validate::{ProblemCode, Problems, RowProblem};
use offers_shared::domain::ReasonCode;
pub use offers_shared::plan::audience::{read_user, AudienceUser};
use std::path::Path;

pub fn user_hash(user_id: &str) -> KeyHash {
    key_hash(user_id, "")
}

/// Pass 1's findings.
pub struct AudienceCheck {
    pub users: u64,
    pub problems: Problems,
}

/// Every line checked, and users listed twice found.
pub fn check_audience(
    path: &Path,
    format: RowFormat,
    shown: usize,
) -> Result<AudienceCheck, CliError> {
    let mut progress = Progress::new("checking the audience", None);
    let mut problems = Problems::new(shown);
    let mut hashes = KeyHashes::default();
    let mut users = 0u64;
    for result in open_rows(path, format)? {
        match result {
            Ok(row) => match read_user(&row.row) {
                Ok(user) => {
                    hashes
                        .push(user_hash(user.user_id))
                        .map_err(CliError::Scratch)?;
                    users += 1;
                }
                Err(message) => problems.add(invalid(row.line, message)),
            },
            Err(ReadError::Row { line, message }) => problems.add(invalid(line, message)),
            Err(ReadError::Io(err)) => return Err(read_error(path, err)),
        }
        progress.advance(1);
    }
    progress.finish();
    let mut duplicates = DuplicateKeys::new(hashes.duplicated().map_err(CliError::Scratch)?);
    if !duplicates.is_empty() {
        for result in open_rows(path, format)? {
            let Ok(row) = result else { continue };
            if let Ok(user) = read_user(&row.row) {
                if let Some(first) = duplicates.observe(user_hash(user.user_id), row.line) {
                    problems.add(RowProblem {
                        line: row.line,
                        code: ProblemCode::DuplicateKey,
                        message: format!("user {} is also on line {first}", user.user_id),
                    });
                }
            }
        }
    }
    Ok(AudienceCheck { users, problems })
}

fn invalid(line: u64, message: String) -> RowProblem {
    RowProblem {
        line,
        code: ProblemCode::Reason(ReasonCode::InvalidRow),
        message,
    }
}
