//! fold-bench: the projections against their limit, measured in one run.
//!
//! * bare decode: read every committed frame and decode its signed event
//!   (`SignedEvent::from_wire`) on one thread: the floor under any fold;
//!   measured just before and just after the fold, and the mean used;
//! * fold: `Store::rebuild` over the same log (decoding on one thread,
//!   folding into redb on another), in a child process so that its peak
//!   memory (VmHWM) is its own; at two log sizes, to show that memory does
//!   not grow with history;
//! * audit: `docket_audit::audit` of every case on the materialised store
//!   with the bundled rule sets and calendar, in a child process (peak memory
//!   its own), at both log sizes; its rate in log records per second next to
//!   the fold rate;
//! * point check: `views::check` on the materialised store for random
//!   subjects and measures, p50 / p99;
//! * as-of: the same check as of a random seq, with registry snapshots (every
//!   64 registry events), without them (the registry folded from its first
//!   event), and by refolding the log up to that seq in memory (what a ledger
//!   without projections would do).
//!
//! ```text
//! fold-bench [--subjects 100000] [--small 25000] [--queries 20000] [--dir DIR]
//! fold-bench --fold-only LEDGER_DIR     # just the rebuild; FOLD_BATCH and FOLD_CACHE_MIB override the limits
//! ```

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use benchkit::Rng;
use docket_fold::case::{AsOf, Known};
use docket_fold::views::{self, Source};
use docket_fold::{Fold, Store, StoreLimits};
use docket_log::Reader;
use docket_model::{MeasureCode, PublicKey, SignedEvent, SubjectId, Timestamp};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn make_ledger(dir: &Path, subjects: u64) -> (u64, PublicKey) {
    let (demo, _) = docket_world::write_ledger(dir, subjects, 1).expect("demo ledger");
    (demo.events.len() as u64, PublicKey(demo.registry_root.verifying_key().to_bytes()))
}

/// Decodes every record; returns (records, seconds).
fn decode(dir: &Path) -> (u64, f64) {
    let started = Instant::now();
    let mut count = 0u64;
    Reader::new(docket_log::ledger::Paths::new(dir).segments())
        .read_from(0, None, |frame| {
            let event = SignedEvent::from_wire(&frame.wire).expect("decodes");
            std::hint::black_box(&event);
            count += 1;
            std::ops::ControlFlow::Continue(())
        })
        .expect("reads");
    (count, started.elapsed().as_secs_f64())
}

/// Child process: rebuild the store, print records, seconds and peak memory.
fn child_fold(dir: &Path, snapshot_events: u64) {
    let started = Instant::now();
    let mut limits = StoreLimits { registry_snapshot_events: snapshot_events, ..StoreLimits::default() };
    if let Some(batch) = std::env::var("FOLD_BATCH").ok().and_then(|v| v.parse().ok()) {
        limits.batch_events = batch;
    }
    if let Some(mib) = std::env::var("FOLD_CACHE_MIB").ok().and_then(|v| v.parse::<usize>().ok()) {
        limits.cache_bytes = mib << 20;
    }
    let (store, _) = Store::rebuild(dir, limits).expect("rebuild");
    let seconds = started.elapsed().as_secs_f64();
    println!("{} {seconds} {}", store.records(), benchkit::peak_rss_kib());
}

/// Child process: audit the materialised store, print records, seconds, peak memory and findings.
fn child_audit(dir: &Path) {
    let mut limits = StoreLimits::default();
    if let Some(mib) = std::env::var("FOLD_CACHE_MIB").ok().and_then(|v| v.parse::<usize>().ok()) {
        limits.cache_bytes = mib << 20;
    }
    let (store, _) = Store::open(dir, limits).expect("open");
    let rule_sets = docket_audit::RuleSet::bundled();
    let calendar = docket_audit::Calendar::bundled();
    let started = Instant::now();
    let as_of = AsOf { known: Known::All, valid_at: Timestamp::now() };
    let before = benchkit::peak_rss_kib();
    // Findings are counted as they come (`audit_each`), so the peak is the
    // audit's working state; `docket audit` collects them for its report.
    let mut findings = 0u64;
    let report = docket_audit::audit::audit_each(&store, as_of, &Default::default(), &rule_sets, &calendar, &mut |f| {
        std::hint::black_box(f);
        findings += 1;
    })
    .expect("audit");
    let seconds = started.elapsed().as_secs_f64();
    println!("{} {seconds} {} {findings} {} {before}", store.records(), benchkit::peak_rss_kib(), report.cases);
}

