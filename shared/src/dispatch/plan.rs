//! Deciding what to do with each INSERT of a batch, before any write: parse
//! and validate the row, then, with the batch's catalog, merge it into an
//! offer or reject it. Pure apart from the catalog read done by the caller.

use super::input::InsertRecord;
use super::report::Failure;
use crate::assign::CatalogSlice;
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use offers_domain::{parse_pending_row, Assignment, PersonalizedOffer, ReasonCode, Rejection};

/// What the dispatcher will do with one INSERT.
#[derive(Debug)]
pub(super) enum Plan {
    Dispatch(Box<PersonalizedOffer>),
    Reject(Rejection),
    Fail(Failure),
}

/// Each INSERT with its parsed assignment (or why it can never be one).
pub(super) type Parsed<'a> = Vec<(usize, &'a InsertRecord, Result<Assignment, Rejection>)>;

/// Parses every INSERT's row.
pub(super) fn parse_inserts<'a>(
    inserts: &[(usize, &'a InsertRecord)],
    now: DateTime<Utc>,
) -> Parsed<'a> {
    inserts
        .iter()
        .map(|(index, insert)| (*index, *insert, parse_insert(insert, now)))
        .collect()
}

/// The plan of every parsed INSERT, given the batch's catalog.
pub(super) fn plan_batch<'a>(
    parsed: Parsed<'a>,
    catalog: &Result<CatalogSlice, StoreError>,
    now: DateTime<Utc>,
    retention: chrono::Duration,
) -> Vec<(usize, &'a InsertRecord, Plan)> {
    parsed
        .into_iter()
        .map(|(index, insert, assignment)| {
            let plan = match (assignment, catalog) {
                (Err(rejection), _) => Plan::Reject(rejection),
                (Ok(_), Err(error)) => Plan::Fail(Failure::Catalog(error.clone())),
                (Ok(assignment), Ok(catalog)) => {
                    match catalog.offer_for(&assignment, insert.offer_id(), now, retention) {
                        Ok(offer) => Plan::Dispatch(Box::new(offer)),
                        Err(rejection) => Plan::Reject(rejection),
                    }
                }
            };
            (index, insert, plan)
        })
        .collect()
}

fn parse_insert(insert: &InsertRecord, now: DateTime<Utc>) -> Result<Assignment, Rejection> {
    let attributes = insert
        .attributes
        .as_ref()
        .map_err(|problem| Rejection::new(ReasonCode::InvalidRow, problem.clone()))?;
    parse_pending_row(attributes, now)
}
