//! The change feed: the log itself, read from a cursor (the next seq to
//! read), filtered by list, agency and event kind; as long-poll JSON pages
//! and as Server-Sent Events. A cursor is durable: after a restart the feed
//! resumes from it with nothing missed and nothing out of order. Delivery is
//! at least once: a client that loses a page asks again from its last cursor.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};

use docket_model::{AgencyId, Body, EventKind, Name, SignedEvent, Signer, Timestamp};

use crate::error::ApiError;
use crate::metrics::GaugeGuard;
use crate::policy::Scope;
use crate::routes::Params;
use crate::App;

/// Most frames one feed request scans (matching or not) before it answers.
pub(crate) const FEED_SCAN_FRAMES_MAX: u64 = 100_000;

/// Open feed reads per agency, bounded by `feed_streams_per_agency_max`.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    open: Mutex<HashMap<AgencyId, usize>>,
}

/// One open feed read; closes it when dropped.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    app: Arc<App>,
    agency: AgencyId,
    _subscriber: GaugeGuard,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut open = self.app.streams.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.agency) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.agency);
            }
        }
    }
}

/// Opens a feed read for `agency`, or refuses with 429 `too_many_streams`.
pub(crate) fn open_stream(app: &Arc<App>, agency: &AgencyId) -> Result<StreamGuard, ApiError> {
    let max = app.limits.feed_streams_per_agency_max;
    let mut open = app.streams.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let count = open.entry(agency.clone()).or_insert(0);
    if *count >= max {
        return Err(ApiError {
            retry_after_s: Some(1),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!("agency \"{agency}\" has {count} feed reads open; feed_streams_per_agency_max = {max}"),
            )
        });
    }
    *count += 1;
    Ok(StreamGuard {
        app: app.clone(),
        agency: agency.clone(),
        _subscriber: GaugeGuard::new(&app.metrics.feed_subscribers),
    })
}

/// Which events a feed delivers.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    list: Option<Name>,
    agency: Option<Name>,
    kind: Option<EventKind>,
    /// The reader's scope (None: everything, for a caller that checked already).
    scope: Option<Arc<Scope>>,
}

impl Filter {
    /// Only the records `scope` may see.
    pub(crate) fn within(scope: Scope) -> Self {
        Self { scope: Some(Arc::new(scope)), ..Self::default() }
    }

    fn matches(&self, event: &SignedEvent) -> bool {
        if self.scope.as_ref().is_some_and(|scope| !scope.sees(event)) {
            return false;
        }
        let event = event.event();
        let list = match &event.body {
            Body::Case(case) => Some(&case.list),
            Body::Registry(_) => None,
        };
        let agency = match &event.signer {
            Signer::Agency(agency) => Some(agency),
            Signer::Registry => None,
        };
        self.list.as_ref().is_none_or(|l| list == Some(l))
            && self.agency.as_ref().is_none_or(|a| agency == Some(a))
            && self.kind.is_none_or(|k| event.kind() == k)
    }
}

/// Feed parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedParams {
    /// The next seq to deliver (0: from the start).
    cursor: Option<u64>,
    limit: Option<usize>,
    list: Option<String>,
    agency: Option<String>,
    /// An event kind, e.g. `designation_decision`.
    kind: Option<String>,
    /// Long poll: wait up to this long for an event when caught up.
    wait_ms: Option<u64>,
}

impl FeedParams {
    /// The filter, within what `scope` may read: `agency` must be the reader,
    /// `list` one it follows (API.md's read policy), unless it has oversight.
    fn filter(&self, scope: Scope) -> Result<Filter, ApiError> {
        if let Some(agency) = &self.agency {
            scope.own(agency, "agency", "the feed")?;
        }
        if let Some(list) = &self.list {
            scope.follows(list)?;
        }
        let name = |value: &Option<String>, parameter: &str| {
            value.as_deref().map(|v| docket_fold::query::name(parameter, v)).transpose()
        };
        let kind = match &self.kind {
            None => None,
            Some(text) => Some(EventKind::ALL.into_iter().find(|k| k.name() == text).ok_or_else(|| ApiError {
                field: Some("kind".into()),
                ..ApiError::bad_request("bad_parameter", format!("kind {text:?} is not an event kind"))
            })?),
        };
        let scope = Some(Arc::new(scope));
        Ok(Filter { list: name(&self.list, "list")?, agency: name(&self.agency, "agency")?, kind, scope })
    }
}

/// One page of the feed.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) events: Vec<Value>,
    /// The cursor to ask from next.
    pub(crate) cursor: u64,
    /// The page reached the end of the log.
    pub(crate) caught_up: bool,
}

fn record_json(seq: u64, system_time: i64, event: &SignedEvent) -> Value {
    let time = Timestamp::from_micros(system_time).map(|t| t.to_string()).unwrap_or_default();
    json!({"seq": seq, "system_time": time, "kind": event.event().kind().name(), "signed": event.to_json()})
}

