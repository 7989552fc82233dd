//! The `direct` source: the Gateway's dataplane pods are found through the Kubernetes API
//! (label selector; pods with a deletionTimestamp are draining) or given as static endpoints,
//! and each one's `/status` is read. Pods that are not Ready (starting, crash-looping) are not
//! read, and pods whose `/status` cannot be read are left out of the reading: both are counted
//! in [`Observation::excluded_pods`] and logged, so one broken pod neither fails the reading
//! (which would put KEDA on its fallback) nor counts as an empty pod. A reading that sees no
//! pod at all, or reaches none of them, is an error: never a 0 that would shrink a loaded
//! gateway.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use proto::admin::DataplaneState;
use serde::Deserialize;

use super::{SourceDeps, prometheus::error_chain};
use crate::error::{Error, Result};
use crate::metadata::{GatewayRef, TriggerMetadata};
use crate::policy::{Observation, PodLoad};
use crate::steering::DELETION_COST;

/// The part of stunnerd's `/status` JSON ([`proto::admin::Status`]) the scaler reads. Only
/// these two fields are required, so a scaler and dataplanes of different versions still
/// agree while the summaries around them evolve.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneStatus {
    /// Live TURN allocations.
    pub allocation_count: u64,
    /// Lifecycle state.
    pub state: DataplaneState,
}

impl DataplaneStatus {
    /// Whether the pod is on its way out (its sessions will not move).
    pub fn is_draining(&self) -> bool {
        matches!(
            self.state,
            DataplaneState::Draining | DataplaneState::Terminating
        )
    }
}

/// One pod (or static endpoint) to read.
#[derive(Debug, Clone)]
struct Target {
    namespace: String,
    name: String,
    addr: String,
    deletion_cost: Option<String>,
    /// The API server already says the pod is terminating.
    terminating: bool,
    /// The pod is not Running and Ready (static endpoints are taken as Ready).
    unready: bool,
    /// A container of the pod has restarted (a not-Ready pod is then broken, not starting).
    restarted: bool,
}

#[derive(Debug, Clone)]
enum Targets {
    /// `--static-endpoints` plus the lines of `--static-endpoints-file` (re-read every time).
    Static {
        list: Vec<String>,
        file: Option<PathBuf>,
    },
    Pods {
        api: Api<Pod>,
        selector: String,
        port: u16,
    },
}

/// The label selector of the dataplane pods of Gateway `gw`: the `related-gateway-*` labels the
/// operator puts on every pod it renders for a Gateway.
pub fn gateway_pod_selector(gw: &GatewayRef) -> String {
    format!(
        "stunner.l7mp.io/related-gateway-name={},stunner.l7mp.io/related-gateway-namespace={}",
        gw.name, gw.namespace
    )
}

/// Reads dataplane pods' `/status`.
#[derive(Debug, Clone)]
pub struct DirectSource {
    targets: Targets,
    http: reqwest::Client,
}

impl DirectSource {
    /// Static endpoints win when configured; otherwise pods are listed by `podSelector` (or
    /// the Gateway's `stunner.l7mp.io/related-gateway-*` labels) in the Gateway's namespace.
    pub fn build(md: &TriggerMetadata, namespace: &str, deps: &SourceDeps) -> Result<Self> {
        let http = status_client(md.timeout)?;
        if !deps.static_endpoints.is_empty() || deps.static_endpoints_file.is_some() {
            return Ok(Self {
                targets: Targets::Static {
                    list: deps.static_endpoints.clone(),
                    file: deps.static_endpoints_file.clone(),
                },
                http,
            });
        }
        let selector = match (&md.pod_selector, &md.gateway) {
            (Some(sel), _) => sel.clone(),
            (None, Some(gw)) => gateway_pod_selector(gw),
            (None, None) => {
                return Err(Error::metadata(
                    "gateway",
                    "required for source `direct` unless `podSelector` is set",
                ));
            }
        };
        let ns = md
            .gateway
            .as_ref()
            .map_or(namespace, |g| g.namespace.as_str());
        let kube = deps.kube.clone().ok_or_else(|| {
            Error::Kube("source `direct` needs Kubernetes access or --static-endpoints".into())
        })?;
        let api = Api::namespaced(kube, ns);
        Ok(Self {
            targets: Targets::Pods {
                api,
                selector,
                port: md.status_port,
            },
            http,
        })
    }

