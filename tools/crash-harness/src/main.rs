//! crash-harness: SIGKILLs a real server while several appender processes
//! post events to it (single and batched), over many cycles, and after each
//! restart checks that nothing acknowledged was lost.
//!
//! ```text
//! crash-harness [--cycles 1000] [--subjects 2000] [--appenders 3] [--seed 1] [--dir DIR]
//! ```
//!
//! Each cycle starts the server (`crash-harness serve`, the real
//! `docket_server::Server` with small segments and a short checkpoint
//! interval, so that kills land during segment rotation and checkpoints too),
//! then the appenders (`crash-harness append`): each owns a disjoint set of
//! the demo's cases, posts their events in order, and prints `seq id` for
//! every receipt it gets. After a random delay the parent SIGKILLs the server
//! and the appenders, restarts the server (which recovers the log and
//! checkpoints it before taking traffic) and checks, beside it, that:
//!
//! * every acknowledged event is in the log at the seq its receipt named;
//! * `verify` passes (every frame, chain link, signature, authorisation, root);
//! * the latest signed checkpoint covers every acknowledged record: the
//!   restart signs it before serving, well within one checkpoint interval.
//!
//! SIGKILL leaves the page cache alive, so this tests the process-crash
//! path; power loss (lost and reordered pages) is `tests/faults.rs`'s job.
//! When every event is in, the ledger starts again from its registry.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use docket_log::ledger::{self, Ledger};
use docket_log::Reader;
use docket_log::{verify, Config};
use docket_model::{PublicKey, SignedEvent, Timestamp};
use docket_world as world;

/// Segments this small rotate every few hundred events, so kills land in rotations.
const SEGMENT_BYTES_MAX: u64 = 64 * 1024;
/// Checkpoints this often are being signed at many of the kills.
const CHECKPOINT_INTERVAL_MS: u64 = 20;
/// Events per batch request, at most.
const BATCH_EVENTS_MAX: u64 = 32;

fn arg(args: &[String], name: &str, default: u64) -> Result<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).context("missing value")?.parse().with_context(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

fn text_arg(args: &[String], name: &str) -> Result<String> {
    let i = args.iter().position(|a| a == name).with_context(|| format!("{name} is required"))?;
    args.get(i + 1).cloned().with_context(|| format!("{name} needs a value"))
}

/// Events stored once as length-prefixed wire forms, so each process starts in milliseconds.
fn write_events(path: &Path, events: &[SignedEvent]) -> Result<()> {
    let mut bytes = Vec::new();
    for event in events {
        let wire = event.to_wire();
        bytes.extend_from_slice(&(wire.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&wire);
    }
    std::fs::write(path, bytes).context("writing events")
}

/// The events of a part's file from the `skip`-th on; the skipped ones are
/// not decoded, so an appender starts in milliseconds whatever its progress.
fn read_events(path: &Path, skip: u64) -> Result<Vec<SignedEvent>> {
    let bytes = std::fs::read(path).context("reading events")?;
    let mut events = Vec::new();
    let (mut at, mut index) = (0, 0u64);
    while at + 4 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into()?) as usize;
        let wire = bytes.get(at + 4..at + 4 + len).context("truncated events file")?;
        if index >= skip {
            events.push(SignedEvent::from_wire(wire)?);
        }
        at += 4 + len;
        index += 1;
    }
    Ok(events)
}

/// One events file per part (appender).
fn part_path(dir: &Path, part: u64) -> PathBuf {
    dir.join(format!("events-{part}.bin"))
}

/// The part (appender) an event belongs to: by case, so a case's events keep their order.
fn part_of(event: &SignedEvent, parts: u64) -> u64 {
    let case = event.event().case().map(|case| format!("{}/{}/{}", case.list, case.subject, case.number));
    let digest = blake3::hash(case.unwrap_or_default().as_bytes());
    u64::from_be_bytes(digest.as_bytes()[..8].try_into().unwrap_or([0; 8])) % parts
}

