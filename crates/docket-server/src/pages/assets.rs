//! The pages' two static files, compiled in: the stylesheet and the proof
//! checker. Each is served under a name that carries its content hash
//! (`desk-0123abcd.css`), cached for a year as immutable: a new build
//! changes the name, so no reader ever holds a stale copy.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::PageError;
use crate::error::ApiError;

/// (name, content type, bytes).
const ASSETS: [(&str, &str, &str); 2] = [
    ("desk.css", "text/css; charset=utf-8", include_str!("assets/desk.css")),
    ("proof.js", "text/javascript; charset=utf-8", include_str!("assets/proof.js")),
];

/// Each asset's served name: its stem, the first 8 hex digits of its BLAKE3, its extension.
fn served_names() -> &'static [String; 2] {
    static NAMES: OnceLock<[String; 2]> = OnceLock::new();
    NAMES.get_or_init(|| {
        ASSETS.map(|(name, _, bytes)| {
            let hash = blake3::hash(bytes.as_bytes()).to_hex();
            let (stem, extension) = name.split_once('.').unwrap_or((name, ""));
            format!("{stem}-{}.{extension}", &hash[..8])
        })
    })
}

/// The path of asset `name` as pages link it (`/assets/desk-HASH.css`).
pub(crate) fn href(name: &str) -> String {
    let index = ASSETS.iter().position(|(n, _, _)| *n == name).unwrap_or(0);
    format!("/assets/{}", served_names()[index])
}

/// `GET /assets/{name}`: an asset by its served name, immutable.
pub(super) async fn asset(Path(name): Path<String>) -> Result<Response, PageError> {
    let index = served_names().iter().position(|served| *served == name).ok_or_else(|| {
        ApiError::not_found(format!("no asset {name:?}; the assets are {}", served_names().join(", ")))
    })?;
    let (_, content_type, bytes) = ASSETS[index];
    let cache = "public, max-age=31536000, immutable";
    Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], bytes).into_response())
}
