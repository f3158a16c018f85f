//! docket's HTTP API (axum on tokio): agencies append signed events,
//! integrators read the projections and follow the change feed, anyone
//! fetches checkpoints and tiles.
//!
//! * appends go through the log's sequencer (group commit), so an HTTP
//!   append is acknowledged only once it is durable;
//! * the projection store catches up in the background after every append;
//!   a read may name the seq it must include (`min_seq`) and waits for it;
//! * the feed reads the log itself, from a cursor (the next seq), so it is
//!   resumable across restarts and never ahead of what is durable.
//!
//! Endpoints and codes are listed in `API.md` beside this crate.

mod auth;
pub mod error;
mod feed;
pub mod openapi;
mod rate;
mod routes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use docket_fold::{Store, StoreLimits};
use docket_log::ledger::{CheckpointStatus, CheckpointWorker, DirLock, Ledger};
use docket_log::read::Reader;
use docket_log::{Config, Limits, Sequencer, SharedTree};

pub use error::ApiError;

/// Named limits of the API.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Largest request body (one event in JSON, or a batch).
    pub body_bytes_max: usize,
    /// Most events in one batch append.
    pub batch_events_max: usize,
    /// Most events in one feed page.
    pub feed_page_max: usize,
    /// Longest a long-poll feed request waits for new events.
    pub long_poll_ms_max: u64,
    /// Longest a read waits for the projections to reach its `min_seq`.
    pub projection_wait_ms_max: u64,
    /// Largest difference between a signed request's date and the server's clock.
    pub request_skew_s: u64,
    /// Lifetime of a session token from `POST /v1/session`, in seconds.
    pub session_s: u64,
    /// Accepted appends per second per signing agency (sustained).
    pub appends_per_agency_per_s: u32,
    /// Accepted appends an agency may make at once above the sustained rate.
    pub append_burst: u32,
    /// A log segment is closed once it would grow past this many bytes.
    pub segment_bytes_max: u64,
    /// The longest time between a durable write and the checkpoint that covers it.
    pub checkpoint_interval_ms: u64,
    /// The projection store's page cache (redb), in bytes. Point checks stay
    /// flat as history grows while the store's hot pages fit (`BENCH.md`).
    pub store_cache_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            body_bytes_max: 1 << 20,
            batch_events_max: 256,
            feed_page_max: 1000,
            long_poll_ms_max: 30_000,
            projection_wait_ms_max: 5_000,
            request_skew_s: 300,
            session_s: 300,
            appends_per_agency_per_s: 20_000,
            append_burst: 40_000,
            store_cache_bytes: StoreLimits::default().cache_bytes,
            segment_bytes_max: Config::default().segment_bytes_max,
            checkpoint_interval_ms: Limits::default().checkpoint_interval_ms,
        }
    }
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("ledger: {0}")]
    Ledger(#[from] docket_log::ledger::LedgerError),
    #[error("projections: {0}")]
    Fold(#[from] docket_fold::FoldError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) requests: AtomicU64,
    pub(crate) appended: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) feed_events: AtomicU64,
}

/// The log's side of health and metrics.
#[derive(Debug, Clone)]
pub(crate) struct LogHealth {
    pub(crate) writer: docket_log::sequencer::WriterHealth,
    pub(crate) checkpoint: CheckpointStatus,
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) dir: PathBuf,
    pub(crate) sequencer: Sequencer,
    /// The projections: reads never wait for the background catch-up.
    pub(crate) store: Store,
    /// The log's size (next seq) as far as this server has acknowledged.
    pub(crate) head: watch::Sender<u64>,
    /// The projections' watermark (next seq folded).
    pub(crate) projected: watch::Sender<u64>,
    pub(crate) reader: Reader,
    /// The log's Merkle tree, shared with the writer, which adds each
    /// record's leaf once it is durable: proofs are served from it.
    pub(crate) tree: SharedTree,
    /// Records recovery cut when the ledger was opened (never acknowledged).
    pub(crate) cut_on_open: u64,
    /// Signs checkpoints off the writer thread; its status feeds health and metrics.
    pub(crate) checkpoints: Mutex<Option<CheckpointWorker>>,
    /// Set when the server is stopping: open feeds end so that it can.
    pub(crate) stopping: watch::Sender<bool>,
    pub(crate) metrics: Metrics,
    pub(crate) rate: rate::RateLimiter,
    /// The audit's rule sets and calendar, parsed once.
    pub(crate) rule_sets: Vec<docket_audit::RuleSet>,
    pub(crate) calendar: docket_audit::Calendar,
    /// Witnesses whose cosignatures the server accepts (`DIR/witnesses`).
    pub(crate) witnesses: Vec<docket_log::note::WitnessKey>,
    /// Issues and checks session tokens (`POST /v1/session`).
    pub(crate) sessions: auth::Sessions,
    pub(crate) limits: ServerLimits,
}

