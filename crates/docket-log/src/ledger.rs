//! A ledger directory: configuration, keys, segments and checkpoints.
//!
//! ```text
//! DIR/ledger.json            origin, registry root key, log verifier key
//! DIR/keys/log.key           the log's checkpoint key (docket key file, 0600)
//! DIR/keys/registry-root.key the registry root key, if this ledger holds it
//! DIR/segments/seg-*.log     the log of record
//! DIR/checkpoints/latest     the newest signed checkpoint (C2SP signed note)
//! DIR/checkpoints/<size>     every checkpoint issued
//! DIR/tiles/tile/<L>/<N>     C2SP tlog-tiles of the Merkle tree (hashes only)
//! DIR/tiles/inner/<L>        each full tile's nodes at height 4 (derived, see `tiles`)
//! DIR/index.redb             the point of the log the index covers, the registry, the runs' manifest (derived)
//! DIR/index.runs/*.run       sorted runs of event ids and case versions as of that point (derived)
//! DIR/lock                   held (flock) by the one process that writes; names its pid
//! ```

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use docket_model::PublicKey;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::index::Index;
use crate::keyfile;
use crate::log::{io, read_lock, Config, Log, LogError, Recovery, Resume, SharedTree, State};
use crate::merkle::Hash;
use crate::note::{self, Checkpoint, NoteKey};
use crate::read::Reader;
use crate::storage::{sync_dir, FsStorage};
use crate::tiles::TILE_CACHE_TILES;
use crate::tree::{tile_path, Tree, TILE_WIDTH};

/// Version of `ledger.json`.
pub const LEDGER_FORMAT: u32 = 1;

/// `ledger.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    pub format: u32,
    /// The checkpoint origin line, unique to this log.
    pub origin: String,
    /// Hex of the registry root public key.
    pub registry_root: String,
    /// The log key as a signed-note verifier string.
    pub log_key: String,
}

/// Why a ledger directory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Key(#[from] keyfile::KeyFileError),
    #[error("{path}: {reason}")]
    Config { path: String, reason: String },
    #[error("{0} already holds a ledger")]
    Exists(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("{dir} is in use by another process ({holder}); stop it first, or use a read-only command (verify, replay, audit, proof)")]
    Locked { dir: String, holder: String },
}

