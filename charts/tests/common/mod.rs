//! Helpers shared by the chart tests: the chart rendered by helm, the objects the operator's
//! renderer produces for a Gateway that uses the chart's GatewayConfig and Dataplane, and label
//! selector matching.
#![allow(dead_code, unreachable_pub)] // each test binary uses a subset

use charts::{find, of_kind};
use operator::render::{RenderOptions, render};
use operator::store::Snapshot;
use serde_norway::Value;

/// The chart under test.
pub const CHART: &str = "stunner-gateway-operator";

/// The rendered chart (release `test`, namespace `stunner`) with `extra` helm arguments.
pub fn chart(extra: &[&str]) -> Vec<Value> {
    charts::template(CHART, extra).expect("helm template")
}

/// The string value of a `--flag=value` argument of `container`.
pub fn flag<'a>(container: &'a Value, flag: &str) -> Option<&'a str> {
    let prefix = format!("{flag}=");
    container["args"]
        .as_sequence()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(prefix.as_str()))
}

/// The container `name` of a workload (Deployment, DaemonSet) or a pod template spec.
pub fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    pod_spec(workload)["containers"]
        .as_sequence()
        .and_then(|cs| cs.iter().find(|c| c["name"].as_str() == Some(name)))
        .unwrap_or_else(|| panic!("container {name} missing in {workload:?}"))
}

/// The pod spec of a workload.
pub fn pod_spec(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]
}

/// The pod labels of a workload.
pub fn pod_labels(workload: &Value) -> &Value {
    &workload["spec"]["template"]["metadata"]["labels"]
}

/// Whether every `key: value` of `selector` (a matchLabels or Service selector map) is in `labels`.
/// An empty or missing selector matches nothing here: none of ours may be empty.
pub fn selects(selector: &Value, labels: &Value) -> bool {
    let Some(sel) = selector.as_mapping().filter(|m| !m.is_empty()) else {
        return false;
    };
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether a full `LabelSelector` (`matchLabels` and `matchExpressions` with `In`, `NotIn`,
/// `Exists`, `DoesNotExist`, as the API server evaluates them) selects `labels`. An empty
/// selector selects nothing here (a workload selector is never empty).
pub fn selects_label_selector(selector: &Value, labels: &Value) -> bool {
    let ml = selector["matchLabels"].as_mapping();
    let exprs = selector["matchExpressions"].as_sequence();
    if ml.is_none_or(|m| m.is_empty()) && exprs.is_none_or(|e| e.is_empty()) {
        return false;
    }
    let labels_ok = ml.is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    labels_ok
        && exprs.is_none_or(|es| {
            es.iter().all(|e| {
                let value = labels.get(e["key"].as_str().unwrap_or_default());
                let values: Vec<&Value> = e["values"]
                    .as_sequence()
                    .map_or(vec![], |v| v.iter().collect());
                match e["operator"].as_str() {
                    Some("In") => value.is_some_and(|v| values.contains(&v)),
                    Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
                    Some("Exists") => value.is_some(),
                    Some("DoesNotExist") => value.is_none(),
                    _ => false,
                }
            })
        })
}

/// Whether a `k1=v1,k2=v2` label selector string selects `labels`.
pub fn selects_str(selector: &str, labels: &Value) -> bool {
    !selector.is_empty()
        && selector.split(',').all(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            labels.get(k).and_then(Value::as_str) == Some(v)
        })
}

/// The names of a container's ports.
pub fn port_names(container: &Value) -> Vec<&str> {
    container["ports"]
        .as_sequence()
        .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default()
}

/// What the operator renders for the Gateway `namespace/udp-gateway` of the chart's
/// GatewayConfig and Dataplane, rendered with the options the chart gives the operator.
pub struct Operator {
    /// Deployments and DaemonSets.
    pub workloads: Vec<Value>,
    /// LoadBalancer Services.
    pub services: Vec<Value>,
    /// KEDA ScaledObjects (with `keda`) or HPAs.
    pub autoscalers: Vec<Value>,
    /// The stunnerd configs (as served by CDS).
    pub configs: Vec<proto::config::StunnerConfig>,
}

/// A GatewayClass naming the chart's GatewayConfig and a TURN-UDP Gateway in `namespace`.
fn gateway_manifests(controller: &str, namespace: &str) -> String {
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{ name: stunner-gatewayclass, generation: 1 }}
spec:
  controllerName: "{controller}"
  parametersRef: {{ group: stunner.l7mp.io, kind: GatewayConfig, name: stunner-gatewayconfig, namespace: stunner }}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{ name: udp-gateway, namespace: {namespace}, uid: uid-udp, generation: 1 }}
spec:
  gatewayClassName: stunner-gatewayclass
  listeners: [{{ name: udp-listener, port: 3478, protocol: TURN-UDP }}]
"#
    )
}

/// Renders the chart's GatewayConfig and Dataplane (optionally made a DaemonSet) through the
/// operator's renderer, with the controller name, CDS address and image the chart passes it.
pub fn operator_render(docs: &[Value], namespace: &str, keda: bool, daemon_set: bool) -> Operator {
    let op = find(docs, "Deployment", "test-operator").expect("operator Deployment");
    let c = container(op, "operator");
    let opts = RenderOptions {
        controller_name: flag(c, "--controller-name")
            .expect("controller name")
            .into(),
        config_origin: flag(c, "--cds-server-address").expect("cds address").into(),
        default_image: flag(c, "--dataplane-image").expect("image").into(),
        keda,
        ..RenderOptions::default()
    };
    let mut snap = Snapshot::default();
    for kind in ["GatewayConfig", "Dataplane"] {
        for doc in of_kind(docs, kind) {
            let mut doc = doc.clone();
            if kind == "Dataplane" && daemon_set {
                doc["spec"]["dataplaneResource"] = Value::from("DaemonSet");
            }
            let text = serde_norway::to_string(&doc).expect("yaml");
            snap.apply_manifests(&text).expect("chart object loads");
        }
    }
    snap.apply_manifests(&gateway_manifests(&opts.controller_name, namespace))
        .expect("gateway fixture");
    let r = render(&snap, &opts);
    let mut workloads: Vec<Value> = r.deployments.iter().map(to_value).collect();
    workloads.extend(r.daemon_sets.iter().map(to_value));
    let mut autoscalers: Vec<Value> = r.scaled_objects.iter().map(to_value).collect();
    autoscalers.extend(r.hpas.iter().map(to_value));
    Operator {
        workloads,
        services: r.services.iter().map(to_value).collect(),
        autoscalers,
        configs: r.configs.into_values().collect(),
    }
}

/// A typed object as YAML, with `apiVersion` and `kind` as the API server would receive it.
pub fn to_value<T: serde::Serialize>(obj: &T) -> Value {
    serde_norway::to_value(obj).expect("serialize rendered object")
}
