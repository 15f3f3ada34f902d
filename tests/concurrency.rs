//! Concurrent batches on the production store (PostgreSQL): two or three
//! `upay settle` started at the same moment on the same store and folder, and a
//! night split between `--shard 1/2` and `--shard 2/2` running at once (then an
//! unsharded run, which writes the transfer files). Whatever the interleaving,
//! every statement is closed exactly once and the result is exactly that of one
//! unsharded run on a fresh store: statements, notices (each issued once),
//! outbox, transfer files byte for byte; the audit replay is clean.
//!
//! The history has about 1,200 merchants so that the batch writes its statements
//! in several chunks and the processes overlap for seconds.
//!
//! Interleavings that timing alone rarely produces are lined up instead: a psql
//! session holds the log lock every writer takes, the processes queue behind it
//! in a chosen order (PostgreSQL grants waiters in order), then it lets go.
mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use chrono::NaiveDate;

/// Active merchants sell every day; quiet ones live in debt after a chargeback
/// (a statement every cycle, no notice).
const ACTIVE: u32 = 40;
const QUIET: u32 = 1_160;
const FROM: &str = "2019-08-01";
const TO: &str = "2019-11-30";
/// Every cycle of the history is closed and every notice of it is due.
const THROUGH: &str = "2019-12-31";

// --- The history ---------------------------------------------------------------------

fn history() -> (String, String) {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let naming = HistoryIds {
        first_merchant: 700_000_001,
        event_prefix: "c",
        txn_prefix: "ct",
    };
    generate(&naming, ACTIVE, QUIET, d(FROM), d(TO), 20_191_231)
}

// --- Stores and what they hold --------------------------------------------------------

/// Rows of a query, fields joined by `|`.
fn query(s: &TestStore, sql: &str) -> Vec<String> {
    let out = match s.kind {
        Kind::Postgres => {
            let db = s.url.rsplit('/').next().unwrap();
            Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().expect("psql runs")
        }
        Kind::Sqlite => Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor r in c.execute(sys.argv[2]): print('|'.join('' if v is None else str(v) for v in r))",
                &s.url["sqlite://".len()..],
                sql,
            ])
            .output()
            .expect("python3 runs"),
    };
    assert!(out.status.success(), "query {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

/// `payload.a.b` of the events table as text, in each dialect.
fn field(kind: Kind, path: &[&str]) -> String {
    match kind {
        Kind::Postgres => {
            let (last, init) = path.split_last().unwrap();
            let mut s = "payload".to_string();
            for p in init {
                s.push_str(&format!("->'{p}'"));
            }
            format!("{s}->>'{last}'")
        }
        Kind::Sqlite => format!("json_extract(payload, '$.{}')", path.join(".")),
    }
}

fn files(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd {
            let e = e.unwrap();
            m.insert(e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap());
        }
    }
    m
}

/// Everything a finished night leaves behind that must not depend on crashes.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    statements: String,
    refusals: String,
    /// (stream, revision, notice_no, issue_date, pdf_sha256) of every notice issued
    notices: Vec<String>,
    /// notice files in the folder (names: the ZIP bytes are random by design)
    notice_files: Vec<String>,
    outbox: Vec<String>,
    transfer_files: BTreeMap<String, Vec<u8>>,
    /// (payout date, record count, total, sha256) of every transfer file recorded
    transfers_recorded: Vec<String>,
    payment_events: Vec<String>,
}

impl Outcome {
    fn of(s: &TestStore) -> Outcome {
        let k = s.kind;
        Outcome {
            statements: s.ok(&["statements", "export"]),
            refusals: s.ok(&["refusals", "export"]),
            notices: query(
                s,
                &format!(
                    "SELECT aggregate_id, sequence, {}, {}, {} FROM events WHERE aggregate_type = 'Notice' ORDER BY aggregate_id, sequence",
                    field(k, &["notice_no"]),
                    field(k, &["issue_date"]),
                    field(k, &["pdf_sha256"])
                ),
            ),
            notice_files: files(&s.path().join("notices")).into_keys().collect(),
            outbox: query(s, "SELECT notice_no, merchant_id, payout_date FROM notice_outbox ORDER BY notice_no"),
            transfer_files: files(&s.path().join("transfers")),
            transfers_recorded: query(
                s,
                &format!(
                    "SELECT aggregate_id, sequence, {}, {}, {} FROM events WHERE aggregate_type = 'TransferFile' ORDER BY aggregate_id, sequence",
                    field(k, &["record_count"]),
                    field(k, &["total_yen"]),
                    field(k, &["sha256"])
                ),
            ),
            payment_events: query(s, "SELECT aggregate_type, event_type, count(*) FROM events WHERE aggregate_type IN ('Payment', 'Refusal') GROUP BY aggregate_type, event_type ORDER BY 1, 2"),
        }
    }

