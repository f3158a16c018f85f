//! `docket replay` and `docket rebuild` end to end on a demo ledger: every
//! view in both formats, as-of by seq and by time, the store caught up after
//! an append, rebuilt when it does not match the log, and clear errors for
//! bad arguments.

mod common;

use common::{docket, json, s, text};

#[test]
fn every_view_prints_in_both_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("demo");
    let l = s(&ledger);
    assert!(docket(&["demo", "--dir", l, "--subjects", "40", "--seed", "2"]).status.success());
    let list = json(&docket(&["replay", "--dir", l, "--view", "list", "--format", "json"]));
    let sections = list["lists"].as_array().expect("lists");
    assert_eq!(sections.len(), 3);
    let entry = &sections[0]["entries"][0];
    let subject = entry["subject"].as_str().expect("subject").to_owned();
    for view in [
        vec!["--view", "list", "--agency", "spc"],
        vec!["--view", "enforcement", "--agency", "china-railway"],
        vec!["--view", "subject", "--subject", &subject],
        vec!["--view", "public"],
        vec!["--view", "check", "--subject", &subject, "--measure", "restrict-air-travel"],
    ] {
        for format in ["table", "json"] {
            let mut args = vec!["replay", "--dir", l, "--format", format];
            args.extend(&view);
            let output = docket(&args);
            assert!(output.status.success(), "{args:?}: {}", text(&output.stderr));
            assert!(text(&output.stdout).contains("as known from") || format == "json", "{args:?}");
        }
    }
    let registry = json(&docket(&["replay", "--dir", l, "--view", "registry", "--as-of", "5"]));
    assert_eq!(registry["as_of"]["known"]["through"], 5);
    let agencies = registry["agencies"].as_object().expect("agencies").len();
    assert!(agencies <= 6, "as of seq 5 at most six registry events are known: {agencies}");
    // As of seq 0 nothing but the first registry event is known.
    let early = json(&docket(&["replay", "--dir", l, "--view", "public", "--as-of", "0", "--format", "json"]));
    assert_eq!(early["entries"].as_array().expect("entries").len(), 0);
    // Only designations in force are published: on 1 January 2025 the demo has many.
    let public =
        json(&docket(&["replay", "--dir", l, "--view", "public", "--valid-at", "2025-01-01", "--format", "json"]));
    assert!(!public["entries"].as_array().expect("entries").is_empty());
    for entry in public["entries"].as_array().expect("entries") {
        let subject = entry["subject"].as_str().expect("subject");
        assert!(subject.starts_with("uscc:") || subject.contains('*'), "masked: {subject}");
    }
}

#[test]
fn the_store_catches_up_and_is_rebuilt_when_it_does_not_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("demo");
    let l = s(&ledger);
    assert!(docket(&["demo", "--dir", l, "--subjects", "20", "--seed", "4"]).status.success());
    let first = docket(&["replay", "--dir", l, "--view", "public"]);
    assert!(first.status.success());
    assert!(ledger.join("views.redb").exists());
    let output = docket(&["rebuild", "--dir", l]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("rebuilt "), "{}", text(&output.stdout));
    // The same store under another ledger's log (another seed: the same seed
    // gives the same log, record times included): its watermark does not match.
    let other = dir.path().join("other");
    assert!(docket(&["demo", "--dir", s(&other), "--subjects", "20", "--seed", "5"]).status.success());
    let own = docket(&["replay", "--dir", s(&other), "--view", "public"]);
    assert!(own.status.success(), "{}", text(&own.stderr));
    std::fs::copy(ledger.join("views.redb"), other.join("views.redb")).expect("copy");
    let output = docket(&["replay", "--dir", s(&other), "--view", "public"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("rebuilt from the log"), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).lines().count(), text(&own.stdout).lines().count());
}

#[test]
fn bad_arguments_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("demo");
    let l = s(&ledger);
    assert!(docket(&["demo", "--dir", l, "--subjects", "5"]).status.success());
    for (args, expected) in [
        (vec!["--view", "enforcement"], "--view enforcement needs --agency"),
        (vec!["--view", "subject", "--subject", "91110105000000001X"], "--subject"),
        (vec!["--view", "list", "--as-of", "999999"], "--as-of \"999999\": the log has"),
        (vec!["--view", "list", "--valid-at", "yesterday"], "--valid-at \"yesterday\""),
        (vec!["--view", "enforcement", "--agency", "nobody"], "agency \"nobody\" not found"),
        (vec!["--view", "list", "--list", "no-such-list"], "list \"no-such-list\" not found"),
        (vec!["--view", "list", "--agency", "nobody"], "agency \"nobody\" not found"),
    ] {
        let mut all = vec!["replay", "--dir", l];
        all.extend(&args);
        let output = docket(&all);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(text(&output.stderr).contains(expected), "{args:?}: {}", text(&output.stderr));
    }
}
