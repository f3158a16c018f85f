//! Sorted runs: the append path's id and case index as immutable sorted
//! files of fixed-width entries, merged in the background (a small
//! log-structured merge tree).
//!
//! Why not a B-tree: ids are BLAKE3 hashes, so every insert lands on a
//! random page. With 16k inserts a flush into a table of millions, a redb
//! B-tree copied about one 4 KiB page per new id (issue 17: ingest fell
//! from 29k to 14k events/s and `verify` from 75k to 20k/s between 1M and
//! 10M events). A run is written once, sequentially; merges rewrite each
//! entry about log4(events / 16k) times, 24 bytes at a time; a lookup
//! consults an in-memory filter per run and reads one 4 KiB block of the
//! runs whose filter says "maybe" (about 1 in 100 of those that do not
//! hold the key).
//!
//! Stored form of a run (`RUN_FORMAT` 1; golden vector in
//! `tests/golden/log-stored-forms.json`), all integers big-endian:
//! * header, 64 bytes: `docket-run\n`, the format byte, 4 zero bytes, the
//!   entry count (u64), the block count (u64), the filter's 64-bit words
//!   (u64), zeros;
//! * blocks of [`BLOCK_BYTES`]: up to [`BLOCK_ENTRIES`] entries (a 16-byte
//!   key, an 8-byte value), in key order, zero-padded, then the first 16
//!   bytes of the BLAKE3 hash of everything before them in the block;
//! * the filter's words (u64 each), then the first key of every block
//!   (16 bytes each), then the BLAKE3 hash of header, filter and keys.
//!
//! An open reads the header, the filter and the block keys (about 1.3
//! bytes an entry) and checks them against the hash; a block is checked
//! when it is read. A block that fails its check is an error naming the
//! file and the block, and its file is removed so that the next open
//! rebuilds the index from the log (the index is derived data).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The stored form's version.
pub const RUN_FORMAT: u8 = 1;
/// Bytes of a block, the unit of a lookup's read.
pub const BLOCK_BYTES: usize = 4096;
/// Bytes of an entry: a 16-byte key and an 8-byte value.
pub const ENTRY_BYTES: usize = 24;
/// Entries in a full block (4,080 bytes of entries, 16 of checksum).
pub const BLOCK_ENTRIES: usize = 170;
/// Bits of filter an entry: about 1% false positives.
pub const FILTER_BITS_PER_ENTRY: u64 = 10;
/// Fewest runs a merge takes (see `merge_window`).
pub const MERGE_FANIN: usize = 4;
/// Runs of one kind before a flush waits for the merge under way: bounds
/// the filters a lookup consults when merges fall behind.
pub const RUNS_MAX: usize = 40;

const MAGIC: &[u8; 11] = b"docket-run\n";
const HEADER_BYTES: u64 = 64;
const CHECKSUM_BYTES: usize = 16;
/// Blocks read at once by a merge.
const MERGE_READ_BLOCKS: usize = 64;

/// What a run keeps of entries with equal keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every entry (event ids: the caller confirms each candidate).
    All,
    /// The largest value (case versions, which only grow).
    Max,
}

type Entry = (u128, u64);

