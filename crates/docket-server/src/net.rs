//! Connections: the accept loop and hyper's HTTP/1.1 settings, so that no
//! client holds a socket, a task or memory without a named limit.
//!
//! * at most `connections_max` connections are served in full. When they
//!   are all taken, a new connection takes the place of the oldest idle one
//!   (no request in flight, no response being written: kept alive, or still
//!   sending its head), which is closed: idle sockets cannot lock clients
//!   out. When every connection is busy, up to `connections_reserve` more are
//!   served one request each by the reserve router (health, readiness and
//!   metrics only); past both, a new connection is closed once accepted;
//! * hyper's `header_read_timeout` closes a connection that does not send a
//!   whole request head in `header_read_timeout_ms` after it became ready
//!   for one: slow headers (slowloris) and idle kept-alive connections alike;
//! * request bodies are bounded in time and in bytes held by `routes::extract::body`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::App;

/// Largest read buffer of one connection (hyper's `max_buf_size`): bounds a
/// request head and what is buffered ahead of a handler. hyper's minimum is 8 KiB.
pub const READ_BUFFER_BYTES_MAX: usize = 64 * 1024;

/// Connections the kernel may hold waiting to be accepted (`listen`'s
/// backlog; Linux caps it at `net.core.somaxconn`, 4,096 by default).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Pause after a failed `accept` (out of file descriptors, say) before the
/// next, so that the loop does not spin while connections drain.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Longest wait, once stopping, for open connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The client's address, put into each request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer(pub(crate) IpAddr);

/// Longest wait for an evicted idle connection to give its place back.
const EVICT_WAIT: Duration = Duration::from_millis(100);

/// The open connections in order of age, each with its requests in flight
/// and a way to close it.
#[derive(Debug, Default)]
struct Connections {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Handle>>,
}

#[derive(Debug, Clone)]
struct Handle {
    /// Requests in flight, counted until their response body is written.
    busy: Arc<AtomicUsize>,
    evict: Arc<Notify>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Handle>> {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self) -> (u64, Handle) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let handle = Handle { busy: Arc::default(), evict: Arc::default() };
        self.lock().insert(id, handle.clone());
        (id, handle)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes the oldest connection with nothing in flight; false if every one is busy.
    fn evict_oldest_idle(&self) -> bool {
        let mut open = self.lock();
        let idle = open.iter().find(|(_, h)| h.busy.load(Ordering::Acquire) == 0).map(|(id, _)| *id);
        let Some(handle) = idle.and_then(|id| open.remove(&id)) else { return false };
        handle.evict.notify_one();
        true
    }
}

/// Counts a request in flight until dropped (with its response body).
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's place: in `connections_max`, or in the reserve. The
/// permit is given back when the connection ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    reserve: bool,
}

/// Accepts connections until the server is stopping, then waits (at most
/// `DRAIN_TIMEOUT`) for the open ones to finish.
pub(crate) async fn serve(listener: tokio::net::TcpListener, app: Arc<App>, router: Router, reserve: Router) {
    let full = Arc::new(Semaphore::new(app.limits.connections_max));
    let tracked = Arc::new(Connections::default());
    let spare = Arc::new(Semaphore::new(app.limits.connections_reserve));
    let mut stopping = app.stopping.subscribe();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "accept failed; pausing before the next");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let slot = match place(&app, &full, &tracked).await {
            Some(permit) => Slot { _permit: permit, reserve: false },
            None => match spare.clone().try_acquire_owned() {
                Ok(permit) => Slot { _permit: permit, reserve: true },
                Err(_) => {
                    app.metrics.connections_refused.inc();
                    drop(stream);
                    continue;
                }
            },
        };
        // Responses go out as soon as they are written: without TCP_NODELAY a
        // response written in two parts waits for the client's ACK of the first.
        let _ = stream.set_nodelay(true);
        let service = if slot.reserve { reserve.clone() } else { router.clone() };
        // Only full connections can be evicted for a new one: a reserve connection's place is its own.
        let (id, handle) = match slot.reserve {
            false => tracked.add(),
            true => (u64::MAX, Handle { busy: Arc::default(), evict: Arc::default() }),
        };
        let tracker = tracked.clone();
        let app = app.clone();
        connections.spawn(async move {
            connection(app, stream, peer, service, slot, handle).await;
            tracker.remove(id);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!("connections still open after {} s of stopping; closing them", DRAIN_TIMEOUT.as_secs());
    }
}

/// A place in `connections_max`: a free one, or the place of the oldest idle connection.
async fn place(app: &App, full: &Arc<Semaphore>, tracked: &Connections) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = full.clone().try_acquire_owned() {
        return Some(permit);
    }
    if !tracked.evict_oldest_idle() {
        return None;
    }
    app.metrics.connections_evicted.inc();
    tokio::time::timeout(EVICT_WAIT, full.clone().acquire_owned()).await.ok().and_then(Result::ok)
}

/// Serves one connection; shuts it down gracefully when the server stops,
/// and drops it when evicted.
async fn connection(
    app: Arc<App>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    slot: Slot,
    handle: Handle,
) {
    let _open = app.metrics.connection_opened();
    let reserve = slot.reserve;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(app.limits.header_read_timeout_ms))
        .max_buf_size(READ_BUFFER_BYTES_MAX)
        .keep_alive(!reserve);
    let ip = peer.ip();
    let busy = handle.busy.clone();
    let service = tower::service_fn(move |mut request: axum::http::Request<Incoming>| {
        request.extensions_mut().insert(Peer(ip));
        let guard = Busy::new(&busy);
        let response = router.clone().oneshot(request);
        async move {
            let response = response.await?;
            // The connection stays busy until the response body is written (an SSE stream included).
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                axum::body::Body::new(body.map_frame(move |frame| {
                    let _busy = &guard;
                    frame
                }))
            }))
        }
    });
    let served = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(served);
    let mut stopping = app.stopping.subscribe();
    let mut shutting = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended");
                }
                break;
            }
            _ = stopping.wait_for(|stop| *stop), if !shutting => {
                shutting = true;
                served.as_mut().graceful_shutdown();
            }
            _ = handle.evict.notified() => {
                tracing::debug!(%peer, "idle connection closed for a new one");
                break;
            }
        }
    }
    drop(slot);
}
