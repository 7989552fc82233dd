//! Upstream stunner-gateway-operator's renderer tests, transcribed onto our renderer, over a
//! transcription of its fixtures (`internal/testutils/defs.go`: `TestGwClass`, `TestGwConfig`,
//! `TestGw`, `TestUDPRoute`, `TestSvc`, `TestEndpointSlice`, `TestDataplane`, `TestNode`).
//!
//! Cases come from `internal/renderer/render_pipeline_managed_mode_test.go` ("targetport
//! enforced", "dataplane disabled"), `internal/renderer/service_util_test.go`
//! (`TestRenderServiceUtil`) and `test/managed_mode_test.go` (the Deployment and label-filter
//! cases). Deliberate differences are stated at the assertion.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use operator::render::{RenderOptions, Rendered, render};
use operator::store::Snapshot;

use super::fixtures::{config, key, with};

/// upstream `internal/testutils/defs.go`, as YAML. `TestSvc` both backs the route and, being
/// annotated for `testnamespace/gateway-1` and owned by it, carries the Gateway's public address.
const TESTUTILS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: { name: testnamespace, labels: { testlabel: testvalue } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: gatewayclass-ok }
spec:
  controllerName: stunner.l7mp.io/gateway-operator
  parametersRef: { group: stunner.l7mp.io, kind: GatewayConfig, name: gatewayconfig-ok, namespace: testnamespace }
---
apiVersion: stunner.l7mp.io/v1
kind: GatewayConfig
metadata: { name: gatewayconfig-ok, namespace: testnamespace }
spec: { realm: testrealm, authType: static, userName: testuser, password: testpass, logLevel: testloglevel }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gateway-1, namespace: testnamespace, uid: gw-uid, labels: { dummy-label: dummy-value } }
spec:
  gatewayClassName: gatewayclass-ok
  listeners:
    - { name: gateway-1-listener-udp, port: 1, protocol: TURN-UDP }
    - { name: gateway-1-listener-tcp, port: 2, protocol: TURN-TCP }
---
apiVersion: stunner.l7mp.io/v1
kind: UDPRoute
metadata: { name: udproute-ok, namespace: testnamespace }
spec:
  parentRefs: [{ name: gateway-1, sectionName: gateway-1-listener-udp }]
  rules: [{ backendRefs: [{ name: testservice-ok }] }]
---
apiVersion: v1
kind: Service
metadata:
  name: testservice-ok
  namespace: testnamespace
  annotations: { stunner.l7mp.io/related-gateway-name: testnamespace/gateway-1 }
  ownerReferences: [{ apiVersion: gateway.networking.k8s.io/v1, kind: Gateway, name: gateway-1, uid: gw-uid }]
spec:
  type: LoadBalancer
  selector: { app: dummy }
  ports: [{ name: udp-ok, protocol: UDP, port: 1 }, { name: tcp-ok, protocol: TCP, port: 2 }]
status:
  loadBalancer:
    ingress: [{ ip: 1.2.3.4, ports: [{ port: 1, protocol: UDP }, { port: 2, protocol: TCP }] }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: testendpointslice-ok, namespace: testnamespace, labels: { kubernetes.io/service-name: testservice-ok } }
addressType: IPv4
endpoints:
  - { addresses: [1.2.3.4, 1.2.3.5], conditions: { ready: true, serving: true, terminating: false } }
  - { addresses: [1.2.3.6], conditions: { ready: false, serving: false, terminating: true } }
  - { addresses: [1.2.3.7], conditions: { ready: false, serving: true, terminating: false } }
ports: [{ name: udp-port, protocol: UDP }, { name: tcp-port, protocol: TCP }]
---
apiVersion: v1
kind: Node
metadata: { name: testnode-ok }
status:
  addresses: [{ type: InternalIP, address: 255.255.255.255 }, { type: ExternalIP, address: 1.2.3.4 }]
