//! The OpenAPI 3.1 document of the API, generated from the router itself
//! (aide over the schemars types): every route is registered in
//! `routes::routes` together with its documentation ([`doc`] and the
//! [`Doc`] it returns), so a route cannot be served without being in the
//! document. Query and path parameters come from the handlers' extractors'
//! types, answers from the types the handlers serialise. Served at
//! `/openapi.json`; the checked-in copy `schemas/openapi.json` is compared
//! with it by a test (`DOCKET_BLESS=1` rewrites it).

use aide::openapi::{
    Header, Info, MediaType, OpenApi, Parameter, ParameterData, ParameterSchemaOrContent, ReferenceOr, RequestBody,
    Response, SchemaObject, SecurityScheme, StatusCode, Tag,
};
use aide::transform::TransformOperation;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde_json::{json, Value};

pub use crate::answers::*;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Open,
    /// A request signed by a registered agency key (`API.md`, "Who may
    /// read"), or a session token from `POST /v1/session` in its place.
    Agency,
    /// A signed request only (no session): `POST /v1/session` itself.
    Signed,
    /// Anyone; the body is a signed event, which is the credential.
    SignedEvent,
}

/// The tags that group the operations, with what each holds.
pub const TAGS: [(&str, &str); 7] = [
    ("appends", "Signed events into the log"),
    ("views", "The projections at a bitemporal point, and single records"),
    ("feed", "The change feed and the public list's delta"),
    ("audit", "The due-process audit and the inquiry register"),
    ("exports", "Bulk exports of what is public"),
    ("transparency", "Checkpoints, cosignatures, proofs and tiles (C2SP tlog-tiles)"),
    ("operations", "Health, readiness, metrics, sessions and this document"),
];

/// The security schemes of a signed request: all four headers together
/// (`API.md`, "Signed requests").
const SIGNED: [&str; 4] = ["docket-agency", "docket-key", "docket-date", "docket-signature"];

/// The session token scheme (`API.md`, "Sessions").
const SESSION: &str = "docket-session";

/// An operation being documented: made by [`doc`], finished by [`Doc::done`].
#[must_use]
pub struct Doc<'t> {
    op: TransformOperation<'t>,
}

impl std::fmt::Debug for Doc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Doc { .. }")
    }
}

/// A documented operation: only [`Doc::done`] makes one, so a route
/// registered through `routes` carries an operationId, a tag, a summary,
/// its security and its answers.
pub struct Documented<'t>(pub(crate) TransformOperation<'t>);

impl std::fmt::Debug for Documented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Documented { .. }")
    }
}

/// Starts the documentation of an operation: its id, tag, one-line summary
/// and who may call it (with 401 and 403 for the routes that check). Every
/// operation may answer 500 `internal` (a failed request is caught, never
/// a dropped connection).
pub fn doc<'t>(op: TransformOperation<'t>, id: &str, tag: &str, summary: &str, access: Access) -> Doc<'t> {
    debug_assert!(TAGS.iter().any(|(name, _)| *name == tag), "unknown tag {tag}");
    let mut op = op.id(id).tag(tag).summary(summary);
    match access {
        Access::Open | Access::SignedEvent => {}
        Access::Agency => op = op.security_requirement_multi(SIGNED).security_requirement(SESSION),
        Access::Signed => op = op.security_requirement_multi(SIGNED),
    }
    let doc = Doc { op };
    let doc = match access {
        Access::Open => doc,
        Access::SignedEvent | Access::Agency | Access::Signed => doc.errors(&[401, 403]),
    };
    // A connection past connections_max is served the operational endpoints
    // only; anything else is answered 503 overloaded.
    match id {
        "healthz" | "readyz" | "metrics" => doc.errors(&[500]),
        _ => doc.errors(&[500, 503]),
    }
}

impl<'t> Doc<'t> {
    /// A longer description (Markdown).
    pub fn describe(self, text: &str) -> Self {
        Self { op: self.op.description(text) }
    }

    /// An answer of `status` whose body is `T` as JSON.
    pub fn json<T: JsonSchema>(self, status: u16, what: &str) -> Self {
        self.content(status, what, &[("application/json", schema::<T>())])
    }

    /// An answer of `status` as Server-Sent Events, each described by `T`.
    pub fn events<T: JsonSchema>(self, status: u16, what: &str) -> Self {
        self.content(status, what, &[("text/event-stream", schema::<T>())])
    }

    /// An answer of `status` as text of each media type.
    pub fn text(self, status: u16, what: &str, media: &[&str]) -> Self {
        let text = schema_value(json!({"type": "string"}));
        let content: Vec<_> = media.iter().map(|m| (*m, text.clone())).collect();
        self.content(status, what, &content)
    }

    /// An answer of `status` as bytes of each media type.
    pub fn bytes(self, status: u16, what: &str, media: &[&str]) -> Self {
        let bytes = schema_value(json!({"type": "string", "format": "binary"}));
        let content: Vec<_> = media.iter().map(|m| (*m, bytes.clone())).collect();
        self.content(status, what, &content)
    }

