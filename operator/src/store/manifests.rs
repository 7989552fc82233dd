//! Loading a snapshot from Kubernetes manifests (multi-document YAML or JSON): the user-facing
//! sample manifests in tests, the render benchmark, and offline rendering.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Insert, Objects, Snapshot};
use kube::ResourceExt;

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The text is not YAML.
    #[error("document {index}: {source}")]
    Syntax {
        /// 0-based document index.
        index: usize,
        /// Parser error.
        source: serde_norway::Error,
    },
    /// The document does not match the schema of its kind.
    #[error("document {index} ({kind}): {source}")]
    Schema {
        /// 0-based document index.
        index: usize,
        /// `apiVersion/kind`.
        kind: String,
        /// Decoder error.
        source: serde_json::Error,
    },
    /// A kind the operator does not watch.
    #[error("document {index}: unsupported kind {kind}")]
    UnsupportedKind {
        /// 0-based document index.
        index: usize,
        /// `apiVersion/kind`.
        kind: String,
    },
}

fn put<K: DeserializeOwned + ResourceExt>(
    map: &mut Objects<K>,
    doc: serde_json::Value,
    index: usize,
    kind: &str,
) -> Result<(), ManifestError> {
    let obj: K = serde_json::from_value(doc).map_err(|source| ManifestError::Schema {
        index,
        kind: kind.into(),
        source,
    })?;
    map.put(obj);
    Ok(())
}

impl Snapshot {
    /// Adds (or replaces) every object of a multi-document manifest; empty documents are skipped.
    pub fn apply_manifests(&mut self, text: &str) -> Result<(), ManifestError> {
        for (index, de) in serde_norway::Deserializer::from_str(text).enumerate() {
            let doc = serde_json::Value::deserialize(de)
                .map_err(|source| ManifestError::Syntax { index, source })?;
            if doc.is_null() {
                continue;
            }
            self.apply_one(doc, index)?;
        }
        Ok(())
    }

    fn apply_one(&mut self, doc: serde_json::Value, index: usize) -> Result<(), ManifestError> {
        let api = doc
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let kind = doc
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let group = api.rsplit_once('/').map_or("", |(g, _)| g);
        let k = format!("{api}/{kind}");
        match (group, kind.as_str()) {
            ("gateway.networking.k8s.io", "GatewayClass") => {
                put(&mut self.gateway_classes, doc, index, &k)
            }
            ("gateway.networking.k8s.io", "Gateway") => put(&mut self.gateways, doc, index, &k),
            ("gateway.networking.k8s.io", "UDPRoute") => {
                put(&mut self.udp_routes_v1a2, doc, index, &k)
            }
            ("stunner.l7mp.io", "GatewayConfig") => put(&mut self.gateway_configs, doc, index, &k),
            ("stunner.l7mp.io", "Dataplane") => put(&mut self.dataplanes, doc, index, &k),
            ("stunner.l7mp.io", "UDPRoute") => put(&mut self.udp_routes, doc, index, &k),
            ("stunner.l7mp.io", "StaticService") => put(&mut self.static_services, doc, index, &k),
            ("", "Service") => put(&mut self.services, doc, index, &k),
            ("", "Secret") => put(&mut self.secrets, doc, index, &k),
            ("", "Node") => put(&mut self.nodes, doc, index, &k),
            ("", "Namespace") => put(&mut self.namespaces, doc, index, &k),
            ("discovery.k8s.io", "EndpointSlice") => put(&mut self.endpoint_slices, doc, index, &k),
            ("gateway.networking.k8s.io", "ReferenceGrant") => {
                put(&mut self.reference_grants, doc, index, &k)
            }
            ("apps", "Deployment") => put(&mut self.deployments, doc, index, &k),
            ("apps", "DaemonSet") => put(&mut self.daemon_sets, doc, index, &k),
            ("keda.sh", "ScaledObject") => put(&mut self.scaled_objects, doc, index, &k),
            ("autoscaling", "HorizontalPodAutoscaler") => put(&mut self.hpas, doc, index, &k),
            _ => Err(ManifestError::UnsupportedKind { index, kind: k }),
        }
    }
}
