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
    #[arg(long, value_name = "FILE|-", conflicts_with = "partitioned")]
    pub out: Option<PathBuf>,
    /// Parquet partitioned by list and year (Hive layout: list=L/year=Y/part-0.parquet, then
    /// _manifest.json) into a new or empty directory, or an empty s3://BUCKET/PREFIX (endpoint and
    /// credentials from AWS_* as for --publish). The public view by the year of its listing date,
    /// the events by the year they took effect.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub partitioned: Option<String>,
    /// Confirms that the --partitioned destination is private: needed for every view but the
    /// public one, which alone is masked.
    #[arg(long, requires = "partitioned")]
    pub destination_is_private: bool,
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
    if let Some(destination) = &args.partitioned {
        return partitioned(args, destination);
    }
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

/// `docket export --partitioned`: a directory, or a bucket prefix through
/// a staging directory uploaded file by file, the manifest last.
fn partitioned(args: &ExportArgs, destination: &str) -> Result<bool> {
    anyhow::ensure!(args.format == ExportFormat::Parquet, "--partitioned writes Parquet: give --format parquet");
    let table = table(args.view);
    anyhow::ensure!(
        table == Table::Public || args.destination_is_private,
        "the {} view carries unmasked identifiers and only the public view may go to a public destination: pass \
         --destination-is-private to confirm that {destination} is private",
        table.name()
    );
    let filter = filter(args)?;
    let projections = open_store(&args.dir)?;
    let store = &projections.store;
    let as_of = resolve(store, args.as_of.as_deref(), args.valid_at.as_deref())?;
    let started = std::time::Instant::now();
    let write = |dir: &Path| docket_export::partition::write(store, &args.dir, table, as_of, &filter, dir);
    let manifest = if destination.starts_with("s3://") {
        to_bucket(destination, write)?
    } else {
        write(Path::new(destination)).with_context(|| format!("--partitioned {destination}"))?
    };
    eprintln!(
        "exported {} rows of the {} view as Parquet in {} partitions (list, and year of {}) to {destination} in \
         {:.2} s; {}",
        manifest.rows,
        table.name(),
        manifest.partitions.len(),
        manifest.year_of,
        started.elapsed().as_secs_f64(),
        crate::replay::header(&as_of).trim_end()
    );
    Ok(true)
}

/// A staging directory, removed when dropped.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the partitions into a staging directory, then uploads them to
/// the bucket prefix `url` (which must hold no object), the manifest last.
fn to_bucket(
    url: &str,
    write: impl FnOnce(&Path) -> Result<docket_export::partition::Manifest, docket_export::ExportError>,
) -> Result<docket_export::partition::Manifest> {
    let bucket = docket_publish::Bucket::from_url(url).context("--partitioned")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let empty = runtime.block_on(bucket.is_empty()).context("--partitioned")?;
    anyhow::ensure!(
        empty,
        "--partitioned {url} holds objects already: a partitioned export goes to an empty prefix, so that no \
         partition of another export is read as part of it"
    );
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let staging = Staging(std::env::temp_dir().join(format!("docket-export-{}-{nanos}", std::process::id())));
    let manifest = write(&staging.0)?;
    runtime.block_on(async {
        let names = manifest.partitions.iter().map(|p| p.path.as_str()).chain([docket_export::partition::MANIFEST]);
        for name in names {
            bucket.upload(name, &staging.0.join(name)).await.with_context(|| format!("uploading to {url}"))?;
        }
        anyhow::Ok(())
    })?;
    Ok(manifest)
}
