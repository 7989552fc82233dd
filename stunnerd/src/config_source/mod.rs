//! Where stunnerd's config comes from (docs/ARCHITECTURE.md §5.2): a file (path or `file://`), or the operator's
//! Config Discovery Service (`http(s)://host:port`, `ws(s)://host:port`).
//!
//! ```text
//!  file ──poll 1 s──┐                                   ┌─ invalid: warn with field path, skip
//!                   ├─▶ parse ─▶ deleted marker? skip ─▶ validate ─▶ changed? ─▶ mpsc ─▶ dataplane
//!  CDS ──WebSocket──┘   (env expanded)                                (== last delivered? skip)
//! ```
//!
//! [`load`] fetches one validated config; [`watch`] streams validated configs, each different from
//! the previous one, until the receiver is dropped. An invalid config never reaches the receiver,
//! so the previous one stays in force.

mod cds;
pub use cds::CdsServer;
mod file;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use proto::config::{ConfigError, StunnerConfig};
use tokio::sync::mpsc;

/// Why a config could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The origin string is not a path, `file://`, `http(s)://` or `ws(s)://` URL.
    #[error("invalid config origin {origin:?}: {reason}")]
    InvalidOrigin {
        /// The origin as given.
        origin: String,
        /// What is wrong with it.
        reason: OriginError,
    },
    /// A CDS origin needs the dataplane identity `namespace/name` (`--id` or
    /// `STUNNER_NAMESPACE`/`STUNNER_NAME`).
    #[error("a CDS config origin needs the dataplane id as <namespace>/<name>, got {0:?}")]
    MissingId(String),
    /// Reading the file or talking to the server failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CDS server answered something other than a config.
    #[error("config discovery server: {0}")]
    Server(String),
    /// The config was obtained but is invalid.
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
}

/// What is wrong with a config origin string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// The origin is empty.
    #[error("empty")]
    Empty,
    /// A URL-like origin without `scheme://`.
    #[error("missing scheme")]
    MissingScheme,
    /// `https://` or `wss://`: stunnerd has no TLS client for CDS.
    #[error(
        "{0}:// CDS origins are not supported (no TLS client); use http:// or ws:// \
         (the CDS server runs inside the cluster)"
    )]
    TlsUnsupported(String),
    /// A scheme other than `file`, `http(s)` or `ws(s)`.
    #[error("unsupported scheme {0:?}; use file://, http(s):// or ws(s)://")]
    UnsupportedScheme(String),
    /// Nothing between `scheme://` and the path.
    #[error("missing host")]
    MissingHost,
}

/// Result alias of this module.
pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// Identity and timing of a config source.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Dataplane id `namespace/name`, required for CDS origins.
    pub id: Option<String>,
    /// Node name sent to the CDS server (`?node=`), from `STUNNER_NODENAME`.
    pub node: Option<String>,
    /// File poll period (content compared each time).
    pub poll_interval: Duration,
    /// CDS WebSocket ping period.
    pub ping_interval: Duration,
    /// CDS read deadline: with no frame (pongs included) for this long the connection is dropped.
    pub read_timeout: Duration,
    /// First reconnect delay; doubles per failed attempt up to `retry_max`, reset once connected.
    pub retry_initial: Duration,
    /// Largest reconnect delay.
    pub retry_max: Duration,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            id: None,
            node: None,
            poll_interval: Duration::from_secs(1),
            ping_interval: Duration::from_secs(5),
            read_timeout: Duration::from_secs(8),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(10),
        }
    }
}

impl SourceOptions {
    /// Defaults with the dataplane identity set; empty strings count as unset.
    pub fn from_identity(id: Option<String>, node: Option<String>) -> Self {
        let keep = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        Self {
            id: keep(id),
            node: keep(node),
            ..Self::default()
        }
    }
}

/// A parsed config origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A local file, watched by polling.
    File(PathBuf),
    /// A CDS server.
    Cds(CdsServer),
}

