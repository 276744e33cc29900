//! The meeting-room limits (docs/rate-limits.md) against real services: valid code exchanges are
//! not limited by a small count, failed ones lock the address with a growing delay, the limiter
//! sees the hop our proxy appended (not a forged first `x-forwarded-for` entry), failed logins
//! lock the account (reset on success) and the address; and a NUL is a 400 naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::helpers::{ADMIN_PASSWORD, TestApp, assert_problem, spawn_app, spawn_app_with};
use rand::RngCore as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A random, well-formed invitation code that no round issued (with overwhelming probability).
fn random_code() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::rngs::OsRng;
    let symbols: String = (0..12)
        .map(|_| ALPHABET[(rng.next_u32() % 30) as usize] as char)
        .collect();
    format!("{}-{}-{}", &symbols[..4], &symbols[4..8], &symbols[8..])
}

/// `POST /api/v1/auth/evaluator` with extra headers → (status, retry-after, body).
async fn exchange(
    app: &TestApp,
    code: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<u64>, Value) {
    let r = app
        .raw(
            Method::POST,
            "/api/v1/auth/evaluator",
            None,
            Some(&json!({"code": code})),
            headers,
        )
        .await;
    let status = r.status();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, r.json().await.unwrap_or(Value::Null))
}

/// `POST /api/v1/auth/login` → (status, retry-after, body).
async fn login(
    app: &TestApp,
    username: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<u64>, Value) {
    let r = app
        .raw(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"username": username, "password": password})),
            headers,
        )
        .await;
    let status = r.status();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, r.json().await.unwrap_or(Value::Null))
}

