//! `docket replay` and `docket rebuild`: the projections, as of any point.

use std::path::Path;

use anyhow::{Context, Result};
use clap::ValueEnum;

use docket_fold::case::{AsOf, Known};
use docket_fold::views::{self, CheckView, EnforcementView, ListView, PublicView, SubjectView};
use docket_fold::{query, Store, StoreLimits};
use docket_log::ledger::{DirLock, LedgerError};
use docket_model::{MeasureCode, Name, SubjectId, Timestamp};

/// Which view to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum View {
    /// A designating agency's lists with the status of each case.
    List,
    /// A responsible agency's worklist: to apply, applied, must lift.
    Enforcement,
    /// Every case and measure of one subject.
    Subject,
    /// The public list: masked, normalised status.
    Public,
    /// Is SUBJECT restricted by MEASURE (for AGENCY) at the valid time, and why.
    Check,
    /// The registry: agencies, keys, lists, measures, MOUs (JSON only).
    Registry,
}

/// How views are printed: the one `--format` vocabulary (`text`, alias `table`; `json`).
pub type ViewFormat = crate::Format;

/// What `docket replay` was asked.
#[derive(Debug)]
pub struct Query {
    pub view: View,
    pub agency: Option<String>,
    pub list: Option<String>,
    pub subject: Option<String>,
    pub measure: Option<String>,
    pub as_of: Option<String>,
    pub valid_at: Option<String>,
    pub format: ViewFormat,
}

pub fn name(what: &str, text: &str) -> Result<Name> {
    Ok(query::name(&format!("--{what}"), text)?)
}

/// Parses `--subject`.
pub fn parse_subject(text: &str) -> Result<SubjectId> {
    Ok(query::parse_subject("--subject", text)?)
}

/// Parses a time given to `--WHAT`.
pub fn parse_time(what: &str, text: &str) -> Result<Timestamp> {
    Ok(query::parse_time(&format!("--{what}"), text)?)
}

/// Resolves `--as-of` and `--valid-at` into a bitemporal point.
pub fn resolve(store: &Store, as_of: Option<&str>, valid_at: Option<&str>) -> Result<AsOf> {
    query::resolve(store, as_of, valid_at).map_err(|e| anyhow::anyhow!("--{e}"))
}

/// The projections of the ledger in `dir`, for a read-only command. When no
/// other process owns the ledger, this one takes its lock and brings the
/// ledger's store up to date. Beside a running server it touches nothing in
/// the directory: it folds the committed log into a private store in the
/// system's temporary directory (`Projections` removes it when dropped).
pub fn open_store(dir: &Path) -> Result<Projections> {
    match DirLock::acquire(dir) {
        Ok(lock) => {
            let (mut store, opened) = Store::open(dir, StoreLimits::default())?;
            if let Some(reason) = &opened.rebuilt {
                eprintln!("note: projections rebuilt from the log ({reason})");
            }
            store.set_publication(bundled_publication());
            Ok(Projections { store, _lock: Some(lock), private: None })
        }
        Err(LedgerError::Locked { holder, .. }) => {
            let private = std::env::temp_dir().join(format!("docket-views-{}.redb", std::process::id()));
            eprintln!("note: the ledger is in use by {holder}; folding its committed log into a private store");
            let opened = Store::open_at(dir, &private, StoreLimits::default());
            let cleanup = || {
                let _ = std::fs::remove_file(&private);
            };
            let (mut store, _) = opened.inspect_err(|_| cleanup())?;
            store.set_publication(bundled_publication());
            Ok(Projections { store, _lock: None, private: Some(private) })
        }
        Err(error) => Err(error.into()),
    }
}

/// The publicity maxima of the bundled rule sets: the public list a command
/// shows is the one the server publishes.
fn bundled_publication() -> docket_fold::views::Publication {
    docket_audit::RuleSet::publication(&docket_audit::RuleSet::bundled())
}

/// A store opened for a read-only command, and what it holds on to.
#[derive(Debug)]
pub struct Projections {
    pub store: Store,
    _lock: Option<DirLock>,
    private: Option<std::path::PathBuf>,
}

