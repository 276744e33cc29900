//! The ledger export `GET /api/v1/orgs/{id}/exports/ledger.xlsx?year=` through the gateway only,
//! with the real services behind it: the workbook is opened with calamine and every cell is
//! compared with what `GET /api/v1/members/{id}/ledger` answers for the same member (never with
//! numbers written here), and every refusal is checked.
#![allow(clippy::unwrap_used)]
use crate::helpers::{MONTH, TestApp, assert_problem, spawn_app};
use crate::support::{Person, branch, record};
use calamine::{Data, Reader as _, Xlsx};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const YEAR: i32 = 2026;
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fn export(org: &str, query: &str) -> String {
    format!("/api/v1/orgs/{org}/exports/ledger.xlsx{query}")
}

/// Downloads the export of `org` for [`YEAR`] and checks the answer's headers.
async fn download(app: &TestApp, org: &str, token: &str) -> Xlsx<std::io::Cursor<Vec<u8>>> {
    let r = app
        .client
        .get(app.url(&export(org, &format!("?year={YEAR}"))))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap().to_vec();
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(headers["content-type"], XLSX);
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"ledger-{YEAR}.xlsx\"").as_str()
    );
    assert!(headers.contains_key("x-request-id"));
    calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap()
}

/// A cell as text (empty for an empty cell).
fn text(cell: &Data) -> String {
    match cell {
        Data::String(s) => s.clone(),
        Data::Empty => String::new(),
        other => other.to_string(),
    }
}

/// A cell as points (0 for an empty cell).
fn number(cell: &Data) -> f64 {
    match cell {
        Data::Float(f) => *f,
        Data::Int(i) => *i as f64,
        Data::Empty => 0.0,
        other => panic!("not a number: {other:?}"),
    }
}

/// Rows of a worksheet as cells, the header first.
fn rows(book: &mut Xlsx<std::io::Cursor<Vec<u8>>>, sheet: &str) -> Vec<Vec<Data>> {
    let range = book.worksheet_range(sheet).unwrap();
    range.rows().map(<[Data]>::to_vec).collect()
}

fn ledger_header() -> Vec<String> {
    let mut head: Vec<String> = [
        "党员编号",
        "姓名",
        "所在支部",
        "类别",
        "项目编码",
        "项目名称",
    ]
    .map(String::from)
    .to_vec();
    head.extend((1..=12).map(|m| format!("{m}月")));
    head.push("合计".into());
    head
}

const SUMMARY_HEADER: [&str; 10] = [
    "党员编号",
    "姓名",
    "所在支部",
    "类别",
    "状态",
    "基础分",
    "奖励分",
    "扣分",
    "评议分",
    "总分",
];

/// Rounds to one decimal, to compare sums of decimals.
fn tenths(x: f64) -> i64 {
    (x * 10.0).round() as i64
}

