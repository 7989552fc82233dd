//! `helm lint` and `helm template` of the stunner-gateway-operator chart, every rendered document
//! parsed and asserted: kinds, names, RBAC rules, probes, grace period, ScaledObject versus HPA.

use charts::{find, helm, of_kind, template};
use serde_yaml::Value;

const CHART: &str = "stunner-gateway-operator";
const KEDA: &[&str] = &["--api-versions", "keda.sh/v1alpha1"];
const ONE_GATEWAY: &[&str] = &[
    "--set",
    "autoscaledGateways[0].namespace=media,autoscaledGateways[0].name=udp-gateway,autoscaledGateways[0].maxReplicas=7",
];

fn with(a: &[&'static str], b: &[&'static str]) -> Vec<&'static str> {
    a.iter().chain(b).copied().collect()
}

fn container<'a>(deploy: &'a Value, name: &str) -> &'a Value {
    deploy["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .and_then(|cs| cs.iter().find(|c| c["name"].as_str() == Some(name)))
        .unwrap_or_else(|| panic!("container {name} missing in {deploy:?}"))
}

fn rule_grants(role: &Value, group: &str, resource: &str, verb: &str) -> bool {
    let Some(rules) = role["rules"].as_sequence() else {
        return false;
    };
    let has = |v: &Value, s: &str| {
        v.as_sequence()
            .is_some_and(|xs| xs.iter().any(|x| x.as_str() == Some(s)))
    };
    rules.iter().any(|r| {
        has(&r["apiGroups"], group) && has(&r["resources"], resource) && has(&r["verbs"], verb)
    })
}

