//! Accounts (login name, argon2id hash, optional member) and their role grants.

use super::entities::{account, organization, role_grant};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _, IntoActiveModel as _,
    QueryFilter as _, QueryOrder as _,
};
use uuid::Uuid;

/// A role grant with the current path of its organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantWithPath {
    pub role: String,
    pub org_id: Uuid,
    pub org_path: String,
}

pub async fn insert(conn: &impl ConnectionTrait, row: account::Model) -> Result<(), DbErr> {
    account::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find_by_id(id).one(conn).await
}

pub async fn find_by_username(
    conn: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find()
        .filter(account::Column::Username.eq(username))
        .one(conn)
        .await
}

pub async fn find_by_member(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find()
        .filter(account::Column::MemberId.eq(member_id))
        .one(conn)
        .await
}

/// Adds a grant unless the same (account, org, role) exists; returns whether it was added.
pub async fn grant(conn: &impl ConnectionTrait, row: role_grant::Model) -> Result<bool, DbErr> {
    let inserted = role_grant::Entity::insert(row.into_active_model())
        .on_conflict_do_nothing_on([
            role_grant::Column::AccountId,
            role_grant::Column::OrgId,
            role_grant::Column::Role,
        ])
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0))
}

/// Bumps the account's version (a grant changed it).
pub async fn touch(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(
            account::Column::Version,
            Expr::col(account::Column::Version).add(1),
        )
        .col_expr(account::Column::UpdatedAt, Expr::current_timestamp())
        .filter(account::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The grants of `account_id` with their organizations' paths, oldest first.
pub async fn grants(
    conn: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<Vec<GrantWithPath>, DbErr> {
    let grants = role_grant::Entity::find()
        .filter(role_grant::Column::AccountId.eq(account_id))
        .order_by_asc(role_grant::Column::GrantedAt)
        .order_by_asc(role_grant::Column::Id)
        .all(conn)
        .await?;
    let org_ids: Vec<Uuid> = grants.iter().map(|g| g.org_id).collect();
    let orgs = super::orgs::find_many(conn, &org_ids).await?;
    let path_of = |id: Uuid| {
        orgs.iter()
            .find(|o: &&organization::Model| o.id == id)
            .map(|o| o.path.clone())
    };
    Ok(grants
        .into_iter()
        .filter_map(|g| {
            path_of(g.org_id).map(|org_path| GrantWithPath {
                role: g.role,
                org_id: g.org_id,
                org_path,
            })
        })
        .collect())
}