/// The filter's 512-bit block and bit positions of a key: mixed first, so
/// that keys which are not hashes spread too.
fn filter_probe(key: u128, blocks: u64) -> (usize, [u16; 7]) {
    let (high, low) = ((key >> 64) as u64, key as u64);
    let x = (high ^ low.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let y = (low ^ high.rotate_left(17) ^ x).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    let block = ((u128::from(x) * u128::from(blocks)) >> 64) as usize;
    let mut bits = [0u16; 7];
    for (i, bit) in bits.iter_mut().enumerate() {
        *bit = ((y >> (9 * i)) & 511) as u16;
    }
    (block, bits)
}

/// A blocked Bloom filter: every key's bits lie in one 64-byte block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Filter(Vec<u64>);

impl Filter {
    fn with_capacity(entries: u64) -> Self {
        let blocks = (entries * FILTER_BITS_PER_ENTRY).div_ceil(512).max(1);
        Self(vec![0; blocks as usize * 8])
    }

    fn blocks(&self) -> u64 {
        (self.0.len() / 8) as u64
    }

    fn insert(&mut self, key: u128) {
        let (block, bits) = filter_probe(key, self.blocks());
        for bit in bits {
            self.0[block * 8 + usize::from(bit / 64)] |= 1 << (bit % 64);
        }
    }

    fn may_contain(&self, key: u128) -> bool {
        let (block, bits) = filter_probe(key, self.blocks());
        bits.iter().all(|bit| self.0[block * 8 + usize::from(bit / 64)] & (1 << (bit % 64)) != 0)
    }
}

fn block_checksum(bytes: &[u8]) -> [u8; CHECKSUM_BYTES] {
    let mut sum = [0; CHECKSUM_BYTES];
    sum.copy_from_slice(&blake3::hash(bytes).as_bytes()[..CHECKSUM_BYTES]);
    sum
}

fn entry_at(block: &[u8], i: usize) -> Entry {
    let at = i * ENTRY_BYTES;
    let key = u128::from_be_bytes(block[at..at + 16].try_into().unwrap_or_else(|_| unreachable!("16 bytes")));
    let value = u64::from_be_bytes(block[at + 16..at + 24].try_into().unwrap_or_else(|_| unreachable!("8 bytes")));
    (key, value)
}

/// One run, open: its file, with the filter and the first key of every
/// block in memory.
#[derive(Debug)]
pub struct Run {
    number: u64,
    path: PathBuf,
    file: File,
    entries: u64,
    filter: Filter,
    fences: Vec<u128>,
}

/// The file name of run `number` of a kind.
pub fn run_name(kind: &str, number: u64) -> String {
    format!("{kind}-{number:016x}.run")
}

/// Writes a run, entries in key order, streaming.
struct RunWriter {
    path: PathBuf,
    out: BufWriter<File>,
    block: Vec<u8>,
    in_block: usize,
    entries: u64,
    last: Option<u128>,
    filter: Filter,
    fences: Vec<u128>,
}

impl RunWriter {
    /// A new run file at `path`; `capacity` bounds the entries (it sizes the filter).
    fn create(path: &Path, capacity: u64) -> Result<Self, String> {
        // Read as well as written: the finished run answers lookups through this handle.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| format!("index run {}: creating: {e}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0; HEADER_BYTES as usize])
            .map_err(|e| format!("index run {}: writing: {e}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            out,
            block: vec![0; BLOCK_BYTES],
            in_block: 0,
            entries: 0,
            last: None,
            filter: Filter::with_capacity(capacity),
            fences: Vec::new(),
        })
    }

    fn fail(&self, what: &str, error: &dyn std::fmt::Display) -> String {
        format!("index run {}: {what}: {error}", self.path.display())
    }

    fn push(&mut self, (key, value): Entry) -> Result<(), String> {
        if self.last.is_some_and(|last| key < last) {
            return Err(self.fail("writing", &"entries out of key order"));
        }
        self.last = Some(key);
        if self.in_block == 0 {
            self.fences.push(key);
        }
        let at = self.in_block * ENTRY_BYTES;
        self.block[at..at + 16].copy_from_slice(&key.to_be_bytes());
        self.block[at + 16..at + 24].copy_from_slice(&value.to_be_bytes());
        self.filter.insert(key);
        self.in_block += 1;
        self.entries += 1;
        if self.in_block == BLOCK_ENTRIES {
            self.end_block()?;
        }
        Ok(())
    }

    fn end_block(&mut self) -> Result<(), String> {
        let body = BLOCK_BYTES - CHECKSUM_BYTES;
        self.block[self.in_block * ENTRY_BYTES..body].fill(0);
        let sum = block_checksum(&self.block[..body]);
        self.block[body..].copy_from_slice(&sum);
        let block = std::mem::replace(&mut self.block, vec![0; BLOCK_BYTES]);
        self.out.write_all(&block).map_err(|e| self.fail("writing", &e))?;
        self.block = block;
        self.in_block = 0;
        Ok(())
    }

    /// Writes the tail (filter, block keys, hash) and the header, syncs
    /// the file when `sync`, and opens the run.
    fn finish(mut self, number: u64, sync: bool) -> Result<Run, String> {
        if self.in_block > 0 {
            self.end_block()?;
        }
        let header = header(self.entries, self.fences.len() as u64, self.filter.0.len() as u64);
        let tail = tail_bytes(&self.filter, &self.fences);
        let mut hasher = blake3::Hasher::new();
        hasher.update(&header);
        hasher.update(&tail);
        self.out.write_all(&tail).map_err(|e| self.fail("writing", &e))?;
        self.out.write_all(hasher.finalize().as_bytes()).map_err(|e| self.fail("writing", &e))?;
        let file = self.out.into_inner().map_err(|e| format!("index run {}: writing: {e}", self.path.display()))?;
        file.write_all_at(&header, 0).map_err(|e| format!("index run {}: writing: {e}", self.path.display()))?;
        if sync {
            file.sync_data().map_err(|e| format!("index run {}: syncing: {e}", self.path.display()))?;
        }
        Ok(Run { number, path: self.path, file, entries: self.entries, filter: self.filter, fences: self.fences })
    }
}

fn header(entries: u64, blocks: u64, filter_words: u64) -> [u8; HEADER_BYTES as usize] {
    let mut header = [0; HEADER_BYTES as usize];
    header[..11].copy_from_slice(MAGIC);
    header[11] = RUN_FORMAT;
    header[16..24].copy_from_slice(&entries.to_be_bytes());
    header[24..32].copy_from_slice(&blocks.to_be_bytes());
    header[32..40].copy_from_slice(&filter_words.to_be_bytes());
    header
}

fn tail_bytes(filter: &Filter, fences: &[u128]) -> Vec<u8> {
    let mut tail = Vec::with_capacity(filter.0.len() * 8 + fences.len() * 16);
    filter.0.iter().for_each(|word| tail.extend_from_slice(&word.to_be_bytes()));
    fences.iter().for_each(|key| tail.extend_from_slice(&key.to_be_bytes()));
    tail
}

impl Run {
    /// Writes a run of `entries` (in key order) as file `number` of `kind` in `dir`.
    pub fn write(dir: &Path, kind: &str, number: u64, entries: &[Entry], sync: bool) -> Result<Self, String> {
        let mut writer = RunWriter::create(&dir.join(run_name(kind, number)), entries.len() as u64)?;
        for entry in entries {
            writer.push(*entry)?;
        }
        writer.finish(number, sync)
    }

    /// Opens run `number` of `kind` in `dir`: reads and checks its header,
    /// filter and block keys.
    pub fn open(dir: &Path, kind: &str, number: u64) -> Result<Self, String> {
        let path = dir.join(run_name(kind, number));
        let fail = |what: &dyn std::fmt::Display| format!("index run {}: {what}", path.display());
        let file = File::open(&path).map_err(|e| fail(&e))?;
        let length = file.metadata().map_err(|e| fail(&e))?.len();
        let mut head = [0; HEADER_BYTES as usize];
        file.read_exact_at(&mut head, 0).map_err(|e| fail(&e))?;
        if &head[..11] != MAGIC || head[11] != RUN_FORMAT {
            return Err(fail(&"not a run of this format"));
        }
        let read = |at: usize| u64::from_be_bytes(head[at..at + 8].try_into().unwrap_or_else(|_| unreachable!()));
        let (entries, blocks, words) = (read(16), read(24), read(32));
        let expected = entries.div_ceil(BLOCK_ENTRIES as u64);
        let tail_length = words.checked_mul(8).and_then(|w| blocks.checked_mul(16).and_then(|b| w.checked_add(b)));
        let body = blocks.checked_mul(BLOCK_BYTES as u64).and_then(|b| b.checked_add(HEADER_BYTES));
        let total = tail_length.zip(body).and_then(|(t, b)| t.checked_add(b)).and_then(|n| n.checked_add(32));
        if blocks != expected || words == 0 || !words.is_multiple_of(8) || total != Some(length) {
            return Err(fail(&format!("header says {entries} entries in {blocks} blocks, file is {length} bytes")));
        }
        let (tail_length, body) = (tail_length.unwrap_or(0), body.unwrap_or(0));
        let mut tail = vec![0; tail_length as usize + 32];
        file.read_exact_at(&mut tail, body).map_err(|e| fail(&e))?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(&head);
        hasher.update(&tail[..tail_length as usize]);
        if hasher.finalize().as_bytes()[..] != tail[tail_length as usize..] {
            return Err(fail(&"its filter or block keys do not match their hash"));
        }
        let words_bytes = words as usize * 8;
        let filter = tail[..words_bytes]
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_else(|_| unreachable!())))
            .collect();
        let fences = tail[words_bytes..tail_length as usize]
            .chunks_exact(16)
            .map(|c| u128::from_be_bytes(c.try_into().unwrap_or_else(|_| unreachable!())))
            .collect();
        Ok(Self { number, path, file, entries, filter: Filter(filter), fences })
    }

    /// The run's file number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Entries in the run.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn entries_in(&self, block: u64) -> usize {
        (self.entries - block * BLOCK_ENTRIES as u64).min(BLOCK_ENTRIES as u64) as usize
    }

    /// Reads `count` blocks from `first` into `buffer`, checking each.
    fn read_blocks(&self, first: u64, buffer: &mut [u8]) -> Result<(), String> {
        let at = HEADER_BYTES + first * BLOCK_BYTES as u64;
        self.file.read_exact_at(buffer, at).map_err(|e| format!("index run {}: reading: {e}", self.path.display()))?;
        for (i, block) in buffer.chunks_exact(BLOCK_BYTES).enumerate() {
            let body = BLOCK_BYTES - CHECKSUM_BYTES;
            if block_checksum(&block[..body]) != block[body..] {
                // Derived data: removing the file makes the next open rebuild
                // the index from the log instead of reading this block again.
                let _ = std::fs::remove_file(&self.path);
                return Err(format!(
                    "index run {}: block {} does not match its checksum (the file was removed: \
                     the index is rebuilt from the log when the ledger is opened again)",
                    self.path.display(),
                    first + i as u64
                ));
            }
        }
        Ok(())
    }

    /// Appends to `values` the value of every entry with `key`.
    pub fn find(&self, key: u128, values: &mut Vec<u64>) -> Result<(), String> {
        if self.fences.first().is_none_or(|first| key < *first) || !self.filter.may_contain(key) {
            return Ok(());
        }
        // Equal keys may run across a block boundary: from the last block
        // starting below `key` through the blocks starting at it.
        let first = self.fences.partition_point(|fence| *fence < key).saturating_sub(1);
        let end = self.fences.partition_point(|fence| *fence <= key).max(first + 1);
        let mut block = [0; BLOCK_BYTES];
        for number in first..end {
            self.read_blocks(number as u64, &mut block)?;
            let count = self.entries_in(number as u64);
            let mut low = 0;
            let mut high = count;
            while low < high {
                let middle = (low + high) / 2;
                if entry_at(&block, middle).0 < key {
                    low = middle + 1;
                } else {
                    high = middle;
                }
            }
            values.extend((low..count).map(|i| entry_at(&block, i)).take_while(|e| e.0 == key).map(|e| e.1));
        }
        Ok(())
    }

    /// Every entry in key order, read [`MERGE_READ_BLOCKS`] blocks at a time.
    fn cursor(self: &Arc<Self>) -> Cursor {
        Cursor { run: Arc::clone(self), buffer: Vec::new(), next_block: 0, at: 0, in_buffer: 0 }
    }
}

