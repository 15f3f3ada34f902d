//! Checks `payout::calendar` against an independent implementation of the Japanese
//! holiday law: the Python `holidays` package, pinned in `.ci/requirements.txt`
//! (`holidays.country_holidays("JP", ...)`). It is run through `python3` (or the
//! interpreter named by `$PYTHON`). A missing interpreter or package is a failure, not
//! a skip: CI installs it with `pip install -r .ci/requirements.txt`.
//!
//! - Official years (the checked-in Cabinet Office list): the same dates, and the same
//!   振替休日 / 国民の休日 classification. The official list wins: a real
//!   disagreement goes into `KNOWN_DISCREPANCIES` below with a comment, and into
//!   `docs/calendar.md`.
//! - Computed years (`first_provisional_year()..=2099`): the same, so our rules and
//!   equinox formula agree with a second implementation of the same law.
//! - Bank holidays on weekdays 2000..=2099 against the package's `bank` category
//!   (31 December, 2 and 3 January) plus its public holidays.

use chrono::{Datelike, NaiveDate, Weekday};
use payout::calendar::{first_provisional_year, is_bank_holiday, national_holiday};
use std::collections::BTreeMap;
use std::process::Command;

/// The first year of the checked-in official list (the Cabinet Office's list starts in
/// 1955; SPEC §3 needs 2000 on, the earlier years are checked too since they are there).
const FIRST_OFFICIAL_YEAR: i32 = 1955;
/// The last year SPEC §3 requires, and the last year the `holidays` package covers.
const LAST_CHECKED_YEAR: i32 = 2099;

const INSTALL_HINT: &str = "run `pip install -r .ci/requirements.txt` (from the repository root)";

/// Dates on which the official list and the Python package are known to disagree, with
/// the reason; the official list is right on each. Format: ("YYYY-MM-DD", "why").
/// None known with the pinned `holidays` version (see docs/calendar.md).
const KNOWN_DISCREPANCIES: &[(&str, &str)] = &[];

/// Names both sides must agree on where either side uses them: the generic days the
/// Cabinet Office only calls `休日`, which `calendar` classifies itself.
const CLASSIFIED_NAMES: [&str; 2] = ["振替休日", "国民の休日"];

const PYTHON_SCRIPT: &str = r#"
import sys
try:
    import holidays
except ImportError as error:
    sys.stderr.write("cannot import the Python package `holidays`: %s\n" % error)
    sys.exit(3)
first, last, categories = int(sys.argv[1]), int(sys.argv[2]), tuple(sys.argv[3].split(","))
print("version\t" + holidays.__version__)
days = holidays.country_holidays("JP", years=range(first, last + 1), categories=categories, language="ja")
for day, name in sorted(days.items()):
    print(day.isoformat() + "\t" + name)
"#;

/// The holidays of `first..=last` in the given `holidays` categories (`public`, `bank`),
/// by date, with their Japanese names.
fn python_holidays(first: i32, last: i32, categories: &str) -> BTreeMap<NaiveDate, String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let output = Command::new(&python)
        .arg("-c")
        .arg(PYTHON_SCRIPT)
        .arg(first.to_string())
        .arg(last.to_string())
        .arg(categories)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{python}` ({e}): it is needed for this test; {INSTALL_HINT}")
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{python}` with the `holidays` package failed ({}): {stderr}\n{INSTALL_HINT}",
        output.status
    );
    let stdout = String::from_utf8(output.stdout).expect("python output is UTF-8");
    let mut lines = stdout.lines();
    let version = lines
        .next()
        .and_then(|l| l.strip_prefix("version\t"))
        .unwrap_or_else(|| panic!("unexpected python output: {stdout:?}"));
    eprintln!(
        "independent source: Python holidays {version} ({python}), {first}..={last}, {categories}"
    );
    let days: BTreeMap<NaiveDate, String> = lines
        .map(|line| {
            let (date, name) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("unexpected python line {line:?}"));
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .unwrap_or_else(|e| panic!("unexpected python date {date:?}: {e}"));
            (date, name.to_string())
        })
        .collect();
    // Guard against a silently empty or truncated answer: every year has at least 9
    // national holidays (9 in 1955, 16 today), and both ends of the range are there.
    let years = usize::try_from(last - first + 1).expect("first <= last");
    assert!(
        days.len() >= 9 * years,
        "python gave only {} holidays for {first}..={last}",
        days.len()
    );
    assert!(days.keys().next().is_some_and(|d| d.year() == first));
    assert!(days.keys().next_back().is_some_and(|d| d.year() == last));
    days
}

