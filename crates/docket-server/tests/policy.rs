//! The read policy of API.md ("Who may read"), cell by cell: each signed
//! read and each of its parameters, by an anonymous client, the agency the
//! read is about, an agency that follows the list (holds MOU terms on it),
//! an unrelated agency, and an agency with the oversight role. And a
//! revocation takes effect on the very next request.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;

use docket_model::event::{RegistryEvent, Role};
use docket_model::{Name, PublicKey, Timestamp};
use docket_server::ServerLimits;
use docket_world as world;
use ed25519_dalek::SigningKey;
use serde_json::Value;
use support::*;

const OVERSIGHT: &str = "audit-office";

fn oversight_key() -> SigningKey {
    SigningKey::from_bytes(&[0x41; 32])
}

/// Who reads.
#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    Agency(&'static str),
    Oversight,
}

fn read(addr: SocketAddr, who: Who, path: &str) -> Reply {
    match who {
        Who::Anonymous => get(addr, path),
        Who::Agency(agency) => get_as(addr, agency, path),
        Who::Oversight => get_with(addr, OVERSIGHT, oversight_key(), path),
    }
}

/// A demo server with one notice by the court (its seq returned) and an oversight agency.
fn setup(dir: &std::path::Path) -> (Running, u64) {
    let root = demo_ledger(dir, 10);
    let server = start(dir, ServerLimits::default());
    let register = registry_event(
        &root,
        RegistryEvent::AgencyRegistered {
            agency: Name::parse(OVERSIGHT).unwrap(),
            name: "National Audit Office".into(),
            roles: vec![Role::Oversight],
            keys: vec![PublicKey(oversight_key().verifying_key().to_bytes())],
        },
    );
    assert_eq!(post(server.addr, "/v1/events", &body_of(&register)).status, 200);
    let spc = world::key(SEED, "spc");
    let reply = post(server.addr, "/v1/events", &body_of(&notice(900, "spc", &spc, Some(0), "Policy")));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seq = reply.json()["seq"].as_u64().unwrap();
    // The views below read the projections: wait until they hold the notice.
    assert_eq!(get(server.addr, &format!("/v1/views/registry?min_seq={seq}")).status, 200);
    (server, seq)
}

