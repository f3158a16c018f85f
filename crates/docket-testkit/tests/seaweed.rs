//! The SeaweedFS helper: it starts a server that stores and serves an
//! object, refuses a conditional write that does not hold, and stops it
//! when dropped. Ignored by `cargo test`; `.ci/run` runs it with
//! `--ignored` and `DOCKET_WEED` set.

use docket_testkit::seaweed::Weed;

#[test]
#[ignore = "needs SeaweedFS (DOCKET_WEED); .ci/run installs it and runs this"]
fn weed_starts_stores_and_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weed = Weed::start(dir.path());
    weed.create_bucket("helper");
    assert_eq!(weed.request("PUT", "/helper/a", b"one").expect("put").0, 200);
    let (status, body) = weed.request("GET", "/helper/a", b"").expect("get");
    assert_eq!((status, body.as_str()), (200, "one"));
    let endpoint = weed.endpoint();
    drop(weed);
    let address = endpoint.trim_start_matches("http://").parse().expect("address");
    assert!(
        std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(1)).is_err(),
        "the server still answers after the handle was dropped"
    );
}
