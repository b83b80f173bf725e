//! Worker processes (`--workers`): the `maitred` binary as a supervisor of real worker
//! processes over real sockets. Crashes, recycling, reloads, scaling and the drain, each under
//! a bounded client load. Unix only (signals by PID, /proc).
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::child::{signal_pid, ChildServer};

/// What one keep-alive client saw.
#[derive(Debug)]
enum Outcome {
    /// A complete response with this status, this `Server` header and whether it closes.
    Response { status: u16, server: String, closes: bool },
    /// The connection ended before any byte of the response, on a connection that had served
    /// requests before: the server closed it as idle while the request was on its way. HTTP
    /// lets a client retry that (RFC 9112 §9.3.1); these tests count it as a failure all the
    /// same, since a draining worker process waits for the next request instead.
    ClosedWhileIdle,
    /// Anything else: a failed request.
    Failed(String),
}

/// One HTTP/1.1 GET on `stream`, reading exactly one response (Content-Length framed).
fn get_on(stream: &mut BufReader<TcpStream>, path: &str, reused: bool) -> Outcome {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    if let Err(e) = stream.get_mut().write_all(request.as_bytes()) {
        return if reused { Outcome::ClosedWhileIdle } else { Outcome::Failed(format!("send: {e}")) };
    }
    let mut line = String::new();
    match stream.read_line(&mut line) {
        Ok(0) if reused => return Outcome::ClosedWhileIdle,
        Err(e) if reused && e.kind() == std::io::ErrorKind::ConnectionReset => return Outcome::ClosedWhileIdle,
        Ok(0) => return Outcome::Failed("closed before the response".into()),
        Err(e) => return Outcome::Failed(format!("read: {e}")),
        Ok(_) => {}
    }
    let status: u16 = match line.split(' ').nth(1).and_then(|s| s.parse().ok()) {
        Some(s) => s,
        None => return Outcome::Failed(format!("bad status line {line:?}")),
    };
    let (mut length, mut server, mut closes) = (0usize, String::new(), false);
    loop {
        let mut header = String::new();
        match stream.read_line(&mut header) {
            Ok(0) => return Outcome::Failed("closed inside the head".into()),
            Err(e) => return Outcome::Failed(format!("read head: {e}")),
            Ok(_) => {}
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "server" => server = value.to_string(),
            "connection" => closes = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    if let Err(e) = stream.read_exact(&mut body) {
        return Outcome::Failed(format!("read body: {e}"));
    }
    Outcome::Response { status, server, closes }
}

fn connect(addr: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    Ok(BufReader::new(stream))
}

/// Keep-alive clients requesting `path` in a loop until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    servers: Arc<Mutex<Vec<String>>>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    /// `clients` keep-alive connections, each reconnecting after a `Connection: close`.
    fn start(addr: SocketAddr, path: &'static str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let servers = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..clients)
            .map(|_| {
                let (stop, ok, failures, servers) =
                    (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failures), Arc::clone(&servers));
                thread::spawn(move || {
                    let mut conn: Option<(BufReader<TcpStream>, bool)> = None;
                    while !stop.load(Ordering::SeqCst) {
                        let (stream, reused) = match conn.as_mut() {
                            Some((s, reused)) => (s, *reused),
                            None => match connect(addr) {
                                Ok(s) => (&mut conn.insert((s, false)).0, false),
                                Err(e) => {
                                    failures.lock().unwrap().push(format!("connect: {e}"));
                                    thread::sleep(Duration::from_millis(20));
                                    continue;
                                }
                            },
                        };
                        match get_on(stream, path, reused) {
                            Outcome::Response { status: 200, server, closes } => {
                                ok.fetch_add(1, Ordering::SeqCst);
                                let mut seen = servers.lock().unwrap();
                                if !seen.contains(&server) {
                                    seen.push(server);
                                }
                                conn = if closes { None } else { conn.map(|(s, _)| (s, true)) };
                            }
                            Outcome::Response { status, .. } => {
                                failures.lock().unwrap().push(format!("status {status}"));
                                conn = None;
                            }
                            Outcome::ClosedWhileIdle => {
                                failures.lock().unwrap().push("closed while idle".into());
                                conn = None;
                            }
                            Outcome::Failed(why) => {
                                failures.lock().unwrap().push(why);
                                conn = None;
                            }
                        }
                    }
                })
            })
            .collect();
        Load { stop, ok, failures, servers, clients }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `more` responses beyond now have succeeded (at most `within`).
    fn wait_more(&self, more: u64, within: Duration) -> bool {
        let target = self.ok() + more;
        wait_for(within, || self.ok() >= target)
    }

    /// Stops the clients; returns (successes, failures, `Server` headers seen).
    fn finish(self) -> (u64, Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            client.join().unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        let servers = self.servers.lock().unwrap().clone();
        (self.ok.load(Ordering::SeqCst), failures, servers)
    }
}

/// Polls `condition` every 20 ms until it holds or `within` passes.
fn wait_for(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of the log naming a started worker: (id, pid).
fn started_workers(log: &str) -> Vec<(u64, u32)> {
    log.lines()
        .filter(|l| l.ends_with(") started"))
        .filter_map(|l| {
            let rest = l.split("worker ").nth(1)?;
            let (id, rest) = rest.split_once(" (pid ")?;
            let pid = rest.split(')').next()?;
            Some((id.parse().ok()?, pid.parse().ok()?))
        })
        .collect()
}

/// Worker processes alive now: children of `pid`.
fn live_workers(pid: u32) -> usize {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children.split_whitespace().count()
}

/// Requests each worker served, from the supervisor's "stopped after N requests" lines.
fn requests_per_worker(log: &str) -> Vec<u64> {
    log.lines().filter_map(|l| l.split("stopped after ").nth(1)?.split(' ').next()?.parse().ok()).collect()
}

fn spawn_workers(args: &[&str]) -> ChildServer {
    let server = ChildServer::spawn(args);
    std::fs::write(server.site.as_ref().unwrap().path().join("a.txt"), "hello\n").unwrap();
    server
}

/// 16 keep-alive connections of exactly 300 requests each: the supervisor hands the
/// connections out in turn, so each worker process serves 8 of them, 2,400 requests.
///
/// The test once let 16 clients run freely and asked each process for 35–65% of the requests.
/// That measured the CPU each process was given, not the spread: on a loaded CI machine one
/// process served 3,190 requests and the other 1,441 in a run of 0.1 s, on 8 connections each.
/// A fixed count per connection makes the share exact whatever the scheduler does.
#[test]
fn two_workers_share_the_connections_and_both_serve() {
    const CONNECTIONS: usize = 16;
    const PER_CONNECTION: u64 = 300;
    let mut server = spawn_workers(&["--workers", "2", "--threads", "2"]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    let addr = server.addr;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            thread::spawn(move || -> Result<(), String> {
                let mut stream = connect(addr).map_err(|e| format!("connect: {e}"))?;
                for n in 0..PER_CONNECTION {
                    match get_on(&mut stream, "/a.txt", n > 0) {
                        Outcome::Response { status: 200, closes: false, .. } => {}
                        other => return Err(format!("request {n}: {other:?}")),
                    }
                }
                Ok(())
            })
        })
        .collect();
    let failures: Vec<String> = clients.into_iter().filter_map(|c| c.join().unwrap().err()).collect();
    assert!(failures.is_empty(), "{failures:?}\n{}", server.log());
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(30)).expect("the supervisor exits after the drain");
    assert!(status.success(), "{status:?}\n{}", server.log());
    let log = server.log();
    let served = requests_per_worker(&log);
    let half = PER_CONNECTION * CONNECTIONS as u64 / 2;
    assert_eq!(served, [half, half], "{log}");
    assert!(log.contains("listening on http://") && log.ends_with("stopped"), "{log}");
}

