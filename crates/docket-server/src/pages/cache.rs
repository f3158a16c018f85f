//! The whole-list computations the pages share: the public list, the audit
//! and each agency's worklist, computed once per bitemporal point and kept
//! in small bounded memos (`POINTS_CACHED_MAX` points each).
//!
//! A computation is reused for a request whose point has the same `known`
//! (for "now", the store's watermark: `query::resolve` pins it) and a valid
//! time at or after the one it was computed at and before its **next
//! change**: the least instant, over every case it read, at which a known
//! fact takes effect, a term in force ends or a designation's publicity
//! maximum runs out (`case::next_change`), and for
//! what also reads the registry's MOU terms or the calendar's "today", the
//! next start or end of MOU terms and the next midnight in China. Within
//! that range the answer is the same (each case's evaluation is, and so is
//! everything computed from it), so the pages stay exact; a new record
//! moves the watermark and with it the key. Requests for the same point
//! while it is being computed wait for that one computation.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use chrono::NaiveTime;

use docket_audit::audit::{audit_each, AuditError, Scope};
use docket_audit::{Finding, Report};
use docket_fold::case::{next_change, AsOf, CaseState, Known};
use docket_fold::views::{self, EnforcementView, PublicEntry, Publication, Source};
use docket_fold::FoldError;
use docket_model::{AgencyId, ListId, Registry, SubjectId, Timestamp};

use super::PageError;
use crate::error::ApiError;
use crate::App;

/// Points kept per computation (public list, audit, worklists): the
/// current watermark "now" and a few as-of or valid-time points. The least
/// recently used goes first.
pub(crate) const POINTS_CACHED_MAX: usize = 8;

/// The memos of one server.
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    public: Memo<Point<()>, Vec<PublicEntry>>,
    audit: Memo<Point<Option<ListId>>, Audited>,
    worklists: Memo<Point<AgencyId>, EnforcementView>,
}

/// What a computation is keyed by besides its valid time: what the ledger
/// knew, the watermark when `known` is a system time (a record made later
/// can carry a system time at or before it), and what it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Point<S> {
    known: Known,
    watermark: u64,
    scope: S,
}

impl<S> Point<S> {
    fn new(app: &App, known: Known, scope: S) -> Self {
        let watermark = if matches!(known, Known::At(_)) { app.store.records() } else { 0 };
        Self { known, watermark, scope }
    }
}

/// The audit of a point: the report's header and every finding.
#[derive(Debug)]
pub(crate) struct Audited {
    pub(crate) report: Report,
    pub(crate) findings: Vec<Finding>,
}

impl PageCache {
    /// The public list at `as_of`, every list (the view's own entries).
    pub(crate) fn public(&self, app: &App, as_of: AsOf) -> Result<Arc<Vec<PublicEntry>>, PageError> {
        self.public.get(Point::new(app, as_of.known, ()), as_of.valid_at, || {
            let source = Bounded::new(app, as_of)?;
            let view = views::public_view(&source, as_of, None)?;
            Ok((view.entries, source.next()))
        })
    }

    /// The audit at `as_of`, of `list` or of every list.
    pub(crate) fn audit(&self, app: &App, as_of: AsOf, list: Option<ListId>) -> Result<Arc<Audited>, PageError> {
        self.audit.get(Point::new(app, as_of.known, list.clone()), as_of.valid_at, || {
            let source = Bounded::new(app, as_of)?;
            let mut findings = vec![];
            let scope = Scope { list, agency: None };
            let report = audit_each(&source, as_of, &scope, &app.rule_sets, &app.calendar, &mut |f| findings.push(f))
                .map_err(|e| match e {
                AuditError::UnknownList(list) => ApiError::not_found(format!("list \"{list}\" is not defined")),
                other => ApiError::internal(other.to_string()),
            })?;
            // "Today" (pending or overdue) moves at midnight in China.
            let next = [source.next(), next_midnight(as_of.valid_at)].into_iter().flatten().min();
            Ok((Audited { report, findings }, next))
        })
    }

