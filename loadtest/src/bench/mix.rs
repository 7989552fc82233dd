//! Call-mix profiles: many allocations, each one call's media, measured over a steady window.
//!
//! - `audio`: N allocations × 50 packets/s × 160 B (20 ms Opus/G.711 frames), one packet per event;
//! - `video`: N allocations × 30 frames/s, each frame a burst of 5 × 1,200 B (≈ 1.4 Mbit/s);
//! - `flows`: the classic profile (50 flows at a fixed rate, max rates, allocation rate, TLS/DTLS),
//!   run by [`super::bench`] itself.
//!
//! Every packet is echoed by the in-process peer, so each allocation relays its rate in both
//! directions: N × 50 round trips/s = N × 100 relayed packets/s for `audio`.

use std::time::Duration;

use clap::ValueEnum;
use serde::Serialize;

use super::measure::{self, GenSettings};
use super::server::ServerProcess;
use super::table::{self, Metric};
use super::window::{self, WindowPlan, WindowResult};
use crate::Result;

/// Which benchmark profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileName {
    /// 50 flows at a fixed rate, max relay rates, allocation rate and idle RSS, TLS/DTLS.
    Flows,
    /// N allocations × 50 pkt/s × 160 B.
    Audio,
    /// N allocations × 30 frames/s × 5 packets × 1,200 B.
    Video,
}

/// One call mix: what each allocation sends.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Mix {
    /// Which profile.
    pub name: ProfileName,
    /// Allocations (calls).
    pub allocations: usize,
    /// Packets per second per allocation (one direction).
    pub packet_rate: f64,
    /// Payload bytes.
    pub size: usize,
    /// Packets per send event (a video frame).
    pub burst: usize,
    /// Allocations opened per second.
    pub arrival_rate: f64,
}

impl Mix {
    /// The call mix of `name` with `allocations` calls (None: the profile's default), or None
    /// for `flows`.
    pub fn new(name: ProfileName, allocations: Option<usize>) -> Option<Self> {
        let (default_n, packet_rate, size, burst) = match name {
            ProfileName::Flows => return None,
            ProfileName::Audio => (1000, 50.0, 160, 1),
            ProfileName::Video => (100, 150.0, 1200, 5),
        };
        Some(Self {
            name,
            allocations: allocations.unwrap_or(default_n).max(1),
            packet_rate,
            size,
            burst,
            arrival_rate: 2000.0,
        })
    }

    /// Relayed packets per second offered in total (both directions).
    pub fn offered_relayed_pps(&self) -> f64 {
        2.0 * self.allocations as f64 * self.packet_rate
    }

    /// A one-line description for table titles.
    pub fn describe(&self) -> String {
        let per = if self.burst > 1 {
            format!(
                "{:.0} frames/s × {} × {} B",
                self.packet_rate / self.burst as f64,
                self.burst,
                self.size
            )
        } else {
            format!("{:.0} pkt/s × {} B", self.packet_rate, self.size)
        };
        format!(
            "{}: {} allocations × {per} (offered {} relayed pkt/s)",
            format!("{:?}", self.name).to_lowercase(),
            count(self.allocations),
            table::fmt_num(self.offered_relayed_pps())
        )
    }

    /// How long opening every allocation may take before the window opens anyway.
    fn settle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.allocations as f64 / self.arrival_rate * 3.0 + 10.0)
    }

    /// Measures the mix's steady window against `server`.
    pub fn measure(
        &self,
        server: &mut ServerProcess,
        g: &GenSettings,
        warmup: Duration,
        window: Duration,
    ) -> Result<WindowResult> {
        let rate = self.allocations as f64 * self.packet_rate;
        let mut cfg = measure::swarm_cfg(server, g, self.allocations, rate, self.size, window);
        cfg.burst = self.burst;
        cfg.arrival_rate = self.arrival_rate;
        // 10,000 sockets × 4 MiB would pin 40 GiB of buffer limits: one call needs far less.
        cfg.socket_buffer = 256 << 10;
        let plan = WindowPlan {
            warmup,
            window,
            settle_timeout: self.settle_timeout(),
        };
        window::measure(server, cfg, &plan)
    }

    /// The comparison rows of this mix, plus the generator's own CPU as a row of its own.
    pub fn metrics(&self) -> Vec<Metric<WindowResult>> {
        let at = format!("{} allocations", count(self.allocations));
        let mut v = table::window_metrics("", &at, |w: &WindowResult| w);
        v.push((
            "generator CPU-s per wall-second".into(),
            "CPU-s/s",
            table::Better::Lower,
            Box::new(|w: &WindowResult| table::Sample {
                value: w.generator_cpu_per_s,
                generator_limited: w.generator_limited,
                generator_cpu: w.generator_cpu_per_s,
            }),
        ));
        v
    }
}

/// A count with thousands separators.
fn count(n: usize) -> String {
    if n >= 1000 {
        table::fmt_num(n as f64)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_have_the_documented_shape() {
        assert!(Mix::new(ProfileName::Flows, None).is_none());
        let audio = Mix::new(ProfileName::Audio, Some(5000)).unwrap();
        assert_eq!(audio.offered_relayed_pps(), 500_000.0);
        assert!(
            audio
                .describe()
                .starts_with("audio: 5,000 allocations × 50 pkt/s × 160 B")
        );
        let video = Mix::new(ProfileName::Video, None).unwrap();
        // 30 frames/s × 5 × 1,200 B × 8 bits ≈ 1.44 Mbit/s per allocation.
        let bits = video.packet_rate * video.size as f64 * 8.0;
        assert!((1e6..=2e6).contains(&bits), "{bits}");
        assert!(
            video.describe().contains("30 frames/s × 5 × 1200 B"),
            "{}",
            video.describe()
        );
    }
}
