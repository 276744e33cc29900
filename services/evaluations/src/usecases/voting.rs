//! The evaluator's side: redeem a code, read the ballot, cast it once.
//!
//! Anonymity (docs/evaluator-anonymity.md): casting spends the code by deleting its
//! `unused_codes` row and inserts a ballot that holds the round, the evaluator kind and the
//! ratings only, in one transaction — so exactly one ballot per code, and nothing stored ties
//! the ballot to the code, the ticket or a person.

use super::{AppError, Evaluations, authorize, kind_from_row, round_from_row};
use crate::crypto::Ticket;
use crate::domain::authz;
use crate::domain::{Code, EvaluatorKind, Quarter, Rating, Round, RuleError};
use crate::store::{self, rounds::Lock};
use chrono::{DateTime, Utc};
use jifen_platform::auth::Principal;
use rand::seq::SliceRandom as _;
use sea_orm::TransactionTrait as _;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
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
        let round = self.round_of(invitation.round_id).await?;
        // The roster matters only for a caller who is a member (their own login).
        let roster = match actor.member_id {
            Some(_) => self.roster_of(round.id).await?,
            None => Vec::new(),
        };
        let redemption = redemption(actor, hash, &invitation, &round, &roster, Utc::now())?;
        metrics::counter!("evaluations_codes_redeemed_total").increment(1);
        Ok(redemption)
    }

    /// Redeems several codes, each `(caller, code)` by the rules of [`Evaluations::redeem`] and
    /// the same checks, the invitations read in one statement and each round and roster once;
    /// answers the redemptions in the order given, or the first request refused (nothing is
    /// written either way: redeeming does not use a code up). For the demo history's seeding
    /// (docs/decisions/0014-demo-history.md); the API redeems one code a request.
    #[tracing::instrument(skip_all, fields(codes = requests.len()))]
    pub async fn redeem_batch(
        &self,
        requests: &[(Principal, Code)],
    ) -> Result<Vec<Redemption>, BatchError> {
        let whole = |error: AppError| BatchError { index: None, error };
        let hashes: Vec<Vec<u8>> = requests.iter().map(|(_, c)| self.hasher.hash(c)).collect();
        let refs: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
        let invitations: HashMap<Vec<u8>, store::invitations::InvitationRow> =
            store::invitations::find_many(&self.db, &refs)
                .await
                .map_err(|e| whole(e.into()))?
                .into_iter()
                .collect();
        let mut rounds: HashMap<Uuid, Round> = HashMap::new();
        let mut rosters: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        let mut out = Vec::with_capacity(requests.len());
        for (index, ((actor, _), hash)) in requests.iter().zip(hashes).enumerate() {
            let at = |error: AppError| BatchError {
                index: Some(index),
                error,
            };
            let invitation = invitations
                .get(&hash)
                .ok_or(AppError::InvalidCode)
                .map_err(at)?;
            let id = invitation.round_id;
            if let Entry::Vacant(e) = rounds.entry(id) {
                e.insert(self.round_of(id).await.map_err(at)?);
            }
            if actor.member_id.is_some()
                && let Entry::Vacant(e) = rosters.entry(id)
            {
                e.insert(self.roster_of(id).await.map_err(at)?);
            }
            let round = rounds
                .get(&id)
                .ok_or_else(|| at(AppError::Corrupt(format!("round {id}: not read"))))?;
            let roster = rosters.get(&id).map_or(&[][..], Vec::as_slice);
            out.push(redemption(actor, hash, invitation, round, roster, Utc::now()).map_err(at)?);
        }
        metrics::counter!("evaluations_codes_redeemed_total")
            .increment(u64::try_from(out.len()).unwrap_or(u64::MAX));
        Ok(out)
    }

    /// The round of an invitation.
    async fn round_of(&self, id: Uuid) -> Result<Round, AppError> {
        let row = store::rounds::find(&self.db, id, Lock::None)
            .await?
            .ok_or_else(|| AppError::Corrupt("an invitation without its round".into()))?;
        round_from_row(&row)
    }

    /// The members on a round's roster.
    async fn roster_of(&self, id: Uuid) -> Result<Vec<Uuid>, AppError> {
        Ok(store::rounds::roster(&self.db, id)
            .await?
            .into_iter()
            .map(|r| r.member_id)
            .collect())
    }

    /// The evaluator's own invitation for `round_id`, from the ticket in their token.
    async fn checked(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        actor: &Principal,
        round_id: Uuid,
    ) -> Result<Checked, AppError> {
        let ticket = ticket_of(actor, round_id)?;
        let invitation = store::invitations::find(conn, &ticket.code_hash).await?;
        check_invitation(ticket, invitation, round_id)
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
        let roster = ballot_box(&txn, round_id).await?;
        check_on_ballot(&roster, &checked, ratings)?;
        if !store::invitations::spend(&txn, &checked.ticket.code_hash).await? {
            return Err(AppError::rule(RuleError::CodeUsed, None));
        }
        let rows: Vec<(Uuid, &str)> = ratings.iter().map(|(m, r)| (*m, r.as_str())).collect();
        store::ballots::insert(&txn, round_id, checked.kind.as_str(), &rows).await?;
        txn.commit().await?;
        metrics::counter!("evaluations_ballots_total").increment(1);
        Ok(ratings.len())
    }

    /// Casts several evaluators' ballots of one round in one transaction, all or nothing, each
    /// under the rules of [`Evaluations::cast`] and by the same checks: its ticket names an
    /// invitation of the round of the kind it claims, its ratings are on its own ballot (the
    /// roster, without a member evaluator themself), its code is spent exactly once (a code
    /// spent before, or twice in the batch, refuses the batch: `code_used`). The round is read,
    /// locked `FOR SHARE` and checked once for the batch; the invitations are read, the codes
    /// spent and the ballots inserted a statement each for the whole batch. The ballots are
    /// stored in a random order, not in the order given, so the rows' physical order does not
    /// follow the order of the redemptions. Answers the ballots cast. For the demo history's
    /// seeding (docs/decisions/0014-demo-history.md); the API casts one ballot a request.
    #[tracing::instrument(skip_all, fields(round_id = %round_id, ballots = ballots.len()))]
    pub async fn cast_batch(
        &self,
        round_id: Uuid,
        ballots: &[BatchBallot],
    ) -> Result<usize, BatchError> {
        let whole = |error: AppError| BatchError { index: None, error };
        let at = |index: usize| {
            move |error: AppError| BatchError {
                index: Some(index),
                error,
            }
        };
        let mut tickets = Vec::with_capacity(ballots.len());
        for (index, b) in ballots.iter().enumerate() {
            tickets.push(ticket_of(&b.evaluator, round_id).map_err(at(index))?);
        }
        let txn = self.db.begin().await.map_err(|e| whole(e.into()))?;
        let owned: Vec<Vec<u8>> = tickets.iter().map(|t| t.code_hash.clone()).collect();
        let hashes: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let invitations: HashMap<Vec<u8>, store::invitations::InvitationRow> =
            store::invitations::find_many(&txn, &hashes)
                .await
                .map_err(|e| whole(e.into()))?
                .into_iter()
                .collect();
        let mut checked = Vec::with_capacity(ballots.len());
        for (index, ticket) in tickets.into_iter().enumerate() {
            // A hash met twice in the batch: the same invitation both times.
            let invitation = invitations.get(&ticket.code_hash).cloned();
            checked.push(check_invitation(ticket, invitation, round_id).map_err(at(index))?);
        }
        let roster = ballot_box(&txn, round_id).await.map_err(whole)?;
        for (index, (b, c)) in ballots.iter().zip(&checked).enumerate() {
            check_on_ballot(&roster, c, &b.ratings).map_err(at(index))?;
        }
        let mut spent: HashSet<Vec<u8>> = store::invitations::spend_many(&txn, &hashes)
            .await
            .map_err(|e| whole(e.into()))?
            .into_iter()
            .collect();
        for (index, c) in checked.iter().enumerate() {
            // Each spent code counts for the first ballot that names it.
            if !spent.remove(&c.ticket.code_hash) {
                return Err(at(index)(AppError::rule(RuleError::CodeUsed, None)));
            }
        }
        let mut rows: Vec<(&str, Vec<(Uuid, &str)>)> = ballots
            .iter()
            .zip(&checked)
            .map(|(b, c)| {
                let ratings = b.ratings.iter().map(|(m, r)| (*m, r.as_str())).collect();
                (c.kind.as_str(), ratings)
            })
            .collect();
        rows.shuffle(&mut rand::rngs::OsRng);
        store::ballots::insert_many(&txn, round_id, &rows)
            .await
            .map_err(|e| whole(e.into()))?;
        txn.commit().await.map_err(|e| whole(e.into()))?;
        metrics::counter!("evaluations_ballots_total")
            .increment(u64::try_from(ballots.len()).unwrap_or(u64::MAX));
        Ok(ballots.len())
    }
}

