//! The points ledger 积分台账 and the yearly grading 年度组织定级 (grading service): a member's
//! ledger, computing, reading and confirming a grading, appeals 申诉 and their decision, and
//! finalization.
//!
//! Gates at the gateway are coarse: any person (admin, secretary, member) may read a ledger or a
//! grading and file an appeal; computing, confirming, deciding and finalizing take an admin or
//! secretary token; an evaluator token is refused (403) everywhere here. The grading service
//! decides scope on the forwarded token — a member's own ledger and appeal, the branch's own
//! secretary for `:confirm`, an admin strictly above the branch (the upper committee) for
//! `:decide` and `:finalize`; what lies outside a staff caller's subtree is 404.
//!
//! Points travel as deci-points and render as [`Points`] (`85.3`). Grades and decisions are typed
//! enums, so an unknown value is a 400 naming its field (`overrides[0].grade`). `{year}` is a
//! year from 2000 to 2100 (else 400 naming `year`).
//!
//! `:compute`, `:confirm` and `:finalize` on `/api/v1/orgs/{id}/gradings/{year}` and `:decide` on
//! `/api/v1/appeals/{id}` are AIP custom methods, dispatched by [`grading_action`] and
//! [`appeal_action`] like `members::member_action`.

use crate::auth::{Caller, Gate, PersonCaller};
use crate::convert::declarations::Points;
use crate::extract::{ApiJson, PathId, PathParams, bytes_rejection, parse_uuid};
use crate::problem::Problem;
use crate::routes::standards::query_pairs;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest as _, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use jifen_proto::grading::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The years a grading or a ledger may concern (the grading service's own range).
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// A year from its text, or 400 naming `field`.
fn parse_year(field: &str, text: &str) -> Result<i32, Problem> {
    text.parse::<i32>()
        .ok()
        .filter(|y| YEARS.contains(y))
        .ok_or_else(|| {
            Problem::invalid_field(
                field,
                format!("must be a year from {} to {}", YEARS.start(), YEARS.end()),
            )
        })
}

/// The required `?year=` query parameter (the last one wins), or 400 naming `year`.
pub(crate) fn year_query(uri: &Uri) -> Result<i32, Problem> {
    let year = query_pairs(uri)?
        .into_iter()
        .rev()
        .find(|(k, _)| k == "year")
        .map(|(_, v)| v)
        .ok_or_else(|| Problem::invalid_field("year", "is required (e.g. ?year=2026)"))?;
    parse_year("year", &year)
}

/// An empty string from the service as `None`.
fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A UUID from the service (always well-formed; the nil UUID otherwise).
fn uuid(text: &str) -> Uuid {
    text.parse().unwrap_or_default()
}

/// 优秀 `excellent`, 合格 `qualified`, 基本合格 `basically_qualified`, 不合格 `unqualified`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Excellent,
    Qualified,
    BasicallyQualified,
    Unqualified,
}

impl Grade {
    /// The code the grading service speaks (the same as the JSON value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Excellent => "excellent",
            Self::Qualified => "qualified",
            Self::BasicallyQualified => "basically_qualified",
            Self::Unqualified => "unqualified",
        }
    }

    /// A grade from the service; `None` for a code the gateway does not know.
    pub fn parse(code: &str) -> Option<Self> {
        [
            Self::Excellent,
            Self::Qualified,
            Self::BasicallyQualified,
            Self::Unqualified,
        ]
        .into_iter()
        .find(|g| g.as_str() == code)
    }
}

/// Where a ledger entry comes from: a member's approved declaration or a branch record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntrySource {
    Declaration,
    Branch,
}

impl EntrySource {
    fn from_proto(n: i32) -> Option<Self> {
        match pb::EntrySource::try_from(n).ok()? {
            pb::EntrySource::Declaration => Some(Self::Declaration),
            pb::EntrySource::Branch => Some(Self::Branch),
            pb::EntrySource::Unspecified => None,
        }
    }
}

/// `proposed` (recomputable) → `confirmed` by the branch (公示, appeals open) → `final`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GradingStatus {
    Proposed,
    Confirmed,
    Final,
}

