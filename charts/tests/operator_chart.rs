//! `helm lint` and `helm template` of the stunner-gateway-operator chart, every rendered document
//! parsed and asserted: kinds, names, probes, grace period, ScaledObject versus HPA (RBAC and pod
//! security in security.rs, cross-object links in links.rs, schemas in schemas.rs).

use charts::{find, helm, of_kind, template};
use serde_norway::Value;

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

#[test]
fn lint_is_clean() {
    let path = charts::chart_path(CHART).display().to_string();
    let registry = format!("image.registry={}", charts::TEST_REGISTRY);
    let out = helm(&["lint", "--strict", &path, "--set", &registry]).expect("helm lint");
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

#[test]
fn an_unset_image_registry_fails_with_a_clear_message() {
    let path = charts::chart_path(CHART).display().to_string();
    let err = helm(&["template", "test", &path]).expect_err("no registry, no render");
    assert!(
        err.to_string().contains("image.registry is required"),
        "{err}"
    );
}

#[test]
fn bad_values_fail_with_the_schema_message() {
    let err = template(CHART, &["--set", "operator.logFormat=xml"]).expect_err("bad value");
    assert!(err.to_string().contains("logFormat"), "{err}");
    let err = template(CHART, &["--set", "operator.cds.port=70000"]).expect_err("bad port");
    assert!(err.to_string().contains("cds/port"), "{err}");
}

#[test]
fn images_log_format_and_scheduling_reach_every_workload() {
    let docs = template(
        CHART,
        &[
            "--set",
            "image.tag=v9,imagePullSecrets[0].name=regcred,operator.logFormat=json",
            "--set",
            "operator.nodeSelector.pool=system,scaler.tolerations[0].key=k,scaler.tolerations[0].operator=Exists",
            "--set",
            "dataplane.nodeSelector.pool=media",
        ],
    )
    .expect("render");
    let op = find(&docs, "Deployment", "test-operator").expect("operator");
    let c = container(op, "operator");
    assert_eq!(
        c["image"].as_str(),
        Some("registry.example/stunner/stunner-gateway-operator:v9")
    );
    let args = str_args(c);
    assert!(args.contains(&"--log-format=json"), "{args:?}");
    assert!(
        args.contains(&"--dataplane-image=registry.example/stunner/stunnerd:v9"),
        "{args:?}"
    );
    let pod = &op["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["pool"].as_str(), Some("system"));
    assert_eq!(pod["imagePullSecrets"][0]["name"].as_str(), Some("regcred"));
    let sc = find(&docs, "Deployment", "test-scaler").expect("scaler");
    let c = container(sc, "scaler");
    assert_eq!(
        c["image"].as_str(),
        Some("registry.example/stunner/stunner-scaler:v9")
    );
    assert!(str_args(c).contains(&"--log-format=text"));
    assert_eq!(
        sc["spec"]["template"]["spec"]["tolerations"][0]["key"].as_str(),
        Some("k")
    );
    assert_eq!(
        sc["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"].as_str(),
        Some("regcred")
    );
    let dp = find(&docs, "Dataplane", "default").expect("dataplane");
    assert_eq!(
        dp["spec"]["image"].as_str(),
        Some("registry.example/stunner/stunnerd:v9")
    );
    assert_eq!(
        dp["spec"]["imagePullSecrets"][0]["name"].as_str(),
        Some("regcred")
    );
    let term = &dp["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchExpressions"][0];
    assert_eq!(term["key"].as_str(), Some("pool"));
    assert_eq!(term["values"][0].as_str(), Some("media"));
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
        Some("/readyz")
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
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
    // scaler and operator ServiceMonitors, and the dataplane PodMonitor (tests/links.rs checks
    // what they select).
    assert_eq!(of_kind(&docs, "ServiceMonitor").len(), 2);
    assert_eq!(of_kind(&docs, "PodMonitor").len(), 1);
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

/// The chart's ScaledObject, read into the scaler crate's KEDA/HPA model and swept from every
/// size up to 30 both ways, on a cluster before and from Kubernetes 1.35 (where the chart, as
/// the operator, renders an HPA tolerance of 0 and tells the scaler): the shipped defaults keep
/// the autoscaling promises.
#[test]
fn the_scaled_object_keeps_its_promises_in_the_hpa_model() {
    use scaler::model::manifest;
    for (kube, tolerance) in [("1.34.0", false), ("1.35.0", true)] {
        let args = with(
            &with(KEDA, &["--kube-version", kube]),
            &[
                "--set",
                "autoscaledGateways[0].namespace=media,autoscaledGateways[0].name=gw,autoscaledGateways[0].maxReplicas=90,autoscaledGateways[0].targetAllocationsPerPod=100",
            ],
        );
        let docs = template(CHART, &args).expect("helm template");
        let so = find(&docs, "ScaledObject", "gw").expect("ScaledObject");
        let so = serde_json::to_value(so).expect("JSON");
        let modelled = manifest::read(&so).expect("the model reads the chart's ScaledObject");
        assert_eq!(
            (modelled.policy.max, modelled.policy.hpa_tolerance == 0.0),
            (90, tolerance),
            "{kube}: trigger metadata"
        );
        let (out, inn) = modelled
            .sweep(tolerance, 30)
            .unwrap_or_else(|e| panic!("{kube}: {e}"));
        assert_eq!(inn.stopped_above, 0, "{kube}: {inn}");
        if tolerance {
            assert_eq!(out.overshoot, 0, "{kube}: {out}");
        }
    }
}