    /// Field by field, so a failure names what differs.
    fn assert_same(&self, clean: &Outcome, what: &str) {
        let lines = |a: &str, b: &str| {
            let (x, y): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
            let missing: Vec<&&str> = y.iter().filter(|l| !x.contains(l)).take(5).collect();
            let extra: Vec<&&str> = x.iter().filter(|l| !y.contains(l)).take(5).collect();
            format!("{} rows vs {} clean; missing (first 5): {missing:?}; unexpected (first 5): {extra:?}", x.len(), y.len())
        };
        assert!(self.statements == clean.statements, "{what}: statements differ from a clean run: {}", lines(&self.statements, &clean.statements));
        assert!(self.refusals == clean.refusals, "{what}: refusals differ: {}", lines(&self.refusals, &clean.refusals));
        assert!(self.payment_events == clean.payment_events, "{what}: payment events differ: {:?} vs clean {:?}", self.payment_events, clean.payment_events);
        assert!(self.notices == clean.notices, "{what}: notices differ: {}", lines(&self.notices.join("\n"), &clean.notices.join("\n")));
        assert!(self.notice_files == clean.notice_files, "{what}: notice files differ: {}", lines(&self.notice_files.join("\n"), &clean.notice_files.join("\n")));
        assert!(self.outbox == clean.outbox, "{what}: the outbox differs: {}", lines(&self.outbox.join("\n"), &clean.outbox.join("\n")));
        assert!(self.transfers_recorded == clean.transfers_recorded, "{what}: transfer files recorded differ: {:?} vs {:?}", self.transfers_recorded, clean.transfers_recorded);
        assert!(self.transfer_files == clean.transfer_files, "{what}: transfer files differ: {:?} vs {:?}", self.transfer_files.keys(), clean.transfer_files.keys());
    }
}

