//! Golden vectors: every example signed with its golden key gives the committed
//! canonical bytes, signature, id and wire form. Any change to the encoding,
//! the signing domain or the id derivation fails here.

mod common;

use docket_model::{decode, SignedEvent, SignedJson};
use serde_json::{json, Value};

fn vectors() -> Vec<Value> {
    common::examples()
        .into_iter()
        .map(|(name, unsigned)| {
            let signed = common::sign_example(unsigned);
            json!({
                "name": name,
                "event": signed.event(),
                "canonical_hex": hex::encode(signed.bytes()),
                "signature": signed.signature(),
                "id": signed.id(),
                "wire_hex": hex::encode(signed.to_wire()),
            })
        })
        .collect()
}

#[test]
fn golden_vectors_match() {
    let text = serde_json::to_string_pretty(&vectors()).expect("json") + "\n";
    common::expect_file("tests/golden/events.json", &text);
}

#[test]
fn golden_vectors_decode_and_verify_from_their_bytes_alone() {
    let text = std::fs::read_to_string(common::root().join("tests/golden/events.json")).expect("golden file");
    let vectors: Vec<Value> = serde_json::from_str(&text).expect("golden json");
    assert!(vectors.len() >= 20, "a golden vector per event kind");
    for vector in vectors {
        let name = vector["name"].as_str().expect("name");
        let bytes = hex::decode(vector["canonical_hex"].as_str().expect("hex")).expect("hex");
        let wire = hex::decode(vector["wire_hex"].as_str().expect("hex")).expect("hex");
        let from_wire = SignedEvent::from_wire(&wire).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(from_wire.bytes(), bytes.as_slice(), "{name}");
        assert_eq!(from_wire.verify(), Ok(()), "{name}");
        assert_eq!(serde_json::to_value(from_wire.id()).expect("id"), vector["id"], "{name}");
        // The JSON form re-encodes to exactly the signed bytes.
        let json: SignedJson = serde_json::from_value(json!({
            "event": vector["event"], "signature": vector["signature"], "id": vector["id"]
        }))
        .expect("signed json");
        let from_json = SignedEvent::from_json(json).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(from_json, from_wire, "{name}");
        assert_eq!(&decode(&bytes).expect("decode"), from_json.event(), "{name}");
    }
}

#[test]
fn same_event_signed_twice_has_the_same_id_and_signature() {
    for (name, unsigned) in common::examples() {
        let first = common::sign_example(unsigned.clone());
        let second = common::sign_example(unsigned);
        assert_eq!(first.id(), second.id(), "{name}");
        assert_eq!(first.signature(), second.signature(), "{name}");
    }
}

#[test]
fn one_changed_byte_fails_decoding_or_the_signature() {
    let (_, unsigned) = common::examples().into_iter().find(|(n, _)| n == "designation_decision").expect("example");
    let signed = common::sign_example(unsigned);
    let bytes = signed.bytes();
    for index in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut changed = bytes.to_vec();
            changed[index] ^= flip;
            if let Ok(tampered) = SignedEvent::from_parts(changed, *signed.signature()) {
                assert!(tampered.verify().is_err(), "byte {index} flipped by {flip:#x} still verifies");
                assert_ne!(tampered.id(), signed.id());
            }
        }
    }
}
