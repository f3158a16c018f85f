//! The API over real HTTP on loopback: append -> feed -> projection ->
//! checkpoint; every refusal path with its documented code; the feed
//! resuming after a restart from the last cursor, as JSON and as SSE.

// Test helpers outside #[test] functions panic on failure, like the tests.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use docket_log::ledger;
use docket_model::event::{CaseAction, RegistryEvent};
use docket_model::{Name, PublicKey, SignedEvent, Timestamp};
use docket_server::ServerLimits;
use docket_world as world;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use support::*;

#[test]
fn append_then_feed_projection_event_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 40);
    let server = start(dir.path(), ServerLimits::default());
    let addr = server.addr;
    let size = get(addr, "/readyz").json()["log_size"].as_u64().unwrap();
    let (_, _, note_key) = ledger::read_config(dir.path()).unwrap();
    let first = ledger::open_checkpoint(&get(addr, "/v1/checkpoint").body, &note_key).unwrap();
    assert_eq!(first.size, size);
    let first_root = hex::encode(first.root);

    let event = notice(1, "spc", &world::key(SEED, "spc"), Some(0), "Failure to pay");
    let first = post(addr, "/v1/events", &body_of(&event));
    assert_eq!(first.status, 200, "{}", first.body);
    let receipt = first.json();
    assert_eq!(receipt["seq"], size);
    assert_eq!(receipt["id"], event.id().to_string());
    let again = post(addr, "/v1/events", &body_of(&event));
    assert_eq!(again.json(), receipt, "a duplicate gets the original receipt");

    let feed = get_as(addr, "spc", &format!("/v1/feed?cursor={size}"));
    let page = feed.json();
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "{}", feed.body);
    assert_eq!(page["events"][0]["signed"]["id"], event.id().to_string());
    assert_eq!(page["cursor"], size + 1);
    assert_eq!(page["caught_up"], true);
    let filtered = get_as(addr, "spc", "/v1/feed?cursor=0&kind=notice&agency=spc&limit=1000").json();
    assert!(filtered["events"].as_array().unwrap().iter().all(|e| e["kind"] == "notice"));

    let subject = format!("uscc:{}", world::numbered_uscc(1));
    let view = get_as(addr, "spc", &format!("/v1/views/subject?subject={subject}&min_seq={size}"));
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.json()["cases"][0]["notice"]["seq"], size);
    assert!(view.headers.contains("docket-watermark"));

    let record = get_as(addr, "spc", &format!("/v1/events/{size}")).json();
    assert_eq!(record["signed"]["id"], event.id().to_string());
    assert_eq!(get_as(addr, "spc", &format!("/v1/events/{}", size + 1)).status, 404);

    // The checkpoint covers the append within the checkpoint interval, and verifies.
    let started = Instant::now();
    let checkpoint = loop {
        let text = get(addr, "/v1/checkpoint").body;
        let checkpoint = ledger::open_checkpoint(&text, &note_key).unwrap();
        if checkpoint.size > size {
            break checkpoint;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no checkpoint covers seq {size}");
        std::thread::sleep(Duration::from_millis(100));
    };

    // The inclusion proof of the appended record, checked against the signed
    // checkpoint with a leaf hash computed here from the record the feed gave.
    let proof = get(addr, &format!("/v1/proof/inclusion?seq={size}")).json();
    assert_eq!(proof["tree_size"], checkpoint.size);
    let record = &page["events"][0];
    let signed: docket_model::SignedJson = serde_json::from_value(record["signed"].clone()).unwrap();
    let wire = SignedEvent::from_json(signed).unwrap().to_wire();
    let system_time = Timestamp::parse(record["system_time"].as_str().unwrap()).unwrap().micros();
    let leaf = docket_log::leaf(size, system_time, &wire);
    let hashes = |value: &Value| -> Vec<[u8; 32]> {
        value.as_array().unwrap().iter().map(|h| hex32(h.as_str().unwrap())).collect()
    };
    docket_log::merkle::verify_inclusion(size, checkpoint.size, &leaf, &hashes(&proof["proof"]), &checkpoint.root)
        .expect("the inclusion proof verifies against the checkpoint");
    let consistency = get(addr, &format!("/v1/proof/consistency?old={size}")).json();
    docket_log::merkle::verify_consistency(
        size,
        checkpoint.size,
        &hex32(consistency["old_root"].as_str().unwrap()),
        &checkpoint.root,
        &hashes(&consistency["proof"]),
    )
    .expect("the consistency proof verifies");
    assert_eq!(consistency["old_root"].as_str().unwrap(), first_root, "the old root is the startup checkpoint's");
    assert_eq!(get(addr, &format!("/v1/proof/inclusion?seq={}", checkpoint.size)).code(), "bad_parameter");
    assert!(size > 256, "a full tile exists: {size} records");
    let tile = get(addr, "/tile/0/000");
    assert_eq!(tile.status, 200);
    assert_eq!(tile.bytes, std::fs::read(dir.path().join("tiles/tile/0/000")).unwrap());
    assert_eq!(tile.bytes.len(), 256 * 32);
    assert!(tile.headers.contains("immutable"));
    assert_eq!(get(addr, "/tile/0/../../ledger.json").status, 400);

    let audit = get_as(addr, "spc", "/v1/audit?list=cn-spc-defaulters&limit=2").json();
    assert!(audit["total_findings"].as_u64().unwrap() > 2, "the demo plants violations");
    assert_eq!(audit["findings"].as_array().unwrap().len(), 2);
    assert!(audit["findings"].as_array().unwrap().iter().all(|f| f["list"] == "cn-spc-defaulters"));
    assert_eq!(get_as(addr, "spc", "/v1/audit?list=no-such-list").status, 404);

    // A batch: sequenced in order, sharing group commits; a duplicate inside gets the original receipt.
    let spc = world::key(SEED, "spc");
    let (a, b) = (notice(2, "spc", &spc, Some(0), "First of a batch"), notice(3, "spc", &spc, Some(0), "Second"));
    let batch = serde_json::to_vec(&json!([a.to_json(), b.to_json(), a.to_json()])).unwrap();
    let reply = post(addr, "/v1/events/batch", &batch);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let results = reply.json()["results"].clone();
    let head = get(addr, "/readyz").json()["log_size"].as_u64().unwrap();
    assert_eq!(results[0]["receipt"]["seq"], head - 2);
    assert_eq!(results[1]["receipt"]["seq"], head - 1);
    assert_eq!(results[2]["receipt"], results[0]["receipt"]);

    // The wire form (canonical bytes and signature): one event, and a batch of length-prefixed ones.
    let (c, d) = (notice(4, "spc", &spc, Some(0), "Wire form"), notice(5, "spc", &spc, Some(0), "Wire batch"));
    let octets = "Content-Type: application/octet-stream\r\n";
    let one = request(addr, "POST", "/v1/events", &c.to_wire(), octets);
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["id"], c.id().to_string());
    let mut framed = Vec::new();
    for event in [&c, &d] {
        framed.extend_from_slice(&(event.to_wire().len() as u32).to_be_bytes());
        framed.extend_from_slice(&event.to_wire());
    }
    let both = request(addr, "POST", "/v1/events/batch", &framed, octets);
    assert_eq!(both.status, 200, "{}", both.body);
    assert_eq!(both.json()["results"][0]["receipt"], one.json(), "a duplicate in wire form too");

    let metrics = get(addr, "/metrics").body;
    assert!(metrics.contains("docket_appends_total{outcome=\"appended\"} 5"), "{metrics}");
    assert!(metrics.contains("docket_appends_total{outcome=\"duplicate\"} 3"), "{metrics}");
    // Every record this server wrote is in one group commit, each with its fdatasync.
    let sample = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(sample("docket_log_group_commit_records_sum"), 5.0, "{metrics}");
    let commits = sample("docket_log_group_commit_records_count");
    assert!((1.0..=5.0).contains(&commits), "{metrics}");
    assert_eq!(sample("docket_log_fsync_duration_seconds_count"), commits);
    for family in [
        "docket_http_request_duration_seconds",
        "docket_append_duration_seconds",
        "docket_log_fsync_duration_seconds",
        "docket_log_group_commit_records",
    ] {
        assert!(metrics.contains(&format!("# TYPE {family} histogram")), "{family}: {metrics}");
        assert!(metrics.contains(&format!("# HELP {family} ")), "{family}");
    }
    for gauge in ["docket_projection_lag_records", "docket_connections_open", "docket_feed_subscribers"] {
        assert!(metrics.contains(&format!("# TYPE {gauge} gauge")), "{gauge}: {metrics}");
    }
    assert!(metrics.contains("docket_build_info{version=\""), "{metrics}");
    assert!(metrics.contains("route=\"/v1/events/batch\""), "requests by route pattern: {metrics}");
    let ready = get(addr, "/readyz").json();
    let names: Vec<&str> = ready["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["log_writable", "checkpoints", "projections", "projection_lag", "inquiries"]);
    for gauge in ["docket_checkpoint_behind_records", "docket_checkpoint_age_seconds", "docket_log_refusing_appends"] {
        assert!(metrics.contains(&format!("# TYPE {gauge} gauge")), "{gauge}: {metrics}");
    }

    // The delta feed: everything as ADD from cursor 0, then exactly the new designation.
    let list = "cn-spc-defaulters";
    let first = get(addr, &format!("/v1/delta?cursor=0&list={list}")).json();
    let public = get(addr, &format!("/v1/views/public?list={list}")).json();
    let changes = first["changes"].as_array().unwrap();
    // Only designations in force are published, so the demo's may all have ended by now.
    assert!(changes.iter().all(|c| c["op"] == "ADD"));
    assert_eq!(changes.len(), public["entries"].as_array().unwrap().len());
    let cursor = first["cursor"].as_u64().unwrap();
    let decision = designation(1, &spc);
    let receipt = post(addr, "/v1/events", &body_of(&decision));
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    let seq = receipt.json()["seq"].as_u64().unwrap();
    assert_eq!(get(addr, &format!("/v1/views/public?min_seq={seq}")).status, 200);
    let next = get(addr, &format!("/v1/delta?cursor={cursor}&list={list}")).json();
    let changes = next["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{next}");
    assert_eq!(changes[0]["op"], "ADD");
    assert_eq!(changes[0]["entry"]["number"], "(2024)京0105执1号");
    // A restoration takes the entry off the public list: the delta says DEL.
    let restoration = CaseAction::Restoration {
        reason: docket_model::event::RestorationReason::ObligationsPerformed,
        statement: "Paid".into(),
    };
    let restored = case_event(1, "spc", &spc, "2026-11-01T09:00:00+08:00", Some(2), restoration);
    let receipt = post(addr, "/v1/events", &body_of(&restored));
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    let seq = receipt.json()["seq"].as_u64().unwrap();
    assert_eq!(get(addr, &format!("/v1/views/public?min_seq={seq}")).status, 200);
    let after = get(addr, &format!("/v1/delta?cursor={}&list={list}", next["cursor"])).json();
    let changes = after["changes"].as_array().unwrap();
    assert_eq!((changes.len(), &changes[0]["op"]), (1, &json!("DEL")), "{after}");
    assert_eq!(get(addr, "/v1/delta?cursor=99999999").code(), "bad_parameter");
}

