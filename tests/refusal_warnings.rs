//! Refusals the server answers itself are not silent at the default log level: one warning
//! naming the setting that refused, and a flood of them stays a few lines. (Its own test
//! binary: it installs a logger that captures every line.)

mod common;

use std::sync::Mutex;

use common::*;
use log::{Level, LevelFilter, Log, Metadata, Record};

/// Every warning line logged in this process.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Warn
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            LINES.lock().unwrap().push(format!("{} {}", record.target(), record.args()));
        }
    }

    fn flush(&self) {}
}

fn lines_naming(setting: &str) -> Vec<String> {
    LINES.lock().unwrap().iter().filter(|l| l.contains(setting)).cloned().collect()
}

#[test]
fn a_413_warns_once_naming_max_body_size_and_a_flood_stays_bounded() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(LevelFilter::Warn);
    let server = TestServer::with_config(|c| c.max_body_size = 1024, hello);
    let too_big = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n";

    let r = exchange(server.addr, too_big);
    assert_eq!(r[0].status, 413);
    let lines = lines_naming("max_body_size");
    assert_eq!(lines.len(), 1, "one warning for one 413: {lines:?}");
    assert!(lines[0].contains("413"), "{}", lines[0]);
    assert!(lines[0].contains("max_body_size = 1KiB"), "names the limit in force: {}", lines[0]);
    assert!(lines[0].contains("--max-body-size") && lines[0].contains("MAITRED_MAX_BODY_SIZE"), "{}", lines[0]);

    for _ in 0..100 {
        assert_eq!(exchange(server.addr, too_big)[0].status, 413);
    }
    let lines = lines_naming("max_body_size");
    assert!(lines.len() <= 2, "101 refusals gave {} lines (at most one per 10 s): {lines:?}", lines.len());
}
