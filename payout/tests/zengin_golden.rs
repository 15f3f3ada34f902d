//! Golden transfer files in `fixtures/zengin/`.
//!
//! The files are the exact bytes (JIS X 0201, CR LF) the writer must produce. On a
//! mismatch the differing records are printed, expected vs actual, as text (half-width
//! katakana shown as such, other non-ASCII bytes as `\xNN`) and in hex. Rewrite the
//! files after a deliberate change with `UPDATE_GOLDEN=1 cargo test -p payout zengin`
//! and review the diff.

use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::NaiveDate;
use payout::zengin::{write_transfer_file, AccountType, Remitter, Transfer};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/zengin")
        .join(name)
}

/// One record as readable text: ASCII as is, 0xA1..=0xDF as half-width katakana.
fn show(record: &[u8]) -> String {
    let mut s = String::new();
    for &b in record {
        match b {
            0x20..=0x7E => s.push(b as char),
            0xA1..=0xDF => s.push(char::from_u32(0xFF61 + u32::from(b) - 0xA1).unwrap()),
            _ => write!(s, "\\x{b:02X}").unwrap(),
        }
    }
    s
}

fn hex_of(record: &[u8]) -> String {
    record
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits a file after each CR LF (a trailing piece without one is kept as is).
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\r' && bytes[i + 1] == b'\n' {
            out.push(&bytes[start..i + 2]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    if start < bytes.len() {
        out.push(&bytes[start..]);
    }
    out
}

fn compare_golden(name: &str, actual: &[u8]) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        eprintln!("rewrote {}", path.display());
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {}: {e} (create it with UPDATE_GOLDEN=1)",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let (exp, act) = (lines(&expected), lines(actual));
    let mut report = format!(
        "{name}: the written file differs from the golden file {} ({} vs {} bytes, {} vs {} records)\n",
        path.display(),
        expected.len(),
        actual.len(),
        exp.len(),
        act.len()
    );
    for i in 0..exp.len().max(act.len()) {
        let (e, a) = (exp.get(i).copied(), act.get(i).copied());
        if e == a {
            continue;
        }
        let column = match (e, a) {
            (Some(e), Some(a)) => {
                e.iter()
                    .zip(a)
                    .position(|(x, y)| x != y)
                    .unwrap_or(e.len().min(a.len()))
                    + 1
            }
            _ => 1,
        };
        writeln!(report, "record {} differs from column {column}:", i + 1).unwrap();
        for (label, rec) in [("expected", e), ("actual  ", a)] {
            match rec {
                Some(r) => {
                    writeln!(report, "  {label} |{}|", show(r)).unwrap();
                    writeln!(report, "  {label} {}", hex_of(r)).unwrap();
                }
                None => writeln!(report, "  {label} (no record)").unwrap(),
            }
        }
    }
    report.push_str("If the change is intended, rerun with UPDATE_GOLDEN=1 and review the diff.");
    panic!("{report}");
}

/// SPEC §7 demo remitter, spelled as in the config.
fn demo_remitter() -> Remitter {
    Remitter {
        requester_code: "1234567890".into(),
        name_kana: "ｶ)ｻﾝﾌﾟﾙﾍﾟｲﾒﾝﾄ".into(),
        bank_code: "0001".into(),
        bank_name_kana: "ﾐｽﾞﾎ".into(),
        branch_code: "001".into(),
        branch_name_kana: "ﾎﾝﾃﾝ".into(),
        account_type: AccountType::Ordinary,
        account_number: "1234567".into(),
    }
}

fn data_records(bytes: &[u8]) -> Vec<&[u8]> {
    lines(bytes).into_iter().filter(|r| r[0] == b'2').collect()
}

/// (a) The sample merchant of `/work/shared/fixtures/sample-notice/merchants.csv`
/// paid 8,284 yen on 2019-10-31.
#[test]
fn zengin_golden_sample_merchant() {
    let transfer = Transfer {
        bank_code: "0010".into(),
        bank_name_kana: "リソナ".into(),
        branch_code: "999".into(),
        branch_name_kana: "ショウケンシンタクギョウム".into(),
        account_type: AccountType::Ordinary,
        account_number: "1234567".into(),
        holder_kana: "ペイジノ".into(),
        amount_yen: 8_284,
        merchant_id: "270212122".into(),
    };
    let date = NaiveDate::from_ymd_opt(2019, 10, 31).unwrap();
    let file = write_transfer_file(&demo_remitter(), date, &[transfer]).unwrap();
    assert_eq!((file.record_count, file.total_yen), (1, 8_284));

    let data = data_records(&file.bytes)[0];
    // ショウケンシンタクギョウム is 13 kana; with small ョ written large and ギ as ｷﾞ it
    // takes 14 bytes, so it fits the 15-byte field without a cut.
    assert_eq!(show(&data[23..38]), "ｼﾖｳｹﾝｼﾝﾀｸｷﾞﾖｳﾑ ");
    assert_eq!(show(&data[50..80]), format!("{:<30}", "ﾍﾟｲｼﾞﾉ"));
    compare_golden("sample-merchant-20191031.txt", &file.bytes);
}

