//! The read-only reader: every committed record in order from any seq,
//! across segments; stops before an unsynced or torn tail; refuses
//! corruption in the middle, naming segment, offset and seq.

use std::ops::ControlFlow;

use docket_log::Reader;
use docket_log::{Config, FsStorage, Log, LogError};
use docket_model::{PublicKey, Timestamp};
use docket_world as world;

fn ledger(events: usize) -> (tempfile::TempDir, Vec<[u8; 32]>) {
    let demo = world::build(40, 3);
    let root = PublicKey(demo.registry_root.verifying_key().to_bytes());
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) =
        Log::open(FsStorage::new(dir.path()), Config { segment_bytes_max: 16 * 1024 }, root, |_| {}).expect("opens");
    let now = Timestamp::parse("2026-11-02T00:00:00+08:00").expect("time");
    for chunk in demo.events[..events].chunks(7) {
        for result in log.append_batch(chunk.to_vec(), now).expect("appends") {
            result.expect("accepted");
        }
    }
    drop(log);
    let mut checksums = vec![];
    Reader::new(dir.path())
        .read_from(0, None, |frame| {
            checksums.push(frame.checksum);
            ControlFlow::Continue(())
        })
        .expect("reads");
    (dir, checksums)
}

fn seqs_from(reader: &Reader, from: u64, prev: Option<[u8; 32]>) -> Result<Vec<u64>, LogError> {
    let mut seqs = vec![];
    reader.read_from(from, prev, |frame| {
        seqs.push(frame.seq);
        ControlFlow::Continue(())
    })?;
    Ok(seqs)
}

#[test]
fn reads_every_record_from_any_seq_across_segments() {
    let (dir, checksums) = ledger(200);
    assert_eq!(checksums.len(), 200);
    let segments = std::fs::read_dir(dir.path()).expect("dir").count();
    assert!(segments > 2, "small segments rotate: {segments}");
    let reader = Reader::new(dir.path());
    for from in [0u64, 1, 57, 123, 199, 200] {
        let prev = from.checked_sub(1).map(|p| checksums[p as usize]);
        let seqs = seqs_from(&reader, from, prev).expect("reads");
        assert_eq!(seqs, (from..200).collect::<Vec<_>>(), "from {from}");
    }
    // A wrong chain head is caught at the first frame.
    let error = seqs_from(&reader, 57, Some([9; 32])).expect_err("chain checked");
    assert!(error.to_string().contains("hash chain broken"), "{error}");
    assert_eq!(reader.checksum_of(123).expect("reads"), Some(checksums[123]));
    assert_eq!(reader.checksum_of(200).expect("reads"), None);
}

/// The segment files (not their indexes), in order.
fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    names
}

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    segment_files(dir).pop().expect("a segment")
}

#[test]
fn stops_before_a_torn_or_unsynced_tail_and_leaves_it_alone() {
    let (dir, _) = ledger(100);
    let last = last_segment(dir.path());
    let before = std::fs::read(&last).expect("read");
    // Half a frame at the end: a write in progress.
    let mut torn = before.clone();
    torn.extend_from_slice(&before[before.len() - 300..before.len() - 100]);
    std::fs::write(&last, &torn).expect("write");
    let seqs = seqs_from(&Reader::new(dir.path()), 0, None).expect("reads");
    assert_eq!(seqs.len(), 100);
    assert_eq!(std::fs::read(&last).expect("read"), torn, "the reader never truncates");
}

#[test]
fn corruption_in_a_closed_segment_is_an_error_naming_where() {
    let (dir, _) = ledger(200);
    let names = segment_files(dir.path());
    let first = &names[0];
    let mut bytes = std::fs::read(first).expect("read");
    bytes[200] ^= 0x40;
    std::fs::write(first, &bytes).expect("write");
    let error = seqs_from(&Reader::new(dir.path()), 0, None).expect_err("corruption found");
    match error {
        LogError::Corrupted { segment, offset, .. } => {
            assert!(first.ends_with(&segment), "{segment}");
            assert!(offset <= 200, "offset {offset}");
        }
        other => panic!("{other}"),
    }
}

/// The seq -> offset index beside each segment: the writer keeps it, and a
/// read from any seq seeks through it. It is derived data: a missing,
/// short, stale or garbage index changes no answer (the read scans instead),
/// and reopening the log writes it again.
#[test]
fn reads_seek_through_the_segment_index_and_never_trust_it() {
    let (dir, checksums) = ledger(200);
    let reader = Reader::new(dir.path());
    let mut indexes: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    indexes.sort();
    assert!(indexes.len() > 2, "one index per segment");
    let entries: u64 = indexes.iter().map(|p| std::fs::metadata(p).expect("idx").len() / 8).sum();
    assert_eq!(entries, 200, "one entry per record");
    let all = |reader: &Reader| -> Vec<Vec<u64>> {
        (0..=200u64)
            .map(|from| seqs_from(reader, from, from.checked_sub(1).map(|p| checksums[p as usize])).expect("reads"))
            .collect()
    };
    let expected: Vec<Vec<u64>> = (0..=200u64).map(|from| (from..200).collect()).collect();
    assert_eq!(all(&reader), expected);
    for damage in [b"garbage!".repeat(40), Vec::new(), vec![0u8; 16]] {
        for index in &indexes {
            std::fs::write(index, &damage).expect("damage the index");
        }
        assert_eq!(all(&reader), expected, "an index of {} bytes changes no answer", damage.len());
    }
    for index in &indexes {
        std::fs::remove_file(index).expect("remove");
    }
    assert_eq!(all(&reader), expected, "no index: the reader scans");
    let demo = world::build(40, 3);
    let root = PublicKey(demo.registry_root.verifying_key().to_bytes());
    drop(Log::open(FsStorage::new(dir.path()), Config { segment_bytes_max: 16 * 1024 }, root, |_| {}).expect("opens"));
    let entries: u64 = indexes.iter().map(|p| std::fs::metadata(p).expect("rewritten").len() / 8).sum();
    assert_eq!(entries, 200, "reopening writes the indexes again");
}
