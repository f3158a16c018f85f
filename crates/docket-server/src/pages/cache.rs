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
//!
//! A new point is **carried** from a kept one instead of computed in full
//! when it can be: each computation keeps its per-case results (a case's
//! public entry, its findings, its duties) with each case's next change,
//! and a point that knows every record through seq `b` is computed from a
//! kept point of the same scope through an earlier seq `a` by computing
//! again only the cases the records `(a, b]` touched (`Store::changes`
//! reads them from the log) and those whose next change has come by the new
//! valid time; every other case's evaluation is the same at both points
//! (its known facts and the registry are). It is computed in full instead
//! when any of those records is a registry event (an MOU amended, a rule
//! set published, a key revoked, a list defined: any case may read
//! differently), when more than `CARRY_RECORDS_MAX` records lie between,
//! when the new valid time is before the kept one, when the kept point's
//! whole-point bound has passed (midnight for the audit, MOU terms for the
//! worklists), and for points known at a system time (a catch-up beside
//! the computation can add facts recorded before it). The property test
//! below checks carried against full computations over random appends.
//!
//! A carried point **shares** what did not change with the point it was
//! carried from: the per-case results, the next changes, the audit's
//! findings and the worklists' sorted rows are kept in chunked maps (`chunked::Chunked`) whose clone
//! copies a pointer per chunk, and only the changed cases' chunks are
//! copied. The public list and the audit's findings are read in the
//! per-case order straight from those maps (no assembled vector), and a
//! worklist's rows are kept sorted as the view sorts them, so a carried
//! point takes out the changed cases' old rows and puts in their new ones.
//! What a carried point costs thus grows with the change, not the cases.

use std::cmp::Ordering as Order;
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use chrono::NaiveTime;

use docket_audit::audit::{AuditError, Auditor, Scope};
use docket_audit::{Calendar, Finding, Report, RuleSet};
use docket_fold::case::{next_change, AsOf, CaseState, Known};
use docket_fold::store::Store;
use docket_fold::views::{self, Duties, Duty, LiftDuty, PublicEntry, Source};
use docket_fold::FoldError;
use docket_model::{AgencyId, ListId, Registry, Timestamp};

use super::chunked::Chunked;
use super::PageError;
use crate::error::ApiError;
use crate::App;

/// Points kept per computation (public list, audit, worklists): the
/// current watermark "now" and a few as-of or valid-time points. The least
/// recently used goes first.
pub(crate) const POINTS_CACHED_MAX: usize = 8;

/// Most rows kept per computation (public list, audit, worklists) across
/// its points: the entries of the chunks of their maps (per-case results,
/// next changes, findings, worklist rows), a chunk that several points
/// share counted once; the least recently used point dropped first (the
/// newest is always kept). Points carried from one another share all but
/// their changed cases' chunks, so a run of carried points weighs about one
/// point. At 1.06M records the 24 points of the three computations after
/// `pages-bench` held 923,252 rows together (BENCH.md, issue 19).
pub(crate) const ROWS_CACHED_MAX: usize = 2_000_000;

/// What a kept computation holds against [`ROWS_CACHED_MAX`]: each chunk of
/// its maps, by address (to count a shared one once) and entries.
trait Weigh {
    fn chunks(&self, each: &mut dyn FnMut(usize, usize));
}

impl Weigh for Public {
    fn chunks(&self, each: &mut dyn FnMut(usize, usize)) {
        self.cases.chunks(each);
    }
}

impl Weigh for Audited {
    fn chunks(&self, each: &mut dyn FnMut(usize, usize)) {
        self.cases.chunks(each);
        self.findings.chunks().for_each(|(at, entries)| each(at, entries));
    }
}

impl Weigh for Worklist {
    fn chunks(&self, each: &mut dyn FnMut(usize, usize)) {
        self.cases.chunks(each);
        for rows in &self.rows {
            rows.chunks().for_each(|(at, entries)| each(at, entries));
        }
    }
}

/// Most records between a kept point and a new one for the new one to be
/// carried from the kept one's per-case results; beyond it the new one is
/// computed in full (the records are read from the log to find the cases
/// they touched, and past this many a full pass costs about as much).
pub(crate) const CARRY_RECORDS_MAX: u64 = 65_536;

/// The memos of one server.
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    public: Memo<Point<()>, Public>,
    audit: Memo<Point<Option<ListId>>, Audited>,
    worklists: Memo<Point<AgencyId>, Worklist>,
    /// Computations done in full, and carried from a kept point, since start.
    full: AtomicU64,
    carried: AtomicU64,
}

/// What the cache keeps: points, per-case results over them, distinct rows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Held {
    pub(crate) points: u64,
    pub(crate) cases: u64,
    pub(crate) rows: u64,
}

/// What the page computations read: the store, and the audit's documents.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ledger<'a> {
    pub(crate) store: &'a Store,
    pub(crate) rule_sets: &'a [RuleSet],
    pub(crate) calendar: &'a Calendar,
}

impl<'a> Ledger<'a> {
    fn of(app: &'a App) -> Self {
        Self { store: &app.store, rule_sets: &app.rule_sets, calendar: &app.calendar }
    }
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
    fn new(store: &Store, known: Known, scope: S) -> Self {
        let watermark = if matches!(known, Known::At(_)) { store.records() } else { 0 };
        Self { known, watermark, scope }
    }
}

