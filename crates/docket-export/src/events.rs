//! The event history: every record of the log as one row, with its decoded
//! fields, streamed from the log's [`Reader`] (one record in memory at a
//! time, besides the reader's buffer). Not public: subjects are unmasked.

use std::ops::ControlFlow;

use docket_fold::case::Known;
use docket_log::Reader;
use docket_model::event::{Body, CaseAction, ObjectionOutcome, RegistryEvent};
use docket_model::{SignedEvent, Timestamp};

use crate::table::{column, Column, Kind::*, Value};
use crate::views::{legal_basis, snake};
use crate::write::Sink;
use crate::ExportError;

/// One row per event. Fields an event kind does not have are null.
pub const COLUMNS: &[Column] = &[
    column("seq", Int),
    column("event_id", Text),
    column("kind", Text),
    column("signer", Text),
    column("effective_at", Time),
    column("recorded_at", Time),
    column("list", Text),
    column("subject", Text),
    column("case_number", Text),
    column("registry_name", Text),
    column("measure", Text),
    column("mou", Text),
    column("severity", Text),
    column("term_months", Int),
    column("decided_at", Time),
    column("served_at", Time),
    column("received_at", Time),
    column("reason", Text),
    column("outcome", Text),
    column("objection_id", Text),
    column("application_id", Text),
    column("basis_document", Text),
    column("legal_basis", Text),
];

// Column positions, in the order of `COLUMNS`.
const LIST: usize = 6;
const SUBJECT: usize = 7;
const CASE_NUMBER: usize = 8;
const REGISTRY_NAME: usize = 9;
const MEASURE: usize = 10;
const MOU: usize = 11;
const SEVERITY: usize = 12;
const TERM_MONTHS: usize = 13;
const DECIDED_AT: usize = 14;
const SERVED_AT: usize = 15;
const RECEIVED_AT: usize = 16;
const REASON: usize = 17;
const OUTCOME: usize = 18;
const OBJECTION: usize = 19;
const APPLICATION: usize = 20;
const BASIS: usize = 21;
const LEGAL_BASIS: usize = 22;

