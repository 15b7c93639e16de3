//! The app's lookup of its own offers (contract section 5): one offer by id,
//! whatever its status, or a page of those neither expired nor revoked.
//! Every read is keyed by the caller, so another user's offer is never even
//! read, and missing and someone else's are the same [`LookupError::NotFound`].
//! The handler reads the request (caller, id, limit, cursor) into a
//! [`LookupRequest`]; it turns the offers into the contract's JSON.

#[cfg(test)]
mod tests;

use crate::domain::PersonalizedOfferId;
use crate::domain::{PersonalizedOffer, UserId};
use crate::error::StoreError;
use crate::ports::{CatalogReader, ListPosition, OfferReader, PageRequest};

/// Page size when the request gives no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 100;

/// What the caller asks for, read from the request.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupRequest {
    /// One of the caller's offers.
    Offer {
        user_id: UserId,
        personalized_offer_id: PersonalizedOfferId,
    },
    /// A page of the caller's current offers.
    Page { user_id: UserId, page: PageRequest },
}

/// What the lookup answers.
#[derive(Debug, Clone, PartialEq)]
pub enum LookedUp {
    Offer(Box<PersonalizedOffer>),
    Page {
        offers: Vec<PersonalizedOffer>,
        /// Where the next page starts; `None` on the last page.
        next: Option<ListPosition>,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LookupError {
    /// The caller has no such offer (it may be someone else's).
    #[error("no such offer")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The lookup's dependencies: the offers, and the catalog the handler reads
/// for the offers' names and images.
pub struct LookupService<R, C> {
    offers: R,
    catalog: C,
}

impl<R: OfferReader, C: CatalogReader> LookupService<R, C> {
    pub fn new(offers: R, catalog: C) -> Self {
        Self { offers, catalog }
    }

    pub fn offers(&self) -> &R {
        &self.offers
    }

    pub fn catalog(&self) -> &C {
        &self.catalog
    }

    /// Answers one request with the caller's own offers only.
    pub async fn look_up(&self, request: &LookupRequest) -> Result<LookedUp, LookupError> {
        match request {
            LookupRequest::Offer {
                user_id,
                personalized_offer_id,
            } => self
                .offers
                .get_offer(user_id, *personalized_offer_id)
                .await?
                .map(|offer| LookedUp::Offer(Box::new(offer)))
                .ok_or(LookupError::NotFound),
            LookupRequest::Page { user_id, page } => {
                let page = self.offers.list_offers(user_id, page).await?;
                Ok(LookedUp::Page {
                    offers: page.offers,
                    next: page.next,
                })
            }
        }
    }
}
