//! Faults the server must survive: handler panics, worker hooks, clients that vanish at every
//! stage, graceful shutdown (in flight, queued, idle, new, and a drain that times out), a
//! constant thread count under many connections, and running out of file descriptors.
mod common;

use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use maitred::{Config, Handler, Request, Response};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn base(c: &mut Config) {
    c.graceful_timeout = ms(1500);
    c.linger_timeout = ms(300);
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

fn response_within(c: &mut Client, within: Duration) -> io::Result<RawResponse> {
    c.stream.set_read_timeout(Some(within)).unwrap();
    let r = c.try_response(false);
    c.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    r
}

/// A request on a new connection answered 200 within a few seconds.
fn assert_serves(server: &TestServer, what: &str) {
    let mut c = server.client();
    c.send(get("/"));
    match response_within(&mut c, Duration::from_secs(3)) {
        Ok(r) => assert_eq!(r.status, 200, "{what}: {}", r.head),
        Err(e) => panic!("{what}: no response: {e}"),
    }
}

/// `/block` waits on the latch; `/never` counts calls (it must never be reached); the rest echo.
fn app(latch: Arc<Latch>, never: Arc<AtomicUsize>) -> impl Fn(Request) -> Response + Send + Sync + 'static {
    move |req: Request| {
        match req.path() {
            "/block" => latch.enter_and_wait(),
            "/never" => {
                never.fetch_add(1, Ordering::SeqCst);
            }
            "/panic" => panic!("handler panic on purpose (tests/faults.rs)"),
            _ => {}
        }
        echo(req)
    }
}

fn one_worker(c: &mut Config) {
    base(c);
    c.threads = 1;
}

// ---------------------------------------------------------------------------------------------
// Handler panics and worker hooks
// ---------------------------------------------------------------------------------------------

#[test]
fn handler_panic_gets_500_and_the_worker_lives_on() {
    let server = TestServer::with_config(one_worker, app(Arc::default(), Arc::default()));
    for round in 0..3 {
        let mut c = server.client();
        c.send(get("/panic"));
        let r = c.response();
        assert_eq!(r.status, 500, "round {round}: {}", r.head);
        assert_eq!(r.framing, "length");
        // An error the server produced itself: Connection: close, and the connection ends.
        assert!(r.closes(), "round {round}: {}", r.head);
        assert_eq!(watch_close(&c.stream, Duration::from_secs(2)), CloseWatch::Closed);
        // The only worker survived: the next request is served.
        let mut c = server.client();
        c.send(get("/ok"));
        let r = response_within(&mut c, Duration::from_secs(3)).expect("the only worker died with the handler");
        assert_eq!(r.status, 200, "round {round}: {}", r.head);
        assert_eq!(r.body_text(), "GET /ok\n\n");
    }
}

#[derive(Default)]
struct HookLog {
    starts: Mutex<Vec<usize>>,
    stops: Mutex<Vec<usize>>,
    handled_by_unstarted: AtomicUsize,
}

struct Hooked(Arc<HookLog>);

impl Handler for Hooked {
    fn handle(&self, request: Request) -> Response {
        let name = thread::current().name().unwrap_or_default().to_string();
        let index: Option<usize> = name.strip_prefix("maitred-worker-").and_then(|n| n.parse().ok());
        if index.is_none_or(|i| !self.0.starts.lock().unwrap().contains(&i)) {
            self.0.handled_by_unstarted.fetch_add(1, Ordering::SeqCst);
        }
        echo(request)
    }

    fn on_worker_start(&self, worker: usize) {
        self.0.starts.lock().unwrap().push(worker);
    }

    fn on_worker_stop(&self, worker: usize) {
        self.0.stops.lock().unwrap().push(worker);
    }
}

#[test]
fn worker_hooks_run_once_per_worker() {
    let log = Arc::new(HookLog::default());
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.threads = 3;
        },
        Hooked(Arc::clone(&log)),
    );
    for _ in 0..10 {
        assert_serves(&server, "hooked handler");
    }
    assert!(log.stops.lock().unwrap().is_empty(), "on_worker_stop ran while the server was running");
    assert!(server.stop(), "stop() reported a worker still busy");
    let mut starts = log.starts.lock().unwrap().clone();
    let mut stops = log.stops.lock().unwrap().clone();
    starts.sort_unstable();
    stops.sort_unstable();
    assert_eq!(starts, vec![0, 1, 2], "on_worker_start calls");
    assert_eq!(stops, vec![0, 1, 2], "on_worker_stop calls");
    assert_eq!(log.handled_by_unstarted.load(Ordering::SeqCst), 0, "a request ran before on_worker_start");
}

