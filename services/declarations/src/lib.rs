//! The declarations service: the yearly points standard (积分标准), members' monthly declarations
//! (月度申报) and their review by the branch (支部审核), branch-recorded points, reopened months
//! (补报), evidence files, and the reminder before each deadline.
//!
//! Wiring only; the rooms are:
//! * [`domain`]: pure values and rules (no I/O), including authorization;
//! * [`store`]: sea-orm entities and queries, the only place that speaks SQL;
//! * [`usecases`]: transactions — authorize, change, version, stage the event, audit, commit;
//! * [`grpc`]: `jifen.declarations.v1.DeclarationsService` over the use-cases;
//! * [`events`]: what the service publishes, and the replica of `members.*` it consumes.
//!
//! [`Application::build`] prepares everything (database, migrations, listeners);
//! [`Application::run_until_stopped`] serves gRPC and the ops endpoints, relays the outbox,
//! consumes `members.*` and sends the daily reminders until the cancellation token fires.

pub mod demo;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod store;
pub mod usecases;

pub use jifen_platform::clock::Clock;

use anyhow::Context as _;
use jifen_eventbus::{BusConfig, Consumer, ConsumerSpec, Relay};
use jifen_migrations::DeclarationsMigrator;
use jifen_platform::auth::TokenVerifier;
use jifen_platform::settings::{CoreSettings, parse_or, var_or};
use sea_orm::DatabaseConnection;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Name of the service (telemetry).
pub const SERVICE_NAME: &str = "jifen-declarations";

/// Connections in the service's pool.
const POOL_SIZE: u32 = 16;

