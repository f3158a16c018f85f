//! The router and the handlers other than the feed.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use docket_fold::query::{self, QueryError};
use docket_fold::views;
use docket_log::Receipt;
use docket_model::{SignedEvent, SignedJson};

use crate::auth::{authenticate, only_for};
use crate::error::ApiError;
use crate::feed;
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
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(app.clone(), count_requests))
        .with_state(app)
}

async fn count_requests(State(app): State<Arc<App>>, request: Request, next: axum::middleware::Next) -> Response {
    app.count(&app.metrics.requests);
    next.run(request).await
}

/// Reads the whole body, refusing more than `body_bytes_max` with a JSON 413.
async fn body(app: &App, body: Body) -> Result<Bytes, ApiError> {
    let max = app.limits.body_bytes_max;
    axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than body_bytes_max = {max} bytes"),
        )
    })
}

/// Parses JSON naming the path of the first bad field.
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
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
    })
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
            app.store.current_registry().agency(agency).is_some().then(|| agency.to_string())
        }
    }
}

/// Gives back the token of a refused append.
fn refund(app: &App, bucket: &Option<String>) {
    if let Some(bucket) = bucket {
        app.rate.refund(bucket);
    }
}

/// Takes an append token from the bucket, or refuses with 429.
fn take_token(app: &App, bucket: &Option<String>) -> Result<(), ApiError> {
    let Some(signer) = bucket else { return Ok(()) };
    app.rate.take(signer).map_err(|wait| {
        app.count(&app.metrics.refused);
        let retry_after_s = Some(wait.ceil().max(1.0) as u64);
        ApiError {
            retry_after_s,
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "agency \"{signer}\" is over appends_per_agency_per_s = {}; retry in {:.0} ms",
                    app.limits.appends_per_agency_per_s,
                    (wait * 1000.0).ceil()
                ),
            )
        }
    })
}

/// Appends one event; the receipt once it is durable. A duplicate gets the original receipt.
async fn append_one(app: &App, event: SignedEvent) -> Result<Receipt, ApiError> {
    let size_before = *app.head.borrow();
    let bucket = bucket_of(app, &event);
    take_token(app, &bucket)?;
    let appended = app.sequencer.append(event).await;
    if appended.is_err() {
        refund(app, &bucket);
    }
    match appended {
        Ok(receipt) => {
            if receipt.seq < size_before {
                app.count(&app.metrics.duplicates);
            } else {
                app.count(&app.metrics.appended);
            }
            app.advance_head(receipt.seq + 1);
            Ok(receipt)
        }
        Err(error) => {
            app.count(&app.metrics.refused);
            Err(ApiError::append(&error))
        }
    }
}

async fn append(State(app): State<Arc<App>>, headers: HeaderMap, request: Body) -> Result<Json<Value>, ApiError> {
    let bytes = body(&app, request).await?;
    let event = if is_wire(&headers) {
        SignedEvent::from_wire(&bytes).map_err(|e| ApiError::event(&e))
    } else {
        parse::<SignedJson>(&bytes).and_then(|json| SignedEvent::from_json(json).map_err(|e| ApiError::event(&e)))
    }
    .inspect_err(|_| app.count(&app.metrics.refused))?;
    let receipt = append_one(&app, event).await?;
    Ok(Json(receipt_json(&receipt)))
}

