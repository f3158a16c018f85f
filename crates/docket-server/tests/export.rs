//! `GET /v1/export/{view}`: the public list as CSV, JSON Lines, FtM
//! entities and Parquet, streamed, with the public view's masking and at
//! the asked point; refusals of what is not public or not a format.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::{demo_ledger, get, start, unchunked};

use docket_server::ServerLimits;

const POINT: &str = "valid_at=2025-06-01";

#[test]
fn the_public_list_exports_in_every_format_as_the_public_view_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 60);
    let server = start(dir.path(), ServerLimits::default());
    let view = get(server.addr, &format!("/v1/views/public?limit=10000&{POINT}"));
    assert_eq!(view.status, 200);
    let entries: Vec<Value> = view.json()["entries"].as_array().unwrap().clone();
    assert!(entries.len() > 10, "the demo publishes listings");
    let subjects: Vec<&str> = entries.iter().map(|e| e["subject"].as_str().unwrap()).collect();
    assert!(subjects.iter().any(|s| s.contains('*')), "the public view masks persons");

    let csv = get(server.addr, &format!("/v1/export/public?format=csv&{POINT}"));
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(csv.headers.contains("content-type: text/csv"), "{}", csv.headers);
    assert!(csv.headers.contains("content-disposition: attachment; filename=\"public.csv\""));
    let text = String::from_utf8(unchunked(&csv)).unwrap();
    let rows: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), entries.len() + 1, "a header and a row per listing");
    assert!(rows[0].starts_with("list,authority,subject,case_number,"));

    let jsonl = get(server.addr, &format!("/v1/export/public?format=jsonl&{POINT}"));
    assert!(jsonl.headers.contains("content-type: application/x-ndjson"));
    let lines: Vec<Value> =
        String::from_utf8(unchunked(&jsonl)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let exported: Vec<&str> = lines.iter().map(|l| l["subject"].as_str().unwrap()).collect();
    assert_eq!(exported, subjects, "the same listings, masked the same way");

    let ftm = get(server.addr, &format!("/v1/export/public?format=ftm&{POINT}"));
    let entities: Vec<Value> =
        String::from_utf8(unchunked(&ftm)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let sanctions = entities.iter().filter(|e| e["schema"] == "Sanction").count();
    assert_eq!(sanctions, entries.len());
    let unmasked = entities.iter().filter(|e| e["schema"] == "Person").any(|e| !e.to_string().contains('*'));
    assert!(!unmasked, "no person's identifier leaves unmasked");

    let parquet = get(server.addr, &format!("/v1/export/public?format=parquet&{POINT}"));
    assert!(parquet.headers.contains("content-type: application/vnd.apache.parquet"));
    let bytes = unchunked(&parquet);
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"), "a whole Parquet file");
}

/// Compressed, an export ends like any answer: the whole body, then the
/// end of the chunked encoding (the compression layer polls the body once
/// more after its end, which a stream must bear without panicking).
#[test]
fn a_compressed_export_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 30);
    let server = start(dir.path(), ServerLimits::default());
    let plain = unchunked(&get(server.addr, &format!("/v1/export/public?format=csv&{POINT}")));
    let gzip = support::request(
        server.addr,
        "GET",
        &format!("/v1/export/public?format=csv&{POINT}"),
        b"",
        "accept-encoding: gzip\r\n",
    );
    assert_eq!(gzip.status, 200, "{}", gzip.body);
    assert!(gzip.headers.contains("content-encoding: gzip"), "{}", gzip.headers);
    let mut text = vec![];
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&unchunked(&gzip)[..]), &mut text).unwrap();
    assert_eq!(text, plain, "the same CSV, whole");
}

#[test]
fn exports_refuse_what_is_not_public_or_not_a_format_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    demo_ledger(dir.path(), 5);
    let server = start(dir.path(), ServerLimits::default());
    let events = get(server.addr, "/v1/export/events");
    assert_eq!((events.status, events.code()), (404, "not_found".into()));
    assert!(events.body.contains("public"), "{}", events.body);
    let format = get(server.addr, "/v1/export/public?format=xml");
    assert_eq!((format.status, format.code()), (400, "bad_parameter".into()));
    assert_eq!(format.json()["error"]["field"], "format");
    let list = get(server.addr, "/v1/export/public?list=no-such-list");
    assert_eq!(list.status, 404, "{}", list.body);
    let as_of = get(server.addr, "/v1/export/public?as_of=yesterday");
    assert_eq!((as_of.status, as_of.code()), (400, "bad_parameter".into()));
    let unknown = get(server.addr, "/v1/export/public?fromat=csv");
    assert_eq!(unknown.status, 400, "{}", unknown.body);
}
