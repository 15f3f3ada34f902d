//! Incremental nights: the nightly batch keeps a checkpoint of the history in
//! the store and the next night folds only what was recorded after it. Night
//! after night (a day's file ingested, then `settle`), the result must be
//! exactly that of the same nights folding the whole log each time: statements,
//! notices, transfer files, refusals. The audit checks the checkpoint against
//! the log; a checkpoint whose row changed is ignored by the batch, one whose
//! content was altered is reported.
mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Days, NaiveDate};

const FROM: &str = "2019-09-01";
const TO: &str = "2019-11-20";
/// The nights run: every day of the history and a few after it, so cycles
/// close, notices come due and transfer files are written along the way.
const LAST_NIGHT: &str = "2019-12-02";

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The history as one file a night: each row in the file of its own date,
/// except the sale of every 23rd transaction, delivered ten days late: booked
/// into a later cycle when its own has closed, and what came after it (a
/// cancel, a chargeback) refused while the sale was still to come.
fn nightly_files() -> (String, BTreeMap<NaiveDate, String>) {
    let naming = HistoryIds {
        first_merchant: 810_000_001,
        event_prefix: "n",
        txn_prefix: "nt",
    };
    let (merchants, events) = generate(&naming, 12, 30, d(FROM), d(TO), 20_191_120);
    let mut files: BTreeMap<NaiveDate, String> = BTreeMap::new();
    for row in events.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        let day = d(&f[4][..10]);
        let txn: u64 = f[2].trim_start_matches("nt").parse().unwrap();
        let night = if txn.is_multiple_of(23) && f[1] == "sale" { day + Days::new(10) } else { day };
        files.entry(night).or_insert_with(|| format!("{EVENTS_HEADER}\n")).push_str(&format!("{row}\n"));
    }
    (merchants, files)
}

/// What a store ended with: every export a user reads, and the notices and
/// transfer files as recorded and written.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    statements: String,
    refusals: String,
    notices: Vec<Vec<String>>,
    transfer_files: BTreeMap<String, Vec<u8>>,
    notice_files: Vec<String>,
}

fn files_in(p: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(p)
        .map(|rd| rd.map(|e| e.unwrap()).map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())).collect())
        .unwrap_or_default()
}

fn outcome(s: &TestStore) -> Outcome {
    Outcome {
        statements: s.ok(&["statements", "export", "--format", "csv"]),
        refusals: s.ok(&["refusals", "export", "--format", "csv"]),
        notices: s.query("SELECT aggregate_id, sequence, payload FROM events WHERE aggregate_type = 'Notice' ORDER BY aggregate_id, sequence"),
        transfer_files: files_in(&s.path().join("transfers")),
        notice_files: files_in(&s.path().join("notices")).into_keys().collect(),
    }
}

fn checkpoints(s: &TestStore) -> usize {
    s.query("SELECT count(*) FROM checkpoints")[0][0].parse().unwrap()
}

/// Every night: that night's file (if any), then the batch. With `forget`, the
/// checkpoint is deleted before each batch, which then folds the whole log.
fn nights(kind: Kind, forget: bool) -> (TestStore, Vec<String>) {
    nights_with(kind, forget, None)
}

