//! Every text field of every endpoint refuses what PostgreSQL cannot store (issue 15, point 5):
//! the live OpenAPI document is walked, and every string-typed field — request body properties
//! (nested arrays and objects too), path and query parameters, the CSV body, the evidence file
//! name — gets a NUL, a lone surrogate and a 1 MB string in turn, the other fields holding
//! valid-looking values and the admin's token where the operation needs one. No answer may be a
//! 5xx. Deterministic (the document's order, fixed payloads) and bounded: one request at a time,
//! a few hundred in all.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::helpers::spawn_app_with;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::time::Instant;

/// What replaces a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    Nul,
    LoneSurrogate,
    Megabyte,
}

const PAYLOADS: [Payload; 3] = [Payload::Nul, Payload::LoneSurrogate, Payload::Megabyte];

/// One million bytes of text.
const MEGABYTE: usize = 1_000_000;

impl Payload {
    /// The payload as a JSON string literal (a lone surrogate can only be written escaped).
    fn json_literal(self) -> String {
        match self {
            Payload::Nul => r#""fuzz\u0000fuzz""#.to_owned(),
            Payload::LoneSurrogate => r#""fuzz\ud800""#.to_owned(),
            Payload::Megabyte => format!("\"{}\"", "x".repeat(MEGABYTE)),
        }
    }

    /// The payload percent-encoded for a path segment or a query value (a lone surrogate as
    /// the bytes UTF-8 forbids).
    fn in_uri(self) -> String {
        match self {
            Payload::Nul => "fuzz%00fuzz".to_owned(),
            Payload::LoneSurrogate => "fuzz%ED%A0%80".to_owned(),
            Payload::Megabyte => "x".repeat(MEGABYTE),
        }
    }

    /// The payload as raw bytes (CSV cells, file names).
    fn bytes(self) -> Vec<u8> {
        match self {
            Payload::Nul => b"fuzz\0fuzz".to_vec(),
            Payload::LoneSurrogate => b"fuzz\xED\xA0\x80".to_vec(),
            Payload::Megabyte => vec![b'x'; MEGABYTE],
        }
    }
}

/// Marks the fuzzed field in a JSON body until it is replaced by the payload's literal.
const MARK: &str = "\u{E000}fuzz-target\u{E000}";

struct Doc<'a> {
    schemas: &'a Map<String, Value>,
    root_id: String,
}

