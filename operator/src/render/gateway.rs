//! One Gateway: its stunnerd config, Service, Deployment and status.

use std::collections::BTreeSet;

use gateway_api::gateways::{
    Gateway, GatewayStatus, GatewayStatusAddresses, GatewayStatusListeners,
    GatewayStatusListenersSupportedKinds,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use proto::config::{AdminConfig, ListenerConfig, StunnerConfig};

use super::address::PublicAddr;
use super::context::Context;
use super::listener::{self, GATEWAY_GROUP, ListenerPlan};
use super::output::Rendered;
use super::route::{self, Outcomes};
use super::status::{Cond, CondType, Reason, stamp};
use super::{adopt, auth, autoscale, deployment, keys, service};
use crate::crd::{Dataplane, DataplaneResourceType, GROUP, GatewayConfig};
use crate::store::ObjectKey;

/// Listener bind address: the pod IP, expanded by stunnerd from its environment.
pub const LISTENER_ADDRESS: &str = "$STUNNER_ADDR";

/// Renders a Gateway of a valid class.
pub(crate) fn render(
    ctx: &Context<'_>,
    gw: &Gateway,
    conf: &GatewayConfig,
    outcomes: &mut Outcomes,
    out: &mut Rendered,
) {
    let key = ObjectKey::of(gw);
    let plans = listener::plan(ctx.snap, gw);
    let attached = route::attach_all(ctx, gw, &plans, outcomes);
    let addrs = ctx.addresses.find(gw, &plans);
    let owner = owner_ref(gw);
    let dp_name = conf
        .spec
        .dataplane
        .clone()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "default".into());
    let dataplane = ctx.snap.dataplanes.get(&ObjectKey::new("", &dp_name));
    let managed = ctx.opts.managed_dataplane
        && !gw
            .annotations()
            .get(keys::DISABLE_MANAGED_DATAPLANE)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut problem = None;
    if managed && dataplane.is_none() {
        problem = Some(format!("Dataplane {dp_name:?} not found"));
    }
    match build_config(
        ctx,
        gw,
        conf,
        &plans,
        &attached,
        &addrs,
        dataplane.map(|d| &d.spec),
    ) {
        Ok(cfg) if problem.is_none() => {
            out.configs.insert(key.clone(), cfg);
        }
        Ok(_) => {}
        Err(e) => problem = Some(e),
    }
    let svc = service::render(gw, conf, &plans, &owner);
    // As upstream: no valid listener, no Service (the API server refuses one without ports).
    if svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|p| !p.is_empty())
    {
        out.services.push(svc);
    }
    if let (true, Some(dp)) = (managed, dataplane) {
        dataplane_objects(ctx, gw, dp, &owner, out);
    }
    let status = status(ctx, gw, &plans, &attached, &addrs, problem);
    out.gateway_statuses.insert(key, status);
}

/// The dataplane of a managed Gateway: a DaemonSet when the Dataplane asks for one (never
/// autoscaled), else a Deployment plus its autoscaler.
fn dataplane_objects(
    ctx: &Context<'_>,
    gw: &Gateway,
    dp: &Dataplane,
    owner: &OwnerReference,
    out: &mut Rendered,
) {
    let key = ObjectKey::of(gw);
    let filter = &ctx.opts.label_filter;
    if dp.spec.dataplane_resource == Some(DataplaneResourceType::DaemonSet) {
        let mut ds = deployment::render_daemon_set(gw, dp, ctx.opts, owner);
        let existing = ctx.snap.daemon_sets.get(&key);
        let existing = existing.and_then(|d| d.spec.as_ref()).map(|s| &s.selector);
        if let Some(spec) = ds.spec.as_mut() {
            spec.selector = adopt::selector(gw, existing);
        }
        adopt::filter_labels(ds.metadata.labels.get_or_insert_default(), filter);
        if let Some(spec) = ds.spec.as_mut() {
            adopt::annotate_pods(&mut spec.template, gw);
        }
        out.daemon_sets.push(ds);
        return;
    }
    let mut d = deployment::render(gw, dp, ctx.opts, owner);
    let existing = ctx.snap.deployments.get(&key);
    let existing = existing.and_then(|d| d.spec.as_ref()).map(|s| &s.selector);
    if let Some(spec) = d.spec.as_mut() {
        spec.selector = adopt::selector(gw, existing);
    }
    adopt::filter_labels(d.metadata.labels.get_or_insert_default(), filter);
    if let Some(spec) = d.spec.as_mut() {
        adopt::annotate_pods(&mut spec.template, gw);
    }
    out.deployments.push(d);
    if let Some(spec) = &dp.spec.autoscaling {
        autoscale::render(gw, spec, ctx.opts, owner, out);
    }
}

