//! The log core: recovery on open, stateful validation, and batched durable
//! appends. Single-threaded by design: the sequencer (`sequencer.rs`) owns a
//! `Log` on one thread and feeds it batches.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

/// The hasher of the append path's maps: foldhash, randomly seeded per
/// process. SipHash (std's default) was 20% of the writer's time in
/// `log-bench`; keys come from authenticated agencies (case references) or
/// are BLAKE3 outputs (ids), and the random seed still resists flooding.
type Fast = foldhash::fast::RandomState;

use docket_model::{AuthError, CaseRef, EventError, EventId, EventKind, PublicKey, Registry, SignedEvent, Timestamp};

use crate::chain::Chain;
use crate::frame;
use crate::index::{Index, Indexed, INDEX_FLUSH_RECORDS};
use crate::segment::{self, Tail};
use crate::storage::{SegmentFile, Storage};
use crate::tree::Tree;

/// Limits and tuning of the log.
#[derive(Debug, Clone)]
pub struct Config {
    /// A segment is closed once it would grow past this many bytes.
    pub segment_bytes_max: u64,
}

/// `Config::segment_bytes_max` by default: 64 MiB.
const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 * 1024 * 1024;

// A segment of the default size holds its header and the largest frame, and
// a whole write (`segment::WRITE_BYTES_MAX`): with the defaults, a full write
// never closes a segment by itself. (A smaller configured size is still
// safe: `make_room` rotates only a segment that holds a frame, so a frame
// larger than the segment gets a segment of its own.)
const _: () = assert!(segment::HEADER_BYTES as u64 + frame::FRAME_BYTES_MAX as u64 <= SEGMENT_BYTES_MAX_DEFAULT);
const _: () = assert!(segment::HEADER_BYTES as u64 + segment::WRITE_BYTES_MAX as u64 <= SEGMENT_BYTES_MAX_DEFAULT);

impl Default for Config {
    fn default() -> Self {
        Self { segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT }
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
    /// A replicated record that does not fit where the primary put it.
    #[error("replicated record: {0}")]
    Replica(String),
}

/// Why the log itself failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("I/O error while {context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("corrupted log: segment {segment}, offset {offset}, seq {seq}: {reason}")]
    Corrupted { segment: String, offset: u64, seq: u64, reason: String },
    #[error("the log refuses writes until it is recovered, after a write failure: {0}")]
    Poisoned(String),
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LogError {
    let context = context.into();
    move |source| LogError::Io { context, source }
}

/// A tail that recovery cut from the end of the log: bytes after the last
/// commit point, never acknowledged, beyond every signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub segment: String,
    /// Where the cut starts (the end of the last commit point).
    pub offset: u64,
    pub bytes: u64,
    /// Seqs of the whole frames that were cut (`first..=last`), if any.
    pub seqs: Option<(u64, u64)>,
    pub reason: String,
}

impl Cut {
    /// Whole records cut.
    pub fn records(&self) -> u64 {
        self.seqs.map_or(0, |(first, last)| last - first + 1)
    }
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cut {} bytes from {} at offset {}", self.bytes, self.segment, self.offset)?;
        match self.seqs {
            Some((first, last)) => {
                write!(f, " ({} record(s), seq {first}..={last}, never acknowledged)", self.records())?
            }
            None => write!(f, " (no whole record)")?,
        }
        write!(f, ": {}", self.reason)
    }
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records in the log after recovery.
    pub records: u64,
    /// The unacknowledged tail that was cut, if any.
    pub cut: Option<Cut>,
    /// Records the open replayed: pushed into the tree or applied to the
    /// validation state (those after the points its tiles and index cover,
    /// or every record). Earlier records of the segment holding the first
    /// of them are read for the hash chain only.
    pub replayed: u64,
}

/// One accepted record, as recovery and readers see it.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub system_time: Timestamp,
    pub event: SignedEvent,
}

/// What [`State::check`] found of an event that passed it.
#[derive(Debug)]
pub enum Checked {
    /// A duplicate of an earlier record.
    Duplicate(Receipt),
    /// A new event, with its case and the case's version before it (`None`
    /// for an event without a case), for [`State::apply_checked`].
    New(Option<(CaseRef, u64)>),
}

/// What the stateful checks need: the registry, case versions, and the ids
/// already in the log. Shared by the append path and `verify`, so that both
/// apply the same rules. In memory it holds every id and case; with an
/// [`Index`] (a ledger's) it holds those applied since the last
/// [`State::flush`] (at most about [`INDEX_FLUSH_RECORDS`]) and looks the
/// rest up on disk.
#[derive(Debug)]
pub struct State {
    registry: Registry,
    cases: HashMap<CaseRef, u64, Fast>,
    ids: HashMap<EventId, (u64, i64), Fast>,
    index: Option<Index>,
}

