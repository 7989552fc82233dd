//! Upstream stunner-gateway-operator's renderer tests, transcribed onto our renderer, over a
//! transcription of its fixtures (`internal/testutils/defs.go`: `TestGwClass`, `TestGwConfig`,
//! `TestGw`, `TestUDPRoute`, `TestSvc`, `TestEndpointSlice`, `TestDataplane`, `TestNode`).
//!
//! Cases come from `internal/renderer/render_pipeline_managed_mode_test.go` ("targetport
//! enforced", "dataplane disabled"), `internal/renderer/service_util_test.go`
//! (`TestRenderServiceUtil`: public addresses, including "wrong annotation name errs", "wrong
//! annotation errs", "no owner-ref errs", "invalid listener proto errs", "wrong port errs",
//! "multiple service-ports public-ip ok", "nodeport IP OK"; the LB Service cases, including the
//! merge with a live Service: "service nodeport/targetport retained" and "STUNner-specific
//! annotation removed unless GW also sets it") and `test/managed_mode_test.go` (the Deployment,
//! label-filter and metrics-port cases: "should create a Deployment for the Gateway", "should
//! not propagate ecosystem ownership labels to the Deployment", "should update config when the
//! Dataplane changes", "should update the Deployment after the Dataplane changed").
//! Deliberate differences are stated at the assertion and listed in the README.

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
    // Deliberate difference: upstream always declares the `metrics-port` container port ("we
    // always declare the metrics port, even if the metrics server is disabled"); we declare it
    // only with `enableMetricsEndpoint`, so a PodMonitor selecting `metrics-port` never
    // scrapes a port nothing listens on.
    assert_eq!(
        c.ports, None,
        "no metrics port without enableMetricsEndpoint"
    );
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

/// `testservice-ok` with `meta` appended to its metadata flow map, `spec` and `status`.
fn test_svc(meta: &str, spec: &str, status: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: testservice-ok, namespace: testnamespace{meta} }}\nspec: {spec}\nstatus: {status}\n"
    )
}

/// The owner reference upstream's cases set on the Service ("so that we accept the public IP").
const OWNED: &str = ", ownerReferences: [{ apiVersion: gateway.networking.k8s.io/v1, kind: Gateway, name: gateway-1, uid: gw-uid }]";
const RELATED: &str =
    ", annotations: { stunner.l7mp.io/related-gateway-name: testnamespace/gateway-1 }";
const TEST_SVC_SPEC: &str = "{ type: LoadBalancer, selector: { app: dummy }, ports: [{ name: udp-ok, protocol: UDP, port: 1 }, { name: tcp-ok, protocol: TCP, port: 2 }] }";
const TEST_SVC_STATUS: &str = "{ loadBalancer: { ingress: [{ ip: 1.2.3.4, ports: [{ port: 1, protocol: UDP }, { port: 2, protocol: TCP }] }] } }";

/// (listener name without the `ns/gateway/` prefix, public address, public port) of every
/// listener in the Gateway's config; no public address is `("", 0)`.
fn public(r: &Rendered) -> Vec<(String, String, u16)> {
    config(r, GW)
        .listeners
        .iter()
        .map(|l| {
            let name = l.name.rsplit('/').next().unwrap_or_default().to_owned();
            (name, l.public_address.clone(), l.public_port)
        })
        .collect()
}

fn addr(listener: &str, ip: &str, port: u16) -> (String, String, u16) {
    (listener.into(), ip.into(), port)
}

const UDP_L: &str = "gateway-1-listener-udp";
const TCP_L: &str = "gateway-1-listener-tcp";

/// service_util_test.go "wrong annotation name errs" and "wrong annotation errs": a Service
/// that does not name the Gateway in `stunner.l7mp.io/related-gateway-name` (even one the
/// Gateway owns) gives no public address.
#[test]
fn public_address_needs_the_related_gateway_annotation() {
    for meta in [
        format!(", annotations: {{ dummy: dummy }}{OWNED}"),
        format!(", annotations: {{ stunner.l7mp.io/related-gateway-name: dummy }}{OWNED}"),
    ] {
        let snap = with(
            &testutils(),
            &test_svc(&meta, TEST_SVC_SPEC, TEST_SVC_STATUS),
        );
        assert_eq!(
            public(&run(&snap)),
            [addr(UDP_L, "", 0), addr(TCP_L, "", 0)],
            "{meta}"
        );
    }
}

