//! CDS client (docs/ARCHITECTURE.md §5.2): one-shot `GET /api/v1/configs/{ns}/{name}?node=` and the
//! `?watch=true` WebSocket, pinged every 5 s with an 8 s read deadline, reconnecting after 1 s
//! with exponential backoff. A deleted-config notice is ignored (the last config keeps serving).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use proto::config::StunnerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;

use super::{Gate, OriginError, Result, SourceError, SourceOptions};

/// Largest HTTP answer accepted from the CDS server.
const MAX_BODY_BYTES: u64 = 16 << 20;
/// Time limit of a one-shot fetch (connect + answer).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A CDS server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdsServer {
    /// `host[:port]` (IPv6 in brackets).
    authority: String,
    /// Whether the origin asked for TLS (`https`/`wss`).
    tls: bool,
}

impl CdsServer {
    /// Parses `http(s)://` or `ws(s)://host[:port][/ignored-path]`.
    pub(super) fn parse(origin: &str) -> Result<Self, OriginError> {
        let (scheme, rest) = origin.split_once("://").ok_or(OriginError::MissingScheme)?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => false,
            // No TLS client is built in: refuse at start-up rather than fail on every connect.
            "https" | "wss" => return Err(OriginError::TlsUnsupported(scheme.to_owned())),
            other => return Err(OriginError::UnsupportedScheme(other.to_owned())),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit('@').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(OriginError::MissingHost);
        }
        Ok(Self {
            authority: authority.to_owned(),
            tls,
        })
    }

    /// `ws(s)://host:port/api/v1/configs/{ns}/{name}?watch=true[&node=..]`.
    pub(super) fn watch_url(&self, opts: &SourceOptions) -> Result<String> {
        let scheme = if self.tls { "wss" } else { "ws" };
        Ok(format!(
            "{scheme}://{}{}",
            self.authority,
            config_path(opts, true)?
        ))
    }

    /// One-shot HTTP fetch of this dataplane's config (plain HTTP/1.0; `https` is not supported).
    pub(super) async fn fetch(&self, opts: &SourceOptions) -> Result<String> {
        if self.tls {
            return Err(SourceError::Server(
                "https:// CDS origins are not supported for one-shot loads; use -w".into(),
            ));
        }
        let path = config_path(opts, false)?;
        let io = |context: String| move |source| SourceError::Io { context, source };
        let exchange = async {
            let addr = with_default_port(&self.authority, 80);
            let mut stream = TcpStream::connect(&addr)
                .await
                .map_err(io(format!("connecting to CDS {addr}")))?;
            let request = format!(
                "GET {path} HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
                self.authority
            );
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(io("sending CDS request".into()))?;
            let mut answer = Vec::new();
            let mut limited = stream.take(MAX_BODY_BYTES);
            limited
                .read_to_end(&mut answer)
                .await
                .map_err(io("reading CDS answer".into()))?;
            Ok::<_, SourceError>(answer)
        };
        let answer = timeout(FETCH_TIMEOUT, exchange).await.map_err(|_| {
            SourceError::Server(format!(
                "no answer from {} within {FETCH_TIMEOUT:?}",
                self.authority
            ))
        })??;
        http_body(&answer)
    }
}

/// `/api/v1/configs/{ns}/{name}?[watch=true&]node=..`, segments percent-encoded.
fn config_path(opts: &SourceOptions, watch: bool) -> Result<String> {
    let id = opts.id.as_deref().unwrap_or_default();
    let (ns, name) = match id.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => (ns, name),
        _ => return Err(SourceError::MissingId(id.to_owned())),
    };
    let mut query = Vec::new();
    if watch {
        query.push("watch=true".to_owned());
    }
    if let Some(node) = &opts.node {
        query.push(format!("node={}", encode(node)));
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    Ok(format!(
        "/api/v1/configs/{}/{}{query}",
        encode(ns),
        encode(name)
    ))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn with_default_port(authority: &str, port: u16) -> String {
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{port}")
    }
}

