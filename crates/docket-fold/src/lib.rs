//! docket's projections: pure folds from the log into the views each user
//! needs (designating agency, responsible agency, subject, public, point
//! check), bitemporal as-of, and their materialisation in redb.
//!
//! * [`case`]: the case state machine; a case keeps its facts, so any
//!   bitemporal point is an evaluation, not a refold.
//! * [`fold`]: the pure in-memory fold, the reference the store is tested against.
//! * [`store`]: the redb materialisation: incremental catch-up, registry
//!   snapshots, shadow rebuild, trust checks against the log.
//! * [`views`]: the views, over either.
//! * [`delta`]: the changes to the public list between two points.
//! * [`query`]: parsing subjects, times and bitemporal points, for the CLI and the API.

pub mod case;
pub mod delta;
pub mod fold;
pub mod query;
pub mod seal;
pub mod store;
pub mod views;

pub use case::{evaluate, AsOf, CaseState, CaseView, Known, Status};
pub use fold::Fold;
pub use store::{Opened, Store, StoreLimits};
pub use views::Source;

/// Why a fold or a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FoldError {
    #[error(transparent)]
    Log(#[from] docket_log::LogError),
    #[error("ledger: {0}")]
    Ledger(String),
    #[error("projection store {path}: {reason}")]
    Store { path: String, reason: String },
    #[error("seq {seq}: the log holds what the fold cannot accept: {reason}")]
    Inconsistent { seq: u64, reason: String },
    #[error("{0} not found")]
    NotFound(String),
}
