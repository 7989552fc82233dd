//! The updater: applies a render to the cluster. Deployments, DaemonSets, Services, HPAs and KEDA
//! ScaledObjects (through a `DynamicObject` API, no KEDA types needed) go through server-side
//! apply with the operator's field manager (so fields it does not render, like `replicas` under
//! an autoscaler, stay with their owners); statuses are written to the status subresource with
//! optimistic concurrency, re-read and retried on conflict; orphans are deleted. An object whose
//! render has not changed since this updater last applied it, and that nobody has changed since
//! (the watched copy's generation, or resourceVersion where there is none, is the one the apply
//! returned), is not applied again.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use gateway_api::experimental::udproutes::{UdpRoute as UdpRouteV1A2, UdpRouteStatus};
use gateway_api::gatewayclasses::{GatewayClass, GatewayClassStatus};
use gateway_api::gateways::{Gateway, GatewayStatus};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crd::UDPRoute;
use crate::render::{OwnedKind, Rendered, RouteApi, RouteId, ScaledObject, keda};
use crate::store::{ObjectKey, Objects, Snapshot};

/// Field manager of the operator's server-side applies.
pub const FIELD_MANAGER: &str = "stunner-gateway-operator";
/// Attempts of a status write before giving up on conflicts.
const STATUS_ATTEMPTS: usize = 5;

/// Errors of the updater.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{what} {key}: {source}")]
    Api {
        /// What was being done.
        what: &'static str,
        /// The object.
        key: String,
        /// The client error.
        source: kube::Error,
    },
    /// Status writes kept conflicting.
    #[error("status of {0}: still conflicting after {STATUS_ATTEMPTS} attempts")]
    Conflict(String),
}

/// Result of updater operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an update pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects applied.
    pub applied: usize,
    /// Status subresources written.
    pub statuses: usize,
    /// Orphans deleted.
    pub deleted: usize,
    /// Operations that failed (logged).
    pub failed: usize,
    /// Applies skipped: the render and the live object unchanged since the last apply.
    pub unchanged: usize,
}

/// Writes renders to the API server.
#[derive(Clone)]
pub struct Updater {
    client: Client,
    field_manager: String,
    controller_name: String,
    applied: Arc<Mutex<HashMap<String, Applied>>>,
}

/// What the updater last applied to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Applied {
    /// Digest of the rendered object.
    digest: u64,
    /// The version of the object the apply returned.
    version: String,
}

/// The version that changes when someone changes the object: `generation` (spec changes only,
/// not status) where the API keeps one, else `resourceVersion`.
fn version_of(meta: &ObjectMeta) -> Option<String> {
    meta.generation
        .map(|g| format!("generation {g}"))
        .or_else(|| meta.resource_version.clone())
}

fn digest(obj: &impl Serialize) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_vec(obj).unwrap_or_default().hash(&mut h);
    h.finish()
}

impl Updater {
    /// An updater using `client`, applying as `field_manager` and owning the route status
    /// parent entries of `controller_name`.
    pub fn new(
        client: Client,
        field_manager: impl Into<String>,
        controller_name: impl Into<String>,
    ) -> Self {
        Self {
            client,
            field_manager: field_manager.into(),
            controller_name: controller_name.into(),
            applied: Arc::default(),
        }
    }

    /// Applies everything in `r`; `snap` (what the render saw) lets unchanged statuses be skipped.
    /// Every failure is logged and counted; one failing object does not stop the others.
    pub async fn update(&self, snap: &Snapshot, r: &Rendered) -> Stats {
        let mut st = Stats::default();
        self.apply_all(snap, r, &mut st).await;
        self.write_statuses(snap, r, &mut st).await;
        for (kind, key) in &r.orphans {
            let res = self.delete(*kind, key).await;
            count(&mut st.deleted, &mut st.failed, res);
        }
        st
    }

    /// Server-side applies every rendered object (workloads first, then their Services and
    /// autoscalers).
    async fn apply_all(&self, snap: &Snapshot, r: &Rendered, st: &mut Stats) {
        self.apply_each(&r.deployments, &snap.deployments, st).await;
        self.apply_each(&r.daemon_sets, &snap.daemon_sets, st).await;
        self.apply_each(&r.services, &snap.services, st).await;
        for so in &r.scaled_objects {
            let live = snap.scaled_objects.get(&ObjectKey::from_meta(&so.metadata));
            let v = live.and_then(|o| version_of(&o.metadata));
            if !self.unchanged(keda::KIND, &so.metadata, so, v, st) {
                let res = self.apply_scaled_object(so).await;
                count(&mut st.applied, &mut st.failed, res);
            }
        }
        self.apply_each(&r.hpas, &snap.hpas, st).await;
    }

