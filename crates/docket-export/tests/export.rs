//! Golden vectors of every format on a small fixed ledger (the demo of seed
//! 1, 12 subjects, each act recorded on its own day), under
//! `tests/golden/export/` at the workspace root (`DOCKET_BLESS=1` rewrites
//! them), and the exports read back with standard readers: the csv crate's
//! reader and the parquet crate's own.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use docket_export::{export, ExportError, Filter, Format, Table};
use docket_fold::{views, Store};
use docket_model::Name;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;

const SUBJECTS: u64 = 12;

fn run(store: &Store, dir: &Path, table: Table, format: Format, filter: &Filter) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    export(store, dir, table, format, support::point(store), filter, Box::new(&mut out))?;
    Ok(out)
}

/// Compares binary `actual` with the golden file `path` (workspace-relative), or writes it when blessing.
fn expect_bytes(path: &str, actual: &[u8]) {
    let full = docket_testkit::root().join(path);
    if docket_testkit::blessing() {
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&full).unwrap_or_else(|e| panic!("{path}: {e}; run with DOCKET_BLESS=1 to create it"));
    assert!(expected == actual, "{path} differs from what the code produces ({} bytes expected, {} produced); if the format changed on purpose, rerun with DOCKET_BLESS=1", expected.len(), actual.len());
}

#[test]
fn every_format_matches_its_golden_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::fixed_ledger(dir.path(), SUBJECTS);
    let all = Filter::default();
    let spc = Filter { agency: Some(Name::parse("spc").unwrap()), ..Filter::default() };
    let cases: [(Table, Format, &Filter); 9] = [
        (Table::Events, Format::Csv, &all),
        (Table::Events, Format::Jsonl, &all),
        (Table::Events, Format::Parquet, &all),
        (Table::Public, Format::Csv, &all),
        (Table::Public, Format::Jsonl, &all),
        (Table::Public, Format::Ftm, &all),
        (Table::Public, Format::Parquet, &all),
        (Table::List, Format::Csv, &spc),
        (
            Table::Enforcement,
            Format::Jsonl,
            &Filter { agency: Some(Name::parse("china-railway").unwrap()), ..Filter::default() },
        ),
    ];
    for (table, format, filter) in cases {
        let bytes = run(&store, dir.path(), table, format, filter).unwrap();
        let path = format!("tests/golden/export/{}.{}", table.name(), format.extension());
        match format {
            Format::Parquet => expect_bytes(&path, &bytes),
            _ => docket_testkit::expect_file(&path, &String::from_utf8(bytes).unwrap()),
        }
    }
}

#[test]
fn csv_reads_back_with_a_standard_reader_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::fixed_ledger(dir.path(), SUBJECTS);
    let bytes = run(&store, dir.path(), Table::Public, Format::Csv, &Filter::default()).unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let names: Vec<&str> = docket_export::columns(Table::Public).iter().map(|c| c.name).collect();
    assert_eq!(headers, names);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let view = views::public_view(&store, support::point(&store), None).unwrap();
    assert!(!view.entries.is_empty(), "the fixed ledger publishes listings");
    assert_eq!(rows.len(), view.entries.len());
    for (row, entry) in rows.iter().zip(&view.entries) {
        assert_eq!(&row[2], entry.subject.as_str());
        assert_eq!(&row[3], entry.number.as_str(), "case numbers survive quoting");
        assert_eq!(&row[13], entry.decision.to_hex());
    }
    assert!(bytes.windows(2).any(|w| w == b"\r\n"), "RFC 4180 line ends");
}

#[test]
fn parquet_reads_back_with_one_row_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::fixed_ledger(dir.path(), SUBJECTS);
    let bytes = run(&store, dir.path(), Table::Events, Format::Parquet, &Filter::default()).unwrap();
    let path = dir.path().join("events.parquet");
    std::fs::write(&path, bytes).unwrap();
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let metadata = reader.metadata().file_metadata();
    assert_eq!(metadata.num_rows() as u64, store.records());
    let fields: Vec<String> = metadata.schema_descr().columns().iter().map(|c| c.name().to_owned()).collect();
    let names: Vec<&str> = docket_export::columns(Table::Events).iter().map(|c| c.name).collect();
    assert_eq!(fields, names);
    let seqs: Vec<i64> = reader.get_row_iter(None).unwrap().map(|row| row.unwrap().get_long(0).unwrap()).collect();
    assert_eq!(seqs, (0..store.records() as i64).collect::<Vec<_>>());
}

#[test]
fn as_of_a_seq_exports_only_what_was_recorded_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::fixed_ledger(dir.path(), SUBJECTS);
    let mut at = support::point(&store);
    at.known = docket_fold::case::Known::Through(99);
    let mut out = Vec::new();
    export(&store, dir.path(), Table::Events, Format::Jsonl, at, &Filter::default(), Box::new(&mut out)).unwrap();
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 100);
    assert_eq!(lines[99]["seq"], 99);
}

#[test]
fn ftm_is_refused_for_views_other_than_the_public_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::fixed_ledger(dir.path(), SUBJECTS);
    for table in [Table::Events, Table::List] {
        let error = run(&store, dir.path(), table, Format::Ftm, &Filter::default()).unwrap_err();
        assert!(error.to_string().contains("FollowTheMoney is for the public list"), "{error}");
    }
    let error = run(&store, dir.path(), Table::Enforcement, Format::Csv, &Filter::default()).unwrap_err();
    assert_eq!(error.to_string(), "the enforcement view needs an agency");
}
