//! The command line, as clap reads it. Every command and subcommand has `--help`.

use crate::input::RowFormat;
use clap::{Args, CommandFactory, Parser, Subcommand};
use offers_shared::domain::rejection::UnknownReasonCode;
use offers_shared::domain::ReasonCode;
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Tables: with --local, offers-local-<LogicalId> on DynamoDB Local. Otherwise
PENDING_TABLE_NAME, LOYALTY_OFFERS_TABLE_NAME, OFFER_CATALOG_TABLE_NAME,
REJECTED_TABLE_NAME, CAMPAIGN_STATS_TABLE, LOYALTY_TRANSACTIONS_TABLE_NAME and
CAMPAIGNS_TABLE_NAME (the stack outputs), else --table-prefix P for P<LogicalId>.

Exit codes: 0 ok, 1 invalid input, 2 command-line usage (or a table name
missing), 3 AWS/service failure (or rows left unwritten). See docs/cli.md.";

#[derive(Debug, Parser)]
#[command(
    name = "offers",
    version,
    about = "Personalized offers: assign pending rows, load the catalog, retry rejections, status",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments; exits as clap does (2) on misuse.
    pub fn parse_checked() -> Self {
        let cli = Self::parse();
        if let Err(err) = cli.check() {
            err.exit();
        }
        cli
    }

    /// What clap does not check for global options given after the
    /// subcommand: `--local` fixes region, credentials and table names.
    pub fn check(&self) -> Result<(), clap::Error> {
        let connection = &self.connection;
        let conflicting = [
            ("--region", connection.region.is_some()),
            ("--profile", connection.profile.is_some()),
            ("--table-prefix", connection.table_prefix.is_some()),
        ];
        match conflicting.iter().find(|(_, given)| *given) {
            Some((option, _)) if connection.local => Err(Self::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                format!("--local cannot be used with {option}: the local stack fixes region, credentials and table names"),
            )),
            _ => Ok(()),
        }
    }
}

/// Where the tables are. Without `--local`, the standard AWS configuration
/// (environment, profiles, AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE) applies.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnectionArgs {
    /// The local stack: DynamoDB Local at http://127.0.0.1:8000 (or --endpoint-url),
    /// region us-east-1, fake credentials, tables offers-local-<LogicalId>
    #[arg(long, global = true)]
    pub local: bool,

    /// DynamoDB endpoint, as the AWS CLI's --endpoint-url (wins over AWS_ENDPOINT_URL)
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// AWS region (wins over AWS_REGION and the profile's)
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,

    /// AWS profile of ~/.aws/config (wins over AWS_PROFILE)
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// Tables are named <P><LogicalId> (dev- gives dev-PendingPersonalizedOffersTable, ...);
    /// the *_TABLE_NAME variables win over it
    #[arg(long, global = true, value_name = "P")]
    pub table_prefix: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bulk-insert pending rows (JSON Lines or CSV) into the pending table
    ///
    /// Pass 1 checks every row as the dispatcher does (shape, dates, expired,
    /// challenge; not the catalog) and finds keys used twice: if any row is
    /// invalid, all problems are listed by line and nothing is written, unless
    /// --skip-invalid. Pass 2 writes the valid rows with BatchWriteItem, 25 a
    /// call, retrying throttled ones with backoff. The file is streamed, never
    /// loaded whole.
    Assign(AssignArgs),
    /// The catalog of config offers and offer templates
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Pending rows the dispatcher rejected
    #[command(subcommand)]
    Rejections(RejectionsCommand),
    /// Counts of pending rows, offers, rejections and failures (scans every table)
    ///
    /// Scans the pending, offers and rejected tables (Select COUNT, or a
    /// projection of the one counted attribute): it reads every item, so it
    /// takes time and read capacity on large tables.
    Status(StatusArgs),
    /// Stream batches the dispatcher gave up on (local stack only)
    #[command(subcommand)]
    Failures(FailuresCommand),
    /// Rows of the pending table
    #[command(subcommand)]
    Pending(PendingCommand),
    /// A campaign's statistics: per offer and in total, as the support API has them
    ///
    /// One Query of the campaign statistics table. Prints a table; --json prints
    /// what the support API answers plus the redemptions by day and, where the
    /// campaign used selection, the lift of selected over holdout; --html writes a
    /// self-contained page with charts (a funnel per offer, redemptions over time).
    Report(ReportArgs),

    /// Completed orders in the transactions table (what the ordering backend writes)
    #[command(subcommand)]
    Transactions(TransactionsCommand),

    /// The campaign webhook (POST /campaigns/webhook), as marketing platforms call it
    #[command(subcommand)]
    Webhook(WebhookCommand),

    /// Choose offers for an audience (plan), try the engine on a synthetic world
    /// (simulate) or on the Open Bandit Dataset (evaluate); see docs/selection.md
    #[command(subcommand)]
    Campaign(CampaignCommand),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The campaign's id (campaignId of its pending rows)
    pub campaign: String,

    /// One JSON object instead of the table
    #[arg(long)]
    pub json: bool,

    /// Also write an HTML page with the charts to FILE (no scripts, no network)
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TransactionsCommand {
    /// Write completed orders, as the ordering backend does: each advances its
    /// user's frequency challenges (through the table's stream)
    ///
    /// One transaction from the options (--user, --total-cost, ...), or every
    /// line of a JSON Lines FILE ({transactionId, userId, totalCost,
    /// occurredAt, storeId?, serviceMode?}). Every transaction is checked as
    /// the challenge progress function reads it; if any is invalid, all
    /// problems are listed and nothing is written. A transactionId already in
    /// the table is left as it is (reported), never overwritten.
    Add(TransactionsAddArgs),
}

