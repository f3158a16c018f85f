//! Appends: one event or a batch, JSON or the wire form, through the
//! sequencer, so a receipt means durable. Replays are answered from the
//! recent receipts; an agency's budget and a client's replay budget are
//! booked here.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tracing::Instrument;

use docket_log::Receipt;
use docket_model::{SignedEvent, SignedJson};

use super::extract::{body, is_wire, parse, parse_object, wire_batch};
use crate::error::ApiError;
use crate::net::Peer;
use crate::App;

/// A receipt as JSON.
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

/// `POST /v1/events`: appends one event (JSON, or the wire form); the receipt once durable.
pub(super) async fn append(
    State(app): State<Arc<App>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    app.writable()?;
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
pub(super) async fn append_batch(
    State(app): State<Arc<App>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    app.writable()?;
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
