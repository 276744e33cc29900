//! The projections fed by events. Every write applies only a newer version of its source
//! aggregate (organization, member, standard, declaration, branch record, round), so a
//! redelivered, replayed or reordered event changes nothing (DESIGN.md §4).

use super::{dashboard, stmt};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use uuid::Uuid;

/// An organization as the projection holds it.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct OrgRow {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub kind: String,
    pub unit_type: String,
    pub path: String,
    pub version: i64,
}

/// A member as the projection holds it.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct MemberRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub org_path: String,
    pub name: String,
    pub category: String,
    pub status: String,
    pub exempt: bool,
    /// `[{"kind", "decided_on"}]`.
    pub sanctions: serde_json::Value,
    pub version: i64,
}

/// Inserts or, when `row.version` is newer, replaces.
pub async fn upsert_org(conn: &impl ConnectionTrait, row: &OrgRow) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO organizations (id, parent_id, name, kind, unit_type, path, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET parent_id = EXCLUDED.parent_id, name = EXCLUDED.name, \
         kind = EXCLUDED.kind, unit_type = EXCLUDED.unit_type, path = EXCLUDED.path, \
         version = EXCLUDED.version WHERE organizations.version < EXCLUDED.version",
        [
            row.id.into(),
            row.parent_id.into(),
            row.name.clone().into(),
            row.kind.clone().into(),
            row.unit_type.clone().into(),
            row.path.clone().into(),
            row.version.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Inserts or, when `row.version` is newer, replaces.
pub async fn upsert_member(conn: &impl ConnectionTrait, row: &MemberRow) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO members (id, org_id, org_path, name, category, status, exempt, sanctions, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO UPDATE SET org_id = EXCLUDED.org_id, org_path = EXCLUDED.org_path, \
         name = EXCLUDED.name, category = EXCLUDED.category, status = EXCLUDED.status, \
         exempt = EXCLUDED.exempt, sanctions = EXCLUDED.sanctions, version = EXCLUDED.version \
         WHERE members.version < EXCLUDED.version",
        [
            row.id.into(),
            row.org_id.into(),
            row.org_path.clone().into(),
            row.name.clone().into(),
            row.category.clone().into(),
            row.status.clone().into(),
            row.exempt.into(),
            row.sanctions.clone().into(),
            row.version.into(),
        ],
    ))
    .await?;
    Ok(())
}

pub async fn find_org(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<OrgRow>, DbErr> {
    OrgRow::find_by_statement(stmt(
        "SELECT id, parent_id, name, kind, unit_type, path, version FROM organizations WHERE id = $1",
        [id.into()],
    ))
    .one(conn)
    .await
}

pub async fn find_member(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<MemberRow>, DbErr> {
    MemberRow::find_by_statement(stmt(
        "SELECT id, org_id, org_path, name, category, status, exempt, sanctions, version \
         FROM members WHERE id = $1",
        [id.into()],
    ))
    .one(conn)
    .await
}

/// The root organizations (without a parent).
pub async fn roots(conn: &impl ConnectionTrait) -> Result<Vec<Uuid>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        id: Uuid,
    }
    Ok(Row::find_by_statement(stmt(
        "SELECT id FROM organizations WHERE parent_id IS NULL ORDER BY id",
        [],
    ))
    .all(conn)
    .await?
    .into_iter()
    .map(|r| r.id)
    .collect())
}

/// The branches (党支部) of the subtree of `path` (itself included), in the byte order of their
/// paths (so consecutive branches hold a contiguous range of member paths).
pub async fn branches_under(conn: &impl ConnectionTrait, path: &str) -> Result<Vec<OrgRow>, DbErr> {
    let pattern = super::subtree_pattern(path)?;
    OrgRow::find_by_statement(stmt(
        format!(
            "SELECT id, parent_id, name, kind, unit_type, path, version FROM organizations \
             WHERE kind = 'branch' AND path LIKE {pattern} ORDER BY path COLLATE \"C\""
        ),
        [],
    ))
    .all(conn)
    .await
}

/// Every organization of the subtree of `path` (itself included): a city has a few thousand,
/// which the ledger export holds to name each member's organization and find its unit type.
pub async fn orgs_under(conn: &impl ConnectionTrait, path: &str) -> Result<Vec<OrgRow>, DbErr> {
    let pattern = super::subtree_pattern(path)?;
    OrgRow::find_by_statement(stmt(
        format!(
            "SELECT id, parent_id, name, kind, unit_type, path, version FROM organizations \
             WHERE path LIKE {pattern}"
        ),
        [],
    ))
    .all(conn)
    .await
}

