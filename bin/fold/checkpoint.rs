//! The nightly batch's checkpoint: the history's state at a position of the
//! log, kept in the store so the next night folds only what was recorded
//! after it. It is a cache, not a fact: the log stays the only truth, a
//! checkpoint that does not match it is ignored, and `audit replay`
//! recomputes and compares it.
//!
//! It is stored as a main document (the `checkpoints` row: each merchant's
//! open cycles, the runs, the transfer dates) and two parts in rows of their
//! own (`checkpoint_parts`), named in the main document by their SHA-256:
//!
//! - **contracts**, which change only with a merchant import;
//! - **statements**: the paying statements with work left (by their rows),
//!   each merchant's settlement sequence and conservation sums, and the
//!   notices still to be paid out. They change only when statements are
//!   closed, notices issued or transfer files written.
//!
//! A run reads a part only when it needs it (it closes statements, or has
//! notices or transfer files to do, or folds rows that change the part), and
//! writes only the parts it changed: a night that closes nothing reads and
//! writes the main document alone, whatever the length of the history.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use domain::{MerchantContract, MerchantId};
use payout::cycle::Cycle;
use projections::ledger::LedgerSnapshot;
use projections::{Ledger, RunCompleted};
use serde::{Deserialize, Serialize};

use super::{Conservation, History, NoticeIssued, PayingRow, PayingRows, NOTICE, SETTLEMENT, TRANSFER_FILE};
use crate::app::AppError;
use crate::store::{Read, Store};

/// The layout of the checkpoint; one of another layout is ignored. (1 kept
/// whole statements; 2 kept their rows, in one document; 3 keeps contracts and
/// statements in parts of their own.)
pub const CHECKPOINT_FORMAT: u32 = 3;
/// The checkpoint's name in the store.
pub const CHECKPOINT_NAME: &str = "settle";

/// A part of the checkpoint kept in a row of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Contracts,
    Statements,
}

impl Part {
    pub const ALL: [Part; 2] = [Part::Contracts, Part::Statements];

    pub fn name(self) -> &'static str {
        match self {
            Part::Contracts => "contracts",
            Part::Statements => "statements",
        }
    }

    fn named(name: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The part's row in the store.
    pub fn row(self) -> String {
        format!("{CHECKPOINT_NAME}/{}", self.name())
    }
}

/// The checkpoint's main document, and in memory the parts this history had
/// read (a part not read is named by its hash only and stays as stored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistorySnapshot {
    pub format: u32,
    pub position: i64,
    ledger: LedgerSnapshot,
    transfer_dates: BTreeSet<NaiveDate>,
    /// The latest run of each scope (all merchants, or one shard).
    runs: Vec<RunCompleted>,
    /// What the statements part holds, in brief.
    brief: StatementsBrief,
    /// Each part's SHA-256 (of its text as stored), by part name.
    parts: BTreeMap<String, String>,
    #[serde(skip)]
    contracts: Option<Vec<(MerchantId, MerchantContract)>>,
    #[serde(skip)]
    statements: Option<StatementsPart>,
}

/// The statements part.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct StatementsPart {
    /// Only the statements with work left (a notice to issue or a transfer
    /// file to write), by their rows: a run that needs them reads them back.
    pending: Vec<PendingCycle>,
    settlement_seq: BTreeMap<MerchantId, i64>,
    conservation: BTreeMap<MerchantId, Conservation>,
    /// The latest revision of the notices still to be paid out (they may need
    /// queueing again) and of those of the statements kept.
    notices: BTreeMap<String, NoticeIssued>,
}

/// The contracts part.
#[derive(Serialize, Deserialize)]
struct ContractsPart {
    contracts: Vec<(MerchantId, MerchantContract)>,
}

/// What the statements part holds, in brief: enough for a run to tell, without
/// reading it, whether it has work there and whether the part is still what a
/// fold would give.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct StatementsBrief {
    /// The cycles with statements still waiting for a notice or a transfer
    /// file: (period start, payout date).
    pending_cycles: Vec<(NaiveDate, NaiveDate)>,
    /// The earliest payout date of a notice kept only because its payout was
    /// still to come: a run through a later date drops it from the part.
    notices_kept_until: Option<NaiveDate>,
    /// The latest payout date of a notice kept: a run through it or before
    /// may have to queue it again.
    notices_last_payout: Option<NaiveDate>,
}

