//! The checks and their findings.
//!
//! The audit reads the projections through `docket_fold::views::Source` at
//! one bitemporal point: what the ledger held at `as_of.known`, about what was
//! in force up to `as_of.valid_at`, which is also "today" for deadlines. A
//! deadline not yet passed with nothing done is `pending`; a passed one with
//! nothing done is `overdue`; an act after its deadline is `late`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Months, NaiveDate};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;

use docket_fold::case::{
    evaluate, AsOf, CaseState, CaseView, Evidence, Fact, Known, MarkKind, ObjectionView, Outcome, Status, Step,
};
use docket_fold::views::{minor_when_designated, Source};
use docket_fold::FoldError;
use docket_model::event::{AuthorityLevel, RestorationReason};
use docket_model::{AgencyId, CaseNumber, Digest, ListId, Registry, RuleSetId, SubjectId, Timestamp};

use crate::calendar::{Calendar, Deadline, PeriodError};
use crate::rules::RuleSet;

/// The rules, each with a stable id ([`Rule::id`], also its JSON form). The
/// variants are in the order of [`RULES`], which holds everything else about
/// each rule: adding a rule is a variant here and a row there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    NoticeBeforeDesignation,
    NoticeContent,
    ObjectionWindowObserved,
    ObjectionDecidedInTime,
    ObjectionAnsweredBeforeDesignation,
    UpheldObjectionRemedied,
    DecisionContent,
    TermWithinMaximum,
    ExtensionWhileInForce,
    MeasureCatalogued,
    MeasureAuthorityLevel,
    MeasureUnderMou,
    MeasureOnlyWhileDesignated,
    RemovalInTime,
    PublicityBeforeRestoration,
    MinorNotListed,
    RecordedInTime,
    RestorationDecidedInTime,
    RestorationDecisionContent,
}

/// One rule: its id, the rule set parameters it applies, how grave a breach
/// is, what it checks (for documentation), and
/// the function that checks it.
pub struct RuleDef {
    pub rule: Rule,
    pub id: &'static str,
    pub parameters: &'static [&'static str],
    pub gravity: Gravity,
    pub about: &'static str,
    check: fn(&mut Checker) -> Result<(), AuditError>,
}

