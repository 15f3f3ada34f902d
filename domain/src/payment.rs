//! The Payment aggregate: one card transaction from authorization to its last
//! chargeback (SPEC §2). `decide` checks a command against the state in the order
//! of the rule table and returns events or the broken rule; `apply` folds an event.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::brand::Brand;
use crate::ids::{CardToken, EventId, MerchantId, TxnId};
use crate::money::Yen;
use crate::time::Instant;

/// How long after the authorization an authorization void is still possible.
pub const AUTH_VOID_WINDOW_HOURS: i64 = 60 * 24;
/// Installments are 1 to this many.
pub const INSTALLMENTS_MAX: u8 = 99;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeFields {
    pub merchant_id: MerchantId,
    pub brand: Brand,
    pub amount: Yen,
    pub card: CardToken,
    pub installments: Option<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentCommandKind {
    Authorize(AuthorizeFields),
    /// Authorize and capture at once.
    Sale(AuthorizeFields),
    Decline {
        fields: AuthorizeFields,
        codes: Vec<String>,
    },
    Capture {
        merchant_id: Option<MerchantId>,
        amount: Option<Yen>,
    },
    /// An empty card (None) never matches the transaction's card.
    Void {
        merchant_id: Option<MerchantId>,
        card: Option<CardToken>,
    },
    /// `amount` None means the whole sale.
    Chargeback {
        merchant_id: Option<MerchantId>,
        amount: Option<Yen>,
    },
    ChargebackReversal {
        merchant_id: Option<MerchantId>,
    },
}

impl PaymentCommandKind {
    pub fn name(&self) -> &'static str {
        match self {
            PaymentCommandKind::Authorize(_) => "authorize",
            PaymentCommandKind::Sale(_) => "sale",
            PaymentCommandKind::Decline { .. } => "decline",
            PaymentCommandKind::Capture { .. } => "capture",
            PaymentCommandKind::Void { .. } => "void",
            PaymentCommandKind::Chargeback { .. } => "chargeback",
            PaymentCommandKind::ChargebackReversal { .. } => "chargeback_reversal",
        }
    }
}

/// One input row, as a command on the transaction `txn_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCommand {
    pub event_id: EventId,
    pub txn_id: TxnId,
    pub at: Instant,
    pub kind: PaymentCommandKind,
}

/// What a decision needs to know beyond the transaction itself, looked up first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentContext {
    /// Whether the command's merchant is registered (rule 1).
    pub merchant_registered: bool,
}

/// Published contract: names and fields are never edited once shipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEvent {
    // The fields of every variant are declared in key order, so an event
    // serialises straight to its canonical JSON text (the event log's form).
    Authorized {
        amount: Yen,
        at: Instant,
        brand: Brand,
        card: CardToken,
        event_id: EventId,
        installments: Option<u8>,
        merchant_id: MerchantId,
    },
    AuthorizationDeclined {
        amount: Yen,
        at: Instant,
        brand: Brand,
        card: CardToken,
        codes: Vec<String>,
        event_id: EventId,
        installments: Option<u8>,
        merchant_id: MerchantId,
    },
    Captured {
        amount: Yen,
        at: Instant,
        brand: Brand,
        event_id: EventId,
        merchant_id: MerchantId,
    },
    AuthorizationVoided {
        at: Instant,
        event_id: EventId,
        merchant_id: MerchantId,
    },
    SaleCancelled {
        amount: Yen,
        at: Instant,
        brand: Brand,
        /// When the cancelled sale was captured: the settlement finds the
        /// sale's cycle (and so its settled rate) without keeping every sale.
        #[serde(default)]
        captured_at: Option<Instant>,
        event_id: EventId,
        merchant_id: MerchantId,
    },
    ChargedBack {
        amount: Yen,
        at: Instant,
        brand: Brand,
        event_id: EventId,
        merchant_id: MerchantId,
    },
    ChargebackReversed {
        amount: Yen,
        at: Instant,
        brand: Brand,
        event_id: EventId,
        merchant_id: MerchantId,
    },
}

