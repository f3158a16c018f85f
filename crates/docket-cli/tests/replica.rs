//! `docket replica --from-primary`: a replica that follows a primary's own
//! `/log/` over HTTP (entry bundles read with an oversight key), verifies
//! what it takes as it does from a bucket, and answers as the primary does.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{register_oversight, s, serve_demo, KillOnDrop};

/// A GET or POST on `addr`: status and body.
fn call(addr: &str, method: &str, path: &str) -> (u16, String) {
    let client = docket_client::Client::new(&format!("http://{addr}")).expect("client");
    let response = client.request(method, path, b"", &[]).expect("answers");
    (response.status, response.text())
}

#[test]
fn a_replica_follows_the_primarys_log_over_http_and_answers_as_it_does() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("primary");
    let (primary, addr) = serve_demo(&dir, 30);
    let _primary = KillOnDrop(primary);
    let key = register_oversight(&dir, scratch.path(), &addr);

    let mut command = Command::new(env!("CARGO_BIN_EXE_docket"));
    command.args(["replica", "--dir", s(&scratch.path().join("replica")), "--from-primary"]);
    command.args(["--ledger-config", s(&dir.join("ledger.json")), "--primary", &format!("http://{addr}")]);
    command.args(["--key", s(&key), "--agency", "audit-office", "--addr", "127.0.0.1:0", "--interval-ms", "100"]);
    let mut child = command.env("RUST_LOG", "warn").stdout(Stdio::piped()).spawn().expect("docket replica starts");
    let stdout = child.stdout.take().expect("stdout");
    let _replica = KillOnDrop(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("prints its URL");
    let replica = line.split(" on http://").nth(1).and_then(|r| r.split_whitespace().next()).expect("URL").to_owned();

    let started = Instant::now();
    let checkpoint = loop {
        let (_, expected) = call(&addr, "GET", "/log/checkpoint");
        if call(&replica, "GET", "/log/checkpoint") == (200, expected.clone()) {
            break expected;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the replica did not catch up with\n{expected}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let last = checkpoint.lines().nth(1).expect("size").parse::<u64>().expect("size") - 1;
    for path in [
        format!("/v1/views/registry?valid_at=2025-06-01&min_seq={last}"),
        format!("/v1/views/public?list=cn-civil-aviation&valid_at=2025-01-01&min_seq={last}"),
        "/log/tile/0/000".to_owned(),
        "/v1/proof/consistency?old=7".to_owned(),
    ] {
        let expected = call(&addr, "GET", &path);
        assert_eq!(expected.0, 200, "{path}: {}", expected.1);
        assert!(call(&replica, "GET", &path) == expected, "{path} differs on the replica");
    }
    let (status, refused) = call(&replica, "POST", "/v1/events");
    assert_eq!(status, 409, "{refused}");
    assert!(refused.contains("read_only_replica") && refused.contains(&addr), "{refused}");
}
