//! The demo history's marker (`jifen-evaluations seed-demo-history`, docs/decisions/0014-demo-history.md):
//! one row per history version (seed and city shape), holding what the seeding has done so far
//! and whether it is complete. A complete row means "nothing to do". Only the demo seeding writes
//! it; a production database simply has no rows.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000202_demo_seed"
    }
}

const UP: &str = r#"
CREATE TABLE demo_seed (
    version     text        PRIMARY KEY,
    state       jsonb       NOT NULL,
    complete    boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
"#;

const DOWN: &str = "DROP TABLE demo_seed;";

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
