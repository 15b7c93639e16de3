//! Ids that name things in the tables, parsed once at the edge (a handler,
//! a stream record's parsing) so that a service is never handed an id
//! DynamoDB would refuse as a key. Each constructor enforces the bounds of
//! [`crate::limits`]; adapters write `as_str()`.

use crate::limits::{key_problem, MAX_ID_BYTES, MAX_PARTITION_KEY_BYTES};
use crate::redemption::MAX_ORDER_ID_CHARS;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Why a text is not an id: what a reason message or a 400 quotes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(pub String);

/// Declares a string id: non-empty, at most `$max` bytes (a key's bounds).
macro_rules! bounded_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        checked_id!(
            $(#[$doc])* $name,
            |text: &str| key_problem($field, text, $max)
        );

        impl $name {
            /// The largest id accepted, in bytes.
            pub const MAX_BYTES: usize = $max;
        }
    };
}

/// Declares a string id accepted when `$problem(text)` finds nothing wrong.
macro_rules! checked_id {
    ($(#[$doc:meta])* $name:ident, $problem:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            fn problem(text: &str) -> Option<String> {
                let problem: fn(&str) -> Option<String> = $problem;
                problem(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// An id written in the code itself (a simulation's campaign, a
            /// test's): never input. An invalid literal is a programming
            /// error, and panics where the code runs first.
            pub fn literal(text: impl Into<String>) -> Self {
                let text = text.into();
                match Self::problem(&text) {
                    Some(problem) => panic!("invalid id literal {text:?}: {problem}"),
                    None => Self(text),
                }
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;

            fn try_from(text: String) -> Result<Self, InvalidId> {
                match Self::problem(&text) {
                    Some(problem) => Err(InvalidId(problem)),
                    None => Ok(Self(text)),
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidId;

            fn try_from(text: &str) -> Result<Self, InvalidId> {
                match Self::problem(text) {
                    Some(problem) => Err(InvalidId(problem)),
                    None => Ok(Self(text.to_owned())),
                }
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, InvalidId> {
                Self::try_from(text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        /// Read-only: the text of a checked id is read like any text
        /// (`len`, `as_bytes`, `&str` arguments) without a way to change it.
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        /// Maps keyed by an id are looked up by its text (the same hash).
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// As the text it is: messages quote ids the same typed or not.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

bounded_id!(
    /// A user: the partition key of the offers, profiles and pending tables.
    UserId,
    "userId",
    MAX_PARTITION_KEY_BYTES
);

bounded_id!(
    /// A catalog offer (a config offer or a template's config offer): the
    /// `offerId` of an assignment and of a personalized offer.
    OfferId,
    "offerId",
    MAX_ID_BYTES
);

bounded_id!(
    /// A campaign: the partition key of its definition and statistics.
    CampaignId,
    "campaignId",
    MAX_ID_BYTES
);

checked_id!(
    /// An order at checkout: what a redemption is kept by on its offer
    /// (the contract: 1 to 128 characters, not blank, no control character).
    OrderId,
    order_id_problem
);

/// Why a text is not an order id (the contract's bound), if it is not.
pub fn order_id_problem(text: &str) -> Option<String> {
    let count = text.chars().count();
    (count == 0
        || count > MAX_ORDER_ID_CHARS
        || text.trim().is_empty()
        || text.chars().any(char::is_control))
    .then(|| {
        format!(
            "orderId must be 1 to {MAX_ORDER_ID_CHARS} characters, not blank, without control characters"
        )
    })
}

/// A personalized offer: the sort key of the offers table, a UUID (derived
/// from its assignment, or new). Its own type so that it is never mixed up
/// with the other UUIDs around it (stream records, redemptions, rejections).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonalizedOfferId(Uuid);

impl PersonalizedOfferId {
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// A new random id (support's and tests' offers; the dispatcher's are
    /// derived from their assignment).
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl From<Uuid> for PersonalizedOfferId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl FromStr for PersonalizedOfferId {
    type Err = InvalidId;

    /// A path segment or a field: any UUID form `uuid` reads.
    fn from_str(text: &str) -> Result<Self, InvalidId> {
        Uuid::parse_str(text)
            .map(Self)
            .map_err(|_| InvalidId("personalizedOfferId must be a UUID".into()))
    }
}

impl fmt::Debug for PersonalizedOfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for PersonalizedOfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl PartialEq<Uuid> for PersonalizedOfferId {
    fn eq(&self, other: &Uuid) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_id_is_a_non_empty_partition_key() {
        let id: UserId = "us-east-1:abc".parse().expect("valid");
        assert_eq!(id.as_str(), "us-east-1:abc");
        assert_eq!(id.to_string(), "us-east-1:abc");
        assert_eq!(format!("{id:?}"), "\"us-east-1:abc\"");
        assert_eq!(id, *"us-east-1:abc");
        let longest = "u".repeat(MAX_PARTITION_KEY_BYTES);
        assert!(UserId::try_from(longest.clone()).is_ok());
        assert_eq!(
            UserId::try_from(String::new()),
            Err(InvalidId("userId is empty".into()))
        );
        let error = UserId::try_from(longest + "u").expect_err("too long");
        assert!(error.0.starts_with("userId is 2049 bytes"), "{error}");
    }

    #[test]
    fn offer_and_campaign_ids_are_bounded_like_sort_keys() {
        assert_eq!(OfferId::MAX_BYTES, MAX_ID_BYTES);
        assert!(OfferId::try_from("o".repeat(MAX_ID_BYTES)).is_ok());
        let error = OfferId::try_from("o".repeat(MAX_ID_BYTES + 1)).expect_err("too long");
        assert!(error.0.starts_with("offerId is 1025 bytes"), "{error}");
        assert_eq!(
            CampaignId::try_from(""),
            Err(InvalidId("campaignId is empty".into()))
        );
        let campaign: CampaignId = "spring".parse().expect("valid");
        assert_eq!(campaign, *"spring");
    }

    #[test]
    fn a_personalized_offer_id_is_a_uuid_kept_apart() {
        let id: PersonalizedOfferId = "6f1c3c1e-1c1a-4f3e-9d51-0c6a0e3e8f10"
            .parse()
            .expect("a UUID");
        assert_eq!(id.to_string(), "6f1c3c1e-1c1a-4f3e-9d51-0c6a0e3e8f10");
        assert_eq!(
            serde_json::to_string(&id).ok().as_deref(),
            Some("\"6f1c3c1e-1c1a-4f3e-9d51-0c6a0e3e8f10\"")
        );
        assert_eq!(id, *id.as_uuid());
        for bad in ["", "not-a-uuid", "6f1c3c1e"] {
            assert_eq!(
                bad.parse::<PersonalizedOfferId>(),
                Err(InvalidId("personalizedOfferId must be a UUID".into()))
            );
        }
    }

    #[test]
    fn maps_keyed_by_an_id_are_read_by_its_text() {
        let mut budgets = std::collections::HashMap::new();
        budgets.insert(CampaignId::literal("spring"), 20);
        assert_eq!(budgets.get("spring"), Some(&20));
        assert_eq!(budgets.get("summer"), None);
        let campaign = CampaignId::literal("spring");
        assert_eq!(campaign.len(), 6, "read like the text it is");
    }

    #[test]
    #[should_panic(expected = "invalid id literal")]
    fn an_invalid_literal_is_a_programming_error() {
        CampaignId::literal("");
    }

    #[test]
    fn an_order_id_has_the_contracts_bounds() {
        let order: OrderId = "order-1".parse().expect("valid");
        assert_eq!(order.as_str(), "order-1");
        assert!(OrderId::try_from("é".repeat(MAX_ORDER_ID_CHARS)).is_ok());
        for bad in [String::new(), "   ".into(), "a\nb".into(), "o".repeat(129)] {
            assert!(OrderId::try_from(bad.as_str()).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<OrderId>("\"\"").is_err());
    }

    #[test]
    fn ids_parse_from_json_with_their_bounds() {
        let id: UserId = serde_json::from_str("\"u-1\"").expect("valid");
        assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some("\"u-1\""));
        assert!(serde_json::from_str::<UserId>("\"\"").is_err());
    }
}
