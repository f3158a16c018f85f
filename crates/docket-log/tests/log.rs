//! The log core on real files: demo ingest, refusals, duplicates, reopen,
//! torn tails, corruption in the middle.

use docket_log::{Config, FsStorage, Log, LogError, Refusal};
use docket_model::{PublicKey, SignedEvent, Timestamp};
use docket_world as world;

fn root(demo: &world::Demo) -> PublicKey {
    PublicKey(demo.registry_root.verifying_key().to_bytes())
}

fn open(dir: &std::path::Path, root: PublicKey) -> Log<FsStorage> {
    Log::open(FsStorage::new(dir), Config { segment_bytes_max: 64 * 1024 }, root, |_| {}).expect("opens").0
}

fn now() -> Timestamp {
    Timestamp::parse("2026-11-02T00:00:00+08:00").expect("time")
}

#[test]
fn the_demo_ingests_and_survives_reopen() {
    // One planted violation every fourth case, the kinds in rotation: 96 cases plant all 24.
    let demo = world::build(96, 7);
    assert!(demo.events.len() > 400, "{} events", demo.events.len());
    assert!(
        demo.violations.len() == world::Violation::ALL.len(),
        "every violation kind is planted: {:?}",
        demo.violations
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), root(&demo));
    for chunk in demo.events.chunks(50) {
        let results = log.append_batch(chunk.to_vec(), now()).expect("appends");
        for (result, event) in results.iter().zip(chunk) {
            assert!(result.is_ok(), "{:?} refused: {result:?}", event.event().kind());
        }
    }
    let size = log.size();
    assert_eq!(size, demo.events.len() as u64);
    let root_hash = log.tree().root(size);
    let segments = std::fs::read_dir(dir.path()).expect("dir").count();
    assert!(segments > 1, "64 KiB segments rotate: {segments}");
    drop(log);
    let mut seen = Vec::new();
    let (log, recovery) =
        Log::open(FsStorage::new(dir.path()), Config { segment_bytes_max: 64 * 1024 }, root(&demo), |record| {
            seen.push(record.seq)
        })
        .expect("reopens");
    assert_eq!(recovery.records, size);
    assert_eq!(recovery.cut, None);
    assert_eq!(seen, (0..size).collect::<Vec<_>>());
    assert_eq!(log.tree().root(size), root_hash);
}

#[test]
fn refusals_duplicates_and_conflicts() {
    let demo = world::build(3, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), root(&demo));
    let first = log.append_batch(demo.events.clone(), now()).expect("appends");
    let size = log.size();
    // The same events again: each returns its original receipt, nothing is written.
    let again = log.append_batch(demo.events.clone(), now()).expect("appends");
    assert_eq!(first, again);
    assert_eq!(log.size(), size);
    // A case event for a case that does not exist.
    let notice = demo
        .events
        .iter()
        .find(|e| e.event().kind() == docket_model::EventKind::MeasureApplied)
        .expect("a measure")
        .clone();
    let mut orphan = notice.event().clone();
    if let docket_model::Body::Case(case) = &mut orphan.body {
        case.number = docket_model::Name::parse("no-such-case").expect("name");
    }
    let signing = world::key(
        1,
        match &orphan.signer {
            docket_model::Signer::Agency(a) => a.as_str(),
            _ => unreachable!(),
        },
    );
    let orphan = SignedEvent::sign(orphan, &signing).expect("signs");
    let result = log.append_batch(vec![orphan], now()).expect("appends");
    assert!(matches!(result[0], Err(Refusal::NoSuchCase { .. })), "{result:?}");
    // A stale expected version names the actual version.
    let mut stale = notice.event().clone();
    if let docket_model::Body::Case(case) = &mut stale.body {
        case.expected_version = Some(0);
    }
    let stale = SignedEvent::sign(stale, &signing).expect("signs");
    let result = log.append_batch(vec![stale], now()).expect("appends");
    assert!(matches!(result[0], Err(Refusal::Conflict { expected: 0, actual }) if actual > 0), "{result:?}");
    // A key that is not registered.
    let mut forged = notice.event().clone();
    let mallory = world::key(1, "mallory");
    forged.key = PublicKey(mallory.verifying_key().to_bytes());
    let forged = SignedEvent::sign(forged, &mallory).expect("signs");
    let result = log.append_batch(vec![forged], now()).expect("appends");
    assert!(matches!(result[0], Err(Refusal::Auth(_))), "{result:?}");
    assert_eq!(log.size(), size, "refusals write nothing");
}

