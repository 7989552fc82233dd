//! The controller's render loop end to end against a mocked API server (`tower_test::mock::pair`):
//! a snapshot source the test edits stands in for the reflectors, and a tiny in-memory API server
//! answers the updater (server-side apply, status read-modify-write, deletes) and logs every
//! request, which the tests then assert (`APPLY` in the log: a PATCH that is a forced
//! server-side apply by the operator's field manager). The CDS side is read through the CDS HTTP router.
//!
//! ```text
//!  test edits Snapshot ─trigger─► RenderLoop ─► render ─► ConfigStore ─► cds::router (GET)
//!                                                      └► Updater ─► FakeApi (log, objects)
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use operator::cds::{ConfigStore, router};
use operator::controller::{FIELD_MANAGER, RenderLoop, SnapshotSource, Updater};
use operator::render::RenderOptions;
use operator::store::Snapshot;
use proto::config::StunnerConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
const LIMIT: Duration = Duration::from_secs(10);
const CTL: &str = "stunner.l7mp.io/gateway-operator";
const GW_STATUS: &str =
    "/apis/gateway.networking.k8s.io/v1/namespaces/stunner/gateways/udp-gateway/status";
const CLASS_STATUS: &str =
    "/apis/gateway.networking.k8s.io/v1/gatewayclasses/stunner-gatewayclass/status";
const ROUTE_STATUS: &str =
    "/apis/stunner.l7mp.io/v1/namespaces/stunner/udproutes/iperf-server/status";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/stunner/deployments/udp-gateway";
const SERVICE: &str = "/api/v1/namespaces/stunner/services/udp-gateway";
const DAEMON_SET: &str = "/apis/apps/v1/namespaces/stunner/daemonsets/udp-gateway";
const DAEMON_SET_DATAPLANE: &str = "apiVersion: stunner.l7mp.io/v1\nkind: Dataplane\nmetadata: { name: default }\nspec: { image: docker.io/l7mp/stunnerd:latest, dataplaneResource: DaemonSet }\n";

const ENDPOINTS: &str = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: iperf-server-x1, namespace: default, labels: { kubernetes.io/service-name: iperf-server } }\naddressType: IPv4\nendpoints: [{ addresses: [10.244.0.7], conditions: { ready: true } }, { addresses: [10.244.1.9], conditions: { ready: false } }]\nports: [{ name: iperf-server-udp, port: 5001, protocol: UDP }]\n";

/// One logged API request.
#[derive(Clone, Debug)]
struct Call {
    method: String,
    path: String,
    body: Value,
}

/// An in-memory API server: objects by path, every request logged.
#[derive(Default)]
struct FakeApi {
    objects: BTreeMap<String, Value>,
    log: Vec<Call>,
    version: u64,
    /// Server-side applies still to be refused with a 500 (a transient API server failure).
    failing_applies: usize,
}

impl FakeApi {
    /// Answers one request like the API server would for these verbs (`APPLY`: a forced
    /// server-side apply by the operator's field manager; any other PATCH is refused).
    fn answer(&mut self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.log.push(Call {
            method: method.into(),
            path: path.into(),
            body: body.clone(),
        });
        let object_path = path.strip_suffix("/status").unwrap_or(path);
        match method {
            "APPLY" if self.failing_applies > 0 => {
                self.failing_applies -= 1;
                (500, api_error(500, "InternalError"))
            }
            "APPLY" => self.store(object_path, body),
            "GET" => match self.objects.get(object_path) {
                Some(o) => (200, o.clone()),
                None => (404, api_error(404, "NotFound")),
            },
            "PUT" => {
                let current = self.objects.get(object_path).map(|o| rv(o).to_owned());
                if current.as_deref() == Some(rv(&body)) {
                    self.store(object_path, body)
                } else {
                    (409, api_error(409, "Conflict"))
                }
            }
            "DELETE" => match self.objects.remove(object_path) {
                Some(_) => (200, api_error(200, "Success")),
                None => (404, api_error(404, "NotFound")),
            },
            _ => (400, api_error(400, "BadRequest")),
        }
    }

    /// Stores `obj` at `path` with a new resourceVersion; answers it.
    fn store(&mut self, path: &str, mut obj: Value) -> (u16, Value) {
        self.version += 1;
        obj["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.objects.insert(path.into(), obj.clone());
        (200, obj)
    }

    /// Takes the log (method and path of each request, plus bodies).
    fn take_log(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.log)
    }
}

fn rv(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"].as_str().unwrap_or("")
}

