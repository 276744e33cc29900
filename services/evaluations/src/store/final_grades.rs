//! The members whose grade of a year is final (定档), from
//! `grading.member_grade.finalized.v1`: a final grade never changes, so a row is inserted once and
//! never updated.

use super::stmt;
use jifen_platform::final_grades::FinalGrade;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use uuid::Uuid;

/// Records `grade` (idempotent: a redelivery or a republish changes nothing).
pub async fn insert(conn: &impl ConnectionTrait, grade: &FinalGrade) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO final_grades (member_id, year, org_id, org_path, finalized_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (member_id, year) DO NOTHING",
        [
            grade.member_id.into(),
            grade.year.into(),
            grade.org_id.into(),
            grade.org_path.clone().into(),
            grade.finalized_at.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Whether a grade of `year` is final for a member graded in the branch `org_id`.
pub async fn final_in_branch(
    conn: &impl ConnectionTrait,
    org_id: Uuid,
    year: i32,
) -> Result<bool, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        found: bool,
    }
    let row = Row::find_by_statement(stmt(
        "SELECT EXISTS (SELECT 1 FROM final_grades WHERE year = $1 AND org_id = $2) AS found",
        [year.into(), org_id.into()],
    ))
    .one(conn)
    .await?;
    Ok(row.is_some_and(|r| r.found))
}
