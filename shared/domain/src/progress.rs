//! Frequency challenge progress, pure: which goal a transaction meets on a
//! challenge, and whether that completes it (contract section 8).
//!
//! - Goals are met in natural name order: `visit2` before `visit10` (digit
//!   runs compare as numbers), the order a person reading the names expects.
//! - A transaction meets the first goal not yet met whose condition it
//!   satisfies, and at most one goal of a challenge.
//! - A transaction counts once per challenge: its key
//!   ([`counted_key`]) is recorded with the goal it met.

use crate::challenge::{Challenge, Goal};
use crate::offer::PersonalizedOffer;
use crate::transaction::Transaction;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Namespace of the keys under which counted transactions are recorded.
const COUNTED_NAMESPACE: Uuid = Uuid::from_u128(0x3b9c_51e2_7a4d_4c11_8f06_d2e4_a915_c7b3);

/// The condition a goal's `total_cost` sets: the transaction's `totalCost`
/// must be at least this number.
pub const TOTAL_COST_CONDITION: &str = "total_cost";

/// What a transaction does to one challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// It meets `goal`; `completes` when that is the last goal not yet met.
    Meet { goal: String, completes: bool },
    /// It was counted already (it met `goal`): nothing to do.
    AlreadyCounted { goal: String },
    /// Every goal is met already.
    AlreadyCompleted,
    /// No goal left that its conditions allow.
    NoGoalMet,
}

/// The key under which a transaction is recorded as counted on a challenge:
/// a UUID v5 of its id (short and of fixed size, whatever the id's length).
pub fn counted_key(transaction_id: &str) -> String {
    Uuid::new_v5(&COUNTED_NAMESPACE, transaction_id.as_bytes()).to_string()
}

/// Whether the offer can be advanced by a transaction made at `at`: started,
/// not expired, not revoked (a revoked offer never progresses, whenever the
/// transaction happened: support took it away).
pub fn active_at(offer: &PersonalizedOffer, at: DateTime<Utc>) -> bool {
    offer.revoked_at.is_none() && offer.start_date <= at && at < offer.expiry_date
}

/// What `transaction` does to `challenge`.
pub fn next_step(challenge: &Challenge, transaction: &Transaction) -> Step {
    if let Some(goal) = challenge
        .counted_transactions
        .get(&counted_key(&transaction.transaction_id))
    {
        return Step::AlreadyCounted { goal: goal.clone() };
    }
    // A goal names the transaction but the counted map does not: never
    // written so, but the goal is the truth.
    if let Some((goal, _)) = challenge
        .goals
        .iter()
        .find(|(_, goal)| goal.transaction_id.as_deref() == Some(&transaction.transaction_id))
    {
        return Step::AlreadyCounted { goal: goal.clone() };
    }
    let unmet: Vec<&str> = goal_order(&challenge.goals)
        .into_iter()
        .filter(|name| {
            challenge
                .goals
                .get(*name)
                .is_some_and(|goal| !goal.is_met())
        })
        .collect();
    if unmet.is_empty() || challenge.completed_at.is_some() {
        return Step::AlreadyCompleted;
    }
    match unmet.iter().find(|name| {
        challenge
            .goals
            .get(**name)
            .is_some_and(|goal| satisfies(&goal.condition, transaction))
    }) {
        Some(goal) => Step::Meet {
            goal: (*goal).to_owned(),
            completes: unmet.len() == 1,
        },
        None => Step::NoGoalMet,
    }
}

/// Goal names in natural order: `visit1`, `visit2`, `visit10`.
pub fn goal_order(goals: &BTreeMap<String, Goal>) -> Vec<&str> {
    let mut names: Vec<&str> = goals.keys().map(String::as_str).collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    names
}

