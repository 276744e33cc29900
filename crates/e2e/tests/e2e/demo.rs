//! `make run`'s promise: the cluster answers `/readyz`, the demo city is seeded (idempotently),
//! and the demo admin lists its organizations and members through the gateway.

use crate::cluster::{ADMIN_PASSWORD, Cluster};

async fn count_members(cluster: &Cluster, token: &str, org: &str) -> usize {
    let mut total = 0;
    let mut page_token = String::new();
    loop {
        let (status, body) = cluster
            .get(token, &format!("/api/v1/orgs/{org}/members?recursive=true&page_size=500&page_token={page_token}"))
            .await;
        assert_eq!(status, 200, "{body}");
        total += body["items"].as_array().unwrap().len();
        page_token = body["next_page_token"].as_str().unwrap().to_owned();
        if page_token.is_empty() {
            return total;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_city_is_seeded_once_and_listed_through_the_gateway() {
    let cluster = Cluster::start("e2edemo").await;
    let ready = cluster
        .http
        .get(format!("{}/readyz", cluster.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    for _ in 0..2 {
        let out = cluster.members_command(&["seed-demo"]).await;
        assert!(
            out.status.success(),
            "seed-demo failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let admin = cluster.login("admin", ADMIN_PASSWORD).await;
    let (status, me) = cluster.get(&admin, "/api/v1/me").await;
    assert_eq!(status, 200);
    let root = me["roles"][0]["org_id"].as_str().unwrap().to_owned();
    assert_eq!(me["roles"][0]["role"], "admin");

    let (status, root_org) = cluster.get(&admin, &format!("/api/v1/orgs/{root}")).await;
    assert_eq!(status, 200);
    assert_eq!(root_org["name"], "市直机关工委");
    assert_eq!(root_org["kind"], "committee");
    assert_eq!(
        root_org["member_count"], 1000,
        "seeded twice must still be 1,000 members"
    );

    let (status, committees) = cluster
        .get(&admin, &format!("/api/v1/orgs/{root}/children"))
        .await;
    assert_eq!(status, 200);
    let committees = committees["items"].as_array().unwrap().clone();
    assert_eq!(committees.len(), 5, "{committees:?}");
    let mut branches = 0;
    for c in &committees {
        assert_eq!(c["kind"], "committee");
        let (status, children) = cluster
            .get(
                &admin,
                &format!("/api/v1/orgs/{}/children", c["id"].as_str().unwrap()),
            )
            .await;
        assert_eq!(status, 200);
        for b in children["items"].as_array().unwrap() {
            assert_eq!(b["kind"], "branch");
            assert_eq!(b["member_count"], 25);
            branches += 1;
        }
    }
    assert_eq!(branches, 40);
    assert_eq!(count_members(&cluster, &admin, &root).await, 1000);

    // Demo members have accounts: the first member of a branch is its secretary.
    let secretary = cluster.login("demo0001", "jifen-demo").await;
    let (status, me) = cluster.get(&secretary, "/api/v1/me").await;
    assert_eq!(status, 200);
    let roles: Vec<&str> = me["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"secretary") && roles.contains(&"member"),
        "{me}"
    );
    let member = cluster.login("demo0002", "jifen-demo").await;
    let (_, me) = cluster.get(&member, "/api/v1/me").await;
    assert_eq!(me["roles"].as_array().unwrap().len(), 1, "{me}");
    assert_eq!(me["roles"][0]["role"], "member");
}
