#![allow(clippy::unwrap_used)]
use crate::helpers::{assert_keys, assert_problem, id_card, phone, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ORG_KEYS: [&str; 7] = [
    "id",
    "parent_id",
    "name",
    "kind",
    "unit_type",
    "path",
    "member_count",
];
const MEMBER_KEYS: [&str; 10] = [
    "id",
    "org_id",
    "name",
    "gender",
    "category",
    "status",
    "joined_on",
    "phone_masked",
    "id_card_masked",
    "flags",
];

#[tokio::test(flavor = "multi_thread")]
async fn committee_branch_and_member_are_shaped_as_the_api_says() {
    let app = spawn_app().await;
    let token = Some(app.admin_token.as_str());

    let body = json!({"parent_id": app.root_id, "name": "市财政局机关党委", "kind": "committee", "unit_type": "government_organ"});
    let r = app
        .raw(
            reqwest::Method::POST,
            "/api/v1/orgs",
            token,
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let committee: Value = r.json().await.unwrap();
    assert_keys(&committee, &ORG_KEYS, &[]);
    assert_eq!(
        location,
        format!("/api/v1/orgs/{}", committee["id"].as_str().unwrap())
    );
    assert_eq!(committee["parent_id"], app.root_id.as_str());
    assert_eq!(committee["name"], "市财政局机关党委");
    assert_eq!(committee["kind"], "committee");
    assert_eq!(committee["unit_type"], "government_organ");
    assert_eq!(committee["member_count"], 0);
    let committee_id = committee["id"].as_str().unwrap();
    assert!(committee["path"].as_str().unwrap().contains(committee_id));

    let branch = app.org(committee_id, "预算科党支部", "branch").await;
    let branch_id = branch["id"].as_str().unwrap();
    assert_eq!(branch["kind"], "branch");
    assert!(
        branch["path"]
            .as_str()
            .unwrap()
            .starts_with(committee["path"].as_str().unwrap())
    );

    let (status, got) = app.get(&format!("/api/v1/orgs/{branch_id}"), token).await;
    assert_eq!(status, StatusCode::OK);
    assert_keys(&got, &ORG_KEYS, &[]);
    assert_eq!(got["id"], branch_id);

    let (status, children) = app
        .get(&format!("/api/v1/orgs/{committee_id}/children"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{children}");
    assert_keys(&children, &["items", "next_page_token"], &[]);
    assert_eq!(children["next_page_token"], "");
    assert_eq!(children["items"].as_array().unwrap().len(), 1);
    assert_keys(&children["items"][0], &ORG_KEYS, &[]);

    let the_phone = phone();
    let body = json!({
        "org_id": branch_id, "name": "张三", "gender": "male", "category": "probationary",
        "joined_on": "2024-07-01", "phone": the_phone, "id_card": id_card(),
    });
    let r = app
        .raw(
            reqwest::Method::POST,
            "/api/v1/members",
            token,
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().contains_key("location"));
    let member: Value = r.json().await.unwrap();
    assert_keys(&member, &MEMBER_KEYS, &[]);
    assert_eq!(member["org_id"], branch_id);
    assert_eq!(member["name"], "张三");
    assert_eq!(member["gender"], "male");
    assert_eq!(member["category"], "probationary");
    assert_eq!(member["status"], "active");
    assert_eq!(member["joined_on"], "2024-07-01");
    assert_eq!(member["flags"], json!([]));
    let masked = member["phone_masked"].as_str().unwrap();
    assert_ne!(masked, the_phone);
    assert!(masked.contains('*'), "{masked}");
    let member_id = member["id"].as_str().unwrap();

    let (status, got) = app
        .get(&format!("/api/v1/members/{member_id}"), token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_keys(&got, &MEMBER_KEYS, &[]);

    let (status, patched) = app
        .patch(
            &format!("/api/v1/members/{member_id}"),
            token,
            &json!({"category": "full", "flags": ["mobile"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["category"], "full");
    assert_eq!(patched["flags"], json!(["mobile"]));
    assert_eq!(patched["name"], "张三");

    let (status, list) = app
        .get(&format!("/api/v1/orgs/{branch_id}/members"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_keys(&list, &["items", "next_page_token"], &[]);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_keys(&list["items"][0], &MEMBER_KEYS, &[]);
    let (_, direct) = app
        .get(&format!("/api/v1/orgs/{committee_id}/members"), token)
        .await;
    assert_eq!(direct["items"].as_array().unwrap().len(), 0, "{direct}");
    let (_, subtree) = app
        .get(
            &format!("/api/v1/orgs/{committee_id}/members?recursive=true"),
            token,
        )
        .await;
    assert_eq!(subtree["items"].as_array().unwrap().len(), 1, "{subtree}");

    let (_, committee) = app
        .get(&format!("/api/v1/orgs/{committee_id}"), token)
        .await;
    assert_eq!(committee["member_count"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn transfer_moves_a_member_and_is_listed() {
    let app = spawn_app().await;
    let token = Some(app.admin_token.as_str());
    let committee = app.org(&app.root_id, "工委", "committee").await;
    let a = app
        .org(committee["id"].as_str().unwrap(), "一支部", "branch")
        .await;
    let b = app
        .org(committee["id"].as_str().unwrap(), "二支部", "branch")
        .await;
    let member = app.member(a["id"].as_str().unwrap(), "李四", None).await;
    let id = member["id"].as_str().unwrap();

    let (status, moved) = app
        .post(
            &format!("/api/v1/members/{id}:transfer"),
            token,
            &json!({"to_org_id": b["id"], "reason": "工作调动"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_keys(&moved, &MEMBER_KEYS, &[]);
    assert_eq!(moved["org_id"], b["id"]);

    let (status, transfers) = app
        .get(&format!("/api/v1/members/{id}/transfers"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{transfers}");
    let items = transfers["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_keys(
        &items[0],
        &[
            "id",
            "member_id",
            "from_org_id",
            "to_org_id",
            "reason",
            "transferred_at",
            "actor",
        ],
        &[],
    );
    assert_eq!(items[0]["from_org_id"], a["id"]);
    assert_eq!(items[0]["reason"], "工作调动");

    let (_, in_a) = app
        .get(
            &format!("/api/v1/orgs/{}/members", a["id"].as_str().unwrap()),
            token,
        )
        .await;
    assert_eq!(in_a["items"].as_array().unwrap().len(), 0);

    // Unknown custom method, and POST on the member itself.
    let (status, body) = app
        .post(&format!("/api/v1/members/{id}:promote"), token, &json!({}))
        .await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = app
        .post(&format!("/api/v1/members/{id}"), token, &json!({}))
        .await;
    assert_problem(status, &body, 405, "method_not_allowed", None);
    let (status, body) = app
        .post(
            "/api/v1/members/nope:transfer",
            token,
            &json!({"to_org_id": b["id"], "reason": "x"}),
        )
        .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sanctions_are_recorded_and_listed() {
    let app = spawn_app().await;
    let token = Some(app.admin_token.as_str());
    let branch = app.org(&app.root_id, "三支部", "branch").await;
    let member = app
        .member(branch["id"].as_str().unwrap(), "王五", None)
        .await;
    let id = member["id"].as_str().unwrap();

    let body = json!({"kind": "serious_warning", "decided_on": "2026-01-15", "reason": "违反中央八项规定精神"});
    let (status, sanction) = app
        .post(&format!("/api/v1/members/{id}/sanctions"), token, &body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sanction}");
    assert_keys(
        &sanction,
        &["id", "member_id", "kind", "decided_on", "reason"],
        &["recorded_at"],
    );
    assert_eq!(sanction["member_id"], id);
    assert_eq!(sanction["kind"], "serious_warning");
    assert_eq!(sanction["decided_on"], "2026-01-15");

    let (status, list) = app
        .get(&format!("/api/v1/members/{id}/sanctions"), token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], sanction["id"]);
}

async fn import(app: &crate::helpers::TestApp, csv: String) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url("/api/v1/members:import"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv; charset=utf-8")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_import_is_all_or_nothing() {
    let app = spawn_app().await;
    let branch = app.org(&app.root_id, "四支部", "branch").await;
    let org = branch["id"].as_str().unwrap();
    let header = "name,gender,category,joined_on,phone,id_card,org_id";

    let bad = format!(
        "{header}\n赵一,male,full,2010-07-01,{},{},{org}\n钱二,female,veteran,2012-07-01,{},{},{org}\n",
        phone(),
        id_card(),
        phone(),
        id_card()
    );
    let (status, result) = import(&app, bad).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_keys(&result, &["created", "errors"], &[]);
    assert_eq!(result["created"], 0);
    let errors = result["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{result}");
    assert_keys(&errors[0], &["row", "field", "message"], &[]);
    assert_eq!(errors[0]["row"], 3);
    assert_eq!(errors[0]["field"], "category");
    let (_, list) = app
        .get(
            &format!("/api/v1/orgs/{org}/members"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(list["items"], json!([]), "nothing may be imported");

    let good = format!(
        "{header}\n赵一,male,full,2010-07-01,{},{},{org}\n钱二,female,probationary,2025-07-01,,,{org}\n",
        phone(),
        id_card()
    );
    let (status, result) = import(&app, good).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result, json!({"created": 2, "errors": []}));
    let (_, list) = app
        .get(
            &format!("/api/v1/orgs/{org}/members"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // A JSON body is not a CSV file.
    let (status, body) = app
        .post("/api/v1/members:import", Some(&app.admin_token), &json!({}))
        .await;
    assert_problem(
        status,
        &body,
        415,
        "unsupported_media_type",
        Some("content-type"),
    );
}
