//! turncat: tunnels a local client through a TURN server to a peer, like upstream STUNner's
//! `turncat [options] <client-addr> <turn-server-uri> <peer-addr>`.
//!
//! ```text
//!  udp://listen  ──(one session per client 5-tuple)──┐
//!  tcp://listen  ──(one session per connection)───────┼──▶ TURN allocation ──▶ udp://peer
//!  -  (stdin/stdout, one session) ────────────────────┘      (channel binding, both ways)
//! ```

mod k8s;
mod session;

pub use k8s::K8sTarget;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::cli::parse_udp_addr;
use crate::client::AuthSpec;
use crate::swarm::Transport;
use crate::tls::{TlsArgs, TlsClient};
use crate::uri::{self, AuthKind, TurnUri};
use crate::{Error, Result};

use session::ClientSink;

/// Bytes read from a stream client per datagram sent to the peer.
const CHUNK: usize = 1200;
/// Time given to sessions to deallocate on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// turncat's command line (upstream's option names where they apply).
#[derive(Clone, Debug, Parser)]
#[command(
    name = "turncat",
    version,
    about = "Tunnel a local client through a TURN server to a peer",
    override_usage = "turncat [options] <client-addr> <turn-server-uri> <peer-addr>\n    client-addr: udp://<addr>:<port> | tcp://<addr>:<port> | - (stdin/stdout)\n    turn-server-uri: turn[s]://<user>:<password>@<addr>:<port>[?transport=udp|tcp|tls|dtls] | turn[s]://<secret>@<addr>:<port> | k8s://<namespace>/<gateway>:<listener>\n    peer-addr: udp://<addr>:<port>"
)]
pub struct TurncatArgs {
    /// Where local clients connect: udp://host:port, tcp://host:port or - for stdin/stdout.
    #[arg(env = "TURNCAT_CLIENT")]
    pub client: String,
    /// The TURN server URI.
    #[arg(env = "TURNCAT_SERVER")]
    pub server: String,
    /// The peer: udp://host:port.
    #[arg(env = "TURNCAT_PEER")]
    pub peer: String,
    /// Credential mechanism (default: from the URI; a lone `secret@` means ephemeral).
    #[arg(short = 'a', long, env = "TURNCAT_AUTH")]
    pub auth: Option<AuthKind>,
    /// Shared secret for ephemeral (TURN REST) credentials.
    #[arg(short = 's', long, env = "TURNCAT_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Validity of minted ephemeral credentials.
    #[arg(long, env = "TURNCAT_TTL", default_value = "1h", value_parser = crate::cli::parse_duration)]
    pub ttl: Duration,
    /// Log level, upstream syntax (`all:WARN`, `all:DEBUG`) or a tracing filter.
    #[arg(short = 'l', long, env = "TURNCAT_LOG", default_value = "all:WARN")]
    pub log: String,
    /// Verbose logging, identical to `-l all:DEBUG`.
    #[arg(short = 'v', long, env = "TURNCAT_VERBOSE")]
    pub verbose: bool,
    /// The operator's CDS server, for `k8s://<namespace>/<gateway>:<listener>` servers.
    #[arg(
        long = "cds-server-address",
        env = "CDS_SERVER_ADDR",
        default_value = "127.0.0.1:13478"
    )]
    pub cds: String,
    /// TLS/DTLS server authentication.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Where local clients come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAddr {
    /// A UDP listener: one session per source address.
    Udp(SocketAddr),
    /// A TCP listener: one session per connection.
    Tcp(SocketAddr),
    /// stdin/stdout: one session.
    Stdio,
}

impl ClientAddr {
    /// Parses `udp://…`, `tcp://…` or `-`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "invalid client address {s:?} (udp://host:port, tcp://host:port or -)"
            ))
        };
        let resolve = |hp: &str| {
            std::net::ToSocketAddrs::to_socket_addrs(hp)
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(bad)
        };
        if s == "-" {
            Ok(Self::Stdio)
        } else if let Some(hp) = uri::strip_scheme(s, "udp") {
            resolve(hp).map(Self::Udp)
        } else if let Some(hp) = uri::strip_scheme(s, "tcp") {
            resolve(hp).map(Self::Tcp)
        } else {
            Err(bad())
        }
    }
}

/// A validated turncat setup.
#[derive(Clone, Debug)]
pub struct TurncatConfig {
    /// Local side.
    pub client: ClientAddr,
    /// TURN server address.
    pub server: SocketAddr,
    /// Transport to the server.
    pub transport: Transport,
    /// TLS/DTLS client settings (secure transports only).
    pub tls: Option<TlsClient>,
    /// Credentials.
    pub auth: AuthSpec,
    /// The peer every session relays to.
    pub peer: SocketAddr,
}

