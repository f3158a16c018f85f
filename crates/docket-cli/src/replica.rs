//! `docket replica`: a read-only node that follows the log a primary
//! publishes to a bucket (`docket serve --publish`), verifies everything it
//! takes (`docket_publish::follow`), appends it to its own ledger through
//! the log's checks at the primary's seqs and times, folds its own
//! projections, and serves the read API; appends are refused naming the
//! primary.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use docket_publish::follow::{Follower, Frontier, Origin};
use docket_publish::{Bucket, PublishError};
use docket_server::health::Check;
use docket_server::{ReplicaHandle, Role, Server, ServerLimits};

/// What `docket replica` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    /// Where the published log is read.
    pub source: Source,
    /// The primary's `ledger.json`, for a directory that holds no ledger yet.
    pub ledger_config: Option<PathBuf>,
    /// The primary's URL, named when an append is refused.
    pub primary: String,
    pub addr: SocketAddr,
    pub interval: Duration,
    /// `ready_lag_ms_max`: `/readyz` fails when the replica has not been
    /// caught up for longer.
    pub ready_lag: Duration,
    pub cache_mib: usize,
}

/// Where a replica reads the published log.
#[derive(Debug, Clone)]
pub enum Source {
    /// The bucket: the public prefix (checkpoint, tiles) and the private
    /// one (entry bundles), s3:// URLs.
    Bucket { from: String, entries: String },
    /// The primary's `/log/` over HTTP, read with a client that holds the
    /// oversight role (entry bundles are for it only).
    Primary(Arc<docket_client::Client>),
}

/// A primary's C2SP tlog-tiles prefix `/log/`, over HTTP.
#[derive(Debug, Clone)]
struct PrimaryLog {
    client: Arc<docket_client::Client>,
    url: String,
}

impl Origin for PrimaryLog {
    fn fetch(&self, name: &str) -> impl std::future::Future<Output = Result<Option<Vec<u8>>, PublishError>> + Send {
        let (client, path) = (self.client.clone(), format!("/log/{name}"));
        let object = format!("{}/{name}", self.url);
        async move {
            let failed = |reason: String| PublishError::Store { object: object.clone(), reason };
            let response = tokio::task::spawn_blocking(move || client.get(&path))
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(|e| failed(e.to_string()))?;
            match response.status {
                200 => Ok(Some(response.body)),
                404 => Ok(None),
                status => Err(failed(format!("HTTP {status}: {}", response.text().trim()))),
            }
        }
    }

    fn url(&self) -> &str {
        &self.url
    }
}

/// Where the replica stands, for `/metrics`, `/readyz` and its log lines.
#[derive(Debug)]
struct Status {
    /// Records verified and held.
    size: u64,
    /// The newest checkpoint size read whose signature held (the follower's, live).
    published: Arc<AtomicU64>,
    started: Instant,
    /// The last round that read the bucket without error.
    last_round: Option<Instant>,
    /// The last time the replica held every record of the newest checkpoint it had read.
    caught_up_at: Option<Instant>,
    /// Why the last round failed, if it did and was retried.
    retrying: Option<String>,
    /// Why the follower stopped advancing, if it did.
    stopped: Option<String>,
    /// `ready_lag_ms_max`: `/readyz` fails when `caught_up_at` is older.
    ready_lag: Duration,
}

impl Status {
    fn new(published: Arc<AtomicU64>, ready_lag: Duration) -> Self {
        let started = Instant::now();
        Self {
            size: 0,
            published,
            started,
            last_round: None,
            caught_up_at: None,
            retrying: None,
            stopped: None,
            ready_lag,
        }
    }

    fn behind(&self) -> u64 {
        self.published.load(Ordering::Relaxed).saturating_sub(self.size)
    }

    /// Notes the replica's size; caught up if it holds the newest
    /// checkpoint read and that checkpoint was just read (`fresh`: not
    /// after a round that could not read the bucket).
    fn observe(&mut self, size: u64, fresh: bool) {
        self.size = size;
        if fresh && self.last_round.is_some() && self.behind() == 0 {
            self.caught_up_at = Some(Instant::now());
        }
    }

    /// Seconds since the replica last held every record of the newest
    /// checkpoint it had read (since it started, if never): while it keeps
    /// up, under one interval and one round.
    fn lag(&self) -> Duration {
        self.caught_up_at.unwrap_or(self.started).elapsed()
    }

