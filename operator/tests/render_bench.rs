//! Render benchmark: 1,000 Gateways / 5,000 UDPRoutes (each with a backend Service and an
//! EndpointSlice). Run: `cargo test -p operator --release --test render_bench -- --ignored --nocapture
//! --test-threads=1` (one case at a time, or they share the CPUs).
//! A second case puts every backend in another namespace and enforces ReferenceGrants (one per
//! backend namespace), to measure the cost of the grant checks.

use std::time::Instant;

use operator::render::{RenderOptions, render};
use operator::store::Snapshot;

const GATEWAYS: usize = 1000;
const ROUTES_PER_GATEWAY: usize = 5;

/// Namespaces the Gateways (and routes) are spread over.
const NAMESPACES: usize = 50;

/// The benchmark cluster; with `cross`, backends live in `b<ns>` and a ReferenceGrant there
/// permits the routes of `<ns>`.
fn cluster(cross: bool) -> Snapshot {
    let mut s = Snapshot::default();
    let base = std::fs::read_to_string(format!(
        "{}/tests/fixtures/common.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    s.apply_manifests(&base).unwrap();
    let mut y = String::new();
    for n in (0..NAMESPACES).filter(|_| cross) {
        y.push_str(&format!("---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{ name: routes, namespace: bns{n} }}\nspec: {{ from: [{{ group: stunner.l7mp.io, kind: UDPRoute, namespace: ns{n} }}], to: [{{ group: '', kind: Service }}] }}\n"));
    }
    for g in 0..GATEWAYS {
        let ns = format!("ns{}", g % NAMESPACES);
        let bns = if cross { format!("b{ns}") } else { ns.clone() };
        y.push_str(&format!("---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: gw{g}, namespace: {ns} }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners: [{{ name: udp, port: 3478, protocol: TURN-UDP }}, {{ name: tcp, port: 3478, protocol: TURN-TCP }}]\n"));
        for r in 0..ROUTES_PER_GATEWAY {
            y.push_str(&format!("---\napiVersion: stunner.l7mp.io/v1\nkind: UDPRoute\nmetadata: {{ name: gw{g}-r{r}, namespace: {ns} }}\nspec:\n  parentRefs: [{{ name: gw{g} }}]\n  rules: [{{ backendRefs: [{{ name: svc{g}-{r}, namespace: {bns}, port: 10000, endPort: 20000 }}] }}]\n"));
            y.push_str(&format!("---\napiVersion: v1\nkind: Service\nmetadata: {{ name: svc{g}-{r}, namespace: {bns} }}\nspec: {{ clusterIP: 10.96.{}.{} }}\n", g % 250, r + 1));
            y.push_str(&format!("---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: svc{g}-{r}-x, namespace: {bns}, labels: {{ kubernetes.io/service-name: svc{g}-{r} }} }}\naddressType: IPv4\nendpoints: [{{ addresses: [10.244.{}.{}] }}, {{ addresses: [10.245.{}.{}] }}]\n", g % 250, r + 1, g % 250, r + 1));
        }
    }
    s.apply_manifests(&y).unwrap();
    s
}

/// Best of 3 renders of `snap`, checking every Gateway got its config and clusters.
fn best_of_3(snap: &Snapshot, opts: &RenderOptions) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let r = render(snap, opts);
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(r.configs.len(), GATEWAYS);
        assert_eq!(r.route_statuses.len(), GATEWAYS * ROUTES_PER_GATEWAY);
        assert!(
            r.configs
                .values()
                .all(|c| c.clusters.len() == ROUTES_PER_GATEWAY && c.listeners.len() == 2)
        );
    }
    best
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn render_1000_gateways_5000_routes() {
    let snap = cluster(false);
    assert_eq!(
        (snap.gateways.len(), snap.udp_routes.len()),
        (GATEWAYS, GATEWAYS * ROUTES_PER_GATEWAY)
    );
    let best = best_of_3(&snap, &RenderOptions::default());
    println!(
        "render of {GATEWAYS} Gateways / {} routes: best of 3 = {:.1} ms",
        GATEWAYS * ROUTES_PER_GATEWAY,
        best * 1e3
    );
    assert!(best < 1.0, "render took {best:.3} s (target < 1 s)");
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn render_with_cross_namespace_backends_and_grants() {
    let snap = cluster(true);
    assert_eq!(snap.reference_grants.len(), NAMESPACES);
    let opts = RenderOptions {
        require_backend_grants: true,
        ..RenderOptions::default()
    };
    let best = best_of_3(&snap, &opts);
    println!(
        "render of {GATEWAYS} Gateways / {} cross-namespace routes, grants enforced: best of 3 = {:.1} ms",
        GATEWAYS * ROUTES_PER_GATEWAY,
        best * 1e3
    );
    assert!(best < 1.0, "render took {best:.3} s (target < 1 s)");
}
