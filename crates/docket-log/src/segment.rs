//! Segment files: a header, then frames, until `segment_bytes_max`.
//!
//! ```text
//! header = "DOCKSEG" || version:u8 (1) || first_seq:u64be
//! name   = seg-<first_seq, 20 digits>.log
//! ```

use crate::frame::{self, Frame, FrameFault};

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
    name.strip_prefix("seg-")?
        .strip_suffix(SEGMENT_SUFFIX)?
        .parse()
        .ok()
}

/// The header of a segment starting at `first_seq`.
pub fn header(first_seq: u64) -> [u8; HEADER_BYTES] {
    let mut out = [0u8; HEADER_BYTES];
    out[..7].copy_from_slice(MAGIC);
    out[7] = SEGMENT_VERSION;
    out[8..].copy_from_slice(&first_seq.to_be_bytes());
    out
}

/// Result of scanning one segment's bytes.
#[derive(Debug)]
pub struct Scan {
    /// Frames that decoded, in order, with their byte offsets.
    pub frames: Vec<(u64, Frame)>,
    /// Offset where valid data ends.
    pub valid_len: u64,
    /// If the scan stopped early: the offset, and why.
    pub fault: Option<(u64, String, bool)>,
}

/// Scans a segment. A bad frame that reaches the end of the file is a torn
/// tail (`fault.2 == true`); a bad frame with data after it is corruption.
pub fn scan(bytes: &[u8], first_seq: u64) -> Scan {
    if bytes.len() < HEADER_BYTES {
        let torn = bytes.iter().zip(header(first_seq)).all(|(a, b)| *a == b);
        return Scan {
            frames: Vec::new(),
            valid_len: 0,
            fault: Some((0, "incomplete segment header".into(), torn)),
        };
    }
    if bytes[..HEADER_BYTES] != header(first_seq) {
        return Scan {
            frames: Vec::new(),
            valid_len: 0,
            fault: Some((
                0,
                format!("bad segment header (expected first seq {first_seq})"),
                false,
            )),
        };
    }
    let mut offset = HEADER_BYTES;
    let mut frames = Vec::new();
    while offset < bytes.len() {
        match frame::decode(&bytes[offset..]) {
            Ok((frame, size)) => {
                frames.push((offset as u64, frame));
                offset += size;
            }
            Err(fault) => {
                let torn = match fault {
                    FrameFault::Incomplete { .. } => true,
                    // A complete frame that fails its checksum is torn only if nothing follows it.
                    FrameFault::Checksum => {
                        declared_end(&bytes[offset..]) == Some(bytes.len() - offset)
                    }
                    FrameFault::BadLength(_) => {
                        bytes.len() - offset < frame::FRAME_BYTES_MAX
                            && looks_unwritten(&bytes[offset..])
                    }
                    FrameFault::Version(_) => false,
                };
                return Scan {
                    frames,
                    valid_len: offset as u64,
                    fault: Some((offset as u64, fault.to_string(), torn)),
                };
            }
        }
    }
    Scan {
        frames,
        valid_len: offset as u64,
        fault: None,
    }
}

fn declared_end(bytes: &[u8]) -> Option<usize> {
    let length = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    Some(4 + length + frame::TRAILER_BYTES)
}

/// A tail whose length field is garbage is torn only if it is short and has no
/// frame-shaped data after it; this keeps a flipped length byte in the last
/// acknowledged frame from passing as a torn write when more frames follow.
fn looks_unwritten(bytes: &[u8]) -> bool {
    (1..bytes.len()).all(|start| frame::decode(&bytes[start..]).is_err())
}
