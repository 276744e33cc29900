//! A seeding step's own marker (the `demo_seed` table every service database has): per version,
//! a JSON state the step owns and whether it is complete. A complete marker means "nothing to
//! do"; an incomplete one is where an interrupted run carries on. Also the seeding's connection
//! pool and the wait for another service's events.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::time::{Duration, Instant};

/// The marker of `version`: its state and whether the step completed.
pub async fn load(
    conn: &impl ConnectionTrait,
    version: &str,
) -> Result<Option<(serde_json::Value, bool)>, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT state::text AS state, complete FROM demo_seed WHERE version = $1",
            [version.into()],
        ))
        .await?;
    match row {
        Some(row) => {
            let text: String = row.try_get("", "state")?;
            let state = serde_json::from_str(&text)
                .map_err(|e| DbErr::Custom(format!("demo marker {version}: {e}")))?;
            Ok(Some((state, row.try_get("", "complete")?)))
        }
        None => Ok(None),
    }
}

/// Records the state of `version` (created or replaced).
pub async fn save(
    conn: &impl ConnectionTrait,
    version: &str,
    state: &serde_json::Value,
    complete: bool,
) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO demo_seed (version, state, complete) VALUES ($1, $2::jsonb, $3) \
         ON CONFLICT (version) DO UPDATE SET state = EXCLUDED.state, \
             complete = EXCLUDED.complete, updated_at = now()",
        [version.into(), state.to_string().into(), complete.into()],
    ))
    .await?;
    Ok(())
}

/// The seeding's pool on a service's database: `synchronous_commit = off` (a demo city: a crash
/// loses at most the last commits, which the markers and the use cases' own state checks redo).
pub async fn connect(database_url: &str, connections: u32) -> Result<DatabaseConnection, DbErr> {
    jifen_platform::db::connect_with(database_url, connections, &[("synchronous_commit", "off")])
        .await
}

/// Polls `probe` every 200 ms until it answers `Some`, or fails after `timeout` naming `what`
/// and the last progress the probe reported.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Result<T, String>>>,
{
    let started = Instant::now();
    loop {
        match probe().await? {
            Ok(done) => return Ok(done),
            Err(progress) if started.elapsed() >= timeout => {
                anyhow::bail!(
                    "gave up waiting after {}s for {what} ({progress}); are the services and RabbitMQ running?",
                    timeout.as_secs()
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
