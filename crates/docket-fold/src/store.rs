//! The projections materialised in redb (`DIR/views.redb`).
//!
//! Tables:
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `format`, `root`, `position` | format version; registry root; next seq and the checksum of the frame before it |
//! | `cases` | case id (the seq of the event that opened it) | the case's facts (postcard [`CaseState`]) |
//! | `case_ids` | subject, list, number (postcard, concatenated) | case id |
//! | `by_list` | list (postcard), case id (u64 be) | empty |
//! | `by_applier` | agency (postcard), case id (u64 be) | empty: cases on which the agency applied a measure |
//! | `registry_events` | seq | system time (i64 be) and the wire form of a registry event |
//! | `registry_snapshots` | seq | system time and the registry after that event (postcard) |
//!
//! Cases are keyed by opening seq so that a fold appends new cases at the
//! end of the largest table instead of rewriting random pages of it (redb is
//! copy-on-write); only the small `case_ids` rows land at random places.
//!
//! Each catch-up batch writes the cases it touched, their indexes, the
//! registry events, any snapshot and the new position in one transaction,
//! so the views and their watermark never disagree. On open the position's
//! checksum is compared with the log's frame at that seq: a store built from
//! another log, or from a log that has since changed, is rebuilt, not trusted.
//!
//! Memory during a fold is one batch of touched cases plus redb's cache,
//! whatever the history length. Cases are bitemporal (`case.rs`), so an
//! as-of query reads the cases it needs and filters their facts; only the
//! registry is folded, from the nearest snapshot.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use redb::{Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use docket_log::ledger::{self, Paths};
use docket_log::Reader;
use docket_model::{AgencyId, Body, ListId, PublicKey, Registry, SignedEvent, Signer, SubjectId, Timestamp};

use crate::case::{CaseState, Fact, Known, Step};
use crate::fold::apply_registry;
use crate::seal::{self, Sealed};
use crate::views::{Publication, Source};
use crate::FoldError;

/// Version of the store's layout. A store of another version is rebuilt.
pub const STORE_FORMAT: u32 = 3;
/// File name of the store inside a ledger directory.
pub const STORE_FILE: &str = "views.redb";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CASES: TableDefinition<u64, &[u8]> = TableDefinition::new("cases");
const CASE_IDS: TableDefinition<&[u8], u64> = TableDefinition::new("case_ids");
const BY_LIST: TableDefinition<&[u8], &[u8]> = TableDefinition::new("by_list");
const BY_APPLIER: TableDefinition<&[u8], &[u8]> = TableDefinition::new("by_applier");
const REGISTRY_EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("registry_events");
const REGISTRY_SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("registry_snapshots");

/// Limits and tuning of the store.
#[derive(Debug, Clone)]
pub struct StoreLimits {
    /// Records folded per transaction during catch-up.
    pub batch_events: usize,
    /// A registry snapshot is written every this many registry events, so
    /// the registry as of any point folds at most this many events.
    pub registry_snapshot_events: u64,
    /// redb's page cache.
    pub cache_bytes: usize,
    /// Threads decoding records during catch-up, beside the one folding them.
    pub decode_threads: usize,
    /// Whether each catch-up ends with a durable (fsynced) commit. A server
    /// catching up after every append turns this off and calls
    /// [`Store::sync`] on an interval: the store is a cache of the log, and
    /// on open it is checked against the log and caught up anyway.
    pub durable_catch_up: bool,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            batch_events: 128 * 1024,
            registry_snapshot_events: 64,
            cache_bytes: 64 * 1024 * 1024,
            decode_threads: std::thread::available_parallelism().map_or(1, usize::from),
            durable_catch_up: true,
        }
    }
}

/// What opening the store did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opened {
    /// Why the store was rebuilt from the log, if it was.
    pub rebuilt: Option<String>,
    /// Records folded to catch up.
    pub folded: u64,
    /// Records in the store now.
    pub records: u64,
}

/// The materialised projections of one ledger.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    db: Sealed,
    reader: Reader,
    root: PublicKey,
    limits: StoreLimits,
    /// What is folded, published after each catch-up's last commit. Reads
    /// take it briefly; they never wait for a catch-up (redb readers see the
    /// last commit while a write runs).
    progress: Mutex<Progress>,
    /// One catch-up at a time.
    catching_up: Mutex<()>,
    /// The publicity maxima the public list applies (none until
    /// [`Store::set_publication`]).
    publication: Publication,
}

/// Opens the store's file: redb's full integrity check runs unless the file
/// was sealed by a clean close and not changed since (`seal.rs`).
fn open_db(path: &Path, cache_bytes: usize) -> Result<Sealed, redb::DatabaseError> {
    seal::open(path, cache_bytes).map(|(db, _)| db)
}

