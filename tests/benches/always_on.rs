//! Always-on campaigns benchmark (issue 22; `cargo bench -p
//! offers-integration-tests --bench always_on`, with `RUST_LOG=warn`):
//!
//! 1. **The chooser per visit**: 2,000 visits of new users (16 at once, as
//!    `VISITS_CONCURRENCY`), each through `AlwaysOnChooser::on_visit` as
//!    the function runs it after the profile (warm caches: campaigns,
//!    statistics, catalog), profiles of 144 kinds (every value of the four
//!    buckets), learning counters in which every bucket changes the best
//!    offer (so that each kind of profile has its own mixture, built on
//!    its first visit after each 30 s refresh); beside a floor: the chooser's own DynamoDB calls issued bare
//!    with the same concurrency (Query of the user's offers of the
//!    campaign, Query of their pending rows, the conditional put of the
//!    same pending row, built beforehand). Printed: the time ratio, and the
//!    bench process's CPU per visit over the floor's: the chooser's own
//!    work beside the SDK calls (`getrusage`).
//! 2. **Profile updates**: 2,000 transactions of 400 users (five each, as
//!    20 stream batches of 100 from the transactions table's real stream,
//!    one reader for the whole part so that each side gets its own
//!    transactions only) through UserVisitsFunction's handler (a paused
//!    always-on campaign: the chooser reads its cache and assigns nothing;
//!    every user's profile checked afterwards: five visits), beside the floor
//!    of the same reads and conditional writes issued bare: per
//!    transaction the consistent GetItem of the profile and the
//!    two-item transaction (mark put if absent, profile put on its
//!    version), items built beforehand, the same users at once.
//!
//!    Both run on one fresh DynamoDB Local, after an uncounted warm-up,
//!    function and floor alternating over `ALWAYS_ON_BENCH_ROUNDS` rounds
//!    (2), each round on users of its own.
//! 3. **Visit to offer in the app's list** on the local stack (release
//!    binaries, the template's 1 s batching windows on the transactions
//!    and pending streams): a transaction put for a new user, then `GET
//!    /rewards/offers` polled until the always-on offer is listed; p50 and
//!    p99 over sequential visits.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use offers_integration_tests::*;
use offers_local::conventions::LOCAL_TABLE_PREFIX;
use offers_local::{DynamoDbLocal, StartOptions, StreamReader};
use offers_shared::always_on::{AlwaysOnChooser, CampaignOutcome};
use offers_shared::domain::always_on::{pending_row, AlwaysOnCampaign, AlwaysOnChoice};
use offers_shared::domain::campaign::parse_definition;
use offers_shared::domain::campaign_stats::{CounterKey, Counts};
use offers_shared::domain::dates::format_timestamp;
use offers_shared::domain::profile::{Profile, Visit};
use offers_shared::domain::Transaction;
use offers_shared::dynamo::{
    counter_update, mark_key, AlwaysOnTables, CampaignsTable, CatalogTable, SelectionStatsTable,
};
use offers_shared::stream::runner::Run;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const VISITS: usize = 2_000;
const WARM_UP_VISITS: usize = 300;
const CONCURRENCY: usize = 16;
const PROFILE_USERS: usize = 400;
const PROFILE_TRANSACTIONS: usize = 2_000;
const BATCH: usize = 100;
const LATENCY_SAMPLES: usize = 40;
const POOL: [&str; 4] = ["co-tea", "co-cake", "co-soup", "co-bagel"];
const CAMPAIGNS: &str = "CampaignsTable";
const STATS: &str = "CampaignStatsTable";

type Item = HashMap<String, AttributeValue>;

fn definition(campaign_id: &str, start: DateTime<Utc>) -> Value {
    json!({
        "campaignId": campaign_id, "mode": "alwaysOn",
        "pool": POOL.iter().map(|offer| json!({"offerId": offer})).collect::<Vec<_>>(),
        "startDate": format_timestamp(start),
        "endDate": format_timestamp(start + chrono::Duration::days(90)),
        "validDays": 14, "cadence": "P1D", "slots": 2, "holdout": 0.1, "reward": "redeemed"
    })
}

