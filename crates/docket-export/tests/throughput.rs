//! Export throughput, rows per second, next to a probe measured in the same
//! run (BENCH.md, "Exports"): for a view, the probe is the same view
//! computed and rendered as JSON (what `/v1/views` does); for the event
//! history, reading the log and rendering each event's JSON form (what the
//! feed does). Ignored by `cargo test`; run in release:
//!
//! ```sh
//! cargo test --release -p docket-export --test throughput -- --ignored --nocapture
//! ```
//!
//! `DOCKET_EXPORT_SUBJECTS` sets the sizes (default `1000,20000`: the
//! demo's default and a larger ledger). No timing is asserted.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::ops::ControlFlow;
use std::time::Instant;

use docket_export::{export, Filter, Format, Table};
use docket_fold::{views, Store};
use docket_model::SignedEvent;

/// Discards what it is given, counting bytes.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The best of three runs of `work`, in seconds, and what it returned.
fn best<T>(mut work: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..3 {
        let started = Instant::now();
        let value = work();
        best = best.min(started.elapsed().as_secs_f64());
        last = Some(value);
    }
    (best, last.unwrap())
}

fn probe_events(dir: &std::path::Path) -> u64 {
    let reader = docket_log::Reader::new(docket_log::ledger::Paths { dir: dir.to_owned() }.segments());
    let (mut rows, mut out) = (0, Count(0));
    reader
        .read_from(0, None, |frame| {
            let signed = SignedEvent::from_wire(&frame.wire).unwrap();
            serde_json::to_writer(&mut out, &signed.to_json()).unwrap();
            rows += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    rows
}

fn measure(store: &Store, dir: &std::path::Path, table: Table) {
    let point = support::point(store);
    let (probe, rows) = match table {
        Table::Events => best(|| probe_events(dir)),
        _ => best(|| {
            let view = views::public_view(store, point, None).unwrap();
            serde_json::to_writer(Count(0), &view).unwrap();
            view.entries.len() as u64
        }),
    };
    let probe_name = if table == Table::Events { "log read + event JSON" } else { "public view + JSON render" };
    println!("| {} | {rows} | probe: {probe_name} | {:.0} rows/s | 1.00 |", table.name(), rows as f64 / probe);
    for format in [Format::Csv, Format::Jsonl, Format::Parquet, Format::Ftm] {
        if format == Format::Ftm && table != Table::Public {
            continue;
        }
        let (seconds, written) = best(|| {
            let mut out = Count(0);
            export(store, dir, table, format, point, &Filter::default(), Box::new(&mut out)).unwrap();
            out.0
        });
        println!(
            "| {} | {rows} | {} ({written} bytes) | {:.0} rows/s | {:.2} |",
            table.name(),
            format.name(),
            rows as f64 / seconds,
            seconds / probe
        );
    }
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn export_throughput_against_the_probes() {
    let sizes = std::env::var("DOCKET_EXPORT_SUBJECTS").unwrap_or_else(|_| "1000,20000".into());
    for subjects in sizes.split(',').map(|s| s.trim().parse::<u64>().unwrap()) {
        let dir = tempfile::tempdir().unwrap();
        let store = support::fixed_ledger(dir.path(), subjects);
        println!("\n{subjects} subjects, {} events (time ratio: export / probe)\n", store.records());
        println!("| table | rows | format | rate | ratio |\n|---|---|---|---|---|");
        measure(&store, dir.path(), Table::Events);
        measure(&store, dir.path(), Table::Public);
    }
}
