//! The primary's publisher: after each new signed checkpoint, the hash
//! tiles and entry bundles it adds (each written once), then the checkpoint
//! itself, replaced conditionally. Readers fetch the checkpoint first and
//! then what it covers, so everything it covers is in the bucket before it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use docket_log::note::{Checkpoint, NoteKey};
use docket_log::{Reader, SharedTree};

use crate::bucket::{Bucket, Versioned};
use crate::{bundle_name, tile_name, Hash, PublishError, CHECKPOINT, TILE_WIDTH};

/// What the publisher reads: the primary's own ledger.
pub trait Source: Send + Sync {
    /// The latest signed checkpoint note with the witnesses' cosignatures
    /// of it, if any.
    fn checkpoint(&self) -> Result<Option<String>, String>;
    /// The tile at `level`, `index` for a tree of `size` leaves.
    fn tile(&self, level: u8, index: u64, size: u64) -> Result<Vec<Hash>, String>;
    /// The entry bundle of records `first .. end`.
    fn bundle(&self, first: u64, end: u64) -> Result<Vec<u8>, String>;
    /// The tree's root at `size`, if the tree holds that many leaves.
    fn root(&self, size: u64) -> Option<Hash>;
}

/// A ledger directory served by this process: its checkpoints on disk,
/// the writer's tree (shared), its segments.
#[derive(Debug, Clone)]
pub struct LedgerSource {
    dir: PathBuf,
    tree: SharedTree,
    reader: Reader,
}

impl LedgerSource {
    /// The ledger in `dir`, whose writer holds `tree`.
    pub fn new(dir: &Path, tree: SharedTree) -> Self {
        let reader = Reader::new(docket_log::ledger::Paths::new(dir).segments());
        Self { dir: dir.to_owned(), tree, reader }
    }
}

impl Source for LedgerSource {
    fn checkpoint(&self) -> Result<Option<String>, String> {
        let paths = docket_log::ledger::Paths::new(&self.dir);
        let note = match std::fs::read_to_string(paths.latest_checkpoint()) {
            Ok(note) => note,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("{}: {error}", paths.latest_checkpoint().display())),
        };
        let size = checkpoint_of(&note).map_err(|e| format!("the latest checkpoint: {e}"))?.size;
        Ok(Some(note + &docket_log::ledger::read_cosignatures(&paths, size).unwrap_or_default()))
    }

    fn tile(&self, level: u8, index: u64, size: u64) -> Result<Vec<Hash>, String> {
        let tree = self.tree.read().unwrap_or_else(PoisonError::into_inner);
        tree.tile(level, index, size).ok_or_else(|| format!("tile {level}/{index} at size {size} is not available"))
    }

    fn bundle(&self, first: u64, end: u64) -> Result<Vec<u8>, String> {
        docket_log::tiles::entry_bundle(&self.reader, first, end)
    }

    fn root(&self, size: u64) -> Option<Hash> {
        self.tree.read().unwrap_or_else(PoisonError::into_inner).root(size)
    }
}

/// The checkpoint in a note (signature not checked: the caller's own, or
/// checked by the caller).
fn checkpoint_of(note: &str) -> Result<Checkpoint, String> {
    let (text, _) = docket_log::note::parse(note).map_err(|e| e.to_string())?;
    Checkpoint::parse(text).map_err(|e| e.to_string())
}

/// The checkpoint in a note signed by `key` (an error says why not).
pub fn verified_checkpoint(note: &str, key: &NoteKey) -> Result<Checkpoint, String> {
    let (text, _) = docket_log::note::open(note, std::slice::from_ref(key)).map_err(|e| e.to_string())?;
    let checkpoint = Checkpoint::parse(text).map_err(|e| e.to_string())?;
    if checkpoint.origin != key.name {
        return Err(format!("origin {:?} is not the log key's name {:?}", checkpoint.origin, key.name));
    }
    Ok(checkpoint)
}

/// Where the publisher stands, shared with health and metrics.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// The size of the checkpoint last published (0: none).
    pub published: u64,
    /// The size of the newest local checkpoint seen.
    pub local: u64,
    /// The system time (µs) of the first record the bucket does not hold
    /// (checkpointed locally or not yet): publication lag counts from it.
    /// Set when metrics are read ([`Status::metrics_now`]).
    pub oldest_unpublished: Option<i64>,
    /// The last failure, until a round succeeds.
    pub last_error: Option<String>,
    /// Why publishing stopped for good (another writer, another log).
    pub stopped: Option<String>,
    /// Objects written since start (tiles, bundles, checkpoints).
    pub objects: u64,
}

