//! The public pages (no sign-in): the public list with search and filters,
//! one entry's public page, and the delta as "what changed since". Every
//! entry is the public view's own (`docket_fold::views::public_view`),
//! masked there and never here.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use minijinja::{context, Value};
use serde::Deserialize;

use docket_fold::case::AsOf;
use docket_fold::query;
use docket_fold::views::{self, PublicEntry, Source};
use docket_model::{ListId, Timestamp};

use super::timeline::Only;
use super::{blocking, Page, PageError};
use crate::App;

/// Entries on one page of the public list.
pub(crate) const LIST_PAGE: usize = 50;

/// Most changes the "what changed since" section shows (the rest: `/v1/delta`).
pub(crate) const DELTA_SHOWN_MAX: usize = 200;

/// Parameters of the public list page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListParams {
    /// A subject's code or identity number, or (part of) a case number.
    q: Option<String>,
    list: Option<String>,
    authority: Option<String>,
    /// `active` or `contested`.
    status: Option<String>,
    offset: Option<usize>,
    /// A cursor (records): show what changed since it.
    since: Option<u64>,
    /// The list as in force then (a date or RFC 3339 time; default now).
    valid_at: Option<String>,
    lang: Option<String>,
}

/// An optional text parameter: absent or empty is none.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /`: the public list.
pub(super) async fn list(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(|e| PageError::bad("query", e.body_text()))?;
    let page = Page::new(&uri, &headers, params.lang.as_deref());
    let data = blocking(move || list_data(&app, &params)).await?;
    page.render("list.html", data)
}

/// The entries matching the search and filters, one page of them, the
/// filters' choices and, with `since`, the delta.
fn list_data(app: &App, params: &ListParams) -> Result<Value, PageError> {
    let store = &app.store;
    let as_of = query::resolve(store, None, given(&params.valid_at))?;
    let list = given(&params.list).map(|l| query::name("list", l)).transpose()?;
    let mut entries: Vec<PublicEntry> = match given(&params.q) {
        // A subject's code or number: the public view of that subject's cases only.
        Some(q) if query::parse_subject("q", q).is_ok() => subject_entries(app, as_of, list.as_ref(), q)?,
        Some(q) => by_number(views::public_view(store, as_of, list.as_ref())?.entries, q),
        None => views::public_view(store, as_of, list.as_ref())?.entries,
    };
    if let Some(authority) = given(&params.authority) {
        entries.retain(|e| e.authority.as_str() == authority);
    }
    match given(&params.status) {
        None => {}
        Some("active") => entries.retain(|e| !e.contested),
        Some("contested") => entries.retain(|e| e.contested),
        Some(other) => return Err(PageError::bad("status", format!("{other:?} is not active or contested"))),
    }
    let total = entries.len();
    let offset = params.offset.unwrap_or(0).min(total);
    let shown: Vec<PublicEntry> = entries.into_iter().skip(offset).take(LIST_PAGE).collect();
    let registry = store.current_registry();
    let lists: Vec<Value> = registry
        .lists()
        .map(|(id, state)| context! { id => id.as_str(), name => state.name, authority => state.designating_agency.as_str() })
        .collect();
    let authorities: BTreeSet<&str> = registry.lists().map(|(_, s)| s.designating_agency.as_str()).collect();
    let delta = params.since.map(|since| delta_data(app, since, list.as_ref(), as_of.valid_at)).transpose()?;
    Ok(context! {
        entries => Value::from_serialize(&shown),
        total, offset,
        previous => offset.checked_sub(LIST_PAGE).or(if offset > 0 { Some(0) } else { None }),
        next => (offset + LIST_PAGE < total).then_some(offset + LIST_PAGE),
        q => given(&params.q), list => given(&params.list), authority => given(&params.authority),
        status => given(&params.status), valid_at => given(&params.valid_at),
        lists, authorities => authorities.into_iter().collect::<Vec<_>>(),
        cursor => store.records(),
        delta,
    })
}

/// The public list's entries of the subject `q` names: the public view
/// (its own entries, masked by it) over that subject's cases only, read
/// through the subject index instead of the whole list.
fn subject_entries(app: &App, as_of: AsOf, list: Option<&ListId>, q: &str) -> Result<Vec<PublicEntry>, PageError> {
    let subject = query::parse_subject("q", q)?;
    let mut cases = vec![];
    app.store.for_subject(&subject, &mut |case| cases.push(case))?;
    Ok(views::public_view(&Only { app, cases: &cases }, as_of, list)?.entries)
}

/// The case numbered `q`, else every case whose number contains `q`.
fn by_number(mut entries: Vec<PublicEntry>, q: &str) -> Vec<PublicEntry> {
    if entries.iter().any(|e| e.number.as_str() == q) {
        entries.retain(|e| e.number.as_str() == q);
        return entries;
    }
    let needle = q.to_lowercase();
    entries.retain(|e| e.number.as_str().to_lowercase().contains(&needle));
    entries
}

/// The public list's changes since cursor `since` to the list in force at
/// `valid_at` (as `/v1/delta`, which is in force now), the first
/// `DELTA_SHOWN_MAX` of them.
fn delta_data(app: &App, since: u64, list: Option<&ListId>, valid_at: Timestamp) -> Result<Value, PageError> {
    let delta =
        docket_fold::delta::of_store(&app.store, since, list, valid_at).map_err(|e| PageError::bad("since", e))?;
    let total = delta.changes.len();
    let changes: Vec<_> = delta.changes.into_iter().take(DELTA_SHOWN_MAX).collect();
    Ok(context! { from => delta.from, cursor => delta.cursor, total, changes => Value::from_serialize(&changes) })
}

/// Parameters of an entry's public page.
#[derive(Debug, Deserialize)]
pub(crate) struct CaseParams {
    list: String,
    number: String,
    /// The list as in force then (default now).
    valid_at: Option<String>,
    lang: Option<String>,
}

/// `GET /case?list=&number=`: one entry of the public list, as the public
/// view has it, or a page saying it is not on the list.
pub(super) async fn case(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Query<CaseParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(|e| PageError::bad("query", e.body_text()))?;
    let page = Page::new(&uri, &headers, params.lang.as_deref());
    let data = blocking(move || {
        let store = &app.store;
        let list = query::name("list", &params.list)?;
        let as_of = query::resolve(store, None, given(&params.valid_at))?;
        let view = views::public_view(store, as_of, Some(&list))?;
        let entry = view.entries.into_iter().find(|e| e.number.as_str() == params.number);
        Ok(context! { list => params.list, number => params.number, entry => Value::from_serialize(&entry) })
    })
    .await?;
    page.render("public_case.html", data)
}
