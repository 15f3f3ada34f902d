//! Writes sample notices to a folder for eyeballing:
//! `cargo run -p notices --example render_samples -- /tmp/notices`
//! (sample.pdf = the manual's sample, full.pdf = every optional line,
//! long.pdf = very long names, many.pdf = a table running over a page).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "notices-samples".into()),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let mut long = sample_doc();
    long.merchant_name =
        "株式会社とても長い名前のサンプル商事ホールディングス　東京本社営業第一部直営店舗"
            .repeat(2);
    long.contact_name = "寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末".into();
    long.bank_name =
        "ザ・ロングネーム・インターナショナル・バンキング・コーポレーション銀行".into();
    long.branch_name = "東京中央第一営業部国際金融法人営業第二センター出張所支店".into();
    long.payout_yen = 9_999_999_999_999;
    let mut many = full_doc();
    many.lines = (0..45)
        .map(|i| line("VISA/MASTER", i, 1_000 * i as i64, 32 * i as i64))
        .collect();
    let mut split = sample_doc();
    split.branch_name = "とても長い支店名".repeat(400);
    for (name, doc) in [
        ("split", split),
        ("sample", sample_doc()),
        ("full", full_doc()),
        ("long", long),
        ("many", many),
    ] {
        let pdf = notices::render_pdf(&doc).unwrap();
        let path = dir.join(format!("{name}.pdf"));
        std::fs::write(&path, &pdf).unwrap();
        println!(
            "{} {} bytes, {} page(s), sha256 {}",
            path.display(),
            pdf.len(),
            notices::page_count(&doc).unwrap(),
            notices::sha256_hex(&pdf)
        );
    }
}
