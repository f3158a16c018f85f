//! `pages-bench`: the server time of the oversight desk's pages (issue 19).
//!
//! ```text
//! pages-bench [--subjects 1000,120000] [--seed 1] [--runs 20] [--appends 5] [--root DIR] [--valid-at 2025-06-01] [--pages worklist,audit]
//! pages-bench --url http://127.0.0.1:8080 [--seed 1] [--runs 20] [--appends 5]
//! ```
//!
//! For each size, writes the demo ledger of that many subjects under
//! `--root` (once: a later run reuses it), serves it in process (or uses
//! the running `docket serve` at `--url`, over a demo ledger of `--seed`),
//! registers an oversight agency and signs in, then fetches each page
//! `--runs` times one after another. It reports the first request (a cold
//! computation), and the median and 99th percentile of the other requests,
//! each the server time the page reports in `Server-Timing` (the client's
//! wall time where a server sends none), with the page's size; the
//! smallest size is the peer. Then, `--appends` times per page, it appends
//! one event (a notice opening a new case), waits until the server has
//! projected it, and fetches the page once: the first request after an
//! append, at a new point "now". `--pages` times only the pages whose
//! name contains one of its comma-separated words.

use docket_client::query_value as encode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use docket_client::{Client, Response};
use docket_model::event::{Body, Event, RegistryEvent, Role, Signer, FORMAT_VERSION};
use docket_model::{Name, PublicKey, SignedEvent, Timestamp};
use ed25519_dalek::SigningKey;
use serde_json::Value;

const USAGE: &str =
    "usage: pages-bench [--subjects 1000,120000] [--seed 1] [--runs 20] [--appends 5] [--root DIR] [--valid-at DATE] [--pages WORDS]\n       \
                     pages-bench --url http://127.0.0.1:8080 [--seed 1] [--runs 20] [--appends 5] [--valid-at DATE] [--pages WORDS]\n\n\
                     examples:\n  pages-bench --subjects 200,2000 --runs 5\n  \
                     pages-bench --subjects 1000,120000 --runs 20 --root /var/tmp/pages";

/// The oversight agency the tool registers (its key is derived from the seed).
const OVERSIGHT: &str = "pages-bench-oversight";
/// A session is renewed after this long (the server's default lifetime is 300 s).
const SESSION_RENEW: Duration = Duration::from_secs(200);
/// How long an append may take to reach the server's views.
const PROJECTED_WAIT: Duration = Duration::from_secs(30);

fn main() -> Result<()> {
    benchkit::args_or_exit(
        USAGE,
        &["--subjects", "--seed", "--runs", "--appends", "--root", "--url", "--valid-at", "--pages"],
    );
    let seed = benchkit::number("--seed", 1);
    let runs = benchkit::number("--runs", 20).max(2) as usize;
    let appends = benchkit::number("--appends", 5) as usize;
    let valid_at = benchkit::arg("--valid-at").unwrap_or_else(|| "2025-06-01".into());
    let mut tables = vec![];
    if let Some(url) = benchkit::arg("--url") {
        tables.push(measure(&url, seed, runs, appends, &valid_at)?);
    } else {
        let root = benchkit::arg("--root").map_or_else(|| std::env::temp_dir().join("docket-pages-bench"), Into::into);
        let sizes = benchkit::arg("--subjects").unwrap_or_else(|| "1000,120000".into());
        for subjects in sizes.split(',') {
            let subjects: u64 = subjects.trim().parse().with_context(|| format!("--subjects: {subjects:?}"))?;
            let dir = root.join(format!("demo-{subjects}-seed-{seed}"));
            if !dir.join("ledger.json").exists() {
                let started = Instant::now();
                std::fs::create_dir_all(&root)?;
                docket_world::write_ledger(&dir, subjects, seed).map_err(|e| anyhow!("demo ledger: {e}"))?;
                eprintln!("wrote {} in {:.0} s", dir.display(), started.elapsed().as_secs_f64());
            }
            let limits = docket_server::ServerLimits { session_s: 3_600, ..Default::default() };
            let serving = benchkit::serve(&dir, limits).map_err(|e| anyhow!(e))?;
            let table = measure(&serving.base, seed, runs, appends, &valid_at);
            serving.stop().map_err(|e| anyhow!(e))?;
            tables.push(table?);
        }
    }
    report(&tables);
    Ok(())
}

