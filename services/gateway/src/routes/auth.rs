//! Identity: login, refresh and `/me`.
//!
//! Login asks the members service to check the password (`Authenticate`) and signs an access
//! token for the principal it answers. The refresh token is opaque (32 random bytes); Redis keeps
//! its SHA-256 with the account id for `refresh_ttl`. A refresh token works once: refreshing uses
//! it up and issues a new pair, with roles fetched afresh (`GetPrincipal`, called with the
//! gateway's service token), so a role change shows at the next refresh.
//!
//! The tokens descending from one login form a family with one live token. A used token
//! presented again means two parties hold the chain (a stolen token, or a client that retried a
//! refresh whose answer it lost): the family's live token is deleted too, so both must log in
//! again (docs/gateway.md). The check and the rotation are one Lua script, atomic in Redis.
//!
//! The evaluator login (`POST /api/v1/auth/evaluator`) trades an invitation code for a
//! short-lived access token good for that code's round only (docs/evaluator-anonymity.md): the
//! evaluations service checks the code (`RedeemInvitation`) and answers an opaque ballot ticket,
//! which becomes the token's subject `evaluator:<ticket>`. A member code is redeemed with the
//! member's own bearer token, so the member is left off their ballot.
//!
//! Limits (docs/rate-limits.md): failed logins count per account and per client address, failed
//! code exchanges per client address, each with a doubling lock-out; successes are not counted
//! (but code exchanges stay under a generous per-address ceiling).

use crate::auth::{Authn, Caller, PersonCaller};
use crate::convert::{LoginRequest, Me, RefreshRequest, TokenResponse, principal_from_proto};
use crate::extract::ApiJson;
use crate::problem::Problem;
use crate::ratelimit::{self, ClientIp};
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use jifen_proto::evaluations::v1 as epb;
use jifen_proto::members::v1 as pb;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tonic::Code;
use utoipa::ToSchema;

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The live refresh token `refresh:<sha256>` → `<family>|<subject>`.
fn refresh_key(state: &AppState, hash: &str) -> String {
    state.redis_key(&["refresh", hash])
}

/// A used refresh token `refresh-used:<sha256>` → `<family>`, kept for `refresh_ttl`.
fn used_key(state: &AppState, hash: &str) -> String {
    state.redis_key(&["refresh-used", hash])
}

/// A family `refresh-family:<id>` → the SHA-256 of its one live token.
fn family_key(state: &AppState, family: &str) -> String {
    state.redis_key(&["refresh-family", family])
}

/// 32 random bytes, URL-safe base64.
fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn session_store_down(e: &redis::RedisError) -> Problem {
    tracing::warn!(error = %e, "the session store failed");
    Problem::unavailable("the session store is unavailable; retry later")
}

fn refused() -> Problem {
    Problem::unauthenticated(
        "invalid_refresh_token",
        "the refresh token is unknown, expired or already used",
    )
}

/// The access token of a pair, signed for `principal`.
fn token_pair(
    state: &AppState,
    principal: &Principal,
    refresh_token: String,
) -> Result<TokenResponse, Problem> {
    let ttl = i64::try_from(state.access_ttl().as_secs()).unwrap_or(i64::MAX);
    let access_token = state
        .signer()
        .sign(principal, ttl)
        .map_err(|e| Problem::internal(&e))?;
    Ok(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
    })
}

/// Signs an access token for `principal` and stores the first refresh token of a new family.
async fn issue(state: &AppState, principal: &Principal) -> Result<TokenResponse, Problem> {
    let mut family = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut family);
    let family = hex::encode(family);
    let refresh_token = random_token();
    let hash = token_hash(&refresh_token);
    let ttl = state.refresh_ttl().as_secs().max(1);
    let mut redis = state.redis();
    let () = redis::pipe()
        .atomic()
        .set_ex(
            refresh_key(state, &hash),
            format!("{family}|{}", principal.subject),
            ttl,
        )
        .ignore()
        .set_ex(family_key(state, &family), &hash, ttl)
        .ignore()
        .query_async(&mut redis)
        .await
        .map_err(|e| session_store_down(&e))?;
    token_pair(state, principal, refresh_token)
}

