//! Campaign budgets (contract section 14) end to end on DynamoDB Local:
//! definitions stored as `offers campaign put` stores them, offers of the
//! campaign redeemed and voided through the activity handler, at once.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use offers_integration_tests::*;
use offers_local::StreamReader;
use offers_shared::domain::campaign::BudgetUse;
use offers_shared::domain::CampaignId;
use offers_shared::dynamo::CampaignsTable;
use serde_json::{json, Value};
use std::collections::HashMap;

const OWNER: &str = "us-east-1:0d6f2c1e-5555-4a43-9d27-0f5d8a7c1e11";
const CAMPAIGN: &str = "camp-budget";
const PATIENT: [(&str, &str); 2] = [
    ("DYNAMODB_OPERATION_TIMEOUT_MS", "60000"),
    ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "60000"),
];

fn campaigns(bed: &TestBed) -> CampaignsTable {
    CampaignsTable::new(bed.client.clone(), bed.table(CAMPAIGNS))
}

/// Stores the manual campaign with `budget` (a new version keeps `used`).
async fn put_budget(bed: &TestBed, budget: Value) {
    bed.put_campaign(json!({"campaignId": CAMPAIGN, "mode": "manual", "budget": budget}))
        .await;
}

async fn used(bed: &TestBed) -> BudgetUse {
    campaigns(bed)
        .get(CAMPAIGN)
        .await
        .expect("read")
        .expect("stored")
        .used
}

/// `count` offers of the campaign (unlimited uses), copies of one the
/// dispatcher made.
async fn campaign_offers(count: usize) -> (TestBed, Vec<String>) {
    let (bed, ids) = TestBed::with_offers(&[fries_row(OWNER, "camp-1+co-fries")]).await;
    let model = &ids["camp-1+co-fries"];
    let mut copies = Vec::new();
    for _ in 0..count {
        let copy = bed
            .copy_offer(OWNER, model, |offer| {
                offer.campaign_id = Some(CampaignId::literal(CAMPAIGN));
                offer.rules = serde_json::from_value(json!({})).expect("rules");
            })
            .await;
        copies.push(copy);
    }
    (bed, copies)
}

async fn raw_offer(bed: &TestBed, id: &str) -> HashMap<String, AttributeValue> {
    bed.raw_offer(OWNER, id).await
}

fn redeem(id: &str, order_id: &str, discount: u64) -> Value {
    with_body(
        api_event(
            "POST",
            &format!("/rewards/offers/{id}/redemptions"),
            "",
            Identity::Jwt(OWNER),
        ),
        &json!({"orderId": order_id, "totalCost": 100, "discount": discount, "serviceMode": "pickup"}),
    )
}

fn void(id: &str, order_id: &str) -> Value {
    api_event(
        "DELETE",
        &format!("/rewards/offers/{id}/redemptions/{order_id}"),
        "",
        Identity::Jwt(OWNER),
    )
}