/// The paying statements of one cycle with work left, as a checkpoint keeps
/// them: by their rows, (position, merchant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PendingCycle {
    period_start: NaiveDate,
    payout_date: NaiveDate,
    rows: Vec<(i64, MerchantId)>,
}

/// A part as written: its row, its hash and its text.
pub struct PartText {
    pub part: Part,
    pub sha256: String,
    pub text: String,
}

impl HistorySnapshot {
    /// Moves the parts read into their text (and their hash into the main
    /// document): what `Store::checkpoint_save` writes. What is left is the
    /// main document.
    pub fn encode_parts(&mut self) -> Vec<PartText> {
        let mut out = Vec::new();
        if let Some(contracts) = self.contracts.take() {
            let text = serde_json::to_string(&ContractsPart { contracts }).expect("contracts serialise");
            out.push(self.part_text(Part::Contracts, text));
        }
        if let Some(statements) = self.statements.take() {
            let text = serde_json::to_string(&statements).expect("statements serialise");
            out.push(self.part_text(Part::Statements, text));
        }
        out
    }

    fn part_text(&mut self, part: Part, text: String) -> PartText {
        let sha256 = notices::sha256_hex(text.as_bytes());
        self.parts.insert(part.name().to_string(), sha256.clone());
        PartText { part, sha256, text }
    }

    /// The parts the main document names: (part, SHA-256).
    pub fn part_hashes(&self) -> Vec<(Part, &str)> {
        self.parts.iter().filter_map(|(n, h)| Some((Part::named(n)?, h.as_str()))).collect()
    }

    /// Whether the main document names exactly the known parts.
    fn names_known_parts(&self) -> bool {
        self.parts.keys().all(|n| Part::named(n).is_some())
    }
}

/// Reads a stored part, checked against the hash the main document gives it.
pub async fn read_part(st: &Store, part: Part, sha256: &str) -> Result<String, AppError> {
    match st.checkpoint_part(&part.row()).await? {
        Some((stored_sha, text)) if stored_sha == sha256 && notices::sha256_hex(text.as_bytes()) == sha256 => Ok(text),
        _ => Err(AppError::Invariant(format!(
            "the checkpoint's {} part is not the one its checkpoint names (SHA-256 {sha256}); run `upay audit replay`, then DELETE FROM checkpoints",
            part.name()
        ))),
    }
}

impl History {
    /// The batch's history: from the stored checkpoint when there is one that
    /// matches the log, plus what was recorded after it; otherwise the whole
    /// log. Returns the history and the checkpoint's position (0 without one).
    /// The checkpoint's parts are not read: see `load_parts`.
    pub async fn for_batch(st: &Store) -> Result<(History, i64), AppError> {
        let t0 = std::time::Instant::now();
        let start = match st.checkpoint_load(CHECKPOINT_NAME).await? {
            None => None,
            Some(c) if c.stored_hash.is_none() || c.stored_hash != c.current_hash => {
                tracing::warn!(
                    "checkpoint at position {}: the row there is not the one it was taken after; folding the whole log",
                    c.position
                );
                None
            }
            Some(c) => match serde_json::from_str::<HistorySnapshot>(&c.data) {
                Ok(s) if s.format == CHECKPOINT_FORMAT && s.position == c.position && s.names_known_parts() => {
                    // The parts are read later, if at all: their rows must
                    // at least be the ones this document names.
                    let stored = st.checkpoint_part_hashes(CHECKPOINT_NAME).await?;
                    let missing: Vec<&str> = s
                        .part_hashes()
                        .into_iter()
                        .filter(|(p, h)| stored.get(&p.row()).map(String::as_str) != Some(*h))
                        .map(|(p, _)| p.name())
                        .collect();
                    if missing.is_empty() {
                        Some(History::restore(s))
                    } else {
                        tracing::warn!(
                            "checkpoint at position {}: its {} part is not the one stored; folding the whole log",
                            c.position,
                            missing.join(", ")
                        );
                        None
                    }
                }
                Ok(s) => {
                    tracing::warn!("checkpoint at position {}: format {}, not {CHECKPOINT_FORMAT}; folding the whole log", c.position, s.format);
                    None
                }
                Err(e) => {
                    tracing::warn!("checkpoint at position {}: unreadable ({e}); folding the whole log", c.position);
                    None
                }
            },
        };
        tracing::debug!("checkpoint restored in {:?}", t0.elapsed());
        let from = start.as_ref().map_or(0, |h| h.last_position);
        let h = start.unwrap_or_default();
        let read = Read {
            after: from,
            fold_only: true,
            ..Read::default()
        };
        Ok((h.fold(st, &read).await?, from))
    }

