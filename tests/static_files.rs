//! The static file app over real sockets: content types, directories, validators, ranges, the
//! URL prefix, and path traversal attempts against a secret placed next to (outside) the root.
mod common;
use common::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use maitred::static_files::{StaticFiles, StaticOptions};

const SECRET: &str = "TOP-SECRET-7f3a9c";
const RANGE_TEXT: &str = "0123456789";

/// A directory `base` holding `secret.txt` and the served root `base/www`; removed on drop.
struct Fixture {
    base: PathBuf,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!("maitred-static-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let base = std::env::temp_dir().join(unique);
        let _ = fs::remove_dir_all(&base);
        let root = base.join("www");
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::create_dir_all(root.join("docs")).unwrap();
        fs::create_dir_all(root.join("empty-dir")).unwrap();
        let fixture = Fixture { base, root };
        fixture.write_outside("secret.txt", SECRET.as_bytes());
        fixture.write("index.html", b"<h1>home</h1>");
        fixture.write("hello.txt", b"hello world\n");
        fixture.write("range.txt", RANGE_TEXT.as_bytes());
        fixture.write("empty.txt", b"");
        fixture.write(".hidden", b"hidden but served");
        fixture.write("style.css", b"body{}");
        fixture.write("app.js", b"1");
        fixture.write("app.mjs", b"1");
        fixture.write("data.json", b"{}");
        fixture.write("image.png", b"\x89PNG");
        fixture.write("photo.JPG", b"\xff\xd8");
        fixture.write("font.woff2", b"wOF2");
        fixture.write("module.wasm", b"\0asm");
        fixture.write("archive.tar.gz", b"\x1f\x8b");
        fixture.write("notes.md", b"# notes");
        fixture.write("unknown.xyz", b"?");
        fixture.write("Makefile", b"all:");
        fixture.write("sub/inner.txt", b"inner");
        fixture.write("sub/a b.txt", b"spaced");
        fixture.write("docs/index.html", b"<h1>docs</h1>");
        fixture
    }

    fn write(&self, relative: &str, bytes: &[u8]) {
        fs::write(self.root.join(relative), bytes).unwrap();
    }

    fn write_outside(&self, relative: &str, bytes: &[u8]) {
        fs::write(self.base.join(relative), bytes).unwrap();
    }

    fn options(&self) -> StaticOptions {
        StaticOptions { root: self.root.clone(), ..StaticOptions::default() }
    }

    fn serve(&self) -> TestServer {
        self.serve_with(|_| {})
    }

    fn serve_with(&self, adjust: impl FnOnce(&mut StaticOptions)) -> TestServer {
        let mut options = self.options();
        adjust(&mut options);
        TestServer::start(StaticFiles::new(options).expect("static root"))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// Sends `METHOD TARGET` with extra header lines (each ending in CRLF) and reads the answer.
fn request(server: &TestServer, method: &str, target: &str, headers: &str) -> RawResponse {
    let mut client = server.client();
    client.send(format!("{method} {target} HTTP/1.1\r\nHost: test\r\n{headers}\r\n"));
    if method == "HEAD" {
        client.head_response()
    } else {
        client.response()
    }
}

fn get(server: &TestServer, target: &str) -> RawResponse {
    request(server, "GET", target, "")
}

fn get_with(server: &TestServer, target: &str, headers: &str) -> RawResponse {
    request(server, "GET", target, headers)
}

/// Sends raw request bytes (the target may hold bytes a well-behaved client would not send)
/// and reads whatever comes back until the server closes or the first response ends.
fn raw_get(server: &TestServer, target: &[u8]) -> (u16, Vec<u8>) {
    let mut bytes = b"GET ".to_vec();
    bytes.extend_from_slice(target);
    bytes.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let mut client = server.client();
    client.send(&bytes);
    let everything = client.read_to_close();
    let status = std::str::from_utf8(everything.get(9..12).unwrap_or(b"000")).unwrap_or("000").parse().unwrap_or(0);
    (status, everything)
}

/// The traversal attempt `target` must get a 4xx and never the secret's content.
fn assert_refused(server: &TestServer, target: &str) {
    let (status, everything) = raw_get(server, target.as_bytes());
    assert!((400..500).contains(&status), "{target}: status {status}: {:?}", String::from_utf8_lossy(&everything));
    assert!(find(&everything, SECRET.as_bytes()).is_none(), "{target} leaked the secret");
}

#[test]
fn files_are_served_with_their_content_type_and_nosniff() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let cases = [
        ("/hello.txt", "text/plain; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/app.mjs", "text/javascript; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/image.png", "image/png"),
        ("/photo.JPG", "image/jpeg"),
        ("/font.woff2", "font/woff2"),
        ("/module.wasm", "application/wasm"),
        ("/archive.tar.gz", "application/gzip"),
        ("/notes.md", "text/markdown; charset=utf-8"),
        ("/unknown.xyz", "application/octet-stream"),
        ("/Makefile", "application/octet-stream"),
    ];
    for (target, content_type) in cases {
        let r = get(&server, target);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.header("content-type"), Some(content_type), "{target}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{target}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"), "{target}");
        assert_eq!(r.header_count("cache-control"), 0, "{target}");
        assert_eq!(r.body, fs::read(fixture.root.join(&target[1..])).unwrap(), "{target}");
    }
}

