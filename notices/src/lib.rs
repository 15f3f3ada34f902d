//! Payout notices (支払通知書): the A4 PDF, its password-protected ZIP and
//! its delivery by mail.
//!
//! * [`render_pdf`] draws a [`NoticeDocument`] with the embedded Noto Sans JP
//!   font (subset by krilla). It is deterministic: the same document always
//!   gives the same bytes, so the SHA-256 recorded when a notice is issued
//!   proves what was sent.
//! * [`pack_zip`] packs the PDF alone into `{notice_no}.zip`, encrypted with
//!   the merchant's 9-digit password (ZipCrypto by default, or AES-256). The
//!   password never appears in any error message.
//! * [`mail::send`] delivers one message through an SMTP relay.
//!
//! See `docs/notices.md` for the layout decisions and `docs/security.md` for
//! what the ZIP password does and does not protect against.

mod layout;
pub mod mail;
mod text;

use std::io::{Cursor, Write};

use chrono::{Datelike, NaiveDate};
use sha2::Digest;

/// The company that issues the notices (`[issuer]` of `upay.toml`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Issuer {
    pub name: String,
    pub postal_code: String,
    pub address: String,
    pub phone: String,
    pub support: String,
}

impl Issuer {
    /// The demo values of SPEC §7 `[issuer]`, used when no config is given.
    pub fn demo() -> Issuer {
        Issuer {
            name: "株式会社サンプルペイメント".to_string(),
            postal_code: "100-0001".to_string(),
            address: "東京都千代田区千代田1-1".to_string(),
            phone: "0120-000-000".to_string(),
            support: "加盟店サポートセンター 0120-000-000（24時間受付・年中無休）".to_string(),
        }
    }
}

/// One brand-group line of the table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoticeLine {
    /// `"VISA/MASTER"`, `"JCB/その他"` or `"電子マネー"`.
    pub group: String,
    pub count: u64,
    pub sales_yen: i64,
    /// The rate exactly as in the contract, e.g. `"3.24"` (printed `3.24%`).
    pub rate_percent: String,
    pub fee_yen: i64,
    pub net_yen: i64,
}

/// Everything a notice shows: recorded in the NoticeIssued event, so a
/// re-render gives the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoticeDocument {
    /// `"270212122-001-20191031"`.
    pub notice_no: String,
    /// 発行日.
    pub issue_date: NaiveDate,
    pub merchant_name: String,
    pub contact_name: String,
    pub issuer: Issuer,
    /// 取扱期間, printed `10/01-15` (or `10/16-31`).
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    /// Brand group lines, 0 to 3 (more are drawn too).
    pub lines: Vec<NoticeLine>,
    /// 決済手数料にかかる消費税.
    pub fee_tax_yen: i64,
    /// 前未精算金額 (*1) = carry_in + red slips.
    pub previous_unsettled_yen: i64,
    /// チャージバック, shown only when `Some`.
    pub chargebacks_yen: Option<i64>,
    pub transfer_fee_yen: i64,
    pub transfer_fee_tax_yen: i64,
    /// 差引お振込金額 (emphasised).
    pub payout_yen: i64,
    pub bank_name: String,
    pub branch_name: String,
    /// `"普通"` or `"当座"`.
    pub account_type: String,
    /// Already masked by the caller, e.g. `"***567"`; printed as given.
    pub account_number_masked: String,
    pub account_holder: String,
    /// お振込み予定日.
    pub payout_date: NaiveDate,
}

/// Errors of this crate. No message ever contains a password.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("{field}: the notice font cannot draw {ch:?} (U+{:04X})", *ch as u32)]
    UndrawableChar { field: &'static str, ch: char },
    #[error("the ZIP password must be exactly 9 digits")]
    BadPassword,
    #[error("invalid notice number {0:?} (letters, digits, '-' and '_' only)")]
    BadNoticeNo(String),
    #[error("PDF: {0}")]
    Pdf(String),
    #[error("ZIP: {0}")]
    Zip(String),
    #[error("mail: {0}")]
    Mail(String),
}

/// Characters of `s` the embedded font cannot draw (each once, in order of
/// appearance). Spaces (U+0020, U+3000) always count as drawable; control
/// characters (newline, tab, …) never do. Empty = ok.
pub fn undrawable_chars(s: &str) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    for ch in s.chars() {
        if !text::drawable(ch) && !out.contains(&ch) {
            out.push(ch);
        }
    }
    out
}

