//! HTTPS: TLS 1.2 and 1.3 listeners on rustls (with the `ring` provider), beside plain ones.
//!
//! Owns the certificate, key and client CA loading ([`load`]), the TLS connection the I/O loop
//! drives ([`stream`]), the reload of the certificate without a restart ([`reload`]), and
//! what a request learns of its TLS session ([`TlsInfo`], with the client's subject formatted
//! by [`subject`]). Never parses HTTP and never decides anything about a request: over TLS
//! the connection state machine, its limits and its deadlines are the plain ones.
//!
//! A listener written `https://HOST:PORT` in `listen` speaks TLS with `tls_cert` and
//! `tls_key`; the others stay plain. The configuration in force is kept behind a lock and
//! taken for each new connection, so a reload (SIGHUP, or the files changing on disk)
//! applies to new connections and never disturbs open ones.

pub(crate) mod load;
pub(crate) mod reload;
pub(crate) mod stream;
pub(crate) mod subject;

use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConnection;

use crate::config::Config;

pub use reload::reload_certificates;

/// What a request knows of the TLS session it came over: the protocol, the cipher suite, and
/// the client certificate's subject when `tls_client_ca` is set and the client sent one (it was
/// verified during the handshake; without a valid one the handshake fails or, with
/// `tls_client_auth = optional`, there is no subject).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    protocol: &'static str,
    cipher_suite: &'static str,
    client_subject: Option<String>,
}

impl TlsInfo {
    pub(crate) fn of(conn: &ServerConnection) -> TlsInfo {
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        };
        let cipher_suite = conn.negotiated_cipher_suite().and_then(|s| s.suite().as_str()).unwrap_or("unknown");
        let client_subject =
            conn.peer_certificates().and_then(|chain| chain.first()).and_then(|cert| subject::subject_rfc4514(cert));
        TlsInfo { protocol, cipher_suite, client_subject }
    }

    /// `"TLSv1.3"` or `"TLSv1.2"` (the names `SSL_PROTOCOL` uses).
    pub fn protocol(&self) -> &'static str {
        self.protocol
    }

    /// The IANA-style name rustls gives the suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub fn cipher_suite(&self) -> &'static str {
        self.cipher_suite
    }

    /// The verified client certificate's subject as an RFC 4514 string, such as
    /// `CN=alice,O=Example,C=DE` (last RDN first); `None` when the client sent no certificate.
    pub fn client_subject(&self) -> Option<&str> {
        self.client_subject.as_deref()
    }
}

/// The TLS configuration in force for new connections, and what is needed to reload it.
pub(crate) struct Tls {
    current: RwLock<Arc<rustls::ServerConfig>>,
    settings: Config,
}

impl Tls {
    /// Loads the certificate and key `config` names; `Ok(None)` without `tls_cert`. The error
    /// is one line naming the file at fault.
    pub(crate) fn load(config: &Config) -> Result<Option<Tls>, String> {
        Ok(load::build(config)?.map(|server| Tls { current: RwLock::new(server), settings: config.clone() }))
    }

    /// The configuration for a new connection.
    pub(crate) fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the files again; on success new connections use them, on failure the
    /// configuration in force stays and the error is returned.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let fresh = load::build(&self.settings)?.ok_or("tls_cert is no longer set")?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }
}

/// Checks that the certificate and key `config` names can be loaded (for `--check-config`
/// and before a server starts): one line naming the file at fault.
pub(crate) fn check(config: &Config) -> Result<(), String> {
    load::build(config).map(drop)
}
