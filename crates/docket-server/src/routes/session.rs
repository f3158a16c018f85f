//! Session tokens (`POST /v1/session`): a signed request buys a token that
//! stands in for the signature on reads until it expires (`crate::auth`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::ApiError;
use crate::App;

/// A session for the agency that signed the request: its reads may carry the
/// token in `docket-session` instead of a signature until it expires.
pub(super) async fn session(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (agency, token, expires) = crate::auth::open_session(&app, &method, &uri, &headers)?;
    let body = crate::answers::Session { agency: agency.to_string(), token, expires_at: expires };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
