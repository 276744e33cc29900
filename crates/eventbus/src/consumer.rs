//! Inbox consumers: apply events from one quorum queue exactly once.
//!
//! Per delivery, in this order (STYLE.md "Events"):
//! 1. a message that is not an event (no UUID `message_id`, no `type`) is dead-lettered with the
//!    reason — it can never succeed, so it must not block the queue;
//! 2. begin a transaction, `INSERT INTO inbox … ON CONFLICT DO NOTHING`; when the event was
//!    already processed, commit and ack (the redelivery is applied zero more times);
//! 3. run the handler in the transaction, commit, then ack. A crash before the ack redelivers
//!    the event, and step 2 turns it into a duplicate;
//! 4. [`HandleError::Permanent`]: roll back, publish the message to the dead-letter exchange with
//!    header `x-jifen-reason` (awaiting the confirm), then ack. [`HandleError::Transient`]: roll
//!    back and nack with requeue; RabbitMQ dead-letters the message once it exceeds the queue's
//!    delivery limit.
//!
//! When PostgreSQL itself is unavailable (cannot begin, cannot write the inbox), the delivery is
//! held and retried with backoff rather than nacked, so an outage does not burn the delivery limit.
//! A broken RabbitMQ connection is replaced with capped backoff; unacked deliveries come back.
//!
//! Metrics: `jifen_events_consumed_total{consumer,outcome}` per delivery, and the ready messages of
//! the queue and of its dead-letter queue sampled every `sample_interval` ([`crate::gauges`]).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Confirmation};
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait as _};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use uuid::Uuid;

use crate::amqp::{self, Backoff, OPERATION_TIMEOUT, within};
use crate::envelope::{self, short};
use crate::error::report;
use crate::propagation::{self, TRACESTATE};
use crate::topology::declare_consumer_queues;
use crate::{BusConfig, BusError, REASON_HEADER, declare_topology, store};

/// Pause before requeueing after a transient failure, so it has a chance to clear.
const REQUEUE_PAUSE: Duration = Duration::from_millis(100);

/// An event as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingEvent {
    /// The event id (AMQP `message_id`, UUIDv7), unique per event; the inbox key.
    pub id: Uuid,
    /// Event type and routing key (AMQP `type`), e.g. `members.member.created.v1`.
    pub routing_key: String,
    /// The aggregate's id (`ce-subject`; empty when absent).
    pub subject: String,
    /// The publishing service (`ce-source`; empty when absent).
    pub source: String,
    /// The protobuf-encoded event message.
    pub payload: Vec<u8>,
    /// The W3C `traceparent` the event was staged under, if it carried one.
    pub traceparent: Option<String>,
}

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The event can never be applied (undecodable payload, impossible state): it goes to the
    /// consumer's dead-letter queue with this reason.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// It may work later (lock timeout, a dependency briefly down): the event is requeued, and
    /// the attempt counts toward the queue's delivery limit.
    #[error("transient failure: {0:#}")]
    Transient(anyhow::Error),
}

impl From<sea_orm::DbErr> for HandleError {
    /// A database error inside a handler is transient: the event is retried.
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Transient(error.into())
    }
}

impl From<anyhow::Error> for HandleError {
    /// Any other error inside a handler is transient unless the handler says otherwise.
    fn from(error: anyhow::Error) -> Self {
        Self::Transient(error)
    }
}

/// Applies consumed events. Implemented by each service's `events.rs`.
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Apply the event inside `tx` (the inbox row is already inserted in the same tx). Do not
    /// commit: the consumer commits after this returns `Ok`, and rolls back otherwise.
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError>;
}

/// What a consumer is called and what it listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Consumer name, `<service>.<purpose>`, e.g. `declarations.members-replica`: names its
    /// queue, its dead-letter queue and its inbox rows.
    pub name: String,
    /// Routing patterns bound to the event exchange, e.g. `members.#`.
    pub bindings: Vec<String>,
}

/// Consumes one queue and applies each event once through an [`EventHandler`].
pub struct Consumer {
    db: DatabaseConnection,
    config: BusConfig,
    spec: ConsumerSpec,
    handler: Arc<dyn EventHandler>,
}

/// The result of one attempt to apply an event.
enum Attempt {
    Applied,
    Duplicate,
    Permanent(String),
    Transient(anyhow::Error),
    /// PostgreSQL unavailable before the handler ran: hold the delivery and retry.
    Unavailable(sea_orm::DbErr),
}

