//! replica-load: the load half of `tools/replica-bench.sh` (issue 20,
//! BENCH.md), against servers that script starts (a `docket demo` ledger of
//! seed 1, so the notices below are signed by its keys).
//!
//! * `append`: signed notices posted one per request at a steady `--rate`
//!   per second for `--seconds`, while `/metrics` of the same server is
//!   sampled every `--sample-ms` for `docket_publish_lag_seconds` and
//!   `docket_publish_lag_records`, and the bucket's checkpoint (`--bucket`)
//!   and a replica's (`--replica`) are polled every 20 ms; prints the
//!   samples' p50 / p99 / max and, per receipt, the time until the bucket's
//!   and the replica's checkpoint covered its seq (p50 / p99 / max; the
//!   poll adds up to 20 ms).
//! * `check`: closed-loop signed point checks (`GET /v1/views/check`, as
//!   china-railway) from `--connections` threads for `--seconds`, the
//!   threads spread round-robin over `--urls`; then the same closed loop on
//!   `/healthz` (the HTTP floor, a probe in the same run). Prints checks/s
//!   in all and per URL, and p50 / p99 latency.
//!
//! ```text
//! replica-load append --url URL [--rate 50] [--seconds 30] [--from 0] [--sample-ms 100] [--bucket URL] [--replica URL]
//! replica-load check --urls URL[,URL...] [--connections 32] [--seconds 10] [--subjects 2000]
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SEED: u64 = 1;

const USAGE: &str = "replica-load: steady appends with publication-lag sampling, or point checks spread over servers.\n\nusage:\n  replica-load append --url URL [--rate 50] [--seconds 30] [--from 0] [--sample-ms 100] [--bucket URL] [--replica URL]\n  replica-load check --urls URL[,URL...] [--connections 32] [--seconds 10] [--subjects 2000]";

fn text(name: &str, default: &str) -> String {
    benchkit::arg(name).unwrap_or_else(|| default.to_owned())
}

/// The value of the metric `name` in an OpenMetrics text.
fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find(|l| l.split(' ').next() == Some(name)).and_then(|l| l.split(' ').nth(1)?.parse().ok())
}

fn summary(label: &str, mut values: Vec<f64>, unit: &str) {
    values.sort_by(f64::total_cmp);
    println!(
        "{label}: {} samples, p50 {:.3} {unit}, p99 {:.3} {unit}, max {:.3} {unit}",
        values.len(),
        benchkit::percentile(&values, 0.5),
        benchkit::percentile(&values, 0.99),
        values.last().copied().unwrap_or(f64::NAN)
    );
}

/// Polls `base` + `path` (a checkpoint note) every `every` until `done`:
/// each change of its size, with when it was first seen.
fn watch(base: &str, path: &str, every: Duration, done: &AtomicBool) -> Vec<(Instant, u64)> {
    let client = docket_client::Client::new(base).expect("client");
    let mut seen: Vec<(Instant, u64)> = vec![];
    while !done.load(Ordering::Relaxed) {
        let size =
            client.get(path).ok().filter(|r| r.status == 200).and_then(|r| r.text().lines().nth(1)?.parse().ok());
        if let Some(size) = size.filter(|s| seen.last().is_none_or(|(_, last)| s > last)) {
            seen.push((Instant::now(), size));
        }
        std::thread::sleep(every);
    }
    seen
}

/// For each acknowledged (seq, when), the time until `seen` first covered it, in s.
fn delays(receipts: &[(u64, Instant)], seen: &[(Instant, u64)]) -> Vec<f64> {
    receipts
        .iter()
        .filter_map(|(seq, acked)| {
            let (at, _) = seen.iter().find(|(_, size)| size > seq)?;
            Some(at.saturating_duration_since(*acked).as_secs_f64())
        })
        .collect()
}