/// One ballot of [`Evaluations::cast_batch`]: the evaluator principal the gateway signs for a
/// redeemed code (`evaluator:<ticket>`), and the ratings (distinct members).
#[derive(Debug, Clone)]
pub struct BatchBallot {
    pub evaluator: Principal,
    pub ratings: Vec<(Uuid, Rating)>,
}

/// Why a batch of ballots failed: the ballot (its index in the batch; `None` for the round or
/// the transaction) and the error [`Evaluations::cast`] would have answered for it. Nothing of
/// the batch is stored.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", batch_place(.index))]
pub struct BatchError {
    pub index: Option<usize>,
    #[source]
    pub error: AppError,
}

fn batch_place(index: &Option<usize>) -> String {
    match index {
        Some(i) => format!("ballots[{i}]"),
        None => "the batch".to_owned(),
    }
}

/// What the code of `hash` opens for `actor`: its round must accept ballots, the code must be
/// unused; a member code needs the caller to be a member on the round's `roster` (their own
/// login); a masses code is refused to a caller on the roster (it would list them). `roster`
/// may be empty when the caller is no member.
fn redemption(
    actor: &Principal,
    hash: Vec<u8>,
    invitation: &store::invitations::InvitationRow,
    round: &Round,
    roster: &[Uuid],
    now: chrono::DateTime<Utc>,
) -> Result<Redemption, AppError> {
    round
        .check_accepting(now)
        .map_err(|r| AppError::rule(r, Some("code")))?;
    if !invitation.unused {
        return Err(AppError::rule(RuleError::CodeUsed, Some("code")));
    }
    let kind = kind_from_row(round.id, &invitation.evaluator_kind)?;
    let on_roster = |member: Uuid| roster.contains(&member);
    let exclude = match kind {
        // A masses code names no one, but a caller known to be on the roster would rate
        // themself with it: refused. (Masses codes are handed to people outside the branch.)
        EvaluatorKind::Masses => match actor.member_id {
            Some(member) if on_roster(member) => {
                return Err(AppError::rule(RuleError::MassesCodeForRosterMember, None));
            }
            _ => None,
        },
        EvaluatorKind::Member => {
            let member = actor
                .member_id
                .ok_or(AppError::rule(RuleError::MemberLoginRequired, None))?;
            if !on_roster(member) {
                return Err(AppError::rule(RuleError::NotOnRoster, None));
            }
            Some(member)
        }
    };
    Ok(Redemption {
        round_id: round.id,
        org_id: round.org_id,
        org_path: round.org_path.clone(),
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

/// The ticket of an evaluator of `round_id` (their token's subject).
fn ticket_of(actor: &Principal, round_id: Uuid) -> Result<Ticket, AppError> {
    authorize(authz::use_ballot(actor, round_id), "round_id", "round")?;
    Ticket::from_subject(&actor.subject).map_err(|_| AppError::Denied)
}

/// The ticket's invitation must exist, be of `round_id`, and be of the kind the ticket claims
/// (a member ticket names the member, a masses ticket no one).
fn check_invitation(
    ticket: Ticket,
    invitation: Option<store::invitations::InvitationRow>,
    round_id: Uuid,
) -> Result<Checked, AppError> {
    let invitation = invitation.ok_or(AppError::Denied)?;
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

/// The round of a ballot, in the ballot's transaction: read `FOR SHARE` (a closing, `FOR
/// UPDATE`, waits for ballots in flight, and ballots wait for it), checked to accept ballots;
/// answers its roster.
async fn ballot_box(
    txn: &impl sea_orm::ConnectionTrait,
    round_id: Uuid,
) -> Result<Vec<Uuid>, AppError> {
    let row = store::rounds::find(txn, round_id, Lock::Share)
        .await?
        .ok_or(AppError::NotFound {
            field: "round_id",
            what: "round",
        })?;
    round_from_row(&row)?
        .check_accepting(Utc::now())
        .map_err(|r| AppError::rule(r, None))?;
    Ok(store::rounds::roster(txn, round_id)
        .await?
        .into_iter()
        .map(|r| r.member_id)
        .collect())
}

/// Every rating must be on the evaluator's ballot: the roster without a member evaluator
/// themself.
fn check_on_ballot(
    roster: &[Uuid],
    checked: &Checked,
    ratings: &[(Uuid, Rating)],
) -> Result<(), AppError> {
    let ballot: HashSet<Uuid> = roster
        .iter()
        .copied()
        .filter(|m| Some(*m) != checked.ticket.exclude)
        .collect();
    let off_ballot: Vec<_> = ratings
        .iter()
        .enumerate()
        .filter(|(_, (m, _))| !ballot.contains(m))
        .map(|(i, _)| super::FieldViolation {
            field: format!("ratings[{i}].member_id"),
            message: "is not on this ballot".into(),
        })
        .collect();
    if off_ballot.is_empty() {
        Ok(())
    } else {
        Err(AppError::Invalid(off_ballot))
    }
}
