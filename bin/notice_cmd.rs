//! Notices: the document a statement gives, issuing a revision (PDF, ZIP, event,
//! outbox), regeneration, restore, and delivery.

use std::path::Path;

use chrono::NaiveDate;
use domain::{BrandGroup, MerchantContract, MerchantId, PayeeBank};
use notices::{NoticeDocument, NoticeLine, ZipEncryption};
use projections::StatementClosed;

use crate::app::{refused, write_atomic, AppError};
use crate::cli::ZipEnc;
use crate::config::Config;
use crate::fold::{notice_no, notice_stream, History, NoticeIssued, NOTICE};
use crate::store::{NewEvent, Store, StoreError, StreamGuard};

/// How often a notice's delivery is tried in one `notices send` run.
const SEND_ATTEMPTS_MAX: u32 = 3;

pub fn zip_encryption(z: ZipEnc) -> ZipEncryption {
    match z {
        ZipEnc::Zipcrypto => ZipEncryption::ZipCrypto,
        ZipEnc::Aes256 => ZipEncryption::Aes256,
    }
}

/// Everything the notice of `st` shows: the merchant's names from `contract`,
/// the payee bank from `bank` (the statement's own on first issue, the current
/// one on regeneration), the issuer of now.
pub fn document_for(st: &StatementClosed, contract: &MerchantContract, bank: &PayeeBank, cfg: &Config, revision: u32, issue_date: NaiveDate) -> NoticeDocument {
    let f = &st.figures;
    let lines = BrandGroup::ALL
        .iter()
        .filter(|g| f.line(**g).count > 0 || !f.line(**g).sales.is_zero())
        .map(|g| {
            let l = f.line(*g);
            NoticeLine {
                group: g.label().to_string(),
                count: l.count,
                sales_yen: l.sales.get(),
                rate_percent: f.rates.for_group(*g).to_string(),
                fee_yen: l.fee.get(),
                net_yen: l.net().get(),
            }
        })
        .collect();
    let b = bank;
    NoticeDocument {
        notice_no: notice_no(&st.merchant_id, revision, st.payout_date),
        issue_date,
        merchant_name: contract.name.clone(),
        contact_name: contract.contact.clone(),
        issuer: cfg.issuer.clone(),
        period_start: st.period_start,
        period_end: st.period_end,
        lines,
        fee_tax_yen: f.fee_tax.get(),
        previous_unsettled_yen: f.previous_unsettled().get(),
        chargebacks_yen: (!f.chargebacks.is_zero()).then_some(f.chargebacks.get()),
        transfer_fee_yen: f.transfer_fee.get(),
        transfer_fee_tax_yen: f.transfer_fee_tax.get(),
        payout_yen: f.payout.get(),
        bank_name: b.bank_name.clone(),
        branch_name: b.branch_name.clone(),
        account_type: b.account_type.label().to_string(),
        account_number_masked: b.masked_account_number(),
        account_holder: b.account_holder.clone(),
        payout_date: st.payout_date,
    }
}