/// A memo's key: which kept computations a new one can be carried from.
trait Key: PartialEq + Clone {
    /// The records `[from, to)` a computation at `self` knows beyond one at
    /// `base`, if it can be carried from it.
    fn since(&self, base: &Self) -> Option<(u64, u64)>;
}

impl<S: PartialEq + Clone> Key for Point<S> {
    fn since(&self, base: &Self) -> Option<(u64, u64)> {
        match (base.known, self.known) {
            (Known::Through(a), Known::Through(b)) if a <= b && base.scope == self.scope => Some((a + 1, b + 1)),
            // Known::At: which facts recorded before the time a computation
            // saw depends on the catch-ups beside it; computed in full.
            _ => None,
        }
    }
}

/// A case's place in a computation's order: its list's position in the
/// registry, and its id (the seq that opened it, the stores' order).
type CaseKey = (u32, u64);

/// One point's per-case results (only cases with a result or a next
/// change), kept so that a later point can be carried from them; its maps'
/// chunks are shared with the points carried from it.
#[derive(Debug)]
struct Cases<R> {
    slots: Chunked<CaseKey, CaseSlot<R>>,
    /// The cases with a next change, by it.
    by_next: Chunked<(Timestamp, CaseKey), ()>,
    /// The slots with a result.
    results: usize,
}

/// A case's result is kept in the slot itself, side by side with its
/// neighbours in the chunk: the pages read every result on many requests
/// (the list's filters, the delta, the desk's tallies), and results read
/// through a pointer each, spread over the heap, took 2.5-4 times as long
/// as from one vector (the audit desk and the delta at 1.06M records, load
/// average 5-9). A result that is costly to copy with its chunk is an `Arc`
/// (a worklist's duties, which its rows also point at).
#[derive(Debug, Clone)]
struct CaseSlot<R> {
    result: Option<R>,
    next: Option<Timestamp>,
}

impl<R> Default for Cases<R> {
    fn default() -> Self {
        Self { slots: Chunked::default(), by_next: Chunked::default(), results: 0 }
    }
}

impl<R> Clone for Cases<R> {
    fn clone(&self) -> Self {
        Self { slots: self.slots.clone(), by_next: self.by_next.clone(), results: self.results }
    }
}

/// A case whose result a carried point changed: its key, the result it had
/// at the kept point and the one it has now.
type Changed<R> = (CaseKey, Option<R>, Option<R>);

impl<R: Clone> Cases<R> {
    /// Sets a case's result and next change, replacing what it had; the
    /// result it had.
    fn set(&mut self, key: CaseKey, (result, next): (Option<R>, Option<Timestamp>)) -> Option<R> {
        let old = self.slots.remove(&key);
        if let Some(at) = old.as_ref().and_then(|slot| slot.next) {
            self.by_next.remove(&(at, key));
        }
        if let Some(at) = next {
            self.by_next.insert((at, key), ());
        }
        let old = old.and_then(|slot| slot.result);
        self.results = self.results + usize::from(result.is_some()) - usize::from(old.is_some());
        if result.is_some() || next.is_some() {
            self.slots.insert(key, CaseSlot { result, next });
        }
        old
    }

    /// A case's result.
    fn result(&self, key: CaseKey) -> Option<&R> {
        self.slots.get(&key)?.result.as_ref()
    }
}

impl<R> Cases<R> {
    /// The ids of the cases whose next change is at or before `valid_at`.
    fn due(&self, valid_at: Timestamp) -> impl Iterator<Item = u64> + '_ {
        self.by_next.keys().take_while(move |(at, _)| *at <= valid_at).map(|(_, (_, id))| *id)
    }

    /// The least next change of any case.
    fn next(&self) -> Option<Timestamp> {
        self.by_next.first().map(|((at, _), _)| *at)
    }

    /// The results, in the computation's order.
    fn results(&self) -> impl Iterator<Item = &R> + '_ {
        self.slots.values().filter_map(|slot| slot.result.as_ref())
    }

    fn chunks(&self, each: &mut dyn FnMut(usize, usize)) {
        self.slots.chunks().chain(self.by_next.chunks()).for_each(|(at, entries)| each(at, entries));
    }
}

/// The public list of a point: every list's entries, per case.
#[derive(Debug)]
pub(crate) struct Public {
    cases: Cases<PublicEntry>,
}

impl Public {
    /// Every list's entries, in the public view's order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &PublicEntry> + '_ {
        self.cases.results()
    }
}

/// The audit of a point: the report's header, and the findings per case.
///
/// The findings themselves are rows of one chunked map by case and place,
/// not a vector per case: the desk reads every finding on every request,
/// and read through a pointer per case (each its own allocation, spread
/// over the heap) that took 3.4 times as long as reading them from one
/// vector (the audit desk at 1.06M records: 38-43 ms against 11-12 ms, load
/// average 7); a chunk holds up to `CHUNK_ROWS_MAX` findings side by side.
#[derive(Debug)]
pub(crate) struct Audited {
    pub(crate) report: Report,
    /// A case the audit counts has a result (how many findings, maybe none).
    cases: Cases<Counted>,
    /// Every finding by its case and its place among the case's findings.
    findings: Chunked<(CaseKey, u32), Finding>,
}

