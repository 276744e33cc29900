//! `jifen-evaluations seed-demo-history`: the evaluations side of the demo city's history
//! (docs/decisions/0014-demo-history.md) — for every branch and every quarter that has ended, a
//! round opened by the secretary, invitation codes for the masses and for members, each code
//! redeemed and its ballot cast as [`jifen_demo::Plan`] rates, and the round closed.
//!
//! Everything goes through this service's own use cases with the acting person's principal: the
//! secretary opens, invites and closes; a masses code is redeemed by the seeding as the gateway
//! redeems it (a service identity) and a member code with the member's own principal; the
//! round's ballots are cast with the evaluator principals the gateway would sign for the
//! redemptions, in one transaction ([`Evaluations::cast_batch`]: each ballot under the rules of
//! a single one). Each quarter prints the time of each step, summed over the rounds seeded at
//! the same time.
//!
//! Idempotent by its marker (`demo_seed` row of [`version`]) and by the rounds themselves: a
//! closed round of the quarter is left alone; an open one (an interrupted run) gets codes for the
//! ballots it still lacks (the plan's ballots in order, from the count it holds), then closes.
//! A round's ballots are all cast or none, so a round interrupted anywhere holds either none
//! of the plan's ballots or all of them.

use crate::crypto::EVALUATOR_SUBJECT_PREFIX;
use crate::domain::{Code, EvaluatorKind, InvitationCount, Quarter, Rating, RoundStatus};
use crate::usecases::{AppError, BatchBallot, BatchError, Evaluations};
use anyhow::Context as _;
use futures::StreamExt as _;
use jifen_demo::{BallotKind, BranchRef, Manifest, Plan};
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use secrecy::ExposeSecret as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The marker version of the history of `manifest`'s city from `seed`.
pub fn version(manifest: &Manifest, seed: u64) -> String {
    format!("demo-history-v1-{}-{seed}", manifest.shape.label())
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

fn batch_err(e: BatchError) -> anyhow::Error {
    let place = match e.index {
        Some(i) => format!("request {i} of the batch"),
        None => "the batch".to_owned(),
    };
    app_err(e.error).context(place)
}

/// Seeds the rounds of every ended quarter, printing progress per quarter.
pub async fn seed_history(
    settings: &crate::Settings,
    manifest: Manifest,
    seed: u64,
    today: chrono::NaiveDate,
    concurrency: usize,
    connections: u32,
) -> anyhow::Result<()> {
    let started = Instant::now();
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
    if let Some((_, true)) = jifen_demo::marker::load(&db, &version).await? {
        println!("evaluations history already seeded (marker {version}): nothing to do");
        return Ok(());
    }
    let mut state = serde_json::json!({ "quarters_done": [] });
    jifen_demo::marker::save(&db, &version, &state, false).await?;

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

    let hasher = crate::crypto::CodeHasher::new(settings.code_key.expose_secret())
        .map_err(|e| anyhow::anyhow!("JIFEN_EVALUATIONS_CODE_KEY: {e}"))?;
    let app = Evaluations::new(db.clone(), hasher);
    let plan = Plan::new(seed, manifest.shape, today);
    // The rounds every branch has already (an interrupted run), one listing per branch.
    let listed: Vec<anyhow::Result<Vec<(Quarter, Existing)>>> =
        futures::stream::iter(manifest.branches())
            .map(|branch| {
                let (app, manifest) = (&app, &manifest);
                async move { existing_rounds(app, manifest, branch).await }
            })
            .buffered(concurrency)
            .collect()
            .await;
    let existing: Vec<Vec<(Quarter, Existing)>> = listed.into_iter().collect::<Result<_, _>>()?;
    println!(
        "  replica ready, {} rounds listed — {:.1}s",
        existing.iter().map(Vec::len).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    let mut total_ballots = 0;
    for (year, q) in plan.ended_quarters() {
        let quarter_started = Instant::now();
        let quarter = Quarter::parse(&format!("{year}-Q{q}"))
            .map_err(|e| anyhow::anyhow!("quarter {year}-Q{q}: {e}"))?;
        let steps = Steps::default();
        let results: Vec<anyhow::Result<(usize, usize)>> =
            futures::stream::iter(0..manifest.branches().len())
                .map(|gb| {
                    let (app, manifest, plan, steps) = (&app, &manifest, &plan, &steps);
                    let round = existing[gb]
                        .iter()
                        .find(|(rq, _)| *rq == quarter)
                        .map(|(_, r)| *r);
                    async move { seed_round(app, manifest, plan, gb, quarter, round, steps).await }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        let mut rounds = 0;
        let mut ballots = 0;
        for r in results {
            let (opened, cast) = r?;
            rounds += opened;
            ballots += cast;
        }
        total_ballots += ballots;
        if let Some(list) = state["quarters_done"].as_array_mut() {
            list.push(serde_json::json!(quarter.to_string()));
        }
        jifen_demo::marker::save(&db, &version, &state, false).await?;
        println!(
            "  {quarter}: {rounds} rounds closed, {ballots} ballots — {:.1}s (total {:.1}s); {}",
            quarter_started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64(),
            steps.line()
        );
    }
    jifen_demo::marker::save(&db, &version, &state, true).await?;
    println!(
        "evaluations history ready in {:.1}s: {} quarters, {total_ballots} ballots (marker {version})",
        started.elapsed().as_secs_f64(),
        plan.ended_quarters().len()
    );
    db.close().await?;
    Ok(())
}

/// Time spent in each step, summed over the rounds seeded at the same time.
#[derive(Default)]
struct Steps {
    open: AtomicU64,
    issue: AtomicU64,
    redeem: AtomicU64,
    cast: AtomicU64,
    close: AtomicU64,
}

impl Steps {
    fn add(&self, step: &AtomicU64, since: Instant) {
        let micros = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        step.fetch_add(micros, Ordering::Relaxed);
    }

    fn line(&self) -> String {
        let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e6;
        format!(
            "steps: open {:.1}s, issue {:.1}s, redeem {:.1}s, cast {:.1}s, close {:.1}s",
            s(&self.open),
            s(&self.issue),
            s(&self.redeem),
            s(&self.cast),
            s(&self.close)
        )
    }
}

/// A round of the quarter that exists already: its id, whether it is closed, its ballots.
#[derive(Debug, Clone, Copy)]
struct Existing {
    id: Uuid,
    closed: bool,
    ballots: usize,
}

/// Branch `gb`'s round of the quarter: opened (unless `existing`), its missing ballots cast (in
/// one batch), and closed. Answers (rounds closed, ballots cast) by this call.
#[allow(clippy::too_many_arguments)]
async fn seed_round(
    app: &Evaluations,
    manifest: &Manifest,
    plan: &Plan,
    gb: usize,
    quarter: Quarter,
    existing: Option<Existing>,
    steps: &Steps,
) -> anyhow::Result<(usize, usize)> {
    let (year, q) = (quarter.year(), u32::from(quarter.number()));
    let branch = manifest.branches()[gb];
    let secretary = manifest.secretary_principal(branch);
    let (round_id, cast_before) = match existing {
        Some(r) if r.closed => return Ok((0, 0)),
        Some(r) => (r.id, r.ballots),
        None => {
            let t = Instant::now();
            let view = app
                .open_round(&secretary, branch.org.id, quarter, None)
                .await
                .map_err(app_err)
                .with_context(|| format!("branch {gb} opening {quarter}"))?;
            steps.add(&steps.open, t);
            (view.round.id, 0)
        }
    };
    let ballots: Vec<_> = plan
        .ballots(gb, year, q)
        .into_iter()
        .skip(cast_before)
        .collect();
    let masses = ballots
        .iter()
        .filter(|b| b.kind == BallotKind::Masses)
        .count();
    let members = ballots.len() - masses;
    let t = Instant::now();
    let mut masses_codes = issue(app, &secretary, round_id, masses, EvaluatorKind::Masses).await?;
    let mut member_codes = issue(app, &secretary, round_id, members, EvaluatorKind::Member).await?;
    steps.add(&steps.issue, t);
    let gateway = Principal {
        subject: "system:seed-demo-history".into(),
        username: None,
        member_id: None,
        roles: vec![RoleClaim {
            role: RoleName::Service,
            org_id: manifest.root.id,
            org_path: manifest.root.path.clone(),
        }],
        round_id: None,
    };
    let t = Instant::now();
    let mut requests = Vec::with_capacity(ballots.len());
    let mut ratings_of = Vec::with_capacity(ballots.len());
    for ballot in &ballots {
        let (code, redeemer) = match ballot.kind {
            BallotKind::Masses => (masses_codes.pop(), Some(gateway.clone())),
            BallotKind::Member(i) => (member_codes.pop(), manifest.member_principal(branch, i)),
        };
        let (Some(code), Some(redeemer)) = (code, redeemer) else {
            continue;
        };
        let ratings: Vec<(Uuid, Rating)> = ballot
            .ratings
            .iter()
            .filter(|(i, _)| branch.members[*i].active)
            .map(|(i, r)| {
                Rating::parse(r.as_str())
                    .map(|rating| (branch.members[*i].id, rating))
                    .map_err(|e| anyhow::anyhow!("rating {}: {e}", r.as_str()))
            })
            .collect::<anyhow::Result<_>>()?;
        requests.push((redeemer, code));
        ratings_of.push(ratings);
    }
    let redeemed = app
        .redeem_batch(&requests)
        .await
        .map_err(batch_err)
        .with_context(|| format!("branch {gb} {quarter}: redeeming the codes"))?;
    let batch: Vec<BatchBallot> = redeemed
        .into_iter()
        .zip(ratings_of)
        .map(|(redeemed, ratings)| BatchBallot {
            // The principal the gateway signs for the redemption.
            evaluator: Principal {
                subject: format!("{EVALUATOR_SUBJECT_PREFIX}{}", redeemed.ticket),
                username: None,
                member_id: None,
                roles: vec![RoleClaim {
                    role: RoleName::Evaluator,
                    org_id: redeemed.org_id,
                    org_path: redeemed.org_path.clone(),
                }],
                round_id: Some(redeemed.round_id),
            },
            ratings,
        })
        .collect();
    steps.add(&steps.redeem, t);
    if batch.is_empty() {
        app.close_round(&secretary, round_id)
            .await
            .map_err(app_err)
            .with_context(|| format!("branch {gb} closing {quarter}"))?;
        return Ok((1, 0));
    }
    let t = Instant::now();
    let cast = app
        .cast_batch(round_id, &batch)
        .await
        .map_err(batch_err)
        .with_context(|| format!("branch {gb} {quarter}: casting the ballots"))?;
    steps.add(&steps.cast, t);
    let t = Instant::now();
    app.close_round(&secretary, round_id)
        .await
        .map_err(app_err)
        .with_context(|| format!("branch {gb} closing {quarter}"))?;
    steps.add(&steps.close, t);
    Ok((1, cast))
}

/// The rounds branch `branch` has, by quarter, as its secretary lists them.
async fn existing_rounds(
    app: &Evaluations,
    manifest: &Manifest,
    branch: &BranchRef,
) -> anyhow::Result<Vec<(Quarter, Existing)>> {
    let secretary = manifest.secretary_principal(branch);
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (views, next) = app
            .list_rounds(&secretary, branch.org.id, 50, after)
            .await
            .map_err(app_err)?;
        out.extend(views.into_iter().map(|v| {
            (
                v.round.quarter,
                Existing {
                    id: v.round.id,
                    closed: v.round.status == RoundStatus::Closed,
                    ballots: usize::try_from(v.ballots).unwrap_or(0),
                },
            )
        }));
        match next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// `count` codes of `kind` (none when `count` is 0).
async fn issue(
    app: &Evaluations,
    secretary: &Principal,
    round_id: Uuid,
    count: usize,
    kind: EvaluatorKind,
) -> anyhow::Result<Vec<Code>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let count = InvitationCount::parse(i64::try_from(count).unwrap_or(i64::MAX))
        .map_err(|e| anyhow::anyhow!("invitation count: {e}"))?;
    app.issue_invitations(secretary, round_id, count, kind)
        .await
        .map_err(app_err)
}
