//! Signed notes and checkpoints against the golang.org/x/mod/sumdb/note
//! reference vector, an independent implementation of the C2SP format.

use docket_log::note::{self, Checkpoint, NoteError, NoteKey};

const VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const SIGNER: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#[test]
fn signing_reproduces_the_go_note_byte_for_byte() {
    let (key, signing) = note::parse_private_key(SIGNER).expect("private key");
    assert_eq!(key.verifier_string(), VERIFIER);
    assert_eq!(note::sign(TEXT, &key, &signing).expect("signs"), NOTE);
}

#[test]
fn the_go_note_opens_and_a_changed_one_does_not() {
    let key = NoteKey::parse(VERIFIER).expect("verifier key");
    let (text, verified) = note::open(NOTE, std::slice::from_ref(&key)).expect("opens");
    assert_eq!(text, TEXT);
    assert_eq!(verified, vec![key.clone()]);
    let changed = NOTE.replace("cryptography", "cryptographY");
    assert!(matches!(note::open(&changed, std::slice::from_ref(&key)), Err(NoteError::BadSignature { .. })));
    let other = NoteKey::new("Other", key.key).expect("key");
    assert!(matches!(note::open(NOTE, &[other]), Err(NoteError::Unverified { .. })));
    assert!(
        NoteKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err(),
        "wrong key id"
    );
}

#[test]
fn checkpoints_round_trip_and_refuse_malformed_text() {
    let checkpoint = Checkpoint {
        origin: "docket.invalid/ledger".into(),
        size: 8,
        root: [7; 32],
        extensions: vec!["ext one".into()],
    };
    let text = checkpoint.to_text();
    assert_eq!(text, "docket.invalid/ledger\n8\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\next one\n");
    assert_eq!(Checkpoint::parse(&text), Ok(checkpoint.clone()));
    for bad in [
        "docket\n08\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        "docket\n8\nBwcH\n",
        "docket\n8\n",
        "\n8\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        "docket\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
    ] {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
    let (key, signing) = note::parse_private_key(SIGNER).expect("private key");
    let signed = note::sign(&text, &key, &signing).expect("signs");
    let (opened, _) = note::open(&signed, &[key]).expect("opens");
    assert_eq!(Checkpoint::parse(opened), Ok(checkpoint));
}

#[test]
fn malformed_notes_are_refused_without_panicking() {
    let key = NoteKey::parse(VERIFIER).expect("verifier key");
    for bad in ["", "\n\n", "text\n", "text\n\n", "text\n\nno dash\n", "text\n\n— Name !!!\n", "a\n\nb\n\n— x AAAA\n"]
    {
        assert!(note::open(bad, std::slice::from_ref(&key)).is_err(), "{bad:?}");
    }
}

// ---- tlog-cosignature ----

use docket_log::note::{cosign, verify_cosignature, WitnessKey};

#[test]
fn cosignatures_match_the_golden_vector_and_the_c2sp_layout() {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[0x24; 32]);
    let witness = WitnessKey::new("witness.example/w1", docket_model::PublicKey(signing.verifying_key().to_bytes()))
        .expect("key");
    let text = "docket.invalid/demo-1\n1854\nKhxY+jS5BYkS8FUb+R3f8m0CqwLeGI80TOFgG+H6Gto=\n";
    let line = cosign(text, &witness, &signing, 1_679_315_147).expect("cosigns");
    let golden = serde_json::json!({
        "about": "A C2SP tlog-cosignature v1 line (crates/docket-log/src/note.rs). Witness key: 32 bytes of 0x24.",
        "witness": witness.name, "public_key": witness.key.to_hex(), "key_id": hex::encode(witness.key_id()),
        "checkpoint": text, "timestamp": 1_679_315_147u64, "line": line,
    });
    docket_testkit::expect_file(
        "tests/golden/cosignature.json",
        &(serde_json::to_string_pretty(&golden).expect("json") + "\n"),
    );
    let note = format!("{text}\n{line}");
    let (body, lines) = docket_log::note::parse(&note).expect("parses");
    assert_eq!(verify_cosignature(body, &witness, &lines[0]), Ok(1_679_315_147));
    let other = format!("{}\n", text.replace("1854", "1855"));
    assert!(verify_cosignature(&other[..other.len() - 1], &witness, &lines[0]).is_err(), "another checkpoint");

    // The C2SP spec's example cosignature line: key id, then the big-endian
    // timestamp 1679315147, then 64 signature bytes.
    let example = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\
                   — witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
    let (_, lines) = docket_log::note::parse(example).expect("the spec's example parses");
    assert_eq!(lines[0].signature.len(), 8 + 64);
    assert_eq!(u64::from_be_bytes(lines[0].signature[..8].try_into().expect("8 bytes")), 1_679_315_147);
}