impl std::fmt::Debug for RuleDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleDef").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Every rule, in the order of [`Rule`]'s variants.
pub const RULES: [RuleDef; 19] = [
    RuleDef {
        rule: Rule::NoticeBeforeDesignation,
        id: "notice-before-designation",
        parameters: &[],
        gravity: Gravity::High,
        about: "a notice is served before the designation is decided",
        check: notice_before_designation,
    },
    RuleDef {
        rule: Rule::NoticeContent,
        id: "notice-content",
        parameters: &["required_notice_fields"],
        gravity: Gravity::Medium,
        about: "the notice informs the party of the matter, its legal basis and the party's rights",
        check: notice_content,
    },
    RuleDef {
        rule: Rule::ObjectionWindowObserved,
        id: "objection-window-observed",
        parameters: &["objection_window"],
        gravity: Gravity::Medium,
        about: "the designation is decided only after the objection window, counted from service, has closed",
        check: objection_window_observed,
    },
    RuleDef {
        rule: Rule::ObjectionDecidedInTime,
        id: "objection-decided-in-time",
        parameters: &["objection_review"],
        gravity: Gravity::Medium,
        about: "a timely objection is decided within the review period from its receipt",
        check: objection_decided_in_time,
    },
    RuleDef {
        rule: Rule::ObjectionAnsweredBeforeDesignation,
        id: "objection-answered-before-designation",
        parameters: &[],
        gravity: Gravity::High,
        about: "no designation while a timely objection lodged before it is unanswered",
        check: objection_answered_before_designation,
    },
    RuleDef {
        rule: Rule::UpheldObjectionRemedied,
        id: "upheld-objection-remedied",
        parameters: &["correction_after_upheld"],
        gravity: Gravity::Medium,
        about: "no designation after an upheld objection; one upheld later is revoked in time",
        check: upheld_objection_remedied,
    },
    RuleDef {
        rule: Rule::DecisionContent,
        id: "decision-content",
        parameters: &["required_decision_fields"],
        gravity: Gravity::Low,
        about: "the decision states reasons, basis, measures, removal and remedies, and rests on a basis document dated no later than itself",
        check: decision_content,
    },
    RuleDef {
        rule: Rule::TermWithinMaximum,
        id: "term-within-maximum",
        parameters: &["term"],
        gravity: Gravity::Medium,
        about: "the term, each extension and the extensions together stay within the rule set's bounds and the publicity maximum for the severity",
        check: term_within_maximum,
    },
    RuleDef {
        rule: Rule::ExtensionWhileInForce,
        id: "extension-while-in-force",
        parameters: &[],
        gravity: Gravity::Medium,
        about: "a term is extended only while the designation is in force, not after it ran out",
        check: extension_while_in_force,
    },
    RuleDef {
        rule: Rule::MeasureCatalogued,
        id: "measure-catalogued",
        parameters: &[],
        gravity: Gravity::High,
        about: "every measure applied is in the measure catalogue",
        check: measure_catalogued,
    },
    RuleDef {
        rule: Rule::MeasureAuthorityLevel,
        id: "measure-authority-level",
        parameters: &["measure_authority_levels"],
        gravity: Gravity::High,
        about: "every measure applied rests on an authority of a level the rule set accepts",
        check: measure_authority_level,
    },
    RuleDef {
        rule: Rule::MeasureUnderMou,
        id: "measure-under-mou",
        parameters: &[],
        gravity: Gravity::High,
        about: "the applying agency is bound to the measure on this list by the MOU it cites",
        check: measure_under_mou,
    },
    RuleDef {
        rule: Rule::MeasureOnlyWhileDesignated,
        id: "measure-only-while-designated",
        parameters: &[],
        gravity: Gravity::High,
        about: "measures are applied only while the designation is in force",
        check: measure_only_while_designated,
    },
    RuleDef {
        rule: Rule::RemovalInTime,
        id: "removal-in-time",
        parameters: &["removal"],
        gravity: Gravity::Medium,
        about: "after restoration, revocation or expiry every measure is lifted within the removal period",
        check: removal_in_time,
    },
    RuleDef {
        rule: Rule::PublicityBeforeRestoration,
        id: "publicity-before-restoration",
        parameters: &["publicity_min_months"],
        gravity: Gravity::Low,
        about: "credit restoration only after the minimum publicity period for the severity",
        check: publicity_before_restoration,
    },
    RuleDef {
        rule: Rule::MinorNotListed,
        id: "minor-not-listed",
        parameters: &[],
        gravity: Gravity::High,
        about: "no natural person under 18 at the designation",
        check: minor_not_listed,
    },
    RuleDef {
        rule: Rule::RecordedInTime,
        id: "recorded-in-time",
        parameters: &["recording"],
        gravity: Gravity::Low,
        about: "every act is recorded within the recording period of its date (a decision's: the day it was taken)",
        check: recorded_in_time,
    },
    RuleDef {
        rule: Rule::RestorationDecidedInTime,
        id: "restoration-decided-in-time",
        parameters: &["restoration_processing"],
        gravity: Gravity::Medium,
        about: "an application for credit restoration is decided within the processing period from its receipt",
        check: restoration_decided_in_time,
    },
    RuleDef {
        rule: Rule::RestorationDecisionContent,
        id: "restoration-decision-content",
        parameters: &[],
        gravity: Gravity::Medium,
        about: "a refused restoration states its reasons, and no fee in any form is collected from the applicant",
        check: restoration_decision_content,
    },
];

impl Rule {
    /// Every rule, in table order.
    pub fn all() -> impl Iterator<Item = Rule> {
        RULES.iter().map(|def| def.rule)
    }

    /// The rule's row in [`RULES`].
    pub fn def(self) -> &'static RuleDef {
        &RULES[self as usize]
    }

    /// The stable id.
    pub fn id(self) -> &'static str {
        self.def().id
    }

    /// The rule set parameters the rule applies.
    pub fn parameters(self) -> &'static [&'static str] {
        self.def().parameters
    }

    /// How grave a breach is.
    pub fn gravity(self) -> Gravity {
        self.def().gravity
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
        let ids: Vec<&str> = RULES.iter().map(|def| def.id).collect();
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
    let auditor = Auditor::new(source.registry(as_of.known)?, as_of, scope, rule_sets, calendar)?;
    let mut report = auditor.report();
    for (list, _) in auditor.registry.lists() {
        if !auditor.covers(list) {
            continue;
        }
        let mut failed = None;
        source.for_list(list, &mut |case| {
            if failed.is_some() {
                return;
            }
            match auditor.case(&case) {
                Ok(None) => {}
                Ok(Some(findings)) => {
                    report.cases += 1;
                    findings.into_iter().for_each(&mut *sink);
                }
                Err(error) => failed = Some(error),
            }
        })?;
        if let Some(error) = failed {
            return Err(error);
        }
    }
    Ok(report)
}

/// The audit of one point, case by case: what [`audit_each`] does for each
/// case, for a reader that keeps each case's findings and audits again only
/// the cases that changed (the pages do).
#[derive(Debug)]
pub struct Auditor<'a> {
    registry: Arc<Registry>,
    as_of: AsOf,
    scope: &'a Scope,
    calendar: &'a Calendar,
    /// The rule set documents of each list in scope, and its designating agency.
    lists: BTreeMap<ListId, (RuleSetUses<'a>, AgencyId)>,
    header: Report,
}

/// A list's rule set documents: from when each applies, the document (None:
/// not available), and what the report says of it.
type RuleSetUses<'a> = Vec<(Option<Timestamp>, Option<&'a RuleSet>, RuleSetUse)>;

