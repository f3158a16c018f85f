//! The inquiry register: a tamper-evident record of every non-public read.
//!
//! Who asked what about whom, and when, is itself a record an oversight body
//! must be able to trust. Each inquiry (the reading agency, the key that
//! signed the request or opened the session, the question: method, path and
//! query) is a frame in its own hash-chained segment files under
//! `DIR/inquiries/segments/`, in the log's frame format (so the same scan,
//! chain walk and recovery rule apply), a leaf of its own RFC 6962 tree, and
//! covered by checkpoints signed with the log key under the origin
//! `<log origin>/inquiries`.
//!
//! Writes are group-committed: one thread takes every inquiry waiting,
//! writes them as one write ending in a COMMIT frame, calls `fdatasync` once
//! and only then answers each caller, so a read is answered only once its
//! record is durable. A register that cannot write refuses (and the read
//! with it): no non-public answer leaves without its record.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use docket_model::{PublicKey, Timestamp};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::chain::Chain;
use crate::ledger::{write_atomic, LedgerError, Paths};
use crate::merkle::Hash;
use crate::note::{self, Checkpoint, NoteKey};
use crate::storage::{FsStorage, SegmentFile, Storage};
use crate::tree::Tree;
use crate::{frame, segment, Reader};

/// Longest question kept, in bytes (a longer one is cut at a character
/// boundary and marked with `…`).
pub const QUESTION_BYTES_MAX: usize = 2048;
/// Longest agency name kept, in bytes (names are at most 128 bytes).
pub const AGENCY_BYTES_MAX: usize = 128;
/// Inquiries written in one group commit, at most.
pub const INQUIRY_BATCH_MAX: usize = 4096;
/// Inquiries waiting for the writer, at most; past it a read waits for room.
pub const INQUIRY_QUEUE_MAX: usize = 16 * 1024;
/// A register segment rotates past this size.
pub const INQUIRY_SEGMENT_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// One non-public read, as the server saw it before answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inquiry {
    /// The reading agency.
    pub agency: String,
    /// The key that signed the request (or opened its session).
    pub key: PublicKey,
    /// What was asked: method, path and query.
    pub question: String,
}

impl Inquiry {
    /// An inquiry, its fields cut to their limits.
    pub fn new(agency: &str, key: PublicKey, question: &str) -> Self {
        Inquiry { agency: cut(agency, AGENCY_BYTES_MAX), key, question: cut(question, QUESTION_BYTES_MAX) }
    }

    fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_else(|error| unreachable!("an inquiry encodes: {error}"))
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// An inquiry as recorded: its number and the time it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub seq: u64,
    pub at: Timestamp,
    pub inquiry: Inquiry,
}

/// Why the register could not record or read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegisterError {
    #[error("inquiry register: {0}")]
    Io(String),
    #[error("inquiry register damaged: {0}")]
    Damaged(String),
    #[error("inquiry register: the writer has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<u64, RegisterError>>;

struct Shared {
    tree: Tree,
    /// Set when a write failed: nothing more is recorded until a restart.
    failed: Option<String>,
}

/// The register of one ledger directory: open it once, next to the log.
pub struct Register {
    queue: mpsc::Sender<(Inquiry, Reply)>,
    shared: Arc<Mutex<Shared>>,
    paths: Paths,
    key: NoteKey,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register").field("dir", &self.paths.inquiries()).field("size", &self.size()).finish()
    }
}

/// What opening the register found.
#[derive(Debug, Clone)]
struct Opened {
    tree: Tree,
    chain: Chain,
    /// The last segment: its first seq and committed length.
    last: Option<(u64, u64)>,
}

fn io_error(what: String) -> impl FnOnce(std::io::Error) -> RegisterError {
    move |error| RegisterError::Io(format!("{what}: {error}"))
}

/// The register's origin for a log of origin `log_origin`.
pub fn origin(log_origin: &str) -> String {
    format!("{log_origin}/inquiries")
}

