//! The router and the handlers other than the feed.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;

use docket_fold::query::{self, QueryError};
use docket_fold::views;
use docket_log::Receipt;
use docket_model::{Name, SignedEvent, SignedJson};

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::feed;
use crate::metrics::{RequestLabels, RouteLabels};
use crate::net::Peer;
use crate::App;

/// Query parameters, refused with the API's own `bad_parameter` error (not axum's plain text).
#[derive(Debug)]
pub(crate) struct Params<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(params)| Self(params))
            .map_err(|e| ApiError::bad_request("bad_parameter", e.body_text()))
    }
}

/// A path parameter, refused with the API's own `bad_parameter` error (not axum's plain text).
#[derive(Debug)]
pub(crate) struct PathParam<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|e| ApiError::bad_request("bad_parameter", format!("path: {}", e.body_text())))
    }
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/events", post(append))
        .route("/v1/events/batch", post(append_batch))
        .route("/v1/events/{seq}", get(event_at))
        .route("/v1/feed", get(feed::long_poll))
        .route("/v1/feed/sse", get(feed::sse))
        .route("/v1/views/{view}", get(view))
        .route("/v1/audit", get(audit))
        .route("/v1/delta", get(delta))
        .route("/v1/checkpoint", get(checkpoint))
        .route("/v1/session", post(session))
        .route("/v1/cosignatures", post(cosignatures))
        .route("/v1/proof/inclusion", get(inclusion))
        .route("/v1/proof/consistency", get(consistency))
        .route("/tile/{*path}", get(tile))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(|| async { Json(crate::openapi::document()) }))
        .fallback(crate::error::no_route)
        .method_not_allowed_fallback(crate::error::method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .layer(crate::error::catch_panic())
        .layer(access_log())
        .with_state(app)
}

/// What a connection past `connections_max` is served, one request: the
/// operational endpoints, and 503 `overloaded` for everything else.
pub(crate) fn reserve_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .fallback(crate::error::overloaded_connection)
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .layer(crate::error::catch_panic())
        .layer(access_log())
        .with_state(app)
}

/// The route's pattern, for logs and metric labels (bounded, unlike paths).
fn route_of(request: &Request) -> String {
    request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned()
}

/// tower-http's TraceLayer with the access log's span and line.
type AccessLog = tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    fn(&Request) -> tracing::Span,
    tower_http::trace::DefaultOnRequest,
    fn(&Response, Duration, &tracing::Span),
>;

/// tower-http's TraceLayer: a span per request (method, route, agency once
/// known) and one access-log line at its end (status, µs).
fn access_log() -> AccessLog {
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
async fn observe(State(app): State<Arc<App>>, request: Request, next: axum::middleware::Next) -> Response {
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

/// A request body in memory, with its share of `body_bytes_in_flight_max`
/// (given back when dropped).
pub(crate) struct HeldBody {
    pub(crate) bytes: Bytes,
    _budget: tokio::sync::OwnedSemaphorePermit,
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than body_bytes_max = {max} bytes"),
    )
}

/// Reads the whole body: refuses (413) a body over `body_bytes_max` before
/// reading it when its length says so; reserves its bytes from
/// `body_bytes_in_flight_max` first (503 `overloaded` when the budget is
/// spent); gives up (408) after `body_read_timeout_ms`.
async fn body(app: &App, headers: &HeaderMap, body: Body) -> Result<HeldBody, ApiError> {
    let max = app.limits.body_bytes_max;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if declared.is_some_and(|length: usize| length > max) {
        return Err(too_large(max));
    }
    let reserve = u32::try_from(declared.unwrap_or(max).max(1)).unwrap_or(u32::MAX);
    let budget = app.body_budget.clone().try_acquire_many_owned(reserve).map_err(|_| ApiError {
        retry_after_s: Some(1),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "request bodies in memory are at body_bytes_in_flight_max = {} bytes; retry",
                app.limits.body_bytes_in_flight_max
            ),
        )
    })?;
    let timeout = Duration::from_millis(app.limits.body_read_timeout_ms);
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, max)).await {
        Ok(Ok(bytes)) => Ok(HeldBody { bytes, _budget: budget }),
        Ok(Err(_)) if declared.is_none() => Err(too_large(max)),
        Ok(Err(error)) => Err(ApiError::bad_request("body_unreadable", format!("the request body: {error}"))),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body did not arrive within body_read_timeout_ms = {} ms", timeout.as_millis()),
        )),
    }
}

