//! Hostile clients meet named limits: connections past `connections_max`,
//! slow or idle headers, slow bodies, bodies past the in-memory budget, too
//! many feed streams, replay floods. And every error path answers with the
//! JSON error contract. No timing is asserted: timeouts are set short and
//! each test waits (bounded) for the outcome.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use docket_server::ServerLimits;
use docket_world as world;
use serde_json::Value;
use support::*;

/// A connection that has sent `head` and nothing more.
fn open_with(addr: SocketAddr, head: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(head).unwrap();
    stream
}

/// Everything the server sends until it closes the connection (or 20 s pass: then the test fails).
fn until_closed(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return String::from_utf8_lossy(&seen).into_owned(),
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return String::from_utf8_lossy(&seen).into_owned()
            }
            Err(error) => {
                panic!("the server kept the connection open: {error}; seen {:?}", String::from_utf8_lossy(&seen))
            }
        }
    }
}

/// One kept-alive request on `stream`, read up to the end of its (JSON or text) body.
fn exchange(stream: &mut TcpStream, path: &str) -> String {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") || !complete(&seen) {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Whether a response with a content-length has all its body.
fn complete(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw).to_lowercase();
    let Some(split) = text.find("\r\n\r\n") else { return false };
    let length = text[..split]
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    raw.len() >= split + 4 + length
}

/// The answer to `head` on a new connection; retried while the server
/// closes it unanswered (the previous reserve connection may not be released yet).
fn answered(addr: SocketAddr, head: &[u8]) -> String {
    for _ in 0..100 {
        let reply = until_closed(&mut open_with(addr, head));
        if !reply.is_empty() {
            return reply;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no answer in 100 tries")
}

/// An open SSE stream of `agency` (a connection busy for as long as it lasts).
fn sse_stream(addr: SocketAddr, agency: &str) -> TcpStream {
    let key = world::key(SEED, agency);
    let path = "/v1/feed/sse?cursor=0";
    let headers = signed_headers_at(agency, &key, "GET", path, &docket_model::Timestamp::now().to_string());
    let mut stream = open_with(addr, format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").as_bytes());
    let mut buffer = [0u8; 1024];
    assert!(stream.read(&mut buffer).unwrap() > 0, "the stream is open");
    stream
}

#[test]
fn idle_connections_make_room_for_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 2);
    let server = start(dir.path(), ServerLimits { connections_max: 2, ..ServerLimits::default() });
    let addr = server.addr;
    let mut idle: Vec<TcpStream> = (0..2).map(|_| open_with(addr, b"")).collect();
    for stream in &mut idle {
        assert!(exchange(stream, "/healthz").starts_with("HTTP/1.1 200"));
    }
    // A third client is served in full, in the place of the oldest idle connection.
    let reply = answered(addr, b"GET /v1/views/registry HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 200"), "{}", &reply[..reply.len().min(200)]);
    assert_eq!(until_closed(&mut idle[0]), "", "the oldest idle connection was closed");
    let metrics = get(addr, "/metrics").body;
    assert!(!metrics.contains("docket_connections_evicted_total 0"), "{metrics}");
}

#[test]
fn busy_connections_past_the_limit_leave_the_reserve_then_none() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 2);
    let limits = ServerLimits { connections_max: 2, connections_reserve: 1, ..ServerLimits::default() };
    let server = start(dir.path(), limits);
    let addr = server.addr;
    // Two connections busy with feed streams.
    let _streams = [sse_stream(addr, "spc"), sse_stream(addr, "sat")];
    // The third gets the reserve: health, yes; anything else, 503 overloaded; one request, then closed.
    let reply = answered(addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("ok\n"), "{reply}");
    let reply = answered(addr, b"GET /v1/views/public HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 503") && reply.contains("\"overloaded\""), "{reply}");
    // With the reserve taken too, a new connection is closed without an answer.
    let _reserve = open_with(addr, b"GET /healthz HTTP/1.1\r\n");
    let whole = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut tries = 0;
    let reply = loop {
        // The reserve connection may not be accepted yet: retry until a connection is refused outright.
        let reply = until_closed(&mut open_with(addr, whole));
        if reply.is_empty() || tries == 50 {
            break reply;
        }
        tries += 1;
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(reply, "", "closed on accept, the request unanswered");
}

