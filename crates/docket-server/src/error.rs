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

    /// The JSON body of the error.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        if let Some(version) = self.actual_version {
            error["actual_version"] = json!(version);
        }
        json!({ "error": error })
    }
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
