//! The dataplane Deployment (or, with `dataplaneResource: DaemonSet`, DaemonSet) of a Gateway,
//! from its Dataplane template. `replicas` is left unset
//! (so an autoscaler keeps owning it) unless the Dataplane asks for a count other than 1 and has
//! no `autoscaling`. With `autoscaling`, stunnerd gets `--drain-timeout` and the pod a
//! terminationGracePeriodSeconds covering it plus [`DRAIN_GRACE_MARGIN`].

use std::collections::BTreeMap;

use gateway_api::gateways::Gateway;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile,
    SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::keys;
use super::options::RenderOptions;
use super::service::{owned_labels, selector};
use crate::crd::Dataplane;
use crate::store::ObjectKey;

/// Port of stunnerd's health server (`/live`, `/ready`).
pub const HEALTH_PORT: i32 = 8086;
/// Port of stunnerd's Prometheus endpoint (`enableMetricsEndpoint`), as rendered into
/// `admin.metrics_endpoint`.
pub const METRICS_PORT: i32 = 8080;
/// Name of the metrics container port, which upstream STUNner's documented PodMonitor scrapes.
pub const METRICS_PORT_NAME: &str = "metrics-port";
/// The non-root user of the stunnerd image.
const NONROOT_UID: i64 = 65532;
/// Default graceful termination period: the drain timeout (3600 s).
pub const DEFAULT_TERMINATION_GRACE: i64 = 3600;
/// Seconds the kubelet waits beyond the drain timeout before killing stunnerd (its shutdown).
pub const DRAIN_GRACE_MARGIN: i64 = 30;
/// The stunnerd flag carrying the drain timeout in seconds.
const DRAIN_TIMEOUT_FLAG: &str = "--drain-timeout";

/// Renders the Deployment of a Gateway.
pub(crate) fn render(
    gw: &Gateway,
    dp: &Dataplane,
    opts: &RenderOptions,
    owner: &OwnerReference,
) -> Deployment {
    let s = &dp.spec;
    Deployment {
        metadata: metadata(gw, owner),
        spec: Some(DeploymentSpec {
            replicas: s.replicas.filter(|r| *r != 1 && s.autoscaling.is_none()),
            selector: pod_selector(gw),
            template: pod_template(gw, dp, opts),
            ..Default::default()
        }),
        status: None,
    }
}

/// Renders the DaemonSet of a Gateway whose Dataplane asks for one: the same pod template as
/// the Deployment, one pod per (schedulable) node, no replica count.
pub(crate) fn render_daemon_set(
    gw: &Gateway,
    dp: &Dataplane,
    opts: &RenderOptions,
    owner: &OwnerReference,
) -> DaemonSet {
    DaemonSet {
        metadata: metadata(gw, owner),
        spec: Some(DaemonSetSpec {
            selector: pod_selector(gw),
            template: pod_template(gw, dp, opts),
            ..Default::default()
        }),
        status: None,
    }
}

/// Name, labels (the Gateway's plus ours) and annotations of the dataplane object.
fn metadata(gw: &Gateway, owner: &OwnerReference) -> ObjectMeta {
    let mut labels: BTreeMap<String, String> = gw.labels().clone();
    labels.extend(owned_labels(gw));
    labels.insert(keys::APP.into(), keys::APP_VALUE.into());
    let mut annotations = gw.annotations().clone();
    annotations.insert(
        keys::RELATED_GATEWAY_NAME.into(),
        ObjectKey::of(gw).to_string(),
    );
    ObjectMeta {
        name: Some(gw.name_any()),
        namespace: gw.namespace(),
        labels: Some(labels),
        annotations: Some(annotations),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

fn pod_selector(gw: &Gateway) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector(gw)),
        match_expressions: None,
    }
}

/// The stunnerd pod of a Gateway, from its Dataplane template.
fn pod_template(gw: &Gateway, dp: &Dataplane, opts: &RenderOptions) -> PodTemplateSpec {
    let s = &dp.spec;
    let mut pod_labels = s.labels.clone().unwrap_or_default();
    pod_labels.extend(selector(gw));
    let pod = PodSpec {
        containers: vec![container(dp, opts)],
        termination_grace_period_seconds: Some(match &s.autoscaling {
            Some(a) => a.drain_timeout() + DRAIN_GRACE_MARGIN,
            None => s
                .termination_grace_period_seconds
                .unwrap_or(DEFAULT_TERMINATION_GRACE),
        }),
        host_network: s.host_network.then_some(true),
        dns_policy: s.host_network.then(|| "ClusterFirstWithHostNet".into()),
        affinity: s.affinity.clone(),
        tolerations: s.tolerations.clone(),
        topology_spread_constraints: s.topology_spread_constraints.clone(),
        security_context: Some(s.security_context.clone().unwrap_or_else(restricted_pod)),
        image_pull_secrets: s.image_pull_secrets.clone(),
        ..Default::default()
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: s.annotations.clone(),
            ..Default::default()
        }),
        spec: Some(pod),
    }
}

