//! The test bed: DynamoDB Local, the tables of one test created from
//! template.yaml, rows written with the SDK, the stream read as Lambda would,
//! and the functions wired exactly as their main.rs wires them.

use crate::fixtures::{
    sample_catalog, ACTIVITY, CAMPAIGNS, CATALOG, DISPATCHER, LOOKUP, OFFERS, PENDING, PROGRESS,
    STATS_FUNCTION, SUPPORT, TRANSACTIONS, VISITS, WEBHOOK,
};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use lambda_runtime::{Context, LambdaEvent};
use offer_dispatcher::DispatcherConfig;
use offer_dispatcher::{build_dispatcher, handler};
use offers_local::streams::lambda_event;
use offers_local::{
    local_sdk_config, DynamoDbLocal, SamTemplate, StartOptions, StreamReader, TableSet,
};
use offers_shared::config::Env;
use offers_shared::dynamo::dynamodb_client;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Taken by the tests that each had a test binary to themselves before the
/// one binary: the whole local stack, schemathesis on a stack, and the two
/// outages freezing a DynamoDB Local of their own. They take turns, so that
/// two of them never share the machine's two cores: two stacks at once on a
/// busy machine trip the stack's own SDK timeouts, and the outage tests
/// must see their store answer before they freeze it.
pub static HEAVY_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One DynamoDB Local per test binary, started on first use. It fails loudly
/// when it cannot start: no test skips itself.
pub fn shared_dynamodb() -> &'static DynamoDbLocal {
    static LOCAL: OnceLock<DynamoDbLocal> = OnceLock::new();
    LOCAL.get_or_init(|| {
        DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"))
    })
}

/// One moto Secrets Manager server per test binary, with the local signing
/// secret created in it: its endpoint and the secret's ARN. It fails loudly
/// when moto is not installed: no test skips itself.
pub async fn shared_signing_secret() -> &'static (String, String) {
    static MOTO: OnceLock<offers_local::moto::MotoServer> = OnceLock::new();
    static SECRET: tokio::sync::OnceCell<(String, String)> = tokio::sync::OnceCell::const_new();
    SECRET
        .get_or_init(|| async {
            let moto = MOTO.get_or_init(|| {
                offers_local::moto::MotoServer::start().unwrap_or_else(|err| panic!("{err}"))
            });
            let arn = moto
                .create_secret(
                    "offers-test/webhook-signing-secret",
                    offers_local::moto::LOCAL_SIGNING_SECRET,
                )
                .await
                .unwrap_or_else(|err| panic!("{err}"));
            (moto.endpoint(), arn)
        })
        .await
}

/// Tables of one test, named with a prefix of their own on a DynamoDB Local.
pub struct TestBed {
    pub sdk: SdkConfig,
    pub client: Client,
    pub template: SamTemplate,
    pub tables: TableSet,
}

impl TestBed {
    /// A test bed on the shared DynamoDB Local.
    pub async fn new() -> Self {
        Self::on(&shared_dynamodb().endpoint()).await
    }

