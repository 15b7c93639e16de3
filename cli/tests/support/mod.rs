//! What the CLI's test binaries share: running `offers`, files of a test
//! run's own, the sample selection plan, an audience and the learning
//! counters the statistics function keeps. Each binary uses a part.
#![allow(dead_code)]

use offers_integration_tests::{future_date, TestBed, STATS};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A command's exit code, stdout and stderr.
pub fn run(mut command: Command) -> (i32, String, String) {
    let output = command.output().expect("the command runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A file of this test run's own.
pub fn write_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offers-cli-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// A selection plan of the sample catalog's offers, `extra` fields over it.
pub fn campaign_plan(extra: Value) -> Value {
    let mut plan = json!({
        "campaignId": "camp-sel",
        "pool": [
            {"offerId": "co-fries", "rules": {"minimumSpend": 4}},
            {"offerId": "co-coffee"},
            {"offerId": "290fb746-9850-4994-b7d7-5630046792e1"}
        ],
        "slots": 2,
        "startDate": "2024-01-01T00:00:00Z",
        "expiryDate": future_date(30),
        "holdout": 0.25,
        "seed": 5
    });
    if let (Value::Object(plan), Value::Object(extra)) = (&mut plan, extra) {
        plan.extend(extra);
    }
    plan
}

/// `users` users of two tiers and three regions, as JSON Lines.
pub fn audience(users: usize) -> String {
    (0..users)
        .map(|i| {
            let tier = ["gold", "silver"][i % 2];
            format!(
                "{{\"userId\":\"user-{i}\",\"tier\":\"{tier}\",\"region\":\"r{}\"}}\n",
                i % 3
            )
        })
        .collect()
}

/// Gold users redeem coffee: the learning counters the statistics function keeps.
pub async fn put_learning_counters(bed: &TestBed) {
    for (offer, assigned, redeemed, gold) in [
        ("co-fries", 400, 8, 2),
        ("co-coffee", 400, 20, 18),
        ("290fb746-9850-4994-b7d7-5630046792e1", 400, 4, 1),
    ] {
        bed.put(
            STATS,
            json!({"pk": format!("offer#{offer}"), "sk": "overall", "offerId": offer,
            "assigned": assigned, "clicked": 0, "redeemed": redeemed}),
        )
        .await;
        bed.put(
            STATS,
            json!({"pk": format!("offer#{offer}"), "sk": "attr#tier#gold", "offerId": offer,
            "attribute": "tier", "value": "gold", "assigned": 200, "clicked": 0, "redeemed": gold}),
        )
        .await;
    }
}
