//! C2SP `signed-note` (Ed25519 signatures, type 0x01) and `tlog-checkpoint`.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one line per
//! signature: `— <name> <base64(key id || signature)>`. The key id is the
//! first 4 bytes of `SHA-256(name || "\n" || 0x01 || public key)`. A verifier
//! key is written `<name>+<hex key id>+<base64(0x01 || public key)>`.
//! Signatures are checked with docket's one acceptance rule
//! (`docket_model::crypto::verify`).
//!
//! A checkpoint is a note whose text is `<origin>\n<size>\n<base64 root>\n`
//! followed by optional extension lines.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use docket_model::{PublicKey, Signature};
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Signature type byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
/// Most signature lines read from one note (C2SP asks verifiers for a limit).
pub const NOTE_SIGNATURES_MAX: usize = 100;
/// Largest note accepted.
pub const NOTE_BYTES_MAX: usize = 1 << 20;

/// Why a note or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("malformed key {key:?}: {reason}")]
    Key { key: String, reason: String },
    #[error("no signature by a known key (known: {known})")]
    Unverified { known: String },
    #[error("signature by {name} (key id {key_id}) does not verify")]
    BadSignature { name: String, key_id: String },
    #[error("malformed checkpoint: {0}")]
    Checkpoint(String),
}

/// A named Ed25519 key in the signed-note sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteKey {
    pub name: String,
    pub key: PublicKey,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl NoteKey {
    /// A key with the given name. Names may not contain '+' or white space.
    pub fn new(name: &str, key: PublicKey) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key {
                key: name.into(),
                reason: "name is empty or contains '+' or white space".into(),
            });
        }
        Ok(Self { name: name.into(), key })
    }

    /// The 4-byte key id.
    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, ED25519, &self.key)
    }

    /// `<name>+<hex key id>+<base64(0x01 || key)>`.
    pub fn verifier_string(&self) -> String {
        let mut typed = vec![ED25519];
        typed.extend_from_slice(&self.key.0);
        format!("{}+{}+{}", self.name, hex_id(self.key_id()), STANDARD.encode(typed))
    }

    /// Parses a verifier key string, checking the key id.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let fail = |reason: &str| NoteError::Key { key: text.into(), reason: reason.into() };
        let (name, id, key) = split_key(text).map_err(fail)?;
        let parsed = Self::new(name, PublicKey(key))?;
        check_id(&parsed, id).map_err(fail)?;
        Ok(parsed)
    }
}

/// A signed-note key id: `SHA-256(name || "\n" || signature type || key)[:4]`.
fn key_id(name: &str, signature_type: u8, key: &PublicKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', signature_type]);
    hasher.update(key.0);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn hex_id(id: [u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits `<name>+<hex id>+<base64(0x01 || 32 bytes)>` into its parts.
fn split_key(text: &str) -> Result<(&str, &str, [u8; 32]), &'static str> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected name+keyid+base64");
    };
    let typed = STANDARD.decode(material).map_err(|_| "key material is not base64")?;
    if typed.len() != 33 || typed[0] != ED25519 {
        return Err("key material is not 0x01 followed by 32 bytes of Ed25519 key");
    }
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&typed[1..]);
    Ok((name, id, bytes))
}

fn check_id(key: &NoteKey, id: &str) -> Result<(), &'static str> {
    if id == hex_id(key.key_id()) {
        Ok(())
    } else {
        Err("key id does not match name and key")
    }
}

/// Parses a Go-style private key `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`.
pub fn parse_private_key(text: &str) -> Result<(NoteKey, SigningKey), NoteError> {
    let fail = |reason: &str| NoteError::Key { key: "PRIVATE+KEY+…".into(), reason: reason.into() };
    let rest = text.strip_prefix("PRIVATE+KEY+").ok_or_else(|| fail("missing PRIVATE+KEY+ prefix"))?;
    let (name, id, seed) = split_key(rest).map_err(fail)?;
    let signing = SigningKey::from_bytes(&seed);
    let key = NoteKey::new(name, PublicKey(signing.verifying_key().to_bytes()))?;
    check_id(&key, id).map_err(fail)?;
    Ok((key, signing))
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must be non-empty and end with a newline".into()));
    }
    if text.contains("\n\n") || text.starts_with('\n') {
        return Err(NoteError::Malformed("text may not contain blank lines".into()));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed("text may not contain control characters other than newline".into()));
    }
    Ok(())
}

/// Signs `text` as a note: the text, a blank line, and one signature line.
pub fn sign(text: &str, key: &NoteKey, signing: &SigningKey) -> Result<String, NoteError> {
    check_text(text)?;
    let signature = signing.sign(text.as_bytes()).to_bytes();
    let mut blob = key.key_id().to_vec();
    blob.extend_from_slice(&signature);
    Ok(format!("{text}\n— {} {}\n", key.name, STANDARD.encode(blob)))
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    pub signature: Vec<u8>,
}