/// Parses a JSON object (a positional array is refused even where serde
/// would read it as a struct), naming the path of the first bad field.
fn parse_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => parse(bytes),
        Some(_) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
            "a signed event is a JSON object {\"event\", \"signature\", \"id\"}, not an array or a scalar",
        )),
    }
}

/// Parses JSON naming the path of the first bad field. A struct given as a
/// positional array is refused at any depth (`strict`).
fn parse<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let strict = crate::strict::Strict(&mut deserializer);
    let parsed = serde_path_to_error::deserialize(strict).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let (status, code) = if inner.is_syntax() || inner.is_eof() {
            (StatusCode::BAD_REQUEST, "malformed_json")
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event")
        };
        let field = (path != ".").then_some(path);
        let message = match &field {
            Some(field) => format!("field {field}: {inner}"),
            None => inner.to_string(),
        };
        ApiError { field, ..ApiError::new(status, code, message) }
    })?;
    // Trailing characters after the value are malformed JSON, as serde_json::from_slice says.
    deserializer.end().map_err(|error| ApiError::bad_request("malformed_json", error.to_string()))?;
    Ok(parsed)
}

/// Whether the request carries the wire form (`application/octet-stream`) rather than JSON.
fn is_wire(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"))
}

use docket_model::signed::WIRE_SIZE_BYTES_MAX as WIRE_BYTES_MAX;

/// Splits a wire-form batch: each event's wire form after its length (u32, big-endian).
fn wire_batch(bytes: &[u8]) -> Result<Vec<&[u8]>, ApiError> {
    let mut events = vec![];
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((length, tail)) = rest.split_first_chunk::<4>() else {
            return Err(ApiError::bad_request("malformed_wire", format!("event {}: a truncated length", events.len())));
        };
        let length = u32::from_be_bytes(*length) as usize;
        if length > WIRE_BYTES_MAX || length > tail.len() {
            return Err(ApiError::bad_request(
                "malformed_wire",
                format!("event {}: length {length} is past the body or over {WIRE_BYTES_MAX}", events.len()),
            ));
        }
        events.push(&tail[..length]);
        rest = &tail[length..];
    }
    Ok(events)
}

fn receipt_json(receipt: &Receipt) -> Value {
    json!({
        "seq": receipt.seq,
        "id": receipt.id.to_string(),
        "leaf_index": receipt.leaf_index,
        "system_time": receipt.system_time.to_string(),
    })
}

/// The rate-limit bucket of an event: its signing agency if the registry
/// knows it, or the registry itself. None for a name no agency has: the log
/// refuses it anyway, and forged names must not grow the limiter's map.
fn bucket_of(app: &App, event: &SignedEvent) -> Option<String> {
    match &event.event().signer {
        docket_model::Signer::Registry => Some("(registry)".into()),
        docket_model::Signer::Agency(agency) => {
            app.registry.current().agency(agency).is_some().then(|| agency.to_string())
        }
    }
}

fn rate_limited(message: String, wait_s: f64) -> ApiError {
    ApiError {
        retry_after_s: Some(wait_s.ceil().max(1.0) as u64),
        ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    }
}

/// Takes an append token from the bucket, or refuses with 429.
fn take_token(app: &App, bucket: &Option<String>) -> Result<(), ApiError> {
    let Some(signer) = bucket else { return Ok(()) };
    app.rate.take(signer).map_err(|wait| {
        app.metrics.append_outcome("rate_limited", Duration::ZERO);
        let per_s = app.limits.appends_per_agency_per_s;
        let retry_ms = (wait * 1000.0).ceil();
        rate_limited(
            format!("agency \"{signer}\" is over appends_per_agency_per_s = {per_s}; retry in {retry_ms:.0} ms"),
            wait,
        )
    })
}

/// The client address an append is counted against (its IP).
fn client_of(peer: Option<axum::Extension<Peer>>) -> String {
    peer.map_or_else(|| "unknown".to_owned(), |axum::Extension(Peer(ip))| ip.to_string())
}

/// Refuses a client that is over `replays_per_address_per_s` before its
/// body is even read: a flood of replays or forgeries costs one map lookup each.
fn check_replays(app: &App, client: &str) -> Result<(), ApiError> {
    app.replays.check(client).map_err(|wait| {
        app.metrics.append_outcome("rate_limited", Duration::ZERO);
        let per_s = app.limits.replays_per_address_per_s;
        rate_limited(
            format!("{client} sent too many appends without effect (duplicates or refusals); replays_per_address_per_s = {per_s}"),
            wait,
        )
    })
}

