//! Orphans: objects labelled `stunner.l7mp.io/owned-by=stunner` that no Gateway rendered this time
//! (the Gateway was deleted, lost its class, disabled its managed dataplane, or its Dataplane lost
//! `autoscaling`; the HPA is also orphaned when KEDA appears and the ScaledObject when it goes).
//!
//! Autoscalers additionally need a Gateway owner reference: KEDA copies a ScaledObject's labels
//! onto the HPA it creates (owned by the ScaledObject), and that HPA is KEDA's, not ours.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use super::keys;
use super::output::{OwnedKind, Rendered};
use crate::store::{ObjectKey, Objects, Snapshot};

fn owned(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(keys::OWNED_BY))
        .is_some_and(|v| v == keys::OWNED_BY_VALUE)
}

fn gateway_owned(meta: &ObjectMeta) -> bool {
    owned(meta)
        && meta
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Gateway")
}

/// Keys of `have` that pass `ours` but are not in `wanted`.
fn unwanted<'a, K: Resource + 'a>(
    have: &'a Objects<K>,
    wanted: impl Iterator<Item = &'a ObjectMeta>,
    ours: fn(&ObjectMeta) -> bool,
) -> impl Iterator<Item = ObjectKey> + 'a {
    let wanted: BTreeSet<ObjectKey> = wanted.map(ObjectKey::from_meta).collect();
    have.iter()
        .filter(move |(k, o)| ours(o.meta()) && !wanted.contains(*k))
        .map(|(k, _)| k.clone())
}

/// Appends every owned object not in the render output to `out.orphans`.
pub(crate) fn find(snap: &Snapshot, out: &mut Rendered) {
    let mut orphans = Vec::new();
    let deployments = out.deployments.iter().map(|d| &d.metadata);
    orphans.extend(
        unwanted(&snap.deployments, deployments, owned).map(|k| (OwnedKind::Deployment, k)),
    );
    let daemon_sets = out.daemon_sets.iter().map(|d| &d.metadata);
    orphans
        .extend(unwanted(&snap.daemon_sets, daemon_sets, owned).map(|k| (OwnedKind::DaemonSet, k)));
    let services = out.services.iter().map(|s| &s.metadata);
    orphans.extend(unwanted(&snap.services, services, owned).map(|k| (OwnedKind::Service, k)));
    let scaled = out.scaled_objects.iter().map(|s| &s.metadata);
    orphans.extend(
        unwanted(&snap.scaled_objects, scaled, gateway_owned).map(|k| (OwnedKind::ScaledObject, k)),
    );
    let hpas = out.hpas.iter().map(|h| &h.metadata);
    orphans.extend(
        unwanted(&snap.hpas, hpas, gateway_owned).map(|k| (OwnedKind::HorizontalPodAutoscaler, k)),
    );
    out.orphans.extend(orphans);
}
