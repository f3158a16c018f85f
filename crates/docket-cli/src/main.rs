//! `docket`: the command-line tool of the docket designation ledger.
//!
//! Only this crate (and the server) knows about terminals, files and anyhow;
//! the model below it returns typed errors.

mod audit;
mod export;
mod follow;
mod id;
mod keys;
mod ledger;
mod lines;
mod progress;
mod replay;
mod replica;
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
    #[command(after_help = r#"Example:
  docket keygen --out spc.key"#)]
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
    #[command(after_help = r#"Example:
  docket sign --key spc.key events.jsonl --out signed.jsonl"#)]
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
    #[command(after_help = r#"Example:
  docket inspect signed.jsonl"#)]
    Inspect {
        /// Signed events, one JSON object per line; standard input if absent or "-".
        #[arg(value_name = "FILE")]
        input: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Identifiers: validate Unified Social Credit Codes and resident identity numbers.
    #[command(
        subcommand,
        after_help = r#"Example:
  docket id check 91110105MA01ABCD13 110105198001011238"#
    )]
    Id(IdCommand),
    /// Create a ledger directory: log key, registry root key, optional genesis registry events.
    ///
    /// Prints the public keys an outside verifier needs, and writes a registry
    /// template (DIR/registry-template.jsonl) to edit, sign with the root key and
    /// append. With --registry, each line of FILE is an unsigned registry event,
    /// signed with the new root key and appended as genesis.
    #[command(after_help = r#"Examples:
  docket init --dir ledger                      # then edit ledger/registry-template.jsonl
  docket sign --key ledger/keys/registry-root.key ledger/registry-template.jsonl | docket append --dir ledger
  docket init --dir ledger2 --registry my-registry.jsonl --origin agency.example/ledger"#)]
    Init {
        /// Directory for the new ledger: absent or empty (default: DOCKET_DIR). Built beside it and
        /// renamed into place, so a failed init leaves nothing behind.
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
        dir: PathBuf,
        /// Origin line of the checkpoints: a name unique to this log.
        #[arg(long, default_value = "docket.invalid/ledger")]
        origin: String,
        /// Unsigned registry events (JSON lines) to sign with the new root key as genesis.
        #[arg(long, value_name = "FILE")]
        registry: Option<PathBuf>,
        /// text: for people; json: one document for scripts (`table` means text).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Append signed events (JSON lines from `docket sign`) and print a receipt per event.
    ///
    /// Events are checked as on every append path: signature, registered and
    /// unrevoked key, role, case existence, expected version, duplicates (a
    /// duplicate prints its original receipt). Stops at the first refusal,
    /// naming the line; what came before is kept. Signs a checkpoint at the end.
    #[command(after_help = r#"Example:
  docket append --dir ledger signed.jsonl"#)]
    Append {
        /// The ledger directory (default: the DOCKET_DIR environment variable).
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
        dir: PathBuf,
        /// Signed events; standard input if absent or "-".
        #[arg(value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Sign a checkpoint (C2SP tlog-checkpoint) of the current log and print it.
    #[command(after_help = r#"Examples:
  docket checkpoint --dir ledger > checkpoint.txt
  docket checkpoint --dir ledger --format json"#)]
    Checkpoint {
        /// The ledger directory (default: the DOCKET_DIR environment variable).
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
        dir: PathBuf,
        /// text: for people; json: one document for scripts (`table` means text).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Open the ledger as a server would and say what recovery did; with
    /// --cut-damaged-write, also cut a last write that a power loss damaged.
    ///
    /// A plain open refuses damage before the last valid commit frame, since
    /// those bytes were synced and may have been acknowledged. After a power
    /// loss, the last write's pages can reach the disk out of order and look
    /// exactly like such damage: an operator who knows the machine lost power
    /// may cut it. The cut is refused if a signed checkpoint covers any of it.
    #[command(after_help = r#"Example:
  docket recover --dir ledger --cut-damaged-write"#)]
    Recover {
        /// The ledger directory (default: the DOCKET_DIR environment variable).
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
        dir: PathBuf,
        /// Cut damage within one write of the end of the last segment, with
        /// everything after the last commit point before it.
        #[arg(long)]
        cut_damaged_write: bool,
    },
    /// Print a Merkle proof (RFC 6962), checked before it is printed.
    #[command(
        subcommand,
        after_help = r#"Examples:
  docket proof inclusion --dir demo --seq 42
  docket proof consistency --dir demo --old 100"#
    )]
    Proof(ProofCommand),
    /// Verify a ledger directory from scratch, or a served log from its tlog-tiles, as an outside party would.
    ///
    /// With --dir: checks every frame and chain link, every signature
    /// (batched, on all cores), the authorisation of every event as of its
    /// position, and the Merkle root against the latest checkpoint and, with
    /// --checkpoint, the consistency of an older checkpoint.
    ///
    /// With --url: checks a served log as a witness does, from its C2SP
    /// tlog-tiles prefix only: the checkpoint's signature by the operator's
    /// key (--log-key), every hash tile, the root rebuilt from them; with
    /// a reader holding the oversight role (--key/--agency or --token), every
    /// entry bundle: each entry's hash, seq and event signature. --watch
    /// polls and proves each new checkpoint consistent with the last.
    ///
    /// Exit 0 only if everything holds; exit 1 naming the first bad seq,
    /// segment, offset or tile; 2 if the check could not run.
    #[command(after_help = r#"Examples:
  docket verify --dir ledger --checkpoint old-checkpoint.txt
  docket verify --url https://ledger.example/log --log-key ledger.example/ledger+1a2b3c4d+AW...
  docket verify --url http://127.0.0.1:8080 --log-key demo/ledger.json --key nao.key --agency nao --watch 30"#)]
    Verify {
        /// The ledger directory (default: DOCKET_DIR); --url, if given, is verified instead.
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR", required_unless_present = "url")]
        dir: Option<PathBuf>,
        /// An older signed checkpoint that the log must be consistent with.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// A served log's tlog-tiles prefix, e.g. https://HOST/log or http://HOST:PORT/log (a bare server URL means /log).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// The operator's checkpoint key: a verifier string NAME+ID+KEY, or a file
        /// holding one (or a ledger.json). Printed by `docket init`.
        #[arg(long, value_name = "KEY|FILE", requires = "url")]
        log_key: Option<String>,
        /// With --url: poll every SECONDS and check each new checkpoint is consistent with the last; runs until a mismatch.
        #[arg(long, value_name = "SECONDS", requires = "url", value_parser = clap::value_parser!(u64).range(1..=86_400))]
        watch: Option<u64>,
        #[command(flatten)]
        reader: ReaderArgs,
        /// text: for people; json: one document for scripts (`table` means text).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Read and verify the inquiry register: every non-public read the server
    /// answered (agency, key, question, time), hash-chained and checkpointed.
    ///
    /// Verifies every record and the register's latest signed checkpoint
    /// first (exit 1 naming the damage if they do not hold), then prints the
    /// records from --from, and a count per agency. Runs beside a server.
    #[command(after_help = r#"Example:
  docket inquiries --dir ledger --agency china-railway --format json"#)]
    Inquiries {
        /// The ledger directory (default: the DOCKET_DIR environment variable).
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
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
        /// text: counts per agency, then a table of records; json: one document.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Build a deterministic demo ledger: three lists, 24 agencies, 32 measures,
    /// MOUs, and N subjects whose cases run the whole lifecycle, with a known
    /// number of planted procedural violations. Keys are written under DIR/keys.
    /// Progress goes to standard error as the events are built and appended.
    #[command(after_help = r#"Examples:
  docket demo --dir demo --subjects 1000 --seed 1
  docket demo --dir big --subjects 20000 --format json"#)]
    Demo {
        /// The ledger directory (default: the DOCKET_DIR environment variable).
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
        dir: PathBuf,
        /// Number of subjects (one case each).
        #[arg(long, default_value_t = 200)]
        subjects: u64,
        /// Seed: the same seed gives the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// text: for people; json: one document for scripts (`table` means text).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print a projection: a list, a worklist, a subject, the public list or a point check.
    ///
    /// Reads the materialised projections (DIR/views.redb), catching up with
    /// the log first; a store that does not match the log is rebuilt.
    /// --as-of SEQ or TIME asks what the ledger said then; --valid-at TIME asks
    /// what was in force at TIME (as known at --as-of). Without --valid-at the
    /// valid time is the as-of time, or now. Times are RFC 3339 or a date
    /// (midnight in China Standard Time).
    #[command(after_help = r#"Example:
  docket replay --dir demo --view check --subject uscc:91350100M000100Y43 --measure restrict-air-travel
  docket replay --dir demo --view public --list cn-civil-aviation --format json
  DOCKET_DIR=demo docket replay --view list --agency spc --as-of 500 --valid-at 2024-06-01"#)]
    Replay {
        /// The ledger directory (default: the DOCKET_DIR environment variable).
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
        dir: PathBuf,
        /// Which projection to print.
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
        /// text: aligned columns (`table` means the same); json: one document.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Export a view or the event history as CSV, JSON Lines, FollowTheMoney or Parquet.
    ///
    /// Any view at any bitemporal point (--as-of, --valid-at, as for replay);
    /// the public view is masked as the public list is. FollowTheMoney is the
    /// public list's Company/Person/LegalEntity and Sanction entities. A file
    /// given to --out appears only once it is complete.
    ///
    /// Example: docket export --dir demo --view events --format parquet --out events.parquet
    #[command(after_help = "Examples:
  docket export --dir demo --view public --format ftm --out public.ftm.json
  docket export --dir demo --view events --format parquet --out events.parquet
  docket export --dir demo --view public --format csv --valid-at 2025-06-30T00:00:00+08:00")]
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
    #[command(after_help = r#"Example:
  docket audit --dir demo --list cn-spc-defaulters
  docket audit --dir demo --valid-at 2025-06-01 --format json"#)]
    Audit {
        /// The ledger directory (default: the DOCKET_DIR environment variable).
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
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
        /// text (or table): counts by rule and agency, then every finding; json: schemas/audit-report.schema.json.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compute a deadline under the period rules and show the holidays and
    /// adjusted working days it crossed.
    ///
    /// The starting day is not counted. Calendar days: a last day that is not a
    /// working day moves to the next working day. Working days: weekends and
    /// holidays are skipped, adjusted working weekends count. A period reaching a
    /// year the calendar does not cover is marked provisional.
    #[command(group(clap::ArgGroup::new("period").required(true).args(["working_days", "days"])))]
    #[command(after_help = r#"Example:
  docket deadline --from 2024-09-27 --working-days 7"#)]
    Deadline {
        /// The day the period starts from (not counted), e.g. the day the notice was served.
        #[arg(long, value_name = "DATE")]
        from: String,
        /// A period of N working days (weekends and holidays skipped).
        #[arg(long, value_name = "N")]
        working_days: Option<u32>,
        /// A period of N calendar days (a last day off work moves to the next working day).
        #[arg(long, value_name = "N")]
        days: Option<u32>,
        /// Calendar: the bundled id (cn-state-council) or a calendar document file.
        #[arg(long, value_name = "ID|FILE")]
        calendar: Option<String>,
        /// text: for people; json: one document for scripts (`table` means text).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Rebuild the projections from the log into a shadow file and swap it in.
    #[command(after_help = r#"Example:
  docket rebuild --dir demo"#)]
    Rebuild {
        /// The ledger directory (default: the DOCKET_DIR environment variable).
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
        dir: PathBuf,
        /// text: for people; json: one document for scripts (`table` means text).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Serve the HTTP API: appends, projections, the change feed, checkpoints and tiles.
    ///
    /// Opens the ledger in DIR (building the demo there first if DIR holds no
    /// ledger), catches the projections up, and serves until Ctrl-C. Prints
    /// the URL and example requests.
    #[command(after_help = r#"Example:
  docket serve --dir demo --addr 127.0.0.1:8080
  RUST_LOG=info docket serve --dir ledger --log-format json
  AWS_ENDPOINT=https://s3.example docket serve --dir ledger --publish s3://ledger-public/log --publish-entries s3://ledger-private/log"#)]
    Serve {
        /// The ledger directory. Without it: ./docket-demo, where the demo is
        /// built on first run. A DIR given here must hold a ledger (docket
        /// init), unless --demo asks for the demo. Default: DOCKET_DIR if set.
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
        dir: Option<PathBuf>,
        /// Build the demo in DIR if it holds no ledger. The demo's keys are
        /// derived from a public seed: anyone can sign for it.
        #[arg(long)]
        demo: bool,
        /// Address to listen on (port 0: any free port, printed at start).
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
        /// Publish the log to S3 (C2SP tlog-tiles: hash tiles and the
        /// checkpoint) under s3://BUCKET/PREFIX, as it grows. Endpoint and
        /// credentials come from the environment (AWS_ENDPOINT,
        /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
        /// AWS_ALLOW_HTTP=true for a plain-HTTP endpoint). Needs
        /// --publish-entries.
        #[arg(long, value_name = "S3_URL", requires = "publish_entries")]
        publish: Option<String>,
        /// Where the entry bundles go (they carry unmasked events): a bucket
        /// or prefix the operator keeps private, s3://BUCKET/PREFIX.
        #[arg(long, value_name = "S3_URL", requires = "publish")]
        publish_entries: Option<String>,
        /// How often the publisher looks for a new checkpoint, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        publish_interval_ms: u64,
    },
    /// Serve the read API as a read-only replica of a primary that publishes to a bucket.
    ///
    /// Follows the log the primary publishes (docket serve --publish): checks
    /// each checkpoint's signature and its consistency with every one seen
    /// before, each entry against its tile, each event's signature, and
    /// appends the records to its own ledger in DIR through the registry's
    /// rules, at the primary's seqs and times; folds its own projections and
    /// serves the reads. Appends and cosignatures are refused with 409
    /// read_only_replica naming the primary. A failed check stops it
    /// advancing, naming the seq; it goes on serving what it verified.
    /// Endpoint and credentials come from the environment as for --publish.
    #[command(after_help = r#"Example:
  docket replica --dir replica --ledger-config ledger.json --from s3://ledger-public/log \
    --entries s3://ledger-private/log --primary https://primary.example --addr 0.0.0.0:8080
  docket replica --dir replica --ledger-config ledger.json --from-primary --primary https://primary.example \
    --key audit-office.key --agency audit-office"#)]
    Replica {
        /// The replica's own ledger directory (made on first run).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The primary's ledger.json (origin, registry root and log keys,
        /// all public), to make DIR on first run.
        #[arg(long, value_name = "FILE")]
        ledger_config: Option<PathBuf>,
        /// The public prefix the primary publishes to, s3://BUCKET/PREFIX.
        #[arg(long, value_name = "S3_URL", requires = "entries", required_unless_present = "from_primary")]
        from: Option<String>,
        /// The private prefix of its entry bundles, s3://BUCKET/PREFIX.
        #[arg(long, value_name = "S3_URL", requires = "from")]
        entries: Option<String>,
        /// Follow the primary's own /log/ (at --primary) instead of a
        /// bucket; entry bundles need a reader with the oversight role
        /// (--key and --agency, or --token).
        #[arg(long, conflicts_with_all = ["from", "entries"])]
        from_primary: bool,
        /// The primary's URL, named when an append is refused here.
        #[arg(long, value_name = "URL")]
        primary: String,
        #[command(flatten)]
        reader: ReaderArgs,
        /// Address to listen on (port 0: any free port, printed at start).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// How often to look for a new checkpoint in the bucket, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        interval_ms: u64,
        /// /readyz fails (503, check replica_follower) when the replica has not held every record of the
        /// newest checkpoint it read for longer than this (ready_lag_ms_max): behind, or unable to reach
        /// the bucket. More than --interval-ms.
        #[arg(long, value_name = "MS", default_value_t = 30_000)]
        ready_lag_ms: u64,
        /// The projection store's page cache in MiB.
        #[arg(long, value_name = "MIB", default_value_t = 64)]
        cache_mib: usize,
        /// Log lines as text or JSON (RUST_LOG filters them).
        #[arg(long, value_enum, default_value_t = serve::LogFormat::Text)]
        log_format: serve::LogFormat,
    },
    /// Rebuild a primary's ledger from the bucket it published to.
    ///
    /// Reads the checkpoint, tiles and entry bundles (docket serve --publish),
    /// verifies them as docket replica does (signature, root, every entry and
    /// event signature, the registry's rules as the records are appended at
    /// their seqs and times), adopts the checkpoint, and installs the log key
    /// given, so that `docket serve --dir DIR` continues the log (and its
    /// publication: the bucket's checkpoint is a prefix of it).
    #[command(after_help = r#"Example:
  docket restore --dir restored --ledger-config ledger.json --log-key log.key \
    --from s3://ledger-public/log --entries s3://ledger-private/log
  docket verify --dir restored"#)]
    Restore {
        /// The new ledger directory (must not hold a ledger).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The primary's ledger.json.
        #[arg(long, value_name = "FILE")]
        ledger_config: PathBuf,
        /// The log's signing key file (keys/log.key of the lost primary, from its safe keeping).
        #[arg(long, value_name = "FILE")]
        log_key: PathBuf,
        /// The public prefix the primary published to, s3://BUCKET/PREFIX.
        #[arg(long, value_name = "S3_URL")]
        from: String,
        /// The private prefix of its entry bundles, s3://BUCKET/PREFIX.
        #[arg(long, value_name = "S3_URL")]
        entries: String,
    },
    /// GET from a docket server (http or https), signing the request with an agency key.
    ///
    /// Non-public reads (views other than public and registry, the feed, single
    /// records, the audit) need a request signed by a registered agency; this
    /// signs it (crates/docket-server/API.md), or sends a session token from
    /// `docket session`, and prints the body. Exits 1 on an HTTP error
    /// status, after printing the error.
    #[command(after_help = r#"Example:
  docket get --key docket-demo/keys/agencies/china-railway.key --agency china-railway 'http://127.0.0.1:8080/v1/views/enforcement?agency=china-railway'
  docket get 'https://ledger.example/v1/views/public?list=cn-civil-aviation'
  DOCKET_SESSION=$(docket session --key spc.key --agency spc http://127.0.0.1:8080) docket get http://127.0.0.1:8080/v1/audit"#)]
    Get {
        /// The URL: http://HOST:PORT/PATH?QUERY or https://HOST/PATH?QUERY
        url: String,
        #[command(flatten)]
        reader: ReaderArgs,
    },
    /// POST a body (a file, or standard input) to a docket server, signed like `docket get`; prints the answer.
    ///
    /// A body that starts with '{' or '[' is sent as JSON, anything else as
    /// application/octet-stream (the wire form). Exits 1 on an HTTP error
    /// status, after printing the error.
    #[command(after_help = r#"Examples:
  docket sign --key spc.key notice.json | docket post http://127.0.0.1:8080/v1/events
  docket post http://127.0.0.1:8080/v1/events/batch batch.json"#)]
    Post {
        /// The URL: http://HOST:PORT/PATH or https://HOST/PATH
        url: String,
        /// The body; standard input if absent or "-".
        #[arg(value_name = "FILE")]
        input: Option<PathBuf>,
        #[command(flatten)]
        reader: ReaderArgs,
    },
    /// Obtain a session token with an agency key (POST /v1/session) and print it.
    ///
    /// The token stands in for a signature on reads until it expires: pass it
    /// to `docket get` or `docket verify --url` with --token, or in the
    /// environment as DOCKET_SESSION. Text output is the token alone (the
    /// expiry goes to stderr), so it can be captured.
    #[command(after_help = r#"Example:
  docket session --key demo/keys/agencies/spc.key --agency spc http://127.0.0.1:8080 --format json
  export DOCKET_SESSION=$(docket session --key demo/keys/agencies/spc.key --agency spc http://127.0.0.1:8080)"#)]
    Session {
        /// The server: http://HOST:PORT or https://HOST
        url: String,
        /// The agency's secret key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The agency the key belongs to.
        #[arg(long)]
        agency: String,
        /// PEM file of CA certificates to trust for https instead of the Mozilla roots.
        #[arg(long, value_name = "FILE", env = "DOCKET_CA")]
        ca: Option<PathBuf>,
        /// text: the token alone on stdout; json: {"agency", "token", "expires_at"}.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// A short guided tour: make a key, sign the bundled examples, inspect them,
    /// tamper with one, check identifiers, build a demo ledger, verify it and
    /// print a proof. Writes only to a temporary directory.
    #[command(after_help = r#"Example:
  docket tour"#)]
    Tour,
    /// Print a shell completion script for docket.
    #[command(after_help = r#"Examples:
  docket completions bash > ~/.local/share/bash-completion/completions/docket
  docket completions zsh > ~/.zfunc/_docket
  docket completions fish > ~/.config/fish/completions/docket.fish"#)]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) of docket, or write one page per command into a directory.
    #[command(after_help = r#"Examples:
  docket man | man -l -
  docket man --out /usr/local/share/man/man1"#)]
    Man {
        /// Write docket.1 and docket-COMMAND.1 pages here instead of printing docket.1.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Who `docket get` reads as, and how it reaches the server.
#[derive(Debug, clap::Args)]
struct ReaderArgs {
    /// The agency's secret key file; without it (and without --token) the request is not signed.
    #[arg(long, value_name = "FILE", requires = "agency")]
    key: Option<PathBuf>,
    /// The agency the key belongs to.
    #[arg(long, requires = "key")]
    agency: Option<String>,
    /// A session token from `docket session`, sent instead of a signature.
    #[arg(long, value_name = "TOKEN", env = "DOCKET_SESSION", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of CA certificates to trust for https instead of the Mozilla roots.
    #[arg(long, value_name = "FILE", env = "DOCKET_CA")]
    ca: Option<PathBuf>,
}

impl ReaderArgs {
    fn reader(&self) -> serve::Reader<'_> {
        serve::Reader {
            key: self.key.as_deref(),
            agency: self.agency.as_deref(),
            token: self.token.as_deref(),
            ca: self.ca.as_deref(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum ProofCommand {
    /// Inclusion of record SEQ in the tree of SIZE records (default: the latest checkpoint's size).
    #[command(after_help = r#"Example:
  docket proof inclusion --dir demo --seq 42 --size 1000"#)]
    Inclusion {
        /// The ledger directory (default: the DOCKET_DIR environment variable).
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
        dir: PathBuf,
        /// The record (its seq, which is its leaf index).
        #[arg(long)]
        seq: u64,
        /// The tree size (default: the latest checkpoint's).
        #[arg(long)]
        size: Option<u64>,
    },
    /// Consistency of the tree of OLD records with the tree of NEW records (default: latest checkpoint).
    #[command(after_help = r#"Example:
  docket proof consistency --dir demo --old 100 --new 1000"#)]
    Consistency {
        /// The ledger directory (default: the DOCKET_DIR environment variable).
        #[arg(long, value_name = "DIR", env = "DOCKET_DIR")]
        dir: PathBuf,
        /// The older tree size.
        #[arg(long)]
        old: u64,
        /// The newer tree size (default: the latest checkpoint's).
        #[arg(long)]
        new: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum IdCommand {
    /// Check codes: valid or not, which scheme, birth date of a resident id, or where the fault is.
    ///
    /// Exits 1 if any code is invalid.
    #[command(after_help = r#"Example:
  docket id check 91110105MA01ABCD13 110105198001011238"#)]
    Check {
        /// Codes to check (18 characters each).
        #[arg(required = true, value_name = "CODE")]
        codes: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// How results are printed: one vocabulary for every command that prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: lines and aligned columns (`table` is accepted as another name).
    #[value(alias = "table")]
    Text,
    /// JSON, for scripts: one document, or one object per line for streams and per-item results.
    Json,
}

/// The program's name as invoked (the first argument), for the hints it prints:
/// `docket` from the PATH, `./target/release/docket` from a build.
pub fn invoked() -> String {
    std::env::args_os()
        .next()
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "docket".to_owned())
}

/// `docket man`: docket.1 on standard output, or every page into `out`.
fn man(out: Option<&std::path::Path>) -> anyhow::Result<bool> {
    use anyhow::Context;
    let command = <Cli as clap::CommandFactory>::command();
    match out {
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()).context("writing the manual page")?,
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
            eprintln!("manual pages written into {}", dir.display());
        }
    }
    Ok(true)
}

/// `docket verify --url`: the witness-like check of a served log.
fn verify_url(
    url: &str,
    log_key: Option<&str>,
    older: Option<&std::path::Path>,
    watch: Option<u64>,
    reader: &ReaderArgs,
    format: Format,
) -> anyhow::Result<bool> {
    use anyhow::Context;
    let log_key = log_key.context("--url needs --log-key: the operator's checkpoint key (printed by docket init)")?;
    let (base, path) = docket_client::split_url(url)?;
    let prefix = match path.trim_end_matches('/') {
        "" => "/log".to_owned(),
        path => path.to_owned(),
    };
    let older = older
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("--checkpoint {}", p.display())))
        .transpose()?;
    let options = follow::Options {
        prefix,
        log_key: follow::log_key(log_key)?,
        entries: reader.key.is_some() || reader.token.is_some(),
        older,
        watch: watch.map(std::time::Duration::from_secs),
        json: format == Format::Json,
    };
    if !options.entries {
        eprintln!("note: entry bundles are not checked: they need a reader with the oversight role (--key and --agency, or --token)");
    }
    follow::run(&reader.reader().client(base)?, &options)
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
        Command::Init { dir, origin, registry, format } => ledger::init(&dir, &origin, registry.as_deref(), format),
        Command::Append { dir, input } => ledger::append(&dir, input.as_deref()),
        Command::Checkpoint { dir, format } => ledger::checkpoint(&dir, format),
        Command::Recover { dir, cut_damaged_write } => ledger::recover(&dir, cut_damaged_write),
        Command::Proof(ProofCommand::Inclusion { dir, seq, size }) => ledger::proof_inclusion(&dir, seq, size),
        Command::Proof(ProofCommand::Consistency { dir, old, new }) => ledger::proof_consistency(&dir, old, new),
        Command::Verify { dir, checkpoint, url, log_key, watch, reader, format } => match (url, dir) {
            (Some(url), _) => verify_url(&url, log_key.as_deref(), checkpoint.as_deref(), watch, &reader, format),
            (None, Some(dir)) => ledger::verify(&dir, checkpoint.as_deref(), format),
            (None, None) => Err(anyhow::anyhow!("verify needs --dir or --url")),
        },
        Command::Demo { dir, subjects, seed, format } => ledger::demo(&dir, subjects, seed, format),
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
        Command::Rebuild { dir, format } => replay::rebuild(&dir, format),
        Command::Serve {
            dir,
            demo,
            addr,
            demo_subjects,
            cache_mib,
            log_format,
            publish,
            publish_entries,
            publish_interval_ms,
        } => {
            serve::init_logs(log_format);
            let publication = publish.zip(publish_entries).map(|(public, entries)| serve::Publication {
                public,
                entries,
                interval: std::time::Duration::from_millis(publish_interval_ms.max(1)),
            });
            serve::serve(dir.as_deref(), demo, addr, demo_subjects, cache_mib, publication)
        }
        Command::Replica {
            dir,
            ledger_config,
            from,
            entries,
            from_primary,
            primary,
            reader,
            addr,
            interval_ms,
            ready_lag_ms,
            cache_mib,
            log_format,
        } => {
            serve::init_logs(log_format);
            let interval = std::time::Duration::from_millis(interval_ms.max(1));
            let ready_lag = std::time::Duration::from_millis(ready_lag_ms);
            let source = match (from, entries) {
                (Some(from), Some(entries)) if !from_primary => Ok(replica::Source::Bucket { from, entries }),
                _ => reader.reader().client(&primary).map(|c| replica::Source::Primary(std::sync::Arc::new(c))),
            };
            source.and_then(|source| {
                let (config, primary) = (ledger_config, primary);
                replica::run(&replica::Options {
                    dir,
                    source,
                    ledger_config: config,
                    primary,
                    addr,
                    interval,
                    ready_lag,
                    cache_mib,
                })
            })
        }
        Command::Restore { dir, ledger_config, log_key, from, entries } => {
            replica::restore(&replica::RestoreOptions { dir, ledger_config, from, entries, log_key })
        }
        Command::Get { url, reader } => serve::get(&url, &reader.reader()),
        Command::Post { url, input, reader } => serve::post(&url, input.as_deref(), &reader.reader()),
        Command::Session { url, key, agency, ca, format } => {
            let reader = serve::Reader { key: Some(&key), agency: Some(&agency), token: None, ca: ca.as_deref() };
            serve::session(&url, &reader, format)
        }
        Command::Tour => tour::run(),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "docket",
                &mut std::io::stdout(),
            );
            Ok(true)
        }
        Command::Man { out } => man(out.as_deref()),
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand, with its path, below `command`.
    fn walk(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            out.push((path.clone(), sub.clone()));
            walk(sub, &path, out);
        }
    }

    #[test]
    fn every_command_has_an_example_and_every_option_help() {
        let command = super::Cli::command();
        command.clone().debug_assert();
        let mut commands = vec![];
        walk(&command, "docket", &mut commands);
        assert!(commands.len() > 20, "{}", commands.len());
        let mut missing = vec![];
        for (path, sub) in &commands {
            if !sub.get_after_help().is_some_and(|help| help.to_string().contains("\n  docket ")) {
                missing.push(format!("{path}: no example in after_help"));
            }
            for arg in sub.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}: no help", arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
