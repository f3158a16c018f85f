//! docket-bench: the benchmark suite, one command, results into BENCH.md.
//!
//! For each size (default 1M and 10M events) of the national data set
//! (`docket-gen`, generated once per size and seed and kept):
//!
//! * limit probes in the same run: raw append with one `fdatasync` per batch
//!   of `--appenders` records, ed25519-dalek batch verify on all cores,
//!   SHA-256 and BLAKE3 over the events' bytes, bare decode of the canonical
//!   form on one core; ingest and verify are bracketed by their probes
//!   (measured just before and just after, the mean used);
//! * docket, each phase in a child process so its peak memory (VmHWM) is its
//!   own: durable ingest in process (`--appenders` tasks through the
//!   sequencer, every case's events in order), HTTP ingest (the first
//!   `--http-events` events as wire-form batches through `docket serve`'s
//!   server), `verify`, fold (rebuild of the projections), audit (its
//!   findings scored against the generator's ground truth), point check in
//!   process and over HTTP, as-of point check, inclusion proofs; disk bytes
//!   per event;
//! * the PostgreSQL peer (Debian's `postgresql`, installed with apt if
//!   missing, started in a temporary directory on loopback with
//!   `synchronous_commit=on`): the same events in an indexed table, the last
//!   `--pg-tail` of them appended through the same concurrency (the rest
//!   loaded first with COPY), and the same point check as an indexed query.
//!
//! ```text
//! docket-bench [--sizes 1000000,10000000] [--dir target/docket-bench] [--out BENCH.md]
//!              [--appenders 256] [--wide-appenders 1024] [--http-events 1000000] [--pg-tail 200000] [--queries 20000]
//!              [--no-postgres] [--seed 1] [--phases wide,http,verify,fold,queries,disk,postgres]
//! ```

mod children;
mod pg;
mod probes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The suite's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sizes: Vec<u64>,
    pub dir: PathBuf,
    pub out: Option<PathBuf>,
    pub appenders: usize,
    /// A second, wider ingest: more appenders, larger group commits.
    pub wide_appenders: usize,
    pub http_events: u64,
    pub http_batch: usize,
    pub pg_tail: u64,
    pub queries: u64,
    pub postgres: bool,
    pub seed: u64,
    /// The phases to run after the ingest (which always runs: the others
    /// read its ledger); `None` runs them all.
    pub phases: Option<Vec<String>>,
}

/// The phases `--phases` may name (the in-process ingest always runs).
pub const PHASES: [&str; 7] = ["wide", "http", "verify", "fold", "queries", "disk", "postgres"];

impl Settings {
    /// Whether the phase `name` runs.
    pub fn runs(&self, name: &str) -> bool {
        self.phases.as_ref().is_none_or(|phases| phases.iter().any(|p| p == name))
    }
}

fn settings() -> Result<Settings> {
    let sizes = benchkit::arg("--sizes")
        .unwrap_or_else(|| "1000000,10000000".into())
        .split(',')
        .map(|s| s.trim().replace('_', "").parse::<u64>().with_context(|| format!("--sizes: {s:?} is not a number")))
        .collect::<Result<Vec<u64>>>()?;
    if sizes.is_empty() {
        bail!("--sizes names no size");
    }
    Ok(Settings {
        sizes,
        dir: benchkit::arg("--dir").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target/docket-bench")),
        out: benchkit::arg("--out").map(PathBuf::from),
        appenders: benchkit::number("--appenders", 256) as usize,
        wide_appenders: benchkit::number("--wide-appenders", 1024) as usize,
        http_events: benchkit::number("--http-events", 1_000_000),
        http_batch: benchkit::number("--http-batch", 64) as usize,
        pg_tail: benchkit::number("--pg-tail", 200_000),
        queries: benchkit::number("--queries", 20_000),
        postgres: !std::env::args().any(|a| a == "--no-postgres"),
        seed: benchkit::number("--seed", 1),
        phases: match benchkit::arg("--phases") {
            None => None,
            Some(list) => {
                let phases: Vec<String> = list.split(',').map(|p| p.trim().to_owned()).collect();
                if let Some(unknown) = phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
                    bail!(
                        "--phases: {unknown:?} is not a phase (phases: {}; the ingest always runs)",
                        PHASES.join(", ")
                    );
                }
                Some(phases)
            }
        },
    })
}

