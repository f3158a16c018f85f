//! Helpers shared by the CLI's integration tests: run the real binary, read its output.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `docket` with `args`.
pub fn docket(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_docket")).args(args).output().expect("docket runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path as an argument.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The standard output of a successful run, parsed as JSON.
pub fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("json")
}
