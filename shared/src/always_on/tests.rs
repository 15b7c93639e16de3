use super::memory::AlwaysOnMemoryStore;
use super::*;
use crate::fakes::{MemoryCatalog, MemorySelectionStats};
use crate::profiles::memory::ProfileMemoryStore;
use crate::profiles::{UserVisits, VisitKind};
use crate::stream::runner::RunnerSettings;
use crate::stream::transactions::{TransactionInput, TransactionRecord};
use chrono::Duration as Days;
use offers_domain::always_on::AlwaysOnCampaign;
use offers_domain::campaign::parse_definition;
use offers_domain::dates::format_timestamp;
use serde_json::json;

type Chooser = AlwaysOnChooser<AlwaysOnMemoryStore, MemorySelectionStats, MemoryCatalog>;

fn campaign(id: &str, slots: u64, holdout: f64, paused: bool) -> AlwaysOnCampaign {
    // Daily windows; the current one began 6 hours ago.
    let start = Utc::now() - Days::days(10) - Days::hours(6);
    let text = json!({
        "campaignId": id, "mode": "alwaysOn",
        "pool": [{"offerId": "co-a"}, {"offerId": "co-b"}, {"offerId": "co-c"}],
        "startDate": format_timestamp(start),
        "endDate": format_timestamp(start + Days::days(60)),
        "validDays": 7, "cadence": "P1D", "slots": slots, "holdout": holdout,
        "reward": "redeemed"
    })
    .to_string();
    let definition = parse_definition(&text).expect("valid");
    AlwaysOnCampaign::of(definition, 1, paused).expect("always-on")
}

fn catalog(ids: &[&str]) -> MemoryCatalog {
    MemoryCatalog::of(
        ids.iter()
            .map(|id| json!({"id": id, "kind": "configOffer", "name": id, "rules": {}})),
    )
}

fn visits(
    campaigns: Vec<AlwaysOnCampaign>,
    offers: &[&str],
) -> UserVisits<ProfileMemoryStore, Chooser> {
    visits_kept(campaigns, offers, Duration::ZERO)
}

/// The chooser with caches of `ttl` (zero: every visit reads).
fn visits_kept(
    campaigns: Vec<AlwaysOnCampaign>,
    offers: &[&str],
    ttl: Duration,
) -> UserVisits<ProfileMemoryStore, Chooser> {
    let chooser = AlwaysOnChooser::with_ttls(
        AlwaysOnMemoryStore::new(campaigns),
        MemorySelectionStats::default(),
        catalog(offers),
        ttl,
        ttl,
    );
    UserVisits::with_after(
        ProfileMemoryStore::new(),
        chooser,
        RunnerSettings {
            concurrency: 4,
            deadline_margin: Duration::from_millis(500),
        },
    )
}

fn visit(sequence: u32, id: &str, user: &str, at: DateTime<Utc>) -> TransactionInput {
    let image = json!({"transactionId": id, "userId": user, "totalCost": 12.5,
                       "occurredAt": format_timestamp(at), "serviceMode": "pickup"});
    let attributes = image.as_object().cloned().unwrap_or_default();
    TransactionInput::Change(Box::new(TransactionRecord::from_attributes(
        format!("e{sequence}"),
        sequence.to_string(),
        &attributes,
    )))
}

fn rows(visits: &UserVisits<ProfileMemoryStore, Chooser>) -> Vec<Map<String, Value>> {
    visits
        .after()
        .store()
        .state()
        .pending
        .values()
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_visit_assigns_one_offer_with_its_selection_and_dates() {
    let visits = visits(
        vec![campaign("always", 2, 0.0, false)],
        &["co-a", "co-b", "co-c"],
    );
    let at = Utc::now() - Days::minutes(3);
    let report = visits
        .apply_batch(vec![visit(1, "t1", "u1", at)], None)
        .await;
    assert_eq!(report.count(VisitKind::Counted), 1);
    let rows = rows(&visits);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["campaignId"], "always");
    assert_eq!(row["startDate"], json!(format_timestamp(at)));
    assert_eq!(
        row["expiryDate"],
        json!(format_timestamp(at + Days::days(7)))
    );
    assert_eq!(row["rank"], 1);
    let selection = &row["selection"];
    assert_eq!(selection["holdout"], false);
    assert_eq!(selection["context"]["mode"], "pickup");
    assert_eq!(selection["context"]["visits30"], "1");
    assert_eq!(selection["context"]["spend"], "10-25");
    assert!(selection["propensity"]
        .as_f64()
        .is_some_and(|p| p > 0.0 && p <= 1.0));
    let metrics = visits.after().take_metrics(Utc::now());
    let assigned = metrics
        .metrics
        .iter()
        .find(|metric| metric.name == "AlwaysOnAssigned")
        .expect("the assigned count");
    assert_eq!(assigned.values, crate::metrics::Values::One(1));
}

