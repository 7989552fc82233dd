//! The credential service end to end: Gateway API objects rendered in-process by the operator's
//! renderer, published on the operator's real CDS server (loopback), followed by `stunner-auth`
//! (in-process, over the CDS WebSocket), and a real stunnerd process watching the same CDS
//! server. Credentials from `/ice` must allocate on stunnerd, an expired one must be refused,
//! a deleted Gateway must leave `/ice` at once, and the JSON must pass upstream's schema; a
//! browser-style WebRTC client (aiortc) must relay a data channel with what `/ice` hands out.
//!
//! Needs the stunnerd and turncat binaries of the same profile: `cargo build -p stunnerd --bins`
//! and `cargo build -p loadtest --bin turncat`; and aiortc in `.tools/venv`: `scripts/setup.sh`.
//!
//! ```text
//!   Snapshot ─render─▶ ConfigStore ─▶ CDS server ─┬─▶ stunner-auth (in-process) ◀── GET /ice
//!                                                 ├─▶ stunnerd process            ◀── TURN, /status, /drain
//!                                                 └─▶ stunnerctl (in-process)
//! ```

mod service;
mod stunnerctl;
mod turncat;
mod webrtc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use operator::cds::{ConfigSet, ConfigStore, serve as serve_cds};
use operator::render::{RenderOptions, render};
use operator::store::{ObjectKey, Snapshot};
use proto::auth::IceConfig;
use serde_json::Value;
use stunner_auth::ServiceOptions;
use stunner_auth::cds::CdsClient;
use testkit::free_port;
use testkit::http::{get, request};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// The shared secret of the GatewayConfig below.
pub(crate) const SECRET: &str = "auth-test-secret";

/// GatewayClass, GatewayConfig with ephemeral (TURN REST) auth, the default Dataplane, a
/// StaticService for the echo peer on 127.0.0.1 and a route from both Gateways to it.
const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: stunner }
spec:
  controllerName: stunner.l7mp.io/gateway-operator
  parametersRef: { group: stunner.l7mp.io, kind: GatewayConfig, name: config, namespace: default }
---
apiVersion: stunner.l7mp.io/v1
kind: GatewayConfig
metadata: { name: config, namespace: default }
spec: { realm: stunner.l7mp.io, authType: ephemeral, sharedSecret: auth-test-secret }
---
apiVersion: stunner.l7mp.io/v1
kind: Dataplane
metadata: { name: default }
spec: { image: l7mp/stunnerd }
---
apiVersion: stunner.l7mp.io/v1
kind: StaticService
metadata: { name: peers, namespace: default }
spec: { prefixes: [127.0.0.1/32] }
---
apiVersion: stunner.l7mp.io/v1
kind: UDPRoute
metadata: { name: peers, namespace: default }
spec:
  parentRefs: [{ name: gw }, { name: other }]
  rules: [{ backendRefs: [{ group: stunner.l7mp.io, kind: StaticService, name: peers }] }]
"#;

/// Gateway `default/<name>` with one listener, and the LoadBalancer Service the operator would
/// have made for it, whose status gives the public address 127.0.0.1 and `port`.
fn gateway(name: &str, listener: &str, protocol: &str, port: u16) -> String {
    let svc_proto = if protocol == "TURN-UDP" { "UDP" } else { "TCP" };
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{ name: {name}, namespace: default }}\nspec: {{ gatewayClassName: stunner, listeners: [{{ name: {listener}, port: {port}, protocol: {protocol} }}] }}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{ stunner.l7mp.io/owned-by: stunner }}\n  annotations: {{ stunner.l7mp.io/related-gateway-name: default/{name} }}\nspec:\n  type: LoadBalancer\n  ports: [{{ name: {listener}, port: {port}, protocol: {svc_proto} }}]\nstatus: {{ loadBalancer: {{ ingress: [{{ ip: 127.0.0.1 }}] }} }}\n"
    )
}

/// Everything under test, torn down on drop.
pub(crate) struct Harness {
    pub(crate) rt: Runtime,
    pub(crate) store: ConfigStore,
    pub(crate) snap: Snapshot,
    pub(crate) health: u16,
    pub(crate) turn: u16,
    pub(crate) auth: SocketAddr,
    pub(crate) stop: CancellationToken,
    /// Killed first on drop, before CDS goes away.
    stunnerd: Option<Stunnerd>,
    /// `host:port` of the CDS server.
    pub(crate) cds: String,
}

