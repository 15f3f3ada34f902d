//! An independent reader of 総合振込 transfer files, and the writer checked against it.
//!
//! The reader shares no code and no constants with `payout::zengin`: it slices every
//! record by the 1-based, inclusive column positions of the layout, and
//! checks each field's form (digits, transfer alphabet, blanks) on its own.

use chrono::NaiveDate;
use payout::zengin::{write_transfer_file, AccountType, Remitter, Transfer};
use proptest::prelude::*;

// --- The reader --------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    type_code: String,
    code_kind: String,
    requester_code: String,
    requester_name: String,
    date_mmdd: String,
    bank_code: String,
    bank_name: String,
    branch_code: String,
    branch_name: String,
    account_type: String,
    account_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Data {
    bank_code: String,
    bank_name: String,
    branch_code: String,
    branch_name: String,
    clearing_house: String,
    account_type: String,
    account_number: String,
    payee_name: String,
    amount: u64,
    new_code: String,
    customer_code_1: String,
    customer_code_2: String,
    transfer_kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    header: Header,
    data: Vec<Data>,
    trailer_count: u64,
    trailer_total: u64,
}

/// Columns `from..=to` (1-based) of a 120-byte record.
fn cols(rec: &[u8], from: usize, to: usize) -> &[u8] {
    &rec[from - 1..to]
}

fn numeric(rec: &[u8], from: usize, to: usize, what: &str) -> Result<String, String> {
    let f = cols(rec, from, to);
    if f.iter().all(u8::is_ascii_digit) {
        Ok(String::from_utf8(f.to_vec()).unwrap())
    } else {
        Err(format!(
            "{what} (columns {from}-{to}) is not all digits: {f:?}"
        ))
    }
}

fn blank(rec: &[u8], from: usize, to: usize, what: &str) -> Result<(), String> {
    if cols(rec, from, to).iter().all(|&b| b == b' ') {
        Ok(())
    } else {
        Err(format!("{what} (columns {from}-{to}) is not blank"))
    }
}

/// A text field decoded from JIS X 0201, checked against the Zengin name alphabet:
/// upper-case letters, digits, space, `( ) . - /`, ｦ and ｱ..ﾝ, and ﾞ ﾟ right after a kana.
fn text(rec: &[u8], from: usize, to: usize, what: &str) -> Result<String, String> {
    let mut s = String::new();
    let mut prev: Option<u8> = None;
    for &b in cols(rec, from, to) {
        let ok = match b {
            b'A'..=b'Z' | b'0'..=b'9' | b' ' | b'(' | b')' | b'.' | b'-' | b'/' => true,
            0xA6 | 0xB1..=0xDD => true,
            0xDE | 0xDF => matches!(prev, Some(0xA6 | 0xB1..=0xDD)),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "{what} (columns {from}-{to}) has byte {b:#04X} out of place"
            ));
        }
        s.push(if b < 0x80 {
            b as char
        } else {
            char::from_u32(0xFF61 + (b as u32 - 0xA1)).unwrap()
        });
        prev = Some(b);
    }
    Ok(s)
}

