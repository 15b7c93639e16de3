//! Offer events: the app saying it showed an offer (`viewed`) or that the
//! user opened it (`clicked`), each counted once by its `eventId`
//! (contract section 9).

use crate::ids::PersonalizedOfferId;
use crate::redemption::BodyProblem;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OfferEventType {
    Viewed,
    Clicked,
}

impl OfferEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            OfferEventType::Viewed => "viewed",
            OfferEventType::Clicked => "clicked",
        }
    }

    /// The offer's attributes this event type sets: the first time (kept
    /// once set) and the count.
    pub fn first_at_attribute(self) -> &'static str {
        match self {
            OfferEventType::Viewed => "viewedAt",
            OfferEventType::Clicked => "clickedAt",
        }
    }

    pub fn count_attribute(self) -> &'static str {
        match self {
            OfferEventType::Viewed => "viewCount",
            OfferEventType::Clicked => "clickCount",
        }
    }
}

/// One event as the app sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferEventRequest {
    pub event_id: Uuid,
    pub event_type: OfferEventType,
}

/// An event of one offer, as it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferEvent {
    pub personalized_offer_id: PersonalizedOfferId,
    pub event_id: Uuid,
    pub event_type: OfferEventType,
    pub received_at: DateTime<Utc>,
}

/// Reads an event body: `eventId` a UUID in its hyphenated form, `type`
/// `viewed` or `clicked`. Other fields are ignored.
pub fn parse_offer_event(body: &Map<String, Value>) -> Result<OfferEventRequest, BodyProblem> {
    let event_id = match body.get("eventId") {
        Some(Value::String(text)) if text.len() == 36 => Uuid::try_parse(text).ok(),
        _ => None,
    }
    .ok_or_else(|| BodyProblem::new("eventId is required: a UUID (8-4-4-4-12 hex digits)"))?;
    let event_type = match body.get("type").and_then(Value::as_str) {
        Some("viewed") => OfferEventType::Viewed,
        Some("clicked") => OfferEventType::Clicked,
        _ => {
            return Err(BodyProblem::new(
                "type is required: \"viewed\" or \"clicked\"",
            ))
        }
    };
    Ok(OfferEventRequest {
        event_id,
        event_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<OfferEventRequest, BodyProblem> {
        parse_offer_event(value.as_object().expect("object"))
    }

    #[test]
    fn events_are_a_uuid_and_a_known_type() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let event = parse(json!({"eventId": id, "type": "clicked", "extra": 1})).expect("valid");
        assert_eq!(event.event_id.to_string(), id);
        assert_eq!(event.event_type, OfferEventType::Clicked);
        assert_eq!(event.event_type.count_attribute(), "clickCount");
        for (body, field) in [
            (json!({"eventId": "nope", "type": "viewed"}), "eventId"),
            (
                json!({"eventId": "0f8fad5bd9cb469fa16570867728950e", "type": "viewed"}),
                "eventId",
            ),
            (json!({"type": "viewed"}), "eventId"),
            (json!({"eventId": id, "type": "redeemed"}), "type"),
            (json!({"eventId": id}), "type"),
            (json!({"eventId": id, "type": ["viewed"]}), "type"),
        ] {
            let problem = parse(body.clone()).expect_err("invalid");
            assert!(problem.message.contains(field), "{body}: {problem}");
        }
    }
}
