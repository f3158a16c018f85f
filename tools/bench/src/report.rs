//! The suite's results as markdown, and their place in BENCH.md.

use std::path::Path;

use anyhow::{Context, Result};

use crate::{Figures, Settings};

const BEGIN: &str =
    "<!-- docket-bench:begin (written by `docket-bench --out BENCH.md`; edits inside are overwritten) -->";
const END: &str = "<!-- docket-bench:end -->";

fn get(f: &Figures, key: &str) -> f64 {
    f.get(key).copied().unwrap_or(f64::NAN)
}

fn count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e4 {
        format!("{:.0}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn rate(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c.is_ascii_digit() {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ratio: f64, target: f64, at_least: bool) -> &'static str {
    if ratio.is_nan() {
        "not measured"
    } else if (at_least && ratio >= target) || (!at_least && ratio <= target) {
        "met"
    } else {
        "**missed**"
    }
}

/// The table of one size: ingest, verify, fold and audit, queries, then
/// disk, memory and the probes.
fn size_table(settings: &Settings, f: &Figures, postgres: bool) -> String {
    let mut t = String::new();
    t += "| figure | docket | limit probe / peer | ratio | target |\n|---|---:|---|---:|---|\n";
    t += &ingest_rows(settings, f, postgres);
    t += &verify_fold_audit_rows(f);
    t += &query_rows(f, postgres);
    t += &footprint_rows(f, postgres);
    t
}

/// The row of the in-process ingest with `appenders` appenders, whose
/// figures are named with `prefix` (`""` or `"wide_"`), its ratio shown to
/// `ratio_digits` decimals.
fn ingest_row(f: &Figures, appenders: usize, prefix: &str, ratio_digits: usize) -> String {
    let key = |name: &str| get(f, &format!("{prefix}{name}"));
    let ratio = key("ingest") / key("ingest_limit");
    format!(
        "| durable ingest in process, {} appenders (mean group commit {:.0}) | {} events/s | min(raw append, {} records per fdatasync: {}/s; batch verify, all cores: {}/s) | {:.*} | >= 0.60: {} |\n",
        appenders,
        key("ingest_batch"),
        rate(key("ingest")),
        appenders,
        rate(key("raw_append")),
        rate(key("batch_verify")),
        ratio_digits,
        ratio,
        verdict(ratio, 0.6, true)
    )
}

/// The ingest rows: in process (two widths), against PostgreSQL, over HTTP.
fn ingest_rows(settings: &Settings, f: &Figures, postgres: bool) -> String {
    let events = get(f, "events");
    let mut t = ingest_row(f, settings.appenders, "", 2);
    t += &ingest_row(f, settings.wide_appenders, "wide_", 3);
    if postgres {
        let pg_ratio = get(f, "ingest_tail") / get(f, "pg_ingest");
        t += &format!(
            "| durable ingest, the last {} events (history {}) | {} events/s | PostgreSQL, same events and connections, one insert per commit: {}/s | {:.1}x | >= 5x: {} |\n",
            count(settings.pg_tail.min(events as u64 / 2) as f64),
            count(events - settings.pg_tail.min(events as u64 / 2) as f64),
            rate(get(f, "ingest_tail")),
            rate(get(f, "pg_ingest")),
            pg_ratio,
            verdict(pg_ratio, 5.0, true)
        );
    }
    let http_ratio = get(f, "http_ingest") / get(f, "ingest_first");
    t += &format!(
        "| HTTP ingest, first {} events, {} clients x {}-event wire batches (p99 {:.1} ms) | {} events/s | in process, same first events: {}/s | {:.2} | >= 0.50 (issue 6): {} |\n",
        count(settings.http_events.min(events as u64) as f64),
        (settings.appenders / settings.http_batch.max(1)).max(1),
        settings.http_batch,
        get(f, "http_p99_ms"),
        rate(get(f, "http_ingest")),
        rate(get(f, "ingest_first")),
        http_ratio,
        verdict(http_ratio, 0.5, true)
    );
    t
}

/// `docket verify`, the fold and the audit, each against its probe.
fn verify_fold_audit_rows(f: &Figures) -> String {
    let mut t = String::new();
    let verify_ratio = get(f, "verify") / get(f, "verify_limit");
    t += &format!(
        "| `docket verify` | {} events/s | batch verify, all cores: {}/s | {:.2} | >= 0.80: {} |\n",
        rate(get(f, "verify")),
        rate(get(f, "verify_limit")),
        verify_ratio,
        verdict(verify_ratio, 0.8, true)
    );
    t += &format!(
        "| fold (rebuild of the projections) | {} events/s | bare decode, one core: {}/s | {:.2} | — |\n",
        rate(get(f, "fold")),
        rate(get(f, "decode")),
        get(f, "fold") / get(f, "decode")
    );
    t += &format!(
        "| audit, {} cases ({} findings; recall {:.3}, precision {:.3} against the planted violations) | {} events/s ({:.0} s) | fold: {}/s | {:.2} | — |\n",
        rate(get(f, "audit_cases")),
        rate(get(f, "audit_findings")),
        get(f, "audit_recall"),
        get(f, "audit_precision"),
        rate(get(f, "audit")),
        get(f, "audit_seconds"),
        rate(get(f, "fold")),
        get(f, "audit") / get(f, "fold")
    );
    t
}

/// Point checks (in process, over HTTP, warm), the HTTP floor, as-of checks
/// and proofs.
fn query_rows(f: &Figures, postgres: bool) -> String {
    let mut t = String::new();
    t += &format!(
        "| point check in process, p50 / p99 ({:.0}% restricted) | {:.1} / {:.1} µs | — | — | — |\n",
        100.0 * get(f, "restricted_share"),
        get(f, "check_p50_us"),
        get(f, "check_p99_us")
    );
    if postgres {
        let ratio = get(f, "pg_check_p99_us") / get(f, "http_check_p99_us");
        t += &format!(
            "| point check over HTTP, one connection, p50 / p99 | {:.0} / {:.0} µs | PostgreSQL indexed query, one connection ({:.0}% restricted): {:.0} / {:.0} µs | {:.2}x faster (p99) | faster: {} |\n",
            get(f, "http_check_p50_us"),
            get(f, "http_check_p99_us"),
            100.0 * get(f, "pg_restricted_share"),
            get(f, "pg_check_p50_us"),
            get(f, "pg_check_p99_us"),
            ratio,
            verdict(ratio, 1.0, true)
        );
    } else {
        t += &format!(
            "| point check over HTTP, one connection, p50 / p99 | {:.0} / {:.0} µs | — | — | — |\n",
            get(f, "http_check_p50_us"),
            get(f, "http_check_p99_us")
        );
    }
    t += &format!(
        "| the same point checks, store page cache {} MiB and warmed by one pass: in process / over HTTP, p50 / p99 | {:.1} / {:.1} µs; {:.0} / {:.0} µs | — | — | — |\n",
        crate::WARM_CACHE_MIB,
        get(f, "warm_check_p50_us"),
        get(f, "warm_check_p99_us"),
        get(f, "warm_http_check_p50_us"),
        get(f, "warm_http_check_p99_us")
    );
    t += &format!(
        "| HTTP round trip that does no work (`GET /healthz`), one connection, p50 / p99 | {:.0} / {:.0} µs | — | — | the floor under any HTTP figure |\n",
        get(f, "http_floor_p50_us"),
        get(f, "http_floor_p99_us")
    );
    t += &format!(
        "| as-of point check (a random past seq), p50 / p99 | {:.1} / {:.1} µs | — | — | — |\n",
        get(f, "asof_p50_us"),
        get(f, "asof_p99_us")
    );
    t += &format!(
        "| inclusion proof generation, p50 / p99 | {:.1} / {:.1} µs | — | — | — |\n",
        get(f, "proof_p50_us"),
        get(f, "proof_p99_us")
    );
    t += &format!(
        "| open-to-ready: `docket serve` (ledger and projections) / `docket proof` (tiles and tail) | {:.3} / {:.3} s | — | — | < 1 s: {} |\n",
        get(f, "serve_open_s"),
        get(f, "snapshot_open_s"),
        verdict(get(f, "serve_open_s"), 1.0, false)
    );
    t
}

/// Disk bytes, peak memory, the hash probes, PostgreSQL's load and the data
/// set's generation.
fn footprint_rows(f: &Figures, postgres: bool) -> String {
    let mut t = String::new();
    let disk_ratio = get(f, "log_bytes_per_event") / get(f, "canonical_bytes");
    t += &format!(
        "| disk: log of record (segments, index, tree, checkpoints) | {:.0} bytes/event | canonical event: {:.0} bytes | {:.2} | <= 2.0: {} |\n",
        get(f, "log_bytes_per_event"),
        get(f, "canonical_bytes"),
        disk_ratio,
        verdict(disk_ratio, 2.0, false)
    );
    t += &format!(
        "| disk: projections (views.redb) | {:.0} bytes/event | {} | — | — |\n",
        get(f, "views_bytes_per_event"),
        if postgres {
            format!("PostgreSQL table and indexes: {:.0} bytes/event", get(f, "pg_bytes_per_event"))
        } else {
            "—".into()
        }
    );
    t += &format!(
        "| peak memory (VmHWM) by phase: ingest / verify / fold / audit / queries | {:.0} / {:.0} / {:.0} / {:.0} / {:.0} MiB | — | — | — |\n",
        get(f, "ingest_peak_mib"),
        get(f, "verify_peak_mib"),
        get(f, "fold_peak_mib"),
        get(f, "audit_peak_kib") / 1024.0,
        get(f, "queries_peak_kib") / 1024.0
    );
    t += &format!(
        "| probes: SHA-256 / BLAKE3 over the events, one core | {:.0} / {:.0} MB/s | — | — | — |\n",
        get(f, "sha256_mb_s"),
        get(f, "blake3_mb_s")
    );
    if postgres {
        t += &format!(
            "| PostgreSQL bulk load (binary COPY, untimed in the comparison) / index build | {} rows/s / {:.0} s | — | — | — |\n",
            rate(get(f, "pg_copy_rate")),
            get(f, "pg_index_seconds")
        );
    }
    t += &format!(
        "| data set generation (signing on all cores) | {} events/s | — | — | — |\n",
        rate(get(f, "gen_rate"))
    );
    t
}

/// The whole section.
pub fn render(settings: &Settings, results: &[(u64, Figures)], machine: &str, seconds: f64) -> String {
    let date = chrono::Utc::now().format("%Y-%m-%d");
    let mut out = format!(
        "## docket-bench: national-scale data against the limits and PostgreSQL (issue 7)\n\n\
         Command: `cargo run --release -p docket-bench -- --sizes {} --out BENCH.md` (the suite took {:.0} min).\n\
         Machine: {machine}. Date: {date}. Every figure below was measured in this one run; each ratio\n\
         uses a probe or peer measured in the same run (ingest and verify between probes measured just before\n\
         and just after, the mean used). Data: `docket-gen --seed {}` (seven lists, 60 agencies, 150 measures,\n\
         cases 2016-2025, one in 50 with a planted violation).\n",
        settings.sizes.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
        seconds / 60.0,
        settings.seed
    );
    for (size, f) in results {
        out += &format!("\n### {} events\n\n", count(*size as f64));
        out += &size_table(settings, f, settings.postgres);
    }
    if let (Some((small, a)), Some((large, b))) = (results.first(), results.last()) {
        if large > small {
            out += &format!(
                "\n### Growth: {} vs {} events\n\n| figure | {} | {} | ratio | target |\n|---|---:|---:|---:|---|\n",
                count(*small as f64),
                count(*large as f64),
                count(*small as f64),
                count(*large as f64)
            );
            for (name, key, unit, lower_is_better) in [
                ("durable ingest in process", "ingest", "events/s", false),
                ("`docket verify`", "verify", "events/s", false),
                ("fold", "fold", "events/s", false),
                ("point check in process, p99", "check_p99_us", "µs", true),
                ("point check over HTTP, p99", "http_check_p99_us", "µs", true),
                ("point check in process, p99, warm cache", "warm_check_p99_us", "µs", true),
                ("point check over HTTP, p99, warm cache", "warm_http_check_p99_us", "µs", true),
                ("inclusion proof, p99", "proof_p99_us", "µs", true),
                ("open-to-ready of `docket serve`", "serve_open_s", "s", true),
                ("open of `docket proof`", "snapshot_open_s", "s", true),
            ] {
                let ratio = get(b, key) / get(a, key);
                let target =
                    if lower_is_better { format!("<= 1.5: {}", verdict(ratio, 1.5, false)) } else { "—".to_owned() };
                let digits = if unit == "s" { 3 } else { 1 };
                out += &format!(
                    "| {name} | {:.digits$} {unit} | {:.digits$} {unit} | {ratio:.2} | {target} |\n",
                    get(a, key),
                    get(b, key)
                );
            }
        }
    }
    out
}

/// Puts `report` between the suite's markers in `path` (after the first heading when they are missing).
pub fn write_into(path: &Path, report: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n{report}{END}\n");
    let updated = match (text.find(BEGIN), text.find(END)) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{block}{}", &text[..start], &text[end + END.len()..].trim_start_matches('\n'))
        }
        _ => match text.find("\n\n") {
            Some(at) => format!("{}\n\n{block}\n{}", &text[..at], &text[at + 2..]),
            None => format!("{text}\n{block}"),
        },
    };
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}
