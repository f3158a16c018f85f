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

use docket_fold::case::{AsOf, Known};
use docket_fold::query;
use docket_fold::views::{self, PublicEntry, Source};
use docket_model::{ListId, Timestamp};

use super::cache::Public;
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
/// filters' choices and, with `since`, the delta. The public list of the
/// point is computed once and shared (`cache`); filters and the search by
/// case number run over it.
fn list_data(app: &App, params: &ListParams) -> Result<Value, PageError> {
    let store = &app.store;
    let as_of = query::resolve(store, None, given(&params.valid_at))?;
    let list = given(&params.list).map(|l| query::name("list", l)).transpose()?;
    let public = app.pages.public(app, as_of)?;
    let by_subject;
    let on_list = |e: &&PublicEntry| list.as_ref().is_none_or(|l| e.list == *l);
    let mut entries: Vec<&PublicEntry> = match given(&params.q) {
        // A subject's code or number: the public view of that subject's cases only.
        Some(q) if query::parse_subject("q", q).is_ok() => {
            by_subject = subject_entries(app, as_of, list.as_ref(), q)?;
            by_subject.iter().filter(on_list).collect()
        }
        _ => public.entries().filter(on_list).collect(),
    };
    if let Some(q) = given(&params.q).filter(|q| query::parse_subject("q", q).is_err()) {
        entries = by_number(entries, q);
    }
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
    let shown: Vec<&PublicEntry> = entries.into_iter().skip(offset).take(LIST_PAGE).collect();
    let registry = store.current_registry();
    let lists: Vec<Value> = registry
        .lists()
        .map(|(id, state)| context! { id => id.as_str(), name => state.name, authority => state.designating_agency.as_str() })
        .collect();
    let authorities: BTreeSet<&str> = registry.lists().map(|(_, s)| s.designating_agency.as_str()).collect();
    let cursor = watermark(as_of);
    let delta =
        params.since.map(|since| delta_data(app, since, cursor, list.as_ref(), &public, as_of.valid_at)).transpose()?;
    Ok(context! {
        entries => Value::from_serialize(&shown),
        total, offset,
        previous => offset.checked_sub(LIST_PAGE).or(if offset > 0 { Some(0) } else { None }),
        next => (offset + LIST_PAGE < total).then_some(offset + LIST_PAGE),
        q => given(&params.q), list => given(&params.list), authority => given(&params.authority),
        status => given(&params.status), valid_at => given(&params.valid_at),
        lists, authorities => authorities.into_iter().collect::<Vec<_>>(),
        cursor,
        delta,
    })
}

/// The records a point "now" covers (the store's watermark when it was resolved).
fn watermark(as_of: AsOf) -> u64 {
    match as_of.known {
        Known::Through(last) => last + 1,
        Known::All | Known::At(_) => 0,
    }
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
fn by_number<'a>(mut entries: Vec<&'a PublicEntry>, q: &str) -> Vec<&'a PublicEntry> {
    if entries.iter().any(|e| e.number.as_str() == q) {
        entries.retain(|e| e.number.as_str() == q);
        return entries;
    }
    let needle = q.to_lowercase();
    entries.retain(|e| e.number.as_str().to_lowercase().contains(&needle));
    entries
}

/// The public list's changes since cursor `since` to the list through
/// `cursor` records in force at `valid_at` (`now`, the page's list), as
/// `/v1/delta` computes them (`docket_fold::delta`): the old side is the
/// list before `since`, in force when that record was made. The first
/// `DELTA_SHOWN_MAX` of them.
fn delta_data(
    app: &App,
    since: u64,
    cursor: u64,
    list: Option<&ListId>,
    now: &Public,
    valid_at: Timestamp,
) -> Result<Value, PageError> {
    if since > cursor {
        return Err(PageError::bad("since", format!("cursor {since}: the projections hold {cursor} records")));
    }
    let before = match since.checked_sub(1) {
        None => None,
        Some(last) => {
            let then = app.store.time_of(last)?.unwrap_or(valid_at);
            Some(app.pages.public(app, AsOf { known: Known::Through(last), valid_at: then })?)
        }
    };
    let on_list = |e: &&PublicEntry| list.is_none_or(|l| e.list == *l);
    let changes = docket_fold::delta::diff(
        before.iter().flat_map(|before| before.entries()).filter(on_list),
        now.entries().filter(on_list),
    );
    let total = changes.len();
    let changes: Vec<_> = changes.into_iter().take(DELTA_SHOWN_MAX).collect();
    Ok(context! { from => since, cursor, total, changes => Value::from_serialize(&changes) })
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
        let list = query::name("list", &params.list)?;
        let as_of = query::resolve(&app.store, None, given(&params.valid_at))?;
        let public = app.pages.public(&app, as_of)?;
        let entry = public.entries().find(|e| e.list == list && e.number.as_str() == params.number);
        Ok(context! { list => params.list, number => params.number, entry => Value::from_serialize(entry) })
    })
    .await?;
    page.render("public_case.html", data)
}
