//! docket-gen: a national-scale ledger's worth of signed events, from a seed.
//!
//! The world is [`world::World::national`]: seven lists on three rule sets, 60
//! agencies, 150 catalogued measures, an MOU per list binding 10 to 45
//! agencies; one subject per case, valid USCC or resident ids, cases opening
//! over 2016-2025 and running their lifecycle (notice, objection and its
//! decision for some, designation, two to seven measures, restoration or the
//! end of the term, the measures lifted), one case in
//! [`world::NATIONAL_VIOLATION_EVERY`] with a planted procedural violation.
//!
//! Cases are built and signed in chunks of [`world::NATIONAL_CHUNK_SUBJECTS`]
//! subjects on every core; a chunk depends only on the seed and its index,
//! so the output does not depend on the number of cores. The events are
//! written in the order a ledger would record them: registry first, then
//! every case event by effective time (a case's own events never reorder).
//!
//! Output, in the directory given:
//! * `events.wire`: each signed event's canonical wire form, prefixed with
//!   its length as a big-endian u32 (the body of `POST /v1/events/batch` as
//!   `application/octet-stream`), or `events.jsonl`: one JSON interchange
//!   event per line;
//! * `truth.tsv`: the ground truth, `case number<TAB>violation` per planted case;
//! * `manifest.json`: seed, sizes, counts by event kind and violation, the
//!   registry root's public key.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use docket_model::{Body, SignedEvent};
use docket_world::{self as world, World};
use serde::{Deserialize, Serialize};

/// Largest event the reader accepts (the model's own limit on a wire event is lower).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// How the events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Length-prefixed canonical wire form (`events.wire`).
    Wire,
    /// JSON interchange form, one event per line (`events.jsonl`).
    JsonLines,
}

impl Format {
    /// The events file's name in the output directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Wire => "events.wire",
            Format::JsonLines => "events.jsonl",
        }
    }
}

/// What was generated: written as `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub seed: u64,
    pub agencies: usize,
    pub measures: usize,
    pub lists: usize,
    /// Registry events (first in the file).
    pub registry_events: u64,
    pub subjects: u64,
    /// Every event in the file, registry included.
    pub events: u64,
    /// Sum of the events' canonical wire sizes.
    pub wire_bytes: u64,
    pub by_kind: BTreeMap<String, u64>,
    /// Planted violations by kind (one per planted case).
    pub violations: BTreeMap<String, u64>,
    /// The registry root's public key (hex): the ledger's trust anchor.
    pub registry_root: String,
    pub seconds: f64,
    pub threads: usize,
}