fn parse(file: &[u8]) -> Result<Parsed, String> {
    // Every record: exactly 120 bytes, then CR LF, and nothing else in the file.
    if !file.len().is_multiple_of(122) {
        return Err(format!(
            "file length {} is not a multiple of 122",
            file.len()
        ));
    }
    let records: Vec<&[u8]> = file.chunks(122).collect();
    for (i, r) in records.iter().enumerate() {
        if &r[120..] != b"\r\n" {
            return Err(format!(
                "record {} does not end in CR LF after 120 bytes",
                i + 1
            ));
        }
        if r[..120].contains(&b'\r') || r[..120].contains(&b'\n') {
            return Err(format!("record {} holds a CR or LF", i + 1));
        }
    }
    if records.len() < 3 {
        return Err("fewer than header, trailer and end".into());
    }
    let kinds: Vec<u8> = records.iter().map(|r| r[0]).collect();
    let n = records.len();
    if kinds[0] != b'1'
        || kinds[n - 2] != b'8'
        || kinds[n - 1] != b'9'
        || kinds[1..n - 2].iter().any(|&k| k != b'2')
    {
        return Err(format!(
            "record kinds are {:?}, not 1 2* 8 9",
            String::from_utf8_lossy(&kinds)
        ));
    }

    let h = records[0];
    let header = Header {
        type_code: numeric(h, 2, 3, "type code")?,
        code_kind: numeric(h, 4, 4, "code kind")?,
        requester_code: numeric(h, 5, 14, "requester code")?,
        requester_name: text(h, 15, 54, "requester name")?,
        date_mmdd: numeric(h, 55, 58, "transfer date")?,
        bank_code: numeric(h, 59, 62, "remitting bank code")?,
        bank_name: text(h, 63, 77, "remitting bank name")?,
        branch_code: numeric(h, 78, 80, "remitting branch code")?,
        branch_name: text(h, 81, 95, "remitting branch name")?,
        account_type: numeric(h, 96, 96, "account type")?,
        account_number: numeric(h, 97, 103, "account number")?,
    };
    blank(h, 104, 120, "header filler")?;

    let mut data = Vec::new();
    for d in &records[1..n - 2] {
        let rec = Data {
            bank_code: numeric(d, 2, 5, "payee bank code")?,
            bank_name: text(d, 6, 20, "payee bank name")?,
            branch_code: numeric(d, 21, 23, "payee branch code")?,
            branch_name: text(d, 24, 38, "payee branch name")?,
            clearing_house: String::from_utf8(cols(d, 39, 42).to_vec()).unwrap(),
            account_type: numeric(d, 43, 43, "account type")?,
            account_number: numeric(d, 44, 50, "account number")?,
            payee_name: text(d, 51, 80, "payee name")?,
            amount: numeric(d, 81, 90, "amount")?.parse().unwrap(),
            new_code: numeric(d, 91, 91, "new code")?,
            customer_code_1: numeric(d, 92, 101, "customer code 1")?,
            customer_code_2: numeric(d, 102, 111, "customer code 2")?,
            transfer_kind: numeric(d, 112, 112, "transfer kind")?,
        };
        blank(d, 113, 120, "data filler")?;
        data.push(rec);
    }

    let t = records[n - 2];
    let trailer_count: u64 = numeric(t, 2, 7, "record count")?.parse().unwrap();
    let trailer_total: u64 = numeric(t, 8, 19, "total amount")?.parse().unwrap();
    blank(t, 20, 120, "trailer filler")?;
    blank(records[n - 1], 2, 120, "end filler")?;

    if trailer_count != data.len() as u64 {
        return Err(format!(
            "trailer count {trailer_count} but {} data records",
            data.len()
        ));
    }
    let sum: u64 = data.iter().map(|d| d.amount).sum();
    if trailer_total != sum {
        return Err(format!(
            "trailer total {trailer_total} but the data records add up to {sum}"
        ));
    }
    Ok(Parsed {
        header,
        data,
        trailer_count,
        trailer_total,
    })
}

/// The expected content of a text field: the value, space-padded to `width`
/// (half-width values are one byte per char).
fn padded(value: &str, width: usize) -> String {
    format!("{value:<width$}")
}

fn type_digit(t: AccountType) -> &'static str {
    match t {
        AccountType::Ordinary => "1",
        AccountType::Current => "2",
    }
}

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

/// Checks the parsed header against the remitter whose names are already in
/// half-width transfer form and short enough not to be cut.
fn check_header(h: &Header, r: &Remitter, date: NaiveDate) {
    assert_eq!(h.type_code, "21");
    assert_eq!(h.code_kind, "0");
    assert_eq!(h.requester_code, r.requester_code);
    assert_eq!(h.requester_name, padded(&r.name_kana, 40));
    assert_eq!(h.date_mmdd, date.format("%m%d").to_string());
    assert_eq!(h.bank_code, r.bank_code);
    assert_eq!(h.bank_name, padded(&r.bank_name_kana, 15));
    assert_eq!(h.branch_code, r.branch_code);
    assert_eq!(h.branch_name, padded(&r.branch_name_kana, 15));
    assert_eq!(h.account_type, type_digit(r.account_type));
    assert_eq!(h.account_number, r.account_number);
}

/// Checks a data record against its transfer, given the expected half-width names.
fn check_data(d: &Data, t: &Transfer, bank: &str, branch: &str, holder: &str) {
    assert_eq!(d.bank_code, t.bank_code);
    assert_eq!(d.bank_name, padded(bank, 15));
    assert_eq!(d.branch_code, t.branch_code);
    assert_eq!(d.branch_name, padded(branch, 15));
    assert_eq!(d.clearing_house, "    ");
    assert_eq!(d.account_type, type_digit(t.account_type));
    assert_eq!(d.account_number, t.account_number);
    assert_eq!(d.payee_name, padded(holder, 30));
    assert_eq!(d.amount, t.amount_yen as u64);
    assert_eq!(d.new_code, "0");
    assert_eq!(d.customer_code_1, format!("0{}", t.merchant_id));
    assert_eq!(d.customer_code_2, "0000000000");
    assert_eq!(d.transfer_kind, "7");
}

// --- Tests -----------------------------------------------------------------------

