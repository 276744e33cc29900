//! What the grading service publishes, and how it applies what it consumes.
//!
//! Published (through the transactional outbox, in the transaction of the change):
//!
//! | routing key | message |
//! |---|---|
//! | `grading.member_grade.finalized.v1` | `MemberGradeFinalized`: a member's final grade (version 1; it never changes) |
//!
//! Consumed by one consumer, `grading.projections`, with its own queue and inbox:
//!
//! | binding | applies |
//! |---|---|
//! | `members.#` | organizations (kind, unit type, path) and members (category, status, the `exempt` flag, sanctions) |
//! | `declarations.declaration.#` | the approved lines of a declaration become its ledger entries; any other status removes them; every declaration's month, status and whether it was submitted (the dashboard's `declared`) |
//! | `declarations.branch_record.#` | a standing branch record is one ledger entry; a revoked one none |
//! | `declarations.standard.published.v1` | the newest standard of each year |
//! | `evaluations.round.#` | the per-member quarter results of a closed round |
//!
//! The dashboard's rollup (`dashboard_member_months`, `dashboard_org_months`,
//! `dashboard_org_members`; docs/decisions/0018-dashboard-rollup.md) follows the member, the
//! declaration's month and the ledger in the same transaction, recomputed from them under the
//! member's lock.
//!
//! Invariants: every event applies only when its aggregate's version is newer than the one held
//! (a version guard per organization, member, standard, declaration, branch record and round),
//! and every event carries its aggregate's whole state — so applying the same events twice, or
//! in any order, leaves the same projection, and a point is never counted twice.

use crate::store::{self, projection};
use jifen_eventbus::{ConsumerSpec, EventHandler, HandleError, IncomingEvent, OutgoingEvent};
use jifen_proto::events::v1 as ev;
use prost::Message as _;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

/// `ce-source` of every event of this service.
pub const SOURCE: &str = "grading";

pub const MEMBER_GRADE_FINALIZED: &str = "grading.member_grade.finalized.v1";

const STANDARD_PUBLISHED: &str = "declarations.standard.published.v1";

/// The one consumer of everything grading projects.
pub fn projections_spec() -> ConsumerSpec {
    ConsumerSpec {
        name: "grading.projections".into(),
        bindings: vec![
            "members.#".into(),
            "declarations.declaration.#".into(),
            "declarations.branch_record.#".into(),
            STANDARD_PUBLISHED.into(),
            "evaluations.round.#".into(),
        ],
    }
}

/// `MemberGradeFinalized` of one member.
pub fn member_grade_finalized(message: &ev::MemberGradeFinalized) -> OutgoingEvent {
    OutgoingEvent {
        routing_key: MEMBER_GRADE_FINALIZED.to_owned(),
        subject: message.member_id.clone(),
        payload: message.encode_to_vec(),
    }
}

fn permanent(what: impl std::fmt::Display) -> HandleError {
    HandleError::Permanent(what.to_string())
}

fn transient(e: sea_orm::DbErr) -> HandleError {
    HandleError::Transient(e.into())
}

fn uuid(field: &str, text: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(text).map_err(|_| permanent(format!("{field} is not a UUID: {text:?}")))
}

/// `ORG_KIND_GENERAL_BRANCH` → `general_branch`.
fn api_name(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_ascii_lowercase()
}

/// `YYYY-MM` → (year, month).
fn month(text: &str) -> Result<(i32, u32), HandleError> {
    let bad = || permanent(format!("month is not YYYY-MM: {text:?}"));
    let (y, m) = text.split_once('-').ok_or_else(bad)?;
    let year: i32 = y.parse().map_err(|_| bad())?;
    let month: u32 = m.parse().map_err(|_| bad())?;
    if y.len() != 4 || m.len() != 2 || !(1..=12).contains(&month) {
        return Err(bad());
    }
    Ok((year, month))
}

/// `YYYY-Qn` → (year, quarter).
fn quarter(text: &str) -> Result<(i32, u32), HandleError> {
    let bad = || permanent(format!("quarter is not YYYY-Qn: {text:?}"));
    let (y, q) = text.split_once("-Q").ok_or_else(bad)?;
    let year: i32 = y.parse().map_err(|_| bad())?;
    let quarter: u32 = q.parse().map_err(|_| bad())?;
    if y.len() != 4 || !(1..=4).contains(&quarter) {
        return Err(bad());
    }
    Ok((year, quarter))
}

/// Applies every consumed event to the projections.
pub struct Projector;

