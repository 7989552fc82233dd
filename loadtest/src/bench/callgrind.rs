//! `loadtest bench --callgrind`: instructions per relayed packet of each server, counted by
//! valgrind's callgrind, which the machine's noise does not move.
//!
//! ```text
//!  for server in [stunnerd, coturn]:
//!    for load in [small, large]:       same allocations, same duration, rate × 1/10 and × 1
//!      valgrind --tool=callgrind server ─ swarm ─ SIGTERM ─▶ callgrind.<server>.<load>.out
//!  Ir per packet = (Ir large − Ir small) / (relayed large − relayed small)
//! ```
//!
//! The load is [`Load::flows`] (20 allocations, 100 B, single packets) unless a call mix is
//! given (`--profile audio|video`): then its allocations, per-allocation rate, size and burst.
//!
//! Start-up, the allocations, their refreshes and deallocation and the idle timers are the same in
//! both runs, so they cancel; what remains is the cost of the extra packets at this rate (a
//! server under callgrind is tens of times slower, so the rate is low: each packet tends to get
//! a wake-up of its own, the worst case for batching). stunnerd's `callgrind_annotate` summary of
//! the large run is kept in the workdir.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use super::measure::{self, GenSettings};
use super::mix::Mix;
use super::server::{ServerKind, ServerProcess, ServerSpec};
use crate::swarm::{self, ProgressMode};
use crate::{Error, Result};

/// How long a server under valgrind gets to exit and write its profile.
const EXIT_GRACE: Duration = Duration::from_secs(60);
/// Allocations opened per second: a server under valgrind is tens of times slower.
const ARRIVAL_RATE: f64 = 200.0;

/// What the large run offers (the small run sends a tenth of the rate, all else equal).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Load {
    /// Allocations.
    pub allocations: usize,
    /// Round trips per second per allocation.
    pub packet_rate: f64,
    /// Payload bytes.
    pub size: usize,
    /// Packets per send event (a video frame).
    pub burst: usize,
    /// How long each allocation sends once ready (s).
    pub duration_s: f64,
}

impl Load {
    /// The default: 20 allocations, 500 round trips/s in all, 100 B, 6 s.
    pub fn flows() -> Self {
        Self {
            allocations: 20,
            packet_rate: 25.0,
            size: 100,
            burst: 1,
            duration_s: 6.0,
        }
    }

    /// A call mix's allocations, rate, size and burst, for 6 s.
    pub fn of_mix(mix: &Mix) -> Self {
        Self {
            allocations: mix.allocations,
            packet_rate: mix.packet_rate,
            size: mix.size,
            burst: mix.burst,
            ..Self::flows()
        }
    }

    /// Round trips per second of the large run.
    fn total_rate(&self) -> f64 {
        self.packet_rate * self.allocations as f64
    }
}

/// One server under callgrind at one load.
#[derive(Clone, Debug, Serialize)]
pub struct CallgrindRun {
    /// Round trips per second offered.
    pub offered_rt_per_s: f64,
    /// Packets relayed (both directions).
    pub relayed: u64,
    /// Round-trip loss (%).
    pub loss_pct: f64,
    /// Instructions executed by the server over its whole life.
    pub ir: u64,
    /// The callgrind output file.
    pub out: PathBuf,
}

/// Both runs of one server and the per-packet count.
#[derive(Clone, Debug, Serialize)]
pub struct CallgrindResult {
    /// Which server.
    pub server: ServerKind,
    /// What the large run offered.
    pub load: Load,
    /// The run at a tenth of the rate.
    pub small: CallgrindRun,
    /// The run at the full rate.
    pub large: CallgrindRun,
    /// (Ir large − Ir small) / (relayed large − relayed small).
    pub ir_per_packet: f64,
    /// `callgrind_annotate` of the large run (stunnerd only).
    pub annotate: Option<PathBuf>,
}

