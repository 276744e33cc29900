//! Monthly declarations through the gateway (API.md "Monthly declarations"), against a real
//! declarations service on a manual clock: every transition and every refusal, review races,
//! branch records, reopened months, history.
#![allow(clippy::unwrap_used)]

use crate::helpers::{MONTH, TestApp, assert_keys, assert_problem, spawn_app};
use crate::support::{Branch, branch, png, upload};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const DECLARATION_KEYS: [&str; 12] = [
    "id",
    "member_id",
    "org_id",
    "month",
    "status",
    "lines",
    "claimed_total",
    "version",
    // Present once they apply; listed here so `assert_keys` accepts them.
    "approved_total",
    "submitted_at",
    "reviewed_at",
    "reviewer_id",
];
/// Extensions of API.md's Declaration.
pub const DECLARATION_EXTENSIONS: [&str; 2] = ["comment", "open_until"];
const LINE_KEYS: [&str; 7] = [
    "line_id",
    "item_code",
    "quantity",
    "claimed_points",
    "note",
    "evidence",
    "source",
];
const LINE_OPTIONAL: [&str; 3] = ["approved_points", "item_name", "adjust_reason"];

fn declaration_path(member_id: &str, month: &str) -> String {
    format!("/api/v1/members/{member_id}/declarations/{month}")
}

async fn declare(
    app: &TestApp,
    token: &str,
    member_id: &str,
    month: &str,
    lines: Value,
) -> (StatusCode, Value) {
    app.put(
        &declaration_path(member_id, month),
        Some(token),
        &json!({ "lines": lines }),
    )
    .await
}

async fn submit(app: &TestApp, token: &str, id: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/declarations/{id}:submit"),
        Some(token),
        &json!({}),
    )
    .await
}

async fn review(app: &TestApp, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/declarations/{id}:review"),
        Some(token),
        &body,
    )
    .await
}