/// Steady appends at `rate`/s (paced from 4 threads). Meanwhile the
/// primary's `/metrics` is sampled, and the bucket's checkpoint
/// (`--bucket`, e.g. http://S3/public/log) and a replica's (`--replica`)
/// are polled every 20 ms: the time from each append's receipt until the
/// bucket's checkpoint, and the replica's, covers its seq.
fn append(url: &str) {
    let (rate, seconds, from) =
        (benchkit::number("--rate", 50), benchkit::number("--seconds", 30), benchkit::number("--from", 0));
    let sample = Duration::from_millis(benchkit::number("--sample-ms", 100));
    let count = rate * seconds;
    let bodies: Vec<Vec<u8>> =
        benchkit::notices(from, count, SEED).iter().map(|e| serde_json::to_vec(&e.to_json()).expect("json")).collect();
    let threads = 4u64;
    let interval = Duration::from_secs_f64(threads as f64 / rate.max(1) as f64);
    let (done, refused) = (AtomicBool::new(false), AtomicU64::new(0));
    let receipts = std::sync::Mutex::new(Vec::<(u64, Instant)>::new());
    let watched: Vec<(String, String)> = [benchkit::arg("--bucket"), benchkit::arg("--replica").map(|r| r + "/log")]
        .into_iter()
        .flatten()
        .map(|url| {
            let (scheme, rest) = url.split_once("://").expect("a URL");
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            (format!("{scheme}://{host}"), format!("/{path}/checkpoint"))
        })
        .collect();
    let started = Instant::now();
    let ((lag_seconds, lag_records), seen) = std::thread::scope(|scope| {
        for t in 0..threads {
            let (bodies, receipts, refused) = (&bodies, &receipts, &refused);
            scope.spawn(move || {
                let client = docket_client::Client::new(url).expect("client");
                let mut next = started + interval.mul_f64(t as f64 / threads as f64);
                for body in bodies.iter().skip(t as usize).step_by(threads as usize) {
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let seq = client
                        .post("/v1/events", body)
                        .ok()
                        .filter(|r| r.status == 200)
                        .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok()?["seq"].as_u64());
                    match seq {
                        Some(seq) => receipts.lock().expect("receipts").push((seq, Instant::now())),
                        None => _ = refused.fetch_add(1, Ordering::Relaxed),
                    }
                    next += interval;
                }
            });
        }
        let done = &done;
        let watchers: Vec<_> = watched
            .iter()
            .map(|(base, path)| scope.spawn(move || watch(base, path, Duration::from_millis(20), done)))
            .collect();
        let sampler = scope.spawn(move || {
            let client = docket_client::Client::new(url).expect("client");
            let (mut seconds, mut records) = (vec![], vec![]);
            while !done.load(Ordering::Relaxed) {
                if let Ok(response) = client.get("/metrics") {
                    let body = response.text();
                    seconds.extend(metric(&body, "docket_publish_lag_seconds"));
                    records.extend(metric(&body, "docket_publish_lag_records"));
                }
                std::thread::sleep(sample);
            }
            (seconds, records)
        });
        let acked = || receipts.lock().expect("receipts").len() as u64 + refused.load(Ordering::Relaxed);
        while acked() < count {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Until every watcher has seen the last receipt covered (or 60 s).
        let last = receipts.lock().expect("receipts").iter().map(|(seq, _)| *seq).max().unwrap_or(0);
        let ended = Instant::now();
        while ended.elapsed() < Duration::from_secs(60) && !watched.iter().all(|(base, path)| covered(base, path, last))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        done.store(true, Ordering::Relaxed);
        let seen: Vec<_> = watchers.into_iter().map(|w| w.join().expect("watcher")).collect();
        (sampler.join().expect("sampler"), seen)
    });
    let receipts = receipts.into_inner().expect("receipts");
    let wall = started.elapsed().as_secs_f64();
    println!(
        "appended {} of {count} notices ({rate}/s asked for {seconds} s; the run took {wall:.1} s with the wait for the last checkpoint); {} refused",
        receipts.len(),
        refused.load(Ordering::Relaxed)
    );
    summary("docket_publish_lag_seconds (the primary's metric, sampled)", lag_seconds, "s");
    summary("docket_publish_lag_records (the primary's metric, sampled)", lag_records, "records");
    for ((base, path), seen) in watched.iter().zip(&seen) {
        let delays = delays(&receipts, seen);
        let missing = receipts.len() - delays.len();
        summary(&format!("receipt to {base}{path} covering it ({missing} never covered)"), delays, "s");
    }
}

