//! Sinks: where rows go. CSV (RFC 4180, header row, CRLF), JSON Lines (one
//! object per row, keys in column order) and Parquet (see [`crate::parquet`]).
//! Every sink streams: CSV and JSON Lines hold one row, Parquet one row
//! group ([`crate::parquet::ROW_GROUP_ROWS`]).

use std::io::Write;

use crate::table::{Column, Kind, Value};
use crate::{ExportError, Format};

/// Takes rows of one table and writes them out.
pub trait Sink {
    /// Writes one row; its values are in the table's column order.
    fn row(&mut self, row: &[Value]) -> Result<(), ExportError>;
    /// Writes what is buffered and any trailer; returns the rows written.
    fn finish(self: Box<Self>) -> Result<u64, ExportError>;
}

/// A sink writing `columns` to `out` in `format` (CSV, JSON Lines or
/// Parquet; FollowTheMoney is not a table: see [`crate::ftm`]).
pub fn sink<'w>(
    format: Format,
    name: &str,
    columns: &'static [Column],
    out: Box<dyn Write + Send + 'w>,
) -> Result<Box<dyn Sink + 'w>, ExportError> {
    Ok(match format {
        Format::Csv => Box::new(CsvSink::new(columns, out)?),
        Format::Jsonl => Box::new(JsonlSink { columns, out, rows: 0, line: String::new() }),
        Format::Parquet => Box::new(crate::parquet::ParquetSink::new(name, columns, out)?),
        Format::Ftm => return Err(ExportError::Unsupported { view: name.to_owned(), format }),
    })
}

/// Checks that `row` has one value per column, each of its column's type:
/// a mismatch is a bug in the table's definition, reported, never a panic.
pub(crate) fn check_row(columns: &[Column], row: &[Value]) -> Result<(), ExportError> {
    if row.len() != columns.len() {
        return Err(ExportError::Row(format!("{} values for {} columns", row.len(), columns.len())));
    }
    match columns.iter().zip(row).find(|(column, value)| !value.fits(column.kind)) {
        Some((column, value)) => {
            Err(ExportError::Row(format!("column {}: {value:?} is not {:?}", column.name, column.kind)))
        }
        None => Ok(()),
    }
}

/// CSV with a header row, quoted where RFC 4180 needs it, CRLF line ends;
/// null is an empty field.
struct CsvSink<'w> {
    columns: &'static [Column],
    writer: csv::Writer<Box<dyn Write + Send + 'w>>,
    rows: u64,
}

impl<'w> CsvSink<'w> {
    fn new(columns: &'static [Column], out: Box<dyn Write + Send + 'w>) -> Result<Self, ExportError> {
        let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
        writer.write_record(columns.iter().map(|c| c.name)).map_err(csv_error)?;
        Ok(Self { columns, writer, rows: 0 })
    }
}

fn csv_error(error: csv::Error) -> ExportError {
    match error.into_kind() {
        csv::ErrorKind::Io(io) => ExportError::Io(io),
        other => ExportError::Row(format!("csv: {other:?}")),
    }
}

impl Sink for CsvSink<'_> {
    fn row(&mut self, row: &[Value]) -> Result<(), ExportError> {
        check_row(self.columns, row)?;
        self.writer.write_record(row.iter().map(|v| v.display().unwrap_or_default())).map_err(csv_error)?;
        self.rows += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<u64, ExportError> {
        self.writer.flush()?;
        Ok(self.rows)
    }
}

/// One JSON object per line, keys in column order: integers and booleans
/// as JSON numbers and booleans, times and dates as strings, null as `null`.
struct JsonlSink<'w> {
    columns: &'static [Column],
    out: Box<dyn Write + Send + 'w>,
    rows: u64,
    line: String,
}

impl Sink for JsonlSink<'_> {
    fn row(&mut self, row: &[Value]) -> Result<(), ExportError> {
        check_row(self.columns, row)?;
        self.line.clear();
        self.line.push('{');
        for (index, (column, value)) in self.columns.iter().zip(row).enumerate() {
            if index > 0 {
                self.line.push(',');
            }
            self.line.push_str(&json_string(column.name));
            self.line.push(':');
            self.line.push_str(&json_value(column.kind, value));
        }
        self.line.push_str("}\n");
        self.out.write_all(self.line.as_bytes())?;
        self.rows += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<u64, ExportError> {
        self.out.flush()?;
        Ok(self.rows)
    }
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn json_value(kind: Kind, value: &Value) -> String {
    match (kind, value) {
        (_, Value::Int(int)) => int.to_string(),
        (_, Value::Bool(flag)) => flag.to_string(),
        (_, other) => other.display().map_or_else(|| "null".to_owned(), |text| json_string(&text)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::table::column;

    const COLUMNS: &[Column] = &[column("text", Kind::Text), column("count", Kind::Int), column("flag", Kind::Bool)];

    fn written(format: Format, rows: &[Vec<Value>]) -> String {
        let mut out = Vec::new();
        let mut sink = sink(format, "test", COLUMNS, Box::new(&mut out)).unwrap();
        for row in rows {
            sink.row(row).unwrap();
        }
        assert_eq!(sink.finish().unwrap(), rows.len() as u64);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quotes_as_rfc_4180_asks_and_reads_back() {
        let awkward = "a,\"b\"\r\nc";
        let rows = vec![vec![Value::text(awkward), Value::Int(-3), Value::Null]];
        let text = written(Format::Csv, &rows);
        assert_eq!(text, "text,count,flag\r\n\"a,\"\"b\"\"\r\nc\",-3,\r\n");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[0], awkward);
        assert_eq!(&record[2], "", "null is an empty field");
    }

    #[test]
    fn json_lines_escape_text_and_type_numbers_booleans_and_null() {
        let rows = vec![vec![Value::text("quote \" and\nnewline"), Value::Int(7), Value::Bool(true)]];
        let text = written(Format::Jsonl, &rows);
        assert_eq!(text, "{\"text\":\"quote \\\" and\\nnewline\",\"count\":7,\"flag\":true}\n");
        let parsed: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(parsed["text"], "quote \" and\nnewline");
    }

    #[test]
    fn a_row_of_the_wrong_shape_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        let mut sink = sink(Format::Parquet, "test", COLUMNS, Box::new(&mut out)).unwrap();
        let short = sink.row(&[Value::Null]).unwrap_err();
        assert!(short.to_string().contains("1 values for 3 columns"), "{short}");
        let mistyped = sink.row(&[Value::Int(1), Value::Int(2), Value::Bool(false)]).unwrap_err();
        assert!(mistyped.to_string().contains("column text"), "{mistyped}");
    }
}
