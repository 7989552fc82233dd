//! Errors of config parsing and validation: every field error carries the dotted path of the field
//! (`listeners[1].port`) so an operator reading a log line knows what to fix.

use std::fmt;

/// Result alias of this module.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is neither valid YAML nor valid JSON.
    #[error("config syntax error: {0}")]
    Syntax(String),
    /// One field is missing, malformed or inconsistent; `path` names it (`listeners[1].port`).
    #[error("{path}: {message}")]
    Field {
        /// Dotted/indexed path of the offending field, e.g. `clusters[0].endpoints[2]`.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    /// A field error at `path`; `message` is anything printable (a text or a typed error).
    pub fn field(path: impl fmt::Display, message: impl fmt::Display) -> Self {
        Self::Field {
            path: path.to_string(),
            message: message.to_string(),
        }
    }

    /// The field path of a field error, `None` for a syntax error.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Field { path, .. } => Some(path),
            Self::Syntax(_) => None,
        }
    }
}