/// How many findings an audited case has.
#[derive(Debug, Clone, Copy)]
struct Counted(usize);

impl Audited {
    /// Every finding, in the audit's order.
    pub(crate) fn findings(&self) -> impl Iterator<Item = &Finding> + '_ {
        self.findings.values()
    }

    /// `findings` (a kept point's) with the changed cases' old findings
    /// taken out and their new ones (`found`) put in.
    fn carried(
        mut findings: Chunked<(CaseKey, u32), Finding>,
        changed: &[Changed<Counted>],
        found: Vec<((CaseKey, u32), Finding)>,
    ) -> Chunked<(CaseKey, u32), Finding> {
        for (key, old, _) in changed {
            for at in 0..old.as_ref().map_or(0, |counted| counted.0) {
                let removed = findings.remove(&(*key, at as u32));
                debug_assert!(removed.is_some(), "a kept case's findings are in the kept point's audit");
            }
        }
        for (key, finding) in found {
            findings.insert(key, finding);
        }
        findings
    }
}

/// An agency's worklist at a point: its duties per case, and each kind's
/// rows (to apply, applied, must lift) sorted as the view sorts them.
#[derive(Debug)]
pub(crate) struct Worklist {
    rows: [Chunked<DutyRow, ()>; 3],
    cases: Cases<Arc<Duties>>,
}

/// The kinds of a worklist's rows, as `Worklist::rows` holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ToApply = 0,
    Applied = 1,
    MustLift = 2,
}

const KINDS: [Kind; 3] = [Kind::ToApply, Kind::Applied, Kind::MustLift];

/// One duty of a case's duties, ordered as `Duties::into_view` sorts a
/// worklist: by list, subject, number and measure, then (the sort being
/// stable over the cases in the computation's order) by case and place.
#[derive(Debug, Clone)]
struct DutyRow {
    kind: Kind,
    case: CaseKey,
    index: u32,
    duties: Arc<Duties>,
}

impl DutyRow {
    fn duty(&self) -> &Duty {
        let index = self.index as usize;
        match self.kind {
            Kind::ToApply => &self.duties.to_apply[index],
            Kind::Applied => &self.duties.applied[index],
            Kind::MustLift => &self.duties.must_lift[index].duty,
        }
    }

    fn lift(&self) -> &LiftDuty {
        &self.duties.must_lift[self.index as usize]
    }

    /// The rows of one case's duties, of every kind.
    fn of(case: CaseKey, duties: &Arc<Duties>) -> impl Iterator<Item = DutyRow> + '_ {
        let counts = [duties.to_apply.len(), duties.applied.len(), duties.must_lift.len()];
        KINDS.into_iter().zip(counts).flat_map(move |(kind, count)| {
            (0..count).map(move |index| DutyRow { kind, case, index: index as u32, duties: duties.clone() })
        })
    }
}

impl Ord for DutyRow {
    fn cmp(&self, other: &Self) -> Order {
        let (a, b) = (self.duty(), other.duty());
        (&a.list, &a.subject, &a.number, &a.measure, self.case, self.index).cmp(&(
            &b.list,
            &b.subject,
            &b.number,
            &b.measure,
            other.case,
            other.index,
        ))
    }
}

impl PartialOrd for DutyRow {
    fn partial_cmp(&self, other: &Self) -> Option<Order> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DutyRow {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Order::Equal
    }
}

impl Eq for DutyRow {}

impl Worklist {
    /// Measures to apply, in the view's order.
    pub(crate) fn to_apply(&self) -> impl Iterator<Item = &Duty> + '_ {
        self.rows[Kind::ToApply as usize].keys().map(DutyRow::duty)
    }

    /// Measures applied, in the view's order.
    pub(crate) fn applied(&self) -> impl Iterator<Item = &Duty> + '_ {
        self.rows[Kind::Applied as usize].keys().map(DutyRow::duty)
    }

    /// Measures to lift, in the view's order.
    pub(crate) fn must_lift(&self) -> impl Iterator<Item = &LiftDuty> + '_ {
        self.rows[Kind::MustLift as usize].keys().map(DutyRow::lift)
    }

    /// How many to apply, applied and to lift.
    pub(crate) fn totals(&self) -> [usize; 3] {
        self.rows.each_ref().map(Chunked::len)
    }

    /// The rows of every case's duties, sorted (a computation in full).
    fn sorted(cases: &Cases<Arc<Duties>>) -> [Chunked<DutyRow, ()>; 3] {
        let mut rows: [Vec<(DutyRow, ())>; 3] = Default::default();
        for (key, slot) in cases.slots.iter() {
            for row in slot.result.iter().flat_map(|duties| DutyRow::of(*key, duties)) {
                rows[row.kind as usize].push((row, ()));
            }
        }
        rows.map(|mut rows| {
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            Chunked::from_sorted(rows)
        })
    }

    /// `rows` (a kept point's) with the changed cases' old rows taken out
    /// and their new ones put in (a carried computation).
    fn carried(mut rows: [Chunked<DutyRow, ()>; 3], changed: &[Changed<Arc<Duties>>]) -> [Chunked<DutyRow, ()>; 3] {
        for (key, old, new) in changed {
            for row in old.iter().flat_map(|duties| DutyRow::of(*key, duties)) {
                let removed = rows[row.kind as usize].remove(&row);
                debug_assert!(removed.is_some(), "a kept case's rows are in the kept point's worklist");
            }
            for row in new.iter().flat_map(|duties| DutyRow::of(*key, duties)) {
                rows[row.kind as usize].insert(row, ());
            }
        }
        rows
    }
}