#[test]
fn every_cell_of_the_read_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (server, notice_seq) = setup(dir.path());
    let addr = server.addr;
    let (spc, railway, pboc, petitions) =
        (Who::Agency("spc"), Who::Agency("china-railway"), Who::Agency("pboc-credit"), Who::Agency("petitions"));
    let subject = format!("uscc:{}", world::numbered_uscc(900));
    let check = format!("/v1/views/check?subject={subject}&measure=restrict-rail");
    let notice = format!("/v1/events/{notice_seq}");
    let cells: Vec<(Who, String, u16)> = vec![
        // Open reads.
        (Who::Anonymous, "/v1/views/public".into(), 200),
        (Who::Anonymous, "/v1/views/registry".into(), 200),
        (Who::Anonymous, "/v1/delta?cursor=0".into(), 200),
        (Who::Anonymous, "/v1/checkpoint".into(), 200),
        // The list view: the reader's own lists; another's only for oversight.
        (Who::Anonymous, "/v1/views/list".into(), 401),
        (spc, "/v1/views/list".into(), 200),
        (spc, "/v1/views/list?agency=spc".into(), 200),
        (spc, "/v1/views/list?list=cn-spc-defaulters".into(), 200),
        (railway, "/v1/views/list?agency=spc".into(), 403),
        (railway, "/v1/views/list?list=cn-spc-defaulters".into(), 403),
        (Who::Oversight, "/v1/views/list?agency=spc&list=cn-spc-defaulters".into(), 200),
        // The worklist: the responsible agency's own.
        (Who::Anonymous, "/v1/views/enforcement?agency=china-railway".into(), 401),
        (railway, "/v1/views/enforcement?agency=china-railway".into(), 200),
        (pboc, "/v1/views/enforcement?agency=china-railway".into(), 403),
        (Who::Oversight, "/v1/views/enforcement?agency=china-railway".into(), 200),
        // A subject: any registered agency.
        (Who::Anonymous, format!("/v1/views/subject?subject={subject}"), 401),
        (petitions, format!("/v1/views/subject?subject={subject}"), 200),
        // A point check: as the reader itself, or as anyone for oversight.
        (Who::Anonymous, check.clone(), 401),
        (railway, check.clone(), 200),
        (railway, format!("{check}&agency=china-railway"), 200),
        (railway, format!("{check}&agency=pboc-credit"), 403),
        (Who::Oversight, format!("{check}&agency=pboc-credit"), 200),
        // One record: within the reader's scope.
        (Who::Anonymous, notice.clone(), 401),
        (spc, notice.clone(), 200),
        (railway, notice.clone(), 200),
        (petitions, notice.clone(), 403),
        (petitions, "/v1/events/0".into(), 200),
        (Who::Oversight, notice.clone(), 200),
        // The feed's filters: agency= the reader, list= one it follows.
        (Who::Anonymous, "/v1/feed".into(), 401),
        (spc, "/v1/feed?agency=spc".into(), 200),
        (railway, "/v1/feed?agency=spc".into(), 403),
        (railway, "/v1/feed?list=cn-spc-defaulters".into(), 200),
        (petitions, "/v1/feed?list=cn-spc-defaulters".into(), 403),
        (Who::Oversight, "/v1/feed?agency=spc&list=cn-tax-serious".into(), 200),
        (Who::Anonymous, "/v1/feed/sse".into(), 401),
        (railway, "/v1/feed/sse?agency=spc".into(), 403),
        (petitions, "/v1/feed/sse?list=cn-spc-defaulters".into(), 403),
        // The audit: the lists the reader designates, or where it had to act.
        (Who::Anonymous, "/v1/audit".into(), 401),
        (spc, "/v1/audit?list=cn-spc-defaulters&limit=1".into(), 200),
        (railway, "/v1/audit?limit=1".into(), 200),
        (railway, "/v1/audit?list=cn-spc-defaulters".into(), 403),
        (railway, "/v1/audit?agency=spc".into(), 403),
        (Who::Oversight, "/v1/audit?agency=spc&limit=1".into(), 200),
        // The inquiry register: the oversight role only.
        (Who::Anonymous, "/v1/inquiries".into(), 401),
        (spc, "/v1/inquiries".into(), 403),
        (Who::Oversight, "/v1/inquiries".into(), 200),
    ];
    for (who, path, status) in cells {
        let reply = read(addr, who, &path);
        assert_eq!(reply.status, status, "{who:?} {path}: {}", reply.body);
        let code = if status == 403 { "forbidden" } else { "unauthenticated" };
        if status >= 400 {
            assert_eq!(reply.code(), code, "{who:?} {path}");
        }
    }
}

fn events(page: &Value) -> Vec<Value> {
    page["events"].as_array().unwrap().clone()
}

#[test]
fn unfiltered_reads_stay_within_the_readers_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (server, notice_seq) = setup(dir.path());
    let addr = server.addr;
    // The court's list view without `agency` is its own lists only.
    let own = read(addr, Who::Agency("spc"), "/v1/views/list").json();
    let lists = own["lists"].as_array().unwrap();
    assert!(!lists.is_empty() && lists.iter().all(|l| l["designating_agency"] == "spc"), "{own}");
    let railway = read(addr, Who::Agency("china-railway"), "/v1/views/list").json();
    assert_eq!(railway["lists"], serde_json::json!([]), "china-railway designates no list");
    let all = read(addr, Who::Oversight, "/v1/views/list").json();
    assert_eq!(all["lists"].as_array().unwrap().len(), 3, "oversight reads every list");

    // The whole feed: an unrelated agency sees registry events and its own only.
    let path = "/v1/feed?cursor=0&limit=1000";
    let page = read(addr, Who::Agency("petitions"), path).json();
    let cursor = page["cursor"].as_u64().unwrap();
    assert!(cursor > notice_seq, "the page scanned past the notice");
    let outside = events(&page)
        .into_iter()
        .filter(|e| e["signed"]["event"]["body"].get("case").is_some())
        .filter(|e| e["signed"]["event"]["signer"]["agency"] != "petitions")
        .count();
    assert_eq!(outside, 0, "case events neither by petitions nor on a list it follows");
    // Oversight sees every record scanned; the court its notice.
    let everything = read(addr, Who::Oversight, path).json();
    assert_eq!(events(&everything).len() as u64, everything["cursor"].as_u64().unwrap());
    let court = read(addr, Who::Agency("spc"), &format!("/v1/feed?cursor={notice_seq}&agency=spc")).json();
    assert_eq!(events(&court)[0]["seq"], notice_seq);
    // The audit without parameters is the reader's own findings.
    let audit = read(addr, Who::Agency("china-railway"), "/v1/audit?limit=1000").json();
    let findings = audit["findings"].as_array().unwrap();
    let others = findings.iter().filter(|f| !f.to_string().contains("china-railway")).count();
    assert_eq!(others, 0, "findings where china-railway had nothing to do");
}

