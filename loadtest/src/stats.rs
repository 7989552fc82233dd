//! Latency histograms (hdrhistogram, nanosecond resolution) and their JSON-friendly summaries.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency we track: anything slower is clamped (a packet that slow is as good as lost).
const MAX_NS: u64 = 60_000_000_000;

/// A latency histogram in nanoseconds with three significant digits.
#[derive(Clone, Debug)]
pub struct LatencyHist(Histogram<u64>);

impl Default for LatencyHist {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHist {
    /// An empty histogram covering 1 ns .. 60 s.
    pub fn new() -> Self {
        // Bounds are constants that hdrhistogram accepts; failure here would be a programming error.
        Self(
            Histogram::new_with_bounds(1, MAX_NS, 3)
                .unwrap_or_else(|_| unreachable!("constant bounds")),
        )
    }

    /// Records one sample (clamped to the tracked range).
    pub fn record_ns(&mut self, ns: u64) {
        self.0.saturating_record(ns.clamp(1, MAX_NS));
    }

    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(MAX_NS));
    }

    /// Adds another histogram's samples into this one.
    pub fn merge(&mut self, other: &Self) {
        // Both histograms have identical bounds, so `add` cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// True when no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Percentiles in microseconds.
    pub fn summary(&self) -> LatencySummary {
        let us = |ns: u64| ns as f64 / 1000.0;
        let q = |p: f64| {
            if self.0.is_empty() {
                0.0
            } else {
                us(self.0.value_at_quantile(p))
            }
        };
        LatencySummary {
            count: self.0.len(),
            p50_us: q(0.50),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if self.0.is_empty() {
                0.0
            } else {
                us(self.0.max())
            },
            mean_us: if self.0.is_empty() {
                0.0
            } else {
                self.0.mean() / 1000.0
            },
        }
    }
}

/// Percentiles of a latency distribution, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_merge() {
        let mut a = LatencyHist::new();
        for i in 1..=1000u64 {
            a.record(Duration::from_micros(i));
        }
        let mut b = LatencyHist::new();
        b.record(Duration::from_secs(120)); // clamped, not dropped
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 1001);
        assert!((s.p50_us - 500.0).abs() < 2.0, "{s:?}");
        assert!((s.p99_us - 990.0).abs() < 3.0, "{s:?}");
        assert!(s.max_us >= 59_000_000.0, "{s:?}");
        assert_eq!(LatencyHist::new().summary(), LatencySummary::default());
    }
}
