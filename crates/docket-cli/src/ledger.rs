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

/// The registry template `docket init` writes: registry events to edit,
/// sign with the registry root key and append.
pub const REGISTRY_TEMPLATE: &str = "registry-template.jsonl";

/// `docket init`: builds the ledger in a staging directory beside `dir` and
/// renames it into place, so that a failed init leaves nothing that blocks
/// a retry. `dir` may exist if it is empty.
pub fn init(dir: &Path, origin: &str, registry: Option<&Path>, format: crate::Format) -> Result<bool> {
    let staging = staging_dir(dir)?;
    let built = init_in(&staging, origin, registry);
    let summary = match built {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error.context(format!("nothing was created in {}", dir.display())));
        }
    };
    if let Err(error) = std::fs::rename(&staging, dir) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(anyhow::anyhow!("moving the new ledger into {}: {error}; nothing was created", dir.display()));
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        docket_log::sync_dir(parent).with_context(|| format!("syncing {}", parent.display()))?;
    }
    print_init(dir, &summary, format)?;
    Ok(true)
}

/// What `docket init` made, for its report.
struct InitSummary {
    root: PublicKey,
    log_key: String,
    genesis: usize,
    checkpoint: String,
}

/// A new, empty staging directory beside `dir` (which must not hold anything).
fn staging_dir(dir: &Path) -> Result<std::path::PathBuf> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            bail!("{} exists and is not empty; nothing was changed (init makes a new ledger only)", dir.display());
        }
    } else if dir.exists() {
        bail!("{} exists and is not a directory; nothing was changed", dir.display());
    }
    let name = dir.file_name().with_context(|| format!("{}: not a directory name", dir.display()))?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let staging = parent.join(format!(".{}.init-{}-{nanos}", name.to_string_lossy(), std::process::id()));
    std::fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
    Ok(staging)
}

/// Makes the ledger in `dir`: keys, genesis registry events, the template, a first checkpoint.
fn init_in(dir: &Path, origin: &str, registry: Option<&Path>) -> Result<InitSummary> {
    let log_key = SigningKey::generate(&mut rand_core::OsRng);
    let root = SigningKey::generate(&mut rand_core::OsRng);
    let root_public = PublicKey(root.verifying_key().to_bytes());
    let config = ledger::init(dir, origin, &log_key, root_public, Some(&root))?;
    let mut ledger = Ledger::open(dir, Config::default())?;
    let mut genesis = 0;
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
        genesis = append_all(&mut ledger, events, &name, &[])?;
    }
    std::fs::write(dir.join(REGISTRY_TEMPLATE), registry_template())
        .with_context(|| format!("writing the registry template in {}", dir.display()))?;
    let checkpoint = ledger.checkpoint(&log_key)?;
    Ok(InitSummary { root: root_public, log_key: config.log_key, genesis, checkpoint })
}

