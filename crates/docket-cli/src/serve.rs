//! `docket serve`: the HTTP API on an embedded store, seeded with the demo
//! when the directory holds no ledger.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use docket_server::{Server, ServerLimits};

/// How `docket serve` writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs (tracing) to standard error, filtered by RUST_LOG (default `info`).
pub fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
    }
}

/// Where the demo lives when `docket serve` is given no directory.
const DEMO_DIR: &str = "docket-demo";

/// Where `docket serve --publish` publishes the log.
#[derive(Debug, Clone)]
pub struct Publication {
    /// s3:// URL of the public prefix (hash tiles, checkpoint).
    pub public: String,
    /// s3:// URL of the private prefix (entry bundles).
    pub entries: String,
    /// How often the publisher looks for a new checkpoint.
    pub interval: std::time::Duration,
}

/// Longest wait between two publication attempts after repeated failures.
const PUBLISH_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the publisher for the server's ledger; refused (the server does
/// not start) if the bucket holds another log or a history this ledger lacks.
async fn publisher(
    dir: &Path,
    server: &Server,
    publication: &Publication,
) -> Result<docket_publish::publish::Publisher<docket_publish::publish::LedgerSource>> {
    let public = docket_publish::Bucket::from_url(&publication.public).context("--publish")?;
    let entries = docket_publish::Bucket::from_url(&publication.entries).context("--publish-entries")?;
    let (_, _, key) = docket_log::ledger::read_config(dir)?;
    let source = docket_publish::publish::LedgerSource::new(dir, server.shared_tree());
    let publisher = docket_publish::publish::Publisher::open(public, entries, source, key)
        .await
        .with_context(|| format!("publishing to {}", publication.public))?;
    let status = publisher.status();
    let records = docket_log::Reader::new(docket_log::ledger::Paths::new(dir).segments());
    server.add_metrics(docket_server::ExtraMetrics(std::sync::Arc::new(move || {
        status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).metrics_now(&records)
    })));
    Ok(publisher)
}

pub fn serve(
    dir: Option<&Path>,
    demo: bool,
    addr: SocketAddr,
    demo_subjects: u64,
    cache_mib: usize,
    publication: Option<Publication>,
) -> Result<bool> {
    // Only the README's main job (no --dir) or an explicit --demo builds a
    // demo: a mistyped --dir on a real server must not become a ledger
    // whose keys anyone can derive.
    let (dir, demo) = match dir {
        None => (Path::new(DEMO_DIR), true),
        Some(dir) => (dir, demo),
    };
    if !docket_log::ledger::Paths::new(dir).config().exists() {
        if !demo {
            bail!(
                "{} holds no ledger; nothing was created. Make one with `{me} init --dir {0}`, or serve the demo \
                 (its keys are public) with `{me} serve --dir {0} --demo`",
                dir.display(),
                me = crate::invoked()
            );
        }
        eprintln!("{} holds no ledger: building the demo ({demo_subjects} subjects) first", dir.display());
        crate::ledger::demo(dir, demo_subjects, 1, crate::Format::Text)?;
    }
    if dir.join("keys/agencies").exists() {
        eprintln!(
            "note: {} holds its agencies' secret keys (keys/agencies): a demo or test ledger whose keys are public, \
             not one for real data",
            dir.display()
        );
    }
    let limits = ServerLimits { store_cache_bytes: cache_mib.saturating_mul(1 << 20), ..ServerLimits::default() };
    let server = Server::open(dir, limits).with_context(|| format!("opening {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = Server::bind(addr).with_context(|| format!("binding {addr}"))?;
        let url = Server::url(listener.local_addr()?);
        let me = crate::invoked();
        let key = dir.join("keys/agencies/spc.key");
        println!("docket serving {} on {url}  (Ctrl-C stops it)\n", dir.display());
        println!("Try:");
        println!("  curl '{url}/v1/views/public?list=cn-civil-aviation'        # the public list, masked");
        println!("  curl '{url}/log/checkpoint'                                # the latest signed checkpoint (C2SP tlog-tiles under /log)");
        println!("  curl '{url}/v1/proof/inclusion?seq=10'                     # an RFC 6962 proof against it");
        println!("  curl '{url}/metrics'");
        println!("  # other reads are signed with an agency's key (the demo's are in {}/keys/agencies):", dir.display());
        let railway = dir.join("keys/agencies/china-railway.key");
        println!(
            "  {me} get --key {} --agency china-railway '{url}/v1/views/enforcement?agency=china-railway'",
            railway.display()
        );
        println!(
            "  {me} get --key {} --agency china-railway '{url}/v1/feed?cursor=0&limit=2'",
            railway.display()
        );
        println!("  # append a notice, signed with the demo court's key; again, and the receipt is the same:");
        println!(
            "  {me} sign --key {} schemas/examples/notice.json | curl -sS -X POST --data-binary @- {url}/v1/events",
            key.display()
        );
        println!("  # check the served log as a witness does, from its checkpoint and tiles:");
        println!("  {me} verify --url {url}/log --log-key {}", dir.join("ledger.json").display());
        println!("\nEndpoints and error codes: crates/docket-server/API.md");
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let publishing = match &publication {
            Some(publication) => {
                let publisher = publisher(dir, &server, publication).await?;
                eprintln!("publishing to {} (entry bundles to {})", publication.public, publication.entries);
                Some(tokio::spawn(publisher.run(publication.interval, PUBLISH_BACKOFF_MAX, stopping)))
            }
            None => None,
        };
        let shutdown = async {
            let name = stop_signal().await;
            eprintln!("{name}: stopping: no new connections, finishing requests and queued appends, signing a last checkpoint");
        };
        server.serve(listener, shutdown).await?;
        let _ = stop.send(true);
        if let Some(task) = publishing {
            // One last round publishes the final checkpoint, signed as the server stopped.
            let mut publisher = task.await.context("the publisher")?;
            if let Err(error) = publisher.step().await {
                eprintln!("warning: the last publication failed: {error}");
            }
        }
        eprintln!("stopped: the last checkpoint is signed and {} is released", dir.display());
        anyhow::Ok(())
    })?;
    Ok(true)
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM (what systemd and Kubernetes send);
/// returns the signal's name.
pub(crate) async fn stop_signal() -> &'static str {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            eprintln!("warning: cannot listen for SIGTERM ({error}); only Ctrl-C stops the server cleanly");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

/// How `docket get` and `docket session` reach a server and who they read as.
#[derive(Debug, Clone, Default)]
pub struct Reader<'a> {
    /// The agency's secret key file (with `agency`): requests are signed.
    pub key: Option<&'a Path>,
    /// The agency the key belongs to.
    pub agency: Option<&'a str>,
    /// A session token from `docket session`: sent on reads instead of a signature.
    pub token: Option<&'a str>,
    /// PEM file of the CA certificates to trust for https instead of the Mozilla roots.
    pub ca: Option<&'a Path>,
}

