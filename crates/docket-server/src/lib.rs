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

mod answers;
mod auth;
pub mod error;
mod feed;
pub mod health;
mod inquiries;
mod limits;
mod metrics;
mod net;
pub mod openapi;
mod pages;
mod policy;
mod rate;
mod replay;
mod routes;
mod strict;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use docket_fold::{Store, StoreLimits};
use docket_log::ledger::{CheckpointStatus, CheckpointWorker, DirLock, Ledger};
use docket_log::Reader;
use docket_log::{Config, Limits, Sequencer, SharedTree};

pub use error::ApiError;

/// Named limits of the API.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Largest request body (one event in JSON, or a batch). It must hold
    /// `batch_events_max` events of the largest size in the wire form, and
    /// fit `body_bytes_in_flight_max` (checked when the server opens).
    pub body_bytes_max: usize,
    /// Most events in one batch append.
    pub batch_events_max: usize,
    /// Most events in one feed page (1 to `feed::FEED_SCAN_FRAMES_MAX`).
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
    /// Open connections served in full. A connection beyond it is served
    /// from the reserve, or closed at once when the reserve is full too.
    pub connections_max: usize,
    /// Connections past `connections_max` that are still answered, one
    /// request each, on `/healthz`, `/readyz` and `/metrics` only (others
    /// get 503 `overloaded`), so operators can see a server under a flood.
    pub connections_reserve: usize,
    /// Longest wait for a request's headers, from the moment a connection is
    /// ready for its next request: it also closes idle kept-alive
    /// connections (hyper's `header_read_timeout`).
    pub header_read_timeout_ms: u64,
    /// Longest time to receive a whole request body once its headers are in.
    pub body_read_timeout_ms: u64,
    /// Request-body bytes held in memory across all connections at once: a
    /// body reserves its declared length (or `body_bytes_max` when it
    /// declares none) before it is read; past the budget, 503 `overloaded`.
    pub body_bytes_in_flight_max: usize,
    /// Open feed reads (SSE streams and long polls) per agency.
    pub feed_streams_per_agency_max: usize,
    /// The newest records kept decoded and serialised for the feed, in
    /// bytes (their JSON and wire forms): followers of the head share one
    /// read of each new record instead of each reading it from the log.
    /// 0 turns the cache off (every page is read from the segments).
    pub feed_tail_bytes_max: usize,
    /// An SSE stream at the head reads new records at most once per this
    /// many milliseconds, so records committed within it go out in one
    /// write: many followers cost far fewer system calls, and delivery
    /// waits at most this long more. 0: every commit is sent at once.
    pub feed_sse_interval_ms: u64,
    /// Record every non-public read in the inquiry register before its
    /// answer leaves (seed 004 (13)). Off only to measure what it costs: a
    /// server without it cannot show who looked up whom.
    pub inquiry_register: bool,
    /// Appends without effect (duplicates and refusals) per second from one
    /// client address, sustained; past it and its burst, 429 `rate_limited`
    /// before the body is parsed. New events never spend it.
    pub replays_per_address_per_s: u32,
    /// Appends without effect one address may make at once above the sustained rate.
    pub replay_burst: u32,
    /// Receipts of recently acknowledged events kept by id, so a replay is
    /// answered before any signature check and spends no agency's budget.
    pub recent_receipts_max: usize,
    /// `/readyz` fails when the projections are more records than this behind the log.
    pub ready_projection_lag_records_max: u64,
    /// `/readyz` fails when durable records have waited longer than this for
    /// a checkpoint (a failing checkpoint worker, a full disk). More than
    /// `checkpoint_interval_ms`.
    pub ready_checkpoint_lag_ms_max: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            body_bytes_max: limits::BODY_BYTES_MAX,
            batch_events_max: limits::BATCH_EVENTS_MAX,
            feed_page_max: limits::FEED_PAGE_MAX,
            long_poll_ms_max: 30_000,
            projection_wait_ms_max: 5_000,
            request_skew_s: 300,
            session_s: 300,
            appends_per_agency_per_s: 20_000,
            append_burst: 40_000,
            store_cache_bytes: StoreLimits::default().cache_bytes,
            segment_bytes_max: Config::default().segment_bytes_max,
            checkpoint_interval_ms: Limits::default().checkpoint_interval_ms,
            connections_max: 1024,
            connections_reserve: 16,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 10_000,
            body_bytes_in_flight_max: limits::BODY_BYTES_IN_FLIGHT_MAX,
            feed_streams_per_agency_max: 128,
            feed_tail_bytes_max: 16 << 20,
            feed_sse_interval_ms: 50,
            inquiry_register: true,
            replays_per_address_per_s: 1_000,
            replay_burst: 2_000,
            recent_receipts_max: 65_536,
            ready_projection_lag_records_max: 100_000,
            ready_checkpoint_lag_ms_max: 10_000,
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