#[tokio::test]
async fn replays_and_deliveries_at_once_write_one_row() {
    let visits = visits(
        vec![campaign("always", 2, 0.0, false)],
        &["co-a", "co-b", "co-c"],
    );
    let at = Utc::now() - Days::minutes(1);
    let batch = || vec![visit(1, "t1", "u1", at)];
    let (a, b, c) = tokio::join!(
        visits.apply_batch(batch(), None),
        visits.apply_batch(batch(), None),
        visits.apply_batch(batch(), None)
    );
    for report in [a, b, c] {
        assert!(report.failed_sequence_numbers().is_empty());
    }
    visits.apply_batch(batch(), None).await;
    assert_eq!(rows(&visits).len(), 1);
    // Another visit in the same window, after dispatch: nothing more.
    visits.after().store().dispatch_all();
    visits
        .apply_batch(vec![visit(2, "t2", "u1", at + Days::seconds(20))], None)
        .await;
    assert!(rows(&visits).is_empty());
}

#[tokio::test]
async fn each_window_brings_an_offer_until_the_slots_are_full() {
    let visits = visits(
        vec![campaign("always", 2, 0.0, false)],
        &["co-a", "co-b", "co-c"],
    );
    let today = Utc::now() - Days::minutes(2);
    visits
        .apply_batch(vec![visit(1, "t1", "u1", today - Days::hours(8))], None)
        .await;
    let first = rows(&visits);
    visits.after().store().dispatch_all();
    visits
        .apply_batch(vec![visit(2, "t2", "u1", today)], None)
        .await;
    let second = rows(&visits);
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_ne!(
        first[0]["offerId"], second[0]["offerId"],
        "never one held live"
    );
    assert_ne!(first[0]["assignmentId"], second[0]["assignmentId"]);
    // A visit of the same window adds nothing.
    visits
        .apply_batch(vec![visit(3, "t3", "u1", today + Days::seconds(1))], None)
        .await;
    assert_eq!(rows(&visits).len(), 1);
    // Two live offers (one still pending): a visit of a third window (the
    // campaign put again with its windows shifted) adds nothing either.
    visits.after().store().dispatch_all();
    let mut shifted = campaign("always", 2, 0.0, false);
    shifted.start = today + Days::seconds(30) - Days::days(10);
    shifted.version = 2;
    visits.after().store().state().campaigns = vec![shifted];
    visits
        .apply_batch(vec![visit(4, "t4", "u1", today + Days::seconds(60))], None)
        .await;
    assert!(rows(&visits).is_empty());
}

#[tokio::test]
async fn paused_old_and_deleted_give_nothing_or_skip() {
    let paused = visits(
        vec![campaign("paused", 1, 0.0, true)],
        &["co-a", "co-b", "co-c"],
    );
    paused
        .apply_batch(vec![visit(1, "t1", "u1", Utc::now())], None)
        .await;
    assert!(rows(&paused).is_empty());

    let visits = visits(vec![campaign("always", 1, 0.0, false)], &["co-b"]);
    let old = visits
        .apply_batch(
            vec![visit(1, "t1", "u1", Utc::now() - Days::hours(25))],
            None,
        )
        .await;
    assert_eq!(old.count(VisitKind::Counted), 1, "the profile counts it");
    assert!(rows(&visits).is_empty());
    let ahead = Utc::now() + Days::minutes(10);
    visits
        .apply_batch(vec![visit(2, "t2", "u1", ahead)], None)
        .await;
    assert!(rows(&visits).is_empty());

    // co-a and co-c are gone from the catalog: every user gets co-b.
    for user in 0..20 {
        visits
            .apply_batch(
                vec![visit(
                    10 + user,
                    &format!("t-{user}"),
                    &format!("u-{user}"),
                    Utc::now(),
                )],
                None,
            )
            .await;
    }
    let rows = rows(&visits);
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|row| row["offerId"] == "co-b"));
    let metrics = visits.after().take_metrics(Utc::now());
    let missing = metrics
        .metrics
        .iter()
        .find(|metric| metric.name == "AlwaysOnMissingOffers")
        .expect("the missing offers' count");
    assert_eq!(missing.values, crate::metrics::Values::One(40));
}

#[tokio::test]
async fn definitions_are_kept_and_no_campaign_only_a_second() {
    let visits = visits_kept(
        Vec::new(),
        &["co-a", "co-b", "co-c"],
        Duration::from_secs(60),
    );
    visits
        .apply_batch(vec![visit(1, "t1", "u1", Utc::now())], None)
        .await;
    assert!(rows(&visits).is_empty());
    visits.after().store().state().campaigns = vec![campaign("always", 1, 0.0, false)];
    visits
        .apply_batch(vec![visit(2, "t2", "u2", Utc::now())], None)
        .await;
    assert!(rows(&visits).is_empty(), "no campaign is kept a moment");
    assert_eq!(visits.after().store().state().campaign_reads, 1);
    tokio::time::sleep(NO_CAMPAIGNS_TTL + Duration::from_millis(100)).await;
    visits
        .apply_batch(vec![visit(3, "t2b", "u2", Utc::now())], None)
        .await;
    assert_eq!(
        rows(&visits).len(),
        1,
        "the first campaign applies within a second"
    );
    visits
        .apply_batch(vec![visit(4, "t3", "u3", Utc::now())], None)
        .await;
    assert_eq!(rows(&visits).len(), 2);
    assert_eq!(
        visits.after().store().state().campaign_reads,
        2,
        "then kept"
    );
}

