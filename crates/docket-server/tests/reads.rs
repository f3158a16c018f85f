//! Reads that scale to many integrators, over real HTTP on loopback: ETags
//! and 304s (never stale after an append), gzip and br (never on event
//! streams), page cursors (every entry exactly once, even when the ledger
//! moves between pages), CORS on open reads only; and, ignored by default,
//! the bytes on the wire of the public list at a large demo size (BENCH.md).

// Test helpers outside #[test] functions panic on failure, like the tests.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::net::SocketAddr;

use docket_server::ServerLimits;
use docket_world as world;
use serde_json::Value;
use support::*;

/// The value of header `name` (lower case) in a reply.
fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

/// The ETag of a reply as the server sent it (the helpers lower-case headers; `W/` is upper case).
fn etag_of(reply: &Reply) -> Option<String> {
    header(reply, "etag").map(|tag| tag.strip_prefix("w/").map_or_else(|| tag.to_owned(), |weak| format!("W/{weak}")))
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// `GET path` with extra header lines.
fn get_with_headers(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    request(addr, "GET", path, b"", extra)
}

/// A session token of `agency` (its demo key).
fn session(addr: SocketAddr, agency: &str) -> String {
    let reply = open_session(addr, agency, &world::key(SEED, agency));
    reply.json()["token"].as_str().unwrap().to_owned()
}

/// Appends `events` and waits until the projections hold them.
fn append(addr: SocketAddr, events: &[&docket_model::SignedEvent]) {
    let mut last = 0;
    for event in events {
        let reply = post(addr, "/v1/events", &body_of(event));
        assert_eq!(reply.status, 200, "{}", reply.body);
        last = reply.json()["seq"].as_u64().unwrap();
    }
    assert_eq!(get(addr, &format!("/v1/views/registry?min_seq={last}")).status, 200);
}

#[test]
fn a_matching_etag_is_answered_304_until_an_append_changes_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 40);
    let server = start(dir.path(), ServerLimits::default());
    let addr = server.addr;
    let spc = world::key(SEED, "spc");
    let list = "cn-spc-defaulters";
    // In force now (the body names it), and at a fixed valid time (the point names it).
    let now = format!("/v1/views/public?list={list}");
    let fixed = format!("/v1/views/public?list={list}&valid_at=2026-12-01");
    let delta = format!("/v1/delta?cursor=0&list={list}");
    let mut tags = vec![];
    for path in [&now, &fixed, &delta, &"/v1/checkpoint".to_owned()] {
        let first = get(addr, path);
        assert_eq!(first.status, 200, "{path}: {}", first.body);
        let etag = etag_of(&first).unwrap_or_else(|| panic!("{path}: an ETag: {}", first.headers));
        assert!(etag.trim_start_matches("W/").starts_with('"') && etag.ends_with('"'), "an ETag: {etag}");
        let again = get_with_headers(addr, path, &format!("If-None-Match: {etag}\r\n"));
        assert_eq!(again.status, 304, "{path}");
        assert!(again.bytes.is_empty(), "a 304 has no body");
        assert_eq!(etag_of(&again), Some(etag.clone()));
        assert_eq!(get_with_headers(addr, path, "If-None-Match: \"other\", *\r\n").status, 304, "*");
        tags.push(etag);
    }
    assert!(
        tags[0].starts_with("W/\"i"),
        "what is in force now: a weak ETag, the read's instant left out: {}",
        tags[0]
    );
    assert!(tags[1].starts_with("\"p"), "a pinned read's ETag is strong, known before the view is computed");
    assert!(tags[2].starts_with("W/\"i"), "a delta to now: {}", tags[2]);
    assert!(tags[3].starts_with("\"b"), "the checkpoint: its body's hash: {}", tags[3]);

    // A notice on a new case: the public list in force is the same, so its
    // body-named ETag stands; the fixed valid time's names the log, so it moves.
    append(addr, &[&notice(1, "spc", &spc, Some(0), "Failure to pay")]);
    assert_eq!(get_with_headers(addr, &now, &format!("If-None-Match: {}\r\n", tags[0])).status, 304);
    let moved = get_with_headers(addr, &fixed, &format!("If-None-Match: {}\r\n", tags[1]));
    assert_eq!(moved.status, 200, "a pinned ETag names the log it was read at");

    // The designation changes both answers: 200 with new ETags and the new entry.
    append(addr, &[&designation(1, &spc)]);
    for (path, old) in [(&now, &tags[0]), (&fixed, &tags[1]), (&delta, &tags[2])] {
        let reply = get_with_headers(addr, path, &format!("If-None-Match: {old}\r\n"));
        assert_eq!(reply.status, 200, "{path}: never a stale 304");
        assert_ne!(&etag_of(&reply).unwrap(), old, "{path}");
        assert!(reply.body.contains("(2024)京0105执1号"), "{path}: {}", reply.body);
    }

    // A historical read (as_of a seq) names a point that never changes.
    let historical = format!("/v1/views/public?list={list}&as_of=3");
    let first = get(addr, &historical);
    let etag = etag_of(&first).unwrap();
    append(addr, &[&notice(2, "spc", &spc, Some(0), "Failure to pay")]);
    assert_eq!(get_with_headers(addr, &historical, &format!("If-None-Match: {etag}\r\n")).status, 304);

    // Signed reads: the ETag is the reader's, kept by the reader's cache only.
    let token = session(addr, "spc");
    let path = "/v1/views/list?as_of=5";
    let reply = with_token(addr, "GET", path, &token);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(header(&reply, "cache-control"), Some("private, no-cache"));
    let etag = etag_of(&reply).unwrap();
    let extra = format!("docket-session: {token}\r\nIf-None-Match: {etag}\r\n");
    assert_eq!(get_with_headers(addr, path, &extra).status, 304);
    let railway = session(addr, "china-railway");
    let other = with_token(addr, "GET", path, &railway);
    assert_eq!(other.status, 200, "{}", other.body);
    assert_ne!(header(&other, "etag").unwrap(), etag.to_lowercase(), "another reader, another ETag");
    let anonymous = get_with_headers(addr, path, &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(anonymous.status, 401, "authentication comes before any 304");
}

