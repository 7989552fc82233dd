//! Starting and stopping the TURN servers under test with equivalent settings (realm, long-term
//! credentials, relay IP 127.0.0.1, loopback peers allowed, N relay threads, and for the TLS/DTLS
//! runs the same self-signed certificate on a TLS and a DTLS listener), pinned with `taskset`,
//! and reading their CPU time and RSS from `/proc`.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use proto::turn::{Class, Message, MessageBuilder, MessageType, Method, TransactionId};
use serde::Serialize;

use crate::swarm::Transport;
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
/// The same under a wrapper such as valgrind (tens of times slower).
const WRAPPED_START_TIMEOUT: Duration = Duration::from_secs(90);

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
    /// Certificate and key for a TLS and a DTLS listener (None: UDP and TCP only).
    pub tls: Option<TlsFiles>,
}

/// A certificate and its key, PEM files (P-256: stunnerd's DTLS wants an ECDSA P-256 key).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// PKCS#8 private key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Makes a fresh self-signed certificate for `localhost` in `dir` with the `openssl` CLI.
    pub fn self_signed(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        let files = Self {
            cert: dir.join("turn-cert.pem"),
            key: dir.join("turn-key.pem"),
        };
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args([
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                // A leaf, not a CA (webpki refuses a CA as end entity): `--ca <cert>` trusts it.
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ])
            .arg("-keyout")
            .arg(&files.key)
            .arg("-out")
            .arg(&files.cert)
            .output()
            .map_err(|e| Error::io("run openssl (install the openssl CLI)", e))?;
        if !out.status.success() {
            return Err(Error::Config(format!(
                "openssl req failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(files)
    }

    /// Both files as base64 PEM, as stunnerd's config wants them.
    fn base64(&self) -> Result<(String, String)> {
        let b64 = |p: &Path| {
            fs::read(p)
                .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem))
                .map_err(|e| Error::io(p.display(), e))
        };
        Ok((b64(&self.cert)?, b64(&self.key)?))
    }
}

/// A running server; killed on drop.
pub struct ServerProcess {
    /// Which one.
    pub kind: ServerKind,
    /// The TURN-UDP listener.
    pub addr: SocketAddr,
    /// The TURN-TLS (TCP) and TURN-DTLS (UDP) listener, when started with certificates.
    pub tls_addr: Option<SocketAddr>,
    child: Child,
    log: PathBuf,
}

/// The stunnerd config v1 equivalent to the coturn command line (coturn listens on UDP and TCP,
/// and with certificates on TLS and DTLS).
pub fn stunnerd_config(port: u16, tls: Option<(u16, &str, &str)>) -> String {
    let secure = match tls {
        Some((tls_port, cert, key)) => ["TURN-TLS", "TURN-DTLS"]
            .iter()
            .map(|proto| {
                format!(
                    "  - name: {}\n    protocol: {proto}\n    address: 127.0.0.1\n    port: {tls_port}\n    \
                     cert: {cert}\n    key: {key}\n    routes: [loopback]\n",
                    proto.to_ascii_lowercase()
                )
            })
            .collect(),
        None => String::new(),
    };
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
{secure}clusters:
  - name: loopback
    type: STATIC
    endpoints: ["127.0.0.0/8"]
"#
    )
}

