//! jifen-gateway: the public HTTP/JSON API (shared/API.md) in front of the gRPC services.
//!
//! It owns nothing durable. It verifies JWTs and applies coarse role gates ([`auth`]), turns
//! REST calls into gRPC calls that carry the caller's token and trace ([`clients`], [`convert`]),
//! answers every error as problem+json ([`problem`]), limits callers ([`ratelimit`]), replays
//! idempotent retries ([`idempotency`]) and publishes its OpenAPI document ([`openapi`]). Redis
//! holds refresh tokens, rate-limit windows and idempotent answers.

pub mod auth;
pub mod clients;
pub mod convert;
pub mod extract;
pub mod idempotency;
pub mod observe;
pub mod openapi;
pub mod problem;
pub mod qr;
pub mod ratelimit;
pub mod routes;
pub mod state;

use anyhow::Context as _;
use jifen_platform::auth::{TokenSigner, TokenVerifier};
use jifen_platform::settings::{ConfigError, CoreSettings, parse_or, var_or};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Default largest evidence file: 10 MiB.
pub const DEFAULT_EVIDENCE_MAX_BYTES: usize = 10 * 1024 * 1024;
/// The largest evidence limit that may be configured (the declarations service's own ceiling).
pub const MAX_EVIDENCE_BYTES: usize = 24 * 1024 * 1024;

/// Default lifetime of a cached dashboard answer, in seconds.
pub const DEFAULT_DASHBOARD_CACHE_TTL_SECS: u64 = 60;

/// Gateway configuration, parsed once from the environment ([`Settings::from_env`]) or built in
/// code by tests.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `JIFEN_GATEWAY_ADDR` (default `127.0.0.1:8080`; port 0 picks a free port).
    pub listen: String,
    /// `JIFEN_MEMBERS_URL` (default `http://127.0.0.1:15051`).
    pub members_url: String,
    /// `JIFEN_DECLARATIONS_URL` (default `http://127.0.0.1:15052`).
    pub declarations_url: String,
    /// `JIFEN_EVALUATIONS_URL` (default `http://127.0.0.1:15053`).
    pub evaluations_url: String,
    /// `JIFEN_GRADING_URL` (default `http://127.0.0.1:15054`).
    pub grading_url: String,
    /// `JIFEN_REDIS_URL`.
    pub redis_url: String,
    /// Prepended to every Redis key (`JIFEN_REDIS_PREFIX`, default `jifen:`).
    pub redis_prefix: String,
    /// Signs access tokens: `<JIFEN_JWT_KEYS_DIR>/<JIFEN_JWT_SIGNING_KID>.key.pem` (kid default `dev`).
    pub signer: TokenSigner,
    /// Every `<kid>.pub.pem` of `JIFEN_JWT_KEYS_DIR`.
    pub verifier: TokenVerifier,
    /// Access token lifetime (`JIFEN_ACCESS_TTL_SECS`, default 900).
    pub access_ttl: Duration,
    /// Refresh token lifetime (`JIFEN_REFRESH_TTL_SECS`, default 30 days).
    pub refresh_ttl: Duration,
    /// Requests per caller per minute (`JIFEN_RATE_LIMIT_PER_MINUTE`, default 600; 0 = off).
    pub rate_limit_per_minute: u32,
    /// Login attempts per client IP and username per minute (`JIFEN_LOGIN_ATTEMPTS_PER_MINUTE`,
    /// default 20; 0 = off).
    pub login_attempts_per_minute: u32,
    /// Largest request body in bytes (`JIFEN_BODY_LIMIT_BYTES`, default 1 MiB).
    pub body_limit: usize,
    /// Largest evidence file accepted by `POST /api/v1/evidence` (`JIFEN_EVIDENCE_MAX_BYTES`,
    /// default 10 MiB, at most 24 MiB; the declarations service reads the same variable).
    pub evidence_max_bytes: usize,
    /// Take the client IP from `x-forwarded-for` (`JIFEN_TRUST_FORWARDED_FOR`, default false):
    /// only behind an ingress that sets it.
    pub trust_forwarded_for: bool,
    /// How long a dashboard answer is cached in Redis (`JIFEN_DASHBOARD_CACHE_TTL_SECS`, default
    /// 60; 0 = no cache).
    pub dashboard_cache_ttl: Duration,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; tracing export is off when unset.
    pub otlp_endpoint: Option<String>,
    /// After SIGTERM, how long the gateway keeps serving while `/readyz` fails
    /// (`JIFEN_SHUTDOWN_DRAIN_SECS`, default 5).
    pub shutdown_drain: Duration,
}