/// A merge's reading position in one run.
struct Cursor {
    run: Arc<Run>,
    buffer: Vec<u8>,
    next_block: u64,
    /// Entry index within the buffered blocks.
    at: usize,
    in_buffer: usize,
}

impl Cursor {
    fn peek(&mut self) -> Result<Option<Entry>, String> {
        if self.at == self.in_buffer {
            let blocks = self.run.fences.len() as u64;
            if self.next_block == blocks {
                return Ok(None);
            }
            let count = (blocks - self.next_block).min(MERGE_READ_BLOCKS as u64);
            self.buffer.resize(count as usize * BLOCK_BYTES, 0);
            self.run.read_blocks(self.next_block, &mut self.buffer)?;
            let last = self.next_block + count - 1;
            self.in_buffer = (count as usize - 1) * BLOCK_ENTRIES + self.run.entries_in(last);
            self.next_block += count;
            self.at = 0;
        }
        let (block, i) = (self.at / BLOCK_ENTRIES, self.at % BLOCK_ENTRIES);
        Ok(Some(entry_at(&self.buffer[block * BLOCK_BYTES..(block + 1) * BLOCK_BYTES], i)))
    }
}

/// Merges `runs` (oldest first) into run `number` of `kind` in `dir`,
/// stopping early (with an error) when `cancel` is set.
fn merge(
    dir: &Path,
    kind: &str,
    number: u64,
    runs: &[Arc<Run>],
    keep: Keep,
    sync: bool,
    cancel: &AtomicBool,
) -> Result<Run, String> {
    let capacity = runs.iter().map(|r| r.entries).sum();
    let mut writer = RunWriter::create(&dir.join(run_name(kind, number)), capacity)?;
    let mut cursors: Vec<Cursor> = runs.iter().map(Run::cursor).collect();
    let mut pending: Option<Entry> = None;
    let mut done = 0u64;
    loop {
        let mut smallest: Option<(usize, Entry)> = None;
        for (i, cursor) in cursors.iter_mut().enumerate() {
            if let Some(entry) = cursor.peek()? {
                if smallest.is_none_or(|(_, best)| entry < best) {
                    smallest = Some((i, entry));
                }
            }
        }
        let Some((i, entry)) = smallest else { break };
        cursors[i].at += 1;
        done += 1;
        if done.is_multiple_of(65_536) && cancel.load(Ordering::Relaxed) {
            return Err(format!("index run {}: merge cancelled", writer.path.display()));
        }
        match (keep, pending) {
            // Entries come in (key, value) order: the last of a key is its largest.
            (Keep::Max, Some(previous)) if previous.0 == entry.0 => pending = Some(entry),
            (Keep::Max, _) => {
                if let Some(previous) = pending.replace(entry) {
                    writer.push(previous)?;
                }
            }
            (Keep::All, _) => writer.push(entry)?,
        }
    }
    if let Some(last) = pending {
        writer.push(last)?;
    }
    writer.finish(number, sync)
}