/// `Err(UndrawableChar)` naming `field` and the first character the font
/// cannot draw. Meant for input validation (e.g. `merchants.csv`).
pub fn check_drawable(field: &'static str, value: &str) -> Result<(), NoticeError> {
    match undrawable_chars(value).first() {
        Some(&ch) => Err(NoticeError::UndrawableChar { field, ch }),
        None => Ok(()),
    }
}

/// Checks every printed field of the document (the first failure is returned).
pub fn check_document(doc: &NoticeDocument) -> Result<(), NoticeError> {
    let fields: [(&'static str, &str); 13] = [
        ("notice_no", &doc.notice_no),
        ("merchant_name", &doc.merchant_name),
        ("contact_name", &doc.contact_name),
        ("issuer.name", &doc.issuer.name),
        ("issuer.postal_code", &doc.issuer.postal_code),
        ("issuer.address", &doc.issuer.address),
        ("issuer.phone", &doc.issuer.phone),
        ("issuer.support", &doc.issuer.support),
        ("bank_name", &doc.bank_name),
        ("branch_name", &doc.branch_name),
        ("account_type", &doc.account_type),
        ("account_number_masked", &doc.account_number_masked),
        ("account_holder", &doc.account_holder),
    ];
    for (field, value) in fields {
        check_drawable(field, value)?;
    }
    for line in &doc.lines {
        check_drawable("lines.group", &line.group)?;
        check_drawable("lines.rate_percent", &line.rate_percent)?;
    }
    Ok(())
}

/// `1234567` → `"1,234,567"`, `-7126` → `"-7,126"`.
pub fn group_thousands(n: i128) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Amounts as printed on the notice: `"¥14,140"`, negatives `"¥-7,126"` (as
/// in the manual's sample).
pub fn format_yen(n: i64) -> String {
    format!("¥{}", group_thousands(n as i128))
}

/// Dates as printed on the notice: `"2019年10月31日"`.
pub fn format_date_ja(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// 取扱期間: `"10/01-15"` within one month (`"10/16-31"`), `"09/16-10/15"`
/// across months, with years (`"2019/12/16-2020/01/15"`) across years.
pub fn format_period(start: NaiveDate, end: NaiveDate) -> String {
    if start.year() != end.year() {
        format!(
            "{}/{:02}/{:02}-{}/{:02}/{:02}",
            start.year(),
            start.month(),
            start.day(),
            end.year(),
            end.month(),
            end.day()
        )
    } else if start.month() != end.month() {
        format!(
            "{:02}/{:02}-{:02}/{:02}",
            start.month(),
            start.day(),
            end.month(),
            end.day()
        )
    } else {
        format!("{:02}/{:02}-{:02}", start.month(), start.day(), end.day())
    }
}

/// Masks an account number to its last three digits: `"1234567"` → `"***567"`.
pub fn mask_account_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(3)..].iter().collect();
    format!("***{tail}")
}

/// Renders the A4 PDF.
///
/// Every field's characters are checked first: a character the font cannot
/// draw is an error naming the field and the character (never an empty box).
/// Deterministic: the same document gives the same bytes (metadata derived
/// from the document: creation date = issue date 00:00 JST, title
/// `お支払通知書 {notice_no}`; no random ids, no clock).
pub fn render_pdf(doc: &NoticeDocument) -> Result<Vec<u8>, NoticeError> {
    use krilla::geom::{PathBuilder, Point, Rect};
    use krilla::metadata::{DateTime, Metadata};
    use krilla::page::PageSettings;
    use krilla::paint::{Fill, FillRule, Stroke};
    use krilla::text::TextDirection;
    use krilla::{Document, SerializeSettings};

    check_document(doc)?;
    let pages = layout::layout(doc).pages;

    let settings = SerializeSettings {
        // Everything krilla writes is derived from the content (ids are
        // content hashes): no clock, no randomness.
        xmp_metadata: true,
        compress_content_streams: true,
        ascii_compatible: false,
        pretty: false,
        ..SerializeSettings::default()
    };
    let mut document = Document::new_with(settings);
    let d = doc.issue_date;
    document.set_metadata(
        Metadata::new()
            .title(format!("お支払通知書 {}", doc.notice_no))
            .creator("upay".to_string())
            .producer("upay notices (krilla)".to_string())
            .language("ja".to_string())
            .document_id(doc.notice_no.clone())
            .creation_date(
                DateTime::new(d.year().clamp(0, 9999) as u16)
                    .month(d.month() as u8)
                    .day(d.day() as u8)
                    .hour(0)
                    .minute(0)
                    .second(0)
                    .utc_offset_hour(9)
                    .utc_offset_minute(0),
            ),
    );
    let font = text::PDF_FONT.clone();
    let black = || krilla::color::luma::Color::black();
    for ops in pages {
        let size = PageSettings::from_wh(layout::PAGE_W, layout::PAGE_H)
            .ok_or_else(|| NoticeError::Pdf("bad page size".into()))?;
        let mut page = document.start_page_with(size);
        let mut surface = page.surface();
        // Rectangles first (fills under text), then text on top.
        for op in &ops {
            match op {
                layout::Op::Rect {
                    x,
                    y,
                    w,
                    h,
                    fill,
                    stroke,
                } => {
                    let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) else {
                        continue;
                    };
                    let mut pb = PathBuilder::new();
                    pb.push_rect(rect);
                    let Some(path) = pb.finish() else { continue };
                    surface.set_fill(fill.map(|g| Fill {
                        paint: krilla::color::luma::Color::new(g).into(),
                        opacity: krilla::num::NormalizedF32::ONE,
                        rule: FillRule::NonZero,
                    }));
                    surface.set_stroke(stroke.map(|w| Stroke {
                        paint: black().into(),
                        width: w,
                        ..Stroke::default()
                    }));
                    surface.draw_path(&path);
                }
                layout::Op::Line {
                    x1,
                    y1,
                    x2,
                    y2,
                    width,
                } => {
                    let mut pb = PathBuilder::new();
                    pb.move_to(*x1, *y1);
                    pb.line_to(*x2, *y2);
                    let Some(path) = pb.finish() else { continue };
                    surface.set_fill(None);
                    surface.set_stroke(Some(Stroke {
                        paint: black().into(),
                        width: *width,
                        ..Stroke::default()
                    }));
                    surface.draw_path(&path);
                }
                layout::Op::Text { .. } => {}
            }
        }
        surface.set_stroke(None);
        surface.set_fill(Some(Fill {
            paint: black().into(),
            opacity: krilla::num::NormalizedF32::ONE,
            rule: FillRule::NonZero,
        }));
        for op in &ops {
            if let layout::Op::Text { x, y, size, text } = op {
                surface.draw_text(
                    Point::from_xy(*x, *y),
                    font.clone(),
                    *size,
                    text,
                    false,
                    TextDirection::Auto,
                );
            }
        }
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| NoticeError::Pdf(format!("{e:?}")))
}

