//! `final_grades`: the members whose yearly grade is final (定档), fed by
//! `grading.member_grade.finalized.v1` (consumer `evaluations.final-grades`). A branch whose grade
//! of a year is final opens no more evaluation rounds for a quarter of that year: their results
//! could never count (docs/decisions/0006-final-years-evaluations.md). The same columns as the
//! declarations service's table of the same name; the index serves the one question asked here,
//! "is a grade of this year final in this branch".

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000201_final_grades"
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
CREATE INDEX final_grades_year_org ON final_grades (year, org_id);
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