/// Open connections per worker process, from the metrics path's per-worker gauges (as the
/// workers last reported them, at most about a second old).
fn open_per_worker(addr: SocketAddr) -> Vec<u64> {
    let Ok(mut stream) = connect(addr) else { return Vec::new() };
    let request = "GET /_metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let mut text = String::new();
    if stream.get_mut().write_all(request.as_bytes()).is_err() || stream.read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    text.lines()
        .filter(|l| l.starts_with("maitred_worker_process_open_connections{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// Workers used to accept on a shared listener: a burst of new connections went to whichever
/// process woke first (16 at once were seen to split 14/2 and 1/15), and keep-alive
/// connections never move, so one worker could hold all of them while the other idled. The
/// supervisor now hands each connection to the next worker in turn.
#[test]
fn a_burst_of_new_keep_alive_connections_is_spread_evenly_over_the_workers() {
    let server = spawn_workers(&["--workers", "2", "--threads", "2", "--metrics-path", "/_metrics"]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    for burst in 0..3 {
        let mut conns: Vec<_> = (0..16).map(|_| connect(server.addr).expect("connect")).collect();
        for conn in &mut conns {
            match get_on(conn, "/a.txt", false) {
                Outcome::Response { status: 200, .. } => {}
                other => panic!("burst {burst}: {other:?}"),
            }
        }
        // The gauges lag by up to a report and a cluster view (about 1 s); the metrics
        // request itself may be counted too.
        let mut open = Vec::new();
        let seen = wait_for(Duration::from_secs(10), || {
            open = open_per_worker(server.addr);
            open.len() == 2 && open.iter().sum::<u64>() >= 16
        });
        assert!(seen, "burst {burst}: per-worker open connections {open:?}\n{}", server.log());
        for n in &open {
            assert!((6..=11).contains(n), "burst {burst}: uneven spread {open:?}\n{}", server.log());
        }
        drop(conns);
        let closed = wait_for(Duration::from_secs(10), || open_per_worker(server.addr).iter().sum::<u64>() <= 1);
        assert!(closed, "burst {burst}: the connections were not seen closed\n{}", server.log());
    }
}

#[test]
fn a_worker_killed_by_sigkill_is_replaced_within_a_second_and_only_its_requests_fail() {
    let clients = 8;
    let mut server = spawn_workers(&["--workers", "2", "--threads", "2"]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    let load = Load::start(server.addr, "/a.txt", clients);
    assert!(load.wait_more(500, Duration::from_secs(60)));
    let (_, victim) = started_workers(&server.log())[0];
    signal_pid(victim, "KILL");
    let killed_at = Instant::now();
    assert!(
        wait_for(Duration::from_secs(10), || started_workers(&server.log()).len() == 3),
        "no replacement\n{}",
        server.log()
    );
    let replaced_in = killed_at.elapsed();
    assert!(load.wait_more(500, Duration::from_secs(60)), "serving did not go on after the kill");
    let (_, failures, _) = load.finish();
    // Only requests on the killed worker's connections may fail: one each at most, and the
    // clients then reconnect to a live worker.
    assert!(failures.len() <= clients, "{failures:?}");
    let log = server.log();
    assert!(
        log.contains(&format!("(pid {victim}) exited unexpectedly: killed by signal 9 (SIGKILL); replacing it")),
        "{log}"
    );
    // Replaced means the new worker said it accepts: under a second (logged line to line, on a
    // loaded machine the poll above adds its own 20 ms).
    assert!(replaced_in < Duration::from_millis(1000), "replaced after {replaced_in:?}\n{log}");
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).expect("exit").success());
    assert!(server.log().contains("workers replaced: crash 1"), "{}", server.log());
}

#[test]
fn max_requests_recycles_workers_under_load_without_a_failed_request() {
    let mut server =
        spawn_workers(&["--workers", "2", "--threads", "2", "--max-requests", "300", "--max-requests-jitter", "50"]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    let load = Load::start(server.addr, "/a.txt", 6);
    assert!(
        wait_for(Duration::from_secs(90), || started_workers(&server.log()).len() >= 6),
        "workers were not recycled\n{}",
        server.log()
    );
    let (ok, failures, _) = load.finish();
    // The server's log goes with a failure: whether a worker refused a handed connection ("the
    // server has stopped") tells a handoff race from a drain one.
    assert!(
        failures.is_empty(),
        "{} failed of {}: {failures:?}\n{}",
        failures.len(),
        ok + failures.len() as u64,
        server.log()
    );
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).expect("exit").success());
    let log = server.log();
    assert!(log.contains("(max_requests, after "), "{log}");
    // Each recycled worker answered at least max_requests before it was told to drain.
    for n in requests_per_worker(&log).iter().take(2) {
        assert!(*n >= 300, "{n} requests\n{log}");
    }
}

#[test]
fn sighup_reloads_the_config_file_under_load_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("maitred.toml");
    std::fs::write(&config, "server_header = \"first\"\n").unwrap();
    let mut server = spawn_workers(&["--workers", "2", "--threads", "2", "--config", config.to_str().unwrap()]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    let load = Load::start(server.addr, "/a.txt", 6);
    assert!(load.wait_more(300, Duration::from_secs(60)));
    std::fs::write(&config, "server_header = \"second\"\n").unwrap();
    server.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(30), || requests_per_worker(&server.log()).len() == 2),
        "the old workers were not drained\n{}",
        server.log()
    );
    assert!(load.wait_more(300, Duration::from_secs(60)), "serving did not go on after the reload");
    let (_, failures, servers) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(servers, ["first", "second"], "the new configuration was not served");
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).expect("exit").success());
    assert!(server.log().contains("workers replaced: reload 2"), "{}", server.log());
}

