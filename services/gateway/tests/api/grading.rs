//! The points ledger and the yearly grading through the gateway only, with real members,
//! declarations, evaluations and grading services behind it: who may do what at every step
//! (member, branch secretary, secretary of another branch, admin of the upper committee,
//! evaluator), the 公示 publication on the shared manual clock, appeals, and bad input.
#![allow(clippy::unwrap_used)]
use crate::helpers::{MONTH, PROJECTION_DEADLINE, TestApp, assert_keys, assert_problem, spawn_app};
use crate::support::{Branch, Person, branch, grant, person};
use jifen_platform::auth::RoleName;
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};

/// The grading year: the one running at `helpers::START`.
const YEAR: i32 = 2026;

const LEDGER_KEYS: &[&str] = &[
    "member_id",
    "year",
    "entries",
    "quarters",
    "base_points",
    "bonus_points",
    "deduction_points",
    "evaluation_points",
    "total",
];
const GRADING_KEYS: &[&str] = &["org_id", "year", "status", "members"];
const GRADING_EXTRA: &[&str] = &[
    "computed_at",
    "confirmed_at",
    "finalizable_at",
    "finalized_at",
];
const MEMBER_GRADE_KEYS: &[&str] = &[
    "member_id",
    "total",
    "declared_points",
    "evaluation_points",
    "proposed_grade",
    "reasons",
];
const MEMBER_GRADE_EXTRA: &[&str] = &["grade", "org_id", "override_reason"];
const APPEAL_KEYS: &[&str] = &["id", "member_id", "org_id", "year", "status", "reason"];
const APPEAL_EXTRA: &[&str] = &["decision_reason", "grade", "filed_at", "decided_at"];

fn ledger(member: &str) -> String {
    format!("/api/v1/members/{member}/ledger?year={YEAR}")
}

fn grading(org: &str) -> String {
    format!("/api/v1/orgs/{org}/gradings/{YEAR}")
}

fn appeals(member: &str) -> String {
    format!("/api/v1/members/{member}/gradings/{YEAR}/appeals")
}

/// The member's row of a grading.
fn row<'a>(grading: &'a Value, member: &str) -> &'a Value {
    grading["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["member_id"] == member)
        .unwrap_or_else(|| panic!("{member} not in {grading}"))
}

/// Posts a custom method with an empty JSON object.
async fn act(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    app.post(path, Some(token), &json!({})).await
}

/// A branch with three members and points recorded by its secretary, known to the grading
/// service; a second branch elsewhere; an admin of the first branch's committee.
struct World {
    b: Branch,
    other: Branch,
    /// Admin of `b.committee_id` (the upper committee), a member of the other branch.
    upper: Person,
}

