//! Connections: the accept loop and hyper's HTTP/1.1 settings, so that no
//! client holds a socket, a task or memory without a named limit.
//!
//! * at most `connections_max` connections are served in full; up to
//!   `connections_reserve` more are served one request each by the reserve
//!   router (health, readiness and metrics only), so an operator can still
//!   look at a server that is full; past both, a new connection is closed as
//!   soon as it is accepted;
//! * hyper's `header_read_timeout` closes a connection that does not send a
//!   whole request head in `header_read_timeout_ms` after it became ready
//!   for one: slow headers (slowloris) and idle kept-alive connections alike;
//! * request bodies are bounded in time and in bytes held by `routes::body`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::App;

/// Largest read buffer of one connection (hyper's `max_buf_size`): bounds a
/// request head and what is buffered ahead of a handler. hyper's minimum is 8 KiB.
pub const READ_BUFFER_BYTES_MAX: usize = 64 * 1024;

/// Pause after a failed `accept` (out of file descriptors, say) before the
/// next, so that the loop does not spin while connections drain.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Longest wait, once stopping, for open connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The client's address, put into each request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer(pub(crate) IpAddr);

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
        let slot = match full.clone().try_acquire_owned() {
            Ok(permit) => Slot { _permit: permit, reserve: false },
            Err(_) => match spare.clone().try_acquire_owned() {
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
        connections.spawn(connection(app.clone(), stream, peer, service, slot));
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!("connections still open after {} s of stopping; closing them", DRAIN_TIMEOUT.as_secs());
    }
}

/// Serves one connection; shuts it down gracefully when the server stops.
async fn connection(app: Arc<App>, stream: tokio::net::TcpStream, peer: SocketAddr, router: Router, slot: Slot) {
    let _open = app.metrics.connection_opened();
    let reserve = slot.reserve;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(app.limits.header_read_timeout_ms))
        .max_buf_size(READ_BUFFER_BYTES_MAX)
        .keep_alive(!reserve);
    let ip = peer.ip();
    let service = router.map_request(move |mut request: axum::http::Request<Incoming>| {
        request.extensions_mut().insert(Peer(ip));
        request
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
        }
    }
    drop(slot);
}
