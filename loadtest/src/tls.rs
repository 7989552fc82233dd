//! Client-side TLS and DTLS for TURN (RFC 8656 §3.1), shared by turncat and the swarm: the options
//! (`--insecure`, `--sni`, `--ca`), the rustls client config and the DTLS handshake.
//!
//! ```text
//!  TlsOptions ──TlsClient::new──▶ rustls ClientConfig (ring)  ─▶ turncat: tokio-rustls stream
//!                                 │                             └▶ swarm:   ClientConnection on mio
//!                                 └ dtls Config (webrtc-rs)     ─▶ both:    DTLSConn (tokio)
//! ```
//!
//! The workspace compiles both the `ring` and `aws-lc-rs` rustls providers, so nothing here relies
//! on a process-default provider: the rustls config is built with `ring` explicitly, and `ring` is
//! installed as the default for the `dtls` crate, which builds its verifier from the default.
//! Trust: `--ca <file>` (PEM), else the system bundle when present; `--insecure` accepts any
//! certificate (self-signed test servers) but still checks the handshake signatures.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dtls::conn::DTLSConn;
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::sys::sockets;
use crate::{Error, Result};

/// A TLS failure carried inside an `io::Error` by the swarm's sans-IO TLS path, so the worker
/// counts it as a `tls` failure rather than `io`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsFailure(pub String);

/// A TLS or DTLS handshake taking longer than this fails.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The system's CA bundle (Debian/Ubuntu path), used when no `--ca` is given.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How to authenticate the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Name sent as SNI and verified against the certificate (default: the URI host).
    pub server_name: Option<String>,
    /// Accept any server certificate (self-signed test servers).
    pub insecure: bool,
    /// Trust anchors (PEM file) instead of the system bundle.
    pub ca: Option<PathBuf>,
}

/// The TLS flags of turncat and `loadtest swarm` (upstream turncat's `-i/--insecure` and `--sni`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TlsArgs {
    /// Insecure TLS/DTLS mode: accept any server certificate (self-signed servers).
    #[arg(short = 'i', long, env = "TURN_TLS_INSECURE")]
    pub insecure: bool,
    /// Server name (SNI) sent and verified over TLS/DTLS (default: the URI host).
    #[arg(long, env = "TURN_TLS_SNI")]
    pub sni: Option<String>,
    /// PEM file of the CAs trusted over TLS/DTLS (default: the system bundle).
    #[arg(long, env = "TURN_TLS_CA")]
    pub ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The options, with `host` (the URI's) as the server name unless `--sni` is given.
    pub fn options(&self, host: &str) -> TlsOptions {
        TlsOptions {
            server_name: Some(self.sni.clone().unwrap_or_else(|| host.to_owned())),
            insecure: self.insecure,
            ca: self.ca.clone(),
        }
    }
}

