//! `jifen-grading seed-demo-history`: the grading side of the demo city's history
//! (docs/decisions/0014-demo-history.md) — last year graded for every branch, confirmed by each
//! secretary (with one override down and one up), an appeal filed by the member moved down and
//! decided by the root committee, and the year finalized after the publication (公示).
//!
//! It first waits until this service's projection holds what the declarations and evaluations
//! steps published for last year (the counts [`jifen_demo::Plan`] gives: approved declaration
//! lines, branch entries, closed rounds), so the grades are computed from the whole year.
//!
//! Everything goes through this service's own use cases with the acting person's principal (the
//! root admin computes, decides and finalizes; each secretary confirms; the member appeals), on a
//! manual clock set to the January days the steps happened, never later than now. Idempotent by
//! its marker and by the gradings' own states: a confirmed branch is not confirmed again, an
//! appeal filed is not filed again, a final year is not finalized again.

use crate::usecases::{AppError, Grading};
use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use jifen_demo::{Manifest, Plan, Review, YearMonth, shanghai};
use jifen_platform::clock::Clock;
use jifen_standard::Grade;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The marker version of the history of `manifest`'s city from `seed`.
pub fn version(manifest: &Manifest, seed: u64) -> String {
    format!("demo-history-v1-{}-{seed}", manifest.shape.label())
}

const DOWN_REASON: &str = "支委会研究:该同志全年两次无故缺席党小组会,下调一档";
const UP_REASON: &str = "党员大会讨论:该同志下半年表现明显进步,上调一档";
const APPEAL_REASON: &str = "本人两次缺席党小组会均系因公出差,已事先向支部请假,请求复核";
const DECISION_REASON: &str = "经核实,缺席系因公出差且已事先请假,改为合格";

fn app_err(e: AppError) -> anyhow::Error {
    anyhow::anyhow!("{e}: {e:?}")
}

/// The instant of a step: `hour` o'clock on `date` (Asia/Shanghai), never later than `now`.
fn at(date: NaiveDate, hour: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    shanghai(date, hour).min(now - chrono::Duration::seconds(1))
}

/// What grading must hold before last year is graded: (approved declaration lines, branch
/// entries, closed rounds), from the plan and the members who act.
pub fn expected(plan: &Plan, manifest: &Manifest) -> (i64, i64, i64) {
    let year = plan.last_year();
    let mut lines = 0;
    let mut entries = 0;
    for (gb, branch) in manifest.branches().into_iter().enumerate() {
        for m in 1..=12 {
            let month = YearMonth::new(year, m);
            entries += plan
                .branch_entries(gb, month)
                .iter()
                .filter(|e| branch.members[e.member].active)
                .count();
            for i in 0..branch.members.len() {
                if manifest.member_principal(branch, i).is_none() {
                    continue;
                }
                if let Some(d) = plan.declaration(gb, i, month)
                    && !matches!(d.review, Review::Reject { .. } | Review::Pending)
                {
                    lines += d.lines.len();
                }
            }
        }
    }
    (lines as i64, entries as i64, plan.rounds_in(year) as i64)
}