/// A Gateway whose class is invalid: nothing rendered, status says why.
pub(crate) fn reject(
    ctx: &Context<'_>,
    gw: &Gateway,
    why: &str,
    outcomes: &mut Outcomes,
    out: &mut Rendered,
) {
    route::pending(ctx, gw, why, outcomes);
    let previous = gw.status.as_ref();
    let generation = gw.metadata.generation;
    let now = &ctx.opts.now;
    let conds = vec![
        Cond::no(
            CondType::Accepted,
            Reason::InvalidParameters,
            format!("GatewayClass not accepted: {why}"),
        ),
        Cond::no(
            CondType::Programmed,
            Reason::Invalid,
            "GatewayClass not accepted",
        ),
    ];
    let listeners = gw
        .spec
        .listeners
        .iter()
        .map(|l| GatewayStatusListeners {
            attached_routes: 0,
            conditions: stamp(
                vec![
                    Cond::no(
                        CondType::Accepted,
                        Reason::Pending,
                        "GatewayClass not accepted",
                    ),
                    Cond::no(
                        CondType::Programmed,
                        Reason::Pending,
                        "GatewayClass not accepted",
                    ),
                ],
                prev_listener(previous, &l.name),
                generation,
                now,
            ),
            name: l.name.clone(),
            supported_kinds: Some(supported_kinds()),
        })
        .collect();
    let status = GatewayStatus {
        conditions: Some(stamp(conds, prev_conditions(previous), generation, now)),
        listeners: Some(listeners),
        ..Default::default()
    };
    out.gateway_statuses.insert(ObjectKey::of(gw), status);
}

