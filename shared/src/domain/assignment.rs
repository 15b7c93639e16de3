//! An assignment: one user, one config offer, its dates, rank and rule values.
//! Pending rows (campaign tools) and support requests both become one.

use crate::domain::challenge::{parse_challenge, Challenge, ChallengeFields};
use crate::domain::dates::parse_timestamp;
use crate::domain::rejection::{ReasonCode, Rejection};
use crate::domain::rules::Rules;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Ranks are display positions; this bound keeps them exact and sortable as text.
pub const MAX_ABS_RANK: i64 = 999_999_999;

/// Who asked for the offer.
#[derive(Debug, Clone, PartialEq)]
pub enum AssignmentSource {
    /// A row of the pending table, written by a campaign tool.
    Campaign {
        sort_key: String,
        task_id: Option<String>,
    },
    /// A support agent, through the support tool.
    Support { agent: String, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub user_id: String,
    pub offer_id: String,
    pub template_id: Option<String>,
    pub campaign_id: Option<String>,
    pub start_date: DateTime<Utc>,
    pub expiry_date: DateTime<Utc>,
    pub rank: i64,
    pub rules: Rules,
    pub challenge: Option<Challenge>,
    pub source: AssignmentSource,
}

/// Reads the attributes of a pending row (as plain JSON: S is a string, N a
/// number, M an object, L/SS a list) into an assignment.
///
/// Checks run in a fixed order so that a row gets one stable reason:
/// shape (`invalid_row`), dates (`invalid_dates`, `expired`), then the
/// challenge (`invalid_challenge`, `frequency_mismatch`). Catalog checks
/// come later, in `offer::build_offer`.
pub fn parse_pending_row(
    row: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Assignment, Rejection> {
    let fields = RowFields(row);
    let user_id = fields.required_string("userId")?;
    let sort_key = fields.required_string("sortKey")?;
    let offer_id = fields.required_string("offerId")?;
    let campaign_id = fields.optional_string("campaignId")?;
    let task_id = fields.optional_string("taskId")?;
    let template_id = fields.optional_string("templateId")?;
    let challenge_type = fields.optional_string("challengeType")?;
    let challenge_status = fields.optional_string("challengeStatus")?;
    let frequency = fields.optional_string("frequency")?;
    let start_text = fields.required_string("startDate")?;
    let expiry_text = fields.required_string("expiryDate")?;
    if let Some(ttl) = row.get("ttl") {
        if !ttl.is_number() {
            return Err(invalid_row("ttl must be a number (epoch seconds)"));
        }
    }
    let rank = parse_rank(row.get("rank"))?;
    let rules = match row.get("rules") {
        None | Some(Value::Null) => Rules::new(),
        Some(Value::Object(rules)) => rules.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(_) => return Err(invalid_row("rules must be a map of rule name to value")),
    };

    let (start_date, expiry_date) = parse_validity(Some(start_text), expiry_text, now)?;
    let challenge = parse_challenge(
        ChallengeFields {
            challenge_type,
            challenge_status,
            frequency,
            task_id,
        },
        offer_id,
    )?;

    Ok(Assignment {
        user_id: user_id.to_owned(),
        offer_id: offer_id.to_owned(),
        template_id: template_id.map(str::to_owned),
        campaign_id: campaign_id.map(str::to_owned),
        start_date,
        expiry_date,
        rank,
        rules,
        challenge,
        source: AssignmentSource::Campaign {
            sort_key: sort_key.to_owned(),
            task_id: task_id.map(str::to_owned),
        },
    })
}

/// Validates an offer's validity window; a missing start means `now`.
pub fn parse_validity(
    start: Option<&str>,
    expiry: &str,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Rejection> {
    let start_date = match start {
        Some(text) => parse_timestamp(text).ok_or_else(|| {
            Rejection::new(
                ReasonCode::InvalidDates,
                format!("startDate {text:?} is not an ISO-8601 timestamp with offset"),
            )
        })?,
        None => now,
    };
    let expiry_date = parse_timestamp(expiry).ok_or_else(|| {
        Rejection::new(
            ReasonCode::InvalidDates,
            format!("expiryDate {expiry:?} is not an ISO-8601 timestamp with offset"),
        )
    })?;
    if expiry_date <= start_date {
        return Err(Rejection::new(
            ReasonCode::InvalidDates,
            "expiryDate must be after startDate",
        ));
    }
    if expiry_date <= now {
        return Err(Rejection::new(
            ReasonCode::Expired,
            format!("expiryDate {expiry} has already passed"),
        ));
    }
    Ok((start_date, expiry_date))
}

/// A rank is an integer; absent means 0.
pub fn parse_rank(value: Option<&Value>) -> Result<i64, Rejection> {
    let rank = match value {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Number(number)) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_ABS_RANK as f64)
                .map(|f| f as i64)
        }),
        Some(_) => None,
    };
    match rank {
        Some(rank) if rank.abs() <= MAX_ABS_RANK => Ok(rank),
        _ => Err(invalid_row(format!(
            "rank must be an integer between -{MAX_ABS_RANK} and {MAX_ABS_RANK}"
        ))),
    }
}

