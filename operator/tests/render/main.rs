//! Renderer table tests: snapshot fixtures in, configs/objects/statuses out.

mod fixtures;

mod address;
mod auth;
mod autoscaling;
mod basics;
mod clusters;
mod dataplane;
mod listeners;
mod routes;
mod samples;
mod service;
mod status;