#[test]
fn every_refusal_has_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let root = demo_ledger(dir.path(), 10);
    // The smallest body that holds a full batch of 4 events of the largest size (wire form).
    let limits = ServerLimits { body_bytes_max: 300_000, batch_events_max: 4, ..ServerLimits::default() };
    let server = start(dir.path(), limits);
    let addr = server.addr;
    let spc = world::key(SEED, "spc");
    let ok = notice(100, "spc", &spc, Some(0), "Failure to pay");
    assert_eq!(post(addr, "/v1/events", &body_of(&ok)).status, 200);

    let mut cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![];
    cases.push(("malformed JSON", b"{\"event\": ".to_vec(), 400, "malformed_json"));
    let mut unknown: Value = serde_json::to_value(notice(101, "spc", &spc, Some(0), "x").to_json()).unwrap();
    unknown["event"]["colour"] = json!("blue");
    cases.push(("unknown field", serde_json::to_vec(&unknown).unwrap(), 422, "invalid_event"));
    let mut forged: Value = serde_json::to_value(notice(102, "spc", &spc, Some(0), "x").to_json()).unwrap();
    forged["event"]["body"]["case"]["action"]["notice"]["matter"] = json!("Something else");
    forged.as_object_mut().unwrap().remove("id");
    cases.push(("bad signature", serde_json::to_vec(&forged).unwrap(), 401, "bad_signature"));
    let railway = world::key(SEED, "china-railway");
    cases.push(("wrong role", body_of(&notice(103, "china-railway", &railway, Some(0), "x")), 403, "not_authorised"));
    let stranger = SigningKey::from_bytes(&[7; 32]);
    cases.push(("unregistered key", body_of(&notice(104, "spc", &stranger, Some(0), "x")), 403, "unknown_key"));
    let stale = notice(100, "spc", &spc, Some(0), "A second notice, written against version 0");
    cases.push(("stale version", body_of(&stale), 409, "stale_version"));
    cases.push(("oversized body", vec![b' '; 300_001], 413, "body_too_large"));
    for (what, body, status, code) in cases {
        let reply = post(addr, "/v1/events", &body);
        assert_eq!((reply.status, reply.code().as_str()), (status, code), "{what}: {}", reply.body);
        assert!(!reply.json()["error"]["message"].as_str().unwrap_or_default().is_empty(), "{what}");
    }
    let octets = "Content-Type: application/octet-stream\r\n";
    let garbage = request(addr, "POST", "/v1/events", b"\x05hello", octets);
    assert_eq!((garbage.status, garbage.code().as_str()), (422, "invalid_event"), "{}", garbage.body);
    let truncated = request(addr, "POST", "/v1/events/batch", &[0, 0, 1], octets);
    assert_eq!((truncated.status, truncated.code().as_str()), (400, "malformed_wire"));
    let overlong = request(addr, "POST", "/v1/events/batch", &[0, 0, 0, 200, 1, 2], octets);
    assert_eq!((overlong.status, overlong.code().as_str()), (400, "malformed_wire"));
    let stale = post(addr, "/v1/events", &body_of(&stale)).json();
    assert_eq!(stale["error"]["actual_version"], 1);
    let unknown = post(addr, "/v1/events", &serde_json::to_vec(&unknown).unwrap()).json();
    assert_eq!(unknown["error"]["field"], "event.colour");

    // A revoked key: the registry root revokes the court's key, then an event signed with it.
    let revoke = registry_event(
        &root,
        RegistryEvent::KeyRevoked {
            agency: Name::parse("spc").unwrap(),
            key: PublicKey(spc.verifying_key().to_bytes()),
            invalid_from: Timestamp::parse("2024-01-01T00:00:00+08:00").unwrap(),
        },
    );
    let revoked = post(addr, "/v1/events", &body_of(&revoke));
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    // Reads are authorised against the projected registry: wait until it holds the revocation.
    let revocation_seq = revoked.json()["seq"].as_u64().unwrap();
    let caught_up = get_as(addr, "china-railway", &format!("/v1/views/registry?min_seq={revocation_seq}"));
    assert_eq!(caught_up.status, 200, "{}", caught_up.body);
    let after = post(addr, "/v1/events", &body_of(&notice(105, "spc", &spc, Some(0), "x")));
    assert_eq!((after.status, after.code().as_str()), (403, "key_revoked"), "{}", after.body);

    // Batches: every event gets its result, in order; 207 when any is refused; and a limit.
    let railway_key = world::key(SEED, "china-railway");
    let batch = json!([
        notice(106, "spc", &stranger, Some(0), "x").to_json(),
        notice(107, "china-railway", &railway_key, Some(0), "x").to_json(),
    ]);
    let reply = post(addr, "/v1/events/batch", &serde_json::to_vec(&batch).unwrap());
    assert_eq!(reply.status, 207, "{}", reply.body);
    let results = reply.json()["results"].clone();
    assert_eq!(results[0]["error"]["code"], "unknown_key");
    assert_eq!(results[1]["error"]["code"], "not_authorised");
    let five: Vec<_> = (0..5).map(|i| notice(200 + i, "spc", &stranger, Some(0), "x").to_json()).collect();
    let reply = post(addr, "/v1/events/batch", &serde_json::to_vec(&five).unwrap());
    assert_eq!((reply.status, reply.code().as_str()), (413, "batch_too_large"));

    // Reads: public ones are open, the others need a signed request.
    assert_eq!(get(addr, "/v1/views/public").status, 200);
    assert_eq!(get(addr, "/v1/views/registry").status, 200);
    let anonymous = get(addr, "/v1/views/enforcement?agency=china-railway");
    assert_eq!((anonymous.status, anonymous.code().as_str()), (401, "unauthenticated"));
    assert_eq!(get(addr, "/v1/feed?cursor=0").code(), "unauthenticated");
    assert_eq!(get(addr, "/v1/audit").code(), "unauthenticated");
    let own = get_as(addr, "china-railway", "/v1/views/enforcement?agency=china-railway");
    assert_eq!(own.status, 200, "{}", own.body);
    let other = get_as(addr, "pboc-credit", "/v1/views/enforcement?agency=china-railway");
    assert_eq!((other.status, other.code().as_str()), (403, "forbidden"));
    let path = "/v1/views/subject?subject=uscc:911100000000001004";
    let signed = |agency: &str, key: &SigningKey, date: &str, path_signed: &str| {
        request(addr, "GET", path, b"", &signed_headers_at(agency, key, "GET", path_signed, date))
    };
    let now = Timestamp::now().to_string();
    let railway = world::key(SEED, "china-railway");
    assert_eq!(signed("china-railway", &railway, &now, path).status, 200);
    assert_eq!(signed("china-railway", &railway, "2020-01-01T00:00:00Z", path).code(), "stale_request");
    assert_eq!(signed("china-railway", &railway, &now, "/v1/views/subject?subject=other").code(), "bad_signature");
    assert_eq!(signed("china-railway", &stranger, &now, path).code(), "unknown_key");
    assert_eq!(signed("spc", &spc, &now, path).code(), "key_revoked");

    assert_eq!(get_as(addr, "china-railway", "/v1/views/nope").code(), "not_found");
    let bad = get_as(addr, "china-railway", "/v1/views/check?subject=bad&measure=restrict-rail");
    assert_eq!((bad.status, bad.code().as_str()), (400, "bad_parameter"));
    assert_eq!(bad.json()["error"]["field"], "subject");
    assert_eq!(get_as(addr, "china-railway", "/v1/views/enforcement").code(), "missing_parameter");
    assert_eq!(get_as(addr, "china-railway", "/v1/views/list?list=no-such-list").status, 404);
    assert_eq!(get_as(addr, "china-railway", "/v1/feed?kind=arrest").code(), "bad_parameter");
    assert_eq!(get_as(addr, "china-railway", "/v1/views/list?colour=blue").code(), "bad_parameter");
}

