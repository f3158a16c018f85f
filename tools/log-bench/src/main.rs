//! log-bench: docket's durable ingest and `verify` rates next to their limit
//! probes, all measured in one run on the same disk and cores.
//!
//! * raw append: 300-byte records written with one `fdatasync` per batch of
//!   1, 16 and 256 records (the batch a group commit gets from that many
//!   concurrent appenders);
//! * ed25519 batch verify: ed25519-dalek's `verify_batch` in batches of 64 on
//!   all cores, over the same signed events;
//! * every probe is measured just before and just after the docket figure it
//!   limits, and the ratio uses their mean;
//! * docket ingest: signed events through the full append path (batch
//!   signature check, registry authorisation, case checks, frames, fdatasync)
//!   with 1, 16 and 256 concurrent appenders through the sequencer;
//! * docket verify: the verifier over the resulting ledger.
//!
//! ```text
//! log-bench [--events 100000] [--dir DIR] [--appenders 1|16|256]   # DIR must be on a real disk, not tmpfs
//! ```

use std::path::Path;
use std::time::Instant;

use docket_log::ledger::{self, Ledger};
use docket_log::{verify, Config, Limits, Sequencer};
use docket_model::{PublicKey, SignedEvent, Timestamp};
use docket_world as world;

/// A fresh ledger holding the demo registry (3 lists, 24 agencies), ready for notices.
fn fresh_ledger(dir: &Path, seed: u64) -> Ledger {
    let registry = world::build(0, seed);
    let root = PublicKey(registry.registry_root.verifying_key().to_bytes());
    ledger::init(dir, "docket.invalid/bench", &world::key(seed, "log"), root, None).expect("init");
    let mut ledger = Ledger::open(dir, Config::default()).expect("open");
    ledger.log.append_batch(registry.events, Timestamp::now()).expect("registry");
    ledger
}

fn ingest(dir: &Path, events: &[SignedEvent], appenders: usize, seed: u64) -> (f64, f64) {
    let (log, _, _lock) = fresh_ledger(dir, seed).into_parts();
    let registry_events = log.size() as usize;
    let mut limits = Limits::default();
    if let Some(threads) = benchkit::arg("--verify-threads").and_then(|t| t.parse().ok()) {
        limits.verify_threads = threads;
    }
    let (sequencer, writer) = Sequencer::start(log, limits);
    let elapsed = benchkit::append_concurrently(&sequencer, events, appenders);
    let cpu = benchkit::thread_cpu();
    drop(sequencer);
    if std::env::var_os("LOG_BENCH_CPU").is_some() {
        eprintln!("ingest {appenders}: wall {elapsed:.2} s; CPU s by thread (cumulative): {cpu:?}");
    }
    let (log, stats) = writer.join().expect("writer");
    assert_eq!(log.size() as usize, events.len() + registry_events);
    (events.len() as f64 / elapsed, stats.events as f64 / stats.batches.max(1) as f64)
}

const USAGE: &str = "log-bench: durable ingest (1, 16, 256 appenders) and verify next to raw fdatasync-batched appends and batch verify.\n\nusage: log-bench [--events 100000] [--dir DIR] [--appenders 1|16|256] [--verify-threads cores]\n\nDIR must be on a real disk, not tmpfs.\n\nexamples:\n  cargo run --release -p log-bench -- --events 100000\n  cargo run --release -p log-bench -- --events 20000 --appenders 256 --dir /var/tmp/lb";