#[tokio::test]
async fn holdout_users_get_a_uniform_offer_with_its_propensity() {
    let visits = visits(
        vec![campaign("always", 1, 0.999_999, false)],
        &["co-a", "co-b", "co-c"],
    );
    visits
        .apply_batch(vec![visit(1, "t1", "u1", Utc::now())], None)
        .await;
    let rows = rows(&visits);
    assert_eq!(rows[0]["selection"]["holdout"], true);
    assert_eq!(
        rows[0]["selection"]["policy"],
        offers_domain::selection::HOLDOUT_POLICY
    );
    assert!(
        (rows[0]["selection"]["propensity"]
            .as_f64()
            .unwrap_or_default()
            - 1.0 / 3.0)
            .abs()
            < 1e-12
    );
}

#[tokio::test]
async fn an_outage_fails_the_record_and_its_retry_assigns() {
    let visits = visits(
        vec![campaign("always", 1, 0.0, false)],
        &["co-a", "co-b", "co-c"],
    );
    visits.after().store().state().down = Some(StoreError::Unavailable("down".into()));
    let at = Utc::now();
    let failed = visits
        .apply_batch(vec![visit(1, "t1", "u1", at)], None)
        .await;
    assert_eq!(failed.failed_sequence_numbers(), vec!["1".to_owned()]);
    visits.after().store().state().down = None;
    let retried = visits
        .apply_batch(vec![visit(1, "t1", "u1", at)], None)
        .await;
    assert_eq!(retried.count(VisitKind::Duplicate), 1, "the profile had it");
    assert_eq!(rows(&visits).len(), 1, "the chooser ran on the retry");
}

/// Learning counters read slowly (a yield before the answer), counted.
#[derive(Default)]
struct SlowCountedStats {
    reads: std::sync::atomic::AtomicUsize,
}

impl SelectionStatsReader for SlowCountedStats {
    async fn learning_counters(
        &self,
        offer_ids: &[String],
    ) -> Result<crate::ports::LearningCounters, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        MemorySelectionStats::default()
            .learning_counters(offer_ids)
            .await
    }
}

#[tokio::test]
async fn visits_in_flight_during_a_refresh_keep_the_engine_they_have() {
    // Statistics stale at once: without one refresh at a time, each of the
    // eight visits would read them.
    let visits = UserVisits::with_after(
        ProfileMemoryStore::new(),
        AlwaysOnChooser::with_ttls(
            AlwaysOnMemoryStore::new(vec![campaign("always", 1, 0.0, false)]),
            SlowCountedStats::default(),
            catalog(&["co-a", "co-b", "co-c"]),
            Duration::from_secs(60),
            Duration::ZERO,
        ),
        RunnerSettings {
            concurrency: 8,
            deadline_margin: Duration::from_millis(500),
        },
    );
    visits
        .apply_batch(vec![visit(1, "t0", "u0", Utc::now())], None)
        .await;
    let reads = || visits.after().stats.reads.load(Ordering::SeqCst);
    assert_eq!(reads(), 1);
    let batch = (1..=8)
        .map(|n| visit(1 + n, &format!("t{n}"), &format!("u{n}"), Utc::now()))
        .collect();
    let report = visits.apply_batch(batch, None).await;
    assert_eq!(report.count(VisitKind::Counted), 8);
    assert_eq!(visits.after().store().state().pending.len(), 9);
    assert!(reads() < 1 + 8, "one refresh at a time: {} reads", reads());
}

#[tokio::test]
async fn a_campaign_whose_offers_budget_is_used_up_chooses_nothing() {
    let with_budget = |used: u64| {
        let mut campaign = campaign("budgeted", 2, 0.0, false);
        campaign.offers_limit = Some(3);
        campaign.with_offers_used(used)
    };
    let at = Utc::now() - Days::minutes(2);
    let visits = visits(
        vec![with_budget(3), campaign("free", 2, 0.0, false)],
        &["co-a", "co-b", "co-c"],
    );
    visits
        .apply_batch(vec![visit(1, "t1", "u1", at)], None)
        .await;
    let campaigns: Vec<Value> = rows(&visits)
        .iter()
        .map(|row| row["campaignId"].clone())
        .collect();
    assert_eq!(
        campaigns,
        vec![json!("free")],
        "only the campaign with room"
    );
    let metrics = visits.after().take_metrics(Utc::now());
    let exhausted = metrics
        .metrics
        .iter()
        .find(|metric| metric.name == "AlwaysOnBudgetExhausted")
        .expect("the budget_exhausted count");
    assert_eq!(exhausted.values, crate::metrics::Values::One(1));

    // Room left (2 of 3 used): it chooses as before.
    let room = visits_kept(vec![with_budget(2)], &["co-a"], Duration::ZERO);
    room.apply_batch(vec![visit(1, "t1", "u1", at)], None).await;
    assert_eq!(rows(&room).len(), 1);
}
