//! Render benchmark: 1,000 Gateways / 5,000 UDPRoutes (each with a backend Service and an
//! EndpointSlice). Run: `cargo test -p operator --release --test render_bench -- --ignored --nocapture`.

use std::time::Instant;

use operator::render::{RenderOptions, render};
use operator::store::Snapshot;

const GATEWAYS: usize = 1000;
const ROUTES_PER_GATEWAY: usize = 5;

fn cluster() -> Snapshot {
    let mut s = Snapshot::default();
    let base = std::fs::read_to_string(format!(
        "{}/tests/fixtures/common.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    s.apply_manifests(&base).unwrap();
    let mut y = String::new();
    for g in 0..GATEWAYS {
        let ns = format!("ns{}", g % 50);
        y.push_str(&format!("---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: gw{g}, namespace: {ns} }}\nspec:\n  gatewayClassName: stunner-gatewayclass\n  listeners: [{{ name: udp, port: 3478, protocol: TURN-UDP }}, {{ name: tcp, port: 3478, protocol: TURN-TCP }}]\n"));
        for r in 0..ROUTES_PER_GATEWAY {
            y.push_str(&format!("---\napiVersion: stunner.l7mp.io/v1\nkind: UDPRoute\nmetadata: {{ name: gw{g}-r{r}, namespace: {ns} }}\nspec:\n  parentRefs: [{{ name: gw{g} }}]\n  rules: [{{ backendRefs: [{{ name: svc{g}-{r}, port: 10000, endPort: 20000 }}] }}]\n"));
            y.push_str(&format!("---\napiVersion: v1\nkind: Service\nmetadata: {{ name: svc{g}-{r}, namespace: {ns} }}\nspec: {{ clusterIP: 10.96.{}.{} }}\n", g % 250, r + 1));
            y.push_str(&format!("---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{ name: svc{g}-{r}-x, namespace: {ns}, labels: {{ kubernetes.io/service-name: svc{g}-{r} }} }}\naddressType: IPv4\nendpoints: [{{ addresses: [10.244.{}.{}] }}, {{ addresses: [10.245.{}.{}] }}]\n", g % 250, r + 1, g % 250, r + 1));
        }
    }
    s.apply_manifests(&y).unwrap();
    s
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn render_1000_gateways_5000_routes() {
    let snap = cluster();
    assert_eq!(
        (snap.gateways.len(), snap.udp_routes.len()),
        (GATEWAYS, GATEWAYS * ROUTES_PER_GATEWAY)
    );
    let opts = RenderOptions::default();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let r = render(&snap, &opts);
        let secs = t.elapsed().as_secs_f64();
        best = best.min(secs);
        assert_eq!(r.configs.len(), GATEWAYS);
        assert_eq!(r.route_statuses.len(), GATEWAYS * ROUTES_PER_GATEWAY);
        assert!(
            r.configs
                .values()
                .all(|c| c.clusters.len() == ROUTES_PER_GATEWAY && c.listeners.len() == 2)
        );
    }
    println!(
        "render of {GATEWAYS} Gateways / {} routes: best of 3 = {:.1} ms",
        GATEWAYS * ROUTES_PER_GATEWAY,
        best * 1e3
    );
    assert!(best < 1.0, "render took {best:.3} s (target < 1 s)");
}