fn api_error(code: u16, reason: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": if code < 300 { "Success" } else { "Failure" }, "message": reason, "reason": reason, "code": code })
}

/// A server-side apply by the operator's field manager, forcing ownership of the fields.
fn is_forced_apply(req: &Request<Body>) -> bool {
    let query = req.uri().query().unwrap_or_default();
    let apply = req.headers().get(http::header::CONTENT_TYPE);
    apply.is_some_and(|v| v == "application/apply-patch+yaml")
        && query.contains(&format!("fieldManager={FIELD_MANAGER}"))
        && query.contains("force=true")
}

/// Serves `handle` from `api` until the client is dropped.
fn spawn_api(mut handle: Handle, api: Arc<Mutex<FakeApi>>) {
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let method = match req.method().as_str() {
                "PATCH" if is_forced_apply(&req) => "APPLY".to_owned(),
                m => m.to_owned(),
            };
            let path = req.uri().path().to_owned();
            let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let (code, answer) = api.lock().unwrap().answer(&method, &path, body);
            let resp = Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            send.send_response(resp);
        }
    });
}

/// The cluster as the reflectors would see it, edited by the test; counts snapshots taken.
#[derive(Default)]
struct Cluster {
    snap: Mutex<Snapshot>,
    snapshots: AtomicUsize,
}

impl SnapshotSource for Cluster {
    fn snapshot(&self) -> Snapshot {
        self.snapshots.fetch_add(1, Ordering::SeqCst);
        self.snap.lock().unwrap().clone()
    }
}

impl Cluster {
    fn edit(&self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut self.snap.lock().unwrap());
    }
}

fn fixtures() -> Snapshot {
    let mut s = Snapshot::default();
    let common = include_str!("fixtures/common.yaml");
    for text in [common, include_str!("fixtures/udp-gateway.yaml"), ENDPOINTS] {
        s.apply_manifests(text).unwrap();
    }
    s
}

/// The objects whose statuses the operator writes, as stored in the API server.
fn seed(api: &mut FakeApi, snap: &Snapshot) {
    let gc = snap.gateway_classes.values().next().unwrap();
    let gw = snap.gateways.values().next().unwrap();
    let rt = snap.udp_routes.values().next().unwrap();
    for (path, obj) in [
        (CLASS_STATUS, serde_json::to_value(&**gc).unwrap()),
        (GW_STATUS, serde_json::to_value(&**gw).unwrap()),
        (ROUTE_STATUS, serde_json::to_value(&**rt).unwrap()),
    ] {
        api.store(path.strip_suffix("/status").unwrap(), obj);
    }
}

/// What the reflectors see after the updater wrote: every stored object of the fake API server.
fn observe(cluster: &Cluster, api: &FakeApi) {
    let docs: Vec<String> = api.objects.values().map(Value::to_string).collect();
    cluster.edit(|s| {
        s.gateway_classes.clear();
        s.gateways.clear();
        s.udp_routes.clear();
        s.apply_manifests(&docs.join("\n---\n")).unwrap();
    });
}

/// The test bench: a render loop (leader, throttle `throttle`) over `cluster`, talking to `api`.
struct Bench {
    cluster: Arc<Cluster>,
    api: Arc<Mutex<FakeApi>>,
    cds: ConfigStore,
    lp: RenderLoop,
    stop: CancellationToken,
}

impl Bench {
    fn start(snap: Snapshot, throttle: Duration) -> Self {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = Arc::new(Mutex::new(FakeApi::default()));
        seed(&mut api.lock().unwrap(), &snap);
        spawn_api(handle, api.clone());
        let updater = Updater::new(Client::new(svc, "default"), FIELD_MANAGER, CTL);
        let cds = ConfigStore::new();
        let lp = RenderLoop::new(updater, cds.clone(), RenderOptions::default(), throttle);
        lp.leader.store(true, Ordering::Release);
        let cluster = Arc::new(Cluster {
            snap: Mutex::new(snap),
            ..Cluster::default()
        });
        let stop = CancellationToken::new();
        let (l, c, s) = (lp.clone(), cluster.clone(), stop.clone());
        tokio::spawn(async move { l.run(&*c, &s).await });
        Self {
            cluster,
            api,
            cds,
            lp,
            stop,
        }
    }

    /// Triggers a render and waits until pass number `n` has completed.
    async fn reconcile(&self, n: u64) -> Vec<Call> {
        let mut passes = self.lp.passes();
        self.lp.trigger.notify_one();
        tokio::time::timeout(LIMIT, passes.wait_for(|p| *p >= n))
            .await
            .expect("render pass within the limit")
            .expect("loop alive");
        self.api.lock().unwrap().take_log()
    }

