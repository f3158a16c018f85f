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
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
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
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedParams {
    /// The next seq to deliver (0: from the start).
    cursor: Option<u64>,
    /// Most records on a page (default 100; at most feed_page_max, larger asks are cut to it).
    limit: Option<usize>,
    /// Only events of this list.
    #[schemars(with = "Option<crate::routes::NameParam>")]
    list: Option<String>,
    /// Only events signed by this agency (the reader's own, unless it has oversight).
    #[schemars(with = "Option<crate::routes::NameParam>")]
    agency: Option<String>,
    /// An event kind, e.g. `designation_decision`.
    #[schemars(with = "Option<crate::routes::EventKindParam>")]
    kind: Option<String>,
    /// Long poll: wait up to this long for an event when caught up (cut to long_poll_ms_max; ignored by the SSE stream).
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

/// One record as the feed serves it: decoded once, its JSON written once,
/// shared by every reader that is sent it.
#[derive(Debug)]
pub(crate) struct Record {
    seq: u64,
    event: SignedEvent,
    /// `{"seq", "system_time", "kind", "signed"}`.
    json: Box<RawValue>,
}

impl Record {
    fn new(seq: u64, system_time: i64, event: SignedEvent) -> Result<Self, ApiError> {
        let time = Timestamp::from_micros(system_time).map(|t| t.to_string()).unwrap_or_default();
        let value =
            json!({"seq": seq, "system_time": time, "kind": event.event().kind().name(), "signed": event.to_json()});
        let json =
            serde_json::value::to_raw_value(&value).map_err(|e| ApiError::internal(format!("seq {seq}: {e}")))?;
        Ok(Self { seq, event, json })
    }

    /// The bytes this record holds in the tail cache: its JSON, its
    /// canonical bytes, and as much again for the decoded event (an estimate).
    fn bytes(&self) -> usize {
        self.json.get().len() + 2 * self.event.bytes().len() + std::mem::size_of::<Self>()
    }
}

/// One page of the feed.
#[derive(Debug)]
pub(crate) struct Records {
    pub(crate) records: Vec<Arc<Record>>,
    /// The cursor to ask from next.
    pub(crate) cursor: u64,
    /// The page reached the end of the log.
    pub(crate) caught_up: bool,
}

/// The events of one page of the feed, as JSON values.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) events: Vec<Value>,
}

/// The newest records of the log, contiguous, decoded and serialised once,
/// within `feed_tail_bytes_max`. Followers of the head read new records
/// from here: the first to ask for them reads them from the log (under the
/// lock, so the others wait for that one read rather than making their own);
/// a reader further behind than the cache reaches reads the segments.
#[derive(Debug)]
pub(crate) struct Tail {
    bytes_max: usize,
    cache: Mutex<TailCache>,
    /// One fill at a time: a reader that finds the cache short waits for
    /// the fill in progress instead of reading the same records itself.
    filling: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct TailCache {
    /// The seq of `records[0]`.
    start: u64,
    records: VecDeque<Arc<Record>>,
    bytes: usize,
}

/// What the cache can do for a read from a cursor.
enum Lookup {
    /// The records from the cursor to the head.
    Hit(Vec<Arc<Record>>),
    /// The cursor is before the cache's first record: read the segments.
    Behind,
    /// The cache does not reach the head yet (or holds nothing): fill it.
    Short,
}

impl TailCache {
    fn end(&self) -> u64 {
        self.start + self.records.len() as u64
    }

    fn push(&mut self, record: Arc<Record>, bytes_max: usize) {
        debug_assert_eq!(record.seq, self.end(), "the tail stays contiguous");
        self.bytes += record.bytes();
        self.records.push_back(record);
        while self.bytes > bytes_max {
            let Some(oldest) = self.records.pop_front() else { break };
            self.bytes -= oldest.bytes();
            self.start += 1;
        }
    }

