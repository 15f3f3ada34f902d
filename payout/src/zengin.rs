//! The bank transfer file (全銀協 総合振込 format) of one payout date.
//!
//! Fixed-length records of [`RECORD_LEN`] bytes, each followed by CR LF, in JIS X
//! 0201 8-bit: a header record (`1`), one data record (`2`) per transfer in the
//! order given, a trailer (`8`) with the count and total, and an end record (`9`).
//! Numeric fields are right-aligned and zero-filled, text fields left-aligned and
//! space-filled. The layout, byte by byte, is in `docs/zengin.md`.
//!
//! The writer is a pure function: the same remitter, date and transfers always give
//! the same bytes (and so the same SHA-256).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::kana::{encode_jis_x0201, fit_field, to_transfer_kana, KanaError};

// --- Record framing -----------------------------------------------------------

/// Length of every record, without its line end.
pub const RECORD_LEN: usize = 120;
/// What follows every record (the end record too).
pub const RECORD_END: &[u8; 2] = b"\r\n";

/// データ区分 (record kind, column 1) of the header record.
pub const KIND_HEADER: u8 = b'1';
/// データ区分 of a data record.
pub const KIND_DATA: u8 = b'2';
/// データ区分 of the trailer record.
pub const KIND_TRAILER: u8 = b'8';
/// データ区分 of the end record.
pub const KIND_END: u8 = b'9';

// --- Header record --------------------------------------------------------------

/// 種別コード (columns 2–3): `21` = 総合振込 (general transfer).
pub const TYPE_CODE_GENERAL_TRANSFER: &[u8; 2] = b"21";
/// コード区分 (column 4): `0` = JIS (Shift_JIS single-byte); `1` would be EBCDIC.
pub const CODE_KIND_JIS: u8 = b'0';
/// 依頼人コード (columns 5–14): digits of the requester code given by the bank.
pub const REQUESTER_CODE_DIGITS: usize = 10;
/// 依頼人名 (columns 15–54).
pub const REQUESTER_NAME_WIDTH: usize = 40;
/// 振込指定日 (columns 55–58), `MMDD`.
pub const TRANSFER_DATE_FORMAT: &str = "%m%d";
/// Width of the transfer date.
pub const TRANSFER_DATE_WIDTH: usize = 4;
/// Filler at the end of the header (columns 104–120).
pub const HEADER_FILLER_WIDTH: usize = 17;

// --- Shared by header and data -------------------------------------------------------

/// 銀行番号: digits of a bank code.
pub const BANK_CODE_DIGITS: usize = 4;
/// 銀行名: width in bytes of a bank name.
pub const BANK_NAME_WIDTH: usize = 15;
/// 支店番号: digits of a branch code.
pub const BRANCH_CODE_DIGITS: usize = 3;
/// 支店名: width in bytes of a branch name.
pub const BRANCH_NAME_WIDTH: usize = 15;
/// 口座番号: digits of an account number.
pub const ACCOUNT_NUMBER_DIGITS: usize = 7;

// --- Data record -------------------------------------------------------------

/// 手形交換所番号 (columns 39–42): not used for telegraphic transfers, left blank.
pub const CLEARING_HOUSE_WIDTH: usize = 4;
/// 受取人名 (columns 51–80).
pub const PAYEE_NAME_WIDTH: usize = 30;
/// 振込金額 (columns 81–90).
pub const AMOUNT_DIGITS: usize = 10;
/// The largest amount of one transfer (10 digits).
pub const MAX_AMOUNT_YEN: i64 = 9_999_999_999;
/// 新規コード (column 91): `0` = other (neither first transfer nor changed details).
pub const NEW_CODE_OTHER: u8 = b'0';
/// 顧客コード1 / 顧客コード2 (columns 92–101 / 102–111).
pub const CUSTOMER_CODE_DIGITS: usize = 10;
/// Digits of a merchant id (SPEC §6), written in 顧客コード1.
pub const MERCHANT_ID_DIGITS: usize = 9;
/// 振込指定区分 (column 112): `7` = telegraphic transfer (テレ振込).
pub const TRANSFER_KIND_TELEGRAPHIC: u8 = b'7';
/// Filler at the end of a data record (columns 113–120; 113 is the EDI 識別表示,
/// blank because customer codes, not EDI information, are used).
pub const DATA_FILLER_WIDTH: usize = 8;

