//! `UserProfilesTable` (contract section 13, HASH `userId`): each user's
//! behaviour profile, and the marks of the transactions counted in them.
//!
//! - a profile: `userId`, `version` (N, bumped by every write), and the
//!   profile's own attributes (`visits`, `spendTotal`, `lastVisitAt`,
//!   `recentVisits`, `modes`); one bounded item whatever the visits;
//! - a counted transaction's mark: `userId = #counted#<uuid v5 of the
//!   transactionId>` (`#` starts no user id), `transactionId`, `profileOf`,
//!   `ttl` (epoch s) [`MARK_RETENTION_SECONDS`] after it was counted.
//!
//! Counting a visit is one TransactWriteItems: the mark put if absent and
//! the profile put if its version is still the one read. Both or neither:
//! a redelivery finds the mark, a concurrent write of another transaction
//! finds the version moved on.

use super::items::Item;
use super::transactions::{cancellation_error, cancelled, condition_failed};
use super::{classify, table::DynamoTable};
use crate::domain::profile::Profile;
use crate::error::StoreError;
use crate::ports::{ProfileStore, ProfileWrite, ProfileWriteOutcome, StoredProfile};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use offers_domain::UserId;
use uuid::Uuid;

/// How long a counted transaction's mark is kept: far beyond the 24 hours
/// a stream keeps a record (and the mapping's `MaximumRecordAgeInSeconds`),
/// so that no redelivery can outlive its mark. DynamoDB deletes expired
/// items up to days late, which only keeps marks longer.
pub const MARK_RETENTION_SECONDS: i64 = 7 * 24 * 3_600;
/// The key attribute.
pub const USER_ID: &str = "userId";
const VERSION: &str = "version";
const MARK_PREFIX: &str = "#counted#";
/// Namespace of the marks' ids.
const MARK_NAMESPACE: Uuid = Uuid::from_u128(0x4f1d_8c2a_77e3_4b90_9a61_2c5e_d0b3_8e17);

/// The key of a transaction's mark.
pub fn mark_key(transaction_id: &str) -> String {
    format!(
        "{MARK_PREFIX}{}",
        Uuid::new_v5(&MARK_NAMESPACE, transaction_id.as_bytes())
    )
}

/// The profiles table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UserProfilesTable {
    table: DynamoTable,
}

impl UserProfilesTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            table: DynamoTable::new(client, name),
        }
    }

    pub fn name(&self) -> &str {
        self.table.name()
    }
}

fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn profile_item(write: &ProfileWrite) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(&write.profile)
        .map_err(|err| StoreError::Refused(format!("profile not storable: {err}")))?;
    item.insert(USER_ID.into(), text(&write.user_id));
    item.insert(
        VERSION.into(),
        number(write.expected_version.saturating_add(1)),
    );
    Ok(item)
}

fn stored_profile(user_id: &str, mut item: Item) -> Result<StoredProfile, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("profile of {user_id}: {what}"));
    let version = match item.remove(VERSION) {
        Some(AttributeValue::N(version)) => version
            .parse::<u64>()
            .map_err(|_| corrupt("version".into()))?,
        _ => return Err(corrupt("no version".into())),
    };
    item.remove(USER_ID);
    let profile: Profile = serde_dynamo::from_item(item).map_err(|err| corrupt(err.to_string()))?;
    Ok(StoredProfile {
        user_id: user_id.to_owned(),
        version,
        profile,
    })
}

impl ProfileStore for UserProfilesTable {
    async fn profile(&self, user_id: &UserId) -> Result<Option<StoredProfile>, StoreError> {
        let user_id = user_id.as_str();
        let output = self
            .table
            .client()
            .get_item()
            .table_name(self.name())
            .key(USER_ID, text(user_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| classify(&err))?;
        output
            .item
            .map(|item| stored_profile(user_id, item))
            .transpose()
    }

    async fn count_visit(&self, write: &ProfileWrite) -> Result<ProfileWriteOutcome, StoreError> {
        let expires = write
            .counted_at
            .timestamp()
            .saturating_add(MARK_RETENTION_SECONDS);
        let mark = Put::builder()
            .table_name(self.name())
            .item(USER_ID, text(mark_key(&write.transaction_id)))
            .item("transactionId", text(&write.transaction_id))
            .item("profileOf", text(&write.user_id))
            .item("ttl", number(expires))
            .condition_expression("attribute_not_exists(#user)")
            .expression_attribute_names("#user", USER_ID)
            .build()
            .map_err(|err| StoreError::Refused(err.to_string()))?;
        let mut profile = Put::builder()
            .table_name(self.name())
            .set_item(Some(profile_item(write)?));
        profile = if write.expected_version == 0 {
            profile
                .condition_expression("attribute_not_exists(#user)")
                .expression_attribute_names("#user", USER_ID)
        } else {
            profile
                .condition_expression("#version = :read")
                .expression_attribute_names("#version", VERSION)
                .expression_attribute_values(":read", number(write.expected_version))
        };
        let profile = profile
            .build()
            .map_err(|err| StoreError::Refused(err.to_string()))?;
        let result = self
            .table
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(mark).build())
            .transact_items(TransactWriteItem::builder().put(profile).build())
            .send()
            .await;
        match cancelled(result, classify)? {
            None => Ok(ProfileWriteOutcome::Written),
            Some(reasons) if condition_failed(&reasons, 0) => {
                Ok(ProfileWriteOutcome::AlreadyCounted)
            }
            Some(reasons) if condition_failed(&reasons, 1) => Ok(ProfileWriteOutcome::Stale),
            Some(reasons) => Err(cancellation_error(&reasons)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use offers_domain::profile::Visit;

    #[test]
    fn a_profile_item_round_trips_with_its_version() {
        let at = Utc
            .with_ymd_and_hms(2026, 5, 1, 9, 30, 0)
            .single()
            .unwrap_or_default();
        let profile = Profile::default().counted(&Visit {
            occurred_at: at,
            total_cost: 12.5,
            service_mode: Some("pickup".into()),
        });
        let write = ProfileWrite {
            user_id: "u".into(),
            transaction_id: "t".into(),
            expected_version: 4,
            profile: profile.clone(),
            counted_at: at,
        };
        let item = profile_item(&write).expect("storable");
        assert_eq!(item.get(VERSION), Some(&number(5)));
        let stored = stored_profile("u", item).expect("readable");
        assert_eq!(stored.version, 5);
        assert_eq!(stored.profile, profile);
        assert!(mark_key("t").starts_with("#counted#"));
        assert_eq!(mark_key("t"), mark_key("t"));
        assert_ne!(mark_key("t"), mark_key("t2"));
    }
}
