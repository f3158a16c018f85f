//! The partitioned Parquet export read straight from a real S3 server by a
//! real reader: `docket export --partitioned s3://...` writes the public
//! list and the events of a ledger to SeaweedFS (started by the test), and
//! pyarrow (`tests/analytics.py`: its S3 file system and Hive partitioning,
//! the layout Spark, Trino and Polars read) counts the rows per list and
//! year; the counts equal docket's own, from its unpartitioned export of the
//! same point grouped here. The events go only where the operator says the
//! destination is private.
//!
//! Ignored by `cargo test`: it needs SeaweedFS (`DOCKET_WEED`) and a Python
//! with pyarrow (`DOCKET_PYTHON`), which `.ci/run` installs (pinned) before
//! running it with `--ignored`; without them it fails, naming what is missing.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use common::{s, text};
use docket_testkit::seaweed::Weed;

/// The point's valid time: the demo world's listings are in force then.
const VALID_AT: &str = "2025-06-01T00:00:00+08:00";

/// Rows per (list, year).
type Counts = BTreeMap<(Option<String>, i64), u64>;

/// `docket ARGS` with the test's S3 endpoint and credentials in the environment.
fn with_s3(weed: &Weed, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_docket"))
        .args(args)
        .env("AWS_ENDPOINT", weed.endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "docket-test")
        .env("AWS_SECRET_ACCESS_KEY", "docket-test")
        .output()
        .expect("docket runs")
}

/// docket's own counts: the unpartitioned JSON Lines export of `view` at
/// `as_of`, grouped by list and the year of `year_of` (dates and times are
/// written in China Standard Time: the year is the first four digits).
fn docket_counts(ledger: &str, view: &str, as_of: &str, year_of: &str) -> Counts {
    let mut args = vec!["export", "--dir", ledger, "--view", view, "--format", "jsonl", "--as-of", as_of];
    args.extend(["--valid-at", VALID_AT]);
    let output = common::docket(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut counts = Counts::new();
    for line in text(&output.stdout).lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let list = row["list"].as_str().map(str::to_owned);
        let year = row[year_of].as_str().expect(year_of)[..4].parse().expect("a year");
        *counts.entry((list, year)).or_insert(0) += 1;
    }
    counts
}

fn python() -> String {
    std::env::var("DOCKET_PYTHON").unwrap_or_else(|_| {
        panic!("DOCKET_PYTHON is not set: this test needs a Python with pyarrow (pip install pyarrow); .ci/run installs it")
    })
}

#[test]
#[ignore = "needs SeaweedFS (DOCKET_WEED) and Python with pyarrow (DOCKET_PYTHON); .ci/run installs them and runs this"]
fn pyarrow_reads_the_partitioned_export_from_the_bucket_with_docket_s_counts() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let weed = Weed::start(&scratch.path().join("weed"));
    weed.create_bucket("analytics");
    weed.create_bucket("private");
    let ledger = scratch.path().join("ledger");
    docket_world::write_ledger(&ledger, 60, 1).expect("a ledger");
    let ledger = s(&ledger);
    let size = std::fs::read_to_string(scratch.path().join("ledger/checkpoints/latest")).expect("checkpoint");
    let as_of = (size.lines().nth(1).expect("size").parse::<u64>().expect("size") - 1).to_string();
    let export = |view: &str, to: &str, private: bool| {
        let mut args = vec!["export", "--dir", ledger, "--view", view, "--format", "parquet", "--as-of", &as_of];
        args.extend(["--valid-at", VALID_AT, "--partitioned", to]);
        if private {
            args.push("--destination-is-private");
        }
        with_s3(&weed, &args)
    };

    // The events carry unmasked identifiers: refused unless the destination is said to be private.
    let refused = export("events", "s3://analytics/events", false);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("--destination-is-private"), "{}", text(&refused.stderr));
    for (view, to, private) in [("public", "s3://analytics/public", false), ("events", "s3://private/events", true)] {
        let done = export(view, to, private);
        assert!(done.status.success(), "{view}: {}", text(&done.stderr));
    }
    // A second export to a prefix that holds one is refused (its partitions would mix).
    let again = export("public", "s3://analytics/public", false);
    assert!(text(&again.stderr).contains("holds objects already"), "{}", text(&again.stderr));
    let (status, manifest) = weed.request("GET", "/analytics/public/_manifest.json", b"").expect("manifest");
    assert_eq!(status, 200, "{manifest}");

    let read = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/analytics.py"))
        .args([weed.endpoint().as_str(), "analytics/public", "private/events"])
        .env("AWS_ACCESS_KEY_ID", "docket-test")
        .env("AWS_SECRET_ACCESS_KEY", "docket-test")
        .output()
        .expect("python runs");
    assert!(read.status.success(), "pyarrow failed:\n{}", text(&read.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&read.stdout).expect("JSON from analytics.py");
    let counted = |prefix: &str| -> Counts {
        let dataset = &answer[prefix];
        let columns = dataset["columns"].as_array().expect("columns");
        assert!(columns.iter().any(|c| c == "list") && columns.iter().any(|c| c == "year"), "{dataset}");
        let rows = dataset["counts"].as_array().expect("counts").iter();
        rows.map(|row| {
            let list = row[0].as_str().map(str::to_owned);
            ((list, row[1].as_i64().expect("year")), row[2].as_u64().expect("count"))
        })
        .collect()
    };
    let public = docket_counts(ledger, "public", &as_of, "listing_date");
    assert!(public.len() > 1, "the ledger lists on more than one list or year: {public:?}");
    assert_eq!(counted("analytics/public"), public, "public list: pyarrow's counts against docket's");
    let events = docket_counts(ledger, "events", &as_of, "effective_at");
    assert!(events.keys().any(|(list, _)| list.is_none()), "the registry's events have no list");
    assert_eq!(counted("private/events"), events, "events: pyarrow's counts against docket's");
    assert_eq!(answer["analytics/public"]["files"].as_u64(), Some(public.len() as u64), "one file per partition");
}
