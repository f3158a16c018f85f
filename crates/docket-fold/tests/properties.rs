//! Properties of the fold and the store over demo ledgers:
//!
//! * folding in one pass equals folding a prefix, closing, reopening and
//!   folding the rest (any split, any batch size);
//! * a rebuild equals the incremental store;
//! * views are byte-identical across two rebuilds;
//! * the store answers every view exactly as the in-memory fold does;
//! * a store built from another log is rebuilt, not trusted.

// Helpers outside #[test] functions panic on broken fixtures, like the tests do.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use docket_fold::case::{AsOf, Known};
use docket_fold::views::{self, Source};
use docket_fold::{Fold, Store, StoreLimits};
use docket_log::ledger::{self, Ledger};
use docket_log::Reader;
use docket_model::{PublicKey, SignedEvent, Timestamp};
use proptest::prelude::*;

/// Creates a demo ledger and appends its first `count` events, all with
/// system time asked as `t0`: the log makes them `t0 + seq` µs, so two ledgers
/// fed the same events in any batches are byte-identical.
fn demo_ledger(dir: &Path, subjects: u64, seed: u64, t0: i64, count: Option<usize>) -> (Vec<SignedEvent>, PublicKey) {
    let demo = docket_world::build(subjects, seed);
    let root = PublicKey(demo.registry_root.verifying_key().to_bytes());
    ledger::init(dir, "docket.invalid/prop", &docket_world::key(seed, "log"), root, None).unwrap();
    append(dir, &demo.events[..count.unwrap_or(demo.events.len())], t0);
    (demo.events, root)
}

fn append(dir: &Path, events: &[SignedEvent], t0: i64) {
    let mut ledger = Ledger::open(dir, docket_log::Config::default()).unwrap();
    for chunk in events.chunks(500) {
        for result in ledger.log.append_batch(chunk.to_vec(), Timestamp::from_micros(t0).unwrap()).unwrap() {
            result.unwrap();
        }
    }
}

/// After the demo world's last day, so that every act is recorded after it happened.
const T0: i64 = 1_793_548_800_000_000; // 2026-11-02T00:00:00+08:00

fn limits(batch: usize) -> StoreLimits {
    StoreLimits { batch_events: batch, registry_snapshot_events: 5, ..StoreLimits::default() }
}

/// Every view of every list, agency and subject at a few points, as JSON text.
fn all_views(source: &dyn Source, records: u64, now: Timestamp) -> String {
    let registry = source.registry(Known::All).unwrap();
    let points = [
        AsOf { known: Known::All, valid_at: now },
        AsOf { known: Known::Through(records / 2), valid_at: now },
        AsOf { known: Known::All, valid_at: Timestamp::parse("2024-06-01T00:00:00+08:00").unwrap() },
    ];
    let mut out = String::new();
    for as_of in points {
        out += &serde_json::to_string(&views::list_view(source, as_of, None, None).unwrap()).unwrap();
        out += &serde_json::to_string(&views::public_view(source, as_of, None).unwrap()).unwrap();
        out += &serde_json::to_string(&views::registry_view(source, as_of).unwrap()).unwrap();
        for (agency, _) in registry.agencies() {
            out += &serde_json::to_string(&views::enforcement_view(source, as_of, agency).unwrap()).unwrap();
        }
        let mut subjects = vec![];
        for (list, _) in registry.lists() {
            source.for_list(list, &mut |case| subjects.push(case.subject)).unwrap();
        }
        for subject in subjects {
            out += &serde_json::to_string(&views::subject_view(source, as_of, &subject).unwrap()).unwrap();
            for measure in ["restrict-air-travel", "bar-procurement"] {
                let measure = docket_model::Name::parse(measure).unwrap();
                out += &serde_json::to_string(&views::check(source, as_of, &subject, &measure, None).unwrap()).unwrap();
            }
        }
    }
    out
}

