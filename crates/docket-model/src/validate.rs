//! Form checks on a decoded event: limits, required structure, key validity.
//!
//! Run on every decode path (JSON and canonical bytes), so that an event that
//! breaks a limit cannot enter the log by any route. Procedural faults (a
//! missing decision field, a measure with no MOU) are *not* checked here: the
//! ledger records them and the auditor flags them.

use std::collections::BTreeSet;

use crate::event::{Body, CaseAction, CaseEvent, Event, LegalRef, MouParty, RegistryEvent, Signer, FORMAT_VERSION};
use crate::limits::*;
use crate::time::Timestamp;

/// A form fault, naming the field by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FormError {
    /// JSON path of the field, e.g. `body.case.action.objection.evidence[3]`.
    pub field: String,
    pub reason: String,
}

fn fault(field: impl Into<String>, reason: impl Into<String>) -> FormError {
    FormError { field: field.into(), reason: reason.into() }
}

fn text(field: &str, value: &str) -> Result<(), FormError> {
    if value.len() > TEXT_BYTES_MAX {
        return Err(fault(field, format!("{} bytes, more than text_bytes_max = {TEXT_BYTES_MAX}", value.len())));
    }
    if value.contains('\0') {
        return Err(fault(field, "contains a NUL character"));
    }
    Ok(())
}

fn count(field: &str, len: usize, min: usize, max: usize, limit: &str) -> Result<(), FormError> {
    if len < min || len > max {
        return Err(fault(field, format!("{len} items; allowed {min}..={max} ({limit})")));
    }
    Ok(())
}

fn unique<T: Ord>(field: &str, items: impl IntoIterator<Item = T>) -> Result<(), FormError> {
    let mut seen = BTreeSet::new();
    for (index, item) in items.into_iter().enumerate() {
        if !seen.insert(item) {
            return Err(fault(format!("{field}[{index}]"), "duplicate"));
        }
    }
    Ok(())
}

fn legal_refs(field: &str, refs: &[LegalRef]) -> Result<(), FormError> {
    count(field, refs.len(), 0, LEGAL_REFS_PER_EVENT_MAX, "legal_refs_per_event_max")?;
    for (index, legal) in refs.iter().enumerate() {
        legal_ref(&format!("{field}[{index}]"), legal)?;
    }
    Ok(())
}

fn legal_ref(field: &str, legal: &LegalRef) -> Result<(), FormError> {
    text(&format!("{field}.instrument"), &legal.instrument)?;
    text(&format!("{field}.article"), &legal.article)
}

fn key(field: &str, key: &crate::PublicKey) -> Result<(), FormError> {
    key.check().map_err(|error| fault(field, error.to_string()))
}

fn interval(field: &str, from: Timestamp, until: Option<Timestamp>) -> Result<(), FormError> {
    match until {
        Some(until) if until <= from => Err(fault(field, "effective_until is not after effective_from")),
        _ => Ok(()),
    }
}

fn parties(field: &str, parties: &[MouParty]) -> Result<(), FormError> {
    count(field, parties.len(), 1, MOU_PARTIES_MAX, "mou_parties_max")?;
    unique(field, parties.iter().map(|party| &party.agency))?;
    for (index, party) in parties.iter().enumerate() {
        let at = format!("{field}[{index}].measures");
        count(&at, party.measures.len(), 1, MEASURES_PER_PARTY_MAX, "measures_per_party_max")?;
        unique(&at, &party.measures)?;
    }
    Ok(())
}

fn term(field: &str, months: u16) -> Result<(), FormError> {
    if months == 0 || months > EVENT_TERM_MONTHS_MAX {
        return Err(fault(
            field,
            format!("{months} months; allowed 1..={EVENT_TERM_MONTHS_MAX} (event_term_months_max)"),
        ));
    }
    Ok(())
}

/// Checks the form of an event. The first fault found is returned.
pub fn validate(event: &Event) -> Result<(), FormError> {
    if event.format != FORMAT_VERSION {
        return Err(fault(
            "format",
            format!("{} is not a known format; this build reads {FORMAT_VERSION}", event.format),
        ));
    }
    // The envelope key is checked by signature verification (it is decoded
    // there anyway); checking it here too would double the cost of a decode.
    match (&event.signer, &event.body) {
        (Signer::Registry, Body::Registry(body)) => registry(body),
        (Signer::Agency(_), Body::Case(body)) => case(body),
        (Signer::Registry, Body::Case(_)) => {
            Err(fault("signer", "case events are signed by an agency, not the registry"))
        }
        (Signer::Agency(_), Body::Registry(_)) => {
            Err(fault("signer", "registry events are signed by the registry root"))
        }
    }
}

