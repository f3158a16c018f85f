//! What a replica checks before it takes anything from the bucket. It
//! trusts nothing it reads there:
//!
//! * the checkpoint is signed by the log's key, with the log's origin, and
//!   never smaller than one seen before (same size: same root);
//! * the level-0 tiles' hashes from the last verified size on, folded onto
//!   the right edge of the tree already verified (the frontier), give the
//!   checkpoint's root: so the new tree extends the old one, the
//!   consistency of every checkpoint seen;
//! * each entry of the bundles hashes to its leaf, carries its seq, and its
//!   event's signature holds; the registry's rules are then applied by the
//!   replica's own log as it appends the records (`docket_log::Log`).
//!
//! A failed check names the first seq it concerns. The tiles are checked
//! against the checkpoint before any record is handed on; records are then
//! handed on in chunks, each entry checked first, so a bad entry stops the
//! round at its seq with only fully checked records before it taken.

use docket_log::merkle::{leaf_hash, node_hash};
use docket_log::note::{Checkpoint, NoteKey};
use docket_model::{SignedEvent, Timestamp};

use crate::bucket::Bucket;
use crate::publish::verified_checkpoint;
use crate::{bundle_name, tile_name, Hash, PublishError, CHECKPOINT, TILE_WIDTH};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Most new leaves one round holds in memory (32 bytes each): 2 GiB.
pub const FOLLOW_ROUND_LEAVES_MAX: u64 = 1 << 26;

/// Records handed on at once (one append batch of the replica's log).
pub const FOLLOW_CHUNK_RECORDS: usize = 1024;

/// The right edge of a Merkle tree: the roots of its full subtrees, left
/// to right, with their heights. Enough to extend it and compute its root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    stack: Vec<(Hash, u32)>,
    size: u64,
}

impl Frontier {
    /// The frontier of `leaves`.
    pub fn of(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut frontier = Self::default();
        for leaf in leaves {
            frontier.push(leaf);
        }
        frontier
    }

    /// Adds a leaf.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (leaf, 0);
        while let Some(&(left, height)) = self.stack.last() {
            if height != node.1 {
                break;
            }
            self.stack.pop();
            node = (node_hash(&left, &node.0), height + 1);
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 6962 root of the leaves so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.stack.iter().rev();
        let Some((mut root, _)) = nodes.next().copied() else { return docket_log::merkle::root(&[]) };
        for (left, _) in nodes {
            root = node_hash(left, &root);
        }
        root
    }
}

/// Where a follower reads the published log (C2SP tlog-tiles names under
/// a prefix): a bucket, or a primary's `/log/` over HTTP.
pub trait Origin: std::fmt::Debug + Send + Sync {
    /// The object `name` (`checkpoint`, `tile/...`); `None` if there is none.
    fn fetch(&self, name: &str) -> impl Future<Output = Result<Option<Vec<u8>>, PublishError>> + Send;
    /// Where it reads, for messages.
    fn url(&self) -> &str;
}

impl Origin for Bucket {
    async fn fetch(&self, name: &str) -> Result<Option<Vec<u8>>, PublishError> {
        Ok(self.get(name).await?.map(|object| object.bytes.to_vec()))
    }

    fn url(&self) -> &str {
        Bucket::url(self)
    }
}

/// A record taken from the bucket, verified, for the replica's log: the
/// log's own record type, as recovery and readers see it.
pub use docket_log::Record;

/// A replica's view of the published log: what it has verified so far.
#[derive(Debug)]
pub struct Follower<O = Bucket> {
    public: O,
    private: O,
    key: NoteKey,
    frontier: Frontier,
    /// The last checkpoint verified (its note, as published).
    seen: Option<(Checkpoint, String)>,
    /// The size of the newest checkpoint read whose signature held (the
    /// replica's lag is this less [`Follower::size`]); shared, so that a
    /// status page reads it while a round runs.
    published: Arc<AtomicU64>,
}

/// What one round took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// The size before and after.
    pub from: u64,
    pub to: u64,
    /// The checkpoint note now verified (to be served as the replica's own).
    pub note: String,
}

impl<O: Origin> Follower<O> {
    /// A follower whose replica already holds the records with these leaves
    /// (its own log, checked when it was opened).
    pub fn new(public: O, private: O, key: NoteKey, frontier: Frontier) -> Self {
        Self { public, private, key, frontier, seen: None, published: Arc::new(AtomicU64::new(0)) }
    }

    /// The size of the newest checkpoint read whose signature held.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// [`Follower::published`], readable from elsewhere while rounds run.
    pub fn published_gauge(&self) -> Arc<AtomicU64> {
        self.published.clone()
    }

