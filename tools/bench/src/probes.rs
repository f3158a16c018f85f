//! Limit probes: what the hardware and the libraries can do at best, measured in the same run.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use docket_model::{Body, CaseAction, SignedEvent};

/// Events sampled evenly from a data set, and point-check queries drawn from it.
#[derive(Debug)]
pub struct Sample {
    pub events: Vec<SignedEvent>,
    pub wires: Vec<Vec<u8>>,
    /// (subject, measure) of measures applied somewhere in the data.
    pub queries: Vec<(String, String)>,
}

impl Sample {
    /// Reads the data set once, keeping about `events` events and `queries` queries spread over all of it.
    pub fn read(data: &Path, events: usize, queries: usize) -> Result<Self> {
        let manifest = docket_gen::Manifest::read(data)?;
        let every = (manifest.events / events.max(1) as u64).max(1);
        let applied = manifest.by_kind.get("measure_applied").copied().unwrap_or(1);
        // Half the queries from measures applied anywhere in the ten years
        // (mostly lifted by now), half from the last tenth applied (many still in force).
        let half = (queries / 2).max(1) as u64;
        let every_query = applied.div_ceil(half).max(1);
        let recent_from = applied - applied / 10;
        let every_recent = (applied / 10).div_ceil(half).max(1);
        let (mut uniform, mut recent) = (0usize, 0usize);
        let mut sample = Sample { events: Vec::new(), wires: Vec::new(), queries: Vec::new() };
        let (mut index, mut applied_seen) = (0u64, 0u64);
        let mut error = None;
        docket_gen::read_wire(data, |wire| {
            let keep = index % every == 0 && index >= manifest.registry_events;
            index += 1;
            if !keep && sample.queries.len() >= queries {
                return true;
            }
            let event = match SignedEvent::from_wire(wire) {
                Ok(event) => event,
                Err(e) => {
                    error = Some(anyhow::anyhow!("event {}: {e}", index - 1));
                    return false;
                }
            };
            if let Body::Case(case) = &event.event().body {
                if let CaseAction::MeasureApplied { measure, .. } = &case.action {
                    let pair = || (case.subject.to_string(), measure.to_string());
                    if applied_seen % every_query == 0 && uniform < half as usize {
                        sample.queries.push(pair());
                        uniform += 1;
                    }
                    if applied_seen >= recent_from
                        && (applied_seen - recent_from) % every_recent == 0
                        && recent < half as usize
                    {
                        sample.queries.push(pair());
                        recent += 1;
                    }
                    applied_seen += 1;
                }
            }
            if keep {
                sample.wires.push(wire.to_vec());
                sample.events.push(event);
            }
            true
        })?;
        if let Some(error) = error {
            return Err(error);
        }
        Ok(sample)
    }

    /// Writes the queries as `subject<TAB>measure` lines.
    pub fn write_queries(&self, path: &Path) -> Result<()> {
        let mut text = String::new();
        for (subject, measure) in &self.queries {
            text += &format!("{subject}\t{measure}\n");
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// Reads `subject<TAB>measure` lines.
pub fn read_queries(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().filter_map(|l| l.split_once('\t').map(|(s, m)| (s.to_owned(), m.to_owned()))).collect())
}

/// Records of `record` bytes appended with one `fdatasync` per `batch`; records/s.
pub fn raw_append(dir: &Path, records: u64, batch: u64, record: usize) -> Result<f64> {
    let path = dir.join("raw-append-probe");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    let bytes = vec![0x5au8; record];
    let mut buffer = Vec::with_capacity(record * batch as usize);
    let started = Instant::now();
    let mut written = 0;
    while written < records {
        buffer.clear();
        let n = batch.min(records - written);
        for _ in 0..n {
            buffer.extend_from_slice(&bytes);
        }
        file.write_all(&buffer)?;
        file.sync_data()?;
        written += n;
    }
    let rate = records as f64 / started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// ed25519-dalek `verify_batch` in batches of 64 on all cores; signatures/s.
pub fn batch_verify(events: &[SignedEvent]) -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let prepared: Vec<(Vec<u8>, ed25519_dalek::Signature, ed25519_dalek::VerifyingKey)> = events
        .iter()
        .filter_map(|e| {
            let message = docket_model::signed::signing_message(e.bytes());
            let signature = ed25519_dalek::Signature::from_bytes(&e.signature().0);
            let key = ed25519_dalek::VerifyingKey::from_bytes(&e.event().key.0).ok()?;
            Some((message, signature, key))
        })
        .collect();
    let chunk = prepared.len().div_ceil(threads).max(1);
    let started = Instant::now();
    let valid = std::thread::scope(|scope| {
        let handles: Vec<_> = prepared
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.chunks(64).all(|batch| {
                        let messages: Vec<&[u8]> = batch.iter().map(|(m, _, _)| m.as_slice()).collect();
                        let signatures: Vec<_> = batch.iter().map(|(_, s, _)| *s).collect();
                        let keys: Vec<_> = batch.iter().map(|(_, _, k)| *k).collect();
                        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
                    })
                })
            })
            .collect();
        handles.into_iter().all(|h| h.join().unwrap_or(false))
    });
    assert!(valid, "the sample's signatures verify");
    prepared.len() as f64 / started.elapsed().as_secs_f64()
}

/// Bare decode of the canonical form (`SignedEvent::from_wire`) on one core; events/s.
pub fn decode(wires: &[Vec<u8>]) -> f64 {
    let started = Instant::now();
    let mut ok = 0usize;
    for wire in wires {
        ok += usize::from(SignedEvent::from_wire(std::hint::black_box(wire)).is_ok());
    }
    assert_eq!(ok, wires.len(), "the sample decodes");
    wires.len() as f64 / started.elapsed().as_secs_f64()
}

/// SHA-256 and BLAKE3 over the sample's bytes, one event at a time, on one core; MB/s each.
pub fn hashes(wires: &[Vec<u8>]) -> (f64, f64) {
    use sha2::Digest as _;
    let bytes: usize = wires.iter().map(Vec::len).sum();
    let started = Instant::now();
    for wire in wires {
        std::hint::black_box(sha2::Sha256::digest(wire));
    }
    let sha = bytes as f64 / started.elapsed().as_secs_f64() / 1e6;
    let started = Instant::now();
    for wire in wires {
        std::hint::black_box(blake3::hash(wire));
    }
    let blake = bytes as f64 / started.elapsed().as_secs_f64() / 1e6;
    (sha, blake)
}
