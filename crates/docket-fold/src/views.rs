//! The views: what each user reads, computed from the cases and the registry
//! at one bitemporal point. Every view works over a [`Source`], so the pure
//! in-memory fold and the redb store answer with the same code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use docket_model::event::{LegalRef, Severity};
use docket_model::registry::ListState;
use docket_model::registry::MouState;
use docket_model::{AgencyId, CaseNumber, Date, EventId, ListId, MeasureCode, MouId, Registry, SubjectId, Timestamp};

use crate::case::{add_months, evaluate, AsOf, CaseState, CaseView, Evidence, Known, MeasureView, Status};
use crate::FoldError;

/// Where views read cases and the registry from.
pub trait Source {
    /// The registry as the ledger knew it at `known`.
    fn registry(&self, known: Known) -> Result<Arc<Registry>, FoldError>;
    /// Every case on `list`, in opening order (the seq of its first event).
    fn for_list(&self, list: &ListId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError>;
    /// Every case of `subject`, on every list, in opening order.
    fn for_subject(&self, subject: &SubjectId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError>;
    /// Every case on which `agency` ever applied a measure, in opening order.
    fn for_applier(&self, agency: &AgencyId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError>;
    /// How long designations may stay on the public list, by rule set.
    fn publication(&self) -> &Publication;
}

/// The publicity maximum of each rule set document the reader has, by its
/// id and version: the longest a designation may stay on the public list,
/// by severity, counted from the day it took effect. The rule sets
/// themselves are data of the audit crate (which builds this with
/// `docket_audit::RuleSet::publication`); the fold only needs these months
/// to take an entry off the public list when they run out, so the delta
/// says DEL.
///
/// The document that applies to a case is the one the audit applies: the
/// version of the list's rule set in force when the case opened, or the
/// newest earlier version the reader has, or the newest version if the
/// registry published none. A case with no such document, or whose document
/// sets no maximum, keeps its entry until its term ends (the audit's report
/// says which rule set documents it lacks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publication {
    /// (rule set id, version) -> the maximum, if the document sets one.
    documents: BTreeMap<(String, u32), Option<PublicityMax>>,
}

/// Months of publicity by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicityMax {
    pub minor: u32,
    pub general: u32,
    pub serious: u32,
}

impl PublicityMax {
    pub fn of(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Minor => self.minor,
            Severity::General => self.general,
            Severity::Serious => self.serious,
        }
    }
}

impl Publication {
    /// No maxima: entries stay until their term ends.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds rule set document `id` version `version`, with its maximum if it sets one.
    pub fn insert(&mut self, id: &str, version: u32, max: Option<PublicityMax>) {
        self.documents.insert((id.to_owned(), version), max);
    }

    /// When `view`'s designation leaves the public list by the publicity
    /// maximum of the document that applies to its case (see [`Publication`]).
    pub fn ends(&self, registry: &Registry, list: &ListState, view: &CaseView) -> Option<Timestamp> {
        let designation = view.designation.as_ref()?;
        let opened = view.notice.as_ref().map_or(designation.decision.at, |n| n.evidence.at);
        let id = list.rule_set.as_str();
        let versions = registry.rule_set(&list.rule_set);
        let newest_through = |version: u32| {
            self.documents.range((id.to_owned(), 0)..=(id.to_owned(), version)).next_back().map(|(_, max)| max)
        };
        let max = match versions.iter().rev().find(|v| v.published_at <= opened).or(versions.first()) {
            Some(published) => newest_through(published.version)?,
            None => newest_through(u32::MAX)?,
        };
        add_months(designation.in_force_from, max.as_ref()?.of(designation.severity))
    }
}

/// One case on a designating agency's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ListEntry {
    /// Unmasked: this view is for the designating agency.
    pub subject: String,
    pub number: CaseNumber,
    pub status: Status,
    /// Valid time the status began.
    pub since: Timestamp,
    pub in_force_from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// An objection against the designation is pending.
    pub contested: bool,
    /// Measures in place.
    pub measures_in_place: usize,
    /// Facts that did not fit (see the subject view for which).
    pub marks: usize,
    /// Applications for credit restoration received and not yet decided
    /// (the subject view lists them, with their dates).
    pub applications_pending: usize,
    pub version: u64,
}