/// Reads the total instruction count (`summary:` or `totals:` line) of a callgrind output file.
pub fn parse_total_ir(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn run_once(
    spec: &ServerSpec,
    g: &GenSettings,
    load: &Load,
    rate: f64,
    out: &Path,
) -> Result<CallgrindRun> {
    let wrapper = [
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    let _ = fs::remove_file(out);
    let mut server = ServerProcess::start_wrapped(spec, &wrapper)?;
    let duration = Duration::from_secs_f64(load.duration_s);
    let mut cfg = measure::swarm_cfg(&server, g, load.allocations, rate, load.size, duration);
    cfg.burst = load.burst;
    // Slow servers: allocations may take a while, and in-flight packets need time to come back.
    cfg.arrival_rate = ARRIVAL_RATE;
    // Thousands of sockets × 4 MiB would pin gigabytes of buffer limits (as in a call mix).
    cfg.socket_buffer = 256 << 10;
    cfg.drain = Duration::from_secs(2);
    let report = swarm::run(cfg, ProgressMode::Quiet)?;
    server.check_alive()?;
    if !server.terminate(EXIT_GRACE)? {
        return Err(Error::Server {
            name: spec.kind.name().into(),
            reason: format!("did not exit within {EXIT_GRACE:?} of SIGTERM under valgrind"),
        });
    }
    let text = fs::read_to_string(out).map_err(|e| Error::io(out.display(), e))?;
    let ir = parse_total_ir(&text)
        .ok_or_else(|| Error::Config(format!("no instruction total in {}", out.display())))?;
    let t = &report.traffic;
    Ok(CallgrindRun {
        offered_rt_per_s: rate,
        relayed: t.peer_received.unwrap_or(t.received) + t.received,
        loss_pct: t.loss_pct,
        ir,
        out: out.to_path_buf(),
    })
}

/// Writes `callgrind_annotate`'s top functions of `out` next to it.
fn annotate(out: &Path) -> Result<PathBuf> {
    let o = Command::new("callgrind_annotate")
        .arg(out)
        .output()
        .map_err(|e| Error::io("run callgrind_annotate", e))?;
    let path = out.with_extension("annotate.txt");
    fs::write(&path, &o.stdout).map_err(|e| Error::io(path.display(), e))?;
    Ok(path)
}

/// Measures one server: the small and the large run, and the per-packet difference.
pub fn measure_server(spec: &ServerSpec, g: &GenSettings, load: &Load) -> Result<CallgrindResult> {
    let out = |load: &str| {
        spec.workdir
            .join(format!("callgrind.{}.{load}.out", spec.kind.name()))
    };
    let rate = load.total_rate();
    let small = run_once(spec, g, load, rate / 10.0, &out("small"))?;
    let large = run_once(spec, g, load, rate, &out("large"))?;
    let packets = large.relayed.saturating_sub(small.relayed);
    let ir_per_packet = if packets == 0 {
        0.0
    } else {
        large.ir.saturating_sub(small.ir) as f64 / packets as f64
    };
    let annotate = match spec.kind {
        ServerKind::Stunnerd => Some(annotate(&large.out)?),
        ServerKind::Coturn => None,
    };
    Ok(CallgrindResult {
        server: spec.kind,
        load: *load,
        small,
        large,
        ir_per_packet,
        annotate,
    })
}

/// The markdown table of the per-packet counts.
pub fn markdown(results: &[CallgrindResult]) -> String {
    let load = results.first().map_or_else(Load::flows, |r| r.load);
    let rate = load.total_rate();
    let burst = if load.burst > 1 {
        format!(" in bursts of {}", load.burst)
    } else {
        String::new()
    };
    let mut s = format!(
        "### Instructions per relayed packet (callgrind; {} allocations, {:.0} s at {:.0} and {rate:.0} round trips/s, {} B{burst})\n\n\
         | server | Ir per packet | relayed (small / large) | Ir total (small / large) | loss % (small / large) |\n|---|---:|---:|---:|---:|\n",
        load.allocations,
        load.duration_s,
        rate / 10.0,
        load.size,
    );
    for r in results {
        s.push_str(&format!(
            "| {} | {:.0} | {} / {} | {} / {} | {:.2} / {:.2} |\n",
            r.server.name(),
            r.ir_per_packet,
            r.small.relayed,
            r.large.relayed,
            r.small.ir,
            r.large.ir,
            r.small.loss_pct,
            r.large.loss_pct
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_either_line() {
        let out = "events: Ir\nfn=main\n1 5\nsummary: 123456\n";
        assert_eq!(parse_total_ir(out), Some(123_456));
        assert_eq!(parse_total_ir("events: Ir\ntotals: 42 7\n"), Some(42));
        assert_eq!(parse_total_ir("events: Ir\n"), None);
    }
}
