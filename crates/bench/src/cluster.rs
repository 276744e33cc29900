//! An in-process cluster for benchmarks: the members, declarations and evaluations services and
//! the gateway on port 0, fresh databases on the local PostgreSQL, a unique bus and Redis prefix,
//! keys made for the run.

use anyhow::Context as _;
use jifen_platform::auth::{TokenSigner, TokenVerifier, generate_key_pair};
use rand::RngCore as _;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

pub struct Cluster {
    pub base: String,
    pub http: reqwest::Client,
    pub admin_token: String,
    pub root_id: String,
    /// Signs tokens for the bench's own principals (members declaring).
    pub signer: TokenSigner,
    /// Verifies the tokens `signer` makes (for the bench's own services).
    pub verifier: TokenVerifier,
    /// The evaluations service's database (to wait for its replica).
    pub evaluations_db: sea_orm::DatabaseConnection,
    pub bus: jifen_eventbus::BusConfig,
    members_url: String,
    evaluations_url: String,
    prefix: String,
    cancel: CancellationToken,
    _evidence: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> anyhow::Result<Self> {
        let cancel = CancellationToken::new();
        let db = jifen_testkit::fresh_database("bench").await?;
        let prefix = jifen_testkit::unique_prefix("bench");
        let (sk, pk) = generate_key_pair()?;
        let verifier = TokenVerifier::from_pems([("bench", pk.as_str())])?;
        let signer = TokenSigner::from_pem("bench", &sk)?;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);

        let members_settings = jifen_members::Settings {
            database_url: db.server_url.clone(),
            database_name: db.name.clone(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bus: jifen_eventbus::BusConfig::new(jifen_testkit::amqp_url()).with_prefix(&prefix),
            verifier: verifier.clone(),
            pii_key: secrecy::SecretSlice::from(key.to_vec()),
            pii_previous_keys: Vec::new(),
            root_org_name: "基准测试工委".into(),
            bootstrap_admin_password: secrecy::SecretString::from("bench-admin-password"),
            otlp_endpoint: None,
            migrate_on_start: true,
            shutdown_drain: std::time::Duration::ZERO,
        };
        // The evaluations service first: its queues exist before the members service publishes.
        let eval_db = jifen_testkit::fresh_database("benchev").await?;
        let bus = jifen_eventbus::BusConfig::new(jifen_testkit::amqp_url()).with_prefix(&prefix);
        let mut code_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut code_key);
        let evaluations =
            jifen_evaluations::Application::build(jifen_evaluations::Settings::for_tests(
                eval_db.server_url.clone(),
                eval_db.name.clone(),
                bus.clone(),
                verifier.clone(),
                code_key,
            ))
            .await?;
        let evaluations_addr = evaluations.grpc_addr();
        let evaluations_db = evaluations.db().clone();
        tokio::spawn(evaluations.run_until_stopped(cancel.clone()));
        let members = jifen_members::Application::build(members_settings).await?;
        let members_addr = members.grpc_addr();
        tokio::spawn(members.run_until_stopped(cancel.clone()));

        let ddb = jifen_testkit::fresh_database("bench_decl").await?;
        let evidence = tempfile::tempdir()?;
        let declarations =
            jifen_declarations::Application::build(jifen_declarations::Settings::for_tests(
                &ddb.server_url,
                &ddb.name,
                jifen_eventbus::BusConfig::new(jifen_testkit::amqp_url()).with_prefix(&prefix),
                verifier.clone(),
                evidence.path(),
            ))
            .await?;
        let declarations_addr = declarations.grpc_addr();
        tokio::spawn(declarations.run_until_stopped(cancel.clone()));

        let members_url = format!("http://{members_addr}");
        let evaluations_url = format!("http://{evaluations_addr}");
        let base = start_gateway(
            gateway_settings(
                &signer,
                &verifier,
                &members_url,
                &format!("http://{declarations_addr}"),
                &evaluations_url,
                &prefix,
            ),
            cancel.clone(),
        )
        .await?;

        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let login: serde_json::Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": "bench-admin-password"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let admin_token = login["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned();
        let me: serde_json::Value = http
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(&admin_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let root_id = me["roles"][0]["org_id"]
            .as_str()
            .context("root org id")?
            .to_owned();
        Ok(Self {
            base,
            http,
            admin_token,
            root_id,
            signer,
            verifier,
            evaluations_db,
            bus,
            members_url,
            evaluations_url,
            prefix,
            cancel,
            _evidence: evidence,
        })
    }

    /// A second gateway, configured as the cluster's, whose declarations calls go to
    /// `declarations_url`; its base URL. It stops with `cancel`.
    pub async fn extra_gateway(
        &self,
        declarations_url: &str,
        cancel: CancellationToken,
    ) -> anyhow::Result<String> {
        start_gateway(
            gateway_settings(
                &self.signer,
                &self.verifier,
                &self.members_url,
                declarations_url,
                &self.evaluations_url,
                &self.prefix,
            ),
            cancel,
        )
        .await
    }

    /// A request to `path` with a JSON body and a bearer token; the answer's JSON.
    pub async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        self.send_at(&self.base, method, token, path, body).await
    }

    /// [`Self::send`] to the gateway at `base`.
    pub async fn send_at(
        &self,
        base: &str,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut request = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!(
                "{path}: {status} {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(response.json().await?)
    }

    /// POST `path` with a JSON body and `token` (none: anonymous); the answer's JSON.
    pub async fn post_as(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let mut rb = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        Ok(rb.send().await?.error_for_status()?.json().await?)
    }

    /// POST `path` with a JSON body as the admin; the answer's JSON.
    pub async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        Ok(self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

/// The gateway settings of the bench: port 0, the run's Redis prefix, no rate limits.
fn gateway_settings(
    signer: &TokenSigner,
    verifier: &TokenVerifier,
    members_url: &str,
    declarations_url: &str,
    evaluations_url: &str,
    prefix: &str,
) -> jifen_gateway::Settings {
    let mut gw = jifen_gateway::Settings::with_keys(signer.clone(), verifier.clone());
    gw.listen = "127.0.0.1:0".into();
    gw.members_url = members_url.to_owned();
    gw.declarations_url = declarations_url.to_owned();
    gw.evaluations_url = evaluations_url.to_owned();
    gw.redis_url = jifen_testkit::redis_url();
    gw.redis_prefix = format!("{prefix}:");
    gw.rate_limit_per_minute = 0;
    gw.code_exchanges_per_minute = 0;
    gw.code_failures.free = 0;
    gw.login_account_failures.free = 0;
    gw.login_address_failures.free = 0;
    gw
}

/// Builds and spawns a gateway until `cancel`; its base URL.
async fn start_gateway(
    settings: jifen_gateway::Settings,
    cancel: CancellationToken,
) -> anyhow::Result<String> {
    let gateway = jifen_gateway::Application::build(settings).await?;
    let base = format!("http://{}", gateway.addr());
    tokio::spawn(gateway.run_until_stopped(cancel));
    Ok(base)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
