//! DynamoDB Local stops answering in the middle of a batch: the records it
//! could not finish are reported failed, no new write starts once the outage
//! is seen, nothing is half written, and Lambda's retry (from the lowest
//! failed sequence number) dispatches every row exactly once, including the
//! rows whose write timed out on the client but landed on the server.

use offer_dispatcher::handler;
use offers_integration_tests::*;
use offers_local::streams::lambda_event;
use offers_local::{DynamoDbLocal, StartOptions};
use offers_shared::catalog_cache::CachedCatalog;
use offers_shared::dispatch::{DispatchSettings, Dispatcher};
use offers_shared::domain::{CampaignId, PersonalizedOffer};
use offers_shared::dynamo::{dynamodb_client, DynamoStore};
use offers_shared::error::StoreError;
use offers_shared::ports::{
    BudgetedWrite, DispatchStore, PendingRef, PriorRejection, RejectedRow, RejectionKey,
    WriteOutcome,
};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const ROWS: usize = 300;
const CONCURRENCY: usize = 4;

/// The real DynamoDB adapter, counting the writes it finished and the ones
/// that failed.
struct CountingStore {
    inner: DynamoStore,
    written: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl CountingStore {
    fn count<T>(&self, result: &Result<T, StoreError>) {
        let counter = if result.is_ok() {
            &self.written
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

impl DispatchStore for CountingStore {
    async fn rejections_absent(
        &self,
        records: &[RejectionKey<'_>],
    ) -> Result<HashSet<Uuid>, StoreError> {
        self.inner.rejections_absent(records).await
    }

    async fn dispatch_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
    ) -> Result<WriteOutcome, StoreError> {
        let result = self.inner.dispatch_offer(offer, pending, prior).await;
        self.count(&result);
        result
    }

    async fn reject_row(
        &self,
        rejection: &RejectedRow,
        pending: &PendingRef,
    ) -> Result<WriteOutcome, StoreError> {
        let result = self.inner.reject_row(rejection, pending).await;
        self.count(&result);
        result
    }

    async fn dispatch_budgeted_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
        campaign_id: &CampaignId,
    ) -> Result<BudgetedWrite, StoreError> {
        let result = self
            .inner
            .dispatch_budgeted_offer(offer, pending, prior, campaign_id)
            .await;
        self.count(&result);
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_stopping_to_answer_mid_batch_loses_nothing_and_the_retry_dispatches_each_row_once(
) {
    let _turn = HEAVY_TESTS.lock().await;
    // Frozen, not killed: a DynamoDB Local stopped in the middle of a request
    // can lose a transaction it already acknowledged (AWS never does), which
    // would be a fault of the test bed, not of the code under test.
    let local = Arc::new(
        DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}")),
    );
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    for index in 0..ROWS {
        bed.put(
            PENDING,
            fries_row(&format!("user-{}", index % 17), &format!("camp+{index}")),
        )
        .await;
    }
    let records = bed.stream().await.read_new().await.expect("stream");
    assert_eq!(records.len(), ROWS);

    // SDK timeouts by which the outage is noticed.
    let config = bed.dispatcher_config(&[
        // A frozen store never answers, so these trip all the same; a busy
        // machine's store answers within them (400 ms did not at load 16:
        // the store looked down before the freeze, which then never came).
        ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "5000"),
        ("DYNAMODB_OPERATION_TIMEOUT_MS", "10000"),
        ("DYNAMODB_CONNECT_TIMEOUT_MS", "1000"),
        ("DYNAMODB_MAX_ATTEMPTS", "2"),
        ("DISPATCH_CONCURRENCY", &CONCURRENCY.to_string()),
    ]);
    let store = DynamoStore::new(
        dynamodb_client(&bed.sdk, &config.sdk),
        config.tables.clone(),
    );
    let written = Arc::new(AtomicUsize::new(0));
    let failed_writes = Arc::new(AtomicUsize::new(0));
    let dispatcher = Dispatcher::new(
        CountingStore {
            inner: store.clone(),
            written: written.clone(),
            failed: failed_writes.clone(),
        },
        CachedCatalog::new(store, config.catalog_cache_ttl),
        DispatchSettings {
            concurrency: config.concurrency,
            deadline_margin: config.deadline_margin,
            retention: config.retention,
        },
    );

    let freezer = {
        let (local, written) = (local.clone(), written.clone());
        tokio::spawn(async move {
            while written.load(Ordering::SeqCst) < 40 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            local.freeze();
        })
    };
    let event = lambda_runtime::LambdaEvent::new(
        lambda_event(&records),
        lambda_runtime::Context::default(),
    );
    let metrics = offers_shared::metrics::memory::MemoryMetrics::default();
    let response = handler::handle(&dispatcher, &metrics, event)
        .await
        .expect("handler answers even when DynamoDB does not");
    if !freezer.is_finished() {
        freezer.abort();
        panic!(
            "the batch ended before the freeze, after {} writes",
            written.load(Ordering::SeqCst)
        );
    }
    freezer.await.expect("freezer");
    local.thaw();
    let failed: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .filter_map(|f| f.item_identifier)
        .collect();
    let done = written.load(Ordering::SeqCst);
    assert!(!failed.is_empty(), "the outage is reported");
    // The metrics count the same failures, by kind.
    let [set] = &metrics.sets()[..] else {
        panic!("one metric set per batch");
    };
    let failed_counted: u64 = set
        .metrics
        .iter()
        .filter(|metric| metric.name == "Failed")
        .map(|metric| match metric.values {
            offers_shared::metrics::Values::One(count) => count,
            offers_shared::metrics::Values::Many(ref values) => values.len() as u64,
        })
        .sum();
    assert_eq!(failed_counted, failed.len() as u64);
    assert!(
        (40..ROWS).contains(&done),
        "stopped mid-batch after {done} writes"
    );
    assert_eq!(
        done + failed.len(),
        ROWS,
        "each record is written or reported failed"
    );
    let failed_writes = failed_writes.load(Ordering::SeqCst);
    assert!(
        failed_writes <= 2 * CONCURRENCY,
        "once the outage is seen no new write starts: {failed_writes} writes failed"
    );

    // Nothing half written: every row is either an offer (and no longer
    // pending) or still pending (and no offer), never both or neither. The
    // writes DynamoDB Local queued while frozen (their clients gave up) run
    // now, so wait until that settles.
    let (offered, pending) = settled(&bed).await;
    assert!(
        offered.is_disjoint(&pending),
        "a row is both offered and pending"
    );
    assert_eq!(offered.len() + pending.len(), ROWS, "a row vanished");
    assert!(offered.len() >= done);

    // Lambda retries from the lowest failed sequence number onward, until
    // nothing fails.
    let retrying = bed.dispatcher(&[]);
    deliver(&retrying, from_lowest_failed(&records, &failed)).await;

    let offers = bed.scan(OFFERS).await;
    let all: HashSet<String> = (0..ROWS).map(|index| format!("camp+{index}")).collect();
    let offered_now = sort_keys(offers.clone());
    let missing: Vec<&String> = all.difference(&offered_now).collect();
    let still_pending = sort_keys(bed.scan(PENDING).await);
    assert_eq!(
        offers.len(),
        ROWS,
        "one offer per row, no duplicate; missing {missing:?}, pending {still_pending:?}"
    );
    assert_eq!(offered_now.len(), ROWS);
    assert!(still_pending.is_empty());
}

/// The offered and the pending sort keys once two scans in a row agree.
async fn settled(bed: &TestBed) -> (HashSet<String>, HashSet<String>) {
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut last = (HashSet::new(), HashSet::new());
    loop {
        let now = (
            sort_keys(bed.scan(OFFERS).await),
            sort_keys(bed.scan(PENDING).await),
        );
        if now == last || Instant::now() > give_up {
            return now;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sort_keys(items: Vec<serde_json::Map<String, Value>>) -> HashSet<String> {
    items
        .iter()
        .filter_map(|item| item["sortKey"].as_str().map(str::to_owned))
        .collect()
}
