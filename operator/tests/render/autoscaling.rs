//! Autoscaling (`Dataplane.spec.autoscaling`): a KEDA ScaledObject when KEDA is served, a CPU HPA
//! otherwise; the Deployment's drain settings; orphaned autoscalers.

use crate::fixtures::*;
use k8s_openapi::api::apps::v1::Deployment;
use operator::render::{OwnedKind, RenderOptions, Rendered, ScaledObject, render};
use operator::store::Snapshot;
use serde_json::{Value, json};

const AUTOSCALED: &str = r#"
apiVersion: stunner.l7mp.io/v1
kind: Dataplane
metadata: { name: default }
spec:
  image: "docker.io/l7mp/stunnerd:latest"
  args: ["-w", "--drain-timeout=5", "--udp-thread-num=16", "--drain-timeout", "7"]
  replicas: 3
  terminationGracePeriodSeconds: 99
  autoscaling:
    minReplicas: 2
    maxReplicas: 8
    targetAllocationsPerPod: 150
    scaleInStep: 2
    drainTimeoutSeconds: 600
    scalerAddress: stunner-scaler.stunner-system.svc:9090
"#;

fn keda(snap: &Snapshot) -> Rendered {
    render(
        snap,
        &RenderOptions {
            keda: true,
            ..RenderOptions::default()
        },
    )
}

fn labelled_gateway() -> Snapshot {
    base_with(&format!(
        "{AUTOSCALED}---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: udp-gateway, namespace: stunner, uid: uid-udp, labels: {{ team: media }} }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners: [{{ name: udp-listener, port: 3478, protocol: TURN-UDP }}]\n"
    ))
}

fn so(r: &Rendered) -> Value {
    assert_eq!(r.scaled_objects.len(), 1, "one ScaledObject");
    serde_json::to_value(&r.scaled_objects[0]).unwrap()
}

/// Scale-down: `scaleInStep` (2 in the fixture) pods a minute after a 5-minute window;
/// scale-up: the Kubernetes default.
fn expected_behavior() -> Value {
    json!({
        "scaleDown": { "stabilizationWindowSeconds": 300, "policies": [{ "type": "Pods", "value": 2, "periodSeconds": 60 }] },
        "scaleUp": { "stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            { "type": "Percent", "value": 100, "periodSeconds": 15 },
            { "type": "Pods", "value": 4, "periodSeconds": 15 }] }
    })
}

#[test]
fn keda_served_renders_a_scaled_object_on_the_deployment() {
    let r = keda(&labelled_gateway());
    assert!(r.hpas.is_empty(), "no HPA next to a ScaledObject");
    let so = so(&r);
    assert_eq!(
        (so["apiVersion"].as_str(), so["kind"].as_str()),
        (Some("keda.sh/v1alpha1"), Some("ScaledObject"))
    );
    assert_eq!(
        (
            so["metadata"]["name"].as_str(),
            so["metadata"]["namespace"].as_str()
        ),
        (Some("udp-gateway"), Some("stunner"))
    );
    let spec = &so["spec"];
    assert_eq!(
        spec["scaleTargetRef"],
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "name": "udp-gateway" })
    );
    assert_eq!(
        (
            spec["minReplicaCount"].as_i64(),
            spec["maxReplicaCount"].as_i64()
        ),
        (Some(2), Some(8))
    );
    assert_eq!(
        spec["fallback"],
        json!({ "failureThreshold": 3, "replicas": 8, "behavior": "currentReplicasIfLower" })
    );
    assert_eq!(
        spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
        expected_behavior()
    );
    let triggers = spec["triggers"].as_array().unwrap();
    assert_eq!(triggers.len(), 1);
    assert_eq!(
        (
            triggers[0]["type"].as_str(),
            triggers[0]["metricType"].as_str()
        ),
        (Some("external"), Some("AverageValue"))
    );
    assert_eq!(
        triggers[0]["metadata"],
        json!({
            "scalerAddress": "stunner-scaler.stunner-system.svc:9090", "source": "direct",
            "gateway": "stunner/udp-gateway", "targetAllocationsPerPod": "150", "scaleInStep": "2",
            "drainSteering": "true", "minReplicas": "2", "maxReplicas": "8"
        })
    );
}

#[test]
fn scaled_object_owner_and_labels_follow_the_deployment() {
    let r = keda(&labelled_gateway());
    let d = r.deployments.first().expect("deployment");
    let so: &ScaledObject = &r.scaled_objects[0];
    assert_eq!(so.metadata.labels, d.metadata.labels);
    assert_eq!(so.metadata.labels.as_ref().unwrap()["team"], "media");
    let owner = &so.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("Gateway", "udp-gateway", "uid-udp")
    );
    assert_eq!(owner.controller, Some(true));
}

