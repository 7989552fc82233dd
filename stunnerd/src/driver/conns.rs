//! Connection admission for TURN-TCP/TLS/DTLS listeners: at most `max_connections` open connections
//! per listener and `max_connections_per_ip` per listener and client IP, over all workers. A
//! connection holds its [`ConnPermit`] for its whole life; a refused one is closed at once and
//! counted as `stunner_listener_packets_dropped{reason="connection_limit"}`. [`OpenConnection`]
//! keeps the listener's open-connection gauge.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::engine::{ListenerId, ListenerStats};

#[derive(Debug, Default)]
struct Counts {
    per_listener: HashMap<ListenerId, u32>,
    per_ip: HashMap<(ListenerId, IpAddr), u32>,
}

/// Open connections of every listener, shared by all workers (touched on accept and close only).
#[derive(Debug, Default)]
pub(crate) struct ConnLimits(Mutex<Counts>);

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct ConnPermit {
    limits: Arc<ConnLimits>,
    listener: ListenerId,
    ip: IpAddr,
}

impl ConnLimits {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip` on `listener` under the limits (0 = unlimited), or `None`.
    pub(crate) fn admit(
        self: &Arc<Self>,
        listener: ListenerId,
        ip: IpAddr,
        (max, max_per_ip): (u32, u32),
    ) -> Option<ConnPermit> {
        let ip = ip.to_canonical();
        let mut c = self.lock();
        let total = c.per_listener.get(&listener).copied().unwrap_or(0);
        let of_ip = c.per_ip.get(&(listener, ip)).copied().unwrap_or(0);
        if (max != 0 && total >= max) || (max_per_ip != 0 && of_ip >= max_per_ip) {
            return None;
        }
        *c.per_listener.entry(listener).or_insert(0) += 1;
        *c.per_ip.entry((listener, ip)).or_insert(0) += 1;
        Some(ConnPermit {
            limits: self.clone(),
            listener,
            ip,
        })
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: K) {
    if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&key);
        }
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut c = self.limits.lock();
        decrement(&mut c.per_listener, self.listener);
        decrement(&mut c.per_ip, (self.listener, self.ip));
    }
}

/// Counts a connection as open for as long as it lives (also when its task is aborted).
pub(crate) struct OpenConnection(Arc<ListenerStats>);

impl OpenConnection {
    /// Counts one more open connection of the listener.
    pub(crate) fn new(stats: &Arc<ListenerStats>) -> Self {
        stats.connections.add(1);
        stats.connections_total.add(1);
        Self(stats.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.add(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_per_listener_limits_hold_and_free_on_drop() {
        let limits = Arc::new(ConnLimits::default());
        let (l, other) = (ListenerId(1), ListenerId(2));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let p1 = limits.admit(l, a, (3, 2)).expect("first");
        let _p2 = limits.admit(l, a, (3, 2)).expect("second");
        assert!(limits.admit(l, a, (3, 2)).is_none(), "per-IP limit");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert!(limits.admit(l, mapped, (3, 2)).is_none(), "mapped form");
        let _p3 = limits.admit(l, b, (3, 2)).expect("other IP");
        assert!(
            limits
                .admit(l, "10.0.0.3".parse().expect("ip"), (3, 2))
                .is_none()
        );
        assert!(
            limits.admit(other, a, (3, 2)).is_some(),
            "limits are per listener"
        );
        drop(p1);
        assert!(limits.admit(l, a, (3, 2)).is_some(), "freed on drop");
    }
}