/// The layout of a ledger directory: the one definition of where each file
/// lives. Everything that opens a ledger's files (the log, the server, the
/// CLI, the tools) asks it.
///
/// ```text
/// DIR/ledger.json                     origin, log public key, registry root
/// DIR/lock                            the owner's lock (flock), naming its pid
/// DIR/keys/                           secret keys (log, registry root; demo agencies)
/// DIR/segments/seg-<first seq>.log    the log of record
/// DIR/segments/seg-<first seq>.idx    seq -> offset index of that segment
/// DIR/checkpoints/latest              the latest signed checkpoint
/// DIR/checkpoints/cosigned/<size>     witness cosignature lines of checkpoint <size>
/// DIR/tiles/tile/<L>/<N>[.p/<W>]      C2SP tlog-tiles hash tiles
/// DIR/tiles/inner/<L>                 inner nodes of tile level L's full tiles (derived, `tiles::inner_path`)
/// DIR/index.redb                      the append path's index (derived, rebuilt from the log)
/// DIR/index.runs/<kind>-<N>.run       its sorted runs of ids and case versions
/// DIR/inquiries/segments/seg-*.log    the inquiry register (non-public reads)
/// DIR/inquiries/checkpoint            its latest signed checkpoint
/// ```
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    /// The layout of the ledger in `dir`.
    pub fn new(dir: &Path) -> Self {
        Paths { dir: dir.to_path_buf() }
    }
    /// The segment file whose first record is `first_seq`.
    pub fn segment(&self, first_seq: u64) -> PathBuf {
        self.segments().join(crate::segment::name(first_seq))
    }
    /// The seq -> offset index of the segment whose first record is `first_seq`.
    pub fn segment_index(&self, first_seq: u64) -> PathBuf {
        self.segments().join(crate::segment::index_name(&crate::segment::name(first_seq)))
    }
    /// The inquiry register (see `inquiry`).
    pub fn inquiries(&self) -> PathBuf {
        self.dir.join("inquiries")
    }
    /// The inquiry register's segment files.
    pub fn inquiry_segments(&self) -> PathBuf {
        self.inquiries().join("segments")
    }
    /// The inquiry register's latest signed checkpoint.
    pub fn inquiry_checkpoint(&self) -> PathBuf {
        self.inquiries().join("checkpoint")
    }
    /// The witness cosignature lines kept for the checkpoint of tree size `size`.
    pub fn cosignatures(&self, size: u64) -> PathBuf {
        self.checkpoints().join("cosigned").join(size.to_string())
    }
    /// The file of tile `path` (`<L>/<N>` or `<L>/<N>.p/<W>`, as C2SP
    /// tlog-tiles names it after `tile/`), or `None` if `path` is not a tile
    /// path (so that no request can name a file outside `tiles/`).
    pub fn tile(&self, path: &str) -> Option<PathBuf> {
        let parts: Vec<&str> = path.split('/').collect();
        let number = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit() || b == b'x');
        let valid = match parts.as_slice() {
            [level, rest @ ..] if number(level) && !rest.is_empty() => {
                let (last, full) = rest.split_last()?;
                let partial = full.last().is_some_and(|p| p.ends_with(".p"));
                let index_parts: Vec<&str> = if partial {
                    let mut index: Vec<&str> = full.to_vec();
                    let tail = index.pop()?;
                    index.push(tail.trim_end_matches(".p"));
                    index
                } else {
                    rest.to_vec()
                };
                index_parts.iter().all(|p| number(p)) && (!partial || last.bytes().all(|b| b.is_ascii_digit()))
            }
            _ => false,
        };
        valid.then(|| self.tiles().join("tile").join(path))
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("ledger.json")
    }
    pub fn segments(&self) -> PathBuf {
        self.dir.join("segments")
    }
    pub fn keys(&self) -> PathBuf {
        self.dir.join("keys")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }
    pub fn latest_checkpoint(&self) -> PathBuf {
        self.checkpoints().join("latest")
    }
    /// Root of the C2SP tiles, `tiles/tile/<L>/<N>[.p/<W>]`, and of the
    /// tiles' inner nodes, `tiles/inner/<L>` (never served: [`Paths::tile`]
    /// names only files under `tiles/tile/`).
    pub fn tiles(&self) -> PathBuf {
        self.dir.join("tiles")
    }
    /// The append path's index: ids, case versions, registry (`crate::index`).
    pub fn index(&self) -> PathBuf {
        self.dir.join("index.redb")
    }
    /// The owner's lock file.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("lock")
    }
}

/// The witness cosignature lines kept for checkpoint `size`, if any.
pub fn read_cosignatures(paths: &Paths, size: u64) -> Option<String> {
    std::fs::read_to_string(paths.cosignatures(size)).ok()
}

/// Keeps witness cosignature lines for checkpoint `size`: `lines` are
/// (witness name, the whole line) pairs already verified by the caller; a
/// witness's new line replaces its old one. Written atomically.
pub fn add_cosignatures(paths: &Paths, size: u64, lines: &[(String, String)]) -> Result<(), LedgerError> {
    let path = paths.cosignatures(size);
    let mut kept = std::collections::BTreeMap::new();
    if let Some(existing) = read_cosignatures(paths, size) {
        for line in existing.lines() {
            let name = line.trim_start_matches("— ").split(' ').next().unwrap_or_default().to_owned();
            kept.insert(name, format!("{line}\n"));
        }
    }
    for (witness, line) in lines {
        kept.insert(witness.clone(), format!("{}\n", line.trim_end_matches('\n')));
    }
    let all: String = kept.into_values().collect();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| LedgerError::Config { path: parent.display().to_string(), reason: e.to_string() })?;
    }
    write_atomic(&path, all.as_bytes())
}

/// The one process that may write a ledger directory. Every command that
/// writes (serve, append, init, checkpoint, rebuild) holds it; it is an
/// OS lock (`flock`) on `DIR/lock`, so it ends with the process however the
/// process ends. The file names the holder's pid for the refusal message.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, LedgerError> {
        let path = Paths { dir: dir.to_owned() }.lock();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = if holder.trim().is_empty() { "pid unknown".into() } else { holder.trim().to_owned() };
                return Err(LedgerError::Locked { dir: dir.display().to_string(), holder });
            }
            Err(TryLockError::Error(error)) => return Err(io(format!("locking {}", path.display()))(error).into()),
        }
        let command: Vec<String> = std::env::args().take(2).collect();
        let holder = format!("pid {} ({})\n", std::process::id(), command.join(" "));
        file.set_len(0)
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(io(format!("writing {}", path.display())))?;
        Ok(Self { _file: file })
    }
}

