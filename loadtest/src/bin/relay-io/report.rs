//! Per-run JSON lines and the summary tables: median [min–max] over the repetitions of CPU-s per
//! million datagrams (= µs per datagram), its kernel share, and syscalls per datagram.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::run::{Mode, Sample};

/// Which cell of the table a run belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) side: &'static str,
    pub(crate) sockets: usize,
    pub(crate) batch: usize,
    pub(crate) mode: Mode,
}

/// Every sample so far, by cell.
#[derive(Default)]
pub(crate) struct Results {
    cells: BTreeMap<Key, Vec<Sample>>,
}

/// Median, minimum and maximum of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Spread {
    pub(crate) fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    fn show(&self, decimals: usize) -> String {
        format!(
            "{:.d$} [{:.d$}–{:.d$}]",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

/// µs of `cpu` per handled datagram (= CPU-s per million).
fn per_packet_us(cpu_secs: f64, packets: u64) -> f64 {
    cpu_secs * 1e6 / packets.max(1) as f64
}

/// The figures of one sample that the table summarises.
struct Figures {
    cpu: f64,
    kernel_share: f64,
    syscalls: f64,
    other: f64,
}

fn figures(mode: Mode, s: &Sample) -> Figures {
    let n = s.handled(mode);
    let cpu = s.cpu.total().as_secs_f64();
    let other = s.process_cpu.as_secs_f64() - cpu;
    Figures {
        cpu: per_packet_us(cpu, n),
        kernel_share: 100.0 * s.cpu.sys.as_secs_f64() / cpu.max(1e-9),
        syscalls: s.syscalls as f64 / n.max(1) as f64,
        other: per_packet_us(other.max(0.0), n),
    }
}

impl Results {
    pub(crate) fn add(&mut self, key: Key, sample: Sample) {
        self.cells.entry(key).or_default().push(sample);
    }

    fn spread(&self, key: &Key, f: impl Fn(&Figures) -> f64) -> Option<Spread> {
        let samples = self.cells.get(key)?;
        let values: Vec<f64> = samples.iter().map(|s| f(&figures(key.mode, s))).collect();
        Spread::of(&values)
    }

    /// The markdown tables: every cell, then the io_uring mode against its baseline.
    pub(crate) fn tables(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| side | N sockets | B batch | mode | CPU-s per 1M pkt (measuring thread) | \
             kernel % | syscalls/pkt | other threads CPU-s per 1M pkt | received/sent |\n\
             |---|---:|---:|---|---:|---:|---:|---:|---:|\n",
        );
        for (key, samples) in &self.cells {
            let cpu = self.spread(key, |f| f.cpu);
            let sys = self.spread(key, |f| f.kernel_share);
            let calls = self.spread(key, |f| f.syscalls);
            let other = self.spread(key, |f| f.other);
            let (sent, received) = samples
                .iter()
                .fold((0, 0), |(a, b), s| (a + s.sent, b + s.received));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {received}/{sent} |",
                key.side,
                key.sockets,
                key.batch,
                key.mode.name(),
                show(cpu, 3),
                show(sys, 0),
                show(calls, 3),
                show(other, 3),
            );
        }
        out.push_str(&self.savings());
        out
    }

    /// Median CPU of each io_uring cell relative to its baseline cell, and the saving paired by
    /// repetition (the two runs of a pair are adjacent in time, so they share the machine's
    /// background load; this spread is the robust one on a busy machine).
    fn savings(&self) -> String {
        let mut out = String::from(
            "\n| side | N sockets | B batch | baseline CPU-s/1M | io_uring CPU-s/1M | io_uring saves \
             (medians) | saving paired by repetition |\n|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for key in self.cells.keys().filter(|k| k.mode.uses_uring()) {
            let base = Key {
                mode: key.mode.baseline(),
                ..*key
            };
            let (Some(u), Some(b)) = (self.spread(key, |f| f.cpu), self.spread(&base, |f| f.cpu))
            else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.3} | {:.3} | {:.0} % | {} % |",
                key.side,
                key.sockets,
                key.batch,
                b.median,
                u.median,
                saving(b.median, u.median),
                show(self.paired_saving(key, &base), 0),
            );
        }
        out
    }

    fn paired_saving(&self, uring: &Key, base: &Key) -> Option<Spread> {
        let (u, b) = (self.cells.get(uring)?, self.cells.get(base)?);
        let per_rep: Vec<f64> = u
            .iter()
            .zip(b)
            .map(|(u, b)| saving(figures(base.mode, b).cpu, figures(uring.mode, u).cpu))
            .collect();
        Spread::of(&per_rep)
    }
}

/// How much less `new` is than `old`, in percent.
fn saving(old: f64, new: f64) -> f64 {
    100.0 * (1.0 - new / old.max(1e-9))
}

fn show(s: Option<Spread>, decimals: usize) -> String {
    s.map_or_else(|| "-".to_owned(), |s| s.show(decimals))
}

/// One JSON line for a run.
pub(crate) fn json_line(key: &Key, rep: usize, s: &Sample) -> String {
    serde_json::json!({
        "side": key.side,
        "mode": key.mode.name(),
        "sockets": key.sockets,
        "batch": key.batch,
        "rep": rep,
        "sent": s.sent,
        "received": s.received,
        "cpu_s": s.cpu.total().as_secs_f64(),
        "sys_s": s.cpu.sys.as_secs_f64(),
        "process_cpu_s": s.process_cpu.as_secs_f64(),
        "syscalls": s.syscalls,
        "pauses": s.pauses,
        "rearms": s.rearms,
        "wall_s": s.wall.as_secs_f64(),
    })
    .to_string()
}

/// One JSON line for a mode that was not run, and why.
pub(crate) fn json_skip(mode: Mode, reason: &str) -> String {
    serde_json::json!({ "side": mode.side(), "mode": mode.name(), "skipped": reason }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle_value_or_the_mean_of_the_two() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of(&[]), None);
    }
}