/// One refresh, atomically. KEYS: the presented token, its used marker, the new token. ARGV: the
/// TTL, the family key prefix, the refresh key prefix, the new token's hash.
/// * live token of a live family → `{"rotated", "<family>|<subject>"}`: it is now used, and the
///   new token (same family and subject) is the family's live one;
/// * a live token stored before families existed (its value is the subject alone) →
///   `{"legacy", subject}`: used up; the caller starts a new family for it;
/// * a token used before → `{"reused", family}`: the family's live token is deleted, so neither
///   the thief nor the owner can refresh again (OAuth 2.0 Security BCP, refresh token rotation);
/// * anything else → `{"unknown", ""}`.
///
/// The script builds the family's keys itself, so it needs a single Redis (or a primary with
/// replicas), not a Redis Cluster: `JIFEN_REDIS_URL` names one server.
const REFRESH_SCRIPT: &str = r"
local v = redis.call('GETDEL', KEYS[1])
if v then
  local family = string.match(v, '^([^|]*)|')
  if not family then
    return {'legacy', v}
  end
  redis.call('SET', KEYS[2], family, 'EX', ARGV[1])
  if redis.call('GET', ARGV[2] .. family) then
    redis.call('SET', KEYS[3], v, 'EX', ARGV[1])
    redis.call('SET', ARGV[2] .. family, ARGV[4], 'EX', ARGV[1])
    return {'rotated', v}
  end
  return {'unknown', ''}
end
local family = redis.call('GET', KEYS[2])
if family then
  local live = redis.call('GETDEL', ARGV[2] .. family)
  if live then
    redis.call('DEL', ARGV[3] .. live)
  end
  return {'reused', family}
end
return {'unknown', ''}
";

/// Deletes a family and its live token (the account behind it is gone or refused).
async fn revoke_family(state: &AppState, family: &str, live_hash: &str) {
    let mut redis = state.redis();
    let deleted: Result<(), redis::RedisError> = redis::pipe()
        .del(family_key(state, family))
        .ignore()
        .del(refresh_key(state, live_hash))
        .ignore()
        .query_async(&mut redis)
        .await;
    if let Err(e) = deleted {
        tracing::warn!(error = %e, "cannot delete a refresh token family");
    }
}

fn require_non_empty(field: &str, value: &str, problem: Option<Problem>) -> Option<Problem> {
    if !value.trim().is_empty() {
        return problem;
    }
    Some(match problem {
        Some(p) => p.with_field(field, "must not be empty"),
        None => Problem::invalid_field(field, "must not be empty"),
    })
}

/// The failure scope of accounts (`fail:login-account:<hash>`).
const LOGIN_ACCOUNT: &str = "login-account";
/// The failure scope of client addresses for logins.
const LOGIN_ADDRESS: &str = "login-address";
/// The failure scope of client addresses for code exchanges.
const CODE_ADDRESS: &str = "code-address";

/// The key of an account in the limiter: the SHA-256 of the normalized username (trimmed,
/// lower case), so that any text a client sends makes a short key and Redis holds no names.
fn account_key(username: &str) -> String {
    token_hash(&username.trim().to_lowercase())
}

/// Counts a failed login against the account and the address; logs and counts a lock-out.
async fn login_failed(state: &AppState, account: &str, ip: &str) {
    let by_account = ratelimit::record_failure(
        state,
        LOGIN_ACCOUNT,
        account,
        state.login_account_failures(),
    )
    .await;
    if let Some((failures, Some(delay))) = by_account {
        metrics::counter!("gateway_login_lockouts_total", "scope" => "account").increment(1);
        tracing::warn!(
            failures,
            locked_secs = delay.as_secs(),
            "an account is locked after failed logins"
        );
    }
    let by_address =
        ratelimit::record_failure(state, LOGIN_ADDRESS, ip, state.login_address_failures()).await;
    if let Some((failures, Some(delay))) = by_address {
        metrics::counter!("gateway_login_lockouts_total", "scope" => "address").increment(1);
        tracing::warn!(
            client.address = %ip,
            failures,
            locked_secs = delay.as_secs(),
            "a client address is locked after failed logins"
        );
    }
}

/// Whether a failed redemption is a guess (the code is unknown or not a code at all), as
/// opposed to a real code refused for its state (used, round closed, wrong login) or a
/// dependency failure.
fn is_guess(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::Unauthenticated | Code::InvalidArgument)
}

/// Logs in with a username and password.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "identity",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens", body = TokenResponse),
        (status = 401, description = "Wrong username or password", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins for this account or from this address; see `retry-after`", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, Problem> {
    let invalid = require_non_empty("username", &body.username, None);
    if let Some(p) = require_non_empty("password", &body.password, invalid) {
        return Err(p);
    }
    // Failures count per account and per address; a lock refuses before the password is
    // checked, with the same answer whether the account exists or not (docs/rate-limits.md).
    let account = account_key(&body.username);
    let locks = [
        (LOGIN_ACCOUNT, account.as_str()),
        (LOGIN_ADDRESS, ip.as_str()),
    ];
    ratelimit::refuse_if_locked(&state, &locks).await?;
    let mut members = state.members_as_gateway()?;
    let request = pb::AuthenticateRequest {
        username: body.username,
        password: body.password,
    };
    let principal = match members.authenticate(request).await {
        Ok(p) => principal_from_proto(p.into_inner()),
        Err(status) if status.code() == Code::Unauthenticated => {
            login_failed(&state, &account, &ip).await;
            return Err(Problem::unauthenticated(
                "invalid_credentials",
                "wrong username or password",
            ));
        }
        Err(status) => return Err(status.into()),
    };
    ratelimit::forget_failures(&state, LOGIN_ACCOUNT, &account).await;
    metrics::counter!("gateway_logins_total").increment(1);
    issue(&state, &principal).await.map(Json)
}

