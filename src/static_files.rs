//! A read-only static file server: the binary's built-in app, usable as any [`Handler`].
//!
//! ```no_run
//! use maitred::static_files::{StaticFiles, StaticOptions};
//! use maitred::{Config, Server};
//!
//! let app = StaticFiles::new(StaticOptions { root: "./public".into(), ..StaticOptions::default() })?;
//! let handle = Server::bind(Config::default(), app)?.start()?;
//! handle.wait();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Mapping a URL to a file
//!
//! The path (`Request::path`, query excluded) is percent-decoded exactly once and then checked.
//! Nothing under the root is ever reached by a name that was not checked, and nothing outside
//! it is reached at all unless a symlink leads there and `follow_symlinks` allows it.
//!
//! | the decoded path | answer |
//! |---|---|
//! | an invalid escape (`%`, `%zz`), a NUL byte, bytes that are not UTF-8 (e.g. overlong `%c0%ae`) | 400 |
//! | a segment made only of dots and spaces other than `.` (so `..`, `...`, `. .`) | 404 |
//! | a backslash or a colon anywhere (separators, drive letters, UNC and stream names on Windows; refused on every platform so behaviour does not depend on it) | 404 |
//! | empty and `.` segments (`//a`, `/./a`) | ignored: `//etc/passwd` is `<root>/etc/passwd` |
//! | outside `url_prefix` | 404 |
//!
//! Decoding happens once: `%252e%252e` is the literal name `%2e%2e`. A decoded `%2f` separates
//! segments like `/`. The joined path is canonicalised (every symlink resolved) and must lie
//! under the canonical root, unless `follow_symlinks` is set; only regular files are served
//! (never FIFOs or devices). Hidden files (names starting with `.`) are served and listed like
//! any other: keep what must stay private out of the root. Names that cannot be requested
//! (not UTF-8, or holding `\` or `:`) are left out of listings.
//!
//! ## Responses
//!
//! * `GET` and `HEAD` only; any other method is `405` with `Allow: GET, HEAD`.
//! * A directory URL without a trailing slash is redirected (`301`) to the slash form, query
//!   kept; the `Location` is rebuilt from the checked segments, so `//host/dir` cannot become
//!   an open redirect. A directory is answered with its `index.html`, else with a listing when
//!   `directory_listing` is on, else `404`. A file URL with a trailing slash is `404`.
//! * `Content-Type` comes from the extension (case-insensitive) through a built-in table of
//!   common web types; `text/*` types say `charset=utf-8`; anything else is
//!   `application/octet-stream`. Every response carries `X-Content-Type-Options: nosniff`.
//!   `Cache-Control` is never set: that is the operator's choice, e.g. in a proxy.
//! * Validators: a strong `ETag` (quoted hex of size and modification time in nanoseconds) and
//!   `Last-Modified`. Preconditions follow RFC 9110 section 13.2.2: `If-Match` (strong
//!   comparison), else `If-Unmodified-Since`, fail with `412`; then `If-None-Match` (weak
//!   comparison, `*` matches any file) gives `304`, and only when it is absent does
//!   `If-Modified-Since` (IMF-fixdate only; other date forms are ignored) give `304`.
//! * Ranges (`GET` only, `Accept-Ranges: bytes`): one range `a-b`, `a-` or `-n` gives `206`
//!   with `Content-Range`; an unsatisfiable one gives `416` with `Content-Range: bytes */len`.
//!   A request for several ranges gets the whole file (`200`): multipart responses cost more
//!   than they save. A malformed `Range` is ignored, as is any `Range` on an empty file.
//!   `If-Range` (a strong ETag, or exactly the `Last-Modified` date) must match for the range
//!   to be honoured; otherwise the whole file is sent.
//! * Files are sent with [`Body::File`] after seeking to the range start, so they are never
//!   read into memory whole.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File, Metadata};
use std::io::{self, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::date::format_http_date;
use crate::handler::Handler;
use crate::request::Request;
use crate::response::{Body, Response};

/// How a [`StaticFiles`] app maps URLs to files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticOptions {
    /// The directory served. Defaults to `.` (the working directory at start-up).
    pub root: PathBuf,
    /// Where the root is mounted in URL space: `""` for `/`, or a path like `"/app"` (plain
    /// text, not percent-encoded; a trailing slash is ignored). Requests outside it get 404.
    /// Defaults to `""`.
    pub url_prefix: String,
    /// Answer a directory without `index.html` with an HTML listing instead of 404. Defaults
    /// to `false`.
    pub directory_listing: bool,
    /// Serve through symlinks whose target lies outside the root. Symlinks that stay inside
    /// the root are always followed. Defaults to `false`.
    pub follow_symlinks: bool,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            root: PathBuf::from("."),
            url_prefix: String::new(),
            directory_listing: false,
            follow_symlinks: false,
        }
    }
}

