//! Reads of the demo history's seeding (`seed-demo-history`, docs/decisions/0014-demo-history.md):
//! how far the replica and a branch-month have got, so a run carries on where another stopped.
//! Only the seeding uses them; every change it makes goes through the use cases.

use super::stmt;
use sea_orm::{ConnectionTrait, DbErr};
use std::collections::HashMap;
use uuid::Uuid;

/// How many of `members` the replica holds, and how many of `orgs`.
pub async fn replica_holds(
    conn: &impl ConnectionTrait,
    members: &[Uuid],
    orgs: &[Uuid],
) -> Result<(i64, i64), DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT (SELECT count(*) FROM member_replica WHERE id = ANY($1)) AS members,
                    (SELECT count(*) FROM org_replica WHERE id = ANY($2)) AS orgs",
            [members.to_vec().into(), orgs.to_vec().into()],
        ))
        .await?;
    match row {
        Some(row) => Ok((row.try_get("", "members")?, row.try_get("", "orgs")?)),
        None => Ok((0, 0)),
    }
}

/// The declarations of `members` for `month`: member → (declaration id, status).
pub async fn month_states(
    conn: &impl ConnectionTrait,
    members: &[Uuid],
    month: &str,
) -> Result<HashMap<Uuid, (Uuid, String)>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT member_id, id, status FROM declarations WHERE member_id = ANY($1) AND month = $2",
            [members.to_vec().into(), month.into()],
        ))
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        out.insert(
            row.try_get("", "member_id")?,
            (row.try_get("", "id")?, row.try_get("", "status")?),
        );
    }
    Ok(out)
}

/// Whether `org_id` has recorded anything for `month` (its branch records of the month are done:
/// a recording is one transaction).
pub async fn recorded_month(
    conn: &impl ConnectionTrait,
    org_id: Uuid,
    month: &str,
) -> Result<bool, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT EXISTS (SELECT 1 FROM branch_records WHERE org_id = $1 AND month = $2) AS done",
            [org_id.into(), month.into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get("", "done"),
        None => Ok(false),
    }
}
