//! HTTP dates and the calendar: the `Date` header (formatted at most once a second per
//! thread), `Last-Modified`, the strict IMF-fixdate parser of conditional requests, and the
//! day-to-date conversion the access log shares.
//!
//! Owns every date in the crate. Formatting is `httpdate`'s; parsing stays here because it must
//! be stricter than `httpdate` (IMF-fixdate only, never the obsolete RFC 850 or asctime forms)
//! while keeping what this server has always accepted (any year from 0000, second 60, the
//! weekday not cross-checked). Never reads a clock except in [`write_now`].

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
const HTTP_DATE_LEN: usize = 29;

/// The English month abbreviations of HTTP dates and Apache log times, January first.
pub(crate) const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// The first second `httpdate` cannot format (year 10000).
const YEAR_10000: u64 = 253_402_300_800;

struct Cached {
    second: u64,
    text: [u8; HTTP_DATE_LEN],
}

thread_local! {
    static CACHE: RefCell<Cached> = const { RefCell::new(Cached { second: u64::MAX, text: [b' '; HTTP_DATE_LEN] }) };
}

/// Appends the current time as an IMF-fixdate to `out`. The text is made once a second per
/// thread; every other call copies 29 bytes.
pub(crate) fn write_now(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.second != second {
            if let Some(text) = format_http_date(second as i64) {
                cached.text.copy_from_slice(text.as_bytes());
            }
            cached.second = second;
        }
        out.extend_from_slice(&cached.text);
    });
}

/// Formats seconds since the Unix epoch as an IMF-fixdate (RFC 9110, section 5.6.7); `None`
/// outside 1970–9999, which an IMF-fixdate of `httpdate` cannot hold.
pub(crate) fn format_http_date(unix_seconds: i64) -> Option<String> {
    let seconds = u64::try_from(unix_seconds).ok().filter(|&s| s < YEAR_10000)?;
    let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(seconds));
    (text.len() == HTTP_DATE_LEN).then_some(text)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to seconds since the Unix epoch.
/// The obsolete RFC 850 and asctime forms are not accepted (the header is then ignored).
pub(crate) fn parse_imf_fixdate(text: &str) -> Option<i64> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let b = text.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || b[7] != b' ' || b[11] != b' ' || b[16] != b' ' {
        return None;
    }
    if b[19] != b':' || b[22] != b':' || &b[25..] != b" GMT" || !DAYS.contains(&text.get(..3)?) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok())?
    };
    let day = number(5..7)?;
    let month = MONTHS.iter().position(|m| text.get(8..11) == Some(*m))? as i64 + 1;
    let year = number(12..16)?;
    let (hour, minute, second) = (number(17..19)?, number(20..22)?, number(23..25)?);
    if day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1–12).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count years from March, so that a leap day is the last day of its year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Converts a count of days since 1970-01-01 to a (year, month 1–12, day 1–31).
///
/// Counts in 400-year eras (146 097 days each) of years that start on 1 March, so that the
/// leap day is the last day of its year and month lengths repeat in a five-month pattern.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Days from 0000-03-01 to 1970-01-01.
    const EPOCH_SHIFT: i64 = 719_468;
    const DAYS_PER_ERA: i64 = 146_097;
    // Saturating, so no input overflows; a `SystemTime` is at most about 2^48 days away.
    let shifted = days.saturating_add(EPOCH_SHIFT);
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA); // 0..=146_096
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // from 1 March
    let month_from_march = (5 * day_of_year + 2) / 153; // 0 = March .. 11 = February
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let cases: [(u64, &str); 4] = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
        ];
        for (secs, text) in cases {
            assert_eq!(format_http_date(secs as i64).unwrap(), text);
        }
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        for secs in [0u64, 784_111_777, 951_782_400, 1_709_164_800, 4_102_444_799] {
            let text = format_http_date(secs as i64).unwrap();
            assert_eq!(parse_imf_fixdate(&text), Some(secs as i64));
        }
        for bad in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "",
        ] {
            assert_eq!(parse_imf_fixdate(bad), None, "{bad}");
        }
    }
}