impl PaymentEvent {
    pub fn name(&self) -> &'static str {
        match self {
            PaymentEvent::Authorized { .. } => "Authorized",
            PaymentEvent::AuthorizationDeclined { .. } => "AuthorizationDeclined",
            PaymentEvent::Captured { .. } => "Captured",
            PaymentEvent::AuthorizationVoided { .. } => "AuthorizationVoided",
            PaymentEvent::SaleCancelled { .. } => "SaleCancelled",
            PaymentEvent::ChargedBack { .. } => "ChargedBack",
            PaymentEvent::ChargebackReversed { .. } => "ChargebackReversed",
        }
    }

    pub fn at(&self) -> &Instant {
        match self {
            PaymentEvent::Authorized { at, .. }
            | PaymentEvent::AuthorizationDeclined { at, .. }
            | PaymentEvent::Captured { at, .. }
            | PaymentEvent::AuthorizationVoided { at, .. }
            | PaymentEvent::SaleCancelled { at, .. }
            | PaymentEvent::ChargedBack { at, .. }
            | PaymentEvent::ChargebackReversed { at, .. } => at,
        }
    }

    pub fn merchant_id(&self) -> &MerchantId {
        match self {
            PaymentEvent::Authorized { merchant_id, .. }
            | PaymentEvent::AuthorizationDeclined { merchant_id, .. }
            | PaymentEvent::Captured { merchant_id, .. }
            | PaymentEvent::AuthorizationVoided { merchant_id, .. }
            | PaymentEvent::SaleCancelled { merchant_id, .. }
            | PaymentEvent::ChargedBack { merchant_id, .. }
            | PaymentEvent::ChargebackReversed { merchant_id, .. } => merchant_id,
        }
    }

    pub fn event_id(&self) -> &EventId {
        match self {
            PaymentEvent::Authorized { event_id, .. }
            | PaymentEvent::AuthorizationDeclined { event_id, .. }
            | PaymentEvent::Captured { event_id, .. }
            | PaymentEvent::AuthorizationVoided { event_id, .. }
            | PaymentEvent::SaleCancelled { event_id, .. }
            | PaymentEvent::ChargedBack { event_id, .. }
            | PaymentEvent::ChargebackReversed { event_id, .. } => event_id,
        }
    }
}

