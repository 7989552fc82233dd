//! The load shape of a demo run: how many concurrent calls there should be at each moment, and the
//! autoscaler timings scaled to the run's length.

use std::time::Duration;

/// One straight segment of the call-count curve.
#[derive(Clone, Copy, Debug)]
struct Segment {
    /// How long the segment lasts.
    len: Duration,
    /// Calls at its end (the start is the previous segment's end).
    to: u32,
}

/// The call-count curve: up to a peak, down to a quarter, back to zero.
#[derive(Clone, Debug)]
pub struct Profile {
    segments: Vec<Segment>,
}

impl Profile {
    /// Ramp to `peak` calls, hold, fall to a quarter, hold, end at zero; `unit` scales every segment.
    pub fn ramp(peak: u32, unit: Duration) -> Self {
        let seg = |n: u32, to: u32| Segment { len: unit * n, to };
        let quarter = peak.div_ceil(4);
        Self {
            segments: vec![
                seg(4, peak),
                seg(3, peak),
                seg(4, quarter),
                seg(2, quarter),
                seg(2, 0),
            ],
        }
    }

    /// Total length of the curve.
    pub fn duration(&self) -> Duration {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Calls wanted `t` after the start (linear within a segment, 0 after the end).
    pub fn calls_at(&self, t: Duration) -> u32 {
        let (mut start, mut from) = (Duration::ZERO, 0u32);
        for s in &self.segments {
            if t < start + s.len {
                let frac = (t - start).as_secs_f64() / s.len.as_secs_f64().max(1e-9);
                let v = f64::from(from) + (f64::from(s.to) - f64::from(from)) * frac;
                return v.round() as u32;
            }
            start += s.len;
            from = s.to;
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_rises_holds_falls_and_ends_at_zero() {
        let p = Profile::ramp(100, Duration::from_secs(10));
        assert_eq!(p.duration(), Duration::from_secs(150));
        assert_eq!(p.calls_at(Duration::ZERO), 0);
        assert_eq!(p.calls_at(Duration::from_secs(20)), 50);
        assert_eq!(p.calls_at(Duration::from_secs(55)), 100);
        assert_eq!(p.calls_at(Duration::from_secs(110)), 25);
        assert_eq!(p.calls_at(Duration::from_secs(150)), 0);
        assert_eq!(p.calls_at(Duration::from_secs(1000)), 0);
    }
}