/// The newest standard document of `year` (JSON), if one was published.
pub async fn standard_document(
    conn: &impl ConnectionTrait,
    year: i32,
) -> Result<Option<(i64, String)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        version: i64,
        document: String,
    }
    Ok(Row::find_by_statement(stmt(
        "SELECT version, document FROM standards WHERE year = $1",
        [year.into()],
    ))
    .one(conn)
    .await?
    .map(|r| (r.version, r.document)))
}

/// Stores a newer standard; answers whether it replaced anything.
pub async fn upsert_standard(
    conn: &impl ConnectionTrait,
    year: i32,
    version: i64,
    document: &str,
) -> Result<bool, DbErr> {
    let done = conn
        .execute_raw(stmt(
            "INSERT INTO standards (year, version, document) VALUES ($1, $2, $3) \
             ON CONFLICT (year) DO UPDATE SET version = EXCLUDED.version, document = EXCLUDED.document \
             WHERE standards.version < EXCLUDED.version",
            [year.into(), version.into(), document.to_owned().into()],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Records `version` of the source aggregate `id` when it is newer than the one held; answers
/// whether the caller should apply it (false: stale or repeated).
pub async fn advance_source(
    conn: &impl ConnectionTrait,
    id: Uuid,
    kind: &str,
    member_id: Uuid,
    version: i64,
) -> Result<bool, DbErr> {
    let done = conn
        .execute_raw(stmt(
            "INSERT INTO source_versions (id, kind, member_id, version) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, member_id = EXCLUDED.member_id \
             WHERE source_versions.version < EXCLUDED.version",
            [id.into(), kind.to_owned().into(), member_id.into(), version.into()],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One ledger row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub member_id: Uuid,
    pub year: i32,
    pub month: u32,
    pub source: &'static str,
    pub line: i16,
    pub item_code: String,
    pub points: i32,
    pub note: String,
}

/// Replaces the ledger rows of the source `reference` of `member_id` in `year` by `entries`
/// (none: the source no longer counts — a declaration not approved, a revoked record), and
/// rewrites the member's `member_years` row and the dashboard's rollup of every month whose
/// rows changed and of the months `also` (docs/decisions/0018-dashboard-rollup.md).
pub async fn replace_entries(
    conn: &impl ConnectionTrait,
    reference: Uuid,
    member_id: Uuid,
    year: i32,
    entries: &[NewEntry],
    also: &[dashboard::MemberMonth],
) -> Result<(), DbErr> {
    #[derive(FromQueryResult)]
    struct Removed {
        member_id: Uuid,
        year: i16,
        month: i16,
    }
    lock_member(conn, member_id).await?;
    let removed = Removed::find_by_statement(stmt(
        "DELETE FROM ledger_entries WHERE ref = $1 RETURNING member_id, year, month",
        [reference.into()],
    ))
    .all(conn)
    .await?;
    if !entries.is_empty() {
        insert_entries(conn, reference, entries).await?;
    }
    refresh_member_year(conn, member_id, year).await?;
    let months: std::collections::BTreeSet<dashboard::MemberMonth> = removed
        .into_iter()
        .map(|r| dashboard::MemberMonth {
            member_id: r.member_id,
            year: i32::from(r.year),
            month: u32::try_from(r.month).unwrap_or(0),
        })
        .chain(entries.iter().map(|e| dashboard::MemberMonth {
            member_id: e.member_id,
            year: e.year,
            month: e.month,
        }))
        .chain(also.iter().copied())
        .collect();
    for at in months {
        if at.member_id != member_id {
            lock_member(conn, at.member_id).await?;
        }
        dashboard::refresh_member_month(conn, at).await?;
    }
    Ok(())
}

/// Serializes the changes of one member's projection (ledger, packed years, quarters, the
/// dashboard's rollup, the member's own row) until the end of the transaction: events of the
/// same member applied at the same time would otherwise each rewrite `member_years` or the
/// rollup from a snapshot without the other's changes. (Read committed: the statements after
/// the lock see what the transaction that held it committed.) Taken first, before any row of
/// the member is written, so two transactions never wait on each other the other way round.
pub async fn lock_member(conn: &impl ConnectionTrait, member_id: Uuid) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "SELECT pg_advisory_xact_lock(hashtextextended('member:' || $1::text, 0))",
        [member_id.into()],
    ))
    .await?;
    Ok(())
}

/// Rewrites the packed entries of `member_id`'s `year` from `ledger_entries` (the layout of the
/// `member_year_entry` SQL function, in `ref, line` order).
async fn refresh_member_year(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    year: i32,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO member_years (member_id, year, entries) \
         SELECT $1, $2, coalesce(string_agg(member_year_entry(month, source = 'branch', points, \
         item_code), '' ORDER BY ref, line), '') \
         FROM ledger_entries WHERE member_id = $1 AND year = $2 \
         ON CONFLICT (member_id, year) DO UPDATE SET entries = EXCLUDED.entries",
        [
            member_id.into(),
            i16::try_from(year).unwrap_or(i16::MAX).into(),
        ],
    ))
    .await?;
    Ok(())
}

