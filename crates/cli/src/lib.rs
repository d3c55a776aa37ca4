//! The `gongkai` command line as a library (the root package's `main` only
//! calls [`main`]).
//!
//! In scope: key files ([`keyfile`]), the client commands of a department
//! clerk (writes: matters, items, requests, bulk import; reads: catalog,
//! item history with verification, content download), and the tools of the
//! inspection office and third parties: [`verify`], [`export`], [`audit`],
//! [`prove`] / `check-proof` and [`monitor`], with the keys they trust from
//! a [`trust`] file. Everything that
//! hashes, signs or verifies is `gongkai-core`'s; this crate wires it to
//! the node's gRPC API (`gongkai-proto`). Server commands (`node`,
//! `aggregator`) join the [`Command`] enum once those crates exist.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gongkai_core::date::Date;
use gongkai_core::types::{ItemId, MatterId, RequestId};

mod admin;
pub mod audit;
mod bench;
mod bench_audit;
mod bench_bucket;
mod bench_county;
mod bench_memory;
mod calendar;
mod certs;
pub mod client;
mod county;
mod demo;
pub mod export;
pub mod fetch;
mod import;
pub mod input;
pub mod keyfile;
pub mod monitor;
mod node;
pub mod output;
pub mod prove;
mod read;
pub mod report;
mod sample;
pub mod static_http;
pub mod verify;
pub mod witness;
mod write;

// The verification engine, the export layout and the trust file live in
// `gongkai-verify`; named here so the commands refer to them briefly.
use gongkai_verify::{engine, layout, trust};

/// Writes `bytes` to `path` atomically and durably with `mode` (the store's
/// one durable-write helper: temp file, fsync, rename, fsync of the
/// directory).
///
/// # Errors
/// Local I/O, naming the file.
pub fn write_file(path: &std::path::Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    gongkai_store::write_file_durably_mode(path, bytes, mode).map_err(anyhow::Error::new)
}

use client::Connection;

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  the node refused the request (invalid input, a catalog rule such as
     \"item is withdrawn\", missing or wrong token, not found)
  2  usage error, bad local input (file, id, date), or local I/O error
  3  the node could not be reached (writes are retried first, with the
     same idempotency key, so a retry never records an event twice)
  4  the node's answer does not verify (signature, inclusion proof or
     content hash): do not rely on it, and tell the inspection office

verify, audit, monitor --once and check-proof use their own codes:
  0 clean / verified, 1 violations found, 2 could not verify (unreachable,
  unreadable export, bad arguments).

Environment: GONGKAI_SERVER, GONGKAI_TOKEN, GONGKAI_ORIGIN stand in for
--server, --token, --origin.";

