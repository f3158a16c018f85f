//! followers: many SSE followers of the log's head while events are
//! appended, on a ledger whose open segment is nearly full (so a read that
//! scanned its segment from the start would show).
//!
//! Appends are paced at `--rate` per second (a national ledger is written
//! at a few events per second and read by many). Runs of the same size,
//! each with new events and a fresh server: `base`, appends with no
//! followers; `cached`, appends while `--followers` SSE streams follow the
//! head with the server's defaults (a tail cache, so followers share one
//! read of each new record, and `feed_sse_interval_ms`, so a stream sends
//! what arrived within it in one write); `immediate`, the same with the
//! interval 0 (a write per commit); `uncached`, also without the tail cache
//! (each follower reads each record through the segment's seq index). For
//! each: append latency p50 / p99 / max, delivery lag (from the appender's
//! receipt to the follower's arrival, per follower and event, on the wall
//! clock the processes share) p50 / p99 / max, and the CPU seconds of the
//! server's process (the server and the appenders; the followers run in a
//! child process at a lower priority, as stand-ins for other machines).
//!
//! ```text
//! followers [--followers 500] [--events 1000] [--fill-mb 56] [--appenders 8] [--rate 100]
//!           [--runs base,cached,immediate,uncached] [--dir DIR]
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_model::{PublicKey, SignedEvent, Timestamp};
use docket_server::ServerLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SEED: u64 = 1;
const AGENCY: &str = "spc";

const USAGE: &str = "followers: SSE followers of the head while events are appended, against the same appends without followers.\n\nusage: followers [--followers 500] [--events 1000] [--fill-mb 56] [--appenders 8] [--rate 100] [--runs base,cached,immediate,uncached] [--dir DIR]\n\nexamples:\n  cargo run --release -p followers -- --followers 100 --events 200\n  cargo run --release -p followers -- --runs base,cached";

/// The run's sizes.
#[derive(Debug, Clone, Copy)]
struct Settings {
    followers: usize,
    events: u64,
    fill_mb: u64,
    appenders: usize,
    /// Appends per second, all appenders together.
    rate: u64,
}

/// What one run measured.
#[derive(Debug)]
struct Run {
    name: &'static str,
    append_ms: Vec<f64>,
    lag_ms: Vec<f64>,
    /// Events not delivered to a follower before the deadline.
    missed: u64,
    cpu_s: f64,
    seconds: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--follow") {
        if let Err(error) = follow_child(&args[1..]) {
            eprintln!("followers --follow: {error}");
            std::process::exit(2);
        }
        return;
    }
    benchkit::args_or_exit(
        USAGE,
        &["--followers", "--events", "--fill-mb", "--appenders", "--rate", "--runs", "--dir"],
    );
    let settings = Settings {
        followers: benchkit::number("--followers", 500) as usize,
        events: benchkit::number("--events", 1000).max(1),
        fill_mb: benchkit::number("--fill-mb", 56),
        appenders: benchkit::number("--appenders", 8).max(1) as usize,
        rate: benchkit::number("--rate", 100).max(1),
    };
    if let Err(error) = run(settings) {
        eprintln!("followers: {error}");
        std::process::exit(2);
    }
}

fn run(settings: Settings) -> Result<(), String> {
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = benchkit::arg("--dir").map_or_else(|| scratch.path().join("ledger"), std::path::PathBuf::from);
    if dir.exists() {
        return Err(format!("{} exists; give a new directory", dir.display()));
    }
    docket_world::write_ledger(&dir, 200, SEED).map_err(|e| e.to_string())?;
    let filled = fill(&dir, settings.fill_mb << 20)?;
    let segment = open_segment(&dir)?;
    println!(
        "followers: {settings:?}; ledger filled with {filled} notices, open segment {:.1} MiB",
        segment as f64 / f64::from(1 << 20)
    );
    let mut next = filled;
    let mut runs = vec![];
    let chosen = benchkit::arg("--runs").unwrap_or_else(|| "base,cached,immediate,uncached".into());
    let defaults = ServerLimits::default();
    for (key, name, followers, tail, interval) in [
        ("base", "no followers", 0, defaults.feed_tail_bytes_max, defaults.feed_sse_interval_ms),
        (
            "cached",
            "followers (defaults)",
            settings.followers,
            defaults.feed_tail_bytes_max,
            defaults.feed_sse_interval_ms,
        ),
        ("immediate", "followers, feed_sse_interval_ms 0", settings.followers, defaults.feed_tail_bytes_max, 0),
        ("uncached", "followers, no tail cache, interval 0", settings.followers, 0, 0),
    ] {
        if !chosen.split(',').any(|c| c == key) {
            continue;
        }
        let events = benchkit::notices(next, settings.events, SEED);
        next += settings.events;
        runs.push(measure(&dir, name, followers, (tail, interval), &events, settings)?);
    }
    report(&runs, settings);
    let missed: u64 = runs.iter().map(|run| run.missed).sum();
    if missed > 0 {
        return Err(format!("{missed} deliveries missed: a follower did not receive every appended event"));
    }
    Ok(())
}

