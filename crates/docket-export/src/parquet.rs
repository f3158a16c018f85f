//! Parquet: one flat message per table, every column optional. Text is
//! `BYTE_ARRAY (STRING)`, integers `INT64`, booleans `BOOLEAN`, times
//! `INT64 (TIMESTAMP(MICROS,true))`, dates `INT32 (DATE)`. Snappy pages.
//! Rows are buffered one row group at a time ([`ROW_GROUP_ROWS`]), so memory
//! is bounded whatever the table's length. The writer's `created_by` is
//! `docket-export`, so the bytes depend only on the rows (golden vectors).

use std::io::Write;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::table::{epoch_days, Column, Kind, Value};
use crate::write::{check_row, Sink};
use crate::ExportError;

/// Rows buffered before a row group is written: the Parquet sink's memory
/// limit (about `ROW_GROUP_ROWS` × the widest row).
pub const ROW_GROUP_ROWS: usize = 65_536;

/// What the writer records as `created_by`.
pub const CREATED_BY: &str = "docket-export";

/// The buffered values of one column in the current row group, and the
/// definition level of each row (1: present, 0: null).
enum Buffer {
    Text(Vec<ByteArray>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
    Date(Vec<i32>),
}

struct ColumnBuffer {
    values: Buffer,
    defs: Vec<i16>,
}

/// A Parquet file being written.
pub(crate) struct ParquetSink<'w> {
    columns: Vec<Column>,
    row_group_rows: usize,
    writer: SerializedFileWriter<Box<dyn Write + Send + 'w>>,
    buffers: Vec<ColumnBuffer>,
    buffered: usize,
    rows: u64,
}

fn parquet_error(error: parquet::errors::ParquetError) -> ExportError {
    ExportError::Parquet(error.to_string())
}

/// The message type of a table named `name`.
pub fn schema_text(name: &str, columns: &[Column]) -> String {
    let mut text = format!("message docket_{} {{\n", name.replace('-', "_"));
    for column in columns {
        let field = match column.kind {
            Kind::Text => "BYTE_ARRAY {} (STRING)",
            Kind::Int => "INT64 {}",
            Kind::Bool => "BOOLEAN {}",
            Kind::Time => "INT64 {} (TIMESTAMP(MICROS,true))",
            Kind::Date => "INT32 {} (DATE)",
        };
        text.push_str(&format!("  OPTIONAL {};\n", field.replace("{}", column.name)));
    }
    text.push('}');
    text
}

fn empty(kind: Kind) -> ColumnBuffer {
    let values = match kind {
        Kind::Text => Buffer::Text(vec![]),
        Kind::Int | Kind::Time => Buffer::Int(vec![]),
        Kind::Bool => Buffer::Bool(vec![]),
        Kind::Date => Buffer::Date(vec![]),
    };
    ColumnBuffer { values, defs: vec![] }
}

impl<'w> ParquetSink<'w> {
    /// A file of `columns` whose row groups hold [`ROW_GROUP_ROWS`] rows.
    pub(crate) fn new(name: &str, columns: &[Column], out: Box<dyn Write + Send + 'w>) -> Result<Self, ExportError> {
        Self::with_row_groups(name, columns, ROW_GROUP_ROWS, out)
    }

    /// A file of `columns` whose row groups hold `row_group_rows` rows
    /// (a partitioned export keeps many files open: smaller groups).
    pub(crate) fn with_row_groups(
        name: &str,
        columns: &[Column],
        row_group_rows: usize,
        out: Box<dyn Write + Send + 'w>,
    ) -> Result<Self, ExportError> {
        let schema = parse_message_type(&schema_text(name, columns)).map_err(parquet_error)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(CREATED_BY.to_owned())
            .build();
        let writer = SerializedFileWriter::new(out, Arc::new(schema), Arc::new(properties)).map_err(parquet_error)?;
        let buffers = columns.iter().map(|c| empty(c.kind)).collect();
        let row_group_rows = row_group_rows.max(1);
        Ok(Self { columns: columns.to_vec(), row_group_rows, writer, buffers, buffered: 0, rows: 0 })
    }

    /// Writes the buffered rows as one row group.
    fn flush_group(&mut self) -> Result<(), ExportError> {
        if self.buffered == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group().map_err(parquet_error)?;
        let mut index = 0;
        while let Some(mut column) = group.next_column().map_err(parquet_error)? {
            let buffer = self.buffers.get(index).ok_or_else(|| ExportError::Row("more Parquet columns".into()))?;
            let defs = Some(buffer.defs.as_slice());
            let written = match (column.untyped(), &buffer.values) {
                (ColumnWriter::ByteArrayColumnWriter(w), Buffer::Text(v)) => w.write_batch(v, defs, None),
                (ColumnWriter::Int64ColumnWriter(w), Buffer::Int(v)) => w.write_batch(v, defs, None),
                (ColumnWriter::BoolColumnWriter(w), Buffer::Bool(v)) => w.write_batch(v, defs, None),
                (ColumnWriter::Int32ColumnWriter(w), Buffer::Date(v)) => w.write_batch(v, defs, None),
                _ => return Err(ExportError::Row(format!("Parquet column {index}: type mismatch"))),
            };
            written.map_err(parquet_error)?;
            column.close().map_err(parquet_error)?;
            index += 1;
        }
        group.close().map_err(parquet_error)?;
        for (buffer, column) in self.buffers.iter_mut().zip(&self.columns) {
            *buffer = empty(column.kind);
        }
        self.buffered = 0;
        Ok(())
    }
}

impl Sink for ParquetSink<'_> {
    fn row(&mut self, row: &[Value]) -> Result<(), ExportError> {
        check_row(&self.columns, row)?;
        for (buffer, value) in self.buffers.iter_mut().zip(row) {
            let present = !matches!(value, Value::Null);
            buffer.defs.push(i16::from(present));
            match (&mut buffer.values, value) {
                (_, Value::Null) => {}
                (Buffer::Text(v), Value::Text(text)) => v.push(ByteArray::from(text.as_bytes().to_vec())),
                (Buffer::Int(v), Value::Int(int)) => v.push(*int),
                (Buffer::Int(v), Value::Time(time)) => v.push(time.micros()),
                (Buffer::Bool(v), Value::Bool(flag)) => v.push(*flag),
                (Buffer::Date(v), Value::Date(date)) => v.push(epoch_days(*date)),
                (_, other) => return Err(ExportError::Row(format!("{other:?} in a Parquet buffer of another type"))),
            }
        }
        self.buffered += 1;
        self.rows += 1;
        if self.buffered >= self.row_group_rows {
            self.flush_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<u64, ExportError> {
        self.flush_group()?;
        let rows = self.rows;
        let mut out = self.writer.into_inner().map_err(parquet_error)?;
        out.flush()?;
        Ok(rows)
    }
}
