//! The history as the batch, the exports and the audit see it: one pass over
//! the event log in recording order, feeding the ledger and collecting what the
//! batch recorded (statements, notices, transfer files, runs).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use domain::merchant::MerchantEvent;
use domain::payment::PaymentEvent;
use domain::{MerchantId, TxnId};
use notices::NoticeDocument;
use payout::zengin::{Remitter, Transfer};
use projections::ledger::Difference;
use projections::{Ledger, RunCompleted, SettlementEvent, StatementClosed};
use serde::{Deserialize, Serialize};

use crate::app::AppError;
use crate::store::{RecordedEvent, Store, StoreError, CHAIN_GENESIS};

/// A notice revision as issued: everything it shows, and the PDF's hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NoticeIssued {
    pub notice_no: String,
    pub revision: u32,
    pub merchant_id: MerchantId,
    pub period_start: NaiveDate,
    pub payout_date: NaiveDate,
    pub issue_date: NaiveDate,
    pub document: NoticeDocument,
    pub pdf_sha256: String,
    pub pdf_bytes: u64,
    pub reason: Option<String>,
    pub by: Option<String>,
}

/// A bank transfer file as written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TransferFileWritten {
    pub payout_date: NaiveDate,
    pub file_name: String,
    pub record_count: u64,
    pub total_yen: i64,
    pub sha256: String,
    pub remitter: Remitter,
    pub transfers: Vec<Transfer>,
}

pub const SETTLEMENT: &str = "Settlement";
pub const SETTLEMENT_RUN: &str = "SettlementRun";
pub const NOTICE: &str = "Notice";
pub const TRANSFER_FILE: &str = "TransferFile";

/// The Notice stream of a statement: one per merchant and payout date.
pub fn notice_stream(m: &MerchantId, payout: NaiveDate) -> String {
    format!("{m}-{}", payout.format("%Y%m%d"))
}

pub fn notice_no(m: &MerchantId, revision: u32, payout: NaiveDate) -> String {
    format!("{m}-{revision:03}-{}", payout.format("%Y%m%d"))
}

/// A problem the audit reports (a difference or a break of the chain).
#[derive(Clone, Debug)]
pub struct Finding {
    pub place: String,
    pub field: String,
    pub recorded: String,
    pub recomputed: String,
}

impl From<Difference> for Finding {
    fn from(d: Difference) -> Finding {
        Finding {
            place: format!("merchant {} cycle {}", d.merchant_id, d.period_start),
            field: d.field,
            recorded: d.recorded,
            recomputed: d.recomputed,
        }
    }
}

#[derive(Default)]
pub struct History {
    pub ledger: Ledger,
    /// Every recorded statement, by merchant and period start.
    pub statements: BTreeMap<(MerchantId, NaiveDate), StatementClosed>,
    pub settlement_seq: HashMap<MerchantId, i64>,
    /// Every notice revision, by Notice stream, in revision order.
    pub notices: BTreeMap<String, Vec<NoticeIssued>>,
    pub transfer_files: BTreeMap<NaiveDate, TransferFileWritten>,
    pub runs: Vec<RunCompleted>,
    pub events_read: u64,
    pub last_position: i64,
    /// With verification on: every difference found.
    pub findings: Vec<Finding>,
    verify: bool,
    chain_prev: String,
    chain_prev_position: i64,
    chain_unsealed_from: Option<i64>,
}

fn corrupt(r: &RecordedEvent, e: impl std::fmt::Display) -> AppError {
    AppError::Store(StoreError::Corrupt(format!(
        "position {} ({} {}): {e}",
        r.position, r.aggregate_type, r.event_type
    )))
}

impl History {
    /// Folds the whole log (or what was recorded up to `until`).
    pub async fn load(st: &Store, verify: bool, until: Option<DateTime<Utc>>, explain: Option<MerchantId>) -> Result<History, AppError> {
        let mut h = History {
            verify,
            chain_prev: CHAIN_GENESIS.to_string(),
            ..History::default()
        };
        if let Some(m) = explain {
            h.ledger = Ledger::explaining(m);
        }
        let n = st.for_each_event::<AppError, _>(0, until, None, |r| h.apply(r)).await?;
        h.events_read = n;
        Ok(h)
    }

