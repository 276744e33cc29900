//! One PostgreSQL database per service (`jifen_members`, …) on a shared server. A service
//! creates its database when missing, connects with a bounded pool and runs its migrator.

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use sea_orm_migration::MigratorTrait;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::net::IpAddr;
use std::time::Duration;

/// `server_url` + `/` + `name`.
pub fn database_url(server_url: &str, name: &str) -> String {
    format!("{}/{name}", server_url.trim_end_matches('/'))
}

/// Creates database `name` on the server unless it exists. Safe under concurrent start-ups.
pub async fn ensure_database(server_url: &str, name: &str) -> Result<(), sea_orm::DbErr> {
    check_name(name)?;
    let admin = Database::connect(database_url(server_url, "postgres")).await?;
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await?
        .is_some();
    if !exists {
        let created = admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await;
        match created {
            Ok(_) => tracing::info!(database = name, "created database"),
            // 42P04 duplicate_database: another instance created it first.
            Err(e) if e.to_string().contains("already exists") => {}
            Err(e) => return Err(e),
        }
    }
    admin.close().await?;
    Ok(())
}

fn check_name(name: &str) -> Result<(), sea_orm::DbErr> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(sea_orm::DbErr::Custom(format!(
            "invalid database name {name:?}"
        )));
    }
    Ok(())
}

/// Connects to `database_url` with a pool of at most `max_connections`.
pub async fn connect(
    database_url: &str,
    max_connections: u32,
) -> Result<DatabaseConnection, sea_orm::DbErr> {
    connect_with(database_url, max_connections, &[]).await
}

/// [`connect`], with extra server settings for every connection of the pool (e.g. the demo
/// seeding's `synchronous_commit = off`, docs/decisions/0014-demo-history.md).
pub async fn connect_with(
    database_url: &str,
    max_connections: u32,
    settings: &[(&str, &str)],
) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options: Vec<(String, String)> = vec![("jit".into(), "off".into())];
    options.extend(
        settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut opts = ConnectOptions::new(database_url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // JIT compilation costs hundreds of milliseconds on a misestimated query and buys
        // nothing on the short statements of a service: off for every connection.
        .map_sqlx_postgres_opts(move |o| without_loopback_tls(o.options(options.clone())));
    Database::connect(opts).await
}

/// Turns `sslmode=prefer` (sqlx's default) into `disable` for a server on this host; any other
/// mode, and any other host, is left as configured.
///
/// Encryption over the loopback protects nothing and costs CPU on both sides. Worse, sqlx 0.9.0
/// leaves Nagle's algorithm on (launchbadge/sqlx#4335, fixed upstream after 0.9.0): a statement
/// of more than about 8 KB goes out as several TLS records, and the last waits for the server's
/// delayed ACK, 40 ms. The year-end batch, whose writes are array statements of that size, took
/// 1.30–1.34 s for 30,000 members over TLS and 0.73–0.80 s without (docs/benchmarks.md).
fn without_loopback_tls(o: PgConnectOptions) -> PgConnectOptions {
    // An IPv6 host keeps the brackets of its URL.
    let host = o.get_host().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback && matches!(o.get_ssl_mode(), PgSslMode::Prefer) {
        o.ssl_mode(PgSslMode::Disable)
    } else {
        o
    }
}

/// Creates the database if needed, connects with a pool of `max_connections` and applies every
/// pending migration of `M` in one transaction holding the advisory lock `lock_key`, so that
/// instances starting together migrate one at a time.
pub async fn connect_and_migrate<M: MigratorTrait>(
    server_url: &str,
    name: &str,
    max_connections: u32,
    lock_key: i64,
) -> Result<DatabaseConnection, sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
    ensure_database(server_url, name).await?;
    let db = connect(&database_url(server_url, name), max_connections).await?;
    let txn = db.begin().await?;
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [lock_key.into()],
    ))
    .await?;
    M::up(&txn, None).await?;
    txn.commit().await?;
    Ok(db)
}

/// The pool of a service at start-up: with `migrate_on_start` ([`crate::settings::CoreSettings`],
/// `JIFEN_MIGRATE_ON_START`) it is [`connect_and_migrate`]; without, it connects to the existing
/// database and fails when a migration of `M` is pending (run `jifen-<service> migrate` first),
/// so a service never runs against a schema older than its code.
pub async fn open<M: MigratorTrait>(
    server_url: &str,
    name: &str,
    max_connections: u32,
    lock_key: i64,
    migrate_on_start: bool,
) -> Result<DatabaseConnection, sea_orm::DbErr> {
    if migrate_on_start {
        return connect_and_migrate::<M>(server_url, name, max_connections, lock_key).await;
    }
    check_name(name)?;
    let db = connect(&database_url(server_url, name), max_connections).await?;
    let pending = M::get_pending_migrations_read_only(&db).await?;
    if !pending.is_empty() {
        let names: Vec<String> = pending.iter().map(|m| m.name().to_owned()).collect();
        db.close().await?;
        return Err(sea_orm::DbErr::Custom(format!(
            "{} migration(s) pending in database {name} ({}) and JIFEN_MIGRATE_ON_START=false: run the service's `migrate` command first",
            names.len(),
            names.join(", ")
        )));
    }
    tracing::info!(
        database = name,
        "schema up to date; migrations left to the migrate job"
    );
    Ok(db)
}

/// Describes the pool gauges (help texts for `/metrics`).
fn describe_pool() {
    metrics::describe_gauge!(
        "jifen_db_pool_connections",
        "Connections of the service's PostgreSQL pool, by state (idle, in_use)."
    );
    metrics::describe_gauge!(
        "jifen_db_pool_max_connections",
        "Largest number of connections the service's PostgreSQL pool may open."
    );
}

/// Samples the pool of `db` into `jifen_db_pool_connections{service,state}` and
/// `jifen_db_pool_max_connections{service}` at once and then every `every`, until `stop`.
pub async fn sample_pool(
    db: &DatabaseConnection,
    service: &'static str,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    describe_pool();
    let pool = db.get_postgres_connection_pool();
    loop {
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        metrics::gauge!("jifen_db_pool_connections", "service" => service, "state" => "idle")
            .set(f64::from(idle));
        metrics::gauge!("jifen_db_pool_connections", "service" => service, "state" => "in_use")
            .set(f64::from(size - idle));
        metrics::gauge!("jifen_db_pool_max_connections", "service" => service)
            .set(f64::from(pool.options().get_max_connections()));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// `SELECT 1`, for readiness.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    #[test]
    fn tls_is_dropped_only_where_it_was_merely_preferred_on_this_host() -> Result<(), sqlx::Error> {
        for (url, expected) in [
            ("postgres://u@127.0.0.1:5432/d", "Disable"),
            ("postgres://u@localhost/d", "Disable"),
            ("postgres://u@[::1]:5432/d", "Disable"),
            ("postgres://u@127.0.0.1/d?sslmode=require", "Require"),
            ("postgres://u@db.example.org/d", "Prefer"),
            ("postgres://u@10.0.0.5/d?sslmode=verify-full", "VerifyFull"),
        ] {
            let options: PgConnectOptions = url.parse()?;
            let mode = without_loopback_tls(options).get_ssl_mode();
            assert_eq!(format!("{mode:?}"), expected, "{url}");
        }
        Ok(())
    }
}
