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
//! The router is built through [`Routes`], which takes each route's
//! OpenAPI documentation with its handler (`crate::openapi::doc`), so a
//! route cannot be served without being in `/openapi.json`; the handlers'
//! extractors give the parameters (aide over schemars).

mod append;
mod audit;
mod export;
mod extract;
mod observe;
mod operations;
mod queries;
mod read;
mod session;
mod transparency;
mod views;

use std::sync::Arc;

use aide::axum::routing::{get_with, post_with};
use aide::axum::ApiRouter;
use aide::operation::OperationHandler;
use aide::transform::TransformOperation;
use aide::{OperationInput, OperationOutput};
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::Router;

use crate::feed;
use crate::openapi::{self, doc, Access, Documented};
use crate::App;

pub(crate) use audit::{AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX};
pub(crate) use extract::{Params, WIRE_PREFIX_BYTES};
pub(crate) use operations::public_keys_warning;
#[cfg(test)]
pub(crate) use operations::ready;
pub(crate) use queries::{EventKindParam, NameParam};

/// A router being built: every route with its OpenAPI documentation.
#[derive(Debug)]
pub(crate) struct Routes {
    router: ApiRouter<Arc<App>>,
}

impl Routes {
    fn new() -> Self {
        Self { router: ApiRouter::new() }
    }

