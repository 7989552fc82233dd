//! TURN-DTLS (RFC 8656 §3.1, TURN over DTLS 1.2 over UDP) with the webrtc-rs `dtls` crate: pure Rust,
//! maintained with the `turn`/`webrtc-util` 0.17 family already in the tree, and it takes the
//! certificate and a `ring` key directly (no OpenSSL). The listener socket (SO_REUSEPORT, bound by
//! the control plane so a restarted listener can bind while the old socket closes) is demultiplexed
//! per client address by our own [`demux`] (only an epoch-0 ClientHello opens an association, entries
//! go with their association, half-open handshakes are bounded); each association runs its handshake
//! within [`tls::HANDSHAKE_TIMEOUT`](super::tls::HANDSHAKE_TIMEOUT) in its own task, then every record
//! is one STUN message or ChannelData frame fed to the engine like a TURN-TCP frame.
//!
//! ```text
//!   UDP socket ─▶ demux ─new client─▶ task: DTLS handshake ─▶ read record ─▶ Ingress::input
//!                   ├─ known client ─▶ its queue ─┘   └─ error/timeout: counted, closed, entry freed
//!                   └─ established, app data only ─▶ decrypt ─▶ Ingress::input (`fast`)
//! ```
//! All associations of a listener live on one worker (the one that started the listener).

mod demux;
mod fast;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use dtls::cipher_suite::CipherSuiteId;
use dtls::config::{Config, ExtendedMasterSecretType};
use dtls::conn::DTLSConn;
use dtls::crypto::{Certificate, CryptoPrivateKey, CryptoPrivateKeyKind};
use proto::config::ListenerConfig;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use tokio::net::UdpSocket;
use tokio::task::{AbortHandle, JoinSet};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use webrtc_util::Conn as _;

use super::conns::{ConnPermit, OpenConnection};
use super::error::ListenerError;
use super::ingress::Ingress;
use super::shard::RX_BUF;
use super::sink::{ClientSink, FrameSink};
use super::tls::HANDSHAKE_TIMEOUT;
use crate::engine::DropReason;
use demux::{ClientConn, Demux, EntryGuard, Routed};
use fast::FastPath;

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
pub(crate) fn config(l: &ListenerConfig) -> Result<DtlsConfig, ListenerError> {
    // `dtls` builds its (unused, server-side) peer verifiers with the process-default provider.
    proto::tls::provider();
    let (certs, key) = super::tls::cert_and_key(l)?;
    let key = match key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => {
            let why = "DTLS needs a PKCS#8 (\"PRIVATE KEY\") PEM key";
            return Err(ListenerError::Key(why.into()));
        }
    };
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key, &SystemRandom::new())
            .map_err(|e| ListenerError::Key(format!("DTLS needs an ECDSA P-256 key: {e}")))?;
    // Unused by a server, but `dtls` generates a throwaway root certificate (a key pair) for every
    // association when this store is empty: a costly step for each spoofed ClientHello.
    let mut roots_cas = rustls::RootCertStore::empty();
    if let Some(own) = certs.first() {
        let _ = roots_cas.add(own.clone());
    }
    let certificate = Certificate {
        certificate: certs,
        private_key: CryptoPrivateKey {
            kind: CryptoPrivateKeyKind::Ecdsa256(pair),
            serialized_der: key,
        },
    };
    Ok(DtlsConfig(Config {
        certificates: vec![certificate],
        roots_cas,
        // AES-GCM only: `dtls`'s CBC (and ChaCha20) record decryption trusts record lengths, and
        // every WebRTC stack offers ECDHE-ECDSA-AES128-GCM-SHA256.
        cipher_suites: vec![CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256],
        extended_master_secret: ExtendedMasterSecretType::Request,
        ..Config::default()
    }))
}

/// Fuzzing entry: every check the listener runs on a datagram before `dtls` sees it.
pub(super) fn fuzz_datagram(pkt: &[u8]) {
    let _ = demux::opens_association(pkt);
    let _ = fast::well_formed(pkt);
    let _ = fast::only_app_data(pkt);
    let _ = fast::server_hello_suite(pkt);
}

/// Starts the supervised DTLS listener task on the current worker, serving the bound socket `sock`.
pub(crate) fn spawn(
    ingress: &Ingress,
    name: &Arc<str>,
    sock: std::net::UdpSocket,
    cfg: DtlsConfig,
) -> Vec<AbortHandle> {
    let sock = match UdpSocket::from_std(sock) {
        Ok(sock) => Arc::new(sock),
        Err(error) => {
            tracing::error!(%error, "cannot register a DTLS listener socket");
            return Vec::new();
        }
    };
    let ingress = ingress.clone();
    let stats = ingress.stats.clone();
    vec![super::supervise::listener(name.clone(), stats, move || {
        accept(ingress.clone(), sock.clone(), cfg.clone())
    })]
}