/// Creates a ledger directory with the given keys. The registry root's secret
/// key is stored only if given (a real deployment keeps it elsewhere).
pub fn init(
    dir: &Path,
    origin: &str,
    log_key: &SigningKey,
    root: PublicKey,
    root_secret: Option<&SigningKey>,
) -> Result<LedgerConfig, LedgerError> {
    let paths = Paths { dir: dir.to_owned() };
    if paths.config().exists() {
        return Err(LedgerError::Exists(dir.display().to_string()));
    }
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let _lock = DirLock::acquire(dir)?;
    if paths.config().exists() {
        return Err(LedgerError::Exists(dir.display().to_string()));
    }
    for sub in [paths.segments(), paths.keys(), paths.checkpoints()] {
        std::fs::create_dir_all(&sub).map_err(io(format!("creating {}", sub.display())))?;
    }
    keyfile::write(&paths.keys().join("log.key"), log_key, false)?;
    if let Some(secret) = root_secret {
        keyfile::write(&paths.keys().join("registry-root.key"), secret, false)?;
    }
    let note_key = NoteKey::new(origin, PublicKey(log_key.verifying_key().to_bytes()))
        .map_err(|error| LedgerError::Config { path: "origin".into(), reason: error.to_string() })?;
    let config = LedgerConfig {
        format: LEDGER_FORMAT,
        origin: origin.into(),
        registry_root: root.to_hex(),
        log_key: note_key.verifier_string(),
    };
    let text = serde_json::to_string_pretty(&config).unwrap_or_default() + "\n";
    write_atomic(&paths.config(), text.as_bytes())?;
    Ok(config)
}

/// Creates a replica's ledger directory: the primary's `ledger.json` (its
/// origin, registry root and log verifier key, all public) and no keys: a
/// replica never signs the log's checkpoints, it adopts the primary's.
pub fn init_replica(dir: &Path, config: &LedgerConfig) -> Result<(), LedgerError> {
    let paths = Paths { dir: dir.to_owned() };
    if paths.config().exists() {
        return Err(LedgerError::Exists(dir.display().to_string()));
    }
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let _lock = DirLock::acquire(dir)?;
    for sub in [paths.segments(), paths.keys(), paths.checkpoints()] {
        std::fs::create_dir_all(&sub).map_err(io(format!("creating {}", sub.display())))?;
    }
    let text = serde_json::to_string_pretty(config).unwrap_or_default() + "\n";
    write_atomic(&paths.config(), text.as_bytes())
}

/// Writes a file so that readers see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LedgerError> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes).map_err(io(format!("writing {}", temporary.display())))?;
    std::fs::File::open(&temporary)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("syncing {}", temporary.display())))?;
    std::fs::rename(&temporary, path).map_err(io(format!("renaming to {}", path.display())))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent).map_err(io(format!("syncing {}", parent.display())))?;
    }
    Ok(())
}

/// Reads `ledger.json`.
pub fn read_config(dir: &Path) -> Result<(LedgerConfig, PublicKey, NoteKey), LedgerError> {
    let path = Paths { dir: dir.to_owned() }.config();
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|error| LedgerError::Config {
        path: shown.clone(),
        reason: format!("{error}; is this a ledger directory (docket init --dir DIR)?"),
    })?;
    let config: LedgerConfig = serde_json::from_str(&text)
        .map_err(|error| LedgerError::Config { path: shown.clone(), reason: error.to_string() })?;
    if config.format != LEDGER_FORMAT {
        return Err(LedgerError::Config {
            path: shown,
            reason: format!("format {} is not {LEDGER_FORMAT}", config.format),
        });
    }
    let root = PublicKey::from_hex(&config.registry_root)
        .map_err(|reason| LedgerError::Config { path: shown.clone(), reason })?;
    let log_key = NoteKey::parse(&config.log_key)
        .map_err(|error| LedgerError::Config { path: shown, reason: error.to_string() })?;
    Ok((config, root, log_key))
}

/// Signs and stores the checkpoints of one ledger directory. Sizes only
/// grow, and every checkpoint is of the one tree the log keeps, so it never
/// signs two inconsistent checkpoints.
#[derive(Debug)]
pub struct Checkpointer {
    paths: Paths,
    key: NoteKey,
    latest: Option<Checkpoint>,
}

impl Checkpointer {
    /// The newest checkpoint, if any.
    pub fn latest(&self) -> Option<&Checkpoint> {
        self.latest.as_ref()
    }