    /// Records verified so far.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// One round: reads the checkpoint; if it is newer, verifies it and the
    /// records it adds, and hands them to `apply` in order, in chunks of at
    /// most [`FOLLOW_CHUNK_RECORDS`] (an error from `apply`, such as a
    /// registry rule the replica's log refuses, stops the round at that
    /// seq). `None` if there was nothing new.
    pub async fn round(
        &mut self,
        mut apply: impl AsyncFnMut(Vec<Record>) -> Result<(), (u64, String)>,
    ) -> Result<Option<Round>, PublishError> {
        let old = self.size();
        let Some((checkpoint, note)) = self.checkpoint(old).await? else { return Ok(None) };
        if checkpoint.size == old {
            self.seen = Some((checkpoint, note));
            return Ok(None);
        }
        let new = checkpoint.size;
        if new - old > FOLLOW_ROUND_LEAVES_MAX {
            return Err(PublishError::Source(format!(
                "checkpoint size {new}: {} new leaves, more than FOLLOW_ROUND_LEAVES_MAX = {FOLLOW_ROUND_LEAVES_MAX}",
                new - old
            )));
        }
        let leaves = self.leaves(old, new).await?;
        let mut frontier = self.frontier.clone();
        leaves.iter().for_each(|leaf| frontier.push(*leaf));
        if frontier.root() != checkpoint.root {
            return Err(self.diagnose(old, new, &leaves).await);
        }
        self.take_entries(old, new, &leaves, &mut apply).await?;
        debug_assert_eq!(self.frontier, frontier);
        self.seen = Some((checkpoint, note.clone()));
        Ok(Some(Round { from: old, to: new, note }))
    }

    /// The bucket's checkpoint, verified against the key and what was seen
    /// before; `None` if the bucket holds none yet.
    async fn checkpoint(&mut self, old: u64) -> Result<Option<(Checkpoint, String)>, PublishError> {
        let Some(object) = self.public.fetch(CHECKPOINT).await? else { return Ok(None) };
        let tampered = |reason: String| PublishError::Tampered { seq: old, reason };
        let note = String::from_utf8(object).map_err(|_| tampered("the checkpoint is not UTF-8".into()))?;
        let checkpoint = verified_checkpoint(&note, &self.key).map_err(|e| tampered(format!("the checkpoint: {e}")))?;
        self.published.fetch_max(checkpoint.size, Ordering::Relaxed);
        if checkpoint.size < old {
            return Err(tampered(format!(
                "the checkpoint's size {} is smaller than the {old} records already verified: the log was rolled back",
                checkpoint.size
            )));
        }
        if checkpoint.size == old && checkpoint.root != self.frontier.root() {
            return Err(tampered(format!(
                "the checkpoint at size {old} has another root than the one verified: the log forked"
            )));
        }
        Ok(Some((checkpoint, note)))
    }

    /// The leaf hashes `old .. new` from the level-0 tiles of the tree of `new`.
    async fn leaves(&self, old: u64, new: u64) -> Result<Vec<Hash>, PublishError> {
        let mut leaves = Vec::with_capacity((new - old) as usize);
        for index in old / TILE_WIDTH..new.div_ceil(TILE_WIDTH) {
            let width = (new - index * TILE_WIDTH).min(TILE_WIDTH);
            let name = tile_name(0, index, width);
            let first = index * TILE_WIDTH;
            let object = self.public.fetch(&name).await?.ok_or_else(|| PublishError::Store {
                object: format!("{}/{name}", self.public.url()),
                reason: "missing (the checkpoint covers it)".into(),
            })?;
            if object.len() as u64 != width * 32 {
                return Err(PublishError::Tampered {
                    seq: first.max(old),
                    reason: format!("{name}: {} bytes, expected {width} hashes", object.len()),
                });
            }
            let skip = old.saturating_sub(first) as usize;
            leaves.extend(object.chunks_exact(32).skip(skip).map(|c| c.try_into().unwrap_or([0; 32])));
        }
        Ok(leaves)
    }

    /// The tiles do not give the checkpoint's root: finds the first seq
    /// whose entry does not hash to its tile's leaf, to name it.
    async fn diagnose(&self, old: u64, new: u64, leaves: &[Hash]) -> PublishError {
        let mismatch = |seq: u64| PublishError::Tampered {
            seq,
            reason: format!(
                "the hash of its entry is not its leaf in {} (the tile or the entry bundle was altered), and \
                 the tiles do not give the checkpoint's root",
                tile_name(0, seq / TILE_WIDTH, (new - seq / TILE_WIDTH * TILE_WIDTH).min(TILE_WIDTH))
            ),
        };
        for index in old / TILE_WIDTH..new.div_ceil(TILE_WIDTH) {
            let Ok(entries) = self.bundle(index, new).await else { break };
            for (seq, entry) in entries {
                if seq >= old && leaf_hash(&entry) != leaves[(seq - old) as usize] {
                    return mismatch(seq);
                }
            }
        }
        PublishError::Tampered {
            seq: old,
            reason: format!("the tiles from seq {old} to {new} do not give the checkpoint's root"),
        }
    }

