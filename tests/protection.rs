//! Protection under pressure, over real sockets: a table full of slow clients gives way to new
//! ones (least progress first) without resetting them, a keep-alive request waiting at the
//! drain is answered, and a queued request whose client reset is never run.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use maitred::{Config, Request, Response};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The repro: `--connection-limit 100 --header-timeout 5`.
fn hundred(c: &mut Config) {
    c.connection_limit = 100;
    c.header_timeout = Duration::from_secs(5);
    c.metrics_path = "/metrics".into();
}

/// `n` connections, each with half a request head sent.
fn half_heads(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let s = TcpStream::connect(addr).expect("connect");
            (&s).write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect()
}

/// Waits (bounded) until the server reports `n` open connections, through a connection that is
/// itself counted.
fn wait_open(addr: SocketAddr, n: usize) {
    wait_metric(addr, &format!("maitred_open_connections {n}\n"));
}

/// Waits (bounded) until the metrics text contains `line`.
fn wait_metric(addr: SocketAddr, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = get_metrics(addr);
        if metrics.contains(line) {
            return;
        }
        assert!(Instant::now() < deadline, "metrics never showed {line:?}:\n{metrics}");
        thread::sleep(ms(20));
    }
}

fn get_metrics(addr: SocketAddr) -> String {
    let r = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    r[0].body_text()
}

/// One fresh-connection GET; its latency, or the error (a reset shows here).
fn normal_request(addr: SocketAddr) -> io::Result<(u16, Duration)> {
    let began = Instant::now();
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    (&s).write_all(b"GET /normal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut got = Vec::new();
    (&s).read_to_end(&mut got)?;
    let text = String::from_utf8_lossy(&got);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| io::Error::other(format!("{text:?}")))?;
    Ok((status, began.elapsed()))
}

