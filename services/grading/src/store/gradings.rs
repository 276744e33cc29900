//! Gradings of branches, their members' grades, appeals and the audit trail.

use super::{query_err, stmt, subtree_pattern};
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

// The functions below up to `store_proposals` are those of `grade_subtree` (the year-end batch
// and `ComputeGrading`): they speak sqlx directly on the transaction's connection, so thousands
// of rows go as a few array parameters (`unnest`) rather than as one parameter per column and
// row.

/// Serializes every change of the gradings of `branches` of `year` until the end of the
/// transaction (the same locks as [`lock_branch_year`], taken in id order).
pub async fn lock_branches(
    conn: &mut sqlx::PgConnection,
    branches: &[Uuid],
    year: i32,
) -> Result<(), DbErr> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(b::text, $2)) FROM \
         (SELECT unnest($1::uuid[]) AS b ORDER BY 1) s",
    )
    .bind(branches)
    .bind(i64::from(year))
    .execute(conn)
    .await
    .map_err(query_err)?;
    Ok(())
}

/// The status of each of `branches`' gradings of `year` that exists.
pub async fn statuses(
    conn: &mut sqlx::PgConnection,
    branches: &[Uuid],
    year: i32,
) -> Result<std::collections::HashMap<Uuid, String>, DbErr> {
    sqlx::query_as::<_, (Uuid, String)>(
        "SELECT branch_id, status FROM gradings WHERE year = $1 AND branch_id = ANY($2)",
    )
    .bind(year)
    .bind(branches)
    .fetch_all(conn)
    .await
    .map(|rows| rows.into_iter().collect())
    .map_err(query_err)
}

/// The member rows of `branches`' gradings of `year`, by branch and member.
pub async fn grades_of(
    conn: &mut sqlx::PgConnection,
    branches: &[Uuid],
    year: i32,
) -> Result<Vec<GradeRow>, DbErr> {
    use sqlx::Row as _;
    let rows = sqlx::query(
        "SELECT branch_id, year, member_id, base_points, bonus_points, deduction_points, \
         evaluation_points, total, proposed_grade, grade, reasons, override_reason \
         FROM grading_members WHERE year = $1 AND branch_id = ANY($2) \
         ORDER BY branch_id, member_id",
    )
    .bind(year)
    .bind(branches)
    .fetch_all(conn)
    .await
    .map_err(query_err)?;
    rows.iter()
        .map(|r| {
            Ok(GradeRow {
                branch_id: r.try_get(0)?,
                year: r.try_get(1)?,
                member_id: r.try_get(2)?,
                base_points: r.try_get(3)?,
                bonus_points: r.try_get(4)?,
                deduction_points: r.try_get(5)?,
                evaluation_points: r.try_get(6)?,
                total: r.try_get(7)?,
                proposed_grade: r.try_get(8)?,
                grade: r.try_get(9)?,
                reasons: r.try_get(10)?,
                override_reason: r.try_get(11)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(query_err)
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
    conn: &mut sqlx::PgConnection,
    year: i32,
    at: DateTime<Utc>,
    by: &str,
    branches: &[BranchProposals],
) -> Result<(), DbErr> {
    if branches.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = branches.iter().map(|b| b.branch_id).collect();
    let paths: Vec<&str> = branches.iter().map(|b| b.branch_path.as_str()).collect();
    sqlx::query(
        "INSERT INTO gradings (branch_id, year, branch_path, status, computed_at, computed_by) \
         SELECT b, $1, p, 'proposed', $2, $3 FROM unnest($4::uuid[], $5::text[]) AS v (b, p) \
         ON CONFLICT (branch_id, year) DO UPDATE SET branch_path = EXCLUDED.branch_path, \
         computed_at = EXCLUDED.computed_at, computed_by = EXCLUDED.computed_by",
    )
    .bind(year)
    .bind(at)
    .bind(by)
    .bind(&ids)
    .bind(&paths)
    .execute(&mut *conn)
    .await
    .map_err(query_err)?;
    let subjects: Vec<String> = ids
        .iter()
        .map(|id| format!("grading:{id}:{year}"))
        .collect();
    let members: Vec<i32> = branches
        .iter()
        .map(|b| i32::try_from(b.grades.len()).unwrap_or(i32::MAX))
        .collect();
    sqlx::query(
        "INSERT INTO audit (at, actor, action, subject, to_state, detail) \
         SELECT $1, $2, 'compute', s, 'proposed', jsonb_build_object('members', n) \
         FROM unnest($3::text[], $4::int4[]) AS v (s, n)",
    )
    .bind(at)
    .bind(by)
    .bind(&subjects)
    .bind(&members)
    .execute(&mut *conn)
    .await
    .map_err(query_err)?;
    sqlx::query("DELETE FROM grading_members WHERE year = $1 AND branch_id = ANY($2)")
        .bind(year)
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .map_err(query_err)?;
    let mut columns = GradeColumns::with_capacity(branches.iter().map(|b| b.grades.len()).sum());
    for b in branches {
        for g in &b.grades {
            columns.push(b.branch_id, g)?;
        }
    }
    sqlx::query(
        "INSERT INTO grading_members (branch_id, year, member_id, base_points, bonus_points, \
         deduction_points, evaluation_points, total, proposed_grade, reasons) \
         SELECT b, $1, m, base, bonus, d, e, t, g, r::jsonb FROM unnest($2::uuid[], $3::uuid[], \
         $4::int4[], $5::int4[], $6::int4[], $7::int4[], $8::int4[], $9::text[], $10::text[]) \
         AS v (b, m, base, bonus, d, e, t, g, r)",
    )
    .bind(year)
    .bind(&columns.branch)
    .bind(&columns.member)
    .bind(&columns.base)
    .bind(&columns.bonus)
    .bind(&columns.deductions)
    .bind(&columns.evaluation)
    .bind(&columns.total)
    .bind(&columns.grade)
    .bind(&columns.reasons)
    .execute(&mut *conn)
    .await
    .map_err(query_err)?;
    Ok(())
}

/// Member rows of proposals as one vector per column, for `unnest`.
struct GradeColumns<'a> {
    branch: Vec<Uuid>,
    member: Vec<Uuid>,
    base: Vec<i32>,
    bonus: Vec<i32>,
    deductions: Vec<i32>,
    evaluation: Vec<i32>,
    total: Vec<i32>,
    grade: Vec<&'a str>,
    /// JSON arrays of reason codes (made jsonb by PostgreSQL).
    reasons: Vec<String>,
}

impl<'a> GradeColumns<'a> {
    fn with_capacity(rows: usize) -> Self {
        Self {
            branch: Vec::with_capacity(rows),
            member: Vec::with_capacity(rows),
            base: Vec::with_capacity(rows),
            bonus: Vec::with_capacity(rows),
            deductions: Vec::with_capacity(rows),
            evaluation: Vec::with_capacity(rows),
            total: Vec::with_capacity(rows),
            grade: Vec::with_capacity(rows),
            reasons: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, branch_id: Uuid, g: &'a NewGrade) -> Result<(), DbErr> {
        self.branch.push(branch_id);
        self.member.push(g.member_id);
        self.base.push(g.base);
        self.bonus.push(g.bonus);
        self.deductions.push(g.deductions);
        self.evaluation.push(g.evaluation);
        self.total.push(g.total);
        self.grade.push(&g.grade);
        self.reasons.push(
            serde_json::to_string(&g.reasons)
                .map_err(|e| DbErr::Custom(format!("reason codes as JSON: {e}")))?,
        );
        Ok(())
    }
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