    /// Applies each of `objs` that [`Self::unchanged`] does not skip, `live` being their watched
    /// copies.
    async fn apply_each<K>(&self, objs: &[K], live: &Objects<K>, st: &mut Stats)
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Serialize
            + DeserializeOwned
            + Clone
            + Debug,
    {
        for obj in objs {
            let v = live
                .get(&ObjectKey::from_meta(obj.meta()))
                .and_then(|o| version_of(o.meta()));
            if !self.unchanged(&K::kind(&()), obj.meta(), obj, v, st) {
                count(&mut st.applied, &mut st.failed, self.apply(obj).await);
            }
        }
    }

    /// Whether `obj` can be skipped: rendered the same as at the last apply, and the watched
    /// copy (`live` version) still the one that apply returned. Counts a skip in `st`.
    fn unchanged(
        &self,
        kind: &str,
        meta: &ObjectMeta,
        obj: &impl Serialize,
        live: Option<String>,
        st: &mut Stats,
    ) -> bool {
        let key = format!("{kind} {}", ObjectKey::from_meta(meta));
        let Ok(applied) = self.applied.lock() else {
            return false;
        };
        let same = applied.get(&key).is_some_and(|a| {
            a.digest == digest(obj) && live.as_deref() == Some(a.version.as_str())
        });
        if same {
            st.unchanged += 1;
        }
        same
    }

    /// Remembers a successful apply of `obj` that returned `meta`.
    fn remember(&self, kind: &str, key: &ObjectKey, obj: &impl Serialize, meta: &ObjectMeta) {
        let Some(version) = version_of(meta) else {
            return;
        };
        if let Ok(mut applied) = self.applied.lock() {
            applied.insert(
                format!("{kind} {key}"),
                Applied {
                    digest: digest(obj),
                    version,
                },
            );
        }
    }

    /// Writes every rendered status that differs from the one in `snap`.
    async fn write_statuses(&self, snap: &Snapshot, r: &Rendered, st: &mut Stats) {
        for (name, status) in &r.gateway_class_statuses {
            let current = snap
                .gateway_classes
                .get(&ObjectKey::new("", name))
                .and_then(|g| g.status.as_ref());
            if current != Some(status) {
                let res = self.class_status(name, status).await;
                count(&mut st.statuses, &mut st.failed, res);
            }
        }
        for (key, status) in &r.gateway_statuses {
            let current = snap.gateways.get(key).and_then(|g| g.status.as_ref());
            if current != Some(status) {
                let res = self.gateway_status(key, status).await;
                count(&mut st.statuses, &mut st.failed, res);
            }
        }
        for (id, status) in &r.route_statuses {
            if route_status_in(snap, id) != Some(status) {
                let res = self.route_status(id, status).await;
                count(&mut st.statuses, &mut st.failed, res);
            }
        }
    }

    /// Server-side applies one namespaced object (forcing ownership of the rendered fields).
    pub async fn apply<K>(&self, obj: &K) -> Result<()>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Serialize
            + DeserializeOwned
            + Clone
            + Debug,
    {
        let key = ObjectKey::from_meta(obj.meta());
        let api: Api<K> = Api::namespaced(self.client.clone(), &key.namespace);
        self.ssa(api, &K::kind(&()), &key, obj).await
    }