#[test]
fn gzip_and_br_carry_the_same_json_and_event_streams_are_never_compressed() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 40);
    let server = start(dir.path(), ServerLimits::default());
    let addr = server.addr;
    let path = "/v1/views/public?valid_at=2025-06-01";
    let plain = get(addr, path);
    assert_eq!(header(&plain, "content-encoding"), None);
    let gzip = get_with_headers(addr, path, "Accept-Encoding: gzip\r\n");
    assert_eq!(gzip.status, 200);
    assert_eq!(header(&gzip, "content-encoding"), Some("gzip"));
    assert!(header(&gzip, "vary").is_some_and(|vary| vary.contains("accept-encoding")), "{}", gzip.headers);
    let decoded: Value = serde_json::from_slice(&gunzip(&unchunked(&gzip))).unwrap();
    assert_eq!(decoded, plain.json(), "gzip decodes to the same JSON");
    assert_eq!(header(&gzip, "etag"), header(&plain, "etag"), "the ETag names the JSON");
    let br = get_with_headers(addr, path, "Accept-Encoding: br\r\n");
    assert_eq!(header(&br, "content-encoding"), Some("br"));
    assert!(unchunked(&br).len() < plain.bytes.len() / 2, "br: {} of {} bytes", br.bytes.len(), plain.bytes.len());

    // The feed's SSE, asked with every encoding: plain, and each event leaves at once.
    let spc = world::key(SEED, "spc");
    let (mut stream, mut seen) =
        sse_until_caught_up(addr, "spc", "/v1/feed/sse?cursor=0", "Accept-Encoding: gzip, br\r\n");
    let head = seen[..seen.find("\r\n\r\n").unwrap()].to_lowercase();
    assert!(head.contains("text/event-stream"), "{head}");
    assert!(!head.contains("content-encoding"), "an event stream is never compressed: {head}");
    // A new event is delivered while the stream stays open.
    let event = notice(7, "spc", &spc, Some(0), "While the stream is open");
    assert_eq!(post(addr, "/v1/events", &body_of(&event)).status, 200);
    let id = event.id().to_string();
    let mut buffer = [0u8; 4096];
    while !seen.contains(&id) {
        let n = stream.read(&mut buffer).unwrap_or(0);
        assert!(n > 0, "the stream ended before the new event: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
}

/// Every item of a paged answer, following `next` from `first` (a path
/// ending in a query), the items of `fields` of each page; and the pages.
fn page_through(addr: SocketAddr, first: &str, token: Option<&str>, fields: &[&str]) -> (Vec<Value>, usize) {
    let (mut items, mut pages) = (vec![], 0);
    let mut path = first.to_owned();
    loop {
        let reply = match token {
            Some(token) => with_token(addr, "GET", &path, token),
            None => get(addr, &path),
        };
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let page = reply.json();
        for field in fields {
            items.extend(page[*field].as_array().unwrap().iter().cloned());
        }
        pages += 1;
        let Some(next) = page["next"].as_str() else { return (items, pages) };
        let base = first.split("cursor=").next().unwrap().trim_end_matches('&');
        let joiner = if base.contains('?') { '&' } else { '?' };
        path = format!("{base}{joiner}cursor={next}");
    }
}

#[test]
fn paging_yields_every_entry_exactly_once_even_when_the_ledger_moves() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 60);
    let server = start(dir.path(), ServerLimits::default());
    let addr = server.addr;
    let spc = world::key(SEED, "spc");
    // Designations in force now and at 2027-06-01 (the demo's have run out by 2026-12).
    let events: Vec<_> =
        (1..=8).flat_map(|i| [notice(i, "spc", &spc, Some(0), "Failure to pay"), designation(i, &spc)]).collect();
    append(addr, &events.iter().collect::<Vec<_>>());

    // The delta from 0, in pages of 3, is the unpaged delta.
    let whole = get(addr, "/v1/delta?cursor=0&limit=10000").json();
    let changes = whole["changes"].as_array().unwrap().clone();
    assert!(changes.len() > 3, "{} changes", changes.len());
    assert_eq!(whole["total"], changes.len());
    assert!(whole.get("next").is_none());
    let (paged, pages) = page_through(addr, "/v1/delta?limit=3&cursor=0", None, &["changes"]);
    assert_eq!(paged, changes);
    assert_eq!(pages, changes.len().div_ceil(3));

    // The public list at a fixed valid time, paged while appends land between pages.
    let path = "/v1/views/public?valid_at=2027-06-01";
    let whole = get(addr, &format!("{path}&limit=10000")).json()["entries"].as_array().unwrap().clone();
    assert!(whole.len() > 2, "{} entries", whole.len());
    let first = get(addr, &format!("{path}&limit=2")).json();
    append(addr, &[&notice(9, "spc", &spc, Some(0), "Failure to pay"), &designation(9, &spc)]);
    let moved = get(addr, &format!("{path}&limit=10000")).json()["entries"].as_array().unwrap().clone();
    assert_eq!(moved.len(), whole.len() + 1, "the designation is on the list now");
    let mut entries = first["entries"].as_array().unwrap().clone();
    let next = first["next"].as_str().unwrap();
    let (rest, _) = page_through(addr, &format!("{path}&limit=2&cursor={next}"), None, &["entries"]);
    entries.extend(rest);
    assert_eq!(entries, whole, "every page is read at the first page's point");

    // The list view (sections of entries) and the enforcement view (three arrays), signed.
    let token = session(addr, "spc");
    let whole = with_token(addr, "GET", "/v1/views/list?limit=10000", &token).json();
    let all: Vec<Value> =
        whole["lists"].as_array().unwrap().iter().flat_map(|s| s["entries"].as_array().unwrap().clone()).collect();
    assert!(all.len() > 3, "{} entries", all.len());
    let (sections, _) = page_through(addr, "/v1/views/list?limit=3", Some(&token), &["lists"]);
    let paged: Vec<Value> = sections.iter().flat_map(|s| s["entries"].as_array().unwrap().clone()).collect();
    assert_eq!(paged, all);
    let names: BTreeSet<&str> = sections.iter().map(|s| s["list"].as_str().unwrap()).collect();
    assert_eq!(names.len(), whole["lists"].as_array().unwrap().len(), "every section");
    let railway = session(addr, "china-railway");
    let path = "/v1/views/enforcement?agency=china-railway&valid_at=2025-06-01";
    let whole = with_token(addr, "GET", &format!("{path}&limit=10000"), &railway).json();
    let fields = ["to_apply", "applied", "must_lift"];
    let all: Vec<Value> = fields.iter().flat_map(|f| whole[*f].as_array().unwrap().clone()).collect();
    let (paged, _) = page_through(addr, &format!("{path}&limit=2"), Some(&railway), &fields);
    assert_eq!(paged, all);

    // Refusals name the parameter.
    for (path, field) in [
        ("/v1/views/public?limit=0", "limit"),
        ("/v1/views/public?limit=10001", "limit"),
        ("/v1/views/public?cursor=nonsense", "cursor"),
        ("/v1/views/registry?limit=5", "limit"),
        ("/v1/delta?cursor=v1.1.1.-.0.abc", "cursor"),
    ] {
        let reply = get(addr, path);
        assert_eq!((reply.status, reply.code()), (400, "bad_parameter".to_owned()), "{path}: {}", reply.body);
        assert_eq!(reply.json()["error"]["field"], field, "{path}");
    }
    let first = get(addr, "/v1/views/public?valid_at=2027-06-01&limit=1").json();
    let foreign = format!("/v1/views/public?list=cn-spc-defaulters&cursor={}", first["next"].as_str().unwrap());
    assert_eq!(get(addr, &foreign).json()["error"]["field"], "cursor", "a cursor of another query");
}

