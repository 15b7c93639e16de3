//! The statistics service: each INSERT or MODIFY of an offer item ends as
//! exactly one of applied, duplicate, no change, not counted, refused or
//! failed; the batch's deltas are summed per counter and written with one
//! marker per record in as few transactions as fit (the runner's per-batch
//! hook, [`BatchHandler`]). After the batch, the budgets of the campaigns
//! whose offers it changed are read once, for the budget alarm's metric.

use super::image::{image_campaign_id, read_offer_image};
use super::input::{ChangeRecord, StatsInput};
use crate::error::StoreError;
use crate::ports::{ApplyOutcome, CampaignBudgetsReader, CampaignStatsStore, StatsUnit};
use crate::stream::runner::{
    run_whole_batch, BatchHandler, BatchReport, Classified, Failure, Outcome, OutcomeKind, Run,
};
use crate::stream::Input;
use chrono::Utc;
use offers_domain::campaign::BudgetLimit;
use offers_domain::campaign_stats::{
    aggregate, campaign_report, record_deltas, CampaignReport, CounterKey, Deltas, StatsProblem,
    MAX_STATS_ID_BYTES,
};
use offers_domain::CampaignId;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Markers are stored under `applied#<eventID>` (and `…#<part>`).
pub const MARKER_PREFIX: &str = "applied#";
/// DynamoDB's limit on the items of one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// A record touching more counters than this is written in parts, each with
/// its own marker (a record touches 3 to 20 in practice: campaign, arm, days
/// of its redemptions, learning counters).
pub const MAX_UNIT_COUNTERS: usize = 49;
/// Longer stream event ids are not AWS's (32 hex digits): such a record is unusable.
const MAX_EVENT_ID_BYTES: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSettings {
    /// Tries of a transaction that conflicts with another invocation's (or is
    /// throttled) before its records are reported failed.
    pub conflict_attempts: u32,
    /// The first pause after a conflict; it doubles, with jitter.
    pub backoff: Duration,
    /// No transaction starts this close to the invocation deadline.
    pub deadline_margin: Duration,
}

impl Default for StatsSettings {
    fn default() -> Self {
        Self {
            conflict_attempts: 6,
            backoff: Duration::from_millis(25),
            deadline_margin: Duration::from_millis(2_000),
        }
    }
}

/// What became of one change (beside failed and ignored: the runner's).
#[derive(Debug, Clone, PartialEq)]
pub enum StatsOutcome {
    /// Its deltas were added to `counters` counters.
    Applied { counters: usize },
    /// An earlier delivery counted it (its marker exists).
    Duplicate,
    /// Nothing that is counted changed: nothing written.
    NoChange,
    /// An image that cannot be counted: logged and counted in the
    /// `NotCounted` metric, never retried (it would never succeed).
    NotCounted(StatsProblem),
    /// DynamoDB refused its write permanently (e.g. a counter past what a
    /// number holds): logged, `NotCounted` metric, never retried.
    Refused(String),
}

/// The kinds of outcome, for counting, metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatsKind {
    Applied,
    Duplicate,
    NoChange,
    Ignored,
    NotCounted,
    Refused,
    Failed,
}

impl OutcomeKind for StatsKind {
    const FAILED: Self = StatsKind::Failed;
    const IGNORED: Self = StatsKind::Ignored;

    fn name(self) -> &'static str {
        match self {
            StatsKind::Applied => "applied",
            StatsKind::Duplicate => "duplicate",
            StatsKind::NoChange => "no_change",
            StatsKind::Ignored => "ignored",
            StatsKind::NotCounted => "not_counted",
            StatsKind::Refused => "refused",
            StatsKind::Failed => "failed",
        }
    }
}

impl Classified for StatsOutcome {
    type Kind = StatsKind;

    fn kind(&self) -> StatsKind {
        match self {
            StatsOutcome::Applied { .. } => StatsKind::Applied,
            StatsOutcome::Duplicate => StatsKind::Duplicate,
            StatsOutcome::NoChange => StatsKind::NoChange,
            StatsOutcome::NotCounted(_) => StatsKind::NotCounted,
            StatsOutcome::Refused(_) => StatsKind::Refused,
        }
    }
}

