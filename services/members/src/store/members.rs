//! Members rows. Personal data is stored only as ciphertext plus keyed hash.

use super::entities::{account, member};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _,
    IntoActiveModel as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Rows per multi-row INSERT (well under PostgreSQL's 65 535 bind parameters).
const INSERT_CHUNK: usize = 500;

/// Where to list members.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Members of exactly this organization.
    Org(Uuid),
    /// Members anywhere in the subtree with this path.
    Subtree(&'a str),
}

pub async fn insert(conn: &impl ConnectionTrait, row: member::Model) -> Result<(), DbErr> {
    member::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Inserts many rows with multi-row INSERTs.
pub async fn insert_many(
    conn: &impl ConnectionTrait,
    rows: Vec<member::Model>,
) -> Result<(), DbErr> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows
            .by_ref()
            .take(INSERT_CHUNK)
            .map(|r| r.into_active_model())
            .collect();
        member::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<member::Model>, DbErr> {
    member::Entity::find_by_id(id).one(conn).await
}

/// The member row locked until the end of the caller's transaction.
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<member::Model>, DbErr> {
    member::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await
}

/// Writes every column of `row` (found by id).
pub async fn update(conn: &impl ConnectionTrait, row: member::Model) -> Result<(), DbErr> {
    row.into_active_model().reset_all().update(conn).await?;
    Ok(())
}

/// Up to `limit` members in `scope` with ids after `after`, ordered by id.
pub async fn list(
    conn: &impl ConnectionTrait,
    scope: Scope<'_>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<member::Model>, DbErr> {
    let mut q = member::Entity::find();
    q = match scope {
        Scope::Org(id) => q.filter(member::Column::OrgId.eq(id)),
        Scope::Subtree(path) => q.filter(member::Column::OrgPath.starts_with(path)),
    };
    if let Some(after) = after {
        q = q.filter(member::Column::Id.gt(after));
    }
    q.order_by_asc(member::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// The organization of member `id`, if the member exists.
pub async fn org_of(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<Uuid>, DbErr> {
    Ok(find(conn, id).await?.map(|m| m.org_id))
}

/// Whether another member (not `except`) has the ID card with keyed hash `hash`.
pub async fn id_card_taken(
    conn: &impl ConnectionTrait,
    hash: &[u8],
    except: Option<Uuid>,
) -> Result<bool, DbErr> {
    let mut q = member::Entity::find().filter(member::Column::IdCardHash.eq(hash.to_vec()));
    if let Some(id) = except {
        q = q.filter(member::Column::Id.ne(id));
    }
    Ok(q.one(conn).await?.is_some())
}

/// Which of `hashes` are already some member's ID card hash.
pub async fn taken_id_card_hashes(
    conn: &impl ConnectionTrait,
    hashes: &[Vec<u8>],
) -> Result<HashSet<Vec<u8>>, DbErr> {
    let mut taken = HashSet::new();
    for chunk in hashes.chunks(1000) {
        let rows = member::Entity::find()
            .filter(member::Column::IdCardHash.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?;
        taken.extend(rows.into_iter().filter_map(|r| r.id_card_hash));
    }
    Ok(taken)
}

/// The usernames of the accounts linked to `member_ids`.
pub async fn usernames(
    conn: &impl ConnectionTrait,
    member_ids: &[Uuid],
) -> Result<HashMap<Uuid, String>, DbErr> {
    if member_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = account::Entity::find()
        .filter(account::Column::MemberId.is_in(member_ids.iter().copied()))
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|a| a.member_id.map(|m| (m, a.username)))
        .collect())
}
