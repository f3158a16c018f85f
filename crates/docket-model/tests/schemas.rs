//! The JSON Schemas under `schemas/` are what the types generate, and they
//! accept the real examples and refuse broken ones (checked with boon, an
//! independent validator, not with serde).

mod common;

use boon::{Compiler, Schemas};
use docket_model::{schema, EventKind};
use serde_json::Value;

#[test]
fn checked_in_schemas_match_the_types() {
    for (path, value) in schema::all() {
        let text = serde_json::to_string_pretty(&value).expect("json") + "\n";
        common::expect_file(&format!("schemas/{path}"), &text);
    }
}

struct Validator {
    schemas: Schemas,
    compiled: Vec<(String, boon::SchemaIndex)>,
}

impl Validator {
    fn new() -> Self {
        let mut schemas = Schemas::new();
        let mut compiler = Compiler::new();
        let mut compiled = Vec::new();
        for (path, value) in schema::all() {
            let url = format!("https://docket.invalid/schemas/{path}");
            compiler.add_resource(&url, value).expect("schema resource");
            compiled.push((path, compiler.compile(&url, &mut schemas).expect("schema compiles")));
        }
        Self { schemas, compiled }
    }

    fn check(&self, path: &str, instance: &Value) -> Result<(), String> {
        let (_, index) = self.compiled.iter().find(|(p, _)| p == path).expect("known schema");
        self.schemas.validate(instance, *index).map_err(|error| format!("{error:#}"))
    }
}

fn kind_of(example: &Value) -> (String, Value) {
    let body = &example["body"];
    let inner = if body.get("registry").is_some() { &body["registry"] } else { &body["case"]["action"] };
    let object = inner.as_object().expect("variant object");
    let (name, _) = object.iter().next().expect("one variant");
    (name.clone(), inner.clone())
}

#[test]
fn examples_validate_against_their_schemas() {
    let validator = Validator::new();
    let mut kinds_seen = std::collections::BTreeSet::new();
    for (name, unsigned) in common::examples() {
        validator.check("unsigned-event.schema.json", &unsigned).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (kind, body) = kind_of(&unsigned);
        validator.check(&format!("events/{kind}.schema.json"), &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let signed = serde_json::to_value(common::sign_example(unsigned).to_json()).expect("json");
        validator.check("signed-event.schema.json", &signed).unwrap_or_else(|e| panic!("{name}: {e}"));
        validator.check("event.schema.json", &signed["event"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        kinds_seen.insert(kind);
    }
    let all: std::collections::BTreeSet<String> = EventKind::ALL.iter().map(|k| k.name().to_owned()).collect();
    assert_eq!(kinds_seen, all, "every event kind has an example");
}

#[test]
fn schemas_refuse_broken_events() {
    let validator = Validator::new();
    let (_, example) = common::examples().into_iter().find(|(n, _)| n == "notice").expect("notice example");
    let signed = serde_json::to_value(common::sign_example(example.clone()).to_json()).expect("json");
    type Breakage = Box<dyn Fn(&mut Value)>;
    let breakages: Vec<(&str, Breakage)> = vec![
        ("missing effective_at", Box::new(|v| drop(v.as_object_mut().map(|o| o.remove("effective_at"))))),
        ("unknown field", Box::new(|v| v["colour"] = "blue".into())),
        ("bad timestamp", Box::new(|v| v["effective_at"] = "yesterday".into())),
        ("bad uscc alphabet", Box::new(|v| v["body"]["case"]["subject"]["uscc"] = "91110105MA01ABCDI3".into())),
        ("unknown kind", Box::new(|v| v["body"]["case"]["action"] = serde_json::json!({"arrest": {}}))),
        ("bad method", Box::new(|v| v["body"]["case"]["action"]["notice"]["method"] = "pigeon".into())),
        ("signer both", Box::new(|v| v["signer"] = serde_json::json!({"agency": "spc", "x": 1}))),
    ];
    for (what, breakage) in breakages {
        let mut broken = signed["event"].clone();
        breakage(&mut broken);
        assert!(validator.check("event.schema.json", &broken).is_err(), "schema accepted an event with {what}");
    }
    let mut no_signature = signed.clone();
    no_signature.as_object_mut().expect("object").remove("signature");
    assert!(validator.check("signed-event.schema.json", &no_signature).is_err());
}