/// gongkai: a verifiable ledger for open-government disclosure (政务公开).
///
/// Records what your department publishes, amends, withdraws and redacts,
/// and the disclosure requests it answers, in the department's signed,
/// append-only log; and shows (and checks) what the log holds.
#[derive(Debug, Parser)]
#[command(name = "gongkai", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    conn: Connection,

    /// Print one JSON object instead of readable text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a signing key file (for a department log, or a witness).
    Keygen(KeygenArgs),

    // ---- writes (need a writer token) ----------------------------------
    /// Upload a document to the node and print its content commitment.
    Upload(UploadArgs),
    /// Define, change or retire a matter of the standard disclosure catalog.
    #[command(subcommand)]
    Matter(MatterCommand),
    /// Publish a new item: uploads the document, then records it.
    Publish(PublishArgs),
    /// Publish a new version of an item (the old version stays in the log).
    Amend(AmendArgs),
    /// Withdraw an item, with the reason and legal basis (its content stays
    /// public, labelled withdrawn).
    Withdraw(WithdrawArgs),
    /// Remove one version's content everywhere (e.g. personal data); the
    /// commitment and the fact of the redaction stay.
    Redact(RedactArgs),
    /// Record the steps of a disclosure request (依申请公开).
    #[command(subcommand)]
    Request(RequestCommand),
    /// Bulk-import an existing catalog from a JSON Lines file.
    Import(ImportArgs),

    // ---- reads (need --origin) -------------------------------------------
    /// List the disclosure catalog (公开目录).
    Items(ItemsArgs),
    /// Show one item, its full history, and verify each history entry.
    Item(ItemArgs),
    /// List the standard disclosure catalog's matters.
    Matters,
    /// List disclosure requests with their deadlines.
    Requests(RequestsArgs),
    /// Show the log's size and replication state.
    Status,
    /// Print the newest signed checkpoint (a signed note).
    Checkpoint(CheckpointArgs),
    /// Download a document by its digest and check it before saving.
    Content(ContentArgs),
    // ---- verification (the inspection office, auditors, citizens) ---------
    /// Verify logs from a server: whole, or incrementally from --state
    /// (exit 0 clean, 1 violations, 2 could not verify).
    Verify(verify::VerifyArgs),
    /// Write a self-contained export of logs (tiles, entry bundles,
    /// checkpoints, content) for offline audit.
    Export(export::ExportArgs),
    /// Verify an export offline and report amendments, withdrawals,
    /// lateness, missing disclosures, back-dating (exit 0 clean, 1
    /// violations, 2 unreadable).
    Audit(audit::AuditArgs),
    /// Write a proof bundle of one item's history (entries, inclusion
    /// proofs, the signed checkpoint).
    Prove(prove::ProveArgs),
    /// Verify a proof bundle offline (exit 0 verified, 1 not).
    CheckProof(prove::CheckProofArgs),
    /// Compute reports from a verified export: `report annual --year Y`
    /// (政府信息公开工作年度报告, each number traceable to log entries).
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Follow logs and alert (JSON lines on stderr, --on-alert CMD) on any
    /// rollback, fork or invalid entry.
    Monitor(monitor::MonitorArgs),
    // ---- operator commands ------------------------------------------------
    /// Run a department node (`--config FILE`), create its log (`init`),
    /// verify its data offline (`check`), or try one out locally (`dev`).
    Node(node::NodeArgs),
    /// Make a writer token and the config lines for a node.
    Token(node::TokenArgs),
    /// Run a whole county on this machine: department nodes, the county
    /// aggregator and its public portal, with a sample published, cosigned
    /// and verified. Resumes the same county when run again.
    Demo(demo::DemoArgs),
    /// Make the county's TLS certificates: a CA, server certificates, and
    /// client certificates for department nodes and writer systems.
    Certs(certs::CertsArgs),
    /// Benchmarks against a running node (throughput, latency, raw limits).
    Bench(bench::BenchArgs),
    /// Run the county aggregator (`--config FILE`).
    Aggregator(county::AggregatorArgs),
    /// Run an independent witness (`--config FILE`): cosigns the county's
    /// and the departments' checkpoints, never a fork.
    Witness(witness::WitnessArgs),
    /// Ask the county aggregator (at --server): status, county checkpoint,
    /// evidence.
    #[command(subcommand)]
    County(county::CountyCommand),
    /// The working-day calendar: publish next year's holiday table on the
    /// county log (each November), amend one, show what is in force.
    #[command(subcommand)]
    Calendar(calendar::CalendarCommand),
}

/// `gongkai keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Key name: for a department key, the log origin (e.g.
    /// gongkai.example/510122/finance); for a witness, its witness name.
    #[arg(long)]
    name: String,
    /// Where to write the private key (mode 0600); the public key goes to
    /// PATH.vkey (mode 0644).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// Make a tlog-cosignature/v1 witness key (type 0x04) instead of a log key.
    #[arg(long)]
    cosigner: bool,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

/// Options of every write.
#[derive(Debug, Clone, Args)]
pub struct WriteOpts {
    /// Idempotency key (1 to 128 characters; default: 16 random bytes in
    /// hex). Sending the same key again returns the first receipt instead
    /// of recording the event twice.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
}

/// `gongkai upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The document.
    file: PathBuf,
    /// Media type, e.g. application/pdf (default: from the file extension).
    #[arg(long, value_parser = input::media_type)]
    media_type: Option<String>,
}

