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

/// The rows of the rollup under `{pattern}` (a [`subtree_pattern`]) for `year`-`month` ($1,
/// $2), one per organization path: its active members, those who declared, their points.
fn rollup_of_month(pattern: &str) -> String {
    format!(
        "SELECT org_path, members, 0 AS declared, CAST(0 AS bigint) AS points \
         FROM dashboard_org_members WHERE org_path LIKE {pattern} \
         UNION ALL \
         SELECT org_path, 0, declared, points FROM dashboard_org_months \
         WHERE year = $1 AND month = $2 AND org_path LIKE {pattern}"
    )
}

/// One statement over the rollup of the subtree of `path` (docs/decisions/0018): its active
/// members, those with a declaration of `year`-`month` submitted at least once, and the sum of
/// their ledger points of the month, grouped by the path segment that follows `path` (the
/// direct child's id). Reads one row per organization, whatever the number of members.
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
            "SELECT CAST(nullif(substr(r.org_path, $3, 36), '') AS uuid) AS child, \
             CAST(sum(r.members) AS bigint) AS members, \
             CAST(sum(r.declared) AS bigint) AS declared, \
             CAST(sum(r.points) AS bigint) AS points \
             FROM ({}) r GROUP BY 1",
            rollup_of_month(&pattern)
        ),
        [
            i16::try_from(year).unwrap_or(i16::MAX).into(),
            i16::try_from(month).unwrap_or(0).into(),
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

/// One statement over the rollup of the subtree of `path` for the whole of `year`: the active
/// members (once), then per month those of them with a declaration submitted at least once and
/// the sum of their ledger points — the figures of [`figures_by_child`] for every month at
/// once, grouped by month. Only months with a declaration or points come back (with `members`
/// always the subtree's count), and a row with month 0 carrying `members`.
pub async fn figures_by_month(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
) -> Result<Vec<MonthFigures>, DbErr> {
    let pattern = subtree_pattern(path)?;
    MonthFigures::find_by_statement(stmt(
        format!(
            "WITH m AS (SELECT CAST(coalesce(sum(members), 0) AS bigint) AS members \
               FROM dashboard_org_members WHERE org_path LIKE {pattern}), \
             f AS (SELECT month, sum(declared) AS declared, sum(points) AS points \
               FROM dashboard_org_months WHERE year = $1 AND org_path LIKE {pattern} \
               GROUP BY month \
               UNION ALL SELECT 0, 0, 0) \
             SELECT CAST(f.month AS integer) AS month, m.members, \
             CAST(f.declared AS bigint) AS declared, CAST(f.points AS bigint) AS points \
             FROM f, m ORDER BY 1"
        ),
        [i16::try_from(year).unwrap_or(i16::MAX).into()],
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
/// points — from the rollup's rows (one per organization path, each path's segments joined to
/// the branches). A branch without members has zeros.
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
             o AS (SELECT org_path, sum(members) AS members, sum(declared) AS declared, \
               sum(points) AS points FROM ({}) r GROUP BY org_path), \
             f AS (SELECT CAST(seg AS uuid) AS branch, sum(o.members) AS members, \
               sum(o.declared) AS declared, sum(o.points) AS points \
               FROM o, unnest(string_to_array(trim(BOTH '/' FROM o.org_path), '/')) seg \
               GROUP BY 1) \
             SELECT b.id, b.name, b.parent_id, po.name AS parent_name, \
             CAST(coalesce(f.members, 0) AS bigint) AS members, \
             CAST(coalesce(f.declared, 0) AS bigint) AS declared, \
             CAST(coalesce(f.points, 0) AS bigint) AS points \
             FROM b LEFT JOIN f ON f.branch = b.id \
             LEFT JOIN organizations po ON po.id = b.parent_id",
            rollup_of_month(&pattern)
        ),
        [
            i16::try_from(year).unwrap_or(i16::MAX).into(),
            i16::try_from(month).unwrap_or(0).into(),
        ],
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

/// The member and month the declaration `id` is held under, if it is held.
pub async fn declaration_month_of(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<MemberMonth>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        member_id: Uuid,
        year: i16,
        month: i16,
    }
    Ok(Row::find_by_statement(stmt(
        "SELECT member_id, year, month FROM declaration_months WHERE id = $1",
        [id.into()],
    ))
    .one(conn)
    .await?
    .map(|r| MemberMonth {
        member_id: r.member_id,
        year: i32::from(r.year),
        month: u32::try_from(r.month).unwrap_or(0),
    }))
}

/// One member's month, as the rollup keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberMonth {
    pub member_id: Uuid,
    pub year: i32,
    pub month: u32,
}

/// The organization path of member `id` when they are active (they count in the dashboard
/// there), else `None` (not active, or not projected yet).
pub async fn active_path(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        org_path: String,
    }
    Ok(Row::find_by_statement(stmt(
        "SELECT org_path FROM members WHERE id = $1 AND status = 'active'",
        [id.into()],
    ))
    .one(conn)
    .await?
    .map(|r| r.org_path))
}

