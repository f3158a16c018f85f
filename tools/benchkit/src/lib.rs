//! What docket's benchmark tools share.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use docket_log::Sequencer;
use docket_model::SignedEvent;
use docket_server::{Server, ServerLimits};

/// The value after `--NAME` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// The number after `--NAME`, or `default`.
pub fn number(name: &str, default: u64) -> u64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The `p` quantile (0..=1) of sorted values (NaN for none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// CPU seconds (user + system) used so far by each live thread of this process, by thread name.
pub fn thread_cpu() -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
            + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        *out.entry(name).or_insert(0.0) += ticks / 100.0; // USER_HZ
    }
    out
}

/// Peak resident memory of this process (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Appends `events` through `sequencer` from `appenders` tokio tasks (each
/// waiting for its receipt before its next append) on a two-worker runtime;
/// returns the seconds it took. Panics if an event is refused.
pub fn append_concurrently(sequencer: &Sequencer, events: &[SignedEvent], appenders: usize) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..appenders {
            let sequencer = sequencer.clone();
            let mine: Vec<SignedEvent> = events.iter().skip(task).step_by(appenders).cloned().collect();
            tasks.push(tokio::spawn(async move {
                for event in mine {
                    if let Err(error) = sequencer.append(event).await {
                        panic!("refused: {error}");
                    }
                }
            }));
        }
        for task in tasks {
            if let Err(error) = task.await {
                panic!("appender: {error}");
            }
        }
    });
    started.elapsed().as_secs_f64()
}

/// Limit probe: `records` records of `record` bytes appended to a file in
/// `dir` with one `fdatasync` per `batch`; records/s. The file is removed.
pub fn raw_append(dir: &Path, records: u64, batch: u64, record: usize) -> std::io::Result<f64> {
    let path = dir.join("raw-append-probe");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    let bytes = vec![0x5au8; record];
    let mut buffer = Vec::with_capacity(record * batch as usize);
    let started = Instant::now();
    let mut written = 0;
    while written < records {
        buffer.clear();
        let n = batch.min(records - written);
        for _ in 0..n {
            buffer.extend_from_slice(&bytes);
        }
        file.write_all(&buffer)?;
        file.sync_data()?;
        written += n;
    }
    let rate = records as f64 / started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// Limit probe: ed25519-dalek `verify_batch` over `events` in batches of 64
/// on all cores; signatures/s. Panics if a signature does not verify.
pub fn batch_verify(events: &[SignedEvent]) -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let prepared: Vec<(Vec<u8>, ed25519_dalek::Signature, ed25519_dalek::VerifyingKey)> = events
        .iter()
        .filter_map(|e| {
            let message = docket_model::signed::signing_message(e.bytes());
            let signature = ed25519_dalek::Signature::from_bytes(&e.signature().0);
            let key = ed25519_dalek::VerifyingKey::from_bytes(&e.event().key.0).ok()?;
            Some((message, signature, key))
        })
        .collect();
    let chunk = prepared.len().div_ceil(threads).max(1);
    let started = Instant::now();
    let valid = std::thread::scope(|scope| {
        let handles: Vec<_> = prepared
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.chunks(64).all(|batch| {
                        let messages: Vec<&[u8]> = batch.iter().map(|(m, _, _)| m.as_slice()).collect();
                        let signatures: Vec<_> = batch.iter().map(|(_, s, _)| *s).collect();
                        let keys: Vec<_> = batch.iter().map(|(_, _, k)| *k).collect();
                        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
                    })
                })
            })
            .collect();
        handles.into_iter().all(|h| h.join().unwrap_or(false))
    });
    assert!(valid && prepared.len() == events.len(), "every probe signature verifies");
    prepared.len() as f64 / started.elapsed().as_secs_f64()
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// A number in `0..n` (0 for n = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// `docket serve`'s server on its own runtime and thread, on a loopback port.
#[derive(Debug)]
pub struct Serving {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

/// Opens the server over the ledger in `dir` with `limits` and serves it until [`Serving::stop`].
pub fn serve(dir: &Path, limits: ServerLimits) -> Result<Serving, String> {
    let (ready, address) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dir = dir.to_owned();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let server = Server::open(&dir, limits).map_err(|e| format!("opening {}: {e}", dir.display()))?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
            let _ = ready.send(listener.local_addr().map_err(|e| e.to_string())?);
            server
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .map_err(|e| e.to_string())
        })
    });
    match address.recv() {
        Ok(addr) => Ok(Serving { base: format!("http://{addr}"), stop, thread }),
        Err(_) => Err(thread.join().map_or_else(|_| "the server panicked".into(), |r| r.err().unwrap_or_default())),
    }
}