/// How far the store has folded.
#[derive(Debug, Clone)]
struct Progress {
    /// Current registry and how many registry events it has.
    registry: Arc<Registry>,
    registry_events: u64,
    next_seq: u64,
    last_checksum: [u8; 32],
}

fn store_error(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> FoldError + '_ {
    move |e| FoldError::Store { path: path.display().to_string(), reason: e.to_string() }
}

macro_rules! tried {
    ($path:expr, $e:expr) => {
        $e.map_err(|e| store_error($path)(&e))?
    };
}

/// The key of a case in `cases`: subject, list and number, each postcard
/// encoded (length-prefixed), so that one subject's cases are one key range.
pub fn case_key(subject: &SubjectId, list: &ListId, number: &docket_model::CaseNumber) -> Vec<u8> {
    let mut key = subject_prefix(subject);
    key.extend(postcard_bytes(list));
    key.extend(postcard_bytes(number));
    key
}

fn postcard_bytes<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_else(|_| unreachable!("in-memory values encode"))
}

fn subject_prefix(subject: &SubjectId) -> Vec<u8> {
    postcard_bytes(subject)
}

fn prefixed(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(rest);
    key
}

/// The smallest key greater than every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn timed(time: Timestamp, bytes: &[u8]) -> Vec<u8> {
    prefixed(&time.micros().to_be_bytes(), bytes)
}

fn untimed(path: &Path, bytes: &[u8]) -> Result<(Timestamp, Vec<u8>), FoldError> {
    let bad = || store_error(path)(&"short timed value");
    let (time, rest) = bytes.split_first_chunk::<8>().ok_or_else(bad)?;
    let time = Timestamp::from_micros(i64::from_be_bytes(*time)).map_err(|e| store_error(path)(&e))?;
    Ok((time, rest.to_vec()))
}

impl Store {
    /// Opens the store of the ledger in `dir`, rebuilding it if it does not
    /// match the log, and folds the records it has not seen.
    pub fn open(dir: &Path, limits: StoreLimits) -> Result<(Self, Opened), FoldError> {
        Self::open_at(dir, &dir.join(STORE_FILE), limits)
    }

    /// As [`Store::open`], with the store in a file of the caller's: a
    /// private store, folded from the log, for a reader that must not touch
    /// the ledger directory while another process owns it.
    pub fn open_at(dir: &Path, path: &Path, limits: StoreLimits) -> Result<(Self, Opened), FoldError> {
        let (_, root, _) = ledger::read_config(dir).map_err(|e| FoldError::Ledger(e.to_string()))?;
        let path = path.to_owned();
        let reader = Reader::new(Paths { dir: dir.to_owned() }.segments());
        let mut opened = Opened::default();
        let store = match Self::open_file(&path, reader.clone(), root, limits.clone()) {
            Ok(store) => match store.trust()? {
                None => store,
                Some(reason) => {
                    drop(store);
                    opened.rebuilt = Some(reason);
                    let store = Self::build(dir, &path, reader, root, limits.clone())?;
                    opened.folded = store.records();
                    store
                }
            },
            Err(reason) => {
                if path.exists() {
                    opened.rebuilt = Some(reason.to_string());
                }
                let store = Self::build(dir, &path, reader, root, limits.clone())?;
                opened.folded = store.records();
                store
            }
        };
        opened.folded += store.catch_up()?;
        opened.records = store.records();
        Ok((store, opened))
    }

    /// Rebuilds the store of the ledger in `dir` from the log into a shadow
    /// file, then swaps it in. Readers of the old file are not disturbed.
    pub fn rebuild(dir: &Path, limits: StoreLimits) -> Result<(Self, Opened), FoldError> {
        let (_, root, _) = ledger::read_config(dir).map_err(|e| FoldError::Ledger(e.to_string()))?;
        let path = dir.join(STORE_FILE);
        let reader = Reader::new(Paths { dir: dir.to_owned() }.segments());
        let store = Self::build(dir, &path, reader, root, limits)?;
        let records = store.records();
        Ok((store, Opened { rebuilt: Some("asked to rebuild".into()), folded: records, records }))
    }

    fn build(dir: &Path, path: &Path, reader: Reader, root: PublicKey, limits: StoreLimits) -> Result<Self, FoldError> {
        let shadow = path.with_extension("redb.rebuild");
        if shadow.exists() {
            tried!(&shadow, std::fs::remove_file(&shadow));
        }
        let store = Self::create_file(&shadow, reader.clone(), root, limits.clone())?;
        store.catch_up()?;
        drop(store);
        // Its seal goes with it (the same file: same inode, length, time), so
        // opening what was just built skips the full check.
        let _ = std::fs::remove_file(seal::seal_path(path));
        tried!(path, std::fs::rename(&shadow, path));
        if seal::seal_path(&shadow).exists() {
            tried!(path, std::fs::rename(seal::seal_path(&shadow), seal::seal_path(path)));
        }
        tried!(path, docket_log::sync_dir(path.parent().unwrap_or(dir)));
        Self::open_file(path, reader, root, limits).map_err(|e| store_error(path)(&e))
    }

