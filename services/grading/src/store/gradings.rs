//! Gradings of branches, their members' grades, appeals and the audit trail.

use super::{placeholders, stmt, subtree_pattern};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use uuid::Uuid;

/// A branch's grading of a year.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct GradingRow {
    pub branch_id: Uuid,
    pub year: i32,
    pub branch_path: String,
    pub status: String,
    pub computed_at: DateTime<Utc>,
    pub computed_by: String,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub confirmed_by: Option<String>,
    pub finalizable_at: Option<DateTime<Utc>>,
    pub finalized_at: Option<DateTime<Utc>>,
    pub finalized_by: Option<String>,
}

/// One member's row of a grading.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct GradeRow {
    pub branch_id: Uuid,
    pub year: i32,
    pub member_id: Uuid,
    pub base_points: i32,
    pub bonus_points: i32,
    pub deduction_points: i32,
    pub evaluation_points: i32,
    pub total: i32,
    pub proposed_grade: String,
    pub grade: Option<String>,
    /// A JSON array of reason codes.
    pub reasons: serde_json::Value,
    pub override_reason: String,
}

const GRADING_COLUMNS: &str = "branch_id, year, branch_path, status, computed_at, computed_by, \
    confirmed_at, confirmed_by, finalizable_at, finalized_at, finalized_by";
const GRADE_COLUMNS: &str = "branch_id, year, member_id, base_points, bonus_points, \
    deduction_points, evaluation_points, total, proposed_grade, grade, reasons, override_reason";

/// Serializes every change of one branch's grading of `year` until the end of the transaction.
pub async fn lock_branch_year(
    conn: &impl ConnectionTrait,
    branch_id: Uuid,
    year: i32,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, $2))",
        [branch_id.to_string().into(), i64::from(year).into()],
    ))
    .await?;
    Ok(())
}

pub async fn find(
    conn: &impl ConnectionTrait,
    branch_id: Uuid,
    year: i32,
) -> Result<Option<GradingRow>, DbErr> {
    GradingRow::find_by_statement(stmt(
        format!("SELECT {GRADING_COLUMNS} FROM gradings WHERE branch_id = $1 AND year = $2"),
        [branch_id.into(), year.into()],
    ))
    .one(conn)
    .await
}

/// The gradings of `year` of every branch under `path`, ordered by branch id.
pub async fn under(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
) -> Result<Vec<GradingRow>, DbErr> {
    let pattern = subtree_pattern(path)?;
    GradingRow::find_by_statement(stmt(
        format!(
            "SELECT {GRADING_COLUMNS} FROM gradings WHERE year = $1 AND branch_path LIKE {pattern} \
             ORDER BY branch_id"
        ),
        [year.into()],
    ))
    .all(conn)
    .await
}

/// The member rows of the gradings of `year` of every branch under `path`.
pub async fn grades_under(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
) -> Result<Vec<GradeRow>, DbErr> {
    let pattern = subtree_pattern(path)?;
    GradeRow::find_by_statement(stmt(
        format!(
            "SELECT {GRADE_COLUMNS} FROM grading_members gm WHERE gm.year = $1 AND gm.branch_id IN \
             (SELECT branch_id FROM gradings WHERE year = $1 AND branch_path LIKE {pattern}) \
             ORDER BY gm.branch_id, gm.member_id"
        ),
        [year.into()],
    ))
    .all(conn)
    .await
}

/// A member's row in a grading of `year`, with that grading's status.
pub async fn grade_of_member(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    year: i32,
) -> Result<Option<(GradeRow, GradingRow)>, DbErr> {
    let Some(grade) = GradeRow::find_by_statement(stmt(
        format!(
            "SELECT {GRADE_COLUMNS} FROM grading_members WHERE member_id = $1 AND year = $2 \
             ORDER BY (SELECT computed_at FROM gradings g WHERE g.branch_id = grading_members.branch_id \
             AND g.year = grading_members.year) DESC LIMIT 1"
        ),
        [member_id.into(), year.into()],
    ))
    .one(conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(find(conn, grade.branch_id, year)
        .await?
        .map(|grading| (grade, grading)))
}

/// Proposals to store: `(member_id, base, bonus, deductions, evaluation, total, grade, reasons)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrade {
    pub member_id: Uuid,
    pub base: i32,
    pub bonus: i32,
    pub deductions: i32,
    pub evaluation: i32,
    pub total: i32,
    pub grade: String,
    pub reasons: Vec<String>,
}