/// Brings the rollup of one member's month in line with `declaration_months` and
/// `ledger_entries` after a change of either: recomputes the member's month from those tables,
/// and adds the difference from the row held to the month of the member's organization path
/// when they are active. Recomputing (rather than applying the event's own delta) is what makes
/// a redelivered, stale or reordered event count nothing twice: the source tables already
/// passed their version guards. The caller holds the member's lock
/// ([`super::projection::lock_member`]), so no other transaction changes the member's month or
/// their status or path in between.
pub async fn refresh_member_month(
    conn: &impl ConnectionTrait,
    at: MemberMonth,
) -> Result<(), DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        declared: bool,
        points: i64,
        held_declared: bool,
        held_points: i64,
        path: Option<String>,
    }
    let year = i16::try_from(at.year).unwrap_or(i16::MAX);
    let month = i16::try_from(at.month).unwrap_or(0);
    let key = || -> [sea_orm::Value; 3] { [at.member_id.into(), year.into(), month.into()] };
    let Some(row) = Row::find_by_statement(stmt(
        "SELECT EXISTS (SELECT 1 FROM declaration_months \
           WHERE member_id = $1 AND year = $2 AND month = $3 AND submitted) AS declared, \
         CAST(coalesce((SELECT sum(points) FROM ledger_entries \
           WHERE member_id = $1 AND year = $2 AND month = $3), 0) AS bigint) AS points, \
         coalesce(h.declared, false) AS held_declared, coalesce(h.points, 0) AS held_points, \
         (SELECT org_path FROM members WHERE id = $1 AND status = 'active') AS path \
         FROM (SELECT 1) one LEFT JOIN dashboard_member_months h \
           ON h.member_id = $1 AND h.year = $2 AND h.month = $3",
        key(),
    ))
    .one(conn)
    .await?
    else {
        return Ok(());
    };
    if (row.declared, row.points) == (row.held_declared, row.held_points) {
        return Ok(());
    }
    if !row.declared && row.points == 0 {
        conn.execute_raw(stmt(
            "DELETE FROM dashboard_member_months WHERE member_id = $1 AND year = $2 AND month = $3",
            key(),
        ))
        .await?;
    } else {
        let [m, y, mo] = key();
        conn.execute_raw(stmt(
            "INSERT INTO dashboard_member_months (member_id, year, month, declared, points) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (member_id, year, month) \
             DO UPDATE SET declared = EXCLUDED.declared, points = EXCLUDED.points",
            [m, y, mo, row.declared.into(), row.points.into()],
        ))
        .await?;
    }
    if let Some(path) = row.path {
        let declared = i32::from(row.declared) - i32::from(row.held_declared);
        add_to_org_months(
            conn,
            &path,
            year,
            month,
            declared,
            row.points - row.held_points,
        )
        .await?;
    }
    Ok(())
}

