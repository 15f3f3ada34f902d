//! Given/when/then tests of the Payment aggregate: one per rule of SPEC §2's table
//! and per refusal, plus the order of the rules and a property test.
//!
//! Every case runs twice: through cqrs-es 0.5's `TestFramework` (the async
//! `Aggregate::handle` adapter, with a `MerchantRegistry` service answering rule 1)
//! and through the plain `Payment::decide`. Refusals are matched by variant (full
//! equality of the `PaymentRefusal` value) and by `code()`, never by message text.

use chrono::Duration;
use cqrs_es::test::TestFramework;
use domain::payment::{
    AuthorizeFields, MerchantRegistry, Payment, PaymentCommand, PaymentCommandKind, PaymentContext, PaymentEvent,
    PaymentRefusal, PaymentServices, PaymentStatus, AUTH_VOID_WINDOW_HOURS,
};
use domain::time::{parse_instant, Instant};
use domain::{Brand, CardToken, EventId, MerchantId, TxnId, Yen};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const MERCHANT: &str = "270212122";
const OTHER_MERCHANT: &str = "270212999";
const UNREGISTERED: &str = "999999999";
const AMOUNT: i64 = 10_000;

fn mid(s: &str) -> MerchantId {
    MerchantId::parse(s).unwrap()
}
fn merchant() -> MerchantId {
    mid(MERCHANT)
}
fn txn() -> TxnId {
    TxnId::parse("T-0001").unwrap()
}
fn eid(s: &str) -> EventId {
    EventId::parse(s).unwrap()
}
fn card() -> CardToken {
    CardToken::parse("tok_a").unwrap()
}
fn other_card() -> CardToken {
    CardToken::parse("tok_b").unwrap()
}
fn yen(v: i64) -> Yen {
    Yen::new(v)
}

/// 2019-10-01 10:00 JST.
fn t0() -> Instant {
    parse_instant("2019-10-01T10:00:00+09:00").unwrap()
}
/// `t0` plus `h` hours.
fn h(hours: i64) -> Instant {
    t0() + Duration::hours(hours)
}

const OK: PaymentContext = PaymentContext { merchant_registered: true };
const UNKNOWN: PaymentContext = PaymentContext { merchant_registered: false };

struct Registry(Vec<MerchantId>);
impl MerchantRegistry for Registry {
    fn is_registered(&self, merchant_id: &MerchantId) -> bool {
        self.0.contains(merchant_id)
    }
}
/// MERCHANT and OTHER_MERCHANT are registered, UNREGISTERED is not.
fn services() -> PaymentServices {
    PaymentServices(Box::new(Registry(vec![mid(MERCHANT), mid(OTHER_MERCHANT)])))
}
fn framework() -> TestFramework<Payment> {
    TestFramework::with(services())
}

fn fields_for(m: &str, amount: i64, installments: Option<u8>) -> AuthorizeFields {
    AuthorizeFields { merchant_id: mid(m), brand: Brand::Visa, amount: yen(amount), card: card(), installments }
}
fn fields() -> AuthorizeFields {
    fields_for(MERCHANT, AMOUNT, None)
}

fn cmd(id: &str, at: Instant, kind: PaymentCommandKind) -> PaymentCommand {
    PaymentCommand { event_id: eid(id), txn_id: txn(), at, kind }
}

// Commands.
fn authorize(id: &str, at: Instant) -> PaymentCommand {
    cmd(id, at, PaymentCommandKind::Authorize(fields()))
}
fn sale(id: &str, at: Instant) -> PaymentCommand {
    cmd(id, at, PaymentCommandKind::Sale(fields()))
}
fn decline(id: &str, at: Instant) -> PaymentCommand {
    cmd(id, at, PaymentCommandKind::Decline { fields: fields(), codes: vec!["ng-05".into(), "G12".into()] })
}
fn capture(id: &str, at: Instant, amount: Option<i64>) -> PaymentCommand {
    cmd(id, at, PaymentCommandKind::Capture { merchant_id: Some(merchant()), amount: amount.map(yen) })
}
fn void(id: &str, at: Instant, c: Option<CardToken>) -> PaymentCommand {
    cmd(id, at, PaymentCommandKind::Void { merchant_id: Some(merchant()), card: c })
}
fn chargeback(id: &str, at: Instant, amount: Option<i64>) -> PaymentCommand {
    cmd(id, at, PaymentCommandKind::Chargeback { merchant_id: Some(merchant()), amount: amount.map(yen) })
}
fn reversal(id: &str, at: Instant) -> PaymentCommand {
    cmd(id, at, PaymentCommandKind::ChargebackReversal { merchant_id: Some(merchant()) })
}
/// Same command with its merchant replaced (`None` = empty column).
fn with_merchant(mut c: PaymentCommand, m: Option<&str>) -> PaymentCommand {
    let m = m.map(mid);
    match &mut c.kind {
        PaymentCommandKind::Capture { merchant_id, .. }
        | PaymentCommandKind::Void { merchant_id, .. }
        | PaymentCommandKind::Chargeback { merchant_id, .. }
        | PaymentCommandKind::ChargebackReversal { merchant_id } => *merchant_id = m,
        PaymentCommandKind::Authorize(f) | PaymentCommandKind::Sale(f) | PaymentCommandKind::Decline { fields: f, .. } => {
            f.merchant_id = m.expect("an opening command has a merchant")
        }
    }
    c
}
/// The four kinds that need an existing transaction (rule 3), at `at`.
fn follow_up_commands(at: Instant) -> Vec<PaymentCommand> {
    vec![capture("e-x", at, Some(AMOUNT)), void("e-x", at, Some(card())), chargeback("e-x", at, None), reversal("e-x", at)]
}

