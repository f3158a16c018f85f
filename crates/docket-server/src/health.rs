//! Liveness and readiness. `/healthz` answers while the process serves
//! requests at all. `/readyz` runs named checks and answers 503 naming each
//! one that fails, so a load balancer stops sending appends to a server that
//! cannot take them and an operator sees why.
//!
//! Each check is a function from the server's state to a [`Check`]; adding
//! one is a line in `checks`. Components run beside the server (a replica's
//! follower) add theirs with `Server::add_checks`.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::{App, LogHealth};

/// One named readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name, e.g. `log_writable`.
    pub name: &'static str,
    pub ok: bool,
    /// What was measured, or why it failed.
    pub detail: String,
}

/// Failures the server has seen that make it unready until they clear.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// The last projection catch-up failed.
    projection_failure: Mutex<Option<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Health {
    pub(crate) fn projection_failed(&self, why: String) {
        tracing::error!(error = %why, "projection catch-up failed");
        *lock(&self.projection_failure) = Some(why);
    }
    pub(crate) fn projection_recovered(&self) {
        lock(&self.projection_failure).take();
    }
}

/// Every readiness check, in a stable order.
pub(crate) fn checks(app: &App) -> Vec<Check> {
    let log = app.log_health();
    let mut checks =
        vec![log_writable(&log), checkpoints(app, &log), projections(app), projection_lag(app), inquiries(app)];
    let extra = lock(&app.extra_checks).clone();
    if let Some(extra) = extra {
        checks.extend((extra.0)());
    }
    checks
}

/// The log takes appends: the writer is not refusing them after a write
/// failure (it recovers by itself, cutting the failed write and reopening
/// the log; reads are served meanwhile).
fn log_writable(log: &LogHealth) -> Check {
    let writer = &log.writer;
    match &writer.refusing {
        None => Check {
            name: "log_writable",
            ok: true,
            detail: format!("{} write failure(s), {} recovered", writer.failures, writer.recoveries),
        },
        Some(why) => Check {
            name: "log_writable",
            ok: false,
            detail: format!("appends are refused until the log recovers: {why}"),
        },
    }
}

/// Every durable record is covered by a signed checkpoint, or has waited
/// less than `ready_checkpoint_lag_ms_max` for one.
fn checkpoints(app: &App, log: &LogHealth) -> Check {
    let status = &log.checkpoint;
    let max = Duration::from_millis(app.limits.ready_checkpoint_lag_ms_max);
    let waited = status.signed_at.map_or(app.started.elapsed(), |at| at.elapsed());
    let ok = status.behind() == 0 || waited <= max;
    let mut detail = format!(
        "{} record(s) not yet checkpointed; last signed {:.1} s ago (ready_checkpoint_lag_ms_max = {})",
        status.behind(),
        waited.as_secs_f64(),
        max.as_millis()
    );
    if let Some(error) = &status.last_error {
        detail += &format!("; {} failed attempt(s), the last: {error}", status.failures);
    }
    Check { name: "checkpoints", ok, detail }
}

/// The last projection catch-up succeeded.
fn projections(app: &App) -> Check {
    match lock(&app.health.projection_failure).as_ref() {
        None => Check { name: "projections", ok: true, detail: "the last catch-up succeeded".into() },
        Some(why) => Check { name: "projections", ok: false, detail: format!("the last catch-up failed: {why}") },
    }
}

/// The inquiry register records: without it no non-public read is answered.
fn inquiries(app: &App) -> Check {
    match app.inquiries.as_ref().map(|register| (register.size(), register.failed())) {
        None => Check { name: "inquiries", ok: true, detail: "no inquiry register (inquiry_register is off)".into() },
        Some((size, None)) => Check { name: "inquiries", ok: true, detail: format!("{size} inquiries recorded") },
        Some((_, Some(why))) => Check {
            name: "inquiries",
            ok: false,
            detail: format!("the inquiry register cannot write, so non-public reads are refused: {why}"),
        },
    }
}

/// The projections are within `ready_projection_lag_records_max` of the log.
fn projection_lag(app: &App) -> Check {
    let (head, projected) = (*app.head.borrow(), *app.projected.borrow());
    let lag = head.saturating_sub(projected);
    let max = app.limits.ready_projection_lag_records_max;
    Check {
        name: "projection_lag",
        ok: lag <= max,
        detail: format!("{lag} records behind the log (ready_projection_lag_records_max = {max})"),
    }
}