// --- Trailer and end -----------------------------------------------------------

/// 合計件数 (columns 2–7): number of data records.
pub const COUNT_DIGITS: usize = 6;
/// The most data records a file can count.
pub const MAX_RECORDS: usize = 999_999;
/// 合計金額 (columns 8–19).
pub const TOTAL_DIGITS: usize = 12;
/// The largest total a file can carry (12 digits).
pub const MAX_TOTAL_YEN: i64 = 999_999_999_999;
/// Filler of the trailer (columns 20–120).
pub const TRAILER_FILLER_WIDTH: usize = 101;
/// Filler of the end record (columns 2–120).
pub const END_FILLER_WIDTH: usize = 119;

// --- Types ---------------------------------------------------------------------

/// 預金種目: the kind of a bank account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AccountType {
    /// 普通 (ordinary), code `1`. Also read from `"普通"` (the config and CSV spelling).
    #[serde(alias = "普通")]
    Ordinary,
    /// 当座 (current), code `2`. Also read from `"当座"`.
    #[serde(alias = "当座")]
    Current,
}

impl AccountType {
    /// The one-digit code of the transfer file.
    pub fn code(self) -> u8 {
        match self {
            AccountType::Ordinary => b'1',
            AccountType::Current => b'2',
        }
    }

    /// The Japanese label: `普通` or `当座`.
    pub fn label(self) -> &'static str {
        match self {
            AccountType::Ordinary => "普通",
            AccountType::Current => "当座",
        }
    }
}

impl FromStr for AccountType {
    type Err = String;
    /// Reads `普通` / `当座` (the spellings of merchants.csv and the config).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "普通" => Ok(AccountType::Ordinary),
            "当座" => Ok(AccountType::Current),
            other => Err(format!("account type {other:?} is neither 普通 nor 当座")),
        }
    }
}

impl fmt::Display for AccountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The company sending the transfers (SPEC §7 `[remitter]`): the header record.
/// Deserializes directly from the `[remitter]` table of the config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Remitter {
    /// 依頼人コード: 10 digits.
    pub requester_code: String,
    /// 依頼人名, in the transfer alphabet; required; cut to 40 bytes.
    pub name_kana: String,
    /// 仕向銀行番号: 4 digits.
    pub bank_code: String,
    /// 仕向銀行名; may be empty (blank field); cut to 15 bytes.
    pub bank_name_kana: String,
    /// 仕向支店番号: 3 digits.
    pub branch_code: String,
    /// 仕向支店名; may be empty (blank field); cut to 15 bytes.
    pub branch_name_kana: String,
    /// 預金種目 of the debited account.
    pub account_type: AccountType,
    /// 口座番号 of the debited account: 7 digits.
    pub account_number: String,
}

impl Remitter {
    /// The demo remitter of SPEC §7 (used when no config is given).
    pub fn demo() -> Remitter {
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

    /// Checks every field as [`write_transfer_file`] would (e.g. when the config is loaded).
    pub fn validate(&self) -> Result<(), ZenginError> {
        header_record(
            self,
            NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date"),
        )
        .map(|_| ())
    }
}

/// One payout to one merchant's account: a data record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transfer {
    /// 被仕向銀行番号: 4 digits.
    pub bank_code: String,
    /// 被仕向銀行名 (merchants.csv `bank_name_kana`); may be empty; cut to 15 bytes.
    pub bank_name_kana: String,
    /// 被仕向支店番号: 3 digits.
    pub branch_code: String,
    /// 被仕向支店名 (merchants.csv `branch_name_kana`); may be empty; cut to 15 bytes.
    pub branch_name_kana: String,
    /// 預金種目.
    pub account_type: AccountType,
    /// 口座番号: 7 digits.
    pub account_number: String,
    /// 受取人名 (merchants.csv `account_holder`); required; cut to 30 bytes.
    pub holder_kana: String,
    /// 振込金額: 1 ..= 9,999,999,999 yen.
    pub amount_yen: i64,
    /// 9 digits; written right-aligned, zero-filled in 顧客コード1 (N10).
    pub merchant_id: String,
}

