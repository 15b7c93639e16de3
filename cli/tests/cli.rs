//! The built `offers` binary against the real DynamoDB Local: tables from
//! template.yaml (the test bed's own prefix), rows read back with the SDK.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
mod support;

use offers_integration_tests::*;
use offers_local::conventions::{LOCAL_ON_FAILURE_TABLE, LOCAL_TABLE_PREFIX};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{audience, campaign_plan, path_str, put_learning_counters, run, write_file};

type Item = HashMap<String, AttributeValue>;

/// What a run of the binary gave.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `offers` with the standard AWS settings pointing at DynamoDB Local,
/// none of the caller's AWS or table variables, and fake keys.
fn run_offers(args: &[&str]) -> Run {
    let (code, stdout, stderr) = run(offers_command(args));
    Run {
        code,
        stdout,
        stderr,
    }
}

/// `offers ARGS` as [`run_offers`] runs it, to be started by the caller.
fn offers_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_offers"));
    for variable in [
        "PENDING_TABLE_NAME",
        "LOYALTY_OFFERS_TABLE_NAME",
        "OFFER_CATALOG_TABLE_NAME",
        "REJECTED_TABLE_NAME",
        "CAMPAIGN_STATS_TABLE",
        "LOYALTY_TRANSACTIONS_TABLE_NAME",
        "CAMPAIGNS_TABLE_NAME",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        command.env_remove(variable);
    }
    command
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "fake")
        .env("AWS_SECRET_ACCESS_KEY", "fake")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

