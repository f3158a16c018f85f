//! Audit scenarios from the seeds, as data: `tests/audit-scenarios/*.json` at
//! the workspace root, in the format of the fold's scenarios (events on top of
//! `tests/scenarios/registry.json`, see `docket_testkit::scenario`).
//!
//! Each scenario lists audits (as-of, valid-at, list, agency) with the exact
//! findings expected, written by hand from the rules: `[rule, status, case
//! alias, agency, due date or null]`. The runner appends the events to a real
//! ledger, audits the redb store with the bundled rule sets and calendar, and
//! requires the findings to be exactly those (no more, no fewer), every report
//! to validate under `schemas/audit-report.schema.json`, and the reports to
//! equal the golden file `NAME.expected.json` (`DOCKET_BLESS=1` rewrites it).
//! A scenario may also state the public list at valid times (`public`: case
//! alias -> end date) and the delta between two valid times (`delta`), which
//! the bundled rule sets' publicity maxima shape.

// Helpers outside #[test] functions panic on broken fixtures, like the tests do.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use docket_audit::audit::{audit, Scope};
use docket_audit::{Calendar, RuleSet};
use docket_fold::case::{AsOf, Known};
use docket_fold::{Store, StoreLimits};
use docket_model::Name;
use docket_testkit::scenario::{build, time};
use serde_json::{json, Value};

fn scenarios_dir() -> PathBuf {
    docket_testkit::root().join("tests/audit-scenarios")
}

fn with_digests(value: &Value, rule_sets: &[RuleSet]) -> Value {
    match value {
        Value::String(text) => match text.strip_prefix("$rule-set-digest:") {
            Some(spec) => {
                let (id, version) = spec.rsplit_once(':').expect("$rule-set-digest:ID:VERSION");
                let rules = rule_sets
                    .iter()
                    .find(|r| r.id == id && r.version.to_string() == version)
                    .unwrap_or_else(|| panic!("{text}: no such rule set"));
                json!(format!("sha256:{}", rules.digest.iter().map(|b| format!("{b:02x}")).collect::<String>()))
            }
            None => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| with_digests(v, rule_sets)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), with_digests(v, rule_sets))).collect()),
        _ => value.clone(),
    }
}

fn run(path: &Path) -> (Value, Vec<String>) {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let scenario: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
    // Rule set documents the scenario brings, besides the bundled ones; and
    // `$rule-set-digest:ID:VERSION` placeholders replaced by their SHA-256.
    let mut rule_sets = RuleSet::bundled();
    for document in scenario["rule_sets"].as_array().into_iter().flatten() {
        let parsed = RuleSet::parse(&document.to_string()).unwrap_or_else(|e| panic!("{name}: rule set: {e}"));
        rule_sets.retain(|r| !(r.id == parsed.id && r.version == parsed.version));
        rule_sets.push(parsed);
    }
    let scenario = with_digests(&scenario, &rule_sets);
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &scenario, &name);
    let (mut store, _) =
        Store::open(dir.path(), StoreLimits::default()).unwrap_or_else(|e| panic!("{name}: store: {e}"));
    store.set_publication(RuleSet::publication(&rule_sets));
    // Case numbers back to the scenario's aliases.
    let aliases: BTreeMap<String, String> = scenario["cases"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(alias, case)| (case["number"].as_str().unwrap().to_owned(), alias.clone()))
        .collect();
    let calendar = Calendar::bundled();
    let mut failures = vec![];
    let mut reports = vec![];
    for (index, spec) in scenario["audits"].as_array().expect("audits").iter().enumerate() {
        let known = match spec["as_of"].as_str() {
            None => Known::All,
            Some(text) => Known::At(time(text)),
        };
        let valid_at = match (spec["valid_at"].as_str(), known) {
            (Some(text), _) => time(text),
            (None, Known::At(at)) => at,
            (None, _) => panic!("{name} audit {index}: as_of or valid_at is needed, or the result depends on today"),
        };
        let field = |key: &str| spec[key].as_str().map(|s| Name::parse(s).unwrap());
        let scope = Scope { list: field("list"), agency: field("agency") };
        let report = audit(&store, AsOf { known, valid_at }, &scope, &rule_sets, &calendar)
            .unwrap_or_else(|e| panic!("{name} audit {index}: {e}"));
        let mut found: Vec<Value> = report
            .findings
            .iter()
            .map(|f| {
                json!([
                    f.rule.id(),
                    serde_json::to_value(f.status).unwrap(),
                    aliases.get(&f.number.to_string()).cloned().unwrap_or_else(|| f.number.to_string()),
                    f.agency.to_string(),
                    f.deadline.as_ref().map(|d| d.due.to_string()),
                ])
            })
            .collect();
        let mut wanted = spec["findings"].as_array().expect("findings").clone();
        found.sort_by_key(Value::to_string);
        wanted.sort_by_key(Value::to_string);
        if found != wanted {
            failures.push(format!(
                "audit {index} ({spec_brief}):\n    wanted {}\n    found  {}",
                Value::Array(wanted),
                Value::Array(found),
                spec_brief = json!({"as_of": spec["as_of"], "valid_at": spec["valid_at"], "list": spec["list"], "agency": spec["agency"]})
            ));
        }
        let value = serde_json::to_value(&report).unwrap();
        if let Err(error) = common::validate("audit-report.schema.json", &value) {
            failures.push(format!("audit {index}: the report does not validate: {error}"));
        }
        reports.push(value);
    }
    failures.extend(check_public(&store, &scenario, &aliases));
    (json!(reports), failures)
}

/// The scenario's `public` expectations (the public list at a valid time,
/// with every record: alias -> end date) and `delta` ones (the changes
/// between two valid times: [op, alias]), against the store.
fn check_public(store: &Store, scenario: &Value, aliases: &BTreeMap<String, String>) -> Vec<String> {
    let records = store.records();
    let alias = |number: &str| aliases.get(number).cloned().unwrap_or_else(|| number.to_owned());
    let mut failures = vec![];
    for (index, spec) in scenario["public"].as_array().into_iter().flatten().enumerate() {
        let at = time(spec["valid_at"].as_str().expect("public: valid_at"));
        let point = docket_fold::delta::Point { records, valid_at: at };
        let listed: BTreeMap<String, Value> = docket_fold::delta::entries_at(store, point, None)
            .unwrap()
            .iter()
            .map(|e| (alias(e.number.as_str()), json!(e.end_date.map(|d| d.to_string()))))
            .collect();
        let wanted: BTreeMap<String, Value> =
            spec["listed"].as_object().expect("public: listed").clone().into_iter().collect();
        if listed != wanted {
            failures.push(format!("public {index} at {at}:\n    wanted {wanted:?}\n    found  {listed:?}"));
        }
    }
    for (index, spec) in scenario["delta"].as_array().into_iter().flatten().enumerate() {
        let point = |key: &str| docket_fold::delta::Point {
            records,
            valid_at: time(spec[key].as_str().unwrap_or_else(|| panic!("delta {index}: {key}"))),
        };
        let changes: Vec<Value> = docket_fold::delta::between(store, point("from"), point("to"), None)
            .unwrap()
            .iter()
            .map(|c| json!([serde_json::to_value(c.op).unwrap(), alias(c.entry.number.as_str())]))
            .collect();
        if Value::Array(changes.clone()) != spec["changes"] {
            failures.push(format!(
                "delta {index}:\n    wanted {}\n    found  {}",
                spec["changes"],
                Value::Array(changes)
            ));
        }
    }
    failures
}

#[test]
fn audit_scenarios() {
    docket_testkit::scenario::run_all(&scenarios_dir(), 6, run);
}
