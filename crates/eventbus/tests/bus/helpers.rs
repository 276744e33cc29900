//! Shared set-up for the event bus integration tests: a fresh database with the outbox/inbox
//! migration and a recording table, a unique exchange/queue prefix, telemetry with a real
//! OpenTelemetry context, a recording handler, and raw AMQP access for assertions.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jifen_eventbus::{
    BusConfig, Consumer, ConsumerSpec, EventHandler, HandleError, IncomingEvent, OutgoingEvent,
    Relay, declare_topology, stage,
};
use jifen_testkit::TestDatabase;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
    TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        jifen_eventbus::migration::all()
    }
}

/// Installs, once per process, a tracer provider (no exporter), the `tracing_opentelemetry`
/// layer and the W3C propagator, so spans carry real trace contexts.
pub fn init_telemetry() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::{EnvFilter, Layer as _};

        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let tracer = provider.tracer("jifen-eventbus-tests");
        opentelemetry::global::set_tracer_provider(provider);
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("warn,jifen_eventbus=info"));
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(filter),
            );
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// One test's world: its database, its names, and the relays/consumers it started.
pub struct TestBus {
    pub db: DatabaseConnection,
    pub database: TestDatabase,
    pub config: BusConfig,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    consumers: Mutex<Vec<String>>,
}

impl TestBus {
    /// A fresh database (migrated, plus the `applied` and `counters` tables the recording
    /// handler writes) and a unique prefix for exchanges and queues.
    pub async fn new(label: &str) -> anyhow::Result<Self> {
        init_telemetry();
        let database = jifen_testkit::fresh_database(label).await?;
        let db = Database::connect(&database.url).await?;
        Migrator::up(&db, None).await?;
        db.execute_unprepared(
            "CREATE TABLE applied (
                 consumer text NOT NULL, event_id uuid NOT NULL, routing_key text NOT NULL,
                 subject text NOT NULL, source text NOT NULL, traceparent text, payload bytea NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE counters (name text PRIMARY KEY, value int NOT NULL);",
        )
        .await?;
        let config = BusConfig::new(jifen_testkit::amqp_url())
            .with_prefix(&jifen_testkit::unique_prefix(label));
        Ok(Self {
            db,
            database,
            config,
            cancel: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            consumers: Mutex::new(Vec::new()),
        })
    }

    /// A token cancelled by [`TestBus::cleanup`] at the latest.
    pub fn child_token(&self) -> CancellationToken {
        self.cancel.child_token()
    }

    /// Starts a relay on this test's database with `config`; cancel it with `cancel`.
    pub fn spawn_relay_with(&self, config: BusConfig, cancel: CancellationToken) -> JoinHandle<()> {
        let relay = Relay::new(self.db.clone(), config, "tests");
        tokio::spawn(async move {
            if let Err(error) = relay.run(cancel).await {
                panic!("relay failed: {error:?}");
            }
        })
    }

    /// Starts a relay that runs until cleanup.
    pub fn spawn_relay(&self) {
        let handle = self.spawn_relay_with(self.config.clone(), self.child_token());
        self.track(handle);
    }

