//! The Merkle tree of RFC 6962 / RFC 9162 over SHA-256, as the C2SP
//! `tlog-checkpoint` and `tlog-tiles` formats require:
//! `leaf = SHA-256(0x00 || entry)`, `node = SHA-256(0x01 || left || right)`,
//! the root of the empty tree is `SHA-256("")`.
//!
//! Proofs are *generated* with the recursive definitions of RFC 6962 §2.1.1
//! and §2.1.2 and *verified* with the iterative algorithms of RFC 9162
//! §2.1.3.2 and §2.1.4.2: two formulations written separately, so that a
//! mistake in one is caught by the other, and both are checked against the
//! Certificate Transparency reference vectors.

use sha2::{Digest, Sha256};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Why a proof was refused or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("consistency needs 0 < old size ({old}) <= new size ({new}) <= tree size ({size})")]
    BadSizes { old: u64, new: u64, size: u64 },
    #[error("proof has {actual} hashes, expected {expected}")]
    WrongLength { actual: usize, expected: usize },
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    #[error("a stored tile of the tree is unavailable: {0}")]
    Unavailable(String),
}

/// Hash of a leaf entry.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// Hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two strictly less than `n` (n >= 2): where RFC 6962 splits a tree.
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[n])` of RFC 6962 §2.1 over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// `PATH(m, D[n])` of RFC 6962 §2.1.1: the audit path of leaf `index` in the
/// tree of the first `size` leaves.
pub fn inclusion_proof(leaves: &[Hash], index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    if index >= size || size > leaves.len() as u64 {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    Ok(path(index as usize, &leaves[..size as usize]))
}

fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n as u64) as usize;
    let (mut proof, sibling) = if m < k {
        (path(m, &leaves[..k]), root(&leaves[k..]))
    } else {
        (path(m - k, &leaves[k..]), root(&leaves[..k]))
    };
    proof.push(sibling);
    proof
}

/// `PROOF(m, D[n])` of RFC 6962 §2.1.2: proves the tree of `old` leaves is a
/// prefix of the tree of `new` leaves.
pub fn consistency_proof(leaves: &[Hash], old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
    if old == 0 || old > new || new > leaves.len() as u64 {
        return Err(ProofError::BadSizes { old, new, size: leaves.len() as u64 });
    }
    Ok(subproof(old as usize, &leaves[..new as usize], true))
}

fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete { Vec::new() } else { vec![root(leaves)] };
    }
    let k = split(n as u64) as usize;
    if m <= k {
        let mut proof = subproof(m, &leaves[..k], complete);
        proof.push(root(&leaves[k..]));
        proof
    } else {
        let mut proof = subproof(m - k, &leaves[k..], false);
        proof.push(root(&leaves[..k]));
        proof
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    expected_root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::WrongLength { actual: proof.len(), expected: inclusion_length(index, size) });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength { actual: proof.len(), expected: inclusion_length(index, size) });
    }
    if r == *expected_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

fn inclusion_length(index: u64, size: u64) -> usize {
    // Only for error messages: count what PATH would produce.
    let (mut m, mut n, mut length) = (index, size, 0);
    while n > 1 {
        let k = split(n);
        if m < k {
            n = k;
        } else {
            m -= k;
            n -= k;
        }
        length += 1;
    }
    length
}

/// Verifies a consistency proof between `old_root` (tree size `old`) and
/// `new_root` (tree size `new`) (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::BadSizes { old, new, size: new });
    }
    if old == new {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else if !proof.is_empty() {
            Err(ProofError::WrongLength { actual: proof.len(), expected: 0 })
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    // Step 1: if old is a power of two, prepend old_root to the proof.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength { actual: 0, expected: 1 });
    };
    // Steps 2-5.
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::WrongLength { actual: proof.len(), expected: proof.len() - 1 });
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength { actual: proof.len(), expected: proof.len() + 1 });
    }
    if f_r == *old_root && s_r == *new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}
