//! The case state machine.
//!
//! A case keeps every event that touched it as a [`Fact`] (its seq, system
//! time, valid time and what it said). That makes the stored case
//! bitemporal by construction: the state "as the ledger knew it at seq N,
//! in force at valid time T" is [`evaluate`] over the facts with `seq <= N`
//! and `effective_at <= T`, in valid-time order. Nothing is refolded from the
//! log to answer an as-of question about a case.
//!
//! Facts that do not fit the state they arrive in (a measure on a case that is
//! not designated, a restoration of a case never designated) are kept and
//! marked, never dropped: the auditor needs them.

use serde::{Deserialize, Serialize};

use docket_model::event::{
    CaseAction, CaseEvent, LegalRef, LiftReason, ObjectionOutcome, RestorationReason, RevocationReason, Severity,
};
use docket_model::{AgencyId, CaseNumber, Date, EventId, ListId, MeasureCode, MouId, Registry, SubjectId, Timestamp};

/// One case event as the case keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub seq: u64,
    pub id: EventId,
    /// System time: when the ledger recorded it.
    pub recorded_at: Timestamp,
    /// Valid time: when it took effect, as the signer declared.
    pub effective_at: Timestamp,
    /// The signing agency.
    pub agency: AgencyId,
    pub step: Step,
}

/// What a case event did, reduced to what the views need. The full event
/// stays in the log (`seq`, `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// `empty`: parts of the notice left empty.
    Notice {
        served_at: Timestamp,
        empty: Vec<NoticeField>,
    },
    Objection {
        received_at: Timestamp,
    },
    ObjectionDecision {
        objection: EventId,
        outcome: Outcome,
    },
    /// `empty`: required fields of the decision document left empty.
    Designation {
        decided_at: Timestamp,
        term_months: Option<u16>,
        severity: Severity,
        basis: Option<BasisRef>,
        legal_basis: Vec<LegalRef>,
        empty: Vec<DecisionField>,
    },
    TermExtended {
        months: u16,
    },
    Revocation {
        reason: RevocationReason,
    },
    Restoration {
        reason: RestorationReason,
    },
    MeasureApplied {
        measure: MeasureCode,
        mou: MouId,
    },
    MeasureLifted {
        measure: MeasureCode,
        reason: LiftReason,
    },
    RestorationApplication {
        received_at: Timestamp,
    },
    RestorationAccepted {
        application: EventId,
    },
    /// `reasons_given`: whether the decision's reasons are not empty.
    RestorationDecision {
        application: EventId,
        granted: bool,
        reasons_given: bool,
        fees_collected_fen: u64,
    },
}

/// A field of the designation decision document that the rules may require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionField {
    Reasons,
    LegalBasis,
    MeasuresWarning,
    RemovalConditions,
    Remedies,
}

/// A part of the notice the rules may require (seed 004 (8): the matter,
/// the basis and the rights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeField {
    Matter,
    LegalBasis,
    Rights,
}

/// The basis document of a decision, as the views need it: its number and date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BasisRef {
    pub number: String,
    pub date: Date,
}

/// Outcome of an objection review, without the correction text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Upheld,
    Rejected,
    Corrected,
}

