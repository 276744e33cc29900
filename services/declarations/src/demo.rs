//! `jifen-declarations seed-demo-history`: the declarations side of the demo city's history
//! (docs/decisions/0014-demo-history.md) — last year's standard, each member's evidence file,
//! and month by month the members' declarations (saved, submitted, reviewed: approved, adjusted,
//! returned and resubmitted, rejected, late through a reopened month) and the branch records
//! (dues, attendance, deductions, one veto), as [`jifen_demo::Plan`] says.
//!
//! Everything goes through this service's own use cases with the acting person's principal (the
//! member declares, the secretary reviews and records, the root admin reviews the secretaries'
//! own declarations and publishes the standard), so every change has its version, transition,
//! audit row and outbox event. A branch's members declare a month through the batch use case
//! ([`Declarations::declare_batch`]: the same checks and rows as saving and submitting one by
//! one, in one transaction a branch); corrections of returned declarations go one by one. The
//! use cases run on a manual clock set to the instant each step happened in the history (a
//! month's declarations on its 20th, reviews on its 28th, …), never later than now, so periods,
//! deadlines and reopenings are checked as they were.
//!
//! Idempotent by its marker (`demo_seed` row of [`version`]): a complete marker means nothing to
//! do; months are marked done one by one, and a month redone after an interruption reads each
//! declaration's state and only takes the steps it still lacks (a branch-month with records is
//! not recorded again), so no point is ever counted twice.

use crate::domain::{Adjustment, Decision, LineInput, Month, Status};
use crate::usecases::{AppError, BatchEntry, Declarations, EvidenceStore, NewEntry};
use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt as _;
use jifen_demo::{BranchRef, Manifest, Plan, Review, YearMonth, shanghai};
use jifen_platform::clock::Clock;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What the seeding is asked to do.
pub struct Options {
    pub manifest: Manifest,
    pub seed: u64,
    /// The business date the history runs up to.
    pub today: NaiveDate,
    /// Branches seeded at the same time.
    pub concurrency: usize,
    /// Connections of the seeding's pool.
    pub connections: u32,
}

/// The marker version of the history of `manifest`'s city from `seed`.
pub fn version(manifest: &Manifest, seed: u64) -> String {
    format!("demo-history-v1-{}-{seed}", manifest.shape.label())
}

/// What one branch-month step did.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    declared: usize,
    approved: usize,
    adjusted: usize,
    returned: usize,
    rejected: usize,
    pending: usize,
    late: usize,
    entries: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.declared += o.declared;
        self.approved += o.approved;
        self.adjusted += o.adjusted;
        self.returned += o.returned;
        self.rejected += o.rejected;
        self.pending += o.pending;
        self.late += o.late;
        self.entries += o.entries;
    }
}

/// The seeding's shared context.
struct Ctx {
    app: Declarations,
    clock: Clock,
    manifest: Manifest,
    plan: Plan,
    /// Each member's evidence reference, by (branch, position).
    evidence: HashMap<(usize, usize), String>,
    /// Items that need evidence, by year.
    needs_evidence: HashMap<i32, HashSet<String>>,
    concurrency: usize,
}

