//! The support tool's service: agents assign offers (validated and merged by
//! the dispatcher's own code), list a user's offers and revoke them. The
//! handler reads the request into an [`AssignRequest`] (the body's shape
//! checked, the user id bounded); the checks that depend on the clock or the
//! catalog are the service's, so that a retry of a request that succeeded
//! gets its offer back even when its body would no longer pass.

#[cfg(test)]
mod tests;

use crate::assign::load_catalog;
use crate::domain::assignment::MAX_REASON_CHARS;
use crate::domain::campaign::{Budget, BudgetUse};
use crate::domain::CampaignId;
use crate::domain::PersonalizedOfferId;
use crate::domain::{
    IdempotencyStamp, PersonalizedOffer, ReasonCode, Rejection, SupportRequest, UserId,
};
use crate::error::StoreError;
use crate::ports::{
    CatalogReader, CreateOutcome, OfferPage, PageRequest, Revocation, RevokeOutcome, SupportStore,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Namespace of offer ids derived from `(userId, Idempotency-Key)`.
const IDEMPOTENT_OFFER_NAMESPACE: Uuid = Uuid::from_u128(0x2b7e_41c9_5d0a_4c6b_8e13_f4a5_06b7_c8d9);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SupportError {
    /// The request can never succeed as it is: a reason code of the contract.
    #[error("{}: {}", .0.code, .0.message)]
    Rejected(Rejection),
    /// The `Idempotency-Key` was used before with another request body.
    #[error("the Idempotency-Key was already used with a different request")]
    IdempotencyConflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A support agent's request to assign an offer.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignRequest {
    /// The user who gets the offer (from the path).
    pub user_id: UserId,
    /// The agent (the caller's `sub`).
    pub agent: String,
    /// The request body, its shape read.
    pub offer: SupportRequest,
    /// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assigned {
    pub offer: PersonalizedOffer,
    /// True when this is the stored result of an earlier request with the
    /// same `Idempotency-Key`.
    pub replayed: bool,
}

pub struct SupportService<S, C> {
    store: S,
    catalog: C,
    retention: chrono::Duration,
}

impl<S: SupportStore, C: CatalogReader> SupportService<S, C> {
    pub fn new(store: S, catalog: C, retention: chrono::Duration) -> Self {
        Self {
            store,
            catalog,
            retention,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn catalog(&self) -> &C {
        &self.catalog
    }

    /// Validates, merges and writes the offer at once. With an idempotency
    /// key the offer's id is derived from the user and the key, so that a
    /// retry, even one racing the first request, finds the first offer
    /// instead of writing a second.
    pub async fn assign(
        &self,
        request: &AssignRequest,
        now: DateTime<Utc>,
    ) -> Result<Assigned, SupportError> {
        let stamp = request
            .idempotency_key
            .as_ref()
            .map(|key| IdempotencyStamp {
                key: key.clone(),
                fingerprint: request.offer.fingerprint().to_owned(),
            });
        let id = match &stamp {
            Some(stamp) => idempotent_offer_id(&request.user_id, &stamp.key),
            None => PersonalizedOfferId::random(),
        };
        let result = self.build(request, id, now).await;
        let outcome = match result {
            Ok(mut offer) => {
                offer.idempotency = stamp.clone();
                match self.create(&offer).await {
                    Ok(CreateOutcome::Created) => Ok(Assigned {
                        offer,
                        replayed: false,
                    }),
                    Ok(CreateOutcome::AlreadyExists(existing)) => replay(*existing, stamp.as_ref()),
                    // DynamoDB will never store it: the agent gets a 422 with
                    // its words, like any other input that cannot be accepted.
                    Err(StoreError::Refused(detail)) => {
                        Err(SupportError::Rejected(Rejection::new(
                            ReasonCode::InvalidRow,
                            format!("DynamoDB refused the offer: {detail}"),
                        )))
                    }
                    Ok(CreateOutcome::BudgetRefused) => {
                        Err(SupportError::Rejected(Rejection::new(
                            ReasonCode::BudgetExhausted,
                            format!(
                                "campaign {} has used its offers budget",
                                offer.campaign_id.as_deref().unwrap_or_default()
                            ),
                        )))
                    }
                    Err(error) => Err(error.into()),
                }
            }
            Err(SupportError::Rejected(rejection)) => {
                // A retry of a request that succeeded gets its offer back,
                // even if the same body would no longer pass (it may have
                // expired since, or the catalog changed).
                let earlier = match &stamp {
                    Some(_) => self.store.find_offer(&request.user_id, id).await?,
                    None => None,
                };
                match earlier {
                    Some(existing) => replay(existing, stamp.as_ref()),
                    None => Err(SupportError::Rejected(rejection)),
                }
            }
            Err(other) => Err(other),
        };
        log_assign(request, &outcome);
        outcome
    }

    /// The offer's write: with its campaign's offers budget when it has one
    /// (read now; the transaction's condition enforces it), else alone. A
    /// refusal is read again once: a limit removed meanwhile is no budget.
    async fn create(&self, offer: &PersonalizedOffer) -> Result<CreateOutcome, StoreError> {
        let Some(campaign_id) = &offer.campaign_id else {
            return self.store.create_offer(offer).await;
        };
        for _ in 0..2 {
            if self.store.offers_limit(campaign_id).await?.is_none() {
                return self.store.create_offer(offer).await;
            }
            match self.store.create_budgeted_offer(offer, campaign_id).await {
                Ok(CreateOutcome::BudgetRefused) => continue,
                // Budget transactions on one campaign at once may conflict.
                Err(StoreError::Conflict(_)) => continue,
                other => return other,
            }
        }
        Ok(CreateOutcome::BudgetRefused)
    }

    async fn build(
        &self,
        request: &AssignRequest,
        id: PersonalizedOfferId,
        now: DateTime<Utc>,
    ) -> Result<PersonalizedOffer, SupportError> {
        let assignment = request
            .offer
            .assignment(&request.user_id, &request.agent, now)
            .map_err(SupportError::Rejected)?;
        let catalog = load_catalog(&self.catalog, [&assignment]).await?;
        catalog
            .offer_for(&assignment, id, now, self.retention)
            .map_err(SupportError::Rejected)
    }

    /// Revokes the user's offer (it stays, for audit). Revoking twice changes
    /// nothing.
    pub async fn revoke(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, SupportError> {
        if let Some(reason) = &revocation.reason {
            if reason.chars().count() > MAX_REASON_CHARS {
                return Err(SupportError::Rejected(Rejection::new(
                    ReasonCode::InvalidRow,
                    format!("reason is longer than {MAX_REASON_CHARS} characters"),
                )));
            }
        }
        let revoked = self
            .store
            .revoke_offer(user_id, personalized_offer_id, &revocation)
            .await?;
        let outcome = match &revoked {
            RevokeOutcome::Revoked(_) => "revoked",
            RevokeOutcome::AlreadyRevoked(_) => "already_revoked",
            RevokeOutcome::NotFound => "not_found",
        };
        tracing::info!(
            action = "revoke",
            user_id = user_id.as_str(),
            personalized_offer_id = %personalized_offer_id,
            agent = revocation.by.as_str(),
            outcome,
            "support action"
        );
        Ok(revoked)
    }

    /// The user's offers of any status, newest first.
    pub async fn list(
        &self,
        user_id: &UserId,
        page: &PageRequest,
    ) -> Result<OfferPage, StoreError> {
        self.store.list_all_offers(user_id, page).await
    }

    /// The campaign's budget (contract section 14): the limits set and what
    /// each has used; `None` for a campaign without one.
    pub async fn campaign_budget(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<(Budget, BudgetUse)>, StoreError> {
        self.store.campaign_budget(campaign_id).await
    }
}

/// The stored offer, if it was made by the same request; else a conflict.
fn replay(
    existing: PersonalizedOffer,
    stamp: Option<&IdempotencyStamp>,
) -> Result<Assigned, SupportError> {
    match stamp {
        Some(stamp) if existing.idempotency.as_ref() == Some(stamp) => Ok(Assigned {
            offer: existing,
            replayed: true,
        }),
        Some(_) => Err(SupportError::IdempotencyConflict),
        // A random v4 id that is taken: never expected, never overwritten.
        None => Err(SupportError::Store(StoreError::Refused(format!(
            "offer id {} is already taken",
            existing.personalized_offer_id
        )))),
    }
}

/// The offer id of an idempotent request: one per user and key.
pub fn idempotent_offer_id(user_id: &UserId, key: &str) -> PersonalizedOfferId {
    let name = format!("{user_id}\u{1f}{key}");
    PersonalizedOfferId::from_uuid(Uuid::new_v5(&IDEMPOTENT_OFFER_NAMESPACE, name.as_bytes()))
}

fn log_assign(request: &AssignRequest, outcome: &Result<Assigned, SupportError>) {
    let (outcome, personalized_offer_id, reason_code) = match outcome {
        Ok(assigned) if assigned.replayed => {
            ("replayed", Some(assigned.offer.personalized_offer_id), None)
        }
        Ok(assigned) => ("assigned", Some(assigned.offer.personalized_offer_id), None),
        Err(SupportError::Rejected(rejection)) => ("rejected", None, Some(rejection.code.as_str())),
        Err(SupportError::IdempotencyConflict) => ("idempotency_conflict", None, None),
        Err(SupportError::Store(err)) => (err.kind(), None, None),
    };
    tracing::info!(
        action = "assign",
        user_id = request.user_id.as_str(),
        agent = request.agent.as_str(),
        outcome,
        personalized_offer_id = personalized_offer_id.map(|id| id.to_string()),
        reason_code,
        idempotent = request.idempotency_key.is_some(),
        "support action"
    );
}
