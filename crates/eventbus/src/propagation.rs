//! W3C trace-context propagation between a `tracing` span and an event's `traceparent` /
//! `tracestate`.
//!
//! Invariant: every staged event gets a valid `traceparent`. It is the current span's context,
//! injected through OpenTelemetry's global text-map propagator; when the current span has no
//! valid context (no OpenTelemetry layer, or no span at all), a fresh random trace is started so
//! the consumer side still has a trace to join.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Header names of the W3C trace context.
pub(crate) const TRACEPARENT: &str = "traceparent";
pub(crate) const TRACESTATE: &str = "tracestate";

/// The trace context an event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceHeaders {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

/// The trace context of the current `tracing` span, or a fresh one when it has none.
pub(crate) fn current() -> TraceHeaders {
    let cx = tracing::Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    let span = cx.span();
    let span_context = span.span_context();

    let injected = carrier
        .remove(TRACEPARENT)
        .filter(|tp| parse_traceparent(tp).is_some());
    let traceparent = match injected {
        Some(tp) => tp,
        // The global propagator is a no-op (or not W3C) but the span is real: format it ourselves.
        None if span_context.is_valid() => format_traceparent(span_context),
        None => fresh_traceparent(),
    };
    let tracestate = carrier
        .remove(TRACESTATE)
        .or_else(|| {
            span_context
                .is_valid()
                .then(|| span_context.trace_state().header())
        })
        .filter(|ts| !ts.is_empty());
    TraceHeaders {
        traceparent,
        tracestate,
    }
}

/// The OpenTelemetry context an incoming event's headers describe (empty when they describe none).
pub(crate) fn extract(traceparent: Option<&str>, tracestate: Option<&str>) -> Context {
    let mut carrier: HashMap<String, String> = HashMap::new();
    if let Some(tp) = traceparent {
        carrier.insert(TRACEPARENT.to_owned(), tp.to_owned());
    }
    if let Some(ts) = tracestate {
        carrier.insert(TRACESTATE.to_owned(), ts.to_owned());
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract_with_context(&Context::new(), &carrier)
    });
    if cx.span().span_context().is_valid() {
        return cx;
    }
    // No W3C propagator installed globally: still honour a well-formed traceparent.
    match traceparent.and_then(parse_traceparent) {
        Some((trace_id, span_id, flags)) => {
            let state = tracestate
                .and_then(|ts| TraceState::from_key_value(parse_tracestate(ts)).ok())
                .unwrap_or_default();
            Context::new()
                .with_remote_span_context(SpanContext::new(trace_id, span_id, flags, true, state))
        }
        None => Context::new(),
    }
}

fn parse_tracestate(ts: &str) -> Vec<(&str, &str)> {
    ts.split(',')
        .filter_map(|member| member.trim().split_once('='))
        .collect()
}

/// Parses a version-00 `traceparent`; `None` when malformed or all-zero.
pub(crate) fn parse_traceparent(tp: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let mut parts = tp.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    if version != "00"
        || parts.next().is_some()
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let is_lower_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !(is_lower_hex(trace) && is_lower_hex(span) && is_lower_hex(flags)) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    Some((
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
    ))
}

fn format_traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    )
}

/// A new random, sampled trace: the event starts its own trace.
fn fresh_traceparent() -> String {
    // v4 UUIDs are 122 random bits; their version nibble also guarantees the ids are non-zero.
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = uuid::Uuid::new_v4().simple().to_string();
    format!("00-{trace}-{}-01", &span[..16])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn without_a_span_a_fresh_valid_trace_is_started() {
        let a = current();
        let b = current();
        assert!(parse_traceparent(&a.traceparent).is_some(), "{a:?}");
        assert_ne!(a.traceparent, b.traceparent);
        assert_eq!(a.tracestate, None);
    }

    #[test]
    fn traceparent_parsing_rejects_garbage() {
        assert!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_some()
        );
        assert!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
        assert!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01").is_none()
        );
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none()
        );
        assert!(
            parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none()
        );
        assert!(parse_traceparent("garbage").is_none());
    }

    #[test]
    fn extraction_works_without_a_global_propagator() {
        let cx = extract(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("k=v"),
        );
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid());
        assert!(sc.is_remote());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.trace_state().get("k"), Some("v"));
        assert!(!extract(Some("nope"), None).span().span_context().is_valid());
    }
}