fn index_error(reason: String) -> LogError {
    LogError::Io { context: "reading the log's index".into(), source: std::io::Error::other(reason) }
}

impl State {
    /// An empty log's state under the given registry root key, in memory.
    pub fn new(root: PublicKey) -> Self {
        Self { registry: Registry::new(root), cases: HashMap::default(), ids: HashMap::default(), index: None }
    }

    /// The state an index holds (its registry, or an empty one under `root`).
    pub fn indexed(root: PublicKey, index: Index, indexed: Option<&Indexed>) -> Self {
        let registry = indexed.map_or_else(|| Registry::new(root), |i| i.registry.clone());
        Self { registry, cases: HashMap::default(), ids: HashMap::default(), index: Some(index) }
    }

    /// The stateful checks: duplicate, authorisation, case existence, expected
    /// version. `pending` holds case versions of a batch not yet applied.
    /// The outer error is a failure to read the index.
    pub fn check(
        &self,
        event: &SignedEvent,
        system_time: Timestamp,
        pending: &BTreeMap<CaseRef, u64>,
    ) -> Result<Result<Checked, Refusal>, LogError> {
        if let Some((seq, time)) = self.id(&event.id())? {
            let system_time =
                Timestamp::from_micros(time).map_err(|e| index_error(format!("a stored system time: {e}")))?;
            return Ok(Ok(Checked::Duplicate(Receipt { seq, id: event.id(), leaf_index: seq, system_time })));
        }
        if let Err(refusal) = self.registry.authorize(event.event(), system_time) {
            return Ok(Err(refusal.into()));
        }
        let Some(case) = event.event().case() else { return Ok(Ok(Checked::New(None))) };
        let key = case.case_ref();
        let version = match pending.get(&key) {
            Some(version) => *version,
            None => self.case_version(&key)?,
        };
        let opens = matches!(event.event().kind(), EventKind::Notice | EventKind::DesignationDecision);
        if version == 0 && !opens {
            return Ok(Err(Refusal::NoSuchCase {
                list: key.list.to_string(),
                subject: key.subject.display_masked(),
                number: key.number.to_string(),
            }));
        }
        if let Some(expected) = case.expected_version {
            if expected != version {
                return Ok(Err(Refusal::Conflict { expected, actual: version }));
            }
        }
        Ok(Ok(Checked::New(Some((key, version)))))
    }

    fn id(&self, id: &EventId) -> Result<Option<(u64, i64)>, LogError> {
        match (self.ids.get(id), &self.index) {
            (Some(found), _) => Ok(Some(*found)),
            (None, Some(index)) => index.id(id).map_err(index_error),
            (None, None) => Ok(None),
        }
    }

    /// Records an event that passed `check` (or is being replayed from the
    /// log). The error says why it is not authorised, or that the index
    /// could not be read.
    pub fn apply(&mut self, event: &SignedEvent, seq: u64, system_time: Timestamp) -> Result<(), String> {
        let version = match event.event().case() {
            Some(case) => Some((case.case_ref(), self.case_version(&case.case_ref()).map_err(|e| e.to_string())?)),
            None => None,
        };
        self.apply_checked(event, seq, system_time, version)
    }

    /// [`State::apply`] with the case's version `check` found (in
    /// [`Checked::New`]), so that the index is not read again.
    pub fn apply_checked(
        &mut self,
        event: &SignedEvent,
        seq: u64,
        system_time: Timestamp,
        version: Option<(CaseRef, u64)>,
    ) -> Result<(), String> {
        self.registry.apply(event.event(), system_time).map_err(|e: AuthError| format!("not authorised: {e}"))?;
        if let Some((key, version)) = version {
            self.cases.insert(key, version + 1);
        }
        self.ids.insert(event.id(), (seq, system_time.micros()));
        Ok(())
    }

    /// The registry as of the events applied so far.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The current version (event count) of a case.
    pub fn case_version(&self, case: &CaseRef) -> Result<u64, LogError> {
        match (self.cases.get(case), &self.index) {
            (Some(version), _) => Ok(*version),
            (None, Some(index)) => index.case_version(case).map_err(index_error),
            (None, None) => Ok(0),
        }
    }