impl<'a> Auditor<'a> {
    /// The audit at `as_of` of `scope`, `registry` being the registry as of `as_of.known`.
    pub fn new(
        registry: Arc<Registry>,
        as_of: AsOf,
        scope: &'a Scope,
        rule_sets: &'a [RuleSet],
        calendar: &'a Calendar,
    ) -> Result<Self, AuditError> {
        if let Some(list) = &scope.list {
            if registry.list(list).is_none() {
                return Err(AuditError::UnknownList(list.clone()));
            }
        }
        let mut header = Report {
            as_of,
            calendar: format!("{} v{}", calendar.id, calendar.version),
            rule_sets: vec![],
            cases: 0,
            findings: vec![],
        };
        let mut lists = BTreeMap::new();
        for (list, state) in registry.lists() {
            if scope.list.as_ref().is_some_and(|l| l != list) {
                continue;
            }
            let uses = rule_sets_for(list, &state.rule_set, &registry, rule_sets);
            header.rule_sets.extend(uses.iter().map(|(_, _, used)| used.clone()));
            if uses.iter().all(|(_, rules, _)| rules.is_none()) {
                continue;
            }
            lists.insert(list.clone(), (uses, state.designating_agency.clone()));
        }
        Ok(Self { registry, as_of, scope, calendar, lists, header })
    }

    /// The report's header: the point, the calendar, the rule sets; no cases counted, no findings.
    pub fn report(&self) -> Report {
        self.header.clone()
    }

    /// Whether the audit reads `list`'s cases (in scope, and some rule set document applies).
    pub fn covers(&self, list: &ListId) -> bool {
        self.lists.contains_key(list)
    }

    /// The findings on `case` (those in scope), or None if the audit does
    /// not count it (its list is not covered, nothing about it is known at
    /// the point, or no rule set document applies to it).
    pub fn case(&self, case: &CaseState) -> Result<Option<Vec<Finding>>, AuditError> {
        let Some((uses, designating)) = self.lists.get(&case.list) else { return Ok(None) };
        let view = evaluate(case, &self.registry, self.as_of);
        if view.version == 0 {
            return Ok(None);
        }
        let Some(rules) = rules_in_force(uses, &view) else {
            return Ok(None);
        };
        let mut checker = Checker {
            case,
            view: &view,
            rules,
            calendar: self.calendar,
            registry: &self.registry,
            designating,
            as_of: self.as_of,
            today: self.as_of.valid_at.china_date().naive(),
            window: None,
            out: vec![],
        };
        checker.check()?;
        let mut findings = checker.out;
        findings.retain(|finding| self.scope.agency.as_ref().is_none_or(|a| *a == finding.agency));
        Ok(Some(findings))
    }
}

/// The rules in force when the case opened (notice, else decision): the
/// last version published by then, else the first one published.
fn rules_in_force<'r>(
    uses: &[(Option<Timestamp>, Option<&'r RuleSet>, RuleSetUse)],
    view: &CaseView,
) -> Option<&'r RuleSet> {
    let opened = view.notice.as_ref().map(|n| n.evidence.at).or(view.designation.as_ref().map(|d| d.decision.at));
    let chosen = uses
        .iter()
        .rev()
        .find(|(from, _, _)| from.zip(opened).is_none_or(|(from, opened)| from <= opened))
        .or(uses.first());
    chosen.and_then(|(_, rules, _)| *rules)
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

/// What a rule's check sees: one case at one bitemporal point, its rule set,
/// the calendar and the registry; findings go to `out`.
struct Checker<'a> {
    /// The case with all its facts known at the audit's point, for rules
    /// that judge an act as the ledger stood when the act was recorded.
    case: &'a CaseState,
    view: &'a CaseView,
    rules: &'a RuleSet,
    calendar: &'a Calendar,
    registry: &'a Registry,
    /// The list's designating agency: the one that had to act on the case.
    designating: &'a AgencyId,
    /// The audit's bitemporal point.
    as_of: AsOf,
    today: NaiveDate,
    /// The objection window after service of the notice, computed once for
    /// the rules that use it.
    window: Option<Deadline>,
    out: Vec<Finding>,
}

