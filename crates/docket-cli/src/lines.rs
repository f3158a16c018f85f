//! Reading JSON lines with errors that name the line and the field.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

/// Longest accepted input line: a maximal event in JSON is well under this.
pub const LINE_BYTES_MAX: usize = 1024 * 1024;

/// Opens a file, or standard input for `None` or "-".
pub fn open(input: Option<&Path>) -> Result<(String, Box<dyn Read>)> {
    match input {
        None => Ok(("<stdin>".into(), Box::new(std::io::stdin()))),
        Some(path) if path.as_os_str() == "-" => Ok(("<stdin>".into(), Box::new(std::io::stdin()))),
        Some(path) => {
            let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            Ok((path.display().to_string(), Box::new(file)))
        }
    }
}

/// One record of the input: its first line number and text.
pub struct Record {
    pub line: usize,
    pub text: String,
}

/// Splits input into records: one per non-blank, non-comment line; or, if the
/// whole input is a single pretty-printed JSON document, that document.
pub fn records(name: &str, input: impl Read) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut all = String::new();
    for (index, line) in BufReader::new(input).lines().enumerate() {
        let line = line.with_context(|| format!("{name}: line {}: cannot read (not UTF-8?)", index + 1))?;
        if line.len() > LINE_BYTES_MAX {
            anyhow::bail!(
                "{name}: line {}: {} bytes, more than line_bytes_max = {LINE_BYTES_MAX}",
                index + 1,
                line.len()
            );
        }
        all.push_str(&line);
        all.push('\n');
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            out.push(Record { line: index + 1, text: line });
        }
    }
    let pretty = out.first().is_some_and(|first| first.text.trim() == "{") && out.len() > 1;
    if pretty {
        let first = out[0].line;
        return Ok(vec![Record { line: first, text: all }]);
    }
    Ok(out)
}

/// Parses JSON into `T`, naming the field path on error.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let deserializer = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("field {path}: {inner}")
        }
    })
}