    /// Server-side applies a KEDA ScaledObject (as a `keda.sh/v1alpha1` dynamic object).
    pub async fn apply_scaled_object(&self, so: &ScaledObject) -> Result<()> {
        let key = ObjectKey::from_meta(&so.metadata);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &key.namespace, &keda::api_resource());
        self.ssa(api, keda::KIND, &key, so).await
    }

    async fn ssa<K, P>(&self, api: Api<K>, kind: &str, key: &ObjectKey, obj: &P) -> Result<()>
    where
        K: Resource + Clone + DeserializeOwned + Debug,
        P: Serialize + Debug,
    {
        let pp = PatchParams::apply(&self.field_manager).force();
        let applied = api
            .patch(&key.name, &pp, &Patch::Apply(obj))
            .await
            .map_err(|source| Error::Api {
                what: "apply",
                key: format!("{kind} {key}"),
                source,
            })?;
        self.remember(kind, key, obj, applied.meta());
        Ok(())
    }

    /// Deletes an orphan (already gone counts as done).
    pub async fn delete(&self, kind: OwnedKind, key: &ObjectKey) -> Result<()> {
        let (c, ns, name) = (
            self.client.clone(),
            key.namespace.as_str(),
            key.name.as_str(),
        );
        let res = match kind {
            OwnedKind::Deployment => delete(Api::<Deployment>::namespaced(c, ns), name).await,
            OwnedKind::DaemonSet => delete(Api::<DaemonSet>::namespaced(c, ns), name).await,
            OwnedKind::Service => delete(Api::<Service>::namespaced(c, ns), name).await,
            OwnedKind::ScaledObject => {
                let api = Api::<DynamicObject>::namespaced_with(c, ns, &keda::api_resource());
                delete(api, name).await
            }
            OwnedKind::HorizontalPodAutoscaler => {
                delete(Api::<HorizontalPodAutoscaler>::namespaced(c, ns), name).await
            }
        };
        match res {
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            other => other.map_err(|source| Error::Api {
                what: "delete",
                key: format!("{kind:?} {key}"),
                source,
            }),
        }
    }

    /// Writes a GatewayClass status.
    pub async fn class_status(&self, name: &str, status: &GatewayClassStatus) -> Result<()> {
        let api: Api<GatewayClass> = Api::all(self.client.clone());
        write_status(&api, name, |o: &mut GatewayClass| {
            o.status = Some(status.clone())
        })
        .await
    }

    /// Writes a Gateway status.
    pub async fn gateway_status(&self, key: &ObjectKey, status: &GatewayStatus) -> Result<()> {
        let api: Api<Gateway> = Api::namespaced(self.client.clone(), &key.namespace);
        write_status(&api, &key.name, |o: &mut Gateway| {
            o.status = Some(status.clone())
        })
        .await
    }

    /// Writes a route status: our parent entries from the render, everybody else's from the
    /// freshly read object (another controller may have written since the snapshot).
    pub async fn route_status(&self, id: &RouteId, status: &UdpRouteStatus) -> Result<()> {
        let key = &id.key;
        let ctl = self.controller_name.as_str();
        match id.api {
            RouteApi::StunnerV1 => {
                let api: Api<UDPRoute> = Api::namespaced(self.client.clone(), &key.namespace);
                write_status(&api, &key.name, |o: &mut UDPRoute| {
                    o.status = Some(merge_parents(o.status.take(), status, ctl))
                })
                .await
            }
            RouteApi::GatewayV1Alpha2 => {
                let api: Api<UdpRouteV1A2> = Api::namespaced(self.client.clone(), &key.namespace);
                write_status(&api, &key.name, |o: &mut UdpRouteV1A2| {
                    o.status = Some(merge_parents(o.status.take(), status, ctl))
                })
                .await
            }
        }
    }
}

async fn delete<K: Clone + DeserializeOwned + Debug>(api: Api<K>, name: &str) -> kube::Result<()> {
    api.delete(name, &DeleteParams::background())
        .await
        .map(|_| ())
}

fn count(ok: &mut usize, failed: &mut usize, res: Result<()>) {
    match res {
        Ok(()) => *ok += 1,
        Err(e) => {
            *failed += 1;
            tracing::warn!(error = %e, "update failed");
        }
    }
}

fn route_status_in<'a>(snap: &'a Snapshot, id: &RouteId) -> Option<&'a UdpRouteStatus> {
    match id.api {
        RouteApi::StunnerV1 => snap.udp_routes.get(&id.key).and_then(|r| r.status.as_ref()),
        RouteApi::GatewayV1Alpha2 => snap
            .udp_routes_v1a2
            .get(&id.key)
            .and_then(|r| r.status.as_ref()),
    }
}

/// Parents of `fresh` written by other controllers, then the parents of `ours` written by
/// `controller`.
fn merge_parents(
    fresh: Option<UdpRouteStatus>,
    ours: &UdpRouteStatus,
    controller: &str,
) -> UdpRouteStatus {
    let mut parents: Vec<_> = fresh.map(|s| s.parents).unwrap_or_default();
    parents.retain(|p| p.controller_name != controller);
    parents.extend(
        ours.parents
            .iter()
            .filter(|p| p.controller_name == controller)
            .cloned(),
    );
    UdpRouteStatus { parents }
}

/// Read-modify-write of a status subresource with the object's resourceVersion; a 409 Conflict
/// re-reads and retries. Skips the write when the status is already as wanted.
async fn write_status<K, F>(api: &Api<K>, name: &str, set: F) -> Result<()>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
    F: Fn(&mut K),
{
    for _ in 0..STATUS_ATTEMPTS {
        let mut obj = match api.get_status(name).await {
            Ok(o) => o,
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(source) => {
                return Err(Error::Api {
                    what: "get status",
                    key: name.into(),
                    source,
                });
            }
        };
        let before = serde_json::to_value(&obj).ok();
        set(&mut obj);
        if serde_json::to_value(&obj).ok() == before {
            return Ok(());
        }
        match api.replace_status(name, &PostParams::default(), &obj).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(source) => {
                return Err(Error::Api {
                    what: "replace status",
                    key: name.into(),
                    source,
                });
            }
        }
    }
    Err(Error::Conflict(name.into()))
}
