//! TURN-DTLS (RFC 8656 §3.1, TURN over DTLS 1.2 over UDP) with the webrtc-rs `dtls` crate: pure Rust,
//! maintained with the `turn`/`webrtc-util` 0.17 family already in the tree, and it takes the
//! certificate and a `ring` key directly (no OpenSSL). The listener socket is demultiplexed per client
//! address by `webrtc-util`'s UDP listener (only datagrams that open with a DTLS handshake record
//! create an association); each association runs its handshake within
//! [`tls::HANDSHAKE_TIMEOUT`](super::tls::HANDSHAKE_TIMEOUT) in its own task, then every record is
//! one STUN message or ChannelData frame fed to the engine like a TURN-TCP frame.
//!
//! ```text
//!   UDP socket ─▶ webrtc-util listener ─accept─▶ task: DTLS handshake ─▶ read record ─▶ tcp::Conn::frame
//!                                                      └─ error/timeout: counted, closed
//! ```
//! All associations of a listener live on one worker (the one that started the listener).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use dtls::config::{Config, ExtendedMasterSecretType};
use dtls::conn::DTLSConn;
use dtls::crypto::{Certificate, CryptoPrivateKey, CryptoPrivateKeyKind};
use proto::config::ListenerConfig;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use tokio::task::{AbortHandle, JoinSet};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use webrtc_util::conn::Listener;
use webrtc_util::conn::conn_udp_listener::ListenConfig;

use super::tcp::{Conn, OpenConnection, TcpSink};
use super::tls::HANDSHAKE_TIMEOUT;
use super::worker::{RelayIp, Worker};
use crate::engine::{DropReason, ListenerId, ListenerStats};

/// An association idle this long with no allocation is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts (100 ms apart) at binding the listener socket.
const BIND_ATTEMPTS: u32 = 30;
/// DTLS record content type of handshake messages: the only kind that may open an association.
const HANDSHAKE_RECORD: u8 = 22;

/// The DTLS server config of a listener (cloneable, sent to the worker that serves it).
#[derive(Clone)]
pub(crate) struct DtlsConfig(Config);

impl std::fmt::Debug for DtlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsConfig").finish_non_exhaustive()
    }
}

/// The DTLS config of listener `l`, or why its certificate or key cannot be used (ECDSA P-256 keys
/// in PKCS#8 PEM).
pub(crate) fn config(l: &ListenerConfig) -> Result<DtlsConfig, String> {
    // `dtls` builds its (unused, server-side) peer verifiers with the process-default rustls
    // provider, which panics when none is installed and both `ring` and `aws-lc-rs` are compiled
    // in: install `ring` unless some provider already is (an error then is expected and harmless).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (certs, key) = super::tls::cert_and_key(l)?;
    let key = match key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => return Err("key: DTLS needs a PKCS#8 (\"PRIVATE KEY\") PEM key".into()),
    };
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key, &SystemRandom::new())
            .map_err(|e| format!("key: DTLS needs an ECDSA P-256 key: {e}"))?;
    let certificate = Certificate {
        certificate: certs,
        private_key: CryptoPrivateKey {
            kind: CryptoPrivateKeyKind::Ecdsa256(pair),
            serialized_der: key,
        },
    };
    Ok(DtlsConfig(Config {
        certificates: vec![certificate],
        extended_master_secret: ExtendedMasterSecretType::Request,
        ..Config::default()
    }))
}

/// Starts the DTLS listener task on the current worker.
pub(crate) fn spawn_listener(
    worker: &Rc<Worker>,
    id: ListenerId,
    addr: SocketAddr,
    cfg: DtlsConfig,
    relay_ip: RelayIp,
    stats: Arc<ListenerStats>,
) -> Vec<AbortHandle> {
    let conn = Conn {
        worker: worker.clone(),
        id,
        client: addr,
        relay_ip,
        stats,
        tls: None,
    };
    vec![tokio::task::spawn_local(accept(conn, addr, cfg)).abort_handle()]
}