    /// Reads the checkpoint's parts this history has not read yet, of those
    /// named, and takes them in.
    pub async fn load_parts(&mut self, st: &Store, parts: &[Part]) -> Result<(), AppError> {
        for part in parts {
            let Some(sha256) = self.unread.get(part).cloned() else { continue };
            let t0 = std::time::Instant::now();
            let text = read_part(st, *part, &sha256).await?;
            let bad = |e: serde_json::Error| AppError::Invariant(format!("the checkpoint's {} part is unreadable: {e}", part.name()));
            match part {
                Part::Contracts => {
                    let c: ContractsPart = serde_json::from_str(&text).map_err(bad)?;
                    self.ledger
                        .merge_contracts(c.contracts)
                        .map_err(|e| AppError::Invariant(format!("the checkpoint's contracts part: {e}")))?;
                    self.contracts_touched = false;
                }
                Part::Statements => {
                    let s: StatementsPart = serde_json::from_str(&text).map_err(bad)?;
                    self.take_statements(s)?;
                }
            }
            self.unread.remove(part);
            tracing::debug!("checkpoint: {} part read ({} bytes) in {:?}", part.name(), text.len(), t0.elapsed());
        }
        Ok(())
    }

    /// Before a fold of `read` from this history: the statements part is read
    /// first when the rows to fold change it (statements, notices, transfer
    /// files); a fold never changes a part it has not read.
    pub(super) async fn load_parts_for(&mut self, st: &Store, read: &Read<'_>) -> Result<(), AppError> {
        if self.unread.contains_key(&Part::Statements) && st.has_rows_after(read.after, &[SETTLEMENT, NOTICE, TRANSFER_FILE]).await? {
            self.load_parts(st, &[Part::Statements]).await?;
        }
        Ok(())
    }

    /// Whether a run through `through` may have notices to issue or queue, or
    /// transfer files to write, among the statements this history keeps.
    pub fn statements_work_due(&self, through: NaiveDate) -> bool {
        if !self.unread.contains_key(&Part::Statements) {
            return true;
        }
        let b = &self.brief;
        b.pending_cycles
            .iter()
            .any(|(start, _)| Cycle::starting(*start).is_none_or(|c| c.notice_date() <= through))
            || b.notices_last_payout.is_some_and(|d| d >= through)
    }

    /// The checkpoint of this history at its last position; None when the
    /// ledger found anomalies (nothing worth continuing from). `Err(part)`: a
    /// part not read has changed (or may have), and must be read first.
    pub fn snapshot(&self) -> Result<Option<HistorySnapshot>, Part> {
        self.snapshot_with(true)
    }

    /// The batch's state as read, to fold its own run into afterwards: the
    /// snapshot without the paying rows, which the run does not change and
    /// hands over as they are (see `restore_with_rows`).
    pub fn snapshot_as_read(&self) -> Result<Option<HistorySnapshot>, Part> {
        self.snapshot_with(false)
    }

    /// `snapshot`, reading first the parts it needs.
    pub async fn snapshot_reading(&mut self, st: &Store, as_read: bool) -> Result<Option<HistorySnapshot>, AppError> {
        loop {
            match self.snapshot_with(!as_read) {
                Ok(s) => return Ok(s),
                Err(part) => self.load_parts(st, &[part]).await?,
            }
        }
    }

