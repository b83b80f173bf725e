//! Byte ranges (RFC 9110, 14): one `Range` of `bytes`, and `If-Range`.
//!
//! Owns parsing a `Range` value against a file length and deciding whether `If-Range` allows
//! it. Never reads the file: [`super`] seeks and sends it.

use super::*;

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RangeRequest {
    /// Ignore it: send the whole file (absent, malformed, or several ranges).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A single range that selects nothing: 416.
    Unsatisfiable,
}

pub(super) fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some((unit, set)) = value.split_once('=') else { return RangeRequest::Whole };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Whole;
    }
    let mut specs = set.split(',').map(|s| s.trim_matches([' ', '\t'])).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else { return RangeRequest::Whole };
    let Some((first, last)) = spec.split_once('-') else { return RangeRequest::Whole };
    if first.is_empty() {
        let Some(suffix) = parse_digits(last) else { return RangeRequest::Whole };
        return match (suffix, len) {
            (0, _) => RangeRequest::Unsatisfiable,
            (_, 0) => RangeRequest::Whole,
            (n, len) => RangeRequest::Part { start: len.saturating_sub(n), end: len - 1 },
        };
    }
    let Some(start) = parse_digits(first) else { return RangeRequest::Whole };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match parse_digits(last) {
            Some(end) if end >= start => end,
            _ => return RangeRequest::Whole,
        }
    };
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part { start, end: end.min(len - 1) }
}

/// Decimal digits, saturating at `u64::MAX` (a huge position is as good as infinite).
pub(super) fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| n.saturating_mul(10).saturating_add(u64::from(b - b'0'))))
}

/// Whether an `If-Range` header (if any) lets the range be honoured.
pub(super) fn if_range_allows(request: &Request, validators: Option<&Validators>) -> bool {
    let mut values = request.header_values("if-range");
    let Some(value) = values.next() else { return true };
    if values.next().is_some() {
        return false;
    }
    let (Some(value), Some(validators)) = (std::str::from_utf8(value).ok(), validators) else { return false };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        matches!(split_entity_tag(value), Some((ListedTag::Tag { weak: false, opaque }, ""))
            if opaque == validators.etag)
    } else {
        date::parse_imf_fixdate(value) == Some(validators.modified_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        let cases = [
            ("bytes=2-5", 10, Part { start: 2, end: 5 }),
            ("bytes=7-", 10, Part { start: 7, end: 9 }),
            ("bytes=-3", 10, Part { start: 7, end: 9 }),
            ("bytes=-30", 10, Part { start: 0, end: 9 }),
            ("bytes=5-100", 10, Part { start: 5, end: 9 }),
            ("BYTES = 1-1", 10, Part { start: 1, end: 1 }),
            ("bytes=0-99999999999999999999999", 10, Part { start: 0, end: 9 }),
            ("bytes=1-2,", 10, Part { start: 1, end: 2 }),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=99999999999999999999999-", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Whole),
            ("bytes=5-2", 10, Whole),
            ("bytes=0-1,4-5", 10, Whole),
            ("bytes=a-b", 10, Whole),
            ("bytes=-", 10, Whole),
            ("bytes=+1-2", 10, Whole),
            ("items=0-1", 10, Whole),
            ("bytes", 10, Whole),
            ("", 10, Whole),
        ];
        for (value, len, want) in cases {
            assert_eq!(parse_range(value, len), want, "{value} of {len}");
        }
    }
}
