//! Hostile load against docket's server, on loopback only: what a client
//! without a key can do with sockets and bytes. The server runs in a child
//! process (its RSS is its own); attackers run in child processes of their
//! own (each has its own file-descriptor limit, raised to the hard limit),
//! from source addresses 127.0.0.2 and up; the parent probes `/healthz` and
//! samples the server's RSS all along.
//!
//! Phases: a baseline of `/healthz` probes; then at once `--idle` idle
//! connections, `--slowloris` connections sending a header line every
//! 500 ms, and `--partial` POSTs of 1 MiB bodies that stop 2 bytes short;
//! then a replay flood (one genuine event sent `--replays` times) and a new
//! event from another address, which must still be within the agency's
//! budget. Every loop is bounded in count and time.
//!
//! ```text
//! cargo run --release -p hostile -- [--idle 20000] [--slowloris 2000] [--partial 1500]
//!                                   [--seconds 25] [--replays 5000] [--dir DIR]
//! cargo run --release -p hostile -- --ci     # small, fast: what CI runs
//! ```

mod attack;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use docket_server::{Server, ServerLimits};

/// The run's sizes.
#[derive(Debug, Clone)]
struct Settings {
    idle: u64,
    slowloris: u64,
    partial: u64,
    seconds: u64,
    replays: u64,
    /// The server's header and body timeouts (`header_read_timeout_ms`, `body_read_timeout_ms`).
    timeout_ms: u64,
    /// Idle connections per attacker process.
    per_process: u64,
}

impl Settings {
    fn from_args() -> Self {
        let ci = std::env::args().any(|a| a == "--ci");
        let (idle, slowloris, partial, seconds, replays, timeout_ms) =
            if ci { (2_000, 200, 100, 6, 3_000, 2_000) } else { (20_000, 2_000, 1_500, 25, 5_000, 10_000) };
        Self {
            idle: benchkit::number("--idle", idle),
            slowloris: benchkit::number("--slowloris", slowloris),
            partial: benchkit::number("--partial", partial),
            seconds: benchkit::number("--seconds", seconds),
            replays: benchkit::number("--replays", replays),
            timeout_ms: benchkit::number("--timeout-ms", timeout_ms),
            per_process: benchkit::number("--per-process", 10_000).max(1),
        }
    }
}

const USAGE: &str =
    "hostile: attacks the server on loopback as a client without a key would (idle, slowloris and partial-body \
connections, a replay flood) while probing /healthz and sampling the server's RSS.

usage: hostile [--idle 20000] [--slowloris 2000] [--partial 1500] [--seconds 25] [--replays 5000]
               [--timeout-ms 10000] [--per-process 10000] [--ci] [--dir DIR]

examples:
  cargo run --release -p hostile -- --ci                    # small and fast: what CI runs
  cargo run --release -p hostile -- --idle 5000 --seconds 10";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--serve") => serve_child(&args),
        Some("--attack") => attack::child(&args),
        _ => match benchkit::check_args(
            USAGE,
            &["--idle", "--slowloris", "--partial", "--seconds", "--replays", "--timeout-ms", "--per-process", "--dir"],
            &["--ci"],
        ) {
            Ok(true) => run(Settings::from_args()),
            Ok(false) => Ok(()),
            Err(message) => Err(message),
        },
    };
    if let Err(error) = result {
        eprintln!("hostile: {error}");
        std::process::exit(2);
    }
}

/// The file-descriptor soft limit, raised to the hard limit.
fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// Child: the server over `DIR` with the given timeouts, on a loopback port
/// printed to stdout, until stdin closes.
fn serve_child(args: &[String]) -> Result<(), String> {
    raise_fd_limit();
    let dir = PathBuf::from(args.get(2).ok_or("--serve DIR TIMEOUT_MS")?);
    let timeout_ms: u64 = args.get(3).and_then(|t| t.parse().ok()).ok_or("--serve DIR TIMEOUT_MS")?;
    let limits = ServerLimits {
        header_read_timeout_ms: timeout_ms,
        body_read_timeout_ms: timeout_ms,
        // A small budget, so that a replay flood that spent it would show.
        appends_per_agency_per_s: 10,
        append_burst: 100,
        ..ServerLimits::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let server = Server::open(&dir, limits).map_err(|e| e.to_string())?;
        let listener = Server::bind(([127, 0, 0, 1], 0).into()).map_err(|e| e.to_string())?;
        println!("listening {}", listener.local_addr().map_err(|e| e.to_string())?);
        let _ = std::io::stdout().flush();
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        server.serve(listener, async move { drop(stdin_closed.await) }).await.map_err(|e| e.to_string())
    })
}

