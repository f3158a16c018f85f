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

/// File name suffix of segment indexes.
pub const INDEX_SUFFIX: &str = ".idx";
/// Bytes per entry of a segment index: the offset of one record's frame (u64, big-endian).
pub const INDEX_ENTRY_BYTES: u64 = 8;

/// The index of a segment: `seg-<first_seq>.idx`, the offset of each of its
/// records' frames in seq order, so that a read from any seq seeks instead
/// of scanning the segment from its start.
pub fn index_name(segment: &str) -> String {
    format!("{}{INDEX_SUFFIX}", segment.strip_suffix(SEGMENT_SUFFIX).unwrap_or(segment))
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
/// the last unsynced write: a longer run of bytes after the last commit point
/// is not a torn write.
pub const WRITE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Longest tail after the last commit point that can be a torn write: one
/// write, plus a frame that straddles its start.
pub const TAIL_BYTES_MAX: u64 = (WRITE_BYTES_MAX + frame::FRAME_BYTES_MAX) as u64;

// A frame always fits one write, so a write of one record is never split.
const _: () = assert!(frame::FRAME_BYTES_MAX <= WRITE_BYTES_MAX);
// An index entry is one u64 offset.
const _: () = assert!(INDEX_ENTRY_BYTES as usize == std::mem::size_of::<u64>());
// The header is the magic, the version byte and the first seq (`header`).
const _: () = assert!(HEADER_BYTES == MAGIC.len() + 1 + 8);

/// The segment files in `dir`, by first seq (other files are ignored).
pub fn list(dir: &std::path::Path) -> std::io::Result<Vec<(u64, String)>> {
    let mut names: Vec<(u64, String)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            parse_name(&name).map(|first| (first, name))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// What lies after the last valid commit point of a segment: a write that was
/// never acknowledged (it may be cut, once nothing signed covers it), or a
/// write still in progress (a reader beside a live writer stops before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// Where the tail starts: the end of the last commit point.
    pub offset: u64,
    /// Bytes from `offset` to the end of the segment.
    pub bytes: u64,
    /// Seqs of the whole frames in the tail (`first..=last`), if any decode.
    pub seqs: Option<(u64, u64)>,
    /// Why the tail is not part of the committed log.
    pub reason: String,
    /// The first bad frame in the tail, if any: its offset and the seq it
    /// would have had.
    pub bad_frame: Option<(u64, u64)>,
}

/// Damage before the last valid commit point of a segment: bytes that were
/// synced (and so may have been acknowledged) no longer read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    /// The seq the damaged frame would have had (the frames before it are whole).
    pub seq: u64,
    pub reason: String,
}

/// A segment's committed frames and whatever follows them.
#[derive(Debug)]
pub struct Scan {
    /// Every frame up to and including the last commit frame, with its offset.
    pub frames: Vec<(u64, Frame)>,
    /// Offset of the end of the last commit point (0 when even the header
    /// is missing or incomplete).
    pub committed_len: u64,
    /// Bytes after `committed_len`, if any.
    pub tail: Option<Tail>,
}

/// As [`scan`], from the frame of seq `seq` at byte `offset` of the
/// segment (found through the segment's index) instead of its first frame:
/// `rest` is the segment's bytes from `offset` on (the bytes before it are
/// never read); offsets in the result are the segment's. A wrong offset
/// shows as damage, or as a frame the chain refuses.
pub fn scan_from(rest: &[u8], seq: u64, offset: u64) -> Result<Scan, Damage> {
    if offset < HEADER_BYTES as u64 || rest.is_empty() {
        return Err(Damage { offset, seq, reason: format!("the segment's index puts seq {seq} outside it") });
    }
    let shift = offset - HEADER_BYTES as u64;
    let mut resumed = header(seq).to_vec();
    resumed.extend_from_slice(rest);
    let mut scan = scan(&resumed, seq, false).map_err(|damage| Damage { offset: damage.offset + shift, ..damage })?;
    scan.frames.iter_mut().for_each(|(at, _)| *at += shift);
    scan.committed_len += shift;
    if let Some(tail) = &mut scan.tail {
        tail.offset += shift;
        if let Some((at, _)) = &mut tail.bad_frame {
            *at += shift;
        }
    }
    Ok(scan)
}

