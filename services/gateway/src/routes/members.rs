//! Members: create, read, update, list, transfer (组织关系转接), sanctions (党纪处分), CSV import.
//!
//! `POST /api/v1/members/{id}:transfer` is an AIP custom method. The router cannot match a
//! parameter followed by a literal inside one segment, so `POST /api/v1/members/{id}` is routed
//! to [`member_action`], which splits the segment at `:` and dispatches on the verb (an unknown
//! verb is 404; no verb is 405).

use crate::auth::{AdminCaller, Caller, Gate, PersonCaller, StaffCaller};
use crate::convert::{
    CreateMember, ImportResult, Member, MemberList, RecordSanction, Sanction, SanctionList,
    Transfer, TransferList, TransferMember, UpdateMember,
};
use crate::extract::{ApiJson, ListQuery, PathId, body_bytes, parse_uuid};
use crate::problem::Problem;
use crate::routes::orgs::{PageParams, created};
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest as _, RawPathParams, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use jifen_proto::members::v1 as pb;
use uuid::Uuid;

/// Creates a member in a branch or group.
#[utoipa::path(
    post,
    path = "/api/v1/members",
    tag = "members",
    security(("bearer" = [])),
    request_body = CreateMember,
    responses((status = 201, description = "Created", body = Member)),
)]
pub async fn create_member(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    ApiJson(body): ApiJson<CreateMember>,
) -> Result<Response, Problem> {
    let member = state
        .members()
        .with_token(&caller.token)?
        .create_member(body.into_proto())
        .await?
        .into_inner();
    Ok(created(
        format!("/api/v1/members/{}", member.id),
        Member::from(member),
    ))
}

/// One member; `phone` and `id_card` in clear only for the member themself.
#[utoipa::path(
    get,
    path = "/api/v1/members/{id}",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id")),
    responses((status = 200, description = "The member", body = Member)),
)]
pub async fn get_member(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    PathId(id): PathId,
) -> Result<Json<Member>, Problem> {
    let request = pb::GetMemberRequest { id: id.to_string() };
    let member = state
        .members()
        .with_token(&caller.token)?
        .get_member(request)
        .await?
        .into_inner();
    Ok(Json(member.into()))
}

/// Changes the fields present in the body.
#[utoipa::path(
    patch,
    path = "/api/v1/members/{id}",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id")),
    request_body = UpdateMember,
    responses((status = 200, description = "The updated member", body = Member)),
)]
pub async fn update_member(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateMember>,
) -> Result<Json<Member>, Problem> {
    let member = state
        .members()
        .with_token(&caller.token)?
        .update_member(body.into_proto(id))
        .await?
        .into_inner();
    Ok(Json(member.into()))
}

/// Query parameters of a member listing (documentation only).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RecursiveParam {
    /// `true`: the whole subtree; else the organization's own members.
    recursive: Option<bool>,
}

/// Members of an organization (`recursive=true`: of its subtree).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}/members",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Organization id"), RecursiveParam, PageParams),
    responses((status = 200, description = "A page of members", body = MemberList)),
)]
pub async fn list_org_members(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(id): PathId,
    query: ListQuery,
) -> Result<Json<MemberList>, Problem> {
    let request = pb::ListMembersRequest {
        org_id: id.to_string(),
        recursive: query.recursive,
        page_size: query.page_size,
        page_token: query.page_token,
    };
    let page = state
        .members()
        .with_token(&caller.token)?
        .list_members(request)
        .await?
        .into_inner();
    Ok(Json(MemberList {
        items: page.members.into_iter().map(Member::from).collect(),
        next_page_token: page.next_page_token,
    }))
}

/// `POST /api/v1/members/{id}:<verb>`: dispatches AIP custom methods.
pub async fn member_action(
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
            "POST is not allowed on a member; use a custom method such as :transfer",
        )
        .with_header(header::ALLOW, HeaderValue::from_static("GET, PATCH")));
    };
    match verb {
        "transfer" => {
            caller.require(Gate::Admin)?;
            let id = parse_uuid("id", id)?;
            let ApiJson(body) = ApiJson::<TransferMember>::from_request(request, &state).await?;
            transfer_member(state, caller, id, body)
                .await
                .map(|m| Json(m).into_response())
        }
        other => Err(Problem::unknown_method(Some(other), "a member", "")),
    }
}

