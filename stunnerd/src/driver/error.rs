//! Why the driver could not apply (part of) a config: the errors of starting a listener (its
//! address, binding its sockets, its certificate and key) and of the config as a whole.

use std::net::SocketAddr;

/// Why a listener could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// Its sockets could not be bound.
    #[error("cannot bind {transport} {addr}: {source}")]
    Bind {
        /// `UDP` or `TCP`.
        transport: &'static str,
        /// The address bound.
        addr: SocketAddr,
        /// The system's answer.
        #[source]
        source: std::io::Error,
    },
    /// The certificate (chain) is missing or unreadable.
    #[error("cert: {0}")]
    Cert(String),
    /// The private key is missing, unreadable or of a kind the transport cannot use.
    #[error("key: {0}")]
    Key(String),
    /// The TLS library refused the certificate and key (e.g. they do not belong together).
    #[error("cert/key rejected: {0}")]
    Rejected(String),
}

/// Why (part of) a config could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A listener's address is not an IP address (the whole config is refused).
    #[error("listener {listener}: invalid address {value:?}")]
    Address {
        /// Listener name.
        listener: String,
        /// The address as written.
        value: String,
    },
    /// A cluster's endpoints do not parse (the whole config is refused).
    #[error("cluster {cluster}: {source}")]
    Endpoints {
        /// Cluster name.
        cluster: String,
        /// What is wrong.
        #[source]
        source: proto::config::ConfigError,
    },
    /// The auth section lacks a credential.
    #[error("auth.credentials.{0}: required for this auth type")]
    MissingCredential(&'static str),
    /// A listener could not be started; the rest of the config is in force.
    #[error("listener {name}: {source}")]
    Listener {
        /// Listener name.
        name: String,
        /// What failed.
        #[source]
        source: ListenerError,
    },
}
