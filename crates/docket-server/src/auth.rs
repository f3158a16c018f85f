//! Who is reading: signed requests (`docket_model::request`). Public views,
//! checkpoints, tiles, proofs and the operational endpoints are open; every
//! other read needs a request signed by a key registered to an agency and
//! unrevoked now (in the acknowledged registry, so a revocation holds from
//! the next request), dated within `request_skew_s` of the server's clock.
//! What each agency may read is `policy`'s.
//!
//! Sessions: a signed `POST /v1/session` returns a token the agency sends
//! in `docket-session` on its reads instead of signing each one, for
//! `session_s` seconds, as a database client authenticates once per
//! connection. The token names the agency, its key and the expiry, and is
//! MACed with keyed BLAKE3 under a secret drawn when the server starts (so a
//! restart ends every session); the key is checked against the registry on
//! every use, so revoking it ends its sessions at once. Verifying a token
//! costs a hash, not an ed25519 verification.

use axum::http::{HeaderMap, Method, StatusCode, Uri};

use docket_model::request::{verify_request, AGENCY_HEADER, DATE_HEADER, KEY_HEADER, SESSION_HEADER, SIGNATURE_HEADER};
use docket_model::{AgencyId, AuthError, Name, PublicKey, Signature, Timestamp};

use crate::error::ApiError;
use crate::policy::Scope;
use crate::App;

fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

/// Domain separation of the session MAC.
const SESSION_DOMAIN: &str = "docket/v1/session\0";

/// The server's session secret: tokens it issued verify, no others.
pub(crate) struct Sessions {
    secret: [u8; 32],
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions { .. }")
    }
}

impl Sessions {
    pub(crate) fn new() -> Self {
        let mut secret = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
        Self { secret }
    }

    fn mac(&self, body: &str) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.secret);
        hasher.update(SESSION_DOMAIN.as_bytes());
        hasher.update(body.as_bytes());
        hasher.finalize()
    }

    /// A token for `agency` with `key`, valid until `expires`: `v1:EXPIRES:KEY:MAC:AGENCY`.
    pub(crate) fn issue(&self, agency: &AgencyId, key: &PublicKey, expires: Timestamp) -> String {
        let (expiry, key) = (expires.micros(), key.to_hex());
        let mac = self.mac(&format!("{expiry}:{key}:{agency}"));
        format!("v1:{expiry}:{}:{key}:{agency}", mac.to_hex())
    }

    /// The agency, key and expiry of a token this server issued.
    fn open(&self, token: &str) -> Result<(AgencyId, PublicKey, Timestamp), ApiError> {
        let bad =
            |why: &str| ApiError::new(StatusCode::UNAUTHORIZED, "bad_session", format!("{SESSION_HEADER}: {why}"));
        let mut parts = token.splitn(5, ':');
        let (Some("v1"), Some(expiry), Some(mac), Some(key), Some(agency)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not a session token of this server (see API.md)"));
        };
        let mac = blake3::Hash::from_hex(mac).map_err(|_| bad("the token's MAC is not 64 hex digits"))?;
        // blake3::Hash compares in constant time.
        if self.mac(&format!("{expiry}:{key}:{agency}")) != mac {
            return Err(bad("the token was not issued by this server, or was altered (a restart ends every session)"));
        }
        let expires = expiry.parse::<i64>().ok().and_then(|m| Timestamp::from_micros(m).ok());
        let (Some(expires), Ok(key), Ok(agency)) = (expires, PublicKey::from_hex(key), Name::parse(agency)) else {
            return Err(bad("the token's fields do not parse"));
        };
        Ok((agency, key, expires))
    }
}

/// The agency that signed this request (or holds the session it presents)
/// with what it may read, or why the request is refused. The agency goes
/// into the request's span (the access log's `agency`).
pub(crate) fn authenticate(app: &App, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Scope, ApiError> {
    authenticate_key(app, method, uri, headers).map(|(scope, _)| scope)
}

/// [`authenticate`], with the key that signed (or holds the session).
pub(crate) fn authenticate_key(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Scope, PublicKey), ApiError> {
    let (agency, key) = identify_key(app, method, uri, headers)?;
    tracing::Span::current().record("agency", agency.as_str());
    crate::inquiries::note_reader(&agency, &key);
    Ok((Scope::of(&app.registry.current(), &agency), key))
}

/// Whether the agency's key still stands (a session or a signed SSE stream
/// re-checks it as it goes).
pub(crate) fn key_stands(app: &App, agency: &AgencyId, key: &PublicKey) -> Result<(), ApiError> {
    check_key(app, agency, key, Timestamp::now())
}

/// The agency and key of a request.
fn identify_key(app: &App, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(AgencyId, PublicKey), ApiError> {
    if let Some(token) = headers.get(SESSION_HEADER) {
        let token = token.to_str().map_err(|_| unauthenticated(format!("{SESSION_HEADER} is not text")))?;
        let (agency, key, expires) = app.sessions.open(token)?;
        let now = Timestamp::now();
        if now > expires {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session_expired",
                format!("the session expired at {expires}; sign POST /v1/session for a new one"),
            ));
        }
        check_key(app, &agency, &key, now)?;
        return Ok((agency, key));
    }
    authenticate_signed(app, method, uri, headers)
}

fn check_key(app: &App, agency: &AgencyId, key: &PublicKey, now: Timestamp) -> Result<(), ApiError> {
    app.registry.current().check_key_at(agency, key, now).map_err(|error| {
        let code = if matches!(error, AuthError::RevokedKey { .. }) { "key_revoked" } else { "unknown_key" };
        ApiError::new(StatusCode::FORBIDDEN, code, error.to_string())
    })
}

/// A new session for the agency that signed this request: (token, expiry).
pub(crate) fn open_session(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(AgencyId, String, Timestamp), ApiError> {
    let (agency, key) = authenticate_signed(app, method, uri, headers)?;
    let expires = Timestamp::from_micros(Timestamp::now().micros() + app.limits.session_s as i64 * 1_000_000)
        .map_err(|e| ApiError::internal(format!("session expiry: {e}")))?;
    Ok((agency.clone(), app.sessions.issue(&agency, &key, expires), expires))
}

/// The agency and key that signed this request.
fn authenticate_signed(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(AgencyId, PublicKey), ApiError> {
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
    check_key(app, &agency, &key, now)?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    verify_request(&key, method.as_str(), path, date_text, b"", &signature)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", format!("request signature: {e}")))?;
    Ok((agency, key))
}
