//! `docket keygen`, over the key file format of `docket_log::keyfile`.

use std::path::Path;

use anyhow::Result;
pub use docket_log::keyfile::{read, write};
use docket_model::PublicKey;
use ed25519_dalek::SigningKey;

/// Writes a new key file and prints the public key.
pub fn keygen(path: &Path, force: bool) -> Result<bool> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    write(path, &key, force)?;
    println!("{}", PublicKey(key.verifying_key().to_bytes()));
    eprintln!("wrote secret key to {} (mode 0600); the line above is its public key", path.display());
    Ok(true)
}
