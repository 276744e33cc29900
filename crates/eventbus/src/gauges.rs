//! The bus's metrics for `/metrics`: help texts for every family the bus records, and the
//! gauges sampled every [`crate::BusConfig::sample_interval`]:
//!
//! * `jifen_outbox_backlog{service}` and `jifen_outbox_oldest_age_seconds{service}` (0 when the
//!   outbox is empty), sampled by the relay with one query over the partial index of unpublished
//!   rows;
//! * `jifen_consumer_queue_messages{consumer}` and `jifen_consumer_dead_letters{consumer}`: the
//!   ready messages of a consumer's queue and of its dead-letter queue, sampled by the consumer
//!   with passive declarations on a channel of its own (a failed one closes only that channel).

use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use sea_orm::DatabaseConnection;

use crate::BusError;
use crate::envelope::short;

/// Describes every family of the bus once (idempotent).
pub fn describe() {
    metrics::describe_counter!(
        "jifen_outbox_published_total",
        "Outbox events the relay published and the broker confirmed."
    );
    metrics::describe_histogram!(
        "jifen_outbox_publish_seconds",
        metrics::Unit::Seconds,
        "Time to publish one claimed outbox batch and collect its confirms."
    );
    metrics::describe_gauge!(
        "jifen_outbox_backlog",
        "Outbox rows not yet published, by service."
    );
    metrics::describe_gauge!(
        "jifen_outbox_oldest_age_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest outbox row not yet published (0 when none), by service."
    );
    metrics::describe_counter!(
        "jifen_retention_deleted_total",
        "Published outbox rows and inbox rows the retention sweep deleted, by table."
    );
    metrics::describe_counter!(
        "jifen_events_consumed_total",
        "Deliveries a consumer finished, by consumer and outcome (applied, duplicate, dead_lettered, requeued, ...)."
    );
    metrics::describe_gauge!(
        "jifen_consumer_queue_messages",
        "Messages ready in a consumer's queue, by consumer."
    );
    metrics::describe_gauge!(
        "jifen_consumer_dead_letters",
        "Messages in a consumer's dead-letter queue, by consumer."
    );
}

/// Samples the outbox of `db` once for `service`.
pub(crate) async fn sample_outbox(db: &DatabaseConnection, service: &str) -> Result<(), BusError> {
    let (backlog, oldest) = crate::store::outbox_backlog(db).await?;
    let service = service.to_owned();
    metrics::gauge!("jifen_outbox_backlog", "service" => service.clone()).set(backlog as f64);
    metrics::gauge!("jifen_outbox_oldest_age_seconds", "service" => service).set(oldest.max(0.0));
    Ok(())
}

/// Samples the queue and the dead-letter queue of `consumer` once, on `channel`.
pub(crate) async fn sample_queues(
    channel: &Channel,
    consumer: &str,
    queue: &str,
    dead_letter_queue: &str,
) -> Result<(), BusError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let ready = channel
        .queue_declare(short("queue", queue)?, passive, FieldTable::default())
        .await?
        .message_count();
    let dead = channel
        .queue_declare(
            short("queue", dead_letter_queue)?,
            passive,
            FieldTable::default(),
        )
        .await?
        .message_count();
    let consumer = consumer.to_owned();
    metrics::gauge!("jifen_consumer_queue_messages", "consumer" => consumer.clone())
        .set(f64::from(ready));
    metrics::gauge!("jifen_consumer_dead_letters", "consumer" => consumer).set(f64::from(dead));
    Ok(())
}
