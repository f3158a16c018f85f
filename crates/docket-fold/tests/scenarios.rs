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

use std::path::{Path, PathBuf};

use docket_fold::case::{AsOf, Known};
use docket_fold::views::{self, Source};
use docket_fold::{Fold, Store, StoreLimits};
use docket_log::ledger::{self, Ledger};
use docket_model::event::{Body, CaseAction, CaseEvent, Event, RegistryEvent, Signer, FORMAT_VERSION};
use docket_model::{EventId, Name, PublicKey, SignedEvent, SubjectId, Timestamp};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

fn key(name: &str) -> SigningKey {
    docket_log::demo::key(0, &format!("scenario {name}"))
}

fn public(name: &str) -> PublicKey {
    PublicKey(key(name).verifying_key().to_bytes())
}

/// Replaces `$key:` and `$id:` placeholders in strings.
fn substitute(value: &Value, ids: &[EventId], seqs: &[Option<u64>]) -> Value {
    match value {
        Value::String(text) => {
            if let Some(name) = text.strip_prefix("$key:") {
                json!(public(name).to_hex())
            } else if let Some(index) = text.strip_prefix("$id:") {
                let index: usize = index.parse().expect("$id:N");
                json!(ids.get(index).unwrap_or_else(|| panic!("$id:{index} refers to a later event")).to_string())
            } else if let Some(index) = text.strip_prefix("$seq:") {
                let index: usize = index.parse().expect("$seq:N");
                json!(seqs[index].unwrap_or_else(|| panic!("$seq:{index}: that event was refused")))
            } else {
                value.clone()
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, ids, seqs)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), substitute(v, ids, seqs))).collect()),
        _ => value.clone(),
    }
}

/// Fills an action's omitted fields from a template per kind.
fn complete_action(action: &Value, effective_at: &str) -> Value {
    let (kind, given) = action.as_object().and_then(|m| m.iter().next()).expect("action is {kind: {...}}");
    let template = match kind.as_str() {
        "notice" => {
            json!({"served_at": effective_at, "method": "post", "matter": "Listing as a judgment defaulter", "rights": "Object within the window; review by the higher authority"})
        }
        "objection" => {
            json!({"received_at": effective_at, "grounds": "The obligation has been performed", "evidence": []})
        }
        "objection_decision" => json!({"outcome": "rejected", "reasons": "Reviewed on the file"}),
        "designation_decision" => json!({
            "basis": {"issuer": "Beijing Chaoyang District People's Court", "number": "(2023)京0105民初1号", "date": "2023-11-02",
                      "digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
            "reasons": "Able to perform but refuses", "legal_basis": [{"instrument": "Civil Procedure Law of the PRC", "article": "art. 262"}],
            "measures_warning": "Joint measures under the MOU apply", "removal_conditions": "Performance or end of term",
            "remedies": "Correction request; review", "severity": "serious", "term_months": 24}),
        "term_extended" => json!({"months": 12, "reasons": "Still not performed", "basis": null}),
        "revocation" => json!({"reason": "objection_upheld", "statement": "Withdrawn"}),
        "restoration" => json!({"reason": "obligations_performed", "statement": "Performed in full"}),
        "measure_applied" => json!({}),
        "measure_lifted" => json!({"reason": "case_closed"}),
        other => panic!("unknown action {other}"),
    };
    let mut merged = template.as_object().cloned().unwrap_or_default();
    for (field, value) in given.as_object().expect("action fields") {
        merged.insert(field.clone(), value.clone());
    }
    json!({ kind: merged })
}

struct Built {
    /// Accepted events with their system times, in log order.
    accepted: Vec<(SignedEvent, Timestamp)>,
    seqs: Vec<Option<u64>>,
}

fn time(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap_or_else(|e| panic!("time {text}: {e}"))
}

/// Appends the registry fixture and the scenario's events to a real ledger in `dir`.
fn build(dir: &Path, scenario: &Value, name: &str) -> Built {
    let root = key("registry-root");
    ledger::init(dir, "docket.invalid/scenario", &key("log"), public("registry-root"), None).expect("init");
    let mut ledger = Ledger::open(dir, docket_log::Config::default()).expect("open");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(scenarios_dir().join("registry.json")).unwrap())
        .expect("registry.json");
    let mut accepted = vec![];
    let genesis = time("2024-01-01T00:00:00+08:00");
    for (index, entry) in fixture["events"].as_array().expect("events").iter().enumerate() {
        let body: RegistryEvent =
            serde_json::from_value(substitute(&entry["registry"], &[], &[])).expect("registry event");
        let event = Event {
            format: FORMAT_VERSION,
            signer: Signer::Registry,
            key: public("registry-root"),
            effective_at: time(entry["effective_at"].as_str().expect("effective_at")),
            body: Body::Registry(body),
        };
        let signed = SignedEvent::sign(event, &root).expect("sign");
        let at = Timestamp::from_micros(genesis.micros() + index as i64 * 1_000_000).unwrap();
        let receipt = ledger.log.append_batch(vec![signed.clone()], at).expect("append").remove(0).expect("accepted");
        accepted.push((signed, receipt.system_time));
    }
    let cases = &scenario["cases"];
    let events = scenario["events"].as_array().expect("events");
    let mut ids = vec![];
    let mut seqs = vec![];
    for (index, entry) in events.iter().enumerate() {
        let effective_at = entry["effective_at"].as_str().expect("effective_at");
        let recorded_at = time(entry["recorded_at"].as_str().unwrap_or(effective_at));
        let signer = entry["signer"].as_str().expect("signer");
        let (signer, key_name, body) = if signer == "registry" {
            let body: RegistryEvent =
                serde_json::from_value(substitute(&entry["registry"], &ids, &seqs)).expect("registry");
            (Signer::Registry, "registry-root".to_owned(), Body::Registry(body))
        } else {
            let alias = entry["case"].as_str().expect("case");
            let case = &cases[alias];
            let action = complete_action(&substitute(&entry["action"], &ids, &seqs), effective_at);
            let action: CaseAction =
                serde_json::from_value(action).unwrap_or_else(|e| panic!("{name} event {index}: {e}"));
            let body = CaseEvent {
                list: serde_json::from_value(case["list"].clone()).expect("list"),
                subject: serde_json::from_value(case["subject"].clone()).expect("subject"),
                number: serde_json::from_value(case["number"].clone()).expect("number"),
                expected_version: entry["expected_version"].as_u64(),
                action,
            };
            let key_name = entry["key"].as_str().unwrap_or(signer).to_owned();
            (Signer::Agency(Name::parse(signer).expect("agency")), key_name, Body::Case(body))
        };
        let event =
            Event { format: FORMAT_VERSION, signer, key: public(&key_name), effective_at: time(effective_at), body };
        let signed = SignedEvent::sign(event, &key(&key_name)).unwrap_or_else(|e| panic!("{name} event {index}: {e}"));
        ids.push(signed.id());
        let result = ledger.log.append_batch(vec![signed.clone()], recorded_at).expect("append").remove(0);
        match (result, entry["refused"].as_str()) {
            (Ok(receipt), None) => {
                assert_eq!(receipt.system_time, recorded_at, "{name} event {index}: system times must increase");
                seqs.push(Some(receipt.seq));
                accepted.push((signed, receipt.system_time));
            }
            (Err(refusal), Some(expected)) => {
                assert!(
                    refusal.to_string().contains(expected),
                    "{name} event {index}: refused for {refusal}, expected {expected:?}"
                );
                seqs.push(None);
            }
            (Ok(_), Some(expected)) => panic!("{name} event {index}: accepted, expected a refusal ({expected})"),
            (Err(refusal), None) => panic!("{name} event {index}: refused: {refusal}"),
        }
    }
    Built { accepted, seqs }
}

