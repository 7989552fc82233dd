//! Turning per-round measurements into comparison rows and rendering them as a markdown table:
//! every figure is the median over rounds with its spread (min-max), the stunnerd/coturn ratio is
//! the median of the per-round ratios (round i of one server against round i of the other: the
//! rounds alternate, so a pair shares the machine's noise) with their spread, and every row shows
//! the generator's own CPU during the measurement it came from. The UDP/TCP rounds
//! ([`RoundResult`]), the TLS/DTLS rounds ([`SecureRound`]) and the call-mix rounds
//! ([`WindowResult`]) go through the same row builder.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::measure::{AllocResult, Profile, RateResult};
use super::server::ServerKind;
use super::window::WindowResult;
use crate::swarm::Transport;

/// Everything measured against one server in one round.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RoundResult {
    /// Allocation rate and idle memory.
    pub alloc: AllocResult,
    /// CPU per packet, loss, RTT and RSS at the fixed rate (steady window).
    pub fixed: WindowResult,
    /// Max relay rate with 100-byte payloads.
    pub rate_100: RateResult,
    /// Max relay rate with 1000-byte payloads.
    pub rate_1000: RateResult,
}

/// Whether larger values of a metric are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Throughput-like.
    Higher,
    /// Latency/memory-like.
    Lower,
}

/// One figure of one round: its value, whether the generator saturated first (a lower bound),
/// and the generator's CPU-seconds per wall-second while it was measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    /// The figure.
    pub value: f64,
    /// True when the generator, not the server, was the limit.
    pub generator_limited: bool,
    /// Generator CPU-seconds per wall-second (1.0 = one core).
    pub generator_cpu: f64,
}

/// Median and spread of one figure over rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Median, min and max of `v` (all 0 when empty).
    pub fn of(v: &[f64]) -> Self {
        let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        let median = match s.len() {
            0 => 0.0,
            n if n % 2 == 1 => s[n / 2],
            n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        };
        Self {
            median,
            min: s.first().copied().unwrap_or(0.0),
            max: s.last().copied().unwrap_or(0.0),
        }
    }

    /// Max over min, minus one (0.1 = the rounds spread over 10 %).
    pub fn relative(&self) -> f64 {
        if self.min > 0.0 {
            self.max / self.min - 1.0
        } else {
            0.0
        }
    }
}

/// One metric compared between the servers.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What is measured.
    pub metric: String,
    /// Unit of the values.
    pub unit: &'static str,
    /// Direction of "better".
    pub better: Better,
    /// Median and spread over rounds per server (absent when the server was not run).
    pub values: BTreeMap<ServerKind, Spread>,
    /// Per-round values per server.
    pub rounds: BTreeMap<ServerKind, Vec<f64>>,
    /// True when a value is a lower bound because the generator saturated first.
    pub generator_limited: BTreeMap<ServerKind, bool>,
    /// Median generator CPU-seconds per wall-second during the measurements of this row.
    pub generator_cpu: BTreeMap<ServerKind, f64>,
    /// stunnerd / coturn per round pair: median and spread (None when either is missing or a
    /// coturn value is 0).
    pub ratio: Option<Spread>,
}

/// Everything measured over one secure transport against one server in one round.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SecureResult {
    /// CPU per packet, loss and RTT at the fixed rate (steady window).
    pub fixed: WindowResult,
    /// Max relay rate with 100-byte payloads.
    pub rate_100: RateResult,
}

/// The TLS and DTLS measurements of one server in one round.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SecureRound {
    /// TURN over TLS.
    pub tls: SecureResult,
    /// TURN over DTLS.
    pub dtls: SecureResult,
}

impl SecureRound {
    fn get(&self, t: Transport) -> &SecureResult {
        match t {
            Transport::Dtls => &self.dtls,
            _ => &self.tls,
        }
    }
}