// ---------------------------------------------------------------------------------------------
// Clients that go away
// ---------------------------------------------------------------------------------------------

#[test]
fn client_gone_mid_head_leaves_the_server_serving() {
    let never = Arc::new(AtomicUsize::new(0));
    let server = TestServer::with_config(one_worker, app(Arc::default(), Arc::clone(&never)));
    // Half-closes mid-head: the server closes its side too, and answers nothing.
    let mut c = server.client();
    c.send("GET /never HTTP/1.1\r\nHo");
    c.shutdown_write();
    assert_eq!(watch_close(&c.stream, Duration::from_secs(3)), CloseWatch::Closed);
    // Drops the socket mid-head.
    for _ in 0..20 {
        let mut c = server.client();
        c.send("GET /never HTTP/1.1\r\nHost: x\r\nX-Partial: ab");
    }
    assert_serves(&server, "after clients vanished mid-head");
    assert_eq!(never.load(Ordering::SeqCst), 0, "an incomplete request reached the handler");
}

#[test]
fn client_gone_mid_body_leaves_the_server_serving() {
    let never = Arc::new(AtomicUsize::new(0));
    let server = TestServer::with_config(
        |c| {
            one_worker(c);
            c.body_spool_threshold = 1024;
        },
        app(Arc::default(), Arc::clone(&never)),
    );
    let mut c = server.client();
    c.send("POST /never HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789");
    c.shutdown_write();
    assert_eq!(watch_close(&c.stream, Duration::from_secs(3)), CloseWatch::Closed);
    for body in [10usize, 5000] {
        for _ in 0..10 {
            // 5000 of 100000 bytes: already spooled to a file when the client vanishes.
            let mut c = server.client();
            c.send("POST /never HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
            c.send(vec![b'b'; body]);
        }
        let mut c = server.client();
        c.send("POST /never HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc");
    }
    assert_serves(&server, "after clients vanished mid-body");
    assert_eq!(never.load(Ordering::SeqCst), 0, "an incomplete body reached the handler");
}

#[test]
fn client_gone_while_its_request_is_handled_frees_the_worker() {
    let latch = Arc::new(Latch::default());
    let server = TestServer::with_config(one_worker, app(Arc::clone(&latch), Arc::default()));
    let mut c = server.client();
    c.send(get("/block"));
    assert!(latch.wait_entered(1, Duration::from_secs(5)), "handler never started");
    drop(c);
    thread::sleep(ms(50));
    latch.open();
    // The response has nowhere to go; it is dropped and the only worker takes the next request.
    for i in 0..3 {
        assert_serves(&server, &format!("request {i} after a client vanished mid-handling"));
    }
    // The same with a large response that cannot be written at all.
    let latch2 = Arc::new(Latch::default());
    let l2 = Arc::clone(&latch2);
    let server2 = TestServer::with_config(one_worker, move |req: Request| {
        if req.path() == "/big" {
            l2.enter_and_wait();
            return Response::new(200).with_body(vec![b'x'; 8 << 20]);
        }
        echo(req)
    });
    let mut c = server2.client();
    c.send(get("/big"));
    assert!(latch2.wait_entered(1, Duration::from_secs(5)));
    drop(c);
    latch2.open();
    assert_serves(&server2, "after a large response to a vanished client");
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------------------------

fn drain_config(c: &mut Config) {
    base(c);
    c.threads = 2;
    c.graceful_timeout = Duration::from_secs(5);
}

#[test]
fn drain_answers_the_in_flight_request_with_connection_close() {
    let latch = Arc::new(Latch::default());
    let server = TestServer::with_config(drain_config, app(Arc::clone(&latch), Arc::default()));
    let mut f = server.client();
    f.send(get("/block"));
    assert!(latch.wait_entered(1, Duration::from_secs(5)));
    server.handle().shutdown();
    thread::sleep(ms(100));
    latch.open();
    let r = f.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body_text(), "GET /block\n\n");
    assert!(r.closes(), "in-flight response during the drain lacks Connection: close:\n{}", r.head);
    assert_eq!(watch_close(&f.stream, Duration::from_secs(2)), CloseWatch::Closed);
    assert!(server.stop());
}

#[test]
fn drain_answers_queued_requests_with_connection_close() {
    let latch = Arc::new(Latch::default());
    let server = TestServer::with_config(
        |c| {
            drain_config(c);
            c.threads = 1;
        },
        app(Arc::clone(&latch), Arc::default()),
    );
    let mut a = server.client();
    a.send(get("/block"));
    assert!(latch.wait_entered(1, Duration::from_secs(5)));
    let mut b = server.client();
    b.send(get("/queued"));
    thread::sleep(ms(200));
    server.handle().shutdown();
    thread::sleep(ms(100));
    latch.open();
    assert_eq!(a.response().status, 200);
    let r = b.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body_text(), "GET /queued\n\n");
    assert!(r.closes(), "queued response during the drain lacks Connection: close:\n{}", r.head);
    assert_eq!(watch_close(&b.stream, Duration::from_secs(2)), CloseWatch::Closed);
    assert!(server.stop());
}

