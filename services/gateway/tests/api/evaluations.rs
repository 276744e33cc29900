//! The quarterly mass evaluation through the gateway only, with real members and evaluations
//! services behind it: the whole flow, the evaluator token's reach, scope, bad ballots,
//! concurrency, the printable sheet.
#![allow(clippy::unwrap_used)]
use crate::helpers::{TestApp, assert_keys, assert_problem, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A branch under a new committee with `n` members (成员1 …) and a secretary with a login.
struct Branch {
    id: String,
    members: Vec<String>,
    secretary_member: String,
    secretary: String,
}

async fn branch(app: &TestApp, label: &str, n: usize) -> Branch {
    let committee = id(&app
        .org(&app.root_id, &format!("{label}党委"), "committee")
        .await);
    let branch = id(&app
        .org(&committee, &format!("{label}党支部"), "branch")
        .await);
    let mut members = Vec::new();
    for i in 0..n {
        members.push(id(&app
            .member(&branch, &format!("{label}成员{}", i + 1), None)
            .await));
    }
    let username = format!("sec-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let secretary_member = id(&app
        .member(&branch, &format!("{label}书记"), Some(&username))
        .await);
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
    app.wait_evaluations_replica(&branch, n + 1).await;
    Branch {
        id: branch,
        members,
        secretary_member,
        secretary,
    }
}

async fn open(app: &TestApp, b: &Branch, quarter: &str) -> Value {
    let (status, round) = app
        .post(
            &format!("/api/v1/orgs/{}/evaluation-rounds", b.id),
            Some(&b.secretary),
            &json!({"quarter": quarter}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{round}");
    round
}

async fn invite(app: &TestApp, b: &Branch, round: &str, count: u32, kind: &str) -> Vec<String> {
    let (status, body) = app
        .post(
            &format!("/api/v1/evaluation-rounds/{round}/invitations"),
            Some(&b.secretary),
            &json!({"count": count, "evaluator_kind": kind}),
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

/// `POST /api/v1/auth/evaluator` → (status, body).
async fn redeem(app: &TestApp, code: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    app.post("/api/v1/auth/evaluator", bearer, &json!({"code": code}))
        .await
}

async fn evaluator(app: &TestApp, code: &str) -> String {
    let (status, body) = redeem(app, code, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn vote(
    app: &TestApp,
    token: &str,
    round: &str,
    ratings: &[(&str, &str)],
) -> (StatusCode, Value) {
    let ratings: Vec<Value> = ratings
        .iter()
        .map(|(m, r)| json!({"member_id": m, "rating": r}))
        .collect();
    app.post(
        &format!("/api/v1/evaluation-rounds/{round}/ballots"),
        Some(token),
        &json!({"ratings": ratings}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn open_invite_vote_close_gives_the_hand_computed_results() {
    let app = spawn_app().await;
    let b = branch(&app, "甲", 3).await;
    let round = open(&app, &b, "2026-Q3").await;
    assert_keys(
        &round,
        &[
            "id",
            "org_id",
            "quarter",
            "status",
            "opened_at",
            "closes_at",
            "closed_at",
            "invited",
            "ballots",
            "roster_size",
            "min_ballots",
            "results",
            "version",
        ],
        &[],
    );
    assert_eq!(
        (round["status"].as_str(), round["roster_size"].as_i64()),
        (Some("open"), Some(4))
    );
    let rid = id(&round);

    let (status, issued) = app
        .post(
            &format!("/api/v1/evaluation-rounds/{rid}/invitations"),
            Some(&b.secretary),
            &json!({"count": 6, "evaluator_kind": "masses"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let codes: Vec<String> = issued["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 6);
    for (code, inv) in codes.iter().zip(issued["invitations"].as_array().unwrap()) {
        assert_eq!(code.len(), 14, "{code}"); // ABCD-EFGH-JKMN
        assert_eq!(inv["code"], code.as_str());
        assert!(inv["qr_svg"].as_str().unwrap().starts_with("<svg"));
    }

    let (m1, m2, m3) = (
        b.members[0].as_str(),
        b.members[1].as_str(),
        b.members[2].as_str(),
    );
    let ballots: [&[(&str, &str)]; 5] = [
        &[(m1, "excellent"), (m2, "good")],
        &[(m1, "excellent"), (m2, "poor")],
        &[(m1, "good"), (m2, "fair")],
        &[(m1, "good")],
        &[(m1, "fair"), (m2, "poor"), (m3, "poor")],
    ];
    for (code, ratings) in codes.iter().zip(ballots) {
        let (status, login) = redeem(&app, &code.to_lowercase().replace('-', " "), None).await;
        assert_eq!(status, StatusCode::OK, "{login}");
        assert_keys(
            &login,
            &["access_token", "round_id", "expires_in"],
            &["token_type", "quarter", "evaluator_kind"],
        );
        assert_eq!(login["round_id"], rid.as_str());
        let token = login["access_token"].as_str().unwrap();
        let (status, ballot) = app
            .get(
                &format!("/api/v1/evaluation-rounds/{rid}/ballot"),
                Some(token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{ballot}");
        assert_keys(
            &ballot,
            &["round_id", "quarter", "members", "ratings"],
            &["evaluator_kind"],
        );
        assert_eq!(
            ballot["ratings"],
            json!(["excellent", "good", "fair", "poor"])
        );
        assert_eq!(ballot["members"].as_array().unwrap().len(), 4);
        let (status, body) = vote(&app, token, &rid, ratings).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // The same code again: refused.
        let (status, body) = vote(&app, token, &rid, &[(m1, "good")]).await;
        assert_problem(status, &body, 409, "code_used", None);
        let (status, body) = redeem(&app, code, None).await;
        assert_problem(status, &body, 409, "code_used", None);
    }

    let (status, open_now) = app
        .get(
            &format!("/api/v1/evaluation-rounds/{rid}"),
            Some(&b.secretary),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (open_now["invited"].as_i64(), open_now["ballots"].as_i64()),
        (Some(6), Some(5))
    );
    assert_eq!(open_now["results"], json!([]));

    let (status, closed) = app
        .post(
            &format!("/api/v1/evaluation-rounds/{rid}:close"),
            Some(&b.secretary),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(
        (closed["status"].as_str(), closed["min_ballots"].as_i64()),
        (Some("closed"), Some(5))
    );
    let result = |m: &str| {
        closed["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["member_id"] == m)
            .unwrap()
            .clone()
    };
    // By hand, with the default standard (好 100, 较好 80, 一般 60, 差 0; min_ballots 5):
    // 成员1: 100 + 100 + 80 + 80 + 60 = 420 / 5 = 84.0, no poor, valid.
    let r1 = result(m1);
    assert_keys(
        &r1,
        &["member_id", "score", "ballots", "poor_share", "valid"],
        &["name", "poor_ballots"],
    );
    assert_eq!(
        (
            r1["score"].as_f64(),
            r1["ballots"].as_i64(),
            r1["poor_share"].as_f64(),
            r1["valid"].as_bool()
        ),
        (Some(84.0), Some(5), Some(0.0), Some(true))
    );
    // 成员2: 80 + 0 + 60 + 0 = 140 / 4 = 35.0, 2 poor of 4 = 0.5, not valid.
    let r2 = result(m2);
    assert_eq!(
        (
            r2["score"].as_f64(),
            r2["ballots"].as_i64(),
            r2["poor_share"].as_f64(),
            r2["valid"].as_bool()
        ),
        (Some(35.0), Some(4), Some(0.5), Some(false))
    );
    // 成员3: one poor → 0.0, poor share 1.
    let r3 = result(m3);
    assert_eq!(
        (
            r3["score"].as_f64(),
            r3["ballots"].as_i64(),
            r3["poor_share"].as_f64()
        ),
        (Some(0.0), Some(1), Some(1.0))
    );
    // The secretary (on the roster too) was rated by nobody.
    let rs = result(&b.secretary_member);
    assert_eq!(
        (
            rs["score"].clone(),
            rs["ballots"].as_i64(),
            rs["valid"].as_bool()
        ),
        (Value::Null, Some(0), Some(false))
    );

    // Results are immutable: reading answers them again; closing again is a conflict; the last
    // code can no longer vote.
    let (_, again) = app
        .get(
            &format!("/api/v1/evaluation-rounds/{rid}"),
            Some(&b.secretary),
        )
        .await;
    assert_eq!(again, closed);
    let (status, body) = app
        .post(
            &format!("/api/v1/evaluation-rounds/{rid}:close"),
            Some(&b.secretary),
            &json!({}),
        )
        .await;
    assert_problem(status, &body, 409, "round_closed", None);
    let (status, body) = redeem(&app, &codes[5], None).await;
    assert_problem(status, &body, 409, "round_closed", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evaluator_token_reaches_its_own_ballot_and_nothing_else() {
    let app = spawn_app().await;
    let a = branch(&app, "乙", 2).await;
    let b = branch(&app, "丙", 1).await;
    let ra = id(&open(&app, &a, "2026-Q3").await);
    let rb = id(&open(&app, &b, "2026-Q3").await);
    let code_a = invite(&app, &a, &ra, 1, "masses").await.remove(0);
    let token = evaluator(&app, &code_a).await;

    // A code of another round is refused there.
    let (status, body) = app
        .get(
            &format!("/api/v1/evaluation-rounds/{rb}/ballot"),
            Some(&token),
        )
        .await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = vote(&app, &token, &rb, &[(&b.members[0], "good")]).await;
    assert_problem(status, &body, 403, "permission_denied", None);

    // Everything else in the API: 403 (only `/api/v1/me`, which shows the token's own claims,
    // answers an evaluator too: tests/api/authz.rs).
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/evaluation-rounds/{ra}"), None),
        (
            Method::POST,
            format!("/api/v1/evaluation-rounds/{ra}:close"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/evaluation-rounds/{ra}/invitations"),
            Some(json!({"count": 1, "evaluator_kind": "masses"})),
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{}/evaluation-rounds", a.id),
            Some(json!({"quarter": "2026-Q2"})),
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{}/evaluation-rounds", a.id),
            None,
        ),
        (Method::GET, format!("/api/v1/orgs/{}", a.id), None),
        (Method::GET, format!("/api/v1/orgs/{}/members", a.id), None),
        (
            Method::GET,
            format!("/api/v1/members/{}", a.members[0]),
            None,
        ),
        (
            Method::POST,
            "/api/v1/members".into(),
            Some(
                json!({"org_id": a.id, "name": "x", "category": "full", "joined_on": "2020-01-01"}),
            ),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = app
            .send(method.clone(), &path, Some(&token), body.as_ref())
            .await;
        assert_problem(status, &answer, 403, "permission_denied", None);
        let _ = (method, path);
    }

    // Its own ballot works, once.
    let (status, _) = app
        .get(
            &format!("/api/v1/evaluation-rounds/{ra}/ballot"),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = vote(&app, &token, &ra, &[(&a.members[0], "good")]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_branchs_secretary_cannot_open_invite_close_or_read() {
    let app = spawn_app().await;
    let a = branch(&app, "丁", 1).await;
    let b = branch(&app, "戊", 1).await;
    let ra = id(&open(&app, &a, "2026-Q3").await);

    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{}/evaluation-rounds", a.id),
            Some(&b.secretary),
            &json!({"quarter": "2026-Q2"}),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));
    let (status, body) = app
        .post(
            &format!("/api/v1/evaluation-rounds/{ra}/invitations"),
            Some(&b.secretary),
            &json!({"count": 1, "evaluator_kind": "masses"}),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", Some("id"));
    let (status, body) = app
        .post(
            &format!("/api/v1/evaluation-rounds/{ra}:close"),
            Some(&b.secretary),
            &json!({}),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", Some("id"));
    let (status, body) = app
        .get(
            &format!("/api/v1/evaluation-rounds/{ra}"),
            Some(&b.secretary),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", Some("id"));
    let (status, body) = app
        .get(
            &format!("/api/v1/orgs/{}/evaluation-rounds", a.id),
            Some(&b.secretary),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));

    // A plain member: 403 at the gateway.
    let member = app.member(&a.id, "普通党员", Some("plain-a")).await;
    let member_token = app.login("plain-a", "password-plain-a").await;
    let _ = member;
    let (status, body) = app
        .get(
            &format!("/api/v1/evaluation-rounds/{ra}"),
            Some(&member_token),
        )
        .await;
    assert_problem(status, &body, 403, "permission_denied", None);

    // A second round of the same branch and quarter: 409; the admin above may read the round.
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{}/evaluation-rounds", a.id),
            Some(&a.secretary),
            &json!({"quarter": "2026-Q3"}),
        )
        .await;
    assert_problem(status, &body, 409, "round_exists", Some("quarter"));
    let (status, _) = app
        .get(
            &format!("/api/v1/evaluation-rounds/{ra}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, list) = app
        .get(
            &format!("/api/v1/orgs/{}/evaluation-rounds", a.id),
            Some(&a.secretary),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["next_page_token"], "");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_ratings_members_off_the_roster_and_bad_rounds_are_400() {
    let app = spawn_app().await;
    let a = branch(&app, "己", 2).await;
    let other = branch(&app, "庚", 1).await;
    let ra = id(&open(&app, &a, "2026-Q3").await);
    let codes = invite(&app, &a, &ra, 1, "masses").await;
    let token = evaluator(&app, &codes[0]).await;

    let (status, body) = vote(&app, &token, &ra, &[(&a.members[0], "great")]).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("ratings[0].rating"),
    );
    let (status, body) = vote(
        &app,
        &token,
        &ra,
        &[(&a.members[0], "good"), (&other.members[0], "good")],
    )
    .await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("ratings[1].member_id"),
    );
    let (status, body) = vote(&app, &token, &ra, &[("not-a-uuid", "good")]).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("ratings[0].member_id"),
    );
    let (status, body) = vote(&app, &token, &ra, &[]).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("ratings"));
    // None of that spent the code.
    let (status, body) = vote(&app, &token, &ra, &[(&a.members[1], "fair")]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    for (payload, field) in [
        (json!({"quarter": "2026-Q7"}), "quarter"),
        (
            json!({"quarter": "2026-Q1", "closes_at": "yesterday"}),
            "closes_at",
        ),
        (
            json!({"quarter": "2026-Q1", "closes_at": "2001-01-01T00:00:00Z"}),
            "closes_at",
        ),
    ] {
        let (status, body) = app
            .post(
                &format!("/api/v1/orgs/{}/evaluation-rounds", a.id),
                Some(&a.secretary),
                &payload,
            )
            .await;
        assert_problem(status, &body, 400, "invalid_argument", Some(field));
    }
    for (payload, field) in [
        (json!({"count": 0, "evaluator_kind": "masses"}), "count"),
        (json!({"count": 5000, "evaluator_kind": "masses"}), "count"),
        (
            json!({"count": 1, "evaluator_kind": "public"}),
            "evaluator_kind",
        ),
    ] {
        let (status, body) = app
            .post(
                &format!("/api/v1/evaluation-rounds/{ra}/invitations"),
                Some(&a.secretary),
                &payload,
            )
            .await;
        assert_problem(status, &body, 400, "invalid_argument", Some(field));
    }
    let (status, body) = redeem(&app, "", None).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("code"));
    let (status, body) = redeem(&app, "ZZZZ-ZZZZ-ZZZZ", None).await;
    assert_problem(status, &body, 401, "invalid_code", Some("code"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_ballots_with_one_code_are_accepted_once() {
    let app = spawn_app().await;
    let a = branch(&app, "辛", 2).await;
    let ra = id(&open(&app, &a, "2026-Q3").await);
    let code = invite(&app, &a, &ra, 1, "masses").await.remove(0);
    let token = evaluator(&app, &code).await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (app, token, ra, m) = (app.clone(), token.clone(), ra.clone(), a.members[0].clone());
        tasks.push(tokio::spawn(async move {
            vote(&app, &token, &ra, &[(&m, "excellent")]).await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::CREATED {
            created += 1;
        } else {
            assert_problem(status, &body, 409, "code_used", None);
        }
    }
    assert_eq!(created, 1);
    let (_, round) = app
        .get(
            &format!("/api/v1/evaluation-rounds/{ra}"),
            Some(&a.secretary),
        )
        .await;
    assert_eq!(round["ballots"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_evaluator_redeems_with_their_login_and_skips_themself() {
    let app = spawn_app().await;
    let a = branch(&app, "壬", 2).await;
    let ra = id(&open(&app, &a, "2026-Q3").await);
    let codes = invite(&app, &a, &ra, 2, "member").await;

    let (status, body) = redeem(&app, &codes[0], None).await;
    assert_problem(status, &body, 403, "member_login_required", None);
    // The secretary is a member of the branch: logged in, they get a ballot without themself.
    let (status, login) = redeem(&app, &codes[0], Some(&a.secretary)).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["evaluator_kind"], "member");
    let token = login["access_token"].as_str().unwrap();
    let (_, ballot) = app
        .get(
            &format!("/api/v1/evaluation-rounds/{ra}/ballot"),
            Some(token),
        )
        .await;
    let ids: Vec<&str> = ballot["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&a.secretary_member.as_str()));
    let (status, body) = vote(&app, token, &ra, &[(&a.secretary_member, "excellent")]).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("ratings[0].member_id"),
    );
    let (status, body) = vote(&app, token, &ra, &[(&a.members[0], "excellent")]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printable_sheet_and_codes_are_never_replayed() {
    let app = spawn_app().await;
    let a = branch(&app, "癸", 1).await;
    let ra = id(&open(&app, &a, "2026-Q4").await);
    let path = format!("/api/v1/evaluation-rounds/{ra}/invitations");
    let body = json!({"count": 3, "evaluator_kind": "masses"});
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&a.secretary),
            Some(&body),
            &[("accept", "text/html"), ("idempotency-key", "sheet-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert_eq!(html.matches("class=\"slip\"").count(), 3);
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.contains("群众评议邀请码 · 2026年第四季度"));
    // A retry does not show the codes again (they were never stored) and issues none.
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&a.secretary),
            Some(&body),
            &[("accept", "text/html"), ("idempotency-key", "sheet-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_not_replayable");
    let (_, round) = app
        .get(
            &format!("/api/v1/evaluation-rounds/{ra}"),
            Some(&a.secretary),
        )
        .await;
    assert_eq!(round["invited"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_evaluator_logins_lock_the_client_address() {
    let app = spawn_app_with(|s| s.code_failures.free = 3).await;
    for _ in 0..3 {
        let (status, body) = redeem(&app, "ZZZZ-ZZZZ-ZZZZ", None).await;
        assert_problem(status, &body, 401, "invalid_code", None);
    }
    let r = app
        .raw(
            reqwest::Method::POST,
            "/api/v1/auth/evaluator",
            None,
            Some(&json!({"code": "ZZZZ-ZZZZ-ZZZZ"})),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_the_evaluation_endpoints() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/v1/orgs/{id}/evaluation-rounds", "post"),
        ("/api/v1/evaluation-rounds/{id}/invitations", "post"),
        ("/api/v1/evaluation-rounds/{id}/ballot", "get"),
        ("/api/v1/evaluation-rounds/{id}/ballots", "post"),
        ("/api/v1/evaluation-rounds/{id}:close", "post"),
        ("/api/v1/evaluation-rounds/{id}", "get"),
        ("/api/v1/auth/evaluator", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    let conflict =
        paths["/api/v1/orgs/{id}/evaluation-rounds"]["post"]["responses"]["409"]["description"]
            .as_str()
            .unwrap();
    assert!(
        conflict.contains("round_exists") && conflict.contains("grading_final"),
        "{conflict}"
    );
    let rating = &doc["components"]["schemas"]["Rating"]["enum"];
    assert_eq!(*rating, json!(["excellent", "good", "fair", "poor"]));
    assert_eq!(
        doc["components"]["schemas"]["EvaluatorKind"]["enum"],
        json!(["masses", "member"])
    );
}

/// The invitations' JSON carries each code's link to the evaluation page (`JIFEN_PUBLIC_URL`,
/// here the loopback default: the gateway's own address).
#[tokio::test(flavor = "multi_thread")]
async fn invitations_link_the_evaluation_page() {
    let app = spawn_app().await;
    let b = branch(&app, "子", 1).await;
    let rid = id(&open(&app, &b, "2026-Q4").await);
    let (status, issued) = app
        .post(
            &format!("/api/v1/evaluation-rounds/{rid}/invitations"),
            Some(&b.secretary),
            &json!({"count": 2, "evaluator_kind": "masses"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    for (code, invitation) in issued["codes"]
        .as_array()
        .unwrap()
        .iter()
        .zip(issued["invitations"].as_array().unwrap())
    {
        let code = code.as_str().unwrap();
        assert_eq!(invitation["code"], code);
        assert_eq!(invitation["url"], format!("{}/m/e#{code}", app.base));
        assert!(invitation["qr_svg"].as_str().unwrap().starts_with("<svg"));
    }
}

/// A ballot sent with an `Idempotency-Key` leaves no record in Redis (it would be named by the
/// code's hash and fingerprint the ratings): a retry is refused as `code_used`, not replayed.
/// No other Redis key is named after the evaluator either.
#[tokio::test(flavor = "multi_thread")]
async fn ballots_leave_no_idempotency_record() {
    let app = spawn_app().await;
    let b = branch(&app, "丑", 1).await;
    let rid = id(&open(&app, &b, "2026-Q4").await);
    let code = invite(&app, &b, &rid, 1, "masses").await.remove(0);
    let token = evaluator(&app, &code).await;
    let path = format!("/api/v1/evaluation-rounds/{rid}/ballots");
    let body = json!({"ratings": [{"member_id": b.members[0], "rating": "good"}]});
    let headers = [("idempotency-key", "ballot-1")];
    let first = app
        .raw(Method::POST, &path, Some(&token), Some(&body), &headers)
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let retry = app
        .raw(Method::POST, &path, Some(&token), Some(&body), &headers)
        .await;
    assert_eq!(retry.status(), StatusCode::CONFLICT);
    assert!(retry.headers().get("idempotent-replayed").is_none());
    let problem: Value = retry.json().await.unwrap();
    assert_eq!(problem["code"], "code_used");
    let client = redis::Client::open(jifen_testkit::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}idem:*", app.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(keys, Vec::<String>::new());
    // Nor is any other key (a rate-limit window, say) named by the evaluator's ticket.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", app.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the exchange's address window exists");
    let named: Vec<&String> = keys.iter().filter(|k| k.contains("evaluator")).collect();
    assert!(named.is_empty(), "{named:?}");
}
