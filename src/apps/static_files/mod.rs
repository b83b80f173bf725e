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
//! | a segment starting with `.` after the prefix, other than a first `.well-known` (unless `serve_dotfiles`) | 404 |
//!
//! Decoding happens once: `%252e%252e` is the literal name `%2e%2e`. A decoded `%2f` separates
//! segments like `/`. The joined path is canonicalised (every symlink resolved) and must lie
//! under the canonical root, unless `follow_symlinks` is set; only regular files are served
//! (never FIFOs or devices). Names that cannot be requested (not UTF-8, or holding `\` or `:`)
//! are left out of listings.
//!
//! Dot-files (any segment after the prefix starting with `.`: `/.git/config`, `/.env`,
//! `/a/.htpasswd`) get 404 and are left out of listings, as Express's serve-static does,
//! unless `serve_dotfiles` is set. A first segment `.well-known` (RFC 8615: ACME challenges,
//! `security.txt`) is served; dot-files under it are not. The check is on the URL: a symlink
//! with a plain name that leads to a dot-file inside the root is served.
//!
//! ## Responses
//!
//! * `GET` and `HEAD` only; any other method is `405` with `Allow: GET, HEAD`. `OPTIONS *`
//!   (about the server, not a file) is `200` with `Allow: GET, HEAD` and an empty body.
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
//!   read into memory whole (the engine sends them with `sendfile` on Linux), except files of
//!   at most 16 KiB held by the cache below.
//!
//! ## The file cache and the I/O loop's fast path
//!
//! What a request for a file learns (the file's identity, validators, type, and the bytes of a
//! file of at most 16 KiB) is cached under the checked path, up to 32 MiB and 4,096 entries
//! (oldest out first). Every use revalidates: one `stat` of the path (a file held in memory),
//! or an `open` and `fstat` (a larger one), compared with the device, inode, size,
//! modification and change time the entry was made from, so a file written or replaced is never
//! served stale and `ETag`/`Last-Modified` always describe the bytes sent. A file changed less
//! than a second before it was read is not cached (file system clocks are coarse). The cache is
//! on for Unix (it needs the inode); elsewhere every request takes the full path.
//!
//! The app has a fast path ([`Handler::respond_on_loop`]): the I/O loop answers a request for a
//! cached file, and a request refused by its URL alone (400, 404 for a dot-file, 405), without
//! the round trip through the worker pool. Anything else (a file not cached yet or changed, a
//! directory, a missing file) goes to a worker, which fills the cache. What a slow disk can do
//! to the loop is bounded by what the fast path does: the metadata calls above on a file the
//! kernel has just served, never a read; the body's bytes are sent by the loop as every file
//! body always was (from the page cache).

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File, Metadata};
use std::io::{self, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::handler::Handler;
use crate::http1::date;
use crate::http1::request::Request;
use crate::http1::response::{Body, Response};

mod cache;
mod conditional;
mod paths;
mod ranges;

use cache::{Entry, FileCache};
use conditional::*;
use paths::*;
use ranges::*;

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
    /// Serve and list names starting with `.` (`.git`, `.env`, `.htpasswd`). When false, a
    /// path with such a segment after the prefix gets 404 and listings leave them out, except
    /// a first segment `.well-known` (RFC 8615). Defaults to `false`.
    pub serve_dotfiles: bool,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            root: PathBuf::from("."),
            url_prefix: String::new(),
            directory_listing: false,
            follow_symlinks: false,
            serve_dotfiles: false,
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
    serve_dotfiles: bool,
    /// Small files in memory, shared by clones (see [`cache`]).
    cache: Arc<FileCache>,
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
            serve_dotfiles: options.serve_dotfiles,
            cache: Arc::default(),
        })
    }

    /// The canonical root directory being served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The answer to `request`. `on_loop`: only what needs no file system call but the cache's
    /// one `stat` (a URL refused by its form, a cached file); `None` for everything else.
    fn respond(&self, request: &Request, on_loop: bool) -> Option<Response> {
        if request.path() == "*" {
            // `OPTIONS *` (the only method the parser lets through with `*`): what this server
            // does for any resource.
            return Some(with_nosniff(Response::new(200).with_header("Allow", "GET, HEAD")));
        }
        let mut target = match parse_request_path(request.path()) {
            Ok(target) => target,
            Err(PathRefusal::Malformed) => return Some(plain(400)),
            Err(PathRefusal::NotServable) => return Some(plain(404)),
        };
        if !target.segments.starts_with(&self.prefix) {
            return Some(plain(404));
        }
        target.segments.drain(..self.prefix.len());
        if !self.serve_dotfiles && hides_a_dotfile(&target.segments) {
            log::debug!("refused {}: a name starting with `.` (serve_dotfiles is off)", request.path());
            return Some(plain(404));
        }
        if !matches!(request.method(), "GET" | "HEAD") {
            return Some(plain(405).with_header("Allow", "GET, HEAD"));
        }

        let mut joined = self.root.clone();
        joined.extend(&target.segments);
        if !target.trailing_slash {
            if let Some((entry, file)) = self.cache.lookup(&joined) {
                let content = match (&entry.bytes, file) {
                    (Some(bytes), _) => Some(Content::Cached(bytes)),
                    (None, Some(file)) => Some(Content::File { file, path: &joined }),
                    (None, None) => None, // (the cache opens every file it does not hold)
                };
                if let Some(content) = content {
                    return Some(entry_response(request, &entry, content));
                }
            }
        }
        if on_loop {
            return None;
        }
        let (path, metadata) = match self.resolve(&joined) {
            Ok(found) => found,
            Err(status) => return Some(plain(status)),
        };
        Some(if metadata.is_dir() {
            self.serve_directory(request, &target, &path)
        } else if !metadata.is_file() || target.trailing_slash {
            plain(404)
        } else {
            serve_file(request, &self.cache, Some(&joined), &path, content_type(&joined))
        })
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
                return serve_file(request, &self.cache, None, &path, content_type(&index));
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
            if !is_servable_name(&name) || (!self.serve_dotfiles && is_dotfile(&name, segments.is_empty())) {
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
        match self.respond(&request, false) {
            Some(response) => response,
            None => unreachable!("the full path always answers"),
        }
    }

    fn responds_on_loop(&self) -> bool {
        true
    }

    /// Answers from the file cache, and refuses what the URL alone says is refused; anything
    /// that needs the file system beyond the cache's one `stat` goes to a worker.
    fn respond_on_loop(&self, request: &Request) -> Option<Response> {
        self.respond(request, true)
    }
}