/// Reads the listener socket and routes each datagram to its client's association, starting one for
/// a new client's ClientHello. Associations are aborted with the listener, like its allocations.
async fn accept(ingress: Ingress, sock: Arc<UdpSocket>, cfg: DtlsConfig) {
    let demux = Demux::new(sock.clone());
    let mut conns = JoinSet::new();
    let mut buf = vec![0u8; RX_BUF];
    loop {
        tokio::select! {
            got = sock.recv_from(&mut buf) => match got {
                Ok((n, client)) => {
                    let pkt = buf.get(..n).unwrap_or_default();
                    match Demux::route(&demux, client, pkt) {
                        Routed::Delivered => {}
                        Routed::Refused => ingress.stats.drop_packet(DropReason::Malformed),
                        Routed::Opened(raw, guard) => match ingress.admit(client) {
                            Some(permit) => {
                                let assoc = Association { ingress: ingress.clone(), client };
                                let cfg = cfg.0.clone();
                                conns.spawn_local(assoc.serve(raw, cfg, guard, permit));
                            }
                            None => ingress.stats.drop_packet(DropReason::ConnectionLimit),
                        },
                    }
                }
                Err(error) => tracing::debug!(%error, "DTLS listener receive error"),
            },
            Some(ended) = conns.join_next(), if !conns.is_empty() => {
                super::supervise::connection_ended(ended, &ingress.stats);
            }
        }
    }
}

/// One client's DTLS association.
struct Association {
    ingress: Ingress,
    client: SocketAddr,
}

impl Association {
    /// Feeds one decrypted record to the engine; true when `out` holds a reply.
    fn input(
        &self,
        record: &[u8],
        local_ip: Option<std::net::IpAddr>,
        sink: &Rc<FrameSink>,
        out: &mut Vec<u8>,
    ) -> bool {
        let client_sink = || ClientSink::Framed(sink.clone());
        let now = Instant::now();
        self.ingress
            .input(now, self.client, local_ip, record, client_sink, out)
    }

    /// Handshakes the association, then feeds its records to the engine until it ends or idles
    /// out. `guard` keeps the client's demultiplexer entry for exactly as long.
    async fn serve(
        self,
        raw: Arc<ClientConn>,
        cfg: Config,
        mut guard: EntryGuard,
        _permit: ConnPermit,
    ) {
        let stats = self.ingress.stats.clone();
        let _open = OpenConnection::new(&stats);
        let limits = self.ingress.shard.env.limits.clone();
        let handshake = tokio::time::timeout(
            HANDSHAKE_TIMEOUT.min(limits.first_request_timeout),
            DTLSConn::new(raw.clone(), cfg, false, None),
        );
        let done = tokio::select! {
            done = handshake => done.ok().and_then(Result::ok),
            () = guard.removed() => None,
        };
        let Some(dtls) = done else {
            tracing::debug!(client = %self.client, "DTLS handshake failed, timed out or evicted");
            stats.drop_packet(DropReason::TlsHandshake);
            return;
        };
        guard.established();
        let dtls = Arc::new(dtls);
        let sink = Rc::new(FrameSink::dtls(dtls.clone(), stats.clone()));
        let local_ip = raw.local_addr().ok().map(|a| a.ip());
        let (replies, replies_rx) = tokio::sync::mpsc::channel(fast::REPLIES);
        let parts = fast::Parts {
            ingress: self.ingress.clone(),
            client: self.client,
            sink: sink.clone(),
            local_ip,
            replies,
        };
        let fast = match raw.suite() {
            Some(suite) => FastPath::new(&dtls, suite, parts).await.map(Rc::new),
            None => None,
        };
        guard.set_fast(fast.clone());
        self.records(&dtls, &sink, local_ip, fast.as_deref(), replies_rx)
            .await;
        // No record may reach the engine for this client once it is gone.
        guard.set_fast(None);
        self.ingress.client_gone(self.client);
        let _ = dtls.close().await;
    }

    /// The association's loop: records `dtls` decrypted, replies of the fast path, idle timeout.
    async fn records(
        &self,
        dtls: &DTLSConn,
        sink: &Rc<FrameSink>,
        local_ip: Option<std::net::IpAddr>,
        fast: Option<&FastPath>,
        mut replies_rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    ) {
        let idle_timeout = self.ingress.shard.env.limits.idle_timeout;
        let mut buf = vec![0u8; RX_BUF];
        let mut out = Vec::new();
        let mut last_read = Instant::now();
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);
        loop {
            tokio::select! {
                got = dtls.read(&mut buf, None) => {
                    let Ok(n) = got else { break };
                    last_read = Instant::now();
                    let record = buf.get(..n).unwrap_or_default();
                    if self.input(record, local_ip, sink, &mut out) {
                        sink.send(&out).await;
                    }
                }
                Some(reply) = replies_rx.recv() => sink.send(&reply).await,
                () = &mut idle => {
                    let last = fast.map_or(last_read, |f| f.last_active.get().max(last_read));
                    if last.elapsed() >= idle_timeout && !self.ingress.has_allocation(self.client) {
                        self.ingress.stats.drop_packet(DropReason::Timeout);
                        break;
                    }
                    // Idle but holding an allocation: look again a whole timeout later.
                    let from = if last.elapsed() >= idle_timeout { Instant::now() } else { last };
                    idle.as_mut().reset((from + idle_timeout).into());
                }
            }
        }
    }
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
        let cert = include_str!("../testdata/cert.pem");
        let key = include_str!("../testdata/key.pem");
        let cfg = config(&listener(cert, key)).expect("config");
        assert_eq!(cfg.0.certificates.len(), 1);
        let err = config(&listener("junk", key))
            .expect_err("bad cert")
            .to_string();
        assert!(err.starts_with("cert:"), "{err}");
        let err = config(&listener(cert, "junk"))
            .expect_err("bad key")
            .to_string();
        assert!(err.starts_with("key:"), "{err}");
    }
}