fn build_config(
    ctx: &Context<'_>,
    gw: &Gateway,
    conf: &GatewayConfig,
    plans: &[ListenerPlan<'_>],
    attached: &[Vec<usize>],
    addrs: &[Option<PublicAddr>],
    dp: Option<&crate::crd::DataplaneSpec>,
) -> Result<StunnerConfig, String> {
    let key = ObjectKey::of(gw);
    report_unimplemented(&key, conf, dp);
    let auth = auth::render(ctx.snap, conf)?;
    let admin = AdminConfig {
        name: key.to_string(),
        loglevel: conf.spec.log_level.clone().unwrap_or_default(),
        metrics_endpoint: if dp.is_some_and(|d| d.enable_metrics_endpoint) {
            "http://:8080/metrics".into()
        } else {
            String::new()
        },
        healthcheck_endpoint: Some(if dp.is_some_and(|d| d.disable_health_check) {
            String::new()
        } else {
            "http://:8086".into()
        }),
        user_quota: conf
            .spec
            .user_quota
            .and_then(|q| u32::try_from(q).ok())
            .unwrap_or_default(),
    };
    // As upstream, a `stunner.l7mp.io/targetport` entry moves the listener itself to that port
    // (the Service's targetPort points there), so traffic is not black-holed.
    let targetports = service::port_map(&service::merged_annotations(gw, conf), keys::TARGETPORT);
    let mut listeners = Vec::new();
    let mut routed = BTreeSet::new();
    for (li, p) in plans.iter().enumerate() {
        let (Some(protocol), true) = (p.protocol, p.renderable()) else {
            continue;
        };
        let (cert, key_pem) = p.tls.clone().ok().flatten().unwrap_or_default();
        let addr = addrs.get(li).cloned().flatten();
        let routes = attached.get(li).map(Vec::as_slice).unwrap_or_default();
        routed.extend(routes.iter().copied());
        listeners.push(ListenerConfig {
            name: format!("{key}/{}", p.spec.name),
            protocol,
            public_address: addr.as_ref().map(|a| a.addr.clone()).unwrap_or_default(),
            public_port: addr.map(|a| a.port).unwrap_or_default(),
            address: LISTENER_ADDRESS.into(),
            port: u16::try_from(
                targetports
                    .get(&p.spec.name)
                    .copied()
                    .unwrap_or(p.spec.port),
            )
            .unwrap_or_default(),
            cert,
            key: key_pem,
            routes: routes
                .iter()
                .map(|ri| ctx.routes[*ri].key().to_string())
                .collect(),
        });
    }
    let clusters = routed
        .iter()
        .filter_map(|ri| ctx.clusters[*ri].config.clone())
        .collect();
    finalize(StunnerConfig {
        admin,
        auth,
        listeners,
        clusters,
        ..StunnerConfig::default()
    })
}

/// Logs the upstream features a Gateway asks for that are accepted but not implemented here
/// (upstream reserves them for its paid tiers): STUN-only mode and dataplane offload.
fn report_unimplemented(
    key: &ObjectKey,
    conf: &GatewayConfig,
    dp: Option<&crate::crd::DataplaneSpec>,
) {
    if conf.spec.stun_mode == Some(true) {
        tracing::warn!(gateway = %key, "GatewayConfig stunMode is not implemented: TURN stays enabled");
    }
    let offload = dp.and_then(|d| d.offload_engine.as_deref());
    if offload.is_some_and(|e| !e.eq_ignore_ascii_case("none")) {
        tracing::warn!(gateway = %key, engine = ?offload, "Dataplane offloadEngine is not implemented: ignored");
    }
}

/// Validates a copy (with the pod-IP placeholder replaced) and returns the defaulted config with
/// the placeholder kept, so stunnerd expands it from its own environment.
fn finalize(cfg: StunnerConfig) -> Result<StunnerConfig, String> {
    let mut checked = cfg;
    for l in &mut checked.listeners {
        l.address = "0.0.0.0".into();
    }
    checked
        .validate()
        .map_err(|e| format!("invalid dataplane config: {e}"))?;
    for l in &mut checked.listeners {
        l.address = LISTENER_ADDRESS.into();
    }
    Ok(checked)
}

fn status(
    ctx: &Context<'_>,
    gw: &Gateway,
    plans: &[ListenerPlan<'_>],
    attached: &[Vec<usize>],
    addrs: &[Option<PublicAddr>],
    problem: Option<String>,
) -> GatewayStatus {
    let previous = gw.status.as_ref();
    let (generation, now) = (gw.metadata.generation, &ctx.opts.now);
    let mut addresses: Vec<GatewayStatusAddresses> = Vec::new();
    for a in addrs.iter().flatten() {
        let entry = GatewayStatusAddresses {
            r#type: Some(a.kind.into()),
            value: a.addr.clone(),
        };
        if !addresses.contains(&entry) {
            addresses.push(entry);
        }
    }
    let programmed = match (&problem, addresses.is_empty()) {
        (Some(p), _) => Cond::no(CondType::Programmed, Reason::Invalid, p.clone()),
        (None, true) => Cond::no(
            CondType::Programmed,
            Reason::AddressNotAssigned,
            "public address pending",
        ),
        (None, false) => Cond::yes(
            CondType::Programmed,
            Reason::Programmed,
            "dataplane configuration successfully rendered",
        ),
    };
    let accepted = Cond::yes(
        CondType::Accepted,
        Reason::Accepted,
        format!(
            "gateway accepted by controller {:?}",
            ctx.opts.controller_name
        ),
    );
    let listeners = plans
        .iter()
        .enumerate()
        .map(|(li, p)| GatewayStatusListeners {
            attached_routes: i32::try_from(attached.get(li).map_or(0, Vec::len))
                .unwrap_or(i32::MAX),
            conditions: stamp(
                listener_conds(
                    p,
                    addrs.get(li).is_some_and(Option::is_some),
                    problem.is_some(),
                ),
                prev_listener(previous, &p.spec.name),
                generation,
                now,
            ),
            name: p.spec.name.clone(),
            supported_kinds: Some(supported_kinds()),
        })
        .collect();
    GatewayStatus {
        addresses: (!addresses.is_empty()).then_some(addresses),
        conditions: Some(stamp(
            vec![accepted, programmed],
            prev_conditions(previous),
            generation,
            now,
        )),
        listeners: Some(listeners),
        attached_listener_sets: previous.and_then(|s| s.attached_listener_sets),
    }
}

fn listener_conds(p: &ListenerPlan<'_>, has_addr: bool, gw_problem: bool) -> Vec<Cond> {
    let accepted = match (p.protocol, p.conflicted) {
        (None, _) => Cond::no(
            CondType::Accepted,
            Reason::UnsupportedProtocol,
            format!("unsupported protocol {:?}", p.spec.protocol),
        ),
        (Some(_), true) => Cond::no(
            CondType::Accepted,
            Reason::PortUnavailable,
            "port and transport already used by another listener",
        ),
        (Some(_), false) => Cond::yes(CondType::Accepted, Reason::Accepted, "listener accepted"),
    };
    let conflicted = if p.conflicted {
        Cond::yes(
            CondType::Conflicted,
            Reason::ProtocolConflict,
            "another listener uses the same port and transport",
        )
    } else {
        Cond::no(CondType::Conflicted, Reason::NoConflicts, "no conflicts")
    };
    let resolved = match (&p.tls, p.kinds_ok) {
        (Err(e), _) => Cond::no(CondType::ResolvedRefs, e.reason, e.message.clone()),
        (Ok(_), false) => Cond::no(
            CondType::ResolvedRefs,
            Reason::InvalidRouteKinds,
            "allowedRoutes.kinds admits no UDPRoute",
        ),
        (Ok(_), true) => Cond::yes(
            CondType::ResolvedRefs,
            Reason::ResolvedRefs,
            "listener object references resolved",
        ),
    };
    let programmed = match (p.renderable() && !gw_problem, has_addr) {
        (false, _) => Cond::no(
            CondType::Programmed,
            Reason::Invalid,
            "listener not rendered",
        ),
        (true, false) => Cond::no(
            CondType::Programmed,
            Reason::Pending,
            "public address pending",
        ),
        (true, true) => Cond::yes(
            CondType::Programmed,
            Reason::Programmed,
            "listener programmed",
        ),
    };
    vec![accepted, conflicted, resolved, programmed]
}

fn supported_kinds() -> Vec<GatewayStatusListenersSupportedKinds> {
    [GROUP, GATEWAY_GROUP]
        .into_iter()
        .map(|g| GatewayStatusListenersSupportedKinds {
            group: Some(g.into()),
            kind: "UDPRoute".into(),
        })
        .collect()
}

fn prev_conditions(
    s: Option<&GatewayStatus>,
) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
    s.and_then(|s| s.conditions.as_deref()).unwrap_or_default()
}

fn prev_listener<'a>(
    s: Option<&'a GatewayStatus>,
    name: &str,
) -> &'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
    s.and_then(|s| s.listeners.as_ref())
        .and_then(|ls| ls.iter().find(|l| l.name == name))
        .map(|l| l.conditions.as_slice())
        .unwrap_or_default()
}

/// The owner reference every object rendered for a Gateway carries.
pub(crate) fn owner_ref(gw: &Gateway) -> OwnerReference {
    OwnerReference {
        api_version: format!("{GATEWAY_GROUP}/v1"),
        kind: "Gateway".into(),
        name: gw.name_any(),
        uid: gw.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}