impl Harness {
    pub(crate) fn start(token: Option<&str>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (turn, other, health) = (free_port(), free_port(), free_port());
        let mut snap = Snapshot::default();
        snap.apply_manifests(BASE).expect("base");
        snap.apply_manifests(&gateway("gw", "udp", "TURN-UDP", turn))
            .expect("gw");
        snap.apply_manifests(&gateway("other", "tcp", "TURN-TCP", other))
            .expect("other");
        let store = ConfigStore::new();
        store.publish(rendered(&snap, health));
        let stop = CancellationToken::new();
        let cds = bind(&rt);
        let cds_addr = cds.local_addr().expect("cds addr");
        let cds_url = cds_addr.to_string();
        rt.spawn(serve_cds(cds, store.clone(), stop.clone()));
        let auth_listener = bind(&rt);
        let auth = auth_listener.local_addr().expect("auth addr");
        let opts = ServiceOptions {
            cds: CdsClient::new(&cds_addr.to_string()).expect("cds client"),
            token: token.map(str::to_owned),
            public_addr: None,
        };
        rt.spawn(stunner_auth::serve(auth_listener, opts, stop.clone()));
        let stunnerd = Stunnerd::spawn(cds_addr, "default/gw");
        let h = Self {
            rt,
            store,
            snap,
            health,
            turn,
            auth,
            stop,
            stunnerd: Some(stunnerd),
            cds: cds_url,
        };
        h.wait_ready();
        h
    }

    fn wait_ready(&self) {
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            let auth_ready = self.http("/readyz", &[]).0 == 200;
            if auth_ready && get(self.health, "/ready").0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("stunnerd or stunner-auth not ready within 15 s");
    }

    pub(crate) fn http(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        request(self.auth, "GET", path, headers)
    }

    /// `GET path` that must answer 200 with JSON.
    pub(crate) fn json(&self, path: &str) -> Value {
        let (code, body) = self.http(path, &[]);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    pub(crate) fn ice(&self, query: &str) -> IceConfig {
        serde_json::from_value(self.json(&format!("/ice{query}"))).expect("IceConfig")
    }

    /// stunnerd's allocation count from `/status`.
    pub(crate) fn json_status(&self) -> u64 {
        let (code, body) = get(self.health, "/status");
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("status json");
        v["allocationCount"].as_u64().expect("allocationCount")
    }

    pub(crate) fn delete_gateway(&mut self, name: &str) {
        let key = ObjectKey::new("default", name);
        self.snap.gateways.remove(&key).expect("gateway present");
        assert!(self.store.publish(rendered(&self.snap, self.health)));
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        drop(self.stunnerd.take());
        self.stop.cancel();
        let _ = &self.rt;
    }
}

fn bind(rt: &Runtime) -> tokio::net::TcpListener {
    rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind")
}

/// The renderer's configs, with the health endpoint moved from the pod's fixed `:8086` to a free
/// loopback port (the test shares the host).
fn rendered(snap: &Snapshot, health: u16) -> ConfigSet {
    let mut set = render(snap, &RenderOptions::default()).configs;
    for c in set.values_mut() {
        c.admin.healthcheck_endpoint = Some(format!("http://127.0.0.1:{health}"));
    }
    set
}

/// A binary of the workspace next to this test executable (`target/<profile>/<name>`).
pub(crate) fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(name))
        .expect("target dir");
    assert!(
        bin.is_file(),
        "{} missing: build it first: cargo build -p stunnerd --bins; cargo build -p loadtest --bin turncat",
        bin.display()
    );
    bin
}

/// A stunnerd watching CDS as Gateway `id`, pod IP 127.0.0.1; killed on drop.
pub(crate) struct Stunnerd {
    child: Child,
}

/// The admin token the test stunnerd requires for `POST`/`DELETE /drain`.
pub(crate) const ADMIN_TOKEN: &str = "auth-e2e-token";

impl Stunnerd {
    fn spawn(cds: SocketAddr, id: &str) -> Self {
        let child = Command::new(bin("stunnerd"))
            .args([
                "-w",
                "-c",
                &format!("http://{cds}"),
                "--id",
                id,
                "-l",
                "all:WARN",
                "--admin-token",
                ADMIN_TOKEN,
            ])
            .env("NO_COLOR", "1")
            .env("STUNNER_ADDR", "127.0.0.1")
            .spawn()
            .expect("spawn stunnerd");
        Self { child }
    }
}

impl Drop for Stunnerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
