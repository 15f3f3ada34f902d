//! `upay audit replay` and `upay statements explain` end to end, on both stores:
//! an untouched history replays clean; tampering with the events table directly
//! (as a DBA could) is found and its place named; `--as-of` replays what was
//! recorded up to an instant; the explanation of a statement adds up to it.
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

// ---------------------------------------------------------------- helpers

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Rows of a query run directly against the store, cells as text.
fn query(s: &TestStore, sql: &str) -> Vec<Vec<String>> {
    let out = match s.kind {
        Kind::Postgres => {
            let db = s.url.rsplit('/').next().unwrap();
            Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-q", "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().expect("psql runs")
        }
        Kind::Sqlite => Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor r in c.execute(sys.argv[2]): print('\\x1f'.join('' if v is None else str(v) for v in r))",
                &s.url["sqlite://".len()..],
                sql,
            ])
            .output()
            .expect("python3 runs"),
    };
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| l.split('\x1f').map(str::to_string).collect()).collect()
}

fn scalar(s: &TestStore, sql: &str) -> String {
    let rows = query(s, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0][0].clone()
}

/// The position of the one event of a Payment stream with this type.
fn position_of(s: &TestStore, txn: &str, event_type: &str) -> i64 {
    scalar(s, &format!("SELECT global_position FROM events WHERE aggregate_type = 'Payment' AND aggregate_id = '{txn}' AND event_type = '{event_type}'")).parse().unwrap()
}

fn max_position(s: &TestStore) -> i64 {
    scalar(s, "SELECT max(global_position) FROM events").parse().unwrap()
}

/// `audit replay [args]`: (exit code, stdout, stderr).
fn replay(s: &TestStore, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["audit", "replay"];
    args.extend_from_slice(extra);
    let o = s.run(&args);
    let (out, err) = text(&o);
    (o.status.code().unwrap_or(-1), out, err)
}

/// "N statements, M notices" of the audit's summary on stderr.
fn summary(err: &str) -> (u64, u64) {
    let words: Vec<&str> = err.split_whitespace().collect();
    let num_before = |label: &str| -> u64 {
        let i = words.iter().position(|w| w.trim_end_matches(',') == label).unwrap_or_else(|| panic!("no '{label}' in the audit summary:\n{err}"));
        words[i - 1].parse().unwrap_or_else(|_| panic!("no count before '{label}':\n{err}"))
    };
    assert!(err.contains("verified"), "the summary says what was verified:\n{err}");
    (num_before("statements"), num_before("notices"))
}

/// `out` names `position P` (not P's longer neighbours such as P0).
fn names_position(out: &str, p: i64) -> bool {
    let needle = format!("position {p}");
    out.match_indices(&needle).any(|(i, _)| !out[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

fn csv_rows(csv: &str) -> Vec<HashMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<String> = lines.next().expect("a header").split(',').map(str::to_string).collect();
    lines.map(|l| header.iter().cloned().zip(l.split(',').map(str::to_string)).collect()).collect()
}

fn statements(s: &TestStore) -> Vec<HashMap<String, String>> {
    csv_rows(&s.ok(&["statements", "export", "--format", "csv"]))
}

fn notice_files(s: &TestStore) -> usize {
    let d = s.path().join("notices");
    if !d.exists() {
        return 0;
    }
    std::fs::read_dir(d).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".zip")).count()
}

fn ingest_sample(s: &TestStore) {
    s.ok(&["ingest", "merchants", sample_dir().join("merchants.csv").to_str().unwrap()]);
    s.ok(&["ingest", "events", sample_dir().join("events.csv").to_str().unwrap()]);
}

/// A sale cancelled in its own cycle: it changes no statement.
const SAME_CYCLE_CANCEL: &str = "\
x1,sale,t8,270212122,2019-10-03T10:00:00+09:00,VISA,3000,tok_h,,
x2,void,t8,,2019-10-04T10:00:00+09:00,,,tok_h,,
";

/// The sample history, plus a sale cancelled in its own cycle, settled.
fn tamper_store(kind: Kind) -> TestStore {
    let s = TestStore::new(kind);
    ingest_sample(&s);
    let extra = s.write("extra.csv", &format!("{EVENTS_HEADER}\n{SAME_CYCLE_CANCEL}"));
    s.ok(&["ingest", "events", extra.to_str().unwrap()]);
    s.ok(&["settle", "--through", "2019-11-30"]);
    let expected = std::fs::read_to_string(sample_dir().join("statements.csv")).unwrap();
    assert_eq!(s.ok(&["statements", "export", "--format", "csv"]), expected, "{kind:?}: a sale cancelled in its own cycle leaves nothing behind");
    let (code, out, err) = replay(&s, &[]);
    assert_eq!(code, 0, "{kind:?}: untouched history: stdout:\n{out}\nstderr:\n{err}");
    s
}