/// Where the next merge starts and how many runs it takes: the newest
/// run, and each older one in turn while it holds no more entries than the
/// newer ones taken (size ratio 1), when that makes at least
/// [`MERGE_FANIN`] runs. Sizes then fall geometrically from the oldest run
/// to the newest, so there are about log2(entries / flush) runs, an entry
/// is rewritten about as many times, and no run of an odd size is ever
/// left out (a policy by size class starved the larger classes while
/// flushes kept the smallest one full: 57 runs at 10M).
fn merge_window(runs: &[Arc<Run>]) -> Option<(usize, usize)> {
    let mut taken = 0u64;
    let mut first = runs.len();
    for (i, run) in runs.iter().enumerate().rev() {
        if first < runs.len() && run.entries > taken {
            break;
        }
        taken += run.entries;
        first = i;
    }
    let count = runs.len() - first;
    (count >= MERGE_FANIN).then_some((first, count))
}

struct Merging {
    first: usize,
    count: usize,
    number: u64,
    cancel: Arc<AtomicBool>,
    handle: JoinHandle<Result<Run, String>>,
}

/// The runs of one kind, oldest first, and the merge under way.
pub struct Runs {
    dir: PathBuf,
    kind: &'static str,
    keep: Keep,
    sync: bool,
    live: Vec<Arc<Run>>,
    merging: Option<Merging>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs").field("kind", &self.kind).field("runs", &self.live.len()).finish()
    }
}