#[test]
fn a_revocation_takes_effect_on_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let root = demo_ledger(dir.path(), 5);
    let server = start(dir.path(), ServerLimits::default());
    let addr = server.addr;
    let railway = world::key(SEED, "china-railway");
    let path = "/v1/views/enforcement?agency=china-railway";
    let token = open_session(addr, "china-railway", &railway).json()["token"].as_str().unwrap().to_owned();
    assert_eq!(with_token(addr, "GET", path, &token).status, 200);
    let revoke = registry_event(
        &root,
        RegistryEvent::KeyRevoked {
            agency: Name::parse("china-railway").unwrap(),
            key: PublicKey(railway.verifying_key().to_bytes()),
            invalid_from: Timestamp::parse("2024-01-01T00:00:00+08:00").unwrap(),
        },
    );
    assert_eq!(post(addr, "/v1/events", &body_of(&revoke)).status, 200);
    // No wait for the projections: the next request is refused, signed or with the session.
    let signed = request(
        addr,
        "GET",
        path,
        b"",
        &signed_headers_at("china-railway", &railway, "GET", path, &Timestamp::now().to_string()),
    );
    assert_eq!((signed.status, signed.code().as_str()), (403, "key_revoked"), "{}", signed.body);
    let session = with_token(addr, "GET", path, &token);
    assert_eq!((session.status, session.code().as_str()), (403, "key_revoked"), "{}", session.body);
    assert_eq!(open_session(addr, "china-railway", &railway).code(), "key_revoked");
}

#[test]
fn every_non_public_read_is_recorded_before_it_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (server, notice_seq) = setup(dir.path());
    let addr = server.addr;
    let subject = format!("uscc:{}", world::numbered_uscc(900));
    let check = format!("/v1/views/check?subject={subject}&measure=restrict-rail");
    let reads: Vec<(Who, String, u16)> = vec![
        (Who::Agency("china-railway"), check.clone(), 200),
        (Who::Agency("petitions"), format!("/v1/views/subject?subject={subject}"), 200),
        // Refused, but asked: the question itself is recorded.
        (Who::Agency("petitions"), format!("/v1/events/{notice_seq}"), 403),
        (Who::Agency("spc"), "/v1/inquiries".into(), 403),
        // Public reads and failed authentication identify nobody.
        (Who::Anonymous, "/v1/views/public".into(), 200),
        (Who::Anonymous, check.clone(), 401),
    ];
    for (who, path, status) in &reads {
        assert_eq!(read(addr, *who, path).status, *status, "{who:?} {path}");
    }
    let page = read(addr, Who::Oversight, "/v1/inquiries?limit=1000").json();
    let recorded: Vec<(String, String, String)> = page["inquiries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let text = |field: &str| i[field].as_str().unwrap().to_owned();
            (text("agency"), text("key"), text("question"))
        })
        .collect();
    let key = |agency: &str| PublicKey(world::key(SEED, agency).verifying_key().to_bytes()).to_hex();
    let expected: Vec<(String, String, String)> = reads[..4]
        .iter()
        .map(|(who, path, _)| {
            let Who::Agency(agency) = who else { unreachable!() };
            ((*agency).to_owned(), key(agency), format!("GET {path}"))
        })
        .collect();
    assert_eq!(recorded, expected, "{page}");
    assert_eq!(page["size"], 4, "the oversight read is recorded after its answer is made");
    drop(server);
    // The oversight read too, all covered by the register's final checkpoint.
    let verified = docket_log::inquiry::verify(dir.path()).unwrap();
    assert_eq!((verified.size, verified.checkpoint), (5, Some(5)));
}
