//! The newest published standard of each year (`declarations.standard.published.v1`), as the
//! JSON document the event carries. Only a newer version replaces the stored one.

use super::stmt;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct StandardRow {
    pub year: i32,
    pub version: i64,
    pub document: String,
}

/// Stores `row` unless a version at least as new is stored; answers whether it changed.
pub async fn upsert(conn: &impl ConnectionTrait, row: &StandardRow) -> Result<bool, DbErr> {
    let done = conn
        .execute_raw(stmt(
            "INSERT INTO standards (year, version, document) VALUES ($1, $2, $3) \
             ON CONFLICT (year) DO UPDATE SET version = EXCLUDED.version, document = EXCLUDED.document \
             WHERE standards.version < EXCLUDED.version",
            [row.year.into(), row.version.into(), row.document.clone().into()],
        ))
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn find(conn: &impl ConnectionTrait, year: i32) -> Result<Option<StandardRow>, DbErr> {
    StandardRow::find_by_statement(stmt(
        "SELECT year, version, document FROM standards WHERE year = $1",
        [year.into()],
    ))
    .one(conn)
    .await
}
