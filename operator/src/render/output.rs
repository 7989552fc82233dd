//! What a render produces: [`Rendered`], the objects, configs and statuses the operator wants
//! the cluster to hold, and [`OwnedKind`], the kinds of object it creates per Gateway.

use std::collections::BTreeMap;

use gateway_api::experimental::udproutes::UdpRouteStatus;
use gateway_api::gatewayclasses::GatewayClassStatus;
use gateway_api::gateways::GatewayStatus;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use proto::config::StunnerConfig;

use super::keda::ScaledObject;
use super::routes::RouteId;
use crate::store::ObjectKey;

/// A kind of object the operator creates per Gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OwnedKind {
    /// The dataplane Deployment.
    Deployment,
    /// The dataplane DaemonSet (Dataplane `spec.dataplaneResource: DaemonSet`).
    DaemonSet,
    /// The LoadBalancer (or NodePort, ...) Service.
    Service,
    /// The KEDA ScaledObject of an autoscaled Gateway.
    ScaledObject,
    /// The autoscaling/v2 HPA of an autoscaled Gateway (when KEDA is not served).
    HorizontalPodAutoscaler,
}

/// Everything a render produces.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// stunnerd config per Gateway (`admin.name` = key) of every Gateway that rendered.
    pub configs: BTreeMap<ObjectKey, StunnerConfig>,
    /// Dataplane Deployments to apply.
    pub deployments: Vec<Deployment>,
    /// Dataplane DaemonSets to apply (Gateways whose Dataplane asks for a DaemonSet).
    pub daemon_sets: Vec<DaemonSet>,
    /// Gateway Services to apply.
    pub services: Vec<Service>,
    /// KEDA ScaledObjects of autoscaled Gateways (when KEDA is served).
    pub scaled_objects: Vec<ScaledObject>,
    /// CPU HPAs of autoscaled Gateways (when KEDA is not served).
    pub hpas: Vec<HorizontalPodAutoscaler>,
    /// Status of each managed GatewayClass, by name.
    pub gateway_class_statuses: BTreeMap<String, GatewayClassStatus>,
    /// Status of each managed Gateway.
    pub gateway_statuses: BTreeMap<ObjectKey, GatewayStatus>,
    /// Status of each route with at least one parent of ours (or a stale entry of ours).
    pub route_statuses: BTreeMap<RouteId, UdpRouteStatus>,
    /// Operator-owned objects no Gateway wants any more.
    pub orphans: Vec<(OwnedKind, ObjectKey)>,
}
