//! Identity: login, refresh and `/me`.
//!
//! Login asks the members service to check the password (`Authenticate`) and signs an access
//! token for the principal it answers. The refresh token is opaque (32 random bytes); Redis keeps
//! its SHA-256 with the account id for `refresh_ttl`. A refresh token works once: refreshing
//! deletes it (`GETDEL`) and issues a new pair, with roles fetched afresh (`GetPrincipal`, called
//! with the gateway's service token), so a role change shows at the next refresh.
//!
//! The evaluator login (`POST /api/v1/auth/evaluator`) trades an invitation code for a
//! short-lived access token good for that code's round only (docs/evaluator-anonymity.md): the
//! evaluations service checks the code (`RedeemInvitation`) and answers an opaque ballot ticket,
//! which becomes the token's subject `evaluator:<ticket>`. A member code is redeemed with the
//! member's own bearer token, so the member is left off their ballot. Attempts count per client
//! IP against the login limit.

use crate::auth::{Authn, Caller};
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
    ratelimit::check(&state, "evaluator", &ip, state.login_attempts_per_minute()).await?;
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
    let redeemed = evaluations
        .redeem_invitation(epb::RedeemInvitationRequest { code: body.code })
        .await?
        .into_inner();
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
