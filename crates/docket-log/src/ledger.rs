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
//! ```

use std::path::{Path, PathBuf};

use docket_model::PublicKey;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::keyfile;
use crate::log::{io, Config, Log, LogError, Recovery};
use crate::note::{self, Checkpoint, NoteKey};
use crate::storage::{sync_dir, FsStorage};
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
    #[error("demo event {index} ({kind}) refused: {reason}")]
    DemoRefused { index: usize, kind: &'static str, reason: String },
}

/// Paths inside a ledger directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
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
    /// Root of the C2SP tiles: `tiles/tile/<L>/<N>[.p/<W>]`.
    pub fn tiles(&self) -> PathBuf {
        self.dir.join("tiles")
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
        let root = tree.root(size).ok_or_else(|| LedgerError::Checkpoint(format!("the tree has no size {size}")))?;
        // Tiles first: a checkpoint is only published once every tile it needs exists.
        write_tiles(&self.paths.tiles(), tree, self.latest.as_ref().map_or(0, |c| c.size), size)?;
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
/// replaced by the full tile once it completes.
pub fn write_tiles(dir: &Path, tree: &Tree, previous: u64, size: u64) -> Result<(), LedgerError> {
    let mut level = 0u8;
    while level < 8 && (size >> (8 * level as u32)) > 0 {
        let hashes = size >> (8 * level as u32);
        let before = previous >> (8 * level as u32);
        let first = before / TILE_WIDTH;
        let last = hashes.div_ceil(TILE_WIDTH);
        for index in first..last {
            let Some(tile) = tree.tile(level, index, size) else { continue };
            let width = tile.len() as u64;
            let path = dir.join(tile_path(level, index, width));
            if width == TILE_WIDTH && path.exists() {
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

/// An open ledger.
#[derive(Debug)]
pub struct Ledger {
    pub paths: Paths,
    pub config: LedgerConfig,
    pub log: Log<FsStorage>,
    pub recovery: Recovery,
    pub checkpointer: Checkpointer,
}

impl Ledger {
    /// Opens a ledger, recovering the log and checking it against the latest
    /// checkpoint: a log shorter than a checkpoint it signed, or with another
    /// root at that size, has lost acknowledged records and is refused.
    pub fn open(dir: &Path, config: Config) -> Result<Self, LedgerError> {
        let (ledger_config, root, log_key) = read_config(dir)?;
        let paths = Paths { dir: dir.to_owned() };
        let (log, recovery) = Log::open(FsStorage::new(paths.segments()), config, root, |_| {})?;
        let latest = match std::fs::read_to_string(paths.latest_checkpoint()) {
            Ok(text) => Some(open_checkpoint(&text, &log_key)?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(LedgerError::Checkpoint(format!("reading the latest checkpoint: {error}"))),
        };
        if let Some(checkpoint) = &latest {
            if log.tree().root(checkpoint.size) != Some(checkpoint.root) {
                return Err(LedgerError::Checkpoint(format!(
                    "the log has {} records and does not match checkpoint size {}: acknowledged records are missing or changed",
                    log.size(),
                    checkpoint.size
                )));
            }
        }
        let checkpointer = Checkpointer { paths: paths.clone(), key: log_key, latest };
        Ok(Self { paths, config: ledger_config, log, recovery, checkpointer })
    }

    /// The newest checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpointer.latest()
    }

    /// Signs a checkpoint of the whole log unless the latest one covers it.
    pub fn checkpoint(&mut self, signing: &SigningKey) -> Result<String, LedgerError> {
        self.checkpointer.sign(self.log.tree(), self.log.size(), signing)
    }

    /// The log and the checkpointer, for handing to a sequencer.
    pub fn into_parts(self) -> (Log<FsStorage>, Checkpointer) {
        (self.log, self.checkpointer)
    }

    /// The log's checkpoint key from `keys/log.key`.
    pub fn read_log_key(&self) -> Result<SigningKey, LedgerError> {
        Ok(keyfile::read(&self.paths.keys().join("log.key"))?)
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
