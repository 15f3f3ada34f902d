//! `upay audit replay`: proves, from the event log alone, that every recorded
//! statement, notice and transfer file follows from the events, and that no
//! stored row was edited, reordered, inserted or deleted after it was written.

use chrono::{DateTime, Utc};
use domain::BrandGroup;
use payout::zengin;

use crate::app::AppError;
use crate::fold::{checkpoint_differences, parse_checkpoint, Finding, History, HistorySnapshot, CHECKPOINT_NAME};
use crate::store::{Checkpoint, Store};

pub async fn replay(st: &Store, as_of: Option<DateTime<Utc>>) -> Result<u8, AppError> {
    // The batch's checkpoint is checked too: it must be the fold of the log up
    // to its position, or the next night would build on something else.
    let checkpoint = match as_of {
        None => st.checkpoint_load(CHECKPOINT_NAME).await?,
        Some(_) => None,
    };
    let h = match &checkpoint {
        Some(c) => History::load_with_snapshot(st, c.position).await?,
        None => History::load(st, true, as_of, None).await?,
    };
    let mut findings: Vec<Finding> = h.findings.clone();
    if let Some(c) = &checkpoint {
        findings.extend(check_checkpoint(st, c, h.snapshot_taken.as_ref()).await?);
    }
    for a in &h.ledger.anomalies {
        findings.push(Finding {
            place: a.clone(),
            field: "event".into(),
            recorded: "present".into(),
            recomputed: "impossible for the aggregates".into(),
        });
    }
    // The chain's end must be the head the writers recorded: this catches the
    // deletion of the last rows, which no later row's hash could show.
    if as_of.is_none() {
        let (tail, unsealed_from) = h.chain_head();
        if let Some(from) = unsealed_from {
            eprintln!("note: rows from position {from} on are not sealed yet (written by the single-command path; the next write seals them)");
        }
        match st.log_head().await? {
            Some((pos, hash)) if hash != tail => findings.push(Finding {
                place: format!("log head (position {pos})"),
                field: "chain_hash".into(),
                recorded: hash,
                recomputed: format!("{tail} (rows at the end of the log were changed or deleted)"),
            }),
            None if h.events_read > 0 && unsealed_from.is_none() => findings.push(Finding {
                place: "log head".into(),
                field: "chain_hash".into(),
                recorded: "missing".into(),
                recomputed: tail.to_string(),
            }),
            _ => {}
        }
    }
    // Every notice revision: re-rendered from its recorded inputs, byte for byte,
    // and showing the figures of its statement.
    let mut notices = 0u64;
    for n in h.notices.values().flatten() {
        notices += 1;
        let place = format!("notice {}", n.notice_no);
        match notices::render_pdf(&n.document) {
            Err(e) => findings.push(Finding {
                place: place.clone(),
                field: "pdf".into(),
                recorded: n.pdf_sha256.clone(),
                recomputed: format!("cannot render: {e}"),
            }),
            Ok(pdf) => {
                let sha = notices::sha256_hex(&pdf);
                if sha != n.pdf_sha256 {
                    findings.push(Finding {
                        place: place.clone(),
                        field: "pdf_sha256".into(),
                        recorded: n.pdf_sha256.clone(),
                        recomputed: sha,
                    });
                }
            }
        }
        match h.audited.get(&(n.merchant_id.clone(), n.period_start)) {
            None => findings.push(Finding {
                place,
                field: "statement".into(),
                recorded: "notice issued".into(),
                recomputed: "no such statement".into(),
            }),
            Some(s) => {
                let f = &s.figures;
                let d = &n.document;
                let mut check = |field: &str, shown: i64, fig: i64| {
                    if shown != fig {
                        findings.push(Finding {
                            place: place.clone(),
                            field: field.to_string(),
                            recorded: shown.to_string(),
                            recomputed: fig.to_string(),
                        });
                    }
                };
                check("payout", d.payout_yen, f.payout.get());
                check("fee_tax", d.fee_tax_yen, f.fee_tax.get());
                check("previous_unsettled", d.previous_unsettled_yen, f.previous_unsettled().get());
                check("chargebacks", d.chargebacks_yen.unwrap_or(0), f.chargebacks.get());
                check("transfer_fee", d.transfer_fee_yen, f.transfer_fee.get());
                check("transfer_fee_tax", d.transfer_fee_tax_yen, f.transfer_fee_tax.get());
                for g in BrandGroup::ALL {
                    let shown = d.lines.iter().find(|l| l.group == g.label()).map_or(0, |l| l.sales_yen);
                    check(&format!("{} sales", g.label()), shown, f.line(g).sales.get());
                }
            }
        }
    }
    // Every transfer file: rewritten from its recorded inputs, paying exactly the
    // statements of its date.
    for t in h.transfer_files.values() {
        let place = format!("transfer file {}", t.file_name);
        match zengin::write_transfer_file(&t.remitter, t.payout_date, &t.transfers) {
            Err(e) => findings.push(Finding {
                place: place.clone(),
                field: "file".into(),
                recorded: t.sha256.clone(),
                recomputed: format!("cannot write: {e}"),
            }),
            Ok(f) if f.sha256_hex != t.sha256 => findings.push(Finding {
                place: place.clone(),
                field: "sha256".into(),
                recorded: t.sha256.clone(),
                recomputed: f.sha256_hex,
            }),
            Ok(_) => {}
        }
        let paid: i64 = h
            .audited
            .values()
            .filter(|s| s.payout_date == t.payout_date)
            .map(|s| s.figures.payout.get())
            .sum();
        if paid != t.total_yen {
            findings.push(Finding {
                place,
                field: "total".into(),
                recorded: t.total_yen.to_string(),
                recomputed: paid.to_string(),
            });
        }
    }
    let mut out = String::new();
    for f in &findings {
        out.push_str(&format!(
            "DIFFERENCE {}: {}: recorded {}, recomputed {}\n",
            f.place, f.field, f.recorded, f.recomputed
        ));
    }
    crate::output::emit(None, out.as_bytes())?;
    eprintln!(
        "{} events replayed{}; {} statements, {} notices, {} transfer files verified; {} differences",
        h.events_read,
        as_of.map_or(String::new(), |t| format!(" as of {}", t.to_rfc3339())),
        h.audited.len(),
        notices,
        h.transfer_files.len(),
        findings.len()
    );
    Ok(if findings.is_empty() { 0 } else { 1 })
}