/// Whether `name` is a dot-file name kept private by default; `top` says it is a first segment
/// under the prefix, where `.well-known` (RFC 8615) is public.
fn is_dotfile(name: &str, top: bool) -> bool {
    name.starts_with('.') && !(top && name == ".well-known")
}

/// Whether any of the checked `segments` (after the prefix) names a dot-file.
fn hides_a_dotfile(segments: &[String]) -> bool {
    segments.iter().enumerate().any(|(i, segment)| is_dotfile(segment, i == 0))
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

/// Serves the regular file at the canonical `path`, honouring preconditions and ranges. With a
/// `key` (the path the URL named), a small file is read into the cache and served from it.
fn serve_file(
    request: &Request,
    cache: &FileCache,
    key: Option<&Path>,
    path: &Path,
    content_type: &'static str,
) -> Response {
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
    if let Some(key) = key {
        if let Some(entry) = cache.load(key, &mut file, &metadata, content_type) {
            let content = match &entry.bytes {
                Some(bytes) => Content::Cached(bytes),
                // Too large to hold: not read, still at its start.
                None => Content::File { file, path },
            };
            return entry_response(request, &entry, content);
        }
        if metadata.len() <= cache::MAX_IN_MEMORY {
            // A small file was (perhaps partly) read for the cache.
            if let Err(e) = file.rewind() {
                log::warn!("cannot seek in {}: {e}", path.display());
                return plain(500);
            }
        }
    }
    let validators = Validators::of(&metadata);
    let last_modified = validators.as_ref().and_then(Validators::last_modified);
    let content = Content::File { file, path };
    file_response(request, metadata.len(), validators.as_ref(), last_modified, content_type, content)
}

/// The response for a file the cache knows (its validators and type as they were read).
fn entry_response(request: &Request, entry: &Entry, content: Content<'_>) -> Response {
    let last_modified = entry.last_modified.clone();
    file_response(request, entry.len, entry.validators.as_ref(), last_modified, entry.content_type, content)
}

/// Where a file response's bytes come from.
enum Content<'a> {
    /// The open file, at its start.
    File { file: File, path: &'a Path },
    /// The whole file, in memory.
    Cached(&'a [u8]),
}

impl Content<'_> {
    /// The body for bytes `start..start + len`; `Err` is the response to send instead.
    fn body(self, start: u64, len: u64) -> Result<Body, Response> {
        match self {
            Content::File { mut file, path } => {
                if start > 0 {
                    if let Err(e) = file.seek(SeekFrom::Start(start)) {
                        log::warn!("cannot seek in {}: {e}", path.display());
                        return Err(plain(500));
                    }
                }
                Ok(Body::File { file, len })
            }
            Content::Cached(bytes) => Ok(Body::Bytes(bytes[start as usize..(start + len) as usize].to_vec())),
        }
    }
}

/// The response for a file of `len` bytes: preconditions, then the whole file or one range.
fn file_response(
    request: &Request,
    len: u64,
    validators: Option<&Validators>,
    last_modified: Option<Vec<u8>>,
    content_type: &'static str,
    content: Content<'_>,
) -> Response {
    let mut response = match evaluate_preconditions(request, validators) {
        Precondition::Failed => return plain(412),
        Precondition::NotModified => Response::new(304),
        Precondition::Proceed => {
            let range = match request.header("range") {
                Some(value)
                    if request.method() == "GET"
                        && request.header_values("range").count() == 1
                        && if_range_allows(request, validators) =>
                {
                    parse_range(value, len)
                }
                _ => RangeRequest::Whole,
            };
            match range {
                RangeRequest::Whole => match content.body(0, len) {
                    Ok(body) => Response::new(200).with_body(body),
                    Err(response) => return response,
                },
                RangeRequest::Unsatisfiable => {
                    return plain(416)
                        .with_header("Content-Range", format!("bytes */{len}"))
                        .with_header("Accept-Ranges", "bytes");
                }
                RangeRequest::Part { start, end } => match content.body(start, end - start + 1) {
                    Ok(body) => Response::new(206)
                        .with_header("Content-Range", format!("bytes {start}-{end}/{len}"))
                        .with_body(body),
                    Err(response) => return response,
                },
            }
        }
    };
    if response.status() != 304 {
        response.add_header("Content-Type", content_type);
        response.add_header("Accept-Ranges", "bytes");
    }
    if let Some(validators) = validators {
        response.add_header("ETag", validators.etag.clone());
        if let Some(last_modified) = last_modified {
            response.add_header("Last-Modified", last_modified);
        }
    }
    with_nosniff(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type(Path::new("a/INDEX.HTML")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("x.tar.gz")), "application/gzip");
        assert_eq!(content_type(Path::new("x.mjs")), "text/javascript; charset=utf-8");
        assert_eq!(content_type(Path::new("Makefile")), "application/octet-stream");
        assert_eq!(content_type(Path::new(".bashrc")), "application/octet-stream");
    }
}
