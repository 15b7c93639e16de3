//! The campaign webhook's service: a signed delivery of assignments becomes
//! pending rows, once per delivery id (contract section 11).
//!
//! 1. Each assignment is validated by the dispatcher's own code: the pending
//!    row parser (`parse_pending_row`: shape, bounds, dates, challenge), then
//!    the catalog (`assign::load_catalog` and `CatalogSlice::offer_for`:
//!    config offer, template, rules). Two assignments of one key in a
//!    delivery would overwrite each other: the later one is refused.
//!    Each row is written with its `assignmentId`, derived from the delivery
//!    id and its index: a rewrite of it makes no second offer.
//! 2. The delivery id is claimed with a conditional put that stores the
//!    body's fingerprint and the answer, in one transaction with the claim
//!    of the request's signature (a signature is good for one delivery).
//!    Only the claimant writes rows.
//! 3. The accepted rows are written with BatchWriteItem, then the record is
//!    marked done. A redelivery finds the record: the same answer, nothing
//!    written, whatever the dispatcher did with the rows meanwhile.
//!
//! See docs/design.md, "Campaign webhook", for what an interrupted request leaves.

pub mod memory;
#[cfg(test)]
mod tests;

use crate::assign::load_catalog;
use crate::domain::webhook::{
    body_fingerprint, webhook_assignment_id, RejectedAssignment, VerifiedSignature, WebhookReceipt,
};
use crate::domain::PersonalizedOfferId;
use crate::domain::{parse_pending_row, Assignment, ReasonCode, Rejection};
use crate::error::StoreError;
use crate::ports::{
    CatalogReader, ClaimOutcome, DeliveryClaim, DeliveryRecord, DeliveryState, RowsWritten,
    SignatureClaim, SignatureUse, WebhookStore,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// How long a request holds a delivery, how long a redelivery waits for it,
/// how long a record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Longer than the function can run: a holder that is still running is
    /// never taken over.
    pub lease: chrono::Duration,
    /// A redelivery that finds the delivery in progress waits this long for
    /// the first answer, then answers 503 (retry later).
    pub wait_for_holder: Duration,
    pub poll_interval: Duration,
    /// The idempotency record's lifetime (then a redelivery is a new delivery).
    pub retention: chrono::Duration,
    /// Retention of the offers the rows become (for the validation's offer build).
    pub offer_retention: chrono::Duration,
    /// How long a used signature is remembered after it can no longer be
    /// accepted (its `t` plus 300 s): clocks of DynamoDB's TTL and of this
    /// function differ a little.
    pub signature_margin: chrono::Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            lease: chrono::Duration::seconds(120),
            wait_for_holder: Duration::from_secs(5),
            poll_interval: Duration::from_millis(100),
            retention: chrono::Duration::days(7),
            offer_retention: chrono::Duration::days(90),
            signature_margin: chrono::Duration::seconds(60),
        }
    }
}

/// A verified delivery: its id, its raw body, its assignments (parsed), the
/// signature it came with.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub delivery_id: &'a str,
    pub body: &'a [u8],
    pub assignments: &'a [Value],
    pub signature: &'a VerifiedSignature,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub receipt: WebhookReceipt,
    /// True when this is the stored answer to an earlier request of the delivery.
    pub replayed: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    /// The delivery id was used before with another body (409).
    #[error("the delivery id was already used with a different body")]
    Conflict,
    /// The signature was used by another delivery (409).
    #[error("the signature was already used by another delivery")]
    SignatureReused,
    /// Another request of the same delivery is still writing (503, retry).
    #[error("another request of this delivery is in progress")]
    InProgress,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct WebhookService<S, C> {
    store: S,
    catalog: C,
    settings: WebhookSettings,
}

/// The rows to write, by position, and the answer.
struct Validated {
    rows: Vec<(usize, Map<String, Value>)>,
    receipt: WebhookReceipt,
}

