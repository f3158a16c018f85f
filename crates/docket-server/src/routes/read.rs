//! What the reads share so that many integrators can poll them: answers
//! pinned to a point of the ledger, page cursors over list-shaped answers,
//! strong ETags and `If-None-Match` (304), and who may read from a browser
//! of another origin (CORS).
//!
//! **Pinning.** An answer is computed at a [`Pinned`] point: the first
//! `records` records of the log (or those recorded by a time, when that time
//! is earlier than the last of them), in force at `valid_at`. At a pinned
//! point the answer never changes: the log is append-only and system times
//! strictly increase, so every page of one answer is read at the same point
//! and a client paging through gets every entry exactly once.
//!
//! **ETags.** When the query fixes the point (`as_of`, `valid_at`, a page
//! cursor), the ETag is derived before anything is computed, from the Merkle
//! root of the log's first `records` records (which fixes every one of them),
//! the point, the normalised query, the page and the reader (a signed read
//! answers differently per reader): a matching `If-None-Match` is answered
//! 304 without computing the view. When it does not (no `as_of`, no
//! `valid_at`: what is in force *now*, which changes as terms run out even
//! when nothing is appended), the ETag is the BLAKE3 hash of the body: the
//! view is computed, and only the bytes are saved. Either way a 304 is never
//! stale.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use docket_fold::case::{AsOf, Known};
use docket_fold::Store;
use docket_model::Timestamp;

use crate::error::ApiError;
use crate::policy::Scope;
use crate::App;

/// The most entries (or changes) one page of a view or of `/v1/delta` holds.
pub(crate) const PAGE_MAX: usize = 10_000;
/// The entries (or changes) of a page when `limit` is not given.
pub(crate) const PAGE_DEFAULT: usize = 1_000;
/// The longest page cursor read: a longer one is refused before it is parsed.
pub(crate) const CURSOR_BYTES_MAX: usize = 160;

/// The point an answer is computed at: it never changes once pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pinned {
    /// The log's first `records` records (0: none).
    pub(super) records: u64,
    /// Only those recorded at or before this time (earlier than the last of them).
    pub(super) at: Option<Timestamp>,
    /// What was in force then.
    pub(super) valid_at: Timestamp,
}

impl Pinned {
    /// Pins a resolved bitemporal point to what the store holds now: "all"
    /// becomes the records folded, a time at or past the last record's
    /// becomes those records (later records are recorded later still).
    pub(super) fn of(store: &Store, as_of: AsOf) -> Result<Self, ApiError> {
        let valid_at = as_of.valid_at;
        match as_of.known {
            Known::All => Ok(Self { records: store.records(), at: None, valid_at }),
            Known::Through(last) => Ok(Self { records: last.saturating_add(1), at: None, valid_at }),
            Known::At(time) => {
                let records = store.records();
                let Some(last) = records.checked_sub(1) else { return Ok(Self { records, at: None, valid_at }) };
                let last_time = store.time_of(last)?;
                let at = last_time.filter(|last_time| time < *last_time).map(|_| time);
                Ok(Self { records, at, valid_at })
            }
        }
    }

    /// The point as the views take it.
    pub(super) fn as_of(&self) -> AsOf {
        let known = match (self.at, self.records.checked_sub(1)) {
            (Some(time), _) => Known::At(time),
            (None, Some(last)) => Known::Through(last),
            // Nothing recorded when the point was pinned (no page cursor
            // names such a point): the store was empty.
            (None, None) => Known::All,
        };
        AsOf { known, valid_at: self.valid_at }
    }

    /// The point in a page cursor: `records.valid_at.at` (µs; `-` for no `at`).
    fn encode(&self) -> String {
        let at = self.at.map_or_else(|| "-".to_owned(), |at| at.micros().to_string());
        format!("{}.{}.{at}", self.records, self.valid_at.micros())
    }
}