---
apiVersion: stunner.l7mp.io/v1
kind: Dataplane
metadata: { name: default }
spec:
  replicas: 3
  image: testimage-1
  command: [testcommand-1]
  args: [arg-1, arg-2]
  imagePullPolicy: Always
  terminationGracePeriodSeconds: 60
  resources: { limits: { memory: 10M }, requests: { cpu: 250m } }
  hostNetwork: true
"#;

const GW: &str = "testnamespace/gateway-1";

fn testutils() -> Snapshot {
    with(&Snapshot::default(), TESTUTILS)
}

/// The fixtures with the Gateway replaced by one with `annotations` (a YAML flow map),
/// `listeners` (YAML flow list) and optional `extra` spec lines.
fn with_gateway(annotations: &str, listeners: &str, extra: &str) -> Snapshot {
    let gw = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: gateway-1, namespace: testnamespace, uid: gw-uid, labels: {{ dummy-label: dummy-value }}, annotations: {annotations} }}\nspec:\n  gatewayClassName: gatewayclass-ok\n  listeners: {listeners}\n{extra}"
    );
    with(&testutils(), &gw)
}

/// The fixtures with the GatewayConfig's `loadBalancerServiceAnnotations` set to `ann`.
fn with_lb_annotations(snap: &Snapshot, ann: &str) -> Snapshot {
    let conf = format!(
        "apiVersion: stunner.l7mp.io/v1\nkind: GatewayConfig\nmetadata: {{ name: gatewayconfig-ok, namespace: testnamespace }}\nspec: {{ realm: testrealm, authType: static, userName: testuser, password: testpass, logLevel: testloglevel, loadBalancerServiceAnnotations: {ann} }}\n"
    );
    with(snap, &conf)
}

const TWO: &str = "[{ name: gateway-1-listener-udp, port: 1, protocol: TURN-UDP }, { name: gateway-1-listener-tcp, port: 2, protocol: TURN-TCP }]";
const ONE_UDP: &str = "[{ name: gateway-1-listener-udp, port: 1, protocol: UDP }]";
const NP_LISTENERS: &str = "[{ name: random-np, port: 1, protocol: UDP }, { name: force-np1, port: 2, protocol: UDP }, { name: force-np2, port: 3, protocol: UDP }]";

fn run(snap: &Snapshot) -> Rendered {
    render(snap, &RenderOptions::default())
}

fn svc(r: &Rendered) -> &Service {
    r.services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("gateway-1"))
        .expect("gateway Service rendered")
}

fn ports(r: &Rendered) -> Vec<ServicePort> {
    svc(r).spec.clone().unwrap().ports.unwrap_or_default()
}

fn port_summary(r: &Rendered) -> Vec<(String, String, i32)> {
    ports(r)
        .into_iter()
        .map(|p| {
            (
                p.name.unwrap_or_default(),
                p.protocol.unwrap_or_default(),
                p.port,
            )
        })
        .collect()
}

fn svc_type(r: &Rendered) -> String {
    svc(r).spec.clone().unwrap().type_.unwrap_or_default()
}

fn deployment(r: &Rendered) -> &Deployment {
    r.deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("gateway-1"))
        .expect("Deployment rendered")
}

/// render_pipeline_managed_mode_test.go "targetport enforced": the listeners named in the
/// annotation move to those ports (an unknown name is ignored), the public address stays.
#[test]
fn targetport_enforced() {
    let snap = with_gateway(
        r#"{ stunner.l7mp.io/targetport: '{"gateway-1-listener-udp":11,"dummy":12,"gateway-1-listener-tcp":13}' }"#,
        TWO,
        "",
    );
    let r = run(&snap);
    let c = config(&r, GW);
    assert_eq!(c.admin.name, "testnamespace/gateway-1");
    assert_eq!(c.admin.loglevel, "testloglevel");
    assert_eq!(
        (c.auth.realm.as_str(), c.auth.auth_type.to_string().as_str()),
        ("testrealm", "static")
    );
    assert_eq!(c.auth.credential("username"), Some("testuser"));
    assert_eq!(c.auth.credential("password"), Some("testpass"));
    let l: Vec<_> = c
        .listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.protocol.as_str(),
                l.port,
                l.public_address.as_str(),
                l.public_port,
                l.routes.len(),
            )
        })
        .collect();
    assert_eq!(
        l,
        [
            (
                "testnamespace/gateway-1/gateway-1-listener-udp",
                "TURN-UDP",
                11,
                "1.2.3.4",
                1,
                1
            ),
            (
                "testnamespace/gateway-1/gateway-1-listener-tcp",
                "TURN-TCP",
                13,
                "1.2.3.4",
                2,
                0
            ),
        ]
    );
    assert_eq!(c.listeners[0].routes, ["testnamespace/udproute-ok"]);
}

