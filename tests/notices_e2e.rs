//! Payout notices end to end (SPEC §5, §7): what the nightly batch writes into
//! the notices folder (an encrypted ZIP holding only the A4 PDF), the issue date,
//! regeneration, restore, and delivery through a real local SMTP server.
//!
//! The ZIPs are opened with 7-Zip and with the Rust `zip` crate; the PDFs are
//! read with `pdfinfo` and `pdftotext -layout` (poppler-utils). The SMTP server
//! is Python's aiosmtpd, started by the test. The notice password must never
//! show up in any command's stdout or stderr.
mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sha2::Digest;

/// The sample merchant's notice password (shared/fixtures/sample-notice/merchants.csv).
const PW: &str = "123456789";
const MERCHANT: &str = "270212122";
const NOTICE: &str = "270212122-001-20191031";

// ---------------------------------------------------------------- helpers

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The password must never be printed.
fn assert_no_password(args: &[&str], o: &Output) {
    let (out, err) = text(o);
    assert!(!out.contains(PW), "upay {args:?} printed the notice password on stdout:\n{out}");
    assert!(!err.contains(PW), "upay {args:?} printed the notice password on stderr:\n{err}");
}

/// Runs, asserts exit 0 and that the password is in neither stream; returns (stdout, stderr).
fn ok(s: &TestStore, args: &[&str]) -> (String, String) {
    let o = s.run(args);
    assert_no_password(args, &o);
    let (out, err) = text(&o);
    assert!(o.status.success(), "upay {args:?} exited {:?}\nstdout:\n{out}\nstderr:\n{err}", o.status.code());
    (out, err)
}

/// Runs, asserts the password is in neither stream; returns the output whatever the exit.
fn run(s: &TestStore, args: &[&str]) -> Output {
    let o = s.run(args);
    assert_no_password(args, &o);
    o
}

fn sample_file(name: &str) -> String {
    sample_dir().join(name).to_str().unwrap().to_string()
}

fn ingest_sample(s: &TestStore) {
    ok(s, &["ingest", "merchants", &sample_file("merchants.csv")]);
    ok(s, &["ingest", "events", &sample_file("events.csv")]);
}

fn notices_dir(s: &TestStore) -> PathBuf {
    s.path().join("notices")
}

fn zip_path(s: &TestStore, notice: &str) -> PathBuf {
    notices_dir(s).join(format!("{notice}.zip"))
}

/// The entry names of a ZIP (not encrypted in the ZIP format).
fn zip_names(zip: &[u8]) -> Vec<String> {
    let a = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a ZIP archive");
    a.file_names().map(|n| n.expect("a readable entry name").to_string()).collect()
}

