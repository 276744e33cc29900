//! The `outbox` and `inbox` tables, as a sea-orm-migration migration.
//!
//! Every service's migrator lists [`Migration`] so each service database has both tables: a
//! service that only publishes leaves `inbox` empty, one that only consumes leaves `outbox` empty.
//! Invariant: an unpublished outbox row is one with `published_at IS NULL`; the partial index
//! keeps the relay's claim query cheap however many published rows accumulate.

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
