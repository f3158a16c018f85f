//! What the server's integration tests share: a demo ledger, a server on
//! its own runtime, raw HTTP/1.1 requests and signed ones, event builders.

// Test helpers panic on failure, like the tests; not every test file uses every helper.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use docket_model::event::{Body, CaseAction, CaseEvent, Event, RegistryEvent, ServiceMethod, Signer, FORMAT_VERSION};
use docket_model::{Name, PublicKey, SignedEvent, SubjectId, Timestamp};
use docket_server::{Server, ServerLimits};
use docket_world as world;
use ed25519_dalek::SigningKey;
use serde_json::Value;

pub const SEED: u64 = 1;

/// A demo ledger with `subjects` cases in `dir`; the registry root's key.
pub fn demo_ledger(dir: &Path, subjects: u64) -> SigningKey {
    world::write_ledger(dir, subjects, SEED).unwrap().0.registry_root
}

/// A server running on its own runtime, stopped (gracefully) on drop.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn start(dir: &Path, limits: ServerLimits) -> Running {
    let dir = dir.to_owned();
    let (ready, addr) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let server = Server::open(&dir, limits).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ready.send(listener.local_addr().unwrap()).unwrap();
            server
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
    });
    Running { addr: addr.recv_timeout(Duration::from_secs(30)).unwrap(), stop: Some(stop), thread: Some(thread) }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// The body of a reply, its chunked transfer coding removed (the helpers
/// lower-case header lines).
pub fn unchunked(reply: &Reply) -> Vec<u8> {
    if !reply.headers.lines().any(|line| line.starts_with("transfer-encoding:") && line.ends_with("chunked")) {
        return reply.bytes.clone();
    }
    let (mut body, mut rest) = (vec![], reply.bytes.as_slice());
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap().trim(), 16).unwrap();
        rest = &rest[line + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// One HTTP/1.1 request, `Connection: close`, the whole reply.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8], extra: &str) -> Reply {
    request_on(TcpStream::connect(addr).unwrap(), method, path, body, extra)
}

/// [`request`] on a connected stream.
pub fn request_on(mut stream: TcpStream, method: &str, path: &str, body: &[u8], extra: &str) -> Reply {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |at| at + 4);
    let headers = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let bytes = raw[split..].to_vec();
    let status = headers.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned(), bytes }
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, b"", "")
}

/// A request signed by `agency` with its demo key, through docket-client.
pub fn get_as(addr: SocketAddr, agency: &str, path: &str) -> Reply {
    get_with(addr, agency, world::key(SEED, agency), path)
}

/// A request signed by `agency` with `key`, through docket-client.
pub fn get_with(addr: SocketAddr, agency: &str, key: SigningKey, path: &str) -> Reply {
    let client = docket_client::Client::new(&format!("http://{addr}")).unwrap().with_identity(agency, key);
    let response = client.get(path).unwrap();
    let headers: String = response.headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    Reply { status: response.status, headers, body: response.text(), bytes: response.body }
}

pub fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    request(addr, "POST", path, body, "")
}

/// A case event on case `index` of the defaulter list (subject [`world::numbered_uscc`]).
pub fn case_event(
    index: u64,
    agency: &str,
    key: &SigningKey,
    at: &str,
    expected_version: Option<u64>,
    action: CaseAction,
) -> SignedEvent {
    let event = Event {
        format: FORMAT_VERSION,
        signer: Signer::Agency(Name::parse(agency).unwrap()),
        key: PublicKey(key.verifying_key().to_bytes()),
        effective_at: Timestamp::parse(at).unwrap(),
        body: Body::Case(CaseEvent {
            list: Name::parse("cn-spc-defaulters").unwrap(),
            subject: SubjectId::Uscc(world::numbered_uscc(index)),
            number: Name::parse(&format!("(2024)京0105执{index}号")).unwrap(),
            expected_version,
            action,
        }),
    };
    SignedEvent::sign(event, key).unwrap()
}