/// A server over one ledger directory, which it owns (its lock) until it stops.
#[derive(Debug)]
pub struct Server {
    app: Arc<App>,
    writer: std::thread::JoinHandle<(docket_log::Log<docket_log::FsStorage>, docket_log::sequencer::Stats)>,
    lock: DirLock,
    /// What recovery found when the ledger was opened.
    recovery: docket_log::Recovery,
}

impl Server {
    /// Opens the ledger (recovering its log), starts the sequencer with a
    /// checkpoint every `checkpoint_interval_ms`, and opens (catching up or
    /// rebuilding) the projections.
    pub fn open(dir: &Path, limits: ServerLimits) -> Result<Self, ServerError> {
        let mut ledger = Ledger::open(dir, Config { segment_bytes_max: limits.segment_bytes_max })?;
        let log_key = ledger.read_log_key()?;
        // A tail that no checkpoint covers yet (the last run was killed before
        // signing) is checkpointed before any traffic; if that fails, the
        // worker keeps retrying and health reports it.
        if let Err(error) = ledger.checkpoint(&log_key) {
            eprintln!("docket-server: checkpoint of the log as opened ({} records): {error}", ledger.log.size());
        }
        let recovery = ledger.recovery.clone();
        if let Some(cut) = &recovery.cut {
            eprintln!("docket-server: recovery {cut}");
        }
        let (log, checkpointer, lock) = ledger.into_parts();
        let size = log.size();
        let tree = log.shared_tree();
        let sequencer_limits = Limits { checkpoint_interval_ms: limits.checkpoint_interval_ms, ..Limits::default() };
        let interval = Duration::from_millis(sequencer_limits.checkpoint_interval_ms);
        let worker = CheckpointWorker::start(checkpointer, tree.clone(), log_key, size, interval);
        let durable = worker.notifier();
        let hook: docket_log::sequencer::DurableHook<docket_log::FsStorage> =
            Box::new(move |log| durable.durable(log.size()));
        let (sequencer, writer) = Sequencer::start_with_hook(log, sequencer_limits, Some(hook));
        let store_limits =
            StoreLimits { durable_catch_up: false, cache_bytes: limits.store_cache_bytes, ..StoreLimits::default() };
        let (store, opened) = Store::open(dir, store_limits)?;
        if let Some(reason) = &opened.rebuilt {
            eprintln!("docket-server: projections rebuilt from the log ({reason})");
        }
        let projected = store.records();
        let app = App {
            dir: dir.to_owned(),
            sequencer,
            store,
            head: watch::Sender::new(size),
            projected: watch::Sender::new(projected),
            reader: Reader::new(dir.join("segments")),
            tree,
            cut_on_open: recovery.cut.as_ref().map_or(0, docket_log::Cut::records),
            checkpoints: Mutex::new(Some(worker)),
            stopping: watch::Sender::new(false),
            metrics: Metrics::default(),
            rate: rate::RateLimiter::new(limits.appends_per_agency_per_s, limits.append_burst),
            rule_sets: docket_audit::RuleSet::bundled(),
            calendar: docket_audit::Calendar::bundled(),
            witnesses: read_witnesses(dir)?,
            sessions: auth::Sessions::new(),
            limits,
        };
        Ok(Self { app: Arc::new(app), writer, lock, recovery })
    }

    /// What recovery found when the ledger was opened (a cut tail, if any).
    pub fn recovery(&self) -> &docket_log::Recovery {
        &self.recovery
    }