/// render_pipeline_managed_mode_test.go "dataplane disabled"
/// (`stunner.l7mp.io/disable-managed-dataplane`): a config, no Deployment.
#[test]
fn dataplane_disabled() {
    let snap = with_gateway(
        "{ stunner.l7mp.io/disable-managed-dataplane: 'true' }",
        TWO,
        "",
    );
    let r = run(&snap);
    assert!(r.configs.contains_key(&key(GW)));
    assert!(r.deployments.is_empty());
}

/// service_util_test.go "public-ip ok", "fallback to hostname ok", "no service-port status ok".
#[test]
fn public_addresses() {
    let r = run(&testutils());
    let addrs: Vec<_> = config(&r, GW)
        .listeners
        .iter()
        .map(|l| (l.public_address.clone(), l.public_port))
        .collect();
    assert_eq!(
        addrs,
        [("1.2.3.4".to_string(), 1), ("1.2.3.4".to_string(), 2)]
    );
    let hostname = with(
        &testutils(),
        "apiVersion: v1\nkind: Service\nmetadata: { name: testservice-ok, namespace: testnamespace, annotations: { stunner.l7mp.io/related-gateway-name: testnamespace/gateway-1 } }\nspec: { type: LoadBalancer, ports: [{ name: udp-ok, protocol: UDP, port: 1 }, { name: tcp-ok, protocol: TCP, port: 2 }] }\nstatus: { loadBalancer: { ingress: [{ hostname: dummy-hostname, ports: [{ port: 1, protocol: UDP }, { port: 2, protocol: TCP }] }] } }\n",
    );
    let r = run(&hostname);
    assert_eq!(config(&r, GW).listeners[1].public_address, "dummy-hostname");
    let no_port_status = with(
        &testutils(),
        "apiVersion: v1\nkind: Service\nmetadata: { name: testservice-ok, namespace: testnamespace, annotations: { stunner.l7mp.io/related-gateway-name: testnamespace/gateway-1 } }\nspec: { type: LoadBalancer, ports: [{ name: udp-ok, protocol: UDP, port: 1 }, { name: tcp-ok, protocol: TCP, port: 2 }] }\nstatus: { loadBalancer: { ingress: [{ ip: 1.2.3.4 }] } }\n",
    );
    let r = run(&no_port_status);
    assert_eq!(config(&r, GW).listeners[0].public_address, "1.2.3.4");
    assert_eq!(config(&r, GW).listeners[1].public_port, 2);
}

/// service_util_test.go "lb service - single listener": mandatory labels and annotation,
/// LoadBalancer, ClientIP affinity, one port named after the listener.
#[test]
fn lb_service_single_listener() {
    let r = run(&with_gateway("{}", ONE_UDP, ""));
    let s = svc(&r);
    let labels = s.metadata.labels.clone().unwrap();
    assert_eq!(labels.len(), 3);
    assert_eq!(labels["stunner.l7mp.io/owned-by"], "stunner");
    assert_eq!(labels["stunner.l7mp.io/related-gateway-name"], "gateway-1");
    assert_eq!(
        labels["stunner.l7mp.io/related-gateway-namespace"],
        "testnamespace"
    );
    let ann = s.metadata.annotations.clone().unwrap();
    assert_eq!(ann.len(), 1);
    assert_eq!(ann["stunner.l7mp.io/related-gateway-name"], GW);
    let spec = s.spec.clone().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(spec.external_traffic_policy, None);
    assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
    assert_eq!(
        port_summary(&r),
        [("gateway-1-listener-udp".into(), "UDP".into(), 1)]
    );
}

