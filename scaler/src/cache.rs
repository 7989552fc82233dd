//! Per-ScaledObject state: parsed metadata, the built source, and the cached decision.
//!
//! ```text
//!  KEDA/HPA calls ──> Scalers::decision(ref) ──> Entry (metadata parsed once per change)
//!                                                   │  tokio Mutex = single flight
//!                                                   ├─ fresh (< interval)? return cached result
//!                                                   └─ else: source.observe() → policy → cache
//! ```
//! However often KEDA calls (GetMetrics, IsActive, streams, HPA queries), each ScaledObject
//! costs at most one upstream query per interval; a failure is cached the same way, so a
//! broken backend is not hammered either. A ScaledObject KEDA has not asked about for a while
//! (it was deleted, or its trigger moved to another scaler) is forgotten by [`Scalers::forget_idle`]
//! together with its metric series and steering record.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use proto::keda::ScaledObjectRef;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::metadata::TriggerMetadata;
use crate::metrics::{ObjectLabels, ScalerMetrics};
use crate::policy::{Observation, Policy};
use crate::source::{Source, SourceDeps};
use crate::steering::{self, SteeringBook, SteeringGate, SteeringRecord};

/// One decision for one ScaledObject.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Desired replicas (what the policy wants).
    pub desired: u32,
    /// The metric value reported to KEDA (against a target of 1) so the HPA lands on `desired`.
    pub reported: u32,
    /// KEDA activity.
    pub active: bool,
    /// What the source saw.
    pub observation: Observation,
}

/// A ScaledObject known to the scaler.
#[derive(Debug)]
pub struct Entry {
    raw: HashMap<String, String>,
    /// Parsed trigger metadata.
    pub metadata: TriggerMetadata,
    policy: Policy,
    source: Source,
    labels: ObjectLabels,
    state: Mutex<State>,
    /// When KEDA last asked about it, in ms since [`Scalers::epoch`].
    last_used_ms: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    last: Option<(Instant, Result<Arc<Decision>>)>,
    previous_desired: Option<u32>,
    gate: SteeringGate,
}

/// All ScaledObjects, keyed by (namespace, name).
#[derive(Debug)]
pub struct Scalers {
    deps: SourceDeps,
    interval: Duration,
    metrics: ScalerMetrics,
    objects: RwLock<HashMap<(String, String), Arc<Entry>>>,
    steering: SteeringBook,
    epoch: Instant,
}

