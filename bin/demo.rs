//! `upay demo`: writes a realistic generated history (the manual's sample
//! merchant and a few dozen others over four months) into a folder, ingests it
//! into an embedded store there, and runs it night by night through the batch to
//! statements, notices and transfer files.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{Days, Duration, NaiveDate, TimeZone};

use crate::app::{refused, AppError};
use crate::cli::{Encoding, SettleArgs, ZipEnc};
use crate::config::Config;
use crate::store::Store;

/// The sample notice's merchant and history (shared/fixtures/sample-notice).
const SAMPLE_MERCHANT: &str = "270212122,②新PAY切替Uペイ,平 次郎,shop@example.jp,0010,りそな銀行,999,証券信託業務支店,普通,1234567,ペイジノ,3.24,3.24,3.24,inclusive-8,123456789,リソナ,ショウケンシンタクギョウム";
const SAMPLE_EVENTS: &str = "\
s-e1,sale,s-t1,270212122,2019-09-05T12:00:00+09:00,VISA,9000,tok_a,,
s-e2,chargeback,s-t1,,2019-09-20T10:00:00+09:00,,7126,,,
s-e3,sale,s-t2,270212122,2019-10-01T10:00:00+09:00,VISA,5000,tok_b,,
s-e4,sale,s-t3,270212122,2019-10-07T10:00:00+09:00,MASTERCARD,4140,tok_c,3,
s-e5,sale,s-t4,270212122,2019-10-15T14:59:59Z,VISA,5000,tok_d,,
s-e6,sale,s-t5,270212122,2019-10-02T10:00:00+09:00,JCB,1500,tok_e,,
s-e7,sale,s-t6,270212122,2019-10-14T10:00:00+09:00,AMEX,500,tok_f,,
s-e8,sale,s-t7,270212122,2019-10-15T15:00:00Z,VISA,777,tok_g,,
";

/// A small deterministic generator (xorshift), so the demo is the same every time.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

const BANKS: [(&str, &str, &str, &str, &str, &str); 4] = [
    ("0001", "みずほ銀行", "ミズホ", "001", "東京営業部", "トウキヨウ"),
    ("0005", "三菱UFJ銀行", "ミツビシユ-エフジエイ", "010", "新宿支店", "シンジユク"),
    ("0009", "三井住友銀行", "ミツイスミトモ", "025", "渋谷支店", "シブヤ"),
    ("0010", "りそな銀行", "リソナ", "101", "大阪営業部", "オオサカ"),
];
const SHOPS: [(&str, &str); 6] = [
    ("カフェ", "カフエ"),
    ("ベーカリー", "ベ-カリ-"),
    ("美容室", "ビヨウシツ"),
    ("書店", "シヨテン"),
    ("居酒屋", "イザカヤ"),
    ("花屋", "ハナヤ"),
];
const BRANDS: [(&str, u64); 9] = [
    ("VISA", 380),
    ("MASTERCARD", 220),
    ("JCB", 180),
    ("AMEX", 50),
    ("DINERS", 10),
    ("DISCOVER", 10),
    ("ID", 50),
    ("QUICPAY", 50),
    ("TRANSIT_IC", 50),
];

pub struct Generated {
    pub merchants_csv: String,
    pub events_csv: String,
    pub events: u64,
}