/// Grades, confirms, hears the appeal and finalizes last year; prints each step.
pub async fn seed_history(
    settings: &crate::Settings,
    manifest: Manifest,
    seed: u64,
    today: NaiveDate,
    wait: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let version = version(&manifest, seed);
    crate::migrate(&settings.database_url, &settings.database_name)
        .await?
        .close()
        .await?;
    let db = jifen_demo::marker::connect(
        &jifen_platform::db::database_url(&settings.database_url, &settings.database_name),
        4,
    )
    .await?;
    if let Some((_, true)) = jifen_demo::marker::load(&db, &version).await? {
        println!("grading history already seeded (marker {version}): nothing to do");
        return Ok(());
    }
    jifen_demo::marker::save(&db, &version, &serde_json::json!({}), false).await?;
    let plan = Plan::new(seed, manifest.shape, today);
    let year = plan.last_year();

    // Wait for the projection to hold last year whole.
    let members: Vec<Uuid> = manifest
        .branches()
        .iter()
        .flat_map(|b| b.members.iter().map(|m| m.id))
        .collect();
    let branches: Vec<Uuid> = manifest.branches().iter().map(|b| b.org.id).collect();
    let (lines, entries, rounds) = expected(&plan, &manifest);
    let held = jifen_demo::marker::wait_for(
        &format!("grading's projection to hold {year} (declarations and evaluations published through RabbitMQ)"),
        wait,
        || async {
            let held = crate::store::demo::held(&db, &members, &branches, year).await?;
            let complete = held.members == members.len() as i64
                && held.branches == branches.len() as i64
                && held.standard
                && held.declaration_lines >= lines
                && held.branch_entries >= entries
                && held.closed_rounds >= rounds;
            Ok(if complete {
                Ok(held)
            } else {
                Err(format!(
                    "members {}/{}, branches {}/{}, standard {}, declaration lines {}/{lines}, branch entries {}/{entries}, closed rounds {}/{rounds}",
                    held.members,
                    members.len(),
                    held.branches,
                    branches.len(),
                    held.standard,
                    held.declaration_lines,
                    held.branch_entries,
                    held.closed_rounds
                ))
            })
        },
    )
    .await?;
    println!(
        "  projection holds {year}: {} declaration lines, {} branch entries, {} closed rounds (waited {:.1}s)",
        held.declaration_lines,
        held.branch_entries,
        held.closed_rounds,
        started.elapsed().as_secs_f64()
    );

    let now = Utc::now();
    let clock = Clock::manual(now);
    let app = Grading::new(db.clone(), clock.clone());
    let admin = manifest.admin_principal();
    let january = YearMonth::new(plan.this_year(), 1);

    // The root committee computes the proposals of every branch.
    clock.set(at(january.day(8), 10, now));
    let view = app
        .get(&admin, manifest.root.id, year)
        .await
        .ok()
        .filter(|v| v.status != "proposed");
    if view.is_none() {
        app.compute(&admin, manifest.root.id, year)
            .await
            .map_err(app_err)
            .context("computing the grading")?;
    }

    // Each secretary confirms; two branches move a grade.
    clock.set(at(january.day(9), 16, now));
    let mut appellant = None;
    for (gb, branch) in manifest.branches().into_iter().enumerate() {
        let secretary = manifest.secretary_principal(branch);
        let view = app
            .get(&secretary, branch.org.id, year)
            .await
            .map_err(app_err)?;
        let mut rows: Vec<_> = view.members.clone();
        rows.sort_by_key(|r| (r.total, r.member_id));
        let down = (gb == plan.override_down_branch())
            .then(|| {
                rows.iter()
                    .find(|r| r.proposed_grade == Grade::Qualified.as_str())
                    .map(|r| r.member_id)
            })
            .flatten();
        if view.status != "proposed" {
            appellant = appellant.or(down.map(|m| (gb, m)));
            continue;
        }
        let up = (gb == plan.override_up_branch() && gb != plan.override_down_branch())
            .then(|| {
                rows.iter()
                    .rev()
                    .find(|r| {
                        r.proposed_grade == Grade::BasicallyQualified.as_str()
                            && !r.reasons.to_string().contains("capped")
                    })
                    .map(|r| r.member_id)
            })
            .flatten();
        let mut overrides = Vec::new();
        if let Some(m) = down {
            overrides.push((
                m.to_string(),
                Grade::BasicallyQualified.as_str().to_owned(),
                DOWN_REASON.to_owned(),
            ));
            appellant = Some((gb, m));
        }
        if let Some(m) = up {
            overrides.push((
                m.to_string(),
                Grade::Qualified.as_str().to_owned(),
                UP_REASON.to_owned(),
            ));
        }
        app.confirm(&secretary, branch.org.id, year, overrides)
            .await
            .map_err(app_err)
            .with_context(|| format!("branch {gb} confirming {year}"))?;
    }
    println!(
        "  {year} confirmed by {} branches",
        manifest.branches().len()
    );

    // The member moved down appeals; the root committee decides.
    if let Some((gb, member_id)) = appellant {
        let branch = manifest.branches()[gb];
        let i = branch
            .members
            .iter()
            .position(|m| m.id == member_id)
            .context("the appellant is in the branch")?;
        if let Some(member) = manifest.member_principal(branch, i)
            && crate::store::demo::appeals_of(&db, member_id, year).await? == 0
        {
            clock.set(at(january.day(11), 9, now));
            let appeal = app
                .file_appeal(&member, member_id, year, APPEAL_REASON)
                .await
                .map_err(app_err)
                .context("filing the appeal")?;
            clock.set(at(january.day(13), 15, now));
            app.decide_appeal(&admin, appeal.id, Some(Grade::Qualified), DECISION_REASON)
                .await
                .map_err(app_err)
                .context("deciding the appeal")?;
            println!(
                "  demo{:04} appealed; the committee changed the grade to qualified",
                branch.members[i].n
            );
        }
    }

    // After the publication, the root committee finalizes the year of each committee under it
    // (finalizing is for a committee strictly above the gradings).
    clock.set(at(january.day(20), 10, now));
    for committee in &manifest.committees {
        let view = app
            .get(&admin, committee.org.id, year)
            .await
            .map_err(app_err)?;
        if view.status != "final" {
            app.finalize(&admin, committee.org.id, year)
                .await
                .map_err(app_err)
                .with_context(|| format!("finalizing {year} of committee {}", committee.org.id))?;
        }
    }
    let view = app
        .get(&admin, manifest.root.id, year)
        .await
        .map_err(app_err)?;
    let mut grades: BTreeMap<String, usize> = BTreeMap::new();
    for m in &view.members {
        *grades
            .entry(m.grade.clone().unwrap_or_else(|| m.proposed_grade.clone()))
            .or_default() += 1;
    }
    jifen_demo::marker::save(
        &db,
        &version,
        &serde_json::json!({ "grades": grades }),
        true,
    )
    .await?;
    println!(
        "grading history ready in {:.1}s: {year} is {} with {grades:?} (marker {version})",
        started.elapsed().as_secs_f64(),
        view.status
    );
    db.close().await?;
    Ok(())
}
