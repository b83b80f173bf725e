//! The shared HTTP grammar: tokens, whitespace, field values, decimal numbers, authorities.
//!
//! Owns the byte classes and small validators every other part reads HTTP with (the head
//! parser, the chunked decoder's trailers, the encoder's header checks, the forwarded headers,
//! the WSGI front end). Never allocates or parses a whole message: one rule per function.

/// A byte class as a table: ASCII letters and digits, and the bytes of `extra`.
const fn alphanumeric_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// `TCHARS[b]`: whether byte `b` is a `tchar` (RFC 9110, 5.6.2), one load per byte.
static TCHARS: [bool; 256] = alphanumeric_and(b"!#$%&'*+-.^_`|~");

/// Whether `b` is a `tchar` (RFC 9110, 5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHARS[usize::from(b)]
}

/// Whether `name` is a valid field name (a non-empty token).
pub(crate) fn is_token(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| is_tchar(b))
}

/// Whether `value` may be sent as a field value: visible ASCII, space, tab and obs-text; no
/// other control characters (so never CR, LF or NUL).
pub(crate) fn is_field_value(value: &[u8]) -> bool {
    // Without early exit or branches, so the compiler compares 16 or 32 bytes at a time (an
    // invalid value is rare and refused all the same).
    value.iter().fold(true, |ok, &b| ok & ((b == b'\t') | ((b >= 0x20) & (b != 0x7f))))
}

/// Whether the comma-separated list `value` has `token` as an element (any case).
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value.split(|&b| b == b',').any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether `b` is optional whitespace (`OWS`: space or tab).
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `bytes` without leading and trailing `OWS`.
pub(crate) fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if !is_ows(*first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !is_ows(*last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// Digits only (no sign, no spaces), at most `max_digits` of them.
pub(crate) fn parse_decimal(digits: &[u8], max_digits: usize) -> Option<u32> {
    if digits.is_empty() || digits.len() > max_digits || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

/// `REG_NAME[b]`: whether byte `b` may appear as itself in a reg-name (RFC 3986, 3.2.2:
/// unreserved and sub-delims; `%` starts a pct-encoded byte and is checked apart).
static REG_NAME: [bool; 256] = alphanumeric_and(b"-._~!$&'()*+,;=");

/// `host [":" port]`: a reg-name (unreserved, sub-delims, pct-encoded) or an IP literal in
/// brackets; no user info; the port is digits. Empty is refused.
pub(crate) fn is_valid_authority(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(close) = value.iter().position(|&b| b == b']') else { return false };
        let inside = &value[1..close];
        if inside.is_empty() || !inside.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return false;
        }
        match &value[close + 1..] {
            [] => (&value[..0], None),
            [b':', port @ ..] => (&value[..0], Some(port)),
            _ => return false,
        }
    } else {
        match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
            None => (value, None),
        }
    };
    if value.first() != Some(&b'[') {
        if host.is_empty() {
            return false;
        }
        let mut i = 0;
        while i < host.len() {
            let b = host[i];
            if b == b'%' {
                if i + 2 >= host.len() || !(host[i + 1].is_ascii_hexdigit() && host[i + 2].is_ascii_hexdigit()) {
                    return false;
                }
                i += 3;
                continue;
            }
            if !REG_NAME[usize::from(b)] {
                return false;
            }
            i += 1;
        }
    }
    port.is_none_or(|p| p.len() <= 5 && p.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_value_is_refused_for_any_control_character_but_tab_wherever_it_is() {
        for b in 0..=255u8 {
            let allowed = b == b'\t' || (b >= 0x20 && b != 0x7f);
            for at in [0, 7, 16, 40] {
                let mut value = vec![b'a'; 41];
                value[at] = b;
                assert_eq!(is_field_value(&value), allowed, "byte {b:#04x} at {at}");
            }
        }
        assert!(is_field_value(b""));
    }

    #[test]
    fn reg_name_table_holds_exactly_unreserved_and_sub_delims() {
        let allowed = b"-._~!$&'()*+,;=0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for b in 0..=255u8 {
            assert_eq!(REG_NAME[usize::from(b)], allowed.contains(&b), "byte {b:#04x}");
        }
    }

    #[test]
    fn tchar_table_holds_exactly_the_rfc_9110_token_characters() {
        let tchars = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for b in 0..=255u8 {
            assert_eq!(is_tchar(b), tchars.contains(&b), "byte {b:#04x}");
        }
    }

    #[test]
    fn authority_forms() {
        for ok in ["a", "a:80", "a:", "[::1]", "[::1]:8080", "xn--d1a.example", "a%20b"] {
            assert!(is_valid_authority(ok.as_bytes()), "{ok}");
        }
        for bad in ["", ":80", "a:b", "a b", "[::1", "[zz]", "a/b", "a%2", "a%zz", "u@h", "a:123456"] {
            assert!(!is_valid_authority(bad.as_bytes()), "{bad}");
        }
    }
}