    /// Serves on `listener` until `shutdown` resolves; then stops accepting,
    /// lets requests in flight finish, drains the sequencer's queue, signs
    /// the final checkpoint and releases the directory's lock.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let projector = tokio::spawn(project(self.app.clone()));
        let router = routes::router(self.app.clone());
        let app = self.app.clone();
        let shutdown = async move {
            shutdown.await;
            app.stopping.send_replace(true);
        };
        // Responses go out as soon as they are written: without TCP_NODELAY a
        // response written in two parts waits for the client's ACK of the first.
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
            let _ = stream.set_nodelay(true);
        });
        axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
        // The projector syncs the store once it sees the server stopping.
        let _ = tokio::time::timeout(Duration::from_secs(30), projector).await;
        let Self { app, writer, lock, recovery: _ } = self;
        let worker = app.checkpoints.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(app);
        // The writer ends when the last sequencer handle is gone; handlers
        // still finishing may hold one for a moment. Then the final checkpoint
        // covers every acknowledged record, and only then is the lock released.
        let _ = tokio::task::spawn_blocking(move || {
            let _ = writer.join();
            if let Some(worker) = worker {
                let status = worker.stop();
                if let Some(error) = &status.last_error {
                    eprintln!("docket-server: final {error}");
                }
            }
            drop(lock);
        })
        .await;
        Ok(())
    }

    /// The address a listener bound to `addr` would serve on (for printing).
    pub fn url(addr: SocketAddr) -> String {
        format!("http://{addr}")
    }
}

/// The witnesses configured in `DIR/witnesses`: one `NAME HEX_PUBLIC_KEY`
/// per line, `#` comments. No file: no witnesses.
fn read_witnesses(dir: &Path) -> Result<Vec<docket_log::note::WitnessKey>, ServerError> {
    let path = dir.join("witnesses");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(vec![]) };
    let mut witnesses = vec![];
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| ServerError::Config(format!("{} line {}: {reason}", path.display(), index + 1));
        let (name, key) = line.split_once(' ').ok_or_else(|| bad("expected NAME HEX_PUBLIC_KEY".into()))?;
        let key = docket_model::PublicKey::from_hex(key.trim()).map_err(bad)?;
        witnesses.push(docket_log::note::WitnessKey::new(name, key).map_err(|e| bad(e.to_string()))?);
    }
    Ok(witnesses)
}

/// Least time between two catch-ups: appends arriving meanwhile are folded
/// together, in one transaction.
const PROJECTION_INTERVAL: Duration = Duration::from_millis(5);

/// Longest time the projections' commits stay without fsync.
const PROJECTION_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps the projections caught up with the log: after every change of the
/// head (at most every `PROJECTION_INTERVAL`), folds what is new; makes the
/// store durable every `PROJECTION_SYNC_INTERVAL` and when the server stops.
async fn project(app: Arc<App>) {
    let mut head = app.head.subscribe();
    let mut stopping = app.stopping.subscribe();
    let mut synced = tokio::time::Instant::now();
    let mut dirty = false;
    loop {
        let target = *head.borrow_and_update();
        if *app.projected.borrow() < target {
            let worker = app.clone();
            let folded =
                tokio::task::spawn_blocking(move || worker.store.catch_up().map(|_| worker.store.records())).await;
            match folded {
                Ok(Ok(records)) => {
                    app.projected.send_replace(records);
                    dirty = true;
                }
                Ok(Err(error)) => eprintln!("docket-server: projections: {error}"),
                Err(error) => eprintln!("docket-server: projections: {error}"),
            }
            tokio::time::sleep(PROJECTION_INTERVAL).await;
            continue;
        }
        let stop = *stopping.borrow();
        if dirty && (stop || synced.elapsed() >= PROJECTION_SYNC_INTERVAL) {
            let worker = app.clone();
            let result = tokio::task::spawn_blocking(move || worker.store.sync()).await;
            if let Ok(Err(error)) = result {
                eprintln!("docket-server: projections: {error}");
            }
            synced = tokio::time::Instant::now();
            dirty = false;
        }
        if stop {
            return;
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return },
            _ = stopping.changed() => {}
            _ = tokio::time::sleep(PROJECTION_SYNC_INTERVAL), if dirty => {}
        }
    }
}

impl App {
    /// Records that the log holds at least `size` records.
    pub(crate) fn advance_head(&self, size: u64) {
        self.head.send_if_modified(|head| {
            let grew = size > *head;
            *head = (*head).max(size);
            grew
        });
    }

    /// The log's health: why appends are refused, if they are, and how far
    /// checkpoints are behind.
    pub(crate) fn log_health(&self) -> LogHealth {
        let checkpoint = self
            .checkpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(CheckpointWorker::status)
            .unwrap_or_default();
        LogHealth { writer: self.sequencer.health(), checkpoint }
    }

    pub(crate) fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
