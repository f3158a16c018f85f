//! Secret key files.
//!
//! Format (text, three lines):
//!
//! ```text
//! docket-secret-key v1 ed25519
//! seed <64 hex digits>
//! public <64 hex digits>
//! ```
//!
//! The public line lets a person see which key a file holds; it is checked
//! against the seed on load. Files are created with mode 0600 and never overwritten
//! without `--force`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use docket_model::PublicKey;
use ed25519_dalek::SigningKey;

const HEADER: &str = "docket-secret-key v1 ed25519";

/// Writes a new key file and prints the public key.
pub fn keygen(path: &Path, force: bool) -> Result<bool> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    write(path, &key, force)?;
    let public = PublicKey(key.verifying_key().to_bytes());
    println!("{public}");
    eprintln!(
        "wrote secret key to {} (mode 0600); the line above is its public key",
        path.display()
    );
    Ok(true)
}

/// Writes a key file with mode 0600.
pub fn write(path: &Path, key: &SigningKey, force: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| {
        if path.exists() && !force {
            format!(
                "{} already exists; use --force to overwrite it",
                path.display()
            )
        } else {
            format!("cannot create {}", path.display())
        }
    })?;
    #[cfg(unix)]
    {
        // create_new applied 0600 (less umask); a --force overwrite keeps the old mode, so set it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot set mode 0600 on {}", path.display()))?;
    }
    let public = hex::encode(key.verifying_key().to_bytes());
    let text = format!(
        "{HEADER}\nseed {}\npublic {public}\n",
        hex::encode(key.to_bytes())
    );
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a key file.
pub fn read(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        bail!(
            "{}: line 1 is not {HEADER:?}; is this a docket key file?",
            path.display()
        );
    }
    let field = |line: Option<&str>, number: usize, name: &str| -> Result<[u8; 32]> {
        let value = line
            .and_then(|line| line.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix(' '))
            .with_context(|| {
                format!(
                    "{}: line {number} should start with {name:?}",
                    path.display()
                )
            })?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(value.trim(), &mut bytes).with_context(|| {
            format!(
                "{}: line {number}: {name} is not 64 hex digits",
                path.display()
            )
        })?;
        Ok(bytes)
    };
    let seed = field(lines.next(), 2, "seed")?;
    let public = field(lines.next(), 3, "public")?;
    let key = SigningKey::from_bytes(&seed);
    if key.verifying_key().to_bytes() != public {
        bail!("{}: the public key on line 3 does not belong to the seed on line 2; the file is damaged", path.display());
    }
    Ok(key)
}
