//! gRPC plumbing shared by every service:
//!
//! * [`serve`]: a tonic server on a bound listener with `grpc.health.v1`, server reflection and a
//!   trace layer that continues the caller's W3C trace from the request metadata; it stops when
//!   the cancellation token fires, after health turns NOT_SERVING; [`GrpcServer::serve_draining`]
//!   keeps serving for a drain period once health says NOT_SERVING, for load balancers; a
//!   metrics layer counts and times every request (`jifen_grpc_server_*`, [`crate::grpc_metrics`]).
//! * [`TraceInjector`]: a client interceptor that writes the current span's `traceparent` into
//!   the outgoing metadata, and forwards a bearer token when given one.
//! * [`principal`]: the verified caller of a request (services verify the forwarded JWT
//!   themselves).
//! * `Status` constructors with `google.rpc` details: [`invalid_argument`] with `BadRequest`
//!   field violations, [`failure`] with `ErrorInfo` carrying a machine code.

use crate::auth::{Principal, TokenVerifier};
use opentelemetry::propagation::{Extractor, Injector};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The domain for `ErrorInfo` details.
pub const ERROR_DOMAIN: &str = "jifen";

/// `INVALID_ARGUMENT` with one `BadRequest` field violation per `(field, description)`.
pub fn invalid_argument<F, D>(violations: impl IntoIterator<Item = (F, D)>) -> Status
where
    F: Into<String>,
    D: Into<String>,
{
    let mut details = ErrorDetails::new();
    let mut summary = Vec::new();
    for (field, description) in violations {
        let (field, description) = (field.into(), description.into());
        summary.push(format!("{field}: {description}"));
        details.add_bad_request_violation(field, description);
    }
    details.set_error_info(
        "invalid_argument",
        ERROR_DOMAIN,
        std::collections::HashMap::new(),
    );
    Status::with_error_details(Code::InvalidArgument, summary.join("; "), details)
}

/// A status with an `ErrorInfo` whose reason is the machine `code` (e.g. `period_closed`).
pub fn failure(status: Code, code: &str, message: impl Into<String>) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(code, ERROR_DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(status, message, details)
}

/// A failure that also names fields (e.g. a 422 rule violation on one field).
pub fn failure_with_fields<F, D>(
    status: Code,
    code: &str,
    message: impl Into<String>,
    fields: impl IntoIterator<Item = (F, D)>,
) -> Status
where
    F: Into<String>,
    D: Into<String>,
{
    let mut details = ErrorDetails::new();
    details.set_error_info(code, ERROR_DOMAIN, std::collections::HashMap::new());
    for (f, d) in fields {
        details.add_bad_request_violation(f, d);
    }
    Status::with_error_details(status, message, details)
}

/// An internal error: logged once with its cause chain, answered opaquely.
pub fn internal(error: &(dyn std::error::Error + 'static)) -> Status {
    let chain = error_chain(error);
    tracing::error!(error = %chain, "internal error");
    failure(Code::Internal, "internal", "internal error")
}

/// `error: cause: cause…`, for the one log line of an internal error.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

/// The machine code (`ErrorInfo.reason`) and field violations carried by a status, if any.
pub fn status_details(status: &Status) -> (Option<String>, Vec<(String, String)>) {
    let details = status.get_error_details();
    let code = details.error_info().map(|i| i.reason.clone());
    let fields = details
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| (v.field.clone(), v.description.clone()))
                .collect()
        })
        .unwrap_or_default();
    (code, fields)
}

/// The caller of `request`, from its `authorization: Bearer …` metadata.
pub fn principal<T>(
    request: &tonic::Request<T>,
    verifier: &TokenVerifier,
) -> Result<Principal, Status> {
    principal_from_metadata(request.metadata(), verifier)
}

/// The caller, from raw metadata.
pub fn principal_from_metadata(
    metadata: &MetadataMap,
    verifier: &TokenVerifier,
) -> Result<Principal, Status> {
    let token = metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            failure(
                Code::Unauthenticated,
                "unauthenticated",
                "missing bearer token",
            )
        })?;
    verifier.verify(token).map_err(|e| {
        failure(
            Code::Unauthenticated,
            "invalid_token",
            format!("invalid token: {e}"),
        )
    })
}

