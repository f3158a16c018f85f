//! Test support shared by docket's crates (a dev-dependency only).
//!
//! * [`expect_file`]: golden files under the workspace root, rewritten with `DOCKET_BLESS=1`.
//! * [`scenario`]: builds a real ledger from a scenario data file
//!   (`tests/scenarios/` and `tests/audit-scenarios/`).
//! * [`seaweed`]: a real S3-compatible server (SeaweedFS) started for a test.

// Test support panics on broken fixtures, as the tests themselves do.
#![allow(clippy::unwrap_used)]

pub mod scenario;
pub mod seaweed;

use std::path::PathBuf;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the test should rewrite its expected files instead of comparing.
pub fn blessing() -> bool {
    std::env::var_os("DOCKET_BLESS").is_some()
}

/// Compares `actual` with the file at `path` (relative to the workspace root),
/// or writes it when blessing. Panics with both texts when they differ.
pub fn expect_file(path: &str, actual: &str) {
    let full = root().join(path);
    if blessing() {
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(&full, actual).expect("write expected file");
        return;
    }
    let expected =
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}; run with DOCKET_BLESS=1 to create it"));
    assert!(
        expected == actual,
        "{path} differs from what the code produces.\n\
         If the format changed on purpose, bump its version and rerun with DOCKET_BLESS=1.\n\
         --- expected\n{expected}\n--- actual\n{actual}"
    );
}