#[test]
fn without_keda_a_cpu_hpa_with_the_same_behaviour() {
    let r = run(&labelled_gateway());
    assert!(r.scaled_objects.is_empty());
    assert_eq!(r.hpas.len(), 1);
    let h = serde_json::to_value(&r.hpas[0]).unwrap();
    assert_eq!(
        (h["apiVersion"].as_str(), h["kind"].as_str()),
        (Some("autoscaling/v2"), Some("HorizontalPodAutoscaler"))
    );
    assert_eq!(
        (
            h["metadata"]["name"].as_str(),
            h["metadata"]["namespace"].as_str()
        ),
        (Some("udp-gateway"), Some("stunner"))
    );
    assert_eq!(h["metadata"]["ownerReferences"][0]["kind"], "Gateway");
    assert_eq!(
        h["metadata"]["labels"]["stunner.l7mp.io/owned-by"],
        "stunner"
    );
    let spec = &h["spec"];
    assert_eq!(
        spec["scaleTargetRef"],
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "name": "udp-gateway" })
    );
    assert_eq!(
        (spec["minReplicas"].as_i64(), spec["maxReplicas"].as_i64()),
        (Some(2), Some(8))
    );
    assert_eq!(
        spec["metrics"],
        json!([{ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } } }])
    );
    assert_eq!(spec["behavior"], expected_behavior());
}

#[test]
fn prometheus_source_fields_reach_the_trigger() {
    let dp = AUTOSCALED.replace(
        "    scalerAddress:",
        "    source: prometheus\n    serverAddress: http://mimir.monitoring:8080/prometheus\n    query: 'sum(stunner_allocations_active)'\n    customHeaders: X-Scope-OrgID=tenant-1\n    scalerAddress:",
    );
    let r = keda(&base_with(&dp));
    let md = &so(&r)["spec"]["triggers"][0]["metadata"];
    assert_eq!(md["source"], "prometheus");
    assert_eq!(
        md["serverAddress"],
        "http://mimir.monitoring:8080/prometheus"
    );
    assert_eq!(md["query"], "sum(stunner_allocations_active)");
    assert_eq!(md["customHeaders"], "X-Scope-OrgID=tenant-1");
    // blank optional fields are left out rather than sent empty
    let blank = AUTOSCALED.replace("    scalerAddress:", "    source: prometheus\n    serverAddress: http://p:9090\n    query: ' '\n    scalerAddress:");
    let md = so(&keda(&base_with(&blank)))["spec"]["triggers"][0]["metadata"].clone();
    assert_eq!(md["serverAddress"], "http://p:9090");
    assert!(
        md.get("query").is_none() && md.get("customHeaders").is_none(),
        "{md}"
    );
}

#[test]
fn defaults_and_clamped_bounds() {
    let dp = "apiVersion: stunner.l7mp.io/v1\nkind: Dataplane\nmetadata: { name: default }\nspec: { autoscaling: { minReplicas: 5, maxReplicas: 3, scalerAddress: 's:1' } }\n";
    let r = keda(&base_with(dp));
    let so = so(&r);
    assert_eq!(
        (
            so["spec"]["minReplicaCount"].as_i64(),
            so["spec"]["maxReplicaCount"].as_i64()
        ),
        (Some(5), Some(5))
    );
    let md = &so["spec"]["triggers"][0]["metadata"];
    assert_eq!(
        (
            md["targetAllocationsPerPod"].as_str(),
            md["scaleInStep"].as_str(),
            md["source"].as_str()
        ),
        (Some("200"), Some("1"), Some("direct"))
    );
    let d = deployment(&r);
    assert_eq!(pod_spec(d)["terminationGracePeriodSeconds"], 3630);
    assert_eq!(
        pod_spec(d)["containers"][0]["args"],
        json!(["-w", "--drain-timeout=3600"])
    );
}

fn deployment(r: &Rendered) -> &Deployment {
    r.deployments.first().expect("deployment")
}

fn pod_spec(d: &Deployment) -> Value {
    serde_json::to_value(d).unwrap()["spec"]["template"]["spec"].clone()
}