impl Doc<'_> {
    fn resolve<'b>(&'b self, schema: &'b Value) -> &'b Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap();
                self.resolve(&self.schemas[name])
            }
            None => schema,
        }
    }

    /// The schema's type, the first that is not `null` (OpenAPI 3.1 writes `["string","null"]`
    /// and `oneOf: [{$ref}, {type: null}]`).
    fn kind<'b>(&'b self, schema: &'b Value) -> (&'b Value, String) {
        let schema = self.resolve(schema);
        for key in ["oneOf", "anyOf", "allOf"] {
            if let Some(first) = schema[key]
                .as_array()
                .and_then(|alts| alts.iter().find(|a| a["type"] != "null"))
            {
                return self.kind(first);
            }
        }
        let kind = match &schema["type"] {
            Value::String(t) => t.clone(),
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null")
                .to_owned(),
            _ if schema["enum"].is_array() => "string".to_owned(),
            _ if schema["properties"].is_object() => "object".to_owned(),
            _ => "object".to_owned(),
        };
        (schema, kind)
    }

    /// A valid-looking string for a field called `name`.
    fn string_for(&self, name: &str, schema: &Value) -> String {
        if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
            return first.as_str().unwrap_or_default().to_owned();
        }
        if let Some(example) = schema["example"].as_str() {
            return example.to_owned();
        }
        match schema["format"].as_str() {
            Some("uuid") => return self.root_id.clone(),
            Some("date") => return "2026-03-10".to_owned(),
            Some("date-time") => return "2026-03-10T02:00:00Z".to_owned(),
            _ => {}
        }
        match name {
            "month" => "2026-03".to_owned(),
            "quarter" => "2026-Q3".to_owned(),
            "code" => "ABCD-EFGH-JKMN".to_owned(),
            "phone" => "13800138000".to_owned(),
            _ => "模糊测试".to_owned(),
        }
    }

    /// A valid-looking value of `schema`; every string leaf's JSON path goes into `targets`.
    fn sample(&self, name: &str, schema: &Value, path: &str, targets: &mut Vec<String>) -> Value {
        let (schema, kind) = self.kind(schema);
        match kind.as_str() {
            "string" => {
                targets.push(path.to_owned());
                json!(self.string_for(name, schema))
            }
            "integer" => json!(if name == "year" { 2026 } else { 1 }),
            "number" => json!(1.0),
            "boolean" => json!(false),
            "array" => {
                let item = self.sample(name, &schema["items"], &format!("{path}[0]"), targets);
                json!([item])
            }
            _ => {
                let mut out = Map::new();
                let properties = schema["properties"].as_object();
                if properties.is_none_or(Map::is_empty) {
                    // A free-form object: one text property stands for what it may hold.
                    let key = join(path, "fuzz");
                    targets.push(key);
                    out.insert("fuzz".into(), json!("模糊测试"));
                    return Value::Object(out);
                }
                for (key, prop) in properties.unwrap() {
                    let value = self.sample(key, prop, &join(path, key), targets);
                    out.insert(key.clone(), value);
                }
                Value::Object(out)
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `value` with the string at JSON path `target` replaced by [`MARK`].
fn mark(value: &mut Value, target: &str) {
    let mut at = value;
    for part in target.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (
                k,
                Some(rest.trim_end_matches(']').parse::<usize>().unwrap()),
            ),
            None => (part, None),
        };
        if !key.is_empty() {
            at = at.get_mut(key).unwrap();
        }
        if let Some(i) = index {
            at = at.get_mut(i).unwrap();
        }
    }
    *at = json!(MARK);
}

/// One request of the fuzz run.
struct Case {
    method: Method,
    path: String,
    query: String,
    what: String,
    payload: Payload,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
    auth: bool,
}

#[tokio::test(flavor = "multi_thread")]
async fn no_text_field_of_the_openapi_document_answers_5xx() {
    // The fuzz run is a few hundred requests by one admin: the per-caller limit would only
    // make it slower to read.
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 0).await;
    let (status, doc) = app.get("/api/v1/openapi.json", None).await;
    assert!(status.is_success());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let d = Doc {
        schemas,
        root_id: app.root_id.clone(),
    };
    let mut cases = Vec::new();
    for (template, operations) in doc["paths"].as_object().unwrap() {
        for (method, op) in operations.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            cases.extend(cases_of(&d, &method, template, op));
        }
    }
    assert!(cases.len() > 300, "only {} cases", cases.len());

    // A fresh connection per request: the gateway may answer a refused body before reading it
    // and then close the connection, which a pooled connection would only notice on reuse.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut unanswered = Vec::new();
    let mut seen: Vec<(&Case, u16)> = Vec::new();
    for case in &cases {
        if case.path.len() + case.query.len() > MEGABYTE {
            // No HTTP client library writes a URI this long (the `http` crate stops at 64 KiB):
            // written by hand on a socket.
            match raw_status(&app.base, case, &app.admin_token).await {
                Some(status) if status >= 500 => failures.push(format!(
                    "{} {} ({}): {status}",
                    case.method,
                    short(&case.path),
                    case.what
                )),
                Some(status) => seen.push((case, status)),
                None => unanswered.push(case.what.clone()),
            }
            continue;
        }
        let url = if case.query.is_empty() {
            app.url(&case.path)
        } else {
            format!("{}?{}", app.url(&case.path), case.query)
        };
        let mut rb = client.request(case.method.clone(), url);
        if case.auth {
            rb = rb.bearer_auth(&app.admin_token);
        }
        if let Some(ct) = &case.content_type {
            rb = rb.header("content-type", ct);
        }
        if let Some(body) = &case.body {
            rb = rb.body(body.clone());
        }
        match rb.send().await {
            Ok(r) if r.status().is_server_error() => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                failures.push(format!(
                    "{} {} ({}): {status} {}",
                    case.method,
                    short(&case.path),
                    case.what,
                    short(&text)
                ));
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                // The CSV import answers 200 with the rejected rows and nothing created.
                let refused_rows = body["created"] == 0
                    && body["errors"].as_array().is_some_and(|e| !e.is_empty());
                seen.push((case, if refused_rows { 400 } else { status }));
            }
            Err(e) => failures.push(format!(
                "{} {} ({}): no answer: {}",
                case.method,
                short(&case.path),
                case.what,
                short(&e.to_string())
            )),
        }
    }
    let mut by_status = std::collections::BTreeMap::<(String, u16), usize>::new();
    for (case, status) in &seen {
        *by_status
            .entry((format!("{:?}", case.payload), *status))
            .or_default() += 1;
        // Nothing of it is taken, whatever else the operation checks. The evidence file name
        // is the exception: the service does not keep it (a NUL is still refused; a name that
        // is not UTF-8 is dropped by the multipart parser).
        let kept = !(case.what.starts_with("multipart") && case.payload != Payload::Nul);
        if kept && (200..300).contains(status) {
            failures.push(format!(
                "{} {} ({}): accepted with {status}",
                case.method,
                short(&case.path),
                case.what
            ));
        }
    }
    eprintln!(
        "{} cases in {:?}; answers by payload and status: {by_status:?}; without an answer \
         (the connection closed): {unanswered:?}",
        cases.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed in {:?}:\n{}",
        failures.len(),
        cases.len(),
        started.elapsed(),
        failures.join("\n")
    );
}