#[test]
fn errors_also_carry_nosniff() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let r = get(&server, "/missing.txt");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn percent_encoded_names_are_decoded_once() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_eq!(get(&server, "/sub/a%20b.txt").body_text(), "spaced");
    assert_eq!(get(&server, "/%68ello.txt").body_text(), "hello world\n");
    fixture.write("%2e%2e", b"literal name");
    let r = get(&server, "/%252e%252e");
    assert_eq!((r.status, r.body_text().as_str()), (200, "literal name"));
}

#[test]
fn invalid_escapes_are_bad_requests() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    for target in ["/%zz", "/hello.txt%", "/%4"] {
        assert_eq!(get(&server, target).status, 400, "{target}");
    }
}

#[test]
fn hidden_files_are_served_with_serve_dotfiles() {
    let fixture = Fixture::new();
    let server = fixture.serve_with(|o| o.serve_dotfiles = true);
    let r = get(&server, "/.hidden");
    assert_eq!((r.status, r.body_text().as_str()), (200, "hidden but served"));
}

#[test]
fn dotfiles_are_not_found_by_default() {
    let fixture = Fixture::new();
    fs::create_dir_all(fixture.root.join(".git")).unwrap();
    fixture.write(".git/config", b"[core]");
    fixture.write(".env", b"PASSWORD=x");
    fixture.write("sub/.htpasswd", b"admin:x");
    let server = fixture.serve();
    for target in
        ["/.hidden", "/.git/config", "/.git/", "/.git", "/.env", "/sub/.htpasswd", "/%2eenv", "/sub/%2Ehtpasswd"]
    {
        let r = get(&server, target);
        assert_eq!(r.status, 404, "{target}");
        assert!(!r.body_text().contains("PASSWORD") && !r.body_text().contains("[core]"), "{target}");
    }
    let r = request(&server, "HEAD", "/.env", "");
    assert_eq!(r.status, 404);
    assert_eq!(get(&server, "/hello.txt").status, 200);
}

#[test]
fn well_known_is_served_but_not_dotfiles_under_it() {
    let fixture = Fixture::new();
    fs::create_dir_all(fixture.root.join(".well-known/acme-challenge")).unwrap();
    fixture.write(".well-known/security.txt", b"Contact: x");
    fixture.write(".well-known/acme-challenge/token", b"tok");
    fixture.write(".well-known/.secret", b"no");
    fs::create_dir_all(fixture.root.join("sub/.well-known")).unwrap();
    fixture.write("sub/.well-known/x", b"nested");
    let server = fixture.serve();
    assert_eq!(get(&server, "/.well-known/security.txt").body_text(), "Contact: x");
    assert_eq!(get(&server, "/.well-known/acme-challenge/token").body_text(), "tok");
    assert_eq!(get(&server, "/.well-known/.secret").status, 404);
    assert_eq!(get(&server, "/sub/.well-known/x").status, 404);
}

#[test]
fn listings_leave_dotfiles_out_by_default() {
    let fixture = Fixture::new();
    fs::remove_file(fixture.root.join("index.html")).unwrap();
    fs::create_dir_all(fixture.root.join(".well-known")).unwrap();
    let server = fixture.serve_with(|o| o.directory_listing = true);
    let html = get(&server, "/").body_text();
    assert!(html.contains("href=\"sub/\"") && !html.contains(".hidden"), "{html}");
    assert!(html.contains("href=\".well-known/\""), "{html}");
}

#[test]
fn empty_and_dot_segments_are_ignored() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_eq!(get(&server, "//sub/./inner.txt").body_text(), "inner");
}

