//! crash-harness: kills a real appending process with SIGKILL at random
//! moments, over many cycles, and after each restart checks that every
//! acknowledged event is in the log at its sequence number and that
//! `docket verify`'s checks pass.
//!
//! ```text
//! crash-harness [--cycles 200] [--subjects 400] [--seed 1] [--dir DIR]
//! ```
//!
//! The child opens the ledger (recovering from the last kill), appends the
//! demo's events from where the log ends, in batches of random size, and
//! prints `seq id` for each acknowledged event after its batch returns (that
//! is, after the fdatasync). The parent kills it after a random delay, reads
//! what it printed, reopens the ledger and compares. SIGKILL leaves the page
//! cache alive, so this tests the process-crash path; power loss (lost and
//! reordered pages) is the fault-injection test's job (`tests/faults.rs`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use docket_log::ledger::{self, Ledger};
use docket_log::{demo, verify, Config};
use docket_model::{PublicKey, SignedEvent, Timestamp};

fn arg(args: &[String], name: &str, default: u64) -> Result<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).context("missing value")?.parse().with_context(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

/// The demo's events, stored once as length-prefixed wire forms so that each
/// child starts in milliseconds.
fn write_events(path: &Path, events: &[SignedEvent]) -> Result<()> {
    let mut bytes = Vec::new();
    for event in events {
        let wire = event.to_wire();
        bytes.extend_from_slice(&(wire.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&wire);
    }
    std::fs::write(path, bytes).context("writing events")
}

fn read_events(path: &Path) -> Result<Vec<SignedEvent>> {
    let bytes = std::fs::read(path).context("reading events")?;
    let mut events = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into()?) as usize;
        events.push(SignedEvent::from_wire(&bytes[at + 4..at + 4 + len])?);
        at += 4 + len;
    }
    Ok(events)
}

