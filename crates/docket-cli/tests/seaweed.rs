//! `docket serve --publish` against a real S3 server (SeaweedFS, started by
//! the test): the served ledger's checkpoint reaches the public bucket, its
//! entry bundles only the private one, `/metrics` reports the publisher;
//! a second server of another ledger on the same bucket refuses to start,
//! saying why. Ignored by `cargo test`; `.ci/run` runs it with `--ignored`
//! and `DOCKET_WEED` set.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{s, KillOnDrop};
use docket_testkit::seaweed::Weed;

/// `docket serve` of the demo in `dir`, publishing to the test's buckets.
fn publishing(weed: &Weed, dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_docket"));
    command
        .args(["serve", "--dir", s(dir), "--demo", "--addr", "127.0.0.1:0", "--demo-subjects", "30"])
        .args(["--publish", "s3://public/log", "--publish-entries", "s3://private/log"])
        .args(["--publish-interval-ms", "100"])
        .env("AWS_ENDPOINT", weed.endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "docket-test")
        .env("AWS_SECRET_ACCESS_KEY", "docket-test")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
#[ignore = "needs SeaweedFS (DOCKET_WEED); .ci/run installs it and runs this"]
fn serve_publishes_its_log_and_a_second_log_on_the_bucket_is_refused() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let weed = Weed::start(&scratch.path().join("weed"));
    weed.create_bucket("public");
    weed.create_bucket("private");
    let dir = scratch.path().join("ledger");
    let server = KillOnDrop(publishing(&weed, &dir).spawn().expect("docket serve starts"));
    let latest = dir.join("checkpoints/latest");
    let started = Instant::now();
    let published = loop {
        let local = std::fs::read_to_string(&latest).unwrap_or_default();
        let (status, bucket) = weed.request("GET", "/public/log/checkpoint", b"").expect("get");
        if status == 200 && !local.is_empty() && bucket.starts_with(&local) {
            break bucket;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "the checkpoint was not published; bucket: {bucket}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let size: u64 = published.lines().nth(1).expect("size line").parse().expect("size");
    assert!(size > 256, "{size}");
    assert_eq!(weed.request("GET", "/public/log/tile/0/000", b"").expect("tile").0, 200);
    assert_eq!(weed.request("GET", "/private/log/tile/entries/000", b"").expect("bundle").0, 200);
    assert_eq!(weed.request("GET", "/public/log/tile/entries/000", b"").expect("bundle").0, 404);
    drop(server);

    // Another ledger (another log key) on the same bucket: refused at start.
    let other = scratch.path().join("other");
    docket_world::write_ledger(&other, 5, 2).expect("another ledger");
    let refused = publishing(&weed, &other).output().expect("docket serve runs");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a second log's server started:\n{said}");
    assert!(said.contains("another log publishes here"), "{said}");
}