#[test]
fn a_file_with_a_trailing_slash_is_not_found() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_eq!(get(&server, "/hello.txt/").status, 404);
}

#[test]
fn directories_are_answered_with_their_index() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let r = get(&server, "/");
    assert_eq!((r.status, r.body_text().as_str()), (200, "<h1>home</h1>"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = get(&server, "/docs/");
    assert_eq!((r.status, r.body_text().as_str()), (200, "<h1>docs</h1>"));
    assert!(r.header("etag").is_some());
}

#[test]
fn a_directory_without_slash_is_redirected_keeping_the_query() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let r = get(&server, "/docs?lang=en&x=%20");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs/?lang=en&x=%20"));
    let r = get(&server, "/sub/deeper");
    assert_eq!((r.status, r.header("location")), (301, Some("/sub/deeper/")));
}

#[test]
fn redirect_location_is_rebuilt_from_clean_segments() {
    let fixture = Fixture::new();
    fs::create_dir_all(fixture.root.join("evil.example/a b")).unwrap();
    let server = fixture.serve();
    let r = get(&server, "//evil.example/./a%20b");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/evil.example/a%20b/"), "no protocol-relative open redirect");
}

#[test]
fn directory_without_index_is_not_found_when_listing_is_off() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let r = get(&server, "/sub/");
    assert_eq!(r.status, 404);
    assert!(!r.body_text().contains("inner.txt"));
}

#[test]
fn listing_is_sorted_dirs_first_escaped_and_encoded() {
    let fixture = Fixture::new();
    let evil = if cfg!(windows) { "b&'x.txt" } else { "<b>&\"x'.txt" };
    fixture.write(&format!("sub/{evil}"), b"x");
    fixture.write("sub/Zeta.txt", b"z");
    fs::create_dir_all(fixture.root.join("sub/zz-dir")).unwrap();
    let server = fixture.serve_with(|o| o.directory_listing = true);
    let r = get(&server, "/sub/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let html = r.body_text();
    assert!(html.contains("<title>Index of /sub/</title>"), "{html}");
    let order: Vec<usize> =
        ["href=\"../\"", "href=\"deeper/\"", "href=\"zz-dir/\"", "href=\"%3Cb%3E", "href=\"Zeta.txt\""]
            .iter()
            .filter(|needle| cfg!(unix) || !needle.contains("%3C"))
            .map(|needle| html.find(needle).unwrap_or_else(|| panic!("{needle} missing from {html}")))
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "order {order:?} in {html}");
    assert!(html.contains("<a href=\"a%20b.txt\">a b.txt</a>"), "{html}");
    if cfg!(unix) {
        assert!(
            html.contains("<a href=\"%3Cb%3E%26%22x%27.txt\">&lt;b&gt;&amp;&quot;x&#39;.txt</a>"),
            "escaping in {html}"
        );
        assert!(!html.contains("<b>"), "an unescaped name in {html}");
    }
}

#[test]
fn listing_of_the_root_has_no_parent_link_and_an_index_still_wins() {
    let fixture = Fixture::new();
    let server = fixture.serve_with(|o| {
        o.directory_listing = true;
        o.serve_dotfiles = true;
    });
    assert_eq!(get(&server, "/").body_text(), "<h1>home</h1>");
    fs::remove_file(fixture.root.join("index.html")).unwrap();
    let html = get(&server, "/").body_text();
    assert!(html.contains("href=\"sub/\"") && !html.contains("href=\"../\""), "{html}");
    assert!(html.contains("href=\".hidden\""), "hidden files are listed: {html}");
}

#[test]
fn other_methods_are_not_allowed() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let r = request(&server, method, "/hello.txt", "Content-Length: 0\r\n");
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
    }
    assert_eq!(fs::read_to_string(fixture.root.join("hello.txt")).unwrap(), "hello world\n");
}

#[test]
fn head_has_the_same_headers_and_no_body() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let strip_date = |r: &RawResponse| -> Vec<(String, String)> {
        r.headers.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("date")).cloned().collect()
    };
    for target in ["/hello.txt", "/", "/docs"] {
        let full = get(&server, target);
        let head = request(&server, "HEAD", target, "");
        assert_eq!(head.status, full.status, "{target}");
        assert_eq!(strip_date(&head), strip_date(&full), "{target}");
        assert!(head.body.is_empty());
    }
    // A range is for GET only: HEAD answers as for the whole file.
    let head = request(&server, "HEAD", "/range.txt", "Range: bytes=0-1\r\n");
    assert_eq!((head.status, head.header("content-length")), (200, Some("10")));
    let mut client = server.client();
    client.send("HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /range.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.head_response().status, 200);
    assert_eq!(client.response().body_text(), RANGE_TEXT, "no body bytes after the HEAD response");
}