impl Consumer {
    /// A consumer of `spec.name`'s queue applying events to `db` through `handler`.
    pub fn new(
        db: DatabaseConnection,
        config: BusConfig,
        spec: ConsumerSpec,
        handler: Arc<dyn EventHandler>,
    ) -> Self {
        Self {
            db,
            config,
            spec,
            handler,
        }
    }

    /// Declares the topology, this consumer's queue, its bindings and its dead-letter queue once,
    /// then closes the connection. Idempotent. [`Consumer::run`] does the same on every connect;
    /// call this first when events published right after must already be routed to the queue
    /// (a service at startup before it reports ready, a test before it publishes).
    pub async fn declare(&self) -> Result<(), BusError> {
        self.config.validate(&[&self.spec.name])?;
        let name = &self.spec.name;
        let connection = amqp::connect(
            &self.config.amqp_url,
            &format!("jifen consumer {name} (declare)"),
        )
        .await?;
        let channel = within("channel.open", connection.create_channel()).await?;
        within(
            "topology declaration",
            declare_topology(&channel, &self.config),
        )
        .await?;
        within(
            "queue declaration",
            declare_consumer_queues(&channel, &self.config, name, &self.spec.bindings),
        )
        .await?;
        let _ = connection.close(200, "declared".into()).await;
        Ok(())
    }