type Filter = Box<dyn Fn(&[u8]) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Closes the UDP listener when the accept task ends or is aborted (frees the port).
struct CloseOnDrop(Arc<dyn Listener + Send + Sync>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let l = self.0.clone();
        tokio::task::spawn_local(async move {
            let _ = l.close().await;
        });
    }
}

async fn accept(proto: Conn, addr: SocketAddr, cfg: DtlsConfig) {
    let filter: Filter = Box::new(|pkt: &[u8]| {
        let ok = pkt.first() == Some(&HANDSHAKE_RECORD);
        Box::pin(async move { ok })
    });
    let mut lc = ListenConfig {
        accept_filter: Some(filter),
        ..ListenConfig::default()
    };
    let Some(listener) = bind(&mut lc, addr).await else {
        return;
    };
    let _close = CloseOnDrop(listener.clone());
    // Associations are aborted with the listener, like its allocations.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((raw, client)) => {
                    let conn = proto.with_client(client);
                    conns.spawn_local(serve(conn, raw, cfg.0.clone()));
                }
                Err(error) => {
                    tracing::debug!(%error, "DTLS listener closed");
                    return;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Binds the listener socket. The previous socket of a restarted listener (certificate rotation)
/// closes asynchronously and has no SO_REUSEPORT, so binding is retried for a while.
async fn bind(lc: &mut ListenConfig, addr: SocketAddr) -> Option<Arc<dyn Listener + Send + Sync>> {
    let mut attempts = 0;
    loop {
        match lc.listen(addr).await {
            Ok(l) => return Some(Arc::new(l)),
            Err(error) if attempts >= BIND_ATTEMPTS => {
                tracing::error!(%addr, %error, "cannot bind the DTLS listener");
                return None;
            }
            Err(_) => attempts += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Handshakes one association, then feeds its records to the engine until it ends or idles out.
async fn serve(conn: Conn, raw: Arc<dyn webrtc_util::Conn + Send + Sync>, cfg: Config) {
    let _open = OpenConnection::new(&conn.stats);
    let handshake = DTLSConn::new(raw.clone(), cfg, false, None);
    let dtls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(d)) => Arc::new(d),
        failed => {
            tracing::debug!(client = %conn.client, ok = failed.is_ok(), "DTLS handshake failed");
            conn.stats.drop_packet(DropReason::TlsHandshake);
            let _ = raw.close().await;
            return;
        }
    };
    let sink = Rc::new(TcpSink::dtls(dtls.clone(), conn.stats.clone()));
    let local_ip = raw.local_addr().ok().map(|a| a.ip());
    let mut buf = vec![0u8; super::worker::RX_BUF];
    let mut out = Vec::new();
    loop {
        match dtls.read(&mut buf, Some(IDLE_TIMEOUT)).await {
            Ok(n) => {
                let frame = buf.get(..n).unwrap_or_default();
                if conn.frame(frame, local_ip, &sink, &mut out) {
                    sink.send(&out).await;
                }
            }
            Err(dtls::Error::ErrDeadlineExceeded) if conn.has_allocation() => {}
            Err(_) => break,
        }
    }
    conn.worker
        .engine
        .borrow_mut()
        .client_gone(conn.id, conn.client);
    let _ = dtls.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn listener(cert: &str, key: &str) -> ListenerConfig {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        ListenerConfig {
            name: "dtls".into(),
            cert: b64(cert),
            key: b64(key),
            ..ListenerConfig::default()
        }
    }

    #[test]
    fn p256_pkcs8_key_builds_a_config_and_garbage_is_named() {
        let cert = include_str!("testdata/cert.pem");
        let key = include_str!("testdata/key.pem");
        let cfg = config(&listener(cert, key)).expect("config");
        assert_eq!(cfg.0.certificates.len(), 1);
        let err = config(&listener("junk", key)).expect_err("bad cert");
        assert!(err.starts_with("cert:"), "{err}");
        let err = config(&listener(cert, "junk")).expect_err("bad key");
        assert!(err.starts_with("key:"), "{err}");
    }
}
