//! Reads of the projections and the log: the views, single records, and
//! the public list's delta (computed by `docket_fold::delta`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use docket_fold::case::AsOf;
use docket_fold::query::{self, QueryError};
use docket_fold::{views, Store};
use docket_model::Name;

use super::extract::{Params, PathParam};
use super::queries::{CheckQuery, EnforcementQuery, ListQuery, PublicQuery, RegistryQuery, SubjectQuery};
use super::read;
use crate::auth::authenticate;
use crate::error::ApiError;
use crate::feed;
use crate::App;

/// The views under `/v1/views/`, by name.
pub(crate) const VIEWS: [&str; 6] = ["list", "enforcement", "subject", "public", "check", "registry"];

/// The path of `/v1/events/{seq}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct SeqPath {
    /// The record's seq (below the log's size).
    seq: u64,
}

/// One record of the log, by seq.
pub(super) async fn event_at(
    State(app): State<Arc<App>>,
    PathParam(SeqPath { seq }): PathParam<SeqPath>,
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
    pub(super) agency: Option<String>,
    pub(super) list: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) measure: Option<String>,
    /// A seq (inclusive) or a time: what the ledger held then.
    pub(super) as_of: Option<String>,
    /// What was in force then.
    pub(super) valid_at: Option<String>,
    /// Wait (up to `projection_wait_ms_max`) until the projections include this seq.
    pub(super) min_seq: Option<u64>,
    /// The most entries of a page (list-shaped views; up to `read::PAGE_MAX`).
    pub(super) limit: Option<usize>,
    /// The `next` of the previous page: the page after it, at the same point.
    pub(super) cursor: Option<String>,
}

impl ViewParams {
    /// The query as it determines the answer (after the read policy filled
    /// in the reader's own agency), with the view's name first.
    fn normalised<'a>(&'a self, view: &'a str) -> [&'a str; 5] {
        let text = |value: &'a Option<String>| value.as_deref().unwrap_or("");
        [view, text(&self.agency), text(&self.list), text(&self.subject), text(&self.measure)]
    }
}

/// The list-shaped fields of a paged view, or `None` for a view not paged
/// (the registry, a point check): `(sections, entries)` for the list view.
enum Paged {
    Arrays(&'static [&'static str]),
    Sections(&'static str, &'static str),
}

fn paged(view: &str) -> Option<Paged> {
    match view {
        "public" => Some(Paged::Arrays(&["entries"])),
        "subject" => Some(Paged::Arrays(&["cases"])),
        "enforcement" => Some(Paged::Arrays(&["to_apply", "applied", "must_lift"])),
        "list" => Some(Paged::Sections("lists", "entries")),
        _ => None,
    }
}

/// The value of a parameter the view needs, or 400 `missing_parameter` naming it.
fn required<'a>(value: &'a Option<String>, parameter: &str, view: &str) -> Result<&'a str, ApiError> {
    value.as_deref().ok_or_else(|| ApiError {
        field: Some(parameter.into()),
        ..ApiError::bad_request("missing_parameter", format!("the {view} view needs {parameter}"))
    })
}

/// A read's answer: its ETag and, unless `If-None-Match` named it before
/// it was computed, its body; and the projections' watermark.
struct Answer {
    etag: String,
    body: Option<Vec<u8>>,
    watermark: u64,
}

/// One handler per view, each with the query parameters it takes (so the
/// OpenAPI document lists exactly those), all served by [`view`].
macro_rules! view_handler {
    ($name:ident, $view:literal, $query:ty) => {
        #[doc = concat!("`/v1/views/", $view, "`.")]
        pub(super) async fn $name(
            State(app): State<Arc<App>>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            Params(query): Params<$query>,
        ) -> Result<Response, ApiError> {
            view(app, $view, method, uri, headers, query.into()).await
        }
    };
}

view_handler!(list, "list", ListQuery);
view_handler!(enforcement, "enforcement", EnforcementQuery);
view_handler!(subject, "subject", SubjectQuery);
view_handler!(public, "public", PublicQuery);
view_handler!(check, "check", CheckQuery);
view_handler!(registry, "registry", RegistryQuery);