#[test]
fn zengin_reader_reads_the_sample_merchant_back() {
    let t = Transfer {
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
    let r = demo_remitter();
    let file = write_transfer_file(&r, date, std::slice::from_ref(&t)).unwrap();
    let p = parse(&file.bytes).unwrap();
    check_header(&p.header, &r, date);
    assert_eq!(p.header.date_mmdd, "1031");
    assert_eq!(p.data.len(), 1);
    check_data(&p.data[0], &t, "ﾘｿﾅ", "ｼﾖｳｹﾝｼﾝﾀｸｷﾞﾖｳﾑ", "ﾍﾟｲｼﾞﾉ");
    assert_eq!((p.trailer_count, p.trailer_total), (1, 8_284));
    assert_eq!((file.record_count, file.total_yen), (1, 8_284));
}

#[test]
fn zengin_reader_reads_cut_and_folded_names_back() {
    let ts = [
        Transfer {
            bank_code: "0001".into(),
            bank_name_kana: "ミズホ".into(),
            branch_code: "110".into(),
            branch_name_kana: "ギンザ".into(),
            account_type: AccountType::Current,
            account_number: "7654321".into(),
            holder_kana: "カ）ヤマグチデンキコウギョウホッカイドウサッポロバス".into(),
            amount_yen: 9_999_999_999,
            merchant_id: "000000001".into(),
        },
        Transfer {
            bank_code: "9900".into(),
            bank_name_kana: "".into(),
            branch_code: "000".into(),
            branch_name_kana: "ニシシンジュクゴチョウメパーク".into(),
            account_type: AccountType::Ordinary,
            account_number: "0000000".into(),
            holder_kana: "ＡＢＣ　ヴィーナス（ド".into(),
            amount_yen: 1,
            merchant_id: "999999999".into(),
        },
    ];
    let date = NaiveDate::from_ymd_opt(2020, 1, 6).unwrap();
    let r = demo_remitter();
    let file = write_transfer_file(&r, date, &ts).unwrap();
    let p = parse(&file.bytes).unwrap();
    check_header(&p.header, &r, date);
    assert_eq!(p.header.date_mmdd, "0106");
    check_data(&p.data[0], &ts[0], "ﾐｽﾞﾎ", "ｷﾞﾝｻﾞ", "ｶ)ﾔﾏｸﾞﾁﾃﾞﾝｷｺｳｷﾞﾖｳﾎﾂｶｲﾄﾞｳｻﾂﾎﾟﾛ");
    check_data(&p.data[1], &ts[1], "", "ﾆｼｼﾝｼﾞﾕｸｺﾞﾁﾖｳﾒ", "ABC ｳﾞｲ-ﾅｽ(ﾄﾞ");
    assert_eq!(p.trailer_total, 10_000_000_000);
}

#[test]
fn zengin_reader_catches_broken_files() {
    let t = Transfer {
        bank_code: "0010".into(),
        bank_name_kana: "".into(),
        branch_code: "999".into(),
        branch_name_kana: "".into(),
        account_type: AccountType::Ordinary,
        account_number: "1234567".into(),
        holder_kana: "ﾍﾟｲｼﾞﾉ".into(),
        amount_yen: 100,
        merchant_id: "270212122".into(),
    };
    let date = NaiveDate::from_ymd_opt(2019, 10, 31).unwrap();
    let good = write_transfer_file(&demo_remitter(), date, &[t])
        .unwrap()
        .bytes;
    assert!(parse(&good).is_ok());
    // Wrong trailer total (column 19 of record 3).
    let mut bad = good.clone();
    bad[2 * 122 + 18] = b'1';
    assert!(parse(&bad).unwrap_err().contains("trailer total"));
    // A LF-only line end.
    let mut bad = good.clone();
    bad.remove(120);
    assert!(parse(&bad).is_err());
    // A stray voiced mark at the start of the payee name (column 51).
    let mut bad = good.clone();
    bad[122 + 50] = 0xDE;
    assert!(parse(&bad).unwrap_err().contains("payee name"));
}

/// The golden files are well-formed by the reader's own rules, independently of
/// the writer that produced them.
#[test]
fn zengin_reader_accepts_the_golden_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/zengin");
    for (name, count, total) in [
        ("sample-merchant-20191031.txt", 1, 8_284),
        ("mixed-20191129.txt", 4, 10_001_734_567),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let p = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((p.trailer_count, p.trailer_total), (count, total), "{name}");
        check_header(
            &p.header,
            &demo_remitter(),
            NaiveDate::parse_from_str(&name[name.len() - 12..name.len() - 4], "%Y%m%d").unwrap(),
        );
    }
}

// --- Property: random transfers read back ------------------------------------

