//! The log core: recovery on open, stateful validation, and batched durable
//! appends. Single-threaded by design: the sequencer (`sequencer.rs`) owns a
//! `Log` on one thread and feeds it batches.

use std::collections::{BTreeMap, HashMap};

/// The hasher of the append path's maps: foldhash, randomly seeded per
/// process. SipHash (std's default) was 20% of the writer's time in
/// `log-bench`; keys come from authenticated agencies (case references) or
/// are BLAKE3 outputs (ids), and the random seed still resists flooding.
type Fast = foldhash::fast::RandomState;

use docket_model::{AuthError, CaseRef, EventError, EventId, EventKind, PublicKey, Registry, SignedEvent, Timestamp};

use crate::frame;
use crate::merkle::leaf_hash;
use crate::segment;
use crate::storage::{SegmentFile, Storage};
use crate::tree::Tree;

/// Limits and tuning of the log.
#[derive(Debug, Clone)]
pub struct Config {
    /// A segment is closed once it would grow past this many bytes.
    pub segment_bytes_max: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self { segment_bytes_max: 64 * 1024 * 1024 }
    }
}

/// What the ledger gives back for an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Gapless position in the log, from 0.
    pub seq: u64,
    pub id: EventId,
    /// Index of the record's leaf in the Merkle tree (equal to `seq`).
    pub leaf_index: u64,
    /// When the ledger recorded it (monotonic per log).
    pub system_time: Timestamp,
}

/// Why one event was refused. Nothing was written for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("not authorised: {0}")]
    Auth(#[from] AuthError),
    #[error("case {list}/{subject}/{number} does not exist; a case opens with a notice or a designation decision")]
    NoSuchCase { list: String, subject: String, number: String },
    #[error("stale expected version: expected {expected}, the case is at version {actual}")]
    Conflict { expected: u64, actual: u64 },
}

/// Why the log itself failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("I/O error while {context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("corrupted log: segment {segment}, offset {offset}, seq {seq}: {reason}")]
    Corrupted { segment: String, offset: u64, seq: u64, reason: String },
    #[error("the log is poisoned by an earlier write failure; reopen it to recover")]
    Poisoned,
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LogError {
    let context = context.into();
    move |source| LogError::Io { context, source }
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records in the log after recovery.
    pub records: u64,
    /// A torn tail that was cut: segment, offset, bytes cut.
    pub truncated: Option<(String, u64, u64)>,
}

/// One accepted record, as recovery and readers see it.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub system_time: Timestamp,
    pub event: SignedEvent,
}

/// What the stateful checks need: the registry, case versions, and the ids
/// already in the log. Shared by the append path and `verify`, so that both
/// apply the same rules.
#[derive(Debug, Clone)]
pub struct State {
    registry: Registry,
    cases: HashMap<CaseRef, u64, Fast>,
    ids: HashMap<EventId, (u64, i64), Fast>,
}

impl State {
    /// An empty log's state under the given registry root key.
    pub fn new(root: PublicKey) -> Self {
        Self { registry: Registry::new(root), cases: HashMap::default(), ids: HashMap::default() }
    }

    /// The stateful checks: duplicate, authorisation, case existence, expected
    /// version. `pending` holds case versions of a batch not yet applied.
    /// `Ok(Some(receipt))` means a duplicate of an earlier record.
    pub fn check(
        &self,
        event: &SignedEvent,
        system_time: Timestamp,
        pending: &BTreeMap<CaseRef, u64>,
    ) -> Result<Option<Receipt>, Refusal> {
        if let Some((seq, time)) = self.ids.get(&event.id()) {
            let system_time =
                Timestamp::from_micros(*time).unwrap_or_else(|_| unreachable!("stored times were checked"));
            return Ok(Some(Receipt { seq: *seq, id: event.id(), leaf_index: *seq, system_time }));
        }
        self.registry.authorize(event.event(), system_time)?;
        if let Some(case) = event.event().case() {
            let key = case.case_ref();
            let version = pending.get(&key).copied().unwrap_or_else(|| self.case_version(&key));
            let opens = matches!(event.event().kind(), EventKind::Notice | EventKind::DesignationDecision);
            if version == 0 && !opens {
                return Err(Refusal::NoSuchCase {
                    list: key.list.to_string(),
                    subject: key.subject.display_masked(),
                    number: key.number.to_string(),
                });
            }
            if let Some(expected) = case.expected_version {
                if expected != version {
                    return Err(Refusal::Conflict { expected, actual: version });
                }
            }
        }
        Ok(None)
    }