async fn world(app: &TestApp) -> World {
    let b = branch(app, "gr", 3).await;
    let other = branch(app, "gx", 1).await;
    let mut upper = person(app, &other.branch_id, "gx", "upper", "上级管理员").await;
    grant(app, &mut upper, &b.committee_id, "admin").await;

    // P01 (branch group study, 2 points a time, declared by the branch).
    let (m0, m1) = (&b.members[0].id, &b.members[1].id);
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{}/branch-records", b.branch_id),
            Some(&b.secretary.token),
            &json!({"month": MONTH, "entries": [
                {"member_id": m0, "item_code": "P01", "quantity": 2, "note": "集中学习"},
                {"member_id": m1, "item_code": "P01", "quantity": 1},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Every graded member must be in the grading service's projection before computing.
    app.wait_ledger(m0, YEAR, 1).await;
    app.wait_ledger(m1, YEAR, 1).await;
    for p in b.members.iter().skip(2).chain([&b.secretary]) {
        app.wait_ledger(&p.id, YEAR, 0).await;
    }
    World { b, other, upper }
}

#[tokio::test(flavor = "multi_thread")]
async fn ledgers_are_read_by_the_member_and_their_branch_staff_only() {
    let app = spawn_app().await;
    let World { b, other, upper } = world(&app).await;
    let (m0, m1) = (&b.members[0], &b.members[1]);

    // The member themself: every entry with decimal points, the capped totals.
    let (status, mine) = app.get(&ledger(&m0.id), Some(&m0.token)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_keys(&mine, LEDGER_KEYS, &[]);
    assert_eq!(mine["member_id"], m0.id.as_str());
    assert_eq!(mine["year"], YEAR);
    let entry = &mine["entries"][0];
    assert_keys(
        entry,
        &["month", "source", "ref", "item_code", "points", "note"],
        &[],
    );
    assert_eq!(entry["month"], MONTH);
    assert_eq!(entry["source"], "branch");
    assert_eq!(entry["item_code"], "P01");
    assert_eq!(entry["points"], json!(4));
    assert_eq!(entry["note"], "集中学习");
    assert_eq!(mine["base_points"], json!(4));
    assert_eq!(mine["total"], json!(4));
    assert!(mine["quarters"].is_array());

    // Another member's ledger: refused.
    let (status, body) = app.get(&ledger(&m1.id), Some(&m0.token)).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    // Their branch's secretary and the upper committee read it.
    for token in [&b.secretary.token, &upper.token, &app.admin_token] {
        let (status, body) = app.get(&ledger(&m1.id), Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["entries"][0]["points"], json!(2));
    }
    // The secretary of another branch does not know it exists.
    let (status, body) = app.get(&ledger(&m1.id), Some(&other.secretary.token)).await;
    assert_problem(status, &body, 404, "not_found", None);
    // Nor does anyone know an unknown member.
    let unknown = uuid::Uuid::now_v7();
    let (status, body) = app
        .get(&ledger(&unknown.to_string()), Some(&app.admin_token))
        .await;
    assert_problem(status, &body, 404, "not_found", None);

    // The year: required and a real year.
    for query in ["", "?year=", "?year=twenty", "?year=1999", "?year=2101"] {
        let path = format!("/api/v1/members/{}/ledger{query}", m0.id);
        let (status, body) = app.get(&path, Some(&m0.token)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("year"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grading_from_proposal_to_final_with_every_role_checked() {
    let app = spawn_app().await;
    let World { b, other, upper } = world(&app).await;
    let (m0, m1) = (&b.members[0], &b.members[1]);
    let sec = &b.secretary.token;
    let path = grading(&b.branch_id);

    // Nothing computed yet; nothing to compute for a year not begun on the services' clock.
    let (status, body) = app.get(&path, Some(sec)).await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = act(
        &app,
        &format!("/api/v1/orgs/{}/gradings/2027:compute", b.branch_id),
        sec,
    )
    .await;
    assert_problem(status, &body, 422, "year_not_started", Some("year"));
    // Only a branch confirms: a committee's secretary is refused — the body may be absent.
    let (status, committee) = app
        .get(
            &format!("/api/v1/orgs/{}", b.committee_id),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{committee}");
    let committee_secretary = app.token_for(
        RoleName::Secretary,
        b.committee_id.parse().unwrap(),
        committee["path"].as_str().unwrap(),
    );
    let r = app
        .client
        .post(app.url(&format!("{}:confirm", grading(&b.committee_id))))
        .bearer_auth(&committee_secretary)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_problem(status, &body, 422, "not_a_branch", Some("org_id"));

    // A draft of the graded year: no points until approved, so the grades ignore it. Reviewing it
    // answers 409 `not_submitted` until the declarations service knows the year is final, then
    // `grading_final`: a probe that changes nothing either way.
    let m2 = &b.members[2];
    let (status, draft) = app
        .put(
            &format!("/api/v1/members/{}/declarations/{MONTH}", m2.id),
            Some(&m2.token),
            &json!({"lines": [{"item_code": "F01", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    let review_draft = format!(
        "/api/v1/declarations/{}:review",
        draft["id"].as_str().unwrap()
    );
    let approve = json!({"decision": "approve"});
    let (status, body) = app.post(&review_draft, Some(sec), &approve).await;
    assert_problem(status, &body, 409, "not_submitted", None);

    // Compute: staff over the branch only.
    let compute = format!("{path}:compute");
    let (status, body) = act(&app, &compute, &m0.token).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = act(&app, &compute, &other.secretary.token).await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, proposed) = act(&app, &compute, sec).await;
    assert_eq!(status, StatusCode::OK, "{proposed}");
    assert_keys(&proposed, GRADING_KEYS, GRADING_EXTRA);
    assert_eq!(proposed["org_id"], b.branch_id.as_str());
    assert_eq!(proposed["year"], YEAR);
    assert_eq!(proposed["status"], "proposed");
    // The secretary and the three members; not the upper admin (another branch).
    assert_eq!(
        proposed["members"].as_array().unwrap().len(),
        4,
        "{proposed}"
    );
    let r0 = row(&proposed, &m0.id);
    assert_keys(r0, MEMBER_GRADE_KEYS, MEMBER_GRADE_EXTRA);
    assert_eq!(r0["total"], json!(4));
    assert_eq!(r0["declared_points"], json!(4));
    assert_eq!(r0["evaluation_points"], json!(0));
    // 4 points are far below every band.
    assert_eq!(r0["proposed_grade"], "unqualified");
    assert!(r0.get("grade").is_none(), "{r0}");
    assert!(
        r0["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("no_valid_evaluation")),
        "{r0}"
    );

    // Reading: staff over the branch; members not before the publication; others not at all.
    let (status, body) = app.get(&path, Some(&upper.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get(&path, Some(&m0.token)).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = app.get(&path, Some(&other.secretary.token)).await;
    assert_problem(status, &body, 404, "not_found", None);

    // No appeal before the branch confirms.
    let (status, body) = app
        .post(
            &appeals(&m0.id),
            Some(&m0.token),
            &json!({"reason": "太早"}),
        )
        .await;
    assert_problem(status, &body, 409, "grading_not_confirmed", None);

    // Confirm: the branch's own secretary only.
    let confirm = format!("{path}:confirm");
    let (status, body) = act(&app, &confirm, &m0.token).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = act(&app, &confirm, &other.secretary.token).await;
    assert_problem(status, &body, 404, "not_found", None);
    for token in [&upper.token, &app.admin_token] {
        let (status, body) = act(&app, &confirm, token).await;
        assert_problem(status, &body, 403, "permission_denied", None);
    }
    // Overrides: a typed grade, one step at most.
    let over = |grade: &str| json!({"overrides": [{"member_id": m0.id, "grade": grade, "reason": "支委会讨论"}]});
    let (status, body) = app.post(&confirm, Some(sec), &over("superb")).await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("overrides[0].grade"),
    );
    for too_far in ["qualified", "excellent"] {
        let (status, body) = app.post(&confirm, Some(sec), &over(too_far)).await;
        assert_problem(
            status,
            &body,
            422,
            "override_too_far",
            Some("overrides[0].grade"),
        );
    }
    let (status, body) = app
        .post(
            &confirm,
            Some(sec),
            &json!({"overrides": [{"member_id": m1.id, "grade": "basically_qualified", "reason": ""}]}),
        )
        .await;
    assert_problem(
        status,
        &body,
        400,
        "invalid_argument",
        Some("overrides[0].reason"),
    );
    // A valid confirmation, idempotent under its key.
    let valid = json!({"overrides": [
        {"member_id": m1.id, "grade": "basically_qualified", "reason": "党员大会讨论通过"}
    ]});
    let headers = [("idempotency-key", "confirm-gr-2026")];
    let first = app
        .raw(Method::POST, &confirm, Some(sec), Some(&valid), &headers)
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let confirmed: Value = first.json().await.unwrap();
    let again = app
        .raw(Method::POST, &confirm, Some(sec), Some(&valid), &headers)
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), confirmed);
    assert_eq!(confirmed["status"], "confirmed", "{confirmed}");
    assert!(confirmed["finalizable_at"].is_string(), "{confirmed}");
    let r1 = row(&confirmed, &m1.id);
    assert_eq!(r1["proposed_grade"], "unqualified");
    assert_eq!(r1["grade"], "basically_qualified");
    assert_eq!(r1["override_reason"], "党员大会讨论通过");
    assert_eq!(row(&confirmed, &m0.id)["grade"], "unqualified");
    // Confirmed is settled: no second confirmation, no recomputation.
    let (status, body) = act(&app, &confirm, sec).await;
    assert_problem(status, &body, 409, "grading_confirmed", None);
    let (status, body) = act(&app, &compute, sec).await;
    assert_problem(status, &body, 409, "grading_confirmed", None);

    // Published (公示): the branch's members read it; a member of another branch does not.
    let (status, body) = app.get(&path, Some(&m0.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "confirmed");
    let (status, body) = app.get(&path, Some(&other.members[0].token)).await;
    assert_problem(status, &body, 403, "permission_denied", None);

    // Finalize: the upper committee only, and not during the publication.
    let finalize = format!("{path}:finalize");
    let (status, body) = act(&app, &finalize, &m0.token).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = act(&app, &finalize, sec).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = act(&app, &finalize, &other.secretary.token).await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = act(&app, &finalize, &upper.token).await;
    assert_problem(status, &body, 409, "publication_not_over", None);

    // Appeals: the member for themself only, one open at a time.
    let (status, body) = app
        .post(
            &appeals(&m1.id),
            Some(&m0.token),
            &json!({"reason": "代人申诉"}),
        )
        .await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = app
        .post(
            &appeals(&m0.id),
            Some(sec),
            &json!({"reason": "书记代申诉"}),
        )
        .await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = app
        .post(&appeals(&m0.id), Some(&m0.token), &json!({"reason": ""}))
        .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("reason"));
    let (status, appeal) = app
        .post(
            &appeals(&m0.id),
            Some(&m0.token),
            &json!({"reason": "三月的学习记录不全"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{appeal}");
    assert_keys(&appeal, APPEAL_KEYS, APPEAL_EXTRA);
    assert_eq!(appeal["status"], "open");
    assert_eq!(appeal["member_id"], m0.id.as_str());
    assert_eq!(appeal["org_id"], b.branch_id.as_str());
    assert_eq!(appeal["year"], YEAR);
    assert_eq!(appeal["reason"], "三月的学习记录不全");
    assert!(appeal.get("grade").is_none() && appeal.get("decision_reason").is_none());
    let (status, body) = app
        .post(
            &appeals(&m0.id),
            Some(&m0.token),
            &json!({"reason": "再次"}),
        )
        .await;
    assert_problem(status, &body, 409, "appeal_open", None);

    // After the publication (7 days), the open appeal still blocks finalization.
    app.clock.advance(chrono::Duration::days(8));
    let (status, body) = act(&app, &finalize, &upper.token).await;
    assert_problem(status, &body, 409, "appeals_open", None);

    // Deciding: the upper committee only.
    let decide = format!("/api/v1/appeals/{}:decide", appeal["id"].as_str().unwrap());
    let change =
        json!({"decision": "change", "grade": "basically_qualified", "reason": "补录后复核"});
    let (status, body) = app.post(&decide, Some(&m0.token), &change).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = app.post(&decide, Some(sec), &change).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = app
        .post(&decide, Some(&other.secretary.token), &change)
        .await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = app
        .post(
            &decide,
            Some(&upper.token),
            &json!({"decision": "change", "reason": "x"}),
        )
        .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("grade"));
    let (status, body) = app
        .post(
            &decide,
            Some(&upper.token),
            &json!({"decision": "change", "grade": "good", "reason": "x"}),
        )
        .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("grade"));
    let (status, decided) = app.post(&decide, Some(&upper.token), &change).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_keys(&decided, APPEAL_KEYS, APPEAL_EXTRA);
    assert_eq!(decided["status"], "changed");
    assert_eq!(decided["grade"], "basically_qualified");
    assert_eq!(decided["decision_reason"], "补录后复核");
    let (status, body) = app
        .post(
            &decide,
            Some(&upper.token),
            &json!({"decision": "uphold", "reason": "y"}),
        )
        .await;
    assert_problem(status, &body, 409, "appeal_decided", None);

    // An evaluation round of the year, opened before the finalization (once the evaluations
    // service knows the secretary and the three members: its roster).
    app.wait_evaluations_replica(&b.branch_id, 4).await;
    let rounds = format!("/api/v1/orgs/{}/evaluation-rounds", b.branch_id);
    let first_quarter = json!({"quarter": format!("{YEAR}-Q1")});
    let (status, opened_before) = app.post(&rounds, Some(sec), &first_quarter).await;
    assert_eq!(status, StatusCode::CREATED, "{opened_before}");

    // Final.
    let (status, done) = act(&app, &finalize, &upper.token).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_keys(&done, GRADING_KEYS, GRADING_EXTRA);
    assert_eq!(done["status"], "final");
    assert!(done["finalized_at"].is_string(), "{done}");
    assert_eq!(row(&done, &m0.id)["grade"], "basically_qualified");
    assert_eq!(row(&done, &m1.id)["grade"], "basically_qualified");
    let (status, body) = act(&app, &finalize, &upper.token).await;
    assert_problem(status, &body, 409, "grading_final", None);
    let (status, body) = app
        .post(
            &appeals(&m1.id),
            Some(&m1.token),
            &json!({"reason": "太晚"}),
        )
        .await;
    assert_problem(status, &body, 409, "grading_not_confirmed", None);
    let (status, body) = app.get(&path, Some(&m1.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "final");

    // A final year takes no more points (RULES.md §3), once the declarations service has the
    // final grades from `grading.member_grade.finalized.v1`.
    let year_is_final = || async {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (status, body) = app.post(&review_draft, Some(sec), &approve).await;
            if body["code"] == "grading_final" {
                assert_problem(status, &body, 409, "grading_final", None);
                break;
            }
            assert_problem(status, &body, 409, "not_submitted", None);
            assert!(
                tokio::time::Instant::now() < deadline,
                "the declarations service never learned that {YEAR} is final"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    year_is_final().await;
    let records = format!("/api/v1/orgs/{}/branch-records", b.branch_id);
    let (status, more) = app
        .post(
            &records,
            Some(sec),
            &json!({"month": MONTH, "entries": [{"member_id": m0.id, "item_code": "P01", "quantity": 1}]}),
        )
        .await;
    assert_problem(status, &more, 409, "grading_final", None);
    let (status, listed) = app
        .get(&format!("{records}?month={MONTH}"), Some(sec))
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let record = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["member_id"] == m0.id.as_str())
        .unwrap();
    let (status, body) = app
        .post(
            &format!(
                "/api/v1/branch-records/{}:revoke",
                record["id"].as_str().unwrap()
            ),
            Some(sec),
            &json!({"reason": "定档之后"}),
        )
        .await;
    assert_problem(status, &body, 409, "grading_final", None);
    let reopen_until = (app.clock.now() + chrono::Duration::days(3)).to_rfc3339();
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{}/periods/{MONTH}:reopen", b.branch_id),
            Some(sec),
            &json!({"until": reopen_until, "reason": "补报"}),
        )
        .await;
    assert_problem(status, &body, 409, "grading_final", None);
    // Nor for a group (党小组) of the branch: its members are graded in the branch.
    let group = app.org(&b.branch_id, "第一党小组", "group").await;
    let group_id = group["id"].as_str().unwrap();
    app.wait_org(group_id).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{group_id}/periods/{MONTH}:reopen"),
            Some(sec),
            &json!({"until": reopen_until, "reason": "补报"}),
        )
        .await;
    assert_problem(status, &body, 409, "grading_final", None);

    // Nor does the branch open an evaluation round of the year: its results could never count
    // (docs/decisions/0006-final-years-evaluations.md). Once the evaluations service has the
    // final grades too; until then the quarter opened above answers `round_exists`, a probe that
    // changes nothing either way.
    let evaluations_know_year_is_final = || async {
        let deadline = tokio::time::Instant::now() + PROJECTION_DEADLINE;
        loop {
            let (status, body) = app.post(&rounds, Some(sec), &first_quarter).await;
            if body["code"] == "grading_final" {
                assert_problem(status, &body, 409, "grading_final", Some("quarter"));
                break;
            }
            assert_problem(status, &body, 409, "round_exists", Some("quarter"));
            assert!(
                tokio::time::Instant::now() < deadline,
                "the evaluations service never learned that {YEAR} is final"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    evaluations_know_year_is_final().await;
    let second_quarter = json!({"quarter": format!("{YEAR}-Q2")});
    let (status, body) = app.post(&rounds, Some(sec), &second_quarter).await;
    assert_problem(status, &body, 409, "grading_final", Some("quarter"));
    // The other branch's grades are not final: it opens a round of the same year.
    app.wait_evaluations_replica(&other.branch_id, 3).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{}/evaluation-rounds", other.branch_id),
            Some(&other.secretary.token),
            &second_quarter,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The round opened before the finalization lives on: it takes a ballot and closes.
    let round_id = opened_before["id"].as_str().unwrap();
    let (status, issued) = app
        .post(
            &format!("/api/v1/evaluation-rounds/{round_id}/invitations"),
            Some(sec),
            &json!({"count": 1, "evaluator_kind": "masses"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let (status, login) = app
        .post(
            "/api/v1/auth/evaluator",
            None,
            &json!({"code": issued["codes"][0]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let (status, ballot) = app
        .post(
            &format!("/api/v1/evaluation-rounds/{round_id}/ballots"),
            login["access_token"].as_str(),
            &json!({"ratings": [{"member_id": m0.id, "rating": "good"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ballot}");
    let (status, closed) = act(
        &app,
        &format!("/api/v1/evaluation-rounds/{round_id}:close"),
        sec,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(
        (&closed["status"], &closed["ballots"]),
        (&json!("closed"), &json!(1))
    );

    // A declarations database that missed the finalization (one created after it) catches up
    // when an operator republishes the final grades (`jifen-grading republish-finals`).
    // So does an evaluations database.
    for db in [&app.declarations_db, &app.evaluations_db] {
        db.execute_unprepared("DELETE FROM final_grades")
            .await
            .unwrap();
    }
    let (status, body) = app.post(&review_draft, Some(sec), &approve).await;
    assert_problem(status, &body, 409, "not_submitted", None);
    let (status, body) = app.post(&rounds, Some(sec), &first_quarter).await;
    assert_problem(status, &body, 409, "round_exists", Some("quarter"));
    let staged = jifen_grading::usecases::Grading::new(app.grading_db.clone(), app.clock.clone())
        .republish_finals("test-operator", b.committee_id.parse().unwrap(), YEAR)
        .await
        .unwrap();
    // The secretary and the three members of the branch; the other branch is not final.
    assert_eq!(staged, 4);
    year_is_final().await;
    evaluations_know_year_is_final().await;

    // Saving and submitting follow the month's window only (docs/decisions/0005-final-years.md),
    // but the submitted declaration is never approved: batch approval skips it.
    let (status, submitted) = app
        .post(
            &format!(
                "/api/v1/declarations/{}:submit",
                draft["id"].as_str().unwrap()
            ),
            Some(&m2.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    let (status, batch) = app
        .post(
            &format!("/api/v1/orgs/{}/declarations:batch-approve", b.branch_id),
            Some(sec),
            &json!({"month": MONTH, "declaration_ids": [draft["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert_eq!(
        batch,
        json!({"approved": 0, "skipped": [{"id": draft["id"], "reason": "grading_final"}]})
    );
    // Ledgers and grades are as finalized: nothing above was recorded.
    let ledger0 = app.wait_ledger(&m0.id, YEAR, 1).await;
    assert_eq!(ledger0["entries"].as_array().unwrap().len(), 1, "{ledger0}");
    // The other branch's year is not final: its secretary still records points.
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{}/branch-records", other.branch_id),
            Some(&other.secretary.token),
            &json!({"month": MONTH, "entries": [{"member_id": other.members[0].id, "item_code": "P01", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grading_endpoints_refuse_evaluators_and_bad_input_as_problems() {
    let app = spawn_app().await;
    let root = app.root_id.clone();
    let admin = app.admin_token.clone();
    let some = uuid::Uuid::now_v7().to_string();
    let evaluator = app.token_for(
        RoleName::Evaluator,
        root.parse().unwrap(),
        &format!("/{root}/"),
    );

    // An evaluator token is good for its ballot and nothing here.
    let reads = [ledger(&some), grading(&root)];
    for path in &reads {
        let (status, body) = app.get(path, Some(&evaluator)).await;
        assert_problem(status, &body, 403, "permission_denied", None);
        let (status, body) = app.get(path, None).await;
        assert_problem(status, &body, 401, "unauthenticated", None);
    }
    let writes = [
        (format!("{}:compute", grading(&root)), json!({})),
        (format!("{}:confirm", grading(&root)), json!({})),
        (format!("{}:finalize", grading(&root)), json!({})),
        (appeals(&some), json!({"reason": "x"})),
        (
            format!("/api/v1/appeals/{some}:decide"),
            json!({"decision": "uphold", "reason": "x"}),
        ),
    ];
    for (path, body) in &writes {
        let (status, answer) = app.post(path, Some(&evaluator), body).await;
        assert_problem(status, &answer, 403, "permission_denied", None);
        let (status, answer) = app.post(path, None, body).await;
        assert_problem(status, &answer, 401, "unauthenticated", None);
    }

    // Bad path parameters, named.
    for (path, field) in [
        ("/api/v1/orgs/not-a-uuid/gradings/2026".to_owned(), "id"),
        (format!("/api/v1/orgs/{root}/gradings/20x6"), "year"),
        (format!("/api/v1/orgs/{root}/gradings/1999"), "year"),
        ("/api/v1/members/nope/ledger?year=2026".to_owned(), "id"),
    ] {
        let (status, body) = app.get(&path, Some(&admin)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some(field));
    }
    for (path, body, field) in [
        (
            "/api/v1/orgs/not-a-uuid/gradings/2026:compute".to_owned(),
            json!({}),
            "id",
        ),
        (
            format!("/api/v1/orgs/{root}/gradings/year:compute"),
            json!({}),
            "year",
        ),
        (
            format!("/api/v1/orgs/{root}/gradings/3000:finalize"),
            json!({}),
            "year",
        ),
        (
            "/api/v1/members/nope/gradings/2026/appeals".to_owned(),
            json!({"reason": "x"}),
            "id",
        ),
        (
            format!("/api/v1/members/{some}/gradings/26/appeals"),
            json!({"reason": "x"}),
            "year",
        ),
        (
            format!("/api/v1/members/{some}/gradings/2026/appeals"),
            json!({}),
            "reason",
        ),
        (
            "/api/v1/appeals/nope:decide".to_owned(),
            json!({"decision": "uphold", "reason": "x"}),
            "id",
        ),
        (
            format!("/api/v1/appeals/{some}:decide"),
            json!({"decision": "maybe", "reason": "x"}),
            "decision",
        ),
        (
            format!("/api/v1/appeals/{some}:decide"),
            json!({"decision": "uphold", "grade": "excellent", "reason": "x"}),
            "grade",
        ),
        (
            format!("{}:confirm", grading(&root)),
            json!({"overrides": [{"member_id": some, "grade": "good", "reason": "x"}]}),
            "overrides[0].grade",
        ),
        (
            format!("{}:confirm", grading(&root)),
            json!({"overrides": [{"member_id": "x", "grade": "qualified", "reason": "x"}]}),
            "overrides[0].member_id",
        ),
    ] {
        // The bootstrap admin passes every gate; the member's own appeal route takes anyone.
        let (status, answer) = app.post(&path, Some(&admin), &body).await;
        assert_problem(status, &answer, 400, "invalid_argument", Some(field));
    }

    // Unknown verbs are 404, a bare POST is 405, a non-JSON body is 415.
    let (status, body) = act(&app, &format!("{}:publish", grading(&root)), &admin).await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = act(&app, &grading(&root), &admin).await;
    assert_problem(status, &body, 405, "method_not_allowed", None);
    let (status, body) = act(&app, &format!("/api/v1/appeals/{some}:undo"), &admin).await;
    assert_problem(status, &body, 404, "not_found", None);
    let r = app
        .client
        .post(app.url(&format!("{}:confirm", grading(&root))))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("overrides")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_problem(
        status,
        &body,
        415,
        "unsupported_media_type",
        Some("content-type"),
    );
}