/// Saves and submits `lines` for `member` in `month`; answers the submitted declaration.
async fn declared_and_submitted(
    app: &TestApp,
    token: &str,
    member_id: &str,
    month: &str,
    lines: Value,
) -> Value {
    let (status, draft) = declare(app, token, member_id, month, lines).await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    let (status, submitted) = submit(app, token, draft["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    assert_eq!(submitted["status"], "submitted");
    submitted
}

fn assert_declaration_shape(d: &Value) {
    let optional: Vec<&str> = DECLARATION_KEYS[8..]
        .iter()
        .chain(DECLARATION_EXTENSIONS.iter())
        .copied()
        .collect();
    assert_keys(d, &DECLARATION_KEYS[..8], &optional);
    for line in d["lines"].as_array().unwrap() {
        assert_keys(line, &LINE_KEYS, &LINE_OPTIONAL);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declaration_goes_through_every_transition_and_the_history_shows_each() {
    let app = spawn_app().await;
    let b = branch(&app, "a", 1).await;
    let m = &b.members[0];

    // Nothing saved yet: an empty draft with a null id, open until the deadline.
    let (status, empty) = app
        .get(&declaration_path(&m.id, MONTH), Some(&m.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_declaration_shape(&empty);
    assert!(empty["id"].is_null(), "{empty}");
    assert_eq!(empty["status"], "draft");
    assert_eq!(empty["member_id"], m.id.as_str());
    assert_eq!(empty["org_id"], b.branch_id.as_str());
    assert_eq!(empty["month"], MONTH);
    assert_eq!(empty["claimed_total"], 0);
    assert_eq!(empty["version"], 0);
    assert_eq!(empty["lines"], json!([]));
    // March closes at the end of April 5 in Shanghai.
    assert_eq!(empty["open_until"], "2026-04-05T16:00:00.000Z");

    // PUT: a draft with the standard's points.
    let lines = json!([
        {"item_code": "F04", "quantity": 1, "note": "党员示范岗"},
        {"item_code": "F01", "quantity": 1},
    ]);
    let (status, draft) = declare(&app, &m.token, &m.id, MONTH, lines).await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    assert_declaration_shape(&draft);
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["claimed_total"], 2);
    assert_eq!(draft["version"], 1);
    let line = &draft["lines"][0];
    assert_eq!(line["item_code"], "F04");
    assert_eq!(line["quantity"], 1);
    assert_eq!(line["claimed_points"], 1);
    assert_eq!(line["note"], "党员示范岗");
    assert_eq!(line["evidence"], json!([]));
    assert_eq!(line["source"], "member");
    assert!(line.get("approved_points").is_none(), "{line}");
    let id = draft["id"].as_str().unwrap().to_owned();

    // Submit (twice with one Idempotency-Key: the retry gets the first answer).
    let path = format!("/api/v1/declarations/{id}:submit");
    let key = [("idempotency-key", "submit-once")];
    let first = app
        .raw(
            reqwest::Method::POST,
            &path,
            Some(&m.token),
            Some(&json!({})),
            &key,
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let submitted: Value = first.json().await.unwrap();
    assert_eq!(submitted["status"], "submitted");
    assert!(
        submitted["submitted_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-10T02:00:00")
    );
    assert!(submitted.get("open_until").is_none(), "{submitted}");
    let retry = app
        .raw(
            reqwest::Method::POST,
            &path,
            Some(&m.token),
            Some(&json!({})),
            &key,
        )
        .await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    // Without the key, a second submit is a state conflict.
    let (status, body) = submit(&app, &m.token, &id).await;
    assert_problem(status, &body, 409, "not_draft", None);
    // A submitted declaration cannot be changed.
    let (status, body) = declare(
        &app,
        &m.token,
        &m.id,
        MONTH,
        json!([{"item_code": "F04", "quantity": 1}]),
    )
    .await;
    assert_problem(status, &body, 409, "not_editable", None);

    // Returned with a comment, changed (a draft again), submitted again, approved.
    app.clock.advance(chrono::Duration::hours(1));
    let (status, returned) = review(
        &app,
        &b.secretary.token,
        &id,
        json!({"decision": "return", "comment": "F01 请补充说明"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    assert_eq!(returned["status"], "returned");
    assert_eq!(returned["comment"], "F01 请补充说明");
    assert!(returned.get("approved_total").is_none(), "{returned}");
    let (status, redrafted) = declare(
        &app,
        &m.token,
        &m.id,
        MONTH,
        json!([{"item_code": "F04", "quantity": 1}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{redrafted}");
    assert_eq!(redrafted["status"], "draft");
    assert_eq!(redrafted["id"], id.as_str());
    assert_eq!(redrafted["claimed_total"], 1);
    let (status, resubmitted) = submit(&app, &m.token, &id).await;
    assert_eq!(status, StatusCode::OK, "{resubmitted}");
    app.clock.advance(chrono::Duration::hours(1));
    let (status, approved) = review(
        &app,
        &b.secretary.token,
        &id,
        json!({"decision": "approve"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_declaration_shape(&approved);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approved_total"], 1);
    assert_eq!(approved["lines"][0]["approved_points"], 1);
    assert!(
        approved["reviewed_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-10T04:00:00")
    );
    assert!(!approved["reviewer_id"].as_str().unwrap().is_empty());

    // Approved is final.
    let (status, body) = review(
        &app,
        &b.secretary.token,
        &id,
        json!({"decision": "approve"}),
    )
    .await;
    assert_problem(status, &body, 409, "not_submitted", None);
    let (status, body) = declare(
        &app,
        &m.token,
        &m.id,
        MONTH,
        json!([{"item_code": "F04", "quantity": 1}]),
    )
    .await;
    assert_problem(status, &body, 409, "not_editable", None);
    let (status, body) = submit(&app, &m.token, &id).await;
    assert_problem(status, &body, 409, "not_draft", None);

    // The member's GET shows the stored declaration.
    let (status, got) = app
        .get(&declaration_path(&m.id, MONTH), Some(&m.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["status"], "approved");
    assert_eq!(got["version"], approved["version"]);

    // History: who, when, from, to, why — for the member and the secretary alike.
    for token in [&m.token, &b.secretary.token] {
        let (status, history) = app
            .get(&format!("/api/v1/declarations/{id}/history"), Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "{history}");
        assert_keys(&history, &["declaration_id", "items"], &[]);
        assert_eq!(history["declaration_id"], id.as_str());
        let items = history["items"].as_array().unwrap();
        for item in items {
            assert_keys(
                item,
                &[
                    "at",
                    "actor_id",
                    "actor_name",
                    "from",
                    "to",
                    "reason",
                    "version",
                ],
                &[],
            );
        }
        let steps: Vec<(Value, Value)> = items
            .iter()
            .map(|t| (t["from"].clone(), t["to"].clone()))
            .collect();
        assert_eq!(
            steps,
            vec![
                (Value::Null, json!("draft")),
                (json!("draft"), json!("submitted")),
                (json!("submitted"), json!("returned")),
                (json!("returned"), json!("draft")),
                (json!("draft"), json!("submitted")),
                (json!("submitted"), json!("approved")),
            ],
            "{history}"
        );
        let by: Vec<&str> = items
            .iter()
            .map(|t| t["actor_name"].as_str().unwrap())
            .collect();
        let (member, secretary) = (m.username.as_str(), b.secretary.username.as_str());
        assert_eq!(by, [member, member, secretary, member, member, secretary]);
        assert_eq!(items[2]["reason"], "F01 请补充说明");
        assert_eq!(items[0]["at"], "2026-03-10T02:00:00.000Z");
        assert_eq!(items[2]["at"], "2026-03-10T03:00:00.000Z");
        assert_eq!(items[5]["at"], "2026-03-10T04:00:00.000Z");
        let versions: Vec<i64> = items
            .iter()
            .map(|t| t["version"].as_i64().unwrap())
            .collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        assert_ne!(items[0]["actor_id"], items[2]["actor_id"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reject_needs_a_comment_and_is_final() {
    let app = spawn_app().await;
    let b = branch(&app, "r", 1).await;
    let m = &b.members[0];
    let d = declared_and_submitted(
        &app,
        &m.token,
        &m.id,
        MONTH,
        json!([{"item_code": "F04", "quantity": 1}]),
    )
    .await;
    let id = d["id"].as_str().unwrap();

    for decision in ["reject", "return"] {
        let (status, body) =
            review(&app, &b.secretary.token, id, json!({"decision": decision})).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("comment"));
    }
    let (status, body) = review(&app, &b.secretary.token, id, json!({"decision": "maybe"})).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("decision"));

    let (status, rejected) = review(
        &app,
        &b.secretary.token,
        id,
        json!({"decision": "reject", "comment": "与实际不符"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["comment"], "与实际不符");
    assert!(rejected.get("approved_total").is_none());
    let (status, body) = declare(
        &app,
        &m.token,
        &m.id,
        MONTH,
        json!([{"item_code": "F04", "quantity": 1}]),
    )
    .await;
    assert_problem(status, &body, 409, "not_editable", None);
    let (status, body) = review(&app, &b.secretary.token, id, json!({"decision": "approve"})).await;
    assert_problem(status, &body, 409, "not_submitted", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_lines_are_named_and_a_monthly_cap_is_a_rule_violation() {
    let app = spawn_app().await;
    let b = branch(&app, "c", 1).await;
    let m = &b.members[0];
    let put = |lines: Value| declare(&app, &m.token, &m.id, MONTH, lines);

    let (status, body) = put(json!([{"item_code": "Z99", "quantity": 1}])).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[0].item_code"),
    );
    // P01 is recorded by the branch, not declared by members.
    let (status, body) =
        put(json!([{"item_code": "F04", "quantity": 1}, {"item_code": "P01", "quantity": 1}]))
            .await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[1].item_code"),
    );
    // P02 needs evidence.
    let (status, body) = put(json!([{"item_code": "P02", "quantity": 1}])).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[0].evidence"),
    );
    // A reference nobody uploaded.
    let fake = format!("sha256:{}", "ab".repeat(32));
    let (status, body) =
        put(json!([{"item_code": "P02", "quantity": 1, "evidence": [fake]}])).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[0].evidence[0]"),
    );
    let (status, body) = put(json!([{"item_code": "F04", "quantity": 0}])).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[0].quantity"),
    );
    // The gateway names JSON that does not fit the shape.
    let (status, body) = put(json!([{"item_code": "F04", "quantity": "two"}])).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[0].quantity"),
    );
    let (status, body) = put(json!([{"quantity": 1}])).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[0].item_code"),
    );
    let (status, body) = declare(&app, &m.token, &m.id, "2026-13", json!([])).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("month"));
    let (status, body) = declare(&app, &m.token, "not-a-uuid", MONTH, json!([])).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("id"));
    // Nothing to submit.
    let (status, empty) = put(json!([])).await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    let (status, body) = submit(&app, &m.token, empty["id"].as_str().unwrap()).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("lines"));

    // F02 (2 points, 4 a month) three times: 6 points is over the cap, refused at submission.
    let (status, evidence) = upload(&app, &m.token, &png(1), "image/png").await;
    assert_eq!(status, StatusCode::CREATED, "{evidence}");
    let reference = evidence["reference"].as_str().unwrap();
    let (status, draft) = put(json!([
        {"item_code": "F02", "quantity": 3, "note": "社区志愿服务", "evidence": [reference]},
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    assert_eq!(draft["claimed_total"], 6);
    assert_eq!(draft["lines"][0]["evidence"], json!([reference]));
    let (status, body) = submit(&app, &m.token, draft["id"].as_str().unwrap()).await;
    assert_problem(status, &body, 422, "monthly_cap_exceeded", None);
    assert_eq!(body["errors"][0]["field"], "lines[0].quantity", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("F02") && detail.contains("capped at 4 points"),
        "{detail}"
    );
    // Twice is exactly the cap.
    let (status, draft) = put(json!([
        {"item_code": "F02", "quantity": 2, "evidence": [reference]},
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    let (status, submitted) = submit(&app, &m.token, draft["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    assert_eq!(submitted["claimed_total"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_month_outside_its_window_is_closed() {
    let app = spawn_app().await;
    let b = branch(&app, "p", 1).await;
    let m = &b.members[0];
    let line = json!([{"item_code": "F04", "quantity": 1}]);

    // February closed on March 5; May has not begun.
    for month in ["2026-02", "2026-05"] {
        let (status, body) = declare(&app, &m.token, &m.id, month, line.clone()).await;
        assert_problem(status, &body, 409, "period_closed", None);
        let (status, got) = app
            .get(&declaration_path(&m.id, month), Some(&m.token))
            .await;
        assert_eq!(status, StatusCode::OK, "{got}");
        assert!(got.get("open_until").is_none(), "{got}");
    }

    // A draft saved in time cannot be submitted after the deadline (April 5, Shanghai).
    let (status, draft) = declare(&app, &m.token, &m.id, MONTH, line.clone()).await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    app.clock.set("2026-04-05T15:59:59Z".parse().unwrap());
    let (status, body) = declare(&app, &m.token, &m.id, MONTH, line.clone()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "still open on the deadline day: {body}"
    );
    app.clock.set("2026-04-05T16:00:00Z".parse().unwrap());
    let (status, body) = submit(&app, &m.token, draft["id"].as_str().unwrap()).await;
    assert_problem(status, &body, 409, "period_closed", None);

    // Late in the year, September is long closed.
    app.clock.set("2026-11-22T02:00:00Z".parse().unwrap());
    let (status, body) = declare(&app, &m.token, &m.id, "2026-09", line).await;
    assert_problem(status, &body, 409, "period_closed", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reopened_month_takes_late_declarations_until_the_instant_given() {
    let app = spawn_app().await;
    let b = branch(&app, "o", 2).await;
    let (early, late) = (&b.members[0], &b.members[1]);
    let line = json!([{"item_code": "F04", "quantity": 1, "note": "补报"}]);
    let closed = "2026-01";
    let (status, body) = declare(&app, &early.token, &early.id, closed, line.clone()).await;
    assert_problem(status, &body, 409, "period_closed", None);

    // Only staff reopen, within their scope, with a reason and a future instant.
    let reopen = |token: String, body: Value| {
        let app = &app;
        let path = format!("/api/v1/orgs/{}/periods/{closed}:reopen", b.branch_id);
        async move { app.post(&path, Some(&token), &body).await }
    };
    let until = "2026-03-12T16:00:00Z";
    let (status, body) = reopen(
        early.token.clone(),
        json!({"until": until, "reason": "系统故障"}),
    )
    .await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = reopen(
        b.secretary.token.clone(),
        json!({"until": "next week", "reason": "x"}),
    )
    .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("until"));
    let (status, body) = reopen(
        b.secretary.token.clone(),
        json!({"until": "2026-03-01T00:00:00Z", "reason": "x"}),
    )
    .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("until"));
    let (status, body) = reopen(
        b.secretary.token.clone(),
        json!({"until": until, "reason": ""}),
    )
    .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("reason"));
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{}/periods/{closed}:close", b.branch_id),
            Some(&b.secretary.token),
            &json!({}),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", None);

    let (status, reopening) = reopen(
        b.secretary.token.clone(),
        json!({"until": until, "reason": "系统故障补报"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reopening}");
    assert_keys(
        &reopening,
        &[
            "id",
            "org_id",
            "month",
            "until",
            "reason",
            "reopened_by",
            "reopened_at",
        ],
        &[],
    );
    assert_eq!(reopening["org_id"], b.branch_id.as_str());
    assert_eq!(reopening["month"], closed);
    assert_eq!(reopening["until"], "2026-03-12T16:00:00.000Z");
    assert_eq!(reopening["reason"], "系统故障补报");

    // Before the instant: saved and submitted.
    let (status, got) = app
        .get(&declaration_path(&early.id, closed), Some(&early.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["open_until"], "2026-03-12T16:00:00.000Z");
    let submitted =
        declared_and_submitted(&app, &early.token, &early.id, closed, line.clone()).await;
    assert_eq!(submitted["month"], closed);
    let (status, draft) = declare(&app, &late.token, &late.id, closed, line.clone()).await;
    assert_eq!(status, StatusCode::OK, "{draft}");

    // One second before: still open. At the instant (exclusive): closed again.
    app.clock.set("2026-03-12T15:59:59Z".parse().unwrap());
    let (status, body) = declare(&app, &late.token, &late.id, closed, line.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock.set("2026-03-12T16:00:00Z".parse().unwrap());
    let (status, body) = submit(&app, &late.token, draft["id"].as_str().unwrap()).await;
    assert_problem(status, &body, 409, "period_closed", None);
    let (status, body) = declare(&app, &late.token, &late.id, closed, line).await;
    assert_problem(status, &body, 409, "period_closed", None);
    // The branch still reviews what was handed in.
    let (status, approved) = review(
        &app,
        &b.secretary.token,
        submitted["id"].as_str().unwrap(),
        json!({"decision": "approve"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_acts_outside_their_scope() {
    let app = spawn_app().await;
    let a = branch(&app, "a", 2).await;
    let other = branch(&app, "b", 0).await;
    let (m1, m2) = (&a.members[0], &a.members[1]);
    let d = declared_and_submitted(
        &app,
        &m1.token,
        &m1.id,
        MONTH,
        json!([{"item_code": "F04", "quantity": 1}]),
    )
    .await;
    let id = d["id"].as_str().unwrap();

    // The other branch's secretary does not know this member or declaration exists.
    let outsider = &other.secretary.token;
    let (status, body) = app
        .get(&declaration_path(&m1.id, MONTH), Some(outsider))
        .await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = review(&app, outsider, id, json!({"decision": "approve"})).await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = app
        .get(
            &format!("/api/v1/declarations/{id}/history"),
            Some(outsider),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = app
        .get(
            &format!("/api/v1/orgs/{}/declarations", a.branch_id),
            Some(outsider),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", None);

    // Another member of the same branch neither reads nor touches it.
    let (status, body) = app
        .get(&declaration_path(&m1.id, MONTH), Some(&m2.token))
        .await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = declare(
        &app,
        &m2.token,
        &m1.id,
        MONTH,
        json!([{"item_code": "F04", "quantity": 1}]),
    )
    .await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = app
        .get(
            &format!("/api/v1/declarations/{id}/history"),
            Some(&m2.token),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", None);
    // A member reviews nothing and lists nothing (the gateway's gate).
    let (status, body) = review(&app, &m2.token, id, json!({"decision": "approve"})).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = app
        .get(
            &format!("/api/v1/orgs/{}/declarations", a.branch_id),
            Some(&m2.token),
        )
        .await;
    assert_problem(status, &body, 403, "permission_denied", None);

    // The branch's secretary reads it but does not write the member's declaration for them.
    let (status, _) = app
        .get(&declaration_path(&m1.id, MONTH), Some(&a.secretary.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = declare(
        &app,
        &a.secretary.token,
        &m1.id,
        "2026-03",
        json!([{"item_code": "F04", "quantity": 1}]),
    )
    .await;
    assert_problem(status, &body, 403, "permission_denied", None);

    // A secretary is a member too: they declare, but never review their own declaration.
    let own = declared_and_submitted(
        &app,
        &a.secretary.token,
        &a.secretary.id,
        MONTH,
        json!([{"item_code": "F04", "quantity": 1}]),
    )
    .await;
    let own_id = own["id"].as_str().unwrap();
    let (status, body) = review(
        &app,
        &a.secretary.token,
        own_id,
        json!({"decision": "approve"}),
    )
    .await;
    assert_problem(status, &body, 403, "permission_denied", None);
    // The admin above approves it.
    let (status, approved) = review(
        &app,
        &app.admin_token,
        own_id,
        json!({"decision": "approve"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");

    // No token, a bad token.
    let (status, body) = app.get(&declaration_path(&m1.id, MONTH), None).await;
    assert_problem(status, &body, 401, "unauthenticated", None);
    let (status, body) = submit(&app, "not-a-jwt", id).await;
    assert_problem(status, &body, 401, "invalid_token", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lowered_line_needs_a_reason_and_the_total_follows_it() {
    let app = spawn_app().await;
    let b = branch(&app, "l", 1).await;
    let m = &b.members[0];
    let d = declared_and_submitted(
        &app,
        &m.token,
        &m.id,
        MONTH,
        json!([{"item_code": "F04", "quantity": 1}, {"item_code": "F01", "quantity": 1}]),
    )
    .await;
    let id = d["id"].as_str().unwrap();
    let f01 = d["lines"][1]["line_id"].as_str().unwrap();
    let approve = |points: Value, reason: &str| json!({"decision": "approve", "lines": [{"line_id": f01, "approved_points": points, "reason": reason}]});
    let s = &b.secretary.token;

    let (status, body) = review(&app, s, id, approve(json!(0.5), "")).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[0].reason"),
    );
    // More than one decimal is refused by the gateway; more than claimed by the service.
    let (status, body) = review(&app, s, id, approve(json!(0.55), "x")).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[0].approved_points"),
    );
    let (status, body) = review(&app, s, id, approve(json!(1.5), "x")).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[0].approved_points"),
    );
    let (status, body) = review(
        &app,
        s,
        id,
        json!({"decision": "approve", "lines": [{"line_id": "nope", "approved_points": 0}]}),
    )
    .await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("lines[0].line_id"),
    );
    // Still submitted after every refusal.
    let (_, got) = app.get(&declaration_path(&m.id, MONTH), Some(s)).await;
    assert_eq!(got["status"], "submitted");

    let (status, approved) = review(&app, s, id, approve(json!(0.5), "只履职半月")).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["claimed_total"], 2);
    assert_eq!(approved["approved_total"], 1.5);
    assert_eq!(approved["lines"][0]["approved_points"], 1);
    assert_eq!(approved["lines"][1]["approved_points"], 0.5);
    assert_eq!(approved["lines"][1]["adjust_reason"], "只履职半月");
    let (_, history) = app
        .get(
            &format!("/api/v1/declarations/{id}/history"),
            Some(&m.token),
        )
        .await;
    let last = history["items"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["reason"].as_str().unwrap().contains("只履职半月"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_reviewers_at_the_same_moment_one_wins_one_conflicts() {
    let app = spawn_app().await;
    let b = branch(&app, "x", 3).await;
    for m in &b.members {
        let d = declared_and_submitted(
            &app,
            &m.token,
            &m.id,
            MONTH,
            json!([{"item_code": "F04", "quantity": 1}]),
        )
        .await;
        let id = d["id"].as_str().unwrap();
        // The branch secretary and the admin above it approve at once.
        let (one, two) = tokio::join!(
            review(&app, &b.secretary.token, id, json!({"decision": "approve"})),
            review(
                &app,
                &app.admin_token,
                id,
                json!({"decision": "approve", "comment": "同意"})
            ),
        );
        let mut answers = [one, two];
        answers.sort_by_key(|(status, _)| *status);
        assert_eq!(answers[0].0, StatusCode::OK, "{}", answers[0].1);
        assert_eq!(answers[0].1["status"], "approved");
        assert_problem(answers[1].0, &answers[1].1, 409, "not_submitted", None);
        // Exactly one approval in the history.
        let (_, history) = app
            .get(
                &format!("/api/v1/declarations/{id}/history"),
                Some(&m.token),
            )
            .await;
        let approvals = history["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["to"] == "approved")
            .count();
        assert_eq!(approvals, 1, "{history}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_approval_and_listings() {
    let app = spawn_app().await;
    let b = branch(&app, "batch", 3).await;
    let s = &b.secretary.token;
    let mut submitted = Vec::new();
    for m in &b.members[..2] {
        let d = declared_and_submitted(
            &app,
            &m.token,
            &m.id,
            MONTH,
            json!([{"item_code": "F04", "quantity": 1}]),
        )
        .await;
        submitted.push(d["id"].as_str().unwrap().to_owned());
    }
    let third = &b.members[2];
    let (_, draft) = declare(
        &app,
        &third.token,
        &third.id,
        MONTH,
        json!([{"item_code": "F04", "quantity": 1}]),
    )
    .await;
    let draft_id = draft["id"].as_str().unwrap().to_owned();

    let path = format!("/api/v1/orgs/{}/declarations", b.branch_id);
    let (status, list) = app
        .get(&format!("{path}?month={MONTH}&status=submitted"), Some(s))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_keys(&list, &["items", "next_page_token"], &[]);
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list["next_page_token"], "");
    let (status, page) = app.get(&format!("{path}?page_size=1"), Some(s)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let token = page["next_page_token"].as_str().unwrap();
    assert!(!token.is_empty());
    let (status, rest) = app
        .get(&format!("{path}?page_size=5&page_token={token}"), Some(s))
        .await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    assert_eq!(rest["items"].as_array().unwrap().len(), 2, "{rest}");
    let (status, body) = app.get(&format!("{path}?status=pending"), Some(s)).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("status"));
    let (status, body) = app.get(&format!("{path}?month=March"), Some(s)).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("month"));

    let unknown = uuid::Uuid::now_v7().to_string();
    let ids = json!([submitted[0], submitted[1], draft_id, unknown]);
    let (status, result) = app
        .post(
            &format!("/api/v1/orgs/{}/declarations:batch-approve", b.branch_id),
            Some(s),
            &json!({"month": MONTH, "declaration_ids": ids}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_keys(&result, &["approved", "skipped"], &[]);
    assert_eq!(result["approved"], 2);
    assert_eq!(
        result["skipped"],
        json!([{"id": draft_id, "reason": "not_submitted"}, {"id": unknown, "reason": "not_found"}])
    );
    let (_, approved) = app.get(&format!("{path}?status=approved"), Some(s)).await;
    let items = approved["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for d in items {
        assert_declaration_shape(d);
        assert_eq!(d["approved_total"], 1);
    }
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{}/declarations:batch-approve", b.branch_id),
            Some(s),
            &json!({"month": MONTH, "declaration_ids": ["x"]}),
        )
        .await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("declaration_ids[0]"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn branch_records_appear_on_the_members_month_count_toward_caps_and_revoke_once() {
    let app = spawn_app().await;
    let b: Branch = branch(&app, "br", 1).await;
    let m = &b.members[0];
    let s = &b.secretary.token;
    let path = format!("/api/v1/orgs/{}/branch-records", b.branch_id);
    let record = |entries: Value, token: String| {
        let app = &app;
        let path = path.clone();
        async move {
            app.post(
                &path,
                Some(&token),
                &json!({"month": MONTH, "entries": entries}),
            )
            .await
        }
    };

    // Attendance at two branch study sessions: P01 × 2 = 4 points, the monthly cap.
    let (status, recorded) = record(
        json!([{"member_id": m.id, "item_code": "P01", "quantity": 2, "note": "3月两次集中学习"}]),
        s.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    assert_keys(&recorded, &["records"], &[]);
    let r = &recorded["records"][0];
    assert_keys(
        r,
        &[
            "id",
            "member_id",
            "org_id",
            "month",
            "item_code",
            "quantity",
            "points",
            "note",
            "recorded_by",
            "recorded_at",
            "revoked",
            "version",
        ],
        &[],
    );
    assert_eq!(r["member_id"], m.id.as_str());
    assert_eq!(r["item_code"], "P01");
    assert_eq!(r["quantity"], 2);
    assert_eq!(r["points"], 4);
    assert_eq!(r["revoked"], false);
    let record_id = r["id"].as_str().unwrap().to_owned();

    // The member's month shows it as a branch line.
    let (status, month) = app
        .get(&declaration_path(&m.id, MONTH), Some(&m.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_declaration_shape(&month);
    let branch_lines: Vec<&Value> = month["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["source"] == "branch")
        .collect();
    assert_eq!(branch_lines.len(), 1, "{month}");
    assert_eq!(branch_lines[0]["item_code"], "P01");
    assert_eq!(branch_lines[0]["claimed_points"], 4);
    assert_eq!(branch_lines[0]["approved_points"], 4);
    assert_eq!(branch_lines[0]["line_id"], record_id.as_str());

    // Refusals: a member-declared item, an unknown member, over the cap, a member recording.
    let (status, body) = record(
        json!([{"member_id": m.id, "item_code": "F04", "quantity": 1}]),
        s.clone(),
    )
    .await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("entries[0].item_code"),
    );
    let stranger = uuid::Uuid::now_v7().to_string();
    let (status, body) = record(
        json!([{"member_id": stranger, "item_code": "O01", "quantity": 1}]),
        s.clone(),
    )
    .await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("entries[0].member_id"),
    );
    let (status, body) = record(
        json!([{"member_id": m.id, "item_code": "P01", "quantity": 1}]),
        s.clone(),
    )
    .await;
    assert_problem(
        status,
        &body,
        422,
        "monthly_cap_exceeded",
        Some("entries[0].quantity"),
    );
    assert!(body["detail"].as_str().unwrap().contains("P01"), "{body}");
    let (status, body) = record(
        json!([{"member_id": m.id, "item_code": "O01", "quantity": 1}]),
        m.token.clone(),
    )
    .await;
    assert_problem(status, &body, 403, "permission_denied", None);

    // Dues of half a point show as a decimal.
    let (status, dues) = record(
        json!([{"member_id": m.id, "item_code": "D01", "quantity": 1}]),
        s.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{dues}");
    assert_eq!(dues["records"][0]["points"], 0.5);

    let (status, list) = app.get(&format!("{path}?month={MONTH}"), Some(s)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_keys(&list, &["items", "next_page_token"], &[]);
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");

    // Revoke: kept, marked; a second revoke conflicts; the member's month no longer counts it.
    let revoke = format!("/api/v1/branch-records/{record_id}:revoke");
    let (status, body) = app.post(&revoke, Some(s), &json!({"reason": ""})).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("reason"));
    let (status, body) = app
        .post(&revoke, Some(&m.token), &json!({"reason": "x"}))
        .await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, revoked) = app
        .post(&revoke, Some(s), &json!({"reason": "记录有误"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["revoke_reason"], "记录有误");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(revoked["version"], 2);
    let (status, body) = app
        .post(&revoke, Some(s), &json!({"reason": "记录有误"}))
        .await;
    assert_problem(status, &body, 409, "already_revoked", None);
    let (status, body) = app
        .post(
            &format!("/api/v1/branch-records/{record_id}:undo"),
            Some(s),
            &json!({}),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", None);
    let (_, month) = app
        .get(&declaration_path(&m.id, MONTH), Some(&m.token))
        .await;
    let codes: Vec<&str> = month["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["item_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["D01"], "{month}");
    // With the revoked record gone, one more study session fits under the cap again.
    let (status, body) = record(
        json!([{"member_id": m.id, "item_code": "P01", "quantity": 1}]),
        s.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Nobody records or revokes their own points (as nobody reviews their own declaration): the
    // secretary's own entry is refused and named; a record
    // of the secretary made by the admin above stays out of the secretary's reach.
    let (status, body) = record(
        json!([
            {"member_id": m.id, "item_code": "O01", "quantity": 1},
            {"member_id": b.secretary.id, "item_code": "O01", "quantity": 1},
        ]),
        s.clone(),
    )
    .await;
    assert_problem(
        status,
        &body,
        403,
        "permission_denied",
        Some("entries[1].member_id"),
    );
    let (status, own) = record(
        json!([{"member_id": b.secretary.id, "item_code": "O01", "quantity": 1}]),
        app.admin_token.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    let own_id = own["records"][0]["id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/api/v1/branch-records/{own_id}:revoke"),
            Some(s),
            &json!({"reason": "x"}),
        )
        .await;
    assert_problem(status, &body, 403, "permission_denied", Some("id"));
}
