//! gRPC clients of the services behind the gateway.
//!
//! Every call carries the current span's `traceparent` and a bearer token: the caller's own
//! access token (services enforce scope again, DESIGN.md §5), or the gateway's short-lived
//! service token for calls the gateway makes for itself (token refresh).

use crate::problem::Problem;
use jifen_platform::grpc::TraceInjector;
use jifen_proto::evaluations::v1::evaluations_service_client::EvaluationsServiceClient;
use jifen_proto::members::v1::members_service_client::MembersServiceClient;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The members service client type handed to handlers.
pub type MembersClient = MembersServiceClient<InterceptedService<Channel, TraceInjector>>;

/// The fully qualified name the members service registers with `grpc.health.v1`.
pub const MEMBERS_SERVICE: &str = "jifen.members.v1.MembersService";

/// A lazily connected channel to the members service, shared by every request.
#[derive(Clone, Debug)]
pub struct Members {
    channel: Channel,
}

impl Members {
    /// Connects on first use, so the gateway starts (and answers 503) while the service is down.
    pub fn connect_lazy(url: &str) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(15))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Self { channel })
    }

    /// A client that calls as the holder of `token`.
    pub fn with_token(&self, token: &str) -> Result<MembersClient, Problem> {
        let injector = TraceInjector::with_bearer(token).map_err(|_| {
            Problem::unauthenticated("invalid_token", "the token is not valid metadata")
        })?;
        Ok(MembersServiceClient::with_interceptor(
            self.channel.clone(),
            injector,
        ))
    }

    /// Whether the service answers its health check with SERVING (within one second).
    pub async fn serving(&self) -> bool {
        let mut client = HealthClient::new(self.channel.clone());
        let request = HealthCheckRequest {
            service: MEMBERS_SERVICE.to_owned(),
        };
        match tokio::time::timeout(Duration::from_secs(1), client.check(request)).await {
            Ok(Ok(answer)) => answer.into_inner().status == ServingStatus::Serving as i32,
            _ => false,
        }
    }
}

/// The evaluations service client type handed to handlers.
pub type EvaluationsClient = EvaluationsServiceClient<InterceptedService<Channel, TraceInjector>>;

/// A lazily connected channel to the evaluations service, shared by every request.
#[derive(Clone, Debug)]
pub struct Evaluations {
    channel: Channel,
}

impl Evaluations {
    /// Connects on first use, so the gateway starts (and answers 503) while the service is down.
    pub fn connect_lazy(url: &str) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(15))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Self { channel })
    }

    /// A client that calls as the holder of `token`.
    pub fn with_token(&self, token: &str) -> Result<EvaluationsClient, Problem> {
        let injector = TraceInjector::with_bearer(token).map_err(|_| {
            Problem::unauthenticated("invalid_token", "the token is not valid metadata")
        })?;
        Ok(EvaluationsServiceClient::with_interceptor(
            self.channel.clone(),
            injector,
        ))
    }
}