impl Status {
    /// How long ago the first record not yet in the bucket was recorded
    /// (0 when none waits). It counts the checkpoint
    /// interval as well as the upload: what a replica or a reader of the
    /// bucket sees of an append.
    pub fn lag(&self) -> Duration {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.oldest_unpublished.map_or(Duration::ZERO, |micros| {
            now.saturating_sub(Duration::from_micros(u64::try_from(micros).unwrap_or(0)))
        })
    }

    /// [`Status::metrics`] with the lag read from the log now: from the
    /// first record the bucket lacks, if `records` (the published log)
    /// holds it. Read at each scrape, so the lag grows between rounds.
    pub fn metrics_now(&self, records: &Reader) -> String {
        let mut now = self.clone();
        now.oldest_unpublished = records.frame_at(self.published).ok().flatten().map(|frame| frame.system_time);
        now.metrics()
    }

    /// Prometheus text lines for the publisher.
    pub fn metrics(&self) -> String {
        format!(
            "# HELP docket_publish_lag_seconds How long ago the first record not yet in the bucket was recorded.\n\
             # TYPE docket_publish_lag_seconds gauge\ndocket_publish_lag_seconds {:.3}\n\
             # HELP docket_publish_lag_records Records signed locally and not yet published.\n\
             # TYPE docket_publish_lag_records gauge\ndocket_publish_lag_records {}\n\
             # HELP docket_published_size The size of the checkpoint last published.\n\
             # TYPE docket_published_size gauge\ndocket_published_size {}\n\
             # HELP docket_publish_objects Objects written to the bucket since start.\n\
             # TYPE docket_publish_objects counter\ndocket_publish_objects_total {}\n\
             # HELP docket_publish_stopped 1 if publishing stopped for good (another writer on the bucket).\n\
             # TYPE docket_publish_stopped gauge\ndocket_publish_stopped {}\n",
            self.lag().as_secs_f64(),
            self.local.saturating_sub(self.published),
            self.published,
            self.objects,
            u8::from(self.stopped.is_some()),
        )
    }
}

/// Status shared between the publisher and its readers.
pub type SharedStatus = Arc<Mutex<Status>>;

fn status(shared: &SharedStatus) -> std::sync::MutexGuard<'_, Status> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The publisher of one log to one bucket.
#[derive(Debug)]
pub struct Publisher<S> {
    public: Bucket,
    private: Bucket,
    source: S,
    key: NoteKey,
    /// The checkpoint object as last read or written, and its size.
    published: Option<(Versioned, u64)>,
    status: SharedStatus,
}

impl<S: Source> Publisher<S> {
    /// Opens the publication: reads the bucket's checkpoint, if any, and
    /// checks it is this log's (signed by `key`) and a prefix of the local
    /// tree. Otherwise another log publishes there, or this ledger is
    /// behind the bucket: refused, saying which.
    pub async fn open(public: Bucket, private: Bucket, source: S, key: NoteKey) -> Result<Self, PublishError> {
        let found = public.get(CHECKPOINT).await?;
        let published = match found {
            None => None,
            Some(object) => {
                let size = Self::check_bucket(&public, &source, &key, &object)?;
                Some((object, size))
            }
        };
        let shared = SharedStatus::default();
        status(&shared).published = published.as_ref().map_or(0, |(_, size)| *size);
        Ok(Self { public, private, source, key, published, status: shared })
    }

    /// The bucket's checkpoint must be signed by this log's key and be a
    /// prefix of the local tree; its size.
    fn check_bucket(public: &Bucket, source: &S, key: &NoteKey, object: &Versioned) -> Result<u64, PublishError> {
        let where_ = format!("{}/{CHECKPOINT}", public.url());
        let note = std::str::from_utf8(&object.bytes)
            .map_err(|_| PublishError::Foreign(format!("{where_}: not UTF-8, not a checkpoint of this log")))?;
        let checkpoint = verified_checkpoint(note, key).map_err(|e| {
            PublishError::Foreign(format!("{where_} is not a checkpoint of this log ({e}): another log publishes here"))
        })?;
        match source.root(checkpoint.size) {
            Some(root) if root == checkpoint.root => Ok(checkpoint.size),
            Some(_) => Err(PublishError::Foreign(format!(
                "{where_} (size {}) is signed by this log's key but its root is not this ledger's at that size: \
                 another primary with this key has written a different history; refusing to publish",
                checkpoint.size
            ))),
            None => Err(PublishError::Foreign(format!(
                "{where_} is at size {}, beyond this ledger's records: this ledger is behind the bucket (restore \
                 it from the bucket: docket restore), or another primary publishes here",
                checkpoint.size
            ))),
        }
    }

    /// The status, shared (for metrics and health).
    pub fn status(&self) -> SharedStatus {
        self.status.clone()
    }