fn print_init(dir: &Path, summary: &InitSummary, format: crate::Format) -> Result<()> {
    let template = dir.join(REGISTRY_TEMPLATE);
    if format == crate::Format::Json {
        let out = json!({
            "dir": dir, "registry_root": summary.root.to_string(), "log_key": summary.log_key,
            "genesis_events": summary.genesis, "registry_template": template, "checkpoint": summary.checkpoint,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let me = crate::invoked();
    println!("ledger created in {}", dir.display());
    if summary.genesis > 0 {
        println!("appended {} genesis registry event(s)", summary.genesis);
    }
    println!("registry root public key  {}", summary.root);
    println!("log key (signed-note)     {}", summary.log_key);
    println!("secret keys are in {}/keys (mode 0600)", dir.display());
    println!("\na registry template (agencies, a list, a measure, an MOU) is in {}:", template.display());
    println!("  edit it (each agency's key from `{me} keygen`), then sign and append it with the root key:");
    println!(
        "  {me} sign --key {} {} | {me} append --dir {}",
        dir.join("keys/registry-root.key").display(),
        template.display(),
        dir.display()
    );
    println!("\nfirst checkpoint:\n{}", summary.checkpoint);
    Ok(())
}

/// The registry template: comment lines, then one unsigned registry event a
/// line, from the bundled examples, with each agency key left to fill in.
pub fn registry_template() -> String {
    let examples = [
        include_str!("../../../schemas/examples/agency_registered.json"),
        include_str!("../../../schemas/examples/list_defined.json"),
        include_str!("../../../schemas/examples/measure_catalogued.json"),
        include_str!("../../../schemas/examples/mou_signed.json"),
    ];
    let mut out = String::from(
        "# docket registry template: one unsigned registry event a line (schemas/unsigned-event.schema.json).\n\
         # Replace each PUBLIC-KEY-OF-<agency> with the agency's public key (docket keygen prints it), edit names,\n\
         # lists, measures and MOUs, then: docket sign --key DIR/keys/registry-root.key FILE | docket append --dir DIR\n\
         # Lines starting with '#' are skipped.\n",
    );
    for example in examples {
        let mut event: serde_json::Value = serde_json::from_str(example).unwrap_or_default();
        if let Some(registered) = event.pointer_mut("/body/registry/agency_registered") {
            let agency = registered["agency"].as_str().unwrap_or("agency").to_owned();
            registered["keys"] = json!([format!("PUBLIC-KEY-OF-{agency}")]);
        }
        if let Some(mou) = event.pointer_mut("/body/registry/mou_signed") {
            // The MOU binds the one responsible agency to the one catalogued measure.
            mou["parties"] = json!([{"agency": "caac", "measures": ["restrict-air-travel"]}]);
        }
        out.push_str(&event.to_string());
        out.push('\n');
        if let Some(registered) = event.pointer_mut("/body/registry/agency_registered") {
            // A second agency, the one that applies the list's measure.
            registered["agency"] = json!("caac");
            registered["name"] = json!("Civil Aviation Administration of China");
            registered["roles"] = json!(["responsible"]);
            registered["keys"] = json!(["PUBLIC-KEY-OF-caac"]);
            out.push_str(&event.to_string());
            out.push('\n');
        }
    }
    out
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

pub fn checkpoint(dir: &Path, format: crate::Format) -> Result<bool> {
    let mut ledger = Ledger::open(dir, Config::default())?;
    report_recovery(&ledger);
    let key = ledger.read_log_key().context("signing a checkpoint needs keys/log.key")?;
    let note = ledger.checkpoint(&key)?;
    match (format, ledger.latest_checkpoint()) {
        (crate::Format::Json, Some(latest)) => println!(
            "{}",
            json!({"origin": latest.origin, "size": latest.size, "root": hex32(&latest.root), "note": note})
        ),
        _ => print!("{note}"),
    }
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
    // One leaf, not its whole tile: about 30 hashes when the tile is not in memory.
    let leaf = tree.leaf(seq, size).context("leaf")?;
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

pub fn verify(dir: &Path, checkpoint: Option<&Path>, format: crate::Format) -> Result<bool> {
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
    let seconds = start.elapsed().as_secs_f64();
    if format == crate::Format::Json {
        return verify_json(dir, result, seconds);
    }
    match result {
        Ok(report) => {
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

/// `docket verify --dir --format json`: one document, `ok` true or false.
fn verify_json(
    dir: &Path,
    result: Result<docket_log::verify::Report, docket_log::verify::Failure>,
    seconds: f64,
) -> Result<bool> {
    let report = match result {
        Ok(report) => report,
        Err(failure) => {
            println!("{}", json!({"ok": false, "failed": failure.to_string()}));
            return Ok(false);
        }
    };
    let register = docket_log::inquiry::verify(dir);
    let out = json!({
        "ok": register.is_ok(),
        "records": report.records,
        "segments": report.segments,
        "root": hex32(&report.root),
        "checkpoint_size": report.checkpoint_size,
        "older_checkpoint_size": report.older_size,
        "unverified_tail_bytes": report.tail.as_ref().map(|t| t.bytes),
        "seconds": seconds,
        "inquiry_register": match &register {
            Ok(r) => json!({"records": r.size, "checkpoint_size": r.checkpoint}),
            Err(failure) => json!({"failed": failure.to_string()}),
        },
    });
    println!("{out}");
    Ok(register.is_ok())
}

/// `docket demo`: builds the demo's events, then writes them into a new
/// ledger, saying on stderr what it is doing (20,000 subjects take seconds).
pub fn demo(dir: &Path, subjects: u64, seed: u64, format: crate::Format) -> Result<bool> {
    let started = std::time::Instant::now();
    eprintln!("demo: building {subjects} subjects' cases (seed {seed})");
    let built = world::build(subjects, seed);
    eprintln!(
        "demo: {} events built in {:.1} s; signing is done, appending them to {} one write per recording day (at most {} events a write)",
        built.events.len(),
        started.elapsed().as_secs_f64(),
        dir.display(),
        world::DEMO_BATCH_EVENTS
    );
    let progress = crate::progress::Ticker::start("demo: appending", dir.join("segments"));
    let written = world::write_events(dir, seed, &built.registry_root, &built.events, &built.recorded_late);
    drop(progress);
    let checkpoint = written?;
    eprintln!("demo: done in {:.1} s", started.elapsed().as_secs_f64());
    if format == crate::Format::Json {
        let violations: serde_json::Map<String, serde_json::Value> =
            built.violations.iter().map(|(v, cases)| (format!("{v:?}"), json!(cases))).collect();
        let out = json!({"dir": dir, "events": built.events.len(), "subjects": subjects, "seed": seed,
                         "violations": violations, "checkpoint": checkpoint});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(true);
    }
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
        crate::replay::ViewFormat::Text => {
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
