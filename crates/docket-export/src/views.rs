//! The views as tables. Each view is computed by `docket_fold::views` (the
//! same call `docket replay` and `/v1/views` make, so the public list is
//! masked by the public view's own rules) and flattened, one row per entry.
//! Nested values become text: legal bases are `instrument article` joined
//! with `; `.

use docket_fold::case::{AsOf, CaseView};
use docket_fold::views::{self, CheckView, Duty, EnforcementView, ListView, PublicView, SubjectView};
use docket_fold::Store;
use docket_model::event::LegalRef;

use crate::table::{column, Column, Kind::*, Value};
use crate::write::Sink;
use crate::{ExportError, Filter, Table};

/// The public list: one row per listing in force, identifiers masked.
pub const PUBLIC: &[Column] = &[
    column("list", Text),
    column("authority", Text),
    column("subject", Text),
    column("case_number", Text),
    column("status", Text),
    column("contested", Bool),
    column("listing_date", Date),
    column("recorded_date", Date),
    column("start_date", Date),
    column("end_date", Date),
    column("severity", Text),
    column("legal_basis", Text),
    column("basis_document", Text),
    column("decision_id", Text),
];

/// The designating agencies' lists: one row per case with a status.
pub const LIST: &[Column] = &[
    column("list", Text),
    column("list_name", Text),
    column("designating_agency", Text),
    column("subject", Text),
    column("case_number", Text),
    column("status", Text),
    column("since", Time),
    column("in_force_from", Time),
    column("until", Time),
    column("contested", Bool),
    column("measures_in_place", Int),
    column("marks", Int),
    column("version", Int),
];

/// A responsible agency's worklist: one row per duty.
pub const ENFORCEMENT: &[Column] = &[
    column("agency", Text),
    column("todo", Text),
    column("list", Text),
    column("subject", Text),
    column("case_number", Text),
    column("measure", Text),
    column("mou", Text),
    column("since", Time),
    column("evidence_seq", Int),
    column("evidence_id", Text),
    column("why", Text),
];

/// One subject's cases: one row per case.
pub const SUBJECT: &[Column] = &[
    column("subject", Text),
    column("list", Text),
    column("case_number", Text),
    column("status", Text),
    column("since", Time),
    column("version", Int),
    column("contested", Bool),
    column("decision_seq", Int),
    column("decision_id", Text),
    column("decided_at", Time),
    column("in_force_from", Time),
    column("until", Time),
    column("severity", Text),
    column("measures_in_place", Int),
    column("marks", Int),
];

/// A point check: one row per agency bound on a ground, one per
/// application in place without a ground.
pub const CHECK: &[Column] = &[
    column("subject", Text),
    column("measure", Text),
    column("restricted", Bool),
    column("grounded", Bool),
    column("list", Text),
    column("case_number", Text),
    column("decision_seq", Int),
    column("in_force_from", Time),
    column("until", Time),
    column("mou", Text),
    column("agency", Text),
    column("applied_seq", Int),
];

/// The snake_case name serde gives a unit variant.
pub(crate) fn snake<T: serde::Serialize>(value: &T) -> Value {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => Value::Text(text),
        _ => Value::Null,
    }
}

/// Legal references as one text: `instrument article; ...`, null when none.
pub(crate) fn legal_basis(refs: &[LegalRef]) -> Value {
    if refs.is_empty() {
        return Value::Null;
    }
    Value::Text(refs.iter().map(|r| format!("{} {}", r.instrument, r.article)).collect::<Vec<_>>().join("; "))
}

fn needs<T: Clone>(value: &Option<T>, view: &'static str, parameter: &'static str) -> Result<T, ExportError> {
    value.clone().ok_or(ExportError::Missing { view, parameter })
}

/// Computes `view` at `as_of` and writes its rows to `sink`.
pub fn rows(store: &Store, view: Table, as_of: AsOf, filter: &Filter, sink: &mut dyn Sink) -> Result<(), ExportError> {
    match view {
        Table::Public => public_rows(&views::public_view(store, as_of, filter.list.as_ref())?, sink),
        Table::List => list_rows(&views::list_view(store, as_of, filter.agency.as_ref(), filter.list.as_ref())?, sink),
        Table::Enforcement => {
            let agency = needs(&filter.agency, "enforcement", "an agency")?;
            enforcement_rows(&views::enforcement_view(store, as_of, &agency)?, sink)
        }
        Table::Subject => {
            let subject = needs(&filter.subject, "subject", "a subject")?;
            subject_rows(&views::subject_view(store, as_of, &subject)?, sink)
        }
        Table::Check => {
            let subject = needs(&filter.subject, "check", "a subject")?;
            let measure = needs(&filter.measure, "check", "a measure")?;
            check_rows(&views::check(store, as_of, &subject, &measure, filter.agency.as_ref())?, sink)
        }
        Table::Events => Err(ExportError::Row("the event history is not a view".into())),
    }
}

