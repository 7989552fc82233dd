//! Gateway and listener status shape, observedGeneration and transition-time stability.

use crate::fixtures::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use operator::render::{RenderOptions, Rendered, render};
use operator::store::Snapshot;

#[test]
fn gateway_and_listener_conditions_on_success() {
    let r = run(&base());
    let k = "stunner/udp-gateway";
    assert_eq!(gw_cond(&r, k, "Accepted"), ok("Accepted"));
    assert_eq!(gw_cond(&r, k, "Programmed"), ok("Programmed"));
    for (t, want) in [
        ("Accepted", ok("Accepted")),
        ("Conflicted", no("NoConflicts")),
        ("ResolvedRefs", ok("ResolvedRefs")),
        ("Programmed", ok("Programmed")),
    ] {
        assert_eq!(l_cond(&r, k, "udp-listener", t), want, "{t}");
    }
    assert_eq!(attached(&r, k, "udp-listener"), 1);
    let l = &gw_status(&r, k).listeners.as_ref().unwrap()[0];
    let kinds: Vec<_> = l
        .supported_kinds
        .iter()
        .flatten()
        .map(|k| (k.group.clone().unwrap(), k.kind.clone()))
        .collect();
    assert!(kinds.contains(&("stunner.l7mp.io".into(), "UDPRoute".into())));
    assert!(kinds.contains(&("gateway.networking.k8s.io".into(), "UDPRoute".into())));
}

#[test]
fn observed_generation_set() {
    let r = run(&base());
    let st = gw_status(&r, "stunner/udp-gateway");
    assert!(
        st.conditions
            .iter()
            .flatten()
            .all(|c| c.observed_generation == Some(3))
    );
    let rs = &r.route_statuses[&stunner_route("stunner/media-plane")];
    assert!(
        rs.parents[0]
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(2))
    );
}

#[test]
fn route_status_conditions() {
    let r = run(&base());
    assert_eq!(base_route_cond(&r, "Accepted"), ok("Accepted"));
    assert_eq!(base_route_cond(&r, "ResolvedRefs"), ok("ResolvedRefs"));
    let p = &r.route_statuses[&stunner_route("stunner/media-plane")].parents[0];
    assert_eq!(p.controller_name, "stunner.l7mp.io/gateway-operator");
    assert_eq!(p.parent_ref.name, "udp-gateway");
}

fn at(secs: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
}

fn render_at(s: &Snapshot, secs: i64) -> Rendered {
    let opts = RenderOptions {
        now: at(secs),
        ..Default::default()
    };
    render(s, &opts)
}

/// Stores the base Gateway's status from `r` in `s`, as the updater would.
fn write_gateway_status(s: &mut Snapshot, r: &Rendered) {
    let mut gw = (*s.gateways[&key("stunner/udp-gateway")]).clone();
    gw.status = Some(r.gateway_statuses[&key("stunner/udp-gateway")].clone());
    s.gateways.insert(key("stunner/udp-gateway"), gw.into());
}

/// Feeding a render's statuses back in yields the same statuses at a later time: nothing to write.
#[test]
fn rerender_with_written_status_is_stable() {
    let mut s = base();
    let first = render_at(&s, 100);
    write_gateway_status(&mut s, &first);
    let mut route = (*s.udp_routes[&key("stunner/media-plane")]).clone();
    route.status = Some(first.route_statuses[&stunner_route("stunner/media-plane")].clone());
    s.udp_routes
        .insert(key("stunner/media-plane"), route.into());
    let mut gc = (*s.gateway_classes[&key("stunner-gatewayclass")]).clone();
    gc.status = Some(first.gateway_class_statuses["stunner-gatewayclass"].clone());
    s.gateway_classes
        .insert(key("stunner-gatewayclass"), gc.into());
    let second = render_at(&s, 200);
    assert_eq!(first.gateway_statuses, second.gateway_statuses);
    assert_eq!(first.route_statuses, second.route_statuses);
    assert_eq!(first.gateway_class_statuses, second.gateway_class_statuses);
}

#[test]
fn changed_condition_gets_new_transition_time() {
    let mut s = base();
    let first = render_at(&s, 100);
    write_gateway_status(&mut s, &first);
    s.services.remove(&key("stunner/udp-gateway"));
    let second = render_at(&s, 200);
    let conds = second.gateway_statuses[&key("stunner/udp-gateway")]
        .conditions
        .clone()
        .unwrap();
    let programmed = conds.iter().find(|c| c.type_ == "Programmed").unwrap();
    let accepted = conds.iter().find(|c| c.type_ == "Accepted").unwrap();
    assert_eq!(
        (programmed.status.as_str(), &programmed.last_transition_time),
        ("False", &at(200))
    );
    assert_eq!(accepted.last_transition_time, at(100));
}

#[test]
fn orphans_of_deleted_gateway() {
    let mut s = base_with(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: gone, namespace: stunner, labels: { stunner.l7mp.io/owned-by: stunner } }\nspec: { selector: {}, template: {} }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: users-own, namespace: stunner }\nspec: { selector: {}, template: {} }\n",
    );
    s.apply_manifests("apiVersion: v1\nkind: Service\nmetadata: { name: gone, namespace: stunner, labels: { stunner.l7mp.io/owned-by: stunner } }\n").unwrap();
    let r = run(&s);
    use operator::render::OwnedKind::*;
    assert_eq!(
        r.orphans,
        vec![
            (Deployment, key("stunner/gone")),
            (Service, key("stunner/gone"))
        ]
    );
}

#[test]
fn deleting_gateway_removes_its_config() {
    let mut s = base();
    s.gateways.clear();
    let r = run(&s);
    assert!(r.configs.is_empty());
    assert!(
        r.orphans
            .iter()
            .any(|(_, k)| *k == key("stunner/udp-gateway"))
    );
    // our stale route parent entry is dropped
    assert!(
        !r.route_statuses
            .contains_key(&stunner_route("stunner/media-plane"))
    );
}
