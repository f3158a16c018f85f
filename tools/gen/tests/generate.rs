//! The generator's output depends on the seed only, not on the number of threads;
//! the file reads back event by event, and its counts match the manifest and the truth file.

#![allow(clippy::unwrap_used)]

use docket_gen::{generate, read_wire, Format, Manifest};
use docket_model::SignedEvent;

#[test]
fn same_seed_same_bytes_on_any_number_of_threads() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = generate(one.path(), 20_000, 3, Format::Wire, 1).unwrap();
    let b = generate(two.path(), 20_000, 3, Format::Wire, 3).unwrap();
    assert!(a.events >= 20_000, "reaches the target: {}", a.events);
    assert_eq!(a.events, b.events);
    let bytes = |dir: &std::path::Path| std::fs::read(dir.join("events.wire")).unwrap();
    assert!(bytes(one.path()) == bytes(two.path()), "the same bytes");
    assert_eq!(
        std::fs::read(one.path().join("truth.tsv")).unwrap(),
        std::fs::read(two.path().join("truth.tsv")).unwrap()
    );

    let manifest = Manifest::read(one.path()).unwrap();
    assert_eq!(manifest.events, a.events);
    let mut count = 0u64;
    let read = read_wire(one.path(), |wire| {
        let event = SignedEvent::from_wire(wire).unwrap();
        event.verify().unwrap();
        count += 1;
        true
    })
    .unwrap();
    assert_eq!(read, manifest.events);
    assert_eq!(manifest.by_kind.values().sum::<u64>(), manifest.events);
    let truth = std::fs::read_to_string(one.path().join("truth.tsv")).unwrap();
    assert_eq!(truth.lines().count() as u64, manifest.violations.values().sum::<u64>());
    assert!(manifest.violations.len() >= 10, "most kinds planted in a small run: {:?}", manifest.violations);
}

#[test]
fn a_truncated_file_is_an_error_naming_the_event() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 1_000, 4, Format::Wire, 2).unwrap();
    let path = dir.path().join("events.wire");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let error = read_wire(dir.path(), |_| true).unwrap_err();
    assert!(format!("{error:#}").contains("truncated"), "{error:#}");
}

#[test]
fn json_lines_hold_the_same_events() {
    let (wire, json) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(wire.path(), 2_000, 5, Format::Wire, 2).unwrap();
    generate(json.path(), 2_000, 5, Format::JsonLines, 2).unwrap();
    let mut from_wire = Vec::new();
    read_wire(wire.path(), |w| {
        from_wire.push(SignedEvent::from_wire(w).unwrap().id());
        true
    })
    .unwrap();
    let text = std::fs::read_to_string(json.path().join("events.jsonl")).unwrap();
    let from_json: Vec<_> =
        text.lines().map(|line| SignedEvent::from_json(serde_json::from_str(line).unwrap()).unwrap().id()).collect();
    assert_eq!(from_wire, from_json);
}
