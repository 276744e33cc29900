//! Organizations, and their active-member counts over a subtree.

use super::entities::organization;
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DbBackend, DbErr, EntityTrait as _, FromQueryResult,
    IntoActiveModel as _, QueryFilter as _, Statement,
};
use uuid::Uuid;

/// An organization with the number of active members in its subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgWithCount {
    pub org: organization::Model,
    pub member_count: i64,
}

#[derive(Debug, FromQueryResult)]
struct OrgCountRow {
    id: Uuid,
    parent_id: Option<Uuid>,
    name: String,
    kind: String,
    unit_type: String,
    path: String,
    version: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    member_count: i64,
}

impl From<OrgCountRow> for OrgWithCount {
    fn from(r: OrgCountRow) -> Self {
        Self {
            org: organization::Model {
                id: r.id,
                parent_id: r.parent_id,
                name: r.name,
                kind: r.kind,
                unit_type: r.unit_type,
                path: r.path,
                version: r.version,
                created_at: r.created_at,
                updated_at: r.updated_at,
            },
            member_count: r.member_count,
        }
    }
}

const WITH_COUNT: &str = "SELECT o.id, o.parent_id, o.name, o.kind, o.unit_type, o.path, o.version, \
     o.created_at, o.updated_at, \
     (SELECT count(*) FROM members m WHERE m.status = 'active' AND m.org_path LIKE o.path || '%') AS member_count \
     FROM organizations o";

pub async fn insert(conn: &impl ConnectionTrait, org: organization::Model) -> Result<(), DbErr> {
    organization::Entity::insert(org.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn find(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<organization::Model>, DbErr> {
    organization::Entity::find_by_id(id).one(conn).await
}

/// Organizations by id (missing ids are simply absent).
pub async fn find_many(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<organization::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    organization::Entity::find()
        .filter(organization::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await
}

/// The root organization (the only one without a parent).
pub async fn root(conn: &impl ConnectionTrait) -> Result<Option<organization::Model>, DbErr> {
    organization::Entity::find()
        .filter(organization::Column::ParentId.is_null())
        .one(conn)
        .await
}

pub async fn find_with_count(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<OrgWithCount>, DbErr> {
    let row = OrgCountRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("{WITH_COUNT} WHERE o.id = $1"),
        [id.into()],
    ))
    .one(conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Up to `limit` children of `parent_id` with ids after `after`, ordered by id.
pub async fn children_with_count(
    conn: &impl ConnectionTrait,
    parent_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<OrgWithCount>, DbErr> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = OrgCountRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("{WITH_COUNT} WHERE o.parent_id = $1 AND ($2::uuid IS NULL OR o.id > $2) ORDER BY o.id LIMIT $3"),
        [parent_id.into(), after.into(), limit.into()],
    ))
    .all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}