#[test]
fn deployment_gets_drain_timeout_grace_period_and_no_replicas() {
    for r in [run(&labelled_gateway()), keda(&labelled_gateway())] {
        let d = deployment(&r);
        let pod = pod_spec(d);
        assert_eq!(
            pod["terminationGracePeriodSeconds"], 630,
            "drain timeout + 30 s"
        );
        assert_eq!(
            pod["containers"][0]["args"],
            json!(["-w", "--udp-thread-num=16", "--drain-timeout=600"])
        );
        let json = serde_json::to_value(d).unwrap();
        assert!(
            json["spec"].get("replicas").is_none(),
            "replicas belong to the autoscaler: {}",
            json["spec"]
        );
    }
}

#[test]
fn without_autoscaling_nothing_changes() {
    let r = keda(&base());
    assert!(r.scaled_objects.is_empty() && r.hpas.is_empty());
    let pod = pod_spec(deployment(&r));
    assert_eq!(pod["terminationGracePeriodSeconds"], 3600);
    assert_eq!(
        pod["containers"][0]["args"],
        json!(["-w", "--udp-thread-num=16"])
    );
}

#[test]
fn unmanaged_dataplane_gets_no_autoscaler() {
    let gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: udp-gateway, namespace: stunner, uid: uid-udp, annotations: { stunner.l7mp.io/disable-managed-dataplane: 'true' } }\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners: [{ name: udp-listener, port: 3478, protocol: TURN-UDP }]\n";
    let r = keda(&base_with(&format!("{AUTOSCALED}---\n{gw}")));
    assert!(r.deployments.is_empty() && r.scaled_objects.is_empty() && r.hpas.is_empty());
}

/// Existing autoscalers: ours (owned-by label + Gateway owner) and KEDA's own HPA, which carries
/// the ScaledObject's labels but is owned by the ScaledObject.
const EXISTING: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: udp-gateway
  namespace: stunner
  labels: { stunner.l7mp.io/owned-by: stunner }
  ownerReferences: [{ apiVersion: gateway.networking.k8s.io/v1, kind: Gateway, name: udp-gateway, uid: uid-udp }]
spec: { scaleTargetRef: { name: udp-gateway } }
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: udp-gateway
  namespace: stunner
  labels: { stunner.l7mp.io/owned-by: stunner }
  ownerReferences: [{ apiVersion: gateway.networking.k8s.io/v1, kind: Gateway, name: udp-gateway, uid: uid-udp }]
spec: { scaleTargetRef: { kind: Deployment, name: udp-gateway }, maxReplicas: 8 }
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: keda-hpa-udp-gateway
  namespace: stunner
  labels: { stunner.l7mp.io/owned-by: stunner, app.kubernetes.io/managed-by: keda-operator }
  ownerReferences: [{ apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: udp-gateway, uid: uid-so }]
spec: { scaleTargetRef: { kind: Deployment, name: udp-gateway }, maxReplicas: 8 }
"#;

fn autoscaler_orphans(r: &Rendered) -> Vec<(OwnedKind, String)> {
    r.orphans
        .iter()
        .filter(|(k, _)| {
            matches!(
                k,
                OwnedKind::ScaledObject | OwnedKind::HorizontalPodAutoscaler
            )
        })
        .map(|(k, key)| (*k, key.to_string()))
        .collect()
}

#[test]
fn autoscaling_removed_orphans_its_autoscalers_but_not_kedas_hpa() {
    let r = keda(&base_with(EXISTING));
    assert_eq!(
        autoscaler_orphans(&r),
        [
            (OwnedKind::ScaledObject, "stunner/udp-gateway".to_string()),
            (
                OwnedKind::HorizontalPodAutoscaler,
                "stunner/udp-gateway".to_string()
            ),
        ]
    );
}

#[test]
fn keda_appearing_orphans_the_hpa_and_keda_going_orphans_the_scaled_object() {
    let snap = with(&labelled_gateway(), EXISTING);
    assert_eq!(
        autoscaler_orphans(&keda(&snap)),
        [(
            OwnedKind::HorizontalPodAutoscaler,
            "stunner/udp-gateway".to_string()
        )]
    );
    assert_eq!(
        autoscaler_orphans(&run(&snap)),
        [(OwnedKind::ScaledObject, "stunner/udp-gateway".to_string())]
    );
}

#[test]
fn deleted_gateway_orphans_its_scaled_object() {
    let mut snap = with(&labelled_gateway(), EXISTING);
    snap.gateways.clear();
    let r = keda(&snap);
    let kinds: Vec<OwnedKind> = autoscaler_orphans(&r).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        [OwnedKind::ScaledObject, OwnedKind::HorizontalPodAutoscaler]
    );
}

fn keda_with_tolerance(snap: &Snapshot) -> Rendered {
    render(
        snap,
        &RenderOptions {
            keda: true,
            hpa_configurable_tolerance: true,
            ..RenderOptions::default()
        },
    )
}

