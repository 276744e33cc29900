//! Branch-side points (支部记录): attendance, dues, tasks, deductions and vetoes the branch
//! records for its members, their revocation, and reopening a closed month (补报).

use super::{AppError, Declarations};
use crate::domain::declaration::{self, MAX_QUANTITY, MAX_TEXT};
use crate::domain::{Month, Violation};
use crate::events;
use crate::store::{
    self,
    entities::{branch_record, reopening},
};
use chrono::{DateTime, Utc};
use jifen_platform::auth::Principal;
use jifen_standard::{DeclaredBy, ItemKind};
use sea_orm::TransactionTrait as _;
use std::collections::HashMap;
use uuid::Uuid;

/// Most entries in one recording.
const MAX_ENTRIES: usize = 1000;
/// How far ahead a reopening may run.
const MAX_REOPEN_DAYS: i64 = 31;

/// One entry the secretary records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub member_id: Uuid,
    pub item_code: String,
    pub quantity: i64,
    pub note: String,
}

/// A branch record as the API and the events show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    pub id: Uuid,
    pub member_id: Uuid,
    pub org_id: Uuid,
    pub org_path: String,
    pub month: String,
    pub item_code: String,
    pub category: String,
    pub kind: String,
    pub quantity: i32,
    pub points: i32,
    pub note: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<String>,
    pub version: i64,
}

impl RecordView {
    pub(crate) fn from_row(r: &branch_record::Model) -> Self {
        Self {
            id: r.id,
            member_id: r.member_id,
            org_id: r.org_id,
            org_path: r.org_path.clone(),
            month: r.month.clone(),
            item_code: r.item_code.clone(),
            category: r.category.clone(),
            kind: r.kind.clone(),
            quantity: r.quantity,
            points: r.points,
            note: r.note.clone(),
            recorded_by: r.recorded_by.clone(),
            recorded_at: r.recorded_at,
            revoked_by: r.revoked_by.clone(),
            revoked_at: r.revoked_at,
            revoke_reason: r.revoke_reason.clone(),
            version: r.version,
        }
    }
}

/// A reopened month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReopeningView {
    pub id: Uuid,
    pub org_id: Uuid,
    pub month: String,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub reopened_by: String,
    pub reopened_at: DateTime<Utc>,
}