    fn snapshot_with(&self, with_pending: bool) -> Result<Option<HistorySnapshot>, Part> {
        let Some(ledger) = self.ledger.snapshot() else { return Ok(None) };
        let max_through = self.runs.iter().map(|r| r.through).max();
        let contracts = match self.unread.get(&Part::Contracts) {
            Some(_) if self.contracts_touched => return Err(Part::Contracts),
            Some(_) => None,
            None => Some(self.ledger.contracts()),
        };
        let (statements, brief) = match self.unread.get(&Part::Statements) {
            // Unread, the part is as stored, unless runs since then passed
            // the payout date of a notice it keeps for that payout alone.
            Some(_) if max_through.is_some_and(|t| self.brief.notices_kept_until.is_some_and(|d| t > d)) => return Err(Part::Statements),
            Some(_) => (None, self.brief.clone()),
            None => {
                let (part, brief) = self.statements_part(with_pending, max_through);
                (Some(part), brief)
            }
        };
        let mut latest: BTreeMap<String, RunCompleted> = BTreeMap::new();
        for r in &self.runs {
            let scope = r.shard.map_or("all".to_string(), |s| format!("{}/{}", s.k, s.n));
            if latest.get(&scope).is_none_or(|l| r.through >= l.through) {
                latest.insert(scope, r.clone());
            }
        }
        Ok(Some(HistorySnapshot {
            format: CHECKPOINT_FORMAT,
            position: self.last_position,
            ledger,
            transfer_dates: self.transfer_dates.clone(),
            runs: latest.into_values().collect(),
            brief,
            parts: self.unread.iter().map(|(p, h)| (p.name().to_string(), h.clone())).collect(),
            contracts,
            statements,
        }))
    }

    /// The statements part of this history (which has read it), and its brief.
    fn statements_part(&self, with_pending: bool, max_through: Option<NaiveDate>) -> (StatementsPart, StatementsBrief) {
        let noticed = self.noticed();
        let mut cycles: BTreeMap<(NaiveDate, NaiveDate), Vec<(i64, MerchantId)>> = BTreeMap::new();
        if with_pending {
            for (start, rows) in &self.paying_rows {
                for (m, r) in rows {
                    if self.work_left(&noticed, m, r) {
                        cycles.entry((*start, r.payout_date)).or_default().push((r.position, m.clone()));
                    }
                }
            }
        }
        let mut brief = StatementsBrief {
            pending_cycles: cycles.keys().copied().collect(),
            ..StatementsBrief::default()
        };
        let pending = cycles
            .into_iter()
            .map(|((period_start, payout_date), rows)| PendingCycle {
                period_start,
                payout_date,
                rows,
            })
            .collect();
        // The latest revision of each notice still to be paid out, and of those
        // of the statements kept.
        let mut notices = BTreeMap::new();
        for (k, n) in self.notices.iter().filter_map(|(k, v)| v.last().map(|n| (k, n))) {
            let of_kept = self
                .paying_rows
                .get(&n.period_start)
                .and_then(|rows| rows.get(&n.merchant_id))
                .is_some_and(|r| r.payout_date == n.payout_date && self.work_left(&noticed, &n.merchant_id, r));
            if !(of_kept || max_through.is_none_or(|t| n.payout_date >= t)) {
                continue;
            }
            if !of_kept {
                brief.notices_kept_until = Some(brief.notices_kept_until.map_or(n.payout_date, |d| d.min(n.payout_date)));
            }
            brief.notices_last_payout = brief.notices_last_payout.max(Some(n.payout_date));
            notices.insert(k.clone(), n.clone());
        }
        let part = StatementsPart {
            pending,
            settlement_seq: self.settlement_seq.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            conservation: self.conservation.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            notices,
        };
        (part, brief)
    }

