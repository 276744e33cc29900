//! Staging events: the write side of the transactional outbox.
//!
//! Invariant: [`stage`] only writes to the caller's connection or transaction. The event becomes
//! visible to the relay exactly when the caller commits, together with the state change it
//! describes; a rolled-back transaction leaves no event behind.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::envelope::short;
use crate::store::{self, OutboxRow};
use crate::{BusError, propagation};

/// An event to publish: what a use-case hands to [`stage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent {
    /// Event type and routing key, `<service>.<aggregate>.<verb>.v1`, e.g. `members.member.created.v1`.
    pub routing_key: String,
    /// The aggregate's id (`ce-subject`).
    pub subject: String,
    /// The protobuf-encoded event message (the aggregate's full state and version).
    pub payload: Vec<u8>,
}

/// An event ready for the outbox: what [`stage`] inserts, for a service whose own SQL function
/// stages it inside a larger statement (through `outbox_stage(...)`, see
/// [`crate::migration::StageFunction`]) with the arguments in [`StagedEvent::arguments`] order.
#[derive(Debug, Clone)]
pub struct StagedEvent {
    row: OutboxRow,
}

impl StagedEvent {
    /// Validates `event` and stamps it with a new UUIDv7 id, `source` and the W3C
    /// `traceparent`/`tracestate` of the current `tracing` span (or of a fresh trace when the span
    /// has none).
    pub fn prepare(source: &str, event: OutgoingEvent) -> Result<Self, BusError> {
        if event.routing_key.is_empty() {
            return Err(BusError::Invalid("empty routing key".to_owned()));
        }
        // Reject what could never be published now, while the caller can still roll back.
        short("routing key", &event.routing_key)?;
        let trace = propagation::current();
        Ok(Self {
            row: OutboxRow {
                id: Uuid::now_v7(),
                routing_key: event.routing_key,
                subject: event.subject,
                source: source.to_owned(),
                payload: event.payload,
                traceparent: Some(trace.traceparent),
                tracestate: trace.tracestate,
                created_at: chrono::Utc::now(),
            },
        })
    }

    /// The event's id.
    pub fn id(&self) -> Uuid {
        self.row.id
    }

    /// The seven arguments of `outbox_stage(id, routing_key, subject, source, payload,
    /// traceparent, tracestate)`, in that order.
    pub fn arguments(&self) -> [sea_orm::Value; 7] {
        store::stage_arguments(&self.row)
    }
}

/// Writes `event` into `outbox` on the caller's connection or transaction (the caller commits)
/// and returns its new UUIDv7 event id.
///
/// The row is a [`StagedEvent::prepare`]d one. Staging also sends `pg_notify('jifen_outbox',
/// '')`, which PostgreSQL delivers at commit, so the relay wakes at once.
pub async fn stage(
    conn: &impl ConnectionTrait,
    source: &str,
    event: OutgoingEvent,
) -> Result<Uuid, BusError> {
    let staged = StagedEvent::prepare(source, event)?;
    store::insert_outbox(conn, &staged.row).await?;
    tracing::debug!(event_id = %staged.row.id, routing_key = %staged.row.routing_key, "event staged");
    Ok(staged.row.id)
}
