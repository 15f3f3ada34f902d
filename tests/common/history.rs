//! The generated history several end-to-end tests share: merchants trading
//! daily and quiet ones in debt, over months, with every kind of event.

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime};

use super::{EVENTS_HEADER, MERCHANTS_HEADER};

/// How one test's history names its merchants, events and transactions, so
/// histories of different tests never share an id.
pub struct HistoryIds {
    pub first_merchant: u32,
    pub event_prefix: &'static str,
    pub txn_prefix: &'static str,
}

const BRANDS: [&str; 9] = ["VISA", "MASTERCARD", "JCB", "AMEX", "DINERS", "DISCOVER", "ID", "QUICPAY", "TRANSIT_IC"];

/// merchants.csv and events.csv: `active` merchants trading daily (cancels the
/// same day or weeks later, chargebacks whole or partial, some reversed) and
/// `quiet` ones whose first sale is charged back, then a few ¥50 sales a month.
/// Rows sorted by instant; nothing is refused.
pub fn generate(naming: &HistoryIds, active: u32, quiet: u32, from: NaiveDate, to: NaiveDate, seed: u64) -> (String, String) {
    let (ep, tp) = (naming.event_prefix, naming.txn_prefix);
    // Same seed | 1 as before: the histories the tests were written on.
    let mut rng = upay::demo::Rng::new(seed | 1);
    let mut m_csv = format!("{MERCHANTS_HEADER}\n");
    let mut ids = Vec::new();
    for i in 0..active + quiet {
        let id = format!("{}", naming.first_merchant + i);
        let (bank, bank_name, branch, branch_name, bank_kana, branch_kana) =
            if i % 3 == 1 { ("0001", "みずほ銀行", "001", "東京営業部", "ミズホ", "トウキヨウ") } else { ("0010", "りそな銀行", "101", "大阪営業部", "リソナ", "オオサカ") };
        let fee_tax = ["inclusive-8", "inclusive-8", "exclusive", "exempt"][(i % 4) as usize];
        let (vm, jcb, em) = [("3.24", "3.24", "3.24"), ("3.74", "3.24", "2.95"), ("2.70", "3.60", "3.24")][(i % 3) as usize];
        m_csv.push_str(&format!(
            "{id},テスト商店{i},担当 太郎,m{id}@example.jp,{bank},{bank_name},{branch},{branch_name},普通,{acct},テスト,{vm},{jcb},{em},{fee_tax},{pw},{bank_kana},{branch_kana}\n",
            acct = 1_000_000 + i,
            pw = 100_000_000 + rng.below(899_999_999),
        ));
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
                let amount = if !is_active { if day == from { 50_000 } else { 50 } } else { 100 + rng.below(300) * 100 + rng.below(100) };
                let card = format!("tok_{txn}");
                ev += 1;
                rows.push((t, format!("{ep}{ev},sale,{tp}{txn},{m},{},{brand},{amount},{card},,", at(t))));
                let fate = rng.below(100);
                if !is_active {
                    if day == from {
                        let later = t + chrono::Duration::days(2);
                        ev += 1;
                        rows.push((later, format!("{ep}{ev},chargeback,{tp}{txn},,{},,,,,", at(later))));
                    }
                } else if fate < 8 {
                    let later = t + chrono::Duration::hours(if fate < 4 { 1 } else { 24 * (3 + rng.below(30) as i64) });
                    ev += 1;
                    rows.push((later, format!("{ep}{ev},void,{tp}{txn},,{},,,{card},,", at(later))));
                } else if fate < 12 {
                    let later = t + chrono::Duration::days(2 + rng.below(25) as i64);
                    let part = if fate < 10 { String::new() } else { (amount / 3).to_string() };
                    ev += 1;
                    rows.push((later, format!("{ep}{ev},chargeback,{tp}{txn},,{},,{part},,,", at(later))));
                    if fate == 11 {
                        let won = later + chrono::Duration::days(5 + rng.below(20) as i64);
                        ev += 1;
                        rows.push((won, format!("{ep}{ev},chargeback_reversal,{tp}{txn},,{},,,,,", at(won))));
                    }
                }
            }
        }
        day = day + Days::new(1);
    }
    rows.sort_by_key(|r| r.0);
    let mut e_csv = format!("{EVENTS_HEADER}\n");
    for (_, r) in rows {
        e_csv.push_str(&r);
        e_csv.push('\n');
    }
    (m_csv, e_csv)
}

