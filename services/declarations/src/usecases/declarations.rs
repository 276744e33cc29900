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
    entities::{branch_record, declaration as row, member_replica, org_replica},
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

/// The evidence references of `inputs`' lines.
fn references_of(inputs: &[LineInput]) -> Vec<String> {
    inputs
        .iter()
        .flat_map(|l| l.evidence.iter().cloned())
        .collect()
}

/// Whether every guarded write was written.
fn all_written(outcomes: &[store::WriteOutcome]) -> bool {
    outcomes.iter().all(|o| *o == store::WriteOutcome::Written)
}

/// A save decided by [`Declarations::plan_save`], to be written.
struct SavePlan {
    /// The declaration's new version (a draft).
    saved: row::Model,
    /// The status saved over; `None` when the save creates the declaration.
    from: Option<Status>,
    /// The version read (0: none).
    expected: i64,
    /// The standard version the save was checked against.
    standard_version: i64,
    open_until: DateTime<Utc>,
    /// The branch's unrevoked records of the month, as read.
    records: Vec<branch_record::Model>,
}

impl SavePlan {
    /// The transition the save records: none for a save of a draft (a new version, not a
    /// transition).
    fn transition<'a>(&'a self, actor: &'a Principal, name: &'a str) -> Option<NewTransition<'a>> {
        (self.from != Some(Status::Draft)).then(|| NewTransition {
            actor_id: &actor.subject,
            actor_name: name,
            from_status: self.from.map_or("", Status::as_str),
            to_status: &self.saved.status,
            reason: if self.from.is_some() {
                "changed after being returned"
            } else {
                "created"
            },
        })
    }

    fn guards(&self) -> store::WriteGuards<'static> {
        store::WriteGuards {
            expected: self.expected,
            // The year's first declaration must not slip past a standard being republished.
            standard_version: self.from.is_none().then_some(self.standard_version),
            records: None,
        }
    }
}

/// A submission decided by [`Declarations::plan_submit`], to be written.
struct SubmitPlan {
    /// The declaration's new version (submitted).
    saved: row::Model,
    /// The version read.
    expected: i64,
    /// The branch records counted against the caps.
    counted: Vec<Uuid>,
    view: DeclarationView,
    /// `declarations.declaration.submitted.v1`.
    event: jifen_eventbus::StagedEvent,
    branch_lines: Vec<RecordView>,
}

impl SubmitPlan {
    fn transition<'a>(&'a self, actor: &'a Principal, name: &'a str) -> NewTransition<'a> {
        NewTransition {
            actor_id: &actor.subject,
            actor_name: name,
            from_status: Status::Draft.as_str(),
            to_status: &self.saved.status,
            reason: "submitted",
        }
    }

    fn guards(&self) -> store::WriteGuards<'_> {
        store::WriteGuards {
            expected: self.expected,
            standard_version: None,
            records: Some(&self.counted),
        }
    }
}

/// One entry of a batch, decided: its save and the submission of the saved draft.
struct EntryPlan {
    save: SavePlan,
    submit: SubmitPlan,
}

/// A review decided by [`Declarations::plan_review`], to be written.
struct ReviewPlan {
    saved: row::Model,
    /// The transition's reason: the comment and each adjustment's.
    reason: String,
    view: DeclarationView,
    event: jifen_eventbus::StagedEvent,
}

/// One member's declaration in [`Declarations::declare_batch`]: the lines `member_id` declares,
/// saved and submitted by `actor` (the member themself, as over the API).
#[derive(Debug, Clone)]
pub struct BatchEntry {
    pub actor: Principal,
    pub member_id: Uuid,
    pub lines: Vec<LineInput>,
}

/// An entry of a batch refused, and why: `error` is what [`Declarations::save_declaration`] or
/// [`Declarations::submit`] would have answered for it alone.
#[derive(Debug)]
pub struct EntryError {
    /// The entry's position in the batch.
    pub index: usize,
    pub member_id: Uuid,
    pub error: AppError,
}

impl EntryError {
    /// The fields at fault, named from the batch (`entries[3].lines[0].quantity`); the entry
    /// itself (`entries[3]`) when the rule is not about one field.
    pub fn fields(&self) -> Vec<String> {
        let entry = format!("entries[{}]", self.index);
        let inner: Vec<String> = match &self.error {
            AppError::Invalid(violations) => violations.iter().map(|v| v.field.clone()).collect(),
            AppError::Rule {
                field: Some(field), ..
            } => vec![field.clone()],
            AppError::DeniedOwn { field, .. } => vec![field.clone()],
            AppError::NotFound { field, .. } => vec![(*field).to_owned()],
            _ => Vec::new(),
        };
        if inner.is_empty() {
            vec![entry]
        } else {
            inner.iter().map(|f| format!("{entry}.{f}")).collect()
        }
    }

