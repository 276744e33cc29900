//! The evaluations service: the quarterly mass evaluation 群众评议 of a branch's members.
//!
//! A branch secretary opens a round (评议轮次) per quarter, issues one-time invitation codes
//! (邀请码) to 群众 or to members, evaluators vote once per code on an anonymous ballot, and
//! closing the round computes every member's quarter result from the standard's settings.
//!
//! Wiring only; the rooms are:
//! * [`domain`]: pure values and rules (no I/O), scoring and authorization;
//! * [`store`]: SQL, the only place that speaks it;
//! * [`usecases`]: transactions — authorize, change, stage the event, commit;
//! * [`grpc`]: `jifen.evaluations.v1.EvaluationsService` over the use-cases;
//! * [`events`]: what the service publishes, the replica it keeps from `members.*` and
//!   published standards, and the final grades (定档) it keeps from the grading service;
//! * [`crypto`]: the keyed hash of invitation codes and the ballot ticket.
//!
//! [`Application::build`] prepares everything (database, migrations, queues, listeners);
//! [`Application::run_until_stopped`] serves gRPC and the ops endpoints, relays the outbox, runs
//! the consumers and closes rounds past their closing instant, until the token fires.

pub mod crypto;
pub mod demo;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod store;
pub mod usecases;

use anyhow::Context as _;
use base64::Engine as _;
use jifen_eventbus::{BusConfig, Consumer, Relay};
use jifen_migrations::EvaluationsMigrator;
use jifen_platform::auth::TokenVerifier;
use jifen_platform::settings::{CoreSettings, parse_or, var_opt, var_or};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret as _, SecretSlice};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Name of the service (telemetry).
pub const SERVICE_NAME: &str = "jifen-evaluations";

/// Connections in the service's pool.
const POOL_SIZE: u32 = 16;