fn app_err(e: AppError) -> anyhow::Error {
    match e {
        AppError::Invalid(v) => anyhow::anyhow!(
            "invalid: {}",
            v.iter()
                .map(|v| format!("{}: {}", v.field, v.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow::anyhow!("{other}"),
    }
}

/// A small PDF that stands for a member's photo of their notes (证明材料).
fn evidence_file(n: usize) -> Vec<u8> {
    let text = format!("jifen demo evidence: member demo{n:04}");
    let stream = format!("BT /F1 12 Tf 40 100 Td ({text}) Tj ET");
    format!(
        "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
         2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
         3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >> endobj\n\
         4 0 obj << /Length {} >> stream\n{stream}\nendstream endobj\n\
         5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n\
         trailer << /Root 1 0 R >>\n%%EOF\n",
        stream.len()
    )
    .into_bytes()
}

/// The instant of a step: `hour` o'clock on `date` (Asia/Shanghai), never later than `now`.
fn at(date: NaiveDate, hour: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    shanghai(date, hour).min(now - chrono::Duration::seconds(1))
}

fn month_of(m: YearMonth) -> anyhow::Result<Month> {
    Month::parse(&m.to_string()).map_err(|_| anyhow::anyhow!("month {m}"))
}

/// Seeds the declarations history, printing progress per month; answers the marker version.
pub async fn seed_history(settings: &crate::Settings, options: Options) -> anyhow::Result<String> {
    let started = Instant::now();
    let Options {
        manifest,
        seed,
        today,
        concurrency,
        connections,
    } = options;
    let version = version(&manifest, seed);
    crate::migrate(&settings.database_url, &settings.database_name)
        .await?
        .close()
        .await?;
    let db = jifen_demo::marker::connect(
        &jifen_platform::db::database_url(&settings.database_url, &settings.database_name),
        connections,
    )
    .await?;
    let mut state = match jifen_demo::marker::load(&db, &version).await? {
        Some((_, true)) => {
            println!("declarations history already seeded (marker {version}): nothing to do");
            return Ok(version);
        }
        Some((state, false)) => state,
        None => serde_json::json!({ "months_done": [] }),
    };
    jifen_demo::marker::save(&db, &version, &state, false).await?;
    let done: HashSet<String> = state["months_done"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();

    // The members replica must hold the city before anyone declares.
    let member_ids: Vec<Uuid> = manifest
        .branches()
        .iter()
        .flat_map(|b| b.members.iter().map(|m| m.id))
        .collect();
    let org_ids: Vec<Uuid> = manifest.branches().iter().map(|b| b.org.id).collect();
    jifen_demo::marker::wait_for(
        "the members replica to hold the demo city",
        Duration::from_secs(120),
        || async {
            let (m, o) = crate::store::demo::replica_holds(&db, &member_ids, &org_ids).await?;
            Ok(
                if m == member_ids.len() as i64 && o == org_ids.len() as i64 {
                    Ok(())
                } else {
                    Err(format!(
                        "{m} of {} members, {o} of {} branches",
                        member_ids.len(),
                        org_ids.len()
                    ))
                },
            )
        },
    )
    .await?;

    let now = Utc::now();
    let clock = Clock::manual(now);
    let app = Declarations::new(
        db.clone(),
        clock.clone(),
        EvidenceStore {
            dir: settings.evidence_dir.clone(),
            max_bytes: settings.evidence_max_bytes,
        },
    );
    let plan = Plan::new(seed, manifest.shape, today);
    let admin = manifest.admin_principal();

    // The standards: last year's is this year's default document under last year's number.
    let mut needs_evidence = HashMap::new();
    for year in [plan.last_year(), plan.this_year()] {
        let view = match app.get_standard(&admin, year, None).await {
            Ok(view) => view,
            Err(AppError::NotFound { .. }) => {
                let mut doc = jifen_standard::default_2026()
                    .map_err(|p| anyhow::anyhow!("the shipped standard: {p:?}"))?
                    .to_json_value()?;
                doc["year"] = serde_json::json!(year);
                clock.set(at(YearMonth::new(year, 1).day(1), 9, now));
                let view = app
                    .put_standard(&admin, year, &doc.to_string())
                    .await
                    .map_err(app_err)
                    .with_context(|| format!("publishing the {year} standard"))?;
                println!("  published the {year} standard (the default document)");
                view
            }
            Err(e) => return Err(app_err(e)),
        };
        needs_evidence.insert(
            year,
            view.items
                .iter()
                .filter(|i| i.evidence_required)
                .map(|i| i.code.clone())
                .collect::<HashSet<_>>(),
        );
    }

    // Each member's evidence file, uploaded by the member (stored once per content).
    clock.set(at(YearMonth::new(plan.last_year(), 1).day(2), 9, now));
    let mut uploads = Vec::new();
    for (gb, branch) in manifest.branches().into_iter().enumerate() {
        for (i, m) in branch.members.iter().enumerate() {
            if let Some(p) = manifest.member_principal(branch, i) {
                uploads.push((gb, i, m.n, p));
            }
        }
    }
    let evidence: HashMap<(usize, usize), String> = futures::stream::iter(uploads)
        .map(|(gb, i, n, p)| {
            let app = app.clone();
            async move {
                let view = app
                    .upload_evidence(&p, "application/pdf", evidence_file(n))
                    .await
                    .map_err(app_err)?;
                anyhow::Ok(((gb, i), view.reference))
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    println!(
        "  {} evidence files uploaded ({:.1}s)",
        evidence.len(),
        started.elapsed().as_secs_f64()
    );

    let ctx = Arc::new(Ctx {
        app,
        clock,
        manifest,
        plan,
        evidence,
        needs_evidence,
        concurrency,
    });
    let mut total = Counts::default();
    for month in ctx.plan.months() {
        if done.contains(&month.to_string()) {
            continue;
        }
        let month_started = Instant::now();
        let counts = seed_month(&ctx, month, now).await?;
        total += counts;
        if let Some(list) = state["months_done"].as_array_mut() {
            list.push(serde_json::json!(month.to_string()));
        }
        jifen_demo::marker::save(ctx.app.db(), &version, &state, false).await?;
        println!(
            "  {month}: {} declared ({} approved, {} adjusted, {} returned and resubmitted, {} rejected, {} late, {} waiting for review), {} branch entries — {:.1}s (total {:.1}s)",
            counts.declared,
            counts.approved,
            counts.adjusted,
            counts.returned,
            counts.rejected,
            counts.late,
            counts.pending,
            counts.entries,
            month_started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    state["totals"] = serde_json::json!({
        "declared": total.declared,
        "branch_entries": total.entries,
    });
    jifen_demo::marker::save(ctx.app.db(), &version, &state, true).await?;
    println!(
        "declarations history ready in {:.1}s: {} declarations, {} branch entries (marker {version})",
        started.elapsed().as_secs_f64(),
        total.declared,
        total.entries
    );
    Ok(version)
}

/// Runs `step` for every branch, `concurrency` at a time; sums what they did.
async fn each_branch<F, Fut>(ctx: &Arc<Ctx>, step: F) -> anyhow::Result<Counts>
where
    F: Fn(Arc<Ctx>, usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Counts>>,
{
    let results: Vec<anyhow::Result<Counts>> =
        futures::stream::iter(0..ctx.manifest.branches().len())
            .map(|gb| step(ctx.clone(), gb))
            .buffer_unordered(ctx.concurrency)
            .collect()
            .await;
    let mut sum = Counts::default();
    for r in results {
        sum += r?;
    }
    Ok(sum)
}

/// One month of the history, step by step, each step at its own instant.
async fn seed_month(
    ctx: &Arc<Ctx>,
    month: YearMonth,
    now: DateTime<Utc>,
) -> anyhow::Result<Counts> {
    let next = month.next();
    let mut counts = Counts::default();
    let mut phases: Vec<String> = Vec::new();
    let mut lap = Instant::now();
    let mut mark = |name: &str| {
        phases.push(format!("{name} {:.1}s", lap.elapsed().as_secs_f64()));
        lap = Instant::now();
    };
    // The members declare (the 20th), the branch records the month and reviews (the 28th).
    ctx.clock.set(at(month.day(20), 10, now));
    counts += each_branch(ctx, |ctx, gb| async move {
        declare(&ctx, gb, month, false).await
    })
    .await?;
    mark("declare");
    ctx.clock.set(at(month.day(28), 9, now));
    counts += each_branch(ctx, |ctx, gb| async move { record(&ctx, gb, month).await }).await?;
    mark("record");
    ctx.clock.set(at(month.day(28), 15, now));
    counts += each_branch(ctx, |ctx, gb| async move {
        review(&ctx, gb, month, false).await
    })
    .await?;
    mark("review");
    // Returned ones are corrected and handed in again on the 2nd, and approved on the 3rd.
    ctx.clock.set(at(next.day(2), 10, now));
    counts += each_branch(
        ctx,
        |ctx, gb| async move { resubmit(&ctx, gb, month).await },
    )
    .await?;
    ctx.clock.set(at(next.day(3), 10, now));
    each_branch(ctx, |ctx, gb| async move {
        review(&ctx, gb, month, false).await
    })
    .await?;
    mark("returned");
    // Late ones: the branch reopens the closed month on the 10th; they declare on the 11th and
    // are approved on the 12th.
    let any_late =
        (0..ctx.manifest.branches().len()).any(|gb| !late_members(ctx, gb, month).is_empty());
    if any_late {
        ctx.clock.set(at(next.day(10), 9, now));
        each_branch(ctx, |ctx, gb| async move { reopen(&ctx, gb, month).await }).await?;
        ctx.clock.set(at(next.day(11), 10, now));
        counts += each_branch(ctx, |ctx, gb| async move {
            declare(&ctx, gb, month, true).await
        })
        .await?;
        ctx.clock.set(at(next.day(12), 10, now));
        each_branch(
            ctx,
            |ctx, gb| async move { review(&ctx, gb, month, true).await },
        )
        .await?;
        mark("late");
    }
    println!("    {month} steps: {}", phases.join(", "));
    Ok(counts)
}

fn late_members(ctx: &Ctx, gb: usize, month: YearMonth) -> Vec<usize> {
    let branch = ctx.manifest.branches()[gb];
    (0..branch.members.len())
        .filter(|&i| ctx.plan.declaration(gb, i, month).is_some_and(|d| d.late))
        .collect()
}

fn ids_of(branch: &BranchRef) -> Vec<Uuid> {
    branch.members.iter().map(|m| m.id).collect()
}

/// The member's lines of the plan, with their evidence reference where the item needs one.
fn inputs(ctx: &Ctx, gb: usize, i: usize, month: YearMonth) -> Vec<LineInput> {
    let Some(plan) = ctx.plan.declaration(gb, i, month) else {
        return Vec::new();
    };
    let needs = ctx.needs_evidence.get(&month.year);
    plan.lines
        .iter()
        .map(|l| LineInput {
            item_code: l.item.to_owned(),
            quantity: l.quantity,
            note: l.note.to_owned(),
            evidence: if needs.is_some_and(|n| n.contains(l.item)) {
                ctx.evidence.get(&(gb, i)).cloned().into_iter().collect()
            } else {
                Vec::new()
            },
        })
        .collect()
}

/// The branch's members declare `month` (the late ones only when `late`): saved and submitted
/// together in one transaction ([`Declarations::declare_batch`], each with the member's own
/// principal), for each whose declaration is not handed in yet. The batch is all or nothing, so
/// a month redone after an interruption finds either all of them handed in or none.
async fn declare(ctx: &Ctx, gb: usize, month: YearMonth, late: bool) -> anyhow::Result<Counts> {
    let branch = ctx.manifest.branches()[gb];
    let m = month_of(month)?;
    let states =
        crate::store::demo::month_states(ctx.app.db(), &ids_of(branch), &month.to_string()).await?;
    let mut entries = Vec::new();
    for (i, member) in branch.members.iter().enumerate() {
        let Some(plan) = ctx.plan.declaration(gb, i, month) else {
            continue;
        };
        if plan.late != late {
            continue;
        }
        let Some(principal) = ctx.manifest.member_principal(branch, i) else {
            continue;
        };
        let status = states.get(&member.id).map(|(_, s)| s.as_str());
        if !matches!(status, None | Some("draft")) {
            continue;
        }
        entries.push(BatchEntry {
            actor: principal,
            member_id: member.id,
            lines: inputs(ctx, gb, i, month),
        });
    }
    let mut counts = Counts::default();
    // A batch takes at most 500 entries (a branch has far fewer members).
    for batch in entries.chunks(500) {
        let views = ctx
            .app
            .declare_batch(branch.org.id, m, batch)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("branch {gb} declaring {month}"))?;
        counts.declared += views.len();
        counts.late += if late { views.len() } else { 0 };
    }
    Ok(counts)
}

/// The branch's records of `month`, unless it has recorded the month already.
async fn record(ctx: &Ctx, gb: usize, month: YearMonth) -> anyhow::Result<Counts> {
    let branch = ctx.manifest.branches()[gb];
    let planned = ctx.plan.branch_entries(gb, month);
    let active: Vec<_> = planned
        .iter()
        .filter(|e| branch.members[e.member].active)
        .collect();
    if active.is_empty()
        || crate::store::demo::recorded_month(ctx.app.db(), branch.org.id, &month.to_string())
            .await?
    {
        return Ok(Counts::default());
    }
    // Nobody records their own points: the secretary's own entries are the admin's to record
    // (as their declarations are the admin's to review); the others' come first.
    let (own, others): (Vec<_>, Vec<_>) = active
        .into_iter()
        .partition(|e| branch.secretary == Some(e.member));
    let mut recorded = 0;
    for batch in [others, own] {
        let Some(first) = batch.first() else {
            continue;
        };
        let recorder = ctx.manifest.reviewer_of(branch, first.member);
        let entries: Vec<NewEntry> = batch
            .iter()
            .map(|e| NewEntry {
                member_id: branch.members[e.member].id,
                item_code: e.item.to_owned(),
                quantity: e.quantity,
                note: e.note.to_owned(),
            })
            .collect();
        ctx.app
            .record_branch(&recorder, branch.org.id, month_of(month)?, &entries)
            .await
            .map_err(app_err)
            .with_context(|| format!("branch {gb} recording {month}"))?;
        recorded += entries.len();
    }
    Ok(Counts {
        entries: recorded,
        ..Counts::default()
    })
}

/// Reviews the branch's submitted declarations of `month` as planned (`late`: the late ones).
async fn review(ctx: &Ctx, gb: usize, month: YearMonth, late: bool) -> anyhow::Result<Counts> {
    let branch = ctx.manifest.branches()[gb];
    let m = month_of(month)?;
    let states =
        crate::store::demo::month_states(ctx.app.db(), &ids_of(branch), &month.to_string()).await?;
    let secretary = ctx.manifest.secretary_principal(branch);
    let mut counts = Counts::default();
    let mut batch = Vec::new();
    for (i, member) in branch.members.iter().enumerate() {
        let Some((id, status)) = states.get(&member.id) else {
            continue;
        };
        if status != Status::Submitted.as_str() {
            continue;
        }
        let Some(plan) = ctx.plan.declaration(gb, i, month) else {
            continue;
        };
        if plan.late != late {
            continue;
        }
        let reviewer = ctx.manifest.reviewer_of(branch, i);
        let single = |decision: Decision, adjustments: Vec<Adjustment>, comment: &'static str| {
            let reviewer = reviewer.clone();
            async move {
                ctx.app
                    .review(&reviewer, *id, decision, &adjustments, comment)
                    .await
                    .map_err(app_err)
                    .with_context(|| format!("reviewing demo{:04}'s {month}", member.n))
            }
        };
        match plan.review {
            Review::Pending => counts.pending += 1,
            Review::Approve => {
                if branch.secretary == Some(i) {
                    single(Decision::Approve, Vec::new(), "").await?;
                    counts.approved += 1;
                } else {
                    batch.push(*id);
                }
            }
            // A returned declaration comes back corrected: then it is approved.
            Review::ReturnThenApprove { comment } => {
                let returned_before = ctx
                    .app
                    .history(&reviewer, *id)
                    .await
                    .map_err(app_err)?
                    .iter()
                    .any(|t| t.to_status == Status::Returned.as_str());
                if returned_before {
                    single(Decision::Approve, Vec::new(), "已按要求补充,予以认定").await?;
                    counts.approved += 1;
                } else {
                    single(Decision::Return, Vec::new(), comment).await?;
                    counts.returned += 1;
                }
            }
            Review::Adjust { line, reason } => {
                let view = ctx
                    .app
                    .get_declaration(&reviewer, member.id, m)
                    .await
                    .map_err(app_err)?;
                let adjustments = view
                    .lines
                    .get(line)
                    .map(|l| Adjustment {
                        line_id: l.line_id,
                        approved_points: l.claimed_points / 2,
                        reason: reason.to_owned(),
                    })
                    .into_iter()
                    .collect();
                single(Decision::Approve, adjustments, "").await?;
                counts.adjusted += 1;
            }
            Review::Reject { comment } => {
                single(Decision::Reject, Vec::new(), comment).await?;
                counts.rejected += 1;
            }
        }
    }
    for ids in batch.chunks(500) {
        let (approved, skipped) = ctx
            .app
            .batch_approve(&secretary, branch.org.id, m, ids)
            .await
            .map_err(app_err)
            .with_context(|| format!("branch {gb} approving {month}"))?;
        anyhow::ensure!(
            skipped.is_empty(),
            "branch {gb} approving {month}: skipped {skipped:?}"
        );
        counts.approved += approved;
    }
    Ok(counts)
}

/// Returned declarations of `month`, saved again and handed in.
async fn resubmit(ctx: &Ctx, gb: usize, month: YearMonth) -> anyhow::Result<Counts> {
    let branch = ctx.manifest.branches()[gb];
    let m = month_of(month)?;
    let states =
        crate::store::demo::month_states(ctx.app.db(), &ids_of(branch), &month.to_string()).await?;
    for (i, member) in branch.members.iter().enumerate() {
        let Some((id, status)) = states.get(&member.id) else {
            continue;
        };
        if status != Status::Returned.as_str() && status != Status::Draft.as_str() {
            continue;
        }
        let Some(principal) = ctx.manifest.member_principal(branch, i) else {
            continue;
        };
        if status == Status::Returned.as_str() {
            ctx.app
                .save_declaration(&principal, member.id, m, &inputs(ctx, gb, i, month))
                .await
                .map_err(app_err)
                .with_context(|| format!("demo{:04} correcting {month}", member.n))?;
        }
        ctx.app
            .submit(&principal, *id)
            .await
            .map_err(app_err)
            .with_context(|| format!("demo{:04} resubmitting {month}", member.n))?;
    }
    Ok(Counts::default())
}

/// The branch reopens `month` for its late members (补报), unless it is open to them already.
async fn reopen(ctx: &Ctx, gb: usize, month: YearMonth) -> anyhow::Result<Counts> {
    if late_members(ctx, gb, month).is_empty() {
        return Ok(Counts::default());
    }
    let branch = ctx.manifest.branches()[gb];
    let now = ctx.clock.now();
    if crate::store::reopened_until(ctx.app.db(), &branch.org.path, &month.to_string(), now)
        .await?
        .is_some()
    {
        return Ok(Counts::default());
    }
    let secretary = ctx.manifest.secretary_principal(branch);
    ctx.app
        .reopen(
            &secretary,
            branch.org.id,
            month_of(month)?,
            shanghai(month.next().day(20), 18),
            "部分党员因出差未能按时申报,经支委会同意补报",
        )
        .await
        .map_err(app_err)
        .with_context(|| format!("branch {gb} reopening {month}"))?;
    Ok(Counts::default())
}
