//! docket's due-process audit: replay the projections and check every case
//! against the procedural rules of its list.
//!
//! * [`calendar`]: holidays and adjusted working days as data; period arithmetic.
//! * [`rules`]: rule sets as data, one per kind of list.
//! * [`audit`]: the checks, each with a stable id, and findings with evidence.

pub mod audit;
pub mod calendar;
pub mod rules;
pub mod schema;

pub use audit::{Finding, FindingStatus, Report};
pub use calendar::{Calendar, Deadline, Period};
pub use rules::RuleSet;
