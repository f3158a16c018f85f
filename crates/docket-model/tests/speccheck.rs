//! The acceptance rule against the ed25519-speccheck vectors
//! (`tests/vectors/ed25519-speccheck.json`, the cases of the
//! ed25519-speccheck project, pinned by their SHA-256 below) and against
//! hand-made edge cases: wrong domain, non-canonical S.
//!
//! | case | what it is                                   | docket | ed25519-dalek `verify_strict` |
//! |------|----------------------------------------------|--------|------|
//! | 0    | small-order A, S = 0                          | reject: small-order key | reject |
//! | 1    | small-order A                                 | reject: small-order key | reject |
//! | 2    | small-order R                                 | reject: small-order R | reject |
//! | 3    | mixed-order A and R, both equations hold      | accept | accept |
//! | 4    | only the cofactored equation holds            | accept (cofactored rule) | reject |
//! | 5    | only the cofactored equation holds            | accept (cofactored rule) | reject |
//! | 6    | S >= L (non-canonical S)                      | reject: non-canonical S | reject |
//! | 7    | S >= L (non-canonical S)                      | reject: non-canonical S | reject |
//! | 8    | R = p, a non-canonical point encoding         | reject: invalid R | reject |
//! | 9    | R = p, a non-canonical point encoding         | reject: invalid R | reject |
//!
//! (Cases 8–9 are sometimes described as "non-canonical S"; their S is
//! canonical and their R is the non-canonical encoding of y = p.)
//!
//! Batch verification gives the same answer as single verification for every
//! case, alone and mixed into a batch of good signatures.

mod common;

use docket_model::crypto::{verify, verify_batch, BatchItem, SignatureError};
use docket_model::{PublicKey, Signature};
use serde_json::Value;

struct Vector {
    message: Vec<u8>,
    key: PublicKey,
    signature: Signature,
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(common::root().join("tests/vectors/ed25519-speccheck.json"))
        .expect("tests/vectors/ed25519-speccheck.json");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("vector json");
    cases
        .iter()
        .map(|case| Vector {
            message: hex::decode(case["message"].as_str().expect("message")).expect("hex"),
            key: PublicKey::from_hex(case["pub_key"].as_str().expect("pub_key")).expect("key"),
            signature: Signature::from_hex(case["signature"].as_str().expect("signature")).expect("sig"),
        })
        .collect()
}

fn expected() -> [Result<(), SignatureError>; 10] {
    use SignatureError::*;
    [
        Err(SmallOrderKey),
        Err(SmallOrderKey),
        Err(SmallOrderR),
        Ok(()),
        Ok(()),
        Ok(()),
        Err(NonCanonicalS),
        Err(NonCanonicalS),
        Err(InvalidR),
        Err(InvalidR),
    ]
}

/// SHA-256 of the vector file as received: a changed byte is a changed
/// vector set, to be reviewed against the table above before re-pinning.
const VECTORS_SHA256: &str = "1b3169abef325c33de19479314d63c315577514d6e02bcb6a39a6c53e8864e97";

#[test]
fn the_vectors_are_the_pinned_ones() {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(common::root().join("tests/vectors/ed25519-speccheck.json")).expect("vectors");
    let digest: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(digest, VECTORS_SHA256, "tests/vectors/ed25519-speccheck.json changed");
}

#[test]
fn single_verification_follows_the_table() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 10);
    for (index, (vector, expected)) in vectors.iter().zip(expected()).enumerate() {
        assert_eq!(verify(&vector.key, &vector.message, &vector.signature), expected, "speccheck case {index}");
    }
}

#[test]
fn docket_differs_from_dalek_strict_only_on_the_cofactored_cases() {
    for (index, vector) in vectors().iter().enumerate() {
        let ours = verify(&vector.key, &vector.message, &vector.signature).is_ok();
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&vector.key.0)
            .map(|key| key.verify_strict(&vector.message, &ed25519_dalek::Signature::from_bytes(&vector.signature.0)))
            .is_ok_and(|result| result.is_ok());
        assert_eq!(ours != dalek, index == 4 || index == 5, "case {index}: docket {ours}, dalek strict {dalek}");
    }
}

#[test]
fn batch_verification_matches_single_for_every_case() {
    let vectors = vectors();
    let signing = docket_model::golden::signing_key("batch-filler");
    let filler_key = PublicKey(signing.verifying_key().to_bytes());
    let filler_messages: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 33]).collect();
    let filler_signatures: Vec<Signature> =
        filler_messages.iter().map(|m| Signature(ed25519_dalek::Signer::sign(&signing, m).to_bytes())).collect();
    for (index, (vector, expected)) in vectors.iter().zip(expected()).enumerate() {
        assert_eq!(
            verify_batch(&[(&vector.key, &vector.message, &vector.signature)]),
            vec![expected],
            "alone: case {index}"
        );
        let mut items: Vec<BatchItem<'_>> =
            filler_messages.iter().zip(&filler_signatures).map(|(m, s)| (&filler_key, m.as_slice(), s)).collect();
        items.insert(2, (&vector.key, &vector.message, &vector.signature));
        let results = verify_batch(&items);
        for (position, result) in results.iter().enumerate() {
            let want = if position == 2 { expected } else { Ok(()) };
            assert_eq!(*result, want, "case {index} at position 2 of a batch; item {position}");
        }
    }
    // All ten together: each keeps its own answer.
    let items: Vec<BatchItem<'_>> = vectors.iter().map(|v| (&v.key, v.message.as_slice(), &v.signature)).collect();
    assert_eq!(verify_batch(&items), expected().to_vec());
}

#[test]
fn a_signature_without_the_domain_prefix_is_rejected() {
    let (_, example) = common::examples().into_iter().next().expect("an example");
    let signed = common::sign_example(example);
    let key = docket_model::golden::key_for(&signed.event().signer);
    // Signed over the bare canonical bytes, as a careless client might.
    let bare = Signature(ed25519_dalek::Signer::sign(&key, signed.bytes()).to_bytes());
    let wrong = docket_model::SignedEvent::from_parts(signed.bytes().to_vec(), bare).expect("decodes");
    assert_eq!(wrong.verify(), Err(SignatureError::Equation));
    // Signed under another domain.
    let mut other = b"docket/v1/checkpoint\0".to_vec();
    other.extend_from_slice(signed.bytes());
    let cross = Signature(ed25519_dalek::Signer::sign(&key, &other).to_bytes());
    let wrong = docket_model::SignedEvent::from_parts(signed.bytes().to_vec(), cross).expect("decodes");
    assert_eq!(wrong.verify(), Err(SignatureError::Equation));
}

#[test]
fn non_canonical_s_of_a_valid_signature_is_rejected() {
    let (_, example) = common::examples().into_iter().next().expect("an example");
    let signed = common::sign_example(example);
    assert_eq!(signed.verify(), Ok(()));
    // S + L encodes the same scalar mod L; only a non-canonical-S check refuses it.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut signature = *signed.signature();
    let mut carry = 0u16;
    for (byte, l) in signature.0[32..].iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 256 bits since S < L < 2^253");
    let malleated = docket_model::SignedEvent::from_parts(signed.bytes().to_vec(), signature).expect("decodes");
    assert_eq!(malleated.verify(), Err(SignatureError::NonCanonicalS));
}
