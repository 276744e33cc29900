//! Computing, confirming, appealing and finalizing gradings (RULES.md §5 steps 6–8).
//!
//! A branch's grading moves `proposed → confirmed → final`. Proposals are recomputed freely until
//! the branch confirms; confirmation fixes every grade (one-step overrides with a reason, the
//! excellent quota still holding) and opens the 公示 publication of `publication_days`; members
//! appeal while confirmed; the upper committee decides appeals and, after the publication and
//! with no appeal open, finalizes — which publishes every member's final grade as an event.

use super::{AppError, Grading, authorize, check_year, inputs};
use crate::authz;
use crate::domain;
use crate::domain::MemberInput;
use crate::events;
use crate::store::gradings::{self, AppealRow, AuditLine, GradeRow, GradingRow, NewGrade};
use crate::store::inputs as inputs_store;
use crate::store::projection::{self, OrgRow};
use chrono::{DateTime, Utc};
use jifen_platform::auth::Principal;
use jifen_proto::events::v1 as ev;
use jifen_standard::Grade;
use sea_orm::TransactionTrait as _;
use std::collections::HashMap;
use std::str::FromStr as _;
use uuid::Uuid;

/// A grading as the API shows it: one branch, or every branch of a subtree.
#[derive(Debug, Clone)]
pub struct GradingView {
    pub org_id: Uuid,
    pub year: i32,
    /// The least advanced status of the branches.
    pub status: String,
    pub branches: Vec<GradingRow>,
    pub members: Vec<GradeRow>,
}

/// What grading one branch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchOutcome {
    /// New or changed proposals were stored.
    Stored,
    /// The same inputs gave the same proposals: nothing written.
    Unchanged,
    /// The branch's grading is already confirmed or final: left alone.
    Settled,
}

fn status_rank(status: &str) -> u8 {
    match status {
        "proposed" => 0,
        "confirmed" => 1,
        _ => 2,
    }
}

fn parse_grade(field: String, text: &str) -> Result<Grade, AppError> {
    Grade::from_str(text).map_err(|_| {
        AppError::invalid(
            field,
            "must be one of excellent, qualified, basically_qualified, unqualified",
        )
    })
}