#[test]
fn etag_and_last_modified_are_sent() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let r = get(&server, "/hello.txt");
    let etag = r.header("etag").expect("etag");
    assert!(etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"), "{etag}");
    assert!(etag[1..etag.len() - 1].chars().all(|c| c.is_ascii_hexdigit() || c == '-'), "{etag}");
    assert!(etag.starts_with("\"c-"), "size 12 in hex first: {etag}");
    let last_modified = r.header("last-modified").expect("last-modified");
    assert!(last_modified.len() == 29 && last_modified.ends_with(" GMT"), "{last_modified}");
    assert_eq!(get(&server, "/hello.txt").header("etag"), Some(etag), "stable");
    fixture.write("hello.txt", b"changed content\n");
    assert_ne!(get(&server, "/hello.txt").header("etag"), Some(etag), "changes with the file");
}

#[test]
fn if_none_match_gives_304_with_the_etag() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let etag = get(&server, "/hello.txt").header("etag").unwrap().to_string();
    for value in [etag.clone(), format!("W/{etag}"), format!("\"other\", {etag}"), "*".to_string()] {
        let r = get_with(&server, "/hello.txt", &format!("If-None-Match: {value}\r\n"));
        assert_eq!(r.status, 304, "{value}");
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{value}");
        assert!(r.body.is_empty() && r.header("content-length").is_none(), "{value}");
    }
    let head = request(&server, "HEAD", "/hello.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(head.status, 304);
}

#[test]
fn if_none_match_that_differs_gives_the_file() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let r = get_with(&server, "/hello.txt", "If-None-Match: \"nope\", W/\"nope2\"\r\n");
    assert_eq!((r.status, r.body_text().as_str()), (200, "hello world\n"));
}

#[test]
fn if_none_match_takes_precedence_over_if_modified_since() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let headers = "If-None-Match: \"nope\"\r\nIf-Modified-Since: Fri, 31 Dec 9999 23:59:59 GMT\r\n";
    assert_eq!(get_with(&server, "/hello.txt", headers).status, 200);
    let etag = get(&server, "/hello.txt").header("etag").unwrap().to_string();
    let headers = format!("If-None-Match: {etag}\r\nIf-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n");
    assert_eq!(get_with(&server, "/hello.txt", &headers).status, 304);
}

#[test]
fn if_modified_since_gives_304_unless_modified() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let last_modified = get(&server, "/hello.txt").header("last-modified").unwrap().to_string();
    let r = get_with(&server, "/hello.txt", &format!("If-Modified-Since: {last_modified}\r\n"));
    assert_eq!(r.status, 304);
    assert!(r.header("etag").is_some());
    let r = get_with(&server, "/hello.txt", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n");
    assert_eq!(r.status, 200);
    let r = get_with(&server, "/hello.txt", "If-Modified-Since: yesterday\r\n");
    assert_eq!(r.status, 200, "an invalid date is ignored");
}

#[test]
fn if_match_and_if_unmodified_since_fail_with_412() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let etag = get(&server, "/hello.txt").header("etag").unwrap().to_string();
    assert_eq!(get_with(&server, "/hello.txt", "If-Match: \"nope\"\r\n").status, 412);
    assert_eq!(get_with(&server, "/hello.txt", &format!("If-Match: W/{etag}\r\n")).status, 412);
    assert_eq!(get_with(&server, "/hello.txt", &format!("If-Match: {etag}\r\n")).status, 200);
    assert_eq!(get_with(&server, "/hello.txt", "If-Match: *\r\n").status, 200);
    let old = "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
    assert_eq!(get_with(&server, "/hello.txt", old).status, 412);
    let future = "If-Unmodified-Since: Fri, 31 Dec 9999 23:59:59 GMT\r\n";
    assert_eq!(get_with(&server, "/hello.txt", future).status, 200);
}

