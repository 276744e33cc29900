//! What the declarations service publishes and how it applies what it consumes.
//!
//! Published (proto `jifen/events/v1/declarations.proto`), each with the aggregate's whole state
//! and version, staged through the outbox in the transaction of the change:
//!
//! | routing key | message |
//! |---|---|
//! | `declarations.standard.published.v1` | `StandardPublished` |
//! | `declarations.declaration.{submitted,approved,rejected,returned}.v1` | `DeclarationChanged` |
//! | `declarations.branch_record.{recorded,revoked}.v1` | `BranchRecordChanged` |
//! | `declarations.reminder.due.v1` | `ReminderDue` |
//!
//! Consumed:
//! * `members.#` into the replica (`org_replica`, `member_replica`) that scope checks and
//!   listings read; an event applies only when its version is newer than the replica's;
//! * `grading.member_grade.finalized.v1` into `final_grades`: a year whose grade is final (定档)
//!   takes no more branch records, revocations, reviews or reopenings for that member.

use crate::domain::Status;
use crate::store::{
    self,
    entities::{member_replica, org_replica},
};
use crate::usecases::{DeclarationView, RecordView};
use chrono::{DateTime, Utc};
use jifen_eventbus::{EventHandler, HandleError, IncomingEvent, OutgoingEvent};
use jifen_platform::final_grades::FinalGrade;
use jifen_proto::events::v1 as ev;
use prost::Message as _;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

/// `ce-source` of every event of this service.
pub const SOURCE: &str = "declarations";

pub const STANDARD_PUBLISHED: &str = "declarations.standard.published.v1";
pub const DECLARATION_SUBMITTED: &str = "declarations.declaration.submitted.v1";
pub const DECLARATION_APPROVED: &str = "declarations.declaration.approved.v1";
pub const DECLARATION_REJECTED: &str = "declarations.declaration.rejected.v1";
pub const DECLARATION_RETURNED: &str = "declarations.declaration.returned.v1";
pub const BRANCH_RECORD_RECORDED: &str = "declarations.branch_record.recorded.v1";
pub const BRANCH_RECORD_REVOKED: &str = "declarations.branch_record.revoked.v1";
pub const REMINDER_DUE: &str = "declarations.reminder.due.v1";

/// Name of the members replica consumer (its queue is `<prefix>declarations.members-replica`).
pub const MEMBERS_REPLICA: &str = "declarations.members-replica";
/// Name of the consumer of final grades (its queue is `<prefix>declarations.final-grades`).
pub const FINAL_GRADES: &str = "declarations.final-grades";
/// The one grading event this service consumes.
pub use jifen_platform::final_grades::MEMBER_GRADE_FINALIZED;

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn rfc3339_opt(at: Option<DateTime<Utc>>) -> String {
    at.map(rfc3339).unwrap_or_default()
}

pub fn status_pb(status: Status) -> ev::DeclarationStatus {
    match status {
        Status::Draft => ev::DeclarationStatus::Draft,
        Status::Submitted => ev::DeclarationStatus::Submitted,
        Status::Approved => ev::DeclarationStatus::Approved,
        Status::Rejected => ev::DeclarationStatus::Rejected,
        Status::Returned => ev::DeclarationStatus::Returned,
    }
}

pub fn kind_pb(kind: &str) -> ev::ItemKind {
    match kind {
        "base" => ev::ItemKind::Base,
        "bonus" => ev::ItemKind::Bonus,
        "deduction" => ev::ItemKind::Deduction,
        "veto" => ev::ItemKind::Veto,
        _ => ev::ItemKind::Unspecified,
    }
}

pub fn standard_published(
    year: i32,
    document: &serde_json::Value,
    version: i64,
    by: &str,
    at: DateTime<Utc>,
) -> OutgoingEvent {
    let message = ev::StandardPublished {
        year,
        document_json: document.to_string(),
        version,
        published_by: by.to_owned(),
        published_at: rfc3339(at),
    };
    OutgoingEvent {
        routing_key: STANDARD_PUBLISHED.to_owned(),
        subject: year.to_string(),
        payload: message.encode_to_vec(),
    }
}

/// The event state of a declaration (the member's lines; branch records are their own events).
pub fn declaration_state(view: &DeclarationView) -> ev::DeclarationState {
    ev::DeclarationState {
        id: view.id.map(|id| id.to_string()).unwrap_or_default(),
        member_id: view.member_id.to_string(),
        org_id: view.org_id.to_string(),
        org_path: view.org_path.clone(),
        month: view.month.clone(),
        status: status_pb(view.status).into(),
        lines: view
            .lines
            .iter()
            .map(|l| ev::DeclarationLineState {
                line_id: l.line_id.to_string(),
                item_code: l.item_code.clone(),
                category: l.category.clone(),
                kind: kind_pb(&l.kind).into(),
                quantity: l.quantity,
                claimed_points: l.claimed_points,
                approved_points: l.approved_points,
                note: l.note.clone(),
                evidence: l.evidence.clone(),
                adjust_reason: l.adjust_reason.clone(),
            })
            .collect(),
        claimed_total: view.claimed_total,
        approved_total: view.approved_total,
        submitted_at: rfc3339_opt(view.submitted_at),
        reviewed_at: rfc3339_opt(view.reviewed_at),
        reviewer_id: view.reviewer_id.clone().unwrap_or_default(),
        comment: view.comment.clone(),
        version: view.version,
    }
}

