//! The quarterly mass evaluation 群众评议 (evaluations service): rounds, invitation codes,
//! the evaluator's ballot, closing and results.
//!
//! Staff endpoints (open, list, invite, read, close) take an admin or secretary token; the
//! ballot endpoints take an **evaluator token** (from `POST /api/v1/auth/evaluator`) of the
//! round in the path, and nothing else does: an evaluator token is refused (403) everywhere
//! but here. The evaluations service checks scope and the round again (defense in depth).
//!
//! `POST /api/v1/evaluation-rounds/{id}:close` is an AIP custom method routed like
//! `members::member_action`. The invitations answer is JSON (`codes`, plus each code's link to
//! the evaluation page, `<JIFEN_PUBLIC_URL>/m/e#<code>`, and that link's QR code as SVG), or a
//! printable HTML sheet of slips for `Accept: text/html`.

use crate::auth::{Caller, Gate, StaffCaller};
use crate::extract::{ApiJson, ListQuery, PathId, parse_uuid};
use crate::problem::Problem;
use crate::routes::orgs::{PageParams, created};
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse as _, Response};
use chrono::{DateTime, Utc};
use jifen_platform::auth::RoleName;
use jifen_proto::evaluations::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// 群众 (`masses`) or a member of the branch (`member`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvaluatorKind {
    Masses,
    Member,
}

impl EvaluatorKind {
    fn to_proto(self) -> i32 {
        match self {
            Self::Masses => pb::EvaluatorKind::Masses as i32,
            Self::Member => pb::EvaluatorKind::Member as i32,
        }
    }

    pub fn from_proto(n: i32) -> Option<Self> {
        match pb::EvaluatorKind::try_from(n).ok()? {
            pb::EvaluatorKind::Masses => Some(Self::Masses),
            pb::EvaluatorKind::Member => Some(Self::Member),
            pb::EvaluatorKind::Unspecified => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Masses => "masses",
            Self::Member => "member",
        }
    }
}

/// 好 `excellent`, 较好 `good`, 一般 `fair`, 差 `poor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    Excellent,
    Good,
    Fair,
    Poor,
}

impl Rating {
    fn to_proto(self) -> i32 {
        match self {
            Self::Excellent => pb::Rating::Excellent as i32,
            Self::Good => pb::Rating::Good as i32,
            Self::Fair => pb::Rating::Fair as i32,
            Self::Poor => pb::Rating::Poor as i32,
        }
    }

    fn from_proto(n: i32) -> Option<Self> {
        match pb::Rating::try_from(n).ok()? {
            pb::Rating::Excellent => Some(Self::Excellent),
            pb::Rating::Good => Some(Self::Good),
            pb::Rating::Fair => Some(Self::Fair),
            pb::Rating::Poor => Some(Self::Poor),
            pb::Rating::Unspecified => None,
        }
    }
}

/// `POST /api/v1/orgs/{id}/evaluation-rounds`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRound {
    /// `YYYY-Qn`; a quarter that has begun (business calendar).
    pub quarter: String,
    /// When the round closes by itself (RFC 3339); in the future. Absent: closed by hand.
    #[serde(default)]
    pub closes_at: Option<DateTime<Utc>>,
}

/// One member's quarter result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberResult {
    pub member_id: Uuid,
    pub name: String,
    /// Mean score by the standard's rating scores, 0–100 with one decimal (half up); `null`
    /// when nobody rated the member.
    pub score: Option<f64>,
    /// Ballots that rated the member.
    pub ballots: i32,
    /// Share of those ballots rating the member `poor` (0–1, four decimals).
    pub poor_share: f64,
    pub poor_ballots: i32,
    /// At least the standard's `min_ballots` ballots.
    pub valid: bool,
}

