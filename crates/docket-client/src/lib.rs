//! A small blocking client for docket's HTTP API (HTTP/1.1 over TCP, one
//! kept-alive connection per client), used by `docket get`, the load tool and
//! the tests. With an
//! identity it signs its requests with the agency's key
//! (`docket_model::request`), which is how non-public reads are authorised;
//! for reads (GET) it opens a session (`POST /v1/session`, signed) and sends
//! the token instead of a signature until shortly before it expires, or
//! until the server refuses it (then it signs again).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use ed25519_dalek::SigningKey;

use docket_model::request::{sign_request, AGENCY_HEADER, DATE_HEADER, KEY_HEADER, SESSION_HEADER, SIGNATURE_HEADER};
use docket_model::{PublicKey, Timestamp};

/// Longest a request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request failed (a refusal by the server is a [`Response`], not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("base URL {0:?}: expected http://HOST:PORT")]
    Url(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed response: {0}")]
    Response(String),
}

/// Who signs the requests.
#[derive(Debug, Clone)]
pub struct Identity {
    pub agency: String,
    pub key: SigningKey,
}

/// A client of one server. It keeps its connection open between requests
/// (and opens a new one if the server closed it); clone it for another
/// connection.
#[derive(Debug)]
pub struct Client {
    host: String,
    identity: Option<Identity>,
    connection: Mutex<Option<BufReader<TcpStream>>>,
    /// The session token for reads and when to stop using it; `Unsupported` if the server has no sessions.
    session: Mutex<Session>,
}

#[derive(Debug, Clone)]
enum Session {
    None,
    Open { token: String, renew_at: i64 },
    Unsupported,
}

/// How long before its expiry a session is renewed, in microseconds.
const SESSION_MARGIN_US: i64 = 30_000_000;

impl Clone for Client {
    fn clone(&self) -> Self {
        let session = self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Self {
            host: self.host.clone(),
            identity: self.identity.clone(),
            connection: Mutex::new(None),
            session: Mutex::new(session),
        }
    }
}

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
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
}

impl Client {
    /// A client of `base` (`http://HOST:PORT`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let host = base.strip_prefix("http://").ok_or_else(|| ClientError::Url(base.into()))?.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(ClientError::Url(base.into()));
        }
        Ok(Self {
            host: host.to_owned(),
            identity: None,
            connection: Mutex::new(None),
            session: Mutex::new(Session::None),
        })
    }

    /// Signs every request as `agency` with `key`.
    pub fn with_identity(mut self, agency: &str, key: SigningKey) -> Self {
        self.identity = Some(Identity { agency: agency.to_owned(), key });
        self
    }

    pub fn get(&self, path_and_query: &str) -> Result<Response, ClientError> {
        self.request("GET", path_and_query, b"", &[])
    }

    pub fn post(&self, path_and_query: &str, body: &[u8]) -> Result<Response, ClientError> {
        self.request("POST", path_and_query, body, &[])
    }

    /// Sends one request, authenticated if the client has an identity (a
    /// session token on reads, a signature otherwise), and reads the whole response.
    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        extra_headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        if self.identity.is_none() || method != "GET" {
            return self.send(method, path_and_query, body, extra_headers, None);
        }
        let Some(token) = self.session_token()? else {
            return self.send(method, path_and_query, body, extra_headers, None);
        };
        let response = self.send(method, path_and_query, body, extra_headers, Some(&token))?;
        let refused = response.status == 401
            && serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| v.pointer("/error/code").and_then(|c| c.as_str()).map(str::to_owned))
                .is_some_and(|code| code == "bad_session" || code == "session_expired");
        if refused {
            // The server restarted or the clocks disagree: sign this one, and open a new session next time.
            *self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Session::None;
            return self.send(method, path_and_query, body, extra_headers, None);
        }
        Ok(response)
    }

    /// Whether the client holds a session token for its reads.
    pub fn has_session(&self) -> bool {
        matches!(*self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner), Session::Open { .. })
    }

    /// The current session token, opening a session if there is none or it is about to expire.
    fn session_token(&self) -> Result<Option<String>, ClientError> {
        let now = Timestamp::now().micros();
        match &*self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Session::Open { token, renew_at } if now < *renew_at => return Ok(Some(token.clone())),
            Session::Unsupported => return Ok(None),
            _ => {}
        }
        let response = self.send("POST", "/v1/session", b"", &[], None)?;
        let opened = (response.status == 200)
            .then(|| serde_json::from_slice::<serde_json::Value>(&response.body).ok())
            .flatten()
            .and_then(|v| {
                let token = v.get("token")?.as_str()?.to_owned();
                let expires = Timestamp::parse(v.get("expires_at")?.as_str()?).ok()?;
                Some((token, expires.micros() - SESSION_MARGIN_US))
            });
        let mut session = self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(match opened {
            Some((token, renew_at)) => {
                *session = Session::Open { token: token.clone(), renew_at };
                Some(token)
            }
            // No sessions on this server (404): sign every request. Another refusal: sign this one.
            None if response.status == 404 => {
                *session = Session::Unsupported;
                None
            }
            None => None,
        })
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
        let mut head =
            format!("{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n", self.host, body.len());
        if let Some(token) = session {
            head.push_str(&format!("{SESSION_HEADER}: {token}\r\n"));
        } else if let Some(identity) = &self.identity {
            let date = Timestamp::now().to_string();
            let signature = sign_request(&identity.key, method, path_and_query, &date, body);
            let key = PublicKey(identity.key.verifying_key().to_bytes());
            head.push_str(&format!(
                "{AGENCY_HEADER}: {}\r\n{KEY_HEADER}: {}\r\n{DATE_HEADER}: {date}\r\n{SIGNATURE_HEADER}: {}\r\n",
                identity.agency,
                key.to_hex(),
                signature.to_hex()
            ));
        }
        for (name, value) in extra_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut guard = self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A kept connection may have been closed by the server: then once more on a new one.
        let reused = guard.is_some();
        for attempt in 0..2 {
            let mut connection = match guard.take() {
                Some(connection) => connection,
                None => {
                    let stream = TcpStream::connect(&self.host)?;
                    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
                    stream.set_nodelay(true)?;
                    BufReader::new(stream)
                }
            };
            let exchanged = exchange(&mut connection, head.as_bytes(), body);
            match exchanged {
                Ok((response, keep)) => {
                    if keep {
                        *guard = Some(connection);
                    }
                    return Ok(response);
                }
                Err(_) if attempt == 0 && reused => continue,
                Err(error) => return Err(error),
            }
        }
        Err(ClientError::Response("no response".into()))
    }
}

