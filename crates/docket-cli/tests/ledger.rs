//! The ledger commands end to end: demo, verify, tamper, proof, append
//! (receipts, duplicates, stop at the first refusal), init with genesis.

mod common;

use common::{docket, s, text};

#[test]
fn demo_verifies_and_a_flipped_byte_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("demo");
    let output = docket(&["demo", "--dir", s(&ledger), "--subjects", "40", "--seed", "3"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("NoNotice"), "{}", text(&output.stdout));
    let output = docket(&["verify", "--dir", s(&ledger)]);
    assert_eq!(output.status.code(), Some(0), "{}{}", text(&output.stdout), text(&output.stderr));
    assert!(text(&output.stdout).starts_with("ok: "), "{}", text(&output.stdout));
    // Keep the checkpoint, flip one byte in the middle of the segment.
    let old_checkpoint = dir.path().join("old-checkpoint");
    std::fs::copy(ledger.join("checkpoints/latest"), &old_checkpoint).expect("copy");
    let segment = ledger.join("segments/seg-00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).expect("segment");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("write");
    let output = docket(&["verify", "--dir", s(&ledger)]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("FAILED: seq "), "{stdout}");
    assert!(stdout.contains("segment seg-00000000000000000000.log: offset "), "{stdout}");
    bytes[middle] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("restore");
    let output = docket(&["verify", "--dir", s(&ledger), "--checkpoint", s(&old_checkpoint)]);
    assert!(text(&output.stdout).contains("is consistent with the log"), "{}", text(&output.stdout));
}

#[test]
fn proofs_are_printed_and_check_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("demo");
    assert!(docket(&["demo", "--dir", s(&ledger), "--subjects", "10"]).status.success());
    let output = docket(&["proof", "inclusion", "--dir", s(&ledger), "--seq", "7"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let proof: serde_json::Value = serde_json::from_str(&text(&output.stdout)).expect("json");
    let hash = |v: &serde_json::Value| -> [u8; 32] {
        hex::decode(v.as_str().expect("hex")).expect("hex").try_into().expect("32")
    };
    let path: Vec<[u8; 32]> = proof["proof"].as_array().expect("array").iter().map(hash).collect();
    let size = proof["tree_size"].as_u64().expect("size");
    docket_log::merkle::verify_inclusion(7, size, &hash(&proof["leaf_hash"]), &path, &hash(&proof["root"]))
        .expect("proof verifies");
    let output = docket(&["proof", "consistency", "--dir", s(&ledger), "--old", "5"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = docket(&["proof", "inclusion", "--dir", s(&ledger), "--seq", "999999"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("leaf index 999999 is not below tree size"), "{}", text(&output.stderr));
}

#[test]
fn init_append_duplicates_and_stop_at_the_first_refusal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("ledger");
    // Genesis: an agency whose key we hold, and a list it designates.
    let key_path = dir.path().join("court.key");
    let public = text(&docket(&["keygen", "--out", s(&key_path)]).stdout).trim().to_owned();
    let registry = dir.path().join("registry.jsonl");
    let agency = serde_json::json!({"format": 3, "signer": "registry", "effective_at": "2024-01-01T09:00:00+08:00",
        "body": {"registry": {"agency_registered": {"agency": "court", "name": "Court", "roles": ["designating"], "keys": [public]}}}});
    let list = serde_json::json!({"format": 3, "signer": "registry", "effective_at": "2024-01-01T09:00:00+08:00",
        "body": {"registry": {"list_defined": {"list": "defaulters", "name": "Defaulters", "designating_agency": "court", "rule_set": "cn-spc-defaulters", "legal_basis": []}}}});
    std::fs::write(&registry, format!("{agency}\n{list}\n")).expect("write");
    let output = docket(&["init", "--dir", s(&ledger), "--registry", s(&registry)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("registry root public key"));
    // Three case events: a notice, the same notice again, and an objection by an unknown agency.
    let notice = serde_json::json!({"format": 3, "signer": {"agency": "court"}, "effective_at": "2024-03-01T10:00:00+08:00",
        "body": {"case": {"list": "defaulters", "subject": {"uscc": "91110105MA01ABCD13"}, "number": "(2024)1", "expected_version": 0,
            "action": {"notice": {"served_at": "2024-03-01T10:00:00+08:00", "method": "post", "matter": "m", "legal_basis": [], "rights": "r"}}}}});
    let mut stranger = notice.clone();
    stranger["signer"] = serde_json::json!({"agency": "nobody"});
    let unsigned = dir.path().join("events.jsonl");
    std::fs::write(&unsigned, format!("{notice}\n{notice}\n{stranger}\n{notice}\n")).expect("write");
    let signed = dir.path().join("signed.jsonl");
    assert!(docket(&["sign", "--key", s(&key_path), s(&unsigned), "--out", s(&signed)]).status.success());
    let output = docket(&["append", "--dir", s(&ledger), s(&signed)]);
    assert_eq!(output.status.code(), Some(2));
    let receipts: Vec<serde_json::Value> =
        text(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("receipt")).collect();
    assert_eq!(receipts.len(), 2, "two receipts before the refusal");
    assert_eq!(receipts[0]["seq"], receipts[1]["seq"], "a duplicate gets its original receipt");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("line 3: refused: not authorised: agency \"nobody\" is not registered"), "{stderr}");
    assert!(stderr.contains("2 event(s) before it were appended and kept"), "{stderr}");
    let output = docket(&["verify", "--dir", s(&ledger)]);
    assert!(text(&output.stdout).starts_with("ok: 3 records"), "{}", text(&output.stdout));
    // A stale expected version is a conflict naming the actual version.
    let output = docket(&["append", "--dir", s(&ledger), s(&signed)]);
    assert!(text(&output.stderr).contains("refused"), "{}", text(&output.stderr));
}
