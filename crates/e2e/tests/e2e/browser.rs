//! A real browser for the H5 pages' tests: Debian's Chromium driven through its ChromeDriver
//! (both installed by `scripts/dev-services.sh up`), headless, at a phone's viewport
//! (390×844 CSS pixels, touch, a WeChat in-app browser's user agent).
//!
//! [`Browser::start`] starts one ChromeDriver for the test, killed with it. Each
//! [`Browser::phone`] is a new WebDriver session: its own Chromium with its own profile, so two
//! phones share no cookie or storage (two people, two browser contexts). [`Browser::desktop`] is
//! a plain desktop Chromium whose viewport [`set_viewport`] sets exactly (the dashboard's office,
//! wall and phone sizes in one session). [`screenshot`] saves a PNG under `target/screenshots/h5/`
//! for a person to look at, [`screenshot_in`] under another folder of `target/screenshots/`.

use fantoccini::{Client, ClientBuilder, Locator};
use jifen_testkit::process::{ReservedPort, ServiceProcess, reserve_port};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A phone's viewport in CSS pixels (an iPhone 12–14).
pub const PHONE: (u32, u32) = (390, 844);

/// The user agent of WeChat's in-app browser on Android: the pages must work there.
const WECHAT_UA: &str = "Mozilla/5.0 (Linux; Android 12; Pixel 6) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/100.0.4896.127 Mobile Safari/537.36 MicroMessenger/8.0.40";

/// One ChromeDriver, killed when dropped (with the browsers it started).
pub struct Browser {
    url: String,
    _driver: ServiceProcess,
    _port: ReservedPort,
    _dir: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        let port = reserve_port().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let driver = ServiceProcess::spawn(
            std::path::Path::new("/usr/bin/chromedriver"),
            &[&format!("--port={}", port.port())],
            &[],
            dir.path().join("chromedriver.log"),
        )
        .expect(
            "chromedriver (Debian's chromium-driver; `scripts/dev-services.sh up` installs it)",
        );
        let url = format!("http://127.0.0.1:{}", port.port());
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http.get(format!("{url}/status")).send().await;
            if let Ok(answer) = ready
                && let Ok(status) = answer.json::<serde_json::Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready: {}",
                driver.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            url,
            _driver: driver,
            _port: port,
            _dir: dir,
        }
    }

    /// A new phone: its own headless Chromium with a fresh profile, at [`PHONE`]'s viewport.
    pub async fn phone(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--lang=zh-CN",
                    "--no-first-run",
                    "--hide-scrollbars",
                ],
                "mobileEmulation": {
                    "deviceMetrics": {
                        "width": PHONE.0,
                        "height": PHONE.1,
                        "pixelRatio": 2.0,
                        "touch": true,
                        "mobile": true,
                    },
                    "userAgent": WECHAT_UA,
                },
            }),
        );
        self.session(caps).await
    }

    /// A new desktop browser (no phone emulation) with its own profile; its viewport is set with
    /// [`set_viewport`].
    pub async fn desktop(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--lang=zh-CN",
                    "--no-first-run",
                    "--hide-scrollbars",
                    "--window-size=1366,900",
                ],
            }),
        );
        self.session(caps).await
    }

    async fn session(&self, caps: serde_json::Map<String, serde_json::Value>) -> Client {
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

/// Sets the window so that the page's viewport (`innerWidth` × `innerHeight`) is `width` ×
/// `height` CSS pixels: the window's size less what the browser keeps for itself.
pub async fn set_viewport(client: &Client, width: u32, height: u32) {
    let inner = || async {
        let v = client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .unwrap();
        let n = |i: usize| u32::try_from(v[i].as_u64().unwrap()).unwrap();
        (n(0), n(1))
    };
    client.set_window_size(width, height).await.unwrap();
    let (w, h) = inner().await;
    if (w, h) != (width, height) {
        client
            .set_window_size(
                width + (width - w.min(width)),
                height + (height - h.min(height)),
            )
            .await
            .unwrap();
    }
    assert_eq!(inner().await, (width, height), "the viewport");
}

/// Saves the page as it looks now to `target/screenshots/h5/<name>.png`; answers the path.
pub async fn screenshot(phone: &Client, name: &str) -> PathBuf {
    screenshot_in(phone, "h5", name).await
}

/// Saves the page as it looks now to `target/screenshots/<folder>/<name>.png`; answers the path.
pub async fn screenshot_in(client: &Client, folder: &str, name: &str) -> PathBuf {
    let png = client.screenshot().await.unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/screenshots")
        .join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

/// The first element matching `css`, waiting up to 20 s for it to appear.
pub async fn find(phone: &Client, css: &str) -> fantoccini::elements::Element {
    phone
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
}

/// Waits up to 20 s until the element `css` is present and its text contains `text`; answers
/// the element's text.
pub async fn wait_text(phone: &Client, css: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = match phone.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if found.contains(text) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{css} does not show {text:?} (it shows {found:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Taps `css` (a click at the element's centre; the page sees pointer and click events).
pub async fn tap(phone: &Client, css: &str) {
    find(phone, css).await.click().await.unwrap();
}

/// Replaces the value of the text field `css` with `text`.
pub async fn type_into(phone: &Client, css: &str, text: &str) {
    let field = find(phone, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Whether the page's console holds no error: pages must run without script errors (CSP
/// violations included). Reads the errors the page itself recorded in `window.__errors`
/// (the pages push `error` and `securitypolicyviolation` events there).
pub async fn page_errors(phone: &Client) -> Vec<String> {
    let value = phone
        .execute("return (window.__errors || []).slice();", vec![])
        .await
        .unwrap();
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