    fn metrics(&self) -> String {
        let since = self.last_round.map_or(-1.0, |at| at.elapsed().as_secs_f64());
        format!(
            "# HELP docket_replica_records Records this replica verified and holds.\n\
             # TYPE docket_replica_records gauge\ndocket_replica_records {}\n\
             # HELP docket_replica_published_records Records in the newest published checkpoint read.\n\
             # TYPE docket_replica_published_records gauge\ndocket_replica_published_records {}\n\
             # HELP docket_replica_behind_records Records in the newest published checkpoint not yet taken.\n\
             # TYPE docket_replica_behind_records gauge\ndocket_replica_behind_records {}\n\
             # HELP docket_replica_lag_seconds Time since the replica last held every record of the newest checkpoint it read.\n\
             # TYPE docket_replica_lag_seconds gauge\ndocket_replica_lag_seconds {:.3}\n\
             # HELP docket_replica_round_age_seconds Time since the last successful look at the bucket (-1: none yet).\n\
             # TYPE docket_replica_round_age_seconds gauge\ndocket_replica_round_age_seconds {since:.3}\n\
             # HELP docket_replica_stopped 1 if the replica stopped advancing (a check failed).\n\
             # TYPE docket_replica_stopped gauge\ndocket_replica_stopped {}\n",
            self.size,
            self.published.load(Ordering::Relaxed),
            self.behind(),
            self.lag().as_secs_f64(),
            u8::from(self.stopped.is_some()),
        )
    }

    /// The `replica_follower` readiness check: not stopped, and caught up
    /// with the newest checkpoint read within `ready_lag_ms_max`.
    fn check(&self) -> Check {
        let (behind, lag, max) = (self.behind(), self.lag().as_secs_f64(), self.ready_lag.as_millis());
        let published = self.published.load(Ordering::Relaxed);
        let retrying = self.retrying.as_ref().map_or(String::new(), |why| format!("; the last round failed: {why}"));
        let (ok, detail) = match (&self.stopped, self.caught_up_at) {
            (Some(why), _) => (false, format!("stopped advancing at {} records: {why}", self.size)),
            (None, None) => (
                false,
                format!(
                    "not caught up yet: {} of {published} published records verified, {lag:.1} s since start \
                     (ready_lag_ms_max = {max}){retrying}",
                    self.size
                ),
            ),
            (None, Some(_)) => (
                self.lag() <= self.ready_lag,
                format!(
                    "{behind} records behind the published checkpoint of {published}; last caught up {lag:.1} s ago \
                     (ready_lag_ms_max = {max}); last read the bucket {:.1} s ago{retrying}",
                    self.last_round.map_or(0.0, |at| at.elapsed().as_secs_f64())
                ),
            ),
        };
        Check { name: "replica_follower", ok, detail }
    }
}

/// A replica's directory: made from the primary's `ledger.json` if new.
fn prepare(options: &Options) -> Result<()> {
    if docket_log::ledger::Paths::new(&options.dir).config().exists() {
        return Ok(());
    }
    let path = options.ledger_config.as_ref().with_context(|| {
        format!(
            "{} holds no ledger: give the primary's ledger.json with --ledger-config to start a replica there",
            options.dir.display()
        )
    })?;
    let text = std::fs::read_to_string(path).with_context(|| format!("--ledger-config {}", path.display()))?;
    let config: docket_log::ledger::LedgerConfig =
        serde_json::from_str(&text).with_context(|| format!("--ledger-config {}", path.display()))?;
    docket_log::ledger::init_replica(&options.dir, &config)?;
    Ok(())
}

/// The frontier of the replica's own log (checked against its latest
/// checkpoint when it was opened).
fn frontier(dir: &Path, size: u64) -> Result<Frontier> {
    let reader = docket_log::Reader::new(docket_log::ledger::Paths::new(dir).segments());
    let mut frontier = Frontier::default();
    reader.read_from(0, None, |frame| {
        if frame.seq >= size {
            return ControlFlow::Break(());
        }
        frontier.push(docket_log::leaf(frame.seq, frame.system_time, &frame.wire));
        ControlFlow::Continue(())
    })?;
    anyhow::ensure!(frontier.size() == size, "the replica's log ended at {} of {size} records", frontier.size());
    Ok(frontier)
}

