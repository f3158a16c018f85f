//! Writing a generated world into a new ledger directory.

use std::path::Path;

use docket_log::ledger::{self, Ledger, LedgerError};
use docket_model::event::{Body, RegistryEvent};
use docket_model::{PublicKey, SignedEvent, Timestamp};
use ed25519_dalek::SigningKey;

use crate::{build, key, Demo};

/// Events per write (one `fdatasync` each) when [`write_ledger`] appends a world.
pub const DEMO_BATCH_EVENTS: usize = 4096;

/// Why a world could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The ledger refused a generated event: the generator is wrong.
    #[error("generated event {index} ({kind}) refused: {reason}")]
    Refused { index: usize, kind: &'static str, reason: String },
}

/// Writes the demo of `subjects` subjects into a new ledger in `dir`: the
/// demo's log key and registry root (its secret key under `keys/`), every
/// agency's key under `keys/agencies/`, every event appended in batches of
/// [`DEMO_BATCH_EVENTS`], and a signed checkpoint. Returns the demo (keys and
/// planted violations) and the checkpoint.
pub fn write_ledger(dir: &Path, subjects: u64, seed: u64) -> Result<(Demo, String), WorldError> {
    let built = build(subjects, seed);
    let checkpoint = write_events(dir, seed, &built.registry_root, &built.events)?;
    Ok((built, checkpoint))
}

/// Writes `events` (a generated world's, registry first, signed with keys of
/// `seed`) into a new ledger in `dir`, as [`write_ledger`] does; returns the
/// signed checkpoint. Its checkpoint origin,
/// `docket.invalid/demo-SEED-public-keys`, says that anyone can sign for it.
pub fn write_events(
    dir: &Path,
    seed: u64,
    registry_root: &SigningKey,
    events: &[SignedEvent],
) -> Result<String, WorldError> {
    let log_key = key(seed, "log");
    let root = PublicKey(registry_root.verifying_key().to_bytes());
    ledger::init(dir, &format!("docket.invalid/demo-{seed}-public-keys"), &log_key, root, Some(registry_root))?;
    let agencies = dir.join("keys/agencies");
    std::fs::create_dir_all(&agencies)
        .map_err(|e| LedgerError::Config { path: agencies.display().to_string(), reason: e.to_string() })?;
    for event in events {
        if let Body::Registry(RegistryEvent::AgencyRegistered { agency, .. }) = &event.event().body {
            docket_log::keyfile::write(&agencies.join(format!("{agency}.key")), &key(seed, agency.as_str()), false)
                .map_err(LedgerError::from)?;
        }
    }
    let mut ledger = Ledger::open(dir, docket_log::Config::default())?;
    for (number, batch) in events.chunks(DEMO_BATCH_EVENTS).enumerate() {
        let results =
            ledger.log.append_batch_with(batch.to_vec(), Timestamp::now(), true).map_err(LedgerError::from)?;
        for (offset, (result, event)) in results.iter().zip(batch).enumerate() {
            if let Err(refusal) = result {
                return Err(WorldError::Refused {
                    index: number * DEMO_BATCH_EVENTS + offset,
                    kind: event.event().kind().name(),
                    reason: refusal.to_string(),
                });
            }
        }
    }
    Ok(ledger.checkpoint(&log_key)?)
}
