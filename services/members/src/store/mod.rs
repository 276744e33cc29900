//! The only module that speaks SQL: sea-orm entities and queries over the members tables.
//!
//! Every function takes `&impl ConnectionTrait`, so the caller decides the transaction. Rows come
//! back as entity models (enum columns as text, personal data as ciphertext); the use-cases turn
//! them into domain values.

pub mod accounts;
pub mod audit;
pub mod demo;
pub mod entities;
pub mod history;
pub mod members;
pub mod orgs;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, SqlErr, Statement};

/// Key of the advisory lock that serializes start-up work (migrations, bootstrap) between
/// instances starting at the same time on one database ("jifen-members" as an integer).
pub(crate) const STARTUP_LOCK_KEY: i64 = 0x6a69_6665_6e2d_6d62;

/// Takes the start-up advisory lock until the end of the caller's transaction.
pub async fn lock_startup(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [STARTUP_LOCK_KEY.into()],
    ))
    .await?;
    Ok(())
}

/// Whether `error` is a unique violation of the constraint or index named `constraint`.
pub fn is_unique_violation(error: &DbErr, constraint: &str) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(message)) if message.contains(constraint))
}
