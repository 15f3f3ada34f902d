//! Settlement cycles: days 1–15 paid at month end (moved back over bank
//! holidays), days 16–end paid on the next month's 15th (moved forward); the
//! notice goes out two calendar days before the payout.

use std::fmt;

use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::calendar::{next_business_day, previous_business_day};

/// The notice date is this many calendar days before the payout date.
pub const NOTICE_LEAD_DAYS: u64 = 2;

/// Half a month: `half` 1 is days 1–15, `half` 2 is day 16 to the month's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cycle {
    year: i32,
    month: u32,
    half: u8,
}

impl Cycle {
    pub fn containing(date: NaiveDate) -> Cycle {
        Cycle {
            year: date.year(),
            month: date.month(),
            half: if date.day() <= 15 { 1 } else { 2 },
        }
    }

    /// The cycle starting on `date`, which must be a 1st or a 16th.
    pub fn starting(date: NaiveDate) -> Option<Cycle> {
        let c = Cycle::containing(date);
        (c.start() == date).then_some(c)
    }

    pub fn start(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, if self.half == 1 { 1 } else { 16 }).expect("valid cycle start")
    }

    pub fn end(self) -> NaiveDate {
        if self.half == 1 {
            NaiveDate::from_ymd_opt(self.year, self.month, 15).expect("valid 15th")
        } else {
            last_day_of_month(self.year, self.month)
        }
    }

    pub fn next(self) -> Cycle {
        if self.half == 1 {
            Cycle { half: 2, ..self }
        } else if self.month == 12 {
            Cycle {
                year: self.year + 1,
                month: 1,
                half: 1,
            }
        } else {
            Cycle {
                month: self.month + 1,
                half: 1,
                ..self
            }
        }
    }

    pub fn prev(self) -> Cycle {
        if self.half == 2 {
            Cycle { half: 1, ..self }
        } else if self.month == 1 {
            Cycle {
                year: self.year - 1,
                month: 12,
                half: 2,
            }
        } else {
            Cycle {
                month: self.month - 1,
                half: 2,
                ..self
            }
        }
    }

    /// The last cycle that has ended on or before `date`.
    pub fn last_ended_by(date: NaiveDate) -> Cycle {
        let c = Cycle::containing(date);
        if c.end() == date {
            c
        } else {
            c.prev()
        }
    }

    pub fn payout_date(self) -> NaiveDate {
        if self.half == 1 {
            previous_business_day(last_day_of_month(self.year, self.month))
        } else {
            let n = self.next();
            next_business_day(NaiveDate::from_ymd_opt(n.year, n.month, 15).expect("valid 15th"))
        }
    }

    pub fn notice_date(self) -> NaiveDate {
        self.payout_date() - Days::new(NOTICE_LEAD_DAYS)
    }
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start(), self.end())
    }
}

pub fn last_day_of_month(year: i32, month: u32) -> NaiveDate {
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1).expect("valid first of month") - Days::new(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn cycles_split_the_month_at_the_15th() {
        let c = Cycle::containing(d("2019-10-15"));
        assert_eq!((c.start(), c.end()), (d("2019-10-01"), d("2019-10-15")));
        let c2 = c.next();
        assert_eq!((c2.start(), c2.end()), (d("2019-10-16"), d("2019-10-31")));
        assert_eq!(c2.next().start(), d("2019-11-01"));
        assert_eq!(Cycle::containing(d("2020-02-29")).end(), d("2020-02-29"));
        assert_eq!(Cycle::containing(d("2019-12-20")).next().start(), d("2020-01-01"));
        assert_eq!(Cycle::containing(d("2020-01-03")).prev().start(), d("2019-12-16"));
        assert_eq!(Cycle::last_ended_by(d("2019-10-15")).start(), d("2019-10-01"));
        assert_eq!(Cycle::last_ended_by(d("2019-10-14")).start(), d("2019-09-16"));
        assert_eq!(Cycle::starting(d("2019-10-16")), Some(c2));
        assert_eq!(Cycle::starting(d("2019-10-17")), None);
    }

    #[test]
    fn spec_payout_examples() {
        for (start, payout) in [
            ("2019-04-01", "2019-04-26"),
            ("2019-08-16", "2019-09-17"),
            ("2019-12-01", "2019-12-30"),
            ("2020-02-01", "2020-02-28"),
            ("2021-07-16", "2021-08-16"),
            ("2022-12-16", "2023-01-16"),
            ("2019-10-01", "2019-10-31"),
        ] {
            let c = Cycle::starting(d(start)).unwrap();
            assert_eq!(c.payout_date(), d(payout), "cycle {start}");
            assert_eq!(c.notice_date(), d(payout) - Days::new(2));
        }
    }
}
