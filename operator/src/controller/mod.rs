//! Controller wiring: preflight checks, reflectors, the coalescing render loop, leader election
//! and the updater.
//!
//! ```text
//!  reflectors ──trigger──► RenderLoop (sleep `throttle` to coalesce bursts)
//!                           SnapshotSource ─► render ─► ConfigStore (CDS, every replica)
//!                                                    └► Updater (leader only)
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

use futures::FutureExt;
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
use crate::metrics::Metrics;
use crate::render::{RenderOptions, render};
use crate::store::Snapshot;

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
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // An API server that accepts connections and never answers must not keep SIGTERM waiting.
    let start = async {
        let with_v1a2 = preflight(&client).await?;
        anyhow::Ok((with_v1a2, hpa_tolerance_by_default(&client).await))
    };
    let (with_v1a2, tolerance) = tokio::select! {
        r = start => r?,
        () = shutdown.cancelled() => return Ok(()),
    };
    tracing::info!(v1alpha2_udproute = with_v1a2, "preflight ok");
    let mut render = opts.render.clone();
    render.hpa_configurable_tolerance = tolerance;
    let lp = RenderLoop::new(
        Updater::new(client.clone(), FIELD_MANAGER, &opts.render.controller_name),
        cds,
        render,
        opts.throttle,
    )
    .with_metrics(metrics.clone());
    let mut tasks = JoinSet::new();
    let readers = Readers::start(&client, with_v1a2, &lp.trigger, &mut tasks);
    start_keda_discovery(&client, &readers, &lp, &opts, &shutdown, &mut tasks).await;
    let elector = LeaderElector::new(
        client,
        &opts.lease_namespace,
        &opts.lease_name,
        &opts.identity,
        opts.lease_duration,
    );
    tasks.spawn(elect(
        elector,
        lp.leader.clone(),
        lp.trigger.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    tokio::select! {
        r = readers.ready() => r?,
        _ = shutdown.cancelled() => return Ok(()),
    }
    metrics.set_ready();
    lp.trigger.notify_one();
    lp.run(&readers, &shutdown).await;
    tasks.shutdown().await;
    Ok(())
}

/// Where the render loop reads the cluster from: the reflector caches in the operator, a
/// hand-built snapshot in tests.
pub trait SnapshotSource {
    /// A consistent view of every watched object, now.
    fn snapshot(&self) -> Snapshot;
}

impl SnapshotSource for Readers {
    fn snapshot(&self) -> Snapshot {
        Self::snapshot(self)
    }
}

/// The coalescing render loop: wait for a change, sleep `throttle` so a burst of changes lands
/// in one render, render the snapshot, publish the configs to CDS (every replica) and, on the
/// leader only, apply the render through the [`Updater`].
#[derive(Clone)]
pub struct RenderLoop {
    /// Poked by every change (reflector event, leadership gained, KEDA appearing or going).
    pub trigger: Arc<Notify>,
    /// Whether this replica holds the Lease: only the leader writes to the cluster.
    pub leader: Arc<AtomicBool>,
    /// Whether KEDA is served (copied into [`RenderOptions::keda`] at each render).
    pub keda: Arc<AtomicBool>,
    updater: Updater,
    cds: ConfigStore,
    render: RenderOptions,
    throttle: Duration,
    passes: Arc<tokio::sync::watch::Sender<u64>>,
    metrics: Option<Metrics>,
}

impl RenderLoop {
    /// A loop writing through `updater` and publishing to `cds`; not leader, KEDA not served.
    pub fn new(
        updater: Updater,
        cds: ConfigStore,
        render: RenderOptions,
        throttle: Duration,
    ) -> Self {
        Self {
            trigger: Arc::new(Notify::new()),
            leader: Arc::new(AtomicBool::new(false)),
            keda: Arc::new(AtomicBool::new(false)),
            updater,
            cds,
            render,
            throttle,
            passes: Arc::new(tokio::sync::watch::Sender::new(0)),
            metrics: None,
        }
    }

    /// The same loop, recording every pass in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The number of completed render passes, updated after each one (publish and update done).
    pub fn passes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.passes.subscribe()
    }

    /// Renders after every trigger (coalesced over `throttle`) until `shutdown`. A pass whose
    /// writes partly failed is retried on its own after a backoff (1 s, doubling up to
    /// [`RETRY_MAX`], reset by a clean pass), as controller-rs's `error_policy` requeues, so a
    /// transient API error never waits for an unrelated watch event.
    pub async fn run(&self, source: &impl SnapshotSource, shutdown: &CancellationToken) {
        let mut backoff = Backoff::default();
        loop {
            let retry = backoff.next_delay();
            tokio::select! {
                _ = self.trigger.notified() => {}
                () = sleep_or_pending(retry) => tracing::info!(after = ?retry, "retrying failed writes"),
                _ = shutdown.cancelled() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(self.throttle) => {}
                _ = shutdown.cancelled() => return,
            }
            // triggers during the sleep are part of this render: drop their stored wake-up, or a
            // burst would cost a second, identical render
            let _ = self.trigger.notified().now_or_never();
            let failed = self.pass(&source.snapshot()).await;
            backoff.record(failed);
        }
    }

    /// One render of `snap`: publish, then apply when leader; returns the failed writes.
    async fn pass(&self, snap: &Snapshot) -> usize {
        let opts = RenderOptions {
            now: Time(k8s_openapi::jiff::Timestamp::now()),
            keda: self.keda.load(Ordering::Acquire),
            ..self.render.clone()
        };
        let started = std::time::Instant::now();
        let rendered = render(snap, &opts);
        let render_time = started.elapsed();
        self.cds.publish(rendered.configs.clone());
        let mut failed = 0;
        if self.leader.load(Ordering::Acquire) {
            let st = self.updater.update(snap, &rendered).await;
            tracing::info!(configs = rendered.configs.len(), ?st, "render applied");
            failed = st.failed;
        }
        if let Some(m) = &self.metrics {
            m.pass(render_time, failed);
        }
        self.passes.send_modify(|n| *n += 1);
        failed
    }
}

