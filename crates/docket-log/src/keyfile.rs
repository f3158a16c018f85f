//! Secret key files.
//!
//! ```text
//! docket-secret-key v1 ed25519
//! seed <64 hex digits>
//! public <64 hex digits>
//! ```
//!
//! The public line shows which key a file holds and is checked against the
//! seed on load. Files are created with mode 0600 and never overwritten
//! unless asked.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;

const HEADER: &str = "docket-secret-key v1 ed25519";

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} already exists; refusing to overwrite a key")]
    Exists { path: String },
    #[error("{path}: line {line}: {reason}")]
    Format { path: String, line: usize, reason: String },
}

/// Writes a key file with mode 0600.
pub fn write(path: &Path, key: &SigningKey, overwrite: bool) -> Result<(), KeyFileError> {
    let shown = path.display().to_string();
    let mut options = OpenOptions::new();
    options.write(true);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists { path: shown.clone() }
        } else {
            KeyFileError::Io { path: shown.clone(), source }
        }
    })?;
    #[cfg(unix)]
    {
        // An overwrite keeps the old file's mode; set it explicitly.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|source| KeyFileError::Io { path: shown.clone(), source })?;
    }
    let public = hex::encode(key.verifying_key().to_bytes());
    let text = format!("{HEADER}\nseed {}\npublic {public}\n", hex::encode(key.to_bytes()));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyFileError::Io { path: shown, source })
}

/// Reads a key file.
pub fn read(path: &Path) -> Result<SigningKey, KeyFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: shown.clone(), source })?;
    let format = |line: usize, reason: &str| KeyFileError::Format { path: shown.clone(), line, reason: reason.into() };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format(1, "not a docket key file (expected \"docket-secret-key v1 ed25519\")"));
    }
    let mut field = |line: usize, name: &str| -> Result<[u8; 32], KeyFileError> {
        let value = lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or_else(|| format(line, &format!("should start with \"{name} \"")))?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(value.trim(), &mut bytes).map_err(|_| format(line, "not 64 hex digits"))?;
        Ok(bytes)
    };
    let seed = field(2, "seed")?;
    let public = field(3, "public")?;
    let key = SigningKey::from_bytes(&seed);
    if key.verifying_key().to_bytes() != public {
        return Err(format(3, "the public key does not belong to the seed; the file is damaged"));
    }
    Ok(key)
}