fn assert_found(kind: Kind, drill: &str, s: &TestStore, positions: &[i64]) {
    let (code, out, err) = replay(s, &[]);
    assert_eq!(code, 1, "{kind:?}: {drill}: audit replay must exit 1\nstdout:\n{out}\nstderr:\n{err}");
    assert!(!out.trim().is_empty(), "{kind:?}: {drill}: the report is on stdout:\n{out}");
    for p in positions {
        assert!(names_position(&out, *p), "{kind:?}: {drill}: the report does not name position {p}:\n{out}\nstderr:\n{err}");
    }
}

// ------------------------------------------------------- untouched history

#[test]
fn untouched_sample_history_replays_clean_on_both_stores() {
    for kind in KINDS {
        let s = TestStore::new(kind);
        ingest_sample(&s);
        // Before any batch run: nothing to verify, nothing wrong.
        let (code, out, err) = replay(&s, &[]);
        assert_eq!(code, 0, "{kind:?}: {out}\n{err}");
        assert_eq!(summary(&err), (0, 0), "{kind:?}: {err}");
        s.ok(&["settle", "--through", "2019-11-30"]);
        let (code, out, err) = replay(&s, &[]);
        assert_eq!(code, 0, "{kind:?}: stdout:\n{out}\nstderr:\n{err}");
        assert!(out.trim().is_empty(), "{kind:?}: no differences, nothing on stdout:\n{out}");
        assert_eq!(summary(&err), (4, 3), "{kind:?}: {err}");
        // Replaying changes nothing: again the same.
        let (code, _, err2) = replay(&s, &[]);
        assert_eq!(code, 0);
        assert_eq!(summary(&err2), (4, 3));
    }
}

/// A deterministic generator (xorshift) for a bigger history.
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
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Generated {
    merchants: String,
    /// Events up to 2019-11-05 (JST), in time order.
    early: String,
    /// The rest, plus events dated in cycles already closed when recorded.
    late: String,
}

