//! Writing a generated world into a new ledger directory.

use std::collections::BTreeSet;
use std::path::Path;

use docket_log::ledger::{self, Ledger, LedgerError};
use docket_model::event::{Body, CaseAction, RegistryEvent};
use docket_model::{EventId, PublicKey, SignedEvent, Timestamp};
use ed25519_dalek::SigningKey;

use crate::{build, key, Demo};

/// Most events per write (one `fdatasync` each) when [`write_ledger`] appends a world.
pub const DEMO_BATCH_EVENTS: usize = 4096;

/// Days after its date that a planted late recording is recorded: more than
/// the 7 working days the bundled rule sets allow, whatever the holidays.
pub const RECORDED_LATE_DAYS: i64 = 30;

const HOUR_MICROS: i64 = 3_600_000_000;
const DAY_MICROS: i64 = 24 * HOUR_MICROS;

/// When [`write_events`] records each of `events`: at 20:00 China time on
/// the day the event takes effect, or a decision is taken (an agency records
/// an act the day it does it), or [`RECORDED_LATE_DAYS`] later for those in `late`. The record is
/// the ledger's system time: a generated ledger looks as if it had run since
/// the world's first day, each case's acts in the order they took effect.
pub fn recording_times(events: &[SignedEvent], late: &BTreeSet<EventId>) -> Vec<Timestamp> {
    events
        .iter()
        .map(|signed| {
            let event = signed.event();
            // A decision is recorded the day it is taken, which may precede
            // the day it takes effect.
            let dated = match event.case().map(|case| &case.action) {
                Some(CaseAction::DesignationDecision { decided_at, .. }) => *decided_at,
                _ => event.effective_at,
            };
            let micros = dated.micros();
            // 20:00 in China (UTC+8) is 12:00 UTC of the same China day.
            let mut at = (micros + 8 * HOUR_MICROS).div_euclid(DAY_MICROS) * DAY_MICROS + 12 * HOUR_MICROS;
            at = at.max(micros);
            if late.contains(&signed.id()) {
                at += RECORDED_LATE_DAYS * DAY_MICROS;
            }
            Timestamp::from_micros(at).unwrap_or(event.effective_at)
        })
        .collect()
}

/// The order in which [`write_events`] appends `events` (indexes into it),
/// given their [`recording_times`]: by record time, then valid time, then
/// the order generated.
pub fn log_order(events: &[SignedEvent], times: &[Timestamp]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&index| (times[index], events[index].event().effective_at, index));
    order
}

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
/// agency's key under `keys/agencies/`, every event appended on its
/// recording day (one write a day, at most [`DEMO_BATCH_EVENTS`] events a
/// write), and a signed checkpoint. Returns the demo (keys and
/// planted violations) and the checkpoint.
pub fn write_ledger(dir: &Path, subjects: u64, seed: u64) -> Result<(Demo, String), WorldError> {
    let built = build(subjects, seed);
    let checkpoint = write_events(dir, seed, &built.registry_root, &built.events, &built.recorded_late)?;
    Ok((built, checkpoint))
}

/// Writes `events` (a generated world's, registry first, signed with keys of
/// `seed`) into a new ledger in `dir`, as [`write_ledger`] does, each
/// recorded at its [`recording_times`] (`late`: the planted late
/// recordings); returns the signed checkpoint. Its checkpoint origin,
/// `docket.invalid/demo-SEED-public-keys`, says that anyone can sign for it.
pub fn write_events(
    dir: &Path,
    seed: u64,
    registry_root: &SigningKey,
    events: &[SignedEvent],
    late: &BTreeSet<EventId>,
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
    let times = recording_times(events, late);
    let order = log_order(events, &times);
    // One write per recording time (a day), at most DEMO_BATCH_EVENTS events each.
    for group in order.chunk_by(|a, b| times[*a] == times[*b]) {
        for batch in group.chunks(DEMO_BATCH_EVENTS) {
            let signed: Vec<SignedEvent> = batch.iter().map(|&index| events[index].clone()).collect();
            let results = ledger.log.append_batch_with(signed, times[batch[0]], true).map_err(LedgerError::from)?;
            for (result, &index) in results.iter().zip(batch) {
                if let Err(refusal) = result {
                    let kind = events[index].event().kind().name();
                    return Err(WorldError::Refused { index, kind, reason: refusal.to_string() });
                }
            }
        }
    }
    Ok(ledger.checkpoint(&log_key)?)
}