/// Splits a note into its text and signature lines, without verifying.
pub fn parse(note: &str) -> Result<(&str, Vec<NoteSignature>), NoteError> {
    if note.len() > NOTE_BYTES_MAX {
        return Err(NoteError::Malformed(format!("{} bytes, more than note_bytes_max = {NOTE_BYTES_MAX}", note.len())));
    }
    let split = note.rfind("\n\n").ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    check_text(text)?;
    if !signatures.ends_with('\n') {
        return Err(NoteError::Malformed("signature block must end with a newline".into()));
    }
    let mut out = Vec::new();
    for line in signatures.lines() {
        if out.len() == NOTE_SIGNATURES_MAX {
            return Err(NoteError::Malformed(format!(
                "more than note_signatures_max = {NOTE_SIGNATURES_MAX} signatures"
            )));
        }
        let rest = line
            .strip_prefix("— ")
            .ok_or_else(|| NoteError::Malformed(format!("signature line {line:?} does not start with '— '")))?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or_else(|| NoteError::Malformed(format!("signature line {line:?} has no signature")))?;
        let blob =
            STANDARD.decode(blob).map_err(|_| NoteError::Malformed(format!("signature of {name} is not base64")))?;
        if !valid_name(name) || blob.len() < 5 {
            return Err(NoteError::Malformed(format!("signature line {line:?} is malformed")));
        }
        out.push(NoteSignature {
            name: name.into(),
            key_id: [blob[0], blob[1], blob[2], blob[3]],
            signature: blob[4..].to_vec(),
        });
    }
    Ok((text, out))
}

/// Verifies a note against known keys; returns the text and the keys whose
/// signatures verified. Signatures by unknown keys are ignored, as C2SP says;
/// a signature by a known key that does not verify is an error.
pub fn open<'a>(note: &'a str, known: &[NoteKey]) -> Result<(&'a str, Vec<NoteKey>), NoteError> {
    let (text, signatures) = parse(note)?;
    let mut verified = Vec::new();
    for signature in &signatures {
        let Some(key) = known.iter().find(|k| k.name == signature.name && k.key_id() == signature.key_id) else {
            continue;
        };
        let bytes: [u8; 64] = signature
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| NoteError::BadSignature { name: key.name.clone(), key_id: hex_id(key.key_id()) })?;
        docket_model::crypto::verify(&key.key, text.as_bytes(), &Signature(bytes))
            .map_err(|_| NoteError::BadSignature { name: key.name.clone(), key_id: hex_id(key.key_id()) })?;
        verified.push(key.clone());
    }
    if verified.is_empty() {
        let known = known.iter().map(NoteKey::verifier_string).collect::<Vec<_>>().join(", ");
        return Err(NoteError::Unverified { known });
    }
    Ok((text, verified))
}

/// The body of a C2SP `tlog-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique name of the log, e.g. `docket.example/ledger`.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Optional extension lines, without their newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text.
    pub fn to_text(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses note text (not the signatures): origin, decimal size without
    /// leading zeros, base64 of a 32-byte root, then extension lines.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let fail = |reason: &str| NoteError::Checkpoint(reason.into());
        let mut lines = text.strip_suffix('\n').ok_or_else(|| fail("text must end with a newline"))?.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| fail("missing origin line"))?;
        let size_line = lines.next().ok_or_else(|| fail("missing size line"))?;
        if size_line.is_empty()
            || (size_line.len() > 1 && size_line.starts_with('0'))
            || !size_line.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(fail("size is not a decimal number without leading zeros"));
        }
        let size = size_line.parse().map_err(|_| fail("size does not fit in 64 bits"))?;
        let root_line = lines.next().ok_or_else(|| fail("missing root hash line"))?;
        let root: Hash = STANDARD
            .decode(root_line)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| fail("root hash is not base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines.map(String::from).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(fail("blank extension line"));
        }
        Ok(Self { origin: origin.into(), size, root, extensions })
    }
}

/// The signature type byte of C2SP `tlog-cosignature` v1 (Ed25519) key ids.
const COSIGNATURE_V1: u8 = 0x04;

/// A witness (cosigner) key: C2SP `tlog-cosignature`, Ed25519, v1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    pub name: String,
    pub key: PublicKey,
}

impl WitnessKey {
    pub fn new(name: &str, key: PublicKey) -> Result<Self, NoteError> {
        NoteKey::new(name, key).map(|k| Self { name: k.name, key: k.key })
    }

    /// `SHA-256(name || "\n" || 0x04 || key)[:4]`.
    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, COSIGNATURE_V1, &self.key)
    }
}

/// What a v1 cosignature signs: `cosignature/v1`, the time line, and the
/// whole note text (the checkpoint, extension lines included).
pub fn cosigned_message(text: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

/// A cosignature line over a checkpoint's text, made at `timestamp` (POSIX seconds).
pub fn cosign(text: &str, witness: &WitnessKey, signing: &SigningKey, timestamp: u64) -> Result<String, NoteError> {
    check_text(text)?;
    if timestamp > i64::MAX as u64 {
        return Err(NoteError::Malformed("cosignature timestamp above 2^63 - 1".into()));
    }
    let signature = signing.sign(&cosigned_message(text, timestamp)).to_bytes();
    let mut blob = witness.key_id().to_vec();
    blob.extend_from_slice(&timestamp.to_be_bytes());
    blob.extend_from_slice(&signature);
    Ok(format!("— {} {}\n", witness.name, STANDARD.encode(blob)))
}

/// Verifies one signature line as `witness`'s cosignature of `text`; returns its timestamp.
pub fn verify_cosignature(text: &str, witness: &WitnessKey, line: &NoteSignature) -> Result<u64, NoteError> {
    let bad = || NoteError::BadSignature { name: witness.name.clone(), key_id: hex_id(witness.key_id()) };
    if line.name != witness.name || line.key_id != witness.key_id() || line.signature.len() != 8 + 64 {
        return Err(bad());
    }
    let (time, signature) = line.signature.split_at(8);
    let timestamp = u64::from_be_bytes(time.try_into().map_err(|_| bad())?);
    if timestamp > i64::MAX as u64 {
        return Err(bad());
    }
    let signature: [u8; 64] = signature.try_into().map_err(|_| bad())?;
    docket_model::crypto::verify(&witness.key, &cosigned_message(text, timestamp), &Signature(signature))
        .map_err(|_| bad())?;
    Ok(timestamp)
}