/// `'<id>', '<id>'`: UUIDs as an SQL list (UUIDs are safe literals).
fn id_list(ids: &[Uuid]) -> String {
    ids.iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Serializes every change of the gradings of `branches` of `year` until the end of the
/// transaction (the same locks as [`lock_branch_year`], taken in id order).
pub async fn lock_branches(
    conn: &impl ConnectionTrait,
    branches: &[Uuid],
    year: i32,
) -> Result<(), DbErr> {
    if branches.is_empty() {
        return Ok(());
    }
    conn.execute_raw(stmt(
        format!(
            "SELECT pg_advisory_xact_lock(hashtextextended(b, $1)) FROM \
             (SELECT unnest(ARRAY[{}]::text[]) AS b ORDER BY 1) s",
            id_list(branches)
        ),
        [i64::from(year).into()],
    ))
    .await?;
    Ok(())
}

/// The status of each of `branches`' gradings of `year` that exists.
pub async fn statuses(
    conn: &impl ConnectionTrait,
    branches: &[Uuid],
    year: i32,
) -> Result<std::collections::HashMap<Uuid, String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        branch_id: Uuid,
        status: String,
    }
    if branches.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    Ok(Row::find_by_statement(stmt(
        format!(
            "SELECT branch_id, status FROM gradings WHERE year = $1 AND branch_id IN ({})",
            id_list(branches)
        ),
        [year.into()],
    ))
    .all(conn)
    .await?
    .into_iter()
    .map(|r| (r.branch_id, r.status))
    .collect())
}

/// The member rows of `branches`' gradings of `year`, by branch and member.
pub async fn grades_of(
    conn: &impl ConnectionTrait,
    branches: &[Uuid],
    year: i32,
) -> Result<Vec<GradeRow>, DbErr> {
    if branches.is_empty() {
        return Ok(Vec::new());
    }
    GradeRow::find_by_statement(stmt(
        format!(
            "SELECT {GRADE_COLUMNS} FROM grading_members WHERE year = $1 AND branch_id IN ({}) \
             ORDER BY branch_id, member_id",
            id_list(branches)
        ),
        [year.into()],
    ))
    .all(conn)
    .await
}

/// Whether `held` (one branch's stored rows, by member) are exactly `grades` (by member).
pub fn same_grades(held: &[GradeRow], grades: &[NewGrade]) -> bool {
    held.len() == grades.len()
        && held.iter().zip(grades).all(|(h, g)| {
            h.member_id == g.member_id
                && h.base_points == g.base
                && h.bonus_points == g.bonus
                && h.deduction_points == g.deductions
                && h.evaluation_points == g.evaluation
                && h.total == g.total
                && h.proposed_grade == g.grade
                && h.reasons == serde_json::json!(g.reasons)
        })
}

/// New proposals of one branch.
#[derive(Debug, Clone)]
pub struct BranchProposals {
    pub branch_id: Uuid,
    pub branch_path: String,
    /// By member id.
    pub grades: Vec<NewGrade>,
}

