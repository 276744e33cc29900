//! The members service: the organization tree (党委/党总支/党支部/党小组), party members, their
//! transfers (组织关系转接) and sanctions (党纪处分), and the accounts people log in with.
//!
//! Wiring only; the rooms are:
//! * [`domain`]: pure values and rules (no I/O), including authorization;
//! * [`store`]: sea-orm entities and queries, the only place that speaks SQL;
//! * [`usecases`]: transactions — authorize, change, stage the event, audit, commit;
//! * [`grpc`]: `jifen.members.v1.MembersService` over the use-cases;
//! * [`events`]: what the service publishes (through the transactional outbox);
//! * [`crypto`]: encryption and keyed hashing of personal data, password hashing.
//!
//! [`Application::build`] prepares everything (database, migrations, bootstrap, listeners);
//! [`Application::run_until_stopped`] serves gRPC and the ops endpoints and relays the outbox
//! until the cancellation token fires.

pub mod convert;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod store;
pub mod usecases;

use anyhow::Context as _;
use base64::Engine as _;
use jifen_eventbus::{BusConfig, Relay};
use jifen_migrations::MembersMigrator;
use jifen_platform::auth::TokenVerifier;
use jifen_platform::settings::{CoreSettings, parse_or, var_opt, var_or};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Name of the service (telemetry, event source).
pub const SERVICE_NAME: &str = "jifen-members";

/// Connections in the service's pool.
const POOL_SIZE: u32 = 10;

