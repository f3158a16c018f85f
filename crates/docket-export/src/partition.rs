//! Partitioned Parquet: the public list or the event history split by list
//! and year, one file per partition, in the Hive layout that Spark, Trino,
//! DuckDB, Polars and pyarrow read as a table with `list` and `year`
//! columns taken from the paths:
//!
//! ```text
//! DEST/list=cn-spc-defaulters/year=2025/part-0.parquet
//! DEST/list=__HIVE_DEFAULT_PARTITION__/year=2024/part-0.parquet   (events without a list)
//! DEST/_manifest.json                                              (written last)
//! ```
//!
//! **Which year.** The public list is partitioned by the year of its
//! `listing_date`, the date the listing took effect as the list publishes
//! it: the one date every row has, which never changes once a listing is
//! made, and the one readers filter by ("who was listed in 2024"). The event
//! history is partitioned by the year of `effective_at` (valid time, in
//! China Standard Time, the ledger's calendar): the year the act took
//! effect in law, which is what analyses of the register's activity count
//! by; the system time (`recorded_at`) is a column for audits of the
//! ledger itself. Both keys are fixed at the row's creation, so re-running
//! an export at a later point only adds rows to a partition or adds
//! partitions, never moves a row between them.
//!
//! The partition columns are not repeated inside the files (Spark refuses
//! a column that is both in the data and in the partition schema). A list
//! name is percent-encoded in its path segment (every byte but ASCII
//! letters, digits, `-`, `.` and `_`), as Hive escapes names and as the
//! readers decode them; an event without a list (the registry's) goes to
//! `__HIVE_DEFAULT_PARTITION__`, which the readers read as null.
//!
//! **Memory.** Every partition's file is open until the end, buffering at
//! most one row group of [`PARTITION_ROW_GROUP_ROWS`] rows; at most
//! [`PARTITIONS_MAX`] partitions.
//!
//! **Public data only where it is public.** The event history carries
//! unmasked identifiers; this module writes where it is told, and the CLI
//! refuses to write the events without an explicit private destination.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::Datelike;
use docket_fold::case::{AsOf, Known};
use docket_fold::Store;
use serde::Serialize;

use crate::parquet::ParquetSink;
use crate::table::{Column, Value};
use crate::write::{check_row, Sink};
use crate::{columns, ExportError, Filter, Table};

/// Rows a partition's file buffers before it writes a row group: with
/// [`PARTITIONS_MAX`] files open, the export's memory limit.
pub const PARTITION_ROW_GROUP_ROWS: usize = 8_192;

/// Most partitions (lists × years) one export writes.
pub const PARTITIONS_MAX: usize = 1_024;

/// The path segment value Hive, Spark and pyarrow read as null.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The manifest's file name: written last, so a reader that finds it knows
/// every partition is complete. Readers skip names starting with `_`.
pub const MANIFEST: &str = "_manifest.json";

/// The manifest's format version.
pub const MANIFEST_FORMAT: u32 = 1;

/// The file name in each partition's directory.
pub const PART_FILE: &str = "part-0.parquet";

/// One partition written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Its path under the destination (`list=L/year=Y/part-0.parquet`).
    pub path: String,
    /// The list (`None`: events without one).
    pub list: Option<String>,
    pub year: i32,
    pub rows: u64,
}

/// What a partitioned export wrote: the manifest's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub format: u32,
    /// `public` or `events`.
    pub table: &'static str,
    /// The column whose year partitions it.
    pub year_of: &'static str,
    /// The point: records known through this seq (`None`: all, or a time).
    pub known_through_seq: Option<u64>,
    /// The point: records known at this time, if given as a time.
    pub known_at: Option<String>,
    /// The point's valid time.
    pub valid_at: String,
    pub rows: u64,
    /// Sorted by path.
    pub partitions: Vec<Partition>,
}

impl Manifest {
    /// The manifest as written: pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// Where a table's partition key is: the `list` column and the column
/// whose year partitions it.
#[derive(Debug, Clone, Copy)]
struct Key {
    list: usize,
    year: usize,
    year_of: &'static str,
}

fn key(table: Table) -> Result<Key, ExportError> {
    let year_of = match table {
        Table::Public => "listing_date",
        Table::Events => "effective_at",
        other => {
            return Err(ExportError::Partitions(format!(
                "the {} view is not partitioned: a partitioned export is of the public list or the events",
                other.name()
            )))
        }
    };
    let position = |name: &str| {
        columns(table)
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| ExportError::Row(format!("the {} table has no {name} column", table.name())))
    };
    Ok(Key { list: position("list")?, year: position(year_of)?, year_of })
}

