//! `docket verify --url`: checks a served log as a witness does, from its
//! C2SP tlog-tiles prefix only (`<prefix>/checkpoint`,
//! `<prefix>/tile/<L>/<N>[.p/<W>]`, `<prefix>/tile/entries/<N>[.p/<W>]`).
//!
//! Written from the specs (C2SP tlog-checkpoint, signed-note, tlog-tiles,
//! RFC 6962 hashing), not from docket-log's tree, so that a mistake in the
//! server's tiles is caught rather than repeated: the checkpoint's
//! signature by the operator's key; every level-0 tile; every higher tile
//! against the tiles below it; the root rebuilt from the leaves against the
//! checkpoint's. With a reader that may read entry bundles (the oversight
//! role), every entry is hashed against its leaf, its seq checked, and its
//! event's signature verified. With `--watch`, each new checkpoint is proved
//! consistent with the last one seen: the leaves already verified must be a
//! prefix of the new tree (the tiles that cover them are fetched again and
//! compared), and the new root is rebuilt.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use docket_client::Client;
use docket_log::note::{self, Checkpoint, NoteKey};
use docket_model::SignedEvent;
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
type Hash = [u8; 32];

/// Hashes per tile and entries per bundle (C2SP tlog-tiles).
const TILE_WIDTH: u64 = 256;

/// A progress line on a terminal every this many level-0 tiles (65,536 leaves).
const PROGRESS_TILES: u64 = 256;

/// Most leaves `verify --url` holds (32 bytes each, in memory): 2 GiB.
pub const FOLLOW_LEAVES_MAX: u64 = 1 << 26;

/// What the log is checked against, and how.
#[derive(Debug)]
pub struct Options {
    /// The tlog-tiles prefix, e.g. `https://host/log`.
    pub prefix: String,
    /// The operator's checkpoint key.
    pub log_key: NoteKey,
    /// Whether to fetch and check entry bundles (needs the oversight role).
    pub entries: bool,
    /// An older checkpoint (note text) the log must be consistent with.
    pub older: Option<String>,
    /// Poll for new checkpoints this often, forever.
    pub watch: Option<Duration>,
    /// Print JSON lines instead of text.
    pub json: bool,
}

/// A check that failed: the log is not what its checkpoint says (exit 1).
#[derive(Debug)]
struct Mismatch(String);

/// What the follower has verified so far.
#[derive(Debug, Default)]
struct Follower {
    leaves: Vec<Hash>,
    root: Option<Hash>,
    tiles_fetched: u64,
    entries_checked: u64,
}

/// RFC 6962 leaf hash.
fn leaf_hash(entry: &[u8]) -> Hash {
    Sha256::new().chain_update([0]).chain_update(entry).finalize().into()
}

/// RFC 6962 interior node hash.
fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([1]).chain_update(left).chain_update(right).finalize().into()
}

/// RFC 6962 `MTH` of leaf hashes: full subtrees left to right on a stack,
/// then the rest folded from the right.
fn tree_root(leaves: &[Hash]) -> Hash {
    let mut stack: Vec<(Hash, u32)> = Vec::new();
    for leaf in leaves {
        let mut node = (*leaf, 0);
        while let Some(&(left, height)) = stack.last() {
            if height != node.1 {
                break;
            }
            stack.pop();
            node = (node_hash(&left, &node.0), height + 1);
        }
        stack.push(node);
    }
    let Some((mut root, _)) = stack.pop() else { return Sha256::digest([]).into() };
    while let Some((left, _)) = stack.pop() {
        root = node_hash(&left, &root);
    }
    root
}

/// The tlog-tiles index path: 3-digit groups, `x` before all but the last.
fn index_path(index: u64) -> String {
    let digits = index.to_string();
    let padded = format!("{}{digits}", "0".repeat((3 - digits.len() % 3) % 3));
    let groups: Vec<&str> = (0..padded.len()).step_by(3).map(|at| &padded[at..at + 3]).collect();
    let (last, rest) = groups.split_last().map_or(("000", &[][..]), |(l, r)| (*l, r));
    rest.iter().map(|g| format!("x{g}/")).collect::<String>() + last
}

/// `<N>` or `<N>.p/<W>`.
fn tile_name(index: u64, width: u64) -> String {
    if width < TILE_WIDTH {
        format!("{}.p/{width}", index_path(index))
    } else {
        index_path(index)
    }
}

/// Fetches `path` under the prefix: the body of a 200, else an error naming the status.
fn fetch(client: &Client, prefix_path: &str, path: &str) -> Result<Vec<u8>> {
    let full = format!("{prefix_path}/{path}");
    let response = client.get(&full).with_context(|| format!("GET {}{full}", client.base()))?;
    if response.status != 200 {
        bail!("GET {}{full}: HTTP {}: {}", client.base(), response.status, response.text().trim());
    }
    Ok(response.body)
}

