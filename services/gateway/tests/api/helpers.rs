//! `spawn_app()`: real members, declarations, evaluations and grading services (each with a fresh
//! database, sharing one unique bus prefix so the replicas and projections are fed) and the
//! gateway (unique Redis prefix), all in-process on port 0, with generated JWT keys; and HTTP
//! helpers. The declarations and grading services share one manual clock ([`TestApp::clock`])
//! that starts at [`START`].
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use jifen_gateway::Settings;
use jifen_platform::auth::{
    Principal, RoleClaim, RoleName, TokenSigner, TokenVerifier, generate_key_pair,
};
use rand::RngCore as _;
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};
use std::sync::Once;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const ADMIN_PASSWORD: &str = "jifen-admin";

/// Where the declarations service's manual clock starts: 2026-03-10 10:00 in Shanghai, so March
/// 2026 is open and February closed (its deadline was March 5).
pub const START: &str = "2026-03-10T02:00:00Z";

/// The month open at [`START`].
pub const MONTH: &str = "2026-03";

/// How long a test waits for an event to reach the declarations service's replica.
pub const REPLICA_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a test waits for events to reach the grading service's projections (generous: the
/// whole suite shares two cores with parallel tests).
pub const PROJECTION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(90);

pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The gateway's settings (a test may start a second gateway in front of the same services).
    pub settings: Settings,
    pub client: reqwest::Client,
    /// The bootstrap admin's access token.
    pub admin_token: String,
    /// The root organization's id.
    pub root_id: String,
    /// Signs tokens the way the gateway does (for evaluator tokens etc.).
    pub signer: TokenSigner,
    pub redis_prefix: String,
    /// The clock of the declarations and grading services (manual, shared; `set`/`advance` it).
    pub clock: jifen_declarations::Clock,
    /// The evaluations service's database (to wait for its replica).
    pub evaluations_db: sea_orm::DatabaseConnection,
    /// The grading service's database (its projections).
    pub grading_db: sea_orm::DatabaseConnection,
    /// The declarations service's database.
    pub declarations_db: sea_orm::DatabaseConnection,
    bus: jifen_eventbus::BusConfig,
    cancel: CancellationToken,
    _keys: tempfile::TempDir,
    _evidence: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
        // Quorum queues are heavy; a test's leftovers would slow the shared broker down.
        let mut consumers = jifen_evaluations::events::CONSUMERS.to_vec();
        consumers.extend([
            "declarations.members-replica",
            "declarations.final-grades",
            "grading.projections",
        ]);
        jifen_eventbus::delete_topology_blocking(&self.bus, &consumers);
    }
}