/// Ready-to-use client configurations for TLS and DTLS.
#[derive(Clone)]
pub struct TlsClient {
    rustls: Arc<ClientConfig>,
    name: ServerName<'static>,
    dtls: dtls::config::Config,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Builds both configs; `host` names the server when `--sni` is absent.
    pub fn new(opts: &TlsOptions, host: &str) -> Result<Self> {
        // Also the process default, from which `dtls` builds its verifiers.
        let provider = proto::tls::provider();
        let name_str = opts.server_name.as_deref().unwrap_or(host).to_owned();
        let name = ServerName::try_from(name_str.clone())
            .map_err(|e| Error::Config(format!("invalid TLS server name {name_str:?}: {e}")))?;
        let roots = roots(opts.ca.as_deref())?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS versions: {e}")))?;
        let rustls = if opts.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(roots.clone())
                .with_no_client_auth()
        };
        let dtls = dtls::config::Config {
            server_name: name_str,
            insecure_skip_verify: opts.insecure,
            roots_cas: roots,
            ..Default::default()
        };
        Ok(Self {
            rustls: Arc::new(rustls),
            name,
            dtls,
        })
    }

    /// A sans-IO TLS client connection (the swarm drives it on mio).
    pub fn connection(&self) -> Result<ClientConnection> {
        ClientConnection::new(self.rustls.clone(), self.name.clone())
            .map_err(|e| Error::Tls(format!("TLS client: {e}")))
    }

    /// Connects over TCP and completes the TLS handshake within [`HANDSHAKE_TIMEOUT`].
    pub async fn connect_tls(&self, server: SocketAddr) -> Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(server).await.map_err(|e| {
            Error::io(
                format_args!("cannot reach TURN server {server} over TCP"),
                e,
            )
        })?;
        let _ = tcp.set_nodelay(true);
        let connector = tokio_rustls::TlsConnector::from(self.rustls.clone());
        let handshake = connector.connect(self.name.clone(), tcp);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(handshake_failed("TLS", &server, &e)),
            Err(_) => Err(handshake_timeout("TLS", server)),
        }
    }

    /// Opens a UDP socket to `server` and completes the DTLS handshake within
    /// [`HANDSHAKE_TIMEOUT`].
    pub async fn connect_dtls(&self, server: SocketAddr) -> Result<Arc<DTLSConn>> {
        let sock = UdpSocket::bind(sockets::unspecified_for(server))
            .await
            .map_err(|e| Error::io("bind a UDP socket for DTLS", e))?;
        sock.connect(server)
            .await
            .map_err(|e| Error::io(format_args!("connect to {server}"), e))?;
        let handshake = DTLSConn::new(Arc::new(sock), self.dtls.clone(), true, None);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(c)) => Ok(Arc::new(c)),
            Ok(Err(e)) => Err(handshake_failed("DTLS", &server, &e)),
            Err(_) => Err(handshake_timeout("DTLS", server)),
        }
    }
}

/// The message of a failed handshake (shared by both transports and the swarm).
pub fn handshake_failed(
    what: &str,
    server: &dyn std::fmt::Display,
    e: &dyn std::fmt::Display,
) -> Error {
    Error::Tls(format!("{what} handshake with {server} failed: {e}"))
}

fn handshake_timeout(what: &str, server: SocketAddr) -> Error {
    Error::Tls(format!(
        "{what} handshake with {server} failed: no answer within {HANDSHAKE_TIMEOUT:?}"
    ))
}

/// Trust anchors: the `--ca` file (an unreadable or certificate-less file is a configuration
/// error), else the system bundle if there is one, else none (every certificate then fails).
fn roots(ca: Option<&Path>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    let (path, required) = match ca {
        Some(p) => (p, true),
        None => (Path::new(SYSTEM_BUNDLE), false),
    };
    let certs = match CertificateDer::pem_file_iter(path) {
        Ok(iter) => iter.filter_map(std::result::Result::ok).collect(),
        Err(e) if required => {
            return Err(Error::Config(format!("--ca {}: {e}", path.display())));
        }
        Err(_) => Vec::new(),
    };
    let (added, _) = store.add_parsable_certificates(certs);
    if required && added == 0 {
        return Err(Error::Config(format!(
            "--ca {}: no usable PEM certificate",
            path.display()
        )));
    }
    Ok(store)
}

/// `--insecure`: any certificate is accepted, handshake signatures are still verified.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ca_errors() {
        let opts = TlsOptions::default();
        assert!(TlsClient::new(&opts, "127.0.0.1").is_ok());
        assert!(TlsClient::new(&opts, "turn.example.com").is_ok());
        let bad_name = TlsOptions {
            server_name: Some("not a name!".into()),
            ..TlsOptions::default()
        };
        assert!(TlsClient::new(&bad_name, "h").unwrap_err().is_config());
        let missing = TlsOptions {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        let e = TlsClient::new(&missing, "h").unwrap_err();
        assert!(e.is_config() && e.to_string().contains("--ca"), "{e}");
        let insecure = TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        };
        assert!(TlsClient::new(&insecure, "h").unwrap().connection().is_ok());
    }
}
