//! The `maitred` binary (or an example) run as a child process: its bound address read from
//! its log, its threads and memory read from /proc, signals sent by PID.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A server process started by a test; killed on drop if still running.
pub struct ChildServer {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// The directory served, when the test made one.
    pub site: Option<tempfile::TempDir>,
}

/// The `maitred` binary built for these tests.
pub fn maitred_bin() -> &'static str {
    env!("CARGO_BIN_EXE_maitred")
}

impl ChildServer {
    /// Starts the maitred binary on 127.0.0.1:0 with `args`, serving a new empty directory
    /// (so `/` is the welcome page).
    pub fn spawn(args: &[&str]) -> Self {
        let site = tempfile::tempdir().expect("site directory");
        let mut cmd = Command::new(maitred_bin());
        cmd.args(["--listen", "127.0.0.1:0"]).args(args).arg(site.path());
        let mut server = Self::spawn_command(cmd);
        server.site = Some(site);
        server
    }

    /// Starts `cmd` (which must log `listening on http://ADDR` to stderr) and waits for its
    /// address, up to 30 s.
    pub fn spawn_command(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).env("RUST_LOG", "info");
        let mut child = cmd.spawn().expect("spawn server");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse().expect("bound address"),
            Err(_) => {
                let _ = child.kill();
                panic!("server did not report its address; log: {:?}", log.lock().unwrap());
            }
        };
        ChildServer { child, addr, log, site: None }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn status_field(&self, field: &str) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("read /proc status");
        let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
        line[field.len()..].trim().trim_end_matches(" kB").trim().parse().unwrap()
    }

    /// Threads of the server process.
    pub fn threads(&self) -> usize {
        self.status_field("Threads:")
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> usize {
        self.status_field("VmRSS:")
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) to the server by PID.
    pub fn signal(&self, name: &str) {
        signal_pid(self.pid(), name);
    }

    /// Waits for the process to exit, up to `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// Sends signal `name` to `pid` with kill(1).
pub fn signal_pid(pid: u32, name: &str) {
    let ok = Command::new("kill").args(["-s", name, &pid.to_string()]).status().expect("run kill").success();
    assert!(ok, "kill -s {name} {pid} failed");
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