/// Runs this binary as a child phase and parses the JSON object on its last line of output.
pub fn child(args: &[String]) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe).arg("--child").args(args).output().context("starting a child phase")?;
    if !output.status.success() {
        bail!("child {:?} failed: {}", args.first(), String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("child {:?} printed {last:?}", args.first()))
}

/// A number from a child's JSON.
pub fn num(value: &Value, key: &str) -> f64 {
    value.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// Bytes of the files under `path` (recursively).
pub fn dir_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if meta.is_file() {
        return meta.len();
    }
    std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| dir_bytes(&e.path())).sum()
}

/// The page cache of the warm point-check pass (MiB): more than the store at 10M events.
pub const WARM_CACHE_MIB: usize = 4096;

/// Every figure measured at one size, by name.
type Figures = BTreeMap<&'static str, f64>;

/// Generates (or reuses) the data set of one size, runs every phase on it
/// in order, and returns its figures.
fn run_size(settings: &Settings, size: u64) -> Result<Figures> {
    let mut f = Figures::new();
    let data = settings.dir.join(format!("data-{size}-seed{}", settings.seed));
    let manifest = data_set(settings, size, &data)?;
    let events = manifest.events;
    f.insert("events", events as f64);
    f.insert("gen_rate", manifest.events as f64 / manifest.seconds);
    f.insert("canonical_bytes", manifest.wire_bytes as f64 / events as f64);

    eprintln!("[{size}] sampling the data for probes and queries…");
    let sample = probes::Sample::read(&data, 200_000, settings.queries as usize)?;
    let queries_file = data.join("queries.tsv");
    sample.write_queries(&queries_file)?;

    let work = settings.dir.join(format!("run-{size}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let run = Run {
        settings,
        size,
        ledger: work.join("ledger"),
        data,
        work,
        sample,
        queries_file,
        events,
        record: (manifest.wire_bytes / events) as usize + 32,
        tail: settings.pg_tail.min(events / 2),
        http_events: settings.http_events.min(events),
    };
    run.ingest(&mut f)?;
    if settings.runs("wide") {
        run.wide_ingest(&mut f)?;
    }
    if settings.runs("http") {
        run.http_ingest(&mut f)?;
    }
    if settings.runs("verify") {
        run.verify(&mut f)?;
    }
    if settings.runs("fold") {
        run.fold_and_audit(&mut f)?;
    }
    if settings.runs("queries") {
        run.queries(&mut f)?;
    }
    if settings.runs("disk") {
        run.disk_and_hashes(&mut f)?;
    }
    if settings.postgres && settings.runs("postgres") {
        eprintln!("[{size}] PostgreSQL peer…");
        let peer = pg::run(&run.work.join("pg"), &run.data, events, run.tail, settings.appenders, &run.queries_file)?;
        for (key, value) in peer {
            f.insert(key, value);
        }
    }
    let _ = std::fs::remove_dir_all(&run.work);
    Ok(f)
}

/// The data set of `size` events in `data`: the one there if it has this
/// seed and enough events, else a new one.
fn data_set(settings: &Settings, size: u64, data: &Path) -> Result<docket_gen::Manifest> {
    match docket_gen::Manifest::read(data) {
        Ok(m) if m.seed == settings.seed && m.events >= size => Ok(m),
        _ => {
            eprintln!("[{size}] generating the national data set…");
            let _ = std::fs::remove_dir_all(data);
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            docket_gen::generate(data, size, settings.seed, docket_gen::Format::Wire, threads)
        }
    }
}

/// One size's run: its data set, sample and work directory, and the
/// phases that measure it (each adds its figures).
struct Run<'a> {
    settings: &'a Settings,
    size: u64,
    data: PathBuf,
    work: PathBuf,
    /// The ledger of the in-process ingest, which the later phases read.
    ledger: PathBuf,
    sample: probes::Sample,
    queries_file: PathBuf,
    events: u64,
    /// Bytes of a raw-append probe record: a mean event plus a frame's overhead.
    record: usize,
    /// Events appended after the bulk load (the PostgreSQL peer's measured tail).
    tail: u64,
    http_events: u64,
}

