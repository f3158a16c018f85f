//! Who is reading: signed requests (`docket_model::request`). Public views,
//! checkpoints, tiles, proofs and the operational endpoints are open; every
//! other read needs a request signed by a key registered to an agency and
//! unrevoked now, dated within `request_skew_s` of the server's clock. A
//! designating agency's list view and a responsible agency's worklist are
//! for that agency only.

use axum::http::{HeaderMap, Method, StatusCode, Uri};

use docket_model::request::{verify_request, AGENCY_HEADER, DATE_HEADER, KEY_HEADER, SIGNATURE_HEADER};
use docket_model::{AgencyId, AuthError, Name, PublicKey, Signature, Timestamp};

use crate::error::ApiError;
use crate::App;

fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

/// The agency that signed this request, or why the request is refused.
pub(crate) fn authenticate(app: &App, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<AgencyId, ApiError> {
    let header = |name: &str| -> Result<&str, ApiError> {
        headers.get(name).and_then(|v| v.to_str().ok()).ok_or_else(|| {
            unauthenticated(format!("this read needs a signed request: header {name} is missing (see API.md)"))
        })
    };
    let agency = Name::parse(header(AGENCY_HEADER)?).map_err(|e| unauthenticated(format!("{AGENCY_HEADER}: {e}")))?;
    let key = PublicKey::from_hex(header(KEY_HEADER)?).map_err(|e| unauthenticated(format!("{KEY_HEADER}: {e}")))?;
    let date_text = header(DATE_HEADER)?;
    let signature = Signature::from_hex(header(SIGNATURE_HEADER)?)
        .map_err(|e| unauthenticated(format!("{SIGNATURE_HEADER}: {e}")))?;
    let date = Timestamp::parse(date_text).map_err(|e| unauthenticated(format!("{DATE_HEADER}: {e}")))?;
    let now = Timestamp::now();
    let skew = app.limits.request_skew_s as i64 * 1_000_000;
    if (now.micros() - date.micros()).abs() > skew {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "stale_request",
            format!(
                "{DATE_HEADER} {date_text} is more than {} s from the server's clock ({now})",
                app.limits.request_skew_s
            ),
        ));
    }
    let registry = app.store.current_registry();
    registry.check_key_at(&agency, &key, now).map_err(|error| {
        let code = if matches!(error, AuthError::RevokedKey { .. }) { "key_revoked" } else { "unknown_key" };
        ApiError::new(StatusCode::FORBIDDEN, code, error.to_string())
    })?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    verify_request(&key, method.as_str(), path, date_text, b"", &signature)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", format!("request signature: {e}")))?;
    Ok(agency)
}

/// Refuses a read of another agency's own view.
pub(crate) fn only_for(reader: &AgencyId, owner: &str, view: &str) -> Result<(), ApiError> {
    if reader.as_str() == owner {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the {view} view of agency \"{owner}\" is for that agency only; the request is signed by \"{reader}\""
            ),
        ))
    }
}
