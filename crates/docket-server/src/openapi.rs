//! The OpenAPI 3.1 document of the API, built from one table of routes and
//! from the JSON Schemas the types generate (signed events, audit reports),
//! so it cannot drift from them. Served at `/openapi.json`; the checked-in
//! copy `schemas/openapi.json` is compared with it by a test
//! (`DOCKET_BLESS=1` rewrites it).

use serde_json::{json, Map, Value};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Open,
    /// A request signed by a registered agency key (`API.md`, "Who may read").
    SignedRequest,
    /// Anyone; the body is a signed event, which is the credential.
    SignedEvent,
}

/// One documented route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The HTTP method, lower-case as OpenAPI writes it (`get`, `post`).
    pub method: &'static str,
    /// The path, with `{name}` for a path parameter.
    pub path: &'static str,
    /// What the route does, in one line.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Query parameters: (name, required, description).
    pub query: &'static [(&'static str, bool, &'static str)],
    /// The request body's schema (a component name), if any.
    pub body: Option<&'static str>,
    /// The success response's schema (a component name).
    pub response: &'static str,
}

const BITEMPORAL: [(&str, bool, &str); 3] = [
    ("as_of", false, "A seq (inclusive) or an RFC 3339 time: what the ledger held then"),
    ("valid_at", false, "An RFC 3339 time or a date: what was in force then"),
    ("min_seq", false, "Wait (bounded) until the projections include this seq"),
];

/// The page parameters of the list-shaped views (`/v1/delta` lists its own).
const PAGED: [(&str, bool, &str); 2] = [
    ("limit", false, "Most entries on a page (default 1,000, at most 10,000)"),
    ("cursor", false, "The next of the last page: the page after it, read at the same point"),
];

/// The list-shaped views, answered in pages.
const PAGED_VIEWS: [&str; 4] = ["/v1/views/list", "/v1/views/enforcement", "/v1/views/subject", "/v1/views/public"];

/// Whether a route's answers carry an ETag and answer a matching `If-None-Match` with 304.
fn conditional(route: &Route) -> bool {
    route.method == "get"
        && (route.path.starts_with("/v1/views/")
            || route.path == "/v1/delta"
            || route.path == "/v1/checkpoint"
            || route.path == "/log/checkpoint")
}

/// Query parameters: `params!(name, required, description; ...)`.
macro_rules! params {
    ($($name:literal, $required:literal, $what:literal);*) => {
        &[$(($name, $required, $what)),*]
    };
}

