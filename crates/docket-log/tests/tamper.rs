//! Tampering with a ledger's segment files: every flipped byte, and every cut
//! out of the middle, makes `verify` fail and name the record it hit.

use std::path::{Path, PathBuf};

use docket_log::inspect::{frame_spans, SEGMENT_HEADER_BYTES};
use docket_log::ledger::{self, Ledger};
use docket_log::{verify, Config};
use docket_model::{PublicKey, Timestamp};
use docket_world as world;

fn build(dir: &Path) -> PathBuf {
    let built = world::build(4, 11);
    let log_key = world::key(11, "log");
    let root = PublicKey(built.registry_root.verifying_key().to_bytes());
    ledger::init(dir, "docket.invalid/tamper", &log_key, root, None).expect("init");
    let mut ledger = Ledger::open(dir, Config::default()).expect("open");
    // Batches of 5: each one synced write ending in a COMMIT frame. The last
    // event goes alone: damage in the last write leaves no COMMIT after it,
    // so the scan reads the whole write as a tail and names its first seq;
    // a one-frame last write lets every frame be named exactly.
    let (last, rest) = built.events.split_last().expect("events");
    for batch in rest.chunks(5).chain([std::slice::from_ref(last)]) {
        let results = ledger.log.append_batch(batch.to_vec(), Timestamp::now()).expect("append");
        assert!(results.iter().all(Result::is_ok));
    }
    ledger.checkpoint(&log_key).expect("checkpoint");
    ledger::Paths::new(dir).segment(0)
}

/// Byte ranges of the frames in a segment: (start, end, seq).
fn frames(bytes: &[u8]) -> Vec<(usize, usize, u64)> {
    frame_spans(bytes).expect("clean frames").into_iter().map(|span| (span.start, span.end, span.seq)).collect()
}

fn verify_fails_at(dir: &Path) -> Option<u64> {
    match verify::verify(dir, None, 2, &mut |_, _| {}) {
        Ok(_) => None,
        Err(failure) => Some(failure.seq.unwrap_or(u64::MAX)),
    }
}

#[test]
fn every_flipped_byte_is_caught_and_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = build(dir.path());
    assert_eq!(verify_fails_at(dir.path()), None, "the clean ledger verifies");
    let clean = std::fs::read(&path).expect("segment");
    let layout = frames(&clean);
    assert!(layout.len() > 60, "{} frames", layout.len());
    // Header bytes: the segment is named at seq 0.
    for index in 0..SEGMENT_HEADER_BYTES {
        let mut bytes = clean.clone();
        bytes[index] ^= 0x01;
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(verify_fails_at(dir.path()), Some(0), "header byte {index}");
    }
    // Every byte of every 7th frame, and the first and last byte of every frame.
    for (position, (start, end, seq)) in layout.iter().enumerate() {
        let indexes: Vec<usize> = if position % 7 == 0 { (*start..*end).collect() } else { vec![*start, end - 1] };
        for index in indexes {
            let mut bytes = clean.clone();
            bytes[index] ^= 0x80;
            std::fs::write(&path, &bytes).expect("write");
            assert_eq!(verify_fails_at(dir.path()), Some(*seq), "byte {index} in frame of seq {seq}");
        }
    }
    std::fs::write(&path, &clean).expect("restore");
    assert_eq!(verify_fails_at(dir.path()), None);
}

#[test]
fn cutting_out_the_middle_is_caught_and_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = build(dir.path());
    let clean = std::fs::read(&path).expect("segment");
    let layout = frames(&clean);
    for (cut_start, cut_len) in
        [(layout[10].0, 1), (layout[20].0 + 5, 100), (layout[30].0, layout[31].1 - layout[30].0), (layout[40].1 - 3, 7)]
    {
        let mut bytes = clean[..cut_start].to_vec();
        bytes.extend_from_slice(&clean[cut_start + cut_len..]);
        std::fs::write(&path, &bytes).expect("write");
        let hit = layout.iter().find(|(start, end, _)| cut_start >= *start && cut_start < *end).expect("a frame").2;
        assert_eq!(verify_fails_at(dir.path()), Some(hit), "cut {cut_len} bytes at {cut_start}");
    }
    // Dropping whole batches from the end leaves a clean log that the checkpoint shows is short.
    let last_commit = (0..layout.len() - 3).rev().find(|i| (i + 1) % 5 == 0).expect("a commit point");
    let keep = layout[last_commit].1;
    std::fs::write(&path, &clean[..keep]).expect("write");
    let failure = verify::verify(dir.path(), None, 2, &mut |_, _| {}).expect_err("shorter than its checkpoint");
    assert!(failure.reason.contains("records are missing"), "{failure}");
}

