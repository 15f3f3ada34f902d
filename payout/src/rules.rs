//! The money rules of one statement (SPEC §4): per-line fees, the fee's
//! consumption tax under the contract's policy, the transfer fee and its tax, and
//! the carry-over when nothing would be transferred.

use chrono::NaiveDate;
use domain::money::{floor_yen, round_half_up_yen};
use domain::{BrandGroup, FeeTaxPolicy, Rate, Rates, Yen};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The bank transfer fee charged on a payout (none for Mizuho payees).
pub const TRANSFER_FEE_YEN: i64 = 180;

/// The consumption tax rate in force on a date: 3 % from 1989-04-01, 5 % from
/// 1997-04-01, 8 % from 2014-04-01, 10 % from 2019-10-01.
pub fn consumption_tax_rate(date: NaiveDate) -> Decimal {
    let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
    if date >= ymd(2019, 10, 1) {
        Decimal::new(10, 2)
    } else if date >= ymd(2014, 4, 1) {
        Decimal::new(8, 2)
    } else if date >= ymd(1997, 4, 1) {
        Decimal::new(5, 2)
    } else if date >= ymd(1989, 4, 1) {
        Decimal::new(3, 2)
    } else {
        Decimal::ZERO
    }
}

/// The tax rate the `inclusive-8` rates already contain.
fn included_rate() -> Decimal {
    Decimal::new(8, 2)
}

/// The tax billed on the statement's total fee.
pub fn fee_tax(total_fee: Yen, policy: FeeTaxPolicy, tax_rate: Decimal) -> Yen {
    match policy {
        FeeTaxPolicy::Inclusive8 => {
            if tax_rate > included_rate() {
                // Multiply first, then divide: exact, then rounded half up.
                round_half_up_yen(total_fee.to_decimal() * (tax_rate - included_rate()) / (Decimal::ONE + included_rate()))
            } else {
                Yen::ZERO
            }
        }
        FeeTaxPolicy::Exclusive => floor_yen(total_fee.to_decimal() * tax_rate),
        FeeTaxPolicy::Exempt => Yen::ZERO,
    }
}

/// The part of a sale the merchant was paid: `amount − floor(amount × rate / 100)`.
/// A red slip takes it back.
pub fn net_of_fee(amount: Yen, rate: Rate) -> Yen {
    amount - amount.percent_floor(rate)
}

/// Sales of one brand group counted in a cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSales {
    pub count: u64,
    pub sales: Yen,
}

/// What a statement is computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementInput {
    pub groups: [GroupSales; 3],
    pub rates: Rates,
    pub fee_tax_policy: FeeTaxPolicy,
    pub payee_is_mizuho: bool,
    pub carry_in: Yen,
    pub red_slips: Yen,
    pub chargebacks: Yen,
    pub payout_date: NaiveDate,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub count: u64,
    pub sales: Yen,
    pub fee: Yen,
}

impl Line {
    pub fn net(&self) -> Yen {
        self.sales - self.fee
    }
}

/// The figures of a statement, as recorded and exported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementFigures {
    /// In `BrandGroup::ALL` order; a group without sales is all zero.
    pub lines: [Line; 3],
    pub rates: Rates,
    pub fee_tax: Yen,
    pub carry_in: Yen,
    pub red_slips: Yen,
    pub chargebacks: Yen,
    pub transfer_fee: Yen,
    pub transfer_fee_tax: Yen,
    pub payout: Yen,
    pub carry_out: Yen,
}

impl StatementFigures {
    pub fn line(&self, g: BrandGroup) -> &Line {
        &self.lines[g.index()]
    }

    pub fn total_fee(&self) -> Yen {
        self.lines.iter().map(|l| l.fee).sum()
    }

    pub fn total_net(&self) -> Yen {
        self.lines.iter().map(|l| l.net()).sum()
    }

    /// `Σ net − fee_tax + carry_in + red_slips + chargebacks`.
    pub fn balance(&self) -> Yen {
        self.total_net() - self.fee_tax + self.carry_in + self.red_slips + self.chargebacks
    }

    /// 前未精算金額.
    pub fn previous_unsettled(&self) -> Yen {
        self.carry_in + self.red_slips
    }

    /// Asserts the statement adds up; a failure is a bug, never bad input.
    pub fn assert_adds_up(&self) {
        for l in &self.lines {
            assert!(l.fee >= Yen::ZERO && l.fee <= l.sales, "fee out of range: {l:?}");
        }
        let after_fees = self.balance() - self.transfer_fee - self.transfer_fee_tax;
        if self.payout.is_positive() {
            assert_eq!(self.payout, after_fees, "payout does not add up");
            assert_eq!(self.carry_out, Yen::ZERO, "a paid statement carries nothing");
        } else {
            assert_eq!(self.payout, Yen::ZERO, "negative payout");
            assert_eq!(
                (self.transfer_fee, self.transfer_fee_tax),
                (Yen::ZERO, Yen::ZERO),
                "fee charged without a transfer"
            );
            assert_eq!(self.carry_out, self.balance(), "carry-over does not add up");
        }
    }
}