/// `crash-harness serve`: the server on the ledger, until killed.
fn serve(dir: &Path) -> Result<()> {
    let limits = docket_server::ServerLimits {
        segment_bytes_max: SEGMENT_BYTES_MAX,
        checkpoint_interval_ms: CHECKPOINT_INTERVAL_MS,
        appends_per_agency_per_s: 1_000_000,
        append_burst: 1_000_000,
        ..docket_server::ServerLimits::default()
    };
    let server = docket_server::Server::open(dir, limits)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        server.serve(listener, std::future::pending()).await?;
        anyhow::Ok(())
    })
}

/// `crash-harness append`: posts this part's events from `--from` on, in
/// order, single or batched at random; prints `seq id` per receipt.
fn append(args: &[String]) -> Result<()> {
    let (part, from) = (arg(args, "--part", 0)?, arg(args, "--from", 0)?);
    let events = read_events(Path::new(&text_arg(args, "--events")?), from)?;
    let mut rng = benchkit::Rng(arg(args, "--seed", 1)?);
    let mine: Vec<&SignedEvent> = events.iter().collect();
    let client = docket_client::Client::new(&format!("http://{}", text_arg(args, "--addr")?))?;
    let mut out = std::io::stdout().lock();
    let mut next = 0;
    while next < mine.len() {
        let size = if rng.below(2) == 0 { 1 } else { 1 + rng.below(BATCH_EVENTS_MAX) as usize };
        let batch = &mine[next..(next + size).min(mine.len())];
        let receipts = post(&client, batch)?;
        for receipt in &receipts {
            writeln!(out, "{} {}", receipt.0, receipt.1)?;
        }
        out.flush()?;
        if receipts.len() < batch.len() {
            bail!("part {part}: only {} of {} events acknowledged", receipts.len(), batch.len());
        }
        next += batch.len();
    }
    Ok(())
}

/// Posts events (one, or a batch in wire form); returns `(seq, id)` per receipt, in order.
fn post(client: &docket_client::Client, batch: &[&SignedEvent]) -> Result<Vec<(u64, String)>> {
    let response = if batch.len() == 1 {
        client.post("/v1/events", serde_json::to_string(&batch[0].to_json())?.as_bytes())?
    } else {
        let mut body = Vec::new();
        for event in batch {
            let wire = event.to_wire();
            body.extend_from_slice(&(wire.len() as u32).to_be_bytes());
            body.extend_from_slice(&wire);
        }
        client.request("POST", "/v1/events/batch", &body, &[("Content-Type", "application/octet-stream")])?
    };
    let value: serde_json::Value = serde_json::from_slice(&response.body).context("a JSON answer")?;
    if response.status != 200 {
        bail!("status {}: {value}", response.status);
    }
    let receipts: Vec<&serde_json::Value> = match value.get("results") {
        Some(results) => results.as_array().context("results")?.iter().map(|r| &r["receipt"]).collect(),
        None => vec![&value],
    };
    receipts
        .into_iter()
        .map(|receipt| {
            let seq = receipt["seq"].as_u64().ok_or_else(|| anyhow!("no receipt in {value}"))?;
            Ok((seq, receipt["id"].as_str().unwrap_or_default().to_owned()))
        })
        .collect()
}

/// A child process and the lines it prints, read on a thread of their own.
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

fn spawn(args: &[&str]) -> Result<Running> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning a child")?;
    let stdout = child.stdout.take().context("stdout")?;
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Ok(Running { child, lines })
}

fn stderr_of(running: &mut Running) -> String {
    let mut errors = String::new();
    if let Some(mut stderr) = running.child.stderr.take() {
        let _ = stderr.read_to_string(&mut errors);
    }
    errors
}

