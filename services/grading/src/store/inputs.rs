//! What grading reads: the members of a branch, their ledger entries and quarter results, in a
//! few set-based statements per branch (the year-end batch streams branch by branch).

use super::projection::MemberRow;
use super::{stmt, subtree_pattern};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use uuid::Uuid;

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct EntryRow {
    pub member_id: Uuid,
    pub month: i16,
    pub source: String,
    pub reference: Uuid,
    pub line: i16,
    pub item_code: String,
    pub points: i32,
    pub note: String,
}

/// One member's result of a closed round.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct QuarterRow {
    pub member_id: Uuid,
    pub round_id: Uuid,
    pub quarter: i16,
    pub closed_at: DateTime<Utc>,
    pub score: Option<i32>,
    pub ballots: i32,
    pub poor_ballots: i32,
    pub valid: bool,
}

const ENTRY_COLUMNS: &str =
    "member_id, month, source, ref AS reference, line, item_code, points, note";
const QUARTER_COLUMNS: &str =
    "member_id, round_id, quarter, closed_at, score, ballots, poor_ballots, valid";

/// Every member whose organization is `path` or below it (any status), ordered by id.
pub async fn members_under(
    conn: &impl ConnectionTrait,
    path: &str,
) -> Result<Vec<MemberRow>, DbErr> {
    let pattern = subtree_pattern(path)?;
    MemberRow::find_by_statement(stmt(
        format!(
            "SELECT id, org_id, org_path, name, category, status, exempt, sanctions, version \
             FROM members WHERE org_path LIKE {pattern} ORDER BY id"
        ),
        [],
    ))
    .all(conn)
    .await
}

/// The ledger entries of `year` of every member under `path`, in a stable order.
pub async fn entries_under(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
) -> Result<Vec<EntryRow>, DbErr> {
    let pattern = subtree_pattern(path)?;
    EntryRow::find_by_statement(stmt(
        format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE year = $1 AND member_id IN \
             (SELECT id FROM members WHERE org_path LIKE {pattern})"
        ),
        [year.into()],
    ))
    .all(conn)
    .await
}

/// One member's ledger entries of `year`, by month, source, reference and line.
pub async fn entries_of(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    year: i32,
) -> Result<Vec<EntryRow>, DbErr> {
    EntryRow::find_by_statement(stmt(
        format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE member_id = $1 AND year = $2 \
             ORDER BY month, source, ref, line"
        ),
        [member_id.into(), year.into()],
    ))
    .all(conn)
    .await
}

/// The quarter results of `year` of every member under `path`.
pub async fn quarters_under(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
) -> Result<Vec<QuarterRow>, DbErr> {
    let pattern = subtree_pattern(path)?;
    QuarterRow::find_by_statement(stmt(
        format!(
            "SELECT {QUARTER_COLUMNS} FROM quarter_results WHERE year = $1 AND member_id IN \
             (SELECT id FROM members WHERE org_path LIKE {pattern})"
        ),
        [year.into()],
    ))
    .all(conn)
    .await
}

/// One member's quarter results of `year`, by quarter and closing instant.
pub async fn quarters_of(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    year: i32,
) -> Result<Vec<QuarterRow>, DbErr> {
    QuarterRow::find_by_statement(stmt(
        format!(
            "SELECT {QUARTER_COLUMNS} FROM quarter_results WHERE member_id = $1 AND year = $2 \
             ORDER BY quarter, closed_at, round_id"
        ),
        [member_id.into(), year.into()],
    ))
    .all(conn)
    .await
}
