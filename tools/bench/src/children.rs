//! The suite's phases, each run in its own child process (`docket-bench --child PHASE …`)
//! so that its peak memory is its own; each prints one JSON object.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use docket_fold::case::{AsOf, Known};
use docket_fold::{views, Store, StoreLimits};
use docket_log::ledger::{self, Ledger};
use docket_log::{verify, Config, Limits, Sequencer};
use docket_model::{Body, MeasureCode, PublicKey, SignedEvent, SubjectId, Timestamp};
use docket_server::ServerLimits;
use docket_world as world;
use serde_json::json;

/// Dispatches `args` (phase name first).
pub fn run(args: &[String]) -> Result<()> {
    let arg = |i: usize| args.get(i).cloned().ok_or_else(|| anyhow!("child {:?}: argument {i} missing", args.first()));
    let n = |i: usize| -> Result<u64> { arg(i)?.parse().with_context(|| format!("argument {i}")) };
    let value = match arg(0)?.as_str() {
        "ingest" => ingest(Path::new(&arg(1)?), Path::new(&arg(2)?), n(3)? as usize, n(4)?, n(5)?)?,
        "http" => http(Path::new(&arg(1)?), Path::new(&arg(2)?), n(3)?, n(4)? as usize, n(5)? as usize)?,
        "verify" => verify_phase(Path::new(&arg(1)?))?,
        "fold" => fold(Path::new(&arg(1)?))?,
        "audit" => audit(Path::new(&arg(1)?), Path::new(&arg(2)?))?,
        "queries" => queries(Path::new(&arg(1)?), Path::new(&arg(2)?), n(3)?, n(4)? as usize)?,
        "open" => open_phase(Path::new(&arg(1)?), n(2)?)?,
        other => bail!("no child phase {other:?}"),
    };
    println!("{value}");
    Ok(())
}

/// Which of `parts` appenders carries `event`: all of a case's events go through the same one, in order.
pub fn partition(event: &SignedEvent, parts: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if let Body::Case(case) = &event.event().body {
        case.list.as_str().hash(&mut hasher);
        case.number.as_str().hash(&mut hasher);
    }
    (hasher.finish() % parts.max(1) as u64) as usize
}

/// A new ledger in `dir` for the data set's seed, holding its registry events; returns the case events' reader offset.
fn fresh_ledger(data: &Path, dir: &Path) -> Result<(Ledger, docket_gen::Manifest)> {
    let manifest = docket_gen::Manifest::read(data)?;
    let root = world::key(manifest.seed, "registry-root");
    if hex::encode(root.verifying_key().to_bytes()) != manifest.registry_root {
        bail!("{}: the registry root is not the one of seed {}", data.display(), manifest.seed);
    }
    let public = PublicKey(root.verifying_key().to_bytes());
    ledger::init(dir, "docket.invalid/bench", &world::key(manifest.seed, "log"), public, None)?;
    let mut ledger = Ledger::open(dir, Config::default())?;
    let mut registry = Vec::new();
    docket_gen::read_wire(data, |wire| {
        if let Ok(event) = SignedEvent::from_wire(wire) {
            registry.push(event);
        }
        (registry.len() as u64) < manifest.registry_events
    })?;
    for result in ledger.log.append_batch(registry, Timestamp::now())? {
        result.map_err(|refusal| anyhow!("registry event refused: {refusal}"))?;
    }
    Ok((ledger, manifest))
}

/// Reads the case events (after the registry) in order, at most `limit`, handing each to `each`.
fn case_events(data: &Path, registry: u64, limit: u64, mut each: impl FnMut(SignedEvent)) -> Result<()> {
    let (mut index, mut taken) = (0u64, 0u64);
    let mut failure = None;
    docket_gen::read_wire(data, |wire| {
        index += 1;
        if index <= registry {
            return true;
        }
        match SignedEvent::from_wire(wire) {
            Ok(event) => each(event),
            Err(e) => {
                failure = Some(anyhow!("event {}: {e}", index - 1));
                return false;
            }
        }
        taken += 1;
        taken < limit
    })?;
    failure.map_or(Ok(()), Err)
}

