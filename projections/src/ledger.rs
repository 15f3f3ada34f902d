//! The ledger: a fold of the whole event stream, in recording order, into each
//! merchant's open cycles, and the rule that closes them into statements.
//!
//! The nightly batch folds the log and closes what has ended; the audit replay
//! folds the same log afresh and, at each recorded `StatementClosed`, recomputes
//! the statement and compares. Both adopt the recorded figures once a statement
//! is closed: a closed statement never changes, and later cycles build on it.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use domain::merchant::MerchantEvent;
use domain::payment::PaymentEvent;
use domain::time::{booking_date, Instant};
use domain::{BrandGroup, MerchantContract, MerchantId, Rates, TxnId, Yen};
use payout::cycle::Cycle;
use payout::rules::{self, GroupSales, StatementInput};
use serde::{Deserialize, Serialize};

use crate::events::{RunCompleted, StatementClosed};
use crate::shard::Shard;

/// A statement as computed (and, once recorded, as closed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub merchant_id: MerchantId,
    pub cycle: Cycle,
    pub closed: StatementClosed,
}

/// Which line of a statement an event landed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Sales,
    SaleCancelledSameCycle,
    RedSlip,
    Chargeback,
    ChargebackReversal,
}

/// One event behind one line of a statement, for `statements explain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExplainItem {
    pub position: i64,
    pub event_id: String,
    pub txn_id: String,
    pub kind: &'static str,
    pub at: Instant,
    pub booking_date: NaiveDate,
    pub period_start: NaiveDate,
    #[serde(serialize_with = "group_label")]
    pub group: Option<BrandGroup>,
    pub line: LineKind,
    /// The event's amount.
    pub amount: i64,
    /// What it adds to its line (negative for red slips and chargebacks).
    pub effect: i64,
    pub reason: String,
}

fn group_label<S: serde::Serializer>(g: &Option<BrandGroup>, s: S) -> Result<S::Ok, S::Error> {
    match g {
        Some(g) => s.serialize_str(g.label()),
        None => s.serialize_none(),
    }
}