/// service_util_test.go "lb service - single listener, no valid listener": no Service (one
/// without ports would be refused by the API server).
#[test]
fn lb_service_no_valid_listener() {
    let r = run(&with_gateway(
        "{}",
        "[{ name: gateway-1-listener-udp, port: 1, protocol: dummy }]",
        "",
    ));
    assert!(
        r.services
            .iter()
            .all(|s| s.metadata.name.as_deref() != Some("gateway-1"))
    );
}

/// service_util_test.go multi-listener cases: one protocol, first protocol wins without the
/// mixed-protocol annotation, both with it ("true" in the Gateway or the GatewayConfig; a
/// Gateway "false" overrides the GatewayConfig; "dummy" is not true).
#[test]
fn lb_service_multi_listener_protocols() {
    let two_udp = "[{ name: gateway-1-listener-udp, port: 1, protocol: UDP }, { name: gateway-1-listener-udp2, port: 2, protocol: UDP }]";
    assert_eq!(
        port_summary(&run(&with_gateway("{}", two_udp, ""))).len(),
        2
    );
    let mixed = "[{ name: gateway-1-listener-udp, port: 1, protocol: UDP }, { name: gateway-1-listener-tcp, port: 2, protocol: TCP }]";
    let first_valid = "[{ name: bad, port: 3, protocol: dummy }, { name: gateway-1-listener-tcp, port: 2, protocol: TCP }, { name: gateway-1-listener-udp, port: 1, protocol: UDP }]";
    assert_eq!(
        port_summary(&run(&with_gateway("{}", first_valid, ""))),
        [("gateway-1-listener-tcp".into(), "TCP".into(), 2)]
    );
    let both = [
        ("gateway-1-listener-udp".to_string(), "UDP".to_string(), 1),
        ("gateway-1-listener-tcp".to_string(), "TCP".to_string(), 2),
    ];
    let on = "{ stunner.l7mp.io/enable-mixed-protocol-lb: 'true' }";
    assert_eq!(port_summary(&run(&with_gateway(on, mixed, ""))), both);
    let dummy = "{ stunner.l7mp.io/enable-mixed-protocol-lb: dummy }";
    assert_eq!(port_summary(&run(&with_gateway(dummy, mixed, ""))).len(), 1);
    let in_conf = with_lb_annotations(&with_gateway("{}", mixed, ""), on);
    assert_eq!(port_summary(&run(&in_conf)), both);
    let off = "{ stunner.l7mp.io/enable-mixed-protocol-lb: 'false' }";
    let overridden = with_lb_annotations(&with_gateway(off, mixed, ""), on);
    assert_eq!(port_summary(&run(&overridden)).len(), 1);
}

/// service_util_test.go "lb service - lb annotations" and "... from gwConf override from Gw".
#[test]
fn lb_service_annotations() {
    let snap = with_lb_annotations(
        &with_gateway("{}", ONE_UDP, ""),
        "{ test: testval, dummy: dummyval }",
    );
    let ann = svc(&run(&snap)).metadata.annotations.clone().unwrap();
    assert_eq!(
        (ann.len(), ann["test"].as_str(), ann["dummy"].as_str()),
        (3, "testval", "dummyval")
    );
    let snap = with_lb_annotations(
        &with_gateway("{ dummy: something-else, extra: extraval }", ONE_UDP, ""),
        "{ test: testval, dummy: dummyval }",
    );
    let ann = svc(&run(&snap)).metadata.annotations.clone().unwrap();
    assert_eq!(ann.len(), 4);
    assert_eq!(
        (ann["dummy"].as_str(), ann["extra"].as_str()),
        ("something-else", "extraval")
    );
}