/// Generates `merchants` merchants (besides the sample one) trading every day
/// from `from` to `to`.
pub fn generate(merchants: u32, from: NaiveDate, to: NaiveDate, seed: u64) -> Generated {
    let mut rng = Rng::new(seed);
    let mut m_csv = String::from(
        "merchant_id,name,contact,email,bank_code,bank_name,branch_code,branch_name,account_type,account_number,account_holder,rate_visa_master,rate_jcb_other,rate_emoney,fee_tax,notice_password,bank_name_kana,branch_name_kana\n",
    );
    m_csv.push_str(SAMPLE_MERCHANT);
    m_csv.push('\n');
    let mut ids = Vec::new();
    for i in 0..merchants {
        let id = format!("{:09}", 300_000_001 + i);
        let (bank_code, bank, bank_kana, branch_code, branch, branch_kana) = BANKS[(i % 4) as usize];
        let (shop, shop_kana) = SHOPS[(i % 6) as usize];
        let fee_tax = match i % 10 {
            7 => "exclusive",
            9 => "exempt",
            _ => "inclusive-8",
        };
        let rate = if i % 5 == 3 { "3.74" } else { "3.24" };
        let account_type = if i % 7 == 6 { "当座" } else { "普通" };
        let _ = writeln!(
            m_csv,
            "{id},デモ{shop}{n}号店,担当 {n}郎,shop{n}@example.jp,{bank_code},{bank},{branch_code},{branch},{account_type},{acct:07},デモ{shop_kana}{n},{rate},{rate},2.95,{fee_tax},{pw:09},{bank_kana},{branch_kana}",
            n = i + 1,
            acct = 1_000_000 + rng.below(8_999_999),
            pw = 100_000_000 + rng.below(899_999_999),
        );
        ids.push(id);
    }
    // Every row with its instant, sorted by instant before writing.
    let mut rows: Vec<(i64, String)> = Vec::new();
    let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("JST");
    let mut n_evt = 0u64;
    let mut eid = || {
        n_evt += 1;
        format!("d{n_evt:07}")
    };
    let mut txn = 0u64;
    let mut day = from;
    while day <= to {
        for m in &ids {
            let sales = rng.below(5);
            for _ in 0..sales {
                txn += 1;
                let t = format!("t{txn:07}");
                let at = jst
                    .from_local_datetime(
                        &day.and_hms_opt(9 + rng.below(12) as u32, rng.below(60) as u32, rng.below(60) as u32)
                            .expect("time"),
                    )
                    .single()
                    .expect("JST");
                let pick = rng.below(1000);
                let mut acc = 0;
                let brand = BRANDS
                    .iter()
                    .find(|(_, w)| {
                        acc += w;
                        pick < acc
                    })
                    .map_or("VISA", |b| b.0);
                let amount = 300 + rng.below(300) * 100;
                let card = format!("tok_{}", rng.next_u64() % 1_000_000_007);
                let inst = if rng.chance(50) { "3" } else { "" };
                let ts = |a: chrono::DateTime<chrono::FixedOffset>| a.to_rfc3339();
                if rng.chance(15) {
                    rows.push((
                        at.timestamp(),
                        format!("{},decline,{t},{m},{},{brand},{amount},{card},,ng-02 G12", eid(), ts(at)),
                    ));
                    continue;
                }
                if rng.chance(300) {
                    rows.push((
                        at.timestamp(),
                        format!("{},authorize,{t},{m},{},{brand},{amount},{card},{inst},", eid(), ts(at)),
                    ));
                    let later = at + Duration::minutes(5 + rng.below(600) as i64);
                    if rng.chance(50) {
                        rows.push((later.timestamp(), format!("{},void,{t},,{},,,{card},,", eid(), ts(later))));
                        continue;
                    }
                    rows.push((later.timestamp(), format!("{},capture,{t},,{},,{amount},,,", eid(), ts(later))));
                } else {
                    rows.push((at.timestamp(), format!("{},sale,{t},{m},{},{brand},{amount},{card},{inst},", eid(), ts(at))));
                }
                if rng.chance(30) {
                    let later = at + Duration::hours(1 + rng.below(24 * 20) as i64);
                    rows.push((later.timestamp(), format!("{},void,{t},,{},,,{card},,", eid(), ts(later))));
                } else if rng.chance(6) {
                    let later = at + Duration::days(3 + rng.below(20) as i64);
                    let part = if rng.chance(500) { String::new() } else { (amount / 2).to_string() };
                    rows.push((later.timestamp(), format!("{},chargeback,{t},,{},,{part},,,", eid(), ts(later))));
                    if rng.chance(500) {
                        let won = later + Duration::days(10 + rng.below(20) as i64);
                        rows.push((won.timestamp(), format!("{},chargeback_reversal,{t},,{},,,,,", eid(), ts(won))));
                    }
                }
                if rng.chance(3) {
                    // A terminal retry of a cancel with the wrong card: refused P1245.
                    let later = at + Duration::hours(2);
                    rows.push((later.timestamp(), format!("{},void,{t},,{},,,tok_wrong,,", eid(), ts(later))));
                }
            }
        }
        day = day + Days::new(1);
    }
    rows.sort_by_key(|r| r.0);
    let mut e_csv = String::from("event_id,kind,txn_id,merchant_id,at,brand,amount,card,installments,code\n");
    e_csv.push_str(SAMPLE_EVENTS);
    let count = rows.len() as u64 + 8;
    for (_, r) in rows {
        e_csv.push_str(&r);
        e_csv.push('\n');
    }
    Generated {
        merchants_csv: m_csv,
        events_csv: e_csv,
        events: count,
    }
}

