//! Per-source budget of unauthenticated challenges (401/438) on datagram listeners: a spoofed
//! source cannot turn the server into a reflector. Each source IP has a token bucket; loopback
//! sources are exempt (they cannot be spoofed from outside the host), stream transports are not
//! checked at all (their source is proven by the handshake).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Challenges per second a source may get once its burst is spent.
const RATE: f64 = 100.0;
/// Challenges a source may get at once.
const BURST: f64 = 200.0;
/// Sources tracked before idle ones are forgotten.
const MAX_SOURCES: usize = 16_384;
/// A source silent this long starts over with a full bucket.
const FORGET_AFTER: Duration = Duration::from_secs((BURST / RATE) as u64 + 1);

/// Token buckets by source IP (one per engine shard).
#[derive(Debug, Default)]
pub(crate) struct ChallengeLimiter {
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl ChallengeLimiter {
    /// Whether `ip` may get one more challenge at `now` (and takes it).
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let ip = ip.to_canonical();
        if ip.is_loopback() {
            return true;
        }
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&ip) {
            self.buckets
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < FORGET_AFTER);
        }
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&ip) {
            return false;
        }
        let (tokens, at) = self.buckets.entry(ip).or_insert((BURST, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * RATE;
        *tokens = (*tokens + refill).min(BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_burst_then_the_rate_and_loopback_is_exempt() {
        let mut l = ChallengeLimiter::default();
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let granted = (0..1000).filter(|_| l.allow(ip, now)).count();
        assert_eq!(granted, BURST as usize);
        assert!(
            l.allow("192.0.2.8".parse().expect("ip"), now),
            "others unaffected"
        );
        let later = now + Duration::from_millis(100);
        let refilled = (0..1000).filter(|_| l.allow(ip, later)).count();
        assert_eq!(refilled, (RATE / 10.0) as usize);
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        assert_eq!((0..1000).filter(|_| l.allow(lo, now)).count(), 1000);
    }
}
