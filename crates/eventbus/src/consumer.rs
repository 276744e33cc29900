//! Inbox consumers: apply events from one quorum queue exactly once.
//!
//! Deliveries are applied in batches, one batch at a time and in delivery order: a batch is what
//! has arrived (at most [`BusConfig::batch_size`], waiting at most [`BusConfig::batch_linger`] for
//! it to fill; under a backlog the next batch fills while one is applied). Per batch, in this
//! order (STYLE.md "Events"):
//! 1. a message that is not an event (no UUID `message_id`, no `type`) is dead-lettered with the
//!    reason — it can never succeed, so it must not block the queue;
//! 2. begin one transaction, insert every event's inbox row in one statement
//!    (`ON CONFLICT DO NOTHING RETURNING`); an event already processed (or a second copy of one in
//!    the same batch) is a duplicate: not applied again, acked;
//! 3. run the handler of each new event in order in that transaction, commit, then ack the batch
//!    (one `multiple` ack). A crash before the ack redelivers the batch, and step 2 turns it into
//!    duplicates;
//! 4. when a handler fails, the transaction is rolled back and only that event is settled as a
//!    failure; the batch's other events are applied again without it, in a new transaction.
//!    [`HandleError::Permanent`]: publish the message to the dead-letter exchange with header
//!    `x-jifen-reason` (awaiting the confirm), then ack. [`HandleError::Transient`]: nack with
//!    requeue; RabbitMQ dead-letters the message once it exceeds the queue's delivery limit. When
//!    the commit itself fails (was it applied? which event made it fail?), the batch's events are
//!    applied one transaction each, as in step 2 and 3 for a batch of one.
//!
//! When PostgreSQL itself is unavailable (cannot begin, cannot write the inbox), the batch is
//! held and retried with backoff rather than nacked, so an outage does not burn the delivery limit.
//! A broken RabbitMQ connection is replaced with capped backoff; unacked deliveries come back.
//!
//! Order: events of the same subject are applied in delivery order, except that an event
//! requeued after a transient failure comes back after the ones behind it (handlers ignore stale
//! versions, DESIGN.md §4, so a replica still ends at the newest version).
//!
//! Tracing and metrics, per event: one `consume event` span whose parent is the event's
//! `traceparent`, and `jifen_events_consumed_total{consumer,outcome}`; the ready messages of the
//! queue and of its dead-letter queue are sampled every `sample_interval` ([`crate::gauges`]).

use std::collections::{HashSet, VecDeque};
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
use tokio::time::{Instant, sleep_until};
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

/// An event of a batch: its delivery's index in the batch, and its span.
struct Item {
    index: usize,
    event: IncomingEvent,
    span: tracing::Span,
}

/// What is left to do with a delivery of a batch once it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// Ack it (applied, duplicate, dead-lettered).
    Ack,
    /// Already settled (nacked, or acked on its own).
    Done,
    /// Left unacknowledged (cancelled while PostgreSQL was unavailable): RabbitMQ redelivers it.
    Held,
}

/// The result of one attempt to apply a batch in one transaction.
enum BatchAttempt {
    /// Committed; per event, whether it was applied (`false`: a duplicate).
    Committed(Vec<bool>),
    /// The handler failed on the event at `at`; the transaction was rolled back.
    Failed { at: usize, failure: HandleError },
    /// PostgreSQL unavailable before any handler ran (begin, inbox): hold the batch and retry.
    Unavailable(sea_orm::DbErr),
    /// The commit failed: whether it happened is unknown.
    CommitFailed(sea_orm::DbErr),
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

