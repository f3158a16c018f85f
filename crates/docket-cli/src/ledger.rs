//! `docket init`, `append`, `checkpoint`, `proof`, `verify` and `demo`.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context, Result};
use docket_log::ledger::{self, Ledger, Snapshot};
use docket_log::merkle::{verify_consistency, verify_inclusion};
use docket_log::Config;
use docket_model::{PublicKey, SignedEvent, Timestamp};
use docket_world as world;
use ed25519_dalek::SigningKey;
use serde_json::json;

use crate::lines;

/// Events appended per batch (one fdatasync each) by `docket append` and `docket demo`.
const APPEND_BATCH_EVENTS: usize = 1024;

fn hex32(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

pub fn init(dir: &Path, origin: &str, registry: Option<&Path>) -> Result<bool> {
    let log_key = SigningKey::generate(&mut rand_core::OsRng);
    let root = SigningKey::generate(&mut rand_core::OsRng);
    let root_public = PublicKey(root.verifying_key().to_bytes());
    let config = ledger::init(dir, origin, &log_key, root_public, Some(&root))?;
    let mut ledger = Ledger::open(dir, Config::default())?;
    if let Some(path) = registry {
        let (name, reader) = lines::open(Some(path))?;
        let mut events = Vec::new();
        for record in lines::records(&name, reader)? {
            let signed = crate::sign::sign_line(&record.text, &root)
                .map_err(|error| anyhow::anyhow!("{name}: line {}: {error}", record.line))?;
            if !signed.event().kind().is_registry() {
                bail!(
                    "{name}: line {}: genesis events must be registry events, not {}",
                    record.line,
                    signed.event().kind().name()
                );
            }
            events.push(signed);
        }
        let appended = append_all(&mut ledger, events, &name, &[])?;
        eprintln!("appended {appended} genesis registry event(s) from {name}");
    }
    let checkpoint = ledger.checkpoint(&log_key)?;
    println!("ledger created in {}", dir.display());
    println!("registry root public key  {}", root_public);
    println!("log key (signed-note)     {}", config.log_key);
    println!("secret keys are in {}/keys (mode 0600)\n\nfirst checkpoint:\n{checkpoint}", dir.display());
    Ok(true)
}

/// Appends events in batches, stopping at the first refusal. Returns how many were appended.
fn append_all(ledger: &mut Ledger, events: Vec<SignedEvent>, name: &str, line_numbers: &[usize]) -> Result<usize> {
    let mut appended = 0usize;
    let mut offset = 0usize;
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let batch: Vec<SignedEvent> = events.by_ref().take(APPEND_BATCH_EVENTS).collect();
        let signatures =
            docket_log::verify_parallel(&batch, std::thread::available_parallelism().map_or(1, usize::from));
        let first_bad = signatures.iter().position(Result::is_err);
        let good: Vec<SignedEvent> = batch.into_iter().take(first_bad.unwrap_or(usize::MAX)).collect();
        let results = ledger.log.append_batch_with(good, Timestamp::now(), true)?;
        for (index, result) in results.iter().enumerate() {
            let line = line_numbers.get(offset + index).copied().unwrap_or(offset + index + 1);
            match result {
                Ok(receipt) => {
                    println!(
                        "{}",
                        json!({"line": line, "seq": receipt.seq, "id": receipt.id, "leaf_index": receipt.leaf_index, "system_time": receipt.system_time})
                    );
                    appended += 1;
                }
                Err(refusal) => bail!(
                    "{name}: line {line}: refused: {refusal}\n{appended} event(s) before it were appended and kept"
                ),
            }
        }
        if let Some(bad) = first_bad {
            let line = line_numbers.get(offset + bad).copied().unwrap_or(offset + bad + 1);
            let error = signatures[bad].err().map(|e| e.to_string()).unwrap_or_default();
            bail!("{name}: line {line}: refused: signature: {error}\n{appended} event(s) before it were appended and kept");
        }
        offset += results.len();
    }
    Ok(appended)
}

