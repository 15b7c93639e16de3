//! The always-on chooser (contract section 13): on a visit of a user, for
//! each always-on campaign active at that moment, one offer of its pool
//! chosen with the selection engine from the user's profile, written as a
//! pending row (the dispatcher makes the offer).
//!
//! The decisions are pure (`offers_domain::always_on`); this service reads
//! what they need through ports and caches:
//!
//! - campaign definitions ([`AlwaysOnStore::always_on_campaigns`]) for
//!   [`CAMPAIGNS_TTL`]; none at all only for [`NO_CAMPAIGNS_TTL`], so that
//!   the first campaign put applies within a second, and a deployment
//!   without always-on campaigns reads the campaigns table at most once a
//!   second per warm instance, not on every visit (the table also holds
//!   every planned and manual campaign's definition);
//! - each campaign's engine, built from the learning counters of its pool
//!   ([`SelectionStatsReader`]), for [`STATISTICS_TTL`] (and rebuilt at
//!   once when the campaign's version changes): the statistics a choice
//!   uses are at most that old. The visit that finds an entry stale reads
//!   it again (a plain TTL cache: Lambda freezes the process between
//!   invocations, so a background refresh would not run when it should),
//!   one at a time: visits in flight meanwhile keep the engine they have;
//! - the pool's catalog entries (config offers) for [`CATALOG_TTL`]: an
//!   offer deleted from the catalog is skipped and reported.
//!
//! The user's offers of the campaign (records and pending rows) are read
//! every visit, never cached. Exactly once: the pending row's
//! `assignmentId` is of (campaign, user, cadence window), and its put never
//! overwrites a row of the same key, so replays and concurrent visits of one
//! window converge on one offer (the dispatcher's rule of section 2).

pub mod memory;
#[cfg(test)]
mod tests;

use crate::catalog_cache::CachedCatalog;
use crate::error::StoreError;
use crate::metrics::{MetricSet, Tag};
use crate::ports::{CatalogReader, SelectionStatsReader};
use crate::profiles::AfterVisit;
use crate::stream::runner::Run;
use chrono::{DateTime, Utc};
use offers_domain::always_on::{
    bounded_context, choose, eligibility, is_visit, pending_row, AlwaysOnCampaign, HeldOffer, Skip,
};
use offers_domain::profile::ProfileContext;
use offers_domain::selection::history::utc_day;
use offers_domain::selection::Engine;
use offers_domain::Transaction;
use offers_domain::{CampaignId, OfferId, UserId};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long campaign definitions are kept (a pause applies within it).
pub const CAMPAIGNS_TTL: Duration = Duration::from_secs(30);
/// How long "no always-on campaign" is kept: shorter than the stream's
/// 1 s batching window, so a visit made after a first campaign is put is
/// almost always chosen for.
pub const NO_CAMPAIGNS_TTL: Duration = Duration::from_secs(1);
/// How long a campaign's engine (its learning statistics) is kept: the
/// contract's "within 60 seconds", with room for the counters' own delay.
pub const STATISTICS_TTL: Duration = Duration::from_secs(30);
/// How long the pool's catalog entries are kept.
pub const CATALOG_TTL: Duration = Duration::from_secs(60);

/// What a put of a pending row found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingPut {
    Written,
    /// A row of the same key is pending: left as it is.
    Exists,
}

/// The tables the chooser reads and writes, besides statistics and catalog.
pub trait AlwaysOnStore: Send + Sync {
    /// Every always-on campaign (any status); unreadable ones are left out
    /// and logged by the adapter.
    fn always_on_campaigns(
        &self,
    ) -> impl Future<Output = Result<Vec<AlwaysOnCampaign>, StoreError>> + Send;

