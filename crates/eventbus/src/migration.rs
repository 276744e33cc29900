//! The `outbox` and `inbox` tables, as a sea-orm-migration migration.
//!
//! Every service's migrator lists [`Migration`] so each service database has both tables: a
//! service that only publishes leaves `inbox` empty, one that only consumes leaves `outbox` empty.
//! Invariant: an unpublished outbox row is one with `published_at IS NULL`; the partial index
//! keeps the relay's claim query cheap however many published rows accumulate.
//!
//! [`StageFunction`] adds `outbox_stage(...)`, the one statement that stages an event (insert and
//! `pg_notify`): [`crate::stage`] calls it, and so can a service's own SQL functions that stage
//! an event together with the change it describes. Migrators list [`all`].

use sea_orm_migration::prelude::*;

/// Creates `outbox` (with a partial index on unpublished rows) and `inbox`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000001_outbox_inbox"
    }
}

const UP: &str = r#"
CREATE TABLE outbox (
    id           uuid        PRIMARY KEY,
    routing_key  text        NOT NULL,
    subject      text        NOT NULL,
    source       text        NOT NULL,
    payload      bytea       NOT NULL,
    traceparent  text,
    tracestate   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS inbox;
DROP TABLE IF EXISTS outbox;
"#;

/// Both migrations of the bus, in order, for a service's migrator.
pub fn all() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(Migration), Box::new(StageFunction)]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}

/// Creates `outbox_stage(id, routing_key, subject, source, payload, traceparent, tracestate)`:
/// inserts the outbox row (`created_at` is `now()`) and notifies `jifen_outbox`, which
/// PostgreSQL delivers when the caller's transaction commits.
pub struct StageFunction;

impl MigrationName for StageFunction {
    fn name(&self) -> &str {
        "m20261130_000001_outbox_stage"
    }
}

const STAGE_UP: &str = r#"
CREATE FUNCTION outbox_stage(
    p_id uuid, p_routing_key text, p_subject text, p_source text, p_payload bytea,
    p_traceparent text, p_tracestate text
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (id, routing_key, subject, source, payload, traceparent, tracestate)
    VALUES (p_id, p_routing_key, p_subject, p_source, p_payload, p_traceparent, p_tracestate);
    PERFORM pg_notify('jifen_outbox', '');
END;
$$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for StageFunction {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(STAGE_UP)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP FUNCTION IF EXISTS outbox_stage")
            .await?;
        Ok(())
    }
}
