//! Rounds, their rosters, counts and results.

use super::{placeholders, stmt};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use uuid::Uuid;

/// A `rounds` row.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct RoundRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub org_path: String,
    pub quarter: String,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub opened_by: String,
    pub closes_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub min_ballots: Option<i32>,
    pub score_excellent: Option<i32>,
    pub score_good: Option<i32>,
    pub score_fair: Option<i32>,
    pub score_poor: Option<i32>,
    pub version: i64,
}

const COLUMNS: &str = "id, org_id, org_path, quarter, status, opened_at, opened_by, closes_at, \
    closed_at, closed_by, min_ballots, score_excellent, score_good, score_fair, score_poor, version";

/// One roster entry.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct RosterRow {
    pub member_id: Uuid,
    pub name: String,
}

/// One stored result.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct ResultRow {
    pub member_id: Uuid,
    pub name: String,
    pub ballots: i32,
    pub score_total: i64,
    pub score: Option<i32>,
    pub poor_ballots: i32,
    pub valid: bool,
}

/// How a round row is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    None,
    /// `FOR SHARE`: ballots hold it, so a closing waits for ballots in flight and vice versa.
    Share,
    /// `FOR UPDATE`: closing.
    Update,
}

pub async fn insert(conn: &impl ConnectionTrait, r: &RoundRow) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        format!("INSERT INTO rounds ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"),
        [
            r.id.into(),
            r.org_id.into(),
            r.org_path.clone().into(),
            r.quarter.clone().into(),
            r.status.clone().into(),
            r.opened_at.into(),
            r.opened_by.clone().into(),
            r.closes_at.into(),
            r.closed_at.into(),
            r.closed_by.clone().into(),
            r.min_ballots.into(),
            r.score_excellent.into(),
            r.score_good.into(),
            r.score_fair.into(),
            r.score_poor.into(),
            r.version.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Writes a closing: status, instant, actor, settings, version (the round must be open; a
/// trigger refuses any change to a closed round).
pub async fn update_closed(conn: &impl ConnectionTrait, r: &RoundRow) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE rounds SET status = $2, closed_at = $3, closed_by = $4, min_ballots = $5, \
         score_excellent = $6, score_good = $7, score_fair = $8, score_poor = $9, version = $10 \
         WHERE id = $1",
        [
            r.id.into(),
            r.status.clone().into(),
            r.closed_at.into(),
            r.closed_by.clone().into(),
            r.min_ballots.into(),
            r.score_excellent.into(),
            r.score_good.into(),
            r.score_fair.into(),
            r.score_poor.into(),
            r.version.into(),
        ],
    ))
    .await?;
    Ok(())
}

pub async fn find(
    conn: &impl ConnectionTrait,
    id: Uuid,
    lock: Lock,
) -> Result<Option<RoundRow>, DbErr> {
    let suffix = match lock {
        Lock::None => "",
        Lock::Share => " FOR SHARE",
        Lock::Update => " FOR UPDATE",
    };
    RoundRow::find_by_statement(stmt(
        format!("SELECT {COLUMNS} FROM rounds WHERE id = $1{suffix}"),
        [id.into()],
    ))
    .one(conn)
    .await
}

/// Rounds of organization `org_id`, newest quarter first, after the page token `(quarter)`.
pub async fn list_by_org(
    conn: &impl ConnectionTrait,
    org_id: Uuid,
    before_quarter: Option<&str>,
    limit: u64,
) -> Result<Vec<RoundRow>, DbErr> {
    RoundRow::find_by_statement(stmt(
        format!(
            "SELECT {COLUMNS} FROM rounds WHERE org_id = $1 AND ($2::text IS NULL OR quarter < $2) \
             ORDER BY quarter DESC LIMIT $3"
        ),
        [
            org_id.into(),
            before_quarter.map(str::to_owned).into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ],
    ))
    .all(conn)
    .await
}

