//! Japanese bank business days.
//!
//! Payouts are made by bank transfer, and banks in Japan do not transfer on
//! Saturdays, Sundays, national holidays (国民の祝日, 振替休日, 国民の休日 and the
//! one-off days set by special laws) or from 31 December to 3 January. The payout
//! schedule (SPEC §3) moves a payout that falls on such a day, so the engine
//! needs the holidays of every year it may schedule or audit (2000 to at least
//! 2099).
//!
//! Two sources, in this order:
//!
//! 1. **The official list.** `payout/data/jp-holidays-official.csv` is the Cabinet
//!    Office's list (内閣府「国民の祝日」について, `syukujitsu.csv`), converted to
//!    UTF-8 and ISO dates, and embedded at compile time. It covers every year from
//!    its first to its last row, including the one-off days (2019 enthronement,
//!    the 2020/2021 Olympic moves) that no rule can predict. See
//!    `docs/calendar.md` for its provenance and how to extend it.
//! 2. **The law's rules**, for every year the list does not cover (notably the
//!    years from [`first_provisional_year`] on, whose holidays have not been
//!    announced yet; see [`is_provisional`]): the 国民の祝日に関する法律 as in force
//!    today, with the equinoxes from the standard approximation formula.
//!
//! Everything here is a pure function of the date; no I/O, no clock.

use chrono::{Datelike, NaiveDate, Weekday};
use std::sync::OnceLock;

/// The Cabinet Office list, `date,name` (see `docs/calendar.md`).
const OFFICIAL_CSV: &str = include_str!("../data/jp-holidays-official.csv");

/// Name the Cabinet Office gives to both 振替休日 and 国民の休日; told apart on load.
const OFFICIAL_GENERIC_HOLIDAY: &str = "休日";

const SUBSTITUTE_HOLIDAY: &str = "振替休日";
const CITIZENS_HOLIDAY: &str = "国民の休日";

/// The official holidays, sorted by date, and the years they cover.
struct OfficialTable {
    holidays: Vec<(NaiveDate, &'static str)>,
    first_year: i32,
    last_year: i32,
}

fn official() -> &'static OfficialTable {
    static TABLE: OnceLock<OfficialTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The file is compiled in and checked by the unit tests, so a parse failure
        // is a build defect, never a run-time input problem.
        parse_official(OFFICIAL_CSV)
            .expect("embedded payout/data/jp-holidays-official.csv is invalid")
    })
}

/// Parses the official list: a `date,name` header, then one `YYYY-MM-DD,name` row per
/// holiday in strictly increasing date order, covering whole consecutive years.
/// Rows named `休日` are renamed 振替休日 or 国民の休日 by what precedes them.
fn parse_official(csv: &'static str) -> Result<OfficialTable, String> {
    let mut lines = csv.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim_end_matches('\r') == "date,name" => {}
        other => return Err(format!("expected header `date,name`, found {other:?}")),
    }
    let mut holidays: Vec<(NaiveDate, &'static str)> = Vec::new();
    for (index, raw) in lines {
        let line_no = index + 1;
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (date_text, name) = line
            .split_once(',')
            .ok_or_else(|| format!("line {line_no}: expected `date,name`: {line:?}"))?;
        let date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d")
            .map_err(|e| format!("line {line_no}: bad date {date_text:?}: {e}"))?;
        if name.is_empty() || name.contains(',') {
            return Err(format!("line {line_no}: bad name {name:?}"));
        }
        if let Some(&(previous, _)) = holidays.last() {
            if date <= previous {
                return Err(format!("line {line_no}: {date} is not after {previous}"));
            }
        }
        holidays.push((date, name));
    }
    let (Some(&(first, _)), Some(&(last, _))) = (holidays.first(), holidays.last()) else {
        return Err("no holidays".to_string());
    };
    let (first_year, last_year) = (first.year(), last.year());
    // Whole years only: every year has its 元日, and the last holiday of every year
    // is 勤労感謝の日 (23 November), so a truncated file is caught.
    for year in first_year..=last_year {
        for (month, day) in [(1, 1), (11, 23)] {
            let date = NaiveDate::from_ymd_opt(year, month, day)
                .ok_or_else(|| format!("year {year} out of range"))?;
            if holidays.binary_search_by_key(&date, |&(d, _)| d).is_err() {
                return Err(format!("year {year} is incomplete: {date} missing"));
            }
        }
    }
    // Tell the Cabinet Office's generic 休日 apart. A 振替休日 follows a run of
    // holidays that starts on a Sunday; a 国民の休日 is sandwiched between two
    // holidays that do not reach back to a Sunday holiday.
    for i in 0..holidays.len() {
        if holidays[i].1 != OFFICIAL_GENERIC_HOLIDAY {
            continue;
        }
        let mut j = i;
        let mut substitute = false;
        while j > 0 && holidays[j - 1].0.succ_opt() == Some(holidays[j].0) {
            j -= 1;
            if holidays[j].0.weekday() == Weekday::Sun {
                substitute = true;
                break;
            }
        }
        holidays[i].1 = if substitute {
            SUBSTITUTE_HOLIDAY
        } else {
            CITIZENS_HOLIDAY
        };
    }
    Ok(OfficialTable {
        holidays,
        first_year,
        last_year,
    })
}