/// Input spellings and the transfer form each must become; no unit is a lone mark,
/// so units never combine with their neighbours.
const UNITS: &[(&str, &str)] = &[
    ("ア", "ｱ"),
    ("ｱ", "ｱ"),
    ("ガ", "ｶﾞ"),
    ("ｶﾞ", "ｶﾞ"),
    ("カ゛", "ｶﾞ"),
    ("パ", "ﾊﾟ"),
    ("ﾎﾟ", "ﾎﾟ"),
    ("ヴ", "ｳﾞ"),
    ("ッ", "ﾂ"),
    ("ｯ", "ﾂ"),
    ("ャ", "ﾔ"),
    ("ｮ", "ﾖ"),
    ("ヵ", "ｶ"),
    ("ヶ", "ｹ"),
    ("ヲ", "ｦ"),
    ("ン", "ﾝ"),
    ("ﾝ", "ﾝ"),
    ("ー", "-"),
    ("ｰ", "-"),
    ("ド", "ﾄﾞ"),
    ("ピ", "ﾋﾟ"),
    ("Ａ", "A"),
    ("Z", "Z"),
    ("０", "0"),
    ("7", "7"),
    ("（", "("),
    (")", ")"),
    ("．", "."),
    ("/", "/"),
    ("－", "-"),
    ("　", " "),
    (" ", " "),
];

/// Index of the first unit that is not a space (names must not be blank).
const NON_SPACE_UNITS: usize = 30;

/// Joins units into (input, expected field content) with the expected content cut
/// unit by unit to `width` bytes (a unit of kana + mark never splits).
fn name_of(units: &[usize], width: usize) -> (String, String) {
    let mut input = String::new();
    let mut expected = String::new();
    let mut full = true;
    for &u in units {
        let (i, e) = UNITS[u];
        input.push_str(i);
        if full && expected.chars().count() + e.chars().count() <= width {
            expected.push_str(e);
        } else {
            full = false;
        }
    }
    (input, expected)
}

fn name_strategy(min: usize, max: usize, width: usize) -> impl Strategy<Value = (String, String)> {
    (
        0..NON_SPACE_UNITS,
        prop::collection::vec(0..UNITS.len(), min..=max),
    )
        .prop_map(move |(first, rest)| {
            let mut units = vec![first];
            units.extend(rest);
            name_of(&units, width)
        })
}

fn optional_name(width: usize) -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        Just((String::new(), String::new())),
        name_strategy(0, 12, width)
    ]
}

fn digits(n: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..10, n)
        .prop_map(|v| v.into_iter().map(|d| (b'0' + d) as char).collect())
}

#[derive(Debug, Clone)]
struct Case {
    transfer: Transfer,
    bank: String,
    branch: String,
    holder: String,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (digits(4), optional_name(15), digits(3), optional_name(15)),
        (any::<bool>(), digits(7), name_strategy(0, 24, 30)),
        (1i64..=9_999_999_999, digits(9)),
    )
        .prop_map(
            |(
                (bank_code, bank, branch_code, branch),
                (current, account, holder),
                (amount, mid),
            )| Case {
                transfer: Transfer {
                    bank_code,
                    bank_name_kana: bank.0,
                    branch_code,
                    branch_name_kana: branch.0,
                    account_type: if current {
                        AccountType::Current
                    } else {
                        AccountType::Ordinary
                    },
                    account_number: account,
                    holder_kana: holder.0,
                    amount_yen: amount,
                    merchant_id: mid,
                },
                bank: bank.1,
                branch: branch.1,
                holder: holder.1,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn zengin_random_transfers_read_back(
        cases in prop::collection::vec(case(), 0..40),
        day in 0u32..3650,
    ) {
        let date = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap() + chrono::Days::new(day.into());
        let transfers: Vec<Transfer> = cases.iter().map(|c| c.transfer.clone()).collect();
        let r = demo_remitter();
        let file = write_transfer_file(&r, date, &transfers).unwrap();

        // Every record is 120 bytes + CR LF: header, data…, trailer, end.
        prop_assert_eq!(file.bytes.len(), (transfers.len() + 3) * 122);
        for rec in file.bytes.chunks(122) {
            prop_assert_eq!(&rec[120..], b"\r\n");
        }
        let p = parse(&file.bytes).map_err(TestCaseError::fail)?;
        check_header(&p.header, &r, date);

        let amounts: Vec<u64> = p.data.iter().map(|d| d.amount).collect();
        let expected: Vec<u64> = transfers.iter().map(|t| t.amount_yen as u64).collect();
        prop_assert_eq!(&amounts, &expected);
        let sum: u64 = expected.iter().sum();
        prop_assert_eq!(p.trailer_total, sum);
        prop_assert_eq!(p.trailer_count, transfers.len() as u64);
        prop_assert_eq!(file.total_yen as u64, sum);
        prop_assert_eq!(file.record_count, transfers.len());
        for (d, c) in p.data.iter().zip(&cases) {
            check_data(d, &c.transfer, &c.bank, &c.branch, &c.holder);
        }
    }
}
