//! `upay settle --through DATE`: the nightly batch. It folds the history, closes
//! every cycle that ended by DATE (per merchant, in order, in chunks written one
//! transaction each), issues the notices whose notice date has come, and writes
//! the transfer file of each payout date whose notice date has come. Every step
//! reads what earlier (possibly killed) runs recorded, so a re-run finishes the
//! work and changes nothing that was done.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use domain::MerchantId;
use payout::cycle::Cycle;
use payout::zengin::{self, Transfer};
use projections::{RunCompleted, SettlementEvent, StatementClosed};

use crate::app::{refused, write_atomic, AppError};
use crate::cli::SettleArgs;
use crate::config::Config;
use crate::fold::{notice_stream, Conservation, History, HistorySnapshot, Part, PayingRows, TransferFileWritten, CHECKPOINT_NAME, SETTLEMENT, SETTLEMENT_RUN, TRANSFER_FILE};
use crate::notice_cmd::{document_for, issue, zip_encryption};
use crate::store::{NewEvent, Read, Store, StoreError, StreamGuard};

/// Merchants whose statements are written per transaction.
pub const SETTLE_CHUNK_MERCHANTS_MAX: usize = 500;

pub struct SettleSummary {
    pub statements: u64,
    pub notices: u64,
    pub transfer_files: u64,
}

impl SettleSummary {
    /// The line `settle` prints on stderr.
    pub fn report(&self, args: &SettleArgs) -> String {
        format!(
            "settle through {}{}: {} statements closed, {} notices issued, {} transfer files written",
            args.through,
            args.shard.map_or(String::new(), |s| format!(" (shard {s})")),
            self.statements,
            self.notices,
            self.transfer_files
        )
    }
}

/// How often the batch starts over when events arrive while it computes.
const SETTLE_ATTEMPTS_MAX: u32 = 5;

pub async fn settle(st: &Store, cfg: &Config, args: &SettleArgs) -> Result<SettleSummary, AppError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match settle_once(st, cfg, args).await {
            Err(AppError::Store(StoreError::Stale(pos))) if attempt < SETTLE_ATTEMPTS_MAX => {
                eprintln!("settle: events were recorded after position {pos} while statements were computed; reading them and closing again");
            }
            other => return other,
        }
    }
}