fn generate() -> Generated {
    const BANKS: [(&str, &str, &str, &str, &str, &str); 3] = [
        ("0001", "みずほ銀行", "ミズホ", "001", "東京営業部", "トウキヨウ"),
        ("0009", "三井住友銀行", "ミツイスミトモ", "025", "渋谷支店", "シブヤ"),
        ("0010", "りそな銀行", "リソナ", "101", "大阪営業部", "オオサカ"),
    ];
    const BRANDS: [&str; 9] = ["VISA", "MASTERCARD", "JCB", "AMEX", "DINERS", "DISCOVER", "ID", "QUICPAY", "TRANSIT_IC"];
    let mut rng = Rng(0x5eed_2019_1031);
    let mut merchants = format!("{MERCHANTS_HEADER}\n");
    let ids: Vec<String> = (1..=8).map(|i| format!("{:09}", 200_000_000 + i)).collect();
    for (i, id) in ids.iter().enumerate() {
        let (bc, bn, bk, brc, brn, brk) = BANKS[i % 3];
        let fee_tax = ["inclusive-8", "exclusive", "exempt", "inclusive-8"][i % 4];
        let rate = ["3.24", "3.74", "2.95", "3.24"][i % 4];
        merchants.push_str(&format!(
            "{id},監査テスト{n}号店,担当 {n}郎,m{n}@example.jp,{bc},{bn},{brc},{brn},{at},{acct},カンサテスト{n},{rate},3.24,{rate},{fee_tax},{pw},{bk},{brk}\n",
            n = i + 1,
            at = if i % 3 == 2 { "当座" } else { "普通" },
            acct = 1_000_000 + i * 111_111,
            pw = 900_000_000 + i,
        ));
    }
    let jst = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2019, 9, 1).unwrap();
    let mut rows: Vec<(chrono::DateTime<chrono::FixedOffset>, String)> = Vec::new();
    let mut n_ev = 0;
    let mut eid = || {
        n_ev += 1;
        format!("g{n_ev:06}")
    };
    let mut txn = 0;
    for day in 0..110 {
        let date = start + chrono::Days::new(day);
        for m in &ids {
            for _ in 0..rng.below(4) {
                txn += 1;
                let t = format!("gt{txn:05}");
                let at = date.and_hms_opt(8 + rng.below(14) as u32, rng.below(60) as u32, 0).unwrap().and_local_timezone(jst).unwrap();
                let brand = BRANDS[rng.below(9) as usize];
                let amount = 100 * (1 + rng.below(200));
                let card = format!("tok_{}", rng.below(1_000_000));
                if rng.chance(4) {
                    rows.push((at, format!("{},decline,{t},{m},{},{brand},{amount},{card},,ng-02 G12", eid(), at.to_rfc3339())));
                    continue;
                }
                if rng.chance(20) {
                    rows.push((at, format!("{},authorize,{t},{m},{},{brand},{amount},{card},3,", eid(), at.to_rfc3339())));
                    let later = at + chrono::Duration::minutes(5 + rng.below(600) as i64);
                    if rng.chance(10) {
                        rows.push((later, format!("{},void,{t},,{},,,{card},,", eid(), later.to_rfc3339())));
                        continue;
                    }
                    rows.push((later, format!("{},capture,{t},,{},,{amount},,,", eid(), later.to_rfc3339())));
                } else {
                    rows.push((at, format!("{},sale,{t},{m},{},{brand},{amount},{card},,", eid(), at.to_rfc3339())));
                }
                if rng.chance(10) {
                    // Cancelled: within its cycle or a later one (a red slip).
                    let later = at + chrono::Duration::hours(1 + rng.below(24 * 25) as i64);
                    rows.push((later, format!("{},void,{t},,{},,,{card},,", eid(), later.to_rfc3339())));
                } else if rng.chance(5) {
                    let later = at + chrono::Duration::days(1 + rng.below(20) as i64);
                    let part = if rng.chance(50) { String::new() } else { (amount / 2).to_string() };
                    rows.push((later, format!("{},chargeback,{t},,{},,{part},,,", eid(), later.to_rfc3339())));
                    if rng.chance(50) {
                        let won = later + chrono::Duration::days(3 + rng.below(20) as i64);
                        rows.push((won, format!("{},chargeback_reversal,{t},,{},,,,,", eid(), won.to_rfc3339())));
                    }
                }
                if rng.chance(3) {
                    // Refused: a cancel with another card (P1245), a chargeback
                    // larger than the sale (chargeback-exceeds).
                    let later = at + chrono::Duration::minutes(30);
                    rows.push((later, format!("{},void,{t},,{},,,tok_wrong,,", eid(), later.to_rfc3339())));
                    rows.push((later, format!("{},chargeback,{t},,{},,{},,,", eid(), later.to_rfc3339(), amount + 1)));
                }
            }
        }
    }
    rows.sort_by_key(|r| r.0);
    let cut = chrono::NaiveDate::from_ymd_opt(2019, 11, 6).unwrap().and_hms_opt(0, 0, 0).unwrap().and_local_timezone(jst).unwrap();
    let mut early = format!("{EVENTS_HEADER}\n");
    let mut late = format!("{EVENTS_HEADER}\n");
    for (at, r) in &rows {
        let f = if *at < cut { &mut early } else { &mut late };
        f.push_str(r);
        f.push('\n');
    }
    // Recorded after 2019-11-05's run: dated in closed cycles, booked late.
    late.push_str(&format!("late1,sale,gl1,{},2019-10-03T10:00:00+09:00,VISA,12000,tok_l1,,\n", ids[0]));
    late.push_str(&format!("late2,sale,gl2,{},2019-10-20T10:00:00+09:00,JCB,4000,tok_l2,,\n", ids[1]));
    late.push_str("late3,capture,no-such-txn,,2019-10-21T10:00:00+09:00,,,,,\n");
    Generated { merchants, early, late }
}

fn bigger_history(kind: Kind) -> TestStore {
    let g = generate();
    let s = TestStore::new(kind);
    let m = s.write("merchants.csv", &g.merchants);
    let early = s.write("early.csv", &g.early);
    let late = s.write("late.csv", &g.late);
    s.ok(&["ingest", "merchants", m.to_str().unwrap()]);
    s.ok(&["ingest", "events", early.to_str().unwrap()]);
    for through in ["2019-09-20", "2019-09-28", "2019-10-05", "2019-10-13", "2019-10-29", "2019-11-05"] {
        s.ok(&["settle", "--through", through]);
    }
    s.ok(&["ingest", "events", late.to_str().unwrap()]);
    for through in ["2019-11-13", "2019-11-28", "2019-12-13", "2019-12-28", "2020-01-31"] {
        s.ok(&["settle", "--through", through]);
    }
    s
}

