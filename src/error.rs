//! Errors: start-up failures a user can cause ([`Error`]).
//!
//! Owns [`Error`], what `Server::bind`/`start` and the launchers return. Never a per-request
//! error: the server's own refusals are `http1::status::Rejection`, mapped to statuses there.

use std::fmt;
use std::io;

use crate::config::ConfigError;
use crate::engine::net::ListenAddr;

/// Why a server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; the message names the setting.
    Config(ConfigError),
    /// An address could not be bound (in use, not local, no permission).
    Bind {
        /// The address that failed.
        addr: ListenAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// Another operating-system failure at start-up (creating the poller, spawning threads).
    Io(io::Error),
    /// The signal handler could not be installed (for example, one is installed already:
    /// there can be one per process).
    Signals(Box<dyn std::error::Error + Send + Sync>),
    /// Worker processes could not run: a supervisor whose worker could not be spawned or could
    /// not start (the message says which and why).
    Worker(String),
    /// The TLS certificate, key or client CA cannot be used (unreadable, not PEM, a key that
    /// does not match the certificate); the message names the file.
    Tls(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "invalid configuration: {e}"),
            Error::Bind { addr, source } if source.kind() == io::ErrorKind::AddrInUse => {
                write!(f, "cannot listen on {addr}: the address is already in use")
            }
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Io(e) => write!(f, "cannot start the server: {e}"),
            Error::Signals(e) => write!(f, "cannot install the signal handler: {e}"),
            Error::Worker(e) => f.write_str(e),
            Error::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(e) => Some(e),
            Error::Bind { source, .. } => Some(source),
            Error::Io(e) => Some(e),
            Error::Signals(e) => Some(&**e),
            Error::Worker(_) => None,
            Error::Tls(_) => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}