/// Why a round took nothing: a failure tried again, or a check that stops the replica.
enum Halt {
    Retry(String),
    Stop(String),
}
use Halt::{Retry, Stop};

/// Follows the bucket until `stop`: each round's records go through the
/// replica's log, then its checkpoint is adopted. A failed check stops the
/// replica advancing (it keeps serving what it verified), naming the seq.
async fn follow<O: Origin>(
    mut follower: Follower<O>,
    handle: ReplicaHandle,
    interval: Duration,
    status: Arc<Mutex<Status>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let taken = follower
            .round(async |records| {
                handle.append(records.into_iter().map(|r| (r.event, r.seq, r.system_time)).collect()).await?;
                status.lock().unwrap_or_else(PoisonError::into_inner).observe(handle.size(), true);
                Ok(())
            })
            .await;
        let adopted = match taken {
            Ok(Some(round)) => {
                handle.adopt(&round.note).map(Some).map_err(|e| Stop(format!("adopting the checkpoint: {e}")))
            }
            Ok(None) => Ok(None),
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, "the bucket could not be read; trying again");
                Err(Retry(error.to_string()))
            }
            Err(error) => Err(Stop(error.to_string())),
        };
        {
            let mut shared = status.lock().unwrap_or_else(PoisonError::into_inner);
            match adopted {
                Err(Retry(why)) => {
                    shared.retrying = Some(why);
                    shared.observe(handle.size(), false);
                }
                Ok(size) => {
                    shared.last_round = Some(Instant::now());
                    shared.retrying = None;
                    shared.observe(handle.size(), true);
                    if let Some(size) = size {
                        tracing::info!(size, "replica: checkpoint verified and adopted");
                    }
                }
                Err(Stop(reason)) => {
                    shared.observe(handle.size(), false);
                    eprintln!("replica: stopped advancing at {} records: {reason}", handle.size());
                    tracing::error!(%reason, "replica stopped advancing");
                    shared.stopped = Some(reason);
                    return;
                }
            }
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}

/// `docket replica`.
pub fn run(options: &Options) -> Result<bool> {
    anyhow::ensure!(
        options.ready_lag > options.interval,
        "--ready-lag-ms {} is not more than --interval-ms {}: the replica would be unready between any two looks \
         at the bucket",
        options.ready_lag.as_millis(),
        options.interval.as_millis()
    );
    prepare(options)?;
    let dir = options.dir.as_path();
    let limits =
        ServerLimits { store_cache_bytes: options.cache_mib.saturating_mul(1 << 20), ..ServerLimits::default() };
    let role = Role::Replica { primary: options.primary.clone() };
    let server = Server::open_as(dir, limits, role).with_context(|| format!("opening {}", dir.display()))?;
    let handle = server.replica().context("the server did not open as a replica")?;
    let (_, _, key) = docket_log::ledger::read_config(dir)?;
    let frontier = frontier(dir, handle.size())?;
    match &options.source {
        Source::Bucket { from, entries } => {
            let public = Bucket::from_url(from).context("--from")?;
            let private = Bucket::from_url(entries).context("--entries")?;
            serve_following(options, server, handle, Follower::new(public, private, key, frontier))
        }
        Source::Primary(client) => {
            let log = PrimaryLog { client: client.clone(), url: format!("{}/log", client.base()) };
            serve_following(options, server, handle, Follower::new(log.clone(), log, key, frontier))
        }
    }
}

/// Serves the read API while the follower feeds the replica's log.
fn serve_following<O: Origin>(
    options: &Options,
    server: Server,
    handle: ReplicaHandle,
    follower: Follower<O>,
) -> Result<bool> {
    let dir = options.dir.as_path();
    let mut initial = Status::new(follower.published_gauge(), options.ready_lag);
    initial.size = handle.size();
    let status = Arc::new(Mutex::new(initial));
    let shown = status.clone();
    server.add_metrics(docket_server::ExtraMetrics(Arc::new(move || {
        shown.lock().unwrap_or_else(PoisonError::into_inner).metrics()
    })));
    let checked = status.clone();
    server.add_checks(docket_server::ExtraChecks(Arc::new(move || {
        vec![checked.lock().unwrap_or_else(PoisonError::into_inner).check()]
    })));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = Server::bind(options.addr).with_context(|| format!("binding {}", options.addr))?;
        let url = Server::url(listener.local_addr()?);
        let from = match &options.source {
            Source::Bucket { from, .. } => from.clone(),
            Source::Primary(client) => format!("{}/log", client.base()),
        };
        println!("docket replica of {} serving {} on {url}  (following {from})", options.primary, dir.display());
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            let name = crate::serve::stop_signal().await;
            eprintln!("{name}: stopping the replica");
            let _ = stop.send(true);
        };
        // The follower runs beside the server in this task (its rounds are
        // not `Send`); it ends when the stop is signalled, dropping its
        // handle, so the server's writer can end too.
        let following = follow(follower, handle, options.interval, status, stopping);
        let (served, ()) = tokio::join!(server.serve(listener, shutdown), following);
        served?;
        anyhow::Ok(())
    })?;
    Ok(true)
}