/// A notice opening case `index` on the defaulter list, signed by `agency` with `key`.
pub fn notice(index: u64, agency: &str, key: &SigningKey, expected_version: Option<u64>, matter: &str) -> SignedEvent {
    let at = "2024-03-01T10:00:00+08:00";
    let action = CaseAction::Notice {
        served_at: Timestamp::parse(at).unwrap(),
        method: ServiceMethod::Post,
        matter: matter.into(),
        legal_basis: vec![],
        rights: "Objection within 7 working days".into(),
    };
    case_event(index, agency, key, at, expected_version, action)
}

/// A designation decision on case `index` (opened by a notice), in force from 1 October 2026.
pub fn designation(index: u64, key: &SigningKey) -> SignedEvent {
    use docket_model::event::{LegalRef, Severity};
    let text = |t: &str| t.to_owned();
    let action = CaseAction::DesignationDecision {
        decided_at: Timestamp::parse("2026-09-30T16:00:00+08:00").unwrap(),
        basis: None,
        reasons: text("Able to perform but refuses"),
        legal_basis: vec![LegalRef { instrument: text("Civil Procedure Law of the PRC"), article: text("art. 262") }],
        measures_warning: text("Joint measures apply"),
        removal_conditions: text("Performance"),
        remedies: text("Review"),
        severity: Severity::Serious,
        term_months: Some(24),
    };
    case_event(index, "spc", key, "2026-10-01T09:00:00+08:00", Some(1), action)
}

pub fn hex32(text: &str) -> [u8; 32] {
    hex::decode(text).unwrap().try_into().unwrap()
}

/// A registry event signed by the registry root.
pub fn registry_event(root: &SigningKey, body: RegistryEvent) -> SignedEvent {
    let event = Event {
        format: FORMAT_VERSION,
        signer: Signer::Registry,
        key: PublicKey(root.verifying_key().to_bytes()),
        effective_at: Timestamp::parse("2024-01-01T00:00:00+08:00").unwrap(),
        body: Body::Registry(body),
    };
    SignedEvent::sign(event, root).unwrap()
}

pub fn body_of(event: &SignedEvent) -> Vec<u8> {
    serde_json::to_vec(&event.to_json()).unwrap()
}

/// Signed-request headers of `agency` with `key` for `method path`, dated `date`.
pub fn signed_headers_at(agency: &str, key: &SigningKey, method: &str, path: &str, date: &str) -> String {
    let signature = docket_model::request::sign_request(key, method, path, date, b"");
    format!(
        "docket-agency: {agency}\r\ndocket-key: {}\r\ndocket-date: {date}\r\ndocket-signature: {}\r\n",
        PublicKey(key.verifying_key().to_bytes()).to_hex(),
        signature.to_hex()
    )
}

/// `POST /v1/session`, signed by `agency` with `key`.
pub fn open_session(addr: SocketAddr, agency: &str, key: &SigningKey) -> Reply {
    let headers = signed_headers_at(agency, key, "POST", "/v1/session", &Timestamp::now().to_string());
    request(addr, "POST", "/v1/session", b"", &headers)
}

/// `method path` carrying the session `token`.
pub fn with_token(addr: SocketAddr, method: &str, path: &str, token: &str) -> Reply {
    request(addr, method, path, b"", &format!("docket-session: {token}\r\n"))
}

/// Opens `path` as an SSE stream signed with `agency`'s demo key (and the
/// `extra` header lines, each ending in CRLF) and reads until the first
/// `caught-up` event: the open stream and everything read, headers included.
pub fn sse_until_caught_up(addr: SocketAddr, agency: &str, path: &str, extra: &str) -> (TcpStream, String) {
    let key = world::key(SEED, agency);
    let headers = signed_headers_at(agency, &key, "GET", path, &Timestamp::now().to_string());
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}{headers}\r\n").as_bytes()).unwrap();
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    while !seen.contains("event: caught-up") {
        let n = stream.read(&mut buffer).unwrap_or(0);
        assert!(n > 0, "the stream ended before caught-up: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    (stream, seen)
}
