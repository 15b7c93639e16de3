//! offers: the command line of campaign tools and operators.
//!
//! `main.rs` parses the arguments and maps the result to an exit code; each
//! command is in `commands`, on top of the readers (`input`), the checks
//! (`validate`, `catalog_check`) and the batch writer (`writer`).

pub mod audience;
pub mod aws;
pub mod catalog_check;
pub mod cli;
pub mod commands;
pub mod duplicates;
pub mod error;
pub mod input;
pub mod output;
pub mod plan;
pub mod progress;
pub mod report_html;
pub mod validate;
pub mod writer;

use crate::aws::Connection;
use crate::cli::{
    CampaignCommand, CatalogCommand, Cli, Command, FailuresCommand, PendingCommand,
    RejectionsCommand, TransactionsCommand, WebhookCommand,
};
use crate::error::CliError;

/// Runs the command the arguments name.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let connection = Connection::new(cli.connection);
    match cli.command {
        Command::Assign(args) => commands::assign::run(args, &connection).await,
        Command::Catalog(CatalogCommand::Load(args)) => {
            commands::catalog::load(args, &connection).await
        }
        Command::Rejections(RejectionsCommand::List(args)) => {
            commands::rejections::list(args, &connection).await
        }
        Command::Rejections(RejectionsCommand::Retry(args)) => {
            commands::rejections::retry(args, &connection).await
        }
        Command::Status(args) => commands::status::run(args, &connection).await,
        Command::Failures(FailuresCommand::List(args)) => {
            commands::failures::list(args, &connection).await
        }
        Command::Pending(PendingCommand::Redrive(args)) => {
            commands::pending::redrive(args, &connection).await
        }
        Command::Report(args) => commands::report::run(args, &connection).await,
        Command::Transactions(TransactionsCommand::Add(args)) => {
            commands::transactions::add(args, &connection).await
        }
        Command::Webhook(WebhookCommand::Sign(args)) => commands::webhook::sign(args, &connection),
        Command::Campaign(CampaignCommand::Plan(args)) => {
            commands::campaign::plan(args, &connection).await
        }
        Command::Campaign(CampaignCommand::Put(args)) => {
            commands::definitions::put(args, &connection).await
        }
        Command::Campaign(CampaignCommand::List(args)) => {
            commands::definitions::list(args, &connection).await
        }
        Command::Campaign(CampaignCommand::Pause(args)) => {
            commands::definitions::set_paused(args, true, &connection).await
        }
        Command::Campaign(CampaignCommand::Resume(args)) => {
            commands::definitions::set_paused(args, false, &connection).await
        }
        Command::Campaign(CampaignCommand::Simulate(args)) => commands::simulate::run(args),
        Command::Campaign(CampaignCommand::Evaluate(args)) => commands::evaluate::run(args),
    }
}
