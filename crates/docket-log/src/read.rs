//! Reading committed records from a ledger's segment files, from any sequence
//! number, as the folds and the change feed do.
//!
//! Read-only and safe beside a running writer: it never truncates, and it
//! stops at the last commit point of the last segment (frames after it were
//! never acknowledged, or are still being written). A bad frame anywhere
//! before that is an error naming the segment, offset and seq: the same
//! rule as recovery (`segment::scan`). The reader walks the chain (seq,
//! prev, time) as it goes; signatures and authorisation are `verify`'s job.

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::chain::Chain;
use crate::frame::{self, Frame, FRAME_BYTES_MAX};
use crate::log::{io, LogError};
use crate::segment::{self, TAIL_BYTES_MAX};

/// Read buffer when scanning a segment from its start.
const SCAN_BUFFER_BYTES: usize = 1 << 20;
/// Read buffer when starting at an indexed record (a feed page, one event).
const INDEXED_BUFFER_BYTES: usize = 64 * 1024;

/// A bad frame: its offset and what is wrong.
type BadFrame = (u64, String);

/// Frames of one segment, one synced write at a time.
struct SegmentStream {
    reader: BufReader<File>,
    len: u64,
    /// Offset of the next unread byte.
    offset: u64,
    /// Frames read since the last commit frame.
    pending: Vec<(u64, Frame)>,
    /// Where the last commit point ends.
    committed_len: u64,
    buffer: Vec<u8>,
}

impl SegmentStream {
    fn open(path: &Path, first_seq: u64, buffer_bytes: usize) -> Result<Self, LogError> {
        let file = File::open(path).map_err(io(format!("opening {}", path.display())))?;
        let len = file.metadata().map_err(io(format!("reading {}", path.display())))?.len();
        let mut stream = Self {
            reader: BufReader::with_capacity(buffer_bytes, file),
            len,
            offset: 0,
            pending: Vec::new(),
            committed_len: 0,
            buffer: Vec::new(),
        };
        let mut header = [0u8; segment::HEADER_BYTES];
        match stream.reader.read_exact(&mut header) {
            Ok(()) if header == segment::header(first_seq) => {
                stream.offset = header.len() as u64;
                stream.committed_len = stream.offset;
            }
            // A segment being created: nothing committed in it yet.
            Err(_) => stream.offset = len,
            Ok(()) => {
                return Err(LogError::Corrupted {
                    segment: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    offset: 0,
                    seq: first_seq,
                    reason: format!("bad segment header (expected first seq {first_seq})"),
                })
            }
        }
        Ok(stream)
    }

    fn pending_is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Continues from the frame at `offset` (found in the segment's index
    /// and checked) instead of the first frame.
    fn seek_to(&mut self, path: &Path, offset: u64) -> Result<(), LogError> {
        use std::io::{Seek, SeekFrom};
        if offset > self.offset && offset < self.len {
            self.reader.seek(SeekFrom::Start(offset)).map_err(io(format!("seeking in {}", path.display())))?;
            self.offset = offset;
            self.committed_len = offset;
        }
        Ok(())
    }

    /// Whether a bad frame at `offset` can be the end of the committed log:
    /// no valid commit frame follows it among the bytes the file had when
    /// it was opened (bytes a writer had finished copying: the file only
    /// grows after a write's bytes are in place), and what follows the last
    /// commit point is no longer than one write.
    fn is_tail(&self, path: &Path, offset: u64) -> Result<bool, LogError> {
        use std::io::{Seek, SeekFrom};
        if self.len - self.committed_len > TAIL_BYTES_MAX {
            return Ok(false);
        }
        let mut file = File::open(path).map_err(io(format!("opening {}", path.display())))?;
        let mut rest = Vec::new();
        file.seek(SeekFrom::Start(offset + 1))
            .and_then(|_| file.take(self.len.saturating_sub(offset + 1)).read_to_end(&mut rest))
            .map_err(io(format!("reading {}", path.display())))?;
        Ok(!segment::has_commit_after(&rest))
    }

    /// The frames of the next synced write (ending with a commit frame);
    /// `None` at the end of the file (uncommitted frames stay pending);
    /// a bad frame as its offset and what is wrong.
    fn next_write(&mut self) -> Result<Option<Vec<(u64, Frame)>>, BadFrame> {
        while self.offset < self.len {
            let at = self.offset;
            let remaining = self.len - at;
            if remaining < 4 {
                return Err((at, format!("{remaining} bytes left, a frame needs more")));
            }
            self.buffer.resize(4, 0);
            self.reader.read_exact(&mut self.buffer[..4]).map_err(|e| (at, e.to_string()))?;
            let body = u32::from_be_bytes([self.buffer[0], self.buffer[1], self.buffer[2], self.buffer[3]]) as u64;
            let total = 4 + body + frame::TRAILER_BYTES as u64;
            if total > FRAME_BYTES_MAX as u64 || total > remaining {
                // frame::decode names the fault exactly.
                let fault = frame::decode(&self.buffer).err().map(|f| f.to_string()).unwrap_or_default();
                return Err((at, fault));
            }
            self.buffer.resize(total as usize, 0);
            self.reader.read_exact(&mut self.buffer[4..]).map_err(|e| (at, e.to_string()))?;
            let (frame, _) = frame::decode(&self.buffer).map_err(|fault| (at, fault.to_string()))?;
            self.offset += total;
            let commit = frame.commit;
            self.pending.push((at, frame));
            if commit {
                self.committed_len = self.offset;
                return Ok(Some(std::mem::take(&mut self.pending)));
            }
        }
        Ok(None)
    }
}

/// Reads committed frames from the segment files in one directory.
#[derive(Debug, Clone)]
pub struct Reader {
    dir: PathBuf,
}

/// Where a read stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The next seq to read.
    pub next_seq: u64,
    /// Checksum of the frame before `next_seq` (the hash chain head), or
    /// `[0; 32]` when nothing was read.
    pub last_checksum: [u8; 32],
}

