//! `upay schedule`: the payout calendar, computed from the bank calendar alone.

use chrono::NaiveDate;
use payout::calendar::{first_provisional_year, is_provisional};
use payout::cycle::Cycle;

use crate::app::{refused, AppError};
use crate::output::emit;

/// The longest calendar printed at once, in months.
const SCHEDULE_MONTHS_MAX: i32 = 12 * 200;

pub fn run(from: (i32, u32), to: (i32, u32)) -> Result<u8, AppError> {
    let months = (to.0 - from.0) * 12 + to.1 as i32 - from.1 as i32;
    if months < 0 {
        return Err(refused(format!("--to {}-{:02} is before --from {}-{:02}", to.0, to.1, from.0, from.1)));
    }
    if months >= SCHEDULE_MONTHS_MAX {
        return Err(refused(format!("at most {SCHEDULE_MONTHS_MAX} months at once")));
    }
    let start = NaiveDate::from_ymd_opt(from.0, from.1, 1).ok_or_else(|| refused("--from is not a month"))?;
    let mut c = Cycle::containing(start);
    let mut out = String::from("period_start,period_end,payout_date,notice_date\n");
    let mut provisional = false;
    loop {
        let s = c.start();
        if (
            s.format("%Y").to_string().parse::<i32>().unwrap_or(0),
            s.format("%m").to_string().parse::<u32>().unwrap_or(0),
        ) > to
        {
            break;
        }
        let p = c.payout_date();
        provisional |= is_provisional(p) || is_provisional(c.end());
        out.push_str(&format!("{},{},{},{}\n", s, c.end(), p, c.notice_date()));
        c = c.next();
    }
    if provisional {
        eprintln!(
            "note: holidays from {} on are computed from the law's rules (the official list ends with {}); those payout dates are provisional",
            first_provisional_year(),
            first_provisional_year() - 1
        );
    }
    emit(None, out.as_bytes())?;
    Ok(0)
}