#[test]
fn lint_is_clean() {
    let path = charts::chart_path(CHART).display().to_string();
    let out = helm(&["lint", "--strict", &path]).expect("helm lint");
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

#[test]
fn default_render_has_operator_cds_scaler_and_defaults() {
    let docs = template(CHART, &[]).expect("render");
    for d in &docs {
        assert!(
            d["apiVersion"].as_str().is_some() && d["kind"].as_str().is_some(),
            "{d:?}"
        );
    }
    let op = find(&docs, "Deployment", "test-operator").expect("operator deployment");
    let c = container(op, "operator");
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/api/v1/configs")
    );
    let args = str_args(c);
    assert!(
        args.contains(&"--cds-server-address=http://test-cds.stunner.svc:13478"),
        "{args:?}"
    );
    assert!(args.contains(&"--cds-listen=0.0.0.0:13478"), "{args:?}");
    assert!(!args.contains(&"--require-backend-grants"), "{args:?}");
    let cds = find(&docs, "Service", "test-cds").expect("CDS service");
    assert_eq!(cds["spec"]["ports"][0]["port"].as_u64(), Some(13478));

    let sc = find(&docs, "Deployment", "test-scaler").expect("scaler deployment");
    let c = container(sc, "scaler");
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    let svc = find(&docs, "Service", "test-scaler").expect("scaler service");
    let ports: Vec<u64> = svc["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p["port"].as_u64())
        .collect();
    assert_eq!(ports, vec![9090, 8081]);

    assert!(find(&docs, "GatewayConfig", "stunner-gatewayconfig").is_some());
    let dp = find(&docs, "Dataplane", "default").expect("dataplane");
    assert_eq!(
        dp["spec"]["autoscaling"]["targetAllocationsPerPod"].as_u64(),
        Some(200)
    );
    // Grace period = drain timeout + margin, and stunnerd is told the same drain timeout.
    assert_eq!(
        dp["spec"]["terminationGracePeriodSeconds"].as_u64(),
        Some(3630)
    );
    let args = str_args(&dp["spec"]);
    assert!(args.contains(&"--drain-timeout=3600"), "{args:?}");
    // Nothing optional unless asked for.
    assert!(
        of_kind(&docs, "ScaledObject").is_empty()
            && of_kind(&docs, "HorizontalPodAutoscaler").is_empty()
    );
    assert!(of_kind(&docs, "ServiceMonitor").is_empty() && of_kind(&docs, "ConfigMap").is_empty());
}

#[test]
fn rbac_lets_operator_manage_dataplanes_and_scaler_patch_pods() {
    let docs = template(CHART, &[]).expect("render");
    let op = find(&docs, "ClusterRole", "test-operator").expect("operator role");
    assert!(rule_grants(op, "apps", "deployments", "patch"));
    assert!(rule_grants(
        op,
        "gateway.networking.k8s.io",
        "gateways/status",
        "update"
    ));
    assert!(rule_grants(op, "stunner.l7mp.io", "dataplanes", "watch"));
    assert!(
        rule_grants(op, "apps", "daemonsets", "patch")
            && rule_grants(op, "apps", "daemonsets", "delete")
    );
    assert!(rule_grants(
        op,
        "gateway.networking.k8s.io",
        "referencegrants",
        "watch"
    ));
    assert!(rule_grants(op, "keda.sh", "scaledobjects", "create"));
    assert!(rule_grants(
        op,
        "discovery.k8s.io",
        "endpointslices",
        "list"
    ));
    assert!(
        !rule_grants(op, "", "pods", "patch"),
        "the operator must not patch pods"
    );
    let lease = find(&docs, "Role", "test-operator-leader").expect("leader role");
    assert!(rule_grants(
        lease,
        "coordination.k8s.io",
        "leases",
        "update"
    ));

    let sc = find(&docs, "ClusterRole", "test-scaler").expect("scaler role");
    for verb in ["get", "list", "watch", "patch"] {
        assert!(
            rule_grants(sc, "", "pods", verb),
            "scaler needs pods {verb}"
        );
    }
    assert!(
        !rule_grants(sc, "", "pods", "delete"),
        "the scaler never deletes pods"
    );
    for binding in of_kind(&docs, "ClusterRoleBinding") {
        let role = binding["roleRef"]["name"].as_str().unwrap();
        assert!(
            find(&docs, "ClusterRole", role).is_some(),
            "binding to missing role {role}"
        );
    }
}

#[test]
fn keda_served_renders_scaled_object_with_external_trigger() {
    let docs = template(CHART, &with(KEDA, ONE_GATEWAY)).expect("render");
    assert!(of_kind(&docs, "HorizontalPodAutoscaler").is_empty());
    let so = find(&docs, "ScaledObject", "udp-gateway").expect("scaled object");
    assert_eq!(so["metadata"]["namespace"].as_str(), Some("media"));
    assert_eq!(
        so["spec"]["scaleTargetRef"]["name"].as_str(),
        Some("udp-gateway")
    );
    assert_eq!(so["spec"]["maxReplicaCount"].as_u64(), Some(7));
    let trig = &so["spec"]["triggers"][0];
    assert_eq!(trig["type"].as_str(), Some("external"));
    assert_eq!(
        trig["metadata"]["gateway"].as_str(),
        Some("media/udp-gateway")
    );
    assert_eq!(
        trig["metadata"]["scalerAddress"].as_str(),
        Some("test-scaler.stunner.svc:9090")
    );
    assert_eq!(trig["metadata"]["drainSteering"].as_str(), Some("true"));
    assert!(
        so["spec"]["fallback"]["failureThreshold"]
            .as_u64()
            .is_some()
    );
    let down = &so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"];
    assert_eq!(down["stabilizationWindowSeconds"].as_u64(), Some(300));
    assert_eq!(down["policies"][0]["value"].as_u64(), Some(1));
}

#[test]
fn without_keda_renders_cpu_hpa_with_same_scale_down() {
    let docs = template(CHART, ONE_GATEWAY).expect("render");
    assert!(of_kind(&docs, "ScaledObject").is_empty());
    let hpa = find(&docs, "HorizontalPodAutoscaler", "udp-gateway").expect("hpa");
    assert_eq!(hpa["apiVersion"].as_str(), Some("autoscaling/v2"));
    assert_eq!(hpa["spec"]["maxReplicas"].as_u64(), Some(7));
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["name"].as_str(),
        Some("cpu")
    );
    let down = &hpa["spec"]["behavior"]["scaleDown"];
    assert_eq!(down["stabilizationWindowSeconds"].as_u64(), Some(300));
    assert_eq!(down["policies"][0]["type"].as_str(), Some("Pods"));
}