/// `gongkai matter ...`.
#[derive(Debug, Subcommand)]
pub enum MatterCommand {
    /// Define a new matter from a TOML file (see `gongkai matter define --help`).
    ///
    /// MATTER.toml holds: category, level1, level2, elements = [..],
    /// legal_basis, deadline_working_days, responsible_body, channels = [..],
    /// audience = "public" | "group" (then audience_group = ".."),
    /// mode = "proactive" | "on-request", periodicity = "none" | "monthly" |
    /// "quarterly" | "half-yearly" | "yearly", periods_from = "YYYY-MM-DD".
    Define {
        /// Matter id, e.g. budget-dept.
        #[arg(long, value_parser = input::matter_id)]
        id: MatterId,
        /// The matter definition (TOML).
        #[arg(long, value_name = "MATTER.toml")]
        file: PathBuf,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Replace a matter's definition (the reason is recorded).
    Change {
        /// Matter id.
        #[arg(long, value_parser = input::matter_id)]
        id: MatterId,
        /// The new definition (TOML, as for define).
        #[arg(long, value_name = "MATTER.toml")]
        file: PathBuf,
        /// Why the obligation changes.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Retire a matter: no more items are due under it.
    Retire {
        /// Matter id.
        #[arg(long, value_parser = input::matter_id)]
        id: MatterId,
        /// Why it is retired.
        #[arg(long)]
        reason: String,
        /// Legal basis of the retirement.
        #[arg(long)]
        basis: Option<String>,
        #[command(flatten)]
        write: WriteOpts,
    },
}

/// `gongkai publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// New item id, unique in your log forever, e.g. budget-2026.
    #[arg(long, value_parser = input::item_id)]
    item: ItemId,
    /// The matter this item fulfils.
    #[arg(long, value_parser = input::matter_id)]
    matter: MatterId,
    /// Title (public forever: no personal data).
    #[arg(long)]
    title: String,
    /// The document to publish.
    #[arg(long)]
    file: PathBuf,
    /// Media type (default: from the file extension).
    #[arg(long, value_parser = input::media_type)]
    media_type: Option<String>,
    /// The date the information was formed (信息形成之日), YYYY-MM-DD.
    #[arg(long, value_parser = input::date)]
    date_formed: Date,
    /// For periodic matters: the period covered (2026, 2026-H1, 2026-Q3, 2026-07).
    #[arg(long)]
    period: Option<String>,
    /// Legal basis.
    #[arg(long)]
    basis: Option<String>,
    /// Related item, [ORIGIN:]ID=draft|consultation|decision|related; repeat
    /// for several (ORIGIN only for another department's log).
    #[arg(long, value_parser = input::related, value_name = "[ORIGIN:]ID=RELATION")]
    related: Vec<gongkai_core::event::pb::ItemRef>,
    /// Part of a bulk import of the existing catalog (not judged for lateness).
    #[arg(long)]
    imported: bool,
    /// For a matter counted in the annual report's decisions (licensing,
    /// penalty, coercion): how many decisions the item discloses (default
    /// 1); for the fee row: the amount collected, in fen (分).
    #[arg(long)]
    quantity: Option<u64>,
    #[command(flatten)]
    write: WriteOpts,
}

/// `gongkai amend`.
#[derive(Debug, Args)]
pub struct AmendArgs {
    /// The item to amend.
    #[arg(long, value_parser = input::item_id)]
    item: ItemId,
    /// The (new) title.
    #[arg(long)]
    title: String,
    /// The new version of the document.
    #[arg(long)]
    file: PathBuf,
    /// Media type (default: from the file extension).
    #[arg(long, value_parser = input::media_type)]
    media_type: Option<String>,
    /// The date the information changed, YYYY-MM-DD.
    #[arg(long, value_parser = input::date)]
    date_changed: Date,
    /// Why it is amended.
    #[arg(long)]
    reason: String,
    /// A corrected --quantity (see publish).
    #[arg(long)]
    quantity: Option<u64>,
    #[command(flatten)]
    write: WriteOpts,
}

/// `gongkai withdraw`.
#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// The item to withdraw.
    #[arg(long, value_parser = input::item_id)]
    item: ItemId,
    /// Why it is withdrawn.
    #[arg(long)]
    reason: String,
    /// Legal basis of the withdrawal.
    #[arg(long)]
    basis: String,
    #[command(flatten)]
    write: WriteOpts,
}

/// `gongkai redact`.
#[derive(Debug, Args)]
pub struct RedactArgs {
    /// The item.
    #[arg(long, value_parser = input::item_id)]
    item: ItemId,
    /// Digest (hex) of the version's content to remove.
    #[arg(long, value_parser = input::digest)]
    digest: gongkai_core::Hash,
    /// Why it is removed.
    #[arg(long)]
    reason: String,
    /// Legal basis of the redaction.
    #[arg(long)]
    basis: String,
    #[command(flatten)]
    write: WriteOpts,
}

/// Clarification stages.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClarifyStage {
    /// You asked the applicant to correct the request (the clock stops).
    Asked,
    /// The corrected request arrived (the clock restarts).
    Corrected,
}

