//! The append path's state on disk (`DIR/index.redb`): every event id with
//! its seq and system time (the duplicate check), every case's version, the
//! registry, and the point of the log they cover. Derived from the log and
//! checked against it on open: a ledger opens from this index and the
//! records after the point it covers, not from the whole history; an index
//! that is missing, unreadable, of another format, or that does not match
//! the log is rebuilt from the log.
//!
//! Stored form (golden vectors in `tests/golden/index/`):
//! * `ids`: key a `u128`, the event id's first 8 bytes (read big-endian) in
//!   the high 64 bits and the record's seq in the low 64, value empty. An
//!   id's candidates are one key range; the caller confirms a candidate
//!   against the record at its seq (the full id and the system time are in
//!   the log), so a shared prefix can never make a duplicate of a new event.
//!   16 bytes an event, where the full id with seq and time took 48 and a
//!   variable-width entry (`INDEX_FORMAT` 1: 145 bytes an event on disk at
//!   1M events);
//! * `cases`: key the case reference in postcard, value the version (u64);
//! * `meta`: `format` = [`INDEX_FORMAT`] (one byte), `through` = records
//!   covered (u64 BE), `checksum` = the checksum of frame `through - 1`
//!   (32 bytes; zeros when `through` is 0), `registry` = the registry in postcard.

use std::path::{Path, PathBuf};

use docket_model::{CaseRef, EventId, Registry, SignedEvent};

use crate::read::Reader;
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

/// The stored form's version; another version is rebuilt, never read.
pub const INDEX_FORMAT: u8 = 2;

/// The index's page cache: 32 MiB.
pub const INDEX_CACHE_BYTES: usize = 32 << 20;

/// Records applied in memory before they are written to the index: at most
/// this many ids and case versions are held in memory, and an open replays
/// at most this many records (plus those since the last checkpoint).
pub const INDEX_FLUSH_RECORDS: usize = 16_384;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const IDS: TableDefinition<u128, ()> = TableDefinition::new("ids");
const CASES: TableDefinition<&[u8], u64> = TableDefinition::new("cases");

