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

/// Whether another member (not `except`) has the ID card with one of the keyed hashes `hashes`
/// (one per key, during a key rotation).
pub async fn id_card_taken(
    conn: &impl ConnectionTrait,
    hashes: &[Vec<u8>],
    except: Option<Uuid>,
) -> Result<bool, DbErr> {
    let mut q =
        member::Entity::find().filter(member::Column::IdCardHash.is_in(hashes.iter().cloned()));
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

/// The personal data of a member as stored, for rewriting under a new key.
#[derive(Debug, sea_orm::FromQueryResult)]
pub struct StoredPii {
    pub id: Uuid,
    pub phone_cipher: Option<Vec<u8>>,
    pub id_card_cipher: Option<Vec<u8>>,
}

/// Up to `limit` members after `after` (by id) with a phone or an ID card not stored under the
/// key whose values start with `current_prefix`, locked for update (others are skipped, and
/// found again by the next pass).
pub async fn stale_pii(
    conn: &impl ConnectionTrait,
    current_prefix: &[u8],
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<StoredPii>, DbErr> {
    use sea_orm::FromQueryResult as _;
    let prefix_len = i32::try_from(current_prefix.len()).unwrap_or(i32::MAX);
    StoredPii::find_by_statement(sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT id, phone_cipher, id_card_cipher FROM members \
         WHERE ($3::uuid IS NULL OR id > $3) \
           AND ((phone_cipher IS NOT NULL AND substring(phone_cipher FROM 1 FOR $2) <> $1) \
             OR (id_card_cipher IS NOT NULL AND substring(id_card_cipher FROM 1 FOR $2) <> $1)) \
         ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED",
        [
            current_prefix.to_vec().into(),
            prefix_len.into(),
            after.into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ],
    ))
    .all(conn)
    .await
}

/// How many members have a phone or an ID card not stored under the key whose values start
/// with `current_prefix`.
pub async fn count_stale_pii(
    conn: &impl ConnectionTrait,
    current_prefix: &[u8],
) -> Result<u64, DbErr> {
    let prefix_len = i32::try_from(current_prefix.len()).unwrap_or(i32::MAX);
    let row = conn
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM members \
             WHERE (phone_cipher IS NOT NULL AND substring(phone_cipher FROM 1 FOR $2) <> $1) \
                OR (id_card_cipher IS NOT NULL AND substring(id_card_cipher FROM 1 FOR $2) <> $1)",
            [current_prefix.to_vec().into(), prefix_len.into()],
        ))
        .await?;
    let n: i64 = match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// One personal value as stored: its ciphertext and its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPii {
    pub cipher: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Stores a member's personal data rewritten under the current key (ciphertexts and hashes);
/// nothing else of the row changes.
pub async fn rewrite_pii(
    conn: &impl ConnectionTrait,
    id: Uuid,
    phone: Option<SealedPii>,
    id_card: Option<SealedPii>,
) -> Result<(), DbErr> {
    let (phone_cipher, phone_hash) = phone.map(|s| (s.cipher, s.hash)).unzip();
    let (id_card_cipher, id_card_hash) = id_card.map(|s| (s.cipher, s.hash)).unzip();
    conn.execute_raw(sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "UPDATE members SET phone_cipher = $2, phone_hash = $3, id_card_cipher = $4, id_card_hash = $5 WHERE id = $1",
        [
            id.into(),
            phone_cipher.into(),
            phone_hash.into(),
            id_card_cipher.into(),
            id_card_hash.into(),
        ],
    ))
    .await?;
    Ok(())
}
