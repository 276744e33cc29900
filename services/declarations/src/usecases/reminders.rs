//! The daily reminder (申报提醒): three days before a month's deadline, every active member who
//! has handed nothing in for that month gets one `declarations.reminder.due.v1` event (sent once
//! per member and month, however often the check runs).

use super::{AppError, Declarations};
use crate::domain::Month;
use crate::events;
use sea_orm::TransactionTrait as _;

/// Days before the deadline day on which reminders go out.
pub const DAYS_BEFORE: i64 = 3;

impl Declarations {
    /// Sends the reminders due today (Asia/Shanghai); returns how many were sent now.
    pub async fn send_reminders(&self) -> Result<usize, AppError> {
        let now = self.clock.now();
        let today = Month::local_date(now);
        let this = Month::containing(now);
        let mut sent = 0;
        for month in [this.previous(), this] {
            let Some((_, standard)) = self.standard_for(&self.db, month.year()).await? else {
                continue;
            };
            let deadline = month.deadline_date(standard.deadline_day());
            if deadline - chrono::Duration::days(DAYS_BEFORE) != today {
                continue;
            }
            let closes_at = month.closes_at(standard.deadline_day());
            let txn = self.db.begin().await?;
            let due = crate::store::claim_reminders(&txn, &month.to_string(), now).await?;
            for (member_id, org_id) in &due {
                jifen_eventbus::stage(
                    &txn,
                    events::SOURCE,
                    events::reminder_due(*member_id, *org_id, &month.to_string(), closes_at),
                )
                .await?;
            }
            txn.commit().await?;
            tracing::info!(month = %month, reminded = due.len(), "declaration reminders sent");
            sent += due.len();
        }
        Ok(sent)
    }
}