#[derive(Debug, Args)]
pub struct TransactionsAddArgs {
    /// JSON Lines, one transaction a line (instead of --user and --total-cost)
    #[arg(conflicts_with_all = ["user_id", "total_cost", "occurred_at", "store_id", "service_mode", "transaction_id"])]
    pub file: Option<PathBuf>,

    /// The customer's user id
    #[arg(
        long = "user",
        value_name = "USER_ID",
        required_unless_present = "file",
        requires = "total_cost"
    )]
    pub user_id: Option<String>,

    /// The order's total (a number >= 0)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub total_cost: Option<f64>,

    /// When the order was completed, ISO-8601 with an offset (default: now)
    #[arg(long, value_name = "TIME")]
    pub occurred_at: Option<String>,

    /// The store
    #[arg(long = "store", value_name = "STORE_ID")]
    pub store_id: Option<String>,

    /// pickup, delivery, ...
    #[arg(long, value_name = "MODE")]
    pub service_mode: Option<String>,

    /// The transaction's id (default: a new UUID)
    #[arg(long = "id", value_name = "TRANSACTION_ID")]
    pub transaction_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Sign a body ({"assignments": [...]}) and print a ready curl line
    ///
    /// The signature is X-Offers-Signature: t=<now>,v1=<hex HMAC-SHA256 of
    /// "<t>.<body>">, with the secret from --secret-env or --secret-file (with
    /// --local and neither: the local stack's fake secret). The curl line
    /// sends the file's bytes exactly (--data-binary), within 300 s.
    Sign(WebhookSignArgs),
}

#[derive(Debug, Args)]
pub struct WebhookSignArgs {
    /// The request body, sent as it is
    pub file: PathBuf,

    /// The environment variable holding the shared secret
    #[arg(long, value_name = "VAR", conflicts_with = "secret_file")]
    pub secret_env: Option<String>,

    /// A file holding the shared secret (one trailing newline is ignored)
    #[arg(long, value_name = "F")]
    pub secret_file: Option<PathBuf>,

    /// X-Offers-Delivery (default: derived from the body, so that signing the
    /// same file again makes a redelivery)
    #[arg(long, value_name = "ID")]
    pub delivery: Option<String>,

