//! Starting and stopping the TURN servers under test with equivalent settings (realm, long-term
//! credentials, relay IP 127.0.0.1, loopback peers allowed, N relay threads), pinned with `taskset`,
//! and reading their CPU time and RSS from `/proc`.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::turn::{Class, Message, MessageBuilder, MessageType, Method, TransactionId};
use serde::Serialize;

use crate::sys::procfs::{self, Pid};
use crate::sys::sockets;
use crate::{Error, Result};

/// Realm both servers use.
pub const REALM: &str = "stunner.l7mp.io";
/// Username both servers accept.
pub const USER: &str = "u";
/// Password both servers accept.
pub const PASS: &str = "p";
/// How long a server gets to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    /// This project's dataplane.
    Stunnerd,
    /// coturn `turnserver`.
    Coturn,
}

impl ServerKind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stunnerd => "stunnerd",
            Self::Coturn => "coturn",
        }
    }
}

/// How to start a server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Which one.
    pub kind: ServerKind,
    /// Relay/worker threads.
    pub threads: usize,
    /// CPUs to pin it to (empty: no pinning).
    pub cpus: Vec<usize>,
    /// The stunnerd binary.
    pub stunnerd_bin: PathBuf,
    /// The coturn binary.
    pub coturn_bin: PathBuf,
    /// Directory for config and log files.
    pub workdir: PathBuf,
}

/// A running server; killed on drop.
pub struct ServerProcess {
    /// Which one.
    pub kind: ServerKind,
    /// The TURN-UDP listener.
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

/// The stunnerd config v1 equivalent to the coturn command line (coturn listens on UDP and TCP).
pub fn stunnerd_config(port: u16) -> String {
    format!(
        r#"version: v1
admin:
  name: loadtest-bench
  loglevel: all:WARN
  healthcheck_endpoint: ""
  metrics_endpoint: ""
auth:
  type: static
  realm: {REALM}
  credentials:
    username: {USER}
    password: {PASS}
listeners:
  - name: udp
    protocol: TURN-UDP
    address: 127.0.0.1
    port: {port}
    routes: [loopback]
  - name: tcp
    protocol: TURN-TCP
    address: 127.0.0.1
    port: {port}
    routes: [loopback]
clusters:
  - name: loopback
    type: STATIC
    endpoints: ["127.0.0.0/8"]
"#
    )
}

fn command(spec: &ServerSpec, port: u16) -> Result<Command> {
    let tag = format!("{}-{port}", spec.kind.name());
    let (bin, args): (&Path, Vec<String>) = match spec.kind {
        ServerKind::Stunnerd => {
            let cfg = spec.workdir.join(format!("{tag}.yaml"));
            fs::write(&cfg, stunnerd_config(port)).map_err(|e| Error::io(cfg.display(), e))?;
            let t = spec.threads.to_string();
            let args = [
                "-c",
                &cfg.to_string_lossy(),
                "--threads",
                &t,
                "--udp-thread-num",
                &t,
                "-l",
                "all:WARN",
            ];
            (
                &spec.stunnerd_bin,
                args.iter().map(ToString::to_string).collect(),
            )
        }
        ServerKind::Coturn => {
            let (t, p) = (spec.threads.to_string(), port.to_string());
            let pid = spec
                .workdir
                .join(format!("{tag}.pid"))
                .to_string_lossy()
                .into_owned();
            let user = format!("{USER}:{PASS}");
            let args = [
                "-n",
                "--listening-ip",
                "127.0.0.1",
                "--relay-ip",
                "127.0.0.1",
                "--allow-loopback-peers",
                "--lt-cred-mech",
                "--user",
                &user,
                "--realm",
                REALM,
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--listening-port",
                &p,
                "--relay-threads",
                &t,
                "--log-file",
                "stdout",
                "--pidfile",
                &pid,
            ];
            (
                &spec.coturn_bin,
                args.iter().map(ToString::to_string).collect(),
            )
        }
    };
    if !bin.exists() && bin.components().count() > 1 {
        let hint = match spec.kind {
            ServerKind::Stunnerd => {
                "build it with `cargo build --release -p stunnerd` or pass --stunnerd-bin"
            }
            ServerKind::Coturn => "install coturn (apt-get install coturn) or pass --coturn-bin",
        };
        return Err(Error::Server {
            name: spec.kind.name().into(),
            reason: format!("{} not found: {hint}", bin.display()),
        });
    }
    let mut cmd = if spec.cpus.is_empty() {
        Command::new(bin)
    } else {
        let mut c = Command::new("taskset");
        let cpus: Vec<String> = spec.cpus.iter().map(ToString::to_string).collect();
        c.arg("-c").arg(cpus.join(",")).arg(bin);
        c
    };
    cmd.args(args);
    Ok(cmd)
}

impl ServerProcess {
    /// Starts the server on a free loopback port and waits until it answers.
    pub fn start(spec: &ServerSpec) -> Result<Self> {
        fs::create_dir_all(&spec.workdir).map_err(|e| Error::io(spec.workdir.display(), e))?;
        let port = sockets::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .map_err(|e| Error::io("find a free port", e))?;
        let log = spec
            .workdir
            .join(format!("{}-{port}.log", spec.kind.name()));
        let file = fs::File::create(&log).map_err(|e| Error::io(log.display(), e))?;
        let err = file.try_clone().map_err(|e| Error::io(log.display(), e))?;
        let mut cmd = command(spec, port)?;
        cmd.stdin(Stdio::null()).stdout(file).stderr(err);
        let child = cmd.spawn().map_err(|e| Error::Server {
            name: spec.kind.name().into(),
            reason: format!("spawn: {e}"),
        })?;
        let mut s = Self {
            kind: spec.kind,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            log,
        };
        s.wait_ready()?;
        Ok(s)
    }

