//! `upay ingest merchants|events` end to end, through the binary, on both stores
//! (SPEC §2 refusals, §6 file formats, §7 exit codes): a malformed file is refused
//! whole with exit 2, every bad row named `FILE:LINE: reason` (the header is
//! line 1) and nothing recorded; well-formed rows that break a lifecycle rule are kept
//! as refusals with their codes; secrets and card numbers never show.
mod common;
use common::*;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Command, Output};

/// The merchant of these tests (the manual's sample merchant id).
const M: &str = "270212122";
/// A distinctive notice password, searched for in every output and in the log.
const PASSWORD: &str = "987654321";
const STATEMENTS_HEADER: &str = "merchant_id,period_start,period_end,payout_date,notice_date,notice_no,visa_master_count,visa_master_sales,visa_master_fee,jcb_other_count,jcb_other_sales,jcb_other_fee,emoney_count,emoney_sales,emoney_fee,fee_tax,carry_in,red_slips,chargebacks,transfer_fee,transfer_fee_tax,payout,carry_out";
const REFUSALS_HEADER: &str = "event_id,code,message\n";

/// One VISA sale of ¥10,000 on 2019-10-01 for M (Resona, inclusive-8, 3.24%):
/// fee 324, fee tax round_half_up(324/54) = 6, transfer fee 180 + 18,
/// payout 10000 − 324 − 6 − 180 − 18 = 9472.
const CHECK_SALE_ROW: &str = "270212122,2019-10-01,2019-10-15,2019-10-31,2019-10-29,270212122-001-20191031,1,10000,324,0,0,0,0,0,0,6,0,0,0,180,18,9472,0";

/// Generates `NAME::sqlite` and `NAME::postgres` from `fn NAME(kind: Kind)`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(super::Kind::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name(super::Kind::Postgres)
            }
        }
    )*};
}

// ---------------------------------------------------------------- helpers

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn all_output(o: &Output) -> String {
    format!("{}\n{}", text(&o.stdout), text(&o.stderr))
}

fn show(o: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), text(&o.stdout), text(&o.stderr))
}

/// Runs and asserts exit 0; returns stderr (where summaries go).
fn ok_err(s: &TestStore, args: &[&str]) -> String {
    let o = s.run(args);
    assert_eq!(o.status.code(), Some(0), "upay {args:?}: {}", show(&o));
    text(&o.stderr)
}

const PY_QUERY: &str = "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor r in c.execute(sys.argv[2]):\n    print('|'.join('' if x is None else str(x) for x in r))";

