//! A simulated dataplane under the modelled control loop, in steps of one HPA sync (15 s by
//! default): calls arrive on Ready pods and end at a fixed rate, the real [`Policy`] decides
//! from an [`Observation`] of the pods, KEDA serves its report to the HPA, and a ReplicaSet
//! creates pods (Ready after a start-up delay) or deletes them in the ReplicaSet controller's
//! order (`getPodsToDelete`: not Ready first, then the lowest `pod-deletion-cost`, then the
//! newest). Deleted pods either drain (keep their calls until they end) or are killed.
//!
//! ```text
//!  step(t): traffic ─> scaler (Policy::decide on an Observation) ─> KEDA ─> HPA ─> ReplicaSet
//! ```

use std::time::Duration;

use proto::keda::{MetricSpec, MetricValue};

use super::hpa::{Hpa, ScaleView};
use super::keda::ScaledObject;
use crate::policy::{Observation, Policy};
use crate::steering::SteeringGate;

/// What the scaler reports to KEDA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reporter {
    /// The shipped scaler: [`Policy::decide`]'s report against a target of 1.
    Scaler(Policy),
    /// The previous design: the policy's desired count as is, against a target of 1.
    DesiredAsIs(Policy),
    /// A plain usage metric: the allocations on Ready pods against an AverageValue target of
    /// allocations per pod (what KEDA's own prometheus scaler would do).
    Allocations(f64),
}

/// How deleted pods go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Deletion cost = allocations (drain steering) and a graceful drain.
    SteeredDrain,
    /// No deletion cost (the ReplicaSet takes the newest) and killed at once.
    Kill,
}

/// One simulated pod.
#[derive(Debug, Clone)]
pub struct Pod {
    /// Creation order.
    pub id: u64,
    /// Live calls (fractional: the expected value of the call process).
    pub calls: f64,
    /// When it turns Ready.
    pub ready_at: Duration,
    /// Terminating (draining its calls).
    pub draining: bool,
    /// Running but never Ready (crash-looping).
    pub broken: bool,
    /// `pod-deletion-cost` as the scaler last set it.
    pub deletion_cost: Option<u64>,
}

impl Pod {
    fn ready(&self, now: Duration) -> bool {
        !self.broken && !self.draining && self.ready_at <= now
    }
}

/// Settings of a simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The scaler's report.
    pub reporter: Reporter,
    /// How scale-in removes pods.
    pub removal: Removal,
    /// The HPA as KEDA creates it (its target is replaced by the one KEDA derives).
    pub hpa: Hpa,
    /// The ScaledObject (fallback, metric type).
    pub keda: ScaledObject,
    /// HPA sync period (kube-controller-manager's 15 s).
    pub sync: Duration,
    /// From pod creation to Ready.
    pub startup: Duration,
    /// Fraction of calls ending per second (1 / mean call length).
    pub end_rate: f64,
}

/// The record of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Time of the step.
    pub t: Duration,
    /// `spec.replicas` after the step.
    pub replicas: u32,
    /// Ready pods after the step.
    pub ready: u32,
    /// Draining pods.
    pub draining: u32,
    /// Offered calls.
    pub calls: f64,
    /// The policy's desired count (0 with the Allocations reporter).
    pub desired: u32,
    /// The reported metric value.
    pub reported: f64,
}

/// A running simulation.
#[derive(Debug, Clone)]
pub struct Sim {
    cfg: SimConfig,
    hpa: Hpa,
    keda: ScaledObject,
    /// The pods not yet gone.
    pub pods: Vec<Pod>,
    /// `spec.replicas`.
    pub replicas: u32,
    /// Offered load: the number of concurrent calls the callers want.
    pub offered: f64,
    /// Calls dropped (killed pods).
    pub dropped: f64,
    /// Every step so far.
    pub samples: Vec<Sample>,
    /// Scale-outs within `bounce_window` of a scale-in.
    pub bounces: u32,
    /// A scale-out this soon after a scale-in is a bounce.
    pub bounce_window: Duration,
    /// When the scaler fails (the direct source sees no pod), as a test can force.
    pub scaler_down: bool,
    now: Duration,
    next_id: u64,
    previous_desired: Option<u32>,
    gate: SteeringGate,
    last_scale_in: Option<Duration>,
}