/// Everything the members service is configured with.
#[derive(Clone)]
pub struct Settings {
    /// PostgreSQL server URL without a database name (`JIFEN_DATABASE_URL`).
    pub database_url: String,
    /// The service's database (`JIFEN_MEMBERS_DATABASE`, default `jifen_members`).
    pub database_name: String,
    /// gRPC listen address (`JIFEN_MEMBERS_GRPC_ADDR`, default `127.0.0.1:15051`; port 0 picks one).
    pub grpc_listen: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics` (`JIFEN_MEMBERS_OPS_ADDR`, default `127.0.0.1:9101`).
    pub ops_listen: SocketAddr,
    /// RabbitMQ and naming (`JIFEN_AMQP_URL`, `JIFEN_BUS_PREFIX`).
    pub bus: BusConfig,
    /// Verifies the forwarded JWTs (`JIFEN_JWT_KEYS_DIR`, every `*.pub.pem`).
    pub verifier: TokenVerifier,
    /// 32-byte master key of personal data encryption (`JIFEN_PII_KEY`, base64; required).
    pub pii_key: SecretSlice<u8>,
    /// Earlier master keys (`JIFEN_PII_PREVIOUS_KEYS`, comma-separated): they still decrypt and
    /// still count for the uniqueness of ID cards, until `rekey-pii` has rewritten every value
    /// under `pii_key`.
    pub pii_previous_keys: Vec<SecretSlice<u8>>,
    /// Name of the root organization created at first start (`JIFEN_ROOT_ORG_NAME`).
    pub root_org_name: String,
    /// Password of the bootstrap `admin` account (`JIFEN_BOOTSTRAP_ADMIN_PASSWORD`).
    pub bootstrap_admin_password: SecretString,
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
            .field("root_org_name", &self.root_org_name)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("shutdown_drain", &self.shutdown_drain)
            .finish_non_exhaustive()
    }
}

/// Default name of the root organization.
pub const DEFAULT_ROOT_ORG_NAME: &str = "市直机关工委";
/// Development default of the bootstrap admin password (printed by `make run`).
pub const DEFAULT_BOOTSTRAP_ADMIN_PASSWORD: &str = "jifen-admin";

/// Decodes a PII master key (`JIFEN_PII_KEY`, each of `JIFEN_PII_PREVIOUS_KEYS`): base64
/// (standard or URL-safe) of exactly 32 bytes.
pub fn decode_pii_key(text: &str) -> anyhow::Result<SecretSlice<u8>> {
    let text = text.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
        .context("not base64")?;
    anyhow::ensure!(
        bytes.len() == 32,
        "must decode to 32 bytes, got {}",
        bytes.len()
    );
    Ok(SecretSlice::from(bytes))
}

impl Settings {
    /// The personal-data keys: the current one and the previous ones.
    pub fn pii(&self) -> anyhow::Result<crypto::Pii> {
        crypto::Pii::with_previous(
            self.pii_key.expose_secret(),
            self.pii_previous_keys.iter().map(|k| k.expose_secret()),
        )
        .context("JIFEN_PII_KEY / JIFEN_PII_PREVIOUS_KEYS")
    }

    /// Reads the environment (DESIGN.md §7). Fails without `JIFEN_PII_KEY` or without JWT keys.
    pub fn from_env() -> anyhow::Result<Self> {
        let core = CoreSettings::from_env()?;
        let pii = var_opt("JIFEN_PII_KEY")?.context(
            "JIFEN_PII_KEY is required: base64 of a 32-byte key (e.g. `openssl rand -base64 32`); there is no default",
        )?;
        let verifier = TokenVerifier::from_dir(std::path::Path::new(&core.jwt_keys_dir))
            .with_context(|| format!("loading JWT public keys from {}", core.jwt_keys_dir))?;
        Ok(Self {
            database_url: core.database_url,
            database_name: var_or("JIFEN_MEMBERS_DATABASE", "jifen_members")?,
            grpc_listen: parse_or(
                "JIFEN_MEMBERS_GRPC_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 15051)),
            )?,
            ops_listen: parse_or(
                "JIFEN_MEMBERS_OPS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 9101)),
            )?,
            bus: BusConfig::new(core.amqp_url)
                .with_prefix(&core.bus_prefix)
                .with_retention(core.bus_retention),
            verifier,
            pii_key: decode_pii_key(&pii).context("JIFEN_PII_KEY")?,
            pii_previous_keys: var_opt("JIFEN_PII_PREVIOUS_KEYS")?
                .map(|list| {
                    list.split(',')
                        .filter(|k| !k.trim().is_empty())
                        .map(decode_pii_key)
                        .collect::<anyhow::Result<Vec<_>>>()
                })
                .transpose()
                .context("JIFEN_PII_PREVIOUS_KEYS")?
                .unwrap_or_default(),
            root_org_name: var_or("JIFEN_ROOT_ORG_NAME", DEFAULT_ROOT_ORG_NAME)?,
            bootstrap_admin_password: SecretString::from(var_or(
                "JIFEN_BOOTSTRAP_ADMIN_PASSWORD",
                DEFAULT_BOOTSTRAP_ADMIN_PASSWORD,
            )?),
            otlp_endpoint: core.otlp_endpoint,
            migrate_on_start: core.migrate_on_start,
            shutdown_drain: core.shutdown_drain,
        })
    }

    /// Settings for tests and embedding: the given servers and keys, listeners on
    /// 127.0.0.1 port 0, the default root name and bootstrap password.
    pub fn for_tests(
        database_url: impl Into<String>,
        database_name: impl Into<String>,
        bus: BusConfig,
        verifier: TokenVerifier,
        pii_key: [u8; 32],
    ) -> Self {
        Self {
            database_url: database_url.into(),
            database_name: database_name.into(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bus,
            verifier,
            pii_key: SecretSlice::from(pii_key.to_vec()),
            pii_previous_keys: Vec::new(),
            root_org_name: DEFAULT_ROOT_ORG_NAME.to_owned(),
            bootstrap_admin_password: SecretString::from(DEFAULT_BOOTSTRAP_ADMIN_PASSWORD),
            otlp_endpoint: None,
            migrate_on_start: true,
            shutdown_drain: Duration::ZERO,
        }
    }
}

/// Creates the database when missing and applies every pending migration, serialized between
/// instances by an advisory lock (safe for concurrent starts). Returns a connection pool.
pub async fn migrate(
    database_url: &str,
    database_name: &str,
) -> anyhow::Result<DatabaseConnection> {
    jifen_platform::db::connect_and_migrate::<MembersMigrator>(
        database_url,
        database_name,
        POOL_SIZE,
        store::STARTUP_LOCK_KEY,
    )
    .await
    .with_context(|| format!("creating, connecting to or migrating database {database_name}"))
}

/// Rewrites every phone and ID card stored under a previous key under the current one
/// (`jifen-members rekey-pii`), `batch` members per transaction.
pub async fn rekey_pii(settings: &Settings, batch: u64) -> anyhow::Result<usecases::RekeySummary> {
    let pii = settings.pii()?;
    let db = migrate(&settings.database_url, &settings.database_name).await?;
    let app = usecases::Members::new(db, pii).await?;
    let summary = app.rekey_pii(batch).await?;
    app.db().clone().close().await?;
    Ok(summary)
}

/// The pool at start-up: migrated when `settings.migrate_on_start` (`JIFEN_MIGRATE_ON_START`),
/// else checked to have no pending migration.
async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    jifen_platform::db::open::<MembersMigrator>(
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
        "jifen_members_created_total",
        "Members created, by way (api, import)."
    );
    metrics::describe_counter!("jifen_members_updated_total", "Member updates applied.");
    metrics::describe_counter!(
        "jifen_members_transfers_total",
        "Member transfers (组织关系转接) recorded."
    );
    metrics::describe_counter!(
        "jifen_members_sanctions_total",
        "Party sanctions recorded, by kind."
    );
    metrics::describe_counter!(
        "jifen_members_authentications_total",
        "Password authentications, by outcome."
    );
    metrics::describe_counter!(
        "jifen_members_imports_total",
        "Member imports, by outcome (imported, rejected)."
    );
    metrics::describe_counter!(
        "jifen_members_organizations_created_total",
        "Organizations created."
    );
}

/// The members service, built and bound, ready to run.
pub struct Application {
    db: DatabaseConnection,
    api: grpc::MembersApi,
    bus: BusConfig,
    shutdown_drain: Duration,
    grpc_listener: tokio::net::TcpListener,
    ops_listener: tokio::net::TcpListener,
    grpc_addr: SocketAddr,
    ops_addr: SocketAddr,
}

impl Application {
    /// Ensures the database and its schema, bootstraps the root organization and the admin
    /// account (idempotent), and binds both listeners.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pii = settings.pii()?;
        let root_name = domain::OrgName::parse(&settings.root_org_name)
            .map_err(|e| anyhow::anyhow!("JIFEN_ROOT_ORG_NAME {e}"))?;
        anyhow::ensure!(
            domain::Password::parse(settings.bootstrap_admin_password.expose_secret()).is_ok(),
            "JIFEN_BOOTSTRAP_ADMIN_PASSWORD must be at least {} characters",
            domain::Password::MIN
        );
        let db = open_database(&settings).await?;
        let app = usecases::Members::new(db.clone(), pii).await?;
        let root = app
            .bootstrap(
                &root_name,
                settings.bootstrap_admin_password.expose_secret(),
            )
            .await
            .context("bootstrapping the root organization and the admin account")?;
        tracing::info!(root_org_id = %root.id, "members service bootstrapped");
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
            api: grpc::MembersApi::new(app, settings.verifier),
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

    /// Serves gRPC (with health and reflection) and the ops endpoints, and relays the outbox,
    /// until `cancel` fires; if one of them fails, the others are stopped too.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let _ = jifen_platform::ops::prometheus();
        describe_metrics();
        let server = jifen_platform::grpc::GrpcServer::new()?
            .add_service(self.api.into_service())
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
        tracing::info!(grpc = %self.grpc_addr, ops = %self.ops_addr, "members service running");

        jifen_platform::shutdown::supervise(tasks, stop).await
    }
}