fn init_telemetry() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Installs the W3C propagator; the guard is leaked on purpose (process-wide).
        if let Ok(guard) = jifen_platform::telemetry::init("jifen-gateway-tests", None) {
            std::mem::forget(guard);
        }
    });
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts every service and the gateway; `adjust` may change the gateway settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    init_telemetry();
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = generate_key_pair().unwrap();
    std::fs::write(keys.path().join("dev.key.pem"), &private).unwrap();
    std::fs::write(keys.path().join("dev.pub.pem"), &public).unwrap();
    let signer = TokenSigner::from_dir(keys.path(), "dev").unwrap();
    let verifier = TokenVerifier::from_dir(keys.path()).unwrap();

    let db = jifen_testkit::fresh_database("gw").await.unwrap();
    let bus = jifen_eventbus::BusConfig::new(jifen_testkit::amqp_url())
        .with_prefix(&jifen_testkit::unique_prefix("gw"));
    // The evaluations service first: its queues exist before the members service publishes.
    let eval_db = jifen_testkit::fresh_database("gwev").await.unwrap();
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
        .await
        .unwrap();
    let evaluations_url = format!("http://{}", evaluations.grpc_addr());
    let evaluations_db = evaluations.db().clone();
    let bus_for_cleanup = bus.clone();

    // The grading service too, on the clock the declarations service gets (a clone shares the
    // instant): its projections queue is bound before anything is published.
    let clock = jifen_declarations::Clock::manual(START.parse().unwrap());
    let grading_database = jifen_testkit::fresh_database("gwgr").await.unwrap();
    let mut grading_settings = jifen_grading::Settings::for_tests(
        grading_database.server_url.clone(),
        grading_database.name.clone(),
        bus.clone(),
        verifier.clone(),
    );
    grading_settings.clock = clock.clone();
    let grading = jifen_grading::Application::build(grading_settings)
        .await
        .unwrap();
    let grading_url = format!("http://{}", grading.grpc_addr());
    let grading_db = grading.db().clone();

    let mut pii = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut pii);
    let members_settings = jifen_members::Settings::for_tests(
        db.server_url.clone(),
        db.name.clone(),
        bus.clone(),
        verifier.clone(),
        pii,
    );
    let members = jifen_members::Application::build(members_settings)
        .await
        .unwrap();
    let members_url = format!("http://{}", members.grpc_addr());

    // Built (its replica queue bound) before the members service runs its outbox relay, so it
    // sees every members event from the root organization on.
    let declarations_db = jifen_testkit::fresh_database("gwd").await.unwrap();
    let evidence = tempfile::tempdir().unwrap();
    let mut declarations_settings = jifen_declarations::Settings::for_tests(
        declarations_db.server_url.clone(),
        declarations_db.name.clone(),
        bus,
        verifier.clone(),
        evidence.path(),
    );
    declarations_settings.clock = clock.clone();
    let declarations = jifen_declarations::Application::build(declarations_settings)
        .await
        .unwrap();
    let declarations_url = format!("http://{}", declarations.grpc_addr());
    let declarations_conn = declarations.db().clone();

    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if let Err(e) = members.run_until_stopped(cancel).await {
                eprintln!("members service stopped: {e:#}");
            }
        }
    });
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if let Err(e) = declarations.run_until_stopped(cancel).await {
                eprintln!("declarations service stopped: {e:#}");
            }
        }
    });
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if let Err(e) = evaluations.run_until_stopped(cancel).await {
                eprintln!("evaluations service stopped: {e:#}");
            }
        }
    });
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if let Err(e) = grading.run_until_stopped(cancel).await {
                eprintln!("grading service stopped: {e:#}");
            }
        }
    });

    let redis_prefix = format!("{}:", jifen_testkit::unique_prefix("gw"));
    let mut settings = Settings::with_keys(signer.clone(), verifier);
    settings.listen = "127.0.0.1:0".into();
    settings.members_url = members_url;
    settings.declarations_url = declarations_url;
    settings.evaluations_url = evaluations_url;
    settings.grading_url = grading_url;
    settings.redis_url = jifen_testkit::redis_url();
    settings.redis_prefix = redis_prefix.clone();
    adjust(&mut settings);
    let gateway_settings = settings.clone();
    let gateway = jifen_gateway::Application::build(settings).await.unwrap();
    let base = format!("http://{}", gateway.addr());
    tokio::spawn({
        let cancel = cancel.clone();
        async move { gateway.run_until_stopped(cancel).await.unwrap() }
    });

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut app = TestApp {
        base,
        settings: gateway_settings,
        client,
        admin_token: String::new(),
        root_id: String::new(),
        signer,
        redis_prefix,
        clock,
        evaluations_db,
        grading_db,
        declarations_db: declarations_conn,
        bus: bus_for_cleanup,
        cancel,
        _keys: keys,
        _evidence: evidence,
    };
    app.admin_token = app.login("admin", ADMIN_PASSWORD).await;
    let (status, me) = app.get("/api/v1/me", Some(&app.admin_token)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    app.root_id = me["roles"][0]["org_id"].as_str().unwrap().to_owned();
    app
}

/// A valid (checksummed) 18-character ID card number with a random sequence.
pub fn id_card() -> String {
    let mut rng = rand::rngs::OsRng;
    let mut body = format!(
        "110101199{}0{}1{}",
        rng.next_u32() % 10,
        1 + rng.next_u32() % 9,
        rng.next_u32() % 10
    );
    body.push_str(&format!("{:03}", rng.next_u32() % 1000));
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    body.push(check);
    body
}

