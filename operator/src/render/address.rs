//! Public address of each listener, in upstream's order of precedence:
//! 1. the Gateway's `spec.addresses[0]` with the Service port,
//! 2. the LoadBalancer status of the Gateway's Service (per-port status first, then the first
//!    ingress; IP before hostname),
//! 3. the first Node's ExternalIP with the Service port's NodePort.
//!
//! Owns [`Addresses`], the per-render index of the public Service of each Gateway and the Node
//! address.

use std::collections::HashMap;

use gateway_api::gateways::Gateway;
use k8s_openapi::api::core::v1::{Service, ServicePort};

use super::keys;
use super::listener::{ListenerPlan, service_protocol};
use crate::store::{ObjectKey, Snapshot};

/// An advertised address of a listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PublicAddr {
    /// IP or hostname.
    pub(crate) addr: String,
    /// Port.
    pub(crate) port: u16,
    /// Gateway API address type (`IPAddress` or `Hostname`).
    pub(crate) kind: &'static str,
}

/// What finding public addresses reads, indexed once per render.
pub(crate) struct Addresses<'a> {
    /// The public Service of each Gateway (`ns/name`).
    public_services: HashMap<String, &'a Service>,
    /// ExternalIP of the first Node that has one (NodePort fallback).
    node_ip: Option<String>,
}

impl<'a> Addresses<'a> {
    /// Indexes the snapshot's Services and Nodes.
    pub(crate) fn new(snap: &'a Snapshot) -> Self {
        Self {
            public_services: public_services(snap),
            node_ip: first_node_ip(snap),
        }
    }

    /// The public address of each listener (`None` where none is known yet).
    pub(crate) fn find(&self, gw: &Gateway, plans: &[ListenerPlan<'_>]) -> Vec<Option<PublicAddr>> {
        let svc = self
            .public_services
            .get(&ObjectKey::of(gw).to_string())
            .copied();
        find(svc, self.node_ip.as_deref(), gw, plans)
    }
}

/// The public address of each listener given the Gateway's Service and the Node address.
fn find(
    svc: Option<&Service>,
    node_ip: Option<&str>,
    gw: &Gateway,
    plans: &[ListenerPlan<'_>],
) -> Vec<Option<PublicAddr>> {
    plans
        .iter()
        .map(|p| {
            let svc = svc?;
            let proto = service_protocol(p.protocol?);
            let spec = svc.spec.as_ref()?;
            let (idx, sp) = spec.ports.iter().flatten().enumerate().find(|(_, sp)| {
                sp.port == p.spec.port
                    && sp
                        .protocol
                        .as_deref()
                        .unwrap_or("TCP")
                        .eq_ignore_ascii_case(proto)
            })?;
            requested(gw, sp)
                .or_else(|| load_balancer(svc, idx, sp))
                .or_else(|| node_port(node_ip, sp))
        })
        .collect()
}

fn requested(gw: &Gateway, sp: &ServicePort) -> Option<PublicAddr> {
    let a = gw.spec.addresses.as_ref()?.first()?;
    let value = a.value.clone().filter(|v| !v.is_empty())?;
    let kind = if a.r#type.as_deref() == Some("Hostname") {
        "Hostname"
    } else {
        "IPAddress"
    };
    Some(PublicAddr {
        addr: value,
        port: port(sp.port)?,
        kind,
    })
}

fn load_balancer(svc: &Service, idx: usize, sp: &ServicePort) -> Option<PublicAddr> {
    if svc.spec.as_ref()?.type_.as_deref() != Some("LoadBalancer") {
        return None;
    }
    let ingress = svc
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?;
    let sp_proto = sp.protocol.as_deref().unwrap_or("TCP");
    let per_port = ingress.iter().find(|i| {
        i.ports
            .as_ref()
            .and_then(|ps| ps.get(idx))
            .is_some_and(|ps| ps.port == sp.port && ps.protocol == sp_proto)
    });
    let i = per_port.or_else(|| ingress.first())?;
    let p = port(sp.port)?;
    match (
        i.ip.as_deref().filter(|s| !s.is_empty()),
        i.hostname.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(ip), _) => Some(PublicAddr {
            addr: ip.into(),
            port: p,
            kind: "IPAddress",
        }),
        (None, Some(h)) => Some(PublicAddr {
            addr: h.into(),
            port: p,
            kind: "Hostname",
        }),
        (None, None) => None,
    }
}

fn node_port(node_ip: Option<&str>, sp: &ServicePort) -> Option<PublicAddr> {
    let np = port(sp.node_port?)?;
    Some(PublicAddr {
        addr: node_ip?.into(),
        port: np,
        kind: "IPAddress",
    })
}

fn port(p: i32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p > 0)
}

/// The Service annotated for each Gateway (`ns/name`), preferring LoadBalancer > ExternalName >
/// NodePort > ClusterIP (the operator's own Service normally is the only candidate).
fn public_services(snap: &Snapshot) -> HashMap<String, &Service> {
    let rank = |s: &Service| match s.spec.as_ref().and_then(|s| s.type_.as_deref()) {
        Some("LoadBalancer") => 3,
        Some("ExternalName") => 2,
        Some("NodePort") => 1,
        _ => 0,
    };
    let mut out: HashMap<String, &Service> = HashMap::new();
    for s in snap.services.values() {
        let Some(gw) = s
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(keys::RELATED_GATEWAY_NAME))
        else {
            continue;
        };
        match out.get(gw) {
            Some(best) if rank(best) >= rank(s) => {}
            _ => {
                out.insert(gw.clone(), s);
            }
        }
    }
    out
}

/// ExternalIP of the first Node (by name) that has one.
fn first_node_ip(snap: &Snapshot) -> Option<String> {
    snap.nodes.values().find_map(|n| {
        n.status
            .as_ref()?
            .addresses
            .as_ref()?
            .iter()
            .find(|a| a.type_ == "ExternalIP" && !a.address.is_empty())
            .map(|a| a.address.clone())
    })
}
