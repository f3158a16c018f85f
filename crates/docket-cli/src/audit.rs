//! `docket audit` and `docket deadline`: the due-process audit and the period
//! arithmetic it rests on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};

use docket_audit::audit::{audit, Finding, FindingStatus, Report, Rule, Scope};
use docket_audit::{Calendar, Deadline, Period, RuleSet};

use crate::replay::{header, name, resolve, ViewFormat};

/// What `docket audit` was asked.
#[derive(Debug)]
pub struct AuditQuery {
    pub list: Option<String>,
    pub agency: Option<String>,
    pub as_of: Option<String>,
    pub valid_at: Option<String>,
    /// Rule set documents that replace the bundled ones with the same id and version, or add to them.
    pub rules: Vec<PathBuf>,
    pub calendar: Option<String>,
    pub format: ViewFormat,
}

/// The calendar named by `--calendar`: the bundled id, or a calendar document file.
fn calendar(choice: Option<&str>) -> Result<Calendar> {
    let bundled = Calendar::bundled();
    match choice {
        None => Ok(bundled),
        Some(id) if id == bundled.id => Ok(bundled),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("--calendar {path:?}: not the bundled calendar ({}) and not a readable file", bundled.id)
            })?;
            Calendar::parse(&text).with_context(|| format!("--calendar {path:?}"))
        }
    }
}

/// The bundled rule sets, with those given by `--rules` replacing same id and version.
fn rule_sets(files: &[PathBuf]) -> Result<Vec<RuleSet>> {
    let mut sets = RuleSet::bundled();
    for path in files {
        let text = std::fs::read_to_string(path).with_context(|| format!("--rules {}", path.display()))?;
        let set = RuleSet::parse(&text).with_context(|| format!("--rules {}", path.display()))?;
        sets.retain(|s| !(s.id == set.id && s.version == set.version));
        sets.push(set);
    }
    Ok(sets)
}

/// `docket audit`. Findings are not a failure: exit 0 whenever the audit ran.
pub fn run(dir: &Path, query: &AuditQuery) -> Result<bool> {
    let calendar = calendar(query.calendar.as_deref())?;
    let rule_sets = rule_sets(&query.rules)?;
    let projections = crate::replay::open_store(dir)?;
    let store = &projections.store;
    let as_of = resolve(store, query.as_of.as_deref(), query.valid_at.as_deref())?;
    let scope = Scope {
        list: query.list.as_deref().map(|l| name("list", l)).transpose()?,
        agency: query.agency.as_deref().map(|a| name("agency", a)).transpose()?,
    };
    let report = audit(store, as_of, &scope, &rule_sets, &calendar)?;
    match query.format {
        ViewFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ViewFormat::Text => print!("{}", text(&report)),
    }
    Ok(true)
}

const STATUSES: [FindingStatus; 4] =
    [FindingStatus::Violated, FindingStatus::Late, FindingStatus::Overdue, FindingStatus::Pending];

fn status_name(status: FindingStatus) -> &'static str {
    match status {
        FindingStatus::Violated => "violated",
        FindingStatus::Late => "late",
        FindingStatus::Overdue => "overdue",
        FindingStatus::Pending => "pending",
    }
}

/// One row of counts per key, a column per status, and a total row.
fn count_table<K: Ord>(
    title: &str,
    findings: &[Finding],
    key: impl Fn(&Finding) -> K,
    label: impl Fn(&K) -> String,
) -> String {
    let mut counts: BTreeMap<K, [u64; 4]> = BTreeMap::new();
    for finding in findings {
        let row = counts.entry(key(finding)).or_default();
        row[STATUSES.iter().position(|s| *s == finding.status).unwrap_or(0)] += 1;
    }
    let mut totals = [0u64; 4];
    let mut rows: Vec<(String, [u64; 4])> = counts
        .iter()
        .map(|(k, row)| {
            for (total, n) in totals.iter_mut().zip(row) {
                *total += n;
            }
            (label(k), *row)
        })
        .collect();
    rows.push(("total".into(), totals));
    let width = rows.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0).max(title.len());
    let mut out = format!("{title:width$}  VIOLATED      LATE   OVERDUE   PENDING\n");
    for (label, row) in rows {
        out.push_str(&format!("{label:width$}  {:>8}  {:>8}  {:>8}  {:>8}\n", row[0], row[1], row[2], row[3]));
    }
    out
}

