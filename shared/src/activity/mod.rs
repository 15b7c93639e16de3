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
//!
//! Budgets (contract section 14): an offer of a campaign with a
//! `redemptions` or `discountValue` limit is redeemed in one transaction
//! with the campaign's counters, conditional on the limits the campaign's
//! item holds; a void gives back what its record took, in the same
//! transaction as the void. Which campaigns have such a limit is read
//! through a cache (a new limit applies within its time to live); the first
//! write's condition keeps those campaigns' offers out, so an offer of any
//! other campaign still costs one write.

pub mod memory;
#[cfg(test)]
mod tests;

use crate::domain::amount::Amount;
use crate::domain::PersonalizedOfferId;
use crate::domain::{
    decide_redemption, BudgetTaken, CampaignId, OfferEvent, OfferEventRequest, OrderId,
    PersonalizedOffer, RedeemDecision, RedeemRefusal, Redemption, RedemptionRequest, UserId,
};
use crate::error::StoreError;
use crate::ports::{
    ActivityStore, ActivityWrite, CatalogReader, EventWrite, RedeemBudget, RedemptionBudgets,
    RedemptionLimits, VoidBudget, MAX_GUARDED_CAMPAIGNS,
};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// Writes of one redemption tried before giving up with a 503: the first,
/// without a read, fails whenever the offer is not as it expects (records
/// already there, a second of the time window's edges); the second is
/// decided on the offer that first write returned, and fails only if the
/// offer changed in between (its first record created by another order).
/// A budgeted offer may take two more: the transaction with its campaign,
/// and once more after the campaign's limits were read again.
const REDEEM_ATTEMPTS: usize = 5;

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

/// No campaign has a redemption budget (a deployment without
/// `CampaignsTable`, tests of other things).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBudgets;

impl RedemptionBudgets for NoBudgets {
    async fn budgeted(&self) -> Result<Arc<HashMap<CampaignId, RedemptionLimits>>, StoreError> {
        Ok(Arc::default())
    }

    async fn current(
        &self,
        _campaign_id: &CampaignId,
    ) -> Result<Option<RedemptionLimits>, StoreError> {
        Ok(None)
    }
}

pub struct ActivityService<S, C, B = NoBudgets> {
    store: S,
    catalog: C,
    budgets: B,
    event_retention: Duration,
}

impl<S: ActivityStore, C: CatalogReader> ActivityService<S, C, NoBudgets> {
    /// `event_retention`: how long an event id is remembered (a duplicate
    /// later than that would count again).
    pub fn new(store: S, catalog: C, event_retention: Duration) -> Self {
        Self::with_budgets(store, catalog, NoBudgets, event_retention)
    }
}

/// The budget a redemption of an offer works with, as far as known.
#[derive(Debug, Clone, PartialEq)]
enum OfferBudget {
    /// Not decided yet: the offer is unknown.
    Unknown,
    /// The offer's campaign's limits, as cached (`fresh`: read just now).
    Limits {
        campaign_id: CampaignId,
        limits: RedemptionLimits,
        fresh: bool,
    },
    /// No budget for this offer.
    Unbudgeted,
}

impl<S: ActivityStore, C: CatalogReader, B: RedemptionBudgets> ActivityService<S, C, B> {
    pub fn with_budgets(store: S, catalog: C, budgets: B, event_retention: Duration) -> Self {
        Self {
            store,
            catalog,
            budgets,
            event_retention,
        }
    }

    pub fn budgets(&self) -> &B {
        &self.budgets
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
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
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
            user_id = user_id.as_str(),
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
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        request: &RedemptionRequest,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, ActivityError> {
        let redemption = Redemption::of(personalized_offer_id, request, now);
        let budgeted = self.budgets.budgeted().await?;
        let mut guarded: Vec<CampaignId> = budgeted.keys().cloned().collect();
        guarded.sort();
        // First without a read: the write's condition holds everything the
        // decision needs. When it fails, the offer as it was decides. With
        // more budgeted campaigns than a condition can name, read first.
        let mut known: Option<PersonalizedOffer> = None;
        if guarded.len() > MAX_GUARDED_CAMPAIGNS {
            known = self.store.get_offer(user_id, personalized_offer_id).await?;
            if known.is_none() {
                return Err(ActivityError::NotFound("no such offer"));
            }
        }
        let mut budget = OfferBudget::Unknown;
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
                    RedeemDecision::Redeem => {}
                }
                if budget == OfferBudget::Unknown {
                    budget = match &offer.campaign_id {
                        Some(campaign_id) => match budgeted.get(campaign_id) {
                            Some(limits) => OfferBudget::Limits {
                                campaign_id: campaign_id.clone(),
                                limits: limits.clone(),
                                fresh: false,
                            },
                            None => OfferBudget::Unbudgeted,
                        },
                        None => OfferBudget::Unbudgeted,
                    };
                }
                known = Some(offer);
            }
            let mut redemption = redemption.clone();
            let written = match &budget {
                OfferBudget::Unknown => {
                    self.store
                        .redeem(
                            user_id,
                            personalized_offer_id,
                            None,
                            &redemption,
                            RedeemBudget::NoneOf(&guarded),
                        )
                        .await?
                }
                OfferBudget::Unbudgeted => {
                    self.store
                        .redeem(
                            user_id,
                            personalized_offer_id,
                            known.as_ref(),
                            &redemption,
                            RedeemBudget::NoneOf(&[]),
                        )
                        .await?
                }
                OfferBudget::Limits {
                    campaign_id,
                    limits,
                    ..
                } => {
                    redemption.budget_use = Some(taken(limits));
                    if exceeds_alone(limits, &redemption) {
                        // No write could pass: refused as the item would.
                        ActivityWrite::BudgetRefused
                    } else {
                        let written = self
                            .store
                            .redeem(
                                user_id,
                                personalized_offer_id,
                                known.as_ref(),
                                &redemption,
                                RedeemBudget::Use {
                                    campaign_id,
                                    limits,
                                },
                            )
                            .await;
                        match written {
                            // Transactions on one campaign's item at once
                            // conflict (TransactionConflict): try again.
                            Err(StoreError::Conflict(_)) => continue,
                            written => written?,
                        }
                    }
                }
            };
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
                ActivityWrite::BudgetRefused => {
                    let OfferBudget::Limits {
                        campaign_id,
                        limits,
                        fresh,
                    } = &budget
                    else {
                        return Err(StoreError::Unavailable(
                            "a budget refused a redemption that used none".into(),
                        )
                        .into());
                    };
                    // The cached limits may be stale: the item decides.
                    let current = self.budgets.current(campaign_id).await?;
                    budget = match current {
                        // Read just now and refused on these very limits.
                        Some(current) if *fresh && current == *limits => {
                            return Err(RedeemRefusal::BudgetExhausted(exhausted_message(
                                campaign_id,
                                limits,
                            ))
                            .into())
                        }
                        Some(current) => OfferBudget::Limits {
                            campaign_id: campaign_id.clone(),
                            limits: current,
                            fresh: true,
                        },
                        // The definition (or its limits) is gone: no budget.
                        None => OfferBudget::Unbudgeted,
                    };
                }
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
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        order_id: &OrderId,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, ActivityError> {
        let (offer, new) = self
            .void_once(user_id, personalized_offer_id, order_id, now)
            .await?;
        let redemption = match offer.redemptions.get(order_id.as_str()) {
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
            user_id = user_id.as_str(),
            personalized_offer_id = %personalized_offer_id,
            order_id = order_id.as_str(),
            outcome = if new { "voided" } else { "already_voided" },
            "offer activity"
        );
        Ok(Redeemed {
            offer,
            redemption,
            new,
        })
    }

