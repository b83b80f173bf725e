//! Reading the certificate chain, the private key and the client CA bundle from PEM files into
//! a rustls server configuration: TLS 1.2 and 1.3 only, ALPN `http/1.1`, session resumption.
//! Owns [`build`] and its one-line errors. Never holds a connection.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::Config;

/// Sessions remembered for TLS 1.2 session-ID resumption (TLS 1.3 and 1.2 clients that take
/// tickets resume from the ticket, which costs the server no memory).
const SESSION_CACHE_ENTRIES: usize = 4096;

/// Every PEM file the TLS settings name: the key, the certificate chain, the client CA bundle.
pub(crate) fn files(config: &Config) -> Vec<&Path> {
    [&config.tls_cert, &config.tls_key, &config.tls_client_ca].into_iter().flatten().map(|p| p.as_path()).collect()
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path, what)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the {what} {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("the {what} {} holds no CERTIFICATE block", path.display()));
    }
    Ok(certs)
}

/// The server configuration for `config`'s certificate, key and client CA, read from disk
/// now. `Ok(None)` when no certificate is configured. Errors are one line naming the file.
pub(crate) fn build(config: &Config) -> Result<Option<Arc<ServerConfig>>, String> {
    let (Some(cert_path), Some(key_path)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let chain = certificates(cert_path, "certificate file (tls_cert)")?;
    let key_pem = read(key_path, "key file (tls_key)")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "the key file (tls_key) {} holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            key_path.display()
        )
    })?;
    // rustls 0.23.48 marks the ring provider deprecated because it has no post-quantum key
    // exchange (X25519MLKEM768); aws-lc-rs has one but needs cmake and nasm to cross-build for
    // Windows with mingw. The classical groups (X25519, P-256, P-384) stay safe.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    let builder = match &config.tls_client_ca {
        None => builder.with_no_client_auth(),
        Some(ca_path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca_path, "client CA file (tls_client_ca)")? {
                roots.add(cert).map_err(|e| {
                    format!(
                        "the client CA file (tls_client_ca) {} holds an unusable certificate: {e}",
                        ca_path.display()
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier =
                if config.tls_client_auth == "optional" { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier
                .build()
                .map_err(|e| format!("the client CA file (tls_client_ca) {}: {e}", ca_path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "the key file (tls_key) {} does not match the certificate in {}",
            key_path.display(),
            cert_path.display()
        ),
        e => format!("the certificate {} or key {} cannot be used: {e}", cert_path.display(), key_path.display()),
    })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    server.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    server.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| format!("TLS session tickets: {e}"))?;
    // A client that cannot read the server's preference order gets the best suite anyway.
    server.ignore_client_order = true;
    Ok(Some(Arc::new(server)))
}
