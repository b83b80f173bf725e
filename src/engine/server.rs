//! Start-up and shutdown: bind the listeners, start the threads, and the handle that drains.
//! Owns the thread lifetimes and the stop/drain switch. Never handles a connection itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use polling::Poller;

use crate::config::Config;
use crate::engine::acceptor::{Acceptor, Gauge};
use crate::engine::body_budget::BodyBudget;
use crate::engine::handoff::{job_queue, mailbox, LoopWaker};
use crate::engine::io_loop::IoLoop;
use crate::engine::net::{ListenAddr, Listener};
use crate::engine::pool::Pool;
use crate::engine::sys::LoopBell;
use crate::engine::watchdog::{Watch, Watchdog};
use crate::engine::worker::WorkerShared;
use crate::engine::Shared;
use crate::error::Error;
use crate::handler::Handler;
use crate::ops::access_log::{AccessLog, AccessLogThread};
use crate::ops::metrics::Metrics;
use crate::ops::proxy::TrustedProxies;

/// A server whose listeners are bound but whose threads have not started.
///
/// ```no_run
/// use maitred::{Config, Request, Response, Server};
///
/// let mut config = Config::default();
/// config.listen = vec!["127.0.0.1:0".parse().unwrap()];
/// let server = Server::bind(config, |_req: Request| Response::text(200, "hi")).unwrap();
/// println!("listening on {}", server.local_addrs()[0].url());
/// let handle = server.start().unwrap();
/// // ... later, from any thread:
/// handle.shutdown();
/// handle.wait();
/// ```
pub struct Server {
    config: Arc<Config>,
    trusted: TrustedProxies,
    listeners: Vec<Listener>,
    addrs: Vec<ListenAddr>,
    handler: Arc<dyn Handler>,
    /// One of a supervisor's worker processes (see [`Server::for_worker_process`]).
    worker_process: bool,
}

/// The address a listener is reported as: `https://` listeners (bound as TCP) stay `Tls`.
pub(crate) fn tls_if_https(configured: &ListenAddr, bound: ListenAddr) -> ListenAddr {
    match (configured, bound) {
        (ListenAddr::Tls(_), ListenAddr::Tcp(bound)) => ListenAddr::Tls(bound),
        (_, bound) => bound,
    }
}

impl Server {
    /// Validates `config` and binds every address in `config.listen` (port 0 picks a free port;
    /// [`Server::local_addrs`] reports it).
    pub fn bind(config: Config, handler: impl Handler) -> Result<Server, Error> {
        let (config, trusted) = Self::prepare(config)?;
        let mut listeners = Vec::with_capacity(config.listen.len());
        let mut addrs = Vec::with_capacity(config.listen.len());
        for addr in &config.listen {
            let bind_error = |source| Error::Bind { addr: addr.clone(), source };
            let listener = Listener::bind(addr, config.backlog).map_err(bind_error)?;
            addrs.push(tls_if_https(addr, listener.local_addr().map_err(bind_error)?));
            listeners.push(listener);
        }
        let handler: Arc<dyn Handler> = Arc::new(handler);
        Ok(Server { config: Arc::new(config), trusted, listeners, addrs, handler, worker_process: false })
    }

    /// A worker process's server: no listener of its own; its supervisor accepts and hands
    /// each connection over ([`crate::engine::acceptor::admit`]), and idle connections get
    /// [`crate::engine::IDLE_DRAIN_GRACE`] in a drain, since the other workers keep serving.
    pub(crate) fn for_worker_process(config: Config, handler: impl Handler) -> Result<Server, Error> {
        let (config, trusted) = Self::prepare(config)?;
        let handler: Arc<dyn Handler> = Arc::new(handler);
        Ok(Server {
            config: Arc::new(config),
            trusted,
            listeners: Vec::new(),
            addrs: Vec::new(),
            handler,
            worker_process: true,
        })
    }

    /// Validates `config` and fits `connection_limit` to the descriptor limit.
    fn prepare(mut config: Config) -> Result<(Config, TrustedProxies), Error> {
        let trusted = config.check()?;
        if let Some(fit) = crate::engine::sys::raise_fd_limit() {
            if config.connection_limit > fit {
                log::debug!(
                    target: "maitred::server",
                    "connection_limit lowered from {} to {fit} to fit the descriptor limit (2 per connection)",
                    config.connection_limit
                );
                config.connection_limit = fit;
            }
        }
        Ok((config, trusted))
    }

