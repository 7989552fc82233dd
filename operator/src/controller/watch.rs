//! Reflectors: one kube-rs watcher-backed cache per watched kind; every event that changes what a
//! render reads pokes a `Notify` that the render loop coalesces ([`Poke`]: a Node's status
//! heartbeat or a Deployment's replica count changes nothing a render reads, so it pokes nobody). A [`Readers::snapshot`] copies the caches (cheap `Arc` clones)
//! into a [`Snapshot`]. The KEDA ScaledObject reflector (a `DynamicObject` watch) starts only once
//! the controller discovers the KEDA API, possibly long after start-up. The ReferenceGrant
//! reflector is a `DynamicObject` watch too: its version (`v1`, else upstream's `v1beta1`) is found
//! by API discovery at start, and [`Readers::ready`] waits for that discovery.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use gateway_api::experimental::udproutes::UdpRoute as UdpRouteV1A2;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::referencegrants::{ReferenceGrant, ReferenceGrantSpec};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::crd::{Dataplane, GatewayConfig, StaticService, UDPRoute};
use crate::render::{keda, keys};
use crate::store::{ObjectKey, Objects, Snapshot, objects_from};

/// Read handles of every cache.
#[derive(Clone)]
pub struct Readers {
    gateway_classes: Store<GatewayClass>,
    gateway_configs: Store<GatewayConfig>,
    dataplanes: Store<Dataplane>,
    gateways: Store<Gateway>,
    udp_routes: Store<UDPRoute>,
    udp_routes_v1a2: Option<Store<UdpRouteV1A2>>,
    static_services: Store<StaticService>,
    services: Store<Service>,
    endpoint_slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    secrets: Store<Secret>,
    namespaces: Store<Namespace>,
    deployments: Store<Deployment>,
    daemon_sets: Store<DaemonSet>,
    /// ReferenceGrants, once their API version is discovered.
    reference_grants: watch::Receiver<Grants>,
    hpas: Store<HorizontalPodAutoscaler>,
    /// Set once the KEDA API is discovered ([`Readers::start_scaled_objects`]).
    scaled_objects: Arc<OnceLock<Store<DynamicObject>>>,
}

/// Outcome of the ReferenceGrant API discovery.
#[derive(Clone)]
enum Grants {
    /// Discovery has not answered yet.
    Pending,
    /// The API server serves no ReferenceGrant (renders see none: cross-namespace refs denied).
    Absent,
    /// Watching ReferenceGrants in the discovered version.
    Watching(Store<DynamicObject>),
}

