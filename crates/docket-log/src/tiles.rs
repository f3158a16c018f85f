//! The Merkle tree's full tiles on disk (C2SP tlog-tiles, `tile/<L>/<N>`:
//! 256 hashes of tree level 8·L, 32 bytes each, nothing else), with a
//! bounded cache of expanded tiles.
//!
//! A full tile is written once, when the tree completes it, and never
//! changes. Tiles are derived: the log is the record. A tile read from disk
//! is used only if its root equals the hash its parent holds for it (the
//! parent is the level above, and the levels the tree keeps in memory were
//! checked against the latest signed checkpoint when the ledger opened), so a
//! missing, torn or altered tile is never served: it is rebuilt from the
//! log's records and written again.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::merkle::{node_hash, Hash};
use crate::tree::{tile_path, TILE_WIDTH};

/// Tiles kept expanded in memory by default: 1,024 tiles of 511 hashes
/// (every level inside the tile), 16 MiB.
pub const TILE_CACHE_TILES: usize = 1024;

/// Hashes in an expanded tile: the 256 of its row and the 255 above them.
const EXPANDED: usize = 2 * TILE_WIDTH as usize - 1;

/// Gives the leaf hashes `start .. start + count` from the log, to rebuild a tile.
pub type LeafSource = Box<dyn Fn(u64, u64) -> Result<Vec<Hash>, String> + Send + Sync>;

/// A full tile with every level inside it: `node(k, j)` is the node at
/// height `k` (0 = the tile's row, 8 = its root) and index `j` in the tile.
#[derive(Debug)]
pub(crate) struct Expanded(Vec<Hash>);

impl Expanded {
    /// Expands a full row of 256 hashes.
    pub(crate) fn from_row(row: &[Hash]) -> Self {
        debug_assert_eq!(row.len(), TILE_WIDTH as usize);
        let mut hashes = Vec::with_capacity(EXPANDED);
        hashes.extend_from_slice(row);
        let (mut start, mut width) = (0, row.len());
        while width > 1 {
            for pair in 0..width / 2 {
                let (left, right) = (hashes[start + 2 * pair], hashes[start + 2 * pair + 1]);
                hashes.push(node_hash(&left, &right));
            }
            start += width;
            width /= 2;
        }
        Self(hashes)
    }

    /// A full tile from nodes already computed: `levels[k]` the 256 >> k
    /// nodes at height k (0..8) inside the tile, and its root.
    pub(crate) fn from_levels(levels: &[Vec<Hash>], root: Hash) -> Self {
        debug_assert!(levels.len() == 8 && levels.iter().enumerate().all(|(k, l)| l.len() == 256 >> k));
        let mut hashes = Vec::with_capacity(EXPANDED);
        levels.iter().for_each(|level| hashes.extend_from_slice(level));
        hashes.push(root);
        Self(hashes)
    }

    /// The node at height `k` (0..=8) and index `j` within the tile.
    pub(crate) fn node(&self, k: u32, j: u64) -> Hash {
        let offset = (EXPANDED + 1) - ((EXPANDED + 1) >> k);
        self.0[offset + j as usize]
    }

    /// The tile's row (256 hashes).
    pub(crate) fn row(&self) -> &[Hash] {
        &self.0[..TILE_WIDTH as usize]
    }

    /// The root of the tile's 256 hashes.
    pub(crate) fn root(&self) -> Hash {
        self.0[EXPANDED - 1]
    }
}

/// The bounded cache: evicts the tile loaded longest ago.
#[derive(Default)]
struct Cache {
    tiles: HashMap<(u8, u64), Arc<Expanded>>,
    order: VecDeque<(u8, u64)>,
}

/// Full tiles in a directory (a ledger's `tiles/`), cached.
pub struct TileStore {
    dir: PathBuf,
    cache_tiles: usize,
    cache: Mutex<Cache>,
    source: Option<LeafSource>,
}

impl std::fmt::Debug for TileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileStore").field("dir", &self.dir).field("cache_tiles", &self.cache_tiles).finish()
    }
}

/// A name no other writer uses for its temporary file.
static TEMPORARY: AtomicU64 = AtomicU64::new(0);

impl TileStore {
    /// Tiles under `dir` (files `dir/tile/<L>/<N>`), at most `cache_tiles`
    /// of them expanded in memory; `source` rebuilds a bad tile from the log.
    pub fn new(dir: &Path, cache_tiles: usize, source: Option<LeafSource>) -> Self {
        Self { dir: dir.to_owned(), cache_tiles: cache_tiles.max(1), cache: Mutex::default(), source }
    }

    fn path(&self, level: u8, index: u64) -> PathBuf {
        self.dir.join(tile_path(level, index, TILE_WIDTH))
    }

