//! End to end with real processes only: three `stunnerd` dataplanes on loopback holding real
//! TURN allocations (5, 3 and 2, made with a `proto::turn` client), a real Prometheus started
//! with `--web.route-prefix=/prometheus` scraping their `/metrics` every second with the
//! `namespace`/`pod` labels Kubernetes SD would give them, and the `stunner-scaler` binary.
//! A KEDA-like tonic client calls all four RPCs with realistic metadata and checks the
//! numbers; `POST /drain` on one dataplane removes its allocations from the metric; the direct
//! source (`--static-endpoints`) agrees with Prometheus; a stopped Prometheus is `Unavailable`.
//!
//! Needs `cargo build -p stunnerd` first (the binary is found next to this test's `deps` dir).

mod common;
mod real;

use std::net::SocketAddr;
use std::time::Duration;

use common::{desired, so_ref};
use proto::keda::ScaledObjectRef;
use proto::keda::external_scaler_client::ExternalScalerClient;
use real::{PASS, Prometheus, Scaler, Stunnerd, USER, poll};
use testkit::turn::RawAlloc;
use tonic::transport::Channel;

/// Dataplane pods of Gateway `stunner/udp-gateway`, as the Deployment's ReplicaSet names them.
const PODS: [&str; 3] = [
    "udp-gateway-7c9d8b6f5-x2k4p",
    "udp-gateway-7c9d8b6f5-m8qzt",
    "udp-gateway-7c9d8b6f5-r5wnd",
];
/// Allocations made on each pod.
const ALLOCS: [usize; 3] = [5, 3, 2];
/// Upper bound on any single wait (scrapes are 1 s apart, the scaler caches 0.5 s).
const WAIT: Duration = Duration::from_secs(15);

/// Trigger metadata as a KEDA ScaledObject would send it for the prometheus source.
fn prometheus_ref(prom: &Prometheus) -> ScaledObjectRef {
    let server = format!("http://{}/prometheus", prom.addr);
    so_ref(
        "udp-gateway",
        &[
            ("source", "prometheus"),
            ("serverAddress", &server),
            ("gateway", "stunner/udp-gateway"),
            ("targetAllocationsPerPod", "4"),
            ("activationThreshold", "0"),
            ("customHeaders", "X-Scope-OrgID=demo"),
            ("timeout", "2s"),
            ("scaleInStep", "1"),
            ("minReplicas", "1"),
            ("maxReplicas", "10"),
            // KEDA forwards its own keys too; the scaler must ignore them.
            ("scalerAddress", "stunner-scaler.stunner-system:9090"),
        ],
    )
}

/// The same ScaledObject on the direct source (`/status` of the static endpoints).
fn direct_ref() -> ScaledObjectRef {
    so_ref(
        "udp-gateway-direct",
        &[
            ("source", "direct"),
            ("gateway", "stunner/udp-gateway"),
            ("targetAllocationsPerPod", "4"),
            ("timeout", "2s"),
            ("scaleInStep", "1"),
            ("scalerAddress", "stunner-scaler.stunner-system:9090"),
        ],
    )
}

/// One allocation with [`USER`]/[`PASS`] on the TURN-UDP listener `server` (the blocking
/// `testkit` client, off the runtime's threads).
async fn allocate(server: SocketAddr) -> RawAlloc {
    tokio::task::spawn_blocking(move || RawAlloc::new(server, USER, PASS))
        .await
        .expect("allocate")
}

/// Deletes `a` (Refresh with LIFETIME 0), the server confirming it.
async fn release(a: RawAlloc) {
    tokio::task::spawn_blocking(move || a.release())
        .await
        .expect("release");
}

async fn connect(scaler: &Scaler) -> ExternalScalerClient<Channel> {
    let url = format!("http://{}", scaler.grpc);
    poll(WAIT, "scaler gRPC connect", || async {
        ExternalScalerClient::connect(url.clone()).await.ok()
    })
    .await
}

/// Polls GetMetrics until it answers `want`; any other *value* seen on the way must be `from`
/// (the previous state, still cached or not yet scraped).
async fn settle(c: &mut ExternalScalerClient<Channel>, r: &ScaledObjectRef, from: i64, want: i64) {
    let what = format!("{} desired {from} -> {want}", r.name);
    poll(WAIT, &what, || {
        let mut c = c.clone();
        async move {
            match desired(&mut c, r).await {
                Ok(v) if v == want => Some(()),
                Ok(v) => {
                    assert_eq!(v, from, "{} desired: unexpected value", r.name);
                    None
                }
                Err(_) => None, // no samples yet right after start-up
            }
        }
    })
    .await;
}

