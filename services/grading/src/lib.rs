//! The grading service: the points ledger 积分台账 and the yearly grading 年度组织定级.
//!
//! It keeps projections of the members, declarations and evaluations events (never reading
//! another service's database), computes the ledger totals and the grading proposals of
//! RULES.md §5 with the pure functions of [`domain`], records the branch's confirmation, the
//! members' appeals 申诉 and the upper committee's decisions, finalizes, and publishes the final
//! grades. The same code grades on demand (`ComputeGrading`) and in the year-end batch
//! ([`batch`]), so both always agree.
//!
//! Wiring only; the rooms are:
//! * [`domain`]: the pure grading rules (no I/O), property-tested;
//! * [`authz`]: who may do what, as pure functions of the caller;
//! * [`store`]: SQL, the only place that speaks it;
//! * [`usecases`]: transactions — authorize, change, stage the event, audit, commit;
//! * [`grpc`]: `jifen.grading.v1.GradingService` over the use-cases;
//! * [`events`]: what the service publishes and how it applies what it consumes;
//! * [`batch`]: `jifen-grading batch` — every branch of a subtree, optionally one shard of it;
//! * [`reconcile`]: `jifen-grading reconcile` — the projection against the declarations service.

pub mod authz;
pub mod batch;
pub mod demo;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod reconcile;
pub mod store;
pub mod usecases;

use anyhow::Context as _;
use jifen_eventbus::{BusConfig, Consumer, Relay};
use jifen_migrations::GradingMigrator;
use jifen_platform::auth::TokenVerifier;
use jifen_platform::clock::Clock;
use jifen_platform::settings::{CoreSettings, parse_or, var_or};
use sea_orm::DatabaseConnection;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Name of the service (telemetry).
pub const SERVICE_NAME: &str = "jifen-grading";

/// Connections in the service's pool.
const POOL_SIZE: u32 = 16;

