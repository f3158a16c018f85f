//! Deterministic keys for golden vectors, examples and tests.
//!
//! Never use these for anything real: anyone can derive them from the name.

use ed25519_dalek::SigningKey;
use sha2::{Digest as _, Sha256};

use crate::event::Signer;

/// The key named `name`: its seed is SHA-256 of `docket golden key: NAME`.
pub fn signing_key(name: &str) -> SigningKey {
    let seed: [u8; 32] = Sha256::digest(format!("docket golden key: {name}")).into();
    SigningKey::from_bytes(&seed)
}

/// The golden key of a signer: `registry-root` for the registry, the agency's name otherwise.
pub fn key_for(signer: &Signer) -> SigningKey {
    match signer {
        Signer::Registry => signing_key("registry-root"),
        Signer::Agency(agency) => signing_key(agency.as_str()),
    }
}
