//! What template.yaml must never lose: the stream functions' safe mappings,
//! a JWT authorizer on every route, TTL, retained tables with point-in-time
//! recovery, alarms on the metrics the code really emits, and for
//! each function exactly the DynamoDB permissions its calls need: recorded
//! from the calls each one really makes on DynamoDB Local, down to the table
//! and index, and compared with its policy both ways.

use offers_integration_tests::*;
use offers_local::template::tagged;
use offers_local::{SamTemplate, StreamReader};
use offers_shared::campaign_stats::{StatsBatchReport, StatsOutcome};
use offers_shared::challenge_progress::{ProgressOutcome, ProgressReport};
use offers_shared::dispatch::{
    DispatchOutcome, DispatchReport, DispatchSummary, Outcome, RecordReport,
};
use offers_shared::domain::campaign_stats::StatsProblem;
use offers_shared::domain::{CampaignId, ReasonCode};
use offers_shared::profiles::{visit_metrics, VisitReport};
use offers_shared::stream::runner;
use serde_json::json;
use std::collections::BTreeSet;
use yaml_serde::Value;

fn template() -> SamTemplate {
    SamTemplate::project().expect("template.yaml")
}

fn resource_type(template: &SamTemplate, logical_id: &str) -> Option<String> {
    template
        .resource(logical_id)
        .ok()
        .and_then(|r| r.get("Type"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[test]
fn the_challenge_progress_stream_mapping_is_safe() {
    stream_mapping_is_safe(
        PROGRESS,
        TRANSACTIONS,
        &["INSERT"],
        [
            "ChallengeProgressMaximumRetryAttempts",
            "ChallengeProgressMaximumRecordAgeInSeconds",
        ],
    );
    let template = template();
    // Each stream function has a queue of its own: a message names the function it came from.
    assert_ne!(
        on_failure_queue(&template, DISPATCHER),
        on_failure_queue(&template, PROGRESS)
    );
    // The transactions table streams the new image (contract section 8).
    let stream = &template.properties(TRANSACTIONS).expect("table")["StreamSpecification"];
    assert_eq!(stream["StreamViewType"].as_str(), Some("NEW_IMAGE"));
}

#[test]
fn the_user_visits_stream_mapping_is_safe() {
    stream_mapping_is_safe(
        VISITS,
        TRANSACTIONS,
        &["INSERT"],
        [
            "UserVisitsMaximumRetryAttempts",
            "UserVisitsMaximumRecordAgeInSeconds",
        ],
    );
    // Its own queue: a message names the function it came from.
    let template = template();
    assert_ne!(
        on_failure_queue(&template, VISITS),
        on_failure_queue(&template, PROGRESS)
    );
}

#[test]
fn the_dispatchers_stream_mapping_is_safe() {
    stream_mapping_is_safe(
        DISPATCHER,
        "PendingPersonalizedOffersTable",
        &["INSERT"],
        [
            "DispatcherMaximumRetryAttempts",
            "DispatcherMaximumRecordAgeInSeconds",
        ],
    );
}

/// The dispatcher's concurrent batches per shard are a parameter (AWS's 1
/// to 10, default 10) wired to its mapping; the other stream functions keep
/// one batch per shard (docs/design.md, "Parallel dispatch").
#[test]
fn the_dispatchers_parallelization_factor_is_a_parameter() {
    let parameters = template_parameters();
    let parameter = &parameters["DispatcherParallelizationFactor"];
    assert_eq!(parameter["Type"], "Number");
    assert_eq!(parameter["Default"], 10);
    assert_eq!(parameter["MinValue"], 1);
    assert_eq!(parameter["MaxValue"], 10);
    let template = template();
    let factor = |template: &SamTemplate, function: &str| {
        dynamodb_event(template, function)["ParallelizationFactor"].clone()
    };
    assert_eq!(
        tagged(&factor(&template, DISPATCHER), "!Ref"),
        Some("DispatcherParallelizationFactor")
    );
    let mapping = template.stream_mapping(DISPATCHER).expect("mapping");
    assert_eq!(mapping.parallelization_factor, 10);
    let deployed_with_4 = template
        .clone()
        .with_parameters(&[("DispatcherParallelizationFactor", "4")]);
    let mapping = deployed_with_4.stream_mapping(DISPATCHER).expect("mapping");
    assert_eq!(mapping.parallelization_factor, 4);
    // Per-user order needs one batch per shard where the table's partition
    // key is not the user (transactions), or gains nothing (statistics).
    for function in [PROGRESS, VISITS, STATS_FUNCTION] {
        assert_eq!(factor(&template, function).as_u64(), Some(1), "{function}");
    }
}

/// The statistics function reads the offers table's changes with both
/// images, and never a REMOVE (an offer's TTL must not count anything down).
#[test]
fn the_statistics_stream_mapping_is_safe() {
    stream_mapping_is_safe(
        STATS_FUNCTION,
        "LoyaltyOffersTable",
        &["INSERT", "MODIFY"],
        [
            "StatsMaximumRetryAttempts",
            "StatsMaximumRecordAgeInSeconds",
        ],
    );
    let template = template();
    let stream = &template.properties("LoyaltyOffersTable").expect("table")["StreamSpecification"];
    assert_eq!(
        stream["StreamViewType"].as_str(),
        Some("NEW_AND_OLD_IMAGES")
    );
    // Its on-failure queue is its own, not the dispatcher's.
    let queue = |function: &str| {
        template.properties(function).expect("function")["Events"]
            .as_mapping()
            .and_then(|events| {
                events
                    .values()
                    .find(|e| e["Type"].as_str() == Some("DynamoDB"))
            })
            .map(|event| {
                event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"].clone()
            })
    };
    assert_ne!(queue(STATS_FUNCTION), queue(DISPATCHER));
}

fn stream_mapping_is_safe(
    function: &str,
    table: &str,
    events: &[&str],
    parameter_names: [&str; 2],
) {
    let template = template();
    let mapping = template.stream_mapping(function).expect("DynamoDB event");
    assert_eq!(mapping.table, table);
    assert_eq!(
        mapping.event_names,
        Some(events.iter().map(|e| e.to_string()).collect()),
        "event filter"
    );
    assert!(
        mapping.report_batch_item_failures,
        "{function}: partial batch responses"
    );
    assert!(mapping.bisect_batch_on_function_error, "{function}: bisect");
    assert!(
        mapping.maximum_retry_attempts <= 10_000,
        "{function}: finite retries"
    );
    assert!(
        mapping.maximum_record_age.as_secs() <= 604_800,
        "{function}: finite record age"
    );
    // The parameters cannot be set to -1 (infinite) either.
    let parameters = template_parameters();
    for (name, max) in [(parameter_names[0], 10_000), (parameter_names[1], 604_800)] {
        let parameter = &parameters[name];
        assert!(
            parameter["MinValue"].as_i64().is_some_and(|min| min >= 0),
            "{name}"
        );
        assert!(
            parameter["MaxValue"].as_i64().is_some_and(|m| m <= max),
            "{name}"
        );
    }
    let queue = on_failure_queue(&template, function);
    assert_eq!(
        resource_type(&template, &queue).as_deref(),
        Some("AWS::SQS::Queue"),
        "{function}"
    );
}

/// The `Properties` of a function's `DynamoDB` event, as the template has them.
fn dynamodb_event(template: &SamTemplate, function: &str) -> Value {
    template
        .properties(function)
        .ok()
        .and_then(|p| p.get("Events"))
        .and_then(Value::as_mapping)
        .and_then(|events| {
            events
                .values()
                .find(|e| e["Type"].as_str() == Some("DynamoDB"))
        })
        .expect("the event")
        .get("Properties")
        .expect("properties")
        .clone()
}

/// The logical id of the SQS queue a function's stream mapping sends failures to.
fn on_failure_queue(template: &SamTemplate, function: &str) -> String {
    let event = dynamodb_event(template, function);
    let on_failure = &event["DestinationConfig"]["OnFailure"];
    assert_eq!(on_failure["Type"].as_str(), Some("SQS"), "{function}");
    tagged(&on_failure["Destination"], "!GetAtt")
        .and_then(|target| target.strip_suffix(".Arn"))
        .expect("!GetAtt <queue>.Arn")
        .to_owned()
}

fn template_parameters() -> serde_json::Value {
    let text = std::fs::read_to_string(offers_local::workspace_root().join("template.yaml"))
        .expect("template.yaml");
    let yaml: Value = yaml_serde::from_str(&text).expect("yaml");
    serde_json::to_value(&yaml["Parameters"]).expect("parameters as JSON")
}

/// The one API without a JWT authorizer: marketing platforms sign their
/// requests instead, and the function checks the signature first.
const SIGNED_WEBHOOK_API: &str = "CampaignWebhookHttpApi";

#[test]
fn every_route_is_behind_a_jwt_authorizer_but_the_signed_webhook() {
    let template = template();
    let routes = template.http_routes().expect("routes");
    assert!(routes.len() >= 6, "{routes:?}");
    let (webhook, routes): (Vec<_>, Vec<_>) = routes
        .into_iter()
        .partition(|route| route.api == SIGNED_WEBHOOK_API);
    assert_eq!(
        webhook
            .iter()
            .map(|route| (
                route.method.as_str(),
                route.path.as_str(),
                route.function.as_str(),
                route.authorized
            ))
            .collect::<Vec<_>>(),
        vec![(
            "POST",
            "/campaigns/webhook",
            "CampaignWebhookFunction",
            false
        )],
        "the webhook API serves the signed webhook only"
    );
    let webhook_environment = &template
        .properties("CampaignWebhookFunction")
        .expect("function")["Environment"]["Variables"];
    assert_eq!(
        tagged(&webhook_environment["WEBHOOK_SIGNING_SECRET_ARN"], "!Ref"),
        Some("WebhookSigningSecretArn"),
        "the secret's ARN comes from its parameter, never the secret"
    );
    for route in routes {
        assert!(route.authorized, "{} {}", route.method, route.path);
        let api = template
            .properties(&route.api)
            .expect("the route's HttpApi");
        let auth = &api["Auth"];
        let default = auth["DefaultAuthorizer"]
            .as_str()
            .expect("a default authorizer");
        let jwt = &auth["Authorizers"][default]["JwtConfiguration"];
        assert!(
            jwt["issuer"] != Value::Null,
            "{} {}: issuer",
            route.method,
            route.path
        );
        assert!(
            jwt["audience"].as_sequence().is_some_and(|a| !a.is_empty()),
            "{} {}: audience",
            route.method,
            route.path
        );
        // No route opts out of it.
        let events = template.properties(&route.function).expect("function")["Events"].clone();
        for (_, event) in events.as_mapping().into_iter().flatten() {
            let authorizer = &event["Properties"]["Auth"]["Authorizer"];
            assert_ne!(
                authorizer.as_str(),
                Some("NONE"),
                "{} {}",
                route.method,
                route.path
            );
        }
    }
}

#[test]
fn data_is_kept_and_expires_where_it_should() {
    let template = template();
    for table in [
        "PendingPersonalizedOffersTable",
        "LoyaltyOffersTable",
        "CampaignStatsTable",
        "OfferEventsTable",
        "WebhookDeliveriesTable",
        PROFILES,
    ] {
        let ttl = &template.properties(table).expect("table")["TimeToLiveSpecification"];
        assert_eq!(ttl["AttributeName"].as_str(), Some("ttl"), "{table}");
        assert_eq!(ttl["Enabled"].as_bool(), Some(true), "{table}");
    }
    // Data nobody can recreate: kept when the stack is deleted or the table
    // replaced, and restorable to a point in time.
    for table in [
        "PendingPersonalizedOffersTable",
        "OfferCatalogTable",
        "LoyaltyOffersTable",
        "RejectedPersonalizedOffersTable",
        "CampaignStatsTable",
        "OfferEventsTable",
        "LoyaltyTransactionsTable",
        PROFILES,
        "CampaignsTable",
    ] {
        let properties = template.properties(table).expect("table");
        assert_eq!(
            properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
            Some(true),
            "{table}: point-in-time recovery"
        );
        let resource = template.resource(table).expect("table");
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            assert_eq!(
                resource[policy].as_str(),
                Some("Retain"),
                "{table}: {policy}"
            );
        }
    }
}

/// A function's DynamoDB permissions as its policy grants them.
fn granted(template: &SamTemplate, function: &str) -> BTreeSet<Permission> {
    let mut granted = BTreeSet::new();
    let policies = template.properties(function).expect("function")["Policies"].clone();
    for policy in policies.as_sequence().into_iter().flatten() {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"));
            let list = |value: &Value| match value {
                Value::Sequence(items) => items.clone(),
                other => vec![other.clone()],
            };
            for action in list(&statement["Action"]) {
                let action = action.as_str().expect("an action").to_owned();
                if !action.starts_with("dynamodb:") {
                    continue;
                }
                for resource in list(&statement["Resource"]) {
                    let (table, index) = if let Some(arn) = tagged(&resource, "!GetAtt") {
                        (arn.strip_suffix(".Arn").expect("X.Arn").to_owned(), None)
                    } else if let Some(sub) = tagged(&resource, "!Sub") {
                        let (table, index) = sub
                            .strip_prefix("${")
                            .and_then(|rest| rest.split_once(".Arn}/index/"))
                            .expect("${X.Arn}/index/NAME");
                        (table.to_owned(), Some(index.to_owned()))
                    } else {
                        panic!(
                            "{function}: a resource that is not a table or an index: {resource:?}"
                        );
                    };
                    granted.insert((action.clone(), table, index));
                }
            }
        }
    }
    granted
}

/// The recorded permissions, with physical table names made logical ids.
fn needed(bed: &TestBed, recorder: &PermissionRecorder) -> BTreeSet<Permission> {
    recorder
        .recorded()
        .into_iter()
        .map(|(action, table, index)| (action, bed.logical_id(&table), index))
        .collect()
}

// Each function's DynamoDB permissions equal, both ways, the calls it makes:
// one test per function, each on a bed of its own, so that one function's
// failure hides none of the others'. A function whose walk needs what
// another one writes (an offer, the offers stream so far, a challenge) first
// runs that one's walk; only its own calls are compared with its policy.

/// A function's walk, boxed: the walks' futures are large in a debug build,
/// and a test thread's stack is small.
async fn walk<T>(walk: impl std::future::Future<Output = T>) -> T {
    Box::pin(walk).await
}

/// A bed of its own, with the sample catalog.
async fn permission_bed() -> TestBed {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    bed
}

/// The calls a function's walk made are exactly what its policy grants.
fn assert_calls_match_policy(needed: BTreeSet<Permission>, function: &str, label: &str) {
    assert_eq!(
        needed,
        granted(&template(), function),
        "{label}: calls made vs policy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_may_make_exactly_the_dynamodb_calls_it_makes() {
    let bed = permission_bed().await;
    assert_calls_match_policy(walk(dispatcher_calls(&bed)).await, DISPATCHER, "dispatcher");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_may_make_exactly_the_dynamodb_calls_it_makes() {
    let bed = permission_bed().await;
    walk(dispatcher_calls(&bed)).await;
    assert_calls_match_policy(walk(lookup_calls(&bed)).await, LOOKUP, "lookup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_may_make_exactly_the_dynamodb_calls_it_makes() {
    let bed = permission_bed().await;
    assert_calls_match_policy(walk(support_calls(&bed)).await, SUPPORT, "support");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_may_make_exactly_the_dynamodb_calls_it_makes() {
    let bed = permission_bed().await;
    assert_calls_match_policy(walk(webhook_calls(&bed)).await, WEBHOOK, "webhook");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_may_make_exactly_the_dynamodb_calls_it_makes() {
    let bed = permission_bed().await;
    walk(dispatcher_calls(&bed)).await;
    assert_calls_match_policy(walk(activity_calls(&bed)).await, ACTIVITY, "activity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_may_make_exactly_the_dynamodb_calls_it_makes() {
    // The offers stream holds what the dispatcher, support and activity
    // wrote: INSERTs, revocations, redemptions, voids and events.
    let bed = permission_bed().await;
    walk(dispatcher_calls(&bed)).await;
    walk(support_calls(&bed)).await;
    walk(activity_calls(&bed)).await;
    assert_calls_match_policy(walk(stats_calls(&bed)).await, STATS_FUNCTION, "statistics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_progress_may_make_exactly_the_dynamodb_calls_it_makes() {
    let bed = permission_bed().await;
    walk(dispatcher_calls(&bed)).await;
    let (needed, _, _) = walk(progress_calls(&bed)).await;
    assert_calls_match_policy(needed, PROGRESS, "challenge progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_visits_may_make_exactly_the_dynamodb_calls_it_makes() {
    let bed = permission_bed().await;
    walk(dispatcher_calls(&bed)).await;
    let (_, transactions, records) = walk(progress_calls(&bed)).await;
    assert_calls_match_policy(
        walk(visits_calls(&bed, transactions, &records)).await,
        VISITS,
        "user visits",
    );
}

async fn dispatcher_calls(bed: &TestBed) -> BTreeSet<Permission> {
    // Dispatcher: an offer and a rejection by transaction, then the same
    // again for rows replaced before their INSERT is handled (written alone).
    // (A campaign with an offers budget, stored before the budgets are listed.)
    bed.put_campaign(
        json!({"campaignId": "perm-dispatch-budget", "mode": "manual", "budget": {"offers": 1}}),
    )
    .await;
    let recorder = PermissionRecorder::default();
    let config = bed.dispatcher_config(&[]);
    let dispatcher =
        offer_dispatcher::build_dispatcher(bed.recording_client(&config.sdk, &recorder), &config);
    let mut stream = bed.stream().await;
    let unknown = |mut row: serde_json::Value| {
        row["offerId"] = json!("co-nope");
        row
    };
    bed.put(PENDING, fries_row("perm-user", "a")).await;
    bed.put(PENDING, unknown(fries_row("perm-user", "b"))).await;
    let first = stream.read_new().await.expect("stream");
    assert!(invoke(&dispatcher, &first).await.is_empty());
    bed.put(PENDING, fries_row("perm-user", "c")).await;
    bed.put(PENDING, unknown(fries_row("perm-user", "d"))).await;
    let inserts_before_replacement = stream.read_new().await.expect("stream");
    for sort_key in ["c", "d"] {
        let mut replaced = fries_row("perm-user", sort_key);
        replaced["rank"] = json!(9);
        bed.put(PENDING, replaced).await;
    }
    assert!(invoke(&dispatcher, &inserts_before_replacement)
        .await
        .is_empty());
    assert_eq!(bed.scan(OFFERS).await.len(), 2);
    assert_eq!(bed.scan(REJECTED).await.len(), 2);
    // Rows of the campaign with an offers budget of 1: the list of budgets
    // read, one offer counted, the next row refused (its campaign read again).
    let budgeted = |sort_key: &str| {
        let mut row = fries_row("perm-user", sort_key);
        row["campaignId"] = json!("perm-dispatch-budget");
        row
    };
    bed.put(PENDING, budgeted("e")).await;
    bed.put(PENDING, budgeted("f")).await;
    let budgeted_rows = stream.read_new().await.expect("stream");
    assert!(invoke(&dispatcher, &budgeted_rows).await.is_empty());
    assert_eq!(bed.scan(OFFERS).await.len(), 3);
    assert_eq!(bed.scan(REJECTED).await.len(), 3);
    needed(bed, &recorder)
}

async fn lookup_calls(bed: &TestBed) -> BTreeSet<Permission> {
    // Lookup: one offer and the list.
    let recorder = PermissionRecorder::default();
    let config = bed.lookup_config(&[]);
    let lookup = offer_lookup::build_lookup(bed.recording_client(&config.sdk, &recorder), &config);
    let id = bed.scan(OFFERS).await[0]["personalizedOfferId"]
        .as_str()
        .expect("id")
        .to_owned();
    let one = call_lookup(
        &lookup,
        &api_event(
            "GET",
            &format!("/rewards/offers/{id}"),
            "",
            Identity::Jwt("perm-user"),
        ),
    )
    .await;
    assert_eq!(one.status, 200);
    let list = call_lookup(
        &lookup,
        &api_event("GET", "/rewards/offers", "", Identity::Jwt("perm-user")),
    )
    .await;
    assert_eq!(list.status, 200);
    needed(bed, &recorder)
}

async fn support_calls(bed: &TestBed) -> BTreeSet<Permission> {
    // Support: assign, a keyed retry, a keyed request refused (the earlier
    // offer is looked for), revoke twice and an unknown id, the list.
    let recorder = PermissionRecorder::default();
    let config = bed.support_config(&[]);
    let support =
        support_assignment::build_support(bed.recording_client(&config.sdk, &recorder), &config);
    let path = "/support/users/perm-user/offers";
    // A campaign with an offers budget of 1: one assignment counted, the
    // next refused (its limit read again).
    bed.put_campaign(
        json!({"campaignId": "perm-budget", "mode": "manual", "budget": {"offers": 1}}),
    )
    .await;
    for expected in [201, 422] {
        let budgeted = with_body(
            support_event("POST", path, "", Agent::Support("agent-1")),
            &json!({"offerId": "co-coffee", "campaignId": "perm-budget", "expiryDate": future_date(5), "reason": "budget"}),
        );
        assert_eq!(call_support(&support, &budgeted).await.status, expected);
    }
    let body = json!({"offerId": "co-coffee", "expiryDate": future_date(5), "reason": "checking permissions"});
    let keyed = with_header(
        with_body(
            support_event("POST", path, "", Agent::Support("agent-1")),
            &body,
        ),
        "idempotency-key",
        "perm-1",
    );
    let created = call_support(&support, &keyed).await;
    assert_eq!(created.status, 201);
    assert_eq!(call_support(&support, &keyed).await.status, 201);
    let refused = with_header(
        with_body(
            support_event("POST", path, "", Agent::Support("agent-1")),
            &json!({"offerId": "co-nope", "expiryDate": future_date(5), "reason": "r"}),
        ),
        "idempotency-key",
        "perm-2",
    );
    assert_eq!(call_support(&support, &refused).await.status, 422);
    let offer_id = created.body["personalizedOfferId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for id in [offer_id.clone(), offer_id, uuid::Uuid::new_v4().to_string()] {
        call_support(
            &support,
            &support_event(
                "DELETE",
                &format!("{path}/{id}"),
                "",
                Agent::Support("agent-1"),
            ),
        )
        .await;
    }
    assert_eq!(
        call_support(
            &support,
            &support_event("GET", path, "", Agent::Support("agent-1"))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        call_support(
            &support,
            &support_event(
                "GET",
                "/support/campaigns/camp-1/stats",
                "",
                Agent::Support("agent-1")
            )
        )
        .await
        .status,
        200
    );
    // A user's behaviour profile (none yet: the read is the same).
    assert_eq!(
        call_support(
            &support,
            &support_event(
                "GET",
                "/support/users/perm-user/profile",
                "",
                Agent::Support("agent-1")
            )
        )
        .await
        .status,
        404
    );
    needed(bed, &recorder)
}

async fn webhook_calls(bed: &TestBed) -> BTreeSet<Permission> {
    // Webhook: a delivery (catalog, claim, rows, completion), its replay,
    // a conflict, a failed chunk released, an interrupted delivery taken
    // over, and a redelivery that waits for a holder (consistent reads).
    let recorder = PermissionRecorder::default();
    let config = bed
        .webhook_config(&[("WEBHOOK_WAIT_FOR_HOLDER_MS", "200")])
        .await;
    let secret = bed.webhook_secret(&config).await;
    let webhook = campaign_webhook::build_webhook(
        bed.recording_client(&config.sdk, &recorder),
        &config,
        secret,
    );
    let body = |sort_key: &str| {
        json!({"assignments": [fries_row("perm-hook", sort_key), {"userId": "x"}]})
            .to_string()
            .into_bytes()
    };
    // One body, sent twice: its rows carry dates from the clock.
    let w1 = body("w1");
    let first = call_webhook(&webhook, &signed_webhook_event(&w1, "perm-1")).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    assert_eq!(
        call_webhook(&webhook, &signed_webhook_event(&w1, "perm-1"))
            .await
            .status,
        202
    );
    assert_eq!(
        call_webhook(&webhook, &signed_webhook_event(&body("w2"), "perm-1"))
            .await
            .status,
        409
    );
    let in_an_hour = chrono::Utc::now().timestamp_millis() + 3_600_000;
    // Each body made once: its rows' dates come from the clock, and a body
    // made again a second later would be another body (409, not a resume).
    let (perm_2, perm_3) = (body("perm-2"), body("perm-3"));
    for (id, payload, lease_until) in [("perm-2", &perm_2, 0), ("perm-3", &perm_3, in_an_hour)] {
        bed.put(
            DELIVERIES,
            json!({"deliveryId": id,
                   "fingerprint": offers_shared::domain::webhook::body_fingerprint(payload),
                   "state": "inProgress", "claimToken": uuid::Uuid::new_v4().to_string(),
                   "leaseUntil": lease_until, "claimedAt": "2026-01-01T00:00:00Z",
                   "receipt": json!({"accepted": 1, "rejected": []}).to_string(),
                   "ttl": future_epoch(7)}),
        )
        .await;
    }
    assert_eq!(
        call_webhook(&webhook, &signed_webhook_event(&perm_2, "perm-2"))
            .await
            .status,
        202
    );
    assert_eq!(
        call_webhook(&webhook, &signed_webhook_event(&perm_3, "perm-3"))
            .await
            .status,
        503
    );
    needed(bed, &recorder)
}

async fn activity_calls(bed: &TestBed) -> BTreeSet<Permission> {
    // Activity: a redemption (the read, the first record, then one beside
    // it), a replay, a refusal, a void twice, an event and its duplicate.
    let recorder = PermissionRecorder::default();
    let config = bed.activity_config(&[]);
    let activity =
        offer_activity::build_activity(bed.recording_client(&config.sdk, &recorder), &config);
    let user = "perm-user";
    let offers = bed.scan(OFFERS).await;
    let id = offers
        .iter()
        .find(|offer| offer["userId"] == user && offer["offerId"] == "co-fries")
        .and_then(|offer| offer["personalizedOfferId"].as_str())
        .expect("an offer of perm-user")
        .to_owned();
    // Offers of a campaign with a redemptions budget of 1: the list of
    // budgeted campaigns (Scan), a use and its void in transactions with
    // the campaign, a refusal (the campaign read again).
    bed.put_campaign(
        json!({"campaignId": "perm-redeem", "mode": "manual", "budget": {"redemptions": 1}}),
    )
    .await;
    let mut budgeted = Vec::new();
    for _ in 0..2 {
        let copy = bed
            .copy_offer(user, &id, |offer| {
                offer.campaign_id = Some(CampaignId::literal("perm-redeem"));
            })
            .await;
        budgeted.push(copy);
    }
    for (copy, expected) in budgeted.iter().zip([201, 409]) {
        let event = with_body(
            api_event(
                "POST",
                &format!("/rewards/offers/{copy}/redemptions"),
                "",
                Identity::Jwt(user),
            ),
            &json!({"orderId": "perm-b", "totalCost": 20.0, "serviceMode": "pickup"}),
        );
        assert_eq!(call_activity(&activity, &event).await.status, expected);
    }
    let void = api_event(
        "DELETE",
        &format!("/rewards/offers/{}/redemptions/perm-b", budgeted[0]),
        "",
        Identity::Jwt(user),
    );
    assert_eq!(call_activity(&activity, &void).await.status, 200);
    let redemptions = format!("/rewards/offers/{id}/redemptions");
    let order = |order: &str, cost: f64| {
        with_body(
            api_event("POST", &redemptions, "", Identity::Jwt(user)),
            &json!({"orderId": order, "totalCost": cost, "serviceMode": "pickup"}),
        )
    };
    assert_eq!(
        call_activity(&activity, &order("perm-1", 20.0))
            .await
            .status,
        201
    );
    assert_eq!(
        call_activity(&activity, &order("perm-1", 20.0))
            .await
            .status,
        200
    );
    assert_eq!(
        call_activity(&activity, &order("perm-2", 20.0))
            .await
            .status,
        409
    );
    for _ in 0..2 {
        let void = api_event(
            "DELETE",
            &format!("{redemptions}/perm-1"),
            "",
            Identity::Jwt(user),
        );
        assert_eq!(call_activity(&activity, &void).await.status, 200);
    }
    assert_eq!(
        call_activity(&activity, &order("perm-2", 20.0))
            .await
            .status,
        201
    );
    // An offer that is not there: the failed condition returns no item, so
    // the offer is read to tell.
    let missing = with_body(
        api_event(
            "POST",
            &format!("/rewards/offers/{}/redemptions", uuid::Uuid::new_v4()),
            "",
            Identity::Jwt(user),
        ),
        &json!({"orderId": "perm-3", "totalCost": 20.0, "serviceMode": "pickup"}),
    );
    assert_eq!(call_activity(&activity, &missing).await.status, 404);
    let event = with_body(
        api_event(
            "POST",
            &format!("/rewards/offers/{id}/events"),
            "",
            Identity::Jwt(user),
        ),
        &json!({"eventId": uuid::Uuid::new_v4(), "type": "viewed"}),
    );
    for _ in 0..2 {
        assert_eq!(call_activity(&activity, &event).await.status, 202);
    }
    needed(bed, &recorder)
}

async fn stats_calls(bed: &TestBed) -> BTreeSet<Permission> {
    // Statistics: the offers table's stream so far (INSERTs and the
    // revocations' MODIFYs), counted, then delivered again (a replay).
    let recorder = PermissionRecorder::default();
    let config = bed.stats_config(&[]);
    let stats = campaign_stats::build_stats(bed.recording_client(&config.sdk, &recorder), &config);
    let records = bed
        .offers_stream()
        .await
        .read_new()
        .await
        .expect("offers stream");
    assert!(!records.is_empty());
    assert!(invoke_stats(&stats, &records).await.is_empty());
    assert!(invoke_stats(&stats, &records).await.is_empty());
    needed(bed, &recorder)
}

/// Also the transactions stream and the records it read, which the user
/// visits walk delivers again.
async fn progress_calls(
    bed: &TestBed,
) -> (BTreeSet<Permission>, StreamReader, Vec<serde_json::Value>) {
    // Challenge progress: a challenge offer, two transactions racing for its
    // first goal (a failed condition), an invalid transaction.
    let recorder = PermissionRecorder::default();
    let mut row = seed_challenge_row(&future_date(30));
    row["userId"] = json!("perm-user");
    bed.dispatch_rows(&mut bed.stream().await, &[row]).await;
    let config = bed.progress_config(&[]);
    let progress =
        challenge_progress::build_progress(bed.recording_client(&config.sdk, &recorder), &config);
    let mut transactions = bed.transactions_stream().await;
    for (id, cost) in [
        ("perm-t1", json!(5)),
        ("perm-t2", json!(5)),
        ("perm-bad", json!(-1)),
    ] {
        let mut item = transaction(id, "perm-user", 1.0, "2026-05-02T10:00:00Z");
        item["totalCost"] = cost;
        bed.put(TRANSACTIONS, item).await;
    }
    let records = transactions.read_new().await.expect("stream");
    let (one, two) = tokio::join!(
        invoke_progress(&progress, &records[..1]),
        invoke_progress(&progress, &records[1..]),
    );
    assert!(one.is_empty() && two.is_empty());
    assert_eq!(
        bed.scan(REJECTED).await.len(),
        4,
        "three rows (one past its budget) and a transaction"
    );
    (needed(bed, &recorder), transactions, records)
}

async fn visits_calls(
    bed: &TestBed,
    mut transactions: StreamReader,
    records: &[serde_json::Value],
) -> BTreeSet<Permission> {
    // User visits: the same transactions (two racing for one profile, an
    // invalid one), delivered twice; then the support API reads a profile.
    // With an always-on campaign, two visits of now: the chooser reads the
    // campaigns, the user's offers and pending rows, the pool's catalog
    // entries and statistics, and puts a pending row.
    let recorder = PermissionRecorder::default();
    let always_on = offers_shared::domain::campaign::parse_definition(
        &json!({"campaignId": "perm-always", "mode": "alwaysOn",
                "pool": [{"offerId": "co-coffee"}, {"offerId": "co-fries", "rules": {"minimumSpend": 5}}],
                "startDate": "2026-01-01T00:00:00Z", "endDate": "2099-01-01T00:00:00Z",
                "validDays": 7, "cadence": "P1D", "slots": 1, "reward": "redeemed"})
        .to_string(),
    )
    .expect("an always-on definition");
    offers_shared::dynamo::CampaignsTable::new(bed.client.clone(), bed.table("CampaignsTable"))
        .put_definition(&always_on, chrono::Utc::now())
        .await
        .expect("stored");
    let now = offers_shared::domain::dates::format_timestamp(chrono::Utc::now());
    for id in ["perm-v1", "perm-v2"] {
        bed.put(TRANSACTIONS, transaction(id, "perm-visitor", 12.0, &now))
            .await;
    }
    let visits_now = transactions.read_new().await.expect("stream");
    let config = bed.visits_config(&[]);
    let visits = user_visits::build_visits(bed.recording_client(&config.sdk, &recorder), &config);
    for _delivery in 0..2 {
        tokio::join!(
            deliver_until_none_fail(&records[..1], |batch| invoke_visits(&visits, batch)),
            deliver_until_none_fail(&records[1..], |batch| invoke_visits(&visits, batch)),
            deliver_until_none_fail(&visits_now, |batch| invoke_visits(&visits, batch)),
        );
    }
    assert_eq!(
        bed.scan(PENDING)
            .await
            .iter()
            .filter(|row| row["campaignId"] == "perm-always")
            .count(),
        1,
        "one always-on row for the two visits of one window"
    );
    needed(bed, &recorder)
}

#[test]
fn the_webhook_reads_only_its_own_secret() {
    let template = template();
    let policies = template
        .properties("CampaignWebhookFunction")
        .expect("function")["Policies"]
        .clone();
    let secret_statements: Vec<Value> = policies
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|policy| {
            policy["Statement"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|statement| {
            statement["Action"]
                .as_str()
                .is_some_and(|action| action.starts_with("secretsmanager:"))
        })
        .collect();
    assert_eq!(secret_statements.len(), 1, "{secret_statements:?}");
    assert_eq!(
        secret_statements[0]["Action"].as_str(),
        Some("secretsmanager:GetSecretValue")
    );
    assert_eq!(
        tagged(&secret_statements[0]["Resource"], "!Ref"),
        Some("WebhookSigningSecretArn")
    );
    let parameters = template_parameters();
    assert!(
        parameters["WebhookSigningSecretArn"]["AllowedPattern"]
            .as_str()
            .is_some_and(|pattern| pattern.contains("secretsmanager")),
        "only a Secrets Manager ARN"
    );
    // No other function may read a secret.
    for function in template.function_ids().expect("functions") {
        if function == "CampaignWebhookFunction" {
            continue;
        }
        let text = format!(
            "{:?}",
            template.properties(&function).expect("function")["Policies"]
        );
        assert!(!text.contains("secretsmanager"), "{function}");
    }
}

#[test]
fn alarms_watch_what_the_runbook_covers() {
    let template = template();
    let alarms = template
        .logical_ids_of_type("AWS::CloudWatch::Alarm")
        .expect("alarms");
    let alarm = |id: &str| template.properties(id).expect("alarm").clone();
    let watched_function = |properties: &Value| {
        properties["Dimensions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|d| d["Name"].as_str() == Some("FunctionName"))
            .and_then(|d| tagged(&d["Value"], "!Ref"))
            .map(str::to_owned)
    };
    // Every function's errors and throttles.
    for function in template.function_ids().expect("functions") {
        for metric in ["Errors", "Throttles"] {
            assert!(
                alarms.iter().any(|id| {
                    let p = alarm(id);
                    p["MetricName"].as_str() == Some(metric)
                        && watched_function(&p).as_deref() == Some(function.as_str())
                }),
                "no {metric} alarm for {function}"
            );
        }
    }
    // The on-failure queue, the stream's iterator age, and the rejections
    // metric the dispatcher really emits.
    let queue = alarm("OnFailureQueueAlarm");
    assert_eq!(
        queue["MetricName"].as_str(),
        Some("ApproximateNumberOfMessagesVisible")
    );
    assert_eq!(
        tagged(&queue["Dimensions"][0]["Value"], "!GetAtt"),
        Some("OfferDispatcherFailureQueue.QueueName")
    );
    let age = alarm("DispatcherIteratorAgeAlarm");
    assert_eq!(age["MetricName"].as_str(), Some("IteratorAge"));
    assert_eq!(watched_function(&age).as_deref(), Some(DISPATCHER));
    watches_the_dispatchers_count(
        "RejectionsAlarm",
        &alarm("RejectionsAlarm"),
        Outcome::Done(DispatchOutcome::Rejected {
            code: ReasonCode::UnknownOffer,
            rejection_id: uuid::Uuid::nil(),
            pending_row_kept: false,
        }),
    );
    // A budget past 90%: the highest use the dispatcher emits.
    watches_the_budget_use(&alarm("BudgetNearlyUsedAlarm"));
    // A distributed plan's failed executions (a chunk failed after its
    // retries fails the map run, which fails the execution).
    let plan = alarm("PlanExecutionsFailedAlarm");
    assert_eq!(plan["Namespace"].as_str(), Some("AWS/States"));
    assert_eq!(plan["MetricName"].as_str(), Some("ExecutionsFailed"));
    assert_eq!(plan["Statistic"].as_str(), Some("Sum"));
    assert_eq!(plan["Threshold"].as_u64(), Some(0));
    assert_eq!(
        plan["Dimensions"][0]["Name"].as_str(),
        Some("StateMachineArn")
    );
    assert_eq!(
        tagged(&plan["Dimensions"][0]["Value"], "!Ref"),
        Some("PlanStateMachine")
    );
    let map = template
        .properties("PlanStateMachine")
        .expect("state machine")["Definition"]["States"]["PlanChunks"]
        .clone();
    assert_eq!(
        map["ToleratedFailurePercentage"].as_u64(),
        Some(0),
        "a failed chunk fails the execution the alarm counts"
    );
    // The users' share of a chunk's input, as the CLI bounds the rest.
    assert_eq!(
        map["ItemBatcher"]["MaxInputBytesPerBatch"].as_u64(),
        Some(offers_shared::plan::chunk::MAX_CHUNK_ITEMS_BYTES as u64)
    );
    // And the records that failed and were reported for retry.
    assert!(alarms.iter().any(|id| id == "DispatcherFailedRecordsAlarm"));
    watches_the_dispatchers_count(
        "DispatcherFailedRecordsAlarm",
        &alarm("DispatcherFailedRecordsAlarm"),
        Outcome::Failed(offers_shared::dispatch::Failure::StoreDown),
    );
    // The statistics function's on-failure queue, iterator age, changes not
    // counted and records failed: the metrics its code emits.
    let stats_queue = alarm("CampaignStatsFailureQueueAlarm");
    assert_eq!(
        tagged(&stats_queue["Dimensions"][0]["Value"], "!GetAtt"),
        Some("CampaignStatsFailureQueue.QueueName")
    );
    let stats_age = alarm("CampaignStatsIteratorAgeAlarm");
    assert_eq!(stats_age["MetricName"].as_str(), Some("IteratorAge"));
    assert_eq!(
        watched_function(&stats_age).as_deref(),
        Some(STATS_FUNCTION)
    );
    watches_the_stats_count(
        "CampaignStatsNotCountedAlarm",
        &alarm("CampaignStatsNotCountedAlarm"),
        runner::Outcome::Done(StatsOutcome::NotCounted(StatsProblem::NoOfferId)),
    );
    watches_the_stats_count(
        "CampaignStatsNotCountedAlarm",
        &alarm("CampaignStatsNotCountedAlarm"),
        runner::Outcome::Done(StatsOutcome::Refused("ValidationException".into())),
    );
    watches_the_stats_count(
        "CampaignStatsFailedRecordsAlarm",
        &alarm("CampaignStatsFailedRecordsAlarm"),
        runner::Outcome::Failed(runner::Failure::StoreDown),
    );
    // The same for challenge progress: its queue, its stream, its counts.
    let queue = alarm("ChallengeProgressFailureQueueAlarm");
    assert_eq!(
        tagged(&queue["Dimensions"][0]["Value"], "!GetAtt"),
        Some("ChallengeProgressFailureQueue.QueueName")
    );
    let age = alarm("ChallengeProgressIteratorAgeAlarm");
    assert_eq!(age["MetricName"].as_str(), Some("IteratorAge"));
    assert_eq!(watched_function(&age).as_deref(), Some(PROGRESS));
    watches_the_progress_count(
        "TransactionRejectionsAlarm",
        &alarm("TransactionRejectionsAlarm"),
        runner::Outcome::Done(ProgressOutcome::Rejected {
            code: ReasonCode::InvalidTransaction,
            rejection_id: uuid::Uuid::nil(),
        }),
    );
    watches_the_progress_count(
        "ChallengeProgressFailedRecordsAlarm",
        &alarm("ChallengeProgressFailedRecordsAlarm"),
        runner::Outcome::Failed(runner::Failure::StoreDown),
    );
    // The same for user visits: its queue, its stream, its failed records.
    let queue = alarm("UserVisitsFailureQueueAlarm");
    assert_eq!(
        tagged(&queue["Dimensions"][0]["Value"], "!GetAtt"),
        Some("UserVisitsFailureQueue.QueueName")
    );
    let age = alarm("UserVisitsIteratorAgeAlarm");
    assert_eq!(age["MetricName"].as_str(), Some("IteratorAge"));
    assert_eq!(watched_function(&age).as_deref(), Some(VISITS));
    let line = offers_shared::metrics::emf::emf_line(
        "f",
        &visit_metrics(
            &VisitReport {
                records: vec![runner::RecordReport::of_outcome(runner::Outcome::Failed(
                    runner::Failure::StoreDown,
                ))],
                store_down: true,
                summary: (),
            },
            chrono::Utc::now(),
        ),
    );
    watches_the_count_of(
        "UserVisitsFailedRecordsAlarm",
        &alarm("UserVisitsFailedRecordsAlarm"),
        &line,
        VISITS,
    );
    // Each alarm notifies the optional topic and names its runbook section.
    for id in &alarms {
        let properties = alarm(id);
        assert!(properties["AlarmActions"] != Value::Null, "{id} notifies");
        let anchor = alarm_runbook_anchor(&properties)
            .unwrap_or_else(|| panic!("{id} names no runbook section"));
        assert!(
            runbook_has_section(&anchor),
            "{id}: no section #{anchor} in docs/runbook.md"
        );
    }
}

/// A batch that used one campaign's offers budget, 19 of 20.
fn budget_batch() -> DispatchReport {
    DispatchReport {
        summary: DispatchSummary {
            budgets: vec![(
                CampaignId::literal("camp-b"),
                offers_shared::ports::OffersBudgetUse {
                    limit: 20,
                    used: 19,
                },
            )],
            ..DispatchSummary::default()
        },
        ..DispatchReport::default()
    }
}

/// The namespace and metric an alarm watches: its own, or those of every
/// metric its expression combines (all the same).
fn alarm_metric(alarm: &Value) -> (String, String) {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    if alarm["Metrics"].is_null() {
        return (text(&alarm["Namespace"]), text(&alarm["MetricName"]));
    }
    let watched: BTreeSet<(String, String)> = alarm["Metrics"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter(|query| !query["MetricStat"].is_null())
        .map(|query| {
            let metric = &query["MetricStat"]["Metric"];
            (text(&metric["Namespace"]), text(&metric["MetricName"]))
        })
        .collect();
    assert_eq!(watched.len(), 1, "one metric: {watched:?}");
    watched.into_iter().next().unwrap_or_default()
}

/// Asserts that the budget alarm watches the use both the dispatcher and
/// the statistics function emit (their EMF lines' name, namespace and
/// dimension), at its highest of both, above 90%.
fn watches_the_budget_use(alarm: &Value) {
    let metric = offers_shared::metrics::BUDGET_USED_METRIC;
    let now = chrono::Utc::now();
    let statistics_batch = StatsBatchReport {
        summary: offers_shared::campaign_stats::StatsSummary {
            budgets: vec![offers_shared::campaign_stats::BudgetPercent {
                campaign_id: CampaignId::literal("c"),
                limit: offers_shared::domain::campaign::BudgetLimit::DiscountValue,
                percent: 95,
            }],
            ..Default::default()
        },
        ..StatsBatchReport::default()
    };
    let lines = [
        offers_shared::metrics::dispatch_metrics(&budget_batch(), now),
        offers_shared::metrics::stats_metrics(&statistics_batch, now),
    ]
    .map(|set| offers_shared::metrics::emf::emf_line("f", &set));
    for line in &lines {
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert!(
            declared["Metrics"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["Name"] == metric && m["Unit"] == "Percent"),
            "{line}"
        );
        assert_eq!(line[metric], json!([95]), "{line}");
        assert_eq!(declared["Dimensions"], json!([["FunctionName"]]), "{line}");
        assert_eq!(
            alarm_metric(alarm),
            (
                declared["Namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                metric.to_owned()
            )
        );
    }
    assert_eq!(alarm["Threshold"].as_u64(), Some(90));
    assert_eq!(
        alarm["ComparisonOperator"].as_str(),
        Some("GreaterThanThreshold")
    );
    let queries: Vec<&Value> = alarm["Metrics"]
        .as_sequence()
        .into_iter()
        .flatten()
        .collect();
    // Each function's highest value in the period, by its one dimension.
    let mut watched: Vec<(String, &str)> = queries
        .iter()
        .filter(|query| !query["MetricStat"].is_null())
        .map(|query| {
            let stat = &query["MetricStat"];
            assert_eq!(stat["Stat"].as_str(), Some("Maximum"));
            assert_eq!(query["ReturnData"].as_bool(), Some(false));
            let dimensions = &stat["Metric"]["Dimensions"];
            assert_eq!(dimensions[0]["Name"].as_str(), Some("FunctionName"));
            assert!(dimensions[1].is_null());
            (
                query["Id"].as_str().unwrap_or_default().to_owned(),
                tagged(&dimensions[0]["Value"], "!Ref").unwrap_or_default(),
            )
        })
        .collect();
    watched.sort();
    assert_eq!(
        watched,
        [
            ("dispatcher".to_owned(), DISPATCHER),
            ("statistics".to_owned(), STATS_FUNCTION)
        ]
    );
    // The alarm's value: the higher of both (a function without a value in
    // the period counts as 0: below the threshold, like no data).
    let expressions: Vec<&str> = queries
        .iter()
        .filter(|query| query["ReturnData"].as_bool() == Some(true))
        .filter_map(|query| query["Expression"].as_str())
        .collect();
    assert_eq!(
        expressions,
        ["MAX([FILL(dispatcher, 0), FILL(statistics, 0)])"]
    );
}

/// [`watches_the_dispatchers_count`] for the statistics function's metrics.
fn watches_the_stats_count(id: &str, alarm: &Value, outcome: runner::Outcome<StatsOutcome>) {
    let report = StatsBatchReport {
        records: vec![runner::RecordReport::of_outcome(outcome)],
        ..StatsBatchReport::default()
    };
    let line = offers_shared::metrics::emf::emf_line(
        "f",
        &offers_shared::metrics::stats_metrics(&report, chrono::Utc::now()),
    );
    watches_the_count_of(id, alarm, &line, STATS_FUNCTION);
}

/// [`watches_the_dispatchers_count`] for challenge progress's EMF line.
fn watches_the_progress_count(id: &str, alarm: &Value, outcome: runner::Outcome<ProgressOutcome>) {
    let report = ProgressReport {
        records: vec![runner::RecordReport::of_outcome(outcome)],
        ..ProgressReport::default()
    };
    let line = offers_shared::metrics::emf::emf_line(
        "f",
        &offers_shared::metrics::challenge_metrics(&report, chrono::Utc::now()),
    );
    watches_the_count_of(id, alarm, &line, PROGRESS);
}

/// The runbook section an alarm's description links to (`docs/runbook.md#<anchor>`).
fn alarm_runbook_anchor(properties: &Value) -> Option<String> {
    properties["AlarmDescription"]
        .as_str()?
        .split("docs/runbook.md#")
        .nth(1)?
        .split(')')
        .next()
        .map(str::to_owned)
}

/// Whether docs/runbook.md has a heading whose anchor is `anchor`.
fn runbook_has_section(anchor: &str) -> bool {
    let runbook = std::fs::read_to_string(offers_local::workspace_root().join("docs/runbook.md"))
        .expect("docs/runbook.md");
    runbook.lines().any(|line| {
        line.starts_with('#')
            && line
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .replace(' ', "-")
                == anchor
    })
}

/// Asserts that an alarm watches the count the dispatcher emits for records
/// with `outcome`: the metric name, namespace and dimensions are taken from
/// the EMF line the code writes for a batch of one such record (the one count
/// that is 1), not from strings written here.
fn watches_the_dispatchers_count(id: &str, alarm: &Value, outcome: Outcome) {
    let report = DispatchReport {
        records: vec![RecordReport::of_outcome(outcome)],
        ..DispatchReport::default()
    };
    let line = offers_shared::metrics::emf::emf_line(
        "f",
        &offers_shared::metrics::dispatch_metrics(&report, chrono::Utc::now()),
    );
    watches_the_count_of(id, alarm, &line, DISPATCHER);
}

/// Asserts that an alarm watches the one count that is 1 in an EMF `line`,
/// in its namespace and dimensions, for `function`.
fn watches_the_count_of(id: &str, alarm: &Value, line: &serde_json::Value, function: &str) {
    let declared = &line["_aws"]["CloudWatchMetrics"][0];
    let counted: Vec<&str> = declared["Metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|metric| metric["Unit"] == "Count")
        .filter_map(|metric| metric["Name"].as_str())
        .filter(|name| line[*name] == 1)
        .collect();
    let [metric] = counted[..] else {
        panic!("{id}: not exactly one count for the outcome in {line}");
    };
    assert_eq!(alarm["MetricName"].as_str(), Some(metric), "{id}: metric");
    assert_eq!(
        alarm["Namespace"].as_str(),
        declared["Namespace"].as_str(),
        "{id}: namespace"
    );
    assert_eq!(
        alarm["Statistic"].as_str(),
        Some("Sum"),
        "{id}: a count sums"
    );
    // CloudWatch matches a metric on its exact set of dimensions.
    let dimensions: Vec<&str> = alarm["Dimensions"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|dimension| dimension["Name"].as_str())
        .collect();
    let emitted: Vec<&str> = declared["Dimensions"][0]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert_eq!(dimensions, emitted, "{id}: dimensions");
    let alarm_function = alarm["Dimensions"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|dimension| dimension["Name"].as_str() == Some("FunctionName"))
        .and_then(|dimension| tagged(&dimension["Value"], "!Ref"));
    assert_eq!(
        alarm_function,
        Some(function),
        "{id}: the function's metric"
    );
}

// ------------------------------------------------------------- Datadog --

const LAYER: &str = "arn:aws:lambda:us-east-1:111122223333:layer:Datadog-Extension-ARM:90";
const SECRET: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:dd-api-key-AbCdEf";

/// Every table named by its logical id, so that environments resolve.
fn logical_tables(template: &SamTemplate) -> offers_local::template::TableSet {
    offers_local::template::TableSet {
        names: template
            .logical_ids_of_type("AWS::DynamoDB::Table")
            .expect("tables")
            .into_iter()
            .map(|id| (id.clone(), id))
            .collect(),
    }
}

/// The managed policies a function's role gets by `!Ref` in its Policies.
fn managed_policies(template: &SamTemplate, function: &str) -> Vec<String> {
    template
        .function_policies(function)
        .expect("policies")
        .iter()
        .filter_map(|policy| tagged(policy, "!Ref").map(str::to_owned))
        .collect()
}

#[test]
fn with_datadog_every_function_has_the_extension_and_may_read_only_its_key() {
    let default = template();
    let tables = logical_tables(&default);
    let datadog = default.clone().with_parameters(&[
        ("Observability", "datadog"),
        ("Stage", "prod"),
        ("DatadogExtensionLayerArn", LAYER),
        ("DatadogApiKeySecretArn", SECRET),
        ("DatadogVersion", "abc123"),
    ]);
    let functions = default.function_ids().expect("functions");
    assert!(functions.len() >= 3);
    for function in &functions {
        let environment = datadog
            .function_environment(function, &tables)
            .expect("environment");
        for (name, value) in [
            ("OBSERVABILITY", "datadog"),
            ("DD_SITE", "datadoghq.com"),
            ("DD_API_KEY_SECRET_ARN", SECRET),
            ("DD_SERVICE", "personalized-offers"),
            ("DD_ENV", "prod"),
            ("DD_VERSION", "abc123"),
            ("DD_TAGS", "project:personalized-offers,stage:prod"),
        ] {
            assert_eq!(
                environment.get(name).map(String::as_str),
                Some(value),
                "{function}: {name}"
            );
        }
        // The key only by reference, never in the environment.
        assert!(!environment.contains_key("DD_API_KEY"), "{function}");
        assert_eq!(
            datadog.function_layers(function).expect("layers"),
            [LAYER],
            "{function}: the extension"
        );
        assert_eq!(
            managed_policies(&datadog, function),
            ["DatadogApiKeyReadPolicy"],
            "{function}: reads the key"
        );
    }
    // The policy: the one secret, read only, on a Datadog stage only.
    let policy = datadog.resource("DatadogApiKeyReadPolicy").expect("policy");
    assert_eq!(policy["Condition"].as_str(), Some("UseDatadog"));
    let statements = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("statements");
    let [statement] = &statements[..] else {
        panic!("one statement: {statements:?}");
    };
    assert_eq!(statement["Effect"].as_str(), Some("Allow"));
    assert_eq!(
        statement["Action"].as_str(),
        Some("secretsmanager:GetSecretValue")
    );
    assert_eq!(
        tagged(&statement["Resource"], "!Ref"),
        Some("DatadogApiKeySecretArn")
    );
    // No inline statement of any function reaches Secrets Manager (but the
    // webhook's own signing secret: the_webhook_reads_only_its_own_secret).
    for function in functions.iter().filter(|f| *f != "CampaignWebhookFunction") {
        let text = format!(
            "{:?}",
            default.properties(function).expect("function")["Policies"]
        );
        assert!(!text.contains("secretsmanager"), "{function}");
    }

    // The default stage: none of it.
    assert_eq!(default.condition("UseDatadog").ok(), Some(false));
    for function in &functions {
        let environment = default
            .function_environment(function, &tables)
            .expect("environment");
        assert_eq!(
            environment.get("OBSERVABILITY").map(String::as_str),
            Some("cloudwatch")
        );
        let datadog_variables: Vec<&String> = environment
            .keys()
            .filter(|name| name.starts_with("DD_"))
            .collect();
        assert!(
            datadog_variables.is_empty(),
            "{function}: {datadog_variables:?}"
        );
        assert!(default
            .function_layers(function)
            .expect("layers")
            .is_empty());
        assert!(
            managed_policies(&default, function).is_empty(),
            "{function}"
        );
    }
}

fn datadog_monitors() -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(offers_local::workspace_root().join("ops/datadog/monitors.json"))
            .expect("ops/datadog/monitors.json");
    let file: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    file["monitors"].as_array().cloned().expect("monitors")
}

/// The runbook section a monitor's message links to (`${RUNBOOK_URL}#<anchor>`).
fn monitor_runbook_anchor(monitor: &serde_json::Value) -> Option<String> {
    let rest = monitor["monitor"]["message"]
        .as_str()?
        .split("${RUNBOOK_URL}#")
        .nth(1)?;
    Some(
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect(),
    )
}

#[test]
fn every_alarm_has_a_datadog_monitor_linking_the_same_runbook_section() {
    let template = template();
    let monitors = datadog_monitors();
    let alarms = template
        .logical_ids_of_type("AWS::CloudWatch::Alarm")
        .expect("alarms");
    // An entry naming `alarms` stands for exactly those; one without, for
    // every other alarm on its metric (errors and throttles, split by function).
    let counterpart = |id: &str, namespace: &str, metric: &str| {
        monitors
            .iter()
            .find(|monitor| {
                monitor["alarms"]
                    .as_array()
                    .is_some_and(|alarms| alarms.contains(&json!(id)))
            })
            .or_else(|| {
                monitors.iter().find(|monitor| {
                    monitor["alarms"].is_null()
                        && monitor["cloudwatch"]["namespace"] == namespace
                        && monitor["cloudwatch"]["metric"] == metric
                })
            })
    };
    for id in &alarms {
        let alarm = template.properties(id).expect("alarm");
        let (namespace, metric) = alarm_metric(alarm);
        let (namespace, metric) = (namespace.as_str(), metric.as_str());
        let monitor = counterpart(id, namespace, metric)
            .unwrap_or_else(|| panic!("{id}: no Datadog monitor for {namespace} {metric}"));
        assert_eq!(
            monitor_runbook_anchor(monitor),
            alarm_runbook_anchor(alarm),
            "{id}: the monitor links the alarm's runbook section"
        );
    }
    // The system's own counts: the Datadog metric and outcome the code emits.
    let now = chrono::Utc::now();
    let function_sets = [
        (
            "personalized_offers.stats.",
            offers_shared::metrics::stats_metrics(&StatsBatchReport::default(), now),
        ),
        (
            "personalized_offers.challenge.",
            offers_shared::metrics::challenge_metrics(&ProgressReport::default(), now),
        ),
        (
            "personalized_offers.visits.",
            visit_metrics(&VisitReport::default(), now),
        ),
        (
            "personalized_offers.budget.",
            offers_shared::metrics::dispatch_metrics(&budget_batch(), now),
        ),
        (
            "",
            offers_shared::metrics::dispatch_metrics(&DispatchReport::default(), now),
        ),
    ];
    for monitor in &monitors {
        let query = monitor["monitor"]["query"].as_str().expect("query");
        // The set of the function the monitor watches (by its metrics' prefix).
        let set = &function_sets
            .iter()
            .find(|(prefix, _)| query.contains(prefix))
            .expect("a function's metrics")
            .1;
        let anchor = monitor_runbook_anchor(monitor).expect("a runbook link");
        assert!(
            runbook_has_section(&anchor),
            "no section #{anchor} in docs/runbook.md"
        );
        let (namespace, metric) = (
            monitor["cloudwatch"]["namespace"]
                .as_str()
                .expect("namespace"),
            monitor["cloudwatch"]["metric"].as_str().expect("metric"),
        );
        assert!(
            alarms.iter().any(|id| {
                let alarm = template.properties(id).expect("alarm");
                alarm_metric(alarm) == (namespace.to_owned(), metric.to_owned())
            }),
            "a monitor mirrors no alarm: {namespace} {metric}"
        );
        if namespace == offers_shared::metrics::NAMESPACE {
            let emitted: Vec<_> = set.metrics.iter().filter(|m| m.name == metric).collect();
            assert!(!emitted.is_empty(), "the code emits no {metric}");
            for emitted in emitted {
                let name = format!(
                    "{}.{}{{",
                    offers_shared::metrics::DATADOG_PREFIX,
                    emitted.datadog_name
                );
                assert!(query.contains(&name), "{metric}: {query} watches {name}");
                for tag in &emitted.tags {
                    // Each limit of a campaign's budget alerts on its own:
                    // split, not filtered.
                    if tag.key == "campaign_id" || tag.key == "budget" {
                        assert!(query.contains("by {campaign_id,budget}"), "{query}");
                        continue;
                    }
                    let tag = format!("{}:{}", tag.key, tag.value);
                    assert!(query.contains(&tag), "{metric}: {query} filters {tag}");
                }
            }
        }
        // One monitor per kind of Lambda alarm, for every function of the
        // stage (the new ones too), split by function.
        if namespace == "AWS/Lambda" && ["Errors", "Throttles"].contains(&metric) {
            assert!(query.contains("by {functionname}"), "{query}");
        }
    }
}

#[test]
fn the_monitors_apply_script_fills_every_placeholder() {
    let output = std::process::Command::new("python3")
        .arg(offers_local::workspace_root().join("ops/datadog/apply_monitors.py"))
        .args(["--stage", "prod", "--dry-run"])
        .env(
            "DISPATCHER_FUNCTION",
            "offers-prod-OfferDispatcherFunction-AbC",
        )
        .env("FAILURE_QUEUE", "offers-prod-Failure-XyZ")
        .env("STATS_FUNCTION", "offers-prod-CampaignStatsFunction-AbC")
        .env("STATS_FAILURE_QUEUE", "offers-prod-StatsFailure-XyZ")
        .env(
            "PROGRESS_FUNCTION",
            "offers-prod-ChallengeProgressFunction-AbC",
        )
        .env("PROGRESS_FAILURE_QUEUE", "offers-prod-ProgressFailure-XyZ")
        .env("VISITS_FUNCTION", "offers-prod-UserVisitsFunction-AbC")
        .env("VISITS_FAILURE_QUEUE", "offers-prod-VisitsFailure-XyZ")
        .env(
            "PLAN_STATE_MACHINE",
            "arn:aws:states:us-east-1:000000000000:stateMachine:offers-plan-prod",
        )
        .env("RUNBOOK_URL", "https://wiki.example/runbook")
        .env("REJECTIONS_THRESHOLD", "250")
        .env_remove("DD_API_KEY")
        .env_remove("DD_APP_KEY")
        .output()
        .expect("python3 runs the script");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert!(!text.contains("${"), "a placeholder left: {text}");
    let monitors: Vec<serde_json::Value> = serde_json::from_str(&text).expect("JSON");
    assert_eq!(monitors.len(), datadog_monitors().len());
    for monitor in &monitors {
        assert!(monitor["tags"]
            .as_array()
            .is_some_and(|tags| tags.contains(&json!("env:prod"))));
        assert!(monitor["message"]
            .as_str()
            .is_some_and(|m| m.contains("https://wiki.example/runbook#")));
        assert!(monitor["options"]["thresholds"]["critical"].is_number());
    }
    let rejections = monitors
        .iter()
        .find(|m| {
            m["query"]
                .as_str()
                .is_some_and(|q| q.contains("outcome:rejected"))
        })
        .expect("the rejections monitor");
    // The plan's failed executions, by the state machine's ARN (Datadog's lowercased tag).
    assert!(monitors.iter().any(|m| m["query"]
        == "sum(last_5m):sum:aws.states.executions_failed{statemachinearn:arn:aws:states:us-east-1:000000000000:statemachine:offers-plan-prod}.as_count() > 0"));
    assert_eq!(
        rejections["query"],
        "sum(last_15m):sum:personalized_offers.dispatch.records{function:offers-prod-offerdispatcherfunction-abc,outcome:rejected}.as_count() > 250"
    );
    assert_eq!(rejections["options"]["thresholds"]["critical"], 250.0);
}

/// The plan-chunk function's calls: one batch of the map planned and
/// written as main.rs wires it (the pending table only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_chunk_may_make_exactly_the_dynamodb_calls_it_makes() {
    use offers_shared::domain::campaign::Snapshot;
    use offers_shared::dynamo::batch_write::Backoff;
    use offers_shared::dynamo::PendingTable;
    use offers_shared::plan::chunk::{plan_chunk, BatchInput, ChunkEvent};

    let template = template();
    let bed = TestBed::new().await;
    let recorder = PermissionRecorder::default();
    let environment = bed.environment(PLAN_CHUNK, &[]);
    let config =
        plan_chunk::PlanChunkConfig::from_env(&offers_shared::config::Env(move |name: &str| {
            environment.get(name).cloned()
        }))
        .expect("plan-chunk config");
    let pending = PendingTable::new(
        bed.recording_client(&config.sdk, &recorder),
        config.tables.pending().expect("pending"),
    );
    let serde_json::Value::Object(plan) =
        serde_json::from_str(include_str!("../../events/sample-plan.json")).expect("plan")
    else {
        panic!("a plan is an object");
    };
    let snapshot = Snapshot {
        counters: Vec::new(),
        taken_at: chrono::Utc::now(),
    };
    let event = ChunkEvent {
        items: (0..30)
            .map(|index| json!({"index": index, "user": {"userId": format!("perm-{index}")}}))
            .collect(),
        batch_input: BatchInput {
            plan,
            ttl: future_epoch(30),
            snapshot: snapshot.encode(),
            snapshot_at: snapshot.taken_at_text(),
        },
    };
    let report = plan_chunk(&pending, event, &Backoff::default(), 4)
        .await
        .expect("planned");
    assert_eq!(report.written, 60);
    assert_eq!(
        needed(&bed, &recorder),
        granted(&template, PLAN_CHUNK),
        "plan chunk: calls made vs policy"
    );
}

/// The plan's state machine may do exactly what its definition's states
/// need: each Task's integration on the table or function its
/// substitutions name, the map's reader and writer on the plan bucket's two
/// prefixes, the map's child executions of itself only; no wildcard
/// resource but an object prefix.
#[test]
fn the_plan_state_machine_may_do_exactly_what_its_states_need() {
    let template = template();
    let properties = template
        .properties("PlanStateMachine")
        .expect("state machine");
    let substitution = |text: &str| -> String {
        let name = text
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{text} is a substitution"));
        let value = &properties["DefinitionSubstitutions"][name];
        tagged(value, "!Ref")
            .or_else(|| tagged(value, "!GetAtt").and_then(|arn| arn.strip_suffix(".Arn")))
            .unwrap_or_else(|| panic!("{name}: a !Ref or a !GetAtt X.Arn"))
            .to_owned()
    };
    let name = properties["Name"].clone();
    assert_eq!(tagged(&name, "!Sub"), Some("offers-plan-${Stage}"));
    let myself = "stateMachine:offers-plan-${Stage}";
    let mut needed: BTreeSet<(String, String)> = BTreeSet::new();
    let mut need = |action: &str, resource: String| {
        needed.insert((action.to_owned(), resource));
    };
    fn states(machine: &Value) -> Vec<&Value> {
        let mut all = Vec::new();
        for (_, state) in machine["States"].as_mapping().expect("States") {
            all.push(state);
            if state["ItemProcessor"] != Value::Null {
                all.extend(states(&state["ItemProcessor"]));
            }
        }
        all
    }
    for state in states(&properties["Definition"]) {
        match state["Resource"].as_str() {
            Some("arn:aws:states:::dynamodb:getItem") => need(
                "dynamodb:GetItem",
                substitution(state["Parameters"]["TableName"].as_str().expect("table")),
            ),
            Some("arn:aws:states:::lambda:invoke") => need(
                "lambda:InvokeFunction",
                substitution(
                    state["Parameters"]["FunctionName"]
                        .as_str()
                        .expect("function"),
                ),
            ),
            Some(other) if state["Type"] == "Task" => panic!("a Task of {other}"),
            _ => {}
        }
        if state["Type"] != "Map" {
            continue;
        }
        assert_eq!(
            state["ItemProcessor"]["ProcessorConfig"]["Mode"],
            "DISTRIBUTED"
        );
        need("states:StartExecution", myself.to_owned());
        for action in ["states:DescribeExecution", "states:StopExecution"] {
            need(action, "execution:offers-plan-${Stage}/*".to_owned());
        }
        assert_eq!(
            state["ItemReader"]["Resource"],
            "arn:aws:states:::s3:getObject"
        );
        need("s3:GetObject", "PlanBucket.Arn/audiences/*".to_owned());
        let writer = &state["ResultWriter"];
        assert_eq!(writer["Resource"], "arn:aws:states:::s3:putObject");
        let bucket = substitution(writer["Parameters"]["Bucket"].as_str().expect("bucket"));
        let prefix = writer["Parameters"]["Prefix"].as_str().expect("prefix");
        for action in [
            "s3:PutObject",
            "s3:GetObject",
            "s3:ListMultipartUploadParts",
            "s3:AbortMultipartUpload",
        ] {
            need(action, format!("{bucket}.Arn/{prefix}/*"));
        }
    }
    let mut granted: BTreeSet<(String, String)> = BTreeSet::new();
    for policy in properties["Policies"].as_sequence().expect("Policies") {
        for statement in policy["Statement"].as_sequence().expect("statements") {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"));
            let resource = &statement["Resource"];
            let resource = if let Some(arn) = tagged(resource, "!GetAtt") {
                arn.strip_suffix(".Arn").expect("X.Arn").to_owned()
            } else if let Some(sub) = tagged(resource, "!Sub") {
                sub.strip_prefix("${")
                    .map(|rest| rest.replacen('}', "", 1))
                    .or_else(|| {
                        sub.split_once(":states:${AWS::Region}:${AWS::AccountId}:")
                            .map(|(_, own)| own.to_owned())
                    })
                    .unwrap_or_else(|| panic!("an unexpected resource {sub}"))
            } else {
                panic!("a resource that is not the stack's own: {resource:?}")
            };
            let actions = match &statement["Action"] {
                Value::Sequence(actions) => actions.clone(),
                action => vec![action.clone()],
            };
            for action in actions {
                granted.insert((
                    action.as_str().expect("action").to_owned(),
                    resource.clone(),
                ));
            }
        }
    }
    assert_eq!(granted, needed, "the state machine's policy vs its states");
}