/// Scans a segment and classifies every byte as committed, tail or damage.
///
/// The rule (ARCHITECTURE.md, "Recovery"): every synced write ends with a
/// frame flagged COMMIT, no append is acknowledged before its write is
/// synced, and the next write starts only after that sync returned. So
/// everything before the last valid COMMIT frame was synced: a bad frame
/// there is damage, never a torn write. Only bytes after the last valid
/// COMMIT frame can be a write that was never acknowledged, and only if they
/// are no longer than one write (`TAIL_BYTES_MAX`).
///
/// A power loss can reorder the pages of the last write so that its COMMIT
/// frame lands without an earlier page. That looks exactly like damage to a
/// synced write, and is refused as such: an operator who knows the machine
/// lost power may cut it explicitly (`docket recover`): with
/// `cut_damaged_write`, damage that lies within one write of the end is
/// taken as the start of the tail, which then runs from the last commit
/// point before the damage to the end.
pub fn scan(bytes: &[u8], first_seq: u64, cut_damaged_write: bool) -> Result<Scan, Damage> {
    // Frames are written only after the header is synced, so a bad header
    // with a commit frame after it is damage; without one, an unfinished creation.
    if bytes.len() < HEADER_BYTES || bytes[..HEADER_BYTES] != header(first_seq) {
        let reason = format!("bad or incomplete segment header (expected first seq {first_seq})");
        if has_commit_after(bytes) && !cut_damaged_write {
            return Err(Damage { offset: 0, seq: first_seq, reason });
        }
        // Even an empty file is a tail: its header must be written again
        // before anything is appended (a kill between creating the file and
        // syncing its header leaves one).
        let tail = Tail { offset: 0, bytes: bytes.len() as u64, seqs: None, reason, bad_frame: Some((0, first_seq)) };
        return Ok(Scan { frames: Vec::new(), committed_len: 0, tail: Some(tail) });
    }
    let mut frames = Vec::new();
    let (mut committed, mut committed_len) = (0, HEADER_BYTES);
    let mut offset = HEADER_BYTES;
    let mut fault = None;
    while offset < bytes.len() {
        match frame::decode(&bytes[offset..]) {
            Ok((frame, size)) => {
                let commit = frame.commit;
                frames.push((offset as u64, frame));
                offset += size;
                if commit {
                    committed = frames.len();
                    committed_len = offset;
                }
            }
            Err(error) => {
                if !cut_damaged_write && has_commit_after(&bytes[offset + 1..]) {
                    let reason = format!("{error}, and a valid commit frame follows: synced bytes are damaged");
                    return Err(Damage { offset: offset as u64, seq: first_seq + frames.len() as u64, reason });
                }
                fault = Some((offset as u64, first_seq + frames.len() as u64, error.to_string()));
                break;
            }
        }
    }
    let uncommitted = &frames[committed..];
    let tail = (committed_len < bytes.len()).then(|| Tail {
        offset: committed_len as u64,
        bytes: (bytes.len() - committed_len) as u64,
        seqs: uncommitted.first().zip(uncommitted.last()).map(|((_, a), (_, b))| (a.seq, b.seq)),
        bad_frame: fault.as_ref().map(|(offset, seq, _)| (*offset, *seq)),
        reason: fault
            .map_or_else(|| "frames after the last commit point (a write that was never synced)".into(), |f| f.2),
    });
    if let Some(tail) = &tail {
        if tail.bytes > TAIL_BYTES_MAX {
            let reason = format!(
                "{} bytes after the last commit point, more than one write ({TAIL_BYTES_MAX}): {}",
                tail.bytes, tail.reason
            );
            return Err(Damage { offset: tail.offset, seq: first_seq + committed as u64, reason });
        }
    }
    frames.truncate(committed);
    debug_assert!(frames.last().is_none_or(|(_, f)| f.commit), "committed frames end with a commit frame");
    Ok(Scan { frames, committed_len: committed_len as u64, tail })
}

/// Whether a valid commit-flagged frame lies anywhere in `bytes`, found by
/// trying every offset and skipping over each valid frame found. Random
/// bytes rarely pass the length check, so few offsets cost a checksum.
pub fn has_commit_after(bytes: &[u8]) -> bool {
    let mut start = 0;
    while start < bytes.len() {
        match frame::decode(&bytes[start..]) {
            Ok((frame, _)) if frame.commit => return true,
            Ok((_, size)) => start += size,
            Err(_) => start += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_without_its_header_is_a_tail_even_when_empty() {
        for bytes in [Vec::new(), header(7)[..5].to_vec()] {
            let scan = scan(&bytes, 7, false).expect("a torn creation is not damage");
            let tail = scan.tail.expect("its header must be written again");
            assert_eq!((scan.committed_len, tail.offset, tail.bytes), (0, 0, bytes.len() as u64));
        }
    }

    #[test]
    fn damage_followed_by_a_commit_is_refused_and_a_tail_after_the_last_commit_is_not() {
        let mut bytes = header(0).to_vec();
        let (first, sum) = frame::encode(true, 0, 1, &[0; 32], b"first");
        let (second, _) = frame::encode(true, 1, 2, &sum, b"second");
        bytes.extend_from_slice(&first);
        bytes.extend_from_slice(&second);
        let clean = scan(&bytes, 0, false).expect("clean");
        assert_eq!((clean.frames.len(), clean.tail), (2, None));
        let mut damaged = bytes.clone();
        damaged[HEADER_BYTES + 10] ^= 1;
        let damage = scan(&damaged, 0, false).expect_err("damage before the last commit");
        assert_eq!((damage.offset, damage.seq), (HEADER_BYTES as u64, 0));
        let cut = scan(&damaged, 0, true).expect("the operator's cut");
        assert_eq!((cut.frames.len(), cut.tail.map(|t| t.offset)), (0, Some(HEADER_BYTES as u64)));
        let mut torn = bytes.clone();
        let last = torn.len() - 3;
        torn[last] ^= 1;
        let scan = scan(&torn, 0, false).expect("a bad last commit frame is a tail");
        let tail = scan.tail.expect("tail");
        assert_eq!(
            (scan.frames.len(), tail.offset, tail.bad_frame),
            (1, (HEADER_BYTES + first.len()) as u64, Some(((HEADER_BYTES + first.len()) as u64, 1)))
        );
    }
}
