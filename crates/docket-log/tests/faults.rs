//! Fault injection: an in-memory disk that keeps only what was synced and, at
//! a crash, keeps a random part of what was not: a torn prefix, nothing, a
//! corrupted byte, or later pages without earlier ones (writeback reordering).
//! After any crash, reopening loses no acknowledged event and cuts at most the
//! unacknowledged tail. A crash that leaves damage followed by a valid commit
//! frame (reordered pages, a corrupted byte before the last write's commit)
//! is refused without writing a byte, and the operator's explicit cut
//! (`Log::scan_with(.., true)`) then loses nothing acknowledged either.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use docket_log::{Config, Log, LogError, SegmentFile, Storage};
use docket_model::{EventId, PublicKey, Timestamp};
use docket_world as world;
use proptest::prelude::*;

#[derive(Debug, Default)]
struct Disk {
    files: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
    /// Fail the sync that makes the total number of syncs reach this.
    fail_at_sync: Option<u64>,
    syncs: u64,
}

#[derive(Debug, Clone, Default)]
struct Faulty(Arc<Mutex<Disk>>);

#[derive(Debug)]
struct FaultyFile {
    disk: Faulty,
    name: String,
}

impl Storage for Faulty {
    type File = FaultyFile;
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.0.lock().expect("lock").files.keys().cloned().collect())
    }
    fn open(&self, name: &str) -> io::Result<FaultyFile> {
        if !self.0.lock().expect("lock").files.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned()));
        }
        Ok(FaultyFile { disk: self.clone(), name: name.into() })
    }
    fn create(&self, name: &str) -> io::Result<FaultyFile> {
        self.0.lock().expect("lock").files.insert(name.into(), (Vec::new(), Vec::new()));
        Ok(FaultyFile { disk: self.clone(), name: name.into() })
    }
}

impl SegmentFile for FaultyFile {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let disk = self.disk.0.lock().expect("lock");
        let (durable, pending) = &disk.files[&self.name];
        Ok([durable.as_slice(), pending.as_slice()].concat())
    }
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.0.lock().expect("lock");
        disk.files.get_mut(&self.name).expect("file").1.extend_from_slice(bytes);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        let mut disk = self.disk.0.lock().expect("lock");
        disk.syncs += 1;
        if disk.fail_at_sync == Some(disk.syncs) {
            return Err(io::Error::other("injected fdatasync failure"));
        }
        let (durable, pending) = disk.files.get_mut(&self.name).expect("file");
        durable.append(pending);
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut disk = self.disk.0.lock().expect("lock");
        let (durable, pending) = disk.files.get_mut(&self.name).expect("file");
        durable.append(pending);
        durable.truncate(len as usize);
        Ok(())
    }
}

/// What survives of the unsynced bytes at a crash.
#[derive(Debug, Clone, Copy)]
enum Crash {
    Torn(f64),
    Lost,
    Corrupted(f64, usize),
    /// The second half reached the disk, the first half did not (zeros).
    Reordered,
}

impl Faulty {
    fn crash(&self, how: Crash) {
        let mut disk = self.0.lock().expect("lock");
        for (durable, pending) in disk.files.values_mut() {
            let kept: Vec<u8> = match how {
                Crash::Lost => Vec::new(),
                Crash::Torn(fraction) => pending[..(pending.len() as f64 * fraction) as usize].to_vec(),
                Crash::Corrupted(fraction, at) => {
                    let mut kept = pending[..(pending.len() as f64 * fraction) as usize].to_vec();
                    if !kept.is_empty() {
                        let index = at % kept.len();
                        kept[index] ^= 0x5a;
                    }
                    kept
                }
                Crash::Reordered => {
                    let half = pending.len() / 2;
                    let mut kept = vec![0u8; half];
                    kept.extend_from_slice(&pending[half..]);
                    kept
                }
            };
            durable.extend_from_slice(&kept);
            pending.clear();
        }
        disk.fail_at_sync = None;
    }
}

fn crash_strategy() -> impl Strategy<Value = Crash> {
    prop_oneof![
        (0.0..1.0f64).prop_map(Crash::Torn),
        Just(Crash::Lost),
        (0.0..1.0f64, any::<usize>()).prop_map(|(f, at)| Crash::Corrupted(f, at)),
        Just(Crash::Reordered),
    ]
}

