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

    /// The `Last-Modified` value; `None` past the year 9999, which an HTTP date cannot hold.
    pub(super) fn last_modified(&self) -> Option<Vec<u8>> {
        date::format_http_date(self.modified_secs).map(String::into_bytes)
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
    if request.headers().any(|h| h.name().eq_ignore_ascii_case("if-match")) {
        if !tag_list_matches(request.header_values("if-match"), etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let (Some(since), Some(modified)) = (single_date(request, "if-unmodified-since"), modified) {
        if modified > since {
            return Precondition::Failed;
        }
    }
    if request.headers().any(|h| h.name().eq_ignore_ascii_case("if-none-match")) {
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
    date::parse_imf_fixdate(std::str::from_utf8(value).ok()?)
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
}
