//! Helpers shared by the model's integration tests.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

use docket_model::{golden, PublicKey, SignedEvent};
use serde_json::Value;

pub use docket_testkit::{blessing, expect_file, root};

/// Every example under `schemas/examples/`, sorted by name, as (name, JSON).
pub fn examples() -> Vec<(String, Value)> {
    let dir = root().join("schemas/examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("schemas/examples exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 17, "one example per event kind at least; found {}", paths.len());
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_stem().expect("file name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("readable example");
            (name, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        })
        .collect()
}

/// Signs an unsigned example with the golden key of its signer.
pub fn sign_example(mut json: Value) -> SignedEvent {
    let signer: docket_model::Signer = serde_json::from_value(json["signer"].clone()).expect("signer");
    let key = golden::key_for(&signer);
    json["key"] = serde_json::to_value(PublicKey(key.verifying_key().to_bytes())).expect("key json");
    let event = serde_json::from_value(json).expect("example decodes");
    SignedEvent::sign(event, &key).expect("example signs")
}
