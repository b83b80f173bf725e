//! Operating the server: health and metrics paths answered without the worker pool, the drain
//! delay, the config file, --check-config / --print-config and --healthcheck.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::child::{maitred_bin, ChildServer};
use common::*;
use maitred::{Request, Response};

fn get(client: &mut Client, path: &str) -> RawResponse {
    client.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    client.response()
}

#[test]
fn health_path_is_answered_while_every_worker_is_busy() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let server = TestServer::with_config(
        |c| {
            c.threads = 1;
            c.health_path = "/healthz".into();
        },
        move |_req: Request| {
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = release_rx.lock().unwrap().recv_timeout(Duration::from_secs(10));
            Response::text(200, "slow")
        },
    );
    let mut busy = server.client();
    busy.send("GET /work HTTP/1.1\r\nHost: x\r\n\r\n");
    while calls.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut probe = server.client();
    let started = Instant::now();
    let r = get(&mut probe, "/healthz");
    assert_eq!((r.status, r.body_text().as_str()), (200, "ok\n"));
    assert!(started.elapsed() < Duration::from_secs(2));
    // HEAD works too, and the connection stays usable.
    probe.send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(probe.head_response().status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the health path reached the handler");
    release_tx.send(()).unwrap();
    assert_eq!(busy.response().status, 200);
    // A POST to the health path is the application's business.
    probe.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    release_tx.send(()).unwrap();
    assert_eq!(probe.response().body_text(), "slow");
}

#[test]
fn metrics_count_requests_connections_and_bytes() {
    let server = TestServer::with_config(|c| c.metrics_path = "/metrics".into(), hello);
    let mut c = server.client();
    for _ in 0..3 {
        assert_eq!(get(&mut c, "/").status, 200);
    }
    let mut bad = server.client();
    bad.send("GET / HTTP/1.1\r\n\r\n"); // no Host: 400 from the server
    assert_eq!(bad.response().status, 400);
    let r = get(&mut c, "/metrics");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = r.body_text();
    let value = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("maitred_requests_total{class=\"2xx\",by=\"handler\"}"), 3.0);
    assert_eq!(value("maitred_requests_total{class=\"4xx\",by=\"server\"}"), 1.0);
    assert_eq!(value("maitred_request_duration_seconds_count"), 3.0);
    assert_eq!(value("maitred_connections_accepted_total"), 2.0);
    assert_eq!(value("maitred_worker_threads"), 4.0);
    assert!(value("maitred_received_bytes_total") > 100.0);
    assert!(value("maitred_sent_bytes_total") > 100.0);
    assert_eq!(value("maitred_draining"), 0.0);
}

