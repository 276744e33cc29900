//! Organizations: create, read, list children, assign roles.

use crate::auth::{AdminCaller, PersonCaller, StaffCaller};
use crate::convert::{AssignRole, CreateOrg, Org, OrgList};
use crate::extract::{ApiJson, ListQuery, PathId};
use crate::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jifen_proto::members::v1 as pb;

/// `201 Created` with `location` and the JSON body.
pub(crate) fn created<T: serde::Serialize>(location: String, body: T) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::try_from(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Creates an organization under `parent_id` (admin of the parent's subtree).
#[utoipa::path(
    post,
    path = "/api/v1/orgs",
    tag = "organizations",
    security(("bearer" = [])),
    request_body = CreateOrg,
    responses((status = 201, description = "Created", body = Org)),
)]
pub async fn create_org(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<Response, Problem> {
    let org = state
        .members()
        .with_token(&caller.token)?
        .create_organization(body.into_proto())
        .await?
        .into_inner();
    Ok(created(format!("/api/v1/orgs/{}", org.id), Org::from(org)))
}

/// One organization.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}",
    tag = "organizations",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Organization id")),
    responses((status = 200, description = "The organization", body = Org)),
)]
pub async fn get_org(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    PathId(id): PathId,
) -> Result<Json<Org>, Problem> {
    let request = pb::GetOrganizationRequest { id: id.to_string() };
    let org = state
        .members()
        .with_token(&caller.token)?
        .get_organization(request)
        .await?
        .into_inner();
    Ok(Json(org.into()))
}

/// Query parameters of paged lists (documentation only; parsed by [`ListQuery`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// At most 1000; 0 or absent lets the service choose.
    page_size: Option<i32>,
    /// `next_page_token` of the previous page.
    page_token: Option<String>,
}

/// The direct children of an organization.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}/children",
    tag = "organizations",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Organization id"), PageParams),
    responses((status = 200, description = "A page of organizations", body = OrgList)),
)]
pub async fn list_children(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(id): PathId,
    query: ListQuery,
) -> Result<Json<OrgList>, Problem> {
    let request = pb::ListChildOrganizationsRequest {
        id: id.to_string(),
        page_size: query.page_size,
        page_token: query.page_token,
    };
    let page = state
        .members()
        .with_token(&caller.token)?
        .list_child_organizations(request)
        .await?
        .into_inner();
    Ok(Json(OrgList {
        items: page.organizations.into_iter().map(Org::from).collect(),
        next_page_token: page.next_page_token,
    }))
}

/// Makes a member secretary or admin of the organization.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{id}/roles",
    tag = "organizations",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Organization id")),
    request_body = AssignRole,
    responses((status = 204, description = "Assigned")),
)]
pub async fn assign_role(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<AssignRole>,
) -> Result<StatusCode, Problem> {
    let request = pb::AssignRoleRequest {
        org_id: id.to_string(),
        member_id: body.member_id.to_string(),
        role: body.role.to_proto(),
    };
    state
        .members()
        .with_token(&caller.token)?
        .assign_role(request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
