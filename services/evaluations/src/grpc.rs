//! The tonic implementation of `jifen.evaluations.v1.EvaluationsService`: authenticates the
//! caller from the forwarded JWT, parses every request field into domain values (reporting every
//! bad field at once, named as the public API names them), calls the use-case, and maps the
//! answer back to protobuf. [`to_status`] is the one place where use-case errors become statuses.

use crate::domain::{
    Code, EvaluatorKind, InvitationCount, Quarter, Rating, RoundStatus, RuleError, Violations,
};
use crate::usecases::{AppError, BallotView, Evaluations, Redemption, RoundView};
use jifen_platform::auth::{Principal, TokenVerifier};
use jifen_platform::grpc as status;
use jifen_proto::evaluations::v1 as pb;
use jifen_proto::evaluations::v1::evaluations_service_server::{
    EvaluationsService, EvaluationsServiceServer,
};
use std::collections::HashSet;
use tonic::{Code as GrpcCode, Request, Response, Status};
use uuid::Uuid;

/// The most ratings one ballot may carry (far above any branch's roster).
const MAX_RATINGS: usize = 10_000;
/// Default and largest page of ListRounds.
const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 1000;

/// The gRPC face of the evaluations use-cases.
#[derive(Clone)]
pub struct EvaluationsApi {
    app: Evaluations,
    verifier: TokenVerifier,
}

impl EvaluationsApi {
    pub fn new(app: Evaluations, verifier: TokenVerifier) -> Self {
        Self { app, verifier }
    }

    pub fn into_service(self) -> EvaluationsServiceServer<Self> {
        EvaluationsServiceServer::new(self)
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        status::principal(request, &self.verifier)
    }
}

/// The one mapping from use-case errors to gRPC statuses (docs/decisions/0001-errors.md).
pub fn to_status(error: AppError) -> Status {
    match error {
        AppError::Invalid(violations) => {
            status::invalid_argument(violations.into_iter().map(|v| (v.field, v.message)))
        }
        AppError::Denied => status::failure(
            GrpcCode::PermissionDenied,
            "permission_denied",
            "not allowed for your role and scope",
        ),
        AppError::NotFound { field, what } => status::failure_with_fields(
            GrpcCode::NotFound,
            "not_found",
            format!("{what} not found"),
            [(field, format!("{what} not found"))],
        ),
        AppError::InvalidCode => status::failure_with_fields(
            GrpcCode::Unauthenticated,
            "invalid_code",
            "unknown invitation code",
            [("code", "unknown invitation code")],
        ),
        AppError::Rule { rule, field } => {
            let (code, reason) = rule_code(&rule);
            let message = rule.to_string();
            match field {
                Some(f) => {
                    status::failure_with_fields(code, reason, message.clone(), [(f, message)])
                }
                None => status::failure(code, reason, message),
            }
        }
        AppError::Db(e) if is_unavailable(&e) => {
            tracing::warn!(error = %e, "database unavailable");
            status::failure(
                GrpcCode::Unavailable,
                "unavailable",
                "the database is unavailable",
            )
        }
        other => status::internal(&other),
    }
}

/// gRPC code and machine code of a rule: rule violations OUT_OF_RANGE (422), state conflicts
/// FAILED_PRECONDITION / ALREADY_EXISTS (409), code-holder checks PERMISSION_DENIED (403).
fn rule_code(rule: &RuleError) -> (GrpcCode, &'static str) {
    match rule {
        RuleError::NotABranch => (GrpcCode::OutOfRange, "not_a_branch"),
        RuleError::QuarterNotStarted(_) => (GrpcCode::OutOfRange, "quarter_not_started"),
        RuleError::ClosesAtNotInFuture => (GrpcCode::InvalidArgument, "invalid_argument"),
        RuleError::EmptyRoster => (GrpcCode::OutOfRange, "empty_roster"),
        RuleError::RoundExists(_) => (GrpcCode::AlreadyExists, "round_exists"),
        RuleError::GradingFinal(_) => (GrpcCode::FailedPrecondition, "grading_final"),
        RuleError::RoundClosed => (GrpcCode::FailedPrecondition, "round_closed"),
        RuleError::CodeUsed => (GrpcCode::FailedPrecondition, "code_used"),
        RuleError::MemberLoginRequired => (GrpcCode::PermissionDenied, "member_login_required"),
        RuleError::NotOnRoster => (GrpcCode::PermissionDenied, "not_on_roster"),
        RuleError::MassesCodeForRosterMember => {
            (GrpcCode::PermissionDenied, "masses_code_for_member")
        }
    }
}