#[test]
fn untouched_bigger_history_with_cancels_chargebacks_refusals_replays_clean() {
    let mut exports = Vec::new();
    for kind in KINDS {
        let s = bigger_history(kind);
        let refusals = s.ok(&["refusals", "export"]);
        for code in ["P1245", "chargeback-exceeds", "P1241"] {
            assert!(refusals.contains(code), "{kind:?}: the generated history has a {code} refusal:\n{refusals}");
        }
        let st = statements(&s);
        assert!(st.len() > 40, "{kind:?}: only {} statements", st.len());
        assert!(st.iter().any(|r| r["red_slips"] != "0"), "{kind:?}: a red slip");
        assert!(st.iter().any(|r| r["chargebacks"] != "0"), "{kind:?}: a chargeback");
        assert!(st.iter().any(|r| r["carry_in"] != "0"), "{kind:?}: a carried balance");
        let (code, out, err) = replay(&s, &[]);
        assert_eq!(code, 0, "{kind:?}: stdout:\n{out}\nstderr:\n{err}");
        let (n, m) = summary(&err);
        assert_eq!(n, st.len() as u64, "{kind:?}: every statement verified: {err}");
        assert_eq!(m, notice_files(&s) as u64, "{kind:?}: every notice verified: {err}");
        exports.push(s.ok(&["statements", "export", "--format", "csv"]));

        // One edited amount deep in the history is found.
        let p: i64 = scalar(
            &s,
            "SELECT min(global_position) FROM events WHERE aggregate_type = 'Payment' AND event_type = 'Captured' AND aggregate_id LIKE 'gt001%'",
        )
        .parse()
        .unwrap();
        edit_amount_at(&s, p);
        assert_found(kind, "amount edited in the bigger history", &s, &[p]);
    }
    assert_eq!(exports[0], exports[1], "both stores give the same statements");
}

// ---------------------------------------------------------- tamper drills

/// Adds 1 yen to the `amount` of the Payment event at position `p`.
fn edit_amount_at(s: &TestStore, p: i64) {
    let payload = scalar(s, &format!("SELECT payload FROM events WHERE global_position = {p}"));
    let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
    let (variant, body) = v.as_object().unwrap().iter().next().unwrap();
    let amount = body["amount"].as_i64().unwrap_or_else(|| panic!("no amount in {payload}"));
    match s.kind {
        Kind::Postgres => s.sql(&format!("UPDATE events SET payload = jsonb_set(payload::jsonb, '{{{variant},amount}}', '{}') WHERE global_position = {p}", amount + 1)),
        Kind::Sqlite => {
            s.sql(&format!("UPDATE events SET payload = replace(payload, '\"amount\":{amount}', '\"amount\":{}') WHERE global_position = {p}", amount + 1));
        }
    }
    let after = scalar(s, &format!("SELECT payload FROM events WHERE global_position = {p}"));
    assert_ne!(after, payload, "the drill changed nothing");
}

#[test]
fn tamper_edited_amount_is_found_with_its_position() {
    for kind in KINDS {
        let s = tamper_store(kind);
        let p = position_of(&s, "t2", "Captured");
        edit_amount_at(&s, p);
        assert_found(kind, "amount of a Captured event edited", &s, &[p]);
    }
}

#[test]
fn tamper_edited_sale_cancelled_in_its_own_cycle_is_found() {
    // The edit changes no statement: only the log's own integrity shows it.
    for kind in KINDS {
        let s = tamper_store(kind);
        let p = position_of(&s, "t8", "Captured");
        edit_amount_at(&s, p);
        let c = position_of(&s, "t8", "SaleCancelled");
        edit_amount_at(&s, c);
        assert_found(kind, "sale cancelled in its own cycle edited", &s, &[p, c]);
    }
}

/// Runs `f` on each store kind, all of them even when one fails, then fails
/// with every kind's message.
fn on_both_stores(f: impl Fn(Kind)) {
    let mut failed = Vec::new();
    for kind in KINDS {
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(kind))) {
            let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            failed.push(format!("{kind:?}: {msg}"));
        }
    }
    assert!(failed.is_empty(), "failed on {} store(s):\n{}", failed.len(), failed.join("\n\n"));
}

#[test]
fn tamper_deleted_event_is_found_with_its_position() {
    on_both_stores(|kind| {
        let s = tamper_store(kind);
        let p = position_of(&s, "t1", "ChargedBack");
        s.sql(&format!("DELETE FROM events WHERE global_position = {p}"));
        assert_found(kind, "an event deleted", &s, &[]);
        // The place is the hole: the deleted position itself, or the gap
        // between the rows around it. Naming only the next row is not enough.
        let (_, out, _) = replay(&s, &[]);
        assert!(
            names_position(&out, p) || (names_position(&out, p - 1) && names_position(&out, p + 1)),
            "{kind:?}: the report does not name the place of the deleted row (position {p}, between {} and {}):\n{out}",
            p - 1,
            p + 1
        );
    });
}

#[test]
fn tamper_deleted_last_event_is_found() {
    for kind in KINDS {
        let s = tamper_store(kind);
        let p = max_position(&s);
        s.sql(&format!("DELETE FROM events WHERE global_position = {p}"));
        assert_found(kind, "the last event deleted", &s, &[]);
    }
}

