//! A small fixed ledger for the export tests: the demo world of seed 1
//! (deterministic, record times included), and its projections.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;

use docket_fold::case::{AsOf, Known};
use docket_fold::{Store, StoreLimits};
use docket_model::Timestamp;

/// The demo world's seed.
pub const SEED: u64 = 1;

/// Writes the demo of `subjects` subjects into a new ledger in `dir` (each
/// act recorded on its own day, so every byte of an export is the same on
/// every run) and opens its projections.
pub fn fixed_ledger(dir: &Path, subjects: u64) -> Store {
    docket_world::write_ledger(dir, subjects, SEED).unwrap();
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
