//! The yearly standard through the gateway (API.md "The standard").
#![allow(clippy::unwrap_used)]

use crate::helpers::{MONTH, assert_keys, assert_problem, spawn_app};
use crate::support::{branch, branch_of, grant, person};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ITEM_KEYS: [&str; 8] = [
    "code",
    "category",
    "name",
    "kind",
    "points",
    "unit",
    "evidence_required",
    "declared_by",
];
const ITEM_OPTIONAL: [&str; 4] = ["monthly_cap", "yearly_cap", "name_en", "grade_cap"];

fn item<'a>(standard: &'a Value, code: &str) -> &'a Value {
    standard["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == code)
        .unwrap_or_else(|| panic!("no item {code}"))
}

/// The shipped default document as JSON (RULES.md §1 keys).
fn default_document() -> Value {
    jifen_standard::default_2026()
        .unwrap()
        .to_json_value()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_standard_has_fifty_items_and_an_overlay_per_unit_type() {
    let app = spawn_app().await;
    let b = branch_of(&app, "se", 1, "state_enterprise").await;
    let member = &b.members[0].token;

    let (status, standard) = app.get("/api/v1/standards/2026", Some(member)).await;
    assert_eq!(status, StatusCode::OK, "{standard}");
    assert_keys(&standard, &["year", "version", "items", "categories"], &[]);
    assert_eq!(standard["year"], 2026);
    assert_eq!(standard["version"], 0);
    // The categories the items' codes name (extension): for pages that group items by them.
    let categories = standard["categories"].as_array().unwrap();
    let codes: Vec<&str> = categories
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["P", "O", "D", "M", "F", "B", "X", "V"]);
    assert_eq!(
        categories[0],
        json!({"code": "P", "name": "讲政治、有信念", "kind": "base", "cap": 20})
    );
    assert_eq!(categories[5]["kind"], "bonus");
    assert!(categories[5].get("cap").is_none(), "{}", categories[5]);
    let items = standard["items"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    for i in items {
        assert_keys(i, &ITEM_KEYS, &ITEM_OPTIONAL);
    }
    let p01 = item(&standard, "P01");
    assert_eq!(
        (&p01["category"], &p01["kind"], &p01["points"], &p01["unit"]),
        (&json!("P"), &json!("base"), &json!(2), &json!("次"))
    );
    assert_eq!(
        (&p01["monthly_cap"], &p01["yearly_cap"]),
        (&json!(4), &json!(12))
    );
    assert_eq!(p01["declared_by"], "branch");
    assert_eq!(p01["evidence_required"], false);
    assert_eq!(item(&standard, "P02")["evidence_required"], true);
    assert_eq!(item(&standard, "P02")["declared_by"], "member");
    // Points are decimals with at most one decimal.
    let d01 = item(&standard, "D01");
    assert_eq!(
        (&d01["points"], &d01["monthly_cap"]),
        (&json!(0.5), &json!(0.5))
    );
    let x11 = item(&standard, "X11");
    assert_eq!(
        (&x11["kind"], &x11["points"]),
        (&json!("deduction"), &json!(-20))
    );
    assert_eq!(x11["grade_cap"], "basically_qualified");
    assert_eq!(item(&standard, "V01")["kind"], "veto");
    let b02 = item(&standard, "B02");
    assert!(
        b02.get("monthly_cap").is_none() && b02.get("yearly_cap").is_none(),
        "{b02}"
    );
    assert_eq!(item(&standard, "F01")["name"], "岗位履职(个性指标)");

    // A state enterprise's branch: F01 is the enterprise's own item.
    let (status, overlaid) = app
        .get(
            &format!("/api/v1/standards/2026?org_id={}", b.branch_id),
            Some(member),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{overlaid}");
    assert_eq!(overlaid["unit_type"], "state_enterprise");
    assert_eq!(overlaid["items"].as_array().unwrap().len(), 50);
    let f01 = item(&overlaid, "F01");
    assert_eq!(f01["name"], "完成生产经营、安全生产指标");
    assert_eq!(f01["declared_by"], "member");
    assert_eq!(item(&overlaid, "P01"), p01);

    let (status, body) = app.get("/api/v1/standards/2025", Some(member)).await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = app.get("/api/v1/standards/next", Some(member)).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("year"));
    let (status, body) = app
        .get("/api/v1/standards/2026?org_id=x", Some(member))
        .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("org_id"));
    let unknown = uuid::Uuid::now_v7();
    let (status, body) = app
        .get(
            &format!("/api/v1/standards/2026?org_id={unknown}"),
            Some(member),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = app.get("/api/v1/standards/2026", None).await;
    assert_problem(status, &body, 401, "unauthenticated", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_root_admin_publishes_and_a_used_year_only_grows() {
    let app = spawn_app().await;
    let b = branch(&app, "std", 1).await;
    let mut committee_admin = person(&app, &b.branch_id, "std", "cadmin", "委员").await;
    grant(&app, &mut committee_admin, &b.committee_id, "admin").await;
    let admin = Some(app.admin_token.as_str());
    let path = "/api/v1/standards/2026";

    // With one item added: B12.
    let mut grown = default_document();
    let mut b12 = grown["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "B11")
        .unwrap()
        .clone();
    b12["code"] = json!("B12");
    b12["name"] = json!("参加党建课题研究");
    b12["name_en"] = json!("Party-building research");
    grown["items"].as_array_mut().unwrap().push(b12);

    // Who may publish: the admin of the root only.
    let (status, body) = app.put(path, Some(&b.secretary.token), &grown).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = app.put(path, Some(&b.members[0].token), &grown).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = app.put(path, Some(&committee_admin.token), &grown).await;
    assert_problem(status, &body, 403, "permission_denied", None);

    // A broken document: every problem named at once.
    let mut broken = default_document();
    broken["items"][0]["category"] = json!("Q");
    broken["items"][1]["code"] = broken["items"][2]["code"].clone();
    let v01 = broken["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["code"] == "V01")
        .unwrap();
    v01["points"] = json!(5);
    let (status, body) = app.put(path, admin, &broken).await;
    assert_problem(status, &body, 400, "invalid_argument", None);
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.len() >= 3, "{body}");
    assert!(
        errors
            .iter()
            .any(|e| e["field"].as_str().unwrap().starts_with("items[0]")),
        "{body}"
    );
    // Not JSON, not an object, the wrong content type.
    let r = app
        .client
        .put(app.url(path))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{\"year\": ")
        .send()
        .await
        .unwrap();
    let status = r.status();
    // (the field is where the text broke off: `year`)
    assert_problem(
        status,
        &r.json().await.unwrap(),
        400,
        "malformed_json",
        Some("year"),
    );
    let (status, body) = app.put(path, admin, &json!([1, 2])).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("body"));
    let r = app
        .client
        .put(app.url(path))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/plain")
        .body("year = 2026")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Published: the stored document comes back, and GET serves it.
    let (status, published) = app.put(path, admin, &grown).await;
    assert_eq!(status, StatusCode::OK, "{published}");
    assert_keys(
        &published,
        &["year", "version", "items", "categories", "document"],
        &[],
    );
    assert_eq!(published["version"], 1);
    assert_eq!(published["items"].as_array().unwrap().len(), 51);
    assert_eq!(published["document"]["items"].as_array().unwrap().len(), 51);
    assert_eq!(published["document"]["deadline_day"], 5);
    let (_, got) = app.get(path, Some(&b.members[0].token)).await;
    assert_eq!(got["version"], 1);
    assert_eq!(item(&got, "B12")["name"], "参加党建课题研究");

    // Once a declaration of 2026 exists, changing an item is refused …
    let m = &b.members[0];
    let (status, draft) = app
        .put(
            &format!("/api/v1/members/{}/declarations/{MONTH}", m.id),
            Some(&m.token),
            &json!({"lines": [{"item_code": "F04", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    let mut changed = grown.clone();
    let f04 = changed["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["code"] == "F04")
        .unwrap();
    f04["points"] = json!(0.5);
    let (status, body) = app.put(path, admin, &changed).await;
    assert_problem(status, &body, 409, "standard_in_use", None);
    assert!(
        body["detail"].as_str().unwrap().contains("F04")
            || body["detail"].as_str().unwrap().contains("items["),
        "{body}"
    );
    let mut fewer = grown.clone();
    fewer["items"].as_array_mut().unwrap().pop();
    let (status, body) = app.put(path, admin, &fewer).await;
    assert_problem(status, &body, 409, "standard_in_use", None);

    // … while only adding one is published.
    let mut more = grown.clone();
    let mut b13 = item(&json!({"items": grown["items"]}), "B12").clone();
    b13["code"] = json!("B13");
    b13["name"] = json!("参加党务知识竞赛获奖");
    more["items"].as_array_mut().unwrap().push(b13);
    let (status, republished) = app.put(path, admin, &more).await;
    assert_eq!(status, StatusCode::OK, "{republished}");
    assert_eq!(republished["version"], 2);
    assert_eq!(republished["items"].as_array().unwrap().len(), 52);
}