    /// Where a scan resumes to rebuild this state from the log: at the
    /// point its index covers (an unreadable index is emptied, and the scan
    /// starts from the first record), with `tree`, empty.
    pub fn resume(&mut self, root: PublicKey, tree: Tree) -> Result<Resume, LogError> {
        let fresh = |state| Resume { tree: tree.clone(), state, indexed: 0, checksum: [0; 32] };
        let Some(index) = self.index.take() else { return Ok(fresh(State::new(root))) };
        match index.covered() {
            Ok(Some(indexed)) => Ok(Resume {
                tree,
                state: State::indexed(root, index, Some(&indexed)),
                indexed: indexed.through,
                checksum: indexed.checksum,
            }),
            _ => {
                let index = index.recreate().map_err(index_error)?;
                Ok(fresh(State::indexed(root, index, None)))
            }
        }
    }

    /// Writes what was applied since the last flush to the index, as the
    /// state after `through` records whose last checksum is `checksum`,
    /// when at least `min_records` are waiting (every record applied must be
    /// durable). Nothing to do without an index.
    pub fn flush(&mut self, through: u64, checksum: [u8; 32], min_records: usize) -> Result<(), LogError> {
        let Some(index) = &mut self.index else { return Ok(()) };
        if self.ids.len() < min_records.max(1) {
            return Ok(());
        }
        let indexed = Indexed { through, checksum, registry: self.registry.clone() };
        index.write(self.ids.iter(), self.cases.iter(), &indexed).map_err(|reason| LogError::Io {
            context: "writing the log's index".into(),
            source: std::io::Error::other(reason),
        })?;
        self.ids.clear();
        self.cases.clear();
        Ok(())
    }
}

struct Segment<F> {
    name: String,
    file: F,
    /// Bytes in the file that are durable: the header and every synced write.
    len: u64,
    /// An index write failed: no more entries are appended to it.
    index_broken: bool,
}

/// A record accepted into a batch, waiting for the sync.
struct Accepted {
    seq: u64,
    system_time: i64,
    prev: [u8; 32],
    checksum: [u8; 32],
    wire: Vec<u8>,
}

/// The frames of one batch on their way to disk.
struct Write {
    buffer: Vec<u8>,
    /// Where each buffered frame starts in `buffer`, for the segment's index.
    starts: Vec<u64>,
    accepted: Vec<Accepted>,
    /// Where the last buffered frame starts, and its prev, to flag it COMMIT.
    last: Option<(usize, [u8; 32])>,
}

/// The Merkle tree of a log, shared with readers: the writer pushes a
/// record's leaf only after the record is durable, so a reader of the tree
/// never sees a record that could still be lost. Checkpoints and proofs are
/// computed from it off the writer thread.
pub type SharedTree = Arc<RwLock<Tree>>;

/// The log of record.
pub struct Log<S: Storage> {
    storage: S,
    config: Config,
    root: PublicKey,
    current: Segment<S::File>,
    chain: Chain,
    tree: SharedTree,
    state: State,
    /// Why the log refuses writes: an I/O error on the write path.
    poisoned: Option<String>,
    /// What the last `append_batch` wrote and how long its syncs took.
    last_batch: BatchStats,
}

/// What one `append_batch` wrote: its group commit, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Records written (refusals and duplicates are not).
    pub records: u64,
    /// Bytes appended to segments.
    pub bytes: u64,
    /// `fdatasync` calls (one, or two when the batch rotated a segment).
    pub syncs: u32,
    /// Time spent in them.
    pub sync_time: std::time::Duration,
}

impl<S: Storage> std::fmt::Debug for Log<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("next_seq", &self.size()).field("poisoned", &self.poisoned).finish()
    }
}

/// A log that has been read and checked but not written to: what
/// [`Log::scan`] found. Nothing on disk changes until [`Opening::finish`],
/// so a caller can check the log against its signed checkpoints first and
/// walk away leaving every byte as it was.
pub struct Opening<S: Storage> {
    storage: S,
    config: Config,
    root: PublicKey,
    /// The last segment: its name, first seq, open file and committed length.
    last: Option<(String, u64, S::File, u64)>,
    chain: Chain,
    tree: Tree,
    state: State,
    cut: Option<Cut>,
    /// Segment indexes that do not match their segment, to replace.
    reindex: Vec<(String, Vec<u8>)>,
    /// Frames pushed into the tree or applied to the state.
    replayed: u64,
}

impl<S: Storage> std::fmt::Debug for Opening<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opening").field("records", &self.size()).field("cut", &self.cut).finish()
    }
}

impl<S: Storage> Opening<S> {
    /// Records in the committed log.
    pub fn size(&self) -> u64 {
        self.chain.next_seq()
    }