/// What an append keeps of its event while the sequencer has it.
struct Pending {
    id: docket_model::EventId,
    signature: docket_model::Signature,
    /// A registry event, applied to the acknowledged registry on its receipt.
    registry: Option<SignedEvent>,
    bucket: Option<String>,
    started: std::time::Instant,
}

impl Pending {
    fn of(app: &App, event: &SignedEvent, started: std::time::Instant) -> Self {
        let registry = matches!(event.event().signer, docket_model::Signer::Registry).then(|| event.clone());
        Self { id: event.id(), signature: *event.signature(), registry, bucket: bucket_of(app, event), started }
    }
}

/// Books the outcome of an append: metrics, refunds, the replay budget of
/// the client, the recent receipts and the acknowledged registry.
fn settle(
    app: &App,
    client: &str,
    pending: &Pending,
    appended: Result<Receipt, docket_log::AppendError>,
    size_before: u64,
    fresh: &mut std::collections::HashSet<u64>,
) -> Result<Receipt, ApiError> {
    let elapsed = pending.started.elapsed();
    match appended {
        Ok(receipt) => {
            // A receipt from before the request, or one this request already got, is a duplicate's.
            let duplicate = receipt.seq < size_before || !fresh.insert(receipt.seq);
            if duplicate {
                if let Some(bucket) = &pending.bucket {
                    app.rate.refund(bucket);
                }
                app.replays.spend(client);
                app.metrics.append_outcome("duplicate", elapsed);
            } else {
                app.metrics.append_outcome("appended", elapsed);
            }
            app.recent.insert(pending.id, pending.signature, receipt);
            if let Some(event) = &pending.registry {
                app.registry.apply(event, &receipt);
            }
            app.advance_head(receipt.seq + 1);
            Ok(receipt)
        }
        Err(error) => {
            if let Some(bucket) = &pending.bucket {
                app.rate.refund(bucket);
            }
            app.replays.spend(client);
            app.metrics.append_outcome("refused", elapsed);
            Err(ApiError::append(&error))
        }
    }
}

/// A replay of a recently acknowledged event: its receipt, with no
/// signature check and nothing spent but the client's replay budget.
fn replayed(app: &App, client: &str, event: &SignedEvent, started: std::time::Instant) -> Option<Receipt> {
    let receipt = app.recent.get(event.id(), event.signature())?;
    app.replays.spend(client);
    app.metrics.append_outcome("duplicate", started.elapsed());
    Some(receipt)
}

/// Appends one event; the receipt once it is durable. A duplicate gets the original receipt.
async fn append_one(app: &App, client: &str, event: SignedEvent) -> Result<Receipt, ApiError> {
    let started = std::time::Instant::now();
    if let Some(receipt) = replayed(app, client, &event, started) {
        return Ok(receipt);
    }
    let pending = Pending::of(app, &event, started);
    // Registry events are applied to the acknowledged registry in log order: one at a time.
    let _registry = match pending.registry {
        Some(_) => Some(app.registry.appending.lock().await),
        None => None,
    };
    take_token(app, &pending.bucket)?;
    let size_before = *app.head.borrow();
    let appended = app.sequencer.append(event).instrument(tracing::info_span!("sequencer")).await;
    settle(app, client, &pending, appended, size_before, &mut Default::default())
}

async fn append(
    State(app): State<Arc<App>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    let client = client_of(peer);
    check_replays(&app, &client)?;
    let held = body(&app, &headers, request).await?;
    let event = if is_wire(&headers) {
        SignedEvent::from_wire(&held.bytes).map_err(|e| ApiError::event(&e))
    } else {
        parse_object::<SignedJson>(&held.bytes)
            .and_then(|json| SignedEvent::from_json(json).map_err(|e| ApiError::event(&e)))
    };
    drop(held);
    let event = event.inspect_err(|_| {
        app.replays.spend(&client);
        app.metrics.append_outcome("refused", Duration::ZERO);
    })?;
    note_signer(&event);
    let receipt = append_one(&app, &client, event).await?;
    Ok(Json(receipt_json(&receipt)))
}

/// Puts the signing agency into the request's span (the access log's `agency`).
fn note_signer(event: &SignedEvent) {
    if let docket_model::Signer::Agency(agency) = &event.event().signer {
        tracing::Span::current().record("agency", agency.as_str());
    }
}