#[test]
fn open_reads_grant_cors_and_signed_reads_do_not() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 10);
    let server = start(dir.path(), ServerLimits::default());
    let addr = server.addr;
    let origin = "Origin: https://integrator.example\r\n";
    for path in ["/v1/views/public", "/v1/delta?cursor=0", "/v1/checkpoint", "/v1/views/registry"] {
        let reply = get_with_headers(addr, path, origin);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(header(&reply, "access-control-allow-origin"), Some("https://integrator.example"), "{path}");
        let exposed = header(&reply, "access-control-expose-headers").unwrap_or_default();
        assert!(exposed.contains("etag"), "{path}: {}", reply.headers);
        assert_eq!(header(&reply, "access-control-allow-credentials"), None, "{path}");
    }
    let preflight = request(
        addr,
        "OPTIONS",
        "/v1/views/public",
        b"",
        &format!("{origin}Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: if-none-match\r\n"),
    );
    assert_eq!(header(&preflight, "access-control-allow-origin"), Some("https://integrator.example"));
    assert!(header(&preflight, "access-control-allow-headers").unwrap_or_default().contains("if-none-match"));

    let token = session(addr, "spc");
    for path in ["/v1/views/list", "/v1/views/subject?subject=uscc:911100000000001004", "/v1/feed?cursor=0"] {
        let signed = get_with_headers(addr, path, &format!("{origin}docket-session: {token}\r\n"));
        assert_eq!(signed.status, 200, "{path}: {}", signed.body);
        assert_eq!(header(&signed, "access-control-allow-origin"), None, "{path}: no CORS grant for a signed read");
    }
    let preflight = request(
        addr,
        "OPTIONS",
        "/v1/views/list",
        b"",
        &format!("{origin}Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: docket-session\r\n"),
    );
    assert_eq!(header(&preflight, "access-control-allow-origin"), None);
}

