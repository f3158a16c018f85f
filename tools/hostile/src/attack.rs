//! The attacks (each in its own process) and the probes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use docket_model::event::{Body, CaseAction, CaseEvent, Event, ServiceMethod, Signer, FORMAT_VERSION};
use docket_model::{Name, PublicKey, SignedEvent, SubjectId, Timestamp};
use docket_world as world;

use crate::ms;

/// Longest wait for one connect or one probe.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);

/// Idle connections opened per burst, and the pause between bursts (paces the SYNs).
const OPEN_BURST: u64 = 500;
const OPEN_PAUSE: Duration = Duration::from_millis(25);

/// A connection from 127.0.0.`octet`-ish (wrapping into 127.0.N.M).
async fn connect_from(addr: SocketAddr, octet: u64) -> std::io::Result<TcpStream> {
    let source = Ipv4Addr::new(127, 0, (octet / 250) as u8, (octet % 250) as u8 + 2);
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    tokio::time::timeout(STEP_TIMEOUT, socket.connect(addr)).await.map_err(|_| std::io::ErrorKind::TimedOut)?
}

/// Child: `--attack KIND COUNT ADDR SECONDS OCTET`; prints one JSON line.
pub fn child(args: &[String]) -> Result<(), String> {
    crate::raise_fd_limit();
    let usage = "--attack idle|slowloris|partial COUNT ADDR SECONDS OCTET";
    let kind = args.get(2).ok_or(usage)?.clone();
    let number = |i: usize| args.get(i).and_then(|v| v.parse::<u64>().ok()).ok_or(usage);
    let count = number(3)?;
    let addr: SocketAddr = args.get(4).and_then(|a| a.parse().ok()).ok_or(usage)?;
    let seconds = number(5)?;
    let octet = number(6)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let report = runtime.block_on(attack(&kind, count, addr, Duration::from_secs(seconds), octet));
    println!("{report}");
    Ok(())
}

/// What became of one attacking connection.
#[derive(Debug)]
enum Fate {
    NotOpened,
    /// Closed by the server after this long, with the status it answered (0: none).
    Closed(f64, u16),
    StillOpen,
}

async fn attack(kind: &str, count: u64, addr: SocketAddr, span: Duration, octet: u64) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + span;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let kind = kind.to_owned();
        tasks.spawn(async move {
            let Ok(stream) = connect_from(addr, octet).await else { return Fate::NotOpened };
            let opened = Instant::now();
            let outcome = match kind.as_str() {
                "slowloris" => tokio::time::timeout_at(deadline, slowloris(stream)).await,
                "partial" => tokio::time::timeout_at(deadline, partial(stream)).await,
                _ => tokio::time::timeout_at(deadline, idle(stream)).await,
            };
            outcome.map_or(Fate::StillOpen, |status| Fate::Closed(ms(opened), status))
        });
        if index % OPEN_BURST == OPEN_BURST - 1 {
            tokio::time::sleep(OPEN_PAUSE).await;
        }
    }
    let mut fates = vec![];
    while let Some(fate) = tasks.join_next().await {
        fates.push(fate.unwrap_or(Fate::NotOpened));
    }
    summary(kind, count, &fates)
}

fn summary(kind: &str, count: u64, fates: &[Fate]) -> serde_json::Value {
    let mut closed: Vec<f64> =
        fates.iter().filter_map(|f| if let Fate::Closed(ms, _) = f { Some(*ms) } else { None }).collect();
    closed.sort_by(f64::total_cmp);
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for fate in fates {
        if let Fate::Closed(_, status) = fate {
            *statuses.entry(if *status == 0 { "none".into() } else { status.to_string() }).or_default() += 1;
        }
    }
    serde_json::json!({
        "attack": kind,
        "connections": count,
        "not_opened": fates.iter().filter(|f| matches!(f, Fate::NotOpened)).count(),
        "closed_by_server": closed.len(),
        "still_open_at_end": fates.iter().filter(|f| matches!(f, Fate::StillOpen)).count(),
        "closed_after_ms_p50": benchkit::percentile(&closed, 0.5).round(),
        "closed_after_ms_max": closed.last().copied().unwrap_or(0.0).round(),
        "answers": statuses,
    })
}

/// Reads until the server closes; the status of what it answered, if anything.
async fn until_closed(mut stream: TcpStream) -> u16 {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        if seen.len() < 64 {
            seen.extend_from_slice(&buffer[..n]);
        }
    }
    status_of(&seen)
}

fn status_of(head: &[u8]) -> u16 {
    String::from_utf8_lossy(head).split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

async fn idle(stream: TcpStream) -> u16 {
    until_closed(stream).await
}

/// A head that never ends: a header line every 500 ms.
async fn slowloris(mut stream: TcpStream) -> u16 {
    if stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.is_err() {
        return 0;
    }
    let (reader, mut writer) = stream.into_split();
    let drip = async move {
        for line in 0u64.. {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if writer.write_all(format!("X-Drip-{line}: 1\r\n").as_bytes()).await.is_err() {
                return;
            }
        }
    };
    let closed = async move {
        let mut reader = reader;
        let mut buffer = [0u8; 1024];
        let mut seen = Vec::new();
        while let Ok(n) = reader.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..n.min(64)]);
        }
        status_of(&seen)
    };
    tokio::select! {
        status = closed => status,
        () = drip => 0,
    }
}