    /// The config CDS serves for the Gateway: (HTTP status, config when 200).
    async fn served(&self) -> (u16, Option<StunnerConfig>) {
        let req = Request::get("/api/v1/configs/stunner/udp-gateway")
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = router(self.cds.clone()).oneshot(req).await.unwrap();
        let code = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (code, serde_json::from_slice(&bytes).ok())
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn requests(log: &[Call]) -> Vec<(&str, &str)> {
    log.iter()
        .map(|c| (c.method.as_str(), c.path.as_str()))
        .collect()
}

fn body<'a>(log: &'a [Call], method: &str, path: &str) -> &'a Value {
    &log.iter()
        .find(|c| c.method == method && c.path == path)
        .unwrap_or_else(|| panic!("no {method} {path} in {:?}", requests(log)))
        .body
}

fn condition<'a>(conds: &'a Value, type_: &str) -> &'a str {
    conds
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("missing")
}

/// Pass 1 of the reconcile test: applies, statuses, and the CDS config with the backend.
async fn first_pass(b: &Bench) {
    let log = b.reconcile(1).await;
    assert_eq!(
        requests(&log),
        [
            ("APPLY", DEPLOYMENT),
            ("APPLY", SERVICE),
            ("GET", CLASS_STATUS),
            ("PUT", CLASS_STATUS),
            ("GET", GW_STATUS),
            ("PUT", GW_STATUS),
            ("GET", ROUTE_STATUS),
            ("PUT", ROUTE_STATUS),
        ]
    );
    let d = body(&log, "APPLY", DEPLOYMENT);
    assert_eq!(d["kind"], "Deployment");
    assert!(d["spec"].get("replicas").is_none(), "replicas left unset");
    assert_eq!(
        d["metadata"]["labels"]["stunner.l7mp.io/owned-by"],
        "stunner"
    );
    assert_eq!(
        body(&log, "APPLY", SERVICE)["spec"]["ports"][0]["port"],
        3478
    );
    let gw = &body(&log, "PUT", GW_STATUS)["status"];
    assert_eq!(condition(&gw["conditions"], "Accepted"), "True");
    assert_eq!(gw["listeners"][0]["attachedRoutes"], 1);
    let rt = &body(&log, "PUT", ROUTE_STATUS)["status"]["parents"][0];
    assert_eq!(rt["controllerName"], CTL);
    assert_eq!(condition(&rt["conditions"], "Accepted"), "True");
    let (code, c) = b.served().await;
    let c = c.expect("a config");
    assert_eq!((code, c.admin.name.as_str()), (200, "stunner/udp-gateway"));
    assert_eq!(c.listeners[0].routes, ["stunner/iperf-server"]);
    let eps = &c.clusters[0].endpoints;
    for ip in ["10.96.23.4", "10.244.0.7", "10.244.1.9"] {
        assert!(eps.iter().any(|e| e.starts_with(ip)), "{ip} in {eps:?}");
    }
}

