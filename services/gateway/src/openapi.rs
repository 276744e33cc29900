//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations and served
//! at `/api/v1/openapi.json`.
//!
//! Every operation gets the problem+json answers that the gateway can give it — 400/413/415 when it
//! takes a body or parameters, 401/403 when it needs a token, 404 when it addresses a resource,
//! 429 and 503 always — so a client generator sees every error shape.

use crate::problem::{self, PROBLEM_JSON, ProblemBody};
use axum::Extension;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use utoipa::Modify;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder};

/// The static part of the document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "jifen public API",
        version = "1",
        description = "党员积分制管理 — the public HTTP/JSON API (shared/API.md). Errors are RFC 9457 problem+json."
    ),
    paths(
        serve,
        crate::routes::members::transfer_member,
        crate::routes::declarations::submit_declaration,
        crate::routes::declarations::review_declaration,
        crate::routes::branch::revoke_branch_record,
        crate::routes::branch::reopen_period,
        crate::routes::evaluations::close_round,
        crate::routes::grading::compute_grading,
        crate::routes::grading::confirm_grading,
        crate::routes::grading::finalize_grading,
        crate::routes::grading::decide_appeal,
    ),
    components(schemas(ProblemBody, problem::FieldError)),
    modifiers(&Security),
    tags(
        (name = "identity", description = "Login, token refresh, the caller"),
        (name = "organizations", description = "The organization tree"),
        (name = "members", description = "Members, transfers, sanctions, import"),
        (name = "standard", description = "The yearly points standard (积分标准)"),
        (name = "declarations", description = "Monthly declarations and their review (月度申报、支部审核)"),
        (name = "branch records", description = "Branch-recorded points and reopened months (支部记录、补报)"),
        (name = "evidence", description = "Evidence files (证明材料)"),
        (name = "evaluations", description = "Quarterly mass evaluation 群众评议: rounds, invitation codes, ballots, results"),
        (name = "grading", description = "The points ledger 积分台账 and the yearly grading 年度组织定级: proposals, confirmation, appeals 申诉, finalization"),
        (name = "exports", description = "Exports 导出: the points ledger of an organization's subtree as an Excel workbook"),
        (name = "dashboard", description = "Dashboards 党建看板: participation, points and grades across an organization's subtree, for committee staff"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

fn add_problem(op: &mut Operation, status: StatusCode) {
    let key = status.as_u16().to_string();
    if op.responses.responses.contains_key(&key) {
        return;
    }
    let response = ResponseBuilder::new()
        .description(format!(
            "{} ({})",
            problem::title(status),
            problem::default_code(status)
        ))
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name("ProblemBody"))),
        )
        .build();
    op.responses.responses.insert(key, RefOr::T(response));
}

/// Adds the problem answers every operation can give (see the module documentation).
pub fn add_problem_responses(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        // (operation, whether it changes something)
        let ops = [
            (&mut item.get, false),
            (&mut item.post, true),
            (&mut item.put, true),
            (&mut item.patch, true),
            (&mut item.delete, true),
        ];
        for (op, acts) in ops {
            let Some(op) = op else { continue };
            let has_body = op.request_body.is_some();
            let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            if has_body || has_params {
                add_problem(op, StatusCode::BAD_REQUEST);
            }
            if has_body {
                add_problem(op, StatusCode::PAYLOAD_TOO_LARGE);
                add_problem(op, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            }
            if secured {
                add_problem(op, StatusCode::UNAUTHORIZED);
                add_problem(op, StatusCode::FORBIDDEN);
            }
            if has_params || secured {
                add_problem(op, StatusCode::NOT_FOUND);
            }
            if secured && (has_body || acts) {
                add_problem(op, StatusCode::CONFLICT);
                add_problem(op, StatusCode::UNPROCESSABLE_ENTITY);
            }
            add_problem(op, StatusCode::TOO_MANY_REQUESTS);
            add_problem(op, StatusCode::SERVICE_UNAVAILABLE);
        }
    }
}

/// The serialized document, shared by every request.
#[derive(Clone)]
pub struct Document(pub Bytes);

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json")),
)]
pub async fn serve(Extension(doc): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0)
}
