//! The tree's tiles and the append path's index on disk: a ledger reopens
//! from them and the records after them; a damaged tile or index is rebuilt
//! from the log; their stored forms match the golden vectors.

use docket_log::index::{case_key, id_key, INDEX_FORMAT};
use docket_log::ledger::Ledger;
use docket_log::merkle::{leaf_hash, Hash};
use docket_log::runs::{run_name, Run, RUN_FORMAT};
use docket_log::{Config, Tree};
use docket_model::{SignedEvent, Timestamp};
use docket_world as world;
use sha2::{Digest, Sha256};

fn ledger(subjects: u64) -> (tempfile::TempDir, std::path::PathBuf, Vec<SignedEvent>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger");
    let (demo, _) = world::write_ledger(&path, subjects, 5).expect("writes the ledger");
    // In the order the ledger holds them: events[seq] is the record at seq.
    let times = world::recording_times(&demo.events, &demo.recorded_late);
    let events = world::log_order(&demo.events, &times).into_iter().map(|i| demo.events[i].clone()).collect();
    (dir, path, events)
}

fn checkpoint_root(ledger: &Ledger) -> (u64, Hash) {
    let latest = ledger.latest_checkpoint().expect("a checkpoint");
    (latest.size, latest.root)
}

/// A duplicate of an early event is answered with its original seq.
fn assert_duplicate_found(ledger: &mut Ledger, events: &[SignedEvent], seq: usize) {
    let results = ledger.log.append_batch(vec![events[seq].clone()], Timestamp::now()).expect("appends");
    assert_eq!(results[0].as_ref().map(|r| r.seq), Ok(seq as u64), "a duplicate of seq {seq}");
    assert_eq!(ledger.log.size(), events.len() as u64, "nothing was written");
}

#[test]
fn a_ledger_reopens_from_its_tiles_and_index() {
    let (_dir, path, events) = ledger(1000);
    let total = events.len() as u64;
    assert!(total > 4000, "{total} events");
    // The ledger was written before its index covered anything: the first
    // open replays it and writes the index.
    drop(Ledger::open(&path, Config::default()).expect("opens"));
    let mut ledger = Ledger::open(&path, Config::default()).expect("reopens");
    assert_eq!(ledger.recovery.records, total);
    let (size, root) = checkpoint_root(&ledger);
    assert_eq!(size, total);
    assert!(ledger.recovery.replayed < 256, "replayed {} of {total} records", ledger.recovery.replayed);
    assert_eq!(ledger.log.tree().root(size), Some(root));
    assert_duplicate_found(&mut ledger, &events, 100);
    assert_duplicate_found(&mut ledger, &events, 4000);
    let proof = ledger.log.tree().inclusion_proof(17, total).expect("proof");
    let leaf = ledger.log.tree().leaf(17, total).expect("leaf");
    assert_eq!(docket_log::merkle::verify_inclusion(17, total, &leaf, &proof, &root), Ok(()));
    drop(ledger);
    // The open seeks the tail through the segment's index; a wrong index
    // costs a full replay, never a wrong open.
    let index = std::fs::read_dir(path.join("segments"))
        .expect("segments")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .expect("a segment index");
    let length = std::fs::metadata(&index).expect("index").len() as usize;
    std::fs::write(&index, vec![0x11; length]).expect("breaks the segment index");
    let ledger = Ledger::open(&path, Config::default()).expect("reopens with a wrong segment index");
    assert_eq!(ledger.recovery.replayed, total, "a full replay");
    assert_eq!(ledger.log.tree().root(size), Some(root));
    drop(ledger);
    let ledger = Ledger::open(&path, Config::default()).expect("reopens");
    assert!(ledger.recovery.replayed < 256, "the segment index was rewritten: {}", ledger.recovery.replayed);
}

#[test]
fn a_damaged_tile_or_index_is_rebuilt_from_the_log() {
    let (_dir, path, events) = ledger(1000);
    let total = events.len() as u64;
    drop(Ledger::open(&path, Config::default()).expect("opens"));
    std::fs::write(path.join("tiles/tile/0/003"), [9u8; 8192]).expect("alters a tile");
    std::fs::write(path.join("index.redb"), b"not an index").expect("breaks the index");
    let mut ledger = Ledger::open(&path, Config::default()).expect("reopens");
    assert_eq!(ledger.recovery.replayed, total, "everything was replayed");
    let (size, root) = checkpoint_root(&ledger);
    assert_eq!(ledger.log.tree().root(size), Some(root));
    // The open reads no full tile (it resumes from the checkpoint's own
    // tiles); the first read of the altered one finds it wrong and rebuilds it.
    let seq = 3 * 256 + 5;
    let leaf = ledger.log.tree().leaf(seq, size).expect("a leaf of the altered tile");
    let proof = ledger.log.tree().inclusion_proof(seq, size).expect("proof");
    assert_eq!(docket_log::merkle::verify_inclusion(seq, size, &leaf, &proof, &root), Ok(()));
    let tile = std::fs::read(path.join("tiles/tile/0/003")).expect("tile");
    assert_ne!(tile, vec![9u8; 8192], "the tile was written again");
    assert_duplicate_found(&mut ledger, &events, 10);
    drop(ledger);
    let ledger = Ledger::open(&path, Config::default()).expect("reopens");
    assert!(ledger.recovery.replayed < 256, "the rebuilt index is used: {}", ledger.recovery.replayed);
}

