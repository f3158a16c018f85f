//! Request signatures: a golden vector (`tests/golden/request.json`), and the
//! checks that make a signature cover every part of the request.

mod common;

use docket_model::request::{request_message, sign_request, verify_request};
use docket_model::PublicKey;
use ed25519_dalek::SigningKey;

#[test]
fn request_signatures_match_the_golden_vector_and_cover_every_part() {
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let public = PublicKey(key.verifying_key().to_bytes());
    let (method, path, date, body) =
        ("GET", "/v1/views/enforcement?agency=china-railway", "2026-11-24T10:00:00+08:00", b"");
    let signature = sign_request(&key, method, path, date, body);
    let message = request_message(method, path, date, body);
    let golden = serde_json::json!({
        "about": "A signed read request (crates/docket-model/src/request.rs). Key: 32 bytes of 0x42.",
        "public_key": public.to_hex(),
        "method": method, "path_and_query": path, "date": date, "body": "",
        "message_hex": message.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "signature": signature.to_hex(),
    });
    common::expect_file("tests/golden/request.json", &(serde_json::to_string_pretty(&golden).expect("json") + "\n"));
    assert_eq!(verify_request(&public, method, path, date, body, &signature), Ok(()));
    for (what, m, p, d, b) in [
        ("method", "POST", path, date, &b""[..]),
        ("path", method, "/v1/views/enforcement?agency=spc", date, &b""[..]),
        ("date", method, path, "2026-11-24T10:00:01+08:00", &b""[..]),
        ("body", method, path, date, &b"{}"[..]),
    ] {
        assert!(verify_request(&public, m, p, d, b, &signature).is_err(), "a changed {what} is refused");
    }
    // An event signature over the same request text is not a request signature.
    let text = &message[docket_model::request::REQUEST_DOMAIN.len()..];
    let event_signature = docket_model::Signature(
        ed25519_dalek::Signer::sign(&key, &docket_model::signed::signing_message(text)).to_bytes(),
    );
    assert!(verify_request(&public, method, path, date, body, &event_signature).is_err());
}