// The arguments are the notice's parts, each a different thing; a struct would
// only rename them.
#[allow(clippy::too_many_arguments)]
/// Renders and packs one revision, writes `{dir}/{notice_no}.zip`, records the
/// `NoticeIssued` event and queues the mail. The file and the mail are written
/// first: a crash before the event leaves a file and a queued mail the next run
/// rewrites, never an event without its file or its mail.
pub async fn issue(
    stx: &Store,
    dir: &Path,
    enc: ZipEncryption,
    email: &str,
    doc: NoticeDocument,
    st: &StatementClosed,
    revision: u32,
    reason: Option<String>,
    by: Option<String>,
) -> Result<NoticeIssued, AppError> {
    let pdf = notices::render_pdf(&doc).map_err(|e| refused(format!("notice {}: {e}", doc.notice_no)))?;
    let password = stx
        .secret(st.merchant_id.as_str())
        .await?
        .ok_or_else(|| refused(format!("merchant {} has no notice password on record", st.merchant_id)))?;
    let zip = notices::pack_zip(&doc.notice_no, &pdf, &password, enc).map_err(|e| refused(format!("notice {}: {e}", doc.notice_no)))?;
    write_atomic(&dir.join(format!("{}.zip", doc.notice_no)), &zip)?;
    let issued = NoticeIssued {
        notice_no: doc.notice_no.clone(),
        revision,
        merchant_id: st.merchant_id.clone(),
        period_start: st.period_start,
        payout_date: st.payout_date,
        issue_date: doc.issue_date,
        pdf_sha256: notices::sha256_hex(&pdf),
        pdf_bytes: pdf.len() as u64,
        document: doc,
        reason,
        by,
    };
    let ev = NewEvent::json(NOTICE, notice_stream(&st.merchant_id, st.payout_date), i64::from(revision), "NoticeIssued", &issued);
    // Queued before it is recorded: a crash in between leaves a queued notice
    // that `send` holds back until the event exists, never a recorded notice
    // that is never mailed. The re-run re-queues it with its own ZIP.
    stx.outbox_put(&issued.notice_no, st.merchant_id.as_str(), email, &st.payout_date.to_string(), &zip)
        .await?;
    stx.append(&[ev], &[], &StreamGuard::default()).await?;
    Ok(issued)
}

fn today_jst() -> NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::Asia::Tokyo).date_naive()
}

fn os_user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into())
}

#[allow(clippy::too_many_arguments)]
pub async fn regenerate(
    st: &Store,
    cfg: &Config,
    notice: &str,
    reason: &str,
    by: Option<String>,
    date: Option<NaiveDate>,
    dir: &Path,
    enc: ZipEnc,
) -> Result<(), AppError> {
    let parts: Vec<&str> = notice.split('-').collect();
    let bad = || refused(format!("--notice '{notice}' is not a notice number like 270212122-001-20191031"));
    if parts.len() != 3 {
        return Err(bad());
    }
    let m = MerchantId::parse(parts[0]).map_err(|_| bad())?;
    let payout = NaiveDate::parse_from_str(parts[2], "%Y%m%d").map_err(|_| bad())?;
    if reason.trim().is_empty() {
        return Err(refused("--reason must say why the notice is regenerated"));
    }
    let h = History::load(st, false, None, None).await?;
    let revs = h
        .notices
        .get(&notice_stream(&m, payout))
        .filter(|v| v.iter().any(|n| n.notice_no == notice))
        .ok_or_else(|| refused(format!("notice {notice} was never issued")))?;
    let last = revs.last().expect("non-empty");
    let stmt = h
        .statements
        .get(&(m.clone(), last.period_start))
        .ok_or_else(|| AppError::Invariant(format!("notice {notice} has no recorded statement")))?;
    let contract = h
        .ledger
        .contract(&m)
        .ok_or_else(|| AppError::Invariant(format!("merchant {m} of notice {notice} is not registered")))?;
    let revision = last.revision + 1;
    let doc = document_for(stmt, contract, &contract.bank, cfg, revision, date.unwrap_or_else(today_jst));
    let issued = issue(
        st,
        dir,
        zip_encryption(enc),
        &contract.email,
        doc,
        stmt,
        revision,
        Some(reason.to_string()),
        Some(by.unwrap_or_else(os_user)),
    )
    .await?;
    eprintln!(
        "notice {} issued (revision {} of {notice}) into {}",
        issued.notice_no,
        issued.revision,
        dir.display()
    );
    Ok(())
}