/// service_util_test.go "no owner-ref errs": the annotated Service has no owner reference, no
/// load-balancer status and a NodePort on the UDP port only. Deliberate difference: upstream
/// also requires the Gateway to own the Service and so finds no address; we take the annotation
/// alone (README), so the UDP listener gets the node's ExternalIP with the NodePort.
#[test]
fn public_address_without_owner_reference() {
    let spec = "{ type: LoadBalancer, selector: { app: dummy }, ports: [{ name: udp-ok, protocol: UDP, port: 1, nodePort: 1234 }] }";
    let snap = with(&testutils(), &test_svc(RELATED, spec, "{}"));
    assert_eq!(
        public(&run(&snap)),
        [addr(UDP_L, "1.2.3.4", 1234), addr(TCP_L, "", 0)]
    );
}

/// service_util_test.go "invalid listener proto errs": a listener of an unknown protocol
/// between two valid ones gets no address (upstream: an empty slot; here: no listener in the
/// config at all) and does not shift the others' addresses.
#[test]
fn public_address_skips_an_invalid_listener() {
    let listeners = "[{ name: gateway-1-listener-udp, port: 1, protocol: TURN-UDP }, { name: invalid, port: 3, protocol: dummy }, { name: gateway-1-listener-tcp, port: 2, protocol: TURN-TCP }]";
    let snap = with(
        &with_gateway("{}", listeners, ""),
        &test_svc(&format!("{RELATED}{OWNED}"), TEST_SVC_SPEC, TEST_SVC_STATUS),
    );
    assert_eq!(
        public(&run(&snap)),
        [addr(UDP_L, "1.2.3.4", 1), addr(TCP_L, "1.2.3.4", 2)]
    );
}

/// service_util_test.go "wrong port errs": the Service exposes 12 instead of the UDP
/// listener's port 1, so only the TCP listener has an address.
#[test]
fn public_address_needs_the_listener_port_on_the_service() {
    let spec = TEST_SVC_SPEC.replace("protocol: UDP, port: 1 }", "protocol: UDP, port: 12 }");
    assert_ne!(spec, TEST_SVC_SPEC);
    let snap = with(
        &testutils(),
        &test_svc(&format!("{RELATED}{OWNED}"), &spec, TEST_SVC_STATUS),
    );
    assert_eq!(
        public(&run(&snap)),
        [addr(UDP_L, "", 0), addr(TCP_L, "1.2.3.4", 2)]
    );
}

/// service_util_test.go "multiple service-ports public-ip ok": two ingresses, the first with
/// the UDP port's status only; each listener takes the ingress whose per-port status lists its
/// Service port.
#[test]
fn public_address_from_the_ingress_listing_the_port() {
    let status = "{ loadBalancer: { ingress: [{ ip: 1.2.3.4, ports: [{ port: 1, protocol: UDP }] }, { ip: 5.6.7.8, ports: [{ port: 1, protocol: UDP }, { port: 2, protocol: TCP }] }] } }";
    let snap = with(
        &testutils(),
        &test_svc(&format!("{RELATED}{OWNED}"), TEST_SVC_SPEC, status),
    );
    assert_eq!(
        public(&run(&snap)),
        [addr(UDP_L, "1.2.3.4", 1), addr(TCP_L, "5.6.7.8", 2)]
    );
}

/// service_util_test.go "nodeport IP OK": a NodePort Service (its stale load-balancer status
/// ignored) gives the node's ExternalIP with each port's NodePort.
#[test]
fn public_address_from_node_ports() {
    let spec = "{ type: NodePort, selector: { app: dummy }, ports: [{ name: udp-ok, protocol: UDP, port: 1, nodePort: 30001 }, { name: tcp-ok, protocol: TCP, port: 2, nodePort: 30002 }] }";
    let snap = with(
        &testutils(),
        &test_svc(&format!("{RELATED}{OWNED}"), spec, TEST_SVC_STATUS),
    );
    assert_eq!(
        public(&run(&snap)),
        [addr(UDP_L, "1.2.3.4", 30001), addr(TCP_L, "1.2.3.4", 30002)]
    );
}

