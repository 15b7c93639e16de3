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
    // No inline statement of any function reaches Secrets Manager.
    for function in &functions {
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
    let counterpart = |namespace: &str, metric: &str| {
        monitors.iter().find(|monitor| {
            monitor["cloudwatch"]["namespace"] == namespace
                && monitor["cloudwatch"]["metric"] == metric
        })
    };
    for id in &alarms {
        let alarm = template.properties(id).expect("alarm");
        let (namespace, metric) = (
            alarm["Namespace"].as_str().expect("namespace"),
            alarm["MetricName"].as_str().expect("metric"),
        );
        let monitor = counterpart(namespace, metric)
            .unwrap_or_else(|| panic!("{id}: no Datadog monitor for {namespace} {metric}"));
        assert_eq!(
            monitor_runbook_anchor(monitor),
            alarm_runbook_anchor(alarm),
            "{id}: the monitor links the alarm's runbook section"
        );
    }
    // The system's own counts: the Datadog metric and outcome the code emits.
    let set = offers_shared::metrics::dispatch_metrics(&BatchReport::default(), chrono::Utc::now());
    for monitor in &monitors {
        let query = monitor["monitor"]["query"].as_str().expect("query");
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
                alarm["Namespace"] == namespace && alarm["MetricName"] == metric
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
    assert_eq!(
        rejections["query"],
        "sum(last_15m):sum:personalized_offers.dispatch.records{function:offers-prod-offerdispatcherfunction-abc,outcome:rejected}.as_count() > 250"
    );
    assert_eq!(rejections["options"]["thresholds"]["critical"], 250.0);
}