/// `nights`, the batch closing statements only (no notices, no transfer
/// files) on the nights up to `quiet_until`.
fn nights_with(kind: Kind, forget: bool, quiet_until: Option<NaiveDate>) -> (TestStore, Vec<String>) {
    let (merchants, files) = nightly_files();
    let s = TestStore::new(kind);
    let p = s.write("merchants.csv", &merchants);
    s.ok(&["ingest", "merchants", p.to_str().unwrap()]);
    let mut summaries = Vec::new();
    let mut night = d(FROM);
    while night <= d(LAST_NIGHT) {
        if let Some(text) = files.get(&night) {
            let p = s.write("day.csv", text);
            s.ok(&["ingest", "events", p.to_str().unwrap()]);
        }
        if forget {
            s.sql("DELETE FROM checkpoints");
        }
        let through = night.to_string();
        let mut args = vec!["settle", "--through", &through];
        if quiet_until.is_some_and(|q| night <= q) {
            args.push("--statements-only");
        }
        let o = s.run(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{kind:?} night {night}: {err}");
        summaries.push(err.lines().filter(|l| l.starts_with("settle through")).collect::<Vec<_>>().join("\n"));
        night = night + Days::new(1);
    }
    (s, summaries)
}

#[test]
fn nights_from_the_checkpoint_equal_nights_that_fold_the_whole_log() {
    for kind in KINDS {
        let (incremental, inc_summaries) = nights(kind, false);
        let (whole, whole_summaries) = nights(kind, true);
        assert_eq!(checkpoints(&incremental), 1, "{kind:?}: the batch keeps one checkpoint");
        assert_eq!(inc_summaries, whole_summaries, "{kind:?}: every night closed, issued and wrote the same");
        let (a, b) = (outcome(&incremental), outcome(&whole));
        assert!(a.statements.lines().count() > 100, "{kind:?}: the history closes statements: {}", a.statements);
        assert!(a.notices.len() > 20 && a.transfer_files.len() >= 4, "{kind:?}: notices and transfer files were issued");
        assert!(a.refusals.lines().count() > 1, "{kind:?}: late rows were refused: {}", a.refusals);
        assert_eq!(a, b, "{kind:?}: nights from the checkpoint and nights folding the whole log");
        for s in [&incremental, &whole] {
            let o = s.run(&["audit", "replay"]);
            assert_eq!(o.status.code(), Some(0), "{kind:?}: audit:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        }
    }
}

/// Statements closed weeks earlier by statements-only nights are known to the
/// checkpoint by their rows alone; the first full night reads them back and
/// issues their notices and transfer files exactly as a night folding the
/// whole log does.
#[test]
fn statements_kept_by_their_rows_are_read_back_for_their_notices() {
    let quiet = Some(d("2019-11-10"));
    for kind in KINDS {
        let (incremental, inc_summaries) = nights_with(kind, false, quiet);
        let (whole, whole_summaries) = nights_with(kind, true, quiet);
        assert_eq!(inc_summaries, whole_summaries, "{kind:?}: every night closed, issued and wrote the same");
        let first_full = inc_summaries
            .iter()
            .find(|l| !l.contains(" 0 notices issued"))
            .unwrap_or_else(|| panic!("{kind:?}: a full night issued notices: {inc_summaries:?}"));
        assert!(first_full.starts_with("settle through 2019-11-1"), "{kind:?}: the first full night caught up: {first_full}");
        let (a, b) = (outcome(&incremental), outcome(&whole));
        assert!(a.notices.len() > 20 && a.transfer_files.len() >= 4, "{kind:?}: notices and transfer files were issued");
        assert_eq!(a, b, "{kind:?}: nights from the checkpoint and nights folding the whole log");
        let o = incremental.run(&["audit", "replay"]);
        assert_eq!(o.status.code(), Some(0), "{kind:?}: audit:\n{}", String::from_utf8_lossy(&o.stdout));
    }
}

/// A statement row the checkpoint names that is no longer that statement (the
/// log rewritten under it): the batch issues nothing from it.
#[test]
fn a_statement_row_changed_under_the_checkpoint_stops_the_notices() {
    for kind in KINDS {
        let s = TestStore::new(kind);
        let dir = sample_dir();
        s.ok(&["ingest", "merchants", dir.join("merchants.csv").to_str().unwrap()]);
        s.ok(&["ingest", "events", dir.join("events.csv").to_str().unwrap()]);
        s.ok(&["settle", "--through", "2019-10-20", "--statements-only"]);
        let text = match kind {
            Kind::Postgres => "payload::text",
            Kind::Sqlite => "payload",
        };
        let rows = s.query(&format!(
            "SELECT global_position FROM events WHERE event_type = 'StatementClosed' AND {text} LIKE '%\"period_start\":\"2019-10-01\"%'"
        ));
        assert_eq!(rows.len(), 1, "{kind:?}: the first half of October is closed, its notice still to come: {rows:?}");
        let moved = format!("replace({text}, '\"period_start\":\"2019-10-01\"', '\"period_start\":\"2019-09-16\"')");
        let moved = match kind {
            Kind::Postgres => format!("{moved}::json"),
            Kind::Sqlite => moved,
        };
        s.sql(&format!("UPDATE events SET payload = {moved} WHERE global_position = {}", rows[0][0]));
        let o = s.run(&["settle", "--through", "2019-11-30"]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(3), "{kind:?}: the batch stops, a broken invariant: {err}");
        assert!(err.contains(&format!("position {}", rows[0][0])) && err.contains("audit replay"), "{kind:?}: {err}");
        assert!(s.query("SELECT 1 FROM events WHERE aggregate_type = 'Notice'").is_empty(), "{kind:?}: no notice issued");
    }
}

/// The sample history settled, with a checkpoint kept.
fn settled_sample(kind: Kind) -> TestStore {
    let s = TestStore::new(kind);
    let dir = sample_dir();
    s.ok(&["ingest", "merchants", dir.join("merchants.csv").to_str().unwrap()]);
    s.ok(&["ingest", "events", dir.join("events.csv").to_str().unwrap()]);
    // September closed: the merchant carries ¥-7,126 into October.
    s.ok(&["settle", "--through", "2019-09-30"]);
    assert_eq!(checkpoints(&s), 1, "{kind:?}: a checkpoint was kept");
    s
}

const EXPECTED_THROUGH_NOVEMBER: &str = "sample statements through 2019-11-30";

#[test]
fn an_altered_checkpoint_is_reported_by_the_audit() {
    for kind in KINDS {
        let s = settled_sample(kind);
        let o = s.run(&["audit", "replay"]);
        assert_eq!(o.status.code(), Some(0), "{kind:?}: untouched: {}", String::from_utf8_lossy(&o.stderr));
        // A merchant's carried balance edited inside the checkpoint.
        let data = &s.query("SELECT data FROM checkpoints")[0][0];
        assert!(data.contains("\"carry\":-7126"), "{kind:?}: the sample merchant carries ¥-7,126 into October: {data}");
        s.sql("UPDATE checkpoints SET data = replace(data, '\"carry\":-7126', '\"carry\":0')");
        let o = s.run(&["audit", "replay"]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(o.status.code(), Some(1), "{kind:?}: the audit finds the altered checkpoint: {out}");
        assert!(out.contains("checkpoint at position") && out.contains("differs from the fold of the log"), "{kind:?}: {out}");
        // Deleting it is the remedy: the next night folds the whole log.
        s.sql("DELETE FROM checkpoints");
        s.ok(&["settle", "--through", "2019-11-30"]);
        let expected = std::fs::read_to_string(sample_dir().join("statements.csv")).unwrap();
        assert_eq!(s.ok(&["statements", "export", "--format", "csv"]), expected, "{kind:?}: {EXPECTED_THROUGH_NOVEMBER}");
        let o = s.run(&["audit", "replay"]);
        assert_eq!(o.status.code(), Some(0), "{kind:?}: clean again: {}", String::from_utf8_lossy(&o.stdout));
    }
}

#[test]
fn a_checkpoint_whose_row_changed_is_ignored_by_the_batch() {
    for kind in KINDS {
        let s = settled_sample(kind);
        // The checkpoint's content altered as above, and its row's hash too, as
        // if the log under it had been rewritten: the batch must not use it.
        s.sql("UPDATE checkpoints SET data = replace(data, '\"carry\":-7126', '\"carry\":0'), chain_hash = 'x'");
        let o = s.run(&["settle", "--through", "2019-11-30"]);
        assert!(o.status.success(), "{kind:?}: {}", String::from_utf8_lossy(&o.stderr));
        let expected = std::fs::read_to_string(sample_dir().join("statements.csv")).unwrap();
        assert_eq!(s.ok(&["statements", "export", "--format", "csv"]), expected, "{kind:?}: {EXPECTED_THROUGH_NOVEMBER}");
        // The run kept a fresh checkpoint, which the audit finds sound.
        let o = s.run(&["audit", "replay"]);
        assert_eq!(o.status.code(), Some(0), "{kind:?}: {}", String::from_utf8_lossy(&o.stdout));
        assert_ne!(s.query("SELECT chain_hash FROM checkpoints")[0][0], "x", "{kind:?}: replaced by a true one");
    }
}

/// The positions of the checkpoint's main document and of its contracts and
/// statements parts, as the store holds them after a night.
type Positions = (i64, i64, i64);

fn positions(s: &TestStore) -> Positions {
    let main: i64 = s.query("SELECT position FROM checkpoints")[0][0].parse().unwrap();
    let part = |name: &str| -> i64 { s.query(&format!("SELECT position FROM checkpoint_parts WHERE name = '{name}'"))[0][0].parse().unwrap() };
    (main, part("settle/contracts"), part("settle/statements"))
}

/// The sample history from the end of September, night by night to
/// 2019-11-20; on 2019-10-05 the merchant moves its account to Mizuho (no
/// transfer fee). With `forget`, the checkpoint is deleted before each night.
fn sample_nights_with_a_bank_change(kind: Kind, forget: bool) -> (TestStore, Vec<(NaiveDate, Positions)>) {
    let s = settled_sample(kind);
    let merchants = std::fs::read_to_string(sample_dir().join("merchants.csv")).unwrap();
    let mizuho = merchants
        .replace("0010,りそな銀行,999,証券信託業務支店", "0001,みずほ銀行,001,本店")
        .replace("リソナ,ショウケンシンタクギョウム", "ミズホ,ホンテン");
    assert_ne!(mizuho, merchants, "the fixture's bank is the one replaced");
    let mizuho = s.write("merchants-mizuho.csv", &mizuho);
    let mut seen = Vec::new();
    let mut night = d("2019-10-01");
    while night <= d("2019-11-20") {
        if night == d("2019-10-05") {
            s.ok(&["ingest", "merchants", mizuho.to_str().unwrap()]);
        }
        if forget {
            s.sql("DELETE FROM checkpoints");
        }
        s.ok(&["settle", "--through", &night.to_string()]);
        seen.push((night, positions(&s)));
        night = night + Days::new(1);
    }
    (s, seen)
}

/// A night that closes nothing and has no notice or transfer file to do reads
/// and rewrites the checkpoint's main document alone; the contracts part is
/// rewritten when a merchant import changed a contract, the statements part
/// when statements, notices or files changed it. Whatever was read or not, the
/// nights give exactly what nights folding the whole log give.
#[test]
fn quiet_nights_leave_the_checkpoint_parts_as_stored() {
    for kind in KINDS {
        let (s, seen) = sample_nights_with_a_bank_change(kind, false);
        let (whole, _) = sample_nights_with_a_bank_change(kind, true);
        assert_eq!(outcome(&s), outcome(&whole), "{kind:?}: nights from the checkpoint and nights folding the whole log");
        let october = s.ok(&["statements", "export", "--format", "csv"]);
        let first_half = october.lines().find(|l| l.contains(",2019-10-01,")).unwrap_or_else(|| panic!("{kind:?}: {october}"));
        assert!(first_half.contains(",0,0,8482,0"), "{kind:?}: the bank at close is Mizuho, no transfer fee: {first_half}");

        let nights: BTreeMap<NaiveDate, Positions> = seen.iter().copied().collect();
        let before = |n: &str| nights[&(d(n) - Days::new(1))];
        let at = |n: &str| nights[&d(n)];
        for w in seen.windows(2) {
            assert!(w[1].1 .0 > w[0].1 .0, "{kind:?}: every night keeps a newer main document: {w:?}");
        }
        // Contracts: rewritten on the night of the import alone.
        for (n, p) in &seen {
            let expect_new = *n == d("2019-10-05");
            let prev = nights.get(&(*n - Days::new(1))).map_or(p.1, |q| q.1);
            assert_eq!(p.1 != prev, expect_new, "{kind:?} {n}: contracts part {prev} -> {}", p.1);
        }
        // Statements: rewritten when the first half of October closes, not on
        // the quiet nights around it.
        assert_ne!(at("2019-10-15").2, before("2019-10-15").2, "{kind:?}: the first half of October closed on its last day: {seen:?}");
        let quiet: Vec<NaiveDate> = seen.windows(2).filter(|w| w[1].1 .1 == w[0].1 .1 && w[1].1 .2 == w[0].1 .2).map(|w| w[1].0).collect();
        assert!(quiet.contains(&d("2019-10-10")) && quiet.len() >= 20, "{kind:?}: quiet nights touched neither part: {quiet:?}");
        let o = s.run(&["audit", "replay"]);
        assert_eq!(o.status.code(), Some(0), "{kind:?}: {}", String::from_utf8_lossy(&o.stdout));
    }
}

/// A part altered in the store: the audit reports it, and the batch refuses
/// to build on it (exit 3) when it needs it. A part whose stored hash no longer
/// matches the checkpoint is ignored, with the checkpoint, as a changed row is.
#[test]
fn an_altered_checkpoint_part_is_found() {
    for kind in KINDS {
        let s = settled_sample(kind);
        let part = &s.query("SELECT data FROM checkpoint_parts WHERE name = 'settle/statements'")[0][0];
        assert!(part.contains("\"carry\":-7126"), "{kind:?}: the conservation sums carry ¥-7,126: {part}");
        s.sql("UPDATE checkpoint_parts SET data = replace(data, '\"carry\":-7126', '\"carry\":0') WHERE name = 'settle/statements'");
        let o = s.run(&["audit", "replay"]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(o.status.code(), Some(1), "{kind:?}: {out}");
        assert!(out.contains("checkpoint at position") && out.contains("statements part"), "{kind:?}: {out}");
        let o = s.run(&["settle", "--through", "2019-11-30"]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(3), "{kind:?}: {err}");
        assert!(err.contains("statements part") && err.contains("audit replay"), "{kind:?}: {err}");
        assert!(s.query("SELECT 1 FROM events WHERE aggregate_type = 'Settlement' AND sequence > 2").is_empty(), "{kind:?}: nothing closed");

        // With its stored hash made to match the altered text, the part is no
        // longer the one the checkpoint names: the batch folds the whole log.
        let sha = sha256_of(&s.query("SELECT data FROM checkpoint_parts WHERE name = 'settle/statements'")[0][0]);
        s.sql(&format!("UPDATE checkpoint_parts SET sha256 = '{sha}' WHERE name = 'settle/statements'"));
        let o = s.run(&["settle", "--through", "2019-11-30"]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{kind:?}: {err}");
        assert!(err.contains("statements part is not the one stored; folding the whole log"), "{kind:?}: {err}");
        let expected = std::fs::read_to_string(sample_dir().join("statements.csv")).unwrap();
        assert_eq!(s.ok(&["statements", "export", "--format", "csv"]), expected, "{kind:?}: {EXPECTED_THROUGH_NOVEMBER}");
        let o = s.run(&["audit", "replay"]);
        assert_eq!(o.status.code(), Some(0), "{kind:?}: a new checkpoint, sound: {}", String::from_utf8_lossy(&o.stdout));
    }
}

/// SHA-256 of a text in hex, by `sha256sum` (not upay's implementation).
fn sha256_of(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}
