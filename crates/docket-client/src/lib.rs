//! A blocking client for docket's HTTP API, on `ureq` (HTTP/1.1, https
//! through rustls with the Mozilla roots or a CA file of the caller's), used
//! by `docket get`, `docket session`, `docket verify --url`, the load tools
//! and the tests. With an identity it signs its requests with the agency's
//! key (`docket_model::request`), which is how non-public reads are
//! authorised; for reads (GET) it opens a session (`POST /v1/session`,
//! signed) and sends the token instead of a signature until shortly before
//! it expires, or until the server refuses it (then it signs again). A
//! session token obtained elsewhere (`docket session`) can be given instead
//! of a key.

use std::sync::Mutex;
use std::time::Duration;

use ed25519_dalek::SigningKey;

use docket_model::request::{sign_request, AGENCY_HEADER, DATE_HEADER, KEY_HEADER, SESSION_HEADER, SIGNATURE_HEADER};
use docket_model::{PublicKey, Timestamp};

/// Longest a request may take, from connecting to the last byte of the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest response body read (the public list at 20,000 subjects is about
/// 7 MB; a page of a view at most a few MB): larger is an error, not memory.
pub const RESPONSE_BYTES_MAX: u64 = 1 << 30;

/// Why a request failed (a refusal by the server is a [`Response`], not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The base URL is not `http://HOST[:PORT]` or `https://HOST[:PORT]`.
    #[error("URL {0:?}: expected http://HOST[:PORT] or https://HOST[:PORT]")]
    Url(String),
    /// The TLS handshake failed (certificate, protocol, or a server that does not speak TLS).
    #[error("{url}: TLS failed: {reason}")]
    Tls { url: String, reason: String },
    /// No connection: refused, unreachable, name not found, or timed out.
    #[error("{url}: connection failed: {reason}")]
    Connect { url: String, reason: String },
    /// The exchange failed after connecting (a malformed or too large answer, a cut connection).
    #[error("{url}: {reason}")]
    Response { url: String, reason: String },
    /// A CA certificate file that holds no usable certificate.
    #[error("CA certificates: {0}")]
    Ca(String),
}

/// Who signs the requests.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The agency the key belongs to.
    pub agency: String,
    /// The agency's signing key.
    pub key: SigningKey,
}

/// A client of one server. It keeps its connections open between requests
/// (ureq's pool); a clone has its own pool (another connection) and the
/// same identity and session.
#[derive(Debug)]
pub struct Client {
    base: String,
    ca: Option<Vec<ureq::tls::Certificate<'static>>>,
    agent: ureq::Agent,
    identity: Option<Identity>,
    /// The session token for reads and when to stop using it; `Unsupported` if the server has no sessions.
    session: Mutex<Session>,
}

#[derive(Debug, Clone)]
enum Session {
    None,
    Open {
        token: String,
        renew_at: i64,
    },
    /// A token given by the caller: used as it is, never renewed.
    Given(String),
    Unsupported,
}

/// How long before its expiry a session is renewed, in microseconds.
const SESSION_MARGIN_US: i64 = 30_000_000;

impl Clone for Client {
    fn clone(&self) -> Self {
        Self {
            base: self.base.clone(),
            ca: self.ca.clone(),
            agent: agent(self.ca.as_deref()),
            identity: self.identity.clone(),
            session: Mutex::new(lock(&self.session).clone()),
        }
    }
}

fn lock(session: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An agent: no redirects followed, statuses are answers (not errors), the
/// request timeout, the Mozilla roots or the CA certificates given, no
/// proxy from the environment (a ledger's reads go to the server named).
fn agent(ca: Option<&[ureq::tls::Certificate<'static>]>) -> ureq::Agent {
    let roots = match ca {
        Some(certs) => ureq::tls::RootCerts::new_with_certs(certs),
        None => ureq::tls::RootCerts::WebPki,
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .proxy(None)
        .user_agent(concat!("docket-client/", env!("CARGO_PKG_VERSION")))
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build();
    ureq::Agent::new_with_config(config)
}

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Header names (lower case) and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The error code of a JSON error body (`{"error": {"code": ...}}`).
    pub fn error_code(&self) -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()?
            .pointer("/error/code")?
            .as_str()
            .map(str::to_owned)
    }
}

/// A session token and when it expires (RFC 3339), from `POST /v1/session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// The token, sent in the `docket-session` header.
    pub token: String,
    /// When the server stops accepting it.
    pub expires_at: String,
}

/// Percent-encodes `text` as one query-string value (RFC 3986: everything
/// but unreserved characters), for building request paths.
pub fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Splits a full URL into its base (`scheme://host[:port]`) and its path
/// and query (`/` if none).
pub fn split_url(url: &str) -> Result<(&str, &str), ClientError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| ClientError::Url(url.into()))?;
    let scheme = url.len() - rest.len();
    let at = rest.find(['/', '?']).unwrap_or(rest.len());
    if at == 0 {
        return Err(ClientError::Url(url.into()));
    }
    let path = &url[scheme + at..];
    Ok((&url[..scheme + at], if path.is_empty() { "/" } else { path }))
}