/// An evaluation round (评议轮次).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Round {
    pub id: Uuid,
    pub org_id: Uuid,
    pub quarter: String,
    /// `open` or `closed`.
    pub status: String,
    pub opened_at: String,
    pub closes_at: Option<String>,
    pub closed_at: Option<String>,
    /// Codes issued.
    pub invited: i64,
    /// Ballots cast.
    pub ballots: i64,
    /// Active members of the branch when the round opened.
    pub roster_size: i32,
    /// The standard's `min_ballots` applied at closing (`null` while open).
    pub min_ballots: Option<i32>,
    /// Every roster member's result once closed; empty while open.
    pub results: Vec<MemberResult>,
    pub version: i64,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl From<pb::Round> for Round {
    fn from(r: pb::Round) -> Self {
        let closed = r.status == pb::RoundStatus::Closed as i32;
        Self {
            id: r.id.parse().unwrap_or_default(),
            org_id: r.org_id.parse().unwrap_or_default(),
            quarter: r.quarter,
            status: if closed { "closed" } else { "open" }.to_owned(),
            opened_at: r.opened_at,
            closes_at: non_empty(r.closes_at),
            closed_at: non_empty(r.closed_at),
            invited: r.invited,
            ballots: r.ballots,
            roster_size: r.roster_size,
            min_ballots: closed.then_some(r.min_ballots),
            results: r
                .results
                .into_iter()
                .map(|m| MemberResult {
                    member_id: m.member_id.parse().unwrap_or_default(),
                    name: m.name,
                    score: m.score.map(|s| f64::from(s) / 10.0),
                    ballots: m.ballots,
                    poor_share: if m.ballots == 0 {
                        0.0
                    } else {
                        (f64::from(m.poor_ballots) / f64::from(m.ballots) * 10_000.0).round()
                            / 10_000.0
                    },
                    poor_ballots: m.poor_ballots,
                    valid: m.valid,
                })
                .collect(),
            version: r.version,
        }
    }
}

/// A page of rounds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoundList {
    pub items: Vec<Round>,
    pub next_page_token: String,
}

/// `POST /api/v1/evaluation-rounds/{id}/invitations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueInvitations {
    /// 1–1000 codes.
    pub count: i64,
    pub evaluator_kind: EvaluatorKind,
}

/// One issued code with its link and QR code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invitation {
    pub code: String,
    /// The evaluation page with the code in the fragment: `<public url>/m/e#<code>`.
    pub url: String,
    /// The QR code of `url` as an SVG document (what the printed slip shows).
    pub qr_svg: String,
}

/// Issued codes: shown this once, stored only as a keyed hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedInvitations {
    pub round_id: Uuid,
    pub evaluator_kind: EvaluatorKind,
    pub codes: Vec<String>,
    /// The same codes, each with its QR code.
    pub invitations: Vec<Invitation>,
}

/// A member on the ballot.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BallotMember {
    pub member_id: Uuid,
    pub name: String,
}

/// What an evaluator rates.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ballot {
    pub round_id: Uuid,
    pub quarter: String,
    /// The roster (a member evaluator does not see themself).
    pub members: Vec<BallotMember>,
    pub ratings: Vec<Rating>,
    pub evaluator_kind: Option<EvaluatorKind>,
}

/// One rating on a ballot.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingEntry {
    pub member_id: Uuid,
    pub rating: Rating,
}

/// `POST /api/v1/evaluation-rounds/{id}/ballots`: any non-empty subset of the ballot's members.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CastBallot {
    pub ratings: Vec<RatingEntry>,
}

/// The ballot was counted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BallotAccepted {
    pub round_id: Uuid,
    /// Members rated.
    pub rated: i32,
}

/// A caller holding an evaluator token (any other token: 403).
#[derive(Debug, Clone)]
pub struct EvaluatorCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for EvaluatorCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.principal.has_role(RoleName::Evaluator) {
            return Err(Problem::forbidden(
                "this endpoint requires an evaluator token (POST /api/v1/auth/evaluator)",
            ));
        }
        Ok(Self(caller))
    }
}

impl EvaluatorCaller {
    /// 403 unless the token is good for round `id`.
    fn check_round(&self, id: Uuid) -> Result<(), Problem> {
        if self.0.principal.round_id == Some(id) {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "the evaluator token is for another round",
            ))
        }
    }
}