#[derive(Clone, Copy, Debug)]
struct Sale {
    merchant: u32,
    group: BrandGroup,
    amount: Yen,
    cycle: Cycle,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Bucket {
    groups: [GroupSales; 3],
    /// The sales counted here, forgotten when the cycle closes (only when the
    /// ledger tracks sales; never in a checkpoint).
    #[serde(skip)]
    sale_ids: Vec<TxnId>,
    /// (group, amount, cycle of the sale) of each cancel of an earlier cycle's sale.
    red_slips: Vec<(BrandGroup, Yen, Cycle)>,
    chargebacks: Yen,
    chargeback_events: u32,
    /// Only for `statements explain`; never in a checkpoint.
    #[serde(skip)]
    items: Vec<ExplainItem>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Book {
    id: MerchantId,
    /// Never in a snapshot (see `LedgerSnapshot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contract: Option<MerchantContract>,
    /// The last cycle with a closed statement.
    closed: Option<Cycle>,
    carry: Yen,
    #[serde(with = "pairs")]
    open: BTreeMap<Cycle, Bucket>,
    /// The rates closed cycles' sales were settled at (for red slips): an entry
    /// where they changed, in force until the next entry.
    #[serde(with = "pairs")]
    settled_rates: BTreeMap<Cycle, Rates>,
}

/// Maps whose keys are not strings, written as lists of pairs.
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(m: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<K, V>, D::Error> {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// The ledger's state at a position of the log, as the batch's checkpoint
/// keeps it: everything a fold of the rest of the log needs, and nothing of
/// the audit's (open sales one by one, explanations). The same log prefix
/// always gives the same snapshot, whichever ledger folded it. The merchants'
/// contracts are not in it: they change only with a merchant import, so the
/// checkpoint keeps them apart (`Ledger::contracts`, `Ledger::merge_contracts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    books: Vec<Book>,
    late_sales: BTreeMap<TxnId, Cycle>,
    global_closed: Option<Cycle>,
    shard_closed: Vec<(Shard, Cycle)>,
}

impl Book {
    /// The next cycle that makes a statement when it ends: the first with
    /// activity, or the one after the last closed while a balance is carried.
    fn next_to_close(&self) -> Option<Cycle> {
        let first_open = self.open.keys().next().copied();
        if self.carry.is_zero() {
            first_open
        } else {
            let after = self.closed.expect("a carry comes from a closed statement").next();
            Some(first_open.map_or(after, |c| c.min(after)))
        }
    }
}

impl PartialEq for Book {
    fn eq(&self, o: &Book) -> bool {
        (&self.id, &self.contract, self.closed, self.carry, &self.open, &self.settled_rates)
            == (&o.id, &o.contract, o.closed, o.carry, &o.open, &o.settled_rates)
    }
}

impl Bucket {
    /// Whether this cycle has a statement of its own (a carry-in aside).
    fn makes_statement(&self) -> bool {
        self.groups.iter().any(|g| g.count > 0) || !self.red_slips.is_empty() || self.chargeback_events > 0
    }
}

impl PartialEq for Bucket {
    fn eq(&self, o: &Bucket) -> bool {
        (self.groups, &self.red_slips, self.chargebacks, self.chargeback_events) == (o.groups, &o.red_slips, o.chargebacks, o.chargeback_events)
    }
}

/// A difference found while verifying recorded statements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub merchant_id: MerchantId,
    pub period_start: NaiveDate,
    pub field: String,
    pub recorded: String,
    pub recomputed: String,
}

#[derive(Default)]
pub struct Ledger {
    books: Vec<Book>,
    index: HashMap<MerchantId, u32>,
    /// Sales booked into open cycles. Once their cycle closes a sale is
    /// forgotten: a later cancel finds its cycle from the capture instant the
    /// cancel carries, so memory follows the open cycles, not the history.
    sales: HashMap<TxnId, Sale>,
    /// The few sales booked late (into a cycle after their date's), whose cycle
    /// the capture instant does not tell.
    late_sales: HashMap<TxnId, Cycle>,
    global_closed: Option<Cycle>,
    shard_closed: HashMap<Shard, Cycle>,
    /// Whether every open sale is remembered (`sales`, `Bucket::sale_ids`). The
    /// audit does, to find cancels the aggregates could not have produced; the
    /// batch does not need to: a cancel carries its sale's brand, amount and
    /// capture instant, and late-booked sales are in `late_sales`.
    track_sales: bool,
    explain: Option<MerchantId>,
    explained: BTreeMap<Cycle, (StatementClosed, Vec<ExplainItem>)>,
    /// Inconsistencies of the log itself (an event the aggregates could not have
    /// produced), for the audit.
    pub anomalies: Vec<String>,
}

impl Ledger {
    /// The batch's ledger: open sales are not remembered one by one.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// The audit's ledger: every open sale is remembered, so a cancel without a
    /// sale, or naming another merchant than its sale, is reported.
    pub fn tracking_sales() -> Ledger {
        Ledger {
            track_sales: true,
            ..Ledger::default()
        }
    }

    /// The state to continue from without folding the log again. None when the
    /// fold met an event it could not place (an anomaly): such a state is not
    /// worth keeping.
    pub fn snapshot(&self) -> Option<LedgerSnapshot> {
        if !self.anomalies.is_empty() {
            return None;
        }
        let mut shard_closed: Vec<(Shard, Cycle)> = self.shard_closed.iter().map(|(s, c)| (*s, *c)).collect();
        shard_closed.sort_by_key(|(s, _)| (s.n, s.k));
        Some(LedgerSnapshot {
            books: self
                .books
                .iter()
                .map(|b| {
                    // A bucket of a closed cycle that makes no statement (its
                    // sales cancelled in the cycle) never changes again: the
                    // batch drops it when it closes the merchant, the audit's
                    // fold when it checks the run. Either way it is not state.
                    let closed = self.closed_for(b);
                    let live = |(c, k): &(&Cycle, &Bucket)| closed.is_none_or(|cl| **c > cl) || k.makes_statement();
                    Book {
                        id: b.id.clone(),
                        contract: None,
                        closed: b.closed,
                        carry: b.carry,
                        open: b
                            .open
                            .iter()
                            .filter(live)
                            .map(|(c, k)| {
                                (
                                    *c,
                                    Bucket {
                                        sale_ids: Vec::new(),
                                        items: Vec::new(),
                                        ..k.clone()
                                    },
                                )
                            })
                            .collect(),
                        settled_rates: b.settled_rates.clone(),
                    }
                })
                .collect(),
            late_sales: self.late_sales.iter().map(|(t, c)| (t.clone(), *c)).collect(),
            global_closed: self.global_closed,
            shard_closed,
        })
    }

    /// Every merchant's contract, in merchant order: the part of the state a
    /// `LedgerSnapshot` leaves out.
    pub fn contracts(&self) -> Vec<(MerchantId, MerchantContract)> {
        let mut v: Vec<(MerchantId, MerchantContract)> = self.books.iter().filter_map(|b| Some((b.id.clone(), b.contract.clone()?))).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Whether any merchant has a contract.
    pub fn has_contracts(&self) -> bool {
        self.books.iter().any(|b| b.contract.is_some())
    }

    /// Contracts kept apart from a snapshot, given back to the books restored
    /// from it. A book that has a contract already got it from a merchant
    /// event folded after the snapshot, which is newer: it stays. A contract of
    /// a merchant the snapshot has no book for does not belong to it.
    pub fn merge_contracts(&mut self, contracts: Vec<(MerchantId, MerchantContract)>) -> Result<(), String> {
        for (m, c) in contracts {
            let Some(&i) = self.index.get(&m) else {
                return Err(format!("a contract of merchant {m}, who has no book"));
            };
            let book = &mut self.books[i as usize];
            if book.contract.is_none() {
                book.contract = Some(c);
            }
        }
        Ok(())
    }

    /// The batch's ledger (not tracking sales) continuing from a snapshot
    /// (without contracts: see `merge_contracts`).
    pub fn restore(s: LedgerSnapshot) -> Ledger {
        let index = s.books.iter().enumerate().map(|(i, b)| (b.id.clone(), u32::try_from(i).expect("fewer than 2^32 merchants"))).collect();
        Ledger {
            books: s.books,
            index,
            late_sales: s.late_sales.into_iter().collect(),
            global_closed: s.global_closed,
            shard_closed: s.shard_closed.into_iter().collect(),
            ..Ledger::default()
        }
    }

    /// A ledger that keeps, for one merchant, every event behind every line.
    pub fn explaining(merchant: MerchantId) -> Ledger {
        Ledger {
            explain: Some(merchant),
            track_sales: true,
            ..Ledger::default()
        }
    }

    fn book_index(&mut self, m: &MerchantId) -> u32 {
        if let Some(i) = self.index.get(m) {
            return *i;
        }
        let i = u32::try_from(self.books.len()).expect("fewer than 2^32 merchants");
        self.books.push(Book {
            id: m.clone(),
            contract: None,
            closed: None,
            carry: Yen::ZERO,
            open: BTreeMap::new(),
            settled_rates: BTreeMap::new(),
        });
        self.index.insert(m.clone(), i);
        i
    }

    pub fn merchant_ids(&self) -> impl Iterator<Item = &MerchantId> {
        self.books.iter().map(|b| &b.id)
    }

    pub fn contract(&self, m: &MerchantId) -> Option<&MerchantContract> {
        self.index.get(m).and_then(|i| self.books[*i as usize].contract.as_ref())
    }

    /// The last cycle closed for a merchant, by its own statements or by a run.
    fn closed_for(&self, b: &Book) -> Option<Cycle> {
        let mut c = b.closed.max(self.global_closed);
        for (s, sc) in &self.shard_closed {
            if s.contains(&b.id) {
                c = c.max(Some(*sc));
            }
        }
        c
    }

    /// The cycle an event is booked into: its JST date's cycle, or the merchant's
    /// earliest open cycle when that one is already closed (a late event).
    fn booking_cycle(&self, b: u32, at: &Instant) -> (Cycle, bool) {
        let natural = Cycle::containing(booking_date(at));
        match self.closed_for(&self.books[b as usize]) {
            Some(closed) if closed >= natural => (closed.next(), true),
            _ => (natural, false),
        }
    }

    pub fn apply_merchant(&mut self, e: &MerchantEvent) {
        match e {
            MerchantEvent::MerchantRegistered { contract } | MerchantEvent::MerchantContractChanged { contract, .. } => {
                let i = self.book_index(&contract.merchant_id);
                self.books[i as usize].contract = Some(contract.clone());
            }
            MerchantEvent::NoticePasswordChanged {} => {}
        }
    }

    pub fn apply_payment(&mut self, position: i64, txn: &TxnId, e: &PaymentEvent) {
        let (merchant, at) = (e.merchant_id(), *e.at());
        let (group, amount, kind) = match e {
            PaymentEvent::Captured { brand, amount, .. } => (brand.group(), *amount, "capture"),
            PaymentEvent::SaleCancelled { brand, amount, .. } => (brand.group(), *amount, "cancel"),
            PaymentEvent::ChargedBack { brand, amount, .. } => (brand.group(), *amount, "chargeback"),
            PaymentEvent::ChargebackReversed { brand, amount, .. } => (brand.group(), *amount, "chargeback_reversal"),
            _ => return,
        };
        let b = self.book_index(merchant);
        let (cycle, late) = self.booking_cycle(b, &at);
        let explaining = self.explain.as_ref() == Some(merchant);
        // The reasons are written only for the merchant being explained: a
        // batch folds millions of events and reads none of them.
        macro_rules! reason {
            ($($arg:tt)*) => {
                if explaining { format!($($arg)*) } else { String::new() }
            };
        }
        let late_note = if late && explaining {
            format!(
                "; booked late: its date's cycle was already closed, so it goes to the earliest open cycle {}",
                cycle.start()
            )
        } else {
            String::new()
        };
        let (line, effect, reason) = match e {
            PaymentEvent::Captured { .. } => {
                if self.track_sales {
                    self.sales.insert(
                        txn.clone(),
                        Sale {
                            merchant: b,
                            group,
                            amount,
                            cycle,
                        },
                    );
                }
                if late {
                    self.late_sales.insert(txn.clone(), cycle);
                }
                let track = self.track_sales;
                let bucket = self.books[b as usize].open.entry(cycle).or_default();
                if track {
                    bucket.sale_ids.push(txn.clone());
                }
                let g = &mut bucket.groups[group.index()];
                g.count += 1;
                g.sales += amount;
                (LineKind::Sales, amount.get(), reason!("sale captured in this cycle{late_note}"))
            }
            PaymentEvent::SaleCancelled { captured_at, .. } => {
                let late_cycle = self.late_sales.remove(txn);
                let sale = match self.sales.remove(txn) {
                    Some(sale) => sale,
                    // The sale's cycle is closed (it was settled there), or the
                    // batch's ledger does not remember open sales: the cancel
                    // tells the sale's cycle.
                    None => match late_cycle.or_else(|| captured_at.map(|c| Cycle::containing(booking_date(&c)))) {
                        Some(sale_cycle) => Sale {
                            merchant: b,
                            group,
                            amount,
                            cycle: sale_cycle,
                        },
                        None => {
                            self.anomalies
                                .push(format!("position {position}: cancel of transaction {txn} that has no captured sale"));
                            return;
                        }
                    },
                };
                if sale.merchant != b {
                    self.anomalies
                        .push(format!("position {position}: cancel of transaction {txn} names another merchant than its sale"));
                }
                let bucket = self.books[b as usize].open.entry(cycle).or_default();
                if sale.cycle == cycle {
                    let g = &mut bucket.groups[sale.group.index()];
                    g.count -= 1;
                    g.sales -= sale.amount;
                    (
                        LineKind::SaleCancelledSameCycle,
                        -sale.amount.get(),
                        reason!("cancel of a sale of this same cycle: the sale does not count{late_note}"),
                    )
                } else {
                    bucket.red_slips.push((sale.group, sale.amount, sale.cycle));
                    (
                        LineKind::RedSlip,
                        0, // filled in at close, once the sale's settled rate is known
                        reason!(
                            "red slip: cancel of a sale settled in the cycle from {}; its net is taken back, its fee returned{late_note}",
                            sale.cycle.start()
                        ),
                    )
                }
            }
            PaymentEvent::ChargedBack { .. } => {
                let bucket = self.books[b as usize].open.entry(cycle).or_default();
                bucket.chargebacks -= amount;
                bucket.chargeback_events += 1;
                (
                    LineKind::Chargeback,
                    -amount.get(),
                    reason!("chargeback booked in this cycle; the fee is not returned{late_note}"),
                )
            }
            PaymentEvent::ChargebackReversed { .. } => {
                let bucket = self.books[b as usize].open.entry(cycle).or_default();
                bucket.chargebacks += amount;
                bucket.chargeback_events += 1;
                (
                    LineKind::ChargebackReversal,
                    amount.get(),
                    reason!("chargeback reversed: the merchant won the dispute{late_note}"),
                )
            }
            _ => unreachable!("filtered above"),
        };
        if explaining {
            let item = ExplainItem {
                position,
                event_id: e.event_id().to_string(),
                txn_id: txn.to_string(),
                kind,
                at,
                booking_date: booking_date(&at),
                period_start: cycle.start(),
                group: Some(group),
                line,
                amount: amount.get(),
                effect,
                reason,
            };
            self.books[b as usize].open.entry(cycle).or_default().items.push(item);
        }
    }

    /// Computes the statements of `m` for every cycle up to `target`, in order,
    /// without recording them. Each is applied (closed) as it is computed, so
    /// the next one sees its carry-over.
    pub fn close_until(&mut self, m: &MerchantId, target: Cycle) -> Vec<(Statement, Vec<ExplainItem>)> {
        let Some(&b) = self.index.get(m) else { return Vec::new() };
        let mut out = Vec::new();
        while let Some(next) = self.books[b as usize].next_to_close() {
            if next > target {
                break;
            }
            let mut bucket = self.books[b as usize].open.remove(&next).unwrap_or_default();
            self.forget_sales(&mut bucket);
            if let Some((st, items)) = self.compute(b, next, bucket) {
                self.adopt(b, &st.closed);
                out.push((st, items));
            }
        }
        out
    }

    /// The statement of one cycle from its bucket, or None when it has none.
    fn compute(&mut self, b: u32, cycle: Cycle, bucket: Bucket) -> Option<(Statement, Vec<ExplainItem>)> {
        let book = &self.books[b as usize];
        let exists = bucket.makes_statement() || !book.carry.is_zero();
        if !exists {
            return None;
        }
        let Some(contract) = book.contract.as_ref() else {
            // The aggregates never record a transaction of an unregistered
            // merchant: only an altered log gets here.
            let msg = format!("merchant {} has transactions in the cycle from {} but no registration", book.id, cycle.start());
            self.anomalies.push(msg);
            return None;
        };
        let mut items = bucket.items;
        let mut red_slips = Yen::ZERO;
        let mut red_effects = Vec::with_capacity(bucket.red_slips.len());
        for (group, amount, sale_cycle) in &bucket.red_slips {
            // The rates in force for the sale's cycle (entries are kept where they changed).
            let rates = book.settled_rates.range(..=*sale_cycle).next_back().map_or(contract.rates, |(_, r)| *r);
            let v = -rules::net_of_fee(*amount, rates.for_group(*group));
            red_slips += v;
            red_effects.push(v);
        }
        let mut reds = red_effects.into_iter();
        for it in items.iter_mut().filter(|i| i.line == LineKind::RedSlip) {
            it.effect = reds.next().map_or(0, |v| v.get());
        }
        let payout_date = cycle.payout_date();
        let figures = rules::compute(&StatementInput {
            groups: bucket.groups,
            rates: contract.rates,
            fee_tax_policy: contract.fee_tax,
            payee_is_mizuho: contract.bank.is_mizuho(),
            carry_in: book.carry,
            red_slips,
            chargebacks: bucket.chargebacks,
            payout_date,
        });
        let closed = StatementClosed {
            merchant_id: book.id.clone(),
            period_start: cycle.start(),
            period_end: cycle.end(),
            payout_date,
            notice_date: cycle.notice_date(),
            figures,
            payee: contract.bank.clone(),
        };
        Some((
            Statement {
                merchant_id: book.id.clone(),
                cycle,
                closed,
            },
            items,
        ))
    }

    fn adopt(&mut self, b: u32, st: &StatementClosed) {
        let cycle = Cycle::starting(st.period_start).expect("a statement starts a cycle");
        let book = &mut self.books[b as usize];
        book.closed = Some(cycle);
        book.carry = st.figures.carry_out;
        if book.settled_rates.range(..cycle).next_back().map(|(_, r)| *r) != Some(st.figures.rates) {
            book.settled_rates.insert(cycle, st.figures.rates);
        }
        // Buckets of this and earlier cycles are settled (or made no statement).
        let later = book.open.split_off(&cycle.next());
        let done = std::mem::replace(&mut book.open, later);
        for (_, mut bucket) in done {
            self.forget_sales(&mut bucket);
        }
    }

    fn forget_sales(&mut self, bucket: &mut Bucket) {
        for id in bucket.sale_ids.drain(..) {
            self.sales.remove(&id);
        }
    }

    /// A recorded statement. With `verify`, the statement is first recomputed
    /// from the fold and every difference returned; either way the recorded
    /// figures are adopted.
    pub fn apply_statement_closed(&mut self, st: &StatementClosed, verify: bool) -> Vec<Difference> {
        let b = self.book_index(&st.merchant_id);
        let Some(cycle) = Cycle::starting(st.period_start) else {
            self.anomalies
                .push(format!("statement of {} starts on {}, not a cycle start", st.merchant_id, st.period_start));
            return Vec::new();
        };
        let explaining = self.explain.as_ref() == Some(&st.merchant_id);
        let mut diffs = Vec::new();
        if verify || explaining {
            let computed = self.close_until(&st.merchant_id, cycle.prev());
            for (c, _) in computed {
                diffs.push(Difference {
                    merchant_id: st.merchant_id.clone(),
                    period_start: c.closed.period_start,
                    field: "statement".into(),
                    recorded: "missing".into(),
                    recomputed: format!("payout {} carry_out {}", c.closed.figures.payout, c.closed.figures.carry_out),
                });
            }
            let mut bucket = self.books[b as usize].open.remove(&cycle).unwrap_or_default();
            self.forget_sales(&mut bucket);
            match self.compute(b, cycle, bucket) {
                None => diffs.push(Difference {
                    merchant_id: st.merchant_id.clone(),
                    period_start: st.period_start,
                    field: "statement".into(),
                    recorded: format!("payout {}", st.figures.payout),
                    recomputed: "no statement".into(),
                }),
                Some((c, items)) => {
                    diffs.extend(compare(st, &c.closed));
                    if explaining {
                        self.explained.insert(cycle, (st.clone(), items));
                    }
                }
            }
        }
        self.adopt(b, st);
        if verify {
            diffs
        } else {
            Vec::new()
        }
    }

    /// The recorded statement of the explained merchant for `cycle`, with every
    /// event behind its lines.
    pub fn explained(&self, m: &MerchantId, cycle: Cycle) -> Option<&(StatementClosed, Vec<ExplainItem>)> {
        (self.explain.as_ref() == Some(m)).then(|| self.explained.get(&cycle)).flatten()
    }

    /// A recorded run: every cycle ended by its date is closed for its merchants.
    /// With `verify`, a statement the run should have closed but did not record
    /// is a difference.
    pub fn apply_run_completed(&mut self, run: &RunCompleted, verify: bool) -> Vec<Difference> {
        let target = Cycle::last_ended_by(run.through);
        let mut diffs = Vec::new();
        if verify {
            let ids: Vec<MerchantId> = self
                .books
                .iter()
                .filter(|b| run.shard.is_none_or(|s| s.contains(&b.id)))
                .filter(|b| b.next_to_close().is_some_and(|c| c <= target))
                .map(|b| b.id.clone())
                .collect();
            for m in ids {
                for (c, _) in self.close_until(&m, target) {
                    diffs.push(Difference {
                        merchant_id: m.clone(),
                        period_start: c.closed.period_start,
                        field: "statement".into(),
                        recorded: "missing".into(),
                        recomputed: format!("payout {} carry_out {}", c.closed.figures.payout, c.closed.figures.carry_out),
                    });
                }
            }
        }
        match run.shard {
            None => self.global_closed = self.global_closed.max(Some(target)),
            Some(s) => {
                let e = self.shard_closed.entry(s).or_insert(target);
                *e = (*e).max(target);
            }
        }
        diffs
    }

    /// Merchants (in id order) that have something to close by `target`.
    pub fn merchants_due(&self, target: Cycle, shard: Option<Shard>) -> Vec<MerchantId> {
        let mut v: Vec<MerchantId> = self
            .books
            .iter()
            .filter(|b| shard.is_none_or(|s| s.contains(&b.id)))
            .filter(|b| b.next_to_close().is_some_and(|c| c <= target))
            .map(|b| b.id.clone())
            .collect();
        v.sort();
        v
    }
}

fn compare(recorded: &StatementClosed, computed: &StatementClosed) -> Vec<Difference> {
    let mut v = Vec::new();
    // Values are written out only when they differ: the audit compares every
    // statement of the history and nearly all of them agree.
    let mut differs = |field: String, recorded_value: String, recomputed: String| {
        v.push(Difference {
            merchant_id: recorded.merchant_id.clone(),
            period_start: recorded.period_start,
            field,
            recorded: recorded_value,
            recomputed,
        });
    };
    macro_rules! field {
        ($name:expr, $r:expr, $c:expr) => {
            if $r != $c {
                differs($name.to_string(), $r.to_string(), $c.to_string());
            }
        };
    }
    field!("period_end", recorded.period_end, computed.period_end);
    field!("payout_date", recorded.payout_date, computed.payout_date);
    field!("notice_date", recorded.notice_date, computed.notice_date);
    if recorded.payee != computed.payee {
        differs("payee".into(), format!("{:?}", recorded.payee), format!("{:?}", computed.payee));
    }
    let (r, c) = (&recorded.figures, &computed.figures);
    for g in BrandGroup::ALL {
        let (rl, cl) = (r.line(g), c.line(g));
        let p = match g {
            BrandGroup::VisaMaster => "visa_master",
            BrandGroup::JcbOther => "jcb_other",
            BrandGroup::Emoney => "emoney",
        };
        field!(format!("{p}_count"), rl.count, cl.count);
        field!(format!("{p}_sales"), rl.sales, cl.sales);
        field!(format!("{p}_fee"), rl.fee, cl.fee);
        field!(format!("{p}_rate"), r.rates.for_group(g), c.rates.for_group(g));
    }
    for (name, a, b) in [
        ("fee_tax", r.fee_tax, c.fee_tax),
        ("carry_in", r.carry_in, c.carry_in),
        ("red_slips", r.red_slips, c.red_slips),
        ("chargebacks", r.chargebacks, c.chargebacks),
        ("transfer_fee", r.transfer_fee, c.transfer_fee),
        ("transfer_fee_tax", r.transfer_fee_tax, c.transfer_fee_tax),
        ("payout", r.payout, c.payout),
        ("carry_out", r.carry_out, c.carry_out),
    ] {
        field!(name, a, b);
    }
    v
}