/// Where a page of a list-shaped answer starts, and the point it is read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Page {
    /// The point every page of the answer is read at.
    pub(super) point: Pinned,
    /// The entries before this page.
    pub(super) offset: u64,
    /// For `/v1/delta`: the cursor the delta starts from (its old side).
    pub(super) from: Option<u64>,
}

/// A short digest of the query a page cursor belongs to, so that a cursor
/// is not applied to another query.
pub(super) fn query_digest(query: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("docket/v1/page-cursor query");
    for part in query {
        hasher.update(&(part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize().as_bytes()[..6])
}

impl Page {
    /// The cursor of this page, for the query with digest `query`. Documented
    /// in API.md (opaque to clients): `v1.RECORDS.VALID_AT.AT.OFFSET.QUERY`
    /// for views, `d1.FROM.RECORDS.VALID_AT.AT.OFFSET.QUERY` for the delta.
    pub(super) fn cursor(&self, query: &str) -> String {
        match self.from {
            None => format!("v1.{}.{}.{query}", self.point.encode(), self.offset),
            Some(from) => format!("d1.{from}.{}.{}.{query}", self.point.encode(), self.offset),
        }
    }

    /// Reads a page cursor of the query with digest `query` (`delta`: of
    /// `/v1/delta`), against a store holding `records` records; refuses
    /// (400 `bad_parameter`, field `cursor`) one that is not.
    pub(super) fn parse(text: &str, query: &str, delta: bool, records: u64) -> Result<Self, ApiError> {
        let bad = |why: &str| ApiError {
            field: Some("cursor".into()),
            ..ApiError::bad_request("bad_parameter", format!("cursor {text:?}: {why}"))
        };
        if text.len() > CURSOR_BYTES_MAX {
            return Err(bad(&format!("longer than CURSOR_BYTES_MAX = {CURSOR_BYTES_MAX} bytes")));
        }
        let parts: Vec<&str> = text.split('.').collect();
        let (from, rest) = match (delta, parts.as_slice()) {
            (false, ["v1", rest @ ..]) => (None, rest),
            (true, ["d1", from, rest @ ..]) => (Some(from.parse::<u64>().map_err(|_| bad("not a page cursor"))?), rest),
            _ => return Err(bad("not a page cursor of this route (pass back the `next` of the last page)")),
        };
        let [records_text, valid_at, at, offset, digest] = rest else { return Err(bad("not a page cursor")) };
        if *digest != query {
            return Err(bad("a cursor of another query: page with the parameters of the first page"));
        }
        let number = |text: &str| text.parse::<u64>().map_err(|_| bad("not a page cursor"));
        let time = |text: &str| {
            text.parse::<i64>()
                .ok()
                .and_then(|micros| Timestamp::from_micros(micros).ok())
                .ok_or_else(|| bad("not a page cursor"))
        };
        let point = Pinned {
            records: number(records_text)?,
            valid_at: time(valid_at)?,
            at: if *at == "-" { None } else { Some(time(at)?) },
        };
        if point.records == 0 {
            return Err(bad("not a page cursor: no page follows an empty answer"));
        }
        if point.records > records || from.is_some_and(|from| from > point.records) {
            return Err(bad(&format!("past what the projections hold ({records} records)")));
        }
        Ok(Self { point, offset: number(offset)?, from })
    }
}

/// The page size a request asks for: `limit` (1 to [`PAGE_MAX`]) or [`PAGE_DEFAULT`].
pub(super) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(PAGE_DEFAULT),
        Some(limit @ 1..=PAGE_MAX) => Ok(limit),
        Some(limit) => Err(ApiError {
            field: Some("limit".into()),
            ..ApiError::bad_request("bad_parameter", format!("limit {limit}: between 1 and PAGE_MAX = {PAGE_MAX}"))
        }),
    }
}