/// Writes a row for every record known at `known` (through a seq, or up to
/// a system time) and, if `effective_by` is given, effective at or before it.
pub fn rows(
    reader: &Reader,
    known: Known,
    effective_by: Option<Timestamp>,
    sink: &mut dyn Sink,
) -> Result<(), ExportError> {
    let mut failed = None;
    reader.read_from(0, None, |frame| {
        let recorded_at = Timestamp::from_micros(frame.system_time).ok();
        let in_time = match (known, recorded_at) {
            (Known::All, _) => true,
            (Known::Through(last), _) => frame.seq <= last,
            (Known::At(time), Some(at)) => at <= time,
            (Known::At(_), None) => false,
        };
        if !in_time {
            return ControlFlow::Break(());
        }
        match row(frame.seq, recorded_at, &frame.wire, effective_by) {
            Ok(None) => ControlFlow::Continue(()),
            Ok(Some(row)) => match sink.row(&row) {
                Ok(()) => ControlFlow::Continue(()),
                Err(error) => {
                    failed = Some(error);
                    ControlFlow::Break(())
                }
            },
            Err(error) => {
                failed = Some(error);
                ControlFlow::Break(())
            }
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// The row of the record `seq`, or `None` if it is effective after `effective_by`.
pub fn row(
    seq: u64,
    recorded_at: Option<Timestamp>,
    wire: &[u8],
    effective_by: Option<Timestamp>,
) -> Result<Option<Vec<Value>>, ExportError> {
    let signed = SignedEvent::from_wire(wire).map_err(|e| ExportError::Decode { seq, reason: e.to_string() })?;
    let event = signed.event();
    if effective_by.is_some_and(|by| event.effective_at > by) {
        return Ok(None);
    }
    let mut row = vec![Value::Null; COLUMNS.len()];
    row[0] = Value::count(seq);
    row[1] = Value::Text(signed.id().to_hex());
    row[2] = Value::text(event.kind().name());
    row[3] = match &event.signer {
        docket_model::Signer::Registry => Value::text("registry"),
        docket_model::Signer::Agency(agency) => Value::text(agency),
    };
    row[4] = Value::Time(event.effective_at);
    row[5] = Value::opt_time(recorded_at);
    match &event.body {
        Body::Registry(registry) => registry_fields(registry, &mut row),
        Body::Case(case) => {
            row[LIST] = Value::text(&case.list);
            row[SUBJECT] = Value::text(&case.subject);
            row[CASE_NUMBER] = Value::text(&case.number);
            case_fields(&case.action, &mut row);
        }
    }
    Ok(Some(row))
}

fn registry_fields(event: &RegistryEvent, row: &mut [Value]) {
    match event {
        RegistryEvent::AgencyRegistered { agency, .. }
        | RegistryEvent::KeyAdded { agency, .. }
        | RegistryEvent::KeyRevoked { agency, .. } => row[REGISTRY_NAME] = Value::text(agency),
        RegistryEvent::ListDefined { list, legal_basis: basis, .. } => {
            row[REGISTRY_NAME] = Value::text(list);
            row[LIST] = Value::text(list);
            row[LEGAL_BASIS] = legal_basis(basis);
        }
        RegistryEvent::MeasureCatalogued { code, authority, .. } => {
            row[REGISTRY_NAME] = Value::text(code);
            row[MEASURE] = Value::text(code);
            row[LEGAL_BASIS] = legal_basis(std::slice::from_ref(authority));
        }
        RegistryEvent::MouSigned { mou, list, .. } => {
            row[REGISTRY_NAME] = Value::text(mou);
            row[MOU] = Value::text(mou);
            row[LIST] = Value::text(list);
        }
        RegistryEvent::MouAmended { mou, .. } => {
            row[REGISTRY_NAME] = Value::text(mou);
            row[MOU] = Value::text(mou);
        }
        RegistryEvent::RuleSetPublished { rule_set, .. } => row[REGISTRY_NAME] = Value::text(rule_set),
    }
}

fn case_fields(action: &CaseAction, row: &mut [Value]) {
    match action {
        CaseAction::Notice { served_at, legal_basis: basis, .. } => {
            row[SERVED_AT] = Value::Time(*served_at);
            row[LEGAL_BASIS] = legal_basis(basis);
        }
        CaseAction::Objection { received_at, .. } => row[RECEIVED_AT] = Value::Time(*received_at),
        CaseAction::ObjectionDecision { objection, outcome, .. } => {
            row[OBJECTION] = Value::Text(objection.to_hex());
            row[OUTCOME] = Value::text(match outcome {
                ObjectionOutcome::Upheld => "upheld",
                ObjectionOutcome::Rejected => "rejected",
                ObjectionOutcome::Corrected { .. } => "corrected",
            });
        }
        CaseAction::DesignationDecision { decided_at, basis, legal_basis: cited, severity, term_months, .. } => {
            row[DECIDED_AT] = Value::Time(*decided_at);
            row[BASIS] = Value::opt_text(basis.as_ref().map(|b| &b.number));
            row[LEGAL_BASIS] = legal_basis(cited);
            row[SEVERITY] = snake(severity);
            row[TERM_MONTHS] = term_months.map_or(Value::Null, |m| Value::Int(i64::from(m)));
        }
        CaseAction::TermExtended { months, basis, .. } => {
            row[TERM_MONTHS] = Value::Int(i64::from(*months));
            row[BASIS] = Value::opt_text(basis.as_ref().map(|b| &b.number));
        }
        CaseAction::Revocation { reason, .. } => row[REASON] = snake(reason),
        CaseAction::Restoration { reason, .. } => row[REASON] = snake(reason),
        CaseAction::MeasureApplied { measure, mou } => {
            row[MEASURE] = Value::text(measure);
            row[MOU] = Value::text(mou);
        }
        CaseAction::RestorationApplication { received_at, .. } => row[RECEIVED_AT] = Value::Time(*received_at),
        CaseAction::RestorationAccepted { application } => row[APPLICATION] = Value::Text(application.to_hex()),
        CaseAction::RestorationDecision { application, granted, .. } => {
            row[APPLICATION] = Value::Text(application.to_hex());
            row[OUTCOME] = Value::text(if *granted { "granted" } else { "refused" });
        }
        CaseAction::MeasureLifted { measure, reason } => {
            row[MEASURE] = Value::text(measure);
            row[REASON] = snake(reason);
        }
    }
}
