//! The dashboard's rollup (docs/decisions/0018-dashboard-rollup.md): what the dashboard, its
//! trend and its branches read, in rows proportional to the organizations rather than to the
//! members.
//!
//! * `dashboard_member_months`: one row per member and month with a submitted declaration or a
//!   non-zero sum of ledger points — whether the member declared that month, and the sum;
//! * `dashboard_org_months`: per organization path (the members' `org_path`), year and month,
//!   the sums of the rows above over the **active** members holding that path;
//! * `dashboard_org_members`: per organization path, its active members.
//!
//! All three are kept by the grading consumer in the transaction of each event (member,
//! declaration, ledger). Rows that would hold only zeros are not kept, so the incremental
//! tables equal [`REBUILD`] run over the same source tables, row for row. The migration fills
//! them from the tables already projected with [`REBUILD`].

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000500_dashboard_rollup"
    }
}

const UP: &str = r#"
CREATE TABLE dashboard_member_months (
    member_id   uuid     NOT NULL,
    year        smallint NOT NULL,
    month       smallint NOT NULL CHECK (month BETWEEN 1 AND 12),
    -- A declaration of the month submitted at least once (declaration_months.submitted).
    declared    boolean  NOT NULL,
    -- Sum of the month's ledger points, deci-points.
    points      bigint   NOT NULL,
    PRIMARY KEY (member_id, year, month)
);

CREATE TABLE dashboard_org_months (
    org_path    text     NOT NULL,
    year        smallint NOT NULL,
    month       smallint NOT NULL CHECK (month BETWEEN 1 AND 12),
    -- Active members of the path who declared that month.
    declared    integer  NOT NULL,
    -- Their ledger points of the month, deci-points.
    points      bigint   NOT NULL,
    PRIMARY KEY (org_path, year, month)
);
CREATE INDEX dashboard_org_months_month_idx
    ON dashboard_org_months (year, month, org_path text_pattern_ops);

CREATE TABLE dashboard_org_members (
    org_path    text     PRIMARY KEY,
    members     integer  NOT NULL
);
CREATE INDEX dashboard_org_members_path_idx
    ON dashboard_org_members (org_path text_pattern_ops);
"#;

/// Fills the three (empty) tables from `declaration_months`, `ledger_entries` and `members`:
/// the backfill of this migration, and what the incremental tables must always equal.
pub const REBUILD: &str = r#"
INSERT INTO dashboard_member_months (member_id, year, month, declared, points)
SELECT member_id, year, month, bool_or(declared), CAST(sum(points) AS bigint)
FROM (SELECT member_id, year, month, true AS declared, CAST(0 AS bigint) AS points
        FROM declaration_months WHERE submitted
      UNION ALL
      SELECT member_id, year, month, false, points FROM ledger_entries) s
GROUP BY member_id, year, month
HAVING bool_or(declared) OR sum(points) <> 0;

INSERT INTO dashboard_org_months (org_path, year, month, declared, points)
SELECT m.org_path, mm.year, mm.month, count(*) FILTER (WHERE mm.declared),
       CAST(sum(mm.points) AS bigint)
FROM dashboard_member_months mm JOIN members m ON m.id = mm.member_id
WHERE m.status = 'active'
GROUP BY m.org_path, mm.year, mm.month
HAVING count(*) FILTER (WHERE mm.declared) <> 0 OR sum(mm.points) <> 0;

INSERT INTO dashboard_org_members (org_path, members)
SELECT org_path, count(*) FROM members WHERE status = 'active' GROUP BY org_path;

ANALYZE dashboard_member_months;
ANALYZE dashboard_org_months;
ANALYZE dashboard_org_members;
"#;

const DOWN: &str = r#"
DROP TABLE dashboard_org_members;
DROP TABLE dashboard_org_months;
DROP TABLE dashboard_member_months;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(UP).await?;
        db.execute_unprepared(REBUILD).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
