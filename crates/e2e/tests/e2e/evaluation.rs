//! The mass evaluation (群众评议) counted exactly, end to end (RULES.md §5 step 4): the rules'
//! example — quarters of 92, 92, 400/6 and 660/7 points — cast as ballots through the gateway,
//! the rounds closed, gives 17.2 evaluation points in the member's ledger and in the branch's
//! grading, not the 17.3 that rounding each quarter first would give.
//!
//! Then the backfill: a projection that lost its exact sums (as one applied before they were
//! kept) counts the rounded quarters, `jifen-grading reconcile` reports every such quarter and
//! a tampered one and exits non-zero, and `jifen-evaluations republish-rounds` brings the sums
//! back: 17.2 again, and reconcile clean.

use crate::cluster::{ADMIN_PASSWORD, Cluster, eventually};
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use serde_json::{Value, json};

/// The example's ballots per quarter: 好 excellent, 较好 good, 一般 fair, 差 poor.
const QUARTERS: [&[&str]; 4] = [
    &["good", "excellent", "excellent", "good", "excellent"],
    &["good", "good", "excellent", "excellent", "excellent"],
    &["good", "good", "fair", "excellent", "good", "poor"],
    &[
        "excellent",
        "good",
        "excellent",
        "excellent",
        "excellent",
        "good",
        "excellent",
    ],
];