#[test]
fn single_ranges_give_206_in_each_form() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let cases = [
        ("bytes=2-5", "2345", "bytes 2-5/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-3", "789", "bytes 7-9/10"),
        ("bytes=5-100", "56789", "bytes 5-9/10"),
        ("bytes=-50", RANGE_TEXT, "bytes 0-9/10"),
        ("bytes=0-0", "0", "bytes 0-0/10"),
    ];
    for (range, body, content_range) in cases {
        let r = get_with(&server, "/range.txt", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body_text(), body, "{range}");
        assert_eq!(r.header("content-range"), Some(content_range), "{range}");
        assert_eq!(r.header("content-length"), Some(body.len().to_string().as_str()), "{range}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"), "{range}");
        assert!(r.header("etag").is_some(), "{range}");
    }
}

#[test]
fn unsatisfiable_ranges_give_416() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    for range in ["bytes=10-", "bytes=10-20", "bytes=-0"] {
        let r = get_with(&server, "/range.txt", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */10"), "{range}");
        assert!(!r.body_text().contains(RANGE_TEXT), "{range}");
    }
    let r = get_with(&server, "/empty.txt", "Range: bytes=0-\r\n");
    assert_eq!((r.status, r.header("content-range")), (416, Some("bytes */0")));
}

#[test]
fn multiple_or_malformed_ranges_give_the_whole_file() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    for range in ["bytes=0-1,4-5", "bytes=0-1, 20-30", "bytes=5-2", "bytes=x-y", "pages=1-2", "bytes"] {
        let r = get_with(&server, "/range.txt", &format!("Range: {range}\r\n"));
        assert_eq!((r.status, r.body_text().as_str()), (200, RANGE_TEXT), "{range}");
        assert!(r.header("content-range").is_none(), "{range}");
    }
    let r = get_with(&server, "/empty.txt", "Range: bytes=-5\r\n");
    assert_eq!((r.status, r.body.len()), (200, 0));
}

#[test]
fn if_range_honours_the_range_only_when_it_matches() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let first = get(&server, "/range.txt");
    let etag = first.header("etag").unwrap();
    let last_modified = first.header("last-modified").unwrap();
    let partial = |if_range: &str| {
        let r = get_with(&server, "/range.txt", &format!("Range: bytes=0-1\r\nIf-Range: {if_range}\r\n"));
        match r.status {
            206 => {
                assert_eq!(r.body_text(), "01");
                true
            }
            200 => {
                assert_eq!(r.body_text(), RANGE_TEXT);
                false
            }
            other => panic!("If-Range {if_range}: status {other}"),
        }
    };
    assert!(partial(etag));
    assert!(partial(last_modified));
    assert!(!partial("\"stale\""));
    assert!(!partial(&format!("W/{etag}")), "weak tags never match If-Range");
    assert!(!partial("Thu, 01 Jan 1970 00:00:00 GMT"));
    assert!(!partial("garbage"));
}

#[test]
fn a_large_file_arrives_byte_exact() {
    let fixture = Fixture::new();
    let big: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    fixture.write("big.bin", &big);
    let server = fixture.serve();
    let r = get(&server, "/big.bin");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(big.len().to_string().as_str()));
    assert!(r.body == big, "5 MiB body differs");
    let start = 4 * 1024 * 1024 + 7;
    let r = get_with(&server, "/big.bin", &format!("Range: bytes={start}-{}\r\n", start + 99_999));
    assert_eq!(r.status, 206);
    assert!(r.body == big[start..start + 100_000], "range from the middle differs");
}

#[test]
fn a_url_prefix_mounts_the_root() {
    let fixture = Fixture::new();
    let server = fixture.serve_with(|o| o.url_prefix = "/app".into());
    assert_eq!(get(&server, "/app/hello.txt").body_text(), "hello world\n");
    assert_eq!(get(&server, "/app/").body_text(), "<h1>home</h1>");
    assert_eq!(get(&server, "/app/sub/inner.txt").body_text(), "inner");
    assert_eq!(get(&server, "/hello.txt").status, 404);
    assert_eq!(get(&server, "/application/hello.txt").status, 404);
    assert_eq!(get(&server, "/").status, 404);
    let r = get(&server, "/app?x=1");
    assert_eq!((r.status, r.header("location")), (301, Some("/app/?x=1")));
    let r = get(&server, "/app/docs");
    assert_eq!((r.status, r.header("location")), (301, Some("/app/docs/")));
    assert_refused(&server, "/app/../secret.txt");
}