impl Serving {
    /// Stops the server gracefully and waits for it.
    pub fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        self.thread.join().map_err(|_| "the server panicked".to_owned())?
    }
}

/// Notices opening the cases `from..from + count` on the defaulter list, each
/// for its own subject ([`docket_world::numbered_uscc`]), signed by the demo
/// court of `seed`, on all cores: the workload of the ingest benchmarks.
pub fn notices(from: u64, count: u64, seed: u64) -> Vec<SignedEvent> {
    use docket_model::event::{Body, CaseAction, CaseEvent, Event, LegalRef, ServiceMethod, Signer, FORMAT_VERSION};
    use docket_model::{Name, PublicKey, SubjectId, Timestamp};
    let name = |text: &str| Name::parse(text).unwrap_or_else(|error| unreachable!("a valid name: {error}"));
    let key = docket_world::key(seed, "spc");
    let public = PublicKey(key.verifying_key().to_bytes());
    let threads = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let chunk = count.div_ceil(threads).max(1);
    // 2024-01-02T00:00:00+08:00: after the demo registers its keys (day 0, 09:00).
    let at = Timestamp::from_micros(1_704_124_800_000_000).unwrap_or_else(|_| unreachable!("in range"));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let key = key.clone();
                scope.spawn(move || {
                    (from + t * chunk..from + ((t + 1) * chunk).min(count))
                        .map(|i| {
                            let event = Event {
                                format: FORMAT_VERSION,
                                signer: Signer::Agency(name("spc")),
                                key: public,
                                effective_at: at,
                                body: Body::Case(CaseEvent {
                                    list: name("cn-spc-defaulters"),
                                    subject: SubjectId::Uscc(docket_world::numbered_uscc(i)),
                                    number: name(&format!("(2024)京0105执{i}号")),
                                    expected_version: Some(0),
                                    action: CaseAction::Notice {
                                        served_at: at,
                                        method: ServiceMethod::Post,
                                        matter: "Failure to perform the payment obligation in an effective judgment"
                                            .into(),
                                        legal_basis: vec![LegalRef {
                                            instrument: "Civil Procedure Law of the PRC".into(),
                                            article: "art. 266".into(),
                                        }],
                                        rights: "You may object in writing within 7 working days of service.".into(),
                                    },
                                }),
                            };
                            SignedEvent::sign(event, &key).unwrap_or_else(|error| unreachable!("signs: {error}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| unreachable!("signing does not panic"))).collect()
    })
}

/// Checks the command line of a tool: prints `usage` and returns `false`
/// for `--help` or `-h`; refuses an argument that is not one of `flags`
/// (each `--NAME` taking a value) or `switches` (each alone), naming it.
pub fn check_args(usage: &str, flags: &[&str], switches: &[&str]) -> Result<bool, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut index = 0;
    while index < args.len() {
        let arg = args[index].as_str();
        if arg == "--help" || arg == "-h" {
            println!("{usage}");
            return Ok(false);
        }
        if flags.contains(&arg) {
            if index + 1 >= args.len() {
                return Err(format!("{arg} needs a value\n\n{usage}"));
            }
            index += 2;
        } else if switches.contains(&arg) {
            index += 1;
        } else {
            return Err(format!("unknown argument {arg:?}\n\n{usage}"));
        }
    }
    Ok(true)
}

/// [`check_args`] for a tool's `main`: returns when the run may go on,
/// exits 0 after printing the usage, or 2 naming a bad argument.
pub fn args_or_exit(usage: &str, flags: &[&str]) {
    match check_args(usage, flags, &[]) {
        Ok(true) => {}
        Ok(false) => std::process::exit(0),
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
}
