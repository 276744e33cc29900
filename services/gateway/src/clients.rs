//! gRPC clients of the services behind the gateway.
//!
//! Every call carries the current span's `traceparent` and a bearer token: the caller's own
//! access token (services enforce scope again, DESIGN.md §5), or the gateway's short-lived
//! service token for calls the gateway makes for itself (token refresh).

use crate::problem::Problem;
use jifen_platform::grpc::TraceInjector;
use jifen_proto::declarations::v1::declarations_service_client::DeclarationsServiceClient;
use jifen_proto::evaluations::v1::evaluations_service_client::EvaluationsServiceClient;
use jifen_proto::grading::v1::grading_service_client::GradingServiceClient;
use jifen_proto::members::v1::members_service_client::MembersServiceClient;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The members service client type handed to handlers.
pub type MembersClient = MembersServiceClient<InterceptedService<Channel, TraceInjector>>;

/// The declarations service client type handed to handlers.
pub type DeclarationsClient = DeclarationsServiceClient<InterceptedService<Channel, TraceInjector>>;

/// The fully qualified name the members service registers with `grpc.health.v1`.
pub const MEMBERS_SERVICE: &str = "jifen.members.v1.MembersService";

/// The fully qualified name the declarations service registers with `grpc.health.v1`.
pub const DECLARATIONS_SERVICE: &str = "jifen.declarations.v1.DeclarationsService";

/// The fully qualified name the evaluations service registers with `grpc.health.v1`.
pub const EVALUATIONS_SERVICE: &str = "jifen.evaluations.v1.EvaluationsService";

/// The fully qualified name the grading service registers with `grpc.health.v1`.
pub const GRADING_SERVICE: &str = "jifen.grading.v1.GradingService";

/// Largest gRPC message the gateway sends to or accepts from the declarations service: an
/// evidence file (at most 24 MiB, the service's own ceiling) plus its envelope.
pub const MAX_DECLARATIONS_MESSAGE: usize = 32 * 1024 * 1024;

/// A lazily connected channel: connects on first use, so the gateway starts (and answers 503)
/// while the service is down.
fn lazy_channel(url: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(15))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// The interceptor that forwards `token` and the trace.
fn injector(token: &str) -> Result<TraceInjector, Problem> {
    TraceInjector::with_bearer(token)
        .map_err(|_| Problem::unauthenticated("invalid_token", "the token is not valid metadata"))
}

/// Whether `service` on `channel` answers its health check with SERVING (within one second).
async fn serving(channel: &Channel, service: &str) -> bool {
    let mut client = HealthClient::new(channel.clone());
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    match tokio::time::timeout(Duration::from_secs(1), client.check(request)).await {
        Ok(Ok(answer)) => answer.into_inner().status == ServingStatus::Serving as i32,
        _ => false,
    }
}

/// A lazily connected channel to the members service, shared by every request.
#[derive(Clone, Debug)]
pub struct Members {
    channel: Channel,
}

impl Members {
    /// Connects on first use, so the gateway starts (and answers 503) while the service is down.
    pub fn connect_lazy(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            channel: lazy_channel(url)?,
        })
    }

    /// A client that calls as the holder of `token`.
    pub fn with_token(&self, token: &str) -> Result<MembersClient, Problem> {
        Ok(MembersServiceClient::with_interceptor(
            self.channel.clone(),
            injector(token)?,
        ))
    }

    /// Whether the service answers its health check with SERVING (within one second).
    pub async fn serving(&self) -> bool {
        serving(&self.channel, MEMBERS_SERVICE).await
    }
}

/// A lazily connected channel to the declarations service, shared by every request.
#[derive(Clone, Debug)]
pub struct Declarations {
    channel: Channel,
}

impl Declarations {
    /// Connects on first use, so the gateway starts (and answers 503) while the service is down.
    pub fn connect_lazy(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            channel: lazy_channel(url)?,
        })
    }

    /// A client that calls as the holder of `token`; it carries evidence files both ways.
    pub fn with_token(&self, token: &str) -> Result<DeclarationsClient, Problem> {
        Ok(
            DeclarationsServiceClient::with_interceptor(self.channel.clone(), injector(token)?)
                .max_decoding_message_size(MAX_DECLARATIONS_MESSAGE)
                .max_encoding_message_size(MAX_DECLARATIONS_MESSAGE),
        )
    }

    /// Whether the service answers its health check with SERVING (within one second).
    pub async fn serving(&self) -> bool {
        serving(&self.channel, DECLARATIONS_SERVICE).await
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
        Ok(Self {
            channel: lazy_channel(url)?,
        })
    }

    /// A client that calls as the holder of `token`.
    pub fn with_token(&self, token: &str) -> Result<EvaluationsClient, Problem> {
        Ok(EvaluationsServiceClient::with_interceptor(
            self.channel.clone(),
            injector(token)?,
        ))
    }

    /// Whether the service answers its health check with SERVING (within one second).
    pub async fn serving(&self) -> bool {
        serving(&self.channel, EVALUATIONS_SERVICE).await
    }
}

/// The grading service client type handed to handlers.
pub type GradingClient = GradingServiceClient<InterceptedService<Channel, TraceInjector>>;

/// A lazily connected channel to the grading service, shared by every request.
#[derive(Clone, Debug)]
pub struct Grading {
    channel: Channel,
}

impl Grading {
    /// Connects on first use, so the gateway starts (and answers 503) while the service is down.
    pub fn connect_lazy(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            channel: lazy_channel(url)?,
        })
    }

    /// A client that calls as the holder of `token`.
    pub fn with_token(&self, token: &str) -> Result<GradingClient, Problem> {
        Ok(GradingServiceClient::with_interceptor(
            self.channel.clone(),
            injector(token)?,
        ))
    }

    /// Whether the service answers its health check with SERVING (within one second).
    pub async fn serving(&self) -> bool {
        serving(&self.channel, GRADING_SERVICE).await
    }
}