#[test]
fn sessions_stand_in_for_signatures_until_they_expire_the_key_is_revoked_or_the_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let root = demo_ledger(dir.path(), 5);
    let railway = world::key(SEED, "china-railway");
    let path = "/v1/views/enforcement?agency=china-railway";
    let with_session = |addr, token: &str| with_token(addr, "GET", path, token);
    let token = {
        let server = start(dir.path(), ServerLimits::default());
        let opened = open_session(server.addr, "china-railway", &railway);
        assert_eq!(opened.status, 200, "{}", opened.body);
        assert!(opened.headers.contains("cache-control: no-store"), "{}", opened.headers);
        let token = opened.json()["token"].as_str().unwrap().to_owned();
        assert_eq!(opened.json()["agency"], "china-railway");
        assert_eq!(with_session(server.addr, &token).status, 200);
        // The agency's own view only: the session carries the agency.
        let other = with_token(server.addr, "GET", "/v1/views/enforcement?agency=sat", &token);
        assert_eq!((other.status, other.code().as_str()), (403, "forbidden"));
        // Altered or foreign tokens, and a session asking for a session.
        let mut altered = token.clone().into_bytes();
        let at = 10;
        altered[at] = if altered[at] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(with_session(server.addr, &altered).code(), "bad_session");
        assert_eq!(with_session(server.addr, "v1:garbage").code(), "bad_session");
        let forged = token.replace("china-railway", "sat");
        assert_eq!(with_session(server.addr, &forged).code(), "bad_session");
        let renew = with_token(server.addr, "POST", "/v1/session", &token);
        assert_eq!((renew.status, renew.code().as_str()), (401, "unauthenticated"));
        // The client opens a session for its reads by itself.
        let client = docket_client::Client::new(&format!("http://{}", server.addr))
            .unwrap()
            .with_identity("china-railway", railway.clone());
        assert_eq!(client.get(path).unwrap().status, 200);
        assert!(client.has_session());
        assert_eq!(client.get(path).unwrap().status, 200);
        token
    };
    // A restart draws a new secret: the old token is refused, and the client signs again.
    {
        let server = start(dir.path(), ServerLimits::default());
        assert_eq!(with_session(server.addr, &token).code(), "bad_session");
        // Revoking the key ends its sessions at once.
        let opened = open_session(server.addr, "china-railway", &railway);
        let token = opened.json()["token"].as_str().unwrap().to_owned();
        let revoke = registry_event(
            &root,
            RegistryEvent::KeyRevoked {
                agency: Name::parse("china-railway").unwrap(),
                key: PublicKey(railway.verifying_key().to_bytes()),
                invalid_from: Timestamp::parse("2024-01-01T00:00:00+08:00").unwrap(),
            },
        );
        let revoked = post(server.addr, "/v1/events", &body_of(&revoke));
        assert_eq!(revoked.status, 200, "{}", revoked.body);
        let seq = revoked.json()["seq"].as_u64().unwrap();
        assert_eq!(get(server.addr, &format!("/v1/views/registry?min_seq={seq}")).status, 200);
        let after = with_session(server.addr, &token);
        assert_eq!((after.status, after.code().as_str()), (403, "key_revoked"), "{}", after.body);
    }
    // A session lives `session_s`: with 0 it is expired as soon as it is issued.
    let server = start(dir.path(), ServerLimits { session_s: 0, ..ServerLimits::default() });
    let sat = world::key(SEED, "sat");
    let opened = open_session(server.addr, "sat", &sat);
    let token = opened.json()["token"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(5));
    let expired = with_token(server.addr, "GET", "/v1/views/enforcement?agency=sat", &token);
    assert_eq!((expired.status, expired.code().as_str()), (401, "session_expired"), "{}", expired.body);
}