/// service_util_test.go health-check cases (aws, do, disabled, not-an-int port, UDP protocol,
/// GatewayConfig overridden by the Gateway).
#[test]
fn lb_service_health_check_port() {
    let hc = |conf: &str, gw: &str| {
        let snap = with_lb_annotations(&with_gateway(gw, ONE_UDP, ""), conf);
        port_summary(&run(&snap))
    };
    let aws = "{ service.beta.kubernetes.io/aws-load-balancer-healthcheck-port: '8080', service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol: HTTP }";
    let with_hc = [
        ("gateway-1-listener-udp".to_string(), "UDP".to_string(), 1),
        ("gateway-health-check".to_string(), "TCP".to_string(), 8080),
    ];
    assert_eq!(hc(aws, "{}"), with_hc);
    let disabled = "{ service.beta.kubernetes.io/aws-load-balancer-healthcheck-port: '8080', service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol: HTTP, stunner.l7mp.io/disable-health-check-expose: 'true' }";
    assert_eq!(hc(disabled, "{}").len(), 1);
    let do_ = "{ service.beta.kubernetes.io/do-loadbalancer-healthcheck-port: '8080', service.beta.kubernetes.io/do-loadbalancer-healthcheck-protocol: HTTP }";
    assert_eq!(hc(do_, "{}"), with_hc);
    let not_int = "{ service.beta.kubernetes.io/do-loadbalancer-healthcheck-port: eighty, service.beta.kubernetes.io/do-loadbalancer-healthcheck-protocol: HTTP }";
    assert_eq!(hc(not_int, "{}").len(), 1);
    let udp = "{ service.beta.kubernetes.io/do-loadbalancer-healthcheck-port: '8080', service.beta.kubernetes.io/do-loadbalancer-healthcheck-protocol: UDP }";
    assert_eq!(hc(udp, "{}").len(), 1);
    let fixed = "{ service.beta.kubernetes.io/do-loadbalancer-healthcheck-protocol: HTTP }";
    assert_eq!(hc(udp, fixed), with_hc);
}

/// service_util_test.go Service type cases: default LoadBalancer; ClusterIP/NodePort from the
/// GatewayConfig or the Gateway (the Gateway wins); no health-check port unless LoadBalancer.
#[test]
fn lb_service_type() {
    let hc = "service.beta.kubernetes.io/do-loadbalancer-healthcheck-port: '8080', service.beta.kubernetes.io/do-loadbalancer-healthcheck-protocol: HTTP";
    assert_eq!(
        svc_type(&run(&with_gateway("{}", ONE_UDP, ""))),
        "LoadBalancer"
    );
    for t in ["ClusterIP", "NodePort"] {
        let snap = with_lb_annotations(
            &with_gateway("{}", ONE_UDP, ""),
            &format!("{{ stunner.l7mp.io/service-type: {t}, {hc} }}"),
        );
        let r = run(&snap);
        assert_eq!(svc_type(&r), t);
        assert_eq!(ports(&r).len(), 1, "{t}: no health-check port");
    }
    let gw_wins = with_lb_annotations(
        &with_gateway("{ stunner.l7mp.io/service-type: NodePort }", ONE_UDP, ""),
        &format!("{{ stunner.l7mp.io/service-type: ClusterIP, {hc} }}"),
    );
    assert_eq!(svc_type(&run(&gw_wins)), "NodePort");
    let from_gw = with_gateway("{ stunner.l7mp.io/service-type: ClusterIP }", ONE_UDP, "");
    assert_eq!(svc_type(&run(&from_gw)), "ClusterIP");
}

