//! The log's Merkle tree, stored by level so that any complete subtree's hash
//! is one lookup: node `(l, i)` is the root of leaves `i·2^l .. (i+1)·2^l`.
//! Proofs then cost O(log² n) lookups, and a C2SP tile (level L, index N) is
//! the row `256N ..` of tree level 8L.
//!
//! Where the nodes live: a tree on disk ([`Tree::on_disk`], a ledger's)
//! keeps tree levels 0-15 (tile levels 0 and 1) as full tiles in files,
//! through a bounded cache ([`crate::tiles`]), plus in memory the nodes of
//! the incomplete tile at each of those levels (the right edge, at most 511
//! hashes per tile level); levels 16 and up stay in memory (64 bytes per
//! 65,536 leaves). A tree in memory ([`Tree::new`]) keeps every level.

use std::sync::Arc;

use crate::merkle::{self, node_hash, split, Hash, ProofError};
use crate::tiles::{Expanded, LeafSource, TileStore, GROUP_WIDTH};

/// Height inside a tile of the nodes an inner-node entry holds.
const INNER_HEIGHT: u32 = 4;

/// Nodes at [`INNER_HEIGHT`] in a tile.
const GROUPS: u64 = TILE_WIDTH / GROUP_WIDTH;

/// Hashes per full C2SP tile.
pub const TILE_WIDTH: u64 = 256;

/// Tile levels a tree on disk keeps in files (tree levels `0 .. 8·this`).
pub const STORED_TILE_LEVELS: u8 = 2;

/// A Merkle tree that grows by appending leaf hashes.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    size: u64,
    /// `levels[l][j]` is node `(l, bases[l] + j)`.
    levels: Vec<Vec<Hash>>,
    /// The first node of each level held in memory (0 for a tree in memory).
    bases: Vec<u64>,
    store: Option<Arc<TileStore>>,
}

impl Tree {
    /// An empty tree, all in memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty tree whose full tiles of levels 0 and 1 live under `dir`
    /// (`dir/tile/<L>/<N>`), at most `cache_tiles` of them in memory;
    /// `source` gives leaf hashes from the log to rebuild a bad tile.
    pub fn on_disk(dir: &std::path::Path, cache_tiles: usize, source: Option<LeafSource>) -> Self {
        Self { store: Some(Arc::new(TileStore::new(dir, cache_tiles, source))), ..Self::default() }
    }

    /// An empty tree with the same tile store as this one.
    pub fn emptied(&self) -> Self {
        Self { store: self.store.clone(), ..Self::default() }
    }

    /// This (empty) tree on disk at `size` leaves (a multiple of 256) from
    /// its stored tiles alone: the level-1 tiles give levels 16 and up, and
    /// the level-0 tiles after the last full level-1 tile give the right edge
    /// of level 8. Reads `size / 65,536 + 255` tiles at most, never the log.
    /// The tiles read are not checked here: the caller compares a root with
    /// a signed checkpoint (and rebuilds from the log if it differs).
    pub fn resume(mut self, size: u64) -> Result<Self, String> {
        assert_eq!(self.size, 0, "resume an empty tree");
        let store = self.store.clone().ok_or("a tree in memory has no stored tiles")?;
        if !size.is_multiple_of(TILE_WIDTH) {
            return Err(format!("a tree resumes at a whole tile, not at {size} leaves"));
        }
        let (level0, level1) = (size / TILE_WIDTH, size / (TILE_WIDTH * TILE_WIDTH));
        self.levels = vec![Vec::new(); 16];
        self.bases = (0..16).map(|l| if l < 8 { size >> l } else { (level1 * TILE_WIDTH * TILE_WIDTH) >> l }).collect();
        for index in 0..level1 {
            let row = store.read(1, index).ok_or_else(|| format!("tile 1/{index} is missing or torn"))?;
            self.push_node(16, index, Expanded::from_row(&row).root());
        }
        for index in level1 * TILE_WIDTH..level0 {
            let row = store.read(0, index).ok_or_else(|| format!("tile 0/{index} is missing or torn"))?;
            self.push_node(8, index, Expanded::from_row(&row).root());
        }
        self.size = size;
        assert!(self.levels.iter().enumerate().all(|(l, nodes)| self.bases[l] + nodes.len() as u64 == size >> l));
        Ok(self)
    }