#[test]
fn a_torn_tail_is_truncated_and_corruption_elsewhere_is_named() {
    let demo = world::build(10, 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), root(&demo));
    // Batches of 10: each is one synced write ending in a COMMIT frame.
    for batch in demo.events.chunks(10) {
        log.append_batch(batch.to_vec(), now()).expect("appends");
    }
    let size = log.size();
    let last_batch = (size - 1) % 10 + 1;
    drop(log);
    let mut segments: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let last = segments.last().expect("a segment").clone();
    // Tear the last frame.
    let bytes = std::fs::read(&last).expect("read");
    std::fs::write(&last, &bytes[..bytes.len() - 10]).expect("write");
    let (log, recovery) =
        Log::open(FsStorage::new(dir.path()), Config { segment_bytes_max: 64 * 1024 }, root(&demo), |_| {})
            .expect("recovers");
    assert_eq!(log.size(), size - last_batch, "exactly the torn write is dropped");
    let cut = recovery.cut.expect("the cut is reported");
    assert_eq!(cut.records(), last_batch - 1, "the whole frames of the torn write: {cut}");
    drop(log);
    // Flip a byte in the middle of the first segment: a hard error naming where.
    let first = segments[0].clone();
    let mut bytes = std::fs::read(&first).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&first, &bytes).expect("write");
    let error = Log::open(FsStorage::new(dir.path()), Config::default(), root(&demo), |_| {})
        .expect_err("corruption is an error");
    match error {
        LogError::Corrupted { segment, offset, .. } => {
            assert!(segment.ends_with(".log"));
            assert!(offset <= middle as u64);
        }
        other => panic!("expected Corrupted, got {other}"),
    }
}

#[test]
fn a_checkpoint_worker_signs_on_its_interval_and_at_the_end() {
    use docket_log::ledger::{self, CheckpointWorker, Ledger};
    use docket_log::{Limits, Sequencer};
    let built = world::build(20, 4);
    let dir = tempfile::tempdir().expect("tempdir");
    let log_key = world::key(4, "log");
    ledger::init(dir.path(), "docket.invalid/interval", &log_key, root(&built), None).expect("init");
    let (log, checkpointer, lock) = Ledger::open(dir.path(), Config::default()).expect("open").into_parts();
    let interval = std::time::Duration::from_millis(20);
    let worker = CheckpointWorker::start(checkpointer, log.shared_tree(), log_key, log.size(), interval);
    let durable = worker.notifier();
    let hook: docket_log::DurableHook<FsStorage> = Box::new(move |log: &Log<FsStorage>| durable.durable(log.size()));
    let (sequencer, writer) = Sequencer::start_with_hook(log, Limits::default(), Some(hook));
    for event in &built.events[..100] {
        sequencer.append_blocking(event.clone()).expect("accepted");
    }
    // Poll (bounded) rather than sleep a fixed time: the machine may be loaded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut latest = String::new();
    while std::time::Instant::now() < deadline && !latest.contains("\n100\n") {
        std::thread::sleep(std::time::Duration::from_millis(10));
        latest = std::fs::read_to_string(dir.path().join("checkpoints/latest")).unwrap_or_default();
    }
    assert!(latest.contains("\n100\n"), "the idle writer checkpointed all 100 records within 10 s: {latest:?}");
    for event in &built.events[100..150] {
        sequencer.append_blocking(event.clone()).expect("accepted");
    }
    drop(sequencer);
    let (log, _) = writer.join().expect("writer");
    assert_eq!(log.size(), 150);
    let status = worker.stop();
    assert_eq!((status.signed, status.behind(), status.failures), (150, 0, 0));
    drop((log, lock));
    let ledger = Ledger::open(dir.path(), Config::default()).expect("reopens");
    assert_eq!(ledger.latest_checkpoint().map(|c| c.size), Some(150), "a final checkpoint at shutdown");
}

#[test]
fn checkpoints_write_c2sp_tiles_that_rebuild_the_root() {
    use docket_log::ledger::{self, Ledger};
    use docket_log::merkle::{node_hash, Hash};
    let built = world::build(60, 6);
    let dir = tempfile::tempdir().expect("tempdir");
    let log_key = world::key(6, "log");
    ledger::init(dir.path(), "docket.invalid/tiles", &log_key, root(&built), None).expect("init");
    let mut ledger = Ledger::open(dir.path(), Config::default()).expect("open");
    // Two checkpoints: the second completes the tile the first left partial.
    ledger.log.append_batch(built.events[..200].to_vec(), now()).expect("append");
    ledger.checkpoint(&log_key).expect("checkpoint");
    assert!(dir.path().join("tiles/tile/0/000.p/200").exists());
    ledger.log.append_batch(built.events[200..400].to_vec(), now()).expect("append");
    ledger.checkpoint(&log_key).expect("checkpoint");
    let size = ledger.log.size();
    assert!(size > 256 && size < 512, "{size}");
    // An outsider rebuilds the root from the level-0 tiles alone.
    let read = |path: &str| -> Vec<Hash> {
        std::fs::read(dir.path().join("tiles").join(path))
            .expect(path)
            .chunks(32)
            .map(|c| c.try_into().expect("32"))
            .collect()
    };
    let mut leaves = read("tile/0/000");
    assert_eq!(leaves.len(), 256);
    leaves.extend(read(&format!("tile/0/001.p/{}", size - 256)));
    assert_eq!(docket_log::merkle::root(&leaves), ledger.log.tree().root(size).expect("root"));
    // The level-1 tile holds the root of the first 256 leaves.
    let level1 = read("tile/1/000.p/1");
    let mut level = leaves[..256].to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
    }
    assert_eq!(level1, level);
}
