//! The web pages in a real browser at a phone's viewport (browser.rs): what a person sees and
//! taps, through the cluster `make run` starts.

use crate::browser::{Browser, find, page_errors, screenshot, tap, type_into, wait_text};
use crate::cluster::{ADMIN_PASSWORD, Cluster};

/// The dashboard (党建看板) on a phone: a wrong password is refused in words, the right one shows
/// the root committee's figures; the page runs without a script error or a policy violation.
#[tokio::test]
async fn the_dashboard_logs_in_on_a_phone() {
    let cluster = Cluster::start("page_dashboard").await;
    let browser = Browser::start().await;
    let phone = browser.phone().await;
    phone
        .goto(&format!("{}/dashboard/", cluster.base))
        .await
        .unwrap();
    type_into(&phone, "#login-form input[name=username]", "admin").await;
    type_into(
        &phone,
        "#login-form input[name=password]",
        "not-the-password",
    )
    .await;
    tap(&phone, "#login-form button[type=submit]").await;
    wait_text(&phone, "#login-error", "登录失败").await;
    screenshot(&phone, "dashboard-login-refused").await;

    type_into(&phone, "#login-form input[name=password]", ADMIN_PASSWORD).await;
    tap(&phone, "#login-form button[type=submit]").await;
    wait_text(&phone, "#org-name", "市直机关工委").await;
    let members = find(&phone, "#members").await;
    assert!(members.is_displayed().await.unwrap());
    screenshot(&phone, "dashboard-board").await;
    assert_eq!(page_errors(&phone).await, Vec::<String>::new());
    phone.close().await.unwrap();
}
