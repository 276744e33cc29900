#![allow(clippy::unwrap_used)]
use crate::helpers::{ADMIN_PASSWORD, TestApp, assert_keys, assert_problem, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn login_answers_the_token_shape_and_me_lists_admin_over_the_root() {
    let app = spawn_app().await;
    let (status, tokens) = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_keys(
        &tokens,
        &["access_token", "refresh_token", "token_type", "expires_in"],
        &[],
    );
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);

    let (status, me) = app.get("/api/v1/me", tokens["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_keys(&me, &["subject", "roles"], &["member_id"]);
    assert_eq!(
        me["roles"],
        json!([{"role": "admin", "org_id": app.root_id}])
    );
    // The root really is the root: a committee without a parent.
    let (status, root) = app
        .get(
            &format!("/api/v1/orgs/{}", app.root_id),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(root["parent_id"].is_null(), "{root}");
    assert_eq!(root["kind"], "committee");
}

async fn login_admin(app: &TestApp) -> Value {
    let (status, tokens) = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn refresh(app: &TestApp, tokens: &Value) -> (StatusCode, Value) {
    app.post(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": tokens["refresh_token"]}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_once_and_reuse_revokes_the_chain() {
    let app = spawn_app().await;
    let first = login_admin(&app).await;

    let (status, second) = refresh(&app, &first).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_keys(
        &second,
        &["access_token", "refresh_token", "token_type", "expires_in"],
        &[],
    );
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, me) = app.get("/api/v1/me", second["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["roles"][0]["role"], "admin");
    let (status, third) = refresh(&app, &second).await;
    assert_eq!(status, StatusCode::OK, "{third}");

    // An unknown token never existed.
    let (status, body) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": "made-up"}),
        )
        .await;
    assert_problem(status, &body, 401, "invalid_refresh_token", None);

    // Another login is a chain of its own.
    let other = login_admin(&app).await;

    // A used token presented again (here the first): refused, and the chain's live token
    // (the third) is revoked with it; the other login's chain is untouched.
    let (status, body) = refresh(&app, &first).await;
    assert_problem(status, &body, 401, "invalid_refresh_token", None);
    let (status, body) = refresh(&app, &third).await;
    assert_problem(status, &body, 401, "invalid_refresh_token", None);
    let (status, body) = refresh(&app, &other).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Access tokens already signed stay valid until they expire.
    let (status, _) = app.get("/api/v1/me", third["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_and_bad_tokens_are_401_problems() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "admin", "password": "wrong-password"}),
        )
        .await;
    assert_problem(status, &body, 401, "invalid_credentials", None);
    assert_eq!(body["title"], "未认证");
    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "nobody", "password": "whatever-1"}),
        )
        .await;
    assert_problem(status, &body, 401, "invalid_credentials", None);
    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "", "password": ""}),
        )
        .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("username"));

    let (status, body) = app.get("/api/v1/me", None).await;
    assert_problem(status, &body, 401, "unauthenticated", None);
    let (status, body) = app.get("/api/v1/me", Some("not-a-jwt")).await;
    assert_problem(status, &body, 401, "invalid_token", None);
    // A token signed by another key.
    let (sk, _) = jifen_platform::auth::generate_key_pair().unwrap();
    let foreign = jifen_platform::auth::TokenSigner::from_pem("dev", &sk).unwrap();
    let principal = jifen_platform::auth::Principal {
        subject: "x".into(),
        username: None,
        member_id: None,
        roles: vec![],
        round_id: None,
    };
    let (status, body) = app
        .get("/api/v1/me", Some(&foreign.sign(&principal, 60).unwrap()))
        .await;
    assert_problem(status, &body, 401, "invalid_token", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_stored_before_families_still_refreshes_once() {
    use sha2::Digest as _;
    let app = spawn_app().await;
    let tokens = login_admin(&app).await;
    let (_, me) = app.get("/api/v1/me", tokens["access_token"].as_str()).await;
    // What the gateway stored before refresh-token families: the subject alone.
    let legacy = "a-refresh-token-issued-by-the-previous-version";
    let key = format!(
        "{}refresh:{}",
        app.redis_prefix,
        hex::encode(sha2::Sha256::digest(legacy.as_bytes()))
    );
    let client = redis::Client::open(jifen_testkit::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("SET")
        .arg(&key)
        .arg(me["subject"].as_str().unwrap())
        .arg("EX")
        .arg(600)
        .query_async(&mut redis)
        .await
        .unwrap();

    let old = json!({"refresh_token": legacy});
    let (status, renewed) = refresh(&app, &old).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let (status, me_again) = app
        .get("/api/v1/me", renewed["access_token"].as_str())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me_again["subject"], me["subject"]);
    // Used up, and its successor is a token of a new family.
    let (status, body) = refresh(&app, &old).await;
    assert_problem(status, &body, 401, "invalid_refresh_token", None);
    let (status, body) = refresh(&app, &renewed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