impl PageCache {
    /// The public list at `as_of`, every list (the view's own entries).
    pub(crate) fn public(&self, app: &App, as_of: AsOf) -> Result<Arc<Public>, PageError> {
        self.public_in(Ledger::of(app), as_of)
    }

    /// The audit at `as_of`, of `list` or of every list.
    pub(crate) fn audit(&self, app: &App, as_of: AsOf, list: Option<ListId>) -> Result<Arc<Audited>, PageError> {
        self.audit_in(Ledger::of(app), as_of, list)
    }

    /// `agency`'s worklist at `as_of`.
    pub(crate) fn worklist(&self, app: &App, as_of: AsOf, agency: &AgencyId) -> Result<Arc<Worklist>, PageError> {
        self.worklist_in(Ledger::of(app), as_of, agency)
    }

    /// Computations done in full and carried from a kept point since the server started.
    pub(crate) fn computed(&self) -> (u64, u64) {
        (self.full.load(Ordering::Relaxed), self.carried.load(Ordering::Relaxed))
    }

    /// Points kept, the per-case results they hold (a result shared by two
    /// points counts twice) and the rows of their maps' distinct chunks
    /// (what `ROWS_CACHED_MAX` bounds, per computation).
    pub(crate) fn held(&self) -> Held {
        let (a, b, c) =
            (self.public.held(|v| &v.cases), self.audit.held(|v| &v.cases), self.worklists.held(|v| &v.cases));
        Held {
            points: a.points + b.points + c.points,
            cases: a.cases + b.cases + c.cases,
            rows: a.rows + b.rows + c.rows,
        }
    }