/// Whether a server writes its ledger or follows a primary's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// It appends, signs checkpoints and the inquiry register with the log's key.
    Primary,
    /// A read-only replica of the primary at this URL: appends are refused
    /// naming it; records arrive through [`Server::replica`], checkpoints
    /// are the primary's, and the inquiry register is signed with the
    /// replica's own key (`keys/replica.key`, made on first open).
    Replica { primary: String },
}

/// The log's side of health and metrics.
#[derive(Debug, Clone)]
pub(crate) struct LogHealth {
    pub(crate) writer: docket_log::WriterHealth,
    pub(crate) checkpoint: CheckpointStatus,
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) dir: PathBuf,
    pub(crate) role: Role,
    /// The ledger's checkpoint origin (`/healthz` warns when it says the keys are public).
    pub(crate) origin: String,
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
    /// When the server started (the checkpoint check's clock before its first signing).
    pub(crate) started: std::time::Instant,
    /// Records recovery cut when the ledger was opened (never acknowledged).
    pub(crate) cut_on_open: u64,
    /// Signs checkpoints off the writer thread; its status feeds health and metrics.
    pub(crate) checkpoints: Mutex<Option<CheckpointWorker>>,
    /// Set when the server is stopping: open feeds end so that it can.
    pub(crate) stopping: watch::Sender<bool>,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) rate: rate::RateLimiter,
    /// Appends without effect per client address.
    pub(crate) replays: rate::RateLimiter,
    /// Receipts of recent appends by event id, consulted before the sequencer.
    pub(crate) recent: replay::RecentReceipts,
    /// The registry as of the last acknowledged registry event: key and
    /// session checks read it, so a revocation holds from the next request
    /// (the projected registry can lag the log).
    pub(crate) registry: replay::AckedRegistry,
    /// Request-body bytes that may be held in memory at once.
    pub(crate) body_budget: Arc<tokio::sync::Semaphore>,
    /// Open feed reads per agency.
    pub(crate) streams: feed::Streams,
    /// The newest records, decoded once for every follower of the head.
    pub(crate) tail: feed::Tail,
    /// Where every non-public read is recorded (None when
    /// `inquiry_register` is off).
    pub(crate) inquiries: Option<Arc<docket_log::inquiry::Register>>,
    /// What `/readyz` reports beyond sizes: failures of the log and the projections.
    pub(crate) health: health::Health,
    /// The audit's rule sets and calendar, parsed once.
    pub(crate) rule_sets: Vec<docket_audit::RuleSet>,
    pub(crate) calendar: docket_audit::Calendar,
    /// Witnesses whose cosignatures the server accepts (`DIR/witnesses`).
    pub(crate) witnesses: Vec<docket_log::note::WitnessKey>,
    /// Issues and checks session tokens (`POST /v1/session`).
    pub(crate) sessions: auth::Sessions,
    /// The pages' whole-list computations, shared per bitemporal point.
    pub(crate) pages: pages::PageCache,
    pub(crate) limits: ServerLimits,
    /// Metric lines from outside the server (the publisher's lag), added to `/metrics`.
    pub(crate) extra_metrics: Mutex<Option<ExtraMetrics>>,
    /// Readiness checks from outside the server (a replica's follower), added to `/readyz`.
    pub(crate) extra_checks: Mutex<Option<ExtraChecks>>,
}

