//! `Idempotency-Key` on POST, PUT and PATCH: a retry with the same key and body gets the first
//! answer again instead of acting twice.
//!
//! Per caller (token subject) and key, Redis holds the request's fingerprint — SHA-256 over the
//! method, path with query, and body — and, once the first request has been answered, that answer
//! (status, `content-type`, `location`, body) for 24 hours. Claiming a key is one `SET NX`, so of
//! two concurrent requests exactly one acts:
//!
//! * same key, same fingerprint, answered → the stored answer with `idempotent-replayed: true`;
//! * same key, same fingerprint, still in flight → 409 `idempotency_in_progress`;
//! * same key, different fingerprint → 422 `idempotency_key_reused`.
//!
//! Answers that say "try again" (5xx, 429) are not stored: the key is released so a retry acts.
//! The in-flight marker expires after two minutes, so a crash mid-request does not block the key
//! for a day. Anonymous requests (login, refresh) are not covered. When Redis does not answer,
//! the request is refused with 503 rather than risk acting twice.
//!
//! An evaluator's requests (ballots) are never recorded, with or without a key: the record's
//! name would hold the evaluator's ticket (the code's keyed hash), its fingerprint the ratings
//! (a few members × four ratings are quickly enumerated) and its lifetime the time of the vote —
//! everything docs/evaluator-anonymity.md keeps out of storage. A ballot needs no replay anyway:
//! a code votes once, so a retry can never count twice (it answers 409 `code_used`).
//!
//! An answer marked `cache-control: no-store` carries one-time secrets (invitation codes): its
//! body is never written to Redis. The key stays claimed, and a retry gets 409
//! `idempotency_not_replayable` instead of acting twice or seeing the secrets again.

use crate::auth::Authn;
use crate::problem::Problem;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jifen_platform::auth::RoleName;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header marking a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long an answer is kept.
pub const ANSWER_TTL_SECS: u64 = 24 * 60 * 60;
/// How long an in-flight claim lives without an answer.
pub const IN_FLIGHT_TTL_SECS: u64 = 120;
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Headers of the first answer that a replay repeats.
const KEPT_HEADERS: [HeaderName; 2] = [header::CONTENT_TYPE, header::LOCATION];

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    #[serde(default)]
    answer: Option<StoredAnswer>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    /// Base64 (standard) of the body.
    body: String,
}

/// SHA-256 hex of the request's method, path and query, and body.
pub fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b"\n");
    h.update(path_and_query.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

fn unavailable(e: &redis::RedisError) -> Response {
    tracing::warn!(error = %e, "idempotency store unavailable");
    Problem::unavailable("the idempotency store is unavailable; retry later").into_response()
}

/// Middleware: see the module documentation.
pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH
    ) {
        return next.run(request).await;
    }
    let Some(raw_key) = request.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    let subject = match request.extensions().get::<Authn>() {
        // Anonymous ballots leave nothing behind (module documentation).
        Some(Authn::Valid(caller)) if caller.principal.has_role(RoleName::Evaluator) => {
            return next.run(request).await;
        }
        Some(Authn::Valid(caller)) => caller.key().to_owned(),
        // Anonymous or refused: the handler answers (401 where a caller is needed).
        _ => return next.run(request).await,
    };
    let key = match raw_key.to_str() {
        Ok(k) if valid_key(k) => k.to_owned(),
        _ => {
            return Problem::invalid_field(
                IDEMPOTENCY_KEY,
                format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            )
            .into_response();
        }
    };

    let (parts, body) = request.into_parts();
    let limit = state.body_limit_for(parts.uri.path());
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        if parts.uri.path() == crate::routes::evidence::UPLOAD_PATH {
            return crate::routes::evidence::too_large(state.evidence_max_bytes()).into_response();
        }
        return Problem::payload_too_large(limit).into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let fingerprint = fingerprint(&parts.method, &path, &bytes);
    let key_hash = hex::encode(Sha256::digest(key.as_bytes()));
    let redis_key = state.redis_key(&["idem", &subject, &key_hash]);
    let mut redis = state.redis();

    let claim = Record {
        fingerprint: fingerprint.clone(),
        answer: None,
    };
    let claim = serde_json::to_string(&claim).unwrap_or_default();
    let claimed: Result<Option<String>, _> = redis::cmd("SET")
        .arg(&redis_key)
        .arg(claim)
        .arg("NX")
        .arg("EX")
        .arg(IN_FLIGHT_TTL_SECS)
        .query_async(&mut redis)
        .await;
    match claimed {
        Err(e) => unavailable(&e),
        Ok(Some(_)) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            remember(&state, &redis_key, fingerprint, response).await
        }
        Ok(None) => {
            let existing: Result<Option<String>, _> = redis::cmd("GET")
                .arg(&redis_key)
                .query_async(&mut redis)
                .await;
            let record = match existing {
                Err(e) => return unavailable(&e),
                Ok(v) => v.and_then(|s| serde_json::from_str::<Record>(&s).ok()),
            };
            match record {
                Some(r) if r.fingerprint != fingerprint => Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                )
                .with_field(
                    IDEMPOTENCY_KEY,
                    "already used with another method, path or body",
                )
                .into_response(),
                Some(Record {
                    answer: Some(answer),
                    ..
                }) => replay(answer),
                // In flight (or expired between SET and GET: the client retries).
                _ => Problem::new(
                    StatusCode::CONFLICT,
                    "idempotency_in_progress",
                    "a request with this Idempotency-Key is still being processed; retry later",
                )
                .into_response(),
            }
        }
    }
}