/// One page's figures at one size.
struct Row {
    page: &'static str,
    path: String,
    first_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    bytes: usize,
    /// The server reported `Server-Timing` (otherwise: wall time).
    server_timed: bool,
    /// The first request after each of `--appends` appends, sorted.
    after_append_ms: Vec<f64>,
}

/// The figures of every page at one size.
struct Table {
    records: u64,
    floor_p50_ms: f64,
    rows: Vec<Row>,
}

/// Signs in and times every page on the server at `base`.
fn measure(base: &str, seed: u64, runs: usize, appends: usize, valid_at: &str) -> Result<Table> {
    let key = docket_world::key(seed, OVERSIGHT);
    register_oversight(base, seed, &key)?;
    let mut session = Session::open(base, key)?;
    let api = Client::new(base)?.with_session_token(&session.token);
    let registry = api.get("/v1/views/registry")?;
    let records: u64 = registry.header("docket-watermark").and_then(|w| w.parse().ok()).unwrap_or(0);
    let finding = first(&api, &format!("/v1/audit?valid_at={valid_at}&limit=1"), "findings")?;
    // An entry on the list now, else (a small demo's terms have all run out) at `valid_at`.
    let (entry, entry_at) = match first(&api, "/v1/views/public?limit=1", "entries") {
        Ok(entry) => (entry, String::new()),
        Err(_) => (
            first(&api, &format!("/v1/views/public?limit=1&valid_at={valid_at}"), "entries")?,
            format!("&valid_at={valid_at}"),
        ),
    };
    let field = |value: &Value, name: &str| value[name].as_str().unwrap_or_default().to_owned();
    let (subject, list, number) = (field(&finding, "subject"), field(&finding, "list"), field(&finding, "number"));
    let half = records / 2;
    let pages: Vec<(&'static str, String)> = vec![
        ("public list (`/`, now)", "/".into()),
        ("public list, valid_at", format!("/?valid_at={valid_at}")),
        ("public list, one list and contested", format!("/?list={}&status=contested", encode(&list))),
        ("public list, search by case number", format!("/?q={}", encode(&number[..number.len().min(12)]))),
        ("public list, search by code", format!("/?q={}", encode(&subject))),
        (
            "public list, what changed since the last 1,000 records",
            format!("/?since={}", records.saturating_sub(1_000)),
        ),
        (
            "public entry (`/case`)",
            format!(
                "/case?list={}&number={}{entry_at}",
                encode(&field(&entry, "list")),
                encode(&field(&entry, "number"))
            ),
        ),
        (
            "case timeline",
            format!("/desk/case?subject={}&list={}&number={}", encode(&subject), encode(&list), encode(&number)),
        ),
        ("audit desk (now)", "/desk/audit".into()),
        ("audit desk, valid_at", format!("/desk/audit?valid_at={valid_at}")),
        ("audit desk, as_of half the log", format!("/desk/audit?as_of={half}")),
        ("audit desk, drill-down (a rule)", "/desk/audit?rule=recorded-in-time".into()),
        ("worklist (china-railway)", "/desk/worklist?agency=china-railway".into()),
        ("worklist, valid_at", format!("/desk/worklist?agency=china-railway&valid_at={valid_at}")),
    ];
    let wanted = benchkit::arg("--pages");
    let wanted: Vec<&str> = wanted.as_deref().map_or_else(Vec::new, |w| w.split(',').map(str::trim).collect());
    let pages = pages.into_iter().filter(|(page, _)| wanted.is_empty() || wanted.iter().any(|w| page.contains(w)));
    let floor = Client::new(base)?;
    let mut floors: Vec<f64> =
        (0..runs).map(|_| timed(|| floor.get("/healthz")).map(|(_, ms)| ms)).collect::<Result<_>>()?;
    floors.sort_by(f64::total_cmp);
    let mut rows = vec![];
    // New cases' subjects and numbers start past any a demo has.
    let mut appended = 200_000_000 + records;
    for (page, path) in pages {
        let mut row = time_page(&mut session, page, path, runs)?;
        for _ in 0..appends {
            append_one(base, &api, seed, appended)?;
            appended += 1;
            row.after_append_ms.push(time_once(&mut session, &row.path)?);
        }
        row.after_append_ms.sort_by(f64::total_cmp);
        eprintln!("{page}: first after an append, sorted: {:?}", row.after_append_ms);
        rows.push(row);
    }
    // What the server's page cache holds after the run, and (in process) this process's memory.
    let metrics = floor.get("/metrics")?.text();
    for line in metrics.lines().filter(|l| l.starts_with("docket_page_c")) {
        eprintln!("{records} records: {line}");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines().filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM")) {
        eprintln!("{records} records: this process (the in-process server and the client): {line}");
    }
    Ok(Table { records, floor_p50_ms: benchkit::percentile(&floors, 0.5), rows })
}