/// Records the server said its recovery cut on open (`recovery cut ... (N record(s), ...`).
fn records_cut(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter(|line| line.contains("recovery cut"))
        .filter_map(|line| line.split_once(" (")?.1.split(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Starts the server and waits for its address.
fn start_server(dir: &Path) -> Result<(Running, String)> {
    let mut server = spawn(&["serve", "--dir", &dir.join("ledger").display().to_string()])?;
    match server.lines.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => Ok((server, line.strip_prefix("listening ").context("an address")?.to_owned())),
        Err(_) => {
            let _ = server.child.kill();
            let _ = server.child.wait();
            bail!("the server did not start: {}", stderr_of(&mut server))
        }
    }
}

struct Harness {
    dir: PathBuf,
    seed: u64,
    appenders: u64,
    events: Vec<SignedEvent>,
    registry_events: usize,
    /// Acknowledged events per part, in order: a prefix of that part's events.
    acknowledged: Vec<Vec<(u64, String)>>,
    totals: Totals,
}

#[derive(Debug, Default)]
struct Totals {
    cycles: u64,
    epochs: u64,
    acknowledged: u64,
    checked: u64,
    cut_records: u64,
}

impl Harness {
    /// A new ledger holding only the registry.
    fn fresh(&mut self) -> Result<()> {
        let ledger_dir = self.dir.join("ledger");
        if ledger_dir.exists() {
            std::fs::remove_dir_all(&ledger_dir)?;
        }
        let built = world::build(0, self.seed);
        let root = PublicKey(built.registry_root.verifying_key().to_bytes());
        let log_key = world::key(self.seed, "log");
        ledger::init(&ledger_dir, "docket.invalid/crash-harness", &log_key, root, None)?;
        let mut ledger = Ledger::open(&ledger_dir, Config { segment_bytes_max: SEGMENT_BYTES_MAX })?;
        for result in ledger.log.append_batch(self.events[..self.registry_events].to_vec(), Timestamp::now())? {
            result.map_err(|refusal| anyhow!("registry event refused: {refusal}"))?;
        }
        ledger.checkpoint(&log_key)?;
        self.acknowledged = vec![Vec::new(); self.appenders as usize];
        self.totals.epochs += 1;
        Ok(())
    }

    /// One cycle: server and appenders run for `run`, then all are killed,
    /// the server restarted and everything acknowledged checked.
    fn cycle(&mut self, run: Duration) -> Result<bool> {
        let (mut server, addr) = start_server(&self.dir)?;
        let mut appenders = Vec::new();
        for part in 0..self.appenders {
            let events_path = part_path(&self.dir, part).display().to_string();
            let from = self.acknowledged[part as usize].len().to_string();
            let seed = (self.totals.cycles * 31 + part).to_string();
            let part = part.to_string();
            let args = [
                "append",
                "--addr",
                &addr,
                "--events",
                &events_path,
                "--part",
                &part,
                "--from",
                &from,
                "--seed",
                &seed,
            ];
            appenders.push(spawn(&args)?);
        }
        std::thread::sleep(run);
        server.child.kill()?; // SIGKILL
        server.child.wait()?;
        let mut finished = true;
        for (part, appender) in appenders.iter_mut().enumerate() {
            let _ = appender.child.kill();
            let status = appender.child.wait()?;
            let mut ended_by_itself = status.success();
            while let Ok(line) = appender.lines.recv_timeout(Duration::from_secs(5)) {
                let (seq, id) = line.split_once(' ').with_context(|| format!("appender printed {line:?}"))?;
                self.acknowledged[part].push((seq.parse()?, id.to_owned()));
                self.totals.acknowledged += 1;
            }
            if status.code().is_some() && !status.success() {
                // It ended on its own with an error: a refusal is a harness failure,
                // a lost connection (the server was killed first) is not.
                let errors = stderr_of(appender);
                if errors.contains("refused") || errors.contains("status 4") {
                    bail!("cycle {}: appender {part} failed: {errors}", self.totals.cycles);
                }
                ended_by_itself = false;
            }
            finished &= ended_by_itself;
        }
        self.check()?;
        self.totals.cycles += 1;
        Ok(finished)
    }

    /// Restarts the server and checks the ledger beside it.
    fn check(&mut self) -> Result<()> {
        let cycle = self.totals.cycles;
        let (mut server, _) = start_server(&self.dir).with_context(|| format!("cycle {cycle}: restart"))?;
        let result = self.check_beside_server();
        server.child.kill()?;
        server.child.wait()?;
        self.totals.cut_records += records_cut(&stderr_of(&mut server));
        result.with_context(|| format!("cycle {cycle}"))
    }

    fn check_beside_server(&mut self) -> Result<()> {
        let ledger_dir = self.dir.join("ledger");
        let mut in_log: HashMap<u64, String> = HashMap::new();
        let mut size = 0;
        Reader::new(docket_log::ledger::Paths::new(&ledger_dir).segments()).read_from(0, None, |frame| {
            if let Ok(event) = SignedEvent::from_wire(&frame.wire) {
                in_log.insert(frame.seq, event.id().to_hex());
            }
            size = frame.seq + 1;
            std::ops::ControlFlow::Continue(())
        })?;
        let mut last_acknowledged = None;
        for (seq, id) in self.acknowledged.iter().flatten() {
            match in_log.get(seq) {
                Some(found) if found == id => {}
                Some(found) => bail!("seq {seq} was acknowledged as {id} but the log has {found}"),
                None => bail!("acknowledged seq {seq} ({id}) is missing; the log has {size} records"),
            }
            last_acknowledged = last_acknowledged.max(Some(*seq));
            self.totals.checked += 1;
        }
        let report = verify::verify(&ledger_dir, None, 2, &mut |_, _| {}).map_err(|f| anyhow!("verify failed: {f}"))?;
        let covered = report.checkpoint_size.unwrap_or(0);
        if let Some(last) = last_acknowledged {
            if covered <= last {
                bail!("the checkpoint after the restart covers {covered} records; seq {last} was acknowledged");
            }
        }
        let distinct: BTreeSet<&String> = self.acknowledged.iter().flatten().map(|(_, id)| id).collect();
        if distinct.len() != self.acknowledged.iter().map(Vec::len).sum::<usize>() {
            bail!("an event was acknowledged at two seqs");
        }
        Ok(())
    }
}

const USAGE: &str =
    "crash-harness: SIGKILLs the server under concurrent appender processes, restarts it, and checks that \
no acknowledged event was lost, verify passes and the checkpoint covers every acknowledged record.

usage: crash-harness [--cycles 1000] [--subjects 2000] [--appenders 3] [--seed 1] [--dir DIR]

examples:
  cargo run -p crash-harness -- --cycles 20 --subjects 150 --dir /tmp/crash   # what CI runs
  cargo run --release -p crash-harness -- --cycles 1000";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => return serve(Path::new(&text_arg(&args, "--dir")?)),
        Some("append") => return append(&args),
        Some("--help" | "-h") => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => {}
    }
    let cycles = arg(&args, "--cycles", 1000)?;
    let subjects = arg(&args, "--subjects", 2000)?;
    let appenders = arg(&args, "--appenders", 3)?.max(1);
    let seed = arg(&args, "--seed", 1)?;
    let dir = match args.iter().position(|a| a == "--dir").and_then(|i| args.get(i + 1)) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("docket-crash-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let built = world::build(subjects, seed);
    let registry_events = built.events.iter().take_while(|e| e.event().kind().is_registry()).count();
    if built.events[registry_events..].iter().any(|e| e.event().kind().is_registry()) {
        bail!("the demo interleaves registry and case events; the harness appends the registry first");
    }
    for part in 0..appenders {
        let mine: Vec<SignedEvent> =
            built.events[registry_events..].iter().filter(|e| part_of(e, appenders) == part).cloned().collect();
        write_events(&part_path(&dir, part), &mine)?;
    }
    let mut harness = Harness {
        dir: dir.clone(),
        seed,
        appenders,
        events: built.events,
        registry_events,
        acknowledged: Vec::new(),
        totals: Totals::default(),
    };
    harness.fresh()?;
    let mut rng = benchkit::Rng(seed ^ 0x5eed);
    let started = Instant::now();
    for _ in 0..cycles {
        let run = Duration::from_millis(30 + rng.below(300));
        if harness.cycle(run)? {
            harness.fresh()?;
        }
        if harness.totals.cycles.is_multiple_of(50) {
            eprintln!(
                "{} cycles, {} acknowledged, {:.0} s",
                harness.totals.cycles,
                harness.totals.acknowledged,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let totals = &harness.totals;
    println!(
        "crash-harness: {} cycles ({} ledgers), server SIGKILLed under {appenders} appender processes in every cycle; \
         {} events acknowledged, {} acknowledgements checked after restarts, 0 lost; {} unacknowledged records cut \
         by recovery; verify passed and the checkpoint covered every acknowledged record after every restart ({:.0} s)",
        totals.cycles,
        totals.epochs,
        totals.acknowledged,
        totals.checked,
        totals.cut_records,
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(dir.join("ledger"));
    Ok(())
}
