//! The sequencer: a two-stage pipeline that takes concurrent appends and
//! batches them (group commit). The verifier stage batch-verifies signatures
//! on all cores; the writer stage runs the log's stateful checks, writes,
//! calls `fdatasync` once per batch, and only then answers every append in
//! it. The stages overlap: one batch is verified while the previous syncs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_model::{verify_all, SignedEvent, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::log::{Log, LogError, Receipt, Refusal};
use crate::storage::Storage;

/// Named limits of the sequencer.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most events written under one `fdatasync`.
    pub batch_events_max: usize,
    /// Most appends waiting for the writer; further appends wait for room.
    pub queue_depth_max: usize,
    /// How long the writer waits for more events after the first of a batch.
    /// 0 takes whatever is queued: appends that arrive during a sync form the next batch.
    pub group_commit_wait_us: u64,
    /// Threads that verify a batch's signatures (default: cores - 1, at least 1).
    pub verify_threads: usize,
    /// With a checkpoint hook: the longest time between a write and the
    /// checkpoint that covers it.
    pub checkpoint_interval_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            batch_events_max: 1024,
            queue_depth_max: 8192,
            group_commit_wait_us: 0,
            // The writer and the async runtime need a core of their own: on 2
            // cores, one verification thread gave 0.56 of the ingest limit
            // against 0.51 for two (log-bench, five runs each; BENCH.md).
            verify_threads: std::thread::available_parallelism().map_or(1, |n| usize::from(n).saturating_sub(1).max(1)),
            checkpoint_interval_ms: 1000,
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
    #[error("the sequencer has stopped")]
    Stopped,
}

struct Request {
    event: SignedEvent,
    reply: oneshot::Sender<Result<Receipt, AppendError>>,
}

/// A handle for appending; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sequencer {
    requests: mpsc::Sender<Request>,
}

/// Counters the writer keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub batches: u64,
    pub events: u64,
}

/// Called by the writer with the log to sign and store a checkpoint.
pub type CheckpointHook<S> = Box<dyn FnMut(&Log<S>) + Send>;

/// A verified batch on its way from the verifier stage to the writer.
type Verified = Vec<(SignedEvent, oneshot::Sender<Result<Receipt, AppendError>>)>;

impl Sequencer {
    /// Starts the pipeline: a verifier thread that batch-verifies signatures
    /// on all cores, and a writer thread that checks, writes and syncs. While
    /// the writer waits for one batch's `fdatasync`, the verifier checks the
    /// next batch. The writer ends, returning the log, when every `Sequencer`
    /// handle is dropped.
    pub fn start<S: Storage>(log: Log<S>, limits: Limits) -> (Self, std::thread::JoinHandle<(Log<S>, Stats)>) {
        Self::start_with_checkpoints(log, limits, None)
    }

    /// As [`Sequencer::start`], and the writer calls `checkpoint` with the log
    /// at most `checkpoint_interval_ms` after any write (and once at the end).
    pub fn start_with_checkpoints<S: Storage>(
        log: Log<S>,
        limits: Limits,
        checkpoint: Option<CheckpointHook<S>>,
    ) -> (Self, std::thread::JoinHandle<(Log<S>, Stats)>) {
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
            .spawn(move || write_stage(log, verified, limits, checkpoint))
            .unwrap_or_else(|error| panic!("cannot start the writer thread: {error}"));
        (Self { requests }, writer)
    }

    /// Appends one signed event; returns when it is durable (or refused).
    pub async fn append(&self, event: SignedEvent) -> Result<Receipt, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request { event, reply }).await.map_err(|_| AppendError::Stopped)?;
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
        self.requests.send(Request { event, reply }).await.map_err(|_| AppendError::Stopped)?;
        Ok(async move { answer.await.map_err(|_| AppendError::Stopped)? })
    }

    /// Appends from synchronous code (not from inside an async runtime).
    pub fn append_blocking(&self, event: SignedEvent) -> Result<Receipt, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.requests.blocking_send(Request { event, reply }).map_err(|_| AppendError::Stopped)?;
        answer.blocking_recv().map_err(|_| AppendError::Stopped)?
    }
}

/// Takes what is queued (up to `batch_events_max`), verifies the signatures,
/// answers the refused ones, and passes the rest to the writer.
fn verify_stage(mut receiver: mpsc::Receiver<Request>, writer: std::sync::mpsc::SyncSender<Verified>, limits: Limits) {
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
        let (events, replies): (Vec<SignedEvent>, Vec<_>) = batch.into_iter().map(|r| (r.event, r.reply)).unzip();
        let verdicts = verify_parallel(&events, limits.verify_threads);
        let mut good = Vec::with_capacity(events.len());
        for ((event, reply), verdict) in events.into_iter().zip(replies).zip(verdicts) {
            match verdict {
                Ok(()) => good.push((event, reply)),
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
/// appends them with one sync, and answers every append.
fn write_stage<S: Storage>(
    mut log: Log<S>,
    verified: std::sync::mpsc::Receiver<Verified>,
    limits: Limits,
    mut checkpoint: Option<CheckpointHook<S>>,
) -> (Log<S>, Stats) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut stats = Stats::default();
    let interval = Duration::from_millis(limits.checkpoint_interval_ms);
    let mut checkpointed = (log.size(), Instant::now());
    loop {
        let mut batch = match verified.recv_timeout(interval.max(Duration::from_millis(1))) {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) => {
                maybe_checkpoint(&log, &mut checkpoint, &mut checkpointed, interval);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        while batch.len() < limits.batch_events_max {
            match verified.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        stats.batches += 1;
        stats.events += batch.len() as u64;
        let (events, replies): (Vec<SignedEvent>, Vec<_>) = batch.into_iter().unzip();
        match log.append_batch(events, Timestamp::now()) {
            Ok(results) => {
                for (result, reply) in results.into_iter().zip(replies) {
                    let _ = reply.send(result.map_err(AppendError::Refused));
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Log(error.clone())));
                }
            }
        }
        maybe_checkpoint(&log, &mut checkpoint, &mut checkpointed, interval);
    }
    maybe_checkpoint(&log, &mut checkpoint, &mut checkpointed, Duration::ZERO);
    (log, stats)
}

fn maybe_checkpoint<S: Storage>(
    log: &Log<S>,
    hook: &mut Option<CheckpointHook<S>>,
    last: &mut (u64, Instant),
    interval: Duration,
) {
    if let Some(hook) = hook {
        if log.size() != last.0 && last.1.elapsed() >= interval && !log.is_poisoned() {
            hook(log);
            *last = (log.size(), Instant::now());
        }
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