    /// An answer of `status` with these (media type, schema) bodies.
    fn content(mut self, status: u16, what: &str, content: &[(&str, SchemaObject)]) -> Self {
        let response = Response {
            description: what.to_owned(),
            content: content
                .iter()
                .map(|(media, schema)| {
                    ((*media).to_owned(), MediaType { schema: Some(schema.clone()), ..Default::default() })
                })
                .collect(),
            ..Default::default()
        };
        let responses = self.op.inner_mut().responses.get_or_insert_with(Default::default);
        responses.responses.insert(StatusCode::Code(status), ReferenceOr::Item(response));
        self
    }

    /// The refusals of `statuses`, each an [`ErrorBody`] naming a stable code
    /// (the codes each status carries are listed in its description).
    pub fn errors(mut self, statuses: &[u16]) -> Self {
        for status in statuses {
            let what = format!("{} (codes: {})", reason(*status), codes(*status));
            self = self.json::<ErrorBody>(*status, &what);
            if *status == 429 || *status == 503 {
                self = self.header(
                    *status,
                    "Retry-After",
                    "Seconds until a retry can succeed",
                    json!({"type": "integer"}),
                );
            }
        }
        self
    }

    /// A response header of `status` (already documented).
    fn header(mut self, status: u16, name: &str, what: &str, schema: Value) -> Self {
        let responses = self.op.inner_mut().responses.get_or_insert_with(Default::default);
        if let Some(ReferenceOr::Item(response)) = responses.responses.get_mut(&StatusCode::Code(status)) {
            let header = Header {
                description: Some(what.to_owned()),
                style: Default::default(),
                required: false,
                deprecated: None,
                format: ParameterSchemaOrContent::Schema(schema_value(schema)),
                example: None,
                examples: IndexMap::new(),
                extensions: IndexMap::new(),
            };
            response.headers.insert(name.to_owned(), ReferenceOr::Item(header));
        }
        self
    }

    /// A conditional read: the 200 carries a strong `ETag`, and an
    /// `If-None-Match` naming it is answered 304 with no body (`API.md`,
    /// "Conditional reads").
    pub fn conditional(self) -> Self {
        let etag = json!({"type": "string"});
        let mut doc = self
            .header(200, "ETag", "Strong: names the answer (API.md, Conditional reads)", etag.clone())
            .content(304, "Not modified: If-None-Match names the answer's ETag; no body", &[])
            .header(304, "ETag", "The answer's ETag", etag.clone());
        doc.op.inner_mut().parameters.push(ReferenceOr::Item(Parameter::Header {
            parameter_data: parameter("If-None-Match", "ETags of answers held: 304 when one names the answer", etag),
            style: Default::default(),
        }));
        doc
    }

    /// A required request body of `T` as JSON and, when `wire`, its wire form as `application/octet-stream`.
    pub fn body<T: JsonSchema>(mut self, what: &str, wire: bool) -> Self {
        let mut content = IndexMap::new();
        content.insert("application/json".to_owned(), MediaType { schema: Some(schema::<T>()), ..Default::default() });
        if wire {
            let bytes = schema_value(json!({"type": "string", "format": "binary"}));
            content
                .insert("application/octet-stream".to_owned(), MediaType { schema: Some(bytes), ..Default::default() });
        }
        self.op.inner_mut().request_body = Some(ReferenceOr::Item(RequestBody {
            description: Some(what.to_owned()),
            content,
            required: true,
            extensions: IndexMap::new(),
        }));
        self
    }

    /// A required request body of text in `media`.
    pub fn text_body(mut self, what: &str, media: &str) -> Self {
        let mut content = IndexMap::new();
        let text = schema_value(json!({"type": "string"}));
        content.insert(media.to_owned(), MediaType { schema: Some(text), ..Default::default() });
        self.op.inner_mut().request_body = Some(ReferenceOr::Item(RequestBody {
            description: Some(what.to_owned()),
            content,
            required: true,
            extensions: IndexMap::new(),
        }));
        self
    }

    /// The documentation is complete.
    pub fn done(self) -> Documented<'t> {
        Documented(self.op)
    }
}

fn parameter(name: &str, what: &str, schema: Value) -> ParameterData {
    ParameterData {
        name: name.to_owned(),
        description: Some(what.to_owned()),
        required: false,
        deprecated: None,
        format: ParameterSchemaOrContent::Schema(schema_value(schema)),
        example: None,
        examples: IndexMap::new(),
        explode: None,
        extensions: IndexMap::new(),
    }
}

/// The schema of `T`, by reference to `components.schemas` where it is named.
fn schema<T: JsonSchema>() -> SchemaObject {
    aide::generate::in_context(|ctx| SchemaObject {
        json_schema: ctx.schema.subschema_for::<T>(),
        example: None,
        external_docs: None,
    })
}

fn schema_value(value: Value) -> SchemaObject {
    let json_schema = schemars::Schema::try_from(value).unwrap_or_default();
    SchemaObject { json_schema, example: None, external_docs: None }
}

