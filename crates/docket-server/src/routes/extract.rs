//! What the handlers share to read a request: query and path parameters
//! refused with the API's own errors, the body within its limits, JSON
//! parsed strictly and the wire form of a batch.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, StatusCode};

use docket_model::signed::WIRE_SIZE_BYTES_MAX;

use crate::error::ApiError;
use crate::App;

/// The length prefix of each event in a wire-form batch (u32, big-endian).
pub(crate) const WIRE_PREFIX_BYTES: usize = 4;

/// Query parameters, refused with the API's own `bad_parameter` error (not axum's plain text).
#[derive(Debug)]
pub(crate) struct Params<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state).await.map(|Query(params)| Self(params)).map_err(|e| {
            let message = e.body_text();
            ApiError { field: named_field(&message), ..ApiError::bad_request("bad_parameter", message) }
        })
    }
}

/// The parameter a query's deserialisation error names (serde writes
/// "unknown field `limit`", "missing field `seq`"), if it names one.
fn named_field(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("field `")?;
    let (name, _) = rest.split_once('`')?;
    Some(name.to_owned())
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

// The OpenAPI document lists a handler's parameters from the types it
// extracts, as axum's own extractors would be listed.
impl<T: schemars::JsonSchema> aide::OperationInput for Params<T> {
    fn operation_input(ctx: &mut aide::generate::GenContext, operation: &mut aide::openapi::Operation) {
        <Query<T> as aide::OperationInput>::operation_input(ctx, operation);
    }
}

impl<T: schemars::JsonSchema> aide::OperationInput for PathParam<T> {
    fn operation_input(ctx: &mut aide::generate::GenContext, operation: &mut aide::openapi::Operation) {
        <Path<T> as aide::OperationInput>::operation_input(ctx, operation);
    }
}

/// A request body in memory, with its share of `body_bytes_in_flight_max`
/// (given back when dropped).
pub(crate) struct HeldBody {
    pub(crate) bytes: Bytes,
    _budget: tokio::sync::OwnedSemaphorePermit,
}

/// 413 `body_too_large`, naming the limit.
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
pub(super) async fn body(app: &App, headers: &HeaderMap, body: Body) -> Result<HeldBody, ApiError> {
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
pub(super) fn parse_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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
pub(super) fn parse<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
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
pub(super) fn is_wire(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"))
}

/// Splits a wire-form batch: each event's wire form after its length (u32, big-endian).
pub(super) fn wire_batch(bytes: &[u8]) -> Result<Vec<&[u8]>, ApiError> {
    let mut events = vec![];
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((length, tail)) = rest.split_first_chunk::<WIRE_PREFIX_BYTES>() else {
            return Err(ApiError::bad_request("malformed_wire", format!("event {}: a truncated length", events.len())));
        };
        let length = u32::from_be_bytes(*length) as usize;
        if length > WIRE_SIZE_BYTES_MAX || length > tail.len() {
            return Err(ApiError::bad_request(
                "malformed_wire",
                format!("event {}: length {length} is past the body or over {WIRE_SIZE_BYTES_MAX}", events.len()),
            ));
        }
        events.push(&tail[..length]);
        rest = &tail[length..];
    }
    Ok(events)
}