#[test]
fn a_cap_full_of_half_sent_heads_does_not_delay_a_new_client_by_more_than_100ms() {
    let server = TestServer::with_config(
        |c| {
            hundred(c);
            c.connection_limit = 50;
        },
        hello,
    );
    let heads = half_heads(server.addr, 49);
    wait_open(server.addr, 50); // 49 heads and the metrics request: the table is full
                                // Each new client stays open (kept alive) after its answer, so every one of them needs a
                                // place taken from a slow head.
    let mut kept = Vec::new();
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let began = Instant::now();
        let mut c = server.client();
        c.send(format!("GET /new{i} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let r = c.try_response(false).unwrap_or_else(|e| panic!("new client {i} failed: {e}"));
        let took = began.elapsed();
        assert_eq!(r.status, 200, "new client {i}");
        worst = worst.max(took);
        kept.push(c);
    }
    assert!(worst < ms(100), "a new client waited {worst:?} for a place held by a half-sent head");
    // The places came from the heads, oldest first; every new client kept its own.
    let cut = heads.iter().filter(|s| watch_close(s, ms(50)) == CloseWatch::Closed).count();
    assert!(cut >= 19, "only {cut} half-sent heads gave way to 20 new clients");
    for (i, c) in kept.iter_mut().enumerate() {
        c.send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.try_response(false).unwrap_or_else(|e| panic!("kept client {i} was cut: {e}"));
        assert_eq!(r.status, 200);
    }
    assert!(get_metrics(server.addr).contains("maitred_connections_evicted_total{reason=\"partial_head\"}"));
}

#[test]
fn no_new_client_is_reset_when_100_half_sent_heads_fill_the_cap() {
    let server = TestServer::with_config(hundred, hello);
    let _heads = half_heads(server.addr, 99);
    wait_open(server.addr, 100);
    // 20 normal clients at once, on fresh connections, as in the repro.
    let results: Vec<io::Result<(u16, Duration)>> = (0..20)
        .map(|_| {
            let addr = server.addr;
            thread::spawn(move || normal_request(addr))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let failed: Vec<String> = results.iter().filter_map(|r| r.as_ref().err().map(|e| e.to_string())).collect();
    assert!(failed.is_empty(), "{} of 20 normal requests failed: {failed:?}", failed.len());
    for r in &results {
        assert_eq!(r.as_ref().unwrap().0, 200);
    }
    let metrics = get_metrics(server.addr);
    assert!(!metrics.contains("maitred_connections_evicted_total{reason=\"partial_head\"} 0\n"), "{metrics}");
}

#[test]
fn a_cap_full_of_requests_at_workers_holds_a_new_client_and_cuts_none_of_them() {
    let latch = Arc::new(Latch::default());
    let l = Arc::clone(&latch);
    let server = TestServer::with_config(
        |c| {
            c.connection_limit = 4;
            c.threads = 4;
        },
        move |_req: Request| {
            l.enter_and_wait();
            Response::text(200, "done\n")
        },
    );
    let mut busy: Vec<Client> = (0..4)
        .map(|_| {
            let mut c = server.client();
            c.send(b"GET /busy HTTP/1.1\r\nHost: x\r\n\r\n");
            c
        })
        .collect();
    assert!(latch.wait_entered(4, Duration::from_secs(5)));
    let mut fifth = server.client();
    fifth.send(b"GET /fifth HTTP/1.1\r\nHost: x\r\n\r\n");
    fifth.stream.set_read_timeout(Some(ms(500))).unwrap();
    match fifth.try_response(false) {
        Ok(r) => panic!("5th client served while 4 requests (the cap) were at workers: {}", r.head),
        Err(e) => assert!(matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut), "{e}"),
    }
    latch.open();
    for (i, c) in busy.iter_mut().enumerate() {
        assert_eq!(c.try_response(false).unwrap_or_else(|e| panic!("busy client {i} was cut: {e}")).status, 200);
    }
    fifth.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(fifth.response().status, 200);
}

#[test]
fn a_keep_alive_request_waiting_at_the_drain_is_answered_with_connection_close() {
    let server = TestServer::with_config(
        |c| {
            c.drain_delay = Duration::ZERO;
            c.graceful_timeout = Duration::from_secs(5);
        },
        hello,
    );
    // Thirty kept-alive connections, each served once.
    let mut clients: Vec<Client> = (0..30)
        .map(|_| {
            let mut c = server.client();
            c.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
            assert!(!c.response().closes());
            c
        })
        .collect();
    // Their next requests go out together with the stop, so some are still in the kernel when
    // the drain reaches the loop: each must be read and answered, not closed unread.
    for c in &mut clients {
        c.send(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    server.handle().shutdown();
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.try_response(false).unwrap_or_else(|e| panic!("client {i}: request waiting at the drain lost: {e}"));
        assert_eq!(r.status, 200, "client {i}");
    }
    assert!(server.stop());
}

#[test]
fn a_queued_request_whose_client_reset_is_not_run() {
    let latch = Arc::new(Latch::default());
    let victims = Arc::new(AtomicUsize::new(0));
    let (l, v) = (Arc::clone(&latch), Arc::clone(&victims));
    let server = TestServer::with_config(
        |c| {
            c.threads = 1;
            c.metrics_path = "/metrics".into();
        },
        move |req: Request| {
            match req.path() {
                "/block" => l.enter_and_wait(),
                "/victim" => {
                    v.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
            Response::text(200, "ok\n")
        },
    );
    let mut blocker = server.client();
    blocker.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(latch.wait_entered(1, Duration::from_secs(5)));
    // The victim's request is complete and queued behind the blocked one; then its client
    // resets the connection (SO_LINGER 0).
    let victim = TcpStream::connect(server.addr).unwrap();
    (&victim).write_all(b"GET /victim HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    wait_metric(server.addr, "maitred_queue_depth 1\n"); // the victim's request is queued
    socket2::SockRef::from(&victim).set_linger(Some(Duration::ZERO)).unwrap();
    drop(victim);
    wait_open(server.addr, 2); // the loop saw the reset and closed the victim's connection
                               // A half-closed client with a complete request is not gone: its request runs.
    let mut half = server.client();
    half.send(b"GET /half HTTP/1.1\r\nHost: x\r\n\r\n");
    half.shutdown_write();
    latch.open();
    assert_eq!(blocker.response().status, 200);
    assert_eq!(half.response().status, 200, "a half-closed client's queued request must be answered");
    assert_eq!(victims.load(Ordering::SeqCst), 0, "the handler ran for a client that had reset");
    let metrics = get_metrics(server.addr);
    assert!(metrics.contains("maitred_requests_cancelled_total 1\n"), "{metrics}");
}

#[test]
fn a_new_connection_silent_for_a_second_gives_way_but_a_younger_one_does_not() {
    let server = TestServer::with_config(
        |c| {
            c.connection_limit = 5;
            c.metrics_path = "/metrics".into();
        },
        hello,
    );
    let mut silent: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
    wait_open(server.addr, 5); // four silent ones and the metrics request
    silent.push(TcpStream::connect(server.addr).unwrap()); // takes the metrics request's place
                                                           // Within the grace period nobody can be judged: the new client waits.
    let began = Instant::now();
    let mut waiting = server.client();
    waiting.send(b"GET /waiting HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = waiting.try_response(false).expect("the new client is served once a silent connection may be cut");
    assert_eq!(r.status, 200);
    assert!(
        began.elapsed() >= ms(300),
        "a silent connection younger than a second was cut after {:?}",
        began.elapsed()
    );
    let cut = silent.iter().filter(|s| watch_close(s, ms(50)) == CloseWatch::Closed).count();
    assert_eq!(cut, 1, "exactly one silent connection gives way to one new client");
}

/// The descriptor limit: the soft limit is raised to the hard one at start, and where even the
/// hard limit cannot hold `connection_limit` connections (two descriptors each, 64 kept in
/// reserve) the cap is lowered to fit, and the debug log says so.
#[cfg(target_os = "linux")]
#[test]
fn the_descriptor_limit_is_raised_and_the_cap_fitted_to_it() {
    use common::child::{maitred_bin, ChildServer};
    use std::process::Command;

    let spawn = |ulimit: &str| {
        let site = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit {ulimit} && RUST_LOG=maitred::server=debug exec \"$0\" \"$@\""))
            .arg(maitred_bin())
            .args(["--listen", "127.0.0.1:0"])
            .arg(site.path());
        (ChildServer::spawn_command(cmd), site)
    };
    let open_files = |pid: u32| -> (String, String) {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().to_string();
        let mut fields = line["Max open files".len()..].split_whitespace();
        (fields.next().unwrap().to_string(), fields.next().unwrap().to_string())
    };

    // Soft limit 256 under a higher hard limit: raised to the hard limit.
    let hard: u64 = {
        let out = Command::new("sh").args(["-c", "ulimit -Hn"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(u64::MAX)
    };
    if hard > 256 {
        let (server, _site) = spawn("-Sn 256");
        let (soft, hard_seen) = open_files(server.pid());
        assert_eq!(soft, hard_seen, "soft descriptor limit not raised to the hard limit");
    }

    // Hard limit 256: 256 - 64 reserved = 192 descriptors, 96 connections.
    let (server, _site) = spawn("-n 256");
    assert_eq!(open_files(server.pid()), ("256".to_string(), "256".to_string()));
    let log = server.log();
    assert!(log.contains("connection_limit lowered from 10000 to 96"), "{log}");
}