    /// Registers `handler` for GET `path`, documented by `docs`.
    fn get<H, I, O, T>(
        self,
        path: &str,
        handler: H,
        docs: impl FnOnce(TransformOperation<'_>) -> Documented<'_>,
    ) -> Self
    where
        H: Handler<T, Arc<App>> + OperationHandler<I, O>,
        I: OperationInput,
        O: OperationOutput,
        T: 'static,
    {
        Self { router: self.router.api_route(path, get_with(handler, |op| docs(op).0)) }
    }

    /// Registers `handler` for POST `path`, documented by `docs`.
    fn post<H, I, O, T>(
        self,
        path: &str,
        handler: H,
        docs: impl FnOnce(TransformOperation<'_>) -> Documented<'_>,
    ) -> Self
    where
        H: Handler<T, Arc<App>> + OperationHandler<I, O>,
        I: OperationInput,
        O: OperationOutput,
        T: 'static,
    {
        Self { router: self.router.api_route(path, post_with(handler, |op| docs(op).0)) }
    }

    /// The router and the OpenAPI document of its routes.
    pub(crate) fn finish_api_with(
        self,
        api: &mut aide::openapi::OpenApi,
        transform: impl FnOnce(aide::transform::TransformOpenApi<'_>) -> aide::transform::TransformOpenApi<'_>,
    ) -> Router<Arc<App>> {
        self.router.finish_api_with(api, transform)
    }

    fn into_router(self) -> Router<Arc<App>> {
        let mut api = aide::openapi::OpenApi::default();
        self.router.finish_api(&mut api)
    }
}

/// The media types of the log's texts and its tiles.
const TEXT: &[&str] = &["text/plain; charset=utf-8"];
const TILE: &[&str] = &["application/octet-stream"];

/// Every route of the API, with its documentation.
pub(crate) fn routes() -> Routes {
    let routes = Routes::new()
        .post("/v1/events", append::append, |op| {
            doc(op, "append_event", "appends", "Append one signed event; the receipt once durable", Access::SignedEvent)
                .describe("JSON, or the wire form as application/octet-stream. A replay of an acknowledged event is answered with its receipt.")
                .body::<docket_model::SignedJson>("The signed event", true)
                .json::<openapi::Receipt>(200, "Appended (or already appended): the receipt")
                .errors(&[400, 408, 409, 413, 422, 429, 503])
                .done()
        })
        .post("/v1/events/batch", append::append_batch, |op| {
            doc(op, "append_batch", "appends", "Append signed events in order, sharing group commits", Access::SignedEvent)
                .describe("As application/octet-stream: wire forms each preceded by its length (u32, big-endian). A result per event: 200 when every one was appended, 207 when any was refused.")
                .body::<openapi::SignedEventBatch>("The signed events, in order", true)
                .json::<openapi::BatchResults>(200, "Every event appended")
                .json::<openapi::BatchResults>(207, "Some events refused: see each result")
                .errors(&[400, 408, 413, 422, 429, 503])
                .done()
        })
        .get("/v1/events/{seq}", views::event_at, |op| {
            doc(op, "get_event", "views", "One record of the log", Access::Agency)
                .json::<openapi::Record>(200, "The record")
                .errors(&[400, 404])
                .done()
        })
        .get("/v1/feed", feed::long_poll, |op| {
            doc(op, "feed", "feed", "The change feed from a cursor, filtered; long poll with wait_ms", Access::Agency)
                .json::<openapi::FeedPage>(200, "A page of records")
                .errors(&[400, 404, 429, 503])
                .done()
        })
        .get("/v1/feed/sse", feed::sse, |op| {
            doc(op, "feed_sse", "feed", "The change feed as Server-Sent Events (resume with Last-Event-ID)", Access::Agency)
                .describe("`event: event` (data: a Record, id: the next cursor) and `event: caught-up`.")
                .events::<openapi::FeedEvent>(200, "The event stream")
                .errors(&[400, 404, 429, 503])
                .done()
        });
    let routes = view_routes(routes)
        .get("/v1/delta", views::delta, |op| {
            doc(op, "delta", "feed", "Changes to the public list since a cursor: ADD, MOD, DEL of entries", Access::Open)
                .json::<openapi::Paged<docket_fold::delta::Delta>>(200, "A page of the changes")
                .conditional()
                .errors(&[400, 404])
                .done()
        })
        .get("/v1/audit", audit::audit, |op| {
            doc(op, "audit", "audit", "The due-process audit, one page of findings", Access::Agency)
                .json::<openapi::AuditPage>(200, "The report with a page of its findings")
                .errors(&[400, 404])
                .done()
        })
        .get("/v1/inquiries", crate::inquiries::list, |op| {
            doc(op, "inquiries", "audit", "The inquiry register (oversight role): who read what, recorded before each non-public answer left", Access::Agency)
                .json::<openapi::Inquiries>(200, "A page of the register, with its signed checkpoint")
                .errors(&[400, 404])
                .done()
        })
        .get("/v1/export/{view}", export::export, |op| {
            doc(op, "export", "exports", "A bulk export of the public list, streamed", Access::Open)
                .describe("CSV (header row, RFC 4180), JSON Lines, FollowTheMoney entities (JSON Lines) or Parquet; see crates/docket-export.")
                .bytes(200, "The export", &["text/csv; charset=utf-8; header=present", "application/x-ndjson", "application/vnd.apache.parquet"])
                .errors(&[400, 404])
                .done()
        })
        .post("/v1/session", session::session, |op| {
            doc(op, "session", "operations", "A session token for the signing agency, for reads until expires_at", Access::Signed)
                .json::<openapi::Session>(200, "The token")
                .done()
        });
    operational_routes(transparency_routes(routes))
}

/// The views, one route each.
fn view_routes(routes: Routes) -> Routes {
    use docket_fold::views as v;
    use openapi::Paged;
    routes
        .get("/v1/views/list", views::list, |op| {
            doc(op, "view_list", "views", "A designating agency's lists, status per case", Access::Agency)
                .json::<Paged<v::ListView>>(200, "A page of the view")
                .conditional()
                .errors(&[400, 404, 503])
                .done()
        })
        .get("/v1/views/enforcement", views::enforcement, |op| {
            doc(
                op,
                "view_enforcement",
                "views",
                "A responsible agency's worklist: to apply, applied, must lift",
                Access::Agency,
            )
            .json::<Paged<v::EnforcementView>>(200, "A page of the view")
            .conditional()
            .errors(&[400, 404, 503])
            .done()
        })
        .get("/v1/views/subject", views::subject, |op| {
            doc(op, "view_subject", "views", "Every case and measure of one subject", Access::Agency)
                .json::<Paged<v::SubjectView>>(200, "A page of the view")
                .conditional()
                .errors(&[400, 404, 503])
                .done()
        })
        .get("/v1/views/public", views::public, |op| {
            doc(op, "view_public", "views", "The public list, identifiers masked", Access::Open)
                .json::<Paged<v::PublicView>>(200, "A page of the view")
                .conditional()
                .errors(&[400, 404, 503])
                .done()
        })
        .get("/v1/views/check", views::check, |op| {
            doc(
                op,
                "view_check",
                "views",
                "Is the subject restricted by the measure, and on what grounds",
                Access::Agency,
            )
            .json::<v::CheckView>(200, "The answer and its grounds")
            .conditional()
            .errors(&[400, 404, 503])
            .done()
        })
        .get("/v1/views/registry", views::registry, |op| {
            doc(op, "view_registry", "views", "Agencies, keys, lists, measures, MOUs, rule sets", Access::Open)
                .json::<v::RegistryView>(200, "The registry")
                .conditional()
                .errors(&[400, 404, 503])
                .done()
        })
}

/// Checkpoints, cosignatures, proofs and tiles.
fn transparency_routes(routes: Routes) -> Routes {
    routes
        .get("/v1/checkpoint", transparency::checkpoint, |op| {
            doc(
                op,
                "checkpoint",
                "transparency",
                "The latest signed checkpoint (C2SP tlog-checkpoint), with its cosignatures",
                Access::Open,
            )
            .text(200, "The checkpoint note", TEXT)
            .conditional()
            .errors(&[503])
            .done()
        })
        .post("/v1/cosignatures", transparency::cosignatures, |op| {
            doc(
                op,
                "cosign",
                "transparency",
                "Submit witness cosignatures (C2SP tlog-cosignature v1) of the latest checkpoint",
                Access::Open,
            )
            .text_body("The checkpoint note with the witnesses' signature lines", "text/plain")
            .json::<openapi::Cosignatures>(200, "The witnesses whose cosignatures were accepted")
            .errors(&[400, 403, 408, 409, 413, 503])
            .done()
        })
        .get("/v1/proof/inclusion", transparency::inclusion, |op| {
            doc(op, "inclusion_proof", "transparency", "RFC 6962 inclusion proof", Access::Open)
                .json::<openapi::InclusionProof>(200, "The proof")
                .errors(&[400, 503])
                .done()
        })
        .get("/v1/proof/consistency", transparency::consistency, |op| {
            doc(op, "consistency_proof", "transparency", "RFC 6962 consistency proof", Access::Open)
                .json::<openapi::ConsistencyProof>(200, "The proof")
                .errors(&[400, 503])
                .done()
        })
        .get("/tile/{*path}", transparency::tile, |op| {
            doc(
                op,
                "tile_alias",
                "transparency",
                "Alias of /log/tile/{path} for hash tiles (kept for older clients)",
                Access::Open,
            )
            .bytes(200, "The tile", TILE)
            .errors(&[400, 404])
            .done()
        })
        .get("/log/checkpoint", transparency::checkpoint, |op| {
            doc(
                op,
                "log_checkpoint",
                "transparency",
                "C2SP tlog-tiles: the latest signed checkpoint (as /v1/checkpoint)",
                Access::Open,
            )
            .text(200, "The checkpoint note", TEXT)
            .conditional()
            .errors(&[503])
            .done()
        })
        .get("/log/tile/{*path}", transparency::tile, |op| {
            doc(
                op,
                "tile",
                "transparency",
                "C2SP tlog-tiles hash tile <L>/<N>[.p/<W>] (full tiles are immutable)",
                Access::Open,
            )
            .bytes(200, "The tile", TILE)
            .errors(&[400, 404])
            .done()
        })
        .get("/log/tile/entries/{*path}", transparency::entries, |op| {
            doc(
                op,
                "entry_bundle",
                "transparency",
                "C2SP tlog-tiles entry bundle <N>[.p/<W>] (oversight role)",
                Access::Agency,
            )
            .describe(
                "Each entry a big-endian u16 length and the leaf entry (seq, system time, signed event wire form).",
            )
            .bytes(200, "The bundle", TILE)
            .errors(&[400, 404])
            .done()
        })
}

/// Health, readiness, metrics and this document.
fn operational_routes(routes: Routes) -> Routes {
    routes
        .get("/healthz", operations::healthz, |op| {
            doc(
                op,
                "healthz",
                "operations",
                "Liveness: ok; after a warning line when the ledger's keys are public (a demo)",
                Access::Open,
            )
            .text(200, "ok", TEXT)
            .done()
        })
        .get("/readyz", operations::ready, |op| {
            doc(op, "readyz", "operations", "Readiness: log and projection sizes and named checks", Access::Open)
                .json::<openapi::Ready>(200, "Every check passes")
                .json::<openapi::NotReady>(503, "A check fails (code not_ready, naming each failure)")
                .done()
        })
        .get("/metrics", operations::metrics, |op| {
            doc(op, "metrics", "operations", "Prometheus metrics (OpenMetrics text)", Access::Open)
                .text(200, "The metrics", &["application/openmetrics-text; version=1.0.0; charset=utf-8"])
                .done()
        })
        .get("/openapi.json", operations::openapi, |op| {
            doc(op, "openapi", "operations", "This document (OpenAPI 3.1)", Access::Open)
                .json::<serde_json::Value>(200, "The document")
                .done()
        })
}

/// The routes a connection past `connections_max` is served: the operational endpoints.
pub(crate) fn reserve_routes() -> Routes {
    Routes::new()
        .get("/healthz", operations::healthz, |op| {
            doc(op, "healthz", "operations", "Liveness", Access::Open).text(200, "ok", TEXT).done()
        })
        .get("/readyz", operations::ready, |op| {
            doc(op, "readyz", "operations", "Readiness", Access::Open)
                .json::<openapi::Ready>(200, "Every check passes")
                .json::<openapi::NotReady>(503, "A check fails")
                .done()
        })
        .get("/metrics", operations::metrics, |op| {
            doc(op, "metrics", "operations", "Prometheus metrics", Access::Open)
                .text(200, "The metrics", &["application/openmetrics-text; version=1.0.0; charset=utf-8"])
                .done()
        })
}

/// The API's router: every route and the desk's pages, the JSON error contract for unknown
/// routes and methods, compression (gzip, br; never event streams), CORS
/// for open reads, metrics, caught panics and the access log.
pub(crate) fn router(app: Arc<App>) -> Router {
    routes()
        .into_router()
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
        .into_router()
        .fallback(crate::error::overloaded_connection)
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe::observe))
        .layer(crate::error::catch_panic())
        .layer(observe::access_log())
        .with_state(app)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The paths and methods a router's document lists.
    fn documented(routes: super::Routes) -> std::collections::BTreeSet<(String, String)> {
        let mut api = aide::openapi::OpenApi::default();
        let _router = routes.finish_api_with(&mut api, |api| api);
        let document = serde_json::to_value(&api).unwrap();
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        documented
    }

    /// The connection reserve serves only routes of the API.
    #[test]
    fn the_reserve_serves_a_subset_of_the_routes() {
        let all = documented(super::routes());
        let reserve = documented(super::reserve_routes());
        assert!(!reserve.is_empty());
        assert!(reserve.is_subset(&all), "{reserve:?}");
    }
}
