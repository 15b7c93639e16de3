//! `offers campaign plan PLAN --audience s3://BUCKET/KEY`: the plan run by
//! the stack's state machine (template.yaml `PlanStateMachine`, a Step
//! Functions Distributed Map over the audience, each chunk a plan-chunk
//! invocation with this CLI's engine and row writer). Here: the audience
//! object is checked to exist (a missing object or no permission stops
//! before anything is written), the plan checked and stored with its
//! statistics snapshot exactly as the in-process plan stores it, then the
//! execution started and followed (progress from the map run's item
//! counts) to its summary: the chunks' reports, read from the map's result
//! files, with every malformed audience line by number. With `--local`, the
//! local stack's Step Functions stand-in and moto's S3.

use crate::aws::{Connection, Table};
use crate::cli::CampaignPlanArgs;
use crate::commands::campaign::{check_plan, plan_snapshot, store_plan, CheckedPlan};
use crate::error::CliError;
use crate::progress::Progress;
use aws_sdk_sfn::types::ExecutionStatus;
use aws_smithy_types::error::display::DisplayErrorContext;
use offers_shared::dynamo::CampaignsTable;
use offers_shared::local_conventions::{
    local_state_machine_arn, LOCAL_S3_ENDPOINT, LOCAL_STEP_FUNCTIONS_ENDPOINT, PLAN_STATE_MACHINE,
};
use offers_shared::plan::chunk::{map_input, map_input_problem, ChunkReport, Malformed};
use offers_shared::plan::rows::Tally;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Where the stack's plan state machine is (its stack output PlanStateMachineArn).
pub const STATE_MACHINE_VARIABLE: &str = "OFFERS_PLAN_STATE_MACHINE_ARN";

/// Malformed lines listed one by one in the summary; the rest counted.
const SHOWN_MALFORMED: usize = 100;

/// How often the execution is looked at while it runs.
const POLL_PERIOD: Duration = Duration::from_secs(1);

/// An audience in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Audience {
    pub bucket: String,
    pub key: String,
}

impl S3Audience {
    /// `s3://bucket/key`; `None` for a local file.
    pub fn parse(path: &Path) -> Result<Option<Self>, CliError> {
        let Some(text) = path.to_str().and_then(|text| text.strip_prefix("s3://")) else {
            return Ok(None);
        };
        match text.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Some(Self {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            })),
            _ => Err(CliError::Usage(format!(
                "{} is not an S3 object: s3://BUCKET/KEY",
                path.display()
            ))),
        }
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

fn note(text: impl std::fmt::Display) {
    eprintln!("{text}");
}

