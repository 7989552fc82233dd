//! The scaler's policy and report under the modelled KEDA + HPA control loop
//! (`scaler::model`): the stall of reporting the desired count as is, and the sweep of every
//! current size from 1 to 200, both ways, with and without a configurable HPA tolerance.

use std::time::Duration;

use scaler::model::hpa::{Behavior, Hpa, Target};
use scaler::model::keda::{Fallback, FallbackBehavior, MetricType, ScaledObject};
use scaler::model::sim::{Removal, Reporter, Sim, SimConfig};
use scaler::model::sweep::{self, SweepSpec, Worst};
use scaler::policy::Policy;

const PER_POD: f64 = 100.0;
const MAX: u32 = 250;
const SYNC: Duration = Duration::from_secs(15);

/// The HPA behaviour the operator renders.
fn rendered_behavior(step: u32, tolerance: bool) -> Behavior {
    scaler::model::hpa::stunner_behavior(step, tolerance)
}

fn policy(step: u32, hpa_tolerance: f64) -> Policy {
    Policy {
        target: PER_POD,
        min: 1,
        max: MAX,
        scale_in_step: step,
        activation_threshold: 0.0,
        hpa_tolerance,
    }
}

/// The shipped configuration: the scaler's report, the rendered ScaledObject.
fn shipped(step: u32, tolerance: bool) -> SimConfig {
    let mut hpa = Hpa::new(
        1,
        MAX,
        Target::AverageValue(1.0),
        Some(rendered_behavior(step, tolerance)),
    );
    hpa.configurable_tolerance = tolerance;
    let tol = if tolerance { 0.0 } else { 0.1 };
    SimConfig {
        reporter: Reporter::Scaler(policy(step, tol)),
        removal: Removal::SteeredDrain,
        hpa,
        keda: ScaledObject::new(
            1,
            MAX,
            MetricType::AverageValue,
            Some(Fallback {
                failure_threshold: 3,
                replicas: MAX,
                behavior: FallbackBehavior::CurrentReplicasIfLower,
            }),
        ),
        sync: SYNC,
        startup: Duration::from_secs(20),
        end_rate: 1.0 / 600.0,
    }
}

/// Calls that need exactly `pods` pods.
fn calls_for(pods: u32) -> f64 {
    sweep::calls_for(pods, PER_POD)
}

/// `cur` pods, steady, then a load that needs `want`; runs `steps` syncs.
fn run(cfg: &SimConfig, cur: u32, want: u32, steps: usize) -> Sim {
    let mut sim = Sim::new(cfg.clone(), cur, calls_for(cur));
    sim.run(2);
    sim.set_load(calls_for(want));
    sim.run(steps);
    sim
}

#[test]
fn desired_count_as_is_stalls_under_the_default_tolerance() {
    let mut cfg = shipped(1, false);
    cfg.reporter = Reporter::DesiredAsIs(policy(1, 0.1));
    // No one-pod scale-out from 11 or 20 under load, for 10 minutes.
    for cur in [11, 20] {
        let sim = run(&cfg, cur, cur + 1, 40);
        assert_eq!(sim.replicas, cur, "{cur} -> {} expected to stall", cur + 1);
    }
    // No scale-in from 20 at half the load, for an hour.
    let sim = run(&cfg, 20, 10, 240);
    assert_eq!(sim.replicas, 20, "20 -> 10 expected to stall");

    // The shipped report gets all three done.
    let cfg = shipped(1, false);
    for cur in [11, 20] {
        assert!(run(&cfg, cur, cur + 1, 40).replicas > cur);
    }
    assert_eq!(run(&cfg, 20, 10, 240).replicas, 10);
}

fn spec(tolerance: f64, step: u32, largest: u32) -> SweepSpec {
    SweepSpec {
        per_pod: PER_POD,
        max: MAX,
        largest,
        tolerance,
        step,
    }
}

fn sweep_out(cfg: &SimConfig, tol: f64) -> Worst {
    sweep::scale_out(cfg, &spec(tol, 1, 200)).unwrap_or_else(|e| panic!("{e}"))
}

fn sweep_in(cfg: &SimConfig, step: u32, tol: f64, largest: u32) -> Worst {
    sweep::scale_in(cfg, &spec(tol, step, largest)).unwrap_or_else(|e| panic!("{e}"))
}

fn report(name: &str, w: &Worst) {
    println!("{name}: {w}");
}