/// Gives metric lines (OpenMetrics text, without `# EOF`) that `/metrics`
/// adds to the server's own: how a component the CLI runs beside the server
/// (the publisher) reports.
#[derive(Clone)]
pub struct ExtraMetrics(pub Arc<dyn Fn() -> String + Send + Sync>);

/// Gives readiness checks that `/readyz` (and the `ready` metric) runs
/// after the server's own: how a component the CLI runs beside the server
/// (a replica's follower) makes the node unready.
#[derive(Clone)]
pub struct ExtraChecks(pub Arc<dyn Fn() -> Vec<health::Check> + Send + Sync>);

impl std::fmt::Debug for ExtraChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraChecks")
    }
}

impl std::fmt::Debug for ExtraMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraMetrics")
    }
}

/// A server over one ledger directory, which it owns (its lock) until it stops.
#[derive(Debug)]
pub struct Server {
    app: Arc<App>,
    writer: std::thread::JoinHandle<(docket_log::Log<docket_log::FsStorage>, docket_log::Stats)>,
    lock: DirLock,
    /// What recovery found when the ledger was opened.
    recovery: docket_log::Recovery,
    /// Signs the inquiry register's checkpoints (the log's key; a replica's own).
    inquiry_key: ed25519_dalek::SigningKey,
    /// A replica's way in for the records it follows.
    replica: Option<ReplicaHandle>,
}

/// A replica's way in: the follower appends the records it verified, at the
/// primary's seqs and times, and adopts the primary's checkpoints.
#[derive(Debug, Clone)]
pub struct ReplicaHandle {
    app: Arc<App>,
    checkpointer: Arc<Mutex<docket_log::ledger::Checkpointer>>,
}

impl ReplicaHandle {
    /// Records in the replica's log.
    pub fn size(&self) -> u64 {
        *self.app.head.borrow()
    }

    /// The replica's Merkle tree (shared with its writer).
    pub fn tree(&self) -> SharedTree {
        self.app.tree.clone()
    }

    /// Appends verified records (seq, system time, event) in order, each
    /// through the log's checks (the registry's rules). The first refused
    /// is returned with its seq; records before it are kept.
    pub async fn append(
        &self,
        records: Vec<(docket_model::SignedEvent, u64, docket_model::Timestamp)>,
    ) -> Result<(), (u64, String)> {
        let mut receipts = Vec::with_capacity(records.len());
        for (event, seq, time) in records {
            let receipt = self.app.sequencer.replicate(event, seq, time).await.map_err(|e| (seq, e.to_string()))?;
            receipts.push((seq, receipt));
        }
        for (seq, receipt) in receipts {
            let receipt = receipt.await.map_err(|e| (seq, e.to_string()))?;
            self.app.advance_head(receipt.seq + 1);
        }
        Ok(())
    }

    /// Adopts the primary's checkpoint `note` (verified again against the
    /// log's key and the replica's own tree), served from then on.
    pub fn adopt(&self, note: &str) -> Result<u64, String> {
        let mut checkpointer = self.checkpointer.lock().unwrap_or_else(PoisonError::into_inner);
        checkpointer.adopt(&self.app.tree, note).map(|c| c.size).map_err(|e| e.to_string())
    }
}

impl Server {
    /// Opens the ledger (recovering its log), starts the sequencer with a
    /// checkpoint every `checkpoint_interval_ms`, and opens (catching up or
    /// rebuilding) the projections. Limits that contradict each other are
    /// refused first, naming both.
    pub fn open(dir: &Path, limits: ServerLimits) -> Result<Self, ServerError> {
        Self::open_as(dir, limits, Role::Primary)
    }

