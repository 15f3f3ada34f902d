//! The history as the batch, the exports and the audit see it: one pass over
//! the event log in recording order, feeding the ledger and collecting what the
//! batch recorded (statements, notices, transfer files, runs).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use domain::merchant::MerchantEvent;
use domain::payment::PaymentEvent;
use domain::{MerchantId, TxnId, Yen};
use notices::NoticeDocument;
use payout::rules::StatementFigures;
use payout::zengin::{Remitter, Transfer};
use projections::ledger::Difference;
use projections::{Ledger, RunCompleted, SettlementEvent, StatementClosed};
use serde::{Deserialize, Serialize};

use crate::app::AppError;
use crate::store::{FOLD_SKIPPED_EVENT_TYPES, Read, RecordedEvent, Store, StoreError, CHAIN_GENESIS};

mod checkpoint;
pub use checkpoint::{differences as checkpoint_differences, parse_main as parse_checkpoint, HistorySnapshot, Part, CHECKPOINT_FORMAT, CHECKPOINT_NAME};
use checkpoint::StatementsBrief;

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

/// A merchant's recorded statements summed up: what they moved, what they
/// paid, what they carry; and the first break of the carry chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conservation {
    pub flows: Yen,
    pub paid: Yen,
    pub carry: Yen,
    pub broken: Option<String>,
}

impl Conservation {
    /// Adds the merchant's next statement.
    pub fn add(&mut self, s: &StatementClosed) {
        if self.broken.is_some() {
            return;
        }
        let f = &s.figures;
        if f.carry_in != self.carry {
            self.broken = Some(format!(
                "merchant {} statement {}: carry-in {} is not the previous carry-out {}",
                s.merchant_id, s.period_start, f.carry_in, self.carry
            ));
            return;
        }
        self.flows += f.total_net() - f.fee_tax + f.red_slips + f.chargebacks - f.transfer_fee - f.transfer_fee_tax;
        self.paid += f.payout;
        self.carry = f.carry_out;
    }

    /// Whether the statements chain and what they moved is what they paid
    /// plus what is still carried.
    pub fn check(&self, m: &MerchantId) -> Result<(), String> {
        if let Some(b) = &self.broken {
            return Err(b.clone());
        }
        if self.flows != self.paid + self.carry {
            return Err(format!(
                "merchant {m}: money not conserved: flows {} ≠ payouts {} + carried {}",
                self.flows, self.paid, self.carry
            ));
        }
        Ok(())
    }
}

/// Where a recorded statement that pays out is, and its payout date (which,
/// with the notices and transfer files recorded, tells whether it has work
/// left: a notice to issue, a transfer file to write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayingRow {
    pub position: i64,
    pub payout_date: NaiveDate,
}

/// Paying statements' rows by period start, then merchant: cycle by cycle, as
/// a checkpoint keeps them.
pub type PayingRows = BTreeMap<NaiveDate, BTreeMap<MerchantId, PayingRow>>;

/// What a history keeps of each recorded statement besides its row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Keep {
    /// Nothing (the batch, which reads back what it needs: `load_pending`).
    #[default]
    Rows,
    /// Its payout date and figures (the audit).
    Figures,
    /// All of it (the exports and the notice commands).
    Whole,
}

/// A recorded statement as the audit keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditedStatement {
    pub payout_date: NaiveDate,
    pub figures: StatementFigures,
}

#[derive(Default)]
pub struct History {
    pub ledger: Ledger,
    /// The recorded statements, by merchant and period start: every one when
    /// the history keeps them whole (the exports), only those this run wrote
    /// or read back in the batch (see `load_pending`), none in the audit.
    pub statements: BTreeMap<(MerchantId, NaiveDate), StatementClosed>,
    /// The rows of the recorded statements that pay out (a positive payout),
    /// by period start and merchant.
    pub paying_rows: PayingRows,
    /// The audit's view of the recorded statements: what their notices and
    /// transfer files are checked against (only with `Keep::Figures`; looked
    /// up, never walked in order: a hash map, cheaper to fill by the 100,000).
    pub audited: HashMap<(MerchantId, NaiveDate), AuditedStatement>,
    keep: Keep,
    pub settlement_seq: HashMap<MerchantId, i64>,
    /// Every notice revision, by Notice stream, in revision order.
    pub notices: BTreeMap<String, Vec<NoticeIssued>>,
    pub transfer_files: BTreeMap<NaiveDate, TransferFileWritten>,
    /// The payout dates with a transfer file (also after a checkpoint, which
    /// keeps the dates, not the files).
    pub transfer_dates: BTreeSet<NaiveDate>,
    /// Every merchant's recorded statements summed up.
    pub conservation: HashMap<MerchantId, Conservation>,
    pub runs: Vec<RunCompleted>,
    pub events_read: u64,
    pub last_position: i64,
    /// With verification on: every difference found.
    pub findings: Vec<Finding>,
    verify: bool,
    chain: ChainCheck,
    /// With a position: the snapshot of the history right after that row
    /// (the audit compares it with the stored checkpoint).
    snapshot_at: Option<i64>,
    pub snapshot_taken: Option<Option<HistorySnapshot>>,
    /// The parts of the checkpoint this history was restored from that it has
    /// not read, with their hashes: what they hold is not in this history.
    unread: BTreeMap<Part, String>,
    /// Whether a merchant event was folded while the contracts were unread.
    contracts_touched: bool,
    /// The statements part in brief, from the checkpoint (while it is unread).
    brief: StatementsBrief,
}