pub fn append(dir: &Path, input: Option<&Path>) -> Result<bool> {
    let mut ledger = Ledger::open(dir, Config::default())?;
    report_recovery(&ledger);
    let (name, reader) = lines::open(input)?;
    let mut events = Vec::new();
    let mut line_numbers = Vec::new();
    for record in lines::records(&name, reader)? {
        match crate::sign::parse_signed(&record.text) {
            Ok(event) => {
                events.push(event);
                line_numbers.push(record.line);
            }
            Err(error) => {
                // Append what came before the bad line, then stop there.
                let appended = append_all(&mut ledger, events, &name, &line_numbers)?;
                checkpoint_if_possible(&mut ledger);
                bail!("{name}: line {}: {error}\n{appended} event(s) before it were appended and kept", record.line);
            }
        }
    }
    let appended = append_all(&mut ledger, events, &name, &line_numbers);
    checkpoint_if_possible(&mut ledger);
    let appended = appended?;
    eprintln!("appended {appended} event(s); the log has {} records", ledger.log.size());
    Ok(true)
}

fn report_recovery(ledger: &Ledger) {
    if let Some(cut) = &ledger.recovery.cut {
        eprintln!("recovery: {cut}");
    }
}

fn checkpoint_if_possible(ledger: &mut Ledger) {
    match ledger.read_log_key().and_then(|key| ledger.checkpoint(&key)) {
        Ok(_) => {}
        Err(error) => eprintln!("warning: no new checkpoint: {error}"),
    }
}

pub fn checkpoint(dir: &Path) -> Result<bool> {
    let mut ledger = Ledger::open(dir, Config::default())?;
    report_recovery(&ledger);
    let key = ledger.read_log_key().context("signing a checkpoint needs keys/log.key")?;
    print!("{}", ledger.checkpoint(&key)?);
    Ok(true)
}

/// `docket recover`: opens the ledger (cutting a damaged last write only when
/// asked), reports what recovery did, and checkpoints what it kept.
pub fn recover(dir: &Path, cut_damaged_write: bool) -> Result<bool> {
    let mut ledger = Ledger::open_with(dir, Config::default(), cut_damaged_write)
        .with_context(|| format!("opening {}", dir.display()))?;
    match &ledger.recovery.cut {
        Some(cut) => println!("recovery: {cut}"),
        None => println!("recovery: nothing to cut; the log ends at a commit point"),
    }
    println!("the log has {} records", ledger.log.size());
    checkpoint_if_possible(&mut ledger);
    Ok(true)
}

/// The tree size a proof is for: the one given, else the latest checkpoint's
/// (what a verifier holds), else the whole log.
fn size_or_latest(snapshot: &Snapshot, given: Option<u64>) -> u64 {
    given.or(snapshot.latest.as_ref().map(|c| c.size)).unwrap_or(snapshot.size())
}

/// Proofs read the ledger without its lock (beside a running server) and write nothing.
pub fn proof_inclusion(dir: &Path, seq: u64, size: Option<u64>) -> Result<bool> {
    let snapshot = Snapshot::open(dir)?;
    let size = size_or_latest(&snapshot, size);
    let tree = &snapshot.tree;
    let proof = tree.inclusion_proof(seq, size)?;
    let root = tree.root(size).context("size beyond the log")?;
    let leaf = tree.tile(0, seq / 256, size).and_then(|t| t.get((seq % 256) as usize).copied()).context("leaf")?;
    verify_inclusion(seq, size, &leaf, &proof, &root).context("self-check of the proof failed")?;
    let proof: Vec<String> = proof.iter().map(hex32).collect();
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({"leaf_index": seq, "tree_size": size, "leaf_hash": hex32(&leaf), "root": hex32(&root), "proof": proof})
        )?
    );
    Ok(true)
}

pub fn proof_consistency(dir: &Path, old: u64, new: Option<u64>) -> Result<bool> {
    let snapshot = Snapshot::open(dir)?;
    let new = size_or_latest(&snapshot, new);
    let tree = &snapshot.tree;
    let proof = tree.consistency_proof(old, new)?;
    let (old_root, new_root) = (tree.root(old).context("old size")?, tree.root(new).context("new size")?);
    verify_consistency(old, new, &old_root, &new_root, &proof).context("self-check of the proof failed")?;
    let proof: Vec<String> = proof.iter().map(hex32).collect();
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({"old_size": old, "new_size": new, "old_root": hex32(&old_root), "new_root": hex32(&new_root), "proof": proof})
        )?
    );
    Ok(true)
}

