//! The command line's conventions: one `--format` vocabulary (text, alias
//! table; json) on the commands that print, `DOCKET_DIR` for `--dir`,
//! completions and a man page, progress on stderr, and an `init` that
//! writes a usable registry template and leaves nothing behind when it fails.

mod common;

use std::process::Command;

use common::{docket, json, s, text};

fn docket_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_docket")).env("DOCKET_DIR", dir).args(args).output().expect("docket runs")
}

#[test]
fn formats_docket_dir_and_progress() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("demo");
    let demo = docket(&["demo", "--dir", s(&dir), "--subjects", "20", "--format", "json"]);
    let report = json(&demo);
    assert!(report["events"].as_u64().unwrap() > 0, "{report}");
    let stderr = text(&demo.stderr);
    assert!(stderr.contains("demo: building 20 subjects") && stderr.contains("demo: done in"), "{stderr}");

    // DOCKET_DIR stands in for --dir; json everywhere it prints.
    let verified = json(&docket_in(&dir, &["verify", "--format", "json"]));
    assert_eq!((verified["ok"].as_bool(), verified["records"].as_u64()), (Some(true), report["events"].as_u64()));
    let checkpoint = json(&docket_in(&dir, &["checkpoint", "--format", "json"]));
    assert_eq!(checkpoint["size"], report["events"]);
    assert!(checkpoint["note"].as_str().unwrap().starts_with("docket.invalid/demo-1-public-keys\n"));
    let rebuilt = json(&docket_in(&dir, &["rebuild", "--format", "json"]));
    assert_eq!(rebuilt["records"], report["events"]);
    // `table` is another name for `text`.
    let point = ["--as-of", "100", "--valid-at", "2025-01-01"];
    let table = docket_in(&dir, &[&["replay", "--view", "public", "--format", "table"][..], &point].concat());
    let plain = docket_in(&dir, &[&["replay", "--view", "public", "--format", "text"][..], &point].concat());
    assert!(table.status.success(), "{}", text(&table.stderr));
    assert_eq!(table.stdout, plain.stdout);
    let refused = docket_in(&dir, &["verify", "--format", "yaml"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("[possible values: text, json]"), "{}", text(&refused.stderr));
}

#[test]
fn completions_and_man_page() {
    let bash = docket(&["completions", "bash"]);
    assert!(bash.status.success());
    assert!(text(&bash.stdout).contains("_docket()") && text(&bash.stdout).contains("--log-key"));
    let zsh = docket(&["completions", "zsh"]);
    assert!(text(&zsh.stdout).starts_with("#compdef docket"), "{}", text(&zsh.stdout));
    let man = docket(&["man"]);
    assert!(text(&man.stdout).contains(".TH docket 1"), "{}", text(&man.stdout));
    let scratch = tempfile::tempdir().unwrap();
    assert!(docket(&["man", "--out", s(scratch.path())]).status.success());
    let page = std::fs::read_to_string(scratch.path().join("docket-verify.1")).unwrap();
    assert!(page.contains("watch"), "{page}");
}

#[test]
fn every_subcommand_has_an_example_and_every_option_help() {
    let help = docket(&["verify", "--help"]);
    let help = text(&help.stdout);
    assert!(help.contains("Examples:\n  docket verify --dir"), "{help}");
    assert!(help.contains("[env: DOCKET_DIR=]"), "{help}");
}

#[test]
fn init_is_atomic_and_its_registry_template_signs_and_appends() {
    let scratch = tempfile::tempdir().unwrap();
    let ledger = scratch.path().join("ledger");
    // A registry file with a bad line: nothing is left behind, and a retry works.
    let bad = scratch.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"format\": 2}\n").unwrap();
    let failed = docket(&["init", "--dir", s(&ledger), "--registry", s(&bad)]);
    assert_eq!(failed.status.code(), Some(2));
    assert!(text(&failed.stderr).contains("nothing was created"), "{}", text(&failed.stderr));
    assert!(!ledger.exists());
    let left: Vec<_> =
        std::fs::read_dir(scratch.path()).unwrap().filter_map(Result::ok).map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("bad.jsonl")], "no staging directory is left");

    let made = docket(&["init", "--dir", s(&ledger)]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let template = ledger.join("registry-template.jsonl");
    assert!(text(&made.stdout).contains(&format!("{}", template.display())), "names the template");
    // An init over a ledger is refused and changes nothing.
    let again = docket(&["init", "--dir", s(&ledger)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("not empty"), "{}", text(&again.stderr));

    // The template, its keys filled in, signs with the root key and appends.
    let mut filled = std::fs::read_to_string(&template).unwrap();
    for agency in ["spc", "caac"] {
        let key = scratch.path().join(format!("{agency}.key"));
        let out = docket(&["keygen", "--out", s(&key)]);
        let public = text(&out.stdout).split_whitespace().find(|w| w.len() == 64).unwrap().to_owned();
        filled = filled.replace(&format!("PUBLIC-KEY-OF-{agency}"), &public);
    }
    let events = filled.lines().filter(|line| !line.starts_with('#'));
    assert!(!events.clone().any(|line| line.contains("PUBLIC-KEY-OF-")), "every placeholder is filled: {filled}");
    let unsigned = scratch.path().join("registry.jsonl");
    std::fs::write(&unsigned, filled).unwrap();
    let signed = docket(&["sign", "--key", s(&ledger.join("keys/registry-root.key")), s(&unsigned)]);
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    let signed_file = scratch.path().join("registry.signed.jsonl");
    std::fs::write(&signed_file, &signed.stdout).unwrap();
    let appended = docket(&["append", "--dir", s(&ledger), s(&signed_file)]);
    assert!(appended.status.success(), "{}{}", text(&appended.stdout), text(&appended.stderr));
    assert_eq!(text(&appended.stdout).lines().count(), 5, "{}", text(&appended.stdout));
}
