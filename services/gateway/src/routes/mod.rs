//! The HTTP surface: every route, its OpenAPI description, and the middleware stack.
//!
//! Order of the middleware, outermost first: request id (kept from the client or a new UUID) →
//! trace span → request id copied to the answer → metrics → problem+json for every error answer
//! → body limit → bearer verification → rate limit → idempotency → the handler.

pub mod auth;
pub mod branch;
pub mod dashboard;
pub mod declarations;
pub mod evaluations;
pub mod evidence;
pub mod exports;
pub mod grading;
pub mod health;
pub mod members;
pub mod orgs;
pub mod page;
pub mod standards;

use crate::extract::BodyLimit;
use crate::openapi::{self, ApiDoc, Document};
use crate::problem::Problem;
use crate::state::AppState;
use crate::{idempotency, observe, problem, ratelimit};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::{Extension, http::StatusCode};
use bytes::Bytes;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route with its OpenAPI description (without middleware or state), for evidence files
/// of the default size limit.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    api_with(crate::DEFAULT_EVIDENCE_MAX_BYTES)
}

/// Every route with its OpenAPI description; the evidence upload takes files of up to
/// `evidence_max_bytes` (its own body limit, above the global one).
pub fn api_with(evidence_max_bytes: usize) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let upload = OpenApiRouter::new()
        .routes(routes!(evidence::upload_evidence))
        .layer(DefaultBodyLimit::max(crate::state::evidence_request_limit(
            evidence_max_bytes,
        )));
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::me))
        .routes(routes!(auth::me_profile))
        .routes(routes!(auth::evaluator_login))
        .routes(routes!(orgs::create_org))
        .routes(routes!(orgs::get_org))
        .routes(routes!(orgs::list_children))
        .routes(routes!(orgs::assign_role))
        .routes(routes!(members::list_org_members))
        .routes(routes!(members::create_member))
        .routes(routes!(members::import_members))
        .routes(routes!(members::get_member, members::update_member))
        // `{id}:transfer` and other custom methods: see `members::member_action`.
        .route("/api/v1/members/{id}", post(members::member_action))
        .routes(routes!(members::list_transfers))
        .routes(routes!(members::record_sanction, members::list_sanctions))
        .routes(routes!(standards::get_standard, standards::put_standard))
        .routes(routes!(
            declarations::get_declaration,
            declarations::save_declaration
        ))
        // `{id}:submit`, `{id}:review`: see `declarations::declaration_action`.
        .route(
            "/api/v1/declarations/{id}",
            post(declarations::declaration_action),
        )
        .routes(routes!(declarations::declaration_history))
        .routes(routes!(declarations::list_org_declarations))
        .routes(routes!(declarations::batch_approve))
        .routes(routes!(
            branch::record_branch_entries,
            branch::list_branch_records
        ))
        // `{id}:revoke`: see `branch::branch_record_action`.
        .route(
            "/api/v1/branch-records/{id}",
            post(branch::branch_record_action),
        )
        // `{month}:reopen`: see `branch::period_action`.
        .route(
            "/api/v1/orgs/{id}/periods/{month}",
            post(branch::period_action),
        )
        .merge(upload)
        .routes(routes!(evidence::get_evidence))
        .routes(routes!(evaluations::open_round, evaluations::list_rounds))
        .routes(routes!(evaluations::get_round))
        // `{id}:close`: see `evaluations::round_action`.
        .route(
            "/api/v1/evaluation-rounds/{id}",
            post(evaluations::round_action),
        )
        .routes(routes!(evaluations::issue_invitations))
        .routes(routes!(evaluations::get_ballot))
        .routes(routes!(evaluations::cast_ballot))
        .routes(routes!(grading::get_ledger))
        .routes(routes!(grading::get_grading))
        // `{year}:compute`, `{year}:confirm`, `{year}:finalize`: see `grading::grading_action`.
        .route(
            "/api/v1/orgs/{id}/gradings/{year}",
            post(grading::grading_action),
        )
        .routes(routes!(grading::file_appeal))
        // `{id}:decide`: see `grading::appeal_action`.
        .route("/api/v1/appeals/{id}", post(grading::appeal_action))
        .routes(routes!(exports::export_ledger))
        .routes(routes!(dashboard::get_dashboard))
        .routes(routes!(dashboard::get_ranking))
        .routes(routes!(dashboard::get_trend))
        .routes(routes!(dashboard::get_histogram))
        .routes(routes!(dashboard::get_branches))
        .split_for_parts();
    openapi::add_problem_responses(&mut doc);
    (router, doc)
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The whole application, ready to serve.
pub fn router(state: AppState) -> Router {
    let (router, doc) = api_with(state.evidence_max_bytes());
    let json = serde_json::to_vec(&doc)
        .map(Bytes::from)
        .unwrap_or_default();
    let limit = state.body_limit();
    let trace = TraceLayer::new_for_http()
        .make_span_with(observe::make_span)
        .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN));
    router
        .route(
            "/api/v1/openapi.json",
            get(openapi::serve).layer(Extension(Document(json))),
        )
        .route("/dashboard", get(page::redirect))
        .route("/dashboard/", get(page::page))
        .route("/dashboard/dashboard.js", get(page::script))
        .route("/dashboard/dashboard.css", get(page::style))
        .route("/dashboard/vendor/echarts.min.js", get(page::echarts))
        .route("/m", get(page::app_redirect))
        .route("/m/", get(page::app_page))
        .route("/m/app.js", get(page::app_script))
        .route("/m/app.css", get(page::app_style))
        .route("/m/e", get(page::evaluation_page))
        .route("/m/e.js", get(page::evaluation_script))
        .route("/m/e.css", get(page::evaluation_style))
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(from_fn(observe::track))
                .layer(from_fn(problem::ensure_problem))
                .layer(Extension(BodyLimit(limit)))
                .layer(DefaultBodyLimit::max(limit))
                .layer(from_fn(crate::text::reject_nul_in_uri))
                .layer(from_fn_with_state(state.clone(), crate::auth::authenticate))
                .layer(from_fn_with_state(state.clone(), ratelimit::rate_limit))
                .layer(from_fn_with_state(state.clone(), idempotency::idempotency)),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn document_describes_custom_methods_and_problem_answers() {
        let (_, doc) = super::api();
        let json = serde_json::to_value(&doc).unwrap();
        if std::env::var_os("DUMP_OPENAPI").is_some() {
            println!("{}", serde_json::to_string_pretty(&json).unwrap());
        }
        let paths = json["paths"].as_object().unwrap();
        assert!(paths["/api/v1/members/{id}:transfer"]["post"].is_object());
        for custom in [
            "/api/v1/declarations/{id}:submit",
            "/api/v1/declarations/{id}:review",
            "/api/v1/branch-records/{id}:revoke",
            "/api/v1/orgs/{id}/periods/{month}:reopen",
            "/api/v1/orgs/{id}/declarations:batch-approve",
            "/api/v1/orgs/{id}/gradings/{year}:compute",
            "/api/v1/orgs/{id}/gradings/{year}:confirm",
            "/api/v1/orgs/{id}/gradings/{year}:finalize",
            "/api/v1/appeals/{id}:decide",
        ] {
            let op = &paths[custom]["post"];
            assert!(op.is_object(), "{custom}");
            assert!(op["responses"]["409"].is_object(), "{custom}: no 409");
        }
        let export = &paths["/api/v1/orgs/{id}/exports/ledger.xlsx"]["get"];
        assert!(
            export["responses"]["200"]["content"][super::exports::XLSX].is_object(),
            "{export}"
        );
        assert!(export["security"].is_array());
        assert!(
            export["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "year" && p["in"] == "query")
        );
        for (path, param) in [
            ("/api/v1/dashboard/orgs/{id}", "month"),
            ("/api/v1/dashboard/orgs/{id}/ranking", "year"),
            ("/api/v1/dashboard/orgs/{id}/ranking", "limit"),
            ("/api/v1/dashboard/orgs/{id}/trend", "year"),
            ("/api/v1/dashboard/orgs/{id}/histogram", "year"),
            ("/api/v1/dashboard/orgs/{id}/histogram", "bins"),
            ("/api/v1/dashboard/orgs/{id}/branches", "month"),
        ] {
            let op = &paths[path]["get"];
            assert!(op["security"].is_array(), "{op}");
            assert!(
                op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == param && p["in"] == "query"),
                "{path}: {param}"
            );
        }
        assert!(
            paths["/api/v1/evidence"]["post"]["requestBody"]["content"]["multipart/form-data"]
                .is_object()
        );
        assert!(
            paths["/api/v1/members:import"]["post"]["requestBody"]["content"]["text/csv"]
                .is_object()
        );
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                for status in ["429", "503"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
            }
        }
    }
}