#[test]
fn health_turns_503_at_once_and_listeners_close_after_the_drain_delay() {
    let mut server = ChildServer::spawn(&["--health-path", "/healthz", "--drain-delay", "1500ms"]);
    let mut c = Client::connect(server.addr);
    assert_eq!(get(&mut c, "/healthz").status, 200);
    let signalled = Instant::now();
    server.signal("TERM");
    // During the delay: health says 503, and new connections are still accepted and served.
    let mut during = None;
    while signalled.elapsed() < Duration::from_millis(1000) {
        let mut probe = Client::connect(server.addr);
        let r = get(&mut probe, "/healthz");
        if r.status == 503 {
            during = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let during = during.expect("health never turned 503");
    assert!(during.closes(), "a draining server closes connections: {}", during.head);
    assert!(signalled.elapsed() < Duration::from_millis(1200), "new connections were refused before the delay");
    let mut late = Client::connect(server.addr);
    assert_eq!(get(&mut late, "/").status, 200);
    let status = server.wait_exit(Duration::from_secs(10)).expect("exits after the delay");
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() >= Duration::from_millis(1400), "listeners closed before drain_delay");
}

fn maitred(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(maitred_bin()).args(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn print_config_output_is_a_config_file_that_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (code, printed, _) = maitred(&["--threads", "3", "--server-header", "x y", "--print-config"]);
    assert_eq!(code, Some(0));
    assert!(printed.contains("threads = 3\n") && printed.contains("server_header = \"x y\"\n"), "{printed}");
    let path = dir.path().join("maitred.toml");
    std::fs::write(&path, &printed).unwrap();
    let (code, reprinted, stderr) = maitred(&["--config", path.to_str().unwrap(), "--print-config"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(reprinted, printed);
}

#[test]
fn check_config_validates_and_names_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = maitred(&["--check-config"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("configuration ok"), "{out}");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "threads = 2\nnot_a_setting = true\n").unwrap();
    let (code, _, stderr) = maitred(&["--config", path.to_str().unwrap(), "--check-config"]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not_a_setting"), "{stderr}");
    let (code, _, stderr) = maitred(&["--config", "/no/such/maitred.toml"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("/no/such/maitred.toml"), "{stderr}");
}

#[test]
fn config_file_sits_below_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, "server_header = \"from-file\"\nthreads = 2\nlisten = [\"127.0.0.1:0\"]\n").unwrap();
    let mut cmd = Command::new(maitred_bin());
    cmd.args(["--config", path.to_str().unwrap()]);
    let server = ChildServer::spawn_command(cmd);
    let mut c = Client::connect(server.addr);
    assert_eq!(get(&mut c, "/").header("server"), Some("from-file"));
    assert_eq!(server.threads(), 2 + 5, "2 workers, I/O loop, acceptor, watchdog, main, signal thread");
    let mut cmd = Command::new(maitred_bin());
    cmd.args(["--config", path.to_str().unwrap(), "--server-header", "from-flag"])
        .env("MAITRED_SERVER_HEADER", "from-env");
    let server = ChildServer::spawn_command(cmd);
    let mut c = Client::connect(server.addr);
    assert_eq!(get(&mut c, "/").header("server"), Some("from-flag"));
    let mut cmd = Command::new(maitred_bin());
    cmd.args(["--config", path.to_str().unwrap()]).env("MAITRED_SERVER_HEADER", "from-env");
    let server = ChildServer::spawn_command(cmd);
    let mut c = Client::connect(server.addr);
    assert_eq!(get(&mut c, "/").header("server"), Some("from-env"));
}

#[test]
fn healthcheck_exits_zero_on_2xx_and_one_otherwise() {
    let server = ChildServer::spawn(&["--health-path", "/healthz"]);
    let url = format!("http://{}/healthz", server.addr);
    let (code, _, stderr) = maitred(&["--healthcheck", &url]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = maitred(&["--healthcheck", &format!("http://{}/missing", server.addr)]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("404"), "{stderr}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (code, _, stderr) = maitred(&["--healthcheck", &format!("http://{closed}/")]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[cfg(unix)]
#[test]
fn listens_on_a_unix_socket_replacing_a_stale_one_and_removes_it_on_exit() {
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maitred.sock");
    // A socket file left by a server that died.
    drop(UnixListener::bind(&path).unwrap());
    let mut cmd = Command::new(maitred_bin());
    cmd.args(["--listen", "127.0.0.1:0", "--listen", &format!("unix:{}", path.display())]);
    let mut server = ChildServer::spawn_command(cmd);
    let mut stream = UnixStream::connect(&path).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.write_all(b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    // The log is read by another thread: the line may land a moment after the answer.
    let line = format!("listening on unix:{}", path.display());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains(&line) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(server.log().contains(&line), "{}", server.log());
    // A second server cannot take a live socket.
    let (code, _, stderr) = maitred(&["--listen", &format!("unix:{}", path.display())]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("in use"), "{stderr}");
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(0));
    assert!(!path.exists(), "the socket file was left behind");
}

#[test]
fn drain_closes_a_silent_new_connection_after_a_grace_and_serves_one_whose_request_arrived() {
    // The request is held at its worker until the drain has begun, so it is in flight then
    // and its answer must say `close`. Unheld, the server could answer it before `shutdown`
    // is even called (the test thread preempted right after its send), rightly without
    // `close`: the assertion raced (1 failure in 25 runs under CPU load).
    let latch = Arc::new(Latch::default());
    let held = Arc::clone(&latch);
    let handler = move |req: Request| {
        held.enter_and_wait();
        hello(req)
    };
    let server = TestServer::with_config(|c| c.header_timeout = Duration::from_secs(30), handler);
    let mut silent = server.client();
    let mut sent = server.client();
    sent.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(latch.wait_entered(1, Duration::from_secs(5)), "the request never reached a worker");
    let started = Instant::now();
    server.handle().shutdown();
    latch.open();
    let r = sent.response();
    assert_eq!(r.status, 200);
    assert!(r.closes(), "{}", r.head);
    // A silent new connection gets a grace for its request, then is closed (not held for the
    // 30 s header timeout).
    assert!(silent.closed_within(Duration::from_secs(5)), "a silent connection held the drain");
    assert!(server.stop());
    assert!(started.elapsed() < Duration::from_secs(5), "the drain waited {:?}", started.elapsed());
}

#[test]
fn drain_answers_a_new_connection_whose_request_arrives_just_after_it_began() {
    // Regression: a process alone closed every silent connection the moment the drain reached
    // the loop, including one its client had just opened (a proxy's new upstream connection
    // taken from the backlog as the listeners closed) with the request on its way: the proxy
    // answered 502 for a POST it may not send again. Such a request is now answered, with
    // `Connection: close`, while a kept-alive idle connection still closes at once.
    let server = TestServer::with_config(|c| c.header_timeout = Duration::from_secs(30), hello);
    // Opened first, so the drain reaches it before the kept-alive connection below (the loop
    // visits its table in order): once that one is seen closed, this one's fate is decided.
    let mut fresh = server.client();
    std::thread::sleep(Duration::from_millis(200));
    let mut kept = server.client();
    kept.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = kept.response();
    assert_eq!(r.status, 200);
    assert!(!r.closes(), "{}", r.head);
    server.handle().shutdown();
    // The kept-alive connection closing shows the drain has reached the loop.
    assert!(kept.closed_within(Duration::from_secs(5)), "the idle kept-alive connection stayed open");
    fresh.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    let r = fresh.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.closes(), "answered without Connection: close during the drain: {}", r.head);
    assert!(server.stop());
}

#[test]
fn expose_tracebacks_puts_the_panic_message_in_the_500_only_when_asked() {
    let panics = |_req: Request| -> Response { panic!("secret detail 42") };
    let quiet = TestServer::start(panics);
    let mut c = quiet.client();
    let r = get(&mut c, "/");
    assert_eq!(r.status, 500);
    assert!(!r.body_text().contains("secret detail 42"), "{}", r.body_text());
    let open = TestServer::with_config(|c| c.expose_tracebacks = true, panics);
    let mut c = open.client();
    let r = get(&mut c, "/");
    assert_eq!(r.status, 500);
    assert!(r.body_text().contains("secret detail 42"), "{}", r.body_text());
}

#[cfg(unix)]
#[test]
fn log_level_flag_sets_the_error_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("m.sock");
    let run = |level: &str| -> String {
        let child = Command::new(maitred_bin())
            .args(["--listen", &format!("unix:{}", sock.display()), "--log-level", level])
            .arg(dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "the server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        common::child::signal_pid(child.id(), "TERM");
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let info = run("info");
    assert!(info.contains("listening on unix:"), "{info}");
    let warn = run("warn");
    assert!(!warn.contains("INFO"), "--log-level warn still logged INFO: {warn}");
}

/// A SIGTERM that arrives as soon as the listener accepts connections, while the server is
/// still starting its threads, drains it (exit 0) instead of killing the process: the signal
/// handler is installed before the server binds. Many worker threads widen that window.
#[cfg(unix)]
#[test]
fn sigterm_while_the_server_starts_drains_it_instead_of_killing_it() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("m.sock");
    for attempt in 0..3 {
        let mut child = Command::new(maitred_bin())
            .args(["--listen", &format!("unix:{}", sock.display()), "--threads", "512"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "the server did not come up");
            std::thread::yield_now();
        }
        common::child::signal_pid(child.id(), "TERM");
        let status = child.wait().unwrap();
        assert!(status.success(), "attempt {attempt}: {status:?}");
    }
}
