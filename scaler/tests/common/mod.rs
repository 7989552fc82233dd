//! Shared test fixtures: fake stunnerd health/metrics servers, a scaler on loopback, a KEDA-like
//! tonic client and metadata builders.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Router, extract::State, routing::get};
use proto::keda::external_scaler_client::ExternalScalerClient;
use proto::keda::{GetMetricsRequest, ScaledObjectRef};
use scaler::App;
use scaler::source::SourceDeps;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// A stand-in for one stunnerd pod: `/status` (admin JSON) and `/metrics` (Prometheus text).
#[derive(Debug, Default)]
pub struct FakePod {
    pub allocations: AtomicU64,
    pub state: Mutex<String>,
    /// `/status` requests served.
    pub status_hits: AtomicUsize,
}

impl FakePod {
    pub fn set(&self, allocations: u64, state: &str) {
        self.allocations.store(allocations, Ordering::SeqCst);
        *self.state.lock().unwrap() = state.to_owned();
    }
    fn draining(&self) -> bool {
        matches!(
            self.state.lock().unwrap().as_str(),
            "DRAINING" | "TERMINATING"
        )
    }
}

async fn status(State(pod): State<Arc<FakePod>>) -> axum::Json<serde_json::Value> {
    pod.status_hits.fetch_add(1, Ordering::SeqCst);
    let state = pod.state.lock().unwrap().clone();
    axum::Json(serde_json::json!({
        "version": "v1",
        "admin": { "name": "stunner/udp-gateway" },
        "allocationCount": pod.allocations.load(Ordering::SeqCst),
        "state": state,
    }))
}

async fn metrics(State(pod): State<Arc<FakePod>>) -> String {
    format!(
        "# HELP stunner_allocations_active Active allocations.\n# TYPE stunner_allocations_active gauge\n\
         stunner_allocations_active {}\n\
         # HELP stunner_dataplane_draining 1 while draining.\n# TYPE stunner_dataplane_draining gauge\n\
         stunner_dataplane_draining {}\n",
        pod.allocations.load(Ordering::SeqCst),
        u8::from(pod.draining())
    )
}

/// Serves a fake pod on `listener` in the background.
pub fn serve_pod(listener: TcpListener, allocations: u64, state: &str) -> Arc<FakePod> {
    let pod = Arc::new(FakePod::default());
    pod.set(allocations, state);
    let app = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(pod.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    pod
}

/// A fake pod on 127.0.0.1 with an ephemeral port.
pub async fn fake_pod(allocations: u64, state: &str) -> (Arc<FakePod>, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (serve_pod(l, allocations, state), addr)
}

/// A scaler (gRPC + HTTP) on loopback; returns the app and both addresses.
pub async fn start_scaler(deps: SourceDeps, interval: Duration) -> (App, SocketAddr, SocketAddr) {
    let app = App::new(deps, interval);
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    let served = app.clone();
    tokio::spawn(async move { served.serve_grpc(grpc, None, std::future::pending()).await });
    let router = app.http_router();
    tokio::spawn(async move { axum::serve(http, router).await });
    (app, grpc_addr, http_addr)
}

/// `reqwest::get` with the workspace's crypto provider installed first (reqwest has none of its own).
pub async fn http_get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    proto::tls::provider();
    reqwest::get(url).await
}

/// The scaler's `/metrics` text.
pub async fn metrics_text(http: SocketAddr) -> String {
    http_get(format!("http://{http}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

pub async fn client(addr: SocketAddr) -> ExternalScalerClient<Channel> {
    for _ in 0..50 {
        if let Ok(c) = ExternalScalerClient::connect(format!("http://{addr}")).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("scaler gRPC server at {addr} did not come up");
}

pub fn so_ref(name: &str, md: &[(&str, &str)]) -> ScaledObjectRef {
    ScaledObjectRef {
        name: name.to_owned(),
        namespace: "stunner".to_owned(),
        scaler_metadata: md
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
    }
}

pub fn metrics_req(r: &ScaledObjectRef) -> GetMetricsRequest {
    GetMetricsRequest {
        scaled_object_ref: Some(r.clone()),
        metric_name: "s0-stunner-desired-replicas".into(),
    }
}

/// The single metric value of a GetMetrics answer (asserting there is exactly one).
pub async fn desired(
    c: &mut ExternalScalerClient<Channel>,
    r: &ScaledObjectRef,
) -> Result<i64, tonic::Status> {
    let resp = c.get_metrics(metrics_req(r)).await?.into_inner();
    assert_eq!(
        resp.metric_values.len(),
        1,
        "KEDA sums values: exactly one expected"
    );
    let v = &resp.metric_values[0];
    assert_eq!(
        v.metric_value as f64, v.metric_value_float,
        "int and float agree"
    );
    assert_eq!(v.metric_name, "s0-stunner-desired-replicas");
    Ok(v.metric_value)
}
