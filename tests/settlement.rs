//! Settlement end to end, through the `upay` binary, on SQLite and PostgreSQL:
//! the scenario tables of `fixtures/scenarios/*.txt` (statements checked to the
//! yen against figures worked out by hand in their comments), then what a batch
//! operator relies on: a re-run changes nothing, catching up over missed nights
//! equals settling every night, the export formats, the payout calendar.
//!
//! Every export read here also goes through `check_statements`, which checks the
//! rules every statement obeys whatever the history (SPEC §4, §7): the figures add
//! up, each carry-in is the previous carry-out, a carried balance makes the next
//! cycle's statement, dates and notice numbers are where they belong.
mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime};

pub const STATEMENT_HEADER: &str = "merchant_id,period_start,period_end,payout_date,notice_date,notice_no,visa_master_count,visa_master_sales,visa_master_fee,jcb_other_count,jcb_other_sales,jcb_other_fee,emoney_count,emoney_sales,emoney_fee,fee_tax,carry_in,red_slips,chargebacks,transfer_fee,transfer_fee_tax,payout,carry_out";

// --- Merchants --------------------------------------------------------------------

/// A row of merchants.csv from `ID BANK RATE_VM RATE_JCB RATE_EM FEE_TAX`.
fn merchant_row(spec: &str) -> String {
    let f: Vec<&str> = spec.split_whitespace().collect();
    assert_eq!(f.len(), 6, "merchant line '{spec}': want ID BANK RATE_VM RATE_JCB RATE_EM FEE_TAX");
    let id = f[0];
    let (bank_name, branch_code, branch_name, bank_kana, branch_kana) = match f[1] {
        "0001" => ("みずほ銀行", "001", "東京営業部", "ミズホ", "トウキヨウ"),
        "0010" => ("りそな銀行", "101", "大阪営業部", "リソナ", "オオサカ"),
        other => panic!("merchant line '{spec}': bank {other} is not 0001 or 0010"),
    };
    format!(
        "{id},テスト商店{tail},担当 太郎,m{id}@example.jp,{bank},{bank_name},{branch_code},{branch_name},普通,1{tail6},テスト,{vm},{jcb},{em},{fee_tax},123456789,{bank_kana},{branch_kana}",
        tail = &id[6..],
        tail6 = &id[3..],
        bank = f[1],
        vm = f[2],
        jcb = f[3],
        em = f[4],
        fee_tax = f[5],
    )
}

