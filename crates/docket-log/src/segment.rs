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
/// Every synced write ends with a frame flagged COMMIT, no append is
/// acknowledged before its write is synced, and the next write starts only
/// after that sync returns. So frames after the last commit point were never
/// acknowledged, whatever state they are in. Past a bad frame:
///
/// * two or more valid commit frames prove that a later write was issued, so
///   the write holding the bad frame had been synced: corruption;
/// * more than one write's worth of bytes (`WRITE_BYTES_MAX`) also rules out
///   a torn write: corruption;
/// * otherwise the bad frame may be part of the last, unsynced write, whose
///   pages the kernel may have written in any order (its own commit frame can
///   land without its earlier pages): a torn tail.
///
/// Corruption at rest inside the last acknowledged write is
/// indistinguishable from a torn write here; the ledger's checkpoint check
/// catches it (`Ledger::open` refuses a log shorter than a signed checkpoint).
pub fn scan(bytes: &[u8], first_seq: u64) -> Scan {
    let empty = |reason: String, torn| Scan {
        frames: Vec::new(),
        committed: 0,
        committed_len: 0,
        fault: Some((0, reason, torn)),
    };
    // Frames are written only after the header is synced, so a bad header with
    // a commit frame after it is corruption, and without one an unfinished creation.
    if bytes.len() < HEADER_BYTES || bytes[..HEADER_BYTES] != header(first_seq) {
        let torn = commits_after(bytes) == 0;
        return empty(format!("bad or incomplete segment header (expected first seq {first_seq})"), torn);
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
                    && commits_after(&bytes[offset + 1..]) < 2;
                scan.fault = Some((offset as u64, fault.to_string(), torn));
                return scan;
            }
        }
    }
    scan
}

/// How many valid commit-flagged frames lie in `bytes`, found by trying every
/// offset and skipping over each valid frame found.
fn commits_after(bytes: &[u8]) -> usize {
    let (mut start, mut commits) = (0, 0);
    while start < bytes.len() && commits < 2 {
        match frame::decode(&bytes[start..]) {
            Ok((frame, size)) => {
                commits += usize::from(frame.commit);
                start += size;
            }
            Err(_) => start += 1,
        }
    }
    commits
}