/// A read-only static file server (see the [module docs](self) for every rule it follows).
#[derive(Clone, Debug)]
pub struct StaticFiles {
    /// Canonical root directory.
    root: PathBuf,
    /// The checked segments of the URL prefix.
    prefix: Vec<String>,
    directory_listing: bool,
    follow_symlinks: bool,
}

impl StaticFiles {
    /// Checks `options` and canonicalises the root once.
    ///
    /// Fails with [`io::ErrorKind::NotFound`] if the root does not exist, and with
    /// [`io::ErrorKind::InvalidInput`] if it is not a directory or the prefix is not `""` or a
    /// path starting with `/` made of servable segments. The messages name the culprit.
    pub fn new(options: StaticOptions) -> io::Result<StaticFiles> {
        let root = fs::canonicalize(&options.root)
            .map_err(|e| io::Error::new(e.kind(), format!("static file root {}: {e}", options.root.display())))?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("static file root {} is not a directory", options.root.display()),
            ));
        }
        let prefix = parse_prefix(&options.url_prefix).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "static file URL prefix {:?} must be empty or a path like \"/app\" without `..`, `\\` or `:`",
                    options.url_prefix
                ),
            )
        })?;
        Ok(StaticFiles {
            root,
            prefix,
            directory_listing: options.directory_listing,
            follow_symlinks: options.follow_symlinks,
        })
    }

    /// The canonical root directory being served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn respond(&self, request: &Request) -> Response {
        let mut target = match parse_request_path(request.path()) {
            Ok(target) => target,
            Err(PathRefusal::Malformed) => return plain(400),
            Err(PathRefusal::NotServable) => return plain(404),
        };
        if !target.segments.starts_with(&self.prefix) {
            return plain(404);
        }
        target.segments.drain(..self.prefix.len());
        if !matches!(request.method(), "GET" | "HEAD") {
            return plain(405).with_header("Allow", "GET, HEAD");
        }

        let mut joined = self.root.clone();
        joined.extend(&target.segments);
        let (path, metadata) = match self.resolve(&joined) {
            Ok(found) => found,
            Err(status) => return plain(status),
        };
        if metadata.is_dir() {
            self.serve_directory(request, &target, &path)
        } else if !metadata.is_file() || target.trailing_slash {
            plain(404)
        } else {
            serve_file(request, &path, content_type(&joined))
        }
    }

    /// Canonicalises `joined` and checks it stays under the root (unless symlinks may leave
    /// it). An error is the status to answer.
    fn resolve(&self, joined: &Path) -> Result<(PathBuf, Metadata), u16> {
        let canonical = fs::canonicalize(joined).map_err(|e| lookup_status(&e))?;
        if !self.follow_symlinks && !canonical.starts_with(&self.root) {
            log::debug!("refused {}: resolves outside the root", joined.display());
            return Err(404);
        }
        let metadata = fs::metadata(&canonical).map_err(|e| lookup_status(&e))?;
        Ok((canonical, metadata))
    }

    fn serve_directory(&self, request: &Request, target: &RequestPath, dir: &Path) -> Response {
        if !target.trailing_slash {
            let mut location = self.url_of(&target.segments);
            if let Some(query) = request.query() {
                location.push('?');
                location.push_str(query);
            }
            return plain(301).with_header("Location", location);
        }
        let index = dir.join("index.html");
        if let Ok((path, metadata)) = self.resolve(&index) {
            if metadata.is_file() {
                return serve_file(request, &path, content_type(&index));
            }
        }
        if !self.directory_listing {
            return plain(404);
        }
        match self.listing(dir, &target.segments) {
            Ok(html) => with_nosniff(Response::html(200, html)),
            Err(e) => {
                log::warn!("cannot list {}: {e}", dir.display());
                plain(if e.kind() == io::ErrorKind::PermissionDenied { 403 } else { 500 })
            }
        }
    }

    /// The URL of the directory made of `segments` under the prefix, percent-encoded, with a
    /// trailing slash.
    fn url_of(&self, segments: &[String]) -> String {
        let mut url = String::from("/");
        for segment in self.prefix.iter().chain(segments) {
            url.push_str(&percent_encode(segment));
            url.push('/');
        }
        url
    }

    /// An HTML listing of `dir`, reached by `segments` under the prefix: directories first,
    /// then files, each group sorted by name. Links are relative and percent-encoded; every
    /// name shown is HTML-escaped.
    fn listing(&self, dir: &Path, segments: &[String]) -> io::Result<String> {
        let mut entries: Vec<(bool, String)> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if !is_servable_name(&name) {
                continue;
            }
            let path = entry.path();
            if entry.file_type()?.is_symlink() && !self.follow_symlinks {
                match fs::canonicalize(&path) {
                    Ok(target) if target.starts_with(&self.root) => {}
                    _ => continue,
                }
            }
            match fs::metadata(&path) {
                Ok(m) if m.is_dir() => entries.push((true, name)),
                Ok(m) if m.is_file() => entries.push((false, name)),
                _ => {}
            }
        }
        entries.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));

        let mut shown = String::from("/");
        for segment in self.prefix.iter().chain(segments) {
            shown.push_str(segment);
            shown.push('/');
        }
        let title = html_escape(&shown);
        let mut html = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n\
             <body>\n<h1>Index of {title}</h1>\n<ul>\n"
        );
        if !segments.is_empty() {
            html.push_str("<li><a href=\"../\">../</a></li>\n");
        }
        for (is_dir, name) in &entries {
            let slash = if *is_dir { "/" } else { "" };
            let _ =
                writeln!(html, "<li><a href=\"{}{slash}\">{}{slash}</a></li>", percent_encode(name), html_escape(name));
        }
        html.push_str("</ul>\n</body>\n</html>\n");
        Ok(html)
    }
}