#[async_trait::async_trait]
impl EventHandler for Projector {
    async fn handle(
        &self,
        tx: &DatabaseTransaction,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        let key = event.routing_key.as_str();
        let payload = event.payload.as_slice();
        if key.starts_with("members.organization.") {
            let o = ev::OrganizationChanged::decode(payload)
                .map_err(|e| permanent(format!("undecodable OrganizationChanged: {e}")))?
                .organization
                .ok_or_else(|| permanent("OrganizationChanged without organization"))?;
            let row = projection::OrgRow {
                id: uuid("organization.id", &o.id)?,
                parent_id: if o.parent_id.is_empty() {
                    None
                } else {
                    Some(uuid("organization.parent_id", &o.parent_id)?)
                },
                kind: api_name(o.kind().as_str_name(), "ORG_KIND_"),
                unit_type: api_name(o.unit_type().as_str_name(), "UNIT_TYPE_"),
                name: o.name,
                path: o.path,
                version: o.version,
            };
            projection::upsert_org(tx, &row).await.map_err(transient)?;
        } else if key.starts_with("members.member.") {
            apply_member(tx, payload).await?;
        } else if key.starts_with("declarations.declaration.") {
            apply_declaration(tx, payload).await?;
        } else if key.starts_with("declarations.branch_record.") {
            apply_branch_record(tx, payload).await?;
        } else if key == STANDARD_PUBLISHED {
            let message = ev::StandardPublished::decode(payload)
                .map_err(|e| permanent(format!("undecodable StandardPublished: {e}")))?;
            let standard = jifen_standard::Standard::parse_json(&message.document_json)
                .map_err(|p| permanent(format!("standard {} is invalid: {p:?}", message.year)))?;
            if standard.year() != message.year {
                return Err(permanent(format!(
                    "standard document of {} published as {}",
                    standard.year(),
                    message.year
                )));
            }
            projection::upsert_standard(tx, message.year, message.version, &message.document_json)
                .await
                .map_err(transient)?;
        } else if key.starts_with("evaluations.round.") {
            apply_round(tx, payload).await?;
        }
        // Other events under the bindings carry nothing grading keeps.
        Ok(())
    }
}

async fn apply_member(tx: &DatabaseTransaction, payload: &[u8]) -> Result<(), HandleError> {
    let m = ev::MemberChanged::decode(payload)
        .map_err(|e| permanent(format!("undecodable MemberChanged: {e}")))?
        .member
        .ok_or_else(|| permanent("MemberChanged without member"))?;
    let exempt = m
        .flags()
        .any(|f| f == jifen_proto::common::v1::MemberFlag::Exempt);
    let sanctions: Vec<serde_json::Value> = m
        .sanctions
        .iter()
        .map(|s| {
            serde_json::json!({
                "kind": api_name(s.kind().as_str_name(), "SANCTION_KIND_"),
                "decided_on": s.decided_on,
            })
        })
        .collect();
    let row = projection::MemberRow {
        id: uuid("member.id", &m.id)?,
        org_id: uuid("member.org_id", &m.org_id)?,
        category: api_name(m.category().as_str_name(), "MEMBER_CATEGORY_"),
        status: api_name(m.status().as_str_name(), "MEMBER_STATUS_"),
        org_path: m.org_path,
        name: m.name,
        exempt,
        sanctions: serde_json::Value::Array(sanctions),
        version: m.version,
    };
    // The dashboard's rollup counts an active member's figures under their organization's
    // path: a transfer or a change of status moves them (nothing when the event is stale).
    projection::lock_member(tx, row.id)
        .await
        .map_err(transient)?;
    let before = store::dashboard::active_path(tx, row.id)
        .await
        .map_err(transient)?;
    projection::upsert_member(tx, &row)
        .await
        .map_err(transient)?;
    let after = store::dashboard::active_path(tx, row.id)
        .await
        .map_err(transient)?;
    store::dashboard::move_member(tx, row.id, before.as_deref(), after.as_deref())
        .await
        .map_err(transient)
}

