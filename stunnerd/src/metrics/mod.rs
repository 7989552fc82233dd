//! Prometheus metrics (docs/ARCHITECTURE.md §5.4): one `prometheus-client` registry with one collector that, at
//! scrape time, sums the per-worker packet counters of [`StatsHub`] by listener / cluster name and
//! reads the allocation counters of the engine's [`Shared`] state. Served over HTTP on
//! `admin.metrics_endpoint`.

mod hub;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

pub use hub::{ClusterTotals, ListenerTotals, StatsHub, TrafficTotals};

use crate::engine::{AllocOutcome, DropReason, Shared};

/// Everything the collector reads.
#[derive(Debug)]
pub struct Metrics {
    shared: Arc<Shared>,
    hub: Arc<StatsHub>,
    draining: Arc<AtomicBool>,
}

impl Metrics {
    /// Builds the registry holding the stunnerd collector.
    pub fn registry(
        shared: Arc<Shared>,
        hub: Arc<StatsHub>,
        draining: Arc<AtomicBool>,
    ) -> Registry {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Self {
            shared,
            hub,
            draining,
        }));
        registry
    }

    /// The text exposition of `registry`.
    pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry)?;
        Ok(text)
    }
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> fmt::Result {
    ConstGauge::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    ConstCounter::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// One metric family with one sample per label set.
fn family<'a, V>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    ty: MetricType,
    samples: impl IntoIterator<Item = (Labels<'a>, V)>,
) -> fmt::Result
where
    V: Into<Sample>,
{
    let mut metric = enc.encode_descriptor(name, help, None, ty)?;
    for (labels, value) in samples {
        let sample = metric.encode_family(&labels)?;
        match (ty, value.into()) {
            (MetricType::Gauge, Sample::Int(v)) => ConstGauge::new(v).encode(sample)?,
            (_, Sample::Uint(v)) => ConstCounter::new(v).encode(sample)?,
            (_, Sample::Int(v)) => ConstCounter::new(v.max(0) as u64).encode(sample)?,
        }
    }
    Ok(())
}

/// A sample value (counters are u64, gauges i64).
enum Sample {
    Uint(u64),
    Int(i64),
}

impl From<u64> for Sample {
    fn from(v: u64) -> Self {
        Self::Uint(v)
    }
}

impl From<i64> for Sample {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl prometheus_client::collector::Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let s = &self.shared;
        gauge(
            &mut enc,
            "stunner_allocations_active",
            "Live TURN allocations.",
            s.active_allocations(),
        )?;
        let outcomes =
            AllocOutcome::ALL.map(|o| (vec![("outcome", o.as_str())], s.outcome_count(o)));
        family(
            &mut enc,
            "stunner_allocations",
            "Allocate requests by outcome.",
            MetricType::Counter,
            outcomes,
        )?;
        counter(
            &mut enc,
            "stunner_allocations_dropped",
            "Allocations dropped by a drain deadline.",
            s.dropped_allocations(),
        )?;
        let draining = i64::from(self.draining.load(Ordering::Relaxed));
        gauge(
            &mut enc,
            "stunner_dataplane_draining",
            "1 while the dataplane drains.",
            draining,
        )?;
        self.encode_listeners(&mut enc)?;
        self.encode_clusters(&mut enc)
    }
}

