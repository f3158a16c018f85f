//! The log's Merkle tree, stored by level so that any complete subtree's hash
//! is one lookup: `levels[l][i]` is the root of leaves `i·2^l .. (i+1)·2^l`.
//! Proofs then cost O(log² n) lookups, and a C2SP tile (level L, index N) is
//! the slice `levels[8L][256N ..]`.
//!
//! Held in memory (64 bytes per event over all levels) and rebuilt from the
//! segments on open; moving the levels to files is noted in ARCHITECTURE.md.

use crate::merkle::{self, node_hash, split, Hash, ProofError};

/// Hashes per full C2SP tile.
pub const TILE_WIDTH: u64 = 256;

/// A Merkle tree that grows by appending leaf hashes.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Appends a leaf hash and every subtree root it completes.
    pub fn push(&mut self, leaf: Hash) {
        let size_before = self.size();
        self.push_leaf(leaf);
        // Postconditions: one more leaf; level l holds floor(size / 2^l) nodes.
        assert_eq!(self.size(), size_before + 1);
        assert!(self.levels.iter().enumerate().all(|(l, nodes)| nodes.len() as u64 == self.size() >> l));
    }

    fn push_leaf(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
            let count = self.levels[level].len();
            if count % 2 == 1 {
                return;
            }
            hash = node_hash(&self.levels[level][count - 2], &hash);
            level += 1;
        }
    }

    /// MTH of leaves `start .. start + len` (len >= 1, within the tree).
    fn subtree(&self, start: u64, len: u64) -> Hash {
        if len.is_power_of_two() && start.is_multiple_of(len) {
            let level = len.trailing_zeros() as usize;
            return self.levels[level][(start / len) as usize];
        }
        let k = split(len);
        node_hash(&self.subtree(start, k), &self.subtree(start + k, len - k))
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Option<Hash> {
        match size {
            0 => Some(merkle::root(&[])),
            _ if size > self.size() => None,
            _ => Some(self.subtree(0, size)),
        }
    }

    /// `PATH(index, D[size])`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if index >= size || size > self.size() {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    fn path(&self, m: u64, start: u64, n: u64, proof: &mut Vec<Hash>) {
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, proof);
            proof.push(self.subtree(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, proof);
            proof.push(self.subtree(start, k));
        }
    }

    /// `PROOF(old, D[new])`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        if old == 0 || old > new || new > self.size() {
            return Err(ProofError::BadSizes { old, new, size: self.size() });
        }
        let mut proof = Vec::new();
        self.subproof(old, 0, new, true, &mut proof);
        Ok(proof)
    }

    fn subproof(&self, m: u64, start: u64, n: u64, complete: bool, proof: &mut Vec<Hash>) {
        if m == n {
            if !complete {
                proof.push(self.subtree(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, complete, proof);
            proof.push(self.subtree(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, proof);
            proof.push(self.subtree(start, k));
        }
    }

    /// The leaf hash of record `seq` in the tree of `size` leaves, if `seq < size`.
    pub fn leaf(&self, seq: u64, size: u64) -> Option<Hash> {
        if seq >= size || size > self.size() {
            return None;
        }
        self.levels.first().and_then(|leaves| leaves.get(usize::try_from(seq).ok()?).copied())
    }

    /// The C2SP tile at tile level `level`, index `index`, for a tree of
    /// `size` leaves: up to 256 hashes of tree level 8·level. `None` if the
    /// tile is empty at this size.
    pub fn tile(&self, level: u8, index: u64, size: u64) -> Option<Vec<Hash>> {
        let tree_level = 8 * level as usize;
        let available = size >> tree_level;
        let start = index.checked_mul(TILE_WIDTH)?;
        if start >= available || size > self.size() {
            return None;
        }
        let end = available.min(start + TILE_WIDTH);
        self.levels.get(tree_level).map(|hashes| hashes[start as usize..end as usize].to_vec())
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

    #[test]
    fn tile_paths_follow_c2sp() {
        assert_eq!(tile_path(0, 0, 256), "tile/0/000");
        assert_eq!(tile_path(0, 1234067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 5, 17), "tile/1/005.p/17");
    }
}