/// Which record a [`ZenginError`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRef {
    /// The header (the remitter's fields).
    Remitter,
    /// The transfer at this index of the slice given to the writer.
    Transfer { index: usize, merchant_id: String },
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordRef::Remitter => f.write_str("remitter"),
            RecordRef::Transfer { index, merchant_id } => {
                write!(f, "transfer #{index} (merchant {merchant_id:?})")
            }
        }
    }
}

/// Why a transfer file cannot be written. Values named here are codes, names and
/// amounts of the transfer itself (no secrets).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZenginError {
    /// A code or number field with the wrong form, or an empty required name.
    #[error("{at}: {field} {value:?} is invalid: {reason}")]
    InvalidField {
        at: RecordRef,
        field: &'static str,
        value: String,
        reason: String,
    },
    /// A name that cannot be written in the bank transfer alphabet.
    #[error("{at}: {field} {value:?}: {source}")]
    Kana {
        at: RecordRef,
        field: &'static str,
        value: String,
        #[source]
        source: KanaError,
    },
    /// A zero, negative or over-10-digit amount (a zero or negative payout is never written).
    #[error("{at}: amount {amount} yen is not between 1 and {MAX_AMOUNT_YEN}")]
    Amount { at: RecordRef, amount: i64 },
    /// The total does not fit the trailer's 12 digits.
    #[error("the total of the file, {total} yen, exceeds {MAX_TOTAL_YEN} (12 digits)")]
    TotalTooLarge { total: i64 },
    /// More data records than the trailer's 6 digits can count.
    #[error("{count} transfers exceed the {MAX_RECORDS} data records of one file")]
    TooManyRecords { count: usize },
}

/// A written transfer file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferFile {
    /// The file: JIS X 0201 bytes, records of 120 bytes each ending in CR LF.
    pub bytes: Vec<u8>,
    /// Number of data records (= transfers).
    pub record_count: usize,
    /// Sum of the amounts (= the trailer's total).
    pub total_yen: i64,
    /// SHA-256 of `bytes`, lower-case hex.
    pub sha256_hex: String,
}

// --- Writer ----------------------------------------------------------------------

/// Writes the header, one data record per transfer IN THE ORDER GIVEN (the caller
/// orders by merchant id), the trailer and the end record. Deterministic.
///
/// An empty `transfers` gives a well-formed file with a count and total of zero;
/// whether to send such a file is the caller's decision.
pub fn write_transfer_file(
    remitter: &Remitter,
    transfer_date: NaiveDate,
    transfers: &[Transfer],
) -> Result<TransferFile, ZenginError> {
    check_record_count(transfers.len())?;
    let mut bytes = Vec::with_capacity((transfers.len() + 3) * (RECORD_LEN + RECORD_END.len()));
    push_record(&mut bytes, header_record(remitter, transfer_date)?);
    let mut total: i64 = 0;
    for (index, transfer) in transfers.iter().enumerate() {
        let at = RecordRef::Transfer {
            index,
            merchant_id: transfer.merchant_id.clone(),
        };
        push_record(&mut bytes, data_record(&at, transfer)?);
        // Cannot overflow: at most 999,999 amounts of at most 10 digits.
        total += transfer.amount_yen;
    }
    if total > MAX_TOTAL_YEN {
        return Err(ZenginError::TotalTooLarge { total });
    }
    push_record(&mut bytes, trailer_record(transfers.len(), total));
    push_record(&mut bytes, end_record());
    let sha256_hex = hex::encode(Sha256::digest(&bytes));
    Ok(TransferFile {
        bytes,
        record_count: transfers.len(),
        total_yen: total,
        sha256_hex,
    })
}

