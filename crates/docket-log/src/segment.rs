//! Segment files: a header, then frames, until `segment_bytes_max`.
//!
//! ```text
//! header = "DOCKSEG" || version:u8 (1) || first_seq:u64be
//! name   = seg-<first_seq, 20 digits>.log
//! ```

use crate::frame::{self, Frame};

/// File name suffix of segment files.
pub const SEGMENT_SUFFIX: &str = ".log";
/// Segment header magic.
pub const MAGIC: &[u8; 7] = b"DOCKSEG";
/// Segment header version.
pub const SEGMENT_VERSION: u8 = 1;
/// Header size.
pub const HEADER_BYTES: usize = 16;

/// The file name of the segment starting at `first_seq`.
pub fn name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}{SEGMENT_SUFFIX}")
}

/// The first sequence number a segment name claims.
pub fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?.strip_suffix(SEGMENT_SUFFIX)?.parse().ok()
}

/// The header of a segment starting at `first_seq`.
pub fn header(first_seq: u64) -> [u8; HEADER_BYTES] {
    let mut out = [0u8; HEADER_BYTES];
    out[..7].copy_from_slice(MAGIC);
    out[7] = SEGMENT_VERSION;
    out[8..].copy_from_slice(&first_seq.to_be_bytes());
    out
}

/// Most bytes written between two syncs. A torn tail can only be as long as
/// the last unsynced write, which bounds the search recovery makes past a bad frame.
pub const WRITE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Result of scanning one segment's bytes.
#[derive(Debug)]
pub struct Scan {
    /// Every frame that decodes, up to the first bad one, with its offset.
    pub frames: Vec<(u64, Frame)>,
    /// How many of `frames` end at or before the last commit point.
    pub committed: usize,
    /// Offset of the end of the last commit point (durable, acknowledged data).
    pub committed_len: u64,
    /// A bad frame: its offset, why, and whether it is provably a torn tail.
    pub fault: Option<(u64, String, bool)>,
}

impl Scan {
    /// Whether the segment ends exactly at a commit point with nothing bad.
    pub fn is_clean(&self) -> bool {
        self.fault.is_none() && self.committed == self.frames.len()
    }
}

/// Scans a segment.
///
/// Every synced write ends with a frame flagged COMMIT, and no append is
/// acknowledged before its write is synced. So frames after the last commit
/// point were never acknowledged, whatever state they are in. A bad frame is
/// a torn tail if it lies within one write of the end and no commit-flagged
/// frame follows it; otherwise a later write was synced after it, and it is
/// corruption of acknowledged data.
pub fn scan(bytes: &[u8], first_seq: u64) -> Scan {
    let empty = |reason: String, torn| Scan {
        frames: Vec::new(),
        committed: 0,
        committed_len: 0,
        fault: Some((0, reason, torn)),
    };
    if bytes.len() < HEADER_BYTES {
        let torn = bytes.iter().zip(header(first_seq)).all(|(a, b)| *a == b);
        return empty("incomplete segment header".into(), torn);
    }
    if bytes[..HEADER_BYTES] != header(first_seq) {
        return empty(format!("bad segment header (expected first seq {first_seq})"), false);
    }
    let mut offset = HEADER_BYTES;
    let mut scan = Scan { frames: Vec::new(), committed: 0, committed_len: HEADER_BYTES as u64, fault: None };
    while offset < bytes.len() {
        match frame::decode(&bytes[offset..]) {
            Ok((frame, size)) => {
                let commit = frame.commit;
                scan.frames.push((offset as u64, frame));
                offset += size;
                if commit {
                    scan.committed = scan.frames.len();
                    scan.committed_len = offset as u64;
                }
            }
            Err(fault) => {
                let torn = bytes.len() - offset <= WRITE_BYTES_MAX + frame::FRAME_BYTES_MAX
                    && !commit_follows(&bytes[offset + 1..]);
                scan.fault = Some((offset as u64, fault.to_string(), torn));
                return scan;
            }
        }
    }
    scan
}

/// Whether a valid commit-flagged frame starts anywhere in `bytes`.
fn commit_follows(bytes: &[u8]) -> bool {
    (0..bytes.len()).any(|start| matches!(frame::decode(&bytes[start..]), Ok((frame, _)) if frame.commit))
}
