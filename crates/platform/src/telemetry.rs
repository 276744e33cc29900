//! Tracing with OpenTelemetry. Spans always get W3C trace ids (so `traceparent` travels over gRPC
//! metadata and AMQP headers even when nothing is exported); OTLP export over gRPC is switched on
//! by `OTEL_EXPORTER_OTLP_ENDPOINT`.
//!
//! Logs are one JSON object per line ([`JsonWithTrace`]): `timestamp`, `level`, the event's
//! fields (`message`, …), `target`, the current span (`span`: its name and fields) and, on every
//! line emitted inside a span, the `trace_id` and `span_id` of that span's OpenTelemetry context,
//! so a log line leads to its trace and back.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Keeps the tracer provider alive; call [`TelemetryGuard::shutdown`] at the end of `main` to
/// flush spans.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Flushes and stops the exporter. The OTLP exporter blocks, so it runs off the runtime.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

/// Installs the global subscriber and propagator. Logs are JSON unless `JIFEN_LOG_FORMAT=pretty`;
/// the level comes from `RUST_LOG` (default `info`). Safe to call twice (the second call keeps the
/// first subscriber), which tests rely on.
pub fn init(
    service_name: &'static str,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name)
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()?;
        let processor = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
        builder = builder.with_span_processor(processor);
    }
    let provider = builder.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer(service_name);

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,lapin=warn,h2=warn,tower=warn,hyper=warn")
    });
    let pretty = crate::settings::var_opt("JIFEN_LOG_FORMAT")?.is_some_and(|v| v == "pretty");
    let fmt = if pretty {
        tracing_subscriber::fmt::layer().with_target(false).boxed()
    } else {
        json_layer(std::io::stdout).boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
    Ok(TelemetryGuard { provider })
}

/// The W3C `traceparent` of the current span, if it has a valid context.
pub fn current_traceparent() -> Option<String> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = tracing::Span::current().context();
    let mut map = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut map);
    map.remove("traceparent")
}

/// The JSON log layer writing to `writer` (stdout in services, a buffer in tests).
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
        .event_format(JsonWithTrace)
        .with_writer(writer)
}

/// The JSON line format of every service (module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonWithTrace;

impl<S> tracing_subscriber::fmt::FormatEvent<S, tracing_subscriber::fmt::format::JsonFields>
    for JsonWithTrace
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<
            '_,
            S,
            tracing_subscriber::fmt::format::JsonFields,
        >,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use opentelemetry::trace::TraceContextExt as _;
        use serde_json::{Map, Value};
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("level".into(), Value::String(meta.level().as_str().into()));
        event.record(&mut JsonVisitor(&mut line));
        line.insert("target".into(), Value::String(meta.target().into()));
        if let Some(span) = ctx.parent_span() {
            let mut fields = span
                .extensions()
                .get::<tracing_subscriber::fmt::FormattedFields<
                    tracing_subscriber::fmt::format::JsonFields,
                >>()
                .and_then(|f| serde_json::from_str::<Map<String, Value>>(f).ok())
                .unwrap_or_default();
            fields.insert("name".into(), Value::String(span.name().into()));
            line.insert("span".into(), Value::Object(fields));
            // The extensions guard above is dropped: the OpenTelemetry layer locks them again.
            let id = span.id();
            let cx = tracing::dispatcher::get_default(|dispatch| {
                tracing_opentelemetry::get_otel_context(&id, dispatch)
            });
            if let Some(cx) = cx {
                let otel = cx.span();
                let sc = otel.span_context();
                if sc.is_valid() {
                    line.insert("trace_id".into(), Value::String(sc.trace_id().to_string()));
                    line.insert("span_id".into(), Value::String(sc.span_id().to_string()));
                }
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Writes an event's fields into a JSON object.
struct JsonVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        self.0
            .insert(field.name().into(), crate::grpc::error_chain(value).into());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn every_line_inside_a_span_carries_its_trace_id_and_span_id() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(json_layer(buffer.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        // The formatter finds the OpenTelemetry context through the default dispatcher, which
        // inside an event is the global one: this test binary installs it, nothing else does.
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");

        tracing::info!(answer = 42, "outside any span");
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
                .parse()
                .unwrap(),
        );
        let span = tracing::info_span!("grpc.request", rpc = "/jifen.x.v1.X/Get");
        let _ = span.set_parent(crate::grpc::extract_trace(&headers));
        span.in_scope(|| {
            tracing::info!(member = "m-1", "inside");
            tracing::warn!(error = "boom", "inside too");
        });

        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["message"], "outside any span");
        assert_eq!(lines[0]["answer"], 42);
        assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
        let own_span_id = {
            use opentelemetry::trace::TraceContextExt as _;
            span.context().span().span_context().span_id().to_string()
        };
        for line in &lines[1..] {
            assert_eq!(line["trace_id"], TRACE_ID, "{line}");
            assert_eq!(line["span_id"], own_span_id.as_str(), "{line}");
            assert_eq!(line["span"]["name"], "grpc.request", "{line}");
            assert_eq!(line["span"]["rpc"], "/jifen.x.v1.X/Get", "{line}");
            assert!(line["timestamp"].is_string() && line["level"].is_string());
        }
        assert_eq!(lines[1]["member"], "m-1");
        assert_eq!(lines[2]["level"], "WARN");
        assert_ne!(
            own_span_id, "00f067aa0ba902b7",
            "the span is the caller's child"
        );
    }
}