/// The events of a batch body, each parsed or refused on its own.
fn batch_events(app: &App, headers: &HeaderMap, bytes: &[u8]) -> Result<Vec<Result<SignedEvent, ApiError>>, ApiError> {
    let events: Vec<Result<SignedEvent, ApiError>> = if is_wire(headers) {
        wire_batch(bytes)?
            .into_iter()
            .map(|wire| SignedEvent::from_wire(wire).map_err(|e| ApiError::event(&e)))
            .collect()
    } else {
        let events: Vec<&serde_json::value::RawValue> = parse(bytes)?;
        events
            .into_iter()
            .map(|raw| parse_object::<SignedJson>(raw.get().as_bytes()))
            .map(|json| json.and_then(|json| SignedEvent::from_json(json).map_err(|e| ApiError::event(&e))))
            .collect()
    };
    let max = app.limits.batch_events_max;
    if events.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("{} events; batch_events_max = {max}", events.len()),
        ));
    }
    Ok(events)
}

type ReceiptFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Receipt, docket_log::AppendError>> + Send>>;

/// One event of a batch on its way: answered already, or waiting for the sequencer.
enum Step {
    Done(Result<Receipt, ApiError>),
    Waiting(Box<Pending>, ReceiptFuture),
}

/// Appends a batch: the events are queued in order, so they are sequenced in
/// that order and share group commits; each gets its own result (a receipt,
/// or its refusal, which does not stop the others: an event that depends on a
/// refused one is refused in turn). The status is 200 if every event was
/// appended, else 207 (multi-status).
async fn append_batch(
    State(app): State<Arc<App>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let client = client_of(peer);
    check_replays(&app, &client)?;
    let held = body(&app, &headers, request).await?;
    let events = batch_events(&app, &headers, &held.bytes).inspect_err(|_| app.replays.spend(&client))?;
    drop(held);
    let any_registry = events.iter().flatten().any(|e| matches!(e.event().signer, docket_model::Signer::Registry));
    let _registry = match any_registry {
        true => Some(app.registry.appending.lock().await),
        false => None,
    };
    let size_before = *app.head.borrow();
    let mut steps = Vec::with_capacity(events.len());
    for event in events {
        steps.push(submit(&app, &client, event).await);
    }
    let mut results = Vec::with_capacity(steps.len());
    let mut fresh = std::collections::HashSet::new();
    let mut all_appended = true;
    for (index, step) in steps.into_iter().enumerate() {
        let outcome = match step {
            Step::Done(outcome) => outcome,
            Step::Waiting(pending, receipt) => settle(&app, &client, &pending, receipt.await, size_before, &mut fresh),
        };
        match outcome {
            Ok(receipt) => results.push(json!({ "receipt": receipt_json(&receipt) })),
            Err(mut error) => {
                all_appended = false;
                error.message = format!("event {index}: {}", error.message);
                results.push(error.body());
            }
        }
    }
    let status = if all_appended { StatusCode::OK } else { StatusCode::MULTI_STATUS };
    Ok((status, Json(json!({ "results": results }))).into_response())
}

/// Queues one event of a batch (or answers it: a replay, a parse refusal, a rate limit).
async fn submit(app: &App, client: &str, event: Result<SignedEvent, ApiError>) -> Step {
    let started = std::time::Instant::now();
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            app.replays.spend(client);
            app.metrics.append_outcome("refused", Duration::ZERO);
            return Step::Done(Err(error));
        }
    };
    if let Some(receipt) = replayed(app, client, &event, started) {
        return Step::Done(Ok(receipt));
    }
    let pending = Pending::of(app, &event, started);
    if let Err(error) = take_token(app, &pending.bucket) {
        return Step::Done(Err(error));
    }
    match app.sequencer.submit(event).await {
        Ok(receipt) => Step::Waiting(Box::new(pending), Box::pin(receipt)),
        Err(error) => Step::Done(settle(app, client, &pending, Err(error), 0, &mut Default::default())),
    }
}

/// One record of the log, by seq.
async fn event_at(
    State(app): State<Arc<App>>,
    PathParam(seq): PathParam<u64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let scope = authenticate(&app, &method, &uri, &headers)?;
    if seq >= *app.head.borrow() {
        return Err(ApiError::not_found(format!("seq {seq}: the log has {} records", *app.head.borrow())));
    }
    let page = feed::read(&app, seq, 1, &feed::Filter::within(scope)).await?;
    page.events.into_iter().next().map(Json).ok_or_else(|| {
        crate::policy::forbidden(format!(
            "seq {seq} is outside the reader's scope: not a registry event, not its own, not on a list it follows"
        ))
    })
}

