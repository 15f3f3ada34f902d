//! Data out: statements (CSV with exactly the columns of SPEC §7, or JSON),
//! refusals, what a transfer file pays, and the explanation of one statement.

use std::path::Path;

use chrono::NaiveDate;
use domain::{BrandGroup, MerchantId};
use payout::cycle::Cycle;
use serde::Serialize;
use serde_json::{json, Value};

use crate::app::{refused, AppError};
use crate::cli::Format;
use crate::fold::History;
use crate::ingest::EventRefused;
use crate::output::emit;
use crate::store::{Store, StoreError};

pub const STATEMENT_COLUMNS: [&str; 23] = [
    "merchant_id",
    "period_start",
    "period_end",
    "payout_date",
    "notice_date",
    "notice_no",
    "visa_master_count",
    "visa_master_sales",
    "visa_master_fee",
    "jcb_other_count",
    "jcb_other_sales",
    "jcb_other_fee",
    "emoney_count",
    "emoney_sales",
    "emoney_fee",
    "fee_tax",
    "carry_in",
    "red_slips",
    "chargebacks",
    "transfer_fee",
    "transfer_fee_tax",
    "payout",
    "carry_out",
];

/// Rows as (column, value) in column order; numbers stay numbers for JSON.
fn statement_rows(h: &History) -> Vec<Vec<(&'static str, Value)>> {
    h.statements
        .values()
        .map(|s| {
            let f = &s.figures;
            let notice = h.latest_notice(&s.merchant_id, s.payout_date).map(|n| n.notice_no.clone()).unwrap_or_default();
            let mut v: Vec<Value> = vec![
                json!(s.merchant_id.as_str()),
                json!(s.period_start.to_string()),
                json!(s.period_end.to_string()),
                json!(s.payout_date.to_string()),
                json!(s.notice_date.to_string()),
                json!(notice),
            ];
            for g in BrandGroup::ALL {
                let l = f.line(g);
                v.extend([json!(l.count), json!(l.sales.get()), json!(l.fee.get())]);
            }
            for y in [
                f.fee_tax,
                f.carry_in,
                f.red_slips,
                f.chargebacks,
                f.transfer_fee,
                f.transfer_fee_tax,
                f.payout,
                f.carry_out,
            ] {
                v.push(json!(y.get()));
            }
            STATEMENT_COLUMNS.iter().copied().zip(v).collect()
        })
        .collect()
}