/// A 1 MiB body that stops 2 bytes short.
async fn partial(mut stream: TcpStream) -> u16 {
    const BODY: usize = 1 << 20;
    let head = format!("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < BODY - 2 {
        let n = chunk.len().min(BODY - 2 - sent);
        if stream.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        sent += n;
    }
    until_closed(stream).await
}

/// `/healthz` probe latencies (a new connection each, every 10 ms) and the server's RSS.
#[derive(Debug, Default)]
pub struct Probes {
    latencies_ms: Vec<f64>,
    failed: u64,
    rss_max_kib: u64,
}

impl Probes {
    pub fn p99_ms(&self) -> f64 {
        benchkit::percentile(&self.latencies_ms, 0.99)
    }

    pub fn line(&self) -> String {
        let p = |q| benchkit::percentile(&self.latencies_ms, q);
        format!(
            "{} probes, {} failed; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; server RSS max {} MiB",
            self.latencies_ms.len(),
            self.failed,
            p(0.5),
            p(0.99),
            self.latencies_ms.last().copied().unwrap_or(0.0),
            self.rss_max_kib / 1024
        )
    }
}

/// Probes for `span`.
pub async fn probe(addr: SocketAddr, span: Duration, pid: u32) -> Probes {
    let mut probes = Probes::default();
    let end = Instant::now() + span;
    while Instant::now() < end {
        let started = Instant::now();
        let answered = tokio::time::timeout(STEP_TIMEOUT, async {
            let mut stream = TcpStream::connect(addr).await.ok()?;
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.ok()?;
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).await.ok()?;
            reply.ends_with(b"ok\n").then_some(())
        })
        .await;
        match answered {
            Ok(Some(())) => probes.latencies_ms.push(ms(started)),
            _ => probes.failed += 1,
        }
        probes.rss_max_kib = probes.rss_max_kib.max(crate::rss_kib(pid).0);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    probes.latencies_ms.sort_by(f64::total_cmp);
    probes
}

/// A notice by the demo court on a case of its own.
fn notice(index: u64) -> SignedEvent {
    let key = world::key(1, "spc");
    let at = Timestamp::parse("2024-03-01T10:00:00+08:00").unwrap_or_else(|_| unreachable!());
    let event = Event {
        format: FORMAT_VERSION,
        signer: Signer::Agency(Name::parse("spc").unwrap_or_else(|_| unreachable!())),
        key: PublicKey(key.verifying_key().to_bytes()),
        effective_at: at,
        body: Body::Case(CaseEvent {
            list: Name::parse("cn-spc-defaulters").unwrap_or_else(|_| unreachable!()),
            subject: SubjectId::Uscc(world::numbered_uscc(index)),
            number: Name::parse(&format!("(2026)hostile{index}")).unwrap_or_else(|_| unreachable!()),
            expected_version: Some(0),
            action: CaseAction::Notice {
                served_at: at,
                method: ServiceMethod::Post,
                matter: "Replayed".into(),
                legal_basis: vec![],
                rights: "Objection within 7 working days".into(),
            },
        }),
    };
    SignedEvent::sign(event, &key).unwrap_or_else(|e| panic!("signing: {e}"))
}

/// One POST on a kept-alive connection: (status, the head in lower case).
async fn post(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<(u16, String)> {
    let head = format!("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&seen).to_lowercase();
        let Some(split) = text.find("\r\n\r\n") else { continue };
        let length: usize = text[..split]
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if seen.len() >= split + 4 + length {
            return Ok((status_of(&seen), text[..split].to_owned()));
        }
    }
}

/// The server's `docket_connections_*` metric lines.
pub async fn connection_metrics(addr: SocketAddr) -> String {
    let fetch = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.ok()?;
        Some(String::from_utf8_lossy(&reply).into_owned())
    };
    let text = tokio::time::timeout(STEP_TIMEOUT, fetch).await.ok().flatten().unwrap_or_default();
    text.lines().filter(|l| l.starts_with("docket_connections")).collect::<Vec<_>>().join("; ")
}

/// One genuine event, replayed `replays` times from one address; then a new
/// event from another address, inside the court's small budget.
pub async fn replay_flood(addr: SocketAddr, _dir: &Path, replays: u64) -> Result<String, String> {
    let genuine = serde_json::to_vec(&notice(1).to_json()).map_err(|e| e.to_string())?;
    let mut stream = connect_from(addr, 200).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (first, _) = post(&mut stream, &genuine).await.map_err(|e| e.to_string())?;
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut retry_after = 0;
    let started = Instant::now();
    for _ in 0..replays {
        let Ok((status, head)) = post(&mut stream, &genuine).await else {
            stream = connect_from(addr, 200).await.map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            continue;
        };
        *statuses.entry(status).or_default() += 1;
        retry_after += u64::from(status == 429 && head.contains("retry-after: "));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut other = connect_from(addr, 201).await.map_err(|e| e.to_string())?;
    let (fresh, _) = post(&mut other, &serde_json::to_vec(&notice(2).to_json()).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "replay flood: genuine append {first}; {replays} replays in {elapsed:.2} s ({:.0}/s): statuses {statuses:?}, \
         {retry_after} of the 429s with Retry-After; then a new event from another address (court budget: burst 100): {fresh}",
        replays as f64 / elapsed
    ))
}