impl Declarations {
    /// `POST /orgs/{id}/branch-records`: records every entry or none. Each member must belong to
    /// the organization's subtree and be active; each item must be one the branch records; the
    /// month must have begun; and no item may pass its monthly cap for a member (counting what
    /// is already recorded and what the member declared).
    pub async fn record_branch(
        &self,
        actor: &Principal,
        org_id: Uuid,
        month: Month,
        entries: &[NewEntry],
    ) -> Result<Vec<RecordView>, AppError> {
        if entries.is_empty() || entries.len() > MAX_ENTRIES {
            return Err(AppError::invalid(
                "entries",
                format!("give from 1 to {MAX_ENTRIES} entries"),
            ));
        }
        let org = self.org_for_management(actor, org_id).await?;
        let (_, standard) = self.require_standard(&self.db, month.year()).await?;
        let now = self.clock.now();
        if now < month.opens_at() {
            return Err(AppError::invalid(
                "month",
                "points cannot be recorded for a month that has not begun",
            ));
        }
        let ids: Vec<Uuid> = entries.iter().map(|e| e.member_id).collect();
        let members = store::find_members(&self.db, &ids).await?;
        let mut unit_types: HashMap<Uuid, String> = HashMap::new();
        let mut problems = Vec::new();
        let mut rows = Vec::with_capacity(entries.len());
        // Points for oneself are recorded by a manager above, as one's declarations are
        // reviewed by someone else (review refuses one's own declaration).
        if let Some(index) = entries.iter().position(|e| actor.is_member(e.member_id)) {
            return Err(AppError::DeniedOwn {
                field: format!("entries[{index}].member_id"),
                message:
                    "you cannot record branch points for yourself; a manager above you records them"
                        .into(),
            });
        }
        for (index, entry) in entries.iter().enumerate() {
            let field = |name: &str| format!("entries[{index}].{name}");
            let Some(member) = members
                .get(&entry.member_id)
                .filter(|m| m.org_path.starts_with(&org.path))
            else {
                problems.push(Violation::new(
                    field("member_id"),
                    "not a member of this organization",
                ));
                continue;
            };
            if member.status != "active" {
                problems.push(Violation::new(
                    field("member_id"),
                    format!("the member is {}, not active", member.status),
                ));
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = unit_types.entry(member.org_id)
            {
                slot.insert(self.unit_type_of(&self.db, member.org_id).await?);
            }
            let unit = unit_types
                .get(&member.org_id)
                .map_or("other", String::as_str);
            let Some(item) = standard.item(&entry.item_code, unit) else {
                problems.push(Violation::new(
                    field("item_code"),
                    format!("unknown item {:?} in this year's standard", entry.item_code),
                ));
                continue;
            };
            if item.declared_by != DeclaredBy::Branch {
                problems.push(Violation::new(
                    field("item_code"),
                    format!(
                        "item {} is declared by the member, not recorded by the branch",
                        item.code
                    ),
                ));
                continue;
            }
            if !(1..=MAX_QUANTITY).contains(&entry.quantity) {
                problems.push(Violation::new(
                    field("quantity"),
                    format!("must be a whole number from 1 to {MAX_QUANTITY}"),
                ));
                continue;
            }
            if entry.note.chars().count() > MAX_TEXT {
                problems.push(Violation::new(
                    field("note"),
                    format!("at most {MAX_TEXT} characters"),
                ));
                continue;
            }
            let quantity = i32::try_from(entry.quantity).unwrap_or(1);
            let points = if item.kind == ItemKind::Veto {
                0
            } else {
                item.points.tenths().saturating_mul(quantity)
            };
            rows.push((
                index,
                branch_record::Model {
                    id: Uuid::now_v7(),
                    member_id: member.id,
                    org_id: member.org_id,
                    org_path: member.org_path.clone(),
                    month: month.to_string(),
                    year: month.year(),
                    item_code: item.code.clone(),
                    category: item.category.clone(),
                    kind: item.kind.as_str().to_owned(),
                    quantity,
                    points,
                    note: entry.note.trim().to_owned(),
                    recorded_by: actor.subject.clone(),
                    recorded_at: now,
                    revoked_by: None,
                    revoked_at: None,
                    revoke_reason: None,
                    version: 1,
                },
                unit.to_owned(),
            ));
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }

        let txn = self.db.begin().await?;
        // Lock the members' month so two recordings cannot both pass a cap.
        let mut member_ids: Vec<Uuid> = rows.iter().map(|(_, r, _)| r.member_id).collect();
        member_ids.sort();
        member_ids.dedup();
        store::lock_member_months(&txn, &member_ids, &month.to_string()).await?;
        let finals = store::final_members(&txn, &member_ids, month.year()).await?;
        if let Some((index, _, _)) = rows.iter().find(|(_, r, _)| finals.contains(&r.member_id)) {
            return Err(AppError::conflict(
                super::GRADING_FINAL,
                format!(
                    "entries[{index}]: the member's grade of {} is final; no more points are recorded for that year",
                    month.year()
                ),
            ));
        }
        let mut totals: HashMap<(Uuid, String), i32> =
            store::recorded_points(&txn, &member_ids, &month.to_string()).await?;
        for (index, r, unit) in &rows {
            let total = totals
                .entry((r.member_id, r.item_code.clone()))
                .or_insert(0);
            *total += r.points;
            let Some(item) = standard.item(&r.item_code, unit) else {
                continue;
            };
            if let Some(cap) = item.monthly_cap
                && total.abs() > cap.tenths()
            {
                return Err(AppError::Rule {
                    code: "monthly_cap_exceeded",
                    message: format!(
                        "item {} is capped at {} points a month; this member would count {} in {month}",
                        item.code,
                        declaration::fmt_points(cap.tenths()),
                        declaration::fmt_points(*total)
                    ),
                    field: Some(format!("entries[{index}].quantity")),
                });
            }
        }
        let rows: Vec<branch_record::Model> = rows.into_iter().map(|(_, r, _)| r).collect();
        store::insert_records(&txn, rows.clone()).await?;
        let views: Vec<RecordView> = rows.iter().map(RecordView::from_row).collect();
        let staged = views
            .iter()
            .map(|view| {
                jifen_eventbus::StagedEvent::prepare(
                    events::SOURCE,
                    events::branch_record_changed(events::BRANCH_RECORD_RECORDED, view),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        store::stage_many(&txn, &staged).await?;
        store::audit(
            &txn,
            self.clock.now(),
            &actor.subject,
            "branch_record.record",
            ("organization", org.id.to_string()),
            serde_json::json!({ "month": month.to_string(), "records": views.iter().map(|v| v.id).collect::<Vec<_>>() }),
            "",
        )
        .await?;
        txn.commit().await?;
        metrics::counter!("jifen_branch_records_total").increment(views.len() as u64);
        Ok(views)
    }

    /// `POST /branch-records/{id}:revoke`: the record stays, marked revoked with who and why.
    pub async fn revoke_record(
        &self,
        actor: &Principal,
        id: Uuid,
        reason: &str,
    ) -> Result<RecordView, AppError> {
        if reason.trim().is_empty() || reason.chars().count() > MAX_TEXT {
            return Err(AppError::invalid(
                "reason",
                format!("give a reason of 1 to {MAX_TEXT} characters"),
            ));
        }
        let txn = self.db.begin().await?;
        let r = store::find_record_for_update(&txn, id)
            .await?
            .ok_or(AppError::NotFound {
                field: "id",
                what: "branch record",
            })?;
        let own_path = match actor.member_id {
            Some(m) => store::find_member(&txn, m).await?.map(|m| m.org_path),
            None => None,
        };
        super::authorize(
            crate::domain::authz::manage_org(actor, &r.org_path, own_path.as_deref()),
            "id",
            "branch record",
        )?;
        if actor.is_member(r.member_id) {
            return Err(AppError::DeniedOwn {
                field: "id".into(),
                message: "you cannot revoke a branch record of your own; a manager above you can"
                    .into(),
            });
        }
        self.ensure_year_not_final(
            &txn,
            r.member_id,
            r.year,
            "its branch records are no longer revoked",
        )
        .await?;
        if r.revoked_at.is_some() {
            return Err(AppError::conflict(
                "already_revoked",
                "the branch record is already revoked",
            ));
        }
        let now = self.clock.now();
        let saved = branch_record::Model {
            revoked_by: Some(actor.subject.clone()),
            revoked_at: Some(now),
            revoke_reason: Some(reason.trim().to_owned()),
            version: r.version + 1,
            ..r
        };
        store::update_record(&txn, saved.clone()).await?;
        let view = RecordView::from_row(&saved);
        jifen_eventbus::stage(
            &txn,
            events::SOURCE,
            events::branch_record_changed(events::BRANCH_RECORD_REVOKED, &view),
        )
        .await?;
        store::audit(
            &txn,
            self.clock.now(),
            &actor.subject,
            "branch_record.revoke",
            ("branch_record", id.to_string()),
            serde_json::json!({}),
            reason.trim(),
        )
        .await?;
        txn.commit().await?;
        Ok(view)
    }

    /// `GET /orgs/{id}/branch-records?month=`, paged by id.
    pub async fn list_records(
        &self,
        actor: &Principal,
        org_id: Uuid,
        month: Option<Month>,
        page_size: u64,
        after: Option<Uuid>,
    ) -> Result<(Vec<RecordView>, Option<Uuid>), AppError> {
        let org = self.org_for_management(actor, org_id).await?;
        let limit = if page_size == 0 {
            50
        } else {
            page_size.min(200)
        };
        let month = month.map(|m| m.to_string());
        let rows =
            store::list_records(&self.db, &org.path, month.as_deref(), after, limit + 1).await?;
        let more = rows.len() as u64 > limit;
        let views: Vec<RecordView> = rows
            .iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(RecordView::from_row)
            .collect();
        let next = if more {
            views.last().map(|v| v.id)
        } else {
            None
        };
        Ok((views, next))
    }

    /// `POST /orgs/{id}/periods/{month}:reopen`: members of the subtree may declare for `month`
    /// until `until` (补报).
    pub async fn reopen(
        &self,
        actor: &Principal,
        org_id: Uuid,
        month: Month,
        until: DateTime<Utc>,
        reason: &str,
    ) -> Result<ReopeningView, AppError> {
        let org = self.org_for_management(actor, org_id).await?;
        let now = self.clock.now();
        let mut problems = Vec::new();
        if reason.trim().is_empty() || reason.chars().count() > MAX_TEXT {
            problems.push(Violation::new(
                "reason",
                format!("give a reason of 1 to {MAX_TEXT} characters"),
            ));
        }
        if until <= now {
            problems.push(Violation::new("until", "must be in the future"));
        } else if until > now + chrono::Duration::days(MAX_REOPEN_DAYS) {
            problems.push(Violation::new(
                "until",
                format!("a month is reopened for at most {MAX_REOPEN_DAYS} days"),
            ));
        }
        if now < month.opens_at() {
            problems.push(Violation::new(
                "month",
                "a month that has not begun cannot be reopened",
            ));
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
        self.require_standard(&self.db, month.year()).await?;
        if store::final_near(&self.db, &org.path, month.year()).await? {
            return Err(AppError::conflict(
                super::GRADING_FINAL,
                format!(
                    "grades of {} are final in or above this organization; its months are no longer reopened",
                    month.year()
                ),
            ));
        }
        let row = reopening::Model {
            id: Uuid::now_v7(),
            org_id: org.id,
            org_path: org.path.clone(),
            month: month.to_string(),
            until,
            reason: reason.trim().to_owned(),
            reopened_by: actor.subject.clone(),
            reopened_at: now,
        };
        let txn = self.db.begin().await?;
        store::insert_reopening(&txn, row.clone()).await?;
        store::audit(
            &txn,
            self.clock.now(),
            &actor.subject,
            "period.reopen",
            ("organization", org.id.to_string()),
            serde_json::json!({ "month": row.month, "until": until }),
            &row.reason,
        )
        .await?;
        txn.commit().await?;
        Ok(ReopeningView {
            id: row.id,
            org_id: row.org_id,
            month: row.month,
            until: row.until,
            reason: row.reason,
            reopened_by: row.reopened_by,
            reopened_at: row.reopened_at,
        })
    }
}
