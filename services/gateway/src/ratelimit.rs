//! Rate limits and failure back-off in Redis (docs/rate-limits.md is the policy).
//!
//! * [`check`]: a fixed 60-second window per key, opened by its first hit. Every request counts
//!   against its caller (the token's subject, else the client address); code exchanges also
//!   count against a generous per-address ceiling.
//! * [`refuse_if_locked`], [`record_failure`], [`forget_failures`]: failures (a wrong password,
//!   an unknown invitation code) are counted per key with a memory that slides with each
//!   failure; past a free allowance each failure locks the key for a delay that doubles up to a
//!   cap ([`Backoff`]). A locked key is refused with 429 and `retry-after` before anything is
//!   checked, so guessing stops while the lock lasts. Successes are never counted.
//!
//! The client address is the peer address, or — behind `JIFEN_TRUSTED_PROXIES` proxies — the
//! entry of `x-forwarded-for` that the outermost trusted proxy appended ([`client_ip`]), never a
//! client-written entry. Over any limit the answer is 429 with `retry-after`. The operational
//! endpoints are never limited. When Redis does not answer, limits are skipped (and logged):
//! rate limiting must not take the API down; `/readyz` reports Redis as failing meanwhile.

use crate::auth::Authn;
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Window length in seconds.
pub const WINDOW_SECS: u64 = 60;

/// Paths that are never limited.
const EXEMPT: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// One `x-forwarded-for` entry as an address: `203.0.113.7`, `203.0.113.7:5000`, `2001:db8::1`,
/// `[2001:db8::1]:443`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The client's address.
///
/// With `trusted_proxies` = 0 it is the peer address. Behind N trusted proxies each appends the
/// address it received the request from to `x-forwarded-for`, so the N rightmost entries are
/// written by our own proxies and the N-th from the right is the client as the outermost proxy
/// saw it; everything left of it was written by the client and is ignored (it is forgeable).
/// With fewer than N entries the leftmost is taken (every entry is then a proxy's); without
/// the header, or when the chosen entry is not an address, the peer address.
pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>, trusted_proxies: u8) -> String {
    let peer = || peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string());
    if trusted_proxies == 0 {
        return peer();
    }
    // Several header lines form one list, in order (RFC 9110 §5.3).
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return peer();
    }
    let index = entries.len().saturating_sub(usize::from(trusted_proxies));
    entries
        .get(index)
        .and_then(|e| parse_hop(e))
        .map_or_else(peer, |ip| ip.to_string())
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
            state.trusted_proxies(),
        )))
    }
}

/// 429 `rate_limited` with `retry-after`.
fn too_many(detail: String, retry_after: u64) -> Problem {
    let mut problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail);
    problem.retry_after = Some(retry_after.max(1));
    problem
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
            Err(too_many(
                format!(
                    "more than {limit} requests in {WINDOW_SECS} seconds; retry after {retry_after} s"
                ),
                retry_after,
            ))
        }
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "rate limit not applied: Redis did not answer");
            Ok(())
        }
    }
}

/// How failures of one kind are tolerated: the `free`-th failure within `memory` locks for
/// `first_delay`, and each further one for twice as long as the one before, up to `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures after which the next attempt waits; 0 switches the back-off off.
    pub free: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// How long failures are remembered after the last one (at least `max_delay`, so waiting a
    /// lock out does not wipe the count).
    pub memory: Duration,
}

impl Backoff {
    /// The lock that the `failures`-th failure within the memory sets, if any.
    pub fn delay_after(&self, failures: u64) -> Option<Duration> {
        if self.free == 0 || failures < u64::from(self.free) {
            return None;
        }
        let doublings = u32::try_from(failures - u64::from(self.free))
            .unwrap_or(u32::MAX)
            .min(31);
        let delay = self
            .first_delay
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_delay);
        Some(delay.min(self.max_delay).max(Duration::from_secs(1)))
    }

    /// How long the failure count lives after a failure.
    fn memory_secs(&self) -> u64 {
        self.memory.max(self.max_delay).as_secs().max(1)
    }
}