    /// The log's verifier key.
    pub fn key(&self) -> &NoteKey {
        &self.key
    }

    /// Signs a checkpoint of the first `size` records of `tree` unless the
    /// latest one already has that size; returns the signed note.
    pub fn sign(&mut self, tree: &Tree, size: u64, signing: &SigningKey) -> Result<String, LedgerError> {
        self.sign_with(size, &|| tree.root(size), &|level, index| tree.tile(level, index, size), signing)
    }

    /// As [`Checkpointer::sign`] on a tree the writer keeps extending: the
    /// tree is locked for each lookup only, never across a file write.
    pub fn sign_shared(&mut self, tree: &SharedTree, size: u64, signing: &SigningKey) -> Result<String, LedgerError> {
        self.sign_with(
            size,
            &|| read_lock(tree).root(size),
            &|level, index| read_lock(tree).tile(level, index, size),
            signing,
        )
    }

    /// Adopts a checkpoint the primary signed (a replica's): checks its
    /// signature and origin, that it is not smaller than the latest, and
    /// that the tree has its root at its size; then writes the tiles it
    /// needs and stores it as the latest, as if signed here.
    pub fn adopt(&mut self, tree: &SharedTree, note: &str) -> Result<Checkpoint, LedgerError> {
        let checkpoint = open_checkpoint(note, &self.key)?;
        let size = checkpoint.size;
        if let Some(latest) = &self.latest {
            if latest.size > size {
                return Err(LedgerError::Checkpoint(format!("refusing size {size} after size {}", latest.size)));
            }
        }
        if read_lock(tree).root(size) != Some(checkpoint.root) {
            return Err(LedgerError::Checkpoint(format!("the log's root at size {size} is not the checkpoint's")));
        }
        let tile = |level, index| read_lock(tree).tile(level, index, size);
        write_tiles(&self.paths.tiles(), &tile, self.latest.as_ref().map_or(0, |c| c.size), size)?;
        write_atomic(&self.paths.checkpoints().join(format!("{size:020}")), note.as_bytes())?;
        write_atomic(&self.paths.latest_checkpoint(), note.as_bytes())?;
        self.latest = Some(checkpoint.clone());
        Ok(checkpoint)
    }

    fn sign_with(
        &mut self,
        size: u64,
        root: &dyn Fn() -> Option<Hash>,
        tile: &dyn Fn(u8, u64) -> Option<Vec<Hash>>,
        signing: &SigningKey,
    ) -> Result<String, LedgerError> {
        if let Some(latest) = &self.latest {
            if latest.size == size {
                return std::fs::read_to_string(self.paths.latest_checkpoint())
                    .map_err(|error| LedgerError::Checkpoint(error.to_string()));
            }
            if latest.size > size {
                return Err(LedgerError::Checkpoint(format!(
                    "refusing to sign size {size} after size {}",
                    latest.size
                )));
            }
        }
        let root = root().ok_or_else(|| LedgerError::Checkpoint(format!("the tree has no size {size}")))?;
        // Tiles first: a checkpoint is only published once every tile it needs exists.
        write_tiles(&self.paths.tiles(), tile, self.latest.as_ref().map_or(0, |c| c.size), size)?;
        let checkpoint = Checkpoint { origin: self.key.name.clone(), size, root, extensions: Vec::new() };
        let signed = note::sign(&checkpoint.to_text(), &self.key, signing)
            .map_err(|e| LedgerError::Checkpoint(e.to_string()))?;
        write_atomic(&self.paths.checkpoints().join(format!("{size:020}")), signed.as_bytes())?;
        write_atomic(&self.paths.latest_checkpoint(), signed.as_bytes())?;
        self.latest = Some(checkpoint);
        Ok(signed)
    }
}

/// Writes the C2SP tiles a checkpoint of `size` needs that a checkpoint of
/// `previous` did not: full tiles completed since, and the partial tile at the
/// right edge of each level. Full tiles are immutable; partial tiles are
/// replaced by the full tile once it completes. `tile(level, index)` gives
/// the tile's hashes at `size`.
pub fn write_tiles(
    dir: &Path,
    tile: &dyn Fn(u8, u64) -> Option<Vec<Hash>>,
    previous: u64,
    size: u64,
) -> Result<(), LedgerError> {
    let mut level = 0u8;
    while level < 8 && (size >> (8 * level as u32)) > 0 {
        let hashes = size >> (8 * level as u32);
        let before = previous >> (8 * level as u32);
        let first = before / TILE_WIDTH;
        let last = hashes.div_ceil(TILE_WIDTH);
        for index in first..last {
            let Some(tile) = tile(level, index) else { continue };
            let width = tile.len() as u64;
            let path = dir.join(tile_path(level, index, width));
            if width == TILE_WIDTH && path.exists() {
                // Written by the tree when it completed the tile, not synced:
                // made durable before a checkpoint that needs it is signed.
                File::open(&path)
                    .and_then(|file| file.sync_all())
                    .and_then(|()| path.parent().map_or(Ok(()), sync_dir))
                    .map_err(io(format!("syncing {}", path.display())))?;
                continue;
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
            }
            write_atomic(&path, &tile.concat())?;
        }
        level += 1;
    }
    Ok(())
}

