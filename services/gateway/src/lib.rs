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
pub mod public_url;
pub mod qr;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod text;

use anyhow::Context as _;
use jifen_platform::auth::{TokenSigner, TokenVerifier};
use jifen_platform::settings::{ConfigError, CoreSettings, parse_or, var_opt, var_or};
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

/// Default ceiling of code exchanges per client address per minute, successful or not.
pub const DEFAULT_CODE_EXCHANGES_PER_MINUTE: u32 = 300;
/// Default failed code exchanges per client address before the back-off starts.
pub const DEFAULT_CODE_FAILURES_PER_ADDRESS: u32 = 20;
/// Default failed logins per account before it is locked.
pub const DEFAULT_LOGIN_FAILURES_PER_ACCOUNT: u32 = 5;
/// Default failed logins per client address before the back-off starts.
pub const DEFAULT_LOGIN_FAILURES_PER_ADDRESS: u32 = 50;

/// `JIFEN_TRUSTED_PROXIES`, or 1 for the deprecated `JIFEN_TRUST_FORWARDED_FOR=true` when it is
/// unset, else 0.
pub fn trusted_proxies(env: &jifen_platform::settings::Env) -> Result<u8, ConfigError> {
    match env.var_opt("JIFEN_TRUSTED_PROXIES")? {
        Some(_) => env.parse_or("JIFEN_TRUSTED_PROXIES", 0u8),
        None => Ok(u8::from(env.parse_or("JIFEN_TRUST_FORWARDED_FOR", false)?)),
    }
}

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
    /// Code exchanges (`POST /api/v1/auth/evaluator`) per client address per minute, successful
    /// or not (`JIFEN_CODE_EXCHANGES_PER_MINUTE`, default 300; 0 = off): far above a meeting room.
    pub code_exchanges_per_minute: u32,
    /// Failed code exchanges per client address before the back-off starts
    /// (`JIFEN_CODE_FAILURES_PER_ADDRESS`, default 20; 0 = off).
    pub code_failures: ratelimit::Backoff,
    /// Failed logins per account before it is locked (`JIFEN_LOGIN_FAILURES_PER_ACCOUNT`,
    /// default 5; 0 = off).
    pub login_account_failures: ratelimit::Backoff,
    /// Failed logins per client address before the back-off starts
    /// (`JIFEN_LOGIN_FAILURES_PER_ADDRESS`, default 50; 0 = off).
    pub login_address_failures: ratelimit::Backoff,
    /// Largest request body in bytes (`JIFEN_BODY_LIMIT_BYTES`, default 1 MiB).
    pub body_limit: usize,
    /// Largest evidence file accepted by `POST /api/v1/evidence` (`JIFEN_EVIDENCE_MAX_BYTES`,
    /// default 10 MiB, at most 24 MiB; the declarations service reads the same variable).
    pub evidence_max_bytes: usize,
    /// Proxies in front of the gateway that append the address they saw to `x-forwarded-for`
    /// (`JIFEN_TRUSTED_PROXIES`, default 0: the peer address is the client). The deprecated
    /// `JIFEN_TRUST_FORWARDED_FOR=true` means 1 when `JIFEN_TRUSTED_PROXIES` is unset.
    pub trusted_proxies: u8,
    /// How long a dashboard answer is cached in Redis (`JIFEN_DASHBOARD_CACHE_TTL_SECS`, default
    /// 60; 0 = no cache).
    pub dashboard_cache_ttl: Duration,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; tracing export is off when unset.
    pub otlp_endpoint: Option<String>,
    /// After SIGTERM, how long the gateway keeps serving while `/readyz` fails
    /// (`JIFEN_SHUTDOWN_DRAIN_SECS`, default 5).
    pub shutdown_drain: Duration,
    /// `JIFEN_PUBLIC_URL`: the address people reach the gateway at (`https://jifen.example.org`),
    /// printed on the invitation slips and in their QR codes (`<public url>/m/e#<code>`).
    /// Unset: `http://<bound address>` when the gateway listens on a loopback address (local
    /// development); required otherwise ([`public_url`], docs/decisions/0012-evaluation-page.md).
    pub public_url: Option<String>,
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
            code_exchanges_per_minute: parse_or(
                "JIFEN_CODE_EXCHANGES_PER_MINUTE",
                DEFAULT_CODE_EXCHANGES_PER_MINUTE,
            )?,
            code_failures: ratelimit::code_backoff(parse_or(
                "JIFEN_CODE_FAILURES_PER_ADDRESS",
                DEFAULT_CODE_FAILURES_PER_ADDRESS,
            )?),
            login_account_failures: ratelimit::login_account_backoff(parse_or(
                "JIFEN_LOGIN_FAILURES_PER_ACCOUNT",
                DEFAULT_LOGIN_FAILURES_PER_ACCOUNT,
            )?),
            login_address_failures: ratelimit::login_address_backoff(parse_or(
                "JIFEN_LOGIN_FAILURES_PER_ADDRESS",
                DEFAULT_LOGIN_FAILURES_PER_ADDRESS,
            )?),
            body_limit: parse_or("JIFEN_BODY_LIMIT_BYTES", 1024 * 1024usize)?,
            evidence_max_bytes: parse_or("JIFEN_EVIDENCE_MAX_BYTES", DEFAULT_EVIDENCE_MAX_BYTES)?,
            trusted_proxies: trusted_proxies(&jifen_platform::settings::Env::process())?,
            dashboard_cache_ttl: Duration::from_secs(parse_or(
                "JIFEN_DASHBOARD_CACHE_TTL_SECS",
                DEFAULT_DASHBOARD_CACHE_TTL_SECS,
            )?),
            otlp_endpoint: core.otlp_endpoint,
            shutdown_drain: core.shutdown_drain,
            public_url: var_opt("JIFEN_PUBLIC_URL")?.filter(|v| !v.trim().is_empty()),
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
            code_exchanges_per_minute: DEFAULT_CODE_EXCHANGES_PER_MINUTE,
            code_failures: ratelimit::code_backoff(DEFAULT_CODE_FAILURES_PER_ADDRESS),
            login_account_failures: ratelimit::login_account_backoff(
                DEFAULT_LOGIN_FAILURES_PER_ACCOUNT,
            ),
            login_address_failures: ratelimit::login_address_backoff(
                DEFAULT_LOGIN_FAILURES_PER_ADDRESS,
            ),
            body_limit: 1024 * 1024,
            evidence_max_bytes: DEFAULT_EVIDENCE_MAX_BYTES,
            trusted_proxies: 0,
            dashboard_cache_ttl: Duration::from_secs(DEFAULT_DASHBOARD_CACHE_TTL_SECS),
            otlp_endpoint: None,
            shutdown_drain: Duration::ZERO,
            public_url: None,
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
        match &self.public_url {
            Some(url) => {
                if let Err(e) = public_url::PublicUrl::parse(url) {
                    return bad("JIFEN_PUBLIC_URL", &e.to_string());
                }
            }
            None if !public_url::is_loopback(&self.listen) => {
                return bad(
                    "JIFEN_PUBLIC_URL",
                    "is required when JIFEN_GATEWAY_ADDR is not a loopback address: the URL \
                     people open (e.g. https://jifen.example.org), printed on invitation slips",
                );
            }
            None => {}
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
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let public_url = match &settings.public_url {
            Some(url) => public_url::PublicUrl::parse(url).context("JIFEN_PUBLIC_URL")?,
            None => public_url::PublicUrl::local(addr),
        };
        tracing::info!(public_url = %public_url, "invitation slips point at this address");
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
            code_exchanges_per_minute: settings.code_exchanges_per_minute,
            code_failures: settings.code_failures,
            login_account_failures: settings.login_account_failures,
            login_address_failures: settings.login_address_failures,
            body_limit: settings.body_limit,
            evidence_max_bytes: settings.evidence_max_bytes,
            trusted_proxies: settings.trusted_proxies,
            dashboard_cache_ttl: settings.dashboard_cache_ttl,
            public_url,
        });
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

    #[test]
    fn trusted_proxies_replace_the_forwarded_for_flag() {
        use jifen_platform::settings::Env;
        let n = |pairs: &[(&str, &str)]| trusted_proxies(&Env::from_pairs(pairs.to_vec()));
        assert_eq!(n(&[]).unwrap(), 0);
        assert_eq!(n(&[("JIFEN_TRUSTED_PROXIES", "2")]).unwrap(), 2);
        // The deprecated flag still means one ingress.
        assert_eq!(n(&[("JIFEN_TRUST_FORWARDED_FOR", "true")]).unwrap(), 1);
        assert_eq!(n(&[("JIFEN_TRUST_FORWARDED_FOR", "false")]).unwrap(), 0);
        // The count wins over the flag.
        assert_eq!(
            n(&[
                ("JIFEN_TRUSTED_PROXIES", "0"),
                ("JIFEN_TRUST_FORWARDED_FOR", "true")
            ])
            .unwrap(),
            0
        );
        assert_eq!(
            n(&[("JIFEN_TRUSTED_PROXIES", "-1")]).unwrap_err().name,
            "JIFEN_TRUSTED_PROXIES"
        );
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

    #[test]
    fn the_public_url_is_validated_and_required_beyond_loopback() {
        let mut s = settings();
        assert!(
            s.public_url.is_none(),
            "loopback: derived from the bound address"
        );
        assert!(s.validate().is_ok());
        s.listen = "0.0.0.0:8080".into();
        assert_eq!(s.validate().unwrap_err().name, "JIFEN_PUBLIC_URL");
        s.public_url = Some("https://jifen.example.org/".into());
        assert!(s.validate().is_ok());
        for bad in [
            "jifen.example.org",
            "https://jifen.example.org/?x",
            "ftp://x",
        ] {
            s.public_url = Some(bad.into());
            assert_eq!(s.validate().unwrap_err().name, "JIFEN_PUBLIC_URL", "{bad}");
        }
    }
}