/// Keeps the items `[offset, offset + limit)` of the arrays `fields` of
/// `answer`, taken one after the other; returns how many there were in all.
pub(super) fn page_arrays(answer: &mut serde_json::Value, fields: &[&str], offset: u64, limit: usize) -> u64 {
    let end = offset.saturating_add(limit as u64);
    let mut start = 0u64;
    for field in fields {
        if let Some(serde_json::Value::Array(items)) = answer.get_mut(*field) {
            let len = items.len() as u64;
            let to = usize::try_from(end.saturating_sub(start).min(len)).unwrap_or(items.len());
            let from = usize::try_from(offset.saturating_sub(start).min(len)).unwrap_or(items.len()).min(to);
            items.truncate(to);
            items.drain(..from);
            start += len;
        }
    }
    start
}

/// Keeps the entries `[offset, offset + limit)` of the sections `sections`
/// of `answer`, each with its `entries`, counted across sections in order;
/// a section is kept on a page holding some of its entries, an empty one on
/// the page its position falls in. Returns the entries in all.
pub(super) fn page_sections(
    answer: &mut serde_json::Value,
    sections: &str,
    entries: &str,
    offset: u64,
    limit: usize,
) -> u64 {
    let end = offset.saturating_add(limit as u64);
    let Some(serde_json::Value::Array(all)) = answer.get_mut(sections) else { return 0 };
    let length = |section: &serde_json::Value| section.get(entries).and_then(|e| e.as_array()).map_or(0, Vec::len);
    let total: u64 = all.iter().map(|section| length(section) as u64).sum();
    let mut start = 0u64;
    let mut kept = vec![];
    for mut section in all.drain(..) {
        let len = length(&section) as u64;
        let keep = if len == 0 {
            // On the page its position falls in, or on the last page when it is past every entry.
            offset <= start && (start < end || end >= total)
        } else {
            let (from, to) = (offset.max(start), end.min(start + len));
            from < to && {
                let limit = usize::try_from(to - from).unwrap_or(usize::MAX);
                page_arrays(&mut section, &[entries], from - start, limit);
                true
            }
        };
        if keep {
            kept.push(section);
        }
        start += len;
    }
    *all = kept;
    total
}

/// How a response may be kept by caches: a signed read only by the reader's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    /// An open read: any cache may keep it, revalidating each time.
    Public,
    /// A signed read: only the reader's own cache, revalidating each time.
    Reader,
}

impl Audience {
    fn cache_control(self) -> &'static str {
        match self {
            Self::Public => "no-cache",
            Self::Reader => "private, no-cache",
        }
    }
}