#[test]
fn tamper_swapped_payloads_are_found_with_both_positions() {
    for kind in KINDS {
        let s = tamper_store(kind);
        let (a, b) = (position_of(&s, "t3", "Captured"), position_of(&s, "t4", "Captured"));
        s.sql(&format!(
            "CREATE TEMP TABLE sw AS SELECT global_position AS p, payload FROM events WHERE global_position IN ({a}, {b});
             UPDATE events SET payload = (SELECT payload FROM sw WHERE sw.p = CASE events.global_position WHEN {a} THEN {b} ELSE {a} END) WHERE global_position IN ({a}, {b});"
        ));
        assert_ne!(scalar(&s, &format!("SELECT payload FROM events WHERE global_position = {a}")), scalar(&s, &format!("SELECT payload FROM events WHERE global_position = {b}")));
        assert_found(kind, "two payloads swapped", &s, &[a, b]);
    }
}

#[test]
fn tamper_swapped_positions_are_found_with_both_positions() {
    for kind in KINDS {
        let s = tamper_store(kind);
        let (a, b) = (position_of(&s, "t5", "Captured"), position_of(&s, "t6", "Captured"));
        s.sql(&format!(
            "UPDATE events SET global_position = -1 WHERE global_position = {a};
             UPDATE events SET global_position = {a} WHERE global_position = {b};
             UPDATE events SET global_position = {b} WHERE global_position = -1;"
        ));
        assert_eq!(position_of(&s, "t5", "Captured"), b);
        assert_found(kind, "two events' positions swapped", &s, &[a, b]);
    }
}

#[test]
fn tamper_edited_statement_is_found() {
    for kind in KINDS {
        let s = tamper_store(kind);
        let p: i64 = scalar(&s, "SELECT global_position FROM events WHERE aggregate_type = 'Settlement' AND sequence = 3").parse().unwrap();
        let payload = scalar(&s, &format!("SELECT payload FROM events WHERE global_position = {p}"));
        assert!(payload.contains("8284"), "{payload}");
        match kind {
            Kind::Postgres => s.sql(&format!("UPDATE events SET payload = replace(payload::text, '8284', '9284')::jsonb WHERE global_position = {p}")),
            Kind::Sqlite => s.sql(&format!("UPDATE events SET payload = replace(payload, '8284', '9284') WHERE global_position = {p}")),
        }
        assert_found(kind, "a recorded statement's payout edited", &s, &[p]);
    }
}

#[test]
fn tamper_forged_event_appended_without_a_hash_is_found() {
    // A row added behind the writers' back, with no chain hash: the log head
    // still matches the last sealed row, so only its missing seal betrays it.
    // Legitimate unsealed rows come only from merchant imports, which seal
    // them before they finish.
    on_both_stores(|kind| {
        let s = tamper_store(kind);
        let p = position_of(&s, "t2", "Captured");
        let payload = scalar(&s, &format!("SELECT payload FROM events WHERE global_position = {p}"));
        let forged = payload.replace("\"t2\"", "\"t99\"").replace('\'', "''");
        let next = max_position(&s) + 1;
        let cast = if kind == Kind::Postgres { "::jsonb" } else { "" };
        s.sql(&format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position)
             VALUES ('Payment', 't99', 1, 'Captured', '1.0', '{forged}'{cast}, '{{}}'{cast}, {next})"
        ));
        assert_found(kind, "a forged unsealed event appended", &s, &[next]);
        // Nor may the next batch run seal it into the chain (and pay it out)
        // unnoticed: whether the run refuses or not, the audit still finds it.
        let _ = s.run(&["settle", "--through", "2019-12-31"]);
        assert_found(kind, "a forged event after the next batch run", &s, &[next]);
    });
}

// ------------------------------------------------------------------ --as-of

fn now_utc() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn pause() {
    std::thread::sleep(Duration::from_millis(1100));
}

