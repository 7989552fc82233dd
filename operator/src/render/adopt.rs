//! What lets the operator take over the dataplane objects upstream's operator (or an earlier
//! version of this one) created, instead of failing on them:
//!
//! - the pod selector, which Kubernetes never lets change: an existing object whose selector
//!   picks exactly this Gateway's pods keeps its selector verbatim, in whichever form it was
//!   written; a new one gets upstream's form (`matchExpressions` with `In`), so that going back
//!   to upstream works too;
//! - the container name `stunner-daemon` (upstream's): containers are merged by name, so another
//!   name would add a second stunnerd to an adopted pod;
//! - the pod annotation naming the Gateway, as upstream's pods carry it;
//! - upstream's label filter: Gateway labels that belong to GitOps tools (ArgoCD, Flux, kubectl
//!   applysets) are not copied onto the Deployment, or those tools would prune or fight over it
//!   (the keys: [`super::options::DEFAULT_LABEL_FILTER`]).

use std::collections::BTreeMap;

use gateway_api::gateways::Gateway;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::keys;
use super::service::selector as pod_labels;
use crate::store::ObjectKey;

/// Name of the stunnerd container, as upstream's operator names it.
pub const CONTAINER_NAME: &str = "stunner-daemon";

/// Upstream's selector of a Gateway's dataplane pods: `app`, gateway name and namespace, each
/// as an `In` expression with one value.
pub(crate) fn upstream_selector(gw: &Gateway) -> LabelSelector {
    let wanted = pod_labels(gw);
    let order = [
        keys::APP,
        keys::RELATED_GATEWAY_NAME,
        keys::RELATED_GATEWAY_NAMESPACE,
    ];
    let exprs = order
        .iter()
        .map(|k| LabelSelectorRequirement {
            key: (*k).to_owned(),
            operator: "In".into(),
            values: Some(vec![wanted.get(*k).cloned().unwrap_or_default()]),
        })
        .collect();
    LabelSelector {
        match_expressions: Some(exprs),
        match_labels: None,
    }
}

/// The selector to write: `existing` when it selects exactly this Gateway's pods, else
/// upstream's form.
pub(crate) fn selector(gw: &Gateway, existing: Option<&LabelSelector>) -> LabelSelector {
    match existing {
        Some(s) if as_equalities(s).as_ref() == Some(&pod_labels(gw)) => s.clone(),
        _ => upstream_selector(gw),
    }
}

/// A selector made only of equalities (`matchLabels`, or `In` with a single value) as a map;
/// None when it has any other requirement or two values for one key.
fn as_equalities(s: &LabelSelector) -> Option<BTreeMap<String, String>> {
    let mut out = s.match_labels.clone().unwrap_or_default();
    for e in s.match_expressions.iter().flatten() {
        let [value] = e.values.as_deref().unwrap_or_default() else {
            return None;
        };
        if e.operator != "In" || out.get(&e.key).is_some_and(|v| v != value) {
            return None;
        }
        out.insert(e.key.clone(), value.clone());
    }
    Some(out)
}

/// Adds upstream's pod annotation `stunner.l7mp.io/related-gateway-name: <ns>/<name>` (it wins
/// over a Dataplane annotation of the same key, as upstream's).
pub(crate) fn annotate_pods(tpl: &mut PodTemplateSpec, gw: &Gateway) {
    let meta = tpl.metadata.get_or_insert_default();
    meta.annotations.get_or_insert_default().insert(
        keys::RELATED_GATEWAY_NAME.into(),
        ObjectKey::of(gw).to_string(),
    );
}

/// Drops the `filter`ed keys from labels copied from a Gateway.
pub(crate) fn filter_labels(labels: &mut BTreeMap<String, String>, filter: &[String]) {
    labels.retain(|k, _| !filter.contains(k));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw() -> Gateway {
        serde_norway::from_str(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: n}\nspec: {gatewayClassName: c, listeners: []}\n",
        )
        .unwrap()
    }

    #[test]
    fn both_selector_forms_are_kept_and_others_replaced() {
        let g = gw();
        let upstream = upstream_selector(&g);
        assert_eq!(selector(&g, Some(&upstream)), upstream);
        let ours_before = LabelSelector {
            match_labels: Some(pod_labels(&g)),
            match_expressions: None,
        };
        assert_eq!(selector(&g, Some(&ours_before)), ours_before);
        let mut other = pod_labels(&g);
        other.insert("extra".into(), "x".into());
        let foreign = LabelSelector {
            match_labels: Some(other),
            match_expressions: None,
        };
        assert_eq!(selector(&g, Some(&foreign)), upstream);
        assert_eq!(selector(&g, None), upstream);
    }
}