impl Step {
    /// The step of a case action.
    pub fn of(action: &CaseAction) -> Self {
        match action {
            CaseAction::Notice { served_at, matter, legal_basis, rights, .. } => {
                let empty = [
                    (NoticeField::Matter, matter.trim().is_empty()),
                    (NoticeField::LegalBasis, legal_basis.is_empty()),
                    (NoticeField::Rights, rights.trim().is_empty()),
                ]
                .into_iter()
                .filter_map(|(field, empty)| empty.then_some(field))
                .collect();
                Self::Notice { served_at: *served_at, empty }
            }
            CaseAction::Objection { received_at, .. } => Self::Objection { received_at: *received_at },
            CaseAction::ObjectionDecision { objection, outcome, .. } => Self::ObjectionDecision {
                objection: *objection,
                outcome: match outcome {
                    ObjectionOutcome::Upheld => Outcome::Upheld,
                    ObjectionOutcome::Rejected => Outcome::Rejected,
                    ObjectionOutcome::Corrected { .. } => Outcome::Corrected,
                },
            },
            CaseAction::DesignationDecision {
                decided_at,
                basis,
                severity,
                term_months,
                reasons,
                legal_basis,
                measures_warning,
                removal_conditions,
                remedies,
            } => {
                let blank = |text: &String| text.trim().is_empty();
                let empty = [
                    (DecisionField::Reasons, blank(reasons)),
                    (DecisionField::LegalBasis, legal_basis.is_empty()),
                    (DecisionField::MeasuresWarning, blank(measures_warning)),
                    (DecisionField::RemovalConditions, blank(removal_conditions)),
                    (DecisionField::Remedies, blank(remedies)),
                ]
                .into_iter()
                .filter_map(|(field, empty)| empty.then_some(field))
                .collect();
                Self::Designation {
                    decided_at: *decided_at,
                    term_months: *term_months,
                    severity: *severity,
                    basis: basis.as_ref().map(|b| BasisRef { number: b.number.clone(), date: b.date }),
                    legal_basis: legal_basis.clone(),
                    empty,
                }
            }
            CaseAction::TermExtended { months, .. } => Self::TermExtended { months: *months },
            CaseAction::Revocation { reason, .. } => Self::Revocation { reason: *reason },
            CaseAction::Restoration { reason, .. } => Self::Restoration { reason: *reason },
            CaseAction::MeasureApplied { measure, mou } => {
                Self::MeasureApplied { measure: measure.clone(), mou: mou.clone() }
            }
            CaseAction::MeasureLifted { measure, reason } => {
                Self::MeasureLifted { measure: measure.clone(), reason: *reason }
            }
            CaseAction::RestorationApplication { received_at, .. } => {
                Self::RestorationApplication { received_at: *received_at }
            }
            CaseAction::RestorationAccepted { application } => Self::RestorationAccepted { application: *application },
            CaseAction::RestorationDecision { application, granted, reasons, fees_collected_fen } => {
                Self::RestorationDecision {
                    application: *application,
                    granted: *granted,
                    reasons_given: !reasons.trim().is_empty(),
                    fees_collected_fen: *fees_collected_fen,
                }
            }
        }
    }
}

/// A case: one subject on one list under one case number, with every fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseState {
    pub list: ListId,
    pub subject: SubjectId,
    pub number: CaseNumber,
    /// In seq order.
    pub facts: Vec<Fact>,
}

impl CaseState {
    /// A case with no facts yet.
    pub fn new(event: &CaseEvent) -> Self {
        Self { list: event.list.clone(), subject: event.subject.clone(), number: event.number.clone(), facts: vec![] }
    }

    /// Seq of the event that opened the case.
    pub fn opened_seq(&self) -> Option<u64> {
        self.facts.first().map(|f| f.seq)
    }
}

/// Which records count: what the ledger held at a point of system time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Known {
    /// Everything in the log now.
    All,
    /// Records up to and including this seq.
    Through(u64),
    /// Records recorded at or before this system time.
    At(Timestamp),
}

impl Known {
    /// Whether a fact was known.
    pub fn includes(self, seq: u64, recorded_at: Timestamp) -> bool {
        match self {
            Self::All => true,
            Self::Through(last) => seq <= last,
            Self::At(time) => recorded_at <= time,
        }
    }
}

/// A bitemporal point: what the ledger knew (`known`), about what was in force at `valid_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AsOf {
    pub known: Known,
    pub valid_at: Timestamp,
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The party was notified; no decision yet.
    Noticed,
    /// An objection before the designation is pending.
    Objected,
    /// Every objection before the designation is decided.
    ObjectionDecided,
    /// Designated and in force.
    Designated,
    /// Removed from the list.
    Restored,
    /// Withdrawn as if never rightly made.
    Revoked,
    /// The term ran out (derived from the term; no event needed).
    Expired,
}

