//! The local replica of the members service: organizations and members, fed by `members.*`
//! events. An upsert applies only a newer version, so redelivered or reordered events change
//! nothing (DESIGN.md §4).

use super::stmt;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use uuid::Uuid;

/// An organization as the replica holds it.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct OrgRow {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub kind: String,
    pub path: String,
    pub version: i64,
}

/// A member as the replica holds it (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct MemberRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub org_path: String,
    pub name: String,
    pub category: String,
    pub status: String,
    pub version: i64,
}

/// Inserts or, when `row.version` is newer, replaces; answers whether the row changed.
pub async fn upsert_org(conn: &impl ConnectionTrait, row: &OrgRow) -> Result<bool, DbErr> {
    let done = conn
        .execute_raw(stmt(
            "INSERT INTO replica_organizations (id, parent_id, name, kind, path, version) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET parent_id = EXCLUDED.parent_id, name = EXCLUDED.name, \
             kind = EXCLUDED.kind, path = EXCLUDED.path, version = EXCLUDED.version \
             WHERE replica_organizations.version < EXCLUDED.version",
            [
                row.id.into(),
                row.parent_id.into(),
                row.name.clone().into(),
                row.kind.clone().into(),
                row.path.clone().into(),
                row.version.into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Inserts or, when `row.version` is newer, replaces; answers whether the row changed.
pub async fn upsert_member(conn: &impl ConnectionTrait, row: &MemberRow) -> Result<bool, DbErr> {
    let done = conn
        .execute_raw(stmt(
            "INSERT INTO replica_members (id, org_id, org_path, name, category, status, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET org_id = EXCLUDED.org_id, org_path = EXCLUDED.org_path, \
             name = EXCLUDED.name, category = EXCLUDED.category, status = EXCLUDED.status, \
             version = EXCLUDED.version \
             WHERE replica_members.version < EXCLUDED.version",
            [
                row.id.into(),
                row.org_id.into(),
                row.org_path.clone().into(),
                row.name.clone().into(),
                row.category.clone().into(),
                row.status.clone().into(),
                row.version.into(),
            ],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn find_org(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<OrgRow>, DbErr> {
    OrgRow::find_by_statement(stmt(
        "SELECT id, parent_id, name, kind, path, version FROM replica_organizations WHERE id = $1",
        [id.into()],
    ))
    .one(conn)
    .await
}

/// Active members anywhere in the subtree at `path` (a branch and its groups), by name then id.
pub async fn active_members_under(
    conn: &impl ConnectionTrait,
    path: &str,
) -> Result<Vec<MemberRow>, DbErr> {
    MemberRow::find_by_statement(stmt(
        "SELECT id, org_id, org_path, name, category, status, version FROM replica_members \
         WHERE status = 'active' AND starts_with(org_path, $1) ORDER BY name, id",
        [path.into()],
    ))
    .all(conn)
    .await
}

pub async fn find_member(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<MemberRow>, DbErr> {
    MemberRow::find_by_statement(stmt(
        "SELECT id, org_id, org_path, name, category, status, version FROM replica_members WHERE id = $1",
        [id.into()],
    ))
    .one(conn)
    .await
}
