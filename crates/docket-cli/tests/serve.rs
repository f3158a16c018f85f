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
        .args(["serve", "--dir", s(dir), "--demo", "--addr", "127.0.0.1:0", "--demo-subjects", "30"])
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

/// One HTTP/1.1 request on a new connection: the status and the body.
fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("writes");
    stream.write_all(body).expect("writes body");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("reads");
    let status = raw.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

fn get(addr: &str, path: &str) -> serde_json::Value {
    let (_, body) = request(addr, "GET", path, b"");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn post(addr: &str, body: &[u8]) -> serde_json::Value {
    let (_, body) = request(addr, "POST", "/v1/events", body);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
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
    let get_hint = format!("{} get --key", env!("CARGO_BIN_EXE_docket"));
    for example in ["/v1/views/public", "/v1/feed?cursor=0", "/log/checkpoint", "/v1/events", &get_hint, "verify --url"]
    {
        assert!(printed.contains(example), "prints an example with {example}:\n{printed}");
    }
    assert!(!printed.contains("cargo run"), "the hints name the binary that ran:\n{printed}");
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

/// Runs `docket ARGS` and returns (success, stdout + stderr).
fn run(args: &[&str]) -> (bool, String) {
    let output = docket(args);
    (output.status.success(), format!("{}{}", text(&output.stdout), text(&output.stderr)))
}

#[test]
fn serve_never_invents_a_ledger_in_a_directory_it_was_given() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("typo");
    let (ok, said) = run(&["serve", "--dir", s(&dir), "--addr", "127.0.0.1:0"]);
    assert!(!ok, "an explicit --dir without a ledger is an error");
    assert!(said.contains("docket init --dir") && said.contains("--demo"), "says how to make one:\n{said}");
    assert!(!dir.exists(), "nothing was created");
}

#[test]
fn a_served_directory_has_one_owner_and_read_only_commands_run_beside_it() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("ledger");
    let (mut child, addr, _) = serve(&dir);
    let holder = format!("pid {}", child.id());
    let signed = scratch.path().join("signed.jsonl");
    std::fs::write(&signed, signed_notice(&dir, scratch.path(), "(2026)京0105执7号")).expect("write");
    // Every writer is refused, naming the server's pid, and writes nothing.
    let log_before = std::fs::read_dir(dir.join("segments")).expect("segments").count();
    for args in [
        vec!["serve", "--dir", s(&dir), "--addr", "127.0.0.1:0"],
        vec!["append", "--dir", s(&dir), s(&signed)],
        vec!["checkpoint", "--dir", s(&dir)],
        vec!["rebuild", "--dir", s(&dir)],
    ] {
        let (ok, said) = run(&args);
        assert!(!ok, "{args:?} must be refused beside a server");
        assert!(said.contains("is in use by") && said.contains(&holder), "{args:?} names the holder:\n{said}");
    }
    assert_eq!(std::fs::read_dir(dir.join("segments")).expect("segments").count(), log_before);
    // The append goes through the server instead.
    let receipt = post(&addr, &std::fs::read(&signed).expect("read"));
    let seq = receipt["seq"].as_u64().unwrap_or_else(|| panic!("a receipt: {receipt}"));
    // Read-only commands run beside it and write nothing in the directory.
    let listing = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let files_before = listing(&dir);
    let (ok, said) = run(&["verify", "--dir", s(&dir)]);
    assert!(ok && said.contains("ok:"), "verify beside a server:\n{said}");
    let (ok, said) = run(&["replay", "--dir", s(&dir), "--view", "public", "--list", "cn-civil-aviation"]);
    assert!(ok, "replay beside a server:\n{said}");
    let (ok, said) = run(&["audit", "--dir", s(&dir), "--format", "json"]);
    assert!(ok && said.contains("\"findings\""), "audit beside a server:\n{said}");
    let (ok, said) =
        run(&["proof", "inclusion", "--dir", s(&dir), "--seq", &seq.to_string(), "--size", &(seq + 1).to_string()]);
    assert!(ok && said.contains("\"proof\""), "proof beside a server:\n{said}");
    assert_eq!(listing(&dir), files_before, "read-only commands create nothing in the ledger directory");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    // Once the owner is gone, the lock is free again (an OS lock dies with its process).
    let (ok, said) = run(&["checkpoint", "--dir", s(&dir)]);
    assert!(ok, "the lock is released with the process:\n{said}");
}

#[test]
fn sigterm_drains_appends_and_signs_a_final_checkpoint_over_every_acknowledged_record() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("ledger");
    let (mut child, addr, _) = serve(&dir);
    let mut last = 0;
    for number in 0..5 {
        let receipt = post(&addr, &signed_notice(&dir, scratch.path(), &format!("(2026)京0105执1{number}号")));
        last = receipt["seq"].as_u64().unwrap_or_else(|| panic!("a receipt: {receipt}"));
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("reaped");
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
    let latest = std::fs::read_to_string(dir.join("checkpoints/latest")).expect("a checkpoint");
    let size: u64 = latest.lines().nth(1).and_then(|line| line.parse().ok()).expect("a size line");
    assert_eq!(size, last + 1, "the final checkpoint covers every acknowledged record:\n{latest}");
    // And the directory is free for the next owner.
    let (ok, said) = run(&["checkpoint", "--dir", s(&dir)]);
    assert!(ok, "{said}");
}

