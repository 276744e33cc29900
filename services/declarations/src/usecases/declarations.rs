//! Monthly declarations (月度申报): the member's draft, submission with the monthly caps, review
//! by the branch (支部审核), batch approval, listings and the history of transitions (痕迹管理).
//!
//! Every change makes a new version: the `declarations` row holds the newest, and
//! `declaration_versions` keeps each version's whole state; nothing is edited in place.

use super::{AppError, Declarations, RecordView, actor_name, authorize};
use crate::domain::Month;
use crate::domain::authz;
use crate::domain::declaration::{
    self, Adjustment, Decision, Line, LineInput, ReviewError, Status,
};
use crate::events;
use crate::store::{
    self, NewTransition,
    entities::{declaration as row, member_replica},
};
use chrono::{DateTime, Utc};
use jifen_platform::auth::Principal;
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait as _};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Largest page of a listing.
const MAX_PAGE: u64 = 200;
/// Default page of a listing.
const DEFAULT_PAGE: u64 = 50;
/// Most ids in one batch approval.
const MAX_BATCH: usize = 500;

/// A declaration as the API and the events show it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclarationView {
    /// `None` for the empty draft of a month the member has not saved yet.
    pub id: Option<Uuid>,
    pub member_id: Uuid,
    pub org_id: Uuid,
    pub org_path: String,
    pub month: String,
    pub status: Status,
    /// The member's lines.
    pub lines: Vec<Line>,
    /// The branch's records of the same member and month (not revoked).
    pub branch_lines: Vec<RecordView>,
    pub claimed_total: i32,
    pub approved_total: Option<i32>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub reviewer_id: Option<String>,
    pub comment: String,
    pub version: i64,
    /// Until when the member may change and submit it; `None` when the month is closed to them.
    pub open_until: Option<DateTime<Utc>>,
}

/// One transition in a declaration's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionView {
    pub at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_name: String,
    pub from_status: String,
    pub to_status: String,
    pub reason: String,
    pub version: i64,
}

fn parse_lines(r: &row::Model) -> Result<Vec<Line>, AppError> {
    serde_json::from_value(r.lines.clone())
        .map_err(|e| AppError::Corrupt(format!("declaration {} lines: {e}", r.id)))
}

fn view_of(
    r: &row::Model,
    branch_lines: Vec<RecordView>,
    open_until: Option<DateTime<Utc>>,
) -> Result<DeclarationView, AppError> {
    Ok(DeclarationView {
        id: Some(r.id),
        member_id: r.member_id,
        org_id: r.org_id,
        org_path: r.org_path.clone(),
        month: r.month.clone(),
        status: Status::parse(&r.status)
            .ok_or_else(|| AppError::Corrupt(format!("declaration {} status", r.id)))?,
        lines: parse_lines(r)?,
        branch_lines,
        claimed_total: r.claimed_total,
        approved_total: r.approved_total,
        submitted_at: r.submitted_at,
        reviewed_at: r.reviewed_at,
        reviewer_id: r.reviewer_id.clone(),
        comment: r.comment.clone(),
        version: r.version,
        open_until,
    })
}

/// The snapshot kept in `declaration_versions`.
fn snapshot(r: &row::Model) -> serde_json::Value {
    serde_json::json!({
        "member_id": r.member_id,
        "org_id": r.org_id,
        "month": r.month,
        "status": r.status,
        "lines": r.lines,
        "claimed_total": r.claimed_total,
        "approved_total": r.approved_total,
        "submitted_at": r.submitted_at,
        "reviewed_at": r.reviewed_at,
        "reviewer_id": r.reviewer_id,
        "comment": r.comment,
        "version": r.version,
    })
}

fn parse_month(r: &row::Model) -> Result<Month, AppError> {
    Month::parse(&r.month).map_err(|_| AppError::Corrupt(format!("declaration {} month", r.id)))
}

/// Attempts of a save or a submission before a concurrent change is reported (each attempt reads
/// afresh; only a change landing between the read and the write makes another).
const ATTEMPTS: usize = 3;

