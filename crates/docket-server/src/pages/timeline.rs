//! The case timeline's data: every fact known at the point, in valid-time
//! order with its record time (back-dated acts marked); the periods that
//! ran, with the holidays and adjusted working days that moved each
//! deadline; every audit finding on the step it concerns; the measures
//! each agency applied and lifted.
//!
//! Findings come from `docket_audit::audit::audit_each` over a source that
//! holds this one case: a finding follows from the case's events, the
//! registry and the rule set alone, so they are the findings the full
//! audit has for it. They are shown from the audit's data (rule id,
//! status, evidence, deadline), whatever rules there are.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Weekday};
use minijinja::{context, Value};

use docket_audit::audit::{audit_each, Scope};
use docket_audit::{Calendar, Deadline, Finding, FindingStatus, Period, RuleSet};
use docket_fold::case::{AsOf, CaseState, CaseView, Fact, Known, Status};
use docket_fold::query;
use docket_fold::views::{Publication, Source};
use docket_fold::FoldError;
use docket_model::{AgencyId, ListId, Registry, SubjectId, Timestamp};

use super::desk::{find_case, verifier_key, view_of, CaseParams};
use super::PageError;
use crate::error::ApiError;
use crate::App;

/// A day strip is drawn for periods of at most this many days (longer
/// ones, such as terms, show their ends only).
pub(crate) const STRIP_DAYS_MAX: i64 = 62;

/// A source holding only some cases: the views and the audit over it are
/// those of the full store restricted to these cases (each case's answer
/// follows from its own events and the registry).
pub(crate) struct Only<'a> {
    pub(crate) app: &'a App,
    pub(crate) cases: &'a [CaseState],
}

impl Only<'_> {
    fn visit(&self, keep: impl Fn(&CaseState) -> bool, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.cases.iter().filter(|case| keep(case)).for_each(|case| visit(case.clone()));
        Ok(())
    }
}

impl Source for Only<'_> {
    fn registry(&self, known: Known) -> Result<Arc<Registry>, FoldError> {
        self.app.store.registry(known)
    }
    fn for_list(&self, list: &ListId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.visit(|case| case.list == *list, visit)
    }
    fn for_subject(&self, subject: &SubjectId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.visit(|case| case.subject == *subject, visit)
    }
    fn for_applier(&self, agency: &AgencyId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.visit(|case| case.facts.iter().any(|fact| fact.agency == *agency), visit)
    }
    fn publication(&self) -> &Publication {
        self.app.store.publication()
    }
}

/// Everything the timeline page shows; with `only`, the findings where that agency had to act.
pub(crate) fn data(app: &App, params: &CaseParams, only: Option<&AgencyId>) -> Result<Value, PageError> {
    let case = find_case(app, params)?;
    let as_of = query::resolve(&app.store, params.as_of.as_deref(), params.valid_at.as_deref())?;
    let view = view_of(app, &case, as_of)?;
    let mut findings = findings_of(app, &case, as_of)?;
    findings.retain(|f| only.is_none_or(|agency| f.agency == *agency));
    let mut facts: Vec<&Fact> = case.facts.iter().filter(|f| as_of.known.includes(f.seq, f.recorded_at)).collect();
    facts.sort_by_key(|f| (f.effective_at, f.seq));
    let placed: Vec<Option<u64>> = findings.iter().map(|f| step_of(f, &facts)).collect();
    let rows: Vec<Value> = facts
        .iter()
        .map(|fact| {
            let on_step: Vec<Value> =
                findings.iter().zip(&placed).filter(|(_, s)| **s == Some(fact.seq)).map(|(f, _)| finding(f)).collect();
            row(fact, on_step)
        })
        .collect();
    let unplaced: Vec<Value> =
        findings.iter().zip(&placed).filter(|(_, s)| s.is_none()).map(|(f, _)| finding(f)).collect();
    let rule_set = rule_set_of(app, &case.list);
    Ok(context! {
        subject => params.subject, list => params.list, number => params.number,
        as_of => params.as_of, valid_at => params.valid_at,
        point => Value::from_serialize(as_of),
        status => Value::from_serialize(view.status),
        rows, unplaced, findings_total => findings.len(),
        periods => periods(&app.calendar, rule_set, &view),
        rule_set => rule_set.map(|r| format!("{} v{}", r.id, r.version)),
        calendar => format!("{} v{}", app.calendar.id, app.calendar.version),
        measures => measures(&view),
        log_key => verifier_key(app)?,
        proof_js => super::assets::href("proof.js"),
    })
}