impl Metrics {
    fn encode_listeners(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let totals = self.hub.listener_totals();
        let by = |f: fn(&ListenerTotals) -> u64| {
            totals
                .iter()
                .map(move |(n, t)| (vec![("name", n.as_str())], f(t)))
                .collect::<Vec<_>>()
        };
        let conns = totals
            .iter()
            .map(|(n, t)| (vec![("name", n.as_str())], t.connections));
        family(
            enc,
            "stunner_listener_connections",
            "Open client connections.",
            MetricType::Gauge,
            conns,
        )?;
        // A gauge-typed family: a counter named `stunner_listener_connections` would clash with the
        // gauge above in the text format; upstream's name is kept.
        let total = by(|t| t.connections_total)
            .into_iter()
            .map(|(l, v)| (l, i64::try_from(v).unwrap_or(i64::MAX)));
        family(
            enc,
            "stunner_listener_connections_total",
            "Client connections (TCP) and allocations since start.",
            MetricType::Gauge,
            total,
        )?;
        let traffic = totals.iter().map(|(n, t)| (n.as_str(), &t.traffic));
        encode_traffic(enc, "stunner_listener", "clients", traffic)?;
        family(
            enc,
            "stunner_permission_denied",
            "Permissions and channel binds refused by peer filtering.",
            MetricType::Counter,
            by(|t| t.permission_denied),
        )?;
        let dropped = totals.iter().flat_map(|(n, t)| {
            DropReason::ALL.iter().map(move |r| {
                (
                    vec![("name", n.as_str()), ("reason", r.as_str())],
                    t.dropped[*r as usize],
                )
            })
        });
        family(
            enc,
            "stunner_listener_packets_dropped",
            "Client and peer packets dropped, by reason.",
            MetricType::Counter,
            dropped,
        )?;
        let failures = totals.iter().flat_map(|(n, t)| {
            [
                (
                    vec![("name", n.as_str()), ("task", "listener")],
                    t.listener_failures,
                ),
                (
                    vec![("name", n.as_str()), ("task", "connection")],
                    t.connection_failures,
                ),
            ]
        });
        family(
            enc,
            "stunner_listener_failures",
            "Listener tasks (restarted) and connection tasks (closed) that panicked.",
            MetricType::Counter,
            failures,
        )
    }

    fn encode_clusters(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let totals = self.hub.cluster_totals();
        let traffic = totals.iter().map(|(n, t)| (n.as_str(), t));
        encode_traffic(enc, "stunner_cluster", "peers", traffic)
    }
}

/// The `<prefix>_packets` and `<prefix>_bytes` families (`name`, `direction` = rx | tx) of traffic
/// exchanged with `whom`.
fn encode_traffic<'a>(
    enc: &mut DescriptorEncoder<'_>,
    prefix: &str,
    whom: &str,
    totals: impl Iterator<Item = (&'a str, &'a TrafficTotals)> + Clone,
) -> fmt::Result {
    let dir = |rx: fn(&TrafficTotals) -> u64, tx: fn(&TrafficTotals) -> u64| {
        totals.clone().flat_map(move |(n, t)| {
            [
                (vec![("name", n), ("direction", "rx")], rx(t)),
                (vec![("name", n), ("direction", "tx")], tx(t)),
            ]
        })
    };
    family(
        enc,
        &format!("{prefix}_packets"),
        &format!("Packets exchanged with {whom}."),
        MetricType::Counter,
        dir(|t| t.rx_packets, |t| t.tx_packets),
    )?;
    family(
        enc,
        &format!("{prefix}_bytes"),
        &format!("Bytes exchanged with {whom}."),
        MetricType::Counter,
        dir(|t| t.rx_bytes, |t| t.tx_bytes),
    )
}

/// Serves `registry` at `path` on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    path: String,
    registry: Arc<Registry>,
) -> std::io::Result<()> {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let handler = move || {
        let registry = registry.clone();
        async move {
            match Metrics::render(&registry) {
                Ok(text) => (
                    StatusCode::OK,
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    text,
                ),
                Err(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/plain")],
                    String::new(),
                ),
            }
        }
    };
    // The path is matched literally, never as an axum route pattern: a configured path such as
    // `/:x` or `/{x}` must neither panic nor become a wildcard.
    let app =
        axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri| {
            let (ok, render) = (
                uri.path() == path && method == axum::http::Method::GET,
                handler.clone(),
            );
            async move {
                if ok {
                    render().await.into_response()
                } else {
                    StatusCode::NOT_FOUND.into_response()
                }
            }
        });
    axum::serve(listener, app).await
}