/// Parses PEM text into the certificates it holds; an error if it holds none.
pub fn parse_ca_pem(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, ClientError> {
    let mut certs = vec![];
    for item in ureq::tls::parse_pem(pem) {
        match item.map_err(|e| ClientError::Ca(e.to_string()))? {
            ureq::tls::PemItem::Certificate(cert) => certs.push(cert),
            _ => continue,
        }
    }
    if certs.is_empty() {
        return Err(ClientError::Ca("no CERTIFICATE block in the PEM text".into()));
    }
    Ok(certs)
}

impl Client {
    /// A client of `base` (`http://HOST[:PORT]` or `https://HOST[:PORT]`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let (root, path) = split_url(base)?;
        if path != "/" {
            return Err(ClientError::Url(base.into()));
        }
        Ok(Self {
            base: root.to_owned(),
            ca: None,
            agent: agent(None),
            identity: None,
            session: Mutex::new(Session::None),
        })
    }

    /// Trusts only these CA certificates for https (a private PKI), instead of the Mozilla roots.
    pub fn with_ca(mut self, certs: Vec<ureq::tls::Certificate<'static>>) -> Self {
        self.agent = agent(Some(&certs));
        self.ca = Some(certs);
        self
    }

    /// Signs every request as `agency` with `key`.
    pub fn with_identity(mut self, agency: &str, key: SigningKey) -> Self {
        self.identity = Some(Identity { agency: agency.to_owned(), key });
        self
    }

    /// Sends `token` (from [`Client::open_session`], e.g. through
    /// `docket session`) on every read instead of signing.
    pub fn with_session_token(self, token: &str) -> Self {
        *lock(&self.session) = Session::Given(token.to_owned());
        self
    }

    /// The base URL (`scheme://host[:port]`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A GET of `path_and_query`.
    pub fn get(&self, path_and_query: &str) -> Result<Response, ClientError> {
        self.request("GET", path_and_query, b"", &[])
    }

    /// A POST of `body` to `path_and_query`.
    pub fn post(&self, path_and_query: &str, body: &[u8]) -> Result<Response, ClientError> {
        self.request("POST", path_and_query, body, &[])
    }

    /// Sends one request, authenticated if the client has an identity or a
    /// session token (a session token on reads, a signature otherwise), and
    /// reads the whole response.
    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        extra_headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        if method != "GET" {
            return self.send(method, path_and_query, body, extra_headers, None);
        }
        let Some(token) = self.session_token()? else {
            return self.send(method, path_and_query, body, extra_headers, None);
        };
        let response = self.send(method, path_and_query, body, extra_headers, Some(&token))?;
        let refused = response.status == 401
            && response.error_code().is_some_and(|code| code == "bad_session" || code == "session_expired");
        if refused && self.identity.is_some() {
            // The server restarted or the clocks disagree: sign this one, and open a new session next time.
            *lock(&self.session) = Session::None;
            return self.send(method, path_and_query, body, extra_headers, None);
        }
        Ok(response)
    }

    /// Whether the client holds a session token for its reads.
    pub fn has_session(&self) -> bool {
        matches!(*lock(&self.session), Session::Open { .. } | Session::Given(_))
    }

    /// Opens a session (`POST /v1/session`, signed with the identity's key):
    /// the token and its expiry. An error names the server's refusal.
    pub fn open_session(&self) -> Result<Result<SessionToken, Response>, ClientError> {
        let response = self.send("POST", "/v1/session", b"", &[], None)?;
        let token = (response.status == 200)
            .then(|| serde_json::from_slice::<serde_json::Value>(&response.body).ok())
            .flatten()
            .and_then(|v| {
                let token = v.get("token")?.as_str()?.to_owned();
                let expires_at = v.get("expires_at")?.as_str()?.to_owned();
                Some(SessionToken { token, expires_at })
            });
        Ok(token.ok_or(response))
    }

    /// The current session token, opening a session if there is none or it is about to expire.
    fn session_token(&self) -> Result<Option<String>, ClientError> {
        let now = Timestamp::now().micros();
        match &*lock(&self.session) {
            Session::Open { token, renew_at } if now < *renew_at => return Ok(Some(token.clone())),
            Session::Given(token) => return Ok(Some(token.clone())),
            Session::Unsupported => return Ok(None),
            _ if self.identity.is_none() => return Ok(None),
            _ => {}
        }
        let opened = self.open_session()?;
        let mut session = lock(&self.session);
        Ok(match opened {
            Ok(SessionToken { token, expires_at }) => {
                let expires = Timestamp::parse(&expires_at).map_or(now, |t| t.micros());
                *session = Session::Open { token: token.clone(), renew_at: expires - SESSION_MARGIN_US };
                Some(token)
            }
            // No sessions on this server (404): sign every request. Another refusal: sign this one.
            Err(response) if response.status == 404 => {
                *session = Session::Unsupported;
                None
            }
            Err(_) => None,
        })
    }

    /// The authentication headers of one request: the session token given,
    /// or a signature if the client has an identity.
    fn auth_headers(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        session: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        if let Some(token) = session {
            return vec![(SESSION_HEADER, token.to_owned())];
        }
        let Some(identity) = &self.identity else { return vec![] };
        let date = Timestamp::now().to_string();
        let signature = sign_request(&identity.key, method, path, &date, body);
        let key = PublicKey(identity.key.verifying_key().to_bytes());
        vec![
            (AGENCY_HEADER, identity.agency.clone()),
            (KEY_HEADER, key.to_hex()),
            (DATE_HEADER, date),
            (SIGNATURE_HEADER, signature.to_hex()),
        ]
    }

    /// Sends one request with the session token given, or signed if the client has an identity.
    fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        extra_headers: &[(&str, &str)],
        session: Option<&str>,
    ) -> Result<Response, ClientError> {
        let url = format!("{}{path_and_query}", self.base);
        if !path_and_query.starts_with('/') {
            return Err(ClientError::Url(url));
        }
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in self.auth_headers(method, path_and_query, body, session) {
            builder = builder.header(name, value);
        }
        for (name, value) in extra_headers {
            builder = builder.header(*name, *value);
        }
        let sent = match method {
            "GET" | "HEAD" => builder.body(()).map(|request| self.agent.run(request)),
            _ => builder.body(body).map(|request| self.agent.run(request)),
        };
        let mut response =
            sent.map_err(|e| ClientError::Url(format!("{url} ({e})")))?.map_err(|e| classify(&url, e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let body =
            response.body_mut().with_config().limit(RESPONSE_BYTES_MAX).read_to_vec().map_err(|e| classify(&url, e))?;
        Ok(Response { status, headers, body })
    }
}

/// Sorts a ureq error into what went wrong: TLS, the connection, or the exchange.
fn classify(url: &str, error: ureq::Error) -> ClientError {
    let url = url.to_owned();
    let reason = error.to_string();
    match error {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) | ureq::Error::TlsRequired => {
            ClientError::Tls { url, reason }
        }
        ureq::Error::Io(ref io) if url.starts_with("https://") && io.kind() == std::io::ErrorKind::InvalidData => {
            ClientError::Tls { url, reason }
        }
        ureq::Error::Io(_) | ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_) => {
            ClientError::Connect { url, reason }
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => ClientError::Url(format!("{url} ({reason})")),
        ureq::Error::BodyExceedsLimit(_) => {
            ClientError::Response { url, reason: format!("the answer is larger than {RESPONSE_BYTES_MAX} bytes") }
        }
        _ => ClientError::Response { url, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_base_and_path() {
        assert_eq!(split_url("http://h:1/v1/x?a=b").unwrap(), ("http://h:1", "/v1/x?a=b"));
        assert_eq!(split_url("https://h.example").unwrap(), ("https://h.example", "/"));
        assert_eq!(split_url("https://h:8443?x=1").unwrap(), ("https://h:8443", "?x=1"));
        assert!(split_url("ftp://h/").is_err());
        assert!(split_url("http:///path").is_err());
        assert!(Client::new("https://x").is_ok());
        assert!(Client::new("http://127.0.0.1:1/path").is_err());
        assert!(Client::new("127.0.0.1:1").is_err());
    }

    #[test]
    fn a_pem_without_certificates_is_refused() {
        let error = parse_ca_pem(b"not a pem").unwrap_err();
        assert!(error.to_string().contains("no CERTIFICATE"), "{error}");
    }

    #[test]
    fn a_refused_connection_is_named() {
        // A port just released: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let error = Client::new(&format!("http://127.0.0.1:{port}")).unwrap().get("/healthz").unwrap_err();
        assert!(matches!(error, ClientError::Connect { .. }), "{error}");
        assert!(error.to_string().contains(&format!("127.0.0.1:{port}")), "{error}");
    }

    #[test]
    fn https_to_a_server_that_does_not_speak_tls_is_a_tls_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = listener.accept().unwrap();
            let mut hello = [0; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        });
        let error = Client::new(&format!("https://127.0.0.1:{}", addr.port())).unwrap().get("/healthz").unwrap_err();
        server.join().unwrap();
        assert!(matches!(error, ClientError::Tls { .. }), "{error:?}");
        assert!(error.to_string().contains("TLS failed"), "{error}");
    }
}
