//! `GET /v1/export/{view}`: bulk exports of what is public (the public
//! list) as CSV, JSON Lines, FollowTheMoney entities or Parquet, at any
//! bitemporal point (docket-export). The list is the public view itself,
//! masked by its own rules. The view is computed first (so a bad point or
//! list is an ordinary error answer), then written on the blocking pool
//! into a bounded channel that the response body streams from: memory per
//! export is the view plus [`EXPORT_CHUNKS_IN_FLIGHT`] chunks of
//! [`EXPORT_CHUNK_BYTES`].

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::mpsc;

use docket_export::Format;
use docket_fold::query;
use docket_fold::views;

use super::extract::{Params, PathParam};
use crate::error::ApiError;
use crate::App;

/// Bytes written into one chunk of an export's body before it is sent.
pub(crate) const EXPORT_CHUNK_BYTES: usize = 64 * 1024;

/// Chunks of one export waiting for the connection: the writer waits
/// when they are all queued (a slow reader slows its own export only).
pub(crate) const EXPORT_CHUNKS_IN_FLIGHT: usize = 4;

/// The views exported over HTTP: what is public.
pub(crate) const EXPORTS: [&str; 1] = ["public"];

/// The formats of an export (`docket_export::Format`), for the OpenAPI document.
#[derive(Debug, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ExportFormat {
    Csv,
    Jsonl,
    Ftm,
    Parquet,
}

/// The views exported over HTTP: what is public, for the OpenAPI document.
#[derive(Debug, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ExportView {
    Public,
}

/// The path of an export.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct ExportPath {
    /// The view (public: the others hold unmasked identifiers; docket export writes them).
    #[schemars(with = "ExportView")]
    view: String,
}

/// Query parameters of an export.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportParams {
    /// csv (the default), jsonl, ftm or parquet.
    #[schemars(with = "Option<ExportFormat>")]
    format: Option<String>,
    /// Only this list.
    #[schemars(with = "Option<super::queries::NameParam>")]
    list: Option<String>,
    /// A seq (inclusive) or a time: what the ledger held then.
    #[schemars(with = "Option<super::queries::AsOfParam>")]
    as_of: Option<String>,
    /// What was in force then.
    #[schemars(with = "Option<super::queries::ValidAtParam>")]
    valid_at: Option<String>,
}

/// `/v1/export/{view}`.
pub(super) async fn export(
    State(app): State<Arc<App>>,
    PathParam(ExportPath { view }): PathParam<ExportPath>,
    Params(params): Params<ExportParams>,
) -> Result<Response, ApiError> {
    if !EXPORTS.contains(&view.as_str()) {
        return Err(ApiError::not_found(format!(
            "no export of {view:?} over HTTP; what is public is exported: {} (docket export writes the others)",
            EXPORTS.join(", ")
        )));
    }
    let format = Format::parse(params.format.as_deref().unwrap_or("csv")).map_err(|e| ApiError {
        field: Some("format".into()),
        ..ApiError::bad_request("bad_parameter", e.to_string())
    })?;
    let (sender, receiver) = mpsc::channel::<Chunk>(EXPORT_CHUNKS_IN_FLIGHT);
    let (ready, computed) = tokio::sync::oneshot::channel::<Result<u64, ApiError>>();
    let worker = app.clone();
    tokio::task::spawn_blocking(move || write(&worker, &params, format, ready, sender));
    let watermark =
        computed.await.map_err(|_| ApiError::internal("the export stopped before its view was computed"))??;
    // A stream that may be polled again after its end: the compression layer
    // does so once it has written its trailer (an `unfold` panics there).
    let mut receiver = receiver;
    let body = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    let disposition = format!("attachment; filename=\"{view}.{}\"", format.extension());
    let disposition = HeaderValue::from_str(&disposition).map_err(|e| ApiError::internal(e.to_string()))?;
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert("docket-watermark", HeaderValue::from(watermark));
    Ok(response)
}

/// A piece of an export's body, or the error that cut it short (the
/// connection is then closed without the body's end, so the reader cannot
/// take a cut export for a whole one).
type Chunk = std::io::Result<Bytes>;

/// On the blocking pool: computes the public view at the asked point and
/// says so on `ready` (or why not), then writes it into `sender`. A reader
/// that goes away stops the writing at the next chunk.
fn write(
    app: &App,
    params: &ExportParams,
    format: Format,
    ready: tokio::sync::oneshot::Sender<Result<u64, ApiError>>,
    sender: mpsc::Sender<Chunk>,
) {
    let store = &app.store;
    let computed = (|| -> Result<_, ApiError> {
        let as_of = query::resolve(store, params.as_of.as_deref(), params.valid_at.as_deref())?;
        let list = params.list.as_deref().map(|l| query::name("list", l)).transpose()?;
        if let Some(list) = &list {
            if app.registry.current().list(list).is_none() {
                return Err(ApiError::not_found(format!("list \"{list}\"")));
            }
        }
        let view = views::public_view(store, as_of, list.as_ref())?;
        let registry = docket_fold::Source::registry(store, as_of.known)?;
        Ok((view, registry))
    })();
    let (view, registry) = match computed {
        Ok(computed) => computed,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    if ready.send(Ok(store.records())).is_err() {
        return;
    }
    let out = ChunkWriter { sender: sender.clone(), chunk: Vec::with_capacity(EXPORT_CHUNK_BYTES) };
    if let Err(error) = docket_export::write_public(&view, &registry, format, Box::new(out)) {
        tracing::warn!(%error, "export of the public list stopped");
        let _ = sender.blocking_send(Err(std::io::Error::other(error.to_string())));
    }
}

/// Writes into chunks of [`EXPORT_CHUNK_BYTES`], each sent to the body's
/// channel (waiting while it is full); fails once the reader has gone.
struct ChunkWriter {
    sender: mpsc::Sender<Chunk>,
    chunk: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(EXPORT_CHUNK_BYTES));
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the reader went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.chunk.extend_from_slice(bytes);
        if self.chunk.len() >= EXPORT_CHUNK_BYTES {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