/// The public list's rows.
pub fn public_rows(view: &PublicView, sink: &mut dyn Sink) -> Result<(), ExportError> {
    for e in &view.entries {
        sink.row(&[
            Value::text(&e.list),
            Value::text(&e.authority),
            Value::text(&e.subject),
            Value::text(&e.number),
            snake(&e.status),
            Value::Bool(e.contested),
            Value::Date(e.listing_date),
            Value::Date(e.recorded_date),
            Value::Date(e.start_date),
            Value::opt_date(e.end_date),
            snake(&e.severity),
            legal_basis(&e.legal_basis),
            Value::opt_text(e.basis_document.as_ref()),
            Value::Text(e.decision.to_hex()),
        ])?;
    }
    Ok(())
}

/// The list view's rows.
pub fn list_rows(view: &ListView, sink: &mut dyn Sink) -> Result<(), ExportError> {
    for section in &view.lists {
        for e in &section.entries {
            sink.row(&[
                Value::text(&section.list),
                Value::text(&section.name),
                Value::text(&section.designating_agency),
                Value::text(&e.subject),
                Value::text(&e.number),
                snake(&e.status),
                Value::Time(e.since),
                Value::opt_time(e.in_force_from),
                Value::opt_time(e.until),
                Value::Bool(e.contested),
                Value::count(e.measures_in_place),
                Value::count(e.marks),
                Value::count(e.version),
            ])?;
        }
    }
    Ok(())
}

/// The worklist's rows: `todo` is `apply`, `applied` or `lift` (with `why`).
pub fn enforcement_rows(view: &EnforcementView, sink: &mut dyn Sink) -> Result<(), ExportError> {
    let duties = view
        .to_apply
        .iter()
        .map(|d| ("apply", d, Value::Null))
        .chain(view.applied.iter().map(|d| ("applied", d, Value::Null)))
        .chain(view.must_lift.iter().map(|l| ("lift", &l.duty, snake(&l.why))));
    for (todo, duty, why) in duties {
        sink.row(&duty_row(&view.agency.to_string(), todo, duty, why))?;
    }
    Ok(())
}

fn duty_row(agency: &str, todo: &str, duty: &Duty, why: Value) -> [Value; 11] {
    [
        Value::text(agency),
        Value::text(todo),
        Value::text(&duty.list),
        Value::text(&duty.subject),
        Value::text(&duty.number),
        Value::text(&duty.measure),
        Value::text(&duty.mou),
        Value::Time(duty.since),
        Value::count(duty.evidence.seq),
        Value::Text(duty.evidence.id.to_hex()),
        why,
    ]
}

/// The subject view's rows, one per case.
pub fn subject_rows(view: &SubjectView, sink: &mut dyn Sink) -> Result<(), ExportError> {
    for case in &view.cases {
        sink.row(&case_row(&view.subject, case))?;
    }
    Ok(())
}

fn case_row(subject: &str, case: &CaseView) -> [Value; 15] {
    let since = case.status_since().map(|(_, at)| at);
    let designation = case.designation.as_ref();
    [
        Value::text(subject),
        Value::text(&case.list),
        Value::text(&case.number),
        case.status.as_ref().map_or(Value::Null, snake),
        Value::opt_time(since),
        Value::count(case.version),
        Value::Bool(case.contested()),
        designation.map_or(Value::Null, |d| Value::count(d.decision.seq)),
        designation.map_or(Value::Null, |d| Value::Text(d.decision.id.to_hex())),
        Value::opt_time(designation.map(|d| d.decided_at)),
        Value::opt_time(designation.map(|d| d.in_force_from)),
        Value::opt_time(designation.and_then(|d| d.until)),
        designation.map_or(Value::Null, |d| snake(&d.severity)),
        Value::count(case.active_measures().count()),
        Value::count(case.marks.len()),
    ]
}

/// The point check's rows: one per agency bound on each ground
/// (`grounded`), then one per application in place without a ground.
pub fn check_rows(view: &CheckView, sink: &mut dyn Sink) -> Result<(), ExportError> {
    let head = [Value::text(&view.subject), Value::text(&view.measure), Value::Bool(view.restricted)];
    for ground in &view.grounds {
        for binding in &ground.agencies {
            let mut row = head.to_vec();
            row.extend([
                Value::Bool(true),
                Value::text(&ground.list),
                Value::text(&ground.number),
                Value::count(ground.decision.seq),
                Value::Time(ground.in_force_from),
                Value::opt_time(ground.until),
                Value::text(&ground.mou),
                Value::text(&binding.agency),
                binding.applied.map_or(Value::Null, |e| Value::count(e.seq)),
            ]);
            sink.row(&row)?;
        }
    }
    for measure in &view.without_ground {
        let mut row = head.to_vec();
        row.extend([Value::Bool(false), Value::Null, Value::Null, Value::Null, Value::Null, Value::Null]);
        row.extend([Value::text(&measure.mou), Value::text(&measure.agency), Value::count(measure.applied.seq)]);
        sink.row(&row)?;
    }
    Ok(())
}