/// Fetches `path` `runs` times as the signed-in oversight agency.
fn time_page(session: &mut Session, page: &'static str, path: String, runs: usize) -> Result<Row> {
    let mut times = vec![];
    let (mut bytes, mut server_timed) = (0, true);
    for _ in 0..runs {
        let (response, time, server) = fetch(session, &path)?;
        server_timed &= server;
        times.push(time);
        bytes = response.body.len();
    }
    // The first request computes the point's views (cold); the others reuse them.
    let first_ms = times.remove(0);
    times.sort_by(f64::total_cmp);
    let (p50_ms, p99_ms) = (benchkit::percentile(&times, 0.5), benchkit::percentile(&times, 0.99));
    eprintln!("{page}: first {first_ms:.1} ms, p50 {p50_ms:.1} ms, p99 {p99_ms:.1} ms");
    Ok(Row { page, path, first_ms, p50_ms, p99_ms, bytes, server_timed, after_append_ms: vec![] })
}

/// One request's time (server time, else wall time).
fn time_once(session: &mut Session, path: &str) -> Result<f64> {
    Ok(fetch(session, path)?.1)
}

/// Fetches `path` once: the response, its time in ms, and whether that is the server's own.
fn fetch(session: &mut Session, path: &str) -> Result<(Response, f64, bool)> {
    let client = session.client()?;
    let cookie = format!("docket_session={}", session.token);
    let (response, wall) = timed(|| client.request("GET", path, b"", &[("cookie", &cookie)]))?;
    if response.status != 200 {
        bail!("{path}: {} {}", response.status, response.text().chars().take(300).collect::<String>());
    }
    let server = response
        .header("server-timing")
        .and_then(|t| t.split("dur=").nth(1))
        .and_then(|d| d.split([';', ',']).next()?.trim().parse::<f64>().ok());
    Ok((response, server.unwrap_or(wall), server.is_some()))
}