impl Grading {
    pub(super) async fn org(&self, org_id: Uuid) -> Result<OrgRow, AppError> {
        projection::find_org(&self.db, org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "organization",
            })
    }

    /// Grades `branches` now — the branches of a subtree (or one shard of them) in the byte order
    /// of their paths, as [`projection::branches_under`] lists them — and stores the proposals of
    /// those whose grading is not yet confirmed and whose proposals changed. The year-end batch
    /// and `ComputeGrading` both come here, so they always agree.
    ///
    /// The inputs are one stream, in path order, of every member with their year aggregated by
    /// PostgreSQL; members are gathered into chunks of [`crate::batch::CHUNK`] branches, and each
    /// chunk is graded and written in one transaction while the stream goes on. `progress` is
    /// told `(done, total)` branches after each chunk.
    pub async fn grade_subtree(
        &self,
        branches: &[OrgRow],
        year: i32,
        actor: &str,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<Vec<(Uuid, BranchOutcome)>, AppError> {
        use futures::StreamExt as _;
        let (Some(first), Some(last)) = (branches.first(), branches.last()) else {
            return Ok(Vec::new());
        };
        let standard = self.standard_for(year).await?;
        let through = self.through_month(year)?;
        let index: HashMap<&str, usize> = branches
            .iter()
            .enumerate()
            .map(|(i, b)| (b.path.as_str(), i))
            .collect();
        let chunk = crate::batch::CHUNK;
        let total = branches.len() as u64;
        let chunk_at = |start: usize| -> Vec<Vec<MemberInput>> {
            vec![Vec::new(); chunk.min(branches.len().saturating_sub(start))]
        };

        // This task reads the stream and gathers chunks; each full chunk is graded and stored by
        // its own task (two at most at a time), so decoding, grading and writing overlap.
        let mut tasks: tokio::task::JoinSet<Result<Vec<(Uuid, BranchOutcome)>, AppError>> =
            tokio::task::JoinSet::new();
        let mut outcomes = Vec::with_capacity(branches.len());
        let mut finish_one = async |tasks: &mut tokio::task::JoinSet<_>,
                                    outcomes: &mut Vec<(Uuid, BranchOutcome)>|
               -> Result<(), AppError> {
            if let Some(done) = tasks.join_next().await {
                outcomes
                    .extend(done.map_err(|e| AppError::Corrupt(format!("grading task: {e}")))??);
                progress(outcomes.len() as u64, total);
            }
            Ok(())
        };
        let spawn =
            |tasks: &mut tokio::task::JoinSet<_>, start: usize, inputs: Vec<Vec<MemberInput>>| {
                let this = self.clone();
                let standard = standard.clone();
                let actor = actor.to_owned();
                let part: Vec<OrgRow> = branches[start..start + inputs.len()].to_vec();
                tasks.spawn(async move {
                    this.store_chunk(&standard, through, &part, inputs, year, &actor)
                        .await
                });
            };
        let mut start = 0;
        let mut current = chunk_at(0);
        let mut rows = std::pin::pin!(inputs_store::aggregated_members(
            self.db.get_postgres_connection_pool(),
            &first.path,
            &last.path,
            year,
        ));
        while let Some(row) = rows.next().await {
            let Some((branch, input)) = inputs::member_input(row?, &index, year) else {
                continue;
            };
            if branch < start {
                return Err(AppError::Corrupt(
                    "members did not arrive in the order of their branches".into(),
                ));
            }
            while branch >= start + current.len() {
                let full = std::mem::replace(&mut current, chunk_at(start + chunk));
                if tasks.len() >= 2 {
                    finish_one(&mut tasks, &mut outcomes).await?;
                }
                spawn(&mut tasks, start, full);
                start += chunk;
            }
            current[branch - start].push(input);
        }
        // The rest, including trailing branches without members.
        while start < branches.len() {
            let full = std::mem::replace(&mut current, chunk_at(start + chunk));
            if tasks.len() >= 2 {
                finish_one(&mut tasks, &mut outcomes).await?;
            }
            spawn(&mut tasks, start, full);
            start += chunk;
        }
        while !tasks.is_empty() {
            finish_one(&mut tasks, &mut outcomes).await?;
        }
        Ok(outcomes)
    }

    /// Grades one chunk of branches from their inputs and stores what changed, in one
    /// transaction under the branches' locks (a confirmed or final branch is left alone).
    async fn store_chunk(
        &self,
        standard: &jifen_standard::Standard,
        through: u32,
        branches: &[OrgRow],
        members: Vec<Vec<MemberInput>>,
        year: i32,
        actor: &str,
    ) -> Result<Vec<(Uuid, BranchOutcome)>, AppError> {
        let ids: Vec<Uuid> = branches.iter().map(|b| b.id).collect();
        // sqlx directly: the writes bind whole columns as arrays (`store_proposals`).
        let mut txn = self
            .db
            .get_postgres_connection_pool()
            .begin()
            .await
            .map_err(crate::store::query_err)?;
        gradings::lock_branches(&mut txn, &ids, year).await?;
        let statuses = gradings::statuses(&mut txn, &ids, year).await?;
        let open: Vec<Uuid> = ids
            .iter()
            .copied()
            .filter(|id| statuses.get(id).is_none_or(|s| s == "proposed"))
            .collect();
        let mut held: HashMap<Uuid, Vec<GradeRow>> = HashMap::new();
        for row in gradings::grades_of(&mut txn, &open, year).await? {
            held.entry(row.branch_id).or_default().push(row);
        }
        let mut outcomes = Vec::with_capacity(branches.len());
        let mut changed = Vec::new();
        for (branch, inputs) in branches.iter().zip(members) {
            if statuses.get(&branch.id).is_some_and(|s| s != "proposed") {
                outcomes.push((branch.id, BranchOutcome::Settled));
                continue;
            }
            let proposals =
                domain::grade_branch(standard, Some(branch.unit_type.as_str()), through, &inputs);
            let grades: Vec<NewGrade> = proposals
                .iter()
                .map(|p| NewGrade {
                    member_id: p.member_id,
                    base: p.totals.base.tenths(),
                    bonus: p.totals.bonus.tenths(),
                    deductions: p.totals.deductions.tenths(),
                    evaluation: p.totals.evaluation.tenths(),
                    total: p.totals.total.tenths(),
                    grade: p.grade.as_str().to_owned(),
                    reasons: p.reasons.clone(),
                })
                .collect();
            let unchanged = statuses.contains_key(&branch.id)
                && gradings::same_grades(
                    held.get(&branch.id).map_or(&[][..], Vec::as_slice),
                    &grades,
                );
            if unchanged {
                outcomes.push((branch.id, BranchOutcome::Unchanged));
            } else {
                outcomes.push((branch.id, BranchOutcome::Stored));
                changed.push(gradings::BranchProposals {
                    branch_id: branch.id,
                    branch_path: branch.path.clone(),
                    grades,
                });
            }
        }
        gradings::store_proposals(&mut txn, year, self.clock.now(), actor, &changed).await?;
        txn.commit().await.map_err(crate::store::query_err)?;
        Ok(outcomes)
    }

    /// `ComputeGrading`: proposals for every branch of the subtree of `org_id`.
    pub async fn compute(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
    ) -> Result<GradingView, AppError> {
        let year = check_year(year)?;
        let org = self.org(org_id).await?;
        authorize(authz::compute(caller, &org.path), "org_id", "organization")?;
        self.through_month(year)?;
        let branches = projection::branches_under(&self.db, &org.path).await?;
        if branches.is_empty() {
            return Err(AppError::unprocessable(
                "no_branch",
                "no party branch (党支部) in this organization",
                Some("org_id".into()),
            ));
        }
        let mut progress = |_: u64, _: u64| {};
        let outcomes = self
            .grade_subtree(&branches, year, &caller.subject, &mut progress)
            .await?;
        {
            if outcomes
                .iter()
                .any(|(id, o)| *o == BranchOutcome::Settled && *id == org.id)
            {
                return Err(AppError::conflict(
                    "grading_confirmed",
                    "the branch has confirmed this grading; it is no longer recomputed",
                ));
            }
        }
        self.view(&org, year).await
    }

    async fn view(&self, org: &OrgRow, year: i32) -> Result<GradingView, AppError> {
        let branches = gradings::under(&self.db, &org.path, year).await?;
        let status = branches
            .iter()
            .map(|b| b.status.as_str())
            .min_by_key(|s| status_rank(s))
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "grading",
            })?
            .to_owned();
        let members = gradings::grades_under(&self.db, &org.path, year).await?;
        Ok(GradingView {
            org_id: org.id,
            year,
            status,
            branches,
            members,
        })
    }

    /// `GetGrading`.
    pub async fn get(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
    ) -> Result<GradingView, AppError> {
        let year = check_year(year)?;
        let org = self.org(org_id).await?;
        // A member reads the published grading of their branch, also from a group under it.
        let own_branch = match caller.member_id {
            Some(me) => projection::find_member(&self.db, me).await?.and_then(|m| {
                (org.kind == "branch" && m.org_path.starts_with(&org.path))
                    .then(|| org.path.clone())
            }),
            None => None,
        };
        let view = self.view(&org, year).await;
        let published = view.as_ref().is_ok_and(|v| v.status != "proposed");
        authorize(
            authz::read_grading(caller, &org.path, published, own_branch.as_deref()),
            "org_id",
            "organization",
        )?;
        view
    }

    /// `ConfirmGrading`: the branch's secretary fixes the grades.
    pub async fn confirm(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
        overrides: Vec<(String, String, String)>,
    ) -> Result<GradingView, AppError> {
        let year = check_year(year)?;
        let org = self.org(org_id).await?;
        authorize(authz::confirm(caller, &org.path), "org_id", "organization")?;
        if org.kind != "branch" {
            return Err(AppError::unprocessable(
                "not_a_branch",
                "only a party branch (党支部) confirms its grading",
                Some("org_id".into()),
            ));
        }
        // Every bad override field at once.
        let mut violations = Vec::new();
        let mut parsed: Vec<(Uuid, Grade, String)> = Vec::new();
        for (i, (member, grade, reason)) in overrides.iter().enumerate() {
            let member_id = Uuid::parse_str(member.trim()).ok();
            if member_id.is_none() {
                violations.push(super::FieldViolation {
                    field: format!("overrides[{i}].member_id"),
                    message: "must be a UUID".into(),
                });
            }
            let grade = Grade::from_str(grade).ok();
            if grade.is_none() {
                violations.push(super::FieldViolation {
                    field: format!("overrides[{i}].grade"),
                    message:
                        "must be one of excellent, qualified, basically_qualified, unqualified"
                            .into(),
                });
            }
            if reason.trim().is_empty() || reason.chars().count() > 2000 {
                violations.push(super::FieldViolation {
                    field: format!("overrides[{i}].reason"),
                    message: "an override needs a reason of 1 to 2000 characters".into(),
                });
            }
            if let (Some(m), Some(g)) = (member_id, grade) {
                if parsed.iter().any(|(seen, _, _)| *seen == m) {
                    violations.push(super::FieldViolation {
                        field: format!("overrides[{i}].member_id"),
                        message: "overridden twice".into(),
                    });
                }
                parsed.push((m, g, reason.trim().to_owned()));
            }
        }
        if !violations.is_empty() {
            return Err(AppError::Invalid(violations));
        }
        let standard = self.standard_for(year).await?;
        let txn = self.db.begin().await?;
        gradings::lock_branch_year(&txn, org.id, year).await?;
        let held = gradings::find(&txn, org.id, year).await?.ok_or_else(|| {
            AppError::conflict(
                "grading_not_computed",
                "compute the grading before confirming it",
            )
        })?;
        if held.status != "proposed" {
            return Err(AppError::conflict(
                if held.status == "final" {
                    "grading_final"
                } else {
                    "grading_confirmed"
                },
                format!("the grading is already {}", held.status),
            ));
        }
        let rows = gradings::grades_under(&txn, &org.path, year).await?;
        let mut grades = Vec::with_capacity(rows.len());
        for row in &rows {
            let proposed = parse_grade("proposed_grade".into(), &row.proposed_grade)
                .map_err(|_| AppError::Corrupt(format!("grade {:?}", row.proposed_grade)))?;
            grades.push(
                parsed
                    .iter()
                    .find(|(m, _, _)| *m == row.member_id)
                    .map_or(proposed, |(_, g, _)| *g),
            );
        }
        for (i, (member, grade, _)) in parsed.iter().enumerate() {
            let Some(row) = rows.iter().find(|r| r.member_id == *member) else {
                return Err(AppError::unprocessable(
                    "not_in_grading",
                    format!("member {member} is not in this grading"),
                    Some(format!("overrides[{i}].member_id")),
                ));
            };
            let proposed = parse_grade("proposed_grade".into(), &row.proposed_grade)?;
            if !domain::is_one_step(proposed, *grade) {
                return Err(AppError::unprocessable(
                    "override_too_far",
                    format!(
                        "an override moves a grade one step at most: {} → {} is more",
                        proposed.as_str(),
                        grade.as_str()
                    ),
                    Some(format!("overrides[{i}].grade")),
                ));
            }
        }
        if !domain::quota_holds(&standard, &grades) {
            return Err(AppError::unprocessable(
                "quota_exceeded",
                "more excellent grades than the branch's quota (excellent_share_cap) allows",
                Some("overrides".into()),
            ));
        }
        let now = self.clock.now();
        let finalizable_at =
            now + chrono::Duration::days(i64::from(standard.grading().publication_days));
        let stored: Vec<(Uuid, String, String)> = parsed
            .iter()
            .map(|(m, g, r)| (*m, g.as_str().to_owned(), r.clone()))
            .collect();
        gradings::confirm(
            &txn,
            org.id,
            year,
            now,
            &caller.subject,
            finalizable_at,
            &stored,
        )
        .await?;
        gradings::audit(
            &txn,
            AuditLine {
                at: now,
                actor: &caller.subject,
                action: "confirm",
                subject: format!("grading:{}:{year}", org.id),
                from_state: Some("proposed"),
                to_state: Some("confirmed"),
                reason: None,
                detail: serde_json::json!({ "finalizable_at": finalizable_at }),
            },
        )
        .await?;
        for (member, grade, reason) in &stored {
            gradings::audit(
                &txn,
                AuditLine {
                    at: now,
                    actor: &caller.subject,
                    action: "override",
                    subject: format!("member_grade:{member}:{year}"),
                    from_state: rows
                        .iter()
                        .find(|r| r.member_id == *member)
                        .map(|r| r.proposed_grade.as_str()),
                    to_state: Some(grade),
                    reason: Some(reason),
                    detail: serde_json::json!({}),
                },
            )
            .await?;
        }
        txn.commit().await?;
        self.view(&org, year).await
    }

    /// `FileAppeal`: the member appeals their confirmed grade.
    pub async fn file_appeal(
        &self,
        caller: &Principal,
        member_id: Uuid,
        year: i32,
        reason: &str,
    ) -> Result<AppealRow, AppError> {
        let year = check_year(year)?;
        authorize(authz::appeal(caller, member_id), "member_id", "member")?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 2000 {
            return Err(AppError::invalid(
                "reason",
                "an appeal needs a reason of 1 to 2000 characters",
            ));
        }
        let txn = self.db.begin().await?;
        let (_, grading) = gradings::grade_of_member(&txn, member_id, year)
            .await?
            .ok_or_else(|| {
                AppError::conflict("not_graded", format!("no grading of {year} holds you"))
            })?;
        gradings::lock_branch_year(&txn, grading.branch_id, year).await?;
        let grading = gradings::find(&txn, grading.branch_id, year)
            .await?
            .ok_or_else(|| AppError::Corrupt("grading vanished".into()))?;
        if grading.status != "confirmed" {
            return Err(AppError::conflict(
                "grading_not_confirmed",
                format!(
                    "an appeal is filed while the grading is confirmed and not final (it is {})",
                    grading.status
                ),
            ));
        }
        if gradings::open_appeal_of(&txn, member_id, year)
            .await?
            .is_some()
        {
            return Err(AppError::conflict(
                "appeal_open",
                "you already have an open appeal for this year",
            ));
        }
        let now = self.clock.now();
        let appeal = AppealRow {
            id: Uuid::now_v7(),
            member_id,
            branch_id: grading.branch_id,
            branch_path: grading.branch_path.clone(),
            year,
            status: "open".into(),
            reason: reason.to_owned(),
            filed_at: now,
            decision_reason: None,
            grade: None,
            decided_by: None,
            decided_at: None,
        };
        gradings::insert_appeal(&txn, &appeal).await?;
        gradings::audit(
            &txn,
            AuditLine {
                at: now,
                actor: &caller.subject,
                action: "appeal",
                subject: format!("appeal:{}", appeal.id),
                from_state: None,
                to_state: Some("open"),
                reason: Some(reason),
                detail: serde_json::json!({ "member_id": member_id, "year": year }),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(appeal)
    }

    /// `DecideAppeal`: the upper committee upholds or changes the grade.
    pub async fn decide_appeal(
        &self,
        caller: &Principal,
        appeal_id: Uuid,
        change_to: Option<Grade>,
        reason: &str,
    ) -> Result<AppealRow, AppError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 2000 {
            return Err(AppError::invalid(
                "reason",
                "a decision needs a reason of 1 to 2000 characters",
            ));
        }
        let txn = self.db.begin().await?;
        let appeal = gradings::find_appeal(&txn, appeal_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "appeal_id",
                what: "appeal",
            })?;
        authorize(
            authz::upper_committee(caller, &appeal.branch_path),
            "appeal_id",
            "appeal",
        )?;
        gradings::lock_branch_year(&txn, appeal.branch_id, appeal.year).await?;
        let appeal = gradings::find_appeal(&txn, appeal_id)
            .await?
            .ok_or_else(|| AppError::Corrupt("appeal vanished".into()))?;
        if appeal.status != "open" {
            return Err(AppError::conflict(
                "appeal_decided",
                format!("the appeal is already {}", appeal.status),
            ));
        }
        let now = self.clock.now();
        let mut decided = appeal.clone();
        decided.decision_reason = Some(reason.to_owned());
        decided.decided_by = Some(caller.subject.clone());
        decided.decided_at = Some(now);
        match change_to {
            None => decided.status = "upheld".into(),
            Some(grade) => {
                decided.status = "changed".into();
                decided.grade = Some(grade.as_str().to_owned());
                // The grade's reason is now the committee's decision, not an earlier override.
                gradings::set_grade(
                    &txn,
                    appeal.branch_id,
                    appeal.year,
                    appeal.member_id,
                    grade.as_str(),
                    Some(reason),
                )
                .await?;
            }
        }
        gradings::decide_appeal(&txn, &decided).await?;
        gradings::audit(
            &txn,
            AuditLine {
                at: now,
                actor: &caller.subject,
                action: "decide_appeal",
                subject: format!("appeal:{}", appeal.id),
                from_state: Some("open"),
                to_state: Some(&decided.status),
                reason: Some(reason),
                detail: serde_json::json!({ "grade": decided.grade }),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(decided)
    }

    /// `FinalizeGrading`: the upper committee makes every branch of the subtree final — all of
    /// them or none — and publishes every member's final grade.
    pub async fn finalize(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
    ) -> Result<GradingView, AppError> {
        let year = check_year(year)?;
        let org = self.org(org_id).await?;
        authorize(
            authz::upper_committee(caller, &org.path),
            "org_id",
            "organization",
        )?;
        let txn = self.db.begin().await?;
        let branches = gradings::under(&txn, &org.path, year).await?;
        if branches.is_empty() {
            return Err(AppError::conflict(
                "grading_not_computed",
                "no grading of this year to finalize",
            ));
        }
        let now = self.clock.now();
        let mut pending = Vec::new();
        for b in &branches {
            gradings::lock_branch_year(&txn, b.branch_id, year).await?;
            let held = gradings::find(&txn, b.branch_id, year)
                .await?
                .ok_or_else(|| AppError::Corrupt("grading vanished".into()))?;
            match held.status.as_str() {
                "final" => continue,
                "proposed" => {
                    return Err(AppError::conflict(
                        "grading_not_confirmed",
                        format!("branch {} has not confirmed its grading", held.branch_id),
                    ));
                }
                _ => {}
            }
            if let Some(at) = held.finalizable_at
                && now < at
            {
                return Err(AppError::conflict(
                    "publication_not_over",
                    format!(
                        "the publication (公示) of branch {} lasts until {}",
                        held.branch_id,
                        at.to_rfc3339()
                    ),
                ));
            }
            if gradings::open_appeals(&txn, held.branch_id, year).await? > 0 {
                return Err(AppError::conflict(
                    "appeals_open",
                    format!("branch {} has an open appeal", held.branch_id),
                ));
            }
            pending.push(held);
        }
        if pending.is_empty() {
            return Err(AppError::conflict(
                "grading_final",
                "the grading is already final",
            ));
        }
        for held in &pending {
            gradings::finalize(&txn, held.branch_id, year, now, &caller.subject).await?;
            stage_finals(&txn, held, now, &caller.subject).await?;
            gradings::audit(
                &txn,
                AuditLine {
                    at: now,
                    actor: &caller.subject,
                    action: "finalize",
                    subject: format!("grading:{}:{year}", held.branch_id),
                    from_state: Some("confirmed"),
                    to_state: Some("final"),
                    reason: None,
                    detail: serde_json::json!({}),
                },
            )
            .await?;
        }
        txn.commit().await?;
        self.view(&org, year).await
    }

    /// Stages `grading.member_grade.finalized.v1` again for every final grade of `year` in the
    /// subtree of `org_id`, with the finalization's own instant and actor, one transaction per
    /// branch; answers how many events were staged. For a consumer created after the
    /// finalization (the declarations and evaluations services' `final_grades`): the event is
    /// final-state and always version 1, so a consumer that has it already changes nothing.
    pub async fn republish_finals(
        &self,
        actor: &str,
        org_id: Uuid,
        year: i32,
    ) -> Result<usize, AppError> {
        let org = projection::find_org(&self.db, org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "organization",
            })?;
        let mut staged = 0;
        for grading in gradings::under(&self.db, &org.path, year).await? {
            if grading.status != "final" {
                continue;
            }
            let (Some(at), Some(by)) = (grading.finalized_at, grading.finalized_by.as_deref())
            else {
                return Err(AppError::Corrupt(format!(
                    "the final grading of branch {} has no finalization instant or actor",
                    grading.branch_id
                )));
            };
            let txn = self.db.begin().await?;
            let events = stage_finals(&txn, &grading, at, by).await?;
            gradings::audit(
                &txn,
                AuditLine {
                    at: self.clock.now(),
                    actor,
                    action: "republish_finals",
                    subject: format!("grading:{}:{year}", grading.branch_id),
                    from_state: Some("final"),
                    to_state: Some("final"),
                    reason: None,
                    detail: serde_json::json!({ "events": events }),
                },
            )
            .await?;
            txn.commit().await?;
            staged += events;
        }
        Ok(staged)
    }
}