/// Lowercase hex SHA-256 of `bytes` (recorded with each issued notice).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// ZIP encryption of the notice archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZipEncryption {
    /// Traditional PKWARE encryption: opens with every unzip tool, including
    /// Windows Explorer, but is weak (see `docs/security.md`).
    #[default]
    ZipCrypto,
    /// WinZip AES-256 (AE-2): needs 7-Zip or similar on Windows.
    Aes256,
}

impl std::str::FromStr for ZipEncryption {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "zipcrypto" => Ok(ZipEncryption::ZipCrypto),
            "aes256" => Ok(ZipEncryption::Aes256),
            other => Err(format!(
                "unknown ZIP encryption {other:?} (zipcrypto or aes256)"
            )),
        }
    }
}

fn valid_notice_no(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The contents of `{notice_no}.zip`: only `{notice_no}.pdf`, deflated and
/// encrypted with the 9-digit `password`. The entry's time stamp is fixed
/// (the payout date at the end of the notice number, else 1980-01-01); the
/// encryption header and AES salt are random, so two calls give different
/// bytes but the same PDF inside.
pub fn pack_zip(
    notice_no: &str,
    pdf: &[u8],
    password: &str,
    encryption: ZipEncryption,
) -> Result<Vec<u8>, NoticeError> {
    use zip::unstable::write::FileOptionsExt;
    use zip::write::SimpleFileOptions;

    if !valid_notice_no(notice_no) {
        return Err(NoticeError::BadNoticeNo(notice_no.to_string()));
    }
    if password.len() != 9 || !password.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NoticeError::BadPassword);
    }
    let stamp = notice_no
        .rsplit('-')
        .next()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y%m%d").ok())
        .and_then(|d| {
            zip::DateTime::from_date_and_time(
                d.year().try_into().ok()?,
                d.month() as u8,
                d.day() as u8,
                0,
                0,
                0,
            )
            .ok()
        })
        .unwrap_or(zip::DateTime::DEFAULT);
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(stamp)
        .unix_permissions(0o644);
    let options = match encryption {
        ZipEncryption::ZipCrypto => options
            .with_deprecated_encryption(password.as_bytes())
            .map_err(|_| NoticeError::BadPassword)?,
        ZipEncryption::Aes256 => options.with_aes_encryption(zip::AesMode::Aes256, password),
    };
    let zip_err = |e: zip::result::ZipError| NoticeError::Zip(e.to_string());
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    writer
        .start_file(format!("{notice_no}.pdf"), options)
        .map_err(zip_err)?;
    writer
        .write_all(pdf)
        .map_err(|e| NoticeError::Zip(e.to_string()))?;
    let cursor = writer.finish().map_err(zip_err)?;
    Ok(cursor.into_inner())
}