impl Reader<'_> {
    /// A client of `base` that reads as this reader.
    pub fn client(&self, base: &str) -> Result<docket_client::Client> {
        let mut client = docket_client::Client::new(base)?;
        if let Some(ca) = self.ca {
            let pem = std::fs::read(ca).with_context(|| format!("--ca {}", ca.display()))?;
            client =
                client.with_ca(docket_client::parse_ca_pem(&pem).with_context(|| format!("--ca {}", ca.display()))?);
        }
        if let (Some(key), Some(agency)) = (self.key, self.agency) {
            let key = docket_log::keyfile::read(key).with_context(|| format!("--key {}", key.display()))?;
            client = client.with_identity(agency, key);
        }
        if let Some(token) = self.token {
            client = client.with_session_token(token);
        }
        Ok(client)
    }
}

/// `docket get`: a GET, signed when a key and agency are given (or with a
/// session token); prints the body.
pub fn get(url: &str, reader: &Reader<'_>) -> Result<bool> {
    let (base, path) = docket_client::split_url(url)?;
    let client = reader.client(base)?;
    let response = client.get(path).with_context(|| format!("GET {url}"))?;
    print_answer(&response)
}

/// `docket post`: a POST of a file (or standard input), signed as `docket get` signs; prints the answer.
pub fn post(url: &str, input: Option<&Path>, reader: &Reader<'_>) -> Result<bool> {
    let (base, path) = docket_client::split_url(url)?;
    let body = match input.filter(|p| p.as_os_str() != "-") {
        Some(file) => std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
        None => {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut body).context("reading standard input")?;
            body
        }
    };
    let json = body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| matches!(b, b'{' | b'['));
    let headers: &[(&str, &str)] = if json { &[] } else { &[("content-type", "application/octet-stream")] };
    let client = reader.client(base)?;
    let response = client.request("POST", path, &body, headers).with_context(|| format!("POST {url}"))?;
    print_answer(&response)
}

/// Prints an answer's body (JSON pretty-printed); false on an HTTP error status.
fn print_answer(response: &docket_client::Response) -> Result<bool> {
    let text = response.text();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(value) => println!("{}", serde_json::to_string_pretty(&value)?),
        Err(_) => print!("{text}"),
    }
    if response.status >= 400 {
        eprintln!("HTTP {}", response.status);
        return Ok(false);
    }
    if response.status >= 300 {
        bail!("HTTP {}: redirects are not followed", response.status);
    }
    Ok(true)
}

/// `docket session`: opens a session with the agency's key and prints the
/// token (text: the token alone on stdout, its expiry on stderr; json: both).
pub fn session(url: &str, reader: &Reader<'_>, format: crate::Format) -> Result<bool> {
    let (base, _) = docket_client::split_url(url)?;
    let client = reader.client(base)?;
    match client.open_session().with_context(|| format!("POST {base}/v1/session"))? {
        Ok(session) => {
            match format {
                crate::Format::Text => {
                    println!("{}", session.token);
                    eprintln!(
                        "session for {} until {}; use it with --token or DOCKET_SESSION",
                        reader.agency.unwrap_or_default(),
                        session.expires_at
                    );
                }
                crate::Format::Json => println!(
                    "{}",
                    serde_json::json!({"agency": reader.agency, "token": session.token, "expires_at": session.expires_at})
                ),
            }
            Ok(true)
        }
        Err(refusal) => {
            eprintln!("HTTP {}: {}", refusal.status, refusal.text().trim());
            Ok(false)
        }
    }
}
