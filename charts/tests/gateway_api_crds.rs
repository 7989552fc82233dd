//! The Gateway API CRDs the chart can install (`gatewayAPI.installCRDs=true`, off by default):
//! GatewayClass, Gateway and ReferenceGrant, generated from the `gateway-api` crate's types the
//! operator is built on, so they declare every field the operator reads. The committed file must
//! equal the generated one (`UPDATE_GATEWAY_API_CRDS=1 cargo test -p charts --test
//! gateway_api_crds` rewrites it), and the chart renders it only when asked, kept on uninstall.

mod common;

use charts::{chart_path, of_kind};
use common::{CHART, chart};
use kube::CustomResourceExt;

const FILE: &str = "files/gateway-api-crds.yaml";

fn generated() -> String {
    let crds = [
        gateway_api::gatewayclasses::GatewayClass::crd(),
        gateway_api::gateways::Gateway::crd(),
        gateway_api::referencegrants::ReferenceGrant::crd(),
    ];
    let mut out = String::from(
        "# Generated from the gateway-api crate's types by charts/tests/gateway_api_crds.rs; do not edit.\n",
    );
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd).expect("crd yaml"));
    }
    out
}

#[test]
fn committed_crds_match_the_types() {
    let path = chart_path(CHART).join(FILE);
    let want = generated();
    if std::env::var_os("UPDATE_GATEWAY_API_CRDS").is_some() {
        std::fs::write(&path, &want).expect("write");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{FILE} is stale: UPDATE_GATEWAY_API_CRDS=1 cargo test -p charts --test gateway_api_crds"
    );
}

#[test]
fn crds_render_only_when_asked_and_are_kept() {
    let none = chart(&[]);
    assert!(of_kind(&none, "CustomResourceDefinition").is_empty());
    let docs = chart(&["--set", "gatewayAPI.installCRDs=true"]);
    let crds = of_kind(&docs, "CustomResourceDefinition");
    let mut names: Vec<&str> = crds
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "gatewayclasses.gateway.networking.k8s.io",
            "gateways.gateway.networking.k8s.io",
            "referencegrants.gateway.networking.k8s.io",
        ]
    );
    for c in crds {
        assert_eq!(
            c["metadata"]["annotations"]["helm.sh/resource-policy"].as_str(),
            Some("keep")
        );
    }
}
