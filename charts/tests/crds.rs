//! The CRD upgrade story, rendered both ways. Helm installs `crds/` on the first install and
//! never upgrades it; by default users run `kubectl apply --server-side -f crds/` before an
//! upgrade. With `crds.templates=true` the same CRDs are rendered as templates (installed with
//! `--skip-crds`), so `helm upgrade` carries them, with a keep policy so `helm uninstall` never
//! deletes them (and with them every custom resource).

mod common;

use charts::of_kind;
use common::chart;
use serde_norway::Value;

fn by_name(docs: &[Value]) -> Vec<(String, Value)> {
    let mut crds: Vec<(String, Value)> = of_kind(docs, "CustomResourceDefinition")
        .into_iter()
        .map(|c| {
            (
                c["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                (*c).clone(),
            )
        })
        .collect();
    crds.sort_by(|a, b| a.0.cmp(&b.0));
    crds
}

#[test]
fn crds_come_from_crds_dir_by_default_and_are_not_templates() {
    assert!(
        by_name(&chart(&[])).is_empty(),
        "no CRD among the templates by default"
    );
    let installed = by_name(&chart(&["--include-crds"]));
    assert_eq!(
        installed.len(),
        4,
        "{:?}",
        installed.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
}

#[test]
fn crds_as_templates_are_the_same_crds_kept_on_uninstall() {
    let from_dir = by_name(&chart(&["--include-crds"]));
    let templated = by_name(&chart(&["--set", "crds.templates=true"]));
    assert_eq!(
        from_dir.iter().map(|c| &c.0).collect::<Vec<_>>(),
        templated.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    for ((name, plain), (_, tpl)) in from_dir.iter().zip(&templated) {
        assert_eq!(
            plain["spec"], tpl["spec"],
            "{name}: the templated schema differs from crds/"
        );
        let meta = &tpl["metadata"];
        assert_eq!(
            meta["annotations"]["helm.sh/resource-policy"].as_str(),
            Some("keep"),
            "{name}"
        );
        assert_eq!(
            meta["labels"]["app.kubernetes.io/managed-by"].as_str(),
            Some("Helm")
        );
    }
}