/// Every route, as served by `routes::router` (a test compares the two).
pub const ROUTES: &[Route] = &[
    Route {
        method: "post",
        path: "/v1/events",
        summary:
            "Append one signed event (JSON, or the wire form as application/octet-stream); the receipt once durable",
        access: Access::SignedEvent,
        query: &[],
        body: Some("SignedEvent"),
        response: "Receipt",
    },
    Route {
        method: "post",
        path: "/v1/events/batch",
        summary:
            "Append signed events in order, sharing group commits; a result per event (200, or 207 if any was refused)",
        access: Access::SignedEvent,
        query: &[],
        body: Some("SignedEventBatch"),
        response: "BatchResults",
    },
    Route {
        method: "get",
        path: "/v1/events/{seq}",
        summary: "One record of the log",
        access: Access::SignedRequest,
        query: &[],
        body: None,
        response: "Record",
    },
    Route {
        method: "get",
        path: "/v1/feed",
        summary: "The change feed from a cursor, filtered; long poll with wait_ms",
        access: Access::SignedRequest,
        query: params!("cursor", false, "The next seq to deliver"; "limit", false, "Most events"; "list", false, "Only this list"; "agency", false, "Only events signed by this agency"; "kind", false, "Only this event kind"; "wait_ms", false, "Long poll: wait this long when caught up"),
        body: None,
        response: "FeedPage",
    },
    Route {
        method: "get",
        path: "/v1/feed/sse",
        summary: "The change feed as Server-Sent Events (resume with Last-Event-ID)",
        access: Access::SignedRequest,
        query: params!("cursor", false, "The next seq to deliver"; "list", false, "Only this list"; "agency", false, "Only events signed by this agency"; "kind", false, "Only this event kind"),
        body: None,
        response: "EventStream",
    },
    Route {
        method: "get",
        path: "/v1/views/list",
        summary: "A designating agency's lists, status per case",
        access: Access::SignedRequest,
        query: params!("agency", false, "The designating agency (the signer's own)"; "list", false, "Only this list"),
        body: None,
        response: "View",
    },
    Route {
        method: "get",
        path: "/v1/views/enforcement",
        summary: "A responsible agency's worklist: to apply, applied, must lift",
        access: Access::SignedRequest,
        query: params!("agency", true, "The responsible agency (the signer's own)"),
        body: None,
        response: "View",
    },
    Route {
        method: "get",
        path: "/v1/views/subject",
        summary: "Every case and measure of one subject",
        access: Access::SignedRequest,
        query: params!("subject", true, "uscc:CODE, resident:NUMBER, SCHEME:VALUE or a bare code"),
        body: None,
        response: "View",
    },
    Route {
        method: "get",
        path: "/v1/views/public",
        summary: "The public list, identifiers masked",
        access: Access::Open,
        query: params!("list", false, "Only this list"),
        body: None,
        response: "View",
    },
    Route {
        method: "get",
        path: "/v1/views/check",
        summary: "Is the subject restricted by the measure, and on what grounds",
        access: Access::SignedRequest,
        query: params!("subject", true, "The subject"; "measure", true, "The measure code"; "agency", false, "As applied by this agency"),
        body: None,
        response: "View",
    },
    Route {
        method: "get",
        path: "/v1/views/registry",
        summary: "Agencies, keys, lists, measures, MOUs, rule sets",
        access: Access::Open,
        query: &[],
        body: None,
        response: "View",
    },
    Route {
        method: "get",
        path: "/v1/delta",
        summary: "Changes to the public list since a cursor: ADD, MOD, DEL of entries",
        access: Access::Open,
        query: params!("cursor", false, "The cursor of the last delta (0: everything), or the next of the last page of this one"; "list", false, "Only this list"; "limit", false, "Most changes on a page (default 1,000, at most 10,000)"),
        body: None,
        response: "Delta",
    },
    Route {
        method: "get",
        path: "/v1/audit",
        summary: "The due-process audit, one page of findings",
        access: Access::SignedRequest,
        query: params!("list", false, "Only this list"; "agency", false, "Only findings where this agency had to act"; "offset", false, "Findings to skip"; "limit", false, "Most findings"),
        body: None,
        response: "AuditReport",
    },
    Route {
        method: "get",
        path: "/v1/inquiries",
        summary: "The inquiry register (oversight role): who read what, recorded before each non-public answer left, with the register's signed checkpoint",
        access: Access::SignedRequest,
        query: params!("from", false, "The first inquiry (0: the oldest)"; "limit", false, "Most inquiries (at most 1000)"),
        body: None,
        response: "Inquiries",
    },
    Route {
        method: "get",
        path: "/v1/export/{view}",
        summary: "A bulk export of the public list (view: public) as CSV, JSON Lines, FollowTheMoney entities or Parquet, streamed",
        access: Access::Open,
        query: params!("format", false, "csv (default), jsonl, ftm or parquet"; "list", false, "Only this list"; "as_of", false, "A seq (inclusive) or an RFC 3339 time: what the ledger held then"; "valid_at", false, "An RFC 3339 time or a date: what was in force then"),
        body: None,
        response: "Export",
    },
    Route {
        method: "get",
        path: "/v1/checkpoint",
        summary: "The latest signed checkpoint (C2SP tlog-checkpoint)",
        access: Access::Open,
        query: &[],
        body: None,
        response: "Text",
    },
    Route {
        method: "post",
        path: "/v1/session",
        summary: "A session token for the signing agency: send it in docket-session on reads instead of signing each one, until expires_at",
        access: Access::SignedRequest,
        query: &[],
        body: None,
        response: "Session",
    },
    Route {
        method: "post",
        path: "/v1/cosignatures",
        summary: "Submit witness cosignatures (C2SP tlog-cosignature v1) of the latest checkpoint",
        access: Access::Open,
        query: &[],
        body: Some("Text"),
        response: "Cosignatures",
    },
    Route {
        method: "get",
        path: "/v1/proof/inclusion",
        summary: "RFC 6962 inclusion proof",
        access: Access::Open,
        query: params!("seq", true, "The record"; "size", false, "Tree size (default: the latest checkpoint's)"),
        body: None,
        response: "InclusionProof",
    },
    Route {
        method: "get",
        path: "/v1/proof/consistency",
        summary: "RFC 6962 consistency proof",
        access: Access::Open,
        query: params!("old", true, "The older tree size"; "new", false, "The newer tree size (default: the latest checkpoint's)"),
        body: None,
        response: "ConsistencyProof",
    },
    Route {
        method: "get",
        path: "/tile/{path}",
        summary: "Alias of /log/tile/{path} for hash tiles (kept for older clients)",
        access: Access::Open,
        query: &[],
        body: None,
        response: "Bytes",
    },
    Route {
        method: "get",
        path: "/log/checkpoint",
        summary: "C2SP tlog-tiles: the latest signed checkpoint (as /v1/checkpoint, under the log's prefix)",
        access: Access::Open,
        query: &[],
        body: None,
        response: "Text",
    },
    Route {
        method: "get",
        path: "/log/tile/{path}",
        summary: "C2SP tlog-tiles hash tile <L>/<N>[.p/<W>] (full tiles are immutable)",
        access: Access::Open,
        query: &[],
        body: None,
        response: "Bytes",
    },
    Route {
        method: "get",
        path: "/log/tile/entries/{path}",
        summary: "C2SP tlog-tiles entry bundle <N>[.p/<W>]: each entry a big-endian u16 length and the leaf entry (seq, system time, signed event wire form); oversight role only",
        access: Access::SignedRequest,
        query: &[],
        body: None,
        response: "Bytes",
    },
    Route {
        method: "get",
        path: "/healthz",
        summary: "Liveness: ok; after a warning line when the ledger's keys are public (a demo: anyone can sign for it)",
        access: Access::Open,
        query: &[],
        body: None,
        response: "Text",
    },
    Route {
        method: "get",
        path: "/readyz",
        summary: "Readiness: log and projection sizes and named checks (503 not_ready naming each failure)",
        access: Access::Open,
        query: &[],
        body: None,
        response: "Ready",
    },
    Route {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics",
        access: Access::Open,
        query: &[],
        body: None,
        response: "Text",
    },
    Route {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        access: Access::Open,
        query: &[],
        body: None,
        response: "Object",
    },
];

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Moves a generated schema's `$defs` into `components.schemas` and points its refs there.
fn absorb(schemas: &mut Map<String, Value>, name: &str, mut schema: Value) {
    if let Some(Value::Object(defs)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) {
        for (def, value) in defs {
            schemas.insert(def, value);
        }
    }
    if let Value::Object(object) = &mut schema {
        object.remove("$schema");
        object.remove("$id");
    }
    schemas.insert(name.to_owned(), schema);
}

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get_mut("$ref") {
                if let Some(name) = target.strip_prefix("#/$defs/") {
                    *target = format!("#/components/schemas/{name}");
                }
            }
            object.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method] = operation(route);
    }
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {"title": "docket", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The docket designation ledger's HTTP API. Codes and semantics: crates/docket-server/API.md."},
        "paths": paths,
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {"SignedRequest": {"type": "apiKey", "in": "header", "name": "docket-signature",
                "description": "With docket-agency, docket-key and docket-date: an ed25519 signature over docket/v1/request\\0 || METHOD || \\n || PATH_AND_QUERY || \\n || DATE || \\n || hex(SHA-256(body))"},
                "Session": {"type": "apiKey", "in": "header", "name": "docket-session",
                "description": "A token from POST /v1/session (signed), accepted on reads instead of a signature until it expires"}},
        },
    });
    rewrite_refs(&mut document);
    document
}

