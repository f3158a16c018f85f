//! Signed HTTP requests: how an agency proves who is reading. The signature
//! is the credential, as it is for appends; no passwords or tokens.
//!
//! The signed message is
//! `docket/v1/request\0 || METHOD || \n || PATH_AND_QUERY || \n || DATE || \n || hex(SHA-256(body))`,
//! sent as four headers: [`AGENCY_HEADER`], [`KEY_HEADER`] (hex public key),
//! [`DATE_HEADER`] (RFC 3339) and [`SIGNATURE_HEADER`] (hex). The server
//! accepts it if the key is registered to the agency and unrevoked now, the
//! date is within its clock-skew limit, and the signature verifies under the
//! same acceptance rule as events. The domain prefix keeps a request
//! signature from ever being an event signature, or the reverse.

use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest as _, Sha256};

use crate::crypto::{self, PublicKey, Signature, SignatureError};

/// Domain separation of request signatures.
pub const REQUEST_DOMAIN: &[u8] = b"docket/v1/request\0";
pub const AGENCY_HEADER: &str = "docket-agency";
pub const KEY_HEADER: &str = "docket-key";
pub const DATE_HEADER: &str = "docket-date";
pub const SIGNATURE_HEADER: &str = "docket-signature";
/// A session token from `POST /v1/session`, accepted on reads in place of
/// the four headers above until it expires (opaque to clients).
pub const SESSION_HEADER: &str = "docket-session";

/// The message a request signature covers.
pub fn request_message(method: &str, path_and_query: &str, date: &str, body: &[u8]) -> Vec<u8> {
    let body_hash: String = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
    let mut message = REQUEST_DOMAIN.to_vec();
    for (index, part) in [method, path_and_query, date, &body_hash].into_iter().enumerate() {
        if index > 0 {
            message.push(b'\n');
        }
        message.extend_from_slice(part.as_bytes());
    }
    message
}

/// Signs a request (deterministic: the same request and key give the same signature).
pub fn sign_request(key: &SigningKey, method: &str, path_and_query: &str, date: &str, body: &[u8]) -> Signature {
    Signature(key.sign(&request_message(method, path_and_query, date, body)).to_bytes())
}

/// Verifies a request signature under the acceptance rule of [`crypto::verify`].
pub fn verify_request(
    key: &PublicKey,
    method: &str,
    path_and_query: &str,
    date: &str,
    body: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    crypto::verify(key, &request_message(method, path_and_query, date, body), signature)
}
