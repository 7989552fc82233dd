//! Reflectors: one kube-rs watcher-backed cache per watched kind; every event pokes a `Notify`
//! that the render loop coalesces. A [`Readers::snapshot`] copies the caches (cheap `Arc` clones)
//! into a [`Snapshot`]. The KEDA ScaledObject reflector (a `DynamicObject` watch) starts only once
//! the controller discovers the KEDA API, possibly long after start-up.

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use gateway_api::experimental::udproutes::UdpRoute as UdpRouteV1A2;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::DynamicObject;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::crd::{Dataplane, GatewayConfig, StaticService, UDPRoute};
use crate::render::{keda, keys};
use crate::store::{Snapshot, objects_from};

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
    hpas: Store<HorizontalPodAutoscaler>,
    /// Set once the KEDA API is discovered ([`Readers::start_scaled_objects`]).
    scaled_objects: Arc<OnceLock<Store<DynamicObject>>>,
}

fn owned_config() -> watcher::Config {
    watcher::Config::default().labels(&format!("{}={}", keys::OWNED_BY, keys::OWNED_BY_VALUE))
}

fn spawn<K>(
    api: Api<K>,
    cfg: watcher::Config,
    notify: &Arc<Notify>,
    tasks: &mut JoinSet<()>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    drive(writer, api, cfg, K::kind(&()).into_owned(), notify, tasks);
    reader
}

/// Runs a reflector filling `writer`, poking `notify` on every event.
fn drive<K>(
    writer: reflector::store::Writer<K>,
    api: Api<K>,
    cfg: watcher::Config,
    kind: String,
    notify: &Arc<Notify>,
    tasks: &mut JoinSet<()>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Clone + Eq + std::hash::Hash + Send + Sync,
{
    let stream = reflector::reflector(writer, watcher(api, cfg)).default_backoff();
    let notify = notify.clone();
    tasks.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => notify.notify_one(),
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
            gateway_classes: spawn(Api::all(client.clone()), all.clone(), notify, tasks),
            gateway_configs: spawn(Api::all(client.clone()), all.clone(), notify, tasks),
            dataplanes: spawn(Api::all(client.clone()), all.clone(), notify, tasks),
            gateways: spawn(Api::all(client.clone()), all.clone(), notify, tasks),
            udp_routes: spawn(Api::all(client.clone()), all.clone(), notify, tasks),
            udp_routes_v1a2: with_v1a2
                .then(|| spawn(Api::all(client.clone()), all.clone(), notify, tasks)),
            static_services: spawn(Api::all(client.clone()), all.clone(), notify, tasks),
            services: spawn(Api::all(client.clone()), all.clone(), notify, tasks),
            endpoint_slices: spawn(Api::all(client.clone()), all.clone(), notify, tasks),
            nodes: spawn(Api::all(client.clone()), all.clone(), notify, tasks),
            secrets: spawn(Api::all(client.clone()), all.clone(), notify, tasks),
            namespaces: spawn(Api::all(client.clone()), all, notify, tasks),
            deployments: spawn(Api::all(client.clone()), owned_config(), notify, tasks),
            hpas: spawn(Api::all(client.clone()), owned_config(), notify, tasks),
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
            drive(writer, api, owned_config(), ar.kind, notify, tasks);
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
        if let Some(s) = self.scaled_objects.get() {
            s.wait_until_ready().await?;
        }
        self.hpas.wait_until_ready().await
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
            hpas: objects_from(self.hpas.state()),
            scaled_objects: self
                .scaled_objects
                .get()
                .map(|s| objects_from(s.state()))
                .unwrap_or_default(),
        }
    }
}
