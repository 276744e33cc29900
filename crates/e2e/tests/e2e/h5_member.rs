//! The member's and the secretary's page (`GET /m/`) in two real browsers at a phone's viewport
//! (browser.rs): a member declares two items with a photo and submits; the branch secretary, on
//! another phone, lowers one line with a reason and approves; the member sees the reason and the
//! approved points in the ledger. Every screen is saved under `target/screenshots/h5/`.

use crate::browser::{Browser, find, page_errors, screenshot, type_into, wait_text};
use crate::cluster::{ADMIN_PASSWORD, Cluster, eventually};
use fantoccini::Client;
use serde_json::{Value, json};

/// The current month in Shanghai, `YYYY-MM` (the page offers it first).
fn this_month() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8))
        .format("%Y-%m")
        .to_string()
}

/// A small real PNG photo for the evidence input.
fn photo(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("volunteer.png");
    image::RgbImage::from_fn(96, 72, |x, y| {
        let r = u8::try_from(x * 2).unwrap_or(255);
        let g = u8::try_from(y * 3).unwrap_or(255);
        image::Rgb([r, g, 160])
    })
    .save(&path)
    .unwrap();
    path
}

/// Logs in on the page's form.
async fn log_in(phone: &Client, base: &str, username: &str, password: &str, shot: &str) {
    phone.goto(&format!("{base}/m/")).await.unwrap();
    find(phone, "#login-form").await;
    screenshot(phone, shot).await;
    type_into(phone, "#login-form input[name=username]", username).await;
    type_into(phone, "#login-form input[name=password]", password).await;
    tap(phone, "#login-form button[type=submit]").await;
}

/// Taps `css` the way a person does: scrolled to the middle of the screen first, clear of the
/// page's sticky action bar and bottom tab bar (WebDriver's own scrolling may leave it under them).
async fn tap(phone: &Client, css: &str) {
    let element = find(phone, css).await;
    phone
        .execute(
            "arguments[0].scrollIntoView({block: 'center'});",
            vec![serde_json::to_value(&element).unwrap()],
        )
        .await
        .unwrap();
    element.click().await.unwrap();
}

/// The text of the element `css`.
async fn text_of(phone: &Client, css: &str) -> String {
    find(phone, css).await.text().await.unwrap()
}

