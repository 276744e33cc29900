//! The demo seed's marker (`demo_seed`): per seed version, the ids the seed created (a JSON
//! document the seed owns) and whether it is complete. Only `jifen-members seed-demo` uses it.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// The marker of `version`: its state (JSON text) and whether the seed completed.
pub async fn load(
    conn: &impl ConnectionTrait,
    version: &str,
) -> Result<Option<(String, bool)>, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT state::text AS state, complete FROM demo_seed WHERE version = $1",
            [version.into()],
        ))
        .await?;
    match row {
        Some(row) => Ok(Some((
            row.try_get("", "state")?,
            row.try_get("", "complete")?,
        ))),
        None => Ok(None),
    }
}

/// Records the state of `version` (created or replaced).
pub async fn save(
    conn: &impl ConnectionTrait,
    version: &str,
    state: &str,
    complete: bool,
) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO demo_seed (version, state, complete) VALUES ($1, $2::jsonb, $3) \
         ON CONFLICT (version) DO UPDATE SET state = EXCLUDED.state, \
             complete = EXCLUDED.complete, updated_at = now()",
        [version.into(), state.into(), complete.into()],
    ))
    .await?;
    Ok(())
}

/// Whether the demo seed changed this database before it kept a marker: the earlier seed found
/// its city by names and wrote audit rows as `system:seed-demo`, an actor no token can carry.
pub async fn seeded_before_marker(conn: &impl ConnectionTrait) -> Result<bool, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT 1 FROM audit_log WHERE actor = 'system:seed-demo') AS seeded",
        ))
        .await?;
    match row {
        Some(row) => row.try_get("", "seeded"),
        None => Ok(false),
    }
}