/// (b) Both account types, a Mizuho payee, voiced and small kana, full-width Latin,
/// blank bank/branch names, the largest amount, a holder cut at 30 bytes where the
/// cut falls on a voiced mark, and a branch cut at 15 bytes on a semi-voiced mark.
#[test]
fn zengin_golden_mixed() {
    let transfers = vec![
        Transfer {
            bank_code: "0001".into(),
            bank_name_kana: "ミズホ".into(),
            branch_code: "110".into(),
            branch_name_kana: "ギンザ".into(),
            account_type: AccountType::Current,
            account_number: "7654321".into(),
            holder_kana: "カ）ジェーシービーショップ".into(),
            amount_yen: 1_234_567,
            merchant_id: "100000001".into(),
        },
        Transfer {
            bank_code: "0005".into(),
            bank_name_kana: "ミツビシユーエフジェイ".into(),
            branch_code: "123".into(),
            branch_name_kana: "ニシシンジュクゴチョウメパーク".into(),
            account_type: AccountType::Ordinary,
            account_number: "0000001".into(),
            holder_kana: "カ）ヤマグチデンキコウギョウホッカイドウサッポロバス".into(),
            amount_yen: 500_000,
            merchant_id: "100000002".into(),
        },
        Transfer {
            bank_code: "0009".into(),
            bank_name_kana: "".into(),
            branch_code: "250".into(),
            branch_name_kana: "".into(),
            account_type: AccountType::Ordinary,
            account_number: "1111111".into(),
            holder_kana: "ＡＢＣトレーディング（ユ".into(),
            amount_yen: 1,
            merchant_id: "100000003".into(),
        },
        Transfer {
            bank_code: "0010".into(),
            bank_name_kana: "ﾘｿﾅ".into(),
            branch_code: "999".into(),
            branch_name_kana: "ｼｮｳｹﾝｼﾝﾀｸｷﾞｮｳﾑ".into(),
            account_type: AccountType::Current,
            account_number: "9999999".into(),
            holder_kana: "ｷｬｯｼｭﾚｽ ﾍﾟｲ(ｶ".into(),
            amount_yen: 9_999_999_999,
            merchant_id: "270212122".into(),
        },
    ];
    let date = NaiveDate::from_ymd_opt(2019, 11, 29).unwrap();
    let file = write_transfer_file(&demo_remitter(), date, &transfers).unwrap();
    assert_eq!(file.record_count, 4);
    assert_eq!(file.total_yen, 1_234_567 + 500_000 + 1 + 9_999_999_999);

    let data = data_records(&file.bytes);
    // Mizuho payee, 当座, voiced and small kana.
    assert_eq!(&data[0][1..5], b"0001");
    assert_eq!(data[0][42], b'2');
    assert_eq!(show(&data[0][50..80]), format!("{:<30}", "ｶ)ｼﾞｴ-ｼ-ﾋﾞ-ｼﾖﾂﾌﾟ"));
    // The holder converts to 32 bytes whose 30th is ﾊ and 31st its ﾞ: both go.
    assert_eq!(show(&data[1][50..80]), "ｶ)ﾔﾏｸﾞﾁﾃﾞﾝｷｺｳｷﾞﾖｳﾎﾂｶｲﾄﾞｳｻﾂﾎﾟﾛ ");
    // The branch converts to 18 bytes whose 15th is ﾊ and 16th its ﾟ: both go.
    assert_eq!(show(&data[1][23..38]), "ﾆｼｼﾝｼﾞﾕｸｺﾞﾁﾖｳﾒ ");
    assert_eq!(data[1][42], b'1');
    // Empty kana names give blank fields; full-width Latin folds to ASCII.
    assert_eq!(&data[2][5..20], b"               ");
    assert_eq!(&data[2][23..38], b"               ");
    assert_eq!(show(&data[2][50..80]), format!("{:<30}", "ABCﾄﾚ-ﾃﾞｲﾝｸﾞ(ﾕ"));
    // Half-width input with small kana; the largest amount.
    assert_eq!(show(&data[3][50..80]), format!("{:<30}", "ｷﾔﾂｼﾕﾚｽ ﾍﾟｲ(ｶ"));
    assert_eq!(&data[3][80..90], b"9999999999");
    compare_golden("mixed-20191129.txt", &file.bytes);
}

/// The golden comparison itself reports a readable difference.
#[test]
fn zengin_golden_mismatch_report_is_readable() {
    let rec = [b'2', 0xB6, 0xDE, b' ', 0x0D, 0x0A];
    assert_eq!(show(&rec), "2ｶﾞ \\x0D\\x0A");
    assert_eq!(hex_of(&rec[..3]), "32 B6 DE");
    assert_eq!(lines(b"ab\r\ncd\r\n"), vec![&b"ab\r\n"[..], &b"cd\r\n"[..]]);
}