impl Sim {
    /// `replicas` Ready pods sharing `calls` evenly.
    pub fn new(cfg: SimConfig, replicas: u32, calls: f64) -> Self {
        let mut hpa = cfg.hpa.clone();
        hpa.target = match cfg.reporter {
            Reporter::Allocations(per_pod) => cfg.keda.target(&spec(per_pod)),
            _ => cfg.keda.target(&spec(1.0)),
        };
        let mut sim = Self {
            keda: cfg.keda.clone(),
            hpa,
            cfg,
            pods: Vec::new(),
            replicas,
            offered: calls,
            dropped: 0.0,
            samples: Vec::new(),
            bounces: 0,
            bounce_window: Duration::from_secs(60),
            scaler_down: false,
            now: Duration::ZERO,
            next_id: 0,
            previous_desired: None,
            gate: SteeringGate::default(),
            last_scale_in: None,
        };
        for _ in 0..replicas {
            sim.create_pod(Duration::ZERO);
        }
        let share = calls / f64::from(replicas.max(1));
        sim.pods.iter_mut().for_each(|p| p.calls = share);
        sim
    }

    /// Current time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Sets the offered load; a rise arrives at once on Ready pods (a flash crowd), a fall
    /// hangs up calls evenly on every pod.
    pub fn set_load(&mut self, calls: f64) {
        let live = self.live_calls();
        if calls > live {
            self.spread(calls - live);
        } else if live > 0.0 {
            let keep = calls / live;
            self.pods.iter_mut().for_each(|p| p.calls *= keep);
        }
        self.offered = calls;
    }

    /// Calls on every pod.
    pub fn live_calls(&self) -> f64 {
        self.pods.iter().map(|p| p.calls).sum()
    }

    /// Pods that are Ready and not draining.
    pub fn ready(&self) -> u32 {
        let mut n = 0;
        for p in &self.pods {
            n += u32::from(p.ready(self.now));
        }
        n
    }

    /// Marks one Ready pod broken (crash-looping: not Ready, its calls lost).
    pub fn break_pod(&mut self) {
        let now = self.now;
        if let Some(p) = self.pods.iter_mut().find(|p| p.ready(now)) {
            p.broken = true;
            self.dropped += p.calls;
            p.calls = 0.0;
        }
    }