fn registry(body: &RegistryEvent) -> Result<(), FormError> {
    const AT: &str = "body.registry";
    match body {
        RegistryEvent::AgencyRegistered { name, roles, keys, .. } => {
            let at = format!("{AT}.agency_registered");
            text(&format!("{at}.name"), name)?;
            count(&format!("{at}.roles"), roles.len(), 1, ROLES_PER_AGENCY_MAX, "roles_per_agency_max")?;
            unique(&format!("{at}.roles"), roles)?;
            count(&format!("{at}.keys"), keys.len(), 1, KEYS_PER_EVENT_MAX, "keys_per_event_max")?;
            unique(&format!("{at}.keys"), keys)?;
            for (index, public) in keys.iter().enumerate() {
                key(&format!("{at}.keys[{index}]"), public)?;
            }
            Ok(())
        }
        RegistryEvent::KeyAdded { key: public, .. } => key(&format!("{AT}.key_added.key"), public),
        RegistryEvent::KeyRevoked { .. } => Ok(()),
        RegistryEvent::ListDefined { name, legal_basis, .. } => {
            text(&format!("{AT}.list_defined.name"), name)?;
            legal_refs(&format!("{AT}.list_defined.legal_basis"), legal_basis)
        }
        RegistryEvent::MeasureCatalogued { description, authority, .. } => {
            text(&format!("{AT}.measure_catalogued.description"), description)?;
            legal_ref(&format!("{AT}.measure_catalogued.authority"), authority)
        }
        RegistryEvent::MouSigned { parties: list, effective_from, effective_until, .. } => {
            parties(&format!("{AT}.mou_signed.parties"), list)?;
            interval(&format!("{AT}.mou_signed.effective_until"), *effective_from, *effective_until)
        }
        RegistryEvent::MouAmended { parties: list, effective_from, effective_until, .. } => {
            parties(&format!("{AT}.mou_amended.parties"), list)?;
            interval(&format!("{AT}.mou_amended.effective_until"), *effective_from, *effective_until)
        }
        RegistryEvent::RuleSetPublished { source, .. } => text(&format!("{AT}.rule_set_published.source"), source),
    }
}

fn case(body: &CaseEvent) -> Result<(), FormError> {
    const AT: &str = "body.case.action";
    body.subject.validate().map_err(|error| fault("body.case.subject", error.to_string()))?;
    match &body.action {
        CaseAction::Notice { matter, legal_basis, rights, .. } => {
            text(&format!("{AT}.notice.matter"), matter)?;
            legal_refs(&format!("{AT}.notice.legal_basis"), legal_basis)?;
            text(&format!("{AT}.notice.rights"), rights)
        }
        CaseAction::Objection { grounds, evidence, .. } => {
            text(&format!("{AT}.objection.grounds"), grounds)?;
            let at = format!("{AT}.objection.evidence");
            count(&at, evidence.len(), 0, EVIDENCE_PER_OBJECTION_MAX, "evidence_per_objection_max")?;
            unique(&at, evidence)
        }
        CaseAction::ObjectionDecision { outcome, reasons, .. } => {
            if let crate::event::ObjectionOutcome::Corrected { correction } = outcome {
                text(&format!("{AT}.objection_decision.outcome.corrected.correction"), correction)?;
            }
            text(&format!("{AT}.objection_decision.reasons"), reasons)
        }
        CaseAction::DesignationDecision {
            basis,
            reasons,
            legal_basis,
            measures_warning,
            removal_conditions,
            remedies,
            term_months,
            ..
        } => {
            let at = format!("{AT}.designation_decision");
            if let Some(basis) = basis {
                text(&format!("{at}.basis.issuer"), &basis.issuer)?;
                text(&format!("{at}.basis.number"), &basis.number)?;
            }
            text(&format!("{at}.reasons"), reasons)?;
            legal_refs(&format!("{at}.legal_basis"), legal_basis)?;
            text(&format!("{at}.measures_warning"), measures_warning)?;
            text(&format!("{at}.removal_conditions"), removal_conditions)?;
            text(&format!("{at}.remedies"), remedies)?;
            term_months.map_or(Ok(()), |months| term(&format!("{at}.term_months"), months))
        }
        CaseAction::TermExtended { months, reasons, basis } => {
            let at = format!("{AT}.term_extended");
            term(&format!("{at}.months"), *months)?;
            if let Some(basis) = basis {
                text(&format!("{at}.basis.issuer"), &basis.issuer)?;
                text(&format!("{at}.basis.number"), &basis.number)?;
            }
            text(&format!("{at}.reasons"), reasons)
        }
        CaseAction::Revocation { statement, .. } => text(&format!("{AT}.revocation.statement"), statement),
        CaseAction::Restoration { statement, .. } => text(&format!("{AT}.restoration.statement"), statement),
        CaseAction::RestorationApplication { grounds, evidence, .. } => {
            text(&format!("{AT}.restoration_application.grounds"), grounds)?;
            let at = format!("{AT}.restoration_application.evidence");
            count(&at, evidence.len(), 0, EVIDENCE_PER_APPLICATION_MAX, "evidence_per_application_max")?;
            unique(&at, evidence)
        }
        CaseAction::RestorationDecision { reasons, .. } => text(&format!("{AT}.restoration_decision.reasons"), reasons),
        CaseAction::MeasureApplied { .. }
        | CaseAction::MeasureLifted { .. }
        | CaseAction::RestorationAccepted { .. } => Ok(()),
    }
}