/// Every file of a ledger's segments directory (segments and their indexes) with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir.join("segments")).expect("segments").map(|e| e.expect("entry").path()).collect();
    files.sort();
    files.into_iter().map(|path| (path.clone(), std::fs::read(&path).expect("read"))).collect()
}

fn restore(files: &[(PathBuf, Vec<u8>)]) {
    for (path, bytes) in files {
        std::fs::write(path, bytes).expect("restore");
    }
}

/// A flipped bit in any frame of a multi-segment ledger: damage before the
/// last valid COMMIT is refused naming its seq, and leaves every byte as it
/// was; only the last write, beyond the checkpoint, may be cut, and the cut
/// is reported; once a checkpoint covers the last write, it is refused too.
#[test]
fn opening_a_damaged_ledger_refuses_or_cuts_exactly_by_the_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = world::build(6, 12);
    let log_key = world::key(12, "log");
    let root = PublicKey(built.registry_root.verifying_key().to_bytes());
    let config = Config { segment_bytes_max: 8 * 1024 };
    ledger::init(dir.path(), "docket.invalid/flips", &log_key, root, None).expect("init");
    let mut ledger = Ledger::open(dir.path(), config.clone()).expect("open");
    let groups: Vec<_> = built.events.chunks(5).collect();
    let (checkpointed, last_two) = groups.split_at(groups.len() - 2);
    for batch in checkpointed {
        ledger.log.append_batch(batch.to_vec(), Timestamp::now()).expect("append");
    }
    let checkpoint_size = ledger.log.size();
    ledger.checkpoint(&log_key).expect("checkpoint");
    for batch in last_two {
        ledger.log.append_batch(batch.to_vec(), Timestamp::now()).expect("append");
    }
    let size = ledger.log.size();
    let last_group = last_two[1].len() as u64;
    drop(ledger);
    let clean = snapshot(dir.path());
    let segments: Vec<&(PathBuf, Vec<u8>)> =
        clean.iter().filter(|(path, _)| path.extension().is_some_and(|e| e == "log")).collect();
    assert!(segments.len() >= 3, "{} segments", segments.len());
    let mut trials = 0;
    for (index, (path, bytes)) in segments.iter().enumerate() {
        let is_last_segment = index + 1 == segments.len();
        for (start, end, seq) in frames(bytes) {
            let mut damaged = bytes.clone();
            damaged[(start + end) / 2] ^= 0x08;
            std::fs::write(path, &damaged).expect("write");
            let before = snapshot(dir.path());
            let result = Ledger::open(dir.path(), config.clone());
            let last_commit = is_last_segment && end == bytes.len();
            match result {
                Ok(ledger) if last_commit => {
                    let cut = ledger.recovery.cut.clone().expect("the cut is reported");
                    assert_eq!(cut.seqs, Some((size - last_group, size - 2)), "{cut}");
                    assert_eq!(ledger.log.size(), size - last_group);
                }
                Ok(_) => panic!("a flip in the frame of seq {seq} opened"),
                Err(ledger::LedgerError::Log(docket_log::LogError::Corrupted { seq: found, .. })) if !last_commit => {
                    assert_eq!(found, seq, "the refusal names the damaged record");
                    assert!(snapshot(dir.path()) == before, "a refused open wrote to the disk (seq {seq})");
                }
                Err(other) => panic!("flip at seq {seq}: {other}"),
            }
            restore(&clean);
            trials += 1;
        }
    }
    assert_eq!(trials, size, "one trial per record");
    // Once a checkpoint covers the last write, even its torn-looking commit frame is refused.
    let mut ledger = Ledger::open(dir.path(), config.clone()).expect("open");
    assert!(ledger.checkpoint(&log_key).expect("checkpoint").contains(&format!("\n{size}\n")));
    drop(ledger);
    let clean = snapshot(dir.path());
    let (path, bytes) =
        clean.iter().rfind(|(path, _)| path.extension().is_some_and(|e| e == "log")).expect("a segment");
    let mut damaged = bytes.clone();
    let end = damaged.len();
    damaged[end - 40] ^= 0x08;
    std::fs::write(path, &damaged).expect("write");
    let before = snapshot(dir.path());
    let error = Ledger::open(dir.path(), config).expect_err("a checkpoint covers the last write");
    assert!(error.to_string().contains(&format!("checkpoint size {size}")), "{error}");
    assert!(snapshot(dir.path()) == before, "nothing written");
    assert!(checkpoint_size < size);
}