/// Appends a batch: the events are queued in order, so they are sequenced in
/// that order and share group commits; each gets its own result (a receipt,
/// or its refusal, which does not stop the others: an event that depends on a
/// refused one is refused in turn). The status is 200 if every event was
/// appended, else 207 (multi-status).
async fn append_batch(State(app): State<Arc<App>>, headers: HeaderMap, request: Body) -> Result<Response, ApiError> {
    let bytes = body(&app, request).await?;
    let events: Vec<Result<SignedEvent, ApiError>> = if is_wire(&headers) {
        wire_batch(&bytes)?
            .into_iter()
            .map(|wire| SignedEvent::from_wire(wire).map_err(|e| ApiError::event(&e)))
            .collect()
    } else {
        let events: Vec<SignedJson> = parse(&bytes).inspect_err(|_| app.count(&app.metrics.refused))?;
        events.into_iter().map(|json| SignedEvent::from_json(json).map_err(|e| ApiError::event(&e))).collect()
    };
    let max = app.limits.batch_events_max;
    if events.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("{} events; batch_events_max = {max}", events.len()),
        ));
    }
    let size_before = *app.head.borrow();
    let mut pending = Vec::with_capacity(events.len());
    for event in events {
        let event = event.and_then(|event| {
            let bucket = bucket_of(&app, &event);
            take_token(&app, &bucket).map(|()| (event, bucket))
        });
        match event {
            Ok((event, bucket)) => match app.sequencer.submit(event).await {
                Ok(receipt) => pending.push(Ok((receipt, bucket))),
                Err(error) => {
                    refund(&app, &bucket);
                    pending.push(Err(ApiError::append(&error)));
                }
            },
            Err(error) => pending.push(Err(error)),
        }
    }
    let mut results = Vec::with_capacity(pending.len());
    let mut seen = std::collections::HashSet::new();
    let mut all_appended = true;
    for (index, outcome) in pending.into_iter().enumerate() {
        let outcome = match outcome {
            Ok((receipt, bucket)) => receipt.await.map_err(|error| {
                refund(&app, &bucket);
                ApiError::append(&error)
            }),
            Err(error) => Err(error),
        };
        match outcome {
            Ok(receipt) => {
                // A receipt from before the batch, or one this batch already got, is a duplicate's.
                let duplicate = receipt.seq < size_before || !seen.insert(receipt.seq);
                let counter = if duplicate { &app.metrics.duplicates } else { &app.metrics.appended };
                app.count(counter);
                app.advance_head(receipt.seq + 1);
                results.push(json!({ "receipt": receipt_json(&receipt) }));
            }
            Err(mut error) => {
                app.count(&app.metrics.refused);
                all_appended = false;
                error.message = format!("event {index}: {}", error.message);
                results.push(error.body());
            }
        }
    }
    let status = if all_appended { StatusCode::OK } else { StatusCode::MULTI_STATUS };
    Ok((status, Json(json!({ "results": results }))).into_response())
}