fn str_args(container: &Value) -> Vec<&str> {
    container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn backend_grants_flag_follows_its_value() {
    let docs = template(CHART, &["--set", "operator.requireBackendGrants=true"]).expect("render");
    let op = find(&docs, "Deployment", "test-operator").expect("operator deployment");
    let args = str_args(container(op, "operator"));
    assert!(args.contains(&"--require-backend-grants"), "{args:?}");
}

#[test]
fn monitoring_and_dashboard_are_optional() {
    let docs = template(
        CHART,
        &[
            "--set",
            "serviceMonitor.enabled=true,grafanaDashboard.enabled=true",
        ],
    )
    .expect("render");
    assert_eq!(of_kind(&docs, "ServiceMonitor").len(), 1);
    let pm = of_kind(&docs, "PodMonitor");
    assert_eq!(
        pm[0]["spec"]["selector"]["matchLabels"]["stunner.l7mp.io/owned-by"].as_str(),
        Some("stunner")
    );
    let cm = find(&docs, "ConfigMap", "test-dashboard").expect("dashboard");
    let json = cm["data"]["stunner.json"].as_str().expect("dashboard json");
    assert!(json.contains("stunner_allocations_active"));
}

#[test]
fn crds_ship_with_the_chart() {
    let docs = template(CHART, &["--include-crds"]).expect("render");
    let crds: Vec<&str> = of_kind(&docs, "CustomResourceDefinition")
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    for name in [
        "gatewayconfigs.stunner.l7mp.io",
        "dataplanes.stunner.l7mp.io",
        "staticservices.stunner.l7mp.io",
        "udproutes.stunner.l7mp.io",
    ] {
        assert!(crds.contains(&name), "missing CRD {name} in {crds:?}");
    }
}

/// Every field of `value` is declared by `schema` (recursively), so a real API server would keep it
/// instead of pruning it silently. Returns the undeclared paths.
fn undeclared_fields(value: &Value, schema: &Value, path: &str) -> Vec<String> {
    let (Some(map), Some(props)) = (value.as_mapping(), schema["properties"].as_mapping()) else {
        return Vec::new();
    };
    let mut missing = Vec::new();
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let sub = format!("{path}.{key}");
        match props.get(Value::from(key)) {
            Some(s) if s["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true) => {}
            Some(s) => missing.extend(undeclared_fields(v, s, &sub)),
            None => missing.push(sub),
        }
    }
    missing
}

#[test]
fn default_gatewayconfig_and_dataplane_match_the_generated_crds() {
    let docs = template(CHART, &["--include-crds"]).expect("render");
    for kind in ["GatewayConfig", "Dataplane"] {
        let crd = of_kind(&docs, "CustomResourceDefinition")
            .into_iter()
            .find(|c| c["spec"]["names"]["kind"].as_str() == Some(kind))
            .unwrap_or_else(|| panic!("no CRD for {kind}"));
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert!(
            schema["properties"]
                .as_mapping()
                .is_some_and(|p| p.len() > 3),
            "{kind} CRD has no spec schema"
        );
        let obj = of_kind(&docs, kind)[0];
        let missing = undeclared_fields(&obj["spec"], schema, "spec");
        assert!(
            missing.is_empty(),
            "{kind} fields not in the CRD schema: {missing:?}"
        );
    }
}
