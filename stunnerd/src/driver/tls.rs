//! TURN-TLS (RFC 8656 §3.1, TURN over TLS over TCP): the rustls server config built from a listener's
//! PEM `cert`/`key` (the `ring` provider set explicitly, TLS 1.2 and 1.3), and the handshake that
//! fronts the TURN-TCP stream path of `stream.rs`. A handshake that fails (plaintext or garbage on the
//! port, a client that rejects us) or does not finish within [`HANDSHAKE_TIMEOUT`] (slow-loris)
//! closes the connection and is counted as `stunner_listener_packets_dropped{reason="tls_handshake"}`.
//!
//! ```text
//!   accept ─▶ handshake (≤ HANDSHAKE_TIMEOUT) ─▶ stream::Conn::serve (framing ▶ Ingress::input), as TURN-TCP
//!                 └─ error / timeout ─▶ counted, closed
//! ```

use std::sync::Arc;
use std::time::Duration;

use proto::config::ListenerConfig;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use super::error::ListenerError;
use crate::engine::{DropReason, ListenerStats};

/// Longest time a client may take to complete the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS side of a TURN-TLS listener: its server config (certificate and key).
#[derive(Clone)]
pub(crate) struct TlsAcceptor(tokio_rustls::TlsAcceptor);

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor").finish_non_exhaustive()
    }
}

/// The TLS acceptor of listener `l`, or why its certificate or key cannot be used.
pub(crate) fn acceptor(l: &ListenerConfig) -> Result<TlsAcceptor, ListenerError> {
    server_config(l).map(|cfg| TlsAcceptor(Arc::new(cfg).into()))
}

/// The certificate chain and private key of listener `l` (base64 PEM in the config).
pub(crate) fn cert_and_key(
    l: &ListenerConfig,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ListenerError> {
    let cert_pem = l
        .cert_pem()
        .map_err(|e| ListenerError::Cert(e.to_string()))?;
    let key_pem = l.key_pem().map_err(|e| ListenerError::Key(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ListenerError::Cert(format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(ListenerError::Cert("no PEM certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| ListenerError::Key(format!("not a PEM private key: {e}")))?;
    Ok((certs, key))
}

fn server_config(l: &ListenerConfig) -> Result<ServerConfig, ListenerError> {
    let (certs, key) = cert_and_key(l)?;
    // An explicit provider: the process default may be unset or another one (aws-lc-rs).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ListenerError::Rejected(format!("TLS set-up: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ListenerError::Rejected(e.to_string()))
}

/// Runs the server handshake on `stream` within [`HANDSHAKE_TIMEOUT`]; `None` (counted) on failure.
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    stats: &ListenerStats,
) -> Option<TlsStream<TcpStream>> {
    let peer = stream.peer_addr().ok();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.0.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(error)) => {
            tracing::debug!(?peer, %error, "TLS handshake failed");
            stats.drop_packet(DropReason::TlsHandshake);
            None
        }
        Err(_) => {
            tracing::debug!(?peer, "TLS handshake timed out");
            stats.drop_packet(DropReason::TlsHandshake);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// A self-signed P-256 certificate and key (openssl req -x509 -newkey ec ...), for tests only.
    const CERT: &str = include_str!("testdata/cert.pem");
    const KEY: &str = include_str!("testdata/key.pem");

    fn listener(cert: &str, key: &str) -> ListenerConfig {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        ListenerConfig {
            name: "tls".into(),
            cert: b64(cert),
            key: b64(key),
            ..ListenerConfig::default()
        }
    }

    #[test]
    fn good_cert_and_key_build_a_config() {
        let cfg = server_config(&listener(CERT, KEY)).expect("config");
        assert!(cfg.alpn_protocols.is_empty());
    }

    #[test]
    fn broken_cert_or_key_is_a_clear_error() {
        let err = server_config(&listener("garbage", KEY))
            .expect_err("bad cert")
            .to_string();
        assert!(err.starts_with("cert:"), "{err}");
        let err = server_config(&listener(CERT, "garbage"))
            .expect_err("bad key")
            .to_string();
        assert!(err.starts_with("key:"), "{err}");
        // A key that is valid PEM but does not belong to the certificate.
        let err = server_config(&listener(CERT, OTHER_KEY))
            .expect_err("mismatch")
            .to_string();
        assert!(err.contains("rejected"), "{err}");
    }

    const OTHER_KEY: &str = include_str!("testdata/other-key.pem");
}