/// Opens the quarterly evaluation round of a branch. 409 `round_exists` when the branch has a
/// round of that quarter already; 409 `grading_final` once a grade of the quarter's year is final
/// (定档) in the branch, since the round's results could no longer count (checked first; a round
/// opened before stays usable: docs/decisions/0006-final-years-evaluations.md).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{id}/evaluation-rounds",
    tag = "evaluations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The branch")),
    request_body = OpenRound,
    responses(
        (status = 201, description = "Opened; the roster is the branch's active members now", body = Round),
        (status = 409, description = "`round_exists`: the quarter has a round; `grading_final`: a grade of the quarter's year is final in the branch", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
    ),
)]
pub async fn open_round(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(org_id): PathId,
    ApiJson(body): ApiJson<OpenRound>,
) -> Result<Response, Problem> {
    let request = pb::OpenRoundRequest {
        org_id: org_id.to_string(),
        quarter: body.quarter,
        closes_at: body.closes_at.map(|t| t.to_rfc3339()),
    };
    let round = state
        .evaluations()
        .with_token(&caller.token)?
        .open_round(request)
        .await?
        .into_inner();
    Ok(created(
        format!("/api/v1/evaluation-rounds/{}", round.id),
        Round::from(round),
    ))
}

/// The rounds of a branch, newest quarter first.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}/evaluation-rounds",
    tag = "evaluations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The branch"), PageParams),
    responses((status = 200, description = "A page of rounds", body = RoundList)),
)]
pub async fn list_rounds(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(org_id): PathId,
    query: ListQuery,
) -> Result<Json<RoundList>, Problem> {
    let request = pb::ListRoundsRequest {
        org_id: org_id.to_string(),
        page_size: query.page_size,
        page_token: query.page_token,
    };
    let page = state
        .evaluations()
        .with_token(&caller.token)?
        .list_rounds(request)
        .await?
        .into_inner();
    Ok(Json(RoundList {
        items: page.rounds.into_iter().map(Round::from).collect(),
        next_page_token: page.next_page_token,
    }))
}

/// A round: counts, and every member's result once closed.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation-rounds/{id}",
    tag = "evaluations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Round id")),
    responses((status = 200, description = "The round", body = Round)),
)]
pub async fn get_round(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(id): PathId,
) -> Result<Json<Round>, Problem> {
    let round = state
        .evaluations()
        .with_token(&caller.token)?
        .get_round(pb::GetRoundRequest { id: id.to_string() })
        .await?
        .into_inner();
    Ok(Json(round.into()))
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            let html = accept.find("text/html");
            let json = accept.find("application/json");
            match (html, json) {
                (Some(h), Some(j)) => h < j,
                (Some(_), None) => true,
                _ => false,
            }
        })
}

/// Issues a batch of one-time invitation codes (shown once; stored hashed). With
/// `Accept: text/html` the answer is a printable sheet of slips, each with the QR code of
/// `<JIFEN_PUBLIC_URL>/m/e#<code>`, the code in large type and the page's short address.
#[utoipa::path(
    post,
    path = "/api/v1/evaluation-rounds/{id}/invitations",
    tag = "evaluations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Round id")),
    request_body = IssueInvitations,
    responses((status = 200, description = "The codes, shown this once",
        content((IssuedInvitations = "application/json"), (String = "text/html")))),
)]
pub async fn issue_invitations(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(id): PathId,
    headers: HeaderMap,
    ApiJson(body): ApiJson<IssueInvitations>,
) -> Result<Response, Problem> {
    let request = pb::IssueInvitationsRequest {
        round_id: id.to_string(),
        // Out of i32 range: 0, which the service refuses naming `count`.
        count: i32::try_from(body.count).unwrap_or(0),
        evaluator_kind: body.evaluator_kind.to_proto(),
    };
    let mut client = state.evaluations().with_token(&caller.token)?;
    let issued = client.issue_invitations(request).await?.into_inner();
    let mut response = if wants_html(&headers) {
        let round = client
            .get_round(pb::GetRoundRequest { id: id.to_string() })
            .await?
            .into_inner();
        Html(crate::qr::sheet(
            state.public_url(),
            &round.quarter,
            body.evaluator_kind.as_str(),
            &issued.codes,
        ))
        .into_response()
    } else {
        let invitations = issued
            .codes
            .iter()
            .map(|code| {
                let url = state.public_url().evaluation_link(code);
                Invitation {
                    code: code.clone(),
                    qr_svg: crate::qr::svg(&url),
                    url,
                }
            })
            .collect();
        Json(IssuedInvitations {
            round_id: id,
            evaluator_kind: body.evaluator_kind,
            codes: issued.codes,
            invitations,
        })
        .into_response()
    };
    // Codes are credentials: no cache may keep them.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The ballot of the evaluator's round.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation-rounds/{id}/ballot",
    tag = "evaluations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Round id")),
    responses((status = 200, description = "The ballot", body = Ballot)),
)]
pub async fn get_ballot(
    State(state): State<AppState>,
    evaluator: EvaluatorCaller,
    PathId(id): PathId,
) -> Result<Json<Ballot>, Problem> {
    evaluator.check_round(id)?;
    let ballot = state
        .evaluations()
        .with_token(&evaluator.0.token)?
        .get_ballot(pb::GetBallotRequest {
            round_id: id.to_string(),
        })
        .await?
        .into_inner();
    Ok(Json(Ballot {
        round_id: id,
        quarter: ballot.quarter,
        members: ballot
            .members
            .into_iter()
            .map(|m| BallotMember {
                member_id: m.member_id.parse().unwrap_or_default(),
                name: m.name,
            })
            .collect(),
        ratings: ballot
            .ratings
            .into_iter()
            .filter_map(Rating::from_proto)
            .collect(),
        evaluator_kind: EvaluatorKind::from_proto(ballot.evaluator_kind),
    }))
}

