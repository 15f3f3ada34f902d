//! Notice delivery by mail.
//!
//! [`send`] speaks plain SMTP to a relay given as `smtp://host[:port]`
//! (port 25 by default): no TLS and no authentication, meant for a local
//! relay (Postfix on the batch host, a cloud SMTP sidecar) that takes care of
//! onward delivery. `smtps://` is recognised and refused with a clear message:
//! this build carries no TLS stack (see `docs/notices.md`). The attachment is
//! the encrypted ZIP; the password is never in the message.

use std::time::Duration;

use chrono::NaiveDate;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{format_date_ja, NoticeError};

/// One message: a plain-text body and one attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub to: String,
    /// Already formatted (see [`subject_for`]).
    pub subject: String,
    pub body: String,
    /// e.g. `270212122-001-20191031.zip`.
    pub attachment_name: String,
    pub attachment: Vec<u8>,
}

/// The subject from the `[mail] subject` template: `{notice_no}` is replaced.
pub fn subject_for(template: &str, notice_no: &str) -> String {
    template.replace("{notice_no}", notice_no)
}

/// The Japanese body: names the notice and the payout date, never the password.
pub fn body_for(notice_no: &str, payout_date: NaiveDate, merchant_name: &str) -> String {
    format!(
        "{merchant_name} 様\n\
         \n\
         いつもご利用いただきまして誠にありがとうございます。\n\
         お支払通知書をお送りいたします。\n\
         \n\
         通知書No：{notice_no}\n\
         お振込み予定日：{date}\n\
         \n\
         添付のZIPファイルはパスワードで保護されています。\n\
         パスワードは、ご契約時にお渡ししている書面に記載の数字9桁です。\n\
         \n\
         本メールは送信専用のアドレスからお送りしております。\n\
         ご不明な点は、通知書に記載のお問い合わせ先までご連絡ください。\n",
        date = format_date_ja(payout_date),
    )
}

/// Where to send: host and port of a plain SMTP relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
}

/// Parses `smtp://host[:port]` (IPv6 as `smtp://[::1]:2525`). A trailing `/`
/// is accepted. Credentials and `smtps://` are refused: this build has no TLS.
pub fn parse_smtp_url(url: &str) -> Result<SmtpTarget, NoticeError> {
    let rest = if let Some(r) = url.strip_prefix("smtp://") {
        r
    } else if url.starts_with("smtps://") {
        return Err(NoticeError::Mail(
            "smtps:// is not supported: this build has no TLS; relay through a local \
             smtp://host:port that handles TLS onwards"
                .into(),
        ));
    } else {
        return Err(NoticeError::Mail(
            "the SMTP URL must start with smtp://".into(),
        ));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') {
        // Never echo the URL: it may carry a password.
        return Err(NoticeError::Mail(
            "SMTP credentials are not supported (plain SMTP only, for a local relay)".into(),
        ));
    }
    if rest.contains('/') || rest.contains('?') {
        return Err(NoticeError::Mail(
            "the SMTP URL must be smtp://host[:port]".into(),
        ));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| NoticeError::Mail("bad IPv6 host in the SMTP URL".into()))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(NoticeError::Mail("bad SMTP URL".into())),
        };
        (h.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(NoticeError::Mail("the SMTP URL has no host".into()));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| NoticeError::Mail(format!("bad SMTP port {p:?}")))?,
        None => 25,
    };
    Ok(SmtpTarget { host, port })
}

/// Builds the MIME message (multipart/mixed: the text body, then the ZIP).
pub fn build_message(mail: &Mail) -> Result<Message, NoticeError> {
    let from: Mailbox = mail
        .from
        .parse()
        .map_err(|e| NoticeError::Mail(format!("bad From address {:?}: {e}", mail.from)))?;
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| NoticeError::Mail(format!("bad To address {:?}: {e}", mail.to)))?;
    let zip = ContentType::parse("application/zip").expect("a valid content type");
    Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(mail.body.clone()))
                .singlepart(
                    Attachment::new(mail.attachment_name.clone())
                        .body(mail.attachment.clone(), zip),
                ),
        )
        .map_err(|e| NoticeError::Mail(format!("cannot build the message: {e}")))
}

/// Sends one message through the SMTP relay at `smtp_url` (`smtp://host:port`,
/// plain, no TLS) with lettre's tokio transport. `Err` on any failure — the
/// caller keeps the message in its outbox and retries.
pub async fn send(smtp_url: &str, mail: &Mail) -> Result<(), NoticeError> {
    let target = parse_smtp_url(smtp_url)?;
    let message = build_message(mail)?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.host.clone())
        .port(target.port)
        .timeout(Some(Duration::from_secs(60)))
        .build();
    transport.send(message).await.map(|_| ()).map_err(|e| {
        NoticeError::Mail(format!(
            "sending to {}:{} failed: {e}",
            target.host, target.port
        ))
    })
}
