//! Liveness and readiness. `/healthz` answers while the process serves
//! requests at all. `/readyz` runs named checks and answers 503 naming each
//! one that fails, so a load balancer stops sending appends to a server that
//! cannot take them and an operator sees why.
//!
//! Each check is a function from the server's state to a [`Check`]; adding
//! one (checkpoint lag, the log's own poisoned or recovering state) is a
//! line in [`checks`].

use std::sync::Mutex;

use serde::Serialize;

use crate::App;

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
    /// The log refused an append because it failed (it is poisoned until reopened).
    log_failure: Mutex<Option<String>>,
    /// The last projection catch-up failed.
    projection_failure: Mutex<Option<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Health {
    pub(crate) fn log_failed(&self, why: String) {
        *lock(&self.log_failure) = Some(why);
    }
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
    vec![log_writable(app), projections(app), projection_lag(app)]
}

/// The log accepts appends: no append has failed on a log error. (The
/// sequencer poisons the log on a failed write or sync; it stays refused
/// until the server is restarted and the log recovered.)
fn log_writable(app: &App) -> Check {
    match lock(&app.health.log_failure).as_ref() {
        None => Check { name: "log_writable", ok: true, detail: "no append has failed on the log".into() },
        Some(why) => Check { name: "log_writable", ok: false, detail: format!("the log failed: {why}") },
    }
}

/// The last projection catch-up succeeded.
fn projections(app: &App) -> Check {
    match lock(&app.health.projection_failure).as_ref() {
        None => Check { name: "projections", ok: true, detail: "the last catch-up succeeded".into() },
        Some(why) => Check { name: "projections", ok: false, detail: format!("the last catch-up failed: {why}") },
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