impl Run<'_> {
    /// In-process ingest into `ledger` by `appenders` tasks, bracketed by the
    /// raw-append and batch-verify probes: (raw append, batch verify, the
    /// child's figures), each probe the mean of before and after.
    fn bracketed_ingest(&self, ledger: &Path, appenders: usize) -> Result<(f64, f64, Value)> {
        let append_before = benchkit::raw_append(&self.work, 100_000, appenders as u64, self.record)?;
        let verify_before = benchkit::batch_verify(&self.sample.events);
        let ingest = child(&[
            "ingest".into(),
            self.data.display().to_string(),
            ledger.display().to_string(),
            appenders.to_string(),
            self.http_events.to_string(),
            self.tail.to_string(),
        ])?;
        let append_after = benchkit::raw_append(&self.work, 100_000, appenders as u64, self.record)?;
        let verify_after = benchkit::batch_verify(&self.sample.events);
        Ok(((append_before + append_after) / 2.0, (verify_before + verify_after) / 2.0, ingest))
    }

    /// The in-process ingest with `--appenders`, into the ledger the later phases read.
    fn ingest(&self, f: &mut Figures) -> Result<()> {
        eprintln!("[{}] probes and in-process ingest…", self.size);
        let (append, batch_verify, ingest) = self.bracketed_ingest(&self.ledger, self.settings.appenders)?;
        f.insert("raw_append", append);
        f.insert("batch_verify", batch_verify);
        f.insert("ingest_limit", append.min(batch_verify));
        f.insert("ingest", num(&ingest, "rate"));
        f.insert("ingest_first", num(&ingest, "rate_first"));
        f.insert("ingest_tail", num(&ingest, "rate_tail"));
        f.insert("ingest_batch", num(&ingest, "mean_batch"));
        f.insert("ingest_peak_mib", num(&ingest, "peak_kib") / 1024.0);
        Ok(())
    }

    /// The in-process ingest again with `--wide-appenders`, into a ledger removed after.
    fn wide_ingest(&self, f: &mut Figures) -> Result<()> {
        eprintln!("[{}] in-process ingest, {} appenders…", self.size, self.settings.wide_appenders);
        let wide = self.work.join("wide");
        let (append, batch_verify, ingest) = self.bracketed_ingest(&wide, self.settings.wide_appenders)?;
        f.insert("wide_raw_append", append);
        f.insert("wide_batch_verify", batch_verify);
        f.insert("wide_ingest_limit", append.min(batch_verify));
        f.insert("wide_ingest", num(&ingest, "rate"));
        f.insert("wide_ingest_batch", num(&ingest, "mean_batch"));
        let _ = std::fs::remove_dir_all(&wide);
        Ok(())
    }

    /// Ingest of the first `--http-events` events through the HTTP server.
    fn http_ingest(&self, f: &mut Figures) -> Result<()> {
        let settings = self.settings;
        eprintln!("[{}] HTTP ingest of {} events…", self.size, self.http_events);
        let http = child(&[
            "http".into(),
            self.data.display().to_string(),
            self.work.join("http").display().to_string(),
            self.http_events.to_string(),
            (settings.appenders / settings.http_batch.max(1)).max(1).to_string(),
            settings.http_batch.to_string(),
        ])?;
        f.insert("http_ingest", num(&http, "rate"));
        f.insert("http_p99_ms", num(&http, "p99_ms"));
        let _ = std::fs::remove_dir_all(self.work.join("http"));
        Ok(())
    }

    /// `verify` of the ledger, bracketed by the batch-verify probe.
    fn verify(&self, f: &mut Figures) -> Result<()> {
        eprintln!("[{}] verify…", self.size);
        let verify_before = benchkit::batch_verify(&self.sample.events);
        let verify = child(&["verify".into(), self.ledger.display().to_string()])?;
        let verify_after = benchkit::batch_verify(&self.sample.events);
        f.insert("verify", num(&verify, "rate"));
        f.insert("verify_limit", (verify_before + verify_after) / 2.0);
        f.insert("verify_peak_mib", num(&verify, "peak_kib") / 1024.0);
        Ok(())
    }

    /// The fold (bracketed by the bare decode probe), then the audit scored
    /// against the data set's truth.
    fn fold_and_audit(&self, f: &mut Figures) -> Result<()> {
        eprintln!("[{}] fold and audit…", self.size);
        let decode_before = probes::decode(&self.sample.wires);
        let fold = child(&["fold".into(), self.ledger.display().to_string()])?;
        let decode_after = probes::decode(&self.sample.wires);
        f.insert("decode", (decode_before + decode_after) / 2.0);
        f.insert("fold", num(&fold, "rate"));
        f.insert("fold_peak_mib", num(&fold, "peak_kib") / 1024.0);
        let audit = child(&["audit".into(), self.ledger.display().to_string(), self.data.display().to_string()])?;
        for (key, name) in [
            ("rate", "audit"),
            ("cases", "audit_cases"),
            ("findings", "audit_findings"),
            ("recall", "audit_recall"),
            ("precision", "audit_precision"),
            ("peak_kib", "audit_peak_kib"),
            ("seconds", "audit_seconds"),
        ] {
            f.insert(name, num(&audit, key));
        }
        Ok(())
    }

    /// Point checks, as-of checks and proofs with the default page cache,
    /// then point checks again with a cache that holds the store.
    fn queries(&self, f: &mut Figures) -> Result<()> {
        eprintln!("[{}] queries and proofs…", self.size);
        let queries = self.queries_child(0)?;
        // The same with a page cache that holds the store, warmed by one untimed pass.
        let warm = self.queries_child(WARM_CACHE_MIB)?;
        for (key, name) in [
            ("check_p50_us", "warm_check_p50_us"),
            ("check_p99_us", "warm_check_p99_us"),
            ("http_check_p50_us", "warm_http_check_p50_us"),
            ("http_check_p99_us", "warm_http_check_p99_us"),
        ] {
            f.insert(name, num(&warm, key));
        }
        for (key, name) in [
            ("check_p50_us", "check_p50_us"),
            ("check_p99_us", "check_p99_us"),
            ("asof_p50_us", "asof_p50_us"),
            ("asof_p99_us", "asof_p99_us"),
            ("http_check_p50_us", "http_check_p50_us"),
            ("http_check_p99_us", "http_check_p99_us"),
            ("http_floor_p50_us", "http_floor_p50_us"),
            ("http_floor_p99_us", "http_floor_p99_us"),
            ("proof_p50_us", "proof_p50_us"),
            ("proof_p99_us", "proof_p99_us"),
            ("restricted_share", "restricted_share"),
            ("peak_kib", "queries_peak_kib"),
            ("serve_open_s", "serve_open_s"),
            ("snapshot_open_s", "snapshot_open_s"),
        ] {
            f.insert(name, num(&queries, key));
        }
        Ok(())
    }

    /// The queries child with a page cache of `cache_mib` (0: the default).
    fn queries_child(&self, cache_mib: usize) -> Result<Value> {
        child(&[
            "queries".into(),
            self.ledger.display().to_string(),
            self.queries_file.display().to_string(),
            self.settings.seed.to_string(),
            cache_mib.to_string(),
        ])
    }

    /// Disk bytes per event (log and projections), and the hash probes.
    fn disk_and_hashes(&self, f: &mut Figures) -> Result<()> {
        let events = self.events as f64;
        let log_bytes: u64 = std::fs::read_dir(&self.ledger)?
            .flatten()
            .filter(|e| e.file_name() != "views.redb")
            .map(|e| dir_bytes(&e.path()))
            .sum();
        f.insert("log_bytes_per_event", log_bytes as f64 / events);
        f.insert("views_bytes_per_event", dir_bytes(&self.ledger.join("views.redb")) as f64 / events);
        let (sha, blake) = probes::hashes(&self.sample.wires);
        f.insert("sha256_mb_s", sha);
        f.insert("blake3_mb_s", blake);
        Ok(())
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or("?".into(), |kib| format!("{:.0} GiB", kib as f64 / 1048576.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), {memory} RAM, Linux {}", kernel.trim())
}

const USAGE: &str = "docket-bench: the benchmark suite; results into BENCH.md between its markers.

usage: docket-bench [--sizes 1000000,10000000] [--dir target/docket-bench] [--out BENCH.md]
                    [--appenders 256] [--wide-appenders 1024] [--http-events 1000000] [--http-batch 64]
                    [--pg-tail 200000] [--queries 20000] [--no-postgres] [--seed 1]
                    [--phases wide,http,verify,fold,queries,disk,postgres]

Per size: generates the national data set once (kept in --dir), measures the limit probes,
runs each docket phase in a child process (ingest, HTTP ingest, verify, fold, audit,
queries, proofs) and the PostgreSQL peer (installed with apt when missing).
The default sizes take about 18 minutes on two cores. --phases runs only the phases named
after the in-process ingest (which always runs: the other phases read its ledger).

examples:
  docket-bench --sizes 1000000 --no-postgres              # one size, docket only
  docket-bench --sizes 1000000,10000000 --out BENCH.md    # the suite, into BENCH.md
  docket-bench --sizes 100000 --queries 2000 --http-events 20000 --no-postgres   # a quick smoke run
  docket-bench --sizes 10000000 --phases verify --no-postgres   # ingest and verify at 10M only

A ledger's opens alone, each step on stderr (by hand, on a ledger with its projections built):
  docket-bench --child open DIR 1     # docket proof's open and proofs, docket serve's ledger, projections, server";

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--child") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        return children::run(&args);
    }
    let proceed = benchkit::check_args(
        USAGE,
        &[
            "--sizes",
            "--dir",
            "--out",
            "--appenders",
            "--wide-appenders",
            "--http-events",
            "--http-batch",
            "--pg-tail",
            "--queries",
            "--seed",
            "--phases",
        ],
        &["--no-postgres"],
    )
    .map_err(|message| anyhow::anyhow!(message))?;
    if !proceed {
        return Ok(());
    }
    let mut settings = settings()?;
    std::fs::create_dir_all(&settings.dir)?;
    // Absolute: PostgreSQL resolves paths from its data directory.
    settings.dir = settings.dir.canonicalize().with_context(|| format!("--dir {}", settings.dir.display()))?;
    if settings.postgres && settings.runs("postgres") {
        pg::ensure_installed()?;
    }
    let started = std::time::Instant::now();
    let mut results = Vec::new();
    for size in &settings.sizes {
        results.push((*size, run_size(&settings, *size)?));
    }
    let report = report::render(&settings, &results, &machine(), started.elapsed().as_secs_f64());
    println!("{report}");
    if let Some(out) = &settings.out {
        report::write_into(out, &report)?;
        eprintln!("written into {}", out.display());
    }
    Ok(())
}

mod report;