    /// A test bed on the DynamoDB Local at `endpoint`.
    pub async fn on(endpoint: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        offers_shared::telemetry::init_json_logging();
        let sdk = local_sdk_config(endpoint).await;
        let client = Client::new(&sdk);
        let template = SamTemplate::project().expect("template.yaml loads");
        let prefix = format!(
            "t{}-{}-",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let tables = template
            .create_tables(&client, &prefix)
            .await
            .expect("tables from template.yaml");
        Self {
            sdk,
            client,
            template,
            tables,
        }
    }

    pub fn table(&self, logical_id: &str) -> &str {
        self.tables.name(logical_id)
    }

    pub async fn put(&self, logical_id: &str, item: Value) {
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(item).expect("item");
        self.client
            .put_item()
            .table_name(self.table(logical_id))
            .set_item(Some(item))
            .send()
            .await
            .expect("put item");
    }

    pub async fn delete_pending(&self, user_id: &str, sort_key: &str) {
        self.client
            .delete_item()
            .table_name(self.table(PENDING))
            .key("userId", AttributeValue::S(user_id.into()))
            .key("sortKey", AttributeValue::S(sort_key.into()))
            .send()
            .await
            .expect("delete pending");
    }

    /// Every item of a table, as plain JSON.
    /// Stores a campaign definition (JSON) as `offers campaign put` does: a
    /// new version keeps its budget's `used` counters.
    pub async fn put_campaign(&self, definition: Value) {
        let definition = offers_shared::domain::campaign::parse_definition(&definition.to_string())
            .expect("a valid definition");
        offers_shared::dynamo::CampaignsTable::new(self.client.clone(), self.table(CAMPAIGNS))
            .put_definition(&definition, chrono::Utc::now())
            .await
            .expect("campaign stored");
    }

    /// The user's offer item as DynamoDB keeps it (consistent read).
    pub async fn raw_offer(&self, user_id: &str, id: &str) -> HashMap<String, AttributeValue> {
        self.client
            .get_item()
            .table_name(self.table(OFFERS))
            .key("userId", AttributeValue::S(user_id.into()))
            .key("personalizedOfferId", AttributeValue::S(id.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
            .expect("stored offer")
    }

    /// A copy of the user's offer under a new id, edited, written with the
    /// SDK (states and campaigns the dispatcher would not make); its id.
    pub async fn copy_offer(
        &self,
        user_id: &str,
        id: &str,
        edit: impl FnOnce(&mut offers_shared::domain::PersonalizedOffer),
    ) -> String {
        let item = self.raw_offer(user_id, id).await;
        let mut offer = offers_shared::dynamo::offer_from_item(item).expect("offer");
        offer.personalized_offer_id = offers_shared::domain::PersonalizedOfferId::random();
        edit(&mut offer);
        self.client
            .put_item()
            .table_name(self.table(OFFERS))
            .set_item(Some(
                offers_shared::dynamo::offer_to_item(&offer).expect("item"),
            ))
            .send()
            .await
            .expect("put offer");
        offer.personalized_offer_id.to_string()
    }

    pub async fn scan(&self, logical_id: &str) -> Vec<Map<String, Value>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(self.table(logical_id))
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            // The dispatcher's rejections mark is no rejection (its readers skip it).
            for item in page
                .items()
                .iter()
                .filter(|item| !offers_shared::dynamo::is_rejections_mark(item))
            {
                items.push(serde_dynamo::from_item(item.clone()).expect("item as JSON"));
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        items
    }

    /// How many items a table holds (Scan, Select COUNT, every page).
    pub async fn count(&self, logical_id: &str) -> u64 {
        if logical_id == crate::REJECTED {
            // The dispatcher's rejections mark is no rejection.
            return u64::try_from(self.scan(logical_id).await.len()).unwrap_or(u64::MAX);
        }
        let mut total = 0;
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(self.table(logical_id))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("count");
            total += u64::try_from(page.count()).unwrap_or(0);
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return total;
            }
        }
    }

    pub async fn stream(&self) -> StreamReader {
        StreamReader::open(&self.sdk, &self.client, self.table(PENDING))
            .await
            .expect("pending stream")
    }

    /// The loyalty offers table's stream (NEW_AND_OLD_IMAGES), read from its start.
    pub async fn offers_stream(&self) -> StreamReader {
        StreamReader::open(&self.sdk, &self.client, self.table(OFFERS))
            .await
            .expect("offers stream")
    }

    /// The transactions table's stream, read as Lambda would.
    pub async fn transactions_stream(&self) -> StreamReader {
        StreamReader::open(&self.sdk, &self.client, self.table(TRANSACTIONS))
            .await
            .expect("transactions stream")
    }

    /// Plain offers (no rules) and their templates (`tpl-<id>`).
    pub async fn load_plain_offers(&self, offer_ids: &[&str]) {
        for offer in offer_ids {
            let template = format!("tpl-{offer}");
            self.put(
                CATALOG,
                json!({"id": offer, "kind": "configOffer", "name": offer, "templateId": template, "rules": {}}),
            )
            .await;
            self.put(
                CATALOG,
                json!({"id": template, "kind": "offerTemplate", "configOfferId": offer, "rules": []}),
            )
            .await;
        }
    }

    pub async fn load_sample_catalog(&self) {
        for item in sample_catalog() {
            self.put(CATALOG, item).await;
        }
    }
}

/// The SDK timeouts the tests give the functions in place of template.yaml's
/// (1-2 s per attempt, 3-5 s per operation, tested in tests/it/template.rs):
/// DynamoDB Local on a machine whose cores other processes keep busy can
/// take seconds to answer, and tests assert outcomes, not latency. The
/// outage tests set their own, short ones.
/// The local stack's own values, so that tests and the stack agree.
pub const LOADED_MACHINE_SDK: &[(&str, &str)] = offers_local::stack::LOCAL_SDK_TIMEOUTS;

/// The functions as their main.rs wires them, configured from template.yaml.
impl TestBed {
    /// The environment template.yaml gives `function`, with SDK timeouts a
    /// busy test machine meets ([`LOADED_MACHINE_SDK`]), and `overrides` on top.
    pub fn environment(
        &self,
        function: &str,
        overrides: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let mut environment = self
            .template
            .function_environment(function, &self.tables)
            .expect("function environment");
        for (name, value) in LOADED_MACHINE_SDK {
            if let Some(setting) = environment.get_mut(*name) {
                *setting = (*value).to_owned();
            }
        }
        environment.extend(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        environment
    }

    /// That environment as a function's config reads it.
    fn env(
        &self,
        function: &str,
        overrides: &[(&str, &str)],
    ) -> Env<impl Fn(&str) -> Option<String>> {
        let environment = self.environment(function, overrides);
        Env(move |name: &str| environment.get(name).cloned())
    }

    pub fn dispatcher_config(&self, overrides: &[(&str, &str)]) -> DispatcherConfig {
        DispatcherConfig::from_env(&self.env(DISPATCHER, overrides)).expect("dispatcher config")
    }

    /// The dispatcher exactly as main.rs wires it, configured from template.yaml.
    pub fn dispatcher(&self, overrides: &[(&str, &str)]) -> offer_dispatcher::DynamoDispatcher {
        let config = self.dispatcher_config(overrides);
        build_dispatcher(dynamodb_client(&self.sdk, &config.sdk), &config)
    }

    pub fn lookup_config(&self, overrides: &[(&str, &str)]) -> offer_lookup::LookupConfig {
        offer_lookup::LookupConfig::from_env(&self.env(LOOKUP, overrides)).expect("lookup config")
    }

    /// The lookup exactly as its main.rs wires it, configured from template.yaml.
    pub fn lookup(&self, overrides: &[(&str, &str)]) -> offer_lookup::DynamoLookup {
        let config = self.lookup_config(overrides);
        offer_lookup::build_lookup(dynamodb_client(&self.sdk, &config.sdk), &config)
    }

    pub fn support_config(&self, overrides: &[(&str, &str)]) -> support_assignment::SupportConfig {
        support_assignment::SupportConfig::from_env(&self.env(SUPPORT, overrides))
            .expect("support config")
    }

    /// The support service exactly as its main.rs wires it, configured from template.yaml.
    pub fn support(&self, overrides: &[(&str, &str)]) -> support_assignment::DynamoSupport {
        let config = self.support_config(overrides);
        support_assignment::build_support(dynamodb_client(&self.sdk, &config.sdk), &config)
    }

    /// The webhook's configuration from template.yaml, its secret's ARN that
    /// of the secret in moto.
    pub async fn webhook_config(
        &self,
        overrides: &[(&str, &str)],
    ) -> campaign_webhook::WebhookConfig {
        let (_, arn) = shared_signing_secret().await;
        let mut all = vec![("WEBHOOK_SIGNING_SECRET_ARN", arn.as_str())];
        all.extend_from_slice(overrides);
        campaign_webhook::WebhookConfig::from_env(&self.env(WEBHOOK, &all)).expect("webhook config")
    }

    /// The webhook exactly as its main.rs wires it: the secret read with
    /// GetSecretValue from moto's Secrets Manager, configured from template.yaml.
    pub async fn webhook(&self, overrides: &[(&str, &str)]) -> campaign_webhook::DynamoWebhook {
        let config = self.webhook_config(overrides).await;
        let secret = self.webhook_secret(&config).await;
        campaign_webhook::build_webhook(dynamodb_client(&self.sdk, &config.sdk), &config, secret)
    }

    /// The environment the webhook's binary gets: template.yaml's, the
    /// secret's ARN in moto, and moto's Secrets Manager endpoint.
    pub async fn webhook_environment(&self, overrides: &[(&str, &str)]) -> HashMap<String, String> {
        let (endpoint, arn) = shared_signing_secret().await;
        let mut all = vec![
            ("WEBHOOK_SIGNING_SECRET_ARN", arn.as_str()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.as_str()),
        ];
        all.extend_from_slice(overrides);
        self.environment(WEBHOOK, &all)
    }

    /// The signing secret as the function reads it at init.
    pub async fn webhook_secret(
        &self,
        config: &campaign_webhook::WebhookConfig,
    ) -> campaign_webhook::SigningSecret {
        let (endpoint, _) = shared_signing_secret().await;
        let client =
            campaign_webhook::secrets_client(&self.sdk, &config.sdk, Some(endpoint.clone()));
        campaign_webhook::load_signing_secret(&client, &config.signing_secret_arn)
            .await
            .expect("the secret from moto")
    }

    pub fn stats_config(&self, overrides: &[(&str, &str)]) -> campaign_stats::StatsConfig {
        campaign_stats::StatsConfig::from_env(&self.env(STATS_FUNCTION, overrides))
            .expect("statistics config")
    }

    /// The statistics function exactly as its main.rs wires it, configured from template.yaml.
    pub fn stats(&self, overrides: &[(&str, &str)]) -> campaign_stats::DynamoStats {
        let config = self.stats_config(overrides);
        campaign_stats::build_stats(dynamodb_client(&self.sdk, &config.sdk), &config)
    }

    pub fn activity_config(&self, overrides: &[(&str, &str)]) -> offer_activity::ActivityConfig {
        offer_activity::ActivityConfig::from_env(&self.env(ACTIVITY, overrides))
            .expect("activity config")
    }

    /// The activity service exactly as its main.rs wires it, configured from template.yaml.
    pub fn activity(&self, overrides: &[(&str, &str)]) -> offer_activity::DynamoActivity {
        let config = self.activity_config(overrides);
        offer_activity::build_activity(dynamodb_client(&self.sdk, &config.sdk), &config)
    }

    pub fn progress_config(
        &self,
        overrides: &[(&str, &str)],
    ) -> challenge_progress::ProgressConfig {
        challenge_progress::ProgressConfig::from_env(&self.env(PROGRESS, overrides))
            .expect("challenge progress config")
    }

    /// Challenge progress exactly as its main.rs wires it, configured from template.yaml.
    pub fn progress(
        &self,
        overrides: &[(&str, &str)],
    ) -> challenge_progress::DynamoChallengeProgress {
        let config = self.progress_config(overrides);
        challenge_progress::build_progress(dynamodb_client(&self.sdk, &config.sdk), &config)
    }

    pub fn visits_config(&self, overrides: &[(&str, &str)]) -> user_visits::VisitsConfig {
        user_visits::VisitsConfig::from_env(&self.env(VISITS, overrides))
            .expect("user visits config")
    }

    /// User visits exactly as its main.rs wires it, configured from template.yaml.
    pub fn visits(&self, overrides: &[(&str, &str)]) -> user_visits::DynamoUserVisits {
        let config = self.visits_config(overrides);
        user_visits::build_visits(dynamodb_client(&self.sdk, &config.sdk), &config)
    }

    /// Puts pending rows and hands what the stream shows to the dispatcher;
    /// returns the `personalizedOfferId` of each row's offer, by sort key.
    pub async fn dispatch_rows(
        &self,
        stream: &mut StreamReader,
        rows: &[Value],
    ) -> HashMap<String, String> {
        for row in rows {
            self.put(PENDING, row.clone()).await;
        }
        let records = stream.read_new().await.expect("stream");
        let dispatcher = self.dispatcher(&[]);
        deliver_until_none_fail(&records, |batch| invoke(&dispatcher, batch)).await;
        let wanted: Vec<&str> = rows
            .iter()
            .filter_map(|row| row["sortKey"].as_str())
            .collect();
        let ids: HashMap<String, String> = self
            .scan(OFFERS)
            .await
            .into_iter()
            .filter_map(|offer| {
                let sort_key = offer.get("sortKey")?.as_str()?.to_owned();
                let id = offer.get("personalizedOfferId")?.as_str()?.to_owned();
                wanted
                    .contains(&sort_key.as_str())
                    .then_some((sort_key, id))
            })
            .collect();
        assert_eq!(ids.len(), rows.len(), "one offer per row");
        ids
    }
}

/// The sequence numbers a stream function reported in `batchItemFailures`.
fn failed_items(response: aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .into_iter()
        .filter_map(|failure| failure.item_identifier)
        .collect()
}

/// Calls the handler the way Lambda does, with a default context.
pub async fn invoke(
    dispatcher: &offer_dispatcher::DynamoDispatcher,
    records: &[Value],
) -> Vec<String> {
    invoke_with(dispatcher, records, Context::default()).await
}

/// Returns the sequence numbers reported in `batchItemFailures`.
pub async fn invoke_with(
    dispatcher: &offer_dispatcher::DynamoDispatcher,
    records: &[Value],
    context: Context,
) -> Vec<String> {
    // The metrics are the unit tests' and the binaries' concern (tests/it/binaries.rs).
    let metrics = offers_shared::metrics::memory::MemoryMetrics::default();
    let response = handler::handle(
        dispatcher,
        &metrics,
        LambdaEvent::new(lambda_event(records), context),
    )
    .await
    .expect("handler");
    failed_items(response)
}

/// Calls the statistics handler the way Lambda does; returns the sequence
/// numbers reported in `batchItemFailures`.
pub async fn invoke_stats(stats: &campaign_stats::DynamoStats, records: &[Value]) -> Vec<String> {
    let response = campaign_stats::handler::handle(
        stats,
        &offers_shared::metrics::memory::MemoryMetrics::default(),
        LambdaEvent::new(lambda_event(records), Context::default()),
    )
    .await
    .expect("handler");
    failed_items(response)
}

/// Calls challenge progress's handler the way Lambda does, with a default
/// context; returns the sequence numbers reported in `batchItemFailures`.
pub async fn invoke_progress(
    progress: &challenge_progress::DynamoChallengeProgress,
    records: &[Value],
) -> Vec<String> {
    let response = challenge_progress::handler::handle(
        progress,
        &offers_shared::metrics::memory::MemoryMetrics::default(),
        LambdaEvent::new(lambda_event(records), Context::default()),
    )
    .await
    .expect("handler");
    failed_items(response)
}

/// Calls user visits' handler the way Lambda does, with a default context;
/// returns the sequence numbers reported in `batchItemFailures`.
pub async fn invoke_visits(
    visits: &user_visits::DynamoUserVisits,
    records: &[Value],
) -> Vec<String> {
    let response = user_visits::handler::handle(
        visits,
        &offers_shared::metrics::memory::MemoryMetrics::default(),
        LambdaEvent::new(lambda_event(records), Context::default()),
    )
    .await
    .expect("handler");
    failed_items(response)
}

/// Where the lookup and support tests start.
impl TestBed {
    /// A test bed whose catalog holds the sample catalog.
    pub async fn with_sample_catalog() -> Self {
        let bed = Self::new().await;
        bed.load_sample_catalog().await;
        bed
    }