fn is_unavailable(e: &sea_orm::DbErr) -> bool {
    matches!(
        e,
        sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_)
    )
}

fn invalid(v: Violations) -> Status {
    to_status(AppError::Invalid(v.into_vec()))
}

fn parse_id(v: &mut Violations, field: &str, text: &str) -> Option<Uuid> {
    if text.trim().is_empty() {
        v.add(field, "is required");
        return None;
    }
    match Uuid::parse_str(text) {
        Ok(id) => Some(id),
        Err(_) => {
            v.add(field, "must be a UUID");
            None
        }
    }
}

fn one_id(field: &str, text: &str) -> Result<Uuid, Status> {
    let mut v = Violations::new();
    parse_id(&mut v, field, text).ok_or_else(|| invalid(v))
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn kind_pb(k: EvaluatorKind) -> pb::EvaluatorKind {
    match k {
        EvaluatorKind::Masses => pb::EvaluatorKind::Masses,
        EvaluatorKind::Member => pb::EvaluatorKind::Member,
    }
}

fn kind_from_pb(n: i32) -> Result<EvaluatorKind, String> {
    match pb::EvaluatorKind::try_from(n) {
        Ok(pb::EvaluatorKind::Masses) => Ok(EvaluatorKind::Masses),
        Ok(pb::EvaluatorKind::Member) => Ok(EvaluatorKind::Member),
        _ => Err("must be one of: masses, member".into()),
    }
}

fn rating_pb(r: Rating) -> pb::Rating {
    match r {
        Rating::Excellent => pb::Rating::Excellent,
        Rating::Good => pb::Rating::Good,
        Rating::Fair => pb::Rating::Fair,
        Rating::Poor => pb::Rating::Poor,
    }
}

fn rating_from_pb(n: i32) -> Result<Rating, String> {
    match pb::Rating::try_from(n) {
        Ok(pb::Rating::Excellent) => Ok(Rating::Excellent),
        Ok(pb::Rating::Good) => Ok(Rating::Good),
        Ok(pb::Rating::Fair) => Ok(Rating::Fair),
        Ok(pb::Rating::Poor) => Ok(Rating::Poor),
        _ => Err("must be one of: excellent, good, fair, poor".into()),
    }
}

fn round_pb(v: RoundView) -> pb::Round {
    let r = v.round;
    pb::Round {
        id: r.id.to_string(),
        org_id: r.org_id.to_string(),
        org_path: r.org_path,
        quarter: r.quarter.to_string(),
        status: match r.status {
            RoundStatus::Open => pb::RoundStatus::Open,
            RoundStatus::Closed => pb::RoundStatus::Closed,
        }
        .into(),
        closes_at: r.closes_at.map(rfc3339).unwrap_or_default(),
        opened_at: rfc3339(r.opened_at),
        closed_at: r.closed_at.map(rfc3339).unwrap_or_default(),
        invited: v.invited,
        ballots: v.ballots,
        roster_size: i32::try_from(v.roster_size).unwrap_or(i32::MAX),
        min_ballots: r
            .settings
            .map_or(0, |s| i32::try_from(s.min_ballots).unwrap_or(i32::MAX)),
        results: v
            .results
            .into_iter()
            .map(|m| pb::MemberResult {
                member_id: m.result.member_id.to_string(),
                name: m.name,
                ballots: i32::try_from(m.result.ballots).unwrap_or(i32::MAX),
                score_total: m.result.score_total,
                score: m.result.score,
                poor_ballots: i32::try_from(m.result.poor_ballots).unwrap_or(i32::MAX),
                valid: m.result.valid,
            })
            .collect(),
        version: r.version,
    }
}

fn redemption_pb(r: Redemption) -> pb::RedeemInvitationResponse {
    pb::RedeemInvitationResponse {
        round_id: r.round_id.to_string(),
        org_id: r.org_id.to_string(),
        org_path: r.org_path,
        quarter: r.quarter.to_string(),
        evaluator_kind: kind_pb(r.kind).into(),
        ticket: r.ticket,
        closes_at: r.closes_at.map(rfc3339).unwrap_or_default(),
    }
}

fn ballot_pb(b: BallotView) -> pb::Ballot {
    pb::Ballot {
        round_id: b.round_id.to_string(),
        quarter: b.quarter.to_string(),
        members: b
            .members
            .into_iter()
            .map(|(id, name)| pb::BallotMember {
                member_id: id.to_string(),
                name,
            })
            .collect(),
        ratings: Rating::ALL.iter().map(|r| rating_pb(*r).into()).collect(),
        evaluator_kind: kind_pb(b.kind).into(),
    }
}

#[tonic::async_trait]
impl EvaluationsService for EvaluationsApi {
    async fn open_round(
        &self,
        request: Request<pb::OpenRoundRequest>,
    ) -> Result<Response<pb::Round>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let org_id = parse_id(&mut v, "org_id", &r.org_id);
        let quarter = v.check("quarter", Quarter::parse(&r.quarter));
        let closes_at = match r.closes_at.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
                Ok(at) => Some(Some(at.to_utc())),
                Err(_) => {
                    v.add("closes_at", "must be an RFC 3339 instant");
                    None
                }
            },
        };
        let (Some(org_id), Some(quarter), Some(closes_at)) = (org_id, quarter, closes_at) else {
            return Err(invalid(v));
        };
        let view = self
            .app
            .open_round(&actor, org_id, quarter, closes_at)
            .await
            .map_err(to_status)?;
        Ok(Response::new(round_pb(view)))
    }

    async fn get_round(
        &self,
        request: Request<pb::GetRoundRequest>,
    ) -> Result<Response<pb::Round>, Status> {
        let actor = self.caller(&request)?;
        let id = one_id("id", &request.get_ref().id)?;
        let view = self.app.get_round(&actor, id).await.map_err(to_status)?;
        Ok(Response::new(round_pb(view)))
    }

    async fn list_rounds(
        &self,
        request: Request<pb::ListRoundsRequest>,
    ) -> Result<Response<pb::ListRoundsResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let org_id = parse_id(&mut v, "org_id", &r.org_id);
        let size = match r.page_size {
            0 => Some(DEFAULT_PAGE),
            n if n < 0 || u64::try_from(n).unwrap_or(u64::MAX) > MAX_PAGE => {
                v.add("page_size", format!("must be from 0 to {MAX_PAGE}"));
                None
            }
            n => u64::try_from(n).ok(),
        };
        let after = if r.page_token.is_empty() {
            Some(None)
        } else {
            match Quarter::parse(&r.page_token) {
                Ok(q) => Some(Some(q)),
                Err(_) => {
                    v.add("page_token", "is not a page token of this list");
                    None
                }
            }
        };
        let (Some(org_id), Some(size), Some(after)) = (org_id, size, after) else {
            return Err(invalid(v));
        };
        let (views, next) = self
            .app
            .list_rounds(&actor, org_id, size, after)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListRoundsResponse {
            rounds: views.into_iter().map(round_pb).collect(),
            next_page_token: next.map(|q| q.to_string()).unwrap_or_default(),
        }))
    }

    async fn issue_invitations(
        &self,
        request: Request<pb::IssueInvitationsRequest>,
    ) -> Result<Response<pb::IssueInvitationsResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let round_id = parse_id(&mut v, "id", &r.round_id);
        let count = v.check("count", InvitationCount::parse(i64::from(r.count)));
        let kind = match kind_from_pb(r.evaluator_kind) {
            Ok(k) => Some(k),
            Err(m) => {
                v.add("evaluator_kind", m);
                None
            }
        };
        let (Some(round_id), Some(count), Some(kind)) = (round_id, count, kind) else {
            return Err(invalid(v));
        };
        let codes = self
            .app
            .issue_invitations(&actor, round_id, count, kind)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::IssueInvitationsResponse {
            round_id: round_id.to_string(),
            evaluator_kind: kind_pb(kind).into(),
            codes: codes.iter().map(Code::grouped).collect(),
        }))
    }

    async fn close_round(
        &self,
        request: Request<pb::CloseRoundRequest>,
    ) -> Result<Response<pb::Round>, Status> {
        let actor = self.caller(&request)?;
        let id = one_id("id", &request.get_ref().id)?;
        let view = self.app.close_round(&actor, id).await.map_err(to_status)?;
        Ok(Response::new(round_pb(view)))
    }

    async fn redeem_invitation(
        &self,
        request: Request<pb::RedeemInvitationRequest>,
    ) -> Result<Response<pb::RedeemInvitationResponse>, Status> {
        let actor = self.caller(&request)?;
        let mut v = Violations::new();
        let Some(code) = v.check("code", Code::parse(&request.get_ref().code)) else {
            return Err(invalid(v));
        };
        let redemption = self.app.redeem(&actor, &code).await.map_err(to_status)?;
        Ok(Response::new(redemption_pb(redemption)))
    }

    async fn get_ballot(
        &self,
        request: Request<pb::GetBallotRequest>,
    ) -> Result<Response<pb::Ballot>, Status> {
        let actor = self.caller(&request)?;
        let id = one_id("id", &request.get_ref().round_id)?;
        let ballot = self.app.ballot(&actor, id).await.map_err(to_status)?;
        Ok(Response::new(ballot_pb(ballot)))
    }

    async fn cast_ballot(
        &self,
        request: Request<pb::CastBallotRequest>,
    ) -> Result<Response<pb::CastBallotResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let round_id = parse_id(&mut v, "id", &r.round_id);
        if r.ratings.is_empty() {
            v.add("ratings", "rate at least one member");
        }
        if r.ratings.len() > MAX_RATINGS {
            v.add("ratings", format!("at most {MAX_RATINGS} ratings"));
        }
        let mut seen = HashSet::new();
        let mut ratings = Vec::with_capacity(r.ratings.len());
        for (i, entry) in r.ratings.iter().enumerate() {
            let member = parse_id(&mut v, &format!("ratings[{i}].member_id"), &entry.member_id);
            let rating = match rating_from_pb(entry.rating) {
                Ok(r) => Some(r),
                Err(m) => {
                    v.add(format!("ratings[{i}].rating"), m);
                    None
                }
            };
            if let Some(m) = member
                && !seen.insert(m)
            {
                v.add(
                    format!("ratings[{i}].member_id"),
                    "rated twice on one ballot",
                );
            }
            if let (Some(m), Some(r)) = (member, rating) {
                ratings.push((m, r));
            }
        }
        let Some(round_id) = round_id.filter(|_| v.is_empty()) else {
            return Err(invalid(v));
        };
        let rated = self
            .app
            .cast(&actor, round_id, &ratings)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CastBallotResponse {
            round_id: round_id.to_string(),
            rated: i32::try_from(rated).unwrap_or(i32::MAX),
        }))
    }
}