impl Status {
    /// Whether the case has ended (restored, revoked or expired).
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Restored | Self::Revoked | Self::Expired)
    }
}

/// A pointer to the event behind something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Evidence {
    pub seq: u64,
    pub id: EventId,
    /// Valid time of the event.
    pub at: Timestamp,
}

impl Evidence {
    fn of(fact: &Fact) -> Self {
        Self { seq: fact.seq, id: fact.id, at: fact.effective_at }
    }
}

/// A change of status, with the event behind it (for an expiry, the
/// designation or extension that set the term).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Transition {
    pub status: Status,
    /// Valid time of the change.
    pub at: Timestamp,
    pub seq: u64,
    pub id: EventId,
}

/// The notice: the event, when it was served, and what it left empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NoticeView {
    #[serde(flatten)]
    pub evidence: Evidence,
    /// When the party was served: periods run from here.
    pub served_at: Timestamp,
    pub empty: Vec<NoticeField>,
}

/// An objection and its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ObjectionView {
    pub received: Evidence,
    /// When the objection reached the agency: its review period runs from here.
    pub received_at: Timestamp,
    /// Whether it was lodged against a designation already in force.
    pub after_designation: bool,
    pub decided: Option<(Evidence, Outcome)>,
}

/// The designation decision and its term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DesignationView {
    pub decision: Evidence,
    /// When the decision was taken (signed in the decision).
    pub decided_at: Timestamp,
    /// When the ledger recorded the decision.
    pub recorded_at: Timestamp,
    /// In force from (the decision's valid time).
    pub in_force_from: Timestamp,
    /// End of the term including extensions; `None`: until removed.
    pub until: Option<Timestamp>,
    pub severity: Severity,
    /// The term the decision set, in months; `None`: until removed.
    pub term_months: Option<u16>,
    pub basis: Option<BasisRef>,
    /// The legal provisions the decision cites.
    pub legal_basis: Vec<LegalRef>,
    /// Required decision fields left empty.
    pub empty: Vec<DecisionField>,
    pub extensions: Vec<Extension>,
}

/// A term extension: the event and the months it added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Extension {
    #[serde(flatten)]
    pub evidence: Evidence,
    pub months: u16,
}

/// One application of a measure by one agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MeasureView {
    pub agency: AgencyId,
    pub measure: MeasureCode,
    pub mou: MouId,
    pub applied: Evidence,
    /// Whether, as the registry stands, the MOU covered this agency and measure on this list when applied.
    pub covered: bool,
    pub lifted: Option<(Evidence, LiftReason)>,
}

/// An application for credit restoration and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApplicationView {
    pub received: Evidence,
    /// When the application reached the agency: the processing deadline runs from here.
    pub received_at: Timestamp,
    pub accepted: Option<Evidence>,
    pub decided: Option<ApplicationDecision>,
}

/// The decision on a restoration application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApplicationDecision {
    #[serde(flatten)]
    pub evidence: Evidence,
    /// Granted: the case was restored by this decision.
    pub granted: bool,
    /// Whether the decision states its reasons (a refusal must).
    pub reasons_given: bool,
    /// The fees the decision declares the party was charged, in fen (must be 0).
    pub fees_collected_fen: u64,
}

/// Why a fact does not fit the state it arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// A second notice; the first one stands.
    RepeatedNotice,
    /// An objection on a closed case.
    ObjectionOnClosedCase,
    /// Decides an objection this case does not hold (at that valid time).
    UnknownObjection,
    /// Decides an objection already decided.
    ObjectionAlreadyDecided,
    /// A designation on a case already designated or closed.
    DesignationOnDesignatedOrClosedCase,
    /// A revocation or restoration of a case not designated and in force.
    NotInForce,
    /// A measure applied to a case not designated and in force.
    MeasureOnCaseNotInForce,
    /// The same agency applied the same measure again while it was in place.
    MeasureAlreadyApplied,
    /// A measure lifted that was not in place.
    MeasureNotApplied,
    /// A term extension of a case not designated and in force (before the
    /// designation, after its closure, or after its term ran out).
    ExtensionNotInForce,
    /// A restoration application on a case not designated and in force.
    ApplicationNotInForce,
    /// Accepts or decides a restoration application this case does not hold.
    UnknownApplication,
    /// Accepts or decides a restoration application already decided.
    ApplicationAlreadyDecided,
}