#[test]
fn drain_closes_idle_connections_at_once_and_refuses_new_ones() {
    let latch = Arc::new(Latch::default());
    let server = TestServer::with_config(drain_config, app(Arc::clone(&latch), Arc::default()));
    let addr = server.addr;
    let mut idle = server.client();
    idle.send(get("/idle"));
    assert!(!idle.response().closes());
    let mut f = server.client();
    f.send(get("/block"));
    assert!(latch.wait_entered(1, Duration::from_secs(5)));

    let began = Instant::now();
    server.handle().shutdown();
    // The idle keep-alive connection is closed at once, silently.
    assert_eq!(watch_close(&idle.stream, Duration::from_secs(2)), CloseWatch::Closed);
    assert!(began.elapsed() < Duration::from_secs(1), "idle connection closed only after {:?}", began.elapsed());
    // New connections are refused, or closed without a response.
    thread::sleep(ms(100));
    for i in 0..3 {
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut s = &stream;
            let _ = io::Write::write_all(&mut s, get("/new").as_bytes());
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            assert!(
                got.is_empty(),
                "new connection {i} answered during the drain: {:?}",
                String::from_utf8_lossy(&got)
            );
        }
    }
    // The in-flight request still completes.
    latch.open();
    let r = f.response();
    assert_eq!(r.status, 200);
    assert_eq!(watch_close(&f.stream, Duration::from_secs(2)), CloseWatch::Closed);
    let t = Instant::now();
    assert!(server.stop(), "stop() reported a worker still busy");
    assert!(t.elapsed() < Duration::from_secs(2), "stop() took {:?} with nothing left", t.elapsed());
}

#[test]
fn drain_gives_up_after_graceful_timeout() {
    let graceful = ms(300);
    let latch = Arc::new(Latch::default());
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.threads = 1;
            c.graceful_timeout = graceful;
        },
        app(Arc::clone(&latch), Arc::default()),
    );
    let mut f = server.client();
    f.send(get("/block"));
    assert!(latch.wait_entered(1, Duration::from_secs(5)));
    let began = Instant::now();
    let (tx, rx) = mpsc::channel();
    let stopper = thread::spawn(move || {
        let finished = server.stop();
        let _ = tx.send((finished, began.elapsed()));
    });
    // stop() waits for the drain (graceful_timeout), then at most a second for the workers.
    let outcome = rx.recv_timeout(graceful + Duration::from_secs(1) + Duration::from_secs(3));
    latch.open();
    let (finished, took) = outcome.expect("stop() did not return after graceful_timeout");
    stopper.join().unwrap();
    assert!(!finished, "stop() claimed every worker finished while one was still in the handler");
    assert!(took >= graceful - ms(50), "stop() returned after {took:?}, before graceful_timeout");
    // The request that could not finish: its connection is closed without a response.
    let rest = f.read_to_close();
    assert!(rest.is_empty(), "unexpected bytes: {:?}", String::from_utf8_lossy(&rest));
}

// ---------------------------------------------------------------------------------------------
// Threads: a fixed count whatever the load
// ---------------------------------------------------------------------------------------------

const CHILD_ENV: &str = "MAITRED_TEST_THREAD_COUNT_CHILD";

