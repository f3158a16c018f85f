//! The checks and their findings.
//!
//! The audit reads the projections through `docket_fold::views::Source` at
//! one bitemporal point: what the ledger held at `as_of.known`, about what was
//! in force up to `as_of.valid_at`, which is also "today" for deadlines. A
//! deadline not yet passed with nothing done is `pending`; a passed one with
//! nothing done is `overdue`; an act after its deadline is `late`.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;

use docket_fold::case::{evaluate, AsOf, CaseView, Evidence, MarkKind, Outcome, Status};
use docket_fold::views::Source;
use docket_fold::FoldError;
use docket_model::event::RestorationReason;
use docket_model::{AgencyId, CaseNumber, Digest, ListId, Registry, RuleSetId, SubjectId, Timestamp};

use crate::calendar::{Calendar, Deadline, PeriodError};
use crate::rules::RuleSet;

/// The rules, each with a stable id ([`Rule::id`], also its JSON form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    NoticeBeforeDesignation,
    ObjectionWindowObserved,
    ObjectionDecidedInTime,
    UpheldObjectionRemedied,
    DecisionContent,
    MeasureCatalogued,
    MeasureUnderMou,
    MeasureOnlyWhileDesignated,
    RemovalInTime,
    PublicityBeforeRestoration,
    TermWithinMaximum,
    MinorNotListed,
}

impl Rule {
    pub const ALL: [Rule; 12] = [
        Self::NoticeBeforeDesignation,
        Self::ObjectionWindowObserved,
        Self::ObjectionDecidedInTime,
        Self::UpheldObjectionRemedied,
        Self::DecisionContent,
        Self::MeasureCatalogued,
        Self::MeasureUnderMou,
        Self::MeasureOnlyWhileDesignated,
        Self::RemovalInTime,
        Self::PublicityBeforeRestoration,
        Self::TermWithinMaximum,
        Self::MinorNotListed,
    ];

    /// The stable id.
    pub fn id(self) -> &'static str {
        match self {
            Self::NoticeBeforeDesignation => "notice-before-designation",
            Self::ObjectionWindowObserved => "objection-window-observed",
            Self::ObjectionDecidedInTime => "objection-decided-in-time",
            Self::UpheldObjectionRemedied => "upheld-objection-remedied",
            Self::DecisionContent => "decision-content",
            Self::MeasureCatalogued => "measure-catalogued",
            Self::MeasureUnderMou => "measure-under-mou",
            Self::MeasureOnlyWhileDesignated => "measure-only-while-designated",
            Self::RemovalInTime => "removal-in-time",
            Self::PublicityBeforeRestoration => "publicity-before-restoration",
            Self::TermWithinMaximum => "term-within-maximum",
            Self::MinorNotListed => "minor-not-listed",
        }
    }

    /// The rule set parameters the rule applies.
    pub fn parameters(self) -> &'static [&'static str] {
        match self {
            Self::ObjectionWindowObserved => &["objection_window"],
            Self::ObjectionDecidedInTime => &["objection_review"],
            Self::UpheldObjectionRemedied => &["correction_after_upheld"],
            Self::DecisionContent => &["required_decision_fields"],
            Self::RemovalInTime => &["removal"],
            Self::PublicityBeforeRestoration => &["publicity_min_months"],
            Self::TermWithinMaximum => &["term"],
            Self::NoticeBeforeDesignation
            | Self::MeasureCatalogued
            | Self::MeasureUnderMou
            | Self::MeasureOnlyWhileDesignated
            | Self::MinorNotListed => &[],
        }
    }

    /// How grave a breach is.
    pub fn gravity(self) -> Gravity {
        match self {
            Self::NoticeBeforeDesignation
            | Self::MeasureCatalogued
            | Self::MeasureUnderMou
            | Self::MeasureOnlyWhileDesignated
            | Self::MinorNotListed => Gravity::High,
            Self::ObjectionWindowObserved
            | Self::ObjectionDecidedInTime
            | Self::UpheldObjectionRemedied
            | Self::RemovalInTime
            | Self::TermWithinMaximum => Gravity::Medium,
            Self::DecisionContent | Self::PublicityBeforeRestoration => Gravity::Low,
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

impl JsonSchema for Rule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rule".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let ids: Vec<&str> = Self::ALL.iter().map(|r| r.id()).collect();
        json_schema!({ "type": "string", "description": "A rule's stable id.", "enum": ids })
    }
}

