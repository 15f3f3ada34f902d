//! Given/when/then tests of the Merchant aggregate: registration, imports that
//! change nothing, change the contract, or only change the notice password (which
//! never appears in an event), and the wrong-merchant refusal. Each case runs
//! through cqrs-es 0.5's `TestFramework` and through `Merchant::decide`.

use cqrs_es::test::TestFramework;
use domain::merchant::{ImportOutcome, Merchant, MerchantCommand, MerchantEvent, MerchantRefusal};
use domain::{AccountType, FeeTaxPolicy, MerchantContract, MerchantId, NoticePassword, PayeeBank, Rate, Rates};

const MERCHANT: &str = "270212122";
const OTHER_MERCHANT: &str = "270212999";
/// The notice password of the tests: digits that appear nowhere in the contract.
const PASSWORD: &str = "918273645";

fn contract(id: &str) -> MerchantContract {
    MerchantContract {
        merchant_id: MerchantId::parse(id).unwrap(),
        name: "カフェ・ユーペイ".into(),
        contact: "山田 太郎".into(),
        email: "owner@example.jp".into(),
        bank: PayeeBank {
            bank_code: "0001".into(),
            bank_name: "みずほ銀行".into(),
            branch_code: "001".into(),
            branch_name: "東京営業部".into(),
            account_type: AccountType::Ordinary,
            account_number: "1234567".into(),
            account_holder: "ｶﾌｴ ﾕ-ﾍﾟｲ".into(),
            bank_name_kana: "ﾐｽﾞﾎ".into(),
            branch_name_kana: "ﾄｳｷﾖｳｴｲｷﾞﾖｳﾌﾞ".into(),
        },
        rates: Rates::default(),
        fee_tax: FeeTaxPolicy::Inclusive8,
    }
}

fn import(contract: MerchantContract, password_changed: bool) -> MerchantCommand {
    MerchantCommand::Import { contract, password_changed }
}

fn registered() -> Vec<MerchantEvent> {
    vec![MerchantEvent::MerchantRegistered { contract: contract(MERCHANT) }]
}

fn fold(events: &[MerchantEvent]) -> Merchant {
    let mut m = Merchant::default();
    for e in events {
        m.apply(e);
    }
    m
}

/// Accepted with exactly `expected`, on both paths; returns the new state.
fn accepted(given: Vec<MerchantEvent>, when: MerchantCommand, expected: Vec<MerchantEvent>) -> Merchant {
    TestFramework::<Merchant>::with(()).given(given.clone()).when(when.clone()).then_expect_events(expected.clone());
    let mut state = fold(&given);
    let events = state.decide(&when).expect("accepted");
    assert_eq!(events, expected);
    for e in &events {
        state.apply(e);
    }
    state
}

#[test]
fn register_a_new_merchant() {
    let c = contract(MERCHANT);
    let m = accepted(vec![], import(c.clone(), false), vec![MerchantEvent::MerchantRegistered { contract: c.clone() }]);
    assert_eq!(m.contract, Some(c.clone()));
    assert_eq!(Merchant::outcome(&Merchant::default().decide(&import(c, false)).unwrap()), ImportOutcome::New);
}

#[test]
fn register_with_a_password_is_only_a_registration() {
    // The first password comes with the registration: no separate change event.
    let c = contract(MERCHANT);
    accepted(vec![], import(c.clone(), true), vec![MerchantEvent::MerchantRegistered { contract: c }]);
}

#[test]
fn import_unchanged_records_nothing() {
    let m = accepted(registered(), import(contract(MERCHANT), false), vec![]);
    assert_eq!(m.contract, Some(contract(MERCHANT)));
    assert_eq!(Merchant::outcome(&[]), ImportOutcome::Unchanged);
}

#[test]
fn import_changed_records_the_changed_field_names() {
    let mut c = contract(MERCHANT);
    c.email = "new@example.jp".into();
    let m = accepted(
        registered(),
        import(c.clone(), false),
        vec![MerchantEvent::MerchantContractChanged { contract: c.clone(), changed_fields: vec!["email".into()] }],
    );
    assert_eq!(m.contract, Some(c.clone()));
    let events = fold(&registered()).decide(&import(c.clone(), false)).unwrap();
    assert_eq!(Merchant::outcome(&events), ImportOutcome::Changed);
    // Importing the new contract again changes nothing.
    let mut given = registered();
    given.extend(events);
    accepted(given, import(c, false), vec![]);
}

#[test]
fn import_changed_several_fields_in_table_order() {
    let mut c = contract(MERCHANT);
    c.name = "ユーペイ商店".into();
    c.bank.account_number = "7654321".into();
    c.rates.visa_master = Rate::parse("2.95").unwrap();
    c.fee_tax = FeeTaxPolicy::Exclusive;
    accepted(
        registered(),
        import(c.clone(), false),
        vec![MerchantEvent::MerchantContractChanged {
            contract: c,
            changed_fields: ["name", "account_number", "rate_visa_master", "fee_tax"].map(String::from).to_vec(),
        }],
    );
}

