//! The outbox relay: publishes staged events to RabbitMQ.
//!
//! Invariants:
//! * a row is claimed inside a transaction (`FOR UPDATE SKIP LOCKED`), published with
//!   `mandatory` on a confirm-mode channel, and marked published in that same transaction only
//!   once the broker acked it without returning it; the transaction then commits;
//! * any failure (broker gone, PostgreSQL gone, cancellation mid-batch) leaves the unconfirmed
//!   rows unpublished, so they are published again later: delivery is at-least-once and
//!   consumers deduplicate through their inbox. No row is ever skipped: the claim query looks at
//!   every unpublished row, not at a high-water mark;
//! * the relay never gives up on infrastructure errors: it reconnects with capped backoff.
//!
//! Metrics: published events and batch times, and the backlog (rows, oldest age) sampled every
//! `sample_interval` ([`crate::gauges`]).
//!
//! Retention: every `retention_interval` the relay also deletes the published outbox rows and
//! the inbox rows older than `retention` (default 7 days), a few thousand rows per statement
//! with `SKIP LOCKED`, so it never waits on (or blocks) a relay claiming or a consumer applying:
//! unpublished rows are never deleted, and an inbox row outlives any redelivery of its event
//! as long as no message waits in a queue longer than `retention`. Deleted rows are counted in
//! `jifen_retention_deleted_total{table}`.
//!
//! Wake-ups: `LISTEN jifen_outbox` (a dedicated pooled connection; [`crate::stage`] notifies at
//! commit), with a poll every `poll_interval` as the fallback for lost notifications. A
//! notification is answered after `relay_linger`, so that the events of the transactions
//! committing meanwhile go out in the same batch (one claim and one mark for all of them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Channel, Confirmation, Connection};
use sea_orm::{DatabaseConnection, DbBackend, TransactionTrait as _};
use sqlx::postgres::PgListener;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::amqp::{self, Backoff, OPERATION_TIMEOUT, within};
use crate::envelope::{self, short};
use crate::error::report;
use crate::{BusConfig, BusError, OUTBOX_CHANNEL, declare_topology, store};

/// Rows claimed per transaction.
const BATCH_SIZE: u32 = 256;

/// Publishes the outbox of one service database to RabbitMQ. Run one or more per service
/// (replicas share the work through `SKIP LOCKED`).
pub struct Relay {
    db: DatabaseConnection,
    config: BusConfig,
    source: String,
    publisher: Mutex<Option<Publisher>>,
}

/// A connection and a confirm-mode channel with the topology declared.
struct Publisher {
    connection: Connection,
    channel: Channel,
}

impl Publisher {
    async fn open(config: &BusConfig, source: &str) -> Result<Self, BusError> {
        let connection = amqp::connect(&config.amqp_url, &format!("jifen relay {source}")).await?;
        let channel = within("channel.open", connection.create_channel()).await?;
        within("topology declaration", declare_topology(&channel, config)).await?;
        within(
            "confirm.select",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        tracing::info!(exchange = %config.exchange, "outbox relay connected to RabbitMQ");
        Ok(Self {
            connection,
            channel,
        })
    }

    fn usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    async fn close(self) {
        // Best effort: a broken connection may not answer.
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.connection.close(200, "relay stopped".into()),
        )
        .await;
    }
}

/// What one claimed batch came to.
struct BatchOutcome {
    claimed: usize,
    published: usize,
}

impl Relay {
    /// A relay for the outbox in `db`, publishing as `source` (the service name, for logs).
    pub fn new(db: DatabaseConnection, config: BusConfig, source: &str) -> Self {
        Self {
            db,
            config,
            source: source.to_owned(),
            publisher: Mutex::new(None),
        }
    }