/// How grave a breach is: high when a right or the legal basis is missing
/// altogether, medium for a missed deadline, low for form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gravity {
    High,
    Medium,
    Low,
}

/// Where a finding stands at the audit's point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// The rule was broken (no deadline involved).
    Violated,
    /// Done, but after the deadline.
    Late,
    /// The deadline passed with nothing done.
    Overdue,
    /// Not done yet, and the deadline has not passed: not a breach (yet).
    Pending,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Finding {
    pub rule: Rule,
    pub gravity: Gravity,
    pub status: FindingStatus,
    pub list: ListId,
    pub subject: String,
    pub number: CaseNumber,
    /// The agency that had to act.
    pub agency: AgencyId,
    /// The events behind the finding (seq, id, valid time).
    pub evidence: Vec<Evidence>,
    pub deadline: Option<Deadline>,
    /// What happened, in words.
    pub what: String,
    /// Rule set id and version applied.
    pub rule_set: String,
    /// Rule set parameters the finding rests on that are not confirmed by a source.
    pub unconfirmed: Vec<String>,
}

/// The rule set applied to a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RuleSetUse {
    pub list: ListId,
    pub rule_set: String,
    /// The version of the document applied (None: none available).
    pub version: Option<u32>,
    /// When the registry's publication took effect: cases opened from then
    /// on are audited under it (None: not published).
    pub from: Option<Timestamp>,
    pub note: Option<String>,
}

/// What the audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Report {
    pub as_of: AsOf,
    pub calendar: String,
    pub rule_sets: Vec<RuleSetUse>,
    pub cases: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Findings counted by rule and status.
    pub fn counts(&self) -> BTreeMap<(Rule, FindingStatus), u64> {
        let mut counts = BTreeMap::new();
        for finding in &self.findings {
            *counts.entry((finding.rule, finding.status)).or_insert(0) += 1;
        }
        counts
    }
}

/// What the audit covers.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub list: Option<ListId>,
    /// Only findings where this agency had to act.
    pub agency: Option<AgencyId>,
}

/// Why the audit could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error("list \"{0}\" is not defined")]
    UnknownList(ListId),
    #[error("period: {0}")]
    Period(#[from] PeriodError),
}

/// Runs the audit.
pub fn audit(
    source: &dyn Source,
    as_of: AsOf,
    scope: &Scope,
    rule_sets: &[RuleSet],
    calendar: &Calendar,
) -> Result<Report, AuditError> {
    let mut findings = vec![];
    let mut report = audit_each(source, as_of, scope, rule_sets, calendar, &mut |f| findings.push(f))?;
    report.findings = findings;
    Ok(report)
}

/// Runs the audit and hands each finding to `sink` as it is found, case by
/// case, so that memory is bounded by one case, not by the findings. The
/// report returned has no findings.
pub fn audit_each(
    source: &dyn Source,
    as_of: AsOf,
    scope: &Scope,
    rule_sets: &[RuleSet],
    calendar: &Calendar,
    sink: &mut dyn FnMut(Finding),
) -> Result<Report, AuditError> {
    let registry = source.registry(as_of.known)?;
    if let Some(list) = &scope.list {
        if registry.list(list).is_none() {
            return Err(AuditError::UnknownList(list.clone()));
        }
    }
    let mut report = Report {
        as_of,
        calendar: format!("{} v{}", calendar.id, calendar.version),
        rule_sets: vec![],
        cases: 0,
        findings: vec![],
    };
    for (list, state) in registry.lists() {
        if scope.list.as_ref().is_some_and(|l| l != list) {
            continue;
        }
        let uses = rule_sets_for(list, &state.rule_set, &registry, rule_sets);
        report.rule_sets.extend(uses.iter().map(|(_, _, used)| used.clone()));
        if uses.iter().all(|(_, rules, _)| rules.is_none()) {
            continue;
        }
        let mut failed = None;
        source.for_list(list, &mut |case| {
            if failed.is_some() {
                return;
            }
            let view = evaluate(&case, &registry, as_of);
            if view.version == 0 {
                return;
            }
            // The rules in force when the case opened: the last version
            // published by then, else the first one published.
            let opened = view.notice.map(|n| n.at).or(view.designation.as_ref().map(|d| d.decision.at));
            let chosen = uses
                .iter()
                .rev()
                .find(|(from, _, _)| from.zip(opened).is_none_or(|(from, opened)| from <= opened))
                .or(uses.first());
            let Some((_, Some(rules), _)) = chosen else {
                return;
            };
            report.cases += 1;
            let mut checker =
                Checker { view: &view, rules, calendar, today: as_of.valid_at.china_date().naive(), out: vec![] };
            if let Err(error) = checker.check(&registry, &state.designating_agency) {
                failed = Some(error);
            }
            for finding in checker.out {
                if scope.agency.as_ref().is_none_or(|a| *a == finding.agency) {
                    sink(finding);
                }
            }
        })?;
        if let Some(error) = failed {
            return Err(error);
        }
    }
    Ok(report)
}