/// Reads and checks every segment: chain, frames, the recovery rule (an
/// unfinished last write is cut: it was never answered). Refuses damage.
fn scan(storage: &FsStorage, cut_tail: bool) -> Result<Opened, RegisterError> {
    let mut names: Vec<(u64, String)> = storage
        .list()
        .map_err(io_error("listing the register's segments".into()))?
        .into_iter()
        .filter_map(|name| segment::parse_name(&name).map(|first| (first, name)))
        .collect();
    names.sort();
    let (mut tree, mut chain, mut last) = (Tree::new(), Chain::new(), None);
    for (index, (first, name)) in names.iter().enumerate() {
        if *first != chain.next_seq() {
            return Err(RegisterError::Damaged(format!("{name}: starts at {first}, expected {}", chain.next_seq())));
        }
        let mut file = storage.open(name).map_err(io_error(format!("opening {name}")))?;
        let bytes = file.read_all().map_err(io_error(format!("reading {name}")))?;
        let scanned = segment::scan(&bytes, *first, false).map_err(|damage| {
            RegisterError::Damaged(format!(
                "{name} at offset {} (seq {}): {}",
                damage.offset, damage.seq, damage.reason
            ))
        })?;
        if let Some(tail) = &scanned.tail {
            if index + 1 != names.len() {
                return Err(RegisterError::Damaged(format!(
                    "{name}: {} (and it is not the last segment)",
                    tail.reason
                )));
            }
            if cut_tail {
                let keep = scanned.committed_len.max(segment::HEADER_BYTES as u64);
                if scanned.committed_len < segment::HEADER_BYTES as u64 {
                    file.truncate(0).map_err(io_error(format!("cutting {name}")))?;
                    file.append(&segment::header(*first)).map_err(io_error(format!("rewriting {name}")))?;
                    file.sync().map_err(io_error(format!("syncing {name}")))?;
                } else {
                    file.truncate(keep).map_err(io_error(format!("cutting the unfinished write of {name}")))?;
                }
            }
        }
        for (offset, frame) in &scanned.frames {
            chain.link(frame).map_err(|fault| {
                RegisterError::Damaged(format!("{name} at offset {offset} (seq {}): {fault}", frame.seq))
            })?;
            tree.push(frame::leaf(frame.seq, frame.system_time, &frame.wire));
        }
        last = Some((*first, scanned.committed_len.max(segment::HEADER_BYTES as u64)));
    }
    Ok(Opened { tree, chain, last })
}

/// The latest signed register checkpoint in `paths`, checked against `tree`:
/// a register that lost or changed what a checkpoint covers is refused.
fn check_checkpoint(paths: &Paths, key: &NoteKey, tree: &Tree) -> Result<(), RegisterError> {
    let path = paths.inquiry_checkpoint();
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let checkpoint = crate::ledger::open_checkpoint(&text, key)
        .map_err(|error| RegisterError::Damaged(format!("{}: {error}", path.display())))?;
    if tree.root(checkpoint.size) != Some(checkpoint.root) {
        return Err(RegisterError::Damaged(format!(
            "the register holds {} inquiries and does not match its signed checkpoint of {}",
            tree.size(),
            checkpoint.size
        )));
    }
    Ok(())
}

impl Register {
    /// Opens (creating if needed) the register of the ledger in `dir`, whose
    /// log signs with `key` (origin `log_origin`). Checks every record and
    /// the latest register checkpoint, cuts an unfinished last write, and
    /// starts the writer.
    pub fn open(dir: &Path, log_key: &NoteKey) -> Result<Self, RegisterError> {
        let paths = Paths::new(dir);
        let segments = paths.inquiry_segments();
        std::fs::create_dir_all(&segments).map_err(io_error(format!("creating {}", segments.display())))?;
        let key = NoteKey::new(&origin(&log_key.name), log_key.key)
            .map_err(|error| RegisterError::Io(format!("register key: {error}")))?;
        let storage = FsStorage::new(&segments);
        let opened = scan(&storage, true)?;
        check_checkpoint(&paths, &key, &opened.tree)?;
        let (first, len) = opened.last.unwrap_or((0, 0));
        let file = if opened.last.is_some() {
            storage.open(&segment::name(first)).map_err(io_error(format!("opening {}", segment::name(first))))?
        } else {
            create_segment(&storage, 0)?
        };
        let current = Current { first, len: len.max(segment::HEADER_BYTES as u64), file };
        let shared = Arc::new(Mutex::new(Shared { tree: opened.tree, failed: None }));
        let (queue, inbox) = mpsc::channel(INQUIRY_QUEUE_MAX);
        let writer = Writer { storage, current, chain: opened.chain, shared: shared.clone() };
        let thread = std::thread::Builder::new()
            .name("inquiry-writer".into())
            .spawn(move || writer.run(inbox))
            .map_err(io_error("starting the register's writer".into()))?;
        Ok(Register { queue, shared, paths, key, writer: Some(thread) })
    }