    /// The entries of bundle `index` in the tree of `new`, with their seqs.
    async fn bundle(&self, index: u64, new: u64) -> Result<Vec<(u64, Vec<u8>)>, PublishError> {
        let first = index * TILE_WIDTH;
        let width = (new - first).min(TILE_WIDTH);
        let name = bundle_name(index, width);
        let object = self.private.fetch(&name).await?.ok_or_else(|| PublishError::Store {
            object: format!("{}/{name}", self.private.url()),
            reason: "missing (the checkpoint covers it)".into(),
        })?;
        let entries = docket_log::tiles::split_bundle(&object)
            .map_err(|e| PublishError::Tampered { seq: first, reason: format!("{name}: {e}") })?;
        if entries.len() as u64 != width {
            return Err(PublishError::Tampered {
                seq: first,
                reason: format!("{name}: {} entries, expected {width}", entries.len()),
            });
        }
        Ok(entries.into_iter().enumerate().map(|(at, entry)| (first + at as u64, entry.to_vec())).collect())
    }

    /// Fetches the bundles of `old .. new`, checks each entry, and hands
    /// the records on in chunks.
    async fn take_entries(
        &mut self,
        old: u64,
        new: u64,
        leaves: &[Hash],
        apply: &mut impl AsyncFnMut(Vec<Record>) -> Result<(), (u64, String)>,
    ) -> Result<(), PublishError> {
        let mut chunk = Vec::with_capacity(FOLLOW_CHUNK_RECORDS);
        for index in old / TILE_WIDTH..new.div_ceil(TILE_WIDTH) {
            for (seq, entry) in self.bundle(index, new).await? {
                if seq < old {
                    continue;
                }
                chunk.push(check_entry(seq, &entry, &leaves[(seq - old) as usize], index)?);
            }
            if chunk.len() >= FOLLOW_CHUNK_RECORDS || index + 1 == new.div_ceil(TILE_WIDTH) {
                verify_signatures(&chunk)?;
                let records = std::mem::take(&mut chunk);
                let (first, count) = (records.first().map_or(0, |r| r.seq), records.len());
                apply(records).await.map_err(|(seq, reason)| PublishError::Tampered { seq, reason })?;
                // Taken: the frontier moves past them, so that a failure
                // later in the round resumes after them.
                let at = (first - old) as usize;
                leaves[at..at + count].iter().for_each(|leaf| self.frontier.push(*leaf));
            }
        }
        Ok(())
    }
}

/// One entry: its hash is its leaf, it starts with its seq, its event decodes.
fn check_entry(seq: u64, entry: &[u8], leaf: &Hash, index: u64) -> Result<Record, PublishError> {
    let fail = |reason: String| PublishError::Tampered { seq, reason };
    if leaf_hash(entry) != *leaf {
        return Err(fail(format!(
            "its entry in bundle {index} does not hash to its leaf in the tiles (the bundle was altered)"
        )));
    }
    if entry.len() < 16 || entry[..8] != seq.to_be_bytes() {
        return Err(fail("the entry does not start with its seq".into()));
    }
    let micros = i64::from_be_bytes(entry[8..16].try_into().unwrap_or([0; 8]));
    let system_time = Timestamp::from_micros(micros).map_err(|e| fail(format!("its system time: {e}")))?;
    let event = SignedEvent::from_wire(&entry[16..]).map_err(|e| fail(format!("the event: {e}")))?;
    Ok(Record { seq, system_time, event })
}

/// Every event's signature, on all cores; the first bad one is named.
fn verify_signatures(records: &[Record]) -> Result<(), PublishError> {
    let events: Vec<SignedEvent> = records.iter().map(|r| r.event.clone()).collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let verdicts = docket_log::verify_parallel(&events, threads);
    match records.iter().zip(verdicts).find(|(_, verdict)| verdict.is_err()) {
        Some((record, Err(error))) => {
            Err(PublishError::Tampered { seq: record.seq, reason: format!("its event's signature: {error}") })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_gives_the_reference_root_at_every_size() {
        let leaves: Vec<Hash> = (0..600u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), docket_log::merkle::root(&[]));
        for (at, leaf) in leaves.iter().enumerate() {
            frontier.push(*leaf);
            assert_eq!(frontier.root(), docket_log::merkle::root(&leaves[..=at]), "size {}", at + 1);
        }
        assert_eq!(Frontier::of(leaves.iter().copied()), frontier);
    }
}