/// Writes the proposals of several branches of `year`, replacing earlier ones, with one audit
/// line per branch (the caller holds the locks and has checked that each grading is still only
/// proposed, and that something changed).
pub async fn store_proposals(
    conn: &impl ConnectionTrait,
    year: i32,
    at: DateTime<Utc>,
    by: &str,
    branches: &[BranchProposals],
) -> Result<(), DbErr> {
    if branches.is_empty() {
        return Ok(());
    }
    for chunk in branches.chunks(1000) {
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 5);
        for b in chunk {
            values.extend([
                b.branch_id.into(),
                year.into(),
                b.branch_path.clone().into(),
                at.into(),
                by.to_owned().into(),
            ]);
        }
        conn.execute_raw(stmt(
            format!(
                "INSERT INTO gradings (branch_id, year, branch_path, status, computed_at, computed_by) \
                 SELECT b, y, p, 'proposed', a, c FROM (VALUES {}) AS v (b, y, p, a, c) \
                 ON CONFLICT (branch_id, year) DO UPDATE SET branch_path = EXCLUDED.branch_path, \
                 computed_at = EXCLUDED.computed_at, computed_by = EXCLUDED.computed_by",
                placeholders(chunk.len(), 5, 1)
            ),
            values,
        ))
        .await?;
        let mut audit: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 4);
        for b in chunk {
            audit.extend([
                at.into(),
                by.to_owned().into(),
                format!("grading:{}:{year}", b.branch_id).into(),
                serde_json::json!({ "members": b.grades.len() }).into(),
            ]);
        }
        conn.execute_raw(stmt(
            format!(
                "INSERT INTO audit (at, actor, action, subject, to_state, detail) \
                 SELECT a, w, 'compute', s, 'proposed', d FROM (VALUES {}) AS v (a, w, s, d)",
                placeholders(chunk.len(), 4, 1)
            ),
            audit,
        ))
        .await?;
    }
    let ids: Vec<Uuid> = branches.iter().map(|b| b.branch_id).collect();
    conn.execute_raw(stmt(
        format!(
            "DELETE FROM grading_members WHERE year = $1 AND branch_id IN ({})",
            id_list(&ids)
        ),
        [year.into()],
    ))
    .await?;
    let rows: Vec<(Uuid, &NewGrade)> = branches
        .iter()
        .flat_map(|b| b.grades.iter().map(move |g| (b.branch_id, g)))
        .collect();
    for chunk in rows.chunks(2000) {
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 10);
        for (branch_id, g) in chunk {
            values.extend([
                (*branch_id).into(),
                year.into(),
                g.member_id.into(),
                g.base.into(),
                g.bonus.into(),
                g.deductions.into(),
                g.evaluation.into(),
                g.total.into(),
                g.grade.clone().into(),
                serde_json::json!(g.reasons).into(),
            ]);
        }
        conn.execute_raw(stmt(
            format!(
                "INSERT INTO grading_members (branch_id, year, member_id, base_points, bonus_points, \
                 deduction_points, evaluation_points, total, proposed_grade, reasons) VALUES {}",
                placeholders(chunk.len(), 10, 1)
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}

/// Confirms a proposed grading: every member's grade is the proposed one unless overridden.
pub async fn confirm(
    conn: &impl ConnectionTrait,
    branch_id: Uuid,
    year: i32,
    at: DateTime<Utc>,
    by: &str,
    finalizable_at: DateTime<Utc>,
    overrides: &[(Uuid, String, String)],
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE gradings SET status = 'confirmed', confirmed_at = $3, confirmed_by = $4, \
         finalizable_at = $5 WHERE branch_id = $1 AND year = $2",
        [
            branch_id.into(),
            year.into(),
            at.into(),
            by.to_owned().into(),
            finalizable_at.into(),
        ],
    ))
    .await?;
    conn.execute_raw(stmt(
        "UPDATE grading_members SET grade = proposed_grade WHERE branch_id = $1 AND year = $2",
        [branch_id.into(), year.into()],
    ))
    .await?;
    for (member, grade, reason) in overrides {
        set_grade(conn, branch_id, year, *member, grade, Some(reason)).await?;
    }
    Ok(())
}