#[test]
fn sigttin_adds_a_worker_and_sigttou_removes_one() {
    let mut server = spawn_workers(&["--workers", "2", "--threads", "2"]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    assert_eq!(live_workers(server.pid()), 2);
    server.signal("TTIN");
    assert!(wait_for(Duration::from_secs(20), || live_workers(server.pid()) == 3), "{}", server.log());
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 3), "{}", server.log());
    // One at a time: two signals of a kind sent at once may arrive as one (Unix does not
    // queue them).
    server.signal("TTOU");
    assert!(wait_for(Duration::from_secs(30), || live_workers(server.pid()) == 2), "{}", server.log());
    server.signal("TTOU");
    assert!(wait_for(Duration::from_secs(30), || live_workers(server.pid()) == 1), "{}", server.log());
    let load = Load::start(server.addr, "/a.txt", 2);
    assert!(load.wait_more(50, Duration::from_secs(30)));
    assert!(load.finish().1.is_empty());
    server.signal("TTOU");
    assert!(wait_for(Duration::from_secs(20), || server.log().contains("SIGTTOU ignored")), "{}", server.log());
    assert_eq!(live_workers(server.pid()), 1);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).expect("exit").success());
    assert!(server.log().contains("workers replaced: scale 2"), "{}", server.log());
}

