//! The pure renderer: one [`Snapshot`] in, everything the operator wants the cluster to look like
//! out ([`Rendered`]). No I/O, no clock (the time is an input), deterministic order.
//!
//! ```text
//!  Snapshot ─► Context (built in one go: routes with v1alpha2 masking, one cluster per route,
//!                        public addresses; ReferenceGrants checked by `grants`)
//!     for each GatewayClass with our controllerName ─► class::validate ─► GatewayConfig
//!        for each Gateway of the class ─► gateway::render ─► StunnerConfig, Deployment (+ ScaledObject
//!                                                            or HPA) or DaemonSet, Service, Gateway status
//!     route::statuses (parent entries of other controllers kept) ─► orphans (owned, not wanted)
//! ```
//!
//! Modules import downwards only (no cycles); this file wires them and owns nothing else. A
//! module uses only modules on a lower row or to its right on its own row:
//!
//! ```text
//!  4  gateway                        class     orphans
//!  3  route     autoscale     deployment
//!  2  context ─► cluster, address          (the per-render indexes)
//!  1  adopt ─► service ─► listener ─► grants
//!  0  output ─► routes, keda     options     keys     status     auth
//! ```

mod address;
mod adopt;
mod auth;
mod autoscale;
mod class;
mod cluster;
mod context;
mod deployment;
mod gateway;
mod grants;
pub mod keda;
pub mod keys;
mod listener;
mod options;
mod orphans;
mod output;
mod route;
mod routes;
mod service;
mod status;

use kube::ResourceExt;

use crate::store::Snapshot;

pub use adopt::CONTAINER_NAME;
pub use autoscale::{
    CONFIGURABLE_TOLERANCE, CONFIGURABLE_TOLERANCE_MINOR, FALLBACK_FAILURE_THRESHOLD,
    HPA_CPU_UTILIZATION, POLLING_INTERVAL_SECONDS, SCALE_DOWN_PERIOD_SECONDS,
    SCALE_DOWN_STABILIZATION_SECONDS, configurable_tolerance_by_default,
};
pub use deployment::{
    DEFAULT_TERMINATION_GRACE, DRAIN_GRACE_MARGIN, HEALTH_PORT, METRICS_PORT, METRICS_PORT_NAME,
};
pub use gateway::LISTENER_ADDRESS;
pub use keda::ScaledObject;
pub use options::{CONTROLLER_NAME, DEFAULT_CONFIG_ORIGIN, DEFAULT_LABEL_FILTER, RenderOptions};
pub use output::{OwnedKind, Rendered};
pub use routes::{RouteApi, RouteId};
pub use service::HEALTH_CHECK_PORT_NAME;

/// Renders a snapshot.
pub fn render(snap: &Snapshot, opts: &RenderOptions) -> Rendered {
    let ctx = context::Context::new(snap, opts);
    let mut out = Rendered::default();
    let mut outcomes = route::Outcomes::default();
    for gc in snap.gateway_classes.values() {
        if gc.spec.controller_name != opts.controller_name {
            continue;
        }
        let class = class::validate(snap, gc);
        out.gateway_class_statuses
            .insert(gc.name_any(), class::status(gc, &class, opts));
        for gw in snap.gateways.values() {
            if gw.spec.gateway_class_name != gc.name_any() {
                continue;
            }
            match &class {
                Ok(gwconf) => gateway::render(&ctx, gw, gwconf, &mut outcomes, &mut out),
                Err(e) => gateway::reject(&ctx, gw, e, &mut outcomes, &mut out),
            }
        }
    }
    route::statuses(&ctx, &outcomes, &mut out);
    orphans::find(snap, &mut out);
    out
}