    /// The key that signs the inquiry register's checkpoints, and the
    /// register's verifier key: the log's for a primary; for a replica its
    /// own (made on first open), under the origin `<origin>/replica`.
    fn inquiry_keys(
        ledger: &mut Ledger,
        role: &Role,
    ) -> Result<(ed25519_dalek::SigningKey, docket_log::note::NoteKey), ServerError> {
        if *role == Role::Primary {
            let log_key = ledger.read_log_key()?;
            // A tail that no checkpoint covers yet (the last run was killed before
            // signing) is checkpointed before any traffic; if that fails, the
            // worker keeps retrying and health reports it.
            if let Err(error) = ledger.checkpoint(&log_key) {
                tracing::warn!(records = ledger.log.size(), %error, "checkpoint of the log as opened failed; the worker retries");
            }
            return Ok((log_key, ledger.checkpointer.key().clone()));
        }
        let path = ledger.paths.keys().join("replica.key");
        let key = match docket_log::keyfile::read(&path) {
            Ok(key) => key,
            Err(_) => {
                let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
                docket_log::keyfile::write(&path, &key, false).map_err(docket_log::ledger::LedgerError::from)?;
                key
            }
        };
        let public = docket_model::PublicKey(key.verifying_key().to_bytes());
        let note = docket_log::note::NoteKey::new(&format!("{}/replica", ledger.config.origin), public)
            .map_err(|error| ServerError::Config(error.to_string()))?;
        Ok((key, note))
    }

