//! Per-request observability: the trace span (a child of the caller's `traceparent`, named by
//! the route template) and the request metrics.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

fn route_of(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned())
}

/// Help texts of the gateway's metric families (`promtool check metrics` wants one each).
pub fn describe() {
    metrics::describe_counter!(
        "http_requests_total",
        "HTTP requests answered by the gateway, by method, route template and status."
    );
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method, route template and status."
    );
    metrics::describe_counter!(
        "gateway_rate_limited_total",
        "Requests refused by a rate limit, by scope."
    );
    metrics::describe_counter!("gateway_logins_total", "Successful password logins.");
    metrics::describe_counter!(
        "gateway_login_lockouts_total",
        "Locks set after failed logins, by scope (account, address)."
    );
    metrics::describe_counter!(
        "gateway_code_exchange_failures_total",
        "Failed invitation-code exchanges that look like guesses (unknown or malformed code)."
    );
    metrics::describe_counter!(
        "gateway_code_guess_lockouts_total",
        "Locks set on a client address after failed invitation-code exchanges."
    );
    metrics::describe_counter!(
        "gateway_code_guess_refused_total",
        "Invitation-code exchanges refused because their address is locked after failures."
    );
    metrics::describe_counter!(
        "gateway_refresh_reuse_total",
        "Refresh tokens presented again after rotation (possible theft)."
    );
    metrics::describe_counter!(
        "gateway_evaluator_logins_total",
        "Evaluator logins with an invitation code."
    );
}

/// The span of one HTTP request, continuing the caller's W3C trace when one is sent.
pub fn make_span(request: &Request) -> tracing::Span {
    let route = route_of(request);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %route,
        request_id = %request_id,
    );
    let _ = span.set_parent(jifen_platform::grpc::extract_trace(request.headers()));
    span
}

/// Middleware: counts requests and records latency by method, route template and status.
pub async fn track(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = route_of(&request);
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CALLER_SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn the_request_span_continues_the_callers_trace_into_grpc_metadata() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let request = Request::builder()
                .uri("/api/v1/me")
                .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
                .body(axum::body::Body::empty())
                .unwrap();
            let span = make_span(&request);
            let _entered = span.enter();
            // What TraceInjector does for every outgoing gRPC call.
            let mut metadata = tonic::metadata::MetadataMap::new();
            jifen_platform::grpc::inject_trace(&mut metadata);
            let sent = metadata
                .get("traceparent")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert!(sent.starts_with(&format!("00-{TRACE_ID}-")), "{sent}");
            assert!(
                !sent.contains(CALLER_SPAN),
                "the gateway's own span is the parent: {sent}"
            );
        });
    }
}