#[test]
fn a_url_prefix_shows_in_listings() {
    let fixture = Fixture::new();
    let server = fixture.serve_with(|o| {
        o.url_prefix = "/files/".into();
        o.directory_listing = true;
    });
    let html = get(&server, "/files/sub/").body_text();
    assert!(html.contains("<title>Index of /files/sub/</title>"), "{html}");
}

#[test]
fn new_refuses_a_missing_root_a_file_root_and_a_bad_prefix() {
    let fixture = Fixture::new();
    let missing = StaticFiles::new(StaticOptions { root: fixture.base.join("nope"), ..StaticOptions::default() });
    let error = missing.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(error.to_string().contains("nope"), "{error}");
    let file = StaticFiles::new(StaticOptions { root: fixture.base.join("secret.txt"), ..StaticOptions::default() });
    assert!(file.unwrap_err().to_string().contains("not a directory"));
    for prefix in ["app", "/a/../b", "/a\\b"] {
        let options = StaticOptions { url_prefix: prefix.into(), ..fixture.options() };
        assert_eq!(StaticFiles::new(options).unwrap_err().kind(), std::io::ErrorKind::InvalidInput, "{prefix}");
    }
    let app = StaticFiles::new(fixture.options()).unwrap();
    assert_eq!(app.root(), fs::canonicalize(&fixture.root).unwrap());
}

#[test]
fn defaults_are_documented_values() {
    let options = StaticOptions::default();
    assert_eq!(options.root, Path::new("."));
    assert_eq!(options.url_prefix, "");
    assert!(!options.directory_listing && !options.follow_symlinks && !options.serve_dotfiles);
}

// ---- traversal: every attempt is a 4xx and never shows the secret ----

#[test]
fn traversal_plain_dot_dot() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_refused(&server, "/../secret.txt");
    assert_refused(&server, "/../../secret.txt");
    assert_refused(&server, "/..");
}

#[test]
fn traversal_encoded_dot_dot() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_refused(&server, "/%2e%2e/secret.txt");
    assert_refused(&server, "/%2E%2E/secret.txt");
    assert_refused(&server, "/.%2e/secret.txt");
    assert_refused(&server, "/%2e./secret.txt");
    assert_refused(&server, "/%2e%2e%2fsecret.txt");
    assert_refused(&server, "/..%2fsecret.txt");
}

#[test]
fn traversal_double_encoded_is_a_literal_name() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_refused(&server, "/%252e%252e/secret.txt");
    assert_refused(&server, "/%252e%252e%252fsecret.txt");
}

#[test]
fn traversal_backslashes() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_refused(&server, "/..\\secret.txt");
    assert_refused(&server, "/..%5csecret.txt");
    assert_refused(&server, "/..%5Csecret.txt");
    assert_refused(&server, "/sub%5c..%5c..%5csecret.txt");
}

#[test]
fn traversal_absolute_paths() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let secret = fixture.base.join("secret.txt");
    let absolute = secret.to_str().unwrap().replace('\\', "/");
    let absolute = absolute.trim_start_matches('/');
    assert_refused(&server, &format!("//{absolute}"));
    assert_refused(&server, &format!("/%2f{absolute}"));
    assert_refused(&server, &format!("/%2F%2F{absolute}"));
    assert_refused(&server, "/C:/Windows/win.ini");
    assert_refused(&server, "/C%3a%5cWindows%5cwin.ini");
    assert_refused(&server, "/%5c%5cserver%5cshare%5csecret.txt");
    assert_refused(&server, "/hello.txt::$DATA");
}

#[test]
fn traversal_nul_bytes() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_refused(&server, "/..%00/secret.txt");
    assert_refused(&server, "/hello.txt%00.png");
    assert_refused(&server, "/%00");
}

#[test]
fn traversal_overlong_utf8() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_refused(&server, "/%c0%ae%c0%ae/secret.txt");
    assert_refused(&server, "/%c0%af..%c0%afsecret.txt");
    assert_refused(&server, "/%e0%80%ae%e0%80%ae/secret.txt");
}

#[test]
fn traversal_dot_dot_after_a_valid_directory() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_refused(&server, "/sub/../../secret.txt");
    assert_refused(&server, "/sub/deeper/../../../secret.txt");
    assert_refused(&server, "/sub/%2e%2e/%2e%2e/secret.txt");
}

#[test]
fn traversal_dot_and_space_names() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    assert_refused(&server, "/.../secret.txt");
    assert_refused(&server, "/..%20/secret.txt");
    assert_refused(&server, "/.%20./secret.txt");
}