    /// The bound addresses, in the order of `config.listen`.
    pub fn local_addrs(&self) -> &[ListenAddr] {
        &self.addrs
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Starts the acceptor, the I/O loop and the workers; returns at once. With `https://`
    /// listeners it first reads the certificate and key ([`Error::Tls`] when they cannot be
    /// used) and starts the thread that reloads them.
    pub fn start(self) -> Result<ServerHandle, Error> {
        let Server { config, trusted, listeners, addrs, handler, worker_process } = self;
        // HTTPS: the certificate is read here, so every way of building a server gets it; the
        // listeners are those of `config.listen`, in its order.
        let tls = crate::tls::Tls::load(&config).map_err(Error::Tls)?.map(Arc::new);
        let tls_listeners: Vec<bool> = config.listen.iter().map(ListenAddr::is_tls).collect();
        let tls_watcher = match &tls {
            Some(tls) => Some(crate::tls::reload::Watcher::start(Arc::clone(tls), config.tls_reload_interval)?),
            None => None,
        };
        let loop_poller = Arc::new(Poller::new()?);
        let acceptor_poller = Arc::new(Poller::new()?);
        let (to_loop, loop_rx) = mailbox();
        let (jobs_tx, jobs_rx) = job_queue(config.queue_capacity());
        let stop = Arc::new(AtomicBool::new(false));
        let (registered_tx, registered_rx) = bounded(1);
        let threads = config.threads;
        let config_timeout = config.worker_timeout;
        let body_budget = Arc::new(BodyBudget::new(config.body_spool_threshold));
        let metrics = Metrics::default();
        let (access_log, access_log_thread) =
            AccessLog::start(config.access_log, Arc::clone(&metrics.access_log_dropped))?;
        let shared = Arc::new(Shared {
            config,
            trusted,
            metrics,
            access_log,
            draining: AtomicBool::new(false),
            waker: LoopWaker::new(LoopBell::new(&loop_poller)?, to_loop),
            gauge: Gauge::default(),
            body_budget,
            idle_drain_grace: if worker_process { crate::engine::IDLE_DRAIN_GRACE } else { Duration::ZERO },
            watch: Watch::new(threads, Some(config_timeout).filter(|t| !t.is_zero())),
            tls,
        });

        let watchdog = Watchdog::start(Arc::clone(&shared), Arc::clone(&handler))?;
        let on_loop = handler.responds_on_loop().then(|| Arc::clone(&handler));
        let pool = Pool::start(threads, Arc::new(WorkerShared { handler, shared: Arc::clone(&shared) }), jobs_rx)?;

        let io_loop = IoLoop::new(Arc::clone(&shared), loop_poller, loop_rx, jobs_tx, on_loop, worker_process);
        let io_thread = thread::Builder::new().name("maitred-io".into()).spawn(move || io_loop.run())?;

        let acceptor = Acceptor {
            listeners,
            tls: tls_listeners,
            poller: Arc::clone(&acceptor_poller),
            shared: Arc::clone(&shared),
            stop: Arc::clone(&stop),
            registered: registered_tx,
        };
        let acceptor_thread = thread::Builder::new().name("maitred-acceptor".into()).spawn(move || acceptor.run())?;
        // Started means accepting: the listeners are watched before this returns.
        let _ = registered_rx.recv_timeout(Duration::from_secs(10));

        Ok(ServerHandle {
            addrs,
            stopper: Stopper { control: Arc::new(Control { stop, shared, acceptor_poller }) },
            acceptor: Some(acceptor_thread),
            io_loop: Some(io_thread),
            pool: Some(pool),
            watchdog: Some(watchdog),
            access_log: access_log_thread,
            tls_watcher,
        })
    }
}

struct Control {
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    acceptor_poller: Arc<Poller>,
}

/// Starts a graceful shutdown from any thread (a signal handler, a test). Cloneable.
#[derive(Clone)]
pub struct Stopper {
    control: Arc<Control>,
}

impl Stopper {
    /// Begins the drain: stop accepting and close the listeners, close idle connections,
    /// finish in-flight and queued requests with `Connection: close`, and force-close what is
    /// left after `graceful_timeout`. Returns at once; calling it again does nothing.
    pub fn shutdown(&self) {
        let c = &self.control;
        c.shared.draining.store(true, Ordering::SeqCst);
        if !c.stop.swap(true, Ordering::SeqCst) {
            let _ = c.acceptor_poller.notify();
        }
    }
}

/// A running server. Dropping it shuts the server down and waits for it.
pub struct ServerHandle {
    addrs: Vec<ListenAddr>,
    stopper: Stopper,
    acceptor: Option<JoinHandle<()>>,
    io_loop: Option<JoinHandle<()>>,
    pool: Option<Pool>,
    watchdog: Option<Watchdog>,
    access_log: Option<AccessLogThread>,
    /// Reloads the TLS certificate (on SIGHUP and when its files change); stops on drop.
    tls_watcher: Option<crate::tls::reload::Watcher>,
}

impl ServerHandle {
    /// The bound addresses.
    pub fn local_addrs(&self) -> &[ListenAddr] {
        &self.addrs
    }

    /// A cloneable way to start the shutdown from elsewhere.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Begins the graceful drain (see [`Stopper::shutdown`]); returns at once.
    pub fn shutdown(&self) {
        self.stopper.shutdown();
    }

    /// What the acceptor, the loop and the workers share: a worker process reads its
    /// counters and gauges from it for the reports it sends its supervisor.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.stopper.control.shared
    }

    /// Blocks until the server has stopped: after a shutdown, once every connection is closed
    /// (at the latest `graceful_timeout` after the drain began) and the workers are done.
    /// Returns false if a worker was still inside the handler a second after that.
    pub fn wait(mut self) -> bool {
        self.join()
    }

    fn join(&mut self) -> bool {
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        if let Some(t) = self.io_loop.take() {
            let _ = t.join();
        }
        let finished = match self.pool.take() {
            Some(pool) => pool.join_until(Instant::now() + Duration::from_secs(1)),
            None => true,
        };
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.stop();
        }
        // Last: every line the loop and the workers queued is written before `wait` returns.
        if let Some(thread) = self.access_log.take() {
            thread.stop(&self.stopper.control.shared.access_log);
        }
        drop(self.tls_watcher.take());
        finished
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.io_loop.is_some() {
            self.shutdown();
            self.join();
        }
    }
}
