//! The evaluator's side: redeem a code, read the ballot, cast it once.
//!
//! Anonymity (docs/evaluator-anonymity.md): casting spends the code by deleting its
//! `unused_codes` row and inserts a ballot that holds the round, the evaluator kind and the
//! ratings only, in one transaction — so exactly one ballot per code, and nothing stored ties
//! the ballot to the code, the ticket or a person.

use super::{AppError, Evaluations, authorize, kind_from_row, round_from_row};
use crate::crypto::Ticket;
use crate::domain::authz;
use crate::domain::{Code, EvaluatorKind, Quarter, Rating, RuleError};
use crate::store::{self, rounds::Lock};
use chrono::{DateTime, Utc};
use jifen_platform::auth::Principal;
use sea_orm::TransactionTrait as _;
use std::collections::HashSet;
use uuid::Uuid;

/// What a redeemed code opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub round_id: Uuid,
    pub org_id: Uuid,
    pub org_path: String,
    pub quarter: Quarter,
    pub kind: EvaluatorKind,
    pub ticket: String,
    pub closes_at: Option<DateTime<Utc>>,
}

/// The ballot an evaluator fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BallotView {
    pub round_id: Uuid,
    pub quarter: Quarter,
    pub kind: EvaluatorKind,
    /// `(member id, name)`, without the evaluator themself.
    pub members: Vec<(Uuid, String)>,
}

/// The evaluator's invitation, checked against the round of the request.
struct Checked {
    kind: EvaluatorKind,
    ticket: Ticket,
    unused: bool,
}

impl Evaluations {
    /// Checks `code`: its round must accept ballots and the code must be unused. A member code
    /// needs the caller to be a member on the round's roster (their own login).
    #[tracing::instrument(skip_all)]
    pub async fn redeem(&self, actor: &Principal, code: &Code) -> Result<Redemption, AppError> {
        let hash = self.hasher.hash(code);
        let invitation = store::invitations::find(&self.db, &hash)
            .await?
            .ok_or(AppError::InvalidCode)?;
        let row = store::rounds::find(&self.db, invitation.round_id, Lock::None)
            .await?
            .ok_or_else(|| AppError::Corrupt("an invitation without its round".into()))?;
        let round = round_from_row(&row)?;
        round
            .check_accepting(Utc::now())
            .map_err(|r| AppError::rule(r, Some("code")))?;
        if !invitation.unused {
            return Err(AppError::rule(RuleError::CodeUsed, Some("code")));
        }
        let kind = kind_from_row(round.id, &invitation.evaluator_kind)?;
        let on_roster = |member: Uuid| async move {
            Ok::<_, AppError>(
                store::rounds::roster(&self.db, round.id)
                    .await?
                    .iter()
                    .any(|r| r.member_id == member),
            )
        };
        let exclude = match kind {
            // A masses code names no one, but a caller known to be on the roster would rate
            // themself with it: refused. (Masses codes are handed to people outside the branch.)
            EvaluatorKind::Masses => match actor.member_id {
                Some(member) if on_roster(member).await? => {
                    return Err(AppError::rule(RuleError::MassesCodeForRosterMember, None));
                }
                _ => None,
            },
            EvaluatorKind::Member => {
                let member = actor
                    .member_id
                    .ok_or(AppError::rule(RuleError::MemberLoginRequired, None))?;
                if !on_roster(member).await? {
                    return Err(AppError::rule(RuleError::NotOnRoster, None));
                }
                Some(member)
            }
        };
        metrics::counter!("evaluations_codes_redeemed_total").increment(1);
        Ok(Redemption {
            round_id: round.id,
            org_id: round.org_id,
            org_path: round.org_path,
            quarter: round.quarter,
            kind,
            ticket: Ticket {
                code_hash: hash,
                exclude,
            }
            .encode(),
            closes_at: round.closes_at,
        })
    }

