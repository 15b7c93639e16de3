//! offers: the command line of campaign tools and operators (see docs/cli.md).

use offers_cli::cli::Cli;
use offers_cli::error::exit_code;
use std::process::ExitCode;

fn main() -> ExitCode {
    // clap prints usage errors and exits with 2 (0 for --help).
    let cli = Cli::parse_checked();
    // One thread is plenty: the work is waiting on DynamoDB.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("offers: cannot start: {err}");
            return ExitCode::from(exit_code::SERVICE);
        }
    };
    match runtime.block_on(offers_cli::run(cli)) {
        Ok(()) => ExitCode::from(exit_code::OK),
        Err(err) if err.is_closed_output() => ExitCode::from(exit_code::OK),
        Err(err) => {
            eprintln!("offers: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