/// Longest wait before retrying a pass whose writes failed.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// The retry schedule of failed passes: none while passes succeed; 1 s after the first failed
/// pass, doubling with each further one up to [`RETRY_MAX`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// Records the outcome of a pass (`failed` writes).
    pub fn record(&mut self, failed: usize) {
        self.failures = if failed == 0 {
            0
        } else {
            self.failures.saturating_add(1)
        };
    }

    /// How long to wait before retrying on its own; `None` after a clean pass.
    pub fn next_delay(&self) -> Option<Duration> {
        let n = self.failures.checked_sub(1)?;
        Some(
            Duration::from_secs(1)
                .saturating_mul(2u32.saturating_pow(n.min(16)))
                .min(RETRY_MAX),
        )
    }
}

async fn sleep_or_pending(delay: Option<Duration>) {
    match delay {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Whether the API server's version honours the HPA's configurable tolerance by default.
async fn hpa_tolerance_by_default(client: &Client) -> bool {
    match client.apiserver_version().await {
        Ok(v) => {
            let on = crate::render::configurable_tolerance_by_default(&v.major, &v.minor);
            tracing::info!(version = %v.git_version, hpa_configurable_tolerance = on, "API server version");
            on
        }
        Err(e) => {
            tracing::warn!(error = %e, "API server version unknown: no HPA tolerance rendered");
            false
        }
    }
}

/// Checks KEDA once before the first render (so its ScaledObject cache is part of
/// [`Readers::ready`]), then keeps watching for it appearing or going.
async fn start_keda_discovery(
    client: &Client,
    readers: &Readers,
    lp: &RenderLoop,
    opts: &Options,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    match keda_served(client).await {
        Ok(served) => {
            lp.keda.store(served, Ordering::Release);
            if served {
                readers.start_scaled_objects(client, &lp.trigger, tasks);
            }
            tracing::info!(keda = served, "KEDA API discovery");
        }
        Err(e) => tracing::warn!(error = %e, "KEDA API discovery failed; assuming absent"),
    }
    tasks.spawn(discovery::watch_keda(
        client.clone(),
        readers.clone(),
        lp.keda.clone(),
        lp.trigger.clone(),
        opts.api_discovery,
        shutdown.clone(),
    ));
}

async fn elect(
    elector: LeaderElector,
    leader: Arc<AtomicBool>,
    notify: Arc<Notify>,
    metrics: Metrics,
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
        metrics.set_leader(is);
        if is != leader.swap(is, Ordering::AcqRel) {
            tracing::info!(leader = is, "leadership changed");
            if is {
                notify.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_passes_back_off_and_a_clean_pass_resets() {
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(), None, "nothing to retry at start");
        let mut seen = Vec::new();
        for _ in 0..9 {
            b.record(2);
            seen.push(b.next_delay().unwrap().as_secs());
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.record(0);
        assert_eq!(b.next_delay(), None);
        b.record(1);
        assert_eq!(b.next_delay(), Some(Duration::from_secs(1)));
    }
}