/// The read policy of the signed views (API.md, "Who may read"): `agency`
/// names the reader, `list` one it designates; without `agency`, the list
/// view is the reader's own. Oversight reads any.
fn view_policy(app: &App, scope: &crate::policy::Scope, view: &str, params: &mut ViewParams) -> Result<(), ApiError> {
    if let (Some(owner), "list" | "enforcement" | "check") = (params.agency.as_deref(), view) {
        scope.own(owner, "agency", &format!("the {view} view"))?;
    }
    if view != "list" {
        return Ok(());
    }
    if params.agency.is_none() && !scope.oversight {
        params.agency = Some(scope.agency.to_string());
    }
    // An unknown list is a 404 from the view itself; the registry is public.
    let known = |list: &str| Name::parse(list).is_ok_and(|list| app.registry.current().list(&list).is_some());
    match params.list.as_deref() {
        Some(list) if known(list) => scope.designates(list),
        _ => Ok(()),
    }
}

/// Query parameters of the views.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ViewParams {
    agency: Option<String>,
    list: Option<String>,
    subject: Option<String>,
    measure: Option<String>,
    /// A seq (inclusive) or a time: what the ledger held then.
    as_of: Option<String>,
    /// What was in force then.
    valid_at: Option<String>,
    /// Wait (up to `projection_wait_ms_max`) until the projections include this seq.
    min_seq: Option<u64>,
}

fn required<'a>(value: &'a Option<String>, parameter: &str, view: &str) -> Result<&'a str, ApiError> {
    value.as_deref().ok_or_else(|| ApiError {
        field: Some(parameter.into()),
        ..ApiError::bad_request("missing_parameter", format!("the {view} view needs {parameter}"))
    })
}

/// `/v1/views/{list,enforcement,subject,public,check,registry}`.
async fn view(
    State(app): State<Arc<App>>,
    PathParam(view): PathParam<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Params(mut params): Params<ViewParams>,
) -> Result<Response, ApiError> {
    const VIEWS: [&str; 6] = ["list", "enforcement", "subject", "public", "check", "registry"];
    if !VIEWS.contains(&view.as_str()) {
        return Err(ApiError::not_found(format!("no view {view:?}; the views are {}", VIEWS.join(", "))));
    }
    // The public list and the registry are open; every other view is for registered agencies.
    if !matches!(view.as_str(), "public" | "registry") {
        let scope = authenticate(&app, &method, &uri, &headers)?;
        view_policy(&app, &scope, &view, &mut params)?;
    }
    if let Some(seq) = params.min_seq {
        wait_for_projection(&app, seq).await?;
    }
    let worker = app.clone();
    let cheap = view == "check";
    let compute = move || -> Result<(Value, u64), ApiError> {
        let store = &worker.store;
        let as_of = query::resolve(store, params.as_of.as_deref(), params.valid_at.as_deref())?;
        let name = |value: &Option<String>, parameter: &str| -> Result<Option<docket_model::Name>, QueryError> {
            value.as_deref().map(|v| query::name(parameter, v)).transpose()
        };
        let agency = name(&params.agency, "agency")?;
        let list = name(&params.list, "list")?;
        let value = match view.as_str() {
            "list" => json!(views::list_view(store, as_of, agency.as_ref(), list.as_ref())?),
            "enforcement" => {
                let agency = query::name("agency", required(&params.agency, "agency", "enforcement")?)?;
                json!(views::enforcement_view(store, as_of, &agency)?)
            }
            "subject" => {
                let subject = query::parse_subject("subject", required(&params.subject, "subject", "subject")?)?;
                json!(views::subject_view(store, as_of, &subject)?)
            }
            "public" => json!(views::public_view(store, as_of, list.as_ref())?),
            "check" => {
                let subject = query::parse_subject("subject", required(&params.subject, "subject", "check")?)?;
                let measure = query::name("measure", required(&params.measure, "measure", "check")?)?;
                json!(views::check(store, as_of, &subject, &measure, agency.as_ref())?)
            }
            "registry" => json!(views::registry_view(store, as_of)?),
            other => {
                return Err(ApiError::not_found(format!(
                    "no view {other:?}; the views are list, enforcement, subject, public, check, registry"
                )))
            }
        };
        Ok((value, store.records()))
    };
    // A point check reads one subject's cases (tens of microseconds, from
    // the page cache): handing it to the blocking pool would cost more than
    // it does. The other views can read a whole list and go to the pool.
    let (value, watermark) = if cheap {
        compute()?
    } else {
        tokio::task::spawn_blocking(compute).await.map_err(|e| ApiError::internal(e.to_string()))??
    };
    let mut response = Json(value).into_response();
    response.headers_mut().insert("docket-watermark", HeaderValue::from(watermark));
    Ok(response)
}

