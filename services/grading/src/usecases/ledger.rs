//! The points ledger 积分台账 of one member and year: every entry, every quarter, and the totals
//! of RULES.md §5 steps 1–5 with every cap applied.

use super::{AppError, Grading, authorize, check_year, inputs};
use crate::authz;
use crate::domain::{self, Totals};
use crate::store::{inputs as rows, projection};
use jifen_platform::auth::Principal;
use uuid::Uuid;

/// What `GET /members/{id}/ledger` answers.
#[derive(Debug, Clone)]
pub struct LedgerView {
    pub member_id: Uuid,
    pub year: i32,
    pub entries: Vec<rows::EntryRow>,
    pub quarters: Vec<rows::QuarterRow>,
    pub totals: Totals,
}

impl Grading {
    pub async fn ledger(
        &self,
        caller: &Principal,
        member_id: Uuid,
        year: i32,
    ) -> Result<LedgerView, AppError> {
        let year = check_year(year)?;
        let member =
            projection::find_member(&self.db, member_id)
                .await?
                .ok_or(AppError::NotFound {
                    field: "member_id",
                    what: "member",
                })?;
        authorize(
            authz::read_ledger(caller, member_id, &member.org_path),
            "member_id",
            "member",
        )?;
        self.ledger_of(&member, year).await
    }

    /// The ledger without an authorization check (reconciliation, tests of the projection).
    pub async fn ledger_of(
        &self,
        member: &projection::MemberRow,
        year: i32,
    ) -> Result<LedgerView, AppError> {
        let standard = self.standard_for(year).await?;
        let unit_type = projection::find_org(&self.db, member.org_id)
            .await?
            .map(|o| o.unit_type);
        let entries = rows::entries_of(&self.db, member.id, year).await?;
        let quarter_rows = rows::quarters_of(&self.db, member.id, year).await?;
        let domain_entries: Vec<domain::Entry> = entries.iter().map(inputs::entry).collect();
        let quarters = inputs::quarters(quarter_rows.clone());
        let totals = domain::totals(&standard, unit_type.as_deref(), &domain_entries, &quarters);
        Ok(LedgerView {
            member_id: member.id,
            year,
            entries,
            quarters: quarter_rows,
            totals,
        })
    }
}