/// A fact that does not fit, kept for the auditor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Mark {
    pub seq: u64,
    pub id: EventId,
    /// Valid time of the fact.
    pub at: Timestamp,
    pub kind: MarkKind,
}

impl Mark {
    /// The fact behind the mark, as evidence.
    pub fn evidence(&self) -> Evidence {
        Evidence { seq: self.seq, id: self.id, at: self.at }
    }
}

/// A case evaluated at one bitemporal point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CaseView {
    pub list: ListId,
    pub subject: SubjectId,
    pub number: CaseNumber,
    /// Number of events known (the case version, as far as known).
    pub version: u64,
    /// `None` when no fact is in force yet at the valid time.
    pub status: Option<Status>,
    pub transitions: Vec<Transition>,
    pub notice: Option<NoticeView>,
    pub objections: Vec<ObjectionView>,
    pub designation: Option<DesignationView>,
    pub closure: Option<Evidence>,
    /// Why it was restored, if it was.
    pub restoration: Option<RestorationReason>,
    /// Applications for credit restoration, in valid-time order.
    pub applications: Vec<ApplicationView>,
    pub measures: Vec<MeasureView>,
    pub marks: Vec<Mark>,
}

impl CaseView {
    /// The status and the valid time it began.
    pub fn status_since(&self) -> Option<(Status, Timestamp)> {
        self.transitions.last().map(|t| (t.status, t.at))
    }

    /// Whether the designation is in force.
    pub fn in_force(&self) -> bool {
        self.status == Some(Status::Designated)
    }

    /// An objection against the designation is pending.
    pub fn contested(&self) -> bool {
        self.in_force() && self.objections.iter().any(|o| o.after_designation && o.decided.is_none())
    }

    /// When the case stopped being in force (closure or expiry), if it has.
    pub fn ended_at(&self) -> Option<Timestamp> {
        match self.status {
            Some(status) if status.is_closed() => self.transitions.last().map(|t| t.at),
            _ => None,
        }
    }

    /// Restoration applications not yet decided.
    pub fn pending_applications(&self) -> impl Iterator<Item = &ApplicationView> {
        self.applications.iter().filter(|a| a.decided.is_none())
    }

    /// Measures in place (applied, not lifted).
    pub fn active_measures(&self) -> impl Iterator<Item = &MeasureView> {
        self.measures.iter().filter(|m| m.lifted.is_none())
    }
}

/// Adds `months` calendar months in China Standard Time; on overflow, none.
pub(crate) fn add_months(start: Timestamp, months: u32) -> Option<Timestamp> {
    let end = start.to_china().checked_add_months(chrono::Months::new(months))?;
    Timestamp::from_micros(end.timestamp_micros()).ok()
}

struct Machine<'a> {
    registry: &'a Registry,
    view: CaseView,
    /// Total term in months, if the designation has one.
    term: Option<u32>,
    /// The fact that last set the term, for the expiry transition.
    term_source: Option<Evidence>,
}

