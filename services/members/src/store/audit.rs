//! The append-only audit trail (痕迹管理). Rows are only ever inserted; the table refuses
//! UPDATE, DELETE and TRUNCATE.

use super::entities::audit_log;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait as _, IntoActiveModel as _};
use uuid::Uuid;

/// One audited change.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Account id of the person (or `system:<what>`).
    pub actor: String,
    /// `organization.create`, `member.update`, `member.transfer`, …
    pub action: &'static str,
    /// `organization`, `member`, `account`.
    pub subject_type: &'static str,
    pub subject_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub detail: Option<serde_json::Value>,
    pub reason: Option<String>,
}

impl AuditEntry {
    fn into_row(self) -> audit_log::Model {
        audit_log::Model {
            id: Uuid::now_v7(),
            occurred_at: chrono::Utc::now(),
            actor: self.actor,
            action: self.action.to_owned(),
            subject_type: self.subject_type.to_owned(),
            subject_id: self.subject_id,
            before: self.before,
            after: self.after,
            detail: self.detail,
            reason: self.reason,
        }
    }
}

pub async fn record(conn: &impl ConnectionTrait, entry: AuditEntry) -> Result<(), DbErr> {
    audit_log::Entity::insert(entry.into_row().into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Records many entries with multi-row INSERTs.
pub async fn record_many(
    conn: &impl ConnectionTrait,
    entries: Vec<AuditEntry>,
) -> Result<(), DbErr> {
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let chunk: Vec<_> = entries
            .by_ref()
            .take(500)
            .map(|e| e.into_row().into_active_model())
            .collect();
        audit_log::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}