// Events.
fn authorized(id: &str, at: Instant) -> PaymentEvent {
    PaymentEvent::Authorized {
        event_id: eid(id),
        merchant_id: merchant(),
        brand: Brand::Visa,
        amount: yen(AMOUNT),
        card: card(),
        installments: None,
        at,
    }
}
fn declined(id: &str, at: Instant) -> PaymentEvent {
    PaymentEvent::AuthorizationDeclined {
        event_id: eid(id),
        merchant_id: merchant(),
        brand: Brand::Visa,
        amount: yen(AMOUNT),
        card: card(),
        installments: None,
        codes: vec!["ng-05".into(), "G12".into()],
        at,
    }
}
fn captured(id: &str, at: Instant) -> PaymentEvent {
    PaymentEvent::Captured { event_id: eid(id), merchant_id: merchant(), brand: Brand::Visa, amount: yen(AMOUNT), at }
}
fn voided(id: &str, at: Instant) -> PaymentEvent {
    PaymentEvent::AuthorizationVoided { event_id: eid(id), merchant_id: merchant(), at }
}
fn cancelled(id: &str, at: Instant) -> PaymentEvent {
    PaymentEvent::SaleCancelled { event_id: eid(id), merchant_id: merchant(), brand: Brand::Visa, amount: yen(AMOUNT), at, captured_at: Some(h(1)) }
}
fn charged_back(id: &str, at: Instant, amount: i64) -> PaymentEvent {
    PaymentEvent::ChargedBack { event_id: eid(id), merchant_id: merchant(), brand: Brand::Visa, amount: yen(amount), at }
}
fn reversed(id: &str, at: Instant, amount: i64) -> PaymentEvent {
    PaymentEvent::ChargebackReversed { event_id: eid(id), merchant_id: merchant(), brand: Brand::Visa, amount: yen(amount), at }
}

// Histories (all at hour 0 .. n).
fn h_authorized() -> Vec<PaymentEvent> {
    vec![authorized("e1", h(0))]
}
fn h_declined() -> Vec<PaymentEvent> {
    vec![declined("e1", h(0))]
}
fn h_captured() -> Vec<PaymentEvent> {
    vec![authorized("e1", h(0)), captured("e2", h(1))]
}
fn h_voided() -> Vec<PaymentEvent> {
    vec![authorized("e1", h(0)), voided("e2", h(1))]
}
fn h_cancelled() -> Vec<PaymentEvent> {
    vec![authorized("e1", h(0)), captured("e2", h(1)), cancelled("e3", h(2))]
}
fn h_disputed(amount: i64) -> Vec<PaymentEvent> {
    vec![authorized("e1", h(0)), captured("e2", h(1)), charged_back("e3", h(2), amount)]
}
fn h_reversed(amount: i64) -> Vec<PaymentEvent> {
    vec![authorized("e1", h(0)), captured("e2", h(1)), charged_back("e3", h(2), amount), reversed("e4", h(3), amount)]
}

fn fold(events: &[PaymentEvent]) -> Payment {
    let mut p = Payment::default();
    for e in events {
        p.apply(e);
    }
    p
}

// ---------------------------------------------------------------------------
// Given / when / then, on both paths
// ---------------------------------------------------------------------------

/// The command is accepted with exactly `expected`, through the adapter and through
/// `decide`; returns the state after applying them.
fn accepted(given: Vec<PaymentEvent>, when: PaymentCommand, expected: Vec<PaymentEvent>) -> Payment {
    framework().given(given.clone()).when(when.clone()).then_expect_events(expected.clone());
    let state = fold(&given);
    let events = state.decide(&when, OK).unwrap_or_else(|e| panic!("expected acceptance, got {} ({e:?})", e.code()));
    assert_eq!(events, expected);
    let mut after = state;
    for e in &events {
        after.apply(e);
    }
    assert_eq!(after.last_at, Some(when.at), "the last accepted instant is the command's");
    after
}

/// The command is refused with exactly `expected` (variant and fields), whose code
/// is `code`, through the adapter and through `decide`; the state is unchanged.
fn refused(given: Vec<PaymentEvent>, when: PaymentCommand, expected: PaymentRefusal, code: &str) {
    assert_eq!(expected.code(), code, "the expected refusal {expected:?} carries the code {code}");
    framework().given(given.clone()).when(when.clone()).then_expect_error(expected.clone());
    let state = fold(&given);
    let before = state.clone();
    let err = state.decide(&when, OK).expect_err("expected a refusal");
    assert_eq!(err, expected);
    assert_eq!(err.code(), code);
    assert_eq!(state, before, "a refused command changes nothing");
    // Deciding again gives the same answer: nothing was remembered.
    assert_eq!(state.decide(&when, OK), Err(expected));
}

// ---------------------------------------------------------------------------
// Happy paths
// ---------------------------------------------------------------------------

#[test]
fn authorize_records_authorized() {
    let p = accepted(vec![], authorize("e1", h(0)), vec![authorized("e1", h(0))]);
    assert_eq!(p.status, PaymentStatus::Authorized);
    assert_eq!(p.merchant_id, Some(merchant()));
    assert_eq!(p.brand, Some(Brand::Visa));
    assert_eq!(p.amount, yen(AMOUNT));
    assert_eq!(p.card, Some(card()));
    assert_eq!(p.authorized_at, Some(h(0)));
    assert_eq!(p.open_chargeback, None);
}

#[test]
fn authorize_records_installments() {
    let c = cmd("e1", h(0), PaymentCommandKind::Authorize(fields_for(MERCHANT, AMOUNT, Some(3))));
    let expected = PaymentEvent::Authorized {
        event_id: eid("e1"),
        merchant_id: merchant(),
        brand: Brand::Visa,
        amount: yen(AMOUNT),
        card: card(),
        installments: Some(3),
        at: h(0),
    };
    let p = accepted(vec![], c, vec![expected]);
    // Installments change nothing in settlement: the amount is the whole amount.
    assert_eq!(p.amount, yen(AMOUNT));
    // ... and capture still takes the full amount.
    accepted(
        vec![PaymentEvent::Authorized {
            event_id: eid("e1"),
            merchant_id: merchant(),
            brand: Brand::Visa,
            amount: yen(AMOUNT),
            card: card(),
            installments: Some(3),
            at: h(0),
        }],
        capture("e2", h(1), None),
        vec![captured("e2", h(1))],
    );
}