/// A tile's hashes (`width` of them). A partial tile that is gone (the log
/// grew) is read from the full tile, as the spec allows.
fn fetch_tile(client: &Client, prefix: &str, level: u32, index: u64, width: u64) -> Result<Vec<Hash>> {
    let name = format!("tile/{level}/{}", tile_name(index, width));
    let bytes = match fetch(client, prefix, &name) {
        Err(_) if width < TILE_WIDTH => fetch(client, prefix, &format!("tile/{level}/{}", index_path(index)))
            .map(|bytes| bytes[..bytes.len().min(width as usize * 32)].to_vec())?,
        other => other?,
    };
    if bytes.len() as u64 != width * 32 {
        bail!(Mismatch(format!("{name}: {} bytes, expected {width} hashes ({} bytes)", bytes.len(), width * 32)));
    }
    Ok(bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect())
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Mismatch {}

/// Fetches and checks the checkpoint: signed by the operator's key, well formed.
fn fetch_checkpoint(client: &Client, prefix: &str, key: &NoteKey) -> Result<Checkpoint> {
    let bytes = fetch(client, prefix, "checkpoint")?;
    let text = String::from_utf8(bytes).map_err(|_| Mismatch("checkpoint: not UTF-8".into()))?;
    open_checkpoint(&text, key).map_err(|e| Mismatch(format!("checkpoint: {e}")).into())
}

fn open_checkpoint(text: &str, key: &NoteKey) -> Result<Checkpoint> {
    let (body, _) = note::open(text, std::slice::from_ref(key))?;
    let checkpoint = Checkpoint::parse(body)?;
    if checkpoint.origin != key.name {
        bail!("origin {:?} is not the key's name {:?}", checkpoint.origin, key.name);
    }
    Ok(checkpoint)
}

impl Follower {
    /// Moves from what was verified to `checkpoint`: fetches the level-0
    /// tiles from the first one not yet complete, checks the leaves already
    /// held are unchanged, checks the higher tiles and the root, and (with
    /// `entries`) the new entries.
    fn advance(&mut self, client: &Client, options: &Options, checkpoint: &Checkpoint) -> Result<()> {
        let (old, new) = (self.leaves.len() as u64, checkpoint.size);
        if new < old {
            bail!(Mismatch(format!("checkpoint size {new} is smaller than the size {old} seen before")));
        }
        if new > FOLLOW_LEAVES_MAX {
            bail!("checkpoint size {new}: more than FOLLOW_LEAVES_MAX = {FOLLOW_LEAVES_MAX} leaves held in memory");
        }
        let prefix = options.prefix.as_str();
        let (first_tile, tiles) = (old / TILE_WIDTH, new.div_ceil(TILE_WIDTH));
        let progress = std::io::IsTerminal::is_terminal(&std::io::stderr()) && tiles - first_tile > PROGRESS_TILES;
        for index in first_tile..tiles {
            if progress && index > first_tile && (index - first_tile) % PROGRESS_TILES == 0 {
                eprintln!("verify: level-0 tile {index} of {tiles} ({} leaves)", index * TILE_WIDTH);
            }
            let width = (new - index * TILE_WIDTH).min(TILE_WIDTH);
            let hashes = fetch_tile(client, prefix, 0, index, width)?;
            self.tiles_fetched += 1;
            let first = index * TILE_WIDTH;
            for (offset, hash) in hashes.into_iter().enumerate() {
                let seq = first + offset as u64;
                match self.leaves.get(seq as usize) {
                    Some(seen) if *seen != hash => bail!(Mismatch(format!(
                        "tile/0/{}: hash {offset} (seq {seq}) differs from the one verified at size {old}: \
                         the log was rewritten",
                        tile_name(index, width)
                    ))),
                    Some(_) => {}
                    None => self.leaves.push(hash),
                }
            }
            if options.entries {
                self.check_bundle(client, prefix, index, width)?;
            }
        }
        self.check_higher_tiles(client, prefix, old, new)?;
        let root = tree_root(&self.leaves);
        if root != checkpoint.root {
            bail!(Mismatch(format!(
                "the root rebuilt from the tiles ({}) is not the checkpoint's ({}) at size {new}",
                hex::encode(root),
                hex::encode(checkpoint.root)
            )));
        }
        self.root = Some(root);
        Ok(())
    }

    /// Checks the tiles of levels 1 and up that cover leaves from `old` on:
    /// each hash is the root of the full tile below it.
    fn check_higher_tiles(&mut self, client: &Client, prefix: &str, old: u64, new: u64) -> Result<()> {
        let mut below: Vec<Hash> = self.leaves.clone();
        let mut level = 1u32;
        while new >> (8 * level) > 0 {
            // This level's hashes: the roots of each full group of 256 below.
            let here: Vec<Hash> = below.chunks_exact(TILE_WIDTH as usize).map(tree_root).collect();
            let count = here.len() as u64;
            for index in (old >> (8 * level)) / TILE_WIDTH..count.div_ceil(TILE_WIDTH) {
                let width = (count - index * TILE_WIDTH).min(TILE_WIDTH);
                let served = fetch_tile(client, prefix, level, index, width)?;
                self.tiles_fetched += 1;
                let first = (index * TILE_WIDTH) as usize;
                if let Some(at) = served.iter().zip(&here[first..]).position(|(s, h)| s != h) {
                    let lower = index * TILE_WIDTH + at as u64;
                    bail!(Mismatch(format!(
                        "tile/{level}/{}: hash {at} is not the root of tile/{}/{} below it",
                        tile_name(index, width),
                        level - 1,
                        index_path(lower)
                    )));
                }
            }
            below = here;
            level += 1;
        }
        Ok(())
    }

    /// Fetches entry bundle `index` (`width` entries) and checks each entry:
    /// its seq, its hash against the leaf, its event's signature.
    fn check_bundle(&mut self, client: &Client, prefix: &str, index: u64, width: u64) -> Result<()> {
        let name = format!("tile/entries/{}", tile_name(index, width));
        let bytes = fetch(client, prefix, &name)?;
        let entries = split_bundle(&bytes).map_err(|e| Mismatch(format!("{name}: {e}")))?;
        if entries.len() as u64 != width {
            bail!(Mismatch(format!("{name}: {} entries, expected {width}", entries.len())));
        }
        let mut events = Vec::with_capacity(entries.len());
        for (offset, entry) in entries.iter().enumerate() {
            let seq = index * TILE_WIDTH + offset as u64;
            let fail = |what: String| Mismatch(format!("seq {seq} ({name}, entry {offset}): {what}"));
            if leaf_hash(entry) != self.leaves[seq as usize] {
                bail!(fail(format!("its hash is not leaf {offset} of tile/0/{}", tile_name(index, width))));
            }
            if entry.len() < 16 || entry[..8] != seq.to_be_bytes() {
                bail!(fail("the entry does not start with its seq".into()));
            }
            events.push(SignedEvent::from_wire(&entry[16..]).map_err(|e| fail(format!("the event: {e}")))?);
        }
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let verdicts = docket_log::verify_parallel(&events, threads);
        if let Some((offset, Err(error))) = verdicts.iter().enumerate().find(|(_, v)| v.is_err()) {
            let seq = index * TILE_WIDTH + offset as u64;
            bail!(Mismatch(format!("seq {seq} ({name}, entry {offset}): signature: {error}")));
        }
        self.entries_checked = self.entries_checked.max(index * TILE_WIDTH + width);
        Ok(())
    }
}

/// Splits an entry bundle: each entry a big-endian u16 length and its bytes.
fn split_bundle(mut bytes: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    let mut entries = vec![];
    while !bytes.is_empty() {
        let Some((length, rest)) = bytes.split_first_chunk::<2>() else {
            return Err(format!("a truncated length after entry {}", entries.len()));
        };
        let length = u16::from_be_bytes(*length) as usize;
        if rest.len() < length {
            return Err(format!("entry {} is cut short ({} of {length} bytes)", entries.len(), rest.len()));
        }
        entries.push(&rest[..length]);
        bytes = &rest[length..];
    }
    Ok(entries)
}

/// Runs the checks; with `watch`, forever (until a mismatch). `Ok(false)`
/// (exit 1) names the mismatch; an error (exit 2) is a failure to check.
pub fn run(client: &Client, options: &Options) -> Result<bool> {
    let mut follower = Follower::default();
    let prefix = options.prefix.as_str();
    let first = match check_once(client, options, &mut follower) {
        Ok(checkpoint) => checkpoint,
        Err(error) => return failed(options, error),
    };
    if let Some(older) = &options.older {
        if let Err(error) = check_older(&follower, older, &options.log_key) {
            return failed(options, error);
        }
    }
    let Some(interval) = options.watch else { return Ok(true) };
    let mut seen = first;
    loop {
        std::thread::sleep(interval);
        let checkpoint = match fetch_checkpoint(client, prefix, &options.log_key) {
            Ok(checkpoint) => checkpoint,
            Err(error) if error.is::<Mismatch>() => return failed(options, error),
            Err(error) => {
                eprintln!("warning: {error:#}; trying again in {}s", interval.as_secs());
                continue;
            }
        };
        if checkpoint.size == seen.size && checkpoint.root == seen.root {
            continue;
        }
        match follower.advance(client, options, &checkpoint) {
            Ok(()) => report(options, &follower, &checkpoint, Some(seen.size)),
            Err(error) if error.is::<Mismatch>() => return failed(options, error),
            Err(error) => {
                // Leaves fetched before the failure are kept: they were checked
                // against those already seen; the root is checked next time.
                eprintln!("warning: {error:#}; trying again in {}s", interval.as_secs());
                follower.leaves.truncate(seen.size as usize);
                continue;
            }
        }
        seen = checkpoint;
    }
}

/// The first full check: the checkpoint, every tile, (entries), the root.
fn check_once(client: &Client, options: &Options, follower: &mut Follower) -> Result<Checkpoint> {
    let checkpoint = fetch_checkpoint(client, &options.prefix, &options.log_key)?;
    follower.advance(client, options, &checkpoint)?;
    report(options, follower, &checkpoint, None);
    Ok(checkpoint)
}

/// An older checkpoint (signed by the same key) must be a prefix of what was verified.
fn check_older(follower: &Follower, older: &str, key: &NoteKey) -> Result<()> {
    let older = open_checkpoint(older, key).context("--checkpoint")?;
    let size = older.size as usize;
    if size > follower.leaves.len() {
        bail!(Mismatch(format!("the given checkpoint's size {size} is beyond the log's {}", follower.leaves.len())));
    }
    if tree_root(&follower.leaves[..size]) != older.root {
        bail!(Mismatch(format!("the given checkpoint (size {size}) is not consistent with the log: its root differs")));
    }
    Ok(())
}

/// Prints what was verified.
fn report(options: &Options, follower: &Follower, checkpoint: &Checkpoint, from: Option<u64>) {
    let root = follower.root.map(hex::encode).unwrap_or_default();
    if options.json {
        let line = serde_json::json!({
            "ok": true, "origin": checkpoint.origin, "size": checkpoint.size, "root": root,
            "consistent_with": from, "tiles_fetched": follower.tiles_fetched,
            "entries_checked": options.entries.then_some(follower.entries_checked),
        });
        println!("{line}");
        return;
    }
    match from {
        None => println!(
            "ok: checkpoint {} at size {} is signed by the log key; root {root} rebuilt from {} tiles",
            checkpoint.origin, checkpoint.size, follower.tiles_fetched
        ),
        Some(old) => {
            println!("ok: size {old} -> {}: consistent (the old leaves are unchanged); root {root}", checkpoint.size)
        }
    }
    if options.entries {
        println!(
            "ok: {} entries: each hashes to its leaf, carries its seq, and its event's signature holds",
            follower.entries_checked
        );
    }
}

/// Reports a mismatch (exit 1); passes any other error on (exit 2).
fn failed(options: &Options, error: anyhow::Error) -> Result<bool> {
    let Some(mismatch) = error.downcast_ref::<Mismatch>() else { return Err(error) };
    if options.json {
        println!("{}", serde_json::json!({"ok": false, "failed": mismatch.0}));
    } else {
        println!("FAILED: {mismatch}");
    }
    Ok(false)
}

/// The operator's checkpoint key: a signed-note verifier string, or a file
/// holding one (alone, or as `log_key` of a ledger's `ledger.json`).
pub fn log_key(value: &str) -> Result<NoteKey> {
    if let Ok(key) = NoteKey::parse(value.trim()) {
        return Ok(key);
    }
    let text = std::fs::read_to_string(value)
        .with_context(|| format!("--log-key {value:?}: neither a verifier key (NAME+ID+KEY) nor a readable file"))?;
    let verifier = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => json.get("log_key").and_then(|v| v.as_str()).map(str::to_owned),
        Err(_) => Some(text.trim().to_owned()),
    };
    let verifier = verifier.with_context(|| format!("--log-key {value}: a JSON file without \"log_key\""))?;
    NoteKey::parse(&verifier).with_context(|| format!("--log-key {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_match_the_reference_definition() {
        let leaves: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for n in [0, 1, 2, 3, 5, 8, 255, 256, 257, 300] {
            assert_eq!(tree_root(&leaves[..n]), docket_log::merkle::root(&leaves[..n]), "n = {n}");
        }
    }

    #[test]
    fn index_paths_are_written_as_c2sp_writes_them() {
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(1234067), "x001/x234/067");
        assert_eq!(tile_name(1, 7), "001.p/7");
        assert_eq!(tile_name(1000, 256), "x001/000");
    }

    #[test]
    fn bundles_split_and_refuse_truncation() {
        assert_eq!(split_bundle(&[0, 1, 9, 0, 0]).unwrap(), vec![&[9][..], &[][..]]);
        assert!(split_bundle(&[0, 3, 1]).unwrap_err().contains("entry 0 is cut short"));
        assert!(split_bundle(&[0]).unwrap_err().contains("truncated length"));
    }
}
