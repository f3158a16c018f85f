//! JSON Schemas of the audit's documents, generated from the types so they
//! cannot drift: rule sets and calendars (input) and the audit report
//! (output of `docket audit --format json`). The checked-in copies under
//! `schemas/` are compared with these by a test; regenerate with
//! `DOCKET_BLESS=1 cargo test -p docket-audit --test schemas`.

use serde_json::Value;

use docket_model::schema::generate;

use crate::audit::Report;
use crate::calendar::{CalendarDocument, Deadline};
use crate::rules::RuleSet;

/// Every schema, by its path under `schemas/`.
pub fn all() -> Vec<(String, Value)> {
    vec![
        ("rule-set.schema.json".into(), generate::<RuleSet>("rule-set.schema.json", "docket audit rule set")),
        ("calendar.schema.json".into(), generate::<CalendarDocument>("calendar.schema.json", "docket calendar")),
        ("audit-report.schema.json".into(), generate::<Report>("audit-report.schema.json", "docket audit report")),
        ("deadline.schema.json".into(), generate::<Deadline>("deadline.schema.json", "docket deadline")),
    ]
}
