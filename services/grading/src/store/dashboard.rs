//! What the dashboard 党建看板 reads and the declaration projection it needs: a few set-based
//! statements over an organization's subtree (by materialized path), never a loop per member —
//! a city holds 100,000 members.

use super::{stmt, subtree_pattern};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use uuid::Uuid;

/// One declaration as the dashboard keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclarationMonth {
    pub id: Uuid,
    pub member_id: Uuid,
    pub year: i32,
    pub month: u32,
    pub status: String,
    pub submitted: bool,
    pub version: i64,
}

/// Inserts or, when `row.version` is newer than the one held, replaces.
pub async fn upsert_declaration_month(
    conn: &impl ConnectionTrait,
    row: &DeclarationMonth,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO declaration_months (id, member_id, year, month, status, submitted, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET member_id = EXCLUDED.member_id, year = EXCLUDED.year, \
         month = EXCLUDED.month, status = EXCLUDED.status, submitted = EXCLUDED.submitted, \
         version = EXCLUDED.version WHERE declaration_months.version < EXCLUDED.version",
        [
            row.id.into(),
            row.member_id.into(),
            i16::try_from(row.year).unwrap_or(i16::MAX).into(),
            i16::try_from(row.month).unwrap_or(i16::MAX).into(),
            row.status.clone().into(),
            row.submitted.into(),
            row.version.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The month's figures of the active members of a subtree, grouped by the direct child
/// organization they belong under (`None`: members of the organization itself).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct ChildFigures {
    pub child: Option<Uuid>,
    pub members: i64,
    pub declared: i64,
    pub points: i64,
}

/// One statement over the subtree of `path`: active members, those with a declaration of
/// `year`-`month` submitted at least once, and the sum of their ledger points of the month,
/// grouped by the path segment that follows `path` (the direct child's id).
pub async fn figures_by_child(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
    month: u32,
) -> Result<Vec<ChildFigures>, DbErr> {
    let pattern = subtree_pattern(path)?;
    // Paths are ASCII (`/`-separated UUIDs), so characters are bytes; the child's id is the
    // 36 characters after the organization's own path.
    let child_at = i32::try_from(path.len() + 1).unwrap_or(i32::MAX);
    ChildFigures::find_by_statement(stmt(
        format!(
            "SELECT CAST(nullif(substr(m.org_path, $3, 36), '') AS uuid) AS child, \
             count(*) AS members, count(d.member_id) AS declared, \
             CAST(coalesce(sum(p.points), 0) AS bigint) AS points \
             FROM members m \
             LEFT JOIN (SELECT DISTINCT member_id FROM declaration_months \
               WHERE year = $1 AND month = $2 AND submitted) d ON d.member_id = m.id \
             LEFT JOIN (SELECT member_id, sum(points) AS points FROM ledger_entries \
               WHERE year = $1 AND month = $2 GROUP BY member_id) p ON p.member_id = m.id \
             WHERE m.org_path LIKE {pattern} AND m.status = 'active' \
             GROUP BY 1"
        ),
        [
            year.into(),
            i32::try_from(month).unwrap_or(0).into(),
            child_at.into(),
        ],
    ))
    .all(conn)
    .await
}

/// One month of a year's figures of a subtree: the members who declared that month and their
/// ledger points of that month. (`members` is the month-independent count of active members.)
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct MonthFigures {
    pub month: i32,
    pub members: i64,
    pub declared: i64,
    pub points: i64,
}

/// One statement over the subtree of `path` for the whole of `year`: the active members (once),
/// then per month those of them with a declaration submitted at least once and the sum of their
/// ledger points — the figures of [`figures_by_child`] for every month at once, grouped by
/// month. Only months with a declaration or a ledger entry come back (with `members` always
/// the subtree's count); a row with month 0 carries `members` when no month has anything.
pub async fn figures_by_month(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
) -> Result<Vec<MonthFigures>, DbErr> {
    let pattern = subtree_pattern(path)?;
    MonthFigures::find_by_statement(stmt(
        format!(
            "WITH m AS (SELECT id FROM members WHERE org_path LIKE {pattern} \
               AND status = 'active'), \
             d AS (SELECT dm.month, count(DISTINCT dm.member_id) AS declared \
               FROM declaration_months dm JOIN m ON m.id = dm.member_id \
               WHERE dm.year = $1 AND dm.submitted GROUP BY dm.month), \
             p AS (SELECT le.month, sum(le.points) AS points \
               FROM ledger_entries le JOIN m ON m.id = le.member_id \
               WHERE le.year = $1 GROUP BY le.month), \
             months AS (SELECT month FROM d UNION SELECT month FROM p UNION SELECT 0) \
             SELECT CAST(months.month AS integer) AS month, \
             (SELECT count(*) FROM m) AS members, \
             coalesce(d.declared, 0) AS declared, \
             CAST(coalesce(p.points, 0) AS bigint) AS points \
             FROM months LEFT JOIN d ON d.month = months.month \
             LEFT JOIN p ON p.month = months.month ORDER BY 1"
        ),
        [year.into()],
    ))
    .all(conn)
    .await
}

/// An organization as the dashboard names it.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct NamedOrg {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
}

/// The direct children of organization `id`, by name.
pub async fn children(conn: &impl ConnectionTrait, id: Uuid) -> Result<Vec<NamedOrg>, DbErr> {
    NamedOrg::find_by_statement(stmt(
        "SELECT id, name, kind FROM organizations WHERE parent_id = $1 ORDER BY name, id",
        [id.into()],
    ))
    .all(conn)
    .await
}

/// The organizations on `path` — the organization it names and every one above it — in no
/// particular order.
pub async fn on_path(conn: &impl ConnectionTrait, path: &str) -> Result<Vec<NamedOrg>, DbErr> {
    NamedOrg::find_by_statement(stmt(
        "SELECT id, name, kind FROM organizations \
         WHERE id = ANY(CAST(string_to_array(trim(BOTH '/' FROM $1), '/') AS uuid[]))",
        [path.to_owned().into()],
    ))
    .all(conn)
    .await
}

/// One branch (党支部) of a subtree with its month's figures (see [`figures_by_branch`]).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct BranchFigures {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub parent_name: Option<String>,
    pub members: i64,
    pub declared: i64,
    pub points: i64,
}