/// True on a day banks do not transfer: Saturday, Sunday, a national holiday
/// (国民の祝日, 振替休日, 国民の休日, one-off days), 31 December and 1–3 January.
#[must_use]
pub fn is_bank_holiday(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
        || matches!((date.month(), date.day()), (12, 31) | (1, 1..=3))
        || national_holiday(date).is_some()
}

/// The Japanese name of the national holiday on `date` (e.g. `元日`, `振替休日`,
/// `国民の休日`, `天皇の即位の日`), or `None` on an ordinary day.
///
/// Years covered by the official list are answered from it (names as the Cabinet
/// Office writes them, with its generic `休日` told apart into `振替休日` and
/// `国民の休日`); other years are computed from today's law (see the module doc).
#[must_use]
pub fn national_holiday(date: NaiveDate) -> Option<&'static str> {
    let table = official();
    if (table.first_year..=table.last_year).contains(&date.year()) {
        let index = table
            .holidays
            .binary_search_by_key(&date, |&(d, _)| d)
            .ok()?;
        return Some(table.holidays[index].1);
    }
    computed_holidays(date.year())
        .into_iter()
        .find(|&(d, _)| d == date)
        .map(|(_, name)| name)
}

/// True when the date's year lies beyond the checked-in official holiday list, so its
/// holidays were computed from the law's rules and may still change (the Cabinet
/// Office fixes the equinoxes each February for the following year, and the Diet may
/// move or add holidays).
#[must_use]
pub fn is_provisional(date: NaiveDate) -> bool {
    date.year() >= first_provisional_year()
}

/// The first year whose holidays are computed rather than taken from the official list
/// (the year after the list's last year).
#[must_use]
pub fn first_provisional_year() -> i32 {
    official().last_year + 1
}

/// `date` itself if it is a business day, else the nearest earlier business day.
///
/// (At the very start of `chrono`'s date range, where there is no earlier day, the
/// earliest date is returned.)
#[must_use]
pub fn previous_business_day(date: NaiveDate) -> NaiveDate {
    let mut day = date;
    while is_bank_holiday(day) {
        match day.pred_opt() {
            Some(previous) => day = previous,
            None => break,
        }
    }
    day
}