fn resolve_subject(scenario: &Value, text: &str) -> SubjectId {
    match scenario["cases"].get(text) {
        Some(case) => serde_json::from_value(case["subject"].clone()).expect("subject"),
        None => serde_json::from_value(json!(text)).expect("subject"),
    }
}

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

fn run(path: &Path) -> Result<(), String> {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let scenario: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).map_err(|e| format!("{name}: {e}"))?;
    let dir = tempfile::tempdir().unwrap();
    let built = build(dir.path(), &scenario, &name);
    let mut fold = Fold::new(public("registry-root"));
    for (seq, (event, system_time)) in built.accepted.iter().enumerate() {
        fold.apply(seq as u64, *system_time, event).map_err(|e| format!("{name}: fold: {e}"))?;
    }
    let (store, _) =
        Store::open(dir.path(), StoreLimits { batch_events: 3, registry_snapshot_events: 4, ..StoreLimits::default() })
            .map_err(|e| format!("{name}: store: {e}"))?;
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
    let golden = path.with_file_name(format!("{name}.expected.json"));
    let text = serde_json::to_string_pretty(&answers).unwrap() + "\n";
    if std::env::var_os("DOCKET_BLESS").is_some() {
        std::fs::write(&golden, &text).unwrap();
    } else {
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == text => {}
            Ok(_) => failures
                .push(format!("{}: answers differ from the golden file (DOCKET_BLESS=1 to accept)", golden.display())),
            Err(_) => failures.push(format!("{} missing (DOCKET_BLESS=1 writes it)", golden.display())),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{name}:\n  {}", failures.join("\n  ")))
    }
}

#[test]
fn scenarios() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let file = p.file_name().unwrap().to_string_lossy();
            file.ends_with(".json") && !file.ends_with(".expected.json") && file != "registry.json"
        })
        .collect();
    paths.sort();
    assert!(paths.len() >= 7, "the scenarios are missing");
    let failures: Vec<String> = paths.iter().filter_map(|p| run(p).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