#[test]
fn every_contract_field_is_detected_by_name() {
    type Edit = fn(&mut MerchantContract);
    let edits: [(&str, Edit); 16] = [
        ("name", |c| c.name.push('X')),
        ("contact", |c| c.contact.push('X')),
        ("email", |c| c.email = "x@example.jp".into()),
        ("bank_code", |c| c.bank.bank_code = "0005".into()),
        ("bank_name", |c| c.bank.bank_name = "三菱UFJ銀行".into()),
        ("branch_code", |c| c.bank.branch_code = "002".into()),
        ("branch_name", |c| c.bank.branch_name = "丸の内".into()),
        ("account_type", |c| c.bank.account_type = AccountType::Current),
        ("account_number", |c| c.bank.account_number = "7654321".into()),
        ("account_holder", |c| c.bank.account_holder = "ﾕ-ﾍﾟｲ".into()),
        ("bank_name_kana", |c| c.bank.bank_name_kana = "ﾐﾂﾋﾞｼ".into()),
        ("branch_name_kana", |c| c.bank.branch_name_kana = "ﾏﾙﾉｳﾁ".into()),
        ("rate_visa_master", |c| c.rates.visa_master = Rate::parse("1").unwrap()),
        ("rate_jcb_other", |c| c.rates.jcb_other = Rate::parse("2").unwrap()),
        ("rate_emoney", |c| c.rates.emoney = Rate::parse("3").unwrap()),
        ("fee_tax", |c| c.fee_tax = FeeTaxPolicy::Exempt),
    ];
    for (field, edit) in edits {
        let mut c = contract(MERCHANT);
        edit(&mut c);
        accepted(
            registered(),
            import(c.clone(), false),
            vec![MerchantEvent::MerchantContractChanged { contract: c, changed_fields: vec![field.to_string()] }],
        );
    }
}

#[test]
fn rate_written_differently_but_equal_is_unchanged() {
    // 3.24 and 3.240 are the same rate: no change event.
    let mut c = contract(MERCHANT);
    c.rates.jcb_other = Rate::parse("3.240").unwrap();
    accepted(registered(), import(c, false), vec![]);
}

#[test]
fn password_only_change_records_a_change_without_the_password() {
    let password = NoticePassword::parse(PASSWORD).unwrap();
    let m = accepted(registered(), import(contract(MERCHANT), true), vec![MerchantEvent::NoticePasswordChanged {}]);
    assert_eq!(m.contract, Some(contract(MERCHANT)));
    let events = fold(&registered()).decide(&import(contract(MERCHANT), true)).unwrap();
    assert_eq!(Merchant::outcome(&events), ImportOutcome::Changed);
    for e in &events {
        let json = serde_json::to_string(e).unwrap();
        assert!(!json.contains(password.expose_secret()), "{json}");
        assert!(!json.contains(PASSWORD), "{json}");
        assert!(!format!("{e:?}").contains(PASSWORD));
        assert_eq!(json, r#"{"NoticePasswordChanged":{}}"#);
    }
}

#[test]
fn contract_and_password_change_together() {
    let mut c = contract(MERCHANT);
    c.contact = "佐藤 花子".into();
    let expected = vec![
        MerchantEvent::MerchantContractChanged { contract: c.clone(), changed_fields: vec!["contact".into()] },
        MerchantEvent::NoticePasswordChanged {},
    ];
    accepted(registered(), import(c.clone(), true), expected);
    for e in fold(&registered()).decide(&import(c, true)).unwrap() {
        assert!(!serde_json::to_string(&e).unwrap().contains(PASSWORD));
    }
}

#[test]
fn no_merchant_event_carries_a_password() {
    let mut changed = contract(MERCHANT);
    changed.name = "別名".into();
    let all = [
        MerchantEvent::MerchantRegistered { contract: contract(MERCHANT) },
        MerchantEvent::MerchantContractChanged { contract: changed, changed_fields: vec!["name".into()] },
        MerchantEvent::NoticePasswordChanged {},
    ];
    for e in &all {
        let json = serde_json::to_string(e).unwrap();
        assert!(!json.contains(PASSWORD), "{json}");
        assert!(!json.to_lowercase().contains("password\":"), "no password field: {json}");
    }
}

#[test]
fn import_for_another_merchant_is_refused() {
    let expected = MerchantRefusal::WrongMerchant { expected: MERCHANT.into(), given: OTHER_MERCHANT.into() };
    TestFramework::<Merchant>::with(())
        .given(registered())
        .when(import(contract(OTHER_MERCHANT), true))
        .then_expect_error(expected.clone());
    let state = fold(&registered());
    let before = state.clone();
    let err = state.decide(&import(contract(OTHER_MERCHANT), false)).unwrap_err();
    assert!(matches!(&err, MerchantRefusal::WrongMerchant { expected: e, given: g } if e == MERCHANT && g == OTHER_MERCHANT));
    assert_eq!(err, expected);
    assert_eq!(state, before);
}

#[tokio::test]
async fn async_adapter_register_and_change() {
    let c = contract(MERCHANT);
    TestFramework::<Merchant>::with(())
        .given_no_previous_events()
        .when_async(import(c.clone(), false))
        .await
        .then_expect_events(vec![MerchantEvent::MerchantRegistered { contract: c.clone() }]);
    let mut c2 = c.clone();
    c2.bank.branch_code = "123".into();
    TestFramework::<Merchant>::with(())
        .given(registered())
        .when_async(import(c2.clone(), true))
        .await
        .then_expect_events(vec![
            MerchantEvent::MerchantContractChanged { contract: c2, changed_fields: vec!["branch_code".into()] },
            MerchantEvent::NoticePasswordChanged {},
        ]);
}
