//! The dashboard page (党建看板) in a real browser (browser.rs) over a small city made through the
//! API: a committee with two branches and a branch under the root, declarations submitted and
//! approved over the year's last months (up to three), two branches' gradings confirmed. The page
//! must chart the very figures the API answers (read here, never written down), drill into a
//! child and back by the breadcrumb, pick a month by its Chinese name, switch to the wall mode
//! (大屏) and reload its figures there without reloading the page, refresh its access token before
//! it expires, and fit 1920×1080, 1366×768 and 390×844 — with no script error or policy
//! violation. Screenshots: `target/screenshots/dashboard/`.

use crate::browser::{
    Browser, find, page_errors, screenshot_in, set_viewport, type_into, wait_text,
};
use crate::cluster::{ADMIN_PASSWORD, Cluster, eventually};
use fantoccini::Client;
use fantoccini::actions::{InputSource as _, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PASSWORD: &str = "dash-password-1";
/// The access token's life in this cluster: the page must refresh it (at half its life).
const ACCESS_TTL_SECS: u64 = 30;
const SHOTS: &str = "dashboard";

/// The running year and month in Shanghai.
fn now_month() -> (i32, u32) {
    use chrono::Datelike as _;
    let now = chrono::Utc::now() + chrono::Duration::hours(8);
    (now.year(), now.month())
}

fn month_str(year: i32, month: u32) -> String {
    format!("{year}-{month:02}")
}

/// The page's Chinese name of a month: `2026年11月`.
fn month_label(year: i32, month: u32) -> String {
    format!("{year}年{month}月")
}

/// A branch of the test city: its id and members (id, username); the last is its secretary.
struct Branch {
    id: String,
    members: Vec<(String, String)>,
}

struct City {
    root: String,
    committee: String,
    branches: Vec<Branch>,
}

/// A new admin token (the cluster's tokens live 30 s).
async fn admin(cluster: &Cluster) -> String {
    cluster.login("admin", ADMIN_PASSWORD).await
}

async fn org(cluster: &Cluster, parent: &str, name: &str, kind: &str) -> String {
    let (status, body) = cluster
        .post(
            &admin(cluster).await,
            "/api/v1/orgs",
            json!({"parent_id": parent, "name": name, "kind": kind, "unit_type": "government_organ"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn branch(cluster: &Cluster, parent: &str, name: &str, people: &[(&str, &str)]) -> Branch {
    let id = org(cluster, parent, name, "branch").await;
    let token = admin(cluster).await;
    let mut members = Vec::new();
    for (name, username) in people {
        let (status, m) = cluster
            .post(
                &token,
                "/api/v1/members",
                json!({"org_id": id, "name": name, "category": "full", "joined_on": "2012-07-01",
                       "username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "{m}");
        members.push((m["id"].as_str().unwrap().to_owned(), (*username).to_owned()));
    }
    let (status, body) = cluster
        .post(
            &token,
            &format!("/api/v1/orgs/{id}/roles"),
            json!({"member_id": members.last().unwrap().0, "role": "secretary"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    Branch { id, members }
}

/// The member declares F01 (岗位履职, 1 point) for `month` and submits; answers the declaration id.
async fn declare(cluster: &Cluster, member: &(String, String), month: &str) -> String {
    let path = format!("/api/v1/members/{}/declarations/{month}", member.0);
    let draft = eventually(60, "the declarations replica knows the member", || {
        let path = &path;
        async move {
            let token = cluster.login(&member.1, PASSWORD).await;
            let (status, draft) = cluster
                .put(
                    &token,
                    path,
                    json!({"lines": [{"item_code": "F01", "quantity": 1}]}),
                )
                .await;
            (status == 200).then_some(draft)
        }
    })
    .await;
    let id = draft["id"].as_str().unwrap().to_owned();
    let token = cluster.login(&member.1, PASSWORD).await;
    let (status, body) = cluster
        .post(
            &token,
            &format!("/api/v1/declarations/{id}:submit"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    id
}

/// The city, with declarations of `months` (the first member of the second branch and the
/// second of the third never declare; the third branch's first member only in the last month).
async fn city(cluster: &Cluster, year: i32, months: &[u32]) -> City {
    let token = admin(cluster).await;
    if year != 2026 {
        let mut doc = jifen_standard::default_2026()
            .unwrap()
            .to_json_value()
            .unwrap();
        doc["year"] = json!(year);
        let (status, body) = cluster
            .put(&token, &format!("/api/v1/standards/{year}"), doc)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, me) = cluster.get(&token, "/api/v1/me").await;
    let root = me["roles"][0]["org_id"].as_str().unwrap().to_owned();
    let committee = org(cluster, &root, "市财政局机关党委", "committee").await;
    let branches = vec![
        branch(
            cluster,
            &committee,
            "财政第一党支部",
            &[("张红梅", "dzhang"), ("李建华", "dli"), ("王书记", "dwang")],
        )
        .await,
        branch(
            cluster,
            &committee,
            "财政第二党支部",
            &[("赵丽", "dzhao"), ("钱进", "dqian"), ("孙书记", "dsun")],
        )
        .await,
        branch(
            cluster,
            &root,
            "教育局第一党支部",
            &[("周强", "dzhou"), ("吴书记", "dwu")],
        )
        .await,
    ];
    let (last, earlier) = months.split_last().unwrap();
    // The earlier months are closed for members' own declarations: the root reopens them (补报).
    let until = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    for m in earlier {
        let (status, body) = cluster
            .post(
                &admin(cluster).await,
                &format!("/api/v1/orgs/{root}/periods/{}:reopen", month_str(year, *m)),
                json!({"until": until, "reason": "看板测试补报"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    for m in months {
        let month = month_str(year, *m);
        for (b, who) in [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 0)] {
            if b == 2 && m != last {
                continue;
            }
            let id = declare(cluster, &branches[b].members[who], &month).await;
            let (status, body) = cluster
                .post(
                    &admin(cluster).await,
                    &format!("/api/v1/orgs/{}/declarations:batch-approve", branches[b].id),
                    json!({"month": month, "declaration_ids": [id]}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["approved"], 1, "{body}");
        }
    }
    City {
        root,
        committee,
        branches,
    }
}

/// The chart `id`'s option as ECharts holds it (`getOption()`, functions left out), once the
/// chart exists and has a series.
async fn option(client: &Client, id: &str) -> Value {
    let script = "const el = document.getElementById(arguments[0]); \
                  const c = el && echarts.getInstanceByDom(el); \
                  return c ? JSON.stringify(c.getOption()) : null;";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = client.execute(script, vec![json!(id)]).await.unwrap();
        if let Some(text) = answer.as_str() {
            let option: Value = serde_json::from_str(text).unwrap();
            if option["series"].as_array().is_some_and(|s| !s.is_empty()) {
                return option;
            }
        }
        assert!(Instant::now() < deadline, "no chart {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether every chart shown is drawn (an `<svg>` with shapes in it) at its box's size.
async fn charts_drawn(client: &Client) -> Vec<String> {
    let script = "return [...document.querySelectorAll('.chart')].filter((el) => !el.hidden) \
                  .map((el) => { const c = echarts.getInstanceByDom(el); \
                  const svg = el.querySelector('svg'); \
                  const ok = c && svg && svg.querySelectorAll('path').length > 0 \
                     && Math.abs(c.getWidth() - el.clientWidth) <= 1 \
                     && Math.abs(c.getHeight() - el.clientHeight) <= 1 && el.clientWidth > 100; \
                  return ok ? '' : el.id + ' ' + (c ? c.getWidth() + 'x' + c.getHeight() : 'none') \
                     + ' in ' + el.clientWidth + 'x' + el.clientHeight; }).filter((s) => s);";
    let value = client.execute(script, vec![]).await.unwrap();
    serde_json::from_value(value).unwrap()
}

/// Waits until the page shows `org` and `month` loaded at least `loads` times.
async fn loaded(client: &Client, org: &str, month: &str, loads: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = client
            .execute(
                "const b = document.getElementById('board'); \
                 return [b.dataset.org || '', b.dataset.month || '', Number(b.dataset.loads || 0)];",
                vec![],
            )
            .await
            .unwrap();
        if value[0] == org && value[1] == month && value[2].as_u64().unwrap() >= loads {
            return value[2].as_u64().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the page did not load {org} {month} ({value})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap_or_else(|| v["value"].as_f64().unwrap()))
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn field(items: &Value, key: &str) -> Vec<Value> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[key].clone())
        .collect()
}

/// The API's figures of one organization, read with a fresh admin token.
struct Figures {
    dashboard: Value,
    trend: Value,
    histogram: Value,
    branches: Value,
    ranking: Value,
    last_year: Option<Value>,
}

async fn figures(cluster: &Cluster, org: &str, year: i32, month: &str) -> Figures {
    let token = admin(cluster).await;
    let base = format!("/api/v1/dashboard/orgs/{org}");
    let read = |path: String| {
        let token = &token;
        async move {
            let (status, body) = cluster.get(token, &path).await;
            assert_eq!(status, 200, "{path}: {body}");
            body
        }
    };
    let (status, last_year) = cluster
        .get(&token, &format!("{base}?month={}-12", year - 1))
        .await;
    Figures {
        dashboard: read(format!("{base}?month={month}")).await,
        trend: read(format!("{base}/trend?year={year}")).await,
        histogram: read(format!("{base}/histogram?year={year}&bins=10")).await,
        branches: read(format!("{base}/branches?month={month}")).await,
        ranking: read(format!("{base}/ranking?year={year}&limit=10")).await,
        last_year: (status == 200).then_some(last_year),
    }
}

/// Every chart and table of the page carries the API's figures.
async fn assert_charts_show(client: &Client, f: &Figures) {
    let d = &f.dashboard;
    wait_text(client, "#members", &d["members"].to_string()).await;
    wait_text(client, "#declared", &d["declared"].to_string()).await;

    let months = &f.trend["months"];
    let participation = option(client, "chart-participation").await;
    let labels: Vec<String> = field(months, "month")
        .iter()
        .map(|m| format!("{}月", m.as_str().unwrap()[5..].parse::<u32>().unwrap()))
        .collect();
    assert_eq!(strings(&participation["xAxis"][0]["data"]), labels);
    assert_eq!(
        numbers(&participation["series"][0]["data"]),
        numbers(&Value::Array(field(months, "participation_rate")))
    );
    let points = option(client, "chart-points").await;
    assert_eq!(
        numbers(&points["series"][0]["data"]),
        numbers(&Value::Array(field(months, "approved_points_avg")))
    );

    let keys = [
        "excellent",
        "qualified",
        "basically_qualified",
        "unqualified",
    ];
    let published: Vec<Vec<f64>> = [Some(d), f.last_year.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("grade_distribution").filter(|g| g.is_object()))
        .map(|g| keys.iter().map(|k| g[k].as_f64().unwrap()).collect())
        .collect();
    if published.is_empty() {
        wait_text(client, "#grades-empty", "尚未公示").await;
    } else {
        let grades = option(client, "chart-grades").await;
        let shown: Vec<Vec<f64>> = grades["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| numbers(&s["data"]))
            .collect();
        assert_eq!(shown, published);
    }

    let children = d["children"].as_array().unwrap();
    if !children.is_empty() {
        let chart = option(client, "chart-children").await;
        let mut shown: Vec<(String, f64)> = strings(&chart["yAxis"][0]["data"])
            .into_iter()
            .zip(numbers(&chart["series"][0]["data"]))
            .collect();
        let mut expected: Vec<(String, f64)> = children
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["participation_rate"].as_f64().unwrap(),
                )
            })
            .collect();
        // Sorted by participation, highest at the top (the category axis starts at the bottom).
        assert!(shown.windows(2).all(|w| w[0].1 <= w[1].1), "{shown:?}");
        shown.sort_by(|a, b| a.0.cmp(&b.0));
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(shown, expected);
    }

    let histogram = option(client, "chart-histogram").await;
    let bins = &f.histogram["bins"];
    assert_eq!(
        numbers(&histogram["series"][0]["data"]),
        numbers(&Value::Array(field(bins, "count")))
    );
    assert_eq!(
        histogram["xAxis"][0]["data"].as_array().unwrap().len(),
        bins.as_array().unwrap().len()
    );

    let items = f.branches["items"].as_array().unwrap();
    let chart = option(client, "chart-branches").await;
    let names = strings(&chart["yAxis"][0]["data"]);
    let shown = names.len();
    assert!(shown >= items.len().min(3), "{names:?}");
    // The lowest participation first in the list, at the top of the chart.
    let lowest: Vec<&Value> = items[..shown].iter().rev().collect();
    assert_eq!(
        names,
        lowest
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        numbers(&chart["series"][0]["data"]),
        lowest
            .iter()
            .map(|b| b["participation_rate"].as_f64().unwrap())
            .collect::<Vec<_>>()
    );
    for b in items.iter().filter(|b| b["lagging"] == true).take(6) {
        wait_text(client, "#lagging", b["name"].as_str().unwrap()).await;
    }

    let rows = find(client, "#ranking").await;
    let text = rows.text().await.unwrap();
    for m in f.ranking["items"].as_array().unwrap() {
        assert!(text.contains(m["name"].as_str().unwrap()), "{text}");
        if let Some(branch) = m["branch_name"].as_str() {
            assert!(text.contains(branch), "{text}");
        }
    }
    assert_eq!(charts_drawn(client).await, Vec::<String>::new());
}

/// A real mouse click at the middle of the bar of `name` in the chart `id`.
async fn click_bar(client: &Client, id: &str, name: &str) {
    let script = "const el = document.getElementById(arguments[0]); \
                  el.scrollIntoView({block: 'center'}); \
                  const c = echarts.getInstanceByDom(el); const o = c.getOption(); \
                  const i = o.yAxis[0].data.indexOf(arguments[1]); \
                  const p = c.convertToPixel({seriesIndex: 0}, [o.series[0].data[i] / 2, i]); \
                  const r = el.getBoundingClientRect(); \
                  return i < 0 ? null : [r.left + p[0], r.top + p[1]];";
    let at = client
        .execute(script, vec![json!(id), json!(name)])
        .await
        .unwrap();
    assert!(at.is_array(), "no bar {name} in {id}");
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x: at[0].as_f64().unwrap().round(),
            y: at[1].as_f64().unwrap().round(),
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    client.perform_actions(mouse).await.unwrap();
}

async fn fits(client: &Client) -> (bool, bool) {
    let v = client
        .execute(
            "const d = document.documentElement; \
             return [d.scrollWidth <= window.innerWidth, d.scrollHeight <= window.innerHeight];",
            vec![],
        )
        .await
        .unwrap();
    (v[0] == true, v[1] == true)
}

/// The panels that do not fit the screen on the wall (each inside the viewport, each chart at
/// least 150 px high).
async fn off_screen(client: &Client) -> Vec<String> {
    let script = "return [...document.querySelectorAll('.chart-panel')].filter((p) => { \
                  const r = p.getBoundingClientRect(); const c = p.querySelector('.chart'); \
                  return r.bottom > window.innerHeight || r.right > window.innerWidth \
                    || (c && !c.hidden && c.clientHeight < 150); }).map((p) => p.id);";
    let value = client.execute(script, vec![]).await.unwrap();
    serde_json::from_value(value).unwrap()
}

/// Saves the whole page (the viewport stretched to the page's height for the shot, then set back
/// to `width`×`height`): the office layout scrolls, and a person looks at all of it.
async fn whole_page(client: &Client, name: &str, width: u32, height: u32) {
    let full = client
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .unwrap();
    set_viewport(
        client,
        width,
        u32::try_from(full.as_u64().unwrap()).unwrap(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot_in(client, SHOTS, name).await;
    set_viewport(client, width, height).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn log_in(client: &Client, password: &str) {
    type_into(client, "#login-form input[name=username]", "admin").await;
    type_into(client, "#login-form input[name=password]", password).await;
    find(client, "#login-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_charts_the_city_drills_down_and_runs_on_the_wall() {
    let cluster = Cluster::start_with(
        "page_dashboard",
        &[
            ("JIFEN_ACCESS_TTL_SECS", ACCESS_TTL_SECS.to_string()),
            ("JIFEN_DASHBOARD_CACHE_TTL_SECS", "0".into()),
        ],
    )
    .await;
    let (year, this) = now_month();
    let months: Vec<u32> = (this.saturating_sub(2).max(1)..=this).collect();
    let month = month_str(year, this);
    let city = city(&cluster, year, &months).await;

    // Every approval in the grading projection: F01 is 1 point, so the root's mean for the last
    // month is (5 declarations) / 8 members.
    eventually(90, "the dashboard counts every approval", || {
        let (cluster, root, month) = (&cluster, &city.root, &month);
        async move {
            let token = admin(cluster).await;
            let (_, d) = cluster
                .get(
                    &token,
                    &format!("/api/v1/dashboard/orgs/{root}?month={month}"),
                )
                .await;
            (d["declared"] == 6 && d["approved_points_avg"].as_f64() == Some(0.8)).then_some(())
        }
    })
    .await;
    // Two branches publish (confirm) the year's grading.
    for b in [&city.branches[0], &city.branches[2]] {
        let secretary = cluster.login(&b.members.last().unwrap().1, PASSWORD).await;
        for verb in ["compute", "confirm"] {
            let (status, body) = cluster
                .post(
                    &secretary,
                    &format!("/api/v1/orgs/{}/gradings/{year}:{verb}", b.id),
                    json!({}),
                )
                .await;
            assert_eq!(status, 200, "{verb}: {body}");
        }
    }
    let root_figures = eventually(60, "the root's grades are published", || {
        let (cluster, root, month) = (&cluster, &city.root, &month);
        async move {
            let f = figures(cluster, root, year, month).await;
            f.dashboard["grade_distribution"].is_object().then_some(f)
        }
    })
    .await;
    // The figures are not all zero: the test would prove little otherwise.
    assert!(root_figures.dashboard["participation_rate"].as_f64() > Some(0.0));
    assert!(
        root_figures.branches["items"]
            .as_array()
            .is_some_and(|i| i.len() == 3)
    );

    let browser = Browser::start().await;
    let client = browser.desktop().await;
    client
        .goto(&format!("{}/dashboard/", cluster.base))
        .await
        .unwrap();
    set_viewport(&client, 1366, 768).await;
    log_in(&client, "not-the-password").await;
    wait_text(&client, "#login-error", "用户名或密码错误").await;
    screenshot_in(&client, SHOTS, "01-login-refused").await;
    log_in(&client, ADMIN_PASSWORD).await;
    let mut loads = loaded(&client, &city.root, &month, 1).await;
    wait_text(&client, "#crumbs", "市直机关工委").await;
    // Names, not ids: the caller's name and organization in the header.
    let who = find(&client, "#who").await.text().await.unwrap();
    assert!(who.contains("市直机关工委"), "{who}");
    assert!(
        !who.split(|c: char| !c.is_ascii_hexdigit() && c != '-')
            .any(|w| uuid::Uuid::parse_str(w).is_ok()),
        "no id in the header: {who}"
    );
    assert_charts_show(&client, &root_figures).await;
    screenshot_in(&client, SHOTS, "02-office-1366x768").await;
    whole_page(&client, "02-office-1366-whole", 1366, 768).await;

    // Drill into the committee by its bar; the breadcrumb leads back.
    click_bar(&client, "chart-children", "市财政局机关党委").await;
    loads = loaded(&client, &city.committee, &month, loads + 1).await;
    wait_text(&client, "#crumbs", "市直机关工委 › 市财政局机关党委").await;
    let committee = figures(&cluster, &city.committee, year, &month).await;
    assert_charts_show(&client, &committee).await;
    whole_page(&client, "03-committee-whole", 1366, 768).await;
    find(&client, "#crumbs button").await.click().await.unwrap();
    loads = loaded(&client, &city.root, &month, loads + 1).await;

    // The month picker speaks Chinese; an earlier month shows that month's figures.
    let labels = client
        .execute(
            "return [...document.querySelectorAll('#month option')].map((o) => o.textContent);",
            vec![],
        )
        .await
        .unwrap();
    let labels = strings(&labels);
    assert!(labels.contains(&month_label(year, this)), "{labels:?}");
    assert!(
        labels.iter().all(|l| l.ends_with('月') && l.contains('年')),
        "{labels:?}"
    );
    if let Some(&earlier) = months.first().filter(|&&m| m != this) {
        find(&client, "#month")
            .await
            .select_by_label(&month_label(year, earlier))
            .await
            .unwrap();
        let earlier_month = month_str(year, earlier);
        loads = loaded(&client, &city.root, &earlier_month, loads + 1).await;
        let f = figures(&cluster, &city.root, year, &earlier_month).await;
        assert_charts_show(&client, &f).await;
        find(&client, "#month")
            .await
            .select_by_label(&month_label(year, this))
            .await
            .unwrap();
        loaded(&client, &city.root, &month, loads + 1).await;
    }

    // The wall mode by its toggle, at 1920×1080: the whole board on one screen.
    find(&client, "#wall-toggle").await.click().await.unwrap();
    set_viewport(&client, 1920, 1080).await;
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("#wall")
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_charts_show(&client, &root_figures).await;
    assert_eq!(fits(&client).await, (true, true), "the wall fits 1920×1080");
    assert_eq!(off_screen(&client).await, Vec::<String>::new());
    screenshot_in(&client, SHOTS, "04-wall-1920x1080").await;
    set_viewport(&client, 1366, 768).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(charts_drawn(&client).await, Vec::<String>::new());
    assert!(fits(&client).await.0, "no sideways scrolling at 1366×768");
    screenshot_in(&client, SHOTS, "05-wall-1366x768").await;
    set_viewport(&client, 390, 844).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(charts_drawn(&client).await, Vec::<String>::new());
    assert!(fits(&client).await.0, "no sideways scrolling at 390×844");
    screenshot_in(&client, SHOTS, "06-wall-390x844").await;
    find(&client, "#wall-toggle").await.click().await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(charts_drawn(&client).await, Vec::<String>::new());
    assert!(fits(&client).await.0, "no sideways scrolling at 390×844");
    screenshot_in(&client, SHOTS, "07-office-390x844").await;
    whole_page(&client, "07-office-390-whole", 390, 844).await;
    assert_eq!(page_errors(&client).await, Vec::<String>::new());

    // The wall's address, reloading every 5 s: a new declaration shows without a page load.
    client
        .goto(&format!("{}/dashboard/?wall=1&refresh=5", cluster.base))
        .await
        .unwrap();
    set_viewport(&client, 1920, 1080).await;
    log_in(&client, ADMIN_PASSWORD).await;
    let wall_login = Instant::now();
    let mut loads = loaded(&client, &city.root, &month, 1).await;
    find(&client, "body.wall").await;
    client
        .execute("window.__sameDocument = true;", vec![])
        .await
        .unwrap();
    let declared = root_figures.dashboard["declared"].as_u64().unwrap();
    declare(&cluster, &city.branches[1].members[0], &month).await;
    wait_text(&client, "#declared", &(declared + 1).to_string()).await;
    loads = loaded(&client, &city.root, &month, loads + 1).await;
    let same = client
        .execute("return window.__sameDocument === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, true, "the wall reloads its figures, not the page");
    screenshot_in(&client, SHOTS, "08-wall-refreshed").await;

    // The access token is refreshed before it expires: past its life the wall still loads.
    eventually(ACCESS_TTL_SECS + 10, "the page refreshes its token", || {
        let client = &client;
        async move {
            let n = client
                .execute("return window.__refreshes;", vec![])
                .await
                .unwrap();
            (n.as_u64() >= Some(1)).then_some(())
        }
    })
    .await;
    let expired = wall_login + Duration::from_secs(ACCESS_TTL_SECS + 2);
    tokio::time::sleep(expired.saturating_duration_since(Instant::now())).await;
    let now = loaded(&client, &city.root, &month, loads).await;
    loaded(&client, &city.root, &month, now + 1).await;
    assert!(
        !find(&client, "#login-panel")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    assert_eq!(page_errors(&client).await, Vec::<String>::new());
    client.close().await.unwrap();
}
