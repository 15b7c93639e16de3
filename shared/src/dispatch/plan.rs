//! Deciding what to do with each INSERT of a batch, before any write: parse
//! and validate the row, then, with the batch's catalog, merge it into an
//! offer or reject it. Pure apart from the catalog read done by the caller.

use super::input::InsertRecord;
use crate::assign::CatalogSlice;
use crate::error::StoreError;
use crate::stream::runner::{Failure, KeyedRecord, StreamRecord};
use chrono::{DateTime, Utc};
use offers_domain::{parse_pending_row, Assignment, PersonalizedOffer, ReasonCode, Rejection};

/// What the dispatcher will do with one INSERT.
#[derive(Debug)]
pub(super) enum Plan {
    Dispatch(Box<PersonalizedOffer>),
    Reject(Rejection),
    Fail(Failure),
}

/// An INSERT with what the dispatcher will do with it: what the runner runs.
#[derive(Debug)]
pub(super) struct Planned {
    pub insert: InsertRecord,
    pub plan: Plan,
}

impl StreamRecord for Planned {
    fn event_id(&self) -> &str {
        self.insert.event_id()
    }

    fn sequence_number(&self) -> &str {
        self.insert.sequence_number()
    }

    fn created_at(&self) -> Option<DateTime<Utc>> {
        self.insert.created_at()
    }
}

impl KeyedRecord for Planned {
    fn key(&self) -> (&str, &str) {
        self.insert.key()
    }
}

/// The INSERT's row parsed into an assignment, or why it can never be one.
pub(super) fn parse_insert(
    insert: &InsertRecord,
    now: DateTime<Utc>,
) -> Result<Assignment, Rejection> {
    let attributes = insert
        .attributes
        .as_ref()
        .map_err(|problem| Rejection::new(ReasonCode::InvalidRow, problem.clone()))?;
    parse_pending_row(attributes, now)
}

/// The plan of a parsed INSERT, given the batch's catalog.
pub(super) fn plan_insert(
    insert: InsertRecord,
    assignment: Result<Assignment, Rejection>,
    catalog: &Result<CatalogSlice, StoreError>,
    now: DateTime<Utc>,
    retention: chrono::Duration,
) -> Planned {
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
    Planned { insert, plan }
}
