//! Benchmark (ignored by default): the cached decision's latency in process and GetMetrics
//! latency from the cache over 10,000 sequential calls through a real tonic client on loopback, and the upstream query count over a burst of
//! 16 concurrent clients x 1,000 calls (GetMetrics + IsActive) with a 200 ms cache interval. Run with
//! `cargo test -p scaler --test bench_getmetrics -- --ignored --nocapture`.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use hdrhistogram::Histogram;
use scaler::source::SourceDeps;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly with --ignored --nocapture"]
async fn getmetrics_latency_and_upstream_queries() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let (a, a_addr) = fake_pod(42, "READY").await;
        let (_b, b_addr) = fake_pod(17, "READY").await;
        let deps = SourceDeps { static_endpoints: vec![a_addr.to_string(), b_addr.to_string()], ..Default::default() };
        // An interval longer than the run: every call after the first is served from the cache.
        let (app, grpc, _) = start_scaler(deps, Duration::from_secs(600)).await;
        let mut c = client(grpc).await;
        let r = so_ref("bench", &[("source", "direct"), ("targetAllocationsPerPod", "10")]);
        assert_eq!(desired(&mut c, &r).await.unwrap(), 6);

        // The cache itself (what each RPC does after decoding), in process.
        let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
        for _ in 0..10_000 {
            let t = Instant::now();
            let d = app.scalers.decision(&r).await.unwrap();
            hist.record(t.elapsed().as_nanos().max(1) as u64).unwrap();
            assert_eq!(d.desired, 6);
        }
        println!(
            "cached decision in process over 10000 calls: p50 {} ns, p99 {} ns, max {} ns",
            hist.value_at_quantile(0.50),
            hist.value_at_quantile(0.99),
            hist.max()
        );
        assert!(hist.value_at_quantile(0.99) < 5_000_000, "p99 target < 5 ms");

        let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
        let calls = 10_000;
        let started = Instant::now();
        for _ in 0..calls {
            let t = Instant::now();
            let resp = c.get_metrics(metrics_req(&r)).await.unwrap().into_inner();
            hist.record(t.elapsed().as_micros() as u64).unwrap();
            assert_eq!(resp.metric_values[0].metric_value, 6);
        }
        let total = started.elapsed();
        println!(
            "GetMetrics from cache over {calls} calls: p50 {} us, p99 {} us, max {} us ({:.0} calls/s)",
            hist.value_at_quantile(0.50),
            hist.value_at_quantile(0.99),
            hist.max(),
            calls as f64 / total.as_secs_f64()
        );
        // End to end through tonic on loopback this depends on the build profile and on what
        // else the 2 shared cores run; it is reported, and only held to the target in release.
        if !cfg!(debug_assertions) {
            assert!(hist.value_at_quantile(0.99) < 5_000, "p99 target < 5 ms");
        }

        // Burst against a scaler with a 200 ms interval: upstream reads are bounded by the
        // number of intervals the burst spans, not by the number of calls.
        let interval = Duration::from_millis(200);
        let deps = SourceDeps { static_endpoints: vec![a_addr.to_string(), b_addr.to_string()], ..Default::default() };
        let (_app, grpc, _) = start_scaler(deps, interval).await;
        let c = client(grpc).await;
        let before = a.status_hits.load(Ordering::SeqCst);
        let started = Instant::now();
        let burst = (0..16).map(|_| {
            let (mut c, r) = (c.clone(), r.clone());
            tokio::spawn(async move {
                for _ in 0..500 {
                    c.get_metrics(metrics_req(&r)).await.unwrap();
                    c.is_active(r.clone()).await.unwrap();
                }
            })
        });
        futures::future::join_all(burst).await.into_iter().for_each(|j| j.unwrap());
        let elapsed = started.elapsed();
        let upstream = a.status_hits.load(Ordering::SeqCst) - before;
        let bound = (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil() as usize + 1;
        println!(
            "burst of 16 clients x 1000 calls in {elapsed:.2?} (interval {interval:?}): {upstream} upstream /status reads per pod (bound {bound})"
        );
        assert!(upstream >= 1 && upstream <= bound);
    })
    .await
    .expect("benchmark timed out");
}
