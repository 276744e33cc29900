//! Request extractors whose rejections are problems that name the offending field.
//!
//! * [`ApiJson`]: `content-type: application/json` (else 415 naming `content-type`), a body within
//!   the limit (else 413 naming `body`), JSON that parses (else 400 `malformed_json`) into the
//!   target type (else 400 `invalid_argument` naming the JSON path of the field, e.g. `kind`).
//! * [`PathId`]: the single UUID path parameter (else 400 naming it, e.g. `id`).
//! * [`ListQuery`]: `page_size`, `page_token`, `recursive` query parameters.
//! * [`PathParams`]: several path parameters by name (`{id}`, `{month}`), as text.
//! * [`body_bytes`]: a raw body of a given media type (CSV import).
//!
//! A NUL in any text (JSON strings and keys, path and query parameters) is 400 naming the field
//! ([`crate::text`]): PostgreSQL cannot store it.

use crate::problem::Problem;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::{HeaderMap, header, request::Parts};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// A JSON body, deserialized with the failing field named.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// Whether `headers` declare a JSON body (`application/json`, `application/*+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|m| {
        m.type_() == mime::APPLICATION
            && (m.subtype() == mime::JSON || m.suffix().is_some_and(|s| s == mime::JSON))
    })
}

fn media_type(headers: &HeaderMap) -> Option<mime::Mime> {
    headers
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .parse::<mime::Mime>()
        .ok()
}

/// Whether `headers` declare the media type `type/subtype` (parameters such as `charset` allowed).
pub fn has_media_type(headers: &HeaderMap, essence: &str) -> bool {
    media_type(headers).is_some_and(|m| m.essence_str().eq_ignore_ascii_case(essence))
}

/// Maps a failure to buffer the body.
pub fn bytes_rejection(rejection: BytesRejection, limit: usize) -> Problem {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        Problem::payload_too_large(limit)
    } else {
        Problem::invalid_field("body", "the body could not be read")
    }
}

/// The body as bytes when its content type is `essence`.
pub async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
    essence: &str,
    limit: usize,
) -> Result<Bytes, Problem> {
    if !has_media_type(req.headers(), essence) {
        return Err(Problem::unsupported_media_type(essence));
    }
    Bytes::from_request(req, state)
        .await
        .map_err(|r| bytes_rejection(r, limit))
}

/// `serde_json`'s message without its " at line L column C" suffix.
fn message_of(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Deserializes `bytes` as `T`, naming the failing field; a string or key holding a NUL is
/// refused first, named by its JSON path ([`crate::text`]).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    crate::text::json_nul(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.inner();
            let message = message_of(inner);
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = missing_field(&message)
                        .map(|name| {
                            if path == "." {
                                name.to_owned()
                            } else {
                                format!("{path}.{name}")
                            }
                        })
                        .unwrap_or_else(|| if path == "." { "body".to_owned() } else { path });
                    Problem::invalid_field(field, message)
                }
                _ => Problem::malformed_json(
                    if path == "." { "body".to_owned() } else { path },
                    message,
                ),
            });
        }
    };
    de.end()
        .map_err(|e| Problem::malformed_json("body", message_of(&e)))?;
    Ok(value)
}

/// The name in serde's "missing field `name`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Problem::unsupported_media_type("application/json"));
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(usize::MAX, |l| l.0);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| bytes_rejection(r, limit))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The configured body limit, put into request extensions so rejections can quote it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The one UUID path parameter of a route (`{id}`).
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::invalid_field("id", "missing path parameter"))?;
        let (name, value) = params
            .iter()
            .next()
            .ok_or_else(|| Problem::invalid_field("id", "missing path parameter"))?;
        parse_uuid(name, value).map(PathId)
    }
}

/// Every path parameter of a route, by name, as text (percent-decoded).
#[derive(Debug, Clone, Default)]
pub struct PathParams(pub Vec<(String, String)>);

impl PathParams {
    /// The parameter `name`, or 400 naming it.
    pub fn get(&self, name: &str) -> Result<&str, Problem> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| Problem::invalid_field(name, "missing path parameter"))
    }

    /// The parameter `name` as a UUID, or 400 naming it.
    pub fn uuid(&self, name: &str) -> Result<Uuid, Problem> {
        parse_uuid(name, self.get(name)?)
    }

    /// The last parameter split at its first `:` into the value and an AIP custom method
    /// (`{id}:submit` → `(id, Some("submit"))`).
    pub fn custom_method(&self) -> (String, Option<String>) {
        let last = self.0.last().map(|(_, v)| v.as_str()).unwrap_or_default();
        match last.split_once(':') {
            Some((value, verb)) => (value.to_owned(), Some(verb.to_owned())),
            None => (last.to_owned(), None),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::invalid_field("path", "bad path parameters"))?;
        for (name, value) in params.iter() {
            crate::text::check(name, value)?;
        }
        Ok(Self(
            params
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
        ))
    }
}