/// Appends notices in process until the ledger's open segment holds about
/// `bytes`; how many.
fn fill(dir: &Path, bytes: u64) -> Result<u64, String> {
    let sample = benchkit::notices(0, 1, SEED);
    let record = sample.first().map_or(600, |e| e.to_wire().len() as u64 + 60);
    let count = bytes / record;
    let events = benchkit::notices(0, count, SEED);
    let (log, _, _lock) =
        docket_log::ledger::Ledger::open(dir, docket_log::Config::default()).map_err(|e| e.to_string())?.into_parts();
    let (sequencer, writer) = docket_log::Sequencer::start(log, docket_log::Limits::default());
    benchkit::append_concurrently(&sequencer, &events, 256);
    drop(sequencer);
    writer.join().map_err(|_| "the writer panicked".to_owned())?;
    Ok(count)
}

/// The size of the open segment (the last by name), which the followers read.
fn open_segment(dir: &Path) -> Result<u64, String> {
    let segments = docket_log::ledger::Paths::new(dir).segments();
    let entries = std::fs::read_dir(&segments).map_err(|e| format!("{}: {e}", segments.display()))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .max_by_key(std::fs::DirEntry::file_name)
        .and_then(|e| e.metadata().ok())
        .map_or(0, |m| m.len()))
}

/// CPU seconds this process has used (user and system).
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are 14 and 15 (1-based).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) / 100.0
}

