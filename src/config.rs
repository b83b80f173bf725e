//! Every tunable of the server in one struct, with its unit, default and validation.
//! Owns the settings table and [`Config::validate`]. Never reads the environment, files or
//! arguments (that is `cli`).
//!
//! The struct is generated from one table ([`SETTINGS`]); the command-line flags
//! (`--max-body-size`), the environment variables (`MAITRED_MAX_BODY_SIZE`), `--help` and the
//! README's settings table are all derived from that table, so they cannot drift apart.
//! This module does no I/O and reads no environment: see [`crate::cli`] for that.

use std::fmt;
use std::net::SocketAddr;

use crate::engine::net::ListenAddr;
use crate::http1::parse::Limits;
use crate::ops::access_log::AccessLogFormat;
use crate::ops::proxy::TrustedProxies;
use std::path::PathBuf;
use std::time::Duration;

/// Which front ends a setting means something to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// The server itself: every front end (Rust handlers, the binary, WSGI).
    Server,
    /// Only the `maitred` binary's static file app; the Python command refuses it.
    StaticFiles,
}

/// One row of the settings table: how a setting is named, parsed, shown and documented.
#[derive(Clone, Copy)]
pub struct Setting {
    /// Field name in [`Config`], e.g. `max_body_size`.
    pub name: &'static str,
    /// Unit of the value, shown in help text (`bytes`, `seconds`, `count`, ...).
    pub unit: &'static str,
    /// One-paragraph description.
    pub help: &'static str,
    /// Which front ends use it.
    pub scope: Scope,
    /// How the default is documented when it depends on the machine (e.g. the CPU count).
    default_doc: Option<&'static str>,
    set: fn(&mut Config, &str) -> Result<(), String>,
    get: fn(&Config) -> String,
}

impl Setting {
    /// The command-line flag, e.g. `--max-body-size`.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    /// The environment variable, e.g. `MAITRED_MAX_BODY_SIZE`.
    pub fn env_var(&self) -> String {
        format!("MAITRED_{}", self.name.to_ascii_uppercase())
    }

    /// Parses `value` and stores it in `config`. The error names the setting.
    pub fn apply(&self, config: &mut Config, value: &str) -> Result<(), ConfigError> {
        (self.set)(config, value.trim())
            .map_err(|why| ConfigError(format!("invalid value {value:?} for {}: {why}", self.name)))
    }

    /// The value of this setting in `config`, in the form the parser accepts.
    pub fn show(&self, config: &Config) -> String {
        (self.get)(config)
    }

    /// The default as documented: the value itself, or a rule where it depends on the
    /// machine (`threads`).
    pub fn default_text(&self) -> String {
        self.default_doc.map_or_else(|| self.show(&Config::default()), str::to_string)
    }

    /// The help text without its closing "Defaults to ..." sentence, on one line.
    pub fn summary(&self) -> String {
        let text: Vec<&str> = self.help.lines().map(str::trim).collect();
        let text = text.join(" ");
        match text.find(" Defaults to ") {
            Some(i) => text[..i].to_string(),
            None => text,
        }
    }
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setting").field("name", &self.name).finish()
    }
}

/// How a setting's value is read from and written to text.
trait SettingValue: Sized {
    fn parse_value(text: &str, unit: &str) -> Result<Self, String>;
    fn show_value(&self, unit: &str) -> String;
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * 1024 * 1024;

fn parse_count(text: &str, unit: &str) -> Result<u64, String> {
    if unit.starts_with("bytes") {
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, suffix) = text.split_at(split);
        let scale = match suffix.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => KIB,
            "m" | "mb" | "mib" => MIB,
            "g" | "gb" | "gib" => GIB,
            _ => return Err("expected a size like 65536, 64KiB or 8MiB".into()),
        };
        let n: u64 = digits.parse().map_err(|_| "expected a size like 65536, 64KiB or 8MiB".to_string())?;
        n.checked_mul(scale).ok_or_else(|| "size too large".into())
    } else {
        text.parse().map_err(|_| "expected a whole number".to_string())
    }
}