/// The ETag of an answer at a pinned point: from the Merkle root of the
/// log's first `point.records` records, the point, the normalised `query`,
/// the page and the reader. `None` when the server's tree does not hold
/// that many records yet (then the body's hash stands in).
pub(super) fn pinned_etag(
    app: &App,
    point: &Pinned,
    query: &[&str],
    offset: u64,
    limit: usize,
    reader: Option<&Scope>,
) -> Option<String> {
    let root = app.tree.read().unwrap_or_else(std::sync::PoisonError::into_inner).root(point.records)?;
    let mut hasher = blake3::Hasher::new_derive_key("docket/v1/etag pinned");
    hasher.update(&root);
    hasher.update(point.encode().as_bytes());
    for part in query {
        hasher.update(&(part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(&offset.to_be_bytes());
    hasher.update(&(limit as u64).to_be_bytes());
    if let Some(reader) = reader {
        hasher.update(reader.agency.as_str().as_bytes());
        hasher.update(&[u8::from(reader.oversight)]);
    }
    Some(format!("\"p{}\"", hex::encode(&hasher.finalize().as_bytes()[..16])))
}

/// The weak ETag of an answer read at the instant of the request (no
/// `as_of`, no `valid_at`: what is in force now): the BLAKE3 hash of the
/// whole answer (every page of it, before it was cut to one) but for the
/// fields `instant` that name the instant and the records it was read at,
/// and of the page (`offset`, `limit`). Weak, because two answers with one
/// ETag differ in those fields: an append or a tick of the clock that
/// changes no entry keeps it, and a client holding a page keeps following
/// its `next`, whose point holds the same entries.
pub(super) fn instant_etag(
    whole: &serde_json::Value,
    instant: &[&str],
    offset: u64,
    limit: usize,
) -> Result<String, ApiError> {
    let mut hasher = blake3::Hasher::new_derive_key("docket/v1/etag instant");
    hasher.update(&offset.to_be_bytes());
    hasher.update(&(limit as u64).to_be_bytes());
    if let serde_json::Value::Object(fields) = whole {
        for (name, value) in fields.iter().filter(|(name, _)| !instant.contains(&name.as_str())) {
            hasher.update(&(name.len() as u64).to_be_bytes());
            hasher.update(name.as_bytes());
            serde_json::to_writer(&mut hasher, value)
                .map_err(|e| ApiError::internal(format!("ETag of {name}: {e}")))?;
        }
    } else {
        serde_json::to_writer(&mut hasher, whole).map_err(|e| ApiError::internal(format!("ETag: {e}")))?;
    }
    Ok(format!("W/\"i{}\"", hex::encode(&hasher.finalize().as_bytes()[..16])))
}

/// The ETag of a body: its BLAKE3 hash (the checkpoint).
pub(super) fn body_etag(body: &[u8]) -> String {
    let hash = blake3::Hasher::new_derive_key("docket/v1/etag body").update(body).finalize();
    format!("\"b{}\"", hex::encode(&hash.as_bytes()[..16]))
}

/// Whether `If-None-Match` names `etag` (or is `*`): weak comparison, as RFC 9110 says for it.
pub(super) fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag.strip_prefix("W/").unwrap_or(etag))
}

/// An answer with its ETag: 304 with no body when `If-None-Match` names
/// it, else 200 with the body. `extra` headers go on both.
pub(super) fn conditional(
    request: &HeaderMap,
    etag: &str,
    audience: Audience,
    content_type: &'static str,
    body: Option<Vec<u8>>,
    extra: &[(&'static str, HeaderValue)],
) -> Result<Response, ApiError> {
    let not_modified = matches(request, etag);
    let (status, body) = match body {
        Some(body) if !not_modified => (StatusCode::OK, Body::from(body)),
        None if !not_modified => return Err(ApiError::internal("a conditional answer without its body")),
        _ => (StatusCode::NOT_MODIFIED, Body::empty()),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let etag = HeaderValue::from_str(etag).map_err(|e| ApiError::internal(format!("ETag {etag:?}: {e}")))?;
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(audience.cache_control()));
    if status == StatusCode::OK {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    for (name, value) in extra {
        headers.insert(*name, value.clone());
    }
    Ok(response)
}

/// The open reads a page of another origin may make (CORS): GET and HEAD
/// of the public list, the registry, the delta, checkpoints, proofs and
/// tiles. Signed reads get no CORS grant.
pub(crate) fn open_to_other_origins(path: &str) -> bool {
    matches!(
        path,
        "/v1/views/public"
            | "/v1/views/registry"
            | "/v1/delta"
            | "/v1/export/public"
            | "/v1/checkpoint"
            | "/log/checkpoint"
            | "/v1/proof/inclusion"
            | "/v1/proof/consistency"
    ) || path.starts_with("/tile/")
        || (path.starts_with("/log/tile/") && !path.starts_with("/log/tile/entries/"))
}

/// The CORS layer: GET and HEAD from any origin on [`open_to_other_origins`]
/// paths, without credentials, exposing `ETag` and `docket-watermark`;
/// `If-None-Match` may be sent.
pub(super) fn cors() -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(|_origin, parts| open_to_other_origins(parts.uri.path())))
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD])
        .allow_headers([header::IF_NONE_MATCH])
        .expose_headers([header::ETAG, header::HeaderName::from_static("docket-watermark")])
}

