//! Redemption budgets' cost on DynamoDB Local, against floors measured in
//! the same run.
//!
//! A fresh DynamoDB Local holds a manual campaign with a `redemptions`
//! budget far above what the run uses, and `co-fries` offers made by the
//! dispatcher from pending rows: half of the campaign, half of campaigns
//! without a budget. Each offer is redeemed once, interleaved (rotating
//! which goes first), after an uncounted warm-up of each:
//!
//! - **budgeted handler**: `POST /rewards/offers/{id}/redemptions` of an
//!   offer of the budgeted campaign, through the activity handler as
//!   main.rs wires it (its first write finds the offer's campaign budgeted,
//!   the offer as it was comes back with the refusal, and the offer's
//!   Update and the campaign's counter go in one transaction);
//! - **floor**: a bare `TransactWriteItems` of the same two writes
//!   (`offers_shared::dynamo::budgeted_redemption_updates`: the offer's
//!   conditional Update and the campaign's `ADD usedRedemptions 1` on its
//!   limit) on another offer of the campaign, with a client of the same
//!   settings;
//! - **unbudgeted handler**: the same request on an offer of a campaign
//!   without a budget (one UpdateItem, whose condition now also keeps the
//!   budgeted campaign out), against
//! - **its floor**: the bare conditional UpdateItem of the same shape, as
//!   `benches/redemption.rs` measures it.
//!
//! Run: `cargo bench -p offers-integration-tests --bench budget`.

use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::Utc;
use offers_integration_tests::*;
use offers_local::{DynamoDbLocal, StartOptions};
use offers_shared::domain::{parse_redemption_request, BudgetTaken, PersonalizedOffer, Redemption};
use offers_shared::dynamo::{budgeted_redemption_updates, dynamodb_client, redemption_update};
use offers_shared::ports::RedemptionLimits;
use serde_json::json;
use std::time::{Duration, Instant};

const REDEMPTIONS: usize = 300;
const WARM_UP: usize = 60;
const TARGET_RATIO: f64 = 1.15;
const CAMPAIGN: &str = "camp-bench-budget";
const LIMIT: u64 = 1_000_000;

fn main() {
    run_bench(run());
}

