//! Raw per-worker counters and the swarm report built from them (JSON via serde, text for humans).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::alloc;
use super::{Progress, SwarmConfig, Transport};
use crate::client::{DataMode, Event, FailureKind};
use crate::stats::{LatencyHist, LatencySummary};

/// What one worker measured.
#[derive(Debug, Default)]
pub(crate) struct WorkerStats {
    pub(crate) ready: u64,
    pub(crate) closed: u64,
    pub(crate) failures: BTreeMap<String, u64>,
    pub(crate) alloc_latency: LatencyHist,
    pub(crate) ready_latency: LatencyHist,
    pub(crate) rtt: LatencyHist,
    pub(crate) sent: u64,
    pub(crate) send_dropped: u64,
    pub(crate) received: u64,
    /// Datagrams that were neither ours nor control (wrong channel, foreign payload).
    pub(crate) stray: u64,
    pub(crate) peer_received: u64,
    pub(crate) peer_echoed: u64,
    pub(crate) first_open: Option<Instant>,
    pub(crate) last_ready: Option<Instant>,
    pub(crate) first_failure: Option<Instant>,
    pub(crate) first_send: Option<Instant>,
    pub(crate) last_send: Option<Instant>,
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    a.into_iter().chain(b).min()
}

fn max_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    a.into_iter().chain(b).max()
}

impl WorkerStats {
    /// Counts a failed allocation.
    pub(crate) fn fail(&mut self, kind: &FailureKind, now: Instant) {
        *self.failures.entry(kind.to_string()).or_default() += 1;
        self.first_failure.get_or_insert(now);
    }

    /// Counts a failed allocation in the stats and the live progress.
    pub(crate) fn fail_counted(&mut self, kind: &FailureKind, now: Instant, progress: &Progress) {
        self.fail(kind, now);
        progress.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Accounts a client event (the mio and the DTLS workers share this bookkeeping).
    pub(crate) fn on_event(&mut self, ev: &Event, now: Instant, progress: &Progress) {
        match ev {
            Event::Allocated { latency, .. } => self.alloc_latency.record(*latency),
            Event::Ready { latency } => {
                self.ready += 1;
                self.ready_latency.record(*latency);
                self.last_ready = Some(now);
                progress.ready.fetch_add(1, Ordering::Relaxed);
            }
            Event::Failed(f) => self.fail_counted(&f.kind, now, progress),
            Event::Closed => self.closed += 1,
        }
    }

    /// Publishes the packet counters' growth since `published` (sent, received, echo peer
    /// received) to the shared progress; `peer` is the worker's echo peer count so far.
    pub(crate) fn publish(&self, progress: &Progress, peer: u64, published: &mut (u64, u64, u64)) {
        let (sent, received) = (self.sent, self.received);
        progress
            .sent
            .fetch_add(sent - published.0, Ordering::Relaxed);
        progress
            .received
            .fetch_add(received - published.1, Ordering::Relaxed);
        progress
            .peer_received
            .fetch_add(peer.saturating_sub(published.2), Ordering::Relaxed);
        *published = (sent, received, peer.max(published.2));
    }

    /// Accounts a payload received back from the peer.
    pub(crate) fn on_payload(&mut self, payload: &[u8], index: u32, now: Instant, epoch: Instant) {
        match alloc::read_payload(payload) {
            Some((ts, i)) if i == index => {
                self.received += 1;
                let now_ns = now.duration_since(epoch).as_nanos() as u64;
                self.rtt.record_ns(now_ns.saturating_sub(ts));
            }
            _ => self.stray += 1,
        }
    }

    /// Adds another worker's numbers.
    pub(crate) fn merge(&mut self, o: Self) {
        self.ready += o.ready;
        self.closed += o.closed;
        for (k, v) in o.failures {
            *self.failures.entry(k).or_default() += v;
        }
        self.alloc_latency.merge(&o.alloc_latency);
        self.ready_latency.merge(&o.ready_latency);
        self.rtt.merge(&o.rtt);
        self.sent += o.sent;
        self.send_dropped += o.send_dropped;
        self.received += o.received;
        self.stray += o.stray;
        self.peer_received += o.peer_received;
        self.peer_echoed += o.peer_echoed;
        self.first_open = min_opt(self.first_open, o.first_open);
        self.last_ready = max_opt(self.last_ready, o.last_ready);
        self.first_failure = min_opt(self.first_failure, o.first_failure);
        self.first_send = min_opt(self.first_send, o.first_send);
        self.last_send = max_opt(self.last_send, o.last_send);
    }
}

/// Allocation outcomes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AllocationReport {
    /// Allocations requested.
    pub requested: usize,
    /// Allocations that became ready (allocated + channel/permission).
    pub ready: u64,
    /// Allocations that failed (see `failures`).
    pub failed: u64,
    /// Allocations deallocated cleanly at the end.
    pub closed: u64,
    /// Ready allocations per second, from the first Allocate to the last ready.
    pub rate_per_s: f64,
    /// Allocate request to success (including the 401 round trip).
    pub latency: LatencySummary,
    /// Allocate request to ready (including the ChannelBind/CreatePermission).
    pub ready_latency: LatencySummary,
}

