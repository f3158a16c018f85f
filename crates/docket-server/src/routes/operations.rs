//! The operational endpoints: liveness (`/healthz`), readiness
//! (`/readyz`, named checks in `crate::health`), Prometheus metrics and the
//! OpenAPI document. `/healthz`, `/readyz` and `/metrics` are also served
//! from the connection reserve.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::App;

/// What a checkpoint origin holds when the ledger's keys are derived from
/// public strings (docket-world's demos: `docket.invalid/demo-SEED-public-keys`).
pub(crate) const PUBLIC_KEYS_MARKER: &str = "-public-keys";

/// The warning for a ledger of checkpoint origin `origin` whose keys are
/// public (anyone can sign for it), if they are.
pub(crate) fn public_keys_warning(origin: &str) -> Option<String> {
    origin.contains(PUBLIC_KEYS_MARKER).then(|| {
        format!(
            "this ledger's keys are public (checkpoint origin {origin:?}): anyone can sign for it; \
             a demo or test ledger, not one for real data"
        )
    })
}

/// The body of `/healthz`: `ok`, after a `warning:` line when the ledger's keys are public.
fn healthz_text(origin: &str) -> Cow<'static, str> {
    match public_keys_warning(origin) {
        Some(warning) => Cow::Owned(format!("warning: {warning}\nok\n")),
        None => Cow::Borrowed("ok\n"),
    }
}

/// `/healthz`: `ok` while the process serves requests; a ledger whose keys
/// are public (a demo) says so on a `warning:` line first.
pub(super) async fn healthz(State(app): State<Arc<App>>) -> Cow<'static, str> {
    healthz_text(&app.origin)
}

/// `/openapi.json`: the OpenAPI document (`crate::openapi`).
pub(super) async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

/// `/readyz`: 200 with the checks when every one passes, else 503 naming each failure.
pub(crate) async fn ready(State(app): State<Arc<App>>) -> Response {
    let checks = crate::health::checks(&app);
    let failed: Vec<String> = checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.name, c.detail)).collect();
    app.metrics.ready.set(i64::from(failed.is_empty()));
    let mut sizes = json!({"log_size": *app.head.borrow(), "projected": *app.projected.borrow(), "checks": checks});
    if failed.is_empty() {
        return Json(sizes).into_response();
    }
    let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", failed.join("; "));
    let mut body = error.body();
    body["checks"] = sizes["checks"].take();
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Prometheus metrics (OpenMetrics text).
pub(super) async fn metrics(State(app): State<Arc<App>>) -> Response {
    let (head, projected) = (*app.head.borrow(), *app.projected.borrow());
    let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    app.metrics.log_records.set(gauge(head));
    app.metrics.projected_records.set(gauge(projected));
    app.metrics.projection_lag_records.set(gauge(head.saturating_sub(projected)));
    let ready = crate::health::checks(&app).iter().all(|check| check.ok);
    app.metrics.ready.set(i64::from(ready));
    app.metrics.set_log(&app.log_health(), app.cut_on_open);
    let (full, carried) = app.pages.computed();
    let held = app.pages.held();
    app.metrics.page_computations_full.set(gauge(full));
    app.metrics.page_computations_carried.set(gauge(carried));
    app.metrics.page_cache_points.set(gauge(held.points));
    app.metrics.page_cache_cases.set(gauge(held.cases));
    app.metrics.page_cache_rows.set(gauge(held.rows));
    let mut text = app.metrics.encode();
    let extra = app.extra_metrics.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    if let Some(extra) = extra {
        // The extra lines go before the closing `# EOF` OpenMetrics requires last.
        let at = text.rfind("# EOF").unwrap_or(text.len());
        text.insert_str(at, &(extra.0)());
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_warns_of_public_keys_only_when_the_origin_says_so() {
        assert_eq!(healthz_text("example.org/designations"), "ok\n");
        let demo = healthz_text("docket.invalid/demo-1-public-keys");
        assert!(demo.starts_with("warning: this ledger's keys are public"), "{demo}");
        assert!(demo.contains("anyone can sign for it"), "{demo}");
        assert!(demo.ends_with("\nok\n"), "{demo}");
    }
}