#[test]
fn appends_are_limited_per_agency_and_forgeries_spend_nothing() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 5);
    let limits = ServerLimits { appends_per_agency_per_s: 1, append_burst: 2, ..ServerLimits::default() };
    let server = start(dir.path(), limits);
    let addr = server.addr;
    let spc = world::key(SEED, "spc");
    let stranger = SigningKey::from_bytes(&[9; 32]);
    for index in 0..5 {
        let forged = post(addr, "/v1/events", &body_of(&notice(500 + index, "spc", &stranger, Some(0), "forged")));
        assert_eq!(forged.code(), "unknown_key");
    }
    for index in 0..2 {
        let reply = post(addr, "/v1/events", &body_of(&notice(510 + index, "spc", &spc, Some(0), "x")));
        assert_eq!(reply.status, 200, "the forgeries spent none of the court's budget: {}", reply.body);
    }
    let over = post(addr, "/v1/events", &body_of(&notice(520, "spc", &spc, Some(0), "x")));
    assert_eq!((over.status, over.code().as_str()), (429, "rate_limited"), "{}", over.body);
    assert!(over.headers.contains("retry-after: 1"), "{}", over.headers);
    // Another agency has its own budget: the registry root appends fine.
    let root = world::build(0, SEED).registry_root;
    let register = registry_event(
        &root,
        RegistryEvent::MeasureCatalogued {
            code: Name::parse("restrict-yachts").unwrap(),
            description: "No yachts".into(),
            authority: docket_model::event::LegalRef { instrument: "A test".into(), article: "art. 1".into() },
            level: docket_model::event::AuthorityLevel::Law,
        },
    );
    let other = post(addr, "/v1/events", &body_of(&register));
    assert_eq!(other.status, 200, "{}", other.body);
}