/// One list and its cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ListSection {
    pub list: ListId,
    pub name: String,
    pub designating_agency: AgencyId,
    pub entries: Vec<ListEntry>,
}

/// The designating agency's view: its lists with the status of every case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ListView {
    pub as_of: AsOf,
    pub lists: Vec<ListSection>,
}

/// A measure an agency must apply, has applied, or must lift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Duty {
    pub list: ListId,
    pub subject: String,
    pub number: CaseNumber,
    pub measure: MeasureCode,
    pub mou: MouId,
    /// Valid time from which the duty stands.
    pub since: Timestamp,
    /// The decision behind a duty to apply; the application behind one to lift.
    pub evidence: Evidence,
}

/// Why a measure must be lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiftDue {
    CaseRestored,
    CaseRevoked,
    CaseExpired,
    /// The case was never designated (or not yet in force).
    NotDesignated,
    /// The MOU does not (or no longer) bind this agency to this measure.
    NotCoveredByMou,
}

/// A measure to lift, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LiftDuty {
    #[serde(flatten)]
    pub duty: Duty,
    pub why: LiftDue,
}

/// A responsible agency's worklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct EnforcementView {
    pub agency: AgencyId,
    pub as_of: AsOf,
    /// Designated cases x measures its MOUs bind it to, not yet applied.
    pub to_apply: Vec<Duty>,
    /// Applied and still due.
    pub applied: Vec<Duty>,
    /// In place but no longer (or never) due.
    pub must_lift: Vec<LiftDuty>,
}

/// Every case of one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SubjectView {
    pub subject: String,
    pub as_of: AsOf,
    pub cases: Vec<CaseView>,
}

/// The normalised status integrators screen on. Only restrictions in force
/// are published: a restored, revoked or expired designation leaves the
/// public list (seed 004 (11): stop sharing the information or delete it),
/// so a delta says DEL for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicStatus {
    /// Designated and in force (see `contested` for a pending objection).
    Active,
}

/// One published listing. Identifiers are masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PublicEntry {
    pub list: ListId,
    pub authority: AgencyId,
    pub subject: String,
    pub number: CaseNumber,
    pub status: PublicStatus,
    /// An objection or review against the designation is pending: the
    /// restriction is in force while it is decided.
    pub contested: bool,
    /// The date of the designation decision (China Standard Time).
    pub listing_date: Date,
    /// When the ledger recorded the decision (China Standard Time date).
    pub recorded_date: Date,
    /// When it took effect.
    pub start_date: Date,
    /// When it leaves the public list: the end of its term, or of the
    /// publicity maximum for its severity if that comes first (none: until
    /// removed).
    pub end_date: Option<Date>,
    pub severity: Severity,
    /// The provisions the decision cites.
    pub legal_basis: Vec<LegalRef>,
    /// The number of the legally effective document the decision rests on.
    pub basis_document: Option<String>,
    pub decision: EventId,
}

/// The public list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PublicView {
    pub as_of: AsOf,
    pub entries: Vec<PublicEntry>,
}

/// One agency bound to apply the measure on a ground.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Binding {
    pub agency: AgencyId,
    /// The application in place, if it has applied it.
    pub applied: Option<Evidence>,
}

/// Why a subject is restricted: a designation in force and an MOU binding the measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Ground {
    pub list: ListId,
    pub number: CaseNumber,
    pub decision: Evidence,
    pub in_force_from: Timestamp,
    pub until: Option<Timestamp>,
    pub mou: MouId,
    pub agencies: Vec<Binding>,
}

/// The point check: is the subject restricted by the measure at the valid time, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CheckView {
    pub subject: String,
    pub measure: MeasureCode,
    pub agency: Option<AgencyId>,
    pub as_of: AsOf,
    pub restricted: bool,
    pub grounds: Vec<Ground>,
    /// Applications of the measure still in place with no ground (case not
    /// in force, or no MOU binding): the subject is restricted in fact, not in law.
    pub without_ground: Vec<MeasureView>,
}

fn case_key(case: &CaseState) -> (ListId, SubjectId, CaseNumber) {
    (case.list.clone(), case.subject.clone(), case.number.clone())
}