/// Group of ReferenceGrant.
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// Versions of ReferenceGrant, preferred first (`v1beta1` is upstream's).
const GRANT_VERSIONS: [&str; 2] = ["v1", "v1beta1"];
/// Pause between failed discovery attempts.
const DISCOVERY_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// The first version of [`GRANT_VERSIONS`] serving `referencegrants`; `None` when none does.
async fn grant_version(client: &Client) -> kube::Result<Option<&'static str>> {
    for version in GRANT_VERSIONS {
        let gv = format!("{GATEWAY_GROUP}/{version}");
        match client.list_api_group_resources(&gv).await {
            Ok(list) if list.resources.iter().any(|r| r.name == "referencegrants") => {
                return Ok(Some(version));
            }
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Discovers the ReferenceGrant version (retrying failures), then runs its reflector.
fn start_grants(
    client: &Client,
    notify: &Arc<Notify>,
    tasks: &mut JoinSet<()>,
) -> watch::Receiver<Grants> {
    let (tx, rx) = watch::channel(Grants::Pending);
    let (client, notify) = (client.clone(), notify.clone());
    tasks.spawn(async move {
        let version = loop {
            match grant_version(&client).await {
                Ok(v) => break v,
                Err(e) => tracing::warn!(error = %e, "ReferenceGrant API discovery failed"),
            }
            tokio::time::sleep(DISCOVERY_RETRY).await;
        };
        let Some(version) = version else {
            tracing::info!("ReferenceGrant API not served");
            tx.send_replace(Grants::Absent);
            return;
        };
        let ar = ApiResource {
            group: GATEWAY_GROUP.into(),
            version: version.into(),
            api_version: format!("{GATEWAY_GROUP}/{version}"),
            kind: "ReferenceGrant".into(),
            plural: "referencegrants".into(),
        };
        let writer = reflector::store::Writer::new(ar.clone());
        tx.send_replace(Grants::Watching(writer.as_reader()));
        let api = Api::<DynamicObject>::all_with(client, &ar);
        let mut inner = JoinSet::new();
        drive(
            writer,
            api,
            watcher::Config::default(),
            ar.kind,
            Poke::new(None),
            &notify,
            &mut inner,
        );
        // keep the reflector's lifetime tied to this task
        while inner.join_next().await.is_some() {}
    });
    rx
}

/// A watched ReferenceGrant as the typed object (`None` when its spec does not parse).
fn typed_grant(obj: &DynamicObject) -> Option<ReferenceGrant> {
    let spec = obj.data.get("spec")?;
    match ReferenceGrantSpec::deserialize(spec) {
        Ok(spec) => Some(ReferenceGrant {
            metadata: obj.metadata.clone(),
            spec,
        }),
        Err(e) => {
            tracing::warn!(grant = %ObjectKey::of(obj), error = %e, "malformed ReferenceGrant");
            None
        }
    }
}

fn grants_snapshot(grants: &watch::Receiver<Grants>) -> Objects<ReferenceGrant> {
    match &*grants.borrow() {
        Grants::Watching(store) => store
            .state()
            .iter()
            .filter_map(|o| typed_grant(o))
            .map(|g| (ObjectKey::of(&g), Arc::new(g)))
            .collect(),
        Grants::Pending | Grants::Absent => Objects::default(),
    }
}

fn owned_config() -> watcher::Config {
    watcher::Config::default().labels(&format!("{}={}", keys::OWNED_BY, keys::OWNED_BY_VALUE))
}

/// The digest of what a render reads of one object; `None` for kinds where all of it counts.
pub(super) type Relevant<K> = Option<fn(&K) -> u64>;

fn digest(v: &impl serde::Serialize) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_vec(v).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// A Node as the renderer reads it: its addresses (a Gateway's fallback public address).
pub(super) fn node_relevance(n: &Node) -> u64 {
    digest(&n.status.as_ref().and_then(|s| s.addresses.as_ref()))
}

/// An object the operator owns as the renderer reads it: its spec (generation), the labels and
/// owner that make it ours, its annotations, whether it is going away. Not its status.
pub(super) fn owned_relevance<K: Resource>(o: &K) -> u64 {
    let m = o.meta();
    digest(&(
        m.generation,
        &m.labels,
        &m.annotations,
        &m.owner_references,
        m.deletion_timestamp.is_some(),
    ))
}

/// Decides which watch events poke the render loop: deletions and the end of a (re)list always;
/// an applied object only when its [`Relevant`] digest differs from the last one seen.
pub(super) struct Poke<K> {
    relevant: Relevant<K>,
    seen: HashMap<String, u64>,
}

impl<K: Resource> Poke<K> {
    /// A filter with `relevant` (`None`: every event pokes).
    pub(super) fn new(relevant: Relevant<K>) -> Self {
        Self {
            relevant,
            seen: HashMap::new(),
        }
    }

    /// Whether `ev` should poke the render loop.
    pub(super) fn wants(&mut self, ev: &watcher::Event<K>) -> bool {
        let key = |o: &K| {
            let m = o.meta();
            format!(
                "{}/{}",
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default()
            )
        };
        match ev {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => match self.relevant {
                None => true,
                Some(f) => self.seen.insert(key(o), f(o)) != Some(f(o)),
            },
            watcher::Event::Delete(o) => {
                self.seen.remove(&key(o));
                true
            }
            watcher::Event::Init => false,
            watcher::Event::InitDone => true,
        }
    }
}

fn spawn<K>(
    api: Api<K>,
    cfg: watcher::Config,
    relevant: Relevant<K>,
    notify: &Arc<Notify>,
    tasks: &mut JoinSet<()>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&()).into_owned();
    drive(writer, api, cfg, kind, Poke::new(relevant), notify, tasks);
    reader
}

/// Runs a reflector filling `writer`, poking `notify` on the events `poke` wants.
fn drive<K>(
    writer: reflector::store::Writer<K>,
    api: Api<K>,
    cfg: watcher::Config,
    kind: String,
    mut poke: Poke<K>,
    notify: &Arc<Notify>,
    tasks: &mut JoinSet<()>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Clone + Eq + Hash + Send + Sync,
{
    let stream = reflector::reflector(writer, watcher(api, cfg)).default_backoff();
    let notify = notify.clone();
    tasks.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) if poke.wants(&ev) => notify.notify_one(),
                Ok(_) => {}
                Err(e) => tracing::warn!(%kind, error = %e, "watch error"),
            }
        }
    });
}

