//! The oversight desk: server-rendered HTML pages served by `docket serve`
//! beside the API, in Chinese and English (a switch on every page).
//!
//! * [`public`]: the public list (no sign-in), search and filters, masked as
//!   the public view is (the view's own entries, never re-masked), each
//!   entry's public page, and the delta as "what changed since";
//! * [`desk`]: sign-in with a session token (`POST /v1/session`) kept in an
//!   HttpOnly, SameSite=Strict cookie; the case timeline with its periods,
//!   findings and measures; each event's signed form, checked in the page
//!   against the latest checkpoint (`assets/proof.js`, the only script);
//! * [`audit`]: the audit desk (oversight role) and an agency's worklist.
//!
//! Reads of non-public data authenticate through `crate::auth` exactly as
//! API reads do (the cookie's token stands in for the `docket-session`
//! header), so the inquiry register records every such page read. Pages
//! work without JavaScript; compression is the router's (gzip, br); the
//! stylesheet and script are served under their content hash, cached for
//! a year.

mod assets;
mod audit;
mod cache;
mod chunked;
mod desk;
pub(crate) mod i18n;
mod public;
mod render;
mod timeline;

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::policy::Scope;
use crate::App;

pub(crate) use cache::PageCache;
pub(crate) use render::{Page, PageError};

/// The cookie that holds the session token.
pub(crate) const SESSION_COOKIE: &str = "docket_session";

/// The pages' routes (not part of the API's OpenAPI document).
pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(public::list))
        .route("/case", get(public::case))
        .route("/signin", get(desk::signin_form).post(desk::signin))
        .route("/signout", axum::routing::post(desk::signout))
        .route("/desk/case", get(desk::timeline))
        .route("/desk/record/{seq}", get(desk::record))
        .route("/desk/audit", get(audit::desk))
        .route("/desk/worklist", get(audit::worklist))
        .route("/assets/{name}", get(assets::asset))
        .layer(axum::middleware::from_fn(server_timing))
}

/// Adds `Server-Timing: page;dur=MS` to every page: the time from the
/// request's arrival at the pages to its answer, body rendered (what
/// `tools/pages-bench` reports as the server time).
async fn server_timing(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if let Ok(value) = HeaderValue::from_str(&format!("page;dur={ms:.3}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The signed-in reader of a page, through `crate::auth` as an API read
/// with the cookie's token in `docket-session` (so the inquiry register
/// records the read); 401 with a sign-in link without one.
pub(crate) fn reader(app: &App, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Scope, PageError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(PageError::sign_in("this page is for signed-in agencies: sign in with a session token"));
    };
    let mut session = HeaderMap::new();
    let value = HeaderValue::from_str(token).map_err(|_| PageError::sign_in("the session cookie is not text"))?;
    session.insert(docket_model::request::SESSION_HEADER, value);
    crate::auth::authenticate(app, method, uri, &session).map_err(|error| {
        if error.status == StatusCode::UNAUTHORIZED {
            PageError::sign_in(error.message)
        } else {
            PageError::from(error)
        }
    })
}

/// A page's bytes with the headers every page has: HTML, and `private,
/// no-store` for a signed-in page (its data is not for shared caches).
pub(crate) fn html(body: String, private: bool) -> Response {
    let cache = if private { "private, no-store" } else { "no-cache" };
    let mut response =
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, cache)], body).into_response();
    response.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response.headers_mut().insert("content-security-policy", HeaderValue::from_static(render::CONTENT_SECURITY_POLICY));
    response
}

/// Runs a page's work on the blocking pool (views read the store).
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| PageError::from(ApiError::internal(e.to_string())))?
}
