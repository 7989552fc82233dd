//! Pod security and RBAC of everything that runs: the operator and scaler pods of the chart and
//! the dataplane pods the operator renders from the chart's Dataplane pass the Pod Security
//! Standard `restricted` profile (checked rule by rule below, as the admission controller
//! would), with a read-only root filesystem; every ClusterRole and Role grants exactly the verbs
//! the component calls; the scaler holds namespaced Roles only.

mod common;

use std::collections::BTreeSet;

use charts::{find, of_kind};
use common::{chart, operator_render, pod_spec};
use serde_norway::Value;

/// Volume types the `restricted` profile allows.
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Every `restricted` (and `baseline`) rule that `pod` (a PodSpec) breaks, as messages.
fn restricted_violations(pod: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[host].as_bool() == Some(true) {
            v.push(format!("{host} is set"));
        }
    }
    for vol in pod["volumes"].as_sequence().into_iter().flatten() {
        let ok = vol
            .as_mapping()
            .into_iter()
            .flat_map(|m| m.keys())
            .filter_map(Value::as_str)
            .filter(|k| *k != "name")
            .all(|k| RESTRICTED_VOLUMES.contains(&k));
        if !ok {
            v.push(format!("volume {vol:?} is not of a restricted type"));
        }
    }
    let psc = &pod["securityContext"];
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod[*k].as_sequence().into_iter().flatten());
    for c in containers {
        let name = c["name"].as_str().unwrap_or("?");
        let sc = &c["securityContext"];
        if sc["privileged"].as_bool() == Some(true) {
            v.push(format!("{name}: privileged"));
        }
        if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
            v.push(format!("{name}: allowPrivilegeEscalation is not false"));
        }
        let drops = sc["capabilities"]["drop"].as_sequence();
        if !drops.is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL"))) {
            v.push(format!("{name}: capabilities do not drop ALL"));
        }
        for add in sc["capabilities"]["add"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            if add.as_str() != Some("NET_BIND_SERVICE") {
                v.push(format!("{name}: adds capability {add:?}"));
            }
        }
        let non_root = sc["runAsNonRoot"]
            .as_bool()
            .or(psc["runAsNonRoot"].as_bool());
        if non_root != Some(true) {
            v.push(format!("{name}: runAsNonRoot is not true"));
        }
        if sc["runAsUser"].as_i64().or(psc["runAsUser"].as_i64()) == Some(0) {
            v.push(format!("{name}: runAsUser is 0"));
        }
        let seccomp = sc["seccompProfile"]["type"]
            .as_str()
            .or(psc["seccompProfile"]["type"].as_str());
        if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
            v.push(format!(
                "{name}: seccompProfile is not RuntimeDefault or Localhost"
            ));
        }
        for p in c["ports"].as_sequence().into_iter().flatten() {
            if p["hostPort"].as_i64().is_some_and(|h| h != 0) {
                v.push(format!("{name}: hostPort {p:?}"));
            }
        }
        if sc["procMount"].as_str().is_some_and(|m| m != "Default") {
            v.push(format!("{name}: procMount"));
        }
        // Not in the profile, but asked of every container here: nothing writes its root fs.
        if sc["readOnlyRootFilesystem"].as_bool() != Some(true) {
            v.push(format!("{name}: root filesystem is writable"));
        }
    }
    v
}

#[test]
fn every_pod_passes_the_restricted_profile() {
    let docs = chart(&[]);
    let mut pods: Vec<(String, Value)> = of_kind(&docs, "Deployment")
        .into_iter()
        .map(|d| {
            (
                format!("chart {:?}", d["metadata"]["name"]),
                pod_spec(d).clone(),
            )
        })
        .collect();
    for daemon_set in [false, true] {
        let op = operator_render(&docs, "stunner", false, daemon_set);
        let w = &op.workloads[0];
        pods.push((format!("dataplane {:?}", w["kind"]), pod_spec(w).clone()));
    }
    assert_eq!(
        pods.len(),
        4,
        "operator, scaler, dataplane Deployment and DaemonSet"
    );
    for (what, pod) in pods {
        let v = restricted_violations(&pod);
        assert!(v.is_empty(), "{what} breaks the restricted profile: {v:?}");
    }
}

