//! The operator's Prometheus metrics and its health/metrics HTTP server.
//!
//! ```text
//!  RenderLoop::pass ──► passes, errors, render time, leader ─┐
//!  ConfigStore (CDS watchers, read at scrape time) ──────────┼─► GET /metrics
//!  readers synced ──► ready flag ────────────────────────────┴─► GET /readyz; /healthz always 200
//! ```
//!
//! The server starts before the operator connects to the API server, so the kubelet's liveness
//! probe passes while the operator waits for the cluster; `/readyz` passes once the caches are
//! synced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cds::ConfigStore;

/// Default address of the metrics and health server.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// Render-time histogram buckets, in seconds (a render of 1,000 Gateways takes ~0.2 s).
const RENDER_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Every operator metric; cheap to clone (the metrics are shared handles).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Completed render passes (`stunner_operator_reconcile_passes_total`).
    passes: Counter,
    /// Cluster writes that failed in a pass (`stunner_operator_reconcile_errors_total`).
    errors: Counter,
    /// Wall time of the pure render of a snapshot (`stunner_operator_render_duration_seconds`).
    render: Histogram,
    /// stunnerd connections watching CDS, read at scrape time (`stunner_operator_cds_clients`).
    cds_clients: Gauge,
    /// 1 while this replica holds the leader Lease (`stunner_operator_leader`).
    leader: Gauge,
    /// Whether the watch caches are synced (answers `/readyz`).
    ready: Arc<AtomicBool>,
}

impl Metrics {
    /// Creates the metrics and registers them under the `stunner_operator` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            passes: Counter::default(),
            errors: Counter::default(),
            render: Histogram::new(RENDER_BUCKETS),
            cds_clients: Gauge::default(),
            leader: Gauge::default(),
            ready: Arc::new(AtomicBool::new(false)),
        };
        registry.register(
            "reconcile_passes",
            "Completed render passes",
            m.passes.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Cluster writes (apply, status, delete) that failed in a render pass",
            m.errors.clone(),
        );
        registry.register(
            "render_duration_seconds",
            "Wall time of rendering one snapshot",
            m.render.clone(),
        );
        registry.register(
            "cds_clients",
            "stunnerd connections watching the Config Discovery Service",
            m.cds_clients.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            m.leader.clone(),
        );
        m
    }

    /// Records one completed pass: its render time and its failed writes.
    pub fn pass(&self, render: Duration, failed: usize) {
        self.passes.inc();
        self.render.observe(render.as_secs_f64());
        self.errors.inc_by(failed as u64);
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Marks the watch caches synced: `/readyz` passes from now on.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

/// What the HTTP handlers share.
#[derive(Clone)]
struct App {
    registry: Arc<Registry>,
    metrics: Metrics,
    cds: ConfigStore,
}

/// The `/metrics`, `/healthz` and `/readyz` routes.
pub fn router(registry: Registry, metrics: Metrics, cds: ConfigStore) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(App {
            registry: Arc::new(registry),
            metrics,
            cds,
        })
}

/// Serves [`router`] on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn scrape(State(app): State<App>) -> Response {
    app.metrics.cds_clients.set(app.cds.watchers() as i64);
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &app.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn ready(State(app): State<App>) -> Response {
    if app.metrics.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(registry: &Registry) -> String {
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, registry).expect("encode");
        body
    }

    #[test]
    fn a_pass_counts_and_times_and_adds_failures() {
        let mut registry = Registry::with_prefix("stunner_operator");
        let m = Metrics::register(&mut registry);
        m.pass(Duration::from_millis(3), 0);
        m.pass(Duration::from_millis(30), 2);
        m.set_leader(true);
        let t = text(&registry);
        assert!(
            t.contains("stunner_operator_reconcile_passes_total 2\n"),
            "{t}"
        );
        assert!(
            t.contains("stunner_operator_reconcile_errors_total 2\n"),
            "{t}"
        );
        assert!(
            t.contains("stunner_operator_render_duration_seconds_count 2\n"),
            "{t}"
        );
        assert!(
            t.contains("stunner_operator_render_duration_seconds_bucket{le=\"0.005\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("stunner_operator_leader 1\n"), "{t}");
    }
}