    /// `agency`'s worklist at `as_of`.
    pub(crate) fn worklist(
        &self,
        app: &App,
        as_of: AsOf,
        agency: &AgencyId,
    ) -> Result<Arc<EnforcementView>, PageError> {
        self.worklists.get(Point::new(app, as_of.known, agency.clone()), as_of.valid_at, || {
            let source = Bounded::new(app, as_of)?;
            let view = views::enforcement_view(&source, as_of, agency)?;
            // The duties also read which MOU terms are in force.
            let next = [source.next(), next_mou_change(&source.registry, as_of.valid_at)].into_iter().flatten().min();
            Ok((view, next))
        })
    }
}

/// The first instant after `at` that is midnight in China Standard Time.
fn next_midnight(at: Timestamp) -> Option<Timestamp> {
    let tomorrow = at.china_date().naive().succ_opt()?.and_time(NaiveTime::MIN);
    let china = docket_model::time::china_standard_time();
    let local = tomorrow.and_local_timezone(china).single()?;
    Timestamp::from_micros(local.timestamp_micros()).ok()
}

/// The first start or end of any MOU's terms after `at`.
fn next_mou_change(registry: &Registry, at: Timestamp) -> Option<Timestamp> {
    registry
        .mous()
        .flat_map(|(_, mou)| mou.terms.iter().flat_map(|t| [Some(t.effective_from), t.effective_until]))
        .flatten()
        .filter(|t| *t > at)
        .min()
}

/// The store, as a source that notes the next change of every case it hands out.
struct Bounded<'a> {
    app: &'a App,
    as_of: AsOf,
    registry: Arc<Registry>,
    next: std::cell::Cell<Option<Timestamp>>,
}

impl<'a> Bounded<'a> {
    fn new(app: &'a App, as_of: AsOf) -> Result<Self, FoldError> {
        let registry = app.store.registry(as_of.known)?;
        Ok(Self { app, as_of, registry, next: std::cell::Cell::new(None) })
    }

    /// The least next change of the cases read so far.
    fn next(&self) -> Option<Timestamp> {
        self.next.get()
    }

    fn note(&self, case: &CaseState) {
        if let Some(at) = next_change(case, &self.registry, self.app.store.publication(), self.as_of) {
            self.next.set(Some(self.next.get().map_or(at, |n| n.min(at))));
        }
    }
}

impl Source for Bounded<'_> {
    fn registry(&self, known: Known) -> Result<Arc<Registry>, FoldError> {
        self.app.store.registry(known)
    }
    fn publication(&self) -> &Publication {
        self.app.store.publication()
    }
    fn for_list(&self, list: &ListId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.app.store.for_list(list, &mut |case| {
            self.note(&case);
            visit(case);
        })
    }
    fn for_subject(&self, subject: &SubjectId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.app.store.for_subject(subject, &mut |case| {
            self.note(&case);
            visit(case);
        })
    }
    fn for_applier(&self, agency: &AgencyId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.app.store.for_applier(agency, &mut |case| {
            self.note(&case);
            visit(case);
        })
    }
}

/// A computation and the valid time before which it holds (None: always).
#[derive(Debug)]
struct Computed<V> {
    value: Arc<V>,
    until: Option<Timestamp>,
}

impl<V> Computed<V> {
    fn holds_at(&self, valid_at: Timestamp) -> bool {
        self.until.is_none_or(|until| valid_at < until)
    }
}

/// One point's computation, done once by the first request for it; `None`
/// once it failed (errors are not kept: the next request tries again).
type Cell<V> = Arc<OnceLock<Option<Computed<V>>>>;

#[derive(Debug)]
struct Slot<K, V> {
    key: K,
    /// The valid time it was computed at.
    from: Timestamp,
    cell: Cell<V>,
}

/// A bounded memo of computations by key and valid time.
#[derive(Debug)]
struct Memo<K, V> {
    slots: Mutex<VecDeque<Slot<K, V>>>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self { slots: Mutex::new(VecDeque::new()) }
    }
}