/// Casts the evaluator's one ballot (a second one, even concurrent, is 409 `code_used`).
#[utoipa::path(
    post,
    path = "/api/v1/evaluation-rounds/{id}/ballots",
    tag = "evaluations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Round id")),
    request_body = CastBallot,
    responses((status = 201, description = "Counted", body = BallotAccepted)),
)]
pub async fn cast_ballot(
    State(state): State<AppState>,
    evaluator: EvaluatorCaller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<CastBallot>,
) -> Result<Response, Problem> {
    evaluator.check_round(id)?;
    let request = pb::CastBallotRequest {
        round_id: id.to_string(),
        ratings: body
            .ratings
            .into_iter()
            .map(|r| pb::RatingEntry {
                member_id: r.member_id.to_string(),
                rating: r.rating.to_proto(),
            })
            .collect(),
    };
    let accepted = state
        .evaluations()
        .with_token(&evaluator.0.token)?
        .cast_ballot(request)
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(BallotAccepted {
            round_id: id,
            rated: accepted.rated,
        }),
    )
        .into_response())
}

/// `POST /api/v1/evaluation-rounds/{id}:<verb>`: dispatches AIP custom methods.
pub async fn round_action(
    State(state): State<AppState>,
    params: RawPathParams,
    caller: Caller,
    request: Request,
) -> Result<Response, Problem> {
    let segment = params
        .iter()
        .next()
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    let Some((id, verb)) = segment.split_once(':') else {
        return Err(Problem::from_status(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST is not allowed on a round; use a custom method such as :close",
        )
        .with_header(header::ALLOW, HeaderValue::from_static("GET")));
    };
    match verb {
        "close" => {
            caller.require(Gate::Staff)?;
            let id = parse_uuid("id", id)?;
            // The body, if any, is ignored; it need not be JSON.
            drop(request);
            close_round(state, caller, id)
                .await
                .map(|r| Json(r).into_response())
        }
        other => Err(Problem::unknown_method(Some(other), "a round", "")),
    }
}

/// Closes the round: computes every member's result (immutable from then on).
#[utoipa::path(
    post,
    path = "/api/v1/evaluation-rounds/{id}:close",
    tag = "evaluations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Round id")),
    responses((status = 200, description = "The closed round with its results", body = Round)),
)]
pub async fn close_round(state: AppState, caller: Caller, id: Uuid) -> Result<Round, Problem> {
    let round = state
        .evaluations()
        .with_token(&caller.token)?
        .close_round(pb::CloseRoundRequest { id: id.to_string() })
        .await?
        .into_inner();
    Ok(round.into())
}