    /// A test bed with the sample catalog on which the dispatcher has made
    /// `rows` into offers: the bed and each row's `personalizedOfferId`, by
    /// sort key.
    pub async fn with_offers(rows: &[Value]) -> (Self, HashMap<String, String>) {
        let bed = Self::with_sample_catalog().await;
        let mut stream = bed.stream().await;
        let ids = bed.dispatch_rows(&mut stream, rows).await;
        (bed, ids)
    }

    /// A test bed with the sample catalog, and the support service as its
    /// main.rs wires it, configured from template.yaml.
    pub async fn with_support() -> (Self, support_assignment::DynamoSupport) {
        let bed = Self::with_sample_catalog().await;
        let support = bed.support(&[]);
        (bed, support)
    }
}

/// What Lambda delivers again after a partial batch failure: the records from
/// the lowest failed sequence number on.
pub fn from_lowest_failed<'a>(records: &'a [Value], failed: &[String]) -> &'a [Value] {
    let first = records
        .iter()
        .position(|record| {
            failed
                .iter()
                .any(|sequence| record["dynamodb"]["SequenceNumber"] == sequence.as_str())
        })
        .expect("a failed record is in the batch");
    &records[first..]
}

/// How many times a test delivers a batch at most: the event source mapping
/// retries a failed record 10 times, and a loaded test machine may need more
/// attempts than a deployed function would.
pub const MAX_DELIVERIES: usize = 20;