    /// Runs until `cancel` fires: wakes on `LISTEN jifen_outbox` and every `poll_interval`,
    /// publishes everything pending, and retries with capped backoff when RabbitMQ or
    /// PostgreSQL is unavailable. Returns `Ok(())` once cancelled; an error only for a
    /// configuration that can never work (names too long, not a PostgreSQL connection).
    pub async fn run(self, cancel: CancellationToken) -> Result<(), BusError> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return Err(BusError::NotPostgres);
        }
        self.config.validate(&[])?;
        let wake = Arc::new(Notify::new());
        let listener_cancel = cancel.child_token();
        let listener = tokio::spawn(listen(
            self.db.get_postgres_connection_pool().clone(),
            wake.clone(),
            listener_cancel.clone(),
        ));
        let sampler = tokio::spawn(sample_outbox(
            self.db.clone(),
            self.source.clone(),
            self.config.sample_interval,
            listener_cancel.clone(),
        ));
        let pruner = tokio::spawn(prune_periodically(
            self.db.clone(),
            self.config.retention,
            self.config.retention_interval,
            listener_cancel.clone(),
        ));
        tracing::info!(source = %self.source, "outbox relay started");

        let mut backoff = Backoff::new();
        loop {
            // Dropping a batch half-way is safe: its transaction rolls back and its rows stay
            // unpublished (possibly already delivered: consumers deduplicate).
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                result = self.drain_once() => result,
            };
            match result {
                Ok(published) => {
                    backoff.reset();
                    if published > 0 {
                        tracing::debug!(published, "outbox drained");
                    }
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = wake.notified() => {
                            // Notifications arriving meanwhile fold into this one wake-up.
                            tokio::select! {
                                () = cancel.cancelled() => break,
                                () = tokio::time::sleep(self.config.relay_linger) => {}
                            }
                        }
                        () = tokio::time::sleep(self.config.poll_interval) => {}
                    }
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %report(&error), retry_in = ?delay, "outbox relay failed; retrying");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }

        listener_cancel.cancel();
        let _ = listener.await;
        let _ = sampler.await;
        let _ = pruner.await;
        if let Some(publisher) = self.publisher.lock().await.take() {
            publisher.close().await;
        }
        tracing::info!(source = %self.source, "outbox relay stopped");
        Ok(())
    }

    /// One retention sweep now (the relay runs one every `retention_interval`): deletes the
    /// published outbox rows and the inbox rows older than `retention`; answers how many of
    /// each.
    pub async fn prune_once(&self) -> Result<(u64, u64), BusError> {
        Ok(prune(&self.db, self.config.retention).await?)
    }

    /// Publishes everything pending once (for tests and benchmarks); returns how many events
    /// were published. Connects to RabbitMQ first if needed.
    pub async fn drain_once(&self) -> Result<usize, BusError> {
        let mut guard = self.publisher.lock().await;
        let result = self.drain_with(&mut guard).await;
        if let Err(error) = &result
            && error.is_broker()
        {
            // Start from a fresh connection (and redeclared topology) next time.
            *guard = None;
        }
        result
    }

    async fn drain_with(&self, slot: &mut Option<Publisher>) -> Result<usize, BusError> {
        let mut total = 0;
        loop {
            let publisher = match slot.take() {
                Some(publisher) if publisher.usable() => slot.insert(publisher),
                _ => slot.insert(Publisher::open(&self.config, &self.source).await?),
            };
            let outcome = self.publish_batch(&publisher.channel).await?;
            total += outcome.published;
            if outcome.claimed < BATCH_SIZE as usize {
                return Ok(total);
            }
        }
    }

    /// Claims one batch, publishes it, marks what the broker confirmed, commits.
    async fn publish_batch(&self, channel: &Channel) -> Result<BatchOutcome, BusError> {
        let txn = self.db.begin().await?;
        let rows = store::claim_batch(&txn, BATCH_SIZE).await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(BatchOutcome {
                claimed: 0,
                published: 0,
            });
        }
        let started = Instant::now();
        let exchange = short("exchange", &self.config.exchange)?;
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };

        let mut failure: Option<BusError> = None;
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let (routing_key, properties) = match short("routing key", &row.routing_key)
                .and_then(|key| Ok((key, envelope::properties(row)?)))
            {
                Ok(ok) => ok,
                Err(error) => {
                    // Cannot happen for rows written by `stage`, which validates.
                    tracing::error!(event_id = %row.id, error = %report(&error), "outbox row cannot be published");
                    failure.get_or_insert(error);
                    continue;
                }
            };
            let publish = channel.basic_publish(
                exchange.clone(),
                routing_key,
                options,
                &row.payload,
                properties,
            );
            match within("basic.publish", publish).await {
                Ok(confirm) => pending.push((row.id, confirm)),
                Err(error) => {
                    failure.get_or_insert(error);
                    break;
                }
            }
        }

        let deadline = tokio::time::Instant::now() + OPERATION_TIMEOUT;
        let mut confirmed = Vec::with_capacity(pending.len());
        let mut refused = 0usize;
        let mut refusal = String::new();
        for (id, confirm) in pending {
            match tokio::time::timeout_at(deadline, confirm).await {
                Err(_elapsed) => {
                    failure.get_or_insert(BusError::Timeout("publisher confirms"));
                    break;
                }
                Ok(Err(error)) => {
                    failure.get_or_insert(error.into());
                }
                Ok(Ok(Confirmation::Ack(None))) => confirmed.push(id),
                Ok(Ok(Confirmation::Ack(Some(returned)))) => {
                    refused += 1;
                    if refusal.is_empty() {
                        refusal = format!(
                            "event {id} returned: {} {}",
                            returned.reply_code, returned.reply_text
                        );
                    }
                }
                Ok(Ok(Confirmation::Nack(_))) => {
                    refused += 1;
                    if refusal.is_empty() {
                        refusal = format!("event {id} nacked by the broker");
                    }
                }
                Ok(Ok(Confirmation::NotRequested)) => {
                    failure.get_or_insert(BusError::Invalid(
                        "channel is not in confirm mode".to_owned(),
                    ));
                }
            }
        }

        // Keep what the broker confirmed, even when the rest of the batch failed.
        store::mark_published(&txn, &confirmed).await?;
        txn.commit().await?;
        metrics::counter!("jifen_outbox_published_total").increment(confirmed.len() as u64);
        metrics::histogram!("jifen_outbox_publish_seconds").record(started.elapsed().as_secs_f64());
        tracing::debug!(
            claimed = rows.len(),
            published = confirmed.len(),
            "outbox batch published"
        );

        if let Some(error) = failure {
            return Err(error);
        }
        if refused > 0 {
            return Err(BusError::NotAccepted {
                count: refused,
                detail: refusal,
            });
        }
        Ok(BatchOutcome {
            claimed: rows.len(),
            published: confirmed.len(),
        })
    }
}

