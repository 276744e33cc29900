//! Test helpers shared by every crate's integration tests.
//!
//! Tests run against the **real** local PostgreSQL, RabbitMQ and Redis (started by
//! `scripts/dev-services.sh`). Isolation comes from names, never from fakes: every test gets its
//! own database and its own exchange/queue/key prefix, so tests run in parallel.

pub mod process;
pub mod proxy;

use anyhow::Context as _;
use sqlx::Connection as _;

/// PostgreSQL server URL without a database name (`JIFEN_DATABASE_URL`, or the local default).
pub fn database_server_url() -> String {
    std::env::var("JIFEN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// RabbitMQ URL (`JIFEN_AMQP_URL`, or the local default).
pub fn amqp_url() -> String {
    std::env::var("JIFEN_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Redis URL (`JIFEN_REDIS_URL`, or the local default).
pub fn redis_url() -> String {
    std::env::var("JIFEN_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A short unique token for names: exchanges, queues, Redis keys.
pub fn unique_prefix(label: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    // The random tail of a v7 id is what makes it unique among tests started in one millisecond.
    format!("t-{label}-{}", &id[20..])
}

/// A database created for one test. Every name starts with `jifen_test_` so that
/// `scripts/dev-services.sh clean-test-dbs` can drop leftovers of earlier runs.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    /// URL of the database itself.
    pub url: String,
    /// URL of the server (no database), as services take it in `JIFEN_DATABASE_URL`.
    pub server_url: String,
}

/// Creates an empty database with a unique name on the local server.
pub async fn fresh_database(label: &str) -> anyhow::Result<TestDatabase> {
    let server_url = database_server_url();
    let id = uuid::Uuid::now_v7().simple().to_string();
    let name = format!("jifen_test_{label}_{}", &id[16..]);
    let mut conn = sqlx::PgConnection::connect(&format!("{server_url}/postgres"))
        .await
        .context("connecting to the local PostgreSQL (run scripts/dev-services.sh)")?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating database {name}"))?;
    Ok(TestDatabase {
        url: format!("{server_url}/{name}"),
        name,
        server_url,
    })
}
