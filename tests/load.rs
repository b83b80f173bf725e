//! Load behaviour the design promises: idle and slow clients cost buffers, never workers;
//! the thread count is fixed; throughput with a slow handler is set by the pool size.
//!
//! Timings are bounded generously: these machines have 2 shared cores. The numbers measured
//! are printed (run with `--nocapture`) so a run can be quoted.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::child::ChildServer;
use common::*;
use maitred::{Request, Response};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// The load tests hold hundreds of sockets each: one at a time keeps the process under a
/// 1024-descriptor limit, and keeps their timings from disturbing each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens `n` keep-alive connections that each complete one request and then sit idle.
fn idle_connections(addr: std::net::SocketAddr, n: usize) -> Vec<Client> {
    (0..n)
        .map(|_| {
            let mut c = Client::connect(addr);
            c.send(GET);
            assert_eq!(c.response().status, 200);
            c
        })
        .collect()
}

#[test]
fn new_client_is_answered_promptly_beside_500_idle_and_64_dribbling_connections() {
    let _serial = one_at_a_time();
    let server = ChildServer::spawn(&["--threads", "4"]);
    let addr = server.addr;
    let threads_at_start = server.threads();
    let idle = idle_connections(addr, 500);

    // 64 clients dribble a request head one byte per second (never complete within the test).
    let stop = Arc::new(AtomicBool::new(false));
    let dribblers: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let dribble_stop = Arc::clone(&stop);
    let dribble = thread::spawn(move || {
        let head = b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for byte in head.iter().take(8) {
            for mut s in &dribblers {
                let _ = s.write_all(std::slice::from_ref(byte));
            }
            // Pacing the load, not synchronising: one byte per second per client.
            for _ in 0..10 {
                if dribble_stop.load(Ordering::SeqCst) {
                    return dribblers;
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        dribblers
    });
    thread::sleep(Duration::from_millis(1500));

    let mut latencies = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let mut c = Client::connect(addr);
        c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let r = c.response();
        latencies.push(started.elapsed());
        assert_eq!(r.status, 200);
        thread::sleep(Duration::from_millis(100));
    }
    let threads_under_load = server.threads();
    stop.store(true, Ordering::SeqCst);
    let dribblers = dribble.join().unwrap();

    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    eprintln!(
        "new-client latency beside 500 idle + 64 dribbling: median {median:?}, max {max:?}; threads {threads_at_start} -> {threads_under_load}"
    );
    assert!(median < Duration::from_millis(100), "median {median:?}: {latencies:?}");
    assert!(max < Duration::from_secs(1), "max {max:?}: {latencies:?}");
    assert_eq!(threads_under_load, threads_at_start, "the thread count changed under load");
    // Threads: 4 workers + I/O loop + acceptor + watchdog + main + the signal thread.
    assert_eq!(threads_at_start, 4 + 5);

    // The idle connections were kept, not dropped to make room.
    for mut c in idle.into_iter().step_by(50) {
        c.send(GET);
        assert_eq!(c.response().status, 200);
    }
    drop(dribblers);
}

#[test]
fn idle_connections_cost_little_memory_and_no_threads() {
    let _serial = one_at_a_time();
    let server = ChildServer::spawn(&["--threads", "4"]);
    let warm = idle_connections(server.addr, 10);
    drop(warm);
    let rss_before = server.rss_kib();
    let threads_before = server.threads();
    let idle = idle_connections(server.addr, 1000);
    let rss_after = server.rss_kib();
    let per_connection = (rss_after.saturating_sub(rss_before)) as f64 / 1000.0;
    eprintln!("RSS {rss_before} KiB -> {rss_after} KiB with 1000 idle connections: {per_connection:.2} KiB each");
    assert_eq!(server.threads(), threads_before);
    assert!(per_connection < 16.0, "{per_connection:.2} KiB per idle connection");
    drop(idle);
}

#[test]
fn slow_handler_throughput_is_set_by_the_pool_and_never_exceeds_it() {
    let _serial = one_at_a_time();
    const THREADS: usize = 4;
    const SLEEP: Duration = Duration::from_millis(50);
    const CLIENTS: usize = 100;
    const RUN: Duration = Duration::from_secs(3);

    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (a, p) = (Arc::clone(&active), Arc::clone(&peak));
    let server = TestServer::with_config(
        |c| c.threads = THREADS,
        move |_req: Request| {
            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            thread::sleep(SLEEP);
            a.fetch_sub(1, Ordering::SeqCst);
            Response::text(200, "slept")
        },
    );
    let addr = server.addr;
    let start = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                start.wait();
                let end = Instant::now() + RUN;
                let mut done = 0usize;
                while Instant::now() < end {
                    c.send(GET);
                    assert_eq!(c.response().status, 200);
                    done += 1;
                }
                done
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let total: usize = clients.into_iter().map(|t| t.join().unwrap()).sum();
    let elapsed = began.elapsed();
    let rate = total as f64 / elapsed.as_secs_f64();
    let ideal = THREADS as f64 / SLEEP.as_secs_f64();
    eprintln!(
        "slow handler: {total} requests in {elapsed:?} = {rate:.1}/s (ideal {ideal:.0}/s, {:.1}%), peak concurrency {}",
        100.0 * rate / ideal,
        peak.load(Ordering::SeqCst)
    );
    assert_eq!(peak.load(Ordering::SeqCst), THREADS, "handler calls at once");
    assert!(rate <= ideal * 1.02, "{rate:.1}/s is faster than {THREADS} threads can sleep");
    assert!(rate >= ideal * 0.8, "{rate:.1}/s is well under the pool's {ideal:.0}/s");
}

#[test]
fn a_request_is_not_held_behind_a_busy_worker_while_another_worker_is_idle() {
    // The dispatch queue wakes a second worker only once a job has waited a moment behind a
    // busy one (so a fast handler's burst stays on one awake worker); the loop must still
    // come back to wake it when nothing else happens: no other client, no timer.
    let _serial = one_at_a_time();
    let latch = Arc::new(Latch::default());
    let l = Arc::clone(&latch);
    let server = TestServer::with_config(
        |c| c.threads = 2,
        move |req: Request| {
            if req.path() == "/block" {
                l.enter_and_wait();
            }
            Response::text(200, req.path().to_string())
        },
    );
    let mut a = server.client();
    a.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(latch.wait_entered(1, Duration::from_secs(5)), "the first worker never started /block");
    let mut b = server.client();
    let sent = Instant::now();
    b.send(b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n");
    let quick = b.response();
    let waited = sent.elapsed();
    eprintln!("/quick answered after {waited:?} while /block held the other worker");
    assert_eq!(quick.status, 200);
    assert_eq!(quick.body_text(), "/quick");
    // (Without the loop coming back, the idle worker would find it only at its own 1 s wake-up.)
    assert!(waited < Duration::from_millis(500), "/quick waited {waited:?} for the idle worker");
    latch.open();
    let blocked = a.response();
    assert_eq!(blocked.status, 200);
    assert_eq!(blocked.body_text(), "/block");
}