/// The rule set documents for a list: one per version the registry
/// published (with the time it took effect), or the newest available one if
/// none was published; each with what the report should say about it.
fn rule_sets_for<'r>(
    list: &ListId,
    id: &RuleSetId,
    registry: &Registry,
    available: &'r [RuleSet],
) -> Vec<(Option<Timestamp>, Option<&'r RuleSet>, RuleSetUse)> {
    let same_id = || available.iter().filter(|r| r.id == id.as_str());
    let use_of = |rules: Option<&RuleSet>, from: Option<Timestamp>, note: Option<String>| RuleSetUse {
        list: list.clone(),
        rule_set: id.to_string(),
        version: rules.map(|r| r.version),
        from,
        note,
    };
    let published = registry.rule_set(id);
    if published.is_empty() {
        let newest = same_id().max_by_key(|r| r.version);
        let note = match newest {
            Some(_) => "the registry has not published this rule set; the newest available version is applied",
            None => "no rule set document with this id is available: the list's cases are not audited",
        };
        return vec![(None, newest, use_of(newest, None, Some(note.into())))];
    }
    published
        .iter()
        .map(|p| {
            let exact = same_id().find(|r| r.version == p.version);
            let rules = exact.or_else(|| same_id().filter(|r| r.version < p.version).max_by_key(|r| r.version));
            let note = match (exact, rules) {
                (Some(r), _) => match p.digest {
                    Digest::Sha256(hash) if hash.0 == r.digest => None,
                    _ => Some("the published digest does not match the rule set document applied".into()),
                },
                (None, Some(r)) => Some(format!(
                    "version {} is published but not available; version {} is applied instead",
                    p.version, r.version
                )),
                (None, None) => Some(format!(
                    "version {} is published but no document of it or an earlier version is available: cases under it are not audited",
                    p.version
                )),
            };
            (Some(p.published_at), rules, use_of(rules, Some(p.published_at), note))
        })
        .collect()
}

fn date(time: Timestamp) -> NaiveDate {
    time.china_date().naive()
}

struct Checker<'a> {
    view: &'a CaseView,
    rules: &'a RuleSet,
    calendar: &'a Calendar,
    today: NaiveDate,
    out: Vec<Finding>,
}

