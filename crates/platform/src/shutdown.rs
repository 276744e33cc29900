//! One [`CancellationToken`] for the whole process, cancelled on SIGINT or SIGTERM. It fans out
//! to the gRPC server, the HTTP servers, the outbox relay and the consumers.

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
/// reflection) on `grpc`, and `/healthz`, `/readyz` (ready while `db` answers) and `/metrics` on
/// `ops`; both stop when `stop` fires.
pub fn spawn_servers(
    tasks: &mut Tasks,
    server: crate::grpc::GrpcServer,
    grpc: tokio::net::TcpListener,
    ops: tokio::net::TcpListener,
    db: sea_orm::DatabaseConnection,
    stop: &CancellationToken,
) {
    use anyhow::Context as _;
    let grpc_stop = stop.clone();
    tasks.spawn(async move {
        let served = server.serve(grpc, grpc_stop).await.context("gRPC server");
        ("grpc", served)
    });
    let ops_stop = stop.clone();
    let router = crate::ops::router(crate::ops::database_readiness(db));
    tasks.spawn(async move {
        let served = crate::ops::serve(ops, router, ops_stop)
            .await
            .context("ops server");
        ("ops", served)
    });
}