/// Everything the declarations service is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// PostgreSQL server URL without a database name (`JIFEN_DATABASE_URL`).
    pub database_url: String,
    /// The service's database (`JIFEN_DECLARATIONS_DATABASE`, default `jifen_declarations`).
    pub database_name: String,
    /// gRPC listen address (`JIFEN_DECLARATIONS_GRPC_ADDR`, default `127.0.0.1:15052`).
    pub grpc_listen: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics` (`JIFEN_DECLARATIONS_OPS_ADDR`, default `127.0.0.1:9102`).
    pub ops_listen: SocketAddr,
    /// RabbitMQ and naming (`JIFEN_AMQP_URL`, `JIFEN_BUS_PREFIX`).
    pub bus: BusConfig,
    /// Verifies the forwarded JWTs (`JIFEN_JWT_KEYS_DIR`).
    pub verifier: TokenVerifier,
    /// Where evidence files are stored (`JIFEN_EVIDENCE_DIR`, default `var/evidence`).
    pub evidence_dir: PathBuf,
    /// Largest evidence file (`JIFEN_EVIDENCE_MAX_BYTES`, default 10 MiB).
    pub evidence_max_bytes: usize,
    /// How often the reminder check runs (`JIFEN_REMINDER_INTERVAL_SECS`, default 600).
    pub reminder_interval: Duration,
    /// "Now" (the system clock; tests use a manual one).
    pub clock: Clock,
    /// OTLP endpoint; tracing export is off when unset (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
    /// Apply pending migrations at start-up (`JIFEN_MIGRATE_ON_START`, default `true`).
    pub migrate_on_start: bool,
    /// Serving on, as NOT_SERVING, after SIGTERM (`JIFEN_SHUTDOWN_DRAIN_SECS`, default 5).
    pub shutdown_drain: Duration,
}

/// Default largest evidence file: 10 MiB.
pub const DEFAULT_EVIDENCE_MAX_BYTES: usize = 10 * 1024 * 1024;

impl Settings {
    /// Reads the environment (DESIGN.md §7). Fails without JWT keys.
    pub fn from_env() -> anyhow::Result<Self> {
        let core = CoreSettings::from_env()?;
        let verifier = TokenVerifier::from_dir(std::path::Path::new(&core.jwt_keys_dir))
            .with_context(|| format!("loading JWT public keys from {}", core.jwt_keys_dir))?;
        let evidence_max_bytes: usize =
            parse_or("JIFEN_EVIDENCE_MAX_BYTES", DEFAULT_EVIDENCE_MAX_BYTES)?;
        anyhow::ensure!(
            (1..=24 * 1024 * 1024).contains(&evidence_max_bytes),
            "JIFEN_EVIDENCE_MAX_BYTES must be from 1 to 25165824"
        );
        Ok(Self {
            database_url: core.database_url,
            database_name: var_or("JIFEN_DECLARATIONS_DATABASE", "jifen_declarations")?,
            grpc_listen: parse_or(
                "JIFEN_DECLARATIONS_GRPC_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 15052)),
            )?,
            ops_listen: parse_or(
                "JIFEN_DECLARATIONS_OPS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 9102)),
            )?,
            bus: BusConfig::new(core.amqp_url)
                .with_prefix(&core.bus_prefix)
                .with_retention(core.bus_retention),
            verifier,
            evidence_dir: PathBuf::from(var_or("JIFEN_EVIDENCE_DIR", "var/evidence")?),
            evidence_max_bytes,
            reminder_interval: Duration::from_secs(
                parse_or("JIFEN_REMINDER_INTERVAL_SECS", 600u64)?.max(1),
            ),
            clock: Clock::system(),
            otlp_endpoint: core.otlp_endpoint,
            migrate_on_start: core.migrate_on_start,
            shutdown_drain: core.shutdown_drain,
        })
    }

    /// Settings for tests and embedding: the given servers, keys and evidence directory,
    /// listeners on 127.0.0.1 port 0, the system clock (replace `clock` for a manual one).
    pub fn for_tests(
        database_url: impl Into<String>,
        database_name: impl Into<String>,
        bus: BusConfig,
        verifier: TokenVerifier,
        evidence_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            database_url: database_url.into(),
            database_name: database_name.into(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bus,
            verifier,
            evidence_dir: evidence_dir.into(),
            evidence_max_bytes: DEFAULT_EVIDENCE_MAX_BYTES,
            reminder_interval: Duration::from_secs(600),
            clock: Clock::system(),
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
    jifen_platform::db::connect_and_migrate::<DeclarationsMigrator>(
        database_url,
        database_name,
        POOL_SIZE,
        store::STARTUP_LOCK_KEY,
    )
    .await
    .with_context(|| format!("creating, connecting to or migrating database {database_name}"))
}

/// The consumer spec of the members replica.
pub fn replica_spec() -> ConsumerSpec {
    ConsumerSpec {
        name: events::MEMBERS_REPLICA.to_owned(),
        bindings: vec!["members.#".to_owned()],
    }
}

/// The consumer spec of final grades.
pub fn final_grades_spec() -> ConsumerSpec {
    ConsumerSpec {
        name: events::FINAL_GRADES.to_owned(),
        bindings: vec![events::MEMBER_GRADE_FINALIZED.to_owned()],
    }
}

/// The service's consumers, each with the name of its task: the members replica and the final
/// grades.
fn consumers(db: &DatabaseConnection, bus: &BusConfig) -> [(&'static str, Consumer); 2] {
    [
        (
            "members replica",
            Consumer::new(
                db.clone(),
                bus.clone(),
                replica_spec(),
                Arc::new(events::MembersReplica),
            ),
        ),
        (
            "final grades",
            Consumer::new(
                db.clone(),
                bus.clone(),
                final_grades_spec(),
                Arc::new(events::FinalGrades),
            ),
        ),
    ]
}

/// The pool at start-up: migrated when `settings.migrate_on_start` (`JIFEN_MIGRATE_ON_START`),
/// else checked to have no pending migration.
async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    jifen_platform::db::open::<DeclarationsMigrator>(
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
        "jifen_declarations_submitted_total",
        "Monthly declarations submitted."
    );
    metrics::describe_counter!(
        "jifen_declarations_reviewed_total",
        "Declarations reviewed, by decision."
    );
    metrics::describe_counter!(
        "jifen_branch_records_total",
        "Branch-recorded entries written."
    );
}

/// The declarations service, built and bound, ready to run.
pub struct Application {
    db: DatabaseConnection,
    app: usecases::Declarations,
    verifier: TokenVerifier,
    bus: BusConfig,
    reminder_interval: Duration,
    shutdown_drain: Duration,
    grpc_listener: tokio::net::TcpListener,
    ops_listener: tokio::net::TcpListener,
    grpc_addr: SocketAddr,
    ops_addr: SocketAddr,
}

impl Application {
    /// Ensures the database and its schema, the evidence directory and the consumers' queues, and
    /// binds both listeners.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = open_database(&settings).await?;
        tokio::fs::create_dir_all(&settings.evidence_dir)
            .await
            .with_context(|| {
                format!(
                    "creating the evidence directory {}",
                    settings.evidence_dir.display()
                )
            })?;
        let app = usecases::Declarations::new(
            db.clone(),
            settings.clock.clone(),
            usecases::EvidenceStore {
                dir: settings.evidence_dir.clone(),
                max_bytes: settings.evidence_max_bytes,
            },
        );
        // Bind the consumers' queues now, so no event published from here on is missed, even
        // before the consumers connect.
        for (name, consumer) in consumers(&db, &settings.bus) {
            consumer
                .declare()
                .await
                .with_context(|| format!("declaring the {name} queue"))?;
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
            db,
            app,
            verifier: settings.verifier,
            bus: settings.bus,
            reminder_interval: settings.reminder_interval,
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

    /// The use-cases (for the `remind` command and tests).
    pub fn usecases(&self) -> &usecases::Declarations {
        &self.app
    }

    /// Serves gRPC and ops, relays the outbox, consumes `members.*` and final grades, and runs
    /// the reminder check, until `cancel` fires; if one of them fails, the others are stopped
    /// too.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let _ = jifen_platform::ops::prometheus();
        describe_metrics();
        let server = jifen_platform::grpc::GrpcServer::new()?
            .add_service(
                grpc::DeclarationsApi::new(self.app.clone(), self.verifier.clone()).into_service(),
            )
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
            let every = self.reminder_interval;
            async move {
                loop {
                    if let Err(e) = app.send_reminders().await {
                        tracing::warn!(error = %jifen_platform::grpc::error_chain(&e), "reminder check failed; retrying later");
                    }
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(every) => {}
                    }
                }
                ("reminders", Ok(()))
            }
        });
        tracing::info!(grpc = %self.grpc_addr, ops = %self.ops_addr, "declarations service running");

        jifen_platform::shutdown::supervise(tasks, stop).await
    }
}