    /// The server's pid (of `taskset`'s exec'd image, i.e. the server itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        procfs::cpu_time(Pid::Other(self.pid()))
    }

    /// Resident memory now.
    pub fn rss(&self) -> Result<u64> {
        procfs::rss_bytes(Pid::Other(self.pid()))
    }

    fn died(&mut self, what: &str) -> Error {
        let tail = fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Error::Server {
            name: self.kind.name().into(),
            reason: format!("{what}; log {}:\n{}", self.log.display(), tail.join("\n")),
        }
    }

    /// Errors if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.died(&format!("exited with {status}"))),
            Err(e) => Err(Error::io("wait for server", e)),
        }
    }

    /// Probes with an unauthenticated Allocate (any TURN server answers it, with a 401) until
    /// an answer arrives or the process dies.
    fn wait_ready(&mut self) -> Result<()> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| Error::io("probe socket", e))?;
        let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
        let mut req = Vec::new();
        let tid = TransactionId(rand::random());
        let mut b = MessageBuilder::new(
            &mut req,
            MessageType::new(Class::Request, Method::Allocate),
            tid,
        );
        b.requested_transport(proto::turn::attr::TRANSPORT_UDP);
        b.finish()
            .map_err(|e| Error::Turn(format!("encode probe: {e}")))?;
        let start = Instant::now();
        let mut buf = [0u8; 1500];
        while start.elapsed() < START_TIMEOUT {
            self.check_alive()?;
            let _ = sock.send_to(&req, self.addr);
            if let Ok(n) = sock.recv(&mut buf)
                && Message::decode(&buf[..n]).is_ok_and(|m| m.transaction_id() == tid)
            {
                return Ok(());
            }
        }
        Err(self.died(&format!(
            "no answer on {} within {START_TIMEOUT:?}",
            self.addr
        )))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `turnserver --version`, for the report.
pub fn coturn_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stunnerd_config_is_valid_v1() {
        let mut cfg = proto::config::StunnerConfig::parse(&stunnerd_config(3478)).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.listeners.len(), 2);
        for l in &cfg.listeners {
            assert_eq!(
                (l.port, l.routes.clone()),
                (3478, vec!["loopback".to_owned()])
            );
        }
        assert_eq!(cfg.auth.realm, REALM);
    }
}