/// How the page writes points: at most one decimal, whole numbers without one.
fn points(value: &Value) -> String {
    let tenths = (value.as_f64().unwrap() * 10.0).round();
    if tenths % 10.0 == 0.0 {
        format!("{}", tenths / 10.0)
    } else {
        format!("{:.1}", tenths / 10.0)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_declares_on_a_phone_and_the_secretary_adjusts_and_approves() {
    let cluster = Cluster::start("h5member").await;
    let month = this_month();
    let year = &month[..4];
    // A branch with a member and a secretary, each with a login.
    let (_, branch, people) = branch_with_logins(
        &cluster,
        year,
        "第一党支部",
        &[("张红梅", "zhanghm"), ("李书记", "lisj")],
        "2015-07-01",
        "h5-password-1",
    )
    .await;
    let member_id = people[0].clone();
    let member_token = cluster.login("zhanghm", "h5-password-1").await;
    let declaration_path = format!("/api/v1/members/{member_id}/declarations/{month}");
    // The declarations service learns the member from the members service's events.
    eventually(60, "the declarations replica knows the member", || {
        let (cluster, token, path) = (&cluster, &member_token, &declaration_path);
        async move { (cluster.get(token, path).await.0 == 200).then_some(()) }
    })
    .await;

    let (_, standard) = cluster
        .get(
            &member_token,
            &format!("/api/v1/standards/{year}?org_id={branch}"),
        )
        .await;
    let item = |code: &str| {
        standard["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["code"] == code)
            .unwrap()
            .clone()
    };
    // F01 (岗位履职, 1 point a month, no evidence) once; F02 (志愿服务, 2 points, evidence
    // required, at most 4 points a month) twice, with a photo.
    let (f01, f02) = (item("F01"), item("F02"));
    assert_eq!(
        (f01["points"].as_f64(), f02["points"].as_f64()),
        (Some(1.0), Some(2.0))
    );
    assert_eq!(f02["evidence_required"], true);
    let claimed = f01["points"].as_f64().unwrap() + 2.0 * f02["points"].as_f64().unwrap();
    let lowered_to = 2.0;
    let approved = f01["points"].as_f64().unwrap() + lowered_to;
    let reason = "只有一次活动有照片";

    let dir = tempfile::tempdir().unwrap();
    let photo = photo(dir.path());
    let browser = Browser::start().await;

    // --- The member's phone: log in, declare, save, submit.
    let member = browser.phone().await;
    log_in(
        &member,
        &cluster.base,
        "zhanghm",
        "h5-password-1",
        "m01-login",
    )
    .await;
    wait_text(&member, "#decl-summary", "草稿").await;
    wait_text(&member, "#who", "张红梅").await;
    // Items by category, under the standard's names for them.
    let category = standard["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "F")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_text(&member, ".category[data-category=F] h3", &category).await;
    screenshot(&member, "m02-declare-empty").await;
    tap(&member, ".item[data-item=F01] .step.plus").await;
    tap(&member, ".item[data-item=F02] .step.plus").await;
    tap(&member, ".item[data-item=F02] .step.plus").await;
    // Two is F02's monthly cap (4 points): the stepper stops there.
    assert!(
        !find(&member, ".item[data-item=F02] .step.plus")
            .await
            .is_enabled()
            .await
            .unwrap()
    );
    type_into(
        &member,
        ".item[data-item=F01] input.note",
        "完成12月岗位任务",
    )
    .await;
    type_into(
        &member,
        ".item[data-item=F02] input.note",
        "社区志愿服务两次",
    )
    .await;
    find(&member, ".item[data-item=F02] input.camera")
        .await
        .send_keys(&photo.display().to_string())
        .await
        .unwrap();
    find(
        &member,
        ".item[data-item=F02] .thumb img[src^='data:image/']",
    )
    .await;
    wait_text(&member, "#form-total", &points(&json!(claimed))).await;
    screenshot(&member, "m03-declare-filled").await;
    tap(&member, ".actions .secondary").await;
    wait_text(&member, "#notice", "已保存草稿").await;
    let (_, draft) = cluster.get(&member_token, &declaration_path).await;
    assert_eq!(draft["status"], "draft", "{draft}");
    assert_eq!(draft["claimed_total"].as_f64(), Some(claimed));
    let f02_line = draft["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["item_code"] == "F02")
        .unwrap()
        .clone();
    assert_eq!(f02_line["quantity"], 2);
    assert_eq!(f02_line["evidence"].as_array().unwrap().len(), 1);
    // The saved draft comes back with its photo.
    find(
        &member,
        ".item[data-item=F02] .thumb img[src^='data:image/']",
    )
    .await;
    tap(&member, ".actions .primary").await;
    wait_text(&member, "#decl-summary", "已提交").await;
    wait_text(&member, "#notice", "已提交").await;
    wait_text(&member, "#claimed-total", &points(&json!(claimed))).await;
    screenshot(&member, "m04-submitted").await;
    assert_eq!(page_errors(&member).await, Vec::<String>::new());

    // --- The secretary's phone: the queue, the declaration, lower F02 with a reason, approve.
    let secretary = browser.phone().await;
    log_in(
        &secretary,
        &cluster.base,
        "lisj",
        "h5-password-1",
        "s01-login",
    )
    .await;
    find(
        &secretary,
        "#tabs:not([hidden]) a[data-view=review]:not([hidden])",
    )
    .await;
    tap(&secretary, "#tabs a[data-view=review]").await;
    wait_text(&secretary, "#queue", "张红梅").await;
    wait_text(&secretary, "#participation", "参与情况").await;
    screenshot(&secretary, "s02-queue").await;
    tap(&secretary, "#queue .queue-row a.open").await;
    find(&secretary, "#check-lines").await;
    find(
        &secretary,
        ".line[data-item=F02] .thumb img[src^='data:image/']",
    )
    .await;
    screenshot(&secretary, "s03-declaration").await;
    // A line kept at its claimed points asks for no reason.
    assert!(
        !find(&secretary, ".line[data-item=F01] input.adjust-reason")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    type_into(
        &secretary,
        ".line[data-item=F02] input.approve-points",
        &points(&json!(lowered_to)),
    )
    .await;
    type_into(
        &secretary,
        ".line[data-item=F02] input.adjust-reason",
        reason,
    )
    .await;
    screenshot(&secretary, "s04-adjusted").await;
    tap(&secretary, ".actions.three .primary").await;
    wait_text(&secretary, "#notice", "已通过").await;
    wait_text(
        &secretary,
        "#notice",
        &format!("核定 {} 分", points(&json!(approved))),
    )
    .await;
    screenshot(&secretary, "s05-approved").await;
    tap(&secretary, "a.button[href^='#/records/']").await;
    find(&secretary, "#records-list").await;
    screenshot(&secretary, "s06-branch-records").await;
    assert_eq!(page_errors(&secretary).await, Vec::<String>::new());

    let (_, reviewed) = cluster.get(&member_token, &declaration_path).await;
    assert_eq!(reviewed["status"], "approved", "{reviewed}");
    assert_eq!(reviewed["approved_total"].as_f64(), Some(approved));

    // --- The member again: the approved declaration with the reason, then the ledger.
    member.refresh().await.unwrap();
    wait_text(&member, "#decl-summary", "已通过").await;
    wait_text(&member, "#approved-total", &points(&json!(approved))).await;
    wait_text(&member, ".line[data-item=F02] .reason", reason).await;
    wait_text(
        &member,
        ".line[data-item=F02] .approved",
        &format!("核定 {} 分", points(&json!(lowered_to))),
    )
    .await;
    screenshot(&member, "m05-approved").await;

    // The grading service counts the approval from its event.
    let ledger_path = format!("/api/v1/members/{member_id}/ledger?year={year}");
    let ledger = eventually(60, "the ledger has the approved points", || {
        let (cluster, token, path) = (&cluster, &member_token, &ledger_path);
        async move {
            let (status, ledger) = cluster.get(token, path).await;
            (status == 200 && ledger["total"].as_f64() == Some(approved)).then_some(ledger)
        }
    })
    .await;
    tap(&member, "#tabs a[data-view=ledger]").await;
    wait_text(&member, "#ledger-total", &points(&ledger["total"])).await;
    for (id, key) in [
        ("#ledger-total", "total"),
        ("#ledger-base", "base_points"),
        ("#ledger-bonus", "bonus_points"),
        ("#ledger-deduction", "deduction_points"),
        ("#ledger-evaluation", "evaluation_points"),
    ] {
        assert_eq!(text_of(&member, id).await, points(&ledger[key]), "{id}");
    }
    assert_eq!(
        text_of(&member, "#ledger-total").await,
        points(&json!(approved))
    );
    assert_eq!(
        text_of(&member, "#ledger-base").await,
        points(&json!(approved))
    );
    assert_eq!(
        text_of(&member, ".entry[data-item=F02] .points").await,
        format!("+{}", points(&json!(lowered_to)))
    );
    assert_eq!(
        text_of(&member, ".entry[data-item=F01] .points").await,
        format!("+{}", points(&f01["points"]))
    );
    screenshot(&member, "m06-ledger").await;
    tap(&member, "#tabs a[data-view=grade]").await;
    wait_text(&member, "#grade-card", "尚未公示").await;
    screenshot(&member, "m07-grade").await;
    assert_eq!(page_errors(&member).await, Vec::<String>::new());

    member.close().await.unwrap();
    secretary.close().await.unwrap();
}

/// The standard of `year` (only 2026 ships one: the same document is published for another
/// running year), then a branch `name` under the root with `people` (name, username), each with
/// a login (`password`), the last one its secretary. Answers the admin's token, the branch and
/// the people's member ids, in order.
async fn branch_with_logins(
    cluster: &Cluster,
    year: &str,
    name: &str,
    people: &[(&str, &str)],
    joined_on: &str,
    password: &str,
) -> (String, String, Vec<String>) {
    let admin = cluster.login("admin", ADMIN_PASSWORD).await;
    if year != "2026" {
        let mut doc = jifen_standard::default_2026()
            .unwrap()
            .to_json_value()
            .unwrap();
        doc["year"] = json!(year.parse::<i32>().unwrap());
        let (status, body) = cluster
            .put(&admin, &format!("/api/v1/standards/{year}"), doc)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, me) = cluster.get(&admin, "/api/v1/me").await;
    let root = me["roles"][0]["org_id"].as_str().unwrap().to_owned();
    let (status, branch) = cluster
        .post(
            &admin,
            "/api/v1/orgs",
            json!({"parent_id": root, "name": name, "kind": "branch", "unit_type": "other"}),
        )
        .await;
    assert_eq!(status, 201, "{branch}");
    let branch = branch["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for (name, username) in people {
        let (status, m) = cluster
            .post(
                &admin,
                "/api/v1/members",
                json!({"org_id": branch, "name": name, "category": "full", "joined_on": joined_on,
                       "username": username, "password": password}),
            )
            .await;
        assert_eq!(status, 201, "{m}");
        ids.push(m["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = cluster
        .post(
            &admin,
            &format!("/api/v1/orgs/{branch}/roles"),
            json!({"member_id": ids.last().unwrap(), "role": "secretary"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    (admin, branch, ids)
}

/// Whether the page fits the phone's width (nothing wider than the screen to scroll sideways).
async fn fits_width(phone: &Client) -> bool {
    phone
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap_or(false)
}

/// The secretary's other tools and the member's grade: a wrong password is refused in words;
/// two submitted declarations are approved in one batch; a branch item is recorded for both
/// members, and a recording over the item's monthly cap is refused in words; once the branch
/// has confirmed the year's grading, the member sees the grade with its reasons and appeals
/// (a second appeal is refused in words).
#[tokio::test(flavor = "multi_thread")]
async fn the_secretary_batch_approves_and_records_and_the_member_sees_the_grade_and_appeals() {
    let cluster = Cluster::start("h5secretary").await;
    let month = this_month();
    let year = month[..4].to_owned();
    let (admin, branch, ids) = branch_with_logins(
        &cluster,
        &year,
        "第二党支部",
        &[
            ("王建国", "wangjg"),
            ("赵丽", "zhaol"),
            ("周书记", "zhousj"),
        ],
        "2010-07-01",
        "h5-password-2",
    )
    .await;
    // Both members declare F01 once and submit, through the API.
    for (i, username) in ["wangjg", "zhaol"].into_iter().enumerate() {
        let token = cluster.login(username, "h5-password-2").await;
        let path = format!("/api/v1/members/{}/declarations/{month}", ids[i]);
        let draft = eventually(60, "the declarations replica knows the member", || {
            let (cluster, token, path) = (&cluster, &token, &path);
            async move {
                let (status, draft) = cluster
                    .put(
                        token,
                        path,
                        json!({"lines": [{"item_code": "F01", "quantity": 1}]}),
                    )
                    .await;
                (status == 200).then_some(draft)
            }
        })
        .await;
        let id = draft["id"].as_str().unwrap();
        let (status, body) = cluster
            .post(
                &token,
                &format!("/api/v1/declarations/{id}:submit"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    let browser = Browser::start().await;
    let secretary = browser.phone().await;
    log_in(
        &secretary,
        &cluster.base,
        "zhousj",
        "wrong-password",
        "s11-login",
    )
    .await;
    wait_text(&secretary, "#login-error", "用户名或密码错误").await;
    screenshot(&secretary, "s12-login-refused").await;
    type_into(
        &secretary,
        "#login-form input[name=password]",
        "h5-password-2",
    )
    .await;
    tap(&secretary, "#login-form button[type=submit]").await;
    find(
        &secretary,
        "#tabs:not([hidden]) a[data-view=review]:not([hidden])",
    )
    .await;
    tap(&secretary, "#tabs a[data-view=review]").await;
    wait_text(&secretary, "#queue", "王建国").await;
    wait_text(&secretary, "#queue", "赵丽").await;
    tap(&secretary, ".actions .secondary").await; // 全选
    wait_text(&secretary, ".actions .primary", "批量通过（2）").await;
    screenshot(&secretary, "s13-batch-chosen").await;
    assert!(fits_width(&secretary).await);
    tap(&secretary, ".actions .primary").await;
    wait_text(&secretary, "#notice", "已通过 2 份").await;
    wait_text(&secretary, "#queue", "没有待审核的申报").await;
    screenshot(&secretary, "s14-batch-approved").await;
    for id in &ids[..2] {
        let (_, d) = cluster
            .get(
                &admin,
                &format!("/api/v1/members/{id}/declarations/{month}"),
            )
            .await;
        assert_eq!(d["status"], "approved", "{d}");
    }

    // Branch records: P01 (支部集中学习, 2 points, at most 4 a month) once for both members.
    tap(&secretary, "a.button[href^='#/records/']").await;
    find(&secretary, "#records-list").await;
    find(&secretary, ".records select option[value=P01]").await;
    for id in &ids[..2] {
        tap(&secretary, &format!(".members input[value='{id}']")).await;
    }
    tap(&secretary, ".records .primary").await;
    wait_text(&secretary, "#notice", "已登记 2 人").await;
    wait_text(&secretary, "#records-list", "王建国").await;
    screenshot(&secretary, "s15-branch-recorded").await;
    // Three more occurrences would be 8 points, over the monthly cap: refused in words.
    type_into(&secretary, ".records input[type=number]", "3").await;
    tap(&secretary, &format!(".members input[value='{}']", ids[0])).await;
    tap(&secretary, ".records .primary").await;
    wait_text(&secretary, "#error", "超过了该项目的每月上限").await;
    wait_text(&secretary, "#error", "「参加支部集中学习」每月最多 4 分").await;
    assert!(
        find(&secretary, "#notice")
            .await
            .text()
            .await
            .unwrap()
            .is_empty()
    );
    screenshot(&secretary, "s16-over-the-cap").await;
    assert_eq!(page_errors(&secretary).await, Vec::<String>::new());

    // The branch computes and confirms the year's grading once the ledger has every point:
    // F01 1 + P01 2 = 3 points each.
    let member_token = cluster.login("wangjg", "h5-password-2").await;
    let ledger_path = format!("/api/v1/members/{}/ledger?year={year}", ids[0]);
    eventually(
        60,
        "the ledger has the approval and the branch record",
        || {
            let (cluster, token, path) = (&cluster, &member_token, &ledger_path);
            async move {
                let (_, ledger) = cluster.get(token, path).await;
                (ledger["total"].as_f64() == Some(3.0)).then_some(())
            }
        },
    )
    .await;
    let secretary_token = cluster.login("zhousj", "h5-password-2").await;
    let (status, computed) = cluster
        .post(
            &secretary_token,
            &format!("/api/v1/orgs/{branch}/gradings/{year}:compute"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{computed}");
    let (status, confirmed) = cluster
        .post(
            &secretary_token,
            &format!("/api/v1/orgs/{branch}/gradings/{year}:confirm"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let mine = confirmed["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["member_id"] == ids[0].as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["grade"], "unqualified", "{confirmed}");

    let member = browser.phone().await;
    log_in(
        &member,
        &cluster.base,
        "wangjg",
        "h5-password-2",
        "m11-login",
    )
    .await;
    wait_text(&member, "#decl-summary", "已通过").await;
    tap(&member, "#tabs a[data-view=grade]").await;
    wait_text(&member, "#grade-value", "不合格").await;
    wait_text(&member, "#grade-card", "公示中").await;
    // The reason no_valid_evaluation (RULES.md §5), in words.
    wait_text(&member, "#grade-card", "没有有效的季度群众评议").await;
    assert_eq!(
        text_of(&member, "#grade-card .figures .value").await,
        points(&mine["total"])
    );
    screenshot(&member, "m12-grade").await;
    type_into(
        &member,
        ".appeal textarea",
        "12月的志愿服务未计入，申请复核",
    )
    .await;
    tap(&member, ".appeal .primary").await;
    wait_text(&member, "#notice", "申诉已提交").await;
    wait_text(&member, ".appeal", "12月的志愿服务未计入").await;
    screenshot(&member, "m13-appealed").await;
    // The page keeps no list of appeals: after a reload the form is back, and a second appeal
    // is refused in words.
    member.refresh().await.unwrap();
    wait_text(&member, "#grade-value", "不合格").await;
    type_into(&member, ".appeal textarea", "再次申诉").await;
    tap(&member, ".appeal .primary").await;
    wait_text(&member, "#error", "您已提交申诉").await;
    screenshot(&member, "m14-appeal-open").await;
    assert!(fits_width(&member).await);
    assert_eq!(page_errors(&member).await, Vec::<String>::new());

    member.close().await.unwrap();
    secretary.close().await.unwrap();
}