    /// Starts a consumer `name` bound to `bindings` with `config`, running until `cancel`.
    pub fn spawn_consumer_with(
        &self,
        config: BusConfig,
        name: &str,
        bindings: &[&str],
        handler: Arc<dyn EventHandler>,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        self.consumers.lock().unwrap().push(name.to_owned());
        let spec = ConsumerSpec {
            name: name.to_owned(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
        };
        let consumer = Consumer::new(self.db.clone(), config, spec, handler);
        tokio::spawn(async move {
            if let Err(error) = consumer.run(cancel).await {
                panic!("consumer failed: {error:?}");
            }
        })
    }

    /// Starts a consumer with this test's config that runs until cleanup, and waits until it
    /// consumes (so events published from now on reach its queue).
    pub async fn spawn_consumer(
        &self,
        name: &str,
        bindings: &[&str],
        handler: Arc<dyn EventHandler>,
    ) -> anyhow::Result<()> {
        let handle = self.spawn_consumer_with(
            self.config.clone(),
            name,
            bindings,
            handler,
            self.child_token(),
        );
        self.track(handle);
        self.wait_for_consumer(name).await
    }

    /// Waits until the consumer `name` consumes from its queue (declared and bound before that).
    pub async fn wait_for_consumer(&self, name: &str) -> anyhow::Result<()> {
        let queue = self.config.queue_name(name);
        let url = jifen_testkit::amqp_url();
        eventually(&format!("a consumer on {queue}"), || {
            let queue = queue.clone();
            let url = url.clone();
            async move {
                // A failed passive declare closes the channel: use a new connection each time.
                let Ok(broker) = RawBroker::connect(&url).await else {
                    return false;
                };
                let declared = broker
                    .channel
                    .queue_declare(
                        queue.into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await;
                let _ = broker.connection.close(200, "probe".into()).await;
                declared.is_ok_and(|q| q.consumer_count() > 0)
            }
        })
        .await
    }

    /// Declares the queue of the consumer `name` (bound to `bindings`) without consuming it, so
    /// that what is published from now on waits in it.
    pub async fn declare_consumer(&self, name: &str, bindings: &[&str]) -> anyhow::Result<()> {
        self.consumers.lock().unwrap().push(name.to_owned());
        let spec = ConsumerSpec {
            name: name.to_owned(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
        };
        Consumer::new(
            self.db.clone(),
            self.config.clone(),
            spec,
            Recorder::new(name),
        )
        .declare()
        .await?;
        Ok(())
    }

    pub fn track(&self, handle: JoinHandle<()>) {
        self.tasks.lock().unwrap().push(handle);
    }

    /// Stages `n` events (one transaction each) and returns their ids.
    pub async fn stage_many(
        &self,
        n: usize,
        routing_key: &str,
        subject_prefix: &str,
    ) -> anyhow::Result<Vec<Uuid>> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let tx = self.db.begin().await?;
            let id = stage(
                &tx,
                "tests",
                event(routing_key, &format!("{subject_prefix}-{i}")),
            )
            .await?;
            tx.commit().await?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// `SELECT count(*)`-style query returning one bigint.
    pub async fn scalar(&self, sql: &str) -> anyhow::Result<i64> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await?
            .context("no row")?;
        Ok(row.try_get_by_index::<i64>(0)?)
    }

    /// Waits until `sql` (one bigint) returns at least `expected`; returns the last value.
    pub async fn wait_for_count(&self, sql: &str, expected: i64) -> anyhow::Result<i64> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let value = self.scalar(sql).await.unwrap_or(-1);
            if value >= expected {
                return Ok(value);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "timed out waiting for {sql} >= {expected} (last {value})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Cancels everything started and deletes this test's exchanges and queues.
    pub async fn cleanup(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .context("a relay or consumer did not stop after cancel")??;
        }
        // Best effort: leftovers are harmless (unique names), and the broker may be down
        // because a disruptive test is running.
        let consumers: Vec<String> = self.consumers.lock().unwrap().clone();
        let names: Vec<&str> = consumers.iter().map(String::as_str).collect();
        jifen_eventbus::delete_topology(&self.config, &names).await;
        // The database itself is left to `scripts/dev-services.sh clean-test-dbs` (run by
        // `make test`): dropping it here costs a checkpoint, seconds on a busy machine.
        self.db.close().await?;
        Ok(())
    }
}

/// An event with a small payload.
pub fn event(routing_key: &str, subject: &str) -> OutgoingEvent {
    OutgoingEvent {
        routing_key: routing_key.to_owned(),
        subject: subject.to_owned(),
        payload: subject.as_bytes().to_vec(),
    }
}

/// Records every application in `applied` and bumps `counters[event id]`, in the consumer's
/// transaction. Subjects steer failures: `panic…` panics, `poison…` fails permanently, `always-flaky…` fails
/// transiently every time, `flaky…` fails transiently on its first two attempts.
pub struct Recorder {
    pub consumer: String,
    attempts: Mutex<HashMap<Uuid, u32>>,
}

impl Recorder {
    pub fn new(consumer: &str) -> Arc<Self> {
        Arc::new(Self {
            consumer: consumer.to_owned(),
            attempts: Mutex::new(HashMap::new()),
        })
    }

    /// How many times the handler was called for `id`.
    pub fn attempts(&self, id: Uuid) -> u32 {
        self.attempts.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl EventHandler for Recorder {
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(event.id).or_insert(0);
            *n += 1;
            *n
        };
        if event.subject.starts_with("panic") {
            panic!("handler panicked on {}", event.subject);
        }
        if event.subject.starts_with("poison") {
            return Err(HandleError::Permanent(format!(
                "poisoned subject {}",
                event.subject
            )));
        }
        if event.subject.starts_with("always-flaky") {
            return Err(HandleError::Transient(anyhow::anyhow!("always flaky")));
        }
        if event.subject.starts_with("flaky") && attempt <= 2 {
            return Err(HandleError::Transient(anyhow::anyhow!(
                "flaky attempt {attempt}"
            )));
        }
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO applied (consumer, event_id, routing_key, subject, source, traceparent, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                self.consumer.clone().into(),
                event.id.into(),
                event.routing_key.clone().into(),
                event.subject.clone().into(),
                event.source.clone().into(),
                event.traceparent.clone().into(),
                event.payload.clone().into(),
            ],
        ))
        .await?;
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO counters (name, value) VALUES ($1, 1)
             ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
            [event.id.to_string().into()],
        ))
        .await?;
        Ok(())
    }
}

