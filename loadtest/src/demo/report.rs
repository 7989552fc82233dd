//! What a demo run measured, printed as a final report and serialisable as JSON.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::Policy;
use super::calls::CallStats;

/// Both runs of a demo.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// One entry per policy, ours first.
    pub runs: Vec<RunReport>,
}

/// The outcome of one run.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The scale-in policy.
    pub policy: Policy,
    /// Calls that reached the relaying state (= allocations created and used).
    pub calls_connected: u64,
    /// Calls whose setup failed.
    pub calls_setup_failed: u64,
    /// Calls ended by their caller.
    pub calls_completed: u64,
    /// Calls that died while relaying: allocations dropped at scale-in.
    pub calls_dropped: u64,
    /// Media packets relayed to the echo peer and back.
    pub media_sent: u64,
    /// Media packets that came back.
    pub media_received: u64,
    /// Media loss in percent.
    pub media_loss_percent: f64,
    /// Scale-out events (one per decision, possibly several pods).
    pub scale_outs: u32,
    /// Scale-in events (one pod each).
    pub scale_ins: u32,
    /// Scale-outs within 60 s of a scale-in.
    pub bounces: u32,
    /// Most replicas serving at once.
    pub peak_replicas: u32,
    /// Live calls on the victim pods when they were told to go, summed.
    pub calls_on_victims: u64,
    /// Scale-ins for which the scaler had no deletion costs yet.
    pub unsteered_scale_ins: u32,
    /// Scaler calls that failed (the driver kept the size, as KEDA's fallback would).
    pub scaler_errors: u32,
    /// Longest time from termination to process exit, seconds.
    pub longest_drain_secs: f64,
}

impl RunReport {
    /// An empty report for `policy`.
    pub(crate) fn new(policy: Policy) -> Self {
        Self {
            policy,
            calls_connected: 0,
            calls_setup_failed: 0,
            calls_completed: 0,
            calls_dropped: 0,
            media_sent: 0,
            media_received: 0,
            media_loss_percent: 0.0,
            scale_outs: 0,
            scale_ins: 0,
            bounces: 0,
            peak_replicas: 0,
            calls_on_victims: 0,
            unsteered_scale_ins: 0,
            scaler_errors: 0,
            longest_drain_secs: 0.0,
        }
    }

    /// Records a scale-out of `n` pods leaving `serving` pods.
    pub(crate) fn scale_out(&mut self, n: u32, bounce: bool, serving: u32) {
        self.scale_outs += 1;
        self.bounces += u32::from(bounce);
        self.peak_replicas = self.peak_replicas.max(serving);
        println!(
            "   scale-out +{n} -> {serving} replicas{}",
            if bounce { " (BOUNCE)" } else { "" }
        );
    }

    /// Records a scale-in whose victim held `calls` live calls.
    pub(crate) fn scale_in(&mut self, calls: usize) {
        self.scale_ins += 1;
        self.calls_on_victims += calls as u64;
        println!("   scale-in: victim holds {calls} live calls");
    }

    /// Records a pod's exit, `drain_secs` after it was told to terminate (None: it was not).
    pub(crate) fn pod_exited(&mut self, id: usize, drain_secs: Option<f64>) {
        if let Some(s) = drain_secs {
            self.longest_drain_secs = self.longest_drain_secs.max(s);
            println!("   pod #{id} exited {s:.1}s after termination");
        }
    }

    /// Copies the call counters in at the end of the run.
    pub(crate) fn finish(&mut self, stats: &CallStats) {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        self.calls_connected = get(&stats.connected);
        self.calls_setup_failed = get(&stats.setup_failed);
        self.calls_completed = get(&stats.completed);
        self.calls_dropped = get(&stats.dropped);
        self.media_sent = get(&stats.sent);
        self.media_received = get(&stats.received);
        if self.media_sent > 0 {
            let lost = self.media_sent.saturating_sub(self.media_received) as f64;
            self.media_loss_percent = 100.0 * lost / self.media_sent as f64;
        }
    }

    /// The final report of the run, a few lines.
    pub fn summary(&self) -> String {
        format!(
            "-- {:?}: calls connected {}, completed {}, DROPPED {}, setup failures {}\n   \
             media {} sent / {} back ({:.3}% loss); scale-outs {}, scale-ins {}, bounces {}, peak replicas {}; \
             live calls on victims {}; longest drain {:.1}s",
            self.policy,
            self.calls_connected,
            self.calls_completed,
            self.calls_dropped,
            self.calls_setup_failed,
            self.media_sent,
            self.media_received,
            self.media_loss_percent,
            self.scale_outs,
            self.scale_ins,
            self.bounces,
            self.peak_replicas,
            self.calls_on_victims,
            self.longest_drain_secs,
        )
    }
}

/// One line saying what a policy does.
pub(crate) fn policy_line(policy: Policy) -> &'static str {
    match policy {
        Policy::Steered => {
            "scaler steers scale-in to the emptiest pod, which drains (SIGTERM) before it exits"
        }
        Policy::Naive => "a random pod is removed on scale-in and killed at once",
    }
}

impl DemoReport {
    /// The comparison table of both runs (markdown).
    pub fn table(&self) -> String {
        let mut s = String::from(
            "| policy | calls | dropped | media loss | scale-outs | scale-ins | bounces | peak replicas |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.runs {
            s.push_str(&format!(
                "| {:?} | {} | {} | {:.3}% | {} | {} | {} | {} |\n",
                r.policy,
                r.calls_connected,
                r.calls_dropped,
                r.media_loss_percent,
                r.scale_outs,
                r.scale_ins,
                r.bounces,
                r.peak_replicas
            ));
        }
        s
    }
}