/// Stores `response` as the answer for `redis_key` (or releases the key), and returns it.
async fn remember(
    state: &AppState,
    redis_key: &str,
    fingerprint: String,
    response: Response,
) -> Response {
    let mut redis = state.redis();
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        let released: Result<(), _> = redis::cmd("DEL")
            .arg(redis_key)
            .query_async(&mut redis)
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
        return response;
    }
    let no_store = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-store"));
    if no_store {
        let problem = Problem::new(
            StatusCode::CONFLICT,
            "idempotency_not_replayable",
            "the first answer to this Idempotency-Key held one-time secrets and is not kept",
        );
        let record = Record {
            fingerprint,
            answer: Some(StoredAnswer {
                status: problem.status.as_u16(),
                headers: vec![(
                    header::CONTENT_TYPE.as_str().to_owned(),
                    crate::problem::PROBLEM_JSON.to_owned(),
                )],
                body: base64::engine::general_purpose::STANDARD
                    .encode(serde_json::to_vec(&problem.body()).unwrap_or_default()),
            }),
        };
        if let Ok(json) = serde_json::to_string(&record) {
            let stored: Result<(), _> = redis::cmd("SET")
                .arg(redis_key)
                .arg(json)
                .arg("EX")
                .arg(ANSWER_TTL_SECS)
                .query_async(&mut redis)
                .await;
            if let Err(e) = stored {
                tracing::warn!(error = %e, "could not store an idempotency marker");
            }
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return Problem::internal(&e).into_response(),
    };
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    let record = Record {
        fingerprint,
        answer: Some(StoredAnswer {
            status: status.as_u16(),
            headers,
            body: base64::engine::general_purpose::STANDARD.encode(&bytes),
        }),
    };
    if let Ok(json) = serde_json::to_string(&record) {
        let stored: Result<(), _> = redis::cmd("SET")
            .arg(redis_key)
            .arg(json)
            .arg("EX")
            .arg(ANSWER_TTL_SECS)
            .query_async(&mut redis)
            .await;
        if let Err(e) = stored {
            // The action happened; the client gets its answer. A retry may then see 409/act again
            // once the in-flight claim expires — logged so operators can tell.
            tracing::warn!(error = %e, "could not store an idempotent answer");
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(answer: StoredAnswer) -> Response {
    let Ok(body) = base64::engine::general_purpose::STANDARD.decode(answer.body.as_bytes()) else {
        return Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
        .into_response();
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(n, v);
        }
    }
    headers.insert(
        HeaderName::from_static(REPLAYED),
        HeaderValue::from_static("true"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_covers_method_path_and_body() {
        let a = fingerprint(&Method::POST, "/api/v1/members", b"{}");
        assert_eq!(a, fingerprint(&Method::POST, "/api/v1/members", b"{}"));
        assert_ne!(a, fingerprint(&Method::PUT, "/api/v1/members", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/api/v1/orgs", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/api/v1/members", b"{ }"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn keys() {
        assert!(valid_key("3f1c-retry-1"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key(&"k".repeat(MAX_KEY_LEN + 1)));
    }
}