/// Our national holidays in `first..=last`, by date.
fn our_holidays(first: i32, last: i32) -> BTreeMap<NaiveDate, String> {
    let start = NaiveDate::from_ymd_opt(first, 1, 1).expect("valid year");
    let end = NaiveDate::from_ymd_opt(last, 12, 31).expect("valid year");
    start
        .iter_days()
        .take_while(|&d| d <= end)
        .filter_map(|d| national_holiday(d).map(|name| (d, name.to_string())))
        .collect()
}

/// Compares the two calendars: same dates, and the same name wherever either side
/// says 振替休日 or 国民の休日. Dates in `exceptions` are left out (and must really
/// differ, so a stale exception is noticed). Panics with every difference listed.
fn assert_same(
    ours: &BTreeMap<NaiveDate, String>,
    theirs: &BTreeMap<NaiveDate, String>,
    exceptions: &[(&str, &str)],
) {
    let excepted: Vec<NaiveDate> = exceptions
        .iter()
        .map(|(date, why)| {
            NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .unwrap_or_else(|e| panic!("bad exception date {date:?} ({why}): {e}"))
        })
        .collect();
    let mut differences = Vec::new();
    for (date, name) in ours {
        match theirs.get(date) {
            None => differences.push(format!("{date} ours: {name}, python: (none)")),
            Some(other)
                if (CLASSIFIED_NAMES.contains(&name.as_str())
                    || CLASSIFIED_NAMES.contains(&other.as_str()))
                    && name != other =>
            {
                differences.push(format!("{date} ours: {name}, python: {other}"));
            }
            Some(_) => {}
        }
    }
    for (date, name) in theirs {
        if !ours.contains_key(date) {
            differences.push(format!("{date} ours: (none), python: {name}"));
        }
    }
    let (excused, unexpected): (Vec<String>, Vec<String>) =
        differences.into_iter().partition(|line| {
            excepted
                .iter()
                .any(|date| line.starts_with(&date.to_string()))
        });
    for date in &excepted {
        assert!(
            excused.iter().any(|line| line.starts_with(&date.to_string())),
            "known discrepancy {date} no longer differs: remove it from KNOWN_DISCREPANCIES and docs/calendar.md"
        );
    }
    assert!(
        unexpected.is_empty(),
        "{} difference(s) between payout::calendar and Python holidays:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

#[test]
fn calendar_official_years_match_python_holidays() {
    let last = first_provisional_year() - 1;
    assert!(
        last >= 2027,
        "the official list must reach at least 2027, ends {last}"
    );
    let ours = our_holidays(FIRST_OFFICIAL_YEAR, last);
    let theirs = python_holidays(FIRST_OFFICIAL_YEAR, last, "public");
    assert_same(&ours, &theirs, KNOWN_DISCREPANCIES);
}

#[test]
fn calendar_computed_years_match_python_holidays() {
    let first = first_provisional_year();
    let ours = our_holidays(first, LAST_CHECKED_YEAR);
    let theirs = python_holidays(first, LAST_CHECKED_YEAR, "public");
    assert_same(&ours, &theirs, &[]);
}

#[test]
fn calendar_weekday_bank_holidays_match_python() {
    let weekday = |d: &NaiveDate| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
    let start = NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid");
    let end = NaiveDate::from_ymd_opt(LAST_CHECKED_YEAR, 12, 31).expect("valid");
    let ours: Vec<NaiveDate> = start
        .iter_days()
        .take_while(|&d| d <= end)
        .filter(|d| weekday(d) && is_bank_holiday(*d))
        .collect();
    let theirs: Vec<NaiveDate> = python_holidays(2000, LAST_CHECKED_YEAR, "public,bank")
        .into_keys()
        .filter(weekday)
        .collect();
    let only_ours: Vec<_> = ours.iter().filter(|d| !theirs.contains(d)).collect();
    let only_theirs: Vec<_> = theirs.iter().filter(|d| !ours.contains(d)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "weekday bank holidays differ: only ours {only_ours:?}, only python {only_theirs:?}"
    );
}