async fn run() {
    let local = DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"));
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    bed.put_campaign(
        json!({"campaignId": CAMPAIGN, "mode": "manual", "budget": {"redemptions": LIMIT}}),
    )
    .await;
    let per_kind = REDEMPTIONS + WARM_UP;
    let budgeted = seed(&bed, 2 * per_kind, Some(CAMPAIGN)).await;
    let plain = seed(&bed, 2 * per_kind, None).await;
    let (handler_budgeted, bare_budgeted) = budgeted.split_at(per_kind);
    let (handler_plain, bare_plain) = plain.split_at(per_kind);

    let activity = bed.activity(&[]);
    let config = bed.activity_config(&[]);
    let bare = dynamodb_client(&bed.sdk, &config.sdk);
    let offers_table = config.tables.loyalty_offers().expect("offers").to_owned();
    let campaigns_table = config.tables.campaigns().expect("campaigns").to_owned();
    let body = json!({"orderId": "order-1", "totalCost": 12.5, "serviceMode": "pickup"});
    let request = parse_redemption_request(body.to_string().as_bytes()).expect("valid");
    let limits = RedemptionLimits {
        redemptions: Some(LIMIT),
        discount_value: None,
    };

    // The handler's transaction, with the offer as its first write returned it.
    let bare_transaction = |offer: &PersonalizedOffer| {
        let (bare, request, limits) = (&bare, &request, &limits);
        let tables = (offers_table.as_str(), campaigns_table.as_str());
        let offer = offer.clone();
        async move {
            let started = Instant::now();
            let mut redemption = Redemption::of(offer.personalized_offer_id, request, Utc::now());
            redemption.budget_use = Some(BudgetTaken {
                redemptions: true,
                discount_value: false,
            });
            let record = serde_dynamo::to_attribute_value(&redemption).expect("record");
            let (offer_update, campaign_update) = budgeted_redemption_updates(
                tables,
                (&offer.user_id, offer.personalized_offer_id),
                Some(&offer),
                &redemption,
                record,
                (CAMPAIGN, limits),
            )
            .expect("updates");
            bare.transact_write_items()
                .transact_items(TransactWriteItem::builder().update(offer_update).build())
                .transact_items(TransactWriteItem::builder().update(campaign_update).build())
                .send()
                .await
                .expect("transaction");
            started.elapsed()
        }
    };
    let bare_update = |offer: &PersonalizedOffer| {
        let (bare, table, request) = (&bare, &offers_table, &request);
        let offer = offer.clone();
        async move {
            let started = Instant::now();
            let redemption = Redemption::of(offer.personalized_offer_id, request, Utc::now());
            let record = serde_dynamo::to_attribute_value(&redemption).expect("record");
            let update = bare
                .update_item()
                .table_name(table)
                .key("userId", AttributeValue::S(offer.user_id.clone()))
                .key(
                    "personalizedOfferId",
                    AttributeValue::S(offer.personalized_offer_id.to_string()),
                )
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            let output = redemption_update(update, None, &redemption, record)
                .send()
                .await
                .expect("conditional update");
            assert!(output.attributes.is_some());
            started.elapsed()
        }
    };

    for index in 0..WARM_UP {
        redeem_through_handler(&activity, &handler_budgeted[index], &body).await;
        bare_transaction(&bare_budgeted[index]).await;
        redeem_through_handler(&activity, &handler_plain[index], &body).await;
        bare_update(&bare_plain[index]).await;
    }
    let mut times: [Vec<Duration>; 4] = Default::default();
    for index in WARM_UP..per_kind {
        // Rotate which goes first, so that none always follows another.
        for step in 0..4 {
            match (index + step) % 4 {
                0 => times[0]
                    .push(redeem_through_handler(&activity, &handler_budgeted[index], &body).await),
                1 => times[1].push(bare_transaction(&bare_budgeted[index]).await),
                2 => times[2]
                    .push(redeem_through_handler(&activity, &handler_plain[index], &body).await),
                _ => times[3].push(bare_update(&bare_plain[index]).await),
            }
        }
    }
    let used = bed
        .client
        .get_item()
        .table_name(&campaigns_table)
        .key("campaignId", AttributeValue::S(CAMPAIGN.into()))
        .send()
        .await
        .expect("campaign")
        .item
        .and_then(|item| item.get("usedRedemptions")?.as_n().ok().cloned());
    assert_eq!(
        used.as_deref(),
        Some((2 * per_kind).to_string().as_str()),
        "every budgeted redemption, handler's and bare, counted once"
    );

    let labels = [
        "budgeted handler (event JSON -> POST .../redemptions -> 201):",
        "bare TransactWriteItems of the same two writes:             ",
        "unbudgeted handler (one conditional UpdateItem):           ",
        "bare conditional UpdateItem (same shape):                  ",
    ];
    let p50: Vec<Duration> = times.iter_mut().map(|t| nearest_rank(t, 50.0)).collect();
    println!("budget bench: {REDEMPTIONS} first redemptions of distinct offers each, warm-up {WARM_UP} each, not counted");
    for (index, label) in labels.iter().enumerate() {
        println!(
            "  {label} p50 {:>8.3} ms  p99 {:>8.3} ms",
            ms(p50[index]),
            ms(nearest_rank(&mut times[index], 99.0))
        );
    }
    let verdict = |ratio: f64| {
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        }
    };
    let budgeted_ratio = p50[0].as_secs_f64() / p50[1].as_secs_f64();
    let plain_ratio = p50[2].as_secs_f64() / p50[3].as_secs_f64();
    println!(
        "  ratio of p50s, budgeted handler / bare transaction: {budgeted_ratio:.3}  (target <= {TARGET_RATIO:.2}: {})",
        verdict(budgeted_ratio)
    );
    println!(
        "  ratio of p50s, unbudgeted handler / bare UpdateItem: {plain_ratio:.3}  (target <= {TARGET_RATIO:.2}: {}; compare benches/redemption.rs)",
        verdict(plain_ratio)
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("  machine load average (1, 5, 15 min): {}", load.trim());
    }
}

/// `count` offers made the production way (pending rows through the
/// dispatcher), of `campaign` (else each of its own campaign).
async fn seed(bed: &TestBed, count: usize, campaign: Option<&str>) -> Vec<PersonalizedOffer> {
    let mut stream = bed.stream().await;
    let prefix = campaign.unwrap_or("camp-plain");
    let rows: Vec<_> = (0..count)
        .map(|n| {
            let mut row = fries_row(
                &format!("us-east-1:bench-user-{}", n % 50),
                &format!("{prefix}-{n}+co-fries"),
            );
            row["campaignId"] = json!(campaign.map_or(format!("camp-plain-{n}"), str::to_owned));
            row
        })
        .collect();
    for chunk in rows.chunks(100) {
        bed.dispatch_rows(&mut stream, chunk).await;
    }
    let offers: Vec<PersonalizedOffer> = stored_offers(bed)
        .await
        .into_iter()
        .filter(|offer| match campaign {
            Some(campaign) => offer.campaign_id.as_deref() == Some(campaign),
            None => offer
                .campaign_id
                .as_deref()
                .is_some_and(|id| id.starts_with("camp-plain-")),
        })
        .collect();
    assert_eq!(offers.len(), count);
    offers
}