async fn apply_declaration(tx: &DatabaseTransaction, payload: &[u8]) -> Result<(), HandleError> {
    let d = ev::DeclarationChanged::decode(payload)
        .map_err(|e| permanent(format!("undecodable DeclarationChanged: {e}")))?
        .declaration
        .ok_or_else(|| permanent("DeclarationChanged without declaration"))?;
    let id = uuid("declaration.id", &d.id)?;
    let member_id = uuid("declaration.member_id", &d.member_id)?;
    let (year, month) = month(&d.month)?;
    // The dashboard's row has its own version guard, so a replay fills it even where the
    // ledger's guard (below) already holds this version.
    let status = d.status();
    let status_name = api_name(status.as_str_name(), "DECLARATION_STATUS_");
    if status == ev::DeclarationStatus::Unspecified {
        return Err(permanent("declaration without a status"));
    }
    // The member's lock first (as every write of a member's projection), then the month the
    // declaration was held under, so both months' rollup follow the newest version.
    projection::lock_member(tx, member_id)
        .await
        .map_err(transient)?;
    let held = store::dashboard::declaration_month_of(tx, id)
        .await
        .map_err(transient)?;
    store::dashboard::upsert_declaration_month(
        tx,
        &store::dashboard::DeclarationMonth {
            id,
            member_id,
            year,
            month,
            submitted: status != ev::DeclarationStatus::Draft || !d.submitted_at.is_empty(),
            status: status_name,
            version: d.version,
        },
    )
    .await
    .map_err(transient)?;
    // The rollup of the month held before and of the month now: with the ledger's months when
    // the ledger changes below, else here (a replay filling `declaration_months`).
    let now = store::dashboard::MemberMonth {
        member_id,
        year,
        month,
    };
    let months: Vec<_> = held
        .into_iter()
        .filter(|h| *h != now)
        .chain([now])
        .collect();
    if !projection::advance_source(tx, id, "declaration", member_id, d.version)
        .await
        .map_err(transient)?
    {
        for at in months {
            if at.member_id != member_id {
                projection::lock_member(tx, at.member_id)
                    .await
                    .map_err(transient)?;
            }
            store::dashboard::refresh_member_month(tx, at)
                .await
                .map_err(transient)?;
        }
        return Ok(());
    }
    let approved = status == ev::DeclarationStatus::Approved;
    let mut entries = Vec::new();
    if approved {
        for (i, line) in d.lines.iter().enumerate() {
            let Some(points) = line.approved_points else {
                continue;
            };
            entries.push(projection::NewEntry {
                member_id,
                year,
                month,
                source: "declaration",
                line: i16::try_from(i).map_err(|_| permanent("too many lines"))?,
                item_code: line.item_code.clone(),
                points,
                note: line.note.clone(),
            });
        }
    }
    projection::replace_entries(tx, id, member_id, year, &entries, &months)
        .await
        .map_err(transient)
}

async fn apply_branch_record(tx: &DatabaseTransaction, payload: &[u8]) -> Result<(), HandleError> {
    let r = ev::BranchRecordChanged::decode(payload)
        .map_err(|e| permanent(format!("undecodable BranchRecordChanged: {e}")))?
        .record
        .ok_or_else(|| permanent("BranchRecordChanged without record"))?;
    let id = uuid("record.id", &r.id)?;
    let member_id = uuid("record.member_id", &r.member_id)?;
    let (year, month) = month(&r.month)?;
    if !projection::advance_source(tx, id, "branch_record", member_id, r.version)
        .await
        .map_err(transient)?
    {
        return Ok(());
    }
    let entries = if r.revoked {
        Vec::new()
    } else {
        vec![projection::NewEntry {
            member_id,
            year,
            month,
            source: "branch",
            line: 0,
            item_code: r.item_code,
            points: r.points,
            note: r.note,
        }]
    };
    projection::replace_entries(tx, id, member_id, year, &entries, &[])
        .await
        .map_err(transient)
}

async fn apply_round(tx: &DatabaseTransaction, payload: &[u8]) -> Result<(), HandleError> {
    let r = ev::EvaluationRoundChanged::decode(payload)
        .map_err(|e| permanent(format!("undecodable EvaluationRoundChanged: {e}")))?
        .round
        .ok_or_else(|| permanent("EvaluationRoundChanged without round"))?;
    let id = uuid("round.id", &r.id)?;
    let org_id = uuid("round.org_id", &r.org_id)?;
    let (year, quarter) = quarter(&r.quarter)?;
    if !store::projection::advance_round(tx, id, org_id, &r.quarter, r.version)
        .await
        .map_err(transient)?
    {
        return Ok(());
    }
    if r.status() != ev::EvaluationRoundStatus::Closed {
        return Ok(());
    }
    let closed_at = chrono::DateTime::parse_from_rfc3339(&r.closed_at)
        .map_err(|_| {
            permanent(format!(
                "round.closed_at is not RFC 3339: {:?}",
                r.closed_at
            ))
        })?
        .with_timezone(&chrono::Utc);
    let results = r
        .results
        .iter()
        .map(|m| {
            Ok(projection::NewQuarterResult {
                member_id: uuid("results.member_id", &m.member_id)?,
                score: m.score,
                score_total: (m.ballots > 0).then_some(m.score_total),
                ballots: m.ballots,
                poor_ballots: m.poor_ballots,
                valid: m.valid,
            })
        })
        .collect::<Result<Vec<_>, HandleError>>()?;
    projection::replace_quarter_results(tx, id, year, quarter, closed_at, &results)
        .await
        .map_err(transient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_strictly() {
        assert_eq!(month("2026-03").ok(), Some((2026, 3)));
        assert!(month("2026-13").is_err());
        assert!(month("2026-3").is_err());
        assert_eq!(quarter("2026-Q4").ok(), Some((2026, 4)));
        assert!(quarter("2026-Q5").is_err());
        assert!(quarter("2026-4").is_err());
    }
}
