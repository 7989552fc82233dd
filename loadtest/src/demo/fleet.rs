//! The local stand-in for a ReplicaSet and its Service: a fleet of real `stunnerd` processes on
//! loopback ("pods"), each with its own TURN-UDP listener and health server, plus the endpoints
//! file the scaler reads in place of pod discovery.
//!
//! ```text
//!   scale_out() ──spawn──▶ stunnerd -c pod-N.yaml  (TURN 127.0.0.1:P, health 127.0.0.1:H)
//!   terminate(pod, Drain) ──SIGTERM──▶ pod drains, exits when its last allocation is gone
//!   terminate(pod, Kill)  ──SIGKILL──▶ pod and its calls are gone at once (naive policy)
//!   reap()   removes exited pods from the fleet and the endpoints file
//! ```

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::{Error, Result};

/// How a pod is terminated on scale-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Termination {
    /// SIGTERM: stunnerd drains (new allocations refused, live ones kept until they end).
    Drain,
    /// SIGKILL: the process and every allocation on it vanish at once.
    Kill,
}

/// One stunnerd process.
#[derive(Debug)]
pub(crate) struct Pod {
    /// Pod ordinal, for display.
    pub(crate) id: usize,
    /// The TURN-UDP listener clients allocate on.
    pub(crate) turn: SocketAddr,
    /// The health/admin server (`/status`), what the scaler reads.
    pub(crate) health: SocketAddr,
    /// Set once the pod has been told to terminate: the Service sends it no new allocations.
    pub(crate) terminating: Option<Instant>,
    child: Child,
}

/// The fleet: live pods, the stunnerd binary, and the scratch folder for configs.
#[derive(Debug)]
pub(crate) struct Fleet {
    stunnerd: PathBuf,
    dir: PathBuf,
    drain_timeout: Duration,
    next_id: usize,
    /// Pods not yet exited, in creation order.
    pub(crate) pods: Vec<Pod>,
}

/// The TURN credentials every demo pod accepts.
pub(crate) const USER: &str = "demo";
/// Password of [`USER`].
pub(crate) const PASSWORD: &str = "demo-pass";

impl Fleet {
    /// A fleet that starts `stunnerd` from `stunnerd`, keeping configs under `dir`.
    pub(crate) fn new(stunnerd: PathBuf, dir: PathBuf, drain_timeout: Duration) -> Self {
        Self {
            stunnerd,
            dir,
            drain_timeout,
            next_id: 0,
            pods: Vec::new(),
        }
    }

    /// The file listing the health servers of all pods, one `host:port` per line.
    pub(crate) fn endpoints_file(&self) -> PathBuf {
        self.dir.join("endpoints")
    }

    /// Starts one more pod and waits until its health server says it is ready.
    pub(crate) async fn scale_out(&mut self) -> Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let (turn, health) = (free_udp_port()?, free_tcp_port()?);
        let config = self.dir.join(format!("pod-{id}.yaml"));
        std::fs::write(&config, pod_config(id, turn, health))
            .map_err(|e| Error::io(format_args!("write {}", config.display()), e))?;
        let child = Command::new(&self.stunnerd)
            .arg("-c")
            .arg(&config)
            .arg(format!("--drain-timeout={}", self.drain_timeout.as_secs()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::io(format_args!("start {}", self.stunnerd.display()), e))?;
        wait_ready(health).await?;
        self.pods.push(Pod {
            id,
            turn,
            health,
            terminating: None,
            child,
        });
        self.write_endpoints()
    }

    /// Terminates the pod whose health server is `health`.
    pub(crate) fn terminate(&mut self, health: SocketAddr, how: Termination) -> Result<()> {
        let Some(pod) = self.pods.iter_mut().find(|p| p.health == health) else {
            return Ok(());
        };
        pod.terminating = Some(Instant::now());
        let signal = match how {
            Termination::Drain => libc::SIGTERM,
            Termination::Kill => libc::SIGKILL,
        };
        if let Some(pid) = pod.child.id() {
            // kill(1) rather than libc::kill keeps this module free of unsafe code.
            let status = std::process::Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status()
                .map_err(|e| Error::io(format_args!("signal pod {}", pod.id), e))?;
            if !status.success() {
                tracing::debug!(pod = pod.id, "pod already gone when signalled");
            }
        }
        Ok(())
    }

    /// Removes pods whose process has exited; returns `(pod id, seconds from termination to exit)`.
    pub(crate) fn reap(&mut self) -> Result<Vec<(usize, Option<f64>)>> {
        let mut gone = Vec::new();
        let mut i = 0;
        while i < self.pods.len() {
            let exited = self.pods[i]
                .child
                .try_wait()
                .map_err(|e| Error::io("wait for pod", e))?;
            if exited.is_some() {
                let pod = self.pods.remove(i);
                gone.push((pod.id, pod.terminating.map(|t| t.elapsed().as_secs_f64())));
            } else {
                i += 1;
            }
        }
        if !gone.is_empty() {
            self.write_endpoints()?;
        }
        Ok(gone)
    }

    /// Pods that accept new allocations (what the Service load-balances over).
    pub(crate) fn serving(&self) -> impl Iterator<Item = &Pod> {
        self.pods.iter().filter(|p| p.terminating.is_none())
    }

    /// Kills every pod still running (end of a run).
    pub(crate) async fn shutdown(&mut self) {
        for pod in &mut self.pods {
            let _ = pod.child.kill().await;
        }
        self.pods.clear();
        let _ = self.write_endpoints();
    }

    fn write_endpoints(&self) -> Result<()> {
        let mut text = String::new();
        for pod in &self.pods {
            let _ = writeln!(text, "{}", pod.health);
        }
        let path = self.endpoints_file();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::io(format_args!("write {}", path.display()), e))
    }
}

/// The stunnerd config v1 of one demo pod: one TURN-UDP listener on loopback, static auth, peers
/// limited to loopback.
fn pod_config(id: usize, turn: SocketAddr, health: SocketAddr) -> String {
    format!(
        "version: v1\n\
         admin:\n  name: demo/pod-{id}\n  loglevel: all:WARN\n  healthcheck_endpoint: http://{health}\n\
         auth:\n  type: static\n  realm: stunner.l7mp.io\n  credentials:\n    username: {USER}\n    password: {PASSWORD}\n\
         listeners:\n  - name: udp\n    protocol: TURN-UDP\n    address: {ip}\n    port: {port}\n    routes: [loopback]\n\
         clusters:\n  - name: loopback\n    type: STATIC\n    endpoints: [127.0.0.0/8]\n",
        ip = turn.ip(),
        port = turn.port(),
    )
}

fn free_udp_port() -> Result<SocketAddr> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| Error::io("pick a UDP port", e))?;
    sock.local_addr()
        .map_err(|e| Error::io("pick a UDP port", e))
}

fn free_tcp_port() -> Result<SocketAddr> {
    let sock =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("pick a TCP port", e))?;
    sock.local_addr()
        .map_err(|e| Error::io("pick a TCP port", e))
}

/// Polls `GET /ready` until it answers 200 (10 s at most).
async fn wait_ready(health: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if super::http::get(health, "/ready")
            .await
            .is_ok_and(|(code, _)| code == 200)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::Server {
        name: "stunnerd".into(),
        reason: format!("health server {health} not ready within 10 s"),
    })
}