#[test]
fn sale_with_installments_keeps_them_on_the_authorization() {
    let c = cmd("e1", h(0), PaymentCommandKind::Sale(fields_for(MERCHANT, AMOUNT, Some(12))));
    let events = Payment::default().decide(&c, OK).unwrap();
    assert!(matches!(events[0], PaymentEvent::Authorized { installments: Some(12), .. }));
    assert!(matches!(events[1], PaymentEvent::Captured { amount, .. } if amount == yen(AMOUNT)));
}

#[test]
fn sale_records_authorized_then_captured() {
    let p = accepted(vec![], sale("e1", h(0)), vec![authorized("e1", h(0)), captured("e1", h(0))]);
    assert_eq!(p.status, PaymentStatus::Captured);
    assert_eq!(p.authorized_at, Some(h(0)));
}

#[test]
fn decline_records_authorization_declined_with_codes() {
    let p = accepted(vec![], decline("e1", h(0)), vec![declined("e1", h(0))]);
    assert_eq!(p.status, PaymentStatus::Declined);
    let events = Payment::default().decide(&decline("e1", h(0)), OK).unwrap();
    match &events[..] {
        [PaymentEvent::AuthorizationDeclined { codes, .. }] => assert_eq!(codes, &vec!["ng-05".to_string(), "G12".to_string()]),
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn capture_of_an_authorization() {
    let p = accepted(h_authorized(), capture("e2", h(1), Some(AMOUNT)), vec![captured("e2", h(1))]);
    assert_eq!(p.status, PaymentStatus::Captured);
}

#[test]
fn capture_with_empty_amount_takes_the_authorized_amount() {
    accepted(h_authorized(), capture("e2", h(1), None), vec![captured("e2", h(1))]);
}

#[test]
fn capture_with_empty_merchant_is_not_a_mismatch() {
    accepted(h_authorized(), with_merchant(capture("e2", h(1), None), None), vec![captured("e2", h(1))]);
}

#[test]
fn authorization_void_ok90_within_60_days() {
    let p = accepted(h_authorized(), void("e2", h(1), Some(card())), vec![voided("e2", h(1))]);
    assert_eq!(p.status, PaymentStatus::Voided);
    // 59 days later is fine too.
    accepted(h_authorized(), void("e2", h(59 * 24), Some(card())), vec![voided("e2", h(59 * 24))]);
}

#[test]
fn sale_cancel_is_a_void_after_capture() {
    let p = accepted(h_captured(), void("e3", h(2), Some(card())), vec![cancelled("e3", h(2))]);
    assert_eq!(p.status, PaymentStatus::Cancelled);
}

#[test]
fn sale_cancel_has_no_60_day_window() {
    // The 60-day window (rule 10) is for authorization voids only.
    accepted(h_captured(), void("e3", h(90 * 24), Some(card())), vec![cancelled("e3", h(90 * 24))]);
}

#[test]
fn chargeback_partial() {
    let p = accepted(h_captured(), chargeback("e3", h(2), Some(4_000)), vec![charged_back("e3", h(2), 4_000)]);
    assert_eq!(p.open_chargeback, Some(yen(4_000)));
    assert_eq!(p.status, PaymentStatus::Captured);
}

#[test]
fn chargeback_full_when_amount_is_empty() {
    let p = accepted(h_captured(), chargeback("e3", h(2), None), vec![charged_back("e3", h(2), AMOUNT)]);
    assert_eq!(p.open_chargeback, Some(yen(AMOUNT)));
}

#[test]
fn chargeback_of_exactly_the_captured_amount() {
    accepted(h_captured(), chargeback("e3", h(2), Some(AMOUNT)), vec![charged_back("e3", h(2), AMOUNT)]);
}

#[test]
fn chargeback_reversal_restores_exactly_the_open_amount() {
    let p = accepted(h_disputed(4_000), reversal("e4", h(3)), vec![reversed("e4", h(3), 4_000)]);
    assert_eq!(p.open_chargeback, None);
    assert_eq!(p.status, PaymentStatus::Captured);
    accepted(h_disputed(AMOUNT), reversal("e4", h(3)), vec![reversed("e4", h(3), AMOUNT)]);
}

#[test]
fn chargeback_again_after_a_reversal() {
    let p = accepted(h_reversed(4_000), chargeback("e5", h(4), Some(2_500)), vec![charged_back("e5", h(4), 2_500)]);
    assert_eq!(p.open_chargeback, Some(yen(2_500)));
    // The second one can be the whole sale again, and reversed again.
    let mut given = h_reversed(4_000);
    given.push(charged_back("e5", h(4), AMOUNT));
    accepted(given, reversal("e6", h(5)), vec![reversed("e6", h(5), AMOUNT)]);
}

#[test]
fn cancel_after_a_reversal() {
    let p = accepted(h_reversed(4_000), void("e5", h(4), Some(card())), vec![cancelled("e5", h(4))]);
    assert_eq!(p.status, PaymentStatus::Cancelled);
}

#[test]
fn equal_at_to_the_last_event_is_allowed() {
    // Capture, void, chargeback and reversal at the very instant of the last event.
    accepted(h_authorized(), capture("e2", h(0), None), vec![captured("e2", h(0))]);
    accepted(h_authorized(), void("e2", h(0), Some(card())), vec![voided("e2", h(0))]);
    accepted(h_captured(), chargeback("e3", h(1), None), vec![charged_back("e3", h(1), AMOUNT)]);
    accepted(h_disputed(AMOUNT), reversal("e4", h(2)), vec![reversed("e4", h(2), AMOUNT)]);
}

#[test]
fn equal_instant_written_in_another_offset_is_allowed() {
    // 10:00+09:00 is 01:00Z: the same instant, so not out of order.
    let same = parse_instant("2019-10-01T01:00:00Z").unwrap();
    accepted(h_authorized(), capture("e2", same, None), vec![captured("e2", same)]);
}

#[tokio::test]
async fn async_adapter_sale_then_chargeback_then_reversal() {
    framework().given_no_previous_events().when_async(sale("e1", h(0))).await.then_expect_events(vec![
        authorized("e1", h(0)),
        captured("e1", h(0)),
    ]);
    framework()
        .given(vec![authorized("e1", h(0))])
        .and(vec![captured("e1", h(0))])
        .when_async(chargeback("e2", h(1), Some(1)))
        .await
        .then_expect_events(vec![charged_back("e2", h(1), 1)]);
    framework().given(h_disputed(1)).when_async(reversal("e4", h(3))).await.then_expect_events(vec![reversed("e4", h(3), 1)]);
}

#[tokio::test]
async fn async_adapter_refusal() {
    let r = framework().given(h_cancelled()).when_async(chargeback("e4", h(3), None)).await.inspect_result();
    let err = r.expect_err("a cancelled sale cannot be charged back");
    assert!(matches!(err, PaymentRefusal::ChargebackOfCancelled));
    assert_eq!(err.code(), "P1441");
    framework()
        .given_no_previous_events()
        .when_async(with_merchant(authorize("e1", h(0)), Some(UNREGISTERED)))
        .await
        .then_expect_error(PaymentRefusal::MerchantUnknown(mid(UNREGISTERED)));
}

// ---------------------------------------------------------------------------
// Rule 1: merchant-unknown
// ---------------------------------------------------------------------------

#[test]
fn rule01_merchant_unknown_for_authorize_sale_decline() {
    for c in [authorize("e1", h(0)), sale("e1", h(0)), decline("e1", h(0))] {
        let name = c.kind.name();
        // decide with the context.
        let err = Payment::default().decide(&c, UNKNOWN).expect_err(name);
        assert!(matches!(&err, PaymentRefusal::MerchantUnknown(m) if *m == merchant()), "{name}: {err:?}");
        assert_eq!(err.code(), "merchant-unknown", "{name}");
        // The adapter, whose registry does not know the merchant.
        let c = with_merchant(c, Some(UNREGISTERED));
        framework().given_no_previous_events().when(c).then_expect_error(PaymentRefusal::MerchantUnknown(mid(UNREGISTERED)));
    }
}

#[test]
fn rule01_registered_merchant_passes() {
    // A second registered merchant is fine (the registry is asked, not a constant).
    let c = with_merchant(authorize("e1", h(0)), Some(OTHER_MERCHANT));
    let events = framework().given_no_previous_events().when(c).inspect_result().unwrap();
    assert_eq!(events[0].merchant_id(), &mid(OTHER_MERCHANT));
}

// ---------------------------------------------------------------------------
// Rule 2: P1241 for a txn_id that already exists
// ---------------------------------------------------------------------------

#[test]
fn rule02_duplicate_txn_for_authorize_sale_decline() {
    for given in [h_authorized(), h_captured(), h_declined(), h_voided(), h_cancelled()] {
        for c in [authorize("e9", h(5)), sale("e9", h(5)), decline("e9", h(5))] {
            refused(given.clone(), c, PaymentRefusal::TxnIdExists(txn()), "P1241");
        }
    }
}

// ---------------------------------------------------------------------------
// Rule 3: P1241 for other kinds on an unknown or declined transaction
// ---------------------------------------------------------------------------

#[test]
fn rule03_unknown_transaction_for_capture_void_chargeback_reversal() {
    for c in follow_up_commands(h(1)) {
        refused(vec![], c, PaymentRefusal::UnknownTransaction(txn()), "P1241");
    }
}

#[test]
fn rule03_declined_transaction_for_capture_void_chargeback_reversal() {
    for c in follow_up_commands(h(1)) {
        refused(h_declined(), c, PaymentRefusal::DeclinedTransaction(txn()), "P1241");
    }
}

// ---------------------------------------------------------------------------
// Rule 4: merchant-mismatch
// ---------------------------------------------------------------------------

#[test]
fn rule04_merchant_mismatch_for_every_follow_up_kind() {
    let expected = PaymentRefusal::MerchantMismatch { txn: txn(), expected: merchant(), given: mid(OTHER_MERCHANT) };
    for c in follow_up_commands(h(5)) {
        let given = match c.kind {
            PaymentCommandKind::ChargebackReversal { .. } => h_disputed(AMOUNT),
            PaymentCommandKind::Chargeback { .. } => h_captured(),
            _ => h_authorized(),
        };
        refused(given, with_merchant(c, Some(OTHER_MERCHANT)), expected.clone(), "merchant-mismatch");
    }
}

// ---------------------------------------------------------------------------
// Rule 5: P1241 for an `at` earlier than the last accepted event
// ---------------------------------------------------------------------------

#[test]
fn rule05_out_of_order_for_every_follow_up_kind() {
    // Last event at h(1) (captured) or h(2) (disputed); the command one second earlier.
    let cases = [
        (h_authorized(), capture("e2", h(0) - Duration::seconds(1), None), h(0)),
        (h_authorized(), void("e2", h(0) - Duration::seconds(1), Some(card())), h(0)),
        (h_captured(), void("e3", h(1) - Duration::seconds(1), Some(card())), h(1)),
        (h_captured(), chargeback("e3", h(1) - Duration::seconds(1), None), h(1)),
        (h_disputed(AMOUNT), reversal("e4", h(2) - Duration::seconds(1)), h(2)),
    ];
    for (given, c, last) in cases {
        let at = c.at;
        refused(given, c, PaymentRefusal::OutOfOrder { at, last }, "P1241");
    }
}

#[test]
fn rule05_compares_instants_not_wall_clocks() {
    // 00:59:59Z is 09:59:59+09:00, one second before the authorization.
    let earlier = parse_instant("2019-10-01T00:59:59Z").unwrap();
    refused(h_authorized(), capture("e2", earlier, None), PaymentRefusal::OutOfOrder { at: earlier, last: h(0) }, "P1241");
    // 10:00:00+10:00 is 09:00 JST, an hour before, though its wall clock is equal.
    let earlier = parse_instant("2019-10-01T10:00:00+10:00").unwrap();
    refused(h_authorized(), capture("e2", earlier, None), PaymentRefusal::OutOfOrder { at: earlier, last: h(0) }, "P1241");
}

#[test]
fn rule05_is_against_the_last_event_not_the_authorization() {
    // After a capture at h(10), a void at h(5) is out of order although after the authorization.
    let given = vec![authorized("e1", h(0)), captured("e2", h(10))];
    refused(given, void("e3", h(5), Some(card())), PaymentRefusal::OutOfOrder { at: h(5), last: h(10) }, "P1241");
}

// ---------------------------------------------------------------------------
// Rule 6: capture of a transaction that is not authorized
// ---------------------------------------------------------------------------

#[test]
fn rule06_capture_of_a_captured_transaction() {
    refused(h_captured(), capture("e3", h(2), None), PaymentRefusal::CaptureNotAuthorized("captured"), "P1241");
    // A sale is already captured.
    refused(
        vec![authorized("e1", h(0)), captured("e1", h(0))],
        capture("e2", h(1), Some(AMOUNT)),
        PaymentRefusal::CaptureNotAuthorized("captured"),
        "P1241",
    );
}

#[test]
fn rule06_capture_of_a_voided_transaction() {
    refused(h_voided(), capture("e3", h(2), None), PaymentRefusal::CaptureNotAuthorized("voided"), "P1241");
}

#[test]
fn rule06_capture_of_a_cancelled_transaction() {
    refused(h_cancelled(), capture("e4", h(3), None), PaymentRefusal::CaptureNotAuthorized("cancelled"), "P1241");
}

// ---------------------------------------------------------------------------
// Rule 7: capture amount differs
// ---------------------------------------------------------------------------

#[test]
fn rule07_capture_amount_differs() {
    for given in [AMOUNT - 1, AMOUNT + 1, 1] {
        refused(
            h_authorized(),
            capture("e2", h(1), Some(given)),
            PaymentRefusal::CaptureAmountMismatch { given: yen(given), authorized: yen(AMOUNT) },
            "P1241",
        );
    }
}

// ---------------------------------------------------------------------------
// Rule 8: void of a voided or cancelled transaction
// ---------------------------------------------------------------------------

#[test]
fn rule08_void_of_a_voided_transaction() {
    refused(h_voided(), void("e3", h(2), Some(card())), PaymentRefusal::AlreadyVoidedOrCancelled("voided"), "P1241");
}

#[test]
fn rule08_void_of_a_cancelled_transaction() {
    refused(h_cancelled(), void("e4", h(3), Some(card())), PaymentRefusal::AlreadyVoidedOrCancelled("cancelled"), "P1241");
}

// ---------------------------------------------------------------------------
// Rule 9: P1245 void with another card, or none
// ---------------------------------------------------------------------------

#[test]
fn rule09_void_with_a_wrong_card() {
    refused(h_authorized(), void("e2", h(1), Some(other_card())), PaymentRefusal::CardMismatch, "P1245");
    refused(h_captured(), void("e3", h(2), Some(other_card())), PaymentRefusal::CardMismatch, "P1245");
}

#[test]
fn rule09_void_with_an_empty_card() {
    refused(h_authorized(), void("e2", h(1), None), PaymentRefusal::CardMismatch, "P1245");
    refused(h_captured(), void("e3", h(2), None), PaymentRefusal::CardMismatch, "P1245");
}

// ---------------------------------------------------------------------------
// Rule 10: ng-91 authorization void more than 60 × 24 h after the authorization
// ---------------------------------------------------------------------------

#[test]
fn rule10_authorization_void_after_60_days() {
    let late = h(AUTH_VOID_WINDOW_HOURS) + Duration::seconds(1);
    refused(h_authorized(), void("e2", late, Some(card())), PaymentRefusal::VoidWindowExpired { authorized_at: h(0) }, "ng-91");
    refused(
        h_authorized(),
        void("e2", h(61 * 24), Some(card())),
        PaymentRefusal::VoidWindowExpired { authorized_at: h(0) },
        "ng-91",
    );
}

#[test]
fn rule10_exactly_60_days_is_still_allowed() {
    assert_eq!(AUTH_VOID_WINDOW_HOURS, 60 * 24);
    let edge = h(60 * 24);
    accepted(h_authorized(), void("e2", edge, Some(card())), vec![voided("e2", edge)]);
}

#[test]
fn rule10_window_is_in_hours_not_calendar_days() {
    // Authorized 23:59 JST; 60 calendar days later at 00:01 is < 60 × 24 h: allowed.
    let auth = parse_instant("2019-10-01T23:59:00+09:00").unwrap();
    let given = vec![authorized("e1", auth)];
    let at = parse_instant("2019-11-30T23:59:00+09:00").unwrap(); // exactly 60 × 24 h
    accepted(given.clone(), void("e2", at, Some(card())), vec![voided("e2", at)]);
    let at = parse_instant("2019-11-30T23:59:01+09:00").unwrap();
    refused(given, void("e2", at, Some(card())), PaymentRefusal::VoidWindowExpired { authorized_at: auth }, "ng-91");
}

// ---------------------------------------------------------------------------
// Rule 11: cancel-disputed
// ---------------------------------------------------------------------------

#[test]
fn rule11_cancel_while_a_chargeback_is_open() {
    refused(h_disputed(4_000), void("e4", h(3), Some(card())), PaymentRefusal::CancelDisputed(yen(4_000)), "cancel-disputed");
    refused(h_disputed(AMOUNT), void("e4", h(3), Some(card())), PaymentRefusal::CancelDisputed(yen(AMOUNT)), "cancel-disputed");
}

// ---------------------------------------------------------------------------
// Rule 12: P1441 chargeback of a cancelled sale
// ---------------------------------------------------------------------------

#[test]
fn rule12_chargeback_of_a_cancelled_sale() {
    refused(h_cancelled(), chargeback("e4", h(3), None), PaymentRefusal::ChargebackOfCancelled, "P1441");
    refused(h_cancelled(), chargeback("e4", h(3), Some(1)), PaymentRefusal::ChargebackOfCancelled, "P1441");
}

// ---------------------------------------------------------------------------
// Rule 13: P1241 chargeback of a transaction never captured (or voided)
// ---------------------------------------------------------------------------

#[test]
fn rule13_chargeback_of_an_authorization_only() {
    refused(h_authorized(), chargeback("e2", h(1), None), PaymentRefusal::ChargebackNotCaptured("authorized"), "P1241");
}

#[test]
fn rule13_chargeback_of_a_voided_authorization() {
    refused(h_voided(), chargeback("e3", h(2), None), PaymentRefusal::ChargebackNotCaptured("voided"), "P1241");
}

// ---------------------------------------------------------------------------
// Rule 14: chargeback-open
// ---------------------------------------------------------------------------

#[test]
fn rule14_chargeback_while_one_is_open() {
    refused(h_disputed(4_000), chargeback("e4", h(3), Some(1_000)), PaymentRefusal::ChargebackOpen(yen(4_000)), "chargeback-open");
    refused(h_disputed(4_000), chargeback("e4", h(3), None), PaymentRefusal::ChargebackOpen(yen(4_000)), "chargeback-open");
}

// ---------------------------------------------------------------------------
// Rule 15: chargeback-exceeds
// ---------------------------------------------------------------------------

#[test]
fn rule15_chargeback_larger_than_the_captured_amount() {
    refused(
        h_captured(),
        chargeback("e3", h(2), Some(AMOUNT + 1)),
        PaymentRefusal::ChargebackExceeds { given: yen(AMOUNT + 1), captured: yen(AMOUNT) },
        "chargeback-exceeds",
    );
    // Also after a reversal: the limit is the sale, not what is left of it.
    refused(
        h_reversed(4_000),
        chargeback("e5", h(4), Some(AMOUNT + 1)),
        PaymentRefusal::ChargebackExceeds { given: yen(AMOUNT + 1), captured: yen(AMOUNT) },
        "chargeback-exceeds",
    );
}

// ---------------------------------------------------------------------------
// Rule 16: chargeback-none
// ---------------------------------------------------------------------------

#[test]
fn rule16_reversal_with_no_chargeback_open() {
    refused(h_captured(), reversal("e3", h(2)), PaymentRefusal::ChargebackNone, "chargeback-none");
    refused(h_authorized(), reversal("e2", h(1)), PaymentRefusal::ChargebackNone, "chargeback-none");
}

#[test]
fn rule16_second_reversal_of_the_same_chargeback() {
    refused(h_reversed(4_000), reversal("e5", h(4)), PaymentRefusal::ChargebackNone, "chargeback-none");
}

// ---------------------------------------------------------------------------
// Rule order: two rules broken at once, the earlier one's code wins
// ---------------------------------------------------------------------------

#[test]
fn order_1_before_2_unregistered_merchant_with_an_existing_txn() {
    let c = with_merchant(authorize("e9", h(5)), Some(UNREGISTERED));
    framework().given(h_authorized()).when(c.clone()).then_expect_error(PaymentRefusal::MerchantUnknown(mid(UNREGISTERED)));
    let err = fold(&h_authorized()).decide(&c, UNKNOWN).unwrap_err();
    assert_eq!(err.code(), "merchant-unknown");
}

#[test]
fn order_2_existing_txn_wins_over_an_earlier_instant() {
    refused(h_captured(), sale("e9", h(0) - Duration::days(1)), PaymentRefusal::TxnIdExists(txn()), "P1241");
}

#[test]
fn order_3_before_4_unknown_txn_with_another_merchant() {
    let c = with_merchant(capture("e1", h(1), None), Some(OTHER_MERCHANT));
    refused(vec![], c.clone(), PaymentRefusal::UnknownTransaction(txn()), "P1241");
    refused(h_declined(), c, PaymentRefusal::DeclinedTransaction(txn()), "P1241");
}

#[test]
fn order_4_before_5_merchant_mismatch_and_out_of_order() {
    let c = with_merchant(void("e3", h(0), Some(card())), Some(OTHER_MERCHANT));
    refused(
        h_captured(),
        c,
        PaymentRefusal::MerchantMismatch { txn: txn(), expected: merchant(), given: mid(OTHER_MERCHANT) },
        "merchant-mismatch",
    );
}

#[test]
fn order_5_before_6_out_of_order_capture_of_a_captured_txn() {
    let err = fold(&h_captured()).decide(&capture("e3", h(0), None), OK).unwrap_err();
    assert!(matches!(err, PaymentRefusal::OutOfOrder { .. }), "{err:?}");
    assert_eq!(err.code(), "P1241");
    refused(h_captured(), capture("e3", h(0), None), PaymentRefusal::OutOfOrder { at: h(0), last: h(1) }, "P1241");
}

#[test]
fn order_5_before_9_out_of_order_void_with_a_wrong_card() {
    refused(h_captured(), void("e3", h(0), Some(other_card())), PaymentRefusal::OutOfOrder { at: h(0), last: h(1) }, "P1241");
}

#[test]
fn order_6_before_7_capture_of_a_captured_txn_with_another_amount() {
    refused(h_captured(), capture("e3", h(2), Some(1)), PaymentRefusal::CaptureNotAuthorized("captured"), "P1241");
}

#[test]
fn order_8_before_9_void_of_a_cancelled_txn_with_a_wrong_card() {
    refused(h_cancelled(), void("e4", h(3), Some(other_card())), PaymentRefusal::AlreadyVoidedOrCancelled("cancelled"), "P1241");
    refused(h_voided(), void("e3", h(2), None), PaymentRefusal::AlreadyVoidedOrCancelled("voided"), "P1241");
}

#[test]
fn order_9_before_10_wrong_card_after_60_days() {
    refused(h_authorized(), void("e2", h(61 * 24), Some(other_card())), PaymentRefusal::CardMismatch, "P1245");
}

#[test]
fn order_9_before_11_wrong_card_while_disputed() {
    refused(h_disputed(AMOUNT), void("e4", h(3), None), PaymentRefusal::CardMismatch, "P1245");
}

#[test]
fn order_12_before_15_chargeback_of_a_cancelled_sale_larger_than_the_amount() {
    refused(h_cancelled(), chargeback("e4", h(3), Some(AMOUNT * 10)), PaymentRefusal::ChargebackOfCancelled, "P1441");
}

#[test]
fn order_13_before_15_chargeback_of_an_authorization_larger_than_the_amount() {
    refused(
        h_authorized(),
        chargeback("e2", h(1), Some(AMOUNT + 1)),
        PaymentRefusal::ChargebackNotCaptured("authorized"),
        "P1241",
    );
}

#[test]
fn order_14_before_15_open_chargeback_and_too_large() {
    refused(h_disputed(1_000), chargeback("e4", h(3), Some(AMOUNT + 1)), PaymentRefusal::ChargebackOpen(yen(1_000)), "chargeback-open");
}

#[test]
fn order_4_before_16_reversal_by_another_merchant_with_none_open() {
    refused(
        h_captured(),
        with_merchant(reversal("e3", h(2)), Some(OTHER_MERCHANT)),
        PaymentRefusal::MerchantMismatch { txn: txn(), expected: merchant(), given: mid(OTHER_MERCHANT) },
        "merchant-mismatch",
    );
}

#[test]
fn order_5_before_12_out_of_order_chargeback_of_a_cancelled_sale() {
    refused(h_cancelled(), chargeback("e4", h(1), None), PaymentRefusal::OutOfOrder { at: h(1), last: h(2) }, "P1241");
}

// ---------------------------------------------------------------------------
// Property: random command sequences on one transaction
// ---------------------------------------------------------------------------

/// An independent reading of SPEC §2, used as an oracle: the code of the first
/// broken rule, or the names of the events. Deliberately written from the table,
/// not from `decide`.
mod oracle {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum St {
        None,
        Declined,
        Authorized,
        Captured,
        Voided,
        Cancelled,
    }

    #[derive(Clone, Debug)]
    pub struct Model {
        pub st: St,
        pub merchant: Option<MerchantId>,
        pub amount: i64,
        pub card: Option<CardToken>,
        pub auth_at: Option<Instant>,
        pub last: Option<Instant>,
        pub open: Option<i64>,
    }

    impl Model {
        pub fn new() -> Model {
            Model { st: St::None, merchant: None, amount: 0, card: None, auth_at: None, last: None, open: None }
        }

        /// Ok(event names) or Err(code), and the model is advanced on Ok.
        pub fn step(&mut self, c: &PaymentCommand, registered: bool) -> Result<Vec<&'static str>, &'static str> {
            use PaymentCommandKind as K;
            let opening = matches!(c.kind, K::Authorize(_) | K::Sale(_) | K::Decline { .. });
            // 1
            if opening && !registered {
                return Err("merchant-unknown");
            }
            // 2
            if opening && self.st != St::None {
                return Err("P1241");
            }
            if let K::Authorize(f) | K::Sale(f) | K::Decline { fields: f, .. } = &c.kind {
                self.merchant = Some(f.merchant_id.clone());
                self.amount = f.amount.get();
                self.card = Some(f.card.clone());
                self.last = Some(c.at);
                return Ok(match &c.kind {
                    K::Authorize(_) => {
                        self.st = St::Authorized;
                        self.auth_at = Some(c.at);
                        vec!["Authorized"]
                    }
                    K::Sale(_) => {
                        self.st = St::Captured;
                        self.auth_at = Some(c.at);
                        vec!["Authorized", "Captured"]
                    }
                    _ => {
                        self.st = St::Declined;
                        vec!["AuthorizationDeclined"]
                    }
                });
            }
            // 3
            if matches!(self.st, St::None | St::Declined) {
                return Err("P1241");
            }
            // 4
            let given = match &c.kind {
                K::Capture { merchant_id, .. }
                | K::Void { merchant_id, .. }
                | K::Chargeback { merchant_id, .. }
                | K::ChargebackReversal { merchant_id } => merchant_id.clone(),
                _ => unreachable!(),
            };
            if given.is_some() && given != self.merchant {
                return Err("merchant-mismatch");
            }
            // 5
            if c.at < self.last.unwrap() {
                return Err("P1241");
            }
            let out = match &c.kind {
                K::Capture { amount, .. } => {
                    // 6, 7
                    if self.st != St::Authorized {
                        return Err("P1241");
                    }
                    if amount.is_some_and(|a| a.get() != self.amount) {
                        return Err("P1241");
                    }
                    self.st = St::Captured;
                    vec!["Captured"]
                }
                K::Void { card, .. } => {
                    // 8, 9, 10, 11
                    if matches!(self.st, St::Voided | St::Cancelled) {
                        return Err("P1241");
                    }
                    if card.is_none() || *card != self.card {
                        return Err("P1245");
                    }
                    if self.st == St::Authorized {
                        if c.at - self.auth_at.unwrap() > Duration::hours(60 * 24) {
                            return Err("ng-91");
                        }
                        self.st = St::Voided;
                        vec!["AuthorizationVoided"]
                    } else {
                        if self.open.is_some() {
                            return Err("cancel-disputed");
                        }
                        self.st = St::Cancelled;
                        vec!["SaleCancelled"]
                    }
                }
                K::Chargeback { amount, .. } => {
                    // 12, 13, 14, 15
                    if self.st == St::Cancelled {
                        return Err("P1441");
                    }
                    if self.st != St::Captured {
                        return Err("P1241");
                    }
                    if self.open.is_some() {
                        return Err("chargeback-open");
                    }
                    let a = amount.map_or(self.amount, |a| a.get());
                    if a > self.amount {
                        return Err("chargeback-exceeds");
                    }
                    self.open = Some(a);
                    vec!["ChargedBack"]
                }
                K::ChargebackReversal { .. } => {
                    // 16
                    if self.open.is_none() {
                        return Err("chargeback-none");
                    }
                    self.open = None;
                    vec!["ChargebackReversed"]
                }
                _ => unreachable!(),
            };
            self.last = Some(c.at);
            Ok(out)
        }
    }
}

const MERCHANTS: [&str; 3] = [MERCHANT, OTHER_MERCHANT, UNREGISTERED];
const AMOUNTS: [i64; 4] = [1, 4_000, AMOUNT, AMOUNT + 1];

fn arb_merchant() -> impl Strategy<Value = MerchantId> {
    prop::sample::select(MERCHANTS.to_vec()).prop_map(mid)
}
fn arb_opt_merchant() -> impl Strategy<Value = Option<MerchantId>> {
    prop_oneof![3 => Just(None), 5 => Just(Some(merchant())), 1 => arb_merchant().prop_map(Some)]
}
fn arb_amount() -> impl Strategy<Value = Yen> {
    prop_oneof![prop::sample::select(AMOUNTS.to_vec()).prop_map(yen), (1i64..=20_000).prop_map(yen)]
}
fn arb_opt_amount() -> impl Strategy<Value = Option<Yen>> {
    prop_oneof![Just(None), arb_amount().prop_map(Some)]
}
fn arb_card() -> impl Strategy<Value = CardToken> {
    prop_oneof![4 => Just(card()), 1 => Just(other_card())]
}
fn arb_fields() -> impl Strategy<Value = AuthorizeFields> {
    (prop_oneof![4 => Just(merchant()), 1 => arb_merchant()], arb_amount(), arb_card(), prop::option::of(1u8..=99)).prop_map(
        |(merchant_id, amount, card, installments)| AuthorizeFields { merchant_id, brand: Brand::Jcb, amount, card, installments },
    )
}
fn arb_kind() -> impl Strategy<Value = PaymentCommandKind> {
    use PaymentCommandKind as K;
    prop_oneof![
        2 => arb_fields().prop_map(K::Authorize),
        2 => arb_fields().prop_map(K::Sale),
        1 => (arb_fields(), prop::collection::vec("ng-[0-9]{2}|G[0-9]{2}", 0..3)).prop_map(|(fields, codes)| K::Decline { fields, codes }),
        3 => (arb_opt_merchant(), arb_opt_amount()).prop_map(|(merchant_id, amount)| K::Capture { merchant_id, amount }),
        3 => (arb_opt_merchant(), prop::option::weighted(0.85, arb_card())).prop_map(|(merchant_id, card)| K::Void { merchant_id, card }),
        3 => (arb_opt_merchant(), arb_opt_amount()).prop_map(|(merchant_id, amount)| K::Chargeback { merchant_id, amount }),
        2 => arb_opt_merchant().prop_map(|merchant_id| K::ChargebackReversal { merchant_id }),
    ]
}
/// Seconds to move the clock: mostly forward, sometimes not at all, sometimes back,
/// sometimes across the 60-day window.
fn arb_step() -> impl Strategy<Value = i64> {
    let window = AUTH_VOID_WINDOW_HOURS * 3600;
    prop_oneof![
        2 => Just(0i64),
        6 => 1i64..=86_400,
        1 => -86_400i64..0,
        1 => (window - 2)..=(window + 2),
        1 => 0i64..=(window * 2),
    ]
}

fn registered(m: &MerchantId) -> bool {
    *m == mid(MERCHANT) || *m == mid(OTHER_MERCHANT)
}

fn rank(s: PaymentStatus) -> u8 {
    match s {
        PaymentStatus::New => 0,
        PaymentStatus::Declined | PaymentStatus::Authorized => 1,
        PaymentStatus::Captured => 2,
        PaymentStatus::Voided | PaymentStatus::Cancelled => 3,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_sequences_keep_the_invariants(ops in prop::collection::vec((arb_step(), arb_kind()), 1..24)) {
        let mut state = Payment::default();
        let mut model = oracle::Model::new();
        let mut history: Vec<PaymentEvent> = Vec::new();
        let mut at = t0();
        for (i, (step, kind)) in ops.into_iter().enumerate() {
            at += Duration::seconds(step);
            let c = PaymentCommand { event_id: eid(&format!("e{i}")), txn_id: txn(), at, kind };
            let ctx = PaymentContext {
                merchant_registered: match &c.kind {
                    PaymentCommandKind::Authorize(f) | PaymentCommandKind::Sale(f) | PaymentCommandKind::Decline { fields: f, .. } => registered(&f.merchant_id),
                    _ => true,
                },
            };
            let before = state.clone();
            let decided = state.decide(&c, ctx);
            // decide takes &self: deciding again gives the same answer, the state is untouched.
            prop_assert_eq!(&state.decide(&c, ctx), &decided);
            prop_assert_eq!(&state, &before);
            // The adapter agrees with decide.
            let adapted = TestFramework::<Payment>::with(services()).given(history.clone()).when(c.clone()).inspect_result();
            prop_assert_eq!(&adapted, &decided);
            // The oracle agrees on the code or the event kinds.
            let expected = model.step(&c, ctx.merchant_registered);
            match &decided {
                Ok(events) => {
                    let names: Vec<&str> = events.iter().map(|e| e.name()).collect();
                    prop_assert_eq!(expected, Ok(names), "command {:?} on {:?}", c, before);
                    for e in events {
                        prop_assert_eq!(e.at(), &c.at);
                        prop_assert_eq!(e.event_id(), &c.event_id);
                        if let Some(m) = &before.merchant_id {
                            prop_assert_eq!(e.merchant_id(), m);
                        }
                        state.apply(e);
                        history.push(e.clone());
                    }
                    // Invariants of the new state.
                    if let Some(open) = state.open_chargeback {
                        prop_assert!(open.is_positive() && open <= state.amount, "open {:?} > amount {:?}", open, state.amount);
                        prop_assert_eq!(state.status, PaymentStatus::Captured);
                    }
                    prop_assert!(rank(state.status) >= rank(before.status), "{:?} -> {:?}", before.status, state.status);
                    if matches!(before.status, PaymentStatus::Voided | PaymentStatus::Cancelled | PaymentStatus::Declined) {
                        prop_assert_eq!(state.status, before.status, "a final status never changes");
                    }
                    prop_assert_eq!(state.last_at, Some(c.at));
                    if let Some(last) = before.last_at {
                        prop_assert!(c.at >= last);
                    }
                    // Amount, card and merchant never change once set.
                    if before.status != PaymentStatus::New {
                        prop_assert_eq!(state.amount, before.amount);
                        prop_assert_eq!(&state.card, &before.card);
                        prop_assert_eq!(&state.merchant_id, &before.merchant_id);
                    }
                    // A reversal gives back exactly what was open.
                    if let [PaymentEvent::ChargebackReversed { amount, .. }] = &events[..] {
                        prop_assert_eq!(Some(*amount), before.open_chargeback);
                    }
                }
                Err(e) => {
                    prop_assert_eq!(expected, Err(e.code()), "command {:?} on {:?}: {:?}", c, before, e);
                }
            }
            // The state is always the fold of the accepted events.
            prop_assert_eq!(&fold(&history), &state);
        }
    }
}
