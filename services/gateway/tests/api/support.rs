//! Fixtures of the declarations tests: a branch with its secretary and members (known to the
//! declarations service's replica before the test goes on), evidence uploads, PNG files.
#![allow(clippy::unwrap_used, dead_code)]

use crate::helpers::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Someone with a login.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub username: String,
    pub token: String,
}

/// A committee under the root, a branch under it, the branch's secretary (also a member of it)
/// and `n` plain members.
#[derive(Debug, Clone)]
pub struct Branch {
    pub committee_id: String,
    pub branch_id: String,
    pub secretary: Person,
    pub members: Vec<Person>,
}

/// Creates a member named `name` with the login `<label>-<login>`, logs them in.
pub async fn person(app: &TestApp, org_id: &str, label: &str, login: &str, name: &str) -> Person {
    let username = format!("{label}-{login}");
    let member = app.member(org_id, name, Some(&username)).await;
    let id = member["id"].as_str().unwrap().to_owned();
    let token = app.login(&username, &format!("password-{username}")).await;
    Person {
        id,
        username,
        token,
    }
}

/// Gives `person` a role over `org_id` and logs them in again (the token carries roles).
pub async fn grant(app: &TestApp, person: &mut Person, org_id: &str, role: &str) {
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{org_id}/roles"),
            Some(&app.admin_token),
            &json!({"member_id": person.id, "role": role}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    person.token = app
        .login(&person.username, &format!("password-{}", person.username))
        .await;
}

/// A branch of `unit_type` under a new committee, ready in the declarations service.
pub async fn branch_of(app: &TestApp, label: &str, n: usize, unit_type: &str) -> Branch {
    let committee = app
        .org(&app.root_id, &format!("{label} 党委"), "committee")
        .await;
    let committee_id = committee["id"].as_str().unwrap().to_owned();
    let body = json!({
        "parent_id": committee_id, "name": format!("{label} 党支部"), "kind": "branch",
        "unit_type": unit_type,
    });
    let (status, branch) = app
        .post("/api/v1/orgs", Some(&app.admin_token), &body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{branch}");
    let branch_id = branch["id"].as_str().unwrap().to_owned();
    staffed(app, committee_id, branch_id, label, n).await
}

/// Staffs the branch `branch_id` (under `committee_id`): its secretary and `n` members, logged
/// in, and waits until the declarations service's replica has them all.
pub async fn staffed(
    app: &TestApp,
    committee_id: String,
    branch_id: String,
    label: &str,
    n: usize,
) -> Branch {
    let mut secretary = person(app, &branch_id, label, "sec", "书记").await;
    grant(app, &mut secretary, &branch_id, "secretary").await;
    let mut members = Vec::with_capacity(n);
    for i in 0..n {
        members.push(
            person(
                app,
                &branch_id,
                label,
                &format!("m{i}"),
                &format!("党员{i}"),
            )
            .await,
        );
    }
    // The members service publishes; the declarations service's replica must have them all.
    for p in members.iter().chain(std::iter::once(&secretary)) {
        app.wait_member(&p.id).await;
    }
    app.wait_org(&branch_id).await;
    Branch {
        committee_id,
        branch_id,
        secretary,
        members,
    }
}

/// Records branch-side points (`entries`) of `month` in the branch as `token`; 201 expected.
pub async fn record(app: &TestApp, branch_id: &str, token: &str, month: &str, entries: Value) {
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{branch_id}/branch-records"),
            Some(token),
            &json!({"month": month, "entries": entries}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A `government_organ` branch.
pub async fn branch(app: &TestApp, label: &str, n: usize) -> Branch {
    branch_of(app, label, n, "government_organ").await
}

/// A `multipart/form-data` body with one part `file` (and the boundary it uses).
pub fn multipart(data: &[u8], content_type: &str, file_name: &str) -> (String, Vec<u8>) {
    let boundary = "----jifen-test-boundary-7MA4YWxkTrZu0gW".to_owned();
    let mut body = Vec::with_capacity(data.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

/// Posts a raw multipart body to `/api/v1/evidence`.
pub async fn upload_raw(
    app: &TestApp,
    token: &str,
    boundary: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/api/v1/evidence"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let bytes = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Uploads `data` as evidence of `content_type`.
pub async fn upload(
    app: &TestApp,
    token: &str,
    data: &[u8],
    content_type: &str,
) -> (StatusCode, Value) {
    let (boundary, body) = multipart(data, content_type, "evidence.png");
    upload_raw(app, token, &boundary, body, &[]).await
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let mut typed = kind.to_vec();
    typed.extend_from_slice(data);
    out.extend_from_slice(&typed);
    out.extend_from_slice(&crc32(&typed).to_be_bytes());
}

/// A valid grayscale PNG, `width` pixels wide and one high, whose pixels are `shade`s (so
/// different shades make different files). Stored (uncompressed) deflate keeps it simple; the
/// width must stay below 65 535.
pub fn png_of(width: u32, shade: u8) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&1u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grayscale, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    let mut raw = vec![0u8]; // filter: none
    raw.extend(std::iter::repeat_n(shade, width as usize));
    let len = u16::try_from(raw.len()).unwrap();
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A 1×1 PNG of one gray `shade`.
pub fn png(shade: u8) -> Vec<u8> {
    png_of(1, shade)
}

/// `len` bytes that start like a PNG (the service checks the signature, not the whole file):
/// for size limits.
pub fn png_sized(len: usize) -> Vec<u8> {
    let mut data = png(7);
    data.resize(len.max(data.len()), 0x5A);
    data
}
