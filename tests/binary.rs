//! The `maitred` binary as an operator meets it: signals, exit codes, errors, help, settings
//! from the environment, and the built-in page.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::child::{maitred_bin, signal_pid, ChildServer};
use common::*;

fn run_to_end(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(maitred_bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run maitred");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_clear_line(stderr: &str) {
    assert_eq!(stderr.trim_end().lines().count(), 1, "expected one line, got {stderr:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

fn drains_on(signal: &str) {
    let mut server = ChildServer::spawn(&[]);
    let mut c = Client::connect(server.addr);
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().status, 200);
    server.signal(signal);
    let status = server.wait_exit(Duration::from_secs(10)).expect("exit after the drain");
    assert_eq!(status.code(), Some(0), "log: {}", server.log());
    assert!(c.closed_within(Duration::from_secs(1)), "idle keep-alive connection left open");
    assert!(server.log().contains("stopped"), "{}", server.log());
    assert!(std::net::TcpStream::connect(server.addr).is_err(), "still accepting after exit");
}

#[test]
fn sigterm_drains_and_exits_zero() {
    drains_on("TERM");
}

#[test]
fn sigint_drains_and_exits_zero() {
    drains_on("INT");
}

#[test]
fn a_request_head_in_progress_is_answered_during_the_drain() {
    let mut server = ChildServer::spawn(&[]);
    let mut c = Client::connect(server.addr);
    c.send("GET / HTTP/1.1\r\nHost: x\r\n");
    // Make sure the server has the partial head before the signal.
    std::thread::sleep(Duration::from_millis(200));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    c.send("\r\n");
    let r = c.response();
    assert_eq!(r.status, 200);
    assert!(r.closes(), "a response during the drain must close: {}", r.head);
    assert_eq!(server.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(0));
}

#[test]
fn second_signal_stops_at_once() {
    let mut server = ChildServer::spawn(&["--header-timeout", "60s", "--graceful-timeout", "60s"]);
    // A partial head keeps the drain waiting (up to header_timeout).
    let mut c = Client::connect(server.addr);
    c.send("GET / HTTP/1.1\r\n");
    std::thread::sleep(Duration::from_millis(200));
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_millis(500)).is_none(), "exited before the drain finished");
    let sent = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(5)).expect("second signal must stop the process");
    assert_eq!(status.code(), Some(1));
    assert!(sent.elapsed() < Duration::from_secs(5));
}

#[test]
fn runs_as_pid_1_and_drains_on_sigterm() {
    // As PID 1 in a new PID namespace (as in a container), signals without a handler are
    // ignored by the kernel; the server must install its own and exit 0.
    let probe = Command::new("unshare").args(["--pid", "--fork", "--mount-proc", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipping: this machine cannot create a PID namespace (needs root and unshare)");
        return;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", maitred_bin(), "--listen", "127.0.0.1:0"]);
    let mut server = ChildServer::spawn_command(cmd);
    let unshare_pid = server.pid();
    let children = std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children")).unwrap();
    let pid: u32 = children.split_whitespace().next().expect("the server process").parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.split_whitespace().last() == Some("1"), "not PID 1 in its namespace: {nspid}");
    let mut c = Client::connect(server.addr);
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().status, 200);
    signal_pid(pid, "TERM");
    let exit = server.wait_exit(Duration::from_secs(10)).expect("PID 1 must stop on SIGTERM");
    assert_eq!(exit.code(), Some(0), "log: {}", server.log());
    assert!(server.log().contains("stopped"), "{}", server.log());
}

#[test]
fn unknown_flag_is_one_line_and_exit_2() {
    let (code, _, stderr) = run_to_end(&["--no-such-flag", "1"], &[]);
    assert_eq!(code, Some(2));
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
}