    /// The machine code of the rule broken (`invalid`, `period_closed`, `monthly_cap_exceeded`…).
    pub fn code(&self) -> &'static str {
        match &self.error {
            AppError::Invalid(_) => "invalid",
            AppError::Denied | AppError::DeniedOwn { .. } => "permission_denied",
            AppError::NotFound { .. } => "not_found",
            AppError::Conflict { code, .. } | AppError::Rule { code, .. } => code,
            _ => "internal",
        }
    }
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entries[{}] (member {}): ", self.index, self.member_id)?;
        match &self.error {
            AppError::Invalid(violations) => {
                let text: Vec<String> = violations
                    .iter()
                    .map(|v| format!("entries[{}].{}: {}", self.index, v.field, v.message))
                    .collect();
                write!(f, "{}", text.join("; "))
            }
            other => write!(f, "{} ({}): {other}", self.fields().join(", "), self.code()),
        }
    }
}

/// Why [`Declarations::declare_batch`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// These entries were refused (every one of them, in entry order).
    #[error("{} of the batch's entries refused: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | "))]
    Entries(Vec<EntryError>),
    /// The batch as a whole failed (bad size, unknown organization, database, a change landing
    /// on every attempt).
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<sea_orm::DbErr> for BatchError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::App(AppError::Db(e))
    }
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
    /// One unlocked read, the checks ([`Self::plan_save`]), and one guarded write
    /// ([`store::write_guarded`]); a change landing in between makes the write refuse, and the
    /// save starts over from a fresh read.
    pub async fn save_declaration(
        &self,
        actor: &Principal,
        member_id: Uuid,
        month: Month,
        inputs: &[LineInput],
    ) -> Result<DeclarationView, AppError> {
        let references = references_of(inputs);
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
            let plan = self.plan_save(actor, month, inputs, context, now).await?;
            let name = actor_name(actor);
            let outcome = store::write_guarded(
                &self.db,
                &plan.saved,
                plan.guards(),
                snapshot(&plan.saved),
                plan.transition(actor, &name),
                None,
            )
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
                    plan.records.iter().map(RecordView::from_row).collect();
                return view_of(&plan.saved, branch_lines, Some(plan.open_until));
            }
        }
        Err(concurrent_change())
    }

    /// Decides a save from its context read at `now`: the caller may edit the member's
    /// declarations, the member is active, the year has a standard, every line is valid
    /// ([`declaration::build_lines`]), the month is open to the member ([`require_open`]) and the
    /// declaration (if any) is a draft or returned. Writes nothing.
    async fn plan_save(
        &self,
        actor: &Principal,
        month: Month,
        inputs: &[LineInput],
        context: store::SaveContext,
        now: DateTime<Utc>,
    ) -> Result<SavePlan, AppError> {
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
        let open_until = require_open(month, standard.deadline_day(), now, context.reopened_until)?;
        let lines_json =
            serde_json::to_value(&lines).map_err(|e| AppError::Corrupt(e.to_string()))?;
        let claimed_total = declaration::claimed_total(&lines);
        let expected = context.existing.as_ref().map_or(0, |r| r.version);
        let (saved, from) = match context.existing {
            Some(r) => {
                let status =
                    Status::parse(&r.status).ok_or_else(|| AppError::Corrupt("status".into()))?;
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
        Ok(SavePlan {
            saved,
            from,
            expected,
            standard_version: context.standard_version,
            open_until,
            records: context.records,
        })
    }

    /// `POST /declarations/{id}:submit`: checks the period and every item's monthly cap
    /// (counting the branch's records of the month), then hands the draft in.
    ///
    /// One unlocked read, the checks ([`Self::plan_submit`]), and one guarded write that also
    /// stages the event; the write refuses when the declaration or the month's branch records
    /// changed since the read (it holds the member-month lock a branch recording takes), and the
    /// submission starts over.
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
            let plan = self
                .plan_submit(
                    actor,
                    context.declaration,
                    &context.unit_type,
                    context.standard_version,
                    &context.records,
                    context.reopened_until,
                    now,
                )
                .await?;
            let name = actor_name(actor);
            let outcome = store::write_guarded(
                &self.db,
                &plan.saved,
                plan.guards(),
                snapshot(&plan.saved),
                Some(plan.transition(actor, &name)),
                Some(&plan.event),
            )
            .await?;
            if outcome == store::WriteOutcome::Written {
                metrics::counter!("jifen_declarations_submitted_total").increment(1);
                return Ok(DeclarationView {
                    branch_lines: plan.branch_lines,
                    ..plan.view
                });
            }
        }
        Err(concurrent_change())
    }

    /// Decides the submission of the declaration `r` from its context read at `now` (the unit
    /// type of its organization, the newest standard version of its year, the branch's
    /// unrevoked records of its month, the reopening keeping the month open): the caller may
    /// edit it, it is a draft with lines, the month is open ([`require_open`]) and no item
    /// passes its monthly cap ([`declaration::check_monthly_caps`]). Prepares the event; writes
    /// nothing.
    #[allow(clippy::too_many_arguments)]
    async fn plan_submit(
        &self,
        actor: &Principal,
        r: row::Model,
        unit_type: &str,
        standard_version: i64,
        records: &[branch_record::Model],
        reopened_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<SubmitPlan, AppError> {
        authorize(
            authz::edit_declaration(actor, r.member_id, &r.org_path),
            "id",
            "declaration",
        )?;
        let status = Status::parse(&r.status).ok_or_else(|| AppError::Corrupt("status".into()))?;
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
            .require_standard_at(&self.db, month.year(), standard_version)
            .await?;
        require_open(month, standard.deadline_day(), now, reopened_until)?;
        let lines = parse_lines(&r)?;
        if lines.is_empty() {
            return Err(AppError::invalid(
                "lines",
                "a declaration needs at least one line to be submitted",
            ));
        }
        let items = self.items_of(month.year(), version, &standard, unit_type);
        // The branch's records of the month: counted against the caps, and shown in the answer.
        let branch_lines: Vec<RecordView> = records.iter().map(RecordView::from_row).collect();
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
        Ok(SubmitPlan {
            saved,
            expected,
            counted: records.iter().map(|b| b.id).collect(),
            view,
            event,
            branch_lines,
        })
    }

    /// Saves and submits the declarations of `month` of many members of the organization
    /// `org_id`'s subtree in one transaction (the demo history's members declaring a month;
    /// not offered over gRPC): each entry goes through the same checks as
    /// [`Self::save_declaration`] followed by [`Self::submit`], with its own actor, and is
    /// written as they would write it (the same rows, versions, transitions and events), with
    /// one statement for all the saves and one for all the submissions instead of four round
    /// trips a member.
    ///
    /// All or nothing: when any entry is refused, the answer names every refused entry and the
    /// rule it broke ([`BatchError::Entries`], fields like `entries[3].lines[0].quantity`) and
    /// nothing is written. A change landing between the read and the writes (a branch
    /// recording, a concurrent save, a standard published) rolls the whole batch back and it
    /// starts over from a fresh read. The views come back in entry order.
    pub async fn declare_batch(
        &self,
        org_id: Uuid,
        month: Month,
        entries: &[BatchEntry],
    ) -> Result<Vec<DeclarationView>, BatchError> {
        if entries.is_empty() || entries.len() > MAX_BATCH {
            return Err(AppError::invalid(
                "entries",
                format!("give from 1 to {MAX_BATCH} entries"),
            )
            .into());
        }
        let org = store::find_org(&self.db, org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "organization",
            })?;
        let mut first_entry: HashMap<Uuid, usize> = HashMap::new();
        let mut refused = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            if let Some(first) = first_entry.get(&entry.member_id) {
                refused.push(EntryError {
                    index,
                    member_id: entry.member_id,
                    error: AppError::invalid(
                        "member_id",
                        format!("the member has entries[{first}] already; one entry a member"),
                    ),
                });
            } else {
                first_entry.insert(entry.member_id, index);
            }
        }
        if !refused.is_empty() {
            return Err(BatchError::Entries(refused));
        }
        let member_ids: Vec<Uuid> = entries.iter().map(|e| e.member_id).collect();
        let references: Vec<String> = entries
            .iter()
            .flat_map(|e| references_of(&e.lines))
            .collect();
        let month_text = month.to_string();
        for _ in 0..ATTEMPTS {
            let now = self.clock.now();
            let mut contexts = store::batch_contexts(
                &self.db,
                &member_ids,
                month.year(),
                &month_text,
                &references,
                now,
            )
            .await?;
            let mut planned = Vec::with_capacity(entries.len());
            for (index, entry) in entries.iter().enumerate() {
                let context = contexts.remove(&entry.member_id);
                match self.plan_entry(&org, month, entry, context, now).await {
                    Ok(plan) => planned.push((index, plan)),
                    Err(error) => refused.push(EntryError {
                        index,
                        member_id: entry.member_id,
                        error,
                    }),
                }
            }
            if !refused.is_empty() {
                return Err(BatchError::Entries(refused));
            }
            // In member order: each submission takes its member-month lock, and a branch
            // recording takes the same locks in the same order.
            planned.sort_by_key(|(_, plan)| plan.save.saved.member_id);
            let names: Vec<String> = planned
                .iter()
                .map(|(index, _)| actor_name(&entries[*index].actor))
                .collect();
            let saves: Vec<store::GuardedWrite<'_>> = planned
                .iter()
                .zip(&names)
                .map(|((index, plan), name)| store::GuardedWrite {
                    row: &plan.save.saved,
                    guards: plan.save.guards(),
                    snapshot: snapshot(&plan.save.saved),
                    transition: plan.save.transition(&entries[*index].actor, name),
                    event: None,
                })
                .collect();
            let submissions: Vec<store::GuardedWrite<'_>> = planned
                .iter()
                .zip(&names)
                .map(|((index, plan), name)| store::GuardedWrite {
                    row: &plan.submit.saved,
                    guards: plan.submit.guards(),
                    snapshot: snapshot(&plan.submit.saved),
                    transition: Some(plan.submit.transition(&entries[*index].actor, name)),
                    event: Some(&plan.submit.event),
                })
                .collect();
            let txn = self.db.begin().await?;
            let written = match store::write_guarded_many(&txn, saves).await {
                // Another save created one of the declarations meanwhile: start over.
                Err(e) if store::is_unique_violation(&e, "declarations_member_month_key") => {
                    txn.rollback().await?;
                    continue;
                }
                other => other?,
            };
            if !all_written(&written) {
                txn.rollback().await?;
                continue;
            }
            let written = store::write_guarded_many(&txn, submissions).await?;
            if !all_written(&written) {
                txn.rollback().await?;
                continue;
            }
            txn.commit().await?;
            metrics::counter!("jifen_declarations_submitted_total").increment(planned.len() as u64);
            planned.sort_by_key(|(index, _)| *index);
            return Ok(planned
                .into_iter()
                .map(|(_, plan)| DeclarationView {
                    branch_lines: plan.submit.branch_lines,
                    ..plan.submit.view
                })
                .collect());
        }
        Err(concurrent_change().into())
    }

    /// One entry of [`Self::declare_batch`] decided from its context: the member is known and in
    /// the organization's subtree, then the save and the submission of the saved draft.
    async fn plan_entry(
        &self,
        org: &org_replica::Model,
        month: Month,
        entry: &BatchEntry,
        context: Option<store::BatchContext>,
        now: DateTime<Utc>,
    ) -> Result<EntryPlan, AppError> {
        let context = context.ok_or(AppError::NotFound {
            field: "member_id",
            what: "member",
        })?;
        let member = &context.save.member;
        // Authorization first, so a member the actor may not see stays hidden.
        authorize(
            authz::edit_declaration(&entry.actor, member.id, &member.org_path),
            "member_id",
            "member",
        )?;
        if !member.org_path.starts_with(&org.path) {
            return Err(AppError::invalid(
                "member_id",
                "not a member of this organization",
            ));
        }
        let store::BatchContext {
            save: context,
            declaration_unit_type,
        } = context;
        let standard_version = context.standard_version;
        let reopened_until = context.reopened_until;
        let save = self
            .plan_save(&entry.actor, month, &entry.lines, context, now)
            .await?;
        let submit = self
            .plan_submit(
                &entry.actor,
                save.saved.clone(),
                &declaration_unit_type,
                standard_version,
                &save.records,
                reopened_until,
                now,
            )
            .await?;
        Ok(EntryPlan { save, submit })
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

    /// Decides one review of the locked row `r` at `now`; the caller authorized it. Writes
    /// nothing.
    fn plan_review(
        &self,
        r: row::Model,
        reviewer: &Principal,
        decision: Decision,
        adjustments: &[Adjustment],
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<ReviewPlan, AppError> {
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
        let saved = row::Model {
            status: reviewed.status.as_str().to_owned(),
            lines: serde_json::to_value(&reviewed.lines)
                .map_err(|e| AppError::Corrupt(e.to_string()))?,
            approved_total: reviewed.approved_total,
            reviewed_at: Some(now),
            reviewer_id: Some(reviewer.subject.clone()),
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
        let view = view_of(&saved, Vec::new(), None)?;
        let key = match reviewed.status {
            Status::Approved => events::DECLARATION_APPROVED,
            Status::Rejected => events::DECLARATION_REJECTED,
            _ => events::DECLARATION_RETURNED,
        };
        let event = jifen_eventbus::StagedEvent::prepare(
            events::SOURCE,
            events::declaration_changed(key, &view),
        )?;
        Ok(ReviewPlan {
            saved,
            reason,
            view,
            event,
        })
    }

    /// Writes the reviews `plans` by `reviewer` in the caller's transaction, which holds their
    /// rows' locks: each new version with its snapshot, its transition from `submitted` and its
    /// event, in one statement.
    async fn write_reviews(
        &self,
        txn: &DatabaseTransaction,
        reviewer: &Principal,
        plans: &[ReviewPlan],
    ) -> Result<(), AppError> {
        if plans.is_empty() {
            return Ok(());
        }
        let name = actor_name(reviewer);
        let writes = plans
            .iter()
            .map(|p| store::GuardedWrite {
                row: &p.saved,
                // The caller holds the row lock: the version read is the one written over.
                guards: store::WriteGuards {
                    expected: p.saved.version - 1,
                    standard_version: None,
                    records: None,
                },
                snapshot: snapshot(&p.saved),
                transition: Some(NewTransition {
                    actor_id: &reviewer.subject,
                    actor_name: &name,
                    from_status: Status::Submitted.as_str(),
                    to_status: &p.saved.status,
                    reason: &p.reason,
                }),
                event: Some(&p.event),
            })
            .collect();
        let outcomes = store::write_guarded_many(txn, writes).await?;
        for (p, outcome) in plans.iter().zip(outcomes) {
            if outcome != store::WriteOutcome::Written {
                return Err(AppError::Corrupt(format!(
                    "declaration {} changed under its row lock: {outcome:?}",
                    p.saved.id
                )));
            }
            metrics::counter!("jifen_declarations_reviewed_total", "decision" => p.view.status.as_str()).increment(1);
        }
        Ok(())
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
        let r = store::find_declaration_for_update(&txn, id)
            .await?
            .ok_or(AppError::NotFound {
                field: "id",
                what: "declaration",
            })?;
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
        let plan = self.plan_review(r, actor, decision, adjustments, comment, self.clock.now())?;
        self.write_reviews(&txn, actor, std::slice::from_ref(&plan))
            .await?;
        txn.commit().await?;
        self.with_branch_lines(plan.view).await
    }

    /// `POST /orgs/{id}/declarations:batch-approve`: approves each submitted declaration of the
    /// organization's subtree and month with its claimed points; the others are skipped with a
    /// reason. All in one transaction: the rows locked in one statement, the final grades read
    /// in one, and the approvals written in one.
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
        let month_text = month.to_string();
        let txn = self.db.begin().await?;
        let mut rows = store::find_declarations_for_update(&txn, ids).await?;
        // Whose grade of the month's year is final, among the members of the month's rows.
        let members: Vec<Uuid> = rows
            .values()
            .filter(|r| r.month == month_text)
            .map(|r| r.member_id)
            .collect();
        let finals = store::final_members(&txn, &members, month.year()).await?;
        let now = self.clock.now();
        let mut plans = Vec::new();
        let mut skipped = Vec::new();
        let mut seen = HashSet::new();
        for &id in ids {
            if !seen.insert(id) {
                continue;
            }
            let Some(r) = rows.remove(&id) else {
                skipped.push((id, "not_found"));
                continue;
            };
            if !r.org_path.starts_with(&org.path) {
                skipped.push((id, "not_found"));
            } else if r.month != month_text {
                skipped.push((id, "wrong_month"));
            } else if actor.is_member(r.member_id) {
                skipped.push((id, "own_declaration"));
            } else if r.status != Status::Submitted.as_str() {
                skipped.push((id, "not_submitted"));
            } else if finals.contains(&r.member_id) {
                skipped.push((id, super::GRADING_FINAL));
            } else {
                plans.push(self.plan_review(r, actor, Decision::Approve, &[], "", now)?);
            }
        }
        self.write_reviews(&txn, actor, &plans).await?;
        txn.commit().await?;
        Ok((plans.len(), skipped))
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
