//! Scenarios as data: a registry fixture (`tests/scenarios/registry.json`)
//! plus a scenario's events, signed with keys derived from names and appended
//! to a real ledger with the scenario's system times.
//!
//! Placeholders: `$key:NAME` is the public key derived from NAME, `$id:N` the
//! id of scenario event N, `$seq:N` the seq it got. Case events name a case
//! alias from the scenario's `cases`; omitted action fields are filled from a
//! template per kind.

use std::path::{Path, PathBuf};

use docket_log::ledger::{self, Ledger};
use docket_model::event::{Body, CaseAction, CaseEvent, Event, RegistryEvent, Signer, FORMAT_VERSION};
use docket_model::{EventId, Name, PublicKey, SignedEvent, SubjectId, Timestamp};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

/// The fold's scenarios and the registry fixture.
pub fn scenarios_dir() -> PathBuf {
    crate::root().join("tests/scenarios")
}

/// The signing key derived from a name.
pub fn key(name: &str) -> SigningKey {
    docket_model::golden::signing_key(&format!("scenario {name}"))
}

/// The public key derived from a name.
pub fn public(name: &str) -> PublicKey {
    PublicKey(key(name).verifying_key().to_bytes())
}

/// Replaces `$key:` and `$id:` placeholders in strings.
pub fn substitute(value: &Value, ids: &[EventId], seqs: &[Option<u64>]) -> Value {
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

/// Fills an action's omitted fields from a template per kind. Dates the law
/// counts from (`served_at`, `received_at`, `decided_at`) default to the
/// event's effective time.
pub fn complete_action(action: &Value, effective_at: &str) -> Value {
    let (kind, given) = action.as_object().and_then(|m| m.iter().next()).expect("action is {kind: {...}}");
    let template = match kind.as_str() {
        "notice" => {
            json!({"served_at": effective_at, "method": "post", "matter": "Listing as a judgment defaulter",
                   "legal_basis": [{"instrument": "Civil Procedure Law of the PRC", "article": "art. 262"}],
                   "rights": "Object within the window; review by the higher authority"})
        }
        "objection" => {
            json!({"received_at": effective_at, "grounds": "The obligation has been performed", "evidence": []})
        }
        "objection_decision" => json!({"outcome": "rejected", "reasons": "Reviewed on the file"}),
        "designation_decision" => json!({
            "decided_at": effective_at,
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
        "restoration_application" => json!({"received_at": effective_at,
            "grounds": "Obligations performed; the party applies for credit restoration", "evidence": []}),
        "restoration_accepted" => json!({}),
        "restoration_decision" => {
            json!({"granted": true, "reasons": "Conditions for restoration met", "fees_collected_fen": 0})
        }
        other => panic!("unknown action {other}"),
    };
    let mut merged = template.as_object().cloned().unwrap_or_default();
    for (field, value) in given.as_object().expect("action fields") {
        merged.insert(field.clone(), value.clone());
    }
    json!({ kind: merged })
}

/// What a scenario built.
#[derive(Debug)]
pub struct Built {
    /// Accepted events with their system times, in log order.
    pub accepted: Vec<(SignedEvent, Timestamp)>,
    /// The seq of each scenario event, `None` where it was refused as expected.
    pub seqs: Vec<Option<u64>>,
}

/// Parses an RFC 3339 time of a fixture.
pub fn time(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap_or_else(|e| panic!("time {text}: {e}"))
}

/// Appends the registry fixture and the scenario's events to a real ledger in `dir`.
pub fn build(dir: &Path, scenario: &Value, name: &str) -> Built {
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

/// A subject given by case alias or in its JSON form.
pub fn resolve_subject(scenario: &Value, text: &str) -> SubjectId {
    match scenario["cases"].get(text) {
        Some(case) => serde_json::from_value(case["subject"].clone()).expect("subject"),
        None => serde_json::from_value(json!(text)).expect("subject"),
    }
}

/// The scenario files in `dir`, sorted: every `*.json` but golden files
/// (`*.expected.json`) and the registry fixture.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let file = p.file_name().unwrap().to_string_lossy();
            file.ends_with(".json") && !file.ends_with(".expected.json") && file != "registry.json"
        })
        .collect();
    paths.sort();
    paths
}

/// Compares a scenario's answers with its golden file (`NAME.expected.json`
/// beside it), or writes the file when blessing (`DOCKET_BLESS=1`). Returns
/// what is wrong, if anything.
pub fn check_golden(scenario: &Path, answers: &Value) -> Option<String> {
    let name = scenario.file_stem().unwrap().to_string_lossy();
    let golden = scenario.with_file_name(format!("{name}.expected.json"));
    let text = serde_json::to_string_pretty(answers).unwrap() + "\n";
    if crate::blessing() {
        std::fs::write(&golden, &text).unwrap();
        return None;
    }
    match std::fs::read_to_string(&golden) {
        Ok(expected) if expected == text => None,
        Ok(_) => {
            Some(format!("{}: the answers differ from the golden file (DOCKET_BLESS=1 to accept)", golden.display()))
        }
        Err(_) => Some(format!("{} missing (DOCKET_BLESS=1 writes it)", golden.display())),
    }
}

/// Runs every scenario in `dir` (at least `at_least` of them): `run` returns
/// a scenario's answers and what failed in it; the answers are also compared
/// with the golden file. Panics listing every failure of every scenario.
pub fn run_all(dir: &Path, at_least: usize, run: impl Fn(&Path) -> (Value, Vec<String>)) {
    let paths = files(dir);
    assert!(paths.len() >= at_least, "{}: the scenarios are missing", dir.display());
    let mut report = vec![];
    for path in &paths {
        let (answers, mut failures) = run(path);
        failures.extend(check_golden(path, &answers));
        if !failures.is_empty() {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            report.push(format!("{name}:\n  {}", failures.join("\n  ")));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}