/// Third-party consultation stages.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConsultStage {
    /// Consultation started (working days from here are excluded).
    Started,
    /// Consultation ended.
    Ended,
}

/// Decisions on a request.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DecisionArg {
    /// Disclosed.
    Disclosed,
    /// Partly disclosed (needs --basis).
    PartlyDisclosed,
    /// Refused (needs --basis).
    Refused,
    /// The information does not exist.
    DoesNotExist,
    /// Already public.
    AlreadyPublic,
    /// Not held by this agency.
    NotThisAgency,
    /// A repeat request.
    RepeatRequest,
}

/// `gongkai request ...`.
#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Record a received request (no applicant names: they are personal data).
    Receive {
        /// New request id, e.g. 2026-0042.
        #[arg(long, value_parser = input::request_id)]
        id: RequestId,
        /// Date received, YYYY-MM-DD.
        #[arg(long, value_parser = input::date)]
        date: Date,
        /// What was asked for, in words fit to be public forever.
        #[arg(long)]
        subject: String,
        /// Who asked, as counted in the annual report (never a name):
        /// natural-person, commercial-enterprise, research-institution,
        /// social-welfare-organization, legal-service-institution,
        /// other-organization.
        #[arg(long, value_parser = input::applicant, value_name = "CATEGORY")]
        applicant: i32,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Record asking the applicant for a correction, or its arrival.
    Clarify {
        /// Request id.
        #[arg(long, value_parser = input::request_id)]
        id: RequestId,
        /// asked or corrected.
        #[arg(long, value_enum)]
        stage: ClarifyStage,
        /// Date, YYYY-MM-DD.
        #[arg(long, value_parser = input::date)]
        date: Date,
        /// A note (public).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Record the start or end of a third-party consultation.
    Consult {
        /// Request id.
        #[arg(long, value_parser = input::request_id)]
        id: RequestId,
        /// started or ended.
        #[arg(long, value_enum)]
        stage: ConsultStage,
        /// Date, YYYY-MM-DD.
        #[arg(long, value_parser = input::date)]
        date: Date,
        /// A note (public).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Extend the deadline once by 20 working days (before it passes).
    Extend {
        /// Request id.
        #[arg(long, value_parser = input::request_id)]
        id: RequestId,
        /// Date of the extension, YYYY-MM-DD.
        #[arg(long, value_parser = input::date)]
        date: Date,
        /// Who approved it (the responsible person's office).
        #[arg(long)]
        approved_by: String,
        /// Why more time is needed.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Record the answer to a request.
    Answer {
        /// Request id.
        #[arg(long, value_parser = input::request_id)]
        id: RequestId,
        /// Date answered, YYYY-MM-DD.
        #[arg(long, value_parser = input::date)]
        date: Date,
        /// The result, as the annual report's table 三 counts it:
        /// disclosed, partly-disclosed; withheld-state-secret,
        /// withheld-prohibited-by-law, withheld-security-stability,
        /// withheld-third-party, withheld-internal-affairs,
        /// withheld-process-information, withheld-enforcement-file,
        /// withheld-administrative-query; unavailable-not-held,
        /// unavailable-needs-creation, unavailable-still-unclear;
        /// not-processed-petition, not-processed-repeat,
        /// not-processed-publication, not-processed-excessive,
        /// not-processed-confirmation; other-not-corrected,
        /// other-fee-unpaid, other.
        #[arg(long, value_parser = input::outcome, value_name = "RESULT")]
        outcome: i32,
        /// The older, coarser decision (optional; must agree with --outcome).
        #[arg(long, value_enum)]
        decision: Option<DecisionArg>,
        /// Legal basis (required for refused and partly-disclosed).
        #[arg(long)]
        basis: Option<String>,
        /// The answer document, uploaded first.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Items that answer the request; repeat for several.
        #[arg(long = "item", value_parser = input::item_id, value_name = "ID")]
        items: Vec<ItemId>,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Record a 行政复议 or 行政诉讼 filed about a request.
    Challenge {
        /// Request id.
        #[arg(long, value_parser = input::request_id)]
        id: RequestId,
        /// The case's id, unique within the request (e.g. the case number).
        #[arg(long)]
        case: String,
        /// reconsideration (行政复议), litigation (直接起诉) or
        /// litigation-after-reconsideration (复议后起诉).
        #[arg(long, value_enum)]
        procedure: ProcedureArg,
        /// Date filed, YYYY-MM-DD.
        #[arg(long, value_parser = input::date)]
        date: Date,
        /// A note (public).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Record how a 复议/诉讼 case ended.
    Concluded {
        /// Request id.
        #[arg(long, value_parser = input::request_id)]
        id: RequestId,
        /// The case's id.
        #[arg(long)]
        case: String,
        /// upheld (结果维持), corrected (结果纠正) or other (其他结果).
        #[arg(long, value_enum)]
        result: ChallengeResultArg,
        /// Date concluded, YYYY-MM-DD.
        #[arg(long, value_parser = input::date)]
        date: Date,
        /// A note (public).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        write: WriteOpts,
    },
}

/// 复议/诉讼 procedures.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProcedureArg {
    /// 行政复议.
    Reconsideration,
    /// 行政诉讼, filed directly.
    Litigation,
    /// 行政诉讼 after a reconsideration.
    LitigationAfterReconsideration,
}

/// 复议/诉讼 results.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChallengeResultArg {
    /// 结果维持.
    Upheld,
    /// 结果纠正.
    Corrected,
    /// 其他结果.
    Other,
}

/// `gongkai import`.
///
/// One JSON object per line, a Published event:
/// {"item": "budget-2019", "matter": "budget-dept", "title": "2019年部门预算",
/// "file": "docs/budget-2019.pdf", "date_formed": "2019-02-01",
/// "media_type": "application/pdf", "period": "2019", "basis": "...",
/// "related": ["draft-2019=draft"]}. `file` is relative to the JSONL file;
/// media_type, period, basis and related are optional. Lines are sent in
/// batches of 500, each all or nothing; a re-run after an interruption
/// skips what was already recorded (it keeps a secret in FILE.import-key).
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The JSON Lines file.
    file: PathBuf,
    /// Events per batch (1 to 1000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1000))]
    batch_size: u32,
}

/// Item statuses.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    /// Current (never amended or withdrawn).
    Current,
    /// Amended at least once.
    Amended,
    /// Withdrawn.
    Withdrawn,
}

/// `gongkai items`.
#[derive(Debug, Args)]
pub struct ItemsArgs {
    /// Only this category.
    #[arg(long)]
    category: Option<String>,
    /// Only items of this matter.
    #[arg(long, value_parser = input::matter_id)]
    matter: Option<MatterId>,
    /// Only items in this status.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// Formed on or after this date.
    #[arg(long, value_parser = input::date)]
    from: Option<Date>,
    /// Formed on or before this date.
    #[arg(long, value_parser = input::date)]
    to: Option<Date>,
    /// Only titles containing this text.
    #[arg(long)]
    search: Option<String>,
    /// At most this many items (default: all).
    #[arg(long)]
    limit: Option<u32>,
}

/// `gongkai item`.
#[derive(Debug, Args)]
pub struct ItemArgs {
    /// The item id.
    #[arg(value_parser = input::item_id)]
    id: ItemId,
    /// The department's verifier key file (.vkey): also check the
    /// checkpoint's signature. Without it, inclusion is proven against a
    /// checkpoint whose signature is NOT checked.
    #[arg(long, value_name = "FILE")]
    vkey: Option<PathBuf>,
}

/// `gongkai requests`.
#[derive(Debug, Args)]
pub struct RequestsArgs {
    /// At most this many requests (default: all).
    #[arg(long)]
    limit: Option<u32>,
}

/// `gongkai checkpoint`.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// The department's verifier key file (.vkey): check the signature.
    #[arg(long, value_name = "FILE")]
    vkey: Option<PathBuf>,
}

