//! The transactions table's stream (contract section 8), read record by
//! record into typed input, its transaction parsed once: what every
//! function on that stream (challenge progress, user visits) starts from.
//! A record whose image cannot be read becomes a rejection with its raw
//! text; nothing in a record fails the batch.

use super::runner::{stream_record, KeyedRecord};
use super::{normalise_record, Batch, Envelope, Input, ReadRecord};
use offers_domain::transaction::usable_user_id;
use offers_domain::{parse_transaction, ReasonCode, Rejection, Transaction};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Namespace of the ids derived from transaction stream records (rejection ids).
const RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x9a2e_0c71_5d4b_4e8f_a3c6_71d0_2b9e_f415);

/// The rejected table's partition for a transaction without a usable
/// `userId`: `#` starts no Cognito identity id, so it cannot be a user's.
pub const NO_USER_PARTITION: &str = "#transactions-without-user";

/// One record of a batch: an INSERT of a transaction, or a record that
/// needs no work (REMOVE, MODIFY, an event name not known, no sequence number).
pub type TransactionInput = Input<TransactionRecord>;

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
            Ok(transaction) => transaction.user_id.as_str(),
            Err(_) => &self.partition,
        }
    }
}

stream_record!(TransactionRecord);

impl KeyedRecord for TransactionRecord {
    fn key(&self) -> (&str, &str) {
        (self.user_key(), "")
    }
}

/// The records of one stream event, typed.
pub type TransactionBatch = Batch<TransactionRecord>;

impl ReadRecord for TransactionRecord {
    /// Reads one record of the Lambda event for the transactions stream.
    fn read_record(mut raw: Value) -> TransactionInput {
        let envelope = match Envelope::read(&raw, &["INSERT"]) {
            Ok(envelope) => envelope,
            Err(other) => return other,
        };
        let event_id = envelope.event_id.unwrap_or_default();
        let sequence_number = envelope.sequence_number;
        normalise_record(&mut raw);
        let image = &raw["dynamodb"]["NewImage"];
        let attributes = serde_dynamo::Item::deserialize(image)
            .map_err(|err| err.to_string())
            .and_then(|item| {
                serde_dynamo::from_item::<_, Map<String, Value>>(item)
                    .map_err(|err| err.to_string())
            });
        let record = match attributes {
            Ok(attributes) => {
                TransactionRecord::from_attributes(event_id, sequence_number, &attributes)
            }
            Err(problem) => TransactionRecord::unreadable(
                event_id,
                sequence_number,
                image.to_string(),
                &problem,
            ),
        };
        Input::Change(Box::new(record))
    }
}

/// Reads one record of the Lambda event for the transactions stream.
pub fn read_record(raw: Value) -> TransactionInput {
    TransactionRecord::read_record(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::test_events::{insert_event, the_change, without_sequence_number};
    use crate::stream::{EventError, IgnoredReason};

    fn insert(image: Value) -> Value {
        insert_event(json!({"transactionId": {"S": "t-1"}}), image)
    }

    fn read_insert(raw: Value) -> TransactionRecord {
        the_change(read_record(raw))
    }

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

    #[test]
    fn reads_a_transaction() {
        let record = read_insert(insert(json!({
            "transactionId": {"S": "t-1"}, "userId": {"S": "u1"}, "totalCost": {"N": "12.50"},
            "occurredAt": {"S": "2024-06-01T10:00:00+0000"}, "extra": {}
        })));
        let transaction = record.transaction.expect("valid");
        assert_eq!(transaction.total_cost, 12.5);
        assert_eq!(record.sequence_number, "100");
        assert_eq!(record.partition, "u1");
    }

    #[test]
    fn an_unreadable_image_is_a_rejection_with_its_text() {
        let record = read_insert(insert(json!({"transactionId": {"Q": "?"}})));
        let rejection = record.transaction.expect_err("unreadable");
        assert_eq!(rejection.code, ReasonCode::InvalidTransaction);
        assert!(record.image.contains("\"Q\""));
        let record = read_insert(insert(Value::Null));
        assert!(record.transaction.is_err());
    }

    #[test]
    fn other_events_are_ignored_and_a_list_is_required() {
        let mut remove = insert(json!({}));
        remove["eventName"] = json!("REMOVE");
        assert!(matches!(
            read_record(remove),
            Input::Ignored {
                reason: IgnoredReason::Remove,
                ..
            }
        ));
        let no_sequence = without_sequence_number(insert(json!({})));
        // Never applied and never failing the batch (the runner reports it
        // ignored: it has no sequence number to be reported by).
        assert!(matches!(
            read_record(no_sequence),
            Input::Unusable {
                sequence_number: None,
                ..
            }
        ));
        let batch = TransactionBatch::try_from(json!({"Records": [insert(json!({})), "junk"]}));
        assert_eq!(batch.map(|batch| batch.0.len()), Ok(2));
        assert_eq!(
            TransactionBatch::try_from(json!({"Records": 3})),
            Err(EventError::RecordsNotAList)
        );
    }
}