/// The schemas the routes refer to: the generated ones (signed events,
/// audit reports) and those of the API's own answers.
fn component_schemas() -> Map<String, Value> {
    let mut schemas = Map::new();
    absorb(&mut schemas, "SignedEvent", docket_model::schema::signed_event());
    let report = docket_audit::schema::all().into_iter().find(|(path, _)| path == "audit-report.schema.json");
    absorb(&mut schemas, "AuditReport", report.map(|(_, schema)| schema).unwrap_or_else(|| json!({"type": "object"})));
    let hex = json!({"type": "string", "pattern": "^[0-9a-f]{64}$"});
    let proof = json!({"type": "array", "items": hex});
    let extra = json!({
        "SignedEventBatch": {"type": "array", "items": reference("SignedEvent"), "description": "Or, as application/octet-stream, wire forms each preceded by its length (u32, big-endian)"},
        "Receipt": {"type": "object", "required": ["seq", "id", "leaf_index", "system_time"], "properties": {
            "seq": {"type": "integer", "minimum": 0}, "id": hex, "leaf_index": {"type": "integer", "minimum": 0}, "system_time": {"type": "string", "format": "date-time"}}},
        "BatchResults": {"type": "object", "required": ["results"], "properties": {"results": {"type": "array", "items": {"oneOf": [
            {"type": "object", "required": ["receipt"], "properties": {"receipt": reference("Receipt")}}, reference("Error")]}}}},
        "Record": {"type": "object", "required": ["seq", "system_time", "kind", "signed"], "properties": {
            "seq": {"type": "integer"}, "system_time": {"type": "string", "format": "date-time"}, "kind": {"type": "string"}, "signed": reference("SignedEvent")}},
        "FeedPage": {"type": "object", "required": ["events", "cursor", "caught_up"], "properties": {
            "events": {"type": "array", "items": reference("Record")}, "cursor": {"type": "integer"}, "caught_up": {"type": "boolean"}}},
        "EventStream": {"type": "string", "description": "text/event-stream: `event: event` (data: a Record, id: the next cursor) and `event: caught-up`"},
        "View": {"type": "object", "description": "A projection view, with its `as_of` point; see crates/docket-fold/src/views.rs. The list-shaped views (list, enforcement, subject, public) come in pages: `total` entries in all and, when more follow, `next` (pass it as `cursor`)"},
        "InclusionProof": {"type": "object", "required": ["leaf_index", "tree_size", "leaf_hash", "root", "proof"], "properties": {
            "leaf_index": {"type": "integer"}, "tree_size": {"type": "integer"}, "leaf_hash": hex, "root": hex, "proof": proof}},
        "ConsistencyProof": {"type": "object", "required": ["old_size", "new_size", "old_root", "new_root", "proof"], "properties": {
            "old_size": {"type": "integer"}, "new_size": {"type": "integer"}, "old_root": hex, "new_root": hex, "proof": proof}},
        "Ready": {"type": "object", "required": ["log_size", "projected", "checks"], "properties": {"log_size": {"type": "integer"}, "projected": {"type": "integer"},
            "checks": {"type": "array", "items": {"type": "object", "required": ["name", "ok", "detail"], "properties": {"name": {"type": "string"}, "ok": {"type": "boolean"}, "detail": {"type": "string"}}}}}},
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "description": "Stable machine code (API.md, Errors)"}, "message": {"type": "string"},
            "field": {"type": "string"}, "actual_version": {"type": "integer"}}}}},
        "Delta": {"type": "object", "required": ["from", "cursor", "valid_at", "changes", "total"], "properties": {
            "from": {"type": "integer"}, "cursor": {"type": "integer", "description": "Where the next delta starts, once every page of this one is read"},
            "valid_at": {"type": "string", "format": "date-time"},
            "total": {"type": "integer", "description": "Changes in all pages"}, "next": {"type": "string", "description": "The next page's cursor, when more follow"},
            "changes": {"type": "array", "items": {"type": "object", "required": ["op", "entry"], "properties": {
                "op": {"enum": ["ADD", "MOD", "DEL"]}, "entry": {"type": "object", "description": "A public list entry (as in /v1/views/public)"}}}}}},
        "Inquiries": {"type": "object", "required": ["inquiries", "next", "size"], "properties": {
            "inquiries": {"type": "array", "items": {"type": "object", "required": ["seq", "recorded_at", "agency", "key", "question"], "properties": {
                "seq": {"type": "integer"}, "recorded_at": {"type": "string", "format": "date-time"}, "agency": {"type": "string"},
                "key": {"type": "string"}, "question": {"type": "string"}}}},
            "next": {"type": "integer"}, "size": {"type": "integer"}, "checkpoint": {"type": ["string", "null"]}}},
        "Session": {"type": "object", "required": ["agency", "token", "expires_at"], "properties": {"agency": {"type": "string"}, "token": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}}},
        "Cosignatures": {"type": "object", "required": ["accepted"], "properties": {"accepted": {"type": "array", "items": {"type": "string"}}}},
        "Export": {"type": "string", "description": "The export's bytes: text/csv (header row, RFC 4180), application/x-ndjson (JSON Lines; FollowTheMoney entities for format=ftm) or application/vnd.apache.parquet; see crates/docket-export"},
        "Text": {"type": "string"},
        "Bytes": {"type": "string", "format": "binary"},
        "Object": {"type": "object"},
    });
    if let Value::Object(extra) = extra {
        schemas.extend(extra);
    }
    schemas
}