/// Relayed traffic.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrafficReport {
    /// Data packets the kernel accepted from the clients.
    pub sent: u64,
    /// Packets the generator could not send (socket buffer full: generator-limited).
    pub send_dropped: u64,
    /// Packets the in-process echo peer received (= relayed client → peer); None with an external peer.
    pub peer_received: Option<u64>,
    /// Packets received back by the clients (= relayed peer → client).
    pub received: u64,
    /// Datagrams not recognised as ours.
    pub stray: u64,
    /// Seconds from the first to the last data packet sent.
    pub send_window_s: f64,
    /// Packets/s sent by the clients over the send window.
    pub offered_pps: f64,
    /// Packets/s relayed towards the peer (in-process peer only).
    pub upstream_pps: Option<f64>,
    /// Packets/s relayed back to the clients.
    pub downstream_pps: f64,
    /// Relayed packets/s, both directions (upstream counted from the peer when known).
    pub relayed_pps: f64,
    /// Round-trip loss in percent: 1 - received/sent.
    pub loss_pct: f64,
}

/// The generator's own cost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GeneratorReport {
    /// Worker threads.
    pub workers: usize,
    /// CPU seconds used by the whole load-test process during the run.
    pub cpu_s: f64,
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
    /// CPU use in percent of one core.
    pub cpu_pct: f64,
}

/// Everything a swarm run measured.
#[derive(Clone, Debug, Serialize)]
pub struct SwarmReport {
    /// Server address.
    pub server: String,
    /// UDP, TCP, TLS or DTLS.
    pub transport: Transport,
    /// Channel or Send indications.
    pub mode: DataMode,
    /// Payload size (bytes).
    pub packet_size: usize,
    /// Per-allocation packet rate asked for.
    pub packet_rate: f64,
    /// Allocation outcomes.
    pub allocations: AllocationReport,
    /// Data path counters.
    pub traffic: TrafficReport,
    /// Round-trip time through the relay and the echo peer.
    pub rtt: LatencySummary,
    /// Failures by kind: TURN error code ("401", "403", "508"...), "timeout", "io", "tls",
    /// "protocol".
    pub failures: BTreeMap<String, u64>,
    /// Generator cost.
    pub generator: GeneratorReport,
}

fn span(a: Option<Instant>, b: Option<Instant>) -> Duration {
    match (a, b) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    }
}

fn per_s(count: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        count as f64 / d.as_secs_f64()
    }
}

impl SwarmReport {
    /// Builds the report from merged worker stats.
    pub(crate) fn build(cfg: &SwarmConfig, s: &WorkerStats, wall: Duration, cpu: Duration) -> Self {
        let window = span(s.first_send, s.last_send);
        let peer_received = cfg.peer.is_none().then_some(s.peer_received);
        let upstream_pps = peer_received.map(|n| per_s(n, window));
        let downstream_pps = per_s(s.received, window);
        let relayed = peer_received.unwrap_or(s.received) + s.received;
        let loss_pct = if s.sent == 0 {
            0.0
        } else {
            100.0 * s.sent.saturating_sub(s.received) as f64 / s.sent as f64
        };
        Self {
            server: cfg.server.to_string(),
            transport: cfg.transport,
            mode: cfg.mode,
            packet_size: cfg.packet_size,
            packet_rate: cfg.packet_rate,
            allocations: AllocationReport {
                requested: cfg.allocations,
                ready: s.ready,
                failed: s.failures.values().sum(),
                closed: s.closed,
                rate_per_s: per_s(s.ready, span(s.first_open, s.last_ready)),
                latency: s.alloc_latency.summary(),
                ready_latency: s.ready_latency.summary(),
            },
            traffic: TrafficReport {
                sent: s.sent,
                send_dropped: s.send_dropped,
                peer_received,
                received: s.received,
                stray: s.stray,
                send_window_s: window.as_secs_f64(),
                offered_pps: per_s(s.sent, window),
                upstream_pps,
                downstream_pps,
                relayed_pps: per_s(relayed, window),
                loss_pct,
            },
            rtt: s.rtt.summary(),
            failures: s.failures.clone(),
            generator: GeneratorReport {
                workers: cfg.workers,
                cpu_s: cpu.as_secs_f64(),
                wall_s: wall.as_secs_f64(),
                cpu_pct: 100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            },
        }
    }

    /// A human-readable summary (several lines).
    pub fn to_text(&self) -> String {
        let a = &self.allocations;
        let t = &self.traffic;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "server {} over {:?}, {:?} mode, {} B payloads",
            self.server, self.transport, self.mode, self.packet_size
        );
        let _ = writeln!(
            s,
            "allocations: {}/{} ready, {} failed, {} closed; {:.0}/s; latency p50 {:.0} us p99 {:.0} us",
            a.ready,
            a.requested,
            a.failed,
            a.closed,
            a.rate_per_s,
            a.latency.p50_us,
            a.latency.p99_us
        );
        let up = t
            .upstream_pps
            .map_or("n/a".to_owned(), |p| format!("{p:.0}"));
        let _ = writeln!(
            s,
            "traffic: sent {} ({:.0} pkt/s), relayed up {up} pkt/s, down {:.0} pkt/s, total {:.0} pkt/s, loss {:.3}%, send drops {}",
            t.sent, t.offered_pps, t.downstream_pps, t.relayed_pps, t.loss_pct, t.send_dropped
        );
        let r = &self.rtt;
        let _ = writeln!(
            s,
            "rtt: p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us",
            r.p50_us, r.p99_us, r.p999_us, r.max_us
        );
        if !self.failures.is_empty() {
            let f: Vec<String> = self
                .failures
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(s, "failures: {}", f.join(", "));
        }
        let g = &self.generator;
        let _ = writeln!(
            s,
            "generator: {:.2} CPU-s over {:.2} s ({:.0}% of one core, {} worker(s))",
            g.cpu_s, g.wall_s, g.cpu_pct, g.workers
        );
        s
    }
}
