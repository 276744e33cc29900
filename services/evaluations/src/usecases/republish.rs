//! `jifen-evaluations republish-rounds`: the closed rounds (群众评议) of a year staged again as
//! `evaluations.round.closed.v1`, with the state and version they were closed with.
//!
//! For a consumer whose projection predates a field of the event — grading's exact quarter sums
//! (`score_total`, docs/decisions/0010-exact-evaluation.md) — or a consumer created after the
//! rounds closed. Consumers apply an event of the version they hold again (it carries the same
//! state), so a republication only fills what they lacked; nothing is counted twice.

use super::rounds::stage_closed;
use super::{AppError, Evaluations, round_from_row};
use crate::domain::MemberResult;
use crate::store;
use sea_orm::TransactionTrait as _;
use uuid::Uuid;

impl Evaluations {
    /// Stages the closed-round event of every closed round of `year` of the branches under
    /// `org_id` (every branch when `None`), one transaction per round; answers how many.
    pub async fn republish_rounds(
        &self,
        year: i32,
        org_id: Option<Uuid>,
    ) -> Result<usize, AppError> {
        let path = match org_id {
            Some(id) => Some(
                store::replica::find_org(&self.db, id)
                    .await?
                    .ok_or(AppError::NotFound {
                        field: "org_id",
                        what: "organization",
                    })?
                    .path,
            ),
            None => None,
        };
        let mut staged = 0;
        for row in store::rounds::closed_of_year(&self.db, year, path.as_deref()).await? {
            let round = round_from_row(&row)?;
            let txn = self.db.begin().await?;
            let roster: Vec<Uuid> = store::rounds::roster(&txn, round.id)
                .await?
                .into_iter()
                .map(|r| r.member_id)
                .collect();
            let results: Vec<MemberResult> = store::rounds::results(&txn, round.id)
                .await?
                .into_iter()
                .map(|r| MemberResult {
                    member_id: r.member_id,
                    ballots: u32::try_from(r.ballots).unwrap_or(0),
                    score_total: r.score_total,
                    score: r.score,
                    poor_ballots: u32::try_from(r.poor_ballots).unwrap_or(0),
                    valid: r.valid,
                })
                .collect();
            stage_closed(&txn, &round, &roster, &results).await?;
            txn.commit().await?;
            staged += 1;
        }
        tracing::info!(year, staged, "closed rounds republished");
        Ok(staged)
    }
}