/// Everything the evaluations service is configured with.
#[derive(Clone)]
pub struct Settings {
    /// PostgreSQL server URL without a database name (`JIFEN_DATABASE_URL`).
    pub database_url: String,
    /// The service's database (`JIFEN_EVALUATIONS_DATABASE`, default `jifen_evaluations`).
    pub database_name: String,
    /// gRPC listen address (`JIFEN_EVALUATIONS_GRPC_ADDR`, default `127.0.0.1:15053`).
    pub grpc_listen: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics` (`JIFEN_EVALUATIONS_OPS_ADDR`, default `127.0.0.1:9103`).
    pub ops_listen: SocketAddr,
    /// RabbitMQ and naming (`JIFEN_AMQP_URL`, `JIFEN_BUS_PREFIX`).
    pub bus: BusConfig,
    /// Verifies the forwarded JWTs (`JIFEN_JWT_KEYS_DIR`, every `*.pub.pem`).
    pub verifier: TokenVerifier,
    /// 32-byte key of the invitation codes' keyed hash (`JIFEN_EVALUATIONS_CODE_KEY`, base64;
    /// required). Changing it invalidates every outstanding code.
    pub code_key: SecretSlice<u8>,
    /// How often rounds past their closing instant are looked for
    /// (`JIFEN_EVALUATIONS_SWEEP_SECS`, default 30).
    pub sweep_interval: Duration,
    /// OTLP endpoint; tracing export is off when unset (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
    /// Apply pending migrations at start-up (`JIFEN_MIGRATE_ON_START`, default `true`).
    pub migrate_on_start: bool,
    /// Serving on, as NOT_SERVING, after SIGTERM (`JIFEN_SHUTDOWN_DRAIN_SECS`, default 5).
    pub shutdown_drain: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_name", &self.database_name)
            .field("grpc_listen", &self.grpc_listen)
            .field("ops_listen", &self.ops_listen)
            .field("bus", &self.bus)
            .field("verifier", &self.verifier)
            .field("sweep_interval", &self.sweep_interval)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("shutdown_drain", &self.shutdown_drain)
            .finish_non_exhaustive()
    }
}

/// Decodes a base64 (standard or URL-safe) key of exactly 32 bytes.
pub fn decode_key(name: &str, text: &str) -> anyhow::Result<SecretSlice<u8>> {
    let text = text.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
        .with_context(|| format!("{name} is not base64"))?;
    anyhow::ensure!(
        bytes.len() == 32,
        "{name} must decode to 32 bytes, got {}",
        bytes.len()
    );
    Ok(SecretSlice::from(bytes))
}

impl Settings {
    /// Reads the environment (DESIGN.md §7). Fails without `JIFEN_EVALUATIONS_CODE_KEY` or
    /// without JWT keys.
    pub fn from_env() -> anyhow::Result<Self> {
        let core = CoreSettings::from_env()?;
        let key = var_opt("JIFEN_EVALUATIONS_CODE_KEY")?.context(
            "JIFEN_EVALUATIONS_CODE_KEY is required: base64 of a 32-byte key (e.g. `openssl rand -base64 32`); there is no default",
        )?;
        let verifier = TokenVerifier::from_dir(std::path::Path::new(&core.jwt_keys_dir))
            .with_context(|| format!("loading JWT public keys from {}", core.jwt_keys_dir))?;
        let sweep: u64 = parse_or("JIFEN_EVALUATIONS_SWEEP_SECS", 30u64)?;
        anyhow::ensure!(sweep > 0, "JIFEN_EVALUATIONS_SWEEP_SECS must be positive");
        Ok(Self {
            database_url: core.database_url,
            database_name: var_or("JIFEN_EVALUATIONS_DATABASE", "jifen_evaluations")?,
            grpc_listen: parse_or(
                "JIFEN_EVALUATIONS_GRPC_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 15053)),
            )?,
            ops_listen: parse_or(
                "JIFEN_EVALUATIONS_OPS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 9103)),
            )?,
            bus: BusConfig::new(core.amqp_url)
                .with_prefix(&core.bus_prefix)
                .with_retention(core.bus_retention),
            verifier,
            code_key: decode_key("JIFEN_EVALUATIONS_CODE_KEY", &key)?,
            sweep_interval: Duration::from_secs(sweep),
            otlp_endpoint: core.otlp_endpoint,
            migrate_on_start: core.migrate_on_start,
            shutdown_drain: core.shutdown_drain,
        })
    }

    /// Settings for tests and embedding: listeners on 127.0.0.1 port 0, a one-second sweep.
    pub fn for_tests(
        database_url: impl Into<String>,
        database_name: impl Into<String>,
        bus: BusConfig,
        verifier: TokenVerifier,
        code_key: [u8; 32],
    ) -> Self {
        Self {
            database_url: database_url.into(),
            database_name: database_name.into(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bus,
            verifier,
            code_key: SecretSlice::from(code_key.to_vec()),
            sweep_interval: Duration::from_secs(1),
            otlp_endpoint: None,
            migrate_on_start: true,
            shutdown_drain: Duration::ZERO,
        }
    }
}

/// Creates the database when missing and applies every pending migration, serialized between
/// instances by an advisory lock. Returns a connection pool.
pub async fn migrate(
    database_url: &str,
    database_name: &str,
) -> anyhow::Result<DatabaseConnection> {
    jifen_platform::db::connect_and_migrate::<EvaluationsMigrator>(
        database_url,
        database_name,
        POOL_SIZE,
        store::STARTUP_LOCK_KEY,
    )
    .await
    .with_context(|| format!("creating, connecting to or migrating database {database_name}"))
}

/// The service's consumers, each with its name (the queue's, also the name of its task): the
/// members replica, the published standards (one handler keeps both replicas) and the final
/// grades. Built here only, so the queues declared at build are the ones that run.
fn consumers(db: &DatabaseConnection, bus: &BusConfig) -> [(&'static str, Consumer); 3] {
    let replica: Arc<events::ReplicaHandler> = Arc::new(events::ReplicaHandler);
    [
        (
            events::MEMBERS_REPLICA,
            Consumer::new(
                db.clone(),
                bus.clone(),
                events::members_replica_spec(),
                replica.clone(),
            ),
        ),
        (
            events::STANDARDS,
            Consumer::new(db.clone(), bus.clone(), events::standards_spec(), replica),
        ),
        (
            events::FINAL_GRADES,
            Consumer::new(
                db.clone(),
                bus.clone(),
                events::final_grades_spec(),
                Arc::new(events::FinalGrades),
            ),
        ),
    ]
}

/// The pool at start-up: migrated when `settings.migrate_on_start` (`JIFEN_MIGRATE_ON_START`),
/// else checked to have no pending migration.
async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    jifen_platform::db::open::<EvaluationsMigrator>(
        &settings.database_url,
        &settings.database_name,
        POOL_SIZE,
        store::STARTUP_LOCK_KEY,
        settings.migrate_on_start,
    )
    .await
    .with_context(|| format!("opening database {}", settings.database_name))
}

/// Help texts of the service's own metric families (`promtool check metrics` wants one each).
fn describe_metrics() {
    metrics::describe_counter!(
        "evaluations_rounds_opened_total",
        "Evaluation rounds opened."
    );
    metrics::describe_counter!("evaluations_codes_issued_total", "Invitation codes issued.");
    metrics::describe_counter!(
        "evaluations_rounds_closed_total",
        "Evaluation rounds closed."
    );
    metrics::describe_counter!(
        "evaluations_codes_redeemed_total",
        "Invitation codes redeemed for a ballot."
    );
    metrics::describe_counter!("evaluations_ballots_total", "Ballots cast.");
}

/// The evaluations service, built and bound, ready to run.
pub struct Application {
    db: DatabaseConnection,
    app: usecases::Evaluations,
    verifier: TokenVerifier,
    bus: BusConfig,
    sweep_interval: Duration,
    shutdown_drain: Duration,
    grpc_listener: tokio::net::TcpListener,
    ops_listener: tokio::net::TcpListener,
    grpc_addr: SocketAddr,
    ops_addr: SocketAddr,
}

/// `jifen-evaluations republish-rounds`: stages every closed round of `year` (under `org_id`,
/// or everywhere) again in the outbox; a running evaluations service's relay publishes them.
/// Answers how many rounds were staged.
pub async fn republish_rounds(
    settings: &Settings,
    year: i32,
    org_id: Option<uuid::Uuid>,
) -> anyhow::Result<usize> {
    let hasher = crypto::CodeHasher::new(settings.code_key.expose_secret())
        .map_err(|e| anyhow::anyhow!("JIFEN_EVALUATIONS_CODE_KEY: {e}"))?;
    let db = migrate(&settings.database_url, &settings.database_name).await?;
    let staged = usecases::Evaluations::new(db.clone(), hasher)
        .republish_rounds(year, org_id)
        .await
        .map_err(|e| anyhow::anyhow!("republishing the closed rounds of {year}: {e}"))?;
    db.close().await?;
    Ok(staged)
}

impl Application {
    /// Ensures the database and its schema, declares the consumers' queues (so that events
    /// published from now on reach them) and binds both listeners.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let hasher = crypto::CodeHasher::new(settings.code_key.expose_secret())
            .map_err(|e| anyhow::anyhow!("JIFEN_EVALUATIONS_CODE_KEY: {e}"))?;
        jifen_standard::default_2026()
            .map_err(|p| anyhow::anyhow!("the shipped standard is invalid: {p:?}"))?;
        let db = open_database(&settings).await?;
        for (name, consumer) in consumers(&db, &settings.bus) {
            if let Err(e) = consumer.declare().await {
                // The consumer declares again on every connection; only events published
                // before it first connects are missed.
                tracing::warn!(consumer = name, error = %e, "cannot declare the queue yet");
            }
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
            app: usecases::Evaluations::new(db.clone(), hasher),
            verifier: settings.verifier,
            db,
            bus: settings.bus,
            sweep_interval: settings.sweep_interval,
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

    /// Serves gRPC (with health and reflection) and the ops endpoints, relays the outbox, runs
    /// the consumers (members replica, standards, final grades) and the closing sweep, until
    /// `cancel` fires; if one of them fails, the others are stopped too.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let _ = jifen_platform::ops::prometheus();
        describe_metrics();
        let api = grpc::EvaluationsApi::new(self.app.clone(), self.verifier.clone());
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
        for (name, consumer) in consumers(&self.db, &self.bus) {
            let stop = stop.clone();
            tasks.spawn(async move {
                let outcome = consumer.run(stop).await;
                (name, outcome.with_context(|| format!("{name} consumer")))
            });
        }
        tasks.spawn({
            let stop = stop.clone();
            let app = self.app.clone();
            let every = self.sweep_interval;
            async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(every) => {}
                    }
                    match app.close_due().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(closed = n, "rounds closed at their closing instant"),
                        // Transient (e.g. the database restarting): try again next time.
                        Err(e) => tracing::warn!(error = %jifen_platform::grpc::error_chain(&e), "closing sweep failed"),
                    }
                }
                ("sweep", Ok(()))
            }
        });
        tracing::info!(grpc = %self.grpc_addr, ops = %self.ops_addr, "evaluations service running");

        jifen_platform::shutdown::supervise(tasks, stop).await
    }
}