/// `date` itself if it is a business day, else the nearest later business day.
///
/// (At the very end of `chrono`'s date range, where there is no later day, the last
/// date is returned.)
#[must_use]
pub fn next_business_day(date: NaiveDate) -> NaiveDate {
    let mut day = date;
    while is_bank_holiday(day) {
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    day
}

/// The holidays of `year` by the 国民の祝日に関する法律 as in force today (since the
/// 2018 amendment effective 2020, without the one-off Olympic moves), sorted by date.
fn computed_holidays(year: i32) -> Vec<(NaiveDate, &'static str)> {
    let ymd = |month: u32, day: u32| NaiveDate::from_ymd_opt(year, month, day);
    let nth_monday =
        |month: u32, n: u8| NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, n);
    let candidates = [
        (ymd(1, 1), "元日"),
        (nth_monday(1, 2), "成人の日"),
        (ymd(2, 11), "建国記念の日"),
        (ymd(2, 23), "天皇誕生日"),
        (vernal_equinox_day(year).and_then(|d| ymd(3, d)), "春分の日"),
        (ymd(4, 29), "昭和の日"),
        (ymd(5, 3), "憲法記念日"),
        (ymd(5, 4), "みどりの日"),
        (ymd(5, 5), "こどもの日"),
        (nth_monday(7, 3), "海の日"),
        (ymd(8, 11), "山の日"),
        (nth_monday(9, 3), "敬老の日"),
        (
            autumnal_equinox_day(year).and_then(|d| ymd(9, d)),
            "秋分の日",
        ),
        (nth_monday(10, 2), "スポーツの日"),
        (ymd(11, 3), "文化の日"),
        (ymd(11, 23), "勤労感謝の日"),
    ];
    let mut holidays: Vec<(NaiveDate, &'static str)> = candidates
        .into_iter()
        .filter_map(|(date, name)| date.map(|d| (d, name)))
        .collect();
    holidays.sort_by_key(|&(d, _)| d);
    let festivals: Vec<NaiveDate> = holidays.iter().map(|&(d, _)| d).collect();
    let is_festival = |d: NaiveDate| festivals.binary_search(&d).is_ok();

    // 第3条第2項 振替休日: a 国民の祝日 on a Sunday makes the nearest following day
    // that is not a 国民の祝日 a holiday.
    let mut extra: Vec<(NaiveDate, &'static str)> = Vec::new();
    for &festival in &festivals {
        if festival.weekday() != Weekday::Sun {
            continue;
        }
        let mut day = festival.succ_opt();
        while let Some(d) = day.filter(|&d| is_festival(d)) {
            day = d.succ_opt();
        }
        if let Some(d) = day {
            extra.push((d, SUBSTITUTE_HOLIDAY));
        }
    }
    // 第3条第3項 国民の休日: a day (not itself a 国民の祝日) whose day before and day
    // after are both 国民の祝日.
    for window in festivals.windows(2) {
        let (before, after) = (window[0], window[1]);
        if let Some(between) = before.succ_opt() {
            if between.succ_opt() == Some(after) && !extra.iter().any(|&(d, _)| d == between) {
                extra.push((between, CITIZENS_HOLIDAY));
            }
        }
    }
    holidays.extend(extra);
    holidays.sort_by_key(|&(d, _)| d);
    holidays
}

/// Micro-days: the equinox formula's constants are given to 6 decimals, so the
/// arithmetic is done exactly in integers scaled by 10^6.
const MICRO: i64 = 1_000_000;
/// Mean length of the tropical year beyond 365 days, in micro-days (0.242194).
const YEAR_DRIFT_MICRO: i64 = 242_194;

/// Day of March of 春分の日, by the standard approximation
/// `floor(C + 0.242194 × (Y − 1980) − floor((Y − L) / 4))`; `None` outside 1900–2150,
/// where the approximation is not defined.
fn vernal_equinox_day(year: i32) -> Option<u32> {
    equinox_day(year, [20_835_700, 20_843_100, 21_851_000])
}

/// Day of September of 秋分の日, by the same approximation with the autumn constants.
fn autumnal_equinox_day(year: i32) -> Option<u32> {
    equinox_day(year, [23_258_800, 23_248_800, 24_248_800])
}

/// `constants` are C in micro-days for 1900–1979, 1980–2099 and 2100–2150.
fn equinox_day(year: i32, constants: [i64; 3]) -> Option<u32> {
    let y = i64::from(year);
    let (constant, leap_days) = match year {
        // For 1900–1979 the formula counts leap years from 1983 and `int()` truncates
        // toward zero (checked against the official list's 1955–1979 equinoxes).
        1900..=1979 => (constants[0], (y - 1983) / 4),
        1980..=2099 => (constants[1], (y - 1980).div_euclid(4)),
        2100..=2150 => (constants[2], (y - 1980).div_euclid(4)),
        _ => return None,
    };
    let micro_days = constant + YEAR_DRIFT_MICRO * (y - 1980) - leap_days * MICRO;
    u32::try_from(micro_days.div_euclid(MICRO)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    fn days(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
        from.iter_days().take_while(move |&x| x <= to)
    }

    #[test]
    fn embedded_table_parses_and_covers_1955_to_2027() {
        let table = parse_official(OFFICIAL_CSV).expect("embedded table parses");
        assert_eq!(table.first_year, 1955);
        assert_eq!(table.last_year, 2027);
        assert_eq!(first_provisional_year(), 2028);
        assert!(table.holidays.windows(2).all(|w| w[0].0 < w[1].0));
        // No generic 休日 is left after the split into 振替休日 / 国民の休日.
        assert!(table
            .holidays
            .iter()
            .all(|&(_, n)| n != OFFICIAL_GENERIC_HOLIDAY));
        // Every 国民の休日 is sandwiched between two holidays; every 振替休日 follows one.
        let named = |date: Option<NaiveDate>| date.and_then(national_holiday);
        for &(date, name) in &table.holidays {
            if name == CITIZENS_HOLIDAY {
                assert!(
                    named(date.pred_opt()).is_some() && named(date.succ_opt()).is_some(),
                    "{date}"
                );
            }
            if name == SUBSTITUTE_HOLIDAY {
                assert!(
                    named(date.pred_opt()).is_some() && date.weekday() != Weekday::Sun,
                    "{date}"
                );
            }
        }
        assert!(!is_provisional(d(2027, 12, 31)));
        assert!(is_provisional(d(2028, 1, 1)));
        assert!(is_provisional(d(2099, 6, 1)));
    }

    #[test]
    fn parser_rejects_bad_tables() {
        assert!(parse_official("").is_err());
        assert!(parse_official("day,name\n2020-01-01,元日\n").is_err());
        assert!(parse_official("date,name\n").is_err());
        assert!(parse_official("date,name\n2020-01-01,元日\n2020-11-23,勤労感謝の日\n").is_ok());
        // Out of order.
        assert!(parse_official("date,name\n2020-11-23,勤労感謝の日\n2020-01-01,元日\n").is_err());
        // Duplicate.
        assert!(parse_official(
            "date,name\n2020-01-01,元日\n2020-01-01,元日\n2020-11-23,勤労感謝の日\n"
        )
        .is_err());
        // Bad date, missing name.
        assert!(parse_official("date,name\n2020-02-30,x\n").is_err());
        assert!(parse_official("date,name\n2020-01-01\n").is_err());
        // A truncated year, and a gap year.
        assert!(parse_official("date,name\n2020-01-01,元日\n2020-05-05,こどもの日\n").is_err());
        assert!(parse_official(
            "date,name\n2020-01-01,元日\n2020-11-23,勤労感謝の日\n2022-01-01,元日\n2022-11-23,勤労感謝の日\n"
        )
        .is_err());
    }

    #[test]
    fn spec_payout_examples() {
        // Month-end payouts move back, 15th payouts move forward (SPEC §3).
        assert_eq!(previous_business_day(d(2019, 4, 30)), d(2019, 4, 26)); // 10-day Golden Week
        assert_eq!(next_business_day(d(2019, 9, 15)), d(2019, 9, 17)); // Sunday
        assert_eq!(next_business_day(d(2019, 9, 16)), d(2019, 9, 17)); // 敬老の日
        assert_eq!(previous_business_day(d(2019, 12, 31)), d(2019, 12, 30));
        assert_eq!(previous_business_day(d(2020, 2, 29)), d(2020, 2, 28)); // Saturday
        assert_eq!(next_business_day(d(2021, 8, 15)), d(2021, 8, 16)); // Sunday
        assert_eq!(next_business_day(d(2023, 1, 15)), d(2023, 1, 16)); // Sunday
                                                                       // Every day of the 2019 Golden Week is a bank holiday.
        assert!(days(d(2019, 4, 27), d(2019, 5, 6)).all(is_bank_holiday));
        assert!(!is_bank_holiday(d(2019, 4, 26)));
        assert!(!is_bank_holiday(d(2019, 5, 7)));
        // A business day is its own answer in both directions.
        assert_eq!(previous_business_day(d(2019, 9, 17)), d(2019, 9, 17));
        assert_eq!(next_business_day(d(2019, 9, 17)), d(2019, 9, 17));
    }

    #[test]
    fn year_end_and_new_year_bank_holidays() {
        for year in [2000, 2019, 2027, 2028, 2099] {
            for date in [d(year, 12, 31), d(year, 1, 1), d(year, 1, 2), d(year, 1, 3)] {
                assert!(is_bank_holiday(date), "{date}");
            }
        }
        // 2 and 3 January and 31 December are bank holidays but not national ones.
        assert_eq!(national_holiday(d(2019, 1, 2)), None);
        assert_eq!(national_holiday(d(2019, 12, 31)), None);
        assert_eq!(national_holiday(d(2019, 1, 1)), Some("元日"));
        // 2019-01-04 is a Friday and an ordinary day; 12-30 a Monday.
        assert!(!is_bank_holiday(d(2019, 1, 4)));
        assert!(!is_bank_holiday(d(2019, 12, 30)));
        assert_eq!(next_business_day(d(2019, 12, 31)), d(2020, 1, 6));
        assert_eq!(previous_business_day(d(2020, 1, 3)), d(2019, 12, 30));
    }

    #[test]
    fn one_off_days_come_from_the_official_list() {
        assert_eq!(national_holiday(d(2019, 4, 30)), Some(CITIZENS_HOLIDAY));
        assert_eq!(national_holiday(d(2019, 5, 1)), Some("天皇の即位の日"));
        assert_eq!(national_holiday(d(2019, 5, 2)), Some(CITIZENS_HOLIDAY));
        assert_eq!(national_holiday(d(2019, 10, 22)), Some("即位礼正殿の儀"));
        // Olympic moves: 2020.
        assert_eq!(national_holiday(d(2020, 7, 23)), Some("海の日"));
        assert_eq!(national_holiday(d(2020, 7, 24)), Some("スポーツの日"));
        assert_eq!(national_holiday(d(2020, 8, 10)), Some("山の日"));
        assert_eq!(national_holiday(d(2020, 7, 20)), None);
        assert_eq!(national_holiday(d(2020, 8, 11)), None);
        assert_eq!(national_holiday(d(2020, 10, 12)), None);
        // Olympic moves: 2021, with 山の日 on a Sunday giving a 振替休日.
        assert_eq!(national_holiday(d(2021, 7, 22)), Some("海の日"));
        assert_eq!(national_holiday(d(2021, 7, 23)), Some("スポーツの日"));
        assert_eq!(national_holiday(d(2021, 8, 8)), Some("山の日"));
        assert_eq!(national_holiday(d(2021, 8, 9)), Some(SUBSTITUTE_HOLIDAY));
        assert_eq!(national_holiday(d(2021, 7, 19)), None);
        assert_eq!(national_holiday(d(2021, 8, 11)), None);
        assert_eq!(national_holiday(d(2021, 10, 11)), None);
        // The rules alone would get these years wrong: that is why the table wins.
        assert!(computed_holidays(2020).contains(&(d(2020, 7, 20), "海の日")));
    }

    #[test]
    fn substitute_holidays() {
        // Official years.
        assert_eq!(national_holiday(d(2019, 5, 6)), Some(SUBSTITUTE_HOLIDAY)); // こどもの日 on Sunday
        assert_eq!(national_holiday(d(2020, 5, 6)), Some(SUBSTITUTE_HOLIDAY)); // 憲法記念日 on Sunday, over 5/4 and 5/5
        assert_eq!(national_holiday(d(2023, 1, 2)), Some(SUBSTITUTE_HOLIDAY)); // 元日 on Sunday
        assert_eq!(national_holiday(d(2027, 3, 22)), Some(SUBSTITUTE_HOLIDAY)); // 春分の日 on Sunday
        assert_eq!(national_holiday(d(1989, 1, 2)), Some(SUBSTITUTE_HOLIDAY));
        // Computed years.
        assert_eq!(national_holiday(d(2029, 2, 12)), Some(SUBSTITUTE_HOLIDAY)); // 建国記念の日 on Sunday
        assert_eq!(national_holiday(d(2031, 5, 6)), Some(SUBSTITUTE_HOLIDAY)); // 5/4 on Sunday, over 5/5
        assert_eq!(national_holiday(d(2034, 1, 2)), Some(SUBSTITUTE_HOLIDAY)); // 元日 on Sunday
                                                                               // A Sunday holiday never makes a Saturday or the Sunday itself a 振替休日.
        assert_eq!(national_holiday(d(2031, 5, 4)), Some("みどりの日"));
    }

    #[test]
    fn citizens_holidays() {
        // Sandwiched between 敬老の日 and 秋分の日.
        assert_eq!(national_holiday(d(2009, 9, 22)), Some(CITIZENS_HOLIDAY));
        assert_eq!(national_holiday(d(2015, 9, 22)), Some(CITIZENS_HOLIDAY));
        assert_eq!(national_holiday(d(2026, 9, 22)), Some(CITIZENS_HOLIDAY));
        assert_eq!(national_holiday(d(2032, 9, 21)), Some(CITIZENS_HOLIDAY)); // computed
        assert_eq!(national_holiday(d(2037, 9, 22)), Some(CITIZENS_HOLIDAY)); // computed
                                                                              // Pre-2007 5/4 between 憲法記念日 and こどもの日.
        assert_eq!(national_holiday(d(2000, 5, 4)), Some(CITIZENS_HOLIDAY));
        // Not sandwiched: an ordinary day.
        assert_eq!(national_holiday(d(2028, 9, 19)), None);
    }

    #[test]
    fn equinox_formula_matches_every_official_equinox() {
        let table = official();
        let mut checked = 0;
        for &(date, name) in &table.holidays {
            let computed = match name {
                "春分の日" => vernal_equinox_day(date.year()).map(|day| (3, day)),
                "秋分の日" => autumnal_equinox_day(date.year()).map(|day| (9, day)),
                _ => continue,
            };
            assert_eq!(computed, Some((date.month(), date.day())), "{name} {date}");
            checked += 1;
        }
        assert_eq!(checked, 2 * (2027 - 1955 + 1));
    }

    #[test]
    fn equinox_examples() {
        assert_eq!(vernal_equinox_day(2000), Some(20));
        assert_eq!(autumnal_equinox_day(2000), Some(23));
        assert_eq!(vernal_equinox_day(2028), Some(20));
        assert_eq!(autumnal_equinox_day(2028), Some(22));
        assert_eq!(vernal_equinox_day(2092), Some(19));
        assert_eq!(autumnal_equinox_day(2099), Some(23));
        assert_eq!(national_holiday(d(2028, 3, 20)), Some("春分の日"));
        assert_eq!(national_holiday(d(2092, 3, 19)), Some("春分の日"));
        assert_eq!(national_holiday(d(2092, 3, 20)), None);
        assert_eq!(vernal_equinox_day(1899), None);
        assert_eq!(vernal_equinox_day(2151), None);
        assert!(vernal_equinox_day(2150).is_some_and(|day| (19..=22).contains(&day)));
        assert!(autumnal_equinox_day(1900).is_some_and(|day| (22..=24).contains(&day)));
    }

    #[test]
    fn rules_reproduce_the_official_list_since_the_olympics() {
        // 2022 onwards the law as in force today applies without one-off days, so the
        // rules must give exactly the official list, names included.
        for year in 2022..first_provisional_year() {
            let official: Vec<_> = official()
                .holidays
                .iter()
                .copied()
                .filter(|&(d, _)| d.year() == year)
                .collect();
            assert_eq!(computed_holidays(year), official, "year {year}");
        }
    }

    #[test]
    fn business_day_search_is_consistent_2000_to_2099() {
        for date in days(d(2000, 1, 1), d(2099, 12, 31)) {
            let previous = previous_business_day(date);
            let next = next_business_day(date);
            assert!(
                !is_bank_holiday(previous) && !is_bank_holiday(next),
                "{date}"
            );
            assert!(previous <= date && date <= next, "{date}");
            assert!(
                days(previous.succ_opt().expect("in range"), date).all(is_bank_holiday)
                    || previous == date
            );
            assert!(
                next.signed_duration_since(previous).num_days() <= 12,
                "{date}: {previous}..{next}"
            );
            if previous == date {
                assert_eq!(next, date);
            }
        }
    }

    #[test]
    fn never_panics_1990_to_2150_nor_at_the_edges() {
        for date in days(d(1990, 1, 1), d(2150, 12, 31)) {
            let _ = (is_bank_holiday(date), is_provisional(date));
            let _ = (previous_business_day(date), next_business_day(date));
        }
        for date in [
            NaiveDate::MIN,
            NaiveDate::MAX,
            d(1, 1, 1),
            d(1899, 3, 21),
            d(3000, 9, 23),
        ] {
            let _ = (
                national_holiday(date),
                is_bank_holiday(date),
                is_provisional(date),
            );
            let _ = (previous_business_day(date), next_business_day(date));
        }
        // Outside the list, the rules still give the fixed days.
        assert_eq!(national_holiday(d(1950, 11, 3)), Some("文化の日"));
        assert_eq!(national_holiday(d(2150, 2, 11)), Some("建国記念の日"));
    }
}