/// Until when a month is open at `now`: the regular window while it lasts, else a reopening
/// (补报) lasting until `reopened` (read by the caller for that instant); `None` when closed or
/// not begun.
fn window(
    month: Month,
    deadline_day: u32,
    now: DateTime<Utc>,
    reopened: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    if now < month.opens_at() {
        None
    } else if month.is_open(deadline_day, now) {
        // The regular window counts while it lasts (a reopening is for closed months).
        Some(month.closes_at(deadline_day))
    } else {
        reopened.filter(|until| *until > now)
    }
}

/// [`window`], or 409 `period_closed` saying why.
fn require_open(
    month: Month,
    deadline_day: u32,
    now: DateTime<Utc>,
    reopened: Option<DateTime<Utc>>,
) -> Result<DateTime<Utc>, AppError> {
    match window(month, deadline_day, now, reopened) {
        Some(until) => Ok(until),
        None if now < month.opens_at() => Err(AppError::conflict(
            "period_closed",
            format!("{month} has not begun: declarations open on {month}-01 (Asia/Shanghai)"),
        )),
        None => Err(AppError::conflict(
            "period_closed",
            format!(
                "{month} closed at the end of {} (Asia/Shanghai); ask the branch to reopen it for late declarations (补报)",
                month.deadline_date(deadline_day)
            ),
        )),
    }
}

/// A write that lost a race to a concurrent change on every attempt.
fn concurrent_change() -> AppError {
    AppError::conflict(
        "concurrent_change",
        "the declaration changed at the same moment; retry",
    )
}