/// Reads up to `limit` matching events from `cursor`.
pub(crate) async fn read(app: &Arc<App>, cursor: u64, limit: usize, filter: &Filter) -> Result<Page, ApiError> {
    let head = *app.head.borrow();
    let worker = app.clone();
    let filter = filter.clone();
    let span = tracing::info_span!("feed_read", cursor, limit);
    tokio::task::spawn_blocking(move || {
        let _span = span.entered();
        let mut events = vec![];
        let mut next = cursor;
        let mut failed = None;
        worker
            .reader
            .read_from(cursor, None, |frame| {
                if frame.seq >= head || next - cursor >= FEED_SCAN_FRAMES_MAX {
                    return ControlFlow::Break(());
                }
                match SignedEvent::from_wire(&frame.wire) {
                    Ok(event) if filter.matches(&event) => {
                        events.push(record_json(frame.seq, frame.system_time, &event))
                    }
                    Ok(_) => {}
                    Err(error) => {
                        failed = Some(format!("seq {}: {error}", frame.seq));
                        return ControlFlow::Break(());
                    }
                }
                next = frame.seq + 1;
                if events.len() >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(error) = failed {
            return Err(ApiError::internal(error));
        }
        worker.metrics.feed_events.inc_by(events.len() as u64);
        Ok(Page { events, cursor: next, caught_up: next >= head })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

/// `GET /v1/feed`: a page of events from `cursor`, waiting up to `wait_ms`
/// for one when caught up.
pub(crate) async fn long_poll(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Params(params): Params<FeedParams>,
) -> Result<Json<Value>, ApiError> {
    let scope = crate::auth::authenticate(&app, &method, &uri, &headers)?;
    let _stream = open_stream(&app, &scope.agency)?;
    let filter = params.filter(scope)?;
    let cursor = params.cursor.unwrap_or(0);
    let limit = params.limit.unwrap_or(100).clamp(1, app.limits.feed_page_max);
    let mut page = read(&app, cursor, limit, &filter).await?;
    let wait = Duration::from_millis(params.wait_ms.unwrap_or(0).min(app.limits.long_poll_ms_max));
    if page.events.is_empty() && page.caught_up && !wait.is_zero() {
        let mut head = app.head.subscribe();
        let from = page.cursor;
        let mut stopping = app.stopping.subscribe();
        let grown = tokio::select! {
            grown = tokio::time::timeout(wait, head.wait_for(|size| *size > from)) => grown.is_ok(),
            _ = stopping.wait_for(|stop| *stop) => false,
        };
        if grown {
            page = read(&app, from, limit, &filter).await?;
        }
    }
    Ok(Json(json!({"events": page.events, "cursor": page.cursor, "caught_up": page.caught_up})))
}

/// An SSE stream's state between events.
struct Feed {
    app: Arc<App>,
    filter: Filter,
    cursor: u64,
    limit: usize,
    queued: VecDeque<Event>,
    announced: bool,
    agency: AgencyId,
    key: docket_model::PublicKey,
    _guard: StreamGuard,
}

/// `GET /v1/feed/sse`: the feed as Server-Sent Events. Each event's id is the
/// cursor after it, so a reconnecting client's `Last-Event-ID` resumes the
/// feed; a `caught-up` event marks the end of the log each time it is reached.
pub(crate) async fn sse(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Params(params): Params<FeedParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (scope, key) = crate::auth::authenticate_key(&app, &method, &uri, &headers)?;
    let agency = scope.agency.clone();
    let guard = open_stream(&app, &agency)?;
    let filter = params.filter(scope)?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let cursor = resume.or(params.cursor).unwrap_or(0);
    let limit = params.limit.unwrap_or(100).clamp(1, app.limits.feed_page_max);
    let state =
        Feed { app, filter, cursor, limit, queued: VecDeque::new(), announced: false, agency, key, _guard: guard };
    let stream = futures_util::stream::unfold(state, next_event);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The stream's next event: queued ones first, then the next page, then a
/// `caught-up` marker once, then a wait for the log to grow. None ends the
/// stream (the server stops, or the reader's key no longer stands).
async fn next_event(mut feed: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    loop {
        if let Some(event) = feed.queued.pop_front() {
            return Some((Ok(event), feed));
        }
        // A revoked key ends its streams at the next page, as it ends its sessions.
        if let Err(error) = crate::auth::key_stands(&feed.app, &feed.agency, &feed.key) {
            tracing::info!(agency = %feed.agency, code = error.code, "feed stream ended: the key no longer stands");
            return None;
        }
        let page = match read(&feed.app, feed.cursor, feed.limit, &feed.filter).await {
            Ok(page) => page,
            Err(error) => {
                let event = Event::default().event("error").data(error.body().to_string());
                feed.announced = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Some((Ok(event), feed));
            }
        };
        if page.cursor > feed.cursor {
            feed.announced = false;
        }
        for value in page.events {
            let seq = value["seq"].as_u64().unwrap_or(0);
            feed.queued.push_back(Event::default().id((seq + 1).to_string()).event("event").data(value.to_string()));
        }
        feed.cursor = page.cursor;
        if !feed.queued.is_empty() || !page.caught_up {
            continue;
        }
        if !feed.announced {
            feed.announced = true;
            let marker = json!({"cursor": feed.cursor});
            let event = Event::default().id(feed.cursor.to_string()).event("caught-up").data(marker.to_string());
            return Some((Ok(event), feed));
        }
        let mut head = feed.app.head.subscribe();
        let mut stopping = feed.app.stopping.subscribe();
        let from = feed.cursor;
        tokio::select! {
            grown = head.wait_for(|size| *size > from) => if grown.is_err() { return None },
            _ = stopping.wait_for(|stop| *stop) => return None,
        }
    }
}