impl Checker<'_> {
    /// A breach with no deadline involved.
    fn violated(&mut self, rule: Rule, agency: &AgencyId, evidence: Vec<Evidence>, what: String) {
        self.push(rule, FindingStatus::Violated, agency, evidence, None, what);
    }

    /// A breach of (or a wait on) a deadline.
    fn timed(
        &mut self,
        rule: Rule,
        status: FindingStatus,
        agency: &AgencyId,
        evidence: Vec<Evidence>,
        deadline: Deadline,
        what: String,
    ) {
        self.push(rule, status, agency, evidence, Some(deadline), what);
    }

    fn push(
        &mut self,
        rule: Rule,
        status: FindingStatus,
        agency: &AgencyId,
        evidence: Vec<Evidence>,
        deadline: Option<Deadline>,
        what: String,
    ) {
        self.out.push(Finding {
            rule,
            gravity: rule.gravity(),
            status,
            list: self.view.list.clone(),
            subject: self.view.subject.to_string(),
            number: self.view.number.clone(),
            agency: agency.clone(),
            evidence,
            deadline,
            what,
            rule_set: format!("{} v{}", self.rules.id, self.rules.version),
            unconfirmed: rule
                .parameters()
                .iter()
                .filter(|p| self.rules.unconfirmed.iter().any(|u| u == *p))
                .map(|p| (*p).to_owned())
                .collect(),
        });
    }

    /// Compares an act (or its absence) with a deadline.
    fn timeliness(&self, deadline: &Deadline, done: Option<Timestamp>) -> Option<FindingStatus> {
        match done {
            Some(at) if date(at) <= deadline.due => None,
            Some(_) => Some(FindingStatus::Late),
            None if deadline.due < self.today => Some(FindingStatus::Overdue),
            None => Some(FindingStatus::Pending),
        }
    }

    fn check(&mut self, registry: &docket_model::Registry, designating: &AgencyId) -> Result<(), AuditError> {
        let view = self.view;
        let rules = self.rules;
        let designation = view.designation.as_ref();

        // The objection window after the notice, computed once for both rules that use it.
        let window = match (rules.objection_window, view.notice) {
            (Some(period), Some(notice)) => Some((period, notice, self.calendar.due(date(notice.at), period)?)),
            _ => None,
        };
        if let Some(d) = designation {
            if rules.notice_required && view.notice.is_none_or(|n| n.at > d.in_force_from) {
                self.violated(
                    Rule::NoticeBeforeDesignation,
                    designating,
                    vec![d.decision],
                    "designated with no notice served before the decision".into(),
                );
            }
            if let Some((period, notice, deadline)) = &window {
                if date(d.in_force_from) <= deadline.due {
                    let what = format!(
                        "in force from {} while the objection window ({period} from the notice) ran until {}",
                        date(d.in_force_from),
                        deadline.due
                    );
                    self.timed(
                        Rule::ObjectionWindowObserved,
                        FindingStatus::Violated,
                        designating,
                        vec![*notice, d.decision],
                        deadline.clone(),
                        what,
                    );
                }
            }
            let missing: Vec<String> = rules
                .required_decision_fields
                .iter()
                .filter(|f| d.empty.contains(f))
                .map(|f| serde_json::to_value(f).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
                .chain((rules.basis_required && d.basis.is_none()).then(|| "basis document".to_owned()))
                .collect();
            if !missing.is_empty() {
                self.violated(
                    Rule::DecisionContent,
                    designating,
                    vec![d.decision],
                    format!("the decision document lacks: {}", missing.join(", ")),
                );
            }
            let term_ok = d.term_months.is_some_and(|m| u32::from(m) <= rules.term.max_months);
            if !term_ok {
                let set = d.term_months.map_or("no end (until removed)".to_owned(), |m| format!("{m} months"));
                self.violated(
                    Rule::TermWithinMaximum,
                    designating,
                    vec![d.decision],
                    format!("the decision sets a term of {set}; the maximum is {} months", rules.term.max_months),
                );
            }
            for extension in &d.extensions {
                let allowed = rules.term.extension_months;
                if allowed.is_none_or(|(low, high)| !(low..=high).contains(&u32::from(extension.months))) {
                    let bounds = match allowed {
                        Some((low, high)) => format!("an extension must be {low} to {high} months"),
                        None => "the rule set allows no extension".into(),
                    };
                    self.violated(
                        Rule::TermWithinMaximum,
                        designating,
                        vec![d.decision, extension.evidence],
                        format!("the term was extended by {} months; {bounds}", extension.months),
                    );
                }
            }
            if rules.minors_excluded {
                if let SubjectId::Resident(id) = &view.subject {
                    if let Ok(born) = id.birth_date() {
                        let adult = born.checked_add_months(Months::new(18 * 12));
                        if adult.is_some_and(|adult| date(d.in_force_from) < adult) {
                            let age = date(d.in_force_from).years_since(born).unwrap_or(0);
                            self.violated(
                                Rule::MinorNotListed,
                                designating,
                                vec![d.decision],
                                format!("born {born}, aged {age} when designated"),
                            );
                        }
                    }
                }
            }
        }

        // Objections: a timely one is decided in time; an upheld one is remedied in time.
        let window_due = window.as_ref().map(|(_, _, deadline)| deadline.due);
        for objection in &view.objections {
            let timely = window_due.is_none_or(|due| date(objection.received.at) <= due) || objection.after_designation;
            if let (true, Some(review)) = (timely, rules.objection_review) {
                let deadline = self.calendar.due(date(objection.received.at), review)?;
                let decided = objection.decided.map(|(e, _)| e);
                if let Some(status) = self.timeliness(&deadline, decided.map(|e| e.at)) {
                    let what = match decided {
                        Some(e) => format!("objection decided on {}, after its deadline", date(e.at)),
                        None => "objection not decided".into(),
                    };
                    let evidence = std::iter::once(objection.received).chain(decided).collect();
                    self.timed(Rule::ObjectionDecidedInTime, status, designating, evidence, deadline, what);
                }
            }
            if let (Some((decision, Outcome::Upheld)), Some(correction), Some(_)) =
                (objection.decided, rules.correction_after_upheld, designation)
            {
                let deadline = self.calendar.due(date(decision.at), correction)?;
                let revoked = (view.status == Some(Status::Revoked)).then_some(view.closure).flatten();
                if let Some(status) = self.timeliness(&deadline, revoked.map(|e| e.at)) {
                    let evidence = [Some(objection.received), Some(decision), revoked].into_iter().flatten().collect();
                    self.timed(
                        Rule::UpheldObjectionRemedied,
                        status,
                        designating,
                        evidence,
                        deadline,
                        "objection upheld; the designation was not revoked in time".into(),
                    );
                }
            }
        }

        // Measures: catalogued, under an MOU that binds the agency, only while designated.
        for m in &view.measures {
            if registry.measure(&m.measure).is_none() {
                let what = format!("{} applied {}, which is not in the measure catalogue", m.agency, m.measure);
                self.violated(Rule::MeasureCatalogued, &m.agency, vec![m.applied], what);
            } else if !m.covered {
                let what = format!(
                    "{} applied {} citing {}, which does not bind it to that measure on this list",
                    m.agency, m.measure, m.mou
                );
                self.violated(Rule::MeasureUnderMou, &m.agency, vec![m.applied], what);
            }
            let not_in_force = view
                .marks
                .iter()
                .any(|mark| mark.kind == MarkKind::MeasureOnCaseNotInForce && mark.seq == m.applied.seq);
            if not_in_force {
                let what = format!("{} applied {} while the case was not designated and in force", m.agency, m.measure);
                self.violated(Rule::MeasureOnlyWhileDesignated, &m.agency, vec![m.applied], what);
            }
        }

        // Removal: after the case ends, every measure in place is lifted in time.
        if let (Some(status), Some(ended)) = (view.status, view.ended_at()) {
            let deadline = self.calendar.due(date(ended), rules.removal)?;
            let closing = match status {
                Status::Expired => designation.map(|d| d.decision),
                _ => view.closure,
            };
            for m in view.measures.iter().filter(|m| m.applied.at < ended) {
                let lifted = m.lifted.map(|(e, _)| e);
                if let Some(finding) = self.timeliness(&deadline, lifted.map(|e| e.at)) {
                    let what = match lifted {
                        Some(e) => format!("{} lifted {} on {}, after the deadline", m.agency, m.measure, date(e.at)),
                        None => format!("{} has not lifted {}", m.agency, m.measure),
                    };
                    let evidence = [closing, Some(m.applied), lifted].into_iter().flatten().collect();
                    self.timed(Rule::RemovalInTime, finding, &m.agency, evidence, deadline.clone(), what);
                }
            }
        }

        // Credit restoration only after the minimum publicity period.
        if let (Some(RestorationReason::CreditRepaired), Some(d), Some(closure)) =
            (view.restoration, designation, view.closure)
        {
            let months = rules.publicity_min_months.of(d.severity);
            let from = date(d.in_force_from);
            let earliest = from.checked_add_months(Months::new(months)).unwrap_or(from);
            if date(closure.at) < earliest {
                let what = format!(
                    "restored on {} after publicity from {from}; the minimum for {:?} severity is {months} months ({earliest})",
                    date(closure.at),
                    d.severity
                );
                self.violated(Rule::PublicityBeforeRestoration, designating, vec![d.decision, closure], what);
            }
        }
        Ok(())
    }
}
