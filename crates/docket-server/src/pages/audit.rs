//! The audit desk (oversight role): findings by rule and agency with
//! counts, breaches by year, deadlines due within the next N working days
//! and the drill-down to cases, as of any point; and an agency's worklist
//! (to apply, applied, must lift and since when, with the lifting deadline).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use minijinja::{context, Value};
use serde::Deserialize;

use docket_audit::{Finding, FindingStatus, Period};
use docket_fold::{query, views};

use super::timeline::{finding, rule_set_of};
use super::{blocking, reader, Page, PageError};
use crate::App;

/// Most working days ahead the desk looks for deadlines.
pub(crate) const HORIZON_WORKING_DAYS_MAX: u32 = 250;
/// Working days ahead when the request names none.
pub(crate) const HORIZON_WORKING_DAYS_DEFAULT: u32 = 10;
/// Most findings one drill-down or deadline list shows.
pub(crate) const FINDINGS_SHOWN_MAX: usize = 500;

/// The statuses in the order the tables show them.
const STATUSES: [FindingStatus; 4] =
    [FindingStatus::Violated, FindingStatus::Late, FindingStatus::Overdue, FindingStatus::Pending];

/// Parameters of the audit desk.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeskParams {
    list: Option<String>,
    as_of: Option<String>,
    valid_at: Option<String>,
    /// Working days ahead for the deadline list.
    days: Option<u32>,
    /// Drill-down: findings of this rule, agency and status.
    rule: Option<String>,
    agency: Option<String>,
    status: Option<String>,
    lang: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /desk/audit`: the audit desk, for the oversight role.
pub(super) async fn desk(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<DeskParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(|e| PageError::bad("query", e.body_text()))?;
    let scope = reader(&app, &method, &uri, &headers)?;
    if !scope.oversight {
        return Err(crate::policy::forbidden(format!(
            "the audit desk is for the oversight role; agency \"{}\" does not hold it (its worklist: /desk/worklist)",
            scope.agency
        ))
        .into());
    }
    let page = Page::new(&uri, &headers, params.lang.as_deref()).signed_in(&scope);
    let data = blocking(move || desk_data(&app, &params)).await?;
    page.render("audit.html", data)
}

/// What the desk tallies while the audit runs, finding by finding.
#[derive(Default)]
struct Tally {
    /// (rule, agency) -> count per status, in `STATUSES` order.
    cells: BTreeMap<(String, String), [u64; 4]>,
    totals: [u64; 4],
    /// Breaches (not pending) by the year of their last evidence.
    by_year: BTreeMap<i32, u64>,
    drill: Vec<Value>,
    drill_total: u64,
    upcoming: Vec<(chrono::NaiveDate, Value)>,
}

fn column(status: FindingStatus) -> usize {
    STATUSES.iter().position(|s| *s == status).unwrap_or(0)
}

fn desk_data(app: &App, params: &DeskParams) -> Result<Value, PageError> {
    let store = &app.store;
    let as_of = query::resolve(store, params.as_of.as_deref(), params.valid_at.as_deref())?;
    let days = params.days.unwrap_or(HORIZON_WORKING_DAYS_DEFAULT);
    if days > HORIZON_WORKING_DAYS_MAX {
        return Err(PageError::bad("days", format!("{days} is more than {HORIZON_WORKING_DAYS_MAX} working days")));
    }
    let today = as_of.valid_at.china_date().naive();
    let horizon = app.calendar.due(today, Period::WorkingDays(days)).map_err(|e| PageError::bad("days", e))?.due;
    let list = given(&params.list).map(|l| query::name("list", l)).transpose()?;
    let drilling = given(&params.rule).is_some() || given(&params.agency).is_some() || given(&params.status).is_some();
    let wanted = |f: &Finding| {
        given(&params.rule).is_none_or(|r| r == f.rule.id())
            && given(&params.agency).is_none_or(|a| a == f.agency.as_str())
            && given(&params.status).is_none_or(|s| Value::from_serialize(f.status).as_str() == Some(s))
    };
    let mut tally = Tally::default();
    // The audit of the point is computed once and shared (`cache`); the
    // tallies, the drill-down and the deadlines ahead are this request's.
    let audited = app.pages.audit(app, as_of, list)?;
    for f in audited.findings() {
        tally.add(f, drilling && wanted(f), horizon);
    }
    let report = &audited.report;
    tally.upcoming.sort_by_key(|(due, _)| *due);
    let cells: Vec<Value> = tally
        .cells
        .iter()
        .map(|((rule, agency), counts)| context! { rule, agency, counts => counts.to_vec(), total => counts.iter().sum::<u64>() })
        .collect();
    Ok(context! {
        cells, totals => tally.totals.to_vec(), total => tally.totals.iter().sum::<u64>(),
        statuses => STATUSES.iter().map(Value::from_serialize).collect::<Vec<_>>(),
        by_year => tally.by_year.iter().map(|(y, n)| context! { year => y, count => n }).collect::<Vec<_>>(),
        cases => report.cases, calendar => report.calendar.clone(),
        rule_sets => Value::from_serialize(&report.rule_sets),
        point => Value::from_serialize(as_of), today => today.to_string(), horizon => horizon.to_string(), days,
        upcoming => tally.upcoming.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        drilling, drill => tally.drill, drill_total => tally.drill_total,
        list => given(&params.list), as_of => given(&params.as_of), valid_at => given(&params.valid_at),
        rule => given(&params.rule), agency => given(&params.agency), status => given(&params.status),
        lists => store.current_registry().lists().map(|(id, _)| id.to_string()).collect::<Vec<_>>(),
    })
}

impl Tally {
    fn add(&mut self, f: &Finding, drilled: bool, horizon: chrono::NaiveDate) {
        let column = column(f.status);
        self.cells.entry((f.rule.id().to_owned(), f.agency.to_string())).or_default()[column] += 1;
        self.totals[column] += 1;
        if f.status != FindingStatus::Pending {
            if let Some(last) = f.evidence.last() {
                *self.by_year.entry(chrono::Datelike::year(&last.at.china_date().naive())).or_default() += 1;
            }
        }
        if drilled {
            self.drill_total += 1;
            if self.drill.len() < FINDINGS_SHOWN_MAX {
                self.drill.push(finding(f));
            }
        }
        let open = matches!(f.status, FindingStatus::Overdue | FindingStatus::Pending);
        if let (true, Some(deadline)) = (open, &f.deadline) {
            if deadline.due <= horizon && self.upcoming.len() < FINDINGS_SHOWN_MAX {
                self.upcoming.push((deadline.due, finding(f)));
            }
        }
    }
}

/// Parameters of the worklist.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WorklistParams {
    /// The agency (oversight may read any; an agency reads its own).
    agency: Option<String>,
    as_of: Option<String>,
    valid_at: Option<String>,
    lang: Option<String>,
}

/// `GET /desk/worklist`: an agency's measures to apply, applied and to lift.
pub(super) async fn worklist(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<WorklistParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(|e| PageError::bad("query", e.body_text()))?;
    let scope = reader(&app, &method, &uri, &headers)?;
    let agency = given(&params.agency).map_or_else(|| scope.agency.to_string(), str::to_owned);
    scope.own(&agency, "agency", "the worklist")?;
    let page = Page::new(&uri, &headers, params.lang.as_deref()).signed_in(&scope);
    let data = blocking(move || worklist_data(&app, &params, &agency)).await?;
    page.render("worklist.html", data)
}

fn worklist_data(app: &App, params: &WorklistParams, agency: &str) -> Result<Value, PageError> {
    let store = &app.store;
    let as_of = query::resolve(store, params.as_of.as_deref(), params.valid_at.as_deref())?;
    let id = query::name("agency", agency)?;
    let worklist = app.pages.worklist(app, as_of, &id)?;
    let totals = worklist.totals();
    let today = as_of.valid_at.china_date().naive();
    let duty = |d: &views::Duty| {
        context! {
            list => d.list.as_str(), subject => d.subject, number => d.number.as_str(), measure => d.measure.as_str(),
            mou => d.mou.as_str(), since => d.since.to_string(), seq => d.evidence.seq,
        }
    };
    let must_lift: Vec<Value> = worklist
        .must_lift()
        .take(FINDINGS_SHOWN_MAX)
        .map(|l| {
            let due = rule_set_of(app, &l.duty.list)
                .and_then(|r| app.calendar.due(l.duty.since.china_date().naive(), r.removal).ok())
                .map(|d| d.due);
            context! {
                duty => duty(&l.duty), why => Value::from_serialize(l.why),
                due => due.map(|d| d.to_string()), overdue => due.is_some_and(|d| d < today),
            }
        })
        .collect();
    Ok(context! {
        worklist_agency => agency, point => Value::from_serialize(as_of), today => today.to_string(),
        to_apply => worklist.to_apply().take(FINDINGS_SHOWN_MAX).map(duty).collect::<Vec<_>>(),
        applied => worklist.applied().take(FINDINGS_SHOWN_MAX).map(duty).collect::<Vec<_>>(),
        totals => context! { to_apply => totals[0], applied => totals[1], must_lift => totals[2] },
        must_lift, as_of => given(&params.as_of), valid_at => given(&params.valid_at),
    })
}
