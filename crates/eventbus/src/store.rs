//! The only module that speaks SQL: the `outbox` and `inbox` tables (see [`crate::migration`]).
//!
//! Invariants:
//! * an outbox row is claimed with `FOR UPDATE SKIP LOCKED` inside the caller's transaction, so
//!   concurrent relays never publish the same row at the same time and a claim dies with its
//!   transaction (a crashed relay releases its rows);
//! * a row is marked published only by [`mark_published`], which the relay calls only for rows
//!   the broker confirmed;
//! * an inbox row is inserted with `ON CONFLICT DO NOTHING`; "inserted" means "first time" (for a
//!   batch, the ids `RETURNING` gives back).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use uuid::Uuid;

/// One row of `outbox`, as staged and as claimed.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    pub id: Uuid,
    pub routing_key: String,
    pub subject: String,
    pub source: String,
    pub payload: Vec<u8>,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The arguments of `outbox_stage(...)` for `row` (its `created_at` is the database's `now()`).
pub(crate) fn stage_arguments(row: &OutboxRow) -> [Value; 7] {
    [
        row.id.into(),
        row.routing_key.clone().into(),
        row.subject.clone().into(),
        row.source.clone().into(),
        row.payload.clone().into(),
        row.traceparent.clone().into(),
        row.tracestate.clone().into(),
    ]
}

/// Inserts a new outbox row and signals the relay (`outbox_stage`), in one round trip; inside a
/// transaction PostgreSQL delivers the notification at commit.
pub(crate) async fn insert_outbox(
    conn: &impl ConnectionTrait,
    row: &OutboxRow,
) -> Result<(), sea_orm::DbErr> {
    conn.execute_raw(stmt(
        "SELECT outbox_stage($1, $2, $3, $4, $5, $6, $7)",
        stage_arguments(row),
    ))
    .await?;
    Ok(())
}

/// Locks and returns up to `limit` unpublished rows, oldest id first, skipping rows another
/// transaction holds. Must run inside a transaction that later marks and commits.
pub(crate) async fn claim_batch(
    conn: &impl ConnectionTrait,
    limit: u32,
) -> Result<Vec<OutboxRow>, sea_orm::DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT id, routing_key, subject, source, payload, traceparent, tracestate, created_at \
             FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            [i64::from(limit).into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxRow {
                id: r.try_get("", "id")?,
                routing_key: r.try_get("", "routing_key")?,
                subject: r.try_get("", "subject")?,
                source: r.try_get("", "source")?,
                payload: r.try_get("", "payload")?,
                traceparent: r.try_get("", "traceparent")?,
                tracestate: r.try_get("", "tracestate")?,
                created_at: r.try_get("", "created_at")?,
            })
        })
        .collect()
}

/// Marks the given rows published now. Returns how many rows changed.
pub(crate) async fn mark_published(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<u64, sea_orm::DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "UPDATE outbox SET published_at = now() WHERE published_at IS NULL AND id IN ({})",
        placeholders.join(", ")
    );
    let result = conn
        .execute_raw(stmt(&sql, ids.iter().map(|id| Value::from(*id))))
        .await?;
    Ok(result.rows_affected())
}

/// Records that `consumer` processed `event_id`. Returns `false` when it already had.
pub(crate) async fn insert_inbox(
    conn: &impl ConnectionTrait,
    consumer: &str,
    event_id: Uuid,
) -> Result<bool, sea_orm::DbErr> {
    let result = conn
        .execute_raw(stmt(
            "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [consumer.into(), event_id.into()],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Records that `consumer` processed each of `event_ids`, in one statement, and returns the ids
/// recorded now (the others it had processed already). An id given twice is recorded once.
pub(crate) async fn insert_inbox_batch(
    conn: &impl ConnectionTrait,
    consumer: &str,
    event_ids: &[Uuid],
) -> Result<HashSet<Uuid>, sea_orm::DbErr> {
    if event_ids.is_empty() {
        return Ok(HashSet::new());
    }
    // One text parameter of comma-separated ids keeps the statement the same for every batch
    // size (one prepared statement), without an array type in sea-orm's features.
    let ids = event_ids
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let rows = conn
        .query_all_raw(stmt(
            "INSERT INTO inbox (consumer, event_id) \
             SELECT DISTINCT $1::text, id::uuid FROM unnest(string_to_array($2::text, ',')) AS id \
             ON CONFLICT DO NOTHING RETURNING event_id",
            [consumer.into(), ids.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get::<Uuid>("", "event_id"))
        .collect()
}

/// How many outbox rows are unpublished, and the age in seconds of the oldest (0 when none): one
/// query over the partial index of unpublished rows.
pub(crate) async fn outbox_backlog(db: &impl ConnectionTrait) -> Result<(i64, f64), DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*)::int8 AS backlog, \
                    COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest \
             FROM outbox WHERE published_at IS NULL",
        ))
        .await?;
    match row {
        Some(row) => Ok((row.try_get("", "backlog")?, row.try_get("", "oldest")?)),
        None => Ok((0, 0.0)),
    }
}

/// Rows deleted per statement by the retention sweep: short transactions, few locks.
const PRUNE_CHUNK: i64 = 5_000;

/// Deletes published outbox rows and inbox rows older than `older_than`, a chunk per statement
/// (each its own implicit transaction); answers (outbox rows, inbox rows) deleted. Unpublished
/// outbox rows are never touched: the relay still owes them to the broker.
pub(crate) async fn prune(
    db: &impl ConnectionTrait,
    older_than: std::time::Duration,
) -> Result<(u64, u64), DbErr> {
    let seconds = i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX);
    let mut deleted = [0u64; 2];
    for (at, sql) in [
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE published_at IS NOT NULL \
         AND published_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)",
        "DELETE FROM inbox WHERE ctid IN (SELECT ctid FROM inbox \
         WHERE processed_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)",
    ]
    .into_iter()
    .enumerate()
    {
        loop {
            let done = db
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [(seconds as f64).into(), PRUNE_CHUNK.into()],
                ))
                .await?
                .rows_affected();
            deleted[at] += done;
            if done < PRUNE_CHUNK as u64 {
                break;
            }
        }
    }
    Ok((deleted[0], deleted[1]))
}
