//! STUNner gateway operator: a Kubernetes Gateway API controller for STUNner.
//!
//! ```text
//!  kube reflectors ──► store::Snapshot ──► render::render (pure) ──► controller::Updater (SSA, status)
//!                                                   │
//!                                                   └──► cds::ConfigStore ──► CDS server (REST/WS)
//! ```

pub mod cds;
pub mod compat;
pub mod controller;
pub mod crd;
pub mod metrics;
pub mod render;
mod run;
pub mod store;

pub use run::{RunOptions, run};