impl GradingStatus {
    fn from_proto(n: i32) -> Option<Self> {
        match pb::GradingStatus::try_from(n).ok()? {
            pb::GradingStatus::Proposed => Some(Self::Proposed),
            pb::GradingStatus::Confirmed => Some(Self::Confirmed),
            pb::GradingStatus::Final => Some(Self::Final),
            pb::GradingStatus::Unspecified => None,
        }
    }
}

/// `open` until the upper committee `upheld` the grade or `changed` it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppealStatus {
    Open,
    Upheld,
    Changed,
}

impl AppealStatus {
    fn from_proto(n: i32) -> Option<Self> {
        match pb::AppealStatus::try_from(n).ok()? {
            pb::AppealStatus::Open => Some(Self::Open),
            pb::AppealStatus::Upheld => Some(Self::Upheld),
            pb::AppealStatus::Changed => Some(Self::Changed),
            pb::AppealStatus::Unspecified => None,
        }
    }
}

/// The upper committee's decision on an appeal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppealDecision {
    /// Keep the grade.
    Uphold,
    /// Set `grade`.
    Change,
}

impl AppealDecision {
    fn to_proto(self) -> i32 {
        match self {
            Self::Uphold => pb::AppealDecision::Uphold as i32,
            Self::Change => pb::AppealDecision::Change as i32,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The ledger

/// One entry of the ledger: an approved declaration line or a standing branch record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerEntry {
    /// `YYYY-MM`.
    pub month: String,
    pub source: Option<EntrySource>,
    /// The declaration id or the branch record id.
    #[serde(rename = "ref")]
    pub reference: String,
    pub item_code: String,
    /// Points of the entry before the caps (the totals apply them).
    #[schema(value_type = f64)]
    pub points: Points,
    pub note: String,
}

/// One quarter's mass evaluation result of the member.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerQuarter {
    /// `YYYY-Qn`.
    pub quarter: String,
    /// Mean score 0–100 with one decimal; `null` when nobody rated the member.
    #[schema(value_type = Option<f64>)]
    pub score: Option<Points>,
    pub ballots: i32,
    /// At least the standard's `min_ballots` ballots: the quarter counts.
    pub valid: bool,
}

/// A member's points ledger 积分台账 of one year; totals with every cap applied (RULES.md §5).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ledger {
    pub member_id: Uuid,
    pub year: i32,
    pub entries: Vec<LedgerEntry>,
    pub quarters: Vec<LedgerQuarter>,
    #[schema(value_type = f64)]
    pub base_points: Points,
    #[schema(value_type = f64)]
    pub bonus_points: Points,
    /// Zero or negative.
    #[schema(value_type = f64)]
    pub deduction_points: Points,
    #[schema(value_type = f64)]
    pub evaluation_points: Points,
    #[schema(value_type = f64)]
    pub total: Points,
}

