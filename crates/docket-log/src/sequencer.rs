//! The sequencer: a two-stage pipeline that takes concurrent appends and
//! batches them (group commit). The verifier stage batch-verifies signatures
//! on all cores (a persistent pool, `pool.rs`); the writer stage runs the log's stateful checks, writes,
//! calls `fdatasync` once per batch (once per write, for a batch larger than
//! one write), and only then answers every append in it. The stages overlap: one batch is verified while the previous syncs.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use docket_model::{verify_all, SignedEvent, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::log::{Log, LogError, Receipt, Refusal};
use crate::pool::VerifyPool;
use crate::storage::Storage;
use crate::{frame, segment};

/// Named limits of the sequencer.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most events in one batch. A batch is written under one `fdatasync`
    /// unless its frames pass one write (`segment::WRITE_BYTES_MAX`, 4 MiB)
    /// or the end of a segment: `Log::append_batch` then syncs each write in
    /// turn (1,024 events of the largest size take about 64 MiB, 17 writes).
    pub batch_events_max: usize,
    /// Most appends waiting for the writer; further appends wait for room.
    pub queue_depth_max: usize,
    /// How long the writer waits for more events after the first of a batch.
    /// 0 takes whatever is queued: appends that arrive during a sync form the next batch.
    pub group_commit_wait_us: u64,
    /// Threads of the persistent pool that verifies a batch's signatures
    /// (default: cores; started once, with the sequencer).
    pub verify_threads: usize,
    /// The longest time between a write and the checkpoint that covers it
    /// (for whoever signs checkpoints: `ledger::CheckpointWorker`).
    pub checkpoint_interval_ms: u64,
    /// After a write failure, the first wait before the writer reopens and
    /// recovers the log; it doubles on each failed recovery, up to
    /// `recovery_backoff_ms_max`.
    pub recovery_backoff_ms: u64,
    pub recovery_backoff_ms_max: u64,
}

/// `Limits::batch_events_max` by default.
const BATCH_EVENTS_MAX_DEFAULT: usize = 1024;
/// `Limits::queue_depth_max` by default.
const QUEUE_DEPTH_MAX_DEFAULT: usize = 8192;

// The queue holds at least one full batch, so the verifier can gather the
// next batch while the writer syncs the one before.
const _: () = assert!(BATCH_EVENTS_MAX_DEFAULT <= QUEUE_DEPTH_MAX_DEFAULT);
// What the note on `batch_events_max` says: a batch of the largest events
// does not fit one write, so it is synced as several.
const _: () = assert!(BATCH_EVENTS_MAX_DEFAULT * frame::FRAME_BYTES_MAX > segment::WRITE_BYTES_MAX);

impl Default for Limits {
    fn default() -> Self {
        Self {
            batch_events_max: BATCH_EVENTS_MAX_DEFAULT,
            queue_depth_max: QUEUE_DEPTH_MAX_DEFAULT,
            group_commit_wait_us: 0,
            // A persistent pool as wide as the machine: both cores verify
            // while the writer waits for its sync (BENCH.md, log-bench).
            verify_threads: std::thread::available_parallelism().map_or(1, usize::from),
            checkpoint_interval_ms: 1000,
            recovery_backoff_ms: 100,
            recovery_backoff_ms_max: 5_000,
        }
    }
}

/// Why an append failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error("log failure: {0}")]
    Log(Arc<LogError>),
    #[error("the log refuses writes until it has recovered from a write failure: {0}")]
    Unavailable(String),
    #[error("the sequencer has stopped")]
    Stopped,
}

struct Request {
    event: SignedEvent,
    /// The seq and system time a replicated record must have.
    pinned: Option<(u64, Timestamp)>,
    reply: oneshot::Sender<Result<Receipt, AppendError>>,
}

/// A handle for appending; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sequencer {
    requests: mpsc::Sender<Request>,
    health: Arc<Mutex<WriterHealth>>,
}

/// The writer's state, for health checks and metrics.
#[derive(Debug, Clone, Default)]
pub struct WriterHealth {
    /// Why appends are refused now (a write failure not yet recovered from).
    pub refusing: Option<String>,
    /// Write failures since start.
    pub failures: u64,
    /// Successful recoveries since start.
    pub recoveries: u64,
    /// Records cut by those recoveries (written, never acknowledged).
    pub records_cut: u64,
}

/// Counters the writer keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub batches: u64,
    pub events: u64,
}

/// Called on the writer thread with the log after every durable batch (and
/// after a recovery, and once at the end). It must be cheap: it tells others
/// (e.g. `ledger::DurableNotifier`) how far the log is durable.
pub type DurableHook<S> = Box<dyn FnMut(&Log<S>) + Send>;

/// The answer to one append.
type Reply = oneshot::Sender<Result<Receipt, AppendError>>;

/// A verified batch on its way from the verifier stage to the writer.
type Verified = Vec<(SignedEvent, Option<(u64, Timestamp)>, Reply)>;