fn main() {
    benchkit::args_or_exit(USAGE, &["--events", "--dir", "--appenders", "--verify-threads"]);
    let count = benchkit::number("--events", 100_000);
    let seed = 1;
    let base = std::env::args()
        .skip_while(|a| a != "--dir")
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().expect("cwd").join("target/log-bench"));
    std::fs::create_dir_all(&base).expect("bench dir");
    let work = tempfile::tempdir_in(&base).expect("tempdir");
    eprintln!("signing {count} events…");
    let events = benchkit::notices(0, count, seed);
    let wire = events[0].to_wire().len();
    println!(
        "log-bench: {count} notices ({wire}-byte wire form, one signing agency), {} cores, disk {}\n",
        std::thread::available_parallelism().map_or(1, usize::from),
        base.display()
    );

    // Each docket figure is bracketed by its probes, measured just before and
    // just after it; the ratio uses their mean, so drift of this shared machine
    // during the run mostly cancels.
    println!("| measure | events/s | limit probe (mean of before and after) | probe /s | ratio |");
    println!("|---|---:|---|---:|---:|");
    let mut probe_log = Vec::new();
    // `--appenders 256` measures one concurrency only (for quick iterations).
    let only = benchkit::number("--appenders", 0) as usize;
    let all = [1usize, 16, 256];
    for appenders in all.into_iter().filter(|a| only == 0 || *a == only) {
        let records = if appenders == 1 { 3000 } else { count };
        let n = if appenders == 1 { events.len().min(3000) } else { events.len() };
        let (append_before, verify_before) = (
            benchkit::raw_append(work.path(), records, appenders as u64, 300).expect("raw append"),
            benchkit::batch_verify(&events),
        );
        let dir = work.path().join(format!("ingest-{appenders}"));
        let (rate, batch) = ingest(&dir, &events[..n], appenders, seed);
        let (append_after, verify_after) = (
            benchkit::raw_append(work.path(), records, appenders as u64, 300).expect("raw append"),
            benchkit::batch_verify(&events),
        );
        let append = (append_before + append_after) / 2.0;
        let verify = (verify_before + verify_after) / 2.0;
        let limit = append.min(verify);
        println!(
            "| ingest, {appenders} appender(s) (mean batch {batch:.0}) | {rate:.0} | min(raw append batch {appenders}, 2-core dalek batch verify) | {limit:.0} | {:.2} |",
            rate / limit
        );
        probe_log.push(format!("batch {appenders}: {append_before:.0} and {append_after:.0}/s; verify {verify_before:.0} and {verify_after:.0}/s"));
    }
    let dir = work.path().join("ingest-256");
    let before = benchkit::batch_verify(&events);
    let start = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let report = verify::verify(&dir, None, threads, &mut |_, _| {}).expect("verifies");
    let verify_rate = report.records as f64 / start.elapsed().as_secs_f64();
    let after = benchkit::batch_verify(&events);
    let probe = (before + after) / 2.0;
    println!(
        "| docket verify ({} records) | {verify_rate:.0} | 2-core dalek batch verify | {probe:.0} | {:.2} |",
        report.records,
        verify_rate / probe
    );
    println!(
        "\nprobes before and after each figure: {}; around verify: {before:.0} and {after:.0}/s",
        probe_log.join("; ")
    );
    single_reads(&dir, report.records);
    reopen(&dir, report.records);
}

/// Opening the ledger again after a checkpoint: the open reads the tiles up
/// to the checkpoint and the index, and replays only the records after them.
fn reopen(dir: &Path, records: u64) {
    let mut ledger = Ledger::open(dir, Config::default()).expect("opens");
    let key = ledger.read_log_key().expect("log key");
    ledger.checkpoint(&key).expect("checkpoint");
    let first = ledger.recovery.replayed;
    drop(ledger);
    let started = Instant::now();
    let ledger = Ledger::open(dir, Config::default()).expect("reopens");
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let replayed = ledger.recovery.replayed;
    drop(ledger);
    let started = Instant::now();
    let snapshot = ledger::Snapshot::open(dir).expect("snapshot");
    let snapshot_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(snapshot.size(), records);
    println!(
        "\n| reopen of {records} records after a checkpoint | time | records replayed |\n|---|---:|---:|\n\
         | `Ledger::open` (first open after the ingest: the tail since the index's last flush) | — | {first} |\n\
         | `Ledger::open` (tiles and index) | {open_ms:.1} ms | {replayed} |\n\
         | `Snapshot::open` (what `docket proof` opens) | {snapshot_ms:.1} ms | — |"
    );
}

/// Reading one record (a feed page's first, `GET /v1/events/{seq}`) at the
/// start and at the end of a segment, through the segment's seq -> offset
/// index and without it (the scan every read made before the index).
fn single_reads(dir: &Path, records: u64) {
    const READS: u32 = 200;
    let reader = docket_log::Reader::new(docket_log::ledger::Paths::new(dir).segments());
    let time = |seq: u64| {
        let start = Instant::now();
        for _ in 0..READS {
            assert!(reader.checksum_of(seq).expect("reads").is_some());
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(READS)
    };
    let (early, late) = (10, records - 10);
    let indexed = (time(early), time(late));
    let index = docket_log::ledger::Paths::new(dir).segment_index(0);
    let moved = index.with_extension("idx.away");
    std::fs::rename(&index, &moved).expect("move the index away");
    let scanned = (time(early), time(late));
    std::fs::rename(&moved, &index).expect("restore the index");
    println!("\n| one-record read, one segment of {records} records | at seq {early} | at seq {late} | late / early |");
    println!("|---|---:|---:|---:|");
    println!(
        "| through the segment index | {:.0} µs | {:.0} µs | {:.2} |",
        indexed.0,
        indexed.1,
        indexed.1 / indexed.0
    );
    println!(
        "| scanning from the segment's start | {:.0} µs | {:.0} µs | {:.2} |",
        scanned.0,
        scanned.1,
        scanned.1 / scanned.0
    );
}
