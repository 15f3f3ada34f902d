//! Instants as recorded (RFC 3339 with an explicit offset) and their Japan-time
//! booking dates. Japan has kept UTC+9 without daylight saving since 1951, so the
//! JST calendar date is the date at a fixed +09:00 offset.

use chrono::{DateTime, FixedOffset, NaiveDate};

use crate::ids::ParseError;

pub type Instant = DateTime<FixedOffset>;

pub fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

/// Parses RFC 3339 and insists on an explicit offset (`Z` or `±hh:mm`).
pub fn parse_instant(s: &str) -> Result<Instant, ParseError> {
    let t = s.trim();
    DateTime::parse_from_rfc3339(t).map_err(|e| {
        let has_offset = t.len() > 10 && (t.ends_with('Z') || t.ends_with('z') || t[10..].contains('+') || t[10..].rfind('-').is_some());
        if !has_offset {
            ParseError::new(format!("timestamp '{s}' has no UTC offset (write e.g. 2019-10-01T10:00:00+09:00)"))
        } else {
            ParseError::new(format!("timestamp '{s}' is not a valid RFC 3339 instant: {e}"))
        }
    })
}

/// The JST calendar date of an instant.
pub fn booking_date(at: &Instant) -> NaiveDate {
    at.with_timezone(&jst()).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_late_evening_is_next_jst_day() {
        let a = parse_instant("2019-10-15T14:59:59Z").unwrap();
        assert_eq!(booking_date(&a), NaiveDate::from_ymd_opt(2019, 10, 15).unwrap());
        let b = parse_instant("2019-10-15T15:00:00Z").unwrap();
        assert_eq!(booking_date(&b), NaiveDate::from_ymd_opt(2019, 10, 16).unwrap());
    }

    #[test]
    fn offset_is_required_and_dates_must_exist() {
        assert!(parse_instant("2019-10-15T10:00:00").unwrap_err().to_string().contains("no UTC offset"));
        assert!(parse_instant("2019-02-30T10:00:00+09:00").is_err());
        assert!(parse_instant("2019-10-15").is_err());
        assert!(parse_instant("2019-10-15T10:00:00+09:00").is_ok());
    }
}