#[test]
fn slow_headers_idle_connections_and_slow_bodies_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 2);
    let limits = ServerLimits { header_read_timeout_ms: 200, body_read_timeout_ms: 200, ..ServerLimits::default() };
    let server = start(dir.path(), limits);
    let addr = server.addr;
    // Slowloris: half a head, then nothing.
    let mut slow = open_with(addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    until_closed(&mut slow);
    // Idle: connected, never a byte; and kept alive after a request.
    until_closed(&mut open_with(addr, b""));
    let mut kept = open_with(addr, b"");
    assert!(exchange(&mut kept, "/healthz").starts_with("HTTP/1.1 200"));
    until_closed(&mut kept);
    // A body that never finishes: 408 body_timeout.
    let mut partial = open_with(addr, b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{\"event\"");
    let reply = until_closed(&mut partial);
    assert!(reply.starts_with("HTTP/1.1 408") && reply.contains("\"body_timeout\""), "{reply}");
}

#[test]
fn bodies_past_the_memory_budget_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 2);
    // A body holds one event of the largest size (70,000 bytes), the budget not two.
    let limits = ServerLimits {
        batch_events_max: 1,
        body_bytes_max: 70_000,
        body_bytes_in_flight_max: 100_000,
        ..ServerLimits::default()
    };
    let server = start(dir.path(), limits);
    let addr = server.addr;
    // One body of 70,000 bytes, half sent, holds 70,000 of the 100,000.
    let _holding = open_with(addr, b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n{\"event\": ");
    let mut tries = 0;
    let reply = loop {
        let reply = request(addr, "POST", "/v1/events", &vec![b' '; 40_000], "");
        if reply.status == 503 || tries == 100 {
            break reply;
        }
        tries += 1;
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!((reply.status, reply.code().as_str()), (503, "overloaded"), "{}", reply.body);
    assert!(reply.headers.contains("retry-after: 1"), "{}", reply.headers);
    // A small body still fits.
    assert_eq!(post(addr, "/v1/events", b"{").code(), "malformed_json");
}

#[test]
fn feed_streams_are_capped_per_agency() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 2);
    let server = start(dir.path(), ServerLimits { feed_streams_per_agency_max: 1, ..ServerLimits::default() });
    let addr = server.addr;
    let stream = sse_stream(addr, "spc");
    let second = get_as(addr, "spc", "/v1/feed?cursor=0");
    assert_eq!((second.status, second.code().as_str()), (429, "too_many_streams"), "{}", second.body);
    assert_eq!(get_as(addr, "sat", "/v1/feed?cursor=0").status, 200, "another agency has its own streams");
    drop(stream);
    let mut tries = 0;
    while get_as(addr, "spc", "/v1/feed?cursor=0").status != 200 && tries < 100 {
        tries += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(tries < 100, "the closed stream gave its place back");
}

/// A POST from another loopback address (127.0.0.2), to tell clients apart.
fn post_from_other_address(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        socket.connect(addr).await.unwrap().into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    request_on(stream, "POST", path, body, "")
}

#[test]
fn a_replay_flood_is_answered_from_the_receipts_then_limited_and_spends_no_budget() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 2);
    let limits = ServerLimits {
        appends_per_agency_per_s: 1,
        append_burst: 2,
        replays_per_address_per_s: 1,
        replay_burst: 5,
        ..ServerLimits::default()
    };
    let server = start(dir.path(), limits);
    let addr = server.addr;
    let spc = world::key(SEED, "spc");
    let genuine = body_of(&notice(700, "spc", &spc, Some(0), "Held by the attacker"));
    let receipt = post(addr, "/v1/events", &genuine);
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    let mut statuses = vec![];
    for _ in 0..20 {
        let reply = post(addr, "/v1/events", &genuine);
        if reply.status == 200 {
            assert_eq!(reply.json(), receipt.json(), "a replay gets the original receipt");
        } else {
            assert_eq!(reply.code(), "rate_limited", "{}", reply.body);
            assert!(reply.headers.contains("retry-after: "), "{}", reply.headers);
        }
        statuses.push(reply.status);
    }
    assert!(statuses.contains(&429), "the flood is limited: {statuses:?}");
    // The court's budget (a burst of 2, one spent on the genuine append) is intact.
    let next = post_from_other_address(addr, "/v1/events", &body_of(&notice(701, "spc", &spc, Some(0), "x")));
    assert_eq!(next.status, 200, "the replays spent none of the court's budget: {}", next.body);
    let metrics = get(addr, "/metrics").body;
    assert!(metrics.contains("docket_appends_total{outcome=\"duplicate\"}"), "{metrics}");
}

