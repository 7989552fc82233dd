//! stunner-scaler: a KEDA external scaler for STUNner dataplanes.
//!
//! ```text
//!  KEDA ──gRPC──> grpc (ExternalScaler) ──> cache (per ScaledObject, 1 query/interval)
//!                                              │            │
//!                      metadata (parse) <──────┘            ├─> source::{prometheus, direct}
//!                                                           ├─> policy (pure replica policy)
//!                                                           └─> steering (pod-deletion-cost)
//!  Prometheus ──HTTP──> server (/metrics, /healthz, /readyz)
//! ```

#![forbid(unsafe_code)]

pub mod cache;
pub mod error;
pub mod grpc;
pub mod metadata;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod server;
pub mod source;
pub mod steering;

pub use error::{Error, Result};
pub use server::{App, Options, TlsFiles, run};