    /// The webhook's URL (default with --local: the local stack's)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Print the two headers only, one per line
    #[arg(long)]
    pub headers: bool,
}

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Choose k offers of the plan's pool for each user and write them as pending rows
    ///
    /// The plan is checked against the catalog (as the dispatcher checks rows),
    /// the statistics are read once, the audience is checked line by line
    /// (users listed twice included): any problem is listed and nothing is
    /// written (exit code 2). Then each user gets k offers, ranked, each row
    /// with `selection` {policy, propensity, holdout, context}, written with
    /// BatchWriteItem as `offers assign` writes. Same plan, statistics and
    /// seed: same rows.
    Plan(CampaignPlanArgs),
    /// Compare the engine with context-free Thompson sampling, most-popular,
    /// uniform random and the oracle on a synthetic world (no AWS access)
    Simulate(SimulateArgs),
    /// Replay the engine on Open Bandit Dataset logs: IPW and self-normalised
    /// IPW estimates with bootstrap 95% intervals (no AWS access)
    Evaluate(EvaluateArgs),
    /// Store a campaign definition (alwaysOn or manual) from a JSON FILE
    ///
    /// Checked whole first (each invalid field named; an always-on pool
    /// checked against the catalog as the dispatcher checks rows): if
    /// anything is wrong, nothing is stored (exit code 1). The same
    /// campaignId again replaces the definition as its next version; the
    /// earlier versions are kept (the last 4), used budget counters and the
    /// pause are left as they are.
    Put(CampaignPutArgs),
    /// The stored campaigns: mode, status (now), version, budget
    List(CampaignListArgs),
    /// Pause a campaign: no new always-on offers until it is resumed
    Pause(CampaignIdArgs),
    /// Resume a paused campaign
    Resume(CampaignIdArgs),
}

#[derive(Debug, Args)]
pub struct CampaignPutArgs {
    /// The definition: JSON {campaignId, mode: "alwaysOn" | "manual", ...} (docs/cli.md)
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct CampaignListArgs {
    /// [{campaignId, mode, status, version, budget?}] instead of the table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CampaignIdArgs {
    /// The campaign's id
    pub campaign: String,
}

#[derive(Debug, Args)]
pub struct CampaignPlanArgs {
    /// The plan: JSON {campaignId, pool: [{offerId, templateId?, rules?}], slots,
    /// startDate, expiryDate, holdout?, seed?, reward?, prior?}
    pub plan: PathBuf,

    /// The users: JSON Lines or CSV of userId and string attributes (tier, region, ...)
    #[arg(long, value_name = "FILE")]
    pub audience: PathBuf,

    /// The audience's format (default: from its extension)
    #[arg(long, value_enum)]
    pub format: Option<RowFormat>,

    /// Write nothing; print the pending rows on stdout as JSON Lines
    #[arg(long)]
    pub dry_run: bool,

    /// Write the pending rows to FILE as JSON Lines instead of the pending table
    #[arg(long, value_name = "FILE", conflicts_with = "dry_run")]
    pub out: Option<PathBuf>,

    /// Go on with priors only when the statistics are missing or unreadable
    #[arg(long)]
    pub allow_cold: bool,

    /// BatchWriteItem calls (25 rows each) in flight at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Users, arriving in daily batches [default: 200,000; behaviour: 20,000,
    /// each visiting 2 to 6 times]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub users: Option<u64>,