/// `/v1/views/{list,enforcement,subject,public,check,registry}`.
async fn view(
    app: Arc<App>,
    view: &'static str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    mut params: ViewParams,
) -> Result<Response, ApiError> {
    let view = view.to_owned();
    // The public list and the registry are open; every other view is for registered agencies.
    let reader = if matches!(view.as_str(), "public" | "registry") {
        None
    } else {
        let scope = authenticate(&app, &method, &uri, &headers)?;
        view_policy(&app, &scope, &view, &mut params)?;
        Some(scope)
    };
    if paged(&view).is_none() {
        for (given, parameter) in [(params.limit.is_some(), "limit"), (params.cursor.is_some(), "cursor")] {
            if given {
                return Err(ApiError {
                    field: Some(parameter.into()),
                    ..ApiError::bad_request("bad_parameter", format!("the {view} view is not paged: no {parameter}"))
                });
            }
        }
    }
    let limit = read::page_limit(params.limit)?;
    if let Some(seq) = params.min_seq {
        wait_for_projection(&app, seq).await?;
    }
    let audience = if reader.is_some() { read::Audience::Reader } else { read::Audience::Public };
    let worker = app.clone();
    let cheap = view == "check";
    let conditions = headers.clone();
    let compute = move || view_answer(&worker, &view, &params, limit, reader.as_ref(), &conditions);
    // A point check reads one subject's cases (tens of microseconds, from
    // the page cache): handing it to the blocking pool would cost more than
    // it does. The other views can read a whole list and go to the pool.
    let answer = if cheap {
        compute()?
    } else {
        tokio::task::spawn_blocking(compute).await.map_err(|e| ApiError::internal(e.to_string()))??
    };
    let watermark = [("docket-watermark", HeaderValue::from(answer.watermark))];
    read::conditional(&headers, &answer.etag, audience, "application/json", answer.body, &watermark)
}

/// A view's answer, one page of it when it is list-shaped: at the point
/// the parameters (or the page cursor) name, with its ETag; not computed
/// when the ETag is known first and `If-None-Match` names it.
fn view_answer(
    app: &App,
    view: &str,
    params: &ViewParams,
    limit: usize,
    reader: Option<&crate::policy::Scope>,
    conditions: &HeaderMap,
) -> Result<Answer, ApiError> {
    let store = &app.store;
    let query = params.normalised(view);
    let digest = read::query_digest(&query);
    let (point, offset) = match params.cursor.as_deref() {
        Some(cursor) => {
            let page = read::Page::parse(cursor, &digest, false, store.records())?;
            (page.point, page.offset)
        }
        None => {
            let as_of = query::resolve(store, params.as_of.as_deref(), params.valid_at.as_deref())?;
            (read::Pinned::of(store, as_of)?, 0)
        }
    };
    // Without as_of, valid_at or a cursor the answer is what is in force now:
    // it depends on the clock, so only its body can name it.
    let by_clock = params.cursor.is_none() && params.as_of.is_none() && params.valid_at.is_none();
    let pinned = if by_clock { None } else { read::pinned_etag(app, &point, &query, offset, limit, reader) };
    if let Some(etag) = pinned.as_ref().filter(|etag| read::matches(conditions, etag)) {
        return Ok(Answer { etag: etag.clone(), body: None, watermark: store.records() });
    }
    let mut value = compute_view(store, view, params, point.as_of())?;
    let instant = if by_clock { Some(read::instant_etag(&value, &["as_of"], offset, limit)?) } else { None };
    if let Some(etag) = instant.as_ref().filter(|etag| read::matches(conditions, etag)) {
        return Ok(Answer { etag: etag.clone(), body: None, watermark: store.records() });
    }
    if let Some(shape) = paged(view) {
        let total = match shape {
            Paged::Arrays(fields) => read::page_arrays(&mut value, fields, offset, limit),
            Paged::Sections(sections, entries) => read::page_sections(&mut value, sections, entries, offset, limit),
        };
        value["total"] = json!(total);
        let next = offset.saturating_add(limit as u64);
        if next < total {
            value["next"] = json!(read::Page { point, offset: next, from: None }.cursor(&digest));
        }
    }
    let body = serde_json::to_vec(&value).map_err(|e| ApiError::internal(format!("the {view} view: {e}")))?;
    let etag = pinned.or(instant).unwrap_or_else(|| read::body_etag(&body));
    Ok(Answer { etag, body: Some(body), watermark: store.records() })
}

/// 404 for a view that does not exist, naming those that do.
fn no_view(view: &str) -> ApiError {
    ApiError::not_found(format!("no view {view:?}; the views are {}", VIEWS.join(", ")))
}

