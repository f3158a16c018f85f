//! `docket verify --url` against a real `docket serve` on loopback: the
//! served log verifies from its tlog-tiles alone (hash tiles without
//! credentials, entry bundles with the oversight role); a byte changed in a
//! served tile is caught and named (the seq with entries, the tile without);
//! `--watch` follows appends and stops, exit 1, on a checkpoint that does
//! not verify.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{docket, register_oversight, s, serve_demo, text};

/// Waits until the served checkpoint covers `size` records.
fn wait_for_checkpoint(addr: &str, size: u64) {
    let client = docket_client::Client::new(&format!("http://{addr}")).expect("test setup");
    for _ in 0..200 {
        let note = client.get("/log/checkpoint").expect("test setup").text();
        if note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()).is_some_and(|n| n >= size) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no checkpoint of size {size}");
}

fn verify(args: &[&str]) -> (bool, String, String) {
    let out = docket(&[&["verify"], args].concat());
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_served_log_verifies_from_its_tiles_and_a_changed_byte_is_named() {
    let (scratch, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ledger = dir.path().join("ledger");
    let (server, addr) = serve_demo(&ledger, 40);
    let _server = common::KillOnDrop(server);
    let url = format!("http://{addr}/log");
    let log_key = ledger.join("ledger.json");

    // Hash tiles only: no credentials needed.
    let (ok, stdout, stderr) = verify(&["--url", &url, "--log-key", s(&log_key)]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: checkpoint docket.invalid/demo-1-public-keys at size"), "{stdout}");
    assert!(stderr.contains("entry bundles are not checked"), "{stderr}");

    // An agency that is not oversight is refused the entry bundles, by name.
    let railway = ledger.join("keys/agencies/china-railway.key");
    let (ok, _, stderr) =
        verify(&["--url", &url, "--log-key", s(&log_key), "--key", s(&railway), "--agency", "china-railway"]);
    assert!(!ok);
    assert!(stderr.contains("HTTP 403") && stderr.contains("oversight"), "{stderr}");

    // The oversight role reads every entry bundle: every entry checked.
    // The size is read before the append: read after it, it could already
    // include the new record, and the wait below would be for one more.
    let client = docket_client::Client::new(&format!("http://{addr}")).unwrap();
    let size: u64 = client.get("/log/checkpoint").unwrap().text().lines().nth(1).unwrap().parse().unwrap();
    let oversight = register_oversight(&ledger, scratch.path(), &addr);
    wait_for_checkpoint(&addr, size + 1);
    let as_oversight = ["--key", s(&oversight), "--agency", "audit-office"];
    let (ok, stdout, stderr) = verify(&[&["--url", &url, "--log-key", s(&log_key)][..], &as_oversight].concat());
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("ok: {} entries", size + 1)), "{stdout}");
    assert!(size + 1 > 256, "the demo has more than one level-0 tile ({size})");
    // Each entry-bundle read is in the inquiry register, by the oversight agency.
    let register =
        common::json(&docket(&["inquiries", "--dir", s(&ledger), "--agency", "audit-office", "--format", "json"]));
    let questions: Vec<&str> =
        register["records"].as_array().unwrap().iter().filter_map(|r| r["question"].as_str()).collect();
    assert!(questions.contains(&"GET /log/tile/entries/000"), "{questions:?}");
    // Full tiles are immutable to caches; partial ones short-lived; bundles private.
    let full = client.get("/log/tile/0/000").unwrap();
    assert_eq!(full.header("cache-control"), Some("public, max-age=31536000, immutable"));
    let (index, width) = ((size + 1) / 256, (size + 1) % 256);
    if width > 0 {
        let partial = client.get(&format!("/log/tile/0/{index:03}.p/{width}")).unwrap();
        assert_eq!((partial.status, partial.header("cache-control")), (200, Some("public, max-age=60")));
    }
    assert_eq!(client.get("/tile/0/000").unwrap().body, full.body, "/tile is an alias");
    assert_eq!(client.get("/log/tile/entries/000").unwrap().status, 401, "entry bundles need a reader");

    // One byte of leaf 17's hash changed in the served full tile 0/000.
    let tile = ledger.join("tiles/tile/0/000");
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[17 * 32 + 5] ^= 1;
    std::fs::write(&tile, &bytes).unwrap();
    let (ok, stdout, _) = verify(&[&["--url", &url, "--log-key", s(&log_key)][..], &as_oversight].concat());
    assert!(!ok);
    assert!(
        stdout.starts_with("FAILED: seq 17 (tile/entries/000, entry 17): its hash is not leaf 17 of tile/0/000"),
        "{stdout}"
    );
    // Without entries, the tile above names the changed tile.
    let (ok, stdout, _) = verify(&["--url", &url, "--log-key", s(&log_key)]);
    assert!(!ok);
    assert!(stdout.starts_with("FAILED: tile/1/000.p/"), "{stdout}");
    assert!(stdout.contains(": hash 0 is not the root of tile/0/000 below it"), "{stdout}");
}

#[test]
fn watch_follows_appends_and_stops_on_a_checkpoint_that_does_not_verify() {
    let (scratch, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ledger = dir.path().join("ledger");
    let (server, addr) = serve_demo(&ledger, 10);
    let _server = common::KillOnDrop(server);
    let watch = Command::new(env!("CARGO_BIN_EXE_docket"))
        .args([
            "verify",
            "--url",
            &format!("http://{addr}"),
            "--log-key",
            s(&ledger.join("ledger.json")),
            "--watch",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut watch = common::KillOnDrop(watch);
    let mut lines = BufReader::new(watch.0.stdout.take().unwrap()).lines().map_while(Result::ok);
    let first = lines.next().expect("a first line");
    assert!(first.starts_with("ok: checkpoint"), "{first}");
    let size: u64 = first.split("at size ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();

    // An append: the next checkpoint is proved consistent with the first.
    register_oversight(&ledger, scratch.path(), &addr);
    let next = lines.next().expect("a line for the new checkpoint");
    assert!(next.starts_with(&format!("ok: size {size} -> {}: consistent", size + 1)), "{next}");

    // A checkpoint whose size line was changed: its signature fails, the watch ends with exit 1.
    let latest = ledger.join("checkpoints/latest");
    let note = std::fs::read_to_string(&latest).unwrap();
    let mut lines_of_note: Vec<String> = note.split('\n').map(str::to_owned).collect();
    lines_of_note[1] = format!("{}", size + 2);
    std::fs::write(&latest, lines_of_note.join("\n")).unwrap();
    let failed = lines.next().expect("a FAILED line");
    assert!(failed.starts_with("FAILED: checkpoint:"), "{failed}");
    assert_eq!(watch.0.wait().unwrap().code(), Some(1));
}
