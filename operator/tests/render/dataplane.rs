//! The dataplane Deployment rendered from the Dataplane template.

use crate::fixtures::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;

fn dep(r: &operator::render::Rendered) -> &Deployment {
    r.deployments.first().expect("deployment")
}

fn stunnerd(d: &Deployment) -> &Container {
    &d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
}

fn dataplane(spec: &str) -> String {
    format!(
        "apiVersion: stunner.l7mp.io/v1\nkind: Dataplane\nmetadata: {{ name: default }}\nspec: {spec}\n"
    )
}

#[test]
fn deployment_identity_labels_selector_owner() {
    let r = run(&base());
    let d = dep(&r);
    assert_eq!(
        (d.metadata.name.as_deref(), d.metadata.namespace.as_deref()),
        (Some("udp-gateway"), Some("stunner"))
    );
    let l = d.metadata.labels.as_ref().unwrap();
    assert_eq!(l["stunner.l7mp.io/owned-by"], "stunner");
    assert_eq!(l["stunner.l7mp.io/related-gateway-name"], "udp-gateway");
    assert_eq!(l["stunner.l7mp.io/related-gateway-namespace"], "stunner");
    let spec = d.spec.as_ref().unwrap();
    // upstream's selector form: one `In` expression per label
    let sel: Vec<(String, String)> = spec
        .selector
        .match_expressions
        .iter()
        .flatten()
        .map(|e| (e.key.clone(), e.values.as_ref().unwrap()[0].clone()))
        .collect();
    assert_eq!(sel.len(), 3);
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    for (k, v) in &sel {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "pod labels must match the selector"
        );
    }
    assert_eq!(
        d.metadata.owner_references.as_ref().unwrap()[0].name,
        "udp-gateway"
    );
}

#[test]
fn container_image_command_args_env() {
    let r = run(&base());
    let c = stunnerd(dep(&r));
    assert_eq!(c.name, "stunner-daemon", "upstream's container name");
    assert_eq!(c.image.as_deref(), Some("docker.io/l7mp/stunnerd:latest"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(c.command.as_deref(), Some(&["stunnerd".to_string()][..]));
    assert_eq!(c.args.as_ref().unwrap(), &["-w", "--udp-thread-num=16"]);
    let env = c.env.as_ref().unwrap();
    let field = |n: &str| {
        env.iter()
            .find(|e| e.name == n)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.clone())
    };
    assert_eq!(field("STUNNER_ADDR").as_deref(), Some("status.podIP"));
    assert_eq!(
        field("STUNNER_NAME").as_deref(),
        Some("metadata.labels['stunner.l7mp.io/related-gateway-name']")
    );
    assert_eq!(
        field("STUNNER_NAMESPACE").as_deref(),
        Some("metadata.labels['stunner.l7mp.io/related-gateway-namespace']")
    );
    assert_eq!(field("STUNNER_NODENAME").as_deref(), Some("spec.nodeName"));
    let origin = env
        .iter()
        .find(|e| e.name == "STUNNER_CONFIG_ORIGIN")
        .unwrap();
    assert_eq!(
        origin.value.as_deref(),
        Some(operator::render::DEFAULT_CONFIG_ORIGIN)
    );
}

#[test]
fn probes_on_8086() {
    let r = run(&base());
    let c = stunnerd(dep(&r));
    for (probe, path) in [(&c.liveness_probe, "/live"), (&c.readiness_probe, "/ready")] {
        let g = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(g.path.as_deref(), Some(path));
        assert_eq!(
            g.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8086)
        );
    }
}

#[test]
fn disable_health_check_drops_probes_and_endpoint() {
    let r = run(&base_with(&dataplane(
        "{ image: x, disableHealthCheck: true }",
    )));
    let c = stunnerd(dep(&r));
    assert!(c.liveness_probe.is_none() && c.readiness_probe.is_none());
    assert_eq!(
        config(&r, "stunner/udp-gateway")
            .admin
            .healthcheck_endpoint
            .as_deref(),
        Some("")
    );
}

#[test]
fn metrics_endpoint_enabled() {
    let r = run(&base_with(&dataplane(
        "{ image: x, enableMetricsEndpoint: true }",
    )));
    assert_eq!(
        config(&r, "stunner/udp-gateway").admin.metrics_endpoint,
        "http://:8080/metrics"
    );
}

fn replicas(spec: &str, want: Option<i32>) {
    let r = run(&base_with(&dataplane(spec)));
    assert_eq!(dep(&r).spec.as_ref().unwrap().replicas, want);
}