#[test]
fn replay_as_of_each_nightly_run() {
    let sample = std::fs::read_to_string(sample_dir().join("events.csv")).unwrap();
    let lines: Vec<&str> = sample.lines().skip(1).collect();
    assert!(lines[0].starts_with("e1,") && lines[1].starts_with("e2,"));
    for kind in KINDS {
        let s = TestStore::new(kind);
        let f1 = s.write("n1.csv", &format!("{EVENTS_HEADER}\n{}\n", lines[0]));
        let f2 = s.write("n2.csv", &format!("{EVENTS_HEADER}\n{}\n", lines[1]));
        let f3 = s.write("n3.csv", &format!("{EVENTS_HEADER}\n{}\n", lines[2..].join("\n")));
        let before = now_utc();
        pause();
        s.ok(&["ingest", "merchants", sample_dir().join("merchants.csv").to_str().unwrap()]);

        // Night 1: the first sale; its cycle (09-01..15) closes; no notice yet.
        s.ok(&["ingest", "events", f1.to_str().unwrap()]);
        s.ok(&["settle", "--through", "2019-09-20"]);
        pause();
        let t1 = now_utc();
        pause();
        // Night 2: the chargeback; 09-16..30 closes (carried); the 09-30 notice is due.
        s.ok(&["ingest", "events", f2.to_str().unwrap()]);
        s.ok(&["settle", "--through", "2019-10-05"]);
        pause();
        let t2 = now_utc();
        pause();
        // Night 3: October's sales, through the end of November.
        s.ok(&["ingest", "events", f3.to_str().unwrap()]);
        s.ok(&["settle", "--through", "2019-11-30"]);
        pause();
        let t3 = now_utc();

        for (instant, expect) in [(&before, (0, 0)), (&t1, (1, 0)), (&t2, (2, 1)), (&t3, (4, 3))] {
            let (code, out, err) = replay(&s, &["--as-of", instant]);
            assert_eq!(code, 0, "{kind:?}: --as-of {instant}: stdout:\n{out}\nstderr:\n{err}");
            assert_eq!(summary(&err), expect, "{kind:?}: --as-of {instant}: {err}");
        }
        // The same instant written in JST.
        let t2_jst = chrono::DateTime::parse_from_rfc3339(&t2).unwrap().with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap()).to_rfc3339();
        let (code, _, err) = replay(&s, &["--as-of", &t2_jst]);
        assert_eq!(code, 0);
        assert_eq!(summary(&err), (2, 1), "{kind:?}: --as-of {t2_jst}: {err}");
        let (code, _, err) = replay(&s, &[]);
        assert_eq!(code, 0);
        assert_eq!(summary(&err), (4, 3));
        // What the store holds at the end is what the sample gives.
        let expected = std::fs::read_to_string(sample_dir().join("statements.csv")).unwrap();
        let got = s.ok(&["statements", "export", "--format", "csv"]);
        let strip = |c: &str| c.lines().map(|l| l.to_string()).collect::<Vec<_>>();
        assert_eq!(strip(&got), strip(&expected), "{kind:?}");

        // An instant that is not RFC 3339 with an offset is refused.
        let (code, _, _) = replay(&s, &["--as-of", "2019-11-30 12:00:00"]);
        assert_eq!(code, 2);
    }
}

// ------------------------------------------------------------------ explain

#[derive(Debug)]
struct Item {
    event_id: String,
    group: String,
    line: String,
    effect: i64,
}

fn group_label_of_json(g: &serde_json::Value) -> String {
    match g.as_str().unwrap_or("") {
        "VisaMaster" | "VISA/MASTER" => "VISA/MASTER".into(),
        "JcbOther" | "JCB/その他" => "JCB/その他".into(),
        "Emoney" | "電子マネー" => "電子マネー".into(),
        other => panic!("unknown group {other:?}"),
    }
}

