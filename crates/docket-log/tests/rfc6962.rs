//! The Merkle tree against the Certificate Transparency reference vectors
//! (the leaves, roots and proofs used by the RFC 6962 implementations in
//! certificate-transparency and its Go port), and generated proofs against
//! the independently written RFC 9162 verifiers for every size up to 70.

use docket_log::merkle::*;
use proptest::prelude::*;

fn h(text: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).expect("64 hex digits");
    out
}

fn leaves() -> Vec<Hash> {
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .iter()
        .map(|entry| leaf_hash(&hex::decode(entry).expect("hex")))
        .collect()
}

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn roots_match_the_reference_for_every_size() {
    let leaves = leaves();
    for size in 0..=8 {
        assert_eq!(root(&leaves[..size]), h(ROOTS[size]), "size {size}");
    }
}

#[test]
fn inclusion_proofs_match_the_reference() {
    let leaves = leaves();
    let cases: [(u64, u64, &[&str]); 3] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (0, 1, &[]),
    ];
    for (index, size, expected) in cases {
        let expected: Vec<Hash> = expected.iter().map(|e| h(e)).collect();
        let proof = inclusion_proof(&leaves, index, size).expect("proof");
        assert_eq!(proof, expected, "index {index} size {size}");
        let tree_root = h(ROOTS[size as usize]);
        assert_eq!(verify_inclusion(index, size, &leaves[index as usize], &proof, &tree_root), Ok(()));
    }
}

#[test]
fn consistency_proof_matches_the_reference() {
    let leaves = leaves();
    let expected = vec![
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ];
    assert_eq!(consistency_proof(&leaves, 2, 5).expect("proof"), expected);
    assert_eq!(verify_consistency(2, 5, &h(ROOTS[2]), &h(ROOTS[5]), &expected), Ok(()));
}

#[test]
fn every_generated_proof_verifies_and_every_altered_one_fails() {
    let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let roots: Vec<Hash> = (0..=leaves.len()).map(|n| root(&leaves[..n])).collect();
    for size in 1..=leaves.len() as u64 {
        let tree_root = roots[size as usize];
        for index in 0..size {
            let proof = inclusion_proof(&leaves, index, size).expect("proof");
            let leaf = leaves[index as usize];
            assert_eq!(verify_inclusion(index, size, &leaf, &proof, &tree_root), Ok(()), "inclusion {index}/{size}");
            assert!(verify_inclusion(index, size, &leaves[(index as usize + 1) % 70], &proof, &tree_root).is_err());
            if let Some((first, rest)) = proof.split_first() {
                let mut bad = first.to_vec();
                bad[0] ^= 1;
                let mut altered = vec![<Hash>::try_from(bad.as_slice()).expect("32")];
                altered.extend_from_slice(rest);
                assert!(verify_inclusion(index, size, &leaf, &altered, &tree_root).is_err());
                assert!(verify_inclusion(index, size, &leaf, rest, &tree_root).is_err(), "short proof {index}/{size}");
            }
            let mut long = proof.clone();
            long.push(tree_root);
            assert!(verify_inclusion(index, size, &leaf, &long, &tree_root).is_err(), "long proof {index}/{size}");
        }
        for old in 1..=size {
            let proof = consistency_proof(&leaves, old, size).expect("proof");
            let (old_root, new_root) = (roots[old as usize], roots[size as usize]);
            assert_eq!(
                verify_consistency(old, size, &old_root, &new_root, &proof),
                Ok(()),
                "consistency {old}->{size}"
            );
            if old < size {
                let wrong_old = roots[old as usize - 1];
                assert!(
                    verify_consistency(old, size, &wrong_old, &new_root, &proof).is_err(),
                    "{old}->{size} with a wrong old root"
                );
                if !proof.is_empty() {
                    assert!(
                        verify_consistency(old, size, &old_root, &new_root, &proof[1..]).is_err(),
                        "short {old}->{size}"
                    );
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn verifiers_never_panic_on_arbitrary_proofs(
        index in 0..200u64, size in 0..200u64, old in 0..200u64,
        proof in proptest::collection::vec(any::<[u8; 32]>(), 0..12), a in any::<[u8; 32]>(), b in any::<[u8; 32]>()
    ) {
        let _ = verify_inclusion(index, size, &a, &proof, &b);
        let _ = verify_consistency(old, size, &a, &b, &proof);
    }
}
