//! A client of the operator's Config Discovery Service (docs/ARCHITECTURE.md §5.2): the REST
//! listings and the `?watch=true` WebSocket, whose frames are whole configs (a deleted Gateway
//! comes as a config with only `admin.name`). Shared by the credential service, which follows
//! every Gateway, and by `stunnerctl config`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use proto::config::{ConfigList, StunnerConfig};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Time limit of a REST request and of opening a watch.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The server pings every 5 s; a silent connection is given up after this.
const READ_DEADLINE: Duration = Duration::from_secs(8);
/// Our own pings, so the server notices a dead client too.
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// What went wrong talking to CDS.
#[derive(Debug, thiserror::Error)]
pub enum CdsError {
    /// The address is not `host:port` or `http(s)://host:port`.
    #[error("invalid CDS server address {0:?}: expected host:port or http://host:port")]
    Address(String),
    /// A REST request failed (connection, status or body).
    #[error("CDS request {url} failed: {message}")]
    Request {
        /// The URL requested.
        url: String,
        /// What happened.
        message: String,
    },
    /// The watch WebSocket failed or went silent.
    #[error("CDS watch {url}: {message}")]
    Watch {
        /// The watch URL.
        url: String,
        /// What happened.
        message: String,
    },
}

/// Result of CDS calls.
pub type Result<T, E = CdsError> = std::result::Result<T, E>;

/// Which configs to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every Gateway.
    All,
    /// The Gateways of one namespace.
    Namespace(String),
    /// One Gateway: namespace and name.
    Gateway(String, String),
}

impl Scope {
    /// The API path of this scope.
    fn path(&self) -> String {
        match self {
            Self::All => "/api/v1/configs".into(),
            Self::Namespace(ns) => format!("/api/v1/configs/{}", encode(ns)),
            Self::Gateway(ns, name) => format!("/api/v1/configs/{}/{}", encode(ns), encode(name)),
        }
    }
}

/// A CDS server.
#[derive(Debug, Clone)]
pub struct CdsClient {
    /// `host:port`.
    authority: String,
    /// `https`/`wss`.
    tls: bool,
    http: reqwest::Client,
}

impl CdsClient {
    /// A client of `addr`: `host:port`, `http://host:port` or `ws://host:port` (`https`/`wss`
    /// for TLS); a path after the authority is ignored.
    pub fn new(addr: &str) -> Result<Self> {
        let bad = || CdsError::Address(addr.to_owned());
        let (tls, rest) = match addr.split_once("://") {
            Some(("http" | "ws", rest)) => (false, rest),
            Some(("https" | "wss", rest)) => (true, rest),
            Some(_) => return Err(bad()),
            None => (false, addr),
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        proto::tls::provider(); // reqwest takes the process default
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|_| bad())?;
        Ok(Self {
            authority: authority.to_owned(),
            tls,
            http,
        })
    }

    fn url(&self, ws: bool, scope: &Scope) -> String {
        let scheme = match (ws, self.tls) {
            (false, false) => "http",
            (false, true) => "https",
            (true, false) => "ws",
            (true, true) => "wss",
        };
        let query = if ws { "?watch=true" } else { "" };
        format!("{scheme}://{}{}{query}", self.authority, scope.path())
    }

    /// The current configs of `scope` (one Gateway: its config, or an error when unknown).
    pub async fn get(&self, scope: &Scope) -> Result<Vec<StunnerConfig>> {
        let url = self.url(false, scope);
        let fail = |message: String| CdsError::Request {
            url: url.clone(),
            message,
        };
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("answered {status}: {}", body.trim())));
        }
        match scope {
            Scope::Gateway(..) => serde_json::from_str(&body).map(|c| vec![c]),
            _ => serde_json::from_str::<ConfigList>(&body).map(|l| l.items),
        }
        .map_err(|e| fail(format!("malformed config: {e}")))
    }

    /// Opens a watch of `scope`: the server first sends the current configs, then every change.
    pub async fn watch(&self, scope: &Scope) -> Result<Watch> {
        let url = self.url(true, scope);
        let ws = match timeout(REQUEST_TIMEOUT, tokio_tungstenite::connect_async(&url)).await {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => return Err(watch_error(&url, e.to_string())),
            Err(_) => return Err(watch_error(&url, "connect timed out".into())),
        };
        Ok(Watch {
            ws,
            url,
            ping: tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL),
        })
    }
}

fn watch_error(url: &str, message: String) -> CdsError {
    CdsError::Watch {
        url: url.to_owned(),
        message,
    }
}

/// An open watch WebSocket.
#[derive(Debug)]
pub struct Watch {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    url: String,
    ping: tokio::time::Interval,
}

impl Watch {
    /// The next config pushed (deletion markers included, see `StunnerConfig::is_deleted`);
    /// an error when the connection closes, fails or stays silent past the read deadline.
    pub async fn next(&mut self) -> Result<StunnerConfig> {
        let mut deadline = Instant::now() + READ_DEADLINE;
        loop {
            tokio::select! {
                _ = self.ping.tick() => {
                    self.ws
                        .send(Message::Ping("keepalive".into()))
                        .await
                        .map_err(|e| watch_error(&self.url, format!("ping failed: {e}")))?;
                }
                frame = timeout_at(deadline, self.ws.next()) => {
                    deadline = Instant::now() + READ_DEADLINE;
                    if let Some(config) = self.on_frame(frame)? {
                        return Ok(config);
                    }
                }
            }
        }
    }

    fn on_frame(
        &self,
        frame: std::result::Result<
            Option<std::result::Result<Message, tokio_tungstenite::tungstenite::Error>>,
            tokio::time::error::Elapsed,
        >,
    ) -> Result<Option<StunnerConfig>> {
        let fail = |m: String| watch_error(&self.url, m);
        match frame {
            Err(_) => Err(fail(format!("no frame within {READ_DEADLINE:?}"))),
            Ok(None) => Err(fail("connection closed".into())),
            Ok(Some(Err(e))) => Err(fail(e.to_string())),
            Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<StunnerConfig>(&text)
            {
                Ok(c) if !c.admin.name.is_empty() => Ok(Some(c)),
                Ok(_) => {
                    tracing::warn!(url = %self.url, "ignoring a config without admin.name");
                    Ok(None)
                }
                Err(error) => {
                    tracing::warn!(url = %self.url, %error, "ignoring a malformed config");
                    Ok(None)
                }
            },
            Ok(Some(Ok(Message::Close(reason)))) => {
                Err(fail(format!("server closed the connection: {reason:?}")))
            }
            Ok(Some(Ok(_))) => Ok(None),
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_urls() {
        let c = CdsClient::new("127.0.0.1:13478").unwrap();
        assert_eq!(
            c.url(true, &Scope::All),
            "ws://127.0.0.1:13478/api/v1/configs?watch=true"
        );
        let c = CdsClient::new("https://cds.stunner.svc:13478/ignored").unwrap();
        assert_eq!(
            c.url(false, &Scope::Gateway("a b".into(), "gw".into())),
            "https://cds.stunner.svc:13478/api/v1/configs/a%20b/gw"
        );
        for bad in ["", "ftp://x:1", "http://", "http://u@h:1"] {
            assert!(CdsClient::new(bad).is_err(), "{bad}");
        }
    }
}