/// The OpenAPI operation of one route: parameters, responses, security, body.
fn operation(route: &Route) -> Value {
    let mut parameters: Vec<Value> = route
        .query
        .iter()
        .map(|(name, required, what)| {
            json!({"name": name, "in": "query", "required": required, "description": what, "schema": {"type": "string"}})
        })
        .collect();
    if route.path.starts_with("/v1/views/") {
        parameters.extend(BITEMPORAL.iter().map(|(name, required, what)| {
            json!({"name": name, "in": "query", "required": required, "description": what, "schema": {"type": "string"}})
        }));
    }
    if PAGED_VIEWS.contains(&route.path) {
        parameters.extend(PAGED.iter().map(|(name, required, what)| {
            json!({"name": name, "in": "query", "required": required, "description": what, "schema": {"type": "string"}})
        }));
    }
    if let Some(start) = route.path.find('{') {
        let name = &route.path[start + 1..route.path.len() - 1];
        parameters.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}));
    }
    let mut operation = json!({
        "summary": route.summary,
        "parameters": parameters,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": reference(route.response)}}},
            "4XX": {"description": "Refused: see the code", "content": {"application/json": {"schema": reference("Error")}}},
            "5XX": {"description": "Unavailable or failed: see the code", "content": {"application/json": {"schema": reference("Error")}}},
        },
    });
    if route.response == "Export" {
        let export = json!({"schema": reference("Export")});
        operation["responses"]["200"]["content"] = json!({"text/csv": export, "application/x-ndjson": export,
            "application/vnd.apache.parquet": export});
    }
    if conditional(route) {
        let etag = json!({"ETag": {"description": "Strong: names the answer (API.md, Conditional reads)", "schema": {"type": "string"}}});
        operation["responses"]["200"]["headers"] = etag.clone();
        operation["responses"]["304"] =
            json!({"description": "Not modified: If-None-Match names the answer's ETag; no body", "headers": etag});
        if let Some(parameters) = operation["parameters"].as_array_mut() {
            parameters.push(json!({"name": "If-None-Match", "in": "header", "required": false,
                "description": "ETags of answers held: 304 when one names the answer", "schema": {"type": "string"}}));
        }
    }
    match route.access {
        Access::SignedRequest if route.path == "/v1/session" => operation["security"] = json!([{"SignedRequest": []}]),
        Access::SignedRequest => operation["security"] = json!([{"SignedRequest": []}, {"Session": []}]),
        Access::Open | Access::SignedEvent => operation["security"] = json!([]),
    }
    if let Some(body) = route.body {
        operation["requestBody"] = json!({"required": true, "content": {
            "application/json": {"schema": reference(body)},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
    }
    operation
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use crate::routes::{reserve_routes, routes, VIEWS};

    /// The (method, path) pairs a router registered, as OpenAPI writes them:
    /// lower-case methods, `{view}` expanded to each view, `{*path}` as `{path}`.
    fn served(registered: &[(axum::http::Method, &'static str)]) -> BTreeSet<(String, String)> {
        let mut served = BTreeSet::new();
        for (method, path) in registered {
            let method = method.as_str().to_ascii_lowercase();
            match *path {
                "/v1/views/{view}" => {
                    served.extend(VIEWS.iter().map(|view| (method.clone(), format!("/v1/views/{view}"))));
                }
                other => {
                    served.insert((method, other.replace("{*", "{")));
                }
            }
        }
        served
    }

    /// Every route the router serves is in the OpenAPI document with its
    /// method, and the document has nothing the router does not serve.
    #[test]
    fn every_routed_path_and_method_is_documented_and_nothing_else() {
        let document = super::document();
        let mut documented = BTreeSet::new();
        for (path, operations) in document["paths"].as_object().unwrap() {
            for method in operations.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let served = served(routes().registered());
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(undocumented.is_empty(), "served but not documented: {undocumented:?}");
        assert!(unserved.is_empty(), "documented but not served: {unserved:?}");
    }

    /// The connection reserve serves only routes of the API.
    #[test]
    fn the_reserve_serves_a_subset_of_the_routes() {
        let all = served(routes().registered());
        let reserve = served(reserve_routes().registered());
        assert!(!reserve.is_empty());
        assert!(reserve.is_subset(&all), "{reserve:?}");
    }
}