    /// This (empty) tree on disk at `size - size % 256` leaves from the
    /// tiles that the checkpoint of `size` leaves with root `root` wrote
    /// before it was signed: its level-2 tiles give level 16 (and the levels
    /// above are hashed from it), its partial level-1 tile the right edge of
    /// level 8, and its partial level-0 tile the leaves after the last whole
    /// tile, which are not kept but hashed with the rest into the root at
    /// `size`, compared with `root`. Reads `size / 2^24 + 3` files at most,
    /// whatever the history; an error (a tile missing, torn or not giving
    /// `root`) leaves the caller to [`Tree::resume`].
    pub fn resume_at_checkpoint(mut self, size: u64, root: &Hash) -> Result<Self, String> {
        assert_eq!(self.size, 0, "resume an empty tree");
        let store = self.store.clone().ok_or("a tree in memory has no stored tiles")?;
        let tiled = size - size % TILE_WIDTH;
        let (level0, level1) = (tiled / TILE_WIDTH, tiled / (TILE_WIDTH * TILE_WIDTH));
        let read = |level: u8, index: u64, width: u64| {
            store.read_at(level, index, width).ok_or_else(|| {
                format!("tile {} of the checkpoint at {size} is missing or torn", tile_path(level, index, width))
            })
        };
        self.levels = vec![Vec::new(); 16];
        self.bases =
            (0..16).map(|l| if l < 8 { tiled >> l } else { (level1 * TILE_WIDTH * TILE_WIDTH) >> l }).collect();
        for tile in 0..level1.div_ceil(TILE_WIDTH) {
            let width = (level1 - tile * TILE_WIDTH).min(TILE_WIDTH);
            for (offset, hash) in read(2, tile, width)?.iter().enumerate() {
                self.push_node(16, tile * TILE_WIDTH + offset as u64, *hash);
            }
        }
        let edge = level0 - level1 * TILE_WIDTH;
        if edge > 0 {
            for (offset, hash) in read(1, level1, edge)?.iter().enumerate() {
                self.push_node(8, level1 * TILE_WIDTH + offset as u64, *hash);
            }
        }
        self.size = tiled;
        assert!(self.levels.iter().enumerate().all(|(l, nodes)| self.bases[l] + nodes.len() as u64 == tiled >> l));
        // The check: the leaves after the last whole tile, pushed into a
        // copy (fewer than 256: no tile completes, nothing is written).
        let mut whole = self.clone();
        if size > tiled {
            read(0, level0, size - tiled)?.iter().for_each(|leaf| whole.push(*leaf));
        }
        if whole.root(size).as_ref() != Some(root) {
            return Err(format!("the tiles of the checkpoint at {size} do not give its root"));
        }
        Ok(self)
    }

    /// Appends node `(level, index)` (the next at its level) and every node it completes above it.
    fn push_node(&mut self, mut level: usize, mut index: u64, mut hash: Hash) {
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
                self.bases.push(0);
            }
            debug_assert_eq!(self.bases[level] + self.levels[level].len() as u64, index);
            self.levels[level].push(hash);
            if index.is_multiple_of(2) {
                return;
            }
            let count = self.levels[level].len();
            hash = node_hash(&self.levels[level][count - 2], &hash);
            level += 1;
            index /= 2;
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash and every subtree root it completes.
    pub fn push(&mut self, leaf: Hash) {
        let size_before = self.size();
        self.push_leaf(leaf);
        self.size += 1;
        self.flush_full_tiles();
        // Postconditions: one more leaf; level l holds floor(size / 2^l) nodes.
        assert_eq!(self.size(), size_before + 1);
        assert!(self.levels.iter().enumerate().all(|(l, nodes)| self.bases[l] + nodes.len() as u64 == self.size >> l));
    }

    fn push_leaf(&mut self, leaf: Hash) {
        self.push_node(0, self.size, leaf);
    }

    /// Moves each completed tile of the stored levels to the store.
    fn flush_full_tiles(&mut self) {
        let Some(store) = self.store.clone() else { return };
        for tile_level in 0..STORED_TILE_LEVELS {
            let row_level = 8 * tile_level as usize;
            if self.levels.get(row_level).is_none_or(|row| row.len() as u64 != TILE_WIDTH) {
                continue;
            }
            let index = self.bases[row_level] / TILE_WIDTH;
            // The tree already holds every node inside the tile (levels
            // row_level .. row_level + 8, and its root just pushed above):
            // no hash is computed again on the writer's path.
            let root_level = &self.levels[row_level + 8];
            let root = root_level[root_level.len() - 1];
            let tile = Arc::new(Expanded::from_levels(&self.levels[row_level..row_level + 8], root));
            debug_assert_eq!(tile.row(), self.levels[row_level].as_slice());
            debug_assert_eq!(tile.root(), Expanded::from_row(&self.levels[row_level]).root());
            // A failed write is a missing tile: rebuilt from the log when needed.
            let _ = store.write(tile_level, index, tile.row());
            store.write_inner(tile_level, index, &self.levels[row_level + INNER_HEIGHT as usize]);
            store.remember(tile_level, index, tile);
            for level in row_level..row_level + 8 {
                self.bases[level] += self.levels[level].len() as u64;
                self.levels[level].clear();
            }
        }
    }

