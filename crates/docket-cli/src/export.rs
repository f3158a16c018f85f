//! `docket export`: a view or the event history, at any bitemporal point,
//! as CSV, JSON Lines, FollowTheMoney entities or Parquet (docket-export).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;

use docket_export::{Filter, Format, Table};

use crate::replay::{name, open_store, parse_subject, parse_time, resolve};

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportView {
    /// Every record of the log, one row per event, decoded (unmasked).
    Events,
    /// The public list, masked (the only view FollowTheMoney takes).
    Public,
    /// The designating agencies' lists, one row per case (unmasked).
    List,
    /// A responsible agency's worklist (needs --agency).
    Enforcement,
    /// One subject's cases (needs --subject).
    Subject,
    /// A point check (needs --subject and --measure).
    Check,
}

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// CSV with a header row (RFC 4180, CRLF).
    Csv,
    /// JSON Lines: one object per row.
    Jsonl,
    /// FollowTheMoney entities, one per line (public view only).
    Ftm,
    /// Apache Parquet (snappy), for DuckDB, Spark or pandas.
    Parquet,
}

/// The arguments of `docket export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The ledger directory.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// What to export.
    #[arg(long, value_enum)]
    pub view: ExportView,
    /// The file format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Agency: whose lists (list), whose worklist (enforcement), whose application (check).
    #[arg(long)]
    pub agency: Option<String>,
    /// Only this list (list, public, ftm).
    #[arg(long)]
    pub list: Option<String>,
    /// Subject: uscc:CODE, resident:NUMBER, SCHEME:VALUE or a bare 18-character code (subject, check).
    #[arg(long)]
    pub subject: Option<String>,
    /// Measure code (check).
    #[arg(long)]
    pub measure: Option<String>,
    /// System time: a seq (inclusive) or a time (RFC 3339 or a date): what the ledger held then.
    #[arg(long, value_name = "SEQ|TIME")]
    pub as_of: Option<String>,
    /// Valid time: what was in force then (events: only those effective by then).
    #[arg(long, value_name = "TIME")]
    pub valid_at: Option<String>,
    /// Where to write: a file, or "-" (the default) for standard output.
    #[arg(long, value_name = "FILE|-")]
    pub out: Option<PathBuf>,
}

fn table(view: ExportView) -> Table {
    match view {
        ExportView::Events => Table::Events,
        ExportView::Public => Table::Public,
        ExportView::List => Table::List,
        ExportView::Enforcement => Table::Enforcement,
        ExportView::Subject => Table::Subject,
        ExportView::Check => Table::Check,
    }
}

fn format(format: ExportFormat) -> Format {
    match format {
        ExportFormat::Csv => Format::Csv,
        ExportFormat::Jsonl => Format::Jsonl,
        ExportFormat::Ftm => Format::Ftm,
        ExportFormat::Parquet => Format::Parquet,
    }
}

fn filter(args: &ExportArgs) -> Result<Filter> {
    Ok(Filter {
        agency: args.agency.as_deref().map(|a| name("agency", a)).transpose()?,
        list: args.list.as_deref().map(|l| name("list", l)).transpose()?,
        subject: args.subject.as_deref().map(parse_subject).transpose()?,
        measure: args.measure.as_deref().map(|m| name("measure", m)).transpose()?,
        effective_by: match (args.view, args.valid_at.as_deref()) {
            (ExportView::Events, Some(text)) => Some(parse_time("valid-at", text)?),
            _ => None,
        },
    })
}

/// `docket export`. The file is written beside its destination and renamed
/// over it only once complete, so a failed export leaves no partial file.
pub fn export(args: &ExportArgs) -> Result<bool> {
    let filter = filter(args)?;
    let projections = open_store(&args.dir)?;
    let store = &projections.store;
    let as_of = resolve(store, args.as_of.as_deref(), args.valid_at.as_deref())?;
    let (table, format) = (table(args.view), format(args.format));
    let started = std::time::Instant::now();
    let rows = match args.out.as_deref().filter(|p| *p != Path::new("-")) {
        None => {
            let stdout = std::io::BufWriter::new(std::io::stdout());
            docket_export::export(store, &args.dir, table, format, as_of, &filter, Box::new(stdout))?.rows
        }
        Some(path) => to_file(path, |out| docket_export::export(store, &args.dir, table, format, as_of, &filter, out))?,
    };
    eprintln!(
        "exported {rows} {} of the {} view as {} in {:.2} s; {}",
        if format == Format::Ftm { "entities" } else { "rows" },
        table.name(),
        format.name(),
        started.elapsed().as_secs_f64(),
        crate::replay::header(&as_of).trim_end()
    );
    Ok(true)
}

type Writer<'a> = Box<dyn Write + Send + 'a>;

/// Runs `write` into a temporary file beside `path`, then renames it over `path`.
fn to_file(
    path: &Path,
    write: impl FnOnce(Writer<'_>) -> Result<docket_export::Summary, docket_export::ExportError>,
) -> Result<u64> {
    let file_name = path.file_name().context("--out names no file")?.to_string_lossy().into_owned();
    let partial = path.with_file_name(format!(".{file_name}.partial-{}", std::process::id()));
    let file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let result = write(Box::new(std::io::BufWriter::new(&file)));
    let done = result.map_err(anyhow::Error::from).and_then(|summary| {
        file.sync_all().with_context(|| format!("syncing {}", partial.display()))?;
        std::fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(summary.rows)
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    done
}
