//! Every manifest a cluster would receive validates strictly against its schema, for the oldest
//! and the newest Kubernetes minor the chart claims (`kubeVersion` in Chart.yaml): the chart with
//! and without KEDA and the monitoring CRDs, and every object the operator renders for a Gateway.
//! Built-in kinds are checked by `kubernetes-validate` (its bundled OpenAPI schemas), custom
//! resources against their own CRDs: ours from crds/, KEDA's ScaledObject and the Prometheus
//! Operator's monitors and rules from tests/fixtures/crds. See tests/validate.py.
//!
//! `kubernetes-validate` is installed by scripts/setup.sh into `.tools/venv`.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use charts::{charts_dir, template_text};
use common::{CHART, chart, operator_render};
use serde_norway::Value;

/// The oldest Kubernetes minor the chart supports (Chart.yaml `kubeVersion`).
const OLDEST: &str = "1.30.0";
/// The newest Kubernetes minor the manifests are validated against.
const NEWEST: &str = "1.37.0";

fn python() -> PathBuf {
    let venv = charts_dir().join("../.tools/venv/bin/python");
    assert!(
        venv.exists(),
        "{} missing: run scripts/setup.sh (installs kubernetes-validate)",
        venv.display()
    );
    venv
}

fn crd_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        charts_dir().join("tests/fixtures/crds"),
        charts_dir().join(CHART).join("crds"),
    ] {
        for entry in std::fs::read_dir(&dir).expect("crd dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files
}

/// Runs the validator on `yaml` for Kubernetes `version`: Ok(number of objects) or the problems.
fn validate(yaml: &str, version: &str) -> Result<usize, String> {
    let mut child = Command::new(python())
        .arg(charts_dir().join("tests/validate.py"))
        .arg(version)
        .args(crd_files())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start validate.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write objects");
    let out = child.wait_with_output().expect("validate.py");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    text.trim()
        .strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .ok_or(text)
}

fn assert_valid(what: &str, yaml: &str, at_least: usize) {
    for version in [OLDEST, NEWEST] {
        match validate(yaml, version) {
            Ok(n) => assert!(n >= at_least, "{what}: only {n} objects validated"),
            Err(problems) => {
                panic!("{what} does not validate against Kubernetes {version}:\n{problems}")
            }
        }
    }
}

#[test]
fn the_chart_claims_the_oldest_version_validated() {
    let text =
        std::fs::read_to_string(charts_dir().join(CHART).join("Chart.yaml")).expect("Chart.yaml");
    assert!(
        text.contains(&format!("kubeVersion: \">={OLDEST}-0\"")),
        "Chart.yaml kubeVersion must claim {OLDEST}"
    );
}

#[test]
fn default_chart_validates() {
    let yaml = template_text(CHART, &["--include-crds"]).expect("render");
    assert_valid("default chart", &yaml, 15);
}

#[test]
fn chart_with_keda_monitoring_and_every_option_validates() {
    let yaml = template_text(
        CHART,
        &[
            "--include-crds",
            "--api-versions",
            "keda.sh/v1alpha1",
            "--set",
            "serviceMonitor.enabled=true,prometheusRules.enabled=true,grafanaDashboard.enabled=true",
            "--set",
            "crds.templates=true,operator.replicas=2,scaler.replicas=2,scaler.namespaces={stunner,media}",
            "--set",
            "autoscaledGateways[0].namespace=media,autoscaledGateways[0].name=udp-gateway",
            "--set",
            "imagePullSecrets[0].name=regcred,operator.nodeSelector.pool=system,dataplane.nodeSelector.pool=media",
            "--set",
            "scaler.tolerations[0].key=dedicated,scaler.tolerations[0].operator=Exists",
        ],
    )
    .expect("render");
    for kind in [
        "ScaledObject",
        "PodMonitor",
        "ServiceMonitor",
        "PrometheusRule",
        "PodDisruptionBudget",
    ] {
        assert!(
            yaml.contains(&format!("kind: {kind}\n")),
            "no {kind} rendered"
        );
    }
    assert_valid("chart with every option", &yaml, 30);
}

#[test]
fn chart_without_keda_renders_a_valid_hpa() {
    let yaml = template_text(
        CHART,
        &[
            "--set",
            "autoscaledGateways[0].namespace=media,autoscaledGateways[0].name=udp-gateway",
        ],
    )
    .expect("render");
    assert!(yaml.contains("kind: HorizontalPodAutoscaler\n"));
    assert_valid("chart without KEDA", &yaml, 15);
}

#[test]
fn every_object_the_operator_renders_validates() {
    let docs = chart(&[]);
    let mut objects: Vec<Value> = Vec::new();
    for (keda, daemon_set) in [(true, false), (false, false), (false, true)] {
        let op = operator_render(&docs, "stunner", keda, daemon_set);
        objects.extend(op.workloads);
        objects.extend(op.services);
        objects.extend(op.autoscalers);
    }
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in [
        "Deployment",
        "DaemonSet",
        "Service",
        "ScaledObject",
        "HorizontalPodAutoscaler",
    ] {
        assert!(
            kinds.contains(&kind),
            "the operator rendered no {kind}: {kinds:?}"
        );
    }
    let yaml = objects
        .iter()
        .map(|o| serde_norway::to_string(o).expect("yaml"))
        .collect::<Vec<_>>()
        .join("---\n");
    assert_valid("operator-rendered objects", &yaml, objects.len());
}

#[test]
fn an_invalid_object_fails_validation() {
    let bad =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: x }\nspec: { replicas: one }\n";
    assert!(validate(bad, OLDEST).is_err());
    let unknown = "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: { name: x }\nspec: { selector: {}, bogus: 1 }\n";
    assert!(validate(unknown, NEWEST).is_err());
}