fn fold_of(dir: &Path, root: PublicKey) -> Fold {
    let mut fold = Fold::new(root);
    let mut failed = None;
    Reader::new(dir.join("segments"))
        .read_from(0, None, |frame| {
            let event = SignedEvent::from_wire(&frame.wire).unwrap();
            let time = Timestamp::from_micros(frame.system_time).unwrap();
            if let Err(error) = fold.apply(frame.seq, time, &event) {
                failed = Some(error);
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert!(failed.is_none(), "{failed:?}");
    fold
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn prefix_reopen_rest_equals_one_pass(seed in 0u64..1000, split in 0.0f64..1.0, batch in 1usize..400) {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let (events, _) = demo_ledger(one.path(), 30, seed, T0, None);
        let cut = (events.len() as f64 * split) as usize;
        demo_ledger(two.path(), 30, seed, T0, Some(cut));
        let (store, opened) = Store::open(two.path(), limits(batch)).unwrap();
        prop_assert_eq!(opened.folded, cut as u64);
        drop(store);
        append(two.path(), &events[cut..], T0);
        let (incremental, opened) = Store::open(two.path(), limits(batch)).unwrap();
        prop_assert_eq!(opened.folded, (events.len() - cut) as u64);
        prop_assert!(opened.rebuilt.is_none());
        let (one_pass, _) = Store::open(one.path(), limits(100_000)).unwrap();
        let dump = incremental.dump().unwrap();
        // The two logs hold the same records but were synced in different
        // batches, so their commit flags, and so the frame checksums in the
        // watermark, differ; everything folded from the records must not.
        let without_checksum = |dump: &str| -> String {
            dump.lines().map(|l| if l.starts_with("meta position") { &l[..30] } else { l }).collect::<Vec<_>>().join("\n")
        };
        prop_assert!(
            without_checksum(&dump) == without_checksum(&one_pass.dump().unwrap()),
            "prefix + reopen + rest differs from one pass"
        );
        let now = Timestamp::now();
        prop_assert!(all_views(&incremental, events.len() as u64, now) == all_views(&one_pass, events.len() as u64, now));
        // The incremental store equals a rebuild, table for table.
        drop(incremental);
        let (rebuilt, _) = Store::rebuild(two.path(), limits(batch)).unwrap();
        prop_assert!(dump == rebuilt.dump().unwrap(), "rebuild differs from incremental");
    }
}

#[test]
fn store_answers_as_the_fold_does_and_rebuilds_are_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (events, root) = demo_ledger(dir.path(), 60, 7, T0, None);
    let fold = fold_of(dir.path(), root);
    let now = Timestamp::now();
    let (store, opened) = Store::open(dir.path(), limits(97)).unwrap();
    assert_eq!(opened.records, events.len() as u64);
    let from_fold = all_views(&fold, events.len() as u64, now);
    let from_store = all_views(&store, events.len() as u64, now);
    assert!(from_fold.len() > 10_000, "the views are not empty");
    assert!(from_fold == from_store, "the store and the fold disagree");
    drop(store);
    let (first, _) = Store::rebuild(dir.path(), limits(1000)).unwrap();
    let first_views = all_views(&first, events.len() as u64, now);
    let first_dump = first.dump().unwrap();
    drop(first);
    let (second, _) = Store::rebuild(dir.path(), limits(13)).unwrap();
    assert_eq!(first_views, all_views(&second, events.len() as u64, now));
    assert_eq!(first_dump, second.dump().unwrap());
}

#[test]
fn a_store_from_another_log_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 10, 3, T0, None);
    let (store, opened) = Store::open(dir.path(), limits(50)).unwrap();
    assert!(opened.rebuilt.is_none());
    let records = store.records();
    drop(store);
    // Replace the log with another one (different times, same events): the
    // watermark's checksum no longer matches.
    let other = tempfile::tempdir().unwrap();
    demo_ledger(other.path(), 10, 3, T0 + 1, None);
    std::fs::remove_dir_all(dir.path().join("segments")).unwrap();
    copy_dir(&other.path().join("segments"), &dir.path().join("segments"));
    let (store, opened) = Store::open(dir.path(), limits(50)).unwrap();
    let reason = opened.rebuilt.expect("rebuilt");
    assert!(reason.contains("differs"), "{reason}");
    assert_eq!(store.records(), records);
    // A store claiming more records than the log has is rebuilt too.
    drop(store);
    let shorter = tempfile::tempdir().unwrap();
    demo_ledger(shorter.path(), 10, 3, T0, Some(40));
    std::fs::remove_dir_all(dir.path().join("segments")).unwrap();
    copy_dir(&shorter.path().join("segments"), &dir.path().join("segments"));
    let (_, opened) = Store::open(dir.path(), limits(50)).unwrap();
    assert!(opened.rebuilt.expect("rebuilt").contains("fewer"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
