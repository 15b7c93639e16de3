//! Frequency challenges: "visit N times" goals, each with conditions, and a reward.

use crate::dates::rfc3339;
use crate::limits::{
    map_problem, quote, MAX_CHALLENGE_STATUS_BYTES, MAX_DOCUMENT_DEPTH, MAX_NAME_BYTES,
};
use crate::rejection::{ReasonCode, Rejection};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The most goals a challenge may have: keeps items far below DynamoDB's 400 KB.
pub const MAX_GOALS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChallengeType {
    Frequency,
}

/// One goal: the conditions a visit must meet to count, and, once a
/// transaction met it, when and which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Goal {
    pub condition: Map<String, Value>,
    /// The `occurredAt` of the transaction that met the goal.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rfc3339::option"
    )]
    pub met_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

impl Goal {
    /// A goal not yet met.
    pub fn new(condition: Map<String, Value>) -> Self {
        Self {
            condition,
            met_at: None,
            transaction_id: None,
        }
    }

    pub fn is_met(&self) -> bool {
        self.met_at.is_some()
    }
}

/// Set in the reward when the challenge is completed (the system's, never authored).
pub const REWARD_GRANTED_AT: &str = "grantedAt";

/// A challenge as stored on the personalized offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    #[serde(rename = "type")]
    pub challenge_type: ChallengeType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The reward object as authored; it always has a `value`.
    pub reward: Map<String, Value>,
    /// Goals by name (`visit1`, `visit2`, ...). Transactions meet them in
    /// natural name order ([`crate::progress::goal_order`]), not this map's.
    pub goals: BTreeMap<String, Goal>,
    /// When the last goal was met (the `occurredAt` of its transaction).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rfc3339::option"
    )]
    pub completed_at: Option<DateTime<Utc>>,
    /// The transactions counted on this challenge: the key of each
    /// ([`crate::progress::counted_key`]) to the goal it met. At most one
    /// per goal, so bounded by [`MAX_GOALS`]; the write that meets a goal is
    /// conditioned on its transaction's key being absent (exactly once).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counted_transactions: BTreeMap<String, String>,
}

impl Challenge {
    /// A challenge as authored: no goal met yet.
    pub fn new(
        challenge_type: ChallengeType,
        task_id: Option<String>,
        ChallengeStatus { reward, goals }: ChallengeStatus,
    ) -> Self {
        Self {
            challenge_type,
            task_id,
            reward,
            goals,
            completed_at: None,
            counted_transactions: BTreeMap::new(),
        }
    }

    /// When the reward was granted (set with `completedAt`), if it was.
    pub fn reward_granted_at(&self) -> Option<&str> {
        self.reward.get(REWARD_GRANTED_AT).and_then(Value::as_str)
    }

    /// How many goals are met.
    pub fn met_count(&self) -> usize {
        self.goals.values().filter(|goal| goal.is_met()).count()
    }
}

/// The challenge attributes of a pending row, as raw text.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChallengeFields<'a> {
    pub challenge_type: Option<&'a str>,
    pub challenge_status: Option<&'a str>,
    pub frequency: Option<&'a str>,
    pub task_id: Option<&'a str>,
}

impl ChallengeFields<'_> {
    fn is_empty(&self) -> bool {
        self.challenge_type.is_none() && self.challenge_status.is_none() && self.frequency.is_none()
    }
}

/// Validates a row's challenge attributes; `None` when the row has no challenge.
pub fn parse_challenge(
    fields: ChallengeFields<'_>,
    offer_id: &str,
) -> Result<Option<Challenge>, Rejection> {
    if fields.is_empty() {
        return Ok(None);
    }
    let invalid = |message: String| Rejection::new(ReasonCode::InvalidChallenge, message);
    let challenge_type = match fields.challenge_type {
        Some("frequency") => ChallengeType::Frequency,
        Some(other) => {
            return Err(invalid(format!(
                "unknown challengeType {other:?}; known: \"frequency\""
            )))
        }
        None => {
            return Err(invalid(
                "challengeStatus or frequency given without challengeType".into(),
            ))
        }
    };
    let status = fields
        .challenge_status
        .ok_or_else(|| invalid("challengeStatus is required with a challenge".into()))?;
    let status = parse_challenge_status(status)?;

    match fields.frequency {
        None => {
            return Err(invalid(
                "frequency is required with a frequency challenge".into(),
            ))
        }
        Some(frequency) if frequency != offer_id => {
            return Err(Rejection::new(
                ReasonCode::FrequencyMismatch,
                format!(
                    "frequency {} does not equal offerId {}",
                    quote(frequency),
                    quote(offer_id)
                ),
            ))
        }
        Some(_) => {}
    }

    Ok(Some(Challenge::new(
        challenge_type,
        fields.task_id.map(str::to_owned),
        status,
    )))
}

