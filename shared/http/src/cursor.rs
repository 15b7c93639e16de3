//! The opaque `cursor` of list pages: base64url of the list position only.
//!
//! A cursor names a place in an index (its sort key and an offer id), never a
//! user: the user always comes from the caller, so a cursor taken from one
//! user's page and replayed by another only moves within the other's own
//! offers.

use super::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use offers_domain::PersonalizedOfferId;
use offers_shared::ports::ListPosition;
use serde::{Deserialize, Serialize};

/// Longer text is not a cursor this API issued.
const MAX_CURSOR_CHARS: usize = 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    /// The index sort key (e.g. `rankKey`); it ends with `#<id>`.
    k: String,
    id: PersonalizedOfferId,
}

pub fn encode_cursor(position: &ListPosition) -> String {
    let wire = Wire {
        k: position.index_key.clone(),
        id: position.personalized_offer_id,
    };
    // Serializing two strings cannot fail; an empty cursor would only be refused later.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// The position of a cursor this API issued; 400 `invalid_cursor` for anything else.
pub fn decode_cursor(text: &str) -> Result<ListPosition, ApiError> {
    let invalid = || ApiError::bad_request("invalid_cursor", "cursor is not valid");
    if text.is_empty() || text.len() > MAX_CURSOR_CHARS {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    // Every index of the offers table ends its sort key with the offer id.
    let suffix = format!("#{}", wire.id);
    if wire.k.len() <= suffix.len() || !wire.k.ends_with(&suffix) {
        return Err(invalid());
    }
    Ok(ListPosition {
        index_key: wire.k,
        personalized_offer_id: wire.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> ListPosition {
        let id: PersonalizedOfferId = "0f8fad5b-d9cb-469f-a165-70867728950e"
            .parse()
            .expect("uuid");
        ListPosition {
            index_key: format!("1000000000#2024-01-01T00:00:00Z#{id}"),
            personalized_offer_id: id,
        }
    }

    #[test]
    fn round_trips_and_is_url_safe() {
        let cursor = encode_cursor(&position());
        assert!(cursor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(decode_cursor(&cursor), Ok(position()));
    }

    #[test]
    fn carries_no_user_id() {
        let bytes = URL_SAFE_NO_PAD
            .decode(encode_cursor(&position()))
            .expect("base64");
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        let mut keys: Vec<&String> = json.as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(keys, ["id", "k"]);
    }

    #[test]
    fn anything_else_is_invalid() {
        let encode = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let id = position().personalized_offer_id;
        let other = PersonalizedOfferId::random();
        for text in [
            String::new(),
            "not base64!".to_owned(),
            encode("not json"),
            encode("{}"),
            encode(&format!(r#"{{"k":"1#x#{other}","id":"{id}"}}"#)),
            encode(&format!(r##"{{"k":"#{id}","id":"{id}"}}"##)),
            encode(&format!(r#"{{"k":"1#x#{id}","id":"{id}","userId":"u"}}"#)),
            encode(&format!(r#"{{"k":"1#x#{id}","id":"nope"}}"#)),
            "A".repeat(MAX_CURSOR_CHARS + 1),
        ] {
            assert_eq!(
                decode_cursor(&text).map_err(|e| e.code().to_owned()),
                Err("invalid_cursor".to_owned()),
                "{text}"
            );
        }
    }
}
