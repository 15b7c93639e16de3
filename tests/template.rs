//! What template.yaml must never lose: the dispatcher's safe stream mapping,
//! a JWT authorizer on every route, TTL, retained tables with point-in-time
//! recovery, alarms on the metrics the code really emits, and for
//! each function exactly the DynamoDB permissions its calls need: recorded
//! from the calls each one really makes on DynamoDB Local, down to the table
//! and index, and compared with its policy both ways.

use offers_integration_tests::*;
use offers_local::template::tagged;
use offers_local::SamTemplate;
use offers_shared::dispatch::{BatchReport, Outcome, RecordReport};
use offers_shared::domain::ReasonCode;
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
fn the_dispatchers_stream_mapping_is_safe() {
    let template = template();
    let mapping = template
        .stream_mapping("OfferDispatcherFunction")
        .expect("DynamoDB event");
    assert_eq!(mapping.table, "PendingPersonalizedOffersTable");
    assert_eq!(
        mapping.event_names,
        Some(vec!["INSERT".to_owned()]),
        "INSERT filter"
    );
    assert!(
        mapping.report_batch_item_failures,
        "partial batch responses"
    );
    assert!(mapping.bisect_batch_on_function_error, "bisect");
    assert!(mapping.maximum_retry_attempts <= 10_000, "finite retries");
    assert!(
        mapping.maximum_record_age.as_secs() <= 604_800,
        "finite record age"
    );
    // The parameters cannot be set to -1 (infinite) either.
    let parameters = template_parameters();
    for (name, max) in [
        ("DispatcherMaximumRetryAttempts", 10_000),
        ("DispatcherMaximumRecordAgeInSeconds", 604_800),
    ] {
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
    let event = template
        .properties("OfferDispatcherFunction")
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
        .clone();
    let on_failure = &event["DestinationConfig"]["OnFailure"];
    assert_eq!(on_failure["Type"].as_str(), Some("SQS"));
    let queue = tagged(&on_failure["Destination"], "!GetAtt")
        .and_then(|target| target.strip_suffix(".Arn"))
        .expect("!GetAtt <queue>.Arn");
    assert_eq!(
        resource_type(&template, queue).as_deref(),
        Some("AWS::SQS::Queue")
    );
}

fn template_parameters() -> serde_json::Value {
    let text = std::fs::read_to_string(offers_local::workspace_root().join("template.yaml"))
        .expect("template.yaml");
    let yaml: Value = yaml_serde::from_str(&text).expect("yaml");
    serde_json::to_value(&yaml["Parameters"]).expect("parameters as JSON")
}

#[test]
fn every_route_is_behind_a_jwt_authorizer() {
    let template = template();
    let routes = template.http_routes().expect("routes");
    assert!(routes.len() >= 5, "{routes:?}");
    for route in routes {
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
    for table in ["PendingPersonalizedOffersTable", "LoyaltyOffersTable"] {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_may_make_exactly_the_dynamodb_calls_it_makes() {
    let template = template();
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;

    // Dispatcher: an offer and a rejection by transaction, then the same
    // again for rows replaced before their INSERT is handled (written alone).
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
    assert_eq!(
        needed(&bed, &recorder),
        granted(&template, DISPATCHER),
        "dispatcher: calls made vs policy"
    );

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
    assert_eq!(
        needed(&bed, &recorder),
        granted(&template, LOOKUP),
        "lookup: calls made vs policy"
    );

    // Support: assign, a keyed retry, a keyed request refused (the earlier
    // offer is looked for), revoke twice and an unknown id, the list.
    let recorder = PermissionRecorder::default();
    let config = bed.support_config(&[]);
    let support =
        support_assignment::build_support(bed.recording_client(&config.sdk, &recorder), &config);
    let path = "/support/users/perm-user/offers";
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
        needed(&bed, &recorder),
        granted(&template, SUPPORT),
        "support: calls made vs policy"
    );
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
    // Every function's errors.
    for function in template.function_ids().expect("functions") {
        assert!(
            alarms.iter().any(|id| {
                let p = alarm(id);
                p["MetricName"].as_str() == Some("Errors")
                    && watched_function(&p).as_deref() == Some(function.as_str())
            }),
            "no Errors alarm for {function}"
        );
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
        Outcome::Rejected {
            code: ReasonCode::UnknownOffer,
            rejection_id: uuid::Uuid::nil(),
            pending_row_kept: false,
        },
    );
    // And the records that failed and were reported for retry.
    assert!(alarms.iter().any(|id| id == "DispatcherFailedRecordsAlarm"));
    watches_the_dispatchers_count(
        "DispatcherFailedRecordsAlarm",
        &alarm("DispatcherFailedRecordsAlarm"),
        Outcome::Failed(offers_shared::dispatch::Failure::StoreDown),
    );
    // Each alarm notifies the optional topic and names its runbook section.
    let runbook = std::fs::read_to_string(offers_local::workspace_root().join("docs/runbook.md"))
        .expect("docs/runbook.md");
    for id in &alarms {
        let properties = alarm(id);
        assert!(properties["AlarmActions"] != Value::Null, "{id} notifies");
        let description = properties["AlarmDescription"]
            .as_str()
            .expect("description");
        let anchor = description
            .split("docs/runbook.md#")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("{id} names no runbook section"));
        let heading = runbook.lines().any(|line| {
            line.starts_with('#')
                && line
                    .trim_start_matches('#')
                    .trim()
                    .to_lowercase()
                    .replace(' ', "-")
                    == anchor
        });
        assert!(heading, "{id}: no section #{anchor} in docs/runbook.md");
    }
}

/// Asserts that an alarm watches the count the dispatcher emits for records
/// with `outcome`: the metric name, namespace and dimensions are taken from
/// the EMF line the code writes for a batch of one such record (the one count
/// that is 1), not from strings written here.
fn watches_the_dispatchers_count(id: &str, alarm: &Value, outcome: Outcome) {
    let report = BatchReport {
        records: vec![RecordReport::of_other(None, None, outcome)],
        ..BatchReport::default()
    };
    let line = offers_shared::metrics::emf::emf_line(
        "f",
        &offers_shared::metrics::dispatch_metrics(&report, chrono::Utc::now()),
    );
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
    let function = alarm["Dimensions"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|dimension| dimension["Name"].as_str() == Some("FunctionName"))
        .and_then(|dimension| tagged(&dimension["Value"], "!Ref"));
    assert_eq!(function, Some(DISPATCHER), "{id}: the dispatcher's metric");
}