    /// Opens the ledger as [`Server::open`] does, as a primary or a replica.
    pub fn open_as(dir: &Path, limits: ServerLimits, role: Role) -> Result<Self, ServerError> {
        limits::check(&limits)?;
        let started = std::time::Instant::now();
        let mut opened = docket_log::ledger::Opened::default();
        let mut ledger = Ledger::open(dir, Config { segment_bytes_max: limits.segment_bytes_max })?;
        let mut step = std::time::Instant::now();
        let (inquiry_key, register_key) = Self::inquiry_keys(&mut ledger, &role)?;
        opened.steps.push(("checkpoint", step.elapsed()));
        step = std::time::Instant::now();
        let recovery = ledger.recovery.clone();
        let origin = ledger.config.origin.clone();
        report_opening(&recovery, &origin);
        let inquiries = if limits.inquiry_register {
            let register = docket_log::inquiry::Register::open(dir, &register_key)
                .map_err(|error| ServerError::Config(error.to_string()))?;
            Some(Arc::new(register))
        } else {
            None
        };
        opened.steps.push(("inquiry register", step.elapsed()));
        let ledger_steps = ledger.opened.summary();
        let (log, checkpointer, lock) = ledger.into_parts();
        let size = log.size();
        let tree = log.shared_tree();
        let sequencer_limits = Limits { checkpoint_interval_ms: limits.checkpoint_interval_ms, ..Limits::default() };
        let interval = Duration::from_millis(sequencer_limits.checkpoint_interval_ms);
        let (worker, adopter) = match &role {
            Role::Primary => {
                let log_key = inquiry_key.clone();
                (Some(CheckpointWorker::start(checkpointer, tree.clone(), log_key, size, interval)), None)
            }
            Role::Replica { .. } => (None, Some(checkpointer)),
        };
        let durable = worker.as_ref().map(CheckpointWorker::notifier);
        let metrics = metrics::Metrics::new();
        let (fsync_seconds, group_commit_records) =
            (metrics.fsync_seconds.clone(), metrics.group_commit_records.clone());
        // The hook also runs after a recovery and at the end: a batch is
        // observed once, when the log has changed size since the last call.
        let mut seen = size;
        let hook: docket_log::DurableHook<docket_log::FsStorage> = Box::new(move |log| {
            if let Some(durable) = &durable {
                durable.durable(log.size());
            }
            let batch = log.last_batch();
            if log.size() != seen && batch.syncs > 0 {
                seen = log.size();
                fsync_seconds.observe(batch.sync_time.as_secs_f64());
                group_commit_records.observe(batch.records as f64);
            }
        });
        step = std::time::Instant::now();
        let (sequencer, writer) = Sequencer::start_with_hook(log, sequencer_limits, Some(hook));
        opened.steps.push(("sequencer", step.elapsed()));
        step = std::time::Instant::now();
        let store_limits =
            StoreLimits { durable_catch_up: false, cache_bytes: limits.store_cache_bytes, ..StoreLimits::default() };
        let (mut store, store_opened) = Store::open(dir, store_limits)?;
        if let Some(reason) = &store_opened.rebuilt {
            tracing::warn!(%reason, "projections rebuilt from the log");
        }
        opened.steps.push(("projections", step.elapsed()));
        let rule_sets = docket_audit::RuleSet::bundled();
        store.set_publication(docket_audit::RuleSet::publication(&rule_sets));
        let projected = store.records();
        let registry = replay::AckedRegistry::new(store.current_registry(), projected);
        let app = App {
            dir: dir.to_owned(),
            role,
            origin,
            sequencer,
            store,
            head: watch::Sender::new(size),
            projected: watch::Sender::new(projected),
            reader: Reader::new(docket_log::ledger::Paths::new(dir).segments()),
            tree,
            started: std::time::Instant::now(),
            cut_on_open: recovery.cut.as_ref().map_or(0, docket_log::Cut::records),
            checkpoints: Mutex::new(worker),
            stopping: watch::Sender::new(false),
            metrics,
            rate: rate::RateLimiter::new(limits.appends_per_agency_per_s, limits.append_burst),
            replays: rate::RateLimiter::new(limits.replays_per_address_per_s, limits.replay_burst),
            recent: replay::RecentReceipts::new(limits.recent_receipts_max),
            registry,
            body_budget: Arc::new(tokio::sync::Semaphore::new(limits.body_bytes_in_flight_max)),
            streams: feed::Streams::default(),
            tail: feed::Tail::new(limits.feed_tail_bytes_max),
            inquiries,
            health: health::Health::default(),
            rule_sets,
            calendar: docket_audit::Calendar::bundled(),
            witnesses: read_witnesses(dir)?,
            sessions: auth::Sessions::new(),
            pages: pages::PageCache::default(),
            limits,
            extra_metrics: Mutex::new(None),
            extra_checks: Mutex::new(None),
        };
        let app = Arc::new(app);
        tracing::info!(
            records = size,
            ms = started.elapsed().as_secs_f64() * 1e3,
            ledger = %ledger_steps,
            then = %opened.summary(),
            "opened"
        );
        let replica = adopter
            .map(|checkpointer| ReplicaHandle { app: app.clone(), checkpointer: Arc::new(Mutex::new(checkpointer)) });
        Ok(Self { app, writer, lock, recovery, inquiry_key, replica })
    }

    /// For a replica: where the follower hands its verified records and
    /// checkpoints. `None` for a primary.
    pub fn replica(&self) -> Option<ReplicaHandle> {
        self.replica.clone()
    }

    /// The log's Merkle tree, shared with the writer (for a publisher of its tiles).
    pub fn shared_tree(&self) -> SharedTree {
        self.app.tree.clone()
    }

    /// Adds `lines` to what `/metrics` answers.
    pub fn add_metrics(&self, lines: ExtraMetrics) {
        *self.app.extra_metrics.lock().unwrap_or_else(PoisonError::into_inner) = Some(lines);
    }