async fn put_campaign(bed: &TestBed, campaign_id: &str, paused: bool) -> AlwaysOnCampaign {
    let text = definition(campaign_id, Utc::now() - chrono::Duration::days(1)).to_string();
    let parsed = parse_definition(&text).expect("a valid definition");
    let table = CampaignsTable::new(bed.client.clone(), bed.table(CAMPAIGNS));
    table
        .put_definition(&parsed, Utc::now())
        .await
        .expect("stored");
    if paused {
        table
            .set_paused(campaign_id, true, Utc::now())
            .await
            .expect("paused");
    }
    AlwaysOnCampaign::of(parsed, 1, paused).expect("always-on")
}

/// Learning counters in which each offer wins for some values of each of
/// the four buckets, so that the engine ranks by all of them and every
/// profile context has its own mixture, as in a campaign that has learnt.
async fn seed_statistics(bed: &TestBed) {
    let values: [(&str, &[&str]); 4] = [
        ("visits30", &["1", "2-3", "4-9", "10+"]),
        ("mode", &["pickup", "delivery", "dine-in"]),
        ("spend", &["<10", "10-25", "25+"]),
        ("daypart", &["morning", "midday", "evening", "night"]),
    ];
    for (offer_index, offer) in POOL.iter().enumerate() {
        let mut counters = vec![(None, 20_000, 400)];
        for (name, names) in values {
            for (value_index, value) in names.iter().enumerate() {
                let wins = (offer_index + value_index) % POOL.len() == 0;
                let redeemed = if wins { 300 } else { 60 };
                counters.push((Some((name.to_owned(), value.to_string())), 3_000, redeemed));
            }
        }
        for (attribute, assigned, redeemed) in counters {
            let key = CounterKey::Learning {
                offer_id: offer.to_string(),
                day: None,
                attribute,
            };
            let counts = Counts {
                assigned,
                redeemed,
                ..Counts::default()
            };
            let update = counter_update(bed.table(STATS), &key, &counts).expect("an update");
            bed.client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(update).build())
                .send()
                .await
                .expect("a learning counter");
        }
    }
}

/// The profile context of visit `index`: every combination of the four
/// buckets' values comes round (4 x 3 x 3 x 4 = 144).
fn context(index: usize) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "visits30".to_owned(),
            ["1", "2-3", "4-9", "10+"][index % 4].to_owned(),
        ),
        (
            "mode".to_owned(),
            ["pickup", "delivery", "dine-in"][index / 4 % 3].to_owned(),
        ),
        (
            "spend".to_owned(),
            ["<10", "10-25", "25+"][index / 12 % 3].to_owned(),
        ),
        (
            "daypart".to_owned(),
            ["morning", "midday", "evening", "night"][index / 36 % 4].to_owned(),
        ),
    ])
}

type Chooser = AlwaysOnChooser<AlwaysOnTables, SelectionStatsTable, CatalogTable>;

fn chooser(bed: &TestBed) -> Chooser {
    AlwaysOnChooser::new(
        AlwaysOnTables::new(
            bed.client.clone(),
            bed.table(CAMPAIGNS),
            bed.table(OFFERS),
            bed.table(PENDING),
        ),
        SelectionStatsTable::new(bed.client.clone(), bed.table(STATS)),
        CatalogTable::new(bed.client.clone(), bed.table(CATALOG)),
    )
}