/// A change counted without the parts of its offer's image that could not
/// be read (an amount beyond what statistics hold, a malformed redemption):
/// everything else of it counted. Reported once per change that counts
/// something, by the delivery that counts it (not by a duplicate, a failed
/// try, or a change that counts nothing, such as a new `rank`).
#[derive(Debug, Clone, PartialEq)]
pub struct PartlyRead {
    pub event_id: String,
    pub offer_id: String,
    pub personalized_offer_id: Option<String>,
    /// What was left out, in the image's order of redemptions.
    pub problems: Vec<StatsProblem>,
}

/// What a batch reports beside its records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSummary {
    /// The records counted now whose new image was read in part.
    pub partly_read: Vec<PartlyRead>,
    /// Transactions that went through.
    pub transactions: usize,
    /// Conflicts (or throttling) retried.
    pub conflicts: usize,
    /// The budgets of the campaigns whose offers the batch changed (counted
    /// now or before), as read after it: each limit set, in percent used.
    pub budgets: Vec<BudgetPercent>,
    /// The batch's campaigns had budgets to read, and they could not be
    /// read (logged `budgets_unread`, counted `BudgetsUnread`); the counters
    /// are applied all the same.
    pub budgets_unread: bool,
}

/// One limit of a campaign's budget and how much of it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetPercent {
    pub campaign_id: CampaignId,
    pub limit: BudgetLimit,
    /// Rounded down (a limit of 0: 100).
    pub percent: u64,
}

/// One batch's outcomes.
pub type StatsBatchReport = BatchReport<StatsOutcome, StatsSummary>;

/// One line per record, one per change read in part, and one for the batch.
fn log_batch(report: &StatsBatchReport, duration_ms: u64) {
    for record in &report.records {
        let event_id = record.event_id.as_deref().unwrap_or_default();
        let sequence_number = record.sequence_number.as_deref().unwrap_or_default();
        let outcome = record.outcome.name();
        match &record.outcome {
            Outcome::Done(StatsOutcome::Applied { counters }) => {
                tracing::debug!(
                    event_id,
                    sequence_number,
                    outcome,
                    counters,
                    "record counted"
                )
            }
            Outcome::Done(StatsOutcome::Duplicate | StatsOutcome::NoChange) => {
                tracing::debug!(event_id, sequence_number, outcome, "nothing to count")
            }
            Outcome::Ignored(reason) => {
                tracing::debug!(event_id, sequence_number, outcome, reason = %reason, "record ignored")
            }
            Outcome::Done(StatsOutcome::NotCounted(problem)) => {
                tracing::error!(event_id, sequence_number, outcome, error = %problem,
                    "offer image cannot be counted; not retried")
            }
            Outcome::Done(StatsOutcome::Refused(detail)) => {
                tracing::error!(event_id, sequence_number, outcome, error = %detail,
                    "statistics write refused by DynamoDB; not retried")
            }
            Outcome::Failed(failure) => {
                tracing::warn!(event_id, sequence_number, outcome, failure = failure.kind(),
                    error = %failure, "record failed; reported for retry")
            }
        }
    }
    let summary = &report.summary;
    for partly in &summary.partly_read {
        tracing::error!(
            event_id = partly.event_id.as_str(),
            offer_id = partly.offer_id.as_str(),
            personalized_offer_id = partly.personalized_offer_id.as_deref().unwrap_or_default(),
            unread = partly.problems.len(),
            error = %partly.problems.first().map(ToString::to_string).unwrap_or_default(),
            "offer image read in part: the rest counted, what could not be read left out"
        );
    }
    tracing::info!(
        records = report.records.len(),
        applied = report.count(StatsKind::Applied),
        duplicates = report.count(StatsKind::Duplicate),
        no_change = report.count(StatsKind::NoChange),
        ignored = report.count(StatsKind::Ignored),
        not_counted = report.count(StatsKind::NotCounted) + report.count(StatsKind::Refused),
        partly_read = summary.partly_read.len(),
        failed = report.count(StatsKind::Failed),
        transactions = summary.transactions,
        conflicts = summary.conflicts,
        budgets = summary.budgets.len(),
        budgets_unread = summary.budgets_unread,
        store_down = report.store_down,
        duration_ms,
        "batch done"
    );
}

/// A unit of work: one record's part, and where it stands.
struct PlannedUnit {
    record: usize,
    unit: StatsUnit,
    state: UnitState,
}

#[derive(Debug, Clone, PartialEq)]
enum UnitState {
    Pending,
    Applied,
    Duplicate,
    Refused(String),
    Failed(Failure),
}