impl Scalers {
    /// A registry whose decisions are cached for `interval`.
    pub fn new(deps: SourceDeps, interval: Duration, metrics: ScalerMetrics) -> Self {
        Self {
            deps,
            interval,
            metrics,
            objects: RwLock::default(),
            steering: SteeringBook::default(),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Forgets every ScaledObject not asked about for `idle` or longer: its cached entry, its
    /// `stunner_scaler_*` series and its `/steering` record. Returns the forgotten
    /// `namespace/name`s. A ScaledObject asked about again later is simply parsed anew.
    pub fn forget_idle(&self, idle: Duration) -> Vec<String> {
        let now = self.now_ms();
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
        let mut gone = Vec::new();
        objects.retain(|_, e| {
            let used = e.last_used_ms.load(Ordering::Relaxed);
            let keep = now.saturating_sub(used) < idle_ms;
            if !keep {
                gone.push(e.labels.clone());
            }
            keep
        });
        drop(objects);
        gone.iter()
            .map(|labels| {
                self.metrics.forget(labels);
                self.steering.forget(&labels.scaledobject);
                tracing::info!(scaledobject = %labels.scaledobject, "forgotten after {idle:?} without a KEDA call");
                labels.scaledobject.clone()
            })
            .collect()
    }

    /// Number of ScaledObjects currently known.
    pub fn len(&self) -> usize {
        self.objects.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no ScaledObject is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last steered scale-in decision per ScaledObject (served on `/steering`).
    pub fn steering_records(&self) -> BTreeMap<String, SteeringRecord> {
        self.steering.snapshot()
    }

    /// The cache interval (also the StreamIsActive poll period).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The entry of `r`, parsing its metadata only when it is new or changed.
    pub fn entry(&self, r: &ScaledObjectRef) -> Result<Arc<Entry>> {
        let key = (r.namespace.clone(), r.name.clone());
        if let Some(e) = self
            .objects
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && e.raw == r.scaler_metadata
        {
            e.last_used_ms.store(self.now_ms(), Ordering::Relaxed);
            return Ok(e.clone());
        }
        if r.name.is_empty() {
            return Err(Error::Request {
                field: "name",
                reason: "the ScaledObject name is empty".into(),
            });
        }
        let metadata = TriggerMetadata::parse(&r.namespace, &r.scaler_metadata)?;
        let source = Source::build(&metadata, &r.namespace, &self.deps)?;
        let entry = Arc::new(Entry {
            raw: r.scaler_metadata.clone(),
            policy: Policy::from_metadata(&metadata),
            labels: ObjectLabels {
                scaledobject: format!("{}/{}", r.namespace, r.name),
                source: source.kind().to_owned(),
            },
            metadata,
            source,
            state: Mutex::default(),
            last_used_ms: AtomicU64::new(self.now_ms()),
        });
        tracing::info!(scaledobject = %entry.labels.scaledobject, source = %entry.labels.source, "trigger metadata parsed");
        self.objects
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, entry.clone());
        Ok(entry)
    }

    /// The current decision for `r`: cached, or refreshed from the source once per interval.
    pub async fn decision(&self, r: &ScaledObjectRef) -> Result<Arc<Decision>> {
        let entry = self.entry(r)?;
        let mut state = entry.state.lock().await;
        if let Some((at, result)) = &state.last
            && at.elapsed() < self.interval
        {
            return result.clone();
        }
        let result = self.refresh(&entry, &mut state).await;
        state.last = Some((Instant::now(), result.clone()));
        result
    }

    async fn refresh(&self, entry: &Entry, state: &mut State) -> Result<Arc<Decision>> {
        let m = &self.metrics;
        m.upstream_queries.get_or_create(&entry.labels).inc();
        let started = Instant::now();
        let observed = entry.source.observe().await;
        m.upstream_duration
            .get_or_create(&entry.labels)
            .observe(started.elapsed().as_secs_f64());
        let obs = observed.inspect_err(|e| {
            m.upstream_errors.get_or_create(&entry.labels).inc();
            tracing::warn!(scaledobject = %entry.labels.scaledobject, error = %e, "metrics source failed");
        })?;
        let (desired, reported) = entry.policy.decide(&obs, state.previous_desired);
        state.previous_desired = Some(desired);
        m.desired_replicas
            .get_or_create(&entry.labels)
            .set(i64::from(desired));
        m.reported_replicas
            .get_or_create(&entry.labels)
            .set(i64::from(reported));
        m.pods_excluded
            .get_or_create(&entry.labels)
            .set(i64::from(obs.excluded_pods));
        m.allocations
            .get_or_create(&entry.labels)
            .set(obs.active_allocations);
        m.pods_draining
            .get_or_create(&entry.labels)
            .set(i64::from(obs.draining_pods));
        if entry.metadata.drain_steering && state.gate.admit(obs.ready_pods, desired) {
            self.steer(entry, desired, &obs);
        }
        tracing::debug!(scaledobject = %entry.labels.scaledobject, desired, reported, allocations = obs.active_allocations, "decision");
        Ok(Arc::new(Decision {
            desired,
            reported,
            active: entry.policy.is_active(&obs),
            observation: obs,
        }))
    }

    /// Records the decision's costs, and patches them onto the pods in the background (so
    /// KEDA's call is not held up by the API server) when the pods are Kubernetes pods.
    fn steer(&self, entry: &Entry, desired: u32, obs: &Observation) {
        let so = &entry.labels.scaledobject;
        self.steering
            .record(so, SteeringRecord::new(desired, &obs.pods));
        if obs.pods.iter().all(|p| p.namespace.is_empty()) {
            tracing::info!(scaledobject = %so, desired, "deletion costs recorded on /steering");
            return;
        }
        let Some(client) = self.deps.kube.clone() else {
            tracing::warn!(scaledobject = %so, "drainSteering needs Kubernetes access to patch pods");
            return;
        };
        let pods = obs.pods.clone();
        let counter = self.metrics.deletion_cost_patches.clone();
        let so = entry.labels.scaledobject.clone();
        tokio::spawn(async move {
            match steering::apply(&client, &pods).await {
                Ok(n) => {
                    counter.inc_by(n as u64);
                    tracing::info!(scaledobject = %so, patched = n, "pod-deletion-cost set before scale-in");
                }
                Err(e) => tracing::warn!(scaledobject = %so, error = %e, "drain steering failed"),
            }
        });
    }
}
