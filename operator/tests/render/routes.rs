//! Route attachment: parentRefs (namespace, sectionName, port, group/kind), allowedRoutes
//! namespaces (Same, All, Selector), v1alpha2 routes and masking, and route status.

use crate::fixtures::*;
use operator::render::{RouteApi, RouteId};

const BACKEND: &str = "[{ name: media-server, namespace: default }]";

fn ns(name: &str, labels: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {name}, labels: {labels} }}\n")
}

fn gw_from(from: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: udp-gateway, namespace: stunner }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners:\n    - {{ name: udp-listener, port: 3478, protocol: UDP, allowedRoutes: {{ namespaces: {from} }} }}\n"
    )
}

/// The base route with `parents` attaches (`attach`) or not, with Accepted reason `reason`.
fn parent_ref(parents: &str, attach: bool, reason: &str) {
    let r = run(&base_with(&route(
        "stunner",
        "media-plane",
        parents,
        BACKEND,
    )));
    assert_eq!(
        attached(&r, "stunner/udp-gateway", "udp-listener"),
        i32::from(attach)
    );
    let want = if attach { ok(reason) } else { no(reason) };
    assert_eq!(base_route_cond(&r, "Accepted"), want);
    assert_eq!(
        config(&r, "stunner/udp-gateway").clusters.len(),
        usize::from(attach)
    );
}

cases! { parent_ref {
    parent_by_name: ("[{ name: udp-gateway }]", true, "Accepted"),
    parent_with_namespace: ("[{ name: udp-gateway, namespace: stunner }]", true, "Accepted"),
    parent_with_section_name: ("[{ name: udp-gateway, sectionName: udp-listener }]", true, "Accepted"),
    parent_with_unknown_section: ("[{ name: udp-gateway, sectionName: other }]", false, "NoMatchingParent"),
    parent_with_port: ("[{ name: udp-gateway, port: 3478 }]", true, "Accepted"),
    parent_with_other_port: ("[{ name: udp-gateway, port: 3479 }]", false, "NoMatchingParent"),
    parent_with_section_and_port: (
        "[{ name: udp-gateway, sectionName: udp-listener, port: 3478 }]", true, "Accepted"),
    parent_with_explicit_group_kind: (
        "[{ name: udp-gateway, group: gateway.networking.k8s.io, kind: Gateway }]", true, "Accepted"),
}}

/// A parentRef that names something other than our Gateway: no attachment, no status.
fn foreign_parent(parents: &str) {
    let r = run(&base_with(&route(
        "stunner",
        "media-plane",
        parents,
        BACKEND,
    )));
    assert_eq!(attached(&r, "stunner/udp-gateway", "udp-listener"), 0);
    assert!(
        !r.route_statuses
            .contains_key(&stunner_route("stunner/media-plane"))
    );
    assert!(config(&r, "stunner/udp-gateway").clusters.is_empty());
}

cases! { foreign_parent {
    parent_of_foreign_group_ignored: ("[{ name: udp-gateway, group: example.com }]"),
    parent_of_kind_service_ignored: ("[{ name: udp-gateway, kind: Service }]"),
    parent_in_other_namespace_ignored: ("[{ name: udp-gateway, namespace: default }]"),
    parent_unknown_gateway_ignored: ("[{ name: other-gateway }]"),
}}

#[test]
fn section_name_selects_one_listener() {
    let s = base_with(&format!(
        "{}---\n{}",
        gateway("udp-gateway", &["a:3478:UDP", "b:3479:UDP"]),
        route(
            "stunner",
            "media-plane",
            "[{ name: udp-gateway, sectionName: b }]",
            BACKEND
        )
    ));
    let r = run(&s);
    assert!(routes(&r, "stunner/udp-gateway", "stunner/udp-gateway/a").is_empty());
    assert_eq!(
        routes(&r, "stunner/udp-gateway", "stunner/udp-gateway/b"),
        ["stunner/media-plane"]
    );
    assert_eq!(
        (
            attached(&r, "stunner/udp-gateway", "a"),
            attached(&r, "stunner/udp-gateway", "b")
        ),
        (0, 1)
    );
}

#[test]
fn route_without_section_attaches_to_every_listener() {
    let s = base_with(&gateway(
        "udp-gateway",
        &["a:3478:UDP", "b:3479:TCP", "c:3480:UDP"],
    ));
    let r = run(&s);
    for l in ["a", "b", "c"] {
        assert_eq!(attached(&r, "stunner/udp-gateway", l), 1, "{l}");
    }
    assert_eq!(config(&r, "stunner/udp-gateway").clusters.len(), 1);
}

#[test]
fn several_routes_sorted_on_listener() {
    let s = base_with(&format!(
        "{}---\n{}",
        route("stunner", "zz-route", "[{ name: udp-gateway }]", BACKEND),
        route("stunner", "aa-route", "[{ name: udp-gateway }]", BACKEND)
    ));
    let r = run(&s);
    assert_eq!(
        routes(
            &r,
            "stunner/udp-gateway",
            "stunner/udp-gateway/udp-listener"
        ),
        [
            "stunner/aa-route",
            "stunner/media-plane",
            "stunner/zz-route"
        ]
    );
    assert_eq!(attached(&r, "stunner/udp-gateway", "udp-listener"), 3);
    assert_eq!(config(&r, "stunner/udp-gateway").clusters.len(), 3);
}

