//! GatewayClass validation: its `parametersRef` must name an existing STUNner GatewayConfig.

use std::sync::Arc;

use gateway_api::gatewayclasses::{GatewayClass, GatewayClassStatus};

use super::options::RenderOptions;
use super::status::{Cond, CondType, Reason, stamp};
use crate::crd::{GROUP, GatewayConfig};
use crate::store::{ObjectKey, Snapshot};

/// Why a GatewayClass cannot be used (reported as `Accepted=False/InvalidParameters`).
pub(crate) type ClassError = String;

/// Finds the GatewayConfig a managed GatewayClass points to.
pub(crate) fn validate(
    snap: &Snapshot,
    gc: &GatewayClass,
) -> Result<Arc<GatewayConfig>, ClassError> {
    let Some(p) = &gc.spec.parameters_ref else {
        return Err("missing parametersRef".into());
    };
    if p.group != GROUP || p.kind != "GatewayConfig" {
        return Err(format!(
            "invalid parametersRef {}/{}: want {GROUP}/GatewayConfig",
            p.group, p.kind
        ));
    }
    let Some(ns) = p.namespace.as_deref().filter(|n| !n.is_empty()) else {
        return Err("parametersRef must specify a namespace".into());
    };
    let key = ObjectKey::new(ns, &p.name);
    snap.gateway_configs
        .get(&key)
        .cloned()
        .ok_or_else(|| format!("GatewayConfig {key} not found"))
}

/// The status of a managed GatewayClass.
pub(crate) fn status(
    gc: &GatewayClass,
    class: &Result<Arc<GatewayConfig>, ClassError>,
    opts: &RenderOptions,
) -> GatewayClassStatus {
    let cond = match class {
        Ok(conf) => Cond::yes(
            CondType::Accepted,
            Reason::Accepted,
            format!(
                "GatewayClass is now managed by controller {:?} (GatewayConfig {})",
                opts.controller_name,
                ObjectKey::of(conf.as_ref())
            ),
        ),
        Err(e) => Cond::no(CondType::Accepted, Reason::InvalidParameters, e.clone()),
    };
    let previous = gc
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    GatewayClassStatus {
        conditions: Some(stamp(
            vec![cond],
            &previous,
            gc.metadata.generation,
            &opts.now,
        )),
        supported_features: gc
            .status
            .as_ref()
            .and_then(|s| s.supported_features.clone()),
    }
}
