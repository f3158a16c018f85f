//! Helpers shared by the audit's integration tests.
#![allow(dead_code)]

use boon::{Compiler, Schemas};
use docket_audit::schema;
use serde_json::Value;

/// Validates `instance` against the schema at `path` under `schemas/`.
pub fn validate(path: &str, instance: &Value) -> Result<(), String> {
    let (_, value) = schema::all().into_iter().find(|(p, _)| p == path).expect("known schema");
    let url = format!("https://docket.invalid/schemas/{path}");
    let mut schemas = Schemas::new();
    let mut compiler = Compiler::new();
    compiler.add_resource(&url, value).expect("schema resource");
    let index = compiler.compile(&url, &mut schemas).expect("schema compiles");
    schemas.validate(instance, index).map_err(|error| format!("{error:#}"))
}
