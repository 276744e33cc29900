//! Reads of the demo history's seeding (`seed-demo-history`, docs/decisions/0014-demo-history.md):
//! how much of what declarations and evaluations published the projection holds, and the
//! appeals a member has filed. Only the seeding uses them.

use super::stmt;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

/// What the projection holds of the demo city's `year`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub members: i64,
    pub branches: i64,
    pub standard: bool,
    pub declaration_lines: i64,
    pub branch_entries: i64,
    pub closed_rounds: i64,
}

/// What the projection holds of `members` and `branches` in `year` (closed rounds: those with
/// results of the members).
pub async fn held(
    conn: &impl ConnectionTrait,
    members: &[Uuid],
    branches: &[Uuid],
    year: i32,
) -> Result<Held, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT (SELECT count(*) FROM members WHERE id = ANY($1)) AS members,
                    (SELECT count(*) FROM organizations WHERE id = ANY($2)) AS branches,
                    EXISTS (SELECT 1 FROM standards WHERE year = $3) AS standard,
                    (SELECT count(*) FROM ledger_entries WHERE member_id = ANY($1) AND year = $3
                        AND source = 'declaration') AS declaration_lines,
                    (SELECT count(*) FROM ledger_entries WHERE member_id = ANY($1) AND year = $3
                        AND source = 'branch') AS branch_entries,
                    (SELECT count(DISTINCT round_id) FROM quarter_results
                        WHERE member_id = ANY($1) AND year = $3) AS closed_rounds",
            [
                members.to_vec().into(),
                branches.to_vec().into(),
                year.into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        return Err(DbErr::Custom("no answer".into()));
    };
    Ok(Held {
        members: row.try_get("", "members")?,
        branches: row.try_get("", "branches")?,
        standard: row.try_get("", "standard")?,
        declaration_lines: row.try_get("", "declaration_lines")?,
        branch_entries: row.try_get("", "branch_entries")?,
        closed_rounds: row.try_get("", "closed_rounds")?,
    })
}

/// How many appeals `member_id` has filed for `year`, whatever their status.
pub async fn appeals_of(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    year: i32,
) -> Result<i64, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT count(*) AS n FROM appeals WHERE member_id = $1 AND year = $2",
            [member_id.into(), year.into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get("", "n"),
        None => Ok(0),
    }
}
