//! The bodies of the API's JSON answers as types, for the OpenAPI document
//! (`crate::openapi`): the views are docket-fold's own types (with the page
//! fields the API adds), the audit report docket-audit's; the rest are the
//! shapes the handlers write. Schemathesis checks every answer of a live
//! server against these schemas in CI.

use schemars::JsonSchema;
use serde::Serialize;

use docket_model::{SignedJson, Timestamp};

/// A refusal or failure: a stable machine code and a message naming what and where.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What an [`ErrorBody`] holds.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorDetail {
    /// Stable machine code (API.md, Errors): add, never rename.
    pub code: String,
    /// What is wrong and where (at most `ECHO_BYTES_MAX` bytes of the request are echoed).
    pub message: String,
    /// The offending field or parameter, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `stale_version`: the case's actual version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_version: Option<u64>,
}

/// `/readyz` when a check fails: the error, and every check.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NotReady {
    pub error: ErrorDetail,
    pub checks: Vec<ReadyCheck>,
}

/// `/readyz`: the log's and the projections' sizes and the named checks.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Ready {
    /// Records in the log (acknowledged).
    pub log_size: u64,
    /// Records folded into the projections.
    pub projected: u64,
    pub checks: Vec<ReadyCheck>,
}

/// One named readiness check (`crate::health::Check`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReadyCheck {
    /// Stable name, e.g. `log_writable`.
    pub name: String,
    pub ok: bool,
    /// What was measured, or why it failed.
    pub detail: String,
}

/// The receipt of an appended event, once it is durable.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Receipt {
    pub seq: u64,
    /// The event's id (64 hex digits).
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub id: String,
    pub leaf_index: u64,
    /// When the log recorded it.
    pub system_time: Timestamp,
}

/// One event's result in a batch: its receipt, or why it was refused.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum BatchResult {
    Accepted { receipt: Receipt },
    Refused(ErrorBody),
}

/// The results of a batch append, in the batch's order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BatchResults {
    pub results: Vec<BatchResult>,
}

/// A signed-event batch in JSON: the events in order.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct SignedEventBatch(pub Vec<SignedJson>);

/// One record of the log.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Record {
    pub seq: u64,
    /// When the log recorded it.
    pub system_time: Timestamp,
    /// The event's kind, e.g. `designation_decision`.
    pub kind: String,
    pub signed: SignedJson,
}

/// One event of the feed's event stream (`text/event-stream`): a record
/// (`event`, its id the next cursor), the `caught-up` marker (data: the
/// cursor) or an `error` (data: an [`ErrorBody`]; the stream goes on).
#[derive(Debug)]
pub struct FeedEvent;

impl JsonSchema for FeedEvent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FeedEvent".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let record = generator.subschema_for::<Record>();
        let error = generator.subschema_for::<ErrorBody>();
        let marker = generator.subschema_for::<CaughtUp>();
        let event = |name: &str, data: schemars::Schema| {
            schemars::json_schema!({
                "type": "object",
                "required": ["event", "data", "id"],
                "properties": {
                    "event": {"const": name},
                    "id": {"type": "string", "pattern": "^[0-9]+$"},
                    "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data}
                }
            })
        };
        let error_event = schemars::json_schema!({
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"const": "error"},
                "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": error}
            }
        });
        schemars::json_schema!({
            "description": "A Server-Sent Event of the feed",
            "oneOf": [event("event", record), event("caught-up", marker), error_event]
        })
    }
}

/// The data of the feed stream's `caught-up` event.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaughtUp {
    /// The next seq the stream will deliver.
    pub cursor: u64,
}

/// A page of the change feed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FeedPage {
    pub events: Vec<Record>,
    /// The next seq to ask for.
    pub cursor: u64,
    /// Whether the page reached the log's head.
    pub caught_up: bool,
}

/// A list-shaped view, one page of it: the view's fields (its arrays cut
/// to the page), the entries in all pages and, when more follow, the next
/// page's cursor.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Paged<T> {
    #[serde(flatten)]
    pub view: T,
    /// Entries in all pages.
    pub total: u64,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The due-process audit, one page of findings.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditPage {
    #[serde(flatten)]
    pub report: docket_audit::audit::Report,
    /// Findings in all pages.
    pub total_findings: u64,
    /// Findings skipped before this page.
    pub offset: u64,
}

/// One inquiry of the register: who read what, recorded before the answer left.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Inquiry {
    pub seq: u64,
    pub recorded_at: Timestamp,
    pub agency: String,
    /// The reader's key (64 hex digits).
    pub key: String,
    /// The request, e.g. `GET /v1/views/subject?subject=...`.
    pub question: String,
}

/// A page of the inquiry register, with its latest signed checkpoint.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Inquiries {
    pub inquiries: Vec<Inquiry>,
    /// The next inquiry to ask for (`from`).
    pub next: u64,
    /// Inquiries in the register.
    pub size: u64,
    /// The register's latest signed checkpoint (a C2SP note), if one was signed.
    pub checkpoint: Option<String>,
}

/// A session token.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Session {
    pub agency: String,
    /// Send in `docket-session` on reads.
    pub token: String,
    pub expires_at: Timestamp,
}

/// The witnesses whose cosignatures were accepted.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Cosignatures {
    pub accepted: Vec<String>,
}

/// An RFC 6962 inclusion proof.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub root: Hash,
    pub proof: Vec<Hash>,
}

/// An RFC 6962 consistency proof.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub old_root: Hash,
    pub new_root: Hash,
    pub proof: Vec<Hash>,
}

/// A SHA-256 hash in hex.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Hash(#[schemars(regex(pattern = "^[0-9a-f]{64}$"))] pub String);
