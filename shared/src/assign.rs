//! From an assignment to an offer: the one path that the dispatcher (pending
//! rows) and the support tool (agents' requests) share, so that both validate
//! and merge exactly alike.

use crate::domain::PersonalizedOfferId;
use crate::domain::Rejection;
use crate::domain::{build_offer, resolve_catalog, Assignment, CatalogEntry, PersonalizedOffer};
use crate::error::StoreError;
use crate::ports::CatalogReader;
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};

/// The catalog entries a set of assignments needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogSlice {
    pub entries: HashMap<String, CatalogEntry>,
    /// Distinct ids asked for (config offers, named templates, default templates).
    pub ids_requested: usize,
}

impl CatalogSlice {
    /// The offer record of `assignment`: config offer and template resolved
    /// and checked against each other, rules merged. A rejection carries the
    /// contract's reason code.
    pub fn offer_for(
        &self,
        assignment: &Assignment,
        personalized_offer_id: PersonalizedOfferId,
        now: DateTime<Utc>,
        retention: Duration,
    ) -> Result<PersonalizedOffer, Rejection> {
        let (config, template) = resolve_catalog(assignment, |id| self.entries.get(id))?;
        build_offer(
            assignment,
            config,
            template,
            personalized_offer_id,
            now,
            retention,
        )
    }
}

/// Fetches every config offer and template the assignments need: the
/// distinct ids together, then the config offers' default templates not yet
/// known. Two reads at most, whatever the number of assignments.
pub async fn load_catalog<'a, C: CatalogReader>(
    catalog: &C,
    assignments: impl IntoIterator<Item = &'a Assignment>,
) -> Result<CatalogSlice, StoreError> {
    let mut wanted: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for assignment in assignments {
        let offer_id = assignment.offer_id.as_str();
        for id in std::iter::once(offer_id).chain(assignment.template_id.as_deref()) {
            if seen.insert(id.to_owned()) {
                wanted.push(id.to_owned());
            }
        }
    }
    if wanted.is_empty() {
        return Ok(CatalogSlice::default());
    }
    let mut entries = fetch_each_refusal_alone(catalog, &wanted).await?;
    let default_templates: Vec<String> = entries
        .values()
        .filter_map(|entry| match entry {
            CatalogEntry::ConfigOffer(config) => config.template_id.clone(),
            _ => None,
        })
        .filter(|id| seen.insert(id.clone()))
        .collect();
    if !default_templates.is_empty() {
        entries.extend(fetch_each_refusal_alone(catalog, &default_templates).await?);
    }
    Ok(CatalogSlice {
        entries,
        ids_requested: seen.len(),
    })
}

/// Reads `ids` together. Validation keeps every id a valid key, but should
/// the store still refuse the read (a permanent error), each id is read on
/// its own so that the refusal concerns only the rows that need that id:
/// it becomes a malformed entry, which rejects them with the store's words.
/// A transient error fails the whole read: retrying can help every row.
async fn fetch_each_refusal_alone<C: CatalogReader>(
    catalog: &C,
    ids: &[String],
) -> Result<HashMap<String, CatalogEntry>, StoreError> {
    match catalog.fetch_entries(ids).await {
        Err(error) if !error.is_transient() && ids.len() > 1 => {
            let mut entries = HashMap::with_capacity(ids.len());
            for id in ids {
                match catalog.fetch_entries(std::slice::from_ref(id)).await {
                    Ok(found) => entries.extend(found),
                    Err(error) if !error.is_transient() => {
                        entries.insert(id.clone(), CatalogEntry::unreadable(id, error));
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(entries)
        }
        Err(error) if !error.is_transient() => Ok(ids
            .iter()
            .map(|id| (id.clone(), CatalogEntry::unreadable(id, &error)))
            .collect()),
        other => other,
    }
}
