//! Turning per-round measurements into comparison rows (median over rounds, stunnerd/coturn ratio)
//! and rendering them as a markdown table: the UDP/TCP rounds ([`RoundResult`]) and the TLS/DTLS
//! rounds ([`SecureRound`]) go through the same row builder.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::measure::{AllocResult, FixedResult, Profile, RateResult};
use super::server::ServerKind;
use crate::swarm::Transport;

/// Everything measured against one server in one round.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RoundResult {
    /// Allocation rate and idle memory.
    pub alloc: AllocResult,
    /// CPU per packet and RTT at the fixed rate.
    pub fixed: FixedResult,
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

/// One metric compared between the servers.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What is measured.
    pub metric: String,
    /// Unit of the values.
    pub unit: &'static str,
    /// Direction of "better".
    pub better: Better,
    /// Median over rounds per server (None when the server was not run).
    pub values: BTreeMap<ServerKind, f64>,
    /// Per-round values per server.
    pub rounds: BTreeMap<ServerKind, Vec<f64>>,
    /// True when the value is a lower bound because the generator saturated first.
    pub generator_limited: BTreeMap<ServerKind, bool>,
    /// stunnerd / coturn (None when either is missing or coturn is 0).
    pub ratio: Option<f64>,
}

/// Everything measured over one secure transport against one server in one round.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SecureResult {
    /// CPU per packet and RTT at the fixed rate.
    pub fixed: FixedResult,
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

/// A metric: name, unit, direction and how to read it (value, generator-limited) from a round.
type Metric<R> = (String, &'static str, Better, Box<dyn Fn(&R) -> (f64, bool)>);

fn metrics(p: &Profile) -> Vec<Metric<RoundResult>> {
    type Plain = fn(&RoundResult) -> (f64, bool);
    let v: Vec<(String, &'static str, Better, Plain)> = vec![
        (
            "max relay rate at ≤0.1% loss, 100 B".into(),
            "pkt/s",
            Better::Higher,
            |r| (r.rate_100.relayed_pps, r.rate_100.generator_limited),
        ),
        (
            "max relay rate at ≤0.1% loss, 1000 B".into(),
            "pkt/s",
            Better::Higher,
            |r| (r.rate_1000.relayed_pps, r.rate_1000.generator_limited),
        ),
        (
            format!(
                "relayed packets per server CPU-second (at {:.0} round trips/s)",
                p.fixed_rate
            ),
            "pkt/CPU-s",
            Better::Higher,
            |r| (r.fixed.pkts_per_cpu_s, false),
        ),
        (
            format!("RTT p50 at {:.0} round trips/s", p.fixed_rate),
            "µs",
            Better::Lower,
            |r| (r.fixed.rtt_p50_us, false),
        ),
        (
            format!("RTT p99 at {:.0} round trips/s", p.fixed_rate),
            "µs",
            Better::Lower,
            |r| (r.fixed.rtt_p99_us, false),
        ),
        (
            format!("allocation rate (cap {:.0}/s)", p.arrival_cap),
            "alloc/s",
            Better::Higher,
            |r| (r.alloc.rate_per_s, false),
        ),
        (
            format!(
                "RSS per 1,000 idle allocations ({} held)",
                p.idle_allocations
            ),
            "KiB",
            Better::Lower,
            |r| (r.alloc.rss_kib_per_1000, false),
        ),
    ];
    v.into_iter()
        .map(|(n, u, b, f)| -> Metric<RoundResult> { (n, u, b, Box::new(f)) })
        .collect()
}

/// The rows of the TLS/DTLS comparison: for each transport, max rate (100 B), CPU per packet and
/// RTT p50/p99 at the fixed rate.
fn secure_metrics(p: &Profile) -> Vec<Metric<SecureRound>> {
    let mut v: Vec<Metric<SecureRound>> = Vec::new();
    for t in [Transport::Tls, Transport::Dtls] {
        let name = if t == Transport::Tls { "TLS" } else { "DTLS" };
        let at = format!("at {:.0} round trips/s", p.fixed_rate);
        v.push((
            format!("{name}: max relay rate at ≤0.1% loss, 100 B"),
            "pkt/s",
            Better::Higher,
            Box::new(move |r: &SecureRound| {
                let x = &r.get(t).rate_100;
                (x.relayed_pps, x.generator_limited)
            }),
        ));
        v.push((
            format!("{name}: relayed packets per server CPU-second ({at})"),
            "pkt/CPU-s",
            Better::Higher,
            Box::new(move |r: &SecureRound| (r.get(t).fixed.pkts_per_cpu_s, false)),
        ));
        v.push((
            format!("{name}: RTT p50 {at}"),
            "µs",
            Better::Lower,
            Box::new(move |r: &SecureRound| (r.get(t).fixed.rtt_p50_us, false)),
        ));
        v.push((
            format!("{name}: RTT p99 {at}"),
            "µs",
            Better::Lower,
            Box::new(move |r: &SecureRound| (r.get(t).fixed.rtt_p99_us, false)),
        ));
    }
    v
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Builds the comparison rows from each server's rounds.
pub fn rows(p: &Profile, results: &BTreeMap<ServerKind, Vec<RoundResult>>) -> Vec<Row> {
    build_rows(metrics(p), results)
}

/// Builds the TLS/DTLS comparison rows from each server's secure rounds.
pub fn secure_rows(p: &Profile, results: &BTreeMap<ServerKind, Vec<SecureRound>>) -> Vec<Row> {
    build_rows(secure_metrics(p), results)
}

fn build_rows<R>(metrics: Vec<Metric<R>>, results: &BTreeMap<ServerKind, Vec<R>>) -> Vec<Row> {
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
                ratio: None,
            };
            for (kind, rounds) in results {
                let vals: Vec<(f64, bool)> = rounds.iter().map(&f).collect();
                let nums: Vec<f64> = vals.iter().map(|v| v.0).collect();
                row.values.insert(*kind, median(&nums));
                row.generator_limited
                    .insert(*kind, vals.iter().any(|v| v.1));
                row.rounds.insert(*kind, nums);
            }
            let (s, c) = (
                row.values.get(&ServerKind::Stunnerd),
                row.values.get(&ServerKind::Coturn),
            );
            row.ratio = match (s, c) {
                (Some(s), Some(c)) if *c > 0.0 => Some(s / c),
                _ => None,
            };
            row
        })
        .collect()
}

