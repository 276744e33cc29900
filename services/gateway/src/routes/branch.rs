//! Branch-side points (支部记录) — attendance, dues, tasks, deductions, vetoes recorded by the
//! secretary — their revocation, and reopening a closed month for late declarations (补报).
//!
//! `POST /api/v1/branch-records/{id}:revoke` and `POST /api/v1/orgs/{id}/periods/{month}:reopen`
//! are AIP custom methods, dispatched by [`branch_record_action`] and [`period_action`].

use crate::auth::{Caller, Gate, StaffCaller};
use crate::convert::declarations::{
    BranchRecord, BranchRecordList, BranchRecords, RecordBranchEntries, ReopenPeriod, Reopening,
    RevokeBranchRecord,
};
use crate::extract::{ApiJson, ListQuery, PathId, PathParams, parse_uuid};
use crate::problem::Problem;
use crate::routes::orgs::{PageParams, created};
use crate::routes::standards::query_pairs;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest as _, Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse as _, Response};
use jifen_proto::declarations::v1 as pb;
use uuid::Uuid;

/// Records branch-side lines for members of the organization's subtree: every entry or none.
/// Only items with `declared_by: "branch"`; an item's monthly cap counts what is already
/// recorded (422 `monthly_cap_exceeded` naming `entries[i].quantity`). Not for a member whose
/// grade of the year is final (409 `grading_final`).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{id}/branch-records",
    tag = "branch records",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Organization id")),
    request_body = RecordBranchEntries,
    responses((status = 201, description = "Recorded", body = BranchRecords)),
)]
pub async fn record_branch_entries(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<RecordBranchEntries>,
) -> Result<Response, Problem> {
    let month = body.month.clone();
    let answer = state
        .declarations_as(&caller.token)?
        .record_branch_entries(body.into_proto(id))
        .await?
        .into_inner();
    Ok(created(
        format!("/api/v1/orgs/{id}/branch-records?month={month}"),
        BranchRecords {
            records: answer.records.into_iter().map(BranchRecord::from).collect(),
        },
    ))
}

/// Query parameters of the branch records listing (documentation only).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct MonthFilter {
    /// Only this month (YYYY-MM).
    month: Option<String>,
}

/// The branch records of an organization's subtree (revoked ones included, marked).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}/branch-records",
    tag = "branch records",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Organization id"), MonthFilter, PageParams),
    responses((status = 200, description = "A page of branch records", body = BranchRecordList)),
)]
pub async fn list_branch_records(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(id): PathId,
    paging: ListQuery,
    uri: Uri,
) -> Result<Json<BranchRecordList>, Problem> {
    let month = query_pairs(&uri)?
        .into_iter()
        .rev()
        .find(|(k, _)| k == "month")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let request = pb::ListBranchRecordsRequest {
        org_id: id.to_string(),
        month,
        page_size: paging.page_size,
        page_token: paging.page_token,
    };
    let page = state
        .declarations_as(&caller.token)?
        .list_branch_records(request)
        .await?
        .into_inner();
    Ok(Json(BranchRecordList {
        items: page.records.into_iter().map(BranchRecord::from).collect(),
        next_page_token: page.next_page_token,
    }))
}

/// `POST /api/v1/branch-records/{id}:<verb>`: dispatches `:revoke`.
pub async fn branch_record_action(
    State(state): State<AppState>,
    params: PathParams,
    caller: Caller,
    request: Request,
) -> Result<Response, Problem> {
    let (id, verb) = params.custom_method();
    match verb.as_deref() {
        Some("revoke") => {
            caller.require(Gate::Staff)?;
            let id = parse_uuid("id", &id)?;
            let ApiJson(body) =
                ApiJson::<RevokeBranchRecord>::from_request(request, &state).await?;
            revoke_branch_record(state, caller, id, body)
                .await
                .map(|r| Json(r).into_response())
        }
        verb => Err(Problem::unknown_method(verb, "a branch record", ":revoke")),
    }
}

/// Revokes a branch record: it stays, marked revoked with who and why; a second revoke is 409
/// `already_revoked`; once the member's grade of the year is final, 409 `grading_final`.
#[utoipa::path(
    post,
    path = "/api/v1/branch-records/{id}:revoke",
    tag = "branch records",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Branch record id")),
    request_body = RevokeBranchRecord,
    responses((status = 200, description = "The revoked record", body = BranchRecord)),
)]
pub async fn revoke_branch_record(
    state: AppState,
    caller: Caller,
    id: Uuid,
    body: RevokeBranchRecord,
) -> Result<BranchRecord, Problem> {
    let request = pb::RevokeBranchRecordRequest {
        id: id.to_string(),
        reason: body.reason,
    };
    let record = state
        .declarations_as(&caller.token)?
        .revoke_branch_record(request)
        .await?
        .into_inner();
    Ok(record.into())
}

/// `POST /api/v1/orgs/{id}/periods/{month}:<verb>`: dispatches `:reopen`.
pub async fn period_action(
    State(state): State<AppState>,
    params: PathParams,
    caller: Caller,
    request: Request,
) -> Result<Response, Problem> {
    let (month, verb) = params.custom_method();
    match verb.as_deref() {
        Some("reopen") => {
            caller.require(Gate::Staff)?;
            let id = params.uuid("id")?;
            let ApiJson(body) = ApiJson::<ReopenPeriod>::from_request(request, &state).await?;
            reopen_period(state, caller, id, month, body)
                .await
                .map(|r| Json(r).into_response())
        }
        verb => Err(Problem::unknown_method(verb, "a period", ":reopen")),
    }
}

/// Reopens a closed month for the members of the organization's subtree until `until` (补报):
/// they may save and submit that month's declaration until then. Not once a grade of that year
/// is final in the subtree (409 `grading_final`).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{id}/periods/{month}:reopen",
    tag = "branch records",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Organization id"),
        ("month" = String, Path, description = "Month, YYYY-MM"),
    ),
    request_body = ReopenPeriod,
    responses((status = 200, description = "The reopening", body = Reopening)),
)]
pub async fn reopen_period(
    state: AppState,
    caller: Caller,
    id: Uuid,
    month: String,
    body: ReopenPeriod,
) -> Result<Reopening, Problem> {
    let request = pb::ReopenPeriodRequest {
        org_id: id.to_string(),
        month,
        until: body.until,
        reason: body.reason,
    };
    let reopening = state
        .declarations_as(&caller.token)?
        .reopen_period(request)
        .await?
        .into_inner();
    Ok(reopening.into())
}