/// A broken lifecycle rule, one variant per row of SPEC §2's table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentRefusal {
    #[error("加盟店情報が未登録です (merchant {0} is not registered)")]
    MerchantUnknown(MerchantId),
    #[error("対象の取引済み又は、取消不可状態です。(transaction {0} already exists)")]
    TxnIdExists(TxnId),
    #[error("対象の取引済み又は、取消不可状態です。(transaction {0} does not exist)")]
    UnknownTransaction(TxnId),
    #[error("対象の取引済み又は、取消不可状態です。(transaction {0} was declined)")]
    DeclinedTransaction(TxnId),
    #[error("加盟店が取引と一致しません (transaction {txn} belongs to merchant {expected}, not {given})")]
    MerchantMismatch { txn: TxnId, expected: MerchantId, given: MerchantId },
    #[error("対象の取引済み又は、取消不可状態です。(event at {at} is earlier than the transaction's last event at {last})")]
    OutOfOrder { at: Instant, last: Instant },
    #[error("対象の取引済み又は、取消不可状態です。(capture of a transaction that is {0}, not authorized)")]
    CaptureNotAuthorized(&'static str),
    #[error("対象の取引済み又は、取消不可状態です。(capture amount {given} differs from the authorized {authorized}; cancel and sell again)")]
    CaptureAmountMismatch { given: Yen, authorized: Yen },
    #[error("対象の取引済み又は、取消不可状態です。(transaction is already {0})")]
    AlreadyVoidedOrCancelled(&'static str),
    #[error("取消処理に失敗しました。取消処理は、対象の取引と同一のカードで実施する必要があります。")]
    CardMismatch,
    #[error("与信照会から60日以上経過しているため、与信の取消に失敗しました。(authorized at {authorized_at})")]
    VoidWindowExpired { authorized_at: Instant },
    #[error("チャージバック対応中の売上は取消できません (a chargeback of {0} yen is open)")]
    CancelDisputed(Yen),
    #[error("対象の取引は返品済又は、返品不可能状態です。(the sale was cancelled)")]
    ChargebackOfCancelled,
    #[error("対象の取引済み又は、取消不可状態です。(chargeback of a transaction that is {0}, never captured)")]
    ChargebackNotCaptured(&'static str),
    #[error("チャージバックは既に対応中です (a chargeback of {0} yen is open)")]
    ChargebackOpen(Yen),
    #[error("チャージバック金額が売上金額を超えています (chargeback {given} yen > captured {captured} yen)")]
    ChargebackExceeds { given: Yen, captured: Yen },
    #[error("対応中のチャージバックがありません (no chargeback is open)")]
    ChargebackNone,
}

impl PaymentRefusal {
    /// The code of the manual (or of SPEC §2 where the manual has none).
    pub fn code(&self) -> &'static str {
        use PaymentRefusal::*;
        match self {
            MerchantUnknown(_) => "merchant-unknown",
            TxnIdExists(_)
            | UnknownTransaction(_)
            | DeclinedTransaction(_)
            | OutOfOrder { .. }
            | CaptureNotAuthorized(_)
            | CaptureAmountMismatch { .. }
            | AlreadyVoidedOrCancelled(_)
            | ChargebackNotCaptured(_) => "P1241",
            MerchantMismatch { .. } => "merchant-mismatch",
            CardMismatch => "P1245",
            VoidWindowExpired { .. } => "ng-91",
            CancelDisputed(_) => "cancel-disputed",
            ChargebackOfCancelled => "P1441",
            ChargebackOpen(_) => "chargeback-open",
            ChargebackExceeds { .. } => "chargeback-exceeds",
            ChargebackNone => "chargeback-none",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    #[default]
    New,
    Declined,
    Authorized,
    Captured,
    Voided,
    Cancelled,
}

impl PaymentStatus {
    fn label(self) -> &'static str {
        match self {
            PaymentStatus::New => "unknown",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Voided => "voided",
            PaymentStatus::Cancelled => "cancelled",
        }
    }
}

/// The state of one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub status: PaymentStatus,
    pub merchant_id: Option<MerchantId>,
    pub brand: Option<Brand>,
    pub amount: Yen,
    pub card: Option<CardToken>,
    pub authorized_at: Option<Instant>,
    /// The instant of the last accepted event.
    pub last_at: Option<Instant>,
    /// The amount of the chargeback in dispute, if any.
    pub open_chargeback: Option<Yen>,
    /// The instant of the capture.
    #[serde(default)]
    pub captured_at: Option<Instant>,
}

impl Payment {
    /// Decides a command: the events it causes, or the first rule it breaks.
    pub fn decide(&self, cmd: &PaymentCommand, ctx: PaymentContext) -> Result<Vec<PaymentEvent>, PaymentRefusal> {
        use PaymentCommandKind as K;
        let at = cmd.at;
        let event_id = cmd.event_id.clone();
        // Rules 1 and 2: the kinds that open a transaction.
        if let K::Authorize(f) | K::Sale(f) | K::Decline { fields: f, .. } = &cmd.kind {
            if !ctx.merchant_registered {
                return Err(PaymentRefusal::MerchantUnknown(f.merchant_id.clone()));
            }
            if self.status != PaymentStatus::New {
                return Err(PaymentRefusal::TxnIdExists(cmd.txn_id.clone()));
            }
            let authorized = PaymentEvent::Authorized {
                event_id: event_id.clone(),
                merchant_id: f.merchant_id.clone(),
                brand: f.brand,
                amount: f.amount,
                card: f.card.clone(),
                installments: f.installments,
                at,
            };
            return Ok(match &cmd.kind {
                K::Authorize(_) => vec![authorized],
                K::Sale(_) => vec![
                    authorized,
                    PaymentEvent::Captured {
                        event_id,
                        merchant_id: f.merchant_id.clone(),
                        brand: f.brand,
                        amount: f.amount,
                        at,
                    },
                ],
                K::Decline { codes, .. } => vec![PaymentEvent::AuthorizationDeclined {
                    event_id,
                    merchant_id: f.merchant_id.clone(),
                    brand: f.brand,
                    amount: f.amount,
                    card: f.card.clone(),
                    installments: f.installments,
                    codes: codes.clone(),
                    at,
                }],
                _ => unreachable!("matched above"),
            });
        }
        // Rule 3: every other kind needs a live transaction.
        let (merchant, brand) = match (self.status, &self.merchant_id, self.brand) {
            (PaymentStatus::New, _, _) => return Err(PaymentRefusal::UnknownTransaction(cmd.txn_id.clone())),
            (PaymentStatus::Declined, _, _) => return Err(PaymentRefusal::DeclinedTransaction(cmd.txn_id.clone())),
            (_, Some(m), Some(b)) => (m.clone(), b),
            _ => unreachable!("a live transaction has a merchant and a brand"),
        };
        // Rule 4.
        let given = match &cmd.kind {
            K::Capture { merchant_id, .. } | K::Void { merchant_id, .. } | K::Chargeback { merchant_id, .. } | K::ChargebackReversal { merchant_id } => {
                merchant_id.as_ref()
            }
            _ => None,
        };
        if let Some(g) = given {
            if *g != merchant {
                return Err(PaymentRefusal::MerchantMismatch {
                    txn: cmd.txn_id.clone(),
                    expected: merchant,
                    given: g.clone(),
                });
            }
        }
        // Rule 5.
        if let Some(last) = self.last_at {
            if at < last {
                return Err(PaymentRefusal::OutOfOrder { at, last });
            }
        }
        let amount = self.amount;
        match &cmd.kind {
            K::Capture { amount: given, .. } => {
                if self.status != PaymentStatus::Authorized {
                    return Err(PaymentRefusal::CaptureNotAuthorized(self.status.label()));
                }
                if let Some(g) = given {
                    if *g != amount {
                        return Err(PaymentRefusal::CaptureAmountMismatch { given: *g, authorized: amount });
                    }
                }
                Ok(vec![PaymentEvent::Captured {
                    event_id,
                    merchant_id: merchant,
                    brand,
                    amount,
                    at,
                }])
            }
            K::Void { card, .. } => {
                if matches!(self.status, PaymentStatus::Voided | PaymentStatus::Cancelled) {
                    return Err(PaymentRefusal::AlreadyVoidedOrCancelled(self.status.label()));
                }
                if card.is_none() || card.as_ref() != self.card.as_ref() {
                    return Err(PaymentRefusal::CardMismatch);
                }
                if self.status == PaymentStatus::Authorized {
                    let authorized_at = self.authorized_at.expect("an authorized transaction has its instant");
                    if at.signed_duration_since(authorized_at) > Duration::hours(AUTH_VOID_WINDOW_HOURS) {
                        return Err(PaymentRefusal::VoidWindowExpired { authorized_at });
                    }
                    return Ok(vec![PaymentEvent::AuthorizationVoided {
                        event_id,
                        merchant_id: merchant,
                        at,
                    }]);
                }
                if let Some(open) = self.open_chargeback {
                    return Err(PaymentRefusal::CancelDisputed(open));
                }
                Ok(vec![PaymentEvent::SaleCancelled {
                    event_id,
                    merchant_id: merchant,
                    brand,
                    amount,
                    at,
                    captured_at: self.captured_at,
                }])
            }
            K::Chargeback { amount: given, .. } => {
                match self.status {
                    PaymentStatus::Cancelled => return Err(PaymentRefusal::ChargebackOfCancelled),
                    PaymentStatus::Captured => {}
                    other => return Err(PaymentRefusal::ChargebackNotCaptured(other.label())),
                }
                if let Some(open) = self.open_chargeback {
                    return Err(PaymentRefusal::ChargebackOpen(open));
                }
                let cb = given.unwrap_or(amount);
                if cb > amount {
                    return Err(PaymentRefusal::ChargebackExceeds { given: cb, captured: amount });
                }
                Ok(vec![PaymentEvent::ChargedBack {
                    event_id,
                    merchant_id: merchant,
                    brand,
                    amount: cb,
                    at,
                }])
            }
            K::ChargebackReversal { .. } => match self.open_chargeback {
                None => Err(PaymentRefusal::ChargebackNone),
                Some(open) => Ok(vec![PaymentEvent::ChargebackReversed {
                    event_id,
                    merchant_id: merchant,
                    brand,
                    amount: open,
                    at,
                }]),
            },
            K::Authorize(_) | K::Sale(_) | K::Decline { .. } => unreachable!("handled above"),
        }
    }

    pub fn apply(&mut self, event: &PaymentEvent) {
        match event {
            PaymentEvent::Authorized {
                merchant_id,
                brand,
                amount,
                card,
                at,
                ..
            } => {
                self.status = PaymentStatus::Authorized;
                self.merchant_id = Some(merchant_id.clone());
                self.brand = Some(*brand);
                self.amount = *amount;
                self.card = Some(card.clone());
                self.authorized_at = Some(*at);
            }
            PaymentEvent::AuthorizationDeclined {
                merchant_id,
                brand,
                amount,
                card,
                ..
            } => {
                self.status = PaymentStatus::Declined;
                self.merchant_id = Some(merchant_id.clone());
                self.brand = Some(*brand);
                self.amount = *amount;
                self.card = Some(card.clone());
            }
            PaymentEvent::Captured { at, .. } => {
                self.status = PaymentStatus::Captured;
                self.captured_at = Some(*at);
            }
            PaymentEvent::AuthorizationVoided { .. } => self.status = PaymentStatus::Voided,
            PaymentEvent::SaleCancelled { .. } => self.status = PaymentStatus::Cancelled,
            PaymentEvent::ChargedBack { amount, .. } => self.open_chargeback = Some(*amount),
            PaymentEvent::ChargebackReversed { .. } => self.open_chargeback = None,
        }
        self.last_at = Some(*event.at());
    }
}

/// The cqrs-es adapter. Its services answer rule 1's question.
pub trait MerchantRegistry: Send + Sync {
    fn is_registered(&self, merchant_id: &MerchantId) -> bool;
}

pub struct PaymentServices(pub Box<dyn MerchantRegistry>);

impl cqrs_es::DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl cqrs_es::Aggregate for Payment {
    const TYPE: &'static str = "Payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentRefusal;
    type Services = PaymentServices;

    async fn handle(&mut self, command: PaymentCommand, services: &PaymentServices, sink: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), PaymentRefusal> {
        let merchant_registered = match &command.kind {
            PaymentCommandKind::Authorize(f) | PaymentCommandKind::Sale(f) | PaymentCommandKind::Decline { fields: f, .. } => {
                services.0.is_registered(&f.merchant_id)
            }
            _ => true,
        };
        for e in self.decide(&command, PaymentContext { merchant_registered })? {
            sink.write(e, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: PaymentEvent) {
        Payment::apply(self, &event)
    }
}
