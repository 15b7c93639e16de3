//! `offers campaign simulate` (see below).
use crate::cli::SimulateArgs;
use crate::error::CliError;

pub fn run(_args: SimulateArgs) -> Result<(), CliError> {
    Err(CliError::Usage("not yet".into()))
}