/// A valid mobile number.
pub fn phone() -> String {
    format!("138{:08}", rand::rngs::OsRng.next_u32() % 100_000_000)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; answers the status and the JSON body (`Null` when empty or not JSON).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let r = self.raw(method, path, token, body, &[]).await;
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Sends a request with extra headers and answers the raw response.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(serde_json::to_vec(b).unwrap());
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, token, Some(body)).await
    }

    /// Polls `GET path` as the admin until it answers something other than 404: the
    /// declarations service's replica has caught up with the members service.
    pub async fn wait_replicated(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + REPLICA_DEADLINE;
        loop {
            let (status, body) = self.get(path, Some(&self.admin_token)).await;
            if status != StatusCode::NOT_FOUND {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} still 404 after {REPLICA_DEADLINE:?}: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits until the declarations service knows the member.
    pub async fn wait_member(&self, member_id: &str) {
        self.wait_replicated(&format!("/api/v1/members/{member_id}/declarations/{MONTH}"))
            .await;
    }

    /// Waits until the declarations service knows the organization.
    pub async fn wait_org(&self, org_id: &str) {
        self.wait_replicated(&format!("/api/v1/orgs/{org_id}/declarations"))
            .await;
    }

    /// Waits until the evaluations service's replica holds exactly `n` active members of the
    /// organization (its rounds' rosters are taken from there).
    pub async fn wait_evaluations_replica(&self, org_id: &str, n: usize) {
        let org: Uuid = org_id.parse().unwrap();
        let deadline = tokio::time::Instant::now() + PROJECTION_DEADLINE;
        loop {
            let row = self
                .evaluations_db
                .query_one_raw(sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT count(*) FROM replica_members WHERE org_id = $1 AND status = 'active'",
                    [org.into()],
                ))
                .await
                .unwrap()
                .unwrap();
            let count: i64 = row.try_get_by_index(0).unwrap();
            if count == i64::try_from(n).unwrap() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the evaluations replica holds {count} active members of {org_id}, not {n}, after {PROJECTION_DEADLINE:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Polls the member's ledger of `year` as the admin until the grading service knows the
    /// member and holds at least `entries` entries; answers the ledger.
    pub async fn wait_ledger(&self, member_id: &str, year: i32, entries: usize) -> Value {
        let path = format!("/api/v1/members/{member_id}/ledger?year={year}");
        let deadline = tokio::time::Instant::now() + PROJECTION_DEADLINE;
        loop {
            let (status, body) = self.get(&path, Some(&self.admin_token)).await;
            if status == StatusCode::OK
                && body["entries"]
                    .as_array()
                    .is_some_and(|e| e.len() >= entries)
            {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: no {entries} entries after {PROJECTION_DEADLINE:?}: {status} {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                None,
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {username}: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates an organization as the admin; answers its JSON.
    pub async fn org(&self, parent_id: &str, name: &str, kind: &str) -> Value {
        let body = json!({"parent_id": parent_id, "name": name, "kind": kind, "unit_type": "government_organ"});
        let (status, org) = self
            .post("/api/v1/orgs", Some(&self.admin_token), &body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{org}");
        org
    }

    /// Creates a member as the admin, with a login account when `username` is given (password
    /// `password-<username>`).
    pub async fn member(&self, org_id: &str, name: &str, username: Option<&str>) -> Value {
        let mut body = json!({
            "org_id": org_id, "name": name, "gender": "female", "category": "full",
            "joined_on": "2015-07-01", "phone": phone(), "id_card": id_card(),
        });
        if let Some(u) = username {
            body["username"] = json!(u);
            body["password"] = json!(format!("password-{u}"));
        }
        let (status, member) = self
            .post("/api/v1/members", Some(&self.admin_token), &body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{member}");
        member
    }

    /// A token signed with the gateway's key for an arbitrary principal.
    pub fn token_for(&self, role: RoleName, org_id: Uuid, org_path: &str) -> String {
        let principal = Principal {
            subject: format!("test:{}", Uuid::now_v7()),
            username: None,
            member_id: None,
            roles: vec![RoleClaim {
                role,
                org_id,
                org_path: org_path.into(),
            }],
            round_id: if role == RoleName::Evaluator {
                Some(Uuid::now_v7())
            } else {
                None
            },
        };
        self.signer.sign(&principal, 300).unwrap()
    }
}

/// Asserts a problem+json answer with `status`, `code` and (when given) the first field.
pub fn assert_problem(
    status: StatusCode,
    body: &Value,
    want_status: u16,
    want_code: &str,
    want_field: Option<&str>,
) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    for key in ["type", "title", "status", "detail", "code", "errors"] {
        assert!(body.get(key).is_some(), "problem without {key}: {body}");
    }
    assert_eq!(body["status"], want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    if let Some(field) = want_field {
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "expected field {field} in {body}");
    }
}

/// Asserts that `value` is an object with exactly `keys` (plus `optional` ones).
pub fn assert_keys(value: &Value, keys: &[&str], optional: &[&str]) {
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    for k in keys {
        assert!(obj.contains_key(*k), "missing {k} in {value}");
    }
    for k in obj.keys() {
        assert!(
            keys.contains(&k.as_str()) || optional.contains(&k.as_str()),
            "unexpected {k} in {value}"
        );
    }
}
