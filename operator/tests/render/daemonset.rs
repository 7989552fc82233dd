//! `dataplaneResource: DaemonSet`: the same pod as the Deployment in a DaemonSet, no replicas, no
//! autoscaler, and the object of the other kind reported as an orphan.

use crate::fixtures::*;
use k8s_openapi::api::apps::v1::DaemonSet;
use operator::render::{OwnedKind, Rendered};

fn dataplane(spec: &str) -> String {
    format!(
        "apiVersion: stunner.l7mp.io/v1\nkind: Dataplane\nmetadata: {{ name: default }}\nspec: {spec}\n"
    )
}

const DS: &str = "{ image: img:1, dataplaneResource: DaemonSet }";

fn ds(r: &Rendered) -> &DaemonSet {
    r.daemon_sets.first().expect("daemon set")
}

/// An operator-owned object of `kind` (`Deployment` or `DaemonSet`) for the base Gateway.
fn owned(kind: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: {kind}\nmetadata: {{ name: udp-gateway, namespace: stunner, labels: {{ stunner.l7mp.io/owned-by: stunner }} }}\nspec: {{ selector: {{}}, template: {{}} }}\n"
    )
}

fn kinds_rendered(spec: &str, deployments: usize, daemon_sets: usize) {
    let r = run(&base_with(&dataplane(spec)));
    assert_eq!(
        (r.deployments.len(), r.daemon_sets.len()),
        (deployments, daemon_sets),
        "{spec}"
    );
}

cases! { kinds_rendered {
    resource_unset_renders_deployment: ("{ image: x }", 1, 0),
    resource_deployment_renders_deployment: ("{ image: x, dataplaneResource: Deployment }", 1, 0),
    resource_daemonset_renders_daemonset: (DS, 0, 1),
    daemonset_ignores_replicas: ("{ image: x, dataplaneResource: DaemonSet, replicas: 3 }", 0, 1),
}}

#[test]
fn daemonset_pod_template_equals_deployment_pod_template() {
    let dep = run(&base_with(&dataplane("{ image: img:1 }")));
    let r = run(&base_with(&dataplane(DS)));
    let want = dep.deployments[0].spec.as_ref().unwrap().template.clone();
    let spec = ds(&r).spec.as_ref().unwrap();
    assert_eq!(spec.template, want);
    assert_eq!(
        spec.selector,
        dep.deployments[0].spec.as_ref().unwrap().selector
    );
}

#[test]
fn daemonset_metadata_owner_and_labels() {
    let r = run(&base_with(&dataplane(DS)));
    let m = &ds(&r).metadata;
    assert_eq!(
        (m.name.as_deref(), m.namespace.as_deref()),
        (Some("udp-gateway"), Some("stunner"))
    );
    let l = m.labels.as_ref().unwrap();
    assert_eq!(l["stunner.l7mp.io/owned-by"], "stunner");
    assert_eq!(l["stunner.l7mp.io/related-gateway-name"], "udp-gateway");
    assert_eq!(l["stunner.l7mp.io/related-gateway-namespace"], "stunner");
    let o = &m.owner_references.as_ref().unwrap()[0];
    assert_eq!((o.kind.as_str(), o.uid.as_str()), ("Gateway", "uid-udp"));
}

#[test]
fn daemonset_gets_no_autoscaler() {
    let spec = "{ image: x, dataplaneResource: DaemonSet, autoscaling: { maxReplicas: 4, source: prometheus, serverAddress: 'http://prom:9090', scalerAddress: 'scaler:9090' } }";
    let r = run(&base_with(&dataplane(spec)));
    assert_eq!(r.daemon_sets.len(), 1);
    assert!(r.hpas.is_empty() && r.scaled_objects.is_empty());
}

#[test]
fn daemonset_gateway_still_renders_config_and_service() {
    let r = run(&base_with(&dataplane(DS)));
    assert_eq!(config(&r, "stunner/udp-gateway").listeners.len(), 1);
    assert_eq!(r.services.len(), 1);
    assert_eq!(
        gw_cond(&r, "stunner/udp-gateway", "Programmed"),
        ok("Programmed")
    );
}

#[test]
fn unmanaged_daemonset_gateway_renders_no_dataplane() {
    let gw = annotated(
        "{ stunner.l7mp.io/disable-managed-dataplane: \"true\" }",
        &["udp-listener:3478:TURN-UDP"],
    );
    let r = run(&base_with(&format!("{}---\n{gw}", dataplane(DS))));
    assert!(r.daemon_sets.is_empty() && r.deployments.is_empty());
}

#[test]
fn switching_to_daemonset_orphans_the_deployment() {
    let r = run(&base_with(&format!(
        "{}---\n{}",
        dataplane(DS),
        owned("Deployment")
    )));
    assert_eq!(
        r.orphans,
        vec![(OwnedKind::Deployment, key("stunner/udp-gateway"))]
    );
}

#[test]
fn switching_to_deployment_orphans_the_daemonset() {
    let r = run(&base_with(&owned("DaemonSet")));
    assert_eq!(
        r.orphans,
        vec![(OwnedKind::DaemonSet, key("stunner/udp-gateway"))]
    );
}

#[test]
fn kept_daemonset_is_not_an_orphan() {
    let r = run(&base_with(&format!(
        "{}---\n{}",
        dataplane(DS),
        owned("DaemonSet")
    )));
    assert!(r.orphans.is_empty(), "{:?}", r.orphans);
}

#[test]
fn deleted_gateway_orphans_its_daemonset() {
    let mut s = base_with(&format!("{}---\n{}", dataplane(DS), owned("DaemonSet")));
    s.gateways.clear();
    let r = run(&s);
    assert!(
        r.orphans
            .contains(&(OwnedKind::DaemonSet, key("stunner/udp-gateway")))
    );
}

#[test]
fn unowned_daemonset_is_never_an_orphan() {
    let foreign = owned("DaemonSet").replace(
        "labels: { stunner.l7mp.io/owned-by: stunner }",
        "labels: { app: other }",
    );
    let r = run(&base_with(&foreign));
    assert!(r.orphans.is_empty());
}
