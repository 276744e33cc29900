//! Invitation codes: batches, keyed hashes, and spending.
//!
//! Invariant (anonymity): an `invitations` row is written once at issuance and never touched
//! again. Spending a code deletes its `unused_codes` row in the ballot's transaction; no row
//! that SQL can see records which ballot, or when, spent which code.

use super::{placeholders, stmt};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use uuid::Uuid;

/// What a code's hash resolves to.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct InvitationRow {
    pub round_id: Uuid,
    pub evaluator_kind: String,
    /// Not spent yet.
    pub unused: bool,
}

/// Writes a batch and its codes' hashes, all unused. A hash that exists already fails with a
/// unique violation of `invitations_pkey` (the caller draws new codes).
pub async fn insert_batch(
    conn: &impl ConnectionTrait,
    batch_id: Uuid,
    round_id: Uuid,
    kind: &str,
    hashes: &[Vec<u8>],
    issued_at: DateTime<Utc>,
    issued_by: &str,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO invitation_batches (id, round_id, evaluator_kind, count, issued_at, issued_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        [
            batch_id.into(),
            round_id.into(),
            kind.into(),
            i32::try_from(hashes.len()).unwrap_or(i32::MAX).into(),
            issued_at.into(),
            issued_by.into(),
        ],
    ))
    .await?;
    for chunk in hashes.chunks(10_000) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for h in chunk {
            values.extend([
                h.clone().into(),
                round_id.into(),
                batch_id.into(),
                kind.into(),
            ]);
        }
        conn.execute_raw(stmt(
            format!(
                "INSERT INTO invitations (code_hash, round_id, batch_id, evaluator_kind) VALUES {}",
                placeholders(chunk.len(), 4, 1)
            ),
            values,
        ))
        .await?;
    }
    conn.execute_raw(stmt(
        "INSERT INTO unused_codes (code_hash) SELECT code_hash FROM invitations WHERE batch_id = $1",
        [batch_id.into()],
    ))
    .await?;
    Ok(())
}

pub async fn find(
    conn: &impl ConnectionTrait,
    code_hash: &[u8],
) -> Result<Option<InvitationRow>, DbErr> {
    InvitationRow::find_by_statement(stmt(
        "SELECT i.round_id, i.evaluator_kind, \
                EXISTS (SELECT 1 FROM unused_codes u WHERE u.code_hash = i.code_hash) AS unused \
         FROM invitations i WHERE i.code_hash = $1",
        [code_hash.to_vec().into()],
    ))
    .one(conn)
    .await
}

/// Spends the code: `true` for exactly one of any number of concurrent callers.
pub async fn spend(conn: &impl ConnectionTrait, code_hash: &[u8]) -> Result<bool, DbErr> {
    let done = conn
        .execute_raw(stmt(
            "DELETE FROM unused_codes WHERE code_hash = $1",
            [code_hash.to_vec().into()],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}