fn command(
    spec: &ServerSpec,
    wrapper: &[String],
    port: u16,
    tls_port: Option<u16>,
) -> Result<Command> {
    let tag = format!("{}-{port}", spec.kind.name());
    let (bin, args): (&Path, Vec<String>) = match spec.kind {
        ServerKind::Stunnerd => {
            let cfg = spec.workdir.join(format!("{tag}.yaml"));
            let pem = spec.tls.as_ref().map(TlsFiles::base64).transpose()?;
            let tls = tls_port
                .zip(pem.as_ref())
                .map(|(p, (c, k))| (p, c.as_str(), k.as_str()));
            fs::write(&cfg, stunnerd_config(port, tls)).map_err(|e| Error::io(cfg.display(), e))?;
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
            let mut args = vec![
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
            let tls_port = tls_port.map(|p| p.to_string()).unwrap_or_default();
            let files = spec
                .tls
                .as_ref()
                .map(|f| (f.cert.to_string_lossy(), f.key.to_string_lossy()));
            match &files {
                Some((cert, key)) => {
                    args.extend([
                        "--cert",
                        cert,
                        "--pkey",
                        key,
                        "--tls-listening-port",
                        &tls_port,
                    ]);
                }
                None => args.extend(["--no-tls", "--no-dtls"]),
            }
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
    let mut prefix: Vec<String> = Vec::new();
    if !spec.cpus.is_empty() {
        let cpus: Vec<String> = spec.cpus.iter().map(ToString::to_string).collect();
        prefix.extend(["taskset".into(), "-c".into(), cpus.join(",")]);
    }
    prefix.extend(wrapper.iter().cloned());
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args);
    // The whole load comes from one loopback address: lift stunnerd's per-client-IP limits.
    cmd.env("STUNNER_CLIENT_QUOTA", "0")
        .env("STUNNER_MAX_CONNECTIONS_PER_IP", "0");
    Ok(cmd)
}

impl ServerProcess {
    /// Starts the server on a free loopback port and waits until it answers.
    pub fn start(spec: &ServerSpec) -> Result<Self> {
        Self::start_wrapped(spec, &[])
    }

    /// Starts the server under `wrapper` (e.g. `valgrind --tool=callgrind ...`, which runs the
    /// server in its own process: the pid stays the server's) and waits until it answers.
    pub fn start_wrapped(spec: &ServerSpec, wrapper: &[String]) -> Result<Self> {
        fs::create_dir_all(&spec.workdir).map_err(|e| Error::io(spec.workdir.display(), e))?;
        let port = sockets::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .map_err(|e| Error::io("find a free port", e))?;
        let tls_port = match spec.tls {
            Some(_) => Some(free_port_other_than(port)?),
            None => None,
        };
        let log = spec
            .workdir
            .join(format!("{}-{port}.log", spec.kind.name()));
        let file = fs::File::create(&log).map_err(|e| Error::io(log.display(), e))?;
        let err = file.try_clone().map_err(|e| Error::io(log.display(), e))?;
        let mut cmd = command(spec, wrapper, port, tls_port)?;
        cmd.stdin(Stdio::null()).stdout(file).stderr(err);
        let child = cmd.spawn().map_err(|e| Error::Server {
            name: spec.kind.name().into(),
            reason: format!("spawn: {e}"),
        })?;
        let mut s = Self {
            kind: spec.kind,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            tls_addr: tls_port.map(|p| SocketAddr::from(([127, 0, 0, 1], p))),
            child,
            log,
        };
        let timeout = if wrapper.is_empty() {
            START_TIMEOUT
        } else {
            WRAPPED_START_TIMEOUT
        };
        s.wait_ready(timeout)?;
        Ok(s)
    }

    /// Where to reach the server over `transport` (TLS and DTLS share a port number).
    pub fn addr_for(&self, transport: Transport) -> SocketAddr {
        match (transport.is_secure(), self.tls_addr) {
            (true, Some(a)) => a,
            _ => self.addr,
        }
    }

    /// The server's pid (of `taskset`'s exec'd image, i.e. the server itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        procfs::cpu_time(Pid::Other(self.pid()))
    }

    /// CPU time used so far, at nanosecond resolution (see [`procfs::cpu_time_precise`]).
    pub fn cpu_time_precise(&self) -> Result<Duration> {
        procfs::cpu_time_precise(Pid::Other(self.pid()))
    }

    /// Wake-ups (voluntary context switches of all threads) so far.
    pub fn wakeups(&self) -> Result<u64> {
        procfs::wakeups(Pid::Other(self.pid()))
    }

    /// Time spent runnable but waiting for a CPU so far.
    pub fn run_queue_wait(&self) -> Duration {
        procfs::run_queue_wait(Pid::Other(self.pid()))
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
    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
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
        let mut udp_ready = false;
        while start.elapsed() < timeout {
            self.check_alive()?;
            if !udp_ready {
                let _ = sock.send_to(&req, self.addr);
                udp_ready = sock.recv(&mut buf).is_ok_and(|n| {
                    Message::decode(&buf[..n]).is_ok_and(|m| m.transaction_id() == tid)
                });
            }
            // The TLS listener may come up a moment after the UDP one.
            let tls_ready = self.tls_addr.is_none_or(|a| {
                std::net::TcpStream::connect_timeout(&a, Duration::from_millis(100)).is_ok()
            });
            if udp_ready && tls_ready {
                return Ok(());
            }
            if udp_ready {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(self.died(&format!("no answer on {} within {timeout:?}", self.addr)))
    }
}

impl ServerProcess {
    /// Asks the server to exit (SIGTERM, via `kill(1)`: this crate has no unsafe outside
    /// `sys::ffi`) and waits up to `grace`; kills it after that. True when it exited by itself
    /// (a tool like callgrind writes its output only then).
    pub fn terminate(&mut self, grace: Duration) -> Result<bool> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .map_err(|e| Error::io("run kill", e))?;
        let deadline = Instant::now() + grace;
        while status.success() && Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(true),
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(Error::io("wait for server", e)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(false)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port other than `taken` (which a starting server is about to bind).
fn free_port_other_than(taken: u16) -> Result<u16> {
    for _ in 0..10 {
        let p = sockets::free_port(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .map_err(|e| Error::io("find a free port", e))?;
        if p != taken {
            return Ok(p);
        }
    }
    Err(Error::io(
        "find a second free port",
        std::io::ErrorKind::AddrInUse.into(),
    ))
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
        let mut cfg = proto::config::StunnerConfig::parse(&stunnerd_config(3478, None)).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.listeners.len(), 2);
        let secure = stunnerd_config(3478, Some((3479, "Y2VydA==", "a2V5")));
        let mut s = proto::config::StunnerConfig::parse(&secure).unwrap();
        s.validate().unwrap();
        let tls: Vec<_> = s.listeners.iter().filter(|l| l.port == 3479).collect();
        assert_eq!(tls.len(), 2);
        assert!(tls.iter().all(|l| l.cert == "Y2VydA==" && l.key == "a2V5"));
        for l in &cfg.listeners {
            assert_eq!(
                (l.port, l.routes.clone()),
                (3478, vec!["loopback".to_owned()])
            );
        }
        assert_eq!(cfg.auth.realm, REALM);
    }
}