/// Sets one member's grade (an override at confirmation, or an appeal's change).
pub async fn set_grade(
    conn: &impl ConnectionTrait,
    branch_id: Uuid,
    year: i32,
    member_id: Uuid,
    grade: &str,
    override_reason: Option<&str>,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE grading_members SET grade = $4, \
         override_reason = COALESCE($5, override_reason) \
         WHERE branch_id = $1 AND year = $2 AND member_id = $3",
        [
            branch_id.into(),
            year.into(),
            member_id.into(),
            grade.to_owned().into(),
            override_reason.map(str::to_owned).into(),
        ],
    ))
    .await?;
    Ok(())
}

pub async fn finalize(
    conn: &impl ConnectionTrait,
    branch_id: Uuid,
    year: i32,
    at: DateTime<Utc>,
    by: &str,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE gradings SET status = 'final', finalized_at = $3, finalized_by = $4 \
         WHERE branch_id = $1 AND year = $2",
        [
            branch_id.into(),
            year.into(),
            at.into(),
            by.to_owned().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// An appeal 申诉.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct AppealRow {
    pub id: Uuid,
    pub member_id: Uuid,
    pub branch_id: Uuid,
    pub branch_path: String,
    pub year: i32,
    pub status: String,
    pub reason: String,
    pub filed_at: DateTime<Utc>,
    pub decision_reason: Option<String>,
    pub grade: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

const APPEAL_COLUMNS: &str = "id, member_id, branch_id, branch_path, year, status, reason, \
    filed_at, decision_reason, grade, decided_by, decided_at";

pub async fn insert_appeal(conn: &impl ConnectionTrait, a: &AppealRow) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO appeals (id, member_id, branch_id, branch_path, year, status, reason, filed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            a.id.into(),
            a.member_id.into(),
            a.branch_id.into(),
            a.branch_path.clone().into(),
            a.year.into(),
            a.status.clone().into(),
            a.reason.clone().into(),
            a.filed_at.into(),
        ],
    ))
    .await?;
    Ok(())
}

pub async fn find_appeal(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<AppealRow>, DbErr> {
    AppealRow::find_by_statement(stmt(
        format!("SELECT {APPEAL_COLUMNS} FROM appeals WHERE id = $1"),
        [id.into()],
    ))
    .one(conn)
    .await
}

pub async fn open_appeal_of(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    year: i32,
) -> Result<Option<AppealRow>, DbErr> {
    AppealRow::find_by_statement(stmt(
        format!(
            "SELECT {APPEAL_COLUMNS} FROM appeals WHERE member_id = $1 AND year = $2 \
             AND status = 'open'"
        ),
        [member_id.into(), year.into()],
    ))
    .one(conn)
    .await
}

pub async fn open_appeals(
    conn: &impl ConnectionTrait,
    branch_id: Uuid,
    year: i32,
) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        n: i64,
    }
    Ok(Row::find_by_statement(stmt(
        "SELECT count(*) AS n FROM appeals WHERE branch_id = $1 AND year = $2 AND status = 'open'",
        [branch_id.into(), year.into()],
    ))
    .one(conn)
    .await?
    .map_or(0, |r| r.n))
}

pub async fn decide_appeal(conn: &impl ConnectionTrait, a: &AppealRow) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE appeals SET status = $2, decision_reason = $3, grade = $4, decided_by = $5, \
         decided_at = $6 WHERE id = $1",
        [
            a.id.into(),
            a.status.clone().into(),
            a.decision_reason.clone().into(),
            a.grade.clone().into(),
            a.decided_by.clone().into(),
            a.decided_at.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// One line of the audit trail 痕迹管理.
pub struct AuditLine<'a> {
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: String,
    pub from_state: Option<&'a str>,
    pub to_state: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub detail: serde_json::Value,
}

pub async fn audit(conn: &impl ConnectionTrait, line: AuditLine<'_>) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO audit (at, actor, action, subject, from_state, to_state, reason, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            line.at.into(),
            line.actor.to_owned().into(),
            line.action.to_owned().into(),
            line.subject.into(),
            line.from_state.map(str::to_owned).into(),
            line.to_state.map(str::to_owned).into(),
            line.reason.map(str::to_owned).into(),
            line.detail.into(),
        ],
    ))
    .await?;
    Ok(())
}