/// The audit's findings on this case at `as_of`.
fn findings_of(app: &App, case: &CaseState, as_of: AsOf) -> Result<Vec<Finding>, PageError> {
    let mut findings = vec![];
    let scope = Scope { list: Some(case.list.clone()), agency: None };
    let source = Only { app, cases: std::slice::from_ref(case) };
    audit_each(&source, as_of, &scope, &app.rule_sets, &app.calendar, &mut |f| findings.push(f))
        .map_err(|e| ApiError::internal(format!("audit of case {}: {e}", case.number)))?;
    Ok(findings)
}

/// The step a finding concerns: for a breach (violated, late) the last act
/// in its evidence (the act that broke the rule); for a deadline still
/// open (overdue, pending) the first (the act the period runs from).
/// None when no evidence is a fact on the timeline.
pub(crate) fn step_of(finding: &Finding, facts: &[&Fact]) -> Option<u64> {
    let shown = |seq: &u64| facts.iter().any(|f| f.seq == *seq);
    let mut seqs = finding.evidence.iter().map(|e| e.seq).filter(shown);
    match finding.status {
        FindingStatus::Violated | FindingStatus::Late => seqs.next_back(),
        FindingStatus::Overdue | FindingStatus::Pending => seqs.next(),
    }
}

/// One finding as the pages show it, from the audit's data.
pub(crate) fn finding(finding: &Finding) -> Value {
    context! {
        rule => finding.rule.id(),
        gravity => Value::from_serialize(finding.gravity),
        status => Value::from_serialize(finding.status),
        agency => finding.agency.as_str(),
        what => finding.what,
        evidence => finding.evidence.iter().map(|e| e.seq).collect::<Vec<_>>(),
        deadline => finding.deadline.as_ref().map(deadline),
        rule_set => finding.rule_set,
        unconfirmed => finding.unconfirmed,
        list => finding.list.as_str(), subject => finding.subject, number => finding.number.as_str(),
    }
}

/// A deadline with what moved it.
fn deadline(deadline: &Deadline) -> Value {
    context! {
        from => deadline.from.to_string(), due => deadline.due.to_string(),
        period => deadline.period.to_string(), provisional => deadline.provisional,
        holidays => deadline.holidays_crossed.iter().map(|h| format!("{} {}", h.date, h.name)).collect::<Vec<_>>(),
        adjusted => deadline.working_days_crossed.iter().map(NaiveDate::to_string).collect::<Vec<_>>(),
        rolled_from => deadline.rolled_from.map(|d| d.to_string()),
    }
}

/// One fact: valid and record time, back-dated when recorded on a later
/// day than it took effect (China time), its step and the findings on it.
fn row(fact: &Fact, findings: Vec<Value>) -> Value {
    let step = serde_json::to_value(&fact.step).unwrap_or_default();
    let kind = match &step {
        serde_json::Value::Object(map) => map.keys().next().cloned().unwrap_or_default(),
        serde_json::Value::String(kind) => kind.clone(),
        _ => String::new(),
    };
    let detail = match &step {
        serde_json::Value::Object(map) => map.values().next().map(|v| v.to_string()).unwrap_or_default(),
        _ => String::new(),
    };
    let backdated = fact.recorded_at.china_date() > fact.effective_at.china_date();
    context! {
        seq => fact.seq, id => fact.id.to_string(), kind, detail, agency => fact.agency.as_str(),
        valid => fact.effective_at.to_string(), recorded => fact.recorded_at.to_string(), backdated, findings,
    }
}

/// The rule set the registry names for `list`, newest version held (the
/// audit picks the version per case; the strip is drawn with this one).
pub(crate) fn rule_set_of<'a>(app: &'a App, list: &ListId) -> Option<&'a RuleSet> {
    let registry = app.store.current_registry();
    let id = registry.list(list)?.rule_set.clone();
    app.rule_sets.iter().filter(|r| r.id == id.as_str()).max_by_key(|r| r.version)
}