    /// The Merkle tree of the committed log.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The tail that [`Opening::finish`] would cut, if any.
    pub fn cut(&self) -> Option<&Cut> {
        self.cut.as_ref()
    }

    /// Makes the log writable: cuts the unacknowledged tail (if any), or
    /// creates the first segment of an empty log. The first write to disk.
    pub fn finish(self) -> Result<(Log<S>, Recovery), LogError> {
        let Self { storage, config, root, last, chain, tree, state, cut, reindex, replayed } = self;
        for (name, index) in &reindex {
            storage.replace_index(name, index).map_err(io(format!("writing the index of {name}")))?;
        }
        let current = match last {
            None => {
                let file = Log::create_segment(&storage, 0)?;
                Segment { name: segment::name(0), file, len: segment::HEADER_BYTES as u64, index_broken: false }
            }
            Some((name, first_seq, mut file, committed_len)) => {
                debug_assert!(
                    cut.is_some() || committed_len >= segment::HEADER_BYTES as u64,
                    "a headerless segment is a tail"
                );
                if cut.is_some() {
                    cut_tail(&mut file, &name, first_seq, committed_len)?;
                }
                Segment { name, file, len: committed_len.max(segment::HEADER_BYTES as u64), index_broken: false }
            }
        };
        let records = chain.next_seq();
        assert_eq!(tree.size(), records, "the tree has a leaf per committed record");
        let mut state = state;
        state.flush(records, chain.last_checksum(), 1)?;
        let log = Log {
            storage,
            config,
            root,
            current,
            chain,
            tree: Arc::new(RwLock::new(tree)),
            state,
            poisoned: None,
            last_batch: BatchStats::default(),
        };
        Ok((log, Recovery { records, cut, replayed }))
    }
}

impl<S: Storage> Opening<S> {
    /// Checks a durable frame against the chain and the validation state, and
    /// moves past it.
    fn replay(
        &mut self,
        frame: &frame::Frame,
        (indexed, checksum): (u64, [u8; 32]),
        on_record: &mut impl FnMut(&Record),
    ) -> Result<(), String> {
        self.chain.link(frame).map_err(|fault| fault.to_string())?;
        if frame.seq + 1 == indexed && frame.checksum != checksum {
            return Err(format!("the index covers {indexed} records and does not match the log"));
        }
        if frame.seq >= indexed || frame.seq == self.tree.size() {
            self.replayed += 1;
        }
        if frame.seq >= indexed {
            let event = SignedEvent::from_wire(&frame.wire).map_err(|e| format!("event does not decode: {e}"))?;
            let system_time = Timestamp::from_micros(frame.system_time).map_err(|e| e.to_string())?;
            self.state.apply(&event, frame.seq, system_time).map_err(|e| format!("at its position: {e}"))?;
            on_record(&Record { seq: frame.seq, system_time, event });
            if self.state.ids.len() >= REPLAY_FLUSH_RECORDS {
                self.state.flush(frame.seq + 1, frame.checksum, 1).map_err(|e| e.to_string())?;
            }
        }
        if frame.seq == self.tree.size() {
            self.tree.push(frame::leaf(frame.seq, frame.system_time, &frame.wire));
        }
        Ok(())
    }
}

/// Records a scan applies before it writes them to the index, bounding its
/// memory when it rebuilds the index from the whole log.
const REPLAY_FLUSH_RECORDS: usize = 8 * INDEX_FLUSH_RECORDS;

/// Where a scan resumes: the tree at some size (a tree on disk at a whole
/// tile), the validation state at the point its index covers.
#[derive(Debug)]
pub struct Resume {
    /// The tree, whose size is the first leaf the scan pushes.
    pub tree: Tree,
    /// The state after `indexed` records.
    pub state: State,
    /// Records the state covers.
    pub indexed: u64,
    /// Checksum of frame `indexed - 1` (checked when the scan passes it).
    pub checksum: [u8; 32],
}

impl Resume {
    /// From the first record, all in memory.
    pub fn fresh(root: PublicKey) -> Self {
        Self { tree: Tree::new(), state: State::new(root), indexed: 0, checksum: [0; 32] }
    }
}

/// The offset of record `seq` in segment `name` (first record `first_seq`)
/// from the segment's index, if the index reaches it.
fn indexed_offset<S: Storage>(storage: &S, name: &str, first_seq: u64, seq: u64) -> Option<u64> {
    let index = storage.read_index(name).ok()?;
    let at = usize::try_from(seq.checked_sub(first_seq)?).ok()?.checked_mul(8)?;
    let entry: [u8; 8] = index.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(entry))
}