#[test]
fn witnesses_cosign_the_checkpoint() {
    use docket_log::note::{cosign, verify_cosignature, WitnessKey};
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 5);
    let signing = SigningKey::from_bytes(&[0x31; 32]);
    let witness = WitnessKey::new("witness.example/w1", PublicKey(signing.verifying_key().to_bytes())).unwrap();
    std::fs::write(dir.path().join("witnesses"), format!("# name key\n{} {}\n", witness.name, witness.key.to_hex()))
        .unwrap();
    let server = start(dir.path(), ServerLimits::default());
    let addr = server.addr;
    let note = get(addr, "/v1/checkpoint").body;
    let (text, _) = docket_log::note::parse(&note).unwrap();
    let line = cosign(text, &witness, &signing, 1_764_000_000).unwrap();
    let reply = request(addr, "POST", "/v1/cosignatures", format!("{note}{line}").as_bytes(), "");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["accepted"], json!(["witness.example/w1"]));

    let cosigned = get(addr, "/v1/checkpoint").body;
    let (body, lines) = docket_log::note::parse(&cosigned).unwrap();
    assert_eq!(body, text);
    let line = lines.iter().find(|l| l.name == witness.name).expect("the cosignature is served");
    assert_eq!(verify_cosignature(body, &witness, line), Ok(1_764_000_000));
    let (_, _, log_key) = ledger::read_config(dir.path()).unwrap();
    ledger::open_checkpoint(&cosigned, &log_key).expect("the log's own signature still verifies");

    let forged = cosign(text, &witness, &SigningKey::from_bytes(&[0x32; 32]), 1_764_000_000).unwrap();
    let reply = request(addr, "POST", "/v1/cosignatures", format!("{note}{forged}").as_bytes(), "");
    assert_eq!((reply.status, reply.code().as_str()), (401, "bad_signature"));
    let stranger = WitnessKey::new("other.example/w", PublicKey([5; 32])).unwrap();
    let unknown = cosign(text, &stranger, &SigningKey::from_bytes(&[5; 32]), 1).unwrap();
    let reply = request(addr, "POST", "/v1/cosignatures", format!("{note}{unknown}").as_bytes(), "");
    assert_eq!(reply.code(), "unknown_witness");
    let stale_text = text.replace(&format!("\n{}\n", first_size(text)), "\n1\n");
    let stale_line = cosign(&stale_text, &witness, &signing, 1).unwrap();
    let reply = request(addr, "POST", "/v1/cosignatures", format!("{stale_text}\n{stale_line}").as_bytes(), "");
    assert_eq!(reply.code(), "stale_checkpoint");
}