/// What is wrong with the stored checkpoint, given the audit's own snapshot of
/// the history at its position (None: the fold never reached that position):
/// its main document and the parts it names.
async fn check_checkpoint(st: &Store, c: &Checkpoint, fresh: Option<&Option<HistorySnapshot>>) -> Result<Option<Finding>, AppError> {
    let finding = |recomputed: String| Finding {
        place: format!("checkpoint at position {}", c.position),
        field: "checkpoint".into(),
        recorded: format!("{} bytes", c.data.len()),
        recomputed,
    };
    if c.stored_hash != c.current_hash {
        return Ok(Some(finding("taken after a row that has since changed or gone: the next batch ignores it".into())));
    }
    let stored = match parse_checkpoint(&c.data) {
        Err(e) => return Ok(Some(finding(format!("{e}: the next batch ignores it")))),
        // Written by another version of upay: the next batch ignores it.
        Ok(None) => return Ok(None),
        Ok(Some(s)) => s,
    };
    Ok(match fresh {
        None => Some(finding("the log has no row at its position".into())),
        Some(None) => Some(finding("the log up to it holds events the settlement cannot place".into())),
        Some(Some(fresh)) => checkpoint_differences(st, &stored, fresh).await?.map(|d| {
            finding(format!(
                "{d}: the next batch would build on it; delete it (DELETE FROM checkpoints) and settle again"
            ))
        }),
    })
}