    /// Node `(level, index)`, which must exist.
    fn node(&self, level: usize, index: u64) -> Result<Hash, String> {
        let base = self.bases[level];
        if index >= base {
            return Ok(self.levels[level][(index - base) as usize]);
        }
        let store = self.store.as_ref().ok_or("a tree in memory has no stored tiles")?;
        let tile_level = (level / 8) as u8;
        let height = (level % 8) as u32;
        let tile_index = index >> (8 - height);
        let within = index - (tile_index << (8 - height));
        if let Some(tile) = store.cached(tile_level, tile_index) {
            return Ok(tile.node(height, within));
        }
        // A node of a tile not in memory costs about 30 hashes, not 255:
        // the tile's nodes at height 4 (its inner entry), then, below
        // height 4, the 16 row hashes under the node's height-4 ancestor.
        let inner = self.inner(store, tile_level, tile_index)?;
        if height >= INNER_HEIGHT {
            return Ok(inner.node(height - INNER_HEIGHT, within));
        }
        let group = within >> (INNER_HEIGHT - height);
        let hashes = self.group(store, tile_level, tile_index, group, &inner.node(0, group))?;
        Ok(hashes.node(height, within - (group << (INNER_HEIGHT - height))))
    }

    /// The nodes at heights 4-8 of a full stored tile (an expanded row of
    /// 16), checked against the tile's parent: from the inner-node file
    /// (15 hashes), else from the whole tile (whose entry is then written).
    fn inner(&self, store: &TileStore, level: u8, index: u64) -> Result<Arc<Expanded>, String> {
        if let Some(inner) = store.cached_inner(level, index) {
            return Ok(inner);
        }
        let parent = self.node(8 * (level as usize + 1), index)?;
        let stored = store.read_inner(level, index).map(|nodes| Expanded::from_row(&nodes));
        let inner = match stored {
            Some(inner) if inner.root() == parent => inner,
            _ => {
                let tile = self.full_tile(level, index)?;
                let nodes = inner_nodes(&tile);
                store.write_inner(level, index, &nodes);
                Expanded::from_row(&nodes)
            }
        };
        let inner = Arc::new(inner);
        store.remember_inner(level, index, inner.clone());
        Ok(inner)
    }

    /// Group `group` of a full stored tile (16 row hashes and the nodes
    /// above them), checked against `expected`, its node at height 4: read
    /// alone from the tile file (15 hashes), else from the whole tile.
    fn group(
        &self,
        store: &TileStore,
        level: u8,
        index: u64,
        group: u64,
        expected: &Hash,
    ) -> Result<Arc<Expanded>, String> {
        if let Some(hashes) = store.cached_group(level, index, group) {
            return Ok(hashes);
        }
        let stored = store.read_group(level, index, group).map(|row| Expanded::from_row(&row));
        let hashes = match stored {
            Some(hashes) if hashes.root() == *expected => hashes,
            _ => {
                let tile = self.full_tile(level, index)?;
                let start = (group * GROUP_WIDTH) as usize;
                let hashes = Expanded::from_row(&tile.row()[start..start + GROUP_WIDTH as usize]);
                if hashes.root() != *expected {
                    return Err(format!("tile {level}/{index}: its inner node {group} does not match its row"));
                }
                hashes
            }
        };
        let hashes = Arc::new(hashes);
        store.remember_group(level, index, group, hashes.clone());
        Ok(hashes)
    }

    /// A full stored tile, checked against its parent node; rebuilt from
    /// the log if missing or wrong.
    fn full_tile(&self, level: u8, index: u64) -> Result<Arc<Expanded>, String> {
        let store = self.store.as_ref().ok_or("a tree in memory has no stored tiles")?;
        if let Some(tile) = store.cached(level, index) {
            return Ok(tile);
        }
        let parent = self.node(8 * (level as usize + 1), index)?;
        let stored = store.read_whole(level, index).map(|row| Expanded::from_row(&row));
        let tile = match stored {
            Some(tile) if tile.root() == parent => tile,
            _ => self.rebuild(store, level, index, &parent)?,
        };
        let tile = Arc::new(tile);
        store.remember(level, index, tile.clone());
        Ok(tile)
    }

