//! Operational endpoints: `/healthz` (the process is up), `/readyz` (the gateway is not draining
//! before a stop, Redis answers PING and the members, declarations, evaluations and grading
//! services report SERVING) and `/metrics` (Prometheus text format).

use crate::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// The answer of the health endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

async fn redis_answers(state: &AppState) -> bool {
    let mut redis = state.redis();
    let cmd = redis::cmd("PING");
    let ping = cmd.query_async::<String>(&mut redis);
    matches!(
        tokio::time::timeout(Duration::from_secs(1), ping).await,
        Ok(Ok(_))
    )
}

/// Readiness: every dependency answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "A dependency does not answer; `errors` names it", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    if state.draining().is_cancelled() {
        // SIGTERM received: the load balancer must stop sending before the server stops.
        return Err(Problem::unavailable("not ready: shutting down"));
    }
    let (redis, members, declarations, evaluations, grading) = tokio::join!(
        redis_answers(&state),
        state.members().serving(),
        state.declarations().serving(),
        state.evaluations().serving(),
        state.grading().serving(),
    );
    let down: Vec<(&str, &str)> = [
        (redis, "redis", "does not answer PING"),
        (members, "members", "is not SERVING"),
        (declarations, "declarations", "is not SERVING"),
        (evaluations, "evaluations", "is not SERVING"),
        (grading, "grading", "is not SERVING"),
    ]
    .into_iter()
    .filter(|(up, _, _)| !up)
    .map(|(_, name, message)| (name, message))
    .collect();
    if down.is_empty() {
        return Ok(Json(Health { status: "ready" }));
    }
    let mut problem = Problem::unavailable("not ready");
    for (name, message) in down {
        problem = problem.with_field(name, message);
    }
    Err(problem)
}

/// Prometheus metrics: `http_requests_total` and `http_request_duration_seconds` by method, route
/// template and status, the gateway's own counters and the process metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        jifen_platform::ops::render(),
    )
}
