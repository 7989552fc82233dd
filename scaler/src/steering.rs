//! Drain steering: before a scale-in, annotate each dataplane pod with
//! `controller.kubernetes.io/pod-deletion-cost` = its allocation count, so the ReplicaSet
//! removes the emptiest pods first. Done once per scale-in decision (see [`SteeringGate`]),
//! never on every poll, and only for pods whose annotation differs.
//!
//! Every steered decision is also recorded in a [`SteeringBook`] served on `GET /steering`, so
//! runs without Kubernetes (static endpoints) can act on the same costs as a ReplicaSet would.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::policy::PodLoad;

/// The annotation the ReplicaSet controller reads when choosing pods to delete.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Remembers the last scale-in decision steered, so each decision patches once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SteeringGate {
    last: Option<(u32, u32)>,
}

impl SteeringGate {
    /// Whether a decision `ready -> desired` needs steering now. A scale-in is a new decision
    /// when its (ready, desired) pair differs from the last one steered; anything else resets
    /// the gate so the next scale-in is steered again.
    pub fn admit(&mut self, ready: Option<u32>, desired: u32) -> bool {
        match ready {
            Some(ready) if desired < ready => {
                let new = self.last != Some((ready, desired));
                self.last = Some((ready, desired));
                new
            }
            _ => {
                self.last = None;
                false
            }
        }
    }
}

/// One steered scale-in decision, as served on `/steering`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SteeringRecord {
    /// When the decision was made (unix seconds).
    pub decided_at: u64,
    /// The desired replica count of the decision.
    pub desired: u32,
    /// Deletion cost (allocation count) per pod name, or per `host:port` for static endpoints.
    pub costs: BTreeMap<String, u64>,
}

impl SteeringRecord {
    /// A record of `desired` with the costs of `pods`, stamped now.
    pub fn new(desired: u32, pods: &[PodLoad]) -> Self {
        let decided_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let costs = pods
            .iter()
            .map(|p| (p.name.clone(), p.allocations))
            .collect();
        Self {
            decided_at,
            desired,
            costs,
        }
    }
}

/// The last steered decision per ScaledObject (`namespace/name`).
#[derive(Debug, Default)]
pub struct SteeringBook(Mutex<BTreeMap<String, SteeringRecord>>);

impl SteeringBook {
    /// Records the latest decision of `scaledobject`.
    pub fn record(&self, scaledobject: &str, record: SteeringRecord) {
        let mut book = self.0.lock().unwrap_or_else(|p| p.into_inner());
        book.insert(scaledobject.to_owned(), record);
    }

    /// Drops the record of `scaledobject`.
    pub fn forget(&self, scaledobject: &str) {
        let mut book = self.0.lock().unwrap_or_else(|p| p.into_inner());
        book.remove(scaledobject);
    }

    /// A copy of every record.
    pub fn snapshot(&self) -> BTreeMap<String, SteeringRecord> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The annotation value for a pod holding `allocations` (the annotation is an int32).
pub fn cost_of(allocations: u64) -> String {
    allocations.min(i32::MAX as u64).to_string()
}

/// Patches the deletion cost of every pod in `pods` whose annotation is not already right;
/// returns how many were patched. All pods are tried; the first failure is returned.
pub async fn apply(client: &kube::Client, pods: &[PodLoad]) -> Result<usize> {
    let mut patched = 0;
    let mut first_err = None;
    for pod in pods.iter().filter(|p| !p.namespace.is_empty()) {
        let cost = cost_of(pod.allocations);
        if pod.deletion_cost.as_deref() == Some(cost.as_str()) {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
        let patch = serde_json::json!({ "metadata": { "annotations": { DELETION_COST: cost } } });
        match api
            .patch(&pod.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => patched += 1,
            Err(e) => {
                tracing::warn!(pod = %pod.name, namespace = %pod.namespace, error = %e, "pod-deletion-cost patch failed");
                first_err.get_or_insert(Error::from(e));
            }
        }
    }
    first_err.map_or(Ok(patched), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_admits_each_scale_in_decision_once() {
        let mut g = SteeringGate::default();
        assert!(!g.admit(Some(5), 5), "no scale-in");
        assert!(g.admit(Some(5), 4));
        assert!(!g.admit(Some(5), 4), "same decision on the next poll");
        assert!(g.admit(Some(5), 3), "a deeper scale-in is a new decision");
        assert!(!g.admit(Some(3), 3), "done");
        assert!(g.admit(Some(3), 2));
        assert!(!g.admit(None, 2), "unknown ready count cannot steer");
    }

    #[test]
    fn cost_saturates_at_int32() {
        assert_eq!(cost_of(7), "7");
        assert_eq!(cost_of(u64::MAX), i32::MAX.to_string());
    }
}
