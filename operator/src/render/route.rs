//! Route attachment and route status. A route attaches to a listener when one of its parentRefs
//! names the Gateway (group/kind/namespace/name) and, if given, the listener (`sectionName`,
//! `port`), and the listener's `allowedRoutes` admit the route's namespace (Same, All, Selector)
//! and kind. Route status keeps every parent entry written by other controllers.

use std::collections::BTreeMap;

use gateway_api::experimental::udproutes::{
    UdpRouteParentRefs, UdpRouteStatus, UdpRouteStatusParents, UdpRouteStatusParentsParentRef,
};
use gateway_api::gateways::{
    Gateway, GatewayListenersAllowedRoutesNamespacesFrom as From,
    GatewayListenersAllowedRoutesNamespacesSelector as Selector,
};

use super::context::Context;
use super::listener::{GATEWAY_GROUP, ListenerPlan};
use super::output::Rendered;
use super::routes::Route;
use super::status::{Cond, CondType, Reason, stamp};
use crate::store::ObjectKey;

/// Per route index: (parentRef index, Accepted condition) decided by Gateway renders.
pub(crate) type Outcomes = BTreeMap<usize, Vec<(usize, Cond)>>;

/// For each listener of `gw`, the indexes (into `ctx.routes`) of the routes attached to it; records
/// the Accepted outcome of every parentRef naming `gw` into `outcomes`.
pub(crate) fn attach_all(
    ctx: &Context<'_>,
    gw: &Gateway,
    plans: &[ListenerPlan<'_>],
    outcomes: &mut Outcomes,
) -> Vec<Vec<usize>> {
    let gw_key = ObjectKey::of(gw);
    let mut per_listener = vec![Vec::new(); plans.len()];
    for &ri in ctx.routes_by_gateway.get(&gw_key).into_iter().flatten() {
        let route = &ctx.routes[ri];
        for (pi, p) in route.spec.parent_refs.iter().flatten().enumerate() {
            if !names_gateway(p, route, &gw_key) {
                continue;
            }
            let cond = attach(ctx, plans, route, p, &mut per_listener, ri);
            outcomes.entry(ri).or_default().push((pi, cond));
        }
    }
    for list in &mut per_listener {
        list.sort_unstable();
        list.dedup();
    }
    per_listener
}

/// Records `Accepted=False/Pending` for every parentRef naming a Gateway that cannot be processed.
pub(crate) fn pending(ctx: &Context<'_>, gw: &Gateway, why: &str, outcomes: &mut Outcomes) {
    let gw_key = ObjectKey::of(gw);
    for &ri in ctx.routes_by_gateway.get(&gw_key).into_iter().flatten() {
        let route = &ctx.routes[ri];
        for (pi, p) in route.spec.parent_refs.iter().flatten().enumerate() {
            if names_gateway(p, route, &gw_key) {
                let cond = Cond::no(
                    CondType::Accepted,
                    Reason::Pending,
                    format!("parent Gateway not ready: {why}"),
                );
                outcomes.entry(ri).or_default().push((pi, cond));
            }
        }
    }
}

fn names_gateway(p: &UdpRouteParentRefs, route: &Route<'_>, gw: &ObjectKey) -> bool {
    matches!(p.group.as_deref(), None | Some(GATEWAY_GROUP))
        && matches!(p.kind.as_deref(), None | Some("Gateway"))
        && p.namespace.as_deref().unwrap_or(&route.key().namespace) == gw.namespace
        && p.name == gw.name
}

fn attach(
    ctx: &Context<'_>,
    plans: &[ListenerPlan<'_>],
    route: &Route<'_>,
    p: &UdpRouteParentRefs,
    per_listener: &mut [Vec<usize>],
    ri: usize,
) -> Cond {
    let mut matched = false;
    let mut accepted = false;
    for (li, plan) in plans.iter().enumerate() {
        let l = plan.spec;
        if p.section_name.as_ref().is_some_and(|s| *s != l.name)
            || p.port.is_some_and(|port| port != l.port)
        {
            continue;
        }
        matched = true;
        if plan.attachable() && namespace_allowed(ctx, plan, &route.key().namespace) {
            accepted = true;
            per_listener[li].push(ri);
        }
    }
    match (matched, accepted) {
        (_, true) => Cond::yes(
            CondType::Accepted,
            Reason::Accepted,
            "route accepted by the parent Gateway",
        ),
        (true, false) => Cond::no(
            CondType::Accepted,
            Reason::NotAllowedByListeners,
            "no listener of the parent Gateway allows this route",
        ),
        (false, _) => Cond::no(
            CondType::Accepted,
            Reason::NoMatchingParent,
            "no listener matches the parentRef sectionName/port",
        ),
    }
}

/// `allowedRoutes.namespaces` of a listener admits routes from `route_ns`.
fn namespace_allowed(ctx: &Context<'_>, plan: &ListenerPlan<'_>, route_ns: &str) -> bool {
    let gw_ns = plan.gateway_ns;
    let ns = plan
        .spec
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match ns.and_then(|n| n.from.as_ref()) {
        None | Some(From::Same) => route_ns == gw_ns,
        Some(From::All) => true,
        Some(From::Selector) => {
            let labels = ctx
                .snap
                .namespaces
                .get(&ObjectKey::new("", route_ns))
                .and_then(|n| n.metadata.labels.clone())
                .unwrap_or_default();
            ns.and_then(|n| n.selector.as_ref())
                .is_some_and(|s| selector_matches(s, &labels))
        }
    }
}

/// Label selector semantics (matchLabels AND matchExpressions In/NotIn/Exists/DoesNotExist).
pub(crate) fn selector_matches(s: &Selector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = s
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = s.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// Writes the status of every route that has (or had) a parent of ours.
pub(crate) fn statuses(ctx: &Context<'_>, outcomes: &Outcomes, out: &mut Rendered) {
    let ours = ctx.opts.controller_name.as_str();
    for (ri, route) in ctx.routes.iter().enumerate() {
        let decided = outcomes.get(&ri);
        let previous: &[UdpRouteStatusParents] = route
            .status
            .map(|s| s.parents.as_slice())
            .unwrap_or_default();
        let had_ours = previous.iter().any(|p| p.controller_name == ours);
        if decided.is_none() && !had_ours {
            continue;
        }
        let mut parents: Vec<UdpRouteStatusParents> = previous
            .iter()
            .filter(|p| p.controller_name != ours)
            .cloned()
            .collect();
        let refs: Vec<&UdpRouteParentRefs> = route.spec.parent_refs.iter().flatten().collect();
        for (pi, accepted) in decided.into_iter().flatten() {
            let Some(p) = refs.get(*pi) else { continue };
            let parent_ref = status_ref(p);
            if parents
                .iter()
                .any(|e| e.controller_name == ours && e.parent_ref == parent_ref)
            {
                continue;
            }
            let old = previous
                .iter()
                .find(|e| e.controller_name == ours && e.parent_ref == parent_ref);
            let conds = vec![accepted.clone(), resolved_refs(ctx, ri)];
            let prev_conds = old.map(|o| o.conditions.as_slice()).unwrap_or_default();
            parents.push(UdpRouteStatusParents {
                conditions: stamp(conds, prev_conds, route.generation, &ctx.opts.now),
                controller_name: ours.into(),
                parent_ref,
            });
        }
        out.route_statuses
            .insert(route.id.clone(), UdpRouteStatus { parents });
    }
}

fn resolved_refs(ctx: &Context<'_>, ri: usize) -> Cond {
    match &ctx.clusters[ri].resolved {
        Ok(()) => Cond::yes(
            CondType::ResolvedRefs,
            Reason::ResolvedRefs,
            "all backend references resolved",
        ),
        Err((reason, msg)) => Cond::no(CondType::ResolvedRefs, *reason, msg.clone()),
    }
}

fn status_ref(p: &UdpRouteParentRefs) -> UdpRouteStatusParentsParentRef {
    UdpRouteStatusParentsParentRef {
        group: p.group.clone(),
        kind: p.kind.clone(),
        name: p.name.clone(),
        namespace: p.namespace.clone(),
        port: p.port,
        section_name: p.section_name.clone(),
    }
}