/// Appends a notice opening case `index` of the demo court, and waits
/// (at most `PROJECTED_WAIT`) until the server's views hold it.
fn append_one(base: &str, api: &Client, seed: u64, index: u64) -> Result<()> {
    let watermark = |api: &Client| -> Result<u64> {
        let response = api.get("/v1/views/registry")?;
        Ok(response.header("docket-watermark").and_then(|w| w.parse().ok()).unwrap_or(0))
    };
    let before = watermark(api)?;
    let event = benchkit::notices(index, 1, seed).pop().ok_or_else(|| anyhow!("no notice signed"))?;
    // The signature is the event's authority: no session needed.
    let response = Client::new(base)?.post("/v1/events", &serde_json::to_vec(&event.to_json())?)?;
    if response.status != 200 {
        bail!("appending notice {index}: {} {}", response.status, response.text());
    }
    let started = Instant::now();
    while watermark(api)? <= before {
        if started.elapsed() > PROJECTED_WAIT {
            bail!("notice {index}: not projected after {PROJECTED_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// A signed-in session, renewed before the server's lifetime ends.
struct Session {
    base: String,
    key: SigningKey,
    token: String,
    opened: Instant,
}

impl Session {
    fn open(base: &str, key: SigningKey) -> Result<Self> {
        let client = Client::new(base)?.with_identity(OVERSIGHT, key.clone());
        let token = client.open_session()?.map_err(|r| anyhow!("session: {} {}", r.status, r.text()))?.token;
        Ok(Self { base: base.to_owned(), key, token, opened: Instant::now() })
    }

    /// A client for the pages (the token travels in the cookie).
    fn client(&mut self) -> Result<Client> {
        if self.opened.elapsed() > SESSION_RENEW {
            *self = Self::open(&self.base, self.key.clone())?;
        }
        Ok(Client::new(&self.base)?)
    }
}

/// Registers the oversight agency (a duplicate of an earlier run is accepted as it).
fn register_oversight(base: &str, seed: u64, key: &SigningKey) -> Result<()> {
    let root = docket_world::key(seed, "registry-root");
    let name = |text: &str| Name::parse(text).map_err(|e| anyhow!("{text}: {e}"));
    let event = Event {
        format: FORMAT_VERSION,
        signer: Signer::Registry,
        key: PublicKey(root.verifying_key().to_bytes()),
        effective_at: Timestamp::parse("2024-01-01T00:00:00+08:00").map_err(|e| anyhow!("{e}"))?,
        body: Body::Registry(RegistryEvent::AgencyRegistered {
            agency: name(OVERSIGHT)?,
            name: "pages-bench oversight".into(),
            roles: vec![Role::Oversight],
            keys: vec![PublicKey(key.verifying_key().to_bytes())],
        }),
    };
    let signed = SignedEvent::sign(event, &root).map_err(|e| anyhow!("{e}"))?;
    let response = Client::new(base)?.post("/v1/events", &serde_json::to_vec(&signed.to_json())?)?;
    if response.status != 200 {
        bail!("registering {OVERSIGHT}: {} {}", response.status, response.text());
    }
    Ok(())
}

/// The first element of the array `field` of the JSON at `path`.
fn first(client: &Client, path: &str, field: &str) -> Result<Value> {
    let response = client.get(path)?;
    let body: Value = serde_json::from_slice(&response.body).with_context(|| format!("{path}: {}", response.text()))?;
    body[field].get(0).cloned().ok_or_else(|| anyhow!("{path}: no {field} ({})", response.status))
}

fn timed(fetch: impl FnOnce() -> Result<Response, docket_client::ClientError>) -> Result<(Response, f64)> {
    let started = Instant::now();
    let response = fetch()?;
    Ok((response, started.elapsed().as_secs_f64() * 1e3))
}

/// Prints one table: each page at each size, the largest against the smallest.
fn report(tables: &[Table]) {
    let Some(peer) = tables.iter().min_by_key(|t| t.records) else { return };
    println!(
        "| page | records | first request ms | p50 ms (the other requests) | p99 ms | first after an append: p50 / max ms | bytes | p50 / p50 at {} records |",
        peer.records
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for table in tables {
        for row in &table.rows {
            let base = peer.rows.iter().find(|r| r.page == row.page).map_or(f64::NAN, |r| r.p50_ms);
            let wall = if row.server_timed { "" } else { " (wall)" };
            let after = &row.after_append_ms;
            let after = match after.last() {
                Some(max) => format!("{:.1} / {max:.1}", benchkit::percentile(after, 0.5)),
                None => "—".into(),
            };
            println!(
                "| {} | {} | {:.1} | {:.1}{wall} | {:.1} | {after} | {} | {:.2} |",
                row.page,
                table.records,
                row.first_ms,
                row.p50_ms,
                row.p99_ms,
                row.bytes,
                row.p50_ms / base
            );
        }
        println!(
            "| `GET /healthz` (wall, the floor) | {} | — | {:.2} | — | — | — | — |",
            table.records, table.floor_p50_ms
        );
    }
    for table in tables {
        for row in &table.rows {
            eprintln!("{} records: {} -> {}", table.records, row.page, row.path);
        }
    }
}
