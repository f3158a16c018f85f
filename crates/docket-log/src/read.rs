//! Reading committed records from a ledger's segment files, from any sequence
//! number, as the folds and the change feed do.
//!
//! Read-only and safe beside a running writer: it never truncates, and it
//! stops at the last commit point of the last segment (frames after it were
//! never acknowledged, or are still being written). A bad frame anywhere
//! before that is an error naming the segment, offset and seq. The reader
//! checks the sequence and the hash chain as it goes; signatures and
//! authorisation are `verify`'s job.

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::frame::{self, Frame, FRAME_BYTES_MAX};
use crate::log::{io, LogError};
use crate::segment::{self, WRITE_BYTES_MAX};

/// How far from the end of the last segment a bad frame may be and still be
/// taken for a write in progress.
const TAIL_BYTES_MAX: u64 = (WRITE_BYTES_MAX + FRAME_BYTES_MAX) as u64;

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
    buffer: Vec<u8>,
}

impl SegmentStream {
    fn open(path: &Path, first_seq: u64) -> Result<Self, LogError> {
        let file = File::open(path).map_err(io(format!("opening {}", path.display())))?;
        let len = file.metadata().map_err(io(format!("reading {}", path.display())))?.len();
        let mut stream = Self {
            reader: BufReader::with_capacity(1 << 20, file),
            len,
            offset: 0,
            pending: Vec::new(),
            buffer: Vec::new(),
        };
        let mut header = [0u8; segment::HEADER_BYTES];
        match stream.reader.read_exact(&mut header) {
            Ok(()) if header == segment::header(first_seq) => stream.offset = header.len() as u64,
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
        let entries = std::fs::read_dir(&self.dir).map_err(io(format!("listing {}", self.dir.display())))?;
        let mut names: Vec<(u64, String)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                segment::parse_name(&name).map(|first| (first, name))
            })
            .collect();
        names.sort();
        Ok(names)
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
        let mut position = Position { next_seq: from, last_checksum: prev.unwrap_or([0; 32]) };
        let mut check_prev = prev.is_some() || from == 0;
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
            let mut segment = SegmentStream::open(&path, *first_seq)?;
            let is_last = index == last;
            loop {
                let frames = match segment.next_write() {
                    Ok(Some(frames)) => frames,
                    Ok(None) => break,
                    // A bad frame within one write of the end of the last
                    // segment may be a write in progress: the committed log ends before it.
                    Err((offset, _)) if is_last && segment.len - offset <= TAIL_BYTES_MAX => break,
                    Err((offset, reason)) => return Err(corrupted(offset, position.next_seq, reason)),
                };
                for (offset, frame) in &frames {
                    if frame.seq < position.next_seq {
                        continue;
                    }
                    if frame.seq != position.next_seq {
                        return Err(corrupted(*offset, position.next_seq, format!("found seq {}", frame.seq)));
                    }
                    if check_prev && frame.prev != position.last_checksum {
                        return Err(corrupted(*offset, frame.seq, "hash chain broken".into()));
                    }
                    check_prev = true;
                    if visit(frame).is_break() {
                        return Ok(position);
                    }
                    position = Position { next_seq: frame.seq + 1, last_checksum: frame.checksum };
                }
            }
            if !segment.pending_is_empty() && !is_last {
                return Err(corrupted(
                    segment.offset,
                    position.next_seq,
                    "uncommitted frames in a closed segment".into(),
                ));
            }
        }
        Ok(position)
    }

    /// The checksum of frame `seq`, if it is committed: what a projection
    /// records beside its watermark to prove which log it was built from.
    pub fn checksum_of(&self, seq: u64) -> Result<Option<[u8; 32]>, LogError> {
        let mut found = None;
        self.read_from(seq, None, |frame| {
            found = Some(frame.checksum);
            ControlFlow::Break(())
        })?;
        Ok(found)
    }
}
