//! Dispatches a parsed command line, and the errors that decide the exit status
//! (SPEC §7): 0 done, 1 the audit found differences, 2 refused with nothing
//! recorded, 3 an internal invariant broke.

use std::path::Path;

use crate::cli::{AuditCmd, Cli, Command, IngestCmd, NoticesCmd, PayoutsCmd, RefusalsCmd, StatementsCmd};
use crate::config::Config;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad arguments, a missing or malformed file: nothing recorded.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A broken invariant: a bug, reported and nothing of the step recorded.
    #[error("internal invariant broken: {0}")]
    Invariant(String),
}

impl AppError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Refused(_) | AppError::Store(_) => 2,
            AppError::Invariant(_) => 3,
        }
    }
}

pub fn refused(msg: impl Into<String>) -> AppError {
    AppError::Refused(msg.into())
}

/// Warnings and errors; sqlx's notes on slow statements are left out (a batch
/// that reads a year of history runs long statements by design).
const DEFAULT_LOG: &str = "warn,sqlx::query=error";

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UPAY_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

pub const DEFAULT_STORE: &str = "sqlite://upay.db";

pub fn store_url(cli_store: &Option<String>) -> String {
    cli_store.clone().unwrap_or_else(|| DEFAULT_STORE.to_string())
}

/// The store a command works on: opened on first use (a command refused
/// before it needs the store never connects), closed when the command ends.
struct Session {
    url: String,
    store: Option<Store>,
}

impl Session {
    async fn store(&mut self) -> Result<&Store, AppError> {
        if self.store.is_none() {
            self.store = Some(Store::open(&self.url).await?);
        }
        Ok(self.store.as_ref().expect("opened just above"))
    }
}

/// Runs one command and then closes its store, whatever the outcome: the
/// database sees its connections end (PostgreSQL would otherwise log a reset
/// connection for each), and SQLite folds its write-ahead log back into the
/// file and removes it.
pub async fn run(cli: Cli) -> Result<u8, AppError> {
    let Cli { store, config, command } = cli;
    let mut session = Session { url: store_url(&store), store: None };
    let outcome = dispatch(&store, config, command, &mut session).await;
    if let Some(st) = session.store.take() {
        st.close().await;
    }
    outcome
}

async fn dispatch(store: &Option<String>, config: Option<std::path::PathBuf>, command: Command, session: &mut Session) -> Result<u8, AppError> {
    match command {
        Command::Schedule { from, to } => crate::schedule::run(from, to),
        Command::Demo { dir } => crate::demo::run(store, config.as_deref(), &dir).await,
        Command::Ingest(IngestCmd::Merchants { file, encoding }) => {
            let rows = crate::csvin::read_table(&file, encoding)?;
            let parsed = crate::ingest::parse_merchants(&file, &rows)?;
            let st = session.store().await?;
            let (new, changed, unchanged) = crate::ingest::record_merchants(st, parsed).await?;
            eprintln!("merchants: {new} new, {changed} changed, {unchanged} unchanged");
            Ok(0)
        }
        Command::Ingest(IngestCmd::Events { file, encoding }) => {
            let rows = crate::csvin::read_table(&file, encoding)?;
            let parsed = crate::ingest::parse_events(&file, &rows)?;
            let st = session.store().await?;
            eprintln!("{}", crate::ingest::record_events(st, &file, parsed).await?);
            Ok(0)
        }
        Command::Refusals(RefusalsCmd::Export(a)) => {
            let st = session.store().await?;
            crate::export::refusals(st, a.format, a.out.as_deref()).await.map(|_| 0)
        }
        Command::Settle(args) => {
            let cfg = Config::load(config.as_deref())?;
            let st = session.store().await?;
            eprintln!("{}", crate::batch::settle(st, &cfg, &args).await?.report(&args));
            Ok(0)
        }
        Command::Statements(StatementsCmd::Export { export, bom }) => {
            let st = session.store().await?;
            crate::export::statements(st, export.format, bom, export.out.as_deref()).await.map(|_| 0)
        }
        Command::Statements(StatementsCmd::Explain { merchant, period, format }) => {
            let st = session.store().await?;
            crate::export::explain(st, &merchant, period, format).await.map(|_| 0)
        }
        Command::Payouts(PayoutsCmd::Export { date, export }) => {
            let st = session.store().await?;
            crate::export::payouts(st, date, export.format, export.out.as_deref()).await.map(|_| 0)
        }
        Command::Notices(NoticesCmd::Regenerate {
            notice,
            reason,
            by,
            date,
            notices_dir,
            zip_encryption,
        }) => {
            let cfg = Config::load(config.as_deref())?;
            let st = session.store().await?;
            crate::notice_cmd::regenerate(st, &cfg, &notice, &reason, by, date, &notices_dir, zip_encryption)
                .await
                .map(|_| 0)
        }
        Command::Notices(NoticesCmd::Restore {
            notices_dir,
            transfers_dir,
            zip_encryption,
        }) => {
            let st = session.store().await?;
            crate::notice_cmd::restore(st, &notices_dir, &transfers_dir, zip_encryption).await.map(|_| 0)
        }
        Command::Notices(NoticesCmd::Send { smtp }) => {
            let cfg = Config::load(config.as_deref())?;
            let st = session.store().await?;
            crate::notice_cmd::send(st, &cfg, &smtp).await.map(|_| 0)
        }
        Command::Audit(AuditCmd::Replay { as_of }) => {
            let st = session.store().await?;
            crate::audit::replay(st, as_of).await
        }
    }
}

/// Writes `bytes` to `path` atomically (a temporary file renamed into place), so
/// a crash never leaves half a file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| refused(format!("{}: cannot create folder: {e}", dir.display())))?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("upay")));
    std::fs::write(&tmp, bytes).map_err(|e| refused(format!("{}: cannot write: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| refused(format!("{}: cannot write: {e}", path.display())))?;
    Ok(())
}