impl Declarations {
    /// Until when `member_path`'s members may change `month` at `now` (see [`window`]).
    pub(crate) async fn open_until(
        &self,
        conn: &impl ConnectionTrait,
        member_path: &str,
        month: Month,
        deadline_day: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, AppError> {
        let reopened = if now >= month.opens_at() && !month.is_open(deadline_day, now) {
            store::reopened_until(conn, member_path, &month.to_string(), now).await?
        } else {
            None
        };
        Ok(window(month, deadline_day, now, reopened))
    }

    async fn member(
        &self,
        conn: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<member_replica::Model, AppError> {
        store::find_member(conn, id)
            .await?
            .ok_or(AppError::NotFound {
                field: "member_id",
                what: "member",
            })
    }

    /// The unit type of the organization `org_id` (its overlay applies), `other` when unknown.
    pub(crate) async fn unit_type_of(
        &self,
        conn: &impl ConnectionTrait,
        org_id: Uuid,
    ) -> Result<String, AppError> {
        Ok(store::find_org(conn, org_id)
            .await?
            .map_or_else(|| "other".to_owned(), |o| o.unit_type))
    }

    /// Branch records (not revoked) of each `(member, month)` of `keys`.
    async fn branch_lines(
        &self,
        conn: &impl ConnectionTrait,
        keys: &[(Uuid, String)],
    ) -> Result<HashMap<(Uuid, String), Vec<RecordView>>, AppError> {
        let members: Vec<Uuid> = keys
            .iter()
            .map(|(m, _)| *m)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let months: Vec<String> = keys
            .iter()
            .map(|(_, m)| m.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let wanted: HashSet<&(Uuid, String)> = keys.iter().collect();
        let mut out: HashMap<(Uuid, String), Vec<RecordView>> = HashMap::new();
        for r in store::records_of(conn, &members, &months).await? {
            let key = (r.member_id, r.month.clone());
            if r.revoked_at.is_none() && wanted.contains(&key) {
                out.entry(key).or_default().push(RecordView::from_row(&r));
            }
        }
        Ok(out)
    }

    /// `GET /members/{id}/declarations/{month}`: the declaration, or an empty draft.
    pub async fn get_declaration(
        &self,
        actor: &Principal,
        member_id: Uuid,
        month: Month,
    ) -> Result<DeclarationView, AppError> {
        let member = self.member(&self.db, member_id).await?;
        authorize(
            authz::read_declaration(actor, member.id, &member.org_path),
            "member_id",
            "member",
        )?;
        let key = (member.id, month.to_string());
        let mut branch = self
            .branch_lines(&self.db, std::slice::from_ref(&key))
            .await?;
        let branch_lines = branch.remove(&key).unwrap_or_default();
        let deadline_day = self
            .standard_for(&self.db, month.year())
            .await?
            .map(|(_, s)| s.deadline_day());
        let existing = store::find_member_month(&self.db, member.id, &key.1).await?;
        let path = existing
            .as_ref()
            .map_or(member.org_path.as_str(), |r| r.org_path.as_str());
        let open_until = match deadline_day {
            Some(day) => {
                self.open_until(&self.db, path, month, day, self.clock.now())
                    .await?
            }
            None => None,
        };
        match existing {
            Some(r) => {
                let editable = Status::parse(&r.status).is_some_and(Status::is_editable);
                view_of(&r, branch_lines, open_until.filter(|_| editable))
            }
            None => Ok(DeclarationView {
                id: None,
                member_id: member.id,
                org_id: member.org_id,
                org_path: member.org_path.clone(),
                month: key.1,
                status: Status::Draft,
                lines: Vec::new(),
                branch_lines,
                claimed_total: 0,
                approved_total: None,
                submitted_at: None,
                reviewed_at: None,
                reviewer_id: None,
                comment: String::new(),
                version: 0,
                open_until,
            }),
        }
    }

    /// `PUT /members/{id}/declarations/{month}`: replaces the lines of the member's draft (a
    /// returned declaration becomes a draft again).
    ///
    /// One unlocked read, the checks, and one guarded write ([`store::write_guarded`]); a change
    /// landing in between makes the write refuse, and the save starts over from a fresh read.
    pub async fn save_declaration(
        &self,
        actor: &Principal,
        member_id: Uuid,
        month: Month,
        inputs: &[LineInput],
    ) -> Result<DeclarationView, AppError> {
        let references: Vec<String> = inputs
            .iter()
            .flat_map(|l| l.evidence.iter().cloned())
            .collect();
        for _ in 0..ATTEMPTS {
            let now = self.clock.now();
            let context = store::save_context(
                &self.db,
                member_id,
                month.year(),
                &month.to_string(),
                &references,
                now,
            )
            .await?
            .ok_or(AppError::NotFound {
                field: "member_id",
                what: "member",
            })?;
            let member = &context.member;
            authorize(
                authz::edit_declaration(actor, member.id, &member.org_path),
                "member_id",
                "member",
            )?;
            if member.status != "active" {
                return Err(AppError::conflict(
                    "member_not_active",
                    format!("the member is {}, not active", member.status),
                ));
            }
            let (version, standard) = self
                .require_standard_at(&self.db, month.year(), context.standard_version)
                .await?;
            let items = self.items_of(month.year(), version, &standard, &context.unit_type);
            let lines = declaration::build_lines(inputs, &items, &context.uploaded, Uuid::now_v7)
                .map_err(AppError::Invalid)?;
            let open_until =
                require_open(month, standard.deadline_day(), now, context.reopened_until)?;
            let lines_json =
                serde_json::to_value(&lines).map_err(|e| AppError::Corrupt(e.to_string()))?;
            let claimed_total = declaration::claimed_total(&lines);
            let expected = context.existing.as_ref().map_or(0, |r| r.version);
            let (saved, from) = match context.existing {
                Some(r) => {
                    let status = Status::parse(&r.status)
                        .ok_or_else(|| AppError::Corrupt("status".into()))?;
                    if !status.is_editable() {
                        return Err(AppError::conflict(
                            "not_editable",
                            format!(
                                "the declaration is {}; only a draft or a returned declaration can be changed",
                                status.as_str()
                            ),
                        ));
                    }
                    let saved = row::Model {
                        status: Status::Draft.as_str().to_owned(),
                        lines: lines_json,
                        claimed_total,
                        approved_total: None,
                        version: r.version + 1,
                        updated_at: now,
                        ..r
                    };
                    (saved, Some(status))
                }
                None => (
                    row::Model {
                        id: Uuid::now_v7(),
                        member_id: member.id,
                        month: month.to_string(),
                        year: month.year(),
                        org_id: member.org_id,
                        org_path: member.org_path.clone(),
                        status: Status::Draft.as_str().to_owned(),
                        lines: lines_json,
                        claimed_total,
                        approved_total: None,
                        submitted_at: None,
                        reviewed_at: None,
                        reviewer_id: None,
                        comment: String::new(),
                        version: 1,
                        created_at: now,
                        updated_at: now,
                    },
                    None,
                ),
            };
            // A save of a draft is a new version but not a transition.
            let from_text = from.map_or("", Status::as_str);
            let reason = if from.is_some() {
                "changed after being returned"
            } else {
                "created"
            };
            let name = actor_name(actor);
            let transition = (from != Some(Status::Draft)).then(|| NewTransition {
                actor_id: &actor.subject,
                actor_name: &name,
                from_status: from_text,
                to_status: &saved.status,
                reason,
            });
            let guards = store::WriteGuards {
                expected,
                // The year's first declaration must not slip past a standard being republished.
                standard_version: from.is_none().then_some(context.standard_version),
                records: None,
            };
            let outcome =
                store::write_guarded(&self.db, &saved, guards, snapshot(&saved), transition, None)
                    .await;
            let outcome = match outcome {
                // Another save created the month's declaration meanwhile: the next attempt
                // reads it and saves over it, as if this request had come second.
                Err(e) if store::is_unique_violation(&e, "declarations_member_month_key") => {
                    continue;
                }
                other => other?,
            };
            if outcome == store::WriteOutcome::Written {
                let branch_lines: Vec<RecordView> =
                    context.records.iter().map(RecordView::from_row).collect();
                return view_of(&saved, branch_lines, Some(open_until));
            }
        }
        Err(concurrent_change())
    }

    /// Writes `r` (an existing declaration's new version), its snapshot and its transition (at
    /// `r.updated_at`).
    async fn write_transition(
        &self,
        txn: &DatabaseTransaction,
        actor: &Principal,
        r: &row::Model,
        from: &str,
        reason: &str,
    ) -> Result<(), AppError> {
        let name = actor_name(actor);
        let transition = NewTransition {
            actor_id: &actor.subject,
            actor_name: &name,
            from_status: from,
            to_status: &r.status,
            reason,
        };
        let guards = store::WriteGuards {
            expected: r.version - 1,
            standard_version: None,
            records: None,
        };
        // The caller holds the row lock: the version read is the one written over.
        match store::write_guarded(txn, r, guards, snapshot(r), Some(transition), None).await? {
            store::WriteOutcome::Written => Ok(()),
            other => Err(AppError::Corrupt(format!(
                "declaration {} changed under its row lock: {other:?}",
                r.id
            ))),
        }
    }

    async fn locked(&self, txn: &DatabaseTransaction, id: Uuid) -> Result<row::Model, AppError> {
        store::find_declaration_for_update(txn, id)
            .await?
            .ok_or(AppError::NotFound {
                field: "id",
                what: "declaration",
            })
    }

    /// `POST /declarations/{id}:submit`: checks the period and every item's monthly cap
    /// (counting the branch's records of the month), then hands the draft in.
    ///
    /// One unlocked read, the checks, and one guarded write that also stages the event; the write
    /// refuses when the declaration or the month's branch records changed since the read (it
    /// holds the member-month lock a branch recording takes), and the submission starts over.
    pub async fn submit(&self, actor: &Principal, id: Uuid) -> Result<DeclarationView, AppError> {
        for _ in 0..ATTEMPTS {
            let now = self.clock.now();
            let context =
                store::submit_context(&self.db, id, now)
                    .await?
                    .ok_or(AppError::NotFound {
                        field: "id",
                        what: "declaration",
                    })?;
            let r = context.declaration;
            authorize(
                authz::edit_declaration(actor, r.member_id, &r.org_path),
                "id",
                "declaration",
            )?;
            let status =
                Status::parse(&r.status).ok_or_else(|| AppError::Corrupt("status".into()))?;
            if status != Status::Draft {
                return Err(AppError::conflict(
                    "not_draft",
                    format!(
                        "the declaration is {}; only a draft can be submitted",
                        status.as_str()
                    ),
                ));
            }
            let month = parse_month(&r)?;
            let (version, standard) = self
                .require_standard_at(&self.db, month.year(), context.standard_version)
                .await?;
            require_open(month, standard.deadline_day(), now, context.reopened_until)?;
            let lines = parse_lines(&r)?;
            if lines.is_empty() {
                return Err(AppError::invalid(
                    "lines",
                    "a declaration needs at least one line to be submitted",
                ));
            }
            let items = self.items_of(month.year(), version, &standard, &context.unit_type);
            // The branch's records of the month: counted against the caps, and shown in the answer.
            let branch_lines: Vec<RecordView> =
                context.records.iter().map(RecordView::from_row).collect();
            let mut recorded: HashMap<String, i32> = HashMap::new();
            for b in &branch_lines {
                *recorded.entry(b.item_code.clone()).or_insert(0) += b.points;
            }
            let claimed: Vec<(usize, &str, i32)> = lines
                .iter()
                .enumerate()
                .map(|(i, l)| (i, l.item_code.as_str(), l.claimed_points))
                .collect();
            if let Err(over) = declaration::check_monthly_caps(&claimed, &recorded, &items) {
                return Err(AppError::Rule {
                    code: "monthly_cap_exceeded",
                    message: format!(
                        "item {} is capped at {} points a month; this month would count {} (the branch's records included)",
                        over.item_code,
                        declaration::fmt_points(over.cap),
                        declaration::fmt_points(over.total)
                    ),
                    field: Some(
                        over.line
                            .map_or_else(|| "lines".to_owned(), |i| format!("lines[{i}].quantity")),
                    ),
                });
            }
            let expected = r.version;
            let saved = row::Model {
                status: Status::Submitted.as_str().to_owned(),
                submitted_at: Some(now),
                reviewed_at: None,
                reviewer_id: None,
                comment: String::new(),
                version: r.version + 1,
                updated_at: now,
                ..r
            };
            let view = view_of(&saved, Vec::new(), None)?;
            let event = jifen_eventbus::StagedEvent::prepare(
                events::SOURCE,
                events::declaration_changed(events::DECLARATION_SUBMITTED, &view),
            )?;
            let name = actor_name(actor);
            let transition = NewTransition {
                actor_id: &actor.subject,
                actor_name: &name,
                from_status: Status::Draft.as_str(),
                to_status: &saved.status,
                reason: "submitted",
            };
            let counted: Vec<Uuid> = context.records.iter().map(|b| b.id).collect();
            let guards = store::WriteGuards {
                expected,
                standard_version: None,
                records: Some(&counted),
            };
            let outcome = store::write_guarded(
                &self.db,
                &saved,
                guards,
                snapshot(&saved),
                Some(transition),
                Some(&event),
            )
            .await?;
            if outcome == store::WriteOutcome::Written {
                metrics::counter!("jifen_declarations_submitted_total").increment(1);
                return Ok(DeclarationView {
                    branch_lines,
                    ..view
                });
            }
        }
        Err(concurrent_change())
    }

    async fn with_branch_lines(
        &self,
        mut view: DeclarationView,
    ) -> Result<DeclarationView, AppError> {
        let key = (view.member_id, view.month.clone());
        view.branch_lines = self
            .branch_lines(&self.db, std::slice::from_ref(&key))
            .await?
            .remove(&key)
            .unwrap_or_default();
        Ok(view)
    }

    /// Applies one review to a locked row; the caller authorized it. Stages the event.
    async fn apply_review(
        &self,
        txn: &DatabaseTransaction,
        actor: &Principal,
        r: row::Model,
        decision: Decision,
        adjustments: &[Adjustment],
        comment: &str,
    ) -> Result<DeclarationView, AppError> {
        let status = Status::parse(&r.status).ok_or_else(|| AppError::Corrupt("status".into()))?;
        let lines = parse_lines(&r)?;
        let reviewed = declaration::review(status, &lines, decision, adjustments, comment)
            .map_err(|e| match e {
                ReviewError::NotSubmitted(status) => AppError::conflict(
                    "not_submitted",
                    format!(
                        "the declaration is {}; only a submitted declaration can be reviewed",
                        status.as_str()
                    ),
                ),
                ReviewError::Invalid(v) => AppError::Invalid(v),
            })?;
        let now = self.clock.now();
        let saved = row::Model {
            status: reviewed.status.as_str().to_owned(),
            lines: serde_json::to_value(&reviewed.lines)
                .map_err(|e| AppError::Corrupt(e.to_string()))?,
            approved_total: reviewed.approved_total,
            reviewed_at: Some(now),
            reviewer_id: Some(actor.subject.clone()),
            comment: comment.trim().to_owned(),
            version: r.version + 1,
            updated_at: now,
            ..r
        };
        let mut reason = comment.trim().to_owned();
        for adj in adjustments.iter().filter(|a| !a.reason.trim().is_empty()) {
            if let Some(line) = reviewed.lines.iter().find(|l| l.line_id == adj.line_id) {
                if !reason.is_empty() {
                    reason.push_str("; ");
                }
                reason.push_str(&format!(
                    "{} {} → {}: {}",
                    line.item_code,
                    declaration::fmt_points(line.claimed_points),
                    declaration::fmt_points(adj.approved_points),
                    adj.reason.trim()
                ));
            }
        }
        self.write_transition(txn, actor, &saved, Status::Submitted.as_str(), &reason)
            .await?;
        let view = view_of(&saved, Vec::new(), None)?;
        let key = match reviewed.status {
            Status::Approved => events::DECLARATION_APPROVED,
            Status::Rejected => events::DECLARATION_REJECTED,
            _ => events::DECLARATION_RETURNED,
        };
        jifen_eventbus::stage(txn, events::SOURCE, events::declaration_changed(key, &view)).await?;
        metrics::counter!("jifen_declarations_reviewed_total", "decision" => reviewed.status.as_str()).increment(1);
        Ok(view)
    }

    /// `POST /declarations/{id}:review`. Two reviewers at the same moment: the row lock orders
    /// them, and the second finds the declaration no longer submitted (409).
    pub async fn review(
        &self,
        actor: &Principal,
        id: Uuid,
        decision: Decision,
        adjustments: &[Adjustment],
        comment: &str,
    ) -> Result<DeclarationView, AppError> {
        let txn = self.db.begin().await?;
        let r = self.locked(&txn, id).await?;
        authorize(
            authz::review_declaration(actor, r.member_id, &r.org_path),
            "id",
            "declaration",
        )?;
        self.ensure_year_not_final(
            &txn,
            r.member_id,
            r.year,
            "its declarations are no longer reviewed",
        )
        .await?;
        let view = self
            .apply_review(&txn, actor, r, decision, adjustments, comment)
            .await?;
        txn.commit().await?;
        self.with_branch_lines(view).await
    }

    /// `POST /orgs/{id}/declarations:batch-approve`: approves each submitted declaration of the
    /// organization's subtree and month with its claimed points; the others are skipped with a
    /// reason. All in one transaction.
    pub async fn batch_approve(
        &self,
        actor: &Principal,
        org_id: Uuid,
        month: Month,
        ids: &[Uuid],
    ) -> Result<(usize, Vec<(Uuid, &'static str)>), AppError> {
        if ids.is_empty() || ids.len() > MAX_BATCH {
            return Err(AppError::invalid(
                "declaration_ids",
                format!("give from 1 to {MAX_BATCH} ids"),
            ));
        }
        let org = self.org_for_management(actor, org_id).await?;
        let txn = self.db.begin().await?;
        let mut approved = 0;
        let mut skipped = Vec::new();
        let mut seen = HashSet::new();
        for &id in ids {
            if !seen.insert(id) {
                continue;
            }
            let Some(r) = store::find_declaration_for_update(&txn, id).await? else {
                skipped.push((id, "not_found"));
                continue;
            };
            if !r.org_path.starts_with(&org.path) {
                skipped.push((id, "not_found"));
            } else if r.month != month.to_string() {
                skipped.push((id, "wrong_month"));
            } else if actor.is_member(r.member_id) {
                skipped.push((id, "own_declaration"));
            } else if r.status != Status::Submitted.as_str() {
                skipped.push((id, "not_submitted"));
            } else if super::year_is_final(&txn, r.member_id, r.year).await? {
                skipped.push((id, super::GRADING_FINAL));
            } else {
                self.apply_review(&txn, actor, r, Decision::Approve, &[], "")
                    .await?;
                approved += 1;
            }
        }
        txn.commit().await?;
        Ok((approved, skipped))
    }

    /// The organization `org_id` when the caller may manage it.
    pub(crate) async fn org_for_management(
        &self,
        actor: &Principal,
        org_id: Uuid,
    ) -> Result<crate::store::entities::org_replica::Model, AppError> {
        let org = store::find_org(&self.db, org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "organization",
            })?;
        let own_path = match actor.member_id {
            Some(id) => store::find_member(&self.db, id).await?.map(|m| m.org_path),
            None => None,
        };
        authorize(
            authz::manage_org(actor, &org.path, own_path.as_deref()),
            "org_id",
            "organization",
        )?;
        Ok(org)
    }

    /// `GET /orgs/{id}/declarations?month=&status=`, paged by id.
    pub async fn list(
        &self,
        actor: &Principal,
        org_id: Uuid,
        month: Option<Month>,
        status: Option<Status>,
        page_size: u64,
        after: Option<Uuid>,
    ) -> Result<(Vec<DeclarationView>, Option<Uuid>), AppError> {
        let org = self.org_for_management(actor, org_id).await?;
        let limit = if page_size == 0 {
            DEFAULT_PAGE
        } else {
            page_size.min(MAX_PAGE)
        };
        let month = month.map(|m| m.to_string());
        let rows = store::list_declarations(
            &self.db,
            &org.path,
            month.as_deref(),
            status.map(Status::as_str),
            after,
            limit + 1,
        )
        .await?;
        let more = rows.len() as u64 > limit;
        let rows: Vec<_> = rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        let keys: Vec<(Uuid, String)> = rows
            .iter()
            .map(|r| (r.member_id, r.month.clone()))
            .collect();
        let mut branch = self.branch_lines(&self.db, &keys).await?;
        let views = rows
            .iter()
            .map(|r| {
                view_of(
                    r,
                    branch
                        .remove(&(r.member_id, r.month.clone()))
                        .unwrap_or_default(),
                    None,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = if more {
            views.last().and_then(|v| v.id)
        } else {
            None
        };
        Ok((views, next))
    }

    /// `GET /declarations/{id}/history`: every transition, oldest first.
    pub async fn history(
        &self,
        actor: &Principal,
        id: Uuid,
    ) -> Result<Vec<TransitionView>, AppError> {
        let r = store::find_declaration(&self.db, id)
            .await?
            .ok_or(AppError::NotFound {
                field: "id",
                what: "declaration",
            })?;
        authorize(
            authz::read_declaration(actor, r.member_id, &r.org_path),
            "id",
            "declaration",
        )?;
        Ok(store::transitions(&self.db, id)
            .await?
            .into_iter()
            .map(|t| TransitionView {
                at: t.at,
                actor_id: t.actor_id,
                actor_name: t.actor_name,
                from_status: t.from_status,
                to_status: t.to_status,
                reason: t.reason,
                version: t.version,
            })
            .collect())
    }
}