impl Machine<'_> {
    fn transition(&mut self, status: Status, at: Timestamp, seq: u64, id: EventId) {
        self.view.status = Some(status);
        self.view.transitions.push(Transition { status, at, seq, id });
    }

    fn mark(&mut self, fact: &Fact, kind: MarkKind) {
        self.view.marks.push(Mark { seq: fact.seq, id: fact.id, at: fact.effective_at, kind });
    }

    /// Moves an in-force designation to expired if its term ended at or before `at`.
    fn expire_until(&mut self, at: Timestamp) {
        if self.view.status != Some(Status::Designated) {
            return;
        }
        if let (Some(until), Some(source)) = (self.view.designation.as_ref().and_then(|d| d.until), self.term_source) {
            if until <= at {
                self.transition(Status::Expired, until, source.seq, source.id);
            }
        }
    }

    fn set_term(&mut self) {
        if let Some(designation) = &mut self.view.designation {
            designation.until = self.term.and_then(|months| add_months(designation.in_force_from, months));
        }
    }

    /// Moves the case by one fact, in valid-time order: expires a term that
    /// ended before it, then dispatches on its step. A fact that does not fit
    /// the case's state is kept as a mark.
    fn apply(&mut self, fact: &Fact) {
        self.expire_until(fact.effective_at);
        self.view.version += 1;
        let status = self.view.status;
        let in_force = status == Some(Status::Designated);
        let closed = status.is_some_and(Status::is_closed);
        match &fact.step {
            Step::Notice { served_at, empty } => self.notice(fact, *served_at, empty),
            Step::Objection { received_at } => self.object(fact, *received_at, in_force, closed),
            Step::ObjectionDecision { objection, outcome } => self.decide_objection(fact, *objection, *outcome),
            Step::Designation { .. } if in_force || closed => {
                self.mark(fact, MarkKind::DesignationOnDesignatedOrClosedCase)
            }
            Step::Designation { .. } => self.designate(fact),
            Step::TermExtended { .. } if !in_force => self.mark(fact, MarkKind::ExtensionNotInForce),
            Step::TermExtended { months } => self.extend(fact, *months),
            Step::Revocation { .. } | Step::Restoration { .. } if !in_force => self.mark(fact, MarkKind::NotInForce),
            Step::Revocation { .. } => self.close(fact, Status::Revoked, None),
            Step::Restoration { reason } => self.close(fact, Status::Restored, Some(*reason)),
            Step::MeasureApplied { measure, mou } => self.apply_measure(fact, measure, mou, in_force),
            Step::MeasureLifted { measure, reason } => self.lift_measure(fact, measure, *reason),
            Step::RestorationApplication { .. } if !in_force => self.mark(fact, MarkKind::ApplicationNotInForce),
            Step::RestorationApplication { received_at } => self.view.applications.push(ApplicationView {
                received: Evidence::of(fact),
                received_at: *received_at,
                accepted: None,
                decided: None,
            }),
            Step::RestorationAccepted { application } => self.accept_application(fact, *application),
            Step::RestorationDecision { application, granted, reasons_given, fees_collected_fen } => {
                let decision = ApplicationDecision {
                    evidence: Evidence::of(fact),
                    granted: *granted,
                    reasons_given: *reasons_given,
                    fees_collected_fen: *fees_collected_fen,
                };
                self.decide_application(fact, *application, decision, in_force)
            }
        }
    }

    /// The application `id` of this case, if it holds one and it is undecided;
    /// otherwise marks `fact` and returns none.
    fn open_application(&mut self, fact: &Fact, id: EventId) -> Option<usize> {
        let Some(index) = self.view.applications.iter().position(|a| a.received.id == id) else {
            self.mark(fact, MarkKind::UnknownApplication);
            return None;
        };
        if self.view.applications[index].decided.is_some() {
            self.mark(fact, MarkKind::ApplicationAlreadyDecided);
            return None;
        }
        Some(index)
    }

    fn accept_application(&mut self, fact: &Fact, id: EventId) {
        if let Some(index) = self.open_application(fact, id) {
            self.view.applications[index].accepted.get_or_insert(Evidence::of(fact));
        }
    }

    /// Decides an application; a grant restores a designation in force (a
    /// credit restoration), and is marked when there is none to restore.
    fn decide_application(&mut self, fact: &Fact, id: EventId, decision: ApplicationDecision, in_force: bool) {
        let Some(index) = self.open_application(fact, id) else { return };
        self.view.applications[index].decided = Some(decision);
        match (decision.granted, in_force) {
            (true, true) => self.close(fact, Status::Restored, Some(RestorationReason::CreditRepaired)),
            (true, false) => self.mark(fact, MarkKind::NotInForce),
            (false, _) => {}
        }
    }

    /// A notice: the first one is kept (and opens a case with no status);
    /// any later one is a mark.
    fn notice(&mut self, fact: &Fact, served_at: Timestamp, empty: &[NoticeField]) {
        if self.view.notice.is_some() {
            return self.mark(fact, MarkKind::RepeatedNotice);
        }
        self.view.notice = Some(NoticeView { evidence: Evidence::of(fact), served_at, empty: empty.to_vec() });
        if self.view.status.is_none() {
            self.transition(Status::Noticed, fact.effective_at, fact.seq, fact.id);
        }
    }

    /// An objection, kept even on a closed case (which is marked); it moves a
    /// case that is not yet designated to objected.
    fn object(&mut self, fact: &Fact, received_at: Timestamp, in_force: bool, closed: bool) {
        if closed {
            self.mark(fact, MarkKind::ObjectionOnClosedCase);
        }
        let objection =
            ObjectionView { received: Evidence::of(fact), received_at, after_designation: in_force, decided: None };
        self.view.objections.push(objection);
        if matches!(self.view.status, None | Some(Status::Noticed | Status::ObjectionDecided)) {
            self.transition(Status::Objected, fact.effective_at, fact.seq, fact.id);
        }
    }

    /// An extension of a designation in force: lengthens the term (if it has
    /// one) and moves its end.
    fn extend(&mut self, fact: &Fact, months: u16) {
        let evidence = Evidence::of(fact);
        if let Some(term) = &mut self.term {
            *term = term.saturating_add(u32::from(months));
            self.term_source = Some(evidence);
        }
        if let Some(designation) = &mut self.view.designation {
            designation.extensions.push(Extension { evidence, months });
        }
        self.set_term();
    }

    /// Lifts the agency's active application of `measure`; a lift of nothing
    /// applied is a mark.
    fn lift_measure(&mut self, fact: &Fact, measure: &MeasureCode, reason: LiftReason) {
        let active = self
            .view
            .measures
            .iter_mut()
            .find(|m| m.lifted.is_none() && m.agency == fact.agency && m.measure == *measure);
        match active {
            Some(applied) => applied.lifted = Some((Evidence::of(fact), reason)),
            None => self.mark(fact, MarkKind::MeasureNotApplied),
        }
    }

    fn decide_objection(&mut self, fact: &Fact, objection: EventId, outcome: Outcome) {
        let Some(found) = self.view.objections.iter_mut().find(|o| o.received.id == objection) else {
            return self.mark(fact, MarkKind::UnknownObjection);
        };
        if found.decided.is_some() {
            return self.mark(fact, MarkKind::ObjectionAlreadyDecided);
        }
        found.decided = Some((Evidence::of(fact), outcome));
        let pending = self.view.objections.iter().any(|o| !o.after_designation && o.decided.is_none());
        if self.view.status == Some(Status::Objected) && !pending {
            self.transition(Status::ObjectionDecided, fact.effective_at, fact.seq, fact.id);
        }
    }

    /// A designation of a case not in force and not closed.
    fn designate(&mut self, fact: &Fact) {
        let Step::Designation { decided_at, term_months, severity, basis, legal_basis, empty } = &fact.step else {
            return;
        };
        let evidence = Evidence::of(fact);
        self.term = term_months.map(u32::from);
        self.term_source = Some(evidence);
        self.view.designation = Some(DesignationView {
            decision: evidence,
            decided_at: *decided_at,
            recorded_at: fact.recorded_at,
            in_force_from: fact.effective_at,
            until: None,
            severity: *severity,
            term_months: *term_months,
            basis: basis.clone(),
            legal_basis: legal_basis.clone(),
            empty: empty.clone(),
            extensions: vec![],
        });
        self.set_term();
        self.transition(Status::Designated, fact.effective_at, fact.seq, fact.id);
        self.expire_until(fact.effective_at);
    }

    /// A revocation or restoration of a designation in force.
    fn close(&mut self, fact: &Fact, status: Status, restoration: Option<RestorationReason>) {
        self.view.closure = Some(Evidence::of(fact));
        if restoration.is_some() {
            self.view.restoration = restoration;
        }
        self.transition(status, fact.effective_at, fact.seq, fact.id);
    }

    fn apply_measure(&mut self, fact: &Fact, measure: &MeasureCode, mou: &MouId, in_force: bool) {
        let already = self.view.active_measures().any(|m| m.agency == fact.agency && m.measure == *measure);
        if already {
            return self.mark(fact, MarkKind::MeasureAlreadyApplied);
        }
        if !in_force {
            self.mark(fact, MarkKind::MeasureOnCaseNotInForce);
        }
        let covered = self.registry.mou_covers(mou, &self.view.list, &fact.agency, measure, fact.effective_at);
        self.view.measures.push(MeasureView {
            agency: fact.agency.clone(),
            measure: measure.clone(),
            mou: mou.clone(),
            applied: Evidence::of(fact),
            covered,
            lifted: None,
        });
    }
}