/// The body of a 200 answer; a config list is reduced to its only item.
/// Fuzzing entry: [`http_body`].
pub(super) fn fuzz_http_body(answer: &[u8]) -> Result<String> {
    http_body(answer)
}

fn http_body(answer: &[u8]) -> Result<String> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| SourceError::Server("malformed HTTP answer".into()))?;
    let status = head.lines().next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if code != "200" {
        return Err(SourceError::Server(format!(
            "answered {status:?}: {}",
            body.trim()
        )));
    }
    match serde_json::from_str::<proto::config::ConfigList>(body) {
        Ok(list) if list.items.len() == 1 => Ok(list.items[0].to_json()),
        Ok(list) if body.contains("\"items\"") => Err(SourceError::Server(format!(
            "expected exactly one config, got {}",
            list.items.len()
        ))),
        _ => Ok(body.to_owned()),
    }
}

/// Keeps a watch session open, reconnecting with backoff, until the receiver is dropped.
pub(super) async fn watch(url: String, opts: SourceOptions, tx: mpsc::Sender<StunnerConfig>) {
    let mut gate = Gate::default();
    let mut delay = opts.retry_initial;
    loop {
        match session(&url, &opts, &tx, &mut gate).await {
            Ok(()) => return,
            Err(Failure { connected, reason }) => {
                tracing::warn!(%url, %reason, retry_in = ?delay, "config discovery connection lost");
                if connected {
                    delay = opts.retry_initial;
                }
            }
        }
        tokio::select! {
            () = sleep(delay) => {}
            () = tx.closed() => return,
        }
        delay = (delay * 2).min(opts.retry_max);
    }
}

/// Why a session ended, and whether it had got as far as connecting.
struct Failure {
    connected: bool,
    reason: String,
}

/// One WebSocket session: `Ok` when the receiver went away, `Err` to reconnect.
async fn session(
    url: &str,
    opts: &SourceOptions,
    tx: &mpsc::Sender<StunnerConfig>,
    gate: &mut Gate,
) -> Result<(), Failure> {
    let fail = |connected| move |reason: String| Failure { connected, reason };
    let connect = tokio_tungstenite::connect_async(url);
    let (mut ws, _) = match timeout(opts.read_timeout, connect).await {
        Ok(r) => r.map_err(|e| fail(false)(e.to_string()))?,
        Err(_) => return Err(fail(false)("connect timed out".into())),
    };
    tracing::info!(%url, "connected to config discovery server");
    let mut ping =
        tokio::time::interval_at(Instant::now() + opts.ping_interval, opts.ping_interval);
    let mut deadline = Instant::now() + opts.read_timeout;
    loop {
        tokio::select! {
            _ = ping.tick() => {
                ws.send(Message::Ping("keepalive".into())).await.map_err(|e| fail(true)(format!("ping failed: {e}")))?;
            }
            next = timeout_at(deadline, ws.next()) => {
                let frame = match next {
                    Err(_) => return Err(fail(true)(format!("no frame within the {:?} read deadline", opts.read_timeout))),
                    Ok(None) => return Err(fail(true)("connection closed".into())),
                    Ok(Some(frame)) => frame.map_err(|e| fail(true)(e.to_string()))?,
                };
                deadline = Instant::now() + opts.read_timeout;
                if let Some(config) = on_frame(frame, url, gate).map_err(fail(true))?
                    && tx.send(config).await.is_err()
                {
                    return Ok(());
                }
            }
            () = tx.closed() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
        }
    }
}

/// Handles one frame: a text frame may yield a config; a close frame ends the session.
fn on_frame(frame: Message, url: &str, gate: &mut Gate) -> Result<Option<StunnerConfig>, String> {
    match frame {
        Message::Text(text) if text.trim().is_empty() => {
            tracing::warn!(%url, "ignoring empty config frame");
            Ok(None)
        }
        Message::Text(text) => Ok(gate.admit(&text, url)),
        Message::Binary(_) => {
            tracing::warn!(%url, "ignoring binary frame from config discovery server");
            Ok(None)
        }
        Message::Close(reason) => Err(format!("server closed the connection: {reason:?}")),
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(None),
    }
}
