//! An assignment: one user, one config offer, its dates, rank and rule values.
//! Pending rows (campaign tools) and support requests both become one.

use crate::canonical::canonical_json;
use crate::challenge::{parse_challenge, Challenge, ChallengeFields};
use crate::dates::parse_timestamp;
use crate::ids::{CampaignId, InvalidId, OfferId, PersonalizedOfferId, UserId};
use crate::limits::{
    item_problem, key_problem, quote, MAX_ID_BYTES, MAX_ROW_ATTRIBUTES, MAX_SORT_KEY_BYTES,
};
use crate::rejection::{ReasonCode, Rejection};
use crate::rules::Rules;
use crate::selection::SelectionRecord;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

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
    pub user_id: UserId,
    pub offer_id: OfferId,
    pub template_id: Option<String>,
    pub campaign_id: Option<CampaignId>,
    pub start_date: DateTime<Utc>,
    pub expiry_date: DateTime<Utc>,
    pub rank: i64,
    pub rules: Rules,
    pub challenge: Option<Challenge>,
    pub source: AssignmentSource,
    /// How a selection plan chose the offer (`offers campaign plan`), kept on the offer.
    pub selection: Option<SelectionRecord>,
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
    let row_fields = RowFields(row);
    let user_id: UserId = row_fields.required_id("userId")?;
    let sort_key = row_fields.required_key("sortKey", MAX_SORT_KEY_BYTES)?;
    check_storable(row, "the row")?;
    read_assignment_id(row)?;
    let fields = AssignmentFields::read(row, true)?;
    let challenge_status = row_fields.optional_string("challengeStatus")?;
    if let Some(ttl) = row.get("ttl") {
        if !ttl.is_number() {
            return Err(invalid_row("ttl must be a number (epoch seconds)"));
        }
    }
    let selection = match row.get("selection") {
        None | Some(Value::Null) => None,
        Some(value) => Some(SelectionRecord::parse(value).map_err(invalid_row)?),
    };
    let source = AssignmentSource::Campaign {
        sort_key: sort_key.to_owned(),
        task_id: fields.task_id.clone(),
    };
    let mut assignment = fields.assemble(&user_id, challenge_status, source, now)?;
    assignment.selection = selection;
    Ok(assignment)
}

/// The longest `assignmentId` of a pending row, in characters (contract section 2).
pub const MAX_ASSIGNMENT_ID_CHARS: usize = 128;

/// Namespace of the offer ids derived from a row's `assignmentId`.
const ASSIGNMENT_NAMESPACE: Uuid = Uuid::from_u128(0x2a7e_94c1_5d3b_4e8f_a061_7c9d_b3e5_f284);

/// A pending row's `assignmentId`: absent, or a string of 1 to
/// [`MAX_ASSIGNMENT_ID_CHARS`] characters (anything else is `invalid_row`).
/// Opaque: compared exactly, never trimmed.
pub fn read_assignment_id(row: &Map<String, Value>) -> Result<Option<&str>, Rejection> {
    match row.get("assignmentId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => match id.chars().count() {
            1..=MAX_ASSIGNMENT_ID_CHARS => Ok(Some(id)),
            count => Err(invalid_row(format!(
                "assignmentId must be 1 to {MAX_ASSIGNMENT_ID_CHARS} characters, not {count}"
            ))),
        },
        Some(_) => Err(invalid_row("assignmentId must be a string")),
    }
}

/// The `personalizedOfferId` of the offer of a user's assignment: a UUID v5
/// of the user and the `assignmentId`, so that every row of the assignment,
/// however often written or delivered, names the same offer, and the offer
/// put's `attribute_not_exists` condition lets only one of them make it.
/// Offers already stored carry ids made this way: the derivation must never
/// change.
pub fn assignment_offer_id(user_id: &str, assignment_id: &str) -> PersonalizedOfferId {
    // The user id's length first: no two (user, assignment) pairs share a name.
    let name = format!("{}:{user_id}{assignment_id}", user_id.len());
    PersonalizedOfferId::from_uuid(Uuid::new_v5(&ASSIGNMENT_NAMESPACE, name.as_bytes()))
}

