//! `docket`: the command-line tool of the docket designation ledger.
//!
//! Only this crate (and the server) knows about terminals, files and anyhow;
//! the model below it returns typed errors.

mod audit;
mod export;
mod id;
mod keys;
mod ledger;
mod lines;
mod replay;
mod serve;
mod sign;
mod tour;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

// The fold and the verifier move decoded events between threads; glibc's
// allocator serialises those cross-thread frees on an arena lock. mimalloc
// made the fold 30% faster in fold-bench (BENCH.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// docket: an append-only, signed, auditable ledger of designation-list events.
///
/// Agencies sign events (notice, objection, decision, designation, measures,
/// restoration) with ed25519 keys; docket checks, stores and replays them.
/// Start with `docket tour` for a two-minute walk through signing and checking.
#[derive(Debug, Parser)]
#[command(name = "docket", version, propagate_version = true, max_term_width = 100)]
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
    /// Create a ledger directory: log key, registry root key, optional genesis registry events.
    ///
    /// Prints the public keys an outside verifier needs. With --registry, each
    /// line of FILE is an unsigned registry event, signed with the new root key
    /// and appended as genesis.
    ///
    /// Example: docket init --dir ledger --registry registry.jsonl
    Init {
        /// Directory for the ledger (created; must not hold one already).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Origin line of the checkpoints: a name unique to this log.
        #[arg(long, default_value = "docket.invalid/ledger")]
        origin: String,
        /// Unsigned registry events (JSON lines) to sign with the new root key as genesis.
        #[arg(long, value_name = "FILE")]
        registry: Option<PathBuf>,
    },
    /// Append signed events (JSON lines from `docket sign`) and print a receipt per event.
    ///
    /// Events are checked as on every append path: signature, registered and
    /// unrevoked key, role, case existence, expected version, duplicates (a
    /// duplicate prints its original receipt). Stops at the first refusal,
    /// naming the line; what came before is kept. Signs a checkpoint at the end.
    ///
    /// Example: docket append --dir ledger signed.jsonl
    Append {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Signed events; standard input if absent or "-".
        #[arg(value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Sign a checkpoint (C2SP tlog-checkpoint) of the current log and print it.
    Checkpoint {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Open the ledger as a server would and say what recovery did; with
    /// --cut-damaged-write, also cut a last write that a power loss damaged.
    ///
    /// A plain open refuses damage before the last valid commit frame, since
    /// those bytes were synced and may have been acknowledged. After a power
    /// loss, the last write's pages can reach the disk out of order and look
    /// exactly like such damage: an operator who knows the machine lost power
    /// may cut it. The cut is refused if a signed checkpoint covers any of it.
    ///
    /// Example: docket recover --dir ledger --cut-damaged-write
    Recover {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Cut damage within one write of the end of the last segment, with
        /// everything after the last commit point before it.
        #[arg(long)]
        cut_damaged_write: bool,
    },
    /// Print a Merkle proof (RFC 6962), checked before it is printed.
    #[command(subcommand)]
    Proof(ProofCommand),
    /// Verify a ledger directory from scratch, as an outside party would.
    ///
    /// Checks every frame and chain link, every signature (batched, on all
    /// cores), the authorisation of every event as of its position, and the
    /// Merkle root against the latest checkpoint and, with --checkpoint, the
    /// consistency of an older checkpoint. Exit 0 only if everything holds;
    /// otherwise exit 1 naming the first bad seq, segment and offset.
    ///
    /// Example: docket verify --dir ledger --checkpoint old-checkpoint.txt
    Verify {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// An older signed checkpoint that the log must be consistent with.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Read and verify the inquiry register: every non-public read the server
    /// answered (agency, key, question, time), hash-chained and checkpointed.
    ///
    /// Verifies every record and the register's latest signed checkpoint
    /// first (exit 1 naming the damage if they do not hold), then prints the
    /// records from --from, and a count per agency. Runs beside a server.
    ///
    /// Example: docket inquiries --dir ledger --agency china-railway --format json
    Inquiries {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// First record to print.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Records to print at most.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Only the reads of this agency.
        #[arg(long)]
        agency: Option<String>,
        #[arg(long, value_enum, default_value_t = replay::ViewFormat::Table)]
        format: replay::ViewFormat,
    },
    /// Build a deterministic demo ledger: three lists, 24 agencies, 32 measures,
    /// MOUs, and N subjects whose cases run the whole lifecycle, with a known
    /// number of planted procedural violations. Keys are written under DIR/keys.
    ///
    /// Example: docket demo --dir demo --subjects 1000 --seed 1
    Demo {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Number of subjects (one case each).
        #[arg(long, default_value_t = 200)]
        subjects: u64,
        /// Seed: the same seed gives the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print a projection: a list, a worklist, a subject, the public list or a point check.
    ///
    /// Reads the materialised projections (DIR/views.redb), catching up with
    /// the log first; a store that does not match the log is rebuilt.
    /// --as-of SEQ or TIME asks what the ledger said then; --valid-at TIME asks
    /// what was in force at TIME (as known at --as-of). Without --valid-at the
    /// valid time is the as-of time, or now. Times are RFC 3339 or a date
    /// (midnight in China Standard Time).
    ///
    /// Example: docket replay --dir demo --view check --subject uscc:91350100M000100Y43 --measure restrict-air-travel
    Replay {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        #[arg(long, value_enum)]
        view: replay::View,
        /// Agency: whose lists (list), whose worklist (enforcement), whose application (check).
        #[arg(long)]
        agency: Option<String>,
        /// Only this list (list, public).
        #[arg(long)]
        list: Option<String>,
        /// Subject: uscc:CODE, resident:NUMBER, SCHEME:VALUE or a bare 18-character code (subject, check).
        #[arg(long)]
        subject: Option<String>,
        /// Measure code (check).
        #[arg(long)]
        measure: Option<String>,
        /// System time: a seq (inclusive) or a time.
        #[arg(long, value_name = "SEQ|TIME")]
        as_of: Option<String>,
        /// Valid time.
        #[arg(long, value_name = "TIME")]
        valid_at: Option<String>,
        #[arg(long, value_enum, default_value_t = replay::ViewFormat::Table)]
        format: replay::ViewFormat,
    },
    /// Export a view or the event history as CSV, JSON Lines, FollowTheMoney or Parquet.
    ///
    /// Any view at any bitemporal point (--as-of, --valid-at, as for replay);
    /// the public view is masked as the public list is. FollowTheMoney is the
    /// public list's Company/Person/LegalEntity and Sanction entities. A file
    /// given to --out appears only once it is complete.
    ///
    /// Example: docket export --dir demo --view events --format parquet --out events.parquet
    Export(export::ExportArgs),
    /// Audit every case against the procedural rules of its list.
    ///
    /// Checks notice before designation, the objection window, objection
    /// decisions and their deadlines, decision content, measures (catalogued,
    /// under an MOU, only while designated), removal after the case ends,
    /// publicity before restoration, the maximum term and minors. Deadlines
    /// use the rule set's periods and the holiday calendar. --as-of audits
    /// what the ledger held then; a deadline not yet passed then is pending.
    /// Exits 0 whether or not there are findings; 2 if the audit could not run.
    ///
    /// Example: docket audit --dir demo --list cn-spc-defaulters
    Audit {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Only this list.
        #[arg(long)]
        list: Option<String>,
        /// Only findings where this agency had to act.
        #[arg(long)]
        agency: Option<String>,
        /// System time: a seq (inclusive) or a time. Also "today" for deadlines, unless --valid-at.
        #[arg(long, value_name = "SEQ|TIME")]
        as_of: Option<String>,
        /// The day deadlines are judged on (default: the as-of time, or now).
        #[arg(long, value_name = "TIME")]
        valid_at: Option<String>,
        /// A rule set document (schemas/rule-set.schema.json) replacing the bundled one
        /// with the same id and version, e.g. to set an unconfirmed parameter. Repeatable.
        #[arg(long, value_name = "FILE")]
        rules: Vec<PathBuf>,
        /// Calendar: the bundled id (cn-state-council) or a calendar document file.
        #[arg(long, value_name = "ID|FILE")]
        calendar: Option<String>,
        /// table: counts by rule and agency, then every finding; json: schemas/audit-report.schema.json.
        #[arg(long, value_enum, default_value_t = replay::ViewFormat::Table)]
        format: replay::ViewFormat,
    },
    /// Compute a deadline under the period rules and show the holidays and
    /// adjusted working days it crossed.
    ///
    /// The starting day is not counted. Calendar days: a last day that is not a
    /// working day moves to the next working day. Working days: weekends and
    /// holidays are skipped, adjusted working weekends count. A period reaching a
    /// year the calendar does not cover is marked provisional.
    ///
    /// Example: docket deadline --from 2024-09-27 --working-days 7
    #[command(group(clap::ArgGroup::new("period").required(true).args(["working_days", "days"])))]
    Deadline {
        /// The day the period starts from (not counted), e.g. the day the notice was served.
        #[arg(long, value_name = "DATE")]
        from: String,
        #[arg(long, value_name = "N")]
        working_days: Option<u32>,
        #[arg(long, value_name = "N")]
        days: Option<u32>,
        /// Calendar: the bundled id (cn-state-council) or a calendar document file.
        #[arg(long, value_name = "ID|FILE")]
        calendar: Option<String>,
        #[arg(long, value_enum, default_value_t = replay::ViewFormat::Table)]
        format: replay::ViewFormat,
    },
    /// Rebuild the projections from the log into a shadow file and swap it in.
    Rebuild {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Serve the HTTP API: appends, projections, the change feed, checkpoints and tiles.
    ///
    /// Opens the ledger in DIR (building the demo there first if DIR holds no
    /// ledger), catches the projections up, and serves until Ctrl-C. Prints
    /// the URL and example requests.
    ///
    /// Example: docket serve --dir demo --addr 127.0.0.1:8080
    Serve {
        /// The ledger directory. Without it: ./docket-demo, where the demo is
        /// built on first run. A DIR given here must hold a ledger (docket
        /// init), unless --demo asks for the demo.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Build the demo in DIR if it holds no ledger. The demo's keys are
        /// derived from a public seed: anyone can sign for it.
        #[arg(long)]
        demo: bool,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Subjects of the demo built when DIR holds no ledger.
        #[arg(long, default_value_t = 1000)]
        demo_subjects: u64,
        /// The projection store's page cache in MiB. Point checks stay flat as
        /// history grows while the store's pages fit (BENCH.md: 10M events
        /// make a 2.3 GB store).
        #[arg(long, value_name = "MIB", default_value_t = 64)]
        cache_mib: usize,
        /// Log lines as text (for a terminal) or JSON (one object per line,
        /// for a collector). RUST_LOG filters them (default: info), e.g.
        /// RUST_LOG=docket_server=debug,tower_http=info.
        #[arg(long, value_enum, default_value_t = serve::LogFormat::Text)]
        log_format: serve::LogFormat,
    },
    /// GET from a docket server, signing the request with an agency key.
    ///
    /// Non-public reads (views other than public and registry, the feed, single
    /// records, the audit) need a request signed by a registered agency; this
    /// signs it (crates/docket-server/API.md) and prints the body. Exits 1 on
    /// an HTTP error status, after printing the error.
    ///
    /// Example: docket get --key docket-demo/keys/agencies/china-railway.key --agency china-railway 'http://127.0.0.1:8080/v1/views/enforcement?agency=china-railway'
    Get {
        /// http://HOST:PORT/PATH?QUERY
        url: String,
        /// The agency's secret key file; without it the request is not signed.
        #[arg(long, value_name = "FILE", requires = "agency")]
        key: Option<PathBuf>,
        /// The agency the key belongs to.
        #[arg(long, requires = "key")]
        agency: Option<String>,
    },
    /// A short guided tour: make a key, sign the bundled examples, inspect them,
    /// tamper with one, check identifiers, build a demo ledger, verify it and
    /// print a proof. Writes only to a temporary directory.
    Tour,
}

#[derive(Debug, Subcommand)]
enum ProofCommand {
    /// Inclusion of record SEQ in the tree of SIZE records (default: the latest checkpoint's size).
    Inclusion {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        #[arg(long)]
        seq: u64,
        #[arg(long)]
        size: Option<u64>,
    },
    /// Consistency of the tree of OLD records with the tree of NEW records (default: latest checkpoint).
    Consistency {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        #[arg(long)]
        old: u64,
        #[arg(long)]
        new: Option<u64>,
    },
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

/// A reader that stops early (`docket audit | head`) closes the pipe, and the
/// next `println!` panics on the broken pipe. That is the reader's choice,
/// not a failure of docket: end quietly with success, as Unix tools do.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .payload_as_str()
            .is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe"))
        {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen { out, force } => keys::keygen(&out, force),
        Command::Sign { key, input, out } => sign::sign(&key, input.as_deref(), out.as_deref()),
        Command::Inspect { input, format } => sign::inspect(input.as_deref(), format),
        Command::Id(IdCommand::Check { codes, format }) => id::check(&codes, format),
        Command::Init { dir, origin, registry } => ledger::init(&dir, &origin, registry.as_deref()),
        Command::Append { dir, input } => ledger::append(&dir, input.as_deref()),
        Command::Checkpoint { dir } => ledger::checkpoint(&dir),
        Command::Recover { dir, cut_damaged_write } => ledger::recover(&dir, cut_damaged_write),
        Command::Proof(ProofCommand::Inclusion { dir, seq, size }) => ledger::proof_inclusion(&dir, seq, size),
        Command::Proof(ProofCommand::Consistency { dir, old, new }) => ledger::proof_consistency(&dir, old, new),
        Command::Verify { dir, checkpoint } => ledger::verify(&dir, checkpoint.as_deref()),
        Command::Demo { dir, subjects, seed } => ledger::demo(&dir, subjects, seed),
        Command::Inquiries { dir, from, limit, agency, format } => {
            ledger::inquiries(&dir, from, limit, agency.as_deref(), format)
        }
        Command::Replay { dir, view, agency, list, subject, measure, as_of, valid_at, format } => {
            let query = replay::Query { view, agency, list, subject, measure, as_of, valid_at, format };
            replay::replay(&dir, &query)
        }
        Command::Export(args) => export::export(&args),
        Command::Audit { dir, list, agency, as_of, valid_at, rules, calendar, format } => {
            let query = audit::AuditQuery { list, agency, as_of, valid_at, rules, calendar, format };
            audit::run(&dir, &query)
        }
        Command::Deadline { from, working_days, days, calendar, format } => {
            let period = match (working_days, days) {
                (Some(n), _) => docket_audit::Period::WorkingDays(n),
                (None, n) => docket_audit::Period::Days(n.unwrap_or(0)),
            };
            audit::deadline(&from, period, calendar.as_deref(), format)
        }
        Command::Rebuild { dir } => replay::rebuild(&dir),
        Command::Serve { dir, demo, addr, demo_subjects, cache_mib, log_format } => {
            serve::init_logs(log_format);
            serve::serve(dir.as_deref(), demo, addr, demo_subjects, cache_mib)
        }
        Command::Get { url, key, agency } => serve::get(&url, key.as_deref(), agency.as_deref()),
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