/// The text the PDF draws, page by page and line by line in reading order
/// (top to bottom, left to right; pieces of one line joined by two spaces).
/// A test aid: golden tests may compare this instead of `pdftotext` output.
pub fn notice_text(doc: &NoticeDocument) -> Result<String, NoticeError> {
    check_document(doc)?;
    let pages = layout::layout(doc).pages;
    let mut out = String::new();
    for (i, ops) in pages.iter().enumerate() {
        if i > 0 {
            out.push('\u{c}');
        }
        let mut texts: Vec<(f32, f32, &str)> = ops
            .iter()
            .filter_map(|op| match op {
                layout::Op::Text { x, y, text, .. } => Some((*y, *x, text.as_str())),
                _ => None,
            })
            .collect();
        texts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut last_y: Option<f32> = None;
        for (y, _, t) in texts {
            match last_y {
                Some(ly) if (y - ly).abs() < 3.0 => out.push_str("  "),
                Some(_) => out.push('\n'),
                None => {}
            }
            out.push_str(t);
            last_y = Some(y);
        }
        out.push('\n');
    }
    Ok(out)
}

/// Number of pages the notice takes.
pub fn page_count(doc: &NoticeDocument) -> Result<usize, NoticeError> {
    check_document(doc)?;
    Ok(layout::layout(doc).pages.len())
}

/// The fixed wording the layout prints (for tests: all of it must be drawable).
#[doc(hidden)]
pub fn fixed_wording() -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    v.extend(layout::HEADERS.iter().map(|s| s.to_string()));
    v.extend(layout::FOOTNOTES.iter().map(|s| s.to_string()));
    v.extend(layout::CLOSING.iter().map(|s| s.to_string()));
    v.extend(layout::greeting("").iter().cloned());
    v.extend(
        [
            "お支払通知書（続き）　通知書No： ",
            "発行日： 通知書No： ご担当者： 様 〒TEL お問い合わせ先：単位：円",
            "決済手数料にかかる消費税 前未精算金額 (*1) チャージバック 振込手数料",
            "振込手数料にかかる消費税 差引お振込金額 お振込先 指定金融機関 金融機関支店名",
            "口座種類 口座番号 口座名義 お振込み予定日 年月日 ¥-,0123456789/% お支払通知書",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    v
}

/// A piece of text as placed on a page (test aid for the no-clipping checks).
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedText {
    pub page: usize,
    pub x: f32,
    pub baseline: f32,
    pub width: f32,
    pub size: f32,
    pub text: String,
}

/// Every piece of text the layout places, with its measured width.
#[doc(hidden)]
pub fn placed_text(doc: &NoticeDocument) -> Result<Vec<PlacedText>, NoticeError> {
    check_document(doc)?;
    let pages = layout::layout(doc).pages;
    let mut out = Vec::new();
    for (page, ops) in pages.iter().enumerate() {
        for op in ops {
            if let layout::Op::Text { x, y, size, text } = op {
                out.push(PlacedText {
                    page,
                    x: *x,
                    baseline: *y,
                    width: text::width(text, *size),
                    size: *size,
                    text: text.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Page size in points (A4).
pub const PAGE_SIZE_PT: (f32, f32) = (layout::PAGE_W, layout::PAGE_H);