fn show_count(n: u64, unit: &str) -> String {
    if unit.starts_with("bytes") && n > 0 {
        for (scale, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
            if n % scale == 0 {
                return format!("{}{name}", n / scale);
            }
        }
    }
    n.to_string()
}

impl SettingValue for u64 {
    fn parse_value(text: &str, unit: &str) -> Result<Self, String> {
        parse_count(text, unit)
    }
    fn show_value(&self, unit: &str) -> String {
        show_count(*self, unit)
    }
}

impl SettingValue for usize {
    fn parse_value(text: &str, unit: &str) -> Result<Self, String> {
        usize::try_from(parse_count(text, unit)?).map_err(|_| "number too large".into())
    }
    fn show_value(&self, unit: &str) -> String {
        show_count(*self as u64, unit)
    }
}

impl SettingValue for Option<usize> {
    fn parse_value(text: &str, unit: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("auto") {
            Ok(None)
        } else {
            usize::parse_value(text, unit).map(Some)
        }
    }
    fn show_value(&self, unit: &str) -> String {
        self.map_or_else(|| "auto".into(), |n| n.show_value(unit))
    }
}

impl SettingValue for Duration {
    fn parse_value(text: &str, _unit: &str) -> Result<Self, String> {
        let bad = || "expected a duration like 30, 30s, 500ms or 2m".to_string();
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        let n: f64 = number.parse().map_err(|_| bad())?;
        let seconds = match suffix.trim() {
            "" | "s" => n,
            "ms" => n / 1000.0,
            "m" | "min" => n * 60.0,
            _ => return Err(bad()),
        };
        Duration::try_from_secs_f64(seconds).map_err(|_| bad())
    }
    fn show_value(&self, _unit: &str) -> String {
        if self.subsec_nanos() == 0 {
            format!("{}s", self.as_secs())
        } else {
            format!("{}ms", self.as_millis())
        }
    }
}

impl SettingValue for String {
    fn parse_value(text: &str, _unit: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
    fn show_value(&self, _unit: &str) -> String {
        self.clone()
    }
}

impl SettingValue for bool {
    fn parse_value(text: &str, _unit: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err("expected true or false".into()),
        }
    }
    fn show_value(&self, _unit: &str) -> String {
        self.to_string()
    }
}

impl SettingValue for PathBuf {
    fn parse_value(text: &str, _unit: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("expected a path".into());
        }
        Ok(PathBuf::from(text))
    }
    fn show_value(&self, _unit: &str) -> String {
        self.display().to_string()
    }
}

impl SettingValue for Option<PathBuf> {
    fn parse_value(text: &str, _unit: &str) -> Result<Self, String> {
        Ok((!text.is_empty()).then(|| PathBuf::from(text)))
    }
    fn show_value(&self, _unit: &str) -> String {
        self.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
    }
}

impl SettingValue for AccessLogFormat {
    fn parse_value(text: &str, _unit: &str) -> Result<Self, String> {
        text.parse()
    }
    fn show_value(&self, _unit: &str) -> String {
        self.as_str().to_string()
    }
}

impl SettingValue for Vec<ListenAddr> {
    fn parse_value(text: &str, _unit: &str) -> Result<Self, String> {
        text.split(',').map(|part| part.trim().parse::<ListenAddr>()).collect()
    }
    fn show_value(&self, _unit: &str) -> String {
        let parts: Vec<String> = self.iter().map(ToString::to_string).collect();
        parts.join(",")
    }
}

