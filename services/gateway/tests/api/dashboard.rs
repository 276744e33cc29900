//! The dashboard `GET /api/v1/dashboard/orgs/{id}?month=` through the gateway only, with the real
//! services behind it: every figure is checked against what the API's other reads say (the
//! organizations' `member_count`, `GET /orgs/{id}/declarations?month=`, each member's
//! `GET /members/{id}/ledger`, the grading's confirmed grades) — never against totals written
//! here — then each role's access, bad input, and the Redis cache (used, and scoped).
#![allow(clippy::unwrap_used)]
use crate::helpers::{
    MONTH, PROJECTION_DEADLINE, TestApp, assert_keys, assert_problem, spawn_app, spawn_app_with,
};
use crate::support::{Branch, Person, branch, grant, record, staffed};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const YEAR: i32 = 2026;

fn dash(org: &str, query: &str) -> String {
    format!("/api/v1/dashboard/orgs/{org}{query}")
}

/// GET as `token`; answers the status, the `x-dashboard-cache` header and the body.
async fn fetch(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, String, Value) {
    let mut request = app.client.get(app.url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let cache = r
        .headers()
        .get("x-dashboard-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    if status == StatusCode::OK {
        assert_eq!(r.headers()["content-type"], "application/json");
    }
    let body: Value = r.json().await.unwrap();
    (status, cache, body)
}

/// Rounds to one decimal, to compare decimals.
fn tenths(x: f64) -> i64 {
    (x * 10.0).round() as i64
}

/// Saves `person`'s declaration of `month` with one F04 line; answers its id.
async fn declare(app: &TestApp, person: &Person, month: &str) -> String {
    let (status, draft) = app
        .put(
            &format!("/api/v1/members/{}/declarations/{month}", person.id),
            Some(&person.token),
            &json!({"lines": [{"item_code": "F04", "quantity": 1, "note": "志愿服务"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    draft["id"].as_str().unwrap().to_owned()
}

async fn act(app: &TestApp, path: &str, token: &str, body: Value) {
    let (status, answer) = app.post(path, Some(token), &body).await;
    assert_eq!(status, StatusCode::OK, "{path}: {answer}");
}

async fn submit(app: &TestApp, person: &Person, id: &str) {
    act(
        app,
        &format!("/api/v1/declarations/{id}:submit"),
        &person.token,
        json!({}),
    )
    .await;
}

async fn review(app: &TestApp, secretary: &Person, id: &str, body: Value) {
    act(
        app,
        &format!("/api/v1/declarations/{id}:review"),
        &secretary.token,
        body,
    )
    .await;
}

/// A second branch under `b`'s committee, with its secretary and `n` members.
async fn sibling(app: &TestApp, b: &Branch, label: &str, n: usize) -> Branch {
    let org = app
        .org(&b.committee_id, &format!("{label} 党支部"), "branch")
        .await;
    let branch_id = org["id"].as_str().unwrap().to_owned();
    staffed(app, b.committee_id.clone(), branch_id, label, n).await
}

/// Waits until the grading projection holds `n` declarations of [`MONTH`] submitted at least
/// once (the count the declarations API gives).
async fn wait_declared(app: &TestApp, n: i64) {
    let deadline = tokio::time::Instant::now() + PROJECTION_DEADLINE;
    loop {
        let row = app
            .grading_db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*) FROM declaration_months WHERE year = 2026 AND month = 3 \
                 AND submitted",
            ))
            .await
            .unwrap()
            .unwrap();
        let count: i64 = row.try_get_by_index(0).unwrap();
        if count == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} submitted declarations projected, not {n}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// What the API's other reads say of an organization's subtree for [`MONTH`]: (members,
/// declared, the month's ledger points in deci-points), with `branches` the branches in it.
async fn expected(app: &TestApp, org: &str, branches: &[&str]) -> (i64, i64, i64) {
    let admin = Some(app.admin_token.as_str());
    let (status, o) = app.get(&format!("/api/v1/orgs/{org}"), admin).await;
    assert_eq!(status, StatusCode::OK, "{o}");
    let members = o["member_count"].as_i64().unwrap();
    let (status, list) = app
        .get(
            &format!("/api/v1/orgs/{org}/members?recursive=true&page_size=1000"),
            admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let active: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "active")
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        active.len() as i64,
        members,
        "member_count agrees with the list"
    );
    let mut declared = BTreeSet::new();
    for b in branches {
        let (status, list) = app
            .get(
                &format!("/api/v1/orgs/{b}/declarations?month={MONTH}"),
                admin,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        for d in list["items"].as_array().unwrap() {
            if d["status"] != "draft" {
                declared.insert(d["member_id"].as_str().unwrap().to_owned());
            }
        }
    }
    let mut points = 0;
    for id in &active {
        let (status, ledger) = app
            .get(&format!("/api/v1/members/{id}/ledger?year={YEAR}"), admin)
            .await;
        assert_eq!(status, StatusCode::OK, "{ledger}");
        points += ledger["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["month"] == MONTH)
            .map(|e| tenths(e["points"].as_f64().unwrap()))
            .sum::<i64>();
    }
    let declared = declared.iter().filter(|m| active.contains(m)).count() as i64;
    (members, declared, points)
}

/// Checks a rate and a mean against (members, declared, points).
fn check_rates(figures: &Value, (members, declared, points): (i64, i64, i64), what: &str) {
    let rate = if members == 0 {
        0.0
    } else {
        ((declared * 2000 + members) / (2 * members)) as f64 / 1000.0
    };
    assert!(
        (figures["participation_rate"].as_f64().unwrap() - rate).abs() < 1e-9,
        "{what}: rate {figures} vs {declared}/{members}"
    );
    let mean = if members == 0 {
        0
    } else {
        let m = (points.abs() * 2 + members) / (2 * members);
        if points < 0 { -m } else { m }
    };
    assert_eq!(
        tenths(figures["approved_points_avg"].as_f64().unwrap()),
        mean,
        "{what}: mean of {points} tenths over {members}"
    );
}

/// Builds a committee with two branches and the month's activity: approved, submitted,
/// draft-only and returned declarations, branch records this month and next.
async fn city(app: &TestApp) -> (Branch, Branch) {
    let a = branch(app, "da", 3).await;
    let b = sibling(app, &a, "db", 2).await;
    let (a0, a1, a2, b0) = (&a.members[0], &a.members[1], &a.members[2], &b.members[0]);

    let id = declare(app, a0, MONTH).await;
    submit(app, a0, &id).await;
    review(app, &a.secretary, &id, json!({"decision": "approve"})).await;
    let id = declare(app, a1, MONTH).await;
    submit(app, a1, &id).await;
    declare(app, a2, MONTH).await; // a draft: not declared
    let id = declare(app, b0, MONTH).await;
    submit(app, b0, &id).await;
    review(
        app,
        &b.secretary,
        &id,
        json!({"decision": "return", "comment": "请补充材料"}),
    )
    .await;

    record(
        app,
        &a.branch_id,
        &a.secretary.token,
        MONTH,
        json!([
            {"member_id": a0.id, "item_code": "P01", "quantity": 1},
            {"member_id": a1.id, "item_code": "D01", "quantity": 1},
        ]),
    )
    .await;
    record(
        app,
        &b.branch_id,
        &b.secretary.token,
        MONTH,
        json!([
            {"member_id": b0.id, "item_code": "O02", "quantity": 1},
        ]),
    )
    .await;
    app.clock.set("2026-04-10T02:00:00Z".parse().unwrap());
    record(
        app,
        &a.branch_id,
        &a.secretary.token,
        "2026-04",
        json!([
            {"member_id": a2.id, "item_code": "O02", "quantity": 1},
        ]),
    )
    .await;

    app.wait_ledger(&a0.id, YEAR, 2).await;
    app.wait_ledger(&a1.id, YEAR, 1).await;
    app.wait_ledger(&a2.id, YEAR, 1).await;
    app.wait_ledger(&b0.id, YEAR, 1).await;
    for p in [&a.secretary, &b.secretary, &b.members[1]] {
        app.wait_ledger(&p.id, YEAR, 0).await;
    }
    wait_declared(app, 3).await;
    (a, b)
}

const KEYS: &[&str] = &[
    "org_id",
    "name",
    "parent_id",
    "ancestors",
    "month",
    "members",
    "declared",
    "participation_rate",
    "approved_points_avg",
    "children",
];

#[tokio::test(flavor = "multi_thread")]
async fn figures_agree_with_the_other_reads_and_scope_holds() {
    // No cache: every read comes from the grading service.
    let app = spawn_app_with(|s| s.dashboard_cache_ttl = std::time::Duration::ZERO).await;
    let (a, b) = city(&app).await;
    let admin = app.admin_token.clone();
    let query = format!("?month={MONTH}");

    // The committee: both branches' members, each branch a child.
    let (status, cache, c) = fetch(&app, &dash(&a.committee_id, &query), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(cache, "miss");
    assert_keys(&c, KEYS, &["grade_distribution"]);
    assert_eq!(c["org_id"], a.committee_id.as_str());
    assert_eq!(c["month"], MONTH);
    assert!(c.get("grade_distribution").is_none(), "{c}");
    let want = expected(&app, &a.committee_id, &[&a.branch_id, &b.branch_id]).await;
    assert_eq!(c["members"].as_i64().unwrap(), want.0, "{c}");
    assert_eq!(c["declared"].as_i64().unwrap(), want.1, "{c}");
    check_rates(&c, want, "committee");
    // Something is counted: the test would prove little on zeros.
    assert!(want.1 > 0 && want.2 != 0, "{want:?}");

    let children = c["children"].as_array().unwrap();
    assert_eq!(children.len(), 2, "{c}");
    for (branch, name) in [(&a, "da 党支部"), (&b, "db 党支部")] {
        let child = children
            .iter()
            .find(|ch| ch["org_id"] == branch.branch_id.as_str())
            .unwrap();
        assert_keys(
            child,
            &[
                "org_id",
                "name",
                "kind",
                "members",
                "declared",
                "participation_rate",
                "approved_points_avg",
            ],
            &[],
        );
        assert_eq!(child["name"], name);
        let want = expected(&app, &branch.branch_id, &[&branch.branch_id]).await;
        check_rates(child, want, name);

        // The branch's own dashboard agrees with its line in the committee's, read by its
        // secretary.
        let (status, _, own) = fetch(
            &app,
            &dash(&branch.branch_id, &query),
            Some(&branch.secretary.token),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{own}");
        assert_eq!(own["members"].as_i64().unwrap(), want.0);
        assert_eq!(own["declared"].as_i64().unwrap(), want.1);
        assert_eq!(own["participation_rate"], child["participation_rate"]);
        assert_eq!(own["approved_points_avg"], child["approved_points_avg"]);
        assert_eq!(own["children"], json!([]));
    }

    // Grades appear once the branch confirms its grading, as the grading says.
    let grading = format!("/api/v1/orgs/{}/gradings/{YEAR}", a.branch_id);
    act(
        &app,
        &format!("{grading}:compute"),
        &a.secretary.token,
        json!({}),
    )
    .await;
    let (_, _, body) = fetch(&app, &dash(&a.branch_id, &query), Some(&admin)).await;
    assert!(
        body.get("grade_distribution").is_none(),
        "proposed grades are not published: {body}"
    );
    act(
        &app,
        &format!("{grading}:confirm"),
        &a.secretary.token,
        json!({}),
    )
    .await;
    let (status, confirmed) = app.get(&grading, Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let count = |grade: &str| {
        confirmed["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["grade"] == grade)
            .count() as i64
    };
    for org in [&a.branch_id, &a.committee_id] {
        let (_, _, body) = fetch(&app, &dash(org, &query), Some(&admin)).await;
        let dist = &body["grade_distribution"];
        assert_keys(
            dist,
            &[
                "excellent",
                "qualified",
                "basically_qualified",
                "unqualified",
            ],
            &[],
        );
        for grade in [
            "excellent",
            "qualified",
            "basically_qualified",
            "unqualified",
        ] {
            assert_eq!(
                dist[grade].as_i64().unwrap(),
                count(grade),
                "{grade}: {body}"
            );
        }
    }
    let (_, _, body) = fetch(&app, &dash(&b.branch_id, &query), Some(&admin)).await;
    assert!(
        body.get("grade_distribution").is_none(),
        "no grading in b: {body}"
    );

    // Scope: a branch's secretary reads their own branch only; members never.
    for org in [&b.branch_id, &a.committee_id, &app.root_id] {
        let (status, _, body) = fetch(&app, &dash(org, &query), Some(&a.secretary.token)).await;
        assert_problem(status, &body, 404, "not_found", Some("org_id"));
    }
    let (status, _, body) =
        fetch(&app, &dash(&a.branch_id, &query), Some(&a.members[0].token)).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, _, body) = fetch(&app, &dash(&a.branch_id, &query), None).await;
    assert_problem(status, &body, 401, "unauthenticated", None);
    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, _, body) = fetch(&app, &dash(&unknown, &query), Some(&admin)).await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));
    let (status, _, root) = fetch(&app, &dash(&app.root_id, &query), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{root}");
    assert_eq!(
        root["members"], c["members"],
        "the root holds only this committee"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_month_is_required_and_the_id_a_uuid() {
    let app = spawn_app().await;
    let org = app.root_id.clone();
    for query in [
        "",
        "?month=",
        "?month=2026-3",
        "?month=2026-13",
        "?month=1999-12",
        "?mon=2026-03",
    ] {
        let (status, _, body) = fetch(&app, &dash(&org, query), Some(&app.admin_token)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("month"));
    }
    let (status, _, body) = fetch(
        &app,
        &dash("not-a-uuid", "?month=2026-03"),
        Some(&app.admin_token),
    )
    .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_are_cached_briefly_and_never_served_out_of_scope() {
    let app = spawn_app().await; // the default TTL: 60 s
    let a = branch(&app, "ca", 2).await;
    let other = branch(&app, "cb", 0).await;
    for p in a.members.iter().chain([&a.secretary]) {
        app.wait_ledger(&p.id, YEAR, 0).await;
    }
    let path = dash(&a.branch_id, &format!("?month={MONTH}"));

    let (status, cache, first) = fetch(&app, &path, Some(&app.admin_token)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(cache, "miss");
    assert_eq!(first["declared"], 0);
    // The breadcrumb depends on the caller's scope (decision 0015): the branch's secretary,
    // whose scope starts lower, has an entry of their own and never the admin's.
    let (status, cache, own) = fetch(&app, &path, Some(&a.secretary.token)).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(cache, "miss");
    assert_eq!(own["ancestors"], json!([]));
    assert_eq!(first["ancestors"].as_array().unwrap().len(), 2, "{first}");

    // A declaration is submitted; within the TTL the cached (stale) answer is served, to
    // anyone in scope.
    let id = declare(&app, &a.members[0], MONTH).await;
    submit(&app, &a.members[0], &id).await;
    for (token, want) in [(&app.admin_token, &first), (&a.secretary.token, &own)] {
        let (status, cache, again) = fetch(&app, &path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(cache, "hit");
        assert_eq!(&again, want);
    }

    // Out of scope, the cache is never read: the service refuses as it always does.
    let (status, cache, body) = fetch(&app, &path, Some(&other.secretary.token)).await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));
    assert_eq!(cache, "");
    let (status, _, body) = fetch(&app, &path, Some(&a.members[0].token)).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, _, body) = fetch(&app, &path, None).await;
    assert_problem(status, &body, 401, "unauthenticated", None);
    // Nor is the committee above the branch in its secretary's scope.
    let (status, _, body) = fetch(
        &app,
        &dash(&a.committee_id, &format!("?month={MONTH}")),
        Some(&a.secretary.token),
    )
    .await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));

    // The ranking is cached the same way, and as scoped.
    let top = dash(&a.branch_id, "/ranking?year=2026");
    let (status, cache, first) = fetch(&app, &top, Some(&app.admin_token)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(cache, "miss");
    let (_, cache, again) = fetch(&app, &top, Some(&a.secretary.token)).await;
    assert_eq!((cache.as_str(), &again), ("hit", &first));
    let (status, _, body) = fetch(&app, &top, Some(&other.secretary.token)).await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));

    // So is the trend.
    let year = trend(&a.branch_id, "?year=2026");
    let (status, cache, first) = fetch(&app, &year, Some(&app.admin_token)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(cache, "miss");
    let (_, cache, again) = fetch(&app, &year, Some(&a.secretary.token)).await;
    assert_eq!((cache.as_str(), &again), ("hit", &first));
    let (status, cache, body) = fetch(&app, &year, Some(&other.secretary.token)).await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));
    assert_eq!(cache, "");

    // Another month is another entry.
    let (status, cache, _) = fetch(
        &app,
        &dash(&a.branch_id, "?month=2026-02"),
        Some(&app.admin_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cache, "miss");
}

fn ranking(org: &str, query: &str) -> String {
    format!("/api/v1/dashboard/orgs/{org}/ranking{query}")
}

/// The subtree's active members by their ledger total (as `GET /members/{id}/ledger` answers
/// it), highest first, ties by member id: (member id, total in tenths).
async fn ledger_order(app: &TestApp, org: &str) -> Vec<(String, i64)> {
    let admin = Some(app.admin_token.as_str());
    let (status, list) = app
        .get(
            &format!("/api/v1/orgs/{org}/members?recursive=true&page_size=1000"),
            admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut order = Vec::new();
    for m in list["items"].as_array().unwrap() {
        if m["status"] != "active" {
            continue;
        }
        let id = m["id"].as_str().unwrap().to_owned();
        let (status, ledger) = app
            .get(&format!("/api/v1/members/{id}/ledger?year={YEAR}"), admin)
            .await;
        assert_eq!(status, StatusCode::OK, "{ledger}");
        order.push((id, tenths(ledger["total"].as_f64().unwrap())));
    }
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    order
}

fn ranked(body: &Value) -> Vec<(String, i64)> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_keys(
                i,
                &["member_id", "name", "branch_id", "branch_name", "total"],
                &[],
            );
            (
                i["member_id"].as_str().unwrap().to_owned(),
                tenths(i["total"].as_f64().unwrap()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ranking_follows_the_ledger_totals_and_scope_holds() {
    let app = spawn_app_with(|s| s.dashboard_cache_ttl = std::time::Duration::ZERO).await;
    let (a, b) = city(&app).await;
    let admin = app.admin_token.clone();

    let want = ledger_order(&app, &a.committee_id).await;
    assert!(
        want.len() > 2 && want[0].1 > want[want.len() - 1].1,
        "{want:?}"
    );
    let (status, _, body) =
        fetch(&app, &ranking(&a.committee_id, "?year=2026"), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_keys(&body, &["items"], &[]);
    // Default limit 10: every member of this small city.
    assert_eq!(ranked(&body), want);
    let (status, _, body) = fetch(
        &app,
        &ranking(&a.committee_id, "?year=2026&limit=2"),
        Some(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ranked(&body), want[..2].to_vec());
    let name = &body["items"][0]["name"];
    assert!(name.as_str().is_some_and(|n| !n.is_empty()), "{body}");

    // A branch's secretary: their branch (its own members only), not the sibling.
    let (status, _, body) = fetch(
        &app,
        &ranking(&a.branch_id, "?year=2026&limit=100"),
        Some(&a.secretary.token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ranked(&body), ledger_order(&app, &a.branch_id).await);
    for org in [&b.branch_id, &a.committee_id] {
        let (status, _, body) =
            fetch(&app, &ranking(org, "?year=2026"), Some(&a.secretary.token)).await;
        assert_problem(status, &body, 404, "not_found", Some("org_id"));
    }
    let (status, _, body) = fetch(
        &app,
        &ranking(&a.branch_id, "?year=2026"),
        Some(&a.members[0].token),
    )
    .await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, _, body) = fetch(&app, &ranking(&a.branch_id, "?year=2026"), None).await;
    assert_problem(status, &body, 401, "unauthenticated", None);

    // Bad input.
    for query in [
        "?year=2026&limit=101",
        "?year=2026&limit=0",
        "?year=2026&limit=x",
    ] {
        let (status, _, body) = fetch(&app, &ranking(&a.branch_id, query), Some(&admin)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("limit"));
    }
    for query in ["", "?limit=5", "?year=1999"] {
        let (status, _, body) = fetch(&app, &ranking(&a.branch_id, query), Some(&admin)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("year"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_is_self_contained_html_under_a_strict_policy() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/dashboard/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let html = r.text().await.unwrap();
    assert!(html.contains("lang=\"zh-CN\"") && html.contains("党建看板"));
    // Nothing from elsewhere, nothing inline that the policy would block.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external reference"
    );
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "inline script or style"
    );

    let r = app
        .client
        .get(app.url("/dashboard/dashboard.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(r.headers().contains_key("content-security-policy"));
    let script = r.text().await.unwrap();
    for path in [
        "/api/v1/auth/login",
        "/api/v1/me",
        "/api/v1/orgs/",
        "/children",
        "/api/v1/dashboard/orgs/",
        "/ranking?year=",
        "/exports/ledger.xlsx?year=",
    ] {
        assert!(script.contains(path), "the script does not use {path}");
    }
    assert!(!script.contains("http://") && !script.contains("https://"));
    let r = app
        .client
        .get(app.url("/dashboard/dashboard.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

fn trend(org: &str, query: &str) -> String {
    format!("/api/v1/dashboard/orgs/{org}/trend{query}")
}

/// The figures of a month's dashboard that a trend month repeats.
fn month_figures(body: &Value) -> Value {
    json!({
        "members": body["members"],
        "declared": body["declared"],
        "participation_rate": body["participation_rate"],
        "approved_points_avg": body["approved_points_avg"],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_trend_month_is_the_month_dashboard_and_scope_holds() {
    let app = spawn_app_with(|s| s.dashboard_cache_ttl = std::time::Duration::ZERO).await;
    let (a, b) = city(&app).await; // the clock now stands in April 2026 (Shanghai)
    let admin = app.admin_token.clone();

    for (org, token) in [
        (&a.committee_id, &admin),
        (&a.branch_id, &a.secretary.token),
        (&b.branch_id, &b.secretary.token),
    ] {
        let (status, cache, body) = fetch(&app, &trend(org, "?year=2026"), Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(cache, "miss");
        assert_keys(&body, &["org_id", "name", "year", "months"], &[]);
        assert_eq!(body["org_id"], org.as_str());
        assert_eq!(body["year"], YEAR);
        let (status, o) = app.get(&format!("/api/v1/orgs/{org}"), Some(&admin)).await;
        assert_eq!(status, StatusCode::OK, "{o}");
        assert_eq!(body["name"], o["name"]);
        // The running year: January to the current month.
        let months = body["months"].as_array().unwrap();
        let names: Vec<&str> = months
            .iter()
            .map(|m| m["month"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["2026-01", "2026-02", "2026-03", "2026-04"],
            "{body}"
        );
        for m in months {
            assert_keys(
                m,
                &[
                    "month",
                    "members",
                    "declared",
                    "participation_rate",
                    "approved_points_avg",
                ],
                &[],
            );
            let month = m["month"].as_str().unwrap();
            let (status, _, single) =
                fetch(&app, &dash(org, &format!("?month={month}")), Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{single}");
            let mut want = month_figures(&single);
            want["month"] = json!(month);
            assert_eq!(m, &want, "{org} {month}");
        }
    }
    // Something is counted, in March and April: the test would prove little on zeros.
    let (_, _, body) = fetch(&app, &trend(&a.committee_id, "?year=2026"), Some(&admin)).await;
    let march = &body["months"][2];
    assert!(march["declared"].as_i64().unwrap() > 0, "{body}");
    assert_ne!(march["approved_points_avg"], json!(0.0), "{body}");
    assert_ne!(
        body["months"][3]["approved_points_avg"],
        json!(0.0),
        "{body}"
    );

    // A past year has twelve months, a year not begun none.
    let (status, _, past) = fetch(&app, &trend(&a.committee_id, "?year=2025"), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{past}");
    let months = past["months"].as_array().unwrap();
    assert_eq!(months.len(), 12, "{past}");
    assert_eq!(months[0]["month"], "2025-01");
    assert_eq!(months[11]["month"], "2025-12");
    let (status, _, future) =
        fetch(&app, &trend(&a.committee_id, "?year=2027"), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{future}");
    assert_eq!(future["months"], json!([]));

    // Scope: the secretary of a branch neither sees the sibling nor the committee; members
    // never; strangers not at all.
    for org in [&b.branch_id, &a.committee_id] {
        let (status, _, body) =
            fetch(&app, &trend(org, "?year=2026"), Some(&a.secretary.token)).await;
        assert_problem(status, &body, 404, "not_found", Some("org_id"));
    }
    let (status, _, body) = fetch(
        &app,
        &trend(&a.branch_id, "?year=2026"),
        Some(&a.members[0].token),
    )
    .await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, _, body) = fetch(&app, &trend(&a.branch_id, "?year=2026"), None).await;
    assert_problem(status, &body, 401, "unauthenticated", None);
    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, _, body) = fetch(&app, &trend(&unknown, "?year=2026"), Some(&admin)).await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));

    // Bad input names its field.
    for query in ["", "?year=", "?year=1999", "?year=2101", "?year=twenty"] {
        let (status, _, body) = fetch(&app, &trend(&a.branch_id, query), Some(&admin)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("year"));
    }
    let (status, _, body) = fetch(&app, &trend("nope", "?year=2026"), Some(&admin)).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("id"));
}

/// Deletes every key of the test's Redis prefix — this test's FLUSHALL: a real FLUSHALL would
/// empty the Redis that every other test shares. Answers how many were deleted.
async fn delete_prefix_keys(app: &TestApp) -> usize {
    let client = redis::Client::open(jifen_testkit::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", app.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    if !keys.is_empty() {
        let () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    keys.len()
}

/// The histogram, the branches and the new fields against the other reads; scope and bad
/// input; then the same five answers with the gateway's Redis cut (a TcpProxy, the shared Redis
/// untouched) and after the test prefix's keys are deleted: Redis is only a cache.
#[tokio::test(flavor = "multi_thread")]
async fn charts_agree_with_the_other_reads_and_redis_is_only_a_cache() {
    let redis_addr: std::net::SocketAddr = jifen_testkit::redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let proxy = jifen_testkit::proxy::TcpProxy::start(redis_addr)
        .await
        .unwrap();
    let proxied = format!("redis://{}", proxy.addr);
    let app = spawn_app_with(|s| s.redis_url = proxied).await; // the default TTL: cached
    let (a, b) = city(&app).await;
    // A group (党小组) under branch a, with one member (March is closed by now: no
    // declaration).
    let group = app.org(&a.branch_id, "da 第一党小组", "group").await;
    let group_id = group["id"].as_str().unwrap().to_owned();
    let g0 = crate::support::person(&app, &group_id, "dg", "m0", "组员").await;
    app.wait_member(&g0.id).await;
    app.wait_ledger(&g0.id, YEAR, 0).await;
    let admin = app.admin_token.clone();
    let month = format!("?month={MONTH}");

    // The org dashboard's new fields.
    let (status, _, c) = fetch(&app, &dash(&a.committee_id, &month), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["name"], "da 党委");
    assert_eq!(c["parent_id"], app.root_id.as_str());
    let (_, root) = app
        .get(&format!("/api/v1/orgs/{}", app.root_id), Some(&admin))
        .await;
    assert_eq!(
        c["ancestors"],
        json!([{"org_id": app.root_id, "name": root["name"]}])
    );
    for child in c["children"].as_array().unwrap() {
        assert_eq!(child["kind"], "branch", "{child}");
        let (_, _, own) = fetch(
            &app,
            &dash(child["org_id"].as_str().unwrap(), &month),
            Some(&admin),
        )
        .await;
        assert_eq!(child["members"], own["members"]);
        assert_eq!(child["declared"], own["declared"]);
    }
    let (_, _, ab) = fetch(&app, &dash(&a.branch_id, &month), Some(&admin)).await;
    assert_eq!(
        ab["ancestors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["org_id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [app.root_id.as_str(), a.committee_id.as_str()]
    );
    let group_line = ab["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ch| ch["org_id"] == group_id.as_str())
        .unwrap();
    assert_eq!(
        (
            &group_line["kind"],
            &group_line["members"],
            &group_line["declared"]
        ),
        (&json!("group"), &json!(1), &json!(0))
    );
    // The branch's secretary sees no breadcrumb above their branch (the cached entry of the
    // admin is not theirs).
    let (status, _, own) = fetch(&app, &dash(&a.branch_id, &month), Some(&a.secretary.token)).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["ancestors"], json!([]));
    assert_eq!(own["parent_id"], a.committee_id.as_str());
    assert_eq!(own["members"], ab["members"]);

    // The ranking names each member's branch; the group's member is in branch a.
    let (status, _, top) = fetch(
        &app,
        &ranking(&a.committee_id, "?year=2026&limit=100"),
        Some(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{top}");
    let items = top["items"].as_array().unwrap();
    for item in items {
        let id = item["member_id"].as_str().unwrap();
        let (want_id, want_name) = if b.members.iter().chain([&b.secretary]).any(|p| p.id == id) {
            (&b.branch_id, "db 党支部")
        } else {
            (&a.branch_id, "da 党支部")
        };
        assert_eq!(item["branch_id"], want_id.as_str(), "{item}");
        assert_eq!(item["branch_name"], want_name, "{item}");
    }
    assert!(items.iter().any(|i| i["member_id"] == g0.id.as_str()));

    // The histogram holds exactly the ranking's totals (every member: fewer than 100).
    let totals: Vec<i64> = items
        .iter()
        .map(|i| tenths(i["total"].as_f64().unwrap()))
        .collect();
    assert_eq!(totals.len() as i64, c["members"].as_i64().unwrap());
    for bins in [1, 4, 10, 50] {
        let (status, cache, h) = fetch(
            &app,
            &histogram(&a.committee_id, &format!("?year=2026&bins={bins}")),
            Some(&admin),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{h}");
        assert_eq!(cache, "miss");
        assert_keys(&h, &["org_id", "year", "members", "bin_width", "bins"], &[]);
        assert_eq!(h["members"].as_i64().unwrap(), totals.len() as i64);
        let width = tenths(h["bin_width"].as_f64().unwrap());
        let hb = h["bins"].as_array().unwrap();
        assert_eq!(hb.len(), bins);
        let mut sum = 0;
        for bin in hb {
            assert_keys(bin, &["from", "to", "count"], &[]);
            let (from, to) = (
                tenths(bin["from"].as_f64().unwrap()),
                tenths(bin["to"].as_f64().unwrap()),
            );
            assert_eq!(to - from, width);
            let inside = totals.iter().filter(|t| (from..to).contains(t)).count() as i64;
            assert_eq!(bin["count"].as_i64().unwrap(), inside, "{h}");
            sum += inside;
        }
        assert_eq!(sum, totals.len() as i64);
    }
    let (_, _, default) = fetch(&app, &histogram(&a.branch_id, "?year=2026"), Some(&admin)).await;
    assert_eq!(default["bins"].as_array().unwrap().len(), 10);

    // The branches: each its own dashboard, lowest participation first, lagging below 0.8.
    let (status, _, br) = fetch(&app, &branches(&a.committee_id, &month), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{br}");
    assert_keys(&br, &["org_id", "month", "threshold", "items"], &[]);
    assert_eq!(br["threshold"], json!(0.8));
    let lines = br["items"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{br}");
    let mut last = -1.0;
    for line in lines {
        assert_keys(
            line,
            &[
                "org_id",
                "name",
                "parent_id",
                "parent_name",
                "members",
                "declared",
                "participation_rate",
                "approved_points_avg",
                "lagging",
            ],
            &[],
        );
        let (_, _, own) = fetch(
            &app,
            &dash(line["org_id"].as_str().unwrap(), &month),
            Some(&admin),
        )
        .await;
        for k in [
            "members",
            "declared",
            "participation_rate",
            "approved_points_avg",
        ] {
            assert_eq!(line[k], own[k], "{k}: {line} vs {own}");
        }
        assert_eq!(line["parent_id"], a.committee_id.as_str());
        assert_eq!(line["parent_name"], "da 党委");
        let rate = line["participation_rate"].as_f64().unwrap();
        assert!(rate >= last, "lowest first: {br}");
        last = rate;
        assert_eq!(
            line["lagging"],
            json!(line["members"].as_i64().unwrap() > 0 && rate < 0.8),
            "{line}"
        );
    }
    assert!(lines.iter().any(|l| l["lagging"] == true), "{br}");

    // Scope and bad input of the new routes.
    for path in [
        histogram(&a.branch_id, "?year=2026"),
        branches(&a.branch_id, &month),
    ] {
        let (status, _, body) = fetch(&app, &path, Some(&a.members[0].token)).await;
        assert_problem(status, &body, 403, "permission_denied", None);
        let (status, _, body) = fetch(&app, &path, Some(&b.secretary.token)).await;
        assert_problem(status, &body, 404, "not_found", Some("org_id"));
        let (status, _, body) = fetch(&app, &path, None).await;
        assert_problem(status, &body, 401, "unauthenticated", None);
    }
    for query in [
        "?year=2026&bins=0",
        "?year=2026&bins=51",
        "?year=2026&bins=x",
    ] {
        let (status, _, body) = fetch(&app, &histogram(&a.branch_id, query), Some(&admin)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("bins"));
    }
    for query in ["", "?bins=5", "?year=1999"] {
        let (status, _, body) = fetch(&app, &histogram(&a.branch_id, query), Some(&admin)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("year"));
    }
    for query in ["", "?month=2026-13", "?month=2026-3"] {
        let (status, _, body) = fetch(&app, &branches(&a.branch_id, query), Some(&admin)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("month"));
    }
    for path in [
        histogram("x", "?year=2026"),
        branches("x", &month),
        trend("x", "?year=2026"),
    ] {
        let (status, _, body) = fetch(&app, &path, Some(&admin)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("id"));
    }

    // The header's names: a member sees their own name, the admin their username.
    let (status, me) = app
        .get("/api/v1/me/profile", Some(&a.secretary.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "书记");
    assert_eq!(me["member_id"], a.secretary.id.as_str());
    let roles = me["roles"].as_array().unwrap();
    assert!(
        roles
            .iter()
            .any(|r| r["role"] == "secretary" && r["org_name"] == "da 党支部"),
        "{me}"
    );
    let (status, me) = app.get("/api/v1/me/profile", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "admin");
    assert_eq!(me["roles"][0]["org_name"], root["name"]);
    let (status, body) = app.get("/api/v1/me/profile", None).await;
    assert_problem(status, &body, 401, "unauthenticated", None);

    // Redis is only a cache. The five answers, cached…
    let paths = [
        dash(&a.committee_id, &month),
        trend(&a.committee_id, "?year=2026"),
        histogram(&a.committee_id, "?year=2026&bins=10"),
        branches(&a.committee_id, &month),
        ranking(&a.committee_id, "?year=2026&limit=100"),
    ];
    let mut before = Vec::new();
    for path in &paths {
        let (status, _, body) = fetch(&app, path, Some(&admin)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let (_, cache, again) = fetch(&app, path, Some(&admin)).await;
        assert_eq!((cache.as_str(), &again), ("hit", &body), "{path}");
        before.push(body);
    }
    // …answer the same with the gateway's Redis unreachable (a miss each time)…
    proxy.cut();
    for (path, want) in paths.iter().zip(&before) {
        let (status, cache, body) = fetch(&app, path, Some(&admin)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(cache, "miss", "{path}");
        assert_eq!(&body, want, "{path}");
    }
    // …and scope still holds without the cache.
    let (status, _, body) = fetch(&app, &paths[0], Some(&b.secretary.token)).await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));
    proxy.restore();
    // After the test's FLUSHALL (every key of its prefix deleted), the same figures, a miss,
    // then a hit again.
    assert!(delete_prefix_keys(&app).await > 0);
    for (path, want) in paths.iter().zip(&before) {
        let (status, cache, body) = fetch(&app, path, Some(&admin)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(cache, "miss", "{path}");
        assert_eq!(&body, want, "{path}");
        let (_, cache, _) = fetch(&app, path, Some(&admin)).await;
        assert_eq!(cache, "hit", "{path}");
    }

    // An admin of the committee: the breadcrumb starts at their committee, whoever read first.
    let mut chief = b.members[1].clone();
    grant(&app, &mut chief, &a.committee_id, "admin").await;
    let (status, _, seen) = fetch(&app, &dash(&a.branch_id, &month), Some(&chief.token)).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(
        seen["ancestors"],
        json!([{"org_id": a.committee_id, "name": "da 党委"}])
    );
    let (_, _, seen) = fetch(&app, &dash(&a.committee_id, &month), Some(&chief.token)).await;
    assert_eq!(seen["ancestors"], json!([]));
    assert_eq!(seen["members"], before[0]["members"]);
}

fn histogram(org: &str, query: &str) -> String {
    format!("/api/v1/dashboard/orgs/{org}/histogram{query}")
}

fn branches(org: &str, query: &str) -> String {
    format!("/api/v1/dashboard/orgs/{org}/branches{query}")
}