/// The compression layer: gzip or br as the client accepts, for answers
/// over 32 bytes, never for event streams (each SSE event must leave at
/// once) nor for tiles (hashes do not compress).
pub(super) fn compression() -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{NotForContentType, Predicate};
    use tower_http::compression::{CompressionLayer, DefaultPredicate};
    CompressionLayer::new()
        .no_deflate()
        .no_zstd()
        .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("application/octet-stream")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_of_arrays_hold_every_item_once_in_order() {
        let answer = json!({"a": [1, 2, 3], "b": [], "c": [4, 5]});
        for limit in 1..=6 {
            let mut seen = vec![];
            let mut offset = 0;
            loop {
                let mut page = answer.clone();
                let total = page_arrays(&mut page, &["a", "b", "c"], offset, limit);
                assert_eq!(total, 5);
                for field in ["a", "b", "c"] {
                    seen.extend(page[field].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()));
                }
                offset += limit as u64;
                if offset >= total {
                    break;
                }
            }
            assert_eq!(seen, [1, 2, 3, 4, 5], "limit {limit}");
        }
    }

    #[test]
    fn pages_of_sections_hold_every_entry_and_every_section_once() {
        let answer = json!({"lists": [
            {"list": "empty-first", "entries": []},
            {"list": "x", "entries": [1, 2, 3]},
            {"list": "empty-middle", "entries": []},
            {"list": "y", "entries": [4]},
            {"list": "empty-last", "entries": []},
        ]});
        for limit in 1..=6 {
            let (mut entries, mut sections) = (vec![], vec![]);
            let mut offset = 0;
            loop {
                let mut page = answer.clone();
                let total = page_sections(&mut page, "lists", "entries", offset, limit);
                assert_eq!(total, 4);
                for section in page["lists"].as_array().unwrap() {
                    let items = section["entries"].as_array().unwrap();
                    assert!(items.len() <= limit);
                    entries.extend(items.iter().map(|v| v.as_u64().unwrap()));
                    sections.push(section["list"].as_str().unwrap().to_owned());
                }
                offset += limit as u64;
                if offset >= total {
                    break;
                }
            }
            assert_eq!(entries, [1, 2, 3, 4], "limit {limit}");
            sections.dedup();
            assert_eq!(sections, ["empty-first", "x", "empty-middle", "y", "empty-last"], "limit {limit}");
        }
    }

    #[test]
    fn page_cursors_round_trip_and_refuse_what_they_are_not() {
        let point = Pinned { records: 42, at: None, valid_at: Timestamp::from_micros(1_700_000_000_000_000).unwrap() };
        let page = Page { point, offset: 1000, from: None };
        let query = query_digest(&["public", ""]);
        let cursor = page.cursor(&query);
        assert_eq!(Page::parse(&cursor, &query, false, 42).unwrap(), page);
        assert_eq!(Page::parse(&cursor, &query, false, 41).unwrap_err().code, "bad_parameter");
        assert!(Page::parse(&cursor, &query_digest(&["public", "x"]), false, 42).is_err(), "another query");
        assert!(Page::parse(&cursor, &query, true, 42).is_err(), "a view's cursor on the delta");
        let at = Pinned { at: Some(Timestamp::from_micros(-5).unwrap()), ..point };
        let delta = Page { point: at, offset: 3, from: Some(7) };
        assert_eq!(Page::parse(&delta.cursor(&query), &query, true, 42).unwrap(), delta);
        for bad in ["", "v1", "v1.x.1.-.0.abc", &"9".repeat(CURSOR_BYTES_MAX + 1)] {
            assert_eq!(Page::parse(bad, &query, false, 42).unwrap_err().field.as_deref(), Some("cursor"), "{bad}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let mut headers = HeaderMap::new();
        assert!(!matches(&headers, "\"a\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"a\""));
        assert!(matches(&headers, "\"a\""));
        assert!(!matches(&headers, "\"b\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches(&headers, "\"b\""));
    }
}