/// Delivers `records` the way the event source mapping does: once, then,
/// while some fail, again from the lowest failed sequence number, at most
/// [`MAX_DELIVERIES`] times in all. On a busy machine the SDK's attempt
/// timeouts make some records fail, which is correct: tests assert the
/// outcome once none fails, not that none failed on the first try. Returns
/// how many deliveries it took; panics if records still fail after the last.
pub async fn deliver_until_none_fail<'a, F, Fut>(records: &'a [Value], mut deliver: F) -> usize
where
    F: FnMut(&'a [Value]) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let mut batch = records;
    for delivery in 1..=MAX_DELIVERIES {
        let failed = deliver(batch).await;
        if failed.is_empty() {
            return delivery;
        }
        batch = from_lowest_failed(batch, &failed);
        // The mapping's pause before a retry: a busy store gets room.
        tokio::time::sleep(offers_local::event_source::retry_pause(delivery as u32)).await;
    }
    panic!("records still failed after {MAX_DELIVERIES} deliveries");
}

/// The dispatcher's handler fed `records` as the event source mapping feeds
/// it ([`deliver_until_none_fail`]).
pub async fn deliver(dispatcher: &offer_dispatcher::DynamoDispatcher, records: &[Value]) -> usize {
    deliver_until_none_fail(records, |batch| invoke(dispatcher, batch)).await
}

/// The statistics handler fed `records` as the event source mapping feeds
/// it ([`deliver_until_none_fail`]).
pub async fn deliver_stats(stats: &campaign_stats::DynamoStats, records: &[Value]) -> usize {
    deliver_until_none_fail(records, |batch| invoke_stats(stats, batch)).await
}

/// Challenge progress's handler fed `records` as the event source mapping
/// feeds it ([`deliver_until_none_fail`]).
pub async fn deliver_progress(
    progress: &challenge_progress::DynamoChallengeProgress,
    records: &[Value],
) -> usize {
    deliver_until_none_fail(records, |batch| invoke_progress(progress, batch)).await
}