    /// Records `inquiry`; returns its seq once it is durable.
    pub async fn record(&self, inquiry: Inquiry) -> Result<u64, RegisterError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((inquiry, reply)).await.map_err(|_| RegisterError::Stopped)?;
        answer.await.map_err(|_| RegisterError::Stopped)?
    }

    /// Number of inquiries recorded (durable).
    pub fn size(&self) -> u64 {
        lock(&self.shared).tree.size()
    }

    /// Why the register refuses, if it does.
    pub fn failed(&self) -> Option<String> {
        lock(&self.shared).failed.clone()
    }

    /// Signs a checkpoint of everything recorded, stores it as the
    /// register's latest, and returns the note.
    pub fn checkpoint(&self, signing: &SigningKey) -> Result<String, RegisterError> {
        let shared = lock(&self.shared);
        let size = shared.tree.size();
        let root = shared.tree.root(size).unwrap_or_else(|| crate::merkle::root(&[]));
        drop(shared);
        let body = Checkpoint { origin: self.key.name.clone(), size, root, extensions: vec![] }.to_text();
        let note = note::sign(&body, &self.key, signing).map_err(|error| RegisterError::Io(error.to_string()))?;
        write_atomic(&self.paths.inquiry_checkpoint(), note.as_bytes())
            .map_err(|error| RegisterError::Io(error.to_string()))?;
        Ok(note)
    }

    /// Leaf hash of inquiry `seq` and an inclusion proof in the tree of `size`.
    pub fn prove(&self, seq: u64, size: u64) -> Result<(Hash, Vec<Hash>), RegisterError> {
        let shared = lock(&self.shared);
        let leaf =
            shared.tree.leaf(seq, size).ok_or_else(|| RegisterError::Io(format!("no inquiry {seq} below {size}")))?;
        let proof = shared.tree.inclusion_proof(seq, size).map_err(|error| RegisterError::Io(error.to_string()))?;
        Ok((leaf, proof))
    }
}

