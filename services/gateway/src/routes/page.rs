//! The municipal dashboard web page 党建看板 at `GET /dashboard/`: one static HTML page with its
//! script and style sheet, embedded in the binary (`include_str!`), in Simplified Chinese, with no
//! build step and nothing loaded from elsewhere. The page logs in (`POST /api/v1/auth/login`),
//! starts at the caller's organizations (`GET /api/v1/me`), walks the tree
//! (`GET /api/v1/orgs/{id}`, `…/children`), and shows the month's dashboard, the children and the
//! year's ranking; it downloads the ledger export with the bearer token.
//!
//! Every answer carries a strict content security policy (self only: no inline script or style,
//! no other origin, no framing), `x-content-type-options: nosniff` and `cache-control: no-cache`.
//! The page holds its tokens in memory only and refreshes the access token before it expires.
//!
//! The charts are drawn by Apache ECharts, vendored (`page/vendor/echarts/`, its VENDOR.md records
//! the package, version and checksums; a test here checks the file against them) and served at
//! `GET /dashboard/vendor/echarts.min.js` under the same policy: the library needs neither
//! `'unsafe-eval'` nor inline style. The page asks for it with `?v=<version>`, so it may be
//! cached for a year (`immutable`); a new version is a new address.
//!
//! The H5 pages for people with a phone live beside it under `/m/` (API.md, "Web pages for people
//! with a phone"): `GET /m/e`, the evaluation page a slip's QR code opens (群众评议), and `GET /m/`,
//! the member's and the secretary's page (declaration, ledger, grade, review). Same rules: one
//! static HTML file with its own script and style sheet each, embedded, the same policy, and
//! `referrer-policy: no-referrer` so that no address of theirs leaves in a Referer header.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const HTML: &str = include_str!("../page/dashboard.html");
const SCRIPT: &str = include_str!("../page/dashboard.js");
const STYLE: &str = include_str!("../page/dashboard.css");
/// Apache ECharts' minified browser build (Apache-2.0), as the npm tarball ships it.
const ECHARTS: &str = include_str!("../page/vendor/echarts/echarts.min.js");
const EVALUATION_HTML: &str = include_str!("../page/m/e.html");
const EVALUATION_SCRIPT: &str = include_str!("../page/m/e.js");
const EVALUATION_STYLE: &str = include_str!("../page/m/e.css");
const APP_HTML: &str = include_str!("../page/m/index.html");
const APP_SCRIPT: &str = include_str!("../page/m/app.js");
const APP_STYLE: &str = include_str!("../page/m/app.css");

/// The policy of every file of the page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

fn file(body: &'static str, content_type: &'static str) -> Response {
    file_cached(body, content_type, "no-cache")
}

fn file_cached(
    body: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /dashboard/`: the page.
pub async fn page() -> Response {
    file(HTML, "text/html; charset=utf-8")
}

/// `GET /dashboard`: to the page (its relative paths need the trailing slash).
pub async fn redirect() -> axum::response::Redirect {
    axum::response::Redirect::permanent("/dashboard/")
}

/// `GET /dashboard/dashboard.js`.
pub async fn script() -> Response {
    file(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /dashboard/dashboard.css`.
pub async fn style() -> Response {
    file(STYLE, "text/css; charset=utf-8")
}

/// `GET /dashboard/vendor/echarts.min.js`: the vendored chart library (the page's address for it
/// carries the version, so it is cached for a year).
pub async fn echarts() -> Response {
    file_cached(
        ECHARTS,
        "text/javascript; charset=utf-8",
        "public, max-age=31536000, immutable",
    )
}

/// `GET /m/e`: the evaluation page (the invitation code arrives in the URL fragment).
pub async fn evaluation_page() -> Response {
    file(EVALUATION_HTML, "text/html; charset=utf-8")
}

/// `GET /m/e.js`.
pub async fn evaluation_script() -> Response {
    file(EVALUATION_SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /m/e.css`.
pub async fn evaluation_style() -> Response {
    file(EVALUATION_STYLE, "text/css; charset=utf-8")
}

/// `GET /m/`: the member's and the secretary's page.
pub async fn app_page() -> Response {
    file(APP_HTML, "text/html; charset=utf-8")
}

/// `GET /m`: to the page (its relative paths need the trailing slash).
pub async fn app_redirect() -> axum::response::Redirect {
    axum::response::Redirect::permanent("/m/")
}

/// `GET /m/app.js`.
pub async fn app_script() -> Response {
    file(APP_SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /m/app.css`.
pub async fn app_style() -> Response {
    file(APP_STYLE, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;
    use sha2::{Digest as _, Sha256};

    const VENDOR_MD: &str = include_str!("../page/vendor/echarts/VENDOR.md");

    /// The vendored ECharts is byte for byte the file whose SHA-256 VENDOR.md records.
    #[test]
    fn the_vendored_echarts_is_the_recorded_one() {
        let recorded = VENDOR_MD
            .lines()
            .find_map(|line| line.strip_prefix("sha256: "))
            .expect("VENDOR.md has a `sha256: <hex>` line");
        assert_eq!(
            hex::encode(Sha256::digest(ECHARTS.as_bytes())),
            recorded.trim()
        );
    }

    /// The page asks for the version that is vendored (the address is what the year-long cache
    /// keys on), and VENDOR.md names it.
    #[test]
    fn the_page_asks_for_the_vendored_version() {
        let version = ECHARTS
            .rsplit_once(".version=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(v, _)| v)
            .expect("echarts.min.js sets its version");
        assert!(
            HTML.contains(&format!("/dashboard/vendor/echarts.min.js?v={version}\"")),
            "dashboard.html must load echarts.min.js?v={version}"
        );
        assert!(VENDOR_MD.contains(&format!("| version | {version} ")));
    }
}
