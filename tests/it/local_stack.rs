//! The local stack end to end, as a newcomer runs it: the `local-stack`
//! binary started on free ports, 500 rows assigned with the `offers` CLI
//! (some invalid), the dispatcher fed by the real stream, offers fetched over
//! HTTP as their owners, a challenge completed by two orders written with
//! `offers transactions add`, and nothing left running after Ctrl-C. The
//! dispatcher's mapping runs with the template's ParallelizationFactor (10).

use offers_integration_tests::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const USERS: usize = 50;
const VALID_PER_USER: usize = 9;
const UNKNOWN_OFFER_ROWS: usize = 25;
const INVALID_DATE_ROWS: usize = 25;

fn alive(pid: u32) -> bool {
    // A zombie has exited; it only waits for its parent to read its status.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .split(") ")
                .nth(1)
                .is_some_and(|rest| rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

fn rows_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut lines = Vec::new();
    let expiry = future_date(30);
    for user in 0..USERS {
        for n in 0..VALID_PER_USER {
            let (offer, rules) = if n % 2 == 0 {
                ("co-fries", json!({"minimumSpend": n + 1}))
            } else {
                ("co-coffee", json!({}))
            };
            lines.push(json!({"userId": format!("stack-user-{user}"), "sortKey": format!("camp-{n}+{offer}"),
                "offerId": offer, "campaignId": format!("camp-{n}"), "startDate": "2026-01-01T00:00:00Z",
                "expiryDate": expiry, "rank": n, "rules": rules, "ttl": future_epoch(60)}));
        }
    }
    // The dispatcher rejects these: the catalog has no such config offer.
    for n in 0..UNKNOWN_OFFER_ROWS {
        lines.push(
            json!({"userId": format!("stack-user-{n}"), "sortKey": format!("camp-x+co-missing-{n}"),
            "offerId": "co-missing", "startDate": "2026-01-01T00:00:00Z", "expiryDate": expiry}),
        );
    }
    // The CLI refuses these before writing: the expiry is before the start.
    for n in 0..INVALID_DATE_ROWS {
        lines.push(json!({"userId": format!("stack-user-{n}"), "sortKey": format!("camp-y+co-coffee-{n}"),
            "offerId": "co-coffee", "startDate": "2026-06-01T00:00:00Z", "expiryDate": "2026-01-01T00:00:00Z"}));
    }
    assert_eq!(lines.len(), 500);
    let path = dir.join("rows.jsonl");
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&path, text.join("\n") + "\n").expect("rows file");
    path
}

/// How long the test waits at most for what the stack does in the
/// background (dispatch, challenge progress): a bound on a completion wait,
/// not a timed assertion. On a busy machine the debug binaries and DynamoDB
/// Local are slow, and the SDK's attempt timeouts make the mapping retry.
const SETTLE: Duration = Duration::from_secs(600);

/// Asks `check` every `every` until it gives a value; panics with its last
/// answer once [`SETTLE`] has passed.
fn wait_for<T>(every: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if started.elapsed() >= SETTLE => {
                panic!("not done after {SETTLE:?}: {last}")
            }
            Err(_) => std::thread::sleep(every),
        }
    }
}

fn count(status: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(status, |value, key| &value[*key])
        .as_u64()
        .unwrap_or(u64::MAX)
}