/// Transfers a member to another organization (组织关系转接).
#[utoipa::path(
    post,
    path = "/api/v1/members/{id}:transfer",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id")),
    request_body = TransferMember,
    responses((status = 200, description = "The member in their new organization", body = Member)),
)]
pub async fn transfer_member(
    state: AppState,
    caller: Caller,
    id: Uuid,
    body: TransferMember,
) -> Result<Member, Problem> {
    let request = pb::TransferMemberRequest {
        id: id.to_string(),
        to_org_id: body.to_org_id.to_string(),
        reason: body.reason,
    };
    let member = state
        .members()
        .with_token(&caller.token)?
        .transfer_member(request)
        .await?
        .into_inner();
    Ok(member.into())
}

/// A member's transfers.
#[utoipa::path(
    get,
    path = "/api/v1/members/{id}/transfers",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id")),
    responses((status = 200, description = "The transfers", body = TransferList)),
)]
pub async fn list_transfers(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    PathId(id): PathId,
) -> Result<Json<TransferList>, Problem> {
    let request = pb::ListTransfersRequest {
        member_id: id.to_string(),
    };
    let list = state
        .members()
        .with_token(&caller.token)?
        .list_transfers(request)
        .await?
        .into_inner();
    Ok(Json(TransferList {
        items: list.transfers.into_iter().map(Transfer::from).collect(),
        next_page_token: String::new(),
    }))
}

/// Records a sanction (党纪处分).
#[utoipa::path(
    post,
    path = "/api/v1/members/{id}/sanctions",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id")),
    request_body = RecordSanction,
    responses((status = 201, description = "Recorded", body = Sanction)),
)]
pub async fn record_sanction(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<RecordSanction>,
) -> Result<Response, Problem> {
    let request = pb::RecordSanctionRequest {
        member_id: id.to_string(),
        kind: body.kind.to_proto(),
        decided_on: body.decided_on.format("%Y-%m-%d").to_string(),
        reason: body.reason,
    };
    let sanction = state
        .members()
        .with_token(&caller.token)?
        .record_sanction(request)
        .await?
        .into_inner();
    Ok(created(
        format!("/api/v1/members/{id}/sanctions"),
        Sanction::from(sanction),
    ))
}

/// A member's sanctions.
#[utoipa::path(
    get,
    path = "/api/v1/members/{id}/sanctions",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id")),
    responses((status = 200, description = "The sanctions", body = SanctionList)),
)]
pub async fn list_sanctions(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    PathId(id): PathId,
) -> Result<Json<SanctionList>, Problem> {
    let request = pb::ListSanctionsRequest {
        member_id: id.to_string(),
    };
    let list = state
        .members()
        .with_token(&caller.token)?
        .list_sanctions(request)
        .await?
        .into_inner();
    Ok(Json(SanctionList {
        items: list.sanctions.into_iter().map(Sanction::from).collect(),
        next_page_token: String::new(),
    }))
}

/// Imports members from CSV (header `name,gender,category,joined_on,phone,id_card,org_id`); all or
/// nothing: any bad row and nothing is created.
#[utoipa::path(
    post,
    path = "/api/v1/members:import",
    tag = "members",
    security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv", description = "CSV with a header row"),
    responses((status = 200, description = "What was created, or every rejected row", body = ImportResult)),
)]
pub async fn import_members(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    request: Request,
) -> Result<Json<ImportResult>, Problem> {
    let csv = body_bytes(request, &state, "text/csv", state.body_limit()).await?;
    if csv.is_empty() {
        return Err(Problem::invalid_field("body", "the CSV file is empty"));
    }
    if let Some(at) = csv.iter().position(|&b| b == 0) {
        // Line 1 is the header row.
        let line = csv[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(Problem::invalid_field(
            "body",
            format!("line {line}: {}", crate::text::NUL_MESSAGE),
        ));
    }
    let request = pb::ImportMembersRequest { csv: csv.to_vec() };
    let result = state
        .members()
        .with_token(&caller.token)?
        .import_members(request)
        .await?
        .into_inner();
    Ok(Json(result.into()))
}