fn fmt_num(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

/// Renders rows as a markdown table.
pub fn markdown(title: &str, rows: &[Row]) -> String {
    let mut s = format!(
        "### {title}\n\n| metric | unit | stunnerd | coturn | stunnerd/coturn |\n|---|---|---:|---:|---:|\n"
    );
    for r in rows {
        let cell = |k: ServerKind| match r.values.get(&k) {
            Some(v) => {
                let ge = if r.generator_limited.get(&k) == Some(&true) {
                    "≥ "
                } else {
                    ""
                };
                format!("{ge}{}", fmt_num(*v))
            }
            None => "n/a".into(),
        };
        let ratio = r.ratio.map_or("n/a".into(), |x| format!("{x:.2}"));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.metric,
            r.unit,
            cell(ServerKind::Stunnerd),
            cell(ServerKind::Coturn),
            ratio
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_ratios_and_rendering() {
        let round = |rate: f64, cpu: f64| {
            let mut r = RoundResult::default();
            r.rate_100.relayed_pps = rate;
            r.fixed.pkts_per_cpu_s = cpu;
            r
        };
        let mut res = BTreeMap::new();
        res.insert(
            ServerKind::Stunnerd,
            vec![round(100_000.0, 500_000.0), round(120_000.0, 700_000.0)],
        );
        res.insert(
            ServerKind::Coturn,
            vec![round(50_000.0, 300_000.0), round(60_000.0, 300_000.0)],
        );
        res.get_mut(&ServerKind::Stunnerd).unwrap()[0]
            .rate_100
            .generator_limited = true;
        let rows = rows(&Profile::quick(), &res);
        assert_eq!(rows[0].values[&ServerKind::Stunnerd], 110_000.0);
        assert_eq!(rows[0].ratio, Some(2.0));
        assert_eq!(rows[2].ratio, Some(2.0));
        let md = markdown("t", &rows);
        assert!(md.contains("| ≥ 110,000 | 55,000 | 2.00 |"), "{md}");
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
        assert_eq!(rows[3].ratio, Some(0.5));
        assert!(rows[4].metric.starts_with("DTLS: max relay rate"));
        assert_eq!(rows[4].ratio, Some(1.5));
        assert!(
            md.contains("| RSS per 1,000 idle allocations (500 held) | KiB | 0 | 0 | n/a |"),
            "{md}"
        );
    }
}
