//! The credential service's Prometheus metrics (`stunner_auth_*`), registered once at start-up.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `turn` (`GET /`) or `ice` (`GET /ice`).
    pub endpoint: String,
    /// HTTP status code answered.
    pub code: String,
}

/// Every metric the service exports.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Credential requests answered, by endpoint and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Gateways known from CDS (set at scrape time).
    pub gateways: Gauge,
    /// 1 while the CDS watch is connected (set at scrape time).
    pub cds_connected: Gauge,
    /// CDS watch (re)connections made.
    pub cds_connects: Counter,
}

impl Metrics {
    /// Registers every metric under `registry` (which the caller prefixes `stunner_auth`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "requests",
            "Credential requests answered, by endpoint and HTTP status",
            m.requests.clone(),
        );
        registry.register("gateways", "Gateways known from CDS", m.gateways.clone());
        registry.register(
            "cds_connected",
            "Whether the CDS watch is connected",
            m.cds_connected.clone(),
        );
        registry.register(
            "cds_connects",
            "CDS watch connections made",
            m.cds_connects.clone(),
        );
        m
    }

    /// Counts one answered request.
    pub fn count(&self, endpoint: &str, code: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_owned(),
                code: code.to_string(),
            })
            .inc();
    }
}
