//! Bad input is a 4xx problem+json naming the field — never a 500.
#![allow(clippy::unwrap_used)]
use crate::helpers::{TestApp, assert_problem, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn raw_body(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value, String) {
    let mut rb = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_token)
        .body(body);
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        ct,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_bad_input_names_its_field() {
    let app = spawn_app().await;
    let branch = app.org(&app.root_id, "五支部", "branch").await;
    let branch_id = branch["id"].as_str().unwrap();
    let json_ct = Some("application/json");

    // Malformed JSON.
    let (status, body, ct) = raw_body(
        &app,
        Method::POST,
        "/api/v1/orgs",
        json_ct,
        br#"{"name": "x","#.to_vec(),
    )
    .await;
    assert_problem(status, &body, 400, "malformed_json", None);
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["title"], "请求参数无效");
    let (status, body, _) = raw_body(
        &app,
        Method::POST,
        "/api/v1/orgs",
        json_ct,
        b"not json".to_vec(),
    )
    .await;
    assert_problem(status, &body, 400, "malformed_json", Some("body"));
    let (status, body, _) = raw_body(&app, Method::POST, "/api/v1/orgs", json_ct, Vec::new()).await;
    assert_problem(status, &body, 400, "malformed_json", Some("body"));

    // Unknown enum value, missing field, wrong type, invalid UUID in the body.
    let cases = [
        (
            json!({"parent_id": app.root_id, "name": "x", "kind": "cell", "unit_type": "other"}),
            "kind",
        ),
        (
            json!({"parent_id": app.root_id, "name": "x", "kind": "branch", "unit_type": "spaceship"}),
            "unit_type",
        ),
        (
            json!({"parent_id": app.root_id, "name": "x", "unit_type": "other"}),
            "kind",
        ),
        (
            json!({"parent_id": app.root_id, "kind": "branch", "unit_type": "other"}),
            "name",
        ),
        (
            json!({"parent_id": app.root_id, "name": 7, "kind": "branch", "unit_type": "other"}),
            "name",
        ),
        (
            json!({"parent_id": "not-a-uuid", "name": "x", "kind": "branch", "unit_type": "other"}),
            "parent_id",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app
            .post("/api/v1/orgs", Some(&app.admin_token), &body)
            .await;
        assert_problem(status, &answer, 400, "invalid_argument", Some(field));
    }
    let member =
        json!({"org_id": branch_id, "name": "x", "category": "full", "joined_on": "2020-13-40"});
    let (status, answer) = app
        .post("/api/v1/members", Some(&app.admin_token), &member)
        .await;
    assert_problem(status, &answer, 400, "invalid_argument", Some("joined_on"));
    let member = json!({"org_id": branch_id, "name": "x", "category": "full", "joined_on": "2020-01-01", "flags": ["retired", "bored"]});
    let (status, answer) = app
        .post("/api/v1/members", Some(&app.admin_token), &member)
        .await;
    assert_problem(status, &answer, 400, "invalid_argument", Some("flags[1]"));
    // A value the gateway cannot judge is judged by the service, and still named.
    let member = json!({"org_id": branch_id, "name": "x", "category": "full", "joined_on": "2020-01-01", "phone": "12"});
    let (status, answer) = app
        .post("/api/v1/members", Some(&app.admin_token), &member)
        .await;
    assert_problem(status, &answer, 400, "invalid_argument", Some("phone"));

    // Invalid UUID in the path and bad query parameters.
    for path in [
        "/api/v1/orgs/123",
        "/api/v1/members/zzz",
        "/api/v1/orgs/123/children",
        "/api/v1/members/x/sanctions",
    ] {
        let (status, answer) = app.get(path, Some(&app.admin_token)).await;
        assert_problem(status, &answer, 400, "invalid_argument", Some("id"));
    }
    let (status, answer) = app
        .get(
            &format!("/api/v1/orgs/{branch_id}/members?page_size=lots"),
            Some(&app.admin_token),
        )
        .await;
    assert_problem(status, &answer, 400, "invalid_argument", Some("page_size"));
    let (status, answer) = app
        .get(
            &format!("/api/v1/orgs/{branch_id}/members?recursive=perhaps"),
            Some(&app.admin_token),
        )
        .await;
    assert_problem(status, &answer, 400, "invalid_argument", Some("recursive"));

    // Wrong content type.
    let org = serde_json::to_vec(
        &json!({"parent_id": app.root_id, "name": "x", "kind": "branch", "unit_type": "other"}),
    )
    .unwrap();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let (status, body, _) = raw_body(&app, Method::POST, "/api/v1/orgs", ct, org.clone()).await;
        assert_problem(
            status,
            &body,
            415,
            "unsupported_media_type",
            Some("content-type"),
        );
    }

    // Over 1 MiB.
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(1024 * 1024 + 10));
    let (status, body, _) = raw_body(
        &app,
        Method::POST,
        "/api/v1/orgs",
        json_ct,
        big.clone().into_bytes(),
    )
    .await;
    assert_problem(status, &body, 413, "payload_too_large", Some("body"));
    let (status, body, _) = raw_body(
        &app,
        Method::PATCH,
        &format!("/api/v1/members/{}", uuid::Uuid::now_v7()),
        json_ct,
        big.into_bytes(),
    )
    .await;
    assert_problem(status, &body, 413, "payload_too_large", Some("body"));
    let csv = "x".repeat(1024 * 1024 + 10).into_bytes();
    let (status, body, _) = raw_body(
        &app,
        Method::POST,
        "/api/v1/members:import",
        Some("text/csv"),
        csv,
    )
    .await;
    assert_problem(status, &body, 413, "payload_too_large", Some("body"));

    // Unknown route, unknown method on a route, unknown id.
    let (status, body) = app
        .get("/api/v1/nothing-here", Some(&app.admin_token))
        .await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = app
        .send(
            Method::DELETE,
            &format!("/api/v1/orgs/{branch_id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_problem(status, &body, 405, "method_not_allowed", None);
    let (status, body) = app
        .get(
            &format!("/api/v1/members/{}", uuid::Uuid::now_v7()),
            Some(&app.admin_token),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", None);
}
