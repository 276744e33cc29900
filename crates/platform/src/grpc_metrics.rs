//! The gRPC server's request metrics, as a tower layer in the shared server assembly
//! ([`crate::grpc::GrpcServer`]):
//!
//! * `jifen_grpc_server_requests_total{service,method,code}`: one per finished request, `code`
//!   the gRPC status name (`OK`, `InvalidArgument`, `Internal`, …);
//! * `jifen_grpc_server_request_duration_seconds{service,method}`: from the request's arrival to
//!   the end of its answer.
//!
//! `service` is the gRPC service (`jifen.members.v1.MembersService`), `method` the RPC
//! (`GetMember`). The code is read where gRPC puts it: in the response headers for a
//! trailers-only answer (every error tonic returns from a handler), else in the trailers at the
//! end of the body. An answer whose body is dropped before its trailers (the client went away)
//! counts as `Cancelled`. Paths of services the server does not serve count under `unknown`, so
//! a caller cannot create label values at will.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame};
use tonic::Code;

/// Counter of finished requests.
pub const REQUESTS_TOTAL: &str = "jifen_grpc_server_requests_total";
/// Histogram of request durations.
pub const REQUEST_DURATION: &str = "jifen_grpc_server_request_duration_seconds";

/// Describes the families once (help texts for `/metrics`).
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        "gRPC requests answered by the server, by gRPC service, method and status code."
    );
    metrics::describe_histogram!(
        REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time from a gRPC request's arrival to the end of its answer, by gRPC service and method."
    );
}

/// The gRPC status name used as the `code` label: tonic's names, but `OK` for success.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

fn code_of(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
}

/// `(service, method)` of a request path `/pkg.Service/Method`, or `unknown` for a service the
/// server does not serve.
fn labels_of(path: &str, known: &[&'static str]) -> (&'static str, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    match known.iter().find(|k| **k == service) {
        Some(k) if !method.is_empty() && !method.contains('/') => (k, method.to_owned()),
        _ => ("unknown", "unknown".to_owned()),
    }
}

/// The layer; `known` are the gRPC services the server serves.
#[derive(Clone)]
pub struct MetricsLayer {
    known: Arc<[&'static str]>,
}

impl MetricsLayer {
    pub fn new(known: impl IntoIterator<Item = &'static str>) -> Self {
        describe();
        Self {
            known: known.into_iter().collect(),
        }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            known: self.known.clone(),
        }
    }
}

/// The service [`MetricsLayer`] wraps around the routes.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    known: Arc<[&'static str]>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for MetricsService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body + Unpin,
{
    type Response = http::Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = labels_of(request.uri().path(), &self.known);
        let mut record = Record {
            service,
            method,
            started: Instant::now(),
            done: false,
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            match answer.await {
                Ok(response) => {
                    if let Some(code) = code_of(response.headers()) {
                        // Trailers-only: the answer is complete.
                        record.finish(code);
                    }
                    Ok(response.map(|inner| MeteredBody { inner, record }))
                }
                Err(error) => {
                    record.finish(Code::Internal);
                    Err(error)
                }
            }
        })
    }
}

/// What is recorded once per request.
struct Record {
    service: &'static str,
    method: String,
    started: Instant,
    done: bool,
}

impl Record {
    fn finish(&mut self, code: Code) {
        if self.done {
            return;
        }
        self.done = true;
        metrics::counter!(
            REQUESTS_TOTAL,
            "service" => self.service,
            "method" => self.method.clone(),
            "code" => code_name(code),
        )
        .increment(1);
        metrics::histogram!(
            REQUEST_DURATION,
            "service" => self.service,
            "method" => self.method.clone(),
        )
        .record(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // The body went away before its trailers: the client cancelled (or the connection broke).
        self.finish(Code::Cancelled);
    }
}

/// A response body that records the request when its trailers (or its end) go by.
pub struct MeteredBody<B> {
    inner: B,
    record: Record,
}

impl<B: Body + Unpin> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(code_of) {
                    this.record.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.record.finish(Code::Internal),
            // The end without a status: gRPC says that is an error on the server's side.
            Poll::Ready(None) => this.record.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_served_services_are_labelled_and_others_are_unknown() {
        let known = ["jifen.members.v1.MembersService", "grpc.health.v1.Health"];
        assert_eq!(
            labels_of("/jifen.members.v1.MembersService/GetMember", &known),
            ("jifen.members.v1.MembersService", "GetMember".to_owned())
        );
        assert_eq!(
            labels_of("/evil.Service/Anything", &known),
            ("unknown", "unknown".to_owned())
        );
        assert_eq!(
            labels_of("/grpc.health.v1.Health", &known),
            ("unknown", "unknown".to_owned())
        );
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::InvalidArgument), "InvalidArgument");
    }
}