/// Bytes on the wire of the whole public list at a large demo size
/// (`DOCKET_WIRE_SUBJECTS`, default 20,000): uncompressed, gzip, br and a
/// 304 revalidation, the list read in pages of `PAGE_MAX`. BENCH.md:
/// `cargo test --release -p docket-server --test reads -- --ignored --nocapture wire`.
#[test]
#[ignore = "builds a large demo ledger; run by hand for BENCH.md"]
fn wire_bytes_of_the_public_list() {
    let subjects: u64 = std::env::var("DOCKET_WIRE_SUBJECTS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    demo_ledger(dir.path(), subjects);
    eprintln!("ledger of {subjects} subjects written in {:.1?}", started.elapsed());
    let server = start(dir.path(), ServerLimits::default());
    let addr = server.addr;
    // The whole list in pages, uncompressed, following `next`; the same
    // pages (cursors pin the point) gzip and br; then each page revalidated.
    // DOCKET_WIRE_QUERY: more parameters, e.g. `valid_at=2025-06-01` (the demo's terms have run out by late 2026).
    let base = match std::env::var("DOCKET_WIRE_QUERY") {
        Ok(query) if !query.is_empty() => format!("/v1/views/public?limit=10000&{query}"),
        _ => "/v1/views/public?limit=10000".to_owned(),
    };
    let (mut paths, mut tags, mut entries) = (vec![], vec![], 0);
    let mut path = base.clone();
    loop {
        let reply = get(addr, &path);
        assert_eq!(reply.status, 200);
        let json: Value = serde_json::from_slice(&unchunked(&reply)).unwrap();
        entries += json["entries"].as_array().map_or(0, Vec::len);
        paths.push(path.clone());
        tags.push(etag_of(&reply).unwrap());
        match json["next"].as_str() {
            Some(next) => path = format!("{base}&cursor={next}"),
            None => break,
        }
    }
    println!("{base} at {subjects} subjects: {entries} entries in {} pages of at most 10,000", paths.len());
    println!("| encoding | body bytes | bytes on the wire (with headers) | time |");
    println!("|---|---:|---:|---:|");
    for (name, extra) in [("identity", ""), ("gzip", "Accept-Encoding: gzip\r\n"), ("br", "Accept-Encoding: br\r\n")] {
        let (mut wire, mut body) = (0, 0);
        let started = std::time::Instant::now();
        for path in &paths {
            let reply = get_with_headers(addr, path, extra);
            assert_eq!(reply.status, 200);
            if name == "gzip" {
                let json: Value = serde_json::from_slice(&gunzip(&unchunked(&reply))).unwrap();
                assert!(json["entries"].is_array());
            }
            wire += reply.headers.len() + reply.bytes.len();
            body += unchunked(&reply).len();
        }
        println!("| {name} | {body} | {wire} | {:.1?} |", started.elapsed());
    }
    let (mut wire, started) = (0, std::time::Instant::now());
    for (path, etag) in paths.iter().zip(&tags) {
        let reply = get_with_headers(addr, path, &format!("If-None-Match: {etag}\r\n"));
        assert_eq!(reply.status, 304, "{path}");
        wire += reply.headers.len() + reply.bytes.len();
    }
    println!("| 304 (If-None-Match) | 0 | {wire} | {:.1?} |", started.elapsed());
}
