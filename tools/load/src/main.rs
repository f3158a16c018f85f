//! load: drives docket's HTTP server with many concurrent clients and
//! reports throughput and latency next to the in-process figure of the same
//! run.
//!
//! * in-process ingest: signed notices through the sequencer (the full append
//!   path, group commit, fdatasync) from `--appenders` tokio tasks;
//! * HTTP ingest: the same number of notices, as `POST /v1/events` from
//!   `--appenders` client threads (one connection per request) against
//!   `docket serve`'s server on loopback, on another copy of the same ledger
//!   (a third of the notices); then a third as `--batch`-event JSON batches
//!   (`POST /v1/events/batch`) from `--appenders / --batch` clients, the same
//!   number of events in flight, and the last third as wire-form batches;
//! * point check: `GET /v1/views/check`, signed, from `--connections` client
//!   threads paced to `--rate` requests/s in total, for `--seconds`, while
//!   `--background` threads keep appending; p50 / p99 / max;
//! * the inquiry register's cost: the same paced point checks with no
//!   appends running, on servers with the register on and off (on, off, on,
//!   off, `--seconds / 2` each), p50 / p99 of each and their ratios.
//!
//! With `LOAD_CPU=1` it prints the CPU seconds of the server's threads during
//! the JSON batch phase.
//!
//! ```text
//! load [--events 20000] [--appenders 256] [--batch 16] [--connections 64] [--rate 1000] [--seconds 10] [--background 16] [--subjects 2000] [--dir DIR]
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_log::ledger::Ledger;
use docket_model::SignedEvent;
use docket_server::ServerLimits;
use docket_world as world;

const SEED: u64 = 1;

fn in_process(dir: &Path, events: &[SignedEvent], appenders: usize) -> f64 {
    let (log, _, _lock) = Ledger::open(dir, docket_log::Config::default()).expect("open").into_parts();
    let (sequencer, writer) = docket_log::Sequencer::start(log, docket_log::Limits::default());
    let rate = events.len() as f64 / benchkit::append_concurrently(&sequencer, events, appenders);
    drop(sequencer);
    writer.join().expect("writer");
    rate
}

/// Posts `events` from `threads` threads, `batch` events per request
/// (`/v1/events` for 1, `/v1/events/batch` otherwise); returns (events/s,
/// sorted request latencies in ms).
fn http_ingest(base: &str, events: &[SignedEvent], threads: usize, batch: usize, wire: bool) -> (f64, Vec<f64>) {
    let bodies: Vec<Vec<u8>> = if wire {
        events
            .chunks(batch.max(1))
            .map(|chunk| {
                let mut body = Vec::new();
                for event in chunk {
                    let bytes = event.to_wire();
                    body.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                    body.extend_from_slice(&bytes);
                }
                body
            })
            .collect()
    } else if batch <= 1 {
        events.iter().map(|e| serde_json::to_vec(&e.to_json()).expect("json")).collect()
    } else {
        events
            .chunks(batch)
            .map(|chunk| serde_json::to_vec(&chunk.iter().map(SignedEvent::to_json).collect::<Vec<_>>()).expect("json"))
            .collect()
    };
    let path = if batch <= 1 && !wire { "/v1/events" } else { "/v1/events/batch" };
    let content_type: &[(&str, &str)] =
        if wire { &[("Content-Type", "application/octet-stream")] } else { &[("Content-Type", "application/json")] };
    let started = Instant::now();
    let mut latencies: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let bodies = &bodies;
                scope.spawn(move || {
                    let client = docket_client::Client::new(base).expect("client");
                    let mut mine = vec![];
                    for body in bodies.iter().skip(t).step_by(threads) {
                        let sent = Instant::now();
                        let response = client.request("POST", path, body, content_type).expect("request");
                        assert_eq!(response.status, 200, "{}", response.text());
                        mine.push(sent.elapsed().as_secs_f64() * 1e3);
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("client thread")).collect()
    });
    let rate = events.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    (rate, latencies)
}