#[test]
fn sigterm_lets_every_response_in_flight_complete_and_exits_0() {
    let mut server = spawn_workers(&["--workers", "2", "--threads", "2", "--send-buffer-size", "16KiB"]);
    let site = server.site.as_ref().unwrap().path().to_path_buf();
    let big: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(site.join("big.bin"), &big).unwrap();
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    // Eight downloads in flight: each has its head and a little of its body read, the rest is
    // still to be sent when the stop signal comes.
    let mut downloads = Vec::new();
    for _ in 0..8 {
        let mut stream = connect(server.addr).unwrap();
        stream.get_mut().write_all(b"GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let mut first = String::new();
        stream.read_line(&mut first).unwrap();
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        downloads.push(stream);
    }
    server.signal("TERM");
    let readers: Vec<_> = downloads
        .into_iter()
        .map(|mut stream| {
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(300));
                let mut rest = Vec::new();
                stream.read_to_end(&mut rest).map(|_| rest)
            })
        })
        .collect();
    for reader in readers {
        let rest = reader.join().unwrap().expect("the download completes");
        let at = rest.windows(4).position(|w| w == b"\r\n\r\n").expect("the head ends") + 4;
        assert_eq!(rest.len() - at, big.len(), "a whole body");
        assert!(rest[at..] == big[..], "the right bytes");
    }
    let status = server.wait_exit(Duration::from_secs(30)).expect("exit after the drain");
    assert!(status.success(), "{status:?}\n{}", server.log());
}

#[test]
fn workers_share_a_unix_socket_whose_file_outlives_a_replaced_worker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sock");
    let listen = format!("unix:{}", path.display());
    let mut server =
        spawn_workers(&["--workers", "2", "--threads", "2", "--listen", &listen, "--metrics-path", "/_metrics"]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    let get_path = |target: &str| {
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let get = || get_path("/a.txt");
    assert!(get().ends_with("\r\n\r\nhello\n"));
    let (_, victim) = started_workers(&server.log())[0];
    // Drains that worker alone: its next report says so, and the supervisor stops handing it
    // connections and replaces it.
    signal_pid(victim, "TERM");
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 3), "{}", server.log());
    assert!(
        wait_for(Duration::from_secs(20), || server.log().contains(&format!("(pid {victim}) stopped after "))),
        "the signalled worker exits once the supervisor closed its input\n{}",
        server.log()
    );
    assert!(
        server.log().contains(&format!("(pid {victim}) is draining on its own (a stop signal)")),
        "{}",
        server.log()
    );
    // Counted as a replacement for a signal, not as a crash (the metrics reach every worker
    // with the next cluster view, about a second later).
    let counted = |m: &str| {
        m.contains("maitred_worker_restarts_total{reason=\"signal\"} 1\n")
            && m.contains("maitred_worker_restarts_total{reason=\"crash\"} 0\n")
    };
    assert!(wait_for(Duration::from_secs(20), || counted(&get_path("/_metrics"))), "{}", get_path("/_metrics"));
    assert!(path.exists(), "a worker's exit removed the supervisor's socket file");
    for _ in 0..10 {
        assert!(get().ends_with("\r\n\r\nhello\n"));
    }
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).expect("exit").success());
    assert!(!path.exists(), "the supervisor removes its socket file when it stops");
}

