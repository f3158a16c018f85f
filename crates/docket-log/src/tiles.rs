//! The Merkle tree's full tiles on disk (C2SP tlog-tiles, `tile/<L>/<N>`:
//! 256 hashes of tree level 8·L, 32 bytes each, nothing else), their inner
//! nodes (`inner/<L>`, below), and bounded caches of what was read.
//!
//! A full tile is written once, when the tree completes it, and never
//! changes. Tiles are derived: the log is the record. Nothing read from
//! disk is used before it is checked against the hash its parent holds for
//! it (the parent is the level above, and the levels the tree keeps in
//! memory were checked against the latest signed checkpoint when the ledger
//! opened), so a missing, torn or altered tile is never served: it is
//! rebuilt from the log's records and written again.
//!
//! **Inner nodes** (`inner/<L>`, one file per tile level): for every full
//! tile of level L, its 16 nodes at height 4 (each the root of 16 hashes of
//! the tile's row), so that one node of a tile costs about 30 SHA-256, not
//! the 255 of expanding the whole tile: the 16 nodes hash up to the tile's
//! root (15 hashes, checked against the parent), and the 16 row hashes
//! under the node's height-4 ancestor, read from the tile file, hash up to
//! that node (15 hashes, checked against it). Stored form (golden vector
//! `tests/golden/log-tree-inner.json`): a 16-byte header
//! ([`INNER_MAGIC`], [`INNER_FORMAT`] as u32 BE, the tile level as u32 BE),
//! then tile N's 16 hashes at offset `16 + 512·N`. Written beside the tile,
//! not synced: an entry that is missing, torn, a hole or wrong fails its
//! check, and the node is then taken from the whole tile (the old path) and
//! the entry written again. A file of another format is emptied and refilled.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::merkle::{node_hash, Hash};
use crate::tree::{tile_path, STORED_TILE_LEVELS, TILE_WIDTH};

/// Tiles kept expanded in memory by default: 1,024 tiles of 511 hashes
/// (every level inside the tile), 16 MiB.
pub const TILE_CACHE_TILES: usize = 1024;

/// Checked inner nodes kept per tile level: 4,096 tiles' heights 4-8 (31
/// hashes, 992 bytes each), 3.9 MiB a level.
pub const INNER_CACHE_TILES: usize = 4096;

/// Checked groups of 16 row hashes kept per tile level, with the nodes
/// above them up to height 4 (31 hashes, 992 bytes each): 3.9 MiB a level.
pub const GROUP_CACHE_GROUPS: usize = 4096;

/// Row hashes under one node at height 4 of a tile: a group.
pub const GROUP_WIDTH: u64 = 16;

/// The inner-node file's first 8 bytes.
pub const INNER_MAGIC: [u8; 8] = *b"dktinner";

/// The inner-node file's format; a file of another is emptied and refilled.
pub const INNER_FORMAT: u32 = 1;

/// Bytes before the first entry of an inner-node file.
const INNER_HEADER_BYTES: u64 = 16;

/// Bytes of one tile's entry: its 16 nodes at height 4.
const INNER_ENTRY_BYTES: u64 = (TILE_WIDTH / GROUP_WIDTH) * 32;

/// Gives the leaf hashes `start .. start + count` from the log, to rebuild a tile.
pub type LeafSource = Box<dyn Fn(u64, u64) -> Result<Vec<Hash>, String> + Send + Sync>;

/// A complete binary tree over a row of a power-of-two width, with every
/// level above the row: `node(k, j)` is the node at height `k` (0 = the
/// row, log2(width) = the root) and index `j`. A tile is one of width 256
/// (511 hashes); a tile's inner nodes and a group are ones of width 16.
#[derive(Debug)]
pub(crate) struct Expanded(Vec<Hash>);

impl Expanded {
    /// Expands a row (a power of two wide).
    pub(crate) fn from_row(row: &[Hash]) -> Self {
        debug_assert!(row.len().is_power_of_two());
        let mut hashes = Vec::with_capacity(2 * row.len() - 1);
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
        let mut hashes = Vec::with_capacity(2 * TILE_WIDTH as usize - 1);
        levels.iter().for_each(|level| hashes.extend_from_slice(level));
        hashes.push(root);
        Self(hashes)
    }

    /// The node at height `k` and index `j`.
    pub(crate) fn node(&self, k: u32, j: u64) -> Hash {
        let all = self.0.len() + 1;
        self.0[all - (all >> k) + j as usize]
    }

    /// The row.
    pub(crate) fn row(&self) -> &[Hash] {
        &self.0[..self.0.len().div_ceil(2)]
    }

    /// The root of the row.
    pub(crate) fn root(&self) -> Hash {
        self.0[self.0.len() - 1]
    }
}

