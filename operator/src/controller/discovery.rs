//! API discovery of optional APIs: whether KEDA's `keda.sh/v1alpha1` (ScaledObject) is served.
//! Checked at start-up and then periodically, so installing KEDA after the operator switches
//! autoscaled Gateways from the CPU HPA fallback to ScaledObjects without a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Readers;
use crate::render::keda;

/// Whether the API server serves group `keda.sh` in version `v1alpha1` (from `GET /apis`).
pub async fn keda_served(client: &Client) -> kube::Result<bool> {
    let groups = client.list_api_groups().await?;
    Ok(groups
        .groups
        .iter()
        .any(|g| g.name == keda::GROUP && g.versions.iter().any(|v| v.version == keda::VERSION)))
}

/// Re-checks [`keda_served`] every `every`; on a change stores it in `flag`, starts the
/// ScaledObject reflector (first time KEDA is seen) and triggers a render. A failed check keeps
/// the last answer.
pub(crate) async fn watch_keda(
    client: Client,
    readers: Readers,
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
    every: Duration,
    shutdown: CancellationToken,
) {
    // owns the ScaledObject reflector: aborted with this task
    let mut reflectors = JoinSet::new();
    // start-up already checked once
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let served = match keda_served(&client).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "KEDA API discovery failed");
                continue;
            }
        };
        if served {
            readers.start_scaled_objects(&client, &notify, &mut reflectors);
        }
        if served != flag.swap(served, Ordering::AcqRel) {
            tracing::info!(keda = served, "KEDA API availability changed");
            notify.notify_one();
        }
    }
}