/// Cuts a segment back to its last commit point and makes that durable; a
/// segment whose header never became durable gets its header again.
fn cut_tail<F: SegmentFile>(file: &mut F, name: &str, first_seq: u64, committed_len: u64) -> Result<(), LogError> {
    file.truncate(committed_len).map_err(io(format!("cutting the unacknowledged tail of {name}")))?;
    if committed_len < segment::HEADER_BYTES as u64 {
        file.truncate(0).map_err(io(format!("truncating {name}")))?;
        file.append(&segment::header(first_seq))
            .and_then(|()| file.sync())
            .map_err(io(format!("rewriting the header of {name}")))?;
    }
    Ok(())
}

impl<S: Storage> Log<S> {
    /// Opens (or creates) the log: [`Log::scan`], then [`Opening::finish`].
    /// `on_record` sees every record in order, e.g. to rebuild a projection.
    pub fn open(
        storage: S,
        config: Config,
        root: PublicKey,
        on_record: impl FnMut(&Record),
    ) -> Result<(Self, Recovery), LogError> {
        Self::scan(storage, config, root, on_record)?.finish()
    }

    /// Reads every segment, walks the chain and replays the validation
    /// state, without writing anything. Damage before the last commit point
    /// of the log is an error naming segment, offset and seq; a tail after it
    /// (a write that was never acknowledged) is noted for [`Opening::finish`].
    pub fn scan(
        storage: S,
        config: Config,
        root: PublicKey,
        on_record: impl FnMut(&Record),
    ) -> Result<Opening<S>, LogError> {
        Self::scan_with(storage, config, root, on_record, false)
    }

    /// As [`Log::scan`]; with `cut_damaged_write`, damage within one write of
    /// the end of the last segment is taken for a write whose pages a power
    /// loss reordered, and the tail to cut starts at the last commit point
    /// before it. Only for an operator who knows the machine lost power: the
    /// records cut may have been acknowledged, so a ledger refuses the cut if
    /// a signed checkpoint covers any of them.
    pub fn scan_with(
        storage: S,
        config: Config,
        root: PublicKey,
        on_record: impl FnMut(&Record),
        cut_damaged_write: bool,
    ) -> Result<Opening<S>, LogError> {
        Self::scan_resumed(storage, config, root, on_record, cut_damaged_write, Resume::fresh(root))
    }