#[test]
fn the_local_stack_dispatches_assigned_rows_and_serves_them_over_http() {
    let _turn = HEAVY_TESTS.blocking_lock();
    let dir = std::env::temp_dir().join(format!("offers-stack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let stack = LocalStack::start(&dir.join("data"));
    assert!(
        stack.pids.len() >= 4,
        "DynamoDB Local and the functions: {:?}",
        stack.banner
    );
    // The dispatcher's mapping delivers batches as the template's default
    // ParallelizationFactor has it: what follows is exactly once with 10
    // batches per shard at once.
    assert!(
        stack
            .banner
            .iter()
            .any(|line| line.contains("OfferDispatcherFunction x10")),
        "{:?}",
        stack.banner
    );

    // Without --skip-invalid, one bad row stops the whole file.
    let rows = rows_file(&dir);
    let rows = rows.to_string_lossy();
    let (code, output) = stack.offers(&["assign", &rows]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("invalid_dates"), "{output}");
    let (code, assigned) = stack.offers(&["assign", &rows, "--skip-invalid"]);
    assert_eq!(code, 0, "{assigned}");

    // The stream mapping dispatches everything written: none stays pending.
    let status = wait_for(Duration::from_millis(500), || {
        let (code, output) = stack.offers(&["status", "--json"]);
        assert_eq!(code, 0, "{output}");
        let status: Value = serde_json::from_str(&output).unwrap_or(Value::Null);
        let done = count(&status, &["pendingRows"]) == 0
            && count(&status, &["rejectedRows", "total"]) == UNKNOWN_OFFER_ROWS as u64;
        done.then_some(status)
            .ok_or_else(|| format!("still pending: {output}; the assignment: {assigned}"))
    });
    assert_eq!(
        count(&status, &["offers", "bySource", "campaign"]),
        (USERS * VALID_PER_USER) as u64,
        "{status}"
    );
    assert_eq!(
        count(&status, &["rejectedRows", "byReason", "unknown_offer"]),
        UNKNOWN_OFFER_ROWS as u64
    );
    assert_eq!(count(&status, &["failures", "records"]), 0, "{status}");

    // Every owner sees their offers over HTTP, in rank order; nobody else does.
    for user in [0, 17, 49] {
        let owner = format!("stack-user-{user}");
        let (status, body) = stack.get("/rewards/offers?limit=100", &owner);
        assert_eq!(status, 200, "{body}");
        let offers = body["offers"].as_array().cloned().unwrap_or_default();
        assert_eq!(offers.len(), VALID_PER_USER, "{body}");
        let ranks: Vec<i64> = offers.iter().filter_map(|o| o["rank"].as_i64()).collect();
        assert_eq!(ranks, (0..VALID_PER_USER as i64).collect::<Vec<_>>());
        let url = offers[0]["url"].as_str().unwrap_or_default().to_owned();
        let (status, offer) = stack.get(&url, &owner);
        assert_eq!((status, offer["status"].as_str()), (200, Some("active")));
        let (status, _) = stack.get(&url, "someone-else");
        assert_eq!(status, 404);
    }
    assert_eq!(
        stack.get("/rewards/offers", "").0,
        401,
        "no identity: the authorizer's 401"
    );

    // A marketing platform's signed webhook (moto's Secrets Manager holds the
    // local secret), sent twice: one offer per valid assignment.
    let body_file = offers_local::workspace_root().join("events/webhook-body.json");
    let body = std::fs::read(&body_file).expect("sample body");
    let (code, headers) =
        stack.offers(&["webhook", "sign", &body_file.to_string_lossy(), "--headers"]);
    assert_eq!(code, 0, "{headers}");
    let headers: Vec<String> = headers
        .lines()
        .map(str::to_owned)
        .chain(["Content-Type: application/json".to_owned()])
        .collect();
    let (status, first) = stack.post("/campaigns/webhook", &headers, &body);
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["accepted"], 2);
    let (status, again) = stack.post("/campaigns/webhook", &headers, &body);
    assert_eq!((status, &again), (202, &first));
    let (status, unsigned) = stack.post("/campaigns/webhook", &headers[1..], &body);
    assert_eq!(
        (status, unsigned["error"]["code"].as_str()),
        (401, Some("missing_signature"))
    );
    wait_for(Duration::from_millis(300), || {
        let (status, body) = stack.get("/rewards/offers", SEED_USER);
        assert_eq!(status, 200, "{body}");
        let offers = body["offers"].as_array().map(Vec::len).unwrap_or_default();
        assert!(offers <= 2, "{body}");
        (offers == 2).then_some(()).ok_or_else(|| body.to_string())
    });

    // The activity function behind the same API: a redemption uses up the
    // owner's fries offer (limit 1), which leaves the list; an event; a void
    // gives the use back.
    let owner = "stack-user-0";
    let (_, list) = stack.get("/rewards/offers?limit=100", owner);
    let fries = list["offers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|offer| offer["offerId"] == "co-fries")
        .and_then(|offer| offer["url"].as_str())
        .expect("a fries offer")
        .to_owned();
    let order = json!({"orderId": "stack-order-1", "totalCost": 20, "serviceMode": "pickup"});
    let (status, redeemed) =
        stack.request("POST", &format!("{fries}/redemptions"), owner, Some(&order));
    assert_eq!(status, 201, "{redeemed}");
    assert_eq!(redeemed["offer"]["status"], "redeemed");
    let (_, list) = stack.get("/rewards/offers?limit=100", owner);
    assert_eq!(
        list["offers"].as_array().map(Vec::len),
        Some(VALID_PER_USER - 1)
    );
    let event = json!({"eventId": uuid::Uuid::new_v4(), "type": "viewed"});
    let (status, _) = stack.request("POST", &format!("{fries}/events"), owner, Some(&event));
    assert_eq!(status, 202);
    let (status, voided) = stack.request(
        "DELETE",
        &format!("{fries}/redemptions/stack-order-1"),
        owner,
        None,
    );
    assert_eq!(status, 200, "{voided}");
    assert_eq!(voided["offer"]["status"], "active");
    // The README's challenge walk-through: a two-visit challenge assigned,
    // two orders written with the CLI, the challenge completed over HTTP.
    let challenge = dir.join("challenge.jsonl");
    let mut row = seed_challenge_row(&future_date(30));
    row["userId"] = json!("stack-visitor");
    std::fs::write(&challenge, format!("{row}\n")).expect("challenge row");
    let (code, output) = stack.offers(&["assign", &challenge.to_string_lossy()]);
    assert_eq!(code, 0, "{output}");
    for (id, cost) in [("stack-order-1", "12.50"), ("stack-order-2", "4.20")] {
        let (code, output) = stack.offers(&[
            "transactions",
            "add",
            "--user",
            "stack-visitor",
            "--total-cost",
            cost,
            "--id",
            id,
        ]);
        assert_eq!(code, 0, "{output}");
    }
    let completed = wait_for(Duration::from_millis(500), || {
        let (status, body) = stack.get("/rewards/offers", "stack-visitor");
        assert_eq!(status, 200, "{body}");
        let challenge = body["offers"][0]["challenge"].clone();
        if challenge["completedAt"].is_string() {
            Ok(challenge)
        } else {
            Err(format!("not completed: {body}"))
        }
    });
    assert_eq!(completed["progress"], json!({"met": 2, "total": 2}));
    assert_eq!(
        completed["goals"]["visit2"]["transactionId"],
        "stack-order-2"
    );
    assert!(completed["reward"]["grantedAt"].is_string(), "{completed}");
    // The same two orders in the visitor's behaviour profile (UserVisitsFunction
    // on the same stream), read by a support agent.
    let profile = wait_for(Duration::from_millis(500), || {
        let (status, body) =
            stack.get_as("/support/users/stack-visitor/profile", "agent-1", "support");
        assert!([200, 404].contains(&status), "{status} {body}");
        if status == 200 && body["visits"] == 2 {
            Ok(body)
        } else {
            Err(format!("not counted: {body}"))
        }
    });
    assert_eq!(profile["spend"], "<10", "(12.50 + 4.20) / 2");
    assert_eq!(profile["visits30"], "2-3");

    // The README's budget walk-through: three rows of a campaign that may
    // make two offers, assigned with the CLI: two offers, one rejection
    // budget_exhausted, the budget's use in the list and the report.
    let limited = dir.join("limited.json");
    std::fs::write(
        &limited,
        json!({"campaignId": "camp-limited", "mode": "manual", "budget": {"offers": 2}})
            .to_string(),
    )
    .expect("campaign file");
    let (code, output) = stack.offers(&["campaign", "put", &limited.to_string_lossy()]);
    assert_eq!(code, 0, "{output}");
    let rows: Vec<String> = ["user-4", "user-5", "user-6"]
        .iter()
        .map(|user| {
            json!({"userId": user, "sortKey": "camp-limited+co-coffee", "offerId": "co-coffee",
                   "campaignId": "camp-limited", "startDate": "2026-01-01T00:00:00Z",
                   "expiryDate": "2030-01-01T00:00:00Z"})
            .to_string()
        })
        .collect();
    let limited_rows = dir.join("limited.jsonl");
    std::fs::write(&limited_rows, rows.join("\n") + "\n").expect("rows file");
    let (code, output) = stack.offers(&["assign", &limited_rows.to_string_lossy()]);
    assert_eq!(code, 0, "{output}");
    let rejected = wait_for(Duration::from_millis(500), || {
        let (code, output) = stack.offers(&["rejections", "list", "--reason", "budget_exhausted"]);
        assert_eq!(code, 0, "{output}");
        output
            .contains("camp-limited has used its offers budget (2 of 2)")
            .then_some(output.clone())
            .ok_or(output)
    });
    assert!(!rejected.contains("co-missing"), "{rejected}");
    let (code, output) = stack.offers(&["campaign", "list", "--json"]);
    assert_eq!(code, 0, "{output}");
    let campaigns: Value = serde_json::from_str(&output).expect("JSON");
    let limited = campaigns
        .as_array()
        .into_iter()
        .flatten()
        .find(|campaign| campaign["campaignId"] == "camp-limited")
        .expect("listed");
    assert_eq!(
        limited["budget"],
        json!({"offers": {"limit": 2, "used": 2}})
    );
    let (code, output) = stack.offers(&["report", "camp-limited"]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("budget offers: 2 of 2 used (100%)"),
        "{output}"
    );

    // The README's always-on walk-through: the sample campaign put, three
    // orders of a regular, one offer of it in the app's list (one window),
    // the profile through the support API.
    let campaign = offers_local::workspace_root().join("events/sample-always-on.json");
    let (code, output) = stack.offers(&["campaign", "put", &campaign.to_string_lossy()]);
    assert_eq!(code, 0, "{output}");
    for (cost, mode) in [
        ("12.50", "pickup"),
        ("8.00", "pickup"),
        ("14.00", "delivery"),
    ] {
        let (code, output) = stack.offers(&[
            "transactions",
            "add",
            "--user",
            "stack-regular",
            "--total-cost",
            cost,
            "--service-mode",
            mode,
        ]);
        assert_eq!(code, 0, "{output}");
    }
    let profile = wait_for(Duration::from_millis(500), || {
        let (status, body) =
            stack.get_as("/support/users/stack-regular/profile", "agent-1", "support");
        if status == 200 && body["visits"] == 3 {
            Ok(body)
        } else {
            Err(format!("not counted: {status} {body}"))
        }
    });
    assert_eq!(profile["mode"], "pickup");
    assert_eq!(profile["spend"], "10-25");
    let offers = wait_for(Duration::from_millis(500), || {
        let (status, body) = stack.get("/rewards/offers", "stack-regular");
        assert_eq!(status, 200, "{body}");
        let offers = body["offers"].as_array().cloned().unwrap_or_default();
        if offers.is_empty() {
            Err(format!("no always-on offer: {body}"))
        } else {
            Ok(offers)
        }
    });
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0]["campaignId"], "always-welcome-back");
    assert!(["co-fries", "co-coffee"].contains(&offers[0]["offerId"].as_str().unwrap_or_default()));

    // The README's distributed plan: the sample audience PUT into moto's
    // plan bucket as `curl -T` does, the plan started from S3 and followed
    // by the CLI through the Step Functions stand-in to its summary; the
    // dispatcher makes the rows into offers. Run again: the same rows.
    let root = offers_local::workspace_root();
    let audience = std::fs::read(root.join("events/sample-audience.jsonl")).expect("audience");
    let status = stack.put_object(
        "offers-local-plans",
        "audiences/sample-audience.jsonl",
        &audience,
    );
    assert_eq!(status, 200);
    let plan = root.join("events/sample-distributed-plan.json");
    let plan_args = [
        "campaign",
        "plan",
        &plan.to_string_lossy(),
        "--audience",
        "s3://offers-local-plans/audiences/sample-audience.jsonl",
        "--allow-cold",
    ];
    for run in ["first", "again"] {
        let (code, output) = stack.offers(&plan_args);
        assert_eq!(code, 0, "{run}: {output}");
        assert!(output.contains("execution arn:aws:states:"), "{output}");
        assert!(
            output.contains("5 users in 1 chunks, 10 rows written"),
            "{run}: {output}"
        );
    }
    // Every user of the sample audience (the last one a Cognito identity id).
    let users: Vec<String> = String::from_utf8_lossy(&audience)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|row| row["userId"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(users.len(), 5, "{users:?}");
    for user in &users {
        let offers = wait_for(Duration::from_millis(500), || {
            let (status, body) = stack.get("/rewards/offers?limit=100", user);
            assert_eq!(status, 200, "{body}");
            let planned: Vec<Value> = body["offers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|offer| offer["campaignId"] == "sample-distributed")
                .cloned()
                .collect();
            assert!(planned.len() <= 2, "{user}: {body}");
            (planned.len() == 2)
                .then_some(planned)
                .ok_or_else(|| format!("{user}: {body}"))
        });
        assert_ne!(offers[0]["offerId"], offers[1]["offerId"], "{offers:?}");
    }

    // Ctrl-C stops the stack and everything it started.
    let mut stack = stack;
    let pids = stack.pids.clone();
    let status = stack.interrupt().expect("the stack stops within 300 s");
    assert!(status.success(), "{status}");
    std::thread::sleep(Duration::from_millis(500));
    let left: Vec<u32> = pids.into_iter().filter(|pid| alive(*pid)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
