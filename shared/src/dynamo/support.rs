//! The support tool's writes, and its reads of offers of any status.

use super::offer_item::{
    absent, created_key, key, new_offer_put, offer_to_item, owned_offer, revocation_parts,
    CREATED_INDEX, CREATED_KEY,
};
use super::offers::IndexQuery;
use super::transactions::{cancelled, condition_failed};
use super::{cancellation_error, classify, DynamoStore};
use crate::domain::campaign::{Budget, BudgetUse};
use crate::domain::CampaignId;
use crate::domain::PersonalizedOfferId;
use crate::domain::{AuditEntry, PersonalizedOffer, UserId};
use crate::error::StoreError;
use crate::ports::{
    CreateOutcome, OfferPage, PageRequest, Revocation, RevokeOutcome, SupportStore,
};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

impl SupportStore for DynamoStore {
    async fn create_offer(&self, offer: &PersonalizedOffer) -> Result<CreateOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(self.tables.loyalty_offers()?)
            .set_item(Some(offer_to_item(offer)?))
            .condition_expression(absent())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(CreateOutcome::Created),
            Err(err) => err,
        };
        let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            return Err(classify(&err));
        };
        let (user_id, id) = (&offer.user_id, offer.personalized_offer_id);
        let existing = match failed.item() {
            Some(item) => Some(owned_offer(item.clone(), user_id, id)?),
            None => self.read_offer(user_id, id, true).await?,
        };
        match existing {
            Some(existing) => Ok(CreateOutcome::AlreadyExists(Box::new(existing))),
            // Taken a moment ago, gone now (its TTL): let the caller retry.
            None => Err(StoreError::Unavailable(format!(
                "offer {id} was there and is gone; retry"
            ))),
        }
    }

    async fn create_budgeted_offer(
        &self,
        offer: &PersonalizedOffer,
        campaign_id: &CampaignId,
    ) -> Result<CreateOutcome, StoreError> {
        let put = new_offer_put(self.tables.loyalty_offers()?, offer_to_item(offer)?)?;
        let budget = self.offers_budget_use(campaign_id)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(budget).build())
            .send()
            .await;
        match cancelled(result, classify)? {
            None => Ok(CreateOutcome::Created),
            Some(reasons) if condition_failed(&reasons, 0) => {
                let (user_id, id) = (&offer.user_id, offer.personalized_offer_id);
                match self.read_offer(user_id, id, true).await? {
                    Some(existing) => Ok(CreateOutcome::AlreadyExists(Box::new(existing))),
                    None => Err(StoreError::Unavailable(format!(
                        "offer {id} was there and is gone; retry"
                    ))),
                }
            }
            Some(reasons) if condition_failed(&reasons, 1) => Ok(CreateOutcome::BudgetRefused),
            Some(reasons) => Err(cancellation_error(&reasons)),
        }
    }

    async fn campaign_budget(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<(Budget, BudgetUse)>, StoreError> {
        self.campaign_budget_use(campaign_id).await
    }

    async fn offers_limit(&self, campaign_id: &CampaignId) -> Result<Option<u64>, StoreError> {
        Ok(self
            .campaign_budget(campaign_id)
            .await?
            .and_then(|budget| budget.offers))
    }

    async fn find_offer(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
    ) -> Result<Option<PersonalizedOffer>, StoreError> {
        let user_id = user_id.as_str();
        self.read_offer(user_id, personalized_offer_id, true).await
    }

    async fn revoke_offer(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        revocation: &Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let user_id = user_id.as_str();
        let entry = AuditEntry {
            action: "revoked".into(),
            by: revocation.by.clone(),
            at: revocation.at,
            reason: revocation.reason.clone(),
        };
        let update = self
            .client
            .update_item()
            .table_name(self.tables.loyalty_offers()?)
            .set_key(Some(key(user_id, personalized_offer_id)));
        let result = revocation_parts(update, &entry)?
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                let offer = owned_offer(item, user_id, personalized_offer_id)?;
                return Ok(RevokeOutcome::Revoked(Box::new(offer)));
            }
            Err(err) => err,
        };
        let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            return Err(classify(&err));
        };
        let current = match failed.item() {
            Some(item) => Some(owned_offer(item.clone(), user_id, personalized_offer_id)?),
            None => {
                self.read_offer(user_id, personalized_offer_id, true)
                    .await?
            }
        };
        match current {
            None => Ok(RevokeOutcome::NotFound),
            Some(offer) if offer.revoked_at.is_some() => {
                Ok(RevokeOutcome::AlreadyRevoked(Box::new(offer)))
            }
            // Neither missing nor revoked, yet the condition failed: it
            // changed under us; a retry sees it as it is now.
            Some(_) => Err(StoreError::Conflict(format!(
                "offer {personalized_offer_id} changed during revocation; retry"
            ))),
        }
    }

    async fn list_all_offers(
        &self,
        user_id: &UserId,
        page: &PageRequest,
    ) -> Result<OfferPage, StoreError> {
        let user_id = user_id.as_str();
        self.query_page(
            user_id,
            page,
            IndexQuery {
                index: CREATED_INDEX,
                key_name: CREATED_KEY,
                key_of: created_key,
                newest_first: true,
                filter: None,
            },
            |_| true,
        )
        .await
    }
}