fn code(answer: &ApiResponse) -> (u16, &str) {
    (
        answer.status,
        answer.body["error"]["code"].as_str().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_redemptions_at_once_against_ten_left_exactly_ten_succeed() {
    let (bed, ids) = campaign_offers(41).await;
    put_budget(&bed, json!({"redemptions": 10})).await;
    let before: Vec<_> = join_all(ids.iter().map(|id| raw_offer(&bed, id))).await;
    // 40 transactions on one campaign item at once queue up in DynamoDB
    // Local on a busy machine: no call is cut short by the deployed timeouts.
    let activity = bed.activity(&PATIENT);
    let events: Vec<Value> = ids[..40]
        .iter()
        .map(|id| redeem(id, "order-1", 1))
        .collect();
    let answers = join_all(events.iter().map(|event| call_activity(&activity, event))).await;
    let won: Vec<usize> = (0..40).filter(|n| answers[*n].status == 201).collect();
    assert_eq!(won.len(), 10, "exactly the budget");
    for (n, answer) in answers.iter().enumerate() {
        if answer.status != 201 {
            assert_eq!(code(answer), (409, "budget_exhausted"), "{:?}", answer.body);
            assert_eq!(
                raw_offer(&bed, &ids[n]).await,
                before[n],
                "a refused redemption leaves its offer byte for byte"
            );
        }
    }
    assert_eq!(used(&bed).await.redemptions, 10);

    // The same order again: the first redemption, no second use.
    let again = call_activity(&activity, &redeem(&ids[won[0]], "order-1", 1)).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(used(&bed).await.redemptions, 10);

    // A void gives one back, once; the next order takes it.
    for _ in 0..2 {
        let voided = call_activity(&activity, &void(&ids[won[0]], "order-1")).await;
        assert_eq!(voided.status, 200, "{:?}", voided.body);
    }
    assert_eq!(used(&bed).await.redemptions, 9);
    let refused = ids[..40]
        .iter()
        .position(|id| *id != ids[won[0]] && !won.iter().any(|w| ids[*w] == *id))
        .expect("a refused offer");
    let taken = call_activity(&activity, &redeem(&ids[refused], "order-2", 1)).await;
    assert_eq!(taken.status, 201, "{:?}", taken.body);
    assert_eq!(used(&bed).await.redemptions, 10);

    // A limit lowered below what is used stops further use at once (the
    // cached limit is 10) and takes nothing back; `put` keeps `used`.
    put_budget(&bed, json!({"redemptions": 5})).await;
    assert_eq!(
        used(&bed).await.redemptions,
        10,
        "a put keeps what was used"
    );
    let stopped = call_activity(&activity, &redeem(&ids[40], "order-1", 1)).await;
    assert_eq!(
        code(&stopped),
        (409, "budget_exhausted"),
        "{:?}",
        stopped.body
    );
    assert_eq!(used(&bed).await.redemptions, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discount_budget_of_50_refuses_the_third_discount_of_20_until_a_void() {
    let (bed, ids) = campaign_offers(4).await;
    put_budget(&bed, json!({"discountValue": 50})).await;
    let activity = bed.activity(&[]);
    for id in &ids[..2] {
        let answer = call_activity(&activity, &redeem(id, "order-1", 20)).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    let before = raw_offer(&bed, &ids[2]).await;
    let third = call_activity(&activity, &redeem(&ids[2], "order-1", 20)).await;
    assert_eq!(code(&third), (409, "budget_exhausted"), "{:?}", third.body);
    assert_eq!(raw_offer(&bed, &ids[2]).await, before);
    assert_eq!(used(&bed).await.discount_value, 40.into());
    let voided = call_activity(&activity, &void(&ids[0], "order-1")).await;
    assert_eq!(voided.status, 200, "{:?}", voided.body);
    assert_eq!(used(&bed).await.discount_value, 20.into());
    let third = call_activity(&activity, &redeem(&ids[2], "order-1", 20)).await;
    assert_eq!(third.status, 201, "{:?}", third.body);
    assert_eq!(used(&bed).await.discount_value, 40.into());
    // Money is shown as the amount: 40, not 40.0.
    let stats = call_support(
        &bed.support(&[]),
        &support_event(
            "GET",
            &format!("/support/campaigns/{CAMPAIGN}/stats"),
            "",
            Agent::Support("agent-7"),
        ),
    )
    .await;
    assert_eq!(
        stats.body["budget"]["discountValue"].to_string(),
        r#"{"limit":50,"used":40}"#
    );

    // A campaign deleted while its offers are live: no budget any more.
    bed.client
        .delete_item()
        .table_name(bed.table(CAMPAIGNS))
        .key("campaignId", AttributeValue::S(CAMPAIGN.into()))
        .send()
        .await
        .expect("delete");
    let without = call_activity(&activity, &redeem(&ids[3], "order-1", 40)).await;
    assert_eq!(without.status, 201, "{:?}", without.body);
    let voided = call_activity(&activity, &void(&ids[1], "order-1")).await;
    assert_eq!(voided.status, 200, "{:?}", voided.body);
}

fn support_assign(user_id: &str, key: &str) -> Value {
    let event = with_body(
        support_event(
            "POST",
            &format!("/support/users/{}/offers", user_id.replace(':', "%3A")),
            "",
            Agent::Support("agent-7"),
        ),
        &json!({
            "offerId": "co-fries",
            "campaignId": CAMPAIGN,
            "expiryDate": future_date(14),
            "rules": {"minimumSpend": 5},
            "reason": "goodwill for a cold order"
        }),
    );
    with_header(event, "idempotency-key", key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_assignments_at_once_against_an_offers_budget_make_exactly_the_budget() {
    let bed = TestBed::with_sample_catalog().await;
    put_budget(&bed, json!({"offers": 20})).await;
    let support = bed.support(&PATIENT);
    let events: Vec<Value> = (0..25)
        .map(|n| support_assign(&format!("user-{n}"), &format!("key-{n}")))
        .collect();
    let answers = join_all(events.iter().map(|event| call_support(&support, event))).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    assert_eq!(created, 20, "exactly the budget");
    for answer in answers.iter().filter(|a| a.status != 201) {
        assert_eq!(code(answer), (422, "budget_exhausted"), "{:?}", answer.body);
    }
    assert_eq!(bed.scan(OFFERS).await.len(), 20);
    assert_eq!(used(&bed).await.offers, 20);

    // A retry of an assignment that was made returns it and uses nothing.
    let made = answers
        .iter()
        .position(|a| a.status == 201)
        .expect("one made");
    let again = call_support(&support, &events[made]).await;
    assert_eq!(
        (again.status, &again.body["personalizedOfferId"]),
        (201, &answers[made].body["personalizedOfferId"]),
        "{:?}",
        again.body
    );
    assert_eq!(used(&bed).await.offers, 20);

    // A raised limit applies at once; used counts on.
    put_budget(&bed, json!({"offers": 21})).await;
    let one_more = call_support(&support, &support_assign("user-x", "key-x")).await;
    assert_eq!(one_more.status, 201, "{:?}", one_more.body);
    assert_eq!(used(&bed).await.offers, 21);

    // The campaign's statistics show the limits set and their use.
    let stats = call_support(
        &support,
        &support_event(
            "GET",
            &format!("/support/campaigns/{CAMPAIGN}/stats"),
            "",
            Agent::Support("agent-7"),
        ),
    )
    .await;
    assert_eq!(stats.status, 200, "{:?}", stats.body);
    assert_eq!(
        stats.body["budget"],
        json!({"offers": {"limit": 21, "used": 21}})
    );
}

/// A pending row of the budgeted campaign, for `user_id`.
fn budgeted_row(user_id: &str) -> Value {
    let mut row = fries_row(user_id, &format!("{CAMPAIGN}+co-fries"));
    row["campaignId"] = json!(CAMPAIGN);
    row
}

/// The stored outcomes: offers of the campaign, and rejections by reason.
async fn dispatched_and_rejected(bed: &TestBed) -> (usize, Vec<String>) {
    let offers = bed
        .scan(OFFERS)
        .await
        .iter()
        .filter(|offer| offer["campaignId"] == CAMPAIGN)
        .count();
    let mut reasons: Vec<String> = bed
        .scan(REJECTED)
        .await
        .iter()
        .map(|rejection| rejection["reasonCode"].as_str().unwrap_or("?").to_owned())
        .collect();
    reasons.sort();
    (offers, reasons)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_rows_at_once_against_an_offers_budget_of_20_make_exactly_20_offers_and_replays_use_nothing(
) {
    let bed = TestBed::with_sample_catalog().await;
    put_budget(&bed, json!({"offers": 20})).await;
    let mut stream = bed.stream().await;
    join_all((0..30).map(|n| bed.put(PENDING, budgeted_row(&format!("user-{n}"))))).await;
    let records = stream.read_new().await.expect("stream");
    assert_eq!(records.len(), 30);

    // Three invocations at once (each its own warm process and cache), ten
    // records each, as three shards' batches would come.
    let dispatchers: Vec<_> = (0..3).map(|_| bed.dispatcher(&PATIENT)).collect();
    join_all(
        records
            .chunks(10)
            .zip(&dispatchers)
            .map(|(batch, dispatcher)| deliver(dispatcher, batch)),
    )
    .await;
    let rejected_for_budget = vec!["budget_exhausted".to_owned(); 10];
    assert_eq!(
        dispatched_and_rejected(&bed).await,
        (20, rejected_for_budget.clone()),
        "exactly the budget; the others kept as budget_exhausted"
    );
    assert_eq!(used(&bed).await.offers, 20);
    assert_eq!(bed.count(PENDING).await, 0, "every row consumed");
    let messages: Vec<String> = bed
        .scan(REJECTED)
        .await
        .iter()
        .map(|rejection| rejection["reasonMessage"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        messages
            .iter()
            .all(|m| m.contains(CAMPAIGN) && m.contains("20 of 20")),
        "{messages:?}"
    );

    // The same records again, twice in sequence, then four deliveries at
    // once: each record keeps its outcome, and the budget is used no more.
    // A raised limit makes room that a replay must not take either.
    put_budget(&bed, json!({"offers": 25})).await;
    for _ in 0..2 {
        deliver(&dispatchers[0], &records).await;
    }
    join_all(
        dispatchers
            .iter()
            .chain([&dispatchers[0]])
            .map(|d| deliver(d, &records)),
    )
    .await;
    assert_eq!(
        dispatched_and_rejected(&bed).await,
        (20, rejected_for_budget),
        "replays change nothing"
    );
    assert_eq!(used(&bed).await.offers, 20);
}

/// A row of the budgeted campaign for each user, delivered to `dispatcher`.
async fn rows_delivered(
    bed: &TestBed,
    stream: &mut StreamReader,
    dispatcher: &offer_dispatcher::DynamoDispatcher,
    users: &[&str],
) {
    for user in users {
        bed.put(PENDING, budgeted_row(user)).await;
    }
    let records = stream.read_new().await.expect("stream");
    deliver(dispatcher, &records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offers_budget_set_lowered_or_removed_applies_to_the_dispatcher() {
    let bed = TestBed::with_sample_catalog().await;
    put_budget(&bed, json!({"offers": 2})).await;
    let dispatcher = bed.dispatcher(&PATIENT);
    let mut stream = bed.stream().await;
    rows_delivered(&bed, &mut stream, &dispatcher, &["a", "b", "c"]).await;
    assert_eq!(dispatched_and_rejected(&bed).await.0, 2);
    assert_eq!(used(&bed).await.offers, 2);

    // Lowered below what is used: accepted, nothing taken back, no more
    // offers (the cached list still says 2: the item's limit decides).
    put_budget(&bed, json!({"offers": 1})).await;
    rows_delivered(&bed, &mut stream, &dispatcher, &["d"]).await;
    assert_eq!(dispatched_and_rejected(&bed).await.0, 2);
    assert_eq!(used(&bed).await.offers, 2);

    // The limit removed (the budget is gone from the definition): the
    // cached list still names the campaign, the refusal is read again, and
    // the offer is made without a budget.
    put_budget(&bed, json!({"redemptions": 100})).await;
    rows_delivered(&bed, &mut stream, &dispatcher, &["e"]).await;
    let (offers, reasons) = dispatched_and_rejected(&bed).await;
    assert_eq!(offers, 3);
    assert_eq!(reasons, vec!["budget_exhausted"; 2]);
    assert_eq!(used(&bed).await.offers, 2, "no budget, nothing counted");
}

/// A redemption of `id` for `order_id` with the exact `discount` given.
fn redeem_exactly(id: &str, order_id: &str, discount: Value) -> Value {
    let mut event = redeem(id, order_id, 0);
    let mut body: Value =
        serde_json::from_str(event["body"].as_str().unwrap_or_default()).expect("a JSON body");
    body["discount"] = discount;
    event["body"] = Value::String(body.to_string());
    event
}

/// The statistics function's binary on `records`: its EMF line and its
/// warning lines (the level the function logs at, WARN).
async fn statistics_binary(
    bed: &TestBed,
    records: &[Value],
    overrides: &[(&str, &str)],
) -> (Value, Vec<Value>) {
    let (answer, stdout) = invoke_binary_once(
        "campaign-stats",
        &bed.environment(STATS_FUNCTION, overrides),
        &shared_dynamodb().endpoint(),
        offers_local::streams::lambda_event(records),
    )
    .await;
    assert_eq!(
        answer,
        Ok(offers_local::Answer::Response(
            json!({"batchItemFailures": []})
        )),
        "{stdout}"
    );
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let emf: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    let [line] = &emf[..] else {
        panic!("one EMF line: {stdout}");
    };
    let warnings = lines
        .iter()
        .filter(|l| l["level"] == "WARN")
        .cloned()
        .collect();
    ((*line).clone(), warnings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statistics_function_emits_the_use_of_every_budget_limit_its_batch_changed() {
    let (bed, ids) = campaign_offers(2).await;
    put_budget(
        &bed,
        json!({"offers": 4, "redemptions": 10, "discountValue": 50.25}),
    )
    .await;
    // Three support assignments use the offers budget (3 of 4); two
    // redemptions the others (2 of 10; 45.5 of 50.25, 90.5...%).
    let support = bed.support(&[]);
    for n in 0..3 {
        let answer = call_support(
            &support,
            &support_assign(&format!("user-{n}"), &format!("key-{n}")),
        )
        .await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    let activity = bed.activity(&[]);
    for (id, discount) in ids.iter().zip([json!(20), json!(25.5)]) {
        let answer = call_activity(&activity, &redeem_exactly(id, "order-1", discount)).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    assert_eq!(
        used(&bed).await.discount_value,
        "45.5".parse().expect("decimal")
    );

    // The offers table's stream as Lambda delivers it: the copies' and the
    // assignments' INSERTs, the redemptions' MODIFYs.
    let mut stream = bed.offers_stream().await;
    let records = stream.read_new().await.expect("offers stream");
    let metric = offers_shared::metrics::BUDGET_USED_METRIC;
    let (line, warnings) = statistics_binary(&bed, &records, &[]).await;
    assert_eq!(line["FunctionName"], "campaign-stats");
    assert!(
        line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["Name"] == metric && m["Unit"] == "Percent"),
        "{line}"
    );
    // Offers, redemptions, discountValue (rounded down from the exact sum).
    assert_eq!(line[metric], json!([75, 20, 90]), "{line}");
    assert_eq!(line["BudgetsUnread"], json!(0), "{line}");
    assert_eq!(
        (&line["Failed"], &line["NotCounted"]),
        (&json!(0), &json!(0)),
        "{line}"
    );
    let applied = line["Applied"].clone();
    assert!(applied.as_u64() >= Some(5), "{line}");
    assert!(warnings.is_empty(), "{warnings:?}");

    // Delivered again (a replay): nothing counted twice, the budgets as they
    // stand reported all the same.
    let (line, _) = statistics_binary(&bed, &records, &[]).await;
    assert_eq!(line["Duplicates"], applied, "{line}");
    assert_eq!(line[metric], json!([75, 20, 90]), "{line}");

    // A budget read that fails (here: no such table) fails nothing: the
    // records are counted, the failure logged and counted.
    let third = call_activity(&activity, &redeem_exactly(&ids[0], "order-2", json!(1))).await;
    assert_eq!(third.status, 201, "{:?}", third.body);
    let records = stream.read_new().await.expect("offers stream");
    let (line, warnings) =
        statistics_binary(&bed, &records, &[("CAMPAIGNS_TABLE_NAME", "no-such-table")]).await;
    assert_eq!(line["BudgetsUnread"], json!(1), "{line}");
    assert!(line.get(metric).is_none(), "{line}");
    assert_eq!(
        (&line["Applied"], &line["Failed"]),
        (&json!(1), &json!(0)),
        "{line}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w["budgets_unread"] == json!(true) && w["campaigns"] == json!(1)),
        "{warnings:?}"
    );
}