/// Checks the workbook against the ledger API for each of `people` (and that it holds nobody
/// else), with `branch_name` as their organization.
async fn check_workbook(
    app: &TestApp,
    book: &mut Xlsx<std::io::Cursor<Vec<u8>>>,
    people: &[(&Person, &str)],
    branch_name: &str,
) {
    assert_eq!(book.sheet_names(), vec!["积分台账", "年度汇总"]);
    let ledger = rows(book, "积分台账");
    let summary = rows(book, "年度汇总");
    let head: Vec<String> = ledger[0].iter().map(text).collect();
    assert_eq!(head, ledger_header());
    let head: Vec<String> = summary[0].iter().map(text).collect();
    assert_eq!(head, SUMMARY_HEADER);

    let listed: BTreeSet<String> = summary[1..].iter().map(|r| text(&r[0])).collect();
    let expected: BTreeSet<String> = people.iter().map(|(p, _)| p.id.clone()).collect();
    assert_eq!(listed, expected, "members of the summary");
    assert_eq!(
        summary.len(),
        people.len() + 1,
        "one summary row per member"
    );

    for (person, name) in people {
        let (status, api) = app
            .get(
                &format!("/api/v1/members/{}/ledger?year={YEAR}", person.id),
                Some(&app.admin_token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{api}");

        // 积分台账: per item, the points of each month, as the API's entries add up.
        let mut want: BTreeMap<String, [i64; 12]> = BTreeMap::new();
        for e in api["entries"].as_array().unwrap() {
            let month: usize = e["month"].as_str().unwrap()[5..].parse().unwrap();
            want.entry(e["item_code"].as_str().unwrap().to_owned())
                .or_default()[month - 1] += tenths(e["points"].as_f64().unwrap());
        }
        let mut got: BTreeMap<String, [i64; 12]> = BTreeMap::new();
        for row in ledger[1..].iter().filter(|r| text(&r[0]) == person.id) {
            assert_eq!(text(&row[1]), *name);
            assert_eq!(text(&row[2]), branch_name);
            assert_eq!(text(&row[3]), "正式党员");
            let code = text(&row[4]);
            assert!(!text(&row[5]).is_empty(), "item {code} has a name");
            let mut months = [0_i64; 12];
            for (m, cell) in months.iter_mut().zip(&row[6..18]) {
                *m = tenths(number(cell));
            }
            assert_eq!(
                tenths(number(&row[18])),
                months.iter().sum::<i64>(),
                "合计 of {code}"
            );
            assert!(got.insert(code, months).is_none(), "one row per item");
        }
        assert_eq!(got, want, "ledger rows of {}", person.id);

        // 年度汇总: the capped totals, exactly as the API answers them.
        let row = summary[1..]
            .iter()
            .find(|r| text(&r[0]) == person.id)
            .unwrap();
        assert_eq!(text(&row[1]), *name);
        assert_eq!(text(&row[2]), branch_name);
        assert_eq!(text(&row[4]), "正常");
        for (col, key) in [
            (5, "base_points"),
            (6, "bonus_points"),
            (7, "deduction_points"),
            (8, "evaluation_points"),
            (9, "total"),
        ] {
            assert_eq!(
                tenths(number(&row[col])),
                tenths(api[key].as_f64().unwrap()),
                "{key} of {}",
                person.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_download_a_workbook_that_agrees_with_the_ledger_api() {
    let app = spawn_app().await;
    let b = branch(&app, "ex", 3).await;
    let other = branch(&app, "ey", 1).await;
    let (m0, m1) = (&b.members[0], &b.members[1]);
    let sec = &b.secretary.token;

    // March: branch records for two members, several items (P01 2 × 2 at its monthly cap).
    record(
        &app,
        &b.branch_id,
        sec,
        MONTH,
        json!([
            {"member_id": m0.id, "item_code": "P01", "quantity": 2},
            {"member_id": m0.id, "item_code": "O02", "quantity": 1},
            {"member_id": m0.id, "item_code": "D01", "quantity": 1},
            {"member_id": m1.id, "item_code": "P01", "quantity": 1},
            {"member_id": m1.id, "item_code": "D01", "quantity": 1},
        ]),
    )
    .await;
    // March: m0's own declaration, submitted and approved.
    let (status, draft) = app
        .put(
            &format!("/api/v1/members/{}/declarations/{MONTH}", m0.id),
            Some(&m0.token),
            &json!({"lines": [{"item_code": "F04", "quantity": 1, "note": "志愿服务"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    let id = draft["id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/api/v1/declarations/{id}:submit"),
            Some(&m0.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/declarations/{id}:review"),
            Some(sec),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // April: more of the same items for m0 (a second month in the same rows).
    app.clock.set("2026-04-10T02:00:00Z".parse().unwrap());
    record(
        &app,
        &b.branch_id,
        sec,
        "2026-04",
        json!([
            {"member_id": m0.id, "item_code": "O02", "quantity": 1},
            {"member_id": m0.id, "item_code": "D01", "quantity": 1},
        ]),
    )
    .await;

    // Everyone is in the grading projection with every entry.
    app.wait_ledger(&m0.id, YEAR, 6).await;
    app.wait_ledger(&m1.id, YEAR, 2).await;
    for p in [&b.members[2], &b.secretary] {
        app.wait_ledger(&p.id, YEAR, 0).await;
    }

    let people = [
        (&b.secretary, "书记"),
        (m0, "党员0"),
        (m1, "党员1"),
        (&b.members[2], "党员2"),
    ];
    // The branch's secretary exports the branch; the admin the committee above it (the same
    // members: the committee holds only this branch).
    let mut book = download(&app, &b.branch_id, sec).await;
    check_workbook(&app, &mut book, &people, "ex 党支部").await;
    let mut book = download(&app, &b.committee_id, &app.admin_token).await;
    check_workbook(&app, &mut book, &people, "ex 党支部").await;
    // Members without entries appear in the summary only.
    let ledger = rows(&mut book, "积分台账");
    assert_eq!(
        ledger[1..]
            .iter()
            .filter(|r| text(&r[0]) == b.members[2].id)
            .count(),
        0
    );
    // No personal data: the headers above are every column, and no cell holds a phone number
    // or an ID card number (digits only, 11 or 18 long).
    for sheet in ["积分台账", "年度汇总"] {
        for row in rows(&mut book, sheet) {
            for cell in &row {
                let t = text(cell);
                assert!(
                    !(t.len() >= 11 && t.chars().all(|c| c.is_ascii_digit() || c == 'X')),
                    "{sheet}: {t}"
                );
            }
        }
    }

    // Refusals: a member (gate: staff only), another branch's secretary (not in their scope),
    // the branch's secretary for the committee above (not in their scope), an unknown org.
    let path = export(&b.branch_id, &format!("?year={YEAR}"));
    let (status, body) = app.get(&path, Some(&m0.token)).await;
    assert_problem(status, &body, 403, "permission_denied", None);
    let (status, body) = app.get(&path, Some(&other.secretary.token)).await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));
    let (status, body) = app
        .get(
            &export(&b.committee_id, &format!("?year={YEAR}")),
            Some(sec),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));
    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, body) = app
        .get(
            &export(&unknown, &format!("?year={YEAR}")),
            Some(&app.admin_token),
        )
        .await;
    assert_problem(status, &body, 404, "not_found", Some("org_id"));
    let (status, body) = app.get(&path, None).await;
    assert_problem(status, &body, 401, "unauthenticated", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_year_is_required_and_the_id_a_uuid() {
    let app = spawn_app().await;
    let org = app.root_id.clone();
    for query in [
        "",
        "?year=",
        "?year=twenty",
        "?year=1999",
        "?year=2101",
        "?yr=2026",
    ] {
        let (status, body) = app.get(&export(&org, query), Some(&app.admin_token)).await;
        assert_problem(status, &body, 400, "invalid_argument", Some("year"));
    }
    let (status, body) = app
        .get(&export("not-a-uuid", "?year=2026"), Some(&app.admin_token))
        .await;
    assert_problem(status, &body, 400, "invalid_argument", Some("id"));
}