impl<K: PartialEq + Clone, V> Memo<K, V> {
    /// The value for `key` at `valid_at`: a computation that holds then, or
    /// `compute`'s (its value, and the valid time before which it holds).
    fn get(
        &self,
        key: K,
        valid_at: Timestamp,
        compute: impl FnOnce() -> Result<(V, Option<Timestamp>), PageError>,
    ) -> Result<Arc<V>, PageError> {
        let cell = self.slot(key, valid_at);
        let mut compute = Some(compute);
        let (mut failed, mut computed_here) = (None, false);
        let done = cell.get_or_init(|| match compute.take().map(|c| c()) {
            Some(Ok((value, until))) => {
                computed_here = true;
                Some(Computed { value: Arc::new(value), until })
            }
            Some(Err(error)) => {
                failed = Some(error);
                None
            }
            None => None,
        });
        if let Some(error) = failed {
            self.forget(&cell);
            return Err(error);
        }
        match (done, compute) {
            (Some(computed), _) if computed_here || computed.holds_at(valid_at) => Ok(computed.value.clone()),
            // The computation this request waited for failed, or was for an
            // earlier valid time and ends before this one: compute its own.
            (_, Some(compute)) => compute().map(|(value, _)| Arc::new(value)),
            (_, None) => Err(ApiError::internal("a page computation failed").into()),
        }
    }

    /// The slot that holds (or may hold, being computed) `key` at `valid_at`,
    /// most recently used; else a new one, evicting the least recently used.
    fn slot(&self, key: K, valid_at: Timestamp) -> Cell<V> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let fits = |slot: &Slot<K, V>| {
            slot.key == key
                && slot.from <= valid_at
                && slot.cell.get().is_none_or(|done| done.as_ref().is_some_and(|c| c.holds_at(valid_at)))
        };
        if let Some(index) = slots.iter().position(fits) {
            let slot = slots.remove(index).unwrap_or_else(|| unreachable!("the index was just found"));
            let cell = slot.cell.clone();
            slots.push_back(slot);
            return cell;
        }
        let cell = Cell::default();
        slots.push_back(Slot { key, from: valid_at, cell: cell.clone() });
        while slots.len() > POINTS_CACHED_MAX {
            slots.pop_front();
        }
        cell
    }

    /// Drops a failed computation's slot.
    fn forget(&self, cell: &Cell<V>) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|slot| !Arc::ptr_eq(&slot.cell, cell));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(micros).unwrap()
    }

    #[test]
    fn a_computation_serves_later_valid_times_until_its_next_change_and_no_earlier_ones() {
        let memo: Memo<u32, i64> = Memo::default();
        let mut runs = 0;
        let mut get = |key, t: i64| {
            *memo
                .get(key, at(t), || {
                    runs += 1;
                    Ok((t, Some(at(1_000))))
                })
                .unwrap()
        };
        assert_eq!(get(1, 100), 100);
        assert_eq!(get(1, 999), 100, "within [100, 1000): the computation at 100");
        assert_eq!(get(1, 1_000), 1_000, "at its next change: computed again");
        assert_eq!(get(1, 50), 50, "before the valid time it was computed at: computed again");
        assert_eq!(get(2, 500), 500, "another key");
        assert_eq!(runs, 4);
    }

    #[test]
    fn failures_are_not_kept_and_the_memo_is_bounded() {
        let memo: Memo<usize, usize> = Memo::default();
        let failed = memo.get(0, at(1), || Err(PageError::bad("list", "no such list")));
        assert!(failed.is_err());
        assert_eq!(memo.len(), 0);
        assert_eq!(*memo.get(0, at(1), || Ok((7, None))).unwrap(), 7);
        for key in 1..=POINTS_CACHED_MAX * 2 {
            memo.get(key, at(1), || Ok((key, None))).unwrap();
        }
        assert_eq!(memo.len(), POINTS_CACHED_MAX);
        assert_eq!(*memo.get(0, at(1), || Ok((8, None))).unwrap(), 8, "the oldest point was evicted");
    }

    #[test]
    fn the_next_midnight_is_in_china() {
        let t = Timestamp::parse("2025-06-01T23:59:59+08:00").unwrap();
        assert_eq!(next_midnight(t).unwrap(), Timestamp::parse("2025-06-02T00:00:00+08:00").unwrap());
        let t = Timestamp::parse("2025-06-01T00:00:00+08:00").unwrap();
        assert_eq!(next_midnight(t).unwrap(), Timestamp::parse("2025-06-02T00:00:00+08:00").unwrap());
    }
}
