//! The state every handler and middleware shares: clients, Redis, keys and limits.

use crate::clients::{
    Declarations, DeclarationsClient, Evaluations, EvaluationsClient, Grading, GradingClient,
    Members, MembersClient,
};
use crate::problem::Problem;
use crate::public_url::PublicUrl;
use crate::ratelimit::Backoff;
use jifen_platform::auth::{TokenSigner, TokenVerifier};
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::Duration;

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState::new`] takes.
pub struct StateParts {
    pub members: Members,
    pub declarations: Declarations,
    pub evaluations: Evaluations,
    pub grading: Grading,
    pub redis: ConnectionManager,
    pub redis_prefix: String,
    pub signer: TokenSigner,
    pub verifier: TokenVerifier,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub rate_limit_per_minute: u32,
    /// Code exchanges per client address per minute, successful or not (0 = off).
    pub code_exchanges_per_minute: u32,
    /// Failed code exchanges per client address.
    pub code_failures: Backoff,
    /// Failed logins per account (normalized username).
    pub login_account_failures: Backoff,
    /// Failed logins per client address.
    pub login_address_failures: Backoff,
    pub body_limit: usize,
    /// Largest evidence file (`POST /api/v1/evidence`).
    pub evidence_max_bytes: usize,
    /// Proxies in front of the gateway that append to `x-forwarded-for` (0: the peer address).
    pub trusted_proxies: u8,
    /// Lifetime of a cached dashboard answer (zero: no cache).
    pub dashboard_cache_ttl: Duration,
    /// Where people reach the gateway (`JIFEN_PUBLIC_URL`): the invitation slips' links.
    pub public_url: PublicUrl,
}

struct Inner {
    parts: StateParts,
    /// Fires when the gateway starts draining before a stop: `/readyz` fails from then on.
    draining: tokio_util::sync::CancellationToken,
}

impl AppState {
    pub fn new(parts: StateParts) -> Self {
        Self(Arc::new(Inner {
            parts,
            draining: tokio_util::sync::CancellationToken::new(),
        }))
    }

    /// Cancelled once the gateway drains before stopping (`/readyz` answers 503).
    pub fn draining(&self) -> &tokio_util::sync::CancellationToken {
        &self.0.draining
    }

    fn p(&self) -> &StateParts {
        &self.0.parts
    }

    pub fn members(&self) -> &Members {
        &self.p().members
    }

    pub fn declarations(&self) -> &Declarations {
        &self.p().declarations
    }

    /// A declarations client calling as the holder of `token`.
    pub fn declarations_as(&self, token: &str) -> Result<DeclarationsClient, Problem> {
        self.p().declarations.with_token(token)
    }

    /// A members client calling as the gateway itself (service role).
    pub fn members_as_gateway(&self) -> Result<MembersClient, Problem> {
        let token = self
            .p()
            .signer
            .service_token("gateway")
            .map_err(|e| Problem::internal(&e))?;
        self.p().members.with_token(&token)
    }

    pub fn evaluations(&self) -> &Evaluations {
        &self.p().evaluations
    }

    /// An evaluations client calling as the gateway itself (service role).
    pub fn evaluations_as_gateway(&self) -> Result<EvaluationsClient, Problem> {
        let token = self
            .p()
            .signer
            .service_token("gateway")
            .map_err(|e| Problem::internal(&e))?;
        self.p().evaluations.with_token(&token)
    }

    pub fn grading(&self) -> &Grading {
        &self.p().grading
    }

    /// A grading client calling as the holder of `token`.
    pub fn grading_as(&self, token: &str) -> Result<GradingClient, Problem> {
        self.p().grading.with_token(token)
    }

    /// A Redis connection (a cheap clone of the multiplexed manager).
    pub fn redis(&self) -> ConnectionManager {
        self.p().redis.clone()
    }

    /// `<prefix><part>:<part>…`: every Redis key the gateway uses goes through here.
    pub fn redis_key(&self, parts: &[&str]) -> String {
        format!("{}{}", self.p().redis_prefix, parts.join(":"))
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.p().signer
    }

    pub fn verifier(&self) -> &TokenVerifier {
        &self.p().verifier
    }

    pub fn access_ttl(&self) -> Duration {
        self.p().access_ttl
    }

    pub fn refresh_ttl(&self) -> Duration {
        self.p().refresh_ttl
    }

    pub fn rate_limit_per_minute(&self) -> u32 {
        self.p().rate_limit_per_minute
    }

    pub fn code_exchanges_per_minute(&self) -> u32 {
        self.p().code_exchanges_per_minute
    }

    pub fn code_failures(&self) -> Backoff {
        self.p().code_failures
    }

    pub fn login_account_failures(&self) -> Backoff {
        self.p().login_account_failures
    }

    pub fn login_address_failures(&self) -> Backoff {
        self.p().login_address_failures
    }

    pub fn body_limit(&self) -> usize {
        self.p().body_limit
    }

    /// Largest evidence file.
    pub fn evidence_max_bytes(&self) -> usize {
        self.p().evidence_max_bytes
    }

    /// Largest request body of `path`: the evidence upload takes a file plus its multipart
    /// envelope; every other route the configured body limit.
    pub fn body_limit_for(&self, path: &str) -> usize {
        if path == crate::routes::evidence::UPLOAD_PATH {
            evidence_request_limit(self.evidence_max_bytes()).max(self.body_limit())
        } else {
            self.body_limit()
        }
    }

    /// Lifetime of a cached dashboard answer (zero: no cache).
    pub fn dashboard_cache_ttl(&self) -> Duration {
        self.p().dashboard_cache_ttl
    }

    /// How many proxies' `x-forwarded-for` entries to trust ([`crate::ratelimit::client_ip`]).
    pub fn trusted_proxies(&self) -> u8 {
        self.p().trusted_proxies
    }

    /// Where people reach the gateway (`JIFEN_PUBLIC_URL`, or the loopback address it listens on).
    pub fn public_url(&self) -> &PublicUrl {
        &self.p().public_url
    }
}

/// Room for the multipart envelope (boundaries, part headers) around an evidence file.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The body limit of the evidence upload for files of at most `max_file` bytes.
pub fn evidence_request_limit(max_file: usize) -> usize {
    max_file.saturating_add(MULTIPART_OVERHEAD)
}