impl Origin {
    /// Parses `path`, `file://path`, `http(s)://host[:port]` or `ws(s)://host[:port]`.
    pub fn parse(origin: &str) -> Result<Self> {
        let invalid = |reason| SourceError::InvalidOrigin {
            origin: origin.into(),
            reason,
        };
        let trimmed = origin.trim();
        if trimmed.is_empty() {
            return Err(invalid(OriginError::Empty));
        }
        if let Some(path) = trimmed.strip_prefix("file://") {
            return Ok(Self::File(PathBuf::from(path)));
        }
        match trimmed.split_once("://") {
            Some(_) => CdsServer::parse(trimmed).map(Self::Cds).map_err(invalid),
            None => Ok(Self::File(PathBuf::from(trimmed))),
        }
    }
}

/// Fetches one config from `origin` and validates it. A deleted-config marker from CDS is an
/// error here (there is nothing to run).
pub async fn load(origin: &str, opts: &SourceOptions) -> Result<StunnerConfig> {
    // `$VAR` expansion only for local files: a CDS config must not read our environment.
    let mut config = match Origin::parse(origin)? {
        Origin::File(path) => StunnerConfig::parse(&file::read(&path).await?)?,
        Origin::Cds(server) => StunnerConfig::parse_remote(&server.fetch(opts).await?)?,
    };
    if config.is_deleted() {
        return Err(SourceError::Server(format!(
            "config {:?} has been deleted",
            config.admin.name
        )));
    }
    config.validate()?;
    Ok(config)
}

/// Streams validated, changed configs from `origin` until the receiver is dropped. Must be called
/// inside a tokio runtime; the origin and (for CDS) the id are checked at once.
pub fn watch(origin: &str, opts: SourceOptions) -> Result<mpsc::Receiver<StunnerConfig>> {
    let (tx, rx) = mpsc::channel(4);
    match Origin::parse(origin)? {
        Origin::File(path) => {
            tokio::spawn(file::watch(path, opts, tx));
        }
        Origin::Cds(server) => {
            let url = server.watch_url(&opts)?;
            tokio::spawn(cds::watch(url, opts, tx));
        }
    }
    Ok(rx)
}

/// Fuzzing entry: a CDS HTTP answer and a CDS WebSocket frame, through the non-expanding gate.
pub(crate) fn fuzz_cds(text: &str) {
    let _ = cds::fuzz_http_body(text.as_bytes());
    let _ = Gate::default().admit(text, "fuzz");
}

/// Remembers the last delivered config and turns received text into the next config to deliver:
/// parse, skip deleted markers, validate (warn and skip when invalid), skip when unchanged.
/// Environment variables are expanded only for local files ([`Gate::expanding`]).
#[derive(Default)]
struct Gate {
    last: Option<StunnerConfig>,
    expand_env: bool,
}

impl Gate {
    /// A gate for local files, whose `$VAR`s are expanded from the environment.
    fn expanding() -> Self {
        Self {
            last: None,
            expand_env: true,
        }
    }

    fn admit(&mut self, text: &str, origin: &str) -> Option<StunnerConfig> {
        let parsed = if self.expand_env {
            StunnerConfig::parse(text)
        } else {
            StunnerConfig::parse_remote(text)
        };
        let mut config = match parsed {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(%origin, %error, "ignoring unparsable config; the previous config stays in force");
                return None;
            }
        };
        if config.is_deleted() {
            tracing::info!(%origin, name = %config.admin.name, "ignoring deleted-config notice");
            return None;
        }
        if let Err(error) = config.validate() {
            tracing::warn!(%origin, %error, "rejecting invalid config; the previous config stays in force");
            return None;
        }
        if self.last.as_ref() == Some(&config) {
            tracing::debug!(%origin, "config unchanged");
            return None;
        }
        self.last = Some(config.clone());
        Some(config)
    }
}