/// The reason phrase of a status the API answers.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad request",
        401 => "Unauthenticated: no valid signature or session",
        403 => "Forbidden: the reader's key or role does not allow it",
        404 => "Not found",
        408 => "The request body did not arrive in time",
        409 => "Conflict",
        413 => "The request body is too large",
        422 => "Refused: well-formed but not acceptable",
        429 => "Rate limited",
        500 => "The server failed on this request (logged)",
        503 => "Unavailable: retry",
        _ => "Refused",
    }
}

/// The stable machine codes each status carries (`API.md`, "Errors").
fn codes(status: u16) -> &'static str {
    match status {
        400 => "bad_parameter, missing_parameter, malformed_json, malformed_wire, malformed_note, bad_path, body_unreadable",
        401 => "unauthenticated, bad_signature, stale_request, bad_session, session_expired",
        403 => "forbidden, not_authorised, unknown_key, key_revoked, unknown_witness",
        404 => "not_found",
        408 => "body_timeout",
        409 => "stale_version, stale_checkpoint",
        413 => "body_too_large, batch_too_large, event_too_large",
        422 => "invalid_event, id_mismatch, no_such_case, registry_refused, refused",
        429 => "rate_limited, too_many_streams",
        500 => "internal",
        503 => "overloaded, log_unavailable, projection_behind, inquiries_unavailable, not_ready",
        _ => "see API.md",
    }
}

/// The document, generated from the router (`routes::routes`).
pub fn document() -> Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(generate).clone()
}

fn generate() -> Value {
    aide::generate::extract_schemas(true);
    aide::generate::infer_responses(false);
    let mut api = OpenApi {
        info: Info {
            title: "docket".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: Some(
                "The docket designation ledger's HTTP API, generated from its router. Codes and semantics: \
                 crates/docket-server/API.md."
                    .into(),
            ),
            ..Default::default()
        },
        tags: TAGS
            .iter()
            .map(|(name, what)| Tag { name: (*name).into(), description: Some((*what).into()), ..Default::default() })
            .collect(),
        ..Default::default()
    };
    let _router = crate::routes::routes().finish_api_with(&mut api, |api| {
        let mut api = api;
        for (name, what) in [
            ("docket-agency", "The signing agency's id"),
            ("docket-key", "The signing key (64 hex digits), registered to the agency"),
            ("docket-date", "The request's date (RFC 3339), within request_skew_s of the server's clock"),
            (
                "docket-signature",
                "ed25519 signature (128 hex digits) over docket/v1/request\\0 || METHOD || \\n || PATH_AND_QUERY || \\n \
                 || DATE || \\n || hex(SHA-256(body)); sent with docket-agency, docket-key and docket-date",
            ),
            (SESSION, "A token from POST /v1/session (signed), accepted on reads instead of a signature until it expires"),
        ] {
            api = api.security_scheme(
                name,
                SecurityScheme::ApiKey {
                    location: aide::openapi::ApiKeyLocation::Header,
                    name: name.into(),
                    description: Some(what.into()),
                    extensions: IndexMap::new(),
                },
            );
        }
        api
    });
    let mut value = serde_json::to_value(&api).unwrap_or_else(|e| json!({"error": e.to_string()}));
    unwild(&mut value);
    bound_unsigned(&mut value);
    value
}

/// Gives each unsigned integer its upper bound (`format` alone says it to
/// few clients): a larger number does not parse, and is refused with 400.
fn bound_unsigned(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let unsigned = object.get("format").and_then(Value::as_str).is_some_and(|f| f.starts_with("uint"));
            if unsigned && !object.contains_key("maximum") {
                let max = match object.get("format").and_then(Value::as_str) {
                    Some("uint8") => u64::from(u8::MAX),
                    Some("uint16") => u64::from(u16::MAX),
                    Some("uint32") => u64::from(u32::MAX),
                    _ => u64::MAX,
                };
                object.insert("maximum".into(), max.into());
            }
            object.values_mut().for_each(bound_unsigned);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_unsigned),
        _ => {}
    }
}

/// Writes axum's wildcard path parameters (`{*path}`) as OpenAPI's (`{path}`).
fn unwild(document: &mut Value) {
    if let Some(Value::Object(paths)) = document.get_mut("paths") {
        let renamed: serde_json::Map<String, Value> =
            std::mem::take(paths).into_iter().map(|(path, item)| (path.replace("{*", "{"), item)).collect();
        *paths = renamed;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// Every operation has an operationId (unique), a known tag, a summary
    /// and answers: what `doc` guarantees for every route.
    #[test]
    fn every_operation_has_an_id_a_tag_a_summary_and_answers() {
        let document = super::document();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            assert!(!path.contains('*'), "{path}");
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
                assert!(ids.insert(id.to_owned()), "{id} twice");
                let tag = op["tags"][0].as_str().unwrap_or_else(|| panic!("{id}: no tag"));
                assert!(super::TAGS.iter().any(|(name, _)| *name == tag), "{id}: tag {tag}");
                assert!(op["summary"].is_string(), "{id}: no summary");
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.keys().any(|s| s.starts_with('2')), "{id}: no success answer");
                assert!(responses.contains_key("500"), "{id}: no 500");
            }
        }
    }
}