/// The designating agency's lists (all lists if `agency` is `None`), or one list.
pub fn list_view(
    source: &dyn Source,
    as_of: AsOf,
    agency: Option<&AgencyId>,
    list: Option<&ListId>,
) -> Result<ListView, FoldError> {
    let registry = source.registry(as_of.known)?;
    if let Some(agency) = agency {
        if registry.agency(agency).is_none() {
            return Err(FoldError::NotFound(format!("agency \"{agency}\"")));
        }
    }
    if let Some(list) = list {
        if registry.list(list).is_none() {
            return Err(FoldError::NotFound(format!("list \"{list}\"")));
        }
    }
    let mut lists = vec![];
    for (id, state) in registry.lists() {
        if agency.is_some_and(|a| *a != state.designating_agency) || list.is_some_and(|l| l != id) {
            continue;
        }
        let mut entries = vec![];
        source.for_list(id, &mut |case| {
            let view = evaluate(&case, &registry, as_of);
            entries.extend(list_entry(&case, &view));
        })?;
        lists.push(ListSection {
            list: id.clone(),
            name: state.name.clone(),
            designating_agency: state.designating_agency.clone(),
            entries,
        });
    }
    Ok(ListView { as_of, lists })
}

/// A case's line on its list, once it has a status.
fn list_entry(case: &CaseState, view: &CaseView) -> Option<ListEntry> {
    let (status, since) = view.status_since()?;
    Some(ListEntry {
        subject: case.subject.to_string(),
        number: case.number.clone(),
        status,
        since,
        in_force_from: view.designation.as_ref().map(|d| d.in_force_from),
        until: view.designation.as_ref().and_then(|d| d.until),
        contested: view.contested(),
        measures_in_place: view.active_measures().count(),
        marks: view.marks.len(),
        applications_pending: view.pending_applications().count(),
        version: view.version,
    })
}

/// The first valid time in `(from, to]` at which `mou` stops binding
/// `agency` to `measure`, if it does.
fn binding_ends(
    state: &MouState,
    agency: &AgencyId,
    measure: &MeasureCode,
    from: Timestamp,
    to: Timestamp,
) -> Option<Timestamp> {
    let mut instants: Vec<Timestamp> = state
        .terms
        .iter()
        .flat_map(|terms| [Some(terms.effective_from), terms.effective_until])
        .flatten()
        .filter(|t| *t > from && *t <= to)
        .collect();
    instants.sort();
    instants.into_iter().find(|t| !state.binds(agency, measure, *t))
}

/// A responsible agency's worklist.
pub fn enforcement_view(source: &dyn Source, as_of: AsOf, agency: &AgencyId) -> Result<EnforcementView, FoldError> {
    let registry = source.registry(as_of.known)?;
    if registry.agency(agency).is_none() {
        return Err(FoldError::NotFound(format!("agency \"{agency}\"")));
    }
    let mut duties = Duties::default();
    let mut seen = BTreeSet::new();
    let mut visit = |case: CaseState| {
        if !seen.insert(case_key(&case)) {
            return;
        }
        duties.extend(case_duties(&case, &registry, agency, as_of));
    };
    for list in worklist_lists(&registry, agency) {
        source.for_list(&list, &mut visit)?;
    }
    source.for_applier(agency, &mut visit)?;
    Ok(duties.into_view(agency, as_of))
}

/// The lists whose cases [`enforcement_view`] reads for `agency` (besides
/// those it applied a measure on): the lists of the MOUs it is a party to,
/// in any version of their terms.
pub fn worklist_lists(registry: &Registry, agency: &AgencyId) -> BTreeSet<ListId> {
    registry
        .mous()
        .filter(|(_, mou)| mou.terms.iter().any(|t| t.parties.iter().any(|p| p.agency == *agency)))
        .map(|(_, mou)| mou.list.clone())
        .collect()
}

/// Whether [`enforcement_view`] reads `case` for `agency`: it is on one of
/// `lists` ([`worklist_lists`]), or the agency applied a measure on it
/// (any stored fact, as the store's applier index has it).
pub fn on_worklist(case: &CaseState, lists: &BTreeSet<ListId>, agency: &AgencyId) -> bool {
    lists.contains(&case.list)
        || case.facts.iter().any(|f| f.agency == *agency && matches!(f.step, crate::case::Step::MeasureApplied { .. }))
}

