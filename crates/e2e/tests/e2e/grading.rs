//! The grading service killed (SIGKILL, by the PID this test started) in the middle of a stream
//! of 10,000 branch-record events, then restarted: its ledger projection ends up equal to the
//! declarations database's truth exactly — no point lost, none counted twice — and
//! `jifen-grading reconcile` agrees (exit 0).

use crate::cluster::{ADMIN_PASSWORD, Cluster, eventually};
use sea_orm::{ConnectionTrait as _, DbBackend, FromQueryResult, Statement};
use std::collections::BTreeMap;

const MEMBERS: usize = 50;
const MONTHS: u32 = 10;
/// X12 组织生活迟到早退, −1 point per record: 20 a month for each member.
const PER_MEMBER_MONTH: usize = 20;

#[derive(FromQueryResult, Debug, PartialEq, Eq)]
struct Sum {
    member_id: uuid::Uuid,
    n: i64,
    total: i64,
}

async fn sums((server, name): &(String, String), sql: &str) -> BTreeMap<uuid::Uuid, (i64, i64)> {
    let db = jifen_platform::db::connect(&jifen_platform::db::database_url(server, name), 2)
        .await
        .unwrap();
    let rows = Sum::find_by_statement(Statement::from_string(DbBackend::Postgres, sql))
        .all(&db)
        .await
        .unwrap();
    db.close().await.unwrap();
    rows.into_iter()
        .map(|r| (r.member_id, (r.n, r.total)))
        .collect()
}

async fn projected_entries(cluster: &Cluster) -> i64 {
    let (server, name) = &cluster.grading_db;
    let db = jifen_platform::db::connect(&jifen_platform::db::database_url(server, name), 1)
        .await
        .unwrap();
    let n = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM ledger_entries",
        ))
        .await
        .unwrap()
        .and_then(|row| row.try_get::<i64>("", "n").ok())
        .unwrap_or(0);
    db.close().await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn grading_killed_mid_stream_of_10000_events_counts_every_point_once() {
    let mut cluster = Cluster::start("e2egrade").await;
    let admin = cluster.login("admin", ADMIN_PASSWORD).await;
    let (_, me) = cluster.get(&admin, "/api/v1/me").await;
    let root = me["roles"][0]["org_id"].as_str().unwrap().to_owned();
    let (status, branch) = cluster
        .post(&admin, "/api/v1/orgs", serde_json::json!({"parent_id": root, "name": "积分流支部", "kind": "branch", "unit_type": "other"}))
        .await;
    assert_eq!(status, 201, "{branch}");
    let branch = branch["id"].as_str().unwrap().to_owned();
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let (status, m) = cluster
            .post(&admin, "/api/v1/members", serde_json::json!({"org_id": branch, "name": format!("流{i}"), "category": "full", "joined_on": "2012-07-01"}))
            .await;
        assert_eq!(status, 201, "{m}");
        members.push(m["id"].as_str().unwrap().to_owned());
    }
    let batch = |month: u32| {
        let entries: Vec<serde_json::Value> = members
            .iter()
            .flat_map(|m| {
                (0..PER_MEMBER_MONTH).map(move |k| {
                    serde_json::json!({"member_id": m, "item_code": "X12", "quantity": 1, "note": format!("第{k}次")})
                })
            })
            .collect();
        serde_json::json!({"month": format!("2026-{month:02}"), "entries": entries})
    };
    // The first month once the declarations replica knows every member.
    let path = format!("/api/v1/orgs/{branch}/branch-records");
    eventually(60, "the declarations replica has the members", || {
        let body = batch(1);
        let (cluster, admin, path) = (&cluster, &admin, &path);
        async move {
            let (status, _) = cluster.post(admin, path, body).await;
            (status == 201).then_some(())
        }
    })
    .await;

    // The other months while the grading service is killed and restarted.
    let writer = {
        let (base, admin, path) = (cluster.base.clone(), admin.clone(), path.clone());
        let bodies: Vec<serde_json::Value> = (2..=MONTHS).map(batch).collect();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for body in bodies {
                let answer = http
                    .post(format!("{base}{path}"))
                    .bearer_auth(&admin)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
            }
        })
    };
    eventually(120, "grading has applied part of the stream", || {
        let cluster = &cluster;
        async move {
            let n = projected_entries(cluster).await;
            (n >= 1500).then_some(n)
        }
    })
    .await;
    // SIGKILL: no shutdown, no flush — whatever was in flight is lost to the process.
    cluster.grading.kill_hard().await.unwrap();
    let at_kill = projected_entries(&cluster).await;
    assert!(
        at_kill < (MEMBERS * PER_MEMBER_MONTH) as i64 * i64::from(MONTHS),
        "killed mid-stream ({at_kill} entries applied)"
    );
    cluster.restart_grading(1).await;
    writer.await.unwrap();

    let truth_sql = "SELECT member_id, count(*) AS n, sum(points)::bigint AS total FROM branch_records \
                     WHERE year = 2026 AND revoked_at IS NULL GROUP BY member_id";
    let truth = sums(&cluster.declarations_db, truth_sql).await;
    let expected = (MEMBERS * PER_MEMBER_MONTH) as i64 * i64::from(MONTHS);
    assert_eq!(truth.values().map(|(n, _)| n).sum::<i64>(), expected);
    let projection_sql = "SELECT member_id, count(*) AS n, sum(points)::bigint AS total \
                          FROM ledger_entries WHERE year = 2026 GROUP BY member_id";
    let projected = eventually(180, "the projection catches up with the truth", || {
        let (cluster, truth) = (&cluster, &truth);
        async move {
            let projected = sums(&cluster.grading_db, projection_sql).await;
            (projected == *truth).then_some(projected)
        }
    })
    .await;
    // Every member: 10 months × 20 records × −1 point, in deci-points.
    for (n, total) in projected.values() {
        assert_eq!(*n, (PER_MEMBER_MONTH as i64) * i64::from(MONTHS));
        assert_eq!(*total, -10 * (PER_MEMBER_MONTH as i64) * i64::from(MONTHS));
    }

    let out = cluster
        .grading_command(&["reconcile", "--year", "2026", "--org", &branch])
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reconcile failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "{MEMBERS} members, {expected} entries, 0 differences"
        )),
        "{stdout}"
    );
}