pub fn compute(input: &StatementInput) -> StatementFigures {
    let mut lines = [Line::default(); 3];
    for g in BrandGroup::ALL {
        let s = input.groups[g.index()];
        lines[g.index()] = Line {
            count: s.count,
            sales: s.sales,
            fee: s.sales.percent_floor(input.rates.for_group(g)),
        };
    }
    let tax_rate = consumption_tax_rate(input.payout_date);
    let total_fee: Yen = lines.iter().map(|l| l.fee).sum();
    let mut f = StatementFigures {
        lines,
        rates: input.rates,
        fee_tax: fee_tax(total_fee, input.fee_tax_policy, tax_rate),
        carry_in: input.carry_in,
        red_slips: input.red_slips,
        chargebacks: input.chargebacks,
        transfer_fee: Yen::ZERO,
        transfer_fee_tax: Yen::ZERO,
        payout: Yen::ZERO,
        carry_out: Yen::ZERO,
    };
    let balance = f.balance();
    let (tf, tft) = if input.payee_is_mizuho {
        (Yen::ZERO, Yen::ZERO)
    } else {
        let tf = Yen::new(TRANSFER_FEE_YEN);
        (tf, tf.times_floor(tax_rate))
    };
    let payout = balance - tf - tft;
    if payout.is_positive() {
        f.transfer_fee = tf;
        f.transfer_fee_tax = tft;
        f.payout = payout;
    } else {
        f.carry_out = balance;
    }
    f.assert_adds_up();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn input(groups: [(u64, i64); 3], payout: &str) -> StatementInput {
        StatementInput {
            groups: groups.map(|(c, s)| GroupSales { count: c, sales: Yen::new(s) }),
            rates: Rates::default(),
            fee_tax_policy: FeeTaxPolicy::Inclusive8,
            payee_is_mizuho: false,
            carry_in: Yen::ZERO,
            red_slips: Yen::ZERO,
            chargebacks: Yen::ZERO,
            payout_date: d(payout),
        }
    }

    #[test]
    fn the_manuals_sample_notice() {
        let mut i = input([(3, 14_140), (2, 2_000), (0, 0)], "2019-10-31");
        i.carry_in = Yen::new(-7_126);
        let f = compute(&i);
        assert_eq!(f.lines[0].fee, Yen::new(458));
        assert_eq!(f.lines[0].net(), Yen::new(13_682));
        assert_eq!(f.lines[1].fee, Yen::new(64));
        assert_eq!(f.fee_tax, Yen::new(10));
        assert_eq!(f.transfer_fee_tax, Yen::new(18));
        assert_eq!(f.payout, Yen::new(8_284));
        assert_eq!(f.carry_out, Yen::ZERO);
    }

    #[test]
    fn inclusive_8_bills_only_the_difference_above_8_percent() {
        let r10 = consumption_tax_rate(d("2019-10-31"));
        assert_eq!(fee_tax(Yen::new(27), FeeTaxPolicy::Inclusive8, r10), Yen::new(1)); // 0.5 → 1
        assert_eq!(fee_tax(Yen::new(81), FeeTaxPolicy::Inclusive8, r10), Yen::new(2)); // 1.5 → 2
        assert_eq!(fee_tax(Yen::new(26), FeeTaxPolicy::Inclusive8, r10), Yen::ZERO);
        assert_eq!(
            fee_tax(Yen::new(1000), FeeTaxPolicy::Inclusive8, consumption_tax_rate(d("2019-09-30"))),
            Yen::ZERO
        );
        assert_eq!(
            fee_tax(Yen::new(1000), FeeTaxPolicy::Inclusive8, consumption_tax_rate(d("2014-03-31"))),
            Yen::ZERO
        );
        assert_eq!(fee_tax(Yen::new(999), FeeTaxPolicy::Exclusive, r10), Yen::new(99));
        assert_eq!(
            fee_tax(Yen::new(999), FeeTaxPolicy::Exclusive, consumption_tax_rate(d("2019-09-30"))),
            Yen::new(79)
        );
        assert_eq!(fee_tax(Yen::new(999), FeeTaxPolicy::Exempt, r10), Yen::ZERO);
    }

    #[test]
    fn tax_rate_changes_on_its_dates() {
        assert_eq!(consumption_tax_rate(d("1997-03-31")), Decimal::new(3, 2));
        assert_eq!(consumption_tax_rate(d("1997-04-01")), Decimal::new(5, 2));
        assert_eq!(consumption_tax_rate(d("2014-04-01")), Decimal::new(8, 2));
        assert_eq!(consumption_tax_rate(d("2019-09-30")), Decimal::new(8, 2));
        assert_eq!(consumption_tax_rate(d("2019-10-01")), Decimal::new(10, 2));
    }

    #[test]
    fn mizuho_pays_no_transfer_fee() {
        let mut i = input([(1, 1_000), (0, 0), (0, 0)], "2019-10-31");
        i.payee_is_mizuho = true;
        let f = compute(&i);
        assert_eq!((f.transfer_fee, f.transfer_fee_tax), (Yen::ZERO, Yen::ZERO));
        assert_eq!(f.payout, Yen::new(1_000 - 32 - 1)); // fee 32, tax round(32/54)=1
    }

    #[test]
    fn a_small_positive_balance_is_carried_without_fee() {
        let f = compute(&input([(1, 200), (0, 0), (0, 0)], "2019-10-31"));
        // net 194 − tax 0 = 194 ≤ 180 + 18: nothing transferred, 194 carried.
        assert_eq!(f.payout, Yen::ZERO);
        assert_eq!((f.transfer_fee, f.transfer_fee_tax), (Yen::ZERO, Yen::ZERO));
        assert_eq!(f.carry_out, Yen::new(194));
    }

    #[test]
    fn red_slip_returns_the_fee() {
        assert_eq!(net_of_fee(Yen::new(9_000), Rate::parse("3.24").unwrap()), Yen::new(8_709));
    }
}
