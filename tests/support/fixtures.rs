//! Fixtures: the tables' and functions' logical ids, the sample catalog,
//! pending rows as a campaign tool writes them, and dates relative to now.

use serde_json::{json, Value};

pub const PENDING: &str = "PendingPersonalizedOffersTable";
pub const OFFERS: &str = "LoyaltyOffersTable";
pub const CATALOG: &str = "OfferCatalogTable";
pub const REJECTED: &str = "RejectedPersonalizedOffersTable";
pub const EVENTS: &str = "OfferEventsTable";
pub const DISPATCHER: &str = "OfferDispatcherFunction";
pub const LOOKUP: &str = "OfferLookupFunction";
pub const SUPPORT: &str = "SupportAssignmentFunction";
pub const STATS: &str = "CampaignStatsTable";
pub const STATS_FUNCTION: &str = "CampaignStatsFunction";
pub const ACTIVITY: &str = "OfferActivityFunction";
pub const TRANSACTIONS: &str = "LoyaltyTransactionsTable";
pub const PROGRESS: &str = "ChallengeProgressFunction";
pub const WEBHOOK: &str = "CampaignWebhookFunction";
pub const DELIVERIES: &str = "WebhookDeliveriesTable";
pub const PROFILES: &str = "UserProfilesTable";
pub const VISITS: &str = "UserVisitsFunction";

pub const SEED_OFFER: &str = "290fb746-9850-4994-b7d7-5630046792e1";
pub const SEED_USER: &str = "us-east-1:192991f1-ede8-47bf-89e1-3942d4ab8aaa";
pub const SEED_STATUS: &str = "{\"reward\": {\"value\": \"100\"},\"goals\": {\"visit1\": {\"condition\": {\"total_cost\": \"1\"}},\"visit2\": {\"condition\": {\"total_cost\": \"1\"}}}}";

/// The sample catalog of events/sample-catalog.json, plus a config offer
/// without a template for the `missing_template` case.
pub fn sample_catalog() -> Vec<Value> {
    let mut catalog: Vec<Value> =
        serde_json::from_value(read_json("events/sample-catalog.json")).expect("catalog list");
    catalog.push(
        json!({"id": "co-untemplated", "kind": "configOffer", "name": "No template", "rules": {}}),
    );
    catalog
}

/// A JSON file of the workspace, e.g. a sample event.
pub fn read_json(relative: &str) -> Value {
    let path = offers_local::workspace_root().join(relative);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A valid pending row for `co-fries`, as a campaign tool writes it.
pub fn fries_row(user_id: &str, sort_key: &str) -> Value {
    json!({
        "userId": user_id,
        "sortKey": sort_key,
        "offerId": "co-fries",
        "campaignId": "camp-1",
        "ttl": future_epoch(30),
        "startDate": "2024-01-01T00:00:00+0000",
        "expiryDate": future_date(30),
        "rank": 1,
        "rules": {"minimumSpend": 7.5}
    })
}

/// The contract's challenge example with its expiry moved into the future.
pub fn seed_challenge_row(expiry: &str) -> Value {
    json!({
        "userId": SEED_USER,
        "sortKey": "e2dd4cb3-9b0f-479c-8e1b-e42234f27314+d2dd9cb3-9b0f-479c-8e1b-e40046f57170",
        "challengeStatus": SEED_STATUS,
        "challengeType": "frequency",
        "expiryDate": expiry,
        "frequency": SEED_OFFER,
        "offerId": SEED_OFFER,
        "rank": 12,
        "startDate": "2023-10-20T17:37:37+0000",
        "taskId": "e2dd4cb3-9b0f-479c-8e1b-e42234f27314"
    })
}

pub fn future_date(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%S+0000")
        .to_string()
}

pub fn future_epoch(days: i64) -> i64 {
    (chrono::Utc::now() + chrono::Duration::days(days)).timestamp()
}

pub fn inserts(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .filter(|record| record["eventName"] == "INSERT")
        .cloned()
        .collect()
}

/// A completed order as the ordering backend writes it (contract section 8).
pub fn transaction(
    transaction_id: &str,
    user_id: &str,
    total_cost: f64,
    occurred_at: &str,
) -> Value {
    json!({
        "transactionId": transaction_id,
        "userId": user_id,
        "totalCost": total_cost,
        "occurredAt": occurred_at,
        "storeId": "store-7",
        "serviceMode": "pickup"
    })
}

/// Transactions of `user` that can never count (contract section 8): a
/// negative cost, no user, a date that is not one, a cost that is text.
pub fn invalid_transactions(user: &str) -> Vec<Value> {
    let valid = |id: &str| transaction(id, user, 1.0, "2026-05-02T10:00:00Z");
    let mut negative = valid("negative");
    negative["totalCost"] = json!(-5);
    let mut no_user = valid("no-user");
    no_user.as_object_mut().map(|item| item.remove("userId"));
    let mut bad_date = valid("bad-date");
    bad_date["occurredAt"] = json!("yesterday at noon");
    let mut text_cost = valid("text-cost");
    text_cost["totalCost"] = json!("12.50");
    vec![negative, no_user, bad_date, text_cost]
}
