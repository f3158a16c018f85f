//! API errors: every refusal is a status, a stable machine code and a message
//! naming what and where. The codes are part of the API; add, never rename.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use docket_log::{AppendError, Refusal};
use docket_model::{AuthError, EventError};

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable machine code, e.g. `bad_signature`.
    pub code: &'static str,
    pub message: String,
    /// The JSON path of the offending field, where there is one.
    pub field: Option<String>,
    /// For `stale_version`: the case's actual version.
    pub actual_version: Option<u64>,
    /// For `rate_limited`: seconds until a retry can succeed (the `Retry-After` header).
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, actual_version: None, retry_after_s: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Why an event's form or bytes are refused (before the log sees it).
    pub fn event(error: &EventError) -> Self {
        let (status, code) = match error {
            EventError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "event_too_large"),
            EventError::Signature(_) | EventError::KeyMismatch { .. } => (StatusCode::UNAUTHORIZED, "bad_signature"),
            EventError::IdMismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "id_mismatch"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event"),
        };
        Self::new(status, code, error.to_string())
    }

    /// Why the log refused an append.
    pub fn append(error: &AppendError) -> Self {
        match error {
            AppendError::Refused(refusal) => Self::refusal(refusal),
            AppendError::Log(error) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", format!("the log cannot append: {error}"))
            }
            _ => Self::new(StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", error.to_string()),
        }
    }

    fn refusal(refusal: &Refusal) -> Self {
        match refusal {
            Refusal::Event(error) => Self::event(error),
            Refusal::Auth(error) => {
                let (status, code) = match error {
                    AuthError::RevokedKey { .. } => (StatusCode::FORBIDDEN, "key_revoked"),
                    AuthError::UnknownKey { .. } | AuthError::UnknownAgency(_) | AuthError::NotRootKey { .. } => {
                        (StatusCode::FORBIDDEN, "unknown_key")
                    }
                    AuthError::MissingRole { .. } | AuthError::NotDesignatingAgency { .. } => {
                        (StatusCode::FORBIDDEN, "not_authorised")
                    }
                    _ => (StatusCode::UNPROCESSABLE_ENTITY, "registry_refused"),
                };
                Self::new(status, code, refusal.to_string())
            }
            Refusal::NoSuchCase { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "no_such_case", refusal.to_string())
            }
            Refusal::Conflict { actual, .. } => Self {
                actual_version: Some(*actual),
                ..Self::new(StatusCode::CONFLICT, "stale_version", refusal.to_string())
            },
            _ => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", refusal.to_string()),
        }
    }

    /// The JSON body of the error. The message and field are cut at
    /// `ECHO_BYTES_MAX` bytes: they may quote the request.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"code": self.code, "message": clip(&self.message)});
        if let Some(field) = &self.field {
            error["field"] = json!(clip(field));
        }
        if let Some(version) = self.actual_version {
            error["actual_version"] = json!(version);
        }
        json!({ "error": error })
    }
}

/// Most bytes of an error's message (or field) in a response: whatever of
/// the request a message quotes, no more than this is echoed back.
pub const ECHO_BYTES_MAX: usize = 512;

/// `text` cut to at most `ECHO_BYTES_MAX` bytes at a character boundary, marked when cut.
fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= ECHO_BYTES_MAX {
        return text.into();
    }
    let mut end = ECHO_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}

/// The router's fallback: no such route.
pub(crate) async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}; the routes are in /openapi.json", uri.path()))
}

/// A route that exists, asked with a method it does not serve.
pub(crate) async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not served on {}; see the Allow header and /openapi.json", uri.path()),
    )
}

/// What a reserve connection gets for anything but the operational endpoints.
pub(crate) async fn overloaded_connection() -> Response {
    let error = ApiError {
        retry_after_s: Some(1),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is at connections_max; this connection serves /healthz, /readyz and /metrics only",
        )
    };
    let mut response = error.into_response();
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

/// A layer that turns a panicking handler into a 500 `internal` with no
/// panic text (the text goes to the log).
pub(crate) fn catch_panic(
) -> tower_http::catch_panic::CatchPanicLayer<fn(Box<dyn std::any::Any + Send + 'static>) -> Response> {
    tower_http::catch_panic::CatchPanicLayer::custom(panicked as fn(_) -> _)
}

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(not text)");
    tracing::error!(panic = text, "a handler panicked");
    ApiError::internal("the server failed on this request (logged); it is safe to retry reads").into_response()
}

// Each route documents the refusals it can answer (`crate::openapi::Doc::errors`).
impl aide::OperationOutput for ApiError {
    type Inner = crate::openapi::ErrorBody;
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after_s {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<docket_fold::query::QueryError> for ApiError {
    fn from(error: docket_fold::query::QueryError) -> Self {
        Self { field: Some(error.parameter.clone()), ..Self::bad_request("bad_parameter", error.to_string()) }
    }
}

impl From<docket_fold::FoldError> for ApiError {
    fn from(error: docket_fold::FoldError) -> Self {
        match error {
            // Unknown agencies, lists and the like are the caller's to fix; a store fault is ours.
            docket_fold::FoldError::NotFound(_) => Self::not_found(error.to_string()),
            _ => Self::internal(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_answers_internal_without_its_text() {
        let response = panicked(Box::new(String::from("secret: index out of bounds at /src/x.rs")));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let error = ApiError::internal("the server failed on this request (logged); it is safe to retry reads");
        assert!(!error.message.contains("secret"));
        assert_eq!(error.body()["error"]["code"], "internal");
    }

    #[test]
    fn echoed_input_is_cut() {
        let long = "é".repeat(ECHO_BYTES_MAX);
        let error = ApiError::bad_request("bad_parameter", format!("value {long}"));
        let message = error.body()["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.len() < ECHO_BYTES_MAX + 40, "{} bytes", message.len());
        assert!(message.ends_with("bytes cut)"), "{message}");
        assert_eq!(clip("short"), "short");
    }
}
