//! Where per-worker counters are registered: one `ListenerStats` / `ClusterStats` per (worker, name),
//! created on first use and kept for the life of the process so that counters stay monotonic across
//! listener restarts. The mutexes are taken at set-up and at scrape time only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::engine::{ClusterStats, DropReason, ListenerStats, Traffic};

#[derive(Debug, Default)]
struct WorkerStats {
    listeners: Mutex<BTreeMap<String, Arc<ListenerStats>>>,
    clusters: Mutex<BTreeMap<String, Arc<ClusterStats>>>,
}

/// The counters of every worker.
#[derive(Debug)]
pub struct StatsHub {
    workers: Vec<WorkerStats>,
}

/// Traffic counters summed over workers.
#[derive(Debug, Default, Clone)]
pub struct TrafficTotals {
    /// Packets received (from clients, or from peers).
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets sent (to clients, or to peers).
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

impl TrafficTotals {
    fn add(&mut self, t: &Traffic) {
        self.rx_packets += t.rx_packets.get();
        self.rx_bytes += t.rx_bytes.get();
        self.tx_packets += t.tx_packets.get();
        self.tx_bytes += t.tx_bytes.get();
    }
}

/// Listener counters summed over workers.
#[derive(Debug, Default, Clone)]
pub struct ListenerTotals {
    /// Packets and bytes exchanged with clients.
    pub traffic: TrafficTotals,
    /// Open connections.
    pub connections: i64,
    /// Connections / allocations since start.
    pub connections_total: u64,
    /// Refused permissions and channel binds.
    pub permission_denied: u64,
    /// Dropped packets by reason.
    pub dropped: [u64; DropReason::ALL.len()],
    /// Panicked listener tasks (restarted).
    pub listener_failures: u64,
    /// Panicked connection tasks.
    pub connection_failures: u64,
}

/// Cluster counters summed over workers: traffic with the cluster's peers.
pub type ClusterTotals = TrafficTotals;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StatsHub {
    /// A hub for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| WorkerStats::default())
                .collect(),
        }
    }

    /// The counters of listener `name` on `worker`.
    pub fn listener(&self, worker: usize, name: &str) -> Arc<ListenerStats> {
        let w = &self.workers[worker % self.workers.len()];
        lock(&w.listeners)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// The counters of cluster `name` on `worker`.
    pub fn cluster(&self, worker: usize, name: &str) -> Arc<ClusterStats> {
        let w = &self.workers[worker % self.workers.len()];
        lock(&w.clusters)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Listener counters summed over workers, by name.
    pub fn listener_totals(&self) -> BTreeMap<String, ListenerTotals> {
        let mut out: BTreeMap<String, ListenerTotals> = BTreeMap::new();
        for w in &self.workers {
            for (name, s) in lock(&w.listeners).iter() {
                let t = out.entry(name.clone()).or_default();
                t.traffic.add(&s.traffic);
                t.connections += s.connections.get();
                t.connections_total += s.connections_total.get();
                t.permission_denied += s.permission_denied.get();
                t.listener_failures += s.listener_failures.get();
                t.connection_failures += s.connection_failures.get();
                for (acc, c) in t.dropped.iter_mut().zip(&s.dropped) {
                    *acc += c.get();
                }
            }
        }
        out
    }

    /// Cluster counters summed over workers, by name.
    pub fn cluster_totals(&self) -> BTreeMap<String, ClusterTotals> {
        let mut out: BTreeMap<String, ClusterTotals> = BTreeMap::new();
        for w in &self.workers {
            for (name, s) in lock(&w.clusters).iter() {
                out.entry(name.clone()).or_default().add(s);
            }
        }
        out
    }
}