#[test]
fn traversal_through_the_raw_target_bytes() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    // Bytes a client should never send; whatever answers (the parser or the app), no secret.
    for target in [&b"/..\0/secret.txt"[..], b"/\xc0\xae\xc0\xae/secret.txt", b"/../secret.txt\t"] {
        let (status, everything) = raw_get(&server, target);
        assert!((400..500).contains(&status) || status == 0, "{status}");
        assert!(find(&everything, SECRET.as_bytes()).is_none());
    }
}

#[cfg(unix)]
#[test]
fn traversal_symlinks_leaving_the_root_are_not_followed_by_default() {
    let fixture = Fixture::new();
    std::os::unix::fs::symlink(fixture.base.join("secret.txt"), fixture.root.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(&fixture.base, fixture.root.join("escape-dir")).unwrap();
    std::os::unix::fs::symlink(fixture.base.join("secret.txt"), fixture.root.join("sub/index.html")).unwrap();
    let server = fixture.serve_with(|o| o.directory_listing = true);
    assert_refused(&server, "/escape.txt");
    assert_refused(&server, "/escape-dir/secret.txt");
    assert_refused(&server, "/escape-dir/");
    let r = get(&server, "/sub/");
    assert_eq!(r.status, 200, "an escaping index.html is ignored and the directory listed");
    assert!(!r.body_text().contains(SECRET) && !r.body_text().contains("index.html"), "{}", r.body_text());
    let html = get(&server, "/").body_text();
    assert!(!html.contains("escape"), "escaping symlinks are not listed: {html}");
}

#[cfg(unix)]
#[test]
fn symlinks_inside_the_root_are_followed() {
    let fixture = Fixture::new();
    std::os::unix::fs::symlink(fixture.root.join("hello.txt"), fixture.root.join("sub/link.txt")).unwrap();
    let server = fixture.serve();
    assert_eq!(get(&server, "/sub/link.txt").body_text(), "hello world\n");
}

#[cfg(unix)]
#[test]
fn symlinks_leaving_the_root_are_served_with_follow_symlinks() {
    let fixture = Fixture::new();
    std::os::unix::fs::symlink(fixture.base.join("secret.txt"), fixture.root.join("escape.txt")).unwrap();
    let server = fixture.serve_with(|o| o.follow_symlinks = true);
    let r = get(&server, "/escape.txt");
    assert_eq!((r.status, r.body_text().as_str()), (200, SECRET));
    assert_refused(&server, "/../secret.txt");
}

#[cfg(unix)]
#[test]
fn special_files_are_not_served() {
    let fixture = Fixture::new();
    // A FIFO would block a worker on open; it must be refused before that.
    let status = std::process::Command::new("mkfifo").arg(fixture.root.join("pipe")).status();
    if !status.is_ok_and(|s| s.success()) {
        return;
    }
    let server = fixture.serve();
    assert_eq!(get(&server, "/pipe").status, 404);
}

#[test]
fn options_asterisk_is_answered_with_the_methods_served() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    let r = request(&server, "OPTIONS", "*", "");
    assert_eq!((r.status, r.header("allow"), r.header("content-length")), (200, Some("GET, HEAD"), Some("0")));
    assert_eq!(request(&server, "OPTIONS", "/hello.txt", "").status, 405);
}

// ---- the file cache and the I/O loop's fast path ----

/// The static app with a route, `/hold`, that keeps the server's only worker until the test
/// lets go: whatever is answered meanwhile was answered on the I/O loop.
#[cfg(unix)]
struct HeldWorker {
    files: StaticFiles,
    entered: std::sync::mpsc::SyncSender<()>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

#[cfg(unix)]
impl maitred::Handler for HeldWorker {
    fn handle(&self, request: maitred::Request) -> maitred::Response {
        if request.path() == "/hold" {
            self.entered.send(()).unwrap();
            let _ = self.release.lock().unwrap().recv_timeout(IO_TIMEOUT);
            return maitred::Response::text(200, "held");
        }
        self.files.handle(request)
    }

    fn responds_on_loop(&self) -> bool {
        true
    }