/// Starts this binary again with `args`; its stdin is kept open.
fn spawn_self(args: &[String]) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new(exe).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().map_err(|e| e.to_string())
}

/// The first line a child prints.
fn first_line(child: &mut Child) -> Result<String, String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line.trim().to_owned())
}

/// The server's resident set and its peak (VmRSS, VmHWM), in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn run(settings: Settings) -> Result<(), String> {
    let fd_limit = raise_fd_limit();
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = benchkit::arg("--dir").map_or_else(|| scratch.path().join("ledger"), PathBuf::from);
    if !docket_log::ledger::Paths::new(&dir).config().exists() {
        docket_world::write_ledger(&dir, 200, 1).map_err(|e| e.to_string())?;
    }
    let mut server = spawn_self(&["--serve".into(), dir.display().to_string(), settings.timeout_ms.to_string()])?;
    let line = first_line(&mut server)?;
    let addr: SocketAddr = line.strip_prefix("listening ").and_then(|a| a.parse().ok()).ok_or(line.clone())?;
    let pid = server.id();
    println!("hostile: server pid {pid} on {addr}; this process's fd limit {fd_limit}; {settings:?}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let baseline = runtime.block_on(attack::probe(addr, Duration::from_secs(2), pid));
    println!("baseline /healthz: {}", baseline.line());
    let flood = flood(&settings, addr, &runtime, pid)?;
    println!("server metrics: {}", runtime.block_on(attack::connection_metrics(addr)));
    let replay = runtime.block_on(attack::replay_flood(addr, &dir, settings.replays))?;
    println!("{replay}");
    let (rss, peak) = rss_kib(pid);
    println!("server RSS after the run: {} MiB (peak {} MiB)", rss / 1024, peak / 1024);
    println!("ratio /healthz p99 under attack / baseline p99: {:.1}", flood.p99_ms() / baseline.p99_ms().max(0.001));
    drop(server.stdin.take());
    let _ = server.wait();
    Ok(())
}

/// The flood: attacker processes and the probes at once; their reports.
fn flood(
    settings: &Settings,
    addr: SocketAddr,
    runtime: &tokio::runtime::Runtime,
    pid: u32,
) -> Result<attack::Probes, String> {
    let seconds = settings.seconds.to_string();
    let mut attackers = vec![];
    let mut octet = 2u64;
    let mut idle = settings.idle;
    while idle > 0 {
        let count = idle.min(settings.per_process);
        attackers.push(spawn_attacker("idle", count, addr, &seconds, octet)?);
        idle -= count;
        octet += 1;
    }
    attackers.push(spawn_attacker("slowloris", settings.slowloris, addr, &seconds, octet)?);
    attackers.push(spawn_attacker("partial", settings.partial, addr, &seconds, octet + 1)?);
    let probes = runtime.block_on(attack::probe(addr, Duration::from_secs(settings.seconds), pid));
    println!("under attack /healthz: {}", probes.line());
    for mut attacker in attackers {
        let report = first_line(&mut attacker)?;
        println!("{report}");
        let _ = attacker.wait();
    }
    Ok(probes)
}

fn spawn_attacker(kind: &str, count: u64, addr: SocketAddr, seconds: &str, octet: u64) -> Result<Child, String> {
    spawn_self(&[
        "--attack".into(),
        kind.into(),
        count.to_string(),
        addr.to_string(),
        seconds.into(),
        octet.to_string(),
    ])
}

/// Elapsed milliseconds.
fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
