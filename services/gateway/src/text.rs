//! Text that PostgreSQL cannot store is refused at the door.
//!
//! PostgreSQL's `text` holds any Unicode scalar value but U+0000 (NUL). A NUL reaching a service
//! would fail its INSERT (an internal error, 500); so the gateway answers 400
//! `invalid_argument` naming the field before any gRPC call: in JSON bodies ([`json_nul`], used
//! by `ApiJson`; the field is named by its JSON path, keys too), in path parameters and query
//! strings ([`reject_nul_in_uri`]), in CSV bodies and evidence file names (their handlers call
//! [`check`]). Lone surrogates (`"\ud800"`) cannot be decoded into a Rust string at all: they
//! are malformed JSON (400 `malformed_json` naming the field), and in a URI invalid UTF-8 is a
//! 400 from the path extractors. The services refuse NUL themselves too
//! (`jifen_platform::text`), as every handler validates.

use crate::problem::Problem;
use axum::extract::{FromRequestParts, RawPathParams, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The message of a field that holds a NUL.
pub const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// 400 naming `field` when `text` holds a NUL.
pub fn check(field: &str, text: &str) -> Result<(), Problem> {
    if text.contains('\0') {
        Err(Problem::invalid_field(field, NUL_MESSAGE))
    } else {
        Ok(())
    }
}

/// A key or parameter name as it may appear in a field path: a NUL shown as `\u0000`.
fn printable(name: &str) -> String {
    name.replace('\0', "\\u0000")
}

/// Whether `bytes` may hold a JSON string with a NUL (the escape `\u0000`; a raw control
/// character is malformed JSON anyway). Cheap, so the common body is never walked.
fn may_hold_nul(bytes: &[u8]) -> bool {
    bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && w[2..].iter().all(|&b| b == b'0'))
}

/// The JSON path of the first string or key of `value` that holds a NUL (`username`,
/// `lines[0].note`, `body` for a top-level string).
fn find_nul(value: &Value, path: &str) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_nul(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&printable(key)))
            } else {
                find_nul(item, &join(key))
            }
        }),
        _ => None,
    }
}

/// 400 naming the first field of a JSON body that holds a NUL. A body that does not parse is
/// left to the typed parse, which names what is wrong with it.
pub fn json_nul(bytes: &[u8]) -> Result<(), Problem> {
    if !may_hold_nul(bytes) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(());
    };
    match find_nul(&value, "") {
        Some(field) => Err(Problem::invalid_field(field, NUL_MESSAGE)),
        None => Ok(()),
    }
}

/// 400 naming the first query parameter whose name or value holds a NUL.
pub fn query_nul(query: Option<&str>) -> Result<(), Problem> {
    let Some(query) = query.filter(|q| q.contains("%00")) else {
        return Ok(());
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    for (key, value) in pairs {
        if key.contains('\0') || value.contains('\0') {
            return Err(Problem::invalid_field(printable(&key), NUL_MESSAGE));
        }
    }
    Ok(())
}

/// Middleware: a NUL in a path parameter (named) or anywhere in the path (`path`), or in a query
/// parameter (named), is 400 before any handler runs.
pub async fn reject_nul_in_uri(request: Request, next: Next) -> Response {
    if let Err(problem) = query_nul(request.uri().query()) {
        return problem.into_response();
    }
    if request.uri().path().contains("%00") {
        let (mut parts, body) = request.into_parts();
        let named = RawPathParams::from_request_parts(&mut parts, &())
            .await
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(_, v)| v.contains('\0'))
                    .map(|(n, _)| n.to_owned())
            });
        let field = named.unwrap_or_else(|| "path".to_owned());
        drop(body);
        return Problem::invalid_field(field, NUL_MESSAGE).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn field(json: &str) -> Option<String> {
        json_nul(json.as_bytes())
            .err()
            .map(|p| p.errors[0].field.clone())
    }

    #[test]
    fn names_the_json_path_of_a_nul() {
        assert_eq!(
            field(r#"{"username":"a\u0000b"}"#).as_deref(),
            Some("username")
        );
        assert_eq!(
            field(r#"{"lines":[{"note":"ok"},{"note":"\u0000"}]}"#).as_deref(),
            Some("lines[1].note")
        );
        assert_eq!(
            field(r#"{"a":{"b\u0000":1}}"#).as_deref(),
            Some("a.b\\u0000")
        );
        assert_eq!(field(r#""\u0000""#).as_deref(), Some("body"));
        assert_eq!(field(r#"["x","\u0000"]"#).as_deref(), Some("[1]"));
        // No NUL: an escaped backslash before u0000, other escapes, plain text.
        assert_eq!(field(r#"{"a":"\\u0000"}"#), None);
        assert_eq!(field(r#"{"a":"\u0001 \n é"}"#), None);
        // Not JSON: left to the typed parse.
        assert_eq!(field(r#"{"a":"\u0000"#), None);
    }

    #[test]
    fn names_the_query_parameter() {
        assert!(query_nul(None).is_ok());
        assert!(query_nul(Some("year=2026&page_token=abc")).is_ok());
        let p = query_nul(Some("year=2026&page_token=a%00b")).unwrap_err();
        assert_eq!(p.errors[0].field, "page_token");
        let p = query_nul(Some("a%00=1")).unwrap_err();
        assert_eq!(p.errors[0].field, "a\\u0000");
    }

    #[test]
    fn check_names_the_field() {
        assert!(check("name", "张三").is_ok());
        assert_eq!(check("name", "a\0").unwrap_err().errors[0].field, "name");
    }
}