/// service_util_test.go "disabling session affinity", the external-traffic-policy cases and
/// "public address hint in Gateway Spec" (the first address becomes `loadBalancerIP`).
#[test]
fn lb_service_affinity_traffic_policy_and_address_hint() {
    let r = run(&with_lb_annotations(
        &with_gateway("{}", ONE_UDP, ""),
        "{ stunner.l7mp.io/disable-session-affinity: 'true' }",
    ));
    assert_eq!(
        svc(&r).spec.clone().unwrap().session_affinity.as_deref(),
        Some("None")
    );
    let etp = |conf: &str, gw: &str| {
        let r = run(&with_lb_annotations(&with_gateway(gw, ONE_UDP, ""), conf));
        svc(&r).spec.clone().unwrap().external_traffic_policy
    };
    let local = "{ stunner.l7mp.io/external-traffic-policy: local }";
    assert_eq!(etp(local, "{}").as_deref(), Some("Local"));
    assert_eq!(
        etp("{ stunner.l7mp.io/external-traffic-policy: dummy }", local).as_deref(),
        Some("Local")
    );
    let cluster_ip = "{ stunner.l7mp.io/service-type: ClusterIP, stunner.l7mp.io/external-traffic-policy: local }";
    assert_eq!(etp(cluster_ip, "{}"), None, "never on a ClusterIP Service");
    assert_eq!(
        etp(local, "{ stunner.l7mp.io/external-traffic-policy: dummy }"),
        None,
        "invalid"
    );
    let hinted = with_gateway(
        "{}",
        ONE_UDP,
        "  addresses: [{ value: 1.1.1.1 }, { value: 1.2.3.4 }]\n",
    );
    let r = run(&hinted);
    assert_eq!(
        svc(&r).spec.clone().unwrap().load_balancer_ip.as_deref(),
        Some("1.1.1.1")
    );
    let hostname = with_gateway(
        "{}",
        ONE_UDP,
        "  addresses: [{ type: Hostname, value: example.com }]\n",
    );
    assert_eq!(
        svc(&run(&hostname)).spec.clone().unwrap().load_balancer_ip,
        None,
        "only IP addresses"
    );
}

