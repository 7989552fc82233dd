//! Renderer table tests: snapshot fixtures in, configs/objects/statuses out.
//!
//! Tables use [`cases!`]: one `#[test]` per row, so every row is reported (and fails) on its own.

/// One `#[test]` per row: `cases! { check { row_name: (arg, ...), ... } }` generates
/// `fn row_name() { check(arg, ...) }` for each row.
macro_rules! cases {
    ($check:ident { $($name:ident: ($($arg:expr),* $(,)?)),+ $(,)? }) => {
        $(
            #[test]
            fn $name() {
                $check($($arg),*);
            }
        )+
    };
}

mod fixtures;

mod address;
mod auth;
mod autoscaling;
mod basics;
mod clusters;
mod daemonset;
mod dataplane;
mod grants;
mod healthcheck;
mod listeners;
mod routes;
mod samples;
mod service;
mod status;
mod upstream;