    /// Adds `checks` to what `/readyz` runs.
    pub fn add_checks(&self, checks: ExtraChecks) {
        *self.app.extra_checks.lock().unwrap_or_else(PoisonError::into_inner) = Some(checks);
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
        let interval = Duration::from_millis(self.app.limits.checkpoint_interval_ms);
        let inquiry_checkpoints =
            tokio::spawn(inquiries::checkpoint(self.app.clone(), self.inquiry_key.clone(), interval));
        let router = routes::router(self.app.clone());
        let reserve = routes::reserve_router(self.app.clone());
        let app = self.app.clone();
        let stopper = self.app.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopper.stopping.send_replace(true);
        });
        net::serve(listener, app, router, reserve).await;
        // The projector syncs the store once it sees the server stopping.
        let _ = tokio::time::timeout(Duration::from_secs(30), projector).await;
        let _ = tokio::time::timeout(Duration::from_secs(30), inquiry_checkpoints).await;
        let Self { app, writer, lock, recovery: _, inquiry_key: _, replica } = self;
        drop(replica);
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
                    tracing::error!(%error, "the final checkpoint failed");
                }
            }
            drop(lock);
        })
        .await;
        Ok(())
    }

    /// A listener on `addr` with a backlog of `net::LISTEN_BACKLOG`
    /// connections waiting to be accepted (tokio's default is 1,024; a
    /// connection flood past the backlog leaves clients with handshakes the
    /// server never saw).
    pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(net::LISTEN_BACKLOG)
    }

    /// The address a listener bound to `addr` would serve on (for printing).
    pub fn url(addr: SocketAddr) -> String {
        format!("http://{addr}")
    }
}

/// Says what an operator must know of the ledger just opened: a tail
/// recovery cut, and keys that are public (a demo).
fn report_opening(recovery: &docket_log::Recovery, origin: &str) {
    if let Some(warning) = routes::public_keys_warning(origin) {
        tracing::warn!("{warning}");
    }
    if let Some(cut) = &recovery.cut {
        // Also on stderr whatever the log filter: an operator must see what recovery cut.
        eprintln!("docket-server: recovery {cut}");
        tracing::warn!(records = cut.records(), segment = %cut.segment, offset = cut.offset, "recovery {cut}");
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
            let folded = tokio::task::spawn_blocking(move || {
                let _span = tracing::info_span!("fold", from = *worker.projected.borrow(), to = target).entered();
                worker.store.catch_up_to(target).map(|_| worker.store.records())
            })
            .await;
            match folded {
                Ok(Ok(records)) => {
                    app.registry.follow(app.store.current_registry(), records);
                    app.projected.send_replace(records);
                    app.health.projection_recovered();
                    dirty = true;
                }
                Ok(Err(error)) => app.health.projection_failed(error.to_string()),
                Err(error) => app.health.projection_failed(error.to_string()),
            }
            tokio::time::sleep(PROJECTION_INTERVAL).await;
            continue;
        }
        let stop = *stopping.borrow();
        if dirty && (stop || synced.elapsed() >= PROJECTION_SYNC_INTERVAL) {
            let worker = app.clone();
            let result = tokio::task::spawn_blocking(move || worker.store.sync()).await;
            if let Ok(Err(error)) = result {
                tracing::error!(%error, "projection sync failed");
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
    /// Refuses a write on a replica, naming its primary.
    pub(crate) fn writable(&self) -> Result<(), ApiError> {
        match &self.role {
            Role::Primary => Ok(()),
            Role::Replica { primary } => Err(ApiError::read_only(primary)),
        }
    }

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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A failed check makes `/readyz` answer 503 `not_ready`, naming it.
    #[test]
    fn readiness_names_each_failed_check() {
        let dir = tempfile::tempdir().unwrap();
        docket_world::write_ledger(dir.path(), 2, 1).unwrap();
        let server = Server::open(dir.path(), ServerLimits::default()).unwrap();
        let app = server.app.clone();
        assert!(health::checks(&app).iter().all(|check| check.ok));
        app.health.projection_failed("views.redb: input/output error".into());
        let head = *app.head.borrow();
        app.advance_head(head + 5);
        let failed: Vec<&str> = health::checks(&app).iter().filter(|c| !c.ok).map(|c| c.name).collect();
        assert_eq!(failed, ["projections"], "5 records of lag are within the limit");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let response = runtime.block_on(routes::ready(axum::extract::State(app.clone())));
        assert_eq!(response.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let body = runtime.block_on(axum::body::to_bytes(response.into_body(), 1 << 20)).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "not_ready");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("projections: the last catch-up failed: views.redb"));
        drop(app);
        drop(server);
    }
}