fn now() -> Timestamp {
    Timestamp::parse("2026-11-02T00:00:00+08:00").expect("time")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn no_acknowledged_event_is_lost_after_any_crash(
        batch_sizes in proptest::collection::vec(1..40usize, 1..12),
        fail_at in 1..20u64,
        how in crash_strategy(),
        segment_kib in 8..64u64,
    ) {
        let built = world::build(12, 5);
        let root = PublicKey(built.registry_root.verifying_key().to_bytes());
        let disk = Faulty::default();
        let config = Config { segment_bytes_max: segment_kib * 1024 };
        let (mut log, _) = Log::open(disk.clone(), config.clone(), root, |_| {}).expect("opens");
        disk.0.lock().expect("lock").fail_at_sync = Some(fail_at + 1);
        let mut acknowledged: Vec<(u64, EventId)> = Vec::new();
        let mut offered = 0usize;
        let mut events = built.events.iter().cloned();
        for size in batch_sizes {
            let batch: Vec<_> = events.by_ref().take(size).collect();
            if batch.is_empty() {
                break;
            }
            offered += batch.len();
            match log.append_batch(batch, now()) {
                Ok(results) => acknowledged.extend(results.into_iter().map(|r| r.expect("demo events are valid")).map(|r| (r.seq, r.id))),
                Err(LogError::Io { .. }) => {
                    prop_assert!(log.is_poisoned());
                    prop_assert!(matches!(log.append_batch(Vec::new(), now()), Err(LogError::Poisoned(_))));
                    break;
                }
                Err(other) => return Err(TestCaseError::fail(other.to_string())),
            }
        }
        drop(log);
        disk.crash(how);
        let mut replayed: Vec<(u64, EventId)> = Vec::new();
        let before = disk.0.lock().expect("lock").files.clone();
        let log = match Log::open(disk.clone(), config.clone(), root, |record| replayed.push((record.seq, record.event.id()))) {
            Ok((log, _)) => log,
            Err(LogError::Corrupted { .. }) if matches!(how, Crash::Reordered | Crash::Corrupted(..)) => {
                prop_assert!(disk.0.lock().expect("lock").files == before, "a refused open wrote to the disk");
                replayed.clear();
                let opening = Log::scan_with(disk.clone(), config, root, |record| replayed.push((record.seq, record.event.id())), true)
                    .map_err(|e| TestCaseError::fail(format!("the explicit cut failed after {how:?}: {e}")))?;
                prop_assert!(opening.cut().is_some(), "the explicit cut names what it cuts");
                opening.finish().map_err(|e| TestCaseError::fail(e.to_string()))?.0
            }
            Err(error) => return Err(TestCaseError::fail(format!("recovery failed after {how:?}: {error}"))),
        };
        prop_assert!(log.size() as usize >= acknowledged.len(), "lost acknowledged events after {:?}", how);
        prop_assert!(log.size() as usize <= offered);
        prop_assert_eq!(&replayed[..acknowledged.len()], &acknowledged[..]);
        // What survived beyond the acknowledged prefix is the demo's own next events, in order.
        for (seq, id) in &replayed {
            prop_assert_eq!(*id, built.events[*seq as usize].id());
        }
    }
}

/// A failed `fdatasync` poisons the log; the sequencer answers appends with
/// `Unavailable` while it recovers (cutting the unacknowledged write, never
/// retrying the sync), then takes appends again without a restart.
#[test]
fn the_writer_recovers_from_a_failed_sync_without_a_restart() {
    use docket_log::{AppendError, Limits, Sequencer};
    let built = world::build(12, 5);
    let root = PublicKey(built.registry_root.verifying_key().to_bytes());
    let disk = Faulty::default();
    let (log, _) = Log::open(disk.clone(), Config::default(), root, |_| {}).expect("opens");
    let limits = Limits { recovery_backoff_ms: 50, ..Limits::default() };
    let (sequencer, writer) = Sequencer::start(log, limits);
    let mut events = built.events.iter().cloned();
    let mut acknowledged = Vec::new();
    for event in events.by_ref().take(20) {
        acknowledged.push(sequencer.append_blocking(event).expect("accepted").id);
    }
    let syncs = disk.0.lock().expect("lock").syncs;
    disk.0.lock().expect("lock").fail_at_sync = Some(syncs + 1);
    let failed = events.next().expect("an event");
    assert!(matches!(sequencer.append_blocking(failed.clone()), Err(AppendError::Log(_))));
    let refusing = sequencer.health().refusing.expect("health says why appends are refused");
    assert!(refusing.contains("injected fdatasync failure"), "{refusing}");
    // Retry the same event (appends are idempotent by id) until the writer has recovered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let receipt = loop {
        match sequencer.append_blocking(failed.clone()) {
            Ok(receipt) => break receipt,
            Err(AppendError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(receipt.seq, 20, "the failed write was cut and the event written again at its place");
    let health = sequencer.health();
    assert_eq!((health.refusing, health.failures, health.recoveries), (None, 1, 1));
    for event in events.take(10) {
        acknowledged.push(sequencer.append_blocking(event).expect("accepted after recovery").id);
    }
    drop(sequencer);
    let (log, _) = writer.join().expect("writer");
    assert_eq!(log.size(), 31);
    drop(log);
    let mut replayed = Vec::new();
    Log::open(disk, Config::default(), root, |record| replayed.push(record.event.id())).expect("reopens");
    assert_eq!(replayed.len(), 31);
    assert!(acknowledged.iter().all(|id| replayed.contains(id)), "every acknowledged event is in the log");
}