/// A list name as a Hive path segment value: percent-encoded but for ASCII
/// letters, digits, `-`, `.` and `_`.
pub fn encode_segment(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The path of a partition's file.
pub fn partition_path(list: Option<&str>, year: i32) -> String {
    let list = list.map_or_else(|| NULL_PARTITION.to_owned(), encode_segment);
    format!("list={list}/year={year}/{PART_FILE}")
}

/// Routes rows to one Parquet file per partition under `dir`.
struct Partitioner {
    dir: PathBuf,
    table: Table,
    key: Key,
    /// The table's columns without `list` (the files' schema).
    stored: Vec<Column>,
    open: BTreeMap<(Option<String>, i32), ParquetSink<'static>>,
    /// Only this list's rows (the event history is not filtered as it is read).
    only_list: Option<String>,
}

impl Partitioner {
    fn partition_of(&self, row: &[Value]) -> Result<(Option<String>, i32), ExportError> {
        let list = match &row[self.key.list] {
            Value::Text(list) => Some(list.clone()),
            Value::Null => None,
            other => return Err(ExportError::Row(format!("list column holds {other:?}"))),
        };
        let year = match &row[self.key.year] {
            Value::Date(date) => date.naive().year(),
            Value::Time(time) => time.to_china().year(),
            other => return Err(ExportError::Row(format!("{} holds {other:?}, not a date", self.key.year_of))),
        };
        Ok((list, year))
    }

    fn open(&mut self, list: Option<&str>, year: i32) -> Result<ParquetSink<'static>, ExportError> {
        if self.open.len() >= PARTITIONS_MAX {
            return Err(ExportError::Partitions(format!(
                "more than PARTITIONS_MAX = {PARTITIONS_MAX} partitions (lists × years); export one list at a time \
                 (--list)"
            )));
        }
        let path = self.dir.join(partition_path(list, year));
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)?;
        let file = BufWriter::new(File::create(&path)?);
        ParquetSink::with_row_groups(self.table.name(), &self.stored, PARTITION_ROW_GROUP_ROWS, Box::new(file))
    }

    /// Closes every file (synced); the partitions, sorted by path.
    fn close(self) -> Result<Vec<Partition>, ExportError> {
        let mut partitions = Vec::with_capacity(self.open.len());
        for ((list, year), sink) in self.open {
            let rows = Box::new(sink).finish()?;
            let path = partition_path(list.as_deref(), year);
            File::open(self.dir.join(&path))?.sync_all()?;
            partitions.push(Partition { path, list, year, rows });
        }
        partitions.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(partitions)
    }
}

impl Sink for Partitioner {
    fn row(&mut self, row: &[Value]) -> Result<(), ExportError> {
        check_row(columns(self.table), row)?;
        let partition = self.partition_of(row)?;
        if self.only_list.as_ref().is_some_and(|only| partition.0.as_ref() != Some(only)) {
            return Ok(());
        }
        if !self.open.contains_key(&partition) {
            let sink = self.open(partition.0.as_deref(), partition.1)?;
            self.open.insert(partition.clone(), sink);
        }
        let stored: Vec<Value> =
            row.iter().enumerate().filter(|(at, _)| *at != self.key.list).map(|(_, v)| v.clone()).collect();
        match self.open.get_mut(&partition) {
            Some(sink) => sink.row(&stored),
            None => Err(ExportError::Row("a partition opened and then not found".into())),
        }
    }

    fn finish(self: Box<Self>) -> Result<u64, ExportError> {
        Ok(self.close()?.iter().map(|p| p.rows).sum())
    }
}

/// Writes `table` (the public list or the events) at `as_of`, filtered by
/// `filter`, partitioned by list and year under `dir`, which must not exist
/// or be empty (left-over partitions of another export would be read as
/// part of this one). The manifest is written last. The event history reads
/// the log under `ledger`.
pub fn write(
    store: &Store,
    ledger: &Path,
    table: Table,
    as_of: AsOf,
    filter: &Filter,
    dir: &Path,
) -> Result<Manifest, ExportError> {
    let key = key(table)?;
    if std::fs::read_dir(dir).map(|mut entries| entries.next().is_some()).unwrap_or(false) {
        return Err(ExportError::Partitions(format!(
            "{} is not empty: a partitioned export goes to a new or empty directory, so that no partition of \
             another export is read as part of it",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)?;
    let stored = columns(table).iter().enumerate().filter(|(at, _)| *at != key.list).map(|(_, c)| *c).collect();
    let only_list = filter.list.as_ref().map(|list| list.as_str().to_owned());
    let mut partitioner = Partitioner { dir: dir.to_owned(), table, key, stored, open: BTreeMap::new(), only_list };
    match table {
        Table::Public => {
            let view = docket_fold::views::public_view(store, as_of, filter.list.as_ref())?;
            crate::views::public_rows(&view, &mut partitioner)?;
        }
        _ => {
            let segments = docket_log::ledger::Paths { dir: ledger.to_owned() }.segments();
            let reader = docket_log::Reader::new(segments);
            crate::events::rows(&reader, as_of.known, filter.effective_by, &mut partitioner)?;
        }
    }
    let partitions = partitioner.close()?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        table: table.name(),
        year_of: key.year_of,
        known_through_seq: match as_of.known {
            Known::Through(seq) => Some(seq),
            _ => None,
        },
        known_at: match as_of.known {
            Known::At(time) => Some(time.to_string()),
            _ => None,
        },
        valid_at: as_of.valid_at.to_string(),
        rows: partitions.iter().map(|p| p.rows).sum(),
        partitions,
    };
    let path = dir.join(MANIFEST);
    let mut file = File::create(&path)?;
    file.write_all(manifest.to_json().as_bytes())?;
    file.sync_all()?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_names_are_escaped_as_hive_escapes_them() {
        assert_eq!(encode_segment("cn-spc-defaulters"), "cn-spc-defaulters");
        assert_eq!(encode_segment("a/b=c d%"), "a%2Fb%3Dc%20d%25");
        assert_eq!(encode_segment("名单"), "%E5%90%8D%E5%8D%95");
        assert_eq!(partition_path(Some("x y"), 2025), "list=x%20y/year=2025/part-0.parquet");
        assert_eq!(partition_path(None, 1999), "list=__HIVE_DEFAULT_PARTITION__/year=1999/part-0.parquet");
    }

    #[test]
    fn only_the_public_list_and_the_events_are_partitioned() {
        for table in Table::ALL {
            let partitioned = key(table).is_ok();
            assert_eq!(partitioned, matches!(table, Table::Public | Table::Events), "{}", table.name());
        }
    }
}
