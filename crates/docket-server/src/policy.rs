//! The read policy (API.md, "Who may read"), in one place. A signed reader
//! is an agency; what it may read follows from its roles and lists in the
//! acknowledged registry:
//!
//! * an agency with the `oversight` role reads everything;
//! * any other agency reads its own `list` and `enforcement` views, point
//!   checks as itself, subjects, and the records in its scope: registry
//!   events, events it signed, and case events on the lists it designates or
//!   holds MOU terms on. A feed filter or parameter naming anything outside
//!   that scope is refused (403 `forbidden`), never quietly emptied.

use std::collections::BTreeSet;

use axum::http::StatusCode;

use docket_model::{AgencyId, Body, ListId, Registry, Role, SignedEvent, Signer};

use crate::error::ApiError;

/// What one reading agency may see.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) agency: AgencyId,
    /// Holds the oversight role: reads everything.
    pub(crate) oversight: bool,
    /// Lists the agency designates.
    designated: BTreeSet<ListId>,
    /// Lists it designates or holds MOU terms on (any version).
    followed: BTreeSet<ListId>,
}

pub(crate) fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

impl Scope {
    pub(crate) fn of(registry: &Registry, agency: &AgencyId) -> Self {
        let oversight = registry.agency(agency).is_some_and(|state| state.roles.contains(&Role::Oversight));
        let designated: BTreeSet<ListId> =
            registry.lists().filter(|(_, list)| list.designating_agency == *agency).map(|(id, _)| id.clone()).collect();
        let mut followed = designated.clone();
        followed.extend(
            registry
                .mous()
                .filter(|(_, mou)| mou.terms.iter().any(|t| t.parties.iter().any(|p| p.agency == *agency)))
                .map(|(_, mou)| mou.list.clone()),
        );
        Self { agency: agency.clone(), oversight, designated, followed }
    }

    /// `parameter=owner` names the reader itself (or the reader has oversight).
    pub(crate) fn own(&self, owner: &str, parameter: &str, what: &str) -> Result<(), ApiError> {
        if self.oversight || self.agency.as_str() == owner {
            return Ok(());
        }
        Err(forbidden(format!(
            "{what} with {parameter}={owner}: that is for agency \"{owner}\" (or oversight) only; the request is by \"{}\"",
            self.agency
        )))
    }

    /// The reader designates `list` (or has oversight).
    pub(crate) fn designates(&self, list: &str) -> Result<(), ApiError> {
        if self.oversight || self.designated.iter().any(|l| l.as_str() == list) {
            return Ok(());
        }
        Err(forbidden(format!(
            "list {list}: \"{}\" does not designate it; only its designating agency (or oversight) reads this",
            self.agency
        )))
    }

    /// The reader follows `list` (or has oversight).
    pub(crate) fn follows(&self, list: &str) -> Result<(), ApiError> {
        if self.oversight || self.followed.iter().any(|l| l.as_str() == list) {
            return Ok(());
        }
        Err(forbidden(format!("list {list}: \"{}\" neither designates it nor holds MOU terms on it", self.agency)))
    }

    /// Whether a record is in the reader's scope.
    pub(crate) fn sees(&self, event: &SignedEvent) -> bool {
        if self.oversight {
            return true;
        }
        let event = event.event();
        match (&event.signer, &event.body) {
            (_, Body::Registry(_)) => true,
            (Signer::Agency(signer), _) if *signer == self.agency => true,
            (_, Body::Case(case)) => self.followed.contains(&case.list),
        }
    }
}