/// Trades a refresh token (once) for a new token pair.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "identity",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "Tokens", body = TokenResponse),
        (status = 401, description = "Unknown, expired or already used refresh token", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
    ),
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, Problem> {
    if let Some(p) = require_non_empty("refresh_token", &body.refresh_token, None) {
        return Err(p);
    }
    let presented = token_hash(&body.refresh_token);
    let next_token = random_token();
    let next = token_hash(&next_token);
    let mut redis = state.redis();
    let (outcome, value): (String, String) = redis::Script::new(REFRESH_SCRIPT)
        .key(refresh_key(&state, &presented))
        .key(used_key(&state, &presented))
        .key(refresh_key(&state, &next))
        .arg(state.refresh_ttl().as_secs().max(1))
        .arg(family_key(&state, ""))
        .arg(refresh_key(&state, ""))
        .arg(&next)
        .invoke_async(&mut redis)
        .await
        .map_err(|e| session_store_down(&e))?;
    let (family, subject) = match outcome.as_str() {
        "rotated" => value.split_once('|').ok_or_else(refused)?,
        "legacy" => ("", value.as_str()),
        "reused" => {
            tracing::warn!(
                family = %value,
                "a used refresh token was presented again; its family is revoked"
            );
            metrics::counter!("gateway_refresh_reuse_total").increment(1);
            return Err(refused());
        }
        _ => return Err(refused()),
    };
    let mut members = state.members_as_gateway()?;
    let principal = match members
        .get_principal(pb::GetPrincipalRequest {
            subject: subject.to_owned(),
        })
        .await
    {
        Ok(p) => principal_from_proto(p.into_inner()),
        Err(status)
            if matches!(
                status.code(),
                Code::NotFound
                    | Code::Unauthenticated
                    | Code::PermissionDenied
                    | Code::FailedPrecondition
            ) =>
        {
            if !family.is_empty() {
                revoke_family(&state, family, &next).await;
            }
            return Err(refused());
        }
        Err(status) => return Err(status.into()),
    };
    if family.is_empty() {
        // A token from before families: its successor starts one.
        return issue(&state, &principal).await.map(Json);
    }
    token_pair(&state, &principal, next_token).map(Json)
}

/// The caller: account, member (if any) and roles.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me)),
)]
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me::from_principal(&caller.principal))
}

/// One role of the caller, with its organization's name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileRole {
    /// `admin`, `secretary` or `member`.
    pub role: String,
    pub org_id: String,
    pub org_name: String,
}

/// `GET /api/v1/me/profile`: `/me` with names, for a page's header.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Profile {
    pub subject: String,
    /// The caller's member name (their own record), else the account's username.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    pub roles: Vec<ProfileRole>,
}

/// The caller with names: their own member name (or the account's username) and the name of
/// each role's organization, read from the members service with the caller's own token (its
/// rules apply: a member reads their own record). `GET /api/v1/me` stays the gateway's alone.
#[utoipa::path(
    get,
    path = "/api/v1/me/profile",
    tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller with names", body = Profile)),
)]
pub async fn me_profile(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
) -> Result<Json<Profile>, Problem> {
    let p = &caller.principal;
    let mut members = state.members().with_token(&caller.token)?;
    let name = match p.member_id {
        Some(id) => {
            members
                .get_member(pb::GetMemberRequest { id: id.to_string() })
                .await?
                .into_inner()
                .name
        }
        None => p.username.clone().unwrap_or_default(),
    };
    let mut names: std::collections::HashMap<uuid::Uuid, String> = Default::default();
    let mut roles = Vec::with_capacity(p.roles.len());
    for r in &p.roles {
        let org_name = match names.get(&r.org_id) {
            Some(n) => n.clone(),
            None => {
                let n = members
                    .get_organization(pb::GetOrganizationRequest {
                        id: r.org_id.to_string(),
                    })
                    .await?
                    .into_inner()
                    .name;
                names.insert(r.org_id, n.clone());
                n
            }
        };
        roles.push(ProfileRole {
            role: r.role.as_str().to_owned(),
            org_id: r.org_id.to_string(),
            org_name,
        });
    }
    Ok(Json(Profile {
        subject: p.subject.clone(),
        name,
        member_id: p.member_id.map(|m| m.to_string()),
        roles,
    }))
}

/// Longest life of an evaluator token; never past the round's closing instant.
pub const EVALUATOR_TOKEN_TTL_SECS: i64 = 30 * 60;