/// Runs this binary with `args` and returns the numbers it prints.
fn child(args: &[&str], cache_mib: Option<usize>) -> Vec<f64> {
    let exe = std::env::current_exe().expect("exe");
    let mut command = Command::new(exe);
    if let Some(mib) = cache_mib {
        command.env("FOLD_CACHE_MIB", mib.to_string());
    }
    let output = command.args(args).output().expect("child runs");
    assert!(output.status.success(), "child failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).split_whitespace().map(|p| p.parse().expect("number")).collect()
}

/// (records, seconds, peak KiB, findings, cases, peak KiB before the audit) of an audit in a child process.
fn audit_in_child(dir: &Path, cache_mib: Option<usize>) -> (u64, f64, u64, u64, u64, u64) {
    let n = child(&["--child-audit", &dir.display().to_string()], cache_mib);
    (n[0] as u64, n[1], n[2] as u64, n[3] as u64, n[4] as u64, n[5] as u64)
}

fn fold_in_child(dir: &Path, snapshot_events: u64) -> (u64, f64, u64) {
    let exe = std::env::current_exe().expect("exe");
    let output = Command::new(exe)
        .args(["--child-fold", &dir.display().to_string(), "--snapshots", &snapshot_events.to_string()])
        .output()
        .expect("child runs");
    assert!(output.status.success(), "child failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    let parts: Vec<&str> = text.split_whitespace().collect();
    (parts[0].parse().expect("records"), parts[1].parse().expect("seconds"), parts[2].parse().expect("kib"))
}

/// Latencies (µs) of `queries` point checks as of `known(rng)`.
fn checks(
    store: &Store,
    subjects: &[SubjectId],
    measures: &[MeasureCode],
    queries: u64,
    mut known: impl FnMut(&mut Rng) -> Known,
) -> Vec<f64> {
    let mut rng = Rng(7);
    let now = Timestamp::now();
    let mut latencies = Vec::with_capacity(queries as usize);
    for _ in 0..queries {
        let subject = &subjects[rng.below(subjects.len() as u64) as usize];
        let measure = &measures[rng.below(measures.len() as u64) as usize];
        let as_of = AsOf { known: known(&mut rng), valid_at: now };
        let started = Instant::now();
        let view = views::check(store, as_of, subject, measure, None).expect("check");
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(view);
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

const USAGE: &str = "fold-bench: the fold against bare decode, the audit against the fold, point-check and as-of latency, peak memory.\n\nusage: fold-bench [--subjects 100000] [--small 25000] [--queries 20000] [--dir DIR]\n       fold-bench --fold-only LEDGER_DIR     # just the rebuild; FOLD_BATCH and FOLD_CACHE_MIB override the limits\n\nexamples:\n  cargo run --release -p fold-bench -- --subjects 20000 --queries 2000\n  cargo run --release -p fold-bench -- --fold-only target/docket-bench/ledger-1000000";

fn main() {
    match benchkit::check_args(
        USAGE,
        &["--subjects", "--small", "--queries", "--dir", "--fold-only", "--snapshots", "--child-fold", "--child-audit"],
        &[],
    ) {
        Ok(true) => {}
        Ok(false) => return,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
    if run_alone() {
        return;
    }
    let large = benchkit::number("--subjects", 100_000);
    let small = benchkit::number("--small", large / 4);
    let queries = benchkit::number("--queries", 20_000);
    let base =
        benchkit::arg("--dir").map(std::path::PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("fold-bench"));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("dir");
    let (small_dir, large_dir) = (base.join("small"), base.join("large"));
    eprintln!("building demo ledgers: {small} and {large} subjects");
    let (small_events, _) = make_ledger(&small_dir, small);
    let (large_events, root) = make_ledger(&large_dir, large);

    let folds = measure_folds(&small_dir, &large_dir, large_events);
    let audits = measure_audits(&small_dir, &large_dir, folds.records);
    let checks = measure_checks(&base, &large_dir, root, queries, folds.records);
    let bytes_per_event =
        std::fs::metadata(large_dir.join("views.redb")).map(|m| m.len()).unwrap_or(0) as f64 / large_events as f64;
    print_table(small_events, large_events, &folds, &audits, &checks, bytes_per_event);
    let _ = std::fs::remove_dir_all(&base);
}

/// The modes that run one part alone (`--fold-only`) or are a child phase
/// (`--child-audit`, `--child-fold`); true if one ran.
fn run_alone() -> bool {
    if let Some(dir) = benchkit::arg("--fold-only") {
        let (records, seconds, kib) = fold_in_child(Path::new(&dir), 64);
        println!(
            "{records} records in {seconds:.2} s: {:.0} events/s, peak {} MiB",
            records as f64 / seconds,
            kib / 1024
        );
        return true;
    }
    if let Some(dir) = benchkit::arg("--child-audit") {
        child_audit(Path::new(&dir));
        return true;
    }
    if let Some(dir) = benchkit::arg("--child-fold") {
        child_fold(Path::new(&dir), benchkit::number("--snapshots", 64));
        return true;
    }
    false
}

/// The fold at both sizes, and the bare decode around the larger one.
struct Folds {
    records: u64,
    fold_seconds: f64,
    large_kib: u64,
    small_seconds: f64,
    small_kib: u64,
    decode_rate: f64,
    fold_rate: f64,
}

fn measure_folds(small_dir: &Path, large_dir: &Path, large_events: u64) -> Folds {
    eprintln!("decode, fold, decode over {large_events} records");
    let (_, decode_before) = decode(large_dir);
    let (records, fold_seconds, large_kib) = fold_in_child(large_dir, 64);
    let (_, decode_after) = decode(large_dir);
    let decode_seconds = (decode_before + decode_after) / 2.0;
    let (_, small_seconds, small_kib) = fold_in_child(small_dir, 64);
    let decode_rate = large_events as f64 / decode_seconds;
    let fold_rate = records as f64 / fold_seconds;
    Folds { records, fold_seconds, large_kib, small_seconds, small_kib, decode_rate, fold_rate }
}

/// The redb page cache fills up to its limit on the larger store; with a
/// small cache the rest of the audit's memory shows.
const SMALL_CACHE_MIB: usize = 4;

/// The audit at both sizes, with the default cache and with `SMALL_CACHE_MIB`.
struct Audits {
    audit_seconds: f64,
    audit_kib: u64,
    findings: u64,
    cases: u64,
    open_kib: u64,
    small_audit_seconds: f64,
    small_audit_kib: u64,
    small_cases: u64,
    small_open_kib: u64,
    tight_kib: u64,
    small_tight_kib: u64,
    audit_rate: f64,
}

fn measure_audits(small_dir: &Path, large_dir: &Path, records: u64) -> Audits {
    eprintln!("audit at both sizes");
    let (_, audit_seconds, audit_kib, findings, cases, open_kib) = audit_in_child(large_dir, None);
    let (_, small_audit_seconds, small_audit_kib, _, small_cases, small_open_kib) = audit_in_child(small_dir, None);
    let (_, _, tight_kib, ..) = audit_in_child(large_dir, Some(SMALL_CACHE_MIB));
    let (_, _, small_tight_kib, ..) = audit_in_child(small_dir, Some(SMALL_CACHE_MIB));
    let audit_rate = records as f64 / audit_seconds;
    Audits {
        audit_seconds,
        audit_kib,
        findings,
        cases,
        open_kib,
        small_audit_seconds,
        small_audit_kib,
        small_cases,
        small_open_kib,
        tight_kib,
        small_tight_kib,
        audit_rate,
    }
}

/// Point-check latencies (µs, sorted): now, as of a random seq with and
/// without registry snapshots, and by refolding the log in memory.
struct Checks {
    now_checks: Vec<f64>,
    asof_checks: Vec<f64>,
    plain_checks: Vec<f64>,
    refold: Vec<f64>,
}

fn measure_checks(base: &Path, large_dir: &Path, root: PublicKey, queries: u64, records: u64) -> Checks {
    let (store, _) = Store::open(large_dir, StoreLimits::default()).expect("open");
    let registry = store.registry(Known::All).expect("registry");
    let mut subjects = vec![];
    for (list, _) in registry.lists() {
        store.for_list(list, &mut |case| subjects.push(case.subject)).expect("list");
    }
    let measures: Vec<MeasureCode> = registry
        .mous()
        .flat_map(|(_, mou)| mou.terms.iter().flat_map(|t| t.parties.iter().flat_map(|p| p.measures.clone())))
        .collect();
    eprintln!("{queries} point checks over {} subjects", subjects.len());
    let now_checks = checks(&store, &subjects, &measures, queries, |_| Known::All);
    let asof_checks = checks(&store, &subjects, &measures, queries / 4, |rng| Known::Through(rng.below(records)));
    drop(store);
    let plain_checks = unsnapped_checks(base, large_dir, &subjects, &measures, queries, records);
    let refold = refold_checks(large_dir, root, &subjects, &measures, records);
    Checks { now_checks, asof_checks, plain_checks, refold }
}

/// The as-of checks on a copy of the large ledger whose store keeps no
/// registry snapshots.
fn unsnapped_checks(
    base: &Path,
    large_dir: &Path,
    subjects: &[SubjectId],
    measures: &[MeasureCode],
    queries: u64,
    records: u64,
) -> Vec<f64> {
    let unsnapped = base.join("unsnapped");
    std::fs::create_dir_all(&unsnapped).expect("dir");
    for entry in std::fs::read_dir(large_dir).expect("dir").flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) && entry.file_name() != "views.redb" {
            std::fs::copy(entry.path(), unsnapped.join(entry.file_name())).expect("copy");
        }
    }
    std::os::unix::fs::symlink(
        docket_log::ledger::Paths::new(large_dir).segments(),
        docket_log::ledger::Paths::new(&unsnapped).segments(),
    )
    .expect("link");
    fold_in_child(&unsnapped, u64::MAX);
    let (plain, _) =
        Store::open(&unsnapped, StoreLimits { registry_snapshot_events: u64::MAX, ..StoreLimits::default() })
            .expect("open");
    checks(&plain, subjects, measures, queries / 4, |rng| Known::Through(rng.below(records)))
}

/// No projection at all: five checks, each folding the log in memory up to
/// a random seq first.
fn refold_checks(
    large_dir: &Path,
    root: PublicKey,
    subjects: &[SubjectId],
    measures: &[MeasureCode],
    records: u64,
) -> Vec<f64> {
    let mut refold = vec![];
    let mut rng = Rng(11);
    for _ in 0..5 {
        let upto = rng.below(records);
        let subject = &subjects[rng.below(subjects.len() as u64) as usize];
        let started = Instant::now();
        let mut fold = Fold::new(root);
        Reader::new(docket_log::ledger::Paths::new(large_dir).segments())
            .read_from(0, None, |frame| {
                if frame.seq > upto {
                    return std::ops::ControlFlow::Break(());
                }
                let event = SignedEvent::from_wire(&frame.wire).expect("decodes");
                let time = Timestamp::from_micros(frame.system_time).expect("time");
                fold.apply(frame.seq, time, &event).expect("folds");
                std::ops::ControlFlow::Continue(())
            })
            .expect("reads");
        let as_of = AsOf { known: Known::Through(upto), valid_at: Timestamp::now() };
        std::hint::black_box(views::check(&fold, as_of, subject, &measures[0], None).expect("check"));
        refold.push(started.elapsed().as_secs_f64() * 1e6);
    }
    refold.sort_by(f64::total_cmp);
    refold
}

/// The markdown table of every figure.
fn print_table(
    small_events: u64,
    large_events: u64,
    folds: &Folds,
    audits: &Audits,
    checks: &Checks,
    bytes_per_event: f64,
) {
    let &Folds { records, fold_seconds, large_kib, small_seconds, small_kib, decode_rate, fold_rate } = folds;
    let &Audits {
        audit_seconds,
        audit_kib,
        findings,
        cases,
        open_kib,
        small_audit_seconds,
        small_audit_kib,
        small_cases,
        small_open_kib,
        tight_kib,
        small_tight_kib,
        audit_rate,
    } = audits;
    let Checks { now_checks, asof_checks, plain_checks, refold } = checks;
    println!("| figure | value | limit / peer | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| fold (rebuild into redb), {records} records | {:.0} events/s | bare decode {:.0} events/s | {:.2} | >= 0.50 |",
        fold_rate,
        decode_rate,
        fold_rate / decode_rate
    );
    println!(
        "| audit ({cases} cases, {findings} findings), {records} records | {audit_rate:.0} events/s ({audit_seconds:.2} s) | fold {fold_rate:.0} events/s | {:.2} | >= 0.50 |",
        audit_rate / fold_rate
    );
    println!(
        "| audit peak memory (VmHWM), {small_cases} vs {cases} cases | {} MiB vs {} MiB (after opening the store: {} vs {} MiB) | — | {:.2} | flat |",
        small_audit_kib / 1024,
        audit_kib / 1024,
        small_open_kib / 1024,
        open_kib / 1024,
        audit_kib as f64 / small_audit_kib.max(1) as f64
    );
    println!(
        "| audit peak memory with a {SMALL_CACHE_MIB} MiB redb cache, {small_cases} vs {cases} cases | {} MiB vs {} MiB | — | {:.2} | flat |",
        small_tight_kib / 1024,
        tight_kib / 1024,
        tight_kib as f64 / small_tight_kib.max(1) as f64
    );
    println!("| audit time, {small_cases} vs {cases} cases | {small_audit_seconds:.2} s vs {audit_seconds:.2} s | — | — | — |");
    println!(
        "| point check, now (p50 / p99) | {:.1} / {:.1} µs | — | — | p99 < 100 µs |",
        benchkit::percentile(now_checks, 0.5),
        benchkit::percentile(now_checks, 0.99)
    );
    println!(
        "| as-of point check, registry snapshots every 64 events (p50 / p99) | {:.1} / {:.1} µs | without snapshots {:.1} / {:.1} µs | {:.2} (p99) | — |",
        benchkit::percentile(asof_checks, 0.5),
        benchkit::percentile(asof_checks, 0.99),
        benchkit::percentile(plain_checks, 0.5),
        benchkit::percentile(plain_checks, 0.99),
        benchkit::percentile(asof_checks, 0.99) / benchkit::percentile(plain_checks, 0.99)
    );
    println!(
        "| as-of point check by refolding the log in memory (median of 5) | {:.0} µs | store as-of p50 {:.1} µs | {:.0}x slower | — |",
        benchkit::percentile(refold, 0.5),
        benchkit::percentile(asof_checks, 0.5),
        benchkit::percentile(refold, 0.5) / benchkit::percentile(asof_checks, 0.5)
    );
    println!(
        "| fold peak memory (VmHWM), {small_events} vs {large_events} records | {} MiB vs {} MiB | — | {:.2} | flat |",
        small_kib / 1024,
        large_kib / 1024,
        large_kib as f64 / small_kib.max(1) as f64
    );
    println!(
        "| fold time, {small_events} vs {large_events} records | {small_seconds:.2} s vs {fold_seconds:.2} s | — | — | — |"
    );
    println!("| store size | {bytes_per_event:.0} bytes/event | — | — | — |");
}
