//! A month of the demo city through the built binaries: a member declares and submits, the
//! branch secretary approves, and both read the result and its history — over HTTP only.

use crate::cluster::Cluster;
use std::time::{Duration, Instant};

/// The current month in Shanghai, `YYYY-MM`.
fn this_month() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8))
        .format("%Y-%m")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demo_member_declares_and_the_branch_secretary_approves() {
    let cluster = Cluster::start("e2edecl").await;
    let out = cluster.members_command(&["seed-demo"]).await;
    assert!(
        out.status.success(),
        "seed-demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let month = this_month();
    let year = &month[..4];
    let admin = cluster.login("admin", crate::cluster::ADMIN_PASSWORD).await;
    if year != "2026" {
        // Only 2026 ships a standard; publish the same document for the running year.
        let mut doc = jifen_standard::default_2026()
            .unwrap()
            .to_json_value()
            .unwrap();
        doc["year"] = serde_json::json!(year.parse::<i32>().unwrap());
        let (status, body) = cluster
            .put(&admin, &format!("/api/v1/standards/{year}"), doc)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    // demo0001 is the secretary of the first branch; demo0002 a member of it.
    let member = cluster.login("demo0002", "jifen-demo").await;
    let secretary = cluster.login("demo0001", "jifen-demo").await;
    let (_, me) = cluster.get(&member, "/api/v1/me").await;
    let member_id = me["member_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/members/{member_id}/declarations/{month}");

    // The declarations service learns the demo city from members events.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = cluster.get(&member, &path).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never saw demo0002 ({status})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (status, draft) = cluster
        .put(
            &member,
            &path,
            serde_json::json!({"lines": [
                {"item_code": "F01", "quantity": 1, "note": "完成岗位任务"},
                {"item_code": "F04", "quantity": 1}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{draft}");
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["claimed_total"], 2.0);
    let id = draft["id"].as_str().unwrap().to_owned();

    let (status, submitted) = cluster
        .post(
            &member,
            &format!("/api/v1/declarations/{id}:submit"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(submitted["status"], "submitted");

    let (status, approved) = cluster
        .post(
            &secretary,
            &format!("/api/v1/declarations/{id}:review"),
            serde_json::json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approved_total"], 2.0);

    let (status, seen) = cluster.get(&member, &path).await;
    assert_eq!(status, 200);
    assert_eq!(seen["status"], "approved");
    let (status, history) = cluster
        .get(&member, &format!("/api/v1/declarations/{id}/history"))
        .await;
    assert_eq!(status, 200, "{history}");
    let steps: Vec<(String, String)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap_or_default().to_owned(),
                t["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("", "draft"),
            ("draft", "submitted"),
            ("submitted", "approved")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}