type Tables = (redb::ReadOnlyTable<u128, ()>, redb::ReadOnlyTable<&'static [u8], u64>);

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

/// The index file, open.
pub struct Index {
    db: Database,
    path: PathBuf,
    tables: Option<Tables>,
    /// The log indexed: a candidate id is confirmed against its record.
    records: Reader,
    /// A scratch index (`verify`'s) syncs only every
    /// [`SCRATCH_SYNC_FLUSHES`] writes: nothing is lost if it is, and the
    /// syncs in between only let redb reuse the pages earlier writes freed.
    scratch: bool,
    writes: u64,
}

/// Writes between syncs of a scratch index.
pub const SCRATCH_SYNC_FLUSHES: u64 = 8;

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

/// The first 8 bytes of an id, big-endian: the high half of its keys.
fn id_prefix(id: &EventId) -> u64 {
    let mut prefix = [0; 8];
    prefix.copy_from_slice(&id.0[..8]);
    u64::from_be_bytes(prefix)
}

/// One id's key: its prefix above the seq of its record.
pub fn id_key(id: &EventId, seq: u64) -> u128 {
    (u128::from(id_prefix(id)) << 64) | u128::from(seq)
}

/// A case's key: its reference in postcard.
pub fn case_key(case: &CaseRef) -> Vec<u8> {
    postcard::to_allocvec(case).unwrap_or_else(|_| unreachable!("a case reference always encodes"))
}

fn failed(path: &Path, what: &str) -> impl Fn(&dyn std::fmt::Display) -> String {
    let prefix = format!("index {}: {what}", path.display());
    move |error| format!("{prefix}: {error}")
}

impl Index {
    /// Opens the index at `path` and the point it covers; `None` when the
    /// file is new, or was unreadable or of another format (it is then
    /// replaced by an empty one, to be rebuilt from the log).
    /// `records` reads the log it indexes.
    pub fn open(path: &Path, records: Reader) -> Result<(Self, Option<Indexed>), String> {
        if let Ok(index) = Self::open_existing(path, records.clone()) {
            if let Ok(Some(indexed)) = index.covered() {
                return Ok((index, Some(indexed)));
            }
        }
        Ok((Self::create(path, records)?, None))
    }

    fn open_existing(path: &Path, records: Reader) -> Result<Self, String> {
        let db = Database::builder().set_cache_size(INDEX_CACHE_BYTES).open(path).map_err(|e| e.to_string())?;
        let mut index = Self { db, path: path.to_owned(), tables: None, records, scratch: false, writes: 0 };
        index.refresh()?;
        Ok(index)
    }

    /// This index emptied: the file is replaced by a new one.
    pub fn recreate(self) -> Result<Self, String> {
        let (path, records) = (self.path.clone(), self.records.clone());
        drop(self);
        Self::create(&path, records)
    }

    /// A new, empty index at `path`, replacing any file there, of the log
    /// `records` reads.
    pub fn create(path: &Path, records: Reader) -> Result<Self, String> {
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(failed(path, "removing")(&error)),
            _ => {}
        }
        let db = Database::builder()
            .set_cache_size(INDEX_CACHE_BYTES)
            .create(path)
            .map_err(|e| failed(path, "creating")(&e))?;
        let txn = db.begin_write().map_err(|e| failed(path, "writing")(&e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| failed(path, "writing")(&e))?;
            meta.insert("format", [INDEX_FORMAT].as_slice()).map_err(|e| failed(path, "writing")(&e))?;
            txn.open_table(IDS).map_err(|e| failed(path, "writing")(&e))?;
            txn.open_table(CASES).map_err(|e| failed(path, "writing")(&e))?;
        }
        txn.commit().map_err(|e| failed(path, "committing")(&e))?;
        let mut index = Self { db, path: path.to_owned(), tables: None, records, scratch: false, writes: 0 };
        index.refresh()?;
        Ok(index)
    }

    /// A new scratch index at `path` (see `scratch`), for a check that
    /// builds the state from the first record and throws it away after.
    pub fn scratch(path: &Path, records: Reader) -> Result<Self, String> {
        let mut index = Self::create(path, records)?;
        index.scratch = true;
        Ok(index)
    }

    /// The point covered, if the index holds one of its format.
    pub fn covered(&self) -> Result<Option<Indexed>, String> {
        let fail = failed(&self.path, "reading");
        let txn = self.db.begin_read().map_err(|e| fail(&e))?;
        let meta = txn.open_table(META).map_err(|e| fail(&e))?;
        let get = |key: &str| -> Result<Option<Vec<u8>>, String> {
            Ok(meta.get(key).map_err(|e| fail(&e))?.map(|v| v.value().to_vec()))
        };
        if get("format")?.as_deref() != Some(&[INDEX_FORMAT][..]) {
            return Ok(None);
        }
        let (Some(through), Some(checksum), Some(registry)) = (get("through")?, get("checksum")?, get("registry")?)
        else {
            return Ok(None);
        };
        let through = u64::from_be_bytes(through.try_into().map_err(|_| fail(&"`through` is not 8 bytes"))?);
        let checksum = checksum.try_into().map_err(|_| fail(&"`checksum` is not 32 bytes"))?;
        let registry = postcard::from_bytes(&registry).map_err(|e| fail(&e))?;
        Ok(Some(Indexed { through, checksum, registry }))
    }

    fn refresh(&mut self) -> Result<(), String> {
        let fail = failed(&self.path, "reading");
        let txn = self.db.begin_read().map_err(|e| fail(&e))?;
        let ids = txn.open_table(IDS).map_err(|e| fail(&e))?;
        let cases = txn.open_table(CASES).map_err(|e| fail(&e))?;
        self.tables = Some((ids, cases));
        Ok(())
    }

    /// The seq and system time of the indexed record of `id`, if there is
    /// one: each candidate sharing its prefix is read from the log and its
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
        let Some((ids, _)) = &self.tables else { return Ok(Vec::new()) };
        let low = u128::from(id_prefix(id)) << 64;
        let range = ids.range(low..=low | u128::from(u64::MAX)).map_err(|e| failed(&self.path, "reading an id")(&e))?;
        let mut seqs = Vec::new();
        for entry in range {
            let (key, _) = entry.map_err(|e| failed(&self.path, "reading an id")(&e))?;
            seqs.push(key.value() as u64);
        }
        Ok(seqs)
    }

    /// The indexed version of a case (0 if none).
    pub fn case_version(&self, case: &CaseRef) -> Result<u64, String> {
        let Some((_, cases)) = &self.tables else { return Ok(0) };
        let value = cases.get(case_key(case).as_slice()).map_err(|e| failed(&self.path, "reading a case")(&e))?;
        Ok(value.map_or(0, |v| v.value()))
    }

    /// Writes what records up to `indexed.through` added, and that point, in
    /// one durable transaction.
    pub fn write<'a>(
        &mut self,
        ids: impl Iterator<Item = (&'a EventId, &'a (u64, i64))>,
        cases: impl Iterator<Item = (&'a CaseRef, &'a u64)>,
        indexed: &Indexed,
    ) -> Result<(), String> {
        let fail = failed(&self.path, "writing");
        self.tables = None;
        let mut txn = self.db.begin_write().map_err(|e| fail(&e))?;
        self.writes += 1;
        let durability = if self.scratch && !self.writes.is_multiple_of(SCRATCH_SYNC_FLUSHES) {
            Durability::None
        } else {
            Durability::Immediate
        };
        txn.set_durability(durability).map_err(|e| fail(&e))?;
        {
            let mut table = txn.open_table(IDS).map_err(|e| fail(&e))?;
            for (id, (seq, _)) in ids {
                table.insert(id_key(id, *seq), ()).map_err(|e| fail(&e))?;
            }
            let mut table = txn.open_table(CASES).map_err(|e| fail(&e))?;
            for (case, version) in cases {
                table.insert(case_key(case).as_slice(), *version).map_err(|e| fail(&e))?;
            }
            let registry = postcard::to_allocvec(&indexed.registry).map_err(|e| fail(&e))?;
            let mut meta = txn.open_table(META).map_err(|e| fail(&e))?;
            meta.insert("through", indexed.through.to_be_bytes().as_slice()).map_err(|e| fail(&e))?;
            meta.insert("checksum", indexed.checksum.as_slice()).map_err(|e| fail(&e))?;
            meta.insert("registry", registry.as_slice()).map_err(|e| fail(&e))?;
        }
        txn.commit().map_err(|e| failed(&self.path, "committing")(&e))?;
        self.refresh()
    }
}
