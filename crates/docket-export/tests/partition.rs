//! The partitioned Parquet export (Hive layout, by list and year) on the
//! fixed ledger of `export.rs`: golden manifests and one golden partition
//! file under `tests/golden/export/` (`DOCKET_BLESS=1` rewrites them); each
//! partition read back with the parquet crate's reader; the counts per
//! partition equal the unpartitioned export's rows grouped by list and year.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use docket_export::partition::{self, Manifest, MANIFEST};
use docket_export::{export, Filter, Format, Table};
use docket_fold::Store;
use docket_model::Name;
use parquet::file::reader::{FileReader, SerializedFileReader};

const SUBJECTS: u64 = 12;

fn partitioned(store: &Store, ledger: &Path, table: Table, filter: &Filter, out: &Path) -> Manifest {
    partition::write(store, ledger, table, support::point(store), filter, out).unwrap()
}

/// The unpartitioned JSON Lines export's rows counted by (list, year of `year_of`).
fn grouped(store: &Store, ledger: &Path, table: Table, year_of: &str) -> BTreeMap<(Option<String>, i32), u64> {
    let mut out = Vec::new();
    export(store, ledger, table, Format::Jsonl, support::point(store), &Filter::default(), Box::new(&mut out)).unwrap();
    let mut counts = BTreeMap::new();
    for line in String::from_utf8(out).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let list = row["list"].as_str().map(str::to_owned);
        // Dates are YYYY-MM-DD and times RFC 3339 in UTC+8: the year is the first four digits.
        let year = row[year_of].as_str().unwrap()[..4].parse().unwrap();
        *counts.entry((list, year)).or_insert(0) += 1;
    }
    counts
}

fn manifest_counts(manifest: &Manifest) -> BTreeMap<(Option<String>, i32), u64> {
    manifest.partitions.iter().map(|p| ((p.list.clone(), p.year), p.rows)).collect()
}

/// Reads every partition's file back: its rows, and its columns (the table's, without `list`).
fn read_back(dir: &Path, table: Table, manifest: &Manifest) {
    let expected: Vec<&str> = docket_export::columns(table).iter().map(|c| c.name).filter(|n| *n != "list").collect();
    for partition in &manifest.partitions {
        let file = std::fs::File::open(dir.join(&partition.path)).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let metadata = reader.metadata().file_metadata();
        assert_eq!(metadata.num_rows() as u64, partition.rows, "{}", partition.path);
        let fields: Vec<String> = metadata.schema_descr().columns().iter().map(|c| c.name().to_owned()).collect();
        assert_eq!(fields, expected, "{}", partition.path);
    }
    let files = walk(dir);
    let mut listed: Vec<String> = manifest.partitions.iter().map(|p| p.path.clone()).collect();
    listed.push(MANIFEST.to_owned());
    listed.sort();
    assert_eq!(files, listed, "the directory holds the partitions and the manifest, nothing else");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_public_list_by_list_and_listing_year_matches_its_golden_vectors_and_the_unpartitioned_export() {
    let ledger = tempfile::tempdir().unwrap();
    let store = support::fixed_ledger(ledger.path(), SUBJECTS);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("public");
    let manifest = partitioned(&store, ledger.path(), Table::Public, &Filter::default(), &dir);
    assert!(manifest.partitions.len() > 1, "the fixed ledger lists on more than one list or year");
    docket_testkit::expect_file("tests/golden/export/partitioned-public.manifest.json", &manifest.to_json());
    let written = std::fs::read_to_string(dir.join(MANIFEST)).unwrap();
    assert_eq!(written, manifest.to_json());
    let first = &manifest.partitions[0];
    let bytes = std::fs::read(dir.join(&first.path)).unwrap();
    let golden = docket_testkit::root().join("tests/golden/export/partitioned-public-first.parquet");
    if docket_testkit::blessing() {
        std::fs::write(&golden, &bytes).unwrap();
    }
    assert!(std::fs::read(&golden).unwrap() == bytes, "{} differs from the golden partition", first.path);
    read_back(&dir, Table::Public, &manifest);
    assert_eq!(manifest_counts(&manifest), grouped(&store, ledger.path(), Table::Public, "listing_date"));
}

#[test]
fn the_events_by_list_and_effective_year_match_the_unpartitioned_export() {
    let ledger = tempfile::tempdir().unwrap();
    let store = support::fixed_ledger(ledger.path(), SUBJECTS);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("events");
    let manifest = partitioned(&store, ledger.path(), Table::Events, &Filter::default(), &dir);
    docket_testkit::expect_file("tests/golden/export/partitioned-events.manifest.json", &manifest.to_json());
    assert_eq!(manifest.rows, store.records(), "every event, once");
    assert!(manifest.partitions.iter().any(|p| p.list.is_none()), "the registry's events have no list");
    read_back(&dir, Table::Events, &manifest);
    assert_eq!(manifest_counts(&manifest), grouped(&store, ledger.path(), Table::Events, "effective_at"));

    let list = manifest.partitions.iter().find_map(|p| p.list.clone()).unwrap();
    let only = Filter { list: Some(Name::parse(&list).unwrap()), ..Filter::default() };
    let one = partitioned(&store, ledger.path(), Table::Events, &only, &out.path().join("one"));
    let expected: Vec<_> = manifest.partitions.iter().filter(|p| p.list.as_deref() == Some(&list)).cloned().collect();
    assert_eq!(one.partitions, expected, "--list keeps that list's partitions, whole");
    read_back(&out.path().join("one"), Table::Events, &one);
}

#[test]
fn a_non_empty_destination_and_the_unpartitioned_views_are_refused() {
    let ledger = tempfile::tempdir().unwrap();
    let store = support::fixed_ledger(ledger.path(), SUBJECTS);
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("stale.parquet"), b"x").unwrap();
    let point = support::point(&store);
    let error =
        partition::write(&store, ledger.path(), Table::Public, point, &Filter::default(), out.path()).unwrap_err();
    assert!(error.to_string().contains("is not empty"), "{error}");
    let fresh = out.path().join("list");
    let error = partition::write(&store, ledger.path(), Table::List, point, &Filter::default(), &fresh).unwrap_err();
    assert!(error.to_string().contains("the list view is not partitioned"), "{error}");
    assert!(!fresh.exists(), "nothing is written for a refused view");
}
