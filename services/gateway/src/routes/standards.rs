//! The yearly points standard (积分标准): read it (with an organization's unit-type overlay) and
//! publish a new document (admin of the root).
//!
//! `PUT` forwards the JSON text as it came — the declarations service validates the whole
//! document and names every problem (`items[3].points`, …); the gateway only checks that the body
//! is a JSON object.

use crate::auth::{AdminCaller, PersonCaller};
use crate::convert::declarations::Standard;
use crate::extract::{PathParams, body_bytes, parse_uuid};
use crate::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::Uri;
use jifen_proto::declarations::v1 as pb;

/// The `{year}` path parameter.
fn year(params: &PathParams) -> Result<i32, Problem> {
    params
        .get("year")?
        .parse::<i32>()
        .ok()
        .filter(|y| (2000..=2999).contains(y))
        .ok_or_else(|| Problem::invalid_field("year", "must be a year from 2000 to 2999"))
}

/// The query's `key=value` pairs, or 400 naming `query`.
pub(crate) fn query_pairs(uri: &Uri) -> Result<Vec<(String, String)>, Problem> {
    serde_urlencoded::from_str(uri.query().unwrap_or_default())
        .map_err(|e| Problem::invalid_field("query", e.to_string()))
}

/// Query parameters of `GET /api/v1/standards/{year}` (documentation only).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StandardParams {
    /// Apply this organization's unit-type overlay (个性指标) to the items.
    org_id: Option<uuid::Uuid>,
}

/// The standard of a year; with `org_id`, the items in force for that organization.
#[utoipa::path(
    get,
    path = "/api/v1/standards/{year}",
    tag = "standard",
    security(("bearer" = [])),
    params(("year" = i32, Path, description = "Year, e.g. 2026"), StandardParams),
    responses((status = 200, description = "The standard", body = Standard)),
)]
pub async fn get_standard(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    params: PathParams,
    uri: Uri,
) -> Result<Json<Standard>, Problem> {
    let year = year(&params)?;
    let mut org_id = String::new();
    for (key, value) in query_pairs(&uri)? {
        if key == "org_id" && !value.is_empty() {
            org_id = parse_uuid("org_id", &value)?.to_string();
        }
    }
    let standard = state
        .declarations_as(&caller.token)?
        .get_standard(pb::GetStandardRequest { year, org_id })
        .await?
        .into_inner();
    Ok(Json(Standard::from_proto(standard)))
}

/// Publishes the standard document of a year (admin of the root). Once a declaration of that
/// year exists, a new document may only add items (else 409 `standard_in_use`).
#[utoipa::path(
    put,
    path = "/api/v1/standards/{year}",
    tag = "standard",
    security(("bearer" = [])),
    params(("year" = i32, Path, description = "Year, e.g. 2026")),
    request_body(
        content = Object,
        content_type = "application/json",
        description = "The standard document of RULES.md §1 as JSON, same keys as standards/<year>.toml (points as plain numbers, e.g. 0.5)"
    ),
    responses((status = 200, description = "The stored standard, with `document`", body = Standard)),
)]
pub async fn put_standard(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    params: PathParams,
    request: Request,
) -> Result<Json<Standard>, Problem> {
    let year = year(&params)?;
    let limit = state.body_limit();
    let bytes = body_bytes(request, &state, "application/json", limit).await?;
    let document: serde_json::Value = crate::extract::parse_json(&bytes)?;
    if !document.is_object() {
        return Err(Problem::invalid_field(
            "body",
            "the standard document is a JSON object",
        ));
    }
    // Forwarded as it came (it parsed, so it is UTF-8).
    let document_json = String::from_utf8(bytes.to_vec())
        .map_err(|_| Problem::malformed_json("body", "not UTF-8"))?;
    let request = pb::PutStandardRequest {
        year,
        document_json,
    };
    let standard = state
        .declarations_as(&caller.token)?
        .put_standard(request)
        .await?
        .into_inner();
    Ok(Json(Standard::with_document(standard)))
}
