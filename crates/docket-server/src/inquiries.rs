//! The inquiry register's side of the server: every non-public read (a
//! request that authenticated as an agency, signed or by session) is
//! recorded in `docket_log::inquiry`'s register, durably, before its
//! answer leaves: the reading agency, its key, and the question (method,
//! path and query). An answer whose record cannot be written is withheld
//! (503 `inquiries_unavailable`). Public reads identify nobody and are not
//! recorded; appends are in the log itself.
//!
//! `auth` notes the reader of a request in a task-local slot that
//! [`record_reads`], a layer around every handler, set up; once the
//! handler has answered, the layer records the inquiry and only then
//! passes the answer on. An SSE stream is recorded once, when it opens.
//!
//! `GET /v1/inquiries` lets the oversight role read the register, with its
//! latest signed checkpoint.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use docket_log::inquiry::{self, Inquiry};
use docket_model::{AgencyId, PublicKey};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::routes::Params;
use crate::App;

/// Most inquiries one `GET /v1/inquiries` page returns.
pub(crate) const INQUIRY_PAGE_MAX: usize = 1000;

tokio::task_local! {
    /// The agency and key a request authenticated as, if it did.
    static READER: RefCell<Option<(AgencyId, PublicKey)>>;
}

/// Notes that the request being handled reads as `agency` with `key` (a no-op
/// outside [`record_reads`]).
pub(crate) fn note_reader(agency: &AgencyId, key: &PublicKey) {
    let _ = READER.try_with(|reader| *reader.borrow_mut() = Some((agency.clone(), *key)));
}

/// The layer: runs the handler with a slot for its reader; if a GET named
/// one, records the inquiry (durably) before the answer is passed on.
pub(crate) async fn record_reads(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if request.method() != Method::GET || app.inquiries.is_none() {
        return next.run(request).await;
    }
    let question = format!("GET {}", request.uri());
    let (response, reader) = READER
        .scope(RefCell::new(None), async move {
            let response = next.run(request).await;
            (response, READER.with(|reader| reader.borrow_mut().take()))
        })
        .await;
    let (Some((agency, key)), Some(register)) = (reader, app.inquiries.as_ref()) else {
        return response;
    };
    match register.record(Inquiry::new(agency.as_str(), key, &question)).await {
        Ok(_) => response,
        Err(error) => {
            tracing::error!(%error, %agency, "a read was withheld: its inquiry could not be recorded");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "inquiries_unavailable",
                format!("the answer is withheld: the inquiry register cannot record this read ({error})"),
            )
            .into_response()
        }
    }
}

/// Signs a checkpoint of the register every `interval` while it grows, and
/// once more when the server stops.
pub(crate) async fn checkpoint(app: Arc<App>, key: ed25519_dalek::SigningKey, interval: Duration) {
    let Some(register) = app.inquiries.clone() else { return };
    let mut stopping = app.stopping.subscribe();
    let mut signed = None;
    loop {
        let stop = tokio::select! {
            () = tokio::time::sleep(interval) => false,
            _ = stopping.wait_for(|stop| *stop) => true,
        };
        let size = register.size();
        if signed != Some(size) {
            let (register, key) = (register.clone(), key.clone());
            match tokio::task::spawn_blocking(move || register.checkpoint(&key)).await {
                Ok(Ok(_)) => signed = Some(size),
                Ok(Err(error)) => tracing::warn!(%error, "the inquiry register's checkpoint failed; retrying"),
                Err(error) => tracing::warn!(%error, "the inquiry register's checkpoint task failed"),
            }
        }
        if stop {
            return;
        }
    }
}

/// `GET /v1/inquiries` parameters.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InquiryParams {
    /// The first inquiry to return (0: the oldest).
    from: Option<u64>,
    /// Most inquiries (default and most: 1,000).
    limit: Option<usize>,
}

/// `GET /v1/inquiries`: the register's records from `from`, for the
/// oversight role, with the latest signed checkpoint of the register.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Params(params): Params<InquiryParams>,
) -> Result<Json<Value>, ApiError> {
    let scope = crate::auth::authenticate(&app, &method, &uri, &headers)?;
    if !scope.oversight {
        return Err(crate::policy::forbidden(format!(
            "the inquiry register is read by the oversight role; agency \"{}\" does not hold it",
            scope.agency
        )));
    }
    let Some(register) = app.inquiries.clone() else {
        return Err(ApiError::not_found("this server does not keep an inquiry register"));
    };
    let from = params.from.unwrap_or(0);
    let limit = params.limit.unwrap_or(100).clamp(1, INQUIRY_PAGE_MAX);
    let dir = app.dir.clone();
    let (records, checkpoint) = tokio::task::spawn_blocking(move || {
        let records = inquiry::read(&dir, from, limit)?;
        let checkpoint = std::fs::read_to_string(docket_log::ledger::Paths::new(&dir).inquiry_checkpoint()).ok();
        Ok::<_, inquiry::RegisterError>((records, checkpoint))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let next = records.last().map_or(from, |record| record.seq + 1);
    let inquiries: Vec<Value> = records
        .iter()
        .map(|record| {
            json!({
                "seq": record.seq,
                "recorded_at": record.at.to_string(),
                "agency": record.inquiry.agency,
                "key": record.inquiry.key.to_hex(),
                "question": record.inquiry.question,
            })
        })
        .collect();
    Ok(Json(json!({
        "inquiries": inquiries,
        "next": next,
        "size": register.size(),
        "checkpoint": checkpoint,
    })))
}