impl Runs {
    /// Opens the runs `numbers` (oldest first) of `kind` in `dir`. `sync`:
    /// runs are synced before a manifest names them (off for a scratch index).
    pub fn open(dir: &Path, kind: &'static str, keep: Keep, numbers: &[u64], sync: bool) -> Result<Self, String> {
        let live = numbers.iter().map(|n| Run::open(dir, kind, *n).map(Arc::new)).collect::<Result<_, _>>()?;
        Ok(Self { dir: dir.to_owned(), kind, keep, sync, live, merging: None })
    }

    /// The runs' numbers, oldest first: what a manifest records.
    pub fn numbers(&self) -> Vec<u64> {
        self.live.iter().map(|r| r.number).collect()
    }

    /// Entries in all runs.
    pub fn entries(&self) -> u64 {
        self.live.iter().map(|r| r.entries).sum()
    }

    /// Every value stored under `key`, in any run.
    pub fn all(&self, key: u128) -> Result<Vec<u64>, String> {
        let mut values = Vec::new();
        for run in &self.live {
            run.find(key, &mut values)?;
        }
        Ok(values)
    }

    /// The value under `key` in the newest run that holds it (the largest there).
    pub fn newest(&self, key: u128) -> Result<Option<u64>, String> {
        let mut values = Vec::new();
        for run in self.live.iter().rev() {
            run.find(key, &mut values)?;
            if let Some(max) = values.iter().max() {
                return Ok(Some(*max));
            }
        }
        Ok(None)
    }

