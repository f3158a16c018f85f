//! Scenario tests as data: `tests/scenarios/*.json` at the workspace root.
//!
//! Each scenario gives events (on top of `registry.json`) and queries with
//! checks (JSON pointer -> expected value, written by hand from the rules).
//! The runner appends the events to a real ledger with the scenario's system
//! times, folds them both in memory ([`Fold`]) and into the redb store, asks
//! every query of both, and requires the two answers to be identical, the
//! checks to hold, and the whole answers to equal the golden file
//! `NAME.expected.json` (`DOCKET_BLESS=1` rewrites it).
//!
//! Placeholders: `$key:NAME` is the public key derived from NAME, `$id:N` the
//! id of scenario event N, `$seq:N` the seq it got. A query's `subject` may
//! name a case alias. `{"$len": n}` checks an array's length.

// Helpers outside #[test] functions panic on broken fixtures, like the tests do.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use docket_fold::case::{AsOf, Known};
use docket_fold::views::{self, Source};
use docket_fold::{Fold, Store, StoreLimits};
use docket_model::{Name, Timestamp};
use docket_testkit::scenario::{build, public, resolve_subject, scenarios_dir, substitute, time};
use serde_json::{json, Value};

fn run_query(source: &dyn Source, scenario: &Value, query: &Value, last_time: Timestamp) -> Value {
    let known = match &query["as_of"] {
        Value::Null => Known::All,
        Value::Number(seq) => Known::Through(seq.as_u64().expect("seq")),
        Value::String(text) => Known::At(time(text)),
        other => panic!("as_of {other}"),
    };
    let default_valid = match known {
        Known::All => last_time,
        Known::At(time) => time,
        Known::Through(_) => last_time,
    };
    let valid_at = query["valid_at"].as_str().map(time).unwrap_or(default_valid);
    let as_of = AsOf { known, valid_at };
    let name = |field: &str| query[field].as_str().map(|s| Name::parse(s).expect("name"));
    let subject = || resolve_subject(scenario, query["subject"].as_str().expect("subject"));
    fn value<T: serde::Serialize>(result: Result<T, docket_fold::FoldError>) -> Result<Value, String> {
        result.map_err(|e| e.to_string()).map(|v| serde_json::to_value(v).expect("views serialise"))
    }
    let result = match query["view"].as_str().expect("view") {
        "list" => value(views::list_view(source, as_of, name("agency").as_ref(), name("list").as_ref())),
        "enforcement" => value(views::enforcement_view(source, as_of, &name("agency").expect("agency"))),
        "subject" => value(views::subject_view(source, as_of, &subject())),
        "public" => value(views::public_view(source, as_of, name("list").as_ref())),
        "check" => {
            value(views::check(source, as_of, &subject(), &name("measure").expect("measure"), name("agency").as_ref()))
        }
        "registry" => value(views::registry_view(source, as_of)),
        other => panic!("view {other}"),
    };
    match result {
        Ok(value) => value,
        Err(error) => panic!("query {query}: {error}"),
    }
}

fn run(path: &Path) -> (Value, Vec<String>) {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let scenario: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let built = build(dir.path(), &scenario, &name);
    let mut fold = Fold::new(public("registry-root"));
    for (seq, (event, system_time)) in built.accepted.iter().enumerate() {
        fold.apply(seq as u64, *system_time, event).unwrap_or_else(|e| panic!("{name}: fold: {e}"));
    }
    let (store, _) =
        Store::open(dir.path(), StoreLimits { batch_events: 3, registry_snapshot_events: 4, ..StoreLimits::default() })
            .unwrap_or_else(|e| panic!("{name}: store: {e}"));
    let last_time = built.accepted.last().map(|(_, t)| *t).unwrap();
    let mut answers = vec![];
    let mut failures = vec![];
    for (index, expect) in scenario["expect"].as_array().expect("expect").iter().enumerate() {
        let query = substitute(&expect["query"], &[], &built.seqs);
        let from_fold = run_query(&fold, &scenario, &query, last_time);
        let from_store = run_query(&store, &scenario, &query, last_time);
        if from_fold != from_store {
            failures.push(format!("query {index} {query}: the store and the in-memory fold disagree"));
        }
        for check in expect["checks"].as_array().expect("checks") {
            let pointer = substitute(&check[0], &[], &built.seqs);
            let pointer = pointer.as_str().expect("pointer");
            let pointer: String = pointer
                .split('/')
                .map(|part| substitute(&json!(part), &[], &built.seqs).as_str().unwrap_or(part).to_owned())
                .collect::<Vec<_>>()
                .join("/");
            let wanted = substitute(&check[1], &[], &built.seqs);
            let found = from_fold.pointer(&pointer);
            let ok = match (&wanted, found) {
                (Value::Object(m), Some(Value::Array(items))) if m.contains_key("$len") => {
                    m["$len"].as_u64() == Some(items.len() as u64)
                }
                (wanted, Some(found)) => wanted == found,
                _ => false,
            };
            if !ok {
                failures.push(format!("query {index} {query}: {pointer}: wanted {wanted}, found {found:?}"));
            }
        }
        answers.push(json!({"query": query, "answer": from_fold}));
    }
    (json!(answers), failures)
}

#[test]
fn scenarios() {
    docket_testkit::scenario::run_all(&scenarios_dir(), 7, run);
}
