//! The typed input: one record of the transactions table's stream, already
//! read from the wire by the function's edge, its transaction parsed once.

use crate::dispatch::IgnoredReason;
use offers_domain::transaction::usable_user_id;
use offers_domain::{parse_transaction, ReasonCode, Rejection, Transaction};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Namespace of the ids derived from transaction stream records (rejection ids).
const RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x9a2e_0c71_5d4b_4e8f_a3c6_71d0_2b9e_f415);

/// The rejected table's partition for a transaction without a usable
/// `userId`: `#` starts no Cognito identity id, so it cannot be a user's.
pub const NO_USER_PARTITION: &str = "#transactions-without-user";

/// One record of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactionInput {
    Insert(Box<TransactionRecord>),
    /// REMOVE, MODIFY, an event name not known, or a record that cannot be
    /// told apart from any other (no eventID and no sequence number).
    Ignored {
        event_id: Option<String>,
        sequence_number: Option<String>,
        reason: IgnoredReason,
    },
}

/// An INSERT of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRecord {
    pub event_id: String,
    pub sequence_number: String,
    /// The transaction, or why it can never count.
    pub transaction: Result<Transaction, Rejection>,
    /// Where a rejection of it is filed: its user when usable, else
    /// [`NO_USER_PARTITION`].
    pub partition: String,
    /// Its id when it has a usable one (for the rejection item).
    pub transaction_id: Option<String>,
    /// The image as JSON text, kept with a rejection.
    pub image: String,
    /// The same for every delivery of the record: its rejection's id.
    pub record_id: Uuid,
}

impl TransactionRecord {
    /// A record whose image was read as plain JSON attributes.
    pub fn from_attributes(
        event_id: String,
        sequence_number: String,
        attributes: &Map<String, Value>,
    ) -> Self {
        let mut canonical = String::new();
        offers_domain::canonical::write_canonical(
            &Value::Object(attributes.clone()),
            &mut canonical,
        );
        let transaction = parse_transaction(attributes);
        let partition = usable_user_id(attributes).unwrap_or(NO_USER_PARTITION);
        let transaction_id = match attributes.get("transactionId") {
            Some(Value::String(id))
                if !id.is_empty() && id.len() <= offers_domain::limits::MAX_PARTITION_KEY_BYTES =>
            {
                Some(id.clone())
            }
            _ => None,
        };
        Self::new(
            event_id,
            sequence_number,
            transaction,
            partition.to_owned(),
            transaction_id,
            canonical,
        )
    }

    /// A record whose image could not be read as attributes: rejected with
    /// its raw text.
    pub fn unreadable(
        event_id: String,
        sequence_number: String,
        raw_image: String,
        problem: &str,
    ) -> Self {
        let rejection = Rejection::new(
            ReasonCode::InvalidTransaction,
            format!("the stream record's image is unreadable: {problem}"),
        );
        Self::new(
            event_id,
            sequence_number,
            Err(rejection),
            NO_USER_PARTITION.to_owned(),
            None,
            raw_image,
        )
    }

    fn new(
        event_id: String,
        sequence_number: String,
        transaction: Result<Transaction, Rejection>,
        partition: String,
        transaction_id: Option<String>,
        image: String,
    ) -> Self {
        let mut name = String::new();
        for part in [event_id.as_str(), sequence_number.as_str(), image.as_str()] {
            name.push_str(part);
            name.push('\u{1f}');
        }
        let record_id = Uuid::new_v5(&RECORD_NAMESPACE, name.as_bytes());
        Self {
            event_id,
            sequence_number,
            transaction,
            partition,
            transaction_id,
            image,
            record_id,
        }
    }

    /// The user whose records run in order: the transaction's, or (for a
    /// rejection) the partition it is filed under.
    pub fn user_key(&self) -> &str {
        match &self.transaction {
            Ok(transaction) => &transaction.user_id,
            Err(_) => &self.partition,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attributes(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_record_id_is_stable_and_a_bad_transaction_keeps_its_user() {
        let image = attributes(json!({"transactionId": "t", "userId": "u", "totalCost": -1,
                                      "occurredAt": "2024-01-01T00:00:00Z"}));
        let one = TransactionRecord::from_attributes("e".into(), "1".into(), &image);
        let again = TransactionRecord::from_attributes("e".into(), "1".into(), &image);
        assert_eq!(one.record_id, again.record_id);
        assert_eq!(one.partition, "u");
        assert_eq!(one.transaction_id.as_deref(), Some("t"));
        assert!(one.transaction.is_err());
        let other = TransactionRecord::from_attributes("e2".into(), "2".into(), &image);
        assert_ne!(one.record_id, other.record_id);
        let anonymous = TransactionRecord::from_attributes(
            "e".into(),
            "1".into(),
            &attributes(json!({"totalCost": 1})),
        );
        assert_eq!(anonymous.partition, NO_USER_PARTITION);
        assert_eq!(anonymous.user_key(), NO_USER_PARTITION);
    }
}
