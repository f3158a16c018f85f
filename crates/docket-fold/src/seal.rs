//! The store's file, sealed when it closes cleanly, so that the next open
//! can skip redb's full integrity check (which reads the whole file: 2.3 GB
//! at 10M events, seconds before a server can answer).
//!
//! When a [`Sealed`] database closes after a durable commit, it writes
//! `views.redb.seal` beside the file: the file's length, modification time
//! (ns) and inode, as redb left them. [`open`] removes the seal first, then
//! opens with the full check unless the seal was there and the file still
//! has exactly those length, time and inode. So the check runs after:
//! * a crash, a kill or a failed close (no seal: the seal is removed at every
//!   open, and written only at a clean close);
//! * any write to the file while docket was not running it (the time changes);
//! * a copy or restore of the file from elsewhere (the inode changes).
//!
//! What the seal cannot see is a byte changed on the medium under the file
//! system without its metadata changing (silent media corruption). The
//! projections are a cache of the log: `docket rebuild` rebuilds them, and
//! every open compares the store's position with the log's checksum there.

use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use redb::Database;

/// The version of the seal's text; another version is not trusted.
const SEAL_FORMAT: &str = "docket-store-seal 1";

/// The seal's path for a store file.
pub fn seal_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".seal");
    path.with_file_name(name)
}

/// What the seal records of the file.
fn fingerprint(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    Ok(format!("{SEAL_FORMAT}\nlen {}\nmtime_ns {mtime_ns}\nino {}\n", meta.len(), meta.ino()))
}

/// Whether the file was closed cleanly by docket and not changed since.
/// Removes the seal either way: a seal is good for one open.
fn take_seal(path: &Path) -> bool {
    let seal = seal_path(path);
    let text = std::fs::read_to_string(&seal).ok();
    if text.is_some() {
        // A seal that cannot be removed is not trusted: it could outlive a
        // crash of this run.
        if std::fs::remove_file(&seal).is_err() {
            return false;
        }
    }
    match (text, fingerprint(path)) {
        (Some(text), Ok(now)) => text == now,
        _ => false,
    }
}

/// How an open went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The file was sealed and unchanged: redb's full check was skipped.
    Sealed,
    /// redb checked every page.
    Full,
}

/// Opens (or creates) the store's file. The full integrity check runs
/// unless the file is sealed and unchanged (see the module's text): a file
/// altered behind docket's back is refused and the store rebuilt from the
/// log, instead of answered from (a plain open trusts it, and may even
/// panic on it).
pub fn open(path: &Path, cache_bytes: usize) -> Result<(Sealed, Checked), redb::DatabaseError> {
    let sealed = path.exists() && take_seal(path);
    let db = Database::builder().set_cache_size(cache_bytes).set_check_integrity_on_open(!sealed).create(path)?;
    let checked = if sealed { Checked::Sealed } else { Checked::Full };
    Ok((Sealed { db: Some(db), path: path.to_owned() }, checked))
}

/// A store's redb database that writes its seal when it closes cleanly.
#[derive(Debug)]
pub struct Sealed {
    db: Option<Database>,
    path: PathBuf,
}

impl Deref for Sealed {
    type Target = Database;

    fn deref(&self) -> &Database {
        self.db.as_ref().unwrap_or_else(|| unreachable!("the database is taken only when the seal is dropped"))
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        let Some(db) = self.db.take() else { return };
        // Catch-ups may have committed without fsync: one commit at the
        // default durability (immediate) makes them all durable first.
        let durable =
            db.begin_write().map_err(|e| e.to_string()).and_then(|txn| txn.commit().map_err(|e| e.to_string()));
        drop(db);
        if durable.is_err() {
            return;
        }
        let Ok(text) = fingerprint(&self.path) else { return };
        let seal = seal_path(&self.path);
        let temporary = seal.with_extension("seal.new");
        // Written whole and renamed, so a crash leaves no half seal; a lost
        // seal only costs the next open its full check.
        if std::fs::write(&temporary, text).is_ok() && std::fs::rename(&temporary, &seal).is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("t");

    fn write(db: &Database, value: u64) {
        let txn = db.begin_write().expect("write");
        txn.open_table(T).expect("table").insert(0, value).expect("insert");
        txn.commit().expect("commit");
    }

    #[test]
    fn a_clean_close_seals_and_the_next_open_skips_the_check_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("views.redb");
        let (db, checked) = open(&path, 1 << 20).expect("create");
        assert_eq!(checked, Checked::Full);
        write(&db, 1);
        drop(db);
        assert!(seal_path(&path).exists(), "a clean close writes the seal");
        let (db, checked) = open(&path, 1 << 20).expect("reopen");
        assert_eq!(checked, Checked::Sealed);
        assert!(!seal_path(&path).exists(), "an open removes the seal");
        // The process dies: nothing seals the file.
        std::mem::forget(db);
    }

    #[test]
    fn a_file_changed_after_its_seal_gets_the_full_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("views.redb");
        let (db, _) = open(&path, 1 << 20).expect("create");
        write(&db, 7);
        drop(db);
        // The same bytes written back: a write while docket was stopped.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, bytes).expect("write back");
        let (_, checked) = open(&path, 1 << 20).expect("reopen");
        assert_eq!(checked, Checked::Full);
    }

    #[test]
    fn a_seal_of_another_format_or_a_missing_one_is_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("views.redb");
        let (db, _) = open(&path, 1 << 20).expect("create");
        drop(db);
        let seal = seal_path(&path);
        let text = std::fs::read_to_string(&seal).expect("seal");
        std::fs::write(&seal, text.replace("seal 1", "seal 2")).expect("rewrite");
        assert_eq!(open(&path, 1 << 20).expect("reopen").1, Checked::Full);
        // That open's drop sealed it again; without the seal, the check runs.
        std::fs::remove_file(&seal).expect("remove");
        assert_eq!(open(&path, 1 << 20).expect("reopen").1, Checked::Full);
    }
}