async fn insert_entries(
    conn: &impl ConnectionTrait,
    reference: Uuid,
    entries: &[NewEntry],
) -> Result<(), DbErr> {
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(entries.len() * 9);
    for e in entries {
        values.extend([
            e.member_id.into(),
            i16::try_from(e.year).unwrap_or(i16::MAX).into(),
            i16::try_from(e.month).unwrap_or(i16::MAX).into(),
            e.source.to_owned().into(),
            reference.into(),
            e.line.into(),
            e.item_code.clone().into(),
            e.points.into(),
            e.note.clone().into(),
        ]);
    }
    conn.execute_raw(stmt(
        format!(
            "INSERT INTO ledger_entries (member_id, year, month, source, ref, line, item_code, \
             points, note) VALUES {}",
            super::placeholders(entries.len(), 9, 1)
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// Records `version` of round `id`; answers whether it is the one held or newer. An event of
/// the version held carries the state already applied, so applying it again changes nothing
/// but what an older projection did not keep (the exact sums, filled by a republication of the
/// rounds); an older version is refused.
pub async fn advance_round(
    conn: &impl ConnectionTrait,
    id: Uuid,
    org_id: Uuid,
    quarter: &str,
    version: i64,
) -> Result<bool, DbErr> {
    let done = conn
        .execute_raw(stmt(
            "INSERT INTO rounds (id, org_id, quarter, version) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version \
             WHERE rounds.version <= EXCLUDED.version",
            [
                id.into(),
                org_id.into(),
                quarter.to_owned().into(),
                version.into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One member's result in a closed round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuarterResult {
    pub member_id: Uuid,
    pub score: Option<i32>,
    /// Sum of the ballots' rating scores in tenths (the exact mean is `score_total / ballots`).
    pub score_total: Option<i64>,
    pub ballots: i32,
    pub poor_ballots: i32,
    pub valid: bool,
}

/// Replaces the results of round `round_id` (a closed round of `year`'s `quarter`).
pub async fn replace_quarter_results(
    conn: &impl ConnectionTrait,
    round_id: Uuid,
    year: i32,
    quarter: u32,
    closed_at: chrono::DateTime<chrono::Utc>,
    results: &[NewQuarterResult],
) -> Result<(), DbErr> {
    // The members whose quarters change: those of the results held and of the new ones, locked
    // in id order (as `replace_entries` locks one) before anything is read.
    #[derive(FromQueryResult)]
    struct Held {
        member_id: Uuid,
    }
    let mut members: Vec<Uuid> = Held::find_by_statement(stmt(
        "SELECT member_id FROM quarter_results WHERE round_id = $1",
        [round_id.into()],
    ))
    .all(conn)
    .await?
    .into_iter()
    .map(|h| h.member_id)
    .chain(results.iter().map(|r| r.member_id))
    .collect();
    members.sort();
    members.dedup();
    for member in &members {
        lock_member(conn, *member).await?;
    }
    conn.execute_raw(stmt(
        "DELETE FROM quarter_results WHERE round_id = $1",
        [round_id.into()],
    ))
    .await?;
    for r in results {
        conn.execute_raw(stmt(
            "INSERT INTO quarter_results (member_id, round_id, year, quarter, closed_at, score, \
             ballots, poor_ballots, valid, score_total) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [
                r.member_id.into(),
                round_id.into(),
                i16::try_from(year).unwrap_or(i16::MAX).into(),
                i16::try_from(quarter).unwrap_or(i16::MAX).into(),
                closed_at.into(),
                r.score.into(),
                r.ballots.into(),
                r.poor_ballots.into(),
                r.valid.into(),
                r.score_total.into(),
            ],
        ))
        .await?;
    }
    for member in members {
        conn.execute_raw(stmt(
            "INSERT INTO member_years (member_id, year, quarters) \
             SELECT $1, $2, coalesce(string_agg(member_year_quarter(quarter, closed_at, round_id, \
             score, ballots, poor_ballots, valid, score_total), '' ORDER BY round_id), '') \
             FROM quarter_results WHERE member_id = $1 AND year = $2 \
             ON CONFLICT (member_id, year) DO UPDATE SET quarters = EXCLUDED.quarters",
            [
                member.into(),
                i16::try_from(year).unwrap_or(i16::MAX).into(),
            ],
        ))
        .await?;
    }
    Ok(())
}
