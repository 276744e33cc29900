//! Per-caller rate limits in Redis: fixed 60-second windows, each opened by its first request.
//!
//! A request counts against its caller: the token's subject when it carries a valid token, else
//! the client IP. Login attempts also count against `IP + username` with their own, lower limit
//! (see `routes::auth`). Over the limit the answer is 429 with `retry-after` (seconds to the end
//! of the window). The operational endpoints are never limited. When Redis does not answer, the
//! request is let through (and logged): rate limiting must not take the API down; `/readyz`
//! reports Redis as failing meanwhile.

use crate::auth::Authn;
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// Window length in seconds.
pub const WINDOW_SECS: u64 = 60;

/// Paths that are never limited.
const EXEMPT: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The client's address: the first `x-forwarded-for` entry when the gateway is told to trust it
/// (behind an ingress), else the peer address.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> String {
    if trust_forwarded_for {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        if let Some(ip) = forwarded {
            return ip.to_string();
        }
    }
    peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string())
}

/// The client's address as the rate limiter sees it.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl axum::extract::FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(Self(client_ip(
            &parts.headers,
            peer,
            state.trust_forwarded_for(),
        )))
    }
}

/// Counts one hit of `who` in `scope`; `Err(problem)` with 429 when over `limit`.
/// A `limit` of 0 switches the limit off.
pub async fn check(state: &AppState, scope: &str, who: &str, limit: u32) -> Result<(), Problem> {
    if limit == 0 {
        return Ok(());
    }
    let key = state.redis_key(&["rl", scope, who]);
    let mut redis = state.redis();
    // The window opens with the first hit (SET NX EX) and the count grows inside it (INCR keeps
    // the expiry); one MULTI so a window never loses its expiry.
    let counted: Result<(Option<String>, u64, i64), redis::RedisError> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(&key)
        .arg(0)
        .arg("NX")
        .arg("EX")
        .arg(WINDOW_SECS)
        .incr(&key, 1u64)
        .ttl(&key)
        .query_async(&mut redis)
        .await;
    match counted {
        Ok((_, count, ttl)) if count > u64::from(limit) => {
            let retry_after = u64::try_from(ttl)
                .unwrap_or(WINDOW_SECS)
                .clamp(1, WINDOW_SECS);
            metrics::counter!("gateway_rate_limited_total", "scope" => scope.to_owned())
                .increment(1);
            let mut problem = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "more than {limit} requests in {WINDOW_SECS} seconds; retry after {retry_after} s"
                ),
            );
            problem.retry_after = Some(retry_after);
            Err(problem)
        }
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "rate limit not applied: Redis did not answer");
            Ok(())
        }
    }
}

/// Middleware: the per-caller limit.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if EXEMPT.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let who = match request.extensions().get::<Authn>() {
        Some(Authn::Valid(caller)) => format!("sub:{}", caller.key()),
        _ => {
            let peer = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0);
            format!(
                "ip:{}",
                client_ip(request.headers(), peer, state.trust_forwarded_for())
            )
        }
    };
    if let Err(problem) = check(&state, "caller", &who, state.rate_limit_per_minute()).await {
        return problem.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn client_ip_trusts_forwarded_only_when_told() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.7, 10.0.0.1".parse().unwrap());
        let peer = Some("10.0.0.9:5000".parse().unwrap());
        assert_eq!(client_ip(&h, peer, false), "10.0.0.9");
        assert_eq!(client_ip(&h, peer, true), "203.0.113.7");
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_ip(&h, peer, true), "10.0.0.9");
        assert_eq!(client_ip(&h, None, false), "unknown");
    }
}
