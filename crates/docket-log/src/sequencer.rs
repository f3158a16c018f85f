//! The sequencer: one writer thread that takes concurrent appends, batches
//! them (group commit), verifies the batch's signatures on all cores, runs
//! the log's stateful checks, writes, calls `fdatasync` once, and only then
//! answers every append in the batch.

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
    /// Threads that verify a batch's signatures.
    pub verify_threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            batch_events_max: 1024,
            queue_depth_max: 8192,
            group_commit_wait_us: 0,
            verify_threads: std::thread::available_parallelism().map_or(1, usize::from),
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

impl Sequencer {
    /// Starts the writer thread. It ends, returning the log, when every
    /// `Sequencer` handle is dropped.
    pub fn start<S: Storage>(log: Log<S>, limits: Limits) -> (Self, std::thread::JoinHandle<(Log<S>, Stats)>) {
        let (requests, receiver) = mpsc::channel(limits.queue_depth_max.max(1));
        let writer = std::thread::Builder::new()
            .name("docket-sequencer".into())
            .spawn(move || run(log, receiver, limits))
            .unwrap_or_else(|error| panic!("cannot start the sequencer thread: {error}"));
        (Self { requests }, writer)
    }

    /// Appends one signed event; returns when it is durable (or refused).
    pub async fn append(&self, event: SignedEvent) -> Result<Receipt, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request { event, reply }).await.map_err(|_| AppendError::Stopped)?;
        answer.await.map_err(|_| AppendError::Stopped)?
    }

    /// Appends from synchronous code (not from inside an async runtime).
    pub fn append_blocking(&self, event: SignedEvent) -> Result<Receipt, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.requests.blocking_send(Request { event, reply }).map_err(|_| AppendError::Stopped)?;
        answer.blocking_recv().map_err(|_| AppendError::Stopped)?
    }
}

fn run<S: Storage>(mut log: Log<S>, mut receiver: mpsc::Receiver<Request>, limits: Limits) -> (Log<S>, Stats) {
    let mut stats = Stats::default();
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
        stats.batches += 1;
        stats.events += batch.len() as u64;
        write_batch(&mut log, batch, limits.verify_threads);
    }
    (log, stats)
}

fn write_batch<S: Storage>(log: &mut Log<S>, batch: Vec<Request>, threads: usize) {
    let (events, replies): (Vec<SignedEvent>, Vec<_>) = batch.into_iter().map(|r| (r.event, r.reply)).unzip();
    let verified = verify_parallel(&events, threads);
    let mut to_write = Vec::with_capacity(events.len());
    let mut slots = Vec::with_capacity(events.len());
    for (event, verdict) in events.into_iter().zip(verified) {
        match verdict {
            Ok(()) => {
                slots.push(None);
                to_write.push(event);
            }
            Err(error) => slots.push(Some(Err(AppendError::Refused(Refusal::Event(error.into()))))),
        }
    }
    let written = log.append_batch(to_write, Timestamp::now());
    let mut written = match written {
        Ok(results) => results.into_iter().map(|r| r.map_err(AppendError::Refused)).collect::<Vec<_>>().into_iter(),
        Err(error) => {
            let error = Arc::new(error);
            for reply in replies {
                let _ = reply.send(Err(AppendError::Log(error.clone())));
            }
            return;
        }
    };
    for (slot, reply) in slots.into_iter().zip(replies) {
        let answer = slot.unwrap_or_else(|| written.next().unwrap_or(Err(AppendError::Stopped)));
        let _ = reply.send(answer);
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
