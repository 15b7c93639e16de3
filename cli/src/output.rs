//! What commands print on stdout (reports, lists); progress goes to stderr.

use crate::error::CliError;
use std::io::Write;

/// Prints one line on stdout. A closed stdout ends the command.
pub fn say(text: impl std::fmt::Display) -> Result<(), CliError> {
    writeln!(std::io::stdout().lock(), "{text}").map_err(CliError::Output)
}
