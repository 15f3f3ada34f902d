//! Bank transfer files (全銀 総合振込) end to end: what `upay settle` writes into
//! the transfers folder, read back with a reader written here from the layout of
//! docs/zengin.md (it shares no code with the product's writer), compared with
//! the statements and with `upay payouts export`.
mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;

// ------------------------------------------------------------- the reader

const RECORD: usize = 120;

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
    amount: i64,
    new_code: String,
    customer_code1: String,
    customer_code2: String,
    transfer_kind: String,
}

#[derive(Debug)]
struct ZenginFile {
    header: Header,
    data: Vec<Data>,
    trailer_count: u64,
    trailer_total: i64,
}

/// JIS X 0201 bytes as text: ASCII as is, 0xA1–0xDF as half-width katakana.
fn jis(b: &[u8]) -> String {
    b.iter()
        .map(|&c| match c {
            0x20..=0x7E => c as char,
            0xA1..=0xDF => char::from_u32(0xFF61 + u32::from(c - 0xA1)).unwrap(),
            _ => panic!("byte {c:#04x} is not JIS X 0201 text"),
        })
        .collect()
}

/// Columns `from..=to`, 1-based as in the bank's layout.
fn col(r: &[u8], from: usize, to: usize) -> &[u8] {
    &r[from - 1..to]
}

fn digits(r: &[u8], from: usize, to: usize, what: &str) -> String {
    let s = col(r, from, to);
    assert!(s.iter().all(u8::is_ascii_digit), "{what} (columns {from}-{to}) is not numeric: {:?}", jis(s));
    jis(s)
}

fn text_field(r: &[u8], from: usize, to: usize) -> String {
    jis(col(r, from, to)).trim_end_matches(' ').to_string()
}

fn blank(r: &[u8], from: usize, to: usize, what: &str) {
    assert!(col(r, from, to).iter().all(|&b| b == b' '), "{what} (columns {from}-{to}) is not blank: {:?}", jis(col(r, from, to)));
}

fn parse_zengin(bytes: &[u8]) -> ZenginFile {
    assert!(!bytes.is_empty(), "empty transfer file");
    assert_eq!(bytes.len() % (RECORD + 2), 0, "the file is not made of 120-byte records with CR LF ({} bytes)", bytes.len());
    let records: Vec<&[u8]> = bytes
        .chunks(RECORD + 2)
        .enumerate()
        .map(|(i, c)| {
            assert_eq!(&c[RECORD..], b"\r\n", "record {} does not end in CR LF after 120 bytes", i + 1);
            assert!(!c[..RECORD].contains(&b'\r') && !c[..RECORD].contains(&b'\n'), "record {} holds a line break", i + 1);
            &c[..RECORD]
        })
        .collect();
    assert!(records.len() >= 3, "a file needs a header, a trailer and an end record");
    let kinds: Vec<u8> = records.iter().map(|r| r[0]).collect();
    assert_eq!(kinds[0], b'1', "the first record is the header");
    assert_eq!(kinds[kinds.len() - 1], b'9', "the last record is the end record");
    assert_eq!(kinds[kinds.len() - 2], b'8', "the trailer comes before the end");
    assert!(kinds[1..kinds.len() - 2].iter().all(|&k| k == b'2'), "only data records between header and trailer: {:?}", jis(&kinds));

    let h = records[0];
    let header = Header {
        type_code: digits(h, 2, 3, "type code"),
        code_kind: digits(h, 4, 4, "code kind"),
        requester_code: digits(h, 5, 14, "requester code"),
        requester_name: text_field(h, 15, 54),
        date_mmdd: digits(h, 55, 58, "transfer date"),
        bank_code: digits(h, 59, 62, "remitting bank"),
        bank_name: text_field(h, 63, 77),
        branch_code: digits(h, 78, 80, "remitting branch"),
        branch_name: text_field(h, 81, 95),
        account_type: digits(h, 96, 96, "account type"),
        account_number: digits(h, 97, 103, "account number"),
    };
    blank(h, 104, 120, "header filler");

    let data = records[1..records.len() - 2]
        .iter()
        .map(|r| {
            blank(r, 113, 120, "data filler");
            Data {
                bank_code: digits(r, 2, 5, "payee bank"),
                bank_name: text_field(r, 6, 20),
                branch_code: digits(r, 21, 23, "payee branch"),
                branch_name: text_field(r, 24, 38),
                clearing_house: jis(col(r, 39, 42)),
                account_type: digits(r, 43, 43, "account type"),
                account_number: digits(r, 44, 50, "account number"),
                payee_name: text_field(r, 51, 80),
                amount: digits(r, 81, 90, "amount").parse().unwrap(),
                new_code: digits(r, 91, 91, "new code"),
                customer_code1: digits(r, 92, 101, "customer code 1"),
                customer_code2: digits(r, 102, 111, "customer code 2"),
                transfer_kind: digits(r, 112, 112, "transfer kind"),
            }
        })
        .collect::<Vec<_>>();

    let t = records[records.len() - 2];
    let trailer_count: u64 = digits(t, 2, 7, "record count").parse().unwrap();
    let trailer_total: i64 = digits(t, 8, 19, "total").parse().unwrap();
    blank(t, 20, 120, "trailer filler");
    blank(records[records.len() - 1], 2, 120, "end filler");

    assert_eq!(trailer_count, data.len() as u64, "the trailer's count is the number of data records");
    assert_eq!(trailer_total, data.iter().map(|d| d.amount).sum::<i64>(), "the trailer's total is the sum of the data records");
    ZenginFile { header, data, trailer_count, trailer_total }
}