#[test]
fn a_snapshot_reads_the_tiles_and_the_records_after_them() {
    let (_dir, path, events) = ledger(600);
    let total = events.len() as u64;
    let snapshot = docket_log::ledger::Snapshot::open(&path).expect("snapshot");
    assert_eq!(snapshot.size(), total);
    let latest = snapshot.latest.as_ref().expect("checkpoint");
    assert_eq!(snapshot.tree.root(latest.size), Some(latest.root));
    std::fs::remove_file(path.join("tiles/tile/0/001")).expect("removes a tile");
    let snapshot = docket_log::ledger::Snapshot::open(&path).expect("snapshot without a tile");
    assert_eq!(snapshot.tree.root(latest.size), Some(latest.root));
}

/// The stored forms: a full tile (C2SP: 256 hashes, nothing else) and the
/// index's keys and values.
#[test]
fn stored_forms_match_the_golden_vectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tree = Tree::on_disk(dir.path(), 4, None);
    (0..256u32).for_each(|i| tree.push(leaf_hash(&i.to_be_bytes())));
    let tile = std::fs::read(dir.path().join("tile/0/000")).expect("a full tile");
    let demo = world::build(1, 5);
    let demo_event = demo.events.iter().find(|e| e.event().case().is_some()).expect("a case event");
    let case = demo_event.event().case().expect("a case event").case_ref();
    // A run of 400 entries (three blocks, the last partial): key i * 2^100 + i, value i * 3.
    let entries: Vec<(u128, u64)> = (0..400u64).map(|i| ((u128::from(i) << 100) + u128::from(i), i * 3)).collect();
    Run::write(dir.path(), "ids", 9, &entries, false).expect("writes a run");
    let run = std::fs::read(dir.path().join(run_name("ids", 9))).expect("the run");
    let golden = serde_json::json!({
        "about": "Stored forms of docket-log's tree tiles (src/tiles.rs), index (src/index.rs) and \
                  index runs (src/runs.rs). The tile holds leaf_hash(i as u32 big-endian) for i in 0..256.",
        "tile_0_000_bytes": tile.len(),
        "tile_0_000_sha256": hex::encode(Sha256::digest(&tile)),
        "tile_0_000_first_hash": hex::encode(&tile[..32]),
        "index_format": INDEX_FORMAT,
        "id_of_the_demo_case_event": hex::encode(demo_event.id().0),
        "id_key_of_that_id": hex::encode(id_key(&demo_event.id()).to_be_bytes()),
        "case_key_of_the_demo_case": hex::encode(case_key(&case).to_be_bytes()),
        "run_format": RUN_FORMAT,
        "run_of_400_entries_bytes": run.len(),
        "run_of_400_entries_sha256": hex::encode(Sha256::digest(&run)),
        "run_of_400_entries_header": hex::encode(&run[..64]),
        "run_of_400_entries_first_block_start": hex::encode(&run[64..64 + 48]),
        "run_of_400_entries_first_block_checksum": hex::encode(&run[64 + 4080..64 + 4096]),
    });
    docket_testkit::expect_file(
        "tests/golden/log-stored-forms.json",
        &(serde_json::to_string_pretty(&golden).expect("json") + "\n"),
    );
}

/// A run of the index whose block is damaged: the append that reads it
/// fails with the file and block named (nothing is written), and the next
/// open rebuilds the index from the log.
#[test]
fn a_damaged_index_run_is_named_and_rebuilt_from_the_log() {
    let (_dir, path, events) = ledger(1000);
    let total = events.len() as u64;
    drop(Ledger::open(&path, Config::default()).expect("opens"));
    let runs: Vec<std::path::PathBuf> = std::fs::read_dir(path.join("index.runs"))
        .expect("the index's runs")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ids-")))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let mut bytes = std::fs::read(&runs[0]).expect("reads the run");
    let block = 64 + 3 * 4096;
    let first_key: [u8; 16] = bytes[block..block + 16].try_into().expect("16 bytes");
    let victim = events.iter().position(|e| id_key(&e.id()).to_be_bytes() == first_key).expect("that key's event");
    bytes[block + 100] ^= 1;
    std::fs::write(&runs[0], &bytes).expect("damages the run");
    let mut ledger = Ledger::open(&path, Config::default()).expect("opens: the run's filter and keys are intact");
    let error = ledger.log.append_batch(vec![events[victim].clone()], Timestamp::now()).expect_err("refused");
    assert!(error.to_string().contains("block 3 does not match its checksum"), "{error}");
    assert!(error.to_string().contains("ids-"), "names the run: {error}");
    assert_eq!(ledger.log.size(), total, "nothing was written");
    drop(ledger);
    let mut ledger = Ledger::open(&path, Config::default()).expect("reopens");
    assert_eq!(ledger.recovery.replayed, total, "the index was rebuilt from the log");
    assert_duplicate_found(&mut ledger, &events, victim);
}
