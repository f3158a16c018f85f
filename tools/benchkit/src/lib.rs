//! What docket's benchmark tools share.

use std::collections::BTreeMap;
use std::time::Instant;

use docket_log::Sequencer;
use docket_model::SignedEvent;

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