/// What the scaler should report for one ScaledObject.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Expect {
    /// GetMetrics value and `stunner_scaler_desired_replicas`.
    desired: i64,
    /// IsActive.
    active: bool,
    /// `stunner_scaler_allocations` (non-draining pods only).
    allocations: f64,
    /// `stunner_scaler_pods_draining`.
    draining_pods: f64,
}

async fn is_active(c: &mut ExternalScalerClient<Channel>, r: &ScaledObjectRef) -> bool {
    c.is_active(r.clone())
        .await
        .expect("IsActive")
        .into_inner()
        .result
}

/// Allocations per pod Prometheus currently holds, in [`PODS`] order.
async fn scraped(prom: &Prometheus, http: &reqwest::Client, metric: &str) -> Vec<f64> {
    let samples = prom
        .query(http, &format!(r#"{metric}{{namespace="stunner"}}"#))
        .await;
    PODS.iter()
        .map(|p| {
            samples
                .iter()
                .find(|(pod, _)| pod == p)
                .map_or(f64::NAN, |s| s.1)
        })
        .collect()
}

async fn wait_scraped(prom: &Prometheus, http: &reqwest::Client, metric: &str, want: &[f64]) {
    poll(
        WAIT,
        &format!("prometheus sees {metric} = {want:?}"),
        || async { (scraped(prom, http, metric).await == want).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_stunnerds_prometheus_and_scaler_binary() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut w = World::start().await;
        w.all_rpcs_count_every_allocation().await;
        w.draining_pod_is_excluded().await;
        w.ready_sessions_end().await;
        w.prometheus_down_is_unavailable().await;
    })
    .await
    .expect("test timed out");
}

/// Everything the scenario runs, started in order: dataplanes with allocations, Prometheus,
/// the scaler, a KEDA-like client.
struct World {
    http: reqwest::Client,
    dataplanes: Vec<Stunnerd>,
    /// Allocations held on each dataplane, in [`PODS`] order.
    allocations: Vec<Vec<RawAlloc>>,
    prom: Prometheus,
    scaler: Scaler,
    c: ExternalScalerClient<Channel>,
    /// The ScaledObject on the prometheus source.
    pr: ScaledObjectRef,
    /// The ScaledObject on the direct source.
    dr: ScaledObjectRef,
}

impl World {
    async fn start() -> Self {
        proto::tls::provider(); // reqwest takes the process default
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        let mut dataplanes = Vec::new();
        for _ in PODS {
            dataplanes.push(Stunnerd::start(&http).await);
        }
        let mut allocations = Vec::new();
        for (sd, n) in dataplanes.iter().zip(ALLOCS) {
            let mut held = Vec::new();
            for _ in 0..n {
                held.push(allocate(sd.turn).await);
            }
            assert_eq!(sd.status(&http).await["allocationCount"], n);
            allocations.push(held);
        }
        let targets: Vec<_> = dataplanes.iter().map(|d| d.metrics).zip(PODS).collect();
        let prom = Prometheus::start(&http, &targets).await;
        wait_scraped(&prom, &http, "stunner_allocations_active", &[5.0, 3.0, 2.0]).await;
        let health: Vec<_> = dataplanes.iter().map(|d| d.health).collect();
        let scaler = Scaler::start(&http, &health).await;
        let c = connect(&scaler).await;
        let (pr, dr) = (prometheus_ref(&prom), direct_ref());
        Self {
            http,
            dataplanes,
            allocations,
            prom,
            scaler,
            c,
            pr,
            dr,
        }
    }

    /// Asserts GetMetrics, IsActive and the scaler's own gauges for `r` on `source`.
    async fn expect(&mut self, prometheus: bool, want: Expect) {
        let (r, source) = if prometheus {
            (&self.pr, "prometheus")
        } else {
            (&self.dr, "direct")
        };
        assert_eq!(
            desired(&mut self.c, r).await.expect("GetMetrics"),
            want.desired
        );
        assert_eq!(
            is_active(&mut self.c, r).await,
            want.active,
            "{source} IsActive"
        );
        let labels = format!(r#"scaledobject="stunner/{}",source="{source}""#, r.name);
        let mut got = [0.0; 3];
        for (v, name) in got.iter_mut().zip([
            "stunner_scaler_desired_replicas",
            "stunner_scaler_allocations",
            "stunner_scaler_pods_draining",
        ]) {
            *v = self
                .scaler
                .metric(&self.http, name, &labels)
                .await
                .unwrap_or(f64::NAN);
        }
        let want_gauges = [want.desired as f64, want.allocations, want.draining_pods];
        assert_eq!(
            got, want_gauges,
            "{source}: desired, allocations, pods draining"
        );
    }

    /// GetMetricSpec, GetMetrics, IsActive and StreamIsActive on both sources.
    async fn all_rpcs_count_every_allocation(&mut self) {
        // One AverageValue target of 1: the metric value is the desired replica count.
        for r in [&self.pr, &self.dr] {
            let spec = self
                .c
                .get_metric_spec(r.clone())
                .await
                .expect("spec")
                .into_inner();
            assert_eq!(spec.metric_specs.len(), 1);
            let s = &spec.metric_specs[0];
            assert_eq!((s.target_size, s.target_size_float), (1, 1.0));
        }
        // 5 + 3 + 2 = 10 allocations on 3 ready pods: ceil(10 / 4) = 3 replicas, active;
        // the direct source reads the same dataplanes' /status and agrees.
        settle(&mut self.c, &self.pr, 3, 3).await;
        let want = Expect {
            desired: 3,
            active: true,
            allocations: 10.0,
            draining_pods: 0.0,
        };
        self.expect(true, want).await;
        self.expect(false, want).await;
    }

    /// `POST /drain` on the 5-allocation pod: its sessions will not move, so only 3 + 2 = 5
    /// count: ceil(5 / 4) = 2 on the 2 remaining ready pods (all 10 would have kept 3).
    async fn draining_pod_is_excluded(&mut self) {
        self.dataplanes[0].drain(&self.http).await;
        wait_scraped(
            &self.prom,
            &self.http,
            "stunner_dataplane_draining",
            &[1.0, 0.0, 0.0],
        )
        .await;
        settle(&mut self.c, &self.pr, 3, 2).await;
        settle(&mut self.c, &self.dr, 3, 2).await;
        let want = Expect {
            desired: 2,
            active: true,
            allocations: 5.0,
            draining_pods: 1.0,
        };
        self.expect(true, want).await;
        self.expect(false, want).await;
        let status = self.dataplanes[0].status(&self.http).await;
        assert_eq!(
            status["allocationCount"], 5,
            "the draining pod keeps its sessions"
        );
    }

    /// The ready pods' sessions end: inactive (StreamIsActive pushes `false`), but the draining
    /// pod still holds 5 sessions, so no scale-in below the 2 ready pods yet.
    async fn ready_sessions_end(&mut self) {
        let mut stream = self
            .c
            .stream_is_active(self.pr.clone())
            .await
            .expect("StreamIsActive")
            .into_inner();
        let first = tokio::time::timeout(WAIT, stream.message()).await;
        let first = first
            .expect("first item in time")
            .expect("stream")
            .expect("item");
        assert!(first.result, "StreamIsActive starts with the current value");
        for held in self.allocations.drain(1..) {
            for a in held {
                release(a).await;
            }
        }
        wait_scraped(
            &self.prom,
            &self.http,
            "stunner_allocations_active",
            &[5.0, 0.0, 0.0],
        )
        .await;
        let pushed = tokio::time::timeout(WAIT, stream.message()).await;
        let pushed = pushed
            .expect("push in time")
            .expect("stream")
            .expect("item");
        assert!(!pushed.result, "StreamIsActive pushes the change");
        let (c, dr) = (self.c.clone(), self.dr.clone());
        poll(WAIT, "direct source inactive", || {
            let (mut c, dr) = (c.clone(), dr.clone());
            async move { (!c.is_active(dr).await.ok()?.into_inner().result).then_some(()) }
        })
        .await;
        let want = Expect {
            desired: 2,
            active: false,
            allocations: 0.0,
            draining_pods: 1.0,
        };
        self.expect(true, want).await;
        self.expect(false, want).await;
    }

    /// Prometheus goes away: every RPC that needs a reading is Unavailable (KEDA's fallback
    /// applies), never a number; the direct source is unaffected.
    async fn prometheus_down_is_unavailable(&mut self) {
        self.prom.proc.stop();
        let (c, pr) = (self.c.clone(), self.pr.clone());
        let err = poll(WAIT, "Unavailable after Prometheus stopped", || {
            let (mut c, pr) = (c.clone(), pr.clone());
            async move {
                match desired(&mut c, &pr).await {
                    Ok(v) => {
                        assert_eq!(v, 2, "only the cached value may still be served");
                        None
                    }
                    Err(e) => Some(e),
                }
            }
        })
        .await;
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
        let err = self
            .c
            .is_active(self.pr.clone())
            .await
            .expect_err("IsActive");
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
        let labels = r#"scaledobject="stunner/udp-gateway",source="prometheus""#;
        let errors = self
            .scaler
            .metric(&self.http, "stunner_scaler_upstream_errors_total", labels)
            .await;
        assert!(
            errors.is_some_and(|n| n >= 1.0),
            "upstream errors {errors:?}"
        );
        let want = Expect {
            desired: 2,
            active: false,
            allocations: 0.0,
            draining_pods: 1.0,
        };
        self.expect(false, want).await;
        for sd in &mut self.dataplanes {
            sd.proc.assert_running();
        }
    }
}
