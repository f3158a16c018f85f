//! A ledger opens in a time that does not grow with its history: its tree
//! resumes from the few tiles its latest checkpoint wrote, checked against
//! the checkpoint's root; when they are damaged it resumes the slower way,
//! never with a wrong root. The tiles' inner-node files match their golden
//! vector.

use docket_log::ledger::{Ledger, Snapshot};
use docket_log::merkle::{leaf_hash, verify_inclusion};
use docket_log::tiles::{inner_path, INNER_FORMAT};
use docket_log::{tile_path, Config, Tree};
use docket_world as world;
use sha2::{Digest, Sha256};

fn ledger(subjects: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger");
    world::write_ledger(&path, subjects, 5).expect("writes the ledger");
    // The first open writes the index (the ledger was written without one).
    drop(Ledger::open(&path, Config::default()).expect("opens"));
    (dir, path)
}

/// The partial level-1 tile the latest checkpoint of `size` wrote.
fn checkpoint_level_one_tile(path: &std::path::Path, size: u64) -> std::path::PathBuf {
    path.join("tiles").join(tile_path(1, size >> 16, (size >> 8) % 256))
}

#[test]
fn a_ledger_and_a_snapshot_resume_from_the_tiles_of_the_latest_checkpoint() {
    let (_dir, path) = ledger(1000);
    let ledger = Ledger::open(&path, Config::default()).expect("reopens");
    let latest = ledger.latest_checkpoint().expect("a checkpoint").clone();
    assert!(ledger.opened.fallbacks.is_empty(), "{}", ledger.opened.summary());
    assert!(ledger.recovery.replayed < 256, "replayed {}", ledger.recovery.replayed);
    assert_eq!(ledger.log.tree().root(latest.size), Some(latest.root));
    drop(ledger);
    let snapshot = Snapshot::open(&path).expect("snapshot");
    assert!(snapshot.opened.fallbacks.is_empty(), "{}", snapshot.opened.summary());
    assert_eq!(snapshot.tree.root(latest.size), Some(latest.root));
    let seq = latest.size / 3;
    let proof = snapshot.tree.inclusion_proof(seq, latest.size).expect("proof");
    let leaf = snapshot.tree.leaf(seq, latest.size).expect("leaf");
    assert_eq!(verify_inclusion(seq, latest.size, &leaf, &proof, &latest.root), Ok(()));
}

#[test]
fn a_damaged_checkpoint_tile_costs_the_slower_resume_never_a_wrong_root() {
    let (_dir, path) = ledger(1000);
    let size = Snapshot::open(&path).expect("snapshot").latest.expect("a checkpoint").size;
    let tile = checkpoint_level_one_tile(&path, size);
    let stored = std::fs::read(&tile).expect("the checkpoint's level-1 tile");
    for (damage, bytes) in
        [("altered", { stored.iter().map(|b| b ^ 0x5a).collect::<Vec<u8>>() }), ("torn", stored[..32].to_vec())]
    {
        std::fs::write(&tile, &bytes).expect("damages the tile");
        let ledger = Ledger::open(&path, Config::default()).expect("opens the slower way");
        let latest = ledger.latest_checkpoint().expect("a checkpoint").clone();
        assert_eq!(ledger.opened.fallbacks.len(), 1, "{damage}: {}", ledger.opened.summary());
        assert!(ledger.recovery.replayed < 256, "{damage}: from the level-0 tiles, not the whole log");
        assert_eq!(ledger.log.tree().root(latest.size), Some(latest.root), "{damage}");
        drop(ledger);
        let snapshot = Snapshot::open(&path).expect("snapshot");
        assert_eq!(snapshot.opened.fallbacks.len(), 1, "{damage}: {}", snapshot.opened.summary());
        assert_eq!(snapshot.tree.root(latest.size), Some(latest.root), "{damage}");
    }
    std::fs::write(&tile, &stored).expect("restores the tile");
    let ledger = Ledger::open(&path, Config::default()).expect("opens");
    assert!(ledger.opened.fallbacks.is_empty(), "{}", ledger.opened.summary());
}

