//! Limit probes: what the hardware and the libraries can do at best, measured in the same run.

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