impl Settings {
    /// From the environment, with local defaults; keys from `JIFEN_JWT_KEYS_DIR`.
    pub fn from_env() -> anyhow::Result<Self> {
        let core = CoreSettings::from_env()?;
        let keys = Path::new(&core.jwt_keys_dir);
        let kid = var_or("JIFEN_JWT_SIGNING_KID", "dev")?;
        let signer = TokenSigner::from_dir(keys, &kid).with_context(|| {
            format!(
                "signing key {kid} in {} (run `jifen-gateway gen-keys`)",
                keys.display()
            )
        })?;
        let verifier = TokenVerifier::from_dir(keys)
            .with_context(|| format!("public keys in {}", keys.display()))?;
        let settings = Self {
            listen: var_or("JIFEN_GATEWAY_ADDR", "127.0.0.1:8080")?,
            members_url: var_or("JIFEN_MEMBERS_URL", "http://127.0.0.1:15051")?,
            declarations_url: var_or("JIFEN_DECLARATIONS_URL", "http://127.0.0.1:15052")?,
            evaluations_url: var_or("JIFEN_EVALUATIONS_URL", "http://127.0.0.1:15053")?,
            grading_url: var_or("JIFEN_GRADING_URL", "http://127.0.0.1:15054")?,
            redis_url: core.redis_url,
            redis_prefix: var_or("JIFEN_REDIS_PREFIX", "jifen:")?,
            signer,
            verifier,
            access_ttl: Duration::from_secs(parse_or("JIFEN_ACCESS_TTL_SECS", 900u64)?),
            refresh_ttl: Duration::from_secs(parse_or(
                "JIFEN_REFRESH_TTL_SECS",
                30 * 24 * 3600u64,
            )?),
            rate_limit_per_minute: parse_or("JIFEN_RATE_LIMIT_PER_MINUTE", 600u32)?,
            login_attempts_per_minute: parse_or("JIFEN_LOGIN_ATTEMPTS_PER_MINUTE", 20u32)?,
            body_limit: parse_or("JIFEN_BODY_LIMIT_BYTES", 1024 * 1024usize)?,
            evidence_max_bytes: parse_or("JIFEN_EVIDENCE_MAX_BYTES", DEFAULT_EVIDENCE_MAX_BYTES)?,
            trust_forwarded_for: parse_or("JIFEN_TRUST_FORWARDED_FOR", false)?,
            dashboard_cache_ttl: Duration::from_secs(parse_or(
                "JIFEN_DASHBOARD_CACHE_TTL_SECS",
                DEFAULT_DASHBOARD_CACHE_TTL_SECS,
            )?),
            otlp_endpoint: core.otlp_endpoint,
            shutdown_drain: core.shutdown_drain,
        };
        settings.validate()?;
        Ok(settings)
    }

    /// Local defaults around the given keys (tests adjust fields from here).
    pub fn with_keys(signer: TokenSigner, verifier: TokenVerifier) -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            members_url: "http://127.0.0.1:15051".into(),
            declarations_url: "http://127.0.0.1:15052".into(),
            evaluations_url: "http://127.0.0.1:15053".into(),
            grading_url: "http://127.0.0.1:15054".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "jifen:".into(),
            signer,
            verifier,
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            rate_limit_per_minute: 600,
            login_attempts_per_minute: 20,
            body_limit: 1024 * 1024,
            evidence_max_bytes: DEFAULT_EVIDENCE_MAX_BYTES,
            trust_forwarded_for: false,
            dashboard_cache_ttl: Duration::from_secs(DEFAULT_DASHBOARD_CACHE_TTL_SECS),
            otlp_endpoint: None,
            shutdown_drain: Duration::ZERO,
        }
    }

    /// Checks the values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |name: &str, message: &str| {
            Err(ConfigError {
                name: name.into(),
                message: message.into(),
            })
        };
        if self.access_ttl.is_zero() {
            return bad("JIFEN_ACCESS_TTL_SECS", "must be positive");
        }
        if self.refresh_ttl.is_zero() {
            return bad("JIFEN_REFRESH_TTL_SECS", "must be positive");
        }
        if self.body_limit == 0 {
            return bad("JIFEN_BODY_LIMIT_BYTES", "must be positive");
        }
        if !(1..=MAX_EVIDENCE_BYTES).contains(&self.evidence_max_bytes) {
            return bad(
                "JIFEN_EVIDENCE_MAX_BYTES",
                &format!("must be from 1 to {MAX_EVIDENCE_BYTES}"),
            );
        }
        let is_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if !is_url(&self.members_url) {
            return bad("JIFEN_MEMBERS_URL", "must be an http:// or https:// URL");
        }
        if !is_url(&self.declarations_url) {
            return bad(
                "JIFEN_DECLARATIONS_URL",
                "must be an http:// or https:// URL",
            );
        }
        if !is_url(&self.evaluations_url) {
            return bad(
                "JIFEN_EVALUATIONS_URL",
                "must be an http:// or https:// URL",
            );
        }
        if !is_url(&self.grading_url) {
            return bad("JIFEN_GRADING_URL", "must be an http:// or https:// URL");
        }
        Ok(())
    }
}

