//! A sorted map kept in shared chunks, so that the page cache's points
//! carried from one another share what did not change between them.
//!
//! Cloning a map copies one pointer per chunk (at most `CHUNK_ROWS_MAX`
//! entries each), not its entries; changing an entry copies that entry's
//! chunk only if another map still holds it (`Arc::make_mut`). A point
//! carried from a kept one with a few cases changed therefore costs the
//! chunk pointers and a few chunks, whatever the number of cases, where a
//! `BTreeMap` clone cost every entry (at 1.06M records, 100,000-300,000 per
//! computation: the bulk of a carried point's time, BENCH.md, issue 19).

use std::borrow::Borrow;
use std::sync::Arc;

/// Most entries in one chunk: a chunk that grows past it is split in two.
/// What one change copies against the pointers a clone copies (one per
/// chunk, a few hundred for the 120,000 cases of the 1.06M-record demo). An
/// entry is small (a key and an `Arc`) or a result kept inline (a public
/// entry, a finding: a few hundred bytes and their strings), so a copied
/// chunk costs microseconds to a few hundred; not tuned further (a carried
/// point at 1.06M records takes 0.2-0.3 ms with one case changed).
pub(crate) const CHUNK_ROWS_MAX: usize = 512;

/// A sorted map of `K` to `V` in shared chunks; every chunk holds at least
/// one entry, and the chunks are in key order, each sorted.
#[derive(Debug)]
pub(crate) struct Chunked<K, V> {
    chunks: Vec<Arc<Vec<(K, V)>>>,
    len: usize,
}

impl<K, V> Default for Chunked<K, V> {
    fn default() -> Self {
        Self { chunks: vec![], len: 0 }
    }
}

impl<K, V> Clone for Chunked<K, V> {
    fn clone(&self) -> Self {
        Self { chunks: self.chunks.clone(), len: self.len }
    }
}

impl<K: Ord + Clone, V: Clone> Chunked<K, V> {
    /// A map of `entries`, which must be sorted by key with no key twice.
    pub(crate) fn from_sorted(entries: Vec<(K, V)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "entries sorted, each key once");
        let len = entries.len();
        let mut chunks = vec![];
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            chunks.push(Arc::new(entries.by_ref().take(CHUNK_ROWS_MAX / 2).collect()));
        }
        Self { chunks, len }
    }

    /// The index of the chunk that holds `key` if any does: the first whose
    /// last key is at or after it (`chunks.len()` if none is).
    fn chunk_of<Q: Ord + ?Sized>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
    {
        self.chunks.partition_point(|chunk| chunk.last().is_some_and(|(last, _)| last.borrow() < key))
    }

    /// The value of `key`.
    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let chunk = self.chunks.get(self.chunk_of(key))?;
        let at = chunk.binary_search_by(|(k, _)| k.borrow().cmp(key)).ok()?;
        Some(&chunk[at].1)
    }

    /// Sets `key` to `value`; the value it had.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        if self.chunks.is_empty() {
            self.chunks.push(Arc::new(vec![(key, value)]));
            self.len = 1;
            return None;
        }
        // Past the last key: the last chunk takes it.
        let index = self.chunk_of(&key).min(self.chunks.len() - 1);
        let chunk = Arc::make_mut(&mut self.chunks[index]);
        match chunk.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(at) => return Some(std::mem::replace(&mut chunk[at].1, value)),
            Err(at) => chunk.insert(at, (key, value)),
        }
        self.len += 1;
        if chunk.len() > CHUNK_ROWS_MAX {
            let upper = chunk.split_off(chunk.len() / 2);
            self.chunks.insert(index + 1, Arc::new(upper));
        }
        None
    }

    /// Removes `key`; the value it had. A chunk is copied only if it holds the key.
    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let index = self.chunk_of(key);
        let at = self.chunks.get(index)?.binary_search_by(|(k, _)| k.borrow().cmp(key)).ok()?;
        let chunk = Arc::make_mut(&mut self.chunks[index]);
        let (_, value) = chunk.remove(at);
        if chunk.is_empty() {
            self.chunks.remove(index);
        }
        self.len -= 1;
        Some(value)
    }
}

impl<K, V> Chunked<K, V> {
    /// Entries in the map.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter().map(|(k, v)| (k, v)))
    }

    /// The values in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter().map(|(_, v)| v))
    }

    /// The keys in key order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter().map(|(k, _)| k))
    }

    /// The least entry.
    pub(crate) fn first(&self) -> Option<(&K, &V)> {
        self.chunks.first()?.first().map(|(k, v)| (k, v))
    }

    /// Each chunk's address and entries: what the maps of several points
    /// hold together is the sum over distinct addresses.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.chunks.iter().map(|chunk| (Arc::as_ptr(chunk) as usize, chunk.len()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;

    /// splitmix64, seeded: the test's randomness.
    fn random(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn check(map: &Chunked<u64, u64>, model: &BTreeMap<u64, u64>) {
        assert_eq!(map.len(), model.len());
        assert!(map.iter().map(|(k, v)| (*k, *v)).eq(model.iter().map(|(k, v)| (*k, *v))));
        assert_eq!(map.first().map(|(k, v)| (*k, *v)), model.first_key_value().map(|(k, v)| (*k, *v)));
        assert!(map.chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK_ROWS_MAX), "chunks within bounds");
    }

    #[test]
    fn the_map_agrees_with_a_btree_map_and_clones_are_independent() {
        let mut state = 7;
        let mut map: Chunked<u64, u64> = Chunked::default();
        let mut model = BTreeMap::new();
        let mut kept = vec![];
        for step in 0..20_000u64 {
            let key = random(&mut state) % 3_000;
            match random(&mut state) % 3 {
                0 => assert_eq!(map.remove(&key), model.remove(&key), "remove {key} at step {step}"),
                _ => assert_eq!(map.insert(key, step), model.insert(key, step), "insert {key} at step {step}"),
            }
            assert_eq!(map.get(&key), model.get(&key));
            if step % 2_000 == 0 {
                check(&map, &model);
                kept.push((map.clone(), model.clone()));
            }
        }
        check(&map, &model);
        // Changing a clone did not change the maps kept before.
        for (map, model) in &kept {
            check(map, model);
        }
        let sorted: Vec<(u64, u64)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        check(&Chunked::from_sorted(sorted), &model);
    }

    #[test]
    fn a_clone_shares_the_chunks_it_did_not_change() {
        let map = Chunked::from_sorted((0..10_000u64).map(|k| (k, k)).collect());
        let mut carried = map.clone();
        carried.insert(5_000, 0);
        carried.remove(&77);
        let before: std::collections::BTreeSet<usize> = map.chunks().map(|(at, _)| at).collect();
        let fresh = carried.chunks().filter(|(at, _)| !before.contains(at)).count();
        assert_eq!(fresh, 2, "only the two changed chunks were copied");
        assert_eq!(map.get(&5_000), Some(&5_000));
        assert_eq!(map.get(&77), Some(&77));
        assert_eq!(carried.get(&77), None);
    }
}
