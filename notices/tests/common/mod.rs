//! Shared test documents and helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use chrono::NaiveDate;
use notices::{Issuer, NoticeDocument, NoticeLine};

pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

pub fn line(group: &str, count: u64, sales: i64, fee: i64) -> NoticeLine {
    NoticeLine {
        group: group.into(),
        count,
        sales_yen: sales,
        rate_percent: "3.24".into(),
        fee_yen: fee,
        net_yen: sales - fee,
    }
}

/// The manual's sample notice with the contract's figures (SPEC §4 worked example).
pub fn sample_doc() -> NoticeDocument {
    NoticeDocument {
        notice_no: "270212122-001-20191031".into(),
        issue_date: d(2019, 10, 29),
        merchant_name: "②新PAY切替Uペイ".into(),
        contact_name: "平 次郎".into(),
        issuer: Issuer::demo(),
        period_start: d(2019, 10, 1),
        period_end: d(2019, 10, 15),
        lines: vec![
            line("VISA/MASTER", 3, 14_140, 458),
            line("JCB/その他", 2, 2_000, 64),
        ],
        fee_tax_yen: 10,
        previous_unsettled_yen: -7_126,
        chargebacks_yen: None,
        transfer_fee_yen: 180,
        transfer_fee_tax_yen: 18,
        payout_yen: 8_284,
        bank_name: "りそな銀行".into(),
        branch_name: "証券信託業務支店".into(),
        account_type: "普通".into(),
        account_number_masked: "***567".into(),
        account_holder: "ペイジノ".into(),
        payout_date: d(2019, 10, 31),
    }
}

/// Every optional line: three brand groups, a chargeback, a non-zero
/// 前未精算金額, Mizuho payee (no transfer fee), second half of the month.
pub fn full_doc() -> NoticeDocument {
    // VISA/MASTER 152,300 → fee floor(4,934.52) = 4,934; JCB 38,500 → 1,247;
    // e-money 9,870 → 319; total fee 6,500 → tax round_half_up(6,500/54) = 120.
    // 147,366 + 37,253 + 9,551 − 120 − 3,210 − 12,000 − 0 − 0 = 178,840.
    NoticeDocument {
        notice_no: "123456789-002-20191115".into(),
        issue_date: d(2019, 11, 13),
        merchant_name: "カフェ・ド・サンプル 渋谷店".into(),
        contact_name: "山田 花子".into(),
        issuer: Issuer::demo(),
        period_start: d(2019, 10, 16),
        period_end: d(2019, 10, 31),
        lines: vec![
            line("VISA/MASTER", 12, 152_300, 4_934),
            line("JCB/その他", 4, 38_500, 1_247),
            line("電子マネー", 7, 9_870, 319),
        ],
        fee_tax_yen: 120,
        previous_unsettled_yen: -3_210,
        chargebacks_yen: Some(-12_000),
        transfer_fee_yen: 0,
        transfer_fee_tax_yen: 0,
        payout_yen: 178_840,
        bank_name: "みずほ銀行".into(),
        branch_name: "渋谷支店".into(),
        account_type: "当座".into(),
        account_number_masked: "***321".into(),
        account_holder: "カ)サンプルシヨウテン".into(),
        payout_date: d(2019, 11, 15),
    }
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn golden_dir() -> PathBuf {
    workspace_root().join("fixtures").join("notices")
}

pub fn update_golden() -> bool {
    std::env::var("UPDATE_GOLDEN")
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// Fails with a clear message when a required tool is missing.
pub fn require_tool(tool: &str, package: &str) {
    let ok = Command::new(tool).arg("-h").output().is_ok() || Command::new(tool).output().is_ok();
    assert!(
        ok,
        "`{tool}` is not installed: this test needs it (apt-get install -y {package}; .ci installs it)"
    );
}

/// `pdftotext -layout` of a PDF.
pub fn pdftotext(pdf: &[u8]) -> String {
    require_tool("pdftotext", "poppler-utils");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("run pdftotext");
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 from pdftotext")
}

/// `pdfinfo` of a PDF.
pub fn pdfinfo(pdf: &[u8]) -> String {
    require_tool("pdfinfo", "poppler-utils");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdfinfo")
        .args(["-isodates"])
        .arg(&path)
        .output()
        .expect("run pdfinfo");
    assert!(
        out.status.success(),
        "pdfinfo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Compares `actual` with the golden file `name`; rewrites it with UPDATE_GOLDEN=1.
pub fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if update_golden() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        eprintln!("rewrote {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {} ({e}); run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let mut diff = String::new();
        let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
        for i in 0..e.len().max(a.len()) {
            let (el, al) = (e.get(i).copied(), a.get(i).copied());
            if el != al {
                diff.push_str(&format!(
                    "line {}:\n  expected: {:?}\n  actual:   {:?}\n",
                    i + 1,
                    el.unwrap_or("<none>"),
                    al.unwrap_or("<none>")
                ));
            }
        }
        panic!(
            "golden mismatch for {}\n{diff}\n===== expected =====\n{expected}\n===== actual =====\n{actual}\n\
             (if the change is intended, rerun with UPDATE_GOLDEN=1)",
            path.display()
        );
    }
}

/// Text with all whitespace removed (to find a wrapped value in pdftotext output).
pub fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}