fn covered(base: &str, path: &str, seq: u64) -> bool {
    let client = docket_client::Client::new(base).expect("client");
    let size: Option<u64> = client.get(path).ok().and_then(|r| r.text().lines().nth(1)?.parse().ok());
    size.is_some_and(|size| size > seq)
}

/// Closed-loop GETs of `path_of(i)` from `connections` threads over `urls` for `seconds`:
/// (requests per URL, latencies in ms, wall seconds).
fn closed_loop(
    urls: &[String],
    connections: usize,
    seconds: u64,
    signed: bool,
    path_of: &(dyn Fn(usize) -> String + Sync),
) -> (Vec<u64>, Vec<f64>, f64) {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let per_url: Vec<AtomicU64> = urls.iter().map(|_| AtomicU64::new(0)).collect();
    let latencies = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|t| {
                let (url, counter) = (&urls[t % urls.len()], &per_url[t % urls.len()]);
                scope.spawn(move || {
                    let mut client = docket_client::Client::new(url).expect("client");
                    if signed {
                        client = client.with_identity("china-railway", docket_world::key(SEED, "china-railway"));
                    }
                    let (mut mine, mut index) = (vec![], t);
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        let response = client.get(&path_of(index)).expect("request");
                        assert_eq!(response.status, 200, "{url}: {}", response.text());
                        mine.push(sent.elapsed().as_secs_f64() * 1e3);
                        counter.fetch_add(1, Ordering::Relaxed);
                        index += connections;
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("checker")).collect::<Vec<f64>>()
    });
    (per_url.iter().map(|c| c.load(Ordering::Relaxed)).collect(), latencies, started.elapsed().as_secs_f64())
}

fn report(label: &str, urls: &[String], (per_url, mut latencies, wall): (Vec<u64>, Vec<f64>, f64)) {
    latencies.sort_by(f64::total_cmp);
    let total: u64 = per_url.iter().sum();
    let spread: Vec<String> =
        urls.iter().zip(&per_url).map(|(u, n)| format!("{u} {:.0}/s", *n as f64 / wall)).collect();
    println!(
        "{label}: {:.0}/s over {} server(s) ({}); p50 {:.2} ms, p99 {:.2} ms",
        total as f64 / wall,
        urls.len(),
        spread.join(", "),
        benchkit::percentile(&latencies, 0.5),
        benchkit::percentile(&latencies, 0.99)
    );
}

fn check() {
    let urls: Vec<String> = text("--urls", "http://127.0.0.1:8080").split(',').map(str::to_owned).collect();
    let connections = benchkit::number("--connections", 32) as usize;
    let seconds = benchkit::number("--seconds", 10);
    let subjects = benchkit::number("--subjects", 2000).max(1);
    let path = |i: usize| {
        let subject = docket_world::numbered_uscc((i as u64 * 7) % subjects);
        format!("/v1/views/check?subject=uscc:{subject}&measure=restrict-rail")
    };
    report("point checks", &urls, closed_loop(&urls, connections, seconds, true, &path));
    let probe = |_: usize| "/healthz".to_owned();
    report("probe /healthz", &urls, closed_loop(&urls, connections, seconds.div_ceil(2), false, &probe));
}

fn main() {
    let flags = [
        "--url",
        "--rate",
        "--seconds",
        "--from",
        "--sample-ms",
        "--bucket",
        "--replica",
        "--urls",
        "--connections",
        "--subjects",
    ];
    match benchkit::check_args(USAGE, &flags, &["append", "check"]) {
        Ok(true) => {}
        Ok(false) => return,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
    match std::env::args().nth(1).as_deref() {
        Some("append") => append(&text("--url", "http://127.0.0.1:8080")),
        Some("check") => check(),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}