/// Runs explain in CSV and JSON, checks both agree, and checks the items add up
/// to the statement line by line. Returns the items and the carry-in origin
/// (from JSON; the CSV run names it on stderr).
fn check_explain(s: &TestStore, merchant: &str, period: &str) -> (Vec<Item>, Option<String>) {
    let st = statements(s);
    let row = st.iter().find(|r| r["merchant_id"] == merchant && r["period_start"] == period).unwrap_or_else(|| panic!("no statement {merchant} {period}"));
    let o = s.run(&["statements", "explain", "--merchant", merchant, "--period", period, "--format", "csv"]);
    let (csv, csv_err) = text(&o);
    assert!(o.status.success(), "explain csv: {csv_err}");
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let idx = |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("explain CSV has no column {name}: {headers:?}"));
    let (ie, ig, il, ief) = (idx("event_id"), idx("group"), idx("line"), idx("effect"));
    let csv_items: Vec<Item> = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            Item { event_id: r[ie].to_string(), group: r[ig].to_string(), line: r[il].to_string(), effect: r[ief].parse().unwrap() }
        })
        .collect();

    let json: serde_json::Value = serde_json::from_str(&s.ok(&["statements", "explain", "--merchant", merchant, "--period", period, "--format", "json"])).unwrap();
    let json_items: Vec<Item> = json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| Item {
            event_id: i["event_id"].as_str().unwrap().to_string(),
            group: group_label_of_json(&i["group"]),
            line: i["line"].as_str().unwrap().to_string(),
            effect: i["effect"].as_i64().unwrap(),
        })
        .collect();
    assert_eq!(csv_items.len(), json_items.len(), "CSV and JSON list the same items");
    for (c, j) in csv_items.iter().zip(&json_items) {
        assert_eq!((&c.event_id, &c.group, &c.line, c.effect), (&j.event_id, &j.group, &j.line, j.effect));
    }
    assert_eq!(json["merchant_id"], merchant);
    assert_eq!(json["period_start"], period);
    assert_eq!(json["carry_in"].as_i64().unwrap().to_string(), row["carry_in"]);

    // Line by line.
    let n = |k: &str| -> i64 { row[k].parse().unwrap() };
    for (label, col) in [("VISA/MASTER", "visa_master"), ("JCB/その他", "jcb_other"), ("電子マネー", "emoney")] {
        let sales: i64 = csv_items.iter().filter(|i| i.group == label && (i.line == "sales" || i.line == "sale_cancelled_same_cycle")).map(|i| i.effect).sum();
        assert_eq!(sales, n(&format!("{col}_sales")), "{merchant} {period} {label}: Σ effect of its sales and same-cycle cancels");
        let count = csv_items.iter().filter(|i| i.group == label && i.line == "sales").count() as i64 - csv_items.iter().filter(|i| i.group == label && i.line == "sale_cancelled_same_cycle").count() as i64;
        assert_eq!(count, n(&format!("{col}_count")), "{merchant} {period} {label}: count");
    }
    let red: i64 = csv_items.iter().filter(|i| i.line == "red_slip").map(|i| i.effect).sum();
    assert_eq!(red, n("red_slips"), "{merchant} {period}: Σ red slips");
    let cb: i64 = csv_items.iter().filter(|i| i.line == "chargeback" || i.line == "chargeback_reversal").map(|i| i.effect).sum();
    assert_eq!(cb, n("chargebacks"), "{merchant} {period}: Σ chargebacks and reversals");
    for i in &csv_items {
        assert!(["sales", "sale_cancelled_same_cycle", "red_slip", "chargeback", "chargeback_reversal"].contains(&i.line.as_str()), "{i:?}");
    }
    let origin = json["carry_in_origin"].as_str().map(str::to_string);
    if row["carry_in"] != "0" {
        let o = origin.clone().unwrap_or_else(|| panic!("{merchant} {period}: carry-in {} without origin", row["carry_in"]));
        assert!(csv_err.contains(&o) || csv_err.contains("carry"), "the CSV run names the carry-in origin on stderr: {csv_err}");
    } else {
        assert!(origin.is_none(), "{merchant} {period}: no carry-in, yet an origin {origin:?}");
    }
    (csv_items, origin)
}

#[test]
fn explain_sample_statement_adds_up_and_names_the_carry_in_origin() {
    for kind in KINDS {
        let s = TestStore::new(kind);
        ingest_sample(&s);
        s.ok(&["settle", "--through", "2019-11-30"]);
        let (items, origin) = check_explain(&s, "270212122", "2019-10-01");
        let ids: Vec<&str> = items.iter().map(|i| i.event_id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, vec!["e3", "e4", "e5", "e6", "e7"], "{kind:?}: the events behind the statement");
        let origin = origin.expect("the carry-in's origin");
        assert!(origin.contains("2019-09-16"), "{kind:?}: the origin names the carried statement: {origin}");
        // The carried statement itself: the chargeback.
        let (items, origin) = check_explain(&s, "270212122", "2019-09-16");
        assert_eq!(items.len(), 1);
        assert_eq!((items[0].event_id.as_str(), items[0].line.as_str(), items[0].effect), ("e2", "chargeback", -7126));
        assert!(origin.is_none());
        check_explain(&s, "270212122", "2019-09-01");
        check_explain(&s, "270212122", "2019-10-16");
        // Golden: the whole CSV of the sample's 10-01 statement.
        let csv = s.ok(&["statements", "explain", "--merchant", "270212122", "--period", "2019-10-01", "--format", "csv"]);
        golden("explain-270212122-20191001.csv", &csv);
        // Not a statement / not a cycle start: refused.
        assert_eq!(s.run(&["statements", "explain", "--merchant", "270212122", "--period", "2019-12-01"]).status.code(), Some(2));
        assert_eq!(s.run(&["statements", "explain", "--merchant", "270212122", "--period", "2019-10-02"]).status.code(), Some(2));
    }
}

const RED_MERCHANT: &str = "280000001,赤伝テスト商店,担当 太郎,red@example.jp,0010,りそな銀行,101,大阪営業部,普通,7777777,アカデンテスト,3.24,3.24,3.24,inclusive-8,987654321,リソナ,オオサカ";

