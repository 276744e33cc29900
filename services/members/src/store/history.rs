//! Transfer and sanction history of members (append-only).

use super::entities::{sanction, transfer};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _, IntoActiveModel as _,
    QueryFilter as _, QueryOrder as _,
};
use uuid::Uuid;

pub async fn insert_transfer(
    conn: &impl ConnectionTrait,
    row: transfer::Model,
) -> Result<(), DbErr> {
    transfer::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Every transfer of `member_id`, oldest first.
pub async fn transfers(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
) -> Result<Vec<transfer::Model>, DbErr> {
    transfer::Entity::find()
        .filter(transfer::Column::MemberId.eq(member_id))
        .order_by_asc(transfer::Column::Id)
        .all(conn)
        .await
}

pub async fn insert_sanction(
    conn: &impl ConnectionTrait,
    row: sanction::Model,
) -> Result<(), DbErr> {
    sanction::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Every sanction of `member_id`, oldest first.
pub async fn sanctions(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
) -> Result<Vec<sanction::Model>, DbErr> {
    sanction::Entity::find()
        .filter(sanction::Column::MemberId.eq(member_id))
        .order_by_asc(sanction::Column::Id)
        .all(conn)
        .await
}