/// service_util_test.go "svc type from svc annotation" (ClusterIP in the Gateway), "svc type
/// NodePort from gw annotation" and "nodeport svc override gwConf from svc annotation"
/// (ClusterIP in the GatewayConfig, NodePort in the Gateway): the Gateway's type wins and a
/// non-LoadBalancer Service gets no health-check port, even with the health-check annotations.
#[test]
fn lb_service_type_from_the_gateway_has_no_health_check_port() {
    let hc = "service.beta.kubernetes.io/do-loadbalancer-healthcheck-port: '8080', service.beta.kubernetes.io/do-loadbalancer-healthcheck-protocol: HTTP";
    let cases = [
        (
            format!("{{ stunner.l7mp.io/service-type: ClusterIP, {hc} }}"),
            None,
            "ClusterIP",
        ),
        (
            format!("{{ stunner.l7mp.io/service-type: NodePort, {hc} }}"),
            None,
            "NodePort",
        ),
        (
            "{ stunner.l7mp.io/service-type: NodePort }".to_owned(),
            Some(format!(
                "{{ stunner.l7mp.io/service-type: ClusterIP, {hc} }}"
            )),
            "NodePort",
        ),
    ];
    for (gw_ann, conf_ann, want) in cases {
        let mut snap = with_gateway(&gw_ann, TWO, "");
        if let Some(conf_ann) = &conf_ann {
            snap = with_lb_annotations(&snap, conf_ann);
        }
        let r = run(&snap);
        assert_eq!(svc_type(&r), want, "{gw_ann}");
        assert!(
            ports(&r)
                .iter()
                .all(|p| !(p.protocol.as_deref() == Some("TCP") && p.port == 8080)),
            "{gw_ann}: health-check port on a {want} Service"
        );
    }
}

/// The Gateway's own Service (`gateway-1`) as it lives in the cluster, with `annotations` and
/// `ports` (YAML flow), owned by the Gateway.
fn live_gateway_svc(annotations: &str, ports: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: gateway-1, namespace: testnamespace, annotations: {annotations}{OWNED} }}\nspec: {{ type: LoadBalancer, selector: {{ app: dummy }}, ports: {ports} }}\n"
    )
}

/// service_util_test.go "lb service - service nodeport/targetport retained": the live Service
/// has the UDP listener's port with nodePort 30001 and targetPort 1, and a foreign port
/// `dummy`. As upstream, the rendered ports are exactly the listeners' (mixed protocols on), in
/// listener order, and `dummy` is gone. Deliberate difference: upstream copies the live
/// nodePort/targetPort into what it writes; we render neither (no annotation asks for one) and
/// server-side apply leaves them to the API server, which keeps a port's allocated nodePort
/// when an update names none and defaults targetPort to the port.
#[test]
fn lb_service_ports_against_a_live_service() {
    let live = live_gateway_svc(
        "{ stunner.l7mp.io/related-gateway-name: testnamespace/gateway-1 }",
        "[{ name: gateway-1-listener-udp, protocol: UDP, port: 1, nodePort: 30001, targetPort: 1 }, { name: dummy, protocol: TCP, port: 123, nodePort: 31234, targetPort: dummy }]",
    );
    let snap = with(
        &with_gateway(
            "{ stunner.l7mp.io/enable-mixed-protocol-lb: 'true' }",
            TWO,
            "",
        ),
        &live,
    );
    let r = run(&snap);
    assert_eq!(svc_type(&r), "LoadBalancer");
    assert_eq!(
        port_summary(&r),
        [
            (UDP_L.to_string(), "UDP".to_string(), 1),
            (TCP_L.to_string(), "TCP".to_string(), 2)
        ]
    );
    for p in ports(&r) {
        assert_eq!(
            (p.node_port, p.target_port),
            (None, None),
            "{:?}: left to the API server",
            p.name
        );
    }
}

/// service_util_test.go "lb service - STUNner-specific annotation removed unless GW also sets
/// it": the rendered Service carries the Gateway's `stunner.l7mp.io/…` annotations (the
/// Gateway's value winning over the live Service's) and not the one only the live Service has.
/// We never read the live Service's annotations; with server-side apply, annotations another
/// manager set stay on the object (README), those we applied before and no longer render go.
#[test]
fn lb_service_stunner_annotations_come_from_the_gateway() {
    let etp = "stunner.l7mp.io/external-traffic-policy";
    let disabled = "stunner.l7mp.io/disable-managed-dataplane";
    let mixed = "stunner.l7mp.io/enable-mixed-protocol-lb";
    let nodeport = "stunner.l7mp.io/nodeport";
    let gw_ann = format!(
        "{{ {etp}: testpolicy, {disabled}: dummymanageddisabled, {mixed}: testmixedproto }}"
    );
    let live = live_gateway_svc(
        &format!("{{ {etp}: testpolicy, {disabled}: random, {nodeport}: testnodeport }}"),
        "[{ name: gateway-1-listener-udp, protocol: UDP, port: 1 }]",
    );
    let snap = with(&with_gateway(&gw_ann, TWO, ""), &live);
    let ann = svc(&run(&snap)).metadata.annotations.clone().unwrap();
    assert_eq!(ann[etp], "testpolicy", "valid in both");
    assert_eq!(
        ann[disabled], "dummymanageddisabled",
        "the Gateway overrides"
    );
    assert_eq!(ann[mixed], "testmixedproto", "only in the Gateway");
    assert!(!ann.contains_key(nodeport), "only on the live Service");
    assert_eq!(ann["stunner.l7mp.io/related-gateway-name"], GW);
}

