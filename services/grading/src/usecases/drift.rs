//! Final grades whose totals the ledger would no longer give (decision 0010): a final grade
//! (终定) is never recomputed — it was published and consumers keep it — so when a rule of the
//! computation is corrected (the exact evaluation points) an operator lists the members whose
//! final total differs from what their ledger gives now, to decide case by case (an appeal, a
//! note in the file). Nothing is changed.

use super::{AppError, Grading};
use crate::store::{gradings, projection};
use std::collections::BTreeSet;
use uuid::Uuid;

/// A member whose final grade's points differ from their ledger's now. Deci-points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalDrift {
    pub branch_id: Uuid,
    pub member_id: Uuid,
    /// The final grade (`excellent` …), as published.
    pub grade: String,
    pub final_evaluation: i32,
    pub final_total: i32,
    pub ledger_evaluation: i32,
    pub ledger_total: i32,
}

/// What the listing found.
#[derive(Debug, Clone, Default)]
pub struct DriftReport {
    /// Members with a final grade of the year under the organization.
    pub finals: usize,
    pub drifts: Vec<FinalDrift>,
}

impl Grading {
    /// The members of the final gradings of `year` under `org_id` whose final total or
    /// evaluation points differ from their ledger's now. Operator tooling: no authorization
    /// (the command runs with the service's own database rights).
    pub async fn final_drift(&self, org_id: Uuid, year: i32) -> Result<DriftReport, AppError> {
        let org = projection::find_org(&self.db, org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "organization",
            })?;
        let finals: BTreeSet<Uuid> = gradings::under(&self.db, &org.path, year)
            .await?
            .into_iter()
            .filter(|g| g.status == "final")
            .map(|g| g.branch_id)
            .collect();
        let mut report = DriftReport::default();
        for row in gradings::grades_under(&self.db, &org.path, year).await? {
            if !finals.contains(&row.branch_id) {
                continue;
            }
            report.finals += 1;
            let Some(member) = projection::find_member(&self.db, row.member_id).await? else {
                continue;
            };
            let totals = self.ledger_of(&member, year).await?.totals;
            let (evaluation, total) = (totals.evaluation.tenths(), totals.total.tenths());
            if (evaluation, total) != (row.evaluation_points, row.total) {
                report.drifts.push(FinalDrift {
                    branch_id: row.branch_id,
                    member_id: row.member_id,
                    grade: row.grade.unwrap_or(row.proposed_grade),
                    final_evaluation: row.evaluation_points,
                    final_total: row.total,
                    ledger_evaluation: evaluation,
                    ledger_total: total,
                });
            }
        }
        Ok(report)
    }
}
