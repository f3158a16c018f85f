//! `docket audit` and `docket deadline` end to end: the report in both
//! formats, scoping by list, agency and as-of, a rule set given by file
//! replacing the bundled one, and clear errors for what cannot run.

mod common;

use common::{docket, json, s, text};

use serde_json::Value;

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings")
}

#[test]
fn audit_reports_scopes_and_takes_rule_sets_from_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("demo");
    let l = s(&ledger);
    assert!(docket(&["demo", "--dir", l, "--subjects", "120", "--seed", "3"]).status.success());

    let all = json(&docket(&["audit", "--dir", l, "--format", "json"]));
    assert_eq!(all["cases"], 120);
    assert!(findings(&all).len() >= 8, "the demo plants violations");
    for used in all["rule_sets"].as_array().expect("rule sets") {
        assert_eq!(used["note"], Value::Null, "the demo publishes the bundled documents' digests: {used}");
    }

    let table = docket(&["audit", "--dir", l]);
    assert!(table.status.success(), "findings do not make the audit fail");
    let out = text(&table.stdout);
    let counts = out.find("RULE ").expect("counts by rule");
    let by_agency = out.find("AGENCY ").expect("counts by agency");
    let first = out.find("\n== ").expect("findings grouped by rule");
    assert!(counts < by_agency && by_agency < first, "counts come first:\n{out}");

    let spc = json(&docket(&["audit", "--dir", l, "--list", "cn-spc-defaulters", "--format", "json"]));
    assert!(!findings(&spc).is_empty());
    assert!(findings(&spc).iter().all(|f| f["list"] == "cn-spc-defaulters"));
    let railway = json(&docket(&["audit", "--dir", l, "--agency", "china-railway", "--format", "json"]));
    assert!(findings(&railway).iter().all(|f| f["agency"] == "china-railway"));
    assert!(findings(&railway).len() < findings(&all).len());

    let early = json(&docket(&["audit", "--dir", l, "--as-of", "0", "--format", "json"]));
    assert_eq!(early["cases"], 0);
    assert!(findings(&early).is_empty());

    // A rule set with a far longer removal period: overdue removals become pending.
    let overdue = |report: &Value| {
        findings(report).iter().filter(|f| f["rule"] == "removal-in-time" && f["status"] == "overdue").count()
    };
    assert!(overdue(&all) > 0);
    let bundled = docket_audit::rules::BUNDLED
        .iter()
        .find_map(|(name, text)| (*name == "cn-spc-defaulters.rules.json").then_some(*text))
        .expect("bundled rule set");
    let mut lenient: Value = serde_json::from_str(bundled).expect("json");
    lenient["removal"] = serde_json::json!({"days": 3000});
    let file = dir.path().join("lenient.rules.json");
    std::fs::write(&file, lenient.to_string()).expect("write");
    let relaxed =
        json(&docket(&["audit", "--dir", l, "--rules", s(&file), "--list", "cn-spc-defaulters", "--format", "json"]));
    assert_eq!(overdue(&relaxed), 0);
    assert!(findings(&relaxed).iter().any(|f| f["rule"] == "removal-in-time" && f["status"] == "pending"));
    let note = relaxed["rule_sets"][0]["note"].as_str().expect("a note");
    assert!(note.contains("digest does not match"), "{note}");

    for (args, wanted) in [
        (vec!["--list", "no-such-list"], "no-such-list"),
        (vec!["--as-of", "999999"], "--as-of \"999999\""),
        (vec!["--rules", "/nonexistent.json"], "--rules /nonexistent.json"),
        (vec!["--calendar", "moon"], "--calendar \"moon\""),
    ] {
        let mut full = vec!["audit", "--dir", l];
        full.extend(&args);
        let output = docket(&full);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(text(&output.stderr).contains(wanted), "{args:?}: {}", text(&output.stderr));
    }
}

#[test]
fn deadline_names_what_it_crossed() {
    // 2024 National Day: 7 working days from Friday 27 September skip 1-7
    // October and count the adjusted working Sunday 29 September and Saturday 12 October.
    let due = json(&docket(&["deadline", "--from", "2024-09-27", "--working-days", "7", "--format", "json"]));
    assert_eq!(due["due"], "2024-10-12");
    assert_eq!(due["provisional"], false);
    assert_eq!(due["holidays_crossed"].as_array().expect("holidays").len(), 7);
    assert_eq!(due["working_days_crossed"], serde_json::json!(["2024-09-29", "2024-10-12"]));
    let table = docket(&["deadline", "--from", "2024-09-27", "--working-days", "7"]);
    assert!(text(&table.stdout).contains("due 2024-10-12 (Sat)"), "{}", text(&table.stdout));

    let late = json(&docket(&["deadline", "--from", "2027-01-27", "--days", "3", "--format", "json"]));
    assert_eq!(late["provisional"], true);
    assert_eq!(late["rolled_from"], "2027-01-30");

    for (args, wanted) in [
        (vec!["--from", "2024-09-27"], "--working-days"),
        (vec!["--from", "27/09/2024", "--days", "3"], "--from \"27/09/2024\""),
        (vec!["--from", "2024-09-27", "--days", "99999"], "longer than"),
    ] {
        let mut full = vec!["deadline"];
        full.extend(&args);
        let output = docket(&full);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(text(&output.stderr).contains(wanted), "{args:?}: {}", text(&output.stderr));
    }
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("demo");
    let l = s(&ledger);
    assert!(docket(&["demo", "--dir", l, "--subjects", "600", "--seed", "4"]).status.success());
    // More than a pipe buffer of output, and a reader that closes the pipe at once (like `| head -0`).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_docket"))
        .args(["audit", "--dir", l, "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docket runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("docket ends");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!text(&output.stderr).contains("panicked"), "{}", text(&output.stderr));
}