impl From<pb::Ledger> for Ledger {
    fn from(l: pb::Ledger) -> Self {
        Self {
            member_id: uuid(&l.member_id),
            year: l.year,
            entries: l
                .entries
                .into_iter()
                .map(|e| LedgerEntry {
                    month: e.month,
                    source: EntrySource::from_proto(e.source),
                    reference: e.r#ref,
                    item_code: e.item_code,
                    points: Points(e.points),
                    note: e.note,
                })
                .collect(),
            quarters: l
                .quarters
                .into_iter()
                .map(|q| LedgerQuarter {
                    quarter: q.quarter,
                    score: q.score.map(Points),
                    ballots: q.ballots,
                    valid: q.valid,
                })
                .collect(),
            base_points: Points(l.base_points),
            bonus_points: Points(l.bonus_points),
            deduction_points: Points(l.deduction_points),
            evaluation_points: Points(l.evaluation_points),
            total: Points(l.total),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Gradings

/// One member's grade in a grading.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberGrade {
    pub member_id: Uuid,
    /// The member's branch (a grading of a committee spans several).
    pub org_id: Uuid,
    #[schema(value_type = f64)]
    pub total: Points,
    /// Base + bonus + deductions.
    #[schema(value_type = f64)]
    pub declared_points: Points,
    #[schema(value_type = f64)]
    pub evaluation_points: Points,
    /// What the rules propose.
    pub proposed_grade: Option<Grade>,
    /// Once the branch has confirmed (with any override) or an appeal changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
    /// Reason codes of RULES.md §5 (`excellent_quota`, …).
    pub reasons: Vec<String>,
    /// Why the branch overrode the proposal, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
}

/// The grading of a branch, or of every branch under an organization.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Grading {
    pub org_id: Uuid,
    pub year: i32,
    /// The least advanced status among the branches.
    pub status: Option<GradingStatus>,
    pub members: Vec<MemberGrade>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<String>,
    /// When the publication (公示) ends and the upper committee may finalize.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finalizable_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finalized_at: Option<String>,
}

impl From<pb::Grading> for Grading {
    fn from(g: pb::Grading) -> Self {
        Self {
            org_id: uuid(&g.org_id),
            year: g.year,
            status: GradingStatus::from_proto(g.status),
            members: g
                .members
                .into_iter()
                .map(|m| MemberGrade {
                    member_id: uuid(&m.member_id),
                    org_id: uuid(&m.org_id),
                    total: Points(m.total),
                    declared_points: Points(m.declared_points),
                    evaluation_points: Points(m.evaluation_points),
                    proposed_grade: Grade::parse(&m.proposed_grade),
                    grade: m.grade.as_deref().and_then(Grade::parse),
                    reasons: m.reasons,
                    override_reason: non_empty(m.override_reason),
                })
                .collect(),
            computed_at: non_empty(g.computed_at),
            confirmed_at: non_empty(g.confirmed_at),
            finalizable_at: non_empty(g.finalizable_at),
            finalized_at: non_empty(g.finalized_at),
        }
    }
}

/// A one-step change of a proposed grade, with the branch's reason.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GradeOverride {
    pub member_id: Uuid,
    pub grade: Grade,
    /// 1–2000 characters.
    pub reason: String,
}

/// `POST /api/v1/orgs/{id}/gradings/{year}:confirm` (an empty body confirms without overrides).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmGrading {
    /// At most one per member; the excellent quota must still hold.
    #[serde(default)]
    pub overrides: Vec<GradeOverride>,
}

// ---------------------------------------------------------------------------------------------
// Appeals

/// A member's appeal 申诉 against their confirmed grade.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Appeal {
    pub id: Uuid,
    pub member_id: Uuid,
    /// The member's branch.
    pub org_id: Uuid,
    pub year: i32,
    pub status: Option<AppealStatus>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    /// The new grade, when the appeal changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
    /// RFC 3339.
    pub filed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
}

impl From<pb::Appeal> for Appeal {
    fn from(a: pb::Appeal) -> Self {
        Self {
            id: uuid(&a.id),
            member_id: uuid(&a.member_id),
            org_id: uuid(&a.org_id),
            year: a.year,
            status: AppealStatus::from_proto(a.status),
            reason: a.reason,
            decision_reason: non_empty(a.decision_reason),
            grade: a.grade.as_deref().and_then(Grade::parse),
            filed_at: a.filed_at,
            decided_at: non_empty(a.decided_at),
        }
    }
}

/// `POST /api/v1/members/{id}/gradings/{year}/appeals`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileAppeal {
    /// 1–2000 characters.
    pub reason: String,
}

/// `POST /api/v1/appeals/{id}:decide`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideAppeal {
    pub decision: AppealDecision,
    /// The new grade: required with `change`, refused with `uphold`.
    #[serde(default)]
    pub grade: Option<Grade>,
    /// 1–2000 characters.
    pub reason: String,
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Query parameters of the ledger (documentation only).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct YearQuery {
    /// The year, e.g. 2026.
    year: i32,
}

/// A member's points ledger of a year: every entry, every quarter, and the capped totals. The
/// member themself, or staff over the member's organization.
#[utoipa::path(
    get,
    path = "/api/v1/members/{id}/ledger",
    tag = "grading",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id"), YearQuery),
    responses((status = 200, description = "The ledger", body = Ledger)),
)]
pub async fn get_ledger(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    PathId(member_id): PathId,
    uri: Uri,
) -> Result<Json<Ledger>, Problem> {
    let year = year_query(&uri)?;
    let ledger = state
        .grading_as(&caller.token)?
        .get_ledger(pb::GetLedgerRequest {
            member_id: member_id.to_string(),
            year,
        })
        .await?
        .into_inner();
    Ok(Json(ledger.into()))
}