impl Readers {
    /// Starts a reflector per kind (the v1alpha2 UDPRoute only when `with_v1a2`).
    pub fn start(
        client: &Client,
        with_v1a2: bool,
        notify: &Arc<Notify>,
        tasks: &mut JoinSet<()>,
    ) -> Self {
        let all = watcher::Config::default();
        Self {
            gateway_classes: spawn(Api::all(client.clone()), all.clone(), None, notify, tasks),
            gateway_configs: spawn(Api::all(client.clone()), all.clone(), None, notify, tasks),
            dataplanes: spawn(Api::all(client.clone()), all.clone(), None, notify, tasks),
            gateways: spawn(Api::all(client.clone()), all.clone(), None, notify, tasks),
            udp_routes: spawn(Api::all(client.clone()), all.clone(), None, notify, tasks),
            udp_routes_v1a2: with_v1a2
                .then(|| spawn(Api::all(client.clone()), all.clone(), None, notify, tasks)),
            static_services: spawn(Api::all(client.clone()), all.clone(), None, notify, tasks),
            services: spawn(Api::all(client.clone()), all.clone(), None, notify, tasks),
            endpoint_slices: spawn(Api::all(client.clone()), all.clone(), None, notify, tasks),
            nodes: spawn(
                Api::all(client.clone()),
                all.clone(),
                Some(node_relevance),
                notify,
                tasks,
            ),
            secrets: spawn(Api::all(client.clone()), all.clone(), None, notify, tasks),
            namespaces: spawn(Api::all(client.clone()), all, None, notify, tasks),
            deployments: spawn(
                Api::all(client.clone()),
                owned_config(),
                Some(owned_relevance),
                notify,
                tasks,
            ),
            daemon_sets: spawn(
                Api::all(client.clone()),
                owned_config(),
                Some(owned_relevance),
                notify,
                tasks,
            ),
            reference_grants: start_grants(client, notify, tasks),
            hpas: spawn(
                Api::all(client.clone()),
                owned_config(),
                Some(owned_relevance),
                notify,
                tasks,
            ),
            scaled_objects: Arc::default(),
        }
    }

    /// Starts the reflector of operator-owned KEDA ScaledObjects (once; later calls do nothing).
    /// Until its first list completes, renders see no ScaledObjects, which can only postpone an
    /// orphan deletion, never cause a wrong one.
    pub fn start_scaled_objects(
        &self,
        client: &Client,
        notify: &Arc<Notify>,
        tasks: &mut JoinSet<()>,
    ) {
        if self.scaled_objects.get().is_some() {
            return;
        }
        let ar = keda::api_resource();
        let writer = reflector::store::Writer::new(ar.clone());
        if self.scaled_objects.set(writer.as_reader()).is_ok() {
            let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
            let poke = Poke::new(Some(owned_relevance));
            drive(writer, api, owned_config(), ar.kind, poke, notify, tasks);
        }
    }

