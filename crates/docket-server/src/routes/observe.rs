//! The layers every request passes through: a tracing span and an access
//! line per request, and the request metrics by route.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::response::Response;

use crate::metrics::{RequestLabels, RouteLabels};
use crate::App;

/// The route's pattern, for logs and metric labels (bounded, unlike paths).
fn route_of(request: &Request) -> String {
    request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned()
}

/// tower-http's TraceLayer with the access log's span and line.
pub(super) type AccessLog = tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    fn(&Request) -> tracing::Span,
    tower_http::trace::DefaultOnRequest,
    fn(&Response, Duration, &tracing::Span),
>;

/// tower-http's TraceLayer: a span per request (method, route, agency once
/// known) and one access-log line at its end (status, µs).
pub(super) fn access_log() -> AccessLog {
    tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request) -> tracing::Span)
        .on_response(access_line as fn(&Response, Duration, &tracing::Span))
}

fn request_span(request: &Request) -> tracing::Span {
    tracing::info_span!("request", method = %request.method(), route = %route_of(request), agency = tracing::field::Empty)
}

fn access_line(response: &Response, latency: Duration, span: &tracing::Span) {
    tracing::info!(parent: span, status = response.status().as_u16(), us = latency.as_micros() as u64, "served");
}

/// Request metrics by route: a count by status and a latency histogram.
pub(super) async fn observe(State(app): State<Arc<App>>, request: Request, next: axum::middleware::Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = route_of(&request);
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let labels = RouteLabels { method, route };
    app.metrics.request_seconds.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    let RouteLabels { method, route } = labels;
    app.metrics.requests.get_or_create(&RequestLabels { method, route, status: response.status().as_u16() }).inc();
    response
}
