//! The transparency endpoints: the latest signed checkpoint with its
//! witnesses' cosignatures, cosignature submission, RFC 6962 inclusion and
//! consistency proofs from the writer's own tree, and C2SP tiles.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{body, Params, PathParam};
use crate::error::ApiError;
use crate::App;

/// The latest signed checkpoint note, as the checkpointer wrote it.
async fn latest_checkpoint(app: &App) -> Result<String, ApiError> {
    let path = docket_log::ledger::Paths::new(&app.dir).latest_checkpoint();
    tokio::fs::read_to_string(path).await.map_err(|_| ApiError::not_found("no checkpoint yet"))
}

/// The latest signed checkpoint (C2SP tlog-checkpoint), with the witnesses'
/// cosignatures of it that the server holds.
pub(super) async fn checkpoint(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let mut text = latest_checkpoint(&app).await?;
    if let Ok(lines) = tokio::fs::read_to_string(cosigned_path(&app, &text)?).await {
        text.push_str(&lines);
    }
    // The ETag is the body's hash: a new checkpoint or a new cosignature changes it.
    let etag = super::read::body_etag(text.as_bytes());
    let (public, plain) = (super::read::Audience::Public, "text/plain; charset=utf-8");
    super::read::conditional(&headers, &etag, public, plain, Some(text.into_bytes()), &[])
}

/// The body of a checkpoint note the server signed.
fn checkpoint_body(note: &str) -> Result<(&str, docket_log::note::Checkpoint), ApiError> {
    let (text, _) = docket_log::note::parse(note).map_err(|e| ApiError::internal(format!("latest checkpoint: {e}")))?;
    let checkpoint =
        docket_log::note::Checkpoint::parse(text).map_err(|e| ApiError::internal(format!("latest checkpoint: {e}")))?;
    Ok((text, checkpoint))
}

/// Where the cosignature lines of a checkpoint are kept: by its size.
fn cosigned_path(app: &App, note: &str) -> Result<std::path::PathBuf, ApiError> {
    let (_, checkpoint) = checkpoint_body(note)?;
    Ok(docket_log::ledger::Paths::new(&app.dir).cosignatures(checkpoint.size))
}

/// `POST /v1/cosignatures`: the latest checkpoint with witness cosignature
/// lines (C2SP tlog-cosignature v1) added. Lines by configured witnesses are
/// verified and kept; others are ignored.
pub(super) async fn cosignatures(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    let held = body(&app, &headers, request).await?;
    let note = std::str::from_utf8(&held.bytes)
        .map_err(|_| ApiError::bad_request("malformed_note", "the note is not UTF-8"))?;
    let (text, lines) =
        docket_log::note::parse(note).map_err(|e| ApiError::bad_request("malformed_note", e.to_string()))?;
    let latest = latest_checkpoint(&app).await?;
    let (latest_text, _) = checkpoint_body(&latest)?;
    if text != latest_text {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "stale_checkpoint",
            "the cosigned checkpoint is not the latest; fetch /v1/checkpoint and cosign that",
        ));
    }
    let mut accepted = vec![];
    let mut lines_kept = vec![];
    // The signature block follows the text and a blank line, one line per parsed signature.
    let raw_lines: Vec<&str> = note[text.len() + 1..].lines().collect();
    for (line, raw) in lines.iter().zip(raw_lines) {
        let Some(witness) = app.witnesses.iter().find(|w| w.name == line.name && w.key_id() == line.key_id) else {
            continue;
        };
        docket_log::note::verify_cosignature(text, witness, line)
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
        lines_kept.push((witness.name.clone(), raw.to_owned()));
        accepted.push(witness.name.clone());
    }
    if accepted.is_empty() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "unknown_witness", "no line is by a configured witness"));
    }
    let (_, checkpoint) = checkpoint_body(&latest)?;
    let paths = docket_log::ledger::Paths::new(&app.dir);
    tokio::task::spawn_blocking(move || docket_log::ledger::add_cosignatures(&paths, checkpoint.size, &lines_kept))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({"accepted": accepted})))
}

/// Parameters of `/v1/proof/inclusion`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionParams {
    seq: u64,
    /// Tree size (default: the latest checkpoint's).
    size: Option<u64>,
}

/// Parameters of `/v1/proof/consistency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyParams {
    old: u64,
    /// New tree size (default: the latest checkpoint's).
    new: Option<u64>,
}

/// The tree for a proof at `size` (default: the latest checkpoint's). The
/// tree is the writer's own, which holds every durable record.
async fn proof_tree(
    app: &Arc<App>,
    size: Option<u64>,
) -> Result<(std::sync::RwLockReadGuard<'_, docket_log::Tree>, u64), ApiError> {
    let size = match size {
        Some(size) => size,
        None => checkpoint_body(&latest_checkpoint(app).await?)?.1.size,
    };
    let tree = app.tree.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    if size > tree.size() {
        return Err(proof_error(format!("size {size}: the tree has {} records", tree.size())));
    }
    Ok((tree, size))
}

/// 400 `bad_parameter` for a proof that cannot be made.
fn proof_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("bad_parameter", error.to_string())
}

/// An RFC 6962 inclusion proof of record `seq` in the tree of `size` records.
pub(super) async fn inclusion(
    State(app): State<Arc<App>>,
    Params(params): Params<InclusionParams>,
) -> Result<Json<Value>, ApiError> {
    let (tree, size) = proof_tree(&app, params.size).await?;
    let proof = tree.inclusion_proof(params.seq, size).map_err(proof_error)?;
    let root = tree.root(size).ok_or_else(|| proof_error(format!("size {size}")))?;
    let leaf = tree
        .leaf(params.seq, size)
        .ok_or_else(|| proof_error(format!("seq {} is not below size {size}", params.seq)))?;
    Ok(Json(json!({
        "leaf_index": params.seq,
        "tree_size": size,
        "leaf_hash": hex::encode(leaf),
        "root": hex::encode(root),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

/// An RFC 6962 consistency proof between tree sizes `old` and `new`.
pub(super) async fn consistency(
    State(app): State<Arc<App>>,
    Params(params): Params<ConsistencyParams>,
) -> Result<Json<Value>, ApiError> {
    let (tree, new) = proof_tree(&app, params.new).await?;
    let proof = tree.consistency_proof(params.old, new).map_err(proof_error)?;
    let old_root = tree.root(params.old).ok_or_else(|| proof_error(format!("old {}", params.old)))?;
    let new_root = tree.root(new).ok_or_else(|| proof_error(format!("new {new}")))?;
    Ok(Json(json!({
        "old_size": params.old,
        "new_size": new,
        "old_root": hex::encode(old_root),
        "new_root": hex::encode(new_root),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

/// C2SP tlog-tiles: `/tile/<L>/<N>[.p/<W>]`. Full tiles never change.
pub(super) async fn tile(
    State(app): State<Arc<App>>,
    PathParam(path): PathParam<String>,
) -> Result<Response, ApiError> {
    let Some(file) = docket_log::ledger::Paths::new(&app.dir).tile(&path) else {
        return Err(ApiError::bad_request("bad_path", format!("tile path {path:?}")));
    };
    let bytes = tokio::fs::read(&file).await.map_err(|_| ApiError::not_found(format!("tile {path}")))?;
    let cache = if path.contains(".p/") { "no-cache" } else { "public, max-age=31536000, immutable" };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, cache)], bytes).into_response())
}