#[test]
fn a_second_stop_signal_kills_the_workers_at_once() {
    let mut server = spawn_workers(&["--workers", "2", "--threads", "2", "--drain-delay", "20s"]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    let pids: Vec<u32> = started_workers(&server.log()).iter().map(|(_, pid)| *pid).collect();
    server.signal("TERM");
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("draining 2 workers")));
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10)).expect("a second signal stops at once");
    assert_eq!(status.code(), Some(1), "{}", server.log());
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "worker {pid} still runs");
    }
}

#[test]
fn a_worker_over_max_worker_memory_is_replaced_gracefully() {
    // Every process is over 1 MiB resident: each worker is replaced after its first report,
    // and the clients never see it.
    let mut server = spawn_workers(&["--workers", "2", "--threads", "2", "--max-worker-memory", "1MiB"]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() >= 2), "{}", server.log());
    let load = Load::start(server.addr, "/a.txt", 4);
    assert!(
        wait_for(Duration::from_secs(60), || started_workers(&server.log()).len() >= 5),
        "workers were not replaced\n{}",
        server.log()
    );
    let (ok, failures, _) = load.finish();
    assert!(ok > 0 && failures.is_empty(), "{ok} ok, {failures:?}");
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).expect("exit").success());
    assert!(server.log().contains("(memory, after "), "{}", server.log());
}

#[test]
fn workers_drain_and_exit_when_their_supervisor_is_killed() {
    let mut server = spawn_workers(&["--workers", "2", "--threads", "2"]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    let pids: Vec<u32> = started_workers(&server.log()).iter().map(|(_, pid)| *pid).collect();
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10)).expect("killed");
    // The end of their input is the supervisor gone: each drains (nothing in flight) and exits.
    for pid in pids {
        let gone = wait_for(Duration::from_secs(30), || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for whoever inherited it.
            stat.is_empty() || stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z'))
        });
        assert!(gone, "worker {pid} still runs without its supervisor");
    }
}

#[test]
fn access_log_lines_of_every_worker_reach_stdout_whole() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("a.txt"), "hello\n").unwrap();
    let mut child = std::process::Command::new(common::child::maitred_bin())
        .args(["--listen", "127.0.0.1:0", "--workers", "2", "--threads", "2", "--access-log", "json"])
        .arg(site.path())
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let mut addr = None;
    let mut started = 0;
    while addr.is_none() || started < 2 {
        let line = log_rx.recv_timeout(Duration::from_secs(30)).expect("the supervisor's start-up lines");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            addr = Some(rest.trim().parse::<SocketAddr>().unwrap());
        }
        started += usize::from(line.ends_with(") started"));
    }
    let load = Load::start(addr.unwrap(), "/a.txt", 8);
    assert!(load.wait_more(3000, Duration::from_secs(60)));
    let (ok, failures, _) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    signal_pid(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
    let lines = lines.join().unwrap();
    // One JSON object per line, one line per response, from both workers' streams at once.
    assert_eq!(lines.len() as u64, ok, "a line per request");
    for line in &lines {
        let record: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert_eq!(record["status"], 200, "{line}");
    }
}

#[test]
fn after_the_drain_delay_a_stopping_cluster_refuses_new_clients() {
    let mut server = spawn_workers(&["--workers", "2", "--threads", "2", "--graceful-timeout", "20s"]);
    assert!(wait_for(Duration::from_secs(20), || started_workers(&server.log()).len() == 2), "{}", server.log());
    // A download in flight keeps one worker draining for a while.
    let big: Vec<u8> = vec![b'x'; 8 << 20];
    std::fs::write(server.site.as_ref().unwrap().path().join("big.bin"), &big).unwrap();
    let mut slow = connect(server.addr).unwrap();
    slow.get_mut().write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut first = String::new();
    slow.read_line(&mut first).unwrap();
    server.signal("TERM");
    // Once both workers closed their listeners, nobody holds the socket: refused, not queued.
    assert!(
        wait_for(Duration::from_secs(10), || TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).is_err()),
        "new connections still accepted into the backlog\n{}",
        server.log()
    );
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest).unwrap();
    assert!(rest.len() > big.len(), "the download in flight completes");
    assert!(server.wait_exit(Duration::from_secs(30)).expect("exit").success());
}