/// Signed point checks (`GET /v1/views/check`) as china-railway from
/// `connections` client threads paced to `rate` per second in all, for
/// `seconds`; the latencies in ms, unsorted.
fn point_checks(base: &str, subjects: &[String], connections: usize, rate: u64, seconds: u64) -> Vec<f64> {
    let interval = Duration::from_secs_f64(connections as f64 / rate as f64);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|t| {
                scope.spawn(move || {
                    let client = docket_client::Client::new(base)
                        .expect("client")
                        .with_identity("china-railway", world::key(SEED, "china-railway"));
                    let mut mine = vec![];
                    let mut next = Instant::now() + interval.mul_f64(t as f64 / connections as f64);
                    let mut index = t;
                    while next < deadline {
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let subject = &subjects[index % subjects.len()];
                        let path = format!("/v1/views/check?subject={subject}&measure=restrict-rail");
                        let sent = Instant::now();
                        let response = client.get(&path).expect("request");
                        assert_eq!(response.status, 200, "{}", response.text());
                        mine.push(sent.elapsed().as_secs_f64() * 1e3);
                        index += connections;
                        next += interval;
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("checker")).collect()
    })
}

/// What the inquiry register costs a point check: the same paced checks
/// (no appends running) on servers with the register on and off,
/// alternating on, off, on, off so drift on a shared machine falls on both;
/// (on, off) latencies in ms, sorted.
fn inquiry_cost(dir: &Path, subjects: &[String], connections: usize, rate: u64, seconds: u64) -> (Vec<f64>, Vec<f64>) {
    let (mut on, mut off) = (vec![], vec![]);
    for register in [true, false, true, false] {
        let limits = ServerLimits { inquiry_register: register, ..ServerLimits::default() };
        let serving = benchkit::serve(dir, limits).expect("server");
        let latencies = point_checks(&serving.base, subjects, connections, rate, seconds.div_ceil(2));
        serving.stop().expect("server");
        if register {
            on.extend(latencies)
        } else {
            off.extend(latencies)
        }
    }
    on.sort_by(f64::total_cmp);
    off.sort_by(f64::total_cmp);
    (on, off)
}

const USAGE: &str = "load: the HTTP server under load: ingest next to in-process ingest, point checks at a fixed rate while appends run.\n\nusage: load [--events 20000] [--appenders 256] [--batch 16] [--connections 64] [--rate 1000] [--seconds 10] [--background 16] [--subjects 2000] [--dir DIR]\n\nLOAD_CPU=1 prints the CPU seconds of the server's threads during the JSON batch phase.\n\nexamples:\n  cargo run --release -p load -- --events 20000 --seconds 10\n  cargo run --release -p load -- --events 5000 --appenders 64 --rate 500";

fn main() {
    match benchkit::check_args(
        USAGE,
        &[
            "--events",
            "--appenders",
            "--batch",
            "--connections",
            "--rate",
            "--seconds",
            "--background",
            "--subjects",
            "--dir",
        ],
        &[],
    ) {
        Ok(true) => {}
        Ok(false) => return,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
    let count = benchkit::number("--events", 20_000);
    let appenders = benchkit::number("--appenders", 256) as usize;
    let connections = benchkit::number("--connections", 64) as usize;
    let rate = benchkit::number("--rate", 1000);
    let seconds = benchkit::number("--seconds", 10);
    let background = benchkit::number("--background", 16) as usize;
    let subjects = benchkit::number("--subjects", 2000);
    let base_dir = std::env::args()
        .skip_while(|a| a != "--dir")
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().expect("cwd").join("target/load"));
    std::fs::create_dir_all(&base_dir).expect("dir");
    let work = tempfile::tempdir_in(&base_dir).expect("tempdir");
    let (http_dir, local_dir) = (work.path().join("http"), work.path().join("local"));
    eprintln!("demo ledgers ({subjects} subjects) and {count} signed notices…");
    world::write_ledger(&http_dir, subjects, SEED).expect("demo ledger");
    world::write_ledger(&local_dir, subjects, SEED).expect("demo ledger");
    let events = benchkit::notices(0, count, SEED);
    // Enough for the background appenders at the rates seen on this machine (under 10k/s).
    let background_events = benchkit::notices(count, (seconds * 12_000).max(1000), SEED);

    eprintln!("in-process ingest…");
    let local_rate = in_process(&local_dir, &events, appenders);

    let serving = benchkit::serve(&http_dir, ServerLimits::default()).expect("server");
    let base = serving.base.clone();
    eprintln!("HTTP ingest against {base}…");
    let third = count as usize / 3;
    let (http_rate, append_latency) = http_ingest(&base, &events[..third], appenders, 1, false);
    // The same events in flight (appenders), as batches of `batch` from appenders / batch clients.
    let batch = benchkit::number("--batch", 16) as usize;
    let batch_clients = (appenders / batch.max(1)).max(1);
    let cpu_before = benchkit::thread_cpu();
    let batch_started = Instant::now();
    let (batch_rate, batch_latency) = http_ingest(&base, &events[third..2 * third], batch_clients, batch, false);
    if std::env::var_os("LOAD_CPU").is_some() {
        // Client threads exit when done, so their CPU is what is missing from the total.
        let wall = batch_started.elapsed().as_secs_f64();
        let after = benchkit::thread_cpu();
        let used: Vec<String> = after
            .iter()
            .map(|(name, cpu)| format!("{name} {:.2}", cpu - cpu_before.get(name).copied().unwrap_or(0.0)))
            .collect();
        eprintln!("JSON batches: wall {wall:.2} s; CPU s of the surviving threads: {}", used.join(", "));
    }
    let (wire_rate, wire_latency) = http_ingest(&base, &events[2 * third..], batch_clients, batch, true);

    // Point checks at a fixed total rate, with appends running.
    eprintln!("point checks: {rate}/s over {connections} connections for {seconds} s, {background} appenders running…");
    let subjects_checked: Vec<String> =
        (0..count).step_by(7).map(|i| format!("uscc:{}", world::numbered_uscc(i))).collect();
    let stop_appends = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let appenders_running: Vec<_> = (0..background)
        .map(|t| {
            let (base, stop, appended) = (base.clone(), stop_appends.clone(), appended.clone());
            let mine: Vec<Vec<u8>> = background_events
                .iter()
                .skip(t)
                .step_by(background)
                .map(|e| serde_json::to_vec(&e.to_json()).expect("json"))
                .collect();
            std::thread::spawn(move || {
                let client = docket_client::Client::new(&base).expect("client");
                for body in mine {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if client.post("/v1/events", &body).is_ok_and(|r| r.status == 200) {
                        appended.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut check_latency = point_checks(&base, &subjects_checked, connections, rate, seconds);
    stop_appends.store(true, Ordering::Relaxed);
    for handle in appenders_running {
        handle.join().expect("appender");
    }
    serving.stop().expect("server");
    check_latency.sort_by(f64::total_cmp);
    eprintln!("point checks with the inquiry register on and off…");
    let (with_register, without_register) = inquiry_cost(&http_dir, &subjects_checked, connections, rate, seconds);
    let achieved = check_latency.len() as f64 / seconds as f64;
    let background_rate = appended.load(Ordering::Relaxed) as f64 / seconds as f64;

    println!(
        "load: {count} notices, {appenders} appenders; {} cores\n",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!("| figure | value | peer | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| HTTP ingest, {appenders} clients, one JSON event per request | {http_rate:.0} events/s (append p50 {:.1} ms, p99 {:.1} ms) | in-process ingest, {appenders} tasks: {local_rate:.0} events/s | {:.2} | >= 0.50 |",
        benchkit::percentile(&append_latency, 0.5),
        benchkit::percentile(&append_latency, 0.99),
        http_rate / local_rate
    );
    println!(
        "| HTTP ingest, {batch_clients} clients x {batch}-event batches, JSON | {batch_rate:.0} events/s (request p50 {:.1} ms, p99 {:.1} ms) | in-process ingest, {appenders} tasks: {local_rate:.0} events/s | {:.2} | >= 0.50 |",
        benchkit::percentile(&batch_latency, 0.5),
        benchkit::percentile(&batch_latency, 0.99),
        batch_rate / local_rate
    );
    println!(
        "| HTTP ingest, {batch_clients} clients x {batch}-event batches, wire form | {wire_rate:.0} events/s (request p50 {:.1} ms, p99 {:.1} ms) | in-process ingest, {appenders} tasks: {local_rate:.0} events/s | {:.2} | >= 0.50 |",
        benchkit::percentile(&wire_latency, 0.5),
        benchkit::percentile(&wire_latency, 0.99),
        wire_rate / local_rate
    );
    println!(
        "| point check over HTTP, {achieved:.0} requests/s over {connections} connections, with {background_rate:.0} appends/s running | p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms | — | — | p99 < 5 ms at 1,000/s |",
        benchkit::percentile(&check_latency, 0.5),
        benchkit::percentile(&check_latency, 0.99),
        check_latency.last().copied().unwrap_or(f64::NAN)
    );
    let p = benchkit::percentile;
    println!(
        "| point check over HTTP, {rate}/s, no appends, inquiry register on | p50 {:.2} ms, p99 {:.2} ms ({} checks) | register off: p50 {:.2} ms, p99 {:.2} ms ({} checks) | p50 {:.2}, p99 {:.2} | — |",
        p(&with_register, 0.5),
        p(&with_register, 0.99),
        with_register.len(),
        p(&without_register, 0.5),
        p(&without_register, 0.99),
        without_register.len(),
        p(&with_register, 0.5) / p(&without_register, 0.5),
        p(&with_register, 0.99) / p(&without_register, 0.99)
    );
}