/// One record of the log, by seq.
async fn event_at(
    State(app): State<Arc<App>>,
    Path(seq): Path<u64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authenticate(&app, &method, &uri, &headers)?;
    if seq >= *app.head.borrow() {
        return Err(ApiError::not_found(format!("seq {seq}: the log has {} records", *app.head.borrow())));
    }
    let page = feed::read(&app, seq, 1, &feed::Filter::default()).await?;
    page.events.into_iter().next().map(Json).ok_or_else(|| ApiError::not_found(format!("seq {seq}")))
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
    Path(view): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Params(params): Params<ViewParams>,
) -> Result<Response, ApiError> {
    const VIEWS: [&str; 6] = ["list", "enforcement", "subject", "public", "check", "registry"];
    if !VIEWS.contains(&view.as_str()) {
        return Err(ApiError::not_found(format!("no view {view:?}; the views are {}", VIEWS.join(", "))));
    }
    // The public list and the registry are open; every other view is for registered agencies.
    if !matches!(view.as_str(), "public" | "registry") {
        let reader = authenticate(&app, &method, &uri, &headers)?;
        match (view.as_str(), params.agency.as_deref()) {
            ("enforcement", Some(owner)) => only_for(&reader, owner, "enforcement")?,
            ("list", Some(owner)) => only_for(&reader, owner, "list")?,
            _ => {}
        }
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
    Params(params): Params<AuditParams>,
) -> Result<Json<Value>, ApiError> {
    authenticate(&app, &method, &uri, &headers)?;
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
    let path = docket_log::ledger::Paths { dir: app.dir.clone() }.latest_checkpoint();
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
    Ok(docket_log::ledger::Paths { dir: app.dir.clone() }
        .checkpoints()
        .join("cosigned")
        .join(checkpoint.size.to_string()))
}

/// `POST /v1/cosignatures`: the latest checkpoint with witness cosignature
/// lines (C2SP tlog-cosignature v1) added. Lines by configured witnesses are
/// verified and kept; others are ignored.
async fn cosignatures(State(app): State<Arc<App>>, request: Body) -> Result<Json<Value>, ApiError> {
    let bytes = body(&app, request).await?;
    let note =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("malformed_note", "the note is not UTF-8"))?;
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
    let mut kept = std::collections::BTreeMap::new();
    let path = cosigned_path(&app, &latest)?;
    if let Ok(existing) = tokio::fs::read_to_string(&path).await {
        for line in existing.lines() {
            let name = line.trim_start_matches("— ").split(' ').next().unwrap_or_default().to_owned();
            kept.insert(name, format!("{line}\n"));
        }
    }
    // The signature block follows the text and a blank line, one line per parsed signature.
    let raw_lines: Vec<&str> = note[text.len() + 1..].lines().collect();
    for (line, raw) in lines.iter().zip(raw_lines) {
        let Some(witness) = app.witnesses.iter().find(|w| w.name == line.name && w.key_id() == line.key_id) else {
            continue;
        };
        docket_log::note::verify_cosignature(text, witness, line)
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
        kept.insert(witness.name.clone(), format!("{raw}\n"));
        accepted.push(witness.name.clone());
    }
    if accepted.is_empty() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "unknown_witness", "no line is by a configured witness"));
    }
    let all: String = kept.into_values().collect();
    let dir = path.parent().map(std::path::Path::to_owned).unwrap_or_default();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        docket_log::ledger::write_atomic(&path, all.as_bytes()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(ApiError::internal)?;
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

/// The tree for a proof at `size` (default: the latest checkpoint's),
/// extended first if the log has the records but the tree does not follow
/// yet (a checkpoint can be signed a moment before the tree catches up).
async fn proof_tree(
    app: &Arc<App>,
    size: Option<u64>,
) -> Result<(std::sync::RwLockReadGuard<'_, docket_log::tree::Tree>, u64), ApiError> {
    let size = match size {
        Some(size) => size,
        None => checkpoint_body(&latest_checkpoint(app).await?)?.1.size,
    };
    let behind = app.tree.read().unwrap_or_else(std::sync::PoisonError::into_inner).size() < size;
    if behind && size <= *app.head.borrow() {
        let worker = app.clone();
        tokio::task::spawn_blocking(move || worker.extend_tree(size))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
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
        .tile(0, params.seq / docket_log::tree::TILE_WIDTH, size)
        .and_then(|tile| tile.get((params.seq % docket_log::tree::TILE_WIDTH) as usize).copied())
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
async fn tile(State(app): State<Arc<App>>, Path(path): Path<String>) -> Result<Response, ApiError> {
    let valid = path
        .split('/')
        .all(|part| !part.is_empty() && part != ".." && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
    if !valid {
        return Err(ApiError::bad_request("bad_path", format!("tile path {path:?}")));
    }
    let file = app.dir.join("tiles/tile").join(&path);
    let bytes = tokio::fs::read(&file).await.map_err(|_| ApiError::not_found(format!("tile {path}")))?;
    let cache = if path.contains(".p/") { "no-cache" } else { "public, max-age=31536000, immutable" };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, cache)], bytes).into_response())
}

async fn ready(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!({"log_size": *app.head.borrow(), "projected": *app.projected.borrow()}))
}

/// Prometheus text format.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let m = &app.metrics;
    let text = format!(
        "# TYPE docket_http_requests_total counter\ndocket_http_requests_total {}\n\
         # TYPE docket_appends_total counter\ndocket_appends_total {}\n\
         # TYPE docket_duplicate_appends_total counter\ndocket_duplicate_appends_total {}\n\
         # TYPE docket_refused_appends_total counter\ndocket_refused_appends_total {}\n\
         # TYPE docket_feed_events_total counter\ndocket_feed_events_total {}\n\
         # TYPE docket_log_records gauge\ndocket_log_records {}\n\
         # TYPE docket_projected_records gauge\ndocket_projected_records {}\n",
        m.requests.load(Relaxed),
        m.appended.load(Relaxed),
        m.duplicates.load(Relaxed),
        m.refused.load(Relaxed),
        m.feed_events.load(Relaxed),
        *app.head.borrow(),
        *app.projected.borrow(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