    /// Records an event that passed `check` (or is being replayed from the log).
    pub fn apply(&mut self, event: &SignedEvent, seq: u64, system_time: Timestamp) -> Result<(), AuthError> {
        self.registry.apply(event.event(), system_time)?;
        if let Some(case) = event.event().case() {
            *self.cases.entry(case.case_ref()).or_insert(0) += 1;
        }
        self.ids.insert(event.id(), (seq, system_time.micros()));
        Ok(())
    }

    /// The registry as of the events applied so far.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The current version (event count) of a case.
    pub fn case_version(&self, case: &CaseRef) -> u64 {
        self.cases.get(case).copied().unwrap_or(0)
    }
}

struct Segment<F> {
    name: String,
    file: F,
    len: u64,
}

/// A record accepted into a batch, waiting for the sync: seq, system time, checksum, wire form.
type Accepted = (u64, i64, [u8; 32], Vec<u8>);

/// The frames of one batch on their way to disk.
struct Write {
    buffer: Vec<u8>,
    accepted: Vec<Accepted>,
    /// Where the last buffered frame starts, and its prev, to flag it COMMIT.
    last: Option<(usize, [u8; 32])>,
}

/// The log of record.
pub struct Log<S: Storage> {
    storage: S,
    config: Config,
    current: Segment<S::File>,
    next_seq: u64,
    last_checksum: [u8; 32],
    last_time: i64,
    tree: Tree,
    state: State,
    poisoned: bool,
}

impl<S: Storage> std::fmt::Debug for Log<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("next_seq", &self.next_seq).field("poisoned", &self.poisoned).finish()
    }
}

impl<S: Storage> Log<S> {
    /// Opens (or creates) the log, recovering from a torn tail.
    /// `on_record` sees every record in order, e.g. to rebuild a projection.
    pub fn open(
        storage: S,
        config: Config,
        root: PublicKey,
        mut on_record: impl FnMut(&Record),
    ) -> Result<(Self, Recovery), LogError> {
        let mut names: Vec<(u64, String)> = storage
            .list()
            .map_err(io("listing segments"))?
            .into_iter()
            .filter_map(|name| segment::parse_name(&name).map(|first| (first, name)))
            .collect();
        names.sort();
        let first = Self::create_segment(&storage, 0)?;
        let mut log = Self {
            current: Segment { name: segment::name(0), file: first, len: segment::HEADER_BYTES as u64 },
            storage,
            config,
            next_seq: 0,
            last_checksum: [0; 32],
            last_time: i64::MIN,
            tree: Tree::new(),
            state: State::new(root),
            poisoned: false,
        };
        let mut recovery = Recovery::default();
        let last = names.len().saturating_sub(1);
        for (position, (first_seq, name)) in names.iter().enumerate() {
            let mut file = log.storage.open(name).map_err(io(format!("opening {name}")))?;
            let bytes = file.read_all().map_err(io(format!("reading {name}")))?;
            let scan = segment::scan(&bytes, *first_seq);
            for (offset, frame) in &scan.frames[..scan.committed] {
                log.replay(name, *offset, frame, &mut on_record)?;
            }
            if !scan.is_clean() {
                let (offset, reason, torn) = scan.fault.clone().unwrap_or_else(|| {
                    let at = scan.frames[scan.committed].0;
                    (at, "frames after the last commit point (a write that was never synced)".into(), true)
                });
                if !(torn && position == last) {
                    return Err(LogError::Corrupted { segment: name.clone(), offset, seq: log.next_seq, reason });
                }
                let cut = bytes.len() as u64 - scan.committed_len;
                file.truncate(scan.committed_len).map_err(io(format!("truncating the torn tail of {name}")))?;
                if scan.committed_len < segment::HEADER_BYTES as u64 {
                    file.truncate(0).map_err(io(format!("truncating {name}")))?;
                    file.append(&segment::header(*first_seq))
                        .and_then(|()| file.sync())
                        .map_err(io(format!("rewriting the header of {name}")))?;
                }
                recovery.truncated = Some((name.clone(), offset, cut));
            }
            let len = scan.committed_len.max(segment::HEADER_BYTES as u64);
            log.current = Segment { name: name.clone(), file, len };
        }
        recovery.records = log.next_seq;
        Ok((log, recovery))
    }

