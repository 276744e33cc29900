//! The operational HTTP endpoints every service exposes: `/healthz` (the process is up),
//! `/readyz` (every dependency answers, and the service is not draining before a stop) and
//! `/metrics` (Prometheus text format).
//!
//! Every metric family has a help text (`describe_*!`) and counters end in `_total`, so
//! `promtool check metrics` finds nothing to say. The process metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, `process_start_time_seconds`, …) are
//! collected at each scrape ([`render`]); gauges of pools and queues are sampled every
//! [`SAMPLE_INTERVAL`] by the tasks that own them.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often pools and queues are sampled for `/metrics`.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(15);

/// The process metrics collector, its families described once.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let collector = metrics_process::Collector::default();
        collector.describe();
        collector
    })
}

/// The Prometheus text of every metric of the process, the process metrics collected now.
pub fn render() -> String {
    let handle = prometheus();
    process_collector().collect();
    handle.render()
}

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

/// `/healthz`, `/readyz` (503 once `draining` fires), `/metrics`.
pub fn router(readiness: ReadinessCheck, draining: CancellationToken) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    render(),
                )
            }),
        )
        .with_state((readiness, draining))
}

async fn readyz(
    State((check, draining)): State<(ReadinessCheck, CancellationToken)>,
) -> (StatusCode, String) {
    if draining.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down".into(),
        );
    }
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