    /// A cached tile.
    pub(crate) fn cached(&self, level: u8, index: u64) -> Option<Arc<Expanded>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).tiles.get(&(level, index)).cloned()
    }

    /// Caches a tile, evicting the oldest past the limit.
    pub(crate) fn remember(&self, level: u8, index: u64, tile: Arc<Expanded>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.tiles.insert((level, index), tile).is_none() {
            cache.order.push_back((level, index));
        }
        while cache.order.len() > self.cache_tiles {
            if let Some(oldest) = cache.order.pop_front() {
                cache.tiles.remove(&oldest);
            }
        }
    }

    /// The tile's file as stored, if it has the size of a full tile.
    pub(crate) fn read(&self, level: u8, index: u64) -> Option<Vec<Hash>> {
        let bytes = std::fs::read(self.path(level, index)).ok()?;
        (bytes.len() == TILE_WIDTH as usize * 32)
            .then(|| bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect())
    }

    /// Writes a full tile unless the file already holds exactly it. Not
    /// synced: a tile lost in a crash is rebuilt when it is next needed.
    pub(crate) fn write(&self, level: u8, index: u64, row: &[Hash]) -> Result<(), String> {
        if self.read(level, index).as_deref() == Some(row) {
            return Ok(());
        }
        let path = self.path(level, index);
        let failed = |e: std::io::Error| format!("writing {}: {e}", path.display());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let unique = TEMPORARY.fetch_add(1, Ordering::Relaxed);
        let temporary = path.with_extension(format!("tmp-{}-{unique}", std::process::id()));
        let written = std::fs::File::create(&temporary).and_then(|mut file| file.write_all(&row.concat()));
        let renamed = written.and_then(|()| std::fs::rename(&temporary, &path));
        if renamed.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        renamed.map_err(failed)
    }

    /// The leaves `start .. start + count` from the log.
    pub(crate) fn leaves(&self, start: u64, count: u64) -> Result<Vec<Hash>, String> {
        let source = self.source.as_ref().ok_or("the tree has no log to rebuild a tile from")?;
        let leaves = source(start, count)?;
        if leaves.len() as u64 != count {
            return Err(format!("the log gave {} of the leaves {start}..{}", leaves.len(), start + count));
        }
        Ok(leaves)
    }
}

/// The C2SP tlog-tiles entry bundle of records `first .. end` (at most 256,
/// within one bundle): each entry as a big-endian u16 length and the bytes
/// the tree hashes ([`crate::entry`]). Shared by the server, which serves
/// bundles, and the publisher, which uploads them.
pub fn entry_bundle(reader: &crate::Reader, first: u64, end: u64) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut next = first;
    let mut failed = None;
    reader
        .read_from(first, None, |frame| {
            if frame.seq >= end {
                return std::ops::ControlFlow::Break(());
            }
            let entry = crate::entry(frame.seq, frame.system_time, &frame.wire);
            let Ok(length) = u16::try_from(entry.len()) else {
                failed = Some(format!(
                    "seq {}: its entry is {} bytes, more than the 65,535 a C2SP entry bundle can carry",
                    frame.seq,
                    entry.len()
                ));
                return std::ops::ControlFlow::Break(());
            };
            body.extend_from_slice(&length.to_be_bytes());
            body.extend_from_slice(&entry);
            next = frame.seq + 1;
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| format!("reading records {first}..{end}: {e}"))?;
    if let Some(error) = failed {
        return Err(error);
    }
    if next != end {
        return Err(format!("records {first}..{end}: the log ended at {next}"));
    }
    Ok(body)
}

/// Splits an entry bundle into its entries; an error names the entry that
/// is cut short.
pub fn split_bundle(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut entries = vec![];
    while !bytes.is_empty() {
        let Some((length, rest)) = bytes.split_first_chunk::<2>() else {
            return Err(format!("a truncated length after entry {}", entries.len()));
        };
        let length = u16::from_be_bytes(*length) as usize;
        if rest.len() < length {
            return Err(format!("entry {} is cut short ({} of {length} bytes)", entries.len(), rest.len()));
        }
        entries.push(&rest[..length]);
        bytes = &rest[length..];
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root};

    #[test]
    fn an_expanded_tile_holds_every_subtree_root() {
        let row: Vec<Hash> = (0..256u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let tile = Expanded::from_row(&row);
        assert_eq!(tile.root(), root(&row));
        assert_eq!(tile.row(), &row[..]);
        for k in 0..=8u32 {
            let width = 1usize << k;
            for j in 0..(256 >> k) as u64 {
                let start = j as usize * width;
                assert_eq!(tile.node(k, j), root(&row[start..start + width]), "height {k}, index {j}");
            }
        }
    }

    #[test]
    fn the_cache_keeps_its_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TileStore::new(dir.path(), 3, None);
        let row: Vec<Hash> = (0..256u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let tile = Arc::new(Expanded::from_row(&row));
        for index in 0..10 {
            store.remember(0, index, tile.clone());
        }
        assert!(store.cached(0, 6).is_none(), "evicted");
        assert!((7..10).all(|index| store.cached(0, index).is_some()));
        assert_eq!(store.cache.lock().expect("lock").tiles.len(), 3);
        store.write(0, 1, &row).expect("writes");
        assert_eq!(store.read(0, 1), Some(row));
        assert!(store.leaves(0, 1).is_err(), "no source");
    }
}
