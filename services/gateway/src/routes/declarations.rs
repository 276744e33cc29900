//! Monthly declarations (月度申报): a member's month, its draft, submission, review by the
//! branch (支部审核), batch approval, the organization's listing and the history of transitions.
//!
//! `POST /api/v1/declarations/{id}:submit` and `:review` are AIP custom methods dispatched by
//! [`declaration_action`] (see `members::member_action` for why). Gates here are coarse: any
//! person may read, save and submit (the service lets only the member themself change their
//! declaration), staff may review and list (the service checks the organization scope, and that
//! nobody reviews their own declaration).

use crate::auth::{Caller, Gate, PersonCaller, StaffCaller};
use crate::convert::declarations::{
    BatchApprove, BatchApproveResult, Declaration, DeclarationHistory, DeclarationList,
    DeclarationStatus, ReviewDeclaration, SaveDeclaration,
};
use crate::extract::{ApiJson, ListQuery, PathId, PathParams, parse_uuid};
use crate::problem::Problem;
use crate::routes::orgs::PageParams;
use crate::routes::standards::query_pairs;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest as _, Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse as _, Response};
use jifen_proto::declarations::v1 as pb;
use uuid::Uuid;

/// A member's declaration of a month; an empty draft (`"id": null`) when none was saved yet.
/// Branch records of the month appear as lines with `source: "branch"`.
#[utoipa::path(
    get,
    path = "/api/v1/members/{id}/declarations/{month}",
    tag = "declarations",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Member id"),
        ("month" = String, Path, description = "Month, YYYY-MM"),
    ),
    responses((status = 200, description = "The declaration", body = Declaration)),
)]
pub async fn get_declaration(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    params: PathParams,
) -> Result<Json<Declaration>, Problem> {
    let request = pb::GetDeclarationRequest {
        member_id: params.uuid("id")?.to_string(),
        month: params.get("month")?.to_owned(),
    };
    let declaration = state
        .declarations_as(&caller.token)?
        .get_declaration(request)
        .await?
        .into_inner();
    Ok(Json(declaration.into()))
}

/// Replaces the lines of the member's draft (creating it; a returned declaration becomes a draft
/// again). Only the member themself, while the month is open (else 409 `period_closed`).
#[utoipa::path(
    put,
    path = "/api/v1/members/{id}/declarations/{month}",
    tag = "declarations",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Member id"),
        ("month" = String, Path, description = "Month, YYYY-MM"),
    ),
    request_body = SaveDeclaration,
    responses((status = 200, description = "The draft", body = Declaration)),
)]
pub async fn save_declaration(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    params: PathParams,
    ApiJson(body): ApiJson<SaveDeclaration>,
) -> Result<Json<Declaration>, Problem> {
    let request = body.into_proto(params.uuid("id")?, params.get("month")?.to_owned());
    let declaration = state
        .declarations_as(&caller.token)?
        .save_declaration(request)
        .await?
        .into_inner();
    Ok(Json(declaration.into()))
}

/// `POST /api/v1/declarations/{id}:<verb>`: dispatches `:submit` and `:review`.
pub async fn declaration_action(
    State(state): State<AppState>,
    params: PathParams,
    caller: Caller,
    request: Request,
) -> Result<Response, Problem> {
    let (id, verb) = params.custom_method();
    match verb.as_deref() {
        Some("submit") => {
            caller.require(Gate::Person)?;
            let id = parse_uuid("id", &id)?;
            submit_declaration(state, caller, id)
                .await
                .map(|d| Json(d).into_response())
        }
        Some("review") => {
            caller.require(Gate::Staff)?;
            let id = parse_uuid("id", &id)?;
            let ApiJson(body) = ApiJson::<ReviewDeclaration>::from_request(request, &state).await?;
            review_declaration(state, caller, id, body)
                .await
                .map(|d| Json(d).into_response())
        }
        verb => Err(Problem::unknown_method(
            verb,
            "a declaration",
            ":submit or :review",
        )),
    }
}

/// Hands a draft in for review: checks the period and every item's monthly cap, counting the
/// branch's records of the month (422 `monthly_cap_exceeded` naming the line).
#[utoipa::path(
    post,
    path = "/api/v1/declarations/{id}:submit",
    tag = "declarations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Declaration id")),
    responses((status = 200, description = "The declaration, `status=submitted`", body = Declaration)),
)]
pub async fn submit_declaration(
    state: AppState,
    caller: Caller,
    id: Uuid,
) -> Result<Declaration, Problem> {
    let request = pb::SubmitDeclarationRequest { id: id.to_string() };
    let declaration = state
        .declarations_as(&caller.token)?
        .submit_declaration(request)
        .await?
        .into_inner();
    Ok(declaration.into())
}