impl Position {
    fn of(chain: &Chain) -> Self {
        Self { next_seq: chain.next_seq(), last_checksum: chain.last_checksum() }
    }
}

impl Reader {
    /// A reader over the segment files in `dir` (a ledger's `segments/`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn segments(&self) -> Result<Vec<(u64, String)>, LogError> {
        segment::list(&self.dir).map_err(io(format!("listing {}", self.dir.display())))
    }

    /// Calls `visit` on every committed frame from seq `from` on, in order,
    /// until it breaks or the committed log ends.
    ///
    /// Streams: memory is one read buffer plus the frames of one unsynced
    /// write (at most `WRITE_BYTES_MAX`), whatever the segment size.
    /// `prev` is the checksum the frame before `from` must have (from an
    /// earlier read); `None` skips that one check. Returns where reading stopped.
    pub fn read_from(
        &self,
        from: u64,
        prev: Option<[u8; 32]>,
        mut visit: impl FnMut(&Frame) -> ControlFlow<()>,
    ) -> Result<Position, LogError> {
        let names = self.segments()?;
        let mut chain = Chain::resume(from, prev);
        // The segment holding `from` is the last one starting at or before it.
        let start = names.iter().rposition(|(first, _)| *first <= from).unwrap_or(0);
        let last = names.len().saturating_sub(1);
        for (index, (first_seq, name)) in names.iter().enumerate().skip(start) {
            let path = self.dir.join(name);
            let corrupted = |offset: u64, seq: u64, reason: String| LogError::Corrupted {
                segment: name.clone(),
                offset,
                seq,
                reason,
            };
            // A read that starts inside a segment seeks to its record through
            // the segment's index, so its cost does not grow with the segment.
            let indexed =
                (index == start && from > *first_seq).then(|| self.indexed_offset(name, *first_seq, from)).flatten();
            let buffer_bytes = if indexed.is_some() { INDEXED_BUFFER_BYTES } else { SCAN_BUFFER_BYTES };
            let mut segment = SegmentStream::open(&path, *first_seq, buffer_bytes)?;
            if let Some(offset) = indexed {
                segment.seek_to(&path, offset)?;
            }
            let is_last = index == last;
            loop {
                let frames = match segment.next_write() {
                    Ok(Some(frames)) => frames,
                    Ok(None) => break,
                    // A bad frame after the last commit point of the last
                    // segment: a write in progress, or one never synced.
                    Err((offset, _)) if is_last && segment.is_tail(&path, offset)? => break,
                    Err((offset, reason)) => return Err(corrupted(offset, chain.next_seq(), reason)),
                };
                for (offset, frame) in &frames {
                    if frame.seq < chain.next_seq() {
                        continue;
                    }
                    let before = chain;
                    chain.link(frame).map_err(|fault| corrupted(*offset, before.next_seq(), fault.to_string()))?;
                    if visit(frame).is_break() {
                        return Ok(Position::of(&before));
                    }
                }
            }
            if !segment.pending_is_empty() && !is_last {
                return Err(corrupted(
                    segment.offset,
                    chain.next_seq(),
                    "uncommitted frames in a closed segment".into(),
                ));
            }
        }
        Ok(Position::of(&chain))
    }

    /// Where in segment `name` the frame of `seq`, or the nearest indexed
    /// one before it, starts, from the segment's index. The index is derived
    /// data: the frame found there must decode and carry the seq the index
    /// claims, or the index is ignored (the read scans from the start).
    fn indexed_offset(&self, name: &str, first_seq: u64, seq: u64) -> Option<u64> {
        use std::io::{Seek, SeekFrom};
        let mut index = File::open(self.dir.join(segment::index_name(name))).ok()?;
        let entries = index.metadata().ok()?.len() / segment::INDEX_ENTRY_BYTES;
        let position = (seq - first_seq).min(entries.checked_sub(1)?);
        let mut entry = [0u8; 8];
        index.seek(SeekFrom::Start(position * segment::INDEX_ENTRY_BYTES)).ok()?;
        index.read_exact(&mut entry).ok()?;
        let offset = u64::from_be_bytes(entry);
        let mut file = File::open(self.dir.join(name)).ok()?;
        let mut length = [0u8; 4];
        file.seek(SeekFrom::Start(offset)).ok()?;
        file.read_exact(&mut length).ok()?;
        let total = 4 + u64::from(u32::from_be_bytes(length)) + frame::TRAILER_BYTES as u64;
        if total > FRAME_BYTES_MAX as u64 {
            return None;
        }
        let mut bytes = length.to_vec();
        bytes.resize(total as usize, 0);
        file.read_exact(&mut bytes[4..]).ok()?;
        let (frame, _) = frame::decode(&bytes).ok()?;
        (frame.seq == first_seq + position).then_some(offset)
    }

    /// The committed frame of `seq`, if there is one.
    pub fn frame_at(&self, seq: u64) -> Result<Option<Frame>, LogError> {
        let mut found = None;
        self.read_from(seq, None, |frame| {
            found = Some(frame.clone());
            ControlFlow::Break(())
        })?;
        Ok(found)
    }

    /// The checksum of frame `seq`, if it is committed: what a projection
    /// records beside its watermark to prove which log it was built from.
    pub fn checksum_of(&self, seq: u64) -> Result<Option<[u8; 32]>, LogError> {
        Ok(self.frame_at(seq)?.map(|frame| frame.checksum))
    }
}