    fn respond_on_loop(&self, request: &maitred::Request) -> Option<maitred::Response> {
        if request.path() == "/hold" {
            return None;
        }
        self.files.respond_on_loop(request)
    }
}

/// Waits (bounded) until `path` last changed more than the cache's settle time (1 s) ago, so
/// the cache may keep it.
#[cfg(unix)]
fn wait_until_settled(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let changed = fs::metadata(path).unwrap().ctime();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        if now - changed >= 2 {
            return;
        }
        assert!(Instant::now() < deadline, "the clock did not move past the file's change time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
#[test]
fn cached_files_are_answered_on_the_loop_and_a_changed_file_never_is() {
    let fixture = Fixture::new();
    fixture.write("settled.txt", b"first version\n");
    // Larger than the cache holds in memory: served from the file, opened again each time.
    let large: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    fixture.write("large.bin", &large);
    wait_until_settled(&fixture.root.join("settled.txt"));
    wait_until_settled(&fixture.root.join("large.bin"));
    let (entered_tx, entered) = std::sync::mpsc::sync_channel(1);
    let (release, release_rx) = std::sync::mpsc::channel();
    let app = HeldWorker {
        files: StaticFiles::new(fixture.options()).unwrap(),
        entered: entered_tx,
        release: std::sync::Mutex::new(release_rx),
    };
    let server = TestServer::with_config(|c| c.threads = 1, app);

    // First request: a worker reads the file into the cache.
    let first = get(&server, "/settled.txt");
    assert_eq!((first.status, first.body_text().as_str()), (200, "first version\n"));
    assert_eq!(get(&server, "/large.bin").body, large);
    let etag = first.header("etag").unwrap().to_string();

    // The only worker is held: every answer now comes from the loop, exactly as a worker's.
    let mut held = server.client();
    held.send("GET /hold HTTP/1.1\r\nHost: test\r\n\r\n");
    entered.recv_timeout(IO_TIMEOUT).expect("the worker took /hold");
    let cached = get(&server, "/settled.txt");
    assert_eq!((cached.status, cached.body_text().as_str()), (200, "first version\n"));
    for name in ["etag", "last-modified", "content-type", "accept-ranges", "x-content-type-options"] {
        assert_eq!(cached.header(name), first.header(name), "{name}");
    }
    let part = get_with(&server, "/settled.txt", "Range: bytes=0-4\r\n");
    assert_eq!((part.status, part.body_text().as_str()), (206, "first"));
    assert_eq!(part.header("content-range"), Some("bytes 0-4/14"));
    let not_modified = get_with(&server, "/settled.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((not_modified.status, not_modified.header("etag")), (304, Some(etag.as_str())));
    let head = request(&server, "HEAD", "/settled.txt", "");
    assert_eq!((head.status, head.header("content-length")), (200, Some("14")));
    assert_eq!(get(&server, "/.env").status, 404, "refused by its URL alone, on the loop");
    let whole = get(&server, "/large.bin");
    assert_eq!((whole.status, whole.header("content-length")), (200, Some("40000")));
    assert!(whole.body == large, "the large file, byte-exact, from the loop");
    let tail = get_with(&server, "/large.bin", "Range: bytes=39990-\r\n");
    assert_eq!((tail.status, tail.header("content-range")), (206, Some("bytes 39990-39999/40000")));
    assert_eq!(tail.body, &large[39990..]);

    // The file changes: the loop's stat sees it, and the request waits for the worker.
    fixture.write("settled.txt", b"second\n");
    let mut changed = server.client();
    changed.send("GET /settled.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    let closed = changed.closed_within(std::time::Duration::from_millis(300));
    assert!(!closed && changed.leftover().is_empty(), "no answer while the worker is held");
    release.send(()).unwrap();
    assert_eq!(held.response().body_text(), "held");
    let fresh = changed.response();
    assert_eq!((fresh.status, fresh.body_text().as_str()), (200, "second\n"));
    assert_ne!(fresh.header("etag"), Some(etag.as_str()));
}

#[test]
fn many_pipelined_requests_answered_on_the_loop_all_arrive_in_order() {
    let fixture = Fixture::new();
    let server = fixture.serve();
    // Refused by the URL alone, so answered on the loop: 27 bytes each, many per read.
    let mut client = server.client();
    let count = 990; // under max_requests_per_connection (1000)
    let mut burst = String::new();
    for i in 0..count {
        burst.push_str(&format!("GET /.hidden-{i:04} HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    client.send(burst);
    for i in 0..count {
        let response = client.response();
        assert_eq!(response.status, 404, "response {i}");
    }
    // The last one was answered on the same connection, which is still open.
    assert_eq!(get(&server, "/hello.txt").status, 200);
}
