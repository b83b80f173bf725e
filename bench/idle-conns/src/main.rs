//! Opens N keep-alive connections to an HTTP/1.1 server, sends one `GET PATH` on each, reads
//! the whole response (it must be 2xx, framed by Content-Length, without `Connection: close`),
//! and then holds every connection open, idle, until it is killed or `--hold` seconds pass.
//!
//! Usage: idle-conns --connect ADDR [--count N] [--path /] [--batch 256] [--hold 900]
//!                   [--timeout 10]
//!
//! Prints progress to stderr and exactly one line to stdout once all N are idle:
//! `ready N` (or `failed OPENED/N: reason` and exit status 1 if any connection fails, after
//! closing them all). While holding, a line `check` on stdin makes it test every connection
//! without blocking (a readable socket with no data means the server closed it) and print
//! `open X closed Y`. End of stdin does not stop it; SIGTERM or the `--hold` bound does.
//!
//! Connections are opened in batches: connect `--batch` sockets, write a request on each,
//! then read each response, so the server sees bursts, not a storm it has to queue.

use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    connect: SocketAddr,
    count: usize,
    path: String,
    batch: usize,
    hold: Duration,
    timeout: Duration,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "idle-conns: {msg}\nusage: idle-conns --connect ADDR [--count N] [--path /] [--batch 256] [--hold SECS] [--timeout SECS]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut connect = None;
    let mut a = Args {
        connect: SocketAddr::from(([127, 0, 0, 1], 0)),
        count: 10_000,
        path: "/".into(),
        batch: 256,
        hold: Duration::from_secs(900),
        timeout: Duration::from_secs(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        let num = |v: String| -> u64 {
            v.parse().unwrap_or_else(|_| usage(&format!("bad number {v:?}")))
        };
        match arg.as_str() {
            "--connect" => {
                let v = value();
                connect = Some(v.parse().unwrap_or_else(|e| usage(&format!("bad --connect {v:?}: {e}"))));
            }
            "--count" => a.count = num(value()) as usize,
            "--path" => a.path = value(),
            "--batch" => a.batch = (num(value()) as usize).max(1),
            "--hold" => a.hold = Duration::from_secs(num(value())),
            "--timeout" => a.timeout = Duration::from_secs(num(value()).max(1)),
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown argument: {other}")),
        }
    }
    a.connect = connect.unwrap_or_else(|| usage("--connect is required"));
    a
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one complete response; checks it is a 2xx, Content-Length framed, keep-alive.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let mut need: Option<usize> = None;
    loop {
        if need.is_none() {
            if let Some(end) = find(buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let status_ok = head.starts_with("http/1.1 2");
                if !status_ok {
                    return Err(format!("not a 2xx: {:?}", head.lines().next().unwrap_or("")));
                }
                let mut len = None;
                for line in head.lines().skip(1) {
                    if let Some((name, value)) = line.split_once(':') {
                        match name.trim() {
                            "content-length" => len = value.trim().parse::<usize>().ok(),
                            "connection" if value.contains("close") => {
                                return Err("server answered Connection: close".into())
                            }
                            _ => {}
                        }
                    }
                }
                let len = len.ok_or("no Content-Length in the response")?;
                need = Some(end + 4 + len);
            }
        }
        if let Some(n) = need {
            if buf.len() >= n {
                return if buf.len() == n { Ok(()) } else { Err("more bytes than the response".into()) };
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err("connection closed before the response ended".into()),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// Non-blocking probe: `true` while the server has not closed (or reset) the connection.
fn still_open(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let open = match stream.peek(&mut byte) {
        Ok(0) => false,                                      // FIN from the server
        Ok(_) => true,                                       // unexpected data, but open
        Err(e) if e.kind() == ErrorKind::WouldBlock => true, // idle and open
        Err(_) => false,                                     // reset
    };
    let _ = stream.set_nonblocking(false);
    open
}

fn run(a: &Args, held: &mut Vec<TcpStream>) -> Result<(), String> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: idle-conns\r\n\r\n",
        a.path, a.connect
    );
    let started = Instant::now();
    let mut buf = Vec::with_capacity(1024);
    while held.len() < a.count {
        let n = a.batch.min(a.count - held.len());
        let first = held.len();
        for _ in 0..n {
            let mut s = TcpStream::connect_timeout(&a.connect, a.timeout)
                .map_err(|e| format!("connect #{}: {e}", held.len() + 1))?;
            s.set_read_timeout(Some(a.timeout)).map_err(|e| e.to_string())?;
            s.set_write_timeout(Some(a.timeout)).map_err(|e| e.to_string())?;
            s.write_all(request.as_bytes())
                .map_err(|e| format!("write #{}: {e}", held.len() + 1))?;
            held.push(s);
        }
        for (i, s) in held[first..].iter_mut().enumerate() {
            read_response(s, &mut buf).map_err(|e| format!("connection #{}: {e}", first + i + 1))?;
        }
        if held.len() % 2000 < n || held.len() == a.count {
            eprintln!("idle-conns: {} connections open ({:.1} s)", held.len(), started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let a = parse_args();
    let mut held: Vec<TcpStream> = Vec::with_capacity(a.count);
    if let Err(e) = run(&a, &mut held) {
        println!("failed {}/{}: {e}", held.len(), a.count);
        let _ = io::stdout().flush();
        return ExitCode::from(1);
    }
    println!("ready {}", held.len());
    let _ = io::stdout().flush();

    // Hold. A reader thread answers `check` lines; the main thread enforces the bound.
    let deadline = Instant::now() + a.hold;
    // Shared, not try_clone()d: a clone would double the descriptors this process needs.
    let held = std::sync::Arc::new(held);
    let probe = std::sync::Arc::clone(&held);
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "check" {
                let open = probe.iter().filter(|s| still_open(s)).count();
                println!("open {} closed {}", open, probe.len() - open);
                let _ = io::stdout().flush();
            }
        }
    });
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200).min(deadline.saturating_duration_since(Instant::now())));
    }
    eprintln!("idle-conns: --hold of {} s reached; closing {}", a.hold.as_secs(), held.len());
    ExitCode::SUCCESS
}