impl TurncatArgs {
    /// Validates the arguments (configuration errors are `Error::Config`).
    pub fn to_config(&self) -> Result<TurncatConfig> {
        let (u, auth) = match K8sTarget::parse(&self.server) {
            Some(target) => {
                let target = target?;
                target.resolve(&k8s::fetch(&self.cds, &target)?, self.ttl)?
            }
            None => {
                let u = TurnUri::parse(&self.server)?;
                let auth = u
                    .auth
                    .clone()
                    .into_spec(self.auth, self.secret.clone(), self.ttl)?;
                (u, auth)
            }
        };
        let peer_str = uri::strip_scheme(&self.peer, "udp").ok_or_else(|| {
            Error::Config(format!(
                "invalid peer address {:?} (udp://host:port)",
                self.peer
            ))
        })?;
        let tls = u
            .transport
            .is_secure()
            .then(|| TlsClient::new(&self.tls.options(&u.host), &u.host))
            .transpose()?;
        Ok(TurncatConfig {
            client: ClientAddr::parse(&self.client)?,
            server: u.resolve()?,
            transport: u.transport,
            tls,
            auth,
            peer: parse_udp_addr(peer_str)?,
        })
    }

    /// The tracing filter for `--log`/`--verbose`: upstream's `all:LEVEL` maps to the level, other
    /// `scope:LEVEL` entries are ignored, anything else is taken as a tracing filter.
    pub fn log_filter(&self) -> String {
        if self.verbose {
            return "debug".into();
        }
        let all = self
            .log
            .split(',')
            .find_map(|e| e.trim().strip_prefix("all:"));
        match all {
            Some(level) => level.to_ascii_lowercase(),
            None if self.log.contains(':') => "warn".into(),
            None => self.log.clone(),
        }
    }
}

/// Runs turncat until `shutdown` resolves (listener modes) or stdin ends (`-`).
pub async fn run(cfg: TurncatConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let cfg = Arc::new(cfg);
    match cfg.client {
        ClientAddr::Stdio => {
            let (tx, rx) = mpsc::channel(256);
            tokio::spawn(pump_reader(tokio::io::stdin(), tx));
            let sink = ClientSink::Stream(Box::new(tokio::io::stdout()));
            tokio::select! {
                r = session::run(cfg.clone(), rx, sink) => r,
                () = shutdown => Ok(()),
            }
        }
        ClientAddr::Udp(addr) => serve_udp(cfg, addr, shutdown).await,
        ClientAddr::Tcp(addr) => serve_tcp(cfg, addr, shutdown).await,
    }
}

/// Reads a stream client in chunks and hands them to its session.
async fn pump_reader(mut r: impl AsyncReadExt + Unpin, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; CHUNK];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 || tx.send(buf[..n].to_vec()).await.is_err() {
            break;
        }
    }
}

fn spawn_session(
    set: &mut JoinSet<(Option<SocketAddr>, Result<()>)>,
    cfg: &Arc<TurncatConfig>,
    key: Option<SocketAddr>,
    rx: mpsc::Receiver<Vec<u8>>,
    sink: ClientSink,
) {
    let cfg = cfg.clone();
    set.spawn(async move { (key, session::run(cfg, rx, sink).await) });
}

fn log_session_end(
    r: std::result::Result<(Option<SocketAddr>, Result<()>), tokio::task::JoinError>,
) -> Option<SocketAddr> {
    match r {
        Ok((key, Ok(()))) => {
            tracing::info!(client = ?key, "session closed");
            key
        }
        Ok((key, Err(e))) => {
            tracing::error!(client = ?key, "{e}");
            key
        }
        Err(e) => {
            tracing::error!(error = %e, "session task failed");
            None
        }
    }
}