    /// Writes `entries` (any order) as the newest run, numbered `number`.
    pub fn add(&mut self, mut entries: Vec<Entry>, number: u64) -> Result<(), String> {
        if entries.is_empty() {
            return Ok(());
        }
        entries.sort_unstable();
        if self.keep == Keep::Max {
            // The last of each key is its largest value.
            let mut kept: Vec<Entry> = Vec::with_capacity(entries.len());
            for entry in entries {
                match kept.last_mut() {
                    Some(last) if last.0 == entry.0 => *last = entry,
                    _ => kept.push(entry),
                }
            }
            entries = kept;
        }
        let run = Run::write(&self.dir, self.kind, number, &entries, self.sync)?;
        self.live.push(Arc::new(run));
        Ok(())
    }

    /// Installs the merge under way if it has finished (or waits for it
    /// when `wait`, or when there are [`RUNS_MAX`] runs). Returns the files
    /// it replaced, to remove once a manifest without them is durable.
    pub fn collect(&mut self, wait: bool) -> Result<Vec<PathBuf>, String> {
        let ready =
            self.merging.as_ref().is_some_and(|m| wait || self.live.len() >= RUNS_MAX || m.handle.is_finished());
        let Some(merging) = self.merging.take_if(|_| ready) else { return Ok(Vec::new()) };
        let run =
            merging.handle.join().map_err(|_| format!("index runs {}: the merge thread panicked", self.kind))??;
        let replaced: Vec<Arc<Run>> =
            self.live.splice(merging.first..merging.first + merging.count, [Arc::new(run)]).collect();
        Ok(replaced.iter().map(|r| r.path.clone()).collect())
    }