pub struct StatsService<S> {
    store: S,
    settings: StatsSettings,
}

impl<S: CampaignStatsStore> StatsService<S> {
    pub fn new(store: S, settings: StatsSettings) -> Self {
        Self { store, settings }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// A campaign's statistics; a campaign nobody counted has zero counts.
    pub async fn campaign_report(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<CampaignReport, StoreError> {
        let counters = self.store.campaign_counters(campaign_id).await?;
        campaign_report(campaign_id, counters)
            .map_err(|problem| StoreError::Corrupt(format!("campaign counters: {problem}")))
    }

    /// Writes one chunk, retrying without the units already counted and
    /// after conflicts. Returns the units to try one by one when DynamoDB
    /// refused the chunk (so that one bad unit does not sink the others).
    async fn run_chunk(
        &self,
        chunk: Vec<usize>,
        units: &mut [PlannedUnit],
        run: &Run,
        summary: &mut StatsSummary,
    ) -> Option<Vec<usize>> {
        let mut pending = chunk;
        let mut tries = 0u32;
        while !pending.is_empty() {
            if let Some(cut_off) = run.cut_off() {
                set_all(units, &pending, UnitState::Failed(cut_off));
                return None;
            }
            let sum = match aggregate(
                pending
                    .iter()
                    .filter_map(|i| units.get(*i))
                    .map(|u| &u.unit.deltas),
            ) {
                Ok(sum) => sum,
                Err(problem) if pending.len() > 1 => {
                    tracing::warn!(error = %problem, units = pending.len(), "the chunk's sum overflows; writing its units one by one");
                    return Some(pending);
                }
                Err(problem) => {
                    set_all(units, &pending, UnitState::Refused(problem.to_string()));
                    return None;
                }
            };
            let given: Vec<&StatsUnit> = pending
                .iter()
                .filter_map(|i| units.get(*i))
                .map(|u| &u.unit)
                .collect();
            let result = run.call(self.store.apply_units(&given, &sum)).await;
            match result {
                Ok(ApplyOutcome::Applied) => {
                    summary.transactions += 1;
                    set_all(units, &pending, UnitState::Applied);
                    return None;
                }
                Ok(ApplyOutcome::AlreadyApplied(found)) if !found.is_empty() => {
                    let counted: BTreeSet<usize> = found
                        .iter()
                        .filter_map(|at| pending.get(*at).copied())
                        .collect();
                    let counted: Vec<usize> = counted.into_iter().collect();
                    set_all(units, &counted, UnitState::Duplicate);
                    pending.retain(|index| !counted.contains(index));
                }
                Ok(ApplyOutcome::AlreadyApplied(_)) => {
                    let error =
                        StoreError::Unavailable("transaction cancelled without a reason".into());
                    set_all(units, &pending, UnitState::Failed(Failure::Store(error)));
                    return None;
                }
                Err(StoreError::Refused(_)) if pending.len() > 1 => return Some(pending),
                Err(StoreError::Refused(detail)) => {
                    set_all(units, &pending, UnitState::Refused(detail));
                    return None;
                }
                Err(error @ (StoreError::Conflict(_) | StoreError::Throttled(_))) => {
                    tries += 1;
                    summary.conflicts += 1;
                    if tries >= self.settings.conflict_attempts.max(1) {
                        let failure = match error {
                            StoreError::Conflict(_) => Failure::ConflictsExhausted(tries),
                            other => Failure::Store(other),
                        };
                        set_all(units, &pending, UnitState::Failed(failure));
                        return None;
                    }
                    tokio::time::sleep(backoff(self.settings.backoff, tries)).await;
                }
                // An outage is noted by the run: no new write starts.
                Err(error) => {
                    set_all(units, &pending, UnitState::Failed(Failure::Store(error)));
                    return None;
                }
            }
        }
        None
    }
}

impl<S: CampaignStatsStore + CampaignBudgetsReader> StatsService<S> {
    /// Counts the records of one stream batch, each exactly once, then reads
    /// the budgets of the campaigns whose offers it changed.
    pub async fn apply_batch(
        &self,
        records: Vec<StatsInput>,
        deadline: Option<Instant>,
    ) -> StatsBatchReport {
        let run = Run::new(Utc::now(), deadline, self.settings.deadline_margin);
        let mut report = run_whole_batch(self, &records, &run).await;
        let campaigns = changed_campaigns(&records, &report);
        // Boxed, like the runner's batch: the invocation's future stays
        // within the compiler's layout depth.
        Box::pin(self.read_budgets(campaigns, &run, &mut report.summary)).await;
        log_batch(&report, run.elapsed_ms());
        report
    }

    /// The budgets of `campaigns` (one read of their definitions), in
    /// percent used per limit. A failure is logged and counted, never a
    /// failed record: the batch's counters are applied, exactly once, and a
    /// retry would read the budgets only to count nothing again.
    async fn read_budgets(
        &self,
        campaigns: Vec<CampaignId>,
        run: &Run,
        summary: &mut StatsSummary,
    ) {
        if campaigns.is_empty() {
            return;
        }
        let read = match run.cut_off() {
            Some(cut_off) => Err(StoreError::Unavailable(cut_off.to_string())),
            None => run.call_aside(self.store.budgets_used(&campaigns)).await,
        };
        match read {
            Ok(budgets) => {
                summary.budgets = budgets
                    .iter()
                    .flat_map(|campaign| {
                        campaign
                            .budget
                            .percents_used(&campaign.used)
                            .into_iter()
                            .map(|(limit, percent)| BudgetPercent {
                                campaign_id: campaign.campaign_id.clone(),
                                limit,
                                percent,
                            })
                    })
                    .collect();
            }
            Err(error) => {
                summary.budgets_unread = true;
                tracing::warn!(
                    budgets_unread = true,
                    campaigns = campaigns.len(),
                    failure = error.kind(),
                    error = %error,
                    "campaign budgets not read for their metric; the statistics are counted"
                );
            }
        }
    }
}

/// The campaigns of the changes counted now or before (a replay: the
/// budget may have moved since), each once.
fn changed_campaigns(records: &[StatsInput], report: &StatsBatchReport) -> Vec<CampaignId> {
    let mut campaigns = BTreeSet::new();
    // One report per input, in its order (the runner's).
    for (input, record) in records.iter().zip(&report.records) {
        let Input::Change(change) = input else {
            continue;
        };
        if !matches!(
            record.outcome,
            Outcome::Done(StatsOutcome::Applied { .. } | StatsOutcome::Duplicate)
        ) {
            continue;
        }
        let campaign_id = image_campaign_id(&change.new_image)
            .filter(|id| id.len() <= MAX_STATS_ID_BYTES)
            .and_then(|id| CampaignId::try_from(id).ok());
        campaigns.extend(campaign_id);
    }
    campaigns.into_iter().collect()
}

impl<S: CampaignStatsStore> BatchHandler<ChangeRecord> for StatsService<S> {
    type Outcome = StatsOutcome;
    type Summary = StatsSummary;

    /// Plans every change's units, packs them into transactions and writes
    /// them; each change's outcome follows from its units'.
    async fn apply_all(
        &self,
        changes: &[&ChangeRecord],
        run: &Run,
    ) -> (Vec<Result<StatsOutcome, Failure>>, StatsSummary) {
        let mut units: Vec<PlannedUnit> = Vec::new();
        let mut markers: HashSet<String> = HashSet::new();
        let mut partly_read: Vec<(usize, PartlyRead)> = Vec::new();
        let mut outcomes: Vec<Option<Result<StatsOutcome, Failure>>> = changes
            .iter()
            .enumerate()
            .map(|(index, change)| {
                let (outcome, partly) = plan(index, change, &mut units, &mut markers);
                partly_read.extend(partly.map(|partly| (index, partly)));
                outcome
            })
            .collect();

        let mut summary = StatsSummary::default();
        let mut work: VecDeque<Vec<usize>> = pack(&units).into();
        while let Some(chunk) = work.pop_front() {
            if let Some(singles) = self.run_chunk(chunk, &mut units, run, &mut summary).await {
                for single in singles.into_iter().rev() {
                    work.push_front(vec![single]);
                }
            }
        }
        for (record, units) in group_units(&units) {
            if let Some(slot) = outcomes.get_mut(record) {
                *slot = Some(record_outcome(&units));
            }
        }
        // Decided without a write, or by the record's units.
        let outcomes: Vec<Result<StatsOutcome, Failure>> = outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or(Ok(StatsOutcome::NoChange)))
            .collect();
        // Reported by the delivery that counts the change, once (a change
        // that counts nothing writes no marker: a replay could not tell).
        summary.partly_read = partly_read
            .into_iter()
            .filter(|(index, _)| {
                matches!(outcomes.get(*index), Some(Ok(StatsOutcome::Applied { .. })))
            })
            .map(|(_, partly)| partly)
            .collect();
        (outcomes, summary)
    }
}

fn set_all(units: &mut [PlannedUnit], pending: &[usize], state: UnitState) {
    for index in pending {
        if let Some(unit) = units.get_mut(*index) {
            unit.state = state.clone();
        }
    }
}

/// The deltas of one record, cut into units of at most
/// [`MAX_UNIT_COUNTERS`] counters, each with its marker, and what of its
/// new image could not be read. The outcome is `None` when it is decided
/// by the units' writes.
fn plan(
    record: usize,
    change: &ChangeRecord,
    units: &mut Vec<PlannedUnit>,
    markers: &mut HashSet<String>,
) -> (Option<Result<StatsOutcome, Failure>>, Option<PartlyRead>) {
    if change.event_id.is_empty() || change.event_id.len() > MAX_EVENT_ID_BYTES {
        let failure = Failure::Unusable(format!(
            "eventID is empty or longer than {MAX_EVENT_ID_BYTES} bytes"
        ));
        return (Some(Err(failure)), None);
    }
    let (deltas, partly) = match read_deltas(change) {
        Err(problem) => return (Some(Ok(StatsOutcome::NotCounted(problem))), None),
        Ok(read) => read,
    };
    if deltas.is_empty() {
        return (Some(Ok(StatsOutcome::NoChange)), partly);
    }
    let base = format!("{MARKER_PREFIX}{}", change.event_id);
    if !markers.insert(base.clone()) {
        // The same record twice in one batch: the first counts (and reports).
        return (Some(Ok(StatsOutcome::Duplicate)), None);
    }
    let entries: Vec<(CounterKey, _)> = deltas.into_iter().collect();
    for (part, slice) in entries.chunks(MAX_UNIT_COUNTERS).enumerate() {
        let marker = if part == 0 {
            base.clone()
        } else {
            format!("{base}#{part}")
        };
        units.push(PlannedUnit {
            record,
            unit: StatsUnit {
                marker,
                deltas: slice.iter().cloned().collect(),
            },
            state: UnitState::Pending,
        });
    }
    (None, partly)
}

/// A record's deltas from its images, and what of its new image could not
/// be read (the old image's was reported with the change that made it).
pub(super) fn read_deltas(
    change: &ChangeRecord,
) -> Result<(Deltas, Option<PartlyRead>), StatsProblem> {
    let new = read_offer_image(&change.new_image)?;
    let old = change
        .old_image
        .as_ref()
        .map(read_offer_image)
        .transpose()?;
    let deltas = record_deltas(old.as_ref(), Some(&new))?;
    let partly = (!new.unread.is_empty()).then(|| PartlyRead {
        event_id: change.event_id.clone(),
        offer_id: new.offer_id.clone(),
        personalized_offer_id: new.personalized_offer_id.clone(),
        problems: new.unread,
    });
    Ok((deltas, partly))
}

/// Packs units into transactions of at most [`MAX_TRANSACTION_ITEMS`]
/// items: a marker per unit and one update per distinct counter.
fn pack(units: &[PlannedUnit]) -> Vec<Vec<usize>> {
    // Units with the same counters side by side (by their sorted counter
    // keys: campaign, offer, arm first), so that a counter lands in as few of
    // the batch's transactions as possible: fewer items written.
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| {
        units[a]
            .unit
            .deltas
            .keys()
            .cmp(units[b].unit.deltas.keys())
            .then(a.cmp(&b))
    });
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut counters: BTreeSet<&CounterKey> = BTreeSet::new();
    for (index, planned) in order.into_iter().map(|index| (index, &units[index])) {
        let new_keys = planned
            .unit
            .deltas
            .keys()
            .filter(|key| !counters.contains(key))
            .count();
        if !current.is_empty()
            && current.len() + counters.len() + 1 + new_keys > MAX_TRANSACTION_ITEMS
        {
            chunks.push(std::mem::take(&mut current));
            counters.clear();
        }
        current.push(index);
        counters.extend(planned.unit.deltas.keys());
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Each record's unit states, by record.
fn group_units(units: &[PlannedUnit]) -> Vec<(usize, Vec<(&UnitState, usize)>)> {
    let mut grouped: Vec<(usize, Vec<(&UnitState, usize)>)> = Vec::new();
    for planned in units {
        let counters = planned.unit.deltas.len();
        match grouped.last_mut() {
            Some((record, states)) if *record == planned.record => {
                states.push((&planned.state, counters))
            }
            _ => grouped.push((planned.record, vec![(&planned.state, counters)])),
        }
    }
    grouped
}

/// A record's outcome from its units': failed if any failed (the retry
/// skips the parts already counted), refused if any was refused, applied if
/// any was written now, else a duplicate.
fn record_outcome(units: &[(&UnitState, usize)]) -> Result<StatsOutcome, Failure> {
    if let Some(failure) = units.iter().find_map(|(state, _)| match state {
        UnitState::Failed(failure) => Some(failure.clone()),
        UnitState::Pending => Some(Failure::Store(StoreError::Unavailable(
            "not written".into(),
        ))),
        _ => None,
    }) {
        return Err(failure);
    }
    if let Some(detail) = units.iter().find_map(|(state, _)| match state {
        UnitState::Refused(detail) => Some(detail.clone()),
        _ => None,
    }) {
        return Ok(StatsOutcome::Refused(detail));
    }
    let applied: usize = units
        .iter()
        .filter(|(state, _)| **state == UnitState::Applied)
        .map(|(_, counters)| counters)
        .sum();
    Ok(
        if units.iter().any(|(state, _)| **state == UnitState::Applied) {
            StatsOutcome::Applied { counters: applied }
        } else {
            StatsOutcome::Duplicate
        },
    )
}

/// `base` doubled per try, at most 1 s, with up to half of it as jitter so
/// that two invocations in conflict do not retry in step.
fn backoff(base: Duration, tries: u32) -> Duration {
    let full = base
        .saturating_mul(1u32 << tries.clamp(1, 10).saturating_sub(1))
        .min(Duration::from_secs(1));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.subsec_nanos())
        .unwrap_or(0);
    let jitter = full / 2 * (nanos % 1_000) / 1_000;
    full / 2 + jitter
}

#[cfg(test)]
mod pack_tests {
    use super::*;
    use offers_domain::campaign_stats::{Arm, Counts};

