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
    // From the hashes themselves: `invitations` has no index on `batch_id`.
    for chunk in hashes.chunks(30_000) {
        conn.execute_raw(stmt(
            format!(
                "INSERT INTO unused_codes (code_hash) VALUES {}",
                placeholders(chunk.len(), 1, 1)
            ),
            chunk.iter().map(|h| Value::from(h.clone())),
        ))
        .await?;
    }
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

/// The invitations of `code_hashes` that exist, each with its hash.
pub async fn find_many(
    conn: &impl ConnectionTrait,
    code_hashes: &[&[u8]],
) -> Result<Vec<(Vec<u8>, InvitationRow)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        code_hash: Vec<u8>,
        round_id: Uuid,
        evaluator_kind: String,
        unused: bool,
    }
    let mut out = Vec::with_capacity(code_hashes.len());
    for chunk in code_hashes.chunks(10_000) {
        let rows = Row::find_by_statement(stmt(
            format!(
                "SELECT i.code_hash, i.round_id, i.evaluator_kind, \
                        EXISTS (SELECT 1 FROM unused_codes u WHERE u.code_hash = i.code_hash) AS unused \
                 FROM invitations i WHERE i.code_hash IN {}",
                in_list(chunk.len())
            ),
            chunk.iter().map(|h| Value::from(h.to_vec())),
        ))
        .all(conn)
        .await?;
        out.extend(rows.into_iter().map(|r| {
            (
                r.code_hash,
                InvitationRow {
                    round_id: r.round_id,
                    evaluator_kind: r.evaluator_kind,
                    unused: r.unused,
                },
            )
        }));
    }
    Ok(out)
}

/// `($1, $2, …, $n)`.
fn in_list(n: usize) -> String {
    let items: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!("({})", items.join(", "))
}

/// Spends the codes of `code_hashes` that are unused: answers the hashes spent, each once
/// (of any number of concurrent callers, exactly one spends a given code).
pub async fn spend_many(
    conn: &impl ConnectionTrait,
    code_hashes: &[&[u8]],
) -> Result<Vec<Vec<u8>>, DbErr> {
    #[derive(FromQueryResult)]
    struct Spent {
        code_hash: Vec<u8>,
    }
    let mut out = Vec::with_capacity(code_hashes.len());
    for chunk in code_hashes.chunks(10_000) {
        let rows = Spent::find_by_statement(stmt(
            format!(
                "DELETE FROM unused_codes WHERE code_hash IN {} RETURNING code_hash",
                in_list(chunk.len())
            ),
            chunk.iter().map(|h| Value::from(h.to_vec())),
        ))
        .all(conn)
        .await?;
        out.extend(rows.into_iter().map(|r| r.code_hash));
    }
    Ok(out)
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
