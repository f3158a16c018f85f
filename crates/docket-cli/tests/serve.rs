//! `docket serve` as a newcomer runs it: it builds the demo in an empty
//! directory, prints its URL and example requests, serves them; killed with
//! SIGKILL mid-life and started again, its feed resumes from the last cursor
//! with nothing missed and nothing out of order.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{docket, s, text};

/// Starts `docket serve` on a free port; returns the child and its base URL's address.
fn serve(dir: &std::path::Path) -> (Child, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_docket"))
        .args(["serve", "--dir", s(dir), "--addr", "127.0.0.1:0", "--demo-subjects", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("docket serve starts");
    // A thread reads stdout to the end, so the server never writes to a closed pipe.
    let stdout = child.stdout.take().expect("stdout");
    let (lines_in, lines_out) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_in.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = vec![];
    let addr = loop {
        let line = lines_out.recv_timeout(Duration::from_secs(120)).expect("docket serve prints its URL");
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("docket serving ") {
            let url = rest.split(" on http://").nth(1).expect("url").split_whitespace().next().expect("addr");
            break url.to_owned();
        }
    };
    // The examples follow the URL.
    while let Ok(line) = lines_out.recv_timeout(Duration::from_millis(500)) {
        let done = line.starts_with("Endpoints");
        printed.push(line);
        if done {
            break;
        }
    }
    (child, addr, printed)
}

fn get(addr: &str, path: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").expect("writes");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("reads");
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

fn post(addr: &str, body: &[u8]) -> serde_json::Value {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    write!(
        stream,
        "POST /v1/events HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("writes");
    stream.write_all(body).expect("writes body");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("reads");
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

/// Signs the bundled notice example for a new case number with the demo court's key.
fn signed_notice(dir: &std::path::Path, scratch: &std::path::Path, number: &str) -> Vec<u8> {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/examples/notice.json"))
        .expect("example");
    let example = example.replace("(2024)京0105执1234号", number);
    let path = scratch.join(format!("{number}.json"));
    std::fs::write(&path, example).expect("write");
    let key = dir.join("keys/agencies/spc.key");
    let output = docket(&["sign", "--key", s(&key), s(&path)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    output.stdout
}

#[test]
fn serve_builds_the_demo_prints_examples_and_its_feed_survives_sigkill() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("ledger");
    let (mut child, addr, printed) = serve(&dir);
    let printed = printed.join("\n");
    for example in ["/v1/views/public", "/v1/feed?cursor=0", "/v1/checkpoint", "/v1/events", "-- get --key"] {
        assert!(printed.contains(example), "prints an example with {example}:\n{printed}");
    }
    // Only designations in force are published: the demo's aviation ones ran in 2024-2026.
    let public = get(&addr, "/v1/views/public?list=cn-civil-aviation&valid_at=2025-01-01");
    assert!(!public["entries"].as_array().expect("entries").is_empty(), "the demo is served");
    let first = post(&addr, &signed_notice(&dir, scratch.path(), "(2026)京0105执1号"));
    let first_seq = first["seq"].as_u64().unwrap_or_else(|| panic!("a receipt: {first}"));
    // Read the feed to the end, remember the cursor.
    let railway = dir.join("keys/agencies/china-railway.key");
    let signed_get = |addr: &str, path: &str| {
        let url = format!("http://{addr}{path}");
        let output = docket(&["get", "--key", s(&railway), "--agency", "china-railway", &url]);
        assert!(output.status.success(), "{url}: {}{}", text(&output.stdout), text(&output.stderr));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("json")
    };
    let unsigned = docket(&["get", &format!("http://{addr}/v1/feed?cursor=0")]);
    assert_eq!(unsigned.status.code(), Some(1), "an unsigned feed read is refused");
    assert!(text(&unsigned.stdout).contains("unauthenticated"), "{}", text(&unsigned.stdout));
    let mut cursor = 0;
    loop {
        let page = signed_get(&addr, &format!("/v1/feed?cursor={cursor}&limit=1000"));
        cursor = page["cursor"].as_u64().expect("cursor");
        if page["caught_up"] == true {
            break;
        }
    }
    assert_eq!(cursor, first_seq + 1);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    let (mut child, addr, _) = serve(&dir);
    let second = post(&addr, &signed_notice(&dir, scratch.path(), "(2026)京0105执2号"));
    assert_eq!(second["seq"], first_seq + 1, "the acknowledged append survived the kill: {second}");
    let page = signed_get(&addr, &format!("/v1/feed?cursor={cursor}"));
    let seqs: Vec<u64> = page["events"].as_array().expect("events").iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, [first_seq + 1], "resumes at the cursor: nothing missed, nothing repeated");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}