/// The periods that ran on this case, each from the date the law counts
/// from to its deadline, on the calendar: the objection window and each
/// answer; each restoration application to its decision deadline
/// (`restoration_processing`), with the day it was decided; the end of the
/// designation (restoration, revocation or expiry) to the removal deadline
/// of the measures, counted as the audit counts it (`removal-in-time`).
fn periods(calendar: &Calendar, rules: Option<&RuleSet>, view: &CaseView) -> Vec<Value> {
    let mut out = vec![];
    let mut add = |name: &str, from: Timestamp, period: Option<Period>, done: Option<Timestamp>| {
        let from = from.china_date().naive();
        let deadline = period.and_then(|p| calendar.due(from, p).ok());
        let done = done.map(|at| at.china_date().naive());
        out.push(strip(calendar, name, from, deadline.as_ref(), done));
    };
    if let Some(notice) = &view.notice {
        add("notice_served", notice.served_at, None, None);
        add("objection_window", notice.served_at, rules.and_then(|r| r.objection_window), None);
    }
    for objection in &view.objections {
        let answered = objection.decided.map(|(e, _)| e.at);
        add("answer_due", objection.received_at, rules.and_then(|r| r.objection_review), answered);
    }
    let mut term = None;
    if let Some(designation) = &view.designation {
        add("decision", designation.decided_at, None, None);
        term = designation.until.map(|until| {
            context! { name => "term_end", from => designation.in_force_from.china_date().to_string(),
            due => until.china_date().to_string(), days => Vec::<Value>::new() }
        });
    }
    for application in &view.applications {
        let decided = application.decided.map(|d| d.evidence.at);
        add("restoration_processing", application.received_at, rules.and_then(|r| r.restoration_processing), decided);
    }
    if let (Some(closure), Some(status)) = (&view.closure, view.status) {
        add(if status == Status::Revoked { "revocation" } else { "restoration" }, closure.at, None, None);
    }
    if let (Some(ended), Some(rules)) = (view.ended_at(), rules) {
        let lifted = view.measures.iter().filter(|m| m.applied.at < ended).map(|m| m.lifted.map(|(e, _)| e.at));
        // The last lifting, once every measure in place at the end is lifted.
        let done = lifted.collect::<Option<Vec<_>>>().and_then(|all| all.into_iter().max());
        add("removal_due", ended, Some(rules.removal), done);
    }
    out.extend(term);
    out
}

/// A period on the calendar strip: its days (weekends, holidays, adjusted
/// working days marked, and the day it was done, if it was) when it is
/// short enough to draw.
fn strip(
    calendar: &Calendar,
    name: &str,
    from: NaiveDate,
    deadline: Option<&Deadline>,
    done: Option<NaiveDate>,
) -> Value {
    let due = deadline.map_or(from, |d| d.due);
    let mut days = vec![];
    if (due - from).num_days() <= STRIP_DAYS_MAX {
        let mut day = from;
        while day <= due {
            let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
            let (class, title) = match (calendar.holiday(day), calendar.is_working_day(day)) {
                (Some(name), _) => ("holiday", name.to_owned()),
                (None, true) if weekend => ("adjusted", "adjusted working day".to_owned()),
                (None, true) => ("work", String::new()),
                (None, false) => ("weekend", String::new()),
            };
            let done_here = done == Some(day);
            days.push(context! { date => day.to_string(), day => day.day(), class, title, done => done_here });
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
    }
    context! {
        name, from => from.to_string(), due => due.to_string(), days,
        deadline => deadline.map(self::deadline),
        done => done.map(|d| d.to_string()), late => done.is_some_and(|d| d > due),
    }
}

/// The measures each agency applied, and lifted or not.
fn measures(view: &CaseView) -> Vec<Value> {
    view.measures
        .iter()
        .map(|m| {
            context! {
                agency => m.agency.as_str(), measure => m.measure.as_str(), mou => m.mou.as_str(),
                covered => m.covered,
                applied => m.applied.at.to_string(), applied_seq => m.applied.seq,
                lifted => m.lifted.as_ref().map(|(e, _)| e.at.to_string()),
                lifted_seq => m.lifted.as_ref().map(|(e, _)| e.seq),
                reason => m.lifted.as_ref().map(|(_, r)| Value::from_serialize(r)),
            }
        })
        .collect()
}
