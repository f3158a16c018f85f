//! Offline verification of a ledger directory, as an outside party would do
//! it with the public keys and a copy of the files: every frame and the hash
//! chain, every signature (batched, on all cores), authorisation of every
//! event as of its position (the append path's own `State` rules), and the
//! Merkle root against the latest checkpoint and, optionally, an older one.

use std::collections::BTreeMap;
use std::path::Path;

use docket_model::{SignedEvent, Timestamp};

use crate::chain::Chain;
use crate::frame::{self, Frame};
use crate::index::Index;
use crate::ledger::{self, Paths};
use crate::log::{Checked, State};
use crate::merkle::verify_consistency;
use crate::note::{Checkpoint, NoteKey};
use crate::segment::{self, Tail};
use crate::tiles::TILE_CACHE_TILES;
use crate::tree::Tree;

/// Events verified per parallel signature batch.
pub const VERIFY_CHUNK_EVENTS: usize = 16 * 1024;

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}{reason}", seq.map(|s| format!("seq {s}: ")).unwrap_or_default(), segment.as_ref().map(|s| format!("segment {s}: ")).unwrap_or_default(), offset.map(|o| format!("offset {o}: ")).unwrap_or_default())]
pub struct Failure {
    pub seq: Option<u64>,
    pub segment: Option<String>,
    pub offset: Option<u64>,
    pub reason: String,
}

fn failure(reason: impl Into<String>) -> Failure {
    Failure { seq: None, segment: None, offset: None, reason: reason.into() }
}

/// What verification checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub records: u64,
    pub segments: u64,
    pub root: [u8; 32],
    /// Size of the latest checkpoint, which matched.
    pub checkpoint_size: Option<u64>,
    /// Size of the older checkpoint given, which is consistent.
    pub older_size: Option<u64>,
    /// Bytes after the last commit point of the last segment: a write in
    /// progress beside a live writer, or one never acknowledged (the writer
    /// cuts it on open). Not part of the log, so not verified.
    pub tail: Option<Tail>,
}

struct Verifier {
    state: State,
    tree: Tree,
    chain: Chain,
}