/// A bounded cache: evicts the entry loaded longest ago.
struct Bounded<K, V> {
    entries: HashMap<K, Arc<V>>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: std::hash::Hash + Eq + Copy, V> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Self { entries: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    fn get(&self, key: &K) -> Option<Arc<V>> {
        self.entries.get(key).cloned()
    }

    fn insert(&mut self, key: K, value: Arc<V>) {
        if self.entries.insert(key, value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.entries.remove(&oldest);
            }
        }
    }
}

/// A cache behind a lock that a panic elsewhere cannot leave half-written.
struct Shared<K, V>(Mutex<Bounded<K, V>>);

impl<K: std::hash::Hash + Eq + Copy, V> Shared<K, V> {
    fn new(capacity: usize) -> Self {
        Self(Mutex::new(Bounded::new(capacity)))
    }
    fn get(&self, key: &K) -> Option<Arc<V>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(key)
    }
    fn insert(&self, key: K, value: Arc<V>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(key, value);
    }
}

/// The path of the inner-node file of tile level `level`, under the tiles' directory.
pub fn inner_path(level: u8) -> String {
    format!("inner/{level}")
}

/// The inner-node file's header for tile level `level`.
pub fn inner_header(level: u8) -> [u8; INNER_HEADER_BYTES as usize] {
    let mut header = [0; INNER_HEADER_BYTES as usize];
    header[..8].copy_from_slice(&INNER_MAGIC);
    header[8..12].copy_from_slice(&INNER_FORMAT.to_be_bytes());
    header[12..].copy_from_slice(&u32::from(level).to_be_bytes());
    header
}

/// Full tiles in a directory (a ledger's `tiles/`), cached.
pub struct TileStore {
    dir: PathBuf,
    cache: Shared<(u8, u64), Expanded>,
    /// Per tile level: a tile's checked heights 4-8 (an [`Expanded`] of width 16).
    inner: [Shared<u64, Expanded>; STORED_TILE_LEVELS as usize],
    /// Per tile level: a checked group (tile, group) of 16 row hashes, expanded.
    groups: [Shared<(u64, u64), Expanded>; STORED_TILE_LEVELS as usize],
    /// Per tile level: the inner-node file, opened on first use (`None`: unusable here).
    inner_files: [OnceLock<Option<File>>; STORED_TILE_LEVELS as usize],
    /// Tiles read whole from disk and expanded (255 hashes each), for tests
    /// that check a node was found the short way.
    whole_reads: AtomicU64,
    source: Option<LeafSource>,
}

impl std::fmt::Debug for TileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileStore").field("dir", &self.dir).finish()
    }
}

/// A name no other writer uses for its temporary file.
static TEMPORARY: AtomicU64 = AtomicU64::new(0);

impl TileStore {
    /// Tiles under `dir` (files `dir/tile/<L>/<N>`, inner nodes in
    /// `dir/inner/<L>`), at most `cache_tiles` of them expanded in memory;
    /// `source` rebuilds a bad tile from the log.
    pub fn new(dir: &Path, cache_tiles: usize, source: Option<LeafSource>) -> Self {
        Self {
            dir: dir.to_owned(),
            cache: Shared::new(cache_tiles),
            inner: std::array::from_fn(|_| Shared::new(INNER_CACHE_TILES)),
            groups: std::array::from_fn(|_| Shared::new(GROUP_CACHE_GROUPS)),
            inner_files: std::array::from_fn(|_| OnceLock::new()),
            whole_reads: AtomicU64::new(0),
            source,
        }
    }

    fn path(&self, level: u8, index: u64) -> PathBuf {
        self.dir.join(tile_path(level, index, TILE_WIDTH))
    }

    /// A cached tile.
    pub(crate) fn cached(&self, level: u8, index: u64) -> Option<Arc<Expanded>> {
        self.cache.get(&(level, index))
    }

    /// Caches a tile, evicting the oldest past the limit.
    pub(crate) fn remember(&self, level: u8, index: u64, tile: Arc<Expanded>) {
        self.cache.insert((level, index), tile);
    }

    /// A tile's checked inner nodes, if cached.
    pub(crate) fn cached_inner(&self, level: u8, index: u64) -> Option<Arc<Expanded>> {
        self.inner[level as usize].get(&index)
    }

    /// Caches a tile's checked inner nodes.
    pub(crate) fn remember_inner(&self, level: u8, index: u64, inner: Arc<Expanded>) {
        self.inner[level as usize].insert(index, inner);
    }

    /// A checked group, if cached.
    pub(crate) fn cached_group(&self, level: u8, index: u64, group: u64) -> Option<Arc<Expanded>> {
        self.groups[level as usize].get(&(index, group))
    }