/// One case's duties for `agency` at `as_of`, in the order found (a
/// worklist sorts them: [`Duties::into_view`]).
pub fn case_duties(case: &CaseState, registry: &Registry, agency: &AgencyId, as_of: AsOf) -> Duties {
    let view = evaluate(case, registry, as_of);
    let mut duties = Duties::default();
    worklist(registry, &view, agency, as_of, &mut duties);
    duties
}

/// Duties of one or more cases, before they are sorted into a worklist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Duties {
    pub to_apply: Vec<Duty>,
    pub applied: Vec<Duty>,
    pub must_lift: Vec<LiftDuty>,
}

impl Duties {
    /// No duty at all.
    pub fn is_empty(&self) -> bool {
        self.to_apply.is_empty() && self.applied.is_empty() && self.must_lift.is_empty()
    }

    /// Adds `other`'s duties after these.
    pub fn extend(&mut self, other: Duties) {
        self.to_apply.extend(other.to_apply);
        self.applied.extend(other.applied);
        self.must_lift.extend(other.must_lift);
    }

    /// The worklist of `agency` at `as_of`: each kind sorted by list,
    /// subject, number and measure (a stable sort: one case's duties for
    /// one measure keep the order found).
    pub fn into_view(self, agency: &AgencyId, as_of: AsOf) -> EnforcementView {
        let Self { mut to_apply, mut applied, mut must_lift } = self;
        fn order(a: &Duty, b: &Duty) -> std::cmp::Ordering {
            (&a.list, &a.subject, &a.number, &a.measure).cmp(&(&b.list, &b.subject, &b.number, &b.measure))
        }
        to_apply.sort_by(order);
        applied.sort_by(order);
        must_lift.sort_by(|a, b| order(&a.duty, &b.duty));
        EnforcementView { agency: agency.clone(), as_of, to_apply, applied, must_lift }
    }
}

/// Adds one case's duties for `agency` to its worklist: measures its MOUs
/// bind it to apply (or that it applied), and applications to lift.
fn worklist(registry: &Registry, case: &CaseView, agency: &AgencyId, as_of: AsOf, out: &mut Duties) {
    let in_place: Vec<&MeasureView> = case.active_measures().filter(|m| m.agency == *agency).collect();
    bound_duties(registry, case, agency, as_of, &in_place, out);
    for applied in in_place {
        if let Some((why, since)) = lift_due(registry, case, agency, applied, as_of) {
            out.must_lift.push(LiftDuty {
                duty: duty(case, &applied.measure, &applied.mou, since.max(applied.applied.at), applied.applied),
                why,
            });
        }
    }
}

/// A duty about `measure` on `case`.
fn duty(case: &CaseView, measure: &MeasureCode, mou: &MouId, since: Timestamp, evidence: Evidence) -> Duty {
    Duty {
        list: case.list.clone(),
        subject: case.subject.to_string(),
        number: case.number.clone(),
        measure: measure.clone(),
        mou: mou.clone(),
        since,
        evidence,
    }
}

/// While `case` is in force: each measure an MOU of its list binds `agency`
/// to at the valid time, as applied (one of `in_place`) or to apply.
fn bound_duties(
    registry: &Registry,
    case: &CaseView,
    agency: &AgencyId,
    as_of: AsOf,
    in_place: &[&MeasureView],
    out: &mut Duties,
) {
    let (true, Some(designation)) = (case.in_force(), &case.designation) else {
        return;
    };
    for (mou_id, mou) in registry.mous().filter(|(_, mou)| mou.list == case.list) {
        let Some(terms) = mou.terms_at(as_of.valid_at) else { continue };
        for party in terms.parties.iter().filter(|p| p.agency == *agency) {
            for measure in &party.measures {
                let since = designation.in_force_from.max(terms.effective_from);
                match in_place.iter().find(|m| m.measure == *measure) {
                    Some(applied) => out.applied.push(duty(case, measure, &applied.mou, since, applied.applied)),
                    None => out.to_apply.push(duty(case, measure, mou_id, since, designation.decision)),
                }
            }
        }
    }
}

