//! The append path's state on disk (`DIR/index.redb`): every event id with
//! its seq and system time (the duplicate check), every case's version, the
//! registry, and the point of the log they cover. Derived from the log and
//! checked against it on open: a ledger opens from this index and the
//! records after the point it covers, not from the whole history; an index
//! that is missing, unreadable, of another format, or that does not match
//! the log is rebuilt from the log.
//!
//! Stored form (`INDEX_FORMAT` 3; golden vectors in
//! `tests/golden/log-stored-forms.json`):
//! * `DIR/index.runs/`: sorted runs (see [`crate::runs`]) of two kinds:
//!   `ids`, key the event id's first 16 bytes ([`id_key`]), value the
//!   record's seq, every entry kept: an id's candidates are the entries of
//!   its key, and the caller confirms a candidate against the record at its
//!   seq (the full id and the system time are in the log), so a shared
//!   prefix can never make a duplicate of a new event; `cases`, key the
//!   first 16 bytes of a domain-separated BLAKE3 hash of the case reference
//!   ([`case_key`]), value the case's version, the largest kept;
//! * `index.redb`, table `meta`: `format` = [`INDEX_FORMAT`] (one byte),
//!   `through` = records covered (u64 BE), `checksum` = the checksum of
//!   frame `through - 1` (32 bytes; zeros when `through` is 0), `registry` =
//!   the registry in postcard, `ids` and `cases` = the live runs' numbers,
//!   oldest first (postcard `Vec<u64>`), `next_run` = the next run number
//!   (u64 BE). A run file that no manifest names (a crash between writing
//!   a run and committing the manifest, or a merge not yet installed) is
//!   removed on open.
//!
//! Format 2 kept ids in a redb B-tree: random keys made each flush copy
//! about a page per id once the table outgrew a flush (issue 17); format
//! 1 also kept variable-width entries. A ledger whose index is of another
//! format rebuilds it from the log on open.
//!
//! A case key is a 128-bit hash, not the reference itself: two references
//! with the same key would share a version. Finding such a pair takes
//! about 2^64 BLAKE3 evaluations, and only an agency authorised for both
//! cases could use it to make an expected-version check fail or pass.

use std::path::{Path, PathBuf};

use docket_model::{CaseRef, EventId, Registry, SignedEvent};

use crate::read::Reader;
use crate::runs::{Keep, Runs};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

/// The stored form's version; another version is rebuilt, never read.
pub const INDEX_FORMAT: u8 = 3;

/// The page cache of `index.redb`, which holds only the point covered, the
/// registry and the manifests: 1 MiB.
pub const INDEX_CACHE_BYTES: usize = 1 << 20;

/// Records applied in memory before they are written to the index: at most
/// this many ids and case versions are held in memory, and an open replays
/// at most this many records (plus those since the last checkpoint).
pub const INDEX_FLUSH_RECORDS: usize = 16_384;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The point of the log an index covers.
#[derive(Debug, Clone)]
pub struct Indexed {
    /// Records covered (seqs `0 .. through`).
    pub through: u64,
    /// Checksum of frame `through - 1`.
    pub checksum: [u8; 32],
    /// The registry after those records.
    pub registry: Registry,
}

/// The index, open.
pub struct Index {
    db: Database,
    path: PathBuf,
    ids: Runs,
    cases: Runs,
    next_run: u64,
    /// The log indexed: a candidate id is confirmed against its record.
    records: Reader,
    /// A scratch index (`verify`'s) syncs only every
    /// [`SCRATCH_SYNC_FLUSHES`] writes and never its runs: nothing is lost
    /// if it is.
    scratch: bool,
    writes: u64,
}

/// Writes between syncs of a scratch index.
pub const SCRATCH_SYNC_FLUSHES: u64 = 8;

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).field("ids", &self.ids).field("cases", &self.cases).finish()
    }
}

