//! Starts the services as child processes with their own database, bus prefix, Redis prefix,
//! ports and keys, so end-to-end tests run beside every other test.

use base64::Engine as _;
use jifen_testkit::process::{ReservedPort, ServiceProcess, reserve_port, workspace_binary};
use rand::RngCore as _;
use std::time::{Duration, Instant};

pub struct Cluster {
    pub base: String,
    /// `JIFEN_PUBLIC_URL` of the gateway: what the invitation slips print (here the gateway's
    /// own address, as `make run` sets it).
    pub public_url: String,
    pub http: reqwest::Client,
    /// Held so the child processes live as long as the cluster (they are killed on drop).
    _members: ServiceProcess,
    _declarations: ServiceProcess,
    _evaluations: ServiceProcess,
    /// The grading service: tests kill and restart it ([`Cluster::restart_grading`]).
    pub grading: ServiceProcess,
    pub grading_ops: String,
    /// The grading database (server URL, name) and the declarations one, for SQL checks.
    pub grading_db: (String, String),
    pub declarations_db: (String, String),
    _gateway: ServiceProcess,
    pub env: Vec<(String, String)>,
    pub bus_prefix: String,
    /// Base URLs of the ops endpoints (`/metrics`, `/readyz`) of the four services, by name.
    pub ops: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
    /// The services' ports, held for the cluster's life.
    _ports: Vec<ReservedPort>,
}

pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

impl Cluster {
    pub async fn start(label: &str) -> Self {
        Self::start_with(label, &[]).await
    }