    /// Starts a merge in the background, numbered `number`, if none is
    /// under way and the newest runs make a window (`merge_window`).
    /// Returns whether it started (and so used `number`).
    pub fn start_merge(&mut self, number: u64) -> bool {
        if self.merging.is_some() {
            return false;
        }
        let Some((first, count)) = merge_window(&self.live) else { return false };
        let runs: Vec<Arc<Run>> = self.live[first..first + count].to_vec();
        let cancel = Arc::new(AtomicBool::new(false));
        let (dir, kind, keep, sync, flag) = (self.dir.clone(), self.kind, self.keep, self.sync, Arc::clone(&cancel));
        let spawned = std::thread::Builder::new()
            .name(format!("docket-index-merge-{kind}"))
            .spawn(move || merge(&dir, kind, number, &runs, keep, sync, &flag));
        match spawned {
            Ok(handle) => {
                self.merging = Some(Merging { first, count, number, cancel, handle });
                true
            }
            // No thread: the runs stay as they are, and a later flush tries again.
            Err(_) => false,
        }
    }
}

impl Drop for Runs {
    fn drop(&mut self) {
        if let Some(merging) = self.merging.take() {
            merging.cancel.store(true, Ordering::Relaxed);
            let _ = merging.handle.join();
            // Not in any manifest: an unfinished or uninstalled merge's file goes.
            let _ = std::fs::remove_file(self.dir.join(run_name(self.kind, merging.number)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_entries(count: usize, seed: u64) -> Vec<Entry> {
        let mut state = seed;
        (0..count)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let key = u128::from(state) << 64 | u128::from(state.rotate_left(29));
                (key, i as u64)
            })
            .collect()
    }

    #[test]
    fn a_run_finds_every_key_it_holds_and_almost_no_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut entries = random_entries(10_000, 1);
        entries.sort_unstable();
        let run = Run::write(dir.path(), "ids", 7, &entries, true).expect("writes");
        let run = Run::open(dir.path(), "ids", run.number()).expect("opens");
        assert_eq!(run.entries(), 10_000);
        for (key, value) in &entries {
            let mut found = Vec::new();
            run.find(*key, &mut found).expect("reads");
            assert_eq!(found, vec![*value]);
        }
        let absent = random_entries(10_000, 2);
        let mut false_positives = 0;
        for (key, _) in &absent {
            let mut found = Vec::new();
            run.find(*key, &mut found).expect("reads");
            assert!(found.is_empty());
            false_positives += usize::from(run.filter.may_contain(*key));
        }
        assert!(false_positives < 300, "{false_positives} of 10,000 absent keys passed the filter");
    }

    #[test]
    fn equal_keys_across_a_block_boundary_are_all_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut entries: Vec<Entry> =
            (0..400).map(|i| (if (160..180).contains(&i) { 5_000 } else { i * 100 }, i as u64)).collect();
        entries.sort_unstable();
        let run = Run::write(dir.path(), "ids", 1, &entries, false).expect("writes");
        let mut found = Vec::new();
        run.find(5_000, &mut found).expect("reads");
        assert_eq!(found.len(), 21, "20 planted and the one at 50 * 100");
    }

    #[test]
    fn merges_keep_all_or_the_largest() {
        let dir = tempfile::tempdir().expect("tempdir");
        for keep in [Keep::All, Keep::Max] {
            let kind = if keep == Keep::All { "ids" } else { "cases" };
            let mut runs = Runs::open(dir.path(), kind, keep, &[], false).expect("opens");
            for number in 0..MERGE_FANIN as u64 {
                // Keys 0..1000 in every run, each run's value larger.
                runs.add((0..1000u128).map(|k| (k * 7, number * 10 + (k as u64 % 3))).collect(), number).expect("adds");
            }
            assert!(runs.start_merge(100), "four runs of one class merge");
            let replaced = runs.collect(true).expect("collects");
            assert_eq!(replaced.len(), MERGE_FANIN);
            assert_eq!(runs.numbers(), vec![100]);
            let expected = if keep == Keep::All { 4000 } else { 1000 };
            assert_eq!(runs.entries(), expected);
            assert_eq!(runs.newest(21).expect("reads"), Some(30));
            assert_eq!(runs.all(21).expect("reads").len(), if keep == Keep::All { 4 } else { 1 });
            let reopened = Runs::open(dir.path(), kind, keep, &[100], false).expect("reopens");
            assert_eq!(reopened.newest(21).expect("reads"), Some(30));
        }
    }