    /// The user's offers of the campaign at `now`: offer records (any
    /// status, with whether they are live) and pending rows (live).
    fn held_offers(
        &self,
        user_id: &UserId,
        campaign_id: &CampaignId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<HeldOffer>, StoreError>> + Send;

    /// Puts the row unless a row of its key is pending.
    fn put_pending(
        &self,
        row: &Map<String, Value>,
    ) -> impl Future<Output = Result<PendingPut, StoreError>> + Send;
}

/// What a visit did in one campaign.
#[derive(Debug, Clone, PartialEq)]
pub enum CampaignOutcome {
    /// A pending row written, or found written by an earlier delivery.
    Assigned {
        campaign_id: CampaignId,
        offer_id: OfferId,
        written: bool,
    },
    Skipped {
        campaign_id: CampaignId,
        skip: Skip,
    },
    /// DynamoDB refused the row for good: logged, never retried.
    Refused {
        campaign_id: CampaignId,
        detail: String,
    },
}

/// Counts since the last [`AlwaysOnChooser::take_metrics`].
#[derive(Debug, Default)]
struct Counters {
    assigned: AtomicU64,
    existing: AtomicU64,
    skipped: AtomicU64,
    refused: AtomicU64,
    missing_offers: AtomicU64,
    not_visits: AtomicU64,
    /// Campaign visits skipped because the campaign's offers budget is used up.
    budget_exhausted: AtomicU64,
}

struct CachedEngine {
    read_at: Instant,
    version: u64,
    engine: Arc<Mutex<Engine>>,
    /// A visit is reading the statistics again: the others keep this
    /// engine meanwhile.
    refreshing: bool,
}

/// The chooser with its caches: one per warm function.
pub struct AlwaysOnChooser<A, T, C> {
    store: A,
    stats: T,
    catalog: CachedCatalog<C>,
    campaigns: Mutex<Option<(Instant, Arc<Vec<AlwaysOnCampaign>>)>>,
    engines: Mutex<HashMap<CampaignId, CachedEngine>>,
    counters: Counters,
    statistics_ttl: Duration,
    campaigns_ttl: Duration,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<A: AlwaysOnStore, T: SelectionStatsReader, C: CatalogReader> AlwaysOnChooser<A, T, C> {
    pub fn new(store: A, stats: T, catalog: C) -> Self {
        Self::with_ttls(store, stats, catalog, CAMPAIGNS_TTL, STATISTICS_TTL)
    }

    /// With other cache lifetimes (tests use zero: every visit reads).
    pub fn with_ttls(
        store: A,
        stats: T,
        catalog: C,
        campaigns_ttl: Duration,
        statistics_ttl: Duration,
    ) -> Self {
        Self {
            store,
            stats,
            catalog: CachedCatalog::new(catalog, CATALOG_TTL.min(statistics_ttl)),
            campaigns: Mutex::new(None),
            engines: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            statistics_ttl,
            campaigns_ttl,
        }
    }

    pub fn store(&self) -> &A {
        &self.store
    }

    /// Runs the campaigns on a visit whose profile context (after this
    /// visit is counted) is `context`. An error is transient: the record is
    /// retried, and what was written already is found again then.
    pub async fn on_visit(
        &self,
        transaction: &Transaction,
        context: BTreeMap<String, String>,
        run: &Run,
    ) -> Result<Vec<CampaignOutcome>, StoreError> {
        if !is_visit(transaction.occurred_at, run.now) {
            self.counters.not_visits.fetch_add(1, Ordering::Relaxed);
            return Ok(Vec::new());
        }
        let campaigns = self.campaigns(run).await?;
        let context = bounded_context(context);
        let mut outcomes = Vec::new();
        for campaign in campaigns
            .iter()
            .filter(|campaign| campaign.active_at(transaction.occurred_at))
        {
            let outcome = self.assign(campaign, transaction, &context, run).await?;
            outcome.log(transaction.user_id.as_str(), &transaction.transaction_id);
            let counter = match &outcome {
                CampaignOutcome::Assigned { written: true, .. } => &self.counters.assigned,
                CampaignOutcome::Assigned { written: false, .. } => &self.counters.existing,
                CampaignOutcome::Skipped {
                    skip: Skip::BudgetExhausted,
                    ..
                } => &self.counters.budget_exhausted,
                CampaignOutcome::Skipped { .. } => &self.counters.skipped,
                CampaignOutcome::Refused { .. } => &self.counters.refused,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn assign(
        &self,
        campaign: &AlwaysOnCampaign,
        transaction: &Transaction,
        context: &BTreeMap<String, String>,
        run: &Run,
    ) -> Result<CampaignOutcome, StoreError> {
        let campaign_id = campaign.campaign_id.clone();
        let user_id = &transaction.user_id;
        let held = run
            .call(self.store.held_offers(user_id, &campaign_id, run.now))
            .await?;
        let (window, mut excluded) = match eligibility(campaign, &held, transaction.occurred_at) {
            Ok(found) => found,
            Err(skip) => return Ok(CampaignOutcome::Skipped { campaign_id, skip }),
        };
        let pool_ids = campaign.pool_ids();
        let found = run.call(self.catalog.fetch_entries(&pool_ids)).await?;
        for (index, offer_id) in pool_ids.iter().enumerate() {
            if !found.contains_key(offer_id) {
                tracing::warn!(
                    event = "always_on_offer_missing",
                    campaign_id = %campaign_id,
                    offer_id = %offer_id,
                    "a pool offer is not in the catalog (deleted after the campaign was put): skipped"
                );
                self.counters.missing_offers.fetch_add(1, Ordering::Relaxed);
                excluded.push(index);
            }
        }
        excluded.sort_unstable();
        excluded.dedup();
        let engine = self.engine(campaign, run).await?;
        let choice = {
            let mut engine = locked(&engine);
            choose(
                &mut engine,
                campaign,
                user_id.as_str(),
                window,
                context,
                &excluded,
            )
        };
        let Some(choice) = choice else {
            return Ok(CampaignOutcome::Skipped {
                campaign_id,
                skip: Skip::NothingEligible,
            });
        };
        let Some(offer) = campaign.settings.pool.get(choice.offer) else {
            return Ok(CampaignOutcome::Skipped {
                campaign_id,
                skip: Skip::NothingEligible,
            });
        };
        let row = pending_row(
            campaign,
            offer,
            user_id.as_str(),
            transaction.occurred_at,
            window,
            &choice,
            context,
        );
        let offer_id = offer.offer_id.clone();
        match run.call(self.store.put_pending(&row)).await {
            Ok(put) => Ok(CampaignOutcome::Assigned {
                campaign_id,
                offer_id,
                written: put == PendingPut::Written,
            }),
            Err(StoreError::Refused(detail)) => Ok(CampaignOutcome::Refused {
                campaign_id,
                detail,
            }),
            Err(error) => Err(error),
        }
    }

    async fn campaigns(&self, run: &Run) -> Result<Arc<Vec<AlwaysOnCampaign>>, StoreError> {
        if let Some((read_at, campaigns)) = locked(&self.campaigns).as_ref() {
            // No campaign is kept briefly: the first campaign put applies
            // within a second, and visits do not each read the table.
            let ttl = if campaigns.is_empty() {
                self.campaigns_ttl.min(NO_CAMPAIGNS_TTL)
            } else {
                self.campaigns_ttl
            };
            if read_at.elapsed() < ttl {
                return Ok(Arc::clone(campaigns));
            }
        }
        let campaigns = Arc::new(run.call(self.store.always_on_campaigns()).await?);
        *locked(&self.campaigns) = Some((Instant::now(), Arc::clone(&campaigns)));
        Ok(campaigns)
    }

    async fn engine(
        &self,
        campaign: &AlwaysOnCampaign,
        run: &Run,
    ) -> Result<Arc<Mutex<Engine>>, StoreError> {
        if let Some(cached) = locked(&self.engines).get_mut(&campaign.campaign_id) {
            if cached.version == campaign.version {
                // One refresh at a time: the first visit that finds the
                // engine stale reads the statistics again; the visits in
                // flight meanwhile keep the engine they have (its
                // statistics older by one read at most), rather than each
                // reading and building an engine and its mixtures of its own.
                if cached.read_at.elapsed() < self.statistics_ttl || cached.refreshing {
                    return Ok(Arc::clone(&cached.engine));
                }
                cached.refreshing = true;
            }
        }
        let built = match run
            .call(self.stats.learning_counters(&campaign.pool_ids()))
            .await
        {
            // The definition was checked when it was put: an engine error
            // here is a stored campaign no engine can run, not a transient one.
            Ok(read) => campaign
                .engine(&read.counters, utc_day(run.now.timestamp()))
                .map_err(|err| {
                    StoreError::Corrupt(format!("campaign {}: {err}", campaign.campaign_id))
                }),
            Err(error) => Err(error),
        };
        let engine = match built {
            Ok(engine) => Arc::new(Mutex::new(engine)),
            Err(error) => {
                // The next visit tries again.
                if let Some(cached) = locked(&self.engines).get_mut(&campaign.campaign_id) {
                    cached.refreshing = false;
                }
                return Err(error);
            }
        };
        let mut engines = locked(&self.engines);
        // Campaigns come and go: drop engines of campaigns not seen for long.
        engines.retain(|_, cached| cached.read_at.elapsed() < self.statistics_ttl * 10);
        engines.insert(
            campaign.campaign_id.clone(),
            CachedEngine {
                read_at: Instant::now(),
                version: campaign.version,
                engine: Arc::clone(&engine),
                refreshing: false,
            },
        );
        Ok(engine)
    }

    /// The counts since the last call, as metrics (`always_on.*`).
    pub fn take_metrics(&self, now: DateTime<Utc>) -> MetricSet {
        let mut set = MetricSet::new(now);
        let counters = &self.counters;
        for (name, metric, counter) in [
            ("assigned", "AlwaysOnAssigned", &counters.assigned),
            ("existing", "AlwaysOnExisting", &counters.existing),
            ("skipped", "AlwaysOnSkipped", &counters.skipped),
            ("refused", "AlwaysOnRefused", &counters.refused),
            (
                "budget_exhausted",
                "AlwaysOnBudgetExhausted",
                &counters.budget_exhausted,
            ),
            ("not_a_visit", "AlwaysOnNotVisits", &counters.not_visits),
        ] {
            set.count(
                metric,
                "always_on.visits",
                counter.swap(0, Ordering::Relaxed),
                vec![Tag::new("outcome", name)],
            );
        }
        set.count(
            "AlwaysOnMissingOffers",
            "always_on.missing_offers",
            counters.missing_offers.swap(0, Ordering::Relaxed),
            Vec::new(),
        );
        set
    }
}

impl<A: AlwaysOnStore, T: SelectionStatsReader, C: CatalogReader> AfterVisit
    for AlwaysOnChooser<A, T, C>
{
    async fn after_visit(
        &self,
        transaction: &Transaction,
        context: &ProfileContext,
        run: &Run,
    ) -> Result<(), StoreError> {
        self.on_visit(transaction, context.attributes(), run)
            .await
            .map(|_| ())
    }
}

impl CampaignOutcome {
    fn log(&self, user_id: &str, transaction_id: &str) {
        match self {
            CampaignOutcome::Assigned {
                campaign_id,
                offer_id,
                written,
            } => tracing::info!(
                event = "always_on_assigned",
                campaign_id = %campaign_id,
                offer_id = %offer_id,
                user_id = %user_id,
                transaction_id = %transaction_id,
                written = *written,
                "always-on offer assigned"
            ),
            // Worth seeing: a campaign that stopped choosing for its budget.
            CampaignOutcome::Skipped {
                campaign_id,
                skip: Skip::BudgetExhausted,
            } => tracing::info!(
                event = "always_on_budget_exhausted",
                campaign_id = %campaign_id,
                user_id = %user_id,
                transaction_id = %transaction_id,
                "always-on campaign has used its offers budget: nothing chosen"
            ),
            CampaignOutcome::Skipped { campaign_id, skip } => tracing::debug!(
                event = "always_on_skipped",
                campaign_id = %campaign_id,
                user_id = %user_id,
                transaction_id = %transaction_id,
                reason = skip.name(),
                "always-on campaign assigns nothing on this visit"
            ),
            CampaignOutcome::Refused {
                campaign_id,
                detail,
            } => tracing::error!(
                event = "always_on_refused",
                campaign_id = %campaign_id,
                user_id = %user_id,
                transaction_id = %transaction_id,
                detail = %detail,
                "DynamoDB refused the always-on pending row"
            ),
        }
    }
}