    fn count(&self, carried: bool) {
        let counter = if carried { &self.carried } else { &self.full };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn public_in(&self, ledger: Ledger<'_>, as_of: AsOf) -> Result<Arc<Public>, PageError> {
        self.public.get(Point::new(ledger.store, as_of.known, ()), as_of.valid_at, |base| {
            let registry = ledger.store.registry(as_of.known)?;
            let publication = ledger.store.publication();
            let carry = carried(ledger.store, base.map(|b| (&b.value.cases, b.valid_at, b.records)), as_of.valid_at)?;
            self.count(carry.is_some());
            let (cases, _) = walk(ledger.store, &registry, carry, &mut |_, case| {
                let Some(list) = registry.list(&case.list) else { return Ok((None, None)) };
                let entry = views::public_entry_of(case, &registry, list, publication, as_of);
                Ok((entry, next_change(case, &registry, publication, as_of)))
            })?;
            let next = cases.next();
            Ok((Public { cases }, next))
        })
    }

    fn audit_in(&self, ledger: Ledger<'_>, as_of: AsOf, list: Option<ListId>) -> Result<Arc<Audited>, PageError> {
        let scope = Scope { list: list.clone(), agency: None };
        self.audit.get(Point::new(ledger.store, as_of.known, list), as_of.valid_at, |base| {
            let registry = ledger.store.registry(as_of.known)?;
            let publication = ledger.store.publication();
            let auditor = Auditor::new(registry.clone(), as_of, &scope, ledger.rule_sets, ledger.calendar)
                .map_err(audit_error)?;
            // "Today" (pending or overdue) moves at midnight in China: a
            // kept audit of another day is no base.
            let base = base.filter(|b| next_midnight(b.valid_at).is_some_and(|midnight| as_of.valid_at < midnight));
            let carry = carried(ledger.store, base.map(|b| (&b.value.cases, b.valid_at, b.records)), as_of.valid_at)?;
            self.count(carry.is_some());
            let carrying = carry.is_some();
            let mut found = vec![];
            let (cases, changed) = walk(ledger.store, &registry, carry, &mut |key, case| {
                if !auditor.covers(&case.list) {
                    return Ok((None, None));
                }
                let findings = auditor.case(case).map_err(audit_error)?;
                let counted = findings.map(|findings| {
                    let count = Counted(findings.len());
                    found.extend(findings.into_iter().zip(0..).map(|(finding, at)| ((key, at), finding)));
                    count
                });
                Ok((counted, next_change(case, &registry, publication, as_of)))
            })?;
            let findings = match base {
                Some(base) if carrying => Audited::carried(base.value.findings.clone(), &changed, found),
                _ => {
                    found.sort_unstable_by_key(|(key, _)| *key);
                    Chunked::from_sorted(found)
                }
            };
            let mut report = auditor.report();
            report.cases = cases.results as u64;
            let next = [cases.next(), next_midnight(as_of.valid_at)].into_iter().flatten().min();
            Ok((Audited { report, cases, findings }, next))
        })
    }

    fn worklist_in(&self, ledger: Ledger<'_>, as_of: AsOf, agency: &AgencyId) -> Result<Arc<Worklist>, PageError> {
        self.worklists.get(Point::new(ledger.store, as_of.known, agency.clone()), as_of.valid_at, |base| {
            let registry = ledger.store.registry(as_of.known)?;
            if registry.agency(agency).is_none() {
                return Err(FoldError::NotFound(format!("agency \"{agency}\"")).into());
            }
            let publication = ledger.store.publication();
            // The duties also read which MOU terms are in force: a kept
            // worklist from before a change of terms is no base.
            let base = base.filter(|b| next_mou_change(&registry, b.valid_at).is_none_or(|at| as_of.valid_at < at));
            let carry = carried(ledger.store, base.map(|b| (&b.value.cases, b.valid_at, b.records)), as_of.valid_at)?;
            self.count(carry.is_some());
            let lists = views::worklist_lists(&registry, agency);
            let mut evaluate = |_: CaseKey, case: &CaseState| {
                if !views::on_worklist(case, &lists, agency) {
                    return Ok((None, None));
                }
                let duties =
                    Some(views::case_duties(case, &registry, agency, as_of)).filter(|d| !d.is_empty()).map(Arc::new);
                Ok((duties, next_change(case, &registry, publication, as_of)))
            };
            let (cases, rows) = match (carry, base) {
                (Some(carry), Some(base)) => {
                    let (cases, changed) = walk(ledger.store, &registry, Some(carry), &mut evaluate)?;
                    (cases, Worklist::carried(base.value.rows.clone(), &changed))
                }
                _ => {
                    let cases = worklist_cases(ledger.store, &registry, &lists, agency, &mut evaluate)?;
                    let rows = Worklist::sorted(&cases);
                    (cases, rows)
                }
            };
            let next = [cases.next(), next_mou_change(&registry, as_of.valid_at)].into_iter().flatten().min();
            Ok((Worklist { rows, cases }, next))
        })
    }
}

fn audit_error(error: AuditError) -> PageError {
    match error {
        AuditError::UnknownList(list) => ApiError::not_found(format!("list \"{list}\" is not defined")).into(),
        other => ApiError::internal(other.to_string()).into(),
    }
}

/// A kept point's per-case results, and the ids of the cases to compute again.
type Carry<R> = (Cases<R>, BTreeSet<u64>);

/// A computation's evaluation of one case (with its key).
type Evaluate<'a, R> = dyn FnMut(CaseKey, &CaseState) -> Result<CaseResult<R>, PageError> + 'a;

/// What one case gives a computation: its result, if any, and its next change.
type CaseResult<R> = (Option<R>, Option<Timestamp>);

/// The kept point's per-case results and the ids of the cases to compute
/// again, if a computation at `valid_at` can be carried from `base` (its
/// per-case results, the valid time and the records between): the records
/// are at most `CARRY_RECORDS_MAX`, none is a registry event, and the valid
/// time is not before the kept one. None: compute in full.
fn carried<R>(
    store: &Store,
    base: Option<(&Cases<R>, Timestamp, (u64, u64))>,
    valid_at: Timestamp,
) -> Result<Option<Carry<R>>, FoldError> {
    let Some((cases, base_valid_at, (from, to))) = base else { return Ok(None) };
    if to.saturating_sub(from) > CARRY_RECORDS_MAX || valid_at < base_valid_at {
        return Ok(None);
    }
    let changes = store.changes(from, to)?;
    if changes.registry {
        // Any case may read differently under another registry: in full.
        return Ok(None);
    }
    let mut ids = changes.cases;
    ids.extend(cases.due(valid_at));
    // Shares the kept point's chunks: copies a pointer per chunk.
    Ok(Some((cases.clone(), ids)))
}

/// A computation's per-case results: the carried ones with `ids` computed
/// again, or (`carry` None) every case of every list of `registry`; and,
/// when carried, the cases computed again with their old and new results.
fn walk<R: Clone>(
    store: &Store,
    registry: &Registry,
    carry: Option<Carry<R>>,
    evaluate: &mut Evaluate<'_, R>,
) -> Result<(Cases<R>, Vec<Changed<R>>), PageError> {
    let positions: BTreeMap<&ListId, u32> =
        registry.lists().zip(0..).map(|((id, _), position)| (id, position)).collect();
    let mut failed = None;
    let mut visit = |cases: &mut Cases<R>, id: u64, case: CaseState| {
        let &position = positions.get(&case.list)?;
        let key = (position, id);
        match evaluate(key, &case) {
            Ok(result) if failed.is_none() => {
                let old = cases.set(key, result);
                Some((key, old, cases.result(key).cloned()))
            }
            Ok(_) => None,
            Err(error) => {
                failed = Some(error);
                None
            }
        }
    };
    let mut changed = vec![];
    let cases = match carry {
        Some((mut cases, ids)) => {
            store.for_ids(&ids, &mut |id, case| changed.extend(visit(&mut cases, id, case)))?;
            cases
        }
        None => {
            let mut cases = Cases::default();
            for (list, _) in registry.lists() {
                store.for_list_ids(list, &mut |id, case| {
                    visit(&mut cases, id, case);
                })?;
            }
            cases
        }
    };
    failed.map_or(Ok((cases, changed)), Err)
}

/// A worklist's per-case results in full: the cases of `lists` and those
/// `agency` applied a measure on, each once.
fn worklist_cases<R: Clone>(
    store: &Store,
    registry: &Registry,
    lists: &BTreeSet<ListId>,
    agency: &AgencyId,
    evaluate: &mut Evaluate<'_, R>,
) -> Result<Cases<R>, PageError> {
    let positions: BTreeMap<&ListId, u32> =
        registry.lists().zip(0..).map(|((id, _), position)| (id, position)).collect();
    let (mut cases, mut seen, mut failed) = (Cases::default(), BTreeSet::new(), None);
    let mut visit = |id: u64, case: CaseState| {
        let Some(&position) = positions.get(&case.list) else { return };
        if failed.is_some() || !seen.insert(id) {
            return;
        }
        match evaluate((position, id), &case) {
            Ok(result) => {
                cases.set((position, id), result);
            }
            Err(error) => failed = Some(error),
        }
    };
    for list in lists {
        store.for_list_ids(list, &mut visit)?;
    }
    store.for_applier_ids(agency, &mut visit)?;
    failed.map_or(Ok(cases), Err)
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

/// The entries of the distinct chunks the computations in `cells` hold.
fn rows_held<'a, V: Weigh + 'a>(cells: impl Iterator<Item = &'a Cell<V>>) -> usize {
    let (mut seen, mut rows) = (HashSet::new(), 0);
    for computed in cells.filter_map(|cell| cell.get()?.as_ref()) {
        computed.value.chunks(&mut |at, entries| {
            if seen.insert(at) {
                rows += entries;
            }
        });
    }
    rows
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

/// A kept computation a new one can be carried from: its value, the valid
/// time it was computed at, and the records `[from, to)` the new point
/// knows beyond it.
struct Base<V> {
    value: Arc<V>,
    valid_at: Timestamp,
    records: (u64, u64),
}

impl<K: Key, V: Weigh> Memo<K, V> {
    /// The value for `key` at `valid_at`: a computation that holds then, or
    /// `compute`'s (its value, and the valid time before which it holds),
    /// given the nearest kept computation it may be carried from.
    fn get(
        &self,
        key: K,
        valid_at: Timestamp,
        compute: impl FnOnce(Option<&Base<V>>) -> Result<(V, Option<Timestamp>), PageError>,
    ) -> Result<Arc<V>, PageError> {
        let (cell, base) = self.slot(key, valid_at);
        let mut compute = Some(compute);
        let (mut failed, mut computed_here) = (None, false);
        let done = cell.get_or_init(|| match compute.take().map(|c| c(base.as_ref())) {
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
            (_, Some(compute)) => compute(base.as_ref()).map(|(value, _)| Arc::new(value)),
            (_, None) => Err(ApiError::internal("a page computation failed").into()),
        }
    }

    /// The slot that holds (or may hold, being computed) `key` at `valid_at`,
    /// most recently used; else a new one, evicting the least recently
    /// used, and the nearest kept computation it may be carried from.
    fn slot(&self, key: K, valid_at: Timestamp) -> (Cell<V>, Option<Base<V>>) {
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
            return (cell, None);
        }
        let base = slots
            .iter()
            .filter(|slot| slot.from <= valid_at)
            .filter_map(|slot| {
                let records = key.since(&slot.key)?;
                let computed = slot.cell.get()?.as_ref()?;
                Some(Base { value: computed.value.clone(), valid_at: slot.from, records })
            })
            // The fewest records between, then the latest valid time: a
            // point carried across a long stretch of valid time computes
            // again every case whose next change came in it (carrying "now"
            // from a point at a valid time a year before took 5 s at 1.06M
            // records, more than in full, when the two kept points tied).
            .min_by_key(|base| (base.records.1 - base.records.0, std::cmp::Reverse(base.valid_at)));
        let cell = Cell::default();
        slots.push_back(Slot { key, from: valid_at, cell: cell.clone() });
        let rows = |slots: &VecDeque<Slot<K, V>>| -> usize { rows_held(slots.iter().map(|slot| &slot.cell)) };
        while slots.len() > POINTS_CACHED_MAX || (slots.len() > 1 && rows(&slots) > ROWS_CACHED_MAX) {
            slots.pop_front();
        }
        (cell, base)
    }

    /// Points kept, the per-case results in them and their distinct rows.
    fn held<R>(&self, cases: impl Fn(&V) -> &Cases<R>) -> Held {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let held = slots.iter().filter_map(|slot| slot.cell.get()?.as_ref()).map(|c| cases(&c.value).slots.len());
        let rows = rows_held(slots.iter().map(|slot| &slot.cell));
        Held { points: slots.len() as u64, cases: held.sum::<usize>() as u64, rows: rows as u64 }
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

    impl Key for u32 {
        fn since(&self, _: &Self) -> Option<(u64, u64)> {
            None
        }
    }

    impl Key for usize {
        fn since(&self, _: &Self) -> Option<(u64, u64)> {
            None
        }
    }

    impl Weigh for i64 {
        fn chunks(&self, each: &mut dyn FnMut(usize, usize)) {
            each(std::ptr::from_ref(self) as usize, 1);
        }
    }

    /// A test value weighs what it says (one chunk of its own).
    impl Weigh for usize {
        fn chunks(&self, each: &mut dyn FnMut(usize, usize)) {
            each(std::ptr::from_ref(self) as usize, *self);
        }
    }

    #[test]
    fn the_memo_keeps_its_rows_under_the_limit_and_always_the_newest_point() {
        let memo: Memo<usize, usize> = Memo::default();
        let half = ROWS_CACHED_MAX / 2;
        for key in 1..=4 {
            memo.get(key, at(1), |_| Ok((half, None))).unwrap();
        }
        // Points 1 and 2 filled the limit; the fourth point's slot dropped
        // the first (over the limit with three), keeping 2, 3 and the new one.
        assert_eq!(memo.len(), 3);
        let mut recomputed = false;
        memo.get(1, at(1), |_| {
            recomputed = true;
            Ok((half, None))
        })
        .unwrap();
        assert!(recomputed, "the least recently used point was dropped");
        // One point over the limit on its own is still kept.
        let memo: Memo<usize, usize> = Memo::default();
        memo.get(1, at(1), |_| Ok((ROWS_CACHED_MAX * 2, None))).unwrap();
        memo.get(2, at(1), |_| Ok((1, None))).unwrap();
        assert_eq!(memo.len(), 1, "the heavy point went when the next came");
        assert_eq!(*memo.get(2, at(1), |_| Ok((5, None))).unwrap(), 1, "the newest point is kept");
    }

    #[test]
    fn a_computation_serves_later_valid_times_until_its_next_change_and_no_earlier_ones() {
        let memo: Memo<u32, i64> = Memo::default();
        let mut runs = 0;
        let mut get = |key, t: i64| {
            *memo
                .get(key, at(t), |_| {
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
        let failed = memo.get(0, at(1), |_| Err(PageError::bad("list", "no such list")));
        assert!(failed.is_err());
        assert_eq!(memo.len(), 0);
        assert_eq!(*memo.get(0, at(1), |_| Ok((7, None))).unwrap(), 7);
        for key in 1..=POINTS_CACHED_MAX * 2 {
            memo.get(key, at(1), |_| Ok((key, None))).unwrap();
        }
        assert_eq!(memo.len(), POINTS_CACHED_MAX);
        assert_eq!(*memo.get(0, at(1), |_| Ok((8, None))).unwrap(), 8, "the oldest point was evicted");
    }

    #[test]
    fn the_next_midnight_is_in_china() {
        let t = Timestamp::parse("2025-06-01T23:59:59+08:00").unwrap();
        assert_eq!(next_midnight(t).unwrap(), Timestamp::parse("2025-06-02T00:00:00+08:00").unwrap());
        let t = Timestamp::parse("2025-06-01T00:00:00+08:00").unwrap();
        assert_eq!(next_midnight(t).unwrap(), Timestamp::parse("2025-06-02T00:00:00+08:00").unwrap());
    }
}

/// Carried computations against the views' own, over a ledger taking
/// random appends: back-dated facts (the demo's late recordings), an MOU
/// amended and a rule set version published in the middle of the stream,
/// valid times that move forward across next changes and midnights, and
/// sometimes back.
#[cfg(test)]
mod carried {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use docket_audit::audit::audit_each;
    use docket_fold::views::EnforcementView;
    use docket_log::ledger::{self, Ledger as LogLedger};
    use docket_model::event::{Body, Event, MouParty, RegistryEvent, Signer, FORMAT_VERSION};
    use docket_model::{Digest, Hash32, PublicKey, SignedEvent};

    /// A small deterministic generator (splitmix64): the test's randomness, seeded.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    fn registry_event(root: &ed25519_dalek::SigningKey, at: Timestamp, body: RegistryEvent) -> SignedEvent {
        let key = PublicKey(root.verifying_key().to_bytes());
        let event = Event {
            format: FORMAT_VERSION,
            signer: Signer::Registry,
            key,
            effective_at: at,
            body: Body::Registry(body),
        };
        SignedEvent::sign(event, root).unwrap()
    }

    /// An amendment of the first MOU that binds its first party to one more
    /// measure, retroactively from a day after its terms began (every
    /// designated case of its list, touched or not, gets a duty at once),
    /// and a newer version of the first list's rule set, published, whose
    /// document the reader lacks (the audit's header says so).
    fn registry_changes(store: &Store, root: &ed25519_dalek::SigningKey, at: Timestamp) -> Vec<SignedEvent> {
        let registry = store.current_registry();
        let (mou, state) = registry.mous().next().unwrap();
        let terms = state.terms.last().unwrap();
        let mut catalogued = registry.mous().flat_map(|(_, m)| m.terms.iter().flat_map(|t| t.parties.iter()));
        let extra =
            catalogued.find_map(|p| p.measures.iter().find(|m| !terms.parties[0].measures.contains(m)).cloned());
        assert!(extra.is_some(), "some MOU binds a measure the first party is not bound to");
        let mut parties: Vec<MouParty> = terms.parties.clone();
        parties[0].measures.extend(extra);
        let effective_from = Timestamp::from_micros(terms.effective_from.micros() + 86_400_000_000).unwrap();
        let amended = RegistryEvent::MouAmended { mou: mou.clone(), parties, effective_from, effective_until: None };
        let (_, list) = registry.lists().next().unwrap();
        let newest = registry.rule_set(&list.rule_set).iter().map(|v| v.version).max().unwrap_or(0);
        let published = RegistryEvent::RuleSetPublished {
            rule_set: list.rule_set.clone(),
            version: newest + 1,
            digest: Digest::Sha256(Hash32([7; 32])),
            source: "a version the reader lacks (test)".into(),
        };
        vec![registry_event(root, at, amended), registry_event(root, at, published)]
    }

    /// The views' own answers at `as_of` against the carried cache's.
    fn check(cache: &PageCache, ledger: Ledger<'_>, as_of: AsOf, agencies: &[AgencyId], step: usize) {
        let store = ledger.store;
        let public = cache.public_in(ledger, as_of).unwrap();
        let entries: Vec<PublicEntry> = public.entries().cloned().collect();
        assert_eq!(entries, views::public_view(store, as_of, None).unwrap().entries, "public list, step {step}");
        let audited = cache.audit_in(ledger, as_of, None).unwrap();
        let mut findings = vec![];
        let scope = Scope::default();
        let mut report =
            audit_each(store, as_of, &scope, ledger.rule_sets, ledger.calendar, &mut |f| findings.push(f)).unwrap();
        assert_eq!(
            audited.findings().collect::<Vec<_>>(),
            findings.iter().collect::<Vec<_>>(),
            "audit findings, step {step}"
        );
        report.as_of = audited.report.as_of;
        assert_eq!(audited.report, report, "audit report, step {step}");
        for agency in agencies {
            let worklist = cache.worklist_in(ledger, as_of, agency).unwrap();
            let view = EnforcementView {
                agency: agency.clone(),
                as_of,
                to_apply: worklist.to_apply().cloned().collect(),
                applied: worklist.applied().cloned().collect(),
                must_lift: worklist.must_lift().cloned().collect(),
            };
            assert_eq!(view, views::enforcement_view(store, as_of, agency).unwrap(), "{agency}, step {step}");
        }
    }

    #[test]
    fn carried_computations_equal_full_ones_after_random_appends() {
        let seed = 19;
        let demo = docket_world::build(40, seed);
        let times = docket_world::recording_times(&demo.events, &demo.recorded_late);
        let order = docket_world::log_order(&demo.events, &times);
        let dir = tempfile::tempdir().unwrap();
        let root = PublicKey(demo.registry_root.verifying_key().to_bytes());
        ledger::init(
            dir.path(),
            "docket.invalid/carried",
            &docket_world::key(seed, "log"),
            root,
            Some(&demo.registry_root),
        )
        .unwrap();
        let mut log = LogLedger::open(dir.path(), docket_log::Config::default()).unwrap();
        let mut append = |events: Vec<SignedEvent>, at: Timestamp| {
            let results = log.log.append_batch_with(events, at, true).unwrap();
            assert!(results.iter().all(Result::is_ok), "refused: {results:?}");
        };
        // The registry first, then the cases in random chunks.
        let registry_end = order.iter().position(|&i| demo.events[i].event().case().is_some()).unwrap();
        let (first, rest) = order.split_at(registry_end);
        append(first.iter().map(|&i| demo.events[i].clone()).collect(), times[first[first.len() - 1]]);
        let (mut store, _) = Store::open(dir.path(), docket_fold::StoreLimits::default()).unwrap();
        let rule_sets = RuleSet::bundled();
        store.set_publication(RuleSet::publication(&rule_sets));
        let calendar = Calendar::bundled();
        let registry = store.current_registry();
        let agencies: Vec<AgencyId> =
            registry.mous().flat_map(|(_, m)| m.terms[0].parties.iter().map(|p| p.agency.clone())).take(3).collect();
        let cache = PageCache::default();
        let mut random = Random(seed);
        let (mut done, mut changed_registry, mut step) = (0, false, 0);
        let mut valid_at = times[rest[0]];
        while done < rest.len() {
            let chunk = &rest[done..(done + 1 + random.below(24) as usize).min(rest.len())];
            let at = times[chunk[chunk.len() - 1]];
            // One write per recording time, as the demo's writer does.
            for group in chunk.chunk_by(|a, b| times[*a] == times[*b]) {
                append(group.iter().map(|&i| demo.events[i].clone()).collect(), times[group[0]]);
            }
            done += chunk.len();
            if !changed_registry && done > rest.len() / 2 {
                changed_registry = true;
                append(registry_changes(&store, &demo.registry_root, at), at);
            }
            store.catch_up().unwrap();
            // "Now" moves forward by up to two days, across midnights and
            // next changes; one step in eight goes back a day.
            valid_at = match random.below(8) {
                0 => Timestamp::from_micros(valid_at.micros() - 86_400_000_000).unwrap(),
                _ => {
                    Timestamp::from_micros(valid_at.max(at).micros() + random.below(2 * 86_400_000_000) as i64).unwrap()
                }
            };
            let as_of = AsOf { known: Known::Through(store.records() - 1), valid_at };
            let ledger = Ledger { store: &store, rule_sets: &rule_sets, calendar: &calendar };
            check(&cache, ledger, as_of, &agencies, step);
            step += 1;
        }
        assert!(changed_registry);
        let (full, carried) = cache.computed();
        assert!(carried > full, "most computations were carried: {full} in full, {carried} carried");
        assert!(full > 5, "the first point, going back, and the registry change were computed in full: {full}");
    }
}