const RED_EVENTS: &str = "\
x01,sale,r1,280000001,2019-10-03T10:00:00+09:00,VISA,10000,tok_r1,,
x02,sale,r2,280000001,2019-10-05T10:00:00+09:00,VISA,4000,tok_r2,,
x03,sale,r3,280000001,2019-10-06T10:00:00+09:00,MASTERCARD,6000,tok_r3,,
x04,sale,r4,280000001,2019-10-20T10:00:00+09:00,JCB,5000,tok_r4,,
x05,sale,r5,280000001,2019-10-21T10:00:00+09:00,VISA,3000,tok_r5,,
x06,void,r5,,2019-10-22T10:00:00+09:00,,,tok_r5,,
x07,void,r1,,2019-10-18T10:00:00+09:00,,,tok_r1,,
x08,chargeback,r2,,2019-10-22T10:00:00+09:00,,2000,,,
x09,chargeback_reversal,r2,,2019-10-25T10:00:00+09:00,,,,,
x10,chargeback,r3,,2019-10-23T10:00:00+09:00,,,,,
x11,sale,r6,280000001,2019-10-24T10:00:00+09:00,ID,1000,tok_r6,,
x12,sale,r7,280000001,2019-11-05T10:00:00+09:00,VISA,30000,tok_r7,,
";

#[test]
fn explain_statement_with_red_slip_and_chargebacks_adds_up() {
    for kind in KINDS {
        let s = TestStore::new(kind);
        let m = s.write("m.csv", &format!("{MERCHANTS_HEADER}\n{RED_MERCHANT}\n"));
        let e = s.write("e.csv", &format!("{EVENTS_HEADER}\n{RED_EVENTS}"));
        s.ok(&["ingest", "merchants", m.to_str().unwrap()]);
        s.ok(&["ingest", "events", e.to_str().unwrap()]);
        s.ok(&["settle", "--through", "2019-11-30"]);
        let st = statements(&s);
        let row = |p: &str| st.iter().find(|r| r["period_start"] == p).unwrap().clone();

        // By hand (SPEC §4): 10-16..31 has JCB 5000 (fee 162), e-money 1000
        // (fee 32), the VISA sale cancelled in its cycle (nothing), fee tax
        // round(194/54) = 4, the red slip of r1 −(10000 − 324) = −9676, and
        // chargebacks −2000 + 2000 − 6000 = −6000: balance −9874, carried.
        let oct2 = row("2019-10-16");
        assert_eq!(
            (oct2["visa_master_count"].as_str(), oct2["jcb_other_sales"].as_str(), oct2["emoney_sales"].as_str(), oct2["fee_tax"].as_str()),
            ("0", "5000", "1000", "4"),
            "{kind:?}: {oct2:?}"
        );
        assert_eq!((oct2["red_slips"].as_str(), oct2["chargebacks"].as_str()), ("-9676", "-6000"), "{kind:?}: {oct2:?}");
        assert_eq!((oct2["payout"].as_str(), oct2["carry_out"].as_str()), ("0", "-9874"), "{kind:?}: {oct2:?}");

        let (items, origin) = check_explain(&s, "280000001", "2019-10-16");
        assert!(origin.is_none());
        let mut ids: Vec<&str> = items.iter().map(|i| i.event_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, vec!["x04", "x05", "x06", "x07", "x08", "x09", "x10", "x11"], "{kind:?}");
        let by_id: BTreeMap<&str, (&str, i64)> = items.iter().map(|i| (i.event_id.as_str(), (i.line.as_str(), i.effect))).collect();
        assert_eq!(by_id["x07"], ("red_slip", -9676));
        assert_eq!(by_id["x06"], ("sale_cancelled_same_cycle", -3000));
        assert_eq!(by_id["x10"], ("chargeback", -6000));
        assert_eq!(by_id["x09"], ("chargeback_reversal", 2000));

        // The next statement starts from the carried balance and names its origin.
        let nov = row("2019-11-01");
        assert_eq!((nov["carry_in"].as_str(), nov["payout"].as_str()), ("-9874", "18938"), "{kind:?}: {nov:?}");
        let (items, origin) = check_explain(&s, "280000001", "2019-11-01");
        assert_eq!(items.len(), 1);
        let origin = origin.expect("origin");
        assert!(origin.contains("2019-10-16") && origin.contains("2019-10-31"), "{kind:?}: {origin}");
        check_explain(&s, "280000001", "2019-10-01");

        let (code, out, err) = replay(&s, &[]);
        assert_eq!(code, 0, "{kind:?}: {out}\n{err}");
    }
}

// ------------------------------------------------------------------- golden

/// Compares with `fixtures/golden/NAME`; `UPDATE_GOLDEN=1` rewrites it.
fn golden(name: &str, actual: &str) {
    let path: PathBuf = repo_fixtures().join("golden").join(name);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    assert!(expected == actual, "{} differs (UPDATE_GOLDEN=1 rewrites it after review)\n--- expected\n{expected}\n--- actual\n{actual}", path.display());
}