/// What `docket restore` was asked to do.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The new ledger directory (must not hold a ledger).
    pub dir: PathBuf,
    /// The primary's `ledger.json`.
    pub ledger_config: PathBuf,
    /// The public prefix (checkpoint, tiles) and the private one (entry bundles).
    pub from: String,
    pub entries: String,
    /// The log's signing key, which the restored primary signs with.
    pub log_key: PathBuf,
}

/// The ledger's configuration, and the log key checked against it.
fn restore_keys(options: &RestoreOptions) -> Result<(docket_log::ledger::LedgerConfig, ed25519_dalek::SigningKey)> {
    let path = &options.ledger_config;
    let text = std::fs::read_to_string(path).with_context(|| format!("--ledger-config {}", path.display()))?;
    let config: docket_log::ledger::LedgerConfig =
        serde_json::from_str(&text).with_context(|| format!("--ledger-config {}", path.display()))?;
    let key = docket_log::keyfile::read(&options.log_key)
        .with_context(|| format!("--log-key {}", options.log_key.display()))?;
    let public = docket_model::PublicKey(key.verifying_key().to_bytes());
    let verifier = docket_log::note::NoteKey::new(&config.origin, public)?.verifier_string();
    anyhow::ensure!(
        verifier == config.log_key,
        "--log-key {} is not the log key of {} (ledger.json names {})",
        options.log_key.display(),
        config.origin,
        config.log_key
    );
    Ok((config, key))
}

/// `docket restore`: a new primary rebuilt from the bucket, every record
/// verified as a replica verifies it, through the log's rules.
pub fn restore(options: &RestoreOptions) -> Result<bool> {
    let dir = options.dir.as_path();
    let (config, log_key) = restore_keys(options)?;
    let public = Bucket::from_url(&options.from).context("--from")?;
    let private = Bucket::from_url(&options.entries).context("--entries")?;
    docket_log::ledger::init_replica(dir, &config)?;
    let mut ledger = docket_log::ledger::Ledger::open(dir, docket_log::Config::default())?;
    let (_, _, key) = docket_log::ledger::read_config(dir)?;
    let mut follower = Follower::new(public, private, key, Frontier::default());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let docket_log::ledger::Ledger { log, checkpointer, .. } = &mut ledger;
    let tree = log.shared_tree();
    let adopted = runtime.block_on(async {
        let mut adopted = None;
        // Rounds until one finds nothing new: the primary may still be publishing.
        while let Some(round) = follower
            .round(async |records| {
                let pinned = records.into_iter().map(|r| (r.event, r.seq, r.system_time)).collect();
                let results = log.append_replicated(pinned).map_err(|e| (log.size(), e.to_string()))?;
                match results.into_iter().find_map(Result::err) {
                    Some(refusal) => Err((log.size(), refusal.to_string())),
                    None => Ok(()),
                }
            })
            .await?
        {
            adopted = Some(checkpointer.adopt(&tree, &round.note)?);
        }
        anyhow::Ok(adopted)
    })?;
    let adopted = adopted.context("the bucket holds no checkpoint: nothing to restore")?;
    docket_log::keyfile::write(&ledger.paths.keys().join("log.key"), &log_key, false)?;
    println!(
        "restored {} records of {} into {} from {}: each checkpoint's signature, the tiles against its root, each \
         entry against its leaf, each event's signature and the registry's rules held; checkpoint {} adopted",
        ledger.log.size(),
        config.origin,
        dir.display(),
        options.from,
        adopted.size
    );
    Ok(true)
}