fn csv_bytes(header: &[&str], rows: impl Iterator<Item = Vec<String>>, bom: bool) -> Result<Vec<u8>, AppError> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(out);
    w.write_record(header).map_err(|e| refused(e.to_string()))?;
    for r in rows {
        w.write_record(&r).map_err(|e| refused(e.to_string()))?;
    }
    w.into_inner().map_err(|e| refused(e.to_string()))
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_bytes(rows: Vec<Vec<(&'static str, Value)>>) -> Vec<u8> {
    let arr: Vec<Value> = rows
        .into_iter()
        .map(|r| Value::Object(r.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
        .collect();
    let mut b = serde_json::to_vec_pretty(&arr).expect("json serialises");
    b.push(b'\n');
    b
}

pub async fn statements(st: &Store, format: Format, bom: bool, out: Option<&Path>) -> Result<(), AppError> {
    let h = History::load(st, false, None, None).await?;
    let rows = statement_rows(&h);
    let bytes = match format {
        Format::Csv => csv_bytes(&STATEMENT_COLUMNS, rows.iter().map(|r| r.iter().map(|(_, v)| cell(v)).collect()), bom)?,
        Format::Json => {
            let mut b = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
            b.extend(json_bytes(rows));
            b
        }
    };
    emit(out, &bytes)
}

pub async fn refusals(st: &Store, format: Format, out: Option<&Path>) -> Result<(), AppError> {
    let mut rows: Vec<EventRefused> = Vec::new();
    let read = crate::store::Read {
        types: Some(&["Refusal"]),
        ..Default::default()
    };
    st.for_each_event::<AppError, _>(&read, |r| {
        rows.push(serde_json::from_str(&r.payload).map_err(|e| StoreError::Corrupt(format!("position {}: {e}", r.position)))?);
        Ok(())
    })
    .await?;
    let bytes = match format {
        Format::Csv => csv_bytes(
            &["event_id", "code", "message"],
            rows.iter().map(|r| vec![r.event_id.clone(), r.code.clone(), r.message.clone()]),
            false,
        )?,
        Format::Json => json_bytes(
            rows.iter()
                .map(|r| {
                    vec![
                        ("event_id", json!(r.event_id)),
                        ("code", json!(r.code)),
                        ("message", json!(r.message)),
                        ("txn_id", json!(r.txn_id)),
                        ("kind", json!(r.kind)),
                        ("at", json!(r.at)),
                    ]
                })
                .collect(),
        ),
    };
    emit(out, &bytes)
}

pub const PAYOUT_COLUMNS: [&str; 11] = [
    "payout_date",
    "merchant_id",
    "bank_code",
    "bank_name",
    "branch_code",
    "branch_name",
    "account_type",
    "account_number",
    "account_holder",
    "amount",
    "status",
];

pub async fn payouts(st: &Store, date: NaiveDate, format: Format, out: Option<&Path>) -> Result<(), AppError> {
    let h = History::load(st, false, None, None).await?;
    let (transfers, status) = match h.transfer_files.get(&date) {
        Some(f) => (f.transfers.clone(), "written"),
        None => (crate::batch::transfers_for(&h, date)?, "pending"),
    };
    let rows: Vec<Vec<(&'static str, Value)>> = transfers
        .iter()
        .map(|t| {
            let names = MerchantId::parse(&t.merchant_id)
                .ok()
                .and_then(|m| h.ledger.contract(&m).map(|c| (c.bank.bank_name.clone(), c.bank.branch_name.clone())))
                .unwrap_or_default();
            let masked = format!("***{}", &t.account_number[t.account_number.len().saturating_sub(3)..]);
            PAYOUT_COLUMNS
                .iter()
                .copied()
                .zip([
                    json!(date.to_string()),
                    json!(t.merchant_id),
                    json!(t.bank_code),
                    json!(names.0),
                    json!(t.branch_code),
                    json!(names.1),
                    json!(t.account_type.label()),
                    json!(masked),
                    json!(t.holder_kana),
                    json!(t.amount_yen),
                    json!(status),
                ])
                .collect()
        })
        .collect();
    let total: i64 = transfers.iter().map(|t| t.amount_yen).sum();
    eprintln!("payouts of {date}: {} transfers, total {total} yen ({status})", transfers.len());
    let bytes = match format {
        Format::Csv => csv_bytes(&PAYOUT_COLUMNS, rows.iter().map(|r| r.iter().map(|(_, v)| cell(v)).collect()), false)?,
        Format::Json => json_bytes(rows),
    };
    emit(out, &bytes)
}

#[derive(Serialize)]
struct Explanation {
    merchant_id: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    payout_date: NaiveDate,
    carry_in: i64,
    carry_in_origin: Option<String>,
    items: Vec<projections::ExplainItem>,
    figures: payout::rules::StatementFigures,
}

pub async fn explain(st: &Store, merchant: &str, period: NaiveDate, format: Format) -> Result<(), AppError> {
    let m = MerchantId::parse(merchant).map_err(|e| refused(format!("--merchant: {e}")))?;
    let cycle = Cycle::starting(period).ok_or_else(|| refused(format!("--period {period} is not the first day of a cycle (the 1st or the 16th)")))?;
    let h = History::load(st, false, None, Some(m.clone())).await?;
    let stmt = h
        .statements
        .get(&(m.clone(), period))
        .ok_or_else(|| refused(format!("merchant {m} has no closed statement for the period from {period}")))?;
    let (_, items) = h
        .ledger
        .explained(&m, cycle)
        .ok_or_else(|| AppError::Invariant(format!("the explanation of {m} {period} was not kept")))?;
    let origin = (!stmt.figures.carry_in.is_zero()).then(|| {
        h.statements
            .range((m.clone(), NaiveDate::MIN)..(m.clone(), period))
            .next_back()
            .map(|(_, p)| {
                format!(
                    "carry-out of the statement {}..{} (payout date {}): nothing was transferred, the balance was carried",
                    p.period_start, p.period_end, p.payout_date
                )
            })
            .unwrap_or_else(|| "no earlier statement".into())
    });
    let ex = Explanation {
        merchant_id: m.to_string(),
        period_start: stmt.period_start,
        period_end: stmt.period_end,
        payout_date: stmt.payout_date,
        carry_in: stmt.figures.carry_in.get(),
        carry_in_origin: origin,
        items: items.clone(),
        figures: stmt.figures.clone(),
    };
    let bytes = match format {
        Format::Json => {
            let mut b = serde_json::to_vec_pretty(&ex).expect("serialises");
            b.push(b'\n');
            b
        }
        Format::Csv => {
            let rows = ex.items.iter().map(|i| {
                vec![
                    i.position.to_string(),
                    i.event_id.clone(),
                    i.txn_id.clone(),
                    i.kind.to_string(),
                    i.at.to_rfc3339(),
                    i.booking_date.to_string(),
                    i.group.map(|g| g.label().to_string()).unwrap_or_default(),
                    serde_json::to_value(i.line).ok().map(|v| cell(&v)).unwrap_or_default(),
                    i.amount.to_string(),
                    i.effect.to_string(),
                    i.reason.clone(),
                ]
            });
            let mut b = csv_bytes(
                &[
                    "position",
                    "event_id",
                    "txn_id",
                    "kind",
                    "at",
                    "booking_date",
                    "group",
                    "line",
                    "amount",
                    "effect",
                    "reason",
                ],
                rows,
                false,
            )?;
            if let Some(o) = &ex.carry_in_origin {
                eprintln!("carry_in {}: {o}", ex.carry_in);
            }
            b.shrink_to_fit();
            b
        }
    };
    emit(None, &bytes)
}