pub async fn plan(
    args: CampaignPlanArgs,
    audience: S3Audience,
    connection: &Connection,
) -> Result<(), CliError> {
    if args.dry_run || args.out.is_some() {
        return Err(CliError::Usage(
            "--dry-run and --out read a local audience file: an S3 audience is planned by the stack's state machine".into(),
        ));
    }
    let started = Instant::now();
    let state_machine = state_machine_arn(connection)?;
    let names = connection.table_names();
    let client = connection.client().await?;
    let sdk = connection.sdk_config().await?;
    let (s3, sfn) = clients(&sdk, connection.is_local());

    // The audience first: nothing is written for an object that cannot be read.
    let head = s3
        .head_object()
        .bucket(&audience.bucket)
        .key(&audience.key)
        .send()
        .await
        .map_err(|err| {
            let missing = err.as_service_error().is_some_and(|e| e.is_not_found());
            let forbidden = err
                .raw_response()
                .is_some_and(|response| response.status().as_u16() == 403);
            CliError::Plan(format!(
                "the audience {} {}: nothing written",
                audience.url(),
                if missing {
                    "does not exist (or this identity may not read it)".to_owned()
                } else if forbidden {
                    "may not be read by this identity (403 Forbidden: it needs s3:GetObject on the object, and the state machine's role on audiences/)".to_owned()
                } else {
                    format!("cannot be read: {}", DisplayErrorContext(err))
                }
            ))
        })?;
    if head.content_length() == Some(0) {
        return Err(CliError::Plan(format!(
            "the audience {} is empty (0 bytes): nothing written",
            audience.url()
        )));
    }
    // A rerun must be of the same object: its ETag and size stand in for the file's SHA-256.
    let fingerprint = format!(
        "s3 etag {} size {}",
        head.e_tag().unwrap_or_default(),
        head.content_length().unwrap_or_default()
    );

    let CheckedPlan {
        plan,
        expiry,
        definition,
    } = check_plan(&args, &client, &names).await?;
    let campaigns = CampaignsTable::new(client.clone(), names.name(Table::Campaigns)?);
    let stored = campaigns.get(&plan.campaign_id).await?;
    let snapshot = plan_snapshot(
        &plan,
        &definition,
        stored.as_ref(),
        (&client, &names),
        &fingerprint,
        args.allow_cold,
    )
    .await?;
    let input = json!({
        "campaignId": plan.campaign_id,
        "plan": plan.document,
        "ttl": expiry,
        "audience": {"bucket": audience.bucket, "key": audience.key},
    });
    // Every chunk is handed the plan and the snapshot: refused while nothing is written.
    if let Some(problem) = map_input_problem(&map_input(&input, &snapshot)) {
        return Err(CliError::Plan(format!(
            "campaign {}: {problem}: nothing written",
            plan.campaign_id
        )));
    }
    store_plan(&campaigns, stored, &definition, snapshot, &fingerprint).await?;
    let execution = sfn
        .start_execution()
        .state_machine_arn(&state_machine)
        .input(input.to_string())
        .send()
        .await
        .map_err(|err| {
            CliError::Service(format!(
                "starting the plan's state machine {state_machine}: {} (the definition and snapshot are stored: run the same command again)",
                DisplayErrorContext(err)
            ))
        })?;
    let execution_arn = execution.execution_arn().to_owned();
    note(format!(
        "plan {}: execution {execution_arn} started",
        plan.campaign_id
    ));

    let described = follow(&sfn, &execution_arn).await?;
    match described.status() {
        ExecutionStatus::Succeeded => {}
        status => {
            let error = described.error().unwrap_or_default();
            let cause = described.cause().unwrap_or_default();
            let message = format!(
                "the plan's execution {}: {error}: {cause}",
                status.as_str().to_lowercase()
            );
            // The audience could not be read: no chunk ran, nothing was written.
            return Err(if error == "States.ItemReaderFailed" {
                CliError::Plan(message)
            } else {
                CliError::Service(format!(
                    "{message} (rows of chunks that ran are written; running the same command again writes the same rows)"
                ))
            });
        }
    }
    let output: Value = described
        .output()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    let reports = chunk_reports(&s3, &output).await?;
    let mut tally = Tally::new(plan.pool.len());
    let mut written = 0;
    let mut malformed: Vec<Malformed> = Vec::new();
    let mut malformed_count = 0;
    for report in &reports {
        tally.merge(&report.tally());
        written += report.written;
        malformed_count += report.malformed_count;
        malformed.extend(report.malformed.iter().cloned());
    }
    malformed.sort_by_key(|line| line.line);
    for line in tally.summary(&plan) {
        note(line);
    }
    note(format!(
        "{} users in {} chunks, {} rows written; {:.1} s",
        tally.users,
        reports.len(),
        written,
        started.elapsed().as_secs_f64()
    ));
    if malformed_count > 0 {
        for line in malformed.iter().take(SHOWN_MALFORMED) {
            note(format!("line {}: {}", line.line, line.message));
        }
        if malformed_count > SHOWN_MALFORMED as u64 {
            note(format!(
                "... and {} more",
                malformed_count - SHOWN_MALFORMED as u64
            ));
        }
        return Err(CliError::Invalid(format!(
            "{malformed_count} lines of the audience {} are malformed and were not planned (listed above); every other user's rows are written",
            audience.url()
        )));
    }
    Ok(())
}

/// The state machine: the local stand-in's with --local, else the stack
/// output's, from the environment.
fn state_machine_arn(connection: &Connection) -> Result<String, CliError> {
    if connection.is_local() {
        return Ok(local_state_machine_arn(PLAN_STATE_MACHINE));
    }
    std::env::var(STATE_MACHINE_VARIABLE).map_err(|_| {
        CliError::Usage(format!(
            "the plan's state machine is unknown: set {STATE_MACHINE_VARIABLE} (stack output PlanStateMachineArn)"
        ))
    })
}