    #[test]
    fn the_newest_run_wins_before_a_merge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut runs = Runs::open(dir.path(), "cases", Keep::Max, &[], false).expect("opens");
        runs.add(vec![(1, 1), (2, 1)], 0).expect("adds");
        runs.add(vec![(1, 2), (1, 3)], 1).expect("adds");
        assert_eq!(runs.newest(1).expect("reads"), Some(3));
        assert_eq!(runs.newest(2).expect("reads"), Some(1));
        assert_eq!(runs.newest(3).expect("reads"), None);
    }

    #[test]
    fn a_damaged_run_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut entries = random_entries(1000, 3);
        entries.sort_unstable();
        let path = dir.path().join(run_name("ids", 2));
        Run::write(dir.path(), "ids", 2, &entries, false).expect("writes");
        let bytes = std::fs::read(&path).expect("reads");
        // A byte of a fence (block key): the open's hash check fails.
        let mut damaged = bytes.clone();
        let at = damaged.len() - 40;
        damaged[at] ^= 1;
        std::fs::write(&path, &damaged).expect("writes");
        let error = Run::open(dir.path(), "ids", 2).expect_err("refused");
        assert!(error.contains("ids-0000000000000002.run") && error.contains("hash"), "{error}");
        // A byte of a block: found when the block is read, and the file goes.
        let mut damaged = bytes;
        damaged[HEADER_BYTES as usize + BLOCK_BYTES + 5] ^= 1;
        std::fs::write(&path, &damaged).expect("writes");
        let run = Run::open(dir.path(), "ids", 2).expect("the tail is intact");
        let key = entries[BLOCK_ENTRIES + 1].0;
        let error = run.find(key, &mut Vec::new()).expect_err("refused");
        assert!(error.contains("block 1 does not match its checksum"), "{error}");
        assert!(!path.exists(), "removed, so that the next open rebuilds");
    }

    #[test]
    fn merges_take_the_newest_runs_while_the_older_is_no_larger() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut runs = Runs::open(dir.path(), "ids", Keep::All, &[], false).expect("opens");
        let sizes = |runs: &Runs| runs.live.iter().map(|r| r.entries).collect::<Vec<_>>();
        let mut number = 0;
        let mut key = 0u128;
        // Flushes of 10 entries, merging as the index does after each.
        for _ in 0..64 {
            runs.add((0..10).map(|i| (key + i, 0)).collect(), number).expect("adds");
            key += 10;
            number += 1;
            if runs.start_merge(number) {
                number += 1;
                runs.collect(true).expect("collects");
            }
            let live = sizes(&runs);
            assert!(live.len() <= 2 * 7, "about log2(64) runs at most: {live:?}");
        }
        let live = sizes(&runs);
        assert_eq!(live.iter().sum::<u64>(), 640);
        assert!(live.windows(2).all(|w| w[0] >= w[1]), "sizes fall from oldest to newest: {live:?}");
        // A run of an odd size between larger ones is taken in, not left out.
        let odd = vec![(1_000_000, 0)];
        runs.add(odd, number).expect("adds");
        for i in 0..4 {
            runs.add((0..1000).map(|k| (2_000_000 + i * 1000 + k, 0)).collect(), number + 1 + i as u64).expect("adds");
        }
        // The four newest hold 4,000 entries: the odd run and every older one (640 in all) join them.
        assert_eq!(merge_window(&runs.live), Some((0, runs.live.len())), "{:?}", sizes(&runs));
    }
}