pub fn verify(dir: &Path, checkpoint: Option<&Path>) -> Result<bool> {
    let older = checkpoint
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("verifying {bar:40} {pos}/{len} records ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let start = std::time::Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let result = docket_log::verify::verify(dir, older.as_deref(), threads, &mut |done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(report) => {
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "ok: {} records in {} segment(s), every frame, chain link, signature and authorisation checked ({:.0} records/s)",
                report.records,
                report.segments,
                report.records as f64 / seconds.max(1e-9)
            );
            match report.checkpoint_size {
                Some(size) => println!("root {} at size {size} matches the latest checkpoint", hex32(&report.root)),
                None => println!("root {}; there is no checkpoint to compare it with", hex32(&report.root)),
            }
            if let Some(older) = report.older_size {
                println!("the given checkpoint (size {older}) is consistent with the log");
            }
            if let Some(tail) = &report.tail {
                println!(
                    "note: {} byte(s) after the last commit point were not verified (a write in progress, or one never acknowledged that the writer cuts on open): {}",
                    tail.bytes, tail.reason
                );
            }
            match docket_log::inquiry::verify(dir) {
                Ok(register) => println!(
                    "inquiry register: {} records, every frame and chain link checked{}",
                    register.size,
                    register.checkpoint.map_or_else(String::new, |size| format!(
                        ", the latest register checkpoint (size {size}) matches"
                    ))
                ),
                Err(failure) => {
                    println!("FAILED: inquiry register: {failure}");
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Err(failure) => {
            println!("FAILED: {failure}");
            Ok(false)
        }
    }
}

pub fn demo(dir: &Path, subjects: u64, seed: u64) -> Result<bool> {
    let (built, checkpoint) = world::write_ledger(dir, subjects, seed)?;
    println!("demo ledger in {}: {} events, {subjects} subjects, seed {seed}", dir.display(), built.events.len());
    println!("planted procedural violations (cases), for the auditor to find:");
    for (violation, cases) in &built.violations {
        println!("  {violation:?}: {cases}");
    }
    println!("\nlatest checkpoint:\n{checkpoint}");
    Ok(true)
}

/// `docket inquiries`: verifies the inquiry register, then prints its records.
pub fn inquiries(
    dir: &Path,
    from: u64,
    limit: usize,
    agency: Option<&str>,
    format: crate::replay::ViewFormat,
) -> Result<bool> {
    use docket_log::inquiry;
    let verified = match inquiry::verify(dir) {
        Ok(verified) => verified,
        Err(failure) => {
            eprintln!("inquiry register of {}: FAILED: {failure}", dir.display());
            return Ok(false);
        }
    };
    let mut records = inquiry::read(dir, from, usize::MAX).context("reading the inquiry register")?;
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for record in &records {
        *counts.entry(record.inquiry.agency.clone()).or_default() += 1;
    }
    records.retain(|record| agency.is_none_or(|a| record.inquiry.agency == a));
    records.truncate(limit);
    let checkpoint = verified.checkpoint.map_or_else(|| "none signed yet".to_owned(), |size| size.to_string());
    match format {
        crate::replay::ViewFormat::Json => {
            let rows: Vec<_> = records
                .iter()
                .map(|r| {
                    json!({"seq": r.seq, "at": r.at.to_string(), "agency": r.inquiry.agency,
                           "key": hex32(&r.inquiry.key.0), "question": r.inquiry.question})
                })
                .collect();
            let out = json!({
                "size": verified.size,
                "root": hex32(&verified.root),
                "checkpoint_size": verified.checkpoint,
                "per_agency_from": from,
                "per_agency": counts,
                "records": rows,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        crate::replay::ViewFormat::Table => {
            println!(
                "inquiry register: {} records verified, root {}, latest signed checkpoint: {checkpoint}",
                verified.size,
                hex32(&verified.root)
            );
            println!("reads per agency (from {from}):");
            for (name, count) in &counts {
                println!("  {name:<24} {count}");
            }
            println!("{:>8}  {:<32}  {:<20}  question", "seq", "recorded at", "agency");
            for r in &records {
                println!("{:>8}  {:<32}  {:<20}  {}", r.seq, r.at.to_string(), r.inquiry.agency, r.inquiry.question);
            }
        }
    }
    Ok(true)
}