    /// One round: if the local checkpoint is newer than the published one,
    /// writes the tiles and bundles it adds, then replaces the checkpoint.
    /// Returns the size published in this round, if any.
    pub async fn step(&mut self) -> Result<Option<u64>, PublishError> {
        let Some(note) = self.source.checkpoint().map_err(PublishError::Source)? else { return Ok(None) };
        let checkpoint = verified_checkpoint(&note, &self.key).map_err(PublishError::Source)?;
        let old = self.published.as_ref().map_or(0, |(_, size)| *size);
        status(&self.status).local = checkpoint.size;
        let unchanged = self.published.as_ref().is_some_and(|(object, _)| object.bytes == note.as_bytes());
        if checkpoint.size < old || unchanged {
            return Ok(None);
        }
        let written = self.write_tiles(old, checkpoint.size).await? + self.write_bundles(old, checkpoint.size).await?;
        let expected = self.published.as_ref().map(|(object, _)| object);
        let object = self.public.replace(CHECKPOINT, note.into_bytes(), expected).await?;
        self.published = Some((object, checkpoint.size));
        let mut shared = status(&self.status);
        shared.published = checkpoint.size;
        shared.objects += written + 1;
        shared.last_error = None;
        Ok(Some(checkpoint.size))
    }

    /// Writes the hash tiles a tree of `new` leaves has and one of `old`
    /// did not (a partial tile's path names its width, so each is new).
    async fn write_tiles(&self, old: u64, new: u64) -> Result<u64, PublishError> {
        let mut written = 0;
        let mut level = 0u8;
        while new >> (8 * u32::from(level)) > 0 {
            let (had, has) = (old >> (8 * u32::from(level)), new >> (8 * u32::from(level)));
            for index in had / TILE_WIDTH..has.div_ceil(TILE_WIDTH) {
                let width = (has - index * TILE_WIDTH).min(TILE_WIDTH);
                let width_before = had.saturating_sub(index * TILE_WIDTH).min(TILE_WIDTH);
                if width == width_before {
                    continue;
                }
                let hashes = self.source.tile(level, index, new).map_err(PublishError::Source)?;
                if hashes.len() as u64 != width {
                    return Err(PublishError::Source(format!(
                        "tile {level}/{index} at size {new}: {} hashes, expected {width}",
                        hashes.len()
                    )));
                }
                self.public.put_once(&tile_name(level, index, width), hashes.concat()).await?;
                written += 1;
            }
            level += 1;
        }
        Ok(written)
    }

    /// Writes the entry bundles of records `old .. new` (to the private bucket).
    async fn write_bundles(&self, old: u64, new: u64) -> Result<u64, PublishError> {
        let mut written = 0;
        for index in old / TILE_WIDTH..new.div_ceil(TILE_WIDTH) {
            let first = index * TILE_WIDTH;
            let end = new.min(first + TILE_WIDTH);
            if old >= end {
                continue;
            }
            let bytes = self.source.bundle(first, end).map_err(PublishError::Source)?;
            self.private.put_once(&bundle_name(index, end - first), bytes).await?;
            written += 1;
        }
        Ok(written)
    }

    /// Publishes every `interval` until `stop` turns true. A transient
    /// failure is retried at the next round (waiting up to `backoff_max`
    /// after repeated failures); another writer or another log stops
    /// publishing for good, in the status and the log. Returns the
    /// publisher, for a last round after the server's final checkpoint.
    pub async fn run(
        mut self,
        interval: Duration,
        backoff_max: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let mut wait = interval;
        loop {
            match self.step().await {
                Ok(_) => wait = interval,
                Err(error) if error.is_transient() => {
                    tracing::warn!(%error, "publishing failed; retrying");
                    status(&self.status).last_error = Some(error.to_string());
                    wait = (wait * 2).min(backoff_max.max(interval));
                }
                Err(error) => {
                    tracing::error!(%error, "publishing stopped");
                    let mut shared = status(&self.status);
                    shared.last_error = Some(error.to_string());
                    shared.stopped = Some(error.to_string());
                    drop(shared);
                    return self;
                }
            }
            if *stop.borrow() {
                return self;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_first_unpublished_records_system_time() {
        assert_eq!(Status::default().lag(), Duration::ZERO, "nothing waits");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
        let recorded = i64::try_from((now - Duration::from_secs(3)).as_micros()).expect("micros");
        let status = Status { oldest_unpublished: Some(recorded), ..Status::default() };
        let lag = status.lag();
        assert!(lag >= Duration::from_secs(3) && lag < Duration::from_secs(60), "{lag:?}");
        let text = status.metrics();
        let shown: f64 = text
            .lines()
            .find_map(|line| line.strip_prefix("docket_publish_lag_seconds "))
            .and_then(|value| value.parse().ok())
            .expect("the lag line");
        assert!(shown >= 3.0, "{text}");
    }
}