fn first_size(text: &str) -> String {
    text.lines().nth(1).unwrap().to_owned()
}

#[test]
fn the_feed_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 10);
    let spc = world::key(SEED, "spc");
    let (cursor, first_id) = {
        let server = start(dir.path(), ServerLimits::default());
        let event = notice(300, "spc", &spc, Some(0), "Before the restart");
        assert_eq!(post(server.addr, "/v1/events", &body_of(&event)).status, 200);
        let mut cursor = 0;
        loop {
            let page = get_as(server.addr, "spc", &format!("/v1/feed?cursor={cursor}&limit=1000")).json();
            cursor = page["cursor"].as_u64().unwrap();
            if page["caught_up"] == true {
                break;
            }
        }
        (cursor, event.id().to_string())
    };
    let server = start(dir.path(), ServerLimits::default());
    let addr = server.addr;
    let last = get_as(addr, "spc", &format!("/v1/events/{}", cursor - 1)).json();
    assert_eq!(last["signed"]["id"], first_id, "the last event before the restart is durable");
    let second = notice(301, "spc", &spc, Some(0), "After the restart");
    let third = notice(302, "spc", &spc, Some(0), "After the restart, again");
    for event in [&second, &third] {
        assert_eq!(post(addr, "/v1/events", &body_of(event)).status, 200);
    }
    let page = get_as(addr, "spc", &format!("/v1/feed?cursor={cursor}")).json();
    let ids: Vec<&str> =
        page["events"].as_array().unwrap().iter().map(|e| e["signed"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second.id().to_string(), third.id().to_string()], "nothing missed, nothing out of order");

    // SSE from Last-Event-ID: the two events, then the caught-up marker.
    let (stream, seen) = sse_until_caught_up(addr, "spc", "/v1/feed/sse", &format!("Last-Event-ID: {cursor}\r\n"));
    let second_at = seen.find(&second.id().to_string()).expect("second event");
    let third_at = seen.find(&third.id().to_string()).expect("third event");
    assert!(second_at < third_at, "in order");
    assert!(!seen.contains(&first_id), "nothing before the cursor");
    assert!(seen.contains(&format!("id: {}", cursor + 2)), "{seen}");
    drop(stream);

    // A long poll at the head waits, then returns the next event.
    let waiter = std::thread::spawn(move || {
        get_as(addr, "spc", &format!("/v1/feed?cursor={}&wait_ms=10000", cursor + 2)).json()
    });
    std::thread::sleep(Duration::from_millis(300));
    let fourth = notice(303, "spc", &spc, Some(0), "While someone waits");
    assert_eq!(post(addr, "/v1/events", &body_of(&fourth)).status, 200);
    let page = waiter.join().unwrap();
    assert_eq!(page["events"][0]["signed"]["id"], fourth.id().to_string());
}

