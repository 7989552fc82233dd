//! Controller wiring: preflight checks, reflectors, the coalescing render loop, leader election
//! and the updater.
//!
//! ```text
//!  reflectors ──notify──► render loop (sleep `throttle` to coalesce bursts)
//!                           snapshot ─► render ─► ConfigStore (CDS, every replica)
//!                                              └► Updater (leader only)
//!  LeaderElector ──(every duration/3)──► is_leader flag (gaining it triggers a render)
//!  KEDA discovery ──(start-up, every api_discovery)──► keda flag (RenderOptions::keda) and
//!                                                      the ScaledObject reflector
//! ```

mod discovery;
mod leader;
mod updater;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gateway_api::experimental::udproutes::UdpRoute as UdpRouteV1A2;
use gateway_api::gateways::Gateway;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use discovery::keda_served;
pub use leader::LeaderElector;
pub use updater::{Error as UpdateError, FIELD_MANAGER, Result as UpdateResult, Stats, Updater};
pub use watch::Readers;

use crate::cds::ConfigStore;
use crate::crd::{Dataplane, GatewayConfig, StaticService, UDPRoute};
use crate::render::{RenderOptions, render};

/// Why the operator cannot start against this cluster.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The API server did not answer.
    #[error("cannot reach the Kubernetes API server: {0}")]
    Unreachable(#[source] kube::Error),
    /// A required CRD is not installed.
    #[error(
        "CRD {0} is not installed: install the Gateway API and STUNner CRDs (charts/stunner-gateway-operator/crds)"
    )]
    MissingCrd(String),
    /// Listing a required kind failed otherwise.
    #[error("cannot list {kind}: {source}")]
    List {
        /// The kind.
        kind: String,
        /// The client error.
        source: kube::Error,
    },
}

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Render options (controllerName, CDS origin, default image).
    pub render: RenderOptions,
    /// Coalescing delay between a change and its render.
    pub throttle: Duration,
    /// Namespace of the leader-election Lease.
    pub lease_namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity in the Lease.
    pub identity: String,
    /// Lease duration.
    pub lease_duration: Duration,
    /// Period of the API discovery of KEDA.
    pub api_discovery: Duration,
}

async fn probe<K>(client: &Client) -> Result<bool, PreflightError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    match Api::<K>::all(client.clone())
        .list_metadata(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(source) => Err(PreflightError::List {
            kind: K::kind(&()).into(),
            source,
        }),
    }
}

/// Checks the API server and the CRDs; returns whether the v1alpha2 UDPRoute CRD is installed.
pub async fn preflight(client: &Client) -> Result<bool, PreflightError> {
    client
        .apiserver_version()
        .await
        .map_err(PreflightError::Unreachable)?;
    let required = [
        (
            probe::<Gateway>(client).await?,
            "gateways.gateway.networking.k8s.io",
        ),
        (
            probe::<gateway_api::gatewayclasses::GatewayClass>(client).await?,
            "gatewayclasses.gateway.networking.k8s.io",
        ),
        (
            probe::<GatewayConfig>(client).await?,
            "gatewayconfigs.stunner.l7mp.io",
        ),
        (
            probe::<Dataplane>(client).await?,
            "dataplanes.stunner.l7mp.io",
        ),
        (
            probe::<StaticService>(client).await?,
            "staticservices.stunner.l7mp.io",
        ),
        (
            probe::<UDPRoute>(client).await?,
            "udproutes.stunner.l7mp.io",
        ),
    ];
    if let Some((_, crd)) = required.iter().find(|(ok, _)| !ok) {
        return Err(PreflightError::MissingCrd((*crd).into()));
    }
    probe::<UdpRouteV1A2>(client).await
}

/// Runs the controller until `shutdown`; publishes every render into `cds`.
pub async fn run(
    client: Client,
    opts: Options,
    cds: ConfigStore,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let with_v1a2 = preflight(&client).await?;
    tracing::info!(v1alpha2_udproute = with_v1a2, "preflight ok");
    let notify = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    let readers = Readers::start(&client, with_v1a2, &notify, &mut tasks);
    let keda = Arc::new(AtomicBool::new(false));
    start_keda_discovery(
        &client, &readers, &keda, &notify, &opts, &shutdown, &mut tasks,
    )
    .await;
    let leader = Arc::new(AtomicBool::new(false));
    let elector = LeaderElector::new(
        client.clone(),
        &opts.lease_namespace,
        &opts.lease_name,
        &opts.identity,
        opts.lease_duration,
    );
    tasks.spawn(elect(
        elector,
        leader.clone(),
        notify.clone(),
        shutdown.clone(),
    ));
    tokio::select! {
        r = readers.ready() => r?,
        _ = shutdown.cancelled() => return Ok(()),
    }
    let updater = Updater::new(client, FIELD_MANAGER, opts.render.controller_name.clone());
    notify.notify_one();
    loop {
        tokio::select! {
            _ = notify.notified() => {}
            _ = shutdown.cancelled() => break,
        }
        tokio::time::sleep(opts.throttle).await;
        let snap = readers.snapshot();
        let ropts = RenderOptions {
            now: Time(k8s_openapi::jiff::Timestamp::now()),
            keda: keda.load(Ordering::Acquire),
            ..opts.render.clone()
        };
        let rendered = render(&snap, &ropts);
        cds.publish(rendered.configs.clone());
        if leader.load(Ordering::Acquire) {
            let st = updater.update(&snap, &rendered).await;
            tracing::info!(configs = rendered.configs.len(), ?st, "render applied");
        }
    }
    tasks.shutdown().await;
    Ok(())
}

/// Checks KEDA once before the first render (so its ScaledObject cache is part of
/// [`Readers::ready`]), then keeps watching for it appearing or going.
async fn start_keda_discovery(
    client: &Client,
    readers: &Readers,
    keda: &Arc<AtomicBool>,
    notify: &Arc<Notify>,
    opts: &Options,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    match keda_served(client).await {
        Ok(served) => {
            keda.store(served, Ordering::Release);
            if served {
                readers.start_scaled_objects(client, notify, tasks);
            }
            tracing::info!(keda = served, "KEDA API discovery");
        }
        Err(e) => tracing::warn!(error = %e, "KEDA API discovery failed; assuming absent"),
    }
    tasks.spawn(discovery::watch_keda(
        client.clone(),
        readers.clone(),
        keda.clone(),
        notify.clone(),
        opts.api_discovery,
        shutdown.clone(),
    ));
}

async fn elect(
    elector: LeaderElector,
    leader: Arc<AtomicBool>,
    notify: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(elector.retry_period());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let now = k8s_openapi::jiff::Timestamp::now();
        let is = elector.try_acquire_or_renew(now).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "leader election failed");
            false
        });
        if is != leader.swap(is, Ordering::AcqRel) {
            tracing::info!(leader = is, "leadership changed");
            if is {
                notify.notify_one();
            }
        }
    }
}
