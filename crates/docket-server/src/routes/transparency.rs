//! The transparency endpoints: the latest signed checkpoint with its
//! witnesses' cosignatures, cosignature submission, RFC 6962 inclusion and
//! consistency proofs from the writer's own tree, and C2SP tlog-tiles:
//! hash tiles (public) and entry bundles (the oversight role), served
//! under `/log/` with the checkpoint at `/log/checkpoint` as the spec
//! requires, and under the older `/tile/` and `/v1/checkpoint` as aliases.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::extract::{body, Params, PathParam};
use crate::answers::{ConsistencyProof, Cosignatures, Hash, InclusionProof};
use crate::error::ApiError;
use crate::App;
use docket_log::TILE_WIDTH;

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
) -> Result<Json<Cosignatures>, ApiError> {
    app.writable()?;
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
    Ok(Json(Cosignatures { accepted }))
}

/// The path of a hash tile (C2SP tlog-tiles).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct TilePath {
    /// `<L>/<N>[.p/<W>]`: level, index in groups of three digits (x001/234), width of a partial tile.
    #[schemars(regex(pattern = "^[0-9]{1,2}/(x[0-9]{3}/)*[0-9]{3}(\\.p/[0-9]{1,3})?$"))]
    path: String,
}

/// The path of an entry bundle (C2SP tlog-tiles).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct BundlePath {
    /// `<N>[.p/<W>]`: index in groups of three digits (x001/234), width of a partial bundle.
    #[schemars(regex(pattern = "^(x[0-9]{3}/)*[0-9]{3}(\\.p/[0-9]{1,3})?$"))]
    path: String,
}

/// Parameters of `/v1/proof/inclusion`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionParams {
    /// The record (its leaf index).
    seq: u64,
    /// Tree size (default: the latest checkpoint's).
    #[schemars(range(min = 1))]
    size: Option<u64>,
}

/// Parameters of `/v1/proof/consistency`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyParams {
    /// The older tree size.
    #[schemars(range(min = 1))]
    old: u64,
    /// New tree size (default: the latest checkpoint's).
    #[schemars(range(min = 1))]
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
) -> Result<Json<InclusionProof>, ApiError> {
    let (tree, size) = proof_tree(&app, params.size).await?;
    let proof = tree.inclusion_proof(params.seq, size).map_err(proof_error)?;
    let root = tree.root(size).ok_or_else(|| proof_error(format!("size {size}")))?;
    let leaf = tree
        .leaf(params.seq, size)
        .ok_or_else(|| proof_error(format!("seq {} is not below size {size}", params.seq)))?;
    Ok(Json(InclusionProof {
        leaf_index: params.seq,
        tree_size: size,
        leaf_hash: Hash(hex::encode(leaf)),
        root: Hash(hex::encode(root)),
        proof: proof.iter().map(|hash| Hash(hex::encode(hash))).collect(),
    }))
}

/// An RFC 6962 consistency proof between tree sizes `old` and `new`.
pub(super) async fn consistency(
    State(app): State<Arc<App>>,
    Params(params): Params<ConsistencyParams>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let (tree, new) = proof_tree(&app, params.new).await?;
    let proof = tree.consistency_proof(params.old, new).map_err(proof_error)?;
    let old_root = tree.root(params.old).ok_or_else(|| proof_error(format!("old {}", params.old)))?;
    let new_root = tree.root(new).ok_or_else(|| proof_error(format!("new {new}")))?;
    Ok(Json(ConsistencyProof {
        old_size: params.old,
        new_size: new,
        old_root: Hash(hex::encode(old_root)),
        new_root: Hash(hex::encode(new_root)),
        proof: proof.iter().map(|hash| Hash(hex::encode(hash))).collect(),
    }))
}

/// How long a cache may keep a partial tile or entry bundle: the bytes at a
/// partial path never change, but a client should move on to the full tile
/// once the log has grown.
const PARTIAL_MAX_AGE: &str = "max-age=60";

/// C2SP tlog-tiles hash tiles, public: `/log/tile/<L>/<N>[.p/<W>]` (and
/// the older alias `/tile/...`). Full tiles never change: cached as
/// immutable; partial ones for a minute.
pub(super) async fn tile(
    State(app): State<Arc<App>>,
    PathParam(TilePath { path }): PathParam<TilePath>,
) -> Result<Response, ApiError> {
    let Some(file) = docket_log::ledger::Paths::new(&app.dir).tile(&path) else {
        return Err(ApiError::bad_request("bad_path", format!("tile path {path:?}: expected <L>/<N>[.p/<W>]")));
    };
    let bytes = tokio::fs::read(&file).await.map_err(|_| ApiError::not_found(format!("tile {path}")))?;
    let cache = if path.contains(".p/") { format!("public, {PARTIAL_MAX_AGE}") } else { IMMUTABLE.into() };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream".to_owned()), (header::CACHE_CONTROL, cache)], bytes)
        .into_response())
}

