//! ReferenceGrant checks (Gateway API GEP-709): a reference into another namespace holds only when
//! a ReferenceGrant in the *target* namespace lists the referrer (`from`: group, kind, namespace)
//! and the target (`to`: group, kind, optional name). Same-namespace references always hold.
//!
//! Used for a Gateway listener's TLS `certificateRefs` (always, as Gateway API requires) and for
//! route backendRefs only when [`super::options::RenderOptions::require_backend_grants`] is set: upstream
//! STUNner documents cross-namespace backends as allowed without a grant, which stays the default.

use gateway_api::referencegrants::ReferenceGrant;

use crate::store::{ObjectKey, Snapshot};

/// The referring object: API group (empty = core), kind and namespace.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Referrer<'a> {
    /// API group of the referrer.
    pub(crate) group: &'a str,
    /// Kind of the referrer.
    pub(crate) kind: &'a str,
    /// Namespace of the referrer.
    pub(crate) namespace: &'a str,
}

/// The referenced object.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'a> {
    /// API group of the target (empty = core).
    pub(crate) group: &'a str,
    /// Kind of the target.
    pub(crate) kind: &'a str,
    /// Namespace and name of the target.
    pub(crate) key: &'a ObjectKey,
}

/// Whether `from` may reference `to`.
pub(crate) fn permitted(snap: &Snapshot, from: Referrer<'_>, to: Target<'_>) -> bool {
    from.namespace == to.key.namespace
        || in_namespace(snap, &to.key.namespace).any(|g| grants(g, from, to))
}

/// The grants of one namespace (keys are ordered by namespace first).
fn in_namespace<'a>(snap: &'a Snapshot, ns: &'a str) -> impl Iterator<Item = &'a ReferenceGrant> {
    snap.reference_grants
        .range(ObjectKey::new(ns, "")..)
        .take_while(move |(k, _)| k.namespace == ns)
        .map(|(_, g)| g.as_ref())
}

fn grants(g: &ReferenceGrant, from: Referrer<'_>, to: Target<'_>) -> bool {
    let from_ok = g.spec.from.iter().any(|f| {
        core(&f.group) == core(from.group) && f.kind == from.kind && f.namespace == from.namespace
    });
    let to_ok = g.spec.to.iter().any(|t| {
        core(&t.group) == core(to.group)
            && t.kind == to.kind
            && t.name
                .as_deref()
                .is_none_or(|n| n.is_empty() || n == to.key.name)
    });
    from_ok && to_ok
}

/// The core group is spelled `""` (and, by some tools, `core`).
fn core(group: &str) -> &str {
    if group == "core" { "" } else { group }
}
