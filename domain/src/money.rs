//! Money is integer yen; rates are exact decimals. Every rate × yen product goes
//! through a function that names its rounding.

use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::ids::ParseError;

/// The largest amount one event may carry (SPEC §6): 9,999,999,999 yen.
pub const EVENT_AMOUNT_MAX_YEN: i64 = 9_999_999_999;

/// An amount of Japanese yen (JPY has no minor unit). Arithmetic is checked: an
/// overflow is a bug, and panics rather than wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Yen(i64);

impl Yen {
    pub const ZERO: Yen = Yen(0);

    pub const fn new(yen: i64) -> Yen {
        Yen(yen)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    /// Parses an event amount: a positive integer of yen up to 9,999,999,999.
    pub fn parse_amount(s: &str) -> Result<Yen, ParseError> {
        let t = s.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::new(format!("amount '{s}' is not a positive whole number of yen")));
        }
        let v: i64 = t
            .parse()
            .map_err(|_| ParseError::new(format!("amount '{s}' is out of range (1 to {EVENT_AMOUNT_MAX_YEN})")))?;
        if v == 0 || v > EVENT_AMOUNT_MAX_YEN {
            return Err(ParseError::new(format!("amount '{s}' is out of range (1 to {EVENT_AMOUNT_MAX_YEN})")));
        }
        Ok(Yen(v))
    }

    pub fn checked_add(self, o: Yen) -> Option<Yen> {
        self.0.checked_add(o.0).map(Yen)
    }

    pub fn checked_sub(self, o: Yen) -> Option<Yen> {
        self.0.checked_sub(o.0).map(Yen)
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::from(self.0)
    }

    /// `floor(self × percent / 100)`: the fee of an amount at a percentage rate.
    pub fn percent_floor(self, rate: Rate) -> Yen {
        floor_yen(self.to_decimal() * rate.percent() / Decimal::ONE_HUNDRED)
    }

    /// `floor(self × fraction)`, e.g. a consumption tax at 0.10.
    pub fn times_floor(self, fraction: Decimal) -> Yen {
        floor_yen(self.to_decimal() * fraction)
    }
}

/// Rounds toward negative infinity to whole yen.
pub fn floor_yen(d: Decimal) -> Yen {
    yen_from_integral(d.floor())
}

/// Rounds to the nearest whole yen, halves toward positive infinity (四捨五入 for
/// the non-negative amounts it is used on).
pub fn round_half_up_yen(d: Decimal) -> Yen {
    let r = if d.is_sign_negative() {
        d.round_dp_with_strategy(0, RoundingStrategy::MidpointTowardZero)
    } else {
        d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
    };
    yen_from_integral(r)
}

fn yen_from_integral(d: Decimal) -> Yen {
    let v = i64::try_from(d).expect("yen amount out of i64 range");
    Yen(v)
}

impl Add for Yen {
    type Output = Yen;
    fn add(self, o: Yen) -> Yen {
        self.checked_add(o).expect("yen overflow")
    }
}
impl Sub for Yen {
    type Output = Yen;
    fn sub(self, o: Yen) -> Yen {
        self.checked_sub(o).expect("yen overflow")
    }
}
impl AddAssign for Yen {
    fn add_assign(&mut self, o: Yen) {
        *self = *self + o;
    }
}
impl SubAssign for Yen {
    fn sub_assign(&mut self, o: Yen) {
        *self = *self - o;
    }
}
impl Neg for Yen {
    type Output = Yen;
    fn neg(self) -> Yen {
        Yen(self.0.checked_neg().expect("yen overflow"))
    }
}
impl std::iter::Sum for Yen {
    fn sum<I: Iterator<Item = Yen>>(iter: I) -> Yen {
        iter.fold(Yen::ZERO, |a, b| a + b)
    }
}
impl fmt::Display for Yen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A fee rate in percent (`3.24` means 3.24 %), kept exactly as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rate(Decimal);

/// The rate a contract gets when the CSV leaves it empty.
pub const DEFAULT_RATE_PERCENT: &str = "3.24";
/// A rate is at most this many percent.
pub const RATE_MAX_PERCENT: i64 = 100;
/// A rate has at most this many decimal places.
pub const RATE_SCALE_MAX: u32 = 4;

impl Rate {
    pub fn parse(s: &str) -> Result<Rate, ParseError> {
        let t = s.trim();
        let t = if t.is_empty() { DEFAULT_RATE_PERCENT } else { t };
        let bad = || ParseError::new(format!("rate '{s}' is not a percentage like 3.24 (0 to 100, at most 4 decimals)"));
        if !t.bytes().all(|b| b.is_ascii_digit() || b == b'.') || t.starts_with('.') || t.ends_with('.') {
            return Err(bad());
        }
        let d: Decimal = t.parse().map_err(|_| bad())?;
        if d.is_sign_negative() || d > Decimal::from(RATE_MAX_PERCENT) || d.scale() > RATE_SCALE_MAX {
            return Err(bad());
        }
        Ok(Rate(d))
    }

    pub fn percent(self) -> Decimal {
        self.0
    }

    pub fn default_rate() -> Rate {
        Rate::parse(DEFAULT_RATE_PERCENT).expect("default rate parses")
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_is_floored_per_line() {
        let r = Rate::parse("3.24").unwrap();
        assert_eq!(Yen::new(14_140).percent_floor(r), Yen::new(458)); // 458.136
        assert_eq!(Yen::new(2_000).percent_floor(r), Yen::new(64)); // 64.8
        assert_eq!(Yen::new(9_000).percent_floor(r), Yen::new(291)); // 291.6
    }

    #[test]
    fn half_up_is_not_bankers_rounding() {
        assert_eq!(round_half_up_yen(Decimal::new(25, 1)), Yen::new(3));
        assert_eq!(round_half_up_yen(Decimal::new(35, 1)), Yen::new(4));
        assert_eq!(round_half_up_yen(Decimal::new(249, 2)), Yen::new(2));
    }

    #[test]
    fn amount_parse_bounds() {
        assert_eq!(Yen::parse_amount("1").unwrap(), Yen::new(1));
        assert_eq!(Yen::parse_amount("9999999999").unwrap(), Yen::new(EVENT_AMOUNT_MAX_YEN));
        for bad in ["0", "-5", "1.5", "10000000000", "", "abc", "1e3", "99999999999999999999999"] {
            assert!(Yen::parse_amount(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn rate_parse() {
        assert_eq!(Rate::parse("").unwrap(), Rate::default_rate());
        assert_eq!(Rate::parse("3.24").unwrap().to_string(), "3.24");
        for bad in ["-1", "101", "3.12345", "abc", ".5", "3."] {
            assert!(Rate::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    #[should_panic(expected = "yen overflow")]
    fn overflow_is_a_bug() {
        let _ = Yen::new(i64::MAX) + Yen::new(1);
    }
}