/// test/managed_mode_test.go "should update config when the Dataplane changes" and "should
/// update the Deployment after the Dataplane changed": the Dataplane's image, command, args,
/// host network, health check (off), metrics endpoint (on) and pod labels/annotations (ours win
/// on conflict) reach the config and the Deployment; the metrics container port is upstream's
/// `metrics-port`, 8080/TCP.
#[test]
fn managed_deployment_after_dataplane_change() {
    let dp = "apiVersion: stunner.l7mp.io/v1\nkind: Dataplane\nmetadata: { name: default }\nspec:\n  replicas: 3\n  image: dummy-image\n  command: [dummy-command]\n  args: [arg-1, dummy-arg]\n  imagePullPolicy: Always\n  terminationGracePeriodSeconds: 60\n  resources: { limits: { memory: 10M }, requests: { cpu: 250m } }\n  hostNetwork: false\n  disableHealthCheck: true\n  enableMetricsEndpoint: true\n  labels: { dummy-label-key: dummy-value, app: conflicted-value }\n  annotations: { dummy-annotation-key: dummy-value, stunner.l7mp.io/related-gateway-name: conflicted-value }\n";
    let r = run(&with(&testutils(), dp));
    let c = config(&r, GW);
    assert_eq!(c.admin.metrics_endpoint, "http://:8080/metrics");
    assert_eq!(c.admin.healthcheck_endpoint.as_deref(), Some(""));
    assert_eq!(c.listeners.len(), 2);
    let l = &c.listeners[1];
    assert_eq!(
        (l.name.as_str(), l.protocol.to_string().as_str(), l.port),
        (
            "testnamespace/gateway-1/gateway-1-listener-tcp",
            "TURN-TCP",
            2
        )
    );

    let d = deployment(&r);
    let labels = d.metadata.labels.clone().unwrap();
    assert_eq!(labels["stunner.l7mp.io/owned-by"], "stunner");
    assert_eq!(labels["dummy-label"], "dummy-value");
    assert_eq!(
        d.metadata.annotations.clone().unwrap()["stunner.l7mp.io/related-gateway-name"],
        GW
    );
    let tpl = d.spec.clone().unwrap().template;
    let meta = tpl.metadata.unwrap();
    let pod_labels = meta.labels.unwrap();
    assert_eq!(pod_labels.len(), 4, "{pod_labels:?}");
    assert_eq!(pod_labels["app"], "stunner");
    assert_eq!(
        pod_labels["stunner.l7mp.io/related-gateway-name"],
        "gateway-1"
    );
    assert_eq!(
        pod_labels["stunner.l7mp.io/related-gateway-namespace"],
        "testnamespace"
    );
    assert_eq!(pod_labels["dummy-label-key"], "dummy-value");
    let pod_ann = meta.annotations.unwrap();
    assert_eq!(pod_ann.len(), 2, "{pod_ann:?}");
    assert_eq!(pod_ann["stunner.l7mp.io/related-gateway-name"], GW);
    assert_eq!(pod_ann["dummy-annotation-key"], "dummy-value");

    let pod = tpl.spec.unwrap();
    assert_eq!(pod.containers.len(), 1);
    let ctr = &pod.containers[0];
    assert_eq!(ctr.name, "stunner-daemon");
    assert_eq!(ctr.image.as_deref(), Some("dummy-image"));
    assert_eq!(ctr.command.as_ref().unwrap()[0], "dummy-command");
    assert_eq!(ctr.args.as_ref().unwrap()[1], "dummy-arg");
    assert_eq!(ctr.image_pull_policy.as_deref(), Some("Always"));
    let res = serde_json::to_value(ctr.resources.clone().unwrap()).unwrap();
    assert_eq!(
        res,
        serde_json::json!({"limits": {"memory": "10M"}, "requests": {"cpu": "250m"}})
    );
    let ports: Vec<_> = ctr
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.as_deref(), p.container_port, p.protocol.as_deref()))
        .collect();
    assert_eq!(ports, [(Some("metrics-port"), 8080, Some("TCP"))]);
    assert_eq!(pod.termination_grace_period_seconds, Some(60));
    assert_ne!(pod.host_network, Some(true));
    assert_eq!(pod.affinity, None);
}
