//! The prometheus source against a real Prometheus (`/usr/bin/prometheus`, started with
//! `--web.route-prefix=/prometheus` to mimic Mimir's path layout) scraping in-test servers that
//! export stunnerd's metrics every second; a KEDA-like tonic client calls all four RPCs.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use proto::keda::ScaledObjectRef;
use proto::keda::external_scaler_client::ExternalScalerClient;
use scaler::source::SourceDeps;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A Prometheus process killed on drop, with its scratch directory.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "h-scaler-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Scrape config: each target gets the `namespace`/`pod` labels Kubernetes SD would give it.
fn config(targets: &[(SocketAddr, &str)]) -> String {
    let mut yml = String::from(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: stunnerd\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    static_configs:\n",
    );
    for (addr, pod) in targets {
        yml.push_str(&format!(
            "      - targets: ['{addr}']\n        labels: {{namespace: stunner, pod: {pod}}}\n"
        ));
    }
    yml
}

async fn start_prometheus(targets: &[(SocketAddr, &str)]) -> Prometheus {
    assert!(
        Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} missing: apt-get install prometheus"
    );
    let dir = scratch_dir("prom");
    std::fs::write(dir.join("prometheus.yml"), config(targets)).unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = Command::new(PROMETHEUS)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.route-prefix=/prometheus")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start prometheus");
    Prometheus { child, addr, dir }
}

/// Waits until Prometheus has scraped `n` targets.
async fn wait_scraped(prom: &Prometheus, n: usize) {
    let url = format!(
        "http://{}/prometheus/api/v1/query?query=count(stunner_allocations_active)",
        prom.addr
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(resp) = http_get(&url).await
            && let Ok(v) = resp.json::<serde_json::Value>().await
            && v["data"]["result"][0]["value"][1].as_str() == Some(&n.to_string())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("prometheus did not scrape {n} targets in time");
}

/// Polls GetMetrics until it returns `want` (scrapes and the cache take a few seconds).
async fn eventually_desired(c: &mut ExternalScalerClient<Channel>, r: &ScaledObjectRef, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        match desired(c, r).await {
            Ok(v) if v == want => return,
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("desired never became {want}; last answer {last:?}");
}

#[tokio::test]
async fn real_prometheus_all_rpcs_draining_excluded_and_outage_is_an_error() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let (a, a_addr) = fake_pod(30, "READY").await;
        let (b, b_addr) = fake_pod(25, "READY").await;
        let (c_pod, c_addr) = fake_pod(40, "DRAINING").await;
        // A pod of another Gateway in the same namespace must not count.
        let (_other, other_addr) = fake_pod(500, "READY").await;
        let prom = start_prometheus(&[
            (a_addr, "udp-gateway-7c9d8b-aaaaa"),
            (b_addr, "udp-gateway-7c9d8b-bbbbb"),
            (c_addr, "udp-gateway-7c9d8b-ccccc"),
            (other_addr, "udp-gateway-two-6f7-ddddd"),
        ])
        .await;
        wait_scraped(&prom, 4).await;

        let (app, grpc, _) = start_scaler(SourceDeps::default(), Duration::from_millis(500)).await;
        let mut c = client(grpc).await;
        let server = format!("http://{}/prometheus/", prom.addr);
        let r = so_ref(
            "udp-gateway",
            &[
                ("serverAddress", &server),
                ("gateway", "stunner/udp-gateway"),
                ("targetAllocationsPerPod", "20"),
                ("customHeaders", "X-Scope-OrgID=tenant-1"),
                ("queryParameters", "stats=all"),
                ("timeout", "2000"),
                ("scaleInStep", "1"),
            ],
        );

        let spec = c.get_metric_spec(r.clone()).await.unwrap().into_inner();
        assert_eq!(spec.metric_specs[0].target_size_float, 1.0);
        // 30 + 25 on the 2 non-draining pods (the draining pod's 40 are excluded): ceil(55/20) = 3.
        eventually_desired(&mut c, &r, 3).await;
        assert!(c.is_active(r.clone()).await.unwrap().into_inner().result);
        let mut stream = c.stream_is_active(r.clone()).await.unwrap().into_inner();
        assert!(stream.message().await.unwrap().unwrap().result);

        // All sessions end: idle, one pod below the 2 ready ones; the stream pushes `false`.
        for pod in [&a, &b] {
            pod.set(0, "READY");
        }
        c_pod.set(0, "DRAINING");
        eventually_desired(&mut c, &r, 1).await;
        assert!(!c.is_active(r.clone()).await.unwrap().into_inner().result);
        let pushed = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .unwrap();
        assert!(!pushed.unwrap().unwrap().result);

        // Prometheus goes away: an error KEDA's fallback handles, never a value.
        drop(prom);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let err = desired(&mut c, &r).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
        assert_eq!(
            c.is_active(r.clone()).await.unwrap_err().code(),
            tonic::Code::Unavailable
        );
        let labels = scaler::metrics::ObjectLabels {
            scaledobject: "stunner/udp-gateway".into(),
            source: "prometheus".into(),
        };
        assert!(app.metrics.upstream_errors.get_or_create(&labels).get() >= 1);
    })
    .await
    .expect("test timed out");
}