/// Parameters of `/v1/audit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    list: Option<String>,
    agency: Option<String>,
    as_of: Option<String>,
    valid_at: Option<String>,
    /// Findings to skip, and to return at most (default 1,000; at most `AUDIT_PAGE_MAX`).
    offset: Option<usize>,
    limit: Option<usize>,
}

/// Most findings in one audit page.
pub(crate) const AUDIT_PAGE_MAX: usize = 10_000;

/// The due-process audit (bundled rule sets and calendar), a page of its findings.
async fn audit(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Params(mut params): Params<AuditParams>,
) -> Result<Json<Value>, ApiError> {
    let reader = authenticate(&app, &method, &uri, &headers)?;
    // An agency reads the findings on the lists it designates, or those where
    // it had to act (the default); oversight reads them all.
    let known = |list: &str| Name::parse(list).is_ok_and(|list| app.registry.current().list(&list).is_some());
    match (params.agency.as_deref(), params.list.as_deref()) {
        (Some(agency), _) => reader.own(agency, "agency", "the audit")?,
        (None, Some(list)) if known(list) => reader.designates(list)?,
        (None, _) if !reader.oversight => params.agency = Some(reader.agency.to_string()),
        (None, _) => {}
    }
    let worker = app.clone();
    tokio::task::spawn_blocking(move || -> Result<Json<Value>, ApiError> {
        let store = &worker.store;
        let as_of = query::resolve(store, params.as_of.as_deref(), params.valid_at.as_deref())?;
        let scope = docket_audit::audit::Scope {
            list: params.list.as_deref().map(|l| query::name("list", l)).transpose()?,
            agency: params.agency.as_deref().map(|a| query::name("agency", a)).transpose()?,
        };
        let (offset, limit) = (params.offset.unwrap_or(0), params.limit.unwrap_or(1000).min(AUDIT_PAGE_MAX));
        let mut total = 0usize;
        let mut page = vec![];
        let report = docket_audit::audit::audit_each(
            store,
            as_of,
            &scope,
            &worker.rule_sets,
            &worker.calendar,
            &mut |finding| {
                if total >= offset && page.len() < limit {
                    page.push(finding);
                }
                total += 1;
            },
        )
        .map_err(|e| match e {
            docket_audit::audit::AuditError::UnknownList(list) => {
                ApiError::not_found(format!("list \"{list}\" is not defined"))
            }
            other => ApiError::internal(other.to_string()),
        })?;
        let mut value = json!(report);
        value["findings"] = json!(page);
        value["total_findings"] = json!(total);
        value["offset"] = json!(offset);
        Ok(Json(value))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

/// Parameters of `/v1/delta`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeltaParams {
    /// The cursor of the last delta (0: from an empty list).
    cursor: Option<u64>,
    list: Option<String>,
}

/// Changes to the public list since a cursor, for integrators who keep a
/// copy: ADD, MOD and DEL of entries (keyed by list and case number). The old
/// side is the public list as the ledger held it before `cursor`, in force
/// when that record was made; the new side is the list through the
/// projections' watermark, in force now. So the delta carries both what was
/// recorded since and what time did (a term that ran out is a DEL).
async fn delta(State(app): State<Arc<App>>, Params(params): Params<DeltaParams>) -> Result<Json<Value>, ApiError> {
    let worker = app.clone();
    tokio::task::spawn_blocking(move || -> Result<Json<Value>, ApiError> {
        let store = &worker.store;
        let list = params.list.as_deref().map(|l| query::name("list", l)).transpose()?;
        let records = store.records();
        let cursor = params.cursor.unwrap_or(0);
        if cursor > records {
            return Err(ApiError {
                field: Some("cursor".into()),
                ..ApiError::bad_request(
                    "bad_parameter",
                    format!("cursor {cursor}: the projections hold {records} records"),
                )
            });
        }
        let now = docket_model::Timestamp::now();
        let entries = |known: docket_fold::Known, valid_at| -> Result<Vec<views::PublicEntry>, ApiError> {
            Ok(views::public_view(store, docket_fold::AsOf { known, valid_at }, list.as_ref())?.entries)
        };
        let old = match cursor {
            0 => vec![],
            _ => {
                let then = store.time_of(cursor - 1)?.unwrap_or(now);
                entries(docket_fold::Known::Through(cursor - 1), then)?
            }
        };
        let new = match records {
            0 => vec![],
            _ => entries(docket_fold::Known::Through(records - 1), now)?,
        };
        let key = |e: &views::PublicEntry| (e.list.to_string(), e.number.to_string());
        let before: std::collections::BTreeMap<_, _> = old.iter().map(|e| (key(e), e)).collect();
        let after: std::collections::BTreeMap<_, _> = new.iter().map(|e| (key(e), e)).collect();
        let mut changes = vec![];
        for (k, entry) in &after {
            match before.get(k) {
                None => changes.push(json!({"op": "ADD", "entry": entry})),
                Some(previous) if previous != entry => changes.push(json!({"op": "MOD", "entry": entry})),
                Some(_) => {}
            }
        }
        for (k, entry) in &before {
            if !after.contains_key(k) {
                changes.push(json!({"op": "DEL", "entry": entry}));
            }
        }
        Ok(Json(json!({"from": cursor, "cursor": records, "valid_at": now.to_string(), "changes": changes})))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

/// Waits until the projections include `seq`, or refuses after `projection_wait_ms_max`.
async fn wait_for_projection(app: &App, seq: u64) -> Result<(), ApiError> {
    let head = *app.head.borrow();
    if seq >= head {
        return Err(ApiError::bad_request("bad_parameter", format!("min_seq {seq}: the log has {head} records")));
    }
    let mut projected = app.projected.subscribe();
    let wait = Duration::from_millis(app.limits.projection_wait_ms_max);
    let reached = tokio::time::timeout(wait, projected.wait_for(|next| *next > seq)).await;
    match reached {
        Ok(Ok(_)) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "projection_behind",
            format!("the projections did not reach seq {seq} within {} ms", wait.as_millis()),
        )),
    }
}

/// The latest signed checkpoint note, as the checkpointer wrote it.
async fn latest_checkpoint(app: &App) -> Result<String, ApiError> {
    let path = docket_log::ledger::Paths::new(&app.dir).latest_checkpoint();
    tokio::fs::read_to_string(path).await.map_err(|_| ApiError::not_found("no checkpoint yet"))
}

/// A session for the agency that signed the request: its reads may carry the
/// token in `docket-session` instead of a signature until it expires.
async fn session(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (agency, token, expires) = crate::auth::open_session(&app, &method, &uri, &headers)?;
    let body = json!({"agency": agency, "token": token, "expires_at": expires});
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The latest signed checkpoint (C2SP tlog-checkpoint), with the witnesses'
/// cosignatures of it that the server holds.
async fn checkpoint(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let mut text = latest_checkpoint(&app).await?;
    if let Ok(lines) = tokio::fs::read_to_string(cosigned_path(&app, &text)?).await {
        text.push_str(&lines);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], text)
        .into_response())
}

/// The body of a checkpoint note the server signed.
fn checkpoint_body(note: &str) -> Result<(&str, docket_log::note::Checkpoint), ApiError> {
    let (text, _) = docket_log::note::parse(note).map_err(|e| ApiError::internal(format!("latest checkpoint: {e}")))?;
    let checkpoint =
        docket_log::note::Checkpoint::parse(text).map_err(|e| ApiError::internal(format!("latest checkpoint: {e}")))?;
    Ok((text, checkpoint))
}

/// Where the cosignature lines of a checkpoint are kept: by its size.
fn cosigned_path(app: &App, note: &str) -> Result<std::path::PathBuf, ApiError> {
    let (_, checkpoint) = checkpoint_body(note)?;
    Ok(docket_log::ledger::Paths::new(&app.dir).cosignatures(checkpoint.size))
}

/// `POST /v1/cosignatures`: the latest checkpoint with witness cosignature
/// lines (C2SP tlog-cosignature v1) added. Lines by configured witnesses are
/// verified and kept; others are ignored.
async fn cosignatures(State(app): State<Arc<App>>, headers: HeaderMap, request: Body) -> Result<Json<Value>, ApiError> {
    let held = body(&app, &headers, request).await?;
    let note = std::str::from_utf8(&held.bytes)
        .map_err(|_| ApiError::bad_request("malformed_note", "the note is not UTF-8"))?;
    let (text, lines) =
        docket_log::note::parse(note).map_err(|e| ApiError::bad_request("malformed_note", e.to_string()))?;
    let latest = latest_checkpoint(&app).await?;
    let (latest_text, _) = checkpoint_body(&latest)?;
    if text != latest_text {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "stale_checkpoint",
            "the cosigned checkpoint is not the latest; fetch /v1/checkpoint and cosign that",
        ));
    }
    let mut accepted = vec![];
    let mut lines_kept = vec![];
    // The signature block follows the text and a blank line, one line per parsed signature.
    let raw_lines: Vec<&str> = note[text.len() + 1..].lines().collect();
    for (line, raw) in lines.iter().zip(raw_lines) {
        let Some(witness) = app.witnesses.iter().find(|w| w.name == line.name && w.key_id() == line.key_id) else {
            continue;
        };
        docket_log::note::verify_cosignature(text, witness, line)
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
        lines_kept.push((witness.name.clone(), raw.to_owned()));
        accepted.push(witness.name.clone());
    }
    if accepted.is_empty() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "unknown_witness", "no line is by a configured witness"));
    }
    let (_, checkpoint) = checkpoint_body(&latest)?;
    let paths = docket_log::ledger::Paths::new(&app.dir);
    tokio::task::spawn_blocking(move || docket_log::ledger::add_cosignatures(&paths, checkpoint.size, &lines_kept))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({"accepted": accepted})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionParams {
    seq: u64,
    /// Tree size (default: the latest checkpoint's).
    size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyParams {
    old: u64,
    /// New tree size (default: the latest checkpoint's).
    new: Option<u64>,
}

/// The tree for a proof at `size` (default: the latest checkpoint's). The
/// tree is the writer's own, which holds every durable record.
async fn proof_tree(
    app: &Arc<App>,
    size: Option<u64>,
) -> Result<(std::sync::RwLockReadGuard<'_, docket_log::Tree>, u64), ApiError> {
    let size = match size {
        Some(size) => size,
        None => checkpoint_body(&latest_checkpoint(app).await?)?.1.size,
    };
    let tree = app.tree.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    if size > tree.size() {
        return Err(proof_error(format!("size {size}: the tree has {} records", tree.size())));
    }
    Ok((tree, size))
}

fn proof_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("bad_parameter", error.to_string())
}

