//! Deterministic generated worlds: the demo, the national world of the
//! benchmarks, and the ledgers written from them.
//!
//! * [`build`]: the demo, a registry with three lists (court judgment
//!   defaulters, civil aviation, tax), 24 agencies, 32 catalogued measures
//!   and their MOUs, and `subjects` cases that run the whole lifecycle, with
//!   a known number of procedural violations of each kind ([`Violation`]);
//! * [`World::national`] with [`registry_events`] and [`national_chunk`]: the
//!   national-scale world of the benchmarks, seven lists, 60 agencies, 150
//!   catalogued measures, MOUs binding 10 to 45 agencies, and cases opening
//!   over ten years (2016 to 2025), generated in independent chunks so that
//!   all cores can sign them and the result does not depend on how many;
//! * [`write_ledger`] and [`write_events`]: a new ledger directory holding a
//!   world, its keys and a signed checkpoint.
//!
//! Everything (keys, identifiers, times, choices) follows from the seed, and
//! every key is derived from a public string: a generated world is for
//! demonstrations, tests and benchmarks, never for a real ledger.
//!
//! Architecture invariant: this crate only produces events and writes them
//! through docket-log's public API; nothing in production depends on it
//! except `docket demo` and `docket serve` without `--dir`.

mod cases;
mod ledger;
mod random;
mod registry;
mod violation;
mod world;

use std::collections::{BTreeMap, BTreeSet};

use docket_model::{EventId, Name, SignedEvent, Uscc};
use ed25519_dalek::SigningKey;
use sha2::{Digest as _, Sha256};

pub use cases::{build, national_chunk, NATIONAL_CHUNK_SUBJECTS, NATIONAL_VIOLATION_EVERY};
pub use ledger::{
    log_order, recording_times, write_events, write_ledger, WorldError, DEMO_BATCH_EVENTS, RECORDED_LATE_DAYS,
};
pub use registry::registry_events;
pub use violation::Violation;
pub use world::{worlds_last_day, World};

/// A world's events and what was planted in them.
#[derive(Debug)]
pub struct Demo {
    pub registry_root: SigningKey,
    pub events: Vec<SignedEvent>,
    /// Number of cases planted with each violation (one violation per case at most).
    pub violations: BTreeMap<Violation, u64>,
    /// The ground truth: case number and the violation planted in it.
    pub planted: Vec<(String, Violation)>,
    /// Events that [`write_events`] records [`RECORDED_LATE_DAYS`] after
    /// their day instead of on it (the planted late recordings).
    pub recorded_late: BTreeSet<EventId>,
}

/// The deterministic key named `name` for world seed `seed` (public: anyone
/// can derive it).
pub fn key(seed: u64, name: &str) -> SigningKey {
    let digest: [u8; 32] = Sha256::digest(format!("docket demo key {seed}: {name}")).into();
    SigningKey::from_bytes(&digest)
}

/// The Unified Social Credit Code numbered `index` (`91110000`, the index in
/// nine digits, then the check character): subjects of the benchmark
/// workloads and of tests that need many distinct, valid codes.
pub fn numbered_uscc(index: u64) -> Uscc {
    let first = format!("91110000{index:09}");
    let check = Uscc::check_character(first.as_bytes());
    Uscc::parse(&format!("{first}{check}")).unwrap_or_else(|error| unreachable!("a generated code is valid: {error}"))
}

fn name(text: &str) -> Name {
    Name::parse(text).unwrap_or_else(|error| unreachable!("generated names are valid: {error}"))
}