macro_rules! settings {
    (@auto) => { None };
    (@auto $auto:literal) => { Some($auto) };
    (@scope) => { Scope::Server };
    (@scope $scope:ident) => { Scope::$scope };
    ($( $(#[doc = $doc:literal])+ $field:ident : $ty:ty = $default:expr, $unit:literal $(, auto = $auto:literal)? $(, scope = $scope:ident)?; )+) => {
        /// Every tunable of the server. Build one with `Config::default()` and assign fields.
        ///
        /// Each field documents its unit and default; [`Config::validate`] checks the whole.
        #[derive(Clone, Debug, PartialEq)]
        #[non_exhaustive]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $field: $ty, )+
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $field: $default, )+ }
            }
        }

        /// The settings table: one row per field of [`Config`], in the order of the struct.
        pub static SETTINGS: &[Setting] = &[
            $( Setting {
                name: stringify!($field),
                unit: $unit,
                help: concat!($($doc, "\n"),+),
                scope: settings!(@scope $($scope)?),
                default_doc: settings!(@auto $($auto)?),
                set: |config, text| {
                    config.$field = <$ty as SettingValue>::parse_value(text, $unit)?;
                    Ok(())
                },
                get: |config| <$ty as SettingValue>::show_value(&config.$field, $unit),
            }, )+
        ];
    };
}