    fn create_file(path: &Path, reader: Reader, root: PublicKey, limits: StoreLimits) -> Result<Self, FoldError> {
        let db = tried!(path, open_db(path, limits.cache_bytes));
        let txn = tried!(path, db.begin_write());
        {
            let mut meta = tried!(path, txn.open_table(META));
            tried!(path, meta.insert("format", STORE_FORMAT.to_be_bytes().as_slice()));
            tried!(path, meta.insert("root", root.0.as_slice()));
            let position = [0u8; 40];
            tried!(path, meta.insert("position", position.as_slice()));
            tried!(path, txn.open_table(CASES));
            tried!(path, txn.open_table(CASE_IDS));
            for table in [BY_LIST, BY_APPLIER] {
                tried!(path, txn.open_table(table));
            }
            tried!(path, txn.open_table(REGISTRY_EVENTS));
            tried!(path, txn.open_table(REGISTRY_SNAPSHOTS));
        }
        tried!(path, txn.commit());
        drop(db);
        Self::open_file(path, reader, root, limits).map_err(|e| store_error(path)(&e))
    }

    /// Opens an existing store file; an error says why it cannot be used.
    fn open_file(path: &Path, reader: Reader, root: PublicKey, limits: StoreLimits) -> Result<Self, String> {
        if !path.exists() {
            return Err("no store yet".into());
        }
        let db = open_db(path, limits.cache_bytes).map_err(|e| e.to_string())?;
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let meta = txn.open_table(META).map_err(|e| e.to_string())?;
        let get = |name: &str| -> Result<Vec<u8>, String> {
            Ok(meta.get(name).map_err(|e| e.to_string())?.ok_or(format!("no {name} in meta"))?.value().to_vec())
        };
        let format = get("format")?;
        if format != STORE_FORMAT.to_be_bytes() {
            return Err(format!("store format {format:?} is not {STORE_FORMAT}"));
        }
        if get("root")? != root.0 {
            return Err("store was built for another registry root".into());
        }
        drop((meta, txn));
        let empty = Progress {
            registry: Arc::new(Registry::new(root)),
            registry_events: 0,
            next_seq: 0,
            last_checksum: [0; 32],
        };
        let store = Self {
            path: path.to_owned(),
            db,
            reader,
            root,
            limits,
            progress: Mutex::new(empty),
            catching_up: Mutex::new(()),
            publication: Publication::none(),
        };
        let progress = store.progress_from_db().map_err(|e| e.to_string())?;
        *store.lock_progress() = progress;
        Ok(store)
    }

    /// Why the store cannot be trusted against the log, if it cannot.
    fn trust(&self) -> Result<Option<String>, FoldError> {
        let progress = self.lock_progress().clone();
        let (next_seq, last_checksum) = (progress.next_seq, progress.last_checksum);
        if next_seq == 0 {
            return Ok(None);
        }
        match self.reader.checksum_of(next_seq - 1)? {
            None => Ok(Some(format!(
                "the store has {next_seq} records but the log has fewer: the log is not the one it was built from"
            ))),
            Some(checksum) if checksum != last_checksum => {
                Ok(Some(format!("the log's record {} differs from the one the store was built from", next_seq - 1)))
            }
            Some(_) => Ok(None),
        }
    }

    fn lock_progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        // The progress is replaced whole, never left half-written: a panic elsewhere cannot poison its meaning.
        self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records folded into the store.
    pub fn records(&self) -> u64 {
        self.lock_progress().next_seq
    }

    /// The path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current registry.
    pub fn current_registry(&self) -> Arc<Registry> {
        self.lock_progress().registry.clone()
    }

    /// System time of the record at `seq`, read from the log.
    pub fn time_of(&self, seq: u64) -> Result<Option<Timestamp>, FoldError> {
        let mut found = None;
        self.reader.read_from(seq, None, |frame| {
            found = Timestamp::from_micros(frame.system_time).ok();
            ControlFlow::Break(())
        })?;
        Ok(found)
    }