/// Moves member `id`'s figures in the rollup from where they counted (`before`: the active
/// member's organization path, `None` when they did not count) to where they count now
/// (`after`): every month of theirs and their place among the members. A transfer, a member
/// leaving (status no longer active) or coming back. Under the member's lock.
pub async fn move_member(
    conn: &impl ConnectionTrait,
    id: Uuid,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(), DbErr> {
    if before == after {
        return Ok(());
    }
    for (path, sign) in [(before, -1), (after, 1)] {
        let Some(path) = path else { continue };
        conn.execute_raw(stmt(
            "INSERT INTO dashboard_org_months (org_path, year, month, declared, points) \
             SELECT $2, year, month, CASE WHEN declared THEN $3 ELSE 0 END, points * $3 \
             FROM dashboard_member_months WHERE member_id = $1 \
             ON CONFLICT (org_path, year, month) DO UPDATE SET \
             declared = dashboard_org_months.declared + EXCLUDED.declared, \
             points = dashboard_org_months.points + EXCLUDED.points",
            [id.into(), path.to_owned().into(), sign.into()],
        ))
        .await?;
        conn.execute_raw(stmt(
            "DELETE FROM dashboard_org_months WHERE org_path = $1 AND declared = 0 AND points = 0",
            [path.to_owned().into()],
        ))
        .await?;
        conn.execute_raw(stmt(
            "INSERT INTO dashboard_org_members (org_path, members) VALUES ($1, $2) \
             ON CONFLICT (org_path) DO UPDATE SET \
             members = dashboard_org_members.members + EXCLUDED.members",
            [path.to_owned().into(), sign.into()],
        ))
        .await?;
        conn.execute_raw(stmt(
            "DELETE FROM dashboard_org_members WHERE org_path = $1 AND members = 0",
            [path.to_owned().into()],
        ))
        .await?;
    }
    Ok(())
}

/// Adds `declared` and `points` to the rollup row of `path` for `(year, month)`, dropping the
/// row when it comes to zeros.
async fn add_to_org_months(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i16,
    month: i16,
    declared: i32,
    points: i64,
) -> Result<(), DbErr> {
    if declared == 0 && points == 0 {
        return Ok(());
    }
    #[derive(FromQueryResult)]
    struct Sums {
        declared: i32,
        points: i64,
    }
    let sums = Sums::find_by_statement(stmt(
        "INSERT INTO dashboard_org_months (org_path, year, month, declared, points) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_path, year, month) DO UPDATE SET \
         declared = dashboard_org_months.declared + EXCLUDED.declared, \
         points = dashboard_org_months.points + EXCLUDED.points \
         RETURNING declared, points",
        [
            path.to_owned().into(),
            year.into(),
            month.into(),
            declared.into(),
            points.into(),
        ],
    ))
    .one(conn)
    .await?;
    if sums.is_some_and(|s| s.declared == 0 && s.points == 0) {
        conn.execute_raw(stmt(
            "DELETE FROM dashboard_org_months WHERE org_path = $1 AND year = $2 AND month = $3",
            [path.to_owned().into(), year.into(), month.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Empties the rollup and fills it again from `declaration_months`, `ledger_entries` and
/// `members` — the migration's backfill ([`jifen_migrations::grading::DASHBOARD_ROLLUP_REBUILD`]).
/// For a database loaded in bulk (the bench) and for comparing the incremental rollup with it;
/// run it in a transaction, or on a projection nothing else writes to.
pub async fn rebuild_rollup(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    conn.execute_unprepared(
        "TRUNCATE dashboard_member_months, dashboard_org_months, dashboard_org_members",
    )
    .await?;
    conn.execute_unprepared(jifen_migrations::grading::DASHBOARD_ROLLUP_REBUILD)
        .await?;
    Ok(())
}
