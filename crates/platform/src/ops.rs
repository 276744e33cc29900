//! The operational HTTP endpoints every service exposes: `/healthz` (the process is up),
//! `/readyz` (every dependency answers) and `/metrics` (Prometheus text format).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};

/// The process-wide Prometheus recorder, installed on first use (tests start several servers in
/// one process; only one recorder can be global).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only when another recorder is already global; then metrics go there.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A readiness probe: resolves to a list of failing dependencies (empty when ready).
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Vec<String>> + Send + Sync>;

/// Ready while `db` answers `SELECT 1`; else reports `database`.
pub fn database_readiness(db: sea_orm::DatabaseConnection) -> ReadinessCheck {
    Arc::new(move || {
        let db = db.clone();
        Box::pin(async move {
            if crate::db::ping(&db).await {
                Vec::new()
            } else {
                vec!["database".to_owned()]
            }
        })
    })
}

/// `/healthz`, `/readyz`, `/metrics`.
pub fn router(readiness: ReadinessCheck) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|| async { prometheus().render() }))
        .with_state(readiness)
}

async fn readyz(State(check): State<ReadinessCheck>) -> (StatusCode, String) {
    let failing = check().await;
    if failing.is_empty() {
        (StatusCode::OK, "ready".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", failing.join(", ")),
        )
    }
}

/// Serves `router` on `listener` until `cancel` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    cancel: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}
