//! Idempotency, rate limits, request ids, OpenAPI, health and metrics.
#![allow(clippy::unwrap_used)]
use crate::helpers::{assert_problem, id_card, phone, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let branch = app.org(&app.root_id, "六支部", "branch").await;
    let org = branch["id"].as_str().unwrap();
    let body = json!({"org_id": org, "name": "重试", "category": "full", "joined_on": "2019-07-01", "phone": phone(), "id_card": id_card()});
    let key = [("idempotency-key", "create-member-1")];

    let first = app
        .raw(
            Method::POST,
            "/api/v1/members",
            Some(&app.admin_token),
            Some(&body),
            &key,
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    let again = app
        .raw(
            Method::POST,
            "/api/v1/members",
            Some(&app.admin_token),
            Some(&body),
            &key,
        )
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert!(
        again.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);

    let (_, list) = app
        .get(
            &format!("/api/v1/orgs/{org}/members"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "exactly one member: {list}"
    );

    // Same key, another body.
    let mut other = body.clone();
    other["name"] = json!("别人");
    let r = app
        .raw(
            Method::POST,
            "/api/v1/members",
            Some(&app.admin_token),
            Some(&other),
            &key,
        )
        .await;
    let status = r.status();
    assert_problem(
        status,
        &r.json().await.unwrap(),
        422,
        "idempotency_key_reused",
        None,
    );

    // Concurrent duplicates: exactly one acts.
    let body =
        json!({"org_id": org, "name": "并发", "category": "full", "joined_on": "2019-07-01"});
    let key = [("idempotency-key", "concurrent-1")];
    let (a, b) = tokio::join!(
        app.raw(
            Method::POST,
            "/api/v1/members",
            Some(&app.admin_token),
            Some(&body),
            &key
        ),
        app.raw(
            Method::POST,
            "/api/v1/members",
            Some(&app.admin_token),
            Some(&body),
            &key
        ),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert!(
        statuses == [201, 201] || statuses == [201, 409],
        "{statuses:?}"
    );
    let (_, list) = app
        .get(
            &format!("/api/v1/orgs/{org}/members"),
            Some(&app.admin_token),
        )
        .await;
    let named: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "并发")
        .collect();
    assert_eq!(named.len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn callers_over_the_limit_get_429_with_retry_after() {
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 5).await;
    // spawn_app used one anonymous request (login) and one authenticated one (/me).
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = app
            .raw(Method::GET, "/api/v1/me", Some(&app.admin_token), None, &[])
            .await;
        statuses.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            let body: Value = r.json().await.unwrap();
            assert_problem(
                StatusCode::TOO_MANY_REQUESTS,
                &body,
                429,
                "rate_limited",
                None,
            );
            assert_eq!(body["title"], "请求过于频繁");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
    // Health endpoints are never limited.
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_carries_a_request_id() {
    let app = spawn_app().await;
    for (path, token) in [
        ("/healthz", None),
        ("/api/v1/me", Some(app.admin_token.as_str())),
        ("/api/v1/me", None),
        ("/nope", None),
    ] {
        let r = app.raw(Method::GET, path, token, None, &[]).await;
        let id = r
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{path}: no x-request-id"))
            .to_str()
            .unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
    let r = app
        .raw(
            Method::GET,
            "/api/v1/me",
            Some(&app.admin_token),
            None,
            &[("x-request-id", "client-chosen-42")],
        )
        .await;
    assert_eq!(r.headers()["x-request-id"], "client-chosen-42");
    // A traceparent is accepted (the span continues it) and does not disturb the answer.
    let tp = [(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )];
    let r = app
        .raw(Method::GET, "/api/v1/me", Some(&app.admin_token), None, &tp)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Every path of API.md's "Health and identity", "Organizations and members", "The standard" and
/// "Monthly declarations" sections that the gateway serves today, and its extensions.
const API_PATHS: [(&str, &str); 40] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("get", "/api/v1/me"),
    ("post", "/api/v1/orgs"),
    ("get", "/api/v1/orgs/{id}"),
    ("get", "/api/v1/orgs/{id}/children"),
    ("post", "/api/v1/orgs/{id}/roles"),
    ("post", "/api/v1/members"),
    ("get", "/api/v1/members/{id}"),
    ("patch", "/api/v1/members/{id}"),
    ("get", "/api/v1/orgs/{id}/members"),
    ("post", "/api/v1/members/{id}:transfer"),
    ("post", "/api/v1/members/{id}/sanctions"),
    ("post", "/api/v1/members:import"),
    ("get", "/api/v1/members/{id}/sanctions"),
    ("get", "/api/v1/members/{id}/transfers"),
    ("get", "/api/v1/standards/{year}"),
    ("put", "/api/v1/standards/{year}"),
    ("get", "/api/v1/members/{id}/declarations/{month}"),
    ("put", "/api/v1/members/{id}/declarations/{month}"),
    ("post", "/api/v1/declarations/{id}:submit"),
    ("post", "/api/v1/declarations/{id}:review"),
    ("get", "/api/v1/declarations/{id}/history"),
    ("post", "/api/v1/orgs/{id}/declarations:batch-approve"),
    ("get", "/api/v1/orgs/{id}/declarations"),
    ("post", "/api/v1/orgs/{id}/branch-records"),
    ("get", "/api/v1/orgs/{id}/branch-records"),
    ("post", "/api/v1/branch-records/{id}:revoke"),
    ("post", "/api/v1/orgs/{id}/periods/{month}:reopen"),
    ("post", "/api/v1/evidence"),
    ("get", "/api/v1/evidence/{reference}"),
    ("get", "/api/v1/members/{id}/ledger"),
    ("post", "/api/v1/orgs/{id}/gradings/{year}:compute"),
    ("get", "/api/v1/orgs/{id}/gradings/{year}"),
    ("post", "/api/v1/orgs/{id}/gradings/{year}:confirm"),
    ("post", "/api/v1/members/{id}/gradings/{year}/appeals"),
    ("post", "/api/v1/appeals/{id}:decide"),
    ("post", "/api/v1/orgs/{id}/gradings/{year}:finalize"),
];

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_lists_every_api_path() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (method, path) in API_PATHS {
        let op = &doc["paths"][path][method];
        assert!(
            op.is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
        assert!(
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with('2')),
            "{method} {path}: no success answer"
        );
        if path.starts_with("/api/v1/") && !path.starts_with("/api/v1/auth/") {
            assert!(
                op["security"].is_array(),
                "{method} {path}: no bearer security"
            );
            let unauth = &op["responses"]["401"]["content"]["application/problem+json"];
            assert!(unauth.is_object(), "{method} {path}: no 401 problem answer");
        }
    }
    for schema in [
        "Org",
        "Member",
        "Sanction",
        "ImportResult",
        "ProblemBody",
        "TokenResponse",
        "Me",
        "Standard",
        "StandardItem",
        "Declaration",
        "DeclarationLine",
        "DeclarationHistory",
        "BranchRecord",
        "Reopening",
        "Evidence",
        "BatchApproveResult",
        "Ledger",
        "LedgerEntry",
        "LedgerQuarter",
        "Grading",
        "MemberGrade",
        "ConfirmGrading",
        "GradeOverride",
        "Appeal",
        "FileAppeal",
        "DecideAppeal",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
    let kinds = &doc["components"]["schemas"]["OrgKind"]["enum"];
    assert_eq!(
        kinds,
        &json!(["committee", "general_branch", "branch", "group"])
    );
    let statuses = &doc["components"]["schemas"]["DeclarationStatus"]["enum"];
    assert_eq!(
        statuses,
        &json!(["draft", "submitted", "approved", "rejected", "returned"])
    );
    let upload = &doc["paths"]["/api/v1/evidence"]["post"]["requestBody"]["content"];
    assert!(upload["multipart/form-data"].is_object(), "{upload}");
    let points = &doc["components"]["schemas"]["StandardItem"]["properties"]["points"]["type"];
    assert_eq!(points, "number");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Grade"]["enum"],
        json!([
            "excellent",
            "qualified",
            "basically_qualified",
            "unqualified"
        ])
    );
    assert_eq!(
        schemas["GradingStatus"]["enum"],
        json!(["proposed", "confirmed", "final"])
    );
    assert_eq!(
        schemas["AppealStatus"]["enum"],
        json!(["open", "upheld", "changed"])
    );
    assert_eq!(
        schemas["AppealDecision"]["enum"],
        json!(["uphold", "change"])
    );
    assert_eq!(
        schemas["EntrySource"]["enum"],
        json!(["declaration", "branch"])
    );
    assert!(schemas["LedgerEntry"]["properties"]["ref"].is_object());
    assert_eq!(schemas["Ledger"]["properties"]["total"]["type"], "number");
    let year = &doc["paths"]["/api/v1/members/{id}/ledger"]["get"]["parameters"];
    assert!(
        year.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "year" && p["in"] == "query"),
        "{year}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(
        text.contains(r#"route="/api/v1/me""#),
        "route templates label the metrics"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_stop_signal_readyz_fails_while_requests_are_served_until_the_drain_ends() {
    const DRAIN: std::time::Duration = std::time::Duration::from_secs(3);
    let app = spawn_app().await;
    // A second gateway in front of the same services, with a drain, stopped on its own.
    let mut settings = app.settings.clone();
    settings.shutdown_drain = DRAIN;
    let gateway = jifen_gateway::Application::build(settings).await.unwrap();
    let base = format!("http://{}", gateway.addr());
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(gateway.run_until_stopped(cancel.clone()));
    let client = reqwest::Client::new();
    let me = || {
        client
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(&app.admin_token)
            .send()
    };
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    cancel.cancel();
    let signalled = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_problem(status, &body, 503, "unavailable", None);
    assert_eq!(body["detail"], "not ready: shutting down", "{body}");
    assert_eq!(
        me().await.unwrap().status(),
        StatusCode::OK,
        "still serving"
    );
    assert!(
        signalled.elapsed() < DRAIN,
        "the checks outlasted the drain"
    );

    tokio::time::timeout(std::time::Duration::from_secs(20), task)
        .await
        .unwrap_or_else(|_| panic!("the gateway did not stop after the drain"))
        .unwrap()
        .unwrap();
    assert!(signalled.elapsed() >= DRAIN);
    assert!(
        reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err(),
        "the gateway is gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_down_is_503_not_500() {
    let keys = tempfile::tempdir().unwrap();
    jifen_platform::auth::ensure_key_pair(keys.path(), "dev").unwrap();
    let signer = jifen_platform::auth::TokenSigner::from_dir(keys.path(), "dev").unwrap();
    let verifier = jifen_platform::auth::TokenVerifier::from_dir(keys.path()).unwrap();
    let mut settings = jifen_gateway::Settings::with_keys(signer, verifier);
    settings.listen = "127.0.0.1:0".into();
    // Nothing listens on the discard port.
    settings.members_url = "http://127.0.0.1:9".into();
    settings.declarations_url = "http://127.0.0.1:9".into();
    settings.evaluations_url = "http://127.0.0.1:9".into();
    settings.grading_url = "http://127.0.0.1:9".into();
    settings.redis_url = jifen_testkit::redis_url();
    settings.redis_prefix = format!("{}:", jifen_testkit::unique_prefix("gw"));
    let gateway = jifen_gateway::Application::build(settings).await.unwrap();
    let base = format!("http://{}", gateway.addr());
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn(gateway.run_until_stopped(cancel.clone()));
    let client = reqwest::Client::new();

    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_problem(status, &body, 503, "unavailable", Some("members"));
    assert_problem(status, &body, 503, "unavailable", Some("declarations"));
    assert_problem(status, &body, 503, "unavailable", Some("evaluations"));
    assert_problem(status, &body, 503, "unavailable", Some("grading"));
    assert_eq!(body["title"], "服务暂不可用");
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "jifen-admin"}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_problem(status, &r.json().await.unwrap(), 503, "unavailable", None);
    cancel.cancel();
}