fn check_record_count(count: usize) -> Result<(), ZenginError> {
    if count > MAX_RECORDS {
        return Err(ZenginError::TooManyRecords { count });
    }
    Ok(())
}

fn push_record(out: &mut Vec<u8>, record: Record) {
    let bytes = record.finish();
    out.extend_from_slice(&bytes);
    out.extend_from_slice(RECORD_END);
}

fn header_record(r: &Remitter, transfer_date: NaiveDate) -> Result<Record, ZenginError> {
    let at = RecordRef::Remitter;
    let requester_code = digits(
        &at,
        "requester_code",
        &r.requester_code,
        REQUESTER_CODE_DIGITS,
    )?;
    let name = name_field(&at, "name_kana", &r.name_kana, REQUESTER_NAME_WIDTH, true)?;
    let bank_code = digits(&at, "bank_code", &r.bank_code, BANK_CODE_DIGITS)?;
    let bank_name = name_field(
        &at,
        "bank_name_kana",
        &r.bank_name_kana,
        BANK_NAME_WIDTH,
        false,
    )?;
    let branch_code = digits(&at, "branch_code", &r.branch_code, BRANCH_CODE_DIGITS)?;
    let branch_name = name_field(
        &at,
        "branch_name_kana",
        &r.branch_name_kana,
        BRANCH_NAME_WIDTH,
        false,
    )?;
    let account_number = digits(
        &at,
        "account_number",
        &r.account_number,
        ACCOUNT_NUMBER_DIGITS,
    )?;
    let date = transfer_date.format(TRANSFER_DATE_FORMAT).to_string();

    let mut rec = Record::new(KIND_HEADER);
    rec.push(TYPE_CODE_GENERAL_TRANSFER);
    rec.push(&[CODE_KIND_JIS]);
    rec.push(requester_code);
    rec.push(&name);
    rec.push_exact(date.as_bytes(), TRANSFER_DATE_WIDTH);
    rec.push(bank_code);
    rec.push(&bank_name);
    rec.push(branch_code);
    rec.push(&branch_name);
    rec.push(&[r.account_type.code()]);
    rec.push(account_number);
    rec.push_blank(HEADER_FILLER_WIDTH);
    Ok(rec)
}

fn data_record(at: &RecordRef, t: &Transfer) -> Result<Record, ZenginError> {
    let bank_code = digits(at, "bank_code", &t.bank_code, BANK_CODE_DIGITS)?;
    let bank_name = name_field(
        at,
        "bank_name_kana",
        &t.bank_name_kana,
        BANK_NAME_WIDTH,
        false,
    )?;
    let branch_code = digits(at, "branch_code", &t.branch_code, BRANCH_CODE_DIGITS)?;
    let branch_name = name_field(
        at,
        "branch_name_kana",
        &t.branch_name_kana,
        BRANCH_NAME_WIDTH,
        false,
    )?;
    let account_number = digits(
        at,
        "account_number",
        &t.account_number,
        ACCOUNT_NUMBER_DIGITS,
    )?;
    let holder = name_field(at, "holder_kana", &t.holder_kana, PAYEE_NAME_WIDTH, true)?;
    if !(1..=MAX_AMOUNT_YEN).contains(&t.amount_yen) {
        return Err(ZenginError::Amount {
            at: at.clone(),
            amount: t.amount_yen,
        });
    }
    let merchant_id = digits(at, "merchant_id", &t.merchant_id, MERCHANT_ID_DIGITS)?;

    let mut rec = Record::new(KIND_DATA);
    rec.push(bank_code);
    rec.push(&bank_name);
    rec.push(branch_code);
    rec.push(&branch_name);
    rec.push_blank(CLEARING_HOUSE_WIDTH);
    rec.push(&[t.account_type.code()]);
    rec.push(account_number);
    rec.push(&holder);
    rec.push_number(t.amount_yen as u64, AMOUNT_DIGITS);
    rec.push(&[NEW_CODE_OTHER]);
    rec.push_zero_filled(merchant_id, CUSTOMER_CODE_DIGITS);
    rec.push_number(0, CUSTOMER_CODE_DIGITS); // 顧客コード2: unused
    rec.push(&[TRANSFER_KIND_TELEGRAPHIC]);
    rec.push_blank(DATA_FILLER_WIDTH);
    Ok(rec)
}