/// A [`Recorder`] that stops for good on the event whose subject is `subject` (inside the
/// consumer's transaction, after the batch's earlier events were handled) and says so through
/// [`Gate::reached`]: a consumer crashing in the middle of a batch.
pub struct Gate {
    pub inner: Arc<Recorder>,
    subject: String,
    reached: tokio::sync::Notify,
}

impl Gate {
    pub fn new(inner: Arc<Recorder>, subject: &str) -> Arc<Self> {
        Arc::new(Self {
            inner,
            subject: subject.to_owned(),
            reached: tokio::sync::Notify::new(),
        })
    }

    /// Waits until the handler holds the gate's event.
    pub async fn reached(&self) -> anyhow::Result<()> {
        tokio::time::timeout(DEADLINE, self.reached.notified())
            .await
            .context("the consumer never reached the gate's event")
    }
}

#[async_trait::async_trait]
impl EventHandler for Gate {
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        if event.subject == self.subject {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.handle(tx, event).await
    }
}

/// Direct AMQP access for publishing raw messages and inspecting queues.
pub struct RawBroker {
    pub connection: Connection,
    pub channel: Channel,
}

impl RawBroker {
    /// Connects, retrying for a while (a disruptive test may have RabbitMQ down right now).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match Self::connect_once(url).await {
                Ok(broker) => return Ok(broker),
                Err(error) if Instant::now() < deadline => {
                    eprintln!("RabbitMQ not reachable yet: {error:#}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn connect_once(url: &str) -> anyhow::Result<Self> {
        let connection = Connection::connect(url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            connection,
            channel,
        })
    }

    /// Connects and declares the bus topology for `config`.
    pub async fn with_topology(config: &BusConfig) -> anyhow::Result<Self> {
        let broker = Self::connect(&config.amqp_url).await?;
        declare_topology(&broker.channel, config).await?;
        Ok(broker)
    }

    /// Publishes to `exchange` and waits for the broker's ack.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: &[u8],
    ) -> anyhow::Result<()> {
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await?
            .await?;
        anyhow::ensure!(
            matches!(confirm, Confirmation::Ack(None)),
            "publish not confirmed: {confirm:?}"
        );
        Ok(())
    }

    /// Takes (and acks) up to `n` messages from `queue`, waiting up to [`DEADLINE`] for them.
    pub async fn take(
        &self,
        queue: &str,
        n: usize,
    ) -> anyhow::Result<Vec<lapin::message::Delivery>> {
        let deadline = Instant::now() + DEADLINE;
        let mut got = Vec::new();
        while got.len() < n {
            match self
                .channel
                .basic_get(queue.into(), BasicGetOptions::default())
                .await?
            {
                Some(message) => {
                    message
                        .delivery
                        .acker
                        .ack(BasicAckOptions::default())
                        .await?;
                    got.push(message.delivery);
                }
                None => {
                    anyhow::ensure!(
                        Instant::now() < deadline,
                        "timed out waiting for {n} message(s) in {queue} (got {})",
                        got.len()
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Ok(got)
    }
}

/// Envelope properties as the relay writes them, for publishing events by hand.
pub fn event_properties(id: &str, routing_key: &str, subject: &str) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("ce-specversion".into(), text("1.0"));
    headers.insert("ce-source".into(), text("tests"));
    headers.insert("ce-subject".into(), text(subject));
    BasicProperties::default()
        .with_message_id(id.into())
        .with_type(routing_key.into())
        .with_content_type("application/protobuf".into())
        .with_delivery_mode(2)
        .with_headers(headers)
}

pub fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes()))
}

/// A header of a delivery as text.
pub fn header_text(delivery: &lapin::message::Delivery, key: &str) -> Option<String> {
    match delivery.properties.headers().as_ref()?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Polls `check` until it returns true or [`DEADLINE`] passes.
pub async fn eventually<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