/// `value` as a UUID, or 400 naming `field`.
pub fn parse_uuid(field: &str, value: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(value).map_err(|_| Problem::invalid_field(field, "must be a UUID"))
}

/// Paging and the `recursive` flag of list endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// 0 lets the service pick its default.
    pub page_size: i32,
    pub page_token: String,
    pub recursive: bool,
}

/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: i32 = 1000;

impl ListQuery {
    pub fn parse(query: Option<&str>) -> Result<Self, Problem> {
        crate::text::query_nul(query)?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
            .map_err(|e| Problem::invalid_field("query", e.to_string()))?;
        let mut out = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "page_size" => {
                    out.page_size = value
                        .parse::<i32>()
                        .ok()
                        .filter(|n| (0..=MAX_PAGE_SIZE).contains(n))
                        .ok_or_else(|| {
                            Problem::invalid_field(
                                "page_size",
                                format!("must be an integer from 0 to {MAX_PAGE_SIZE}"),
                            )
                        })?;
                }
                "page_token" => out.page_token = value,
                "recursive" => {
                    out.recursive = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" | "" => false,
                        _ => {
                            return Err(Problem::invalid_field(
                                "recursive",
                                "must be true or false",
                            ));
                        }
                    };
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::parse(parts.uri.query())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Kind {
        Branch,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        kind: Kind,
        id: Option<Uuid>,
        #[serde(default)]
        lines: Vec<Inner>,
    }

    fn err(json: &str) -> Problem {
        parse_json::<Body>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn names_the_failing_field() {
        let p = err(r#"{"kind":"committee"}"#);
        assert_eq!(
            (p.code.as_str(), p.errors[0].field.as_str()),
            ("invalid_argument", "kind")
        );
        let p = err(r#"{}"#);
        assert_eq!(p.errors[0].field, "kind");
        let p = err(r#"{"kind":"branch","id":"nope"}"#);
        assert_eq!(p.errors[0].field, "id");
        let p = err(r#"{"kind":"branch","lines":[{"n":1},{"n":"x"}]}"#);
        assert_eq!(p.errors[0].field, "lines[1].n");
        let p = err(r#"{"kind":"branch","lines":[{}]}"#);
        assert_eq!(p.errors[0].field, "lines[0].n");
        let p = err(r#""just a string""#);
        assert_eq!(p.errors[0].field, "body");
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        username: String,
    }

    #[test]
    fn nul_and_lone_surrogates_are_400_naming_the_field() {
        let p = parse_json::<Login>(br#"{"username":"ad\u0000min"}"#).unwrap_err();
        assert_eq!(
            (
                p.status.as_u16(),
                p.code.as_str(),
                p.errors[0].field.as_str()
            ),
            (400, "invalid_argument", "username")
        );
        for surrogate in [r#"{"username":"\ud800"}"#, r#"{"username":"x\udfff"}"#] {
            let p = parse_json::<Login>(surrogate.as_bytes()).unwrap_err();
            assert_eq!(p.status.as_u16(), 400, "{surrogate}");
            assert_eq!(p.errors[0].field, "username", "{surrogate}");
        }
    }

    #[test]
    fn malformed_json_is_its_own_code() {
        for bad in [r#"{"kind":"#, "", "{,}", r#"{"kind":"branch"} trailing"#] {
            let p = err(bad);
            assert_eq!(p.code, "malformed_json", "{bad}");
            assert_eq!(p.status.as_u16(), 400);
            assert!(
                !p.errors[0].message.contains("line"),
                "{}",
                p.errors[0].message
            );
        }
    }

    #[test]
    fn list_query() {
        assert_eq!(ListQuery::parse(None).unwrap(), ListQuery::default());
        let q = ListQuery::parse(Some("page_size=5&page_token=abc&recursive=true&x=1")).unwrap();
        assert_eq!(
            q,
            ListQuery {
                page_size: 5,
                page_token: "abc".into(),
                recursive: true
            }
        );
        assert_eq!(
            ListQuery::parse(Some("page_size=-1")).unwrap_err().errors[0].field,
            "page_size"
        );
        assert_eq!(
            ListQuery::parse(Some("recursive=maybe"))
                .unwrap_err()
                .errors[0]
                .field,
            "recursive"
        );
    }

    #[test]
    fn media_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "text/csv; charset=utf-8".parse().unwrap(),
        );
        assert!(has_media_type(&h, "text/csv"));
    }
}