#[test]
fn duplicate_parent_refs_count_once() {
    let s = base_with(&route(
        "stunner",
        "media-plane",
        "[{ name: udp-gateway }, { name: udp-gateway, sectionName: udp-listener }]",
        BACKEND,
    ));
    let r = run(&s);
    assert_eq!(attached(&r, "stunner/udp-gateway", "udp-listener"), 1);
    assert_eq!(
        routes(
            &r,
            "stunner/udp-gateway",
            "stunner/udp-gateway/udp-listener"
        )
        .len(),
        1
    );
    assert_eq!(
        r.route_statuses[&stunner_route("stunner/media-plane")]
            .parents
            .len(),
        2
    );
}

/// A listener with `allowedRoutes.namespaces: from` admits (`want`) a route in `route_ns` or not;
/// namespaces `team-a` {team: a, env: prod} and `team-b` {team: b} exist.
fn allowed_ns(from: &str, route_ns: &str, want: bool) {
    let parents = "[{ name: udp-gateway, namespace: stunner }]";
    let s = base_with(&format!(
        "{}---\n{}---\n{}---\n{}",
        ns("team-a", "{ team: a, env: prod }"),
        ns("team-b", "{ team: b }"),
        gw_from(from),
        route(route_ns, "r", parents, BACKEND)
    ));
    let r = run(&s);
    let id = stunner_route(&format!("{route_ns}/r"));
    let expect = if want {
        ok("Accepted")
    } else {
        no("NotAllowedByListeners")
    };
    assert_eq!(route_cond(&r, &id, "udp-gateway", "Accepted"), expect);
    let has = config(&r, "stunner/udp-gateway")
        .cluster(&format!("{route_ns}/r"))
        .is_some();
    assert_eq!(has, want);
}

const TEAM_A: &str = "{ from: Selector, selector: { matchLabels: { team: a } } }";
const IN_A_B: &str = "{ from: Selector, selector: { matchExpressions: [{ key: team, operator: In, values: [a, b] }] } }";
const NOT_IN_A: &str = "{ from: Selector, selector: { matchExpressions: [{ key: team, operator: NotIn, values: [a] }] } }";
const ENV_EXISTS: &str =
    "{ from: Selector, selector: { matchExpressions: [{ key: env, operator: Exists }] } }";
const NO_ENV: &str =
    "{ from: Selector, selector: { matchExpressions: [{ key: env, operator: DoesNotExist }] } }";
const A_AND_DEV: &str = "{ from: Selector, selector: { matchLabels: { team: a }, matchExpressions: [{ key: env, operator: In, values: [dev] }] } }";

cases! { allowed_ns {
    from_same_admits_own_namespace: ("{ from: Same }", "stunner", true),
    from_same_refuses_other_namespace: ("{ from: Same }", "team-a", false),
    from_default_is_same: ("{}", "team-a", false),
    from_all_admits_other_namespace: ("{ from: All }", "team-a", true),
    from_all_admits_own_namespace: ("{ from: All }", "stunner", true),
    selector_labels_admit: (TEAM_A, "team-a", true),
    selector_labels_refuse_other_team: (TEAM_A, "team-b", false),
    selector_refuses_unlabelled_namespace: (TEAM_A, "stunner", false),
    selector_in_admits: (IN_A_B, "team-b", true),
    selector_not_in_admits: (NOT_IN_A, "team-b", true),
    selector_not_in_refuses: (NOT_IN_A, "team-a", false),
    selector_exists_admits: (ENV_EXISTS, "team-a", true),
    selector_does_not_exist_refuses: (NO_ENV, "team-a", false),
    selector_does_not_exist_admits: (NO_ENV, "team-b", true),
    selector_labels_and_expressions_both_needed: (A_AND_DEV, "team-a", false),
    selector_missing_refuses: ("{ from: Selector }", "team-a", false),
    selector_unknown_namespace_refused: (ENV_EXISTS, "ghost", false),
}}

#[test]
fn cross_namespace_route_cluster_named_after_route_namespace() {
    let s = base_with(&format!(
        "{}---\n{}",
        gw_from("{ from: All }"),
        route(
            "team",
            "media",
            "[{ name: udp-gateway, namespace: stunner }]",
            "[{ name: media-server, namespace: default }]"
        )
    ));
    let r = run(&s);
    assert_eq!(
        endpoints(&r, "stunner/udp-gateway", "team/media"),
        endpoints(&r, "stunner/udp-gateway", "stunner/media-plane")
    );
}

fn v1a2(name: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: UDPRoute\nmetadata: {{ name: {name}, namespace: stunner }}\nspec:\n  parentRefs: [{{ name: udp-gateway }}]\n  rules: [{{ backendRefs: [{{ name: {backend}, namespace: default, port: 9001 }}] }}]\n"
    )
}