pub async fn run(store: &Option<String>, config: Option<&Path>, dir: &Path) -> Result<u8, AppError> {
    std::fs::create_dir_all(dir).map_err(|e| refused(format!("{}: cannot create: {e}", dir.display())))?;
    if store.is_some() {
        eprintln!("note: the demo uses its own embedded store in {}; --store is ignored", dir.display());
    }
    let cfg = Config::load(config)?;
    let from = NaiveDate::from_ymd_opt(2019, 9, 1).expect("date");
    let to = NaiveDate::from_ymd_opt(2019, 12, 31).expect("date");
    let g = generate(30, from, to, 20191031);
    let merchants = dir.join("merchants.csv");
    let events = dir.join("events.csv");
    crate::app::write_atomic(&merchants, g.merchants_csv.as_bytes())?;
    crate::app::write_atomic(&events, g.events_csv.as_bytes())?;
    eprintln!(
        "demo: wrote {} and {} ({} events, 31 merchants)",
        merchants.display(),
        events.display(),
        g.events
    );
    let db = dir.join("upay.db");
    let st = Store::open(&format!("sqlite://{}", db.display())).await?;
    let t = crate::csvin::read_table(&merchants, Encoding::Utf8)?;
    let (new, _, _) = crate::ingest::record_merchants(&st, crate::ingest::parse_merchants(&merchants, &t)?).await?;
    eprintln!("demo: {new} merchants recorded");
    let t = crate::csvin::read_table(&events, Encoding::Utf8)?;
    eprintln!("demo: {}", crate::ingest::record_events(&st, &events, crate::ingest::parse_events(&events, &t)?).await?);
    let last_night = NaiveDate::from_ymd_opt(2020, 1, 31).expect("date");
    let (mut statements, mut notices, mut files) = (0, 0, 0);
    let mut night = from;
    while night <= last_night {
        let args = SettleArgs {
            through: night,
            notices_dir: dir.join("notices"),
            transfers_dir: dir.join("transfers"),
            zip_encryption: ZipEnc::Zipcrypto,
            shard: None,
            statements_only: false,
        };
        let s = crate::batch::settle(&st, &cfg, &args).await?;
        if s.statements + s.notices + s.transfer_files > 0 {
            eprintln!("demo: {}", s.report(&args));
        }
        statements += s.statements;
        notices += s.notices;
        files += s.transfer_files;
        night = night + Days::new(1);
    }
    let out = dir.join("statements.csv");
    crate::export::statements(&st, crate::cli::Format::Csv, false, Some(&out)).await?;
    eprintln!(
        "demo: {} nights settled: {statements} statements, {notices} notices in {}, {files} transfer files in {}; statements exported to {}",
        (last_night - from).num_days() + 1,
        dir.join("notices").display(),
        dir.join("transfers").display(),
        out.display()
    );
    eprintln!(
        "demo: the store is sqlite://{}; try `upay --store sqlite://{} statements explain --merchant 270212122 --period 2019-10-01`",
        db.display(),
        db.display()
    );
    st.close().await;
    Ok(0)
}
