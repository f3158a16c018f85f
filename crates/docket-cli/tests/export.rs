//! `docket export` end to end on a demo ledger: every view in every format
//! it takes, to a file and to standard output, at a point; the public
//! export agrees with `docket replay --view public`; clear refusals, and no
//! partial file left by a failed export.

mod common;

use common::{docket, json, s, text};

#[test]
fn every_view_exports_and_the_public_list_matches_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("demo");
    let l = s(&ledger);
    assert!(docket(&["demo", "--dir", l, "--subjects", "40", "--seed", "2"]).status.success());
    let public =
        json(&docket(&["replay", "--dir", l, "--view", "public", "--valid-at", "2025-01-01", "--format", "json"]));
    let entries = public["entries"].as_array().expect("entries");
    assert!(!entries.is_empty());
    let subject = entries[0]["subject"].as_str().expect("subject").to_owned();
    let views: [&[&str]; 6] = [
        &["--view", "events"],
        &["--view", "public"],
        &["--view", "list", "--agency", "spc"],
        &["--view", "enforcement", "--agency", "china-railway"],
        &["--view", "subject", "--subject", "uscc:91350100M000100Y43"],
        &["--view", "check", "--subject", "uscc:91350100M000100Y43", "--measure", "restrict-air-travel"],
    ];
    for view in views {
        for format in ["csv", "jsonl", "parquet"] {
            let out = dir.path().join(format!("{}.{format}", view[1]));
            let mut args = vec!["export", "--dir", l, "--format", format, "--valid-at", "2025-01-01", "--out", s(&out)];
            args.extend(view);
            let output = docket(&args);
            assert!(output.status.success(), "{args:?}: {}", text(&output.stderr));
            assert!(text(&output.stderr).contains("exported"), "{args:?}");
            assert!(out.exists(), "{args:?}");
        }
    }
    let csv = docket(&["export", "--dir", l, "--view", "public", "--format", "csv", "--valid-at", "2025-01-01"]);
    assert!(csv.status.success());
    let csv = text(&csv.stdout);
    assert_eq!(csv.lines().count(), entries.len() + 1, "a header and a row per listing");
    assert!(csv.contains(&subject), "the same masked subjects as replay");
    let ftm = docket(&["export", "--dir", l, "--view", "public", "--format", "ftm", "--valid-at", "2025-01-01"]);
    let sanctions = text(&ftm.stdout).lines().filter(|line| line.contains("\"schema\":\"Sanction\"")).count();
    assert_eq!(sanctions, entries.len());
}

#[test]
fn refusals_name_the_problem_and_leave_no_partial_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("demo");
    let l = s(&ledger);
    assert!(docket(&["demo", "--dir", l, "--subjects", "5", "--seed", "3"]).status.success());
    let out = dir.path().join("events.ftm.json");
    let ftm = docket(&["export", "--dir", l, "--view", "events", "--format", "ftm", "--out", s(&out)]);
    assert_eq!(ftm.status.code(), Some(2));
    assert!(text(&ftm.stderr).contains("FollowTheMoney is for the public list"), "{}", text(&ftm.stderr));
    assert!(!out.exists());
    let leftovers = std::fs::read_dir(dir.path()).expect("dir").filter_map(Result::ok);
    assert!(leftovers.filter(|e| e.file_name().to_string_lossy().contains("partial")).count() == 0);
    let agency = docket(&["export", "--dir", l, "--view", "enforcement", "--format", "csv"]);
    assert!(text(&agency.stderr).contains("the enforcement view needs an agency"), "{}", text(&agency.stderr));
    let as_of = docket(&["export", "--dir", l, "--view", "public", "--format", "csv", "--as-of", "999999"]);
    assert!(text(&as_of.stderr).contains("--as-of"), "{}", text(&as_of.stderr));
}