/// The policy for failed code exchanges per address: `free` failures, then 1 s doubling up to
/// 5 minutes; remembered for 15 minutes after the last failure.
pub fn code_backoff(free: u32) -> Backoff {
    Backoff {
        free,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(300),
        memory: Duration::from_secs(900),
    }
}

/// The policy for failed logins per account: `free` failures, then 30 s doubling up to
/// 15 minutes; remembered for an hour after the last failure, forgotten on a success.
pub fn login_account_backoff(free: u32) -> Backoff {
    Backoff {
        free,
        first_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(900),
        memory: Duration::from_secs(3600),
    }
}

/// The policy for failed logins per address: `free` failures, then 1 s doubling up to
/// 5 minutes; remembered for 15 minutes after the last failure.
pub fn login_address_backoff(free: u32) -> Backoff {
    code_backoff(free)
}

/// `fail:<scope>:<who>`: the failure count.
fn failures_key(state: &AppState, scope: &str, who: &str) -> String {
    state.redis_key(&["fail", scope, who])
}

/// `lock:<scope>:<who>`: present while `who` is locked.
fn lock_key(state: &AppState, scope: &str, who: &str) -> String {
    state.redis_key(&["lock", scope, who])
}

/// 429 with `retry-after` when any of the `(scope, who)` keys is locked (the longest lock
/// decides). Nothing is counted.
pub async fn refuse_if_locked(state: &AppState, keys: &[(&str, &str)]) -> Result<(), Problem> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (scope, who) in keys {
        pipe.pttl(lock_key(state, scope, who));
    }
    let mut redis = state.redis();
    let ttls: Result<Vec<i64>, redis::RedisError> = pipe.query_async(&mut redis).await;
    match ttls {
        Ok(ttls) => {
            let longest = keys.iter().zip(ttls).max_by_key(|(_, ttl)| *ttl);
            match longest {
                Some(((scope, _), ms)) if ms > 0 => {
                    let secs = u64::try_from(ms).unwrap_or(0).div_ceil(1000);
                    metrics::counter!("gateway_rate_limited_total", "scope" => (*scope).to_owned())
                        .increment(1);
                    Err(too_many(
                        format!("too many failed attempts; retry after {secs} s"),
                        secs,
                    ))
                }
                _ => Ok(()),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "failure back-off not applied: Redis did not answer");
            Ok(())
        }
    }
}

/// Counts a failure of `who` in `scope` and, past the policy's allowance, locks it. Answers the
/// number of failures remembered and the lock just set (if any); `None` when Redis did not
/// answer or the policy is off.
pub async fn record_failure(
    state: &AppState,
    scope: &str,
    who: &str,
    policy: Backoff,
) -> Option<(u64, Option<Duration>)> {
    if policy.free == 0 {
        return None;
    }
    let key = failures_key(state, scope, who);
    let mut redis = state.redis();
    let counted: Result<(u64, bool), redis::RedisError> = redis::pipe()
        .atomic()
        .incr(&key, 1u64)
        .expire(
            &key,
            i64::try_from(policy.memory_secs()).unwrap_or(i64::MAX),
        )
        .query_async(&mut redis)
        .await;
    let failures = match counted {
        Ok((n, _)) => n,
        Err(e) => {
            tracing::warn!(error = %e, "a failure was not counted: Redis did not answer");
            return None;
        }
    };
    let delay = policy.delay_after(failures);
    if let Some(delay) = delay {
        let locked: Result<(), redis::RedisError> = redis::cmd("SET")
            .arg(lock_key(state, scope, who))
            .arg(1)
            .arg("EX")
            .arg(delay.as_secs().max(1))
            .query_async(&mut redis)
            .await;
        if let Err(e) = locked {
            tracing::warn!(error = %e, "a lock was not set: Redis did not answer");
        }
    }
    Some((failures, delay))
}

/// Forgets the failures of `who` in `scope` and lifts its lock (a successful login).
pub async fn forget_failures(state: &AppState, scope: &str, who: &str) {
    let mut redis = state.redis();
    let deleted: Result<(), redis::RedisError> = redis::pipe()
        .del(failures_key(state, scope, who))
        .ignore()
        .del(lock_key(state, scope, who))
        .ignore()
        .query_async(&mut redis)
        .await;
    if let Err(e) = deleted {
        tracing::warn!(error = %e, "failures not reset: Redis did not answer");
    }
}

