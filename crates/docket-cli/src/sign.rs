//! `docket sign` and `docket inspect`.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use docket_model::{Event, PublicKey, SignedEvent, SignedJson};
use serde_json::Value;

use crate::lines;
use crate::Format;

/// Signs one unsigned event given as JSON text; fills in a missing "key".
pub fn sign_line(text: &str, key: &ed25519_dalek::SigningKey) -> Result<SignedEvent, String> {
    let mut value: Value = lines::parse(text)?;
    let public = PublicKey(key.verifying_key().to_bytes());
    if let Some(object) = value.as_object_mut() {
        object.entry("key").or_insert_with(|| Value::String(public.to_hex()));
    }
    let event: Event = lines::parse(&value.to_string())?;
    SignedEvent::sign(event, key).map_err(|error| error.to_string())
}

pub fn sign(key_path: &Path, input: Option<&Path>, out: Option<&Path>) -> Result<bool> {
    let key = crate::keys::read(key_path)?;
    let (name, reader) = lines::open(input)?;
    let mut output = String::new();
    let mut count = 0usize;
    for record in lines::records(&name, reader)? {
        let signed =
            sign_line(&record.text, &key).map_err(|error| anyhow::anyhow!("{name}: line {}: {error}", record.line))?;
        let json = serde_json::to_string(&signed.to_json()).context("serialising a signed event")?;
        writeln!(output, "{json}").context("formatting")?;
        count += 1;
    }
    match out {
        Some(path) => std::fs::write(path, output).with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(output.as_bytes()).context("writing standard output")?,
    }
    eprintln!("signed {count} event(s) from {name}");
    Ok(true)
}

/// Parses one signed event given as JSON text: form and id, not the signature.
pub fn parse_signed(text: &str) -> Result<SignedEvent, String> {
    let json: SignedJson = lines::parse(text)?;
    SignedEvent::from_json(json).map_err(|error| error.to_string())
}

/// Checks one signed event given as JSON text: form, id, signature.
pub fn check_line(text: &str) -> Result<SignedEvent, String> {
    let signed = parse_signed(text)?;
    signed.verify().map_err(|error| format!("signature: {error}"))?;
    Ok(signed)
}

pub fn inspect(input: Option<&Path>, format: Format) -> Result<bool> {
    let (name, reader) = lines::open(input)?;
    let records = lines::records(&name, reader)?;
    if records.is_empty() {
        bail!("{name}: no events (every line is blank or a comment)");
    }
    let mut failures = 0usize;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for record in &records {
        let line = record.line;
        let result = check_line(&record.text);
        let text = match (&result, format) {
            (Ok(signed), Format::Text) => describe(line, signed),
            (Err(error), Format::Text) => format!("{name}: line {line}: FAILED: {error}\n"),
            (Ok(signed), Format::Json) => serde_json::json!({
                "line": line, "ok": true, "id": signed.id(), "kind": signed.event().kind().name(), "event": signed.event()
            })
            .to_string() + "\n",
            (Err(error), Format::Json) => serde_json::json!({"line": line, "ok": false, "error": error}).to_string() + "\n",
        };
        if result.is_err() {
            failures += 1;
        }
        out.write_all(text.as_bytes()).context("writing standard output")?;
    }
    eprintln!("{name}: {} event(s), {} verified, {failures} failed", records.len(), records.len() - failures);
    Ok(failures == 0)
}

/// A readable rendering: a header line, then the body as indented key: value lines.
fn describe(line: usize, signed: &SignedEvent) -> String {
    let event = signed.event();
    let signer = match &event.signer {
        docket_model::Signer::Registry => "registry root".to_owned(),
        docket_model::Signer::Agency(agency) => format!("agency {agency}"),
    };
    let mut text = format!(
        "line {line}: ok  {}\n  id         {}\n  signed by  {signer} (key {}…)\n  effective  {}\n",
        event.kind().name(),
        signed.id(),
        &event.key.to_hex()[..16],
        event.effective_at,
    );
    let body = serde_json::to_value(&event.body).unwrap_or(Value::Null);
    let inner = match event.case() {
        Some(case) => {
            let _ = writeln!(text, "  case       {} / {} / {}", case.list, case.subject, case.number);
            if let Some(version) = case.expected_version {
                let _ = writeln!(text, "  expects    case version {version}");
            }
            body["case"]["action"].as_object().and_then(|o| o.values().next()).cloned()
        }
        None => body["registry"].as_object().and_then(|o| o.values().next()).cloned(),
    };
    if let Some(inner) = inner {
        render(&mut text, &inner, 2);
    }
    text
}

fn render(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                match value {
                    Value::Object(_) | Value::Array(_) if !is_flat(value) => {
                        let _ = writeln!(out, "{pad}{key}:");
                        render(out, value, indent + 2);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}{key}: {}", scalar(value));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_flat(item) {
                    let _ = writeln!(out, "{pad}- {}", scalar(item));
                } else {
                    let _ = writeln!(out, "{pad}-");
                    render(out, item, indent + 2);
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other));
        }
    }
}

fn is_flat(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(object) => object.is_empty(),
        _ => true,
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "(none)".into(),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
        other => other.to_string(),
    }
}
