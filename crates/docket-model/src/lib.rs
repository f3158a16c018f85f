//! docket's event model: identifiers, events, canonical encoding, signing and
//! verification, and the registry state machine.
//!
//! This crate does no I/O and reads no clock: everything it decides follows
//! from its inputs, so the log's validator, the folds and outside verifiers
//! reach the same answers.

pub mod crypto;
pub mod event;
pub mod golden;
pub mod ids;
pub mod limits;
pub mod registry;
pub mod request;
pub mod schema;
pub mod signed;
pub mod time;
pub mod validate;

pub use crypto::{Digest, EventId, Hash32, PublicKey, Signature, SignatureError};
pub use event::*;
pub use ids::{
    AgencyId, CaseNumber, IdError, ListId, MeasureCode, MouId, Name, ResidentId, RuleSetId, SubjectId, Uscc,
};
pub use registry::{AuthError, Registry};
pub use signed::{decode, encode, event_id, verify_all, EventError, SignedEvent, SignedJson};
pub use time::{Date, Timestamp};
pub use validate::FormError;