struct MetadataWriter<'a>(&'a mut MetadataMap);

impl Injector for MetadataWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct HeaderReader<'a>(&'a http::HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the current span's trace context into `metadata`.
pub fn inject_trace(metadata: &mut MetadataMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut MetadataWriter(metadata))
    });
}

/// The remote trace context carried by HTTP (or gRPC) headers.
pub fn extract_trace(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderReader(headers)))
}

/// Client interceptor: trace context always, and a bearer token when set.
#[derive(Clone, Default)]
pub struct TraceInjector {
    bearer: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl TraceInjector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forwards `token` as `authorization: Bearer <token>`.
    pub fn with_bearer(token: &str) -> Result<Self, Status> {
        let v = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::unauthenticated("token is not valid metadata"))?;
        Ok(Self { bearer: Some(v) })
    }
}

impl tonic::service::Interceptor for TraceInjector {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        inject_trace(request.metadata_mut());
        if let Some(b) = &self.bearer {
            request.metadata_mut().insert("authorization", b.clone());
        }
        Ok(request)
    }
}

/// Makes the span of every incoming gRPC request a child of the caller's trace.
fn make_span(request: &http::Request<tonic::body::Body>) -> tracing::Span {
    let span =
        tracing::info_span!("grpc.request", rpc = %request.uri().path(), otel.kind = "server");
    let _ = span.set_parent(extract_trace(request.headers()));
    span
}

/// A tonic router ready for the service's own services, with health and reflection registered.
pub struct GrpcServer {
    health: tonic_health::server::HealthReporter,
    routes: tonic::service::Routes,
    /// The names of the services added, which health reports on.
    names: Vec<&'static str>,
}

/// Names of the services [`GrpcServer::new`] registers itself.
const BUILT_IN: [&str; 2] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
];

impl GrpcServer {
    /// Health (`""` and every named service start SERVING) and reflection over jifen's descriptors.
    pub fn new() -> Result<Self, tonic_reflection::server::Error> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(jifen_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let routes = tonic::service::Routes::new(health_service).add_service(reflection);
        Ok(Self {
            health,
            routes,
            names: Vec::new(),
        })
    }

    /// Adds a service and marks it SERVING.
    pub async fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.health
            .set_service_status(S::NAME, tonic_health::ServingStatus::Serving)
            .await;
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }

    pub fn health(&self) -> tonic_health::server::HealthReporter {
        self.health.clone()
    }

    /// Serves on `listener` until `cancel`; health turns NOT_SERVING first.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<(), tonic::transport::Error> {
        self.serve_draining(listener, cancel.clone(), cancel).await
    }

    /// Serves on `listener`. When `draining` fires, health turns NOT_SERVING for the whole server
    /// (`""`), for every service added and for the health service itself, while requests, old
    /// and new, are still answered; when `stop` fires, the server stops accepting, finishes the
    /// requests in flight and returns.
    pub async fn serve_draining(
        self,
        listener: tokio::net::TcpListener,
        draining: tokio_util::sync::CancellationToken,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<(), tonic::transport::Error> {
        let health = self.health.clone();
        // Health answers for itself too, like for every service.
        health
            .set_service_status(BUILT_IN[0], tonic_health::ServingStatus::Serving)
            .await;
        let names = self.names.clone();
        let shutdown = async move {
            draining.cancelled().await;
            for name in std::iter::once("")
                .chain(names)
                .chain(BUILT_IN.into_iter().take(1))
            {
                health
                    .set_service_status(name, tonic_health::ServingStatus::NotServing)
                    .await;
            }
            stop.cancelled().await;
        };
        let known = self
            .names
            .iter()
            .copied()
            .chain(BUILT_IN)
            .collect::<Vec<_>>();
        let trace = tower_http::trace::TraceLayer::new_for_grpc()
            .make_span_with(make_span)
            .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG));
        tonic::transport::Server::builder()
            .layer(trace)
            .layer(crate::grpc_metrics::MetricsLayer::new(known))
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                shutdown,
            )
            .await
    }
}
