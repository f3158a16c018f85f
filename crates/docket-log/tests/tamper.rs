//! Tampering with a ledger's segment files: every flipped byte, and every cut
//! out of the middle, makes `verify` fail and name the record it hit.

use std::path::{Path, PathBuf};

use docket_log::ledger::{self, Ledger};
use docket_log::{demo, frame, segment, verify, Config};
use docket_model::{PublicKey, Timestamp};

fn build(dir: &Path) -> PathBuf {
    let built = demo::build(4, 11);
    let log_key = demo::key(11, "log");
    let root = PublicKey(built.registry_root.verifying_key().to_bytes());
    ledger::init(dir, "docket.invalid/tamper", &log_key, root, None).expect("init");
    let mut ledger = Ledger::open(dir, Config::default()).expect("open");
    // Batches of 5: each one synced write ending in a COMMIT frame.
    for batch in built.events.chunks(5) {
        let results = ledger.log.append_batch(batch.to_vec(), Timestamp::now()).expect("append");
        assert!(results.iter().all(Result::is_ok));
    }
    ledger.checkpoint(&log_key).expect("checkpoint");
    dir.join("segments").join(segment::name(0))
}

/// Byte ranges of the frames in a segment: (start, end, seq).
fn frames(bytes: &[u8]) -> Vec<(usize, usize, u64)> {
    let mut out = Vec::new();
    let mut offset = segment::HEADER_BYTES;
    while offset < bytes.len() {
        let (frame, size) = frame::decode(&bytes[offset..]).expect("clean frame");
        out.push((offset, offset + size, frame.seq));
        offset += size;
    }
    out
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
    for index in 0..segment::HEADER_BYTES {
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