/// The ledger's tree, its full tiles in `tiles/` ([`TILE_CACHE_TILES`] of
/// them cached), rebuilt from `segments/` when a tile is missing or wrong.
pub fn tree_on_disk(paths: &Paths) -> Tree {
    let reader = Reader::new(paths.segments());
    let source = move |start: u64, count: u64| -> Result<Vec<Hash>, String> {
        let mut leaves = Vec::with_capacity(count as usize);
        reader
            .read_from(start, None, |frame| {
                leaves.push(crate::frame::leaf(frame.seq, frame.system_time, &frame.wire));
                if leaves.len() as u64 == count {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(leaves)
    };
    Tree::on_disk(&paths.tiles(), TILE_CACHE_TILES, Some(Box::new(source)))
}

/// Scans the log into a tree on disk and an indexed state and checks it
/// against the latest checkpoint. `resumed`: from the tiles up to the
/// checkpoint and the index's point; otherwise from the first record, with
/// the index emptied. Each step's time goes to `opened`.
fn open_log(
    paths: &Paths,
    config: &Config,
    root: PublicKey,
    latest: Option<&Checkpoint>,
    cut_damaged_write: bool,
    resumed: bool,
    opened: &mut Opened,
) -> Result<(Log<FsStorage>, Recovery), LedgerError> {
    let index_failed = |reason: String| {
        LedgerError::Log(LogError::Io {
            context: format!("opening {}", paths.index().display()),
            source: std::io::Error::other(reason),
        })
    };
    let mut step = Instant::now();
    let (index, indexed) = if resumed {
        Index::open(&paths.index(), Reader::new(paths.segments()))
    } else {
        Index::create(&paths.index(), Reader::new(paths.segments())).map(|i| (i, None))
    }
    .map_err(index_failed)?;
    opened.lap("index", &mut step);
    let tree = if resumed { resume_tree(paths, latest, opened)? } else { tree_on_disk(paths) };
    opened.lap("tree", &mut step);
    let resume = Resume {
        tree,
        state: State::indexed(root, index, indexed.as_ref()),
        indexed: indexed.as_ref().map_or(0, |i| i.through),
        checksum: indexed.as_ref().map_or([0; 32], |i| i.checksum),
    };
    let storage = FsStorage::new(paths.segments());
    let opening = Log::scan_resumed(storage, config.clone(), root, |_| {}, cut_damaged_write, resume)?;
    opened.lap("scan", &mut step);
    check_covered(opening.tree(), opening.size(), latest)?;
    opened.lap("check", &mut step);
    let finished = opening.finish()?;
    opened.lap("finish", &mut step);
    Ok(finished)
}

/// The ledger's tree at the latest checkpoint's last whole tile: from the
/// tiles that checkpoint wrote (a few files, checked against its root), or
/// if they do not give it, from every level-1 tile (`size / 65,536` of them,
/// 255 hashes each; checked against the checkpoint after the scan).
fn resume_tree(paths: &Paths, latest: Option<&Checkpoint>, opened: &mut Opened) -> Result<Tree, LedgerError> {
    let Some(checkpoint) = latest else { return Ok(tree_on_disk(paths)) };
    match tree_on_disk(paths).resume_at_checkpoint(checkpoint.size, &checkpoint.root) {
        Ok(tree) => Ok(tree),
        Err(reason) => {
            opened.fallbacks.push(reason);
            let tiled = checkpoint.size - checkpoint.size % TILE_WIDTH;
            tree_on_disk(paths).resume(tiled).map_err(LedgerError::Checkpoint)
        }
    }
}

/// Reads the latest signed checkpoint, if there is one.
fn read_latest(paths: &Paths, key: &NoteKey) -> Result<Option<Checkpoint>, LedgerError> {
    match std::fs::read_to_string(paths.latest_checkpoint()) {
        Ok(text) => Ok(Some(open_checkpoint(&text, key)?)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(LedgerError::Checkpoint(format!("reading the latest checkpoint: {error}"))),
    }
}

/// Refuses a log that lost or changed records a signed checkpoint covers.
fn check_covered(tree: &Tree, size: u64, checkpoint: Option<&Checkpoint>) -> Result<(), LedgerError> {
    let Some(checkpoint) = checkpoint else { return Ok(()) };
    if tree.root(checkpoint.size) != Some(checkpoint.root) {
        return Err(LedgerError::Checkpoint(format!(
            "the log has {size} records and does not match checkpoint size {}: acknowledged records are missing or changed",
            checkpoint.size
        )));
    }
    Ok(())
}

/// How a ledger or a snapshot was opened: the time of each step, in order,
/// for the operator's log (a start that grows with history shows where).
#[derive(Debug, Clone, Default)]
pub struct Opened {
    /// Each step's name and time.
    pub steps: Vec<(&'static str, Duration)>,
    /// Why a faster way was not taken, each time one was not (a damaged
    /// file the open went around).
    pub fallbacks: Vec<String>,
}

impl Opened {
    /// Ends step `name`, begun at `started`, and begins the next one.
    fn lap(&mut self, name: &'static str, started: &mut Instant) {
        let now = Instant::now();
        self.steps.push((name, now - *started));
        *started = now;
    }

    /// The steps as `name 1.2 ms, ...`.
    pub fn summary(&self) -> String {
        let steps: Vec<String> =
            self.steps.iter().map(|(name, time)| format!("{name} {:.1} ms", time.as_secs_f64() * 1e3)).collect();
        let mut summary = steps.join(", ");
        for reason in &self.fallbacks {
            summary.push_str(&format!("; not resumed the fast way: {reason}"));
        }
        summary
    }
}

/// An open ledger, owned by this process until it is dropped.
#[derive(Debug)]
pub struct Ledger {
    pub paths: Paths,
    pub config: LedgerConfig,
    pub log: Log<FsStorage>,
    pub recovery: Recovery,
    pub checkpointer: Checkpointer,
    /// How the open went, step by step.
    pub opened: Opened,
    lock: DirLock,
}

impl Ledger {
    /// Opens a ledger for writing: takes the directory's lock, reads and
    /// checks the log without writing, checks it against the latest signed
    /// checkpoint (a log shorter than a checkpoint, or with another root at
    /// its size, has lost acknowledged records and is refused), and only
    /// then cuts an unacknowledged tail. A refused open leaves every byte as
    /// it was.
    pub fn open(dir: &Path, config: Config) -> Result<Self, LedgerError> {
        Self::open_with(dir, config, false)
    }

    /// As [`Ledger::open`]; with `cut_damaged_write`, the operator's
    /// explicit recovery after a power loss (`Log::scan_with`): damage in
    /// the last write is cut with it, unless a signed checkpoint covers it.
    pub fn open_with(dir: &Path, config: Config, cut_damaged_write: bool) -> Result<Self, LedgerError> {
        let mut opened = Opened::default();
        let mut step = Instant::now();
        let lock = DirLock::acquire(dir)?;
        let (ledger_config, root, log_key) = read_config(dir)?;
        let paths = Paths { dir: dir.to_owned() };
        let latest = read_latest(&paths, &log_key)?;
        opened.lap("lock and checkpoint", &mut step);
        // From the on-disk tiles and index and the records after them; if
        // that fails (a damaged tile or index), from the whole log.
        let resumed = !cut_damaged_write;
        let (log, recovery) =
            match open_log(&paths, &config, root, latest.as_ref(), cut_damaged_write, resumed, &mut opened) {
                Err(error) if resumed => {
                    opened.fallbacks.push(error.to_string());
                    opened.lap("resumed open failed", &mut step);
                    open_log(&paths, &config, root, latest.as_ref(), false, false, &mut opened)?
                }
                result => result?,
            };
        let checkpointer = Checkpointer { paths: paths.clone(), key: log_key, latest };
        Ok(Self { paths, config: ledger_config, log, recovery, checkpointer, opened, lock })
    }

    /// The newest checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpointer.latest()
    }

    /// Signs a checkpoint of the whole log unless the latest one covers it.
    pub fn checkpoint(&mut self, signing: &SigningKey) -> Result<String, LedgerError> {
        self.checkpointer.sign(&self.log.tree(), self.log.size(), signing)
    }

    /// The log, the checkpointer and the directory's lock, for handing to a
    /// sequencer and a checkpoint worker: keep the lock until both are done.
    pub fn into_parts(self) -> (Log<FsStorage>, Checkpointer, DirLock) {
        (self.log, self.checkpointer, self.lock)
    }

    /// The log's checkpoint key from `keys/log.key`.
    pub fn read_log_key(&self) -> Result<SigningKey, LedgerError> {
        Ok(keyfile::read(&self.paths.keys().join("log.key"))?)
    }
}

/// A ledger read without taking its lock, beside a live writer or none:
/// the committed log's tree and the latest checkpoint, which it matches.
/// Nothing is written.
#[derive(Debug)]
pub struct Snapshot {
    pub paths: Paths,
    pub config: LedgerConfig,
    /// The tree of the committed log as read.
    pub tree: Tree,
    pub latest: Option<Checkpoint>,
    /// How the open went, step by step.
    pub opened: Opened,
}

impl Snapshot {
    /// Reads the latest checkpoint first, then the log: a writer only signs
    /// sizes it has written, so the log read afterwards covers the checkpoint.
    ///
    /// The tree resumes from the stored tiles up to the checkpoint and reads
    /// only the records after them; if that does not give the checkpoint's
    /// root (a damaged tile), it is built from the whole log.
    pub fn open(dir: &Path) -> Result<Self, LedgerError> {
        let mut opened = Opened::default();
        let mut step = Instant::now();
        let (config, _, log_key) = read_config(dir)?;
        let paths = Paths { dir: dir.to_owned() };
        let latest = read_latest(&paths, &log_key)?;
        opened.lap("checkpoint", &mut step);
        let resumed = resume_tree(&paths, latest.as_ref(), &mut opened).and_then(|tree| {
            opened.lap("tree", &mut step);
            let tree = read_tree(&paths, tree)?;
            opened.lap("tail", &mut step);
            check_covered(&tree, tree.size(), latest.as_ref())?;
            opened.lap("check", &mut step);
            Ok(tree)
        });
        let tree = match resumed {
            Ok(tree) => tree,
            Err(error) => {
                opened.fallbacks.push(error.to_string());
                opened.lap("resumed open failed", &mut step);
                let tree = read_tree(&paths, tree_on_disk(&paths))?;
                check_covered(&tree, tree.size(), latest.as_ref())?;
                opened.lap("whole log", &mut step);
                tree
            }
        };
        Ok(Self { paths, config, tree, latest, opened })
    }

    /// Records in the committed log as read.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }
}

/// Pushes the leaves of the committed records from the tree's size on.
fn read_tree(paths: &Paths, mut tree: Tree) -> Result<Tree, LedgerError> {
    Reader::new(paths.segments()).read_from(tree.size(), None, |frame| {
        tree.push(crate::frame::leaf(frame.seq, frame.system_time, &frame.wire));
        std::ops::ControlFlow::Continue(())
    })?;
    Ok(tree)
}

/// What the checkpoint worker has done, for health checks and metrics.
#[derive(Debug, Clone, Default)]
pub struct CheckpointStatus {
    /// Records known durable (the log's size as last reported).
    pub durable: u64,
    /// Size of the latest signed checkpoint.
    pub signed: u64,
    /// When this process last signed a checkpoint.
    pub signed_at: Option<Instant>,
    /// Failed attempts since the last success.
    pub failures: u64,
    /// Why the last attempt failed, while it has not succeeded since.
    pub last_error: Option<String>,
}

impl CheckpointStatus {
    /// Durable records that no signed checkpoint covers yet.
    pub fn behind(&self) -> u64 {
        self.durable.saturating_sub(self.signed)
    }
}

#[derive(Debug)]
struct WorkerState {
    status: CheckpointStatus,
    stopping: bool,
}

type WorkerShared = Arc<(Mutex<WorkerState>, Condvar)>;

fn lock_worker(shared: &WorkerShared) -> std::sync::MutexGuard<'_, WorkerState> {
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Longest wait between two failed checkpoint attempts.
pub const CHECKPOINT_BACKOFF_MS_MAX: u64 = 30_000;
/// Attempts at the final checkpoint when the worker stops.
pub const FINAL_CHECKPOINT_ATTEMPTS: u32 = 3;

/// Signs checkpoints on a thread of its own, off the writer's path: at most
/// `interval` after a record becomes durable, retrying a failed attempt with
/// exponential backoff (never counting it as done), and once more when it
/// stops.
#[derive(Debug)]
pub struct CheckpointWorker {
    shared: WorkerShared,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Tells the worker how far the log is durable; cheap, for the writer thread.
#[derive(Debug, Clone)]
pub struct DurableNotifier(WorkerShared);

impl DurableNotifier {
    /// The log now holds `size` durable records.
    pub fn durable(&self, size: u64) {
        let mut state = lock_worker(&self.0);
        if size > state.status.durable {
            state.status.durable = size;
            self.0 .1.notify_one();
        }
    }
}

impl CheckpointWorker {
    /// Starts the worker over the log's shared tree, whose first `durable`
    /// records are durable now.
    pub fn start(
        mut checkpointer: Checkpointer,
        tree: SharedTree,
        key: SigningKey,
        durable: u64,
        interval: Duration,
    ) -> Self {
        let signed = checkpointer.latest().map_or(0, |c| c.size);
        let status = CheckpointStatus { durable, signed, ..CheckpointStatus::default() };
        let shared: WorkerShared = Arc::new((Mutex::new(WorkerState { status, stopping: false }), Condvar::new()));
        let worker_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("docket-checkpoint".into())
            .spawn(move || run_worker(&mut checkpointer, &tree, &key, &worker_shared, interval))
            .unwrap_or_else(|error| panic!("cannot start the checkpoint thread: {error}"));
        Self { shared, thread: Some(thread) }
    }

    /// A handle for the writer to report durable sizes.
    pub fn notifier(&self) -> DurableNotifier {
        DurableNotifier(self.shared.clone())
    }

    /// What the worker has done so far.
    pub fn status(&self) -> CheckpointStatus {
        lock_worker(&self.shared).status.clone()
    }

    /// Signs the final checkpoint (of everything reported durable) and ends
    /// the thread; returns the final status.
    pub fn stop(mut self) -> CheckpointStatus {
        lock_worker(&self.shared).stopping = true;
        self.shared.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.status()
    }
}

impl Drop for CheckpointWorker {
    fn drop(&mut self) {
        lock_worker(&self.shared).stopping = true;
        self.shared.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_worker(
    checkpointer: &mut Checkpointer,
    tree: &SharedTree,
    key: &SigningKey,
    shared: &WorkerShared,
    interval: Duration,
) {
    let mut next_attempt = Instant::now();
    let mut final_attempts = 0;
    loop {
        let size = {
            let mut state = lock_worker(shared);
            loop {
                let status = &state.status;
                let due = status.durable > status.signed && Instant::now() >= next_attempt;
                if state.stopping || due {
                    break;
                }
                let wait = if status.durable > status.signed {
                    next_attempt.saturating_duration_since(Instant::now())
                } else {
                    interval
                };
                state = shared.1.wait_timeout(state, wait).unwrap_or_else(PoisonError::into_inner).0;
            }
            if state.status.durable <= state.status.signed || final_attempts >= FINAL_CHECKPOINT_ATTEMPTS {
                if state.stopping {
                    return;
                }
                continue;
            }
            if state.stopping {
                final_attempts += 1;
            }
            state.status.durable
        };
        let result = checkpointer.sign_shared(tree, size, key);
        let mut state = lock_worker(shared);
        let status = &mut state.status;
        match result {
            Ok(_) => {
                status.signed = size;
                status.signed_at = Some(Instant::now());
                status.failures = 0;
                status.last_error = None;
                next_attempt = Instant::now() + interval;
            }
            Err(error) => {
                status.failures += 1;
                status.last_error = Some(format!("checkpoint at size {size}: {error}"));
                let backoff = interval.saturating_mul(1 << status.failures.min(16) as u32);
                next_attempt = Instant::now() + backoff.min(Duration::from_millis(CHECKPOINT_BACKOFF_MS_MAX));
            }
        }
    }
}

/// Verifies a signed checkpoint note against the log key and parses it.
pub fn open_checkpoint(text: &str, key: &NoteKey) -> Result<Checkpoint, LedgerError> {
    let (body, _) = note::open(text, std::slice::from_ref(key)).map_err(|e| LedgerError::Checkpoint(e.to_string()))?;
    let checkpoint = Checkpoint::parse(body).map_err(|e| LedgerError::Checkpoint(e.to_string()))?;
    if checkpoint.origin != key.name {
        return Err(LedgerError::Checkpoint(format!(
            "origin {:?} is not this log's ({:?})",
            checkpoint.origin, key.name
        )));
    }
    Ok(checkpoint)
}
