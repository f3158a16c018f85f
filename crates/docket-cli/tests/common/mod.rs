//! Helpers shared by the CLI's integration tests: run the real binary, read its output.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `docket` with `args`.
pub fn docket(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_docket")).args(args).output().expect("docket runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path as an argument.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The standard output of a successful run, parsed as JSON.
pub fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("json")
}

/// Starts `docket serve --demo` with `subjects` on a free loopback port;
/// returns the child and its address (`127.0.0.1:PORT`) once it serves.
pub fn serve_demo(dir: &Path, subjects: u64) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_docket"))
        .args(["serve", "--dir", s(dir), "--demo", "--addr", "127.0.0.1:0", "--demo-subjects", &subjects.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docket serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let (found, addr) = std::sync::mpsc::channel();
    // A thread reads stdout to the end, so the server never writes to a closed pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("docket serving ").and_then(|rest| rest.split(" on http://").nth(1)) {
                let _ = found.send(url.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = addr.recv_timeout(std::time::Duration::from_secs(180)).expect("docket serve prints its URL");
    (child, addr)
}

/// A child process killed (and reaped) when dropped, so that a failing test leaves nothing running.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Registers an oversight agency `audit-office` with a new key (signed by the
/// demo's registry root) through the server; returns its key file.
pub fn register_oversight(dir: &Path, scratch: &Path, addr: &str) -> std::path::PathBuf {
    let key = scratch.join("audit-office.key");
    let out = docket(&["keygen", "--out", s(&key)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout).split_whitespace().find(|w| w.len() == 64).expect("public key").to_owned();
    let effective = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let event = serde_json::json!({
        "format": 3, "signer": "registry", "effective_at": effective,
        "body": {"registry": {"agency_registered": {
            "agency": "audit-office", "name": "National Audit Office", "roles": ["oversight"], "keys": [public]}}}
    });
    let unsigned = scratch.join("oversight.json");
    std::fs::write(&unsigned, event.to_string()).expect("test setup");
    let signed = docket(&["sign", "--key", s(&dir.join("keys/registry-root.key")), s(&unsigned)]);
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    let signed_file = scratch.join("oversight.signed.jsonl");
    std::fs::write(&signed_file, &signed.stdout).expect("test setup");
    let posted = docket(&["post", &format!("http://{addr}/v1/events"), s(&signed_file)]);
    assert!(posted.status.success(), "{}{}", text(&posted.stdout), text(&posted.stderr));
    let receipt: serde_json::Value = serde_json::from_slice(&posted.stdout).expect("a receipt");
    assert!(receipt["seq"].is_u64(), "{receipt}");
    key
}