#[tokio::test]
async fn reconcile_applies_writes_statuses_serves_cds_and_deletes_orphans() {
    let b = Bench::start(fixtures(), Duration::from_millis(20));
    first_pass(&b).await;

    // the reflectors now see what was written; the route goes away
    let route = ROUTE_STATUS.strip_suffix("/status").unwrap();
    b.api.lock().unwrap().objects.remove(route);
    observe(&b.cluster, &b.api.lock().unwrap());
    let log = b.reconcile(2).await;
    assert_eq!(
        requests(&log),
        [("GET", GW_STATUS), ("PUT", GW_STATUS)],
        "Deployment and Service rendered as applied and unchanged since, class status unchanged, \
         route gone: only the Gateway status is written"
    );
    let gw = &body(&log, "PUT", GW_STATUS)["status"];
    assert_eq!(gw["listeners"][0]["attachedRoutes"], 0);
    let c = b.served().await.1.expect("a config");
    assert!(
        c.listeners[0].routes.is_empty() && c.clusters.is_empty(),
        "{c:?}"
    );

    // someone edits the Deployment (a new resourceVersion): the same render is applied again
    {
        let mut api = b.api.lock().unwrap();
        let mut d = api.objects[DEPLOYMENT].clone();
        d["metadata"]["labels"]["edited-by"] = json!("someone");
        api.store(DEPLOYMENT, d);
        observe(&b.cluster, &api);
    }
    let log = b.reconcile(3).await;
    assert_eq!(requests(&log), [("APPLY", DEPLOYMENT)], "drift repaired");

    // the Gateway goes: what it owned is deleted, CDS no longer knows it
    observe(&b.cluster, &b.api.lock().unwrap());
    b.cluster.edit(|s| s.gateways.clear());
    let log = b.reconcile(4).await;
    assert_eq!(
        requests(&log),
        [("DELETE", DEPLOYMENT), ("DELETE", SERVICE)]
    );
    assert_eq!(b.served().await.0, 404);
    assert_eq!(b.cluster.snapshots.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn switching_to_a_daemon_set_applies_it_and_deletes_the_deployment() {
    let b = Bench::start(fixtures(), Duration::from_millis(20));
    first_pass(&b).await;
    observe(&b.cluster, &b.api.lock().unwrap());
    let before = b.served().await.1.expect("a config");
    b.cluster
        .edit(|s| s.apply_manifests(DAEMON_SET_DATAPLANE).unwrap());
    let log = b.reconcile(2).await;
    assert_eq!(
        requests(&log),
        [("APPLY", DAEMON_SET), ("DELETE", DEPLOYMENT)],
        "the Service renders as before and is not applied again"
    );
    let ds = body(&log, "APPLY", DAEMON_SET);
    assert_eq!(ds["kind"], "DaemonSet");
    assert_eq!(
        ds["metadata"]["labels"]["stunner.l7mp.io/owned-by"],
        "stunner"
    );
    assert_eq!(ds["metadata"]["ownerReferences"][0]["kind"], "Gateway");
    assert_eq!(
        b.served().await.1,
        Some(before),
        "the config does not change"
    );
}

// Virtual time: the throttle and the quiet period after the burst pass at once (the clock jumps
// whenever every task waits), and the burst's 2 ms gaps are exactly 2 ms, never a slow machine's 400.
#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_is_rendered_once() {
    const BURST: usize = 20;
    let throttle = Duration::from_millis(400);
    let b = Bench::start(fixtures(), throttle);
    let mut passes = b.lp.passes();
    for i in 0..BURST {
        b.cluster.edit(|s| {
            let text = format!("apiVersion: stunner.l7mp.io/v1\nkind: GatewayConfig\nmetadata: {{ name: stunner-gatewayconfig, namespace: stunner }}\nspec: {{ realm: realm-{i}, authType: plaintext, userName: user-1, password: pass-1 }}\n");
            s.apply_manifests(&text).unwrap();
        });
        b.lp.trigger.notify_one();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::timeout(LIMIT, passes.wait_for(|p| *p >= 1))
        .await
        .expect("a render")
        .expect("loop alive");
    // a second render would come one throttle later
    tokio::time::sleep(throttle * 3).await;
    assert_eq!(*b.lp.passes().borrow(), 1, "one render for the burst");
    assert_eq!(b.cluster.snapshots.load(Ordering::SeqCst), 1);
    let log = b.api.lock().unwrap().take_log();
    let applies = log.iter().filter(|c| c.path == DEPLOYMENT).count();
    assert_eq!(applies, 1, "{:?}", requests(&log));
    let c = b.served().await.1.expect("a config");
    assert_eq!(
        c.auth.realm,
        format!("realm-{}", BURST - 1),
        "the last change"
    );

    // a change after the render is not lost: it gets its own render
    b.cluster.edit(|s| s.gateways.clear());
    b.reconcile(2).await;
    assert_eq!(b.served().await.0, 404);
}

// Virtual time: the 1 s backoff and the 1.5 s quiet period after the clean pass cost nothing.
#[tokio::test(start_paused = true)]
async fn failed_writes_are_retried_without_any_new_event() {
    let b = Bench::start(fixtures(), Duration::from_millis(10));
    b.api.lock().unwrap().failing_applies = 1;
    let log = b.reconcile(1).await;
    let failed = log.iter().filter(|c| c.method == "APPLY").count();
    assert!(failed >= 1, "{:?}", requests(&log));
    assert!(
        !b.api.lock().unwrap().objects.contains_key(DEPLOYMENT),
        "the first apply of the Deployment failed"
    );
    // No trigger from here on: the loop retries on its own after its backoff (1 s).
    let mut passes = b.lp.passes();
    tokio::time::timeout(LIMIT, passes.wait_for(|p| *p >= 2))
        .await
        .expect("a retry pass")
        .expect("loop alive");
    assert!(
        b.api.lock().unwrap().objects.contains_key(DEPLOYMENT),
        "the retry applied the Deployment"
    );
    // A clean pass schedules nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(*b.lp.passes().borrow(), 2, "no retry after a clean pass");
}
