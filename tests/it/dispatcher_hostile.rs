//! Nothing poisons a batch (issue #10), end to end on DynamoDB Local: rows and
//! catalog items that DynamoDB would refuse, or that once panicked or failed
//! their neighbours, are rejected on their own between valid rows; a record
//! has exactly one outcome whatever changes between its deliveries; the
//! pending delete notices a change in any attribute.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use offers_integration_tests::*;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

fn by_sort_key<'a>(items: &'a [Map<String, Value>], sort_key: &str) -> Vec<&'a Map<String, Value>> {
    items
        .iter()
        .filter(|item| item["sortKey"] == sort_key)
        .collect()
}

fn text(item: &Map<String, Value>, name: &str) -> String {
    item.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A challenge status whose goal condition nests `depth` lists deep.
fn deep_status(depth: usize) -> String {
    format!(
        r#"{{"reward": {{"value": "100"}}, "goals": {{"visit1": {{"condition": {{"total_cost": {}1{}}}}}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rows_and_catalog_items_are_rejected_alone_between_valid_neighbours() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    // Catalog items the CMS got wrong: a binary attribute, an empty templateId.
    let mut binary: HashMap<String, AttributeValue> = serde_dynamo::to_item(json!({
        "id": "co-binary", "kind": "configOffer", "name": "Binary", "templateId": "tpl-fries", "rules": {}
    }))
    .expect("item");
    binary.insert(
        "icon".into(),
        AttributeValue::B(Blob::new(vec![0, 159, 146, 150])),
    );
    bed.client
        .put_item()
        .table_name(bed.table(CATALOG))
        .set_item(Some(binary))
        .send()
        .await
        .expect("binary catalog item");
    bed.put(
        CATALOG,
        json!({"id": "co-empty-template", "kind": "configOffer", "name": "Empty", "templateId": "", "rules": {}}),
    )
    .await;

    let user = "user-hostile";
    let mut hostile: Vec<(&str, Value, &str)> = Vec::new();
    let mut row = fries_row(user, "long-offer-id");
    row["offerId"] = json!("o".repeat(3_000));
    hostile.push(("long-offer-id", row, "invalid_row"));
    let mut row = fries_row(user, "far-future");
    row["expiryDate"] = json!("+10000-01-01T00:00:00Z");
    hostile.push(("far-future", row, "invalid_dates"));
    let mut row = seed_challenge_row(&future_date(20));
    row["userId"] = json!(user);
    row["sortKey"] = json!("deep-challenge");
    row["challengeStatus"] = json!(deep_status(40));
    hostile.push(("deep-challenge", row, "invalid_challenge"));
    let mut row = seed_challenge_row(&future_date(20));
    row["userId"] = json!(user);
    row["sortKey"] = json!("huge-number");
    row["challengeStatus"] = json!(
        r#"{"reward": {"value": "100"}, "goals": {"visit1": {"condition": {"total_cost": 1e300}}}}"#
    );
    hostile.push(("huge-number", row, "invalid_challenge"));
    // 3,000 unknown rule names of 100 bytes: quoted in full, the message
    // alone would be over 300 KB and the rejection over 400 KB.
    let mut row = fries_row(user, "many-unknown-rules");
    let mut rules: Map<String, Value> = (0..3_000)
        .map(|n| (format!("{n:0>100}"), json!(1)))
        .collect();
    rules.insert("minimumSpend".into(), json!(5));
    row["rules"] = Value::Object(rules);
    hostile.push(("many-unknown-rules", row, "unknown_rule"));
    // A row near the item limit: the rejection cannot keep all of it.
    let mut row = fries_row(user, "near-item-limit");
    row["offerId"] = json!("co-nope");
    row["note"] = json!("n".repeat(405_000));
    hostile.push(("near-item-limit", row, "unknown_offer"));
    let mut row = fries_row(user, "binary-catalog-item");
    row["offerId"] = json!("co-binary");
    hostile.push(("binary-catalog-item", row, "unknown_offer"));
    let mut row = fries_row(user, "empty-template-id");
    row["offerId"] = json!("co-empty-template");
    row.as_object_mut().map(|r| r.remove("rules"));
    hostile.push(("empty-template-id", row, "unknown_offer"));

    // Valid, hostile, valid, hostile, ..., valid: all in one stream batch.
    bed.put(PENDING, fries_row(user, "valid-0")).await;
    for (index, (_, row, _)) in hostile.iter().enumerate() {
        bed.put(PENDING, row.clone()).await;
        bed.put(PENDING, fries_row(user, &format!("valid-{}", index + 1)))
            .await;
    }
    let records = bed.stream().await.read_new().await.expect("stream");
    assert_eq!(inserts(&records).len(), 2 * hostile.len() + 1, "one batch");
    // Nothing fails for good: a failure on a busy machine is delivered again.
    deliver(&bed.dispatcher(&[]), &records).await;

    let offers = bed.scan(OFFERS).await;
    let offered: HashSet<String> = offers.iter().map(|o| text(o, "sortKey")).collect();
    let valid: HashSet<String> = (0..=hostile.len()).map(|n| format!("valid-{n}")).collect();
    assert_eq!(offered, valid, "every neighbour dispatched, nothing else");
    assert!(
        bed.scan(PENDING).await.is_empty(),
        "every pending row deleted"
    );

    let rejected = bed.scan(REJECTED).await;
    assert_eq!(rejected.len(), hostile.len());
    for (sort_key, _, code) in &hostile {
        let stored = by_sort_key(&rejected, sort_key);
        assert_eq!(stored.len(), 1, "{sort_key}");
        let message = text(stored[0], "reasonMessage");
        assert_eq!(
            text(stored[0], "reasonCode"),
            *code,
            "{sort_key}: {message}"
        );
        assert!(
            message.len() <= 4_000,
            "{sort_key}: a {}-byte message",
            message.len()
        );
    }
    let message = |sort_key: &str| text(by_sort_key(&rejected, sort_key)[0], "reasonMessage");
    assert!(message("long-offer-id").contains("3000 bytes"));
    assert!(message("binary-catalog-item").contains("cannot be read"));
    assert!(message("empty-template-id").contains("templateId is empty"));
    // Kept as it was where it fits; the row near the limit lost only its note.
    let many = by_sort_key(&rejected, "many-unknown-rules")[0];
    assert_eq!(many["rules"].as_object().map(Map::len), Some(3_001));
    let near = by_sort_key(&rejected, "near-item-limit")[0];
    assert!(!near.contains_key("note"));
    assert_eq!(near["droppedAttributes"], json!(["\"note\""]));
    assert_eq!(near["offerId"], "co-nope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_keeps_its_one_outcome_whatever_changes_before_it_comes_again() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;

    // Dispatched, then its config offer deleted: a fresh process would now
    // reject it as unknown_offer, but the record already has its offer.
    bed.put(PENDING, fries_row("user-w", "dispatched-first"))
        .await;
    let mut stream = bed.stream().await;
    let first = stream.read_new().await.expect("stream");
    deliver(&bed.dispatcher(&[]), &first).await;
    assert_eq!(bed.scan(OFFERS).await.len(), 1);
    bed.client
        .delete_item()
        .table_name(bed.table(CATALOG))
        .key("id", AttributeValue::S("co-fries".into()))
        .send()
        .await
        .expect("delete config offer");
    deliver(&bed.dispatcher(&[]), &first).await;
    assert_eq!(bed.scan(OFFERS).await.len(), 1, "still one offer");
    assert!(bed.scan(REJECTED).await.is_empty(), "and no rejection");

    // Rejected (unknown offer), then the offer published: delivered again,
    // the record stays rejected and makes no offer.
    let mut row = fries_row("user-w", "rejected-first");
    row["offerId"] = json!("co-later");
    row.as_object_mut().map(|r| r.remove("rules"));
    bed.put(PENDING, row).await;
    let second = stream.read_new().await.expect("stream");
    assert_eq!(inserts(&second).len(), 1);
    deliver(&bed.dispatcher(&[]), &second).await;
    assert_eq!(bed.scan(REJECTED).await.len(), 1);
    bed.put(
        CATALOG,
        json!({"id": "co-later", "kind": "configOffer", "name": "Later", "templateId": "tpl-later", "rules": {}}),
    )
    .await;
    bed.put(
        CATALOG,
        json!({"id": "tpl-later", "kind": "offerTemplate", "configOfferId": "co-later", "rules": []}),
    )
    .await;
    deliver(&bed.dispatcher(&[]), &second).await;
    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 1, "no offer for the rejected record");
    assert_eq!(bed.scan(REJECTED).await.len(), 1, "still one rejection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_deciding_differently_at_once_still_store_one_outcome() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    // Five processes that have co-fries in their warm cache...
    bed.put(PENDING, fries_row("user-warm", "warm-up")).await;
    let mut stream = bed.stream().await;
    let warm_up = stream.read_new().await.expect("stream");
    let warm: Vec<_> = (0..5).map(|_| bed.dispatcher(&[])).collect();
    for dispatcher in &warm {
        deliver(dispatcher, &warm_up).await;
    }
    // ...and five that will find it deleted.
    bed.client
        .delete_item()
        .table_name(bed.table(CATALOG))
        .key("id", AttributeValue::S("co-fries".into()))
        .send()
        .await
        .expect("delete config offer");
    let cold: Vec<_> = (0..5).map(|_| bed.dispatcher(&[])).collect();
    for index in 0..8 {
        bed.put(PENDING, fries_row("user-race", &format!("race-{index}")))
            .await;
    }
    let batch = stream.read_new().await.expect("stream");
    assert_eq!(inserts(&batch).len(), 8);

    futures::future::join_all(
        warm.iter().chain(cold.iter()).map(|dispatcher| {
            deliver_until_none_fail(&batch, |records| invoke(dispatcher, records))
        }),
    )
    .await;
    let offers = bed.scan(OFFERS).await;
    let rejected = bed.scan(REJECTED).await;
    for index in 0..8 {
        let sort_key = format!("race-{index}");
        let outcomes =
            by_sort_key(&offers, &sort_key).len() + by_sort_key(&rejected, &sort_key).len();
        assert_eq!(outcomes, 1, "{sort_key}: exactly one outcome");
    }
    assert!(bed.scan(PENDING).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_rewritten_with_only_its_rules_changed_is_not_consumed_by_the_older_insert() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let row = fries_row("user-rules", "camp-1+co-fries");
    bed.put(PENDING, row.clone()).await;
    let mut newer = row.clone();
    newer["rules"] = json!({"minimumSpend": 12.5});
    bed.put(PENDING, newer).await; // a MODIFY of the map only
    let mut nested_change = row.clone();
    nested_change["sortKey"] = json!("camp-2+co-fries");
    bed.put(PENDING, nested_change.clone()).await;
    nested_change["selection"] = json!({"context": {"tier": "gold"}});
    bed.put(PENDING, nested_change).await; // a MODIFY adding an attribute
    let records = bed.stream().await.read_new().await.expect("stream");
    assert_eq!(inserts(&records).len(), 2);
    deliver(&bed.dispatcher(&[]), &records).await;

    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 2, "each INSERT was an assignment");
    let first = by_sort_key(&offers, "camp-1+co-fries")[0];
    assert_eq!(
        first["rules"]["minimumSpend"], 7.5,
        "the INSERT's own rules"
    );
    let pending = bed.scan(PENDING).await;
    assert_eq!(pending.len(), 2, "both newer writes kept");
    let kept = by_sort_key(&pending, "camp-1+co-fries")[0];
    assert_eq!(kept["rules"]["minimumSpend"], 12.5);
    let kept = by_sort_key(&pending, "camp-2+co-fries")[0];
    assert_eq!(kept["selection"]["context"]["tier"], "gold");
}