/// A built gateway: the listener is bound, the clients are set up (they connect lazily, so the
/// gateway starts while a dependency is down and `/readyz` says so).
pub struct Application {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    router: axum::Router,
    state: state::AppState,
    shutdown_drain: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        // The recorder first, so that nothing recorded before the first scrape is lost.
        let _ = jifen_platform::ops::prometheus();
        observe::describe();
        let client = redis::Client::open(settings.redis_url.as_str()).context("JIFEN_REDIS_URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .context("Redis connection manager")?;
        let members =
            clients::Members::connect_lazy(&settings.members_url).context("JIFEN_MEMBERS_URL")?;
        let declarations = clients::Declarations::connect_lazy(&settings.declarations_url)
            .context("JIFEN_DECLARATIONS_URL")?;
        let evaluations = clients::Evaluations::connect_lazy(&settings.evaluations_url)
            .context("JIFEN_EVALUATIONS_URL")?;
        let grading =
            clients::Grading::connect_lazy(&settings.grading_url).context("JIFEN_GRADING_URL")?;
        let state = state::AppState::new(state::StateParts {
            members,
            declarations,
            evaluations,
            grading,
            redis,
            redis_prefix: settings.redis_prefix,
            signer: settings.signer,
            verifier: settings.verifier,
            access_ttl: settings.access_ttl,
            refresh_ttl: settings.refresh_ttl,
            rate_limit_per_minute: settings.rate_limit_per_minute,
            login_attempts_per_minute: settings.login_attempts_per_minute,
            body_limit: settings.body_limit,
            evidence_max_bytes: settings.evidence_max_bytes,
            trust_forwarded_for: settings.trust_forwarded_for,
            dashboard_cache_ttl: settings.dashboard_cache_ttl,
        });
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            router: routes::router(state.clone()),
            state,
            shutdown_drain: settings.shutdown_drain,
        })
    }

    /// The bound address (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `cancel` fires; then `/readyz` fails while requests are still served for
    /// the drain period (`JIFEN_SHUTDOWN_DRAIN_SECS`), and the server stops accepting and
    /// finishes the requests in flight.
    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = %self.addr, "gateway listening");
        let lifecycle = jifen_platform::shutdown::Lifecycle::new(&cancel, self.shutdown_drain);
        let (draining, stop) = (lifecycle.draining().clone(), lifecycle.stop().clone());
        let state = self.state;
        tokio::spawn(async move {
            draining.cancelled().await;
            state.draining().cancel();
        });
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        // However it ended, the lifecycle's watcher ends too.
        lifecycle.stop().cancel();
        Ok(served?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings() -> Settings {
        let (private, public) = jifen_platform::auth::generate_key_pair().unwrap();
        Settings::with_keys(
            TokenSigner::from_pem("dev", &private).unwrap(),
            TokenVerifier::from_pems([("dev", public.as_str())]).unwrap(),
        )
    }

    /// Spoils one setting.
    type Spoil = fn(&mut Settings);

    #[test]
    fn every_service_url_is_validated() {
        let good = settings();
        assert!(good.validate().is_ok());
        assert_eq!(good.grading_url, "http://127.0.0.1:15054");
        let cases: [(&str, Spoil); 4] = [
            ("JIFEN_MEMBERS_URL", |s| {
                s.members_url = "127.0.0.1:1".into()
            }),
            ("JIFEN_DECLARATIONS_URL", |s| {
                s.declarations_url = "ftp://x".into();
            }),
            ("JIFEN_EVALUATIONS_URL", |s| {
                s.evaluations_url = String::new()
            }),
            ("JIFEN_GRADING_URL", |s| {
                s.grading_url = "grading:15054".into()
            }),
        ];
        for (name, spoil) in cases {
            let mut s = good.clone();
            spoil(&mut s);
            assert_eq!(s.validate().unwrap_err().name, name);
        }
    }
}