#[test]
fn sweep_default_tolerance_both_ways() {
    let cfg = shipped(1, false);
    let out = sweep_out(&cfg, 0.1);
    report("default tolerance, scale-out", &out);
    assert!(out.time <= Duration::from_secs(120), "{out:?}");
    let inn = sweep_in(&cfg, 1, 0.1, 200);
    report("default tolerance, scale-in (step 1)", &inn);
    assert_eq!(inn.stopped_above, 0, "step 1 lands exactly");
    // 5 minutes of stabilization, then one pod a minute.
    assert!(
        inn.time <= Duration::from_secs(300 + 60 * 199 + 60),
        "{inn:?}"
    );
}

#[test]
fn sweep_configurable_tolerance_both_ways() {
    let cfg = shipped(1, true);
    let out = sweep_out(&cfg, 0.0);
    report("tolerance 0, scale-out", &out);
    assert_eq!(out.overshoot, 0, "exact with tolerance 0");
    let inn = sweep_in(&cfg, 1, 0.0, 200);
    assert_eq!(inn.stopped_above, 0);
    report("tolerance 0, scale-in (step 1)", &inn);
}

#[test]
fn sweep_larger_step_without_tolerance_stops_within_the_band() {
    // Sizes up to 80: the band matters from 10 up, and the sweep costs time.
    let cfg = shipped(3, false);
    let inn = sweep_in(&cfg, 3, 0.1, 80);
    report("default tolerance, scale-in (step 3)", &inn);
    assert!(inn.stopped_above > 0, "some stop within the band");
    let cfg = shipped(3, true);
    let inn = sweep_in(&cfg, 3, 0.0, 80);
    report("tolerance 0, scale-in (step 3)", &inn);
    assert_eq!(inn.stopped_above, 0, "tolerance 0 lands exactly");
}

#[test]
fn one_broken_pod_does_not_freeze_the_gateway() {
    // 12 pods; one crash-loops. The reading leaves it out, the ReplicaSet deletes it first on
    // the next scale-in, and the gateway still follows the load both ways.
    let cfg = shipped(1, false);
    let mut sim = Sim::new(cfg, 12, calls_for(12));
    sim.run(2);
    sim.break_pod();
    sim.set_load(calls_for(14));
    sim.run_until(20, |s| s.ready() >= 14)
        .expect("scale-out with a broken pod");
    sim.set_load(calls_for(6));
    sim.run_until(200, |s| s.replicas == 6)
        .expect("scale-in with a broken pod");
    assert!(
        sim.pods.iter().all(|p| !p.broken),
        "the broken pod went first"
    );
    assert!(sim.replicas < MAX);
}

#[test]
fn scaler_outage_keeps_the_current_size() {
    let cfg = shipped(1, false);
    let mut sim = Sim::new(cfg.clone(), 7, calls_for(7));
    sim.run(2);
    sim.scaler_down = true;
    sim.run(20);
    assert_eq!(sim.replicas, 7, "currentReplicasIfLower keeps 7");
    // KEDA's static fallback (what an older KEDA does) jumps to the maximum instead.
    let mut cfg = cfg;
    cfg.keda = ScaledObject::new(
        1,
        MAX,
        MetricType::AverageValue,
        Some(Fallback {
            failure_threshold: 3,
            replicas: 40,
            behavior: FallbackBehavior::Static,
        }),
    );
    let mut sim = Sim::new(cfg, 7, calls_for(7));
    sim.run(2);
    sim.scaler_down = true;
    sim.run(20);
    assert_eq!(sim.replicas, 40);
}

/// The hand-written ScaledObject the README tells users to write, read from the README itself
/// into the model and swept: it keeps the same promises as the one the operator renders.
#[test]
fn the_readme_scaled_object_keeps_its_promises() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let yaml = readme
        .split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains("kind: ScaledObject"))
        .expect("a ScaledObject example in the README");
    let obj: serde_json::Value = serde_norway::from_str(yaml).expect("the example parses");
    let modelled = scaler::model::manifest::read(&obj).expect("the model reads the example");
    assert_eq!(modelled.policy.scale_in_step, 1);
    let (out, inn) = modelled
        .sweep(false, modelled.keda.max)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inn.stopped_above, 0, "{inn}");
    report("README ScaledObject, scale-out", &out);
    report("README ScaledObject, scale-in", &inn);
}
