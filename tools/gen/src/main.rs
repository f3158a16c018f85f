//! `docket-gen`: writes a national-scale data set (see the library's docs).
//!
//! ```text
//! docket-gen --out DIR [--events 1000000] [--seed 1] [--format wire|jsonl] [--threads N]
//! ```

use anyhow::{bail, Context, Result};
use docket_gen::{generate, Format};

fn value(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn number(args: &[String], name: &str, default: u64) -> Result<u64> {
    match value(args, name) {
        None => Ok(default),
        Some(v) => v.replace('_', "").parse().with_context(|| format!("{name} takes a whole number, not {v:?}")),
    }
}

fn main() -> Result<()> {
    const USAGE: &str = "usage: docket-gen --out DIR [--events 1000000] [--seed 1] [--format wire|jsonl] [--threads N]";
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "docket-gen: writes the national-scale data set (events, truth.tsv, manifest.json) into DIR.\n\n{USAGE}\n\n\
             examples:\n  docket-gen --out /tmp/national --events 1000000\n  \
             docket-gen --out /tmp/national-json --events 10000 --format jsonl --threads 1"
        );
        return Ok(());
    }
    let known = ["--out", "--events", "--seed", "--format", "--threads"];
    if let Some(unknown) = args.iter().skip(1).step_by(2).find(|a| !known.contains(&a.as_str())) {
        bail!("unknown argument {unknown:?}\n{USAGE}");
    }
    let Some(out) = value(&args, "--out") else {
        bail!("{USAGE}");
    };
    let format = match value(&args, "--format").as_deref() {
        None | Some("wire") => Format::Wire,
        Some("jsonl") => Format::JsonLines,
        Some(other) => bail!("--format is wire or jsonl, not {other:?}"),
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let threads = number(&args, "--threads", cores)? as usize;
    let manifest = generate(
        std::path::Path::new(&out),
        number(&args, "--events", 1_000_000)?,
        number(&args, "--seed", 1)?,
        format,
        threads,
    )?;
    println!(
        "{} events ({} subjects, {} planted violations, {:.0} wire bytes per event) in {:.1} s on {} threads: {:.0} events/s -> {}",
        manifest.events,
        manifest.subjects,
        manifest.violations.values().sum::<u64>(),
        manifest.wire_bytes as f64 / manifest.events as f64,
        manifest.seconds,
        manifest.threads,
        manifest.events as f64 / manifest.seconds,
        out
    );
    Ok(())
}