/// Samples the outbox backlog for `/metrics` at once and every `every`, until `cancel`. A failed
/// sample (PostgreSQL away) keeps the previous values and is tried again next time.
/// The retention sweep ([`Relay::prune_once`]) every `every`, the first one at start.
async fn prune_periodically(
    db: DatabaseConnection,
    retention: Duration,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        if let Err(error) = prune(&db, retention).await {
            tracing::warn!(error = %report(&BusError::from(error)), "retention sweep failed; retrying at the next one");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

async fn prune(db: &DatabaseConnection, retention: Duration) -> Result<(u64, u64), sea_orm::DbErr> {
    let (outbox, inbox) = store::prune(db, retention).await?;
    metrics::counter!("jifen_retention_deleted_total", "table" => "outbox").increment(outbox);
    metrics::counter!("jifen_retention_deleted_total", "table" => "inbox").increment(inbox);
    if outbox + inbox > 0 {
        tracing::info!(outbox, inbox, "retention sweep deleted old rows");
    }
    Ok((outbox, inbox))
}

async fn sample_outbox(
    db: DatabaseConnection,
    service: String,
    every: Duration,
    cancel: CancellationToken,
) {
    crate::gauges::describe();
    loop {
        if let Err(error) = crate::gauges::sample_outbox(&db, &service).await {
            tracing::debug!(error = %report(&error), "cannot sample the outbox backlog");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Forwards `NOTIFY jifen_outbox` to `wake`, reconnecting with backoff. Also wakes the relay
/// after every (re)connection, since notifications sent meanwhile were lost.
async fn listen(pool: sqlx::PgPool, wake: Arc<Notify>, cancel: CancellationToken) {
    let mut backoff = Backoff::new();
    loop {
        let connect = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(OUTBOX_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let attempt = tokio::select! {
            () = cancel.cancelled() => return,
            attempt = connect => attempt,
        };
        match attempt {
            Ok(mut listener) => {
                backoff.reset();
                wake.notify_one();
                loop {
                    let received = tokio::select! {
                        () = cancel.cancelled() => return,
                        received = listener.try_recv() => received,
                    };
                    match received {
                        // A notification, or a transparent reconnection (after which anything
                        // sent meanwhile is lost): either way, look at the outbox.
                        Ok(_) => wake.notify_one(),
                        Err(error) => {
                            tracing::warn!(error = %report(&error), "outbox LISTEN connection lost");
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                tracing::debug!(error = %report(&error), "cannot LISTEN for outbox notifications yet");
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}
