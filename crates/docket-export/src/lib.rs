//! docket's bulk exports: any view, or the event history, at any
//! bitemporal point, as CSV, JSON Lines, FollowTheMoney entities or Parquet,
//! for integrators' own tools (spreadsheets, screening engines, DuckDB,
//! Spark, pandas).
//!
//! * [`table`]: flat tables of typed, nullable columns, the one shape the
//!   tabular formats write.
//! * [`views`]: the views of `docket_fold::views` as tables. Each is the
//!   view itself, computed by docket-fold (so the public list is masked by
//!   the public view's own rules), flattened one row per entry.
//! * [`events`]: the event history from the log, one row per record with
//!   its decoded fields, streamed.
//! * [`ftm`]: the public list as FollowTheMoney entities.
//! * [`write`](mod@write) and [`parquet`](mod@parquet): the sinks.
//! * [`partition`]: the public list or the events as Parquet partitioned
//!   by list and year in the Hive layout (for Spark, Trino, DuckDB, Polars).
//!
//! **Memory.** A view is built in memory by docket-fold, as its JSON answer
//! is; its rows are then written as they are produced. The event history is
//! read from the log record by record. Parquet buffers one row group
//! ([`parquet::ROW_GROUP_ROWS`]); CSV, JSON Lines and FtM one row or entity.

pub mod events;
pub mod ftm;
pub mod parquet;
pub mod partition;
pub mod table;
pub mod views;
pub mod write;

use std::io::Write;
use std::path::Path;

use docket_fold::case::AsOf;
use docket_fold::{FoldError, Store};
use docket_model::{AgencyId, ListId, MeasureCode, SubjectId, Timestamp};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row (RFC 4180).
    Csv,
    /// JSON Lines: one object per row.
    Jsonl,
    /// FollowTheMoney entities, one JSON object per line (the public list only).
    Ftm,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// Every format, in the order help lists them.
    pub const ALL: [Format; 4] = [Format::Csv, Format::Jsonl, Format::Ftm, Format::Parquet];

    /// The name on the command line and in `format=`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Ftm => "ftm",
            Self::Parquet => "parquet",
        }
    }

    /// Parses a format name.
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        Self::ALL.into_iter().find(|f| f.name() == text).ok_or_else(|| ExportError::UnknownFormat(text.to_owned()))
    }

    /// The media type of an export in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8; header=present",
            Self::Jsonl | Self::Ftm => "application/x-ndjson",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The file name extension of an export in this format.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Ftm => "ftm.json",
            Self::Parquet => "parquet",
        }
    }
}

/// What can be exported: the event history or a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Every record of the log, one row per event.
    Events,
    /// The public list (masked), one row per listing.
    Public,
    /// The designating agencies' lists, one row per case.
    List,
    /// A responsible agency's worklist, one row per duty.
    Enforcement,
    /// One subject's cases, one row per case.
    Subject,
    /// A point check, one row per ground (and per application without one).
    Check,
}

impl Table {
    /// Every table, in the order help lists them.
    pub const ALL: [Table; 6] =
        [Table::Events, Table::Public, Table::List, Table::Enforcement, Table::Subject, Table::Check];

    /// The name on the command line and in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Public => "public",
            Self::List => "list",
            Self::Enforcement => "enforcement",
            Self::Subject => "subject",
            Self::Check => "check",
        }
    }

    /// Parses a table name.
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        Self::ALL.into_iter().find(|t| t.name() == text).ok_or_else(|| ExportError::UnknownView(text.to_owned()))
    }
}

/// The parameters views take (as `docket replay` and `/v1/views` do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub agency: Option<AgencyId>,
    pub list: Option<ListId>,
    pub subject: Option<SubjectId>,
    pub measure: Option<MeasureCode>,
    /// The event history only: keep events effective at or before this
    /// valid time (views take their valid time from the point).
    pub effective_by: Option<Timestamp>,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Rows written (FollowTheMoney: entities).
    pub rows: u64,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("unknown format {0:?}; the formats are csv, jsonl, ftm, parquet")]
    UnknownFormat(String),
    #[error("unknown view {0:?}; the exportable views are events, public, list, enforcement, subject, check")]
    UnknownView(String),
    #[error("the {view} view cannot be exported as {}: FollowTheMoney is for the public list", format.name())]
    Unsupported { view: String, format: Format },
    #[error("the {view} view needs {parameter}")]
    Missing { view: &'static str, parameter: &'static str },
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error(transparent)]
    Log(#[from] docket_log::LogError),
    #[error("seq {seq}: the log holds an event that does not decode: {reason}")]
    Decode { seq: u64, reason: String },
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("parquet: {0}")]
    Parquet(String),
    #[error("partitioned export: {0}")]
    Partitions(String),
    #[error("export row: {0}")]
    Row(String),
}

/// Writes `table` at the point `as_of` (filtered by `filter`) to `out` in
/// `format`. The event history reads the log under `ledger` (a ledger
/// directory); the views read `store`.
pub fn export(
    store: &Store,
    ledger: &Path,
    table: Table,
    format: Format,
    as_of: AsOf,
    filter: &Filter,
    out: Box<dyn Write + Send + '_>,
) -> Result<Summary, ExportError> {
    if table == Table::Public {
        let view = docket_fold::views::public_view(store, as_of, filter.list.as_ref())?;
        let registry = docket_fold::Source::registry(store, as_of.known)?;
        return write_public(&view, &registry, format, out);
    }
    let mut sink = write::sink(format, table.name(), columns(table), out)?;
    match table {
        Table::Events => {
            let segments = docket_log::ledger::Paths { dir: ledger.to_owned() }.segments();
            events::rows(&docket_log::Reader::new(segments), as_of.known, filter.effective_by, &mut *sink)?
        }
        view => views::rows(store, view, as_of, filter, &mut *sink)?,
    }
    Ok(Summary { rows: sink.finish()? })
}

/// Writes the public list `view` (computed by the caller, so a server can
/// answer an error before it starts a body) in `format`; `registry` (at the
/// view's point) names agencies and lists for FollowTheMoney.
pub fn write_public(
    view: &docket_fold::views::PublicView,
    registry: &docket_model::Registry,
    format: Format,
    out: Box<dyn Write + Send + '_>,
) -> Result<Summary, ExportError> {
    if format == Format::Ftm {
        return ftm::write(view, registry, out);
    }
    let mut sink = write::sink(format, Table::Public.name(), views::PUBLIC, out)?;
    views::public_rows(view, &mut *sink)?;
    Ok(Summary { rows: sink.finish()? })
}

/// The columns of `table`.
pub fn columns(table: Table) -> &'static [table::Column] {
    match table {
        Table::Events => events::COLUMNS,
        Table::Public => views::PUBLIC,
        Table::List => views::LIST,
        Table::Enforcement => views::ENFORCEMENT,
        Table::Subject => views::SUBJECT,
        Table::Check => views::CHECK,
    }
}
