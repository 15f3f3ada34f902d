//! Shared helpers of the end-to-end tests: the built `upay` binary, a fresh store
//! of either kind (a temporary SQLite file, or a new PostgreSQL database on
//! 127.0.0.1:5432 per test), and the shared fixtures.
#![allow(dead_code)]

pub mod history;
#[allow(unused_imports)]
pub use history::{generate, HistoryIds};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn upay_bin() -> &'static str {
    env!("CARGO_BIN_EXE_upay")
}

/// The manual's sample history: a copy of ../shared/fixtures/sample-notice
/// kept in the repository, so a clean clone anywhere runs the tests.
pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample-notice")
}

pub fn repo_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub const KINDS: [Kind; 2] = [Kind::Sqlite, Kind::Postgres];

/// A fresh store and a working folder, removed (the database dropped) on drop.
pub struct TestStore {
    pub kind: Kind,
    pub url: String,
    pub dir: tempfile::TempDir,
    db: Option<String>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn psql(sql: &str) {
    let out = Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().expect("psql runs");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TestStore {
    pub fn new(kind: Kind) -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        match kind {
            Kind::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("upay.db").display());
                TestStore { kind, url, dir, db: None }
            }
            Kind::Postgres => {
                let name = format!("upay_t_{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos());
                psql(&format!("CREATE DATABASE {name}"));
                let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
                TestStore { kind, url, dir, db: Some(name) }
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `upay --store URL ARGS…` run in the store's folder.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(upay_bin());
        c.current_dir(self.dir.path()).env_remove("UPAY_STORE").arg("--store").arg(&self.url).args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("upay runs")
    }

    /// Runs and asserts exit 0, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "upay {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).expect("utf-8 stdout")
    }

    /// Writes a file into the store's folder and returns its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write fixture");
        p
    }

    /// The rows of a query, each a list of fields (NULL as empty).
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let out = match self.kind {
            Kind::Postgres => {
                let db = self.db.as_ref().unwrap();
                Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-q", "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().expect("psql runs")
            }
            Kind::Sqlite => Command::new("python3")
                .args([
                    "-c",
                    "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor r in c.execute(sys.argv[2]): print('\\x1f'.join('' if v is None else str(v) for v in r))",
                    &self.url["sqlite://".len()..],
                    sql,
                ])
                .output()
                .expect("python3 runs"),
        };
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(|l| l.split('\x1f').map(str::to_string).collect()).collect()
    }

    /// Runs SQL directly against the store (for tamper drills).
    pub fn sql(&self, sql: &str) {
        match self.kind {
            Kind::Postgres => {
                let db = self.db.as_ref().unwrap();
                let out = Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().expect("psql runs");
                assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
            }
            Kind::Sqlite => {
                let out = Command::new("python3")
                    .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()", &self.url["sqlite://".len()..], sql])
                    .output()
                    .expect("python3 runs");
                assert!(out.status.success(), "sqlite: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(db) = &self.db {
            let _ = Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")]).output();
        }
    }
}

pub const MERCHANTS_HEADER: &str = "merchant_id,name,contact,email,bank_code,bank_name,branch_code,branch_name,account_type,account_number,account_holder,rate_visa_master,rate_jcb_other,rate_emoney,fee_tax,notice_password,bank_name_kana,branch_name_kana";
pub const EVENTS_HEADER: &str = "event_id,kind,txn_id,merchant_id,at,brand,amount,card,installments,code";
