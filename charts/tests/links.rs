//! Every label, selector, port name and address that links two objects, checked with both sides
//! rendered: the chart by a real helm, the dataplane objects by the operator's own renderer fed the
//! chart's GatewayConfig and Dataplane, the scaler's pod selector by the scaler's own code fed the
//! ScaledObject the operator renders. A mismatch here is a cluster where something silently
//! selects nothing (a monitor scraping no pod, a Service without endpoints, a scaler counting no
//! pod).

mod common;

use charts::{find, of_kind};
use common::{
    chart, container, flag, operator_render, pod_labels, pod_spec, port_names, selects,
    selects_label_selector, selects_str,
};
use operator::render::{CONTAINER_NAME, METRICS_PORT, METRICS_PORT_NAME};
use scaler::metadata::TriggerMetadata;
use scaler::source::direct::gateway_pod_selector;
use serde_norway::Value;

const MONITORING: &[&str] = &["--set", "serviceMonitor.enabled=true"];

#[test]
fn pod_monitor_selects_the_dataplane_pods_and_their_metrics_port() {
    let docs = chart(MONITORING);
    let pm = of_kind(&docs, "PodMonitor");
    assert_eq!(pm.len(), 1, "one PodMonitor for the dataplanes");
    let selector = &pm[0]["spec"]["selector"]["matchLabels"];
    assert_eq!(
        pm[0]["spec"]["namespaceSelector"]["any"].as_bool(),
        Some(true)
    );
    let port = pm[0]["spec"]["podMetricsEndpoints"][0]["port"]
        .as_str()
        .expect("the PodMonitor scrapes a named port");
    assert_eq!(
        port, METRICS_PORT_NAME,
        "the port upstream's PodMonitor scrapes"
    );
    for daemon_set in [false, true] {
        let op = operator_render(&docs, "media", false, daemon_set);
        assert_eq!(op.workloads.len(), 1, "one dataplane workload");
        let w = &op.workloads[0];
        assert!(
            selects(selector, pod_labels(w)),
            "PodMonitor selector {selector:?} does not select the dataplane pod labels {:?}",
            pod_labels(w)
        );
        let c = container(w, CONTAINER_NAME);
        let ports = c["ports"].as_sequence().expect("container ports");
        let scraped = ports
            .iter()
            .find(|p| p["name"].as_str() == Some(port))
            .unwrap_or_else(|| panic!("no container port {port} in {ports:?}"));
        // ... and that port is where stunnerd serves its metrics, per the config CDS sends it.
        let endpoint = &op.configs[0].admin.metrics_endpoint;
        assert_eq!(
            scraped["containerPort"].as_i64(),
            Some(i64::from(METRICS_PORT))
        );
        assert!(
            endpoint.ends_with(&format!(":{METRICS_PORT}/metrics")),
            "stunnerd serves metrics at {endpoint}, the pod exposes {METRICS_PORT}"
        );
        assert_eq!(
            pm[0]["spec"]["podMetricsEndpoints"][0]["path"].as_str(),
            Some("/metrics")
        );
    }
}

#[test]
fn gateway_service_and_workload_select_the_dataplane_pods() {
    let docs = chart(&[]);
    for daemon_set in [false, true] {
        let op = operator_render(&docs, "stunner", false, daemon_set);
        let w = &op.workloads[0];
        let labels = pod_labels(w);
        assert!(
            selects_label_selector(&w["spec"]["selector"], labels),
            "workload selector vs its own pod template"
        );
        assert_eq!(op.services.len(), 1);
        let svc = &op.services[0];
        assert!(
            selects(&svc["spec"]["selector"], labels),
            "Gateway Service selector {:?} vs pod labels {labels:?}",
            svc["spec"]["selector"]
        );
        // Each Service port reaches the listener port stunnerd binds (its config from CDS).
        let listeners: Vec<i64> = op.configs[0]
            .listeners
            .iter()
            .map(|l| i64::from(l.port))
            .collect();
        for p in svc["spec"]["ports"].as_sequence().expect("ports") {
            let target = p["targetPort"].as_i64().or(p["port"].as_i64());
            assert!(
                target.is_some_and(|t| listeners.contains(&t)),
                "Service port {p:?} reaches no listener of {listeners:?}"
            );
        }
    }
}