    /// As [`Log::scan_with`], resumed: reads only the segments from the one
    /// holding record `min(tree size, indexed) - 1` on (earlier segments were
    /// read when they were written), pushes leaves from the tree's size on
    /// and applies records to the state from `indexed` on. `on_record` sees
    /// the records applied.
    pub fn scan_resumed(
        storage: S,
        config: Config,
        root: PublicKey,
        mut on_record: impl FnMut(&Record),
        cut_damaged_write: bool,
        resume: Resume,
    ) -> Result<Opening<S>, LogError> {
        let mut names: Vec<(u64, String)> = storage
            .list()
            .map_err(io("listing segments"))?
            .into_iter()
            .filter_map(|name| segment::parse_name(&name).map(|first| (first, name)))
            .collect();
        names.sort();
        let before = resume.tree.size().min(resume.indexed).saturating_sub(1);
        let skip = names.iter().rposition(|(first, _)| *first <= before).unwrap_or(0);
        let start = names.get(skip).map_or(0, |(first, _)| *first);
        let mut opening = Opening {
            storage,
            config,
            root,
            last: None,
            chain: if start == 0 { Chain::new() } else { Chain::resume(start, None) },
            tree: resume.tree,
            state: resume.state,
            cut: None,
            reindex: Vec::new(),
            replayed: 0,
        };
        let indexed = (resume.indexed, resume.checksum);
        let count = names.len();
        for (position, (first_seq, name)) in names.into_iter().enumerate().skip(skip) {
            let corrupted = |offset: u64, seq: u64, reason: String| LogError::Corrupted {
                segment: name.clone(),
                offset,
                seq,
                reason,
            };
            if first_seq != opening.chain.next_seq() {
                let reason = format!(
                    "the segment starts at seq {first_seq}, the log before it ends at {}",
                    opening.chain.next_seq()
                );
                return Err(corrupted(0, opening.chain.next_seq(), reason));
            }
            let mut file = opening.storage.open(&name).map_err(io(format!("opening {name}")))?;
            let is_last = position + 1 == count;
            // The first segment read starts at the frame before the resume
            // point, found through the segment's index, when it has one; the
            // bytes before it are not read (up to `segment_bytes_max`).
            let seek = (position == skip && before > first_seq && !cut_damaged_write)
                .then(|| indexed_offset(&opening.storage, &name, first_seq, before))
                .flatten();
            let scan = match seek {
                Some(offset) => {
                    opening.chain = Chain::resume(before, None);
                    let rest = file.read_from(offset).map_err(io(format!("reading {name}")))?;
                    segment::scan_from(&rest, before, offset)
                }
                None => {
                    let bytes = file.read_all().map_err(io(format!("reading {name}")))?;
                    segment::scan(&bytes, first_seq, cut_damaged_write && is_last)
                }
            }
            .map_err(|damage| corrupted(damage.offset, damage.seq, damage.reason))?;
            for (offset, frame) in &scan.frames {
                opening
                    .replay(frame, indexed, &mut on_record)
                    .map_err(|reason| corrupted(*offset, frame.seq, reason))?;
            }
            if let Some(tail) = scan.tail {
                if position + 1 != count {
                    let reason = format!("a closed segment does not end at a commit point: {}", tail.reason);
                    let (offset, seq) = tail.bad_frame.unwrap_or((tail.offset, opening.chain.next_seq()));
                    return Err(corrupted(offset, seq, reason));
                }
                let Tail { offset, bytes, seqs, reason, .. } = tail;
                opening.cut = Some(Cut { segment: name.clone(), offset, bytes, seqs, reason });
            }
            let index: Vec<u8> = scan.frames.iter().flat_map(|(offset, _)| offset.to_be_bytes()).collect();
            if seek.is_none() && opening.storage.read_index(&name).ok().as_ref() != Some(&index) {
                opening.reindex.push((name.clone(), index));
            }
            opening.last = Some((name, first_seq, file, scan.committed_len));
        }
        let records = opening.chain.next_seq();
        if records < opening.tree.size() || records < indexed.0 {
            let segment = opening.last.as_ref().map_or_else(String::new, |(name, ..)| name.clone());
            let reason = format!(
                "the log ends at {records} records, before the {} its tiles or the {} its index cover",
                opening.tree.size(),
                indexed.0
            );
            return Err(LogError::Corrupted { segment, offset: 0, seq: records, reason });
        }
        Ok(opening)
    }

    fn create_segment(storage: &S, first_seq: u64) -> Result<S::File, LogError> {
        let name = segment::name(first_seq);
        let mut file = storage.create(&name).map_err(io(format!("creating {name}")))?;
        file.append(&segment::header(first_seq))
            .and_then(|()| file.sync())
            .map_err(io(format!("writing the header of {name}")))?;
        Ok(file)
    }

    /// Reopens the log after a write failure, as on start: the current
    /// segment is cut back to what was synced before the failure (pages of a
    /// failed write are never trusted, and `fdatasync` is never retried on
    /// them), then every segment is read and checked again. The tree must
    /// agree with the one readers were shown; on success the shared tree is
    /// kept (readers hold it). On failure the log stays poisoned.
    pub fn recover(&mut self) -> Result<Recovery, LogError> {
        let shown = self.size();
        let (name, durable) = (self.current.name.clone(), self.current.len);
        let mut file = self.storage.open(&name).map_err(io(format!("opening {name}")))?;
        let len = file.read_all().map_err(io(format!("reading {name}")))?.len() as u64;
        if len > durable {
            file.truncate(durable).map_err(io(format!("cutting the failed write from {name}")))?;
        }
        drop(file);
        let resume = self.state.resume(self.root, read_lock(&self.tree).emptied())?;
        let opening = Self::scan_resumed(self.storage.clone(), self.config.clone(), self.root, |_| {}, false, resume)?;
        let (mut log, recovery) = opening.finish()?;
        let fresh = std::mem::take(&mut *write_lock(&log.tree));
        if log.size() < shown || fresh.root(shown) != read_lock(&self.tree).root(shown) {
            let reason = format!(
                "after recovery the log has {} records and does not match the {shown} acknowledged",
                log.size()
            );
            return Err(LogError::Corrupted { segment: name, offset: durable, seq: shown, reason });
        }
        *write_lock(&self.tree) = fresh;
        log.tree = self.tree.clone();
        *self = log;
        // Postconditions: nothing acknowledged was lost, and the tree has a
        // leaf per record.
        assert!(self.size() >= shown);
        assert_eq!(read_lock(&self.tree).size(), self.size());
        Ok(recovery)
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
        self.append_records(events.into_iter().map(|event| (event, None)).collect(), now, stop_on_refusal)
    }

