//! Evidence files through the gateway: multipart upload with its own size limit, reading back
//! within scope, and their use on declaration lines.
#![allow(clippy::unwrap_used)]

use crate::helpers::{MONTH, assert_keys, assert_problem, spawn_app, spawn_app_with};
use crate::support::{branch, multipart, png, png_of, png_sized, upload, upload_raw};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_file_backs_a_line_and_is_read_only_within_scope() {
    let app = spawn_app().await;
    let a = branch(&app, "ea", 1).await;
    let other = branch(&app, "eb", 0).await;
    let m = &a.members[0];

    let file = png(42);
    let (status, evidence) = upload(&app, &m.token, &file, "image/png").await;
    assert_eq!(status, StatusCode::CREATED, "{evidence}");
    assert_keys(&evidence, &["reference", "content_type", "size"], &[]);
    let reference = evidence["reference"].as_str().unwrap().to_owned();
    let hex = reference.strip_prefix("sha256:").unwrap();
    assert_eq!(hex.len(), 64);
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{reference}"
    );
    assert_eq!(evidence["content_type"], "image/png");
    assert_eq!(evidence["size"], file.len());
    // The same content again: the same reference.
    let (status, again) = upload(&app, &m.token, &file, "image/png").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["reference"], reference.as_str());

    // It makes an evidence-requiring line valid.
    let (status, draft) = app
        .put(
            &format!("/api/v1/members/{}/declarations/{MONTH}", m.id),
            Some(&m.token),
            &json!({"lines": [{"item_code": "P02", "quantity": 1, "note": "学习笔记", "evidence": [reference]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    assert_eq!(draft["lines"][0]["evidence"], json!([reference]));
    assert_eq!(draft["claimed_total"], 1);

    // The uploader and the branch's secretary read it; another branch's secretary does not.
    let path = format!("/api/v1/evidence/{reference}");
    for token in [&m.token, &a.secretary.token, &app.admin_token] {
        let r = app
            .raw(reqwest::Method::GET, &path, Some(token), None, &[])
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(etag, format!("\"{reference}\""));
        assert_eq!(r.bytes().await.unwrap().as_ref(), file.as_slice());
        let r = app
            .raw(
                reqwest::Method::GET,
                &path,
                Some(token),
                None,
                &[("if-none-match", &etag)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    }
    let (status, body) = app.get(&path, Some(&other.secretary.token)).await;
    assert_problem(status, &body, 404, "not_found", None);
    let unknown = format!("/api/v1/evidence/sha256:{}", "0".repeat(64));
    let (status, body) = app.get(&unknown, Some(&m.token)).await;
    assert_problem(status, &body, 404, "not_found", None);
    let (status, body) = app.get("/api/v1/evidence/readme.txt", Some(&m.token)).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("reference"));
    let (status, body) = app.get(&path, None).await;
    assert_problem(status, &body, 401, "unauthenticated", None);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_is_not_an_accepted_file_is_refused() {
    let app = spawn_app().await;
    let b = branch(&app, "ef", 0).await;
    let t = &b.secretary.token;

    // Text pretending to be a PNG.
    let (status, body) = upload(&app, t, b"just some text, not an image", "image/png").await;
    assert_problem(status, &body, 400, "invalid_argument", Some("file"));
    // A type that is not accepted at all.
    let (status, body) = upload(&app, t, b"hello", "text/plain").await;
    assert_problem(status, &body, 400, "invalid_argument", Some("file"));
    // An empty file, no `file` part, not multipart.
    let (status, body) = upload(&app, t, b"", "image/png").await;
    assert_problem(status, &body, 400, "invalid_argument", Some("file"));
    let boundary = "b0undary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{boundary}--\r\n"
    );
    let (status, body) = upload_raw(&app, t, boundary, body.into_bytes(), &[]).await;
    assert_problem(status, &body, 400, "invalid_argument", Some("file"));
    let (status, body) = app
        .post("/api/v1/evidence", Some(t), &json!({"file": "x"}))
        .await;
    assert_problem(
        status,
        &body,
        415,
        "unsupported_media_type",
        Some("content-type"),
    );
    // A PDF is accepted.
    let (status, pdf) = upload(
        &app,
        t,
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n",
        "application/pdf",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{pdf}");
    assert_eq!(pdf["content_type"], "application/pdf");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_beyond_the_json_body_limit_are_taken_up_to_the_evidence_limit() {
    let app = spawn_app().await;
    let b = branch(&app, "eg", 0).await;
    let t = &b.secretary.token;

    // 1.5 MiB: more than the global 1 MiB body limit, well under the 10 MiB evidence limit —
    // also through the idempotency layer, which buffers the body.
    let big = png_of(60_000, 9);
    let mut data = big.clone();
    data.resize(1536 * 1024, 0);
    let (boundary, body) = multipart(&data, "image/png", "scan.png");
    let (status, evidence) = upload_raw(&app, t, &boundary, body.clone(), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{evidence}");
    assert_eq!(evidence["size"], data.len());
    let key = [("idempotency-key", "upload-1")];
    let (status, first) = upload_raw(&app, t, &boundary, body.clone(), &key).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, replay) = upload_raw(&app, t, &boundary, body, &key).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replay, first);
    // The global limit still holds for JSON.
    let huge =
        json!({"lines": [{"item_code": "F04", "quantity": 1, "note": "x".repeat(1100 * 1024)}]});
    let (status, body) = app
        .put(
            &format!("/api/v1/members/{}/declarations/{MONTH}", b.secretary.id),
            Some(t),
            &huge,
        )
        .await;
    assert_problem(status, &body, 413, "payload_too_large", Some("body"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_over_the_configured_limit_is_413_naming_the_file() {
    let app = spawn_app_with(|s| s.evidence_max_bytes = 4096).await;
    let b = branch(&app, "eh", 0).await;
    let t = &b.secretary.token;
    let (status, ok) = upload(&app, t, &png_sized(4096), "image/png").await;
    assert_eq!(status, StatusCode::CREATED, "{ok}");
    let (status, body) = upload(&app, t, &png_sized(4097), "image/png").await;
    assert_problem(status, &body, 413, "payload_too_large", Some("file"));
    // Far over: the route's body limit stops it, still naming the file.
    let (status, body) = upload(&app, t, &png_sized(512 * 1024), "image/png").await;
    assert_problem(status, &body, 413, "payload_too_large", Some("file"));
}
