//! One [`CancellationToken`] for the whole process, cancelled on SIGINT or SIGTERM, and the two
//! phases of a graceful stop that follow it ([`Lifecycle`]):
//!
//! 1. **draining** (at once): gRPC health turns NOT_SERVING (`""` and every service) and
//!    `/readyz` answers 503, while the servers still answer every request, old and new, so a load
//!    balancer or Kubernetes endpoints controller has time to stop sending;
//! 2. **stop** (after the drain period, `JIFEN_SHUTDOWN_DRAIN_SECS`): the servers stop accepting
//!    and finish what is in flight, the outbox relay and the consumers stop.
//!
//! When a task ends on its own (a failure), everything stops at once, without a drain.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A token cancelled when the process receives SIGINT (Ctrl-C) or SIGTERM (Kubernetes).
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let child = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
            _ = term => tracing::info!("SIGTERM received, shutting down"),
        }
        child.cancel();
    });
    token
}

/// The two phases of a graceful stop (module documentation).
#[derive(Debug, Clone)]
pub struct Lifecycle {
    draining: CancellationToken,
    stop: CancellationToken,
}

impl Lifecycle {
    /// Watches `signal`: when it fires, [`Lifecycle::draining`] fires at once and
    /// [`Lifecycle::stop`] after `drain`. When `stop` fires first (a task ended), `draining`
    /// fires with it.
    pub fn new(signal: &CancellationToken, drain: Duration) -> Self {
        let draining = CancellationToken::new();
        let stop = CancellationToken::new();
        let (signal, d, s) = (signal.clone(), draining.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = signal.cancelled() => {
                    d.cancel();
                    if !drain.is_zero() {
                        tracing::info!(drain_secs = drain.as_secs_f64(), "draining: reporting NOT_SERVING, still serving");
                        tokio::select! {
                            () = s.cancelled() => {}
                            () = tokio::time::sleep(drain) => {}
                        }
                    }
                    tracing::info!("stopping the servers, the relay and the consumers");
                    s.cancel();
                }
                () = s.cancelled() => d.cancel(),
            }
        });
        Self { draining, stop }
    }

    /// Fires when the service starts draining: health NOT_SERVING, `/readyz` 503.
    pub fn draining(&self) -> &CancellationToken {
        &self.draining
    }

    /// Fires when the service stops: servers, relay, consumers.
    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }
}

/// The long-running parts of a service (servers, relay, consumers), each named.
pub type Tasks = tokio::task::JoinSet<(&'static str, anyhow::Result<()>)>;

/// Waits for every task; when one ends (finished, failed or panicked) `stop` is cancelled so the
/// others stop too. Returns the first failure, logged once with its task's name.
pub async fn supervise(mut tasks: Tasks, stop: CancellationToken) -> anyhow::Result<()> {
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let (name, outcome) = match joined {
            Ok(done) => done,
            Err(join) => ("task", Err(anyhow::anyhow!("a task panicked: {join}"))),
        };
        if let Err(e) = outcome {
            tracing::error!(
                error = format!("{e:#}"),
                task = name,
                "stopping the service"
            );
            first_error.get_or_insert(e);
        }
        // Whatever ended first, everything stops.
        stop.cancel();
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Adds the two servers every service runs to `tasks`: `server` (gRPC, with health and
/// reflection) on `grpc`, and `/healthz`, `/readyz` (ready while `db` answers and not draining)
/// and `/metrics` on `ops`; both report NOT_SERVING / 503 once `lifecycle` drains, and stop when
/// it stops. Also samples the connection pool of `db` for `/metrics` as `service`.
pub fn spawn_servers(
    tasks: &mut Tasks,
    service: &'static str,
    server: crate::grpc::GrpcServer,
    grpc: tokio::net::TcpListener,
    ops: tokio::net::TcpListener,
    db: sea_orm::DatabaseConnection,
    lifecycle: &Lifecycle,
) {
    use anyhow::Context as _;
    let (draining, stop) = (lifecycle.draining().clone(), lifecycle.stop().clone());
    tasks.spawn(async move {
        let served = server
            .serve_draining(grpc, draining, stop)
            .await
            .context("gRPC server");
        ("grpc", served)
    });
    let ops_stop = lifecycle.stop().clone();
    let router = crate::ops::router(
        crate::ops::database_readiness(db.clone()),
        lifecycle.draining().clone(),
    );
    tasks.spawn(async move {
        let served = crate::ops::serve(ops, router, ops_stop)
            .await
            .context("ops server");
        ("ops", served)
    });
    let pool_stop = lifecycle.stop().clone();
    tasks.spawn(async move {
        crate::db::sample_pool(&db, service, crate::ops::SAMPLE_INTERVAL, pool_stop).await;
        ("pool metrics", Ok(()))
    });
}