    /// What the records in `[from, to)` changed: the ids of the cases they
    /// touched, and whether any of them was a registry event. Read from the
    /// log (the store keeps no history of its writes), so it costs a read of
    /// those records; `to` must be at most [`Store::records`].
    ///
    /// A reader that computed something from the store through `from`
    /// recomputes only these cases to have it through `to`, unless the
    /// registry changed (then every case may read differently).
    pub fn changes(&self, from: u64, to: u64) -> Result<Changes, FoldError> {
        let records = self.records();
        if from > to || to > records {
            let reason = format!("changes in [{from}, {to}) asked of a store of {records} records");
            return Err(FoldError::Inconsistent { seq: to, reason });
        }
        let mut changes = Changes::default();
        let mut keys = BTreeSet::new();
        let mut failed = None;
        if from < to {
            self.reader.read_from(from, None, |frame| {
                if frame.seq >= to {
                    return ControlFlow::Break(());
                }
                match prepare(frame) {
                    Ok(Prepared { what: What::Case { key, .. }, .. }) => {
                        keys.insert(key);
                    }
                    Ok(Prepared { what: What::Registry { .. }, .. }) => changes.registry = true,
                    Err(error) => {
                        failed = Some(error);
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            })?;
        }
        if let Some(error) = failed {
            return Err(error);
        }
        let path = self.path.as_path();
        let txn = tried!(path, self.db.begin_read());
        let ids = tried!(path, txn.open_table(CASE_IDS));
        for key in keys {
            match tried!(path, ids.get(key.as_slice())) {
                Some(id) => changes.cases.insert(id.value()),
                None => return Err(store_error(path)(&"a case the log names below the watermark is not stored")),
            };
        }
        Ok(changes)
    }

    /// Visits the cases with the given ids (each with its id), in id order.
    pub fn for_ids(&self, ids: &BTreeSet<u64>, visit: &mut dyn FnMut(u64, CaseState)) -> Result<(), FoldError> {
        let path = self.path.as_path();
        let txn = tried!(path, self.db.begin_read());
        let cases = tried!(path, txn.open_table(CASES));
        for &id in ids {
            let Some(guard) = tried!(path, cases.get(id)) else {
                return Err(store_error(path)(&format!("case id {id} is not stored")));
            };
            visit(id, tried!(path, postcard::from_bytes::<CaseState>(guard.value())));
        }
        Ok(())
    }

    /// As [`Source::for_list`], with each case's id (the seq of the record that opened it).
    pub fn for_list_ids(&self, list: &ListId, visit: &mut dyn FnMut(u64, CaseState)) -> Result<(), FoldError> {
        self.scan(Index::ByList, &postcard_bytes(list), visit)
    }

    /// As [`Source::for_applier`], with each case's id.
    pub fn for_applier_ids(&self, agency: &AgencyId, visit: &mut dyn FnMut(u64, CaseState)) -> Result<(), FoldError> {
        self.scan(Index::ByApplier, &postcard_bytes(agency), visit)
    }

    /// Folds every record the store has not seen. Returns how many.
    ///
    /// Two threads: one reads, decodes and prepares records (case keys,
    /// facts), the other folds them into redb, one transaction per
    /// `batch_events` records.
    ///
    /// Takes `&self`: reads go on meanwhile against the last commit, and see
    /// the new records once the catch-up publishes its progress.
    pub fn catch_up(&self) -> Result<u64, FoldError> {
        self.catch_up_to(u64::MAX)
    }

    /// As [`Store::catch_up`], folding only records before seq `end`: a
    /// server folds what it has acknowledged, never a write whose sync may
    /// still fail (and be cut by the writer's recovery).
    pub fn catch_up_to(&self, end: u64) -> Result<u64, FoldError> {
        let _exclusive = self.catching_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut progress = self.lock_progress().clone();
        let start = progress.next_seq;
        let reader = self.reader.clone();
        let prev = (start > 0).then_some(progress.last_checksum);
        let workers = self.limits.decode_threads.max(1);
        let (inputs, outputs): (Vec<_>, Vec<_>) = (0..workers)
            .map(|_| {
                let (frames_in, frames_out) = std::sync::mpsc::sync_channel::<Chunk<docket_log::Frame>>(2);
                let (prepared_in, prepared_out) = std::sync::mpsc::sync_channel::<Chunk<Prepared>>(2);
                ((frames_in, frames_out, prepared_in), prepared_out)
            })
            .unzip();
        let folded = std::thread::scope(|scope| {
            let mut senders = vec![];
            for (frames_in, frames_out, prepared_in) in inputs {
                senders.push(frames_in);
                scope.spawn(move || prepare_chunks(&frames_out, &prepared_in));
            }
            scope.spawn(move || read_chunks(&reader, start, prev, end, &senders));
            self.fold_chunks(&mut progress, &outputs)
        });
        let folded = match folded {
            Ok(folded) => {
                *self.lock_progress() = progress;
                folded
            }
            Err(error) => {
                // Batches before the failure may have committed: publish what the file holds.
                if let Ok(committed) = self.progress_from_db() {
                    *self.lock_progress() = committed;
                }
                return Err(error);
            }
        };
        if folded > 0 && self.limits.durable_catch_up {
            self.sync()?;
        }
        Ok(folded)
    }

    /// The folding thread of a catch-up: takes prepared chunks back from the
    /// workers in the turn they were sent, folds them into `progress`, and
    /// commits every `batch_events` records and at the end. Returns how many
    /// records it folded.
    fn fold_chunks(&self, progress: &mut Progress, outputs: &[Receiver<Chunk<Prepared>>]) -> Result<u64, FoldError> {
        let mut folded = 0u64;
        let mut batch = Batch::default();
        for turn in 0.. {
            let Ok(chunk) = outputs[turn % outputs.len()].recv() else { break };
            for record in chunk? {
                self.fold_record(progress, &mut batch, record)?;
                folded += 1;
                if batch.records >= self.limits.batch_events.max(1) {
                    self.commit(progress, std::mem::take(&mut batch))?;
                }
            }
        }
        self.commit(progress, batch)?;
        Ok(folded)
    }

    /// Makes every commit so far durable (batches commit without fsync).
    pub fn sync(&self) -> Result<(), FoldError> {
        let txn = tried!(&self.path, self.db.begin_write());
        tried!(&self.path, txn.commit());
        Ok(())
    }

    /// The progress as committed in the file: the position, and the current
    /// registry (the newest snapshot plus the registry events after it).
    fn progress_from_db(&self) -> Result<Progress, FoldError> {
        let path = self.path.as_path();
        let txn = tried!(path, self.db.begin_read());
        let meta = tried!(path, txn.open_table(META));
        let position = tried!(path, meta.get("position"))
            .map(|v| v.value().to_vec())
            .ok_or_else(|| store_error(path)(&"no position in meta"))?;
        let (next, checksum) = position.split_first_chunk::<8>().ok_or_else(|| store_error(path)(&"short position"))?;
        let last_checksum: [u8; 32] = checksum.try_into().map_err(|_| store_error(path)(&"short position checksum"))?;
        let registry_events = tried!(path, tried!(path, txn.open_table(REGISTRY_EVENTS)).len());
        drop((meta, txn));
        let registry = self.registry_through(u64::MAX)?;
        Ok(Progress { registry, registry_events, next_seq: u64::from_be_bytes(*next), last_checksum })
    }

    /// Adds one record to the batch; registry events apply at once.
    fn fold_record(&self, progress: &mut Progress, batch: &mut Batch, record: Prepared) -> Result<(), FoldError> {
        let (seq, checksum) = (record.seq, record.checksum);
        if seq != progress.next_seq {
            return Err(FoldError::Inconsistent { seq, reason: format!("expected seq {}", progress.next_seq) });
        }
        match record.what {
            What::Registry { system_time, event } => {
                apply_registry(Arc::make_mut(&mut progress.registry), seq, system_time, &event)?;
                batch.registry_events.push((seq, timed(system_time, &event.to_wire())));
                progress.registry_events += 1;
                if progress.registry_events.is_multiple_of(self.limits.registry_snapshot_events.max(1)) {
                    batch.snapshots.push((seq, timed(system_time, &postcard_bytes(&*progress.registry))));
                }
            }
            What::Case { key, case, fact, applier } => {
                let id = match batch.touched.get_mut(&key) {
                    Some(entry) => {
                        entry.state.facts.push(fact);
                        entry.id
                    }
                    None => {
                        // A new case takes the seq of the event that opens it as its id.
                        let (id, mut state, new) = match self.load_case(&mut batch.read, &key)? {
                            Some((id, state)) => (id, state, false),
                            None => (seq, case, true),
                        };
                        state.facts.push(fact);
                        batch.touched.insert(key, Touched { id, state, new });
                        id
                    }
                };
                if let Some(agency) = applier {
                    batch.appliers.push(prefixed(&agency, &id.to_be_bytes()));
                }
            }
        }
        batch.records += 1;
        progress.next_seq = seq + 1;
        progress.last_checksum = checksum;
        Ok(())
    }

    /// A stored case and its id, read through one read transaction per batch
    /// (it sees every earlier batch; this batch's changes are in `touched`).
    fn load_case(&self, read: &mut Option<ReadTables>, key: &[u8]) -> Result<Option<(u64, CaseState)>, FoldError> {
        let path = self.path.as_path();
        if read.is_none() {
            let txn = tried!(path, self.db.begin_read());
            *read = Some((tried!(path, txn.open_table(CASE_IDS)), tried!(path, txn.open_table(CASES))));
        }
        let Some((ids, cases)) = read.as_ref() else { unreachable!("opened above") };
        let Some(id) = tried!(path, ids.get(key)).map(|guard| guard.value()) else { return Ok(None) };
        match tried!(path, cases.get(id)) {
            Some(guard) => Ok(Some((id, tried!(path, postcard::from_bytes::<CaseState>(guard.value()))))),
            None => Err(store_error(path)(&format!("case id {id} is indexed but not stored"))),
        }
    }

    /// Writes a batch and the new position in one transaction.
    fn commit(&self, progress: &Progress, batch: Batch) -> Result<(), FoldError> {
        if batch.records == 0 {
            return Ok(());
        }
        let path = self.path.clone();
        let path = path.as_path();
        let mut txn = tried!(path, self.db.begin_write());
        tried!(path, txn.set_durability(Durability::None));
        {
            let mut cases = tried!(path, txn.open_table(CASES));
            let mut case_ids = tried!(path, txn.open_table(CASE_IDS));
            let mut by_list = tried!(path, txn.open_table(BY_LIST));
            let mut by_applier = tried!(path, txn.open_table(BY_APPLIER));
            let mut registry_events = tried!(path, txn.open_table(REGISTRY_EVENTS));
            let mut snapshots = tried!(path, txn.open_table(REGISTRY_SNAPSHOTS));
            for (seq, value) in &batch.registry_events {
                tried!(path, registry_events.insert(*seq, value.as_slice()));
            }
            for (seq, value) in &batch.snapshots {
                tried!(path, snapshots.insert(*seq, value.as_slice()));
            }
            // Case ids are opening seqs: new cases append at the end of
            // `cases`, and the random-keyed index rows are small.
            let mut touched: Vec<(Vec<u8>, Touched)> = batch.touched.into_iter().collect();
            touched.sort_unstable_by_key(|(_, t)| t.id);
            let mut encoded = Vec::new();
            let mut new_keys = Vec::new();
            for (key, touched) in &touched {
                encoded.clear();
                let bytes = postcard::to_extend(&touched.state, std::mem::take(&mut encoded))
                    .map_err(|e| store_error(path)(&e))?;
                tried!(path, cases.insert(touched.id, bytes.as_slice()));
                encoded = bytes;
                if touched.new {
                    let list_key = prefixed(&postcard_bytes(&touched.state.list), &touched.id.to_be_bytes());
                    tried!(path, by_list.insert(list_key.as_slice(), [].as_slice()));
                    new_keys.push((key, touched.id));
                }
            }
            new_keys.sort_unstable();
            for (key, id) in new_keys {
                tried!(path, case_ids.insert(key.as_slice(), id));
            }
            let mut appliers = batch.appliers;
            appliers.sort_unstable();
            appliers.dedup();
            for key in appliers {
                tried!(path, by_applier.insert(key.as_slice(), [].as_slice()));
            }
            let mut meta = tried!(path, txn.open_table(META));
            let position = prefixed(&progress.next_seq.to_be_bytes(), &progress.last_checksum);
            tried!(path, meta.insert("position", position.as_slice()));
        }
        tried!(path, txn.commit());
        Ok(())
    }

    /// The registry after every registry event with seq <= `last`.
    fn registry_through(&self, last: u64) -> Result<Arc<Registry>, FoldError> {
        let path = self.path.as_path();
        let txn = tried!(path, self.db.begin_read());
        let snapshots = tried!(path, txn.open_table(REGISTRY_SNAPSHOTS));
        let events = tried!(path, txn.open_table(REGISTRY_EVENTS));
        let (mut registry, from) = match tried!(path, snapshots.range(..=last)).next_back() {
            Some(entry) => {
                let (seq, value) = tried!(path, entry);
                let (_, bytes) = untimed(path, value.value())?;
                let registry: Registry = tried!(path, postcard::from_bytes(&bytes));
                (registry, seq.value() + 1)
            }
            None => (Registry::new(self.root), 0),
        };
        if from <= last {
            for entry in tried!(path, events.range(from..=last)) {
                let (seq, value) = tried!(path, entry);
                let (time, wire) = untimed(path, value.value())?;
                let event = tried!(path, SignedEvent::from_wire(&wire));
                apply_registry(&mut registry, seq.value(), time, &event)?;
            }
        }
        Ok(Arc::new(registry))
    }

    /// The last registry event recorded at or before `time`, if any.
    fn registry_seq_at(&self, time: Timestamp) -> Result<Option<u64>, FoldError> {
        let path = self.path.as_path();
        let txn = tried!(path, self.db.begin_read());
        let events = tried!(path, txn.open_table(REGISTRY_EVENTS));
        let mut found = None;
        for entry in tried!(path, events.iter()) {
            let (seq, value) = tried!(path, entry);
            let (recorded, _) = untimed(path, value.value())?;
            if recorded > time {
                break;
            }
            found = Some(seq.value());
        }
        Ok(found)
    }

    /// Visits the cases an index names under `prefix`, in case id (opening) order.
    fn scan(&self, index: Index, prefix: &[u8], visit: &mut dyn FnMut(u64, CaseState)) -> Result<(), FoldError> {
        let path = self.path.as_path();
        let txn = tried!(path, self.db.begin_read());
        let end = prefix_end(prefix);
        let mut ids: Vec<u64> = vec![];
        if index == Index::Subject {
            let table = tried!(path, txn.open_table(CASE_IDS));
            let range = match &end {
                Some(end) => tried!(path, table.range(prefix..end.as_slice())),
                None => tried!(path, table.range(prefix..)),
            };
            for entry in range {
                ids.push(tried!(path, entry).1.value());
            }
            ids.sort_unstable();
        } else {
            let table = tried!(path, txn.open_table(if index == Index::ByList { BY_LIST } else { BY_APPLIER }));
            let range = match &end {
                Some(end) => tried!(path, table.range(prefix..end.as_slice())),
                None => tried!(path, table.range(prefix..)),
            };
            for entry in range {
                let (key, _) = tried!(path, entry);
                let suffix = key.value().get(prefix.len()..).and_then(|s| <[u8; 8]>::try_from(s).ok());
                let Some(id) = suffix else { return Err(store_error(path)(&"malformed index key")) };
                ids.push(u64::from_be_bytes(id));
            }
        }
        let cases = tried!(path, txn.open_table(CASES));
        for id in ids {
            let Some(guard) = tried!(path, cases.get(id)) else {
                return Err(store_error(path)(&format!("an index names case id {id}, which is not stored")));
            };
            visit(id, tried!(path, postcard::from_bytes::<CaseState>(guard.value())));
        }
        Ok(())
    }

    /// Every stored table, decoded, in key order: for comparing two stores.
    pub fn dump(&self) -> Result<String, FoldError> {
        let path = self.path.as_path();
        let txn = tried!(path, self.db.begin_read());
        let mut out = String::new();
        let meta = tried!(path, txn.open_table(META));
        for entry in tried!(path, meta.iter()) {
            let (key, value) = tried!(path, entry);
            out.push_str(&format!("meta {} {}\n", key.value(), hex(value.value())));
        }
        let cases = tried!(path, txn.open_table(CASES));
        for entry in tried!(path, cases.iter()) {
            let (key, value) = tried!(path, entry);
            out.push_str(&format!("c {} {}\n", key.value(), hex(value.value())));
        }
        let ids = tried!(path, txn.open_table(CASE_IDS));
        for entry in tried!(path, ids.iter()) {
            let (key, value) = tried!(path, entry);
            out.push_str(&format!("i {} {}\n", hex(key.value()), value.value()));
        }
        for table in [BY_LIST, BY_APPLIER] {
            let table = tried!(path, txn.open_table(table));
            for entry in tried!(path, table.iter()) {
                let (key, value) = tried!(path, entry);
                out.push_str(&format!("{} {} {}\n", "t", hex(key.value()), hex(value.value())));
            }
        }
        for table in [REGISTRY_EVENTS, REGISTRY_SNAPSHOTS] {
            let table = tried!(path, txn.open_table(table));
            for entry in tried!(path, table.iter()) {
                let (key, value) = tried!(path, entry);
                out.push_str(&format!("r {} {}\n", key.value(), hex(value.value())));
            }
        }
        Ok(out)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a range of records changed ([`Store::changes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The ids of the cases the records touched (opened or added a fact to).
    pub cases: BTreeSet<u64>,
    /// Whether any record was a registry event.
    pub registry: bool,
}

/// Which table a scan walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Index {
    Subject,
    ByList,
    ByApplier,
}

type ReadTables = (redb::ReadOnlyTable<&'static [u8], u64>, redb::ReadOnlyTable<u64, &'static [u8]>);

/// A case changed in the current batch.
struct Touched {
    id: u64,
    state: CaseState,
    /// Not stored yet: its index rows are written with it.
    new: bool,
}

/// Records per message from the preparing thread to the folding one.
const PREPARE_CHUNK: usize = 1024;

/// Records passed between catch-up threads, or the error that ended the read.
type Chunk<T> = Result<Vec<T>, FoldError>;

/// The reading thread of a catch-up: reads committed frames from `start`
/// (before seq `end`) and sends them in chunks of `PREPARE_CHUNK` to the
/// workers in turn; the last chunk carries the read's error, if any. Stops
/// early if a worker has gone.
fn read_chunks(
    reader: &Reader,
    start: u64,
    prev: Option<[u8; 32]>,
    end: u64,
    senders: &[SyncSender<Chunk<docket_log::Frame>>],
) {
    let mut chunk = Vec::with_capacity(PREPARE_CHUNK);
    let mut sent = 0usize;
    let read = reader.read_from(start, prev, |frame| {
        if frame.seq >= end {
            return ControlFlow::Break(());
        }
        chunk.push(frame.clone());
        if chunk.len() >= PREPARE_CHUNK {
            if senders[sent % senders.len()].send(Ok(std::mem::take(&mut chunk))).is_err() {
                return ControlFlow::Break(());
            }
            sent += 1;
        }
        ControlFlow::Continue(())
    });
    let last = read.map(|_| chunk).map_err(FoldError::from);
    let _ = senders[sent % senders.len()].send(last);
}

/// A decoding thread of a catch-up: prepares each chunk of frames it
/// receives and sends it on, until its input closes, its output is gone, or
/// a chunk fails (the failure is sent first).
fn prepare_chunks(frames: &Receiver<Chunk<docket_log::Frame>>, prepared: &SyncSender<Chunk<Prepared>>) {
    while let Ok(chunk) = frames.recv() {
        let chunk = chunk.and_then(|frames| frames.iter().map(prepare).collect());
        let failed = chunk.is_err();
        if prepared.send(chunk).is_err() || failed {
            return;
        }
    }
}

/// A record decoded and prepared for the fold.
struct Prepared {
    seq: u64,
    checksum: [u8; 32],
    what: What,
}

#[allow(clippy::large_enum_variant)]
enum What {
    Registry {
        system_time: Timestamp,
        event: SignedEvent,
    },
    Case {
        key: Vec<u8>,
        /// An empty case, used if the store has none yet.
        case: CaseState,
        fact: Fact,
        /// The applying agency (encoded) of a measure applied.
        applier: Option<Vec<u8>>,
    },
}

/// What one catch-up transaction writes.
#[derive(Default)]
struct Batch {
    records: usize,
    read: Option<ReadTables>,
    touched: HashMap<Vec<u8>, Touched>,
    appliers: Vec<Vec<u8>>,
    registry_events: Vec<(u64, Vec<u8>)>,
    snapshots: Vec<(u64, Vec<u8>)>,
}

fn prepare(frame: &docket_log::Frame) -> Result<Prepared, FoldError> {
    let inconsistent = |reason: String| FoldError::Inconsistent { seq: frame.seq, reason };
    let signed =
        SignedEvent::from_wire(&frame.wire).map_err(|e| inconsistent(format!("event does not decode: {e}")))?;
    let system_time = Timestamp::from_micros(frame.system_time).map_err(|e| inconsistent(e.to_string()))?;
    let id = signed.id();
    let what = if signed.event().case().is_none() {
        What::Registry { system_time, event: signed }
    } else {
        let event = signed.into_event();
        let (Body::Case(case), Signer::Agency(agency)) = (event.body, event.signer) else {
            return Err(inconsistent("a case event signed by the registry root".into()));
        };
        let step = Step::of(&case.action);
        let mut key =
            postcard::to_extend(&case.subject, Vec::with_capacity(64)).map_err(|e| inconsistent(e.to_string()))?;
        key = postcard::to_extend(&case.list, key).map_err(|e| inconsistent(e.to_string()))?;
        key = postcard::to_extend(&case.number, key).map_err(|e| inconsistent(e.to_string()))?;
        let applier = matches!(step, Step::MeasureApplied { .. }).then(|| postcard_bytes(&agency));
        let fact =
            Fact { seq: frame.seq, id, recorded_at: system_time, effective_at: event.effective_at, agency, step };
        let case = CaseState { list: case.list, subject: case.subject, number: case.number, facts: Vec::new() };
        What::Case { key, case, fact, applier }
    };
    Ok(Prepared { seq: frame.seq, checksum: frame.checksum, what })
}

impl Store {
    /// The publicity maxima the public list and its delta apply, from the
    /// rule set documents the reader has (`docket_audit::RuleSet::publication`).
    pub fn set_publication(&mut self, publication: Publication) {
        self.publication = publication;
    }
}

impl Source for Store {
    fn registry(&self, known: Known) -> Result<Arc<Registry>, FoldError> {
        let last = match known {
            Known::All => return Ok(self.current_registry()),
            Known::Through(seq) => seq,
            Known::At(time) => match self.registry_seq_at(time)? {
                Some(seq) => seq,
                None => return Ok(Arc::new(Registry::new(self.root))),
            },
        };
        let path = self.path.as_path();
        let txn = tried!(path, self.db.begin_read());
        let events = tried!(path, txn.open_table(REGISTRY_EVENTS));
        // No registry event after `last`, and the published registry covers
        // `last`: the current registry is the answer.
        let later = tried!(path, events.range(last.saturating_add(1)..)).next().is_some();
        drop((events, txn));
        let progress = self.lock_progress();
        if !later && progress.next_seq > last {
            return Ok(progress.registry.clone());
        }
        drop(progress);
        self.registry_through(last)
    }

    fn for_list(&self, list: &ListId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.scan(Index::ByList, &postcard_bytes(list), &mut |_, case| visit(case))
    }

    fn for_subject(&self, subject: &SubjectId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.scan(Index::Subject, &subject_prefix(subject), &mut |_, case| visit(case))
    }

    fn for_applier(&self, agency: &AgencyId, visit: &mut dyn FnMut(CaseState)) -> Result<(), FoldError> {
        self.scan(Index::ByApplier, &postcard_bytes(agency), &mut |_, case| visit(case))
    }

    fn publication(&self) -> &Publication {
        &self.publication
    }
}