    /// Rebuilds a tile from the log's leaves (and, for level 1, the level-0
    /// tiles under it), checks it against its parent, and writes it.
    fn rebuild(&self, store: &TileStore, level: u8, index: u64, parent: &Hash) -> Result<Expanded, String> {
        let span = TILE_WIDTH.pow(u32::from(level) + 1);
        let leaves = store.leaves(index * span, span)?;
        let mut row = leaves;
        for below in 0..level {
            let tiles: Vec<Expanded> = row.chunks(TILE_WIDTH as usize).map(Expanded::from_row).collect();
            let first = index * TILE_WIDTH.pow(u32::from(level - below));
            for (offset, tile) in tiles.iter().enumerate() {
                store.write(below, first + offset as u64, tile.row())?;
                store.write_inner(below, first + offset as u64, &inner_nodes(tile));
            }
            row = tiles.iter().map(Expanded::root).collect();
        }
        let tile = Expanded::from_row(&row);
        if tile.root() != *parent {
            return Err(format!("tile {level}/{index} rebuilt from the log does not match the tree"));
        }
        store.write(level, index, tile.row())?;
        store.write_inner(level, index, &inner_nodes(&tile));
        Ok(tile)
    }

    /// MTH of leaves `start .. start + len` (len >= 1, within the tree).
    fn subtree(&self, start: u64, len: u64) -> Result<Hash, String> {
        if len.is_power_of_two() && start.is_multiple_of(len) {
            return self.node(len.trailing_zeros() as usize, start / len);
        }
        let k = split(len);
        Ok(node_hash(&self.subtree(start, k)?, &self.subtree(start + k, len - k)?))
    }

    /// The root of the first `size` leaves; `None` past the tree's size, or
    /// if a stored tile can neither be read nor rebuilt.
    pub fn root(&self, size: u64) -> Option<Hash> {
        match size {
            0 => Some(merkle::root(&[])),
            _ if size > self.size() => None,
            _ => self.subtree(0, size).ok(),
        }
    }

    /// `PATH(index, D[size])`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if index >= size || size > self.size() {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof).map_err(ProofError::Unavailable)?;
        Ok(proof)
    }

    fn path(&self, m: u64, start: u64, n: u64, proof: &mut Vec<Hash>) -> Result<(), String> {
        if n <= 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, proof)?;
            proof.push(self.subtree(start + k, n - k)?);
        } else {
            self.path(m - k, start + k, n - k, proof)?;
            proof.push(self.subtree(start, k)?);
        }
        Ok(())
    }

    /// `PROOF(old, D[new])`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        if old == 0 || old > new || new > self.size() {
            return Err(ProofError::BadSizes { old, new, size: self.size() });
        }
        let mut proof = Vec::new();
        self.subproof(old, 0, new, true, &mut proof).map_err(ProofError::Unavailable)?;
        Ok(proof)
    }

    fn subproof(&self, m: u64, start: u64, n: u64, complete: bool, proof: &mut Vec<Hash>) -> Result<(), String> {
        if m == n {
            if !complete {
                proof.push(self.subtree(start, n)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, complete, proof)?;
            proof.push(self.subtree(start + k, n - k)?);
        } else {
            self.subproof(m - k, start + k, n - k, false, proof)?;
            proof.push(self.subtree(start, k)?);
        }
        Ok(())
    }

    /// The leaf hash of record `seq` in the tree of `size` leaves, if `seq < size`.
    pub fn leaf(&self, seq: u64, size: u64) -> Option<Hash> {
        if seq >= size || size > self.size() {
            return None;
        }
        self.node(0, seq).ok()
    }

    /// The C2SP tile at tile level `level`, index `index`, for a tree of
    /// `size` leaves: up to 256 hashes of tree level 8·level. `None` if the
    /// tile is empty at this size (or a stored tile is unavailable).
    pub fn tile(&self, level: u8, index: u64, size: u64) -> Option<Vec<Hash>> {
        let tree_level = 8 * level as usize;
        let available = size >> tree_level;
        let start = index.checked_mul(TILE_WIDTH)?;
        if start >= available || size > self.size() || tree_level >= self.levels.len() {
            return None;
        }
        let end = available.min(start + TILE_WIDTH);
        let base = self.bases[tree_level];
        if start >= base {
            return Some(self.levels[tree_level][(start - base) as usize..(end - base) as usize].to_vec());
        }
        let tile = self.full_tile(level, index).ok()?;
        Some(tile.row()[..(end - start) as usize].to_vec())
    }
}

/// A full tile's nodes at height 4: its inner-node entry.
fn inner_nodes(tile: &Expanded) -> Vec<Hash> {
    (0..GROUPS).map(|j| tile.node(INNER_HEIGHT, j)).collect()
}

