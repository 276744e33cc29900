//! `final_grades`: the members whose yearly grade is final (定档), fed by
//! `grading.member_grade.finalized.v1`. RULES.md §3: branch records are written only for a year
//! whose grading is not final; the service also refuses reviews, revocations and reopenings
//! (补报) that would change a final year (docs/decisions/0005-final-years.md).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000202_final_grades"
    }
}

const UP: &str = r#"
CREATE TABLE final_grades (
    member_id    uuid        NOT NULL,
    year         integer     NOT NULL,
    org_id       uuid        NOT NULL,  -- the branch the member was graded in
    org_path     text        NOT NULL,
    finalized_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, year)
);
CREATE INDEX final_grades_year_path ON final_grades (year, org_path);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS final_grades")
            .await?;
        Ok(())
    }
}