/// `gongkai content`.
#[derive(Debug, Args)]
pub struct ContentArgs {
    /// Salted digest of the document, hex (as shown by `gongkai item`).
    #[arg(value_parser = input::digest)]
    digest: gongkai_core::Hash,
    /// Where to save it.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    force: bool,
}

/// Parses arguments and runs the command; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let (code, line) = describe(&e);
            eprintln!("error: {line}");
            ExitCode::from(code)
        }
    }
}

/// The exit code and the one-line message for an error.
pub fn describe(e: &anyhow::Error) -> (u8, String) {
    let code = e
        .chain()
        .find_map(|c| c.downcast_ref::<client::Failure>())
        .map_or(client::EXIT_USAGE, client::Failure::exit_code);
    (code, format!("{e:#}"))
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Command::Keygen(a) = &cli.command {
        return write::keygen(a, cli.json).map(|()| 0);
    }
    match cli.command {
        Command::Node(a) => node::run(a, &cli.conn, cli.json).map(|()| 0),
        Command::Token(a) => node::token(&a).map(|()| 0),
        Command::Bench(a) => bench::run(a).map(|()| 0),
        Command::Audit(a) => audit::run(a, cli.json, cli.conn.ca.as_deref()),
        Command::CheckProof(a) => prove::check(a, cli.json, cli.conn.ca.as_deref()),
        Command::Report(c) => report::run(c, cli.conn.origin.as_ref()),
        Command::Demo(a) => demo::run(&a, cli.json).map(|()| 0),
        Command::Certs(a) => {
            let files = certs::run(&a)?;
            if cli.json {
                println!("{}", serde_json::json!({ "written": files }));
            } else {
                for f in files {
                    println!("wrote {}", f.display());
                }
            }
            Ok(0)
        }
        Command::Aggregator(a) => county::run_aggregator(&a).map(|()| 0),
        Command::Witness(a) => witness::run(&a).map(|()| 0),
        Command::County(c) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(county::run(&cli.conn, c, cli.json))
                .map(|()| 0)
        }
        Command::Calendar(c) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(calendar::run(&cli.conn, c, cli.json))
                .map(|()| 0)
        }
        command => run_client(Cli { command, ..cli }),
    }
}