#[test]
fn bad_value_names_the_setting_and_exits_2() {
    let (code, _, stderr) = run_to_end(&["--threads", "lots"], &[]);
    assert_eq!(code, Some(2));
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("threads"), "{stderr}");
    let (code, _, stderr) = run_to_end(&[], &[("MAITRED_MAX_BODY_SIZE", "huge")]);
    assert_eq!(code, Some(2));
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("MAITRED_MAX_BODY_SIZE"), "{stderr}");
    let (code, _, stderr) = run_to_end(&["--max-header-line", "128KiB"], &[]);
    assert_eq!(code, Some(2), "conflicting settings");
    assert!(stderr.contains("max_header_line"), "{stderr}");
}

#[test]
fn port_in_use_is_one_line_and_exit_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = run_to_end(&["--listen", &addr], &[]);
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("already in use") && stderr.contains(&addr), "{stderr}");
}

#[test]
fn a_second_directory_is_refused() {
    let (code, _, stderr) = run_to_end(&[".", "somewhere"], &[]);
    assert_eq!(code, Some(2));
    assert_one_clear_line(&stderr);
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    let (code, stdout, _) = run_to_end(&["--help"], &[]);
    assert_eq!(code, Some(0));
    for setting in maitred::SETTINGS {
        assert!(stdout.contains(&setting.flag()), "--help lacks {}", setting.flag());
        assert!(stdout.contains(&setting.env_var()), "--help lacks {}", setting.env_var());
        assert!(
            stdout.contains(&format!("default {}", setting.default_text())),
            "--help lacks {}'s default",
            setting.name
        );
    }
}

#[test]
fn environment_variables_configure_the_server() {
    let mut cmd = Command::new(maitred_bin());
    cmd.args(["--listen", "127.0.0.1:0"]).env("MAITRED_SERVER_HEADER", "test-server/1").env("MAITRED_THREADS", "2");
    let server = ChildServer::spawn_command(cmd);
    let mut c = Client::connect(server.addr);
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().header("server"), Some("test-server/1"));
    // 2 workers + I/O loop + acceptor + watchdog + main + signal thread.
    assert_eq!(server.threads(), 7);
}

#[test]
fn binary_serves_the_directory_with_a_welcome_page_at_an_empty_root() {
    let server = ChildServer::spawn(&[]);
    let site = server.site.as_ref().unwrap().path();
    std::fs::write(site.join("hello.txt"), "hello file\n").unwrap();
    let mut c = Client::connect(server.addr);
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let page = c.response();
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.body_text().contains("maitred is running"));
    c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.head_response().header("content-length"), page.header("content-length"));
    c.send("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    let file = c.response();
    assert_eq!((file.status, file.body_text().as_str()), (200, "hello file\n"));
    assert!(file.header("content-type").unwrap().starts_with("text/plain"));
    c.send("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().status, 404);
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    // An index.html replaces the welcome page.
    std::fs::write(site.join("index.html"), "<p>mine</p>").unwrap();
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().body_text(), "<p>mine</p>");
}

#[test]
fn missing_directory_is_one_line_and_non_zero() {
    let (code, _, stderr) = run_to_end(&["/no/such/dir/for/maitred"], &[]);
    assert_eq!(code, Some(2));
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("/no/such/dir/for/maitred"), "{stderr}");
}

#[test]
fn download_in_flight_at_sigterm_completes_and_new_connections_are_refused() {
    use std::io::Read;
    let mut server = ChildServer::spawn(&[]);
    let big: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(server.site.as_ref().unwrap().path().join("big.bin"), &big).unwrap();
    let mut c = Client::connect(server.addr);
    c.send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    // Take the first bytes so the response is surely in flight, then signal.
    let mut first = [0u8; 4096];
    c.stream.read_exact(&mut first).unwrap();
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(std::net::TcpStream::connect(server.addr).is_err(), "a new connection was accepted after SIGTERM");
    let mut rest = Vec::new();
    c.stream.read_to_end(&mut rest).unwrap();
    let mut all = first.to_vec();
    all.extend_from_slice(&rest);
    let head_end = find(&all, b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&all[..head_end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    // The head left before the signal, so it could not announce the close; the body is whole.
    assert!(head.contains("Content-Length: 67108864\r\n"), "{head}");
    assert!(all[head_end..] == big[..], "the download was cut: {} of {} bytes", all.len() - head_end, big.len());
    assert_eq!(server.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(0));
}