        // Deliveries received and not yet taken into a batch, oldest first, with their arrival.
        let mut waiting: VecDeque<(Instant, Delivery)> = VecDeque::new();
        // The batch being applied: at most one at a time, so that events are applied in delivery
        // order (and a multiple ack never covers a delivery another batch still holds).
        let mut in_flight = FuturesUnordered::new();
        let batch_size = self.config.effective_batch_size();
        let linger = self.config.batch_linger;
        // Belt and braces: notice a dead connection even if the delivery stream does not say so.
        let mut health = tokio::time::interval(Duration::from_secs(1));
        crate::gauges::describe();
        let mut sample = tokio::time::interval(self.config.sample_interval);
        let (queue, dead_letter_queue) = (
            self.config.queue_name(name),
            self.config.dead_letter_queue_name(name),
        );
        let outcome = loop {
            // A batch starts when none is running and it is full or its oldest delivery has
            // waited `batch_linger`; under a backlog the deliveries that arrived while the
            // previous batch ran make the next one at once.
            if in_flight.is_empty()
                && waiting.front().is_some_and(|(arrived, _)| {
                    waiting.len() >= batch_size || arrived.elapsed() >= linger
                })
            {
                let take = waiting.len().min(batch_size);
                let batch: Vec<Delivery> = waiting.drain(..take).map(|(_, d)| d).collect();
                in_flight.push(self.process_batch(&dead_letters, batch, cancel));
            }
            let fill_deadline = waiting
                .front()
                .filter(|_| in_flight.is_empty())
                .map(|(arrived, _)| *arrived + linger);
            tokio::select! {
                () = cancel.cancelled() => break Ok(()),
                () = sleep_until(fill_deadline.unwrap_or_else(Instant::now)), if fill_deadline.is_some() => {}
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
                    Some(Ok(delivery)) => waiting.push_back((Instant::now(), delivery)),
                    Some(Err(error)) => break Err(error.into()),
                    None => break Err(BusError::Disconnected("the broker cancelled the consumer")),
                },
            }
        };
        // Deliveries not yet in a batch are left unacknowledged: RabbitMQ gives them back when
        // the channel closes.
        drop(waiting);
        if outcome.is_ok() {
            // Stop new deliveries; the batch in hand is finished below.
            let cancel_consumer =
                channel.basic_cancel(short("consumer tag", &tag)?, BasicCancelOptions::default());
            let _ = within("basic.cancel", cancel_consumer).await;
        }
        // Finish the batch in hand, for a bounded time: whatever is left is dropped (its
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

    /// The `consume event` span of one event: a child of the trace its `traceparent` names.
    fn span(&self, delivery: &Delivery, event: &IncomingEvent) -> tracing::Span {
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
        span
    }

    /// Applies a batch of deliveries, in delivery order, in one transaction, and settles every
    /// one of them: acked (applied, duplicate, dead-lettered), nacked with requeue (transient
    /// failure), or left unacknowledged when `cancel` fires while PostgreSQL is unavailable.
    /// `Err` means RabbitMQ failed.
    async fn process_batch(
        &self,
        dead_letters: &Channel,
        deliveries: Vec<Delivery>,
        cancel: &CancellationToken,
    ) -> Result<(), BusError> {
        let mut settle = vec![Settle::Ack; deliveries.len()];
        let mut pending = Vec::with_capacity(deliveries.len());
        for (index, delivery) in deliveries.iter().enumerate() {
            match envelope::parse(&delivery.properties, &delivery.data) {
                Ok(event) => pending.push(Item {
                    index,
                    span: self.span(delivery, &event),
                    event,
                }),
                Err(reason) => {
                    tracing::warn!(consumer = %self.spec.name, %reason, "malformed message dead-lettered");
                    self.dead_letter(dead_letters, delivery, &reason).await?;
                    self.count("dead_lettered");
                }
            }
        }
        let mut backoff = Backoff::new();
        while !pending.is_empty() {
            match self.attempt_batch(&pending).await {
                BatchAttempt::Committed(fresh) => {
                    for (item, fresh) in pending.iter().zip(fresh) {
                        if fresh {
                            self.count("applied");
                            item.span.in_scope(|| tracing::debug!("event applied"));
                        } else {
                            self.count("duplicate");
                            item.span
                                .in_scope(|| tracing::debug!("duplicate event acknowledged"));
                        }
                    }
                    break;
                }
                // Only that event is settled as a failure; the others are tried again without
                // it, in a new transaction (the failed one rolled back all of them).
                BatchAttempt::Failed { at, failure } => {
                    let item = pending.remove(at);
                    let delivery = &deliveries[item.index];
                    match failure {
                        HandleError::Permanent(reason) => {
                            item.span.in_scope(|| {
                                tracing::warn!(%reason, "event dead-lettered by its handler");
                            });
                            self.dead_letter(dead_letters, delivery, &reason)
                                .instrument(item.span.clone())
                                .await?;
                            self.count("dead_lettered");
                        }
                        HandleError::Transient(error) => {
                            self.requeue(delivery, &error)
                                .instrument(item.span.clone())
                                .await?;
                            settle[item.index] = Settle::Done;
                        }
                    }
                }
                BatchAttempt::Unavailable(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        consumer = %self.spec.name, events = pending.len(), error = %report(&error),
                        retry_in = ?delay, "database unavailable; holding the batch"
                    );
                    tokio::select! {
                        () = cancel.cancelled() => {
                            // Left unacked: RabbitMQ redelivers them to whoever consumes next.
                            for item in &pending {
                                settle[item.index] = Settle::Held;
                            }
                            break;
                        }
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                // Whether it committed is unknown, and so is which event made it fail: one
                // transaction per event from here (what did commit comes back as duplicates).
                BatchAttempt::CommitFailed(error) => {
                    tracing::warn!(
                        consumer = %self.spec.name, events = pending.len(), error = %report(&error),
                        "committing the batch failed; applying its events one by one"
                    );
                    for item in pending.drain(..) {
                        let settled = self
                            .apply(dead_letters, &deliveries[item.index], &item.event, cancel)
                            .instrument(item.span)
                            .await?;
                        settle[item.index] = if settled { Settle::Done } else { Settle::Held };
                    }
                }
            }
        }
        acknowledge(&deliveries, &settle).await
    }

    /// One transaction for the whole batch: the inbox rows in one statement, the handler for each
    /// event seen for the first time (in order), commit.
    async fn attempt_batch(&self, items: &[Item]) -> BatchAttempt {
        let tx = match self.db.begin().await {
            Ok(tx) => tx,
            Err(error) => return BatchAttempt::Unavailable(error),
        };
        let ids: Vec<Uuid> = items.iter().map(|item| item.event.id).collect();
        let inserted = match store::insert_inbox_batch(&tx, &self.spec.name, &ids).await {
            Ok(inserted) => inserted,
            Err(error) => {
                rollback(tx).await;
                return BatchAttempt::Unavailable(error);
            }
        };
        let mut fresh = Vec::with_capacity(items.len());
        let mut first_copies = HashSet::with_capacity(items.len());
        for (at, item) in items.iter().enumerate() {
            // A new inbox row, and the batch's first copy of the event (a message published twice
            // can arrive twice in one batch).
            let new = inserted.contains(&item.event.id) && first_copies.insert(item.event.id);
            fresh.push(new);
            if !new {
                continue;
            }
            if let Err(failure) = self
                .handle(&tx, &item.event)
                .instrument(item.span.clone())
                .await
            {
                rollback(tx).await;
                return BatchAttempt::Failed { at, failure };
            }
        }
        match tx.commit().await {
            Ok(()) => BatchAttempt::Committed(fresh),
            Err(error) => BatchAttempt::CommitFailed(error),
        }
    }

    /// Runs the handler. A panicking handler must not take the consumer down: it counts as a
    /// transient failure, so the delivery limit eventually dead-letters the event.
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        AssertUnwindSafe(self.handler.handle(tx, event))
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
            })
    }

    /// Applies one event in a transaction of its own and settles its delivery (the fallback when
    /// a batch's commit failed). `Ok(false)` when it was left unacknowledged because `cancel`
    /// fired while PostgreSQL was unavailable. `Err` means RabbitMQ failed.
    async fn apply(
        &self,
        dead_letters: &Channel,
        delivery: &Delivery,
        event: &IncomingEvent,
        cancel: &CancellationToken,
    ) -> Result<bool, BusError> {
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
                Attempt::Transient(error) => self.requeue(delivery, &error).await?,
                Attempt::Unavailable(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %report(&error), retry_in = ?delay, "database unavailable; holding the event");
                    tokio::select! {
                        // Left unacked: RabbitMQ redelivers it to whoever consumes next.
                        () = cancel.cancelled() => return Ok(false),
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            }
            return Ok(true);
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
        let handled = self.handle(&tx, event).await;
        match handled {
            Ok(()) => match tx.commit().await {
                Ok(()) => Attempt::Applied,
                Err(error) => Attempt::Transient(
                    anyhow::Error::new(error).context("committing the event's transaction"),
                ),
            },
            Err(failure) => {
                rollback(tx).await;
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

    /// A transient failure: after a pause (so that it has a chance to clear), the delivery goes
    /// back to the queue, counting toward its delivery limit.
    async fn requeue(&self, delivery: &Delivery, error: &anyhow::Error) -> Result<(), BusError> {
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
        Ok(())
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

/// Rolls back; a failure only means the transaction is gone already.
async fn rollback(tx: DatabaseTransaction) {
    if let Err(error) = tx.rollback().await {
        tracing::debug!(error = %report(&error), "rollback failed (the transaction is gone anyway)");
    }
}

/// Acks the deliveries marked [`Settle::Ack`]. When no delivery of the batch is held, with one
/// `multiple` ack up to the highest of their tags: RabbitMQ then acks every outstanding delivery
/// of the channel up to it, which is exactly those, since the batch holds a prefix of what the
/// channel delivered after the previous batch (all settled), and its nacked deliveries are
/// settled already. Otherwise one by one.
async fn acknowledge(deliveries: &[Delivery], settle: &[Settle]) -> Result<(), BusError> {
    let to_ack: Vec<&Delivery> = deliveries
        .iter()
        .zip(settle)
        .filter(|(_, s)| **s == Settle::Ack)
        .map(|(d, _)| d)
        .collect();
    let Some(last) = to_ack.iter().max_by_key(|d| d.delivery_tag) else {
        return Ok(());
    };
    if to_ack.len() > 1 && !settle.contains(&Settle::Held) {
        within(
            "basic.ack",
            last.acker.ack(BasicAckOptions { multiple: true }),
        )
        .await?;
    } else {
        for delivery in to_ack {
            within("basic.ack", delivery.acker.ack(BasicAckOptions::default())).await?;
        }
    }
    Ok(())
}