fn merchants_csv(rows: &[String]) -> String {
    let mut s = format!("{MERCHANTS_HEADER}\n");
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

fn events_csv(rows: &[String]) -> String {
    let mut s = format!("{EVENTS_HEADER}\n");
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

// --- Running the binary ---------------------------------------------------------------

fn stderr_of(s: &TestStore, args: &[&str]) -> String {
    let o = s.run(args);
    assert!(o.status.success(), "upay {args:?} exited {:?}\n{}", o.status.code(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ingest_merchants(s: &TestStore, name: &str, csv: &str) -> String {
    let p = s.write(name, csv);
    stderr_of(s, &["ingest", "merchants", p.to_str().unwrap()])
}

/// Ingests events and asserts every row was recorded (none refused).
fn ingest_events(s: &TestStore, name: &str, csv: &str) {
    let p = s.write(name, csv);
    let err = stderr_of(s, &["ingest", "events", p.to_str().unwrap()]);
    assert!(err.contains(" 0 refused"), "{name}: rows were refused:\n{err}");
}

fn settle(s: &TestStore, through: &str) -> String {
    stderr_of(s, &["settle", "--through", through])
}

fn export(s: &TestStore) -> String {
    s.ok(&["statements", "export"])
}

/// Rows of a query, fields joined by `|`, through psql or python3's sqlite3.
pub fn query(s: &TestStore, sql: &str) -> Vec<String> {
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

/// Every file of a folder (hidden ones too) with its bytes; empty when absent.
pub fn dir_snapshot(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd {
            let e = e.unwrap();
            m.insert(e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap());
        }
    }
    m
}

// --- The rules every export obeys ---------------------------------------------------------

#[derive(Debug, Clone)]
struct Row {
    line: String,
    merchant: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    payout_date: NaiveDate,
    notice_date: NaiveDate,
    notice_no: String,
    lines: [(i64, i64, i64); 3],
    fee_tax: i64,
    carry_in: i64,
    red_slips: i64,
    chargebacks: i64,
    transfer_fee: i64,
    transfer_fee_tax: i64,
    payout: i64,
    carry_out: i64,
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|_| panic!("'{s}' is not a date"))
}

fn parse_rows(csv: &str) -> Vec<Row> {
    let mut lines = csv.split('\n');
    assert_eq!(lines.next(), Some(STATEMENT_HEADER), "the export's header");
    assert!(csv.ends_with('\n'), "the export ends with a line end");
    let mut out = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        assert!(!l.contains('\r'), "lines end in LF: {l:?}");
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 23, "row {l}");
        let n = |i: usize| f[i].parse::<i64>().unwrap_or_else(|_| panic!("column {i} of {l} is not an integer"));
        out.push(Row {
            line: l.to_string(),
            merchant: f[0].to_string(),
            period_start: date(f[1]),
            period_end: date(f[2]),
            payout_date: date(f[3]),
            notice_date: date(f[4]),
            notice_no: f[5].to_string(),
            lines: [(n(6), n(7), n(8)), (n(9), n(10), n(11)), (n(12), n(13), n(14))],
            fee_tax: n(15),
            carry_in: n(16),
            red_slips: n(17),
            chargebacks: n(18),
            transfer_fee: n(19),
            transfer_fee_tax: n(20),
            payout: n(21),
            carry_out: n(22),
        });
    }
    out
}

fn cycle_end(start: NaiveDate) -> NaiveDate {
    if start.day() == 1 {
        start.with_day(15).unwrap()
    } else {
        let first_next = if start.month() == 12 { NaiveDate::from_ymd_opt(start.year() + 1, 1, 1) } else { NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1) };
        first_next.unwrap() - Days::new(1)
    }
}

/// Checks what holds for every export; `last_through` is the latest `--through`
/// of the batch runs so far. Returns the parsed rows.
fn check_statements(csv: &str, last_through: NaiveDate) -> Vec<Row> {
    let rows = parse_rows(csv);
    let tax_on = |d: NaiveDate| if d >= date("2019-10-01") { (10, 180 * 10 / 100) } else { (8, 180 * 8 / 100) };
    for (i, r) in rows.iter().enumerate() {
        let ctx = &r.line;
        // Order: merchant, then period.
        if i > 0 {
            let p = &rows[i - 1];
            assert!((p.merchant.as_str(), p.period_start) < (r.merchant.as_str(), r.period_start), "rows out of order or repeated: {}\n{ctx}", p.line);
        }
        // The cycle and its dates.
        assert!(r.period_start.day() == 1 || r.period_start.day() == 16, "{ctx}");
        assert_eq!(r.period_end, cycle_end(r.period_start), "{ctx}");
        assert!(r.period_end <= last_through, "a statement of a cycle not yet ended: {ctx}");
        assert_eq!(r.notice_date, r.payout_date - Days::new(2), "notice date: {ctx}");
        assert!(r.payout_date > r.period_end, "{ctx}");
        // Each line: count, sales, fee within range; a group without sales is 0,0,0.
        for (c, s, f) in r.lines {
            assert!(c >= 0 && s >= 0 && f >= 0 && f <= s, "line out of range: {ctx}");
            assert_eq!(c == 0, s == 0, "count and sales: {ctx}");
        }
        // SPEC §4: the balance and what becomes of it.
        let net: i64 = r.lines.iter().map(|(_, s, f)| s - f).sum();
        let balance = net - r.fee_tax + r.carry_in + r.red_slips + r.chargebacks;
        assert!(r.red_slips <= 0, "{ctx}");
        assert!(r.fee_tax >= 0, "{ctx}");
        if r.payout > 0 {
            assert_eq!(r.payout, balance - r.transfer_fee - r.transfer_fee_tax, "payout does not add up: {ctx}");
            assert_eq!(r.carry_out, 0, "{ctx}");
        } else {
            assert_eq!(r.payout, 0, "negative payout: {ctx}");
            assert_eq!((r.transfer_fee, r.transfer_fee_tax), (0, 0), "transfer fee without a transfer: {ctx}");
            assert_eq!(r.carry_out, balance, "carry-over does not add up: {ctx}");
        }
        if r.transfer_fee != 0 {
            let (_, tax) = tax_on(r.payout_date);
            assert_eq!((r.transfer_fee, r.transfer_fee_tax), (180, tax), "{ctx}");
        }
        // The notice number.
        let due = r.payout > 0 && r.notice_date <= last_through;
        if due {
            assert_eq!(r.notice_no, format!("{}-001-{}", r.merchant, r.payout_date.format("%Y%m%d")), "notice number: {ctx}");
        } else {
            assert_eq!(r.notice_no, "", "no notice number expected (payout 0 or notice date after {last_through}): {ctx}");
        }
    }
    // The chain of each merchant.
    let mut by_merchant: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        by_merchant.entry(&r.merchant).or_default().push(r);
    }
    for (m, rs) in by_merchant {
        assert_eq!(rs[0].carry_in, 0, "merchant {m}: the first statement has a carry-in: {}", rs[0].line);
        for w in rs.windows(2) {
            let (p, r) = (w[0], w[1]);
            if p.carry_out != 0 {
                assert_eq!(r.period_start, p.period_end + Days::new(1), "merchant {m}: a carried balance must make the next cycle's statement:\n{}\n{}", p.line, r.line);
            }
            assert_eq!(r.carry_in, p.carry_out, "merchant {m}: carry_in is not the previous carry_out:\n{}\n{}", p.line, r.line);
        }
        let last = rs.last().unwrap();
        if last.carry_out != 0 {
            let next_end = cycle_end(last.period_end + Days::new(1));
            assert!(next_end > last_through, "merchant {m}: carried {} but the next cycle (ended {next_end}) has no statement", last.carry_out);
        }
    }
    rows
}