/// One id's key: its first 16 bytes, big-endian.
pub fn id_key(id: &EventId) -> u128 {
    let mut prefix = [0; 16];
    prefix.copy_from_slice(&id.0[..16]);
    u128::from_be_bytes(prefix)
}

/// A case's key: the first 16 bytes of the BLAKE3 hash, in the context
/// "docket index case key v1", of its reference in postcard.
pub fn case_key(case: &CaseRef) -> u128 {
    let reference = postcard::to_allocvec(case).unwrap_or_else(|_| unreachable!("a case reference always encodes"));
    let mut hasher = blake3::Hasher::new_derive_key("docket index case key v1");
    hasher.update(&reference);
    let mut key = [0; 16];
    key.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    u128::from_be_bytes(key)
}

fn failed(path: &Path, what: &str) -> impl Fn(&dyn std::fmt::Display) -> String {
    let prefix = format!("index {}: {what}", path.display());
    move |error| format!("{prefix}: {error}")
}

/// The directory of the runs of the index at `path`.
fn runs_dir(path: &Path) -> PathBuf {
    path.with_extension("runs")
}

/// The manifest and the point covered, as stored in `meta`.
struct Meta {
    indexed: Option<Indexed>,
    ids: Vec<u64>,
    cases: Vec<u64>,
    next_run: u64,
}

impl Index {
    /// Opens the index at `path` and the point it covers; `None` when the
    /// file is new, or was unreadable or of another format, or a run it
    /// names is missing or damaged (it is then replaced by an empty one, to
    /// be rebuilt from the log). `records` reads the log it indexes.
    pub fn open(path: &Path, records: Reader) -> Result<(Self, Option<Indexed>), String> {
        if let Ok((index, Some(indexed))) = Self::open_existing(path, records.clone()) {
            return Ok((index, Some(indexed)));
        }
        Ok((Self::create(path, records)?, None))
    }

    fn open_existing(path: &Path, records: Reader) -> Result<(Self, Option<Indexed>), String> {
        let db = Database::builder().set_cache_size(INDEX_CACHE_BYTES).open(path).map_err(|e| e.to_string())?;
        let meta = read_meta(&db, path)?;
        let dir = runs_dir(path);
        remove_orphans(&dir, &[&meta.ids, &meta.cases])?;
        let ids = Runs::open(&dir, "ids", Keep::All, &meta.ids, true)?;
        let cases = Runs::open(&dir, "cases", Keep::Max, &meta.cases, true)?;
        let index =
            Self { db, path: path.to_owned(), ids, cases, next_run: meta.next_run, records, scratch: false, writes: 0 };
        Ok((index, meta.indexed))
    }

    /// This index emptied: the file and its runs are replaced by new ones.
    pub fn recreate(self) -> Result<Self, String> {
        let (path, records, scratch) = (self.path.clone(), self.records.clone(), self.scratch);
        drop(self);
        Self::create_as(&path, records, scratch)
    }

    /// A new, empty index at `path`, replacing any there, of the log
    /// `records` reads.
    pub fn create(path: &Path, records: Reader) -> Result<Self, String> {
        Self::create_as(path, records, false)
    }