async fn settle_once(st: &Store, cfg: &Config, args: &SettleArgs) -> Result<SettleSummary, AppError> {
    let t0 = std::time::Instant::now();
    let (mut h, checkpoint) = History::for_batch(st).await?;
    tracing::debug!(
        "settle: folded {} events after position {checkpoint} in {:?}",
        h.events_read,
        t0.elapsed()
    );
    if let Some(a) = h.ledger.anomalies.first() {
        return Err(AppError::Invariant(format!(
            "the log holds an event the settlement cannot place ({a}); nothing closed, run `upay audit replay`"
        )));
    }
    let target = Cycle::last_ended_by(args.through);
    let due = h.ledger.merchants_due(target, args.shard);
    // The checkpoint's parts (contracts, statements) are read only by a run
    // that closes statements or has notices or transfer files to do.
    read_parts_for_work(st, &mut h, !due.is_empty(), args).await?;
    // The history as read, before anything is closed: a function of the log up
    // to its last position alone, which the next checkpoint continues from.
    let as_read = h.snapshot_reading(st, true).await?;
    tracing::debug!("settle: as-read snapshot at {:?}", t0.elapsed());
    let progress = crate::output::Progress::new("settle", due.len() as u64);
    let mut closed_total = 0u64;
    // Whether another batch closed some of our merchants at the same time: then
    // our view of the statements is incomplete, and the notices and transfer
    // files must be decided from the log as it now is.
    let mut others_closed = false;
    for chunk in due.chunks(SETTLE_CHUNK_MERCHANTS_MAX) {
        let mut per_merchant: Vec<(MerchantId, Vec<StatementClosed>)> = Vec::with_capacity(chunk.len());
        for m in chunk {
            let stmts: Vec<StatementClosed> = h.ledger.close_until(m, target).into_iter().map(|(s, _)| s.closed).collect();
            if !stmts.is_empty() {
                check_conservation(&h, m, &stmts)?;
                per_merchant.push((m.clone(), stmts));
            }
        }
        let (n, clashed) = write_statements(st, &mut h, per_merchant, !args.statements_only).await?;
        closed_total += n;
        others_closed |= clashed;
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    tracing::debug!("settle: closed {closed_total} statements at {:?}", t0.elapsed());

    let scope_through = h.runs.iter().filter(|r| r.shard == args.shard).map(|r| r.through).max();
    if closed_total > 0 || scope_through.is_none_or(|t| t < args.through) {
        let run = RunCompleted {
            through: args.through,
            shard: args.shard,
            statements_closed: closed_total,
        };
        let id = format!(
            "{}-{}-{}",
            args.through,
            args.shard.map_or("all".to_string(), |s| format!("{}of{}", s.k, s.n)),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        );
        let ev = NewEvent::json(
            SETTLEMENT_RUN,
            id,
            1,
            "SettlementRunCompleted",
            &SettlementEvent::RunCompleted(run.clone()),
        );
        st.append(&[ev], &[], &StreamGuard::default()).await?;
        h.runs.push(run);
    }

    if others_closed {
        h = History::for_batch(st).await?.0;
        read_parts_for_work(st, &mut h, false, args).await?;
    }
    // With the statements part unread, there is nothing due among them.
    let work = !args.statements_only && h.statements_work_due(args.through);
    if work {
        // The statements still waiting for a notice or a transfer file that
        // earlier runs closed: the checkpoint keeps their rows, not their content.
        let read_back = h.load_pending(st).await?;
        tracing::debug!("settle: read back {read_back} statements with work left");
    }
    let notices = if work { issue_notices(st, cfg, &h, args).await? } else { 0 };
    let files = if args.shard.is_none() && work {
        write_transfer_files(st, cfg, &mut h, args).await?
    } else {
        0
    };
    // The checkpoint is folded afresh from the log: this run's history goes
    // first. Its paying rows are still those read (the run adds statements'
    // content, not rows), or a superset after a reload, which the fold of the
    // run's rows gives again; those with work left are what the as-read
    // snapshot would have kept.
    let paying_rows = h.take_pending_rows();
    drop(h);
    match as_read {
        Some(s) => save_checkpoint(st, s, paying_rows, checkpoint).await,
        None => tracing::warn!("settle: no checkpoint kept (the log holds events the fold cannot place)"),
    }
    tracing::debug!("settle: done at {:?}", t0.elapsed());
    Ok(SettleSummary {
        statements: closed_total,
        notices,
        transfer_files: files,
    })
}

/// Keeps the history as of the end of this run for the next one: the history
/// as read (before anything was closed) plus everything recorded since, this
/// run's statements, notices and files included. A checkpoint is a cache: when
/// it cannot be written the night's work stands, and the next run folds more.
async fn save_checkpoint(st: &Store, as_read: HistorySnapshot, paying_rows: PayingRows, stored_at: i64) {
    let kept = async {
        let from = as_read.position;
        let read = Read {
            after: from,
            fold_only: true,
            ..Read::default()
        };
        let t0 = std::time::Instant::now();
        let mut h = History::restore_with_rows(as_read, paying_rows).fold(st, &read).await?;
        let Some(mut s) = h.snapshot_reading(st, false).await? else {
            return Ok::<_, AppError>(None);
        };
        drop(h);
        if s.position == stored_at {
            return Ok(None);
        }
        // Only the parts that changed are written; the others stay as stored.
        let parts = s.encode_parts();
        let stored = st.checkpoint_part_hashes(CHECKPOINT_NAME).await?;
        let changed: Vec<(String, &str, &str)> = parts
            .iter()
            .filter(|p| stored.get(&p.part.row()) != Some(&p.sha256))
            .map(|p| (p.part.row(), p.sha256.as_str(), p.text.as_str()))
            .collect();
        let data = serde_json::to_string(&s).expect("a snapshot serialises");
        st.checkpoint_save(CHECKPOINT_NAME, s.position, &data, &changed).await?;
        let written = data.len() + changed.iter().map(|(_, _, t)| t.len()).sum::<usize>();
        tracing::debug!("checkpoint: {written} bytes written in {:?}", t0.elapsed());
        Ok(Some((s.position, written)))
    };
    match kept.await {
        Ok(Some((position, bytes))) => tracing::debug!("settle: checkpoint at position {position} ({bytes} bytes)"),
        Ok(None) => {}
        Err(e) => eprintln!("settle: warning: the checkpoint was not kept ({e}); the next run folds the log from the last one"),
    }
}

/// Reads the checkpoint's parts when this run closes statements (`closes`) or
/// may have notices to issue or queue, or transfer files to write.
async fn read_parts_for_work(st: &Store, h: &mut History, closes: bool, args: &SettleArgs) -> Result<(), AppError> {
    if closes || (!args.statements_only && h.statements_work_due(args.through)) {
        h.load_parts(st, &Part::ALL).await?;
    }
    Ok(())
}

/// For a merchant: the recorded statements and the new ones must chain (each
/// carry-in is the previous carry-out) and conserve money: the flows of every
/// statement add up to what was paid out plus what is still carried.
fn check_conservation(h: &History, m: &MerchantId, new: &[StatementClosed]) -> Result<(), AppError> {
    let mut sums: Conservation = h.conservation.get(m).cloned().unwrap_or_default();
    for s in new {
        s.figures.assert_adds_up();
        sums.add(s);
    }
    sums.check(m).map_err(AppError::Invariant)
}

/// Writes the statements; returns how many, and whether another batch had
/// closed some of these merchants first.
/// With `keep`, the statements written stay in the history for the notices and
/// transfer files of this run (a statements-only run has none to write).
async fn write_statements(st: &Store, h: &mut History, per_merchant: Vec<(MerchantId, Vec<StatementClosed>)>, keep: bool) -> Result<(u64, bool), AppError> {
    if per_merchant.is_empty() {
        return Ok((0, false));
    }
    let mut clashed = false;
    let build = |h: &History, group: &[(MerchantId, Vec<StatementClosed>)]| {
        let mut events = Vec::new();
        let mut guard = StreamGuard {
            streams: Vec::new(),
            quiet_since: Some(h.last_position),
        };
        for (m, stmts) in group {
            let last = h.settlement_seq.get(m).copied().unwrap_or(0);
            guard.streams.push((SETTLEMENT, m.to_string(), last));
            for (i, s) in stmts.iter().enumerate() {
                events.push(NewEvent::json(
                    SETTLEMENT,
                    m.to_string(),
                    last + 1 + i as i64,
                    "StatementClosed",
                    &SettlementEvent::StatementClosed(s.clone()),
                ));
            }
        }
        (events, guard)
    };
    let (events, guard) = build(h, &per_merchant);
    let groups: Vec<Vec<(MerchantId, Vec<StatementClosed>)>> = match st.append(&events, &[], &guard).await {
        Ok(()) => vec![per_merchant],
        Err(StoreError::Conflict(_)) => {
            // Another batch closed some of these merchants first: go one by one
            // and leave those to it.
            let mut done = Vec::new();
            for one in per_merchant {
                let (ev, g) = build(h, std::slice::from_ref(&one));
                match st.append(&ev, &[], &g).await {
                    Ok(()) => done.push(vec![one]),
                    Err(StoreError::Conflict(_)) => {
                        clashed = true;
                        eprintln!("merchant {}: closed by another batch at the same time; left to it", one.0)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            done
        }
        Err(e) => return Err(e.into()),
    };
    let mut n = 0;
    for (m, stmts) in groups.into_iter().flatten() {
        let last = h.settlement_seq.entry(m.clone()).or_insert(0);
        *last += stmts.len() as i64;
        let sums = h.conservation.entry(m.clone()).or_default();
        for s in &stmts {
            sums.add(s);
        }
        n += stmts.len() as u64;
        if keep {
            for s in stmts {
                h.statements.insert((m.clone(), s.period_start), s);
            }
        }
    }
    Ok((n, clashed))
}

async fn issue_notices(st: &Store, cfg: &Config, h: &History, args: &SettleArgs) -> Result<u64, AppError> {
    let enc = zip_encryption(args.zip_encryption);
    let mut n = 0;
    let due: Vec<&StatementClosed> = h
        .statements
        .values()
        .filter(|s| s.figures.payout.is_positive() && s.notice_date <= args.through)
        .filter(|s| args.shard.is_none_or(|k| k.contains(&s.merchant_id)))
        .filter(|s| !h.notices.contains_key(&notice_stream(&s.merchant_id, s.payout_date)))
        .collect();
    let progress = crate::output::Progress::new("notices", due.len() as u64);
    for s in due {
        let contract = h
            .ledger
            .contract(&s.merchant_id)
            .ok_or_else(|| AppError::Invariant(format!("merchant {} has a statement but no contract", s.merchant_id)))?;
        let doc = document_for(s, contract, &s.payee, cfg, 1, args.through);
        match issue(st, &args.notices_dir, enc, &contract.email, doc, s, 1, None, None).await {
            Ok(_) => n += 1,
            Err(AppError::Store(StoreError::Conflict(_))) => {
                eprintln!("notice of {} {}: issued by another batch at the same time", s.merchant_id, s.payout_date)
            }
            Err(e) => return Err(e),
        }
        progress.inc(1);
    }
    progress.finish();
    n += requeue_unqueued(st, h, args, enc).await?;
    Ok(n)
}

/// Notices recorded as issued whose payout is still to come but which are not in
/// the outbox (queued and recorded are two writes): queued again, from the
/// recorded document, so every issued notice is mailed. Returns 0: nothing new
/// is issued.
async fn requeue_unqueued(st: &Store, h: &History, args: &SettleArgs, enc: notices::ZipEncryption) -> Result<u64, AppError> {
    let queued = st.outbox_notice_nos().await?;
    for n in h.notices.values().filter_map(|v| v.last()) {
        if n.payout_date < args.through || queued.contains(&n.notice_no) || args.shard.is_some_and(|k| !k.contains(&n.merchant_id)) {
            continue;
        }
        let pdf = notices::render_pdf(&n.document).map_err(|e| refused(format!("notice {}: {e}", n.notice_no)))?;
        if notices::sha256_hex(&pdf) != n.pdf_sha256 {
            return Err(AppError::Invariant(format!("notice {} no longer renders to its recorded PDF", n.notice_no)));
        }
        let password = st
            .secret(n.merchant_id.as_str())
            .await?
            .ok_or_else(|| refused(format!("merchant {} has no notice password", n.merchant_id)))?;
        let zip = notices::pack_zip(&n.notice_no, &pdf, &password, enc).map_err(|e| refused(format!("notice {}: {e}", n.notice_no)))?;
        let email = h.ledger.contract(&n.merchant_id).map(|c| c.email.clone()).unwrap_or_default();
        st.outbox_put(&n.notice_no, n.merchant_id.as_str(), &email, &n.payout_date.to_string(), &zip)
            .await?;
        eprintln!("notice {}: was recorded but not queued for mail; queued now", n.notice_no);
    }
    Ok(0)
}

/// The transfers of one payout date, ordered by merchant id.
pub fn transfers_for(h: &History, payout_date: NaiveDate) -> Result<Vec<Transfer>, AppError> {
    let mut out = Vec::new();
    let by_merchant: BTreeMap<&MerchantId, &StatementClosed> = h
        .statements
        .values()
        .filter(|s| s.payout_date == payout_date && s.figures.payout.is_positive())
        .map(|s| (&s.merchant_id, s))
        .collect();
    for (m, s) in by_merchant {
        // The bank in force when the cycle closed: it decided the transfer fee.
        let b = &s.payee;
        out.push(Transfer {
            bank_code: b.bank_code.clone(),
            bank_name_kana: b.bank_name_kana.clone(),
            branch_code: b.branch_code.clone(),
            branch_name_kana: b.branch_name_kana.clone(),
            account_type: match b.account_type {
                domain::AccountType::Ordinary => zengin::AccountType::Ordinary,
                domain::AccountType::Current => zengin::AccountType::Current,
            },
            account_number: b.account_number.clone(),
            holder_kana: b.account_holder.clone(),
            amount_yen: s.figures.payout.get(),
            merchant_id: m.to_string(),
        });
    }
    Ok(out)
}

async fn write_transfer_files(st: &Store, cfg: &Config, h: &mut History, args: &SettleArgs) -> Result<u64, AppError> {
    let dates: std::collections::BTreeSet<NaiveDate> = h
        .statements
        .values()
        .filter(|s| s.figures.payout.is_positive() && s.notice_date <= args.through && !h.transfer_dates.contains(&s.payout_date))
        .map(|s| s.payout_date)
        .collect();
    let mut n = 0;
    for d in dates {
        let transfers = transfers_for(h, d)?;
        let file = zengin::write_transfer_file(&cfg.remitter, d, &transfers).map_err(|e| refused(format!("transfer file for {d}: {e}")))?;
        let expected: i64 = transfers.iter().map(|t| t.amount_yen).sum();
        if file.total_yen != expected || file.record_count != transfers.len() {
            return Err(AppError::Invariant(format!(
                "transfer file for {d}: total {} / {} records, statements pay {expected} / {}",
                file.total_yen,
                file.record_count,
                transfers.len()
            )));
        }
        let name = format!("zengin-{}.txt", d.format("%Y%m%d"));
        write_atomic(&args.transfers_dir.join(&name), &file.bytes)?;
        let rec = TransferFileWritten {
            payout_date: d,
            file_name: name,
            record_count: file.record_count as u64,
            total_yen: file.total_yen,
            sha256: file.sha256_hex.clone(),
            remitter: cfg.remitter.clone(),
            transfers,
        };
        let ev = NewEvent::json(TRANSFER_FILE, d.to_string(), 1, "TransferFileWritten", &rec);
        match st.append(&[ev], &[], &StreamGuard::default()).await {
            Ok(()) => {
                h.transfer_dates.insert(d);
                h.transfer_files.insert(d, rec);
                n += 1;
            }
            Err(StoreError::Conflict(_)) => eprintln!("transfer file for {d}: written by another batch at the same time"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}
