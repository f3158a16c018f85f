//! The pure fold: records in, registry and cases out, all in memory. The
//! store (`store.rs`) runs the same per-record step against redb; tests and
//! scenario files use this one as the reference.

use std::collections::BTreeMap;
use std::sync::Arc;

use docket_model::{CaseRef, PublicKey, Registry, SignedEvent, SubjectId, Timestamp};

use crate::case::{CaseState, Fact, Known, Step};
use crate::views::{Publication, Source};
use crate::FoldError;

/// What one record means to the fold. Short-lived, on the stack: boxing the
/// fact would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Change<'a> {
    /// A registry event, to apply to the registry.
    Registry,
    /// A case event: its case and the fact to add.
    Case(CaseRef, Fact, &'a docket_model::CaseEvent),
}

/// Classifies a record and, for a case event, makes its fact.
pub fn change_of(seq: u64, system_time: Timestamp, event: &SignedEvent) -> Result<Change<'_>, FoldError> {
    let body = event.event();
    match (body.case(), &body.signer) {
        (None, _) => Ok(Change::Registry),
        (Some(case), docket_model::Signer::Agency(agency)) => {
            let fact = Fact {
                seq,
                id: event.id(),
                recorded_at: system_time,
                effective_at: body.effective_at,
                agency: agency.clone(),
                step: Step::of(&case.action),
            };
            Ok(Change::Case(case.case_ref(), fact, case))
        }
        (Some(_), docket_model::Signer::Registry) => {
            Err(FoldError::Inconsistent { seq, reason: "a case event signed by the registry root".into() })
        }
    }
}

/// Applies a registry event, which the log accepted, to `registry`.
pub fn apply_registry(
    registry: &mut Registry,
    seq: u64,
    system_time: Timestamp,
    event: &SignedEvent,
) -> Result<(), FoldError> {
    registry
        .apply(event.event(), system_time)
        .map_err(|e| FoldError::Inconsistent { seq, reason: format!("registry refuses an event the log holds: {e}") })
}

/// An in-memory fold of a whole log.
#[derive(Debug, Clone)]
pub struct Fold {
    root: PublicKey,
    registry: Registry,
    /// Registry events with their seq and system time, for the registry as of any point.
    registry_events: Vec<(u64, Timestamp, SignedEvent)>,
    cases: BTreeMap<(SubjectId, docket_model::ListId, docket_model::CaseNumber), CaseState>,
    next_seq: u64,
    publication: Publication,
}

impl Fold {
    /// An empty fold for a ledger with this registry root key.
    pub fn new(root: PublicKey) -> Self {
        Self {
            root,
            registry: Registry::new(root),
            registry_events: vec![],
            cases: BTreeMap::new(),
            next_seq: 0,
            publication: Publication::none(),
        }
    }

    /// The publicity maxima the public list applies (none by default).
    pub fn set_publication(&mut self, publication: Publication) {
        self.publication = publication;
    }

    /// The next seq expected.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The current registry.
    pub fn current_registry(&self) -> &Registry {
        &self.registry
    }

    /// Every case, in (subject, list, number) order.
    pub fn cases(&self) -> impl Iterator<Item = &CaseState> {
        self.cases.values()
    }

    /// Applies the record at `seq`, which must be the next one.
    pub fn apply(&mut self, seq: u64, system_time: Timestamp, event: &SignedEvent) -> Result<(), FoldError> {
        if seq != self.next_seq {
            return Err(FoldError::Inconsistent { seq, reason: format!("expected seq {}", self.next_seq) });
        }
        match change_of(seq, system_time, event)? {
            Change::Registry => {
                apply_registry(&mut self.registry, seq, system_time, event)?;
                self.registry_events.push((seq, system_time, event.clone()));
            }
            Change::Case(case, fact, body) => {
                let key = (case.subject, case.list, case.number);
                self.cases.entry(key).or_insert_with(|| CaseState::new(body)).facts.push(fact);
            }
        }
        self.next_seq = seq + 1;
        Ok(())
    }
}

impl Fold {
    fn visit_in_opening_order(
        &self,
        wanted: impl Fn(&CaseState) -> bool,
        visit: &mut dyn FnMut(CaseState),
    ) -> Result<(), FoldError> {
        let mut cases: Vec<&CaseState> = self.cases.values().filter(|c| wanted(c)).collect();
        cases.sort_by_key(|c| c.opened_seq());
        cases.into_iter().for_each(|c| visit(c.clone()));
        Ok(())
    }
}

impl Source for Fold {
    fn registry(&self, known: Known) -> Result<Arc<Registry>, FoldError> {
        let mut registry = Registry::new(self.root);
        for (seq, time, event) in &self.registry_events {
            if !known.includes(*seq, *time) {
                break;
            }
            apply_registry(&mut registry, *seq, *time, event)?;
        }
        Ok(Arc::new(registry))
    }

    fn for_list(&self, list: &docket_model::ListId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.visit_in_opening_order(|c| c.list == *list, visit)
    }

    fn for_subject(&self, subject: &SubjectId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.visit_in_opening_order(|c| c.subject == *subject, visit)
    }

    fn for_applier(&self, agency: &docket_model::AgencyId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.visit_in_opening_order(
            |c| c.facts.iter().any(|f| f.agency == *agency && matches!(f.step, Step::MeasureApplied { .. })),
            visit,
        )
    }

    fn publication(&self) -> &Publication {
        &self.publication
    }
}
