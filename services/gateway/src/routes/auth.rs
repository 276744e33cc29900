//! Identity: login, refresh and `/me`.
//!
//! Login asks the members service to check the password (`Authenticate`) and signs an access
//! token for the principal it answers. The refresh token is opaque (32 random bytes); Redis keeps
//! its SHA-256 with the account id for `refresh_ttl`. A refresh token works once: refreshing
//! deletes it (`GETDEL`) and issues a new pair, with roles fetched afresh (`GetPrincipal`, called
//! with the gateway's service token), so a role change shows at the next refresh.

use crate::auth::Caller;
use crate::convert::{LoginRequest, Me, RefreshRequest, TokenResponse, principal_from_proto};
use crate::extract::ApiJson;
use crate::problem::Problem;
use crate::ratelimit::{self, ClientIp};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use jifen_platform::auth::Principal;
use jifen_proto::members::v1 as pb;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use tonic::Code;

fn refresh_key(state: &AppState, token: &str) -> String {
    state.redis_key(&["refresh", &hex::encode(Sha256::digest(token.as_bytes()))])
}

/// Signs an access token for `principal` and stores a fresh refresh token.
async fn issue(state: &AppState, principal: &Principal) -> Result<TokenResponse, Problem> {
    let ttl = i64::try_from(state.access_ttl().as_secs()).unwrap_or(i64::MAX);
    let access_token = state
        .signer()
        .sign(principal, ttl)
        .map_err(|e| Problem::internal(&e))?;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let refresh_token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let mut redis = state.redis();
    let stored: Result<(), redis::RedisError> = redis::cmd("SET")
        .arg(refresh_key(state, &refresh_token))
        .arg(&principal.subject)
        .arg("EX")
        .arg(state.refresh_ttl().as_secs().max(1))
        .query_async(&mut redis)
        .await;
    if let Err(e) = stored {
        tracing::warn!(error = %e, "cannot store a refresh token");
        return Err(Problem::unavailable(
            "the session store is unavailable; retry later",
        ));
    }
    Ok(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
    })
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

/// Logs in with a username and password.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "identity",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens", body = TokenResponse),
        (status = 401, description = "Wrong username or password", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
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
    let who = format!("{ip}|{}", body.username.trim().to_lowercase());
    ratelimit::check(&state, "login", &who, state.login_attempts_per_minute()).await?;
    let mut members = state.members_as_gateway()?;
    let request = pb::AuthenticateRequest {
        username: body.username,
        password: body.password,
    };
    let principal = match members.authenticate(request).await {
        Ok(p) => principal_from_proto(p.into_inner()),
        Err(status) if status.code() == Code::Unauthenticated => {
            return Err(Problem::unauthenticated(
                "invalid_credentials",
                "wrong username or password",
            ));
        }
        Err(status) => return Err(status.into()),
    };
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
    let mut redis = state.redis();
    let subject: Option<String> = redis::cmd("GETDEL")
        .arg(refresh_key(&state, &body.refresh_token))
        .query_async(&mut redis)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot read a refresh token");
            Problem::unavailable("the session store is unavailable; retry later")
        })?;
    let refused = || {
        Problem::unauthenticated(
            "invalid_refresh_token",
            "the refresh token is unknown, expired or already used",
        )
    };
    let subject = subject.ok_or_else(refused)?;
    let mut members = state.members_as_gateway()?;
    let principal = match members
        .get_principal(pb::GetPrincipalRequest { subject })
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
            return Err(refused());
        }
        Err(status) => return Err(status.into()),
    };
    issue(&state, &principal).await.map(Json)
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