    /// The void's write: first for a record that took no budget (one
    /// write); for one that did, the void and the give-back in one
    /// transaction; without the campaign any more, the void alone.
    async fn void_once(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        order_id: &OrderId,
        now: DateTime<Utc>,
    ) -> Result<(PersonalizedOffer, bool), ActivityError> {
        let void = |budget| {
            self.store
                .void_redemption(user_id, personalized_offer_id, order_id, now, budget)
        };
        let offer = match void(VoidBudget::Untouched).await? {
            ActivityWrite::NotWritten(Some(offer)) => offer,
            other => return void_outcome(other),
        };
        let record = offer
            .redemptions
            .get(order_id.as_str())
            .filter(|record| record.voided_at.is_none());
        let (Some(campaign_id), Some(record)) = (&offer.campaign_id, record) else {
            return Ok((*offer, false));
        };
        let Some(taken) = &record.budget_use else {
            return Ok((*offer, false));
        };
        let written = void(VoidBudget::GiveBack {
            campaign_id,
            taken,
            discount: &record.discount,
        })
        .await?;
        match written {
            // The campaign is gone: nothing to give back to.
            ActivityWrite::BudgetRefused => void_outcome(void(VoidBudget::Forfeit).await?),
            other => void_outcome(other),
        }
    }

    /// Records an event of the caller's offer once; a duplicate is accepted
    /// and changes nothing.
    pub async fn record_event(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
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
            user_id = user_id.as_str(),
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

/// What a redemption takes from a budget with `limits`.
fn taken(limits: &RedemptionLimits) -> BudgetTaken {
    BudgetTaken {
        redemptions: limits.redemptions.is_some(),
        discount_value: limits.discount_value.is_some(),
    }
}

/// Whether the redemption alone exceeds a limit (a 0 limit, a discount
/// above the whole discountValue limit).
fn exceeds_alone(limits: &RedemptionLimits, redemption: &Redemption) -> bool {
    limits.redemptions == Some(0)
        || limits
            .discount_value
            .is_some_and(|limit| discount_of(redemption) > limit)
}

/// The redemption's discount in ten-thousandths (the API accepted it as an
/// amount; anything else counts as the largest, refused by any limit).
pub fn discount_of(redemption: &Redemption) -> u64 {
    Amount::parse(&redemption.discount.to_string()).map_or(u64::MAX, Amount::ten_thousandths)
}

fn exhausted_message(campaign_id: &str, limits: &RedemptionLimits) -> String {
    let mut parts = Vec::new();
    if let Some(limit) = limits.redemptions {
        parts.push(format!("redemptions limit {limit}"));
    }
    if let Some(limit) = limits.discount_value {
        parts.push(format!(
            "discountValue limit {}",
            crate::domain::amount::decimal_text(limit)
        ));
    }
    format!(
        "campaign {campaign_id} has no use left under its {}",
        parts.join(" and ")
    )
}

/// A void's write as the service answers it: the offer, and whether this
/// call voided.
fn void_outcome(written: ActivityWrite) -> Result<(PersonalizedOffer, bool), ActivityError> {
    match written {
        ActivityWrite::Written(offer) => Ok((*offer, true)),
        ActivityWrite::NotWritten(Some(offer)) => Ok((*offer, false)),
        ActivityWrite::NotWritten(None) => Err(ActivityError::NotFound("no such offer")),
        ActivityWrite::BudgetRefused => Err(StoreError::Conflict(
            "the campaign of the redemption changed while being voided; retry".into(),
        )
        .into()),
    }
}