fn static_svc(name: &str, prefixes: &str) -> String {
    format!(
        "apiVersion: stunner.l7mp.io/v1\nkind: StaticService\nmetadata: {{ name: {name}, namespace: default }}\nspec: {{ prefixes: {prefixes} }}\n"
    )
}

#[test]
fn v1alpha2_route_attaches_and_ignores_port() {
    let r = run(&base_with(&v1a2("gwapi-route", "media-server")));
    let eps = endpoints(&r, "stunner/udp-gateway", "stunner/gwapi-route");
    assert!(eps.iter().all(|e| !e.contains(":<")), "{eps:?}");
    let id = RouteId {
        api: RouteApi::GatewayV1Alpha2,
        key: key("stunner/gwapi-route"),
    };
    assert_eq!(
        route_cond(&r, &id, "udp-gateway", "Accepted"),
        ok("Accepted")
    );
    assert_eq!(attached(&r, "stunner/udp-gateway", "udp-listener"), 2);
}

#[test]
fn stunner_route_masks_same_named_v1alpha2_route() {
    let s = base_with(&format!(
        "{}---\n{}",
        v1a2("media-plane", "other-backend"),
        static_svc("other-backend", "[1.1.1.1]")
    ));
    let r = run(&s);
    let eps = endpoints(&r, "stunner/udp-gateway", "stunner/media-plane");
    assert!(
        !eps.contains(&"1.1.1.1".to_string()),
        "v1alpha2 route must be masked: {eps:?}"
    );
    assert_eq!(attached(&r, "stunner/udp-gateway", "udp-listener"), 1);
    let id = RouteId {
        api: RouteApi::GatewayV1Alpha2,
        key: key("stunner/media-plane"),
    };
    assert!(!r.route_statuses.contains_key(&id));
}

#[test]
fn v1alpha2_route_with_static_service() {
    let s = base_with(&format!(
        "{}---\n{}",
        v1a2("gwapi-route", "ssvc").replace(
            "name: ssvc, namespace: default, port: 9001",
            "name: ssvc, namespace: default, group: stunner.l7mp.io, kind: StaticService"
        ),
        static_svc("ssvc", "[10.0.0.0/8]")
    ));
    assert_eq!(
        endpoints(&run(&s), "stunner/udp-gateway", "stunner/gwapi-route"),
        ["10.0.0.0/8"]
    );
}

#[test]
fn route_status_keeps_foreign_parents_and_drops_stale_own() {
    let yaml = r#"
apiVersion: stunner.l7mp.io/v1
kind: UDPRoute
metadata: { name: media-plane, namespace: stunner, generation: 7 }
spec:
  parentRefs: [{ name: udp-gateway }]
  rules: [{ backendRefs: [{ name: media-server, namespace: default }] }]
status:
  parents:
    - controllerName: example.com/other
      parentRef: { name: foreign-gw }
      conditions: [{ type: Accepted, status: "True", reason: Accepted, message: x, lastTransitionTime: "2024-01-01T00:00:00Z" }]
    - controllerName: stunner.l7mp.io/gateway-operator
      parentRef: { name: removed-gw }
      conditions: [{ type: Accepted, status: "True", reason: Accepted, message: x, lastTransitionTime: "2024-01-01T00:00:00Z" }]
"#;
    let r = run(&base_with(yaml));
    let st = &r.route_statuses[&stunner_route("stunner/media-plane")];
    let names: Vec<(&str, &str)> = st
        .parents
        .iter()
        .map(|p| (p.controller_name.as_str(), p.parent_ref.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("example.com/other", "foreign-gw"),
            ("stunner.l7mp.io/gateway-operator", "udp-gateway")
        ]
    );
    assert_eq!(st.parents[1].conditions[0].observed_generation, Some(7));
}

#[test]
fn route_of_no_managed_gateway_gets_no_status() {
    let s = base_with(&route("stunner", "lonely", "[{ name: nowhere }]", BACKEND));
    assert!(
        !run(&s)
            .route_statuses
            .contains_key(&stunner_route("stunner/lonely"))
    );
}

#[test]
fn route_attached_to_two_gateways() {
    let s = base_with(&format!(
        "{}---\n{}",
        gateway("gw2", &["l:4000:UDP"]),
        route(
            "stunner",
            "media-plane",
            "[{ name: udp-gateway }, { name: gw2 }]",
            BACKEND
        )
    ));
    let r = run(&s);
    assert_eq!(attached(&r, "stunner/gw2", "l"), 1);
    assert!(
        config(&r, "stunner/gw2")
            .cluster("stunner/media-plane")
            .is_some()
    );
    assert!(
        config(&r, "stunner/udp-gateway")
            .cluster("stunner/media-plane")
            .is_some()
    );
    assert_eq!(
        route_cond(&r, &stunner_route("stunner/media-plane"), "gw2", "Accepted"),
        ok("Accepted")
    );
}

#[test]
fn route_to_unsupported_listener_not_allowed() {
    let s = base_with(&gateway("udp-gateway", &["bad:3478:HTTP"]));
    let r = run(&s);
    assert_eq!(base_route_cond(&r, "Accepted"), no("NotAllowedByListeners"));
}
