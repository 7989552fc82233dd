//! The crate's error type.

use std::io;

/// Everything that can go wrong in the load-test library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed; `context` says which.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (a path, an address, an action).
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A `/proc` file did not have the expected format.
    #[error("cannot parse {0}")]
    Proc(String),
    /// The command line or a derived setting is invalid (binaries exit with code 64).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A TURN exchange failed in a way the user must act on (auth, permission, reachability).
    #[error("{0}")]
    Turn(String),
    /// A TLS or DTLS handshake (or record) failed; the message names the server.
    #[error("{0}")]
    Tls(String),
    /// A server process under test failed to start or died.
    #[error("server {name}: {reason}")]
    Server {
        /// Which server (stunnerd, coturn).
        name: String,
        /// What happened, including its stderr tail when available.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl std::fmt::Display, source: io::Error) -> Self {
        Self::Io {
            context: context.to_string(),
            source,
        }
    }

    /// True for configuration errors (exit code 64).
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Config(_))
    }
}

/// Result with the crate's error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