settings! {
    /// Addresses to listen on, comma-separated or repeated: `HOST:PORT`, `[V6]:PORT`, `*:PORT`,
    /// or `unix:PATH` on Unix; `https://HOST:PORT` speaks TLS with `tls_cert` and `tls_key`
    /// (`http://HOST:PORT` is plain, as without a scheme). Defaults to `127.0.0.1:8080`.
    listen: Vec<ListenAddr> = vec![ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 8080)))], "addresses";
    /// Worker processes. `1` serves from this process, as always. More (or `auto`: one per
    /// processor this process may use, cgroup quota and CPU affinity respected) starts a supervisor that
    /// binds the listeners once, serves nothing itself, and runs that many copies of this
    /// program, each with its own `threads`; it replaces a worker that dies, recycles workers
    /// (`max_requests`, `max_worker_memory`), reloads on SIGHUP and adds or removes one on
    /// SIGTTIN / SIGTTOU. Defaults to 1.
    workers: Option<usize> = Some(1), "count";
    /// PEM file with the server certificate chain (leaf first) for the `https://` listeners.
    /// Gunicorn's `--certfile` is accepted for it. Defaults to empty (no TLS).
    tls_cert: Option<PathBuf> = None, "path";
    /// PEM file with the private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1). Gunicorn's
    /// `--keyfile` is accepted for it. Defaults to empty.
    tls_key: Option<PathBuf> = None, "path";
    /// PEM file of the CAs that sign client certificates: with it, `https://` listeners ask
    /// each client for a certificate (mutual TLS) and give its subject to the application.
    /// Defaults to empty (no client certificates).
    tls_client_ca: Option<PathBuf> = None, "path";
    /// With `tls_client_ca`: `required` (a client without a valid certificate fails the
    /// handshake) or `optional` (one without any certificate is served, with no subject; an
    /// invalid one still fails). Defaults to `required`.
    tls_client_auth: String = "required".to_string(), "mode";
    /// How often the TLS files are checked for a change (time, size, inode: certbot and
    /// cert-manager renewals); a change is loaded for new connections once the files have held
    /// still for one interval. SIGHUP reloads at once. 0 checks only on SIGHUP. Defaults to 10s.
    tls_reload_interval: Duration = Duration::from_secs(10), "seconds";
    /// Worker threads that run the handler; the pool never grows or shrinks. Defaults to
    /// twice the CPU count, at least 4 and at most 64.
    threads: usize = default_threads(), "threads", auto = "2 × CPUs, 4 to 64";
    /// Open connections at most. When the table is full and a new client waits, the
    /// connection making the least progress gives way (partial heads first, then silent new
    /// connections, idle keep-alive ones, bodies and readers below `min_transfer_rate`); one
    /// with a complete request, a request at a worker, or a healthy transfer never does. If
    /// none can, accepting pauses. Lowered at start to fit the descriptor limit (two per
    /// connection: the socket and a file being sent). Defaults to 10000 (about 0.4KiB each
    /// idle, 4 to 9KiB each slow).
    connection_limit: usize = 10_000, "connections";
    /// Listen backlog passed to the operating system. Defaults to 1024.
    backlog: usize = 1024, "connections";
    /// Longest request line (method, target, version); longer gets 414. Defaults to 8KiB.
    max_request_line: usize = 8 * 1024, "bytes";
    /// Longest single header line; longer gets 431. Also bounds chunk-size and trailer lines.
    /// Defaults to 8KiB.
    max_header_line: usize = 8 * 1024, "bytes";
    /// Largest request head (request line and headers); larger gets 431. Defaults to 64KiB.
    max_headers_size: usize = 64 * 1024, "bytes";
    /// Most header fields in one request; more gets 431. Defaults to 100.
    max_headers: usize = 100, "count";
    /// Largest request body, checked against Content-Length before reading and while
    /// de-chunking; larger gets 413. Defaults to 8MiB.
    max_body_size: u64 = 8 * MIB, "bytes";
    /// Request bodies larger than this are spooled to a temporary file instead of memory.
    /// Bodies being received hold at most 64 × this in memory together (64 MiB at the
    /// defaults): past that, a new body is spooled from its first byte; a spooled body costs
    /// about twice the CPU (measured at 1 MiB). Defaults to 1MiB.
    body_spool_threshold: usize = MIB as usize, "bytes";
    /// Total time allowed for a request head, from its first byte (from accept for a new
    /// connection); past it the client gets 408. Under pressure (connections at 90% of
    /// `connection_limit` when the deadline is set) it is 4 times shorter. Defaults to 10s.
    header_timeout: Duration = Duration::from_secs(10), "seconds";
    /// Time a request body may go without progress; past it the client gets 408. Under
    /// pressure (as for `header_timeout`) it is 4 times shorter. Defaults to 30s.
    body_timeout: Duration = Duration::from_secs(30), "seconds";
    /// Time an idle keep-alive connection is kept open. Set it above any load balancer's idle
    /// timeout in front of the server. Defaults to 15s.
    keepalive_timeout: Duration = Duration::from_secs(15), "seconds";
    /// Time a response write may go without progress before the connection is closed.
    /// Defaults to 30s.
    write_timeout: Duration = Duration::from_secs(30), "seconds";
    /// Kernel send buffer per connection (SO_SNDBUF; Linux reserves twice this); 0 leaves the
    /// kernel's autotuning. Bounds kernel memory per slow reader and lets the write-rate check
    /// see what the client really takes; raise it for large downloads over long round trips
    /// (throughput per connection is at most about twice this per round trip). Defaults to 64KiB.
    send_buffer_size: usize = 64 * 1024, "bytes";
    /// Slowest average transfer rate for request bodies and responses once `body_timeout` /
    /// `write_timeout` has passed; a slower client is cut (0 disables). Defaults to 1KiB.
    min_transfer_rate: u64 = KIB, "bytes per second";
    /// Requests served on one connection before the server closes it. Defaults to 1000.
    max_requests_per_connection: usize = 1000, "count";
    /// Complete requests waiting for a free worker; when full, new requests get 503 at once.
    /// `auto` is 64 per thread, so a queued request waits at most about 64 handler run times.
    /// Defaults to auto.
    max_queued_requests: Option<usize> = None, "count";
    /// Response bytes buffered per connection before a streaming handler waits for the
    /// client. Defaults to 256KiB.
    max_buffered_output: usize = 256 * 1024, "bytes";
    /// A handler call running longer than this is reported: a warning naming method, path and
    /// duration (with the stuck thread's Python stack under WSGI) and
    /// `maitred_handler_timeouts_total`. Under a supervisor (`workers` above 1) the worker
    /// process holding it is then replaced: its successor starts first, it takes no new
    /// connections and finishes what it can within `graceful_timeout`. A thread cannot be
    /// stopped, so a single process only reports. `0` turns it off: no request is ever cut for
    /// being slow unless asked (the health path still answers 503 while every thread has been
    /// stuck for 5s). Gunicorn's `--timeout`. Defaults to 0s (off).
    worker_timeout: Duration = Duration::ZERO, "seconds";
    /// Time allowed on shutdown for in-flight and queued requests to finish; what is left is
    /// closed. Defaults to 30s.
    graceful_timeout: Duration = Duration::from_secs(30), "seconds";
    /// After an error response, time spent reading and discarding what the client still sends
    /// so it can read the response before the connection closes. Defaults to 2s.
    linger_timeout: Duration = Duration::from_secs(2), "seconds";
    /// Value of the `Retry-After` header sent with 503 responses. Defaults to 1s.
    retry_after: Duration = Duration::from_secs(1), "seconds";
    /// Value of the `Server` response header; empty sends none. Defaults to `maitred`.
    server_header: String = "maitred".to_string(), "text";
    /// Directory served by the `maitred` binary's static file app (the positional DIR sets
    /// it too). Defaults to `.`, the current directory.
    root: PathBuf = PathBuf::from("."), "path", scope = StaticFiles;
    /// Path the app is mounted under, such as `/app`; requests outside it get 404. Defaults to
    /// empty (the whole site).
    url_prefix: String = String::new(), "path";
    /// Let the static file app list directories that have no `index.html`. Defaults to false.
    directory_listing: bool = false, "true/false", scope = StaticFiles;
    /// Let the static file app follow symbolic links that point outside the root. Defaults to
    /// false.
    follow_symlinks: bool = false, "true/false", scope = StaticFiles;
    /// Let the static file app serve and list names starting with `.` (`.git`, `.env`); when
    /// false they get 404, except `/.well-known/`. Defaults to false.
    serve_dotfiles: bool = false, "true/false", scope = StaticFiles;
    /// Error log level (`error`, `warn`, `info`, `debug`, `trace`, `off`); `RUST_LOG`, when
    /// set, takes precedence. Defaults to `info`.
    log_level: String = "info".to_string(), "level";
    /// A path answered by the server itself, without the worker pool: 200 while serving, 503
    /// while draining; kept out of the access log. Empty disables it. Defaults to empty.
    health_path: String = String::new(), "path";
    /// A path answered by the server itself with metrics in Prometheus text format. Empty
    /// disables it. Defaults to empty.
    metrics_path: String = String::new(), "path";
    /// On shutdown, time between the health path turning 503 and the listeners closing, so a
    /// load balancer stops routing first. Defaults to 0s.
    drain_delay: Duration = Duration::ZERO, "seconds";
    /// Access log format, written to standard output one line per request (also those the
    /// server refuses itself, marked): `off`, `common`, `combined` or `json`, each with the
    /// request time in microseconds. Defaults to `off`.
    access_log: AccessLogFormat = AccessLogFormat::Off, "format";
    /// Proxies whose forwarding headers (`Forwarded`, `X-Forwarded-For/Proto/Host/Port`) are
    /// believed: addresses or CIDR nets, comma-separated (a Unix-socket peer is `0.0.0.0`).
    /// From any other peer those headers are removed before the handler sees them. Defaults
    /// to empty (trust no one).
    trusted_proxies: String = String::new(), "address list";
    /// How many forwarding hops (entries from the right of the list) to walk back through
    /// trusted proxies. Defaults to 1.
    trusted_proxy_hops: usize = 1, "count";
    /// With worker processes: requests a worker serves before it is replaced (the replacement
    /// accepts before the old one drains); 0 never. Gunicorn's `--max-requests`. Defaults to 0.
    max_requests: u64 = 0, "count";
    /// With `max_requests`: each worker's limit is `max_requests` plus a random 0 to this
    /// many, so workers are not all replaced at once. Gunicorn's `--max-requests-jitter`.
    /// Defaults to 0.
    max_requests_jitter: u64 = 0, "count";
    /// With worker processes: a worker whose resident memory exceeds this is replaced
    /// gracefully (checked about twice a second); 0 never. Defaults to 0.
    max_worker_memory: u64 = 0, "bytes";
    /// Expect a PROXY protocol (v1 or v2) header from trusted proxies, giving the client's
    /// address. Defaults to false.
    proxy_protocol: bool = false, "true/false";
    /// Put the panic message (or the Python traceback) of a failing handler in the 500
    /// response body. For development only: it shows internals to clients. Defaults to false.
    expose_tracebacks: bool = false, "true/false";
}