/// Sends `case` on a plain socket and reads the status code of the answer (`None`: the
/// connection closed without one).
async fn raw_status(base: &str, case: &Case, token: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let target = if case.query.is_empty() {
        case.path.clone()
    } else {
        format!("{}?{}", case.path, case.query)
    };
    let body = case.body.clone().unwrap_or_default();
    let mut request = format!(
        "{} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        case.method,
        body.len()
    );
    if case.auth {
        request.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    if let Some(ct) = &case.content_type {
        request.push_str(&format!("content-type: {ct}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(&body);
    // The server may answer and close before it has read everything: a failed write is fine.
    let _ = stream.write_all(&bytes).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    if read.is_err() && answer.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

/// The cases of one operation: each string field × each payload.
fn cases_of(d: &Doc<'_>, method: &Method, template: &str, op: &Value) -> Vec<Case> {
    let auth = op["security"].as_array().is_some_and(|s| !s.is_empty());
    let params: Vec<(&str, &str, &Value)> = op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap(),
                        p["in"].as_str().unwrap(),
                        &p["schema"],
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    // Valid-looking values of every parameter, as text.
    let valid: Vec<(String, String, bool)> = params
        .iter()
        .map(|(name, place, schema)| {
            let (schema, kind) = d.kind(schema);
            let text = match kind.as_str() {
                "string" if schema["format"] == "uuid" => uuid::Uuid::new_v4().to_string(),
                "string" => d.string_for(name, schema),
                "integer" if *name == "year" => "2026".to_owned(),
                "integer" => "1".to_owned(),
                "boolean" => "false".to_owned(),
                _ => "x".to_owned(),
            };
            (
                (*name).to_owned(),
                text,
                kind == "string" && *place != "header",
            )
        })
        .collect();
    let render = |fuzzed: Option<(&str, &str)>| {
        let mut path = template.to_owned();
        let mut query = Vec::new();
        for ((name, place, _), (_, text, _)) in params.iter().zip(&valid) {
            let value = match fuzzed {
                Some((n, v)) if n == *name => v.to_owned(),
                _ => text.clone(),
            };
            match *place {
                "path" => path = path.replace(&format!("{{{name}}}"), &value),
                "query" => query.push(format!("{name}={value}")),
                _ => {}
            }
        }
        (path, query.join("&"))
    };
    let content = op["requestBody"]["content"].as_object();
    let json_schema = content
        .and_then(|c| c.get("application/json"))
        .map(|c| &c["schema"]);
    let mut targets = Vec::new();
    let sample = json_schema.map(|s| d.sample("body", s, "", &mut targets));
    let body_of = |value: &Option<Value>| value.as_ref().map(|v| serde_json::to_vec(v).unwrap());
    let json_type = json_schema.map(|_| "application/json".to_owned());

    let mut cases = Vec::new();
    for payload in PAYLOADS {
        // Path and query parameters.
        for ((name, place, _), (_, _, is_text)) in params.iter().zip(&valid) {
            if !is_text {
                continue;
            }
            let (path, query) = render(Some((name, &payload.in_uri())));
            cases.push(Case {
                method: method.clone(),
                path,
                query,
                payload,
                what: format!("{place} parameter {name}: {payload:?}"),
                content_type: json_type.clone(),
                body: body_of(&sample),
                auth,
            });
        }
        let (path, query) = render(None);
        // JSON body fields.
        for target in &targets {
            let mut value = sample.clone().unwrap();
            if target.is_empty() {
                value = json!(MARK);
            } else {
                mark(&mut value, target);
            }
            let text = serde_json::to_string(&value)
                .unwrap()
                .replace(&format!("\"{MARK}\""), &payload.json_literal());
            cases.push(Case {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                payload,
                what: format!("body field {target}: {payload:?}"),
                content_type: json_type.clone(),
                body: Some(text.into_bytes()),
                auth,
            });
        }
        // The CSV import: the payload in a cell of the one data row (the service answers 200
        // with the rows it refused).
        if content.is_some_and(|c| c.contains_key("text/csv")) {
            let mut csv = b"name,gender,category,joined_on,phone,id_card,org_id\n".to_vec();
            csv.extend_from_slice(&payload.bytes());
            csv.extend_from_slice(
                format!(",female,full,2015-07-01,13800138000,,{}\n", d.root_id).as_bytes(),
            );
            cases.push(Case {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                payload,
                what: format!("csv cell name: {payload:?}"),
                content_type: Some("text/csv".into()),
                body: Some(csv),
                auth,
            });
        }
        // The evidence upload: the payload as the file name (the file itself is bytes).
        if content.is_some_and(|c| c.contains_key("multipart/form-data")) {
            let name = String::from_utf8_lossy(&payload.bytes()).into_owned();
            let name = if payload == Payload::LoneSurrogate {
                // The raw bytes, not the lossy text.
                String::new()
            } else {
                name
            };
            let (boundary, mut body) =
                crate::support::multipart(&crate::support::png(7), "image/png", &name);
            if payload == Payload::LoneSurrogate {
                let at = body
                    .windows(11)
                    .position(|w| w == b"filename=\"\"")
                    .unwrap()
                    + 10;
                body.splice(at..at, payload.bytes());
            }
            cases.push(Case {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                payload,
                what: format!("multipart file name: {payload:?}"),
                content_type: Some(format!("multipart/form-data; boundary={boundary}")),
                body: Some(body),
                auth,
            });
        }
    }
    cases
}