fn trailer_record(count: usize, total: i64) -> Record {
    let mut rec = Record::new(KIND_TRAILER);
    rec.push_number(count as u64, COUNT_DIGITS);
    rec.push_number(total as u64, TOTAL_DIGITS);
    rec.push_blank(TRAILER_FILLER_WIDTH);
    rec
}

fn end_record() -> Record {
    let mut rec = Record::new(KIND_END);
    rec.push_blank(END_FILLER_WIDTH);
    rec
}

/// Checks that `value` is exactly `n` ASCII digits and returns its bytes.
fn digits<'a>(
    at: &RecordRef,
    field: &'static str,
    value: &'a str,
    n: usize,
) -> Result<&'a [u8], ZenginError> {
    if value.len() == n && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.as_bytes())
    } else {
        Err(ZenginError::InvalidField {
            at: at.clone(),
            field,
            value: value.to_owned(),
            reason: format!("must be exactly {n} digits"),
        })
    }
}

/// Converts a name to the transfer alphabet, encodes it and fits it to `width` bytes.
fn name_field(
    at: &RecordRef,
    field: &'static str,
    value: &str,
    width: usize,
    required: bool,
) -> Result<Vec<u8>, ZenginError> {
    let kana = to_transfer_kana(value).map_err(|source| ZenginError::Kana {
        at: at.clone(),
        field,
        value: value.to_owned(),
        source,
    })?;
    if required && kana.trim_matches(' ').is_empty() {
        return Err(ZenginError::InvalidField {
            at: at.clone(),
            field,
            value: value.to_owned(),
            reason: "must not be empty".into(),
        });
    }
    Ok(fit_field(&encode_jis_x0201(&kana), width))
}

/// A record being built; [`Record::finish`] checks it is exactly [`RECORD_LEN`] bytes.
struct Record(Vec<u8>);

impl Record {
    fn new(kind: u8) -> Record {
        let mut bytes = Vec::with_capacity(RECORD_LEN);
        bytes.push(kind);
        Record(bytes)
    }

    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn push_exact(&mut self, bytes: &[u8], width: usize) {
        assert_eq!(bytes.len(), width, "field of the wrong width");
        self.push(bytes);
    }

    fn push_blank(&mut self, width: usize) {
        self.0.resize(self.0.len() + width, b' ');
    }

    /// Right-aligned, zero-filled digits.
    fn push_zero_filled(&mut self, digits: &[u8], width: usize) {
        assert!(digits.len() <= width, "number wider than its field");
        self.0.resize(self.0.len() + width - digits.len(), b'0');
        self.push(digits);
    }

    fn push_number(&mut self, n: u64, width: usize) {
        self.push_zero_filled(n.to_string().as_bytes(), width);
    }

