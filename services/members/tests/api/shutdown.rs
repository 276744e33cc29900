//! Graceful shutdown as a load balancer sees it: after the stop signal, health says NOT_SERVING
//! (for the server as a whole and for every service) and `/readyz` fails while requests are
//! still answered for the drain period; then the server is gone.

use crate::helpers::{Keys, init_telemetry, settings};
use jifen_eventbus::BusConfig;
use jifen_members::Application;
use jifen_proto::members::v1 as pb;
use jifen_proto::members::v1::members_service_client::MembersServiceClient;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The names health answers for: the whole server, the service, and health itself.
const NAMES: [&str; 3] = [
    "",
    "jifen.members.v1.MembersService",
    "grpc.health.v1.Health",
];

const DRAIN: Duration = Duration::from_secs(4);

async fn channel(addr: SocketAddr) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
}

async fn status(channel: &tonic::transport::Channel, service: &str) -> ServingStatus {
    let answer = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(answer.status).unwrap()
}

/// An ordinary RPC: the bootstrap admin logs in.
async fn authenticate(channel: &tonic::transport::Channel) -> Result<String, tonic::Status> {
    let principal = MembersServiceClient::new(channel.clone())
        .authenticate(pb::AuthenticateRequest {
            username: "admin".into(),
            password: jifen_members::DEFAULT_BOOTSTRAP_ADMIN_PASSWORD.into(),
        })
        .await?
        .into_inner();
    Ok(principal.username)
}

async fn readyz(ops: SocketAddr) -> u16 {
    reqwest::get(format!("http://{ops}/readyz"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_stop_signal_health_says_not_serving_while_requests_are_answered_until_the_drain_ends()
 {
    init_telemetry();
    let database = jifen_testkit::fresh_database("members_drain")
        .await
        .unwrap();
    let bus = BusConfig::new(jifen_testkit::amqp_url())
        .with_prefix(&jifen_testkit::unique_prefix("members-drain"));
    let keys = Keys::generate();
    let mut settings = settings(&database, &bus, &keys);
    settings.shutdown_drain = DRAIN;
    let app = Application::build(settings).await.unwrap();
    let (grpc, ops) = (app.grpc_addr(), app.ops_addr());
    let cancel = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(cancel.clone()));

    let before = channel(grpc).await.unwrap();
    for name in NAMES {
        assert_eq!(
            status(&before, name).await,
            ServingStatus::Serving,
            "{name:?}"
        );
    }
    assert_eq!(readyz(ops).await, 200);
    assert_eq!(authenticate(&before).await.unwrap(), "admin");

    // SIGTERM (main.rs cancels this token on it).
    cancel.cancel();
    let signalled = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(2);
    while status(&before, "").await != ServingStatus::NotServing {
        assert!(
            Instant::now() < deadline,
            "health still SERVING after the signal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for name in NAMES {
        assert_eq!(
            status(&before, name).await,
            ServingStatus::NotServing,
            "{name:?}"
        );
    }
    assert_eq!(readyz(ops).await, 503, "/readyz fails while draining");
    // Still serving: on the connection opened before, and on a new one.
    assert_eq!(authenticate(&before).await.unwrap(), "admin");
    let during = channel(grpc)
        .await
        .expect("new connections are accepted while draining");
    assert_eq!(authenticate(&during).await.unwrap(), "admin");
    assert!(
        signalled.elapsed() < DRAIN,
        "the checks above took longer than the drain: they prove nothing"
    );
    assert!(
        !task.is_finished(),
        "the service stopped before the drain ended"
    );

    // After the drain: stopped, and nobody answers any more.
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the service stops after the drain")
        .unwrap()
        .unwrap();
    assert!(
        signalled.elapsed() >= DRAIN,
        "stopped after {:?}, before the drain of {DRAIN:?}",
        signalled.elapsed()
    );
    assert!(channel(grpc).await.is_err(), "the gRPC server is gone");
    assert!(
        reqwest::get(format!("http://{ops}/healthz")).await.is_err(),
        "the ops server is gone"
    );
    jifen_eventbus::delete_topology(&bus, &[]).await;
}
