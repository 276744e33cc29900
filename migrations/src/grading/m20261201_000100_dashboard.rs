//! The dashboard (党建看板) projection: one row per declaration with its member, month and
//! whether it was ever submitted, so that "declared this month" is a set-based count.
//!
//! The row carries the declaration's version and is replaced only by a newer one (DESIGN.md §4),
//! like every other projection. Declarations applied before this migration are backfilled from
//! what the ledger holds (approved declarations with lines, at the version already applied);
//! the others appear with their next event, or when the events are replayed.
//!
//! Also an index of the ledger by month, which the dashboard's monthly sums read.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000100_dashboard"
    }
}

const UP: &str = r#"
-- Projection of declarations.declaration.* events: every declaration, whatever its status.
CREATE TABLE declaration_months (
    id          uuid     PRIMARY KEY,
    member_id   uuid     NOT NULL,
    year        smallint NOT NULL,
    month       smallint NOT NULL CHECK (month BETWEEN 1 AND 12),
    status      text     NOT NULL
        CHECK (status IN ('draft', 'submitted', 'approved', 'rejected', 'returned')),
    -- Submitted at least once: any status but draft, or a draft that carries a submission
    -- instant (a returned declaration being corrected).
    submitted   boolean  NOT NULL,
    version     bigint   NOT NULL
);
CREATE INDEX declaration_months_month_idx ON declaration_months (year, month, member_id)
    WHERE submitted;

CREATE INDEX ledger_entries_month_idx ON ledger_entries (year, month, member_id);

INSERT INTO declaration_months (id, member_id, year, month, status, submitted, version)
SELECT DISTINCT ON (e.ref) e.ref, e.member_id, e.year, e.month, 'approved', true, v.version
FROM ledger_entries e JOIN source_versions v ON v.id = e.ref AND v.kind = 'declaration'
WHERE e.source = 'declaration'
ORDER BY e.ref;
"#;

const DOWN: &str = r#"
DROP INDEX ledger_entries_month_idx;
DROP TABLE declaration_months;
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