/// The fields a support tool request body may carry: the contract's, plus
/// the challenge attributes of a pending row so that agents can assign
/// challenge offers too.
pub const SUPPORT_REQUEST_FIELDS: [&str; 12] = [
    "offerId",
    "templateId",
    "campaignId",
    "startDate",
    "expiryDate",
    "rank",
    "rules",
    "reason",
    "challengeType",
    "challengeStatus",
    "frequency",
    "taskId",
];

/// The longest `reason` a support agent may give, in characters.
pub const MAX_REASON_CHARS: usize = 2_000;

/// Namespace of support request fingerprints.
const FINGERPRINT_NAMESPACE: Uuid = Uuid::from_u128(0x9a4c_e2f1_7b3d_4e58_a6c0_1d2e_3f4a_5b6c);

/// A support agent's request (the JSON body of
/// `POST /support/users/{userId}/offers`), read at the edge: its shape is
/// checked (`invalid_row`, which here includes a missing `reason` or an
/// unknown field); its dates (against the clock) and challenge are checked
/// when it becomes an assignment, then the catalog, as for a row.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportRequest {
    fields: AssignmentFields,
    challenge_status: Option<String>,
    reason: String,
    fingerprint: String,
}

impl SupportRequest {
    /// Reads the body's shape. The checks and their order are those of a
    /// pending row.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Rejection> {
        if let Some(unknown) = body
            .keys()
            .find(|name| !SUPPORT_REQUEST_FIELDS.contains(&name.as_str()))
        {
            return Err(invalid_row(format!(
                "unknown field {}; accepted: {}",
                quote(unknown),
                SUPPORT_REQUEST_FIELDS.join(", ")
            )));
        }
        check_storable(body, "the request")?;
        let fields = AssignmentFields::read(body, false)?;
        // An agent may send the challenge as JSON or, like a campaign tool, as text.
        let challenge_status = match body.get("challengeStatus") {
            Some(status @ Value::Object(_)) => Some(status.to_string()),
            _ => RowFields(body)
                .optional_string("challengeStatus")?
                .map(str::to_owned),
        };
        let reason = RowFields(body).required_string("reason")?;
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(invalid_row(format!(
                "reason is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        Ok(Self {
            fields,
            challenge_status,
            reason: reason.trim().to_owned(),
            fingerprint: request_fingerprint(body),
        })
    }

    /// Equal for equal bodies, whatever their key order or spacing: what an
    /// idempotent request's offer keeps, to tell a retry from another
    /// request with the same key. Offers already stored carry fingerprints
    /// made this way: the derivation must never change.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The dates (a missing `startDate` means now), then the challenge
    /// (`invalid_dates`, `expired`, `invalid_challenge`,
    /// `frequency_mismatch`): the assignment of the offer to `user_id`.
    pub fn assignment(
        &self,
        user_id: &UserId,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Assignment, Rejection> {
        let source = AssignmentSource::Support {
            agent: agent.to_owned(),
            reason: self.reason.clone(),
        };
        self.fields
            .clone()
            .assemble(user_id, self.challenge_status.as_deref(), source, now)
    }
}

/// The fingerprint of a request body (see [`SupportRequest::fingerprint`]).
fn request_fingerprint(body: &Map<String, Value>) -> String {
    let text = canonical_json(&Value::Object(body.clone()));
    Uuid::new_v5(&FINGERPRINT_NAMESPACE, text.as_bytes()).to_string()
}

/// [`SupportRequest::parse`], then its assignment to `user_id` at `now`.
pub fn parse_support_request(
    user_id: &str,
    body: &Map<String, Value>,
    agent: &str,
    now: DateTime<Utc>,
) -> Result<Assignment, Rejection> {
    let user_id = UserId::try_from(user_id).map_err(|invalid| invalid_row(invalid.0))?;
    SupportRequest::parse(body)?.assignment(&user_id, agent, now)
}

/// What rows and support requests have in common, read but not yet checked
/// against each other (dates) or parsed (challenge).
#[derive(Debug, Clone, PartialEq)]
struct AssignmentFields {
    offer_id: OfferId,
    template_id: Option<String>,
    campaign_id: Option<CampaignId>,
    task_id: Option<String>,
    challenge_type: Option<String>,
    frequency: Option<String>,
    start: Option<String>,
    expiry: String,
    rank: i64,
    rules: Rules,
}

impl AssignmentFields {
    /// Reads the fields' shapes (`invalid_row`); a row must give `startDate`.
    fn read(map: &Map<String, Value>, start_required: bool) -> Result<Self, Rejection> {
        let fields = RowFields(map);
        let owned = |text: Option<&str>| text.map(str::to_owned);
        Ok(Self {
            offer_id: fields.required_id("offerId")?,
            campaign_id: fields.optional_id("campaignId")?,
            task_id: owned(fields.optional_key("taskId")?),
            template_id: owned(fields.optional_key("templateId")?),
            challenge_type: owned(fields.optional_key("challengeType")?),
            frequency: owned(fields.optional_key("frequency")?),
            start: if start_required {
                Some(fields.required_string("startDate")?.to_owned())
            } else {
                owned(fields.optional_string("startDate")?)
            },
            expiry: fields.required_string("expiryDate")?.to_owned(),
            rank: parse_rank(map.get("rank"))?,
            rules: parse_rules(map.get("rules"))?,
        })
    }