#[test]
fn configurable_tolerance_renders_zero_and_tells_the_scaler() {
    let so = so(&keda_with_tolerance(&labelled_gateway()));
    let behavior = &so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"];
    assert_eq!(behavior["scaleUp"]["tolerance"], "0");
    assert_eq!(behavior["scaleDown"]["tolerance"], "0");
    assert_eq!(so["spec"]["triggers"][0]["metadata"]["hpaTolerance"], "0");
    // Without it, neither (the scaler assumes the cluster's 10 %).
    let so = so_of_default();
    let behavior = &so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"];
    assert!(behavior["scaleUp"].get("tolerance").is_none());
    assert!(
        so["spec"]["triggers"][0]["metadata"]
            .get("hpaTolerance")
            .is_none()
    );
}

fn so_of_default() -> Value {
    so(&keda(&labelled_gateway()))
}

#[test]
fn dataplane_can_turn_configurable_tolerance_off_or_on() {
    let off = labelled_gateway_with("    configurableTolerance: false\n");
    let so_off = so(&keda_with_tolerance(&off));
    assert!(
        so_off["spec"]["triggers"][0]["metadata"]
            .get("hpaTolerance")
            .is_none()
    );
    let on = labelled_gateway_with("    configurableTolerance: true\n");
    let so_on = so(&keda(&on));
    assert_eq!(
        so_on["spec"]["triggers"][0]["metadata"]["hpaTolerance"],
        "0"
    );
}

fn labelled_gateway_with(extra: &str) -> Snapshot {
    let dataplane = AUTOSCALED.replace(
        "    scalerAddress: stunner-scaler.stunner-system.svc:9090\n",
        &format!("    scalerAddress: stunner-scaler.stunner-system.svc:9090\n{extra}"),
    );
    base_with(&format!(
        "{dataplane}---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: udp-gateway, namespace: stunner, uid: uid-udp }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners: [{{ name: udp-listener, port: 3478, protocol: TURN-UDP }}]\n"
    ))
}

#[test]
fn configurable_tolerance_is_on_by_default_from_kubernetes_1_35() {
    use operator::render::configurable_tolerance_by_default as on;
    assert!(!on("1", "34"));
    assert!(!on("1", "33+"));
    assert!(on("1", "35"));
    assert!(on("1", "36+"));
    assert!(on("2", "0"));
    assert!(!on("", "x"));
}

/// The ScaledObject exactly as rendered, read into the KEDA/HPA model of the scaler crate
/// (`scaler::model::manifest`) and swept from every size up to 40 both ways: the rendered
/// behavior, fallback and trigger metadata keep the autoscaling promises, with the cluster's
/// default tolerance and with the configurable tolerance the operator renders on 1.35+.
#[test]
fn the_rendered_scaled_object_keeps_its_promises_in_the_model() {
    use scaler::model::manifest;
    const DATAPLANE: &str = "apiVersion: stunner.l7mp.io/v1\nkind: Dataplane\nmetadata: { name: default }\nspec:\n  image: stunnerd\n  autoscaling:\n    maxReplicas: 120\n    targetAllocationsPerPod: 100\n    scaleInStep: STEP\n    scalerAddress: stunner-scaler.stunner-system.svc:9090\n";
    for (step, tolerance) in [(1, false), (1, true), (3, false), (3, true)] {
        let snap = base_with(&format!(
            "{}---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: udp-gateway, namespace: stunner, uid: uid-udp }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners: [{{ name: udp-listener, port: 3478, protocol: TURN-UDP }}]\n",
            DATAPLANE.replace("STEP", &step.to_string())
        ));
        let opts = RenderOptions {
            keda: true,
            hpa_configurable_tolerance: tolerance,
            ..RenderOptions::default()
        };
        let modelled = manifest::read(&so(&render(&snap, &opts))).expect("the model reads it");
        assert_eq!(modelled.policy.scale_in_step, step);
        assert_eq!(
            modelled.hpa.behavior,
            Some(scaler::model::hpa::stunner_behavior(step, tolerance)),
            "the model's copy of the rendered behavior (used by the demo and the 1..200 sweep)"
        );
        let (out, inn) = modelled
            .sweep(tolerance, 40)
            .unwrap_or_else(|e| panic!("step {step}, tolerance {tolerance}: {e}"));
        if step == 1 || tolerance {
            assert_eq!(
                inn.stopped_above, 0,
                "step {step}, tolerance {tolerance}: {inn}"
            );
        }
        if tolerance {
            assert_eq!(out.overshoot, 0, "{out}");
        }
    }
}