    fn lookup(&self, cursor: u64, head: u64) -> Lookup {
        if self.records.is_empty() || self.end() < head {
            return Lookup::Short;
        }
        if cursor < self.start {
            return Lookup::Behind;
        }
        let from = (cursor - self.start) as usize;
        Lookup::Hit(
            self.records.range(from.min(self.records.len())..).take(FEED_SCAN_FRAMES_MAX as usize).cloned().collect(),
        )
    }
}

impl Tail {
    pub(crate) fn new(bytes_max: usize) -> Self {
        Self { bytes_max, cache: Mutex::new(TailCache::default()), filling: tokio::sync::Mutex::new(()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TailCache> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The records from `cursor` to `head` if the cache holds or can take
    /// them (it is filled up to `head` first), or None: the caller reads
    /// the segments. At most `FEED_SCAN_FRAMES_MAX` records.
    async fn from(&self, app: &Arc<App>, cursor: u64, head: u64) -> Result<Option<Vec<Arc<Record>>>, ApiError> {
        if self.bytes_max == 0 {
            return Ok(None);
        }
        if cursor >= head {
            return Ok(Some(vec![]));
        }
        match self.lock().lookup(cursor, head) {
            Lookup::Hit(records) => return Ok(Some(records)),
            Lookup::Behind => return Ok(None),
            Lookup::Short => {}
        }
        let _filling = self.filling.lock().await;
        // Another reader may have filled it while this one waited.
        let from = {
            let cache = self.lock();
            match cache.lookup(cursor, head) {
                Lookup::Hit(records) => return Ok(Some(records)),
                Lookup::Behind => return Ok(None),
                // Empty, or too far behind the head to catch up in one fill: start at the reader.
                Lookup::Short if cache.records.is_empty() || head - cache.end() > TAIL_FILL_RECORDS_MAX => None,
                Lookup::Short => Some(cache.end()),
            }
        };
        let start = from.unwrap_or(cursor);
        if head.saturating_sub(start) > TAIL_FILL_RECORDS_MAX {
            return Ok(None);
        }
        let records = read_records(app, start, head, usize::MAX, None).await?.records;
        let mut cache = self.lock();
        if from.is_none() {
            *cache = TailCache { start, ..TailCache::default() };
        }
        for record in records {
            cache.push(record, self.bytes_max);
        }
        Ok(match cache.lookup(cursor, head) {
            Lookup::Hit(records) => Some(records),
            Lookup::Behind | Lookup::Short => None,
        })
    }
}

/// Most records the tail cache reads from the log in one fill; a reader
/// further behind reads the segments itself.
const TAIL_FILL_RECORDS_MAX: u64 = 4096;

/// Reads from the segments up to `limit` matching records from `cursor`,
/// stopping before `head` (all records when `filter` is None).
async fn read_records(
    app: &Arc<App>,
    cursor: u64,
    head: u64,
    limit: usize,
    filter: Option<&Filter>,
) -> Result<Records, ApiError> {
    let worker = app.clone();
    let filter = filter.cloned();
    let span = tracing::info_span!("feed_read", cursor, limit);
    tokio::task::spawn_blocking(move || {
        let _span = span.entered();
        let mut records = vec![];
        let mut next = cursor;
        let mut failed = None;
        worker
            .reader
            .read_from(cursor, None, |frame| {
                if frame.seq >= head || next - cursor >= FEED_SCAN_FRAMES_MAX {
                    return ControlFlow::Break(());
                }
                match SignedEvent::from_wire(&frame.wire) {
                    Ok(event) if filter.as_ref().is_none_or(|f| f.matches(&event)) => {
                        match Record::new(frame.seq, frame.system_time, event) {
                            Ok(record) => records.push(Arc::new(record)),
                            Err(error) => {
                                failed = Some(error);
                                return ControlFlow::Break(());
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        failed = Some(ApiError::internal(format!("seq {}: {error}", frame.seq)));
                        return ControlFlow::Break(());
                    }
                }
                next = frame.seq + 1;
                if records.len() >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(error) = failed {
            return Err(error);
        }
        Ok(Records { records, cursor: next, caught_up: next >= head })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

/// Up to `limit` matching records from `cursor`: from the tail cache when
/// it covers the cursor, from the segments otherwise.
pub(crate) async fn records(app: &Arc<App>, cursor: u64, limit: usize, filter: &Filter) -> Result<Records, ApiError> {
    let head = *app.head.borrow();
    let page = match app.tail.from(app, cursor, head).await? {
        Some(cached) => {
            let mut records = vec![];
            let mut next = cursor;
            for record in cached {
                if record.seq >= head {
                    break;
                }
                if filter.matches(&record.event) {
                    records.push(record.clone());
                }
                next = record.seq + 1;
                if records.len() >= limit {
                    break;
                }
            }
            Records { records, cursor: next, caught_up: next >= head }
        }
        None => read_records(app, cursor, head, limit, Some(filter)).await?,
    };
    app.metrics.feed_events.inc_by(page.records.len() as u64);
    Ok(page)
}

/// Reads up to `limit` matching events from `cursor`, as JSON values.
pub(crate) async fn read(app: &Arc<App>, cursor: u64, limit: usize, filter: &Filter) -> Result<Page, ApiError> {
    let page = records(app, cursor, limit, filter).await?;
    let events = page
        .records
        .iter()
        .map(|record| serde_json::from_str(record.json.get()).map_err(|e| ApiError::internal(e.to_string())))
        .collect::<Result<_, _>>()?;
    Ok(Page { events })
}

/// A long-poll answer: the records' JSON as written once.
#[derive(Debug, serde::Serialize)]
struct PageBody<'a> {
    events: Vec<&'a RawValue>,
    cursor: u64,
    caught_up: bool,
}

/// `GET /v1/feed`: a page of events from `cursor`, waiting up to `wait_ms`
/// for one when caught up.
pub(crate) async fn long_poll(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Params(params): Params<FeedParams>,
) -> Result<axum::response::Response, ApiError> {
    let scope = crate::auth::authenticate(&app, &method, &uri, &headers)?;
    let _stream = open_stream(&app, &scope.agency)?;
    let filter = params.filter(scope)?;
    let cursor = params.cursor.unwrap_or(0);
    let limit = params.limit.unwrap_or(100).clamp(1, app.limits.feed_page_max);
    let mut page = records(&app, cursor, limit, &filter).await?;
    let wait = Duration::from_millis(params.wait_ms.unwrap_or(0).min(app.limits.long_poll_ms_max));
    if page.records.is_empty() && page.caught_up && !wait.is_zero() {
        let mut head = app.head.subscribe();
        let from = page.cursor;
        let mut stopping = app.stopping.subscribe();
        let grown = tokio::select! {
            grown = tokio::time::timeout(wait, head.wait_for(|size| *size > from)) => grown.is_ok(),
            _ = stopping.wait_for(|stop| *stop) => false,
        };
        if grown {
            page = records(&app, from, limit, &filter).await?;
        }
    }
    let events = page.records.iter().map(|record| &*record.json).collect();
    Ok(Json(PageBody { events, cursor: page.cursor, caught_up: page.caught_up }).into_response())
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
    /// When a stream at the head may read its next page (`feed_sse_interval_ms`).
    next_read: tokio::time::Instant,
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
) -> Result<axum::response::Response, ApiError> {
    let (scope, key) = crate::auth::authenticate_key(&app, &method, &uri, &headers)?;
    let agency = scope.agency.clone();
    let guard = open_stream(&app, &agency)?;
    let filter = params.filter(scope)?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let cursor = resume.or(params.cursor).unwrap_or(0);
    let limit = params.limit.unwrap_or(100).clamp(1, app.limits.feed_page_max);
    let state = Feed {
        app,
        filter,
        cursor,
        limit,
        queued: VecDeque::new(),
        announced: false,
        agency,
        key,
        next_read: tokio::time::Instant::now(),
        _guard: guard,
    };
    // Fused: a stream that has ended may be polled again without a panic.
    let stream = futures_util::StreamExt::fuse(futures_util::stream::unfold(state, next_event));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
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
        let page = match records(&feed.app, feed.cursor, feed.limit, &feed.filter).await {
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
        for record in page.records {
            let id = (record.seq + 1).to_string();
            feed.queued.push_back(Event::default().id(id).event("event").data(record.json.get()));
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
        // At the head, a stream reads at most once per interval: what arrives
        // within it goes out in one write instead of one write per commit.
        tokio::select! {
            () = tokio::time::sleep_until(feed.next_read) => {}
            _ = stopping.wait_for(|stop| *stop) => return None,
        }
        let interval = Duration::from_millis(feed.app.limits.feed_sse_interval_ms);
        feed.next_read = tokio::time::Instant::now() + interval;
    }
}
