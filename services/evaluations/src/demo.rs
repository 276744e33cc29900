//! `jifen-evaluations seed-demo-history`: the evaluations side of the demo city's history
//! (docs/decisions/0014-demo-history.md) — for every branch and every quarter that has ended, a
//! round opened by the secretary, invitation codes for the masses and for members, each code
//! redeemed and its ballot cast as [`jifen_demo::Plan`] rates, and the round closed.
//!
//! Everything goes through this service's own use cases with the acting person's principal: the
//! secretary opens, invites and closes; a masses code is redeemed by the seeding as the gateway
//! redeems it (a service identity) and a member code with the member's own principal; each ballot
//! is cast with the evaluator principal the gateway would sign for the redemption.
//!
//! Idempotent by its marker (`demo_seed` row of [`version`]) and by the rounds themselves: a
//! closed round of the quarter is left alone; an open one (an interrupted run) gets codes for the
//! ballots it still lacks (the plan's ballots in order, from the count it holds), then closes.

use crate::domain::{Code, EvaluatorKind, InvitationCount, Quarter, Rating};
use crate::usecases::{AppError, Evaluations};
use anyhow::Context as _;
use futures::StreamExt as _;
use jifen_demo::{BallotKind, Manifest, Plan};
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use secrecy::ExposeSecret as _;
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
    let mut total_ballots = 0;
    for (year, q) in plan.ended_quarters() {
        let quarter_started = Instant::now();
        let quarter = Quarter::parse(&format!("{year}-Q{q}"))
            .map_err(|e| anyhow::anyhow!("quarter {year}-Q{q}: {e}"))?;
        let results: Vec<anyhow::Result<(usize, usize)>> =
            futures::stream::iter(0..manifest.branches().len())
                .map(|gb| {
                    let (app, manifest, plan) = (&app, &manifest, &plan);
                    async move { seed_round(app, manifest, plan, gb, quarter, year, q).await }
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
            "  {quarter}: {rounds} rounds closed, {ballots} ballots — {:.1}s (total {:.1}s)",
            quarter_started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
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

/// Branch `gb`'s round of the quarter: opened (unless it exists), its missing ballots cast, and
/// closed. Answers (rounds closed, ballots cast) by this call.
async fn seed_round(
    app: &Evaluations,
    manifest: &Manifest,
    plan: &Plan,
    gb: usize,
    quarter: Quarter,
    year: i32,
    q: u32,
) -> anyhow::Result<(usize, usize)> {
    let branch = manifest.branches()[gb];
    let secretary = manifest.secretary_principal(branch);
    let (rounds, _) = app
        .list_rounds(&secretary, branch.org.id, 20, None)
        .await
        .map_err(app_err)?;
    let existing = rounds.into_iter().find(|r| r.round.quarter == quarter);
    let (round_id, cast_before) = match existing {
        Some(r) if r.round.status == crate::domain::RoundStatus::Closed => return Ok((0, 0)),
        Some(r) => (r.round.id, usize::try_from(r.ballots).unwrap_or(0)),
        None => {
            let view = app
                .open_round(&secretary, branch.org.id, quarter, None)
                .await
                .map_err(app_err)
                .with_context(|| format!("branch {gb} opening {quarter}"))?;
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
    let mut masses_codes = issue(app, &secretary, round_id, masses, EvaluatorKind::Masses).await?;
    let mut member_codes = issue(app, &secretary, round_id, members, EvaluatorKind::Member).await?;
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
    let mut cast = 0;
    for ballot in &ballots {
        let (code, redeemer) = match ballot.kind {
            BallotKind::Masses => (masses_codes.pop(), Some(gateway.clone())),
            BallotKind::Member(i) => (member_codes.pop(), manifest.member_principal(branch, i)),
        };
        let (Some(code), Some(redeemer)) = (code, redeemer) else {
            continue;
        };
        let redeemed = app
            .redeem(&redeemer, &code)
            .await
            .map_err(app_err)
            .with_context(|| format!("branch {gb} {quarter}: redeeming a code"))?;
        let evaluator = Principal {
            subject: format!("evaluator:{}", redeemed.ticket),
            username: None,
            member_id: None,
            roles: vec![RoleClaim {
                role: RoleName::Evaluator,
                org_id: redeemed.org_id,
                org_path: redeemed.org_path.clone(),
            }],
            round_id: Some(redeemed.round_id),
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
        app.cast(&evaluator, round_id, &ratings)
            .await
            .map_err(app_err)
            .with_context(|| format!("branch {gb} {quarter}: casting a ballot"))?;
        cast += 1;
    }
    app.close_round(&secretary, round_id)
        .await
        .map_err(app_err)
        .with_context(|| format!("branch {gb} closing {quarter}"))?;
    Ok((1, cast))
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