    fn create_as(path: &Path, records: Reader, scratch: bool) -> Result<Self, String> {
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(failed(path, "removing")(&error)),
            _ => {}
        }
        let dir = runs_dir(path);
        match std::fs::remove_dir_all(&dir) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(failed(&dir, "removing")(&error)),
            _ => {}
        }
        std::fs::create_dir_all(&dir).map_err(|e| failed(&dir, "creating")(&e))?;
        let db = Database::builder()
            .set_cache_size(INDEX_CACHE_BYTES)
            .create(path)
            .map_err(|e| failed(path, "creating")(&e))?;
        let txn = db.begin_write().map_err(|e| failed(path, "writing")(&e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| failed(path, "writing")(&e))?;
            meta.insert("format", [INDEX_FORMAT].as_slice()).map_err(|e| failed(path, "writing")(&e))?;
        }
        txn.commit().map_err(|e| failed(path, "committing")(&e))?;
        crate::storage::sync_dir(&dir).map_err(|e| failed(&dir, "syncing")(&e))?;
        let ids = Runs::open(&dir, "ids", Keep::All, &[], !scratch)?;
        let cases = Runs::open(&dir, "cases", Keep::Max, &[], !scratch)?;
        Ok(Self { db, path: path.to_owned(), ids, cases, next_run: 0, records, scratch, writes: 0 })
    }

    /// A new scratch index at `path` (see `scratch`), for a check that
    /// builds the state from the first record and throws it away after.
    pub fn scratch(path: &Path, records: Reader) -> Result<Self, String> {
        Self::create_as(path, records, true)
    }

    /// The point covered, if the index holds one of its format.
    pub fn covered(&self) -> Result<Option<Indexed>, String> {
        Ok(read_meta(&self.db, &self.path)?.indexed)
    }

    /// The seq and system time of the indexed record of `id`, if there is
    /// one: each candidate sharing its key is read from the log and its
    /// full id compared (an indexed record is durable, so committed).
    pub fn id(&self, id: &EventId) -> Result<Option<(u64, i64)>, String> {
        for seq in self.id_candidates(id)? {
            let fail = |reason: &dyn std::fmt::Display| {
                format!("index {}: the record at seq {seq}, which it names: {reason}", self.path.display())
            };
            let frame = self.records.frame_at(seq).map_err(|e| fail(&e))?.ok_or_else(|| fail(&"not in the log"))?;
            let event = SignedEvent::from_wire(&frame.wire).map_err(|e| fail(&e))?;
            if event.id() == *id {
                return Ok(Some((seq, frame.system_time)));
            }
        }
        Ok(None)
    }

    /// The seqs of indexed records whose id begins as `id` does: the
    /// record of `id`, if it is indexed, is one of them (almost always the
    /// only one; the caller compares the full id).
    pub fn id_candidates(&self, id: &EventId) -> Result<Vec<u64>, String> {
        self.ids.all(id_key(id))
    }

    /// The indexed version of a case (0 if none).
    pub fn case_version(&self, case: &CaseRef) -> Result<u64, String> {
        Ok(self.cases.newest(case_key(case))?.unwrap_or(0))
    }

    /// Writes what records up to `indexed.through` added as a run of each
    /// kind, installs a finished merge, and commits the manifest and that
    /// point in one durable transaction; then starts the next merge.
    pub fn write<'a>(
        &mut self,
        ids: impl Iterator<Item = (&'a EventId, &'a (u64, i64))>,
        cases: impl Iterator<Item = (&'a CaseRef, &'a u64)>,
        indexed: &Indexed,
    ) -> Result<(), String> {
        let number = self.take_number();
        self.ids.add(ids.map(|(id, (seq, _))| (id_key(id), *seq)).collect(), number)?;
        let number = self.take_number();
        self.cases.add(cases.map(|(case, version)| (case_key(case), *version)).collect(), number)?;
        let mut replaced = self.ids.collect(false)?;
        replaced.extend(self.cases.collect(false)?);
        let dir = runs_dir(&self.path);
        self.writes += 1;
        let durable = !self.scratch || self.writes.is_multiple_of(SCRATCH_SYNC_FLUSHES);
        if !self.scratch {
            crate::storage::sync_dir(&dir).map_err(|e| failed(&dir, "syncing")(&e))?;
        }
        self.commit(indexed, durable)?;
        for path in replaced {
            let _ = std::fs::remove_file(path);
        }
        let number = self.next_run;
        if self.ids.start_merge(number) {
            self.next_run += 1;
        }
        let number = self.next_run;
        if self.cases.start_merge(number) {
            self.next_run += 1;
        }
        Ok(())
    }

    fn take_number(&mut self) -> u64 {
        self.next_run += 1;
        self.next_run - 1
    }

    fn commit(&mut self, indexed: &Indexed, durable: bool) -> Result<(), String> {
        let fail = failed(&self.path, "writing");
        let mut txn = self.db.begin_write().map_err(|e| fail(&e))?;
        txn.set_durability(if durable { Durability::Immediate } else { Durability::None }).map_err(|e| fail(&e))?;
        {
            let registry = postcard::to_allocvec(&indexed.registry).map_err(|e| fail(&e))?;
            let ids = postcard::to_allocvec(&self.ids.numbers()).map_err(|e| fail(&e))?;
            let cases = postcard::to_allocvec(&self.cases.numbers()).map_err(|e| fail(&e))?;
            let mut meta = txn.open_table(META).map_err(|e| fail(&e))?;
            meta.insert("through", indexed.through.to_be_bytes().as_slice()).map_err(|e| fail(&e))?;
            meta.insert("checksum", indexed.checksum.as_slice()).map_err(|e| fail(&e))?;
            meta.insert("registry", registry.as_slice()).map_err(|e| fail(&e))?;
            meta.insert("ids", ids.as_slice()).map_err(|e| fail(&e))?;
            meta.insert("cases", cases.as_slice()).map_err(|e| fail(&e))?;
            meta.insert("next_run", self.next_run.to_be_bytes().as_slice()).map_err(|e| fail(&e))?;
        }
        txn.commit().map_err(|e| failed(&self.path, "committing")(&e))
    }
}