/// One run: a server over `dir`, `followers` SSE streams at the head, then `events` appended.
fn measure(
    dir: &Path,
    name: &'static str,
    followers: usize,
    (tail, interval): (usize, u64),
    events: &[SignedEvent],
    settings: Settings,
) -> Result<Run, String> {
    let limits = ServerLimits {
        feed_tail_bytes_max: tail,
        feed_sse_interval_ms: interval,
        feed_streams_per_agency_max: followers + 16,
        connections_max: followers + 1024,
        appends_per_agency_per_s: 1_000_000,
        append_burst: 1_000_000,
        ..ServerLimits::default()
    };
    let serving = benchkit::serve(dir, limits)?;
    let addr = serving.base.trim_start_matches("http://").to_owned();
    let head = head(&serving.base)?;
    let mut child = (followers > 0).then(|| spawn_followers(&addr, head, followers)).transpose()?;
    if let Some((_, lines)) = &mut child {
        match lines.next() {
            Some(Ok(line)) if line == "ready" => {}
            other => return Err(format!("the followers did not catch up: {other:?}")),
        }
    }
    let cpu = process_cpu_s();
    let started = Instant::now();
    let acks = append(&serving.base, events, settings)?;
    let last = acks.iter().map(|(seq, _, _)| *seq).max().unwrap_or(head);
    let mut arrivals: Vec<(u64, u64)> = vec![];
    if let Some((mut process, lines)) = child {
        let mut stdin = process.stdin.take().ok_or("no stdin")?;
        writeln!(stdin, "{last}").map_err(|e| e.to_string())?;
        for line in lines {
            let line = line.map_err(|e| e.to_string())?;
            let mut fields = line.split(' ').map(str::parse::<u64>);
            match (fields.next(), fields.next()) {
                (Some(Ok(seq)), Some(Ok(at))) => arrivals.push((seq, at)),
                _ => break,
            }
        }
        let _ = process.wait();
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_s = process_cpu_s() - cpu;
    serving.stop()?;
    let acked: std::collections::HashMap<u64, u64> = acks.iter().map(|(seq, at, _)| (*seq, *at)).collect();
    let mut lag_ms: Vec<f64> = arrivals
        .iter()
        .filter_map(|(seq, at)| acked.get(seq).map(|ack| at.saturating_sub(*ack) as f64 / 1e3))
        .collect();
    let missed = (acked.len() * followers) as u64 - lag_ms.len() as u64;
    let mut append_ms: Vec<f64> = acks.iter().map(|(_, _, ms)| *ms).collect();
    append_ms.sort_by(f64::total_cmp);
    lag_ms.sort_by(f64::total_cmp);
    Ok(Run { name, append_ms, lag_ms, missed, cpu_s, seconds })
}

/// Microseconds since the Unix epoch: the clock the two processes share.
fn wall_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

type Lines = std::io::Lines<std::io::BufReader<std::process::ChildStdout>>;

/// Starts the followers in a child process, at a lower priority (`nice -n
/// 10`) when `nice` is there: on a real deployment they are other machines,
/// and here they must not take the cores from the server they measure.
fn spawn_followers(addr: &str, cursor: u64, count: usize) -> Result<(std::process::Child, Lines), String> {
    use std::io::BufRead;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let args = [exe.display().to_string(), "--follow".into(), addr.into(), cursor.to_string(), count.to_string()];
    let mut command = if std::process::Command::new("nice").arg("true").status().is_ok_and(|s| s.success()) {
        let mut niced = std::process::Command::new("nice");
        niced.arg("-n").arg("10").args(&args);
        niced
    } else {
        let mut plain = std::process::Command::new(&args[0]);
        plain.args(&args[1..]);
        plain
    };
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the followers: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    Ok((child, std::io::BufReader::new(stdout).lines()))
}

/// The child: `count` followers of `addr` from `cursor`; prints `ready` when
/// all have caught up, reads the last seq from stdin, and prints `SEQ
/// ARRIVAL_US` for every event each follower received, then `done`.
fn follow_child(args: &[String]) -> Result<(), String> {
    let usage = "--follow ADDR CURSOR COUNT";
    let addr: SocketAddr = args.first().and_then(|a| a.parse().ok()).ok_or(usage)?;
    let cursor: u64 = args.get(1).and_then(|a| a.parse().ok()).ok_or(usage)?;
    let count: usize = args.get(2).and_then(|a| a.parse().ok()).ok_or(usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let ready = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> =
        (0..count).map(|_| runtime.spawn(follow(addr, cursor, target.clone(), ready.clone()))).collect();
    let waiting = Instant::now();
    while ready.load(Ordering::SeqCst) < count {
        if waiting.elapsed() > Duration::from_secs(60) {
            return Err(format!("{} of {count} followers caught up within 60 s", ready.load(Ordering::SeqCst)));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
    target.store(line.trim().parse().map_err(|_| format!("expected the last seq, got {line:?}"))?, Ordering::SeqCst);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for task in tasks {
        for (seq, at) in runtime.block_on(task).unwrap_or_default() {
            writeln!(out, "{seq} {at}").map_err(|e| e.to_string())?;
        }
    }
    writeln!(out, "done").map_err(|e| e.to_string())
}

/// The log's size, from a feed page at the end.
fn head(base: &str) -> Result<u64, String> {
    let client = docket_client::Client::new(base).map_err(|e| e.to_string())?;
    let response = client.get("/v1/checkpoint").map_err(|e| e.to_string())?;
    let text = response.text();
    // The checkpoint note: origin, then the tree size.
    text.lines().nth(1).and_then(|size| size.parse().ok()).ok_or_else(|| format!("no tree size in {text:?}"))
}

/// Posts `events` from `settings.appenders` threads, one per request, paced
/// at `settings.rate` in all; each event's (seq, when its receipt arrived,
/// latency in ms).
fn append(base: &str, events: &[SignedEvent], settings: Settings) -> Result<Vec<(u64, u64, f64)>, String> {
    let appenders = settings.appenders;
    let interval = Duration::from_secs_f64(1.0 / settings.rate as f64);
    let start = Instant::now();
    let bodies: Vec<Vec<u8>> = events.iter().map(|e| serde_json::to_vec(&e.to_json()).unwrap_or_default()).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..appenders)
            .map(|t| {
                let bodies = &bodies;
                scope.spawn(move || -> Result<Vec<(u64, u64, f64)>, String> {
                    let client = docket_client::Client::new(base).map_err(|e| e.to_string())?;
                    let mut mine = vec![];
                    for (n, body) in bodies.iter().enumerate().skip(t).step_by(appenders) {
                        let due = start + interval * n as u32;
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        let sent = Instant::now();
                        let response = client
                            .request("POST", "/v1/events", body, &[("Content-Type", "application/json")])
                            .map_err(|e| e.to_string())?;
                        let at = Instant::now();
                        let at_us = wall_us();
                        if response.status != 200 {
                            return Err(format!("append answered {}: {}", response.status, response.text()));
                        }
                        let receipt: serde_json::Value =
                            serde_json::from_slice(&response.body).map_err(|e| e.to_string())?;
                        let seq = receipt["seq"].as_u64().ok_or_else(|| format!("no seq in {receipt}"))?;
                        mine.push((seq, at_us, (at - sent).as_secs_f64() * 1e3));
                    }
                    Ok(mine)
                })
            })
            .collect();
        let mut all = vec![];
        for handle in handles {
            all.extend(handle.join().map_err(|_| "an appender panicked".to_owned())??);
        }
        Ok(all)
    })
}

/// One SSE follower from `cursor`: counts itself `ready` at its first
/// `caught-up`, and returns each event's (seq, arrival) once it has seen
/// seq `target` (set when the appends are done), or after 60 s.
async fn follow(addr: SocketAddr, cursor: u64, target: Arc<AtomicU64>, ready: Arc<AtomicUsize>) -> Vec<(u64, u64)> {
    let mut arrivals = vec![];
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return arrivals;
    };
    let key = docket_world::key(SEED, AGENCY);
    let date = Timestamp::now().to_string();
    let signature = docket_model::request::sign_request(&key, "GET", "/v1/feed/sse", &date, b"");
    let request = format!(
        "GET /v1/feed/sse HTTP/1.1\r\nHost: follower\r\nLast-Event-ID: {cursor}\r\ndocket-agency: {AGENCY}\r\n\
         docket-key: {}\r\ndocket-date: {date}\r\ndocket-signature: {}\r\n\r\n",
        PublicKey(key.verifying_key().to_bytes()).to_hex(),
        signature.to_hex()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return arrivals;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut pending: Vec<u8> = vec![];
    let mut buffer = vec![0u8; 64 << 10];
    let (mut id, mut kind): (Option<u64>, String) = (None, String::new());
    let mut counted = false;
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await;
        let n = match read {
            Ok(Ok(n)) if n > 0 => n,
            _ => return arrivals,
        };
        let at = wall_us();
        pending.extend_from_slice(&buffer[..n]);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = pending[start..start + end].trim_ascii_end();
            start += end + 1;
            if let Some(value) = line.strip_prefix(b"id: ") {
                id = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            } else if let Some(value) = line.strip_prefix(b"event: ") {
                kind = String::from_utf8_lossy(value).into_owned();
            } else if line.is_empty() {
                match (kind.as_str(), id) {
                    ("event", Some(next)) => arrivals.push((next - 1, at)),
                    ("caught-up", _) if !counted => {
                        counted = true;
                        ready.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
                (id, kind) = (None, String::new());
            }
        }
        pending.drain(..start);
        let target = target.load(Ordering::SeqCst);
        if target != u64::MAX && arrivals.last().is_some_and(|(seq, _)| *seq >= target) {
            return arrivals;
        }
    }
}

fn report(runs: &[Run], settings: Settings) {
    let p = benchkit::percentile;
    println!(
        "| run | append p50 | append p99 | append max | delivery lag p50 | lag p99 | lag max | missed | CPU s | wall s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.2} | {:.2} |",
            run.name,
            p(&run.append_ms, 0.5),
            p(&run.append_ms, 0.99),
            run.append_ms.last().copied().unwrap_or(f64::NAN),
            p(&run.lag_ms, 0.5),
            p(&run.lag_ms, 0.99),
            run.lag_ms.last().copied().unwrap_or(f64::NAN),
            run.missed,
            run.cpu_s,
            run.seconds,
        );
    }
    if let Some(base) = runs.iter().find(|run| run.name == "no followers") {
        for run in runs.iter().filter(|run| run.name != base.name) {
            let ratio = p(&run.append_ms, 0.99) / p(&base.append_ms, 0.99);
            println!("append p99 with {} {} / without: {ratio:.2} (target <= 2)", settings.followers, run.name);
        }
    }
}