/// `count` visits of new users through the chooser: wall time and CPU.
async fn chooser_side(chooser: &Chooser, run_name: &str, count: usize) -> (Duration, CpuTime) {
    let now = Utc::now();
    let transactions: Vec<Transaction> = (0..count)
        .filter_map(|index| {
            let user_id =
                offers_shared::domain::UserId::try_from(format!("{run_name}-u{index}")).ok()?;
            Some((index, user_id))
        })
        .map(|(index, user_id)| Transaction {
            transaction_id: format!("{run_name}-t{index}"),
            user_id,
            total_cost: 12.0,
            occurred_at: now,
            store_id: None,
            service_mode: Some("pickup".to_owned()),
        })
        .collect();
    let run = Run::new(now, None, Duration::ZERO);
    let cpu = CpuTime::of_self();
    let started = Instant::now();
    let outcomes: Vec<_> = stream::iter(transactions.iter().enumerate())
        .map(|(index, transaction)| chooser.on_visit(transaction, context(index), &run))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let cpu = CpuTime::of_self().since(cpu);
    for outcome in outcomes {
        let outcome = outcome.expect("a visit");
        assert!(
            matches!(
                outcome.as_slice(),
                [CampaignOutcome::Assigned { written: true, .. }]
            ),
            "{outcome:?}"
        );
    }
    (elapsed, cpu)
}