    /// Caches a checked group.
    pub(crate) fn remember_group(&self, level: u8, index: u64, group: u64, hashes: Arc<Expanded>) {
        self.groups[level as usize].insert((index, group), hashes);
    }

    /// The tile's file as stored, if it has the size of a full tile.
    pub(crate) fn read(&self, level: u8, index: u64) -> Option<Vec<Hash>> {
        self.read_at(level, index, TILE_WIDTH)
    }

    /// The tile's file as stored, to be expanded whole (counted).
    pub(crate) fn read_whole(&self, level: u8, index: u64) -> Option<Vec<Hash>> {
        self.whole_reads.fetch_add(1, Ordering::Relaxed);
        self.read(level, index)
    }

    /// Tiles read whole to be expanded since the store was made.
    #[cfg(test)]
    pub(crate) fn whole_reads(&self) -> u64 {
        self.whole_reads.load(Ordering::Relaxed)
    }

    /// The tile file of `width` hashes (a partial tile `<N>.p/<W>` below
    /// 256), if it has that size. Not checked: the caller checks it.
    pub(crate) fn read_at(&self, level: u8, index: u64, width: u64) -> Option<Vec<Hash>> {
        let bytes = std::fs::read(self.dir.join(tile_path(level, index, width))).ok()?;
        (bytes.len() as u64 == width * 32).then(|| hashes(&bytes))
    }

    /// The 16 row hashes of group `group` of a full tile, read from its
    /// file without the rest. Not checked: the caller checks them.
    pub(crate) fn read_group(&self, level: u8, index: u64, group: u64) -> Option<Vec<Hash>> {
        let file = File::open(self.path(level, index)).ok()?;
        let mut bytes = [0u8; GROUP_WIDTH as usize * 32];
        file.read_exact_at(&mut bytes, group * GROUP_WIDTH * 32).ok()?;
        Some(hashes(&bytes))
    }

    /// The inner-node file of `level`, opened (and given its header) on
    /// first use; `None` if it cannot be used (the tree then expands whole tiles).
    fn inner_file(&self, level: u8) -> Option<&File> {
        self.inner_files[level as usize]
            .get_or_init(|| {
                let path = self.dir.join(inner_path(level));
                let header = inner_header(level);
                let file = std::fs::create_dir_all(path.parent()?)
                    .and_then(|()| File::options().read(true).write(true).create(true).truncate(false).open(&path));
                let Ok(file) = file else {
                    // A directory this process may not write: read what is there.
                    let file = File::open(&path).ok()?;
                    let mut stored = [0u8; INNER_HEADER_BYTES as usize];
                    file.read_exact_at(&mut stored, 0).ok()?;
                    return (stored == header).then_some(file);
                };
                let mut stored = [0u8; INNER_HEADER_BYTES as usize];
                if file.read_exact_at(&mut stored, 0).is_err() || stored != header {
                    // New, torn, or of another format: empty it and start again.
                    file.set_len(0).and_then(|()| file.write_all_at(&header, 0)).ok()?;
                }
                Some(file)
            })
            .as_ref()
    }

    /// Tile `index`'s 16 nodes at height 4 as stored. Not checked: the
    /// caller hashes them up to the tile's root.
    pub(crate) fn read_inner(&self, level: u8, index: u64) -> Option<Vec<Hash>> {
        let file = self.inner_file(level)?;
        let mut bytes = [0u8; INNER_ENTRY_BYTES as usize];
        let offset = INNER_HEADER_BYTES.checked_add(index.checked_mul(INNER_ENTRY_BYTES)?)?;
        file.read_exact_at(&mut bytes, offset).ok()?;
        Some(hashes(&bytes))
    }

    /// Stores tile `index`'s 16 nodes at height 4. Not synced, and a failure
    /// is not an error: a missing entry only costs the whole tile's hashes.
    pub(crate) fn write_inner(&self, level: u8, index: u64, nodes: &[Hash]) {
        debug_assert_eq!(nodes.len() as u64, TILE_WIDTH / GROUP_WIDTH);
        let Some(file) = self.inner_file(level) else { return };
        let Some(offset) = index.checked_mul(INNER_ENTRY_BYTES).and_then(|o| o.checked_add(INNER_HEADER_BYTES)) else {
            return;
        };
        let _ = file.write_all_at(&nodes.concat(), offset);
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

/// 32-byte hashes from bytes (a multiple of 32 long).
fn hashes(bytes: &[u8]) -> Vec<Hash> {
    bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect()
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
        assert_eq!(store.cache.0.lock().expect("lock").entries.len(), 3);
        store.write(0, 1, &row).expect("writes");
        assert_eq!(store.read(0, 1), Some(row));
        assert!(store.leaves(0, 1).is_err(), "no source");
    }
}