/// Runs a query against the store; rows one a line, columns separated by `|`.
fn query(s: &TestStore, sql: &str) -> String {
    let out = match s.kind {
        Kind::Postgres => {
            let db = s.url.rsplit('/').next().unwrap();
            Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().expect("psql runs")
        }
        Kind::Sqlite => {
            let path = &s.url["sqlite://".len()..];
            assert!(std::path::Path::new(path).exists(), "query before the store exists");
            Command::new("python3").env("PYTHONIOENCODING", "utf-8").args(["-c", PY_QUERY, path, sql]).output().expect("python3 runs")
        }
    };
    assert!(out.status.success(), "query {sql}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn count(s: &TestStore, sql: &str) -> i64 {
    query(s, sql).trim().parse().unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn payment_rows(s: &TestStore) -> i64 {
    count(s, "SELECT count(*) FROM events WHERE aggregate_type = 'Payment'")
}

const MERCHANT_FIELDS: [(&str, &str); 18] = [
    ("merchant_id", M),
    ("name", "②新PAY切替Uペイ"),
    ("contact", "平 次郎"),
    ("email", "shop@example.jp"),
    ("bank_code", "0010"),
    ("bank_name", "りそな銀行"),
    ("branch_code", "999"),
    ("branch_name", "証券信託業務支店"),
    ("account_type", "普通"),
    ("account_number", "1234567"),
    ("account_holder", "ペイジノ"),
    ("rate_visa_master", "3.24"),
    ("rate_jcb_other", "3.24"),
    ("rate_emoney", "3.24"),
    ("fee_tax", "inclusive-8"),
    ("notice_password", PASSWORD),
    ("bank_name_kana", "リソナ"),
    ("branch_name_kana", "ショウケンシンタクギョウム"),
];

/// A merchants.csv row: the sample merchant with some fields replaced (the last
/// replacement of a field wins).
fn merchant_row(over: &[(&str, &str)]) -> String {
    for (k, _) in over {
        assert!(MERCHANT_FIELDS.iter().any(|(f, _)| f == k), "no column {k}");
    }
    MERCHANT_FIELDS.iter().map(|(k, v)| over.iter().rev().find(|(o, _)| o == k).map_or(*v, |(_, x)| *x)).collect::<Vec<_>>().join(",")
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

/// Registers M (password PASSWORD).
fn register(s: &TestStore) {
    s.write("m.csv", &merchants_csv(&[merchant_row(&[])]));
    let e = ok_err(s, &["ingest", "merchants", "m.csv"]);
    assert!(e.contains("merchants: 1 new, 0 changed, 0 unchanged"), "{e}");
}

/// Asserts exit 2 and that exactly the rows `expected` (line, part of the reason)
/// are listed as `FILE:LINE: reason`, no other line of the file, no panic.
fn assert_listed(o: &Output, file: &str, expected: &[(u64, &str)]) {
    assert_eq!(o.status.code(), Some(2), "{}", show(o));
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let prefix = format!("{file}:");
    let mut listed: Vec<(u64, String)> = Vec::new();
    for l in err.lines() {
        let l = l.strip_prefix("upay: ").unwrap_or(l);
        let Some(rest) = l.strip_prefix(&prefix) else { continue };
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() || !rest[digits.len()..].starts_with(": ") {
            continue;
        }
        listed.push((digits.parse().unwrap(), rest[digits.len() + 2..].to_string()));
    }
    for (line, needle) in expected {
        assert!(listed.iter().any(|(n, r)| n == line && r.contains(needle)), "expected `{file}:{line}: …{needle}…` in stderr:\n{err}");
    }
    let mut got: Vec<u64> = listed.iter().map(|(n, _)| *n).collect();
    got.dedup();
    let mut want: Vec<u64> = expected.iter().map(|(n, _)| *n).collect();
    want.dedup();
    assert_eq!(got, want, "the lines listed in stderr:\n{err}");
}

/// `assert_listed` plus the closing line of a file refused for bad rows.
fn assert_bad_rows(o: &Output, file: &str, expected: &[(u64, &str)]) {
    assert_listed(o, file, expected);
    let err = text(&o.stderr);
    let n = {
        let mut v: Vec<u64> = expected.iter().map(|(n, _)| *n).collect();
        v.dedup();
        v.len()
    };
    assert!(err.contains(&format!("{file}: refused, nothing recorded ({n} bad rows)")), "{err}");
}

/// Nothing of a refused events file was recorded: no refusal, no payment event,
/// no idempotency record, and a later valid ingest + settle shows only its own sale.
/// Needs M registered.
fn assert_no_event_recorded(s: &TestStore) {
    assert_eq!(s.ok(&["refusals", "export"]), REFUSALS_HEADER);
    assert_eq!(count(s, "SELECT count(*) FROM events WHERE aggregate_type IN ('Payment', 'Refusal')"), 0);
    assert_eq!(count(s, "SELECT count(*) FROM inputs"), 0);
    s.write("check.csv", &events_csv(&[format!("zz-check-1,sale,zz-check-t1,{M},2019-10-01T10:00:00+09:00,VISA,10000,zz-check-tok,,")]));
    let e = ok_err(s, &["ingest", "events", "check.csv"]);
    assert!(e.contains("events: 1 recorded, 0 already present, 0 refused"), "{e}");
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n"));
}

/// Nothing of a refused merchants file was recorded: no event, no secret, and M
/// imports afterwards as new; then the events check.
fn assert_no_merchant_recorded(s: &TestStore) {
    assert_eq!(s.ok(&["refusals", "export"]), REFUSALS_HEADER);
    assert_eq!(count(s, "SELECT count(*) FROM events"), 0);
    assert_eq!(count(s, "SELECT count(*) FROM merchant_secrets"), 0);
    register(s);
    assert_no_event_recorded(s);
}

/// Runs every case, then fails listing every case that failed.
fn run_cases<T>(cases: &[T], name: impl Fn(&T) -> String, f: impl Fn(&T)) {
    let mut failed = Vec::new();
    for c in cases {
        if catch_unwind(AssertUnwindSafe(|| f(c))).is_err() {
            failed.push(name(c));
        }
    }
    assert!(failed.is_empty(), "{} of {} cases failed:\n{}", failed.len(), cases.len(), failed.join("\n"));
}

/// Values that look like card numbers, never to be echoed.
const PANS: [&str; 3] = ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111"];

fn assert_no_pan(out: &str) {
    for p in PANS {
        assert!(!out.contains(p), "a card number is echoed:\n{out}");
    }
    assert!(!out.contains("41111111"), "a card number is echoed:\n{out}");
}

fn g1() -> String {
    format!("g1,sale,tg1,{M},2019-10-01T10:00:00+09:00,VISA,1000,tokg1,,")
}
fn g2() -> String {
    format!("g2,authorize,tg2,{M},2019-10-02T10:00:00+09:00,JCB,2000,tokg2,3,")
}

// ---------------------------------------------------------------- events.csv: malformed rows

fn bad_event_rows() -> Vec<(String, &'static str)> {
    let m = M;
    let at = "2019-10-01T10:00:00+09:00";
    let sale = |brand: &str, amount: &str, card: &str, inst: &str, code: &str| format!("b1,sale,tb,{m},{at},{brand},{amount},{card},{inst},{code}");
    vec![
        (format!("b1,sale,tb,{m},{at},VISA,1000,tokb,"), "has 9 fields, the header has 10"),
        (format!("b1,sale,tb,{m},{at},VISA,1000,tokb,,,"), "has 11 fields, the header has 10"),
        (format!("b1,refund,tb,{m},{at},VISA,1000,tokb,,"), "unknown kind 'refund'"),
        (format!("b1,,tb,{m},{at},VISA,1000,tokb,,"), "unknown kind ''"),
        (sale("NICOS", "1000", "tokb", "", ""), "unknown brand 'NICOS'"),
        (sale("visa", "1000", "tokb", "", ""), "unknown brand 'visa'"),
        (format!("b1,sale,tb,{m},2019-10-01T10:00:00,VISA,1000,tokb,,"), "has no UTC offset"),
        (format!("b1,sale,tb,{m},2019-10-01 10:00:00,VISA,1000,tokb,,"), "has no UTC offset"),
        (format!("b1,sale,tb,{m},2019-02-30T10:00:00+09:00,VISA,1000,tokb,,"), "is not a valid RFC 3339 instant"),
        (sale("VISA", "1.5", "tokb", "", ""), "amount '1.5' is not a positive whole number of yen"),
        (sale("VISA", "-1000", "tokb", "", ""), "amount '-1000' is not a positive whole number of yen"),
        (sale("VISA", "0", "tokb", "", ""), "amount '0' is out of range (1 to 9999999999)"),
        (sale("VISA", "10000000000", "tokb", "", ""), "amount '10000000000' is out of range (1 to 9999999999)"),
        (sale("VISA", "abc", "tokb", "", ""), "amount 'abc' is not a positive whole number of yen"),
        (sale("VISA", "１０００", "tokb", "", ""), "is not a positive whole number of yen"),
        (sale("VISA", "1000", "tokb", "0", ""), "installments '0' is not a whole number from 1 to 99"),
        (sale("VISA", "1000", "tokb", "100", ""), "installments '100' is not a whole number from 1 to 99"),
        (sale("VISA", "1000", "tokb", "x", ""), "installments 'x' is not a whole number from 1 to 99"),
        (sale("VISA", "1000", "4111111111111111", "", ""), "card looks like a card number"),
        (sale("VISA", "1000", "4111 1111 1111 1111", "", ""), "card looks like a card number"),
        (sale("VISA", "1000", "4111-1111-1111-1111", "", ""), "card looks like a card number"),
        ("b1,void,tg1,,2019-10-01T11:00:00+09:00,,,4111111111111111,,".to_string(), "card looks like a card number"),
        (sale("VISA", "1000", "tokb", "", "ng-02"), "sale: code must be empty"),
        (format!("b1,authorize,tb,{m},{at},VISA,1000,tokb,,G12"), "authorize: code must be empty"),
        ("b1,capture,tg1,,2019-10-01T11:00:00+09:00,VISA,,,,".to_string(), "capture: brand must be empty"),
        ("b1,capture,tg1,,2019-10-01T11:00:00+09:00,,,tokg1,,".to_string(), "capture: card must be empty"),
        ("b1,void,tg1,,2019-10-01T11:00:00+09:00,,1000,tokg1,,".to_string(), "void: amount must be empty"),
        ("b1,chargeback,tg1,,2019-10-01T11:00:00+09:00,,,,2,".to_string(), "chargeback: installments must be empty"),
        ("b1,chargeback_reversal,tg1,,2019-10-01T11:00:00+09:00,,1000,,,".to_string(), "chargeback_reversal: amount must be empty"),
        (sale("VISA", "", "tokb", "", ""), "sale: amount is required"),
        (sale("VISA", "1000", "", "", ""), "sale: card is required"),
        (sale("", "1000", "tokb", "", ""), "sale: brand is required"),
        (format!("b1,authorize,tb,,{at},VISA,1000,tokb,,"), "authorize: merchant_id is required"),
        ("b1,capture,,,2019-10-01T11:00:00+09:00,,,,,".to_string(), "capture: txn_id is required"),
        ("b1,capture,tg1,,,,,,,".to_string(), "capture: at is required"),
        (format!(",sale,tb,{m},{at},VISA,1000,tokb,,"), "sale: event_id is required"),
        (format!("b1,sale,tb,27021212,{at},VISA,1000,tokb,,"), "merchant_id '27021212' is not 9 digits"),
        (format!("b1,decline,tb,{m},{at},VISA,1000,tokb,,ng_02"), "code 'ng_02' is not a response code"),
        (format!("b1,sale,{},{m},{at},VISA,1000,tokb,,", "t".repeat(65)), "txn_id is longer than 64 characters"),
        (format!("\"b\t1\",sale,tb,{m},{at},VISA,1000,tokb,,"), "event_id contains a control character"),
    ]
}

/// Every malformed row: the file (a good row, the bad row on line 3, a good row)
/// is refused whole with exit 2 and that line named; nothing is recorded; no card
/// number is echoed.
fn events_malformed_rows_are_refused_whole(kind: Kind) {
    run_cases(
        &bad_event_rows(),
        |(row, reason)| format!("{row}  ->  {reason}"),
        |(row, reason)| {
            let s = TestStore::new(kind);
            register(&s);
            s.write("events.csv", &events_csv(&[g1(), row.clone(), g2()]));
            let o = s.run(&["ingest", "events", "events.csv"]);
            assert_bad_rows(&o, "events.csv", &[(3, reason)]);
            assert_no_pan(&all_output(&o));
            assert_no_event_recorded(&s);
        },
    );
}

/// Several bad rows: every one is listed with its line, the good ones are not.
fn events_every_bad_row_is_listed(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    let rows = vec![
        g1(),                                                                              // 2
        format!("b1,refund,tb1,{M},2019-10-01T10:00:00+09:00,VISA,1000,tokb1,,"),          // 3
        g2(),                                                                              // 4
        format!("b2,sale,tb2,{M},2019-10-01T10:00:00+09:00,VISA,1.5,tokb2,,"),             // 5
        format!("b3,sale,tb3,{M},2019-10-01T10:00:00+09:00,VISA,1000,4111111111111111,,"), // 6
        format!("g3,sale,tg3,{M},2019-10-03T10:00:00+09:00,ID,300,tokg3,,"),               // 7
        "b4,capture,tg2,,2019-10-02T10:00:00,VISA,,,,".to_string(),                           // 8
        format!("b5,sale,tb5,{M},2019-10-01T10:00:00+09:00,VISA,1000,tokb5"),              // 9
    ];
    s.write("events.csv", &events_csv(&rows));
    let o = s.run(&["ingest", "events", "events.csv"]);
    assert_bad_rows(&o, "events.csv", &[(3, "unknown kind 'refund'"), (5, "amount '1.5'"), (6, "card looks like a card number"), (8, "capture: brand must be empty"), (9, "has 8 fields, the header has 10")]);
    assert_no_pan(&all_output(&o));
    assert_no_event_recorded(&s);
}

/// Line numbers are the file's physical lines (SPEC §6: the header is line 1).
/// Excel writes CRLF line endings: the bad row on line 3 is line 3 (events and
/// merchants alike).
fn line_numbers_count_crlf_lines(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    s.write("crlf.csv", &format!("{EVENTS_HEADER}\r\n{}\r\nb1,sale,tb,{M},2019-10-01T10:00:00+09:00,VISA,0,tokb,,\r\n{}\r\n", g1(), g2()));
    let o = s.run(&["ingest", "events", "crlf.csv"]);
    assert_bad_rows(&o, "crlf.csv", &[(3, "amount '0' is out of range")]);
    let rows = [merchant_row(&[("merchant_id", "270212124")]), merchant_row(&[("merchant_id", "270212123"), ("bank_code", "1")])];
    s.write("mcrlf.csv", &merchants_csv(&rows).replace('\n', "\r\n"));
    let out = s.run(&["ingest", "merchants", "mcrlf.csv"]);
    assert_bad_rows(&out, "mcrlf.csv", &[(3, "bank_code '1' is not 4 digits")]);
    assert_no_event_recorded(&s);
}

/// A blank line counts as a line: the bad row after a blank line 3 is line 4.
fn line_numbers_count_blank_lines(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    s.write("blank.csv", &format!("{EVENTS_HEADER}\n{}\n\nb1,sale,tb,{M},2019-10-01T10:00:00+09:00,VISA,0,tokb,,\n", g1()));
    let o = s.run(&["ingest", "events", "blank.csv"]);
    assert_bad_rows(&o, "blank.csv", &[(4, "amount '0' is out of range")]);
    assert_no_event_recorded(&s);
}

/// A quoted field spanning two lines (2–3): the bad row after it is line 4.
fn line_numbers_count_lines_inside_quoted_fields(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    s.write("multi.csv", &format!("{EVENTS_HEADER}\nd1,decline,td,{M},2019-10-01T10:00:00+09:00,VISA,1000,tokd,,\"ng-02\nG12\"\nb1,sale,tb,{M},2019-10-01T10:00:00+09:00,VISA,0,tokb,,\n"));
    let o = s.run(&["ingest", "events", "multi.csv"]);
    assert_bad_rows(&o, "multi.csv", &[(4, "amount '0' is out of range")]);
    assert_no_event_recorded(&s);
}

/// A card number put in another column by mistake is not echoed either (the
/// engine's messages never repeat a card number).
fn events_card_number_in_another_column_is_not_echoed(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    let rows = vec![
        format!("b1,sale,tb1,{M},2019-10-01T10:00:00+09:00,VISA,4111111111111111,tokb1,,"),
        format!("b2,sale,tb2,{M},2019-10-01T10:00:00+09:00,VISA,1000,tokb2,4111111111111111,"),
        format!("b3,sale,tb3,{M},2019-10-01T10:00:00+09:00,4111111111111111,1000,tokb3,,"),
    ];
    s.write("events.csv", &events_csv(&rows));
    let o = s.run(&["ingest", "events", "events.csv"]);
    assert_bad_rows(&o, "events.csv", &[(2, "amount"), (3, "installments"), (4, "brand")]);
    assert_no_pan(&all_output(&o));
    assert_no_event_recorded(&s);
}

/// A card number spelt with full-width digits (what a Japanese IME in full-width
/// mode types) or full-width spaces is still a card number: refused, not echoed,
/// and never stored as a "token".
fn card_numbers_in_full_width_are_refused(kind: Kind) {
    let cases = ["４１１１１１１１１１１１１１１１", "4111\u{3000}1111\u{3000}1111\u{3000}1111", "４１１１ １１１１ １１１１ １１１１"];
    run_cases(
        &cases,
        |c| c.to_string(),
        |pan| {
            let s = TestStore::new(kind);
            register(&s);
            s.write("events.csv", &events_csv(&[g1(), format!("b1,sale,tb,{M},2019-10-01T10:00:00+09:00,VISA,1000,{pan},,")]));
            let o = s.run(&["ingest", "events", "events.csv"]);
            let out = all_output(&o);
            assert!(!out.contains(pan), "the card number is echoed:\n{out}");
            let log = query(&s, "SELECT CAST(payload AS text) FROM events WHERE aggregate_type = 'Payment'");
            assert!(!log.contains(pan), "the card number was stored in the event log as a token (exit {:?}):\n{log}", o.status.code());
            assert_bad_rows(&o, "events.csv", &[(3, "card looks like a card number")]);
            assert_no_event_recorded(&s);
        },
    );
}

/// An installments value with a sign is not "a whole number from 1 to 99" as
/// written (amounts with a sign are refused too).
fn installments_with_a_sign_is_refused(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    s.write("events.csv", &events_csv(&[g1(), format!("b1,sale,tb,{M},2019-10-01T10:00:00+09:00,VISA,1000,tokb,+3,")]));
    let o = s.run(&["ingest", "events", "events.csv"]);
    assert_bad_rows(&o, "events.csv", &[(3, "installments '+3' is not a whole number from 1 to 99")]);
    assert_no_event_recorded(&s);
}

// ---------------------------------------------------------------- events.csv: event ids

fn events_duplicate_id_in_file_with_different_content_is_refused(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    let rows = vec![
        format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,1000,tok1,,"),
        format!("e2,sale,t2,{M},2019-10-01T11:00:00+09:00,VISA,2000,tok2,,"),
        format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,1500,tok1,,"),
    ];
    s.write("events.csv", &events_csv(&rows));
    let o = s.run(&["ingest", "events", "events.csv"]);
    assert_bad_rows(&o, "events.csv", &[(4, "event_id e1 already appears on line 2 with different content")]);
    assert_no_event_recorded(&s);
}

/// SPEC §6: an event_id earlier in the same file with the same content is
/// skipped as already present (and counted so in the summary).
fn events_duplicate_id_in_file_with_same_content_is_skipped(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    let e1 = format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,4000,tok1,,");
    let rows = vec![e1.clone(), format!("e2,sale,t2,{M},2019-10-01T11:00:00+09:00,VISA,6000,tok2,,"), e1];
    s.write("events.csv", &events_csv(&rows));
    let err = ok_err(&s, &["ingest", "events", "events.csv"]);
    assert_eq!(payment_rows(&s), 4, "two sales, each Authorized + Captured");
    assert_eq!(s.ok(&["refusals", "export"]), REFUSALS_HEADER, "the repeat is no P1241 refusal");
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n").replace(",1,10000,324,", ",2,10000,324,"));
    assert!(err.contains("events: 2 recorded, 1 already present, 0 refused"), "the repeated row is not counted as already present:\n{err}");
}

fn events_id_already_recorded_with_different_content_refuses_the_file(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    s.write("a.csv", &events_csv(&[format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,10000,tok1,,")]));
    let e = ok_err(&s, &["ingest", "events", "a.csv"]);
    assert!(e.contains("events: 1 recorded, 0 already present, 0 refused"), "{e}");
    s.write(
        "b.csv",
        &events_csv(&[
            format!("e2,sale,t2,{M},2019-10-02T10:00:00+09:00,JCB,5000,tok2,,"),
            format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,10001,tok1,,"),
            format!("e3,sale,t3,{M},2019-10-02T10:00:00+09:00,JCB,5000,tok3,,"),
        ]),
    );
    let o = s.run(&["ingest", "events", "b.csv"]);
    assert_bad_rows(&o, "b.csv", &[(3, "event_id e1 was already recorded with different content")]);
    assert_eq!(payment_rows(&s), 2, "only e1's Authorized + Captured");
    assert_eq!(count(&s, "SELECT count(*) FROM inputs"), 1);
    assert_eq!(s.ok(&["refusals", "export"]), REFUSALS_HEADER);
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n"));
}

fn events_id_already_recorded_with_same_content_is_skipped(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    let e1 = format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,4000,tok1,,");
    s.write("a.csv", &events_csv(std::slice::from_ref(&e1)));
    ok_err(&s, &["ingest", "events", "a.csv"]);
    // Same content, whitespace around the fields aside.
    let e1_spaced = format!("e1, sale ,t1,{M},2019-10-01T10:00:00+09:00,VISA, 4000,tok1,,");
    s.write("b.csv", &events_csv(&[e1_spaced, format!("e2,sale,t2,{M},2019-10-01T11:00:00+09:00,VISA,6000,tok2,,")]));
    let e = ok_err(&s, &["ingest", "events", "b.csv"]);
    assert!(e.contains("events: 1 recorded, 1 already present, 0 refused"), "{e}");
    assert_eq!(payment_rows(&s), 4);
    assert_eq!(s.ok(&["refusals", "export"]), REFUSALS_HEADER);
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n").replace(",1,10000,324,", ",2,10000,324,"));
}

// ---------------------------------------------------------------- whole files

fn empty_and_missing_files_are_refused(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    for (what, content) in [("events", ""), ("events", "\n\n"), ("merchants", ""), ("merchants", " \r\n")] {
        s.write("empty.csv", content);
        let o = s.run(&["ingest", what, "empty.csv"]);
        assert_eq!(o.status.code(), Some(2), "{what} {content:?}: {}", show(&o));
        let err = text(&o.stderr);
        assert!(err.contains("empty.csv") && err.contains("empty"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    for what in ["events", "merchants"] {
        let o = s.run(&["ingest", what, "no-such-file.csv"]);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        let err = text(&o.stderr);
        assert!(err.contains("no-such-file.csv: cannot read"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(count(&s, "SELECT count(*) FROM events WHERE aggregate_type = 'Merchant'"), 1);
    assert_no_event_recorded(&s);
}

/// A file with only its header is accepted and records nothing.
fn header_only_files_record_nothing(kind: Kind) {
    let s = TestStore::new(kind);
    s.write("m.csv", &format!("{MERCHANTS_HEADER}\n"));
    let e = ok_err(&s, &["ingest", "merchants", "m.csv"]);
    assert!(e.contains("merchants: 0 new, 0 changed, 0 unchanged"), "{e}");
    s.write("e.csv", &format!("{EVENTS_HEADER}\n"));
    let e = ok_err(&s, &["ingest", "events", "e.csv"]);
    assert!(e.contains("events: 0 recorded, 0 already present, 0 refused"), "{e}");
    // Without a final newline, too.
    s.write("e2.csv", EVENTS_HEADER);
    let e = ok_err(&s, &["ingest", "events", "e2.csv"]);
    assert!(e.contains("events: 0 recorded, 0 already present, 0 refused"), "{e}");
    assert_no_merchant_recorded(&s);
}

fn bad_headers_are_refused_at_line_1(kind: Kind) {
    let cases: Vec<(&str, String, &str)> = vec![
        ("events", format!("{EVENTS_HEADER},memo\n{},x\n", g1()), "unknown column 'memo'"),
        ("events", format!("{}\n{}\n", EVENTS_HEADER.replace(",code", ""), g1().trim_end_matches(',')), "missing column 'code'"),
        ("events", format!("{}\n{}\n", EVENTS_HEADER.replace("amount", "amout"), g1()), "missing column 'amount'"),
        ("events", format!("{EVENTS_HEADER},kind\n{},sale\n", g1()), "column 'kind' appears twice"),
        ("events", format!("{}\n", g1()), "missing column 'event_id'"),
        ("merchants", format!("{MERCHANTS_HEADER},memo\n{},x\n", merchant_row(&[])), "unknown column 'memo'"),
        ("merchants", format!("{}\n{}\n", MERCHANTS_HEADER.replace(",notice_password", ""), merchant_row(&[]).replace(&format!(",{PASSWORD}"), "")), "missing column 'notice_password'"),
    ];
    run_cases(
        &cases,
        |(w, c, r)| format!("{w}: {c:?} -> {r}"),
        |(what, content, reason)| {
            let s = TestStore::new(kind);
            s.write("f.csv", content);
            let o = s.run(&["ingest", what, "f.csv"]);
            assert_listed(&o, "f.csv", &[(1, "bad header")]);
            assert_listed(&o, "f.csv", &[(1, reason)]);
            assert_no_merchant_recorded(&s);
        },
    );
}

/// Columns in another order are fine: the header names them.
fn columns_may_come_in_any_order(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    s.write("e.csv", &format!("amount,event_id,kind,txn_id,merchant_id,at,brand,card,installments,code\n10000,e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,tok1,,\n"));
    let e = ok_err(&s, &["ingest", "events", "e.csv"]);
    assert!(e.contains("events: 1 recorded"), "{e}");
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n"));
}

// ---------------------------------------------------------------- encodings

fn utf8_bom_is_accepted(kind: Kind) {
    let s = TestStore::new(kind);
    s.write("m.csv", &format!("\u{FEFF}{}", merchants_csv(&[merchant_row(&[])])));
    let e = ok_err(&s, &["ingest", "merchants", "m.csv"]);
    assert!(e.contains("merchants: 1 new, 0 changed, 0 unchanged"), "{e}");
    // The same merchant without BOM: unchanged, so the BOM did not stick to a field.
    let e = ok_err(&s, &["ingest", "merchants", &s.write("m2.csv", &merchants_csv(&[merchant_row(&[])])).display().to_string()]);
    assert!(e.contains("merchants: 0 new, 0 changed, 1 unchanged"), "{e}");
    s.write("e.csv", &format!("\u{FEFF}{}", events_csv(&[format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,10000,tok1,,")])));
    let e = ok_err(&s, &["ingest", "events", "e.csv"]);
    assert!(e.contains("events: 1 recorded, 0 already present, 0 refused"), "{e}");
    // A BOM file with a bad row still counts the header as line 1.
    s.write("bad.csv", &format!("\u{FEFF}{}", events_csv(&[g1(), format!("b1,sale,tb,{M},2019-10-01T10:00:00+09:00,VISA,0,tokb,,")])));
    let o = s.run(&["ingest", "events", "bad.csv"]);
    assert_bad_rows(&o, "bad.csv", &[(3, "amount '0' is out of range")]);
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n"));
}

const PY_WRITE_CP932: &str = "import sys\nopen(sys.argv[1], 'wb').write(sys.argv[2].encode('cp932'))";

/// Writes `content` in Shift_JIS (Windows-31J, as Excel saves it) with CRLF.
fn write_sjis(s: &TestStore, name: &str, content: &str, ascii: bool) {
    let path = s.path().join(name);
    let o = Command::new("python3").args(["-c", PY_WRITE_CP932, path.to_str().unwrap(), &content.replace('\n', "\r\n")]).output().expect("python3 runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::str::from_utf8(&std::fs::read(&path).unwrap()).is_ok(), ascii, "UTF-8 only when ASCII");
}

fn shift_jis_merchants_are_read_with_the_flag(kind: Kind) {
    let s = TestStore::new(kind);
    // Half-width kana (single bytes in Shift_JIS) and an NEC special character (②).
    let row = merchant_row(&[("account_holder", "ﾍﾟｲｼﾞﾉ"), ("bank_name_kana", "ﾘｿﾅ")]);
    write_sjis(&s, "sjis.csv", &merchants_csv(std::slice::from_ref(&row)), false);
    let e = ok_err(&s, &["ingest", "merchants", "sjis.csv", "--encoding", "shift_jis"]);
    assert!(e.contains("merchants: 1 new, 0 changed, 0 unchanged"), "{e}");
    // The same row in UTF-8 is unchanged: every field was decoded exactly.
    s.write("utf8.csv", &merchants_csv(&[row]));
    let e = ok_err(&s, &["ingest", "merchants", "utf8.csv"]);
    assert!(e.contains("merchants: 0 new, 0 changed, 1 unchanged"), "{e}");
    let names = query(&s, "SELECT CAST(payload AS text) FROM events WHERE aggregate_type = 'Merchant'");
    assert!(names.contains("②新PAY切替Uペイ") && names.contains("証券信託業務支店") && names.contains("ﾍﾟｲｼﾞﾉ"), "{names}");
    // A Shift_JIS events file with the flag, too (ASCII is the same in both).
    write_sjis(&s, "e.csv", &events_csv(&[format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,10000,tok1,,")]), true);
    let e = ok_err(&s, &["ingest", "events", "e.csv", "--encoding", "shift_jis"]);
    assert!(e.contains("events: 1 recorded"), "{e}");
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n"));
}

/// A row of plain ASCII (malformed, but the encoding is checked first).
fn ascii_row() -> String {
    let ascii = [
        ("merchant_id", "270212123"),
        ("name", "ABC"),
        ("contact", "ABC"),
        ("bank_name", "ABC"),
        ("branch_name", "ABC"),
        ("account_type", "X"),
        ("account_holder", "ABC"),
        ("bank_name_kana", "ABC"),
        ("branch_name_kana", "ABC"),
    ];
    let r = merchant_row(&ascii);
    assert!(r.is_ascii());
    r
}

fn shift_jis_read_as_utf8_is_refused_with_a_hint(kind: Kind) {
    let s = TestStore::new(kind);
    write_sjis(&s, "sjis.csv", &merchants_csv(&[merchant_row(&[])]), false);
    let o = s.run(&["ingest", "merchants", "sjis.csv"]);
    assert_listed(&o, "sjis.csv", &[(2, "not valid UTF-8")]);
    assert!(text(&o.stderr).contains("--encoding shift_jis"), "{}", show(&o));
    // Also with an ASCII row first: the first row that is not UTF-8 is named.
    write_sjis(&s, "sjis2.csv", &merchants_csv(&[ascii_row(), merchant_row(&[])]), false);
    let o = s.run(&["ingest", "merchants", "sjis2.csv"]);
    assert_listed(&o, "sjis2.csv", &[(3, "not valid UTF-8")]);
    // An unknown encoding name is a usage error.
    let o = s.run(&["ingest", "merchants", "sjis.csv", "--encoding", "latin1"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert_no_merchant_recorded(&s);
}

// ---------------------------------------------------------------- merchants.csv

fn bad_merchant_rows() -> Vec<(Vec<(&'static str, &'static str)>, &'static str)> {
    vec![
        (vec![("merchant_id", "27021212")], "merchant_id '27021212' is not 9 digits"),
        (vec![("merchant_id", "2702121234")], "merchant_id '2702121234' is not 9 digits"),
        (vec![("merchant_id", "27021212a")], "merchant_id '27021212a' is not 9 digits"),
        (vec![("bank_code", "010")], "bank_code '010' is not 4 digits"),
        (vec![("bank_code", "00100")], "bank_code '00100' is not 4 digits"),
        (vec![("branch_code", "99")], "branch_code '99' is not 3 digits"),
        (vec![("branch_code", "9999")], "branch_code '9999' is not 3 digits"),
        (vec![("account_number", "123456")], "account_number '123456' is not 7 digits"),
        (vec![("account_number", "12345678")], "account_number '12345678' is not 7 digits"),
        (vec![("account_type", "貯蓄")], "account_type '貯蓄' is not 普通 or 当座"),
        (vec![("account_type", "")], "is not 普通 or 当座"),
        (vec![("account_holder", "山田")], "account_holder: character '山' is not in the bank transfer alphabet"),
        (vec![("account_holder", "ぺいじの")], "account_holder: character 'ぺ' is not in the bank transfer alphabet"),
        (vec![("account_holder", "PEIJINo")], "account_holder: character 'o' is not in the bank transfer alphabet"),
        (vec![("account_holder", "")], "account_holder is empty"),
        (vec![("bank_name_kana", "りそな")], "bank_name_kana: character 'り' is not in the bank transfer alphabet"),
        (vec![("branch_name_kana", "shoken")], "branch_name_kana: character 's' is not in the bank transfer alphabet"),
        (vec![("name", "テスト😀")], "name: the notice font cannot draw '😀' (U+1F600)"),
        (vec![("contact", "平 😀")], "contact: the notice font cannot draw '😀'"),
        (vec![("branch_name", "本店\u{1F3E6}")], "branch_name: the notice font cannot draw"),
        (vec![("name", "")], "name is empty"),
        (vec![("bank_name", "")], "bank_name is empty"),
        (vec![("email", "shop.example.jp")], "email 'shop.example.jp' is not an e-mail address"),
        (vec![("rate_visa_master", "-1")], "rate_visa_master: rate '-1' is not a percentage"),
        (vec![("rate_jcb_other", "101")], "rate_jcb_other: rate '101' is not a percentage"),
        (vec![("rate_emoney", "abc")], "rate_emoney: rate 'abc' is not a percentage"),
        (vec![("rate_visa_master", "3.24%")], "rate_visa_master: rate '3.24%' is not a percentage"),
        (vec![("rate_visa_master", "3.24001")], "rate_visa_master: rate '3.24001' is not a percentage"),
        (vec![("fee_tax", "inclusive-10")], "fee_tax 'inclusive-10' is not one of inclusive-8, exclusive, exempt"),
        (vec![("notice_password", "98765432")], "notice_password is not 9 digits"),
        (vec![("notice_password", "9876543210")], "notice_password is not 9 digits"),
        (vec![("notice_password", "98765432a")], "notice_password is not 9 digits"),
        (vec![("notice_password", "")], "notice_password is not 9 digits"),
    ]
}

/// Every malformed merchant row (line 3, after a good one) refuses the file whole;
/// the password is never echoed.
fn merchants_malformed_rows_are_refused_whole(kind: Kind) {
    run_cases(
        &bad_merchant_rows(),
        |(over, reason)| format!("{over:?}  ->  {reason}"),
        |(over, reason)| {
            let s = TestStore::new(kind);
            let mut o = vec![("merchant_id", "270212123")];
            o.extend_from_slice(over);
            s.write("merchants.csv", &merchants_csv(&[merchant_row(&[]), merchant_row(&o)]));
            let out = s.run(&["ingest", "merchants", "merchants.csv"]);
            assert_bad_rows(&out, "merchants.csv", &[(3, reason)]);
            assert!(!all_output(&out).contains("98765432"), "the password is echoed:\n{}", show(&out));
            assert_no_merchant_recorded(&s);
        },
    );
}

/// A rare CJK Extension B character (𠀋 U+2000B, JIS X 0213) is drawn by the
/// notice font (Noto Sans JP): the merchant is accepted and its notice issued;
/// an emoji is what the font lacks (see `bad_merchant_rows`).
fn merchants_rare_cjk_drawn_by_the_font_is_accepted(kind: Kind) {
    let s = TestStore::new(kind);
    s.write("m.csv", &merchants_csv(&[merchant_row(&[("name", "𠀋商店"), ("contact", "髙﨑 𩸽")])]));
    let e = ok_err(&s, &["ingest", "merchants", "m.csv"]);
    assert!(e.contains("merchants: 1 new, 0 changed, 0 unchanged"), "{e}");
    s.write("e.csv", &events_csv(&[format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,10000,tok1,,")]));
    s.ok(&["ingest", "events", "e.csv"]);
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n"));
    assert!(s.path().join("notices/270212122-001-20191031.zip").exists());
}

fn merchants_several_bad_rows_and_duplicates(kind: Kind) {
    let s = TestStore::new(kind);
    let rows = vec![
        merchant_row(&[]),                                                                         // 2
        merchant_row(&[("merchant_id", "270212123"), ("bank_code", "1"), ("rate_emoney", "101")]), // 3: two reasons
        merchant_row(&[("merchant_id", "270212124")]),                                             // 4
        merchant_row(&[("rate_visa_master", "3.5")]),                                              // 5: M again, different
        merchant_row(&[]),                                                                         // 6: M again, same: fine
        merchant_row(&[("merchant_id", "270212125"), ("account_holder", "やまだ")]),               // 7
        format!("{},x", merchant_row(&[("merchant_id", "270212126")])),                            // 8: 19 fields
    ];
    s.write("merchants.csv", &merchants_csv(&rows));
    let o = s.run(&["ingest", "merchants", "merchants.csv"]);
    assert_bad_rows(
        &o,
        "merchants.csv",
        &[
            (3, "bank_code '1' is not 4 digits"),
            (3, "rate_emoney: rate '101'"),
            (5, "merchant 270212122 appears again (line 2) with different fields"),
            (7, "account_holder: character 'や'"),
            (8, "has 19 fields, the header has 18"),
        ],
    );
    assert!(!all_output(&o).contains(PASSWORD));
    assert_no_merchant_recorded(&s);
    // The same merchant twice with the same fields: one merchant.
    let s = TestStore::new(kind);
    s.write("merchants.csv", &merchants_csv(&[merchant_row(&[]), merchant_row(&[])]));
    let e = ok_err(&s, &["ingest", "merchants", "merchants.csv"]);
    assert!(e.contains("merchants: 1 new, 0 changed, 0 unchanged"), "{e}");
}

/// The two _kana columns may be empty, or left out of the header entirely.
fn merchants_kana_columns_may_be_left_out(kind: Kind) {
    let s = TestStore::new(kind);
    let header16 = MERCHANTS_HEADER.replace(",bank_name_kana,branch_name_kana", "");
    let row16 = MERCHANT_FIELDS[..16].iter().map(|(_, v)| *v).collect::<Vec<_>>().join(",");
    s.write("m16.csv", &format!("{header16}\n{row16}\n"));
    let e = ok_err(&s, &["ingest", "merchants", "m16.csv"]);
    assert!(e.contains("merchants: 1 new, 0 changed, 0 unchanged"), "{e}");
    // The same with the columns present and empty: nothing changed.
    s.write("m18.csv", &merchants_csv(&[merchant_row(&[("bank_name_kana", ""), ("branch_name_kana", "")])]));
    let e = ok_err(&s, &["ingest", "merchants", "m18.csv"]);
    assert!(e.contains("merchants: 0 new, 0 changed, 1 unchanged"), "{e}");
    // Only one of the two optional columns.
    let header17 = MERCHANTS_HEADER.replace(",branch_name_kana", "");
    let row17 = format!("{},リソナ", row16.replace(M, "270212123"));
    s.write("m17.csv", &format!("{header17}\n{row17}\n"));
    let e = ok_err(&s, &["ingest", "merchants", "m17.csv"]);
    assert!(e.contains("merchants: 1 new, 0 changed, 0 unchanged"), "{e}");
    // Empty rates and fee_tax mean 3.24 and inclusive-8.
    s.write("m-defaults.csv", &merchants_csv(&[merchant_row(&[("rate_visa_master", ""), ("rate_jcb_other", ""), ("rate_emoney", ""), ("fee_tax", ""), ("bank_name_kana", ""), ("branch_name_kana", "")])]));
    let e = ok_err(&s, &["ingest", "merchants", "m-defaults.csv"]);
    assert!(e.contains("merchants: 0 new, 0 changed, 1 unchanged"), "{e}");
    s.write("e.csv", &events_csv(&[format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,10000,tok1,,")]));
    s.ok(&["ingest", "events", "e.csv"]);
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n"));
}

/// Re-importing: the summary (on stderr, nothing on stdout) counts new, changed
/// and unchanged merchants.
fn merchants_reimport_counts_new_changed_unchanged(kind: Kind) {
    let s = TestStore::new(kind);
    s.write("m.csv", &merchants_csv(&[merchant_row(&[])]));
    let o = s.run(&["ingest", "merchants", "m.csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(o.stdout.is_empty(), "the summary goes to stderr: {}", show(&o));
    assert!(text(&o.stderr).contains("merchants: 1 new, 0 changed, 0 unchanged"), "{}", show(&o));
    let o = s.run(&["ingest", "merchants", "m.csv"]);
    assert!(o.stdout.is_empty(), "{}", show(&o));
    assert!(text(&o.stderr).contains("merchants: 0 new, 0 changed, 1 unchanged"), "{}", show(&o));
    s.write("m2.csv", &merchants_csv(&[merchant_row(&[("rate_visa_master", "3.5")]), merchant_row(&[("merchant_id", "270212123")])]));
    let o = s.run(&["ingest", "merchants", "m2.csv"]);
    assert!(o.stdout.is_empty(), "{}", show(&o));
    assert!(text(&o.stderr).contains("merchants: 1 new, 1 changed, 0 unchanged"), "{}", show(&o));
    let o = s.run(&["ingest", "merchants", "m2.csv"]);
    assert!(text(&o.stderr).contains("merchants: 0 new, 0 changed, 2 unchanged"), "{}", show(&o));
    // The changed rate is the one in force: 10000 × 3.5% = 350, tax round(350/54) = 6.
    s.write("e.csv", &events_csv(&[format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,10000,tok1,,")]));
    s.ok(&["ingest", "events", "e.csv"]);
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n270212122,2019-10-01,2019-10-15,2019-10-31,2019-10-29,270212122-001-20191031,1,10000,350,0,0,0,0,0,0,6,0,0,0,180,18,9446,0\n"));
}

// ---------------------------------------------------------------- lifecycle refusals

const U: &str = "999999999";

/// 24 rows: 9 recorded, 15 refused (every code of SPEC §2 at least once).
fn lifecycle_rows() -> Vec<(String, Option<&'static str>)> {
    let (m, u) = (M, U);
    vec![
        (format!("e1,sale,t1,{u},2019-10-01T10:00:00+09:00,VISA,1000,tok1,,"), Some("merchant-unknown")),
        (format!("e2,sale,t2,{m},2019-10-01T10:00:00+09:00,VISA,1000,tok2,,"), None),
        (format!("e3,sale,t2,{m},2019-10-01T11:00:00+09:00,VISA,1000,tok2,,"), Some("P1241")), // txn_id exists
        ("e4,capture,t404,,2019-10-01T11:00:00+09:00,,,,,".to_string(), Some("P1241")),           // unknown txn
        ("e5,void,t2,123456789,2019-10-02T10:00:00+09:00,,,tok2,,".to_string(), Some("merchant-mismatch")),
        ("e6,void,t2,,2019-10-02T10:00:00+09:00,,,tokX,,".to_string(), Some("P1245")), // wrong card
        ("e7,void,t2,,2019-10-02T10:00:00+09:00,,,,,".to_string(), Some("P1245")),     // empty card
        (format!("e8,authorize,t3,{m},2019-08-01T10:00:00+09:00,JCB,2000,tok3,,"), None),
        ("e9,void,t3,,2019-10-01T10:00:01+09:00,,,tok3,,".to_string(), Some("ng-91")), // 61 days later
        ("e10,chargeback,t2,,2019-10-03T10:00:00+09:00,,500,,,".to_string(), None),
        ("e11,void,t2,,2019-10-04T10:00:00+09:00,,,tok2,,".to_string(), Some("cancel-disputed")),
        ("e12,chargeback,t2,,2019-10-04T10:00:00+09:00,,100,,,".to_string(), Some("chargeback-open")),
        ("e13,chargeback_reversal,t2,,2019-10-05T10:00:00+09:00,,,,,".to_string(), None),
        ("e14,chargeback_reversal,t2,,2019-10-05T10:00:00+09:00,,,,,".to_string(), Some("chargeback-none")),
        ("e15,chargeback,t2,,2019-10-05T10:00:00+09:00,,1001,,,".to_string(), Some("chargeback-exceeds")),
        (format!("e16,sale,t4,{m},2019-10-01T10:00:00+09:00,VISA,3000,tok4,,"), None),
        ("e17,void,t4,,2019-10-02T10:00:00+09:00,,,tok4,,".to_string(), None), // sale cancelled, same cycle
        ("e18,chargeback,t4,,2019-10-03T10:00:00+09:00,,,,,".to_string(), Some("P1441")),
        (format!("e19,decline,t5,{m},2019-10-01T10:00:00+09:00,VISA,500,tok5,,ng-02 G12"), None),
        ("e20,capture,t5,,2019-10-01T10:01:00+09:00,,,,,".to_string(), Some("P1241")),    // declined
        ("e21,chargeback,t2,,2019-10-01T09:00:00+09:00,,,,,".to_string(), Some("P1241")), // earlier than t2's last event
        (format!("e22,authorize,t6,{m},2019-10-06T10:00:00+09:00,VISA,4000,tok6,,"), None),
        ("e23,capture,t6,,2019-10-06T11:00:00+09:00,,4001,,,".to_string(), Some("P1241")), // amount differs
        (format!("e24,capture,t6,{m},2019-10-06T12:00:00+09:00,,4000,,,"), None),
    ]
}

/// Oct 1–15: t2 (1000) and t6 (4000) counted, t4 cancelled in its cycle; the
/// chargeback −500 and its reversal +500: fee 162, fee tax round(162/54) = 3,
/// payout 5000 − 162 − 3 − 180 − 18 = 4637.
const LIFECYCLE_STATEMENT: &str = "270212122,2019-10-01,2019-10-15,2019-10-31,2019-10-29,270212122-001-20191031,2,5000,162,0,0,0,0,0,0,3,0,0,0,180,18,4637,0";

fn lifecycle_file(s: &TestStore, name: &str, n: usize) {
    let rows: Vec<String> = lifecycle_rows().into_iter().take(n).map(|(r, _)| r).collect();
    s.write(name, &events_csv(&rows));
}

/// (event_id, code) of every refusal in the CSV export, in order.
fn refusal_codes(csv: &str) -> Vec<(String, String)> {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("event_id,code,message"));
    lines
        .map(|l| {
            let mut p = l.splitn(3, ',');
            let id = p.next().unwrap().to_string();
            let code = p.next().unwrap().to_string();
            assert!(!p.next().unwrap_or("").trim().is_empty(), "a refusal without a message: {l}");
            (id, code)
        })
        .collect()
}

fn lifecycle_refusals_are_recorded_with_codes(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    lifecycle_file(&s, "events.csv", usize::MAX);
    let o = s.run(&["ingest", "events", "events.csv"]);
    assert_eq!(o.status.code(), Some(0), "refusals of single events exit 0: {}", show(&o));
    let err = text(&o.stderr);
    assert!(err.contains("events: 9 recorded, 0 already present, 15 refused"), "{err}");
    for (code, n) in
        [("merchant-unknown", 1), ("P1241", 5), ("merchant-mismatch", 1), ("P1245", 2), ("ng-91", 1), ("cancel-disputed", 1), ("chargeback-open", 1), ("chargeback-none", 1), ("chargeback-exceeds", 1), ("P1441", 1)]
    {
        assert!(err.contains(&format!("{code}: {n}")), "summary by code lacks {code}: {n}:\n{err}");
    }
    let expected: Vec<(String, String)> = lifecycle_rows().iter().enumerate().filter_map(|(i, (_, c))| c.map(|c| (format!("e{}", i + 1), c.to_string()))).collect();
    let csv = s.ok(&["refusals", "export"]);
    assert_eq!(refusal_codes(&csv), expected, "{csv}");
    assert!(csv.contains("加盟店情報が未登録です"), "{csv}");
    assert!(csv.contains("同一のカード"), "{csv}");
    let csv2 = s.ok(&["refusals", "export", "--format", "csv"]);
    assert_eq!(csv2, csv);
    // JSON: the same refusals, with their details.
    let json: serde_json::Value = serde_json::from_str(&s.ok(&["refusals", "export", "--format", "json"])).expect("refusals JSON");
    let arr = json.as_array().expect("an array");
    let got: Vec<(String, String)> = arr.iter().map(|r| (r["event_id"].as_str().unwrap().to_string(), r["code"].as_str().unwrap().to_string())).collect();
    assert_eq!(got, expected);
    assert_eq!(arr[0]["txn_id"], "t1");
    assert_eq!(arr[0]["kind"], "sale");
    assert!(arr.iter().all(|r| r["message"].as_str().is_some_and(|m| !m.is_empty())));
    // --out writes the file, nothing on stdout.
    assert_eq!(s.ok(&["refusals", "export", "--out", "refusals.csv"]), "");
    assert_eq!(std::fs::read_to_string(s.path().join("refusals.csv")).unwrap(), csv);
    // The statement shows only what was accepted.
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{LIFECYCLE_STATEMENT}\n"));
    // Ingesting the file again: everything already present, no refusal twice.
    let e = ok_err(&s, &["ingest", "events", "events.csv"]);
    assert!(e.contains("events: 0 recorded, 24 already present, 0 refused"), "{e}");
    assert_eq!(s.ok(&["refusals", "export"]), csv);
}

/// A refused command changes nothing else: a capture with a wrong amount, then a
/// capture again after the good one: the sale counts once.
fn refused_capture_changes_nothing(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    s.write(
        "events.csv",
        &events_csv(&[
            format!("e1,authorize,t1,{M},2019-10-01T10:00:00+09:00,VISA,10000,tok1,,"),
            "e2,capture,t1,,2019-10-01T10:05:00+09:00,,9999,,,".to_string(),
            "e3,capture,t1,,2019-10-01T10:10:00+09:00,,,,,".to_string(),
            format!("e4,capture,t1,{M},2019-10-01T10:15:00+09:00,,10000,,,"),
            format!("e5,sale,t1,{M},2019-10-01T10:20:00+09:00,VISA,10000,tok1,,"),
        ]),
    );
    let e = ok_err(&s, &["ingest", "events", "events.csv"]);
    assert!(e.contains("events: 2 recorded, 0 already present, 3 refused (P1241: 3)"), "{e}");
    assert_eq!(payment_rows(&s), 2, "Authorized + Captured only");
    assert_eq!(refusal_codes(&s.ok(&["refusals", "export"])), vec![("e2".into(), "P1241".into()), ("e4".into(), "P1241".into()), ("e5".into(), "P1241".into())]);
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n"));
}

/// A refused event does not move the transaction's clock (rule 5 looks at the
/// last *accepted* event): a void with the wrong card at 10-10 is refused, and a
/// good void at 10-05 is then accepted; the sale cancelled in its own cycle
/// leaves no statement.
fn refused_event_does_not_advance_the_clock(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    s.write(
        "events.csv",
        &events_csv(&[format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,10000,tok1,,"), "e2,void,t1,,2019-10-10T10:00:00+09:00,,,tokX,,".to_string(), format!("e3,void,t1,{M},2019-10-05T10:00:00+09:00,,,tok1,,")]),
    );
    let e = ok_err(&s, &["ingest", "events", "events.csv"]);
    assert!(e.contains("events: 2 recorded, 0 already present, 1 refused (P1245: 1)"), "{e}");
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n"));
}

/// Boundary values are accepted: amount 1 and 9,999,999,999, installments 1 and
/// 99, offsets Z and −05:00, a decline with two codes, a capture with the amount.
fn boundary_values_are_accepted(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    s.write(
        "events.csv",
        &events_csv(&[
            format!("e1,sale,t1,{M},2019-10-01T01:00:00Z,VISA,1,tok1,1,"),
            format!("e2,authorize,t2,{M},2019-09-30T20:00:00-05:00,JCB,9999999999,tok2,99,"),
            format!("e3,capture,t2,{M},2019-10-01T10:00:00+09:00,,9999999999,,,"),
            format!("e4,decline,t3,{M},2019-10-01T10:00:00+09:00,ID,500,tok3,,ng-02 G12"),
            format!("e5,decline,t4,{M},2019-10-01T10:00:00+09:00,QUICPAY,500,tok4,12,"),
            format!("e6,sale,t5,{M},2019-10-01T10:00:00+09:00,TRANSIT_IC,700,4111111111111112,,"), // fails Luhn: a token
        ]),
    );
    let e = ok_err(&s, &["ingest", "events", "events.csv"]);
    assert!(e.contains("events: 6 recorded, 0 already present, 0 refused"), "{e}");
    assert_eq!(payment_rows(&s), 2 + 1 + 1 + 1 + 1 + 2);
}

// ---------------------------------------------------------------- stores and options

fn bare(dir: &std::path::Path) -> Command {
    let mut c = Command::new(upay_bin());
    c.current_dir(dir).env_remove("UPAY_STORE");
    c
}

fn assert_clean_refusal(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", show(o));
    let err = text(&o.stderr);
    assert!(err.contains(needle), "expected {needle:?}:\n{err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE") && !err.contains("stack backtrace"), "{err}");
    assert!(o.stdout.is_empty(), "{}", show(o));
}

#[test]
fn unreachable_or_bogus_stores_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.csv"), merchants_csv(&[merchant_row(&[])])).unwrap();
    std::fs::write(dir.path().join("e.csv"), events_csv(&[g1()])).unwrap();
    let port1 = "postgres://postgres@127.0.0.1:1/x";
    for args in [vec!["ingest", "merchants", "m.csv"], vec!["ingest", "events", "e.csv"], vec!["refusals", "export"], vec!["statements", "export"]] {
        let o = bare(dir.path()).arg("--store").arg(port1).args(&args).output().unwrap();
        assert_clean_refusal(&o, "cannot open the store postgres://postgres@127.0.0.1:1/x");
        let o = bare(dir.path()).arg("--store").arg("bogus://x").args(&args).output().unwrap();
        assert_clean_refusal(&o, "--store 'bogus://x' is neither sqlite://PATH nor postgres://USER@HOST:PORT/DB");
        let missing_dir = format!("sqlite://{}/no/such/dir/upay.db", dir.path().display());
        let o = bare(dir.path()).arg("--store").arg(&missing_dir).args(&args).output().unwrap();
        assert_clean_refusal(&o, "cannot open the store");
    }
    // A password in the URL is not repeated.
    let o = bare(dir.path()).args(["--store", "postgres://postgres:s3cretpw@127.0.0.1:1/x", "refusals", "export"]).output().unwrap();
    assert_clean_refusal(&o, "cannot open the store");
    assert!(!all_output(&o).contains("s3cretpw"), "{}", show(&o));
    // No default store file was created on the way.
    assert!(!dir.path().join("upay.db").exists());
}

#[test]
fn a_postgres_database_that_does_not_exist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.csv"), merchants_csv(&[merchant_row(&[])])).unwrap();
    let db = format!("upay_no_such_db_{}", std::process::id());
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    for args in [vec!["ingest", "merchants", "m.csv"], vec!["refusals", "export"]] {
        let o = bare(dir.path()).arg("--store").arg(&url).args(&args).output().unwrap();
        assert_clean_refusal(&o, "cannot open the store");
        assert!(text(&o.stderr).contains(&db), "{}", show(&o));
    }
    let out = Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-At", "-c", &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'")]).output().unwrap();
    assert_eq!(text(&out.stdout).trim(), "0", "the database must not be created");
}

/// `UPAY_STORE` works like `--store`, `--store` wins over it, and global options
/// may follow the subcommand.
fn store_from_env_and_options_after_the_subcommand(kind: Kind) {
    let s = TestStore::new(kind);
    s.write("m.csv", &merchants_csv(&[merchant_row(&[])]));
    let o = bare(s.path()).env("UPAY_STORE", &s.url).args(["ingest", "merchants", "m.csv"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(text(&o.stderr).contains("merchants: 1 new"), "{}", show(&o));
    let e = ok_err(&s, &["ingest", "merchants", "m.csv"]);
    assert!(e.contains("merchants: 0 new, 0 changed, 1 unchanged"), "the env store is the --store one: {e}");
    // --store after the subcommand and after its file.
    s.write("e.csv", &events_csv(&[format!("e1,sale,t1,{M},2019-10-01T10:00:00+09:00,VISA,10000,tok1,,")]));
    let o = bare(s.path()).args(["ingest", "events", "e.csv", "--store", &s.url]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(text(&o.stderr).contains("events: 1 recorded"), "{}", show(&o));
    // --store beats a bogus UPAY_STORE.
    let o = bare(s.path()).env("UPAY_STORE", "bogus://x").args(["ingest", "events", "e.csv", "--store", &s.url]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(text(&o.stderr).contains("events: 0 recorded, 1 already present"), "{}", show(&o));
    let o = bare(s.path()).env("UPAY_STORE", &s.url).args(["settle", "--through", "2019-11-30"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(s.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{CHECK_SALE_ROW}\n"));
    // No default sqlite store appeared in the working folder.
    assert!(!s.path().join("upay.db").exists() || kind == Kind::Sqlite);
}

// ---------------------------------------------------------------- secrets

/// The notice password is never printed by any command and never written into the
/// events table; it is in merchant_secrets.
fn notice_password_never_leaks(kind: Kind) {
    let s = TestStore::new(kind);
    let mut outputs = Vec::new();
    let mut run = |args: &[&str], log: bool| {
        let mut c = s.cmd(args);
        if log {
            c.env("UPAY_LOG", "trace");
        }
        let o = c.output().unwrap();
        assert!(o.status.code() == Some(0) || o.status.code() == Some(1), "{args:?}: {}", show(&o));
        outputs.push((args.join(" "), all_output(&o)));
    };
    s.write("m.csv", &merchants_csv(&[merchant_row(&[])]));
    run(&["ingest", "merchants", "m.csv"], false);
    run(&["ingest", "merchants", "m.csv"], true);
    let events = sample_dir().join("events.csv");
    run(&["ingest", "events", events.to_str().unwrap()], true);
    run(&["settle", "--through", "2019-11-30"], true);
    run(&["statements", "export"], false);
    run(&["statements", "export", "--format", "json"], false);
    run(&["statements", "explain", "--merchant", M, "--period", "2019-10-01"], false);
    run(&["refusals", "export", "--format", "json"], false);
    run(&["payouts", "export", "--date", "2019-10-31"], false);
    run(&["audit", "replay"], true);
    // A new password: recorded as changed, neither shown.
    s.write("m2.csv", &merchants_csv(&[merchant_row(&[("notice_password", "123123123")])]));
    let mut c = s.cmd(&["ingest", "merchants", "m2.csv"]);
    let o = c.env("UPAY_LOG", "trace").output().unwrap();
    assert!(text(&o.stderr).contains("merchants: 0 new, 1 changed, 0 unchanged"), "{}", show(&o));
    outputs.push(("ingest merchants m2.csv".into(), all_output(&o)));
    for (args, out) in &outputs {
        assert!(!out.contains(PASSWORD) && !out.contains("123123123"), "`upay {args}` shows the notice password:\n{out}");
    }
    let log = query(&s, "SELECT aggregate_type, event_type, CAST(payload AS text), CAST(metadata AS text) FROM events");
    assert!(log.contains("MerchantRegistered") && log.contains("NoticePasswordChanged"), "{log}");
    assert!(!log.contains(PASSWORD) && !log.contains("123123123"), "the password is in the events table:\n{log}");
    assert!(!query(&s, "SELECT * FROM inputs").contains(PASSWORD));
    assert_eq!(query(&s, "SELECT merchant_id, notice_password FROM merchant_secrets").trim(), format!("{M}|123123123"));
    // The statements match the manual's sample (the same merchant and history).
    let expected = std::fs::read_to_string(sample_dir().join("statements.csv")).unwrap();
    assert_eq!(s.ok(&["statements", "export"]), expected);
}

// ---------------------------------------------------------------- idempotency and restarts

fn sample_history_twice_records_each_event_once(kind: Kind) {
    let s = TestStore::new(kind);
    s.ok(&["ingest", "merchants", sample_dir().join("merchants.csv").to_str().unwrap()]);
    let events = sample_dir().join("events.csv");
    let e = ok_err(&s, &["ingest", "events", events.to_str().unwrap()]);
    assert!(e.contains("events: 8 recorded, 0 already present, 0 refused"), "{e}");
    let rows = payment_rows(&s);
    assert_eq!(rows, 7 * 2 + 1, "7 sales (Authorized + Captured) and a chargeback");
    let e = ok_err(&s, &["ingest", "events", events.to_str().unwrap()]);
    assert!(e.contains("events: 0 recorded, 8 already present, 0 refused"), "{e}");
    assert_eq!(payment_rows(&s), rows);
    assert_eq!(count(&s, "SELECT count(*) FROM inputs"), 8);
    // The chargeback and each sale: one row per (stream, sequence).
    assert_eq!(count(&s, "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'Payment'"), 7);
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(s.ok(&["statements", "export"]), std::fs::read_to_string(sample_dir().join("statements.csv")).unwrap());
}

/// A half-done ingest (the first rows only), then the whole file, gives what the
/// whole file gives at once.
fn half_done_ingest_completes_on_rerun(kind: Kind) {
    let once = TestStore::new(kind);
    register(&once);
    lifecycle_file(&once, "events.csv", usize::MAX);
    ok_err(&once, &["ingest", "events", "events.csv"]);
    let twice = TestStore::new(kind);
    register(&twice);
    // Cut after e16 (t4's sale): its cancel and the later rows come in the rerun.
    lifecycle_file(&twice, "half.csv", 16);
    let e = ok_err(&twice, &["ingest", "events", "half.csv"]);
    assert!(e.contains("events: 5 recorded, 0 already present, 11 refused"), "{e}");
    lifecycle_file(&twice, "events.csv", usize::MAX);
    let e = ok_err(&twice, &["ingest", "events", "events.csv"]);
    assert!(e.contains("events: 4 recorded, 16 already present, 4 refused"), "{e}");
    for s in [&once, &twice] {
        s.ok(&["settle", "--through", "2019-11-30"]);
    }
    assert_eq!(twice.ok(&["statements", "export"]), once.ok(&["statements", "export"]));
    assert_eq!(once.ok(&["statements", "export"]), format!("{STATEMENTS_HEADER}\n{LIFECYCLE_STATEMENT}\n"));
    assert_eq!(twice.ok(&["refusals", "export"]), once.ok(&["refusals", "export"]));
    let dump = "SELECT aggregate_type, aggregate_id, sequence, event_type, CAST(payload AS text) FROM events WHERE aggregate_type IN ('Payment', 'Refusal') ORDER BY global_position";
    assert_eq!(query(&twice, dump), query(&once, dump));
    assert_eq!(query(&twice, "SELECT event_id, digest, outcome FROM inputs ORDER BY event_id"), query(&once, "SELECT event_id, digest, outcome FROM inputs ORDER BY event_id"));
    let a = twice.run(&["audit", "replay"]);
    assert_eq!(a.status.code(), Some(0), "{}", show(&a));
}

/// A file bigger than one write chunk (10,000 rows): transactions opened in the
/// first chunk are cancelled in the second; a re-run records nothing.
fn file_larger_than_one_chunk(kind: Kind) {
    let s = TestStore::new(kind);
    register(&s);
    let mut rows: Vec<String> = (1..=10_000).map(|i| format!("s{i},sale,t{i},{M},2019-10-01T10:00:00+09:00,VISA,100,tok{i},,")).collect();
    rows.extend((1..=50).map(|i| format!("v{i},void,t{i},,2019-10-02T10:00:00+09:00,,,tok{i},,")));
    rows.push("c1,capture,t1,,2019-10-03T10:00:00+09:00,,,,,".to_string());
    s.write("big.csv", &events_csv(&rows));
    let e = ok_err(&s, &["ingest", "events", "big.csv"]);
    assert!(e.contains("events: 10050 recorded, 0 already present, 1 refused (P1241: 1)"), "{e}");
    let e = ok_err(&s, &["ingest", "events", "big.csv"]);
    assert!(e.contains("events: 0 recorded, 10051 already present, 0 refused"), "{e}");
    assert_eq!(payment_rows(&s), 20_050);
    s.ok(&["settle", "--through", "2019-11-30"]);
    let st = s.ok(&["statements", "export"]);
    let row = st.lines().nth(1).unwrap_or_default().to_string();
    let f: Vec<&str> = row.split(',').collect();
    assert_eq!((f[6], f[7]), ("9950", "995000"), "{st}");
}

on_both_stores!(
    events_malformed_rows_are_refused_whole,
    events_every_bad_row_is_listed,
    line_numbers_count_crlf_lines,
    line_numbers_count_blank_lines,
    line_numbers_count_lines_inside_quoted_fields,
    events_card_number_in_another_column_is_not_echoed,
    events_duplicate_id_in_file_with_different_content_is_refused,
    events_duplicate_id_in_file_with_same_content_is_skipped,
    events_id_already_recorded_with_different_content_refuses_the_file,
    events_id_already_recorded_with_same_content_is_skipped,
    empty_and_missing_files_are_refused,
    header_only_files_record_nothing,
    bad_headers_are_refused_at_line_1,
    columns_may_come_in_any_order,
    utf8_bom_is_accepted,
    shift_jis_merchants_are_read_with_the_flag,
    shift_jis_read_as_utf8_is_refused_with_a_hint,
    merchants_malformed_rows_are_refused_whole,
    merchants_rare_cjk_drawn_by_the_font_is_accepted,
    merchants_several_bad_rows_and_duplicates,
    merchants_kana_columns_may_be_left_out,
    merchants_reimport_counts_new_changed_unchanged,
    lifecycle_refusals_are_recorded_with_codes,
    refused_capture_changes_nothing,
    boundary_values_are_accepted,
    refused_event_does_not_advance_the_clock,
    card_numbers_in_full_width_are_refused,
    installments_with_a_sign_is_refused,
    store_from_env_and_options_after_the_subcommand,
    notice_password_never_leaks,
    sample_history_twice_records_each_event_once,
    half_done_ingest_completes_on_rerun,
    file_larger_than_one_chunk,
);

/// The same lifecycle file gives the same refusals and statements on both stores.
#[test]
fn lifecycle_gives_the_same_results_on_both_stores() {
    let mut results = Vec::new();
    for kind in KINDS {
        let s = TestStore::new(kind);
        register(&s);
        lifecycle_file(&s, "events.csv", usize::MAX);
        let e = ok_err(&s, &["ingest", "events", "events.csv"]);
        s.ok(&["settle", "--through", "2019-11-30"]);
        let summary = e.lines().find(|l| l.starts_with("events:")).unwrap_or_default().to_string();
        results.push((summary, s.ok(&["refusals", "export", "--format", "json"]), s.ok(&["statements", "export", "--format", "json"])));
    }
    assert_eq!(results[0], results[1]);
}
