//! The KEDA `externalscaler.ExternalScaler` gRPC service over [`Scalers`]. Every RPC reads the
//! cached decision, so KEDA's and the HPA's frequent calls cost no upstream query; errors are
//! converted to `tonic::Status` here and nowhere else.

use std::pin::Pin;
use std::sync::Arc;

use proto::keda::external_scaler_server::ExternalScaler;
use proto::keda::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};
use tonic::codegen::tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use crate::cache::Scalers;
use crate::error::Error;
use crate::metrics::{RpcLabels, ScalerMetrics};

/// Name of the single metric reported per ScaledObject (KEDA prefixes it with `s<index>-`).
pub const METRIC_NAME: &str = "stunner-desired-replicas";

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct ExternalScalerService {
    scalers: Arc<Scalers>,
    metrics: ScalerMetrics,
}

impl ExternalScalerService {
    /// A service answering from `scalers`.
    pub fn new(scalers: Arc<Scalers>, metrics: ScalerMetrics) -> Self {
        Self { scalers, metrics }
    }

    fn count<T>(&self, method: &str, result: &Result<T, Status>) {
        let code = match result {
            Ok(_) => "ok".to_owned(),
            Err(s) => format!("{:?}", s.code()),
        };
        self.metrics
            .grpc_requests
            .get_or_create(&RpcLabels {
                method: method.to_owned(),
                code,
            })
            .inc();
    }

    async fn is_active_inner(&self, r: &ScaledObjectRef) -> Result<bool, Status> {
        Ok(self.scalers.decision(r).await?.active)
    }

    async fn get_metrics_inner(
        &self,
        req: GetMetricsRequest,
    ) -> Result<GetMetricsResponse, Status> {
        let r = req.scaled_object_ref.ok_or_else(|| {
            Error::Request {
                field: "scaledObjectRef",
                reason: "missing".into(),
            }
            .to_status()
        })?;
        let reported = self.scalers.decision(&r).await?.reported;
        let metric_name = if req.metric_name.is_empty() {
            METRIC_NAME.to_owned()
        } else {
            req.metric_name
        };
        // KEDA sums every returned value: exactly one, with both the deprecated int and the float.
        Ok(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name,
                metric_value: i64::from(reported),
                metric_value_float: f64::from(reported),
            }],
        })
    }
}

/// The StreamIsActive response stream.
pub type ActivityStream = Pin<Box<dyn Stream<Item = Result<IsActiveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalScaler for ExternalScalerService {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        let result = self.is_active_inner(request.get_ref()).await;
        self.count("IsActive", &result);
        result.map(|active| Response::new(IsActiveResponse { result: active }))
    }

    type StreamIsActiveStream = ActivityStream;

    /// Sends the current activity at once, then each change; polls the (cached) decision every
    /// interval. A backend error ends the stream with that error; KEDA reconnects.
    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let r = request.into_inner();
        let first = self
            .scalers
            .entry(&r)
            .map(|_| ())
            .map_err(|e| e.to_status());
        self.count("StreamIsActive", &first);
        first?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let scalers = self.scalers.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut tick = tokio::time::interval(scalers.interval());
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = tx.closed() => return,
                }
                let item = match scalers.decision(&r).await {
                    Ok(d) if last == Some(d.active) => continue,
                    Ok(d) => {
                        last = Some(d.active);
                        Ok(IsActiveResponse { result: d.active })
                    }
                    Err(e) => Err(e.to_status()),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    /// Validates the metadata and returns the single AverageValue target of 1 replica: the
    /// metric value is a replica count (the desired one, moved outside the HPA's tolerance by
    /// `Policy::report`), so the HPA lands on the desired count.
    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        let result = self
            .scalers
            .entry(request.get_ref())
            .map_err(|e| e.to_status());
        self.count("GetMetricSpec", &result);
        result?;
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: vec![MetricSpec {
                metric_name: METRIC_NAME.to_owned(),
                target_size: 1,
                target_size_float: 1.0,
            }],
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let result = self.get_metrics_inner(request.into_inner()).await;
        self.count("GetMetrics", &result);
        result.map(Response::new)
    }
}