/// One quarter's round: opened, one masses code per ballot redeemed and cast for `member`,
/// closed; answers the closed round.
async fn evaluate(cluster: &Cluster, admin: &str, branch: &str, member: &str, q: usize) -> Value {
    let quarter = format!("2026-Q{}", q + 1);
    let (status, round) = cluster
        .post(
            admin,
            &format!("/api/v1/orgs/{branch}/evaluation-rounds"),
            json!({ "quarter": quarter }),
        )
        .await;
    assert_eq!(status, 201, "{round}");
    let rid = round["id"].as_str().unwrap().to_owned();
    let ratings = QUARTERS[q];
    let (status, issued) = cluster
        .post(
            admin,
            &format!("/api/v1/evaluation-rounds/{rid}/invitations"),
            json!({"count": ratings.len(), "evaluator_kind": "masses"}),
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    for (code, rating) in issued["codes"].as_array().unwrap().iter().zip(ratings) {
        let (status, login) = cluster
            .post_anonymous("/api/v1/auth/evaluator", json!({ "code": code }))
            .await;
        assert_eq!(status, 200, "{login}");
        let token = login["access_token"].as_str().unwrap();
        let (status, body) = cluster
            .post(
                token,
                &format!("/api/v1/evaluation-rounds/{rid}/ballots"),
                json!({"ratings": [{"member_id": member, "rating": rating}]}),
            )
            .await;
        assert_eq!(status, 201, "{quarter}: {body}");
    }
    let (status, closed) = cluster
        .post(
            admin,
            &format!("/api/v1/evaluation-rounds/{rid}:close"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{closed}");
    closed
}

/// The member's ledger once it holds four quarters whose evaluation points are `points`.
async fn ledger_with(cluster: &Cluster, admin: &str, member: &str, points: f64) -> Value {
    let path = format!("/api/v1/members/{member}/ledger?year=2026");
    eventually(
        60,
        &format!("the ledger counts {points} evaluation points"),
        || {
            let path = &path;
            async move {
                let (status, ledger) = cluster.get(admin, path).await;
                (status == 200
                    && ledger["quarters"].as_array().is_some_and(|q| q.len() == 4)
                    && ledger["evaluation_points"].as_f64() == Some(points))
                .then_some(ledger)
            }
        },
    )
    .await
}

/// Whether the evaluations service's replica holds `member` (read by the test, as a check).
pub(crate) async fn evaluations_knows(cluster: &Cluster, member: &str) -> bool {
    let var = |k: &str| {
        cluster
            .env
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let url = jifen_platform::db::database_url(
        &var("JIFEN_DATABASE_URL"),
        &var("JIFEN_EVALUATIONS_DATABASE"),
    );
    let db = jifen_platform::db::connect(&url, 1).await.unwrap();
    let found = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 AS one FROM replica_members WHERE id = $1::uuid",
            [member.into()],
        ))
        .await
        .unwrap()
        .is_some();
    db.close().await.unwrap();
    found
}

async fn grading_sql(cluster: &Cluster, sql: &str) {
    let (server, name) = &cluster.grading_db;
    let db = jifen_platform::db::connect(&jifen_platform::db::database_url(server, name), 1)
        .await
        .unwrap();
    db.execute_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap();
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rules_example_gives_17_2_evaluation_points_through_the_whole_path() {
    let cluster = Cluster::start("e2eexact").await;
    let admin = cluster.login("admin", ADMIN_PASSWORD).await;
    let (_, me) = cluster.get(&admin, "/api/v1/me").await;
    let root = me["roles"][0]["org_id"].as_str().unwrap().to_owned();
    let (status, branch) = cluster
        .post(
            &admin,
            "/api/v1/orgs",
            json!({"parent_id": root, "name": "评议支部", "kind": "branch", "unit_type": "other"}),
        )
        .await;
    assert_eq!(status, 201, "{branch}");
    let branch = branch["id"].as_str().unwrap().to_owned();
    let (status, member) = cluster
        .post(&admin, "/api/v1/members", json!({"org_id": branch, "name": "评议甲", "category": "full", "joined_on": "2012-07-01"}))
        .await;
    assert_eq!(status, 201, "{member}");
    let member = member["id"].as_str().unwrap().to_owned();
    eventually(60, "the evaluations replica has the member", || {
        let (cluster, member) = (&cluster, &member);
        async move { (evaluations_knows(cluster, member).await).then_some(()) }
    })
    .await;
    let mut shown = Vec::new();
    for q in 0..4 {
        let closed = evaluate(&cluster, &admin, &branch, &member, q).await;
        let result = &closed["results"][0];
        assert_eq!(result["member_id"], member.as_str(), "{closed}");
        assert_eq!(result["valid"], true, "{closed}");
        shown.push(result["score"].as_f64().unwrap());
    }
    // The rounds show each quarter to 0.1 point, as before.
    assert_eq!(shown, [92.0, 92.0, 66.7, 94.3]);

    let ledger = ledger_with(&cluster, &admin, &member, 17.2).await;
    assert_eq!(ledger["total"].as_f64(), Some(17.2), "{ledger}");
    let (status, grading) = cluster
        .post(
            &admin,
            &format!("/api/v1/orgs/{branch}/gradings/2026:compute"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{grading}");
    let graded = &grading["members"][0];
    assert_eq!(graded["member_id"], member.as_str(), "{grading}");
    assert_eq!(
        graded["evaluation_points"].as_f64(),
        Some(17.2),
        "{grading}"
    );
    assert_eq!(graded["total"].as_f64(), Some(17.2), "{grading}");

    let args = ["reconcile", "--year", "2026", "--org", branch.as_str()];
    let reconcile = || cluster.grading_command(&args);
    let out = reconcile().await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("4 quarter results, 0 quarter differences"),
        "{stdout}"
    );

    // A projection without the exact sums (as applied before they were kept) counts the
    // rounded quarters — the old double rounding — and reconcile says so.
    grading_sql(&cluster, "UPDATE quarter_results SET score_total = NULL").await;
    grading_sql(&cluster, REPACK).await;
    ledger_with(&cluster, &admin, &member, 17.3).await;
    // And one quarter whose sum differs from the evaluations service's.
    grading_sql(
        &cluster,
        "UPDATE quarter_results SET score_total = 4001 WHERE quarter = 3",
    )
    .await;
    let out = reconcile().await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("4 quarter results, 4 quarter differences"),
        "{stdout}"
    );
    assert!(stdout.contains("score_total: Some(4001)"), "{stdout}");
    assert!(stdout.contains("score_total: Some(4000)"), "{stdout}");

    // The backfill: the closed rounds republished with their state and version.
    let out = cluster
        .evaluations_command(&["republish-rounds", "--year", "2026", "--org", &branch])
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("staged 4 closed rounds of 2026"),
        "{stdout}"
    );
    ledger_with(&cluster, &admin, &member, 17.2).await;
    let out = reconcile().await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("4 quarter results, 0 quarter differences"),
        "{stdout}"
    );
}

/// The packed quarters of `member_years` rewritten from `quarter_results` (what the service does
/// in the transaction that changes them).
const REPACK: &str = "UPDATE member_years y SET quarters = coalesce((SELECT string_agg(\
    member_year_quarter(q.quarter, q.closed_at, q.round_id, q.score, q.ballots, q.poor_ballots, \
    q.valid, q.score_total), '' ORDER BY q.round_id) FROM quarter_results q \
    WHERE q.member_id = y.member_id AND q.year = y.year), '')";
