//! The router, one room per concern: [`append`] (appends), [`views`] (the
//! views, single records, the public list's delta), [`audit`] (the
//! due-process audit), [`session`] (session tokens), [`transparency`]
//! (checkpoints, witness cosignatures, proofs, tiles), [`operations`]
//! (health, readiness, metrics, the OpenAPI document); the feed's handlers
//! are in `crate::feed`. [`extract`] holds what the handlers share to read a
//! request, [`observe`] the layers every request passes through, [`read`]
//! what the reads share to scale to many pollers (pinned points, page
//! cursors, ETags, CORS for open reads, compression).
//!
//! The router is built through [`Routes`], which records each (method,
//! path) it registers, so a test compares the served routes with the
//! OpenAPI document without reading source.

mod append;
mod audit;
mod export;
mod extract;
mod observe;
mod operations;
mod read;
mod session;
mod transparency;
mod views;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;

use crate::feed;
use crate::App;

pub(crate) use audit::{AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX};
pub(crate) use extract::{Params, WIRE_PREFIX_BYTES};
pub(crate) use operations::public_keys_warning;
#[cfg(test)]
pub(crate) use operations::ready;
#[cfg(test)]
pub(crate) use views::VIEWS;

/// A router being built, with (in tests) the (method, path) of every route it registers.
#[derive(Debug)]
pub(crate) struct Routes {
    router: Router<Arc<App>>,
    #[cfg(test)]
    registered: Vec<(Method, &'static str)>,
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            #[cfg(test)]
            registered: vec![],
        }
    }

    /// Registers `handler` for GET `path`.
    fn get<H: Handler<T, Arc<App>>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, path, axum::routing::get(handler))
    }

    /// Registers `handler` for POST `path`.
    fn post<H: Handler<T, Arc<App>>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, path, axum::routing::post(handler))
    }

    fn add(mut self, method: Method, path: &'static str, route: MethodRouter<Arc<App>>) -> Self {
        self.router = self.router.route(path, route);
        // Only tests read the record (the OpenAPI document against the router).
        #[cfg(test)]
        self.registered.push((method, path));
        #[cfg(not(test))]
        let _ = method;
        self
    }

    /// Every (method, path pattern) registered, in order.
    #[cfg(test)]
    pub(crate) fn registered(&self) -> &[(Method, &'static str)] {
        &self.registered
    }
}

/// Every route of the API.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/v1/events", append::append)
        .post("/v1/events/batch", append::append_batch)
        .get("/v1/events/{seq}", views::event_at)
        .get("/v1/feed", feed::long_poll)
        .get("/v1/feed/sse", feed::sse)
        .get("/v1/views/{view}", views::view)
        .get("/v1/audit", audit::audit)
        .get("/v1/inquiries", crate::inquiries::list)
        .get("/v1/delta", views::delta)
        .get("/v1/export/{view}", export::export)
        .get("/v1/checkpoint", transparency::checkpoint)
        .post("/v1/session", session::session)
        .post("/v1/cosignatures", transparency::cosignatures)
        .get("/v1/proof/inclusion", transparency::inclusion)
        .get("/v1/proof/consistency", transparency::consistency)
        .get("/tile/{*path}", transparency::tile)
        .get("/log/checkpoint", transparency::checkpoint)
        .get("/log/tile/{*path}", transparency::tile)
        .get("/log/tile/entries/{*path}", transparency::entries)
        .get("/healthz", operations::healthz)
        .get("/readyz", operations::ready)
        .get("/metrics", operations::metrics)
        .get("/openapi.json", operations::openapi)
}

/// The routes a connection past `connections_max` is served: the operational endpoints.
pub(crate) fn reserve_routes() -> Routes {
    Routes::new()
        .get("/healthz", operations::healthz)
        .get("/readyz", operations::ready)
        .get("/metrics", operations::metrics)
}

/// The API's router: every route and the desk's pages, the JSON error contract for unknown
/// routes and methods, compression (gzip, br; never event streams), CORS
/// for open reads, metrics, caught panics and the access log.
pub(crate) fn router(app: Arc<App>) -> Router {
    routes()
        .router
        // The oversight desk's HTML pages (`crate::pages`): not API routes, not in the OpenAPI document.
        .merge(crate::pages::router())
        .fallback(crate::error::no_route)
        .method_not_allowed_fallback(crate::error::method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(app.clone(), crate::inquiries::record_reads))
        .layer(read::compression())
        .layer(read::cors())
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe::observe))
        .layer(crate::error::catch_panic())
        .layer(observe::access_log())
        .with_state(app)
}

/// What a connection past `connections_max` is served, one request: the
/// operational endpoints, and 503 `overloaded` for everything else.
pub(crate) fn reserve_router(app: Arc<App>) -> Router {
    reserve_routes()
        .router
        .fallback(crate::error::overloaded_connection)
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe::observe))
        .layer(crate::error::catch_panic())
        .layer(observe::access_log())
        .with_state(app)
}
