//! `docket`: the command-line tool of the docket designation ledger.
//!
//! Only this crate (and the server) knows about terminals, files and anyhow;
//! the model below it returns typed errors.

mod id;
mod keys;
mod lines;
mod sign;
mod tour;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// docket: an append-only, signed, auditable ledger of designation-list events.
///
/// Agencies sign events (notice, objection, decision, designation, measures,
/// restoration) with ed25519 keys; docket checks, stores and replays them.
/// Start with `docket tour` for a two-minute walk through signing and checking.
#[derive(Debug, Parser)]
#[command(
    name = "docket",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an ed25519 signing key file (mode 0600) and print its public key.
    ///
    /// Example: docket keygen --out spc.key
    Keygen {
        /// Where to write the secret key. Refuses to overwrite unless --force.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Sign events: JSON lines of unsigned events in, JSON lines of signed events out.
    ///
    /// Each input line is one event as in schemas/unsigned-event.schema.json. A
    /// missing "key" is filled in with the signing key's public key. Blank lines
    /// and lines starting with '#' are skipped. Stops at the first bad line and
    /// names it; nothing is written for a run with errors.
    ///
    /// Example: docket sign --key spc.key events.jsonl --out signed.jsonl
    Sign {
        /// Secret key file from `docket keygen`.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Input file; standard input if absent or "-". A single JSON document
        /// (e.g. one pretty-printed example) is accepted too.
        #[arg(value_name = "IN")]
        input: Option<PathBuf>,
        /// Output file; standard output if absent.
        #[arg(long, value_name = "OUT")]
        out: Option<PathBuf>,
    },
    /// Decode and verify signed events (JSON lines) and print them readably.
    ///
    /// Checks each line's form, id and signature under docket's acceptance rule.
    /// Does not check registry authorisation (that needs the ledger; see `docket verify`).
    /// Exits 1 if any line fails, after reporting every failing line.
    ///
    /// Example: docket inspect signed.jsonl
    Inspect {
        /// Signed events, one JSON object per line; standard input if absent or "-".
        #[arg(value_name = "FILE")]
        input: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Identifiers: validate Unified Social Credit Codes and resident identity numbers.
    #[command(subcommand)]
    Id(IdCommand),
    /// A short guided tour: make a key, sign the bundled examples, inspect them,
    /// tamper with one, check some identifiers. Writes only to a temporary directory.
    Tour,
}

#[derive(Debug, Subcommand)]
enum IdCommand {
    /// Check codes: valid or not, which scheme, birth date of a resident id, or where the fault is.
    ///
    /// Exits 1 if any code is invalid.
    ///
    /// Example: docket id check 91110105MA01ABCD13 110105198001011238
    Check {
        /// Codes to check (18 characters each).
        #[arg(required = true, value_name = "CODE")]
        codes: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For people.
    Text,
    /// One JSON object per line, for scripts.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen { out, force } => keys::keygen(&out, force),
        Command::Sign { key, input, out } => sign::sign(&key, input.as_deref(), out.as_deref()),
        Command::Inspect { input, format } => sign::inspect(input.as_deref(), format),
        Command::Id(IdCommand::Check { codes, format }) => id::check(&codes, format),
        Command::Tour => tour::run(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
