//! Error type of the scaler library and its single conversion to `tonic::Status` (the gRPC
//! boundary): bad trigger metadata is `InvalidArgument`, any backend failure is `Unavailable`
//! so KEDA's `fallback` applies instead of a 0 that would shrink the gateway.

/// Result alias of the scaler library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while answering KEDA. `Clone` because one upstream result is
/// cached and handed to every caller within the cache interval.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A trigger metadata key is missing or its value is malformed.
    #[error("scalerMetadata key `{key}`: {reason}")]
    Metadata {
        /// The offending `scalerMetadata` key.
        key: &'static str,
        /// What was expected.
        reason: String,
    },
    /// The request itself is malformed (e.g. no `scaledObjectRef`).
    #[error("request field `{field}`: {reason}")]
    Request {
        /// The offending request field.
        field: &'static str,
        /// What was expected.
        reason: String,
    },
    /// The metrics backend (Prometheus/Mimir or a dataplane pod) failed or gave no usable answer.
    #[error("metrics backend: {0}")]
    Backend(String),
    /// The Kubernetes API failed or is not configured.
    #[error("kubernetes API: {0}")]
    Kube(String),
}

impl Error {
    /// Shorthand for a metadata error naming `key`.
    pub fn metadata(key: &'static str, reason: impl Into<String>) -> Self {
        Self::Metadata {
            key,
            reason: reason.into(),
        }
    }

    /// The gRPC status KEDA sees for this error.
    pub fn to_status(&self) -> tonic::Status {
        match self {
            Self::Metadata { .. } | Self::Request { .. } => {
                tonic::Status::invalid_argument(self.to_string())
            }
            Self::Backend(_) | Self::Kube(_) => tonic::Status::unavailable(self.to_string()),
        }
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Self::Kube(e.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        e.to_status()
    }
}