/// Middleware: the per-caller limit.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if EXEMPT.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    // An evaluator counts against its address, like a caller without a token: a key named
    // after its ticket would date the code's use in Redis (docs/evaluator-anonymity.md).
    let who = match request.extensions().get::<Authn>() {
        Some(Authn::Valid(caller))
            if !caller
                .principal
                .has_role(jifen_platform::auth::RoleName::Evaluator) =>
        {
            format!("sub:{}", caller.key())
        }
        _ => {
            let peer = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0);
            format!(
                "ip:{}",
                client_ip(request.headers(), peer, state.trusted_proxies())
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

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    const PEER: &str = "10.0.0.9:5000";

    fn ip(values: &[&str], trusted: u8) -> String {
        client_ip(&xff(values), Some(PEER.parse().unwrap()), trusted)
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        assert_eq!(ip(&["203.0.113.7, 10.0.0.1"], 0), "10.0.0.9");
        assert_eq!(client_ip(&HeaderMap::new(), None, 0), "unknown");
    }

    #[test]
    fn the_hop_our_proxy_appended_is_the_client() {
        // One ingress: it appended the address it saw, the rightmost entry.
        assert_eq!(ip(&["198.51.100.1"], 1), "198.51.100.1");
        assert_eq!(ip(&["203.0.113.7, 198.51.100.1"], 1), "198.51.100.1");
        // A CDN in front of the ingress: the CDN appended the client, the ingress the CDN.
        assert_eq!(
            ip(&["203.0.113.7, 198.51.100.1, 10.1.0.5"], 2),
            "198.51.100.1"
        );
        // Several header lines are one list.
        assert_eq!(ip(&["1.1.1.1", "198.51.100.1"], 1), "198.51.100.1");
        // Ports and brackets.
        assert_eq!(ip(&["198.51.100.1:4711"], 1), "198.51.100.1");
        assert_eq!(ip(&["[2001:db8::1]:443"], 1), "2001:db8::1");
        assert_eq!(ip(&["2001:db8::2"], 1), "2001:db8::2");
    }

    #[test]
    fn a_forged_first_entry_changes_nothing() {
        let real = "198.51.100.1";
        for forged in [
            "1.2.3.4",
            "127.0.0.1",
            "garbage",
            "::1",
            "10.0.0.1, 10.0.0.2",
        ] {
            assert_eq!(ip(&[&format!("{forged}, {real}")], 1), real, "{forged}");
            assert_eq!(ip(&[forged, real], 1), real, "{forged}");
        }
        // Behind two proxies the client may forge as many entries as it likes.
        assert_eq!(
            ip(&["6.6.6.6, 7.7.7.7, 198.51.100.1, 10.1.0.5"], 2),
            "198.51.100.1"
        );
    }

    #[test]
    fn short_or_bad_headers_fall_back() {
        // Fewer entries than proxies: every entry is a proxy's; the leftmost is the farthest.
        assert_eq!(ip(&["198.51.100.1"], 2), "198.51.100.1");
        // No header, an empty one, or an entry that is not an address: the peer.
        assert_eq!(ip(&[], 1), "10.0.0.9");
        assert_eq!(ip(&[" , "], 1), "10.0.0.9");
        assert_eq!(ip(&["203.0.113.7, unknown"], 1), "10.0.0.9");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            free: 3,
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            memory: Duration::from_secs(60),
        };
        let delays: Vec<Option<u64>> = (1..=9)
            .map(|n| b.delay_after(n).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            [
                None,
                None,
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(30),
                Some(30),
                Some(30)
            ]
        );
        assert_eq!(b.delay_after(u64::MAX), Some(Duration::from_secs(30)));
        let off = Backoff { free: 0, ..b };
        assert_eq!(off.delay_after(1000), None);
        let short = Backoff {
            memory: Duration::from_secs(1),
            ..b
        };
        assert_eq!(short.memory_secs(), 30);
    }
}