impl Sequencer {
    /// Starts the pipeline: a verifier thread that batch-verifies signatures
    /// on all cores, and a writer thread that checks, writes and syncs. While
    /// the writer waits for one batch's `fdatasync`, the verifier checks the
    /// next batch. The writer ends, returning the log, when every `Sequencer`
    /// handle is dropped.
    pub fn start<S: Storage>(log: Log<S>, limits: Limits) -> (Self, std::thread::JoinHandle<(Log<S>, Stats)>) {
        Self::start_with_hook(log, limits, None)
    }

    /// As [`Sequencer::start`], and the writer calls `hook` with the log
    /// after every durable batch.
    pub fn start_with_hook<S: Storage>(
        log: Log<S>,
        limits: Limits,
        hook: Option<DurableHook<S>>,
    ) -> (Self, std::thread::JoinHandle<(Log<S>, Stats)>) {
        let health = Arc::new(Mutex::new(WriterHealth::default()));
        let writer_health = health.clone();
        let (requests, receiver) = mpsc::channel(limits.queue_depth_max.max(1));
        // Two batches in flight between the stages: one being written, one waiting.
        let (verified_sender, verified) = std::sync::mpsc::sync_channel::<Verified>(2);
        let verifier_limits = limits.clone();
        std::thread::Builder::new()
            .name("docket-verifier".into())
            .spawn(move || verify_stage(receiver, verified_sender, verifier_limits))
            .unwrap_or_else(|error| panic!("cannot start the verifier thread: {error}"));
        let writer = std::thread::Builder::new()
            .name("docket-writer".into())
            .spawn(move || write_stage(log, verified, limits, hook, writer_health))
            .unwrap_or_else(|error| panic!("cannot start the writer thread: {error}"));
        (Self { requests, health }, writer)
    }

    /// The writer's health: whether it refuses appends, and why.
    pub fn health(&self) -> WriterHealth {
        self.health.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Appends one signed event; returns when it is durable (or refused).
    pub async fn append(&self, event: SignedEvent) -> Result<Receipt, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request { event, pinned: None, reply }).await.map_err(|_| AppendError::Stopped)?;
        answer.await.map_err(|_| AppendError::Stopped)?
    }

    /// Queues one event and returns at once with the receipt's future: events
    /// submitted one after another from one task are sequenced in that order
    /// and can share a group commit (how a batch of appends is pipelined).
    pub async fn submit(
        &self,
        event: SignedEvent,
    ) -> Result<impl std::future::Future<Output = Result<Receipt, AppendError>>, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request { event, pinned: None, reply }).await.map_err(|_| AppendError::Stopped)?;
        Ok(async move { answer.await.map_err(|_| AppendError::Stopped)? })
    }

    /// Queues a record a replica took from its primary, to be written at
    /// `seq` and `system_time` (`Log::append_replicated`); returns the
    /// receipt's future. A replica's log takes only these: an ordinary
    /// append in the same batch is refused.
    pub async fn replicate(
        &self,
        event: SignedEvent,
        seq: u64,
        system_time: Timestamp,
    ) -> Result<impl std::future::Future<Output = Result<Receipt, AppendError>>, AppendError> {
        let (reply, answer) = oneshot::channel();
        let request = Request { event, pinned: Some((seq, system_time)), reply };
        self.requests.send(request).await.map_err(|_| AppendError::Stopped)?;
        Ok(async move { answer.await.map_err(|_| AppendError::Stopped)? })
    }

    /// Appends from synchronous code (not from inside an async runtime).
    pub fn append_blocking(&self, event: SignedEvent) -> Result<Receipt, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.requests.blocking_send(Request { event, pinned: None, reply }).map_err(|_| AppendError::Stopped)?;
        answer.blocking_recv().map_err(|_| AppendError::Stopped)?
    }
}

/// Takes what is queued (up to `batch_events_max`), verifies the signatures,
/// answers the refused ones, and passes the rest to the writer.
fn verify_stage(mut receiver: mpsc::Receiver<Request>, writer: std::sync::mpsc::SyncSender<Verified>, limits: Limits) {
    let pool = VerifyPool::start(limits.verify_threads);
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + Duration::from_micros(limits.group_commit_wait_us);
        while batch.len() < limits.batch_events_max {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) if Instant::now() < deadline => std::thread::yield_now(),
                Err(_) => break,
            }
        }
        let (events, rest): (Vec<SignedEvent>, Vec<_>) =
            batch.into_iter().map(|r| (r.event, (r.pinned, r.reply))).unzip();
        let (events, verdicts) = pool.verify(events);
        let mut good = Vec::with_capacity(events.len());
        for ((event, (pinned, reply)), verdict) in events.into_iter().zip(rest).zip(verdicts) {
            match verdict {
                Ok(()) => good.push((event, pinned, reply)),
                Err(error) => {
                    let _ = reply.send(Err(AppendError::Refused(Refusal::Event(error.into()))));
                }
            }
        }
        if !good.is_empty() && writer.send(good).is_err() {
            return;
        }
    }
}