    /// The paying rows with work left, taken out of this history: what
    /// `snapshot` would keep of them.
    pub fn take_pending_rows(&mut self) -> PayingRows {
        let mut cycles = std::mem::take(&mut self.paying_rows);
        let noticed = self.noticed();
        for rows in cycles.values_mut() {
            rows.retain(|m, r| self.work_left(&noticed, m, r));
        }
        cycles.retain(|_, rows| !rows.is_empty());
        cycles
    }

    /// `restore` of a snapshot taken by `snapshot_as_read`, with the pending
    /// rows of the history it was taken from (`take_pending_rows`).
    pub fn restore_with_rows(s: HistorySnapshot, paying_rows: PayingRows) -> History {
        History {
            paying_rows,
            ..History::restore(s)
        }
    }

    /// The batch's history continuing from a checkpoint: the parts the
    /// snapshot carries are taken in, the others are left to `load_parts`.
    pub fn restore(s: HistorySnapshot) -> History {
        let mut h = History {
            ledger: Ledger::restore(s.ledger),
            transfer_dates: s.transfer_dates,
            runs: s.runs,
            last_position: s.position,
            brief: s.brief,
            unread: s.parts.iter().filter_map(|(n, sha)| Some((Part::named(n)?, sha.clone()))).collect(),
            ..History::default()
        };
        if let Some(c) = s.contracts {
            h.unread.remove(&Part::Contracts);
            h.ledger.merge_contracts(c).expect("a snapshot's contracts belong to its books");
        }
        if let Some(st) = s.statements {
            h.unread.remove(&Part::Statements);
            h.take_statements(st).expect("a snapshot's history has no statements of its own yet");
        }
        h
    }

    /// Takes in a statements part: this history must not have folded any
    /// statement, notice or transfer file itself (`load_parts_for`).
    fn take_statements(&mut self, s: StatementsPart) -> Result<(), AppError> {
        if !self.settlement_seq.is_empty() || !self.conservation.is_empty() || !self.notices.is_empty() {
            return Err(AppError::Invariant(
                "the checkpoint's statements part was read after statements were folded without it".into(),
            ));
        }
        for c in s.pending {
            let rows = c.rows.into_iter().map(|(position, m)| {
                let row = PayingRow {
                    position,
                    payout_date: c.payout_date,
                };
                (m, row)
            });
            // One cycle's rows are in merchant order: built in one pass.
            match self.paying_rows.entry(c.period_start) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(rows.collect());
                }
                std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().extend(rows),
            }
        }
        self.settlement_seq = s.settlement_seq.into_iter().collect();
        self.conservation = s.conservation.into_iter().collect();
        self.notices = s.notices.into_iter().map(|(k, n)| (k, vec![n])).collect();
        Ok(())
    }
}

/// Whether the stored checkpoint is what the audit's own fold gives at its
/// position: its main document equal to the fold's, and every part it names
/// stored with that hash. `fresh` is the fold's snapshot (all parts read).
pub async fn differences(st: &Store, stored: &HistorySnapshot, fresh: &HistorySnapshot) -> Result<Option<String>, AppError> {
    let mut fresh = fresh.clone();
    fresh.encode_parts();
    if fresh != *stored {
        let parts: Vec<&str> = Part::ALL
            .into_iter()
            .filter(|p| fresh.parts.get(p.name()) != stored.parts.get(p.name()))
            .map(Part::name)
            .collect();
        return Ok(Some(if parts.is_empty() {
            "differs from the fold of the log up to its position".to_string()
        } else {
            format!("differs from the fold of the log up to its position (its {} part)", parts.join(" and "))
        }));
    }
    for (part, sha256) in stored.part_hashes() {
        if let Err(AppError::Invariant(e)) = read_part(st, part, sha256).await {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// A stored checkpoint's main document, if it is one of this layout.
pub fn parse_main(data: &str) -> Result<Option<HistorySnapshot>, String> {
    #[derive(Deserialize)]
    struct Layout {
        format: u32,
    }
    match serde_json::from_str::<Layout>(data) {
        Ok(l) if l.format != CHECKPOINT_FORMAT => Ok(None),
        _ => serde_json::from_str(data).map(Some).map_err(|e| format!("unreadable ({e})")),
    }
}