    /// Lists the targets and reads every Ready pod's `/status` concurrently.
    pub async fn observe(&self) -> Result<Observation> {
        let targets = self.targets().await?;
        if targets.is_empty() {
            return Err(Error::Backend("no dataplane pods found".into()));
        }
        let reads = join_all(targets.iter().map(|t| async {
            if t.unready && !t.terminating {
                return Err(NOT_READY.to_owned());
            }
            self.read_status(&t.addr).await
        }))
        .await;
        let mut obs = Observation {
            draining_allocations: Some(0.0),
            ..Default::default()
        };
        let mut left_out = Vec::new();
        for (target, read) in targets.into_iter().zip(reads) {
            match read {
                Ok(status) if status.is_draining() || target.terminating => {
                    obs.draining_pods += 1;
                    *obs.draining_allocations.get_or_insert(0.0) += status.allocation_count as f64;
                }
                Ok(status) => obs.pods.push(PodLoad {
                    namespace: target.namespace,
                    name: target.name,
                    allocations: status.allocation_count,
                    deletion_cost: target.deletion_cost,
                }),
                // A terminating pod may already be gone: it is draining either way.
                Err(_) if target.terminating => obs.draining_pods += 1,
                Err(e) => {
                    let broken = if e == NOT_READY {
                        tracing::info!(pod = %target.name, restarted = target.restarted, "dataplane pod not Ready: left out of the reading");
                        target.restarted
                    } else {
                        tracing::warn!(pod = %target.name, addr = %target.addr, error = %e, "dataplane pod unreachable: left out of the reading");
                        true
                    };
                    obs.broken_pods += u32::from(broken);
                    left_out.push(format!("{} ({}): {e}", target.name, target.addr));
                }
            }
        }
        obs.excluded_pods = left_out.len() as u32;
        if obs.pods.is_empty() && !left_out.is_empty() {
            return Err(Error::Backend(format!(
                "no dataplane pod could be read ({} left out): {}",
                left_out.len(),
                left_out.join("; ")
            )));
        }
        obs.active_allocations = obs.pods.iter().map(|p| p.allocations as f64).sum();
        obs.ready_pods = Some(obs.pods.len() as u32);
        Ok(obs)
    }

    async fn targets(&self) -> Result<Vec<Target>> {
        match &self.targets {
            Targets::Static { list, file } => {
                let mut addrs = list.clone();
                if let Some(path) = file {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        Error::Backend(format!(
                            "reading static endpoints file {}: {e}",
                            path.display()
                        ))
                    })?;
                    addrs.extend(parse_endpoints_file(&text));
                }
                let mut seen = std::collections::HashSet::new();
                addrs.retain(|a| seen.insert(a.clone()));
                Ok(addrs.into_iter().map(static_target).collect())
            }
            Targets::Pods {
                api,
                selector,
                port,
            } => {
                let pods = api.list(&ListParams::default().labels(selector)).await?;
                Ok(pods
                    .items
                    .iter()
                    .filter_map(|p| pod_target(p, *port))
                    .collect())
            }
        }
    }

    async fn read_status(&self, addr: &str) -> Result<DataplaneStatus, String> {
        let url = format!("http://{addr}/status");
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let resp = resp.error_for_status().map_err(|e| e.to_string())?;
        let body = resp.bytes().await.map_err(|e| error_chain(&e))?;
        serde_json::from_slice(&body).map_err(|e| format!("bad /status JSON: {e}"))
    }
}

/// `host:port` per line; blank lines and `#` comments (whole-line or trailing) are skipped.
pub fn parse_endpoints_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Why a pod was not read (the pod is listed, but not Running and Ready).
const NOT_READY: &str = "not Ready";

fn static_target(addr: String) -> Target {
    Target {
        namespace: String::new(),
        name: addr.clone(),
        addr,
        deletion_cost: None,
        terminating: false,
        unready: false,
        restarted: false,
    }
}

/// The target of a pod the HPA counts (`status.replicas`: not terminated). Pods that are not
/// Running and Ready (`IsPodReady`) hold no sessions and are marked `unready`; pods that
/// finished (Succeeded/Failed) are not counted by anyone.
fn pod_target(pod: &Pod, port: u16) -> Option<Target> {
    let status = pod.status.as_ref()?;
    let phase = status.phase.as_deref().unwrap_or("Pending");
    if matches!(phase, "Succeeded" | "Failed") {
        return None;
    }
    let ready = phase == "Running"
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
    let ip = status.pod_ip.as_deref().unwrap_or_default();
    let meta = &pod.metadata;
    let addr = if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    Some(Target {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        addr,
        deletion_cost: meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(DELETION_COST))
            .cloned(),
        terminating: meta.deletion_timestamp.is_some(),
        unready: !ready || ip.is_empty(),
        restarted: status
            .container_statuses
            .iter()
            .flatten()
            .any(|c| c.restart_count > 0),
    })
}

fn status_client(timeout: Duration) -> Result<reqwest::Client> {
    proto::tls::provider(); // reqwest takes the process default
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| Error::Backend(format!("cannot build HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_file_lines() {
        let text =
            "# demo replicas\n127.0.0.1:8086\n\n  127.0.0.1:8087  # second\n#127.0.0.1:9999\n";
        assert_eq!(
            parse_endpoints_file(text),
            vec!["127.0.0.1:8086", "127.0.0.1:8087"]
        );
    }
}
