//! `/metrics`: Prometheus metrics through the `prometheus-client` crate (the
//! Prometheus project's own Rust client), in the OpenMetrics text format
//! with HELP and TYPE for every family.
//!
//! Counters and histograms are updated where things happen; the gauges that
//! mirror a state (log size, projection lag) are set when scraped.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// Labels of a served request. `route` is the route's pattern (bounded: one
/// per route, `unmatched` for the rest), never the raw path.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) status: u16,
}

/// Labels of a latency histogram by route.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) method: String,
    pub(crate) route: String,
}

/// What became of an appended event.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub(crate) outcome: &'static str,
}

/// Latency buckets from 50 µs to about 3.3 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub(crate) append_seconds: Histogram,
    /// Time in `fdatasync` per group commit (the writer's durable point).
    pub(crate) fsync_seconds: Histogram,
    /// Records written under one group commit.
    pub(crate) group_commit_records: Histogram,
    pub(crate) appends: Family<OutcomeLabels, Counter>,
    pub(crate) feed_events: Counter,
    pub(crate) feed_subscribers: Gauge,
    pub(crate) connections_open: Gauge,
    pub(crate) connections_refused: Counter,
    pub(crate) connections_evicted: Counter,
    pub(crate) log_records: Gauge,
    pub(crate) projected_records: Gauge,
    pub(crate) projection_lag_records: Gauge,
    pub(crate) ready: Gauge,
    pub(crate) checkpoint_behind_records: Gauge,
    pub(crate) checkpoint_age_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub(crate) checkpoint_failures: Gauge,
    pub(crate) log_refusing_appends: Gauge,
    pub(crate) log_write_failures: Gauge,
    pub(crate) log_recoveries: Gauge,
    pub(crate) log_cut_records: Gauge,
    pub(crate) page_computations_full: Gauge,
    pub(crate) page_computations_carried: Gauge,
    pub(crate) page_cache_points: Gauge,
    pub(crate) page_cache_cases: Gauge,
    pub(crate) page_cache_rows: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("docket");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by method, route and status", requests.clone());
        let request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's head to its response's head, by route",
            Unit::Seconds,
            request_seconds.clone(),
        );
        let append_seconds = latency_histogram();
        registry.register_with_unit(
            "append_duration",
            "Time from an append's arrival to its receipt (durable) or refusal, per event",
            Unit::Seconds,
            append_seconds.clone(),
        );
        let fsync_seconds = latency_histogram();
        registry.register_with_unit(
            "log_fsync_duration",
            "Time the writer spent in fdatasync per group commit (a batch that rotates a segment syncs twice)",
            Unit::Seconds,
            fsync_seconds.clone(),
        );
        // Group sizes from 1 to 4096 records, doubling.
        let group_commit_records = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        registry.register(
            "log_group_commit_records",
            "Records written under one group commit (one fdatasync)",
            group_commit_records.clone(),
        );
        let appends = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "appends",
            "Appended events by outcome: appended, duplicate, refused, rate_limited",
            appends.clone(),
        );
        let metrics = Self {
            requests,
            request_seconds,
            append_seconds,
            fsync_seconds,
            group_commit_records,
            appends,
            feed_events: Counter::default(),
            feed_subscribers: Gauge::default(),
            connections_open: Gauge::default(),
            connections_refused: Counter::default(),
            connections_evicted: Counter::default(),
            log_records: Gauge::default(),
            projected_records: Gauge::default(),
            projection_lag_records: Gauge::default(),
            ready: Gauge::default(),
            checkpoint_behind_records: Gauge::default(),
            checkpoint_age_seconds: Gauge::default(),
            checkpoint_failures: Gauge::default(),
            log_refusing_appends: Gauge::default(),
            page_computations_full: Gauge::default(),
            page_computations_carried: Gauge::default(),
            page_cache_points: Gauge::default(),
            page_cache_cases: Gauge::default(),
            page_cache_rows: Gauge::default(),
            log_write_failures: Gauge::default(),
            log_recoveries: Gauge::default(),
            log_cut_records: Gauge::default(),
            registry,
        };
        metrics.register_rest()
    }

    fn register_rest(mut self) -> Self {
        let registry = &mut self.registry;
        registry.register("feed_events", "Events delivered by the change feed", self.feed_events.clone());
        registry.register(
            "feed_subscribers",
            "Open feed reads: SSE streams and waiting long polls",
            self.feed_subscribers.clone(),
        );
        registry.register("connections_open", "Open HTTP connections", self.connections_open.clone());
        registry.register(
            "connections_refused",
            "Connections closed on accept: connections_max and the reserve were full",
            self.connections_refused.clone(),
        );
        registry.register(
            "connections_evicted",
            "Idle connections closed to make room for a new one at connections_max",
            self.connections_evicted.clone(),
        );
        registry.register(
            "log_records",
            "Records the server has acknowledged (the log's size)",
            self.log_records.clone(),
        );
        registry.register("projected_records", "Records folded into the projections", self.projected_records.clone());
        registry.register(
            "projection_lag_records",
            "Records acknowledged but not yet folded into the projections",
            self.projection_lag_records.clone(),
        );
        registry.register("ready", "1 when every /readyz check passes", self.ready.clone());
        self.register_log()
    }

    /// The log's own state: checkpoints, write failures and recovery.
    fn register_log(mut self) -> Self {
        let registry = &mut self.registry;
        registry.register(
            "checkpoint_behind_records",
            "Durable records that no signed checkpoint covers yet",
            self.checkpoint_behind_records.clone(),
        );
        registry.register_with_unit(
            "checkpoint_age",
            "Time since this server last signed a checkpoint (-1: none yet)",
            Unit::Seconds,
            self.checkpoint_age_seconds.clone(),
        );
        registry.register(
            "checkpoint_failures",
            "Failed checkpoint attempts since the last success (retried with backoff)",
            self.checkpoint_failures.clone(),
        );
        registry.register(
            "log_refusing_appends",
            "1 while the log refuses appends after a write failure, until it has recovered",
            self.log_refusing_appends.clone(),
        );
        registry.register(
            "log_write_failures",
            "Write failures of the log since start",
            self.log_write_failures.clone(),
        );
        registry.register(
            "log_recoveries",
            "Recoveries of the log after a write failure since start (no restart needed)",
            self.log_recoveries.clone(),
        );
        registry.register(
            "log_cut_records",
            "Records recovery cut since start, on open included: written, never acknowledged",
            self.log_cut_records.clone(),
        );
        registry.register(
            "page_computations_full",
            "The pages' whole-list computations (public list, audit, worklist) done in full since start",
            self.page_computations_full.clone(),
        );
        registry.register(
            "page_computations_carried",
            "The pages' whole-list computations carried from a kept point (only changed cases computed) since start",
            self.page_computations_carried.clone(),
        );
        registry.register(
            "page_cache_points",
            "Points the pages' cache keeps, over its three computations",
            self.page_cache_points.clone(),
        );
        registry.register(
            "page_cache_cases",
            "Per-case results the pages' cache keeps, over its points (shared between points counted once per point)",
            self.page_cache_cases.clone(),
        );
        registry.register(
            "page_cache_rows",
            "Rows the pages' cache keeps: entries of the distinct chunks of its points' maps (a chunk shared by points counted once), what ROWS_CACHED_MAX bounds per computation",
            self.page_cache_rows.clone(),
        );
        let build = Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]);
        registry.register("build", "The server's version", build);
        self
    }

    /// Sets the log's gauges from its health.
    pub(crate) fn set_log(&self, health: &crate::LogHealth, cut_on_open: u64) {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let checkpoint = &health.checkpoint;
        self.checkpoint_behind_records.set(gauge(checkpoint.behind()));
        self.checkpoint_age_seconds.set(checkpoint.signed_at.map_or(-1.0, |at| at.elapsed().as_secs_f64()));
        self.checkpoint_failures.set(gauge(checkpoint.failures));
        self.log_refusing_appends.set(i64::from(health.writer.refusing.is_some()));
        self.log_write_failures.set(gauge(health.writer.failures));
        self.log_recoveries.set(gauge(health.writer.recoveries));
        self.log_cut_records.set(gauge(health.writer.records_cut + cut_on_open));
    }

    /// Counts an open connection until the returned guard is dropped.
    pub(crate) fn connection_opened(&self) -> GaugeGuard {
        GaugeGuard::new(&self.connections_open)
    }

    /// One event's outcome and latency.
    pub(crate) fn append_outcome(&self, outcome: &'static str, elapsed: Duration) {
        self.appends.get_or_create(&OutcomeLabels { outcome }).inc();
        self.append_seconds.observe(elapsed.as_secs_f64());
    }

    /// The text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Increments a gauge now and decrements it when dropped.
#[derive(Debug)]
pub(crate) struct GaugeGuard(Gauge<i64, AtomicI64>);

impl GaugeGuard {
    pub(crate) fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