/// service_util_test.go nodeport/targetport annotation cases: JSON maps from the GatewayConfig
/// or the Gateway (a malformed GatewayConfig value is overridden by the Gateway's), ports of
/// listeners not named keep the defaults; upstream's relaxed form without braces is accepted.
#[test]
fn lb_service_nodeport_and_targetport_annotations() {
    let ann = r#"'{"force-np1":101,"force-np2":102,"force-np3":103}'"#;
    for (key, pick) in [
        (
            "stunner.l7mp.io/nodeport",
            (|p: &ServicePort| p.node_port) as fn(&ServicePort) -> Option<i32>,
        ),
        ("stunner.l7mp.io/targetport", |p: &ServicePort| {
            match p.target_port {
                Some(IntOrString::Int(i)) => Some(i),
                _ => None,
            }
        }),
    ] {
        let in_conf = with_lb_annotations(
            &with_gateway("{}", NP_LISTENERS, ""),
            &format!("{{ {key}: {ann} }}"),
        );
        let in_gw = with_lb_annotations(
            &with_gateway(&format!("{{ {key}: {ann} }}"), NP_LISTENERS, ""),
            &format!(r#"{{ {key}: '{{"dummy-data-in-the-wrong-format' }}"#),
        );
        for snap in [in_conf, in_gw] {
            let got: Vec<_> = ports(&run(&snap))
                .iter()
                .map(|p| (p.name.clone().unwrap(), pick(p)))
                .collect();
            assert_eq!(
                got,
                [
                    ("random-np".into(), None),
                    ("force-np1".into(), Some(101)),
                    ("force-np2".into(), Some(102))
                ],
                "{key}"
            );
        }
    }
    // "JSON formatted nodeport annotation parsing": with braces, without, {}, empty, and errors.
    for (raw, want) in [
        (r#"{"force-np1":1,"force-np2":2,"force-np3":1000}"#, Some(2)),
        (r#""force-np1":1,"force-np2":2,"force-np3":1000"#, Some(2)),
        ("{}", None),
        ("", None),
        (r#"["force-np1":1"#, None),
        (r#""dummy""#, None),
        (
            r#"{"force-np1":1,"force-np2":2,"force-np3":1000,"c":{"a":1,"b":2}}"#,
            None,
        ),
    ] {
        let gw = format!("{{ stunner.l7mp.io/nodeport: '{raw}' }}");
        let got = ports(&run(&with_gateway(&gw, NP_LISTENERS, "")))[2].node_port;
        assert_eq!(got, want, "{raw}");
    }
}

/// test/managed_mode_test.go "should create a Deployment for the Gateway": labels (the
/// Gateway's plus ours), the related-gateway annotation, upstream's selector, the pod labels,
/// the container name, image, resources, pull policy, grace period and host network.
#[test]
fn managed_deployment() {
    let r = run(&testutils());
    let d = deployment(&r);
    let ann = d.metadata.annotations.clone().unwrap();
    assert_eq!(ann["stunner.l7mp.io/related-gateway-name"], GW);
    let labels = d.metadata.labels.clone().unwrap();
    assert_eq!(labels["stunner.l7mp.io/owned-by"], "stunner");
    assert_eq!(labels["dummy-label"], "dummy-value");
    let spec = d.spec.clone().unwrap();
    let sel = serde_json::to_value(&spec.selector).unwrap();
    assert_eq!(
        sel,
        serde_json::json!({"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["stunner"]},
            {"key": "stunner.l7mp.io/related-gateway-name", "operator": "In", "values": ["gateway-1"]},
            {"key": "stunner.l7mp.io/related-gateway-namespace", "operator": "In", "values": ["testnamespace"]},
        ]}),
        "upstream's selector form, so upstream-created Deployments can be adopted"
    );
    let tpl = spec.template;
    let pod_meta = tpl.metadata.unwrap();
    let pod_ann = pod_meta.annotations.unwrap();
    assert_eq!(pod_ann["stunner.l7mp.io/related-gateway-name"], GW);
    let pod_labels = pod_meta.labels.unwrap();
    assert_eq!(pod_labels.len(), 3);
    assert_eq!(pod_labels["app"], "stunner");
    let pod = tpl.spec.unwrap();
    assert_eq!(pod.containers.len(), 1);
    let c = &pod.containers[0];
    assert_eq!(c.name, "stunner-daemon");
    assert_eq!(c.image.as_deref(), Some("testimage-1"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    let res = serde_json::to_value(c.resources.clone().unwrap()).unwrap();
    assert_eq!(
        res,
        serde_json::json!({"limits": {"memory": "10M"}, "requests": {"cpu": "250m"}})
    );
    assert_eq!(pod.termination_grace_period_seconds, Some(60));
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(spec.replicas, Some(3));
}

/// test/managed_mode_test.go "should not propagate ecosystem ownership labels to the
/// Deployment": the default filter strips applyset/Helm/ArgoCD/Flux keys, other Gateway labels
/// and our ownership label stay; `STUNNER_GATEWAY_OPERATOR_LABEL_FILTER` replaces the list.
#[test]
fn label_filter() {
    let gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gateway-1\n  namespace: testnamespace\n  labels: { dummy-label: dummy-value, applyset.kubernetes.io/part-of: applyset-main, app.kubernetes.io/managed-by: Helm, argocd.argoproj.io/instance: app, kustomize.toolkit.fluxcd.io/name: k, keep-me: 'yes' }\nspec:\n  gatewayClassName: gatewayclass-ok\n  listeners: [{ name: gateway-1-listener-udp, port: 1, protocol: TURN-UDP }]\n";
    let snap = with(&testutils(), gw);
    let labels = deployment(&run(&snap)).metadata.labels.clone().unwrap();
    assert_eq!(labels["keep-me"], "yes");
    assert_eq!(labels["stunner.l7mp.io/owned-by"], "stunner");
    for k in [
        "applyset.kubernetes.io/part-of",
        "app.kubernetes.io/managed-by",
        "argocd.argoproj.io/instance",
        "kustomize.toolkit.fluxcd.io/name",
    ] {
        assert!(!labels.contains_key(k), "{k} must not be copied");
    }
    let opts = RenderOptions {
        label_filter: vec!["keep-me".into()],
        ..RenderOptions::default()
    };
    let labels = render(&snap, &opts).deployments[0]
        .metadata
        .labels
        .clone()
        .unwrap();
    assert!(!labels.contains_key("keep-me"));
    assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
}
