//! Real processes for the end-to-end scaler test: stunnerd dataplanes (the binary built by
//! `cargo build -p stunnerd`), a Prometheus server under `/prometheus` (Mimir's path layout) and
//! the `stunner-scaler` binary. Each is killed on drop (its log printed if the test panics);
//! every wait polls against a deadline.
#![allow(dead_code, unreachable_pub)] // a helper module of one test binary

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `prometheus` package installs the server.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
/// Static TURN credentials of every test dataplane.
pub const USER: &str = "user1";
/// Password of [`USER`].
pub const PASS: &str = "passwd1";

pub use testkit::free_port;

/// A fresh scratch directory under the system temp dir.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir =
        std::env::temp_dir().join(format!("scaler-real-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The `stunnerd` binary next to this test's `deps` directory (`target/<profile>/stunnerd`).
fn stunnerd_bin() -> PathBuf {
    workspace_bin("stunnerd", "stunnerd")
}

/// The binary `name` of the workspace crate `package`, next to this test's `deps` directory.
pub fn workspace_bin(name: &str, package: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} missing: build it first: cargo build -p {package}",
        bin.display()
    );
    bin
}

/// A child process with its log file, killed on drop.
pub struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
    dir: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr into `dir/<name>.log`.
    pub fn spawn(name: &'static str, mut cmd: Command, dir: PathBuf) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .env("NO_COLOR", "1")
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Self {
            name,
            child,
            log,
            dir,
        }
    }

    /// Fails the test if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}); log:\n{}", self.name, self.log_text());
        }
    }

    /// Polls `GET url` until it answers 200, failing fast if the process exits.
    pub async fn wait_ok(&mut self, http: &reqwest::Client, url: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            self.assert_running();
            if http_status(http, url).await == Some(200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready at {url} after {limit:?}; log:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log_text());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `probe` every 100 ms until it returns `Some`, panicking with `what` after `limit`.
pub async fn poll<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// HTTP status of `GET url` (None when unreachable).
pub async fn http_status(http: &reqwest::Client, url: &str) -> Option<u16> {
    Some(http.get(url).send().await.ok()?.status().as_u16())
}

/// A running stunnerd with a TURN-UDP listener, its health/admin and metrics servers.
pub struct Stunnerd {
    /// The process.
    pub proc: Proc,
    /// TURN-UDP listener.
    pub turn: SocketAddr,
    /// Health/admin server (`/ready`, `/status`, `/drain`).
    pub health: SocketAddr,
    /// Metrics server (`/metrics`).
    pub metrics: SocketAddr,
}

/// A v1 config: one TURN-UDP listener, static auth, a cluster routing 127.0.0.0/8.
fn stunnerd_config(turn: u16, health: u16, metrics: u16) -> String {
    format!(
        r#"version: v1
admin:
  name: stunner/udp-gateway
  loglevel: all:INFO
  metrics_endpoint: "http://127.0.0.1:{metrics}/metrics"
  healthcheck_endpoint: "http://127.0.0.1:{health}"
auth:
  type: static
  realm: stunner.l7mp.io
  credentials:
    username: {USER}
    password: {PASS}
listeners:
  - name: stunner/udp-gateway/udp-listener
    protocol: TURN-UDP
    address: 127.0.0.1
    port: {turn}
    routes: [stunner/media-plane]
clusters:
  - name: stunner/media-plane
    type: STATIC
    endpoints: ["127.0.0.0/8"]
"#
    )
}

impl Stunnerd {
    /// Starts a stunnerd on free loopback ports and waits until `/ready` answers 200.
    pub async fn start(http: &reqwest::Client) -> Self {
        let (turn, health, metrics) = (free_port(), free_port(), free_port());
        let dir = scratch_dir("stunnerd");
        let config = dir.join("stunnerd.yaml");
        std::fs::write(&config, stunnerd_config(turn, health, metrics)).expect("write config");
        let mut cmd = Command::new(stunnerd_bin());
        cmd.arg("-c")
            .arg(&config)
            .args(["--threads", "1", "--admin-token", ADMIN_TOKEN]);
        let mut sd = Self {
            proc: Proc::spawn("stunnerd", cmd, dir),
            turn: SocketAddr::from(([127, 0, 0, 1], turn)),
            health: SocketAddr::from(([127, 0, 0, 1], health)),
            metrics: SocketAddr::from(([127, 0, 0, 1], metrics)),
        };
        let ready = format!("http://{}/ready", sd.health);
        sd.proc.wait_ok(http, &ready, Duration::from_secs(10)).await;
        sd
    }

    /// `GET /status` as JSON.
    pub async fn status(&self, http: &reqwest::Client) -> serde_json::Value {
        http.get(format!("http://{}/status", self.health))
            .send()
            .await
            .expect("GET /status")
            .json()
            .await
            .expect("/status JSON")
    }

    /// `POST /drain` (with the admin token) and checks the state moved to DRAINING.
    pub async fn drain(&self, http: &reqwest::Client) {
        let resp = http
            .post(format!("http://{}/drain", self.health))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("POST /drain");
        assert!(resp.status().is_success(), "POST /drain: {}", resp.status());
        assert_eq!(self.status(http).await["state"], "DRAINING");
    }
}

/// The admin token the test stunnerds require for `POST /drain`.
const ADMIN_TOKEN: &str = "scaler-test-token";

/// A Prometheus server scraping every target each second, API under `/prometheus`.
pub struct Prometheus {
    /// The process (stop it to simulate an outage).
    pub proc: Proc,
    /// Web listen address.
    pub addr: SocketAddr,
}

/// Scrape config: each target carries the `namespace`/`pod` labels Kubernetes SD would give it.
fn prometheus_config(targets: &[(SocketAddr, &str)]) -> String {
    let mut yml = String::from(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
         - job_name: stunnerd\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    \
         metrics_path: /metrics\n    static_configs:\n",
    );
    for (addr, pod) in targets {
        yml.push_str(&format!(
            "      - targets: ['{addr}']\n        labels: {{namespace: stunner, pod: {pod}}}\n"
        ));
    }
    yml
}

impl Prometheus {
    /// Starts Prometheus with `--web.route-prefix=/prometheus` and waits until it is ready.
    pub async fn start(http: &reqwest::Client, targets: &[(SocketAddr, &str)]) -> Self {
        Self::start_with(http, &prometheus_config(targets), &[]).await
    }

    /// Starts Prometheus with the configuration `yml` and the extra files `files` (name,
    /// content) written beside it, e.g. a rule file the configuration names.
    pub async fn start_with(http: &reqwest::Client, yml: &str, files: &[(&str, &str)]) -> Self {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} missing: apt-get install prometheus"
        );
        let dir = scratch_dir("prometheus");
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, yml).expect("write prometheus.yml");
        for (name, content) in files {
            std::fs::write(dir.join(name), content).expect("write prometheus file");
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = Command::new(PROMETHEUS);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.route-prefix=/prometheus");
        let mut prom = Self {
            proc: Proc::spawn("prometheus", cmd, dir),
            addr,
        };
        let ready = format!("http://{addr}/prometheus/-/ready");
        prom.proc
            .wait_ok(http, &ready, Duration::from_secs(15))
            .await;
        prom
    }

    /// Runs an instant query; the value of each sample, keyed by its `pod` label.
    pub async fn query(&self, http: &reqwest::Client, promql: &str) -> Vec<(String, f64)> {
        let url = format!("http://{}/prometheus/api/v1/query", self.addr);
        let Ok(resp) = http.get(url).query(&[("query", promql)]).send().await else {
            return Vec::new();
        };
        let v: serde_json::Value = resp.json().await.unwrap_or_default();
        let Some(result) = v["data"]["result"].as_array() else {
            return Vec::new();
        };
        let mut out: Vec<(String, f64)> = result
            .iter()
            .filter_map(|s| {
                let pod = s["metric"]["pod"].as_str().unwrap_or_default().to_owned();
                Some((pod, s["value"][1].as_str()?.parse().ok()?))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The `stunner-scaler` binary (built by cargo for this test) without Kubernetes.
pub struct Scaler {
    /// The process.
    pub proc: Proc,
    /// gRPC address (KEDA external scaler).
    pub grpc: SocketAddr,
    /// HTTP address (`/metrics`, `/healthz`, `/readyz`).
    pub http: SocketAddr,
}

impl Scaler {
    /// Starts the scaler with `--static-endpoints` (for the direct source) and a short cache
    /// interval, then waits until `/readyz` answers 200.
    pub async fn start(http: &reqwest::Client, static_endpoints: &[SocketAddr]) -> Self {
        let grpc = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let http_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let endpoints: Vec<String> = static_endpoints.iter().map(ToString::to_string).collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stunner-scaler"));
        cmd.arg(format!("--grpc-addr={grpc}"))
            .arg(format!("--http-addr={http_addr}"))
            .arg("--no-kubernetes")
            .arg("--cache-interval=0.5")
            .arg(format!("--static-endpoints={}", endpoints.join(",")))
            .env("RUST_LOG", "info");
        let mut scaler = Self {
            proc: Proc::spawn("stunner-scaler", cmd, scratch_dir("scaler")),
            grpc,
            http: http_addr,
        };
        let ready = format!("http://{http_addr}/readyz");
        scaler
            .proc
            .wait_ok(http, &ready, Duration::from_secs(10))
            .await;
        scaler
    }

    /// The value of the scaler's own series `name{labels}` (exact label text) on `/metrics`.
    pub async fn metric(&self, http: &reqwest::Client, name: &str, labels: &str) -> Option<f64> {
        let body = http
            .get(format!("http://{}/metrics", self.http))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let prefix = format!("{name}{{{labels}}} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    }
}
