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