/// Compares names with their digit runs as numbers (`visit2` < `visit10`);
/// names equal that way (`v01`, `v1`) fall back to plain text order, so the
/// order is total.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut left, mut right) = (a, b);
    loop {
        match (left.chars().next(), right.chars().next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (digits_l, rest_l) = split_digits(left);
                let (digits_r, rest_r) = split_digits(right);
                let (l, r) = (
                    digits_l.trim_start_matches('0'),
                    digits_r.trim_start_matches('0'),
                );
                let order = l.len().cmp(&r.len()).then_with(|| l.cmp(r));
                if order != Ordering::Equal {
                    return order;
                }
                (left, right) = (rest_l, rest_r);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (left, right) = (&left[x.len_utf8()..], &right[y.len_utf8()..]);
            }
        }
    }
}

fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Whether the transaction satisfies every condition of a goal. Known:
/// `total_cost` (a number, or a string holding one: `totalCost` must be at
/// least it). A condition this system does not know, or a `total_cost` that
/// is not a number, is never satisfied: a reward is not granted on a rule
/// nobody checked.
pub fn satisfies(condition: &Map<String, Value>, transaction: &Transaction) -> bool {
    condition.iter().all(|(name, value)| match name.as_str() {
        TOTAL_COST_CONDITION => {
            number_of(value).is_some_and(|minimum| transaction.total_cost >= minimum)
        }
        _ => false,
    })
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|number| number.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::{parse_challenge_status, ChallengeType};
    use crate::dates::parse_timestamp;
    use crate::ids::UserId;
    use proptest::prelude::*;
    use serde_json::json;

    fn challenge(goals: Value) -> Challenge {
        let status = json!({"reward": {"value": "100"}, "goals": goals}).to_string();
        let parsed = parse_challenge_status(&status).expect("valid");
        Challenge::new(ChallengeType::Frequency, None, parsed)
    }

    fn transaction(id: &str, cost: f64) -> Transaction {
        Transaction {
            transaction_id: id.into(),
            user_id: UserId::try_from("u").expect("a user id"),
            total_cost: cost,
            occurred_at: parse_timestamp("2024-05-01T00:00:00Z").unwrap_or_default(),
            store_id: None,
            service_mode: None,
        }
    }

    /// Applies a step as the store's write does.
    fn apply(challenge: &mut Challenge, transaction: &Transaction) -> Step {
        let step = next_step(challenge, transaction);
        if let Step::Meet { goal, completes } = &step {
            if let Some(met) = challenge.goals.get_mut(goal) {
                met.met_at = Some(transaction.occurred_at);
                met.transaction_id = Some(transaction.transaction_id.clone());
            }
            challenge
                .counted_transactions
                .insert(counted_key(&transaction.transaction_id), goal.clone());
            if *completes {
                challenge.completed_at = Some(transaction.occurred_at);
            }
        }
        step
    }

    fn two_visits() -> Challenge {
        challenge(json!({"visit1": {"condition": {"total_cost": "1"}},
                         "visit2": {"condition": {"total_cost": "1"}}}))
    }

    #[test]
    fn two_visits_complete_the_challenge_and_a_third_changes_nothing() {
        let mut challenge = two_visits();
        assert_eq!(
            apply(&mut challenge, &transaction("t1", 5.0)),
            Step::Meet {
                goal: "visit1".into(),
                completes: false
            }
        );
        assert_eq!(
            apply(&mut challenge, &transaction("t1", 5.0)),
            Step::AlreadyCounted {
                goal: "visit1".into()
            },
            "the same transaction again counts once"
        );
        assert_eq!(
            apply(&mut challenge, &transaction("t2", 1.0)),
            Step::Meet {
                goal: "visit2".into(),
                completes: true
            }
        );
        assert_eq!(
            apply(&mut challenge, &transaction("t3", 9.0)),
            Step::AlreadyCompleted
        );
        assert_eq!(challenge.met_count(), 2);
    }

    #[test]
    fn a_transaction_below_every_condition_meets_nothing() {
        let challenge = two_visits();
        assert_eq!(
            next_step(&challenge, &transaction("t", 0.99)),
            Step::NoGoalMet
        );
    }

    #[test]
    fn the_first_unmet_goal_whose_condition_holds_is_met() {
        let challenge = challenge(json!({
            "visit1": {"condition": {"total_cost": 20}},
            "visit2": {"condition": {"total_cost": 5}},
            "visit10": {"condition": {"total_cost": 1}},
            "bonus": {"condition": {"store": "s-1"}},
        }));
        assert_eq!(
            next_step(&challenge, &transaction("t", 6.0)),
            Step::Meet {
                goal: "visit2".into(),
                completes: false
            }
        );
        assert_eq!(
            next_step(&challenge, &transaction("t", 1.0)),
            Step::Meet {
                goal: "visit10".into(),
                completes: false
            }
        );
    }

    #[test]
    fn natural_order_puts_visit2_before_visit10() {
        let goals = challenge(
            json!({"visit10": {"condition": {}}, "visit2": {"condition": {}},
                                     "visit1": {"condition": {}}, "a": {"condition": {}}}),
        )
        .goals;
        assert_eq!(goal_order(&goals), vec!["a", "visit1", "visit2", "visit10"]);
        assert_eq!(natural_cmp("v01", "v1"), Ordering::Less);
        assert_eq!(natural_cmp("v1", "v01"), Ordering::Greater);
        assert_eq!(natural_cmp("v1", "v1"), Ordering::Equal);
    }

    #[test]
    fn unknown_or_broken_conditions_are_never_satisfied() {
        let t = transaction("t", 100.0);
        assert!(!satisfies(
            &json!({"store": "x"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            &t
        ));
        assert!(!satisfies(
            &json!({"total_cost": "lots"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            &t
        ));
        assert!(satisfies(&Map::new(), &t), "no condition: any visit");
    }

    proptest! {
        /// Whatever the goals and transactions, in whatever order and with
        /// repeats: a transaction meets at most one goal, goals met only
        /// grow, completion comes with the last goal and only then.
        #[test]
        fn progress_is_monotonic_and_counts_each_transaction_once(
            minimums in prop::collection::vec(0u8..10, 1..8),
            transactions in prop::collection::vec((0u8..6, 0u8..12), 0..30),
        ) {
            let goals: Map<String, Value> = minimums
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("visit{}", i + 1), json!({"condition": {"total_cost": m}})))
                .collect();
            let mut challenge = challenge(Value::Object(goals));
            let mut met_by: BTreeMap<String, String> = BTreeMap::new();
            for (id, cost) in transactions {
                let t = transaction(&format!("t{id}"), f64::from(cost));
                let before = challenge.met_count();
                let step = apply(&mut challenge, &t);
                match step {
                    Step::Meet { goal, completes } => {
                        prop_assert!(met_by.insert(t.transaction_id.clone(), goal).is_none());
                        prop_assert_eq!(challenge.met_count(), before + 1);
                        prop_assert_eq!(completes, challenge.met_count() == challenge.goals.len());
                    }
                    _ => prop_assert_eq!(challenge.met_count(), before),
                }
                prop_assert_eq!(
                    challenge.completed_at.is_some(),
                    challenge.met_count() == challenge.goals.len()
                );
            }
            prop_assert_eq!(challenge.counted_transactions.len(), challenge.met_count());
        }

        #[test]
        fn natural_order_is_a_total_order(a in "[a-c0-9]{0,6}", b in "[a-c0-9]{0,6}", c in "[a-c0-9]{0,6}") {
            prop_assert_eq!(natural_cmp(&a, &b), natural_cmp(&b, &a).reverse());
            prop_assert_eq!(natural_cmp(&a, &b) == Ordering::Equal, a == b);
            if natural_cmp(&a, &b) != Ordering::Greater && natural_cmp(&b, &c) != Ordering::Greater {
                prop_assert_ne!(natural_cmp(&a, &c), Ordering::Greater);
            }
        }
    }
}
