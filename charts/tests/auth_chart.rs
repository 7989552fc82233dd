//! The credential service in the stunner-gateway-operator chart: off by default; when enabled,
//! its Service selects exactly the Deployment's pods on a port name the container declares,
//! its probes and metrics sit on that port, and it runs with the same security context as the
//! other workloads.

use charts::{find, template};
use serde_norway::Value;

const CHART: &str = "stunner-gateway-operator";

fn enabled(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--set", "authService.enabled=true"];
    args.extend_from_slice(extra);
    template(CHART, &args).expect("render")
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|p| p[key].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn off_by_default() {
    let docs = template(CHART, &[]).expect("render");
    assert!(find(&docs, "Deployment", "test-auth").is_none());
    assert!(find(&docs, "Service", "test-auth").is_none());
}

#[test]
fn service_selects_the_pods_on_a_declared_port() {
    let docs = enabled(&[]);
    let deploy = find(&docs, "Deployment", "test-auth").expect("auth Deployment");
    let svc = find(&docs, "Service", "test-auth").expect("auth Service");
    let pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .expect("pod labels");
    let selector = svc["spec"]["selector"].as_mapping().expect("selector");
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(pod_labels.get(k), Some(v), "pod lacks selector label {k:?}");
    }
    assert_eq!(
        &deploy["spec"]["selector"]["matchLabels"],
        &svc["spec"]["selector"]
    );
    // No other workload's pods carry the selector (the operator and scaler are selected apart).
    for other in ["test-operator", "test-scaler"] {
        let labels = &find(&docs, "Deployment", other).expect(other)["spec"]["template"]["metadata"]
            ["labels"];
        let all = selector.iter().all(|(k, v)| labels.get(k) == Some(v));
        assert!(!all, "the auth Service would also select {other}");
    }
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    let declared = names(&c["ports"], "name");
    for target in svc["spec"]["ports"].as_sequence().expect("ports") {
        let t = target["targetPort"].as_str().expect("named targetPort");
        assert!(
            declared.iter().any(|d| d == t),
            "targetPort {t} not in {declared:?}"
        );
    }
    assert_eq!(svc["spec"]["type"].as_str(), Some("ClusterIP"));
    assert_eq!(
        c["readinessProbe"]["httpGet"]["port"].as_str(),
        Some("http")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        args.contains(&"--cds-server-address=http://test-cds.stunner.svc:13478"),
        "{args:?}"
    );
    // Same security context as the scaler.
    let scaler = find(&docs, "Deployment", "test-scaler").expect("scaler");
    let sc = &scaler["spec"]["template"]["spec"]["containers"][0]["securityContext"];
    assert_eq!(&c["securityContext"], sc);
    assert_eq!(
        &deploy["spec"]["template"]["spec"]["securityContext"],
        &scaler["spec"]["template"]["spec"]["securityContext"]
    );
}

#[test]
fn token_and_public_address_reach_the_container() {
    let docs = enabled(&[
        "--set",
        "authService.tokenSecret=auth-token,authService.publicAddress=1.2.3.4",
    ]);
    let deploy = find(&docs, "Deployment", "test-auth").expect("auth Deployment");
    let env = &deploy["spec"]["template"]["spec"]["containers"][0]["env"];
    let env = env.as_sequence().expect("env");
    let var = |n: &str| env.iter().find(|e| e["name"].as_str() == Some(n)).cloned();
    let token = var("STUNNER_AUTH_TOKEN").expect("token env");
    assert_eq!(
        token["valueFrom"]["secretKeyRef"]["name"].as_str(),
        Some("auth-token")
    );
    assert_eq!(
        var("STUNNER_PUBLIC_ADDR").expect("addr")["value"].as_str(),
        Some("1.2.3.4")
    );
}
