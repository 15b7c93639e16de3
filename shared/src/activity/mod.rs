//! The app's activity on its offers: redemptions at checkout, their voiding
//! when an order is cancelled, and offer events (viewed, clicked).
//!
//! Every change is one conditional write on the caller's own offer item (an
//! event also puts its id in the events table, in the same transaction), so
//! that a retry or a race changes the offer once. A redemption is first
//! written without a read, its condition holding all that the decision
//! needs (the offer active, the rules met, a use left, the order new); when
//! the condition fails, the offer as it was then (`ALL_OLD`) is decided by
//! the pure `decide_redemption`, and a second write, knowing the offer,
//! guards only what can race (the count, the revocation, the order).

pub mod memory;
#[cfg(test)]
mod tests;

use crate::domain::{
    decide_redemption, OfferEvent, OfferEventRequest, PersonalizedOffer, RedeemDecision,
    RedeemRefusal, Redemption, RedemptionRequest,
};
use crate::error::StoreError;
use crate::ports::{ActivityStore, ActivityWrite, CatalogReader, EventWrite};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// Writes of one redemption tried before giving up with a 503: the first,
/// without a read, fails whenever the offer is not as it expects (records
/// already there, a second of the time window's edges); the second is
/// decided on the offer that first write returned, and fails only if the
/// offer changed in between (its first record created by another order).
const REDEEM_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActivityError {
    /// The caller has no such offer (or no such redemption of it).
    #[error("{0}")]
    NotFound(&'static str),
    /// The order cannot use the offer.
    #[error(transparent)]
    Refused(#[from] RedeemRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A redemption and the offer it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Redeemed {
    pub offer: PersonalizedOffer,
    pub redemption: Redemption,
    /// False when the order had used the offer before: nothing changed.
    pub new: bool,
}

pub struct ActivityService<S, C> {
    store: S,
    catalog: C,
    event_retention: Duration,
}

impl<S: ActivityStore, C: CatalogReader> ActivityService<S, C> {
    /// `event_retention`: how long an event id is remembered (a duplicate
    /// later than that would count again).
    pub fn new(store: S, catalog: C, event_retention: Duration) -> Self {
        Self {
            store,
            catalog,
            event_retention,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn catalog(&self) -> &C {
        &self.catalog
    }

    /// Uses the caller's offer for an order; the same order again returns
    /// the first redemption, voided or not, with no second use.
    pub async fn redeem(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
        request: &RedemptionRequest,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, ActivityError> {
        let outcome = self
            .try_redeem(user_id, personalized_offer_id, request, now)
            .await;
        let (outcome_name, code) = match &outcome {
            Ok(redeemed) if redeemed.new => ("redeemed", None),
            Ok(_) => ("replayed", None),
            Err(ActivityError::NotFound(_)) => ("not_found", None),
            Err(ActivityError::Refused(refusal)) => ("refused", Some(refusal.code())),
            Err(ActivityError::Store(err)) => (err.kind(), None),
        };
        tracing::info!(
            action = "redeem",
            user_id,
            personalized_offer_id = %personalized_offer_id,
            order_id = request.order_id.as_str(),
            outcome = outcome_name,
            code,
            "offer activity"
        );
        outcome
    }

    async fn try_redeem(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
        request: &RedemptionRequest,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, ActivityError> {
        let redemption = Redemption::of(personalized_offer_id, request, now);
        // First without a read: the write's condition holds everything the
        // decision needs. When it fails, the offer as it was decides.
        let mut known: Option<PersonalizedOffer> = None;
        for _ in 0..REDEEM_ATTEMPTS {
            if let Some(offer) = known.take() {
                match decide_redemption(&offer, request, now) {
                    RedeemDecision::Replay(redemption) => {
                        return Ok(Redeemed {
                            offer,
                            redemption,
                            new: false,
                        })
                    }
                    RedeemDecision::Refused(refusal) => return Err(refusal.into()),
                    RedeemDecision::Redeem => known = Some(offer),
                }
            }
            let written = self
                .store
                .redeem(user_id, personalized_offer_id, known.as_ref(), &redemption)
                .await?;
            match written {
                ActivityWrite::Written(offer) => {
                    return Ok(Redeemed {
                        offer: *offer,
                        redemption,
                        new: true,
                    })
                }
                ActivityWrite::NotWritten(None) => {
                    return Err(ActivityError::NotFound("no such offer"))
                }
                ActivityWrite::NotWritten(Some(current)) => known = Some(*current),
            }
        }
        Err(StoreError::Conflict(format!(
            "offer {personalized_offer_id} kept changing while being redeemed; retry"
        ))
        .into())
    }

    /// Voids the order's redemption and gives its use back; voiding again
    /// changes nothing.
    pub async fn void(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, ActivityError> {
        let written = self
            .store
            .void_redemption(user_id, personalized_offer_id, order_id, now)
            .await;
        let (offer, new) = match written? {
            ActivityWrite::Written(offer) => (*offer, true),
            ActivityWrite::NotWritten(Some(offer)) => (*offer, false),
            ActivityWrite::NotWritten(None) => {
                return Err(ActivityError::NotFound("no such offer"))
            }
        };
        let redemption = match offer.redemptions.get(order_id) {
            Some(redemption) if redemption.voided_at.is_some() => redemption.clone(),
            Some(_) => {
                return Err(StoreError::Conflict(format!(
                "the redemption of offer {personalized_offer_id} changed while being voided; retry"
            ))
                .into())
            }
            None => {
                return Err(ActivityError::NotFound(
                    "no redemption of this offer for that order",
                ))
            }
        };
        tracing::info!(
            action = "void",
            user_id,
            personalized_offer_id = %personalized_offer_id,
            order_id,
            outcome = if new { "voided" } else { "already_voided" },
            "offer activity"
        );
        Ok(Redeemed {
            offer,
            redemption,
            new,
        })
    }

    /// Records an event of the caller's offer once; a duplicate is accepted
    /// and changes nothing.
    pub async fn record_event(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
        request: OfferEventRequest,
        now: DateTime<Utc>,
    ) -> Result<EventWrite, ActivityError> {
        let event = OfferEvent {
            personalized_offer_id,
            event_id: request.event_id,
            event_type: request.event_type,
            received_at: now,
        };
        // Dates are years 0001-9999 and the retention at most ten years.
        let ttl = now
            .checked_add_signed(self.event_retention)
            .map_or(i64::MAX, |at| at.timestamp());
        let written = self.store.record_event(user_id, &event, ttl).await?;
        tracing::info!(
            action = "event",
            user_id,
            personalized_offer_id = %personalized_offer_id,
            event_id = %request.event_id,
            event_type = request.event_type.as_str(),
            outcome = match written {
                EventWrite::Recorded => "recorded",
                EventWrite::Duplicate => "duplicate",
                EventWrite::NoSuchOffer => "not_found",
            },
            "offer activity"
        );
        match written {
            EventWrite::NoSuchOffer => Err(ActivityError::NotFound("no such offer")),
            other => Ok(other),
        }
    }
}