/// Reads `meta`: the manifest, and the point covered if the index is of
/// this format and covers one.
fn read_meta(db: &Database, path: &Path) -> Result<Meta, String> {
    let fail = failed(path, "reading");
    let txn = db.begin_read().map_err(|e| fail(&e))?;
    let meta = txn.open_table(META).map_err(|e| fail(&e))?;
    let get = |key: &str| -> Result<Option<Vec<u8>>, String> {
        Ok(meta.get(key).map_err(|e| fail(&e))?.map(|v| v.value().to_vec()))
    };
    let empty = Meta { indexed: None, ids: Vec::new(), cases: Vec::new(), next_run: 0 };
    if get("format")?.as_deref() != Some(&[INDEX_FORMAT][..]) {
        return Ok(empty);
    }
    let (Some(through), Some(checksum), Some(registry), Some(ids), Some(cases), Some(next_run)) =
        (get("through")?, get("checksum")?, get("registry")?, get("ids")?, get("cases")?, get("next_run")?)
    else {
        return Ok(empty);
    };
    let through = u64::from_be_bytes(through.try_into().map_err(|_| fail(&"`through` is not 8 bytes"))?);
    let next_run = u64::from_be_bytes(next_run.try_into().map_err(|_| fail(&"`next_run` is not 8 bytes"))?);
    let checksum = checksum.try_into().map_err(|_| fail(&"`checksum` is not 32 bytes"))?;
    let registry = postcard::from_bytes(&registry).map_err(|e| fail(&e))?;
    let ids = postcard::from_bytes(&ids).map_err(|e| fail(&e))?;
    let cases = postcard::from_bytes(&cases).map_err(|e| fail(&e))?;
    Ok(Meta { indexed: Some(Indexed { through, checksum, registry }), ids, cases, next_run })
}

/// Removes the run files in `dir` that no manifest names.
fn remove_orphans(dir: &Path, named: &[&[u64]]) -> Result<(), String> {
    let wanted: std::collections::HashSet<String> = ["ids", "cases"]
        .iter()
        .zip(named)
        .flat_map(|(kind, numbers)| numbers.iter().map(|n| crate::runs::run_name(kind, *n)))
        .collect();
    let entries = std::fs::read_dir(dir).map_err(|e| failed(dir, "listing")(&e))?;
    for entry in entries {
        let entry = entry.map_err(|e| failed(dir, "listing")(&e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".run") && !wanted.contains(&name) {
            std::fs::remove_file(entry.path()).map_err(|e| failed(&entry.path(), "removing an orphan run")(&e))?;
        }
    }
    Ok(())
}
