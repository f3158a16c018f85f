//! The public list's delta: what changed between two points of the public
//! list, as ADD, MOD and DEL of entries keyed by list and case number, for
//! integrators who keep a copy of the list.
//!
//! A point is a number of records (what the ledger held) and a valid time
//! (what was in force then), so a delta carries both what was recorded
//! since and what time did: a term that ran out is a DEL.
//!
//! * [`between`]: the changes between two points over any [`Source`];
//! * [`of_store`]: the delta the API serves, from a cursor (a number of
//!   records) to the store's watermark, in force now;
//! * [`diff`]: the comparison of two lists of entries.

use std::collections::BTreeMap;

use serde::Serialize;

use docket_model::{ListId, Timestamp};

use crate::case::{AsOf, Known};
use crate::views::{public_view, PublicEntry, Source};
use crate::{FoldError, Store};

/// What happened to one entry of the public list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Op {
    /// The entry is new on the list.
    Add,
    /// The entry was on the list and changed (the entry is the new one).
    Mod,
    /// The entry left the list (the entry is the old one).
    Del,
}

/// One change to the public list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Change {
    pub op: Op,
    pub entry: PublicEntry,
}

/// One end of a delta: the public list as the ledger held it through its
/// first `records` records, in force at `valid_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Records the ledger held (0: an empty list).
    pub records: u64,
    /// What was in force then.
    pub valid_at: Timestamp,
}

/// The delta the API serves (`/v1/delta`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Delta {
    /// The cursor the delta starts from (records).
    pub from: u64,
    /// The cursor of the next delta: the records the new side holds.
    pub cursor: u64,
    /// The valid time of the new side.
    pub valid_at: Timestamp,
    /// ADD and MOD in (list, number) order, then DEL in (list, number) order.
    pub changes: Vec<Change>,
}

/// Why a delta could not be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaError {
    /// The cursor is past what the projections hold.
    #[error("cursor {cursor}: the projections hold {records} records")]
    CursorAhead { cursor: u64, records: u64 },
    #[error(transparent)]
    Fold(#[from] FoldError),
}

/// The public list's entries at `point` (none at 0 records), on `list` or on every list.
pub fn entries_at(source: &dyn Source, point: Point, list: Option<&ListId>) -> Result<Vec<PublicEntry>, FoldError> {
    let Some(last) = point.records.checked_sub(1) else { return Ok(vec![]) };
    let as_of = AsOf { known: Known::Through(last), valid_at: point.valid_at };
    Ok(public_view(source, as_of, list)?.entries)
}

/// The changes from the public list at `old` to the public list at `new`.
pub fn between(source: &dyn Source, old: Point, new: Point, list: Option<&ListId>) -> Result<Vec<Change>, FoldError> {
    let before = entries_at(source, old, list)?;
    let after = entries_at(source, new, list)?;
    Ok(diff(&before, &after))
}

/// The delta from `cursor` (records) to the store's watermark: the old side
/// is the public list as the ledger held it before `cursor`, in force when
/// that record was made; the new side is the list through the watermark, in
/// force at `now`. A cursor past the watermark is refused.
pub fn of_store(store: &Store, cursor: u64, list: Option<&ListId>, now: Timestamp) -> Result<Delta, DeltaError> {
    let records = store.records();
    if cursor > records {
        return Err(DeltaError::CursorAhead { cursor, records });
    }
    let then = match cursor.checked_sub(1) {
        Some(last) => store.time_of(last)?.unwrap_or(now),
        None => now,
    };
    let old = Point { records: cursor, valid_at: then };
    let new = Point { records, valid_at: now };
    let changes = between(store, old, new, list)?;
    Ok(Delta { from: cursor, cursor: records, valid_at: now, changes })
}

/// The changes from `before` to `after`, entries keyed by (list, case
/// number): ADD and MOD in key order, then DEL in key order.
pub fn diff<'a>(
    before: impl IntoIterator<Item = &'a PublicEntry>,
    after: impl IntoIterator<Item = &'a PublicEntry>,
) -> Vec<Change> {
    let key = |e: &PublicEntry| (e.list.to_string(), e.number.to_string());
    let before: BTreeMap<_, _> = before.into_iter().map(|e| (key(e), e)).collect();
    let after: BTreeMap<_, _> = after.into_iter().map(|e| (key(e), e)).collect();
    let mut changes = vec![];
    for (k, entry) in &after {
        match before.get(k) {
            None => changes.push(Change { op: Op::Add, entry: (*entry).clone() }),
            Some(previous) if previous != entry => changes.push(Change { op: Op::Mod, entry: (*entry).clone() }),
            Some(_) => {}
        }
    }
    for (k, entry) in &before {
        if !after.contains_key(k) {
            changes.push(Change { op: Op::Del, entry: (*entry).clone() });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Fold;
    use docket_model::PublicKey;

    /// The demo world folded in memory, recorded one µs apart from its last
    /// day, and that point's valid time.
    fn demo() -> (Fold, u64, Timestamp) {
        let world = docket_world::build(200, 7);
        let mut fold = Fold::new(PublicKey(world.registry_root.verifying_key().to_bytes()));
        let start = docket_world::worlds_last_day().micros();
        for (seq, event) in (0u64..).zip(&world.events) {
            let time = Timestamp::from_micros(start + i64::try_from(seq).unwrap()).unwrap();
            fold.apply(seq, time, event).unwrap();
        }
        let now = Timestamp::from_micros(start + i64::try_from(world.events.len()).unwrap()).unwrap();
        let records = fold.next_seq();
        (fold, records, now)
    }

    #[test]
    fn from_nothing_everything_is_added_and_to_the_same_point_nothing_changes() {
        let (fold, records, now) = demo();
        let whole = Point { records, valid_at: now };
        let listed = entries_at(&fold, whole, None).unwrap();
        assert!(!listed.is_empty(), "the demo publishes designations");
        let changes = between(&fold, Point { records: 0, valid_at: now }, whole, None).unwrap();
        assert_eq!(changes.len(), listed.len());
        assert!(changes.iter().all(|change| change.op == Op::Add));
        assert_eq!(between(&fold, whole, whole, None).unwrap(), vec![]);
    }

    #[test]
    fn diff_names_added_changed_and_removed_entries_in_key_order() {
        let (fold, records, now) = demo();
        let entries = entries_at(&fold, Point { records, valid_at: now }, None).unwrap();
        assert!(entries.len() >= 3, "{} entries", entries.len());
        let before = entries[..entries.len() - 1].to_vec();
        let mut after = entries[1..].to_vec();
        after[0].contested = !after[0].contested;
        let changes = diff(&before, &after);
        let ops: Vec<(Op, &str)> = changes.iter().map(|c| (c.op, c.entry.number.as_str())).collect();
        let last = entries.last().unwrap();
        assert!(ops.contains(&(Op::Add, last.number.as_str())), "{ops:?}");
        assert!(ops.contains(&(Op::Mod, entries[1].number.as_str())), "{ops:?}");
        assert_eq!(ops.last(), Some(&(Op::Del, entries[0].number.as_str())), "{ops:?}");
        assert_eq!(changes.len(), 3, "{ops:?}");
        let json = serde_json::to_value(&changes[changes.len() - 1]).unwrap();
        assert_eq!(json["op"], "DEL");
    }
}
