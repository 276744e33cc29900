//! Reads of the demo history's seeding (`seed-demo-history`, docs/decisions/0014-demo-history.md):
//! whether the members replica holds the demo city yet. Only the seeding uses it.

use super::stmt;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

/// How many of `members` and of `orgs` the replica holds.
pub async fn replica_holds(
    conn: &impl ConnectionTrait,
    members: &[Uuid],
    orgs: &[Uuid],
) -> Result<(i64, i64), DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT (SELECT count(*) FROM replica_members WHERE id = ANY($1)) AS members,
                    (SELECT count(*) FROM replica_organizations WHERE id = ANY($2)) AS orgs",
            [members.to_vec().into(), orgs.to_vec().into()],
        ))
        .await?;
    match row {
        Some(row) => Ok((row.try_get("", "members")?, row.try_get("", "orgs")?)),
        None => Ok((0, 0)),
    }
}