/// The case as the ledger knew it at `as_of.known`, in force at `as_of.valid_at`.
/// `registry` is the registry as of the same `known` point.
pub fn evaluate(case: &CaseState, registry: &Registry, as_of: AsOf) -> CaseView {
    let mut facts: Vec<&Fact> = case
        .facts
        .iter()
        .filter(|f| as_of.known.includes(f.seq, f.recorded_at) && f.effective_at <= as_of.valid_at)
        .collect();
    facts.sort_by_key(|f| (f.effective_at, f.seq));
    let mut machine = Machine {
        registry,
        view: CaseView {
            list: case.list.clone(),
            subject: case.subject.clone(),
            number: case.number.clone(),
            version: 0,
            status: None,
            transitions: vec![],
            notice: None,
            objections: vec![],
            designation: None,
            closure: None,
            restoration: None,
            applications: vec![],
            measures: vec![],
            marks: vec![],
        },
        term: None,
        term_source: None,
    };
    for fact in facts {
        machine.apply(fact);
    }
    machine.expire_until(as_of.valid_at);
    machine.view.version = case.facts.iter().filter(|f| as_of.known.includes(f.seq, f.recorded_at)).count() as u64;
    machine.view
}

/// The earliest valid time after `as_of.valid_at` at which [`evaluate`]
/// could answer differently for `case` (with `known` fixed), or the case's
/// entry could leave the public list: the next known fact to take effect,
/// the end of the term in force, or the day the publicity maximum of
/// `publication` runs out. None: the answers hold for every later valid time.
///
/// `evaluate` depends on the valid time only through which facts have taken
/// effect and whether the term in force has run out, and the public list
/// also through the publicity maximum, so until that instant the answers are
/// the same; a view or audit computed once at `as_of` can be reused for a
/// later valid time before the least such instant over its cases (the
/// pages' cache does). `registry` is the registry as of `known`.
pub fn next_change(
    case: &CaseState,
    registry: &Registry,
    publication: &crate::views::Publication,
    as_of: AsOf,
) -> Option<Timestamp> {
    let mut known = case.facts.iter().filter(|f| as_of.known.includes(f.seq, f.recorded_at));
    let next_fact = known.clone().map(|f| f.effective_at).filter(|at| *at > as_of.valid_at).min();
    // Only a designation in force can end by its term or leave the public
    // list: evaluate the case only when one has taken effect.
    let designated = known.any(|f| f.effective_at <= as_of.valid_at && matches!(f.step, Step::Designation { .. }));
    let mut ends = vec![];
    if designated {
        let view = evaluate(case, registry, as_of);
        if view.status == Some(Status::Designated) {
            ends.extend(view.designation.as_ref().and_then(|d| d.until));
            ends.extend(registry.list(&case.list).and_then(|list| publication.ends(registry, list, &view)));
        }
    }
    ends.into_iter().filter(|end| *end > as_of.valid_at).chain(next_fact).min()
}