#[test]
fn proofs_read_the_inner_nodes_and_a_damaged_inner_file_is_never_believed() {
    let (_dir, path) = ledger(1000);
    let inner = path.join("tiles").join(inner_path(0));
    let stored = std::fs::read(&inner).expect("the level-0 inner nodes");
    let snapshot = Snapshot::open(&path).expect("snapshot");
    let latest = snapshot.latest.clone().expect("a checkpoint");
    let tiles = latest.size / 256;
    assert_eq!(stored.len() as u64, 16 + 512 * tiles, "an entry per full level-0 tile");
    let expected: Vec<_> =
        (0..latest.size).step_by(97).map(|seq| (seq, snapshot.tree.leaf(seq, latest.size).expect("leaf"))).collect();
    drop(snapshot);
    std::fs::write(&inner, stored.iter().map(|b| b ^ 0xff).collect::<Vec<u8>>()).expect("damages every entry");
    let snapshot = Snapshot::open(&path).expect("snapshot");
    for (seq, leaf) in &expected {
        let proof = snapshot.tree.inclusion_proof(*seq, latest.size).expect("proof");
        assert_eq!(snapshot.tree.leaf(*seq, latest.size).as_ref(), Some(leaf), "seq {seq}");
        assert_eq!(verify_inclusion(*seq, latest.size, leaf, &proof, &latest.root), Ok(()), "seq {seq}");
    }
    assert_eq!(std::fs::read(&inner).expect("the inner nodes"), stored, "written again as each tile was read whole");
}

/// The stored form of the inner-node file: a header, then each full tile's
/// 16 nodes at height 4.
#[test]
fn inner_nodes_match_the_golden_vector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tree = Tree::on_disk(dir.path(), 4, None);
    (0..512u32).for_each(|i| tree.push(leaf_hash(&i.to_be_bytes())));
    let file = std::fs::read(dir.path().join(inner_path(0))).expect("the level-0 inner nodes");
    let golden = serde_json::json!({
        "about": "The inner-node file of tile level 0 (src/tiles.rs) of a tree of leaf_hash(i as u32 big-endian) \
                  for i in 0..512: a header (magic, format, level), then each full tile's 16 nodes at height 4.",
        "inner_format": INNER_FORMAT,
        "inner_0_header": hex::encode(&file[..16]),
        "inner_0_bytes": file.len(),
        "inner_0_sha256": hex::encode(Sha256::digest(&file)),
        "inner_0_tile_1_first_node": hex::encode(&file[16 + 512..16 + 512 + 32]),
    });
    docket_testkit::expect_file(
        "tests/golden/log-tree-inner.json",
        &(serde_json::to_string_pretty(&golden).expect("json") + "\n"),
    );
    let first = docket_log::merkle::root(&(256..272u32).map(|i| leaf_hash(&i.to_be_bytes())).collect::<Vec<_>>());
    assert_eq!(&file[16 + 512..16 + 512 + 32], &first[..], "tile 1's first entry is the root of its first 16 leaves");
}

/// A sequencer that stops cleanly leaves the index covering the whole log:
/// the next open replays only the leaves after the checkpoint's last whole
/// tile. A log dropped without a clean stop leaves its records to replay.
#[test]
fn a_clean_stop_leaves_nothing_for_the_next_open_to_replay() {
    use docket_log::ledger;
    use docket_log::{Limits, Sequencer};
    let built = world::build(100, 7);
    assert!(built.events.len() > 400, "{} events", built.events.len());
    let root = docket_model::PublicKey(built.registry_root.verifying_key().to_bytes());
    let log_key = world::key(7, "log");
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        ledger::init(dir.path(), "docket.invalid/stop", &log_key, root, None).expect("init");
        let (mut log, mut checkpointer, lock) = Ledger::open(dir.path(), Config::default()).expect("open").into_parts();
        if clean {
            let (sequencer, writer) = Sequencer::start(log, Limits::default());
            for event in &built.events[..400] {
                sequencer.append_blocking(event.clone()).expect("accepted");
            }
            drop(sequencer);
            log = writer.join().expect("writer").0;
        } else {
            log.append_batch(built.events[..400].to_vec(), docket_model::Timestamp::now()).expect("appends");
        }
        checkpointer.sign(&log.tree(), log.size(), &log_key).expect("checkpoint");
        drop((log, lock));
        let ledger = Ledger::open(dir.path(), Config::default()).expect("reopens");
        let replayed = ledger.recovery.replayed;
        if clean {
            assert_eq!(replayed, 400 - 256, "only the leaves after the last whole tile");
        } else {
            assert_eq!(replayed, 400, "every record, for the index");
        }
    }
}