/// Closed rounds of `year` whose branch path starts with `path` (every one when `None`), by
/// quarter and id.
pub async fn closed_of_year(
    conn: &impl ConnectionTrait,
    year: i32,
    path: Option<&str>,
) -> Result<Vec<RoundRow>, DbErr> {
    RoundRow::find_by_statement(stmt(
        format!(
            "SELECT {COLUMNS} FROM rounds WHERE status = 'closed' AND quarter LIKE $1 \
             AND ($2::text IS NULL OR starts_with(org_path, $2)) ORDER BY quarter, id"
        ),
        [
            format!("{year:04}-Q_").into(),
            path.map(str::to_owned).into(),
        ],
    ))
    .all(conn)
    .await
}

/// Ids of open rounds whose closing instant is at or before `now`.
pub async fn due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Uuid>, DbErr> {
    #[derive(FromQueryResult)]
    struct Id {
        id: Uuid,
    }
    let rows = Id::find_by_statement(stmt(
        "SELECT id FROM rounds WHERE status = 'open' AND closes_at IS NOT NULL AND closes_at <= $1 \
         ORDER BY closes_at LIMIT $2",
        [now.into(), i64::try_from(limit).unwrap_or(i64::MAX).into()],
    ))
    .all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

pub async fn insert_roster(
    conn: &impl ConnectionTrait,
    round_id: Uuid,
    roster: &[RosterRow],
) -> Result<(), DbErr> {
    // 3 values a row: 20 000 rows per statement stays under PostgreSQL's 65 535 parameters.
    for chunk in roster.chunks(20_000) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 3);
        for r in chunk {
            values.extend([round_id.into(), r.member_id.into(), r.name.clone().into()]);
        }
        conn.execute_raw(stmt(
            format!(
                "INSERT INTO round_roster (round_id, member_id, name) VALUES {}",
                placeholders(chunk.len(), 3, 1)
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}

/// The roster, by name then member id.
pub async fn roster(conn: &impl ConnectionTrait, round_id: Uuid) -> Result<Vec<RosterRow>, DbErr> {
    RosterRow::find_by_statement(stmt(
        "SELECT member_id, name FROM round_roster WHERE round_id = $1 ORDER BY name, member_id",
        [round_id.into()],
    ))
    .all(conn)
    .await
}

/// Codes issued and ballots cast in the round.
pub async fn counts(conn: &impl ConnectionTrait, round_id: Uuid) -> Result<(i64, i64, i64), DbErr> {
    #[derive(FromQueryResult)]
    struct Counts {
        invited: i64,
        ballots: i64,
        roster: i64,
    }
    let c = Counts::find_by_statement(stmt(
        "SELECT (SELECT count(*) FROM invitations WHERE round_id = $1) AS invited, \
                (SELECT count(*) FROM ballots WHERE round_id = $1) AS ballots, \
                (SELECT count(*) FROM round_roster WHERE round_id = $1) AS roster",
        [round_id.into()],
    ))
    .one(conn)
    .await?;
    Ok(c.map_or((0, 0, 0), |c| (c.invited, c.ballots, c.roster)))
}

pub async fn insert_results(
    conn: &impl ConnectionTrait,
    round_id: Uuid,
    results: &[crate::domain::MemberResult],
) -> Result<(), DbErr> {
    for chunk in results.chunks(8_000) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 7);
        for r in chunk {
            values.extend([
                round_id.into(),
                r.member_id.into(),
                i32::try_from(r.ballots).unwrap_or(i32::MAX).into(),
                r.score_total.into(),
                r.score.into(),
                i32::try_from(r.poor_ballots).unwrap_or(i32::MAX).into(),
                r.valid.into(),
            ]);
        }
        conn.execute_raw(stmt(
            format!(
                "INSERT INTO round_results (round_id, member_id, ballots, score_total, score, poor_ballots, valid) VALUES {}",
                placeholders(chunk.len(), 7, 1)
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}

/// The stored results with the roster names, in roster order.
pub async fn results(conn: &impl ConnectionTrait, round_id: Uuid) -> Result<Vec<ResultRow>, DbErr> {
    ResultRow::find_by_statement(stmt(
        "SELECT r.member_id, ro.name, r.ballots, r.score_total, r.score, r.poor_ballots, r.valid \
         FROM round_results r JOIN round_roster ro ON ro.round_id = r.round_id AND ro.member_id = r.member_id \
         WHERE r.round_id = $1 ORDER BY ro.name, r.member_id",
        [round_id.into()],
    ))
    .all(conn)
    .await
}