#[test]
fn dataplane_pods_watch_the_cds_service_of_the_chart() {
    let docs = chart(&[]);
    let op = operator_render(&docs, "stunner", false, false);
    let env = container(&op.workloads[0], CONTAINER_NAME)["env"]
        .as_sequence()
        .expect("env")
        .clone();
    let origin = env
        .iter()
        .find(|e| e["name"].as_str() == Some("STUNNER_CONFIG_ORIGIN"))
        .and_then(|e| e["value"].as_str())
        .expect("STUNNER_CONFIG_ORIGIN");
    // http://<service>.<namespace>.svc:<port>
    let rest = origin.strip_prefix("http://").expect("http origin");
    let (host, port) = rest.rsplit_once(':').expect("port");
    let (name, ns) = host
        .strip_suffix(".svc")
        .and_then(|h| h.split_once('.'))
        .expect("<svc>.<ns>.svc");
    assert_eq!(ns, "stunner");
    let svc = find(&docs, "Service", name).unwrap_or_else(|| panic!("no Service {name}"));
    let sp = svc["spec"]["ports"]
        .as_sequence()
        .and_then(|ps| {
            ps.iter()
                .find(|p| p["port"].as_u64().map(|v| v.to_string()).as_deref() == Some(port))
        })
        .unwrap_or_else(|| panic!("Service {name} has no port {port}"));
    let operator = find(&docs, "Deployment", "test-operator").expect("operator");
    assert!(selects(&svc["spec"]["selector"], pod_labels(operator)));
    let target = sp["targetPort"].as_str().expect("named targetPort");
    assert!(port_names(container(operator, "operator")).contains(&target));
    let listen = flag(container(operator, "operator"), "--cds-listen").expect("--cds-listen");
    assert!(
        listen.ends_with(&format!(":{port}")),
        "operator listens on {listen}"
    );
}

#[test]
fn chart_services_monitors_and_budgets_select_their_own_pods() {
    let docs = chart(&[
        "--set",
        "serviceMonitor.enabled=true,operator.replicas=2,scaler.replicas=2",
    ]);
    let workloads = of_kind(&docs, "Deployment");
    for svc in of_kind(&docs, "Service") {
        let name = svc["metadata"]["name"].as_str().unwrap_or_default();
        let matched: Vec<&&Value> = workloads
            .iter()
            .filter(|w| selects(&svc["spec"]["selector"], pod_labels(w)))
            .collect();
        assert_eq!(
            matched.len(),
            1,
            "Service {name} must select exactly one workload"
        );
        let names: Vec<&str> = pod_spec(matched[0])["containers"]
            .as_sequence()
            .expect("containers")
            .iter()
            .flat_map(port_names)
            .collect();
        for p in svc["spec"]["ports"].as_sequence().expect("ports") {
            let target = p["targetPort"].as_str().expect("named targetPort");
            assert!(
                names.contains(&target),
                "Service {name} targets {target}, pods have {names:?}"
            );
        }
    }
    let services = of_kind(&docs, "Service");
    for sm in of_kind(&docs, "ServiceMonitor") {
        let name = sm["metadata"]["name"].as_str().unwrap_or_default();
        let matched: Vec<&&Value> = services
            .iter()
            .filter(|s| {
                selects(
                    &sm["spec"]["selector"]["matchLabels"],
                    &s["metadata"]["labels"],
                )
            })
            .collect();
        assert_eq!(
            matched.len(),
            1,
            "ServiceMonitor {name} must select exactly one Service"
        );
        let port = sm["spec"]["endpoints"][0]["port"]
            .as_str()
            .expect("port name");
        assert!(
            matched[0]["spec"]["ports"]
                .as_sequence()
                .is_some_and(|ps| ps.iter().any(|p| p["name"].as_str() == Some(port))),
            "ServiceMonitor {name} scrapes port {port} its Service lacks"
        );
    }
    let pdbs = of_kind(&docs, "PodDisruptionBudget");
    assert_eq!(
        pdbs.len(),
        2,
        "operator and scaler budgets with 2 replicas each"
    );
    for pdb in pdbs {
        let n = workloads
            .iter()
            .filter(|w| selects(&pdb["spec"]["selector"]["matchLabels"], pod_labels(w)))
            .count();
        assert_eq!(
            n, 1,
            "PDB {:?} selects {n} workloads",
            pdb["metadata"]["name"]
        );
    }
    for w in &workloads {
        assert!(selects(
            &w["spec"]["selector"]["matchLabels"],
            pod_labels(w)
        ));
        let sa = pod_spec(w)["serviceAccountName"]
            .as_str()
            .expect("service account");
        assert!(
            find(&docs, "ServiceAccount", sa).is_some(),
            "no ServiceAccount {sa}"
        );
    }
    for kind in ["RoleBinding", "ClusterRoleBinding"] {
        for b in of_kind(&docs, kind) {
            let role_kind = b["roleRef"]["kind"].as_str().expect("roleRef kind");
            let role = b["roleRef"]["name"].as_str().expect("roleRef name");
            let found = of_kind(&docs, role_kind).into_iter().any(|r| {
                r["metadata"]["name"].as_str() == Some(role)
                    && r["metadata"]["namespace"] == b["metadata"]["namespace"]
            });
            assert!(
                found,
                "{kind} {:?} refers to a missing {role_kind} {role}",
                b["metadata"]["name"]
            );
            for s in b["subjects"].as_sequence().expect("subjects") {
                let sa = s["name"].as_str().expect("subject");
                assert!(
                    find(&docs, "ServiceAccount", sa).is_some(),
                    "binding to missing {sa}"
                );
            }
        }
    }
}

