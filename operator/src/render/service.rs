//! The Service exposing a Gateway (default type LoadBalancer): one port per accepted listener,
//! shaped by the `stunner.l7mp.io/…` annotations (set on the Gateway, or as defaults in the
//! GatewayConfig's `loadBalancerServiceAnnotations`). The Gateway's first IP in `spec.addresses`
//! becomes `spec.loadBalancerIP`, as upstream.
//!
//! Cloud load balancers health-check UDP-only Services over TCP or HTTP; as upstream, when the
//! merged annotations carry a `service.beta.kubernetes.io/…health…port` key (e.g. AWS's
//! `aws-load-balancer-healthcheck-port`, DigitalOcean's `do-loadbalancer-healthcheck-port`) and a
//! `…health…protocol` key of `TCP` or `HTTP`, a LoadBalancer Service gets an extra TCP port
//! [`HEALTH_CHECK_PORT_NAME`] with that number (stunnerd's health server listens on 8086), unless
//! `stunner.l7mp.io/disable-health-check-expose: "true"`.

use std::collections::BTreeMap;

use gateway_api::gateways::Gateway;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::keys;
use super::listener::{ListenerPlan, service_protocol};
use crate::crd::GatewayConfig;
use crate::store::ObjectKey;

/// Name of the health-check Service port.
pub const HEALTH_CHECK_PORT_NAME: &str = "gateway-health-check";

/// The two labels naming a Gateway (name and namespace: `/` is not allowed in label values).
fn gateway_labels(gw: &Gateway) -> [(String, String); 2] {
    [
        (keys::RELATED_GATEWAY_NAME.into(), gw.name_any()),
        (
            keys::RELATED_GATEWAY_NAMESPACE.into(),
            gw.namespace().unwrap_or_default(),
        ),
    ]
}

/// The labels every operator-created object of a Gateway carries.
pub(crate) fn owned_labels(gw: &Gateway) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from(gateway_labels(gw));
    labels.insert(keys::OWNED_BY.into(), keys::OWNED_BY_VALUE.into());
    labels
}

/// The pod selector of a Gateway's dataplane.
pub(crate) fn selector(gw: &Gateway) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from(gateway_labels(gw));
    labels.insert(keys::APP.into(), keys::APP_VALUE.into());
    labels
}

/// GatewayConfig LB annotations, overridden by the Gateway's, plus the related-gateway annotation.
pub(crate) fn merged_annotations(gw: &Gateway, conf: &GatewayConfig) -> BTreeMap<String, String> {
    let mut a = conf
        .spec
        .load_balancer_service_annotations
        .clone()
        .unwrap_or_default();
    a.extend(gw.annotations().iter().map(|(k, v)| (k.clone(), v.clone())));
    a.insert(
        keys::RELATED_GATEWAY_NAME.into(),
        ObjectKey::of(gw).to_string(),
    );
    a
}

/// Renders the Service of a Gateway.
pub(crate) fn render(
    gw: &Gateway,
    conf: &GatewayConfig,
    plans: &[ListenerPlan<'_>],
    owner: &OwnerReference,
) -> Service {
    let ann = merged_annotations(gw, conf);
    let is_true = |k: &str, v: &str| ann.get(k).is_some_and(|x| x.eq_ignore_ascii_case(v));
    let svc_type = match ann.get(keys::SERVICE_TYPE).map(String::as_str) {
        Some(t @ ("ClusterIP" | "NodePort" | "ExternalName" | "LoadBalancer")) => t.to_owned(),
        _ => "LoadBalancer".to_owned(),
    };
    let etp = (is_true(keys::EXTERNAL_TRAFFIC_POLICY, "local")
        && matches!(svc_type.as_str(), "NodePort" | "LoadBalancer"))
    .then(|| "Local".to_string());
    let affinity = if is_true(keys::DISABLE_SESSION_AFFINITY, "true") {
        "None"
    } else {
        "ClientIP"
    };
    let mut ports = ports(
        plans,
        is_true(keys::MIXED_PROTOCOL, "true"),
        &port_map(&ann, keys::NODEPORT),
        &port_map(&ann, keys::TARGETPORT),
    );
    if svc_type == "LoadBalancer" && !is_true(keys::DISABLE_HEALTH_CHECK_EXPOSE, "true") {
        ports.extend(health_check_port(&ann));
    }
    Service {
        metadata: ObjectMeta {
            name: Some(gw.name_any()),
            namespace: gw.namespace(),
            labels: Some(owned_labels(gw)),
            annotations: Some(ann),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(svc_type),
            selector: Some(selector(gw)),
            ports: Some(ports),
            session_affinity: Some(affinity.into()),
            external_traffic_policy: etp,
            load_balancer_ip: requested_lb_ip(gw),
            ..Default::default()
        }),
        status: None,
    }
}