/// `POST /api/v1/auth/evaluator`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluatorLogin {
    /// The invitation code as printed (`ABCD-EFGH-JKMN`; case, spaces and dashes are ignored).
    pub code: String,
}

/// An evaluator token: good for the ballot of `round_id` only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluatorTokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub round_id: uuid::Uuid,
    /// Seconds.
    pub expires_in: i64,
    pub quarter: String,
    pub evaluator_kind: Option<crate::routes::evaluations::EvaluatorKind>,
}

/// Counts a failed (guess-like) code exchange against the address; a lock is logged and
/// counted so that an alert can fire (the code itself is never logged).
async fn code_failed(state: &AppState, ip: &str) {
    metrics::counter!("gateway_code_exchange_failures_total").increment(1);
    let counted = ratelimit::record_failure(state, CODE_ADDRESS, ip, state.code_failures()).await;
    if let Some((failures, Some(delay))) = counted {
        metrics::counter!("gateway_code_guess_lockouts_total").increment(1);
        tracing::warn!(
            client.address = %ip,
            failures,
            locked_secs = delay.as_secs(),
            "a client address is locked after failed invitation-code exchanges (guessing?)"
        );
    }
}

/// Trades an invitation code for an evaluator token. A member code needs the member's own
/// bearer token on this request.
#[utoipa::path(
    post,
    path = "/api/v1/auth/evaluator",
    tag = "identity",
    request_body = EvaluatorLogin,
    responses(
        (status = 200, description = "An evaluator token for the code's round", body = EvaluatorTokenResponse),
        (status = 401, description = "Unknown code", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "A member code without a member login, or by someone off the roster", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The code was used, or the round is closed", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed exchanges from this address; see `retry-after`", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
    ),
)]
pub async fn evaluator_login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    authn: Option<Extension<Authn>>,
    ApiJson(body): ApiJson<EvaluatorLogin>,
) -> Result<Json<EvaluatorTokenResponse>, Problem> {
    if let Some(p) = require_non_empty("code", &body.code, None) {
        return Err(p);
    }
    // Failed exchanges lock the address with a growing delay; successes only count against a
    // ceiling far above a meeting room (docs/rate-limits.md). Nothing here names a code.
    if let Err(refused) = ratelimit::refuse_if_locked(&state, &[(CODE_ADDRESS, &ip)]).await {
        metrics::counter!("gateway_code_guess_refused_total").increment(1);
        return Err(refused);
    }
    ratelimit::check(
        &state,
        "code-exchange",
        &ip,
        state.code_exchanges_per_minute(),
    )
    .await?;
    // A member redeems with their own token (the service reads who they are from it); anyone
    // else is anonymous, and the gateway calls with its service identity.
    let mut evaluations = match authn.map(|Extension(a)| a) {
        Some(Authn::Valid(caller)) if caller.principal.member_id.is_some() => {
            state.evaluations().with_token(&caller.token)?
        }
        Some(Authn::Invalid(reason)) => {
            return Err(Problem::unauthenticated(
                "invalid_token",
                format!("invalid token: {reason}"),
            ));
        }
        _ => state.evaluations_as_gateway()?,
    };
    let redeemed = match evaluations
        .redeem_invitation(epb::RedeemInvitationRequest { code: body.code })
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => {
            if is_guess(&status) {
                code_failed(&state, &ip).await;
            }
            return Err(status.into());
        }
    };
    let round_id: uuid::Uuid = redeemed
        .round_id
        .parse()
        .map_err(|e| Problem::internal(&e))?;
    let org_id: uuid::Uuid = redeemed.org_id.parse().map_err(|e| Problem::internal(&e))?;
    let mut ttl = EVALUATOR_TOKEN_TTL_SECS;
    if let Ok(closes_at) = chrono::DateTime::parse_from_rfc3339(&redeemed.closes_at) {
        let left = (closes_at.to_utc() - chrono::Utc::now()).num_seconds();
        ttl = ttl.min(left.max(1));
    }
    let principal = Principal {
        subject: format!("evaluator:{}", redeemed.ticket),
        username: None,
        member_id: None,
        roles: vec![RoleClaim {
            role: RoleName::Evaluator,
            org_id,
            org_path: redeemed.org_path,
        }],
        round_id: Some(round_id),
    };
    let access_token = state
        .signer()
        .sign(&principal, ttl)
        .map_err(|e| Problem::internal(&e))?;
    metrics::counter!("gateway_evaluator_logins_total").increment(1);
    Ok(Json(EvaluatorTokenResponse {
        access_token,
        token_type: "Bearer".into(),
        round_id,
        expires_in: ttl,
        quarter: redeemed.quarter,
        evaluator_kind: crate::routes::evaluations::EvaluatorKind::from_proto(
            redeemed.evaluator_kind,
        ),
    }))
}