impl Handler for StaticFiles {
    fn handle(&self, request: Request) -> Response {
        self.respond(&request)
    }
}

/// Why a request path maps to no file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PathRefusal {
    /// Not a well-formed path: 400.
    Malformed,
    /// Well-formed, but names nothing that may be served: 404.
    NotServable,
}

/// A decoded, checked request path.
#[derive(Debug, PartialEq, Eq)]
struct RequestPath {
    /// Non-empty segments other than `.`, each a single plain file name.
    segments: Vec<String>,
    /// The decoded path ends with `/`.
    trailing_slash: bool,
}

fn parse_request_path(raw: &str) -> Result<RequestPath, PathRefusal> {
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
fn parse_prefix(prefix: &str) -> Option<Vec<String>> {
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
fn is_servable_name(name: &str) -> bool {
    if name.is_empty() || name.chars().all(|c| c == '.' || c == ' ') || name.contains(['/', '\\', ':', '\0']) {
        return false;
    }
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(n)), None) if n == OsStr::new(name)
    )
}

/// Decodes every `%XX` once; `None` if a `%` is not followed by two hex digits.
fn percent_decode(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let high = hex_value(*raw.get(i + 1)?)?;
            let low = hex_value(*raw.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes every byte of `segment` but the unreserved characters (RFC 3986).
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn html_escape(text: &str) -> String {
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

/// The status for a failed lookup: 403 for a permission error, else 404 (missing, not a
/// directory on the way, a loop of symlinks, a name too long: nothing to serve).
fn lookup_status(error: &io::Error) -> u16 {
    if error.kind() == io::ErrorKind::PermissionDenied {
        403
    } else {
        404
    }
}

/// The content type for `path`'s extension.
fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(OsStr::to_str).unwrap_or("").to_ascii_lowercase();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "xml" => "text/xml; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// A response with a short text body naming the status.
fn plain(status: u16) -> Response {
    let reason = match status {
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        412 => "Precondition Failed",
        416 => "Range Not Satisfiable",
        _ => "Internal Server Error",
    };
    with_nosniff(Response::text(status, format!("{status} {reason}\n")))
}

fn with_nosniff(response: Response) -> Response {
    response.with_header("X-Content-Type-Options", "nosniff")
}

/// A file's validators.
struct Validators {
    /// The strong entity-tag, quotes included.
    etag: String,
    /// Modification time, whole seconds since the Unix epoch.
    modified_secs: i64,
}

impl Validators {
    /// `None` when the platform gives no modification time or it is before 1970.
    fn of(metadata: &Metadata) -> Option<Validators> {
        let since_epoch = metadata.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        let modified_secs = i64::try_from(since_epoch.as_secs()).ok()?;
        let etag = format!("\"{:x}-{:x}\"", metadata.len(), since_epoch.as_nanos());
        Some(Validators { etag, modified_secs })
    }

    fn last_modified(&self) -> Vec<u8> {
        format_http_date(self.modified_secs as u64).to_vec()
    }
}

/// What the preconditions of RFC 9110 section 13.2.2 decide.
#[derive(Debug, PartialEq, Eq)]
enum Precondition {
    Proceed,
    Failed,
    NotModified,
}

fn evaluate_preconditions(request: &Request, validators: Option<&Validators>) -> Precondition {
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
fn single_date(request: &Request, name: &str) -> Option<i64> {
    let mut values = request.header_values(name);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_http_date(std::str::from_utf8(value).ok()?)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    /// Both tags strong and equal.
    Strong,
    /// Equal opaque tags, weak or not.
    Weak,
}

/// Whether a list of entity-tags (`*` or `"a", W/"b"`, over any number of field lines)
/// matches the current strong `etag` (`None` when there is none, though the file exists).
/// A malformed list matches nothing.
fn tag_list_matches<'a>(values: impl Iterator<Item = &'a [u8]>, etag: Option<&str>, comparison: Comparison) -> bool {
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
enum ListedTag<'a> {
    Any,
    /// `opaque` keeps its quotes.
    Tag {
        weak: bool,
        opaque: &'a str,
    },
}

/// Parses `*` or a comma-separated list of entity-tags; `None` if malformed.
fn parse_tag_list(value: &str) -> Option<Vec<ListedTag<'_>>> {
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
fn split_entity_tag(text: &str) -> Option<(ListedTag<'_>, &str)> {
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

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// Ignore it: send the whole file (absent, malformed, or several ranges).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A single range that selects nothing: 416.
    Unsatisfiable,
}

fn parse_range(value: &str, len: u64) -> RangeRequest {
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
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| n.saturating_mul(10).saturating_add(u64::from(b - b'0'))))
}

/// Whether an `If-Range` header (if any) lets the range be honoured.
fn if_range_allows(request: &Request, validators: Option<&Validators>) -> bool {
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
        parse_http_date(value) == Some(validators.modified_secs)
    }
}