/// Opens `name` inside the ZIP with the Rust `zip` crate and the password.
fn zip_read(zip: &[u8], name: &str, password: &str) -> Result<Vec<u8>, String> {
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|e| e.to_string())?;
    let mut f = a.by_name_decrypt(name, password.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    f.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The PDF of a notice's ZIP file, read with the Rust `zip` crate.
fn pdf_of(s: &TestStore, notice: &str) -> Vec<u8> {
    let zip = std::fs::read(zip_path(s, notice)).unwrap_or_else(|e| panic!("{notice}.zip: {e}"));
    assert_eq!(zip_names(&zip), vec![format!("{notice}.pdf")], "{notice}.zip holds only its PDF");
    zip_read(&zip, &format!("{notice}.pdf"), PW).unwrap_or_else(|e| panic!("{notice}.zip does not open with the password: {e}"))
}

/// Extracts a ZIP with 7-Zip into a fresh folder; Err with 7z's output on failure.
fn sevenzip_extract(zip: &Path, password: &str) -> Result<tempfile::TempDir, String> {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new("7z")
        .arg("x")
        .arg(format!("-p{password}"))
        .arg(format!("-o{}", out.path().display()))
        .arg("-y")
        .arg(zip)
        .stdin(Stdio::null())
        .output()
        .expect("7z runs (p7zip-full)");
    if o.status.success() {
        Ok(out)
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    }
}

/// `7z l -slt`: technical listing (paths, methods).
fn sevenzip_list(zip: &Path) -> String {
    let o = Command::new("7z").args(["l", "-slt"]).arg(zip).stdin(Stdio::null()).output().expect("7z runs");
    assert!(o.status.success(), "7z l {}: {}", zip.display(), String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn write_tmp(bytes: &[u8], name: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (d, p)
}

fn pdftotext(pdf: &[u8]) -> String {
    let (_d, p) = write_tmp(pdf, "n.pdf");
    let o = Command::new("pdftotext").arg("-layout").arg(&p).arg("-").output().expect("pdftotext runs (poppler-utils)");
    assert!(o.status.success(), "pdftotext: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).expect("pdftotext writes UTF-8")
}

fn pdfinfo(pdf: &[u8]) -> String {
    let (_d, p) = write_tmp(pdf, "n.pdf");
    let o = Command::new("pdfinfo").arg(&p).output().expect("pdfinfo runs (poppler-utils)");
    assert!(o.status.success(), "pdfinfo: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The line of the text that carries `label` (e.g. 発行日).
fn line_with<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines().find(|l| l.contains(label)).unwrap_or_else(|| panic!("no line with {label:?} in:\n{text}"))
}

fn statements_rows(s: &TestStore) -> Vec<std::collections::HashMap<String, String>> {
    let csv = ok(s, &["statements", "export", "--format", "csv"]).0;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines.map(|l| header.iter().map(|h| h.to_string()).zip(l.split(',').map(str::to_string)).collect()).collect()
}

fn notice_no_of(s: &TestStore, period_start: &str) -> String {
    statements_rows(s).into_iter().find(|r| r["period_start"] == period_start).unwrap_or_else(|| panic!("no statement from {period_start}"))["notice_no"].clone()
}

fn settle(s: &TestStore, through: &str) -> String {
    ok(s, &["settle", "--through", through]).1
}

// ------------------------------------------------ the issued notice itself

/// Every figure of the sample statement, the masked account, the bank, the
/// branch, the payout date and the notice number are on the PDF.
fn assert_sample_notice_text(t: &str, notice: &str) {
    for fig in ["14,140", "458", "13,682", "2,000", "64", "1,936", "10", "-7,126", "180", "18", "8,284"] {
        assert!(t.contains(fig), "the notice does not show {fig}:\n{t}");
    }
    for s in ["***567", "りそな銀行", "証券信託業務支店", "2019年10月31日", notice, "VISA/MASTER", "JCB/その他", "差引お振込金額", "発行日"] {
        assert!(t.contains(s), "the notice does not show {s:?}:\n{t}");
    }
    assert!(!t.contains("1234567"), "the account number must be masked:\n{t}");
    // Line by line: each figure on its own line.
    for (label, cells) in [
        ("VISA/MASTER", &["3", "¥14,140", "3.24%", "¥458", "¥13,682"][..]),
        ("JCB/その他", &["2", "¥2,000", "3.24%", "¥64", "¥1,936"][..]),
        ("決済手数料にかかる消費税", &["¥10"][..]),
        ("前未精算金額", &["¥-7,126"][..]),
        ("振込手数料", &["¥180"][..]),
        ("振込手数料にかかる消費税", &["¥18"][..]),
        ("差引お振込金額", &["¥8,284"][..]),
        ("指定金融機関", &["りそな銀行"][..]),
        ("金融機関支店名", &["証券信託業務支店"][..]),
        ("口座番号", &["***567"][..]),
        ("お振込み予定日", &["2019年10月31日"][..]),
    ] {
        let l = line_starting(t, label);
        let words: Vec<&str> = l.split_whitespace().collect();
        for c in cells {
            assert!(words.contains(c), "the line {label:?} does not show {c:?}: {l:?}\n{t}");
        }
    }
    assert!(!t.contains("チャージバック"), "no chargeback line on this statement:\n{t}");
}

/// The line that begins (after indentation) with `label` and a space.
fn line_starting<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().strip_prefix(label).is_some_and(|rest| rest.starts_with(char::is_whitespace) || rest.starts_with(" (")))
        .unwrap_or_else(|| panic!("no line starting with {label:?} in:\n{text}"))
}

fn check_sample_notice(kind: Kind) -> Vec<u8> {
    let s = TestStore::new(kind);
    ingest_sample(&s);
    settle(&s, "2019-11-30");
    let zip = zip_path(&s, NOTICE);
    assert!(zip.exists(), "{kind:?}: {} missing; folder holds {:?}", zip.display(), files_in(&notices_dir(&s)));
    assert_eq!(
        files_in(&notices_dir(&s)),
        vec!["270212122-001-20190930.zip", "270212122-001-20191031.zip", "270212122-001-20191115.zip"],
        "{kind:?}: one ZIP per statement with a payout, nothing else"
    );

    // 7-Zip: the right password opens it, and it holds only the PDF.
    let x = sevenzip_extract(&zip, PW).unwrap_or_else(|e| panic!("{kind:?}: 7z cannot open {NOTICE}.zip with the password: {e}"));
    assert_eq!(files_in(x.path()), vec![format!("{NOTICE}.pdf")], "{kind:?}: the ZIP holds only the PDF");
    let pdf = std::fs::read(x.path().join(format!("{NOTICE}.pdf"))).unwrap();
    // Any other password does not.
    for wrong in ["987654321", "123456780", "000000000"] {
        assert!(sevenzip_extract(&zip, wrong).is_err(), "{kind:?}: 7z opened {NOTICE}.zip with the wrong password {wrong}");
    }
    let listing = sevenzip_list(&zip);
    assert!(listing.contains("Encrypted = +"), "{kind:?}: the entry is encrypted:\n{listing}");

    // The Rust zip crate gives the same PDF; wrong passwords fail.
    let zbytes = std::fs::read(&zip).unwrap();
    assert_eq!(zip_names(&zbytes), vec![format!("{NOTICE}.pdf")]);
    assert_eq!(zip_read(&zbytes, &format!("{NOTICE}.pdf"), PW).unwrap(), pdf, "{kind:?}: zip crate and 7z disagree");
    for wrong in ["987654321", "123456780", ""] {
        assert!(zip_read(&zbytes, &format!("{NOTICE}.pdf"), wrong).is_err(), "{kind:?}: zip crate opened it with {wrong:?}");
    }

    // An A4 PDF under 100 KB.
    assert!(pdf.starts_with(b"%PDF-"), "{kind:?}: not a PDF");
    assert!(pdf.len() < 100 * 1024, "{kind:?}: the PDF is {} bytes, not under 100 KB", pdf.len());
    let info = pdfinfo(&pdf);
    let size = line_with(&info, "Page size:");
    let nums: Vec<f64> = size.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(nums.len() >= 2 && (595.0..596.0).contains(&nums[0]) && (841.0..842.0).contains(&nums[1]), "{kind:?}: not A4 portrait: {size}");

    let t = pdftotext(&pdf);
    assert_sample_notice_text(&t, NOTICE);
    assert!(line_with(&t, "発行日").contains("2019年11月30日"), "{kind:?}: issued by the run through 2019-11-30:\n{t}");
    assert!(t.contains("②新PAY切替Uペイ"), "{kind:?}: merchant name:\n{t}");
    assert!(t.contains("平 次郎") || t.contains("平次郎"), "{kind:?}: contact name:\n{t}");
    assert_eq!(notice_no_of(&s, "2019-10-01"), NOTICE);
    pdf
}

#[test]
fn sample_notice_zip_opens_with_its_password_and_shows_the_statement_on_both_stores() {
    let pdfs: Vec<Vec<u8>> = KINDS.iter().map(|k| check_sample_notice(*k)).collect();
    assert_eq!(sha256(&pdfs[0]), sha256(&pdfs[1]), "SQLite and PostgreSQL stores given the same history give the same PDF bytes");
}

#[test]
fn same_history_in_two_stores_gives_identical_pdf_bytes_and_different_zips() {
    let a = TestStore::new(Kind::Sqlite);
    let b = TestStore::new(Kind::Sqlite);
    for s in [&a, &b] {
        ingest_sample(s);
        settle(s, "2019-11-30");
    }
    for n in ["270212122-001-20190930", NOTICE, "270212122-001-20191115"] {
        assert_eq!(pdf_of(&a, n), pdf_of(&b, n), "{n}: two stores, same history, different PDF bytes");
    }
    // The encryption header is random: the ZIP need not repeat (and does not).
    assert_ne!(std::fs::read(zip_path(&a, NOTICE)).unwrap(), std::fs::read(zip_path(&b, NOTICE)).unwrap());
}

#[test]
fn aes256_notices_open_with_7zip() {
    let s = TestStore::new(Kind::Sqlite);
    ingest_sample(&s);
    ok(&s, &["settle", "--through", "2019-11-30", "--zip-encryption", "aes256"]);
    let zip = zip_path(&s, NOTICE);
    let listing = sevenzip_list(&zip);
    assert!(listing.contains("AES-256"), "7z does not see AES-256:\n{listing}");
    let x = sevenzip_extract(&zip, PW).unwrap_or_else(|e| panic!("7z cannot open the AES-256 ZIP: {e}"));
    assert_eq!(files_in(x.path()), vec![format!("{NOTICE}.pdf")]);
    let pdf = std::fs::read(x.path().join(format!("{NOTICE}.pdf"))).unwrap();
    assert!(sevenzip_extract(&zip, "987654321").is_err(), "AES-256 ZIP opened with a wrong password");
    assert_eq!(zip_read(&std::fs::read(&zip).unwrap(), &format!("{NOTICE}.pdf"), PW).unwrap(), pdf);
    assert!(zip_read(&std::fs::read(&zip).unwrap(), &format!("{NOTICE}.pdf"), "987654321").is_err());
    assert_sample_notice_text(&pdftotext(&pdf), NOTICE);

    // The encryption does not change the document: same bytes as a ZipCrypto run.
    let z = TestStore::new(Kind::Sqlite);
    ingest_sample(&z);
    settle(&z, "2019-11-30");
    assert_eq!(pdf_of(&z, NOTICE), pdf);
}

// ------------------------------------------------------------- issue date

#[test]
fn issue_date_is_the_through_date_of_the_run_that_issued_it() {
    for kind in KINDS {
        // Night by night around the notice date 2019-10-29.
        let s = TestStore::new(kind);
        ingest_sample(&s);
        for day in 25..=31 {
            let through = format!("2019-10-{day}");
            settle(&s, &through);
            let exists = zip_path(&s, NOTICE).exists();
            assert_eq!(exists, day >= 29, "{kind:?}: after the run through {through}, {NOTICE}.zip exists: {exists}");
            let no = notice_no_of(&s, "2019-10-01");
            assert_eq!(no, if day >= 29 { NOTICE } else { "" }, "{kind:?}: notice_no after the run through {through}");
        }
        let t = pdftotext(&pdf_of(&s, NOTICE));
        assert!(line_with(&t, "発行日").contains("2019年10月29日"), "{kind:?}: on time, 発行日 is the notice date:\n{t}");
        // The first cycle's notice (notice date 2019-09-28) came with the first run.
        let t = pdftotext(&pdf_of(&s, "270212122-001-20190930"));
        assert!(line_with(&t, "発行日").contains("2019年10月25日"), "{kind:?}: a missed notice is issued by the first run after it:\n{t}");
        // Later runs do not issue it again.
        let before = std::fs::read(zip_path(&s, NOTICE)).unwrap();
        settle(&s, "2019-11-30");
        assert_eq!(std::fs::read(zip_path(&s, NOTICE)).unwrap(), before, "{kind:?}: a later run rewrote an issued notice");

        // A batch that skipped nights issues it with its own through date.
        let late = TestStore::new(kind);
        ingest_sample(&late);
        settle(&late, "2019-10-27");
        assert!(!zip_path(&late, NOTICE).exists());
        settle(&late, "2019-11-05");
        let t = pdftotext(&pdf_of(&late, NOTICE));
        assert!(line_with(&t, "発行日").contains("2019年11月5日"), "{kind:?}: issued by the run through 2019-11-05:\n{t}");
        assert!(!t.contains("2019年10月29日"), "{kind:?}: the late notice does not pretend to be on time:\n{t}");
        assert_sample_notice_text(&t, NOTICE);
    }
}

// ------------------------------------------------- regenerate and restore

fn write_merchants_with_new_bank(s: &TestStore) -> PathBuf {
    let orig = std::fs::read_to_string(sample_dir().join("merchants.csv")).unwrap();
    let changed = orig
        .replace(",999,証券信託業務支店,普通,1234567,", ",101,大阪営業部,普通,7654321,")
        .replace(",リソナ,ショウケンシンタクギョウム", ",リソナ,オオサカ");
    assert_ne!(orig, changed, "the fixture changed: update the test");
    s.write("merchants-new-bank.csv", &changed)
}

#[test]
fn regenerate_after_a_bank_change_shows_the_new_bank_and_restore_gives_the_original_bytes() {
    for kind in KINDS {
        let s = TestStore::new(kind);
        ingest_sample(&s);
        settle(&s, "2019-11-30");
        let rev1_zip = std::fs::read(zip_path(&s, NOTICE)).unwrap();
        let rev1_pdf = pdf_of(&s, NOTICE);
        let rev1_sha = sha256(&rev1_pdf);

        // The merchant's account moves to another branch.
        let m = write_merchants_with_new_bank(&s);
        let (_, err) = ok(&s, &["ingest", "merchants", m.to_str().unwrap()]);
        assert!(err.contains("1 changed"), "{kind:?}: {err}");

        let (_, err) = ok(&s, &["notices", "regenerate", "--notice", NOTICE, "--reason", "口座変更", "--by", "tanaka", "--date", "2019-11-01"]);
        let rev2 = "270212122-002-20191031";
        assert!(err.contains(rev2), "{kind:?}: regenerate names the new revision: {err}");
        assert!(zip_path(&s, rev2).exists(), "{kind:?}: {rev2}.zip not written; folder: {:?}", files_in(&notices_dir(&s)));
        assert_eq!(std::fs::read(zip_path(&s, NOTICE)).unwrap(), rev1_zip, "{kind:?}: revision 1's ZIP was touched");
        assert_eq!(notice_no_of(&s, "2019-10-01"), rev2, "{kind:?}: the export names the latest revision");
        // The other statements keep their notices.
        assert_eq!(notice_no_of(&s, "2019-09-01"), "270212122-001-20190930");

        // Revision 2: the same statement, the new bank, its own number and date.
        let t2 = pdftotext(&pdf_of(&s, rev2));
        assert!(t2.contains(rev2), "{kind:?}: {t2}");
        assert!(!t2.contains(NOTICE), "{kind:?}: revision 2 shows revision 1's number:\n{t2}");
        assert!(line_with(&t2, "発行日").contains("2019年11月1日"), "{kind:?}: 発行日 is the --date given:\n{t2}");
        assert!(t2.contains("大阪営業部") && t2.contains("***321"), "{kind:?}: revision 2 shows the new branch and account:\n{t2}");
        assert!(!t2.contains("証券信託業務支店") && !t2.contains("***567"), "{kind:?}: revision 2 shows the old bank:\n{t2}");
        for fig in ["14,140", "13,682", "1,936", "-7,126", "8,284"] {
            assert!(t2.contains(fig), "{kind:?}: revision 2 lost the figure {fig}:\n{t2}");
        }

        // Revision 1 is lost from the folder: restore writes it again, the very same PDF.
        std::fs::remove_file(zip_path(&s, NOTICE)).unwrap();
        let rev2_zip = std::fs::read(zip_path(&s, rev2)).unwrap();
        let (_, err) = ok(&s, &["notices", "restore"]);
        assert!(err.contains("1 restored"), "{kind:?}: {err}");
        let restored = pdf_of(&s, NOTICE);
        assert_eq!(sha256(&restored), rev1_sha, "{kind:?}: restored revision 1 differs from what was sent");
        let t1 = pdftotext(&restored);
        assert!(t1.contains("証券信託業務支店") && t1.contains("***567") && !t1.contains("大阪営業部"), "{kind:?}: revision 1 shows the bank it was sent with:\n{t1}");
        assert_eq!(std::fs::read(zip_path(&s, rev2)).unwrap(), rev2_zip, "{kind:?}: restore rewrote a notice that was present");

        // The audit re-renders both revisions.
        let o = s.run(&["audit", "replay"]);
        assert_no_password(&["audit", "replay"], &o);
        assert_eq!(o.status.code(), Some(0), "{kind:?}: audit after regenerate: {:?}", text(&o));
    }
}

#[test]
fn regenerate_without_bank_change_keeps_the_figures_and_takes_the_next_revision() {
    let s = TestStore::new(Kind::Sqlite);
    ingest_sample(&s);
    settle(&s, "2019-11-30");
    let rev1_zip = std::fs::read(zip_path(&s, NOTICE)).unwrap();
    ok(&s, &["notices", "regenerate", "--notice", NOTICE, "--reason", "口座変更", "--by", "tanaka", "--date", "2019-11-01"]);
    let rev2 = "270212122-002-20191031";
    assert_eq!(std::fs::read(zip_path(&s, NOTICE)).unwrap(), rev1_zip);
    let t = pdftotext(&pdf_of(&s, rev2));
    assert_sample_notice_text(&t, rev2);
    assert!(line_with(&t, "発行日").contains("2019年11月1日"), "{t}");
    assert_eq!(notice_no_of(&s, "2019-10-01"), rev2);
    // JSON export too.
    let json: serde_json::Value = serde_json::from_str(&ok(&s, &["statements", "export", "--format", "json"]).0).unwrap();
    let row = json.as_array().unwrap().iter().find(|r| r["period_start"] == "2019-10-01").unwrap();
    assert_eq!(row["notice_no"], rev2);
    // Again: revision 3, whichever revision is named.
    ok(&s, &["notices", "regenerate", "--notice", rev2, "--reason", "再発行", "--by", "tanaka", "--date", "2019-11-02"]);
    assert!(zip_path(&s, "270212122-003-20191031").exists(), "{:?}", files_in(&notices_dir(&s)));
    assert_eq!(notice_no_of(&s, "2019-10-01"), "270212122-003-20191031");
}

#[test]
fn regenerating_an_unknown_notice_is_refused_with_exit_2() {
    for kind in KINDS {
        let s = TestStore::new(kind);
        ingest_sample(&s);
        settle(&s, "2019-11-30");
        let before = files_in(&notices_dir(&s));
        for notice in [
            "270212122-001-20191215", // no such payout date
            "999999999-001-20191031", // no such merchant
            "270212122-009-20191031", // no such revision
            "270212122-001-20191015", // a statement without payout has no notice
            "not-a-notice",
        ] {
            let args = ["notices", "regenerate", "--notice", notice, "--reason", "口座変更", "--by", "tanaka", "--date", "2019-11-01"];
            let o = run(&s, &args);
            assert_eq!(o.status.code(), Some(2), "{kind:?}: regenerate {notice}: {:?}", text(&o));
            assert!(!text(&o).1.trim().is_empty(), "{kind:?}: regenerate {notice} says why");
        }
        assert_eq!(files_in(&notices_dir(&s)), before, "{kind:?}: a refused regenerate wrote a file");
        assert_eq!(notice_no_of(&s, "2019-10-01"), NOTICE);
    }
}

#[test]
fn restore_rewrites_only_missing_notices_with_identical_pdfs() {
    for kind in KINDS {
        let s = TestStore::new(kind);
        ingest_sample(&s);
        settle(&s, "2019-11-30");
        let names = ["270212122-001-20190930", NOTICE, "270212122-001-20191115"];
        let pdfs: Vec<Vec<u8>> = names.iter().map(|n| pdf_of(&s, n)).collect();
        let zips: Vec<Vec<u8>> = names.iter().map(|n| std::fs::read(zip_path(&s, n)).unwrap()).collect();

        // Nothing missing: nothing written.
        let (_, err) = ok(&s, &["notices", "restore"]);
        assert!(err.contains("0 restored"), "{kind:?}: {err}");
        for (n, z) in names.iter().zip(&zips) {
            assert_eq!(&std::fs::read(zip_path(&s, n)).unwrap(), z, "{kind:?}: restore rewrote {n}");
        }

        // Two lost: both come back, the third is left alone.
        std::fs::remove_file(zip_path(&s, names[0])).unwrap();
        std::fs::remove_file(zip_path(&s, names[1])).unwrap();
        let (_, err) = ok(&s, &["notices", "restore"]);
        assert!(err.contains("2 restored"), "{kind:?}: {err}");
        assert_eq!(std::fs::read(zip_path(&s, names[2])).unwrap(), zips[2], "{kind:?}: restore rewrote a present notice");
        for (n, p) in names.iter().zip(&pdfs) {
            assert_eq!(sha256(&pdf_of(&s, n)), sha256(p), "{kind:?}: restored {n} differs");
        }
        // Restored into another folder: every notice.
        let (_, err) = ok(&s, &["notices", "restore", "--notices-dir", "elsewhere"]);
        assert!(err.contains("3 restored"), "{kind:?}: {err}");
        let other = s.path().join("elsewhere");
        assert_eq!(files_in(&other), names.iter().map(|n| format!("{n}.zip")).collect::<Vec<_>>());
        let z = std::fs::read(other.join(format!("{NOTICE}.zip"))).unwrap();
        assert_eq!(zip_read(&z, &format!("{NOTICE}.pdf"), PW).unwrap(), pdfs[1]);
        let x = sevenzip_extract(&other.join(format!("{NOTICE}.zip")), PW).expect("7z opens the restored ZIP");
        assert_eq!(std::fs::read(x.path().join(format!("{NOTICE}.pdf"))).unwrap(), pdfs[1]);
    }
}

// ------------------------------------------------------------------- mail

const SINK: &str = r#"
import asyncio, os, sys
from email import policy
from email.parser import BytesParser
from aiosmtpd.smtp import SMTP

OUT = sys.argv[1]
PORT = int(sys.argv[2])
COUNT = 0

class Handler:
    async def handle_DATA(self, server, session, envelope):
        global COUNT
        COUNT += 1
        d = os.path.join(OUT, "%03d" % COUNT)
        os.makedirs(d, exist_ok=True)
        raw = envelope.original_content or envelope.content
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        def w(name, data):
            if isinstance(data, bytes):
                open(os.path.join(d, name), "wb").write(data)
            else:
                open(os.path.join(d, name), "w", encoding="utf-8", newline="").write(data)
        w("raw.eml", raw)
        w("envelope_to.txt", "\n".join(envelope.rcpt_tos))
        w("to.txt", str(msg["To"]))
        w("subject.txt", str(msg["Subject"]))
        body = msg.get_body(preferencelist=("plain",))
        w("body.txt", body.get_content() if body is not None else "")
        n = 0
        for part in msg.iter_attachments():
            n += 1
            w("attachment_name.txt", part.get_filename() or "")
            w("attachment.bin", part.get_payload(decode=True))
        w("attachments.txt", str(n))
        w("done", "")
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Handler(), hostname="localhost"), "127.0.0.1", PORT, reuse_address=True)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

struct Sink {
    child: Child,
    port: u16,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the SMTP sink on `port` (0: any free port), saving messages into `out`.
fn start_sink(script: &Path, out: &Path, port: u16) -> Sink {
    let mut child = Command::new("python3")
        .arg(script)
        .arg(out)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("the SMTP sink did not start (is aiosmtpd installed?): {line:?}")
    });
    Sink { child, port }
}