/// A branch with one member and a secretary, a round of 2026-Q3, and `count` masses codes.
async fn codes(app: &TestApp, count: u32) -> Vec<String> {
    let committee = id(&app.org(&app.root_id, "会场党委", "committee").await);
    let branch = id(&app.org(&committee, "会场党支部", "branch").await);
    app.member(&branch, "会场成员", None).await;
    let username = format!("sec-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let secretary_member = id(&app.member(&branch, "会场书记", Some(&username)).await);
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/orgs/{branch}/roles"),
            Some(&app.admin_token),
            Some(&json!({"member_id": secretary_member, "role": "secretary"})),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let secretary = app.login(&username, &format!("password-{username}")).await;
    app.wait_evaluations_replica(&branch, 2).await;
    let (status, round) = app
        .post(
            &format!("/api/v1/orgs/{branch}/evaluation-rounds"),
            Some(&secretary),
            &json!({"quarter": "2026-Q3"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{round}");
    let (status, body) = app
        .post(
            &format!("/api/v1/evaluation-rounds/{}/invitations", id(&round)),
            Some(&secretary),
            &json!({"count": count, "evaluator_kind": "masses"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_meeting_room_redeems_sixty_codes_from_one_address_within_a_minute() {
    let app = spawn_app().await;
    let codes = codes(&app, 60).await;
    let started = Instant::now();
    for (i, code) in codes.iter().enumerate() {
        // A few people mistype their code on the way: that does not lock the room out.
        if i % 12 == 5 {
            let (status, _, body) = exchange(&app, &random_code(), &[]).await;
            assert_problem(status, &body, 401, "invalid_code", Some("code"));
        }
        let (status, _, body) = exchange(&app, code, &[]).await;
        assert_eq!(status, StatusCode::OK, "code #{i}: {body}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the exchanges took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_codes_from_one_address_is_refused_early_with_a_growing_delay() {
    let app = spawn_app().await;
    let mut refused_at = None;
    for i in 0..200 {
        let (status, retry_after, body) = exchange(&app, &random_code(), &[]).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_problem(status, &body, 429, "rate_limited", None);
            assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
            refused_at = Some(i);
            break;
        }
        assert_problem(status, &body, 401, "invalid_code", Some("code"));
    }
    // 20 failures are free (a meeting room's typos); the 21st attempt waits.
    let refused_at = refused_at.expect("200 wrong codes were never refused");
    assert!(refused_at < 30, "first refused at attempt {refused_at}");

    // After the delay the next wrong code is checked again, and doubles the delay.
    let mut last = 1;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(last * 1000 + 200)).await;
        let (status, _, body) = exchange(&app, &random_code(), &[]).await;
        assert_problem(status, &body, 401, "invalid_code", None);
        let (status, retry_after, _) = exchange(&app, &random_code(), &[]).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let now = retry_after.unwrap();
        assert!(now > last, "retry-after {now} did not grow from {last}");
        last = now;
    }
    // The burst is visible to an alert.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gateway_code_guess_refused_total"),
        "{metrics}"
    );
    assert!(metrics.contains("gateway_code_guess_lockouts_total"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_first_forwarded_entry_does_not_change_the_address() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = 1;
        s.code_failures.free = 3;
    })
    .await;
    // The client writes anything it likes first; our ingress appends the address it saw.
    let forged = ["1.2.3.4", "5.6.7.8, 9.9.9.9", "garbage", "127.0.0.1"];
    for (i, first) in forged.iter().enumerate().take(3) {
        let header = format!("{first}, 198.51.100.7");
        let (status, _, body) =
            exchange(&app, &random_code(), &[("x-forwarded-for", &header)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}: {body}");
    }
    let header = format!("{}, 198.51.100.7", forged[3]);
    let (status, retry_after, _) =
        exchange(&app, &random_code(), &[("x-forwarded-for", &header)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some());
    // Another real hop is another client, even with the same forged first entry.
    let (status, _, _) = exchange(
        &app,
        &random_code(),
        &[("x-forwarded-for", "1.2.3.4, 198.51.100.8")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_lock_the_account_and_a_success_resets_them() {
    let app = spawn_app().await;
    let branch = id(&app.org(&app.root_id, "锁定党支部", "branch").await);
    let username = format!("lock-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    app.member(&branch, "锁定", Some(&username)).await;
    let password = format!("password-{username}");

    // Four failures, then a success: the count starts again.
    for _ in 0..4 {
        let (status, _, body) = login(&app, &username, "wrong", &[]).await;
        assert_problem(status, &body, 401, "invalid_credentials", None);
    }
    let (status, _, body) = login(&app, &username, &password, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for _ in 0..4 {
        let (status, _, _) = login(&app, &username, "wrong", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = login(&app, &username, &password, &[]).await;
    assert_eq!(status, StatusCode::OK);

    // Five failures in a row lock it, even for the right password (case and spaces do not
    // make another account).
    for _ in 0..5 {
        let (status, _, _) = login(&app, &username, "wrong", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, retry_after, locked) = login(
        &app,
        &format!(" {} ", username.to_uppercase()),
        &password,
        &[],
    )
    .await;
    assert_problem(status, &locked, 429, "rate_limited", None);
    let retry_after = retry_after.unwrap();
    assert!((20..=30).contains(&retry_after), "{retry_after}");

    // An unknown account locks the same way: the answer does not tell whether it exists.
    let ghost = format!("ghost-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    for _ in 0..5 {
        let (status, _, _) = login(&app, &ghost, "wrong", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, unknown) = login(&app, &ghost, "wrong", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(unknown["code"], locked["code"]);
    assert_eq!(
        unknown["detail"].as_str().unwrap().split(';').next(),
        locked["detail"].as_str().unwrap().split(';').next()
    );

    // Other accounts from the same address are not affected.
    let (status, _, _) = login(&app, "admin", ADMIN_PASSWORD, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_to_many_accounts_from_one_address_are_limited() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = 1;
        s.login_address_failures.free = 10;
    })
    .await;
    let from = [("x-forwarded-for", "203.0.113.50")];
    // One failure per account: no account lock, but the address runs out.
    let mut refused_at = None;
    for i in 0..20 {
        let (status, retry_after, _) = login(&app, &format!("spray-{i}"), "wrong", &from).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry_after.is_some());
            refused_at = Some(i);
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(refused_at, Some(10));
    // The address is locked for every account; another address is not.
    let (status, _, _) = login(&app, "admin", ADMIN_PASSWORD, &from).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _, _) = login(
        &app,
        "admin",
        ADMIN_PASSWORD,
        &[("x-forwarded-for", "203.0.113.51")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_or_a_lone_surrogate_in_the_username_is_a_400_naming_it() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "ad\u{0}min", "password": "x"}),
        )
        .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("username"));
    // serde_json cannot write a lone surrogate: the raw body.
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"username":"\ud800","password":"x"}"#)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_problem(status, &body, 400, "malformed_json", Some("username"));
    // And the same in a path parameter and a query parameter.
    let (status, body) = app
        .get(
            "/api/v1/orgs/a%00b/members?page_token=x",
            Some(&app.admin_token),
        )
        .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("id"));
    let (status, body) = app
        .get(
            &format!("/api/v1/orgs/{}/members?page_token=x%00", app.root_id),
            Some(&app.admin_token),
        )
        .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("page_token"));
}
