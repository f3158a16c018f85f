//! The JSON Schemas under `schemas/` are what the types generate, and the
//! bundled rule sets and calendar validate under them (checked with boon, an
//! independent validator, not with serde).

use docket_audit::{rules, schema};
use serde_json::Value;

mod common;
use common::validate;

#[test]
fn checked_in_schemas_match_the_types() {
    for (path, value) in schema::all() {
        let text = serde_json::to_string_pretty(&value).expect("json") + "\n";
        docket_testkit::expect_file(&format!("schemas/{path}"), &text);
    }
}

#[test]
fn bundled_documents_validate() {
    for (name, text) in rules::BUNDLED {
        let value: Value = serde_json::from_str(text).expect("json");
        validate("rule-set.schema.json", &value).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let calendar: Value = serde_json::from_str(docket_audit::calendar::CN_STATE_COUNCIL).expect("json");
    validate("calendar.schema.json", &calendar).unwrap_or_else(|e| panic!("calendar: {e}"));
}

#[test]
fn schemas_refuse_broken_documents() {
    let (_, text) = rules::BUNDLED[0];
    let good: Value = serde_json::from_str(text).expect("json");
    let mut unknown = good.clone();
    unknown["colour"] = "blue".into();
    let mut period = good.clone();
    period["removal"] = serde_json::json!({"fortnights": 2});
    let mut field = good;
    field["required_decision_fields"] = serde_json::json!(["horoscope"]);
    for (what, broken) in [("unknown field", unknown), ("unknown period unit", period), ("unknown field name", field)] {
        assert!(validate("rule-set.schema.json", &broken).is_err(), "{what} must be refused");
    }
}
