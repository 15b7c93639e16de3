//! An in-memory fake of the webhook's store, for the service's unit tests:
//! the same conditions as the DynamoDB adapter, under one lock.

use crate::domain::webhook::WebhookReceipt;
use crate::error::StoreError;
use crate::ports::{
    ClaimOutcome, DeliveryClaim, DeliveryRecord, DeliveryState, RowsWritten, SignatureClaim,
    SignatureUse, WebhookStore,
};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct WebhookState {
    pub deliveries: HashMap<String, DeliveryRecord>,
    /// Used signatures (MAC hex) and the delivery each is tied to.
    pub signatures: HashMap<String, String>,
    /// Every row put, in order (a put of an existing key is a second entry).
    pub puts: Vec<Map<String, Value>>,
    /// Rows at these positions fail transiently (the rest are written).
    pub failing_rows: BTreeSet<usize>,
    /// Rows at these positions are refused for good.
    pub refused_rows: BTreeSet<usize>,
    /// Completions fail with this error.
    pub completion_down: Option<StoreError>,
}

#[derive(Debug, Default)]
pub struct MemoryWebhookStore {
    state: Mutex<WebhookState>,
}

impl MemoryWebhookStore {
    pub fn state(&self) -> MutexGuard<'_, WebhookState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl WebhookState {
    fn signature_free_for(&self, claim: &SignatureClaim) -> bool {
        self.signatures
            .get(&claim.mac_hex)
            .is_none_or(|owner| *owner == claim.delivery_id)
    }
}

impl WebhookStore for MemoryWebhookStore {
    async fn claim_delivery(&self, claim: &DeliveryClaim) -> Result<ClaimOutcome, StoreError> {
        let mut state = self.state();
        // As the adapter's transaction: a used signature wins over a held delivery.
        if !state.signature_free_for(&claim.signature) {
            return Ok(ClaimOutcome::SignatureReused);
        }
        if let Some(existing) = state.deliveries.get(&claim.delivery_id) {
            return Ok(ClaimOutcome::Held(Box::new(existing.clone())));
        }
        state.signatures.insert(
            claim.signature.mac_hex.clone(),
            claim.signature.delivery_id.clone(),
        );
        state.deliveries.insert(
            claim.delivery_id.clone(),
            DeliveryRecord {
                delivery_id: claim.delivery_id.clone(),
                fingerprint: claim.fingerprint.clone(),
                state: DeliveryState::InProgress {
                    token: claim.token,
                    lease_until: claim.lease_until,
                },
                receipt: claim.receipt.clone(),
                written: BTreeSet::new(),
            },
        );
        Ok(ClaimOutcome::Claimed)
    }

    async fn claim_signature(&self, claim: &SignatureClaim) -> Result<SignatureUse, StoreError> {
        let mut state = self.state();
        if !state.signature_free_for(claim) {
            return Ok(SignatureUse::Reused);
        }
        state
            .signatures
            .insert(claim.mac_hex.clone(), claim.delivery_id.clone());
        Ok(SignatureUse::Claimed)
    }

    async fn take_over(
        &self,
        claim: &DeliveryClaim,
        previous: Uuid,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut state = self.state();
        let Some(record) = state.deliveries.get_mut(&claim.delivery_id) else {
            return Err(StoreError::Corrupt("no record to take over".into()));
        };
        match record.state {
            DeliveryState::InProgress { token, lease_until }
                if token == previous && lease_until <= claim.claimed_at =>
            {
                record.state = DeliveryState::InProgress {
                    token: claim.token,
                    lease_until: claim.lease_until,
                };
                Ok(ClaimOutcome::Claimed)
            }
            _ => Ok(ClaimOutcome::Held(Box::new(record.clone()))),
        }
    }

    async fn find_delivery(&self, delivery_id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        Ok(self.state().deliveries.get(delivery_id).cloned())
    }

    async fn write_rows(&self, rows: Vec<(usize, Map<String, Value>)>) -> RowsWritten {
        let mut state = self.state();
        let mut outcome = RowsWritten::default();
        for (index, row) in rows {
            if state.refused_rows.contains(&index) {
                outcome.refused.push((index, "refused".into()));
            } else if state.failing_rows.contains(&index) {
                outcome.failed = Some(StoreError::Throttled("row throttled".into()));
            } else {
                state.puts.push(row);
                outcome.written.insert(index);
            }
        }
        outcome
    }

    async fn complete_delivery(
        &self,
        delivery_id: &str,
        token: Uuid,
        receipt: &WebhookReceipt,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(error) = state.completion_down.clone() {
            return Err(error);
        }
        match state.deliveries.get_mut(delivery_id) {
            Some(record) if matches!(record.state, DeliveryState::InProgress { token: held, .. } if held == token) =>
            {
                record.state = DeliveryState::Done;
                record.receipt = receipt.clone();
                Ok(())
            }
            _ => Err(StoreError::Conflict(
                "the delivery is no longer held".into(),
            )),
        }
    }

    async fn release_delivery(
        &self,
        delivery_id: &str,
        token: Uuid,
        written: &BTreeSet<usize>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        match state.deliveries.get_mut(delivery_id) {
            Some(record) if matches!(record.state, DeliveryState::InProgress { token: held, .. } if held == token) =>
            {
                record.state = DeliveryState::InProgress {
                    token,
                    lease_until: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                };
                record.written.extend(written.iter().copied());
                Ok(())
            }
            _ => Err(StoreError::Conflict(
                "the delivery is no longer held".into(),
            )),
        }
    }
}

impl<T: WebhookStore> WebhookStore for &T {
    async fn claim_delivery(&self, claim: &DeliveryClaim) -> Result<ClaimOutcome, StoreError> {
        (**self).claim_delivery(claim).await
    }
    async fn claim_signature(&self, claim: &SignatureClaim) -> Result<SignatureUse, StoreError> {
        (**self).claim_signature(claim).await
    }
    async fn take_over(
        &self,
        claim: &DeliveryClaim,
        previous: Uuid,
    ) -> Result<ClaimOutcome, StoreError> {
        (**self).take_over(claim, previous).await
    }
    async fn find_delivery(&self, delivery_id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        (**self).find_delivery(delivery_id).await
    }
    async fn write_rows(&self, rows: Vec<(usize, Map<String, Value>)>) -> RowsWritten {
        (**self).write_rows(rows).await
    }
    async fn complete_delivery(
        &self,
        delivery_id: &str,
        token: Uuid,
        receipt: &WebhookReceipt,
    ) -> Result<(), StoreError> {
        (**self)
            .complete_delivery(delivery_id, token, receipt)
            .await
    }
    async fn release_delivery(
        &self,
        delivery_id: &str,
        token: Uuid,
        written: &BTreeSet<usize>,
    ) -> Result<(), StoreError> {
        (**self).release_delivery(delivery_id, token, written).await
    }
}