// --- Scenario tables ---------------------------------------------------------------------

enum Step {
    Merchants(Vec<String>),
    Events(Vec<String>),
    Settle(String),
    Expect { line: usize, rows: Vec<String> },
}

fn parse_scenario(text: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, l)) = lines.next() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut block = || {
            let mut v = Vec::new();
            while let Some((_, b)) = lines.peek() {
                let b = b.trim();
                if b.is_empty() {
                    break;
                }
                if !b.starts_with('#') {
                    v.push(b.to_string());
                }
                lines.next();
            }
            v
        };
        match l {
            "merchants:" => steps.push(Step::Merchants(block().iter().map(|s| merchant_row(s)).collect())),
            "events:" => steps.push(Step::Events(block())),
            "expect:" => steps.push(Step::Expect { line: i + 1, rows: block() }),
            _ => match l.strip_prefix("settle ") {
                Some(d) => steps.push(Step::Settle(d.trim().to_string())),
                None => panic!("scenario line {}: '{l}' is not a step", i + 1),
            },
        }
    }
    steps
}

/// Runs `fixtures/scenarios/{name}.txt` on a fresh store of `kind`; every
/// `expect:` must match the export exactly. Ends with a clean audit replay.
fn run_scenario(kind: Kind, name: &str) -> TestStore {
    let path = repo_fixtures().join("scenarios").join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let s = TestStore::new(kind);
    let mut last_through: Option<NaiveDate> = None;
    for (n, step) in parse_scenario(&text).into_iter().enumerate() {
        match step {
            Step::Merchants(rows) => {
                ingest_merchants(&s, &format!("merchants-{n}.csv"), &merchants_csv(&rows));
            }
            Step::Events(rows) => ingest_events(&s, &format!("events-{n}.csv"), &events_csv(&rows)),
            Step::Settle(d) => {
                settle(&s, &d);
                last_through = last_through.max(Some(date(&d)));
            }
            Step::Expect { line, rows } => {
                let got = export(&s);
                let want = format!("{STATEMENT_HEADER}\n{}", rows.iter().map(|r| format!("{r}\n")).collect::<String>());
                if got != want {
                    let g: Vec<&str> = got.lines().collect();
                    let w: Vec<&str> = want.lines().collect();
                    let mut diff = String::new();
                    for r in &w {
                        if !g.contains(r) {
                            diff.push_str(&format!("  expected, missing: {r}\n"));
                        }
                    }
                    for r in &g {
                        if !w.contains(r) {
                            diff.push_str(&format!("  exported, unexpected: {r}\n"));
                        }
                    }
                    panic!("{name}.txt:{line} ({kind:?}): the export differs:\n{diff}\nfull export:\n{got}");
                }
                check_statements(&got, last_through.expect("an expect after a settle"));
            }
        }
    }
    let o = s.run(&["audit", "replay"]);
    assert_eq!(o.status.code(), Some(0), "{name} ({kind:?}): audit replay:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    s
}

#[test]
fn cancel_in_own_cycle_does_not_count_and_a_later_cancel_is_a_red_slip_at_the_old_rate() {
    for kind in KINDS {
        let s = run_scenario(kind, "cancels");
        // The red slip's line explains which sale it takes back, at what effect.
        let out = s.ok(&["statements", "explain", "--merchant", "100000001", "--period", "2019-10-16", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let items = v["items"].as_array().unwrap();
        let red: Vec<&serde_json::Value> = items.iter().filter(|i| i["line"] == "red_slip").collect();
        assert_eq!(red.len(), 1, "{out}");
        assert_eq!(red[0]["event_id"], "a5");
        assert_eq!(red[0]["txn_id"], "ta3");
        assert_eq!(red[0]["effect"], -2903, "{out}");
        // The same-cycle cancel of the first cycle is there too, taking its sale out.
        let out = s.ok(&["statements", "explain", "--merchant", "100000001", "--period", "2019-10-01", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let same: Vec<&serde_json::Value> = v["items"].as_array().unwrap().iter().filter(|i| i["line"] == "sale_cancelled_same_cycle").collect();
        assert_eq!(same.len(), 1, "{out}");
        assert_eq!(same[0]["txn_id"], "ta2");
        assert_eq!(same[0]["effect"], -5000);
        // The merchant whose only sale was cancelled in its cycle has nothing to explain.
        let o = s.run(&["statements", "explain", "--merchant", "100000002", "--period", "2019-10-01"]);
        assert_eq!(o.status.code(), Some(2));
    }
}

#[test]
fn chargebacks_partial_chargebacks_reversals_and_the_carry_chain() {
    for kind in KINDS {
        run_scenario(kind, "chargebacks");
    }
}

#[test]
fn small_balances_are_carried_without_fee_and_mizuho_pays_no_transfer_fee() {
    for kind in KINDS {
        run_scenario(kind, "carry_over");
    }
}

#[test]
fn fee_tax_policies_and_the_transfer_fee_tax_follow_the_payout_date() {
    for kind in KINDS {
        run_scenario(kind, "fee_tax");
    }
}

#[test]
fn three_brand_groups_on_one_statement_fee_floored_per_line() {
    for kind in KINDS {
        run_scenario(kind, "brand_groups");
    }
}

#[test]
fn late_events_land_in_the_earliest_open_cycle_and_closed_statements_never_change() {
    for kind in KINDS {
        let s = run_scenario(kind, "late_events");
        let out = s.ok(&["statements", "explain", "--merchant", "100000031", "--period", "2019-10-16", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let h2 = v["items"].as_array().unwrap().iter().find(|i| i["event_id"] == "h2").unwrap_or_else(|| panic!("h2 not explained: {out}"));
        assert_eq!(h2["booking_date"], "2019-10-05");
        assert_eq!(h2["period_start"], "2019-10-16");
        assert!(h2["reason"].as_str().unwrap().contains("late"), "{h2}");
    }
}

#[test]
fn payout_dates_move_off_bank_holidays_and_notice_numbers_appear_on_the_notice_date() {
    for kind in KINDS {
        let s = run_scenario(kind, "holidays");
        // One transfer file per payout date, one notice per statement paid.
        let files: Vec<String> = dir_snapshot(&s.path().join("transfers")).into_keys().collect();
        assert_eq!(files, ["zengin-20190426.txt", "zengin-20190917.txt", "zengin-20191230.txt", "zengin-20200115.txt"], "{kind:?}");
        let notices: Vec<String> = dir_snapshot(&s.path().join("notices")).into_keys().collect();
        assert_eq!(
            notices,
            ["100000041-001-20190426.zip", "100000041-001-20190917.zip", "100000041-001-20191230.zip", "100000041-001-20200115.zip"],
            "{kind:?}"
        );
        let payouts = s.ok(&["payouts", "export", "--date", "2019-12-30"]);
        assert!(payouts.lines().nth(1).is_some_and(|l| l.contains(",9472,")), "{payouts}");
    }
}

// --- A generated history ---------------------------------------------------------------

/// xorshift: the same history every time.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const BRANDS: [&str; 9] = ["VISA", "MASTERCARD", "JCB", "AMEX", "DINERS", "DISCOVER", "ID", "QUICPAY", "TRANSIT_IC"];

/// `active` merchants selling every day from `from` to `to` (some sales cancelled
/// the same day or weeks later, some charged back in whole or in part and some
/// of those reversed), and `quiet` ones whose first sale is charged back, left
/// in debt that a few small sales pay off slowly. Rows sorted by instant;
/// nothing is refused.
fn generate(active: u32, quiet: u32, from: NaiveDate, to: NaiveDate, seed: u64) -> (String, String) {
    let mut rng = Rng(seed | 1);
    let mut merchants = Vec::new();
    let mut ids = Vec::new();
    for i in 0..active + quiet {
        let id = format!("{}", 500_000_001 + i);
        let bank = if i % 3 == 1 { "0001" } else { "0010" };
        let fee_tax = ["inclusive-8", "inclusive-8", "exclusive", "exempt"][(i % 4) as usize];
        let (vm, jcb, em) = [("3.24", "3.24", "3.24"), ("3.74", "3.24", "2.95"), ("2.70", "3.60", "3.24")][(i % 3) as usize];
        merchants.push(merchant_row(&format!("{id} {bank} {vm} {jcb} {em} {fee_tax}")));
        ids.push(id);
    }
    let mut rows: Vec<(NaiveDateTime, String)> = Vec::new();
    let at = |t: NaiveDateTime| format!("{}+09:00", t.format("%Y-%m-%dT%H:%M:%S"));
    let (mut txn, mut ev) = (0u64, 0u64);
    let mut day = from;
    while day <= to {
        for (i, m) in ids.iter().enumerate() {
            let is_active = (i as u32) < active;
            let sales = if is_active {
                rng.below(4)
            } else if day == from {
                1
            } else {
                u64::from(day.day() % 7 == 3)
            };
            for _ in 0..sales {
                txn += 1;
                let t = day.and_hms_opt(9 + rng.below(10) as u32, rng.below(60) as u32, rng.below(60) as u32).unwrap();
                let brand = BRANDS[rng.below(9) as usize];
                let amount = if !is_active { if day == from { 50_000 } else { 100 } } else { 100 + rng.below(300) * 100 + rng.below(100) };
                let card = format!("tok_{txn}");
                ev += 1;
                rows.push((t, format!("g{ev},sale,gt{txn},{m},{},{brand},{amount},{card},,", at(t))));
                let fate = rng.below(100);
                if !is_active {
                    if day == from {
                        let later = t + chrono::Duration::days(2);
                        ev += 1;
                        rows.push((later, format!("g{ev},chargeback,gt{txn},,{},,,,,", at(later))));
                    }
                } else if fate < 8 {
                    // cancelled: often the same day, sometimes weeks later
                    let later = t + chrono::Duration::hours(if fate < 4 { 1 } else { 24 * (3 + rng.below(30) as i64) });
                    ev += 1;
                    rows.push((later, format!("g{ev},void,gt{txn},,{},,,{card},,", at(later))));
                } else if fate < 12 {
                    let later = t + chrono::Duration::days(2 + rng.below(25) as i64);
                    let part = if fate < 10 { String::new() } else { (amount / 3).to_string() };
                    ev += 1;
                    rows.push((later, format!("g{ev},chargeback,gt{txn},,{},,{part},,,", at(later))));
                    if fate == 11 {
                        let won = later + chrono::Duration::days(5 + rng.below(20) as i64);
                        ev += 1;
                        rows.push((won, format!("g{ev},chargeback_reversal,gt{txn},,{},,,,,", at(won))));
                    }
                }
            }
        }
        day = day + Days::new(1);
    }
    rows.sort_by_key(|r| r.0);
    (merchants_csv(&merchants), events_csv(&rows.into_iter().map(|r| r.1).collect::<Vec<_>>()))
}

fn generated_store(kind: Kind) -> TestStore {
    let (m, e) = generate(6, 2, date("2019-09-01"), date("2019-12-31"), 20191031);
    let s = TestStore::new(kind);
    ingest_merchants(&s, "merchants.csv", &m);
    ingest_events(&s, "events.csv", &e);
    s
}

#[test]
fn settle_run_again_changes_nothing() {
    for kind in KINDS {
        let s = generated_store(kind);
        settle(&s, "2019-12-31");
        let csv = export(&s);
        let rows = check_statements(&csv, date("2019-12-31"));
        assert!(rows.iter().any(|r| r.red_slips < 0) && rows.iter().any(|r| r.chargebacks != 0) && rows.iter().any(|r| r.carry_in < 0), "the history exercises red slips, chargebacks, carries");
        let count = |s: &TestStore| query(s, "SELECT count(*) FROM events");
        let outbox = |s: &TestStore| query(s, "SELECT notice_no FROM notice_outbox ORDER BY notice_no");
        let before = (count(&s), outbox(&s), dir_snapshot(&s.path().join("notices")), dir_snapshot(&s.path().join("transfers")));
        assert!(!before.2.is_empty() && !before.3.is_empty());
        for again in ["2019-12-31", "2019-12-31", "2019-11-30"] {
            let err = settle(&s, again);
            assert!(err.contains("0 statements closed, 0 notices issued, 0 transfer files written"), "{kind:?} settle {again} again: {err}");
            assert_eq!(export(&s), csv, "{kind:?}: the export changed after settling {again} again");
            let after = (count(&s), outbox(&s), dir_snapshot(&s.path().join("notices")), dir_snapshot(&s.path().join("transfers")));
            assert!(after == before, "{kind:?}: settling {again} again wrote something (events {:?} → {:?})", before.0, after.0);
        }
        let o = s.run(&["audit", "replay"]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn catching_up_over_missed_nights_equals_settling_every_night() {
    for kind in KINDS {
        let nightly = generated_store(kind);
        let mut night = date("2019-09-01");
        let last = date("2020-01-31");
        while night <= last {
            settle(&nightly, &night.to_string());
            night = night + Days::new(1);
        }
        let once = generated_store(kind);
        settle(&once, &last.to_string());
        let (a, b) = (export(&nightly), export(&once));
        check_statements(&a, last);
        assert_eq!(a, b, "{kind:?}: settling every night and catching up in one run differ");
        // The same notices (their numbers; the issue dates differ by design) and
        // the same transfer files, byte for byte.
        let names = |s: &TestStore| dir_snapshot(&s.path().join("notices")).into_keys().collect::<Vec<_>>();
        assert_eq!(names(&nightly), names(&once), "{kind:?}");
        assert_eq!(dir_snapshot(&nightly.path().join("transfers")), dir_snapshot(&once.path().join("transfers")), "{kind:?}: transfer files differ");
        for s in [&nightly, &once] {
            let o = s.run(&["audit", "replay"]);
            assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

// --- Export formats ----------------------------------------------------------------------

#[test]
fn statements_export_json_bom_and_out_file() {
    let s = run_scenario(Kind::Sqlite, "chargebacks");
    let csv = export(&s);
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let header: Vec<&str> = STATEMENT_HEADER.split(',').collect();

    // JSON: one array of objects, the CSV's keys, numbers as numbers, dates as strings.
    let json = s.ok(&["statements", "export", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("the JSON export parses");
    let arr = v.as_array().expect("an array");
    assert_eq!(arr.len(), rows.len());
    for (obj, row) in arr.iter().zip(&rows) {
        let obj = obj.as_object().expect("objects");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut want = header.clone();
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want, "JSON keys are the CSV header's");
        for (i, col) in header.iter().enumerate() {
            let val = &obj[*col];
            if i < 6 {
                assert_eq!(val.as_str(), Some(row[i]), "{col} is a string equal to the CSV cell");
            } else {
                assert!(val.is_i64(), "{col} is a number, not {val}");
                assert_eq!(val.as_i64().unwrap().to_string(), row[i], "{col}");
            }
        }
    }
    assert!(arr.iter().any(|o| o["carry_out"].as_i64().unwrap() < 0), "negative amounts are negative numbers");

    // --bom: EF BB BF, then the same CSV.
    let o = s.run(&["statements", "export", "--bom"]);
    assert!(o.status.success());
    assert_eq!(&o.stdout[..3], b"\xEF\xBB\xBF");
    assert_eq!(&o.stdout[3..], csv.as_bytes());

    // --out FILE: the file, nothing on stdout.
    let out = s.path().join("out").join("statements.csv");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let o = s.run(&["statements", "export", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty(), "--out writes nothing to stdout");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), csv);
    let outj = s.path().join("statements.json");
    let o = s.run(&["statements", "export", "--format", "json", "--out", outj.to_str().unwrap()]);
    assert!(o.status.success() && o.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&outj).unwrap(), json);
}

// --- The payout calendar ------------------------------------------------------------------

#[test]
fn schedule_prints_the_payout_calendar_and_names_provisional_years() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| Command::new(upay_bin()).current_dir(dir.path()).env_remove("UPAY_STORE").args(args).output().unwrap();
    let o = run(&["schedule", "--from", "2019-01", "--to", "2019-12"]);
    assert_eq!(o.status.code(), Some(0));
    // Checked by hand against the 2019 calendar: a month-end payout on a bank
    // holiday moves back (03-31 Sun → 03-29; 04-30 holiday → 04-26; 06-30 Sun →
    // 06-28; 08-31 Sat → 08-30; 11-30 Sat → 11-29; 12-31 bank holiday → 12-30), a
    // 15th moves forward (06-15 Sat → 06-17; 07-15 海の日 → 07-16; 09-15 Sun and
    // 09-16 敬老の日 → 09-17; 12-15 Sun → 12-16); the notice is 2 days before.
    let want = "\
period_start,period_end,payout_date,notice_date
2019-01-01,2019-01-15,2019-01-31,2019-01-29
2019-01-16,2019-01-31,2019-02-15,2019-02-13
2019-02-01,2019-02-15,2019-02-28,2019-02-26
2019-02-16,2019-02-28,2019-03-15,2019-03-13
2019-03-01,2019-03-15,2019-03-29,2019-03-27
2019-03-16,2019-03-31,2019-04-15,2019-04-13
2019-04-01,2019-04-15,2019-04-26,2019-04-24
2019-04-16,2019-04-30,2019-05-15,2019-05-13
2019-05-01,2019-05-15,2019-05-31,2019-05-29
2019-05-16,2019-05-31,2019-06-17,2019-06-15
2019-06-01,2019-06-15,2019-06-28,2019-06-26
2019-06-16,2019-06-30,2019-07-16,2019-07-14
2019-07-01,2019-07-15,2019-07-31,2019-07-29
2019-07-16,2019-07-31,2019-08-15,2019-08-13
2019-08-01,2019-08-15,2019-08-30,2019-08-28
2019-08-16,2019-08-31,2019-09-17,2019-09-15
2019-09-01,2019-09-15,2019-09-30,2019-09-28
2019-09-16,2019-09-30,2019-10-15,2019-10-13
2019-10-01,2019-10-15,2019-10-31,2019-10-29
2019-10-16,2019-10-31,2019-11-15,2019-11-13
2019-11-01,2019-11-15,2019-11-29,2019-11-27
2019-11-16,2019-11-30,2019-12-16,2019-12-14
2019-12-01,2019-12-15,2019-12-30,2019-12-28
2019-12-16,2019-12-31,2020-01-15,2020-01-13
";
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("provisional"), "2019 is official: {}", String::from_utf8_lossy(&o.stderr));
    assert!(!dir.path().join("upay.db").exists(), "schedule needs no store and creates none");

    let o = run(&["schedule", "--from", "2028-01", "--to", "2028-02"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "period_start,period_end,payout_date,notice_date");
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[1].starts_with("2028-01-01,2028-01-15,") && lines[4].starts_with("2028-02-16,2028-02-29,"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2028"), "the first provisional year is named on stderr: {err}");
}

#[test]
fn a_late_sale_cancelled_after_its_cycle_closed_is_taken_back_at_the_rate_it_was_settled_at() {
    for kind in KINDS {
        run_scenario(kind, "late_sale_cancelled_later");
    }
}