/// Merges whatever verified batches are waiting (up to `batch_events_max`),
/// appends them with one sync, and answers every append. After a write
/// failure it answers appends at once with `Unavailable` and reopens the log
/// (with backoff) until recovery succeeds.
fn write_stage<S: Storage>(
    mut log: Log<S>,
    verified: std::sync::mpsc::Receiver<Verified>,
    limits: Limits,
    mut hook: Option<DurableHook<S>>,
    health: Arc<Mutex<WriterHealth>>,
) -> (Log<S>, Stats) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut stats = Stats::default();
    let mut recovery = Backoff::new(&limits);
    loop {
        if log.is_poisoned() && recovery.due() {
            recover(&mut log, &mut recovery, &health, &mut hook);
        }
        let wait = if log.is_poisoned() { recovery.remaining() } else { Duration::from_secs(1) };
        let mut batch = match verified.recv_timeout(wait.max(Duration::from_millis(1))) {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        while batch.len() < limits.batch_events_max {
            match verified.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let replicated = batch.iter().any(|(_, pinned, _)| pinned.is_some());
        let mut records = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (event, pinned, reply) in batch {
            match (replicated, pinned) {
                (true, None) => {
                    let refusal = Refusal::Replica("an ordinary append among replicated records".into());
                    let _ = reply.send(Err(AppendError::Refused(refusal)));
                }
                _ => {
                    records.push((event, pinned));
                    replies.push(reply);
                }
            }
        }
        if let Some(reason) = log.poisoned() {
            for reply in replies {
                let _ = reply.send(Err(AppendError::Unavailable(reason.to_owned())));
            }
            continue;
        }
        stats.batches += 1;
        stats.events += records.len() as u64;
        let appended = if replicated {
            let pinned = records.into_iter().filter_map(|(e, p)| p.map(|(seq, time)| (e, seq, time))).collect();
            log.append_replicated(pinned)
        } else {
            log.append_batch(records.into_iter().map(|(event, _)| event).collect(), Timestamp::now())
        };
        match appended {
            Ok(results) => {
                if let Some(hook) = &mut hook {
                    hook(&log);
                }
                let mut replies = replies.into_iter();
                for (result, reply) in results.into_iter().zip(replies.by_ref()) {
                    let _ = reply.send(result.map_err(AppendError::Refused));
                }
                // Records after a refused replicated one were not written.
                for reply in replies {
                    let refusal = Refusal::Replica("not written: a record before it in the batch was refused".into());
                    let _ = reply.send(Err(AppendError::Refused(refusal)));
                }
            }
            Err(error) => {
                let mut health = lock_health(&health);
                health.failures += 1;
                health.refusing = Some(error.to_string());
                drop(health);
                recovery.start();
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Log(error.clone())));
                }
            }
        }
    }
    if let Some(hook) = &mut hook {
        hook(&log);
    }
    // A clean stop leaves the index covering the whole log: the next open
    // replays nothing. A failure only costs that open its replay.
    if !log.is_poisoned() {
        let _ = log.flush_index();
    }
    (log, stats)
}

fn lock_health(health: &Mutex<WriterHealth>) -> std::sync::MutexGuard<'_, WriterHealth> {
    health.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One attempt to reopen a poisoned log; on failure the next waits longer.
fn recover<S: Storage>(
    log: &mut Log<S>,
    backoff: &mut Backoff,
    health: &Mutex<WriterHealth>,
    hook: &mut Option<DurableHook<S>>,
) {
    match log.recover() {
        Ok(recovery) => {
            let mut health = lock_health(health);
            health.refusing = None;
            health.recoveries += 1;
            health.records_cut += recovery.cut.as_ref().map_or(0, |cut| cut.records());
            drop(health);
            if let Some(hook) = hook {
                hook(log);
            }
        }
        Err(error) => {
            lock_health(health).refusing = Some(format!("recovery failed, retrying: {error}"));
            backoff.failed();
        }
    }
}

/// When the writer next tries to recover, doubling the wait after each failure.
struct Backoff {
    first: Duration,
    max: Duration,
    wait: Duration,
    at: Instant,
}

impl Backoff {
    fn new(limits: &Limits) -> Self {
        let first = Duration::from_millis(limits.recovery_backoff_ms.max(1));
        Self {
            first,
            max: Duration::from_millis(limits.recovery_backoff_ms_max).max(first),
            wait: first,
            at: Instant::now(),
        }
    }
    fn start(&mut self) {
        self.wait = self.first;
        self.at = Instant::now() + self.wait;
    }
    fn failed(&mut self) {
        self.wait = (self.wait * 2).min(self.max);
        self.at = Instant::now() + self.wait;
    }
    fn due(&self) -> bool {
        Instant::now() >= self.at
    }
    fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// Batch-verifies signatures, split across `threads` threads.
pub fn verify_parallel(events: &[SignedEvent], threads: usize) -> Vec<Result<(), docket_model::SignatureError>> {
    let chunk = events.len().div_ceil(threads.max(1)).max(1);
    if events.len() <= chunk {
        return verify_all(events);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = events.chunks(chunk).map(|part| scope.spawn(move || verify_all(part))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| unreachable!("verification does not panic")))
            .collect()
    })
}