fn invalid_row(message: impl Into<String>) -> Rejection {
    Rejection::new(ReasonCode::InvalidRow, message)
}

struct RowFields<'a>(&'a Map<String, Value>);

impl<'a> RowFields<'a> {
    fn required_string(&self, name: &str) -> Result<&'a str, Rejection> {
        match self.0.get(name) {
            Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
            Some(Value::String(_)) => Err(invalid_row(format!("{name} is empty"))),
            Some(_) => Err(invalid_row(format!("{name} must be a string"))),
            None => Err(invalid_row(format!("{name} is required"))),
        }
    }

    fn optional_string(&self, name: &str) -> Result<Option<&'a str>, Rejection> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(invalid_row(format!("{name} must be a string"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn now() -> DateTime<Utc> {
        parse_timestamp("2024-06-01T00:00:00Z").expect("valid")
    }

    fn row(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test rows are objects"),
        }
    }

    fn plain_row() -> Value {
        json!({
            "userId": "us-east-1:192991f1-ede8-47bf-89e1-3942d4ab8aaa",
            "sortKey": "camp-1+co-1",
            "offerId": "co-1",
            "campaignId": "camp-1",
            "ttl": 1_900_000_000,
            "startDate": "2024-05-20T17:37:37+0000",
            "expiryDate": "2025-09-20T17:37:37+0000",
            "rank": 3
        })
    }

    fn seed_challenge_row() -> Value {
        json!({
            "userId": "us-east-1:192991f1-ede8-47bf-89e1-3942d4ab8aaa",
            "sortKey": "e2dd4cb3-9b0f-479c-8e1b-e42234f27314+d2dd9cb3-9b0f-479c-8e1b-e40046f57170",
            "challengeStatus": "{\"reward\": {\"value\": \"100\"},\"goals\": {\"visit1\": {\"condition\": {\"total_cost\": \"1\"}},\"visit2\": {\"condition\": {\"total_cost\": \"1\"}}}}",
            "challengeType": "frequency",
            "expiryDate": "2025-09-20T17:37:37+0000",
            "frequency": "290fb746-9850-4994-b7d7-5630046792e1",
            "offerId": "290fb746-9850-4994-b7d7-5630046792e1",
            "rank": 12,
            "startDate": "2023-10-20T17:37:37+0000",
            "taskId": "e2dd4cb3-9b0f-479c-8e1b-e42234f27314"
        })
    }

    fn with(mut base: Value, name: &str, value: Value) -> Map<String, Value> {
        base[name] = value;
        row(base)
    }

    fn without(base: Value, name: &str) -> Map<String, Value> {
        let mut map = row(base);
        map.remove(name);
        map
    }

    #[test]
    fn seed_row_without_challenge_parses() {
        let assignment = parse_pending_row(&row(plain_row()), now()).expect("valid");
        assert_eq!(assignment.offer_id, "co-1");
        assert_eq!(assignment.campaign_id.as_deref(), Some("camp-1"));
        assert_eq!(assignment.rank, 3);
        assert!(assignment.challenge.is_none());
        assert_eq!(
            assignment.source,
            AssignmentSource::Campaign {
                sort_key: "camp-1+co-1".into(),
                task_id: None
            }
        );
        assert_eq!(
            crate::domain::dates::format_timestamp(assignment.start_date),
            "2024-05-20T17:37:37Z"
        );
    }

    #[test]
    fn seed_challenge_row_parses_before_its_expiry() {
        let assignment = parse_pending_row(&row(seed_challenge_row()), now()).expect("valid");
        let challenge = assignment.challenge.expect("challenge");
        assert_eq!(challenge.goals.len(), 2);
        assert_eq!(
            challenge.task_id.as_deref(),
            Some("e2dd4cb3-9b0f-479c-8e1b-e42234f27314")
        );
        assert_eq!(assignment.rank, 12);
        assert!(assignment.campaign_id.is_none());
    }

    #[test]
    fn seed_challenge_row_is_expired_as_it_stands_today() {
        let today = parse_timestamp("2026-11-22T00:00:00Z").expect("valid");
        let err = parse_pending_row(&row(seed_challenge_row()), today).unwrap_err();
        assert_eq!(err.code, ReasonCode::Expired);
    }

    #[test]
    fn missing_or_mistyped_attributes_are_invalid_row() {
        let cases = [
            without(plain_row(), "userId"),
            without(plain_row(), "sortKey"),
            without(plain_row(), "offerId"),
            without(plain_row(), "startDate"),
            without(plain_row(), "expiryDate"),
            with(plain_row(), "offerId", json!(12)),
            with(plain_row(), "offerId", json!("  ")),
            with(plain_row(), "rank", json!("first")),
            with(plain_row(), "rank", json!(1.5)),
            with(plain_row(), "ttl", json!("soon")),
            with(plain_row(), "rules", json!(["minimumSpend"])),
            with(plain_row(), "campaignId", json!({"id": 1})),
        ];
        for (index, case) in cases.iter().enumerate() {
            let err = parse_pending_row(case, now()).expect_err("invalid");
            assert_eq!(
                err.code,
                ReasonCode::InvalidRow,
                "case {index}: {}",
                err.message
            );
        }
    }

    #[test]
    fn bad_dates_are_invalid_dates() {
        let cases = [
            with(plain_row(), "startDate", json!("2024-05-20")),
            with(plain_row(), "expiryDate", json!("soon")),
            with(plain_row(), "expiryDate", json!("2024-05-20T17:37:37Z")),
            with(plain_row(), "expiryDate", json!("2024-05-19T17:37:37Z")),
        ];
        for case in cases {
            assert_eq!(
                parse_pending_row(&case, now()).unwrap_err().code,
                ReasonCode::InvalidDates
            );
        }
    }

    #[test]
    fn past_expiry_is_expired() {
        let case = with(
            with(plain_row(), "startDate", json!("2024-01-01T00:00:00Z")).into(),
            "expiryDate",
            json!("2024-05-31T23:59:59+00:00"),
        );
        assert_eq!(
            parse_pending_row(&case, now()).unwrap_err().code,
            ReasonCode::Expired
        );
    }

    #[test]
    fn rank_defaults_to_zero_and_rules_are_read() {
        let mut case = without(plain_row(), "rank");
        case.insert("rules".into(), json!({"minimumSpend": 7}));
        let assignment = parse_pending_row(&case, now()).expect("valid");
        assert_eq!(assignment.rank, 0);
        assert_eq!(assignment.rules["minimumSpend"], json!(7));
    }

    #[test]
    fn challenge_rows_are_checked() {
        let case = with(seed_challenge_row(), "frequency", json!("something-else"));
        assert_eq!(
            parse_pending_row(&case, now()).unwrap_err().code,
            ReasonCode::FrequencyMismatch
        );
        let case = with(seed_challenge_row(), "challengeStatus", json!("{}"));
        assert_eq!(
            parse_pending_row(&case, now()).unwrap_err().code,
            ReasonCode::InvalidChallenge
        );
    }
}