/// A metric: name, unit, direction and how to read its sample from a round.
pub type Metric<R> = (String, &'static str, Better, Box<dyn Fn(&R) -> Sample>);

fn plain(value: f64, generator_cpu: f64) -> Sample {
    Sample {
        value,
        generator_limited: false,
        generator_cpu,
    }
}

fn rate_sample(r: &RateResult) -> Sample {
    Sample {
        value: r.relayed_pps,
        generator_limited: r.generator_limited,
        generator_cpu: r.generator_cpu,
    }
}

/// The rows of a steady window (call mixes, and the fixed rate of `flows`): CPU per million
/// packets, relayed rate, loss, RTT p50/p99/p99.9, server RSS. `get` picks the window out of a
/// round; `at` names the load.
pub fn window_metrics<R: 'static>(
    prefix: &str,
    at: &str,
    get: fn(&R) -> &WindowResult,
) -> Vec<Metric<R>> {
    type Read = fn(&WindowResult) -> f64;
    let v: [(&str, &'static str, Better, Read); 9] = [
        (
            "server CPU-s per million relayed packets",
            "CPU-s/Mpkt",
            Better::Lower,
            |w| w.cpu_s_per_m,
        ),
        (
            "relayed packets/s in the window",
            "pkt/s",
            Better::Higher,
            |w| w.relayed_pps,
        ),
        (
            "server wake-ups per 1,000 relayed packets",
            "wake-ups",
            Better::Lower,
            |w| w.wakeups_per_kpkt,
        ),
        (
            "server waiting for a CPU (machine contention)",
            "s/s",
            Better::Lower,
            |w| w.server_cpu_wait_per_s,
        ),
        ("round-trip loss", "%", Better::Lower, |w| w.loss_pct),
        ("RTT p50", "µs", Better::Lower, |w| w.rtt_p50_us),
        ("RTT p99", "µs", Better::Lower, |w| w.rtt_p99_us),
        ("RTT p99.9", "µs", Better::Lower, |w| w.rtt_p999_us),
        (
            "server RSS at the end of the window",
            "MiB",
            Better::Lower,
            |w| w.rss_kib / 1024.0,
        ),
    ];
    v.into_iter()
        .map(|(name, unit, better, read)| -> Metric<R> {
            let f = move |r: &R| {
                let w = get(r);
                Sample {
                    value: read(w),
                    generator_limited: w.generator_limited,
                    generator_cpu: w.generator_cpu_per_s,
                }
            };
            (format!("{prefix}{name} ({at})"), unit, better, Box::new(f))
        })
        .collect()
}

fn metrics(p: &Profile) -> Vec<Metric<RoundResult>> {
    let mut v: Vec<Metric<RoundResult>> = vec![
        (
            "max relay rate at ≤0.1% loss, 100 B".into(),
            "pkt/s",
            Better::Higher,
            Box::new(|r: &RoundResult| rate_sample(&r.rate_100)),
        ),
        (
            "delivered at 1.5× the max offered rate, 100 B".into(),
            "pkt/s",
            Better::Higher,
            Box::new(|r: &RoundResult| rate_sample_overload(&r.rate_100)),
        ),
        (
            "max relay rate at ≤0.1% loss, 1000 B".into(),
            "pkt/s",
            Better::Higher,
            Box::new(|r: &RoundResult| rate_sample(&r.rate_1000)),
        ),
    ];
    let at = format!("{} flows, {:.0} round trips/s", p.flows, p.fixed_rate);
    v.extend(window_metrics("", &at, |r: &RoundResult| &r.fixed));
    v.push((
        format!("allocation rate (cap {:.0}/s)", p.arrival_cap),
        "alloc/s",
        Better::Higher,
        Box::new(|r: &RoundResult| plain(r.alloc.rate_per_s, r.alloc.generator_cpu)),
    ));
    v.push((
        format!(
            "RSS per 1,000 idle allocations ({} held)",
            p.idle_allocations
        ),
        "KiB",
        Better::Lower,
        Box::new(|r: &RoundResult| plain(r.alloc.rss_kib_per_1000, r.alloc.generator_cpu)),
    ));
    v
}

fn rate_sample_overload(r: &RateResult) -> Sample {
    r.overload
        .as_ref()
        .map_or_else(Sample::default, |s| Sample {
            value: s.relayed_pps,
            generator_limited: s.generator_limited,
            generator_cpu: s.generator_cpu,
        })
}

/// The rows of the TLS/DTLS comparison: for each transport, max rate (100 B), then the steady
/// window's CPU per packet and RTT.
fn secure_metrics(p: &Profile) -> Vec<Metric<SecureRound>> {
    let mut v: Vec<Metric<SecureRound>> = Vec::new();
    let at = format!("{} flows, {:.0} round trips/s", p.flows, p.fixed_rate);
    for (t, name, get) in [
        (
            Transport::Tls,
            "TLS: ",
            (|r: &SecureRound| &r.tls.fixed) as fn(&SecureRound) -> &WindowResult,
        ),
        (Transport::Dtls, "DTLS: ", |r: &SecureRound| &r.dtls.fixed),
    ] {
        v.push((
            format!("{name}max relay rate at ≤0.1% loss, 100 B"),
            "pkt/s",
            Better::Higher,
            Box::new(move |r: &SecureRound| rate_sample(&r.get(t).rate_100)),
        ));
        let w = window_metrics(name, &at, get);
        // CPU per packet and RTT p50/p99 (loss and RSS add little for the secure transports).
        v.extend(
            w.into_iter()
                .enumerate()
                .filter(|(i, _)| [0, 5, 6].contains(i))
                .map(|(_, m)| m),
        );
    }
    v
}

/// Builds the comparison rows from each server's rounds.
pub fn rows(p: &Profile, results: &BTreeMap<ServerKind, Vec<RoundResult>>) -> Vec<Row> {
    build_rows(metrics(p), results)
}

/// Builds the TLS/DTLS comparison rows from each server's secure rounds.
pub fn secure_rows(p: &Profile, results: &BTreeMap<ServerKind, Vec<SecureRound>>) -> Vec<Row> {
    build_rows(secure_metrics(p), results)
}

/// Builds rows of `metrics` from each server's rounds.
pub fn build_rows<R>(metrics: Vec<Metric<R>>, results: &BTreeMap<ServerKind, Vec<R>>) -> Vec<Row> {
    metrics
        .into_iter()
        .map(|(metric, unit, better, f)| {
            let mut row = Row {
                metric,
                unit,
                better,
                values: BTreeMap::new(),
                rounds: BTreeMap::new(),
                generator_limited: BTreeMap::new(),
                generator_cpu: BTreeMap::new(),
                ratio: None,
            };
            for (kind, rounds) in results {
                let samples: Vec<Sample> = rounds.iter().map(&f).collect();
                let nums: Vec<f64> = samples.iter().map(|s| s.value).collect();
                let gen_cpu: Vec<f64> = samples.iter().map(|s| s.generator_cpu).collect();
                row.values.insert(*kind, Spread::of(&nums));
                row.generator_limited
                    .insert(*kind, samples.iter().any(|s| s.generator_limited));
                row.generator_cpu.insert(*kind, Spread::of(&gen_cpu).median);
                row.rounds.insert(*kind, nums);
            }
            row.ratio = paired_ratio(&row.rounds);
            row
        })
        .collect()
}

/// stunnerd / coturn round by round (as many pairs as both have), median and spread.
fn paired_ratio(rounds: &BTreeMap<ServerKind, Vec<f64>>) -> Option<Spread> {
    let s = rounds.get(&ServerKind::Stunnerd)?;
    let c = rounds.get(&ServerKind::Coturn)?;
    let ratios: Vec<f64> = s.iter().zip(c).map(|(s, c)| s / c).collect();
    (!ratios.is_empty() && ratios.iter().all(|r| r.is_finite())).then(|| Spread::of(&ratios))
}

/// A number for the table: thousands separated above 1,000, three significant digits below.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        let digits = format!("{a:.0}");
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        return if v < 0.0 { format!("-{out}") } else { out };
    }
    match a {
        x if x >= 100.0 || x == 0.0 => format!("{v:.0}"),
        x if x >= 10.0 => format!("{v:.1}"),
        x if x >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// `median [min-max]`, or just the median when every round agreed (or there was one).
fn fmt_spread(s: &Spread) -> String {
    if s.min == s.max {
        fmt_num(s.median)
    } else {
        format!(
            "{} [{}-{}]",
            fmt_num(s.median),
            fmt_num(s.min),
            fmt_num(s.max)
        )
    }
}

/// Renders rows as a markdown table.
pub fn markdown(title: &str, rows: &[Row]) -> String {
    let mut s = format!(
        "### {title}\n\n| metric | unit | stunnerd | coturn | stunnerd/coturn | generator CPU-s/s (s / c) |\n|---|---|---:|---:|---:|---:|\n"
    );
    for r in rows {
        let cell = |k: ServerKind| match r.values.get(&k) {
            Some(v) => {
                let ge = if r.generator_limited.get(&k) == Some(&true) {
                    "≥ "
                } else {
                    ""
                };
                format!("{ge}{}", fmt_spread(v))
            }
            None => "n/a".into(),
        };
        let ratio = r.ratio.map_or("n/a".into(), |x| {
            if x.min == x.max {
                format!("{:.2}", x.median)
            } else {
                format!("{:.2} [{:.2}-{:.2}]", x.median, x.min, x.max)
            }
        });
        let g = |k: ServerKind| {
            r.generator_cpu
                .get(&k)
                .map_or("-".into(), |g| format!("{g:.2}"))
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} / {} |",
            r.metric,
            r.unit,
            cell(ServerKind::Stunnerd),
            cell(ServerKind::Coturn),
            ratio,
            g(ServerKind::Stunnerd),
            g(ServerKind::Coturn),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(rate: f64, cpu: f64) -> RoundResult {
        let mut r = RoundResult::default();
        r.rate_100.relayed_pps = rate;
        r.fixed.cpu_s_per_m = cpu;
        r.fixed.generator_cpu_per_s = 0.25;
        r
    }

    #[test]
    fn a_generator_limited_window_is_marked() {
        let mut res = BTreeMap::new();
        let mut slow = round(1.0, 3.0);
        slow.fixed.generator_limited = true;
        res.insert(ServerKind::Stunnerd, vec![slow]);
        res.insert(ServerKind::Coturn, vec![round(1.0, 6.0)]);
        let rows = rows(&Profile::quick(), &res);
        let cpu = rows.iter().find(|r| r.unit == "CPU-s/Mpkt").unwrap();
        assert!(cpu.generator_limited[&ServerKind::Stunnerd]);
        assert!(markdown("t", &rows).contains("| ≥ 3.00 | 6.00 |"));
    }

    #[test]
    fn medians_spreads_paired_ratios_and_rendering() {
        let mut res = BTreeMap::new();
        res.insert(
            ServerKind::Stunnerd,
            vec![
                round(100_000.0, 3.0),
                round(120_000.0, 4.0),
                round(110_000.0, 3.5),
            ],
        );
        res.insert(
            ServerKind::Coturn,
            vec![
                round(50_000.0, 6.0),
                round(60_000.0, 8.0),
                round(55_000.0, 7.0),
            ],
        );
        res.get_mut(&ServerKind::Stunnerd).unwrap()[0]
            .rate_100
            .generator_limited = true;
        let rows = rows(&Profile::quick(), &res);
        let s = rows[0].values[&ServerKind::Stunnerd];
        assert_eq!((s.median, s.min, s.max), (110_000.0, 100_000.0, 120_000.0));
        let ratio = rows[0].ratio.unwrap();
        assert_eq!((ratio.median, ratio.min, ratio.max), (2.0, 2.0, 2.0));
        let cpu = rows.iter().find(|r| r.unit == "CPU-s/Mpkt").unwrap();
        assert_eq!(cpu.ratio.unwrap().median, 0.5);
        assert_eq!(cpu.generator_cpu[&ServerKind::Coturn], 0.25);
        let md = markdown("t", &rows);
        assert!(
            md.contains("| ≥ 110,000 [100,000-120,000] | 55,000 [50,000-60,000] | 2.00 |"),
            "{md}"
        );
        assert!(
            md.contains("| 3.50 [3.00-4.00] | 7.00 [6.00-8.00] | 0.50 |"),
            "{md}"
        );
        assert!(md.contains("| 0.25 / 0.25 |"), "{md}");
    }

    #[test]
    fn ratio_spread_is_per_round_pair() {
        let mut rounds = BTreeMap::new();
        rounds.insert(ServerKind::Stunnerd, vec![2.0, 3.0, 4.0]);
        rounds.insert(ServerKind::Coturn, vec![4.0, 3.0, 2.0]);
        let r = paired_ratio(&rounds).unwrap();
        assert_eq!((r.median, r.min, r.max), (1.0, 0.5, 2.0));
        rounds.insert(ServerKind::Coturn, vec![0.0]);
        assert_eq!(
            paired_ratio(&rounds),
            None,
            "a zero coturn value gives no ratio"
        );
    }

    #[test]
    fn secure_rows_cover_both_transports() {
        let secure = |pps: f64, rtt: f64| {
            let mut r = SecureRound::default();
            r.dtls.rate_100.relayed_pps = pps;
            r.tls.fixed.rtt_p99_us = rtt;
            r
        };
        let mut res = BTreeMap::new();
        res.insert(ServerKind::Stunnerd, vec![secure(30_000.0, 500.0)]);
        res.insert(ServerKind::Coturn, vec![secure(20_000.0, 1000.0)]);
        let rows = secure_rows(&Profile::quick(), &res);
        assert_eq!(rows.len(), 8);
        assert!(
            rows[3].metric.starts_with("TLS: RTT p99"),
            "{}",
            rows[3].metric
        );
        assert_eq!(rows[3].ratio.unwrap().median, 0.5);
        assert!(rows[4].metric.starts_with("DTLS: max relay rate"));
        assert_eq!(rows[4].ratio.unwrap().median, 1.5);
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(250.4), "250");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(2.345), "2.35");
        assert_eq!(fmt_num(0.01234), "0.012");
        assert_eq!(fmt_num(0.0), "0");
    }
}
