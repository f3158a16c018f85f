//! The exports checked by the tools integrators use (`tests/validate.py`):
//! the `followthemoney` package validates every FtM entity, DuckDB reads
//! the Parquet files (row counts equal to docket's own, a join of events to
//! the public list), Python's csv module reads the CSV.
//!
//! Ignored by `cargo test`: it needs Python with `followthemoney` and
//! `duckdb`, which `.ci/run` installs (pinned) before running it with
//! `--ignored`. The interpreter is `DOCKET_PYTHON`, else `python3`. Without
//! the packages it fails, naming what is missing.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use docket_export::{export, Filter, Format, Table};
use docket_fold::views;

const SUBJECTS: u64 = 60;

#[test]
#[ignore = "needs python with followthemoney and duckdb; .ci/run installs them and runs it"]
fn followthemoney_duckdb_and_csv_accept_the_exports() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");
    let store = support::fixed_ledger(&ledger, SUBJECTS);
    let point = support::point(&store);
    let exports = dir.path().join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    let files = [
        (Table::Public, Format::Ftm, "public.ftm.json"),
        (Table::Events, Format::Parquet, "events.parquet"),
        (Table::Public, Format::Parquet, "public.parquet"),
        (Table::List, Format::Parquet, "list.parquet"),
        (Table::Events, Format::Csv, "events.csv"),
        (Table::Public, Format::Csv, "public.csv"),
    ];
    for (table, format, name) in files {
        let file = std::fs::File::create(exports.join(name)).unwrap();
        export(&store, &ledger, table, format, point, &Filter::default(), Box::new(std::io::BufWriter::new(file)))
            .unwrap();
    }
    // docket's own counts: from its log and its views, not from the exports.
    let public = views::public_view(&store, point, None).unwrap();
    let list = views::list_view(&store, point, None, None).unwrap();
    let subjects: BTreeSet<String> = public
        .entries
        .iter()
        .map(|e| match e.subject.starts_with("uscc:") {
            true => e.subject.clone(),
            false => format!("{}\0{}\0{}", e.list, e.subject, e.number),
        })
        .collect();
    let counts = serde_json::json!({
        "events": store.records(),
        "public": public.entries.len(),
        "public_subjects": subjects.len(),
        "list": list.lists.iter().map(|s| s.entries.len()).sum::<usize>(),
    });
    assert!(public.entries.len() > 10, "the ledger publishes listings: {counts}");
    std::fs::write(exports.join("counts.json"), counts.to_string()).unwrap();
    let python = std::env::var("DOCKET_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = docket_testkit::root().join("crates/docket-export/tests/validate.py");
    let output = Command::new(&python).arg(&script).arg(&exports).output().unwrap_or_else(|e| {
        panic!("running {python}: {e} (set DOCKET_PYTHON to a python with followthemoney and duckdb)")
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "{python} {}: {}\n{stdout}\n{stderr}", script.display(), output.status);
}