/// The parts of a `challengeStatus` document.
#[derive(Debug, Clone, PartialEq)]
pub struct ChallengeStatus {
    pub reward: Map<String, Value>,
    pub goals: BTreeMap<String, Goal>,
}

/// Parses the `challengeStatus` JSON string: `{"reward": {"value": ..}, "goals": {name: {"condition": {..}}}}`.
pub fn parse_challenge_status(status: &str) -> Result<ChallengeStatus, Rejection> {
    let invalid = |message: String| Rejection::new(ReasonCode::InvalidChallenge, message);
    if status.len() > MAX_CHALLENGE_STATUS_BYTES {
        return Err(invalid(format!(
            "challengeStatus is {} bytes; at most {MAX_CHALLENGE_STATUS_BYTES}",
            status.len()
        )));
    }
    let document: Value = serde_json::from_str(status)
        .map_err(|err| invalid(format!("challengeStatus is not valid JSON: {err}")))?;
    let Value::Object(mut document) = document else {
        return Err(invalid("challengeStatus must be a JSON object".into()));
    };

    let reward = match document.remove("reward") {
        Some(Value::Object(reward)) => reward,
        Some(_) => return Err(invalid("challengeStatus.reward must be an object".into())),
        None => return Err(invalid("challengeStatus.reward is required".into())),
    };
    if let Some(problem) = map_problem(&reward, MAX_DOCUMENT_DEPTH - 1) {
        return Err(invalid(format!("challengeStatus.reward {problem}")));
    }
    if reward.contains_key(REWARD_GRANTED_AT) {
        return Err(invalid(format!(
            "challengeStatus.reward.{REWARD_GRANTED_AT} is set by the system when the challenge is completed"
        )));
    }
    match reward.get("value") {
        Some(Value::String(text)) if !text.trim().is_empty() => {}
        Some(Value::Number(_)) => {}
        _ => {
            return Err(invalid(
                "challengeStatus.reward.value must be a non-empty string or a number".into(),
            ))
        }
    }

    let goals = match document.remove("goals") {
        Some(Value::Object(goals)) => goals,
        Some(_) => return Err(invalid("challengeStatus.goals must be an object".into())),
        None => return Err(invalid("challengeStatus.goals is required".into())),
    };
    if goals.is_empty() {
        return Err(invalid("challengeStatus.goals has no goal".into()));
    }
    if goals.len() > MAX_GOALS {
        return Err(invalid(format!(
            "challengeStatus.goals has {} goals; at most {MAX_GOALS}",
            goals.len()
        )));
    }
    let mut parsed = BTreeMap::new();
    for (name, goal) in goals {
        if name.trim().is_empty() {
            return Err(invalid(
                "challengeStatus.goals has a goal without a name".into(),
            ));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(invalid(format!(
                "goal name {} is longer than {MAX_NAME_BYTES} bytes",
                quote(&name)
            )));
        }
        let condition = match goal {
            Value::Object(mut goal) => match goal.remove("condition") {
                Some(Value::Object(condition)) => condition,
                _ => {
                    return Err(invalid(format!(
                        "goal {} needs a condition object",
                        quote(&name)
                    )))
                }
            },
            _ => return Err(invalid(format!("goal {} must be an object", quote(&name)))),
        };
        if let Some(problem) = map_problem(&condition, MAX_DOCUMENT_DEPTH - 1) {
            return Err(invalid(format!(
                "the condition of goal {} {problem}",
                quote(&name)
            )));
        }
        parsed.insert(name, Goal::new(condition));
    }
    Ok(ChallengeStatus {
        reward,
        goals: parsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_STATUS: &str = "{\"reward\": {\"value\": \"100\"},\"goals\": {\"visit1\": {\"condition\": {\"total_cost\": \"1\"}},\"visit2\": {\"condition\": {\"total_cost\": \"1\"}}}}";
    const OFFER: &str = "290fb746-9850-4994-b7d7-5630046792e1";

    fn fields(
        status: Option<&'static str>,
        frequency: Option<&'static str>,
    ) -> ChallengeFields<'static> {
        ChallengeFields {
            challenge_type: Some("frequency"),
            challenge_status: status,
            frequency,
            task_id: Some("task-1"),
        }
    }

    #[test]
    fn seed_challenge_becomes_structured() {
        let challenge = parse_challenge(fields(Some(SEED_STATUS), Some(OFFER)), OFFER)
            .expect("valid")
            .expect("has a challenge");
        assert_eq!(challenge.goals.len(), 2);
        assert_eq!(challenge.goals["visit1"].condition["total_cost"], "1");
        assert_eq!(challenge.reward["value"], "100");
        assert_eq!(challenge.task_id.as_deref(), Some("task-1"));
    }

    #[test]
    fn a_granted_reward_cannot_be_authored() {
        let status = "{\"reward\": {\"value\": \"1\", \"grantedAt\": \"2024-01-01T00:00:00Z\"}, \"goals\": {\"v\": {\"condition\": {}}}}";
        let err = parse_challenge_status(status).unwrap_err();
        assert_eq!(err.code, ReasonCode::InvalidChallenge);
        assert!(err.message.contains("grantedAt"), "{}", err.message);
    }

    #[test]
    fn progress_round_trips_and_is_absent_until_made() {
        let mut challenge = parse_challenge(fields(Some(SEED_STATUS), Some(OFFER)), OFFER)
            .expect("valid")
            .expect("has a challenge");
        let json = serde_json::to_value(&challenge).expect("json");
        assert!(json["goals"]["visit1"].get("metAt").is_none());
        assert!(json.get("completedAt").is_none());
        assert!(json.get("countedTransactions").is_none());
        if let Some(goal) = challenge.goals.get_mut("visit1") {
            goal.met_at = crate::dates::parse_timestamp("2024-05-01T10:00:00+0200");
            goal.transaction_id = Some("t-1".into());
        }
        let json = serde_json::to_value(&challenge).expect("json");
        assert_eq!(json["goals"]["visit1"]["metAt"], "2024-05-01T08:00:00Z");
        assert_eq!(json["goals"]["visit1"]["transactionId"], "t-1");
        let back: Challenge = serde_json::from_value(json).expect("back");
        assert_eq!(back, challenge);
        assert_eq!(back.met_count(), 1);
    }

    #[test]
    fn no_challenge_attributes_means_no_challenge() {
        assert_eq!(parse_challenge(ChallengeFields::default(), OFFER), Ok(None));
    }

    #[test]
    fn frequency_must_equal_offer_id() {
        let err = parse_challenge(fields(Some(SEED_STATUS), Some("other")), OFFER).unwrap_err();
        assert_eq!(err.code, ReasonCode::FrequencyMismatch);
    }

    #[test]
    fn broken_challenges_are_invalid_challenge() {
        let cases: [(ChallengeFields<'static>, &str); 8] = [
            (fields(None, Some(OFFER)), "status missing"),
            (fields(Some("{not json"), Some(OFFER)), "not json"),
            (fields(Some("[]"), Some(OFFER)), "not an object"),
            (
                fields(
                    Some("{\"goals\": {\"v\": {\"condition\": {}}}}"),
                    Some(OFFER),
                ),
                "no reward",
            ),
            (
                fields(
                    Some("{\"reward\": {\"value\": \"1\"}, \"goals\": {}}"),
                    Some(OFFER),
                ),
                "no goals",
            ),
            (
                fields(
                    Some("{\"reward\": {\"value\": \"1\"}, \"goals\": {\"v\": 3}}"),
                    Some(OFFER),
                ),
                "goal not object",
            ),
            (fields(Some(SEED_STATUS), None), "frequency missing"),
            (
                ChallengeFields {
                    challenge_type: Some("streak"),
                    ..fields(Some(SEED_STATUS), Some(OFFER))
                },
                "unknown type",
            ),
        ];
        for (input, case) in cases {
            let err = parse_challenge(input, OFFER).expect_err(case);
            assert_eq!(
                err.code,
                ReasonCode::InvalidChallenge,
                "{case}: {}",
                err.message
            );
        }
    }
}