/// Whether `agency` must lift `applied`, why, and from when (before the
/// application's own time is taken into account): a designation in force
/// whose MOU no longer binds it, or a case no longer (or never) designated.
fn lift_due(
    registry: &Registry,
    case: &CaseView,
    agency: &AgencyId,
    applied: &MeasureView,
    as_of: AsOf,
) -> Option<(LiftDue, Timestamp)> {
    match case.status {
        Some(Status::Designated) => {
            let bound = registry.mou(&applied.mou).filter(|mou| mou.list == case.list);
            match bound {
                Some(mou) if mou.binds(agency, &applied.measure, as_of.valid_at) => None,
                Some(mou) if applied.covered => Some((
                    LiftDue::NotCoveredByMou,
                    binding_ends(mou, agency, &applied.measure, applied.applied.at, as_of.valid_at)
                        .unwrap_or(applied.applied.at),
                )),
                _ => Some((LiftDue::NotCoveredByMou, applied.applied.at)),
            }
        }
        Some(Status::Restored) => Some((LiftDue::CaseRestored, case.ended_at().unwrap_or(applied.applied.at))),
        Some(Status::Revoked) => Some((LiftDue::CaseRevoked, case.ended_at().unwrap_or(applied.applied.at))),
        Some(Status::Expired) => Some((LiftDue::CaseExpired, case.ended_at().unwrap_or(applied.applied.at))),
        _ => Some((LiftDue::NotDesignated, applied.applied.at)),
    }
}

/// Every case of one subject, unmasked.
pub fn subject_view(source: &dyn Source, as_of: AsOf, subject: &SubjectId) -> Result<SubjectView, FoldError> {
    let registry = source.registry(as_of.known)?;
    let mut cases = vec![];
    source.for_subject(subject, &mut |case| {
        let view = evaluate(&case, &registry, as_of);
        if view.version > 0 {
            cases.push(view);
        }
    })?;
    Ok(SubjectView { subject: subject.to_string(), as_of, cases })
}

/// The public list: designations in force only (restored, revoked and
/// expired ones leave it, and so do those past the publicity maximum for
/// their severity: [`Publication`]), minor severity left out (normally
/// unpublished under the credit restoration measures), natural persons
/// designated under 18 never published, identifiers masked.
pub fn public_view(source: &dyn Source, as_of: AsOf, list: Option<&ListId>) -> Result<PublicView, FoldError> {
    let registry = source.registry(as_of.known)?;
    let mut entries = vec![];
    for (id, state) in registry.lists() {
        if list.is_some_and(|l| l != id) {
            continue;
        }
        source.for_list(id, &mut |case| {
            entries.extend(public_entry_of(&case, &registry, state, source.publication(), as_of));
        })?;
    }
    Ok(PublicView { as_of, entries })
}

/// `case`'s entry on the public list at `as_of`, if it has one: what
/// [`public_view`] lists for it. `list` is the case's list in `registry`.
pub fn public_entry_of(
    case: &CaseState,
    registry: &Registry,
    list: &ListState,
    publication: &Publication,
    as_of: AsOf,
) -> Option<PublicEntry> {
    let view = evaluate(case, registry, as_of);
    let ends = publication.ends(registry, list, &view);
    public_entry(&view, &list.designating_agency, ends, as_of)
}

/// The entry `view` publishes at `as_of`, if any; `ends`: when the
/// publicity maximum takes it off the list.
fn public_entry(view: &CaseView, authority: &AgencyId, ends: Option<Timestamp>, as_of: AsOf) -> Option<PublicEntry> {
    let designation = view.designation.as_ref()?;
    if designation.severity == Severity::Minor || view.status? != Status::Designated {
        return None;
    }
    if minor_when_designated(&view.subject, designation.in_force_from) {
        return None;
    }
    if ends.is_some_and(|ends| as_of.valid_at >= ends) {
        return None;
    }
    let end = match (designation.until, ends) {
        (Some(until), Some(ends)) => Some(until.min(ends)),
        (until, ends) => until.or(ends),
    };
    Some(PublicEntry {
        list: view.list.clone(),
        authority: authority.clone(),
        subject: view.subject.display_masked(),
        number: view.number.clone(),
        status: PublicStatus::Active,
        contested: view.contested(),
        listing_date: designation.decided_at.china_date(),
        recorded_date: designation.recorded_at.china_date(),
        start_date: designation.in_force_from.china_date(),
        end_date: end.map(Timestamp::china_date),
        severity: designation.severity,
        legal_basis: designation.legal_basis.clone(),
        basis_document: designation.basis.as_ref().map(|b| b.number.clone()),
        decision: designation.decision.id,
    })
}