impl Checker<'_> {
    /// A breach with no deadline involved.
    fn violated(&mut self, rule: Rule, agency: &AgencyId, evidence: Vec<Evidence>, what: String) {
        self.push(rule, FindingStatus::Violated, agency, evidence, None, what, rule.parameters());
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
        self.push(rule, status, agency, evidence, Some(deadline), what, rule.parameters());
    }

    /// A finding; `parameters` are the rule set parameters it rests on.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        rule: Rule,
        status: FindingStatus,
        agency: &AgencyId,
        evidence: Vec<Evidence>,
        deadline: Option<Deadline>,
        what: String,
        parameters: &[&str],
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
            unconfirmed: parameters
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

    /// Runs every rule of the table on the case.
    fn check(&mut self) -> Result<(), AuditError> {
        self.window = match (self.rules.objection_window, &self.view.notice) {
            (Some(period), Some(notice)) => Some(self.calendar.due(date(notice.served_at), period)?),
            _ => None,
        };
        for def in &RULES {
            (def.check)(self)?;
        }
        Ok(())
    }

    /// Whether a fact counts at the audit's point: known, and in force by its valid time.
    fn known(&self, fact: &Fact) -> bool {
        self.as_of.known.includes(fact.seq, fact.recorded_at) && fact.effective_at <= self.as_of.valid_at
    }

    /// Whether an objection was lodged in time: within the window after
    /// service, or (with no window) at any time, or against a designation in force.
    fn timely(&self, objection: &ObjectionView) -> bool {
        objection.after_designation
            || self.window.as_ref().is_none_or(|window| date(objection.received_at) <= window.due)
    }
}

// The rules, one function each, in the order of `RULES`.

fn notice_before_designation(c: &mut Checker) -> Result<(), AuditError> {
    let Some(d) = &c.view.designation else { return Ok(()) };
    if !c.rules.notice_required {
        return Ok(());
    }
    let what = match &c.view.notice {
        None => "designated with no notice served before the decision".to_owned(),
        Some(notice) if notice.served_at > d.decided_at => {
            format!("the notice was served on {}, after the decision of {}", date(notice.served_at), date(d.decided_at))
        }
        // Judged as the ledger stood when the decision was recorded: a notice
        // recorded after it, back-dated, was not on record when it was made.
        Some(notice) if notice.evidence.seq > d.decision.seq => format!(
            "no notice was on record when the decision was recorded; the notice recorded later (seq {}) is dated {}",
            notice.evidence.seq,
            date(notice.evidence.at)
        ),
        Some(_) => return Ok(()),
    };
    let evidence = c.view.notice.iter().map(|n| n.evidence).chain([d.decision]).collect();
    c.violated(Rule::NoticeBeforeDesignation, c.designating, evidence, what);
    Ok(())
}

fn notice_content(c: &mut Checker) -> Result<(), AuditError> {
    let Some(notice) = &c.view.notice else { return Ok(()) };
    let missing: Vec<String> =
        c.rules.required_notice_fields.iter().filter(|f| notice.empty.contains(f)).map(field_name).collect();
    if !missing.is_empty() {
        let what = format!("the notice does not inform the party of: {}", missing.join(", "));
        c.violated(Rule::NoticeContent, c.designating, vec![notice.evidence], what);
    }
    Ok(())
}

fn objection_window_observed(c: &mut Checker) -> Result<(), AuditError> {
    let (Some(d), Some(notice), Some(window)) = (&c.view.designation, &c.view.notice, &c.window) else {
        return Ok(());
    };
    // The decision may be taken, and take effect, only once the window
    // closed, so that every objection lodged in time can be weighed: a
    // decision in force later but taken inside the window breaches it, and
    // so does one taken later but made effective from inside it.
    if date(d.decided_at.min(d.in_force_from)) <= window.due {
        let what = format!(
            "decided on {} (in force from {}) while the objection window ({} from service on {}) ran until {}",
            date(d.decided_at),
            date(d.in_force_from),
            window.period,
            date(notice.served_at),
            window.due
        );
        let evidence = vec![notice.evidence, d.decision];
        let (window, designating) = (window.clone(), c.designating);
        c.timed(Rule::ObjectionWindowObserved, FindingStatus::Violated, designating, evidence, window, what);
    }
    Ok(())
}

fn objection_decided_in_time(c: &mut Checker) -> Result<(), AuditError> {
    let Some(review) = c.rules.objection_review else { return Ok(()) };
    for objection in &c.view.objections {
        if !c.timely(objection) {
            continue;
        }
        let deadline = c.calendar.due(date(objection.received_at), review)?;
        let decided = objection.decided.map(|(e, _)| e);
        if let Some(status) = c.timeliness(&deadline, decided.map(|e| e.at)) {
            let what = match decided {
                Some(e) => format!(
                    "objection received on {} decided on {}, after its deadline",
                    date(objection.received_at),
                    date(e.at)
                ),
                None => format!("objection received on {} not decided", date(objection.received_at)),
            };
            let evidence = std::iter::once(objection.received).chain(decided).collect();
            c.timed(Rule::ObjectionDecidedInTime, status, c.designating, evidence, deadline, what);
        }
    }
    Ok(())
}