fn deadline_text(deadline: &Deadline) -> String {
    format!(
        "due {} ({} from {}, {}{})",
        deadline.due,
        deadline.period,
        deadline.from,
        deadline.calendar,
        if deadline.provisional { ", PROVISIONAL: the calendar does not cover it" } else { "" }
    )
}

/// The readable report: counts by rule and by agency first, then every
/// finding grouped by rule and agency.
pub fn text(report: &Report) -> String {
    let mut out = format!("docket audit: {}", header(&report.as_of));
    out.push_str(&format!("calendar {}; {} cases audited\n", report.calendar, report.cases));
    for used in &report.rule_sets {
        let version = used.version.map(|v| format!(" v{v}")).unwrap_or_default();
        let from = used.from.map(|f| format!(", for cases opened from {}", f.china_date())).unwrap_or_default();
        out.push_str(&format!("  list {}: rule set {}{version}{from}\n", used.list, used.rule_set));
        if let Some(note) = &used.note {
            out.push_str(&format!("    note: {note}\n"));
        }
    }
    if report.findings.is_empty() {
        out.push_str("\nno findings\n");
        return out;
    }
    out.push('\n');
    out.push_str(&count_table(
        "RULE",
        &report.findings,
        |f| f.rule,
        |r| format!("{} ({:?})", r.id(), r.gravity()).to_lowercase(),
    ));
    out.push('\n');
    out.push_str(&count_table("AGENCY", &report.findings, |f| f.agency.to_string(), String::clone));
    let mut grouped: BTreeMap<(Rule, String), Vec<&Finding>> = BTreeMap::new();
    for finding in &report.findings {
        grouped.entry((finding.rule, finding.agency.to_string())).or_default().push(finding);
    }
    let mut current = None;
    for ((rule, agency), findings) in grouped {
        if current != Some(rule) {
            out.push_str(&format!("\n== {} ==\n", rule.id()));
            current = Some(rule);
        }
        out.push_str(&format!("-- {agency}: {} findings\n", findings.len()));
        for f in findings {
            out.push_str(&format!(
                "  {} case {} ({}) on {}: {}\n",
                status_name(f.status),
                f.number,
                f.subject,
                f.list,
                f.what
            ));
            if let Some(deadline) = &f.deadline {
                out.push_str(&format!("      {}\n", deadline_text(deadline)));
            }
            let seqs: Vec<String> = f.evidence.iter().map(|e| e.seq.to_string()).collect();
            out.push_str(&format!("      evidence seq {}; rule set {}", seqs.join(", "), f.rule_set));
            if !f.unconfirmed.is_empty() {
                out.push_str(&format!("; rests on unconfirmed {}", f.unconfirmed.join(", ")));
            }
            out.push('\n');
        }
    }
    out
}

/// `docket deadline`.
pub fn deadline(from: &str, period: Period, calendar_choice: Option<&str>, format: ViewFormat) -> Result<bool> {
    let from = NaiveDate::parse_from_str(from, "%Y-%m-%d")
        .with_context(|| format!("--from {from:?}: expected a date like 2024-09-30"))?;
    let calendar = calendar(calendar_choice)?;
    let deadline = calendar.due(from, period).with_context(|| format!("--from {from} plus {period}"))?;
    if format == ViewFormat::Json {
        println!("{}", serde_json::to_string_pretty(&deadline)?);
        return Ok(true);
    }
    println!("{period} from {from} ({}): due {} ({})", from.weekday(), deadline.due, deadline.due.weekday());
    println!("calendar {}", deadline.calendar);
    if deadline.provisional {
        let years: Vec<String> = calendar.years().map(|y| y.to_string()).collect();
        println!(
            "PROVISIONAL: the period reaches a year the calendar does not cover (it covers {}..={}); weekends only were used there",
            years.first().map(String::as_str).unwrap_or("-"),
            years.last().map(String::as_str).unwrap_or("-")
        );
    }
    if let Some(rolled) = deadline.rolled_from {
        println!("the last day, {rolled} ({}), is not a working day: moved to the next working day", rolled.weekday());
    }
    for holiday in &deadline.holidays_crossed {
        println!("  holiday          {} ({}) {}", holiday.date, holiday.date.weekday(), holiday.name);
    }
    for date in &deadline.working_days_crossed {
        println!("  adjusted workday {} ({})", date, date.weekday());
    }
    Ok(true)
}
