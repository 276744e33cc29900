//! The AMQP envelope of an event (DESIGN.md §4), CloudEvents style.
//!
//! Properties: `message_id` = event id (UUIDv7), `type` = routing key, `timestamp` (staging time,
//! seconds), `content_type` = `application/protobuf`, `delivery_mode` = 2 (persistent).
//! Headers: `ce-specversion` = `1.0`, `ce-source`, `ce-subject`, `traceparent`, and `tracestate`
//! when non-empty. Invariant: [`parse`] accepts exactly what [`properties`] writes (plus missing
//! optional headers); anything else is a permanent failure with a reason.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use uuid::Uuid;

use crate::BusError;
use crate::consumer::IncomingEvent;
use crate::propagation::{TRACEPARENT, TRACESTATE};
use crate::store::OutboxRow;

/// Content type of every event body.
pub(crate) const CONTENT_TYPE: &str = "application/protobuf";
/// CloudEvents spec version we follow.
pub(crate) const SPEC_VERSION: &str = "1.0";
pub(crate) const CE_SOURCE: &str = "ce-source";
pub(crate) const CE_SUBJECT: &str = "ce-subject";
pub(crate) const CE_SPECVERSION: &str = "ce-specversion";

/// An AMQP short string (at most 255 bytes), or an [`BusError::Invalid`] naming `what`.
pub(crate) fn short(what: &str, value: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(value).map_err(|e| BusError::Invalid(format!("{what} {value:?}: {e}")))
}

fn long(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes()))
}

/// The AMQP properties of an outbox row.
pub(crate) fn properties(row: &OutboxRow) -> Result<BasicProperties, BusError> {
    let mut headers = FieldTable::default();
    headers.insert(CE_SPECVERSION.into(), long(SPEC_VERSION));
    headers.insert(CE_SOURCE.into(), long(&row.source));
    headers.insert(CE_SUBJECT.into(), long(&row.subject));
    if let Some(tp) = row.traceparent.as_deref().filter(|tp| !tp.is_empty()) {
        headers.insert(TRACEPARENT.into(), long(tp));
    }
    if let Some(ts) = row.tracestate.as_deref().filter(|ts| !ts.is_empty()) {
        headers.insert(TRACESTATE.into(), long(ts));
    }
    let timestamp = u64::try_from(row.created_at.timestamp()).unwrap_or(0);
    Ok(BasicProperties::default()
        .with_message_id(short("event id", &row.id.to_string())?)
        .with_type(short("routing key", &row.routing_key)?)
        .with_timestamp(timestamp)
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(2)
        .with_headers(headers))
}

/// A header's value as text (long or short string), if present.
pub(crate) fn header(properties: &BasicProperties, key: &str) -> Option<String> {
    let value = properties.headers().as_ref()?.inner().get(key)?;
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Reads an event out of a delivery, or says why it is not one (a permanent failure).
pub(crate) fn parse(properties: &BasicProperties, body: &[u8]) -> Result<IncomingEvent, String> {
    let id = match properties.message_id() {
        None => return Err("missing message_id".to_owned()),
        Some(id) => Uuid::parse_str(id.as_str())
            .map_err(|_| format!("message_id {:?} is not a UUID", id.as_str()))?,
    };
    let routing_key = match properties.kind() {
        Some(kind) if !kind.as_str().is_empty() => kind.as_str().to_owned(),
        _ => return Err("missing type (event routing key)".to_owned()),
    };
    Ok(IncomingEvent {
        id,
        routing_key,
        subject: header(properties, CE_SUBJECT).unwrap_or_default(),
        source: header(properties, CE_SOURCE).unwrap_or_default(),
        payload: body.to_vec(),
        traceparent: header(properties, TRACEPARENT).filter(|tp| !tp.is_empty()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn row() -> OutboxRow {
        OutboxRow {
            id: Uuid::now_v7(),
            routing_key: "members.member.created.v1".into(),
            subject: "m-1".into(),
            source: "members".into(),
            payload: vec![1, 2, 3],
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some(String::new()),
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn what_is_written_is_read_back() {
        let row = row();
        let props = properties(&row).unwrap();
        assert_eq!(props.delivery_mode(), &Some(2));
        assert_eq!(
            props.content_type().as_ref().map(ShortString::as_str),
            Some(CONTENT_TYPE)
        );
        assert_eq!(header(&props, CE_SPECVERSION).as_deref(), Some("1.0"));
        assert_eq!(
            header(&props, TRACESTATE),
            None,
            "empty tracestate is not sent"
        );
        let event = parse(&props, &row.payload).unwrap();
        assert_eq!(event.id, row.id);
        assert_eq!(event.routing_key, row.routing_key);
        assert_eq!(event.subject, row.subject);
        assert_eq!(event.source, row.source);
        assert_eq!(event.payload, row.payload);
        assert_eq!(event.traceparent, row.traceparent);
    }

    #[test]
    fn malformed_envelopes_are_refused_with_a_reason() {
        let props = properties(&row()).unwrap();
        let no_id = props.clone().with_message_id("not-a-uuid".into());
        assert!(parse(&no_id, b"").unwrap_err().contains("not a UUID"));
        assert!(
            parse(&BasicProperties::default(), b"")
                .unwrap_err()
                .contains("message_id")
        );
        let no_type = BasicProperties::default().with_message_id(Uuid::now_v7().to_string().into());
        assert!(parse(&no_type, b"").unwrap_err().contains("type"));
    }

    #[test]
    fn overlong_routing_keys_are_invalid() {
        let mut row = row();
        row.routing_key = "x".repeat(300);
        assert!(matches!(properties(&row), Err(BusError::Invalid(_))));
    }
}