/// Most worker processes a supervisor runs (`workers`).
pub(crate) const MAX_WORKERS: usize = 256;

fn default_threads() -> usize {
    (num_cpus::get() * 2).clamp(4, 64)
}

/// A configuration that cannot be used, with one sentence naming the setting at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The defaults' limits; what the fuzz targets and unit tests parse with.
impl Default for Limits {
    fn default() -> Self {
        Config::default().limits()
    }
}

impl Config {
    /// The limits the HTTP/1 parser and body decoders enforce, taken from this config.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_request_line: self.max_request_line,
            max_header_line: self.max_header_line,
            max_headers_size: self.max_headers_size,
            max_headers: self.max_headers,
            max_body_size: self.max_body_size,
        }
    }

    /// The row of [`SETTINGS`] named `name` (field name, flag without dashes, or either form
    /// with `-` or `_`).
    pub fn setting(name: &str) -> Option<&'static Setting> {
        let wanted = name.trim_start_matches("--").replace('-', "_");
        SETTINGS.iter().find(|s| s.name == wanted)
    }

    /// How many worker processes `workers` asks for: the number, or for `auto` the CPUs this
    /// process may use (`std::thread::available_parallelism`: CPU affinity and the cgroup
    /// quota, as in a container limited to 1.5 CPUs, rounded down, at least 1).
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
            .clamp(1, MAX_WORKERS)
    }

    /// The dispatch queue's capacity: `max_queued_requests`, or 64 per thread.
    pub fn queue_capacity(&self) -> usize {
        self.max_queued_requests.unwrap_or(self.threads * 64)
    }

    /// Checks every value and their combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map(drop)
    }

    /// Validates every setting and returns the trusted proxy list, parsed: the one parse a
    /// running server uses ([`crate::Server::bind`] keeps it).
    pub(crate) fn check(&self) -> Result<TrustedProxies, ConfigError> {
        fn err<T>(text: String) -> Result<T, ConfigError> {
            Err(ConfigError(text))
        }
        if self.listen.is_empty() {
            return err("listen: at least one address is needed".into());
        }
        let counts: [(&str, usize, usize, usize); 10] = [
            ("threads", self.threads, 1, 1024),
            ("connection_limit", self.connection_limit, 1, 1 << 20),
            ("backlog", self.backlog, 1, 65535),
            ("max_request_line", self.max_request_line, 64, 1 << 20),
            ("max_header_line", self.max_header_line, 64, 1 << 20),
            ("max_headers_size", self.max_headers_size, 64, 16 << 20),
            ("max_headers", self.max_headers, 1, 10_000),
            ("max_requests_per_connection", self.max_requests_per_connection, 1, usize::MAX),
            ("max_buffered_output", self.max_buffered_output, 1024, 1 << 30),
            ("body_spool_threshold", self.body_spool_threshold, 0, 1 << 30),
        ];
        for (name, value, low, high) in counts {
            if value < low || value > high {
                return err(format!("{name}: {value} is outside the allowed range {low}..={high}"));
            }
        }
        match self.workers {
            Some(0) => return err("workers: must be at least 1 (or auto)".into()),
            Some(n) if n > MAX_WORKERS => {
                return err(format!("workers: {n} is outside the allowed range 1..={MAX_WORKERS} (or auto)"))
            }
            _ => {}
        }
        if let Some(0) = self.max_queued_requests {
            return err("max_queued_requests: must be at least 1 (or auto)".into());
        }
        if self.max_header_line > self.max_headers_size {
            return err(format!(
                "max_header_line ({}) must not exceed max_headers_size ({})",
                self.max_header_line, self.max_headers_size
            ));
        }
        if self.max_request_line > self.max_headers_size {
            return err(format!(
                "max_request_line ({}) must not exceed max_headers_size ({})",
                self.max_request_line, self.max_headers_size
            ));
        }
        let durations = [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("keepalive_timeout", self.keepalive_timeout),
            ("write_timeout", self.write_timeout),
        ];
        for (name, value) in durations {
            if value.is_zero() {
                return err(format!("{name}: must be longer than zero"));
            }
            if value > Duration::from_secs(24 * 3600) {
                return err(format!("{name}: must be at most a day"));
            }
        }
        if self.worker_timeout > Duration::from_secs(24 * 3600) {
            return err("worker_timeout: must be at most a day".into());
        }
        if self.graceful_timeout > Duration::from_secs(24 * 3600) {
            return err("graceful_timeout: must be at most a day".into());
        }
        if self.linger_timeout > Duration::from_secs(60) {
            return err("linger_timeout: must be at most 60s".into());
        }
        if self.server_header.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return err("server_header: must not contain control characters".into());
        }
        if !self.url_prefix.is_empty() && (!self.url_prefix.starts_with('/') || self.url_prefix.ends_with('/')) {
            return err(format!("url_prefix: {:?} must start with / and not end with / (like /app)", self.url_prefix));
        }
        for (name, path) in [("health_path", &self.health_path), ("metrics_path", &self.metrics_path)] {
            if !path.is_empty() && (!path.starts_with('/') || path.bytes().any(|b| b <= 0x20 || b == b'?' || b == 0x7f))
            {
                return err(format!("{name}: {path:?} must be a path starting with / (like /healthz)"));
            }
        }
        if !self.health_path.is_empty() && self.health_path == self.metrics_path {
            return err("health_path and metrics_path must differ".into());
        }
        if !["error", "warn", "info", "debug", "trace", "off"].contains(&self.log_level.as_str()) {
            return err(format!("log_level: {:?} is not one of error, warn, info, debug, trace, off", self.log_level));
        }
        let trusted = TrustedProxies::parse(&self.trusted_proxies, self.trusted_proxy_hops)
            .map_err(|e| ConfigError(format!("trusted_proxies: {e}")))?;
        if self.proxy_protocol && self.trusted_proxies.trim().is_empty() {
            return err("proxy_protocol needs trusted_proxies: the header is only accepted from them".into());
        }
        self.check_tls()?;
        if self.drain_delay > Duration::from_secs(3600) {
            return err("drain_delay: must be at most an hour".into());
        }
        Ok(trusted)
    }
}