async fn serve_udp(
    cfg: Arc<TurncatConfig>,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let sock = Arc::new(
        UdpSocket::bind(addr)
            .await
            .map_err(|e| Error::io(format_args!("listen on udp://{addr}"), e))?,
    );
    tracing::info!(listen = %sock.local_addr().map_err(|e| Error::io("local address", e))?, "turncat listening (udp)");
    let mut sessions: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut set = JoinSet::new();
    let mut buf = vec![0u8; 65536];
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let tx = sessions.entry(from).or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(256);
                    spawn_session(&mut set, &cfg, Some(from), rx, ClientSink::Udp(sock.clone(), from));
                    tx
                });
                let _ = tx.try_send(buf[..n].to_vec()); // full queue: drop, as UDP would
            }
            Some(r) = set.join_next() => {
                if let Some(key) = log_session_end(r) {
                    sessions.remove(&key);
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(sessions);
    drain(set).await;
    Ok(())
}

async fn serve_tcp(
    cfg: Arc<TurncatConfig>,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format_args!("listen on tcp://{addr}"), e))?;
    tracing::info!(listen = %addr, "turncat listening (tcp)");
    let mut set = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((stream, from)) = r else { continue };
                let (read, write) = stream.into_split();
                let (tx, rx) = mpsc::channel(256);
                tokio::spawn(pump_reader(read, tx));
                spawn_session(&mut set, &cfg, Some(from), rx, ClientSink::Stream(Box::new(write)));
            }
            Some(r) = set.join_next() => { log_session_end(r); }
            () = &mut shutdown => break,
        }
    }
    drain(set).await;
    Ok(())
}

/// Gives sessions a bounded time to deallocate, then aborts the rest.
async fn drain(mut set: JoinSet<(Option<SocketAddr>, Result<()>)>) {
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while let Some(r) = set.join_next().await {
            log_session_end(r);
        }
    })
    .await;
    set.abort_all();
}

/// Entry point for the binary: builds a runtime and runs until Ctrl-C/SIGTERM (or stdin EOF).
pub fn main_run(args: &TurncatArgs) -> Result<()> {
    let cfg = args.to_config()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start tokio runtime", e))?;
    let result = rt.block_on(run(cfg, shutdown_signal()));
    // The stdin reader sits in a blocking read that would keep a normal shutdown waiting forever.
    rt.shutdown_background();
    result
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> TurncatArgs {
        TurncatArgs::try_parse_from(std::iter::once("turncat").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn parses_upstream_style_command_line() {
        let a = args(&[
            "-l",
            "all:INFO",
            "udp://127.0.0.1:5000",
            "turn://u:p@127.0.0.1:3478?transport=tcp",
            "udp://127.0.0.1:9000",
        ]);
        let c = a.to_config().unwrap();
        assert_eq!(c.client, ClientAddr::Udp("127.0.0.1:5000".parse().unwrap()));
        assert_eq!(c.transport, Transport::Tcp);
        assert_eq!(c.peer, "127.0.0.1:9000".parse::<SocketAddr>().unwrap());
        assert_eq!(a.log_filter(), "info");
        assert_eq!(
            args(&["-v", "-", "turn://s@h", "udp://1.2.3.4:5"]).log_filter(),
            "debug"
        );
    }

    #[test]
    fn secure_uris_and_tls_flags() {
        let a = args(&[
            "-i",
            "--sni",
            "turn.example.com",
            "-",
            "turns://u:p@127.0.0.1:5349",
            "udp://127.0.0.1:9",
        ]);
        assert!(a.tls.insecure);
        let c = a.to_config().unwrap();
        assert_eq!(c.transport, Transport::Tls);
        assert_eq!(c.server, "127.0.0.1:5349".parse::<SocketAddr>().unwrap());
        assert!(c.tls.is_some());
        let c = args(&[
            "-",
            "turn://u:p@127.0.0.1?transport=dtls",
            "udp://127.0.0.1:9",
        ])
        .to_config()
        .unwrap();
        assert_eq!((c.transport, c.server.port()), (Transport::Dtls, 443));
        let plain = args(&["-", "turn://u:p@127.0.0.1", "udp://127.0.0.1:9"]);
        assert!(plain.to_config().unwrap().tls.is_none());
        let e = args(&[
            "--ca",
            "/nonexistent.pem",
            "-",
            "turns://u:p@h",
            "udp://1.2.3.4:5",
        ])
        .to_config()
        .unwrap_err();
        assert!(e.is_config(), "{e}");
    }

    #[test]
    fn ephemeral_from_flags() {
        let a = args(&[
            "--auth",
            "ephemeral",
            "--secret",
            "xyz",
            "-",
            "turn://127.0.0.1:3478",
            "udp://127.0.0.1:9",
        ]);
        assert!(matches!(
            a.to_config().unwrap().auth,
            AuthSpec::Ephemeral { .. }
        ));
    }

    #[test]
    fn bad_addresses_are_config_errors() {
        for (c, p) in [
            ("http://x:1", "udp://127.0.0.1:9"),
            ("udp://127.0.0.1:5", "tcp://127.0.0.1:9"),
            ("udp://127.0.0.1:5", "udp://nope"),
        ] {
            let e = args(&[c, "turn://u:p@127.0.0.1", p])
                .to_config()
                .unwrap_err();
            assert!(e.is_config(), "{c} {p}: {e}");
        }
    }
}