/// Every notice file in the folder is a ZIP holding `{notice_no}.pdf`, which
/// opens with the merchant's password and is the PDF recorded as issued.
fn assert_notice_files_open(s: &TestStore, merchants_csv: &str, what: &str) {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let passwords: BTreeMap<String, String> = merchants_csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[15].to_string())
        })
        .collect();
    let recorded: BTreeMap<String, String> = query(s, &format!("SELECT {}, {} FROM events WHERE aggregate_type = 'Notice'", field(s.kind, &["notice_no"]), field(s.kind, &["pdf_sha256"])))
        .into_iter()
        .map(|r| {
            let (a, b) = r.split_once('|').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect();
    for (name, bytes) in files(&s.path().join("notices")) {
        let notice = name.strip_suffix(".zip").unwrap_or_else(|| panic!("{what}: a stray file in the notices folder: {name}"));
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap_or_else(|e| panic!("{what}: {name} is not a ZIP: {e}"));
        let names: Vec<String> = a.file_names().map(|n| n.expect("a readable entry name").to_string()).collect();
        assert_eq!(names, [format!("{notice}.pdf")], "{what}: {name}");
        let pw = &passwords[&notice[..9]];
        let mut pdf = Vec::new();
        a.by_name_decrypt(&format!("{notice}.pdf"), pw.as_bytes())
            .unwrap_or_else(|e| panic!("{what}: {name} does not open with its password: {e}"))
            .read_to_end(&mut pdf)
            .unwrap_or_else(|e| panic!("{what}: {name}: {e}"));
        assert_eq!(hex::encode(Sha256::digest(&pdf)), recorded[notice], "{what}: the PDF in {name} is not the one recorded as issued");
    }
}

/// No statement closed twice, and the audit replay agrees with what is recorded.
fn assert_sound(s: &TestStore, what: &str) {
    let k = s.kind;
    let dupes = query(
        s,
        &format!(
            "SELECT aggregate_id, {p}, count(*) FROM events WHERE aggregate_type = 'Settlement' GROUP BY aggregate_id, {p} HAVING count(*) > 1",
            p = field(k, &["StatementClosed", "period_start"])
        ),
    );
    assert!(dupes.is_empty(), "{what}: statements closed twice: {dupes:?}");
    let o = s.run(&["audit", "replay"]);
    assert_eq!(o.status.code(), Some(0), "{what}: audit replay:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

fn ingested(kind: Kind, merchants: &str, events: &str) -> TestStore {
    let s = TestStore::new(kind);
    let p = s.write("merchants.csv", merchants);
    s.ok(&["ingest", "merchants", p.to_str().unwrap()]);
    let p = s.write("events.csv", events);
    s.ok(&["ingest", "events", p.to_str().unwrap()]);
    s
}

/// One test at a time: each starts its own processes at once.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One unsharded run on a fresh store: what every concurrent night must give.
fn reference() -> &'static Outcome {
    static R: OnceLock<Outcome> = OnceLock::new();
    R.get_or_init(|| {
        let (m, e) = history();
        let s = ingested(Kind::Postgres, &m, &e);
        s.ok(&["settle", "--through", THROUGH]);
        assert_sound(&s, "single run");
        let o = Outcome::of(&s);
        assert!(o.notices.len() >= 100 && o.statements.lines().count() > 5_000, "the history is large enough to overlap");
        o
    })
}

/// Starts every `args` at once in the store's folder; waits for all.
fn all_at_once(s: &TestStore, runs: &[&[&str]]) -> Vec<Output> {
    let children: Vec<_> = runs.iter().map(|a| s.cmd(a).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("upay starts")).collect();
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

fn assert_all_ok(outs: &[Output], runs: &[&[&str]]) {
    for (o, a) in outs.iter().zip(runs) {
        assert!(o.status.success(), "upay {a:?} run concurrently exited {:?}:\n{}", o.status.code(), String::from_utf8_lossy(&o.stderr));
    }
}

fn statements_recorded(s: &TestStore) -> usize {
    query(s, "SELECT count(*) FROM events WHERE aggregate_type = 'Settlement'")[0].parse().unwrap()
}

#[test]
fn settles_started_at_once_close_every_statement_once_and_equal_one_run() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let want = reference();
    let (m, e) = history();
    let settle: &[&str] = &["settle", "--through", THROUGH];
    for n in [2, 2, 3] {
        let s = ingested(Kind::Postgres, &m, &e);
        let runs = vec![settle; n];
        let outs = all_at_once(&s, &runs);
        assert_all_ok(&outs, &runs);
        let what = format!("{n} settles at once");
        assert_sound(&s, &what);
        assert_eq!(statements_recorded(&s), want.statements.lines().count() - 1, "{what}: StatementClosed rows vs statements of one run");
        Outcome::of(&s).assert_same(want, &what);
        assert_notice_files_open(&s, &m, &what);
        let closed: Vec<u64> = outs
            .iter()
            .map(|o| {
                let err = String::from_utf8_lossy(&o.stderr);
                let line = err.lines().find(|l| l.starts_with("settle through")).unwrap_or_else(|| panic!("no summary: {err}")).to_string();
                line.split(": ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("summary: {line}"))
            })
            .collect();
        eprintln!("{what}: statements closed by each: {closed:?}");
        // A second night changes nothing.
        let err = String::from_utf8_lossy(&s.run(settle).stderr).into_owned();
        assert!(err.contains("0 statements closed, 0 notices issued, 0 transfer files written"), "{what}, then again: {err}");
    }
}

#[test]
fn two_shards_at_once_then_an_unsharded_run_equal_one_unsharded_run() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let want = reference();
    let (m, e) = history();
    for round in 0..2 {
        let s = ingested(Kind::Postgres, &m, &e);
        let runs: Vec<&[&str]> = vec![&["settle", "--through", THROUGH, "--shard", "1/2"], &["settle", "--through", THROUGH, "--shard", "2/2"]];
        let outs = all_at_once(&s, &runs);
        assert_all_ok(&outs, &runs);
        assert!(files(&s.path().join("transfers")).is_empty(), "a sharded run writes no transfer file");
        // Between them the shards closed every statement.
        assert_eq!(statements_recorded(&s), want.statements.lines().count() - 1, "round {round}: the two shards closed every statement once");
        s.ok(&["settle", "--through", THROUGH]);
        let what = format!("round {round}: shards 1/2 and 2/2 at once, then unsharded");
        assert_sound(&s, &what);
        Outcome::of(&s).assert_same(want, &what);
        assert_notice_files_open(&s, &m, &what);
    }
}

/// The night before: every statement of the history closed by a run through
/// 2019-12-13, so the notices of 2019-12-14 and the transfer files of
/// 2019-12-16 and later are due on the night both processes run.
const EVE: &str = "2019-12-13";

/// One run through `EVE`, then one through `THROUGH`, on a fresh store.
fn reference_two_nights() -> &'static Outcome {
    static R: OnceLock<Outcome> = OnceLock::new();
    R.get_or_init(|| {
        let (m, e) = history();
        let s = ingested(Kind::Postgres, &m, &e);
        s.ok(&["settle", "--through", EVE]);
        s.ok(&["settle", "--through", THROUGH]);
        assert_sound(&s, "two nights");
        Outcome::of(&s)
    })
}

/// Both processes know the same statements, so both try to issue the same
/// notices and write the same transfer files at the same moment, into the same
/// folders: each notice is issued once, every file is whole, both runs succeed.
#[test]
fn settles_started_at_once_on_a_night_of_notices_issue_each_once() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let want = reference_two_nights();
    let (m, e) = history();
    let settle: &[&str] = &["settle", "--through", THROUGH];
    for round in 0..2 {
        let s = ingested(Kind::Postgres, &m, &e);
        s.ok(&["settle", "--through", EVE]);
        let runs = vec![settle; 2];
        let outs = all_at_once(&s, &runs);
        assert_all_ok(&outs, &runs);
        let what = format!("round {round}: two settles at once on the night of notices");
        Outcome::of(&s).assert_same(want, &what);
        assert_notice_files_open(&s, &m, &what);
        assert_sound(&s, &what);
        let issued: Vec<String> = outs.iter().map(|o| String::from_utf8_lossy(&o.stderr).lines().filter(|l| l.starts_with("settle through")).collect()).collect();
        eprintln!("{what}: {issued:?}");
    }
}