/// Writes a request and reads one response off the connection; whether the connection can be kept.
fn exchange(connection: &mut BufReader<TcpStream>, head: &[u8], body: &[u8]) -> Result<(Response, bool), ClientError> {
    connection.get_mut().write_all(head)?;
    connection.get_mut().write_all(body)?;
    let mut raw_head = Vec::new();
    loop {
        let before = raw_head.len();
        connection.read_until(b'\n', &mut raw_head)?;
        if raw_head.len() == before {
            return Err(ClientError::Response("the connection closed before a response".into()));
        }
        if raw_head.ends_with(b"\r\n\r\n") {
            break;
        }
    }
    let mut response = parse(&raw_head)?;
    let header = |name: &str| response.header(name).map(str::to_owned);
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let keep = !header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if chunked {
        let mut body = Vec::new();
        loop {
            let mut line = String::new();
            connection.read_line(&mut line)?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| ClientError::Response(format!("chunk size {line:?}")))?;
            let mut chunk = vec![0; size + 2];
            connection.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        response.body = body;
        Ok((response, keep))
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse().map_err(|_| ClientError::Response(format!("content-length {length:?}")))?;
        let mut body = vec![0; length];
        connection.read_exact(&mut body)?;
        response.body = body;
        Ok((response, keep))
    } else {
        let mut body = Vec::new();
        connection.read_to_end(&mut body)?;
        response.body = body;
        Ok((response, false))
    }
}

fn parse(raw: &[u8]) -> Result<Response, ClientError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ClientError::Response("no end of headers".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| ClientError::Response("no status line".into()))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest)? } else { rest.to_vec() };
    Ok(Response { status, headers, body })
}

/// Decodes a chunked body (as far as it goes).
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else { return Ok(body) };
        let size_text = String::from_utf8_lossy(&rest[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ClientError::Response(format!("chunk size {size_text:?}")))?;
        rest = &rest[end + 2..];
        if size == 0 || rest.len() < size {
            body.extend_from_slice(&rest[..size.min(rest.len())]);
            return Ok(body);
        }
        body.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_plain_and_chunked() {
        let plain = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi").expect("parses");
        assert_eq!((plain.status, plain.body.as_slice(), plain.header("x-a")), (200, &b"hi"[..], Some("b")));
        let chunked =
            parse(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .expect("parses");
        assert_eq!((chunked.status, chunked.body.as_slice()), (404, &b"abcde"[..]));
        assert!(parse(b"garbage").is_err());
        assert!(Client::new("https://x").is_err());
        assert!(Client::new("http://127.0.0.1:1/path").is_err());
    }
}