/// The cache header of what never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// C2SP tlog-tiles entry bundles, `/log/tile/entries/<N>[.p/<W>]`: the
/// entries `256·N ..` (W of them, or 256), each as a big-endian u16 length
/// and the entry the tree hashes (`docket_log::entry`: seq, system time,
/// the signed event's wire form). They carry unmasked events of every
/// list, so only the oversight role reads them (authenticated, so each read
/// is in the inquiry register). Full bundles are cached as immutable, by
/// the reader only.
pub(super) async fn entries(
    State(app): State<Arc<App>>,
    PathParam(BundlePath { path: bundle }): PathParam<BundlePath>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = crate::auth::authenticate(&app, &method, &uri, &headers)?;
    if !scope.oversight {
        return Err(crate::policy::forbidden(format!(
            "entry bundles hold every event, unmasked, whoever's scope it is in: the oversight role reads them; \
             agency \"{}\" does not hold it (hash tiles and checkpoints are public)",
            scope.agency
        )));
    }
    let bundle = bundle.as_str();
    let (index, width) = parse_bundle(bundle)
        .ok_or_else(|| ApiError::bad_request("bad_path", format!("entry bundle {bundle:?}: expected <N>[.p/<W>]")))?;
    let first = index.checked_mul(TILE_WIDTH).ok_or_else(|| ApiError::not_found(format!("entry bundle {bundle}")))?;
    let end = first.saturating_add(width);
    let head = *app.head.borrow();
    if end > head {
        return Err(ApiError::not_found(format!("entry bundle {bundle}: the log has {head} records")));
    }
    let reader = app.reader.clone();
    let body = tokio::task::spawn_blocking(move || bundle_bytes(&reader, first, end))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let cache =
        if width < TILE_WIDTH { format!("private, {PARTIAL_MAX_AGE}") } else { IMMUTABLE.replace("public", "private") };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream".to_owned()), (header::CACHE_CONTROL, cache)], body)
        .into_response())
}

/// The bytes of the bundle of records `first .. end`.
fn bundle_bytes(reader: &docket_log::Reader, first: u64, end: u64) -> Result<Vec<u8>, ApiError> {
    docket_log::tiles::entry_bundle(reader, first, end).map_err(ApiError::internal)
}

/// Parses `<N>[.p/<W>]` (N in C2SP's 3-digit groups, `x` before all but
/// the last): the bundle's index and width (256 for a full one).
fn parse_bundle(path: &str) -> Option<(u64, u64)> {
    let (index, width) = match path.split_once(".p/") {
        Some((index, width)) => {
            let width: u64 = (!width.is_empty() && width.bytes().all(|b| b.is_ascii_digit()))
                .then(|| width.parse().ok())
                .flatten()?;
            ((1..TILE_WIDTH).contains(&width).then_some(index)?, width)
        }
        None => (path, TILE_WIDTH),
    };
    let groups: Vec<&str> = index.split('/').collect();
    let (last, rest) = groups.split_last()?;
    let digits = |g: &str| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit());
    if !digits(last) || !rest.iter().all(|g| g.strip_prefix('x').is_some_and(digits)) || groups.len() > 7 {
        return None;
    }
    let mut number: u64 = 0;
    for group in rest.iter().map(|g| &g[1..]).chain(std::iter::once(*last)) {
        number = number.checked_mul(1000)?.checked_add(group.parse().ok()?)?;
    }
    Some((number, width))
}

#[cfg(test)]
mod tests {
    use super::parse_bundle;

    #[test]
    fn bundle_paths_parse_as_c2sp_writes_them() {
        assert_eq!(parse_bundle("000"), Some((0, 256)));
        assert_eq!(parse_bundle("x001/x234/067"), Some((1_234_067, 256)));
        assert_eq!(parse_bundle("001.p/7"), Some((1, 7)));
        for bad in ["", "1", "0001", "x001", "001/002", "001.p/0", "001.p/256", "001.p/", "001.p/x", "../001", "x1/001"]
        {
            assert_eq!(parse_bundle(bad), None, "{bad}");
        }
    }
}