fn child(dir: &Path, seed: u64) -> Result<()> {
    let events = read_events(&dir.join("events.bin"))?;
    let mut ledger = Ledger::open(&dir.join("ledger"), Config { segment_bytes_max: 256 * 1024 })?;
    let mut next = ledger.log.size() as usize;
    let mut rng = seed ^ (next as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    while next < events.len() {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let size = 1 + (rng >> 33) as usize % 64;
        let batch: Vec<SignedEvent> = events[next..(next + size).min(events.len())].to_vec();
        let results = ledger.log.append_batch(batch, Timestamp::now())?;
        for result in results {
            let receipt = result.map_err(|refusal| anyhow::anyhow!("refused: {refusal}"))?;
            writeln!(out, "{} {}", receipt.seq, receipt.id)?;
        }
        out.flush()?;
        next = ledger.log.size() as usize;
    }
    Ok(())
}

struct Totals {
    cycles: u64,
    killed: u64,
    finished: u64,
    acknowledged_checked: u64,
    tails_cut: u64,
    bytes_cut: u64,
    restarts: u64,
}

fn fresh(dir: &Path, events: &[SignedEvent], root: PublicKey, seed: u64) -> Result<()> {
    let ledger_dir = dir.join("ledger");
    if ledger_dir.exists() {
        std::fs::remove_dir_all(&ledger_dir)?;
    }
    ledger::init(&ledger_dir, "docket.invalid/crash-harness", &demo::key(seed, "log"), root, None)?;
    write_events(&dir.join("events.bin"), events)
}

fn parent(dir: &Path, cycles: u64, subjects: u64, seed: u64) -> Result<()> {
    let built = demo::build(subjects, seed);
    let root = PublicKey(built.registry_root.verifying_key().to_bytes());
    let ids: Vec<_> = built.events.iter().map(SignedEvent::id).collect();
    fresh(dir, &built.events, root, seed)?;
    let mut totals =
        Totals { cycles: 0, killed: 0, finished: 0, acknowledged_checked: 0, tails_cut: 0, bytes_cut: 0, restarts: 0 };
    let exe = std::env::current_exe()?;
    let mut rng = seed.wrapping_add(0x1234_5678);
    let started = Instant::now();
    for cycle in 0..cycles {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_micros(5_000 + (rng >> 33) % 120_000);
        let mut process = Command::new(&exe)
            .args(["child", "--seed", &cycle.to_string()])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        std::thread::sleep(delay);
        let finished = process.try_wait()?.is_some();
        if !finished {
            process.kill()?; // SIGKILL on Unix
            totals.killed += 1;
        } else {
            totals.finished += 1;
        }
        let status = process.wait()?;
        let mut printed = String::new();
        process.stdout.take().context("stdout")?.read_to_string(&mut printed)?;
        if finished && !status.success() {
            let mut errors = String::new();
            process.stderr.take().context("stderr")?.read_to_string(&mut errors)?;
            bail!("cycle {cycle}: child failed: {errors}");
        }
        let acknowledged: Vec<(u64, String)> = BufReader::new(printed.as_bytes())
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.split_once(' ').and_then(|(s, id)| Some((s.parse().ok()?, id.to_owned()))))
            .collect();
        check(dir, cycle, &acknowledged, &ids, &mut totals)?;
        totals.cycles += 1;
        if totals.cycles.is_multiple_of(25) {
            eprintln!(
                "{} cycles, {} killed, {} acknowledged events checked, {:.0} s",
                totals.cycles,
                totals.killed,
                totals.acknowledged_checked,
                started.elapsed().as_secs_f64()
            );
        }
        if finished {
            totals.restarts += 1;
            fresh(dir, &built.events, root, seed)?;
        }
    }
    println!(
        "crash-harness: {} cycles ({} killed with SIGKILL mid-append, {} ran to the end), {} acknowledged events checked, \
         {} torn tails cut ({} bytes), 0 acknowledged events lost, verify passed after every restart ({:.0} s)",
        totals.cycles, totals.killed, totals.finished, totals.acknowledged_checked, totals.tails_cut, totals.bytes_cut, started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn check(
    dir: &Path,
    cycle: u64,
    acknowledged: &[(u64, String)],
    ids: &[docket_model::EventId],
    totals: &mut Totals,
) -> Result<()> {
    let ledger = Ledger::open(&dir.join("ledger"), Config { segment_bytes_max: 256 * 1024 })
        .with_context(|| format!("cycle {cycle}: the ledger does not reopen"))?;
    if let Some(cut) = &ledger.recovery.cut {
        totals.tails_cut += 1;
        totals.bytes_cut += cut.bytes;
    }
    let size = ledger.log.size();
    let in_log: HashMap<u64, String> = (0..size).map(|seq| (seq, ids[seq as usize].to_hex())).collect();
    for (seq, id) in acknowledged {
        match in_log.get(seq) {
            Some(found) if found == id => {}
            Some(found) => bail!("cycle {cycle}: seq {seq} was acknowledged as {id} but the log has {found}"),
            None => bail!("cycle {cycle}: acknowledged seq {seq} ({id}) is missing; the log has {size} records"),
        }
    }
    totals.acknowledged_checked += acknowledged.len() as u64;
    drop(ledger);
    verify::verify(&dir.join("ledger"), None, 2, &mut |_, _| {})
        .map_err(|failure| anyhow::anyhow!("cycle {cycle}: verify failed: {failure}"))?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir_arg = args.iter().position(|a| a == "--dir").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    if args.first().map(String::as_str) == Some("child") {
        return child(&dir_arg.context("child needs --dir")?, arg(&args, "--seed", 0)?);
    }
    let cycles = arg(&args, "--cycles", 200)?;
    let subjects = arg(&args, "--subjects", 400)?;
    let seed = arg(&args, "--seed", 1)?;
    let dir = match dir_arg {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("docket-crash-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    parent(&dir, cycles, subjects, seed)
}