    fn finish(self) -> Vec<u8> {
        assert_eq!(
            self.0.len(),
            RECORD_LEN,
            "record of the wrong length: layout bug"
        );
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_transfer() -> Transfer {
        Transfer {
            bank_code: "0010".into(),
            bank_name_kana: "リソナ".into(),
            branch_code: "999".into(),
            branch_name_kana: "ショウケンシンタクギョウム".into(),
            account_type: AccountType::Ordinary,
            account_number: "1234567".into(),
            holder_kana: "ペイジノ".into(),
            amount_yen: 8_284,
            merchant_id: "270212122".into(),
        }
    }

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2019, 10, 31).unwrap()
    }

    fn records(file: &TransferFile) -> Vec<&[u8]> {
        file.bytes
            .split(|&b| b == b'\n')
            .filter(|r| !r.is_empty())
            .collect()
    }

    #[test]
    fn layout_widths_add_up() {
        let header = 1
            + 2
            + 1
            + REQUESTER_CODE_DIGITS
            + REQUESTER_NAME_WIDTH
            + TRANSFER_DATE_WIDTH
            + BANK_CODE_DIGITS
            + BANK_NAME_WIDTH
            + BRANCH_CODE_DIGITS
            + BRANCH_NAME_WIDTH
            + 1
            + ACCOUNT_NUMBER_DIGITS
            + HEADER_FILLER_WIDTH;
        let data = 1
            + BANK_CODE_DIGITS
            + BANK_NAME_WIDTH
            + BRANCH_CODE_DIGITS
            + BRANCH_NAME_WIDTH
            + CLEARING_HOUSE_WIDTH
            + 1
            + ACCOUNT_NUMBER_DIGITS
            + PAYEE_NAME_WIDTH
            + AMOUNT_DIGITS
            + 1
            + 2 * CUSTOMER_CODE_DIGITS
            + 1
            + DATA_FILLER_WIDTH;
        let trailer = 1 + COUNT_DIGITS + TOTAL_DIGITS + TRAILER_FILLER_WIDTH;
        let end = 1 + END_FILLER_WIDTH;
        assert_eq!([header, data, trailer, end], [RECORD_LEN; 4]);
    }

    #[test]
    fn writes_four_records_of_120_bytes() {
        let file = write_transfer_file(&Remitter::demo(), date(), &[sample_transfer()]).unwrap();
        assert_eq!(file.record_count, 1);
        assert_eq!(file.total_yen, 8_284);
        assert_eq!(file.bytes.len(), 4 * 122);
        for rec in records(&file) {
            assert_eq!(rec.len(), 121);
            assert_eq!(rec[120], b'\r');
        }
        let data = records(&file)[1];
        assert_eq!(&data[80..90], b"0000008284");
        assert_eq!(&data[91..101], b"0270212122");
        assert_eq!(&data[101..111], b"0000000000");
        assert_eq!(data[111], b'7');
        assert_eq!(file.sha256_hex, hex::encode(Sha256::digest(&file.bytes)));
    }

    #[test]
    fn is_deterministic() {
        let a = write_transfer_file(&Remitter::demo(), date(), &[sample_transfer()]).unwrap();
        let b = write_transfer_file(&Remitter::demo(), date(), &[sample_transfer()]).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn empty_file_has_zero_count_and_total() {
        let file = write_transfer_file(&Remitter::demo(), date(), &[]).unwrap();
        assert_eq!(file.record_count, 0);
        assert_eq!(&records(&file)[1][..19], b"8000000000000000000");
    }

    #[test]
    fn refuses_zero_negative_and_too_large_amounts() {
        for amount in [0, -1, MAX_AMOUNT_YEN + 1] {
            let t = Transfer {
                amount_yen: amount,
                ..sample_transfer()
            };
            let err = write_transfer_file(&Remitter::demo(), date(), &[t]).unwrap_err();
            assert!(
                matches!(err, ZenginError::Amount { amount: a, .. } if a == amount),
                "{err}"
            );
        }
        let t = Transfer {
            amount_yen: MAX_AMOUNT_YEN,
            ..sample_transfer()
        };
        assert!(write_transfer_file(&Remitter::demo(), date(), &[t]).is_ok());
    }

    #[test]
    fn refuses_a_total_over_12_digits() {
        let t = Transfer {
            amount_yen: MAX_AMOUNT_YEN,
            ..sample_transfer()
        };
        let ok = vec![t.clone(); 100]; // 999,999,999,900
        assert!(write_transfer_file(&Remitter::demo(), date(), &ok).is_ok());
        let too_many = vec![t; 101];
        let err = write_transfer_file(&Remitter::demo(), date(), &too_many).unwrap_err();
        assert_eq!(
            err,
            ZenginError::TotalTooLarge {
                total: 101 * MAX_AMOUNT_YEN
            }
        );
    }

    #[test]
    fn refuses_more_records_than_six_digits() {
        assert!(check_record_count(MAX_RECORDS).is_ok());
        assert_eq!(
            check_record_count(MAX_RECORDS + 1),
            Err(ZenginError::TooManyRecords {
                count: MAX_RECORDS + 1
            })
        );
    }

    #[test]
    fn refuses_malformed_codes_naming_field_and_value() {
        type Case = (fn(&mut Transfer), &'static str, &'static str);
        let cases: [Case; 5] = [
            (|t| t.bank_code = "10".into(), "bank_code", "10"),
            (|t| t.branch_code = "99a".into(), "branch_code", "99a"),
            (
                |t| t.account_number = "12345678".into(),
                "account_number",
                "12345678",
            ),
            (
                |t| t.merchant_id = "27021212".into(),
                "merchant_id",
                "27021212",
            ),
            (|t| t.holder_kana = " ".into(), "holder_kana", " "),
        ];
        for (edit, field, value) in cases {
            let mut t = sample_transfer();
            edit(&mut t);
            let ok = sample_transfer();
            let err = write_transfer_file(&Remitter::demo(), date(), &[ok, t]).unwrap_err();
            match &err {
                ZenginError::InvalidField {
                    at,
                    field: f,
                    value: v,
                    ..
                } => {
                    assert!(matches!(at, RecordRef::Transfer { index: 1, .. }), "{at}");
                    assert_eq!((*f, v.as_str()), (field, value));
                }
                other => panic!("{other}"),
            }
            let message = err.to_string();
            assert!(
                message.contains("transfer #1") && message.contains(field),
                "{message}"
            );
        }
    }

    #[test]
    fn refuses_names_outside_the_alphabet() {
        let t = Transfer {
            holder_kana: "山田".into(),
            ..sample_transfer()
        };
        let err = write_transfer_file(&Remitter::demo(), date(), &[t]).unwrap_err();
        assert_eq!(
            err,
            ZenginError::Kana {
                at: RecordRef::Transfer {
                    index: 0,
                    merchant_id: "270212122".into()
                },
                field: "holder_kana",
                value: "山田".into(),
                source: KanaError::NotAllowed('山'),
            }
        );
        let r = Remitter {
            name_kana: "".into(),
            ..Remitter::demo()
        };
        assert!(matches!(
            r.validate(),
            Err(ZenginError::InvalidField {
                at: RecordRef::Remitter,
                field: "name_kana",
                ..
            })
        ));
        let r = Remitter {
            requester_code: "123".into(),
            ..Remitter::demo()
        };
        assert!(write_transfer_file(&r, date(), &[sample_transfer()]).is_err());
        assert_eq!(Remitter::demo().validate(), Ok(()));
    }

    #[test]
    fn empty_bank_and_branch_names_are_blank() {
        let t = Transfer {
            bank_name_kana: "".into(),
            branch_name_kana: "".into(),
            ..sample_transfer()
        };
        let file = write_transfer_file(&Remitter::demo(), date(), &[t]).unwrap();
        let data = records(&file)[1];
        assert_eq!(&data[5..20], &[b' '; 15]);
        assert_eq!(&data[23..38], &[b' '; 15]);
    }

    #[test]
    fn account_type_codes_and_spellings() {
        assert_eq!(AccountType::Ordinary.code(), b'1');
        assert_eq!(AccountType::Current.code(), b'2');
        assert_eq!("普通".parse::<AccountType>(), Ok(AccountType::Ordinary));
        assert_eq!("当座".parse::<AccountType>(), Ok(AccountType::Current));
        assert!("貯蓄".parse::<AccountType>().is_err());
    }
}