/// Reviews a submitted declaration (secretary or admin over the member, never the member
/// themself). Approval gives every line its claimed points unless `lines` lowers it (with a
/// reason); reject and return need a comment. A declaration that is not submitted: 409
/// `not_submitted` — also the answer to the second of two reviewers at the same moment.
/// Once the member's grade of the year is final: 409 `grading_final`.
#[utoipa::path(
    post,
    path = "/api/v1/declarations/{id}:review",
    tag = "declarations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Declaration id")),
    request_body = ReviewDeclaration,
    responses((status = 200, description = "The reviewed declaration", body = Declaration)),
)]
pub async fn review_declaration(
    state: AppState,
    caller: Caller,
    id: Uuid,
    body: ReviewDeclaration,
) -> Result<Declaration, Problem> {
    let declaration = state
        .declarations_as(&caller.token)?
        .review_declaration(body.into_proto(id))
        .await?
        .into_inner();
    Ok(declaration.into())
}

/// Every transition of a declaration (痕迹管理): who, when, from, to, why; oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/declarations/{id}/history",
    tag = "declarations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Declaration id")),
    responses((status = 200, description = "The transitions", body = DeclarationHistory)),
)]
pub async fn declaration_history(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    PathId(id): PathId,
) -> Result<Json<DeclarationHistory>, Problem> {
    let request = pb::GetDeclarationHistoryRequest { id: id.to_string() };
    let history = state
        .declarations_as(&caller.token)?
        .get_declaration_history(request)
        .await?
        .into_inner();
    Ok(Json(history.into()))
}

/// Query parameters of the declarations listing (documentation only).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeclarationFilter {
    /// Only this month (YYYY-MM).
    month: Option<String>,
    /// Only declarations in this status.
    status: Option<DeclarationStatus>,
}

/// The declarations of an organization's subtree, newest id last.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}/declarations",
    tag = "declarations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Organization id"), DeclarationFilter, PageParams),
    responses((status = 200, description = "A page of declarations", body = DeclarationList)),
)]
pub async fn list_org_declarations(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(id): PathId,
    paging: ListQuery,
    uri: Uri,
) -> Result<Json<DeclarationList>, Problem> {
    let mut month = String::new();
    let mut status = pb_unspecified();
    for (key, value) in query_pairs(&uri)? {
        match key.as_str() {
            "month" => month = value,
            "status" if value.is_empty() => {}
            "status" => {
                status = DeclarationStatus::parse(&value)
                    .ok_or_else(|| {
                        Problem::invalid_field(
                            "status",
                            "must be one of draft, submitted, approved, rejected, returned",
                        )
                    })?
                    .to_proto();
            }
            _ => {}
        }
    }
    let request = pb::ListDeclarationsRequest {
        org_id: id.to_string(),
        month,
        status,
        page_size: paging.page_size,
        page_token: paging.page_token,
    };
    let page = state
        .declarations_as(&caller.token)?
        .list_declarations(request)
        .await?
        .into_inner();
    Ok(Json(DeclarationList {
        items: page
            .declarations
            .into_iter()
            .map(Declaration::from)
            .collect(),
        next_page_token: page.next_page_token,
    }))
}

fn pb_unspecified() -> i32 {
    jifen_proto::events::v1::DeclarationStatus::Unspecified as i32
}

/// Approves the listed submitted declarations of the organization's subtree and month with their
/// claimed points; the others are skipped with a reason. One transaction.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{id}/declarations:batch-approve",
    tag = "declarations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Organization id")),
    request_body = BatchApprove,
    responses((status = 200, description = "How many were approved, and which were skipped", body = BatchApproveResult)),
)]
pub async fn batch_approve(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<BatchApprove>,
) -> Result<Json<BatchApproveResult>, Problem> {
    let request = pb::BatchApproveRequest {
        org_id: id.to_string(),
        month: body.month,
        declaration_ids: body.declaration_ids.iter().map(Uuid::to_string).collect(),
    };
    let result = state
        .declarations_as(&caller.token)?
        .batch_approve(request)
        .await?
        .into_inner();
    Ok(Json(result.into()))
}
