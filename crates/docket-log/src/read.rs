//! Reading committed records from a ledger's segment files, from any sequence
//! number, as the folds and the change feed do.
//!
//! Read-only and safe beside a running writer: it never truncates, and it
//! stops at the last commit point of the last segment (frames after it were
//! never acknowledged, or are still being written). A bad frame anywhere
//! before that is an error naming the segment, offset and seq. The reader
//! checks the sequence and the hash chain as it goes; signatures and
//! authorisation are `verify`'s job.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::frame::Frame;
use crate::log::{io, LogError};
use crate::segment;

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
    /// until it breaks or the committed log ends. Memory is one segment.
    ///
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
            let bytes = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
            let scan = segment::scan(&bytes, *first_seq);
            let corrupted = |offset: u64, seq: u64, reason: String| LogError::Corrupted {
                segment: name.clone(),
                offset,
                seq,
                reason,
            };
            if index != last {
                if let Some((offset, reason, _)) = &scan.fault {
                    return Err(corrupted(*offset, position.next_seq, reason.clone()));
                }
                if scan.committed != scan.frames.len() {
                    let offset = scan.frames[scan.committed].0;
                    return Err(corrupted(offset, position.next_seq, "uncommitted frames in a closed segment".into()));
                }
            } else if let Some((offset, reason, false)) = &scan.fault {
                return Err(corrupted(*offset, position.next_seq, reason.clone()));
            }
            for (offset, frame) in &scan.frames[..scan.committed] {
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