/// `offers --endpoint-url <DynamoDB Local> --region us-east-1 --table-prefix <the bed's> ARGS`.
fn offers(bed: &TestBed, args: &[&str]) -> Run {
    run_offers(
        &bed_args(bed, args)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
}

/// The arguments of [`offers`].
fn bed_args(bed: &TestBed, args: &[&str]) -> Vec<String> {
    let prefix = bed
        .table(PENDING)
        .strip_suffix(PENDING)
        .expect("the bed's tables are <prefix><LogicalId>")
        .to_owned();
    let endpoint = shared_dynamodb().endpoint();
    let mut all = vec![
        "--endpoint-url",
        endpoint.as_str(),
        "--region",
        "us-east-1",
        "--table-prefix",
        prefix.as_str(),
    ];
    all.extend_from_slice(args);
    all.into_iter().map(str::to_owned).collect()
}

fn jsonl(rows: &[Value]) -> String {
    rows.iter().map(|row| format!("{row}\n")).collect()
}

/// Every item of a table with its DynamoDB types.
async fn raw_items(bed: &TestBed, logical_id: &str) -> Vec<Item> {
    let page = bed
        .client
        .scan()
        .table_name(bed.table(logical_id))
        .send()
        .await
        .expect("scan");
    assert!(page.last_evaluated_key().is_none(), "one page in tests");
    page.items().to_vec()
}

fn pending_item(items: &[Item], sort_key: &str) -> Item {
    items
        .iter()
        .find(|item| item.get("sortKey") == Some(&AttributeValue::S(sort_key.to_owned())))
        .cloned()
        .unwrap_or_else(|| panic!("no pending row {sort_key} in {items:?}"))
}

fn as_item(value: Value) -> Item {
    serde_dynamo::to_item(value).expect("item")
}

/// The row as `offers assign` writes it: with the assignmentId it derives.
fn with_assignment_id(row: Value) -> Value {
    let mut row = object(row);
    offers_cli::commands::assign::with_assignment_id(&mut row);
    Value::Object(row)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jsonl_file_is_assigned_with_the_contract_types() {
    let bed = TestBed::new().await;
    let plain = fries_row("user-a", "camp-1+co-fries");
    let challenge = seed_challenge_row(&future_date(60));
    let file = write_file("assign.jsonl", &jsonl(&[plain.clone(), challenge.clone()]));

    let run = offers(&bed, &["assign", path_str(&file)]);

    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("rows read 2, valid 2, invalid 0, written 2"),
        "{run:?}"
    );
    let items = raw_items(&bed, PENDING).await;
    assert_eq!(items.len(), 2);
    let written = pending_item(&items, "camp-1+co-fries");
    assert_eq!(
        written,
        as_item(with_assignment_id(plain)),
        "exactly the row given, with its assignmentId"
    );
    assert!(matches!(written["rank"], AttributeValue::N(_)));
    assert!(matches!(written["ttl"], AttributeValue::N(_)));
    assert!(matches!(written["rules"], AttributeValue::M(_)));
    let sort_key = challenge["sortKey"].as_str().unwrap_or_default().to_owned();
    let written = pending_item(&items, &sort_key);
    assert_eq!(
        written["challengeStatus"],
        AttributeValue::S(SEED_STATUS.to_owned()),
        "the challenge stays JSON text"
    );
    assert_eq!(written, as_item(with_assignment_id(challenge)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_file_is_assigned_with_typed_cells_and_empty_cells_absent() {
    let bed = TestBed::new().await;
    let expiry = future_date(30);
    let csv = format!(
        "userId,sortKey,offerId,campaignId,ttl,startDate,expiryDate,rank,rules,challengeType,challengeStatus,frequency,taskId\n\
         user-c,camp-2+co-fries,co-fries,camp-2,1900000000,2024-01-01T00:00:00Z,{expiry},3,\"{{\"\"minimumSpend\"\": 4.5}}\",,,,\n\
         {SEED_USER},task-1+x,{SEED_OFFER},,,2024-01-01T00:00:00+00:00,{expiry},12,,frequency,\"{status}\",{SEED_OFFER},task-1\n",
        status = SEED_STATUS.replace('"', "\"\"")
    );
    let file = write_file("assign.csv", &csv);

    let run = offers(&bed, &["assign", path_str(&file)]);

    assert_eq!(run.code, 0, "{run:?}");
    let items = raw_items(&bed, PENDING).await;
    assert_eq!(items.len(), 2);
    assert_eq!(
        pending_item(&items, "camp-2+co-fries"),
        as_item(with_assignment_id(json!({
            "userId": "user-c", "sortKey": "camp-2+co-fries", "offerId": "co-fries",
            "campaignId": "camp-2", "ttl": 1_900_000_000, "startDate": "2024-01-01T00:00:00Z",
            "expiryDate": expiry, "rank": 3, "rules": {"minimumSpend": 4.5}
        })))
    );
    let challenge = pending_item(&items, "task-1+x");
    assert_eq!(
        challenge,
        as_item(with_assignment_id(json!({
            "userId": SEED_USER, "sortKey": "task-1+x", "offerId": SEED_OFFER,
            "startDate": "2024-01-01T00:00:00+00:00", "expiryDate": expiry, "rank": 12,
            "challengeType": "frequency", "challengeStatus": SEED_STATUS,
            "frequency": SEED_OFFER, "taskId": "task-1"
        })))
    );
    assert_eq!(challenge["rank"], AttributeValue::N("12".into()));
}

fn file_with_invalid_rows() -> String {
    let mut backwards = fries_row("user-b", "camp+backwards");
    backwards["expiryDate"] = json!("2023-01-01T00:00:00Z");
    let mut no_offer = fries_row("user-b", "camp+no-offer");
    no_offer.as_object_mut().map(|row| row.remove("offerId"));
    let mut duplicate = fries_row("user-b", "camp+first");
    duplicate["rank"] = json!(9);
    [
        fries_row("user-b", "camp+first").to_string(),
        backwards.to_string(),
        String::new(),
        no_offer.to_string(),
        "{\"userId\": ".to_owned(),
        duplicate.to_string(),
        fries_row("user-b", "camp+second").to_string(),
    ]
    .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_rows_are_refused_by_line_and_nothing_is_written() {
    let bed = TestBed::new().await;
    let file = write_file("invalid.jsonl", &file_with_invalid_rows());

    let run = offers(&bed, &["assign", path_str(&file)]);

    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "line 2: invalid_dates: expiryDate must be after startDate"
    );
    assert_eq!(lines[1], "line 4: invalid_row: offerId is required");
    assert!(
        lines[2].starts_with("line 5: invalid_row: not valid JSON"),
        "{run:?}"
    );
    assert_eq!(
        lines[3],
        "line 6: duplicate_key: the same userId and sortKey as line 1 (one would overwrite the other)"
    );
    assert!(lines[4].starts_with("rows read 6, valid 2, invalid 4, written 0"));
    assert!(run.stderr.contains("4 invalid rows"), "{run:?}");
    assert!(raw_items(&bed, PENDING).await.is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_invalid_writes_the_valid_rows_and_the_first_of_a_duplicated_key() {
    let bed = TestBed::new().await;
    let file = write_file("skip.jsonl", &file_with_invalid_rows());

    let run = offers(&bed, &["assign", "--skip-invalid", path_str(&file)]);

    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("line 6: duplicate_key"), "{run:?}");
    assert!(run.stdout.contains("written 2"), "{run:?}");
    let items = raw_items(&bed, PENDING).await;
    assert_eq!(items.len(), 2);
    assert_eq!(
        pending_item(&items, "camp+first")["rank"],
        AttributeValue::N("1".into()),
        "the first row of the key, not the duplicate"
    );
    pending_item(&items, "camp+second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_validates_and_writes_nothing() {
    let bed = TestBed::new().await;
    let rows: Vec<Value> = (0..60)
        .map(|index| fries_row("user-d", &format!("camp+{index}")))
        .collect();
    let file = write_file("dry.jsonl", &jsonl(&rows));

    let run = offers(&bed, &["assign", "--dry-run", path_str(&file)]);

    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("rows read 60, valid 60, invalid 0, written 0"),
        "{run:?}"
    );
    assert!(run.stdout.contains("dry run: nothing written"));
    assert!(raw_items(&bed, PENDING).await.is_empty());

    // The same file for real: three chunks of at most 25.
    let run = offers(&bed, &["assign", "--concurrency", "2", path_str(&file)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(raw_items(&bed, PENDING).await.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_tables_and_names_fail_with_their_exit_codes() {
    let file = write_file("one.jsonl", &jsonl(&[fries_row("user-e", "camp+1")]));
    let run = run_offers(&["assign", path_str(&file)]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("PENDING_TABLE_NAME"), "{run:?}");

    let endpoint = shared_dynamodb().endpoint();
    let run = run_offers(&[
        "--endpoint-url",
        &endpoint,
        "--region",
        "us-east-1",
        "--table-prefix",
        "no-such-stack-",
        "assign",
        path_str(&file),
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stdout.contains("not written (1 rows)"), "{run:?}");
    assert!(run.stdout.contains("\n  lines 1\n"), "{run:?}");
    assert!(run.stdout.contains("ResourceNotFoundException"), "{run:?}");
    assert!(
        run.stdout
            .contains("writing stopped: the valid rows after line 1 not attempted"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("writing stopped, 1 rows not written"),
        "{run:?}"
    );
}

fn catalog_of_new_offer() -> Value {
    json!([
        {"id": "co-new", "kind": "configOffer", "name": "New offer", "templateId": "tpl-new",
         "rules": {"minimumSpend": 3, "serviceModes": ["pickup", "delivery"]}},
        {"id": "tpl-new", "kind": "offerTemplate", "configOfferId": "co-new", "name": "New",
         "rules": [{"name": "minimumSpend", "type": "number"}]},
        {"id": "tpl-fries-2", "kind": "offerTemplate", "configOfferId": "co-fries", "rules": []}
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_load_writes_items_linked_in_the_file_or_the_table() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let file = write_file("catalog.json", &catalog_of_new_offer().to_string());

    let dry = offers(&bed, &["catalog", "load", "--dry-run", path_str(&file)]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("3 items valid"), "{dry:?}");
    let before = bed.scan(CATALOG).await.len();

    let run = offers(&bed, &["catalog", "load", path_str(&file)]);

    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("written 3 of 3 items"), "{run:?}");
    let catalog = bed.scan(CATALOG).await;
    assert_eq!(catalog.len(), before + 3);
    let stored = catalog
        .iter()
        .find(|item| item["id"] == "co-new")
        .expect("co-new stored");
    assert_eq!(
        Value::Object(stored.clone()),
        catalog_of_new_offer()[0],
        "stored as given"
    );
    let raw = raw_items(&bed, CATALOG).await;
    let template = raw
        .iter()
        .find(|item| item.get("id") == Some(&AttributeValue::S("tpl-new".into())))
        .expect("tpl-new stored");
    assert!(matches!(template["rules"], AttributeValue::L(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_with_broken_links_is_refused_whole() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let lines = [
        json!({"id": "tpl-orphan", "kind": "offerTemplate", "configOfferId": "co-missing", "rules": []}),
        json!({"id": "co-ok", "kind": "configOffer", "name": "Fine", "rules": {}}),
        json!({"id": "tpl-bad", "kind": "offerTemplate", "configOfferId": "co-ok",
               "rules": [{"name": "x", "type": "colour"}]}),
        json!({"id": "co-pointing", "kind": "configOffer", "name": "Wrong link", "templateId": "tpl-fries"}),
    ];
    let file = write_file("broken.jsonl", &jsonl(&lines));
    let before = bed.scan(CATALOG).await.len();

    let run = offers(&bed, &["catalog", "load", path_str(&file)]);

    assert_eq!(run.code, 1, "{run:?}");
    let problems: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(problems.len(), 3, "{run:?}");
    assert_eq!(
        problems[0],
        "line 1 (tpl-orphan): configOfferId co-missing is not a config offer in the file or the catalog table"
    );
    assert!(problems[1].starts_with("line 3 (tpl-bad): offer template is malformed"));
    assert_eq!(
        problems[2],
        "line 4 (co-pointing): templateId tpl-fries is linked to config offer co-fries, not to this one"
    );
    assert!(run.stderr.contains("nothing written"), "{run:?}");
    assert_eq!(bed.scan(CATALOG).await.len(), before, "nothing written");
}

fn new_offer_row(sort_key: &str, rank: i64) -> Value {
    json!({
        "userId": "user-r", "sortKey": sort_key, "offerId": "co-new", "campaignId": "camp-r",
        "startDate": "2024-01-01T00:00:00Z", "expiryDate": future_date(30), "rank": rank,
        "rules": {"minimumSpend": 6}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_is_listed_and_retried_once_the_catalog_is_fixed() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let mut stream = bed.stream().await;
    let row = new_offer_row("camp-r+co-new", 1);
    let other = new_offer_row("camp-r+co-new-2", 2);
    bed.put(PENDING, row.clone()).await;
    bed.put(PENDING, other.clone()).await;
    let records = stream.read_new().await.expect("stream");
    assert!(invoke(&bed.dispatcher(&[]), &records).await.is_empty());
    assert_eq!(bed.scan(REJECTED).await.len(), 2, "unknown_offer twice");

    let listed = offers(
        &bed,
        &["rejections", "list", "--reason", "unknown_offer", "--json"],
    );
    assert_eq!(listed.code, 0, "{listed:?}");
    let listed: Vec<Value> = listed
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|rejection| rejection["reasonCode"] == "unknown_offer"
            && rejection["offerId"] == "co-new"
            && rejection["rules"]["minimumSpend"] == 6));
    let human = offers(
        &bed,
        &["rejections", "list", "--user", "user-r", "--limit", "1"],
    );
    assert_eq!(human.code, 0, "{human:?}");
    let lines: Vec<&str> = human.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{human:?}");
    assert!(lines[0].contains("unknown_offer  userId=user-r sortKey=camp-r+co-new"));
    assert_eq!(lines[1], "1 rejections");
    let none = offers(&bed, &["rejections", "list", "--reason", "expired"]);
    assert_eq!(none.stdout, "0 rejections\n");

    let bare = offers(&bed, &["rejections", "retry"]);
    assert_eq!(bare.code, 1, "a bare retry is refused: {bare:?}");
    assert!(bare.stderr.contains("--all"));

    // A newer pending row of the second key arrives meanwhile: never clobbered.
    let newer = new_offer_row("camp-r+co-new-2", 7);
    bed.put(PENDING, newer.clone()).await;
    let catalog = write_file("fix.json", &catalog_of_new_offer().to_string());
    assert_eq!(
        offers(&bed, &["catalog", "load", path_str(&catalog)]).code,
        0
    );

    let dry = offers(
        &bed,
        &[
            "rejections",
            "retry",
            "--reason",
            "unknown_offer",
            "--dry-run",
        ],
    );
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("would retry 2"), "{dry:?}");
    assert_eq!(
        bed.scan(REJECTED).await.len(),
        2,
        "a dry run writes nothing"
    );

    let run = offers(&bed, &["rejections", "retry", "--reason", "unknown_offer"]);

    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("retried      userId=user-r sortKey=camp-r+co-new rejectionId="),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("a pending row with this key exists"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("retried 1, skipped 1 (pending row exists 1), failed 0"),
        "{run:?}"
    );
    let pending = raw_items(&bed, PENDING).await;
    assert_eq!(
        pending_item(&pending, "camp-r+co-new"),
        as_item(row),
        "the original row, without the rejection's attributes"
    );
    assert_eq!(
        pending_item(&pending, "camp-r+co-new-2"),
        as_item(newer),
        "the newer row kept"
    );
    let rejected = bed.scan(REJECTED).await;
    assert_eq!(rejected.len(), 1, "the retried rejection is gone");
    assert_eq!(rejected[0]["sortKey"], "camp-r+co-new-2");

    // The dispatcher sees the row again and, the catalog fixed, makes the offer.
    let records = stream.read_new().await.expect("stream");
    assert!(invoke(&bed.dispatcher(&[]), &records).await.is_empty());
    let offers_made = bed.scan(OFFERS).await;
    assert!(
        offers_made
            .iter()
            .any(|offer| offer["sortKey"] == "camp-r+co-new" && offer["templateId"] == "tpl-new"),
        "{offers_made:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_and_expired_rejections_are_reported_not_retried() {
    let bed = TestBed::new().await;
    bed.put(
        REJECTED,
        json!({"userId": "user-u", "rejectionId": "r-raw", "sortKey": "k-raw",
               "reasonCode": "invalid_row", "reasonMessage": "the image is not DynamoDB JSON",
               "rejectedAt": "2024-06-01T00:00:00Z", "sourceEventId": "e-1",
               "sourceSequenceNumber": "1", "unreadableRow": "{\"userId\": {\"Q\": 1}}"}),
    )
    .await;
    let mut expired = new_offer_row("k-old", 1);
    expired["expiryDate"] = json!("2024-02-01T00:00:00Z");
    let expired = object(expired);
    let mut rejection = expired.clone();
    for (name, value) in [
        ("rejectionId", "r-old"),
        ("reasonCode", "unknown_offer"),
        ("reasonMessage", "co-new is not in the catalog"),
        ("rejectedAt", "2024-01-15T00:00:00Z"),
        ("sourceEventId", "e-2"),
        ("sourceSequenceNumber", "2"),
    ] {
        rejection.insert(name.into(), json!(value));
    }
    rejection.insert("userId".into(), json!("user-u"));
    bed.put(REJECTED, Value::Object(rejection)).await;

    let run = offers(&bed, &["rejections", "retry", "--user", "user-u"]);

    assert_eq!(run.code, 0, "{run:?}");
    assert!(run
        .stdout
        .contains("sortKey=k-raw rejectionId=r-raw: stored unreadable"));
    assert!(
        run.stdout
            .contains("sortKey=k-old rejectionId=r-old: still invalid: expired:"),
        "{run:?}"
    );
    assert!(run
        .stdout
        .contains("retried 0, skipped 2 (still invalid 1, unreadable 1), failed 0"));
    assert!(bed.scan(PENDING).await.is_empty());
    assert_eq!(bed.scan(REJECTED).await.len(), 2);

    let run = offers(&bed, &["rejections", "retry", "--id", "r-raw"]);
    assert!(run.stdout.contains("skipped 1 (unreadable 1)"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_every_table() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let mut stream = bed.stream().await;
    let ids = bed
        .dispatch_rows(
            &mut stream,
            &[fries_row("user-s", "camp+1"), fries_row("user-s", "camp+2")],
        )
        .await;
    let mut support_offer = bed
        .scan(OFFERS)
        .await
        .into_iter()
        .find(|offer| offer["personalizedOfferId"] == ids["camp+1"])
        .expect("offer");
    support_offer.insert("personalizedOfferId".into(), json!(uuid_like(9)));
    support_offer.insert("source".into(), json!("support"));
    support_offer.insert("revokedAt".into(), json!("2024-06-01T00:00:00Z"));
    bed.put(OFFERS, Value::Object(support_offer)).await;
    bed.put(PENDING, fries_row("user-s", "camp+pending")).await;
    for (id, reason) in [
        ("r1", "expired"),
        ("r2", "expired"),
        ("r3", "unknown_offer"),
    ] {
        bed.put(
            REJECTED,
            json!({"userId": "user-s", "rejectionId": id, "reasonCode": reason}),
        )
        .await;
    }

    let run = offers(&bed, &["status", "--json"]);

    assert_eq!(run.code, 0, "{run:?}");
    let status: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(
        status,
        json!({
            "pendingRows": 1,
            "offers": {"total": 3, "bySource": {"campaign": 2, "support": 1}, "revoked": 1},
            "rejectedRows": {"total": 3, "byReason": {"expired": 2, "unknown_offer": 1}},
            "failures": {"where": "sqsQueue", "queue": "OfferDispatcherFailureQueue"}
        })
    );
    let text = offers(&bed, &["status"]);
    assert!(
        text.stdout
            .contains("offers          3 (campaign 2, support 1), revoked 1"),
        "{text:?}"
    );
}

fn uuid_like(n: u8) -> String {
    format!("00000000-0000-4000-8000-0000000000{n:02}")
}

/// The only test that uses the local stack's fixed names on this DynamoDB Local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_uses_the_local_stack_and_its_failure_table() {
    let bed = TestBed::new().await;
    let template = offers_local::SamTemplate::project().expect("template");
    template
        .create_tables(&bed.client, LOCAL_TABLE_PREFIX)
        .await
        .expect("local tables");
    let endpoint = shared_dynamodb().endpoint();
    let local = |args: &[&str]| {
        let mut all = vec!["--local", "--endpoint-url", endpoint.as_str()];
        all.extend_from_slice(args);
        run_offers(&all)
    };

    let missing = local(&["failures", "list"]);
    assert_eq!(missing.code, 0, "{missing:?}");
    assert!(missing.stdout.contains("does not exist"), "{missing:?}");

    let created = bed
        .client
        .create_table()
        .table_name(LOCAL_ON_FAILURE_TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await;
    if let Err(err) = created {
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()),
            "{err:?}"
        );
    }
    let record = json!({
        "id": "f-1", "timestamp": "2024-06-01T00:00:00Z", "condition": "RetryAttemptsExhausted",
        "batchSize": 3, "message": "{\"DDBStreamBatchInfo\": {}}",
        "records": "[{\"sequenceNumber\":\"100\",\"userId\":\"u1\",\"sortKey\":\"a\"}]"
    });
    bed.client
        .put_item()
        .table_name(LOCAL_ON_FAILURE_TABLE)
        .set_item(Some(as_item(record.clone())))
        .send()
        .await
        .expect("failure record");
    bed.client
        .put_item()
        .table_name(format!("{LOCAL_TABLE_PREFIX}{PENDING}"))
        .set_item(Some(as_item(fries_row("user-l", "camp+local"))))
        .send()
        .await
        .expect("pending row");

    let status = local(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let status: Value = serde_json::from_str(&status.stdout).expect("JSON");
    assert_eq!(status["pendingRows"], 1);
    assert_eq!(
        status["failures"],
        json!({"where": "localTable", "table": LOCAL_ON_FAILURE_TABLE, "batches": 1, "records": 3})
    );

    let listed = local(&["failures", "list"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    assert_eq!(
        listed.stdout,
        "2024-06-01T00:00:00Z  RetryAttemptsExhausted  batchSize=3  id=f-1\n    sequenceNumber=100 userId=u1 sortKey=a\n1 failed batches\n"
    );
    let json_lines = local(&["failures", "list", "--json"]);
    let parsed: Value = serde_json::from_str(json_lines.stdout.trim()).expect("JSON line");
    assert_eq!(parsed, record);

    let aws = offers(&bed, &["failures", "list"]);
    assert_eq!(aws.code, 1, "{aws:?}");
    assert!(aws.stderr.contains("SQS queue OfferDispatcherFailureQueue"));

    let conflict = run_offers(&["--local", "status", "--table-prefix", "x"]);
    assert_eq!(conflict.code, 2, "{conflict:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_row_is_a_new_insert_and_becomes_one_offer() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let mut stream = bed.stream().await;
    // Three rows whose INSERTs are never delivered: as if their records had
    // exhausted their retries and gone to the on-failure destination.
    for (user, sort_key) in [
        ("redrive-user", "camp+1"),
        ("redrive-user", "camp+2"),
        ("other-user", "camp+1"),
    ] {
        bed.put(PENDING, fries_row(user, sort_key)).await;
    }
    assert_eq!(inserts(&stream.read_new().await.expect("stream")).len(), 3);
    let before = bed.scan(PENDING).await;

    let bare = offers(&bed, &["pending", "redrive"]);
    assert_eq!(bare.code, 1, "{bare:?}");
    let dry = offers(
        &bed,
        &["pending", "redrive", "--user", "redrive-user", "--dry-run"],
    );
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.contains("2 pending rows would be redriven"),
        "{dry:?}"
    );
    assert!(
        stream.read_new().await.expect("stream").is_empty(),
        "a dry run changes nothing"
    );

    let run = offers(
        &bed,
        &[
            "pending",
            "redrive",
            "--user",
            "redrive-user",
            "--sort-key",
            "camp+1",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("redriven 1, already gone 0, replaced meanwhile 0"),
        "{run:?}"
    );
    let records = stream.read_new().await.expect("stream");
    let events: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["eventName"].as_str().unwrap_or_default(),
                r["dynamodb"]["Keys"]["sortKey"]["S"]
                    .as_str()
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(events, [("REMOVE", "camp+1"), ("INSERT", "camp+1")]);
    let mut after = bed.scan(PENDING).await;
    let mut before = before;
    let key = |row: &Map<String, Value>| (row["userId"].to_string(), row["sortKey"].to_string());
    after.sort_by_key(key);
    before.sort_by_key(key);
    assert_eq!(after, before, "the row is back exactly as it was");

    // Its new INSERT is dispatched like any other: one offer, row gone.
    assert!(invoke(&bed.dispatcher(&[]), &records).await.is_empty());
    let offers_made: Vec<_> = bed
        .scan(OFFERS)
        .await
        .into_iter()
        .filter(|offer| offer["userId"] == "redrive-user")
        .collect();
    assert_eq!(offers_made.len(), 1);
    assert_eq!(bed.scan(PENDING).await.len(), 2);

    // A row already gone is left alone.
    let gone = offers(&bed, &["pending", "redrive", "--user", "nobody"]);
    assert!(gone.stdout.contains("redriven 0"), "{gone:?}");
}

/// `offers report`: the counts the statistics function made from the
/// offers table's stream, as a table, as JSON (the support API's body) and
/// as an HTML page whose every offer has its funnel with bars.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_shows_a_campaigns_counts_and_charts_every_offer() {
    let bed = TestBed::new().await;
    let mut stream = bed.offers_stream().await;
    for (index, offer) in ["co-fries", "co-coffee", "co-fries", "co-shake"]
        .iter()
        .enumerate()
    {
        let mut item = json!({
            "userId": format!("r-{index}"),
            "personalizedOfferId": format!("00000000-0000-4000-8000-0000000002{index:02}"),
            "offerId": offer, "campaignId": "camp-r", "ttl": future_epoch(400)});
        if index == 0 {
            item["viewedAt"] = json!("2026-03-01T00:00:00Z");
            item["redemptionCount"] = json!(1);
            item["redemptions"] = json!({"o1": {"orderId": "o1", "totalCost": 9.99,
                "redeemedAt": "2026-03-02T10:00:00Z"}});
        }
        bed.put(OFFERS, item).await;
    }
    let records = stream.read_new().await.expect("stream");
    assert!(invoke_stats(&bed.stats(&[]), &records).await.is_empty());

    let html = write_file("report.html", "");
    let html_path = html.to_string_lossy().into_owned();
    let json_run = offers(&bed, &["report", "camp-r", "--json", "--html", &html_path]);
    assert_eq!(json_run.code, 0, "{}", json_run.stderr);
    let body: Value = serde_json::from_str(&json_run.stdout).expect("JSON");
    assert_eq!(body["totals"]["assigned"], 4);
    assert_eq!(body["totals"]["redemptions"], 1);
    assert_eq!(body["totals"]["orderValue"], 9.99);
    assert_eq!(body["redemptionsByDay"][0]["day"], "2026-03-02");

    let page = std::fs::read_to_string(&html).expect("the page");
    let mut charted: Vec<&str> = Vec::new();
    for figure in page
        .split("<figure class=\"funnel\" data-offer-id=\"")
        .skip(1)
    {
        let (id, rest) = figure.split_once("\">").expect("figure");
        let svg = rest.split_once("</figure>").expect("end").0;
        assert!(svg.starts_with("<svg"), "{id}");
        // The assigned bar (the first stage's colour) is drawn with a width.
        let bar = svg
            .split("<rect")
            .skip(1)
            .any(|rect| rect.contains("fill=\"#1F77B4\"") && !rect.contains("width=\"0\""));
        assert!(bar, "{id} has its assigned bar");
        charted.push(id);
    }
    charted.sort();
    assert_eq!(charted, ["co-coffee", "co-fries", "co-shake"]);
    assert!(page.contains("<figure class=\"timeline\"><svg"));
    assert!(!page.contains("<script"));

    let table = offers(&bed, &["report", "camp-r"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table
            .stdout
            .lines()
            .any(|line| line.starts_with("co-fries") && line.contains("9.99")),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("TOTAL"));
    // A campaign nobody counted: zeros, not an error.
    let none = offers(&bed, &["report", "never", "--json"]);
    assert_eq!(none.code, 0);
    assert!(none.stdout.contains("\"offers\":[]"), "{}", none.stdout);
}

// ------------------------------------------------------ campaign plan --

fn rows_of(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON row"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_is_written_dispatched_and_its_offers_carry_selection() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    put_learning_counters(&bed).await;
    let plan = write_file("plan-e2e.json", &campaign_plan(json!({})).to_string());
    let users = write_file("audience-e2e.jsonl", &audience(40));
    let args = [
        "campaign",
        "plan",
        path_str(&plan),
        "--audience",
        path_str(&users),
    ];

    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let first = offers(&bed, &dry);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // The tier changes offers' rates differently (coffee for gold): it ranks.
    assert!(
        first.stderr.contains("attributes: tier (z ") && first.stderr.contains("ranks offers"),
        "{}",
        first.stderr
    );
    let again = offers(&bed, &dry);
    assert_eq!(
        first.stdout, again.stdout,
        "same plan, statistics and seed: same rows"
    );
    let printed = rows_of(&first.stdout);
    assert_eq!(printed.len(), 80);
    assert!(
        raw_items(&bed, PENDING).await.is_empty(),
        "a dry run writes nothing"
    );

    // Gold users mostly get coffee first; propensities are probabilities.
    let gold_first_coffee = printed
        .iter()
        .filter(|row| {
            row["rank"] == 1
                && row["selection"]["context"]["tier"] == "gold"
                && row["selection"]["holdout"] == false
        })
        .map(|row| row["offerId"] == "co-coffee")
        .collect::<Vec<bool>>();
    assert!(!gold_first_coffee.is_empty());
    assert!(gold_first_coffee.iter().filter(|b| **b).count() * 10 >= gold_first_coffee.len() * 8);
    for row in &printed {
        let p = row["selection"]["propensity"].as_f64().expect("a number");
        assert!(p > 0.0 && p <= 1.0, "{row}");
        if row["selection"]["holdout"] == true {
            assert_eq!(row["selection"]["policy"], "uniform/1");
            let expected = if row["rank"] == 1 { 1.0 / 3.0 } else { 0.5 };
            assert!((p - expected).abs() < 1e-12, "{row}");
        }
    }

    let run = offers(&bed, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pending = bed.scan(PENDING).await;
    assert_eq!(pending.len(), 80);
    for row in &printed {
        let sort_key = row["sortKey"].as_str().unwrap_or_default();
        let stored = pending
            .iter()
            .find(|item| item["userId"] == row["userId"] && item["sortKey"] == sort_key)
            .unwrap_or_else(|| panic!("{row} written"));
        assert_eq!(
            sort_key,
            format!("camp-sel+{}", row["offerId"].as_str().unwrap_or_default())
        );
        assert_eq!(stored["rank"], row["rank"]);
        for field in ["policy", "holdout", "context"] {
            assert_eq!(
                stored["selection"][field], row["selection"][field],
                "as printed"
            );
        }
        assert_eq!(
            stored["selection"]["propensity"].as_f64(),
            row["selection"]["propensity"].as_f64()
        );
    }

    let records = bed.stream().await.read_new().await.expect("stream");
    assert!(invoke(&bed.dispatcher(&[]), &records).await.is_empty());
    let offers_made = bed.scan(OFFERS).await;
    assert_eq!(offers_made.len(), 80);
    for offer in &offers_made {
        let selection = &offer["selection"];
        assert!(selection["propensity"].as_f64().is_some(), "{offer:?}");
        assert!(selection["context"]["tier"].is_string());
        assert!(selection["policy"].is_string());
    }
    assert!(bed.scan(REJECTED).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plans_and_audiences_exit_2_and_write_nothing() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    put_learning_counters(&bed).await;
    let good_users = write_file("audience-ok.jsonl", &audience(5));
    let cases: Vec<(&str, Value, String, &str)> = vec![
        (
            "unknown",
            campaign_plan(json!({"pool": [{"offerId": "co-nope"}, {"offerId": "co-coffee"}]})),
            audience(5),
            "unknown_offer",
        ),
        (
            "rule",
            campaign_plan(json!({"pool": [{"offerId": "co-fries"}, {"offerId": "co-coffee"}]})),
            audience(5),
            "missing_rule",
        ),
        (
            "slots",
            campaign_plan(json!({"slots": 4})),
            audience(5),
            "slots",
        ),
        (
            "holdout",
            campaign_plan(json!({"holdout": 1.0})),
            audience(5),
            "holdout",
        ),
        (
            "malformed",
            campaign_plan(json!({})),
            format!(
                "{}{{\"userId\": \"x\"\n{{\"tier\": \"gold\"}}\n",
                audience(3)
            ),
            "line 4",
        ),
        (
            "duplicate",
            campaign_plan(json!({})),
            format!("{}{{\"userId\":\"user-1\"}}\n", audience(3)),
            "also on line 2",
        ),
    ];
    for (name, plan, users, expected) in cases {
        let plan = write_file(&format!("plan-{name}.json"), &plan.to_string());
        let users = write_file(&format!("audience-{name}.jsonl"), &users);
        let run = plan_run(&bed, &plan, &users);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("nothing written"),
            "{name}: {}",
            run.stderr
        );
    }
    // The malformed case names line 5 too (no userId).
    assert!(raw_items(&bed, PENDING).await.is_empty());

    // Without statistics: refused unless --allow-cold.
    let cold = TestBed::new().await;
    cold.load_sample_catalog().await;
    let plan = write_file("plan-cold.json", &campaign_plan(json!({})).to_string());
    let args = [
        "campaign",
        "plan",
        path_str(&plan),
        "--audience",
        path_str(&good_users),
    ];
    let run = offers(&cold, &args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--allow-cold"), "{}", run.stderr);
    let mut allowed = args.to_vec();
    allowed.push("--allow-cold");
    let run = offers(&cold, &allowed);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(cold.scan(PENDING).await.len(), 10);
}

// ------------------------------------------------- campaign evaluate --

/// The Open Bandit Dataset sample: `OFFERS_OBD_DIR`, else where
/// scripts/lib/obd.sh puts it (scripts/test.sh fetches it before the tests).
fn obd_dir() -> PathBuf {
    let dir = std::env::var_os("OFFERS_OBD_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/obd/open_bandit_dataset"),
        PathBuf::from,
    );
    assert!(
        dir.join("random/all/all.csv").is_file(),
        "the Open Bandit Dataset sample is missing at {}: run scripts/test.sh (or source \
         scripts/lib/prerequisites.sh and scripts/lib/obd.sh, then ensure_obd_sample)",
        dir.display()
    );
    dir
}

#[test]
fn uniform_random_on_the_random_log_reproduces_its_click_rate() {
    let dir = obd_dir();
    let run = run_offers(&[
        "campaign",
        "evaluate",
        "--obd",
        path_str(&dir),
        "--json",
        "--draws",
        "20",
        "--bootstrap",
        "200",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let logged = report["logged"]
        .as_array()
        .and_then(|logged| logged.iter().find(|entry| entry["name"] == "random"))
        .and_then(|entry| entry["clickRate"].as_f64())
        .expect("the random log's click rate");
    assert!(
        (logged - 0.0038).abs() < 1e-9,
        "38 clicks in 10,000 rounds: {logged}"
    );
    let policies = report["policies"].as_array().expect("policies");
    let names: Vec<&str> = policies.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["engine", "uniform random", "most-popular"]);
    let uniform = &policies[1];
    let (low, high) = (
        uniform["ci95"][0].as_f64().expect("low"),
        uniform["ci95"][1].as_f64().expect("high"),
    );
    assert!(low <= logged && logged <= high, "{uniform}");
    assert!((uniform["ipw"].as_f64().expect("ipw") - logged).abs() < 1e-12);
    for policy in policies {
        let ipw = policy["ipw"].as_f64().expect("a rate");
        assert!((0.0..=1.0).contains(&ipw), "{policy}");
    }
}

// ------------------------------------------------ campaign definitions --

const CAMPAIGNS: &str = "CampaignsTable";

fn past_date(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%S+0000")
        .to_string()
}

fn always_on_definition(extra: Value) -> Value {
    let mut definition = json!({
        "campaignId": "camp-ao",
        "mode": "alwaysOn",
        "pool": [
            {"offerId": "co-fries", "rules": {"minimumSpend": 4}},
            {"offerId": "co-coffee"}
        ],
        "startDate": past_date(1),
        "endDate": future_date(30),
        "validDays": 7,
        "cadence": "P1D",
        "slots": 2,
        "reward": "redeemed"
    });
    if let (Value::Object(definition), Value::Object(extra)) = (&mut definition, extra) {
        definition.extend(extra);
    }
    definition
}

fn put_definition(bed: &TestBed, name: &str, definition: &Value) -> Run {
    let file = write_file(name, &definition.to_string());
    offers(bed, &["campaign", "put", path_str(&file)])
}

fn listed(bed: &TestBed) -> Vec<Value> {
    let run = offers(bed, &["campaign", "list", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str::<Vec<Value>>(&run.stdout).expect("a JSON array")
}

fn campaign_item<'a>(items: &'a [Item], id: &str) -> &'a Item {
    items
        .iter()
        .find(|item| item.get("campaignId") == Some(&AttributeValue::S(id.to_owned())))
        .unwrap_or_else(|| panic!("no campaign {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_are_versioned_listed_paused_and_keep_their_used_budget() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;

    let run = put_definition(&bed, "ao-1.json", &always_on_definition(json!({})));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("stored as version 1"), "{run:?}");
    assert_eq!(
        listed(&bed),
        vec![
            json!({"campaignId": "camp-ao", "mode": "alwaysOn", "status": "active", "version": 1})
        ]
    );

    let budget = json!({"budget": {"offers": 20, "redemptions": 10, "discountValue": 50.5}});
    let run = put_definition(&bed, "ao-2.json", &always_on_definition(budget.clone()));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("version 2, replacing version 1"),
        "{run:?}"
    );
    // Budget counters live on the item; the budget's users ADD to them.
    bed.client
        .update_item()
        .table_name(bed.table(CAMPAIGNS))
        .key("campaignId", AttributeValue::S("camp-ao".into()))
        .update_expression("ADD usedOffers :n")
        .expression_attribute_values(":n", AttributeValue::N("7".into()))
        .send()
        .await
        .expect("use the budget");
    let run = put_definition(&bed, "ao-3.json", &always_on_definition(budget));
    assert_eq!(run.code, 0, "{run:?}");
    let listed_now = listed(&bed);
    assert_eq!(listed_now[0]["version"], 3);
    assert_eq!(
        listed_now[0]["budget"],
        json!({"offers": {"limit": 20, "used": 7}, "redemptions": {"limit": 10, "used": 0},
               "discountValue": {"limit": 50.5, "used": 0}}),
        "a put keeps what was used"
    );
    let items = raw_items(&bed, CAMPAIGNS).await;
    let history = campaign_item(&items, "camp-ao")["history"]
        .as_l()
        .expect("history")
        .clone();
    let versions: Vec<&AttributeValue> = history
        .iter()
        .map(|entry| &entry.as_m().expect("entry")["version"])
        .collect();
    assert_eq!(
        versions,
        [
            &AttributeValue::N("2".into()),
            &AttributeValue::N("1".into())
        ],
        "earlier versions kept, newest first"
    );

    // The table view, then pause and resume.
    let table = offers(&bed, &["campaign", "list"]);
    assert!(table.stdout.contains("offers 7/20"), "{table:?}");
    let run = offers(&bed, &["campaign", "pause", "camp-ao"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(listed(&bed)[0]["status"], "paused");
    let run = put_definition(&bed, "ao-4.json", &always_on_definition(json!({})));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(listed(&bed)[0]["status"], "paused", "a put keeps the pause");
    assert_eq!(offers(&bed, &["campaign", "resume", "camp-ao"]).code, 0);
    assert_eq!(listed(&bed)[0]["status"], "active");
    let too_long = "c".repeat(3_000);
    for command in ["pause", "resume"] {
        let run = offers(&bed, &["campaign", command, "camp-none"]);
        assert_eq!(run.code, 1, "{command}: {run:?}");
        assert!(run.stderr.contains("no campaign camp-none"), "{run:?}");
        let run = offers(&bed, &["campaign", command, &too_long]);
        assert_eq!(run.code, 1, "{command}: {run:?}");
        assert!(run.stderr.contains("3000 bytes"), "{run:?}");
    }

    // Manual campaigns: dates optional; statuses from the dates.
    for (id, extra, status) in [
        ("m-later", json!({"startDate": future_date(3)}), "scheduled"),
        ("m-over", json!({"endDate": past_date(1)}), "ended"),
        ("m-open", json!({"budget": {"offers": 0}}), "active"),
    ] {
        let mut definition = json!({"campaignId": id, "mode": "manual"});
        if let (Value::Object(definition), Value::Object(extra)) = (&mut definition, extra) {
            definition.extend(extra);
        }
        let run = put_definition(&bed, &format!("{id}.json"), &definition);
        assert_eq!(run.code, 0, "{run:?}");
        let all = listed(&bed);
        let shown = all
            .iter()
            .find(|view| view["campaignId"] == id)
            .expect("listed");
        assert_eq!(shown["status"], status, "{id}");
        assert_eq!(shown["mode"], "manual");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_definitions_exit_1_naming_the_field_and_store_nothing() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let cases = [
        (json!({"budget": {"offers": -1}}), "budget.offers"),
        (
            json!({"budget": {"redemptions": "ten"}}),
            "budget.redemptions",
        ),
        (
            json!({"budget": {"discountValue": "lots"}}),
            "budget.discountValue",
        ),
        (json!({"cadence": "PT30S"}), "cadence"),
        (json!({"validDays": 400}), "validDays"),
        (json!({"slots": 0}), "slots"),
        (json!({"holdout": 2}), "holdout"),
        (json!({"reward": "viewed"}), "reward"),
        (json!({"endDate": past_date(3)}), "endDate"),
        (json!({"campaignId": "c".repeat(2_000)}), "campaignId"),
        (
            json!({"pool": [{"offerId": "co-nope"}, {"offerId": "co-coffee"}]}),
            "unknown_offer",
        ),
        (
            json!({"pool": [{"offerId": "co-fries"}, {"offerId": "co-coffee"}]}),
            "missing_rule",
        ),
    ];
    for (index, (extra, named)) in cases.into_iter().enumerate() {
        let run = put_definition(
            &bed,
            &format!("bad-{index}.json"),
            &always_on_definition(extra.clone()),
        );
        assert_eq!(run.code, 1, "{extra}: {run:?}");
        assert!(
            run.stderr.contains(named),
            "{extra}: names {named}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("nothing stored"), "{}", run.stderr);
    }
    let manual = put_definition(
        &bed,
        "bad-manual.json",
        &json!({"campaignId": "m", "mode": "manual", "budget": {"offers": 1.5}}),
    );
    assert_eq!(manual.code, 1, "{manual:?}");
    assert!(manual.stderr.contains("budget.offers"), "{}", manual.stderr);
    let huge = write_file("huge.json", &"x".repeat(100_000));
    let run = offers(&bed, &["campaign", "put", path_str(&huge)]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(raw_items(&bed, CAMPAIGNS).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_each_get_their_own_version() {
    let bed = TestBed::new().await;
    let file = write_file(
        "manual-race.json",
        &json!({"campaignId": "m-race", "mode": "manual", "budget": {"offers": 5}}).to_string(),
    );
    let args = bed_args(&bed, &["campaign", "put", path_str(&file)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let children: Vec<std::process::Child> = (0..5)
        .map(|_| {
            offers_command(&args)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn offers")
        })
        .collect();
    let mut versions: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("offers ran");
            assert!(output.status.success(), "{output:?}");
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            let at = text.find("version ").expect("a version") + "version ".len();
            text[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect()
        })
        .collect();
    versions.sort();
    assert_eq!(versions, ["1", "2", "3", "4", "5"], "none lost, none twice");
    assert_eq!(listed(&bed)[0]["version"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_derives_assignment_ids_and_checks_given_ones() {
    let bed = TestBed::new().await;
    let mut given = fries_row("user-g", "camp-1+given");
    given["assignmentId"] = json!("my-own-id");
    let derived = fries_row("user-d", "camp-1+derived");
    let file = write_file("ids.jsonl", &jsonl(&[given, derived.clone()]));
    let run = offers(&bed, &["assign", path_str(&file)]);
    assert_eq!(run.code, 0, "{run:?}");
    let items = raw_items(&bed, PENDING).await;
    assert_eq!(
        pending_item(&items, "camp-1+given")["assignmentId"],
        AttributeValue::S("my-own-id".into())
    );
    let first = pending_item(&items, "camp-1+derived")["assignmentId"].clone();
    let id = first.as_s().expect("text").clone();
    assert!(!id.is_empty() && id.len() <= 128, "{id}");
    // The same file again: the same ids (a rerun makes no second offer).
    assert_eq!(offers(&bed, &["assign", path_str(&file)]).code, 0);
    let again = raw_items(&bed, PENDING).await;
    assert_eq!(
        pending_item(&again, "camp-1+derived")["assignmentId"],
        first
    );
    // Another expiry is another assignment.
    let mut later = derived;
    later["sortKey"] = json!("camp-1+later");
    let other = {
        let mut row = object(later.clone());
        offers_cli::commands::assign::with_assignment_id(&mut row);
        row["assignmentId"].clone()
    };
    later["expiryDate"] = json!(future_date(40));
    let mut row = object(later);
    offers_cli::commands::assign::with_assignment_id(&mut row);
    assert_ne!(row["assignmentId"], other);

    for bad in [json!(""), json!("x".repeat(129)), json!(12)] {
        let mut row = fries_row("user-b", "camp-1+bad");
        row["assignmentId"] = bad.clone();
        let file = write_file("bad-id.jsonl", &jsonl(&[row]));
        let run = offers(&bed, &["assign", path_str(&file)]);
        assert_eq!(run.code, 1, "{bad}: {run:?}");
        assert!(run.stdout.contains("assignmentId"), "{run:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_stores_its_definition_and_a_rerun_writes_the_same_rows() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    put_learning_counters(&bed).await;
    let plan = campaign_plan(json!({"budget": {"offers": 100}}));
    let plan_file = write_file("plan-rerun.json", &plan.to_string());
    let users = write_file("audience-rerun.jsonl", &audience(30));
    let args = [
        "campaign",
        "plan",
        path_str(&plan_file),
        "--audience",
        path_str(&users),
    ];
    let run = offers(&bed, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = bed.scan(PENDING).await;
    assert_eq!(first.len(), 60);
    for row in &first {
        let id = row["assignmentId"].as_str().expect("an assignmentId");
        assert!(!id.is_empty() && id.len() <= 128);
    }
    let ids: std::collections::HashSet<&str> = first
        .iter()
        .map(|row| row["assignmentId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids.len(), 60, "one assignment per (user, rank)");
    let shown = listed(&bed);
    assert_eq!(shown[0]["mode"], "planned");
    assert_eq!(shown[0]["status"], "active");
    assert_eq!(
        shown[0]["budget"],
        json!({"offers": {"limit": 100, "used": 0}})
    );

    // The statistics move the other way: a fresh plan would choose otherwise.
    for offer in [
        "co-fries",
        "co-coffee",
        "290fb746-9850-4994-b7d7-5630046792e1",
    ] {
        let redeemed = if offer == "co-fries" { 300 } else { 0 };
        bed.put(
            STATS,
            json!({"pk": format!("offer#{offer}"), "sk": "overall", "offerId": offer,
            "assigned": 400, "clicked": 0, "redeemed": redeemed}),
        )
        .await;
    }
    let rerun = offers(&bed, &args);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert!(
        rerun.stderr.contains("statistics snapshot"),
        "{}",
        rerun.stderr
    );
    let mut again = bed.scan(PENDING).await;
    let mut first = first;
    let key = |row: &Map<String, Value>| format!("{}|{}", row["userId"], row["sortKey"]);
    first.sort_by_key(key);
    again.sort_by_key(key);
    assert_eq!(first, again, "the same rows, byte for byte");

    // A rerun may change the budget only.
    let mut new_budget = plan.clone();
    new_budget["budget"] = json!({"offers": 150});
    let budget = write_file("plan-rerun-budget.json", &new_budget.to_string());
    let run = plan_run(&bed, &budget, &users);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(listed(&bed)[0]["version"], 2);
    assert_eq!(listed(&bed)[0]["budget"]["offers"]["limit"], 150);

    // Another plan or another audience under the same campaignId: refused.
    let mut other = plan.clone();
    other["seed"] = json!(6);
    let other_plan = write_file("plan-rerun-other.json", &other.to_string());
    let run = plan_run(&bed, &other_plan, &users);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("another plan"), "{}", run.stderr);
    let other_users = write_file("audience-rerun-other.jsonl", &audience(31));
    let run = plan_run(&bed, &budget, &other_users);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("audience"), "{}", run.stderr);
    assert_eq!(bed.scan(PENDING).await.len(), 60, "nothing written");

    // A plan's budget is checked as a definition's.
    let bad = write_file(
        "plan-bad-budget.json",
        &campaign_plan(json!({"campaignId": "camp-b", "budget": {"redemptions": -3}})).to_string(),
    );
    let run = plan_run(&bed, &bad, &users);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("budget.redemptions"), "{}", run.stderr);
    // And `put` leaves planned campaigns to their plan.
    let run = put_definition(
        &bed,
        "over-plan.json",
        &json!({"campaignId": "camp-sel", "mode": "manual"}),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("planned campaign"), "{}", run.stderr);
}

// ------------------------------------- a plan killed midway, run again --

/// Starts `offers campaign plan`, SIGKILLs it once the pending table holds
/// at least `rows` rows, and returns how many it holds then.
async fn plan_killed_after(bed: &TestBed, plan: &Path, users: &Path, rows: u64) -> u64 {
    let args = bed_args(
        bed,
        &[
            "campaign",
            "plan",
            path_str(plan),
            "--audience",
            path_str(users),
            "--concurrency",
            "1",
        ],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = offers_command(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn offers");
    loop {
        if let Some(status) = child.try_wait().expect("the plan's status") {
            panic!("the plan ended ({status}) before it could be killed midway");
        }
        let count = bed.count(PENDING).await;
        if count >= rows {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // std's kill is SIGKILL: no chance to finish a batch or clean up.
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert!(!status.success(), "killed, not finished: {status}");
    bed.count(PENDING).await
}

/// Moves the statistics, then runs the plan again to its end.
async fn rerun_with_moved_statistics(bed: &TestBed, plan: &Path, users: &Path) -> Run {
    move_statistics(bed).await;
    let rerun = plan_run(bed, plan, users);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    rerun
}

/// `offers campaign plan PLAN --audience USERS`, written to the bed's tables.
fn plan_run(bed: &TestBed, plan: &Path, users: &Path) -> Run {
    offers(
        bed,
        &[
            "campaign",
            "plan",
            path_str(plan),
            "--audience",
            path_str(users),
        ],
    )
}

/// Moves the statistics so that a fresh read would choose otherwise.
async fn move_statistics(bed: &TestBed) {
    for offer in [
        "co-fries",
        "co-coffee",
        "290fb746-9850-4994-b7d7-5630046792e1",
    ] {
        let redeemed = if offer == "290fb746-9850-4994-b7d7-5630046792e1" {
            390
        } else {
            0
        };
        bed.put(
            STATS,
            json!({"pk": format!("offer#{offer}"), "sk": "overall", "offerId": offer,
            "assigned": 400, "clicked": 0, "redeemed": redeemed}),
        )
        .await;
    }
}

fn row_key(row: &Map<String, Value>) -> String {
    format!("{}|{}", row["userId"], row["sortKey"])
}

/// Each user's rows or offers of the campaign: exactly `k`, of `k` distinct
/// offers and `k` distinct assignmentIds, for every one of `users`.
fn assert_k_distinct_per_user(items: &[Map<String, Value>], users: usize, k: usize, what: &str) {
    let mut by_user: HashMap<String, Vec<&Map<String, Value>>> = HashMap::new();
    for item in items {
        by_user
            .entry(item["userId"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(item);
    }
    assert_eq!(by_user.len(), users, "{what}: every user, none missing");
    for (user, items) in &by_user {
        let offers: std::collections::BTreeSet<&str> = items
            .iter()
            .map(|item| item["offerId"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            items.len(),
            k,
            "{what}: {user} has {} ({offers:?})",
            items.len()
        );
        assert_eq!(offers.len(), k, "{what}: {user}'s offers are distinct");
    }
}

/// A bed with the catalog and statistics, and the files of a plan of
/// `campaign` (k = 2) for `users` users.
async fn plan_bed(campaign: &str, users: usize) -> (TestBed, PathBuf, PathBuf) {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    put_learning_counters(&bed).await;
    let plan = write_file(
        &format!("plan-{campaign}.json"),
        &campaign_plan(json!({"campaignId": campaign})).to_string(),
    );
    let audience_file = write_file(&format!("audience-{campaign}.jsonl"), &audience(users));
    (bed, plan, audience_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_of_20000_users_killed_midway_and_run_again_writes_each_user_k_rows() {
    let users = 20_000;
    let (bed, plan, audience_file) = plan_bed("camp-kill", users).await;

    let at_kill = plan_killed_after(&bed, &plan, &audience_file, 3_000).await;
    assert!(at_kill < 2 * users as u64, "midway: {at_kill} rows");
    let written_before: HashMap<String, Map<String, Value>> = bed
        .scan(PENDING)
        .await
        .into_iter()
        .map(|row| (row_key(&row), row))
        .collect();
    let rerun = rerun_with_moved_statistics(&bed, &plan, &audience_file).await;
    assert!(
        rerun.stderr.contains("statistics snapshot"),
        "{}",
        rerun.stderr
    );

    let rows = bed.scan(PENDING).await;
    assert_eq!(rows.len(), 2 * users);
    assert_k_distinct_per_user(&rows, users, 2, "pending rows");
    let ids: std::collections::HashSet<&str> = rows
        .iter()
        .map(|row| row["assignmentId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids.len(), 2 * users, "one assignmentId per (user, rank)");
    for row in &rows {
        let id = row["assignmentId"].as_str().unwrap_or_default();
        assert!((1..=128).contains(&id.chars().count()), "{id}");
        if let Some(before) = written_before.get(&row_key(row)) {
            assert_eq!(
                before, row,
                "a row of the killed run is rewritten as it was"
            );
        }
    }
}

/// Hands records to the dispatcher in Lambda-sized batches, redelivering
/// failed ones as the event source mapping does.
async fn dispatch_all(bed: &TestBed, records: &[Value]) {
    let dispatcher = bed.dispatcher(&[]);
    for batch in records.chunks(100) {
        deliver_until_none_fail(batch, |left| invoke(&dispatcher, left)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_killed_midway_dispatched_and_run_again_makes_k_offers_per_user() {
    let users = 3_000;
    let (bed, plan, audience_file) = plan_bed("camp-kill-d", users).await;
    let mut stream = bed.stream().await;

    let at_kill = plan_killed_after(&bed, &plan, &audience_file, 1_000).await;
    assert!(at_kill < 2 * users as u64, "midway: {at_kill} rows");
    // Half of what the killed run wrote becomes offers before the rerun;
    // the other half is still pending when the rerun rewrites it.
    let first = stream.read_new().await.expect("stream");
    let (dispatched, undispatched) = first.split_at(first.len() / 2);
    dispatch_all(&bed, dispatched).await;
    let rerun = rerun_with_moved_statistics(&bed, &plan, &audience_file).await;
    assert!(
        rerun.stderr.contains("statistics snapshot"),
        "{}",
        rerun.stderr
    );
    dispatch_all(&bed, undispatched).await;
    let second = stream.read_new().await.expect("stream");
    dispatch_all(&bed, &second).await;

    let offers_made: Vec<Map<String, Value>> = bed
        .scan(OFFERS)
        .await
        .into_iter()
        .filter(|offer| offer.get("campaignId") == Some(&json!("camp-kill-d")))
        .collect();
    assert_k_distinct_per_user(&offers_made, users, 2, "offers");
    assert!(bed.scan(REJECTED).await.is_empty(), "no row rejected");
    assert!(bed.scan(PENDING).await.is_empty(), "every row consumed");
}

/// `campaign simulate --world behaviour`, small: a line per policy (the
/// engine with profiles first) and the JSON summary's shape. The ordering
/// itself needs a larger world: `behaviour_world`'s release test and
/// docs/selection.md.
#[test]
fn the_behaviour_world_prints_every_policy() {
    let small = [
        "campaign",
        "simulate",
        "--world",
        "behaviour",
        "--users",
        "150",
        "--days",
        "7",
    ];
    let run = run_offers(&small);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("world behaviour: 12 offers, 150 users"),
        "{run:?}"
    );
    for (line, policy) in lines[2..7].iter().zip([
        "engine with profiles",
        "engine without profiles",
        "context-free thompson",
        "uniform random",
        "oracle",
    ]) {
        assert!(line.starts_with(policy), "{line}");
        assert_eq!(line[26..].split_whitespace().count(), 5, "{line}");
    }
    let run = run_offers(&[&small[..], &["--json"]].concat());
    assert_eq!(run.code, 0, "{run:?}");
    let summary: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(summary["world"]["kind"], "behaviour");
    let policies = summary["policies"].as_array().expect("policies");
    assert_eq!(policies.len(), 5);
    let visits = summary["world"]["visits"].as_u64().expect("visits");
    assert!(policies.iter().all(|p| p["visits"] == visits), "{summary}");
    assert_eq!(policies[4]["vsOracle"], 1.0);
    let export = run_offers(&[&small[..], &["--export", "/dev/null"]].concat());
    assert_eq!(export.code, 2, "{export:?}");
}

/// `offers report` of an always-on campaign with a holdout: visits through
/// UserVisitsFunction's handler, their pending rows through the
/// dispatcher's, some offers redeemed, the offers table's stream through
/// the statistics function's; the report shows both arms per offer, the
/// lift, and each day's arms with that day's lift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_on_campaign_reports_its_arms_lift_and_days() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let definition = always_on_definition(json!({"campaignId": "camp-aor", "holdout": 0.5}));
    let run = put_definition(&bed, "aor.json", &definition);
    assert_eq!(run.code, 0, "{run:?}");

    let mut transactions = bed.transactions_stream().await;
    let mut pending = bed.stream().await;
    let mut offers_stream = bed.offers_stream().await;
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for user in 0..24 {
        let id = format!("aor-{user}");
        bed.put(
            TRANSACTIONS,
            transaction(&id, &format!("us-east-1:aor-{user}"), 14.0, &now),
        )
        .await;
    }
    let mut records = Vec::new();
    while records.len() < 24 {
        let new = transactions.read_new().await.expect("transactions stream");
        assert!(!new.is_empty(), "every transaction on the stream");
        records.extend(inserts(&new));
    }
    let visits = bed.visits(&[("ALWAYS_ON_CACHE_SECONDS", "0")]);
    deliver_until_none_fail(&records, |batch| invoke_visits(&visits, batch)).await;
    let rows = pending.read_new().await.expect("pending stream");
    let dispatcher = bed.dispatcher(&[]);
    deliver_until_none_fail(&rows, |batch| invoke(&dispatcher, batch)).await;

    // Redeem every other selected offer and one held-out one.
    let made = bed.scan(OFFERS).await;
    assert_eq!(made.len(), 24, "one offer per visit");
    let (mut selected, mut holdout) = (0, 0);
    let (mut selected_redeemed, mut holdout_redeemed) = (0, 0);
    for offer in &made {
        let held_out = offer["selection"]["holdout"] == json!(true);
        let redeem = if held_out {
            holdout += 1;
            holdout_redeemed == 0
        } else {
            selected += 1;
            selected % 2 == 1
        };
        if !redeem {
            continue;
        }
        if held_out {
            holdout_redeemed += 1;
        } else {
            selected_redeemed += 1;
        }
        let redemption = AttributeValue::M(HashMap::from([
            ("orderId".to_owned(), AttributeValue::S("o1".into())),
            ("totalCost".to_owned(), AttributeValue::N("14".into())),
            ("redeemedAt".to_owned(), AttributeValue::S(now.clone())),
        ]));
        bed.client
            .update_item()
            .table_name(bed.table(OFFERS))
            .key(
                "userId",
                AttributeValue::S(offer["userId"].as_str().expect("user").into()),
            )
            .key(
                "personalizedOfferId",
                AttributeValue::S(offer["personalizedOfferId"].as_str().expect("id").into()),
            )
            .update_expression("SET redemptionCount = :one, redemptions = :uses")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":uses",
                AttributeValue::M(HashMap::from([("o1".to_owned(), redemption)])),
            )
            .send()
            .await
            .expect("redeemed");
    }
    assert!(
        selected > 0 && holdout > 0,
        "both arms: {selected}/{holdout}"
    );
    let mut changes = Vec::new();
    while changes.len() < 24 + selected_redeemed + holdout_redeemed {
        let new = offers_stream.read_new().await.expect("offers stream");
        assert!(!new.is_empty(), "every insert and redemption on the stream");
        changes.extend(new);
    }
    let stats = bed.stats(&[]);
    deliver_until_none_fail(&changes, |batch| invoke_stats(&stats, batch)).await;

    let day = made[0]["createdAt"].as_str().expect("createdAt")[..10].to_owned();
    let run = offers(&bed, &["report", "camp-aor", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let body: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(body["totals"]["selected"]["assigned"], selected);
    assert_eq!(body["totals"]["holdout"]["assigned"], holdout);
    assert_eq!(body["totals"]["selected"]["redeemed"], selected_redeemed);
    assert!(body["lift"]["totals"]["ci95"].is_array(), "{body}");
    let days = body["armsByDay"].as_array().expect("armsByDay");
    assert_eq!(days.len(), 1, "{body}");
    assert_eq!(days[0]["day"], json!(day));
    assert_eq!(days[0]["selected"]["assigned"], selected);
    assert_eq!(days[0]["selected"]["redeemed"], selected_redeemed);
    assert_eq!(days[0]["holdout"]["assigned"], holdout);
    assert_eq!(days[0]["holdout"]["redeemed"], holdout_redeemed);
    let expected =
        selected_redeemed as f64 / selected as f64 - holdout_redeemed as f64 / holdout as f64;
    let difference = days[0]["lift"]["difference"]
        .as_f64()
        .expect("the day's lift");
    assert!((difference - expected).abs() < 1e-9, "{body}");

    let table = offers(&bed, &["report", "camp-aor"]);
    assert_eq!(table.code, 0, "{table:?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.trim_start().starts_with("holdout")),
        "{table:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("redemption-rate lift")),
        "{table:?}"
    );
    let at = lines
        .iter()
        .position(|l| *l == "by day the offers were made, per arm:")
        .expect("the days' table");
    assert!(lines[at + 1].starts_with("made on"), "{table:?}");
    assert!(
        lines[at + 2].starts_with(&day) && lines[at + 2].contains("pp (95% CI"),
        "{table:?}"
    );
}
