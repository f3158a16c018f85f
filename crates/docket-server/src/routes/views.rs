//! Reads of the projections and the log: the views, single records, and
//! the public list's delta (computed by `docket_fold::delta`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use docket_fold::query::{self, QueryError};
use docket_fold::{views, Store};
use docket_model::Name;

use super::extract::{Params, PathParam};
use crate::auth::authenticate;
use crate::error::ApiError;
use crate::feed;
use crate::App;

/// The views under `/v1/views/`, by name.
pub(crate) const VIEWS: [&str; 6] = ["list", "enforcement", "subject", "public", "check", "registry"];

/// One record of the log, by seq.
pub(super) async fn event_at(
    State(app): State<Arc<App>>,
    PathParam(seq): PathParam<u64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let scope = authenticate(&app, &method, &uri, &headers)?;
    if seq >= *app.head.borrow() {
        return Err(ApiError::not_found(format!("seq {seq}: the log has {} records", *app.head.borrow())));
    }
    let page = feed::read(&app, seq, 1, &feed::Filter::within(scope)).await?;
    page.events.into_iter().next().map(Json).ok_or_else(|| {
        crate::policy::forbidden(format!(
            "seq {seq} is outside the reader's scope: not a registry event, not its own, not on a list it follows"
        ))
    })
}

/// The read policy of the signed views (API.md, "Who may read"): `agency`
/// names the reader, `list` one it designates; without `agency`, the list
/// view is the reader's own. Oversight reads any.
fn view_policy(app: &App, scope: &crate::policy::Scope, view: &str, params: &mut ViewParams) -> Result<(), ApiError> {
    if let (Some(owner), "list" | "enforcement" | "check") = (params.agency.as_deref(), view) {
        scope.own(owner, "agency", &format!("the {view} view"))?;
    }
    if view != "list" {
        return Ok(());
    }
    if params.agency.is_none() && !scope.oversight {
        params.agency = Some(scope.agency.to_string());
    }
    // An unknown list is a 404 from the view itself; the registry is public.
    let known = |list: &str| Name::parse(list).is_ok_and(|list| app.registry.current().list(&list).is_some());
    match params.list.as_deref() {
        Some(list) if known(list) => scope.designates(list),
        _ => Ok(()),
    }
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

/// The value of a parameter the view needs, or 400 `missing_parameter` naming it.
fn required<'a>(value: &'a Option<String>, parameter: &str, view: &str) -> Result<&'a str, ApiError> {
    value.as_deref().ok_or_else(|| ApiError {
        field: Some(parameter.into()),
        ..ApiError::bad_request("missing_parameter", format!("the {view} view needs {parameter}"))
    })
}

/// `/v1/views/{list,enforcement,subject,public,check,registry}`.
pub(super) async fn view(
    State(app): State<Arc<App>>,
    PathParam(view): PathParam<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Params(mut params): Params<ViewParams>,
) -> Result<Response, ApiError> {
    if !VIEWS.contains(&view.as_str()) {
        return Err(no_view(&view));
    }
    // The public list and the registry are open; every other view is for registered agencies.
    if !matches!(view.as_str(), "public" | "registry") {
        let scope = authenticate(&app, &method, &uri, &headers)?;
        view_policy(&app, &scope, &view, &mut params)?;
    }
    if let Some(seq) = params.min_seq {
        wait_for_projection(&app, seq).await?;
    }
    let worker = app.clone();
    let cheap = view == "check";
    let compute = move || -> Result<(Value, u64), ApiError> {
        let value = compute_view(&worker.store, &view, &params)?;
        Ok((value, worker.store.records()))
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

/// 404 for a view that does not exist, naming those that do.
fn no_view(view: &str) -> ApiError {
    ApiError::not_found(format!("no view {view:?}; the views are {}", VIEWS.join(", ")))
}

/// One view of the store, at the point the parameters name.
fn compute_view(store: &Store, view: &str, params: &ViewParams) -> Result<Value, ApiError> {
    let as_of = query::resolve(store, params.as_of.as_deref(), params.valid_at.as_deref())?;
    let name = |value: &Option<String>, parameter: &str| -> Result<Option<Name>, QueryError> {
        value.as_deref().map(|v| query::name(parameter, v)).transpose()
    };
    let agency = name(&params.agency, "agency")?;
    let list = name(&params.list, "list")?;
    Ok(match view {
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
        other => return Err(no_view(other)),
    })
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
/// projections' watermark, in force now (`docket_fold::delta::of_store`).
pub(super) async fn delta(
    State(app): State<Arc<App>>,
    Params(params): Params<DeltaParams>,
) -> Result<Json<Value>, ApiError> {
    let worker = app.clone();
    tokio::task::spawn_blocking(move || -> Result<Json<Value>, ApiError> {
        let list = params.list.as_deref().map(|l| query::name("list", l)).transpose()?;
        let cursor = params.cursor.unwrap_or(0);
        let now = docket_model::Timestamp::now();
        let delta =
            docket_fold::delta::of_store(&worker.store, cursor, list.as_ref(), now).map_err(|error| match error {
                docket_fold::delta::DeltaError::CursorAhead { .. } => ApiError {
                    field: Some("cursor".into()),
                    ..ApiError::bad_request("bad_parameter", error.to_string())
                },
                docket_fold::delta::DeltaError::Fold(error) => error.into(),
                other => ApiError::internal(other.to_string()),
            })?;
        Ok(Json(json!(delta)))
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
