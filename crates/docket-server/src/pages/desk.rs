//! Signed-in pages: sign-in and sign-out, the case timeline, and each
//! event's signed form for the in-page proof check.
//!
//! Sign-in takes a session token from `POST /v1/session` (signed with the
//! agency's key, as API clients do), checks it as a read would, and keeps
//! it in an HttpOnly, SameSite=Strict cookie for the token's lifetime.

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use docket_fold::case::{evaluate, CaseState};
use docket_fold::query;
use docket_fold::views::Source;
use docket_model::{SignedEvent, Timestamp};

use super::timeline;
use super::{blocking, reader, Page, PageError, SESSION_COOKIE};
use crate::error::ApiError;
use crate::App;

/// Parameters that only choose the language.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LangParams {
    lang: Option<String>,
    /// Where to go once signed in (a path on this server).
    next: Option<String>,
}

/// `GET /signin`: the sign-in form.
pub(super) async fn signin_form(
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<LangParams>,
) -> Result<Response, PageError> {
    let page = Page::new(&uri, &headers, params.lang.as_deref());
    page.render("signin.html", context! { next => local(params.next.as_deref()) })
}

/// A path on this server to go to, or the audit desk (never another site).
fn local(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path,
        _ => "/desk/worklist",
    }
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct SignIn {
    token: String,
    next: Option<String>,
}

/// `POST /signin`: checks the token as a read would (issued by this
/// server, unexpired, its key standing), then keeps it in the cookie.
pub(super) async fn signin(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    form: Result<Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|e| PageError::bad("form", e.body_text()))?;
    let token = form.token.trim();
    let value = HeaderValue::from_str(token).map_err(|_| PageError::sign_in("token: not a session token"))?;
    let mut headers = HeaderMap::new();
    headers.insert(docket_model::request::SESSION_HEADER, value);
    crate::auth::authenticate(&app, &method, &uri, &headers).map_err(|e| PageError::sign_in(e.message))?;
    // The token's second field is its expiry in microseconds (crate::auth); the cookie ends with it.
    let expires = token.split(':').nth(1).and_then(|m| m.parse::<i64>().ok()).unwrap_or(0);
    let max_age = ((expires - Timestamp::now().micros()) / 1_000_000).max(0);
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    let cookie = HeaderValue::from_str(&cookie).map_err(|_| PageError::sign_in("token: not a session token"))?;
    let location = HeaderValue::from_str(local(form.next.as_deref()))
        .map_err(|_| PageError::bad("next", "not a path on this server"))?;
    Ok((StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, location)]).into_response())
}

/// `POST /signout`: forgets the cookie.
pub(super) async fn signout() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, "/".to_owned())]).into_response()
}

/// Parameters of the case timeline.
#[derive(Debug, Deserialize)]
pub(crate) struct CaseParams {
    pub(crate) subject: String,
    pub(crate) list: String,
    pub(crate) number: String,
    pub(crate) as_of: Option<String>,
    pub(crate) valid_at: Option<String>,
    lang: Option<String>,
}

/// `GET /desk/case?subject=&list=&number=`: the case timeline, for an
/// agency that follows the list (or oversight).
pub(super) async fn timeline(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<CaseParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(|e| PageError::bad("query", e.body_text()))?;
    let scope = reader(&app, &method, &uri, &headers)?;
    scope.follows(&params.list)?;
    // As `/v1/audit`: the designating agency (and oversight) reads every
    // finding on the case; an agency that only follows the list, those
    // where it had to act.
    let only = scope.designates(&params.list).is_err().then(|| scope.agency.clone());
    let page = Page::new(&uri, &headers, params.lang.as_deref()).signed_in(&scope);
    let data = blocking(move || timeline::data(&app, &params, only.as_ref())).await?;
    page.render("case.html", data)
}

/// The case `subject`, `list`, `number` names, with every fact (404 if none).
pub(crate) fn find_case(app: &App, params: &CaseParams) -> Result<CaseState, PageError> {
    let subject = query::parse_subject("subject", &params.subject)?;
    let mut found = None;
    app.store.for_subject(&subject, &mut |case| {
        if case.list.as_str() == params.list && case.number.as_str() == params.number {
            found = Some(case);
        }
    })?;
    found.ok_or_else(|| {
        PageError::from(ApiError::not_found(format!(
            "no case {} on list {} for subject {}",
            params.number, params.list, params.subject
        )))
    })
}

/// The view of a case at a point, for pages that need its status.
pub(crate) fn view_of(
    app: &App,
    case: &CaseState,
    as_of: docket_fold::case::AsOf,
) -> Result<docket_fold::case::CaseView, PageError> {
    let registry = app.store.registry(as_of.known)?;
    Ok(evaluate(case, &registry, as_of))
}

/// `GET /desk/record/{seq}`: one record's signed form as the log holds it
/// (the wire bytes and system time the Merkle leaf covers), within the
/// reader's scope; the proof check hashes it in the browser.
pub(super) async fn record(
    State(app): State<Arc<App>>,
    Path(seq): Path<u64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let scope = reader(&app, &method, &uri, &headers)?;
    let head = *app.head.borrow();
    if seq >= head {
        return Err(ApiError::not_found(format!("seq {seq}: the log has {head} records")).into());
    }
    let worker = app.clone();
    let (system_time, wire) = blocking(move || read_frame(&worker, seq)).await?;
    let event = SignedEvent::from_wire(&wire).map_err(|e| ApiError::internal(format!("seq {seq}: {e}")))?;
    if !scope.sees(&event) {
        return Err(crate::policy::forbidden(format!("seq {seq} is outside the reader's scope")).into());
    }
    let body = json!({
        "seq": seq,
        "system_time_us": system_time,
        "system_time": Timestamp::from_micros(system_time).map(|t| t.to_string()).unwrap_or_default(),
        "wire": hex::encode(&wire),
        "signed": event.to_json(),
    });
    Ok(([(header::CACHE_CONTROL, "private, no-store")], Json(body)).into_response())
}

/// The system time and wire form of record `seq`.
fn read_frame(app: &App, seq: u64) -> Result<(i64, Vec<u8>), PageError> {
    let mut found = None;
    app.reader
        .read_from(seq, None, |frame| {
            found = Some((frame.system_time, frame.wire.clone()));
            ControlFlow::Break(())
        })
        .map_err(|e| ApiError::internal(format!("reading seq {seq}: {e}")))?;
    found.ok_or_else(|| ApiError::not_found(format!("seq {seq} is not committed yet")).into())
}

/// The log's verifier key (C2SP vkey), which the proof check verifies the
/// checkpoint with.
pub(crate) fn verifier_key(app: &App) -> Result<String, PageError> {
    let (_, _, key) =
        docket_log::ledger::read_config(&app.dir).map_err(|e| ApiError::internal(format!("ledger.json: {e}")))?;
    Ok(key.verifier_string())
}