    /// Declares the topology, the queue `<prefix><name>` (quorum, delivery limit, dead-lettering
    /// to `<name>.dlq`), its bindings and `<prefix><name>.dlq`; then consumes with manual acks and
    /// `prefetch` until `cancel` fires, reconnecting with capped backoff after a broker outage.
    /// Deliveries in progress when `cancel` fires are finished (or left unacked) before returning.
    /// Returns `Ok(())` once cancelled; an error only for a configuration that can never work
    /// (names longer than AMQP allows, a binding pattern that is too long).
    pub async fn run(self, cancel: CancellationToken) -> Result<(), BusError> {
        self.config.validate(&[&self.spec.name])?;
        for pattern in &self.spec.bindings {
            short("binding", pattern)?;
        }
        let mut backoff = Backoff::new();
        tracing::info!(consumer = %self.spec.name, "consumer started");
        loop {
            match self.session(&cancel, &mut backoff).await {
                Ok(()) => break,
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        consumer = %self.spec.name, error = %report(&error), retry_in = ?delay,
                        "consumer lost RabbitMQ; reconnecting"
                    );
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        tracing::info!(consumer = %self.spec.name, "consumer stopped");
        Ok(())
    }

    /// One connection's worth of consuming. `Ok` only when cancelled.
    async fn session(
        &self,
        cancel: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), BusError> {
        let name = &self.spec.name;
        let connect = async {
            let connection =
                amqp::connect(&self.config.amqp_url, &format!("jifen consumer {name}")).await?;
            let channel = within("channel.open", connection.create_channel()).await?;
            within(
                "topology declaration",
                declare_topology(&channel, &self.config),
            )
            .await?;
            within(
                "queue declaration",
                declare_consumer_queues(&channel, &self.config, name, &self.spec.bindings),
            )
            .await?;
            within(
                "basic.qos",
                channel.basic_qos(self.config.prefetch, BasicQosOptions::default()),
            )
            .await?;
            let dead_letters = within("channel.open", connection.create_channel()).await?;
            within(
                "confirm.select",
                dead_letters.confirm_select(ConfirmSelectOptions::default()),
            )
            .await?;
            // Passive declarations for the queue gauges go on a channel of their own: a failed
            // one closes that channel, never the one consuming.
            let stats = within("channel.open", connection.create_channel()).await?;
            let tag = format!("{name}.{}", Uuid::now_v7().simple());
            let deliveries = within(
                "basic.consume",
                channel.basic_consume(
                    short("queue", &self.config.queue_name(name))?,
                    short("consumer tag", &tag)?,
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                ),
            )
            .await?;
            Ok::<_, BusError>((connection, channel, dead_letters, stats, tag, deliveries))
        };
        let (connection, channel, dead_letters, stats, tag, mut deliveries) = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            connected = connect => connected?,
        };
        backoff.reset();
        tracing::info!(consumer = %name, queue = %self.config.queue_name(name), "consuming");

        let mut in_flight = FuturesUnordered::new();
        // Belt and braces: notice a dead connection even if the delivery stream does not say so.
        let mut health = tokio::time::interval(Duration::from_secs(1));
        crate::gauges::describe();
        let mut sample = tokio::time::interval(self.config.sample_interval);
        let (queue, dead_letter_queue) = (
            self.config.queue_name(name),
            self.config.dead_letter_queue_name(name),
        );
        let outcome = loop {
            tokio::select! {
                () = cancel.cancelled() => break Ok(()),
                _ = sample.tick() => {
                    let (stats, name, queue, dlq) =
                        (stats.clone(), name.clone(), queue.clone(), dead_letter_queue.clone());
                    tokio::spawn(async move {
                        let sampled = within(
                            "queue sampling",
                            crate::gauges::sample_queues(&stats, &name, &queue, &dlq),
                        )
                        .await;
                        if let Err(error) = sampled {
                            tracing::debug!(consumer = %name, error = %report(&error), "cannot sample the queues");
                        }
                    });
                }
                _ = health.tick() => {
                    if !(connection.status().connected() && channel.status().connected()) {
                        break Err(BusError::Disconnected("connection or channel closed"));
                    }
                }
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Err(error) = done {
                        break Err(error);
                    }
                }
                next = deliveries.next() => match next {
                    Some(Ok(delivery)) => in_flight.push(self.process(&dead_letters, delivery, cancel)),
                    Some(Err(error)) => break Err(error.into()),
                    None => break Err(BusError::Disconnected("the broker cancelled the consumer")),
                },
            }
        };
        if outcome.is_ok() {
            // Stop new deliveries; the ones in hand are finished below.
            let cancel_consumer =
                channel.basic_cancel(short("consumer tag", &tag)?, BasicCancelOptions::default());
            let _ = within("basic.cancel", cancel_consumer).await;
        }
        // Finish the deliveries in hand, for a bounded time: whatever is left is dropped (its
        // transaction rolls back) and RabbitMQ redelivers it, which the inbox makes harmless.
        let finish = async {
            while let Some(done) = in_flight.next().await {
                if let Err(error) = done {
                    tracing::debug!(consumer = %name, error = %report(&error), "delivery left unacknowledged");
                }
            }
        };
        if tokio::time::timeout(OPERATION_TIMEOUT, finish)
            .await
            .is_err()
        {
            tracing::warn!(consumer = %name, "deliveries still in progress were abandoned");
        }
        if outcome.is_ok() {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                connection.close(200, "consumer stopped".into()),
            )
            .await;
        }
        outcome
    }

    /// Handles one delivery to the end (ack, nack or dead-letter). `Err` means RabbitMQ failed.
    async fn process(
        &self,
        dead_letters: &Channel,
        delivery: Delivery,
        cancel: &CancellationToken,
    ) -> Result<(), BusError> {
        let event = match envelope::parse(&delivery.properties, &delivery.data) {
            Ok(event) => event,
            Err(reason) => {
                tracing::warn!(consumer = %self.spec.name, %reason, "malformed message dead-lettered");
                self.dead_letter(dead_letters, &delivery, &reason).await?;
                within("basic.ack", delivery.acker.ack(BasicAckOptions::default())).await?;
                self.count("dead_lettered");
                return Ok(());
            }
        };
        let span = tracing::info_span!(
            "consume event",
            otel.name = %format!("{} process", event.routing_key),
            otel.kind = "consumer",
            messaging.system = "rabbitmq",
            messaging.operation = "process",
            messaging.destination.name = %event.routing_key,
            messaging.message.id = %event.id,
            messaging.consumer.group.name = %self.spec.name,
            subject = %event.subject,
        );
        let tracestate = envelope::header(&delivery.properties, TRACESTATE);
        // Fails only when no OpenTelemetry layer is installed: nothing to link then.
        let _ = span.set_parent(propagation::extract(
            event.traceparent.as_deref(),
            tracestate.as_deref(),
        ));
        self.apply(dead_letters, &delivery, &event, cancel)
            .instrument(span)
            .await
    }

    async fn apply(
        &self,
        dead_letters: &Channel,
        delivery: &Delivery,
        event: &IncomingEvent,
        cancel: &CancellationToken,
    ) -> Result<(), BusError> {
        let mut backoff = Backoff::new();
        loop {
            match self.attempt(event).await {
                Attempt::Applied => {
                    within("basic.ack", delivery.acker.ack(BasicAckOptions::default())).await?;
                    self.count("applied");
                    tracing::debug!("event applied");
                }
                Attempt::Duplicate => {
                    within("basic.ack", delivery.acker.ack(BasicAckOptions::default())).await?;
                    self.count("duplicate");
                    tracing::debug!("duplicate event acknowledged");
                }
                Attempt::Permanent(reason) => {
                    tracing::warn!(%reason, "event dead-lettered by its handler");
                    self.dead_letter(dead_letters, delivery, &reason).await?;
                    within("basic.ack", delivery.acker.ack(BasicAckOptions::default())).await?;
                    self.count("dead_lettered");
                }
                Attempt::Transient(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        redelivered = delivery.redelivered,
                        "event requeued"
                    );
                    tokio::time::sleep(REQUEUE_PAUSE).await;
                    let requeue = BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    };
                    within("basic.nack", delivery.acker.nack(requeue)).await?;
                    self.count("requeued");
                }
                Attempt::Unavailable(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %report(&error), retry_in = ?delay, "database unavailable; holding the event");
                    tokio::select! {
                        // Left unacked: RabbitMQ redelivers it to whoever consumes next.
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            }
            return Ok(());
        }
    }

    /// One transaction: inbox row, handler, commit.
    async fn attempt(&self, event: &IncomingEvent) -> Attempt {
        let tx = match self.db.begin().await {
            Ok(tx) => tx,
            Err(error) => return Attempt::Unavailable(error),
        };
        match store::insert_inbox(&tx, &self.spec.name, event.id).await {
            Err(error) => return Attempt::Unavailable(error),
            Ok(false) => {
                return match tx.commit().await {
                    Ok(()) => Attempt::Duplicate,
                    Err(error) => Attempt::Unavailable(error),
                };
            }
            Ok(true) => {}
        }
        // A panicking handler must not take the consumer down: treat it as a transient failure,
        // so the delivery limit eventually dead-letters the event.
        let handled = AssertUnwindSafe(self.handler.handle(&tx, event))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_owned());
                Err(HandleError::Transient(anyhow::anyhow!(
                    "handler panicked: {message}"
                )))
            });
        match handled {
            Ok(()) => match tx.commit().await {
                Ok(()) => Attempt::Applied,
                Err(error) => Attempt::Transient(
                    anyhow::Error::new(error).context("committing the event's transaction"),
                ),
            },
            Err(failure) => {
                if let Err(error) = tx.rollback().await {
                    tracing::debug!(error = %report(&error), "rollback failed (the transaction is gone anyway)");
                }
                match failure {
                    HandleError::Permanent(reason) => Attempt::Permanent(reason),
                    HandleError::Transient(error) => Attempt::Transient(error),
                }
            }
        }
    }

    /// Publishes the delivery, unchanged but for the reason header, to the dead-letter exchange
    /// and waits for the broker's confirm.
    async fn dead_letter(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        reason: &str,
    ) -> Result<(), BusError> {
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(
            REASON_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason.as_bytes())),
        );
        headers.insert(
            "x-jifen-consumer".into(),
            AMQPValue::LongString(LongString::from(self.spec.name.as_bytes())),
        );
        let properties = delivery.properties.clone().with_headers(headers);
        let publish = channel.basic_publish(
            short("exchange", &self.config.dead_letter_exchange)?,
            short(
                "routing key",
                &BusConfig::dead_letter_routing_key(&self.spec.name),
            )?,
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &delivery.data,
            properties,
        );
        let confirm = within("basic.publish", publish).await?;
        match within("publisher confirm", confirm).await? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(BusError::NotAccepted {
                count: 1,
                detail: format!(
                    "dead letter returned: {} {}",
                    returned.reply_code, returned.reply_text
                ),
            }),
            Confirmation::Nack(_) => Err(BusError::NotAccepted {
                count: 1,
                detail: "dead letter nacked by the broker".to_owned(),
            }),
            Confirmation::NotRequested => Err(BusError::Invalid(
                "channel is not in confirm mode".to_owned(),
            )),
        }
    }

    fn count(&self, outcome: &'static str) {
        metrics::counter!(
            "jifen_events_consumed_total",
            "consumer" => self.spec.name.clone(),
            "outcome" => outcome
        )
        .increment(1);
    }
}