/// Serves the regular file at the canonical `path`, honouring preconditions and ranges.
fn serve_file(request: &Request, path: &Path, content_type: &'static str) -> Response {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return plain(lookup_status(&e)),
    };
    let metadata = match file.metadata() {
        Ok(metadata) => metadata,
        Err(e) => {
            log::warn!("cannot read metadata of {}: {e}", path.display());
            return plain(500);
        }
    };
    if !metadata.is_file() {
        return plain(404);
    }
    let len = metadata.len();
    let validators = Validators::of(&metadata);

    let mut response = match evaluate_preconditions(request, validators.as_ref()) {
        Precondition::Failed => return plain(412),
        Precondition::NotModified => Response::new(304),
        Precondition::Proceed => {
            let range = match request.header("range") {
                Some(value)
                    if request.method() == "GET"
                        && request.header_values("range").count() == 1
                        && if_range_allows(request, validators.as_ref()) =>
                {
                    parse_range(value, len)
                }
                _ => RangeRequest::Whole,
            };
            match range {
                RangeRequest::Whole => Response::new(200).with_body(Body::File { file, len }),
                RangeRequest::Unsatisfiable => {
                    return plain(416)
                        .with_header("Content-Range", format!("bytes */{len}"))
                        .with_header("Accept-Ranges", "bytes");
                }
                RangeRequest::Part { start, end } => {
                    if let Err(e) = file.seek(SeekFrom::Start(start)) {
                        log::warn!("cannot seek in {}: {e}", path.display());
                        return plain(500);
                    }
                    Response::new(206)
                        .with_header("Content-Range", format!("bytes {start}-{end}/{len}"))
                        .with_body(Body::File { file, len: end - start + 1 })
                }
            }
        }
    };
    if response.status() != 304 {
        response.add_header("Content-Type", content_type);
        response.add_header("Accept-Ranges", "bytes");
    }
    if let Some(validators) = &validators {
        response.add_header("ETag", validators.etag.clone());
        response.add_header("Last-Modified", validators.last_modified());
    }
    with_nosniff(response)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to seconds since the Unix epoch.
/// The obsolete RFC 850 and asctime forms are not accepted (the header is then ignored).
fn parse_http_date(text: &str) -> Option<i64> {
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

    #[test]
    fn content_types() {
        assert_eq!(content_type(Path::new("a/INDEX.HTML")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("x.tar.gz")), "application/gzip");
        assert_eq!(content_type(Path::new("x.mjs")), "text/javascript; charset=utf-8");
        assert_eq!(content_type(Path::new("Makefile")), "application/octet-stream");
        assert_eq!(content_type(Path::new(".bashrc")), "application/octet-stream");
    }
}
