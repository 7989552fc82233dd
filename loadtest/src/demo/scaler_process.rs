//! The real `stunner-scaler` process in `direct` mode over the fleet's endpoints file, and the
//! KEDA side of the conversation: the same `GetMetricSpec`/`GetMetrics` calls KEDA makes, plus the
//! deletion costs the scaler's drain steering decided (`GET /steering`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use proto::keda::external_scaler_client::ExternalScalerClient;
use proto::keda::{GetMetricsRequest, MetricSpec, MetricValue, ScaledObjectRef};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::{Error, Result};

/// The ScaledObject the demo plays KEDA for.
pub(crate) const NAMESPACE: &str = "demo";
/// Its name (also the Gateway's).
pub(crate) const NAME: &str = "udp-gateway";

/// Trigger settings sent as `scalerMetadata`, as a ScaledObject would carry them.
#[derive(Clone, Debug)]
pub(crate) struct Trigger {
    /// `targetAllocationsPerPod`.
    pub(crate) target: u32,
    /// `scaleInStep`.
    pub(crate) scale_in_step: u32,
    /// `minReplicas` / `maxReplicas`.
    pub(crate) min: u32,
    /// Upper bound.
    pub(crate) max: u32,
    /// `drainSteering`.
    pub(crate) steering: bool,
}

/// A running scaler and a gRPC client to it.
#[derive(Debug)]
pub(crate) struct Scaler {
    child: Child,
    http: SocketAddr,
    client: ExternalScalerClient<Channel>,
    trigger: Trigger,
}

impl Scaler {
    /// Starts `binary` reading `endpoints_file`, and connects to it.
    pub(crate) async fn start(
        binary: &Path,
        endpoints_file: &Path,
        trigger: Trigger,
    ) -> Result<Self> {
        let grpc = free_port()?;
        let http = free_port()?;
        let child = Command::new(binary)
            .arg(format!("--grpc-addr={grpc}"))
            .arg(format!("--http-addr={http}"))
            .arg("--cache-interval=1")
            .arg("--no-kubernetes")
            .arg("--static-endpoints-file")
            .arg(endpoints_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::io(format_args!("start {}", binary.display()), e))?;
        let client = connect(grpc).await?;
        Ok(Self {
            child,
            http,
            client,
            trigger,
        })
    }

    /// What KEDA asks on every poll: the metric spec (the HPA's target) and the metric values.
    pub(crate) async fn metrics(&mut self) -> Result<(MetricSpec, Vec<MetricValue>)> {
        let spec = self
            .client
            .get_metric_spec(self.object())
            .await
            .map_err(grpc_error)?
            .into_inner()
            .metric_specs
            .into_iter()
            .next()
            .ok_or_else(|| Error::Turn("scaler returned no metric spec".into()))?;
        let req = GetMetricsRequest {
            scaled_object_ref: Some(self.object()),
            metric_name: spec.metric_name.clone(),
        };
        let values = self
            .client
            .get_metrics(req)
            .await
            .map_err(grpc_error)?
            .into_inner()
            .metric_values;
        Ok((spec, values))
    }

    /// The deletion costs of the latest steered scale-in decision (endpoint -> cost).
    pub(crate) async fn deletion_costs(&self) -> Result<HashMap<SocketAddr, i64>> {
        let (code, body) = super::http::get(self.http, "/steering").await?;
        if code != 200 {
            return Err(Error::Turn(format!("scaler /steering answered {code}")));
        }
        parse_costs(&body, &format!("{NAMESPACE}/{NAME}"))
    }

    /// Stops the scaler process.
    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    fn object(&self) -> ScaledObjectRef {
        let t = &self.trigger;
        let meta = [
            ("source", "direct".to_string()),
            ("gateway", format!("{NAMESPACE}/{NAME}")),
            ("targetAllocationsPerPod", t.target.to_string()),
            ("scaleInStep", t.scale_in_step.to_string()),
            ("minReplicas", t.min.to_string()),
            ("maxReplicas", t.max.to_string()),
            ("drainSteering", t.steering.to_string()),
        ];
        ScaledObjectRef {
            name: NAME.into(),
            namespace: NAMESPACE.into(),
            scaler_metadata: meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }
}

/// Reads `{"<ns>/<name>": {"costs": {"host:port": n}}}`.
fn parse_costs(body: &str, key: &str) -> Result<HashMap<SocketAddr, i64>> {
    let v: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Error::Turn(format!("scaler /steering is not JSON: {e}")))?;
    let mut costs = HashMap::new();
    if let Some(map) = v[key]["costs"].as_object() {
        for (ep, cost) in map {
            if let (Ok(addr), Some(c)) = (ep.parse(), cost.as_i64()) {
                costs.insert(addr, c);
            }
        }
    }
    Ok(costs)
}

fn grpc_error(s: tonic::Status) -> Error {
    Error::Turn(format!("scaler gRPC: {}: {}", s.code(), s.message()))
}

fn free_port() -> Result<SocketAddr> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("pick a TCP port", e))?;
    l.local_addr().map_err(|e| Error::io("pick a TCP port", e))
}

/// Connects to the scaler's gRPC port, retrying while it starts (10 s at most).
async fn connect(addr: SocketAddr) -> Result<ExternalScalerClient<Channel>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ExternalScalerClient::connect(format!("http://{addr}")).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => {
                return Err(Error::Turn(format!(
                    "cannot reach the scaler at {addr}: {e}"
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_read_for_our_scaled_object_only() {
        let body = r#"{"demo/udp-gateway":{"decidedAt":1,"desired":2,"costs":{"127.0.0.1:9001":3,"bad":1}},
                      "other/x":{"costs":{"127.0.0.1:9002":0}}}"#;
        let costs = parse_costs(body, "demo/udp-gateway").unwrap();
        assert_eq!(costs.len(), 1);
        assert_eq!(costs[&"127.0.0.1:9001".parse().unwrap()], 3);
        assert!(parse_costs("nope", "demo/udp-gateway").is_err());
    }
}