/// The hash chain as checked so far: the last stored hash read, where a run
/// of unsealed rows began, and what did not match.
struct ChainCheck {
    prev: String,
    prev_position: i64,
    unsealed_from: Option<i64>,
    findings: Vec<Finding>,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck {
            prev: CHAIN_GENESIS.to_string(),
            prev_position: 0,
            unsealed_from: None,
            findings: Vec::new(),
        }
    }
}

impl ChainCheck {
    fn check(&mut self, r: &RecordedEvent) -> Result<(), AppError> {
        // The row's hash stays on it (its string is filled again for the next
        // row, not allocated anew).
        match r.chain_hash.as_deref() {
            None => {
                self.unsealed_from.get_or_insert(r.position);
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
                if let Some(from) = self.unsealed_from.take() {
                    self.findings.push(Finding {
                        place: format!("position {from}"),
                        field: "chain_hash".into(),
                        recorded: "missing".into(),
                        recomputed: "rows after it are sealed: the hash was removed".into(),
                    });
                }
                if !r.hash_matches(&self.prev, h).map_err(AppError::Store)? {
                    let expected = r.expected_hash(&self.prev).map_err(AppError::Store)?;
                    self.findings.push(Finding {
                        place: format!("position {} ({} {} sequence {})", r.position, r.aggregate_type, r.aggregate_id, r.sequence),
                        field: "chain_hash".into(),
                        recorded: h.to_string(),
                        recomputed: format!(
                            "{expected}: this row or its order was changed, or a row between position {} and position {} was inserted or deleted",
                            self.prev_position, r.position
                        ),
                    });
                }
                // Continue from the stored hash so one edit is reported once.
                RecordedEvent::set(&mut self.prev, h);
                self.prev_position = r.position;
            }
        }
        Ok(())
    }
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
        let ledger = match explain {
            Some(m) => Ledger::explaining(m),
            None if verify => Ledger::tracking_sales(),
            None => Ledger::new(),
        };
        let h = History {
            verify,
            ledger,
            keep: if verify { Keep::Figures } else { Keep::Whole },
            ..History::default()
        };
        let read = Read {
            after: 0,
            until,
            types: None,
            full: verify,
            fold_only: !verify,
        };
        h.fold(st, &read).await
    }

    /// Folds the rows of `read` into this history. The rows are read on this
    /// task and folded on a thread of their own, in batches, so reading and
    /// folding share the machine's cores; the order is kept.
    pub async fn fold(mut self, st: &Store, read: &Read<'_>) -> Result<History, AppError> {
        self.load_parts_for(st, read).await?;
        /// Rows handed over at a time.
        const FOLD_BATCH_ROWS: usize = 2_048;
        /// Batches read ahead of the fold at most.
        const FOLD_BATCHES_AHEAD: usize = 8;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<RecordedEvent>>(FOLD_BATCHES_AHEAD);
        // Folded batches come back to be filled again: the rows' strings are
        // allocated once and freed on the thread that allocated them.
        let (give_back, taken_back) = std::sync::mpsc::sync_channel::<Vec<RecordedEvent>>(FOLD_BATCHES_AHEAD + 2);
        let mut h = self;
        // The chain is checked as rows arrive, beside the fold: each row's
        // check needs only the hash stored on the row before it.
        let mut chain = h.verify.then(|| std::mem::take(&mut h.chain));
        let worker = std::thread::Builder::new()
            .name("upay-fold".into())
            .spawn(move || -> Result<History, AppError> {
                for batch in rx {
                    for r in &batch {
                        h.apply(r)?;
                    }
                    // The reader may be done and gone: then the batch is dropped here.
                    let _ = give_back.try_send(batch);
                }
                Ok(h)
            })
            .map_err(|e| AppError::Invariant(format!("cannot start the fold thread: {e}")))?;
        let mut buf = Vec::with_capacity(FOLD_BATCH_ROWS);
        let mut spare: Vec<RecordedEvent> = Vec::new();
        let mut stopped = false;
        let read_result = st
            .for_each_event::<AppError, _>(read, |r| {
                if let Some(c) = chain.as_mut() {
                    c.check(r)?;
                }
                if spare.is_empty() {
                    if let Ok(back) = taken_back.try_recv() {
                        spare = back;
                    }
                }
                buf.push(std::mem::replace(r, spare.pop().unwrap_or_default()));
                if buf.len() == FOLD_BATCH_ROWS {
                    let full = std::mem::replace(&mut buf, Vec::with_capacity(FOLD_BATCH_ROWS));
                    if tx.send(full).is_err() {
                        // The fold stopped on an error: it is reported below.
                        stopped = true;
                        return Err(AppError::Invariant("the fold stopped".into()));
                    }
                }
                Ok(())
            })
            .await;
        if !stopped && !buf.is_empty() {
            let _ = tx.send(buf);
        }
        drop(tx);
        let folded = match worker.join() {
            Ok(r) => r,
            // A broken invariant in the fold stays a panic (exit 3).
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let mut h = folded?;
        let read = read_result?;
        if let Some(mut c) = chain {
            // The log's integrity first, then what the fold found.
            h.findings.splice(0..0, std::mem::take(&mut c.findings));
            h.chain = c;
        }
        h.events_read += read.rows;
        // Rows a fold-only read left on the server are seen too.
        h.last_position = h.last_position.max(read.last_position);
        Ok(h)
    }

    /// Folds one row (its chain hash is checked by `fold`, as it is read).
    pub fn apply(&mut self, r: &RecordedEvent) -> Result<(), AppError> {
        self.last_position = r.position;
        match &*r.aggregate_type {
            // What the ledger does not book is not decoded (a full read
            // carries the event type; a fold-only read leaves these rows out).
            "Payment" if FOLD_SKIPPED_EVENT_TYPES.contains(&&*r.event_type) => {}
            "Payment" => {
                let e: PaymentEvent = serde_json::from_str(&r.payload).map_err(|e| corrupt(r, e))?;
                let txn = TxnId::parse(&r.aggregate_id).map_err(|e| corrupt(r, e))?;
                self.ledger.apply_payment(r.position, &txn, &e);
            }
            "Merchant" => {
                let e: MerchantEvent = serde_json::from_str(&r.payload).map_err(|e| corrupt(r, e))?;
                self.ledger.apply_merchant(&e);
                // A contract folded before the stored ones are read is newer
                // than theirs (see `Ledger::merge_contracts`).
                self.contracts_touched |= self.unread.contains_key(&Part::Contracts);
            }
            SETTLEMENT | NOTICE | TRANSFER_FILE if self.unread.contains_key(&Part::Statements) => {
                return Err(AppError::Invariant(format!(
                    "position {}: a {} row folded before the checkpoint's statements part was read",
                    r.position, r.aggregate_type
                )));
            }
            SETTLEMENT => {
                let e: SettlementEvent = serde_json::from_str(&r.payload).map_err(|e| corrupt(r, e))?;
                let SettlementEvent::StatementClosed(st) = e else {
                    return Err(corrupt(r, "not a statement"));
                };
                let diffs = self.ledger.apply_statement_closed(&st, self.verify);
                self.findings.extend(diffs.into_iter().map(Finding::from));
                let m = st.merchant_id.clone();
                self.conservation.entry(m.clone()).or_default().add(&st);
                self.settlement_seq.insert(m.clone(), r.sequence);
                if st.figures.payout.is_positive() {
                    let row = PayingRow {
                        position: r.position,
                        payout_date: st.payout_date,
                    };
                    self.paying_rows.entry(st.period_start).or_default().insert(m.clone(), row);
                } else if let Some(rows) = self.paying_rows.get_mut(&st.period_start) {
                    rows.remove(&m);
                }
                let key = (m, st.period_start);
                match self.keep {
                    Keep::Rows => {}
                    Keep::Figures => {
                        let a = AuditedStatement {
                            payout_date: st.payout_date,
                            figures: st.figures,
                        };
                        self.audited.insert(key, a);
                    }
                    Keep::Whole => {
                        self.statements.insert(key, st);
                    }
                }
            }
            SETTLEMENT_RUN => {
                let e: SettlementEvent = serde_json::from_str(&r.payload).map_err(|e| corrupt(r, e))?;
                let SettlementEvent::RunCompleted(run) = e else {
                    return Err(corrupt(r, "not a run"));
                };
                let diffs = self.ledger.apply_run_completed(&run, self.verify);
                self.findings.extend(diffs.into_iter().map(Finding::from));
                self.runs.push(run);
            }
            NOTICE => {
                let n: NoticeIssued = serde_json::from_str(&r.payload).map_err(|e| corrupt(r, e))?;
                self.notices.entry(r.aggregate_id.clone()).or_default().push(n);
            }
            TRANSFER_FILE => {
                let t: TransferFileWritten = serde_json::from_str(&r.payload).map_err(|e| corrupt(r, e))?;
                self.transfer_dates.insert(t.payout_date);
                self.transfer_files.insert(t.payout_date, t);
            }
            _ => {}
        }
        if self.snapshot_at == Some(r.position) {
            // The audit's history folds the whole log: it has no part unread.
            self.snapshot_taken = Some(self.snapshot().unwrap_or(None));
        }
        Ok(())
    }

    /// The full fold of the audit, which also takes the snapshot of the history
    /// right after `position`.
    pub async fn load_with_snapshot(st: &Store, position: i64) -> Result<History, AppError> {
        let h = History {
            verify: true,
            ledger: Ledger::tracking_sales(),
            keep: Keep::Figures,
            snapshot_at: Some(position),
            ..History::default()
        };
        let read = Read {
            full: true,
            ..Read::default()
        };
        h.fold(st, &read).await
    }

    /// Whether a paying statement still waits for its notice or for the
    /// transfer file of its payout date.
    fn work_left(&self, noticed: &HashSet<(&MerchantId, NaiveDate)>, m: &MerchantId, r: &PayingRow) -> bool {
        !noticed.contains(&(m, r.payout_date)) || !self.transfer_dates.contains(&r.payout_date)
    }

    /// The (merchant, payout date) of every notice issued.
    fn noticed(&self) -> HashSet<(&MerchantId, NaiveDate)> {
        self.notices.values().filter_map(|v| v.last()).map(|n| (&n.merchant_id, n.payout_date)).collect()
    }

    /// Reads back the content of the paying statements with work left that
    /// this history knows only by their rows (a batch's history keeps rows,
    /// not statements): before a run issues notices or writes transfer files.
    /// A row that is not the statement its checkpoint named means the log
    /// changed under the checkpoint: nothing is issued from it.
    pub async fn load_pending(&mut self, st: &Store) -> Result<u64, AppError> {
        let noticed = self.noticed();
        let mut missing: Vec<i64> = Vec::new();
        for (start, rows) in &self.paying_rows {
            for (m, r) in rows {
                if self.work_left(&noticed, m, r) && !self.statements.contains_key(&(m.clone(), *start)) {
                    missing.push(r.position);
                }
            }
        }
        drop(noticed);
        if missing.is_empty() {
            return Ok(0);
        }
        let rows = st.load_positions(&missing).await?;
        if rows.len() != missing.len() {
            return Err(AppError::Invariant(format!(
                "{} of {} statement rows named by the checkpoint are gone; run `upay audit replay`",
                missing.len() - rows.len(),
                missing.len()
            )));
        }
        for r in &rows {
            let st = match serde_json::from_str::<SettlementEvent>(&r.payload) {
                Ok(SettlementEvent::StatementClosed(s)) if r.aggregate_type == SETTLEMENT => s,
                _ => return Err(AppError::Invariant(format!("position {} is not a statement, yet the checkpoint names it; run `upay audit replay`", r.position))),
            };
            let named = self.paying_rows.get(&st.period_start).and_then(|rows| rows.get(&st.merchant_id));
            if named.is_none_or(|w| w.position != r.position || w.payout_date != st.payout_date) {
                return Err(AppError::Invariant(format!(
                    "position {}: the statement of {} from {} is not the one the checkpoint names; run `upay audit replay`",
                    r.position, st.merchant_id, st.period_start
                )));
            }
            self.statements.insert((st.merchant_id.clone(), st.period_start), st);
        }
        Ok(rows.len() as u64)
    }

    /// The last chained hash read, for the comparison with the log head.
    pub fn chain_head(&self) -> (&str, Option<i64>) {
        (&self.chain.prev, self.chain.unsealed_from)
    }

    /// The latest `through` of a run covering everything (for the export).
    pub fn last_through(&self) -> Option<NaiveDate> {
        self.runs.iter().map(|r| r.through).max()
    }

    pub fn latest_notice(&self, m: &MerchantId, payout: NaiveDate) -> Option<&NoticeIssued> {
        self.notices.get(&notice_stream(m, payout)).and_then(|v| v.last())
    }
}