    /// The evaluator's own invitation for `round_id`, from the ticket in their token.
    async fn checked(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        actor: &Principal,
        round_id: Uuid,
    ) -> Result<Checked, AppError> {
        authorize(authz::use_ballot(actor, round_id), "round_id", "round")?;
        let ticket = Ticket::from_subject(&actor.subject).map_err(|_| AppError::Denied)?;
        let invitation = store::invitations::find(conn, &ticket.code_hash)
            .await?
            .ok_or(AppError::Denied)?;
        if invitation.round_id != round_id {
            return Err(AppError::Denied);
        }
        let kind = kind_from_row(round_id, &invitation.evaluator_kind)?;
        if (kind == EvaluatorKind::Member) != ticket.exclude.is_some() {
            return Err(AppError::Denied);
        }
        Ok(Checked {
            kind,
            ticket,
            unused: invitation.unused,
        })
    }

    /// The ballot of the evaluator's round: the roster (without themself) and the ratings.
    pub async fn ballot(&self, actor: &Principal, round_id: Uuid) -> Result<BallotView, AppError> {
        let checked = self.checked(&self.db, actor, round_id).await?;
        let row = store::rounds::find(&self.db, round_id, Lock::None)
            .await?
            .ok_or(AppError::NotFound {
                field: "round_id",
                what: "round",
            })?;
        let round = round_from_row(&row)?;
        round
            .check_accepting(Utc::now())
            .map_err(|r| AppError::rule(r, None))?;
        if !checked.unused {
            return Err(AppError::rule(RuleError::CodeUsed, None));
        }
        let members = store::rounds::roster(&self.db, round_id)
            .await?
            .into_iter()
            .filter(|r| Some(r.member_id) != checked.ticket.exclude)
            .map(|r| (r.member_id, r.name))
            .collect();
        Ok(BallotView {
            round_id,
            quarter: round.quarter,
            kind: checked.kind,
            members,
        })
    }

    /// Casts the evaluator's one ballot. `ratings` are distinct members (checked by the caller
    /// of this function); each must be on the ballot.
    #[tracing::instrument(skip_all, fields(round_id = %round_id))]
    pub async fn cast(
        &self,
        actor: &Principal,
        round_id: Uuid,
        ratings: &[(Uuid, Rating)],
    ) -> Result<usize, AppError> {
        let txn = self.db.begin().await?;
        let checked = self.checked(&txn, actor, round_id).await?;
        // FOR SHARE: a closing (FOR UPDATE) waits for ballots in flight, and ballots wait for it.
        let row = store::rounds::find(&txn, round_id, Lock::Share)
            .await?
            .ok_or(AppError::NotFound {
                field: "round_id",
                what: "round",
            })?;
        round_from_row(&row)?
            .check_accepting(Utc::now())
            .map_err(|r| AppError::rule(r, None))?;
        let roster: HashSet<Uuid> = store::rounds::roster(&txn, round_id)
            .await?
            .into_iter()
            .map(|r| r.member_id)
            .filter(|m| Some(*m) != checked.ticket.exclude)
            .collect();
        let off_ballot: Vec<_> = ratings
            .iter()
            .enumerate()
            .filter(|(_, (m, _))| !roster.contains(m))
            .map(|(i, _)| super::FieldViolation {
                field: format!("ratings[{i}].member_id"),
                message: "is not on this ballot".into(),
            })
            .collect();
        if !off_ballot.is_empty() {
            return Err(AppError::Invalid(off_ballot));
        }
        if !store::invitations::spend(&txn, &checked.ticket.code_hash).await? {
            return Err(AppError::rule(RuleError::CodeUsed, None));
        }
        let rows: Vec<(Uuid, &str)> = ratings.iter().map(|(m, r)| (*m, r.as_str())).collect();
        store::ballots::insert(&txn, round_id, checked.kind.as_str(), &rows).await?;
        txn.commit().await?;
        metrics::counter!("evaluations_ballots_total").increment(1);
        Ok(ratings.len())
    }
}