    /// Appends records a replica took from its primary, each at the seq and
    /// system time the primary gave it, so that the replica's log, tree
    /// and checkpoints are the primary's. Every stateful check of an append
    /// applies (the registry's rules, case versions); a record that is
    /// refused, a duplicate, not at the next seq or not later than the one
    /// before is refused (`Refusal::Replica` for the last three) and ends
    /// the batch. Signatures must already be verified.
    pub fn append_replicated(
        &mut self,
        records: Vec<(SignedEvent, u64, Timestamp)>,
    ) -> Result<Vec<Result<Receipt, Refusal>>, LogError> {
        let now = Timestamp::now();
        self.append_records(
            records.into_iter().map(|(event, seq, time)| (event, Some((seq, time)))).collect(),
            now,
            true,
        )
    }

    /// The append path: `pinned` records carry the seq and system time they
    /// must have (a replica's); others get the next seq and `now` (or just
    /// after the last record's time).
    fn append_records(
        &mut self,
        events: Vec<(SignedEvent, Option<(u64, Timestamp)>)>,
        now: Timestamp,
        stop_on_refusal: bool,
    ) -> Result<Vec<Result<Receipt, Refusal>>, LogError> {
        if let Some(reason) = &self.poisoned {
            return Err(LogError::Poisoned(reason.clone()));
        }
        // Everything applied so far is durable: the index may take it.
        if let Err(error) = self.state.flush(self.chain.next_seq(), self.chain.last_checksum(), INDEX_FLUSH_RECORDS) {
            self.poisoned = Some(error.to_string());
            return Err(error);
        }
        let mut results = Vec::with_capacity(events.len());
        let mut write = Write { buffer: Vec::new(), starts: Vec::new(), accepted: Vec::new(), last: None };
        self.last_batch = BatchStats::default();
        let mut pending_cases: BTreeMap<CaseRef, u64> = BTreeMap::new();
        let (mut seq, mut checksum) = (self.chain.next_seq(), self.chain.last_checksum());
        let mut time = self.chain.last_time().unwrap_or(i64::MIN);
        for (event, pinned) in events {
            let system_time = match pinned {
                None => Timestamp::from_micros(now.micros().max(time.saturating_add(1))).unwrap_or(now),
                Some((expected, _)) if expected != seq => {
                    results.push(Err(Refusal::Replica(format!("it is seq {expected}, the log's next is {seq}"))));
                    break;
                }
                Some((_, pinned_time)) if pinned_time.micros() <= time => {
                    results.push(Err(Refusal::Replica(format!(
                        "seq {seq}: its system time {pinned_time} is not after the record before it"
                    ))));
                    break;
                }
                Some((_, pinned_time)) => pinned_time,
            };
            match self.state.check(&event, system_time, &pending_cases)? {
                Ok(Checked::Duplicate(receipt)) if pinned.is_some() => {
                    let first = receipt.seq;
                    results.push(Err(Refusal::Replica(format!("seq {seq}: a duplicate of seq {first}"))));
                    break;
                }
                Ok(Checked::Duplicate(receipt)) => results.push(Ok(receipt)),
                Err(refusal) => {
                    results.push(Err(refusal));
                    if stop_on_refusal {
                        break;
                    }
                }
                Ok(Checked::New(case)) => {
                    if let Some((key, version)) = &case {
                        pending_cases.insert(key.clone(), version + 1);
                    }
                    // check() passed, so apply() cannot fail. Applying now lets
                    // later events of the batch see this one (and its duplicates).
                    if let Err(reason) = self.state.apply_checked(&event, seq, system_time, case) {
                        self.poisoned = Some(reason.clone());
                        return Err(index_error(reason));
                    }
                    time = system_time.micros();
                    let wire = event.to_wire();
                    self.make_room(&mut write, &mut checksum, wire.len(), seq)?;
                    let (bytes, sum) = frame::encode(false, seq, time, &checksum, &wire);
                    write.last = Some((write.buffer.len(), checksum));
                    write.starts.push(write.buffer.len() as u64);
                    write.buffer.extend_from_slice(&bytes);
                    write.accepted.push(Accepted { seq, system_time: time, prev: checksum, checksum: sum, wire });
                    results.push(Ok(Receipt { seq, id: event.id(), leaf_index: seq, system_time }));
                    checksum = sum;
                    seq += 1;
                }
            }
        }
        self.sync_write(&mut write, &mut checksum)?;
        self.advance(&write.accepted);
        Ok(results)
    }