#[test]
fn the_profile_check_catches_violations() {
    let pod: Value = serde_norway::from_str(
        r#"
hostNetwork: true
securityContext: { runAsNonRoot: true }
volumes: [{ name: h, hostPath: { path: /var } }]
containers:
  - name: c
    securityContext: { allowPrivilegeEscalation: true, capabilities: { add: [NET_ADMIN] } }
"#,
    )
    .expect("yaml");
    let v = restricted_violations(&pod).join("\n");
    for expected in [
        "hostNetwork",
        "hostPath",
        "allowPrivilegeEscalation",
        "drop ALL",
        "NET_ADMIN",
        "seccompProfile",
        "writable",
    ] {
        assert!(v.contains(expected), "{expected} not flagged in:\n{v}");
    }
}

/// `(apiGroup, resource, verb)` of every rule of a Role or ClusterRole.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let strs = |v: &Value| -> Vec<String> {
        v.as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    let mut out = BTreeSet::new();
    for r in role["rules"].as_sequence().into_iter().flatten() {
        for g in strs(&r["apiGroups"]) {
            for res in strs(&r["resources"]) {
                for verb in strs(&r["verbs"]) {
                    out.insert((g.clone(), res.clone(), verb));
                }
            }
        }
    }
    out
}

fn table(rows: &[(&str, &[&str], &[&str])]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (group, resources, verbs) in rows {
        for res in *resources {
            for verb in *verbs {
                out.insert((group.to_string(), res.to_string(), verb.to_string()));
            }
        }
    }
    out
}

const WATCH: &[&str] = &["list", "watch"];
const OWN: &[&str] = &["list", "watch", "create", "patch", "delete"];
const STATUS: &[&str] = &["get", "update"];

#[test]
fn operator_rbac_grants_exactly_what_it_calls() {
    let docs = chart(&[]);
    let role = find(&docs, "ClusterRole", "test-operator").expect("operator ClusterRole");
    let gw = "gateway.networking.k8s.io";
    let want = table(&[
        (
            gw,
            &["gatewayclasses", "gateways", "udproutes", "referencegrants"],
            WATCH,
        ),
        (
            gw,
            &[
                "gatewayclasses/status",
                "gateways/status",
                "udproutes/status",
            ],
            STATUS,
        ),
        (
            "stunner.l7mp.io",
            &[
                "gatewayconfigs",
                "dataplanes",
                "staticservices",
                "udproutes",
            ],
            WATCH,
        ),
        ("stunner.l7mp.io", &["udproutes/status"], STATUS),
        ("", &["services"], OWN),
        ("", &["secrets", "nodes", "namespaces"], WATCH),
        ("discovery.k8s.io", &["endpointslices"], WATCH),
        ("apps", &["deployments", "daemonsets"], OWN),
        ("keda.sh", &["scaledobjects"], OWN),
        ("autoscaling", &["horizontalpodautoscalers"], OWN),
    ]);
    let got = grants(role);
    let extra: Vec<_> = got.difference(&want).collect();
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "extra {extra:?}, missing {missing:?}"
    );
    let lease = find(&docs, "Role", "test-operator-leader").expect("leader Role");
    assert_eq!(
        grants(lease),
        table(&[(
            "coordination.k8s.io",
            &["leases"],
            &["get", "create", "update"]
        )])
    );
    assert_eq!(lease["metadata"]["namespace"].as_str(), Some("stunner"));
}

#[test]
fn scaler_holds_namespaced_pod_rights_only_where_told() {
    for (extra, namespaces) in [
        (vec![], vec!["stunner"]),
        (
            vec!["--set", "scaler.namespaces={media,calls}"],
            vec!["calls", "media"],
        ),
    ] {
        let docs = chart(&extra);
        let cluster_wide: Vec<&Value> = of_kind(&docs, "ClusterRole")
            .into_iter()
            .chain(of_kind(&docs, "ClusterRoleBinding"))
            .filter(|r| r["metadata"]["name"].as_str() == Some("test-scaler"))
            .collect();
        assert!(
            cluster_wide.is_empty(),
            "the scaler has no cluster-wide grant"
        );
        let roles: Vec<&Value> = of_kind(&docs, "Role")
            .into_iter()
            .filter(|r| r["metadata"]["name"].as_str() == Some("test-scaler"))
            .collect();
        let mut got: Vec<&str> = roles
            .iter()
            .filter_map(|r| r["metadata"]["namespace"].as_str())
            .collect();
        got.sort_unstable();
        assert_eq!(got, namespaces);
        for r in roles {
            assert_eq!(grants(r), table(&[("", &["pods"], &["list", "patch"])]));
        }
    }
    let bad = charts::template(
        common::CHART,
        &["--set", "scaler.namespaces={Not_A_Namespace}"],
    );
    assert!(bad.is_err(), "values.schema.json rejects a bad namespace");
}
