//! The PostgreSQL peer: what an agency's IT department would otherwise build,
//! a table of signed events with indexes, durable at commit.
//!
//! The server is Debian's `postgresql` (installed with apt when missing),
//! started by the suite in a temporary directory beside docket's ledger,
//! listening on loopback, with `synchronous_commit=on` and `fsync=on` (each
//! committed insert is on disk, as each docket receipt is). The table holds
//! each event's canonical bytes and the columns a point check needs:
//!
//! ```sql
//! events(seq bigserial primary key, id bytea unique, list, subject, number,
//!        kind, measure, agency, effective_at, recorded_at, wire bytea)
//! index events_subject on (subject, seq)
//! ```
//!
//! Ingest: all but the last `tail` case events are loaded with binary COPY
//! (untimed, then the indexes built), then the last `tail` are inserted one
//! per transaction through `appenders` connections, each carrying whole
//! cases in order, as docket's appenders do. The peer does not verify
//! signatures or check the registry; docket does both, so the comparison
//! favours PostgreSQL.
//!
//! Point check: the subject's events by the index, folded in the client
//! (the measure applied and not lifted, the case not restored since, each
//! as of its effective time), one query after another on one connection.
//! It does not check MOUs or terms as docket's check does, so it does less work.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use docket_model::{Body, CaseAction, SignedEvent, Signer};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, NoTls};