/// One view of the store, at `as_of`.
fn compute_view(store: &Store, view: &str, params: &ViewParams, as_of: AsOf) -> Result<Value, ApiError> {
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
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeltaParams {
    /// The `cursor` of the last delta (a number of records; 0: from an empty
    /// list), or the `next` of the last page of this one.
    #[schemars(with = "Option<super::queries::DeltaCursorParam>")]
    cursor: Option<String>,
    /// Only this list.
    #[schemars(with = "Option<super::queries::NameParam>")]
    list: Option<String>,
    /// The most changes of a page (default 1,000; up to `read::PAGE_MAX`).
    #[schemars(range(min = 1, max = 10_000))]
    limit: Option<usize>,
}

/// Changes to the public list since a cursor, for integrators who keep a
/// copy: ADD, MOD and DEL of entries (keyed by list and case number). The old
/// side is the public list as the ledger held it before `cursor`, in force
/// when that record was made; the new side is the list through the
/// projections' watermark, in force now (as `docket_fold::delta::of_store`,
/// with the new side pinned so that every page of one delta is read at it).
pub(super) async fn delta(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Params(params): Params<DeltaParams>,
) -> Result<Response, ApiError> {
    let limit = read::page_limit(params.limit)?;
    let worker = app.clone();
    let conditions = headers.clone();
    let answer = tokio::task::spawn_blocking(move || delta_answer(&worker, &params, limit, &conditions))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let watermark = [("docket-watermark", HeaderValue::from(answer.watermark))];
    read::conditional(&headers, &answer.etag, read::Audience::Public, "application/json", answer.body, &watermark)
}

/// One page of a delta, with its ETag (see [`view_answer`]).
fn delta_answer(app: &App, params: &DeltaParams, limit: usize, conditions: &HeaderMap) -> Result<Answer, ApiError> {
    let store = &app.store;
    let list = params.list.as_deref().map(|l| query::name("list", l)).transpose()?;
    let query = ["delta", params.list.as_deref().unwrap_or("")];
    let digest = read::query_digest(&query);
    let records = store.records();
    let cursor = params.cursor.as_deref().unwrap_or("0");
    let page = if cursor.bytes().all(|b| b.is_ascii_digit()) {
        let from: u64 = cursor.parse().map_err(|e| ApiError {
            field: Some("cursor".into()),
            ..ApiError::bad_request("bad_parameter", format!("cursor {cursor:?}: {e}"))
        })?;
        if from > records {
            let error = docket_fold::delta::DeltaError::CursorAhead { cursor: from, records };
            return Err(ApiError {
                field: Some("cursor".into()),
                ..ApiError::bad_request("bad_parameter", error.to_string())
            });
        }
        let point = read::Pinned { records, at: None, valid_at: docket_model::Timestamp::now() };
        read::Page { point, offset: 0, from: Some(from) }
    } else {
        read::Page::parse(cursor, &digest, true, records)?
    };
    let from = page.from.unwrap_or(0);
    // A delta from a number of records is in force now: its ETag is known once it is computed.
    let pinned = match params.cursor.as_deref() {
        Some(cursor) if !cursor.bytes().all(|b| b.is_ascii_digit()) => {
            let from_text = from.to_string();
            read::pinned_etag(app, &page.point, &[query[0], query[1], &from_text], page.offset, limit, None)
        }
        _ => None,
    };
    if let Some(etag) = pinned.as_ref().filter(|etag| read::matches(conditions, etag)) {
        return Ok(Answer { etag: etag.clone(), body: None, watermark: records });
    }
    let then = match from.checked_sub(1) {
        Some(last) => store.time_of(last)?.unwrap_or(page.point.valid_at),
        None => page.point.valid_at,
    };
    let old = docket_fold::delta::Point { records: from, valid_at: then };
    let new = docket_fold::delta::Point { records: page.point.records, valid_at: page.point.valid_at };
    let changes = docket_fold::delta::between(store, old, new, list.as_ref())?;
    let delta = docket_fold::delta::Delta { from, cursor: new.records, valid_at: new.valid_at, changes };
    let mut value = json!(delta);
    // From a number of records, the new side is now: `valid_at` and `cursor` name the instant.
    let instant = match pinned {
        Some(_) => None,
        None => Some(read::instant_etag(&value, &["valid_at", "cursor"], page.offset, limit)?),
    };
    if let Some(etag) = instant.as_ref().filter(|etag| read::matches(conditions, etag)) {
        return Ok(Answer { etag: etag.clone(), body: None, watermark: records });
    }
    let total = read::page_arrays(&mut value, &["changes"], page.offset, limit);
    value["total"] = json!(total);
    let next = page.offset.saturating_add(limit as u64);
    if next < total {
        value["next"] = json!(read::Page { offset: next, ..page }.cursor(&digest));
    }
    let body = serde_json::to_vec(&value).map_err(|e| ApiError::internal(format!("the delta: {e}")))?;
    let etag = pinned.or(instant).unwrap_or_else(|| read::body_etag(&body));
    Ok(Answer { etag, body: Some(body), watermark: records })
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