/// A grading: staff over the organization; a member for their own branch once it is confirmed
/// (公示).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}/gradings/{year}",
    tag = "grading",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "A branch, or an organization above branches"),
        ("year" = i32, Path, description = "Year, e.g. 2026"),
    ),
    responses((status = 200, description = "The grading", body = Grading)),
)]
pub async fn get_grading(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    params: PathParams,
) -> Result<Json<Grading>, Problem> {
    let org_id = params.uuid("id")?;
    let year = parse_year("year", params.get("year")?)?;
    let grading = state
        .grading_as(&caller.token)?
        .get_grading(pb::GetGradingRequest {
            org_id: org_id.to_string(),
            year,
        })
        .await?
        .into_inner();
    Ok(Json(grading.into()))
}

/// The body of a custom method that takes an optional JSON body: no body at all is `T::default()`.
async fn optional_json<T>(request: Request, state: &AppState) -> Result<T, Problem>
where
    T: serde::de::DeserializeOwned + Default,
{
    if request.headers().contains_key(header::CONTENT_TYPE) {
        let ApiJson(body) = ApiJson::<T>::from_request(request, state).await?;
        return Ok(body);
    }
    let limit = state.body_limit();
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|r| bytes_rejection(r, limit))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        Err(Problem::unsupported_media_type("application/json"))
    }
}

/// `POST /api/v1/orgs/{id}/gradings/{year}:<verb>`: dispatches `:compute`, `:confirm` and
/// `:finalize`.
pub async fn grading_action(
    State(state): State<AppState>,
    params: PathParams,
    caller: Caller,
    request: Request,
) -> Result<Response, Problem> {
    let (year, verb) = params.custom_method();
    let Some(verb) = verb else {
        return Err(Problem::from_status(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST is not allowed on a grading; use a custom method such as :compute",
        )
        .with_header(header::ALLOW, HeaderValue::from_static("GET")));
    };
    let act = |caller: &Caller| -> Result<(Uuid, i32), Problem> {
        caller.require(Gate::Staff)?;
        Ok((params.uuid("id")?, parse_year("year", &year)?))
    };
    let grading = match verb.as_str() {
        "compute" => {
            let (id, year) = act(&caller)?;
            // The body, if any, is ignored; it need not be JSON.
            drop(request);
            compute_grading(state, caller, id, year).await?
        }
        "confirm" => {
            let (id, year) = act(&caller)?;
            let body = optional_json::<ConfirmGrading>(request, &state).await?;
            confirm_grading(state, caller, id, year, body).await?
        }
        "finalize" => {
            let (id, year) = act(&caller)?;
            drop(request);
            finalize_grading(state, caller, id, year).await?
        }
        other => return Err(Problem::unknown_method(Some(other), "a grading", "")),
    };
    Ok(Json(grading).into_response())
}

/// Proposals for every active member of the organization's subtree (recomputed until the
/// branch confirms; 409 `grading_confirmed` after).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{id}/gradings/{year}:compute",
    tag = "grading",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "A branch, or an organization above branches"),
        ("year" = i32, Path, description = "Year, e.g. 2026; one that has begun"),
    ),
    responses((status = 200, description = "The proposed grading", body = Grading)),
)]
pub async fn compute_grading(
    state: AppState,
    caller: Caller,
    id: Uuid,
    year: i32,
) -> Result<Grading, Problem> {
    let grading = state
        .grading_as(&caller.token)?
        .compute_grading(pb::ComputeGradingRequest {
            org_id: id.to_string(),
            year,
        })
        .await?
        .into_inner();
    Ok(grading.into())
}

/// The branch's own secretary confirms the grading (支委会/党员大会), with one-step overrides
/// and reasons; the publication (公示) of `publication_days` starts. 422 `override_too_far`,
/// `quota_exceeded`, `not_a_branch`; 409 `grading_not_computed`, `grading_confirmed`.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{id}/gradings/{year}:confirm",
    tag = "grading",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The branch"),
        ("year" = i32, Path, description = "Year, e.g. 2026"),
    ),
    request_body = ConfirmGrading,
    responses((status = 200, description = "The confirmed grading", body = Grading)),
)]
pub async fn confirm_grading(
    state: AppState,
    caller: Caller,
    id: Uuid,
    year: i32,
    body: ConfirmGrading,
) -> Result<Grading, Problem> {
    let request = pb::ConfirmGradingRequest {
        org_id: id.to_string(),
        year,
        overrides: body
            .overrides
            .into_iter()
            .map(|o| pb::GradeOverride {
                member_id: o.member_id.to_string(),
                grade: o.grade.as_str().to_owned(),
                reason: o.reason,
            })
            .collect(),
    };
    let grading = state
        .grading_as(&caller.token)?
        .confirm_grading(request)
        .await?
        .into_inner();
    Ok(grading.into())
}

