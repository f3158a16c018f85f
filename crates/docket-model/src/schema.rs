//! JSON Schemas of the interchange form, generated from the types so they
//! cannot drift. The checked-in copies under `schemas/` are compared with
//! these by a test; regenerate with `DOCKET_BLESS=1 cargo test -p docket-model --test schemas`.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::event::{Event, EventKind};
use crate::signed::SignedJson;

const BASE: &str = "https://docket.invalid/schemas/";

/// The draft 2020-12 schema of `T`, with its `$id` under docket's base and a title.
pub fn generate<T: schemars::JsonSchema>(id: &str, title: &str) -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Value::Object(object) = &mut schema {
        object.insert("$id".into(), Value::String(format!("{BASE}{id}")));
        object.insert("title".into(), Value::String(title.into()));
    }
    schema
}

/// The signed envelope: `{"event", "signature", "id"}`.
pub fn signed_event() -> Value {
    generate::<SignedJson>("signed-event.schema.json", "docket signed event (JSON interchange form)")
}

/// An event as signed.
pub fn event() -> Value {
    generate::<Event>("event.schema.json", "docket event")
}

/// An event before signing: as [`event`], but `key` may be left out for the signer to fill in.
pub fn unsigned_event() -> Value {
    let mut schema = generate::<Event>("unsigned-event.schema.json", "docket unsigned event (input of `docket sign`)");
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|field| field != "key");
    }
    schema
}

/// The schema of one event kind's body: the variant of `RegistryEvent` or
/// `CaseAction` named after the kind, with every definition it may refer to.
pub fn kind(kind: EventKind) -> Value {
    let whole = event();
    let defs = whole.get("$defs").cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let family = if kind.is_registry() { "RegistryEvent" } else { "CaseAction" };
    let variant = defs[family]["oneOf"]
        .as_array()
        .and_then(|variants| variants.iter().find(|v| v["required"][0] == kind.name()))
        .cloned()
        .unwrap_or_else(|| panic!("schemars emits one oneOf entry per variant; {} is missing", kind.name()));
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{BASE}events/{}.schema.json", kind.name()),
        "title": format!("docket {} body", kind.name()),
        "description": format!("The value of body.{} in a {} event.",
            if kind.is_registry() { "registry" } else { "case.action" }, kind.name()),
    });
    if let (Value::Object(out), Value::Object(variant)) = (&mut schema, variant) {
        out.extend(variant);
        out.insert("$defs".into(), defs);
    }
    schema
}

/// Every schema with its path under `schemas/`.
pub fn all() -> Vec<(String, Value)> {
    let mut out = vec![
        ("signed-event.schema.json".to_owned(), signed_event()),
        ("event.schema.json".to_owned(), event()),
        ("unsigned-event.schema.json".to_owned(), unsigned_event()),
    ];
    for kind in EventKind::ALL {
        out.push((format!("events/{}.schema.json", kind.name()), self::kind(kind)));
    }
    out
}