/// The newest `/usr/lib/postgresql/*/bin` holding `initdb`.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// Installs Debian's `postgresql` with apt when no server is installed.
pub fn ensure_installed() -> Result<()> {
    if bin_dir().is_some() {
        return Ok(());
    }
    eprintln!("PostgreSQL is not installed: installing Debian's postgresql with apt-get…");
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    for args in [&["apt-get", "update", "-qq"][..], &["apt-get", "install", "-y", "-qq", "postgresql"][..]] {
        let mut command = Command::new(sudo.first().copied().unwrap_or(args[0]));
        command.args(if sudo.is_empty() { &args[1..] } else { args }).env("DEBIAN_FRONTEND", "noninteractive");
        let status = command.status().with_context(|| format!("running {}", args.join(" ")))?;
        if !status.success() {
            bail!("{} failed ({status})", args.join(" "));
        }
    }
    bin_dir()
        .map(|_| ())
        .ok_or_else(|| anyhow!("apt-get installed postgresql but no initdb is under /usr/lib/postgresql"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A server started for the benchmark; stopped when dropped.
struct Server {
    child: Child,
    port: u16,
    /// `pg_ctl stop` for the data directory, as the user the server runs as.
    stop: Command,
    /// Where the server's files are.
    dir: PathBuf,
}

impl Server {
    /// initdb in `dir/data` and start the server on a free loopback port.
    fn start(requested: &Path) -> Result<Self> {
        let bin = bin_dir().ok_or_else(|| anyhow!("PostgreSQL is not installed"))?;
        let dir = Self::reachable_dir(requested)?;
        let dir = dir.as_path();
        let data = dir.join("data");
        // PostgreSQL refuses to run as root: then it runs as the package's `postgres` user.
        let as_user = |program: &str| -> Command {
            if is_root() {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(bin.join(program));
                command
            } else {
                Command::new(bin.join(program))
            }
        };
        let output = as_user("initdb")
            .args(["--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-D"])
            .arg(&data)
            .output()
            .context("running initdb")?;
        if !output.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(dir.join("postgres.log"))?;
        let child = as_user("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&data)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "synchronous_commit=on",
                "-c",
                "fsync=on",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=1GB",
                "-c",
                "max_wal_size=8GB",
            ])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting postgres")?;
        let mut stop = as_user("pg_ctl");
        stop.args(["stop", "-m", "fast", "-w", "-D"]).arg(&data).stdout(Stdio::null()).stderr(Stdio::null());
        let server = Server { child, port, stop, dir: dir.to_owned() };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match server.connect() {
                Ok(_) => return Ok(server),
                Err(error) if Instant::now() > deadline => {
                    bail!(
                        "postgres did not accept connections in 60 s: {error}; see {}",
                        dir.join("postgres.log").display()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// `requested`, created and (as root) given to the `postgres` user; if
    /// that user cannot reach it (a parent directory it may not traverse), a
    /// new directory under the system's temporary directory, with a warning
    /// (it may be another file system).
    fn reachable_dir(requested: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(requested)?;
        if !is_root() {
            return Ok(requested.to_owned());
        }
        let give = |dir: &Path| -> Result<bool> {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir).status()?;
            if !status.success() {
                bail!("chown of {} to postgres failed", dir.display());
            }
            Ok(Command::new("runuser").args(["-u", "postgres", "--", "test", "-w"]).arg(dir).status()?.success())
        };
        if give(requested)? {
            return Ok(requested.to_owned());
        }
        let fallback = std::env::temp_dir().join(format!("docket-bench-pg-{}", std::process::id()));
        eprintln!(
            "warning: the postgres user cannot reach {}; PostgreSQL runs in {} instead (check that it is the same kind of disk)",
            requested.display(),
            fallback.display()
        );
        let _ = std::fs::remove_dir_all(&fallback);
        std::fs::create_dir_all(&fallback)?;
        if !give(&fallback)? {
            bail!("the postgres user cannot reach {} either", fallback.display());
        }
        Ok(fallback)
    }

    fn connect(&self) -> Result<Client> {
        Ok(Client::connect(&format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port), NoTls)?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The child is `runuser` when run as root, which does not pass signals on: pg_ctl stops the server.
        if !self.stop.status().is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// An event as a row: id, list, subject, number, kind, measure, agency, effective_at, wire.
type Row = (Vec<u8>, String, String, String, String, Option<String>, String, i64, Vec<u8>);

fn row(event: &SignedEvent, wire: &[u8]) -> Option<Row> {
    let Body::Case(case) = &event.event().body else { return None };
    let measure = match &case.action {
        CaseAction::MeasureApplied { measure, .. } | CaseAction::MeasureLifted { measure, .. } => {
            Some(measure.to_string())
        }
        _ => None,
    };
    let agency = match &event.event().signer {
        Signer::Agency(agency) => agency.to_string(),
        Signer::Registry => "registry".into(),
    };
    Some((
        event.id().0.to_vec(),
        case.list.to_string(),
        case.subject.to_string(),
        case.number.to_string(),
        event.event().kind().name().to_owned(),
        measure,
        agency,
        event.event().effective_at.micros(),
        wire.to_vec(),
    ))
}

const INSERT: &str = "INSERT INTO events (id, list, subject, number, kind, measure, agency, effective_at, wire) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Runs the peer; returns its figures by name.
pub fn run(
    dir: &Path,
    data: &Path,
    events: u64,
    tail: u64,
    appenders: usize,
    queries_file: &Path,
) -> Result<Vec<(&'static str, f64)>> {
    let manifest = docket_gen::Manifest::read(data)?;
    let server = Server::start(dir)?;
    let mut client = server.connect()?;
    client.batch_execute(
        "CREATE TABLE events (seq bigserial PRIMARY KEY, id bytea NOT NULL, list text NOT NULL, \
         subject text NOT NULL, number text NOT NULL, kind text NOT NULL, measure text, agency text NOT NULL, \
         effective_at bigint NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(), wire bytea NOT NULL)",
    )?;
    let case_events = events - manifest.registry_events;
    let bulk = case_events - tail;
    let mut figures = Vec::new();

    // Bulk load, untimed for the comparison (reported for information).
    let started = Instant::now();
    let tail_rows = bulk_load(&mut client, data, manifest.registry_events, bulk, appenders)?;
    figures.push(("pg_copy_rate", bulk as f64 / started.elapsed().as_secs_f64()));
    let started = Instant::now();
    client.batch_execute(
        "CREATE UNIQUE INDEX events_id ON events (id); CREATE INDEX events_subject ON events (subject, seq); ANALYZE events",
    )?;
    figures.push(("pg_index_seconds", started.elapsed().as_secs_f64()));

    // Timed: the tail, one insert per transaction, through `appenders` connections.
    let seconds = insert_tail(&server, &tail_rows)?;
    let inserted: u64 = tail_rows.iter().map(|r| r.len() as u64).sum();
    figures.push(("pg_ingest", inserted as f64 / seconds));
    let rows: i64 = client.query_one("SELECT count(*) FROM events", &[])?.get(0);
    if rows as u64 != case_events {
        bail!("the events table holds {rows} rows, not {case_events}");
    }
    let bytes: i64 = client.query_one("SELECT pg_total_relation_size('events')", &[])?.get(0);
    figures.push(("pg_bytes_per_event", bytes as f64 / rows as f64));

    // The point check as an indexed query, folded in the client.
    let queries = crate::probes::read_queries(queries_file)?;
    let (latencies, restricted) = point_checks(&mut client, &queries)?;
    figures.push(("pg_check_p50_us", benchkit::percentile(&latencies, 0.5)));
    figures.push(("pg_check_p99_us", benchkit::percentile(&latencies, 0.99)));
    figures.push(("pg_restricted_share", restricted as f64 / queries.len().max(1) as f64));
    drop(client);
    let files = server.dir.clone();
    drop(server);
    let _ = std::fs::remove_dir_all(files);
    let _ = std::fs::remove_dir_all(dir);
    Ok(figures)
}

/// Loads the first `bulk` case events of the data set with binary COPY
/// (skipping its `registry_events` registry events); returns the rest, the
/// tail, as rows for each of `appenders` connections (whole cases each).
fn bulk_load(
    client: &mut Client,
    data: &Path,
    registry_events: u64,
    bulk: u64,
    appenders: usize,
) -> Result<Vec<Vec<Row>>> {
    let mut tail_rows: Vec<Vec<Row>> = vec![Vec::new(); appenders.max(1)];
    let sink = client.copy_in(
        "COPY events (id, list, subject, number, kind, measure, agency, effective_at, wire) FROM STDIN BINARY",
    )?;
    let types =
        [Type::BYTEA, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::INT8, Type::BYTEA];
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut failure: Option<anyhow::Error> = None;
    let mut index = 0u64;
    docket_gen::read_wire(data, |wire| {
        index += 1;
        if index <= registry_events {
            return true;
        }
        let outcome = (|| -> Result<()> {
            let event = SignedEvent::from_wire(wire).map_err(|e| anyhow!("event {}: {e}", index - 1))?;
            let Some(r) = row(&event, wire) else { return Ok(()) };
            if index - registry_events <= bulk {
                writer.write(&[&r.0, &r.1, &r.2, &r.3, &r.4, &r.5, &r.6, &r.7, &r.8])?;
            } else {
                tail_rows[crate::children::partition(&event, appenders)].push(r);
            }
            Ok(())
        })();
        match outcome {
            Ok(()) => true,
            Err(error) => {
                failure = Some(error);
                false
            }
        }
    })?;
    if let Some(error) = failure {
        return Err(error);
    }
    writer.finish()?;
    Ok(tail_rows)
}

/// Inserts the tail, one insert per transaction, each list of rows through
/// its own connection; returns the seconds it took.
fn insert_tail(server: &Server, tail_rows: &[Vec<Row>]) -> Result<f64> {
    let started = Instant::now();
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = tail_rows
            .iter()
            .map(|rows| {
                scope.spawn(move || -> Result<()> {
                    let mut client = server.connect()?;
                    let insert = client.prepare(INSERT)?;
                    for r in rows {
                        client.execute(&insert, &[&r.0, &r.1, &r.2, &r.3, &r.4, &r.5, &r.6, &r.7, &r.8])?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("appender panicked")))).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    for result in results {
        result?;
    }
    Ok(seconds)
}

/// Each point check as an indexed query folded in the client, one after
/// another: the sorted latencies (µs) and how many found the measure in place.
fn point_checks(client: &mut Client, queries: &[(String, String)]) -> Result<(Vec<f64>, usize)> {
    let select = client.prepare("SELECT kind, measure, effective_at FROM events WHERE subject = $1 ORDER BY seq")?;
    let mut latencies = Vec::with_capacity(queries.len());
    let mut restricted = 0usize;
    let now = docket_model::Timestamp::now().micros();
    for (subject, measure) in queries {
        let started = Instant::now();
        let mut applied = false;
        for r in client.query(&select, &[subject])? {
            let kind: &str = r.get(0);
            let m: Option<&str> = r.get(1);
            // Valid time: a lift or restoration recorded ahead of its date does not count yet.
            if r.get::<_, i64>(2) > now {
                continue;
            }
            match kind {
                "measure_applied" if m == Some(measure.as_str()) => applied = true,
                "measure_lifted" if m == Some(measure.as_str()) => applied = false,
                "restoration" => applied = false,
                _ => {}
            }
        }
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
        restricted += usize::from(applied);
    }
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, restricted))
}