fn objection_answered_before_designation(c: &mut Checker) -> Result<(), AuditError> {
    let Some(d) = &c.view.designation else { return Ok(()) };
    for objection in c.view.objections.iter().filter(|o| !o.after_designation) {
        if !c.timely(objection) {
            continue;
        }
        let answered = objection.decided.map(|(e, _)| e);
        // Answered before the decision, and on record before it was: an
        // answer recorded after the decision, back-dated, was not on record
        // when the designation was decided.
        if answered.is_some_and(|e| e.at <= d.decided_at && e.seq < d.decision.seq) {
            continue;
        }
        let what = match answered {
            Some(e) if e.seq > d.decision.seq && e.at <= d.decided_at => format!(
                "designated on {} while the objection received on {} was unanswered on record (an answer dated {} was recorded after the decision, seq {})",
                date(d.decided_at),
                date(objection.received_at),
                date(e.at),
                e.seq
            ),
            Some(e) => format!(
                "designated on {} while the objection received on {} was unanswered (answered on {})",
                date(d.decided_at),
                date(objection.received_at),
                date(e.at)
            ),
            None => format!(
                "designated on {} while the objection received on {} was unanswered",
                date(d.decided_at),
                date(objection.received_at)
            ),
        };
        let evidence = [Some(objection.received), Some(d.decision), answered].into_iter().flatten().collect();
        c.violated(Rule::ObjectionAnsweredBeforeDesignation, c.designating, evidence, what);
    }
    Ok(())
}

fn upheld_objection_remedied(c: &mut Checker) -> Result<(), AuditError> {
    let Some(d) = &c.view.designation else { return Ok(()) };
    for objection in &c.view.objections {
        let Some((decision, Outcome::Upheld)) = objection.decided else { continue };
        if decision.at <= d.decided_at {
            // Upheld before the designation: designating anyway defies the
            // answer given; no deadline is involved.
            let what = format!(
                "the objection was upheld on {}; the designation was decided on {} nonetheless",
                date(decision.at),
                date(d.decided_at)
            );
            c.violated(
                Rule::UpheldObjectionRemedied,
                c.designating,
                vec![objection.received, decision, d.decision],
                what,
            );
            continue;
        }
        let Some(correction) = c.rules.correction_after_upheld else { continue };
        let deadline = c.calendar.due(date(decision.at), correction)?;
        let revoked = (c.view.status == Some(Status::Revoked)).then_some(c.view.closure).flatten();
        if let Some(status) = c.timeliness(&deadline, revoked.map(|e| e.at)) {
            let evidence = [Some(objection.received), Some(decision), revoked].into_iter().flatten().collect();
            let what = "objection upheld; the designation was not revoked in time".to_owned();
            c.timed(Rule::UpheldObjectionRemedied, status, c.designating, evidence, deadline, what);
        }
    }
    Ok(())
}

fn decision_content(c: &mut Checker) -> Result<(), AuditError> {
    let Some(d) = &c.view.designation else { return Ok(()) };
    let mut missing: Vec<String> =
        c.rules.required_decision_fields.iter().filter(|f| d.empty.contains(f)).map(field_name).collect();
    if c.rules.basis_required && d.basis.is_none() {
        missing.push("basis document".into());
    }
    let mut faults = vec![];
    if !missing.is_empty() {
        faults.push(format!("the decision document lacks: {}", missing.join(", ")));
    }
    // A basis must be legally effective when the decision rests on it.
    if let Some(basis) = d.basis.as_ref().filter(|b| b.date.naive() > date(d.decided_at)) {
        faults.push(format!(
            "the basis document {} is dated {}, after the decision of {}",
            basis.number,
            basis.date,
            date(d.decided_at)
        ));
    }
    if !faults.is_empty() {
        c.violated(Rule::DecisionContent, c.designating, vec![d.decision], faults.join("; "));
    }
    Ok(())
}

fn term_within_maximum(c: &mut Checker) -> Result<(), AuditError> {
    let Some(d) = &c.view.designation else { return Ok(()) };
    let term = &c.rules.term;
    if d.term_months.is_none_or(|m| u32::from(m) > term.max_months) {
        let set = d.term_months.map_or("no end (until removed)".to_owned(), |m| format!("{m} months"));
        let what = format!("the decision sets a term of {set}; the maximum is {} months", term.max_months);
        c.violated(Rule::TermWithinMaximum, c.designating, vec![d.decision], what);
    }
    term_extensions(c)?;
    // Published, with every extension, no longer than the maximum for the
    // severity, unless a bound above was already broken.
    let (Some(max), Some(months)) = (&c.rules.publicity_max_months, d.term_months) else { return Ok(()) };
    // Saturating: a case may carry any number of extensions.
    let published = d.extensions.iter().fold(u32::from(months), |sum, e| sum.saturating_add(u32::from(e.months)));
    let limit = max.of(d.severity);
    if published > limit && !c.out.iter().any(|f| f.rule == Rule::TermWithinMaximum) {
        let what = format!(
            "published for {published} months with its extensions; the maximum for {:?} severity is {limit} months",
            d.severity
        );
        let evidence = std::iter::once(d.decision).chain(d.extensions.iter().map(|e| e.evidence)).collect();
        let designating = c.designating;
        let parameters = ["term", "publicity_max_months"];
        c.push(Rule::TermWithinMaximum, FindingStatus::Violated, designating, evidence, None, what, &parameters);
    }
    Ok(())
}

