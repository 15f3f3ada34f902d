//! Notices per second (render + ZIP) over 1,000 documents.
//!
//! `cargo bench -p notices` (release profile). Plain std::time, no harness.
//! `NOTICE_BENCH_N=200` changes the count.

use std::time::Instant;

use chrono::NaiveDate;
use notices::{pack_zip, render_pdf, Issuer, NoticeDocument, NoticeLine, ZipEncryption};

fn doc(i: u64) -> NoticeDocument {
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    let vm = 10_000 + (i as i64 * 7919) % 2_000_000;
    let vm_fee = vm * 324 / 10_000;
    NoticeDocument {
        notice_no: format!("{:09}-001-20191031", 270_000_000 + i),
        issue_date: d(2019, 10, 29),
        merchant_name: format!("サンプル商店 {i}号店"),
        contact_name: "平 次郎".into(),
        issuer: Issuer::demo(),
        period_start: d(2019, 10, 1),
        period_end: d(2019, 10, 15),
        lines: vec![
            NoticeLine {
                group: "VISA/MASTER".into(),
                count: 3 + i % 50,
                sales_yen: vm,
                rate_percent: "3.24".into(),
                fee_yen: vm_fee,
                net_yen: vm - vm_fee,
            },
            NoticeLine {
                group: "JCB/その他".into(),
                count: 2,
                sales_yen: 2_000,
                rate_percent: "3.24".into(),
                fee_yen: 64,
                net_yen: 1_936,
            },
        ],
        fee_tax_yen: 10,
        previous_unsettled_yen: -(i as i64 % 1000),
        chargebacks_yen: None,
        transfer_fee_yen: 180,
        transfer_fee_tax_yen: 18,
        payout_yen: vm - vm_fee + 1_936 - 10 - 198 - (i as i64 % 1000),
        bank_name: "りそな銀行".into(),
        branch_name: "証券信託業務支店".into(),
        account_type: "普通".into(),
        account_number_masked: "***567".into(),
        account_holder: "ペイジノ".into(),
        payout_date: d(2019, 10, 31),
    }
}

fn run(docs: &[NoticeDocument], enc: ZipEncryption) {
    let n = docs.len();
    let t0 = Instant::now();
    let mut pdf_bytes = 0usize;
    let mut zip_bytes = 0usize;
    let mut render_time = std::time::Duration::ZERO;
    for d in docs {
        let t = Instant::now();
        let pdf = render_pdf(d).expect("render");
        render_time += t.elapsed();
        let zip = pack_zip(&d.notice_no, &pdf, "123456789", enc).expect("zip");
        pdf_bytes += pdf.len();
        zip_bytes += zip.len();
    }
    let secs = t0.elapsed().as_secs_f64();
    println!("{enc:?}: {n} documents (render + ZIP), 1 thread");
    println!(
        "  mean PDF {} bytes, mean ZIP {} bytes",
        pdf_bytes / n,
        zip_bytes / n
    );
    println!(
        "  total {:.3} s, {:.1} notices/s, {:.2} ms per notice ({:.2} ms of it rendering)",
        secs,
        n as f64 / secs,
        secs * 1000.0 / n as f64,
        render_time.as_secs_f64() * 1000.0 / n as f64
    );
}

fn main() {
    let n: u64 = std::env::var("NOTICE_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let docs: Vec<NoticeDocument> = (0..n).map(doc).collect();
    // Warm-up: the font is parsed and hashed once per process.
    let t = Instant::now();
    let first = render_pdf(&docs[0]).expect("render");
    println!(
        "first render (loads the font): {:.1} ms, {} bytes",
        t.elapsed().as_secs_f64() * 1000.0,
        first.len()
    );
    run(&docs, ZipEncryption::ZipCrypto);
    run(&docs, ZipEncryption::Aes256);
}