/// The C2SP `tlog-tiles` path of a tile: `tile/<L>/<N>[.p/<W>]`, with N
/// written in 3-digit groups, all but the last prefixed by `x`.
pub fn tile_path(level: u8, index: u64, width: u64) -> String {
    let digits = format!("{index}");
    let padded = format!("{}{digits}", "0".repeat((3 - digits.len() % 3) % 3));
    let groups: Vec<&str> = padded.as_bytes().chunks(3).map(|c| std::str::from_utf8(c).unwrap_or("000")).collect();
    let last = groups.len() - 1;
    let path: Vec<String> =
        groups.iter().enumerate().map(|(i, g)| if i < last { format!("x{g}") } else { (*g).to_owned() }).collect();
    let mut out = format!("tile/{level}/{}", path.join("/"));
    if width < TILE_WIDTH {
        out.push_str(&format!(".p/{width}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, verify_consistency, verify_inclusion};

    #[test]
    fn stored_tree_agrees_with_the_reference_recursion() {
        let leaves: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut tree = Tree::new();
        for (count, leaf) in leaves.iter().enumerate() {
            tree.push(*leaf);
            let size = count as u64 + 1;
            assert_eq!(tree.root(size), Some(merkle::root(&leaves[..=count])));
        }
        for size in [1u64, 2, 3, 7, 8, 9, 100, 255, 256, 257, 300] {
            let root = tree.root(size).unwrap();
            for index in (0..size).step_by(7) {
                let proof = tree.inclusion_proof(index, size).unwrap();
                assert_eq!(proof, merkle::inclusion_proof(&leaves, index, size).unwrap());
                assert_eq!(verify_inclusion(index, size, &leaves[index as usize], &proof, &root), Ok(()));
            }
            for old in (1..=size).step_by(5) {
                let proof = tree.consistency_proof(old, size).unwrap();
                assert_eq!(proof, merkle::consistency_proof(&leaves, old, size).unwrap());
                assert_eq!(verify_consistency(old, size, &tree.root(old).unwrap(), &root, &proof), Ok(()));
            }
        }
        assert_eq!(tree.leaf(299, 300), Some(leaves[299]));
        assert_eq!(tree.leaf(0, 1), Some(leaves[0]));
        assert_eq!(tree.leaf(300, 300), None, "not below the size");
        assert_eq!(tree.leaf(5, 301), None, "a size the tree does not reach");
        assert_eq!(tree.tile(0, 0, 300).map(|t| t.len()), Some(256));
        assert_eq!(tree.tile(0, 1, 300).map(|t| t.len()), Some(44));
        assert_eq!(tree.tile(1, 0, 300).map(|t| t.len()), Some(1));
        assert_eq!(tree.tile(0, 2, 300), None);
    }

    fn on_disk_with(dir: &std::path::Path, leaves: &[Hash], cache_tiles: usize) -> Tree {
        let source: Vec<Hash> = leaves.to_vec();
        let source = move |start: u64, count: u64| -> Result<Vec<Hash>, String> {
            Ok(source.iter().skip(start as usize).take(count as usize).copied().collect())
        };
        let mut tree = Tree::on_disk(dir, cache_tiles, Some(Box::new(source)));
        for leaf in leaves {
            tree.push(*leaf);
        }
        tree
    }

    #[test]
    fn a_tree_on_disk_answers_as_the_tree_in_memory() {
        let leaves: Vec<Hash> = (0..66_000u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = on_disk_with(dir.path(), &leaves, 4);
        let mut memory = Tree::new();
        leaves.iter().for_each(|leaf| memory.push(*leaf));
        let held: usize = disk.levels.iter().map(Vec::len).sum();
        assert!(held < 1024, "the right edge and levels 16 up are in memory: {held} hashes");
        for size in [1u64, 255, 256, 257, 65_535, 65_536, 65_537, 66_000] {
            assert_eq!(disk.root(size), memory.root(size), "root at {size}");
            for index in [0, size / 3, size - 1] {
                assert_eq!(disk.inclusion_proof(index, size), memory.inclusion_proof(index, size));
                assert_eq!(disk.leaf(index, size), memory.leaf(index, size));
            }
            assert_eq!(disk.consistency_proof(size / 2 + 1, size), memory.consistency_proof(size / 2 + 1, size));
            for (level, index) in [(0u8, 0u64), (0, 255), (0, 257), (1, 0), (1, 1), (2, 0)] {
                assert_eq!(disk.tile(level, index, size), memory.tile(level, index, size), "tile {level}/{index}");
            }
        }
        assert!(dir.path().join("tile/0/255").exists() && dir.path().join("tile/1/000").exists());
        assert!(!dir.path().join("tile/0/257").exists(), "the partial tile stays in memory");
    }

    #[test]
    fn a_tree_resumes_from_its_tiles() {
        let leaves: Vec<Hash> = (0..140_000u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        drop(on_disk_with(dir.path(), &leaves, 4));
        for size in [0u64, 256, 65_536, 131_072, 131_072 + 2560] {
            let mut resumed = Tree::on_disk(dir.path(), 4, None).resume(size).expect("resumes");
            assert_eq!(resumed.root(size), Some(merkle::root(&leaves[..size as usize])), "at {size}");
            leaves[size as usize..].iter().for_each(|leaf| resumed.push(*leaf));
            assert_eq!(resumed.root(140_000), Some(merkle::root(&leaves)), "from {size}");
            let proof = resumed.inclusion_proof(70_000, 140_000).expect("proof");
            assert_eq!(proof, merkle::inclusion_proof(&leaves, 70_000, 140_000).expect("reference"));
        }
        assert!(Tree::on_disk(dir.path(), 4, None).resume(300).is_err(), "not a whole tile");
        std::fs::remove_file(dir.path().join("tile/0/512")).expect("removes");
        assert!(Tree::on_disk(dir.path(), 4, None).resume(131_072 + 2560).is_err(), "a missing tile");
    }

    #[test]
    fn a_missing_or_altered_tile_is_rebuilt_from_the_log() {
        let leaves: Vec<Hash> = (0..66_000u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = on_disk_with(dir.path(), &leaves, 1);
        let root = merkle::root(&leaves);
        std::fs::write(dir.path().join("tile/0/007"), [7u8; 8192]).expect("alters a level-0 tile");
        std::fs::remove_file(dir.path().join("tile/0/100")).expect("removes a level-0 tile");
        std::fs::write(dir.path().join("tile/1/000"), [1u8; 100]).expect("tears the level-1 tile");
        // Evict what the writes cached: the cache holds one tile.
        assert_eq!(disk.tile(0, 200, 66_000).map(|t| t.len()), Some(256));
        assert_eq!(disk.leaf(7 * 256 + 3, 66_000), Some(leaves[7 * 256 + 3]));
        assert_eq!(disk.leaf(100 * 256, 66_000), Some(leaves[100 * 256]));
        assert_eq!(disk.root(66_000), Some(root));
        let proof = disk.inclusion_proof(1800, 65_536).expect("proof");
        assert_eq!(proof, merkle::inclusion_proof(&leaves, 1800, 65_536).expect("reference"));
        let stored = std::fs::read(dir.path().join("tile/0/007")).expect("rewritten");
        assert_eq!(stored, leaves[7 * 256..8 * 256].concat(), "the altered tile was written again");
        assert_eq!(std::fs::read(dir.path().join("tile/1/000")).map(|b| b.len()).ok(), Some(8192));
    }

    #[test]
    fn a_tile_the_log_cannot_give_back_is_an_error_not_a_wrong_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wrong = |_: u64, count: u64| -> Result<Vec<Hash>, String> { Ok(vec![[0; 32]; count as usize]) };
        let mut tree = Tree::on_disk(dir.path(), 1, Some(Box::new(wrong)));
        (0..600u32).for_each(|i| tree.push(leaf_hash(&i.to_le_bytes())));
        std::fs::write(dir.path().join("tile/0/000"), [7u8; 8192]).expect("alters a tile");
        assert_eq!(tree.tile(0, 1, 600).map(|t| t.len()), Some(256), "evicts tile 0 from the cache");
        assert_eq!(tree.leaf(3, 600), None);
        assert_eq!(tree.root(3), None, "the root of 3 leaves needs tile 0");
        assert!(tree.root(600).is_some(), "the root of 600 does not: levels 9 up are in memory");
        assert!(matches!(tree.inclusion_proof(3, 600), Err(ProofError::Unavailable(_))));
        assert_eq!(tree.leaf(599, 600), Some(leaf_hash(&599u32.to_le_bytes())), "the right edge is in memory");
    }

    /// A tree on `dir`'s tiles with empty caches, as a process opening the
    /// ledger has: resumed at `size` (a multiple of 256) from the tiles.
    fn reopened(dir: &std::path::Path, leaves: &[Hash], size: u64) -> Tree {
        let source: Vec<Hash> = leaves.to_vec();
        let source = move |start: u64, count: u64| -> Result<Vec<Hash>, String> {
            Ok(source.iter().skip(start as usize).take(count as usize).copied().collect())
        };
        Tree::on_disk(dir, 1, Some(Box::new(source))).resume(size).expect("resumes")
    }

    fn whole_reads(tree: &Tree) -> u64 {
        tree.store.as_ref().map_or(0, |store| store.whole_reads())
    }

    #[test]
    fn a_node_of_a_stored_tile_is_found_without_expanding_the_tile() {
        let leaves: Vec<Hash> = (0..66_048u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        drop(on_disk_with(dir.path(), &leaves, 1));
        let inner = |level: u8| std::fs::metadata(dir.path().join(crate::tiles::inner_path(level))).map(|m| m.len());
        assert_eq!(inner(0).ok(), Some(16 + 258 * 512), "an entry per full level-0 tile");
        assert_eq!(inner(1).ok(), Some(16 + 512), "an entry per full level-1 tile");
        let tree = reopened(dir.path(), &leaves, 66_048);
        for size in [66_048u64, 65_536, 1000, 3] {
            let root = merkle::root(&leaves[..size as usize]);
            assert_eq!(tree.root(size), Some(root), "root at {size}");
            for index in [0, 1, size / 3, size / 2 + 17, size - 1].map(|index| index.min(size - 1)) {
                let proof = tree.inclusion_proof(index, size).expect("proof");
                assert_eq!(proof, merkle::inclusion_proof(&leaves, index, size).expect("reference"));
                assert_eq!(tree.leaf(index, size), Some(leaves[index as usize]));
            }
            let old = size / 2 + 1;
            assert_eq!(
                tree.consistency_proof(old, size),
                Ok(merkle::consistency_proof(&leaves, old, size).expect("reference"))
            );
        }
        assert_eq!(whole_reads(&tree), 0, "every node came from an inner entry and a group");
    }

    #[test]
    fn a_wrong_inner_entry_or_group_is_found_and_never_served() {
        let leaves: Vec<Hash> = (0..66_048u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        drop(on_disk_with(dir.path(), &leaves, 1));
        let inner_file = dir.path().join(crate::tiles::inner_path(0));
        let good = std::fs::read(&inner_file).expect("inner entries");
        // Tile 7's entry altered, tile 9's zeros (a hole), tile 11's entry
        // right but its row altered in one group, and the entries past 200
        // cut off (missing).
        let mut bad = good.clone();
        bad[16 + 7 * 512 + 40] ^= 1;
        bad[16 + 9 * 512..16 + 10 * 512].fill(0);
        std::fs::write(&inner_file, &bad[..16 + 200 * 512]).expect("alters the inner entries");
        let mut row = std::fs::read(dir.path().join("tile/0/011")).expect("tile 11");
        row[3 * 512 + 5] ^= 1;
        std::fs::write(dir.path().join("tile/0/011"), &row).expect("alters a group of tile 11");
        let tree = reopened(dir.path(), &leaves, 66_048);
        let size = 66_048;
        for index in [7 * 256 + 3, 9 * 256 + 200, 11 * 256 + 3 * 16 + 2, 11 * 256 + 100, 250 * 256 + 9] {
            let proof = tree.inclusion_proof(index, size).expect("proof");
            assert_eq!(proof, merkle::inclusion_proof(&leaves, index, size).expect("reference"), "leaf {index}");
            assert_eq!(tree.leaf(index, size), Some(leaves[index as usize]));
        }
        assert_eq!(whole_reads(&tree), 4, "tiles 7, 9, 11 and 250 were read whole, and only they");
        let repaired = std::fs::read(&inner_file).expect("inner entries");
        assert_eq!(&repaired[16 + 7 * 512..16 + 8 * 512], &good[16 + 7 * 512..16 + 8 * 512], "entry 7 written again");
        assert_eq!(&repaired[16 + 9 * 512..16 + 10 * 512], &good[16 + 9 * 512..16 + 10 * 512], "entry 9 written again");
        assert_eq!(&repaired[16 + 250 * 512..16 + 251 * 512], &good[16 + 250 * 512..16 + 251 * 512], "entry 250 too");
        let rebuilt = std::fs::read(dir.path().join("tile/0/011")).expect("tile 11");
        assert_eq!(rebuilt, leaves[11 * 256..12 * 256].concat(), "tile 11 was rebuilt from the log");
        // An inner file of another format is emptied and refilled; nothing wrong is read from it.
        let mut other = good.clone();
        other[11] = 2;
        std::fs::write(&inner_file, &other).expect("another format");
        let tree = reopened(dir.path(), &leaves, 66_048);
        let proof = tree.inclusion_proof(5 * 256 + 1, size).expect("proof");
        assert_eq!(proof, merkle::inclusion_proof(&leaves, 5 * 256 + 1, size).expect("reference"));
        assert_eq!(whole_reads(&tree), 1, "tile 5 was read whole");
        let refilled = std::fs::read(&inner_file).expect("inner entries");
        assert_eq!(refilled[..16], good[..16], "the header of this format");
        assert_eq!(refilled.len(), 16 + 6 * 512, "only entry 5 so far");
        assert_eq!(&refilled[16 + 5 * 512..], &good[16 + 5 * 512..16 + 6 * 512]);
    }

    /// Writes the tiles a checkpoint of `size` needs, as the checkpointer does.
    fn checkpoint_tiles(dir: &std::path::Path, tree: &Tree, size: u64) {
        crate::ledger::write_tiles(dir, &|level, index| tree.tile(level, index, size), 0, size).expect("tiles");
    }

    #[test]
    fn a_tree_resumes_at_a_checkpoint_from_the_tiles_it_wrote() {
        let leaves: Vec<Hash> = (0..140_000u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = on_disk_with(dir.path(), &leaves, 4);
        for size in [0u64, 100, 256, 65_536, 65_536 + 300, 131_072 + 2560, 139_999] {
            checkpoint_tiles(dir.path(), &tree, size);
            let root = merkle::root(&leaves[..size as usize]);
            let mut resumed = Tree::on_disk(dir.path(), 4, None).resume_at_checkpoint(size, &root).expect("resumes");
            assert_eq!(resumed.size(), size - size % 256);
            let by_level_one = Tree::on_disk(dir.path(), 4, None).resume(size - size % 256).expect("resumes");
            assert_eq!(resumed.levels, by_level_one.levels, "the same memory as from every level-1 tile, at {size}");
            leaves[resumed.size() as usize..].iter().for_each(|leaf| resumed.push(*leaf));
            assert_eq!(resumed.root(size), Some(root), "at {size}");
            assert_eq!(resumed.root(140_000), Some(merkle::root(&leaves)), "from {size}");
        }
        let size = 131_072 + 2560 + 7;
        checkpoint_tiles(dir.path(), &tree, size);
        let root = merkle::root(&leaves[..size as usize]);
        let resume = || Tree::on_disk(dir.path(), 4, None).resume_at_checkpoint(size, &root);
        assert!(resume().is_ok());
        assert!(Tree::on_disk(dir.path(), 4, None).resume_at_checkpoint(size, &[7; 32]).is_err(), "another root");
        for (path, width) in [("tile/2/000.p/2", 64), ("tile/1/002.p/10", 320), ("tile/0/522.p/7", 224)] {
            let file = dir.path().join(path);
            let stored = std::fs::read(&file).expect("a tile of the checkpoint");
            assert_eq!(stored.len(), width, "{path}");
            let mut altered = stored.clone();
            altered[width - 1] ^= 1;
            std::fs::write(&file, &altered).expect("alters it");
            assert!(resume().is_err_and(|e| e.contains("do not give its root")), "{path} altered");
            std::fs::write(&file, &stored[..width - 32]).expect("tears it");
            assert!(resume().is_err_and(|e| e.contains("missing or torn")), "{path} torn");
            std::fs::write(&file, &stored).expect("restores it");
            assert!(resume().is_ok());
        }
    }

    /// Past 2^24 leaves level 16 fills whole level-2 tiles: a checkpoint at
    /// 257 · 65,536 leaves wrote `tile/2/000` and `tile/2/001.p/1`. Built by
    /// hand from level-16 nodes (pushing 16.8M leaves is too slow for a unit
    /// test): the root of whole 65,536-leaf subtrees is the tree over their roots.
    #[test]
    fn a_tree_resumes_from_whole_level_two_tiles() {
        let nodes: Vec<Hash> = (0..257u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let size = 257 * 65_536;
        let root = merkle::root(&nodes);
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TileStore::new(dir.path(), 1, None);
        store.write(2, 0, &nodes[..256]).expect("writes tile 2/000");
        let partial = dir.path().join(tile_path(2, 1, 1));
        std::fs::create_dir_all(partial.parent().expect("parent")).expect("mkdir");
        std::fs::write(&partial, nodes[256]).expect("writes tile 2/001.p/1");
        let resumed = Tree::on_disk(dir.path(), 1, None).resume_at_checkpoint(size, &root).expect("resumes");
        assert_eq!(resumed.levels[16], nodes);
        assert_eq!(resumed.root(size), Some(root));
        std::fs::remove_file(dir.path().join("tile/2/000")).expect("removes tile 2/000");
        assert!(Tree::on_disk(dir.path(), 1, None).resume_at_checkpoint(size, &root).is_err());
    }

    #[test]
    fn tile_paths_follow_c2sp() {
        assert_eq!(tile_path(0, 0, 256), "tile/0/000");
        assert_eq!(tile_path(0, 1234067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 5, 17), "tile/1/005.p/17");
    }
}
