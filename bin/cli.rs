//! The command line of SPEC §7. Global options may stand before or after the
//! subcommand.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "upay", version, about = "Event-sourced settlement and payout engine")]
pub struct Cli {
    /// sqlite://PATH (default sqlite://upay.db) or postgres://USER@HOST:PORT/DB
    #[arg(long, global = true, env = "UPAY_STORE")]
    pub store: Option<String>,
    /// The company's configuration (default ./upay.toml when present)
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Record merchants or events from a CSV file
    #[command(subcommand)]
    Ingest(IngestCmd),
    /// Every refused event
    #[command(subcommand)]
    Refusals(RefusalsCmd),
    /// The nightly batch: close cycles, issue notices, write transfer files
    Settle(SettleArgs),
    #[command(subcommand)]
    Statements(StatementsCmd),
    #[command(subcommand)]
    Payouts(PayoutsCmd),
    #[command(subcommand)]
    Notices(NoticesCmd),
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Write a demo history, ingest it and run it through the nightly batch
    Demo {
        #[arg(long, default_value = "./upay-demo")]
        dir: PathBuf,
    },
    /// The payout calendar as CSV (needs no store)
    Schedule {
        #[arg(long, value_parser = parse_month)]
        from: (i32, u32),
        #[arg(long, value_parser = parse_month)]
        to: (i32, u32),
    },
}

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    #[value(name = "utf-8")]
    Utf8,
    #[value(name = "shift_jis")]
    ShiftJis,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Format {
    #[default]
    Csv,
    Json,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum ZipEnc {
    #[default]
    Zipcrypto,
    Aes256,
}

#[derive(Subcommand, Debug)]
pub enum IngestCmd {
    Merchants {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        encoding: Encoding,
    },
    Events {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        encoding: Encoding,
    },
}

#[derive(Subcommand, Debug)]
pub enum RefusalsCmd {
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SettleArgs {
    #[arg(long, value_parser = parse_date)]
    pub through: NaiveDate,
    #[arg(long, default_value = "./notices")]
    pub notices_dir: PathBuf,
    #[arg(long, default_value = "./transfers")]
    pub transfers_dir: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub zip_encryption: ZipEnc,
    /// K/N: settle only the merchants of shard K of N
    #[arg(long)]
    pub shard: Option<projections::Shard>,
    /// Close statements only, no notices or transfer files (the benchmark's
    /// measurement of the fold; hidden: not an operator's switch).
    #[arg(long, hide = true)]
    pub statements_only: bool,
}

#[derive(Subcommand, Debug)]
pub enum StatementsCmd {
    Export {
        #[command(flatten)]
        export: ExportArgs,
        /// Add the byte-order mark Japanese Excel needs
        #[arg(long)]
        bom: bool,
    },
    /// Every event behind every line of one statement
    Explain {
        #[arg(long)]
        merchant: String,
        /// The period's first day
        #[arg(long, value_parser = parse_date)]
        period: NaiveDate,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
pub enum PayoutsCmd {
    Export {
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        #[command(flatten)]
        export: ExportArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum NoticesCmd {
    /// The next revision of a notice, from the recorded statement
    Regenerate {
        #[arg(long)]
        notice: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
        #[arg(long, default_value = "./notices")]
        notices_dir: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        zip_encryption: ZipEnc,
    },
    /// Write again any issued notice (and transfer file) missing from its folder
    Restore {
        #[arg(long, default_value = "./notices")]
        notices_dir: PathBuf,
        #[arg(long, default_value = "./transfers")]
        transfers_dir: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        zip_encryption: ZipEnc,
    },
    /// Deliver the notices waiting in the outbox, each once
    Send {
        #[arg(long)]
        smtp: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    Replay {
        #[arg(long, value_parser = parse_instant)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    },
}

pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("'{s}' is not a date YYYY-MM-DD"))
}

fn parse_month(s: &str) -> Result<(i32, u32), String> {
    let bad = || format!("'{s}' is not a month YYYY-MM");
    let (y, m) = s.split_once('-').ok_or_else(bad)?;
    let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if y.to_string().len() != 4 || !(1..=12).contains(&m) {
        return Err(bad());
    }
    Ok((y, m))
}

fn parse_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&chrono::Utc))
        .map_err(|_| format!("'{s}' is not an RFC 3339 instant with an offset"))
}