/// Installs the log subscriber for long-running commands (RUST_LOG sets the
/// level; default info).
pub fn init_tracing() {
    init_tracing_at("info");
}

/// As [`init_tracing`], with another default level.
pub fn init_tracing_at(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Today's date in China Standard Time.
pub fn today() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    gongkai_core::date::Date::from_unix_ms_cst(ms).map_or_else(|_| String::new(), |d| d.to_string())
}

fn run_client(cli: Cli) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // With --url the logs come from static files, and --ca is the CA of
        // that site; the gRPC server (only asked by monitor, for witness
        // consistency proofs) then needs no TLS of its own.
        let statics = match &cli.command {
            Command::Verify(a) => a.statics.url.is_some(),
            Command::Monitor(a) => a.statics.url.is_some(),
            _ => false,
        };
        let node = if statics && !cli.conn.server.starts_with("https://") {
            let mut conn = cli.conn.clone();
            conn.ca = None;
            client::Node::connect(&conn)?
        } else {
            client::Node::connect(&cli.conn)?
        };
        let json = cli.json;
        let token = cli.conn.token.clone();
        let ca = cli.conn.ca.clone();
        let done = match cli.command {
            Command::Verify(a) => {
                return verify::run(&node, token.as_deref(), a, json, ca.as_deref()).await;
            }
            Command::Monitor(a) => {
                return monitor::run(&node, token.as_deref(), a, ca.as_deref()).await;
            }
            Command::Export(a) => export::run(&node, a, json).await,
            Command::Prove(a) => prove::prove(&node, a, json).await,
            Command::Keygen(_)
            | Command::Node(_)
            | Command::Token(_)
            | Command::Bench(_)
            | Command::Certs(_)
            | Command::Demo(_)
            | Command::Audit(_)
            | Command::CheckProof(_)
            | Command::Report(_)
            | Command::Aggregator(_)
            | Command::Witness(_)
            | Command::Calendar(_)
            | Command::County(_) => Ok(()),
            Command::Upload(a) => write::upload(&node, a, json).await,
            Command::Matter(c) => write::matter(&node, c, json).await,
            Command::Publish(a) => write::publish(&node, a, json).await,
            Command::Amend(a) => write::amend(&node, a, json).await,
            Command::Withdraw(a) => write::withdraw(&node, a, json).await,
            Command::Redact(a) => write::redact(&node, a, json).await,
            Command::Request(c) => write::request(&node, c, json).await,
            Command::Import(a) => import::run(&node, a, json).await,
            Command::Items(a) => read::items(&node, a, json).await,
            Command::Item(a) => read::item(&node, a, json).await,
            Command::Matters => read::matters(&node, json).await,
            Command::Requests(a) => read::requests(&node, a, json).await,
            Command::Status => read::status(&node, json).await,
            Command::Checkpoint(a) => read::checkpoint(&node, a, json).await,
            Command::Content(a) => read::content(&node, a, json).await,
        };
        done.map(|()| 0)
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("gongkai").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn publish_parses_with_related_items() {
        let cli = parse(&[
            "--origin",
            "gongkai.example/510122/finance",
            "publish",
            "--item",
            "budget-2026",
            "--matter",
            "budget",
            "--title",
            "2026年部门预算",
            "--file",
            "b.pdf",
            "--date-formed",
            "2026-01-05",
            "--related",
            "draft-2026=draft",
            "--related",
            "gongkai.example/510122/dev:plan=decision",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        let Command::Publish(p) = cli.command else {
            panic!("not publish");
        };
        assert_eq!(p.item.as_str(), "budget-2026");
        assert_eq!(p.related.len(), 2);
        assert_eq!(p.related[1].origin, "gongkai.example/510122/dev");
        assert_eq!(p.date_formed.to_string(), "2026-01-05");
    }

    #[test]
    fn typos_are_local_usage_errors() {
        let base = [
            "publish",
            "--item",
            "budget 2026",
            "--matter",
            "m",
            "--title",
            "t",
            "--file",
            "f",
            "--date-formed",
            "2026-01-05",
        ];
        assert!(parse(&base).is_err(), "space in item id");
        let mut bad_date = base;
        bad_date[2] = "ok";
        bad_date[10] = "2026-02-30";
        assert!(parse(&bad_date).is_err(), "no 30 February");
        assert!(parse(&["--origin", "bad origin", "status"]).is_err());
        assert!(
            parse(&[
                "redact", "--item", "i", "--digest", "abc", "--reason", "r", "--basis", "b"
            ])
            .is_err()
        );
        assert!(parse(&["upload", "f", "--media-type", "Application/PDF"]).is_err());
        let e = parse(&[
            "request",
            "answer",
            "--id",
            "r1",
            "--date",
            "2026-01-05",
            "--decision",
            "maybe",
        ]);
        assert!(e.is_err());
    }

    #[test]
    fn request_answer_parses() {
        let cli = parse(&[
            "request",
            "answer",
            "--id",
            "2026-0042",
            "--date",
            "2026-01-05",
            "--decision",
            "partly-disclosed",
            "--outcome",
            "partly-disclosed",
            "--basis",
            "第十五条",
            "--item",
            "a",
            "--item",
            "b",
        ])
        .unwrap();
        let Command::Request(RequestCommand::Answer {
            items,
            decision,
            outcome,
            ..
        }) = cli.command
        else {
            panic!("not answer");
        };
        assert_eq!(items.len(), 2);
        assert!(matches!(decision, Some(DecisionArg::PartlyDisclosed)));
        assert_eq!(
            outcome,
            gongkai_core::event::pb::Outcome::PartlyDisclosed as i32
        );
        // Every result of table 三 has a name, and a wrong one lists them.
        let e = parse(&[
            "request",
            "answer",
            "--id",
            "r",
            "--date",
            "2026-01-05",
            "--outcome",
            "refused",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("withheld-state-secret") && e.contains("other-fee-unpaid"),
            "{e}"
        );
        let e = parse(&[
            "request",
            "receive",
            "--id",
            "r",
            "--date",
            "2026-01-05",
            "--subject",
            "s",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("--applicant"), "{e}");
    }

    #[test]
    fn errors_get_one_line_and_an_exit_code() {
        // A server stopped by a storage failure exits 75, which the systemd
        // units restart (they do not restart 1 and 2: a wrong config or old
        // data would only fail again).
        let e = anyhow::Error::from(client::Failure::Restart("stopped".into()));
        assert_eq!(describe(&e).0, 75);
        let unit = include_str!("../../../deploy/systemd/gongkai-node@.service");
        assert!(unit.contains("RestartPreventExitStatus=1 2\n"), "{unit}");
        assert!(unit.contains("Restart=on-failure"));
        let e = anyhow::Error::from(client::Failure::Refused(
            "item budget-2026 is withdrawn (rule item-not-withdrawn)".into(),
        ));
        assert_eq!(
            describe(&e),
            (
                1,
                "item budget-2026 is withdrawn (rule item-not-withdrawn)".into()
            )
        );
        let e = anyhow::Error::from(client::Failure::Verify("bad proof".into()))
            .context("item budget-2026");
        assert_eq!(describe(&e), (4, "item budget-2026: bad proof".into()));
        let e = anyhow::anyhow!("reading x.pdf");
        assert_eq!(describe(&e).0, 2);
    }
}