/// Each extension within its bounds, and all of them together within the cap.
fn term_extensions(c: &mut Checker) -> Result<(), AuditError> {
    let Some(d) = &c.view.designation else { return Ok(()) };
    let term = &c.rules.term;
    let mut total = 0u32;
    // One finding per case for the extensions' sum, and none when an extension
    // out of bounds on its own was already reported.
    let mut capped = false;
    for extension in &d.extensions {
        let months = u32::from(extension.months);
        if term.extension_months.is_none_or(|(low, high)| !(low..=high).contains(&months)) {
            capped = true;
            let bounds = match term.extension_months {
                Some((low, high)) => format!("an extension must be {low} to {high} months"),
                None => "the rule set allows no extension".into(),
            };
            let what = format!("the term was extended by {months} months; {bounds}");
            c.violated(Rule::TermWithinMaximum, c.designating, vec![d.decision, extension.evidence], what);
        }
        total = total.saturating_add(months);
        // Extensions together may not exceed the cap; one finding, at the extension that crosses it.
        if let (Some(cap), false) = (term.extensions_total_max_months, capped) {
            if total > cap {
                capped = true;
                let what = format!("extensions total {total} months; together they may not exceed {cap} months");
                let evidence = std::iter::once(d.decision).chain(d.extensions.iter().map(|e| e.evidence)).collect();
                let parameters = ["term", "term.extensions_total_max_months"];
                let designating = c.designating;
                c.push(
                    Rule::TermWithinMaximum,
                    FindingStatus::Violated,
                    designating,
                    evidence,
                    None,
                    what,
                    &parameters,
                );
            }
        }
    }
    Ok(())
}

fn extension_while_in_force(c: &mut Checker) -> Result<(), AuditError> {
    let marks = c.view.marks.iter().filter(|m| m.kind == MarkKind::ExtensionNotInForce);
    let found: Vec<Evidence> = marks.map(|m| m.evidence()).collect();
    for extension in found {
        let ended = c.view.ended_at().filter(|end| *end <= extension.at);
        let what = match (ended, c.view.designation.as_ref()) {
            (Some(end), _) => {
                format!("the term was extended on {}, after the designation ended on {}", date(extension.at), date(end))
            }
            (None, Some(_)) => {
                format!("the term was extended on {} while the designation was not in force", date(extension.at))
            }
            (None, None) => format!("the term was extended on {} with no designation in force", date(extension.at)),
        };
        let evidence = c.view.designation.iter().map(|d| d.decision).chain([extension]).collect();
        c.violated(Rule::ExtensionWhileInForce, c.designating, evidence, what);
    }
    extensions_recorded_after_the_term(c);
    Ok(())
}

/// Judged as the ledger stood when each extension was recorded: one dated
/// inside the term but recorded after the term (as it then stood) ran out
/// came too late, whatever date it bears.
fn extensions_recorded_after_the_term(c: &mut Checker) {
    let Some(d) = &c.view.designation else { return };
    let Some(mut months) = d.term_months.map(u32::from) else { return };
    for extension in &d.extensions {
        let recorded = c.case.facts.iter().find(|f| f.seq == extension.evidence.seq).map(|f| f.recorded_at);
        let term_end = d.in_force_from.to_china().checked_add_months(Months::new(months));
        months += u32::from(extension.months);
        let (Some(recorded), Some(end)) = (recorded, term_end) else { continue };
        if recorded.micros() > end.timestamp_micros() {
            let what = format!(
                "the term extension dated {} was recorded on {}, after the term had run out on {}",
                date(extension.evidence.at),
                date(recorded),
                end.date_naive()
            );
            c.violated(Rule::ExtensionWhileInForce, c.designating, vec![d.decision, extension.evidence], what);
        }
    }
}

fn measure_catalogued(c: &mut Checker) -> Result<(), AuditError> {
    for m in &c.view.measures {
        if c.registry.measure(&m.measure).is_none() {
            let what = format!("{} applied {}, which is not in the measure catalogue", m.agency, m.measure);
            c.violated(Rule::MeasureCatalogued, &m.agency, vec![m.applied], what);
        }
    }
    Ok(())
}

fn measure_authority_level(c: &mut Checker) -> Result<(), AuditError> {
    let Some(allowed) = &c.rules.measure_authority_levels else { return Ok(()) };
    for m in &c.view.measures {
        let Some(catalogued) = c.registry.measure(&m.measure) else { continue };
        if !allowed.contains(&catalogued.level) {
            let what = format!(
                "{} applied {}, whose authority ({} {}) is a {}; a measure must rest on: {}",
                m.agency,
                m.measure,
                catalogued.authority.instrument,
                catalogued.authority.article,
                level_name(catalogued.level),
                allowed.iter().map(|l| level_name(*l)).collect::<Vec<_>>().join(", ")
            );
            c.violated(Rule::MeasureAuthorityLevel, &m.agency, vec![m.applied], what);
        }
    }
    Ok(())
}