/// Everything the grading service is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// PostgreSQL server URL without a database name (`JIFEN_DATABASE_URL`).
    pub database_url: String,
    /// The service's database (`JIFEN_GRADING_DATABASE`, default `jifen_grading`).
    pub database_name: String,
    /// gRPC listen address (`JIFEN_GRADING_GRPC_ADDR`, default `127.0.0.1:15054`).
    pub grpc_listen: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics` (`JIFEN_GRADING_OPS_ADDR`, default `127.0.0.1:9104`).
    pub ops_listen: SocketAddr,
    /// RabbitMQ and naming (`JIFEN_AMQP_URL`, `JIFEN_BUS_PREFIX`).
    pub bus: BusConfig,
    /// Verifies the forwarded JWTs (`JIFEN_JWT_KEYS_DIR`, every `*.pub.pem`).
    pub verifier: TokenVerifier,
    /// "Now" (the system clock; tests use a manual one).
    pub clock: Clock,
    /// OTLP endpoint; tracing export is off when unset (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
    /// Apply pending migrations at start-up (`JIFEN_MIGRATE_ON_START`, default `true`).
    pub migrate_on_start: bool,
    /// Serving on, as NOT_SERVING, after SIGTERM (`JIFEN_SHUTDOWN_DRAIN_SECS`, default 5).
    pub shutdown_drain: Duration,
}

impl Settings {
    /// Reads the environment (DESIGN.md §7).
    pub fn from_env() -> anyhow::Result<Self> {
        let core = CoreSettings::from_env()?;
        let verifier = TokenVerifier::from_dir(std::path::Path::new(&core.jwt_keys_dir))
            .with_context(|| format!("loading JWT public keys from {}", core.jwt_keys_dir))?;
        Ok(Self {
            database_url: core.database_url,
            database_name: database_name()?,
            grpc_listen: parse_or(
                "JIFEN_GRADING_GRPC_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 15054)),
            )?,
            ops_listen: parse_or(
                "JIFEN_GRADING_OPS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 9104)),
            )?,
            bus: BusConfig::new(core.amqp_url)
                .with_prefix(&core.bus_prefix)
                .with_retention(core.bus_retention),
            verifier,
            clock: Clock::system(),
            otlp_endpoint: core.otlp_endpoint,
            migrate_on_start: core.migrate_on_start,
            shutdown_drain: core.shutdown_drain,
        })
    }

    /// Settings for tests and embedding: listeners on 127.0.0.1 port 0, the system clock
    /// (replace `clock` for a manual one).
    pub fn for_tests(
        database_url: impl Into<String>,
        database_name: impl Into<String>,
        bus: BusConfig,
        verifier: TokenVerifier,
    ) -> Self {
        Self {
            database_url: database_url.into(),
            database_name: database_name.into(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bus,
            verifier,
            clock: Clock::system(),
            otlp_endpoint: None,
            migrate_on_start: true,
            shutdown_drain: Duration::ZERO,
        }
    }
}

/// `JIFEN_GRADING_DATABASE`, default `jifen_grading`.
pub fn database_name() -> Result<String, jifen_platform::settings::ConfigError> {
    var_or("JIFEN_GRADING_DATABASE", "jifen_grading")
}

/// Creates the database when missing and applies every pending migration, serialized between
/// instances by an advisory lock. Returns a connection pool.
pub async fn migrate(
    database_url: &str,
    database_name: &str,
) -> anyhow::Result<DatabaseConnection> {
    jifen_platform::db::connect_and_migrate::<GradingMigrator>(
        database_url,
        database_name,
        POOL_SIZE,
        store::STARTUP_LOCK_KEY,
    )
    .await
    .with_context(|| format!("creating, connecting to or migrating database {database_name}"))
}

/// The pool of a one-off command (`batch`, `reconcile`, `republish-finals`, `final-drift`), as
/// the service opens its own at start-up: migrated when `JIFEN_MIGRATE_ON_START` (the default),
/// else only checked to have no pending migration, so a command run with the service's
/// database rights in production never needs the right to alter the schema.
pub async fn open_for_command(core: &CoreSettings) -> anyhow::Result<DatabaseConnection> {
    let name = database_name()?;
    jifen_platform::db::open::<GradingMigrator>(
        &core.database_url,
        &name,
        POOL_SIZE,
        store::STARTUP_LOCK_KEY,
        core.migrate_on_start,
    )
    .await
    .with_context(|| format!("opening database {name}"))
}

/// The pool at start-up: migrated when `settings.migrate_on_start` (`JIFEN_MIGRATE_ON_START`),
/// else checked to have no pending migration.
async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    jifen_platform::db::open::<GradingMigrator>(
        &settings.database_url,
        &settings.database_name,
        POOL_SIZE,
        store::STARTUP_LOCK_KEY,
        settings.migrate_on_start,
    )
    .await
    .with_context(|| format!("opening database {}", settings.database_name))
}

/// The grading service, built and bound, ready to run.
pub struct Application {
    db: DatabaseConnection,
    app: usecases::Grading,
    verifier: TokenVerifier,
    bus: BusConfig,
    shutdown_drain: Duration,
    grpc_listener: tokio::net::TcpListener,
    ops_listener: tokio::net::TcpListener,
    grpc_addr: SocketAddr,
    ops_addr: SocketAddr,
}

impl Application {
    /// Ensures the database and its schema, declares the consumer's queue (so that events
    /// published from now on reach it) and binds both listeners.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = open_database(&settings).await?;
        let consumer = Consumer::new(
            db.clone(),
            settings.bus.clone(),
            events::projections_spec(),
            Arc::new(events::Projector),
        );
        if let Err(e) = consumer.declare().await {
            // The consumer declares again on every connection; only events published before it
            // first connects are missed.
            tracing::warn!(error = %e, "cannot declare the projections queue yet");
        }
        let grpc_listener = tokio::net::TcpListener::bind(settings.grpc_listen)
            .await
            .with_context(|| format!("binding gRPC on {}", settings.grpc_listen))?;
        let ops_listener = tokio::net::TcpListener::bind(settings.ops_listen)
            .await
            .with_context(|| format!("binding ops on {}", settings.ops_listen))?;
        Ok(Self {
            grpc_addr: grpc_listener.local_addr()?,
            shutdown_drain: settings.shutdown_drain,
            ops_addr: ops_listener.local_addr()?,
            app: usecases::Grading::new(db.clone(), settings.clock),
            verifier: settings.verifier,
            db,
            bus: settings.bus,
            grpc_listener,
            ops_listener,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn ops_addr(&self) -> SocketAddr {
        self.ops_addr
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The use-cases (tests drive the batch through them).
    pub fn grading(&self) -> usecases::Grading {
        self.app.clone()
    }

    /// Serves gRPC (with health and reflection) and the ops endpoints, relays the outbox and
    /// runs the projections consumer until `cancel` fires; if one of them fails, the others are
    /// stopped too.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let _ = jifen_platform::ops::prometheus();
        let api = grpc::GradingApi::new(self.app.clone(), self.verifier.clone());
        let server = jifen_platform::grpc::GrpcServer::new()?
            .add_service(api.into_service())
            .await;
        // SIGTERM: health NOT_SERVING and /readyz 503 at once, everything stops after the drain.
        let lifecycle = jifen_platform::shutdown::Lifecycle::new(&cancel, self.shutdown_drain);
        let stop = lifecycle.stop().clone();

        let mut tasks = jifen_platform::shutdown::Tasks::new();
        jifen_platform::shutdown::spawn_servers(
            &mut tasks,
            events::SOURCE,
            server,
            self.grpc_listener,
            self.ops_listener,
            self.db.clone(),
            &lifecycle,
        );
        tasks.spawn({
            let stop = stop.clone();
            let relay = Relay::new(self.db.clone(), self.bus.clone(), events::SOURCE);
            async move { ("relay", relay.run(stop).await.context("outbox relay")) }
        });
        tasks.spawn({
            let stop = stop.clone();
            let consumer = Consumer::new(
                self.db.clone(),
                self.bus.clone(),
                events::projections_spec(),
                Arc::new(events::Projector),
            );
            async move { ("consumer", consumer.run(stop).await.context("consumer")) }
        });
        tracing::info!(grpc = %self.grpc_addr, ops = %self.ops_addr, "grading service running");

        jifen_platform::shutdown::supervise(tasks, stop).await
    }
}