/// The upper committee (an admin strictly above the branch) makes the grading final — after the
/// publication and with no appeal open (409 `publication_not_over`, `appeals_open`,
/// `grading_not_confirmed`, `grading_final`).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{id}/gradings/{year}:finalize",
    tag = "grading",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "A branch, or an organization above branches"),
        ("year" = i32, Path, description = "Year, e.g. 2026"),
    ),
    responses((status = 200, description = "The final grading", body = Grading)),
)]
pub async fn finalize_grading(
    state: AppState,
    caller: Caller,
    id: Uuid,
    year: i32,
) -> Result<Grading, Problem> {
    let grading = state
        .grading_as(&caller.token)?
        .finalize_grading(pb::FinalizeGradingRequest {
            org_id: id.to_string(),
            year,
        })
        .await?
        .into_inner();
    Ok(grading.into())
}

/// The member appeals their own confirmed grade (409 `grading_not_confirmed` before the branch
/// confirms or once final, `appeal_open` while one is open).
#[utoipa::path(
    post,
    path = "/api/v1/members/{id}/gradings/{year}/appeals",
    tag = "grading",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The member (the caller)"),
        ("year" = i32, Path, description = "Year, e.g. 2026"),
    ),
    request_body = FileAppeal,
    responses((status = 201, description = "Filed", body = Appeal)),
)]
pub async fn file_appeal(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    params: PathParams,
    ApiJson(body): ApiJson<FileAppeal>,
) -> Result<Response, Problem> {
    let member_id = params.uuid("id")?;
    let year = parse_year("year", params.get("year")?)?;
    let appeal = state
        .grading_as(&caller.token)?
        .file_appeal(pb::FileAppealRequest {
            member_id: member_id.to_string(),
            year,
            reason: body.reason,
        })
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(Appeal::from(appeal))).into_response())
}

/// `POST /api/v1/appeals/{id}:<verb>`: dispatches `:decide`.
pub async fn appeal_action(
    State(state): State<AppState>,
    params: PathParams,
    caller: Caller,
    request: Request,
) -> Result<Response, Problem> {
    let (id, verb) = params.custom_method();
    match verb.as_deref() {
        Some("decide") => {
            caller.require(Gate::Staff)?;
            let id = parse_uuid("id", &id)?;
            let ApiJson(body) = ApiJson::<DecideAppeal>::from_request(request, &state).await?;
            decide_appeal(state, caller, id, body)
                .await
                .map(|a| Json(a).into_response())
        }
        verb => Err(Problem::unknown_method(verb, "an appeal", ":decide")),
    }
}