/// The same visits' DynamoDB calls issued bare: wall time and CPU.
async fn chooser_floor(
    bed: &TestBed,
    campaign: &AlwaysOnCampaign,
    run_name: &str,
    count: usize,
) -> (Duration, CpuTime) {
    let now = Utc::now();
    let window = campaign.window_of(now).expect("started");
    let rows: Vec<(String, Item)> = (0..count)
        .map(|index| {
            let user = format!("{run_name}-u{index}");
            let offer = index % POOL.len();
            let choice = AlwaysOnChoice {
                offer,
                propensity: 0.5,
                holdout: false,
            };
            let row = pending_row(
                campaign,
                &campaign.settings.pool[offer],
                &user,
                now,
                window,
                &choice,
                &context(index),
            );
            (user, serde_dynamo::to_item(row).expect("an item"))
        })
        .collect();
    let client = &bed.client;
    let (offers, pending) = (bed.table(OFFERS), bed.table(PENDING));
    let campaign_id = AttributeValue::S(campaign.campaign_id.to_string());
    let cpu = CpuTime::of_self();
    let started = Instant::now();
    stream::iter(rows)
        .map(|(user, item)| {
            let campaign_id = campaign_id.clone();
            async move {
                for table in [offers, pending] {
                    client
                        .query()
                        .table_name(table)
                        .key_condition_expression("userId = :user")
                        .filter_expression("campaignId = :campaign")
                        .expression_attribute_values(":user", AttributeValue::S(user.clone()))
                        .expression_attribute_values(":campaign", campaign_id.clone())
                        .send()
                        .await
                        .expect("query");
                }
                client
                    .put_item()
                    .table_name(pending)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(userId)")
                    .send()
                    .await
                    .expect("put");
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    (started.elapsed(), CpuTime::of_self().since(cpu))
}

/// The transactions of a profile run: transaction `j` is user `j % 400`'s,
/// each user's five a minute apart, in order.
fn profile_transactions(run_name: &str) -> Vec<Value> {
    let start = Utc::now() - chrono::Duration::minutes(30);
    (0..PROFILE_TRANSACTIONS)
        .map(|j| {
            let at = start + chrono::Duration::minutes((j / PROFILE_USERS) as i64);
            let mut item = transaction(
                &format!("{run_name}-t{j}"),
                &format!("{run_name}-u{}", j % PROFILE_USERS),
                12.5,
                &format_timestamp(at),
            );
            item["serviceMode"] = json!(["pickup", "delivery"][j % 2]);
            item
        })
        .collect()
}

/// 2,000 transactions through the function's handler, batches of 100.
/// `stream` is the one reader of the transactions stream for the whole
/// part, so that each side hands the function its own transactions only:
/// a reader opened anew starts at the trim horizon and handed the function
/// every earlier side's transactions again (4,000 records in round 0,
/// 6,000 in round 1, all but 2,000 of them duplicates), which is what made
/// this side measure 2.3 to 2.65 times its floor before.
async fn profile_side(
    bed: &TestBed,
    stream: &mut StreamReader,
    run_name: &str,
) -> (Duration, CpuTime) {
    for chunk in profile_transactions(run_name).chunks(25) {
        futures::future::join_all(chunk.iter().map(|item| bed.put(TRANSACTIONS, item.clone())))
            .await;
    }
    let mut records = Vec::new();
    while records.len() < PROFILE_TRANSACTIONS {
        let new = stream.read_new().await.expect("transactions stream");
        assert!(!new.is_empty(), "every transaction on the stream");
        records.extend(inserts(&new));
    }
    assert_eq!(
        records.len(),
        PROFILE_TRANSACTIONS,
        "this side's transactions and no earlier side's"
    );
    let visits = bed.visits(&[]);
    let cpu = CpuTime::of_self();
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        assert!(invoke_visits(&visits, batch).await.is_empty());
    }
    let measured = (started.elapsed(), CpuTime::of_self().since(cpu));
    assert_every_visit_counted(bed, run_name).await;
    measured
}

/// Each of the run's users has a profile of its five visits (read after
/// the measurement): the function counted every transaction, once.
async fn assert_every_visit_counted(bed: &TestBed, run_name: &str) {
    let table = bed.table(PROFILES);
    let visits: Vec<Option<String>> = stream::iter(0..PROFILE_USERS)
        .map(|user| async move {
            let item = bed
                .client
                .get_item()
                .table_name(table)
                .key("userId", AttributeValue::S(format!("{run_name}-u{user}")))
                .consistent_read(true)
                .send()
                .await
                .expect("get")
                .item
                .unwrap_or_default();
            item.get("visits")
                .and_then(|visits| visits.as_n().ok())
                .cloned()
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let per_user = (PROFILE_TRANSACTIONS / PROFILE_USERS).to_string();
    assert!(
        visits
            .iter()
            .all(|visits| visits.as_deref() == Some(per_user.as_str())),
        "every user of {run_name} counted {per_user} visits"
    );
}

/// The same reads and conditional writes issued bare, items built first.
async fn profile_floor(bed: &TestBed, run_name: &str) -> (Duration, CpuTime) {
    let table = bed.table(PROFILES);
    let mut profiles: Vec<Profile> = vec![Profile::default(); PROFILE_USERS];
    let mut writes: Vec<(String, Item, Item, u64)> = Vec::new();
    for (j, item) in profile_transactions(run_name).iter().enumerate() {
        let user = j % PROFILE_USERS;
        let visit = Visit {
            occurred_at: item["occurredAt"]
                .as_str()
                .and_then(offers_shared::domain::dates::parse_timestamp)
                .expect("a date"),
            total_cost: 12.5,
            service_mode: item["serviceMode"].as_str().map(str::to_owned),
        };
        let version = (j / PROFILE_USERS) as u64;
        profiles[user] = profiles[user].counted(&visit);
        let user_id = format!("{run_name}-u{user}");
        let mut profile: Item = serde_dynamo::to_item(&profiles[user]).expect("a profile item");
        profile.insert("userId".into(), AttributeValue::S(user_id.clone()));
        profile.insert(
            "version".into(),
            AttributeValue::N((version + 1).to_string()),
        );
        let mark: Item = HashMap::from([
            (
                "userId".to_owned(),
                AttributeValue::S(mark_key(&format!("{run_name}-t{j}"))),
            ),
            (
                "transactionId".to_owned(),
                AttributeValue::S(format!("{run_name}-t{j}")),
            ),
            ("profileOf".to_owned(), AttributeValue::S(user_id.clone())),
            (
                "ttl".to_owned(),
                AttributeValue::N(future_epoch(7).to_string()),
            ),
        ]);
        writes.push((user_id, mark, profile, version));
    }
    let client = &bed.client;
    let cpu = CpuTime::of_self();
    let started = Instant::now();
    // A batch's records are of 100 distinct users: all at once, 16 in flight.
    for batch in writes.chunks(BATCH) {
        stream::iter(batch.iter().cloned())
            .map(|(user_id, mark, profile, version)| async move {
                client
                    .get_item()
                    .table_name(table)
                    .key("userId", AttributeValue::S(user_id))
                    .consistent_read(true)
                    .send()
                    .await
                    .expect("get");
                let mark = Put::builder()
                    .table_name(table)
                    .set_item(Some(mark))
                    .condition_expression("attribute_not_exists(#user)")
                    .expression_attribute_names("#user", "userId")
                    .build()
                    .expect("mark");
                let profile = Put::builder().table_name(table).set_item(Some(profile));
                let profile = if version == 0 {
                    profile
                        .condition_expression("attribute_not_exists(#user)")
                        .expression_attribute_names("#user", "userId")
                } else {
                    profile
                        .condition_expression("#version = :read")
                        .expression_attribute_names("#version", "version")
                        .expression_attribute_values(
                            ":read",
                            AttributeValue::N(version.to_string()),
                        )
                }
                .build()
                .expect("profile");
                client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(mark).build())
                    .transact_items(TransactWriteItem::builder().put(profile).build())
                    .send()
                    .await
                    .expect("transaction");
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
    }
    (started.elapsed(), CpuTime::of_self().since(cpu))
}

/// Visit to offer in the app's list, on the local stack.
async fn visit_to_listed() -> Vec<Duration> {
    let dir = std::env::temp_dir().join(format!("offers-always-on-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let stack = LocalStack::start(&dir.join("data"));
    let campaign = offers_local::workspace_root().join("events/sample-always-on.json");
    let (code, output) = stack.offers(&["campaign", "put", &campaign.to_string_lossy()]);
    assert_eq!(code, 0, "{output}");
    let sdk = offers_local::local_sdk_config(&stack.dynamodb).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let transactions = format!("{LOCAL_TABLE_PREFIX}LoyaltyTransactionsTable");
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    // The first few warm the functions and their caches: not counted.
    for sample in 0..LATENCY_SAMPLES + 3 {
        let user = format!("visitor-{sample}");
        let item = transaction(
            &format!("bench-visit-{sample}"),
            &user,
            12.5,
            &format_timestamp(Utc::now()),
        );
        let item: Item = serde_dynamo::to_item(item).expect("item");
        let started = Instant::now();
        client
            .put_item()
            .table_name(&transactions)
            .set_item(Some(item))
            .send()
            .await
            .expect("put transaction");
        stack.poll_until(
            "/rewards/offers",
            &user,
            "",
            started,
            Duration::from_secs(60),
            |status, body| {
                status == 200 && body["offers"].as_array().is_some_and(|o| !o.is_empty())
            },
        );
        if sample >= 3 {
            latencies.push(started.elapsed());
        }
    }
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort();
    latencies
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("ALWAYS_ON_BENCH_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(2);
    // `ALWAYS_ON_BENCH_PARTS=profiles`: part 2 alone (for a profiler).
    let profiles_only =
        std::env::var("ALWAYS_ON_BENCH_PARTS").is_ok_and(|parts| parts == "profiles");
    let chooser_rounds = if profiles_only { 0 } else { rounds };
    let local = DynamoDbLocal::start(StartOptions::default()).expect("DynamoDB Local");
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_plain_offers(&POOL).await;
    seed_statistics(&bed).await;
    let campaign = put_campaign(&bed, "bench-always", false).await;
    let chooser = chooser(&bed);

    if !profiles_only {
        chooser_side(&chooser, "warm-fn", WARM_UP_VISITS).await;
        chooser_floor(&bed, &campaign, "warm-floor", WARM_UP_VISITS).await;
    }
    let (mut chooser_time, mut chooser_cpu) = (Duration::ZERO, Duration::ZERO);
    let (mut floor_time, mut floor_cpu) = (Duration::ZERO, Duration::ZERO);
    for round in 0..chooser_rounds {
        let (function_run, floor_run) = (format!("fn{round}"), format!("floor{round}"));
        let function = || chooser_side(&chooser, &function_run, VISITS);
        let floor = || chooser_floor(&bed, &campaign, &floor_run, VISITS);
        let ((ft, fc), (bt, bc)) = if round % 2 == 0 {
            let f = function().await;
            (f, floor().await)
        } else {
            let b = floor().await;
            (function().await, b)
        };
        println!(
            "  chooser round {round}: function {:.2} s ({:.3} ms CPU/visit), floor {:.2} s ({:.3} ms CPU/visit)",
            ft.as_secs_f64(),
            fc.per_item_ms(VISITS),
            bt.as_secs_f64(),
            bc.per_item_ms(VISITS)
        );
        chooser_time += ft;
        floor_time += bt;
        chooser_cpu += fc.user + fc.system;
        floor_cpu += bc.user + bc.system;
    }
    let visits = VISITS * rounds;
    let per_visit = |cpu: Duration| cpu.as_secs_f64() * 1_000.0 / visits as f64;

    // Profiles: the chooser has a paused campaign to read (and keep).
    let profiles = TestBed::on(&local.endpoint()).await;
    profiles.load_plain_offers(&POOL).await;
    put_campaign(&profiles, "bench-paused", true).await;
    let mut stream = profiles.transactions_stream().await;
    profile_side(&profiles, &mut stream, "warm-pfn").await;
    profile_floor(&profiles, "warm-pfloor").await;
    let (mut profile_time, mut profile_cpu) = (Duration::ZERO, Duration::ZERO);
    let (mut pfloor_time, mut pfloor_cpu) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        let ((ft, fc), (bt, bc)) = if round % 2 == 0 {
            let f = profile_side(&profiles, &mut stream, &format!("pfn{round}")).await;
            (f, profile_floor(&profiles, &format!("pfloor{round}")).await)
        } else {
            let b = profile_floor(&profiles, &format!("pfloor{round}")).await;
            let f = profile_side(&profiles, &mut stream, &format!("pfn{round}")).await;
            (f, b)
        };
        println!(
            "  profile round {round}: function {:.2} s, floor {:.2} s",
            ft.as_secs_f64(),
            bt.as_secs_f64()
        );
        profile_time += ft;
        pfloor_time += bt;
        profile_cpu += fc.user + fc.system;
        pfloor_cpu += bc.user + bc.system;
    }
    drop(local);

    println!("always-on bench: {rounds} rounds, {CONCURRENCY} at once, sides alternating");
    if !profiles_only {
        println!(
            "  chooser: {visits} visits in {:.2} s vs floor {:.2} s: ratio {:.3} (target <= 1.15)",
            chooser_time.as_secs_f64(),
            floor_time.as_secs_f64(),
            chooser_time.as_secs_f64() / floor_time.as_secs_f64()
        );
        println!(
            "  chooser CPU per visit: {:.3} ms, floor's {:.3} ms: the chooser's own {:.3} ms (target <= 0.2)",
            per_visit(chooser_cpu),
            per_visit(floor_cpu),
            per_visit(chooser_cpu) - per_visit(floor_cpu)
        );
    }
    let transactions = PROFILE_TRANSACTIONS * rounds;
    println!(
        "  profiles: {transactions} transactions ({PROFILE_USERS} users a round) in {:.2} s vs floor {:.2} s: ratio {:.3} (target <= 1.15); CPU per transaction {:.3} ms vs {:.3} ms",
        profile_time.as_secs_f64(),
        pfloor_time.as_secs_f64(),
        profile_time.as_secs_f64() / pfloor_time.as_secs_f64(),
        profile_cpu.as_secs_f64() * 1_000.0 / transactions as f64,
        pfloor_cpu.as_secs_f64() * 1_000.0 / transactions as f64
    );

    if profiles_only {
        return;
    }
    let latencies = visit_to_listed().await;
    println!(
        "  visit -> offer listed: p50 {:.0} ms, p99 {:.0} ms over {} visits (target p99 <= 5 s; batching windows 1 s)",
        millis(percentile(&latencies, 0.50)),
        millis(percentile(&latencies, 0.99)),
        latencies.len()
    );
}