    fn unit(record: usize, offer: &str) -> PlannedUnit {
        let deltas = [Arm::All, Arm::Selected]
            .into_iter()
            .map(|arm| {
                (
                    CounterKey::Campaign {
                        campaign_id: "c".into(),
                        offer_id: offer.into(),
                        arm,
                    },
                    Counts::default(),
                )
            })
            .collect();
        PlannedUnit {
            record,
            unit: StatsUnit {
                marker: format!("m{record}"),
                deltas,
            },
            state: UnitState::Pending,
        }
    }

    /// Written items: a marker per unit, a counter update per distinct
    /// counter of each chunk.
    fn items(units: &[PlannedUnit], chunks: &[Vec<usize>]) -> usize {
        chunks
            .iter()
            .map(|chunk| {
                let counters: BTreeSet<&CounterKey> = chunk
                    .iter()
                    .flat_map(|&index| units[index].unit.deltas.keys())
                    .collect();
                chunk.len() + counters.len()
            })
            .sum()
    }

    #[test]
    fn units_sharing_counters_share_a_transaction() {
        // 120 records alternating between 30 offers: in arrival order every
        // chunk would hold all 60 counters.
        let units: Vec<PlannedUnit> = (0..120)
            .map(|record| unit(record, &format!("o{:02}", record % 30)))
            .collect();
        let chunks = pack(&units);
        let mut packed: Vec<usize> = chunks.iter().flatten().copied().collect();
        packed.sort_unstable();
        assert_eq!(packed, (0..120).collect::<Vec<_>>(), "every unit once");
        for chunk in &chunks {
            let counters: BTreeSet<&CounterKey> = chunk
                .iter()
                .flat_map(|&index| units[index].unit.deltas.keys())
                .collect();
            assert!(chunk.len() + counters.len() <= MAX_TRANSACTION_ITEMS);
        }
        // 120 markers + 60 counters, each counter in one chunk but for the
        // offer split at a chunk's end.
        assert_eq!(chunks.len(), 2, "{chunks:?}");
        assert!(
            items(&units, &chunks) <= 120 + 60 + 2,
            "{}",
            items(&units, &chunks)
        );
    }
}