    fn create_segment(storage: &S, first_seq: u64) -> Result<S::File, LogError> {
        let name = segment::name(first_seq);
        if let Ok(file) = storage.open(&name) {
            return Ok(file);
        }
        let mut file = storage.create(&name).map_err(io(format!("creating {name}")))?;
        file.append(&segment::header(first_seq))
            .and_then(|()| file.sync())
            .map_err(io(format!("writing the header of {name}")))?;
        Ok(file)
    }

    fn replay(
        &mut self,
        name: &str,
        offset: u64,
        frame: &frame::Frame,
        on_record: &mut impl FnMut(&Record),
    ) -> Result<(), LogError> {
        let corrupted =
            |reason: String| LogError::Corrupted { segment: name.to_owned(), offset, seq: frame.seq, reason };
        if frame.seq != self.next_seq {
            return Err(corrupted(format!("expected seq {}", self.next_seq)));
        }
        if frame.prev != self.last_checksum {
            return Err(corrupted("hash chain broken: prev does not match the previous record".into()));
        }
        if frame.system_time <= self.last_time {
            return Err(corrupted("system time does not increase".into()));
        }
        let event =
            SignedEvent::from_wire(&frame.wire).map_err(|e| corrupted(format!("event does not decode: {e}")))?;
        let system_time = Timestamp::from_micros(frame.system_time).map_err(|e| corrupted(e.to_string()))?;
        self.state
            .apply(&event, frame.seq, system_time)
            .map_err(|e| corrupted(format!("not authorised at its position: {e}")))?;
        self.advance(frame.seq, frame.system_time, frame.checksum, &frame.wire);
        on_record(&Record { seq: frame.seq, system_time, event });
        Ok(())
    }

    /// Moves the log's position past a durable record.
    fn advance(&mut self, seq: u64, system_time: i64, checksum: [u8; 32], wire: &[u8]) {
        self.tree.push(leaf_hash(&frame::entry(seq, system_time, wire)));
        self.next_seq = seq + 1;
        self.last_checksum = checksum;
        self.last_time = system_time;
    }

    /// Appends a batch: checks each event in order, writes the accepted ones,
    /// calls `fdatasync` once, and only then returns their receipts.
    /// Signatures must already be verified (the sequencer does it before
    /// sequencing). A write or sync failure poisons the log: the in-memory
    /// state may then be ahead of the disk, and nothing more is accepted
    /// until the log is reopened, which rebuilds the state from the disk.
    pub fn append_batch(
        &mut self,
        events: Vec<SignedEvent>,
        now: Timestamp,
    ) -> Result<Vec<Result<Receipt, Refusal>>, LogError> {
        self.append_batch_with(events, now, false)
    }

