//! Reloading the certificate without a restart: on request (SIGHUP, [`reload_certificates`])
//! and when the files change on disk, as certbot and cert-manager renew them.
//! Owns the watcher thread and the file stamps. Never touches an open connection: a reload
//! only changes what new connections get.
//!
//! A file is "changed" when its modification time, length or inode (Unix) differs, read
//! through symbolic links, so cert-manager's swap of a `..data` symlink counts. A change is
//! applied once the stamps have held still for one poll interval, so a renewal that writes the
//! certificate and then the key is never caught half-way. A new certificate that cannot be
//! used (unreadable, not PEM, a key that does not match) leaves the one in force and logs one
//! error line; it is tried again when the files change again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use log::{error, info};

use crate::tls::{load, Tls};

/// The watchers of every server in this process, told by [`reload_certificates`].
static WATCHERS: Mutex<Vec<Sender<()>>> = Mutex::new(Vec::new());

/// Reloads the TLS certificate, key and client CA of every server running in this process
/// (what SIGHUP does). Open connections keep the session they have; new ones get the new
/// files. A file that cannot be used keeps the old configuration and logs one error line.
pub fn reload_certificates() {
    let mut watchers = WATCHERS.lock().unwrap_or_else(PoisonError::into_inner);
    watchers.retain(|tx| tx.send(()).is_ok());
}

/// What a file looked like: modification time, length, inode; `None` when it cannot be read.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &PathBuf) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

/// The watcher thread of one server; dropping it stops the thread.
pub(crate) struct Watcher {
    tx: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `tls`'s files every `interval` (never, when zero) and listening for
    /// [`reload_certificates`].
    pub(crate) fn start(tls: Arc<Tls>, interval: Duration) -> std::io::Result<Watcher> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        WATCHERS.lock().unwrap_or_else(PoisonError::into_inner).push(tx);
        let thread = std::thread::Builder::new()
            .name("maitred-tls-reload".into())
            .spawn(move || watch(&tls, interval, &rx, &stop_rx))?;
        Ok(Watcher { tx: Some(stop_tx), thread: Some(thread) })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(tls: &Tls, interval: Duration, reload: &Receiver<()>, stop: &Receiver<()>) {
    let paths: Vec<PathBuf> = load::files(&tls.settings).into_iter().map(PathBuf::from).collect();
    let stamps = || paths.iter().map(stamp).collect::<Vec<Stamp>>();
    let mut loaded = stamps();
    let mut seen = loaded.clone();
    let tick = if interval.is_zero() { Duration::from_secs(3600) } else { interval };
    loop {
        crossbeam_channel::select! {
            recv(stop) -> _ => return,
            recv(reload) -> _ => {
                loaded = stamps();
                seen = loaded.clone();
                apply(tls, "on request");
            }
            default(tick) => {
                if interval.is_zero() {
                    continue;
                }
                let now = stamps();
                if now != loaded && now == seen {
                    loaded = now;
                    apply(tls, "the files changed");
                } else {
                    seen = now;
                }
            }
        }
    }
}

fn apply(tls: &Tls, why: &str) {
    match tls.reload() {
        Ok(()) => info!(target: "maitred::tls", "TLS certificate reloaded ({why})"),
        Err(e) => error!(target: "maitred::tls", "TLS certificate not reloaded ({why}), the previous one stays: {e}"),
    }
}
