//! A faithful model of the control loop that runs in a cluster between this scaler and the
//! dataplane Deployment, in virtual time: KEDA's external-scaler path ([`keda`]) feeding the
//! Kubernetes HPA controller ([`hpa`]), and a simulator ([`sim`]) with a ReplicaSet that honours
//! `pod-deletion-cost`, pods that start, break and drain, and load profiles.
//!
//! ```text
//!   sim load ──> pods ──Observation──> policy (the real scaler code) ──MetricValue──┐
//!     ▲                                                                             ▼
//!   ReplicaSet <── spec.replicas ── hpa::Hpa::reconcile <── keda::ScaledObject (target, fallback)
//! ```
//! It is pure (no clock, no I/O): the tests sweep every size with it, and the demo drives real
//! stunnerd processes through the same [`keda`] and [`hpa`] code.

pub mod hpa;
pub mod keda;
pub mod manifest;
pub mod sim;
pub mod sweep;