// ---------------------------------------------------------------- helpers

type Row = HashMap<String, String>;

fn csv_rows(csv: &str) -> Vec<Row> {
    let mut lines = csv.lines();
    let header: Vec<String> = lines.next().expect("a header row").split(',').map(str::to_string).collect();
    lines
        .map(|l| {
            let cells: Vec<String> = l.split(',').map(str::to_string).collect();
            assert_eq!(cells.len(), header.len(), "row {l:?}");
            header.iter().cloned().zip(cells).collect()
        })
        .collect()
}

fn statements(s: &TestStore) -> Vec<Row> {
    csv_rows(&s.ok(&["statements", "export", "--format", "csv"]))
}

fn file_of(s: &TestStore, yyyymmdd: &str) -> Vec<u8> {
    let p = s.path().join("transfers").join(format!("zengin-{yyyymmdd}.txt"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn transfer_files(s: &TestStore) -> Vec<String> {
    let dir = s.path().join("transfers");
    if !dir.exists() {
        return Vec::new();
    }
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect();
    v.sort();
    v
}

fn ingest_sample(s: &TestStore) {
    s.ok(&["ingest", "merchants", sample_dir().join("merchants.csv").to_str().unwrap()]);
    s.ok(&["ingest", "events", sample_dir().join("events.csv").to_str().unwrap()]);
}

/// The payouts export (CSV and JSON agree), as rows.
fn payouts(s: &TestStore, date: &str) -> Vec<Row> {
    let csv = csv_rows(&s.ok(&["payouts", "export", "--date", date, "--format", "csv"]));
    let json: serde_json::Value = serde_json::from_str(&s.ok(&["payouts", "export", "--date", date, "--format", "json"])).expect("JSON");
    let json = json.as_array().expect("an array");
    assert_eq!(csv.len(), json.len(), "CSV and JSON list the same transfers");
    for (c, j) in csv.iter().zip(json) {
        for (k, v) in c {
            let jv = &j[k.as_str()];
            let js = match jv {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => panic!("JSON lacks {k}"),
                other => other.to_string(),
            };
            assert_eq!(&js, v, "payouts {date}: column {k}: CSV {v:?}, JSON {jv}");
        }
        assert!(j["amount"].is_number(), "JSON amounts are numbers: {j}");
    }
    csv
}

/// Every transfer of the file is a row of the payouts export, in the same order.
fn assert_payouts_match_file(p: &[Row], f: &ZenginFile, date: &str) {
    assert_eq!(p.len(), f.data.len(), "payouts {date}: one row per data record");
    for (row, d) in p.iter().zip(&f.data) {
        assert_eq!(row["payout_date"], date);
        assert_eq!(format!("{:0>10}", row["merchant_id"]), d.customer_code1, "{row:?}");
        assert_eq!(row["bank_code"], d.bank_code, "{row:?}");
        assert_eq!(row["branch_code"], d.branch_code, "{row:?}");
        assert_eq!(row["account_number"], format!("***{}", &d.account_number[4..]), "{row:?}: the masked account");
        assert_eq!(row["amount"], d.amount.to_string(), "{row:?}");
        let code = match row["account_type"].as_str() {
            "普通" => "1",
            "当座" => "2",
            other => panic!("account type {other}"),
        };
        assert_eq!(code, d.account_type);
        assert!(!row["bank_name"].is_empty() && !row["branch_name"].is_empty(), "{row:?}");
    }
}

// ------------------------------------------------------------ the sample

#[test]
fn sample_transfer_file_pays_the_statement_on_both_stores() {
    let mut files = Vec::new();
    for kind in KINDS {
        let s = TestStore::new(kind);
        ingest_sample(&s);
        s.ok(&["settle", "--through", "2019-11-30"]);
        assert_eq!(transfer_files(&s), vec!["zengin-20190930.txt", "zengin-20191031.txt", "zengin-20191115.txt"], "{kind:?}");
        let bytes = file_of(&s, "20191031");
        let f = parse_zengin(&bytes);

        // The demo remitter.
        let h = &f.header;
        assert_eq!(h.type_code, "21");
        assert_eq!(h.code_kind, "0");
        assert_eq!(h.requester_code, "1234567890");
        assert_eq!(h.requester_name, "ｶ)ｻﾝﾌﾟﾙﾍﾟｲﾒﾝﾄ");
        assert_eq!(h.date_mmdd, "1031");
        assert_eq!((h.bank_code.as_str(), h.bank_name.as_str()), ("0001", "ﾐｽﾞﾎ"));
        assert_eq!((h.branch_code.as_str(), h.branch_name.as_str()), ("001", "ﾎﾝﾃﾝ"));
        assert_eq!((h.account_type.as_str(), h.account_number.as_str()), ("1", "1234567"));

        // One transfer: the sample merchant's account.
        assert_eq!(f.data.len(), 1, "{kind:?}");
        let d = &f.data[0];
        assert_eq!(d.bank_code, "0010");
        assert_eq!(d.bank_name, "ﾘｿﾅ");
        assert_eq!(d.branch_code, "999");
        assert_eq!(d.branch_name, "ｼﾖｳｹﾝｼﾝﾀｸｷﾞﾖｳﾑ");
        assert_eq!(d.clearing_house, "    ");
        assert_eq!(d.account_type, "1");
        assert_eq!(d.account_number, "1234567");
        assert_eq!(d.payee_name, "ﾍﾟｲｼﾞﾉ");
        assert_eq!(d.amount, 8284);
        assert_eq!(d.new_code, "0");
        assert_eq!(d.customer_code1, "0270212122");
        assert_eq!(d.customer_code2, "0000000000");
        assert_eq!(d.transfer_kind, "7");
        assert_eq!((f.trailer_count, f.trailer_total), (1, 8284));

        // The trailer total is the statement's payout.
        let st = statements(&s);
        let row = st.iter().find(|r| r["payout_date"] == "2019-10-31").unwrap();
        assert_eq!(row["payout"], "8284");
        assert_eq!(f.trailer_total.to_string(), row["payout"]);

        // Every payout date with a payout has its file, paying its statements.
        for (file, date) in [("20190930", "2019-09-30"), ("20191115", "2019-11-15")] {
            let g = parse_zengin(&file_of(&s, file));
            let paid: i64 = st.iter().filter(|r| r["payout_date"] == date).map(|r| r["payout"].parse::<i64>().unwrap()).sum();
            assert_eq!(g.trailer_total, paid, "{kind:?}: {file}");
            assert_eq!(g.header.date_mmdd, &file[4..]);
        }
        // The payout date with nothing to pay (the carried cycle) has no file.
        assert!(!s.path().join("transfers/zengin-20191015.txt").exists());

        // Same bytes as the writer's golden file for this merchant and date.
        let golden = std::fs::read(repo_fixtures().join("zengin/sample-merchant-20191031.txt")).unwrap();
        assert!(bytes == golden, "{kind:?}: the batch's file differs from fixtures/zengin/sample-merchant-20191031.txt\nexpected:\n{}\nactual:\n{}", jis_lines(&golden), jis_lines(&bytes));

        // Re-running the batch leaves the bytes as they are.
        s.ok(&["settle", "--through", "2019-11-30"]);
        s.ok(&["settle", "--through", "2019-12-31"]);
        assert_eq!(file_of(&s, "20191031"), bytes, "{kind:?}: a re-run changed the file");

        // The payouts export lists what the file pays.
        let p = payouts(&s, "2019-10-31");
        assert_payouts_match_file(&p, &f, "2019-10-31");
        let r = &p[0];
        assert_eq!(r["merchant_id"], "270212122");
        assert_eq!(r["bank_name"], "りそな銀行");
        assert_eq!(r["branch_name"], "証券信託業務支店");
        assert_eq!(r["account_number"], "***567");
        assert_eq!(r["amount"], "8284");
        assert!(!p.iter().flat_map(|r| r.values()).any(|v| v.contains("1234567")), "the export shows the whole account number: {p:?}");
        files.push(bytes);
    }
    assert_eq!(files[0], files[1], "SQLite and PostgreSQL write the same file");
}

fn jis_lines(b: &[u8]) -> String {
    b.chunks(RECORD + 2).map(|c| jis(&c[..c.len().min(RECORD)])).collect::<Vec<_>>().join("\n")
}

// ------------------------------------------------- several merchants, one date

/// Merchants deliberately not in id order; D's only sale is too small to pay
/// the transfer fee (it is carried); E is paid on the next payout date.
const MERCHANTS: &str = "\
100000003,テスト商店C,担当 三郎,c@example.jp,0005,三菱UFJ銀行,010,新宿支店,普通,3333333,テストシヨウテンシ-,3.24,3.24,3.24,inclusive-8,333333333,ミツビシユ-エフジエイ,シンジユク
100000001,テスト商店A,担当 一郎,a@example.jp,0001,みずほ銀行,001,東京営業部,当座,1111111,テストシヨウテンエ-,3.24,3.24,3.24,inclusive-8,111111111,ミズホ,トウキヨウ
100000004,テスト商店D,担当 四郎,d@example.jp,0009,三井住友銀行,025,渋谷支店,普通,4444444,テストシヨウテンデイ-,3.24,3.24,3.24,inclusive-8,444444444,ミツイスミトモ,シブヤ
100000002,テスト商店B,担当 二郎,b@example.jp,0009,三井住友銀行,025,渋谷支店,普通,2222222,テストシヨウテンビ-,3.24,3.24,3.24,inclusive-8,222222222,,
100000005,テスト商店E,担当 五郎,e@example.jp,0010,りそな銀行,101,大阪営業部,普通,5555555,テストシヨウテンイ-,3.24,3.24,3.24,inclusive-8,555555555,リソナ,オオサカ
";

const EVENTS: &str = "\
m1,sale,ta1,100000001,2019-10-02T10:00:00+09:00,VISA,10000,tok_1,,
m2,sale,ta2,100000001,2019-10-05T10:00:00+09:00,JCB,3000,tok_2,,
m3,sale,tb1,100000002,2019-10-10T10:00:00+09:00,VISA,50000,tok_3,,
m4,sale,tb2,100000002,2019-10-11T10:00:00+09:00,MASTERCARD,9000,tok_4,,
m5,void,tb2,,2019-10-12T10:00:00+09:00,,,tok_4,,
m6,sale,tc1,100000003,2019-10-03T10:00:00+09:00,QUICPAY,7000,tok_5,,
m7,sale,td1,100000004,2019-10-04T10:00:00+09:00,VISA,100,tok_6,,
m8,sale,te1,100000005,2019-10-20T10:00:00+09:00,VISA,8000,tok_7,,
m9,void,tx9,,2019-10-20T10:00:00+09:00,,,tok_9,,
";

fn several(kind: Kind) -> TestStore {
    let s = TestStore::new(kind);
    let m = s.write("merchants.csv", &format!("{MERCHANTS_HEADER}\n{MERCHANTS}"));
    let e = s.write("events.csv", &format!("{EVENTS_HEADER}\n{EVENTS}"));
    s.ok(&["ingest", "merchants", m.to_str().unwrap()]);
    s.ok(&["ingest", "events", e.to_str().unwrap()]);
    s.ok(&["settle", "--through", "2019-11-30"]);
    s
}

#[test]
fn several_merchants_paid_on_one_date_in_merchant_order() {
    let mut files: Vec<Vec<u8>> = Vec::new();
    for kind in KINDS {
        let s = several(kind);
        let st = statements(&s);
        let bytes = file_of(&s, "20191031");
        let f = parse_zengin(&bytes);

        // Ordered by merchant id; the carried merchant D has no record.
        let ids: Vec<&str> = f.data.iter().map(|d| d.customer_code1.as_str()).collect();
        assert_eq!(ids, vec!["0100000001", "0100000002", "0100000003"], "{kind:?}");
        let on_date: Vec<&Row> = st.iter().filter(|r| r["payout_date"] == "2019-10-31").collect();
        let d = on_date.iter().find(|r| r["merchant_id"] == "100000004").expect("D has a statement");
        assert_eq!((d["payout"].as_str(), d["carry_out"].as_str()), ("0", "97"), "{kind:?}: D's balance is carried");
        let paid: BTreeMap<String, i64> = on_date.iter().filter(|r| r["payout"] != "0").map(|r| (format!("{:0>10}", r["merchant_id"]), r["payout"].parse().unwrap())).collect();
        assert_eq!(paid.keys().map(String::as_str).collect::<Vec<_>>(), ids, "{kind:?}: a record for every payout and only for them");
        for rec in &f.data {
            assert_eq!(rec.amount, paid[&rec.customer_code1], "{kind:?}: {rec:?}");
        }
        assert_eq!(f.trailer_total, paid.values().sum::<i64>(), "{kind:?}: trailer total = Σ payouts of 2019-10-31");
        assert_eq!(f.trailer_count, 3);
        // The amounts, worked out by hand from SPEC §4:
        // A (Mizuho, no transfer fee): 10000 - 324 + 3000 - 97 - round(421/54)=8 = 12571
        // B: 50000 - 1620 - round(1620/54)=30 - 180 - 18 = 48152 (the 9000 sale cancelled in its cycle)
        // C: 7000 - 226 - round(226/54)=4 - 180 - 18 = 6572
        assert_eq!(f.data.iter().map(|d| d.amount).collect::<Vec<_>>(), vec![12571, 48152, 6572], "{kind:?}");
        assert_eq!(f.trailer_total, 67295);

        // The fields of each record are the merchant's account.
        let a = &f.data[0];
        assert_eq!((a.bank_code.as_str(), a.branch_code.as_str(), a.account_type.as_str(), a.account_number.as_str()), ("0001", "001", "2", "1111111"));
        assert_eq!((a.bank_name.as_str(), a.branch_name.as_str(), a.payee_name.as_str()), ("ﾐｽﾞﾎ", "ﾄｳｷﾖｳ", "ﾃｽﾄｼﾖｳﾃﾝｴ-"));
        let b = &f.data[1];
        assert_eq!((b.bank_code.as_str(), b.branch_code.as_str(), b.account_type.as_str(), b.account_number.as_str()), ("0009", "025", "1", "2222222"));
        assert_eq!((b.bank_name.as_str(), b.branch_name.as_str()), ("", ""), "B has no _kana names: blank");
        let c = &f.data[2];
        assert_eq!((c.bank_code.as_str(), c.bank_name.as_str(), c.branch_name.as_str()), ("0005", "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ", "ｼﾝｼﾞﾕｸ"));

        // E is paid on 2019-11-15, alone; D never (its balance stays carried).
        let g = parse_zengin(&file_of(&s, "20191115"));
        assert_eq!(g.data.iter().map(|d| (d.customer_code1.as_str(), d.amount)).collect::<Vec<_>>(), vec![("0100000005", 7538)], "{kind:?}");
        for name in transfer_files(&s) {
            let h = parse_zengin(&std::fs::read(s.path().join("transfers").join(&name)).unwrap());
            assert!(h.data.iter().all(|d| d.customer_code1 != "0100000004"), "{kind:?}: D is paid in {name}");
            assert!(h.data.iter().all(|d| d.amount > 0));
        }

        // The payouts export matches the file, CSV and JSON.
        let p = payouts(&s, "2019-10-31");
        assert_payouts_match_file(&p, &f, "2019-10-31");
        assert_eq!(p.iter().map(|r| r["bank_name"].as_str()).collect::<Vec<_>>(), vec!["みずほ銀行", "三井住友銀行", "三菱UFJ銀行"]);
        assert_eq!(p.iter().map(|r| r["branch_name"].as_str()).collect::<Vec<_>>(), vec!["東京営業部", "渋谷支店", "新宿支店"]);
        assert_eq!(p.iter().map(|r| r["account_number"].as_str()).collect::<Vec<_>>(), vec!["***111", "***222", "***333"]);
        let total: i64 = p.iter().map(|r| r["amount"].parse::<i64>().unwrap()).sum();
        assert_eq!(total, f.trailer_total);
        let p15 = payouts(&s, "2019-11-15");
        assert_payouts_match_file(&p15, &g, "2019-11-15");

        // Re-running writes nothing new and leaves the bytes.
        s.ok(&["settle", "--through", "2019-11-30"]);
        assert_eq!(file_of(&s, "20191031"), bytes, "{kind:?}");
        files.push(bytes);
    }
    assert_eq!(files[0], files[1], "SQLite and PostgreSQL write the same file");
}

#[test]
fn the_file_is_written_when_the_notice_date_comes() {
    let s = TestStore::new(Kind::Sqlite);
    ingest_sample(&s);
    s.ok(&["settle", "--through", "2019-10-28"]);
    assert!(!s.path().join("transfers/zengin-20191031.txt").exists(), "written before the notice date 2019-10-29");
    // Before it is written, the export shows what it will pay.
    let p = payouts(&s, "2019-10-31");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["amount"], "8284");
    s.ok(&["settle", "--through", "2019-10-29"]);
    let f = parse_zengin(&file_of(&s, "20191031"));
    assert_eq!((f.trailer_count, f.trailer_total), (1, 8284));
    assert_payouts_match_file(&payouts(&s, "2019-10-31"), &f, "2019-10-31");
    // The batch run another night gives the same bytes as one run at the end.
    let t = TestStore::new(Kind::Sqlite);
    ingest_sample(&t);
    t.ok(&["settle", "--through", "2019-11-30"]);
    assert_eq!(file_of(&s, "20191031"), file_of(&t, "20191031"));
}

#[test]
fn a_merchant_carried_on_every_date_gets_no_file() {
    // Only the carried merchant D trades: no transfer, no file, no notice.
    let s = TestStore::new(Kind::Sqlite);
    let line = MERCHANTS.lines().find(|l| l.starts_with("100000004")).unwrap();
    let m = s.write("merchants.csv", &format!("{MERCHANTS_HEADER}\n{line}\n"));
    let e = s.write("events.csv", &format!("{EVENTS_HEADER}\nm7,sale,td1,100000004,2019-10-04T10:00:00+09:00,VISA,100,tok_6,,\n"));
    s.ok(&["ingest", "merchants", m.to_str().unwrap()]);
    s.ok(&["ingest", "events", e.to_str().unwrap()]);
    s.ok(&["settle", "--through", "2019-11-30"]);
    assert!(transfer_files(&s).is_empty(), "{:?}", transfer_files(&s));
    assert!(payouts(&s, "2019-10-31").is_empty());
    let st = statements(&s);
    assert!(st.iter().all(|r| r["payout"] == "0" && r["notice_no"].is_empty()), "{st:?}");
}

#[test]
fn a_bank_change_after_the_cycle_closed_does_not_redirect_its_payout() {
    // SPEC §4: a statement uses the contract — payee bank included — in force
    // when its cycle closes; the transfer fee (0 for Mizuho) was decided with
    // that bank. The sample's 10-01..15 cycle closes with the run through
    // 10-16 (Resona, fee 180 + 18 charged); the merchant then moves to Mizuho
    // before the notice date. The file must pay the account the statement was
    // closed with — or, at the very least, never pay Mizuho a statement that
    // charged the non-Mizuho transfer fee.
    for kind in KINDS {
        let s = TestStore::new(kind);
        ingest_sample(&s);
        s.ok(&["settle", "--through", "2019-10-16"]);
        let closed = statements(&s);
        let row = closed.iter().find(|r| r["period_start"] == "2019-10-01").expect("closed by the run through 10-16");
        assert_eq!((row["transfer_fee"].as_str(), row["payout"].as_str()), ("180", "8284"));
        let moved = std::fs::read_to_string(sample_dir().join("merchants.csv"))
            .unwrap()
            .replace(",0010,りそな銀行,999,証券信託業務支店,普通,1234567,", ",0001,みずほ銀行,001,東京営業部,普通,7654321,")
            .replace(",リソナ,ショウケンシンタクギョウム", ",ミズホ,トウキヨウ");
        let m = s.write("moved.csv", &moved);
        s.ok(&["ingest", "merchants", m.to_str().unwrap()]);
        s.ok(&["settle", "--through", "2019-10-29"]);
        let f = parse_zengin(&file_of(&s, "20191031"));
        assert_eq!(f.data.len(), 1);
        let d = &f.data[0];
        assert_eq!(
            (d.bank_code.as_str(), d.branch_code.as_str(), d.account_number.as_str(), d.amount),
            ("0010", "999", "1234567", 8284),
            "{kind:?}: the 2019-10-31 payout, closed with Resona 0010/999/1234567 and charged the 198-yen transfer fee, is paid to {}/{}/{}",
            d.bank_code,
            d.branch_code,
            d.account_number
        );
        let p = payouts(&s, "2019-10-31");
        assert_payouts_match_file(&p, &f, "2019-10-31");
    }
}