    /// Moves the log's position past durable records, and shows them to
    /// readers of the tree.
    fn advance(&mut self, accepted: &[Accepted]) {
        let mut tree = write_lock(&self.tree);
        for record in accepted {
            let linked = self.chain.link_fields(record.seq, &record.prev, record.system_time, record.checksum);
            assert!(linked.is_ok(), "the append path builds a well-formed chain: {linked:?}");
            tree.push(frame::leaf(record.seq, record.system_time, &record.wire));
        }
        assert_eq!(tree.size(), self.chain.next_seq(), "a leaf per durable record");
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
                    self.current = Segment {
                        name: segment::name(seq),
                        file,
                        len: segment::HEADER_BYTES as u64,
                        index_broken: false,
                    }
                }
                Err(error) => {
                    self.poisoned = Some(error.to_string());
                    return Err(error);
                }
            }
            // Postconditions of a rotation: everything before it is synced,
            // and the new segment holds only its header, named at `seq`.
            assert!(write.buffer.is_empty() && write.last.is_none());
            assert_eq!(self.current.len, segment::HEADER_BYTES as u64);
            assert_eq!(self.current.name, segment::name(seq));
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
        debug_assert_eq!(last.prev, prev, "the buffered last frame is the last accepted record");
        let (bytes, sum) = frame::encode(true, last.seq, last.system_time, &prev, &last.wire);
        write.buffer.truncate(start);
        write.buffer.extend_from_slice(&bytes);
        last.checksum = sum;
        *checksum = sum;
        let name = &self.current.name;
        let mut result = self.current.file.append(&write.buffer).map_err(io(format!("appending to {name}")));
        if result.is_ok() {
            let started = std::time::Instant::now();
            result = self.current.file.sync().map_err(io(format!("syncing {name}")));
            self.last_batch.syncs += 1;
            self.last_batch.sync_time += started.elapsed();
        }
        if let Err(error) = result {
            self.poisoned = Some(error.to_string());
            return Err(error);
        }
        self.last_batch.records += write.starts.len() as u64;
        self.last_batch.bytes += write.buffer.len() as u64;
        self.index(&write.starts);
        self.current.len += write.buffer.len() as u64;
        write.buffer.clear();
        write.starts.clear();
        Ok(())
    }

    /// Adds the frames of a synced write to the current segment's index. The
    /// index is derived and checked on use; after a failure it is left
    /// short (readers scan past its end) rather than shifted.
    fn index(&mut self, starts: &[u64]) {
        if self.current.index_broken {
            return;
        }
        let entries: Vec<u8> = starts.iter().flat_map(|start| (self.current.len + start).to_be_bytes()).collect();
        if self.storage.append_index(&self.current.name, &entries).is_err() {
            self.current.index_broken = true;
        }
    }

    /// What the last [`Log::append_batch`] wrote and how long its syncs took.
    pub fn last_batch(&self) -> BatchStats {
        self.last_batch
    }

    /// Records in the log.
    pub fn size(&self) -> u64 {
        self.chain.next_seq()
    }
    /// The Merkle tree over all durable records (a read lock: hold it briefly).
    pub fn tree(&self) -> RwLockReadGuard<'_, Tree> {
        read_lock(&self.tree)
    }
    /// The tree, shared: readers on other threads see each durable record.
    pub fn shared_tree(&self) -> SharedTree {
        self.tree.clone()
    }
    /// The validation state as of the end of the log.
    pub fn state(&self) -> &State {
        &self.state
    }
    /// Writes everything applied since the last flush to the index, as on
    /// a clean stop, so that the next open replays no record for it (a
    /// crash leaves at most `INDEX_FLUSH_RECORDS` to replay). Every record
    /// applied is durable once its batch returned; a poisoned log is refused.
    pub fn flush_index(&mut self) -> Result<(), LogError> {
        if let Some(reason) = &self.poisoned {
            return Err(LogError::Poisoned(reason.clone()));
        }
        self.state.flush(self.chain.next_seq(), self.chain.last_checksum(), 1)
    }
    /// Whether a write failure has poisoned the log.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }
    /// Why the log refuses writes, if it does.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }
}

/// Locks ignore poisoning: a panic elsewhere does not make the tree wrong,
/// since it is only ever extended by whole, durable records.
pub(crate) fn read_lock(tree: &SharedTree) -> RwLockReadGuard<'_, Tree> {
    tree.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write_lock(tree: &SharedTree) -> std::sync::RwLockWriteGuard<'_, Tree> {
    tree.write().unwrap_or_else(PoisonError::into_inner)
}
