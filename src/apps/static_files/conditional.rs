//! Conditional requests (RFC 9110, 13): validators, entity-tag lists and HTTP dates.
//!
//! Owns `ETag`/`Last-Modified` and the precondition order (`If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since`). Never opens a file: it gets the metadata.

use super::*;

/// A file's validators.
pub(super) struct Validators {
    /// The strong entity-tag, quotes included.
    pub(super) etag: String,
    /// Modification time, whole seconds since the Unix epoch.
    pub(super) modified_secs: i64,
}

impl Validators {
    /// `None` when the platform gives no modification time or it is before 1970.
    pub(super) fn of(metadata: &Metadata) -> Option<Validators> {
        let since_epoch = metadata.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        let modified_secs = i64::try_from(since_epoch.as_secs()).ok()?;
        let etag = format!("\"{:x}-{:x}\"", metadata.len(), since_epoch.as_nanos());
        Some(Validators { etag, modified_secs })
    }

    pub(super) fn last_modified(&self) -> Vec<u8> {
        format_http_date(self.modified_secs as u64).to_vec()
    }
}

/// What the preconditions of RFC 9110 section 13.2.2 decide.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Precondition {
    Proceed,
    Failed,
    NotModified,
}

pub(super) fn evaluate_preconditions(request: &Request, validators: Option<&Validators>) -> Precondition {
    let etag = validators.map(|v| v.etag.as_str());
    let modified = validators.map(|v| v.modified_secs);
    if request.headers().iter().any(|h| h.name.eq_ignore_ascii_case("if-match")) {
        if !tag_list_matches(request.header_values("if-match"), etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let (Some(since), Some(modified)) = (single_date(request, "if-unmodified-since"), modified) {
        if modified > since {
            return Precondition::Failed;
        }
    }
    if request.headers().iter().any(|h| h.name.eq_ignore_ascii_case("if-none-match")) {
        if tag_list_matches(request.header_values("if-none-match"), etag, Comparison::Weak) {
            return Precondition::NotModified;
        }
    } else if let (Some(since), Some(modified)) = (single_date(request, "if-modified-since"), modified) {
        if modified <= since {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// The date in header `name` if it is sent exactly once as a valid IMF-fixdate.
pub(super) fn single_date(request: &Request, name: &str) -> Option<i64> {
    let mut values = request.header_values(name);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_http_date(std::str::from_utf8(value).ok()?)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Comparison {
    /// Both tags strong and equal.
    Strong,
    /// Equal opaque tags, weak or not.
    Weak,
}

/// Whether a list of entity-tags (`*` or `"a", W/"b"`, over any number of field lines)
/// matches the current strong `etag` (`None` when there is none, though the file exists).
/// A malformed list matches nothing.
pub(super) fn tag_list_matches<'a>(
    values: impl Iterator<Item = &'a [u8]>,
    etag: Option<&str>,
    comparison: Comparison,
) -> bool {
    let mut matched = false;
    for value in values {
        let Some(value) = std::str::from_utf8(value).ok() else { return false };
        let Some(tags) = parse_tag_list(value) else { return false };
        for tag in tags {
            matched |= match tag {
                ListedTag::Any => true,
                ListedTag::Tag { weak, opaque } => etag == Some(opaque) && (comparison == Comparison::Weak || !weak),
            };
        }
    }
    matched
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum ListedTag<'a> {
    Any,
    /// `opaque` keeps its quotes.
    Tag {
        weak: bool,
        opaque: &'a str,
    },
}

/// Parses `*` or a comma-separated list of entity-tags; `None` if malformed.
pub(super) fn parse_tag_list(value: &str) -> Option<Vec<ListedTag<'_>>> {
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Some(tags);
        }
        if let Some(after) = rest.strip_prefix('*') {
            tags.push(ListedTag::Any);
            rest = after;
        } else {
            let (tag, after) = split_entity_tag(rest)?;
            tags.push(tag);
            rest = after;
        }
        rest = rest.trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return None;
        }
    }
}

/// Splits one entity-tag off the front of `text`.
pub(super) fn split_entity_tag(text: &str) -> Option<(ListedTag<'_>, &str)> {
    let (weak, quoted) = match text.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if !quoted.starts_with('"') {
        return None;
    }
    let close = quoted[1..].find('"')? + 1;
    Some((ListedTag::Tag { weak, opaque: &quoted[..=close] }, &quoted[close + 1..]))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to seconds since the Unix epoch.
/// The obsolete RFC 850 and asctime forms are not accepted (the header is then ignored).
pub(super) fn parse_http_date(text: &str) -> Option<i64> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
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

pub(super) fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1–12).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count years from March, so that a leap day is the last day of its year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists() {
        let etag = Some("\"a-1\"");
        let matches = |v: &str, c| tag_list_matches([v.as_bytes()].into_iter(), etag, c);
        assert!(matches("\"a-1\"", Comparison::Strong));
        assert!(matches("W/\"a-1\"", Comparison::Weak));
        assert!(!matches("W/\"a-1\"", Comparison::Strong));
        assert!(matches("\"x\", \"a-1\"", Comparison::Weak));
        assert!(matches("*", Comparison::Strong));
        assert!(!matches("\"x\"", Comparison::Weak));
        assert!(!matches("\"a-1", Comparison::Weak));
        assert!(!matches("a-1", Comparison::Weak));
        assert!(!matches("\"a-1\"x", Comparison::Weak));
        assert!(matches(" , \"x,y\" ,\"a-1\"", Comparison::Weak));
        assert!(tag_list_matches(["\"x\"".as_bytes(), b"\"a-1\""].into_iter(), etag, Comparison::Weak));
    }
    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        for secs in [0u64, 784_111_777, 951_782_400, 1_709_164_800, 4_102_444_799] {
            let text = format_http_date(secs);
            assert_eq!(parse_http_date(std::str::from_utf8(&text).unwrap()), Some(secs as i64));
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
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }
}