pub fn declaration_changed(routing_key: &str, view: &DeclarationView) -> OutgoingEvent {
    let message = ev::DeclarationChanged {
        declaration: Some(declaration_state(view)),
    };
    OutgoingEvent {
        routing_key: routing_key.to_owned(),
        subject: view.id.map(|id| id.to_string()).unwrap_or_default(),
        payload: message.encode_to_vec(),
    }
}

pub fn record_state(r: &RecordView) -> ev::BranchRecordState {
    ev::BranchRecordState {
        id: r.id.to_string(),
        member_id: r.member_id.to_string(),
        org_id: r.org_id.to_string(),
        org_path: r.org_path.clone(),
        month: r.month.clone(),
        item_code: r.item_code.clone(),
        category: r.category.clone(),
        kind: kind_pb(&r.kind).into(),
        quantity: r.quantity,
        points: r.points,
        note: r.note.clone(),
        recorded_by: r.recorded_by.clone(),
        recorded_at: rfc3339(r.recorded_at),
        revoked: r.revoked_at.is_some(),
        revoked_by: r.revoked_by.clone().unwrap_or_default(),
        revoked_at: rfc3339_opt(r.revoked_at),
        revoke_reason: r.revoke_reason.clone().unwrap_or_default(),
        version: r.version,
    }
}

pub fn branch_record_changed(routing_key: &str, r: &RecordView) -> OutgoingEvent {
    let message = ev::BranchRecordChanged {
        record: Some(record_state(r)),
    };
    OutgoingEvent {
        routing_key: routing_key.to_owned(),
        subject: r.id.to_string(),
        payload: message.encode_to_vec(),
    }
}

pub fn reminder_due(
    member_id: Uuid,
    org_id: Uuid,
    month: &str,
    deadline: DateTime<Utc>,
) -> OutgoingEvent {
    let message = ev::ReminderDue {
        member_id: member_id.to_string(),
        org_id: org_id.to_string(),
        month: month.to_owned(),
        deadline: rfc3339(deadline),
    };
    OutgoingEvent {
        routing_key: REMINDER_DUE.to_owned(),
        subject: member_id.to_string(),
        payload: message.encode_to_vec(),
    }
}

/// `UNIT_TYPE_STATE_ENTERPRISE` → `state_enterprise`: the API spelling of a proto enum name.
fn api_name(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_ascii_lowercase()
}

fn uuid(field: &str, text: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(text)
        .map_err(|_| HandleError::Permanent(format!("{field} is not a UUID: {text:?}")))
}

/// Keeps the replica of `members.*`: organizations and members (no personal data).
pub struct MembersReplica;

#[async_trait::async_trait]
impl EventHandler for MembersReplica {
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        let transient = |e: sea_orm::DbErr| HandleError::Transient(e.into());
        if event.routing_key.starts_with("members.organization.") {
            let changed = ev::OrganizationChanged::decode(event.payload.as_slice())
                .map_err(|e| HandleError::Permanent(format!("not an OrganizationChanged: {e}")))?;
            let org = changed
                .organization
                .ok_or_else(|| HandleError::Permanent("no organization".into()))?;
            let row = org_replica::Model {
                id: uuid("organization.id", &org.id)?,
                parent_id: if org.parent_id.is_empty() {
                    None
                } else {
                    Some(uuid("organization.parent_id", &org.parent_id)?)
                },
                path: org.path.clone(),
                name: org.name.clone(),
                kind: api_name(org.kind().as_str_name(), "ORG_KIND_"),
                unit_type: api_name(org.unit_type().as_str_name(), "UNIT_TYPE_"),
                version: org.version,
            };
            store::upsert_org(tx, row).await.map_err(transient)?;
        } else if event.routing_key.starts_with("members.member.") {
            let changed = ev::MemberChanged::decode(event.payload.as_slice())
                .map_err(|e| HandleError::Permanent(format!("not a MemberChanged: {e}")))?;
            let m = changed
                .member
                .ok_or_else(|| HandleError::Permanent("no member".into()))?;
            let row = member_replica::Model {
                id: uuid("member.id", &m.id)?,
                org_id: uuid("member.org_id", &m.org_id)?,
                org_path: m.org_path.clone(),
                name: m.name.clone(),
                category: api_name(m.category().as_str_name(), "MEMBER_CATEGORY_"),
                status: api_name(m.status().as_str_name(), "MEMBER_STATUS_"),
                version: m.version,
            };
            store::upsert_member(tx, row).await.map_err(transient)?;
        }
        // Other members.* events carry nothing the replica keeps.
        Ok(())
    }
}

/// Keeps `final_grades` from `grading.member_grade.finalized.v1` (a final grade never changes, so
/// a redelivery changes nothing).
pub struct FinalGrades;

#[async_trait::async_trait]
impl EventHandler for FinalGrades {
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        if event.routing_key != MEMBER_GRADE_FINALIZED {
            return Ok(());
        }
        let grade = FinalGrade::decode(&event.payload).map_err(HandleError::Permanent)?;
        store::insert_final_grade(
            tx,
            grade.member_id,
            grade.year,
            grade.org_id,
            &grade.org_path,
            grade.finalized_at,
        )
        .await
        .map_err(|e| HandleError::Transient(e.into()))?;
        Ok(())
    }
}