/// A small file system of the test's own (tmpfs), unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB, or says why it cannot.
    fn mount(parent: &std::path::Path, mib: u64) -> Result<Self, String> {
        let path = parent.join("small-disk");
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs", s(&path)])
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", text(&output.stderr).trim()));
        }
        Ok(Self { path })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Fills a file system to the last byte; returns the filler file.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    while file.write_all(&block[..512]).is_ok() {}
    let _ = file.sync_all();
    path
}

fn post_status(addr: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let (status, body) = request(addr, "POST", "/v1/events", body);
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

fn get_status(addr: &str, path: &str) -> u16 {
    request(addr, "GET", path, b"").0
}

#[test]
fn a_full_disk_refuses_appends_with_a_code_serves_reads_and_recovers_without_a_restart() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let disk = match SmallDisk::mount(scratch.path(), 24) {
        Ok(disk) => disk,
        Err(reason) => {
            println!("skipped: no small file system to fill ({reason})");
            return;
        }
    };
    let dir = disk.path.join("ledger");
    let (mut child, addr, _) = serve(&dir);
    let mut acknowledged = vec![];
    let notice = |n: usize| signed_notice(&dir, scratch.path(), &format!("(2026)京0105执9{n:03}号"));
    let (status, receipt) = post_status(&addr, &notice(0));
    assert_eq!(status, 200, "{receipt}");
    acknowledged.push(receipt["seq"].as_u64().expect("seq"));
    let filler = fill(&disk.path);
    // Appends are refused with a code while the disk is full; reads are served.
    let mut refused = None;
    for n in 1..200 {
        let (status, body) = post_status(&addr, &notice(n));
        if status == 200 {
            acknowledged.push(body["seq"].as_u64().expect("seq"));
            continue;
        }
        refused = Some((n, status, body));
        break;
    }
    let (n, status, body) = refused.expect("a full disk refuses an append");
    assert_eq!(status, 503, "{body}");
    let code = body["error"]["code"].as_str().unwrap_or_default().to_owned();
    assert!(code == "log_unavailable" || code == "log_recovering", "{body}");
    assert_eq!(get_status(&addr, "/v1/checkpoint"), 200, "checkpoints are served");
    assert_eq!(get_status(&addr, "/v1/views/public?list=cn-civil-aviation"), 200, "views are served");
    // Space comes back: appends resume without a restart.
    std::fs::remove_file(&filler).expect("free space");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let resumed = loop {
        let (status, body) = post_status(&addr, &notice(n));
        if status == 200 {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "appends did not resume: {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    acknowledged.push(resumed["seq"].as_u64().expect("seq"));
    assert_eq!(get_status(&addr, "/healthz"), 200);
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    assert!(child.wait().expect("reaped").success());
    let (ok, said) = run(&["verify", "--dir", s(&dir)]);
    assert!(ok, "{said}");
    let last = *acknowledged.iter().max().expect("some");
    let records: u64 =
        said.split("ok: ").nth(1).and_then(|rest| rest.split(' ').next()).and_then(|n| n.parse().ok()).expect("count");
    assert!(
        records > last,
        "every acknowledged record is in the log ({records} records, last acknowledged seq {last})"
    );
}

fn get_text(addr: &str, path: &str) -> String {
    serde_json::to_string(&get(addr, path)).expect("json")
}

#[test]
fn a_damaged_projection_store_is_rebuilt_never_answered_from() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("ledger");
    let (mut child, addr, _) = serve(&dir);
    let paths = [
        "/v1/views/public?list=cn-civil-aviation&valid_at=2025-06-01",
        "/v1/views/public?list=cn-spc-defaulters&valid_at=2025-06-01",
        "/v1/views/public?list=cn-tax-serious&valid_at=2024-12-01",
    ];
    let before: Vec<String> = paths.iter().map(|path| get_text(&addr, path)).collect();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    assert!(child.wait().expect("reaped").success());
    // 16-byte scribbles every 32 KiB of the store.
    let store = dir.join("views.redb");
    let mut bytes = std::fs::read(&store).expect("store");
    let mut scribbled = 0;
    for start in (4096..bytes.len()).step_by(32 * 1024) {
        let end = (start + 16).min(bytes.len());
        bytes[start..end].iter_mut().for_each(|b| *b ^= 0xa5);
        scribbled += 1;
    }
    assert!(scribbled >= 2, "{} bytes", bytes.len());
    std::fs::write(&store, &bytes).expect("scribble");
    let (mut child, addr, _) = serve(&dir);
    let after: Vec<String> = paths.iter().map(|path| get_text(&addr, path)).collect();
    assert!(after == before, "the damaged store was rebuilt from the log, not answered from");
    assert_ne!(std::fs::read(&store).expect("store"), bytes, "the store file was replaced");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}