/// One port per accepted listener; without mixed-protocol support only listeners of the first
/// listener's transport are exposed (most load balancers reject mixed protocols).
fn ports(
    plans: &[ListenerPlan<'_>],
    mixed: bool,
    nodeports: &BTreeMap<String, i32>,
    targetports: &BTreeMap<String, i32>,
) -> Vec<ServicePort> {
    let mut first: Option<&str> = None;
    let mut out = Vec::new();
    for p in plans.iter().filter(|p| p.accepted()) {
        let Some(proto) = p.protocol.map(service_protocol) else {
            continue;
        };
        let base = *first.get_or_insert(proto);
        if !mixed && proto != base {
            continue;
        }
        let name = &p.spec.name;
        out.push(ServicePort {
            name: Some(name.clone()),
            protocol: Some(proto.into()),
            port: p.spec.port,
            node_port: nodeports.get(name).copied(),
            target_port: targetports.get(name).map(|t| IntOrString::Int(*t)),
            ..Default::default()
        });
    }
    out
}

/// A `{"listener": port}` JSON annotation, or upstream's relaxed form without the braces
/// (`"listener": port, ...`); malformed values are ignored, as upstream.
pub(crate) fn port_map(ann: &BTreeMap<String, String>, key: &str) -> BTreeMap<String, i32> {
    ann.get(key)
        .and_then(|v| {
            serde_json::from_str(v)
                .or_else(|_| serde_json::from_str(&format!("{{{v}}}")))
                .ok()
        })
        .unwrap_or_default()
}

/// The load-balancer IP a Gateway asks for: its first `spec.addresses` entry when that is an
/// IP address (type `IPAddress` or unset), as upstream forwards it to `spec.loadBalancerIP`.
fn requested_lb_ip(gw: &Gateway) -> Option<String> {
    let a = gw.spec.addresses.as_ref()?.first()?;
    let ip_type = a.r#type.as_deref().is_none_or(|t| t == "IPAddress");
    a.value.clone().filter(|v| ip_type && !v.is_empty())
}

/// Whether `key` is a cloud LB annotation matching `service.beta.kubernetes.io/.*health.*<suffix>`.
fn health_key(key: &str, suffix: &str) -> bool {
    key.strip_prefix(keys::CLOUD_LB_PREFIX)
        .and_then(|rest| rest.find("health").map(|i| &rest[i + "health".len()..]))
        .is_some_and(|tail| tail.ends_with(suffix))
}

/// The health-check port the cloud LB annotations ask for: the last matching port key (in key
/// order) must parse as a port and some protocol key must say TCP or HTTP (both map to a TCP
/// Service port); anything else adds nothing, as upstream.
fn health_check_port(ann: &BTreeMap<String, String>) -> Option<ServicePort> {
    let port: i32 = ann
        .iter()
        .rfind(|(k, _)| health_key(k, "port"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .filter(|p| (1..=65535).contains(p))?;
    let mut protocols = ann.iter().filter(|(k, _)| health_key(k, "protocol"));
    let tcp = protocols.clone().next().is_some()
        && protocols.all(|(_, v)| matches!(v.to_ascii_uppercase().as_str(), "TCP" | "HTTP"));
    tcp.then(|| ServicePort {
        name: Some(HEALTH_CHECK_PORT_NAME.into()),
        protocol: Some("TCP".into()),
        port,
        ..Default::default()
    })
}