/// The upper committee (an admin strictly above the member's branch) upholds the grade or
/// changes it (409 `appeal_decided` once decided).
#[utoipa::path(
    post,
    path = "/api/v1/appeals/{id}:decide",
    tag = "grading",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Appeal id")),
    request_body = DecideAppeal,
    responses((status = 200, description = "The decided appeal", body = Appeal)),
)]
pub async fn decide_appeal(
    state: AppState,
    caller: Caller,
    id: Uuid,
    body: DecideAppeal,
) -> Result<Appeal, Problem> {
    match (body.decision, body.grade) {
        (AppealDecision::Change, None) => {
            return Err(Problem::invalid_field(
                "grade",
                "a change needs the new grade",
            ));
        }
        (AppealDecision::Uphold, Some(_)) => {
            return Err(Problem::invalid_field(
                "grade",
                "only a change sets a grade; an upheld appeal keeps it",
            ));
        }
        _ => {}
    }
    let request = pb::DecideAppealRequest {
        appeal_id: id.to_string(),
        decision: body.decision.to_proto(),
        grade: body.grade.map(|g| g.as_str().to_owned()),
        reason: body.reason,
    };
    let appeal = state
        .grading_as(&caller.token)?
        .decide_appeal(request)
        .await?
        .into_inner();
    Ok(appeal.into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::extract::parse_json;
    use serde_json::json;

    #[test]
    fn grades_speak_the_services_codes() {
        for g in [
            Grade::Excellent,
            Grade::Qualified,
            Grade::BasicallyQualified,
            Grade::Unqualified,
        ] {
            assert_eq!(serde_json::to_value(g).unwrap(), json!(g.as_str()));
            assert_eq!(Grade::parse(g.as_str()), Some(g));
        }
        assert_eq!(Grade::parse("good"), None);
    }

    #[test]
    fn years_are_bounded() {
        assert_eq!(parse_year("year", "2026").unwrap(), 2026);
        for bad in ["1999", "2101", "20x6", "", "2026:compute"] {
            let p = parse_year("year", bad).unwrap_err();
            assert_eq!(p.errors[0].field, "year", "{bad}");
        }
    }

    #[test]
    fn an_unknown_override_grade_names_its_field() {
        let p = parse_json::<ConfirmGrading>(
            br#"{"overrides":[{"member_id":"0190a0f0-0000-7000-8000-000000000000","grade":"good","reason":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(p.errors[0].field, "overrides[0].grade");
        let p = parse_json::<DecideAppeal>(br#"{"decision":"maybe","reason":"x"}"#).unwrap_err();
        assert_eq!(p.errors[0].field, "decision");
        assert!(
            parse_json::<ConfirmGrading>(b"{}")
                .unwrap()
                .overrides
                .is_empty()
        );
    }

    #[test]
    fn ledgers_render_points_as_decimals() {
        let ledger = Ledger::from(pb::Ledger {
            member_id: Uuid::nil().to_string(),
            year: 2026,
            entries: vec![pb::LedgerEntry {
                month: "2026-03".into(),
                source: pb::EntrySource::Branch as i32,
                r#ref: "r".into(),
                item_code: "P01".into(),
                points: 5,
                note: String::new(),
            }],
            quarters: vec![pb::LedgerQuarter {
                quarter: "2026-Q1".into(),
                score: Some(853),
                ballots: 6,
                valid: true,
            }],
            base_points: 853,
            bonus_points: 0,
            deduction_points: -15,
            evaluation_points: 171,
            total: 1009,
        });
        let json = serde_json::to_value(&ledger).unwrap();
        assert_eq!(json["entries"][0]["ref"], "r");
        assert_eq!(json["entries"][0]["source"], "branch");
        assert_eq!(json["entries"][0]["points"], json!(0.5));
        assert_eq!(json["quarters"][0]["score"], json!(85.3));
        assert_eq!(json["base_points"], json!(85.3));
        assert_eq!(json["bonus_points"], json!(0));
        assert_eq!(json["deduction_points"], json!(-1.5));
        assert_eq!(json["total"], json!(100.9));
    }

    #[test]
    fn optional_fields_are_left_out() {
        let grading = Grading::from(pb::Grading {
            org_id: Uuid::nil().to_string(),
            year: 2026,
            status: pb::GradingStatus::Proposed as i32,
            members: vec![pb::MemberGrade {
                member_id: Uuid::nil().to_string(),
                proposed_grade: "basically_qualified".into(),
                reasons: vec!["band".into()],
                ..Default::default()
            }],
            computed_at: "2026-03-10T02:00:00.000Z".into(),
            ..Default::default()
        });
        let json = serde_json::to_value(&grading).unwrap();
        assert_eq!(json["status"], "proposed");
        assert!(json.get("confirmed_at").is_none());
        let member = &json["members"][0];
        assert_eq!(member["proposed_grade"], "basically_qualified");
        assert!(member.get("grade").is_none());
        assert!(member.get("override_reason").is_none());
        let appeal = Appeal::from(pb::Appeal {
            id: Uuid::nil().to_string(),
            status: pb::AppealStatus::Open as i32,
            ..Default::default()
        });
        let json = serde_json::to_value(&appeal).unwrap();
        assert_eq!(json["status"], "open");
        assert!(json.get("grade").is_none() && json.get("decision_reason").is_none());
    }
}
