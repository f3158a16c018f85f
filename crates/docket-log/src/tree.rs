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
use crate::tiles::{Expanded, LeafSource, TileStore};

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
        let tile_level = (level / 8) as u8;
        let height = (level % 8) as u32;
        let tile_index = index >> (8 - height);
        let tile = self.full_tile(tile_level, tile_index)?;
        Ok(tile.node(height, index - (tile_index << (8 - height))))
    }

    /// A full stored tile, checked against its parent node; rebuilt from
    /// the log if missing or wrong.
    fn full_tile(&self, level: u8, index: u64) -> Result<Arc<Expanded>, String> {
        let store = self.store.as_ref().ok_or("a tree in memory has no stored tiles")?;
        if let Some(tile) = store.cached(level, index) {
            return Ok(tile);
        }
        let parent = self.node(8 * (level as usize + 1), index)?;
        let stored = store.read(level, index).map(|row| Expanded::from_row(&row));
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
            }
            row = tiles.iter().map(Expanded::root).collect();
        }
        let tile = Expanded::from_row(&row);
        if tile.root() != *parent {
            return Err(format!("tile {level}/{index} rebuilt from the log does not match the tree"));
        }
        store.write(level, index, tile.row())?;
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

    #[test]
    fn tile_paths_follow_c2sp() {
        assert_eq!(tile_path(0, 0, 256), "tile/0/000");
        assert_eq!(tile_path(0, 1234067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 5, 17), "tile/1/005.p/17");
    }
}