    /// Starts the cluster with `extra` added to (or replacing in) every service's environment.
    pub async fn start_with(label: &str, extra: &[(&str, String)]) -> Self {
        let db = jifen_testkit::fresh_database(label).await.unwrap();
        let decl_db = jifen_testkit::fresh_database(&format!("{label}_decl"))
            .await
            .unwrap();
        let eval_db = jifen_testkit::fresh_database(&format!("{label}_eval"))
            .await
            .unwrap();
        let grading_db = jifen_testkit::fresh_database(&format!("{label}_grad"))
            .await
            .unwrap();
        let mut code_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut code_key);
        let bus_prefix = jifen_testkit::unique_prefix(label);
        let dir = tempfile::tempdir().unwrap();
        jifen_platform::auth::ensure_key_pair(dir.path(), "e2e").unwrap();
        let mut pii = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut pii);
        let ports: Vec<ReservedPort> = (0..9).map(|_| reserve_port().unwrap()).collect();
        let [
            grpc,
            ops,
            gw,
            decl_grpc,
            decl_ops,
            eval_grpc,
            eval_ops,
            grad_grpc,
            grad_ops,
        ]: [u16; 9] = std::array::from_fn(|i| ports[i].port());
        let env: Vec<(String, String)> = [
            ("JIFEN_DATABASE_URL", db.server_url.clone()),
            ("JIFEN_MEMBERS_DATABASE", db.name.clone()),
            ("JIFEN_AMQP_URL", jifen_testkit::amqp_url()),
            ("JIFEN_REDIS_URL", jifen_testkit::redis_url()),
            ("JIFEN_BUS_PREFIX", bus_prefix.clone()),
            ("JIFEN_REDIS_PREFIX", format!("{bus_prefix}:")),
            ("JIFEN_JWT_KEYS_DIR", dir.path().display().to_string()),
            ("JIFEN_JWT_SIGNING_KID", "e2e".into()),
            (
                "JIFEN_PII_KEY",
                base64::engine::general_purpose::STANDARD.encode(pii),
            ),
            ("JIFEN_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
            ("JIFEN_ROOT_ORG_NAME", "市直机关工委".into()),
            ("JIFEN_MEMBERS_GRPC_ADDR", format!("127.0.0.1:{grpc}")),
            ("JIFEN_MEMBERS_OPS_ADDR", format!("127.0.0.1:{ops}")),
            ("JIFEN_MEMBERS_URL", format!("http://127.0.0.1:{grpc}")),
            ("JIFEN_DECLARATIONS_DATABASE", decl_db.name.clone()),
            (
                "JIFEN_DECLARATIONS_GRPC_ADDR",
                format!("127.0.0.1:{decl_grpc}"),
            ),
            (
                "JIFEN_DECLARATIONS_OPS_ADDR",
                format!("127.0.0.1:{decl_ops}"),
            ),
            (
                "JIFEN_DECLARATIONS_URL",
                format!("http://127.0.0.1:{decl_grpc}"),
            ),
            (
                "JIFEN_EVIDENCE_DIR",
                dir.path().join("evidence").display().to_string(),
            ),
            ("JIFEN_EVALUATIONS_DATABASE", eval_db.name.clone()),
            (
                "JIFEN_EVALUATIONS_CODE_KEY",
                base64::engine::general_purpose::STANDARD.encode(code_key),
            ),
            (
                "JIFEN_EVALUATIONS_GRPC_ADDR",
                format!("127.0.0.1:{eval_grpc}"),
            ),
            (
                "JIFEN_EVALUATIONS_OPS_ADDR",
                format!("127.0.0.1:{eval_ops}"),
            ),
            (
                "JIFEN_EVALUATIONS_URL",
                format!("http://127.0.0.1:{eval_grpc}"),
            ),
            ("JIFEN_GRADING_DATABASE", grading_db.name.clone()),
            ("JIFEN_GRADING_GRPC_ADDR", format!("127.0.0.1:{grad_grpc}")),
            ("JIFEN_GRADING_OPS_ADDR", format!("127.0.0.1:{grad_ops}")),
            ("JIFEN_GRADING_URL", format!("http://127.0.0.1:{grad_grpc}")),
            ("JIFEN_GATEWAY_ADDR", format!("127.0.0.1:{gw}")),
            ("JIFEN_PUBLIC_URL", format!("http://127.0.0.1:{gw}/")),
            ("JIFEN_RATE_LIMIT_PER_MINUTE", "100000".into()),
            // A test's evaluators all redeem their codes from 127.0.0.1 within a minute (the
            // limits themselves are tested in the gateway's tests).
            ("JIFEN_CODE_EXCHANGES_PER_MINUTE", "1000".into()),
            ("RUST_LOG", "info".into()),
            ("JIFEN_SHUTDOWN_DRAIN_SECS", "0".into()),
        ]
        .into_iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .chain(extra.iter().cloned())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let http = reqwest::Client::new();
        // The consumers first: their queues are bound before the members service publishes
        // its first event (the root organization).
        let declarations = ServiceProcess::spawn(
            &workspace_binary("jifen-declarations").unwrap(),
            &[],
            &env,
            dir.path().join("declarations.log"),
        )
        .unwrap();
        wait_ready(
            &http,
            &format!("http://127.0.0.1:{decl_ops}/readyz"),
            &declarations,
        )
        .await;
        let evaluations = ServiceProcess::spawn(
            &workspace_binary("jifen-evaluations").unwrap(),
            &[],
            &env,
            dir.path().join("evaluations.log"),
        )
        .unwrap();
        wait_ready(
            &http,
            &format!("http://127.0.0.1:{eval_ops}/readyz"),
            &evaluations,
        )
        .await;
        let grading_ops = format!("http://127.0.0.1:{grad_ops}");
        let grading = spawn_grading(&env, dir.path(), 0);
        wait_ready(&http, &format!("{grading_ops}/readyz"), &grading).await;
        let members = ServiceProcess::spawn(
            &workspace_binary("jifen-members").unwrap(),
            &[],
            &env,
            dir.path().join("members.log"),
        )
        .unwrap();
        let members_ops = format!("http://127.0.0.1:{ops}");
        wait_ready(&http, &format!("{members_ops}/readyz"), &members).await;
        let gateway = ServiceProcess::spawn(
            &workspace_binary("jifen-gateway").unwrap(),
            &[],
            &env,
            dir.path().join("gateway.log"),
        )
        .unwrap();
        let base = format!("http://127.0.0.1:{gw}");
        wait_ready(&http, &format!("{base}/readyz"), &gateway).await;
        let public_url = env
            .iter()
            .find(|(k, _)| k == "JIFEN_PUBLIC_URL")
            .map(|(_, v)| v.trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Self {
            base,
            public_url,
            http,
            _members: members,
            _declarations: declarations,
            _evaluations: evaluations,
            grading,
            grading_ops,
            grading_db: (grading_db.server_url.clone(), grading_db.name.clone()),
            declarations_db: (decl_db.server_url.clone(), decl_db.name.clone()),
            _gateway: gateway,
            env,
            bus_prefix,
            ops: vec![
                ("members", format!("http://127.0.0.1:{ops}")),
                ("declarations", format!("http://127.0.0.1:{decl_ops}")),
                ("evaluations", format!("http://127.0.0.1:{eval_ops}")),
                ("grading", format!("http://127.0.0.1:{grad_ops}")),
            ],
            _dir: dir,
            _ports: ports,
        }
    }

    /// What each process wrote so far (its stdout and stderr), by service.
    pub fn logs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("gateway", self._gateway.log_text()),
            ("members", self._members.log_text()),
            ("declarations", self._declarations.log_text()),
            ("evaluations", self._evaluations.log_text()),
            ("grading", self.grading.log_text()),
        ]
    }

    /// Starts the grading service again (after a test killed it) and waits until it is ready.
    pub async fn restart_grading(&mut self, generation: u32) {
        self.grading = spawn_grading(&self.env, self._dir.path(), generation);
        wait_ready(
            &self.http,
            &format!("{}/readyz", self.grading_ops),
            &self.grading,
        )
        .await;
    }

    /// Runs `jifen-grading <args>` to completion with the cluster's environment.
    pub async fn grading_command(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(workspace_binary("jifen-grading").unwrap())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .unwrap()
    }

    /// Runs `jifen-evaluations <args>` to completion with the cluster's environment.
    pub async fn evaluations_command(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(workspace_binary("jifen-evaluations").unwrap())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .unwrap()
    }

    /// Runs `jifen-declarations <args>` to completion with the cluster's environment.
    pub async fn declarations_command(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(workspace_binary("jifen-declarations").unwrap())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .unwrap()
    }

    /// Runs `jifen-members <args>` to completion with the cluster's environment.
    pub async fn members_command(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(workspace_binary("jifen-members").unwrap())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .unwrap()
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let res = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "login {username}: {}",
            res.text().await.unwrap_or_default()
        );
        let body: serde_json::Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, token, path, body).await
    }

    /// A POST without credentials (the evaluator's code exchange).
    pub async fn post_anonymous(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn put(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::PUT, token, path, body).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let res = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }
}

fn spawn_grading(
    env: &[(String, String)],
    dir: &std::path::Path,
    generation: u32,
) -> ServiceProcess {
    ServiceProcess::spawn(
        &workspace_binary("jifen-grading").unwrap(),
        &[],
        env,
        dir.join(format!("grading-{generation}.log")),
    )
    .unwrap()
}

async fn wait_ready(http: &reqwest::Client, url: &str, process: &ServiceProcess) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} not ready in 60s; log:\n{}",
            process.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
