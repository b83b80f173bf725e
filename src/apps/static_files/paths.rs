//! From a URL path to file names: percent-decoding once, refusing what must never reach the
//! file system, and encoding names back into links and HTML.
//!
//! Owns the path rules in the table of [`super`]. Never touches the file system.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::*;

/// Why a request path maps to no file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PathRefusal {
    /// Not a well-formed path: 400.
    Malformed,
    /// Well-formed, but names nothing that may be served: 404.
    NotServable,
}

/// A decoded, checked request path.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RequestPath {
    /// Non-empty segments other than `.`, each a single plain file name.
    pub(super) segments: Vec<String>,
    /// The decoded path ends with `/`.
    pub(super) trailing_slash: bool,
}

pub(super) fn parse_request_path(raw: &str) -> Result<RequestPath, PathRefusal> {
    if !raw.starts_with('/') {
        return Err(PathRefusal::NotServable);
    }
    let bytes = percent_decode(raw.as_bytes()).ok_or(PathRefusal::Malformed)?;
    if bytes.contains(&0) {
        return Err(PathRefusal::Malformed);
    }
    let text = String::from_utf8(bytes).map_err(|_| PathRefusal::Malformed)?;
    if text.contains(['\\', ':']) {
        return Err(PathRefusal::NotServable);
    }
    let mut segments = Vec::new();
    for segment in text.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if !is_servable_name(segment) {
            return Err(PathRefusal::NotServable);
        }
        segments.push(segment.to_owned());
    }
    Ok(RequestPath { segments, trailing_slash: text.ends_with('/') })
}

/// The checked segments of a URL prefix, or `None` if it is not a valid prefix.
pub(super) fn parse_prefix(prefix: &str) -> Option<Vec<String>> {
    if prefix.is_empty() {
        return Some(Vec::new());
    }
    if !prefix.starts_with('/') || prefix.contains(['\\', ':', '\0']) {
        return None;
    }
    let mut segments = Vec::new();
    for segment in prefix.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if !is_servable_name(segment) {
            return None;
        }
        segments.push(segment.to_owned());
    }
    Some(segments)
}

/// Whether `name` may be one path segment: exactly one plain component on this platform, not
/// made only of dots and spaces (Windows trims trailing dots and spaces, so `.. ` would be
/// `..`), with no separator, colon or NUL.
pub(super) fn is_servable_name(name: &str) -> bool {
    if name.is_empty() || name.chars().all(|c| c == '.' || c == ' ') || name.contains(['/', '\\', ':', '\0']) {
        return false;
    }
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(n)), None) if n == OsStr::new(name)
    )
}

/// Decodes `raw` once, strictly: `None` when a `%` is not followed by two hex digits. (The
/// `percent-encoding` crate decodes; it leaves malformed escapes as they are, so the check that
/// refuses them is ours.)
pub(super) fn percent_decode(raw: &[u8]) -> Option<Vec<u8>> {
    let mut escapes = raw.iter().enumerate().filter(|(_, &b)| b == b'%');
    let well_formed =
        escapes.all(|(i, _)| raw.get(i + 1..i + 3).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)));
    well_formed.then(|| percent_encoding::percent_decode(raw).collect())
}

/// Every byte but the unreserved characters of RFC 3986 (`A-Z a-z 0-9 - . _ ~`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes every byte of `segment` but the unreserved characters (RFC 3986).
pub(super) fn percent_encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

pub(super) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_once_and_checked() {
        let ok = |raw: &str, segments: &[&str], trailing_slash: bool| {
            let want = RequestPath { segments: segments.iter().map(|s| s.to_string()).collect(), trailing_slash };
            assert_eq!(parse_request_path(raw), Ok(want), "{raw}");
        };
        ok("/", &[], true);
        ok("/a/b.txt", &["a", "b.txt"], false);
        ok("//a/./b/", &["a", "b"], true);
        ok("/%61%20b", &["a b"], false);
        ok("/%252e%252e/x", &["%2e%2e", "x"], false);
        ok("/%2ftmp/x", &["tmp", "x"], false);
        ok("/.hidden", &[".hidden"], false);
        ok("/a/.", &["a"], false);

        use PathRefusal::*;
        let cases = [
            ("/%", Malformed),
            ("/%2", Malformed),
            ("/%zz", Malformed),
            ("/a%00b", Malformed),
            ("/%c0%ae%c0%ae/x", Malformed),
            ("/../x", NotServable),
            ("/a/../../x", NotServable),
            ("/%2e%2e/x", NotServable),
            ("/.%2E/x", NotServable),
            ("/.../x", NotServable),
            ("/.. /x", NotServable),
            ("/..\\x", NotServable),
            ("/..%5cx", NotServable),
            ("/C:/Windows", NotServable),
            ("/a/b:c", NotServable),
            ("*", NotServable),
            ("", NotServable),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_request_path(raw), Err(want), "{raw}");
        }
    }
    #[test]
    fn prefixes() {
        assert_eq!(parse_prefix(""), Some(vec![]));
        assert_eq!(parse_prefix("/"), Some(vec![]));
        assert_eq!(parse_prefix("/app/"), Some(vec!["app".to_string()]));
        assert_eq!(parse_prefix("/a/b"), Some(vec!["a".to_string(), "b".to_string()]));
        for bad in ["app", "/../x", "/a\\b", "/c:"] {
            assert_eq!(parse_prefix(bad), None, "{bad}");
        }
    }
    #[test]
    fn encoding_and_escaping() {
        assert_eq!(percent_encode("a b/ü~.-_"), "a%20b%2F%C3%BC~.-_");
        assert_eq!(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