/// Thread counts are per process, and the other tests of this binary start and stop servers
/// in parallel; so the measurement runs alone in a child process (this binary, one test).
#[test]
fn thread_count_stays_workers_plus_two_under_200_connections() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["thread_count_child_process", "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child test");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "child test failed:\n{text}");
    assert!(text.contains("thread counts:"), "child did not measure:\n{text}");
}

/// The body of the test above; does nothing unless run by it.
#[test]
fn thread_count_child_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let before = thread_count();
    let server = TestServer::with_config(
        |c| {
            base(c);
            c.threads = 4;
        },
        hello,
    );
    let started = thread_count();
    // 4 workers, the I/O loop, the acceptor and the watchdog.
    assert_eq!(started, before + 4 + 3, "threads once started (before: {before})");
    let mut clients: Vec<Client> = (0..200).map(|_| server.client()).collect();
    for c in clients.iter_mut() {
        c.send(get("/"));
    }
    for c in clients.iter_mut() {
        assert_eq!(c.response().status, 200);
    }
    // And 200 more, pipelined on the same connections.
    for c in clients.iter_mut() {
        c.send(get("/again"));
    }
    let during = thread_count();
    for c in clients.iter_mut() {
        assert_eq!(c.response().status, 200);
    }
    let after = thread_count();
    drop(clients);
    assert!(server.stop());
    let mut stopped = thread_count();
    let deadline = Instant::now() + Duration::from_secs(2);
    while stopped != before && Instant::now() < deadline {
        thread::sleep(ms(20));
        stopped = thread_count();
    }
    println!("thread counts: before {before}, started {started}, during {during}, after {after}, stopped {stopped}");
    assert_eq!(during, started, "thread count changed with 200 open connections");
    assert_eq!(after, started, "thread count changed after 400 requests");
    assert_eq!(stopped, before, "threads left over after stop()");
}

// ---------------------------------------------------------------------------------------------
// Out of file descriptors
// ---------------------------------------------------------------------------------------------

/// Kills the child process on drop, so a failed assertion leaves nothing running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn running_out_of_file_descriptors_is_survived() {
    let bin = env!("CARGO_BIN_EXE_maitred");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n 40 && exec '{bin}' --listen 127.0.0.1:0 --threads 2"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the maitred binary");
    let mut child = Killed(child);
    let pid = child.0.id();
    // Read stderr on a thread for the whole test, so the server never blocks on a full pipe.
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr: SocketAddr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no 'listening on' line; stderr: {log:?}"));
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim().parse().expect("bound address");
        }
        log.push(line);
    };

    // About 60 connections against a limit of 40 descriptors: some are served, some wait in
    // the backlog, some may be refused or reset. All of that is fine.
    let mut peak = 0;
    let mut conns = Vec::new();
    for _ in 0..60 {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            s.set_read_timeout(Some(ms(100))).unwrap();
            let _ = io::Write::write_all(&mut &s, get("/").as_bytes());
            conns.push(s);
        }
        peak = peak.max(open_fds(pid));
    }
    for _ in 0..10 {
        thread::sleep(ms(100));
        peak = peak.max(open_fds(pid));
    }
    log.extend(rx.try_iter());
    println!("descriptors open at peak: {peak}; {} connections made; server log: {log:#?}", conns.len());
    let exhausted = peak >= 38 || log.iter().any(|l| l.contains("Too many open files") || l.contains("accept failed"));
    assert!(exhausted, "the server never ran out of descriptors (peak {peak} open); the test proves nothing");
    assert!(child.0.try_wait().unwrap().is_none(), "server died when it ran out of descriptors; stderr: {log:?}");
    drop(conns);

    // Once the clients are gone, a fresh request is served (the acceptor backs off up to 1 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    let served = loop {
        if Instant::now() > deadline {
            break false;
        }
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = io::Write::write_all(&mut &s, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut got = Vec::new();
            let _ = (&s).read_to_end(&mut got);
            last = String::from_utf8_lossy(&got).into_owned();
            if last.starts_with("HTTP/1.1 200 ") {
                break true;
            }
        }
        thread::sleep(ms(200));
    };
    log.extend(rx.try_iter());
    assert!(served, "no 200 after running out of descriptors; last reply {last:?}; stderr: {log:?}");
    assert!(child.0.try_wait().unwrap().is_none(), "server exited");
}