impl Manifest {
    /// Reads `manifest.json` from `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// One built chunk: its events' wire forms back to back, with (recording key, offset, length) each.
struct Chunk {
    bytes: Vec<u8>,
    frames: Vec<(i64, u32, u32)>,
    planted: Vec<(String, world::Violation)>,
    by_kind: BTreeMap<&'static str, u64>,
}

fn build_chunk(world: &World, seed: u64, index: u64) -> Chunk {
    let built = world::national_chunk(world, seed, index);
    let mut chunk = Chunk { bytes: Vec::new(), frames: Vec::new(), planted: built.planted, by_kind: BTreeMap::new() };
    // A case's events come together; each is recorded no earlier than the one before it.
    let mut previous: Option<(&str, i64)> = None;
    for event in &built.events {
        let Body::Case(case) = &event.event().body else { continue };
        let at = event.event().effective_at.micros();
        let key = match previous {
            Some((number, last)) if number == case.number.as_str() => at.max(last),
            _ => at,
        };
        previous = Some((case.number.as_str(), key));
        let wire = event.to_wire();
        chunk.frames.push((key, chunk.bytes.len() as u32, wire.len() as u32));
        chunk.bytes.extend_from_slice(&wire);
        *chunk.by_kind.entry(event.event().kind().name()).or_insert(0) += 1;
    }
    chunk
}

/// Generates at least `target_events` events (whole chunks of subjects, the
/// fewest that reach the target) for `seed` into `out`, on `threads` threads.
pub fn generate(out: &Path, target_events: u64, seed: u64, format: Format, threads: usize) -> Result<Manifest> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let world = World::national();
    let (root, registry) = world::registry_events(&world, seed);
    let registry_count = registry.len() as u64;
    // Chunks are claimed in order; once the events of the finished ones reach
    // the target no new chunk is claimed, and the fewest leading chunks that
    // reach it are kept, so the result is the same on any number of threads.
    let next = AtomicU64::new(0);
    let total = AtomicU64::new(registry_count);
    let done: Mutex<BTreeMap<u64, Chunk>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                if total.load(Ordering::SeqCst) >= target_events {
                    break;
                }
                let index = next.fetch_add(1, Ordering::SeqCst);
                let chunk = build_chunk(&world, seed, index);
                total.fetch_add(chunk.frames.len() as u64, Ordering::SeqCst);
                done.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(index, chunk);
            });
        }
    });
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut count = registry_count;
    for (_, chunk) in done.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        if count >= target_events && !chunks.is_empty() {
            break;
        }
        count += chunk.frames.len() as u64;
        chunks.push(chunk);
    }
    let mut order: Vec<(i64, u32, u32)> = Vec::with_capacity((count - registry_count) as usize);
    for (c, chunk) in chunks.iter().enumerate() {
        order.extend((0..chunk.frames.len() as u32).map(|i| (chunk.frames[i as usize].0, c as u32, i)));
    }
    order.sort_unstable();

    let path = out.join(format.file_name());
    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut wire_bytes = 0u64;
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut write = |wire: &[u8]| -> Result<()> {
        wire_bytes += wire.len() as u64;
        match format {
            Format::Wire => {
                writer.write_all(&(wire.len() as u32).to_be_bytes())?;
                writer.write_all(wire)?;
            }
            Format::JsonLines => {
                let event = SignedEvent::from_wire(wire).context("a generated event decodes")?;
                serde_json::to_writer(&mut writer, &event.to_json())?;
                writer.write_all(b"\n")?;
            }
        }
        Ok(())
    };
    for event in &registry {
        *by_kind.entry(event.event().kind().name().to_owned()).or_insert(0) += 1;
        write(&event.to_wire())?;
    }
    for (_, c, i) in &order {
        let chunk = &chunks[*c as usize];
        let (_, offset, length) = chunk.frames[*i as usize];
        write(&chunk.bytes[offset as usize..(offset + length) as usize])?;
    }
    writer.flush().with_context(|| format!("writing {}", path.display()))?;
    drop(writer);

    let mut truth = BufWriter::new(std::fs::File::create(out.join("truth.tsv"))?);
    let mut violations: BTreeMap<String, u64> = BTreeMap::new();
    for chunk in &chunks {
        for (kind, n) in &chunk.by_kind {
            *by_kind.entry((*kind).to_owned()).or_insert(0) += n;
        }
        for (number, violation) in &chunk.planted {
            writeln!(truth, "{number}\t{violation:?}")?;
            *violations.entry(format!("{violation:?}")).or_insert(0) += 1;
        }
    }
    truth.flush()?;
    let (agencies, measures, lists) = world.sizes();
    let manifest = Manifest {
        seed,
        agencies,
        measures,
        lists,
        registry_events: registry_count,
        subjects: chunks.len() as u64 * world::NATIONAL_CHUNK_SUBJECTS,
        events: count,
        wire_bytes,
        by_kind,
        violations,
        registry_root: hex::encode(root.verifying_key().to_bytes()),
        seconds: started.elapsed().as_secs_f64(),
        threads,
    };
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&manifest)?)?;
    Ok(manifest)
}

/// Reads `events.wire` in `dir`, calling `each` with every event's wire form
/// in order; stops early when `each` returns false. A truncated or oversized
/// frame is an error naming its position.
pub fn read_wire(dir: &Path, mut each: impl FnMut(&[u8]) -> bool) -> Result<u64> {
    let path: PathBuf = dir.join(Format::Wire.file_name());
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut buffer = Vec::new();
    let (mut count, mut offset) = (0u64, 0u64);
    loop {
        let mut length = [0u8; 4];
        match reader.read_exact(&mut length) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(count),
            Err(e) => return Err(e).with_context(|| format!("reading {} at byte {offset}", path.display())),
        }
        let length = u32::from_be_bytes(length) as usize;
        if length > MAX_FRAME_BYTES {
            bail!("{}: event {count} at byte {offset} claims {length} bytes (limit {MAX_FRAME_BYTES})", path.display());
        }
        buffer.resize(length, 0);
        reader
            .read_exact(&mut buffer)
            .with_context(|| format!("{}: event {count} at byte {offset} is truncated", path.display()))?;
        count += 1;
        offset += 4 + length as u64;
        if !each(&buffer) {
            return Ok(count);
        }
    }
}