impl Drop for Projections {
    fn drop(&mut self) {
        if let Some(path) = &self.private {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `docket replay`.
pub fn replay(dir: &Path, query: &Query) -> Result<bool> {
    let projections = open_store(dir)?;
    let store = &projections.store;
    let as_of = resolve(store, query.as_of.as_deref(), query.valid_at.as_deref())?;
    let agency = query.agency.as_deref().map(|a| name("agency", a)).transpose()?;
    let list = query.list.as_deref().map(|l| name("list", l)).transpose()?;
    let json = query.format == ViewFormat::Json;
    let out = match query.view {
        View::List => {
            let view = views::list_view(store, as_of, agency.as_ref(), list.as_ref())?;
            if json {
                to_json(&view)?
            } else {
                list_table(&view)
            }
        }
        View::Enforcement => {
            let agency = agency.context("--view enforcement needs --agency")?;
            let view = views::enforcement_view(store, as_of, &agency)?;
            if json {
                to_json(&view)?
            } else {
                enforcement_table(&view)
            }
        }
        View::Subject => {
            let subject = parse_subject(query.subject.as_deref().context("--view subject needs --subject")?)?;
            let view = views::subject_view(store, as_of, &subject)?;
            if json {
                to_json(&view)?
            } else {
                subject_table(&view)
            }
        }
        View::Public => {
            let view = views::public_view(store, as_of, list.as_ref())?;
            if json {
                to_json(&view)?
            } else {
                public_table(&view)
            }
        }
        View::Check => {
            let subject = parse_subject(query.subject.as_deref().context("--view check needs --subject")?)?;
            let measure: MeasureCode =
                name("measure", query.measure.as_deref().context("--view check needs --measure")?)?;
            let view = views::check(store, as_of, &subject, &measure, agency.as_ref())?;
            if json {
                to_json(&view)?
            } else {
                check_table(&view)
            }
        }
        View::Registry => to_json(&views::registry_view(store, as_of)?)?,
    };
    print!("{out}");
    Ok(true)
}

/// `docket rebuild`.
pub fn rebuild(dir: &Path, format: ViewFormat) -> Result<bool> {
    let _lock = DirLock::acquire(dir)?;
    let started = std::time::Instant::now();
    eprintln!("rebuild: folding the log of {} into a shadow store", dir.display());
    let (store, opened) = Store::rebuild(dir, StoreLimits::default())?;
    let seconds = started.elapsed().as_secs_f64();
    match format {
        ViewFormat::Json => {
            println!("{}", serde_json::json!({"store": store.path(), "records": opened.records, "seconds": seconds}))
        }
        ViewFormat::Text => {
            println!("rebuilt {} from {} records in {seconds:.2} s", store.path().display(), opened.records)
        }
    }
    Ok(true)
}

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

pub fn header(as_of: &AsOf) -> String {
    let known = match as_of.known {
        Known::All => "everything recorded".to_owned(),
        Known::Through(seq) => format!("records through seq {seq}"),
        Known::At(time) => format!("records up to {time}"),
    };
    format!("as known from {known}, in force at {}\n", as_of.valid_at)
}

/// Left-aligned columns.
fn table(head: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(head.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn date(time: Option<Timestamp>) -> String {
    time.map(|t| t.china_date().to_string()).unwrap_or_else(|| "-".into())
}

fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn list_table(view: &ListView) -> String {
    let mut out = header(&view.as_of);
    for section in &view.lists {
        out.push_str(&format!(
            "\nlist {} ({}), designating agency {}: {} cases\n",
            section.list,
            section.name,
            section.designating_agency,
            section.entries.len()
        ));
        let rows = section
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.subject.clone(),
                    e.number.to_string(),
                    snake(&e.status) + if e.contested { " (contested)" } else { "" },
                    date(Some(e.since)),
                    date(e.until),
                    e.measures_in_place.to_string(),
                    e.marks.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(&["SUBJECT", "CASE", "STATUS", "SINCE", "UNTIL", "MEASURES", "MARKS"], rows));
    }
    out
}

fn enforcement_table(view: &EnforcementView) -> String {
    let mut out = header(&view.as_of);
    out.push_str(&format!(
        "agency {}: {} to apply, {} applied, {} must lift\n",
        view.agency,
        view.to_apply.len(),
        view.applied.len(),
        view.must_lift.len()
    ));
    let mut rows = vec![];
    for (what, duty, why) in view
        .to_apply
        .iter()
        .map(|d| ("apply", d, String::new()))
        .chain(view.applied.iter().map(|d| ("applied", d, String::new())))
        .chain(view.must_lift.iter().map(|l| ("LIFT", &l.duty, snake(&l.why))))
    {
        rows.push(vec![
            what.to_owned(),
            duty.list.to_string(),
            duty.subject.clone(),
            duty.number.to_string(),
            duty.measure.to_string(),
            duty.mou.to_string(),
            date(Some(duty.since)),
            why,
        ]);
    }
    out.push_str(&table(&["TODO", "LIST", "SUBJECT", "CASE", "MEASURE", "MOU", "SINCE", "WHY"], rows));
    out
}

fn subject_table(view: &SubjectView) -> String {
    let mut out = header(&view.as_of);
    out.push_str(&format!("subject {}: {} cases\n", view.subject, view.cases.len()));
    for case in &view.cases {
        out.push_str(&format!(
            "\ncase {} on {}: {} (version {})\n",
            case.number,
            case.list,
            case.status.map(|s| snake(&s)).unwrap_or_else(|| "not yet in force".into()),
            case.version
        ));
        for t in &case.transitions {
            out.push_str(&format!("  {}  {:<18} seq {}\n", t.at, snake(&t.status), t.seq));
        }
        for m in &case.measures {
            let state = match &m.lifted {
                Some((e, _)) => format!("lifted {} (seq {})", e.at.china_date(), e.seq),
                None => "in place".into(),
            };
            let covered = if m.covered { "" } else { " [no MOU covers it]" };
            out.push_str(&format!(
                "  measure {} by {} under {}: applied {} (seq {}), {state}{covered}\n",
                m.measure,
                m.agency,
                m.mou,
                m.applied.at.china_date(),
                m.applied.seq
            ));
        }
        for mark in &case.marks {
            out.push_str(&format!("  marked: seq {} {}\n", mark.seq, snake(&mark.kind)));
        }
    }
    out
}

fn public_table(view: &PublicView) -> String {
    let mut out = header(&view.as_of);
    let rows = view
        .entries
        .iter()
        .map(|e| {
            vec![
                e.list.to_string(),
                e.subject.clone(),
                e.number.to_string(),
                if e.contested { format!("{} (contested)", snake(&e.status)) } else { snake(&e.status) },
                e.listing_date.to_string(),
                e.start_date.to_string(),
                e.end_date.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
                e.authority.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(&["LIST", "SUBJECT", "CASE", "STATUS", "LISTED", "START", "END", "AUTHORITY"], rows));
    out
}

fn check_table(view: &CheckView) -> String {
    let mut out = header(&view.as_of);
    let by = view.agency.as_ref().map(|a| format!(" as applied by {a}")).unwrap_or_default();
    out.push_str(&format!(
        "{} {} restricted by {}{by}\n",
        view.subject,
        if view.restricted { "IS" } else { "is not" },
        view.measure
    ));
    for ground in &view.grounds {
        out.push_str(&format!(
            "  case {} on {}: decision seq {} in force from {} until {}, MOU {}\n",
            ground.number,
            ground.list,
            ground.decision.seq,
            ground.in_force_from,
            ground.until.map(|u| u.to_string()).unwrap_or_else(|| "removed".into()),
            ground.mou
        ));
        for binding in &ground.agencies {
            let applied = binding.applied.map(|e| format!("applied (seq {})", e.seq)).unwrap_or("not applied".into());
            out.push_str(&format!("    {}: {applied}\n", binding.agency));
        }
    }
    for m in &view.without_ground {
        out.push_str(&format!(
            "  in place WITHOUT ground: applied by {} under {} (seq {})\n",
            m.agency, m.mou, m.applied.seq
        ));
    }
    out
}