#[test]
fn every_error_path_answers_with_the_json_contract() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 2);
    // A body holds one event of the largest size (70,000 bytes), and no more.
    let limits = ServerLimits { batch_events_max: 1, body_bytes_max: 70_000, ..ServerLimits::default() };
    let server = start(dir.path(), limits);
    let addr = server.addr;
    let spc = world::key(SEED, "spc");
    let event = body_of(&notice(800, "spc", &spc, Some(0), "x"));
    let positional = {
        let json: Value = serde_json::from_slice(&event).unwrap();
        serde_json::to_vec(&[&json["event"], &json["signature"], &json["id"]]).unwrap()
    };
    let nested = {
        let mut json: Value = serde_json::from_slice(&event).unwrap();
        let notice = &mut json["event"]["body"]["case"]["action"]["notice"];
        // The fields in their declared order: serde alone would read this array as the struct.
        let fields = ["served_at", "method", "matter", "rights"];
        *notice = Value::Array(fields.iter().map(|f| notice[f].clone()).collect());
        serde_json::to_vec(&json).unwrap()
    };
    let long = format!("{{\"event\": \"{}\"}}", "x".repeat(7000));
    // (what, method, body, path, status, code)
    type Case<'a> = (&'a str, &'a str, Vec<u8>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("unknown route", "GET", vec![], "/v2/nothing", 404, "not_found"),
        ("wrong method", "DELETE", vec![], "/v1/events", 405, "method_not_allowed"),
        ("bad path parameter", "GET", vec![], "/v1/events/minus-one", 400, "bad_parameter"),
        ("bad query parameter", "GET", vec![], "/v1/proof/inclusion?seq=x", 400, "bad_parameter"),
        ("unknown query parameter", "GET", vec![], "/v1/delta?colour=blue", 400, "bad_parameter"),
        ("body not JSON", "POST", b"{\"event\": ".to_vec(), "/v1/events", 400, "malformed_json"),
        ("positional array", "POST", positional, "/v1/events", 422, "invalid_event"),
        ("nested positional array", "POST", nested, "/v1/events", 422, "invalid_event"),
        ("batch not an array", "POST", event.clone(), "/v1/events/batch", 422, "invalid_event"),
        ("body too large", "POST", vec![b' '; 80_000], "/v1/events", 413, "body_too_large"),
        ("long input", "POST", long.into_bytes(), "/v1/events", 422, "invalid_event"),
    ];
    for (what, method, body, path, status, code) in cases {
        let reply = request(addr, method, path, &body, "");
        assert_eq!((reply.status, reply.code().as_str()), (status, code), "{what}: {}", reply.body);
        assert!(reply.headers.contains("content-type: application/json"), "{what}: {}", reply.headers);
        let message = reply.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(!message.is_empty(), "{what}");
        assert!(message.len() <= docket_server::error::ECHO_BYTES_MAX + 64, "{what}: {} bytes echoed", message.len());
    }
    assert!(request(addr, "DELETE", "/v1/events", b"", "").headers.contains("allow: post"));
    // A body too large without a length (chunked) is refused as it is read.
    let chunked = "Transfer-Encoding: chunked\r\nConnection: close\r\n";
    let mut stream = open_with(
        addr,
        format!("POST /v1/events HTTP/1.1\r\nHost: t\r\n{chunked}\r\n13880\r\n{}\r\n0\r\n\r\n", " ".repeat(80_000))
            .as_bytes(),
    );
    let reply = until_closed(&mut stream);
    assert!(reply.starts_with("HTTP/1.1 413") && reply.contains("\"body_too_large\""), "{reply}");
}
