//! A small fixed ledger for the export tests: the demo world of seed 1,
//! appended with a fixed system time (so every byte of an export is the
//! same on every run), and its projections.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;

use docket_fold::case::{AsOf, Known};
use docket_fold::{Store, StoreLimits};
use docket_log::ledger::{self, Ledger};
use docket_model::{PublicKey, Timestamp};

/// The demo world's seed.
pub const SEED: u64 = 1;

/// The system time every record is appended at (the log adds 1 µs per
/// record): the day after the generated worlds' last day.
pub fn recorded() -> Timestamp {
    Timestamp::parse("2026-11-02T00:00:00+08:00").unwrap()
}

/// Writes the demo of `subjects` subjects into a new ledger in `dir` at
/// the fixed system time and opens its projections.
pub fn fixed_ledger(dir: &Path, subjects: u64) -> Store {
    let demo = docket_world::build(subjects, SEED);
    let log_key = docket_world::key(SEED, "log");
    let root = PublicKey(demo.registry_root.verifying_key().to_bytes());
    ledger::init(dir, "docket.invalid/export-tests", &log_key, root, Some(&demo.registry_root)).unwrap();
    let mut ledger = Ledger::open(dir, docket_log::Config::default()).unwrap();
    for batch in demo.events.chunks(4096) {
        let results = ledger.log.append_batch_with(batch.to_vec(), recorded(), true).unwrap();
        assert!(results.iter().all(Result::is_ok), "a demo event was refused");
        assert_eq!(results.len(), batch.len());
    }
    drop(ledger);
    Store::open(dir, StoreLimits::default()).unwrap().0
}

/// The fixed point the golden vectors are taken at: everything recorded,
/// in force on 2025-06-01.
pub fn point(store: &Store) -> AsOf {
    AsOf {
        known: Known::Through(store.records() - 1),
        valid_at: Timestamp::parse("2025-06-01T00:00:00+08:00").unwrap(),
    }
}