impl Config {
    /// The TLS settings agree with each other and with `listen` (the files are read later, by
    /// [`crate::tls::check`] and when the server binds).
    fn check_tls(&self) -> Result<(), ConfigError> {
        let err = |text: &str| Err(ConfigError(text.to_string()));
        let https = self.listen.iter().any(ListenAddr::is_tls);
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return err("tls_key: tls_cert is set, so its private key is needed too"),
            (None, Some(_)) => return err("tls_cert: tls_key is set, so its certificate is needed too"),
            (None, None) if https => {
                return err("listen: an https:// address needs tls_cert and tls_key (--tls-cert FILE --tls-key FILE)")
            }
            (Some(_), Some(_)) if !https => {
                return err("listen: tls_cert is set but no address is https:// (write --listen https://0.0.0.0:8443)")
            }
            _ => {}
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return err("tls_client_ca: needs tls_cert and tls_key (client certificates are asked for over TLS)");
        }
        if !["required", "optional"].contains(&self.tls_client_auth.as_str()) {
            return err(&format!("tls_client_auth: {:?} is not one of required, optional", self.tls_client_auth));
        }
        if self.tls_reload_interval > Duration::from_secs(24 * 3600) {
            return err("tls_reload_interval: must be at most a day");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_round_trips_through_its_text_form() {
        let defaults = Config::default();
        for setting in SETTINGS {
            // A different starting value makes sure `apply` really writes the value back.
            let mut parsed = Config { threads: 1, ..Config::default() };
            setting.apply(&mut parsed, &setting.show(&defaults)).unwrap();
            assert_eq!(setting.show(&parsed), setting.show(&defaults), "{}", setting.name);
        }
        defaults.validate().unwrap();
    }

    /// A setting whose help says it is for the static file app is scoped to it, so front
    /// ends without that app (the Python command) neither list nor accept it.
    #[test]
    fn static_file_settings_are_scoped_to_the_static_file_app() {
        for setting in SETTINGS {
            let says_static = setting.help.contains("static file app");
            assert_eq!(says_static, setting.scope == Scope::StaticFiles, "{}", setting.name);
        }
    }

    #[test]
    fn sizes_and_durations_accept_units() {
        let mut c = Config::default();
        Config::setting("max-body-size").unwrap().apply(&mut c, "2MiB").unwrap();
        assert_eq!(c.max_body_size, 2 * MIB);
        Config::setting("header_timeout").unwrap().apply(&mut c, "250ms").unwrap();
        assert_eq!(c.header_timeout, Duration::from_millis(250));
        Config::setting("keepalive_timeout").unwrap().apply(&mut c, "2").unwrap();
        assert_eq!(c.keepalive_timeout, Duration::from_secs(2));
        let e = Config::setting("threads").unwrap().apply(&mut c, "many").unwrap_err().0;
        assert!(e.contains("threads"), "{e}");
    }

    /// The TLS settings must agree with each other and with `listen`; each refusal names the
    /// setting to fix.
    #[test]
    fn tls_settings_must_agree_with_listen() {
        let https = || vec!["https://127.0.0.1:8443".parse().unwrap()];
        let path = || Some(PathBuf::from("x.pem"));
        let cases = [
            (Config { listen: https(), ..Config::default() }, "listen: an https:// address needs tls_cert"),
            (Config { tls_cert: path(), tls_key: path(), ..Config::default() }, "listen: tls_cert is set but no"),
            (Config { listen: https(), tls_cert: path(), ..Config::default() }, "tls_key: "),
            (Config { listen: https(), tls_key: path(), ..Config::default() }, "tls_cert: "),
            (Config { tls_client_ca: path(), ..Config::default() }, "tls_client_ca: "),
            (
                Config {
                    listen: https(),
                    tls_cert: path(),
                    tls_key: path(),
                    tls_client_auth: "maybe".into(),
                    ..Config::default()
                },
                "tls_client_auth: ",
            ),
        ];
        for (config, start) in cases {
            let e = config.validate().unwrap_err().0;
            assert!(e.starts_with(start), "{e}");
        }
        Config { listen: https(), tls_cert: path(), tls_key: path(), ..Config::default() }.validate().unwrap();
    }

    #[test]
    fn validation_names_the_setting() {
        let c = Config { threads: 0, ..Config::default() };
        assert!(c.validate().unwrap_err().0.starts_with("threads"));
        let mut c = Config::default();
        c.max_header_line = c.max_headers_size + 1;
        assert!(c.validate().unwrap_err().0.contains("max_header_line"));
        let c = Config { header_timeout: Duration::ZERO, ..Config::default() };
        assert!(c.validate().unwrap_err().0.starts_with("header_timeout"));
    }
}