    /// Waits until every cache has completed its initial list (renders before that could
    /// mistake not-yet-listed Gateways for deleted ones and delete their objects).
    pub async fn ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.gateway_classes.wait_until_ready().await?;
        self.gateway_configs.wait_until_ready().await?;
        self.dataplanes.wait_until_ready().await?;
        self.gateways.wait_until_ready().await?;
        self.udp_routes.wait_until_ready().await?;
        if let Some(s) = &self.udp_routes_v1a2 {
            s.wait_until_ready().await?;
        }
        self.static_services.wait_until_ready().await?;
        self.services.wait_until_ready().await?;
        self.endpoint_slices.wait_until_ready().await?;
        self.nodes.wait_until_ready().await?;
        self.secrets.wait_until_ready().await?;
        self.namespaces.wait_until_ready().await?;
        self.deployments.wait_until_ready().await?;
        self.daemon_sets.wait_until_ready().await?;
        self.grants_ready().await?;
        if let Some(s) = self.scaled_objects.get() {
            s.wait_until_ready().await?;
        }
        self.hpas.wait_until_ready().await
    }

    /// Waits for the ReferenceGrant discovery and, when served, the grants' initial list.
    async fn grants_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        let mut rx = self.reference_grants.clone();
        let grants = match rx.wait_for(|g| !matches!(g, Grants::Pending)).await {
            Ok(g) => g.clone(),
            // the discovery task is gone (shutdown): nothing to wait for
            Err(_) => return Ok(()),
        };
        match grants {
            Grants::Watching(store) => store.wait_until_ready().await,
            Grants::Pending | Grants::Absent => Ok(()),
        }
    }

    /// The current contents of every cache.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            gateway_classes: objects_from(self.gateway_classes.state()),
            gateway_configs: objects_from(self.gateway_configs.state()),
            dataplanes: objects_from(self.dataplanes.state()),
            gateways: objects_from(self.gateways.state()),
            udp_routes: objects_from(self.udp_routes.state()),
            udp_routes_v1a2: self
                .udp_routes_v1a2
                .as_ref()
                .map(|s| objects_from(s.state()))
                .unwrap_or_default(),
            static_services: objects_from(self.static_services.state()),
            services: objects_from(self.services.state()),
            endpoint_slices: objects_from(self.endpoint_slices.state()),
            nodes: objects_from(self.nodes.state()),
            secrets: objects_from(self.secrets.state()),
            namespaces: objects_from(self.namespaces.state()),
            deployments: objects_from(self.deployments.state()),
            daemon_sets: objects_from(self.daemon_sets.state()),
            reference_grants: grants_snapshot(&self.reference_grants),
            hpas: objects_from(self.hpas.state()),
            scaled_objects: self
                .scaled_objects
                .get()
                .map(|s| objects_from(s.state()))
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeAddress, NodeCondition, NodeStatus};
    use kube::runtime::watcher::Event;

    fn node(ip: &str, heartbeat: &str) -> Node {
        Node {
            metadata: kube::api::ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            status: Some(NodeStatus {
                addresses: Some(vec![NodeAddress {
                    type_: "ExternalIP".into(),
                    address: ip.into(),
                }]),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    message: Some(heartbeat.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_node_heartbeat_pokes_nobody_an_address_change_does() {
        let mut poke = Poke::new(Some(node_relevance));
        assert!(
            poke.wants(&Event::Apply(node("1.2.3.4", "t0"))),
            "first sight"
        );
        assert!(
            !poke.wants(&Event::Apply(node("1.2.3.4", "t1"))),
            "heartbeat"
        );
        assert!(
            poke.wants(&Event::Apply(node("5.6.7.8", "t2"))),
            "new address"
        );
        assert!(!poke.wants(&Event::Init), "a relist starts");
        assert!(
            !poke.wants(&Event::InitApply(node("5.6.7.8", "t3"))),
            "relisted unchanged"
        );
        assert!(poke.wants(&Event::InitDone), "a relist ends (deletions)");
        assert!(poke.wants(&Event::Delete(node("5.6.7.8", "t3"))));
        assert!(
            poke.wants(&Event::Apply(node("5.6.7.8", "t4"))),
            "back after deletion"
        );
    }

    #[test]
    fn an_owned_deployment_pokes_on_spec_and_labels_not_on_status() {
        use k8s_openapi::api::apps::v1::DeploymentStatus;
        let deploy = |generation: i64, ready: i32, label: &str| Deployment {
            metadata: kube::api::ObjectMeta {
                name: Some("gw".into()),
                namespace: Some("ns".into()),
                generation: Some(generation),
                labels: Some([("l".to_owned(), label.to_owned())].into()),
                ..Default::default()
            },
            status: Some(DeploymentStatus {
                ready_replicas: Some(ready),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut poke = Poke::new(Some(owned_relevance));
        assert!(poke.wants(&Event::Apply(deploy(1, 0, "a"))));
        assert!(!poke.wants(&Event::Apply(deploy(1, 3, "a"))), "status only");
        assert!(poke.wants(&Event::Apply(deploy(2, 3, "a"))), "spec");
        assert!(poke.wants(&Event::Apply(deploy(2, 3, "b"))), "labels");
        let mut all = Poke::new(None);
        assert!(all.wants(&Event::Apply(deploy(1, 0, "a"))));
        assert!(
            all.wants(&Event::Apply(deploy(1, 0, "a"))),
            "unfiltered kinds always poke"
        );
    }

    use super::*;

    fn dynamic(spec: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": { "name": "g", "namespace": "certs" },
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn watched_grant_becomes_typed() {
        let g = typed_grant(&dynamic(serde_json::json!({
            "from": [{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "stunner" }],
            "to": [{ "group": "", "kind": "Secret", "name": "cert" }],
        })))
        .unwrap();
        assert_eq!(ObjectKey::of(&g), ObjectKey::new("certs", "g"));
        assert_eq!(g.spec.from[0].namespace, "stunner");
        assert_eq!(g.spec.to[0].name.as_deref(), Some("cert"));
    }

    #[test]
    fn malformed_or_specless_grant_is_skipped() {
        assert!(typed_grant(&dynamic(serde_json::json!({ "from": "nope" }))).is_none());
        let mut obj = dynamic(serde_json::json!({}));
        obj.data = serde_json::json!({});
        assert!(typed_grant(&obj).is_none());
    }
}