pub async fn restore(st: &Store, dir: &Path, transfers_dir: &Path, enc: ZipEnc) -> Result<(), AppError> {
    let h = History::load(st, false, None, None).await?;
    let (mut restored, mut present) = (0u64, 0u64);
    for n in h.notices.values().flatten() {
        let path = dir.join(format!("{}.zip", n.notice_no));
        if path.exists() {
            present += 1;
            continue;
        }
        let pdf = notices::render_pdf(&n.document).map_err(|e| refused(format!("notice {}: {e}", n.notice_no)))?;
        let sha = notices::sha256_hex(&pdf);
        if sha != n.pdf_sha256 {
            return Err(AppError::Invariant(format!(
                "notice {} re-renders to {sha}, not the issued {}",
                n.notice_no, n.pdf_sha256
            )));
        }
        let password = st
            .secret(n.merchant_id.as_str())
            .await?
            .ok_or_else(|| refused(format!("merchant {} has no notice password", n.merchant_id)))?;
        let zip = notices::pack_zip(&n.notice_no, &pdf, &password, zip_encryption(enc)).map_err(|e| refused(e.to_string()))?;
        write_atomic(&path, &zip)?;
        restored += 1;
    }
    eprintln!("notices: {restored} restored, {present} already in {}", dir.display());
    // Transfer files: rewritten from what was recorded, byte for byte.
    let (mut files_restored, mut files_present) = (0u64, 0u64);
    for t in h.transfer_files.values() {
        let path = transfers_dir.join(&t.file_name);
        if path.exists() {
            files_present += 1;
            continue;
        }
        let f = payout::zengin::write_transfer_file(&t.remitter, t.payout_date, &t.transfers).map_err(|e| refused(format!("{}: {e}", t.file_name)))?;
        if f.sha256_hex != t.sha256 {
            return Err(AppError::Invariant(format!(
                "{} rewrites to {}, not the written {}",
                t.file_name, f.sha256_hex, t.sha256
            )));
        }
        write_atomic(&path, &f.bytes)?;
        files_restored += 1;
    }
    eprintln!(
        "transfer files: {files_restored} restored, {files_present} already in {}",
        transfers_dir.display()
    );
    Ok(())
}

pub async fn send(st: &Store, cfg: &Config, smtp: &str) -> Result<(), AppError> {
    notices::mail::parse_smtp_url(smtp).map_err(|e| refused(format!("--smtp: {e}")))?;
    let h = History::load(st, false, None, None).await?;
    let (mut sent, mut failed) = (0u64, 0u64);
    let recorded: std::collections::HashSet<&str> = h.notices.values().flatten().map(|n| n.notice_no.as_str()).collect();
    for item in st.outbox_pending().await? {
        if !recorded.contains(item.notice_no.as_str()) {
            eprintln!(
                "notice {}: queued but not recorded as issued (an interrupted batch); held back until the next settle issues it",
                item.notice_no
            );
            continue;
        }
        let merchant_name = MerchantId::parse(&item.merchant_id)
            .ok()
            .and_then(|m| h.ledger.contract(&m).map(|c| c.name.clone()))
            .unwrap_or_default();
        let payout = NaiveDate::parse_from_str(&item.payout_date, "%Y-%m-%d").map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mail = notices::mail::Mail {
            from: cfg.mail.from.clone(),
            to: item.email.clone(),
            subject: notices::mail::subject_for(&cfg.mail.subject, &item.notice_no),
            body: notices::mail::body_for(&item.notice_no, payout, &merchant_name),
            attachment_name: format!("{}.zip", item.notice_no),
            attachment: item.zip.clone(),
        };
        let mut last_err = String::new();
        let mut ok = false;
        for attempt in 1..=SEND_ATTEMPTS_MAX {
            match notices::mail::send(smtp, &mail).await {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => {
                    last_err = e.to_string();
                    tracing::warn!("notice {}: attempt {attempt} failed: {last_err}", item.notice_no);
                    tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
        if ok {
            st.outbox_mark(&item.notice_no, Ok(&chrono::Utc::now().to_rfc3339())).await?;
            sent += 1;
        } else {
            st.outbox_mark(&item.notice_no, Err(&last_err)).await?;
            eprintln!("notice {}: not delivered: {last_err}", item.notice_no);
            failed += 1;
        }
    }
    eprintln!("notices: {sent} sent, {failed} not delivered (kept in the outbox)");
    if failed > 0 {
        return Err(refused(format!("{failed} notices could not be delivered; run again to retry")));
    }
    Ok(())
}
