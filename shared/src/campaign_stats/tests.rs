//! The statistics service on the in-memory table: exactly once under replay,
//! parts, conflicts, refusals and outages.

use super::memory::MemoryStatsStore;
use super::*;
use crate::error::StoreError;
use crate::stream::{IgnoredReason, Input};
use offers_domain::campaign_stats::{Arm, CounterKey, StatsProblem};
use offers_domain::CampaignId;
use serde_json::{json, Map, Value};
use std::time::Duration;

fn service() -> StatsService<MemoryStatsStore> {
    StatsService::new(
        MemoryStatsStore::default(),
        StatsSettings {
            backoff: Duration::from_millis(1),
            ..StatsSettings::default()
        },
    )
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn offer(user: &str, offer_id: &str) -> Value {
    json!({"userId": {"S": user}, "personalizedOfferId": {"S": format!("p-{user}")},
           "offerId": {"S": offer_id}, "campaignId": {"S": "c1"}})
}

fn change(event: &str, old: Option<Value>, new: Value) -> StatsInput {
    Input::Change(Box::new(ChangeRecord {
        event_id: event.to_owned(),
        sequence_number: format!("{}", event.len() * 100),
        created_at: None,
        old_image: old.map(object),
        new_image: object(new),
    }))
}

fn viewed(mut image: Value) -> Value {
    image["viewedAt"] = json!({"S": "2026-01-01T00:00:00Z"});
    image
}

fn all(offer_id: &str) -> CounterKey {
    CounterKey::Campaign {
        campaign_id: "c1".into(),
        offer_id: offer_id.into(),
        arm: Arm::All,
    }
}

fn batch() -> Vec<StatsInput> {
    vec![
        change("e1", None, offer("u1", "co-a")),
        change("e2", None, offer("u2", "co-a")),
        change("e3", Some(offer("u1", "co-a")), viewed(offer("u1", "co-a"))),
        Input::Ignored {
            event_id: Some("e4".into()),
            sequence_number: Some("4".into()),
            reason: IgnoredReason::Remove,
        },
        change("e5", Some(offer("u2", "co-a")), offer("u2", "co-a")),
    ]
}

#[tokio::test]
async fn a_batch_is_summed_into_one_transaction_and_counted_once_when_replayed() {
    let service = service();
    let report = service.apply_batch(batch(), None).await;
    let outcomes: Vec<&str> = report.records.iter().map(|r| r.outcome.name()).collect();
    assert_eq!(
        outcomes,
        ["applied", "applied", "applied", "ignored", "no_change"]
    );
    assert_eq!(report.summary.transactions, 1);
    // Markers for the three records that count; each counter once.
    assert_eq!(service.store().calls(), vec![(3, 2)]);
    let counters = service.store().counters();
    assert_eq!(
        (
            counters[&all("co-a")].assigned,
            counters[&all("co-a")].viewed
        ),
        (2, 1)
    );

    let again = service.apply_batch(batch(), None).await;
    let outcomes: Vec<&str> = again.records.iter().map(|r| r.outcome.name()).collect();
    assert_eq!(
        outcomes,
        [
            "duplicate",
            "duplicate",
            "duplicate",
            "ignored",
            "no_change"
        ]
    );
    assert_eq!(
        service.store().counters(),
        counters,
        "a replay changes nothing"
    );
    assert!(again.failed_sequence_numbers().is_empty());
}

#[tokio::test]
async fn a_partly_replayed_batch_counts_only_the_new_records() {
    let service = service();
    service.apply_batch(batch()[..2].to_vec(), None).await;
    let report = service.apply_batch(batch(), None).await;
    let outcomes: Vec<&str> = report.records.iter().map(|r| r.outcome.name()).collect();
    assert_eq!(
        outcomes,
        ["duplicate", "duplicate", "applied", "ignored", "no_change"]
    );
    let counters = service.store().counters();
    assert_eq!(
        (
            counters[&all("co-a")].assigned,
            counters[&all("co-a")].viewed
        ),
        (2, 1)
    );
}

#[tokio::test]
async fn conflicts_are_retried_then_reported_failed_and_refusals_are_isolated() {
    let service = service();
    service.store().fail_next([
        StoreError::Conflict("TransactionConflict".into()),
        StoreError::Conflict("TransactionConflict".into()),
    ]);
    let report = service.apply_batch(batch(), None).await;
    assert_eq!(report.summary.conflicts, 2);
    assert_eq!(report.count(StatsKind::Applied), 3);

    let service = self::service();
    service
        .store()
        .fail_next((0..10).map(|_| StoreError::Conflict("busy".into())));
    let report = service.apply_batch(batch(), None).await;
    assert_eq!(report.count(StatsKind::Failed), 3);
    assert_eq!(report.failed_sequence_numbers().len(), 3);
    assert!(service.store().counters().is_empty());

    // A refusal of the whole transaction: each record is tried alone, and
    // only the refused one is lost (not retried).
    let service = self::service();
    service.store().fail_next([
        StoreError::Refused("ValidationException".into()),
        StoreError::Refused("ValidationException".into()),
    ]);
    let report = service.apply_batch(batch(), None).await;
    let outcomes: Vec<&str> = report.records.iter().map(|r| r.outcome.name()).collect();
    // The first record tried alone is the one refused (the fake refuses
    // calls, not records); the units are tried in the packing's order.
    let mut changes = outcomes[..3].to_vec();
    changes.sort_unstable();
    assert_eq!(changes, ["applied", "applied", "refused"], "{outcomes:?}");
    assert_eq!(outcomes[3..], ["ignored", "no_change"]);
    assert!(report.failed_sequence_numbers().is_empty());
}

#[tokio::test]
async fn an_outage_fails_the_rest_without_new_writes() {
    let service = service();
    service
        .store()
        .fail_next([StoreError::Timeout("no answer".into())]);
    let report = service.apply_batch(batch(), None).await;
    assert!(report.store_down);
    assert_eq!(report.count(StatsKind::Failed), 3);
    assert_eq!(service.store().calls().len(), 1);
}

#[tokio::test]
async fn unreadable_images_are_not_counted_and_never_retried() {
    let service = service();
    let report = service
        .apply_batch(
            vec![
                change("e1", None, json!({"userId": {"S": "u"}})),
                change("e2", None, offer("u2", "co-a")),
                Input::Unusable {
                    event_id: None,
                    sequence_number: Some("9".into()),
                    error: "no new image".into(),
                },
            ],
            None,
        )
        .await;
    let outcomes: Vec<&str> = report.records.iter().map(|r| r.outcome.name()).collect();
    assert_eq!(outcomes, ["not_counted", "applied", "failed"]);
    assert_eq!(report.failed_sequence_numbers(), ["9"]);
}

#[tokio::test]
async fn an_offer_read_in_part_counts_the_rest_and_is_reported_once_per_change() {
    let service = service();
    let mut used = offer("u1", "co-a");
    used["redemptionCount"] = json!({"N": "1"});
    used["redemptions"] = json!({"M": {"o1": {"M": {"totalCost": {"N": "1e30"},
        "redeemedAt": {"S": "2026-01-02T00:00:00Z"}}}}});
    let mut clicked = used.clone();
    clicked["clickedAt"] = json!({"S": "2026-01-03T00:00:00Z"});
    let mut ranked = clicked.clone();
    ranked["rank"] = json!({"N": "2"});
    let records = || {
        vec![
            change("e1", None, offer("u1", "co-a")),
            change("e2", Some(offer("u1", "co-a")), used.clone()),
            change("e3", Some(used.clone()), clicked.clone()),
            change("e4", Some(clicked.clone()), ranked.clone()),
        ]
    };
    let report = service.apply_batch(records(), None).await;
    let outcomes: Vec<&str> = report.records.iter().map(|r| r.outcome.name()).collect();
    assert_eq!(outcomes, ["applied", "applied", "applied", "no_change"]);
    let reported: Vec<&str> = report
        .summary
        .partly_read
        .iter()
        .map(|partly| partly.event_id.as_str())
        .collect();
    assert_eq!(reported, ["e2", "e3"], "each change that counts, once");
    assert_eq!(
        report.summary.partly_read[0].problems,
        [StatsProblem::BadNumber("totalCost", "1e30".into())]
    );
    assert_eq!(
        report.summary.partly_read[0]
            .personalized_offer_id
            .as_deref(),
        Some("p-u1")
    );
    let counts = service.store().counters()[&all("co-a")];
    assert_eq!(
        (
            counts.assigned,
            counts.clicked,
            counts.redeemed,
            counts.redemptions
        ),
        (1, 1, 1, 1)
    );
    assert!(counts.order_value.is_zero());
    let metrics = crate::metrics::stats_metrics(&report, chrono::Utc::now());
    let partly = metrics
        .metrics
        .iter()
        .find(|metric| metric.name == "PartlyRead")
        .expect("the PartlyRead metric");
    assert_eq!(partly.datadog_name, crate::metrics::stats::PARTLY_READ);
    assert_eq!(partly.values, crate::metrics::Values::One(2));
    // A second delivery counts nothing and reports nothing again.
    let again = service.apply_batch(records(), None).await;
    assert_eq!(again.count(StatsKind::Duplicate), 3);
    assert!(again.summary.partly_read.is_empty());
    assert_eq!(service.store().counters()[&all("co-a")], counts);
}

#[tokio::test]
async fn many_counters_are_split_into_transactions_and_parts() {
    let service = service();
    // 60 offers of different config offers: 2 counters and a marker each.
    let records: Vec<StatsInput> = (0..60)
        .map(|i| {
            change(
                &format!("e{i}"),
                None,
                offer(&format!("u{i}"), &format!("co-{i}")),
            )
        })
        .collect();
    let report = service.apply_batch(records, None).await;
    assert_eq!(report.count(StatsKind::Applied), 60);
    let calls = service.store().calls();
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(calls
        .iter()
        .all(|(units, counters)| units + counters <= 100));
    assert_eq!(service.store().counters().len(), 120);

    // One offer whose context has many attributes: more than one unit.
    let mut wide = offer("w", "co-wide");
    let context: Map<String, Value> = (0..16)
        .map(|i| (format!("a{i:02}"), json!({"S": "v"})))
        .collect();
    wide["selection"] = json!({"M": {"holdout": {"BOOL": false}, "context": {"M": context}}});
    let mut redemptions = Map::new();
    for day in 1..=40 {
        redemptions.insert(
            format!("o{day}"),
            json!({"M": {"totalCost": {"N": "1"}, "redeemedAt": {"S": format!("2026-{:02}-{:02}T00:00:00Z", day / 28 + 1, day % 28 + 1)}}}),
        );
    }
    wide["redemptions"] = json!({"M": redemptions});
    wide["redemptionCount"] = json!({"N": "40"});
    let service = self::service();
    let report = service
        .apply_batch(vec![change("wide", None, wide.clone())], None)
        .await;
    assert_eq!(report.count(StatsKind::Applied), 1);
    assert_eq!(service.store().markers(), 2, "two parts, two markers");
    let replay = service
        .apply_batch(vec![change("wide", None, wide)], None)
        .await;
    assert_eq!(replay.count(StatsKind::Duplicate), 1);
}

#[tokio::test]
async fn the_report_of_an_unknown_campaign_is_zeros() {
    let service = service();
    service.apply_batch(batch(), None).await;
    let report = service
        .campaign_report(&CampaignId::literal("nobody"))
        .await
        .expect("report");
    assert!(report.offers.is_empty());
    assert_eq!(report.totals.all.assigned, 0);
    let c1 = service
        .campaign_report(&CampaignId::literal("c1"))
        .await
        .expect("report");
    assert_eq!(c1.totals.all.assigned, 2);
}

fn in_campaign(mut image: Value, campaign_id: &str) -> Value {
    image["campaignId"] = json!({"S": campaign_id});
    image
}

fn redeemed(image: &Value, order: &str, cost: &str) -> Value {
    let mut used = image.clone();
    used["redemptionCount"] = json!({"N": "1"});
    used["redemptions"] = json!({"M": {order: {"M": {"totalCost": {"N": cost},
        "redeemedAt": {"S": "2026-01-02T00:00:00Z"}}}}});
    used
}

/// The batch's budgets by (campaign, limit), in percent.
fn percents(report: &StatsBatchReport) -> Vec<(String, &'static str, u64)> {
    let mut found: Vec<(String, &'static str, u64)> = report
        .summary
        .budgets
        .iter()
        .map(|budget| {
            (
                budget.campaign_id.to_string(),
                budget.limit.metric_name(),
                budget.percent,
            )
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn a_batch_reports_each_budget_limit_of_the_campaigns_it_changed_in_percent() {
    use crate::domain::campaign::{Budget, BudgetUse};
    let service = service();
    let store = service.store();
    // Every kind: 19 of 20 offers, 2 of 3 redemptions, 45.2249 of 50.25.
    store.set_budget(
        &CampaignId::literal("budgeted"),
        Budget {
            offers: Some(20),
            redemptions: Some(3),
            discount_value: Some(serde_json::Number::from_f64(50.25).expect("number")),
        },
        BudgetUse {
            offers: 19,
            redemptions: 2,
            discount_value: "45.2249".parse().expect("decimal"),
        },
    );
    // Only a discount limit, used up exactly.
    store.set_budget(
        &CampaignId::literal("money"),
        Budget {
            discount_value: Some(serde_json::Number::from(40)),
            ..Budget::default()
        },
        BudgetUse {
            discount_value: "40.0000".parse().expect("decimal"),
            ..BudgetUse::default()
        },
    );
    let budgeted = in_campaign(offer("u1", "co-a"), "budgeted");
    let money = in_campaign(offer("u2", "co-a"), "money");
    let records = vec![
        change("e1", None, budgeted.clone()),
        change(
            "e2",
            Some(budgeted.clone()),
            redeemed(&budgeted, "o1", "12.5"),
        ),
        change("e3", Some(money.clone()), redeemed(&money, "o2", "20")),
        // A campaign without a budget (no definition in the table).
        change("e4", None, in_campaign(offer("u3", "co-a"), "plain")),
        // A change that counts nothing: its campaign is not read.
        change(
            "e5",
            None,
            json!({"userId": {"S": "u4"}, "campaignId": {"S": "broken"}}),
        ),
    ];
    let report = service.apply_batch(records, None).await;
    assert_eq!(
        percents(&report),
        [
            ("budgeted".to_owned(), "discount_value", 89),
            ("budgeted".to_owned(), "offers", 95),
            ("budgeted".to_owned(), "redemptions", 66),
            ("money".to_owned(), "discount_value", 100),
        ],
        "rounded down from the exact amounts; campaigns without a budget left out"
    );
    assert!(!report.summary.budgets_unread);
    assert_eq!(
        store.budget_reads(),
        [vec!["budgeted".to_owned(), "money".into(), "plain".into()]],
        "one read per batch, each campaign once, only those of changes counted"
    );

    // The metric: one value per campaign and limit, tagged with both.
    let set = crate::metrics::stats_metrics(&report, chrono::Utc::now());
    let used: Vec<(u64, Vec<String>)> = set
        .metrics
        .iter()
        .filter(|metric| metric.name == crate::metrics::BUDGET_USED_METRIC)
        .map(|metric| {
            let value = match &metric.values {
                crate::metrics::Values::Many(values) => values.iter().sum(),
                crate::metrics::Values::One(value) => *value,
            };
            let tags = metric
                .tags
                .iter()
                .map(|tag| format!("{}:{}", tag.key, tag.value))
                .collect();
            (value, tags)
        })
        .collect();
    assert_eq!(used.len(), 4, "{used:?}");
    assert!(used.contains(&(
        66,
        vec!["campaign_id:budgeted".into(), "budget:redemptions".into()]
    )));
    assert!(used.contains(&(
        100,
        vec!["campaign_id:money".into(), "budget:discount_value".into()]
    )));

    // A replay of the same records (duplicates) still reports the budgets
    // as they stand now; a definition deleted since is left out.
    store.delete_budget(&CampaignId::literal("money"));
    let records = vec![
        change(
            "e2",
            Some(budgeted.clone()),
            redeemed(&budgeted, "o1", "12.5"),
        ),
        change("e3", Some(money.clone()), redeemed(&money, "o2", "20")),
    ];
    let report = service.apply_batch(records, None).await;
    let outcomes: Vec<&str> = report.records.iter().map(|r| r.outcome.name()).collect();
    assert_eq!(outcomes, ["duplicate", "duplicate"]);
    let campaigns: Vec<String> = percents(&report).into_iter().map(|(c, _, _)| c).collect();
    assert_eq!(campaigns, ["budgeted", "budgeted", "budgeted"]);
}

#[tokio::test]
async fn budgets_not_read_never_fail_the_batch_and_are_counted() {
    use crate::domain::campaign::{Budget, BudgetUse};
    let service = service();
    let store = service.store();
    store.set_budget(
        &CampaignId::literal("budgeted"),
        Budget {
            offers: Some(10),
            ..Budget::default()
        },
        BudgetUse::default(),
    );
    store.fail_budget_reads([StoreError::Unavailable("down".into())]);
    let image = in_campaign(offer("u1", "co-a"), "budgeted");
    let report = service
        .apply_batch(vec![change("e1", None, image.clone())], None)
        .await;
    assert_eq!(report.records[0].outcome.name(), "applied");
    assert!(
        report.failed_sequence_numbers().is_empty(),
        "nothing retried"
    );
    assert!(report.summary.budgets_unread);
    assert!(report.summary.budgets.is_empty());
    let set = crate::metrics::stats_metrics(&report, chrono::Utc::now());
    let unread = set
        .metrics
        .iter()
        .find(|metric| metric.name == "BudgetsUnread")
        .map(|metric| metric.values.clone());
    assert_eq!(unread, Some(crate::metrics::Values::One(1)));
    assert_eq!(
        store.counters().len(),
        2,
        "the counters applied all the same"
    );
    // A batch without changes counted reads nothing.
    let report = service
        .apply_batch(vec![change("e1", None, image)], None)
        .await;
    assert_eq!(report.records[0].outcome.name(), "duplicate");
    assert_eq!(store.budget_reads().len(), 2);
    assert!(!report.summary.budgets_unread);
    assert_eq!(
        report.summary.budgets[0].percent, 0,
        "a replay reads the budget"
    );
}

fn made_on(mut image: Value, created_at: &str, tier: &str) -> Value {
    image["createdAt"] = json!({"S": created_at});
    image["selection"] = json!({"M": {"holdout": {"BOOL": false},
        "context": {"M": {"tier": {"S": tier}}}}});
    image
}

fn learning(offer_id: &str, day: &str, attribute: Option<(&str, &str)>) -> CounterKey {
    CounterKey::Learning {
        offer_id: offer_id.into(),
        day: Some(day.into()),
        attribute: attribute.map(|(name, value)| (name.into(), value.into())),
    }
}

#[tokio::test]
async fn learning_counters_count_on_the_day_the_offer_was_made_once_under_replay() {
    let first = made_on(offer("u1", "co-a"), "2026-12-01T23:59:59Z", "gold");
    let second = made_on(offer("u2", "co-a"), "2026-12-02T00:00:00Z", "gold");
    let mut redeemed = first.clone();
    redeemed["redemptionCount"] = json!({"N": "1"});
    let records = vec![
        change("e1", None, first.clone()),
        change("e2", None, second),
        // Redeemed on the 3rd: it counts on the 1st, its offer's day.
        change("e3", Some(first), redeemed),
    ];
    let service = service();
    // Delivered at once by two invocations, then again.
    let (one, two) = tokio::join!(
        service.apply_batch(records.clone(), None),
        service.apply_batch(records.clone(), None)
    );
    let applied = |report: &StatsBatchReport| report.count(StatsKind::Applied);
    assert_eq!(applied(&one) + applied(&two), 3, "each record counted once");
    let counters = service.store().counters();
    let counts = |key: CounterKey| {
        let counts = counters.get(&key).copied().unwrap_or_default();
        (counts.assigned, counts.redeemed)
    };
    assert_eq!(counts(learning("co-a", "2026-12-01", None)), (1, 1));
    assert_eq!(
        counts(learning("co-a", "2026-12-01", Some(("tier", "gold")))),
        (1, 1)
    );
    assert_eq!(counts(learning("co-a", "2026-12-02", None)), (1, 0));
    assert!(
        !counters
            .keys()
            .any(|key| matches!(key, CounterKey::Learning { day: None, .. })),
        "no undated learning counter: {counters:?}"
    );
    let again = service.apply_batch(records, None).await;
    assert_eq!(again.count(StatsKind::Duplicate), 3);
    assert_eq!(service.store().counters(), counters);
}