    /// Runs `steps` HPA syncs.
    pub fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            self.step();
        }
    }

    /// Runs until `done` holds after a step, at most `max_steps`; the time it took, if it did.
    pub fn run_until(
        &mut self,
        max_steps: usize,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        for _ in 0..max_steps {
            self.step();
            if done(self) {
                return Some(self.now - start);
            }
        }
        None
    }

    /// One HPA sync period: traffic, the scaler, KEDA, the HPA, the ReplicaSet.
    pub fn step(&mut self) {
        self.now += self.cfg.sync;
        self.traffic(self.cfg.sync.as_secs_f64());
        let (desired, reported, ready) = self.scaler();
        let view = self.scale_view();
        let answer = reported.map(|v| {
            vec![MetricValue {
                metric_name: "m".into(),
                metric_value: v as i64,
                metric_value_float: v,
            }]
        });
        let usage = self.keda.serve(
            answer.as_deref().ok_or(()),
            self.hpa.target,
            view.spec_replicas,
            view.ready_pods,
        );
        let next = self.hpa.reconcile(self.now, view, usage);
        self.replica_set(next);
        self.samples.push(Sample {
            t: self.now,
            replicas: self.replicas,
            ready,
            draining: self.pods.iter().filter(|p| p.draining).count() as u32,
            calls: self.offered,
            desired,
            reported: reported.unwrap_or(f64::NAN),
        });
    }

    /// Calls end at `end_rate`; the offered load's arrivals land on Ready pods; empty
    /// draining pods exit. (Plain loops: this is the hot path of the sweeps, in debug builds.)
    fn traffic(&mut self, dt: f64) {
        let ended = 1.0 - (-self.cfg.end_rate * dt).exp();
        let ready = self.ready();
        let share = if ready == 0 {
            0.0
        } else {
            self.offered * ended / f64::from(ready)
        };
        let now = self.now;
        for p in &mut self.pods {
            p.calls *= 1.0 - ended;
            if p.ready(now) {
                p.calls += share;
            }
        }
        self.pods.retain(|p| !(p.draining && p.calls < 0.5));
    }

    fn spread(&mut self, calls: f64) {
        let ready = self.ready();
        if ready == 0 {
            return; // nowhere to go: those callers fail to connect
        }
        let now = self.now;
        let share = calls / f64::from(ready);
        for p in &mut self.pods {
            if p.ready(now) {
                p.calls += share;
            }
        }
    }

    /// What the direct source would observe now. Per-pod loads are left out: the policy
    /// decides on the totals, and drain steering acts on the simulated pods directly.
    pub fn observe(&self) -> Observation {
        let now = self.now;
        let (mut active, mut ready, mut draining, mut draining_pods) = (0.0, 0, 0.0, 0);
        let (mut excluded, mut broken) = (0, 0);
        for p in &self.pods {
            if p.ready(now) {
                active += p.calls;
                ready += 1;
            } else if p.draining {
                draining += p.calls;
                draining_pods += 1;
            } else {
                excluded += 1;
                broken += u32::from(p.broken);
            }
        }
        // Totals from the expected values, rounded once (per-pod rounding would add up to
        // half a call per pod of noise that no real count has).
        Observation {
            active_allocations: f64::round(active),
            draining_allocations: Some(f64::round(draining)),
            ready_pods: Some(ready),
            draining_pods,
            excluded_pods: excluded,
            broken_pods: broken,
            pods: Vec::new(),
        }
    }

    /// The scaler's decision: (desired, reported value or none when it fails, Ready pods seen).
    fn scaler(&mut self) -> (u32, Option<f64>, u32) {
        let obs = self.observe();
        let ready = obs.ready_pods.unwrap_or(0);
        if self.scaler_down || ready == 0 {
            return (0, None, ready);
        }
        let (desired, reported) = match self.cfg.reporter {
            Reporter::Allocations(_) => (0, Some(obs.active_allocations)),
            Reporter::Scaler(p) | Reporter::DesiredAsIs(p) => {
                let (desired, reported) = p.decide(&obs, self.previous_desired);
                self.previous_desired = Some(desired);
                if self.cfg.removal == Removal::SteeredDrain
                    && self.gate.admit(obs.ready_pods, desired)
                {
                    self.steer();
                }
                let value = match self.cfg.reporter {
                    Reporter::Scaler(_) => reported,
                    _ => desired,
                };
                (desired, Some(f64::from(value)))
            }
        };
        (desired, reported, ready)
    }

    /// Drain steering: deletion cost = allocations on every Ready pod.
    fn steer(&mut self) {
        let now = self.now;
        for p in self.pods.iter_mut().filter(|p| p.ready(now)) {
            p.deletion_cost = Some(p.calls.round() as u64);
        }
    }

    fn scale_view(&self) -> ScaleView {
        let (mut status, mut ready) = (0, 0);
        for p in &self.pods {
            status += u32::from(!p.draining);
            // getReadyPodsCount lists terminating pods too, and draining pods stay Ready.
            ready += u32::from(!p.broken && p.ready_at <= self.now);
        }
        ScaleView {
            spec_replicas: self.replicas,
            status_replicas: status,
            ready_pods: ready,
        }
    }

    fn create_pod(&mut self, ready_at: Duration) {
        self.pods.push(Pod {
            id: self.next_id,
            calls: 0.0,
            ready_at,
            draining: false,
            broken: false,
            deletion_cost: None,
        });
        self.next_id += 1;
    }

    /// The ReplicaSet controller: create or delete pods to match `replicas`.
    fn replica_set(&mut self, replicas: u32) {
        let current = self.pods.iter().filter(|p| !p.draining).count() as u32;
        if replicas > self.replicas {
            if self
                .last_scale_in
                .is_some_and(|t| self.now - t < self.bounce_window)
            {
                self.bounces += 1;
            }
        } else if replicas < self.replicas {
            self.last_scale_in = Some(self.now);
        }
        self.replicas = replicas;
        for _ in current..replicas {
            self.create_pod(self.now + self.cfg.startup);
        }
        for _ in replicas..current {
            self.delete_one();
        }
    }

    /// `getPodsToDelete` ranking: not Ready first, lower deletion cost, newer.
    fn delete_one(&mut self) {
        let now = self.now;
        let victim = self
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.draining)
            .min_by_key(|(_, p)| {
                let cost = match self.cfg.removal {
                    Removal::SteeredDrain => p.deletion_cost.map_or(0, |c| c as i64),
                    Removal::Kill => 0,
                };
                (p.ready(now), cost, std::cmp::Reverse(p.id))
            })
            .map(|(i, _)| i);
        let Some(i) = victim else { return };
        let ready = self.pods[i].ready(now);
        if ready && self.cfg.removal == Removal::SteeredDrain {
            self.pods[i].draining = true;
        } else {
            self.dropped += self.pods[i].calls;
            self.pods.remove(i);
        }
    }
}

fn spec(target: f64) -> MetricSpec {
    MetricSpec {
        metric_name: "m".into(),
        target_size: target as i64,
        target_size_float: target,
    }
}