/// Stages `grading.member_grade.finalized.v1` for every member of `grading` (finalized at `at`
/// by `by`) in `txn`; answers how many.
async fn stage_finals(
    txn: &sea_orm::DatabaseTransaction,
    grading: &GradingRow,
    at: DateTime<Utc>,
    by: &str,
) -> Result<usize, AppError> {
    let mut staged = 0;
    for row in gradings::grades_under(txn, &grading.branch_path, grading.year)
        .await?
        .iter()
        .filter(|r| r.branch_id == grading.branch_id)
    {
        let message = finalized_event(grading, row, at, by);
        jifen_eventbus::stage(
            txn,
            events::SOURCE,
            events::member_grade_finalized(&message),
        )
        .await?;
        staged += 1;
    }
    Ok(staged)
}

fn finalized_event(
    grading: &GradingRow,
    row: &GradeRow,
    at: DateTime<Utc>,
    by: &str,
) -> ev::MemberGradeFinalized {
    ev::MemberGradeFinalized {
        member_id: row.member_id.to_string(),
        org_id: grading.branch_id.to_string(),
        org_path: grading.branch_path.clone(),
        year: grading.year,
        grade: row
            .grade
            .clone()
            .unwrap_or_else(|| row.proposed_grade.clone()),
        total: row.total,
        declared_points: row.base_points + row.bonus_points + row.deduction_points,
        evaluation_points: row.evaluation_points,
        reasons: reasons_of(row),
        finalized_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        finalized_by: by.to_owned(),
        version: 1,
    }
}

/// The reason codes of a member's row.
pub fn reasons_of(row: &GradeRow) -> Vec<String> {
    row.reasons
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