fn measure_under_mou(c: &mut Checker) -> Result<(), AuditError> {
    for m in &c.view.measures {
        if c.registry.measure(&m.measure).is_none() {
            continue;
        }
        // Judged also as the registry stood when the measure was recorded: an
        // MOU amended later with retroactive effect does not cover it.
        let recorded_at = c.case.facts.iter().find(|f| f.seq == m.applied.seq).map(|f| f.recorded_at);
        let covered_then = recorded_at.is_none_or(|recorded_at| {
            c.registry.mou_covered_when_recorded(&m.mou, &c.view.list, &m.agency, &m.measure, m.applied.at, recorded_at)
        });
        let what = match (m.covered, covered_then) {
            (true, true) => continue,
            (false, _) => format!(
                "{} applied {} citing {}, which does not bind it to that measure on this list",
                m.agency, m.measure, m.mou
            ),
            (true, false) => format!(
                "{} applied {} citing {}, which did not bind it to that measure on this list when the measure was recorded (a later amendment covers it retroactively)",
                m.agency, m.measure, m.mou
            ),
        };
        c.violated(Rule::MeasureUnderMou, &m.agency, vec![m.applied], what);
    }
    Ok(())
}

fn measure_only_while_designated(c: &mut Checker) -> Result<(), AuditError> {
    for m in &c.view.measures {
        let not_in_force =
            c.view.marks.iter().any(|mark| mark.kind == MarkKind::MeasureOnCaseNotInForce && mark.seq == m.applied.seq);
        // Judged also as the ledger stood when the measure was recorded: a
        // designation recorded later and back-dated before the measure does
        // not make an act lawful that had no designation behind it when done.
        let then = AsOf { known: Known::Through(m.applied.seq), valid_at: m.applied.at };
        let in_force_then = evaluate(c.case, c.registry, then).in_force();
        let what = match (not_in_force, in_force_then) {
            (true, _) => format!("{} applied {} while the case was not designated and in force", m.agency, m.measure),
            (false, false) => format!(
                "{} applied {} on {} with no designation in force as the ledger stood then; a designation recorded later is back-dated before it",
                m.agency,
                m.measure,
                date(m.applied.at)
            ),
            (false, true) => continue,
        };
        c.violated(Rule::MeasureOnlyWhileDesignated, &m.agency, vec![m.applied], what);
    }
    Ok(())
}

fn removal_in_time(c: &mut Checker) -> Result<(), AuditError> {
    let (Some(status), Some(ended)) = (c.view.status, c.view.ended_at()) else { return Ok(()) };
    let deadline = c.calendar.due(date(ended), c.rules.removal)?;
    let closing = match status {
        Status::Expired => c.view.designation.as_ref().map(|d| d.decision),
        _ => c.view.closure,
    };
    for m in c.view.measures.iter().filter(|m| m.applied.at < ended) {
        let lifted = m.lifted.map(|(e, _)| e);
        if let Some(finding) = c.timeliness(&deadline, lifted.map(|e| e.at)) {
            let what = match lifted {
                Some(e) => format!("{} lifted {} on {}, after the deadline", m.agency, m.measure, date(e.at)),
                None => format!("{} has not lifted {}", m.agency, m.measure),
            };
            let evidence = [closing, Some(m.applied), lifted].into_iter().flatten().collect();
            c.timed(Rule::RemovalInTime, finding, &m.agency, evidence, deadline.clone(), what);
        }
    }
    Ok(())
}

fn publicity_before_restoration(c: &mut Checker) -> Result<(), AuditError> {
    let (Some(RestorationReason::CreditRepaired), Some(d), Some(closure)) =
        (c.view.restoration, &c.view.designation, c.view.closure)
    else {
        return Ok(());
    };
    let months = c.rules.publicity_min_months.of(d.severity);
    let from = date(d.in_force_from);
    let earliest = from.checked_add_months(Months::new(months)).unwrap_or(from);
    if date(closure.at) < earliest {
        let what = format!(
            "restored on {} after publicity from {from}; the minimum for {:?} severity is {months} months ({earliest})",
            date(closure.at),
            d.severity
        );
        c.violated(Rule::PublicityBeforeRestoration, c.designating, vec![d.decision, closure], what);
    }
    Ok(())
}

fn minor_not_listed(c: &mut Checker) -> Result<(), AuditError> {
    let (true, Some(d), SubjectId::Resident(id)) = (c.rules.minors_excluded, &c.view.designation, &c.view.subject)
    else {
        return Ok(());
    };
    if let Ok(born) = id.birth_date() {
        if minor_when_designated(&c.view.subject, d.in_force_from) {
            let age = date(d.in_force_from).years_since(born).unwrap_or(0);
            c.violated(
                Rule::MinorNotListed,
                c.designating,
                vec![d.decision],
                format!("born {born}, aged {age} when designated"),
            );
        }
    }
    Ok(())
}