    /// The world's and the policies' seed
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Days the users arrive over (learning between days) [default: 20;
    /// behaviour: 28, the span of the visits, learning every minute]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub days: Option<u64>,

    /// The world: segments (each its own best offers), long-pool (48 sparse
    /// offers, a few good ones), shift (the best offers change halfway) or
    /// behaviour (an always-on campaign, visit by visit: the offer a user
    /// redeems depends on their mode, spend and time of day)
    #[arg(long, default_value = "segments")]
    pub world: String,

    /// Override an engine setting for every Thompson-sampling policy, to
    /// compare variants: NAME=VALUE (halfLife, z, ramp, confidence,
    /// attributeWeight, priorWeight, exploration, changeZ, offerZ); repeatable
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub settings: Vec<String>,

    /// Also write the world to FILE as JSON Lines (a header, then per user
    /// its day, segment, tier and the offers it would redeem), so that
    /// another learner (scripts/bench-vw.sh) plays the same users and draws
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,

    /// One JSON object instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The Open Bandit Dataset directory: holds random/ and bts/ (each with all/, men/, women/)
    #[arg(long, value_name = "DIR")]
    pub obd: PathBuf,

    /// The campaign: all, men or women
    #[arg(long, default_value = "all")]
    pub campaign: String,

    /// Bootstrap resamples for the intervals
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub bootstrap: u32,

    /// Seed of the engine and the bootstrap
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Rankings per context of the replayed engine (its mixture's size)
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub draws: u32,

    /// {"policies": [{name, ipw, snipw, ci95}], "logged": [{name, clickRate}]}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AssignArgs {
    /// The rows: JSON Lines (.jsonl, .ndjson) or CSV (.csv) with a header row
    pub file: PathBuf,

    /// The file's format (default: from its extension)
    #[arg(long, value_enum)]
    pub format: Option<RowFormat>,

    /// Validate and report; write nothing (no AWS access needed)
    #[arg(long)]
    pub dry_run: bool,

    /// Write the valid rows and report the invalid ones, instead of writing nothing
    #[arg(long)]
    pub skip_invalid: bool,

    /// BatchWriteItem calls (25 rows each) in flight at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Validate config offers and templates (links included), then write them all
    ///
    /// Every item is checked first: known kind and rule types, unique ids, each
    /// template's configOfferId a config offer and each config offer's
    /// templateId a template linked back to it, in the file or the catalog
    /// table. Nothing is written if any item has a problem: all are listed.
    Load(CatalogLoadArgs),
}

#[derive(Debug, Args)]
pub struct CatalogLoadArgs {
    /// A JSON array of catalog items (as events/sample-catalog.json) or JSON Lines
    pub file: PathBuf,

    /// Validate (reading the catalog table for links) and report; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum RejectionsCommand {
    /// List rejected rows (Query with --user, else Scan)
    List(RejectionsListArgs),
    /// Re-insert rejected rows into the pending table once their problem is fixed
    ///
    /// Each match is one transaction: put the original row into the pending
    /// table unless a row of its key is there, and delete the rejection. Rows
    /// still invalid on their own (e.g. expired), or stored unreadable, are
    /// skipped and reported. A filter or --all is required.
    Retry(RejectionsRetryArgs),
}

#[derive(Debug, Args)]
pub struct RejectionFilterArgs {
    /// Only this reason code (invalid_row, invalid_dates, expired, unknown_offer,
    /// missing_template, unknown_template, template_mismatch, missing_rule,
    /// unknown_rule, invalid_rule_value, invalid_challenge, frequency_mismatch,
    /// invalid_transaction)
    #[arg(long, value_name = "CODE", value_parser = parse_reason_code)]
    pub reason: Option<ReasonCode>,

    /// Only this user's rejections
    #[arg(long = "user", value_name = "USER_ID")]
    pub user_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct RejectionsListArgs {
    #[command(flatten)]
    pub filter: RejectionFilterArgs,

    /// At most N rejections
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,

    /// JSON Lines: each stored item, attribute names as stored
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RejectionsRetryArgs {
    #[command(flatten)]
    pub filter: RejectionFilterArgs,

    /// Only these rejections (repeatable)
    #[arg(long = "id", value_name = "REJECTION_ID")]
    pub ids: Vec<String>,

    /// Retry every rejection (required when no filter is given)
    #[arg(long, conflicts_with_all = ["reason", "user_id", "ids"])]
    pub all: bool,

    /// Report what would be retried or skipped; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON object instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum FailuresCommand {
    /// The local on-failure records (against AWS they are in the SQS queue OfferDispatcherFailureQueue)
    List(FailuresListArgs),
}

#[derive(Debug, Args)]
pub struct FailuresListArgs {
    /// JSON Lines: each stored record
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PendingCommand {
    /// Make pending rows new INSERTs (delete, put back) so that the dispatcher handles them again
    Redrive(PendingRedriveArgs),
}

/// Only for rows whose stream records Lambda has given up on: the ones in the
/// on-failure destination (SQS OfferDispatcherFailureQueue; locally
/// `offers --local failures list`). A record that is still being retried must
/// not be redriven: it and the new INSERT would make two offers. See
/// docs/runbook.md.
#[derive(Debug, Args)]
pub struct PendingRedriveArgs {
    /// Only this user's pending rows
    #[arg(long = "user", value_name = "USER_ID")]
    pub user_id: Option<String>,

    /// Only these sort keys of --user's rows (repeatable)
    #[arg(long = "sort-key", value_name = "SORT_KEY", requires = "user_id")]
    pub sort_keys: Vec<String>,

    /// Every pending row (required when --user is not given)
    #[arg(long, conflicts_with_all = ["user_id", "sort_keys"])]
    pub all: bool,

    /// List the rows that would be redriven; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_reason_code(text: &str) -> Result<ReasonCode, String> {
    text.parse()
        .map_err(|err: UnknownReasonCode| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere_and_local_excludes_aws_options() {
        let cli = Cli::try_parse_from([
            "offers",
            "assign",
            "rows.jsonl",
            "--table-prefix",
            "dev-",
            "--region",
            "eu-west-1",
        ])
        .expect("valid");
        assert_eq!(cli.connection.table_prefix.as_deref(), Some("dev-"));
        assert_eq!(cli.connection.region.as_deref(), Some("eu-west-1"));
        let cli = Cli::try_parse_from(["offers", "--local", "status", "--table-prefix", "x"])
            .expect("parsed");
        let err = cli.check().expect_err("conflict");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--table-prefix"), "{err}");
        let cli = Cli::try_parse_from([
            "offers",
            "status",
            "--local",
            "--endpoint-url",
            "http://127.0.0.1:8001",
        ])
        .expect("parsed");
        assert!(cli.check().is_ok(), "--local may move to another port");
    }

    #[test]
    fn reason_codes_are_checked_by_the_parser() {
        let cli = Cli::try_parse_from(["offers", "rejections", "list", "--reason", "expired"])
            .expect("valid");
        match cli.command {
            Command::Rejections(RejectionsCommand::List(args)) => {
                assert_eq!(args.filter.reason, Some(ReasonCode::Expired))
            }
            other => panic!("parsed as {other:?}"),
        }
        let err = Cli::try_parse_from(["offers", "rejections", "list", "--reason", "late"])
            .expect_err("unknown code");
        assert!(err.to_string().contains("unknown_offer"), "{err}");
    }

    #[test]
    fn a_transaction_comes_from_options_or_a_file() {
        let cli = Cli::try_parse_from([
            "offers",
            "transactions",
            "add",
            "--user",
            "u1",
            "--total-cost",
            "12.5",
        ])
        .expect("valid");
        match cli.command {
            Command::Transactions(TransactionsCommand::Add(args)) => {
                assert_eq!(args.total_cost, Some(12.5));
                assert!(args.file.is_none());
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["offers", "transactions", "add", "t.jsonl"]).is_ok());
        assert!(Cli::try_parse_from(["offers", "transactions", "add"]).is_err());
        assert!(
            Cli::try_parse_from(["offers", "transactions", "add", "--user", "u1"]).is_err(),
            "a cost is required"
        );
        assert!(Cli::try_parse_from([
            "offers",
            "transactions",
            "add",
            "t.jsonl",
            "--user",
            "u1",
            "--total-cost",
            "1"
        ])
        .is_err());
    }

    #[test]
    fn retry_all_excludes_filters_and_concurrency_is_bounded() {
        assert!(
            Cli::try_parse_from(["offers", "rejections", "retry", "--all", "--user", "u"]).is_err()
        );
        assert!(Cli::try_parse_from(["offers", "assign", "f.csv", "--concurrency", "0"]).is_err());
        assert!(Cli::try_parse_from(["offers", "assign", "f.csv", "--concurrency", "64"]).is_ok());
    }
}