struct Received {
    envelope_to: String,
    to: String,
    subject: String,
    body: String,
    raw: Vec<u8>,
    attachment_name: String,
    attachments: String,
    attachment: Vec<u8>,
}

/// The messages received so far (each complete).
fn received(out: &Path) -> Vec<Received> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    let t = Instant::now();
    for d in &dirs {
        while !d.join("done").exists() {
            assert!(t.elapsed() < Duration::from_secs(20), "message {} incomplete", d.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let r = |d: &Path, n: &str| std::fs::read_to_string(d.join(n)).unwrap_or_default();
    dirs.iter()
        .map(|d| Received {
            envelope_to: r(d, "envelope_to.txt"),
            to: r(d, "to.txt"),
            subject: r(d, "subject.txt"),
            body: r(d, "body.txt"),
            raw: std::fs::read(d.join("raw.eml")).unwrap(),
            attachment_name: r(d, "attachment_name.txt"),
            attachments: r(d, "attachments.txt"),
            attachment: std::fs::read(d.join("attachment.bin")).unwrap_or_default(),
        })
        .collect()
}

#[test]
fn send_delivers_each_notice_once_and_keeps_it_queued_while_the_server_is_down() {
    for kind in KINDS {
        let s = TestStore::new(kind);
        ingest_sample(&s);
        settle(&s, "2019-11-30");
        let names = ["270212122-001-20190930", NOTICE, "270212122-001-20191115"];

        let work = tempfile::tempdir().unwrap();
        let script = work.path().join("sink.py");
        std::fs::write(&script, SINK).unwrap();
        let mail = work.path().join("mail");
        std::fs::create_dir(&mail).unwrap();

        // Find a port the sink can take, then take it down.
        let port = {
            let probe = start_sink(&script, &mail, 0);
            probe.port
        };
        let url = format!("smtp://127.0.0.1:{port}");

        // Server down: nothing delivered, exit non-zero, the notices stay queued.
        let args = ["notices", "send", "--smtp", &url];
        let o = run(&s, &args);
        assert_ne!(o.status.code(), Some(0), "{kind:?}: send with the server down succeeded: {:?}", text(&o));
        assert!(text(&o).1.contains("not delivered"), "{kind:?}: {:?}", text(&o));
        assert!(received(&mail).is_empty());

        // Server up: every notice once, to the merchant, with its ZIP.
        let sink = start_sink(&script, &mail, port);
        assert_eq!(sink.port, port);
        let (_, err) = ok(&s, &args);
        assert!(err.contains("3 sent"), "{kind:?}: {err}");
        let got = received(&mail);
        assert_eq!(got.len(), 3, "{kind:?}: one message per notice");
        for (m, n) in got.iter().zip(names) {
            assert_eq!(m.envelope_to, "shop@example.jp", "{kind:?}: {n}");
            assert_eq!(m.to, "shop@example.jp", "{kind:?}: {n}");
            assert!(m.subject.contains(n), "{kind:?}: subject {:?} names {n}", m.subject);
            assert_eq!(m.attachments, "1", "{kind:?}: {n}: one attachment");
            assert_eq!(m.attachment_name, format!("{n}.zip"));
            assert_eq!(m.attachment, std::fs::read(zip_path(&s, n)).unwrap(), "{kind:?}: the attachment is the issued ZIP");
            assert_eq!(zip_read(&m.attachment, &format!("{n}.pdf"), PW).unwrap(), pdf_of(&s, n), "{kind:?}: {n}: the attachment's PDF");
            assert!(m.body.contains(n), "{kind:?}: the body names the notice: {}", m.body);
            assert!(!m.body.contains(PW), "{kind:?}: the body carries the password");
            assert!(!String::from_utf8_lossy(&m.raw).contains(PW), "{kind:?}: the message carries the password");
        }

        // Again: nothing more is sent.
        let (_, err) = ok(&s, &args);
        assert!(err.contains("0 sent"), "{kind:?}: {err}");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(received(&mail).len(), 3, "{kind:?}: a second send delivered again");

        // A regenerated revision is queued and sent once too.
        ok(&s, &["notices", "regenerate", "--notice", NOTICE, "--reason", "口座変更", "--by", "tanaka", "--date", "2019-11-01"]);
        let (_, err) = ok(&s, &args);
        assert!(err.contains("1 sent"), "{kind:?}: {err}");
        let got = received(&mail);
        assert_eq!(got.len(), 4);
        assert!(got[3].subject.contains("270212122-002-20191031"), "{:?}", got[3].subject);
        assert_eq!(got[3].attachment, std::fs::read(zip_path(&s, "270212122-002-20191031")).unwrap());
        let (_, err) = ok(&s, &args);
        assert!(err.contains("0 sent"), "{kind:?}: {err}");
        drop(sink);
        assert_eq!(received(&mail).len(), 4);
    }
}

#[test]
fn send_with_the_server_down_then_up_sends_what_was_queued_once() {
    // A server that was never there: the second run, once it is up, delivers.
    let s = TestStore::new(Kind::Sqlite);
    ingest_sample(&s);
    settle(&s, "2019-10-29");
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("sink.py");
    std::fs::write(&script, SINK).unwrap();
    let mail = work.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    let port = start_sink(&script, &mail, 0).port;
    let url = format!("smtp://127.0.0.1:{port}");
    for _ in 0..2 {
        let o = run(&s, &["notices", "send", "--smtp", &url]);
        assert_ne!(o.status.code(), Some(0));
    }
    let _sink = start_sink(&script, &mail, port);
    let (_, err) = ok(&s, &["notices", "send", "--smtp", &url]);
    assert!(err.contains("2 sent"), "{err}");
    assert_eq!(received(&mail).len(), 2);
    // A later night issues the next notice: only it is sent.
    settle(&s, "2019-11-30");
    let (_, err) = ok(&s, &["notices", "send", "--smtp", &url]);
    assert!(err.contains("1 sent"), "{err}");
    let got = received(&mail);
    assert_eq!(got.len(), 3);
    assert!(got[2].subject.contains("270212122-001-20191115"), "{:?}", got[2].subject);
}

#[test]
fn no_command_prints_the_password() {
    // Every command of this file goes through `ok`/`run`, which check both
    // streams; here the ones not used elsewhere, with logging turned up.
    let s = TestStore::new(Kind::Sqlite);
    ingest_sample(&s);
    let mut c = s.cmd(&["settle", "--through", "2019-11-30"]);
    let o = c.env("UPAY_LOG", "debug").output().unwrap();
    assert_no_password(&["settle (UPAY_LOG=debug)"], &o);
    assert!(o.status.success());
    for args in [
        vec!["statements", "export", "--format", "json"],
        vec!["statements", "export", "--format", "csv"],
        vec!["payouts", "export", "--date", "2019-10-31", "--format", "json"],
        vec!["statements", "explain", "--merchant", MERCHANT, "--period", "2019-10-01", "--format", "json"],
        vec!["refusals", "export"],
        vec!["audit", "replay"],
        vec!["notices", "restore"],
    ] {
        let mut c = s.cmd(&args);
        let o = c.env("UPAY_LOG", "debug").output().unwrap();
        assert_no_password(&args, &o);
        assert!(o.status.success(), "{args:?}: {:?}", text(&o));
    }
    // A merchants file with a malformed row: the error does not echo the password.
    let bad = std::fs::read_to_string(sample_dir().join("merchants.csv")).unwrap().replace(",123456789,", ",123456789x,");
    let p = s.write("bad-merchants.csv", &bad);
    let o = s.run(&["ingest", "merchants", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_no_password(&["ingest merchants (bad password)"], &o);
    // Nor is it in the event log.
    let db = s.path().join("upay.db");
    let o = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print('\\n'.join(r[0] for r in c.execute('select payload from events')))"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(o.status.success());
    // (The demo requester code 1234567890 contains the sample password's
    // digits: look for the password as a number of its own.)
    let log = String::from_utf8_lossy(&o.stdout).into_owned();
    let alone = log.match_indices(PW).any(|(i, _)| {
        let before = log[..i].chars().next_back().is_some_and(|c| c.is_ascii_digit());
        let after = log[i + PW.len()..].chars().next().is_some_and(|c| c.is_ascii_digit());
        !before && !after
    });
    assert!(!alone, "the password is in the event log");
}

#[test]
fn the_issuer_is_recorded_with_the_notice_and_restore_ignores_todays_config() {
    for kind in KINDS {
        let s = TestStore::new(kind);
        let cfg = s.write(
            "company.toml",
            "[issuer]\nname = \"株式会社テスト決済\"\npostal_code = \"150-0002\"\naddress = \"東京都渋谷区渋谷2-2-2\"\nphone = \"03-0000-0000\"\nsupport = \"サポート窓口 03-0000-0000\"\n",
        );
        ingest_sample(&s);
        ok(&s, &["--config", cfg.to_str().unwrap(), "settle", "--through", "2019-11-30"]);
        let pdf = pdf_of(&s, NOTICE);
        let t = pdftotext(&pdf);
        assert!(t.contains("株式会社テスト決済") && t.contains("150-0002"), "{kind:?}: the configured issuer:\n{t}");
        assert!(!t.contains("株式会社サンプルペイメント"), "{kind:?}: {t}");
        // Restored without that config (the demo issuer would apply today).
        std::fs::remove_file(zip_path(&s, NOTICE)).unwrap();
        ok(&s, &["notices", "restore"]);
        assert_eq!(sha256(&pdf_of(&s, NOTICE)), sha256(&pdf), "{kind:?}: restore re-rendered with today's issuer");
        let o = run(&s, &["audit", "replay"]);
        assert_eq!(o.status.code(), Some(0), "{kind:?}: {:?}", text(&o));
    }
}