fn container(dp: &Dataplane, opts: &RenderOptions) -> Container {
    let s = &dp.spec;
    let mut env = mandatory_env(opts);
    env.extend(
        s.env
            .iter()
            .flatten()
            .filter(|e| !env_names().contains(&e.name.as_str()))
            .cloned(),
    );
    let probe = |path: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(HEALTH_PORT),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(0),
        period_seconds: Some(if path == "/live" { 15 } else { 5 }),
        ..Default::default()
    };
    Container {
        name: super::adopt::CONTAINER_NAME.into(),
        image: Some(
            s.image
                .clone()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| opts.default_image.clone()),
        ),
        image_pull_policy: s.image_pull_policy.clone(),
        command: Some(s.command.clone().unwrap_or_else(|| vec!["stunnerd".into()])),
        args: Some(args(dp)),
        env: Some(env),
        env_from: s.env_from.clone(),
        resources: s.resources.clone(),
        security_context: Some(
            s.container_security_context
                .clone()
                .unwrap_or_else(restricted_container),
        ),
        ports: s.enable_metrics_endpoint.then(|| {
            vec![ContainerPort {
                name: Some(METRICS_PORT_NAME.into()),
                container_port: METRICS_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]
        }),
        liveness_probe: (!s.disable_health_check).then(|| probe("/live")),
        readiness_probe: (!s.disable_health_check).then(|| probe("/ready")),
        ..Default::default()
    }
}

/// The pod security context of a Dataplane that sets none: the Pod Security Standard
/// `restricted` profile (non-root, the runtime's default seccomp profile).
fn restricted_pod() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(NONROOT_UID),
        run_as_group: Some(NONROOT_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

/// The stunnerd container security context of a Dataplane that sets none: `restricted`, with a
/// read-only root filesystem (stunnerd writes no file).
fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        ..Default::default()
    }
}

/// The Dataplane's args (default `-w`); with autoscaling, any `--drain-timeout` of the template is
/// replaced by the autoscaling drain timeout.
fn args(dp: &Dataplane) -> Vec<String> {
    let args = dp.spec.args.clone().unwrap_or_else(|| vec!["-w".into()]);
    let Some(a) = &dp.spec.autoscaling else {
        return args;
    };
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == DRAIN_TIMEOUT_FLAG {
            it.next(); // its value
        } else if !arg.starts_with(&format!("{DRAIN_TIMEOUT_FLAG}=")) {
            out.push(arg);
        }
    }
    out.push(format!("{DRAIN_TIMEOUT_FLAG}={}", a.drain_timeout()));
    out
}

fn env_names() -> [&'static str; 5] {
    [
        "STUNNER_ADDR",
        "STUNNER_NAME",
        "STUNNER_NAMESPACE",
        "STUNNER_NODENAME",
        "STUNNER_CONFIG_ORIGIN",
    ]
}

/// Identity (the Gateway, from the pod labels), pod IP, node and CDS address of stunnerd.
fn mandatory_env(opts: &RenderOptions) -> Vec<EnvVar> {
    let field = |name: &str, path: String| EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path,
                api_version: None,
            }),
            ..Default::default()
        }),
    };
    vec![
        field("STUNNER_ADDR", "status.podIP".into()),
        field(
            "STUNNER_NAME",
            format!("metadata.labels['{}']", keys::RELATED_GATEWAY_NAME),
        ),
        field(
            "STUNNER_NAMESPACE",
            format!("metadata.labels['{}']", keys::RELATED_GATEWAY_NAMESPACE),
        ),
        field("STUNNER_NODENAME", "spec.nodeName".into()),
        EnvVar {
            name: "STUNNER_CONFIG_ORIGIN".into(),
            value: Some(opts.config_origin.clone()),
            value_from: None,
        },
    ]
}