#[test]
fn the_openapi_document_is_checked_in_served_and_covers_every_route() {
    let document = docket_server::openapi::document();
    docket_testkit::expect_file("schemas/openapi.json", &(serde_json::to_string_pretty(&document).unwrap() + "\n"));
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 40);
    let server = start(dir.path(), ServerLimits::default());
    let addr = server.addr;
    assert_eq!(get(addr, "/openapi.json").json(), document);
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let path = path.replace("{seq}", "0").replace("{path}", "0/000").replace("{view}", "public");
            let method = method.to_uppercase();
            let reply = request(addr, &method, &path, b"", "");
            // The fallback answers an unrouted path with 404 "no route"; every routed one answers otherwise.
            assert!(!reply.body.contains("no route"), "{method} {path} is documented but not routed");
            // An operation with a security requirement refuses an unsigned request; no other does.
            let refused_unsigned = reply.status == 401 && reply.code() == "unauthenticated";
            let secured = operation.get("security").is_some_and(|s| !s.as_array().unwrap().is_empty());
            assert_eq!(refused_unsigned, secured, "{method} {path}: security {secured}, got {}", reply.status);
        }
    }
    assert!(operations >= 28, "{operations} operations");
}

/// Feed pages from several cursors, page sizes and filters, to the end of the log.
fn feed_reads(addr: std::net::SocketAddr) -> Vec<Value> {
    let mut size = 0;
    loop {
        let page = get_as(addr, "spc", &format!("/v1/feed?cursor={size}&limit=1000")).json();
        size = page["cursor"].as_u64().unwrap();
        if page["caught_up"] == true {
            break;
        }
    }
    let mut reads = vec![];
    for cursor in [0, size.saturating_sub(40), size.saturating_sub(7), size - 1, size, size + 5] {
        for query in
            ["&limit=1000", "&limit=5", "&kind=notice&limit=3", "&kind=designation_decision", "&agency=spc&limit=1000"]
        {
            reads.push(get_as(addr, "spc", &format!("/v1/feed?cursor={cursor}{query}")).json());
        }
    }
    reads
}