/// Durable ingest in process: every case event through the sequencer from
/// `appenders` tasks; the rate over the first `first` events and over the last `tail` too.
fn ingest(data: &Path, dir: &Path, appenders: usize, first: u64, tail: u64) -> Result<serde_json::Value> {
    let (ledger, manifest) = fresh_ledger(data, dir)?;
    let log_key = ledger.read_log_key()?;
    let (log, mut checkpointer, _lock) = ledger.into_parts();
    let total = manifest.events - manifest.registry_events;
    let mut limits = Limits::default();
    // A diagnostic knob: the sequencer's verification threads (default cores).
    if let Some(threads) = std::env::var("BENCH_VERIFY_THREADS").ok().and_then(|v| v.parse().ok()) {
        limits.verify_threads = threads;
    }
    let (sequencer, writer) = Sequencer::start(log, limits);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let acked = Arc::new(AtomicU64::new(0));
    // Nanoseconds from the start at which the first `first` and the first `total - tail` were acknowledged.
    let marks = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let started = Instant::now();
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..appenders {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<SignedEvent>(64);
        senders.push(sender);
        let (sequencer, acked, marks) = (sequencer.clone(), acked.clone(), marks.clone());
        tasks.push(runtime.spawn(async move {
            while let Some(event) = receiver.recv().await {
                sequencer.append(event).await.map_err(|e| anyhow!("refused: {e}"))?;
                let n = acked.fetch_add(1, Ordering::Relaxed) + 1;
                let now = started.elapsed().as_nanos() as u64;
                if n == first.min(total) {
                    marks[0].store(now, Ordering::Relaxed);
                }
                if n == total.saturating_sub(tail).max(1) {
                    marks[1].store(now, Ordering::Relaxed);
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    let reader = {
        let data = data.to_owned();
        std::thread::spawn(move || {
            case_events(&data, manifest.registry_events, u64::MAX, |event| {
                let part = partition(&event, senders.len());
                // A send fails only if the appender stopped on a refusal, which its task reports.
                let _ = senders[part].blocking_send(event);
            })
        })
    };
    reader.join().map_err(|_| anyhow!("reader panicked"))??;
    runtime.block_on(async {
        for task in tasks {
            task.await??;
        }
        Ok::<(), anyhow::Error>(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    drop(sequencer);
    let (log, stats) = writer.join().map_err(|_| anyhow!("writer panicked"))?;
    if log.size() != manifest.events {
        bail!("the log holds {} records, not {}", log.size(), manifest.events);
    }
    checkpointer.sign(&log.tree(), log.size(), &log_key)?;
    let first_s = marks[0].load(Ordering::Relaxed) as f64 / 1e9;
    let tail_from = marks[1].load(Ordering::Relaxed) as f64 / 1e9;
    Ok(json!({
        "events": total,
        "seconds": seconds,
        "rate": total as f64 / seconds,
        "rate_first": first.min(total) as f64 / first_s,
        "rate_tail": tail.min(total) as f64 / (seconds - tail_from),
        "mean_batch": stats.events as f64 / stats.batches.max(1) as f64,
        "peak_kib": benchkit::peak_rss_kib(),
    }))
}

/// HTTP ingest: the first `count` case events as wire-form batches of `batch`
/// from `clients` threads (each carrying whole cases, in order) against the
/// server on a fresh ledger.
fn http(data: &Path, dir: &Path, count: u64, clients: usize, batch: usize) -> Result<serde_json::Value> {
    let (ledger, manifest) = fresh_ledger(data, dir)?;
    drop(ledger);
    let mut bodies: Vec<Vec<Vec<u8>>> = vec![Vec::new(); clients];
    let mut pending: Vec<Vec<u8>> = vec![Vec::new(); clients];
    let mut in_pending = vec![0usize; clients];
    case_events(data, manifest.registry_events, count, |event| {
        let part = partition(&event, clients);
        let wire = event.to_wire();
        pending[part].extend_from_slice(&(wire.len() as u32).to_be_bytes());
        pending[part].extend_from_slice(&wire);
        in_pending[part] += 1;
        if in_pending[part] == batch {
            bodies[part].push(std::mem::take(&mut pending[part]));
            in_pending[part] = 0;
        }
    })?;
    for (part, rest) in pending.into_iter().enumerate() {
        if !rest.is_empty() {
            bodies[part].push(rest);
        }
    }
    // The bench measures the server, not the rate limits (per agency, and per
    // client address for appends without effect: all appenders share 127.0.0.1).
    let limits = ServerLimits {
        appends_per_agency_per_s: 1_000_000,
        append_burst: 1_000_000,
        replays_per_address_per_s: 1_000_000,
        replay_burst: 1_000_000,
        ..ServerLimits::default()
    };
    let serving = benchkit::serve(dir, limits).map_err(|e| anyhow!("server: {e}"))?;
    let base = serving.base.clone();
    let started = Instant::now();
    let results: Vec<Result<Vec<f64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|mine| {
                let base = &base;
                scope.spawn(move || -> Result<Vec<f64>> {
                    let client = docket_client::Client::new(base)?;
                    let mut latencies = Vec::new();
                    for body in mine {
                        let sent = Instant::now();
                        let response = client.request(
                            "POST",
                            "/v1/events/batch",
                            body,
                            &[("Content-Type", "application/octet-stream")],
                        )?;
                        if response.status != 200 {
                            bail!("batch refused: {} {}", response.status, response.text());
                        }
                        latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("client panicked")))).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    serving.stop().map_err(|e| anyhow!("server: {e}"))?;
    let mut latencies = Vec::new();
    for result in results {
        latencies.extend(result?);
    }
    latencies.sort_by(f64::total_cmp);
    let sent = count.min(manifest.events - manifest.registry_events);
    Ok(json!({
        "events": sent,
        "rate": sent as f64 / seconds,
        "p50_ms": benchkit::percentile(&latencies, 0.5),
        "p99_ms": benchkit::percentile(&latencies, 0.99),
        "peak_kib": benchkit::peak_rss_kib(),
    }))
}

fn verify_phase(dir: &Path) -> Result<serde_json::Value> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let started = Instant::now();
    let report = verify::verify(dir, None, threads, &mut |_, _| {}).map_err(|f| anyhow!("verify: {f}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if report.checkpoint_size != Some(report.records) {
        bail!("verify: the checkpoint covers {:?} of {} records", report.checkpoint_size, report.records);
    }
    Ok(
        json!({"records": report.records, "rate": report.records as f64 / seconds, "peak_kib": benchkit::peak_rss_kib()}),
    )
}

fn fold(dir: &Path) -> Result<serde_json::Value> {
    let started = Instant::now();
    let (store, _) = Store::rebuild(dir, StoreLimits::default())?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(
        json!({"records": store.records(), "rate": store.records() as f64 / seconds, "peak_kib": benchkit::peak_rss_kib()}),
    )
}

/// The audit of every case, its findings (past their deadline) scored against the generator's ground truth.
fn audit(dir: &Path, data: &Path) -> Result<serde_json::Value> {
    let (store, _) = Store::open(dir, StoreLimits::default())?;
    // The suite ingests ten years of history today, so every act is recorded
    // years after its date: the recording lag is not judged here, and the
    // cases planted with a late recording are not counted as planted.
    let mut rule_sets = docket_audit::RuleSet::bundled();
    for rules in &mut rule_sets {
        rules.recording = None;
    }
    let calendar = docket_audit::Calendar::bundled();
    // Judged on the generated world's last day, as the audit's own tests
    // judge it: the planted truth says what was violated by then, and a
    // later day adds findings the world did not plant (terms that ran out
    // since, with nobody acting on them).
    let as_of = AsOf { known: Known::All, valid_at: docket_world::worlds_last_day() };
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut findings = 0u64;
    let started = Instant::now();
    let report =
        docket_audit::audit::audit_each(&store, as_of, &Default::default(), &rule_sets, &calendar, &mut |finding| {
            findings += 1;
            if finding.status != docket_audit::audit::FindingStatus::Pending {
                found.insert(finding.number.to_string());
            }
        })?;
    let seconds = started.elapsed().as_secs_f64();
    let truth = std::fs::read_to_string(data.join("truth.tsv"))?;
    let planted: BTreeSet<String> = truth
        .lines()
        .filter(|line| !line.ends_with("\tRecordedLate"))
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect();
    let hits = planted.intersection(&found).count() as f64;
    Ok(json!({
        "cases": report.cases,
        "findings": findings,
        "seconds": seconds,
        "rate": store.records() as f64 / seconds,
        "recall": hits / planted.len().max(1) as f64,
        "precision": hits / found.len().max(1) as f64,
        "peak_kib": benchkit::peak_rss_kib(),
    }))
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// Inclusion proofs timed in the queries phase.
const PROOF_SAMPLES: usize = 200_000;

/// Inclusion proofs of random records against the whole tree just opened
/// (a cold cache): p50 and p99 in µs.
fn proofs(snapshot: &docket_log::ledger::Snapshot, seed: u64) -> Result<(f64, f64)> {
    let tree = &snapshot.tree;
    let size = snapshot.size();
    let mut rng = benchkit::Rng(seed);
    let mut latencies = Vec::new();
    // A proof takes microseconds: many samples, so that the p99 is not one preemption.
    for _ in 0..PROOF_SAMPLES {
        let index = rng.below(size);
        let started = Instant::now();
        let proof = tree.inclusion_proof(index, size)?;
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(proof);
    }
    let latencies = sorted(latencies);
    Ok((benchkit::percentile(&latencies, 0.5), benchkit::percentile(&latencies, 0.99)))
}

/// The opens alone, each step on stderr (`docket-bench --child open DIR
/// SEED`, run by hand on a ledger the suite left, not by the suite): what
/// `docket proof` opens and proofs on it, what `docket serve` opens (the
/// ledger with its lock, then the projections), and the whole server.
fn open_phase(dir: &Path, seed: u64) -> Result<serde_json::Value> {
    let mut results = BTreeMap::new();
    let started = Instant::now();
    let snapshot = docket_log::ledger::Snapshot::open(dir)?;
    results.insert("snapshot_open_s", started.elapsed().as_secs_f64());
    eprintln!("snapshot ({} records): {}", snapshot.size(), snapshot.opened.summary());
    let (p50, p99) = proofs(&snapshot, seed ^ 1)?;
    results.insert("proof_p50_us", p50);
    results.insert("proof_p99_us", p99);
    drop(snapshot);
    let started = Instant::now();
    let ledger = Ledger::open(dir, Config::default())?;
    results.insert("ledger_open_s", started.elapsed().as_secs_f64());
    eprintln!("ledger ({} replayed): {}", ledger.recovery.replayed, ledger.opened.summary());
    drop(ledger);
    let started = Instant::now();
    let store_limits = StoreLimits { durable_catch_up: false, ..StoreLimits::default() };
    let (store, opened) = Store::open(dir, store_limits)?;
    results.insert("store_open_s", started.elapsed().as_secs_f64());
    eprintln!(
        "projections: {} records, {} folded on open, rebuilt: {:?}",
        store.records(),
        opened.folded,
        opened.rebuilt
    );
    drop(store);
    let started = Instant::now();
    let serving = benchkit::serve(dir, ServerLimits::default()).map_err(|e| anyhow!("server: {e}"))?;
    results.insert("serve_open_s", started.elapsed().as_secs_f64());
    serving.stop().map_err(|e| anyhow!("server: {e}"))?;
    Ok(serde_json::to_value(results)?)
}

/// Point checks (now, as of a random seq, over HTTP) and inclusion proofs.
/// With `cache_mib` > 0 the store's page cache is that large and every
/// query is run once, untimed, before the timed pass (a warm store).
fn queries(dir: &Path, queries_file: &Path, seed: u64, cache_mib: usize) -> Result<serde_json::Value> {
    let store_limits = if cache_mib > 0 {
        StoreLimits { cache_bytes: cache_mib << 20, ..StoreLimits::default() }
    } else {
        StoreLimits::default()
    };
    let pairs = crate::probes::read_queries(queries_file)?;
    if pairs.is_empty() {
        bail!("{}: no queries", queries_file.display());
    }
    let parsed: Vec<(SubjectId, MeasureCode)> = pairs
        .iter()
        .map(|(s, m)| -> Result<_> {
            Ok((
                docket_fold::query::parse_subject("subject", s).map_err(|e| anyhow!("{s}: {e}"))?,
                MeasureCode::parse(m)?,
            ))
        })
        .collect::<Result<_>>()?;
    let mut results = BTreeMap::new();
    {
        let (store, _) = Store::open(dir, store_limits.clone())?;
        let records = store.records();
        let now = Timestamp::now();
        if cache_mib > 0 {
            for (subject, measure) in &parsed {
                views::check(&store, AsOf { known: Known::All, valid_at: now }, subject, measure, None)?;
            }
        }
        let (mut latencies, mut restricted) = (Vec::new(), 0usize);
        for (subject, measure) in &parsed {
            let started = Instant::now();
            let view = views::check(&store, AsOf { known: Known::All, valid_at: now }, subject, measure, None)?;
            latencies.push(started.elapsed().as_secs_f64() * 1e6);
            restricted += usize::from(view.restricted);
        }
        let latencies = sorted(latencies);
        results.insert("check_p50_us", benchkit::percentile(&latencies, 0.5));
        results.insert("check_p99_us", benchkit::percentile(&latencies, 0.99));
        results.insert("restricted_share", restricted as f64 / parsed.len() as f64);
        let mut rng = benchkit::Rng(seed);
        let mut latencies = Vec::new();
        for (subject, measure) in parsed.iter().take(parsed.len() / 4 + 1) {
            let as_of = AsOf { known: Known::Through(rng.below(records)), valid_at: now };
            let started = Instant::now();
            std::hint::black_box(views::check(&store, as_of, subject, measure, None)?);
            latencies.push(started.elapsed().as_secs_f64() * 1e6);
        }
        let latencies = sorted(latencies);
        results.insert("asof_p50_us", benchkit::percentile(&latencies, 0.5));
        results.insert("asof_p99_us", benchkit::percentile(&latencies, 0.99));
    }
    {
        // What `docket proof` opens: the tiles up to the checkpoint and the records after it.
        let started = Instant::now();
        let snapshot = docket_log::ledger::Snapshot::open(dir)?;
        results.insert("snapshot_open_s", started.elapsed().as_secs_f64());
        let (p50, p99) = proofs(&snapshot, seed ^ 1)?;
        results.insert("proof_p50_us", p50);
        results.insert("proof_p99_us", p99);
    }
    // Over HTTP: one connection, one request after another (as the PostgreSQL peer's query).
    let limits = ServerLimits { store_cache_bytes: store_limits.cache_bytes, ..ServerLimits::default() };
    // Open-to-ready: from the start of `Server::open` to a bound listener.
    let started = Instant::now();
    let serving = benchkit::serve(dir, limits).map_err(|e| anyhow!("server: {e}"))?;
    results.insert("serve_open_s", started.elapsed().as_secs_f64());
    let base = serving.base.clone();
    let client = docket_client::Client::new(&base)?.with_identity("china-railway", world::key(seed, "china-railway"));
    // The floor: an HTTP round trip that does no work (`/healthz`), on the same kind of connection.
    let mut floor = Vec::new();
    let anonymous = docket_client::Client::new(&base)?;
    for _ in 0..pairs.len() {
        let started = Instant::now();
        anonymous.get("/healthz")?;
        floor.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let floor = sorted(floor);
    results.insert("http_floor_p50_us", benchkit::percentile(&floor, 0.5));
    results.insert("http_floor_p99_us", benchkit::percentile(&floor, 0.99));
    if cache_mib > 0 {
        for (subject, measure) in &pairs {
            client.get(&format!("/v1/views/check?subject={subject}&measure={measure}"))?;
        }
    }
    let mut latencies = Vec::new();
    for (subject, measure) in &pairs {
        let path = format!("/v1/views/check?subject={subject}&measure={measure}");
        let started = Instant::now();
        let response = client.get(&path)?;
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
        if response.status != 200 {
            bail!("{path}: {} {}", response.status, response.text());
        }
    }
    serving.stop().map_err(|e| anyhow!("server: {e}"))?;
    let latencies = sorted(latencies);
    results.insert("http_check_p50_us", benchkit::percentile(&latencies, 0.5));
    results.insert("http_check_p99_us", benchkit::percentile(&latencies, 0.99));
    let mut value = serde_json::to_value(results)?;
    value["peak_kib"] = json!(benchkit::peak_rss_kib());
    Ok(value)
}