    pub fn apply(&mut self, r: RecordedEvent) -> Result<(), AppError> {
        if self.verify {
            self.check_chain(&r)?;
        }
        self.last_position = r.position;
        match r.aggregate_type.as_str() {
            "Payment" => {
                let e: PaymentEvent = serde_json::from_str(&r.payload).map_err(|e| corrupt(&r, e))?;
                let txn = TxnId::parse(&r.aggregate_id).map_err(|e| corrupt(&r, e))?;
                self.ledger.apply_payment(r.position, &txn, &e);
            }
            "Merchant" => {
                let e: MerchantEvent = serde_json::from_str(&r.payload).map_err(|e| corrupt(&r, e))?;
                self.ledger.apply_merchant(&e);
            }
            SETTLEMENT => {
                let e: SettlementEvent = serde_json::from_str(&r.payload).map_err(|e| corrupt(&r, e))?;
                let SettlementEvent::StatementClosed(st) = e else {
                    return Err(corrupt(&r, "not a statement"));
                };
                let diffs = self.ledger.apply_statement_closed(&st, self.verify);
                self.findings.extend(diffs.into_iter().map(Finding::from));
                let m = st.merchant_id.clone();
                self.settlement_seq.insert(m.clone(), r.sequence);
                self.statements.insert((m, st.period_start), st);
            }
            SETTLEMENT_RUN => {
                let e: SettlementEvent = serde_json::from_str(&r.payload).map_err(|e| corrupt(&r, e))?;
                let SettlementEvent::RunCompleted(run) = e else {
                    return Err(corrupt(&r, "not a run"));
                };
                let diffs = self.ledger.apply_run_completed(&run, self.verify);
                self.findings.extend(diffs.into_iter().map(Finding::from));
                self.runs.push(run);
            }
            NOTICE => {
                let n: NoticeIssued = serde_json::from_str(&r.payload).map_err(|e| corrupt(&r, e))?;
                self.notices.entry(r.aggregate_id.clone()).or_default().push(n);
            }
            TRANSFER_FILE => {
                let t: TransferFileWritten = serde_json::from_str(&r.payload).map_err(|e| corrupt(&r, e))?;
                self.transfer_files.insert(t.payout_date, t);
            }
            _ => {}
        }
        Ok(())
    }

    fn check_chain(&mut self, r: &RecordedEvent) -> Result<(), AppError> {
        match &r.chain_hash {
            None => {
                self.chain_unsealed_from.get_or_insert(r.position);
                if r.aggregate_type != "Merchant" {
                    self.findings.push(Finding {
                        place: format!("position {} ({} {} sequence {})", r.position, r.aggregate_type, r.aggregate_id, r.sequence),
                        field: "chain_hash".into(),
                        recorded: "missing".into(),
                        recomputed: "only merchant imports leave rows to be sealed: this row was written outside upay's writers".into(),
                    });
                }
            }
            Some(h) => {
                if let Some(from) = self.chain_unsealed_from.take() {
                    self.findings.push(Finding {
                        place: format!("position {from}"),
                        field: "chain_hash".into(),
                        recorded: "missing".into(),
                        recomputed: "rows after it are sealed: the hash was removed".into(),
                    });
                }
                let expected = r.expected_hash(&self.chain_prev).map_err(AppError::Store)?;
                if *h != expected {
                    self.findings.push(Finding {
                        place: format!("position {} ({} {} sequence {})", r.position, r.aggregate_type, r.aggregate_id, r.sequence),
                        field: "chain_hash".into(),
                        recorded: h.clone(),
                        recomputed: format!(
                            "{expected}: this row or its order was changed, or a row between position {} and position {} was inserted or deleted",
                            self.chain_prev_position, r.position
                        ),
                    });
                }
                // Continue from the stored hash so one edit is reported once.
                self.chain_prev = h.clone();
                self.chain_prev_position = r.position;
            }
        }
        Ok(())
    }

    /// The last chained hash read, for the comparison with the log head.
    pub fn chain_head(&self) -> (&str, Option<i64>) {
        (&self.chain_prev, self.chain_unsealed_from)
    }

    /// The latest `through` of a run covering everything (for the export).
    pub fn last_through(&self) -> Option<NaiveDate> {
        self.runs.iter().map(|r| r.through).max()
    }

    pub fn latest_notice(&self, m: &MerchantId, payout: NaiveDate) -> Option<&NoticeIssued> {
        self.notices.get(&notice_stream(m, payout)).and_then(|v| v.last())
    }
}
