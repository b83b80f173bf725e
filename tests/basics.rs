//! Basic request/response behaviour over real sockets.
mod common;
use common::*;

#[test]
fn get_is_echoed_with_content_length_and_date() {
    let server = TestServer::start(echo);
    let mut c = server.client();
    c.send("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.framing, "length");
    assert_eq!(r.body_text(), "GET /a?b=c\n\n");
    assert_eq!(r.header("server"), Some("maitred"));
    assert_eq!(r.header("date").map(str::len), Some(29));
    assert!(!r.closes());
}