    /// Checks the dates, then the challenge, and makes the assignment.
    fn assemble(
        self,
        user_id: &UserId,
        challenge_status: Option<&str>,
        source: AssignmentSource,
        now: DateTime<Utc>,
    ) -> Result<Assignment, Rejection> {
        let (start_date, expiry_date) = parse_validity(self.start.as_deref(), &self.expiry, now)?;
        let challenge = parse_challenge(
            ChallengeFields {
                challenge_type: self.challenge_type.as_deref(),
                challenge_status,
                frequency: self.frequency.as_deref(),
                task_id: self.task_id.as_deref(),
            },
            &self.offer_id,
        )?;
        Ok(Assignment {
            user_id: user_id.clone(),
            offer_id: self.offer_id,
            template_id: self.template_id,
            campaign_id: self.campaign_id,
            start_date,
            expiry_date,
            rank: self.rank,
            rules: self.rules,
            challenge,
            source,
            selection: None,
        })
    }
}

/// Assignment-time rule values: a map of rule name to value; absent means none.
fn parse_rules(value: Option<&Value>) -> Result<Rules, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(Rules::new()),
        Some(Value::Object(rules)) => Ok(rules
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()),
        Some(_) => Err(invalid_row("rules must be a map of rule name to value")),
    }
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
                format!(
                    "startDate {} is not an ISO-8601 timestamp with offset, in years 0001 to 9999",
                    quote(text)
                ),
            )
        })?,
        None => now,
    };
    let expiry_date = parse_timestamp(expiry).ok_or_else(|| {
        Rejection::new(
            ReasonCode::InvalidDates,
            format!(
                "expiryDate {} is not an ISO-8601 timestamp with offset, in years 0001 to 9999",
                quote(expiry)
            ),
        )
    })?;
    // With no start given the start is now, and an expiry before it has
    // simply passed: that is `expired`, below.
    if start.is_some() && expiry_date <= start_date {
        return Err(Rejection::new(
            ReasonCode::InvalidDates,
            "expiryDate must be after startDate",
        ));
    }
    if expiry_date <= now {
        return Err(Rejection::new(
            ReasonCode::Expired,
            format!("expiryDate {} has already passed", quote(expiry)),
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

/// Rows and request bodies must be storable as they are: a campaign tool's
/// row goes to the pending table (the CLI checks before writing), and the
/// rejected table keeps it as it was.
fn check_storable(map: &Map<String, Value>, what: &str) -> Result<(), Rejection> {
    if map.len() > MAX_ROW_ATTRIBUTES {
        return Err(invalid_row(format!(
            "{what} has {} attributes; at most {MAX_ROW_ATTRIBUTES}",
            map.len()
        )));
    }
    match item_problem(map) {
        Some(problem) => Err(invalid_row(format!("{what} cannot be stored: {problem}"))),
        None => Ok(()),
    }
}

struct RowFields<'a>(&'a Map<String, Value>);

impl<'a> RowFields<'a> {
    /// A required string that is used as a key: non-empty and within `max_bytes`.
    fn required_key(&self, name: &str, max_bytes: usize) -> Result<&'a str, Rejection> {
        let text = self.required_string(name)?;
        match key_problem(name, text, max_bytes) {
            Some(problem) => Err(invalid_row(problem)),
            None => Ok(text),
        }
    }

    /// A typed id that must be given: what its constructor accepts.
    fn required_id<Id>(&self, name: &str) -> Result<Id, Rejection>
    where
        Id: for<'t> TryFrom<&'t str, Error = InvalidId>,
    {
        Id::try_from(self.required_string(name)?).map_err(|InvalidId(problem)| invalid_row(problem))
    }

    /// An optional typed id: absent, or what its constructor accepts.
    fn optional_id<Id>(&self, name: &str) -> Result<Option<Id>, Rejection>
    where
        Id: for<'t> TryFrom<&'t str, Error = InvalidId>,
    {
        self.optional_string(name)?
            .map(Id::try_from)
            .transpose()
            .map_err(|InvalidId(problem)| invalid_row(problem))
    }

    /// An optional id: absent, or within [`MAX_ID_BYTES`].
    fn optional_key(&self, name: &str) -> Result<Option<&'a str>, Rejection> {
        let text = self.optional_string(name)?;
        match text.and_then(|text| key_problem(name, text, MAX_ID_BYTES)) {
            Some(problem) => Err(invalid_row(problem)),
            None => Ok(text),
        }
    }

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
            crate::dates::format_timestamp(assignment.start_date),
            "2024-05-20T17:37:37Z"
        );
    }

    #[test]
    fn an_assignment_id_is_1_to_128_characters() {
        for id in ["a".to_owned(), "é".repeat(MAX_ASSIGNMENT_ID_CHARS)] {
            let row = with(plain_row(), "assignmentId", json!(id));
            assert_eq!(read_assignment_id(&row), Ok(Some(id.as_str())));
            parse_pending_row(&row, now()).expect("valid");
        }
        assert_eq!(read_assignment_id(&row(plain_row())), Ok(None));
        for bad in [json!(""), json!("x".repeat(129)), json!(7)] {
            let row = with(plain_row(), "assignmentId", bad);
            let err = parse_pending_row(&row, now()).unwrap_err();
            assert_eq!(err.code, ReasonCode::InvalidRow);
            assert!(err.message.contains("assignmentId"), "{}", err.message);
        }
    }

    #[test]
    fn an_assignments_offer_id_is_fixed_per_user_and_assignment() {
        let id = assignment_offer_id("u1", "a1");
        assert_eq!(id, assignment_offer_id("u1", "a1"));
        assert_ne!(id, assignment_offer_id("u2", "a1"));
        assert_ne!(id, assignment_offer_id("u1", "a2"));
        // No two splits of one text collide.
        assert_ne!(
            assignment_offer_id("u1", "a\u{1f}b"),
            assignment_offer_id("u1\u{1f}a", "b")
        );
        // Stored offers carry ids made this way: pinned.
        assert_eq!(id.to_string(), "c44a91ba-6fb6-5c63-9971-38ad38fc45cb");
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
    fn a_selection_is_kept_and_checked() {
        let selection = json!({"policy": "thompson-backoff/1", "propensity": 0.5,
            "holdout": false, "context": {"tier": "gold"}});
        let case = with(plain_row(), "selection", selection);
        let assignment = parse_pending_row(&case, now()).expect("valid");
        let kept = assignment.selection.expect("selection");
        assert_eq!(kept.context["tier"], "gold");
        assert!(parse_pending_row(&row(plain_row()), now())
            .expect("valid")
            .selection
            .is_none());
        let bad = with(
            plain_row(),
            "selection",
            json!({"policy": "p", "propensity": 2,
            "holdout": false}),
        );
        let err = parse_pending_row(&bad, now()).expect_err("invalid");
        assert_eq!(err.code, ReasonCode::InvalidRow);
        assert!(err.message.contains("propensity"), "{}", err.message);
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

    fn support_body(value: Value) -> Map<String, Value> {
        row(value)
    }

    fn plain_support_body() -> Value {
        json!({
            "offerId": "co-1",
            "expiryDate": "2025-09-20T17:37:37Z",
            "rules": {"minimumSpend": 3},
            "reason": "  goodwill after a missing order  "
        })
    }

    #[test]
    fn a_support_request_becomes_an_assignment_starting_now() {
        let assignment = parse_support_request(
            "user-9",
            &support_body(plain_support_body()),
            "agent-1",
            now(),
        )
        .expect("valid");
        assert_eq!(assignment.user_id, "user-9");
        assert_eq!(assignment.start_date, now());
        assert_eq!(assignment.rank, 0);
        assert_eq!(assignment.rules["minimumSpend"], json!(3));
        assert_eq!(
            assignment.source,
            AssignmentSource::Support {
                agent: "agent-1".into(),
                reason: "goodwill after a missing order".into()
            }
        );
    }

    #[test]
    fn a_support_request_is_checked_like_a_row() {
        let cases = [
            (
                without(plain_support_body(), "reason"),
                ReasonCode::InvalidRow,
            ),
            (
                with(plain_support_body(), "reason", json!("   ")),
                ReasonCode::InvalidRow,
            ),
            (
                with(
                    plain_support_body(),
                    "reason",
                    json!("x".repeat(MAX_REASON_CHARS + 1)),
                ),
                ReasonCode::InvalidRow,
            ),
            (
                without(plain_support_body(), "offerId"),
                ReasonCode::InvalidRow,
            ),
            (
                with(plain_support_body(), "userId", json!("someone-else")),
                ReasonCode::InvalidRow,
            ),
            (
                with(plain_support_body(), "rank", json!(0.5)),
                ReasonCode::InvalidRow,
            ),
            (
                with(plain_support_body(), "startDate", json!("tomorrow")),
                ReasonCode::InvalidDates,
            ),
            (
                with(
                    plain_support_body(),
                    "expiryDate",
                    json!("2024-05-31T00:00:00Z"),
                ),
                ReasonCode::Expired,
            ),
            (
                with(plain_support_body(), "challengeType", json!("frequency")),
                ReasonCode::InvalidChallenge,
            ),
        ];
        for (index, (body, code)) in cases.iter().enumerate() {
            let err = parse_support_request("user-9", body, "agent-1", now()).expect_err("invalid");
            assert_eq!(err.code, *code, "case {index}: {}", err.message);
        }
    }

    #[test]
    fn a_past_expiry_without_a_start_is_expired() {
        assert_eq!(
            parse_validity(None, "2024-05-01T00:00:00Z", now()).map_err(|r| r.code),
            Err(ReasonCode::Expired)
        );
        assert_eq!(
            parse_validity(Some("2024-07-01T00:00:00Z"), "2024-06-15T00:00:00Z", now())
                .map_err(|r| r.code),
            Err(ReasonCode::InvalidDates)
        );
    }

    #[test]
    fn a_support_request_may_carry_a_challenge_as_json() {
        let mut body = plain_support_body();
        body["offerId"] = json!("290fb746-9850-4994-b7d7-5630046792e1");
        body["challengeType"] = json!("frequency");
        body["frequency"] = json!("290fb746-9850-4994-b7d7-5630046792e1");
        body["challengeStatus"] = json!({"reward": {"value": "100"},
            "goals": {"visit1": {"condition": {"total_cost": "1"}}}});
        let assignment =
            parse_support_request("user-9", &support_body(body.clone()), "agent-1", now())
                .expect("valid");
        assert_eq!(assignment.challenge.expect("challenge").goals.len(), 1);
        body["frequency"] = json!("another-offer");
        let err = parse_support_request("user-9", &support_body(body), "agent-1", now())
            .expect_err("mismatch");
        assert_eq!(err.code, ReasonCode::FrequencyMismatch);
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