#[test]
fn the_feed_reads_the_same_from_its_tail_cache_as_from_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 20);
    let spc = world::key(SEED, "spc");
    // A tail cache of a few records: reads inside it, across its start and
    // behind it, while appends make it fill and evict.
    let tiny = ServerLimits { feed_tail_bytes_max: 8 << 10, ..ServerLimits::default() };
    let cached = {
        let server = start(dir.path(), tiny);
        let before = feed_reads(server.addr);
        for n in 0..3 {
            let event = notice(400 + n, "spc", &spc, Some(0), "Followed from the tail");
            assert_eq!(post(server.addr, "/v1/events", &body_of(&event)).status, 200);
        }
        let after = feed_reads(server.addr);
        assert_ne!(before, after, "the appends are read");
        after
    };
    let uncached =
        feed_reads(start(dir.path(), ServerLimits { feed_tail_bytes_max: 0, ..ServerLimits::default() }).addr);
    let default = feed_reads(start(dir.path(), ServerLimits::default()).addr);
    assert_eq!(cached.len(), uncached.len());
    for (n, (a, b)) in cached.iter().zip(&uncached).enumerate() {
        assert_eq!(a, b, "read {n}: the tail cache and the segments disagree");
    }
    assert_eq!(default, uncached);
}

#[test]
fn healthz_says_when_the_ledgers_keys_are_public() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 2);
    let (config, _, _) = ledger::read_config(dir.path()).unwrap();
    assert!(config.origin.ends_with("-public-keys"), "{}", config.origin);
    let server = start(dir.path(), ServerLimits::default());
    let reply = get(server.addr, "/healthz");
    assert_eq!(reply.status, 200);
    assert!(reply.body.starts_with("warning: this ledger's keys are public"), "{}", reply.body);
    assert!(reply.body.contains("anyone can sign for it") && reply.body.contains(&config.origin), "{}", reply.body);
    assert!(reply.body.ends_with("\nok\n"), "{}", reply.body);
}
