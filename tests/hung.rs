//! Hung handlers in one process: a call past `worker_timeout` is reported with its method and
//! path, and the health path answers 503 while every worker thread is stuck, 200 again once one
//! is free.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::{Latch, TestServer};
use maitred::{Request, Response};

/// Every log line of this test binary (the servers run in this process).
fn log_lines() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            log_lines().lock().unwrap().push(format!("{} {}: {}", record.level(), record.target(), record.args()));
        }
    }
    fn flush(&self) {}
}

fn capture_log() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        log::set_logger(&Capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// Waits up to `within` for a log line containing every one of `needles`.
fn wait_for_log(needles: &[&str], within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(line) = log_lines().lock().unwrap().iter().find(|l| needles.iter().all(|n| l.contains(n))) {
            return Some(line.clone());
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A handler whose `/hang...` paths wait on `latch` (at most 20 s: "never returns" as far as
/// the test is concerned) and whose other paths answer at once.
fn hanging(latch: Arc<Latch>) -> impl Fn(Request) -> Response + Send + Sync + 'static {
    move |request: Request| {
        if request.path().starts_with("/hang") {
            latch.enter_and_wait();
        }
        Response::text(200, "done\n")
    }
}

/// Sends `GET path` on a new connection from a thread; the answer is not awaited.
fn send_in_background(addr: std::net::SocketAddr, path: &str) -> thread::JoinHandle<()> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    thread::spawn(move || {
        let mut client = common::Client::connect(addr);
        client.send(request);
        let _ = client.try_response(false);
    })
}

fn get(server: &TestServer, path: &str) -> common::RawResponse {
    server.client().send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")).response()
}

#[test]
fn a_call_past_worker_timeout_is_reported_with_method_path_and_duration() {
    capture_log();
    let latch = Arc::new(Latch::default());
    let server = TestServer::with_config(
        |c| {
            c.worker_timeout = Duration::from_millis(300);
            c.metrics_path = "/metrics".into();
        },
        hanging(Arc::clone(&latch)),
    );
    let stuck = send_in_background(server.addr, "/hang/report-me?q=1");
    assert!(latch.wait_entered(1, Duration::from_secs(20)), "the request never reached the handler");
    let line = wait_for_log(&["GET /hang/report-me has been running for", "worker_timeout"], Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no timeout warning; log: {:?}", log_lines().lock().unwrap()));
    assert!(line.starts_with("WARN maitred::watchdog"), "{line}");
    assert!(!line.contains("q=1"), "the query string stays out of the log: {line}");
    // The other threads still serve, and the metric counts the one stuck call once.
    assert_eq!(get(&server, "/fine").status, 200);
    let metrics = get(&server, "/metrics").body_text();
    assert!(metrics.lines().any(|l| l == "maitred_handler_timeouts_total 1"), "{metrics}");
    latch.open();
    stuck.join().unwrap();
}

#[test]
fn worker_timeout_off_reports_nothing() {
    capture_log();
    let latch = Arc::new(Latch::default());
    let server = TestServer::with_config(|c| c.metrics_path = "/metrics".into(), hanging(Arc::clone(&latch)));
    let stuck = send_in_background(server.addr, "/hang/unlimited");
    assert!(latch.wait_entered(1, Duration::from_secs(20)));
    // Two watchdog ticks' worth of a slow call: far past nothing, and still no warning.
    thread::sleep(Duration::from_millis(500));
    let metrics = get(&server, "/metrics").body_text();
    assert!(metrics.lines().any(|l| l == "maitred_handler_timeouts_total 0"), "{metrics}");
    assert!(wait_for_log(&["/hang/unlimited"], Duration::ZERO).is_none());
    latch.open();
    stuck.join().unwrap();
}

/// The bound the README documents (`WEDGED_AFTER`), plus room for a loaded machine.
const WEDGED_WITHIN: Duration = Duration::from_secs(5 + 10);

#[test]
fn health_answers_503_while_every_thread_hangs_and_200_once_one_is_free() {
    capture_log();
    let latch = Arc::new(Latch::default());
    let server = TestServer::with_config(
        |c| {
            c.threads = 2;
            c.health_path = "/healthz".into();
            c.metrics_path = "/metrics".into();
        },
        hanging(Arc::clone(&latch)),
    );
    assert_eq!(get(&server, "/healthz").status, 200);
    let stuck: Vec<_> = (0..2).map(|i| send_in_background(server.addr, &format!("/hang/{i}"))).collect();
    assert!(latch.wait_entered(2, Duration::from_secs(20)), "both threads should be inside the handler");
    let hung_at = Instant::now();
    let answer = loop {
        let answer = get(&server, "/healthz");
        if answer.status != 200 || hung_at.elapsed() > WEDGED_WITHIN {
            break answer;
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answer.status, 503, "health still 200 {:?} after every thread hung", hung_at.elapsed());
    assert_eq!(answer.body_text(), "wedged\n");
    assert!(get(&server, "/metrics").body_text().lines().any(|l| l == "maitred_wedged 1"));
    assert!(wait_for_log(&["no worker thread has been free for 5s"], Duration::from_secs(10)).is_some());
    latch.open();
    for t in stuck {
        t.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&server, "/healthz").status != 200 {
        assert!(Instant::now() < deadline, "health stayed 503 after the threads were freed");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Threads that are all busy but keep finishing requests are not wedged: each request that
/// ends frees its thread, so a burst longer than the bound never turns the health path 503.
#[test]
fn a_busy_burst_of_short_requests_keeps_health_200() {
    capture_log();
    let server = TestServer::with_config(
        |c| {
            c.threads = 2;
            c.health_path = "/healthz".into();
        },
        |_request: Request| {
            thread::sleep(Duration::from_millis(20));
            Response::text(200, "short\n")
        },
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (addr, stop) = (server.addr, Arc::clone(&stop));
            thread::spawn(move || {
                let mut client = common::Client::connect(addr);
                let mut served = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && served < 2_000 {
                    let r = client.send("GET /work HTTP/1.1\r\nHost: x\r\n\r\n").response();
                    assert_eq!(r.status, 200);
                    served += 1;
                }
            })
        })
        .collect();
    // Longer than the wedge bound, with both threads busy all along.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(7) {
        let r = get(&server, "/healthz");
        assert_eq!(r.status, 200, "health turned {} after {:?} of short requests", r.status, start.elapsed());
        thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
}