impl<S: WebhookStore, C: CatalogReader> WebhookService<S, C> {
    pub fn new(store: S, catalog: C, settings: WebhookSettings) -> Self {
        Self {
            store,
            catalog,
            settings,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Validates the delivery's assignments, claims the delivery id and
    /// writes the accepted rows; or answers as the delivery was first answered.
    pub async fn receive(
        &self,
        delivery: Delivery<'_>,
        now: DateTime<Utc>,
    ) -> Result<Received, WebhookError> {
        let validated = self
            .validate(delivery.delivery_id, delivery.assignments, now)
            .await?;
        let claim = DeliveryClaim {
            delivery_id: delivery.delivery_id.to_owned(),
            fingerprint: body_fingerprint(delivery.body),
            token: Uuid::new_v4(),
            receipt: validated.receipt.clone(),
            claimed_at: now,
            lease_until: now + self.settings.lease,
            expires_at: now + self.settings.retention,
            signature: self.signature_claim(delivery, now),
        };
        let result = match self.store.claim_delivery(&claim).await? {
            ClaimOutcome::Claimed => self.write(&claim, validated.rows, validated.receipt).await,
            ClaimOutcome::Held(record) => self.redelivered(*record, claim, delivery).await,
            ClaimOutcome::SignatureReused => Err(WebhookError::SignatureReused),
        };
        log_delivery(delivery, &result);
        result
    }

    /// The use of the request's signature, remembered until a little after
    /// it could be accepted at all.
    fn signature_claim(&self, delivery: Delivery<'_>, now: DateTime<Utc>) -> SignatureClaim {
        let acceptable_until =
            DateTime::<Utc>::from_timestamp(delivery.signature.acceptable_until(), 0)
                .unwrap_or(now + chrono::Duration::seconds(600));
        SignatureClaim {
            mac_hex: delivery.signature.mac_hex.clone(),
            delivery_id: delivery.delivery_id.to_owned(),
            expires_at: acceptable_until.max(now) + self.settings.signature_margin,
        }
    }

    /// Each assignment through the dispatcher's validation, as it will be
    /// written (with its `assignmentId`); the rows of the valid ones, the
    /// reasons of the others.
    async fn validate(
        &self,
        delivery_id: &str,
        assignments: &[Value],
        now: DateTime<Utc>,
    ) -> Result<Validated, StoreError> {
        let mut rejected = Vec::new();
        let mut parsed: Vec<(usize, Assignment, Map<String, Value>)> =
            Vec::with_capacity(assignments.len());
        let mut first_of_key: HashMap<(&str, &str), usize> = HashMap::new();
        for (index, assignment) in assignments.iter().enumerate() {
            let outcome = match assignment {
                Value::Object(sent) => {
                    let row = row_to_write(delivery_id, index, sent);
                    parse_pending_row(&row, now)
                        .and_then(|parsed| {
                            let key = key_of(sent);
                            match first_of_key.get(&key) {
                                Some(first) => Err(Rejection::new(
                                    ReasonCode::InvalidRow,
                                    format!(
                                        "the same userId and sortKey as assignment {first} (one would overwrite the other)"
                                    ),
                                )),
                                None => {
                                    first_of_key.insert(key, index);
                                    Ok(parsed)
                                }
                            }
                        })
                        .map(|parsed| (parsed, row))
                }
                _ => Err(Rejection::new(
                    ReasonCode::InvalidRow,
                    "an assignment must be a JSON object (a pending row)",
                )),
            };
            match outcome {
                Ok((assignment, row)) => parsed.push((index, assignment, row)),
                Err(rejection) => rejected.push(rejected_at(index, rejection)),
            }
        }
        let catalog = load_catalog(&self.catalog, parsed.iter().map(|(_, a, _)| a)).await?;
        let mut rows = Vec::with_capacity(parsed.len());
        for (index, assignment, row) in parsed {
            match catalog.offer_for(
                &assignment,
                PersonalizedOfferId::from_uuid(Uuid::nil()),
                now,
                self.settings.offer_retention,
            ) {
                Ok(_) => rows.push((index, row)),
                Err(rejection) => rejected.push(rejected_at(index, rejection)),
            }
        }
        rejected.sort_by_key(|rejected| rejected.index);
        Ok(Validated {
            receipt: WebhookReceipt {
                accepted: rows.len(),
                rejected,
            },
            rows,
        })
    }

    /// The delivery id is already recorded: the same body gets the first
    /// answer (waiting for it if a holder is still writing, taking over from
    /// a holder that was interrupted); another body is a conflict. Its
    /// signature (the first or a new one) is used up for this delivery
    /// first: a signature that got a 202 cannot start another delivery.
    async fn redelivered(
        &self,
        mut record: DeliveryRecord,
        claim: DeliveryClaim,
        delivery: Delivery<'_>,
    ) -> Result<Received, WebhookError> {
        if record.fingerprint != claim.fingerprint {
            return Err(WebhookError::Conflict);
        }
        if self.store.claim_signature(&claim.signature).await? == SignatureUse::Reused {
            return Err(WebhookError::SignatureReused);
        }
        let waited_since = std::time::Instant::now();
        loop {
            match record.state {
                DeliveryState::Done => {
                    return Ok(Received {
                        receipt: record.receipt,
                        replayed: true,
                    })
                }
                DeliveryState::InProgress { token, lease_until } => {
                    let now = claim.claimed_at
                        + chrono::Duration::from_std(waited_since.elapsed()).unwrap_or_default();
                    if lease_until <= now {
                        let claim = DeliveryClaim {
                            claimed_at: now,
                            lease_until: now + self.settings.lease,
                            receipt: record.receipt.clone(),
                            ..claim.clone()
                        };
                        match self.store.take_over(&claim, token).await? {
                            ClaimOutcome::Claimed => {
                                return self.resume(&claim, &record, delivery).await
                            }
                            ClaimOutcome::Held(newer) => {
                                record = *newer;
                                continue;
                            }
                            // A takeover claims no signature (done above).
                            ClaimOutcome::SignatureReused => {
                                return Err(WebhookError::SignatureReused)
                            }
                        }
                    }
                    if waited_since.elapsed() >= self.settings.wait_for_holder {
                        return Err(WebhookError::InProgress);
                    }
                    tokio::time::sleep(self.settings.poll_interval).await;
                    record = self
                        .store
                        .find_delivery(&claim.delivery_id)
                        .await?
                        // Gone (its TTL): it was done long ago.
                        .ok_or(WebhookError::InProgress)?;
                }
            }
        }
    }

    /// Takes over an interrupted delivery: the rows its first answer
    /// accepted, except those known written.
    async fn resume(
        &self,
        claim: &DeliveryClaim,
        record: &DeliveryRecord,
        delivery: Delivery<'_>,
    ) -> Result<Received, WebhookError> {
        let rows = delivery
            .assignments
            .iter()
            .enumerate()
            .filter(|(index, _)| record.receipt.accepts(*index) && !record.written.contains(index))
            .filter_map(|(index, value)| {
                Some((
                    index,
                    row_to_write(delivery.delivery_id, index, value.as_object()?),
                ))
            })
            .collect();
        tracing::warn!(
            delivery_id = claim.delivery_id.as_str(),
            rows_known_written = record.written.len(),
            "taking over an interrupted delivery"
        );
        self.write(claim, rows, record.receipt.clone()).await
    }

    /// Writes the rows of a claimed delivery and marks it done.
    async fn write(
        &self,
        claim: &DeliveryClaim,
        rows: Vec<(usize, Map<String, Value>)>,
        mut receipt: WebhookReceipt,
    ) -> Result<Received, WebhookError> {
        let RowsWritten {
            written,
            refused,
            failed,
        } = self.store.write_rows(rows).await;
        if let Some(error) = failed {
            // The rows written so far are recorded, so that a retry writes the rest only.
            if let Err(release) = self
                .store
                .release_delivery(&claim.delivery_id, claim.token, &written)
                .await
            {
                tracing::warn!(
                    delivery_id = claim.delivery_id.as_str(),
                    error = %release,
                    "could not release the delivery; a retry takes over after the lease"
                );
            }
            return Err(WebhookError::Store(error));
        }
        // DynamoDB refused these rows for good: they are rejections, not retries.
        for (index, detail) in refused {
            receipt.accepted = receipt.accepted.saturating_sub(1);
            receipt.rejected.push(RejectedAssignment {
                index,
                code: ReasonCode::InvalidRow.as_str().to_owned(),
                message: format!("DynamoDB refused the row: {detail}"),
            });
        }
        receipt.rejected.sort_by_key(|rejected| rejected.index);
        self.complete(claim, &receipt).await;
        Ok(Received {
            receipt,
            replayed: false,
        })
    }

    /// Marks the delivery done; a few tries, since its rows are written and
    /// only the record lags. If it still fails, the rows stand and the
    /// sender gets its answer; the record stays in progress until its lease
    /// passes (docs/design.md).
    async fn complete(&self, claim: &DeliveryClaim, receipt: &WebhookReceipt) {
        let mut wait = Duration::from_millis(50);
        for attempt in 1..=3 {
            match self
                .store
                .complete_delivery(&claim.delivery_id, claim.token, receipt)
                .await
            {
                Ok(()) => return,
                Err(error) if error.is_transient() && attempt < 3 => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(error) => {
                    tracing::error!(
                        delivery_id = claim.delivery_id.as_str(),
                        error = %error,
                        "rows written but the delivery could not be marked done"
                    );
                    return;
                }
            }
        }
    }
}

/// The pending row of the assignment at `index`, as sent, with the
/// `assignmentId` the webhook sets (any the sender gave is replaced: the
/// delivery id and the index are what a rerun of the delivery repeats).
fn row_to_write(delivery_id: &str, index: usize, sent: &Map<String, Value>) -> Map<String, Value> {
    let mut row = sent.clone();
    row.insert(
        "assignmentId".to_owned(),
        Value::String(webhook_assignment_id(delivery_id, index)),
    );
    row
}

fn key_of(row: &Map<String, Value>) -> (&str, &str) {
    let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default();
    (text("userId"), text("sortKey"))
}

fn rejected_at(index: usize, rejection: Rejection) -> RejectedAssignment {
    RejectedAssignment {
        index,
        code: rejection.code.as_str().to_owned(),
        message: rejection.message,
    }
}

fn log_delivery(delivery: Delivery<'_>, result: &Result<Received, WebhookError>) {
    let (outcome, accepted, rejected) = match result {
        Ok(received) if received.replayed => (
            "replayed",
            received.receipt.accepted,
            received.receipt.rejected.len(),
        ),
        Ok(received) => (
            "accepted",
            received.receipt.accepted,
            received.receipt.rejected.len(),
        ),
        Err(WebhookError::Conflict) => ("conflict", 0, 0),
        Err(WebhookError::SignatureReused) => ("signature_reused", 0, 0),
        Err(WebhookError::InProgress) => ("in_progress", 0, 0),
        Err(WebhookError::Store(error)) => (error.kind(), 0, 0),
    };
    tracing::info!(
        delivery_id = delivery.delivery_id,
        assignments = delivery.assignments.len(),
        outcome,
        accepted,
        rejected,
        "webhook delivery"
    );
}
