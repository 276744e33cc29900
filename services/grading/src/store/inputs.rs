//! What grading reads: one member's ledger entries and quarter results (the ledger, reconcile),
//! and, for grading, every member of a range of branches with their year as arrays, streamed in
//! path order by one statement.

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

/// A member with everything grading needs, aggregated by PostgreSQL into one row: the ledger
/// entries and the quarter results as parallel arrays, and last year's final total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatedMember {
    pub member: MemberRow,
    pub entries: Vec<AggregatedEntry>,
    pub quarters: Vec<QuarterRow>,
    pub previous_total: Option<i32>,
}

/// One ledger entry as grading reads it (the item code shared between entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatedEntry {
    pub month: i16,
    pub branch: bool,
    pub item_code: std::sync::Arc<str>,
    pub points: i32,
}

/// The byte range `[first, upper)` of the member paths under the path-contiguous branches from
/// `first` to `last` (members hang only under branches, so the range from the first branch's
/// path to just past the last one's holds exactly their members): `upper` is `last` with its
/// final `/` (0x2F) raised to `0` (0x30).
fn upper_bound(last: &str) -> String {
    format!("{}0", last.strip_suffix('/').unwrap_or(last))
}

fn sqlx_err(e: sqlx::Error) -> DbErr {
    DbErr::Custom(format!("reading grading inputs: {e}"))
}

/// Every member under the branches from path `first` to path `last` (consecutive in byte order
/// of their paths), with their entries and quarters of `year` as arrays (the `member_years`
/// row kept beside the ledger; binary arrays decode far faster than rows), **streamed** in the
/// byte order of their paths (`USING ~<~`: the path index's own order, so rows flow without a
/// sort; members of one organization in no particular order), so the members of one branch arrive together and the caller never holds the
/// whole subtree.
pub fn aggregated_members<'a>(
    pool: &'a sqlx::PgPool,
    first: &str,
    last: &str,
    year: i32,
) -> impl futures::Stream<Item = Result<AggregatedMember, DbErr>> + 'a {
    use futures::StreamExt as _;
    const SQL: &str = "SELECT m.id, m.org_id, m.org_path, m.name, m.category, m.status, \
         m.exempt, m.sanctions, m.version, y.months, y.branch, array_to_string(y.items, chr(31)) AS items, y.points, \
         y.quarters, \
         y.closed, y.rounds, y.scores, y.ballots, y.poor, y.valid, p.total AS previous_total \
         FROM members m LEFT JOIN member_years y ON y.member_id = m.id AND y.year = $1 \
         LEFT JOIN (SELECT gm.member_id, min(gm.total) AS total FROM grading_members gm \
          JOIN gradings g ON g.branch_id = gm.branch_id AND g.year = gm.year \
          WHERE g.status = 'final' AND gm.year = $1 - 1 GROUP BY gm.member_id) p \
          ON p.member_id = m.id \
         WHERE m.org_path ~>=~ $2 AND m.org_path ~<~ $3 \
         ORDER BY m.org_path USING ~<~";
    sqlx::query(SQL)
        .bind(year)
        .bind(first.to_owned())
        .bind(upper_bound(last))
        .fetch(pool)
        .map({
            let mut codes = Codes::default();
            move |row| {
                row.and_then(|r| aggregated_member(&r, &mut codes))
                    .map_err(sqlx_err)
            }
        })
}

/// The item codes met so far, each kept once (a city has a few dozen).
#[derive(Default)]
struct Codes(foldhash::HashMap<Box<str>, std::sync::Arc<str>>);

impl Codes {
    fn get(&mut self, code: &str) -> std::sync::Arc<str> {
        if let Some(shared) = self.0.get(code) {
            return shared.clone();
        }
        let shared: std::sync::Arc<str> = code.into();
        self.0.insert(code.into(), shared.clone());
        shared
    }
}

fn aggregated_member(
    r: &sqlx::postgres::PgRow,
    codes: &mut Codes,
) -> Result<AggregatedMember, sqlx::Error> {
    use sqlx::Row as _;
    let member = MemberRow {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        org_path: r.try_get("org_path")?,
        name: r.try_get("name")?,
        category: r.try_get("category")?,
        status: r.try_get("status")?,
        exempt: r.try_get("exempt")?,
        sanctions: r.try_get("sanctions")?,
        version: r.try_get("version")?,
    };
    let months: Vec<i16> = r.try_get::<Option<_>, _>("months")?.unwrap_or_default();
    let branch: Vec<bool> = r.try_get::<Option<_>, _>("branch")?.unwrap_or_default();
    // One text per member (codes joined by U+001F), not one string per entry.
    let items: Option<String> = r.try_get("items")?;
    let points: Vec<i32> = r.try_get::<Option<_>, _>("points")?.unwrap_or_default();
    let items: Vec<&str> = match items.as_deref() {
        None | Some("") => Vec::new(),
        Some(text) => text.split('\u{1f}').collect(),
    };
    if [items.len(), branch.len(), points.len()]
        .iter()
        .any(|len| *len != months.len())
    {
        return Err(sqlx::Error::Protocol(
            "entry arrays of different lengths".into(),
        ));
    }
    let entries = (0..months.len())
        .map(|i| AggregatedEntry {
            month: months[i],
            branch: branch[i],
            item_code: codes.get(items[i]),
            points: points[i],
        })
        .collect();
    let quarters: Vec<i16> = r.try_get::<Option<_>, _>("quarters")?.unwrap_or_default();
    let closed: Vec<DateTime<Utc>> = r.try_get::<Option<_>, _>("closed")?.unwrap_or_default();
    let rounds: Vec<Uuid> = r.try_get::<Option<_>, _>("rounds")?.unwrap_or_default();
    let scores: Vec<Option<i32>> = r.try_get::<Option<_>, _>("scores")?.unwrap_or_default();
    let ballots: Vec<i32> = r.try_get::<Option<_>, _>("ballots")?.unwrap_or_default();
    let poor: Vec<i32> = r.try_get::<Option<_>, _>("poor")?.unwrap_or_default();
    let valid: Vec<bool> = r.try_get::<Option<_>, _>("valid")?.unwrap_or_default();
    let n = quarters.len();
    if [
        closed.len(),
        rounds.len(),
        scores.len(),
        ballots.len(),
        poor.len(),
        valid.len(),
    ]
    .iter()
    .any(|len| *len != n)
    {
        return Err(sqlx::Error::Protocol(
            "quarter arrays of different lengths".into(),
        ));
    }
    let quarters = (0..n)
        .map(|i| QuarterRow {
            member_id: member.id,
            round_id: rounds[i],
            quarter: quarters[i],
            closed_at: closed[i],
            score: scores[i],
            ballots: ballots[i],
            poor_ballots: poor[i],
            valid: valid[i],
        })
        .collect();
    Ok(AggregatedMember {
        entries,
        quarters,
        previous_total: r.try_get("previous_total")?,
        member,
    })
}
