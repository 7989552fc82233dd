//! Shared helpers of the stunnerd integration tests: free loopback ports, a stunnerd process with a
//! config file, coturn's test tools and a tiny HTTP client (from `testkit`). Every child process is
//! killed on drop; every wait is bounded.
#![allow(dead_code, unreachable_pub)]

pub mod certs;
pub mod probe;
pub mod turnc;

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

pub use testkit::free_port;
/// [`http`] to any address.
pub use testkit::http::request as http_at;

/// A unique scratch path.
pub fn scratch(name: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("stunnerd-it-{}-{n}-{name}", std::process::id()))
}

/// Ports of one test server.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// TURN (UDP and TCP listeners share it).
    pub turn: u16,
    /// Health/admin server.
    pub health: u16,
    /// Metrics server.
    pub metrics: u16,
}

impl Ports {
    pub fn new() -> Self {
        Self {
            turn: free_port(),
            health: free_port(),
            metrics: free_port(),
        }
    }
}

/// A config with a TURN-UDP and a TURN-TCP listener on `ports.turn`, routed to `endpoints`.
pub fn config(ports: Ports, auth: &str, endpoints: &[&str]) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        r#"version: v1
admin:
  name: it
  loglevel: all:INFO
  metrics_endpoint: "http://127.0.0.1:{m}/metrics"
  healthcheck_endpoint: "http://127.0.0.1:{h}"
auth:
{auth}
listeners:
  - name: udp
    protocol: TURN-UDP
    address: 127.0.0.1
    port: {t}
    routes: [peers]
  - name: tcp
    protocol: TURN-TCP
    address: 127.0.0.1
    port: {t}
    routes: [peers]
clusters:
  - name: peers
    type: STATIC
    endpoints: [{eps}]
"#,
        m = ports.metrics,
        h = ports.health,
        t = ports.turn,
        eps = eps.join(", ")
    )
}

/// Static credentials u/p.
pub const STATIC_AUTH: &str =
    "  type: static\n  realm: stunner.l7mp.io\n  credentials:\n    username: u\n    password: p";
/// Ephemeral credentials with secret "s3cr3t".
pub const EPHEMERAL_AUTH: &str =
    "  type: ephemeral\n  realm: stunner.l7mp.io\n  credentials:\n    secret: s3cr3t";

/// A running stunnerd.
pub struct Stunnerd {
    pub child: Child,
    pub ports: Ports,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Stunnerd {
    /// Starts stunnerd on `yaml` with extra flags and waits until `/ready` answers 200.
    pub fn start(ports: Ports, yaml: &str, args: &[&str]) -> Self {
        Self::start_with_env(ports, yaml, args, &[])
    }

    /// [`Stunnerd::start`] with extra environment variables.
    pub fn start_with_env(ports: Ports, yaml: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let config = scratch("config.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let log = scratch("stunnerd.log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_stunnerd"))
            .arg("-c")
            .arg(&config)
            .args(args)
            // Health from start-up on the test's own port, not the default 8086.
            .env(
                "STUNNER_HEALTHCHECK_ADDRESS",
                format!("127.0.0.1:{}", ports.health),
            )
            .env("RUST_LOG_STYLE", "never")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn stunnerd");
        let s = Self {
            child,
            ports,
            config,
            log,
        };
        s.wait_ready();
        s
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if http("GET", self.ports.health, "/ready", &[]).0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("stunnerd not ready; log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sum of the samples of metric `name` whose label text contains `labels`.
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        let (_, body) = http("GET", self.ports.metrics, "/metrics", &[]);
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The process's resident set size (KiB).
    #[allow(dead_code)] // not every test binary that includes `common` reads it
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        status
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{sig}");
    }

    /// Waits up to `limit` for the process to exit; returns its exit code and when it exited.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<(i32, Instant)> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status.code().unwrap_or(-1), Instant::now()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Stunnerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        } else {
            eprintln!("stunnerd log {}:\n{}", self.log.display(), self.log_text());
        }
    }
}

/// A child process killed on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// coturn's `turnutils_peer` (a UDP echo peer) on 127.0.0.1:`port`.
pub fn turn_peer(port: u16) -> Guard {
    let child = Command::new("turnutils_peer")
        .args(["-L", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnutils_peer (apt-get install coturn)");
    std::thread::sleep(Duration::from_millis(100));
    Guard(child)
}

/// Result of one `turnutils_uclient` run.
#[derive(Debug)]
pub struct Uclient {
    pub output: String,
    pub lost: Option<u64>,
    pub send_dropped: Option<u64>,
    pub rtt_ms: Option<f64>,
    pub errors: usize,
}

/// `turnutils_uclient`'s common arguments: credentials u/p, peer 127.0.0.1:`peer`, `n` messages per
/// client. Callers append the transport, channel and load flags.
pub fn uclient_args(peer: u16, n: u32) -> Vec<String> {
    let (peer, n) = (peer.to_string(), n.to_string());
    [
        "-u",
        "u",
        "-w",
        "p",
        "-e",
        "127.0.0.1",
        "-r",
        &peer,
        "-n",
        &n,
    ]
    .map(String::from)
    .to_vec()
}

/// `args` with `extra` appended.
pub fn plus(mut args: Vec<String>, extra: &[&str]) -> Vec<String> {
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// Runs `turnutils_uclient` against 127.0.0.1:`port` with `args`, bounded by `limit`.
pub fn uclient(port: u16, args: &[impl AsRef<std::ffi::OsStr>], limit: Duration) -> Uclient {
    let mut child = Command::new("timeout")
        .arg(format!("{}", limit.as_secs().max(1)))
        .arg("turnutils_uclient")
        .args(args)
        .args(["-p", &port.to_string(), "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("turnutils_uclient");
    let mut output = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut output);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut output);
    }
    let _ = child.wait();
    let num = |key: &str| {
        output.lines().find_map(|l| {
            let rest = &l[l.find(key)? + key.len()..];
            rest.split_whitespace()
                .next()?
                .trim_end_matches(',')
                .parse::<f64>()
                .ok()
        })
    };
    Uclient {
        lost: num("Total lost packets").map(|v| v as u64),
        send_dropped: num("total send dropped").map(|v| v as u64),
        rtt_ms: num("Average round trip delay"),
        errors: output.matches("error").count(),
        output,
    }
}

/// `method path` on 127.0.0.1:`port` ([`testkit::http::request`]): (status, body); (0, "")
/// when the server is unreachable.
pub fn http(method: &str, port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    http_at(
        SocketAddr::from(([127, 0, 0, 1], port)),
        method,
        path,
        headers,
    )
}

/// Runs `f` on a thread and fails the test if it takes longer than `limit`.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("test timed out after {limit:?}"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("test body panicked"),
    }
}