/// Whether a natural person was under 18 on `at`, from the birth date in the
/// resident identity number (an unreadable date counts as not a minor).
pub fn minor_when_designated(subject: &SubjectId, at: Timestamp) -> bool {
    let SubjectId::Resident(id) = subject else {
        return false;
    };
    let Ok(born) = id.birth_date() else {
        return false;
    };
    let on = at.china_date().naive();
    born.checked_add_months(chrono::Months::new(18 * 12)).is_some_and(|adult| on < adult)
}

/// Is `subject` restricted by `measure` (as applied by `agency`, or by any
/// agency) at the valid time, and on which case, decision and MOU.
pub fn check(
    source: &dyn Source,
    as_of: AsOf,
    subject: &SubjectId,
    measure: &MeasureCode,
    agency: Option<&AgencyId>,
) -> Result<CheckView, FoldError> {
    let registry = source.registry(as_of.known)?;
    let mut grounds = vec![];
    let mut without_ground = vec![];
    source.for_subject(subject, &mut |case| {
        let view = evaluate(&case, &registry, as_of);
        let grounded = grounds_in(&registry, &view, as_of, measure, agency, &mut grounds);
        without_ground.extend(
            view.active_measures()
                .filter(|m| m.measure == *measure && agency.is_none_or(|a| *a == m.agency))
                .filter(|m| !grounded.contains(&&m.agency))
                .cloned(),
        );
    })?;
    Ok(CheckView {
        subject: subject.to_string(),
        measure: measure.clone(),
        agency: agency.cloned(),
        as_of,
        restricted: !grounds.is_empty(),
        grounds,
        without_ground,
    })
}

/// The grounds one case gives for `measure` at the valid time, added to
/// `grounds`: while its designation is in force, one for each MOU of its
/// list that binds an agency (`agency`, if given) to the measure. Returns
/// every agency those MOUs bind to it, whose applications have a ground.
fn grounds_in<'r>(
    registry: &'r Registry,
    view: &CaseView,
    as_of: AsOf,
    measure: &MeasureCode,
    agency: Option<&AgencyId>,
    grounds: &mut Vec<Ground>,
) -> Vec<&'r AgencyId> {
    let mut grounded: Vec<&AgencyId> = vec![];
    let (true, Some(designation)) = (view.in_force(), &view.designation) else {
        return grounded;
    };
    let in_place =
        |a: &AgencyId| view.active_measures().find(|m| m.agency == *a && m.measure == *measure).map(|m| m.applied);
    for (mou_id, mou) in registry.mous().filter(|(_, mou)| mou.list == view.list) {
        let Some(terms) = mou.terms_at(as_of.valid_at) else { continue };
        let agencies: Vec<Binding> = terms
            .parties
            .iter()
            .filter(|p| p.measures.contains(measure) && agency.is_none_or(|a| *a == p.agency))
            .map(|p| Binding { agency: p.agency.clone(), applied: in_place(&p.agency) })
            .collect();
        if agencies.is_empty() {
            continue;
        }
        grounded.extend(terms.parties.iter().filter(|p| p.measures.contains(measure)).map(|p| &p.agency));
        grounds.push(Ground {
            list: view.list.clone(),
            number: view.number.clone(),
            decision: designation.decision,
            in_force_from: designation.in_force_from,
            until: designation.until,
            mou: mou_id.clone(),
            agencies,
        });
    }
    grounded
}

/// The registry as of a point: agencies, roles, keys and their validity,
/// lists, the measure catalogue, MOUs with every version of their terms, rule sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RegistryView {
    pub as_of: AsOf,
    #[serde(flatten)]
    pub registry: Registry,
}

/// The registry as the ledger knew it at `as_of.known` (valid time does not
/// filter it: key and MOU validity carry their own valid times).
pub fn registry_view(source: &dyn Source, as_of: AsOf) -> Result<RegistryView, FoldError> {
    let registry = source.registry(as_of.known)?;
    Ok(RegistryView { as_of, registry: (*registry).clone() })
}