cases! { replicas {
    replicas_unset_left_to_autoscaler: ("{ image: x }", None),
    replicas_one_left_to_autoscaler: ("{ image: x, replicas: 1 }", None),
    replicas_three_enforced: ("{ image: x, replicas: 3 }", Some(3)),
    replicas_zero_enforced: ("{ image: x, replicas: 0 }", Some(0)),
}}

fn termination_grace(spec: &str, want: i64) {
    let r = run(&base_with(&dataplane(spec)));
    let pod = dep(&r).spec.clone().unwrap().template.spec.unwrap();
    assert_eq!(pod.termination_grace_period_seconds, Some(want));
}

cases! { termination_grace {
    grace_default_covers_drain: ("{ image: x }", 3600),
    grace_from_dataplane: ("{ image: x, terminationGracePeriodSeconds: 60 }", 60),
}}

#[test]
fn defaults_without_image_command_args() {
    let r = run(&base_with(&dataplane("{}")));
    let c = stunnerd(dep(&r));
    assert_eq!(c.image.as_deref(), Some("l7mp/stunnerd:latest"));
    assert_eq!(c.args.as_ref().unwrap(), &["-w"]);
}

#[test]
fn pod_settings_copied() {
    let spec = r#"{ image: x, hostNetwork: true, labels: { team: a, app: hijack }, annotations: { a: b },
      tolerations: [{ key: k, operator: Exists }], imagePullSecrets: [{ name: pull }],
      resources: { limits: { cpu: "2" } }, env: [{ name: EXTRA, value: "1" }, { name: STUNNER_ADDR, value: evil }],
      securityContext: { runAsNonRoot: true }, containerSecurityContext: { privileged: false },
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: k, operator: Exists }] }] } } } }"#;
    let r = run(&base_with(&dataplane(spec)));
    let d = dep(&r);
    let t = &d.spec.as_ref().unwrap().template;
    let pod = t.spec.as_ref().unwrap();
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert_eq!(pod.tolerations.as_ref().unwrap().len(), 1);
    assert_eq!(pod.image_pull_secrets.as_ref().unwrap()[0].name, "pull");
    assert!(pod.affinity.is_some() && pod.security_context.is_some());
    let labels = t.metadata.as_ref().unwrap().labels.as_ref().unwrap();
    assert_eq!(
        (labels["team"].as_str(), labels["app"].as_str()),
        ("a", "stunner")
    );
    assert_eq!(
        t.metadata.as_ref().unwrap().annotations.as_ref().unwrap()["a"],
        "b"
    );
    let c = &pod.containers[0];
    assert!(c.resources.is_some() && c.security_context.is_some());
    let env = c.env.as_ref().unwrap();
    assert!(env.iter().any(|e| e.name == "EXTRA"));
    assert_eq!(env.iter().filter(|e| e.name == "STUNNER_ADDR").count(), 1);
    assert!(env.iter().all(|e| e.value.as_deref() != Some("evil")));
}

#[test]
fn missing_dataplane_blocks_gateway() {
    let mut s = base();
    s.dataplanes.clear();
    let r = run(&s);
    assert!(r.deployments.is_empty());
    assert!(r.configs.is_empty());
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        no("Invalid")
    );
}

#[test]
fn named_dataplane_selected_by_gatewayconfig() {
    let s = base_with(&format!(
        "{}---\napiVersion: stunner.l7mp.io/v1\nkind: GatewayConfig\nmetadata: {{ name: stunner-gatewayconfig, namespace: stunner }}\nspec: {{ dataplane: custom, userName: u, password: p }}\n",
        dataplane("{ image: custom-image }").replace("name: default", "name: custom")
    ));
    assert_eq!(
        stunnerd(dep(&run(&s))).image.as_deref(),
        Some("custom-image")
    );
}

#[test]
fn gateway_labels_and_annotations_copied_to_deployment() {
    let gw = gateway("udp-gateway", &["l:3478:UDP"]).replace(
        "uid: uid-udp-gateway }",
        "uid: uid-udp-gateway, labels: { team: x }, annotations: { note: y } }",
    );
    let r = run(&base_with(&gw));
    let d = dep(&r);
    assert_eq!(d.metadata.labels.as_ref().unwrap()["team"], "x");
    assert_eq!(d.metadata.annotations.as_ref().unwrap()["note"], "y");
}

#[test]
fn config_origin_option() {
    let opts = operator::render::RenderOptions {
        config_origin: "http://cds.example:13478".into(),
        ..Default::default()
    };
    let r = operator::render::render(&base(), &opts);
    let env = stunnerd(dep(&r)).env.clone().unwrap();
    assert_eq!(
        env.iter()
            .find(|e| e.name == "STUNNER_CONFIG_ORIGIN")
            .unwrap()
            .value
            .as_deref(),
        Some("http://cds.example:13478")
    );
}
