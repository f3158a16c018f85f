//! The `docket` binary end to end: keygen, sign, inspect, id check, on the
//! examples in `schemas/examples/`.

mod common;

use common::{docket, text};

use std::path::{Path, PathBuf};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/examples")
}

/// All examples as one JSON-lines file.
fn examples_jsonl(dir: &Path) -> PathBuf {
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(examples_dir()).expect("examples").map(|e| e.expect("entry").path()).collect();
    names.sort();
    let lines: Vec<String> = names
        .iter()
        .map(|path| {
            let value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
            value.to_string()
        })
        .collect();
    assert!(lines.len() >= 17);
    let path = dir.join("events.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    path
}

fn keygen(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("agency.key");
    let output = docket(&["keygen", "--out", key.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let public = text(&output.stdout).trim().to_owned();
    assert_eq!(public.len(), 64, "public key printed as hex: {public:?}");
    (key, public)
}

#[test]
fn keygen_writes_a_private_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(dir.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(std::fs::read_to_string(&key).expect("read").contains(&format!("public {public}")));
    let again = docket(&["keygen", "--out", key.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));
}

#[test]
fn sign_then_inspect_every_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(dir.path());
    let events = examples_jsonl(dir.path());
    let signed = dir.path().join("signed.jsonl");
    let output = docket(&[
        "sign",
        "--key",
        key.to_str().expect("k"),
        events.to_str().expect("e"),
        "--out",
        signed.to_str().expect("s"),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let signed_text = std::fs::read_to_string(&signed).expect("signed file");
    assert_eq!(signed_text.lines().count(), std::fs::read_to_string(&events).expect("events").lines().count());
    assert!(signed_text.lines().all(|line| line.contains(&public)), "missing keys are filled in with the signing key");

    let output = docket(&["inspect", signed.to_str().expect("s")]);
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    assert!(text(&output.stdout).contains("line 1: ok  agency_registered"));

    // Signing the same input again gives byte-identical output.
    let again = dir.path().join("again.jsonl");
    let output = docket(&[
        "sign",
        "--key",
        key.to_str().expect("k"),
        events.to_str().expect("e"),
        "--out",
        again.to_str().expect("a"),
    ]);
    assert!(output.status.success());
    assert_eq!(std::fs::read(&again).expect("again"), signed_text.as_bytes());

    // A single pretty-printed example file signs too.
    let one = examples_dir().join("notice.json");
    let output = docket(&["sign", "--key", key.to_str().expect("k"), one.to_str().expect("one")]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).lines().count(), 1);
}

#[test]
fn a_one_byte_change_is_a_signature_failure_on_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _) = keygen(dir.path());
    let events = examples_jsonl(dir.path());
    let signed = dir.path().join("signed.jsonl");
    assert!(docket(&[
        "sign",
        "--key",
        key.to_str().expect("k"),
        events.to_str().expect("e"),
        "--out",
        signed.to_str().expect("s")
    ])
    .status
    .success());
    let original = std::fs::read_to_string(&signed).expect("signed");
    let mut lines: Vec<String> = original.lines().map(String::from).collect();
    let target = lines.iter().position(|l| l.contains("\"notice\"")).expect("a notice line");
    // Change one byte inside a value the signature covers; drop the id so only the signature can catch it.
    let mut value: serde_json::Value = serde_json::from_str(&lines[target]).expect("json");
    value.as_object_mut().expect("object").remove("id");
    let changed = value.to_string().replacen("Failure", "Failurf", 1);
    assert_ne!(changed, value.to_string());
    lines[target] = changed;
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, lines.join("\n") + "\n").expect("write");
    let output = docket(&["inspect", tampered.to_str().expect("t")]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    let expected = format!("line {}: FAILED: signature: signature does not verify", target + 1);
    assert!(stdout.contains(&expected), "{stdout}");
    assert_eq!(stdout.matches("FAILED").count(), 1, "only the changed line fails: {stdout}");

    // With the id left in, the same change is caught as an id mismatch on that line.
    let mut lines: Vec<String> = original.lines().map(String::from).collect();
    lines[target] = lines[target].replacen("Failure", "Failurf", 1);
    std::fs::write(&tampered, lines.join("\n") + "\n").expect("write");
    let stdout = text(&docket(&["inspect", tampered.to_str().expect("t")]).stdout);
    assert!(stdout.contains(&format!("line {}: FAILED: id is", target + 1)), "{stdout}");
}

#[test]
fn bad_input_names_the_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _) = keygen(dir.path());
    let input = dir.path().join("bad.jsonl");
    let notice: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(examples_dir().join("notice.json")).expect("read"))
            .expect("json");
    let mut bad_uscc = notice.clone();
    bad_uscc["body"]["case"]["subject"]["uscc"] = "91110105MA01ABCD14".into();
    std::fs::write(&input, format!("# comment\n{notice}\n{bad_uscc}\n")).expect("write");
    let output = docket(&["sign", "--key", key.to_str().expect("k"), input.to_str().expect("i")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("line 3: field body.case.subject.uscc"), "{stderr}");
    assert!(stderr.contains("check character (position 18) is '4', expected '3'"), "{stderr}");
    assert!(text(&output.stdout).is_empty(), "nothing is written for a run with errors");

    let mut long = notice.clone();
    long["body"]["case"]["action"]["notice"]["matter"] = "x".repeat(9000).into();
    std::fs::write(&input, format!("{long}\n")).expect("write");
    let stderr = text(&docket(&["sign", "--key", key.to_str().expect("k"), input.to_str().expect("i")]).stderr);
    assert!(
        stderr.contains("line 1: invalid event: body.case.action.notice.matter: 9000 bytes, more than text_bytes_max"),
        "{stderr}"
    );

    std::fs::write(&input, "{\"format\": 1,\n").expect("write");
    let stderr = text(&docket(&["sign", "--key", key.to_str().expect("k"), input.to_str().expect("i")]).stderr);
    assert!(stderr.contains("line 1:"), "{stderr}");
}

#[test]
fn id_check_reports_kind_birth_date_and_faults() {
    let output = docket(&["id", "check", "91110105MA01ABCD13", "110105198001011238"]);
    assert!(output.status.success(), "{}", text(&output.stdout));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("91110105MA01ABCD13  valid    unified social credit code"), "{stdout}");
    assert!(stdout.contains("born 1980-01-01, male"), "{stdout}");
    let output = docket(&["id", "check", "91110105MA01ABCD13", "9111O105MA01ABCD13"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("9111O105MA01ABCD13  INVALID  unified social credit code: character 5 ('O')"),
        "{}",
        text(&output.stdout)
    );
    let output = docket(&["id", "check", "--format", "json", "110105198001011238"]);
    let value: serde_json::Value = serde_json::from_str(text(&output.stdout).trim()).expect("json");
    assert_eq!(value["birth_date"], "1980-01-01");
}

#[test]
fn help_explains_every_command() {
    let stdout = text(&docket(&["--help"]).stdout);
    for command in ["keygen", "sign", "inspect", "id", "tour"] {
        assert!(stdout.contains(command), "{command} missing from --help: {stdout}");
    }
    assert!(docket(&["tour"]).status.success());
}