/// S3 and Step Functions clients: with --local, moto and the stand-in;
/// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_SFN win, as for any SDK. An S3
/// endpoint of one's own (moto, MinIO) is addressed path-style: it serves
/// every bucket on its one address.
fn clients(sdk: &aws_config::SdkConfig, local: bool) -> (aws_sdk_s3::Client, aws_sdk_sfn::Client) {
    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let mut s3 = aws_sdk_s3::config::Builder::from(sdk);
    let mut sfn = aws_sdk_sfn::config::Builder::from(sdk);
    let s3_endpoint =
        variable("AWS_ENDPOINT_URL_S3").or_else(|| local.then(|| LOCAL_S3_ENDPOINT.to_owned()));
    if let Some(endpoint) = s3_endpoint {
        s3 = s3.endpoint_url(endpoint).force_path_style(true);
    }
    let sfn_endpoint = variable("AWS_ENDPOINT_URL_SFN")
        .or_else(|| local.then(|| LOCAL_STEP_FUNCTIONS_ENDPOINT.to_owned()));
    if let Some(endpoint) = sfn_endpoint {
        sfn = sfn.endpoint_url(endpoint);
    }
    (
        aws_sdk_s3::Client::from_conf(s3.build()),
        aws_sdk_sfn::Client::from_conf(sfn.build()),
    )
}

/// Follows the execution to its end, drawing the map run's item counts.
async fn follow(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput, CliError> {
    let service = |what: &str, err: String| {
        CliError::Service(format!(
            "following the execution {execution_arn} ({what}): {err}; it goes on: see it in the Step Functions console"
        ))
    };
    let mut progress: Option<(Progress, u64)> = None;
    loop {
        let described = sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|err| service("DescribeExecution", DisplayErrorContext(err).to_string()))?;
        let map_runs = sfn
            .list_map_runs()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|err| service("ListMapRuns", DisplayErrorContext(err).to_string()))?;
        if let Some(run) = map_runs.map_runs().first() {
            let run = sfn
                .describe_map_run()
                .map_run_arn(run.map_run_arn())
                .send()
                .await
                .map_err(|err| service("DescribeMapRun", DisplayErrorContext(err).to_string()))?;
            if let Some(counts) = run.item_counts() {
                let done = (counts.succeeded() + counts.failed()).max(0) as u64;
                let (bar, shown) = progress.get_or_insert_with(|| {
                    (
                        Progress::new("planning users", Some(counts.total().max(0) as u64)),
                        0,
                    )
                });
                if done > *shown {
                    bar.advance(done - *shown);
                    *shown = done;
                }
            }
        }
        if described.status() != &ExecutionStatus::Running {
            if let Some((bar, _)) = progress.as_mut() {
                bar.finish();
            }
            return Ok(described);
        }
        tokio::time::sleep(POLL_PERIOD).await;
    }
}

/// Every chunk's report, from the map's result files (`manifest.json` and
/// the `SUCCEEDED_n.json` it lists).
async fn chunk_reports(
    s3: &aws_sdk_s3::Client,
    output: &Value,
) -> Result<Vec<ChunkReport>, CliError> {
    let details = &output["ResultWriterDetails"];
    let (Some(bucket), Some(key)) = (details["Bucket"].as_str(), details["Key"].as_str()) else {
        return Err(CliError::Service(format!(
            "the execution's output names no result files: {output}"
        )));
    };
    let manifest = read_json(s3, bucket, key).await?;
    let mut reports = Vec::new();
    for file in manifest["ResultFiles"]["SUCCEEDED"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(key) = file["Key"].as_str() else {
            continue;
        };
        for entry in read_json(s3, bucket, key)
            .await?
            .as_array()
            .into_iter()
            .flatten()
        {
            let report = entry["Output"]
                .as_str()
                .and_then(|text| serde_json::from_str::<ChunkReport>(text).ok())
                .ok_or_else(|| {
                    CliError::Service(format!(
                        "a chunk's result in s3://{bucket}/{key} is not a plan-chunk report"
                    ))
                })?;
            reports.push(report);
        }
    }
    Ok(reports)
}

async fn read_json(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Value, CliError> {
    let failed = |why: String| CliError::Service(format!("reading s3://{bucket}/{key}: {why}"));
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| failed(DisplayErrorContext(err).to_string()))?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|err| failed(err.to_string()))?
        .into_bytes();
    serde_json::from_slice(&bytes).map_err(|err| failed(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_audiences_are_told_from_files() {
        assert_eq!(
            S3Audience::parse(Path::new("s3://plans/audiences/a.jsonl")).expect("valid"),
            Some(S3Audience {
                bucket: "plans".into(),
                key: "audiences/a.jsonl".into()
            })
        );
        assert_eq!(
            S3Audience::parse(Path::new("audience.jsonl")).expect("a file"),
            None
        );
        for bad in ["s3://", "s3://bucket", "s3://bucket/", "s3:///key"] {
            assert!(S3Audience::parse(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