/// An RFC 6962 inclusion proof of record `seq` in the tree of `size` records.
async fn inclusion(
    State(app): State<Arc<App>>,
    Params(params): Params<InclusionParams>,
) -> Result<Json<Value>, ApiError> {
    let (tree, size) = proof_tree(&app, params.size).await?;
    let proof = tree.inclusion_proof(params.seq, size).map_err(proof_error)?;
    let root = tree.root(size).ok_or_else(|| proof_error(format!("size {size}")))?;
    let leaf = tree
        .leaf(params.seq, size)
        .ok_or_else(|| proof_error(format!("seq {} is not below size {size}", params.seq)))?;
    Ok(Json(json!({
        "leaf_index": params.seq,
        "tree_size": size,
        "leaf_hash": hex::encode(leaf),
        "root": hex::encode(root),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

/// An RFC 6962 consistency proof between tree sizes `old` and `new`.
async fn consistency(
    State(app): State<Arc<App>>,
    Params(params): Params<ConsistencyParams>,
) -> Result<Json<Value>, ApiError> {
    let (tree, new) = proof_tree(&app, params.new).await?;
    let proof = tree.consistency_proof(params.old, new).map_err(proof_error)?;
    let old_root = tree.root(params.old).ok_or_else(|| proof_error(format!("old {}", params.old)))?;
    let new_root = tree.root(new).ok_or_else(|| proof_error(format!("new {new}")))?;
    Ok(Json(json!({
        "old_size": params.old,
        "new_size": new,
        "old_root": hex::encode(old_root),
        "new_root": hex::encode(new_root),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

/// C2SP tlog-tiles: `/tile/<L>/<N>[.p/<W>]`. Full tiles never change.
async fn tile(State(app): State<Arc<App>>, PathParam(path): PathParam<String>) -> Result<Response, ApiError> {
    let Some(file) = docket_log::ledger::Paths::new(&app.dir).tile(&path) else {
        return Err(ApiError::bad_request("bad_path", format!("tile path {path:?}")));
    };
    let bytes = tokio::fs::read(&file).await.map_err(|_| ApiError::not_found(format!("tile {path}")))?;
    let cache = if path.contains(".p/") { "no-cache" } else { "public, max-age=31536000, immutable" };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, cache)], bytes).into_response())
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
async fn metrics(State(app): State<Arc<App>>) -> Response {
    let (head, projected) = (*app.head.borrow(), *app.projected.borrow());
    let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    app.metrics.log_records.set(gauge(head));
    app.metrics.projected_records.set(gauge(projected));
    app.metrics.projection_lag_records.set(gauge(head.saturating_sub(projected)));
    let ready = crate::health::checks(&app).iter().all(|check| check.ok);
    app.metrics.ready.set(i64::from(ready));
    app.metrics.set_log(&app.log_health(), app.cut_on_open);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.encode())
        .into_response()
}