/// The advisory lock every writer of the PostgreSQL log takes
/// (`LOG_LOCK` in bin/store/pg.rs): held here to line the processes up.
const LOG_LOCK: i64 = 7_261_001;

/// Holds the log lock from a psql session until dropped.
struct LogLockHeld(std::process::Child);

impl LogLockHeld {
    fn take(s: &TestStore) -> LogLockHeld {
        use std::io::{BufRead, BufReader, Write};
        let db = s.url.rsplit('/').next().unwrap();
        let mut c = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-At", "-v", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("psql runs");
        writeln!(c.stdin.as_mut().unwrap(), "SELECT 'held' FROM (SELECT pg_advisory_lock({LOG_LOCK})) x;").unwrap();
        let mut line = String::new();
        BufReader::new(c.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "held");
        LogLockHeld(c)
    }
}

impl Drop for LogLockHeld {
    fn drop(&mut self) {
        drop(self.0.stdin.take()); // psql ends, the session's lock goes with it
        let _ = self.0.wait();
    }
}

/// Waits until `n` sessions wait for the log lock (the processes started so far
/// are blocked on their first write), failing if one of them ended instead.
fn wait_for_waiters(s: &TestStore, n: usize, started: &mut [std::process::Child]) {
    let sql = format!("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {LOG_LOCK} AND NOT granted");
    for _ in 0..1200 {
        if query(s, &sql)[0].parse::<usize>().unwrap() >= n {
            return;
        }
        for c in started.iter_mut() {
            if let Some(st) = c.try_wait().unwrap() {
                panic!("a settle ended ({st:?}) before it reached its first write");
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{n} writers never queued for the log lock {LOG_LOCK} (was it renamed?)");
}

/// A shard worker and the unsharded run of the same night overlap: the worker
/// records its statements first, the unsharded run finds those merchants taken
/// ("left to it") and closes the others; it is also the one that writes the bank
/// transfer file, which must pay EVERY statement of the payout date, not only
/// those this process closed itself. The order of the two writes is fixed by
/// queueing both behind the log lock, worker first (PostgreSQL grants waiters
/// in order).
#[test]
fn the_transfer_file_pays_every_statement_when_a_shard_worker_overlaps_the_unsharded_run() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // Three merchants in each shard of 2 (FNV-1a of the id): 100000062/64/66 in
    // 1/2, 100000061/63/65 in 2/2. One VISA sale of 10000 each, 2019-10-02:
    // fee 324, fee tax round_half_up(324 / 54) = 6, payout 9676 − 6 − 180 − 18 = 9472
    // on 2019-10-31 (notice 2019-10-29).
    let mut m = format!("{MERCHANTS_HEADER}\n");
    let mut e = format!("{EVENTS_HEADER}\n");
    for i in 61..=66 {
        m.push_str(&format!("1000000{i},テスト商店{i},担当 太郎,m{i}@example.jp,0010,りそな銀行,101,大阪営業部,普通,12345{i},テスト,3.24,3.24,3.24,inclusive-8,1234567{i},リソナ,オオサカ\n"));
        e.push_str(&format!("s{i},sale,ts{i},1000000{i},2019-10-02T10:00:00+09:00,VISA,10000,tok_{i},,\n"));
    }
    let through = "2019-10-31";
    let clean = ingested(Kind::Postgres, &m, &e);
    clean.ok(&["settle", "--through", through]);
    let want_payouts = clean.ok(&["payouts", "export", "--date", through]);
    assert_eq!(want_payouts.lines().count(), 7, "six transfers of 9472: {want_payouts}");

    let s = ingested(Kind::Postgres, &m, &e);
    let lock = LogLockHeld::take(&s);
    let mut started = Vec::new();
    let spawn = |args: &[&str]| s.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("upay starts");
    started.push(spawn(&["settle", "--through", through, "--shard", "1/2"]));
    wait_for_waiters(&s, 1, &mut started);
    started.push(spawn(&["settle", "--through", through]));
    wait_for_waiters(&s, 2, &mut started);
    drop(lock);
    let outs: Vec<Output> = started.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let unsharded_err = String::from_utf8_lossy(&outs[1].stderr).into_owned();
    assert!(unsharded_err.contains("left to it"), "the worker wrote first, as lined up: {unsharded_err}");
    // Every statement closed once, as in a single run.
    assert_eq!(s.ok(&["statements", "export"]), clean.ok(&["statements", "export"]));
    // The transfer file pays all six.
    let got_payouts = s.ok(&["payouts", "export", "--date", through]);
    assert_eq!(got_payouts, want_payouts, "the transfer file of {through} leaves out the statements the shard worker closed");
    assert_eq!(files(&s.path().join("transfers")), files(&clean.path().join("transfers")), "zengin-20191031.txt differs from a single run's");
    assert_sound(&s, "shard worker overlapping the unsharded run");
}

/// An event recorded while the batch computes, dated inside the cycle the batch
/// is closing, is never lost: lined up so that the ingest commits after the
/// batch read the log but before it writes (the ingest queues for the log lock
/// first), it must end up on a statement — the one being closed, if the batch
/// reads again, or the next one as a late event — and the audit agrees.
#[test]
fn an_event_recorded_while_the_batch_computes_is_never_lost() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let m = format!("{MERCHANTS_HEADER}\n100000071,テスト商店,担当 太郎,m@example.jp,0010,りそな銀行,101,大阪営業部,普通,1234567,テスト,3.24,3.24,3.24,inclusive-8,123456789,リソナ,オオサカ\n");
    let e = format!("{EVENTS_HEADER}\nw1,sale,tw1,100000071,2019-10-02T10:00:00+09:00,VISA,10000,tok_w1,,\n");
    let late = format!("{EVENTS_HEADER}\nw2,sale,tw2,100000071,2019-10-05T10:00:00+09:00,VISA,2000,tok_w2,,\n");
    let s = ingested(Kind::Postgres, &m, &e);
    let p = s.write("late.csv", &late);
    let lock = LogLockHeld::take(&s);
    let mut started = Vec::new();
    started.push(s.cmd(&["ingest", "events", p.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    wait_for_waiters(&s, 1, &mut started);
    started.push(s.cmd(&["settle", "--through", "2019-10-15"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    wait_for_waiters(&s, 2, &mut started);
    drop(lock);
    for c in started {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    s.ok(&["settle", "--through", "2019-10-31"]);
    let csv = s.ok(&["statements", "export"]);
    let sales: i64 = csv.lines().skip(1).map(|l| l.split(',').nth(7).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(sales, 12_000, "both sales are on a statement:\n{csv}");
    assert_sound(&s, "an ingest committed while the batch computed");
}