/// Verifies the ledger in `dir`. `progress` is called with records done and
/// an estimate of the total (from segment sizes).
pub fn verify(
    dir: &Path,
    older_checkpoint: Option<&str>,
    threads: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report, Failure> {
    let (_, root, log_key) = ledger::read_config(dir).map_err(|e| failure(e.to_string()))?;
    let paths = Paths::new(dir);
    // The checkpoint before the log: a live writer signs only sizes it has
    // written, so the log read afterwards covers it.
    let latest = latest_checkpoint(&paths, &log_key)?;
    let names = segment_names(&paths)?;
    let total_bytes: u64 =
        names.iter().filter_map(|(_, n)| std::fs::metadata(paths.segments().join(n)).ok()).map(|m| m.len()).sum();
    // The tree's full tiles go to a scratch directory (removed on return), so
    // verifying holds the right edge of the tree, not the whole of it.
    let scratch = Scratch::new()?;
    let tree = Tree::on_disk(&scratch.0, TILE_CACHE_TILES, None);
    // Ids and case versions likewise: in memory only since the last chunk.
    let index_path = scratch.0.join("index.redb");
    let index = Index::scratch(&index_path, crate::read::Reader::new(paths.segments())).map_err(failure)?;
    let mut verifier = Verifier { state: State::indexed(root, index, None), tree, chain: Chain::new() };
    let mut bytes_done = 0u64;
    let mut tail = None;
    for (index, (first_seq, name)) in names.iter().enumerate() {
        let last = index + 1 == names.len();
        let segment = SegmentToVerify { paths: &paths, first_seq: *first_seq, name, last, threads };
        let (bytes, found) = verifier.segment(&segment, &mut |done, read_now| {
            let estimate = done * total_bytes / (bytes_done + read_now).max(1);
            progress(done, estimate.max(done));
        })?;
        tail = found.or(tail);
        bytes_done += bytes;
    }
    let size = verifier.chain.next_seq();
    let tree_root = verifier
        .tree
        .root(size)
        .ok_or_else(|| failure(format!("the tree's tiles in {} are unreadable", scratch.0.display())))?;
    let mut report = Report {
        records: size,
        segments: names.len() as u64,
        root: tree_root,
        checkpoint_size: None,
        older_size: None,
        tail,
    };
    if let Some(checkpoint) = &latest {
        report.checkpoint_size = Some(check_against(&verifier.tree, size, checkpoint, "latest checkpoint")?);
    }
    if let Some(text) = older_checkpoint {
        report.older_size = Some(check_older(&verifier.tree, size, text, &log_key)?);
    }
    Ok(report)
}

/// A directory of its own in the system's temporary directory, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Result<Self, Failure> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("docket-verify-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| failure(format!("creating {}: {e}", dir.display())))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The latest signed checkpoint, if there is one.
fn latest_checkpoint(paths: &Paths, log_key: &NoteKey) -> Result<Option<Checkpoint>, Failure> {
    match std::fs::read_to_string(paths.latest_checkpoint()) {
        Ok(text) => {
            Ok(Some(ledger::open_checkpoint(&text, log_key).map_err(|e| failure(format!("latest checkpoint: {e}")))?))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(failure(format!("reading the latest checkpoint: {error}"))),
    }
}

/// The segment files, by first seq.
fn segment_names(paths: &Paths) -> Result<Vec<(u64, String)>, Failure> {
    segment::list(&paths.segments()).map_err(|e| failure(format!("reading {}: {e}", paths.segments().display())))
}

/// Checks an older signed checkpoint (`text`) against the tree: the same
/// root at its size, and consistent with the log's. Returns its size.
fn check_older(tree: &Tree, size: u64, text: &str, log_key: &NoteKey) -> Result<u64, Failure> {
    let older = ledger::open_checkpoint(text, log_key).map_err(|e| failure(format!("given checkpoint: {e}")))?;
    check_against(tree, size, &older, "given checkpoint")?;
    let root = tree.root(size).unwrap_or_else(|| unreachable!("tree has every record"));
    let proof = tree.consistency_proof(older.size.max(1), size).map_err(|e| failure(e.to_string()))?;
    if older.size > 0 {
        verify_consistency(older.size, size, &older.root, &root, &proof)
            .map_err(|e| failure(format!("given checkpoint is not consistent with the log: {e}")))?;
    }
    Ok(older.size)
}

/// One segment file to verify.
struct SegmentToVerify<'a> {
    paths: &'a Paths,
    first_seq: u64,
    name: &'a str,
    /// Only the last segment may end in a tail.
    last: bool,
    threads: usize,
}

fn check_against(tree: &Tree, size: u64, checkpoint: &Checkpoint, what: &str) -> Result<u64, Failure> {
    if checkpoint.size > size {
        return Err(Failure {
            seq: Some(size),
            segment: None,
            offset: None,
            reason: format!("{what} covers {} records but the log has {size}: records are missing", checkpoint.size),
        });
    }
    if tree.root(checkpoint.size) != Some(checkpoint.root) {
        return Err(failure(format!("{what} root at size {} does not match the log's tree", checkpoint.size)));
    }
    Ok(checkpoint.size)
}

/// A decoded event (or why it does not decode) and its signature's verdict.
type Prepared = (Result<SignedEvent, String>, Result<(), docket_model::SignatureError>);

/// Decodes a chunk's events and batch-verifies their signatures, split across `threads` threads.
fn prepare(chunk: &[(u64, Frame)], threads: usize) -> Vec<Prepared> {
    let part = chunk.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunk
            .chunks(part)
            .map(|frames| {
                scope.spawn(move || {
                    let events: Vec<Result<SignedEvent, String>> = frames
                        .iter()
                        .map(|(_, f)| SignedEvent::from_wire(&f.wire).map_err(|e| e.to_string()))
                        .collect();
                    let good: Vec<SignedEvent> = events.iter().filter_map(|e| e.as_ref().ok().cloned()).collect();
                    let mut verdicts = docket_model::verify_all(&good).into_iter();
                    events
                        .into_iter()
                        .map(|event| {
                            let verdict = if event.is_ok() { verdicts.next().unwrap_or(Ok(())) } else { Ok(()) };
                            (event, verdict)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| unreachable!("decoding does not panic"))).collect()
    })
}

impl Verifier {
    /// Verifies one segment: its scan, then its frames in chunks, in a
    /// pipeline (while this thread runs the ordered checks of one chunk, the
    /// next is decoded and its signatures verified on all cores). Returns the
    /// segment's size in bytes and its tail, if any.
    fn segment(
        &mut self,
        segment: &SegmentToVerify,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(u64, Option<segment::Tail>), Failure> {
        let path = segment.paths.segments().join(segment.name);
        let bytes = std::fs::read(&path).map_err(|e| failure(format!("reading {}: {e}", path.display())))?;
        let at = |offset: u64, seq: u64, reason: String| Failure {
            seq: Some(seq),
            segment: Some(segment.name.to_owned()),
            offset: Some(offset),
            reason,
        };
        let next_seq = self.chain.next_seq();
        if segment.first_seq != next_seq {
            let reason = format!("segment starts at seq {}, expected {next_seq}", segment.first_seq);
            return Err(at(0, next_seq, reason));
        }
        let scan = segment::scan(&bytes, segment.first_seq, false)
            .map_err(|damage| at(damage.offset, damage.seq, damage.reason))?;
        let chunks: Vec<&[(u64, Frame)]> = scan.frames.chunks(VERIFY_CHUNK_EVENTS).collect();
        let threads = segment.threads;
        std::thread::scope(|scope| -> Result<(), Failure> {
            let mut next = chunks.first().map(|&chunk| scope.spawn(move || prepare(chunk, threads)));
            for (index, chunk) in chunks.iter().enumerate() {
                let Some(handle) = next.take() else { break };
                let decoded = handle.join().unwrap_or_else(|_| unreachable!("decoding does not panic"));
                next = chunks.get(index + 1).map(|&chunk| scope.spawn(move || prepare(chunk, threads)));
                self.apply(chunk, decoded, &at)?;
                // What the chunk added goes to the scratch index, so memory
                // holds at most one chunk of ids whatever the log's length.
                let (through, checksum) = (self.chain.next_seq(), self.chain.last_checksum());
                self.state.flush(through, checksum, 1).map_err(|e| failure(e.to_string()))?;
                progress(self.chain.next_seq(), scan.committed_len);
            }
            Ok(())
        })?;
        if let Some(found) = &scan.tail {
            if !segment.last {
                let reason = format!("a closed segment does not end at a commit point: {}", found.reason);
                let (offset, seq) = found.bad_frame.unwrap_or((found.offset, self.chain.next_seq()));
                return Err(at(offset, seq, reason));
            }
        }
        Ok((bytes.len() as u64, scan.tail))
    }

    /// The checks that depend on order (chain, times, registry, cases,
    /// duplicates) and the tree, on one chunk whose events [`prepare`]
    /// decoded and whose signatures it verified.
    fn apply(
        &mut self,
        chunk: &[(u64, Frame)],
        decoded: Vec<Prepared>,
        at: &dyn Fn(u64, u64, String) -> Failure,
    ) -> Result<(), Failure> {
        let mut events = Vec::with_capacity(chunk.len());
        let mut signatures = Vec::with_capacity(chunk.len());
        for (index, ((offset, _), (event, verdict))) in chunk.iter().zip(decoded).enumerate() {
            let seq = self.chain.next_seq() + index as u64;
            events.push(event.map_err(|e| at(*offset, seq, format!("event does not decode: {e}")))?);
            signatures.push(verdict);
        }
        for (((offset, frame), event), signature) in chunk.iter().zip(&events).zip(signatures) {
            // The first bad position is the one being checked, whatever seq the frame claims.
            let position = self.chain.next_seq();
            let fail = |reason: String| at(*offset, position, reason);
            let mut chain = self.chain;
            chain.link(frame).map_err(|fault| fail(fault.to_string()))?;
            signature.map_err(|e| fail(format!("signature: {e}")))?;
            let system_time = Timestamp::from_micros(frame.system_time).map_err(|e| fail(e.to_string()))?;
            let case =
                match self.state.check(event, system_time, &BTreeMap::new()).map_err(|e| failure(e.to_string()))? {
                    Ok(Checked::New(case)) => case,
                    Ok(Checked::Duplicate(original)) => return Err(fail(format!("duplicate of seq {}", original.seq))),
                    Err(refusal) => return Err(fail(format!("would have been refused at its position: {refusal}"))),
                };
            self.state.apply_checked(event, frame.seq, system_time, case).map_err(|e| fail(e.to_string()))?;
            self.tree.push(frame::leaf(frame.seq, frame.system_time, &frame.wire));
            self.chain = chain;
        }
        Ok(())
    }
}