impl Drop for Register {
    fn drop(&mut self) {
        // Closing the queue stops the writer once it has written what waits.
        let (closed, _) = mpsc::channel(1);
        self.queue = closed;
        if let Some(thread) = self.writer.take() {
            let _ = thread.join();
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn create_segment(storage: &FsStorage, first: u64) -> Result<<FsStorage as Storage>::File, RegisterError> {
    let name = segment::name(first);
    let mut file = storage.create(&name).map_err(io_error(format!("creating {name}")))?;
    file.append(&segment::header(first))
        .and_then(|()| file.sync())
        .map_err(io_error(format!("writing the header of {name}")))?;
    Ok(file)
}

struct Current {
    first: u64,
    len: u64,
    file: <FsStorage as Storage>::File,
}

struct Writer {
    storage: FsStorage,
    current: Current,
    chain: Chain,
    shared: Arc<Mutex<Shared>>,
}

impl Writer {
    fn run(mut self, mut inbox: mpsc::Receiver<(Inquiry, Reply)>) {
        while let Some(first) = inbox.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < INQUIRY_BATCH_MAX {
                match inbox.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let failed = lock(&self.shared).failed.clone();
            let result = match failed {
                Some(reason) => Err(RegisterError::Io(format!("refusing after an earlier failure: {reason}"))),
                None => self.write(&batch),
            };
            match result {
                Ok(first_seq) => {
                    for (offset, (_, reply)) in batch.into_iter().enumerate() {
                        let _ = reply.send(Ok(first_seq + offset as u64));
                    }
                }
                Err(error) => {
                    lock(&self.shared).failed.get_or_insert_with(|| error.to_string());
                    for (_, reply) in batch {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }

    /// Writes a batch as one synced write; returns the first seq.
    fn write(&mut self, batch: &[(Inquiry, Reply)]) -> Result<u64, RegisterError> {
        let first_seq = self.chain.next_seq();
        if self.current.len >= INQUIRY_SEGMENT_BYTES_MAX {
            self.current = Current {
                first: first_seq,
                len: segment::HEADER_BYTES as u64,
                file: create_segment(&self.storage, first_seq)?,
            };
        }
        let now = Timestamp::now().micros();
        let (mut prev, mut time) = (self.chain.last_checksum(), self.chain.last_time().unwrap_or(i64::MIN));
        let mut bytes = Vec::new();
        let mut written = Vec::with_capacity(batch.len());
        for (index, (inquiry, _)) in batch.iter().enumerate() {
            let seq = first_seq + index as u64;
            time = now.max(time.saturating_add(1));
            let wire = inquiry.encode();
            let (frame, sum) = frame::encode(index + 1 == batch.len(), seq, time, &prev, &wire);
            bytes.extend_from_slice(&frame);
            written.push((seq, time, prev, sum, wire));
            prev = sum;
        }
        let name = segment::name(self.current.first);
        self.current.file.append(&bytes).map_err(io_error(format!("appending to {name}")))?;
        self.current.file.sync().map_err(io_error(format!("syncing {name}")))?;
        self.current.len += bytes.len() as u64;
        let mut shared = lock(&self.shared);
        for (seq, time, prev, sum, wire) in written {
            let linked = self.chain.link_fields(seq, &prev, time, sum);
            assert!(linked.is_ok(), "the register's writer builds a well-formed chain: {linked:?}");
            shared.tree.push(frame::leaf(seq, time, &wire));
        }
        assert_eq!(shared.tree.size(), self.chain.next_seq(), "a leaf per durable inquiry");
        Ok(first_seq)
    }
}

/// Reads the register of the ledger in `dir` without its writer (beside a
/// running server): every committed inquiry from `from`, at most `limit`.
/// The chain is checked as it is read.
pub fn read(dir: &Path, from: u64, limit: usize) -> Result<Vec<Recorded>, RegisterError> {
    let segments = Paths::new(dir).inquiry_segments();
    if !segments.exists() {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    let mut fault = None;
    Reader::new(segments)
        .read_from(from, None, |frame| {
            if out.len() >= limit {
                return ControlFlow::Break(());
            }
            let decoded = postcard::from_bytes::<Inquiry>(&frame.wire).map_err(|e| e.to_string()).and_then(|inquiry| {
                Timestamp::from_micros(frame.system_time).map(|at| (at, inquiry)).map_err(|e| e.to_string())
            });
            match decoded {
                Ok((at, inquiry)) => {
                    out.push(Recorded { seq: frame.seq, at, inquiry });
                    ControlFlow::Continue(())
                }
                Err(error) => {
                    fault = Some(format!("seq {}: {error}", frame.seq));
                    ControlFlow::Break(())
                }
            }
        })
        .map_err(|error| RegisterError::Damaged(error.to_string()))?;
    match fault {
        Some(reason) => Err(RegisterError::Damaged(reason)),
        None => Ok(out),
    }
}

/// What `verify` found: the records, and the checkpoint they match.
#[derive(Debug, Clone)]
pub struct Verified {
    pub size: u64,
    pub root: Hash,
    /// The latest signed register checkpoint's size, if there is one.
    pub checkpoint: Option<u64>,
}

/// Verifies the register of the ledger in `dir` from its files, with the
/// log's public key only: every frame and the chain, and that the latest
/// signed register checkpoint (if any) is a prefix of what is there.
pub fn verify(dir: &Path) -> Result<Verified, LedgerError> {
    let (_, _, log_key) = crate::ledger::read_config(dir)?;
    let paths = Paths::new(dir);
    let key = NoteKey::new(&origin(&log_key.name), log_key.key).map_err(|e| LedgerError::Checkpoint(e.to_string()))?;
    let storage = FsStorage::new(paths.inquiry_segments());
    let opened = if paths.inquiry_segments().exists() {
        scan(&storage, false).map_err(|error| LedgerError::Checkpoint(error.to_string()))?
    } else {
        Opened { tree: Tree::new(), chain: Chain::new(), last: None }
    };
    check_checkpoint(&paths, &key, &opened.tree).map_err(|error| LedgerError::Checkpoint(error.to_string()))?;
    let checkpoint = std::fs::read_to_string(paths.inquiry_checkpoint())
        .ok()
        .and_then(|text| crate::ledger::open_checkpoint(&text, &key).ok())
        .map(|checkpoint| checkpoint.size);
    let size = opened.tree.size();
    let root = opened.tree.root(size).unwrap_or_else(|| crate::merkle::root(&[]));
    Ok(Verified { size, root, checkpoint })
}

/// The register's directory under a ledger directory.
pub fn dir_of(ledger: &Path) -> PathBuf {
    Paths::new(ledger).inquiries()
}
