//! Each role reaches exactly what API.md allows: admin of a subtree, branch secretary, member,
//! evaluator, nobody.
#![allow(clippy::unwrap_used)]
use crate::helpers::{TestApp, assert_problem, id_card, phone, spawn_app};
use jifen_platform::auth::RoleName;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Two committees A and B under the root, with branches A1 and B1 and one member in each.
struct World {
    a: String,
    b: String,
    a1: String,
    b1: String,
    member_a1: String,
    member_b1: String,
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn world(app: &TestApp) -> World {
    let a = id(&app.org(&app.root_id, "A 党委", "committee").await);
    let b = id(&app.org(&app.root_id, "B 党委", "committee").await);
    let a1 = id(&app.org(&a, "A1 党支部", "branch").await);
    let b1 = id(&app.org(&b, "B1 党支部", "branch").await);
    let member_a1 = id(&app.member(&a1, "甲", None).await);
    let member_b1 = id(&app.member(&b1, "乙", None).await);
    World {
        a,
        b,
        a1,
        b1,
        member_a1,
        member_b1,
    }
}

/// A member of `org` with an account, granted `role` over `over` (if any); answers
/// (member id, token).
async fn person(
    app: &TestApp,
    org: &str,
    username: &str,
    role: Option<(&str, &str)>,
) -> (String, String) {
    let member = id(&app.member(org, username, Some(username)).await);
    if let Some((role, over)) = role {
        let r = app
            .raw(
                Method::POST,
                &format!("/api/v1/orgs/{over}/roles"),
                Some(&app.admin_token),
                Some(&json!({"member_id": member, "role": role})),
                &[],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{:?}", r.text().await);
    }
    let token = app.login(username, &format!("password-{username}")).await;
    (member, token)
}

fn new_member(org: &str) -> Value {
    json!({"org_id": org, "name": "新人", "category": "probationary", "joined_on": "2025-07-01", "phone": phone(), "id_card": id_card()})
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_of_a_subtree_acts_inside_it_only() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (_, t) = person(&app, &w.a1, "admin-a", Some(("admin", &w.a))).await;
    let t = Some(t.as_str());

    let (status, me) = app.get("/api/v1/me", t).await;
    assert_eq!(status, StatusCode::OK);
    let roles = me["roles"].as_array().unwrap();
    assert!(
        roles.contains(&json!({"role": "admin", "org_id": w.a})),
        "{me}"
    );
    assert!(
        roles.contains(&json!({"role": "member", "org_id": w.a1})),
        "{me}"
    );

    // Inside A.
    let (status, _) = app.get(&format!("/api/v1/orgs/{}", w.a), t).await;
    assert_eq!(status, StatusCode::OK);
    let body =
        json!({"parent_id": w.a, "name": "A2 党支部", "kind": "branch", "unit_type": "other"});
    let (status, a2) = app.post("/api/v1/orgs", t, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{a2}");
    let (status, _) = app.post("/api/v1/members", t, &new_member(&w.a1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .get(&format!("/api/v1/orgs/{}/members?recursive=true", w.a), t)
        .await;
    assert_eq!(status, StatusCode::OK);
    let sanction = json!({"kind": "warning", "decided_on": "2026-02-01", "reason": "test"});
    let (status, _) = app
        .post(
            &format!("/api/v1/members/{}/sanctions", w.member_a1),
            t,
            &sanction,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, moved) = app
        .post(
            &format!("/api/v1/members/{}:transfer", w.member_a1),
            t,
            &json!({"to_org_id": id(&a2), "reason": "调整"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");

    // Outside A: B, B1 and B1's member do not exist for this admin.
    let body = json!({"parent_id": w.b, "name": "B2", "kind": "branch", "unit_type": "other"});
    let (status, body) = app.post("/api/v1/orgs", t, &body).await;
    assert_problem(status, &body, 404, "not_found", None);
    for path in [
        format!("/api/v1/orgs/{}", w.b),
        format!("/api/v1/orgs/{}/members", w.b1),
        format!("/api/v1/members/{}", w.member_b1),
    ] {
        let (status, body) = app.get(&path, t).await;
        assert_problem(status, &body, 404, "not_found", None);
    }
    let (status, _) = app.post("/api/v1/members", t, &new_member(&w.b1)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .post(
            &format!("/api/v1/members/{}:transfer", w.member_b1),
            t,
            &json!({"to_org_id": w.a1, "reason": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor the root above A.
    let (status, _) = app.get(&format!("/api/v1/orgs/{}", app.root_id), t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn branch_secretary_manages_branch_a_and_sees_nothing_of_b() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (_, t) = person(&app, &w.a1, "sec-a", Some(("secretary", &w.a1))).await;
    let t = Some(t.as_str());

    // Branch A: read, list, add and edit members.
    let (status, _) = app.get(&format!("/api/v1/orgs/{}", w.a1), t).await;
    assert_eq!(status, StatusCode::OK);
    let (status, list) = app.get(&format!("/api/v1/orgs/{}/members", w.a1), t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    let (status, _) = app.post("/api/v1/members", t, &new_member(&w.a1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .get(&format!("/api/v1/members/{}", w.member_a1), t)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .patch(
            &format!("/api/v1/members/{}", w.member_a1),
            t,
            &json!({"flags": ["retired"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Administration is not a secretary's: 403 whatever the organization.
    let (status, body) = app
        .post(
            "/api/v1/orgs",
            t,
            &json!({"parent_id": w.a1, "name": "小组", "kind": "group", "unit_type": "other"}),
        )
        .await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, _) = app
        .post(
            &format!("/api/v1/orgs/{}/roles", w.a1),
            t,
            &json!({"member_id": w.member_a1, "role": "secretary"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let sanction = json!({"kind": "warning", "decided_on": "2026-02-01", "reason": "x"});
    let (status, _) = app
        .post(
            &format!("/api/v1/members/{}/sanctions", w.member_a1),
            t,
            &sanction,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            &format!("/api/v1/members/{}:transfer", w.member_a1),
            t,
            &json!({"to_org_id": w.b1, "reason": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Branch B: 403 or 404 for everything, never its data.
    let gets = [
        format!("/api/v1/orgs/{}", w.b1),
        format!("/api/v1/orgs/{}", w.b),
        format!("/api/v1/orgs/{}/members", w.b1),
        format!("/api/v1/orgs/{}/children", w.b),
        format!("/api/v1/members/{}", w.member_b1),
        format!("/api/v1/members/{}/sanctions", w.member_b1),
        format!("/api/v1/members/{}/transfers", w.member_b1),
    ];
    for path in gets {
        let (status, body) = app.get(&path, t).await;
        assert!(
            matches!(status.as_u16(), 403 | 404),
            "{path}: {status} {body}"
        );
        assert!(body.get("code").is_some(), "{path}: {body}");
    }
    let (status, _) = app.post("/api/v1/members", t, &new_member(&w.b1)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .patch(
            &format!("/api/v1/members/{}", w.member_b1),
            t,
            &json!({"name": "改名"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, b1) = app
        .get(
            &format!("/api/v1/orgs/{}/members", w.b1),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(b1["items"][0]["name"], "乙", "B1's member is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_reads_only_themself_and_their_branch() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (me_id, t) = person(&app, &w.a1, "plain", None).await;
    let t = Some(t.as_str());

    let (status, me) = app.get("/api/v1/me", t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["member_id"], me_id.as_str());
    assert_eq!(me["roles"], json!([{"role": "member", "org_id": w.a1}]));

    // Self: with clear phone and ID card.
    let (status, myself) = app.get(&format!("/api/v1/members/{me_id}"), t).await;
    assert_eq!(status, StatusCode::OK, "{myself}");
    assert!(
        myself["phone"].as_str().is_some_and(|p| p.len() == 11),
        "{myself}"
    );
    assert!(
        myself["id_card"].as_str().is_some_and(|c| c.len() == 18),
        "{myself}"
    );
    let (status, _) = app
        .get(&format!("/api/v1/members/{me_id}/sanctions"), t)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get(&format!("/api/v1/orgs/{}", w.a1), t).await;
    assert_eq!(status, StatusCode::OK);
    // …while the admin sees the masked values only.
    let (_, seen) = app
        .get(&format!("/api/v1/members/{me_id}"), Some(&app.admin_token))
        .await;
    assert!(
        seen.get("phone").is_none() && seen.get("id_card").is_none(),
        "{seen}"
    );

    // Others: a fellow member and another branch do not exist for a member.
    for path in [
        format!("/api/v1/members/{}", w.member_a1),
        format!("/api/v1/members/{}", w.member_b1),
        format!("/api/v1/orgs/{}", w.b1),
    ] {
        let (status, body) = app.get(&path, t).await;
        assert_problem(status, &body, 404, "not_found", None);
    }
    // Management endpoints are not a member's.
    let denied: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/orgs/{}/members", w.a1), None),
        (Method::GET, format!("/api/v1/orgs/{}/children", w.a), None),
        (
            Method::POST,
            "/api/v1/members".into(),
            Some(new_member(&w.a1)),
        ),
        (
            Method::PATCH,
            format!("/api/v1/members/{me_id}"),
            Some(json!({"category": "full"})),
        ),
        (
            Method::POST,
            "/api/v1/orgs".into(),
            Some(json!({"parent_id": w.a1, "name": "g", "kind": "group", "unit_type": "other"})),
        ),
        (
            Method::POST,
            format!("/api/v1/members/{me_id}:transfer"),
            Some(json!({"to_org_id": w.b1, "reason": "x"})),
        ),
    ];
    for (method, path, body) in denied {
        let (status, answer) = app.send(method.clone(), &path, t, body.as_ref()).await;
        assert_problem(status, &answer, 403, "permission_denied", None);
        assert_eq!(answer["title"], "无权访问", "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn evaluator_tokens_and_anonymous_callers_reach_nothing() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let evaluator = app.token_for(
        RoleName::Evaluator,
        uuid::Uuid::parse_str(&w.a1).unwrap(),
        "/",
    );
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/orgs/{}", w.a1), None),
        (Method::GET, format!("/api/v1/orgs/{}/children", w.a), None),
        (Method::GET, format!("/api/v1/orgs/{}/members", w.a1), None),
        (
            Method::GET,
            format!("/api/v1/members/{}", w.member_a1),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/members/{}/sanctions", w.member_a1),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/members/{}/transfers", w.member_a1),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/members/{}", w.member_a1),
            Some(json!({"name": "x"})),
        ),
        (
            Method::POST,
            "/api/v1/orgs".into(),
            Some(json!({"parent_id": w.a, "name": "g", "kind": "branch", "unit_type": "other"})),
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{}/roles", w.a1),
            Some(json!({"member_id": w.member_a1, "role": "secretary"})),
        ),
        (
            Method::POST,
            "/api/v1/members".into(),
            Some(new_member(&w.a1)),
        ),
        (
            Method::POST,
            format!("/api/v1/members/{}:transfer", w.member_a1),
            Some(json!({"to_org_id": w.b1, "reason": "x"})),
        ),
        (
            Method::POST,
            format!("/api/v1/members/{}/sanctions", w.member_a1),
            Some(json!({"kind": "warning", "decided_on": "2026-01-01", "reason": "x"})),
        ),
    ];
    for (method, path, body) in &endpoints {
        let (status, answer) = app
            .send(method.clone(), path, Some(&evaluator), body.as_ref())
            .await;
        assert_problem(status, &answer, 403, "permission_denied", None);
        let (status, answer) = app.send(method.clone(), path, None, body.as_ref()).await;
        assert_problem(status, &answer, 401, "unauthenticated", None);
    }
    let r = app
        .client
        .post(app.url("/api/v1/members:import"))
        .header("content-type", "text/csv")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    // An evaluator may still ask who it is.
    let (status, me) = app.get("/api/v1/me", Some(&evaluator)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["roles"][0]["role"], "evaluator");
}