/// One statement over the subtree of `path`: every branch in it (itself included) with the
/// figures of [`figures_by_child`] over the branch's own subtree — its active members (a
/// member belongs to the branch whose id is a segment of their organization's path), those
/// with a declaration of `year`-`month` submitted at least once, and their month's ledger
/// points. A branch without members has zeros.
pub async fn figures_by_branch(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
    month: u32,
) -> Result<Vec<BranchFigures>, DbErr> {
    let pattern = subtree_pattern(path)?;
    BranchFigures::find_by_statement(stmt(
        format!(
            "WITH b AS (SELECT id, name, parent_id FROM organizations \
               WHERE kind = 'branch' AND path LIKE {pattern}), \
             mb AS (SELECT m.id AS member_id, CAST(seg AS uuid) AS branch \
               FROM members m, unnest(string_to_array(trim(BOTH '/' FROM m.org_path), '/')) seg \
               WHERE m.org_path LIKE {pattern} AND m.status = 'active'), \
             f AS (SELECT mb.branch, count(*) AS members, count(d.member_id) AS declared, \
               coalesce(sum(p.points), 0) AS points FROM mb \
               JOIN b ON b.id = mb.branch \
               LEFT JOIN (SELECT DISTINCT member_id FROM declaration_months \
                 WHERE year = $1 AND month = $2 AND submitted) d ON d.member_id = mb.member_id \
               LEFT JOIN (SELECT member_id, sum(points) AS points FROM ledger_entries \
                 WHERE year = $1 AND month = $2 GROUP BY member_id) p \
                 ON p.member_id = mb.member_id \
               GROUP BY mb.branch) \
             SELECT b.id, b.name, b.parent_id, po.name AS parent_name, \
             coalesce(f.members, 0) AS members, coalesce(f.declared, 0) AS declared, \
             CAST(coalesce(f.points, 0) AS bigint) AS points \
             FROM b LEFT JOIN f ON f.branch = b.id \
             LEFT JOIN organizations po ON po.id = b.parent_id"
        ),
        [year.into(), i32::try_from(month).unwrap_or(0).into()],
    ))
    .all(conn)
    .await
}

/// The confirmed or final grades of `year` of the subtree of `path` by grade code; `None` when
/// no grading of that year in it is confirmed or final. The subtree's gradings are those of its
/// branches; for a group (党小组, below its branch) those of its members in its branch's grading.
pub async fn grade_counts(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
) -> Result<Option<Vec<(String, i64)>>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        grade: Option<String>,
        n: i64,
    }
    let pattern = subtree_pattern(path)?;
    let rows = Row::find_by_statement(stmt(
        format!(
            "SELECT gm.grade, count(gm.member_id) AS n FROM gradings g \
             LEFT JOIN grading_members gm ON gm.branch_id = g.branch_id AND gm.year = g.year \
               AND gm.grade IS NOT NULL \
               AND (g.branch_path LIKE {pattern} OR gm.member_id IN \
                 (SELECT id FROM members WHERE org_path LIKE {pattern})) \
             WHERE g.year = $1 AND g.status IN ('confirmed', 'final') \
               AND (g.branch_path LIKE {pattern} OR starts_with($2, g.branch_path)) \
             GROUP BY gm.grade"
        ),
        [year.into(), path.to_owned().into()],
    ))
    .all(conn)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .filter_map(|r| r.grade.map(|g| (g, r.n)))
            .collect(),
    ))
}
