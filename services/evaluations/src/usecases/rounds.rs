//! Rounds: open, read, list, issue codes, close (by hand or at the closing instant).

use super::{AppError, Evaluations, authorize, round_from_row, round_to_row};
use crate::domain::authz;
use crate::domain::round::SYSTEM_ACTOR;
use crate::domain::{
    Code, EvaluatorKind, InvitationCount, MemberResult, Quarter, Rating, Round, RoundStatus,
    RuleError, ScoringSettings, business_today, scoring,
};
use crate::events::{self, RoundFacts};
use crate::store::{self, rounds::Lock};
use chrono::{DateTime, Utc};
use jifen_platform::auth::Principal;
use sea_orm::{ConnectionTrait, TransactionTrait as _};
use uuid::Uuid;

/// One member's result with their name (as on the roster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultView {
    pub name: String,
    pub result: MemberResult,
}

/// A round with its counts and, once closed, its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundView {
    pub round: Round,
    pub invited: i64,
    pub ballots: i64,
    pub roster_size: i64,
    pub results: Vec<ResultView>,
}

/// How many rounds past their closing instant one sweep closes at most.
const SWEEP_BATCH: u64 = 100;

impl Evaluations {
    async fn view(&self, conn: &impl ConnectionTrait, round: Round) -> Result<RoundView, AppError> {
        let (invited, ballots, roster_size) = store::rounds::counts(conn, round.id).await?;
        let results = if round.status == RoundStatus::Closed {
            store::rounds::results(conn, round.id)
                .await?
                .into_iter()
                .map(|r| ResultView {
                    name: r.name,
                    result: MemberResult {
                        member_id: r.member_id,
                        ballots: u32::try_from(r.ballots).unwrap_or(0),
                        score_total: r.score_total,
                        score: r.score,
                        poor_ballots: u32::try_from(r.poor_ballots).unwrap_or(0),
                        valid: r.valid,
                    },
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(RoundView {
            round,
            invited,
            ballots,
            roster_size,
            results,
        })
    }

    /// Opens the round of `quarter` for a branch: admin or secretary over the branch; not once a
    /// grade of the quarter's year is final in the branch (409 `grading_final`).
    #[tracing::instrument(skip_all, fields(org_id = %org_id, quarter = %quarter))]
    pub async fn open_round(
        &self,
        actor: &Principal,
        org_id: Uuid,
        quarter: Quarter,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<RoundView, AppError> {
        let txn = self.db.begin().await?;
        let org = store::replica::find_org(&txn, org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "organization",
            })?;
        authorize(
            authz::manage_round(actor, &org.path),
            "org_id",
            "organization",
        )?;
        if org.kind != "branch" {
            return Err(AppError::rule(RuleError::NotABranch, Some("org_id")));
        }
        let now = Utc::now();
        let round = Round::open(
            Uuid::now_v7(),
            org.id,
            org.path.clone(),
            quarter,
            closes_at,
            actor.subject.clone(),
            now,
            business_today(now),
        )
        .map_err(|rule| match rule {
            RuleError::ClosesAtNotInFuture => AppError::invalid("closes_at", rule.to_string()),
            other => AppError::rule(other, Some("quarter")),
        })?;
        // Before the roster and the quarter's uniqueness: the final year is the more basic
        // reason (decision 0006). Matched on the branch the grades were given in.
        if store::final_grades::final_in_branch(&txn, org.id, quarter.year()).await? {
            return Err(AppError::rule(
                RuleError::GradingFinal(quarter.year()),
                Some("quarter"),
            ));
        }
        let members = store::replica::active_members_under(&txn, &org.path).await?;
        if members.is_empty() {
            return Err(AppError::rule(RuleError::EmptyRoster, Some("org_id")));
        }
        let roster: Vec<store::rounds::RosterRow> = members
            .iter()
            .map(|m| store::rounds::RosterRow {
                member_id: m.id,
                name: m.name.clone(),
            })
            .collect();
        match store::rounds::insert(&txn, &round_to_row(&round)).await {
            Ok(()) => {}
            Err(e) if store::is_unique_violation(&e, "rounds_one_per_quarter") => {
                return Err(AppError::rule(
                    RuleError::RoundExists(quarter),
                    Some("quarter"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        store::rounds::insert_roster(&txn, round.id, &roster).await?;
        let ids: Vec<Uuid> = roster.iter().map(|r| r.member_id).collect();
        jifen_eventbus::stage(
            &txn,
            events::SOURCE,
            events::round_changed(
                events::ROUND_OPENED,
                &RoundFacts {
                    round: &round,
                    roster: &ids,
                    invited: 0,
                    ballots: 0,
                    results: &[],
                },
            ),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(round_id = %round.id, roster = ids.len(), "evaluation round opened");
        metrics::counter!("evaluations_rounds_opened_total").increment(1);
        Ok(RoundView {
            round,
            invited: 0,
            ballots: 0,
            roster_size: i64::try_from(ids.len()).unwrap_or(i64::MAX),
            results: Vec::new(),
        })
    }

    /// A round with its counts and results; a round past its closing instant closes first.
    pub async fn get_round(&self, actor: &Principal, id: Uuid) -> Result<RoundView, AppError> {
        let row =
            store::rounds::find(&self.db, id, Lock::None)
                .await?
                .ok_or(AppError::NotFound {
                    field: "id",
                    what: "round",
                })?;
        authorize(authz::manage_round(actor, &row.org_path), "id", "round")?;
        let round = round_from_row(&row)?;
        if round.is_due(Utc::now()) {
            return self.close(id, SYSTEM_ACTOR, None).await;
        }
        self.view(&self.db, round).await
    }

    /// The rounds of an organization, newest quarter first.
    pub async fn list_rounds(
        &self,
        actor: &Principal,
        org_id: Uuid,
        page_size: u64,
        after: Option<Quarter>,
    ) -> Result<(Vec<RoundView>, Option<Quarter>), AppError> {
        let org = store::replica::find_org(&self.db, org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "organization",
            })?;
        authorize(
            authz::manage_round(actor, &org.path),
            "org_id",
            "organization",
        )?;
        let after = after.map(|q| q.to_string());
        let rows =
            store::rounds::list_by_org(&self.db, org_id, after.as_deref(), page_size + 1).await?;
        let more = rows.len() as u64 > page_size;
        let mut views = Vec::new();
        for row in rows
            .iter()
            .take(usize::try_from(page_size).unwrap_or(usize::MAX))
        {
            views.push(self.view(&self.db, round_from_row(row)?).await?);
        }
        let next = if more {
            views.last().map(|v| v.round.quarter)
        } else {
            None
        };
        Ok((views, next))
    }

    /// Issues `count` codes for `kind` evaluators; the clear codes exist only in the answer.
    #[tracing::instrument(skip_all, fields(round_id = %round_id, count = count.get(), kind = %kind))]
    pub async fn issue_invitations(
        &self,
        actor: &Principal,
        round_id: Uuid,
        count: InvitationCount,
        kind: EvaluatorKind,
    ) -> Result<Vec<Code>, AppError> {
        // A collision of two random 49-bit codes is all but impossible; when it happens the
        // whole batch is drawn again.
        for _ in 0..3 {
            match self.try_issue(actor, round_id, count, kind).await {
                Err(AppError::Db(e)) if store::is_unique_violation(&e, "invitations_pkey") => {
                    tracing::warn!("invitation code collision; drawing the batch again");
                }
                other => return other,
            }
        }
        Err(AppError::Corrupt("three code collisions in a row".into()))
    }

    async fn try_issue(
        &self,
        actor: &Principal,
        round_id: Uuid,
        count: InvitationCount,
        kind: EvaluatorKind,
    ) -> Result<Vec<Code>, AppError> {
        let txn = self.db.begin().await?;
        let row = store::rounds::find(&txn, round_id, Lock::Share)
            .await?
            .ok_or(AppError::NotFound {
                field: "id",
                what: "round",
            })?;
        authorize(authz::manage_round(actor, &row.org_path), "id", "round")?;
        round_from_row(&row)?
            .check_accepting(Utc::now())
            .map_err(|r| AppError::rule(r, None))?;
        let mut rng = rand::rngs::OsRng;
        let codes: Vec<Code> = (0..count.get()).map(|_| Code::generate(&mut rng)).collect();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| self.hasher.hash(c)).collect();
        store::invitations::insert_batch(
            &txn,
            Uuid::now_v7(),
            round_id,
            kind.as_str(),
            &hashes,
            Utc::now(),
            &actor.subject,
        )
        .await?;
        txn.commit().await?;
        metrics::counter!("evaluations_codes_issued_total").increment(u64::from(count.get()));
        Ok(codes)
    }

    /// Closes a round by hand: admin or secretary over the branch; 409 when closed already.
    #[tracing::instrument(skip_all, fields(round_id = %id))]
    pub async fn close_round(&self, actor: &Principal, id: Uuid) -> Result<RoundView, AppError> {
        let row =
            store::rounds::find(&self.db, id, Lock::None)
                .await?
                .ok_or(AppError::NotFound {
                    field: "id",
                    what: "round",
                })?;
        authorize(authz::manage_round(actor, &row.org_path), "id", "round")?;
        self.close(id, &actor.subject, Some(actor)).await
    }

    /// Closes every open round past its closing instant (at most one batch); answers how many.
    pub async fn close_due(&self) -> Result<usize, AppError> {
        let due = store::rounds::due(&self.db, Utc::now(), SWEEP_BATCH).await?;
        let mut closed = 0;
        for id in due {
            match self.close(id, SYSTEM_ACTOR, None).await {
                Ok(_) => closed += 1,
                // Closed meanwhile by hand or by another instance.
                Err(AppError::Rule {
                    rule: RuleError::RoundClosed,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(closed)
    }

    /// The closing transaction. `by_hand`: a person closes (a closed round is a 409); `None`:
    /// the closing instant passed (a round closed meanwhile is simply answered as it is).
    async fn close(
        &self,
        id: Uuid,
        actor: &str,
        by_hand: Option<&Principal>,
    ) -> Result<RoundView, AppError> {
        let txn = self.db.begin().await?;
        let row = store::rounds::find(&txn, id, Lock::Update)
            .await?
            .ok_or(AppError::NotFound {
                field: "id",
                what: "round",
            })?;
        let mut round = round_from_row(&row)?;
        if round.status == RoundStatus::Closed {
            if by_hand.is_some() {
                return Err(AppError::rule(RuleError::RoundClosed, None));
            }
            return self.view(&txn, round).await;
        }
        let settings = self.settings_for(&txn, round.quarter.year()).await?;
        let now = Utc::now();
        round
            .close(actor.to_owned(), settings, now)
            .map_err(|r| AppError::rule(r, None))?;
        let roster: Vec<Uuid> = store::rounds::roster(&txn, id)
            .await?
            .into_iter()
            .map(|r| r.member_id)
            .collect();
        let mut ratings = Vec::new();
        for r in store::ballots::ratings(&txn, id).await? {
            let rating = Rating::parse(&r.rating)
                .map_err(|_| AppError::Corrupt(format!("round {id}: rating {:?}", r.rating)))?;
            ratings.push((r.member_id, rating));
        }
        let results = scoring::tally(&roster, ratings, &settings);
        store::rounds::update_closed(&txn, &round_to_row(&round)).await?;
        store::rounds::insert_results(&txn, id, &results).await?;
        let ballots = stage_closed(&txn, &round, &roster, &results).await?;
        let view = self.view(&txn, round).await?;
        txn.commit().await?;
        tracing::info!(round_id = %id, ballots, by = actor, "evaluation round closed");
        metrics::counter!("evaluations_rounds_closed_total").increment(1);
        Ok(view)
    }

    /// The evaluation settings of `year`: the newest published standard of that year, else the
    /// shipped default (docs/decisions/0003-evaluation-standard.md).
    async fn settings_for(
        &self,
        conn: &impl ConnectionTrait,
        year: i32,
    ) -> Result<ScoringSettings, AppError> {
        if let Some(row) = store::standards::find(conn, year).await? {
            match jifen_standard::Standard::parse_json(&row.document) {
                Ok(s) => return Ok(ScoringSettings::from_standard(s.evaluation())),
                Err(problems) => tracing::error!(
                    year,
                    version = row.version,
                    problems = problems.len(),
                    "stored standard does not parse; using the shipped default"
                ),
            }
        }
        let standard = jifen_standard::default_2026().map_err(|problems| {
            AppError::Corrupt(format!("the shipped standard is invalid: {problems:?}"))
        })?;
        Ok(ScoringSettings::from_standard(standard.evaluation()))
    }
}

/// Stages `evaluations.round.closed.v1` for the closed `round` with its roster, its counts and
/// `results`, in `conn`'s transaction; answers the round's ballots.
pub(super) async fn stage_closed(
    conn: &impl ConnectionTrait,
    round: &Round,
    roster: &[Uuid],
    results: &[MemberResult],
) -> Result<i64, AppError> {
    let (invited, ballots, _) = store::rounds::counts(conn, round.id).await?;
    jifen_eventbus::stage(
        conn,
        events::SOURCE,
        events::round_changed(
            events::ROUND_CLOSED,
            &RoundFacts {
                round,
                roster,
                invited,
                ballots,
                results,
            },
        ),
    )
    .await?;
    Ok(ballots)
}