fn recorded_in_time(c: &mut Checker) -> Result<(), AuditError> {
    let Some(period) = c.rules.recording else { return Ok(()) };
    // Every act of the case is judged, by the agency that did it: the
    // decision from the day it was taken, any other act from its date. A
    // back-dated act (a correction entered weeks later) thus yields its own
    // finding and cannot pass for an act done in time.
    let decision = c.view.designation.as_ref().map(|d| (d.decision.seq, d.decided_at));
    let case = c.case;
    let known: Vec<&Fact> = case.facts.iter().filter(|f| c.known(f)).collect();
    for fact in known {
        let dated = match decision {
            Some((seq, decided_at)) if seq == fact.seq => decided_at,
            _ => fact.effective_at,
        };
        if date(fact.recorded_at) <= date(dated) {
            continue;
        }
        let deadline = c.calendar.due(date(dated), period)?;
        if date(fact.recorded_at) > deadline.due {
            let what =
                format!("the {} of {} was recorded on {}", step_name(&fact.step), date(dated), date(fact.recorded_at));
            let evidence = vec![Evidence { seq: fact.seq, id: fact.id, at: fact.effective_at }];
            let agency = fact.agency.clone();
            c.timed(Rule::RecordedInTime, FindingStatus::Late, &agency, evidence, deadline, what);
        }
    }
    Ok(())
}

/// A case step in words (`designation decision`).
fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Notice { .. } => "notice",
        Step::Objection { .. } => "objection",
        Step::ObjectionDecision { .. } => "objection decision",
        Step::Designation { .. } => "designation decision",
        Step::TermExtended { .. } => "term extension",
        Step::Revocation { .. } => "revocation",
        Step::Restoration { .. } => "restoration",
        Step::MeasureApplied { .. } => "application of a measure",
        Step::MeasureLifted { .. } => "lifting of a measure",
        Step::RestorationApplication { .. } => "restoration application",
        Step::RestorationAccepted { .. } => "acceptance of a restoration application",
        Step::RestorationDecision { .. } => "restoration decision",
    }
}

fn restoration_decided_in_time(c: &mut Checker) -> Result<(), AuditError> {
    let Some(period) = c.rules.restoration_processing else { return Ok(()) };
    for application in &c.view.applications {
        let deadline = c.calendar.due(date(application.received_at), period)?;
        let decided = application.decided.map(|d| d.evidence);
        // A case that ended (expired, revoked, restored otherwise) before the
        // deadline with the application undecided leaves nothing to decide.
        if decided.is_none() && c.view.ended_at().is_some_and(|end| date(end) <= deadline.due) {
            continue;
        }
        if let Some(status) = c.timeliness(&deadline, decided.map(|e| e.at)) {
            let received = date(application.received_at);
            let what = match decided {
                Some(e) => format!("restoration application received on {received} decided on {}", date(e.at)),
                None => format!("restoration application received on {received} not decided"),
            };
            let evidence = std::iter::once(application.received).chain(decided).collect();
            c.timed(Rule::RestorationDecidedInTime, status, c.designating, evidence, deadline, what);
        }
    }
    Ok(())
}

fn restoration_decision_content(c: &mut Checker) -> Result<(), AuditError> {
    for application in &c.view.applications {
        let Some(decision) = application.decided else { continue };
        let mut faults = vec![];
        if !decision.granted && !decision.reasons_given {
            faults.push("refused without reasons".to_owned());
        }
        if decision.fees_collected_fen > 0 {
            let fen = decision.fees_collected_fen;
            faults.push(format!("a fee of {}.{:02} yuan was collected", fen / 100, fen % 100));
        }
        if !faults.is_empty() {
            let what = format!(
                "the restoration application received on {}: {}",
                date(application.received_at),
                faults.join("; ")
            );
            let evidence = vec![application.received, decision.evidence];
            c.violated(Rule::RestorationDecisionContent, c.designating, evidence, what);
        }
    }
    Ok(())
}

/// The JSON name of a field enum (`legal_basis`).
fn field_name<T: Serialize>(field: &T) -> String {
    serde_json::to_value(field).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// An authority level in words (`departmental rule`).
fn level_name(level: AuthorityLevel) -> String {
    field_name(&level).replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_enum_order_with_unique_ids() {
        let mut ids = std::collections::BTreeSet::new();
        for (index, def) in RULES.iter().enumerate() {
            assert_eq!(def.rule as usize, index, "{} is out of place", def.id);
            assert!(ids.insert(def.id), "{} twice", def.id);
        }
        assert_eq!(Rule::all().count(), RULES.len());
    }

    #[test]
    fn every_parameter_a_rule_names_is_one_a_rule_set_may_mark_unconfirmed() {
        for def in &RULES {
            for parameter in def.parameters {
                assert!(crate::rules::PARAMETERS.contains(parameter), "{}: {parameter}", def.id);
            }
        }
    }
}