    /// As [`Log::append_batch`]; with `stop_on_refusal`, the first refusal
    /// ends the batch and the events after it are neither checked nor
    /// written (their results are missing from the returned list).
    pub fn append_batch_with(
        &mut self,
        events: Vec<SignedEvent>,
        now: Timestamp,
        stop_on_refusal: bool,
    ) -> Result<Vec<Result<Receipt, Refusal>>, LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        let mut results = Vec::with_capacity(events.len());
        let mut write = Write { buffer: Vec::new(), accepted: Vec::new(), last: None };
        let mut pending_cases: BTreeMap<CaseRef, u64> = BTreeMap::new();
        let (mut seq, mut checksum, mut time) = (self.next_seq, self.last_checksum, self.last_time);
        for event in events {
            let system_time = Timestamp::from_micros(now.micros().max(time.saturating_add(1))).unwrap_or(now);
            match self.state.check(&event, system_time, &pending_cases) {
                Ok(Some(receipt)) => results.push(Ok(receipt)),
                Err(refusal) => {
                    results.push(Err(refusal));
                    if stop_on_refusal {
                        break;
                    }
                }
                Ok(None) => {
                    if let Some(case) = event.event().case() {
                        let key = case.case_ref();
                        let version = pending_cases.get(&key).copied().unwrap_or_else(|| self.state.case_version(&key));
                        pending_cases.insert(key, version + 1);
                    }
                    // check() passed, so apply() cannot fail. Applying now lets
                    // later events of the batch see this one (and its duplicates).
                    let _ = self.state.apply(&event, seq, system_time);
                    time = system_time.micros();
                    let wire = event.to_wire();
                    self.make_room(&mut write, &mut checksum, wire.len(), seq)?;
                    let (bytes, sum) = frame::encode(false, seq, time, &checksum, &wire);
                    write.last = Some((write.buffer.len(), checksum));
                    write.buffer.extend_from_slice(&bytes);
                    write.accepted.push((seq, time, sum, wire));
                    results.push(Ok(Receipt { seq, id: event.id(), leaf_index: seq, system_time }));
                    checksum = sum;
                    seq += 1;
                }
            }
        }
        self.sync_write(&mut write, &mut checksum)?;
        for (seq, time, sum, wire) in write.accepted {
            self.advance(seq, time, sum, &wire);
        }
        Ok(results)
    }

    /// Before a frame of `wire_len` bytes joins the write: syncs what is
    /// buffered if the write would pass `WRITE_BYTES_MAX`, and rotates to a
    /// new segment if the current one would pass `segment_bytes_max`.
    fn make_room(
        &mut self,
        write: &mut Write,
        checksum: &mut [u8; 32],
        wire_len: usize,
        seq: u64,
    ) -> Result<(), LogError> {
        let size = (frame::HEADER_BYTES + wire_len + frame::TRAILER_BYTES) as u64;
        let used = self.current.len + write.buffer.len() as u64;
        let rotate = used > segment::HEADER_BYTES as u64 && used + size > self.config.segment_bytes_max;
        if rotate || write.buffer.len() as u64 + size > segment::WRITE_BYTES_MAX as u64 {
            self.sync_write(write, checksum)?;
        }
        if rotate {
            match Self::create_segment(&self.storage, seq) {
                Ok(file) => {
                    self.current = Segment { name: segment::name(seq), file, len: segment::HEADER_BYTES as u64 }
                }
                Err(error) => {
                    self.poisoned = true;
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Flags the last buffered frame COMMIT (re-encoding it, which changes its
    /// checksum), appends the buffer, and syncs. Poisons the log on failure.
    fn sync_write(&mut self, write: &mut Write, checksum: &mut [u8; 32]) -> Result<(), LogError> {
        let Some((start, prev)) = write.last.take() else {
            return Ok(());
        };
        let last = write.accepted.last_mut().unwrap_or_else(|| unreachable!("a buffered frame was accepted"));
        let (bytes, sum) = frame::encode(true, last.0, last.1, &prev, &last.3);
        write.buffer.truncate(start);
        write.buffer.extend_from_slice(&bytes);
        last.2 = sum;
        *checksum = sum;
        let name = &self.current.name;
        let result = self
            .current
            .file
            .append(&write.buffer)
            .map_err(io(format!("appending to {name}")))
            .and_then(|()| self.current.file.sync().map_err(io(format!("syncing {name}"))));
        if let Err(error) = result {
            self.poisoned = true;
            return Err(error);
        }
        self.current.len += write.buffer.len() as u64;
        write.buffer.clear();
        Ok(())
    }

    /// Records in the log.
    pub fn size(&self) -> u64 {
        self.next_seq
    }
    /// The Merkle tree over all records.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }
    /// The validation state as of the end of the log.
    pub fn state(&self) -> &State {
        &self.state
    }
    /// Whether a write failure has poisoned the log.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}
