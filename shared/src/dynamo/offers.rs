//! The app's reads of the loyalty offers table, always keyed by the caller;
//! and the operators' count of the whole table.

use super::errors::CallError;
use super::items::{text, text_of};
use super::offer_item::{
    self, current_filter, offer_from_item, partition_condition, rank_key, start_key, RANK_INDEX,
    RANK_KEY,
};
use super::table::DynamoTable;
use super::{classify, DynamoStore};
use crate::domain::PersonalizedOfferId;
use crate::domain::{OfferStatus, PersonalizedOffer, UserId};
use crate::error::StoreError;
use crate::ports::{ListPosition, OfferPage, OfferReader, PageRequest};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Each Query asks for at least this many items. Expired and revoked offers
/// (kept until their TTL) are dropped by the filter after they count toward
/// `Limit`, so asking for only what is still wanted would cost round trips.
const MIN_QUERY_LIMIT: usize = 25;

/// Keeps what may still be current: items whose `expiryDate` is after the
/// cutoff. The stored dates are RFC 3339 UTC text, whole seconds or with a
/// fraction; a cutoff one second before `now`, in whole seconds, never drops
/// a current offer whatever its fraction (`.` sorts before `Z`). The exact
/// check is `PersonalizedOffer::status` on what comes back.
fn expiry_cutoff(now: DateTime<Utc>) -> String {
    (now - Duration::seconds(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn is_current(offer: &PersonalizedOffer, now: DateTime<Utc>) -> bool {
    matches!(
        offer.status(now),
        OfferStatus::Active | OfferStatus::Scheduled
    )
}

impl OfferReader for DynamoStore {
    async fn get_offer(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
    ) -> Result<Option<PersonalizedOffer>, StoreError> {
        let user_id = user_id.as_str();
        self.read_offer(user_id, personalized_offer_id, false).await
    }

    async fn list_offers(
        &self,
        user_id: &UserId,
        page: &PageRequest,
    ) -> Result<OfferPage, StoreError> {
        let user_id = user_id.as_str();
        let now = page.now;
        self.query_page(
            user_id,
            page,
            IndexQuery {
                index: RANK_INDEX,
                key_name: RANK_KEY,
                key_of: rank_key,
                newest_first: false,
                // Expired and revoked offers stay until their TTL: skip them.
                filter: Some((current_filter(), text(expiry_cutoff(now)))),
            },
            |offer| is_current(offer, now),
        )
        .await
    }
}

/// How to read one user's list from an index of the loyalty offers table.
pub(super) struct IndexQuery {
    pub index: &'static str,
    /// The index's sort key attribute, and how it is computed from an offer.
    pub key_name: &'static str,
    pub key_of: fn(&PersonalizedOffer) -> String,
    pub newest_first: bool,
    /// A filter expression and the value of its `:cutoff`.
    pub filter: Option<(String, AttributeValue)>,
}

impl DynamoStore {
    /// One page of `user_id`'s offers from an index, resuming after
    /// `page.after`, keeping the offers `keep` accepts. Follows DynamoDB's
    /// pages until the page is full or the index ends. A loop, not the SDK's
    /// paginator: each Query asks only for what is still wanted (a paginator
    /// sends one `Limit` for every page), and the cursor is the last offer
    /// kept, not DynamoDB's `LastEvaluatedKey`.
    pub(super) async fn query_page(
        &self,
        user_id: &str,
        page: &PageRequest,
        query: IndexQuery,
        keep: impl Fn(&PersonalizedOffer) -> bool,
    ) -> Result<OfferPage, StoreError> {
        let limit = page.limit.max(1);
        let mut start = page
            .after
            .as_ref()
            .map(|position| start_key(user_id, query.key_name, position));
        // One more than asked for tells whether more remain.
        let mut found: Vec<(PersonalizedOffer, String)> = Vec::with_capacity(limit + 1);
        loop {
            let wanted = limit + 1 - found.len();
            let mut values = HashMap::from([(":user".to_owned(), text(user_id))]);
            let filter = query.filter.as_ref().map(|(expression, cutoff)| {
                values.insert(":cutoff".to_owned(), cutoff.clone());
                expression.clone()
            });
            // Filtered-out items count toward Limit: ask for more then.
            let asked = if filter.is_some() {
                wanted.max(MIN_QUERY_LIMIT)
            } else {
                wanted
            };
            let output = self
                .client
                .query()
                .table_name(self.tables.loyalty_offers()?)
                .index_name(query.index)
                .key_condition_expression(partition_condition())
                .set_filter_expression(filter)
                .set_expression_attribute_values(Some(values))
                .scan_index_forward(!query.newest_first)
                .limit(i32::try_from(asked).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|err| classify(&err))?;
            for item in output.items.unwrap_or_default() {
                let stored_key = match item.get(query.key_name) {
                    Some(AttributeValue::S(key)) => Some(key.clone()),
                    _ => None,
                };
                match offer_from_item(item) {
                    Ok(offer) if keep(&offer) => {
                        let key = stored_key.unwrap_or_else(|| (query.key_of)(&offer));
                        found.push((offer, key));
                    }
                    Ok(_) => {}
                    // One bad item must not hide the user's other offers.
                    Err(err) => tracing::error!(error = %err, "offer item skipped"),
                }
                if found.len() > limit {
                    break;
                }
            }
            if found.len() > limit {
                found.truncate(limit);
                let next = found.last().map(|(offer, key)| ListPosition {
                    index_key: key.clone(),
                    personalized_offer_id: offer.personalized_offer_id,
                });
                return Ok(OfferPage {
                    offers: found.into_iter().map(|(offer, _)| offer).collect(),
                    next,
                });
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => {
                    return Ok(OfferPage {
                        offers: found.into_iter().map(|(offer, _)| offer).collect(),
                        next: None,
                    })
                }
            }
        }
    }
}

/// How many offers, by source, and how many of them are revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferCounts {
    pub total: u64,
    /// `campaign`, `support` (an item without a source counts as `unknown`).
    pub by_source: BTreeMap<String, u64>,
    pub revoked: u64,
}

/// The loyalty offers table as operators see it: whole, not one user's.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct LoyaltyOffersTable {
    table: DynamoTable,
}

impl LoyaltyOffersTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            table: DynamoTable::new(client, name),
        }
    }

    pub fn name(&self) -> &str {
        self.table.name()
    }

    /// Counts every offer (Scan of `source` and `revokedAt`, every page).
    pub async fn counts(&self) -> Result<OfferCounts, CallError> {
        let mut counts = OfferCounts::default();
        let mut items = self
            .table
            .scan(&[offer_item::SOURCE, offer_item::REVOKED_AT]);
        while let Some(item) = items.try_next().await? {
            counts.total += 1;
            let source = text_of(&item, offer_item::SOURCE)
                .unwrap_or("unknown")
                .to_owned();
            *counts.by_source.entry(source).or_default() += 1;
            if item.contains_key(offer_item::REVOKED_AT) {
                counts.revoked += 1;
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TableNames;
    use crate::domain::dates::{format_timestamp, parse_timestamp};
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).expect("timestamp")
    }

    fn store(rules: &[&Rule]) -> DynamoStore {
        let client: Client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |config| {
            config.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        });
        DynamoStore::new(
            client,
            TableNames {
                loyalty_offers: Some("offers".into()),
                catalog: Some("catalog".into()),
                ..TableNames::default()
            },
        )
    }

    fn offer_item(
        user_id: &str,
        id: PersonalizedOfferId,
        rank: i64,
        expiry: &str,
    ) -> HashMap<String, AttributeValue> {
        let offer = json!({
            "personalizedOfferId": id, "userId": user_id, "offerId": "co-1", "templateId": "tpl-1",
            "rules": {}, "startDate": "2024-01-01T00:00:00Z", "expiryDate": expiry, "rank": rank,
            "source": "campaign", "createdAt": "2024-01-01T00:00:00Z", "ttl": 0
        });
        let offer: PersonalizedOffer = serde_json::from_value(offer).expect("offer");
        super::super::offer_to_item(&offer).expect("item")
    }

    #[test]
    fn the_cutoff_never_drops_a_current_offer() {
        let now = at("2030-05-05T10:00:00.400Z");
        let cutoff = expiry_cutoff(now);
        assert_eq!(cutoff, "2030-05-05T09:59:59Z");
        for expiry in [
            "2030-05-05T10:00:00.500Z",
            "2030-05-05T10:00:01Z",
            "2031-01-01T00:00:00Z",
        ] {
            assert!(format_timestamp(at(expiry)) > cutoff, "{expiry} kept");
        }
        for expiry in [
            "2030-05-05T09:59:59Z",
            "2030-05-05T09:59:58.999Z",
            "2029-01-01T00:00:00Z",
        ] {
            assert!(format_timestamp(at(expiry)) <= cutoff, "{expiry} filtered");
        }
    }

    #[tokio::test]
    async fn get_reads_one_key_of_the_caller() {
        let id = PersonalizedOfferId::random();
        let get = mock!(Client::get_item)
            .match_requests(move |request| {
                request.table_name() == Some("offers")
                    && request.key().map(HashMap::len) == Some(2)
                    && request.key().and_then(|key| key.get("userId")) == Some(&text("caller"))
                    && request.key().and_then(|key| key.get("personalizedOfferId"))
                        == Some(&text(id.to_string()))
            })
            .then_output(move || {
                GetItemOutput::builder()
                    .set_item(Some(offer_item("caller", id, 1, "2099-01-01T00:00:00Z")))
                    .build()
            });
        let store = store(&[&get]);
        let offer = store
            .get_offer(&UserId::try_from("caller").expect("user id"), id)
            .await
            .expect("ok")
            .expect("found");
        assert_eq!(offer.personalized_offer_id, id);
        assert_eq!(get.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_list_page_resumes_in_the_callers_partition_whatever_the_cursor() {
        let now = at("2030-01-01T00:00:00Z");
        let ids: Vec<PersonalizedOfferId> = (0..3).map(|_| PersonalizedOfferId::random()).collect();
        let items: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(rank, id)| offer_item("caller", *id, rank as i64, "2099-01-01T00:00:00Z"))
            .collect();
        let query = mock!(Client::query)
            .match_requests(|request| {
                let values = request.expression_attribute_values();
                request.index_name() == Some(RANK_INDEX)
                    && values.and_then(|v| v.get(":user")) == Some(&text("caller"))
                    && request
                        .exclusive_start_key()
                        .and_then(|key| key.get("userId"))
                        == Some(&text("caller"))
            })
            .then_output(move || {
                QueryOutput::builder()
                    .set_items(Some(items.clone()))
                    .build()
            });
        let store = store(&[&query]);
        let after = ListPosition {
            index_key: format!("1000000000#2024-01-01T00:00:00Z#{}", ids[0]),
            personalized_offer_id: ids[0],
        };
        let page = store
            .list_offers(
                &UserId::try_from("caller").expect("user id"),
                &PageRequest {
                    limit: 2,
                    after: Some(after),
                    now,
                },
            )
            .await
            .expect("page");
        assert_eq!(
            query.num_calls(),
            1,
            "one query: three items for a limit of two"
        );
        let got: Vec<PersonalizedOfferId> = page
            .offers
            .iter()
            .map(|o| o.personalized_offer_id)
            .collect();
        assert_eq!(got, ids[..2]);
        let next = page.next.expect("more remain");
        assert_eq!(next.personalized_offer_id, ids[1]);
        assert!(next.index_key.ends_with(&ids[1].to_string()));
    }

    #[tokio::test]
    async fn expired_items_are_dropped_and_pages_followed_to_the_end() {
        let now = at("2030-01-01T00:00:00Z");
        let live = PersonalizedOfferId::random();
        let first = mock!(Client::query)
            .match_requests(|request| request.exclusive_start_key().is_none())
            .then_output(|| {
                QueryOutput::builder()
                    .set_items(Some(vec![offer_item(
                        "caller",
                        PersonalizedOfferId::random(),
                        1,
                        "2030-01-01T00:00:00Z",
                    )]))
                    .set_last_evaluated_key(Some(HashMap::from([(
                        "userId".to_owned(),
                        text("caller"),
                    )])))
                    .build()
            });
        let second = mock!(Client::query)
            .match_requests(|request| request.exclusive_start_key().is_some())
            .then_output(move || {
                QueryOutput::builder()
                    .set_items(Some(vec![offer_item(
                        "caller",
                        live,
                        2,
                        "2030-01-01T00:00:00.001Z",
                    )]))
                    .build()
            });
        let store = store(&[&first, &second]);
        let page = store
            .list_offers(
                &UserId::try_from("caller").expect("user id"),
                &PageRequest {
                    limit: 5,
                    after: None,
                    now,
                },
            )
            .await
            .expect("page");
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        assert_eq!(page.offers.len(), 1);
        assert_eq!(page.offers[0].personalized_offer_id, live);
        assert_eq!(page.next, None);
    }
}