/// The scaler's selector for the Gateway a ScaledObject names, from the scaler's own parser.
fn scaler_selector(so: &Value) -> String {
    let ns = so["metadata"]["namespace"].as_str().expect("namespace");
    let md: std::collections::HashMap<String, String> =
        serde_norway::from_value(so["spec"]["triggers"][0]["metadata"].clone()).expect("metadata");
    let parsed = TriggerMetadata::parse(ns, &md).expect("the scaler accepts the trigger");
    gateway_pod_selector(parsed.gateway.as_ref().expect("gateway"))
}

#[test]
fn scaler_counts_and_may_annotate_exactly_the_gateways_dataplane_pods() {
    for (ns, extra) in [
        ("stunner", vec![]),
        ("media", vec!["--set", "scaler.namespaces={stunner,media}"]),
    ] {
        let docs = chart(&extra);
        let op = operator_render(&docs, ns, true, false);
        assert_eq!(op.autoscalers.len(), 1, "one ScaledObject");
        let so = &op.autoscalers[0];
        assert_eq!(so["kind"].as_str(), Some("ScaledObject"));
        let selector = scaler_selector(so);
        let labels = pod_labels(&op.workloads[0]);
        assert!(
            selects_str(&selector, labels),
            "scaler selector {selector} vs {labels:?}"
        );
        // The ScaledObject targets the dataplane Deployment...
        assert_eq!(
            so["spec"]["scaleTargetRef"]["name"],
            op.workloads[0]["metadata"]["name"]
        );
        // ...through the chart's scaler Service and its gRPC port.
        let addr = so["spec"]["triggers"][0]["metadata"]["scalerAddress"]
            .as_str()
            .expect("scalerAddress");
        let (host, port) = addr.rsplit_once(':').expect("host:port");
        let name = host
            .strip_suffix(".stunner.svc")
            .expect("<svc>.stunner.svc");
        let svc = find(&docs, "Service", name).unwrap_or_else(|| panic!("no Service {name}"));
        let sp = svc["spec"]["ports"]
            .as_sequence()
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p["port"].as_u64().is_some_and(|v| v.to_string() == port))
            })
            .unwrap_or_else(|| panic!("scaler Service has no port {port}"));
        assert_eq!(sp["name"].as_str(), Some("grpc"));
        // The scaler may list and annotate pods in the Gateway's namespace (and only there).
        let role = of_kind(&docs, "Role").into_iter().find(|r| {
            r["metadata"]["name"].as_str() == Some("test-scaler")
                && r["metadata"]["namespace"].as_str() == Some(ns)
        });
        let role = role.unwrap_or_else(|| panic!("no scaler Role in the Gateway namespace {ns}"));
        assert_eq!(role["rules"][0]["resources"][0].as_str(), Some("pods"));
    }
}

#[test]
fn a_mismatched_selector_is_caught() {
    // The check above can fail: the old monitor selector, a Deployment label, selects no pod.
    let docs = chart(&[]);
    let op = operator_render(&docs, "stunner", false, false);
    let old: Value = serde_norway::from_str("{ stunner.l7mp.io/owned-by: stunner }").expect("yaml");
    assert!(selects(&old, &op.workloads[0]["metadata"]["labels"]));
    assert!(!selects(&old, pod_labels(&op.workloads[0])));
    assert!(!selects_str("app=other", pod_labels(&op.workloads[0])));
}
