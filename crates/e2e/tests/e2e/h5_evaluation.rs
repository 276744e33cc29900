//! The evaluation page 民主评议 (`GET /m/e`) on a phone, from a printed slip to the round's
//! results (issue 15): a secretary prints the slips, the test reads each slip's QR code (the SVG's
//! modules decoded with rqrr, as a camera would), opens the link on a phone, rates every member,
//! confirms and submits; the closed round counts that ballot. Then the refusals a person meets:
//! the same link again (used), a closed round's code, codes typed by hand with mistakes, and too
//! many attempts. Every screen is saved under `target/screenshots/h5/` for a person to look at.

use crate::browser::{Browser, find, page_errors, screenshot, tap, type_into, wait_text};
use crate::cluster::{ADMIN_PASSWORD, Cluster, eventually};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use std::collections::HashSet;

/// One printed slip: the code in text and what its QR code says.
struct Slip {
    code: String,
    qr: String,
}

/// Reads a QR code drawn as our SVG (one `M{x},{y}h1v1h-1z` square per dark module), the way a
/// phone's camera would: a bitmap, 4 pixels a module, decoded by rqrr.
fn read_qr(svg: &str) -> String {
    let size: usize = svg
        .split("viewBox=\"0 0 ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    let path = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let dark: HashSet<(usize, usize)> = path
        .split('M')
        .filter(|m| !m.is_empty())
        .map(|m| {
            let (x, rest) = m.split_once(',').unwrap();
            let y = rest.split('h').next().unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    let scale = 4;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(size * scale, size * scale, |x, y| {
            if dark.contains(&(x / scale, y / scale)) {
                0
            } else {
                255
            }
        });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code per slip");
    grids[0].decode().unwrap().1
}

/// The slips of a printable sheet, in order.
fn slips(html: &str) -> Vec<Slip> {
    html.split("<div class=\"slip\">")
        .skip(1)
        .map(|slip| {
            let svg = slip.split("</svg>").next().unwrap();
            let code = slip
                .split("<div class=\"code\">")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_owned();
            Slip {
                code,
                qr: read_qr(svg),
            }
        })
        .collect()
}

/// A branch with a secretary who can log in and three more members; answers the branch, the
/// secretary's token and the four members (id, name).
async fn branch(cluster: &Cluster) -> (String, String, Vec<(String, String)>) {
    let admin = cluster.login("admin", ADMIN_PASSWORD).await;
    let (_, me) = cluster.get(&admin, "/api/v1/me").await;
    let root = me["roles"][0]["org_id"].as_str().unwrap().to_owned();
    let (status, branch) = cluster
        .post(
            &admin,
            "/api/v1/orgs",
            json!({"parent_id": root, "name": "机关第一党支部", "kind": "branch", "unit_type": "government_organ"}),
        )
        .await;
    assert_eq!(status, 201, "{branch}");
    let branch = branch["id"].as_str().unwrap().to_owned();
    let mut members = Vec::new();
    for (i, name) in ["王书记", "李红梅", "张建国", "欧阳晓东"]
        .iter()
        .enumerate()
    {
        let mut body =
            json!({"org_id": branch, "name": name, "category": "full", "joined_on": "2010-07-01"});
        if i == 0 {
            body["username"] = json!("h5-secretary");
            body["password"] = json!("h5-secretary-password");
        }
        let (status, member) = cluster.post(&admin, "/api/v1/members", body).await;
        assert_eq!(status, 201, "{member}");
        members.push((
            member["id"].as_str().unwrap().to_owned(),
            (*name).to_owned(),
        ));
    }
    let (status, body) = cluster
        .post(
            &admin,
            &format!("/api/v1/orgs/{branch}/roles"),
            json!({"member_id": members[0].0, "role": "secretary"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    for (id, _) in &members {
        eventually(60, "the evaluations replica has the member", || async {
            crate::evaluation::evaluations_knows(cluster, id)
                .await
                .then_some(())
        })
        .await;
    }
    let secretary = cluster.login("h5-secretary", "h5-secretary-password").await;
    (branch, secretary, members)
}

async fn open_round(cluster: &Cluster, secretary: &str, branch: &str, quarter: &str) -> String {
    let (status, round) = cluster
        .post(
            secretary,
            &format!("/api/v1/orgs/{branch}/evaluation-rounds"),
            json!({ "quarter": quarter }),
        )
        .await;
    assert_eq!(status, 201, "{round}");
    round["id"].as_str().unwrap().to_owned()
}

/// The printable sheet of `count` masses codes, as the secretary's browser would ask for it.
async fn print_slips(cluster: &Cluster, secretary: &str, round: &str, count: u32) -> String {
    let res = cluster
        .http
        .post(format!(
            "{}/api/v1/evaluation-rounds/{round}/invitations",
            cluster.base
        ))
        .bearer_auth(secretary)
        .header("accept", "text/html")
        .json(&json!({"count": count, "evaluator_kind": "masses"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.text().await.unwrap()
}

async fn close_round(cluster: &Cluster, secretary: &str, round: &str) -> Value {
    let (status, closed) = cluster
        .post(
            secretary,
            &format!("/api/v1/evaluation-rounds/{round}:close"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{closed}");
    closed
}

/// Taps `css` after scrolling it to the middle of the screen, as a person scrolls before
/// tapping (the bottom bar with the progress would otherwise cover the lowest row).
async fn tap_in_view(phone: &Client, css: &str) {
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

/// Makes the page's next requests to `…/ballots` fail as `plan` says, one step each:
/// `network` (never sent), `server` (a 503 that never reached the gateway), `expired` (a 401
/// `invalid_token`, as after the evaluator token's 30 minutes) or `lost` (sent and counted, the
/// answer lost on the way back); later requests go through.
async fn fail_next_ballots(phone: &Client, plan: &[&str]) {
    phone
        .execute(
            "const plan = arguments[0]; window.__failPlan = plan; \
             window.__realFetch = window.__realFetch || window.fetch; \
             window.fetch = function (url, options) { \
               if (String(url).indexOf('/ballots') < 0 || plan.length === 0) \
                 return window.__realFetch(url, options); \
               const step = plan.shift(); \
               if (step === 'network') return Promise.reject(new TypeError('Failed to fetch')); \
               if (step === 'server') return Promise.resolve(new Response( \
                 '{\"code\":\"unavailable\",\"status\":503}', \
                 {status: 503, headers: {'content-type': 'application/problem+json'}})); \
               if (step === 'expired') return Promise.resolve(new Response( \
                 '{\"code\":\"invalid_token\",\"status\":401}', \
                 {status: 401, headers: {'content-type': 'application/problem+json'}})); \
               return window.__realFetch(url, options).then(() => { \
                 throw new TypeError('Failed to fetch'); }); \
             };",
            vec![json!(plan)],
        )
        .await
        .unwrap();
}

/// Whether the element `css` is on the page and displayed.
async fn shown(phone: &Client, css: &str) -> bool {
    match phone.find(Locator::Css(css)).await {
        Ok(e) => e.is_displayed().await.unwrap_or(false),
        Err(_) => false,
    }
}

/// What the page left in the browser: cookies, localStorage and sessionStorage entries.
async fn leftovers(phone: &Client) -> Value {
    phone
        .execute(
            "return [document.cookie, localStorage.length, sessionStorage.length];",
            vec![],
        )
        .await
        .unwrap()
}

/// The whole path of a slip: printed by the secretary, scanned, rated on a phone, counted.
#[tokio::test(flavor = "multi_thread")]
async fn a_slip_opens_the_page_on_a_phone_and_its_ballot_is_counted_once() {
    let cluster = Cluster::start("h5_eval").await;
    let browser = Browser::start().await;
    let (branch, secretary, members) = branch(&cluster).await;
    let round = open_round(&cluster, &secretary, &branch, "2026-Q4").await;

    // The secretary prints four slips; each QR code is the page's link with its code.
    let html = print_slips(&cluster, &secretary, &round, 4).await;
    let slips = slips(&html);
    assert_eq!(slips.len(), 4);
    for slip in &slips {
        assert_eq!(slip.code.len(), 14, "ABCD-EFGH-JKMN: {}", slip.code);
        assert_eq!(slip.qr, format!("{}/m/e#{}", cluster.public_url, slip.code));
    }
    assert!(cluster.public_url.starts_with("http://127.0.0.1:"));
    assert!(html.contains("群众评议邀请码 · 2026年第四季度"), "{html}");
    assert!(
        html.contains(&format!("{}/m/e</span>", cluster.public_url)),
        "the slip prints the page's address for typing by hand"
    );

    let phone = browser.phone().await;
    // The sheet as printed (for a person to look at).
    let sheet = format!(
        "data:text/html;charset=utf-8;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &html)
    );
    phone.goto(&sheet).await.unwrap();
    find(&phone, ".slip .code").await;
    screenshot(&phone, "evaluation-0-slips").await;

    // Scanned: the page opens on the roster; the code has left the address bar.
    phone.goto(&slips[0].qr).await.unwrap();
    wait_text(&phone, "#progress", "已评 0/4").await;
    let title = wait_text(&phone, "#title", "2026年第四季度").await;
    assert!(title.contains("群众评议"), "{title}");
    let url = phone.current_url().await.unwrap();
    assert_eq!(url.fragment(), None, "{url}");
    assert!(!url.as_str().contains(&slips[0].code));
    // The roster in the service's order: the members, each once, numbered.
    let mut shown_ids = Vec::new();
    for li in phone.find_all(Locator::Css("#roster li")).await.unwrap() {
        shown_ids.push(li.attr("data-member").await.unwrap().unwrap());
    }
    let members: Vec<(String, String)> = shown_ids
        .iter()
        .map(|id| members.iter().find(|(m, _)| m == id).cloned().unwrap())
        .collect();
    assert_eq!(members.len(), 4);
    for (i, (id, name)) in members.iter().enumerate() {
        let heading = find(&phone, &format!("#roster li[data-member='{id}'] h3")).await;
        assert_eq!(heading.text().await.unwrap(), format!("{}.{name}", i + 1));
    }
    wait_text(&phone, "#view-ballot", "评议不记名").await;
    assert!(!find(&phone, "#review").await.is_enabled().await.unwrap());
    screenshot(&phone, "evaluation-1-roster").await;

    // 好, 较好, 差, and 不了解 for the last: a ballot rates a subset (RULES.md §4).
    let choices = ["excellent", "good", "poor", "skip"];
    for ((id, _), value) in members.iter().zip(choices) {
        let css = format!("#roster li[data-member='{id}'] button[data-value='{value}']");
        tap_in_view(&phone, &css).await;
        assert_eq!(
            find(&phone, &css).await.attr("aria-pressed").await.unwrap(),
            Some("true".to_owned())
        );
    }
    // A change of mind before submitting: 较好 → 差 → 较好 for the second member.
    let second = &members[1].0;
    tap_in_view(
        &phone,
        &format!("#roster li[data-member='{second}'] button[data-value='poor']"),
    )
    .await;
    tap_in_view(
        &phone,
        &format!("#roster li[data-member='{second}'] button[data-value='good']"),
    )
    .await;
    let pressed = phone
        .find_all(Locator::Css("#roster button[aria-pressed='true']"))
        .await
        .unwrap();
    assert_eq!(pressed.len(), 4, "one choice per member");
    wait_text(&phone, "#progress", "已评 4/4").await;
    screenshot(&phone, "evaluation-2-rated").await;
    // Every rating button is a large touch target.
    let size = phone
        .execute(
            "const r = document.querySelector('#roster .rating').getBoundingClientRect(); \
             return [r.width, r.height, document.documentElement.scrollWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert!(size[0].as_f64().unwrap() >= 44.0, "{size}");
    assert!(size[1].as_f64().unwrap() >= 44.0, "{size}");
    assert!(
        size[2].as_f64().unwrap() <= 390.0,
        "no sideways scrolling: {size}"
    );
    // The narrowest phones (320 CSS pixels): every button still fits and stays large.
    let narrow = phone
        .execute(
            "document.documentElement.style.width = '320px'; \
             const rs = Array.prototype.slice.call(document.querySelectorAll('#roster button')); \
             return rs.map((b) => { const r = b.getBoundingClientRect(); \
               return [r.right <= 320 - 12, r.width >= 44, r.height >= 44]; });",
            vec![],
        )
        .await
        .unwrap();
    for fits in narrow.as_array().unwrap() {
        assert_eq!(fits, &json!([true, true, true]), "at 320 px: {narrow}");
    }
    screenshot(&phone, "evaluation-2-rated-320px").await;
    phone
        .execute("document.documentElement.style.width = '';", vec![])
        .await
        .unwrap();

    tap(&phone, "#review").await;
    let summary = wait_text(&phone, "#summary", "欧阳晓东").await;
    let expected: Vec<String> = members
        .iter()
        .zip(["好", "较好", "差", "不评价"])
        .flat_map(|((_, name), label)| [name.clone(), label.to_owned()])
        .collect();
    assert_eq!(summary.lines().collect::<Vec<_>>(), expected, "{summary}");
    screenshot(&phone, "evaluation-3-confirm").await;
    // The network fails, then the server: each is said in words, and retrying sends the ballot
    // (after the token has expired meanwhile: the page redeems the code again by itself).
    fail_next_ballots(&phone, &["network", "server", "expired"]).await;
    tap(&phone, "#submit").await;
    wait_text(&phone, "#view-error", "网络连接失败").await;
    wait_text(&phone, "#error-text", "不会重复计票").await;
    screenshot(&phone, "evaluation-3a-network-error").await;
    tap(&phone, "#error-retry").await;
    wait_text(&phone, "#view-error", "服务器暂时无法处理").await;
    screenshot(&phone, "evaluation-3b-server-error").await;
    tap(&phone, "#error-retry").await;
    wait_text(&phone, "#view-done", "提交成功").await;
    let left = phone
        .execute("return window.__failPlan.length;", vec![])
        .await
        .unwrap();
    assert_eq!(left, json!(0), "the expired token was met and renewed");
    screenshot(&phone, "evaluation-4-thanks").await;
    // Going back does not lead to the ballot again.
    phone.back().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(shown(&phone, "#view-done").await);
    assert!(!shown(&phone, "#submit").await);
    assert!(!shown(&phone, "#roster button").await);
    assert_eq!(leftovers(&phone).await, json!(["", 0, 0]));
    assert_eq!(page_errors(&phone).await, Vec::<String>::new());
    phone.close().await.unwrap();

    // The same link on another phone: used.
    let other = browser.phone().await;
    other.goto(&slips[0].qr).await.unwrap();
    wait_text(&other, "#view-error", "已使用").await;
    assert!(!shown(&other, "#roster button").await);
    screenshot(&other, "evaluation-5-used").await;

    // Typed by hand: too short, a look-alike letter, an unknown code — each said in words;
    // then a real code in lower case without dashes opens the ballot.
    other.goto(&format!("{}/m/e", cluster.base)).await.unwrap();
    wait_text(&other, "#view-code", "输入邀请码").await;
    screenshot(&other, "evaluation-6-code-entry").await;
    type_into(&other, "#code-input", "abcd efgh jkm").await;
    tap(&other, "#code-submit").await;
    wait_text(&other, "#code-error", "12 位").await;
    type_into(&other, "#code-input", "ABCD-EFGH-JKMO").await;
    tap(&other, "#code-submit").await;
    wait_text(&other, "#code-error", "没有 0、1、I、L、O、U").await;
    let unknown = if slips.iter().any(|s| s.code == "2345-6789-ABCD") {
        "2345-6789-ABCE"
    } else {
        "2345-6789-ABCD"
    };
    type_into(
        &other,
        "#code-input",
        &unknown.to_lowercase().replace('-', " "),
    )
    .await;
    tap(&other, "#code-submit").await;
    wait_text(&other, "#code-error", "没有这个邀请码").await;
    assert_eq!(
        find(&other, "#code-input")
            .await
            .prop("value")
            .await
            .unwrap(),
        Some(unknown.to_owned()),
        "the field shows the code in its printed form"
    );
    screenshot(&other, "evaluation-7-code-unknown").await;
    type_into(
        &other,
        "#code-input",
        &slips[1].code.to_lowercase().replace('-', ""),
    )
    .await;
    tap(&other, "#code-submit").await;
    wait_text(&other, "#progress", "已评 0/4").await;
    // 一般 for everyone; the answer is lost on the way back, and the retry learns that the code
    // has voted: the page says the ballot was recorded, not that something failed.
    for (id, _) in &members {
        tap_in_view(
            &other,
            &format!("#roster li[data-member='{id}'] button[data-value='fair']"),
        )
        .await;
    }
    tap(&other, "#review").await;
    fail_next_ballots(&other, &["lost"]).await;
    tap(&other, "#submit").await;
    wait_text(&other, "#view-error", "网络连接失败").await;
    tap(&other, "#error-retry").await;
    wait_text(&other, "#view-error", "此邀请码已投票").await;
    wait_text(&other, "#error-text", "那次提交已经记录").await;
    screenshot(&other, "evaluation-8-answer-lost-then-used").await;
    assert_eq!(leftovers(&other).await, json!(["", 0, 0]));
    assert_eq!(page_errors(&other).await, Vec::<String>::new());
    other.close().await.unwrap();

    // A third phone opens a slip while the round is open; the secretary closes it meanwhile.
    let third = browser.phone().await;
    third.goto(&slips[2].qr).await.unwrap();
    wait_text(&third, "#progress", "已评 0/4").await;

    // The round's results count the two ballots (RULES.md §4: 好 100, 较好 80, 一般 60, 差 0,
    // the mean over the ballots that rated the member).
    let closed = close_round(&cluster, &secretary, &round).await;
    assert_eq!(closed["ballots"], 2, "{closed}");
    assert_eq!(closed["invited"], 4, "{closed}");
    let result = |id: &str| -> Value {
        closed["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["member_id"] == id)
            .cloned()
            .unwrap()
    };
    let expected = [
        (Some(80.0), 2, 0.0), // 好 + 一般
        (Some(70.0), 2, 0.0), // 较好 + 一般
        (Some(30.0), 2, 0.5), // 差 + 一般
        (Some(60.0), 1, 0.0), // 不了解 + 一般
    ];
    for ((id, name), (score, ballots, poor_share)) in members.iter().zip(expected) {
        let r = result(id);
        assert_eq!(r["score"].as_f64(), score, "{name}: {r}");
        assert_eq!(r["ballots"], ballots, "{name}: {r}");
        assert_eq!(r["poor_share"].as_f64(), Some(poor_share), "{name}: {r}");
        assert_eq!(r["valid"], false, "fewer ballots than min_ballots: {r}");
    }

    // Submitting on the third phone now is refused in words, and so is a closed round's link.
    for (id, _) in &members {
        tap_in_view(
            &third,
            &format!("#roster li[data-member='{id}'] button[data-value='good']"),
        )
        .await;
    }
    tap(&third, "#review").await;
    tap(&third, "#submit").await;
    wait_text(&third, "#view-error", "评议已结束").await;
    wait_text(&third, "#error-text", "没有被记录").await;
    screenshot(&third, "evaluation-9-closed-while-rating").await;
    third.goto(&slips[3].qr).await.unwrap();
    wait_text(&third, "#view-error", "评议已结束").await;
    wait_text(&third, "#error-text", "不能再投票").await;
    screenshot(&third, "evaluation-10-closed").await;

    // The JSON answer carries each code's link too, and its QR code says the same.
    let q3 = open_round(&cluster, &secretary, &branch, "2026-Q3").await;
    let (status, issued) = cluster
        .post(
            &secretary,
            &format!("/api/v1/evaluation-rounds/{q3}/invitations"),
            json!({"count": 1, "evaluator_kind": "masses"}),
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    let invitation = &issued["invitations"][0];
    let link = format!(
        "{}/m/e#{}",
        cluster.public_url,
        issued["codes"][0].as_str().unwrap()
    );
    assert_eq!(invitation["url"], link.as_str());
    assert_eq!(read_qr(invitation["qr_svg"].as_str().unwrap()), link);

    assert_eq!(leftovers(&third).await, json!(["", 0, 0]));
    assert_eq!(page_errors(&third).await, Vec::<String>::new());
    third.close().await.unwrap();
}

/// Too many attempts from one address: the page says how long to wait.
#[tokio::test(flavor = "multi_thread")]
async fn too_many_attempts_are_refused_in_words_with_the_wait() {
    let cluster = Cluster::start_with(
        "h5_eval_limit",
        &[("JIFEN_CODE_FAILURES_PER_ADDRESS", "2".to_owned())],
    )
    .await;
    let browser = Browser::start().await;
    let phone = browser.phone().await;
    phone.goto(&format!("{}/m/e", cluster.base)).await.unwrap();
    // The second failure locks the address for 1 s, each further one for twice as long
    // (docs/rate-limits.md): within a few guesses the lock outlasts the typing.
    let mut said = None;
    for _ in 0..8 {
        type_into(&phone, "#code-input", "2345-6789-ABCD").await;
        tap(&phone, "#code-submit").await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let refused = shown_text(&phone, "#view-error").await;
            if refused.contains("尝试次数过多") {
                said = Some(refused);
                break;
            }
            if shown_text(&phone, "#code-error")
                .await
                .contains("没有这个邀请码")
            {
                phone
                    .execute(
                        "document.getElementById('code-error').textContent = '';",
                        vec![],
                    )
                    .await
                    .unwrap();
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "neither refused nor locked"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if said.is_some() {
            break;
        }
    }
    let said = said.expect("locked out within eight wrong codes");
    let seconds: u32 = said
        .split("请在 ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {said:?}"));
    assert!((1..=60).contains(&seconds), "{said}");
    let retry = find(&phone, "#error-retry").await;
    assert!(!retry.is_enabled().await.unwrap(), "retry waits");
    assert!(retry.text().await.unwrap().contains("请等待"));
    screenshot(&phone, "evaluation-11-rate-limited").await;
    assert_eq!(leftovers(&phone).await, json!(["", 0, 0]));
    assert_eq!(page_errors(&phone).await, Vec::<String>::new());
    phone.close().await.unwrap();
}

/// The text `css` shows now ("" when absent or hidden).
async fn shown_text(phone: &fantoccini::Client, css: &str) -> String {
    match phone.find(fantoccini::Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// A member code (党员评议) asks the member to log in on the page first: a wrong password is said
/// in words, the right one opens the roster, the ballot counts once, and nothing stays behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_code_asks_the_member_to_log_in_first() {
    let cluster = Cluster::start("h5_eval_member").await;
    let browser = Browser::start().await;
    let (branch, secretary, members) = branch(&cluster).await;
    let round = open_round(&cluster, &secretary, &branch, "2026-Q4").await;
    let (status, issued) = cluster
        .post(
            &secretary,
            &format!("/api/v1/evaluation-rounds/{round}/invitations"),
            json!({"count": 1, "evaluator_kind": "member"}),
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    let link = issued["invitations"][0]["url"].as_str().unwrap().to_owned();

    let phone = browser.phone().await;
    phone.goto(&link).await.unwrap();
    wait_text(&phone, "#view-login", "请先登录").await;
    screenshot(&phone, "evaluation-12-member-login").await;
    type_into(&phone, "#login-username", "h5-secretary").await;
    type_into(&phone, "#login-password", "not-the-password").await;
    tap(&phone, "#login-submit").await;
    wait_text(&phone, "#login-error", "用户名或密码错误").await;
    type_into(&phone, "#login-password", "h5-secretary-password").await;
    tap(&phone, "#login-submit").await;

    // The roster: everyone the service lists for this member evaluator, rated 较好.
    find(&phone, "#roster li[data-member]").await;
    let rows = phone
        .find_all(Locator::Css("#roster li[data-member]"))
        .await
        .unwrap();
    let mut rated = Vec::new();
    for row in rows {
        rated.push(row.attr("data-member").await.unwrap().unwrap());
    }
    assert!(!rated.is_empty());
    assert!(
        rated.iter().all(|id| members.iter().any(|(m, _)| m == id)),
        "{rated:?}"
    );
    for id in &rated {
        tap_in_view(
            &phone,
            &format!("#roster li[data-member='{id}'] button[data-value='good']"),
        )
        .await;
    }
    screenshot(&phone, "evaluation-13-member-rated").await;
    tap(&phone, "#review").await;
    tap(&phone, "#submit").await;
    wait_text(&phone, "#view-done", "提交成功").await;
    assert_eq!(leftovers(&phone).await, json!(["", 0, 0]));
    assert_eq!(page_errors(&phone).await, Vec::<String>::new());
    phone.close().await.unwrap();

    // One ballot, every rated member at 较好 (80 points, RULES.md §4).
    let closed = close_round(&cluster, &secretary, &round).await;
    assert_eq!(closed["ballots"], 1, "{closed}");
    for id in &rated {
        let result = closed["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["member_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no result for {id}: {closed}"));
        assert_eq!(result["ballots"], 1, "{result}");
        assert_eq!(result["score"], 80.0, "{result}");
    }
}
