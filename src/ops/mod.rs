//! Operations: what an operator runs the server with besides HTTP itself.
//!
//! Owns trusted proxies and the forwarded headers they add ([`proxy`]), the PROXY protocol,
//! the access log, the metrics counters and their text rendering, the report a worker process
//! sends its supervisor, resident memory, the rate-limited warnings, and the `--healthcheck`
//! probe. Never touches a client socket or runs the handler: the engine calls in here with
//! plain values and gets plain values back.

pub(crate) mod access_log;
pub(crate) mod healthcheck;
pub(crate) mod memory;
pub(crate) mod metrics;
pub(crate) mod proxy;
pub(crate) mod proxy_protocol;
pub(crate) mod report;
pub(crate) mod warn;
